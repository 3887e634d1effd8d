"""Benchmark logic behind mono-depth-bench: model-only, node end-to-end over DDS, and soak.

rclpy is imported only by mono_depth_ros.bench.node_bench (the DDS harness), never here.
"""
