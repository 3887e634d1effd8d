"""The ROS layer: message conversions and bag I/O (sensor_msgs here; rclpy only in bag_io)."""
