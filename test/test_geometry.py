"""Geometry core: back-projection, intrinsics scaling, filters, colour scale and PLY files."""

import cv2
import numpy as np
import pytest

from mono_depth_ros.core.geometry import (
    backproject,
    colorize_depth,
    decimate,
    filter_points,
    invert_transform,
    read_ply,
    rotation_to_quaternion,
    scale_intrinsics,
    write_ply,
)


def test_backproject_off_centre_principal_point_by_hand():
    depth = np.full((4, 6), np.nan, dtype=np.float32)
    depth[3, 5] = 10.0
    depth[0, 0] = 2.0
    points = backproject(depth, fx=100.0, fy=50.0, cx=1.5, cy=0.5)
    assert points.shape == (4, 6, 3) and points.dtype == np.float32
    # (u=5, v=3): x = (5 - 1.5)·10/100 = 0.35, y = (3 - 0.5)·10/50 = 0.5
    np.testing.assert_allclose(points[3, 5], [0.35, 0.5, 10.0], rtol=1e-6)
    # (u=0, v=0): x = -1.5·2/100 = -0.03, y = -0.5·2/50 = -0.02
    np.testing.assert_allclose(points[0, 0], [-0.03, -0.02, 2.0], rtol=1e-6)
    # not the image centre (2.5, 1.5), which would give x = 0.25, y = 0.3 at (5, 3)
    assert np.isnan(points[1, 1]).all()


def test_backproject_invalid_depth_is_nan():
    depth = np.array([[np.nan, 0.0, -1.0, np.inf, 3.0]], dtype=np.float32)
    points = backproject(depth, 10.0, 10.0, 0.0, 0.0)
    assert np.isnan(points[0, :4]).all()
    np.testing.assert_allclose(points[0, 4], [4 * 3 / 10, 0.0, 3.0])


def test_backproject_stride_keeps_original_pixel_coordinates():
    rng = np.random.default_rng(0)
    depth = rng.uniform(1, 50, (7, 9)).astype(np.float32)
    full = backproject(depth, 500.0, 480.0, 3.2, 2.7)
    strided = backproject(depth, 500.0, 480.0, 3.2, 2.7, stride=3)
    assert strided.shape == (3, 3, 3)
    np.testing.assert_array_equal(strided, full[::3, ::3])
    np.testing.assert_array_equal(decimate(depth, 3), depth[::3, ::3])


@pytest.mark.parametrize('kwargs', [dict(fx=0.0), dict(fy=-1.0), dict(cx=np.nan),
                                    dict(stride=0), dict(stride=1.5)])
def test_backproject_rejects_bad_arguments(kwargs):
    args = dict(fx=1.0, fy=1.0, cx=0.0, cy=0.0, stride=1) | kwargs
    with pytest.raises(ValueError):
        backproject(np.ones((2, 2)), **args)
    with pytest.raises(ValueError, match='H×W'):
        backproject(np.ones((2, 2, 3)), 1.0, 1.0, 0.0, 0.0)


def test_scale_intrinsics_pixel_centre_convention():
    # KITTI 1242x375 -> 621x187.5 would not be whole, so scale by 0.5 in x and 192/375 in y.
    fx, fy, cx, cy = scale_intrinsics(721.5377, 721.5377, 609.5593, 172.854,
                                      (375, 1242), (192, 621))
    assert fx == pytest.approx(360.76885)
    assert cx == pytest.approx((609.5593 + 0.5) * 0.5 - 0.5)  # 304.52965, not 304.77965
    assert cx == pytest.approx(304.52965)
    assert fy == pytest.approx(721.5377 * 192 / 375)
    assert cy == pytest.approx((172.854 + 0.5) * 192 / 375 - 0.5)


def test_scale_intrinsics_matches_cv2_resize():
    # A bright dot at the principal point stays at the scaled principal point after cv2.resize.
    image = np.zeros((40, 80), np.float32)
    image[10:12, 30:32] = 1.0  # centre of mass (30.5, 10.5) = (cx, cy)
    small = cv2.resize(image, (40, 20), interpolation=cv2.INTER_AREA)
    v, u = np.indices(small.shape)
    com = (np.sum(u * small) / small.sum(), np.sum(v * small) / small.sum())
    _, _, cx, cy = scale_intrinsics(1.0, 1.0, 30.5, 10.5, (40, 80), (20, 40))
    assert com == pytest.approx((cx, cy))


def test_filter_points_range_and_confidence():
    points = np.array([[[3.0, 4.0, 0.0], [0.0, 0.0, 5.1], [0.0, 0.0, 1.0]]], np.float32)
    confidence = np.array([[0.9, 0.9, 0.2]], np.float32)
    out = filter_points(points, max_range=5.0, confidence=confidence, min_confidence=0.5)
    np.testing.assert_array_equal(out[0, 0], [3, 4, 0])  # range exactly 5 is kept
    assert np.isnan(out[0, 1]).all() and np.isnan(out[0, 2]).all()
    assert not np.isnan(points).any()  # input untouched
    np.testing.assert_array_equal(filter_points(points), points)
    with pytest.raises(ValueError, match='confidence shape'):
        filter_points(points, confidence=confidence[:, :2], min_confidence=0.5)
    with pytest.raises(ValueError, match='no confidence'):
        filter_points(points, min_confidence=0.5)


def test_colorize_depth_fixed_metric_scale():
    turbo = cv2.applyColorMap(np.arange(256, dtype=np.uint8)[:, None], cv2.COLORMAP_TURBO)
    depth = np.array([[1.0, 80.0, 0.5, 200.0, np.nan, 0.0, 2.0]], np.float32)
    bgr = colorize_depth(depth, 1.0, 80.0)
    assert bgr.shape == (1, 7, 3) and bgr.dtype == np.uint8
    np.testing.assert_array_equal(bgr[0, 0], turbo[255, 0])  # nearest: dark red end
    np.testing.assert_array_equal(bgr[0, 1], turbo[0, 0])  # farthest: dark blue end
    np.testing.assert_array_equal(bgr[0, 2], turbo[255, 0])  # clipped
    np.testing.assert_array_equal(bgr[0, 3], turbo[0, 0])
    np.testing.assert_array_equal(bgr[0, 4:6], 0)  # no depth is black
    # 2 m: t = (1/2 - 1/80) / (1 - 1/80) = 0.49367 -> index 126, whatever else is in view
    np.testing.assert_array_equal(bgr[0, 6], turbo[126, 0])
    alone = colorize_depth(np.full((2, 2), 2.0, np.float32), 1.0, 80.0)
    np.testing.assert_array_equal(alone[0, 0], bgr[0, 6])
    beyond = colorize_depth(np.array([[np.inf, -np.inf]], np.float32), 1.0, 80.0)
    np.testing.assert_array_equal(beyond[0, 0], turbo[0, 0])  # beyond range: the far end
    np.testing.assert_array_equal(beyond[0, 1], 0)  # -inf is invalid: black
    with pytest.raises(ValueError, match='min_depth'):
        colorize_depth(depth, 0.0, 80.0)


def test_ply_round_trip_skips_nan(tmp_path):
    points = np.array([[[1.0, 2.0, 3.0], [np.nan, np.nan, np.nan]],
                       [[-1.5, 0.25, 7.0], [0.0, np.inf, 1.0]]], np.float32)
    colors = np.array([[[255, 0, 10], [1, 2, 3]], [[4, 5, 6], [7, 8, 9]]], np.uint8)
    assert write_ply(tmp_path / 'c.ply', points, colors) == 2
    raw = (tmp_path / 'c.ply').read_bytes()
    assert raw.startswith(b'ply\nformat binary_little_endian 1.0\nelement vertex 2\n')
    assert len(raw) - raw.index(b'end_header\n') - len(b'end_header\n') == 2 * 15
    read_points, read_colors = read_ply(tmp_path / 'c.ply')
    np.testing.assert_array_equal(read_points, [[1, 2, 3], [-1.5, 0.25, 7]])
    np.testing.assert_array_equal(read_colors, [[255, 0, 10], [4, 5, 6]])
    write_ply(tmp_path / 'p.ply', points)
    read_points, read_colors = read_ply(tmp_path / 'p.ply')
    assert read_colors is None and len(read_points) == 2
    with pytest.raises(ValueError, match='colors'):
        write_ply(tmp_path / 'bad.ply', points, colors.astype(np.float32))


def test_rotation_to_quaternion_by_hand():
    rz90 = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    np.testing.assert_allclose(rotation_to_quaternion(rz90), [0, 0, np.sqrt(0.5), np.sqrt(0.5)],
                               atol=1e-12)
    np.testing.assert_allclose(rotation_to_quaternion(np.eye(3)), [0, 0, 0, 1], atol=1e-12)
    rx180 = np.diag([1.0, -1.0, -1.0])
    np.testing.assert_allclose(np.abs(rotation_to_quaternion(rx180)), [1, 0, 0, 0], atol=1e-12)
    # optical frame (z forward, x right, y down) in a body frame (x forward, y left, z up)
    optical = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])
    np.testing.assert_allclose(rotation_to_quaternion(optical), [-0.5, 0.5, -0.5, 0.5],
                               atol=1e-12)
    with pytest.raises(ValueError, match='reflection'):
        rotation_to_quaternion(np.diag([1.0, 1.0, -1.0]))


def test_invert_transform():
    transform = np.eye(4)
    transform[:3, :3] = [[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]
    transform[:3, 3] = [1.0, 2.0, 3.0]
    inverse = invert_transform(transform)
    np.testing.assert_allclose(inverse[:3, 3], [-2.0, 1.0, -3.0])
    np.testing.assert_allclose(inverse @ transform, np.eye(4), atol=1e-12)


def test_rotation_to_quaternion_round_trip():
    rng = np.random.default_rng(3)
    for _ in range(20):
        q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
        rotation = q * np.sign(np.linalg.det(q))
        x, y, z, w = rotation_to_quaternion(rotation)
        back = np.array([
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ])
        np.testing.assert_allclose(back, rotation, atol=1e-9)
