"""The ROS 2 stack works for real: a sensor_msgs/Image crosses from one process to another."""

import subprocess
import sys
import time

import numpy as np
import pytest

rclpy = pytest.importorskip('rclpy')
from sensor_msgs.msg import Image  # noqa: E402

PUBLISHER = r"""
import sys, time
import numpy as np
import rclpy
from sensor_msgs.msg import Image
rclpy.init()
node = rclpy.create_node('fixture_image_publisher')
pub = node.create_publisher(Image, sys.argv[1], 10)
pixels = (np.arange(4 * 6 * 3) % 251).astype(np.uint8)
deadline = time.monotonic() + 30.0
count = 0
while time.monotonic() < deadline:
    msg = Image()
    msg.header.frame_id = 'camera_optical_frame'
    msg.header.stamp.sec = 1234
    msg.header.stamp.nanosec = count
    msg.height, msg.width, msg.encoding, msg.step = 4, 6, 'rgb8', 18
    msg.data = pixels.tobytes()
    pub.publish(msg)
    count += 1
    rclpy.spin_once(node, timeout_sec=0.05)
node.destroy_node()
rclpy.shutdown()
"""


@pytest.mark.ros
def test_image_between_processes():
    topic = 'stack_test_image'
    publisher = subprocess.Popen([sys.executable, '-c', PUBLISHER, topic])
    rclpy.init()
    received = []
    try:
        node = rclpy.create_node('stack_test_listener')
        node.create_subscription(Image, topic, received.append, 10)
        deadline = time.monotonic() + 25.0
        while not received and time.monotonic() < deadline:
            assert publisher.poll() is None, 'fixture publisher died'
            rclpy.spin_once(node, timeout_sec=0.1)
        node.destroy_node()
    finally:
        rclpy.shutdown()
        publisher.kill()
        publisher.wait()
    assert received, 'no Image arrived from the publisher process'
    msg = received[0]
    assert (msg.height, msg.width, msg.encoding, msg.step) == (4, 6, 'rgb8', 18)
    assert msg.header.frame_id == 'camera_optical_frame' and msg.header.stamp.sec == 1234
    expected = (np.arange(4 * 6 * 3) % 251).astype(np.uint8)
    np.testing.assert_array_equal(np.frombuffer(bytes(msg.data), np.uint8), expected)
