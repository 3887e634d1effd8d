"""mono_depth_ros: metric monocular depth estimation for ROS 2."""

__version__ = '0.1.0'
