"""Install the mono_depth_ros ament_python package (colcon, pip or uv)."""

from glob import glob
import os

from setuptools import find_packages, setup

PACKAGE = 'mono_depth_ros'
HERE = os.path.dirname(os.path.abspath(__file__))

# One line per command-line tool: '<executable> = <module>:<function>'.
CONSOLE_SCRIPTS = [
    'mono-depth-bag = mono_depth_ros.tools.process_bag:main',
    'mono-depth-bag-gt = mono_depth_ros.tools.bag_gt:main',
    'mono-depth-bench = mono_depth_ros.tools.bench:main',
    'mono-depth-demo = mono_depth_ros.tools.demo:main',
    'mono-depth-doctor = mono_depth_ros.tools.doctor:main',
    'mono-depth-download-kitti = mono_depth_ros.tools.download_kitti:main',
    'mono-depth-eval = mono_depth_ros.tools.evaluate:main',
    'mono-depth-export = mono_depth_ros.tools.export_onnx:main',
    'mono-depth-export-gt = mono_depth_ros.tools.export_gt:main',
    'mono-depth-gpu-check = mono_depth_ros.tools.gpu_check:main',
    'mono-depth-kitti2bag = mono_depth_ros.tools.kitti2bag:main',
    'mono-depth-model-info = mono_depth_ros.tools.model_info:main',
    'mono-depth-release = mono_depth_ros.tools.release:main',
    'mono-depth-study = mono_depth_ros.tools.study:main',
    'mono_depth_node = mono_depth_ros.ros.node:main',
    'mono-depth-synth = mono_depth_ros.tools.synth:main',
    'mono-depth-train = mono_depth_ros.tools.train:main',
]


def requirements(name: str) -> list[str]:
    """The requirements in requirements/<name>, the one list of them (comments left out)."""
    with open(os.path.join(HERE, 'requirements', name)) as stream:
        lines = (line.split('#', 1)[0].strip() for line in stream)
        return [line for line in lines if line]


def share_files(folder: str) -> list[tuple[str, list[str]]]:
    """Map every file below folder to its install directory under share/<package>."""
    entries = {}
    for path in sorted(glob(os.path.join(folder, '**', '*'), recursive=True)):
        if os.path.isfile(path):
            target = os.path.join('share', PACKAGE, os.path.dirname(path))
            entries.setdefault(target, []).append(path)
    return sorted(entries.items())


setup(
    name=PACKAGE,
    version='0.1.0',
    packages=find_packages(exclude=['test', 'test.*']),
    package_data={f'{PACKAGE}.datasets.kitti': ['files/**/*']},
    include_package_data=True,
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + PACKAGE]),
        ('share/' + PACKAGE, ['package.xml']),
        *share_files('launch'),
        *share_files('config'),
        *share_files('models'),
    ],
    install_requires=['setuptools', *requirements('base.txt')],
    extras_require={'ros': requirements('ros.txt')},  # ROS 2 wheels, where ROS is not installed
    zip_safe=True,
    maintainer='mono_depth_ros maintainers',
    maintainer_email='maintainers@mono-depth-ros.dev',
    description='Metric monocular depth estimation node and KITTI tools for ROS 2.',
    license='Apache-2.0',
    entry_points={'console_scripts': CONSOLE_SCRIPTS},
)
