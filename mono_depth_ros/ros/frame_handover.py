"""One camera's frames handed to the node's worker, each with its CameraInfo (no rclpy).

Callbacks add images and CameraInfo; the pairs that FrameSync makes go to the node's newest-frame
slots under the camera's name. An image whose CameraInfo has not arrived goes there PENDING once
the camera has sent a CameraInfo before: the worker waits for its own at most camera_info_wait
(resolve), then takes the camera's latest. A CameraInfo that DDS delivers late (seconds, when a
reliable sample is recovered by a heartbeat) then costs that wait, not the frame's whole latency.
"""

import threading
import time
from typing import Any

from mono_depth_ros.ros.frame_sync import FrameSync, PENDING, SyncSettings
from mono_depth_ros.ros.node_logic import FrameStats, LatestSlots
from mono_depth_ros.ros.stamps import header_ns


class FrameHandover:
    """A camera's FrameSync behind a lock, its slot in the node's LatestSlots and the wait for
    late CameraInfo. A frame is (message, arrival time in time.monotonic() seconds)."""

    def __init__(self, name: str, settings: SyncSettings, stats: FrameStats) -> None:
        self.name, self.stats = name, stats
        self.sync = FrameSync(settings)
        self._lock = threading.Lock()
        self._info_arrived = threading.Condition(self._lock)
        self._queued = self._taken = None   # newest frame queued, newest the worker took
        self._slots: LatestSlots | None = None

    def start(self, slots: LatestSlots) -> None:
        """Hand frames to slots, pairing afresh (nothing buffered before counts)."""
        with self._lock:
            self._slots = slots
            self.sync = FrameSync(self.sync.settings)
            self._queued = self._taken = None

    def stop(self) -> None:
        """Hand over nothing more."""
        with self._lock:
            self._slots = None

    def apply(self, settings: SyncSettings) -> None:
        """Take new parameter values."""
        with self._lock:
            self.sync.apply(settings)

    @property
    def on_fallback(self) -> bool:
        """Whether the newest image went with fallback_intrinsics."""
        with self._lock:
            return self.sync.on_fallback

    @property
    def waiting_for_info(self) -> bool:
        """Whether images came but no CameraInfo (and no fallback): nothing is processed."""
        with self._lock:
            return self.sync.waiting_for_info

    def add_info(self, info: Any) -> int:
        """Buffer a CameraInfo and queue the waiting image it completes; the number of older
        waiting images given up."""
        with self._lock:
            pair, given_up = self.sync.add_info(header_ns(info), info)
            self._info_arrived.notify_all()
        if pair is not None:
            self._enqueue(*pair)
        return given_up

    def add_image(self, msg: Any, now: float) -> int:
        """Queue an image that arrived at now (with its CameraInfo, PENDING or the fallback) or
        let it wait for a first CameraInfo; the number of waiting images given up."""
        frame = (msg, now)
        with self._lock:
            pair, given_up = self.sync.add_image(header_ns(msg), frame, now)
        if pair is not None:
            self._enqueue(*pair)
        return given_up

    def _enqueue(self, frame, info) -> None:
        """Put a frame (with its CameraInfo, PENDING or None: fallback) in this camera's slot.

        Frames are ordered by arrival (frame[1], monotonic; stamps may jump back when a bag
        loops): a replaced frame, or one older than the frame already queued, counts as dropped;
        the same frame again (its CameraInfo arrived after it was queued PENDING) replaces
        itself, or is left alone once the worker took it.
        """
        with self._lock:
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
                    self.sync.forget(header_ns(old[0][0]))

    def resolve(self, frame, info) -> Any:
        """Worker side: the CameraInfo of a frame taken from the slots (None: fallback).

        A PENDING frame waits until FrameSync's deadline for its own CameraInfo, then gets the
        camera's latest (counted in latest_camera_info). The frame is never queued again.
        """
        stamp = header_ns(frame[0])
        with self._lock:
            self._taken = frame
            if self._slots is not None:  # a copy queued while the worker took this one
                self._slots.discard(self.name, lambda item: item[0] is frame)
            if info is not PENDING:
                return info
            deadline = self.sync.deadline(frame[1])
            self._info_arrived.wait_for(lambda: self.sync.own_info(stamp) is not None,
                                        timeout=max(0.0, deadline - time.monotonic()))
            info, stood_in = self.sync.settle(stamp)
        if stood_in:
            self.stats.count('latest_camera_info')
        return info

