"""Synthetic KITTI-format world: layout, formats, geometry, lidar truth, determinism, CLI."""

from datetime import datetime
from pathlib import Path
import re

from conftest import SYNTH_WORLD
import cv2
import numpy as np
import pytest

from mono_depth_ros.core.constants import KITTI_CAMERA_HEIGHT, KITTI_IMAGE_SIZE, MAX_DEPTH
from mono_depth_ros.datasets.kitti import (
    generate_depth_map,
    load_intrinsics,
    read_calib_file,
    read_split,
)
from mono_depth_ros.datasets.synth import generate_world, plan_drive
from mono_depth_ros.datasets.synth.render import render_camera
from mono_depth_ros.datasets.synth.scene import CAR_BODY
from mono_depth_ros.datasets.synth.writer import (
    CALIB_DIR,
    CALIB_FILES,
    Rig,
    split_counts,
    write_drive,
    write_splits,
)
from mono_depth_ros.tools import synth as synth_tool

DRIVE = '2011_09_26/2011_09_26_drive_0001_sync'
FRAMES = SYNTH_WORLD['frames']
SPLIT_FRAMES = {'train': [0, 1, 2], 'val': [3], 'test': [4]}


def frame_files(root: Path, k: int) -> dict[str, Path]:
    """Paths of every file written for frame k of the fixture's drive."""
    base, name = root / DRIVE, f'{k:010d}'
    return {'image': base / 'image_02' / 'data' / f'{name}.png',
            'velo': base / 'velodyne_points' / 'data' / f'{name}.bin',
            'dense': base / 'depth_dense' / 'image_02' / 'data' / f'{name}.npy',
            'gt': base / 'proj_depth' / 'groundtruth' / 'image_02' / f'{name}.png'}


def test_calibration_is_kittis_real_one(synth_world):
    for name in CALIB_FILES:
        written = (synth_world / '2011_09_26' / name).read_bytes()
        assert written == (CALIB_DIR / name).read_bytes()
    cam = read_calib_file(synth_world / '2011_09_26' / 'calib_cam_to_cam.txt')
    assert cam['P_rect_02'].reshape(3, 4)[0, 0] == pytest.approx(721.5377)
    assert cam['R_rect_00'].size == 9 and cam['S_rect_02'].tolist() == [1242, 375]
    velo = read_calib_file(synth_world / '2011_09_26' / 'calib_velo_to_cam.txt')
    assert velo['R'].size == 9 and velo['T'].tolist() == pytest.approx([-0.004069766,
                                                                        -0.07631618, -0.2717806])


def test_frame_files_have_kitti_formats(synth_world):
    for k in range(FRAMES):
        files = frame_files(synth_world, k)
        image = cv2.imread(str(files['image']), cv2.IMREAD_UNCHANGED)
        assert image.shape == (*KITTI_IMAGE_SIZE, 3) and image.dtype == np.uint8
        assert image.std() > 20                                   # not a flat picture
        size = files['velo'].stat().st_size
        assert size % 16 == 0 and 80_000 < size // 16 <= 64 * 2048
        scan = np.fromfile(files['velo'], np.float32).reshape(-1, 4)
        assert np.all((scan[:, 3] >= 0) & (scan[:, 3] <= 1))
        assert np.linalg.norm(scan[:, :3], axis=1).max() <= 120.0 + 1e-3
        dense = np.load(files['dense'])
        assert dense.shape == KITTI_IMAGE_SIZE and dense.dtype == np.float32
        assert (dense == 0).any() and dense.min() >= 0            # sky = 0
        gt = cv2.imread(str(files['gt']), cv2.IMREAD_UNCHANGED)
        assert gt.shape == KITTI_IMAGE_SIZE and gt.dtype == np.uint16
        valid = gt > 0
        assert gt.max() <= MAX_DEPTH * 256 and 0.2 < valid.mean() < 0.9
        np.testing.assert_array_equal(gt[valid], np.round(dense[valid] * 256).astype(np.uint16))
        assert not valid[:40].any()                        # above the lidar's +2° beam


def test_timestamps_and_splits(synth_world):
    pattern = re.compile(r'^2011-09-26 \d\d:\d\d:\d\d\.\d{9}$')
    for sub in ('image_02', 'velodyne_points'):
        lines = (synth_world / DRIVE / sub / 'timestamps.txt').read_text().splitlines()
        assert len(lines) == FRAMES and all(pattern.match(line) for line in lines)
        moments = [datetime.strptime(line[:26], '%Y-%m-%d %H:%M:%S.%f') for line in lines]
        steps = np.diff([m.timestamp() for m in moments])
        np.testing.assert_allclose(steps, 0.1, atol=1e-3)
    splits = {name: read_split(synth_world / 'splits' / f'{name}_files.txt')
              for name in ('train', 'val', 'test')}
    assert [e.frame for e in splits['train']] == [0, 1, 2]
    assert [e.frame for e in splits['val']] == [3] and [e.frame for e in splits['test']] == [4]
    entry = splits['test'][0]
    assert entry.folder == DRIVE and entry.side == 'l' and entry.camera == 2
    assert entry.image_path(synth_world).is_file() and entry.velodyne_path(synth_world).is_file()
    first = (synth_world / 'splits' / 'train_files.txt').read_text().splitlines()[0]
    assert first == '2011_09_26/2011_09_26_drive_0001_sync 0000000000 l'


def test_camera_is_165_m_above_the_road(synth_world):
    # Hand check: fy = cy-offset = 721.5377 px, cy = 172.854; the bottom row (v = 374) of the
    # empty ego lane sees the road at 1.65 · 721.5377 / (374 − 172.854) = 5.91880 m.
    dense = np.load(frame_files(synth_world, 0)['dense'])
    assert dense[374, 610] == pytest.approx(5.91880, abs=2e-4)
    rows = np.arange(200, 375)
    expected = KITTI_CAMERA_HEIGHT * 721.5377 / (rows - 172.854)
    np.testing.assert_allclose(dense[rows, 610], expected, rtol=1e-4)


def test_lidar_ground_truth_agrees_with_dense_depth(synth_world):
    calib_dir = synth_world / '2011_09_26'
    for k in range(FRAMES):
        files = frame_files(synth_world, k)
        gt = generate_depth_map(calib_dir, files['velo'], cam=2, vel_depth=False)
        dense = np.load(files['dense'])
        both = (gt > 0) & (dense > 0)
        assert both.sum() > 10_000
        relative = np.abs(gt[both] - dense[both]) / dense[both]
        assert np.median(relative) < 0.01
        # The protocol's round(u) − 1 puts a point one pixel up-left of where it projects, so
        # against the dense depth one pixel further down-right the agreement is much closer.
        shifted = np.zeros_like(dense)
        shifted[:-1, :-1] = dense[1:, 1:]
        both = (gt > 0) & (shifted > 0)
        relative = np.abs(gt[both] - shifted[both]) / shifted[both]
        assert np.median(relative) < 0.003


def _face_depth(dense: np.ndarray, k_matrix: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                camera: np.ndarray) -> float | None:
    """Rendered depth at the centre of the camera-facing end of a box, if that is the box's."""
    z = lo[2] - camera[2]
    centre = (lo + hi) / 2 - camera
    if z < 2:
        return None
    u = k_matrix[0, 0] * centre[0] / z + k_matrix[0, 2]
    v = k_matrix[1, 1] * centre[1] / z + k_matrix[1, 2]
    if not (0 <= u < dense.shape[1] - 1 and 0 <= v < dense.shape[0] - 1):
        return None
    seen = float(dense[int(round(v)), int(round(u))])
    return seen if abs(seen - z) < 1e-3 * z else None


def test_moving_cars_move_and_parked_cars_stay(synth_world):
    plan = plan_drive(SYNTH_WORLD['seed'], 1, FRAMES)
    k_matrix, _ = load_intrinsics(synth_world / '2011_09_26', cam=2)
    dense = [np.load(frame_files(synth_world, k)['dense']) for k in (0, 1)]
    boxes = [plan.scene.boxes_at(plan.times[k]) for k in (0, 1)]
    cameras = [plan.camera_position(k) for k in (0, 1)]
    ego_step = cameras[1][2] - cameras[0][2]
    assert ego_step == pytest.approx(1.0, abs=0.2)                # about 10 m/s at 10 Hz
    moved, parked = [], []
    for i in np.flatnonzero(plan.scene.box_material == CAR_BODY):
        seen = [_face_depth(dense[k], k_matrix, boxes[k][0][i], boxes[k][1][i], cameras[k])
                for k in (0, 1)]
        if None in seen:
            continue
        world_step = boxes[1][0][i, 2] - boxes[0][0][i, 2]
        (moved if plan.scene.box_speed[i] != 0 else parked).append((seen, world_step))
    assert moved and parked
    for (before, after), world_step in parked:
        assert world_step == 0 and after - before == pytest.approx(-ego_step, abs=2e-3)
    for (before, after), world_step in moved:
        assert abs(world_step) > 0.5
        assert after - before == pytest.approx(world_step - ego_step, abs=2e-3)


def test_same_seed_same_bytes_other_seed_other_images(synth_world, tmp_path):
    # Re-render the first two frames of the fixture's drive from a fresh plan: same bytes.
    plan = plan_drive(SYNTH_WORLD['seed'], 1, FRAMES)
    plan.times = plan.times[:2]
    write_drive(tmp_path, plan, SYNTH_WORLD['seed'], 1, Rig())
    for k in (0, 1):
        for kind, path in frame_files(synth_world, k).items():
            again = frame_files(tmp_path, k)[kind]
            assert again.read_bytes() == path.read_bytes(), again
    for name in ('train', 'val', 'test'):
        lines = (synth_world / 'splits' / f'{name}_files.txt').read_text()
        assert lines == ''.join(f'{DRIVE} {k:010d} l\n' for k in SPLIT_FRAMES[name])
    other = plan_drive(SYNTH_WORLD['seed'] + 1, 1, FRAMES)
    image, _ = render_camera(other.scene, Rig().camera(other.camera_position(0)), 0.0,
                             np.random.default_rng(0))
    first = cv2.cvtColor(cv2.imread(str(frame_files(synth_world, 0)['image'])), cv2.COLOR_BGR2RGB)
    assert np.abs(image.astype(int) - first).mean() > 10


@pytest.mark.parametrize('kwargs, message', [
    ({'drives': -1}, 'drives must be a positive integer'),
    ({'frames': 0}, 'frames must be a positive integer'),
    ({'frames': 2.5}, 'frames must be a positive integer'),
    ({'seed': -1}, 'seed must be a non-negative integer'),
    ({'val_fraction': -0.1}, 'val_fraction must be in'),
    ({'val_fraction': 0.5, 'test_fraction': 0.5}, 'val_fraction \\+ test_fraction'),
    ({'frames': 2, 'val_fraction': 0.1, 'test_fraction': 0.1}, 'leave none for training'),
])
def test_bad_arguments_are_named(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        generate_world(tmp_path / 'world', **kwargs)
    assert not (tmp_path / 'world').exists()


def test_cli_renders_and_refuses_to_overwrite(tmp_path, capsys):
    out = tmp_path / 'world'
    args = ['--out', str(out), '--drives', '1', '--frames', '1', '--seed', '3',
            '--val-fraction', '0', '--test-fraction', '0']
    assert synth_tool.main(args) == 0
    printed = capsys.readouterr().out
    assert 'wrote 1 frames in 1 drive(s)' in printed and 'train 1, val 0, test 0' in printed
    assert frame_files(out, 0)['velo'].is_file()
    assert read_split(out / 'splits' / 'train_files.txt')[0].frame == 0
    assert synth_tool.main(args) == 2
    assert 'is not empty' in capsys.readouterr().err
    stale = out / 'splits' / 'old_files.txt'
    stale.write_text('x')
    assert synth_tool.main([*args, '--overwrite']) == 0 and not stale.exists()
    capsys.readouterr()
    (out / 'notes.txt').write_text('mine')
    assert synth_tool.main([*args, '--overwrite']) == 2
    assert "holds 'notes.txt'" in capsys.readouterr().err and (out / 'notes.txt').exists()
    assert synth_tool.main(['--out', str(tmp_path / 'x'), '--frames', '-3']) == 2
    assert 'frames must be a positive integer' in capsys.readouterr().err
    (tmp_path / 'file').write_text('x')
    assert synth_tool.main(['--out', str(tmp_path / 'file')]) == 2
    assert 'not a directory' in capsys.readouterr().err


def test_stereo_world_adds_a_consistent_right_camera(tmp_path):
    root = generate_world(tmp_path / 'stereo', frames=1, seed=2, val_fraction=0,
                          test_fraction=0, stereo=True)['root']
    files = frame_files(root, 0)
    right = {key: Path(str(path).replace('image_02', 'image_03')) for key, path in files.items()}
    image = cv2.imread(str(right['image']), cv2.IMREAD_UNCHANGED)
    assert image.shape == (*KITTI_IMAGE_SIZE, 3)
    assert (root / DRIVE / 'image_03' / 'timestamps.txt').read_text().count('\n') == 1
    gt = generate_depth_map(root / '2011_09_26', files['velo'], cam=3)
    dense = np.load(right['dense'])
    both = (gt > 0) & (dense > 0)
    assert both.sum() > 10_000
    assert np.median(np.abs(gt[both] - dense[both]) / dense[both]) < 0.01
    # The right camera sits B = 0.5327 m to the right: a point at depth z seen at column u by
    # it is at column u + fx·B/z in the left image; fx·B = (44.85728 − 609.5593·0.002745884)
    # − (−339.5242 − 609.5593·0.002729905) = 384.3717 px·m from P_rect_02 and P_rect_03.
    left = np.load(files['dense'])
    rows, cols = np.nonzero(dense > 0)
    z = dense[rows, cols]
    left_cols = np.round(cols + 384.3717 / z).astype(int)
    inside = left_cols < dense.shape[1]
    rows, cols, z, left_cols = rows[inside], cols[inside], z[inside], left_cols[inside]
    warped = np.abs(left[rows, left_cols] - z) / z
    unwarped = np.abs(left[rows, cols] - z) / z
    assert np.median(warped) < 0.002
    assert (warped > 0.05).mean() < 0.03 and (unwarped > 0.05).mean() > 0.08
    sides = [entry.side for entry in read_split(root / 'splits' / 'train_files.txt')]
    assert sides == ['l', 'r']


def test_split_counts_give_every_nonzero_fraction_a_frame():
    assert split_counts(50, 0.1, 0.1) == (40, 5, 5)
    assert split_counts(5, 0.1, 0.1) == (3, 1, 1)       # 0.5 frames would round to 0
    assert split_counts(10, 0.0, 0.25) == (8, 0, 2)
    assert split_counts(1, 0.0, 0.0) == (1, 0, 0)


def test_heldout_drives_never_reach_the_training_split(tmp_path):
    frames = {f'2011_09_26/2011_09_26_drive_000{d}_sync': 4 for d in range(1, 6)}
    counts = write_splits(tmp_path, frames, 0.25, 0.0, heldout_drives=3)
    splits = {name: (tmp_path / 'splits' / f'{name}_files.txt').read_text().splitlines()
              for name in ('train', 'val', 'test')}
    drives = {name: sorted({line.split()[0][-9:-5] for line in lines})
              for name, lines in splits.items()}
    # drives 1-2 train (their last frame to val), 3 and 5 val, 4 test: none shared with train
    assert drives == {'train': ['0001', '0002'], 'val': ['0001', '0002', '0003', '0005'],
                      'test': ['0004']}
    assert counts == {'train': 6, 'val': 2 + 8, 'test': 4}
    with pytest.raises(ValueError, match=r'heldout_drives must be an integer in \[0, drives'):
        generate_world(tmp_path / 'w', drives=2, frames=5, heldout_drives=2)
    assert not (tmp_path / 'w').exists()
