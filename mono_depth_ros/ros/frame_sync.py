"""Which CameraInfo each image of a camera gets: one rule for mono_depth_node and mono-depth-bag.

Times are seconds on one clock that the caller passes in: time.monotonic() in the live node, the
bag's receive time in mono-depth-bag, so a bag gives the same pairs offline (deterministically)
as played to the node.

- An image and the CameraInfo of the same stamp (within stamp_tolerance) pair, in either order
  (node_logic.StampMatcher).
- Once the camera has sent a CameraInfo, an image without its own is PENDING: it waits at most
  camera_info_wait from its arrival for its own (deadline), then the camera's latest stands in
  (settle).
- Before any CameraInfo an image waits in the matcher for its own. Only with fallback_intrinsics
  set does an image camera_info_timeout after the first one go with that stated guess instead
  (paired with None); without it the camera processes nothing until a CameraInfo comes.
"""

from dataclasses import dataclass
from typing import Any

from mono_depth_ros.ros.node_logic import StampMatcher
from mono_depth_ros.ros.stamps import seconds_to_ns

# Pair marker: the image's own CameraInfo had not arrived; settle it after the deadline.
PENDING = object()


@dataclass(frozen=True)
class SyncSettings:
    """The node parameters of the rule: stamp_tolerance (ns), camera_info_wait,
    camera_info_timeout (seconds) and fallback_intrinsics ('' for none)."""

    tolerance_ns: int
    wait: float
    timeout: float
    fallback: str = ''

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> 'SyncSettings':
        """The settings of the node parameters (ros.params)."""
        return cls(seconds_to_ns(params['stamp_tolerance']), params['camera_info_wait'],
                   params['camera_info_timeout'], params['fallback_intrinsics'])


class FrameSync:
    """One camera's pairing state; not thread-safe (the live node holds its own lock)."""

    def __init__(self, settings: SyncSettings) -> None:
        self.settings = settings
        self.matcher = StampMatcher(settings.tolerance_ns)
        self.first_image_at: float | None = None
        self.on_fallback = False   # the newest image went with fallback_intrinsics

    def apply(self, settings: SyncSettings) -> None:
        """Take new parameter values; what is buffered stays."""
        self.settings = settings
        self.matcher.tolerance_ns = settings.tolerance_ns

    @property
    def has_info(self) -> bool:
        """Whether the camera has sent a CameraInfo (since this sync began)."""
        return self.matcher.latest() is not None

    @property
    def waiting_for_info(self) -> bool:
        """Images came, no CameraInfo ever did and no fallback stands in: nothing is processed."""
        return self.first_image_at is not None and not self.has_info and not self.on_fallback

    def add_info(self, stamp_ns: int, info: Any) -> tuple[tuple[Any, Any] | None, int]:
        """Buffer a CameraInfo: (the waiting image it completes with it, or None; the number of
        older waiting images given up)."""
        self.on_fallback = False
        return self.matcher.add_info(stamp_ns, info)

    def add_image(self, stamp_ns: int, frame: Any, now: float
                  ) -> tuple[tuple[Any, Any] | None, int]:
        """An image arrived at now: ((frame, its CameraInfo, PENDING or None for the fallback)
        or None while it waits for a first CameraInfo; the number of waiting images given up)."""
        if self.first_image_at is None:
            self.first_image_at = now
        if not self.has_info and self.settings.fallback \
                and now - self.first_image_at >= self.settings.timeout:
            self.on_fallback = True
            return (frame, None), 0
        pair, given_up = self.matcher.add_image(stamp_ns, frame)
        if pair is None and self.has_info:
            pair = (frame, PENDING)
        return pair, given_up

    def deadline(self, arrived_at: float) -> float:
        """When a PENDING image that arrived at arrived_at stops waiting for its own CameraInfo."""
        return arrived_at + self.settings.wait

    def own_info(self, stamp_ns: int) -> Any:
        """The buffered CameraInfo of this stamp, or None."""
        return self.matcher.info_for(stamp_ns)

    def settle(self, stamp_ns: int) -> tuple[Any, bool]:
        """A PENDING image's CameraInfo now: (its own, False) or (the latest, True); the image
        no longer waits for its own."""
        info = self.matcher.info_for(stamp_ns)
        self.matcher.discard_image(stamp_ns)
        if info is not None:
            return info, False
        return self.matcher.latest(), True

    def forget(self, stamp_ns: int) -> None:
        """Stop waiting for the CameraInfo of an image that was dropped."""
        self.matcher.discard_image(stamp_ns)
