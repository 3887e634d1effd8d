"""The declared dependencies are what the code imports: package.xml, requirements/*.txt and
setup.py's extras, each dependency once, nothing missing and nothing unused."""

import ast
from pathlib import Path
import re
import sys
import xml.etree.ElementTree as ElementTree

import pytest

# What each imported module needs: (rosdep key, pip requirement); None where there is none.
# A dotted key is a submodule that needs a distribution of its own.
DEPENDENCIES = {
    'ament_index_python': ('ament_index_python', 'ros-jazzy-rclpy'),
    'cv2': ('python3-opencv', 'opencv-python-headless'),
    'cv_bridge': ('cv_bridge', None),
    'diagnostic_msgs': ('diagnostic_msgs', 'ros-jazzy-diagnostic-msgs'),
    'launch': ('launch', None),
    'launch_ros': ('launch_ros', None),
    'matplotlib': ('python3-matplotlib', 'matplotlib'),
    'numpy': ('python3-numpy', 'numpy'),
    'onnx': (None, 'onnx'),
    'onnxruntime': ('python3-onnxruntime-pip', 'onnxruntime'),
    'rcl_interfaces': ('rcl_interfaces', 'ros-jazzy-rclpy'),
    'rclpy': ('rclpy', 'ros-jazzy-rclpy'),
    'rosbags': (None, 'rosbags'),
    'rosidl_runtime_py': ('rosidl_runtime_py', None),
    'sensor_msgs': ('sensor_msgs', 'ros-jazzy-sensor-msgs'),
    'std_msgs': ('std_msgs', 'ros-jazzy-std-msgs'),
    'tensorrt': (None, 'tensorrt-cu13'),
    'torch': (None, 'torch'),
    'torch.utils.tensorboard': (None, 'tensorboard'),
    'torchvision': (None, 'torchvision'),
    'tqdm': ('python3-tqdm', 'tqdm'),
    'yaml': ('python3-yaml', 'pyyaml'),
}
# Requirements that no import names: the RMW implementation that rclpy loads (the node
# configures Fast DDS, ros/dds.py), and the CUDA build of onnxruntime for make gpu-check.
NOT_IMPORTED = {'ros-jazzy-rmw-fastrtps-cpp': 'ros.txt', 'onnxruntime-gpu': 'gpu.txt'}
# Which requirements file holds a pip requirement: ROS wheels, GPU extras, else base.
GPU_ONLY = {'tensorrt-cu13', 'onnxruntime-gpu'}


def sources(repo_root: Path) -> list[Path]:
    """The installed Python code: the package and the launch file."""
    return sorted([*(repo_root / 'mono_depth_ros').rglob('*.py'),
                   *(repo_root / 'launch').glob('*.py')])


def imports(path: Path) -> tuple[set[str], set[str]]:
    """(every absolute module name path imports, those imported inside try/except ImportError)."""
    tree = ast.parse(path.read_text(), str(path))

    def names(nodes) -> set[str]:
        found = set()
        for node in nodes:
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                found.add(node.module)
        return found

    guarded = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Try) and any(
                isinstance(handler.type, ast.Name)
                and handler.type.id in ('ImportError', 'ModuleNotFoundError')
                for handler in node.handlers):
            guarded |= names(n for statement in node.body for n in ast.walk(statement))
    return names(ast.walk(tree)), guarded


def third_party(name: str) -> bool:
    """Whether a module comes from a distribution (not the standard library, not this package)."""
    top = name.split('.')[0]
    return top not in sys.stdlib_module_names and top not in ('mono_depth_ros', '__future__')


def keys_of(name: str) -> set[str]:
    """The DEPENDENCIES entries a module name needs (its package, and a listed submodule)."""
    return {key for key in DEPENDENCIES if name == key or name.startswith(key + '.')}


def requirement_names(path: Path) -> list[str]:
    """The distribution names a requirements file lists, in order (specifiers left out)."""
    lines = (line.split('#', 1)[0].strip() for line in path.read_text().splitlines())
    return [re.split(r'[<>=!~;\[ ]', line, maxsplit=1)[0].lower() for line in lines if line]


@pytest.fixture(scope='module')
def used(repo_root) -> dict[str, set[Path]]:
    """DEPENDENCIES key -> the files that import it; fails on an import the table lacks."""
    found, unknown = {}, {}
    for path in sources(repo_root):
        for name in filter(third_party, imports(path)[0]):
            keys = keys_of(name)
            if not keys:
                unknown.setdefault(name, []).append(str(path.relative_to(repo_root)))
            for key in keys:
                found.setdefault(key, set()).add(path)
    assert not unknown, (f'imports with no declared dependency: {unknown}; add each to '
                         'package.xml (rosdep key) and/or requirements/, and to DEPENDENCIES')
    return found


def test_every_dependency_in_the_table_is_imported(used):
    assert set(DEPENDENCIES) == set(used), (
        f'declared but never imported: {sorted(set(DEPENDENCIES) - set(used))}')


def test_package_xml_declares_exactly_the_rosdep_keys_of_the_imports(repo_root, used):
    root = ElementTree.parse(repo_root / 'package.xml').getroot()
    exec_depends = [element.text for element in root.iter('exec_depend')]
    assert len(exec_depends) == len(set(exec_depends)), 'a dependency is declared twice'
    wanted = {DEPENDENCIES[key][0] for key in used} - {None}
    assert set(exec_depends) == wanted, (
        f'missing: {sorted(wanted - set(exec_depends))}; '
        f'unused: {sorted(set(exec_depends) - wanted)}')
    kinds = {element.tag for element in root if element.tag.endswith('depend')}
    assert kinds == {'exec_depend', 'test_depend'}
    test_depends = {element.text for element in root.iter('test_depend')}
    assert 'ament_flake8' not in test_depends and 'python3-pytest' in test_depends


def test_requirements_list_exactly_the_pip_packages_of_the_imports_once(repo_root, used):
    folder = repo_root / 'requirements'
    files = {name: requirement_names(folder / name) for name in ('base.txt', 'ros.txt',
                                                                'gpu.txt')}
    listed = [name for names in files.values() for name in names]
    assert len(listed) == len(set(listed)), f'listed twice: {listed}'
    for name, file in NOT_IMPORTED.items():
        assert name in files[file], f'{name} belongs in requirements/{file}'
    wanted = {DEPENDENCIES[key][1] for key in used} - {None}
    imported = set(listed) - set(NOT_IMPORTED)
    assert imported == wanted, (f'missing: {sorted(wanted - imported)}; '
                                f'unused: {sorted(imported - wanted)}')
    for name in wanted:
        file = 'gpu.txt' if name in GPU_ONLY else 'ros.txt' if name.startswith('ros-') \
            else 'base.txt'
        assert name in files[file], f'{name} belongs in requirements/{file}'
    constraints = set(requirement_names(folder / 'constraints.txt'))  # gpu.txt pins its own
    assert set(listed) - GPU_ONLY <= constraints, 'a requirement has no pinned version'


def test_imports_without_a_wheel_are_optional(repo_root, used):
    # cv_bridge and rosidl_runtime_py come only with a ROS installation: the package works
    # without them (own equivalents), so every import of them is guarded.
    guarded = set()
    for path in sources(repo_root):
        if path.parent.name != 'launch':
            guarded |= imports(path)[1]
    for key, (_, pip) in DEPENDENCIES.items():
        package_files = {p for p in used[key] if p.parent.name != 'launch'}
        if pip is None and package_files:
            assert any(keys_of(name) == {key} for name in guarded), (
                f'{key} has no wheel: import it inside try/except ImportError '
                f'({sorted(str(p) for p in package_files)})')


def test_setup_py_reads_the_requirements_files(repo_root, monkeypatch):
    import runpy

    import setuptools

    captured = {}
    monkeypatch.setattr(setuptools, 'setup', lambda **kwargs: captured.update(kwargs))
    monkeypatch.chdir(repo_root / 'test')  # the files are found from setup.py, not the cwd
    runpy.run_path(str(repo_root / 'setup.py'))
    folder = repo_root / 'requirements'
    base = [line for line in (line.split('#', 1)[0].strip()
                              for line in (folder / 'base.txt').read_text().splitlines()) if line]
    assert captured['install_requires'] == ['setuptools', *base]
    assert [re.split(r'[<>=!~;\[ ]', r, maxsplit=1)[0] for r in captured['extras_require']['ros']
            ] == requirement_names(folder / 'ros.txt')
    assert set(captured['extras_require']) == {'ros'}
    text = (repo_root / 'setup.py').read_text()
    assert not re.search(r"'(ros-jazzy-[a-z-]+|torch|numpy)'", text), 'setup.py repeats a list'
