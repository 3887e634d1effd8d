"""The package builds the ROS way (colcon, ament_python) and installs the layout ros2 expects."""

import ast
import os
from pathlib import Path
import shutil
import subprocess
import sys

import pytest

SHARE_FOLDERS = ('launch', 'config', 'models')


def console_scripts(repo_root: Path) -> list[str]:
    """Executable names declared in setup.py's CONSOLE_SCRIPTS list."""
    tree = ast.parse((repo_root / 'setup.py').read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and node.targets[0].id == 'CONSOLE_SCRIPTS':
            return [entry.split('=')[0].strip() for entry in ast.literal_eval(node.value)]
    raise AssertionError('setup.py has no CONSOLE_SCRIPTS list')


@pytest.fixture(scope='module')
def colcon_install(repo_root, tmp_path_factory) -> Path:
    colcon = Path(sys.executable).parent / 'colcon'
    if not colcon.exists() and shutil.which('colcon') is None:
        pytest.fail('colcon is not installed: run make setup')
    work = tmp_path_factory.mktemp('colcon')
    command = [str(colcon) if colcon.exists() else 'colcon', '--log-base', str(work / 'log'),
               'build', '--base-paths', str(repo_root), '--build-base', str(work / 'build'),
               '--install-base', str(work / 'install')]
    result = subprocess.run(command, cwd=work, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return work / 'install' / 'mono_depth_ros'


def test_ament_index_marker_and_manifest(colcon_install):
    marker = colcon_install / 'share/ament_index/resource_index/packages/mono_depth_ros'
    assert marker.is_file()
    manifest = colcon_install / 'share/mono_depth_ros/package.xml'
    assert '<build_type>ament_python</build_type>' in manifest.read_text()


def test_share_files_installed(colcon_install, repo_root):
    share = colcon_install / 'share' / 'mono_depth_ros'
    expected = [path.relative_to(repo_root) for folder in SHARE_FOLDERS
                for path in (repo_root / folder).rglob('*') if path.is_file()]
    missing = [str(rel) for rel in expected if not (share / rel).is_file()]
    assert not missing, f'not installed under {share}: {missing}'


def test_executables_in_lib_package_dir(colcon_install, repo_root):
    names = console_scripts(repo_root)
    assert 'mono-depth-doctor' in names
    lib = colcon_install / 'lib' / 'mono_depth_ros'
    for name in names:
        assert (lib / name).is_file(), f'{name} missing from {lib}'
        assert os.access(lib / name, os.X_OK)


def test_installed_executable_runs_installed_package(colcon_install, tmp_path):
    site = next(colcon_install.glob('lib/python*/site-packages'))
    env = dict(os.environ, PYTHONPATH=str(site))
    code = 'import mono_depth_ros; print(mono_depth_ros.__file__)'
    probe = subprocess.run([sys.executable, '-c', code], cwd=tmp_path, env=env,
                           capture_output=True, text=True, check=True)
    assert probe.stdout.strip().startswith(str(site))
    result = subprocess.run([str(colcon_install / 'lib/mono_depth_ros/mono-depth-doctor')],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert 'rclpy' in result.stdout


def test_installed_package_carries_its_data_files(colcon_install, tmp_path):
    site = next(colcon_install.glob('lib/python*/site-packages'))
    env = dict(os.environ, PYTHONPATH=str(site))
    code = ('from mono_depth_ros.datasets.kitti.splits import read_split\n'
            'from mono_depth_ros.datasets.kitti.download import ARCHIVE_LIST\n'
            'from mono_depth_ros.datasets.synth.writer import CALIB_DIR\n'
            'import mono_depth_ros\n'
            'assert str(ARCHIVE_LIST).startswith(mono_depth_ros.__path__[0]), ARCHIVE_LIST\n'
            'print(len(read_split("eigen")), len(read_split("eigen_benchmark")),\n'
            '      ARCHIVE_LIST.is_file(), len(list(CALIB_DIR.glob("calib_*.txt"))))')
    probe = subprocess.run([sys.executable, '-c', code], cwd=tmp_path, env=env,
                           capture_output=True, text=True)
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.split() == ['697', '652', 'True', '3']
