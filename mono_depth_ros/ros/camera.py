"""One camera of mono_depth_node: its topics, publishers and subscriptions.

mono_depth_node serves every name in its `cameras` parameter with one CameraChannel: camera C
reads C/image (or C/image/compressed) and C/camera_info and publishes C/depth, C/points, ...
(camera '' uses the node's own topics). The channel is the rclpy side only: its FrameHandover
pairs images with CameraInfo (ros.frame_sync, the rule mono-depth-bag runs too) and hands them
to the node's worker, and its CameraReport counts, logs and makes its diagnostic status.
"""

import time
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.lifecycle import LifecycleNode
from rclpy.qos import qos_profile_sensor_data, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from mono_depth_ros.core.stages import StageClock
from mono_depth_ros.ros.camera_report import (
    CameraReport,
    FROM_CAMERA_INFO,
    FROM_FALLBACK,
    WAITING,
)
from mono_depth_ros.ros.depth_messages import (
    camera_topic,
    OUTPUT_TOGGLES,
    OUTPUT_TYPES,
    stage_times_message,
    TOPIC_STAGE_TIMES,
)
from mono_depth_ros.ros.frame_handover import FrameHandover
from mono_depth_ros.ros.frame_sync import SyncSettings
from mono_depth_ros.ros.node_logic import LatestSlots
from mono_depth_ros.ros.pipeline import FramePipeline, FrameResult, PreparedFrame


def qos(name: str) -> QoSProfile:
    """sensor_data (best effort, keep last 5) or reliable (keep last 5)."""
    if name == 'sensor_data':
        return qos_profile_sensor_data
    return QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)


class CameraChannel:
    """One camera: lifecycle publishers (made at configure), subscriptions (while active), the
    hand-over of its frames and its report. Parameters arrive through apply_params."""

    def __init__(self, node: LifecycleNode, name: str) -> None:
        self.node, self.name = node, name
        params = node.params
        compressed = params['image_transport'] == 'compressed'
        self.image_type = CompressedImage if compressed else Image
        self.image_topic = self.topic('image/compressed' if compressed else 'image')
        self.input_qos = qos(params['input_qos'])
        out_qos = qos(params['output_qos'])
        self.pubs = {topic: node.create_lifecycle_publisher(kind, self.topic(topic), out_qos)
                     for topic, kind in OUTPUT_TYPES.items()}
        # Each frame's stage marks, published only while somebody subscribes (benchmarks).
        self.stage_pub = node.create_lifecycle_publisher(
            DiagnosticArray, self.topic(TOPIC_STAGE_TIMES),
            QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE))
        self.report = CameraReport(name, node.get_logger(), params['error_log_period'],
                                   node.resolve_topic_name(self.image_topic),
                                   node.resolve_topic_name(self.topic('camera_info')))
        self.stats = self.report.stats
        self.handover = FrameHandover(name, SyncSettings.from_params(params), self.stats)
        self._subs: list[Any] = []
        self.apply_params(params)

    def topic(self, name: str) -> str:
        """A topic of this camera, relative to the node's namespace unless the name is
        absolute."""
        return camera_topic(self.name, name)

    def apply_params(self, params: dict[str, Any]) -> None:
        """Take the node's parameter values (at configure and on every accepted change)."""
        self.toggles = {topic: params[toggle] for topic, toggle in OUTPUT_TOGGLES.items()}
        self.timeout = params['camera_info_timeout']
        self.report.throttle.period = params['error_log_period']
        self.report.fallback = params['fallback_intrinsics']
        self.handover.apply(SyncSettings.from_params(params))

    def activate(self, slots: LatestSlots) -> None:
        """Subscribe to the image and CameraInfo; matched frames go to slots."""
        self.handover.start(slots)
        self._subs = [
            self.node.create_subscription(self.image_type, self.image_topic, self._on_image,
                                          self.input_qos),
            self.node.create_subscription(CameraInfo, self.topic('camera_info'),
                                          self._on_camera_info, self.input_qos)]

    def deactivate(self) -> None:
        """Unsubscribe: from now on this camera takes no frames."""
        for sub in self._subs:
            self.node.destroy_subscription(sub)
        self._subs = []
        self.handover.stop()

    def destroy(self) -> None:
        """Unsubscribe and destroy the publishers (cleanup)."""
        self.deactivate()
        for pub in [*self.pubs.values(), self.stage_pub]:
            self.node.destroy_lifecycle_publisher(pub)
        self.pubs = {}

    def wanted(self) -> set[str]:
        """Output topics that are enabled and have at least one subscriber."""
        return {topic for topic, pub in self.pubs.items()
                if self.toggles[topic] and pub.get_subscription_count() > 0}

    def _on_camera_info(self, msg: CameraInfo) -> None:
        """Buffer a CameraInfo; queue the waiting image it completes."""
        self.report.unmatched(self.handover.add_info(msg))
        self.report.intrinsics_from(FROM_CAMERA_INFO, self.timeout)

    def _on_image(self, msg) -> None:
        """Pair an image with its CameraInfo (or the fallback) and queue it for the worker."""
        now = time.monotonic()
        self.stats.count('received')
        if not self.wanted():
            self.stats.count('skipped_no_subscribers')
            return
        self.report.unmatched(self.handover.add_image(msg, now))
        source = FROM_FALLBACK if self.handover.on_fallback else \
            WAITING if self.handover.waiting_for_info else FROM_CAMERA_INFO
        self.report.intrinsics_from(source, self.timeout)

    def resolve(self, frame, info) -> CameraInfo | None:
        """Worker side: the CameraInfo of a frame taken from the slots (FrameHandover.resolve)."""
        return self.handover.resolve(frame, info)

    def prepare(self, pipeline: FramePipeline, frame, info: CameraInfo | None,
                clock: StageClock | None = None) -> PreparedFrame | None:
        """The frame ready for the network, or None (nobody listens, or bad input: counted);
        clock records its stages."""
        wanted = self.wanted()
        if not wanted:
            self.stats.count('skipped_no_subscribers')
            return None
        try:
            return pipeline.prepare(frame[0], info, wanted, clock)
        except Exception as error:  # noqa: BLE001 - keep the node alive, report the failure
            self.failed(error)
            return None

    def failed(self, error: Exception) -> None:
        """Count and report a frame that could not be processed (bad input or a failure)."""
        self.report.failed(error)

    def publish(self, result: FrameResult, received_at: float, done_at: float) -> None:
        """Publish one frame's messages and record its latency."""
        if result.unrectified:
            self.report.unrectified()
        clock = result.clock
        for topic, message in result.messages.items():
            self.pubs[topic].publish(message)
            if clock is not None:
                clock.mark(f'publish: {topic}')
        self.stats.processed_frame(received_at, done_at, result.beyond_fraction)
        if clock is not None and result.messages and self.stage_pub.get_subscription_count():
            header = next(iter(result.messages.values())).header
            self.stage_pub.publish(stage_times_message(clock.marks, header))

    def status(self, info: dict[str, str], state: str) -> DiagnosticStatus:
        """This camera's diagnostic status (CameraReport.status)."""
        return self.report.status(info, state)
