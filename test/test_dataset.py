"""KittiDepthDataset: crops, intrinsics, determinism, image/depth alignment under augmentation."""

from pathlib import Path
import shutil

import cv2
import numpy as np
import pytest
import torch

from mono_depth_ros import generate_depth_map
from mono_depth_ros.core.constants import IMAGENET_MEAN, IMAGENET_STD
from mono_depth_ros.datasets.augment import normalize, style_jitter
from mono_depth_ros.datasets.dataset import KittiDepthDataset
from mono_depth_ros.datasets.kitti import SplitEntry

SAMPLE = Path(__file__).resolve().parent / 'data' / 'kitti_sample'
FOLDER = '2011_09_26/2011_09_26_drive_0001_sync'
FRAME = SplitEntry(FOLDER, 0, 'l')


def marker_world(root: Path, frames: int) -> tuple[list[SplitEntry], tuple[int, int], float]:
    """A KITTI-layout folder whose scans hold one point, painted white in a grey image."""
    shutil.copytree(SAMPLE / '2011_09_26', root / '2011_09_26',
                    ignore=shutil.ignore_patterns('*.png', '*.bin'))
    drive = root / FOLDER
    (drive / 'image_02' / 'data').mkdir(parents=True, exist_ok=True)
    (drive / 'velodyne_points' / 'data').mkdir(parents=True, exist_ok=True)
    np.array([[15.0, 1.0, -1.0, 1.0]], np.float32).tofile(drive / 'velodyne_points' / 'data' /
                                                           '0000000000.bin')
    depth = generate_depth_map(root / '2011_09_26', FRAME.velodyne_path(root), vel_depth=False)
    (row,), (col,) = np.nonzero(depth)
    image = np.full((375, 1242, 3), 60, np.uint8)
    image[row, col] = 255
    cv2.imwrite(str(FRAME.image_path(root)), image)
    return [FRAME] * frames, (row, col), float(depth[row, col])


@pytest.mark.parametrize('crop, input_size', [(None, None), ('random', (256, 640))])
def test_augmented_marker_stays_on_its_depth(tmp_path, crop, input_size):
    entries, (row, col), depth_value = marker_world(tmp_path, 24)
    data = KittiDepthDataset(tmp_path, entries, input_size=input_size, crop=crop, augment=True)
    seen = flips = 0
    for index in range(len(data)):
        item = data[index]
        intrinsics = data.load(index)[2]
        geometry = data.geometry((375, 1242), intrinsics, data.rng(index))  # the item's draw
        x, y, _ = geometry.matrix @ [col, row, 1.0]
        flips += geometry.matrix[0, 0] < 0
        depth = item['depth'][0].numpy()
        height, width = depth.shape
        if x < -1 or y < -1 or x > width or y > height:
            assert not depth.any()  # the point left the crop window
            continue
        if not (1 <= x < width - 1 and 1 <= y < height - 1):
            continue  # on the border: may or may not be kept
        seen += 1
        brightness = item['image_raw'].numpy().astype(int).sum(axis=0)
        bright_y, bright_x = np.unravel_index(brightness.argmax(), brightness.shape)
        assert abs(bright_x - x) <= 1 and abs(bright_y - y) <= 1
        ys, xs = np.nonzero(depth)
        assert len(ys) >= 1 and np.all(np.abs(xs - x) <= 1) and np.all(np.abs(ys - y) <= 1)
        # Nearest-neighbour copies of the one point, divided by the magnification s in [1, 1.5].
        np.testing.assert_allclose(depth[ys, xs], depth_value * geometry.depth_factor, rtol=1e-6)
        assert depth_value / 1.5 <= depth[ys[0], xs[0]] <= depth_value
    assert seen >= 12
    assert 5 <= flips <= 19


def test_geometric_crops_keep_intrinsics_consistent_with_depth():
    full = KittiDepthDataset(SAMPLE, [FRAME])[0]
    k = full['intrinsics'].numpy().astype(np.float64)
    np.testing.assert_allclose(k, [[721.5377, 0, 609.5593], [0, 721.5377, 172.854], [0, 0, 1]],
                               rtol=1e-6)
    depth = full['depth'][0].numpy()
    rows, cols = np.nonzero(depth)
    z = depth[rows, cols]
    points = np.stack([(cols - k[0, 2]) * z / k[0, 0], (rows - k[1, 2]) * z / k[1, 1], z])
    bench = KittiDepthDataset(SAMPLE, [FRAME], crop='benchmark')[0]
    k_b = bench['intrinsics'].numpy()
    # Bottom-centre 352×1216: top = 375 - 352 = 23 rows, left = (1242 - 1216) // 2 = 13 cols.
    np.testing.assert_allclose(k_b[:2, 2], [609.5593 - 13, 172.854 - 23], rtol=1e-6)
    np.testing.assert_array_equal(bench['depth'][0].numpy(), depth[23:, 13:1229])
    assert bench['image_raw'].shape == (3, 352, 1216)
    half = KittiDepthDataset(SAMPLE, [FRAME], input_size=(176, 608), crop='benchmark')[0]
    k_h = half['intrinsics'].numpy().astype(np.float64)
    np.testing.assert_allclose(k_h[0], [721.5377 / 2, 0, (609.5593 - 13 + 0.5) / 2 - 0.5],
                               rtol=1e-6)
    # Every valid pixel after the resize is a lidar point whose reprojection with the new K
    # lands on it (±1 px): nearest-neighbour keeps one in four points, and moves none.
    projected = k_h @ points
    u, v = projected[0] / projected[2], projected[1] / projected[2]
    half_depth = half['depth'][0].numpy()
    rows_h, cols_h = np.nonzero(half_depth)
    assert 3500 < len(rows_h) < 4500
    for row, col in zip(rows_h, cols_h, strict=True):
        same = z == half_depth[row, col]
        assert np.any((np.abs(u[same] - col) <= 1) & (np.abs(v[same] - row) <= 1))


def test_augmentation_never_blends_depth_and_is_deterministic():
    data = KittiDepthDataset(SAMPLE, [FRAME] * 3, input_size=(352, 704), crop='random',
                             augment=True, seed=7)
    source = data.load(0)[1]
    values = np.unique(source[source > 0])
    for index in range(3):
        item = data[index]
        factor = data.geometry(source.shape, data.load(0)[2], data.rng(index)).depth_factor
        depth = item['depth'][0].numpy()
        assert (depth > 0).sum() > 3000
        original = depth[depth > 0] / factor
        above = np.clip(np.searchsorted(values, original), 1, len(values) - 1)
        nearest = np.where(np.abs(values[above] - original) < np.abs(values[above - 1] - original),
                           values[above], values[above - 1])
        np.testing.assert_allclose(original, nearest, rtol=1e-5)  # copies, never blends
    again = KittiDepthDataset(SAMPLE, [FRAME] * 3, input_size=(352, 704), crop='random',
                              augment=True, seed=7)[1]
    first = data[1]
    for key in first:
        assert torch.equal(first[key], again[key])
    data.set_epoch(1)
    assert not torch.equal(data[1]['depth'], first['depth'])
    other_seed = KittiDepthDataset(SAMPLE, [FRAME] * 3, input_size=(352, 704), crop='random',
                                   augment=True, seed=8)[1]
    assert not torch.equal(other_seed['image'], first['image'])


def test_colour_jitter_changes_only_the_network_image():
    plain = KittiDepthDataset(SAMPLE, [FRAME])[0]
    raw = plain['image_raw'].numpy().transpose(1, 2, 0).astype(np.float32) / 255
    np.testing.assert_allclose(plain['image'].numpy(), normalize(raw), atol=1e-6)
    jittered = KittiDepthDataset(SAMPLE, [FRAME], input_size=(352, 704), crop='random',
                                 augment=True)[0]
    raw = jittered['image_raw'].numpy().transpose(1, 2, 0).astype(np.float32) / 255
    assert np.abs(jittered['image'].numpy() - normalize(raw)).mean() > 0.01


def test_improved_ground_truth_source(tmp_path):
    shutil.copytree(SAMPLE, tmp_path, dirs_exist_ok=True)
    gt = np.zeros((375, 1242), np.uint16)
    gt[300, 600], gt[200, 100] = 10 * 256, 2560 + 128
    gt_path = FRAME.improved_gt_path(tmp_path)
    gt_path.parent.mkdir(parents=True)
    cv2.imwrite(str(gt_path), gt)
    depth = KittiDepthDataset(tmp_path, [FRAME], gt='improved')[0]['depth'][0].numpy()
    assert depth[300, 600] == 10.0 and depth[200, 100] == 10.5 and np.count_nonzero(depth) == 2


def test_bad_arguments_and_missing_files(tmp_path):
    with pytest.raises(ValueError, match='crop must be one of'):
        KittiDepthDataset(SAMPLE, [FRAME], crop='centre')
    with pytest.raises(ValueError, match='gt must be one of'):
        KittiDepthDataset(SAMPLE, [FRAME], gt='lidar')
    with pytest.raises(ValueError, match='needs input_size'):
        KittiDepthDataset(SAMPLE, [FRAME], crop='random')
    with pytest.raises(FileNotFoundError, match='nowhere'):
        KittiDepthDataset(tmp_path / 'nowhere', [FRAME])
    with pytest.raises(FileNotFoundError, match='0000000005.png'):
        KittiDepthDataset(SAMPLE, [SplitEntry(FOLDER, 5, 'l')])[0]
    with pytest.raises(ValueError, match='cannot crop 400×704'):
        KittiDepthDataset(SAMPLE, [FRAME], input_size=(400, 704), crop='random')[0]
    with pytest.raises(FileNotFoundError, match='proj_depth/groundtruth/image_02'):
        KittiDepthDataset(SAMPLE, [FRAME], gt='improved')[0]


@pytest.mark.slow
def test_synthetic_world_with_both_ground_truth_sources(synth_world):
    split = synth_world / 'splits' / 'train_files.txt'
    lidar = KittiDepthDataset(synth_world, split, crop='benchmark')
    improved = KittiDepthDataset(synth_world, split, crop='benchmark', gt='improved')
    assert len(lidar) == 3
    a, b = lidar[0], improved[0]
    assert a['image'].shape == (3, 352, 1216) and b['depth'].shape == (1, 352, 1216)
    sparse, dense = a['depth'][0].numpy(), b['depth'][0].numpy()
    both = (sparse > 0) & (dense > 0)
    # The improved stand-in is semi-dense; lidar depth agrees with it where both exist
    # (the protocol's round(u) - 1 shifts lidar points by about one pixel, hence the median).
    assert (dense > 0).sum() > 5 * (sparse > 0).sum() > 5 * 10000
    assert np.median(np.abs(sparse[both] - dense[both]) / dense[both]) < 0.02


def test_style_randomisation_keeps_the_geometry_and_is_deterministic():
    args = dict(input_size=(176, 608), crop='random', seed=3)
    paper = KittiDepthDataset(SAMPLE, [FRAME] * 4, augment=True, **args)
    style = KittiDepthDataset(SAMPLE, [FRAME] * 4, augment='style', **args)
    again = KittiDepthDataset(SAMPLE, [FRAME] * 4, augment='style', **args)
    changed = []
    for index in range(4):
        a, b = paper[index], style[index]
        assert torch.equal(a['depth'], b['depth'])          # same warp, same depth
        assert torch.equal(a['image_raw'], b['image_raw'])
        assert torch.equal(b['image'], again[index]['image'])
        image = b['image'].numpy().transpose(1, 2, 0) * IMAGENET_STD + IMAGENET_MEAN
        assert image.min() >= -1e-5 and image.max() <= 1 + 1e-5
        changed.append(float(np.abs(a['image'].numpy() - b['image'].numpy()).mean()))
    assert min(changed) > 0.01
    with pytest.raises(ValueError, match=r"augment must be one of \(False, True, 'style', 'styl"):
        KittiDepthDataset(SAMPLE, [FRAME], augment='heavy')


def test_style_without_scale_keeps_the_depth_of_every_pixel():
    data = KittiDepthDataset(SAMPLE, [FRAME] * 4, input_size=(176, 608), augment='style_no_scale',
                             seed=5)
    source = data.load(0)[1]
    values = set(np.unique(source[source > 0]).tolist())
    for index in range(4):
        assert data.geometry(source.shape, data.load(0)[2], data.rng(index)).depth_factor == 1
        depth = data[index]['depth'][0].numpy()
        assert set(np.unique(depth[depth > 0]).tolist()) <= values   # copies, never rescaled


def test_style_jitter_stays_in_range_and_varies_with_the_generator():
    image = np.random.default_rng(0).random((40, 120, 3)).astype(np.float32)
    outs = [style_jitter(image.copy(), np.random.default_rng(seed)) for seed in range(12)]
    for out in outs:
        assert out.shape == image.shape and out.dtype == np.float32
        assert 0 <= out.min() and out.max() <= 1
    np.testing.assert_array_equal(outs[0], style_jitter(image.copy(), np.random.default_rng(0)))
    assert len({round(float(out.mean()), 4) for out in outs}) == len(outs)
