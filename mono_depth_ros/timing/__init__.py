"""Model-only timing below the ROS layer: latency statistics, device facts, backend rows.

Used by the study (training side) and by bench/ (which adds the node over DDS); no rclpy here.
"""
