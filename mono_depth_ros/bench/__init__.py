"""Benchmark logic behind mono-depth-bench: the node end to end over DDS, several cameras, soak.

Model-only timing lives below the ROS layer in mono_depth_ros.timing. rclpy is imported only by
mono_depth_ros.bench.node_bench (the DDS harness), never here.
"""
