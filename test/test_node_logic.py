"""The node's pure parts: newest-frame slots, stamp matcher, throttle, statistics, outputs."""

import threading

import numpy as np
import pytest

from mono_depth_ros.core.constants import KITTI_INTRINSICS
from mono_depth_ros.core.geometry import backproject
from mono_depth_ros.inference.estimator import Prediction
from mono_depth_ros.inference.outputs import (
    compute_outputs,
    estimate_batch_outputs,
    estimate_outputs,
    mask_depth,
    OutputSettings,
)
from mono_depth_ros.ros.node_logic import (
    ErrorThrottle,
    fallback_intrinsics,
    FrameStats,
    LatestSlots,
    StampMatcher,
)


def test_latest_slots_keep_only_the_newest_per_camera_and_count_replacements():
    slots = LatestSlots()
    assert slots.put('cam_a', 'a1') is False
    assert slots.put('cam_a', 'a2') is True  # 'a1' was never taken: dropped
    assert slots.put('cam_b', 'b1') is False  # another camera's slot: nothing dropped
    assert slots.take_all(timeout=0.0) == {'cam_a': 'a2', 'cam_b': 'b1'}  # one batch
    assert slots.take_all(timeout=0.0) == {}
    assert slots.put('cam_a', 'a3') is False


def test_latest_slots_take_waits_for_a_put_from_another_thread():
    slots = LatestSlots()
    thread = threading.Thread(target=slots.put, args=('cam', 'frame'))
    thread.start()
    assert slots.take_all(timeout=10.0) == {'cam': 'frame'}
    thread.join()
    assert not slots.closed
    slots.close()
    assert slots.closed and slots.take_all(timeout=10.0) == {}


def test_matcher_pairs_in_either_order_within_tolerance():
    matcher = StampMatcher(tolerance_ns=1000)
    assert matcher.add_info(5_000, 'info5') == (None, 0)
    assert matcher.add_image(5_400, 'img5') == (('img5', 'info5'), 0)
    # image first, then its info
    assert matcher.add_image(9_000, 'img9') == (None, 0)
    assert matcher.add_info(9_001, 'info9') == (('img9', 'info9'), 0)
    # a stamp 2 µs away is another frame
    assert matcher.add_image(12_000, 'img12') == (None, 0)
    assert matcher.add_info(14_000, 'info14') == (None, 0)


def test_matcher_picks_the_closest_info():
    matcher = StampMatcher(tolerance_ns=10)
    matcher.add_info(100, 'far')
    matcher.add_info(104, 'near')
    assert matcher.add_image(103, 'img')[0] == ('img', 'near')


def test_matcher_waits_for_a_lagging_info_stream_and_gives_up_older_images():
    matcher = StampMatcher(tolerance_ns=0, buffer=3)
    for stamp in (1, 2, 3):  # the infos lag three frames behind the images
        assert matcher.add_image(stamp, f'img{stamp}') == (None, 0)
    assert matcher.add_image(4, 'img4') == (None, 1)         # the queue holds 3: img1 given up
    assert matcher.add_info(2, 'info2') == (('img2', 'info2'), 0)
    assert matcher.add_info(4, 'info4') == (('img4', 'info4'), 1)  # img3 is older: given up
    assert matcher.add_info(3, 'info3') == (None, 0)          # too late, nothing waits


def test_matcher_buffer_forgets_old_infos():
    matcher = StampMatcher(tolerance_ns=0, buffer=3)
    for stamp in range(5):
        matcher.add_info(stamp, f'info{stamp}')
    assert matcher.add_image(1, 'img')[0] is None
    assert matcher.add_image(4, 'img')[0] == ('img', 'info4')


def test_fallback_intrinsics_are_kitti_scaled_to_the_image():
    fx, fy, cx, cy = KITTI_INTRINSICS
    assert fallback_intrinsics((375, 1242)) == pytest.approx((fx, fy, cx, cy))
    half = fallback_intrinsics((375 // 2 * 1, 621))
    assert half[0] == pytest.approx(fx / 2)
    assert half[2] == pytest.approx((cx + 0.5) / 2 - 0.5)


def test_error_throttle_once_per_period_per_kind():
    throttle = ErrorThrottle(period=5.0)
    assert throttle.should_log('encoding', 100.0)
    assert not throttle.should_log('encoding', 104.9)
    assert throttle.should_log('zero K', 104.9)
    assert throttle.should_log('encoding', 105.0)


def test_frame_stats_rate_latency_and_counters():
    stats = FrameStats()
    for i in range(11):  # done every 0.1 s, latency 20 ms except one 120 ms frame
        latency = 0.12 if i == 5 else 0.02
        stats.processed_frame(10.0 + 0.1 * i - latency, 10.0 + 0.1 * i)
    stats.count('dropped_busy', 3)
    stats.error('unsupported image encoding')
    snap = stats.snapshot()
    assert snap['processed'] == 11 and snap['dropped_busy'] == 3 and snap['errors'] == 1
    assert snap['rate_hz'] == pytest.approx(10.0)
    assert snap['latency_p50_ms'] == pytest.approx(20.0)
    assert snap['latency_p95_ms'] == pytest.approx(70.0)  # numpy linear percentile of 10×20, 120
    assert snap['last_error'] == 'unsupported image encoding'
    assert snap['beyond_range_fraction'] == 0.0
    stats.processed_frame(11.0, 11.1, beyond_fraction=0.25)
    stats.processed_frame(11.1, 11.2, beyond_fraction=0.35)
    # mean over the window: 11 frames with none beyond range, then 0.25 and 0.35
    assert stats.snapshot()['beyond_range_fraction'] == pytest.approx(0.6 / 13)


def test_mask_depth_nan_outside_range_and_inf_beyond_range():
    depth = np.array([[0.05, 1.0, 90.0, -np.inf], [np.inf, 80.0, -1.0, np.nan]], np.float32)
    masked = mask_depth(depth, 0.1, 80.0)
    assert masked.dtype == np.float32
    np.testing.assert_array_equal(np.isnan(masked), [[True, False, True, True],
                                                     [False, False, True, True]])
    assert masked[1, 1] == 80.0 and masked[0, 1] == 1.0
    assert np.isposinf(masked[1, 0])  # beyond range (REP 117) is kept, not invalid


def test_outputs_cloud_uses_calibrated_principal_point_and_stride():
    depth = np.full((6, 8), 4.0, np.float32)
    depth[1, 2] = 2.0
    rgb = np.zeros((6, 8, 3), np.uint8)
    rgb[..., 0] = np.arange(8, dtype=np.uint8)[None, :] * 10
    fx, fy, cx, cy = 100.0, 50.0, 1.5, 4.25  # far from the image centre (3.5, 2.5)
    out = compute_outputs(depth, None, rgb, (fx, fy, cx, cy), OutputSettings(cloud_stride=1))
    assert out.points.shape == (6, 8, 3) and out.colors.shape == (6, 8, 3)
    # pixel (u=2, v=1): x = (2 - 1.5)·2/100 = 0.01, y = (1 - 4.25)·2/50 = -0.13
    np.testing.assert_allclose(out.points[1, 2], [0.01, -0.13, 2.0], rtol=1e-6)
    assert out.colors[1, 2, 0] == 20
    assert out.colorized.shape == (6, 8, 3) and out.confidence is None
    strided = compute_outputs(depth, None, rgb, (fx, fy, cx, cy), OutputSettings(cloud_stride=2))
    assert strided.points.shape == (3, 4, 3)
    # strided row 1, column 3 is pixel (u=6, v=2): x = 4.5·4/100, y = -2.25·4/50
    np.testing.assert_allclose(strided.points[1, 3], [0.18, -0.18, 4.0], rtol=1e-6)
    assert strided.colors[1, 3, 0] == 60


def test_outputs_filter_by_range_and_confidence_unorganised():
    # 2×2 blocks of 12×12 pixels: 2 m, 30 m / 5 m, 0.01 m
    blocks = np.array([[2.0, 30.0], [5.0, 0.01]], np.float32)
    depth = np.kron(blocks, np.ones((12, 12), np.float32))
    confidence = np.kron(np.array([[0.9, 0.9], [0.1, 0.9]], np.float32),
                         np.ones((12, 12), np.float32))
    rgb = np.zeros((24, 24, 3), np.uint8)
    settings = OutputSettings(min_depth=0.1, max_depth=80.0, max_range=20.0,
                              min_confidence=0.5, cloud_organized=False)
    out = compute_outputs(depth, confidence, rgb, (10.0, 10.0, 0.0, 0.0), settings)
    # 30 m is out of range, 5 m has low confidence, 0.01 m is below min_depth; of the 2 m
    # block, the confidence near its depth edges (within 4 pixels of rows/columns 11|12) is
    # lowered below 0.5: rows and columns 0..6 are left
    assert out.points.shape == (49, 3) and (out.points[:, 2] == 2.0).all()
    assert np.isnan(out.depth[23, 23]) and out.depth[0, 23] == 30.0
    # row 7 sees the 2 → 5 m jump of rows 11|12 (1.5): 0.9 / (1 + 1.5 / 0.03)
    assert out.confidence[0, 0] == pytest.approx(0.9, rel=1e-6)
    assert out.confidence[7, 0] == pytest.approx(0.9 / 51, rel=1e-5)
    organised = compute_outputs(depth, confidence, rgb, (10.0, 10.0, 0.0, 0.0),
                                OutputSettings(max_range=20.0, min_confidence=0.5))
    kept = np.isfinite(organised.points[..., 2])
    assert kept[:7, :7].all() and kept.sum() == 49


def test_outputs_from_a_precomputed_grid_equal_the_numpy_cloud():
    rng = np.random.default_rng(3)
    depth = rng.uniform(0.05, 100.0, (7, 9)).astype(np.float32)
    confidence = rng.uniform(0, 1, (7, 9)).astype(np.float32)
    rgb = rng.integers(0, 256, (7, 9, 3), dtype=np.uint8)
    intrinsics = (50.0, 40.0, 3.5, 2.0)
    for settings in (OutputSettings(cloud_stride=2, max_range=40.0, min_confidence=0.3),
                     OutputSettings(cloud_stride=1, cloud_organized=False)):
        grid = backproject(mask_depth(depth, settings.min_depth, settings.max_depth),
                           *intrinsics, stride=settings.cloud_stride)
        want = compute_outputs(depth, confidence, rgb, intrinsics, settings)
        have = compute_outputs(depth, confidence, rgb, intrinsics, settings, grid=grid)
        np.testing.assert_array_equal(have.points, want.points)
        np.testing.assert_array_equal(have.colors, want.colors)
    with pytest.raises(ValueError, match=r'grid has shape \(7, 9, 3\), expected \(4, 5, 3\)'):
        compute_outputs(depth, None, rgb, intrinsics, OutputSettings(cloud_stride=2),
                        grid=np.zeros((7, 9, 3), np.float32))


class RecordingEstimator:
    """Depth fx / 10 m (10 m without fx) and confidence 0.5; records which method was called
    and whether confidence was asked."""

    def __init__(self):
        self.calls = []

    def predict_batch(self, images, fxs=None, confidence=True):
        self.calls.append(('predict_batch', len(images), confidence))
        fxs = fxs or [None] * len(images)
        return [Prediction(np.full(image.shape[:2], 10.0 if fx is None else fx / 10, np.float32),
                           np.full(image.shape[:2], 0.5, np.float32) if confidence else None)
                for image, fx in zip(images, fxs, strict=True)]

    def predict(self, image, fx=None, confidence=True):
        self.calls.append(('predict', confidence))
        depth = np.full(image.shape[:2], 10.0 if fx is None else fx / 10, np.float32)
        return Prediction(depth, np.full_like(depth, 0.5) if confidence else None)

    def predict_points(self, image, fx, fy, cx, cy, stride=1, depth_range=None,
                       confidence=True):
        self.calls.append(('predict_points', confidence, stride, depth_range))
        prediction = Prediction(np.full(image.shape[:2], fx / 10, np.float32),
                                np.full(image.shape[:2], 0.5, np.float32) if confidence
                                else None)
        return prediction, backproject(prediction.depth, fx, fy, cx, cy, stride=stride)


def test_estimate_outputs_asks_only_for_what_is_published():
    rgb = np.zeros((6, 8, 3), np.uint8)
    intrinsics = (100.0, 100.0, 4.0, 3.0)
    estimator = RecordingEstimator()
    out = estimate_outputs(estimator, rgb, intrinsics, OutputSettings(cloud_stride=2),
                           confidence=False)
    assert estimator.calls == [('predict_points', False, 2, (0.1, 80.0))]
    assert out.confidence is None and out.points.shape == (3, 4, 3)
    np.testing.assert_allclose(out.points[1, 1], [-0.2, -0.1, 10.0], rtol=1e-6)
    estimate_outputs(estimator, rgb, intrinsics, OutputSettings(min_confidence=0.6),
                     confidence=False)  # the cloud filter needs confidence
    assert estimator.calls[-1][:2] == ('predict_points', True)
    out = estimate_outputs(estimator, rgb, intrinsics, OutputSettings(points=False),
                           confidence=True)
    assert estimator.calls[-1] == ('predict', True) and out.points is None
    assert out.confidence is not None


def test_a_batch_of_cameras_gives_each_frame_its_single_frame_outputs():
    rng = np.random.default_rng(4)
    images = [rng.integers(0, 256, (6, 8, 3), dtype=np.uint8),
              rng.integers(0, 256, (9, 12, 3), dtype=np.uint8)]  # two cameras, two sizes
    intrinsics = [(100.0, 100.0, 4.0, 3.0), (300.0, 280.0, 5.5, 4.25)]
    settings = [OutputSettings(cloud_stride=2, max_range=25.0),
                OutputSettings(cloud_organized=False, colorized=False, points=False)]
    valid = [None, rng.uniform(size=(9, 12)) > 0.2]
    estimator = RecordingEstimator()
    batch = estimate_batch_outputs(estimator, images, intrinsics, settings, [False, True], valid)
    assert estimator.calls == [('predict_batch', 2, True)]  # one network call for both
    for i, have in enumerate(batch):
        want = estimate_outputs(RecordingEstimator(), images[i], intrinsics[i], settings[i],
                                confidence=i == 1, valid=valid[i])
        np.testing.assert_array_equal(have.depth, want.depth)
        for name in ('colorized', 'points', 'colors'):
            got, expected = getattr(have, name), getattr(want, name)
            assert (got is None) == (expected is None), name
            if expected is not None:
                np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(batch[0].depth, 10.0)   # each frame its own focal scaling
    assert np.nanmax(batch[1].depth) == pytest.approx(30.0)
    assert np.isnan(batch[1].depth[~valid[1]]).all()
    estimate_batch_outputs(estimator, images, intrinsics, settings, [False, False], valid)
    assert estimator.calls[-1] == ('predict_batch', 2, False)  # nobody wants confidence


def test_latest_slots_swap_returns_the_replaced_item_and_discard_checks_it():
    slots = LatestSlots()
    assert slots.swap('cam', 'a') is LatestSlots.NOTHING
    assert slots.swap('cam', 'b') == 'a'
    slots.discard('cam', lambda item: item == 'a')  # not the pending one: kept
    slots.discard('other', lambda item: True)       # no such key: nothing happens
    assert slots.take_all(timeout=0.0) == {'cam': 'b'}
    slots.put('cam', 'c')
    slots.discard('cam', lambda item: item == 'c')
    assert slots.take_all(timeout=0.0) == {}


def test_stamp_matcher_latest_info_for_and_discard_image():
    matcher = StampMatcher(tolerance_ns=10)
    assert matcher.latest() is None
    matcher.add_info(100, 'info100')
    matcher.add_info(200, 'info200')
    assert matcher.latest() == 'info200' and matcher.info_for(195) == 'info200'
    assert matcher.info_for(150) is None
    assert matcher.add_image(300, 'img300') == (None, 0)
    matcher.discard_image(300)  # taken without its info: the info must not pair it later
    assert matcher.add_info(300, 'info300') == (None, 0)
