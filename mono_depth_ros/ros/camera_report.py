"""What one camera of mono_depth_node tells: counters, throttled log lines, its diagnostic status.

No rclpy: the logger is any object with warn and error (an rclpy logger in the node), clocks are
time.monotonic() seconds.
"""

import re
import time
from typing import Any

from diagnostic_msgs.msg import DiagnosticStatus

from mono_depth_ros.ros.conversions import ConversionError
from mono_depth_ros.ros.depth_messages import diagnostic_status
from mono_depth_ros.ros.node_logic import ErrorThrottle, FrameStats

# Where a camera's intrinsics come from (the diagnostics value 'intrinsics').
FROM_CAMERA_INFO, FROM_FALLBACK, WAITING = 'camera_info', 'fallback_intrinsics', 'waiting'


class CameraReport:
    """One camera's FrameStats, log lines (each kind at most once per log period) and status.

    image_topic and info_topic are the full topic names that log lines and the status name.
    """

    def __init__(self, name: str, logger: Any, log_period: float, image_topic: str,
                 info_topic: str) -> None:
        self.name, self.logger = name, logger
        self.image_topic, self.info_topic = image_topic, info_topic
        self.stats = FrameStats()
        self.throttle = ErrorThrottle(log_period)
        self.fallback = ''                  # the fallback_intrinsics value, for the text
        self.source = FROM_CAMERA_INFO      # where the newest frame's intrinsics came from
        self._unrectified_warned = False
        self._errors_reported = self._unmatched_reported = 0

    def unmatched(self, count: int) -> None:
        """Count images given up for lack of a CameraInfo with their stamp; warn (throttled)."""
        if count:
            self.stats.count('dropped_unmatched', count)
            if self.throttle.should_log('unmatched', time.monotonic()):
                self.logger.warn(
                    f'dropped an image on {self.image_topic}: no CameraInfo arrived with its '
                    'stamp (check the camera_info topic, or raise stamp_tolerance)')

    def intrinsics_from(self, source: str, timeout: float) -> None:
        """Note where the camera's intrinsics come from now; warn once when it becomes the
        fallback guess or waiting for a first CameraInfo."""
        if source == self.source:
            return
        self.source = source
        if source == FROM_FALLBACK:
            self.logger.warn(
                f'no CameraInfo on {self.info_topic} for {timeout} s: using fallback_intrinsics '
                f'{self.fallback!r}; metric scale and the cloud are only right if these are the '
                "camera's intrinsics")
        elif source == WAITING:
            self.logger.warn(self.waiting_text() + ' (nothing is processed until one arrives)')

    def waiting_text(self) -> str:
        """What a camera without any CameraInfo waits on, and how to make a guess instead."""
        return (f'waiting for CameraInfo on {self.info_topic}; set fallback_intrinsics (kitti, '
                "or 'fx, fy, cx, cy') to process images with a stated guess")

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
            where = f' on {self.image_topic}' if self.name else ''
            self.logger.error(f'dropped frame{where}: {message}')

    def unrectified(self) -> None:
        """Warn once that a distorted image is taken as rectified (rectify off)."""
        if not self._unrectified_warned:
            self._unrectified_warned = True
            self.logger.warn(
                f'CameraInfo of {self.info_topic} has distortion but rectify is off: depth and '
                'cloud are computed as if the image were rectified. Set rectify:=auto, or feed '
                'image_rect.')

    def status(self, info: dict[str, str], state: str) -> DiagnosticStatus:
        """This camera's diagnostic status: counters, rate, latency, intrinsics source."""
        stats = self.stats.snapshot()
        stats['recent_error'] = stats['errors'] > self._errors_reported
        unmatched = stats['dropped_unmatched'] > self._unmatched_reported
        self._errors_reported = stats['errors']
        self._unmatched_reported = stats['dropped_unmatched']
        source = {FROM_FALLBACK: f'fallback_intrinsics {self.fallback}',
                  WAITING: f'waiting for {self.info_topic}'}.get(self.source, self.source)
        info = {**info, 'image_topic': self.image_topic, 'intrinsics': source}
        if self.source == WAITING:
            warning = 'no CameraInfo: ' + self.waiting_text()
        elif self.source == FROM_FALLBACK:
            warning = f'no CameraInfo: using fallback_intrinsics {self.fallback}'
        else:
            warning = 'images without a CameraInfo of the same stamp' if unmatched else ''
        return diagnostic_status(stats, info, warning, camera=self.name, state=state)
