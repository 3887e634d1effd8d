"""One camera of mono_depth_node: its topics, stamp matching, intrinsics, counters, diagnostics.

mono_depth_node serves every name in its `cameras` parameter with one CameraChannel: camera C
reads C/image (or C/image/compressed) and C/camera_info and publishes C/depth, C/points, ...
(camera '' uses the node's own topics). Callbacks only match images with their CameraInfo and
put the pair in the node's newest-frame slots under the camera's name; the node's worker runs
the network on the frames of all cameras at once and hands each channel its result.

An image whose CameraInfo has not arrived yet goes to the slots too, once the camera has sent a
CameraInfo before: the worker waits for its own at most `camera_info_wait` seconds (resolve),
then takes the camera's latest. A CameraInfo that DDS delivers late (seconds, when a reliable
sample is recovered by a heartbeat) then costs that wait, not the frame's whole latency.
"""

import re
import threading
import time
from typing import Any

from diagnostic_msgs.msg import DiagnosticStatus
from rclpy.lifecycle import LifecycleNode
from rclpy.qos import qos_profile_sensor_data, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from mono_depth_ros.ros.conversions import ConversionError
from mono_depth_ros.ros.depth_messages import (
    camera_topic,
    diagnostic_status,
    OUTPUT_TOGGLES,
    OUTPUT_TYPES,
)
from mono_depth_ros.ros.node_logic import ErrorThrottle, FrameStats, LatestSlots, StampMatcher
from mono_depth_ros.ros.pipeline import FramePipeline, FrameResult, PreparedFrame
from mono_depth_ros.ros.stamps import header_ns, seconds_to_ns

# Slot item marker: the image's own CameraInfo had not arrived when it was queued.
PENDING = object()


def qos(name: str) -> QoSProfile:
    """sensor_data (best effort, keep last 5) or reliable (keep last 5)."""
    if name == 'sensor_data':
        return qos_profile_sensor_data
    return QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)


class CameraChannel:
    """One camera: lifecycle publishers (made at configure), subscriptions (while active),
    stamp matching, KITTI fallback, statistics and its diagnostic status.

    Parameters are read from node.params on every use, so run-time changes apply at once.
    """

    def __init__(self, node: LifecycleNode, name: str) -> None:
        self.node, self.name = node, name
        params = node.params
        compressed = params['image_transport'] == 'compressed'
        self.image_type = CompressedImage if compressed else Image
        self.image_topic = self.topic('image/compressed' if compressed else 'image')
        out_qos = qos(params['output_qos'])
        self.pubs = {topic: node.create_lifecycle_publisher(kind, self.topic(topic), out_qos)
                     for topic, kind in OUTPUT_TYPES.items()}
        self.stats = FrameStats()
        self.throttle = ErrorThrottle(params['error_log_period'])
        self.matcher = StampMatcher(seconds_to_ns(params['stamp_tolerance']))
        self._lock = threading.Lock()
        self._info_arrived = threading.Condition(self._lock)
        self._queued = self._taken = None   # newest frame queued, newest the worker took
        self._subs: list[Any] = []
        self._slots: LatestSlots | None = None
        self._first_image_at: float | None = None
        self._fallback_logged = self._unrectified_warned = False
        self._errors_reported = self._unmatched_reported = 0

    def topic(self, name: str) -> str:
        """A topic of this camera, relative to the node's namespace unless the name is
        absolute."""
        return camera_topic(self.name, name)

    def activate(self, slots: LatestSlots) -> None:
        """Subscribe to the image and CameraInfo; matched frames go to slots."""
        in_qos = qos(self.node.params['input_qos'])
        with self._lock:
            self._slots = slots
            self.matcher = StampMatcher(seconds_to_ns(self.node.params['stamp_tolerance']))
            self._first_image_at = None
            self._queued = self._taken = None
        self._subs = [
            self.node.create_subscription(self.image_type, self.image_topic, self._on_image,
                                          in_qos),
            self.node.create_subscription(CameraInfo, self.topic('camera_info'),
                                          self._on_camera_info, in_qos)]

    def deactivate(self) -> None:
        """Unsubscribe: from now on this camera takes no frames."""
        for sub in self._subs:
            self.node.destroy_subscription(sub)
        self._subs = []
        with self._lock:
            self._slots = None

    def destroy(self) -> None:
        """Unsubscribe and destroy the publishers (cleanup)."""
        self.deactivate()
        for pub in self.pubs.values():
            self.node.destroy_lifecycle_publisher(pub)
        self.pubs = {}

    def wanted(self) -> set[str]:
        """Output topics that are enabled and have at least one subscriber."""
        return {topic for topic, pub in self.pubs.items()
                if self.node.params[OUTPUT_TOGGLES[topic]] and pub.get_subscription_count() > 0}

    def _on_camera_info(self, msg: CameraInfo) -> None:
        """Buffer a CameraInfo; queue the waiting image it completes."""
        with self._lock:
            pair, given_up = self.matcher.add_info(header_ns(msg), msg)
            self._info_arrived.notify_all()
        self._count_unmatched(given_up)
        if pair is not None:
            self._enqueue(*pair)

    def _on_image(self, msg) -> None:
        """Match an image with its CameraInfo (or the fallback) and queue it for the worker."""
        now = time.monotonic()
        self.stats.count('received')
        with self._lock:
            self._first_image_at = self._first_image_at or now
        if not self.wanted():
            self.stats.count('skipped_no_subscribers')
            return
        frame, given_up = (msg, now), 0
        with self._lock:
            never = self.matcher.latest() is None  # no CameraInfo since activation
            if never and now - self._first_image_at >= self.node.params['camera_info_timeout']:
                self._warn_fallback()
                pair = (frame, None)
            else:
                pair, given_up = self.matcher.add_image(header_ns(msg), frame)
                if pair is None and not never:
                    pair = (frame, PENDING)   # the worker resolves it (resolve)
        self._count_unmatched(given_up)
        if pair is not None:
            self._enqueue(*pair)

    def _count_unmatched(self, count: int) -> None:
        """Count images given up for lack of a CameraInfo with their stamp; warn (throttled)."""
        if count:
            self.stats.count('dropped_unmatched', count)
            if self.throttle.should_log('unmatched', time.monotonic()):
                self.node.get_logger().warn(
                    f'dropped an image on {self._resolved(self.image_topic)}: no CameraInfo '
                    'arrived with its stamp (check the camera_info topic, or raise '
                    'stamp_tolerance)')

    def _warn_fallback(self) -> None:
        """Warn (once per silence) that the KITTI intrinsics stand in for CameraInfo."""
        if not self._fallback_logged:
            self._fallback_logged = True
            self.node.get_logger().warn(
                f'no CameraInfo on {self._resolved(self.topic("camera_info"))} for '
                f'{self.node.params["camera_info_timeout"]} s: using the KITTI intrinsics '
                'scaled to the image size; metric scale and the cloud are only right for a '
                'KITTI camera')

    def _resolved(self, topic: str) -> str:
        """The full name of one of this camera's topics (for log lines)."""
        return self.node.resolve_topic_name(topic)

    def _enqueue(self, frame, info) -> None:
        """Put a frame (with its CameraInfo, PENDING or None: fallback) in this camera's slot.

        Frames are ordered by arrival (frame[1], monotonic; stamps may jump back when a bag
        loops): a replaced frame, or one older than the frame already queued, counts as dropped;
        the same frame again (its CameraInfo arrived after it was queued PENDING) replaces
        itself, or is left alone once the worker took it.
        """
        with self._lock:
            if info is not None:
                self._fallback_logged = False
            slots = self._slots
            if slots is None or frame is self._taken:
                return
            if self._queued is not None and frame[1] < self._queued[1]:
                self.stats.count('dropped_busy')   # a newer frame is queued or done
                return
            self._queued = frame
            old = slots.swap(self.name, (frame, info))
            if old is not LatestSlots.NOTHING and old[0] is not frame:
                self.stats.count('dropped_busy')
                if old[1] is PENDING:  # its CameraInfo must not queue it again
                    self.matcher.discard_image(header_ns(old[0][0]))

    def resolve(self, frame, info) -> CameraInfo | None:
        """Worker side: the CameraInfo of a frame taken from the slots (None: fallback).

        A PENDING frame waits at most camera_info_wait for its own CameraInfo, then gets the
        camera's latest (counted in latest_camera_info). The frame is never queued again.
        """
        stamp = header_ns(frame[0])
        with self._lock:
            self._taken = frame
            if self._slots is not None:  # a copy queued while the worker took this one
                self._slots.discard(self.name, lambda item: item[0] is frame)
            if info is not PENDING:
                return info
            deadline = frame[1] + self.node.params['camera_info_wait']
            self._info_arrived.wait_for(lambda: self.matcher.info_for(stamp) is not None,
                                        timeout=max(0.0, deadline - time.monotonic()))
            info = self.matcher.info_for(stamp)
            self.matcher.discard_image(stamp)
            if info is None:
                info = self.matcher.latest()
                self.stats.count('latest_camera_info')
            return info

    def prepare(self, pipeline: FramePipeline, frame, info: CameraInfo | None
                ) -> PreparedFrame | None:
        """The frame ready for the network, or None (nobody listens, or bad input: counted)."""
        wanted = self.wanted()
        if not wanted:
            self.stats.count('skipped_no_subscribers')
            return None
        try:
            return pipeline.prepare(frame[0], info, wanted)
        except Exception as error:  # noqa: BLE001 - keep the node alive, report the failure
            self.failed(error)
            return None

    def failed(self, error: Exception) -> None:
        """Count and report a frame that could not be processed (bad input or a failure)."""
        if isinstance(error, ConversionError | ValueError):
            self.stats.count('invalid')
            self._report('input', str(error))
        else:
            self._report('failure', f'{type(error).__name__}: {error}')

    def _report(self, kind: str, message: str) -> None:
        """Record a bad input in the statistics and log it at most once per throttle period."""
        self.stats.error(message)
        key = kind + re.sub(r'[\d.]+', '#', message)
        if self.throttle.should_log(key, time.monotonic()):
            where = f' on {self._resolved(self.image_topic)}' if self.name else ''
            self.node.get_logger().error(f'dropped frame{where}: {message}')

    def publish(self, result: FrameResult, received_at: float, done_at: float) -> None:
        """Publish one frame's messages and record its latency."""
        if result.unrectified and not self._unrectified_warned:
            self._unrectified_warned = True
            self.node.get_logger().warn(
                f'CameraInfo of {self._resolved(self.topic("camera_info"))} has distortion but '
                'rectify is off: depth and cloud are computed as if the image were rectified. '
                'Set rectify:=auto, or feed image_rect.')
        for topic, message in result.messages.items():
            self.pubs[topic].publish(message)
        self.stats.processed_frame(received_at, done_at, result.beyond_fraction)

    def status(self, info: dict[str, str], state: str) -> DiagnosticStatus:
        """This camera's diagnostic status: counters, rate, latency, intrinsics source."""
        stats = self.stats.snapshot()
        stats['recent_error'] = stats['errors'] > self._errors_reported
        unmatched = stats['dropped_unmatched'] > self._unmatched_reported
        self._errors_reported = stats['errors']
        self._unmatched_reported = stats['dropped_unmatched']
        with self._lock:
            fallback = self._fallback_logged
        info = {**info, 'image_topic': self._resolved(self.image_topic),
                'intrinsics': 'KITTI fallback' if fallback else 'camera_info'}
        warning = 'no CameraInfo: using KITTI fallback intrinsics' if fallback else \
            'images without a CameraInfo of the same stamp' if unmatched else ''
        return diagnostic_status(stats, info, warning, camera=self.name, state=state)

