"""Depth metrics: hand-computed values, the crops in pixels, limits, median scaling, SILog."""

import numpy as np
import pytest

from mono_depth_ros import compute_depth_metrics
from mono_depth_ros.core.metrics import average_metrics, crop_box, crop_mask, METRIC_NAMES


def test_hand_computed_values_on_three_pixels():
    gt = np.array([[2.0, 4.0, 10.0]])
    pred = np.array([[1.1, 3.5, 10.0]])
    m = compute_depth_metrics(gt, pred, crop=None)
    assert tuple(m) == METRIC_NAMES
    # |gt - pred| = 0.9, 0.5, 0; ratios max(gt/pred, pred/gt) = 1.818, 1.143, 1.
    assert m['abs_rel'] == pytest.approx((0.9 / 2 + 0.5 / 4) / 3)        # 0.191667
    assert m['sq_rel'] == pytest.approx((0.81 / 2 + 0.25 / 4) / 3)       # 0.155833
    assert m['rmse'] == pytest.approx(0.594419, abs=1e-6)                # sqrt(1.06 / 3)
    # d = ln(pred / gt) = -0.597837, -0.133531, 0
    assert m['rmse_log'] == pytest.approx(0.353666, abs=1e-6)            # sqrt(0.375240 / 3)
    assert m['log10'] == pytest.approx(0.105876, abs=1e-6)               # (0.259637+0.057992)/3
    # SILog = 100 sqrt(mean d² - (mean d)²) = 100 sqrt(0.125080 - 0.059433)
    assert m['silog'] == pytest.approx(25.6216, abs=1e-3)
    assert m['a1'] == pytest.approx(2 / 3)
    assert m['a2'] == pytest.approx(2 / 3)
    assert m['a3'] == pytest.approx(1.0)


def test_perfect_prediction():
    gt = np.linspace(1, 79, 40).reshape(5, 8)
    m = compute_depth_metrics(gt, gt.copy(), crop=None)
    for name in ('abs_rel', 'sq_rel', 'rmse', 'rmse_log', 'log10', 'silog'):
        assert m[name] == pytest.approx(0.0, abs=1e-12)
    assert m['a1'] == m['a2'] == m['a3'] == 1.0


def test_constant_ratio_is_scale_error_only():
    gt = np.array([[1.0, 2.0], [4.0, 8.0]])
    m = compute_depth_metrics(gt, gt * 1.1, crop=None)
    assert m['abs_rel'] == pytest.approx(0.1)
    assert m['sq_rel'] == pytest.approx(0.01 * gt.mean())
    assert m['rmse'] == pytest.approx(0.1 * np.sqrt((gt ** 2).mean()))
    assert m['rmse_log'] == pytest.approx(np.log(1.1))
    assert m['log10'] == pytest.approx(np.log10(1.1))
    assert m['silog'] == pytest.approx(0.0, abs=1e-6)   # scale-invariant: a global factor is free
    assert m['a1'] == 1.0
    m = compute_depth_metrics(gt, gt * 1.3, crop=None)
    assert (m['a1'], m['a2']) == (0.0, 1.0)


def test_silog_variant_is_pinned():
    # d = ln(pred / gt) = [ln 2, 0]: mean d² = ln²2 / 2, (mean d)² = ln²2 / 4 -> 100 ln2 / 2.
    m = compute_depth_metrics(np.array([[1.0, 1.0]]), np.array([[2.0, 1.0]]), crop=None)
    assert m['silog'] == pytest.approx(100 * np.log(2) / 2)   # 34.657, not 0.34657 or λ = 0.85


def test_median_scaling_removes_a_global_scale():
    gt = np.array([[3.0, 5.0, 7.0, 20.0]])
    scaled = compute_depth_metrics(gt, gt * 0.25, crop=None, median_scaling=True)
    assert scaled['abs_rel'] == pytest.approx(0.0, abs=1e-12)
    assert compute_depth_metrics(gt, gt * 0.25, crop=None)['abs_rel'] == pytest.approx(0.75)


def test_limits_and_clamping():
    gt = np.array([[0.0, 50.0, 10.0, 85.0, 80.0]])
    pred = np.array([[5.0, 200.0, 0.0, 1.0, 1.0]])
    m = compute_depth_metrics(gt, pred, crop=None)
    # Scored: gt 50 (pred clamped 200 -> 80, or -> 100 below) and gt 10 (pred clamped 0 -> 1e-3).
    assert m['abs_rel'] == pytest.approx((30 / 50 + (10 - 1e-3) / 10) / 2)
    m = compute_depth_metrics(gt, pred, crop=None, max_depth=100.0)
    assert m['abs_rel'] == pytest.approx((50 / 50 + (10 - 1e-3) / 10 + 84 / 85 + 79 / 80) / 4)


def test_crop_boxes_in_pixels_for_kitti_size():
    # Garg: rows 0.40810811·375 = 153.04 .. 0.99189189·375 = 371.96, cols 44.6 .. 1197.4.
    assert crop_box((375, 1242), 'garg') == (153, 371, 44, 1197)
    # Eigen: rows 0.3324324·375 = 124.66 .. 0.91351351·375 = 342.57.
    assert crop_box((375, 1242), 'eigen') == (124, 342, 44, 1197)
    mask = crop_mask((375, 1242), 'garg')
    assert mask.sum() == (371 - 153) * (1197 - 44)
    assert mask[153, 44] and mask[370, 1196]
    assert not mask[152, 44] and not mask[371, 44] and not mask[200, 43] and not mask[200, 1197]
    assert crop_mask((375, 1242), None).all()
    with pytest.raises(ValueError, match='unknown crop'):
        crop_mask((375, 1242), 'benchmark')


def test_crop_limits_which_pixels_are_scored():
    gt = np.full((375, 1242), 10.0)
    pred = gt.copy()
    pred[:153] = 20.0   # wrong only above the Garg crop
    assert compute_depth_metrics(gt, pred, crop='garg')['abs_rel'] == 0.0
    assert compute_depth_metrics(gt, pred, crop='eigen')['abs_rel'] == pytest.approx(
        (153 - 124) / (342 - 124))
    assert compute_depth_metrics(gt, pred, crop=None)['abs_rel'] == pytest.approx(153 / 375)


def test_bad_inputs():
    with pytest.raises(ValueError, match='one shape'):
        compute_depth_metrics(np.ones((4, 5)), np.ones((4, 6)))
    with pytest.raises(ValueError, match='nothing to score'):
        compute_depth_metrics(np.zeros((4, 5)), np.ones((4, 5)), crop=None)
    with pytest.raises(ValueError, match='no metrics'):
        average_metrics([])


def test_average_metrics_is_per_image():
    a = compute_depth_metrics(np.array([[1.0, 1.0]]), np.array([[1.0, 1.0]]), crop=None)
    b = compute_depth_metrics(np.array([[1.0]]), np.array([[2.0]]), crop=None)
    mean = average_metrics([a, b])
    assert mean['abs_rel'] == pytest.approx(0.5) and mean['a1'] == pytest.approx(0.5)
