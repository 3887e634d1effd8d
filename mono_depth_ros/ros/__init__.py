"""ROS layer: conversions, depth messages, bags, node parameters, frame sync, the frame pipeline
and the node. rclpy is imported only by the node, the bag I/O and the drive player; the node's
logic (params, node_logic, pipeline) needs only the message packages."""
