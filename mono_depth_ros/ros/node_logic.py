"""The node's plumbing without rclpy: newest-frame slots, stamp matcher, statistics, throttling.

Everything here is pure Python so it is unit-tested directly; mono_depth_ros.ros.node wires it to
ROS. Stamps are integer nanoseconds; clocks are time.monotonic() seconds passed in explicitly.
"""

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
import threading
from typing import Any

import numpy as np

from mono_depth_ros.core.constants import KITTI_IMAGE_SIZE, KITTI_INTRINSICS
from mono_depth_ros.core.geometry import scale_intrinsics
from mono_depth_ros.core.stats import percentile
from mono_depth_ros.ros.params import FALLBACK_KITTI, parse_intrinsics

# Recent CameraInfo messages, and images waiting for theirs, kept for matching by stamp.
CAMERA_INFO_BUFFER = 10
# Frames over which rate and latency percentiles are computed.
STATS_WINDOW = 100
_NOTHING = object()


class LatestSlots:
    """One queue of one per key (camera): put() replaces that key's pending item (counted as
    dropped), take_all() waits for any and removes every pending item at once (one batch)."""

    NOTHING = _NOTHING

    def __init__(self) -> None:
        self._items: dict[Any, Any] = {}
        self._closed = False
        self._cond = threading.Condition()

    def put(self, key: Any, item: Any) -> bool:
        """Store item as key's pending one; return True if it replaced an unprocessed item."""
        return self.swap(key, item) is not _NOTHING

    def swap(self, key: Any, item: Any) -> Any:
        """Store item as key's pending one; return the unprocessed item it replaced, or
        LatestSlots.NOTHING."""
        with self._cond:
            old = self._items.get(key, _NOTHING)
            self._items[key] = item
            self._cond.notify()
            return old

    def discard(self, key: Any, predicate: Callable[[Any], bool]) -> None:
        """Remove key's pending item if predicate(item) is true."""
        with self._cond:
            if key in self._items and predicate(self._items[key]):
                del self._items[key]

    def take_all(self, timeout: float | None = None) -> dict[Any, Any]:
        """Remove and return every pending item by key, waiting up to timeout for one; {} if
        none came or the slots are closed and empty."""
        with self._cond:
            self._cond.wait_for(lambda: self._items or self._closed, timeout)
            items, self._items = self._items, {}
            return items

    @property
    def closed(self) -> bool:
        """True once close() was called."""
        return self._closed

    def close(self) -> None:
        """Wake every waiter; take_all() returns at once from now on."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()


class StampMatcher:
    """Pairs images with the CameraInfo of the same stamp (within a tolerance), either order.

    Keeps the last `buffer` infos and up to `buffer` images waiting for their info (the info
    topic may lag the image topic by a few frames, as message_filters' queue allows). When an
    info completes a waiting image, the images older than it are given up; so is the oldest
    waiting image when the queue is full. Both add_* methods return (pair or None, number of
    images given up).
    """

    def __init__(self, tolerance_ns: int, buffer: int = CAMERA_INFO_BUFFER) -> None:
        self.tolerance_ns = int(tolerance_ns)
        self._infos: deque[tuple[int, Any]] = deque(maxlen=buffer)
        self._waiting: deque[tuple[int, Any]] = deque()
        self._buffer = buffer

    def info_for(self, stamp_ns: int) -> Any:
        """The buffered info closest to stamp_ns within the tolerance, or None."""
        stamp_ns = int(stamp_ns)
        best, best_gap = None, None
        for info_stamp, info in self._infos:
            gap = abs(info_stamp - stamp_ns)
            if gap <= self.tolerance_ns and (best_gap is None or gap < best_gap):
                best, best_gap = info, gap
        return best

    def latest(self) -> Any:
        """The info that arrived last, or None."""
        return self._infos[-1][1] if self._infos else None

    def discard_image(self, stamp_ns: int) -> None:
        """Stop waiting for the info of the image with this stamp (it was taken without)."""
        self._waiting = deque(item for item in self._waiting if item[0] != int(stamp_ns))

    def add_info(self, stamp_ns: int, info: Any) -> tuple[tuple[Any, Any] | None, int]:
        """Buffer an info; pair it with its waiting image, giving up the older waiting ones."""
        stamp_ns = int(stamp_ns)
        self._infos.append((stamp_ns, info))
        for index, (image_stamp, image) in enumerate(self._waiting):
            if abs(image_stamp - stamp_ns) <= self.tolerance_ns:
                for _ in range(index + 1):
                    self._waiting.popleft()
                return (image, info), index
        return None, 0

    def add_image(self, stamp_ns: int, image: Any) -> tuple[tuple[Any, Any] | None, int]:
        """Pair an image with its buffered info, or queue it (giving up the oldest if full)."""
        info = self.info_for(stamp_ns)
        if info is not None:
            return (image, info), 0
        self._waiting.append((int(stamp_ns), image))
        if len(self._waiting) > self._buffer:
            self._waiting.popleft()
            return None, 1
        return None, 0


def fallback_intrinsics(image_size: tuple[int, int], spec: str = FALLBACK_KITTI
                        ) -> tuple[float, float, float, float]:
    """The intrinsics a fallback_intrinsics value stands in with at image_size (H, W): kitti is
    KITTI's left colour camera (constants.KITTI_INTRINSICS) scaled to the size, 'fx, fy, cx, cy'
    is taken as given; '' (no guess) raises ValueError."""
    if spec == FALLBACK_KITTI:
        return scale_intrinsics(*KITTI_INTRINSICS, KITTI_IMAGE_SIZE, image_size)
    if not spec:
        raise ValueError('no CameraInfo for this frame and fallback_intrinsics is not set')
    return parse_intrinsics(spec)


class ErrorThrottle:
    """Decides whether an error of a given kind is logged now (once per period per kind)."""

    def __init__(self, period: float) -> None:
        self.period = period
        self._last: dict[str, float] = {}

    def should_log(self, kind: str, now: float) -> bool:
        """True for the first error of this kind and then at most once per period."""
        last = self._last.get(kind)
        if last is not None and now - last < self.period:
            return False
        self._last[kind] = now
        return True


@dataclass
class FrameStats:
    """Counters, processing rate, in-to-out latency and beyond-range share (thread-safe)."""

    received: int = 0
    processed: int = 0
    dropped_busy: int = 0
    dropped_unmatched: int = 0
    latest_camera_info: int = 0   # processed with the camera's latest CameraInfo (theirs late)
    invalid: int = 0
    skipped_no_subscribers: int = 0
    batched: int = 0              # processed in one network batch with other cameras' frames
    errors: int = 0
    last_error: str = ''
    _latencies: deque = field(default_factory=lambda: deque(maxlen=STATS_WINDOW))
    _done_times: deque = field(default_factory=lambda: deque(maxlen=STATS_WINDOW))
    _beyond: deque = field(default_factory=lambda: deque(maxlen=STATS_WINDOW))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, name: str, amount: int = 1) -> None:
        """Add amount to one of the counters."""
        with self._lock:
            setattr(self, name, getattr(self, name) + amount)

    def error(self, message: str) -> None:
        """Record a bad input or a failure (kept as the last error)."""
        with self._lock:
            self.errors += 1
            self.last_error = message

    def processed_frame(self, received_at: float, done_at: float,
                        beyond_fraction: float = 0.0) -> None:
        """Record a processed frame that arrived at received_at and was published at done_at,
        with the share of its pixels published as beyond range (+inf)."""
        with self._lock:
            self.processed += 1
            self._latencies.append(done_at - received_at)
            self._done_times.append(done_at)
            self._beyond.append(float(beyond_fraction))

    def snapshot(self) -> dict[str, Any]:
        """Counters plus rate (Hz), latency p50/p95 (ms) and the mean share of pixels beyond
        range over the recent window."""
        with self._lock:
            latencies = np.array(self._latencies, dtype=np.float64) * 1e3
            times = list(self._done_times)
            beyond = list(self._beyond)
            result = {name: getattr(self, name) for name in (
                'received', 'processed', 'dropped_busy', 'dropped_unmatched',
                'latest_camera_info', 'invalid',
                'skipped_no_subscribers', 'batched', 'errors', 'last_error')}
        span = times[-1] - times[0] if len(times) > 1 else 0.0
        result['rate_hz'] = (len(times) - 1) / span if span > 0 else 0.0
        result['latency_p50_ms'] = percentile(latencies, 50, empty=0.0)
        result['latency_p95_ms'] = percentile(latencies, 95, empty=0.0)
        result['beyond_range_fraction'] = float(np.mean(beyond)) if beyond else 0.0
        return result
