"""The live node: parameters, conversions, depth messages, the pairing rule (frame_sync, shared
with the offline bag tools in bags/), the frame pipeline, one CameraChannel per camera and the
lifecycle node. rclpy is imported only by the node and its CameraChannel; the node's logic
(params, node_logic, frame_sync, frame_handover, camera_report, pipeline) needs only the message
packages."""
