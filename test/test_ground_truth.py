"""Ground truth from Velodyne: the real sample frame, checked against a brute-force projection."""

from pathlib import Path

import numpy as np
import pytest

from mono_depth_ros import generate_depth_map
from mono_depth_ros.datasets.kitti import load_velodyne, read_calib_file, SplitEntry

SAMPLE = Path(__file__).resolve().parent / 'data' / 'kitti_sample'
CALIB_DIR = SAMPLE / '2011_09_26'
VELO = SplitEntry('2011_09_26/2011_09_26_drive_0001_sync', 0, 'l').velodyne_path(SAMPLE)


def brute_force_depth(vel_depth: bool) -> dict[tuple[int, int], list[float]]:
    """Project every point one by one and collect the depths landing on each pixel."""
    cam = read_calib_file(CALIB_DIR / 'calib_cam_to_cam.txt')
    velo = read_calib_file(CALIB_DIR / 'calib_velo_to_cam.txt')
    rotation, translation = velo['R'].reshape(3, 3), velo['T']
    r_rect = cam['R_rect_00'].reshape(3, 3)
    p_rect = cam['P_rect_02'].reshape(3, 4)
    width, height = (int(v) for v in cam['S_rect_02'])
    points = load_velodyne(VELO).astype(np.float64)
    points = points[points[:, 0] >= 0]
    rect = (r_rect @ (points[:, :3] @ rotation.T + translation).T).T
    image = np.hstack([rect, np.ones((len(rect), 1))]) @ p_rect.T
    hits = {}
    for point, (x, y, z) in zip(points, image, strict=True):
        col, row = int(round(x / z)) - 1, int(round(y / z)) - 1
        if 0 <= col < width and 0 <= row < height:
            hits.setdefault((row, col), []).append(point[0] if vel_depth else z)
    return hits


@pytest.mark.parametrize('vel_depth, count, low, high', [
    (True, 16340, 3.328, 78.377), (False, 16340, 3.0496, 78.0970)])
def test_sample_frame_ground_truth(vel_depth, count, low, high):
    depth = generate_depth_map(CALIB_DIR, VELO, cam=2, vel_depth=vel_depth)
    assert depth.shape == (375, 1242) and depth.dtype == np.float32
    valid = depth > 0
    # A 64-beam scan of ~114 k points puts 16 360 points in the left image, on 16 340 pixels
    # (3.5 % of 1242×375); the top beam (+2°) lands near row 73, the road runs to the bottom.
    assert valid.sum() == count
    assert depth[valid].min() == pytest.approx(low, abs=1e-3)
    assert depth[valid].max() == pytest.approx(high, abs=1e-3)
    rows = np.nonzero(valid)[0]
    assert rows.min() == 73 and rows.max() == 374


@pytest.mark.parametrize('vel_depth', [True, False])
def test_every_valid_pixel_is_the_nearest_point_landing_on_it(vel_depth):
    depth = generate_depth_map(CALIB_DIR, VELO, cam=2, vel_depth=vel_depth)
    hits = brute_force_depth(vel_depth)
    assert sum(len(v) for v in hits.values()) == 16360
    assert sum(len(v) > 1 for v in hits.values()) == 20
    expected = np.zeros_like(depth)
    for (row, col), values in hits.items():
        expected[row, col] = max(min(values), 0.0)
    np.testing.assert_allclose(depth, expected, rtol=1e-6, atol=0)


def write_toy_calib(folder: Path, translation_z: float) -> None:
    """A 10×8 camera (f = 10, centre (5, 4)) looking along the Velodyne x axis."""
    (folder / 'calib_cam_to_cam.txt').write_text(
        'calib_time: 09-Jan-2012 13:57:47\n'
        'S_rect_02: 10 8\n'
        'R_rect_00: 1 0 0 0 1 0 0 0 1\n'
        'P_rect_02: 10 0 5 0 0 10 4 0 0 0 1 0\n')
    (folder / 'calib_velo_to_cam.txt').write_text(
        f'R: 0 -1 0 0 0 -1 1 0 0\nT: 0 0 {translation_z}\n')


def test_toy_scan_nearest_wins_and_points_behind_or_outside_are_dropped(tmp_path):
    write_toy_calib(tmp_path, 0.5)
    points = np.array([
        [5, 0, 0, 1],     # camera (0, 0, 5.5): u = 5, v = 4 -> pixel row 3, col 4
        [2, 0, 0, 1],     # same pixel, nearer: wins
        [4, 0.8, 0, 1],   # camera (-0.8, 0, 4.5): u = 3.22 -> col 2, row 3
        [-3, 0, 0, 1],    # behind the sensor (x < 0): dropped
        [1, -1, 0, 1],    # u = 10 / 1.5 + 5 = 11.7 -> col 11: outside the 10-pixel width
    ], dtype=np.float32)
    points.tofile(tmp_path / 'scan.bin')
    lidar = generate_depth_map(tmp_path, tmp_path / 'scan.bin', vel_depth=True)
    expected = np.zeros((8, 10), np.float32)
    expected[3, 4], expected[3, 2] = 2.0, 4.0
    np.testing.assert_array_equal(lidar, expected)
    camera = generate_depth_map(tmp_path, tmp_path / 'scan.bin', vel_depth=False)
    expected[3, 4], expected[3, 2] = 2.5, 4.5
    np.testing.assert_array_equal(camera, expected)


def test_negative_camera_depth_becomes_zero(tmp_path):
    write_toy_calib(tmp_path, -0.5)
    np.array([[0.2, 0, 0, 1]], dtype=np.float32).tofile(tmp_path / 'scan.bin')
    camera = generate_depth_map(tmp_path, tmp_path / 'scan.bin', vel_depth=False)
    assert not camera.any()
    lidar = generate_depth_map(tmp_path, tmp_path / 'scan.bin', vel_depth=True)
    assert lidar[3, 4] == pytest.approx(0.2) and np.count_nonzero(lidar) == 1
