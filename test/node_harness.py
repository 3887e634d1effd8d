"""Test harness for mono_depth_node over real DDS: the node in its own process, a test node here.

The test node publishes images and CameraInfo (reliable) and records every output message of the
node by topic; helpers spin until a condition holds. Imported by test_node_*.py.
"""

from collections import defaultdict
from pathlib import Path
import subprocess
import time

import cv2
from diagnostic_msgs.msg import DiagnosticArray
import numpy as np
import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from mono_depth_ros.ros import node_process
from mono_depth_ros.ros.depth_messages import (
    camera_topic,
    diagnostic_name,
    diagnostics_values,
    OUTPUT_TYPES,
)
from mono_depth_ros.ros.params import NODE_NAME

FRAME_ID = 'test_cam_optical_frame'


def start_node(namespace: str, log_path: Path, params: dict) -> subprocess.Popen:
    """Start `python -m mono_depth_ros.ros.node` in namespace with parameters, logged to a file."""
    return node_process.start_node(namespace, params, log_path)


def stop_node(process: subprocess.Popen) -> None:
    """SIGINT the node, then kill it if it does not exit."""
    node_process.stop_node(process, timeout=10)


def make_image(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A textured RGB test image (gradients plus noise), H×W×3 uint8."""
    rng = np.random.default_rng(seed)
    v, u = np.mgrid[0:height, 0:width]
    image = np.stack([u * 255 // max(width - 1, 1), v * 255 // max(height - 1, 1),
                      (u + v) % 256], axis=-1).astype(np.int32)
    image += rng.integers(-20, 20, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def image_msg(rgb: np.ndarray, encoding: str, stamp: tuple[int, int]) -> Image:
    """An Image of rgb in the given colour encoding (rgb8, bgr8, mono8, bgra8, rgba8)."""
    pixels = {'rgb8': rgb, 'bgr8': rgb[:, :, ::-1],
              'mono8': rgb[:, :, 0],
              'rgba8': np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)]),
              'bgra8': np.dstack([rgb[:, :, ::-1], np.full(rgb.shape[:2], 255, np.uint8)])
              }[encoding]
    pixels = np.ascontiguousarray(pixels)
    channels = 1 if pixels.ndim == 2 else pixels.shape[2]
    msg = Image(height=rgb.shape[0], width=rgb.shape[1], encoding=encoding,
                step=rgb.shape[1] * channels)
    msg.data = pixels.tobytes()
    set_header(msg, stamp)
    return msg


def compressed_msg(rgb: np.ndarray, stamp: tuple[int, int]) -> CompressedImage:
    """A PNG CompressedImage of rgb (lossless, so colours can be compared)."""
    ok, data = cv2.imencode('.png', cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    assert ok
    msg = CompressedImage(format='png')
    msg.data = data.tobytes()
    set_header(msg, stamp)
    return msg


def info_msg(intrinsics, size: tuple[int, int], stamp: tuple[int, int]) -> CameraInfo:
    """A CameraInfo with K and P from (fx, fy, cx, cy) for an image of size (H, W)."""
    fx, fy, cx, cy = intrinsics
    msg = CameraInfo(height=size[0], width=size[1], distortion_model='plumb_bob')
    msg.d = [0.0] * 5
    msg.k = [fx, 0.0, cx, 0.0, fy, cy, 0.0, 0.0, 1.0]
    msg.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    msg.p = [fx, 0.0, cx, 0.0, 0.0, fy, cy, 0.0, 0.0, 0.0, 1.0, 0.0]
    set_header(msg, stamp)
    return msg


def late_half_rate_frames(count: int, size: tuple[int, int], late_ns: int = 100_000_000,
                          period_ns: int = 1_000_000_000, start_sec: int = 100) -> list:
    """(receive ns, topic, message) of a camera whose CameraInfo comes for every other image
    only, late_ns after it; each CameraInfo has its own focal length (150 + 20 i pixels)."""
    items = []
    for i in range(count):
        stamp, receive = (start_sec + i, 0), start_sec * 1_000_000_000 + i * period_ns
        items.append((receive, 'image', image_msg(make_image(*size, seed=i), 'rgb8', stamp)))
        if i % 2 == 0:
            focal = 150.0 + 20.0 * i
            items.append((receive + late_ns, 'camera_info',
                          info_msg((focal, focal, size[1] / 2, size[0] / 2), size, stamp)))
    return items


def write_camera_bag(path: Path, items: list, namespace: str = '/cam') -> Path:
    """A bag of (receive ns, camera topic, message) items under namespace, written by rosbags."""
    from mono_depth_ros.bags.bag_io import BagWriter

    with BagWriter(path) as bag:
        for topic in dict.fromkeys(topic for _, topic, _ in items):
            kind = CameraInfo if topic.endswith('camera_info') else Image
            bag.add_topic(f'{namespace}/{topic}', kind)
        for receive, topic, msg in sorted(items, key=lambda item: item[0]):
            bag.write(f'{namespace}/{topic}', msg, receive)
    return path


def set_header(msg, stamp: tuple[int, int]) -> None:
    """Give msg the test optical frame and the stamp (sec, nanosec)."""
    msg.header.frame_id = FRAME_ID
    msg.header.stamp.sec, msg.header.stamp.nanosec = stamp


def stamp_of(msg) -> tuple[int, int]:
    """(sec, nanosec) of a message header."""
    return msg.header.stamp.sec, msg.header.stamp.nanosec


class Harness:
    """A test node in its own rclpy context that feeds and watches one camera of one
    mono_depth_node (camera '': the node's own topics)."""

    def __init__(self, namespace: str, compressed: bool = False,
                 outputs: tuple[str, ...] = tuple(OUTPUT_TYPES), camera: str = '') -> None:
        self.namespace, self.camera = namespace, camera
        self.context = Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node('node_test_harness', context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        image_type, image_topic = (CompressedImage, 'image/compressed') if compressed \
            else (Image, 'image')
        reliable = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
        self.image_pub = self.node.create_publisher(image_type, self.topic(image_topic),
                                                    reliable)
        self.info_pub = self.node.create_publisher(CameraInfo, self.topic('camera_info'),
                                                   reliable)
        self.received = defaultdict(list)
        self.diagnostics: list[dict[str, str]] = []
        self.statuses: list = []   # this camera's DiagnosticStatus messages (level, message)
        for topic in outputs:
            self.subscribe(topic)
        self.node.create_subscription(DiagnosticArray, '/diagnostics', self._on_diagnostics,
                                      50)

    def topic(self, name: str) -> str:
        """The absolute name of a topic of this camera of the node under test."""
        return f'{self.namespace}/{camera_topic(self.camera, name)}'

    def subscribe(self, topic: str) -> None:
        """Record every message on one output topic (reliable, like RViz and bags)."""
        reliable = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
        self.node.create_subscription(OUTPUT_TYPES[topic], self.topic(topic),
                                      self.received[topic].append, reliable)

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        values = diagnostics_values(msg, self.camera)
        if values:
            self.diagnostics.append(values)
            self.statuses += [status for status in msg.status
                              if status.name == diagnostic_name(self.camera)]

    def spin_until(self, predicate, timeout: float, process: subprocess.Popen | None = None
                   ) -> bool:
        """Spin until predicate() is true or timeout seconds pass; fail if the node died."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            if process is not None:
                assert process.poll() is None, 'mono_depth_node exited'
            self.executor.spin_once(timeout_sec=0.05)
        return predicate()

    def wait_for_node(self, process: subprocess.Popen, timeout: float = 60.0) -> None:
        """Wait until the node publishes diagnostics and has matched our publishers."""
        ready = self.spin_until(
            lambda: self.diagnostics and self.image_pub.get_subscription_count() > 0
            and self.info_pub.get_subscription_count() > 0, timeout, process)
        assert ready, 'mono_depth_node did not come up'

    def outputs_with_stamp(self, topic: str, stamp: tuple[int, int]) -> list:
        """Received messages on topic with the given stamp."""
        return [msg for msg in self.received[topic] if stamp_of(msg) == stamp]

    def send_until_output(self, process, image, info, topic: str = 'depth',
                          timeout: float = 30.0):
        """Publish image (+ info) until an output with its stamp arrives on topic; return it."""
        stamp = stamp_of(image)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if info is not None:
                self.info_pub.publish(info)
            self.image_pub.publish(image)
            if self.spin_until(lambda: self.outputs_with_stamp(topic, stamp), 3.0, process):
                return self.outputs_with_stamp(topic, stamp)[0]
        raise AssertionError(f'no {topic} output for the frame stamped {stamp}')

    def lifecycle(self, service: str, request):
        """Call one of the node's lifecycle services (get_state, change_state) and wait."""
        from lifecycle_msgs.srv import ChangeState, GetState

        kinds = {'get_state': GetState, 'change_state': ChangeState}
        client = self.node.create_client(kinds[service],
                                         f'{self.namespace}/{NODE_NAME}/{service}')
        try:
            assert self.spin_until(client.service_is_ready, 30.0), f'no {service} service'
            future = client.call_async(request)
            assert self.spin_until(future.done, 120.0), f'{service} did not answer'
            return future.result()
        finally:
            self.node.destroy_client(client)

    def set_parameter(self, name: str, value) -> bool:
        """Set one of the node's parameters through its set_parameters service; success."""
        from rcl_interfaces.srv import SetParameters
        from rclpy.parameter import Parameter

        client = self.node.create_client(SetParameters,
                                         f'{self.namespace}/{NODE_NAME}/set_parameters')
        try:
            assert self.spin_until(client.service_is_ready, 30.0), 'no set_parameters service'
            request = SetParameters.Request(
                parameters=[Parameter(name, value=value).to_parameter_msg()])
            future = client.call_async(request)
            assert self.spin_until(future.done, 30.0), 'set_parameters did not answer'
            return all(result.successful for result in future.result().results)
        finally:
            self.node.destroy_client(client)

    def get_state(self) -> str:
        """The node's lifecycle state label, from <node>/get_state."""
        from lifecycle_msgs.srv import GetState

        return self.lifecycle('get_state', GetState.Request()).current_state.label

    def change_state(self, transition: str) -> bool:
        """Ask <node>/change_state for a transition by label; whether it succeeded."""
        from lifecycle_msgs.srv import ChangeState

        request = ChangeState.Request()
        request.transition.label = transition
        return self.lifecycle('change_state', request).success

    def close(self) -> None:
        """Destroy the test node and its context."""
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)


def make_node(context, **params):
    """A MonoDepthNode in this process with parameter overrides."""
    from rclpy.parameter import Parameter

    from mono_depth_ros.ros.node import MonoDepthNode

    return MonoDepthNode(context=context, parameter_overrides=[
        Parameter(name, value=value) for name, value in params.items()])
