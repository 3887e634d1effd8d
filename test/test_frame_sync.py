"""The pairing rule that the live node and mono-depth-bag share, on an explicit clock."""

import pytest

from mono_depth_ros.ros.frame_sync import FrameSync, PENDING, SyncSettings
from mono_depth_ros.ros.node_logic import fallback_intrinsics
from mono_depth_ros.ros.params import check_value, ParamError

S = 1_000_000_000


def sync(fallback: str = '', timeout: float = 2.0) -> FrameSync:
    return FrameSync(SyncSettings(tolerance_ns=1000, wait=0.5, timeout=timeout,
                                  fallback=fallback))


def test_an_image_waits_for_its_first_camera_info_without_a_fallback():
    rule = sync()
    assert rule.add_image(1 * S, 'image1', now=1.0) == (None, 0)
    assert rule.add_image(2 * S, 'image2', now=9.0) == (None, 0)  # no guess, however long
    assert rule.waiting_for_info
    assert rule.add_info(2 * S, 'info2') == (('image2', 'info2'), 1)  # image1 given up
    assert not rule.waiting_for_info


def test_after_a_first_camera_info_an_unmatched_image_is_pending_until_its_deadline():
    rule = sync()
    rule.add_info(1 * S, 'info1')
    assert rule.add_image(1 * S, 'image1', now=1.0) == (('image1', 'info1'), 0)
    pair, _ = rule.add_image(2 * S, 'image2', now=2.0)
    assert pair == ('image2', PENDING) and rule.deadline(2.0) == 2.5
    assert rule.own_info(2 * S) is None
    assert rule.settle(2 * S) == ('info1', True)   # the latest stands in
    assert rule.add_info(2 * S, 'info2') == (None, 0)  # settled: never paired again
    pair, _ = rule.add_image(3 * S, 'image3', now=3.0)
    assert rule.add_info(3 * S, 'info3') == (('image3', 'info3'), 0)  # in time: its own


def test_the_fallback_stands_in_only_when_set_and_only_after_the_timeout():
    rule = sync(fallback='kitti', timeout=1.0)
    assert rule.add_image(1 * S, 'image1', now=10.0) == (None, 0)
    assert rule.add_image(2 * S, 'image2', now=11.0) == (('image2', None), 0)
    assert rule.on_fallback and not rule.waiting_for_info
    rule.add_info(3 * S, 'info3')
    assert not rule.on_fallback
    assert rule.add_image(4 * S, 'image4', now=30.0) == (('image4', PENDING), 0)


def test_fallback_intrinsics_kitti_or_given_and_none_refused():
    assert fallback_intrinsics((375, 1242), '700, 710, 600.5, 170') == (700, 710, 600.5, 170)
    assert fallback_intrinsics((375, 1242), 'kitti') == fallback_intrinsics((375, 1242))
    with pytest.raises(ValueError, match='fallback_intrinsics is not set'):
        fallback_intrinsics((375, 1242), '')


@pytest.mark.parametrize('value, match', [
    ('700, 710, 600', 'not four finite numbers'),
    ('700, nan, 600, 170', 'not four finite numbers'),
    ('0, 710, 600, 170', 'focal lengths must be positive'),
    ('KITTI please', 'not four numbers'),
    (7.0, 'must be a str'),
])
def test_a_bad_fallback_intrinsics_value_names_the_problem(value, match):
    with pytest.raises(ParamError, match=match):
        check_value('fallback_intrinsics', value)
    assert check_value('fallback_intrinsics', ' kitti ') == 'kitti'
    assert check_value('fallback_intrinsics', '1 2 3 4') == '1 2 3 4'
