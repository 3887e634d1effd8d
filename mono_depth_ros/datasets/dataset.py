"""torch Datasets over a KITTI split, a bag-gt folder or real lidar frames (KITTI object,
tracking, KITTI-360 layouts): image, sparse ground-truth depth, K."""

from collections.abc import Sequence
import os

import numpy as np
import torch
from torch.utils.data import Dataset

from mono_depth_ros.core.constants import KITTI_BENCHMARK_CROP
from mono_depth_ros.datasets.augment import (
    AUGMENTATIONS,
    benchmark_crop_offset,
    color_jitter,
    Geometry,
    normalize,
    random_geometry,
    random_offset,
    SCALE_RANGE,
    scaling,
    style_jitter,
    translation,
    warp,
)
from mono_depth_ros.datasets.bag_gt import (
    BAG_GT_SOURCES,
    BagGtCalib,
    BagGtEntry,
    is_bag_gt_folder,
    read_bag_gt_calib,
    read_bag_gt_depth,
    read_bag_gt_split,
    resolve_bag_gt_split,
    SETTINGS_FILE,
)
from mono_depth_ros.datasets.kitti.calib import load_intrinsics, velo_to_image_matrix
from mono_depth_ros.datasets.kitti.ground_truth import GT_SOURCES, scan_to_depth_map
from mono_depth_ros.datasets.kitti.io import (
    load_velodyne,
    read_dense_depth,
    read_image,
    read_improved_gt,
)
from mono_depth_ros.datasets.kitti.layouts import (
    LIDAR_FRAME_SOURCES,
    LidarFrame,
    list_frames,
    select_frames,
)
from mono_depth_ros.datasets.kitti.splits import read_split, SplitEntry

CROPS = ('benchmark', 'random', None)


def check_gt_source(gt: str, sources: Sequence[str], where: str) -> None:
    """Raise ValueError naming the choices when gt is not one of a data source's truths."""
    if gt not in sources:
        raise ValueError(f'gt must be one of {tuple(sources)} for {where}, got {gt!r}')


class DepthDataset(Dataset):
    """Frames with an image, sparse ground-truth depth and intrinsics, cropped, resized and
    augmented for training; a subclass lists its entries and implements load(index).

    Each item is a dict: 'image' (3×H×W float32, ImageNet-normalised, colour-jittered when
    augmenting), 'depth' (1×H×W float32 metres, 0 = no ground truth), 'intrinsics' (3×3 float32
    for the returned image) and 'image_raw' (3×H×W uint8, same geometry, no colour jitter).

    crop: 'benchmark' takes the KITTI bottom-centre 352×1216 crop (then resizes to input_size
    if given); 'random' takes a random input_size window; None keeps the whole image (resized
    to input_size if given). augment True adds the paper's scale/rotation/flip/colour
    augmentation; 'style' adds style randomisation on top (augment.style_jitter);
    'style_no_scale' is 'style' without the scale step (the camera keeps its height).
    Randomness comes from a generator seeded by (seed, epoch, index): deterministic under seed.
    """

    def __init__(self, data_path: str | os.PathLike,
                 input_size: tuple[int, int] | None = None, crop: str | None = None,
                 augment: bool = False, seed: int = 0, what: str = 'data folder') -> None:
        if crop not in CROPS:
            raise ValueError(f'crop must be one of {CROPS}, got {crop!r}')
        if augment not in AUGMENTATIONS:
            raise ValueError(f'augment must be one of {AUGMENTATIONS}, got {augment!r}')
        if crop == 'random' and input_size is None:
            raise ValueError("crop='random' needs input_size (the crop window, (H, W))")
        if input_size is not None and (len(input_size) != 2 or min(input_size) <= 0):
            raise ValueError(f'input_size must be (H, W) with positive sizes, got {input_size}')
        self.data_path = os.fspath(data_path)
        if not os.path.isdir(self.data_path):
            raise FileNotFoundError(f'{what} not found: {self.data_path}')
        self.entries: list = []                 # set by the subclass
        self.input_size = tuple(int(v) for v in input_size) if input_size else None
        self.crop = crop
        self.augment = bool(augment)
        self.style = augment in ('style', 'style_no_scale')
        self.scale_range = (1.0, 1.0) if augment == 'style_no_scale' else SCALE_RANGE
        self.seed = seed
        self.epoch = 0

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return the untransformed (RGB image, ground-truth depth, K) of one frame."""
        raise NotImplementedError

    def __len__(self) -> int:
        """Number of frames in the split."""
        return len(self.entries)

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch, so that each epoch draws different (reproducible) augmentations."""
        self.epoch = int(epoch)

    def rng(self, index: int) -> np.random.Generator:
        """The random generator of one item, from (seed, epoch, index)."""
        return np.random.default_rng([self.seed, self.epoch, index])

    def geometry(self, size: tuple[int, int], intrinsics: np.ndarray,
                 rng: np.random.Generator) -> Geometry:
        """Compose crop, resize and augmentation of one item into one affine geometry."""
        geometry = Geometry(np.eye(3), size)
        if self.crop == 'benchmark':
            top, left = benchmark_crop_offset(size)
            geometry = geometry.then(translation(-left, -top), KITTI_BENCHMARK_CROP)
        if self.input_size and self.crop != 'random' and self.input_size != geometry.out_size:
            sy = self.input_size[0] / geometry.out_size[0]
            sx = self.input_size[1] / geometry.out_size[1]
            geometry = geometry.then(scaling(sx, sy), self.input_size, focal_scale=(sx, sy))
        out_size = self.input_size if self.crop == 'random' else geometry.out_size
        if self.augment:
            principal = (geometry.matrix @ [intrinsics[0, 2], intrinsics[1, 2], 1.0])[:2]
            step = random_geometry(geometry.out_size, tuple(principal), out_size, rng,
                                   self.scale_range)
            geometry = geometry.then(step.matrix, step.out_size, step.depth_factor)
        elif self.crop == 'random':
            top, left = random_offset(geometry.out_size, out_size, rng)
            geometry = geometry.then(translation(-left, -top), out_size)
        return geometry

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        """Load, crop, resize and (optionally) augment one frame."""
        if not 0 <= index < len(self.entries):
            raise IndexError(f'index {index} out of range for {len(self.entries)} frames')
        image, depth, intrinsics = self.load(index)
        rng = self.rng(index)
        geometry = self.geometry(depth.shape, intrinsics, rng)
        image, depth, intrinsics = warp(image, depth, intrinsics, geometry)
        colour = image.astype(np.float32) / 255.0
        if self.augment:
            colour = color_jitter(colour, rng)
        if self.style:
            colour = style_jitter(colour, rng)
        return {
            'image': torch.from_numpy(normalize(colour)),
            'depth': torch.from_numpy(np.ascontiguousarray(depth, dtype=np.float32)[None]),
            'intrinsics': torch.from_numpy(intrinsics.astype(np.float32)),
            'image_raw': torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))),
        }


class KittiDepthDataset(DepthDataset):
    """Frames of a KITTI-layout split (real KITTI raw or the synthetic world) for training.

    Items, crops and augmentation as DepthDataset. gt: 'velodyne' projects the scan (camera z,
    nearest point per pixel), 'improved' reads the depth benchmark's proj_depth/groundtruth
    PNGs, 'dense' a synthetic world's dense true depth (every pixel labelled: +inf where no
    surface was hit, 0 only outside the warped image).
    """

    def __init__(self, data_path: str | os.PathLike,
                 split: str | os.PathLike | Sequence[SplitEntry],
                 input_size: tuple[int, int] | None = None, crop: str | None = None,
                 augment: bool = False, seed: int = 0, gt: str = 'velodyne',
                 image_ext: str = '.png') -> None:
        check_gt_source(gt, GT_SOURCES, 'KITTI raw')
        super().__init__(data_path, input_size, crop, augment, seed, 'KITTI data folder')
        self.entries = list(split) if isinstance(split, Sequence) and not isinstance(
            split, str) else read_split(split)
        self.gt = gt
        self.image_ext = image_ext
        self._calib_cache = {}

    def calibration(self, entry: SplitEntry) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
        """Return (K, Velodyne-to-image matrix, (H, W)) of an entry's camera, cached per drive."""
        key = (os.fspath(entry.calib_dir(self.data_path)), entry.camera)
        if key not in self._calib_cache:
            intrinsics, size = load_intrinsics(key[0], entry.camera)
            velo_to_image, _ = velo_to_image_matrix(key[0], entry.camera)
            self._calib_cache[key] = (intrinsics, velo_to_image, size)
        return self._calib_cache[key]

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return the untransformed (RGB image, ground-truth depth, K) of one frame."""
        entry = self.entries[index]
        intrinsics, velo_to_image, size = self.calibration(entry)
        image = read_image(entry.image_path(self.data_path, self.image_ext))
        if self.gt == 'improved':
            depth = read_improved_gt(entry.improved_gt_path(self.data_path))
        elif self.gt == 'dense':
            depth = read_dense_depth(entry.dense_depth_path(self.data_path))
        else:
            points = load_velodyne(entry.velodyne_path(self.data_path))
            depth = scan_to_depth_map(points, velo_to_image, size, vel_depth=False)
        if depth.shape != image.shape[:2]:
            raise ValueError(f'frame {entry.line()}: ground truth is {depth.shape[0]}×'
                             f'{depth.shape[1]} but the image is {image.shape[0]}×'
                             f'{image.shape[1]}')
        return image, depth, intrinsics


class BagGtDataset(DepthDataset):
    """Frames of a mono-depth-bag-gt folder (lidar ground truth from your own bag): the image,
    its depth PNG and the intrinsics of its calibration YAML. Items, crops and augmentation as
    DepthDataset; split is a list file (e.g. DIR/splits/train_files.txt) or entries."""

    def __init__(self, data_path: str | os.PathLike,
                 split: str | os.PathLike | Sequence[BagGtEntry],
                 input_size: tuple[int, int] | None = None, crop: str | None = None,
                 augment: bool = False, seed: int = 0, gt: str = BAG_GT_SOURCES[0]) -> None:
        check_gt_source(gt, BAG_GT_SOURCES, 'a bag-gt folder')
        super().__init__(data_path, input_size, crop, augment, seed,
                         'bag-gt folder (mono-depth-bag-gt --out)')
        if not is_bag_gt_folder(self.data_path):
            raise FileNotFoundError(f'{self.data_path} holds no {SETTINGS_FILE}: it is not a '
                                    'folder written by mono-depth-bag-gt')
        self.entries = list(split) if isinstance(split, Sequence) and not isinstance(
            split, str) else read_bag_gt_split(resolve_bag_gt_split(self.data_path, split))
        self.gt = gt
        self._calib_cache: dict[str, BagGtCalib] = {}

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return the untransformed (RGB image, lidar depth, K) of one frame."""
        entry = self.entries[index]
        if entry.calib not in self._calib_cache:
            self._calib_cache[entry.calib] = read_bag_gt_calib(entry.calib_path(self.data_path))
        calib = self._calib_cache[entry.calib]
        image = read_image(entry.image_path(self.data_path))
        depth = read_bag_gt_depth(self.data_path, entry)
        if depth.shape != image.shape[:2] or depth.shape != calib.size:
            raise ValueError(f'frame "{entry.line()}": the image is {image.shape[0]}×'
                             f'{image.shape[1]}, the depth {depth.shape[0]}×{depth.shape[1]} '
                             f'and the calibration {calib.size[0]}×{calib.size[1]}')
        return image, depth, calib.k.copy()


class LidarFrameDataset(DepthDataset):
    """Real frames in the KITTI object, tracking or KITTI-360 layout (datasets.kitti.layouts):
    the image, its Velodyne scan projected to a depth map (camera z) and the rectified camera's
    K. Items, crops and augmentation as DepthDataset; split is a file naming frames (one name a
    line, e.g. object/000003), '' or 'all' for every frame, or LidarFrame entries."""

    def __init__(self, data_path: str | os.PathLike,
                 split: str | os.PathLike | Sequence[LidarFrame] = 'all',
                 input_size: tuple[int, int] | None = None, crop: str | None = None,
                 augment: bool = False, seed: int = 0, gt: str = LIDAR_FRAME_SOURCES[0]) -> None:
        check_gt_source(gt, LIDAR_FRAME_SOURCES, 'real lidar frames')
        super().__init__(data_path, input_size, crop, augment, seed,
                         'real frames folder (KITTI object, tracking or KITTI-360 layout)')
        if isinstance(split, Sequence) and not isinstance(split, str):
            self.entries = list(split)
        else:
            frames = list_frames(self.data_path)
            self.entries = frames if os.fspath(split) in ('', 'all') else select_frames(
                frames, split, self.data_path)

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return the untransformed (RGB image, lidar depth, K) of one frame."""
        frame = self.entries[index]
        image = read_image(frame.image_path)
        return image, frame.ground_truth(image.shape[:2]), frame.projection[:, :3].copy()
