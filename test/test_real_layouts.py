"""Real-frame layouts (KITTI object, tracking, KITTI-360) on hand-built frames: a Velodyne point
at a known position lands on the pixel and depth worked out by hand; mono-depth-eval scores it."""

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from mono_depth_ros.datasets.dataset import LidarFrameDataset
from mono_depth_ros.datasets.kitti.io import KittiFormatError
from mono_depth_ros.datasets.kitti.layouts import detect_layout, list_frames
from mono_depth_ros.datasets.sources import build_dataset
from mono_depth_ros.tools import evaluate

F, CX, CY = 700.0, 50.0, 30.0
SIZE = (60, 100)
# Velodyne (x forward, y left, z up) → camera (x right, y down, z forward).
VELO_TO_CAM = np.array([[0.0, -1, 0, 0], [0, 0, -1, 0], [1, 0, 0, 0]])
P2 = np.array([[F, 0, CX, 0], [0, F, CY, 0], [0, 0, 1, 0]])
# (x, y, z) in the Velodyne frame → camera (0.5, -0.2, 14): u = 700·0.5/14 + 50 = 75,
# v = 700·(−0.2)/14 + 30 = 20; KITTI pixel = round(u) − 1, round(v) − 1 = (74, 19).
POINT = (14.0, -0.5, 0.2)
PIXEL, DEPTH = (19, 74), 14.0
# A second point on the same pixel, farther: the nearest return wins.
FAR_POINT = (28.0, -1.0, 0.4)


def numbers(matrix: np.ndarray) -> str:
    """A matrix as one line of numbers."""
    return ' '.join(f'{v:.12e}' for v in np.asarray(matrix).ravel())


def write_frame(image_path: Path, scan_path: Path) -> None:
    """A grey image and a scan of the two points (x, y, z, reflectance)."""
    image_path.parent.mkdir(parents=True, exist_ok=True)
    scan_path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(image_path), np.full((*SIZE, 3), 128, np.uint8))
    np.array([[*POINT, 0.5], [*FAR_POINT, 0.5]], np.float32).tofile(scan_path)


def object_root(root: Path) -> Path:
    """A KITTI object folder (training/) of one frame."""
    base = root / 'training'
    write_frame(base / 'image_2' / '000007.png', base / 'velodyne' / '000007.bin')
    (base / 'calib').mkdir(parents=True)
    (base / 'calib' / '000007.txt').write_text(
        f'P0: {numbers(P2)}\nP2: {numbers(P2)}\nR0_rect: {numbers(np.eye(3))}\n'
        f'Tr_velo_to_cam: {numbers(VELO_TO_CAM)}\n')
    return root


def tracking_root(root: Path) -> Path:
    """A KITTI tracking folder: sequence 0003, keys without a colon as the devkit writes them."""
    write_frame(root / 'image_02' / '0003' / '000010.png',
                root / 'velodyne' / '0003' / '000010.bin')
    (root / 'calib').mkdir(parents=True)
    (root / 'calib' / '0003.txt').write_text(
        f'P2: {numbers(P2)}\nR_rect {numbers(np.eye(3))}\nTr_velo_cam {numbers(VELO_TO_CAM)}\n')
    return root


def kitti360_root(root: Path) -> Path:
    """A KITTI-360 folder: cam_to_velo is the inverse of VELO_TO_CAM."""
    drive = '2013_05_28_drive_0000_sync'
    write_frame(root / 'data_2d_raw' / drive / 'image_00' / 'data_rect' / '0000000005.png',
                root / 'data_3d_raw' / drive / 'velodyne_points' / 'data' / '0000000005.bin')
    (root / 'calibration').mkdir(parents=True)
    (root / 'calibration' / 'perspective.txt').write_text(
        'calib_time: 09-Jan-2012 13:57:47\n'
        f'P_rect_00: {numbers(P2)}\nR_rect_00: {numbers(np.eye(3))}\nS_rect_00: 100 60\n')
    cam_to_velo = np.linalg.inv(np.vstack([VELO_TO_CAM, [0, 0, 0, 1]]))[:3]
    (root / 'calibration' / 'calib_cam_to_velo.txt').write_text(numbers(cam_to_velo) + '\n')
    return root


LAYOUT_ROOTS = {'object': object_root, 'tracking': tracking_root, 'kitti360': kitti360_root}


@pytest.mark.parametrize('layout', sorted(LAYOUT_ROOTS))
def test_a_point_lands_on_the_pixel_and_depth_worked_out_by_hand(tmp_path, layout):
    root = LAYOUT_ROOTS[layout](tmp_path)
    assert detect_layout(root) == layout
    (frame,) = list_frames(root)
    assert frame.name.startswith(layout)
    assert frame.intrinsics() == (F, F, CX, CY)
    depth = frame.ground_truth()
    assert depth.shape == SIZE
    assert np.count_nonzero(depth) == 1            # the far point falls on the same pixel
    assert depth[PIXEL] == pytest.approx(DEPTH, abs=1e-5)


def test_a_rotated_rectification_moves_the_point(tmp_path):
    root = object_root(tmp_path)
    calib = root / 'training' / 'calib' / '000007.txt'
    angle = np.deg2rad(0.5)                        # R0_rect about the camera x axis
    r0 = np.array([[1, 0, 0], [0, np.cos(angle), -np.sin(angle)],
                   [0, np.sin(angle), np.cos(angle)]])
    text = calib.read_text().replace(f'R0_rect: {numbers(np.eye(3))}', f'R0_rect: {numbers(r0)}')
    calib.write_text(text)
    x, y, z = r0 @ [0.5, -0.2, 14.0]
    depth = list_frames(root)[0].ground_truth()
    row, col = int(round(F * y / z + CY)) - 1, int(round(F * x / z + CX)) - 1
    assert (row, col) == (13, 74)                  # 5 rows above the unrotated (19, 74)
    assert depth[row, col] == pytest.approx(z, abs=1e-5)


def test_bad_folders_and_calibrations_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match='data path not found'):
        list_frames(tmp_path / 'nowhere')
    with pytest.raises(ValueError, match='none of the layouts'):
        list_frames(tmp_path)
    root = object_root(tmp_path / 'a')
    calib = root / 'training' / 'calib' / '000007.txt'
    calib.write_text(calib.read_text().replace('Tr_velo_to_cam', 'Tr_other'))
    with pytest.raises(KittiFormatError, match=r"none of the keys \['Tr_velo_to_cam'"):
        list_frames(root)
    calib.write_text(f'P2: {numbers(P2)}\nR0_rect: 1 0 0\nTr_velo_to_cam: '
                     f'{numbers(VELO_TO_CAM)}\n')
    with pytest.raises(KittiFormatError, match="'R0_rect' has 3 values, expected 9"):
        list_frames(root)
    empty = object_root(tmp_path / 'b')
    (empty / 'training' / 'velodyne' / '000007.bin').unlink()
    with pytest.raises(ValueError, match='holds no frame with both an image and a Velodyne'):
        list_frames(empty)


def test_eval_scores_real_layout_frames(tmp_path, capsys):
    root = object_root(tmp_path / 'real')
    # A prediction of 2 × the truth everywhere: abs_rel 1, δ1 0 on the one scored pixel.
    preds = np.full((1, *SIZE), 2 * DEPTH, np.float32)
    np.save(tmp_path / 'pred.npy', preds)
    out = tmp_path / 'eval'
    args = ['--data-path', str(root), '--pred-npz', str(tmp_path / 'pred.npy'), '--crop', 'none',
            '--output-dir', str(out)]
    assert evaluate.main(args) == 0
    report = json.loads((out / 'metrics.json').read_text())
    assert report['frames'] == 1 and report['ground_truth'] == 'velodyne-z'
    assert report['abs_rel'] == pytest.approx(1.0) and report['a1'] == 0.0
    assert 'breakdown' not in report               # two returns: no road to measure from
    assert (out / 'montage.png').is_file()
    assert 'object/000007' in (out / 'per_frame.csv').read_text()
    split = tmp_path / 'frames.txt'
    split.write_text('object/000099\n')
    assert evaluate.main([*args, '--split-file', str(split)]) == 1
    assert 'names frames that' in capsys.readouterr().err
    assert evaluate.main([*args, '--split', 'eigen']) == 1
    assert 'give no --split or --gt' in capsys.readouterr().err


@pytest.mark.parametrize('layout', sorted(LAYOUT_ROOTS))
def test_real_frames_train_as_a_data_source(tmp_path, layout):
    """The lidar_frames source gives the image, the hand-worked depth on its pixel and K."""
    root = LAYOUT_ROOTS[layout](tmp_path / layout)
    item = build_dataset('lidar_frames', root, 'all', input_size=None, crop=None,
                         augment=False, seed=0, gt='lidar')[0]
    depth = item['depth'][0].numpy()
    assert item['image'].shape == (3, *SIZE)
    assert depth[PIXEL] == pytest.approx(DEPTH, abs=1e-4)
    assert np.count_nonzero(depth) == 1                 # the far return on that pixel is hidden
    np.testing.assert_allclose(item['intrinsics'].numpy(), P2[:, :3], atol=1e-4)


def test_real_frame_splits_name_frames(tmp_path):
    root = object_root(tmp_path / 'object')
    split = tmp_path / 'split.txt'
    split.write_text('# my labelled frame\nobject/000007\n')
    assert len(LidarFrameDataset(root, split, gt='lidar')) == 1
    split.write_text('object/000008\n')
    with pytest.raises(ValueError, match=r"names frames that .* does not hold: \['object/000008'"
                       r"\] \(frame names look like object/000007\)"):
        LidarFrameDataset(root, split)
    split.write_text('# nothing\n')
    with pytest.raises(ValueError, match='names no frame'):
        LidarFrameDataset(root, split)
    with pytest.raises(ValueError, match=r"gt must be one of \['lidar'\] for source "
                       r"'lidar_frames', got 'dense'"):
        build_dataset('lidar_frames', root, 'all', input_size=None, crop=None, augment=False,
                      seed=0, gt='dense')
    with pytest.raises(ValueError, match=r"gt must be one of \('lidar',\) for real lidar "
                       r"frames, got 'velodyne'"):
        LidarFrameDataset(root, 'all', gt='velodyne')
