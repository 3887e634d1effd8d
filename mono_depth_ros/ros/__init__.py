"""ROS layer: conversions, depth messages, bags, node parameters, frame sync, the frame pipeline
and the node. rclpy is imported only in the node, the bag I/O and the process helpers."""
