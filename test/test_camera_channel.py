"""One camera's frame hand-over without DDS: an image whose CameraInfo is late waits at most
camera_info_wait, then the latest CameraInfo stands in; no frame is processed twice."""

import threading
import time

import pytest

pytest.importorskip('rclpy')
from node_harness import image_msg, info_msg, make_image  # noqa: E402

from mono_depth_ros.ros.camera import CameraChannel  # noqa: E402
from mono_depth_ros.ros.frame_sync import PENDING  # noqa: E402
from mono_depth_ros.ros.node_logic import LatestSlots  # noqa: E402
from mono_depth_ros.ros.params import load_defaults  # noqa: E402

SIZE = (8, 12)
OLD_K, NEW_K = (10.0, 10.0, 6.0, 4.0), (20.0, 20.0, 6.0, 4.0)


class FakePublisher:
    """Stands in for a lifecycle publisher with one subscriber."""

    def get_subscription_count(self) -> int:
        return 1


class FakeLogger:
    def __init__(self) -> None:
        self.lines = []

    def warn(self, text: str) -> None:
        self.lines.append(text)

    error = warn


class FakeNode:
    """What CameraChannel uses of the node: params, publishers, subscriptions, logger."""

    def __init__(self, **params) -> None:
        self.params = {**load_defaults(), **params}
        self.logger = FakeLogger()

    def create_lifecycle_publisher(self, kind, topic, qos):
        return FakePublisher()

    def create_subscription(self, kind, topic, callback, qos):
        return object()

    def destroy_subscription(self, sub) -> None:
        pass

    def get_logger(self) -> FakeLogger:
        return self.logger

    def resolve_topic_name(self, topic: str) -> str:
        return '/' + topic


def image(sec: int):
    return image_msg(make_image(*SIZE, seed=sec), 'rgb8', (sec, 0))


def info(sec: int, k=OLD_K):
    return info_msg(k, SIZE, (sec, 0))


def channel_with_slots(**params) -> tuple[CameraChannel, LatestSlots]:
    channel = CameraChannel(FakeNode(**params), '')
    slots = LatestSlots()
    channel.activate(slots)
    return channel, slots


def take(channel: CameraChannel, slots: LatestSlots):
    """What the node's worker does with this camera's slot: take, then resolve."""
    (frame, info_or_pending), = slots.take_all(timeout=0.0).values()
    return frame, info_or_pending, channel.resolve(frame, info_or_pending)


def test_a_frame_waits_for_its_own_late_camera_info_within_the_wait():
    channel, slots = channel_with_slots(camera_info_wait=5.0)
    channel._on_camera_info(info(1))
    channel._on_image(image(1))
    frame, first, resolved = take(channel, slots)
    assert first is not PENDING and resolved.k[0] == OLD_K[0]
    channel._on_image(image(2))  # its CameraInfo is not there yet: queued PENDING
    late = threading.Timer(0.2, channel._on_camera_info, args=(info(2, NEW_K),))
    late.start()
    started = time.monotonic()
    frame, pending, resolved = take(channel, slots)
    late.join()
    assert pending is PENDING and frame[0].header.stamp.sec == 2
    assert resolved.k[0] == NEW_K[0] and 0.1 < time.monotonic() - started < 4.0
    assert slots.take_all(timeout=0.0) == {}  # the pair that completed is not queued again
    stats = channel.stats.snapshot()
    assert stats['latest_camera_info'] == 0 and stats['dropped_busy'] == 0


def test_after_the_wait_the_latest_camera_info_stands_in_and_the_late_one_is_ignored():
    channel, slots = channel_with_slots(camera_info_wait=0.05)
    channel._on_camera_info(info(1))
    channel._on_image(image(1))
    take(channel, slots)
    channel._on_image(image(2))
    started = time.monotonic()
    frame, pending, resolved = take(channel, slots)
    assert pending is PENDING and resolved.k[0] == OLD_K[0]  # frame 1's calibration
    assert time.monotonic() - started < 1.0
    assert channel.stats.snapshot()['latest_camera_info'] == 1
    channel._on_camera_info(info(2, NEW_K))  # too late: frame 2 is done
    assert slots.take_all(timeout=0.0) == {}
    assert channel.stats.snapshot()['dropped_unmatched'] == 0


def test_a_newer_frame_replaces_a_pending_one_whose_info_then_cannot_queue_it():
    channel, slots = channel_with_slots(camera_info_wait=0.05)
    channel._on_camera_info(info(1))
    channel._on_image(image(2))
    channel._on_image(image(3))  # frame 2 was never taken: dropped
    assert channel.stats.snapshot()['dropped_busy'] == 1
    channel._on_camera_info(info(2))  # frame 2 is gone: nothing queued for it
    frame, pending, _ = take(channel, slots)
    assert frame[0].header.stamp.sec == 3 and pending is PENDING
    assert channel.stats.snapshot()['dropped_busy'] == 1


def test_a_pending_frame_whose_info_arrives_before_the_worker_is_queued_once_with_it():
    channel, slots = channel_with_slots(camera_info_wait=0.05)
    channel._on_camera_info(info(1))
    channel._on_image(image(2))
    channel._on_camera_info(info(2, NEW_K))  # completes the pending frame in its slot
    frame, matched, resolved = take(channel, slots)
    assert matched is not PENDING and resolved.k[0] == NEW_K[0]
    assert channel.stats.snapshot()['dropped_busy'] == 0
    assert channel.stats.snapshot()['latest_camera_info'] == 0


def test_without_any_camera_info_yet_an_image_waits_for_its_own():
    channel, slots = channel_with_slots(camera_info_wait=0.05)
    channel._on_image(image(1))
    assert slots.take_all(timeout=0.0) == {}  # nothing to stand in: it waits in the matcher
    channel._on_camera_info(info(1))
    frame, matched, resolved = take(channel, slots)
    assert frame[0].header.stamp.sec == 1 and resolved.k[0] == OLD_K[0]


def test_without_camera_info_or_fallback_nothing_is_processed_and_the_status_says_why():
    channel, slots = channel_with_slots(camera_info_wait=0.0, camera_info_timeout=0.0)
    for sec in range(1, 4):
        channel._on_image(image(sec))
    assert slots.take_all(timeout=0.0) == {}  # no guess: the images wait for their CameraInfo
    status = channel.status({}, 'active')
    assert status.level == status.WARN and '/camera_info' in status.message
    assert 'fallback_intrinsics' in status.message
    assert sum('waiting for CameraInfo on /camera_info' in line
               for line in channel.node.logger.lines) == 1  # logged once, not per image
    channel._on_camera_info(info(3))  # the newest waiting image gets its own
    frame, matched, resolved = take(channel, slots)
    assert frame[0].header.stamp.sec == 3 and resolved.k[0] == OLD_K[0]
    assert channel.status({}, 'active').message != status.message


def test_the_kitti_fallback_only_stands_in_for_a_camera_info_that_never_came():
    channel, slots = channel_with_slots(camera_info_wait=0.0, camera_info_timeout=0.0,
                                        fallback_intrinsics='kitti')
    channel._on_image(image(1))  # no CameraInfo at all, timeout 0: the stated guess
    frame, fallback, resolved = take(channel, slots)
    assert fallback is None and resolved is None
    assert any('using fallback_intrinsics' in line for line in channel.node.logger.lines)
    status = channel.status({}, 'active')
    assert status.level == status.WARN and 'fallback_intrinsics kitti' in status.message
    channel._on_camera_info(info(2))
    channel._on_image(image(2))
    take(channel, slots)
    channel.node.logger.lines.clear()
    channel._on_image(image(3))  # a silence past the timeout: the latest, not the fallback
    frame, pending, resolved = take(channel, slots)
    assert pending is PENDING and resolved.k[0] == OLD_K[0]
    assert not any('fallback' in line for line in channel.node.logger.lines)
