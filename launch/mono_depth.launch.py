"""Launch mono_depth_node on a camera (and RViz with config/mono_depth.rviz when use_rviz:=true).

    ros2 launch mono_depth_ros mono_depth.launch.py image:=/camera/image_raw \
        camera_info:=/camera/camera_info use_rviz:=true
    ros2 launch mono_depth_ros mono_depth.launch.py "cameras:=['front', 'rear']" \
        checkpoint:=/path/to/model.pt

Parameters come from params_file (default: the package's config/mono_depth_node.yaml);
checkpoint, device, image_transport, cameras and autostart given here override it, and are left
to the file when empty. With neither, the node loads the package's shipped model.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.conditions import IfCondition
from launch.launch_description import LaunchDescription
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node
import yaml

PACKAGE = 'mono_depth_ros'

# (name, default, description): every launch argument, documented (docs/node.md, test_launch.py).
ARGUMENTS = [
    ('namespace', '', 'Namespace of the node and its output topics (depth, points, ...).'),
    ('image', '/camera/image_raw', 'Camera image topic (sensor_msgs/Image); with '
     'image_transport compressed, <image>/compressed is subscribed.'),
    ('camera_info', '/camera/camera_info', 'CameraInfo topic of that camera, matched by stamp.'),
    ('fallback_intrinsics', '', "A stated guess for a camera without CameraInfo: kitti, or "
     "'fx, fy, cx, cy' in pixels; empty: the params file value (none: the node waits for "
     'CameraInfo).'),
    ('params_file', '', 'Node parameters file (ros2 params format); empty: the package '
     'config/mono_depth_node.yaml.'),
    ('checkpoint', '', 'Model checkpoint (.pt); empty: the checkpoint parameter of the '
     'params file, whose empty value is the shipped model.'),
    ('device', '', 'Inference device: auto, cuda or cpu; empty: the params file value.'),
    ('image_transport', '', 'raw or compressed input; empty: the params file value.'),
    ('cameras', '', "Camera namespaces served by the one node, e.g. ['front', 'rear'] (each "
     'reads C/image and C/camera_info and publishes C/depth, C/points, ...); image and '
     "camera_info remap camera ''; empty: the params file value."),
    ('autostart', '', 'true: configure and activate at start; false: wait unconfigured for '
     'lifecycle transitions; empty: the params file value.'),
    ('use_rviz', 'false', 'Start RViz with config/mono_depth.rviz (true/false).'),
]


def share_file(*parts: str) -> str:
    """A file installed under share/mono_depth_ros."""
    return os.path.join(get_package_share_directory(PACKAGE), *parts)


def typed(name: str, text: str):
    """A launch argument as the parameter type: cameras a list of names, autostart a bool."""
    value = yaml.safe_load(text)
    if name == 'cameras' and isinstance(value, str):
        value = [value]
    return value


def launch_nodes(context, *args, **kwargs) -> list:
    """The depth node and RViz, with only the non-empty overrides passed on."""
    value = {name: LaunchConfiguration(name).perform(context) for name, _, _ in ARGUMENTS}
    params_file = value['params_file'] or share_file('config', 'mono_depth_node.yaml')
    overrides = {name: value[name] for name in ('checkpoint', 'device', 'image_transport',
                                                'fallback_intrinsics') if value[name]}
    overrides.update({name: typed(name, value[name]) for name in ('cameras', 'autostart')
                      if value[name]})
    image = value['image']
    depth_node = Node(
        package=PACKAGE, executable='mono_depth_node', name='mono_depth_node',
        namespace=value['namespace'], output='screen', emulate_tty=True,
        parameters=[params_file, overrides] if overrides else [params_file],
        remappings=[('image', image), ('image/compressed', image + '/compressed'),
                    ('camera_info', value['camera_info'])])
    rviz = Node(
        package='rviz2', executable='rviz2', name='rviz2', output='screen',
        arguments=['-d', share_file('config', 'mono_depth.rviz')],
        condition=IfCondition(LaunchConfiguration('use_rviz')))
    return [depth_node, rviz]


def generate_launch_description() -> LaunchDescription:
    """Every documented argument, then the nodes."""
    declared = [DeclareLaunchArgument(name, default_value=default, description=description)
                for name, default, description in ARGUMENTS]
    return LaunchDescription([*declared, OpaqueFunction(function=launch_nodes)])
