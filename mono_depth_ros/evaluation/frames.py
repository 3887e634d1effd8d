"""The frames mono-depth-eval scores: a KITTI split, real frames in the KITTI object, tracking or
KITTI-360 layout (datasets.kitti.layouts), or a mono-depth-bag-gt folder of your own.

Both give, per entry, the ground truth, the image, the camera intrinsics the network must get
(focal scaling) and a caption; the scoring is the same KITTI protocol for both.
"""

import os

import numpy as np

from mono_depth_ros.datasets.bag_gt import (
    BAG_GT_SOURCES,
    BagGtCalib,
    is_bag_gt_folder,
    read_bag_gt_calib,
    read_bag_gt_depth,
    read_bag_gt_split,
    resolve_bag_gt_split,
)
from mono_depth_ros.datasets.kitti.calib import load_intrinsics
from mono_depth_ros.datasets.kitti.ground_truth import (
    describe_source,
    load_ground_truth,
    PROTOCOLS,
    resolve_protocol,
)
from mono_depth_ros.datasets.kitti.io import read_image
from mono_depth_ros.datasets.kitti.layouts import detect_layout, list_frames, select_frames
from mono_depth_ros.evaluation.breakdown import region_map


class KittiFrames:
    """A KITTI-layout split (real KITTI raw or a synthetic world) with its protocol."""

    def __init__(self, data_path: str, split: str | None, split_file: str | None,
                 gt: str | None, camera_z: bool, image_ext: str = '.png') -> None:
        self.data_path, self.camera_z, self.image_ext = data_path, camera_z, image_ext
        self.label, self.entries, self.source = resolve_protocol(data_path, split, split_file,
                                                                 gt)
        self.gt_name = describe_source(self.source, camera_z)
        self.default_crop = PROTOCOLS.get(split or '', {}).get('crop', 'garg')
        self._intrinsics: dict[tuple[str, int], tuple[float, float, float, float]] = {}

    def ground_truth(self, entry) -> np.ndarray:
        """H×W float32 ground truth of an entry (0 = none)."""
        return load_ground_truth(self.data_path, entry, self.source, not self.camera_z)

    def image(self, entry) -> np.ndarray:
        """The entry's RGB image."""
        return read_image(entry.image_path(self.data_path, self.image_ext))

    def intrinsics(self, entry) -> tuple[float, float, float, float]:
        """(fx, fy, cx, cy) of the entry's rectified camera, cached per drive and camera."""
        key = (os.fspath(entry.calib_dir(self.data_path)), entry.camera)
        if key not in self._intrinsics:
            k = load_intrinsics(key[0], entry.camera)[0]
            self._intrinsics[key] = (k[0, 0], k[1, 1], k[0, 2], k[1, 2])
        return self._intrinsics[key]

    def title(self, entry) -> str:
        """Caption of the entry in the montage."""
        return f'{entry.folder.split("/")[-1]}\nframe {entry.frame} {entry.side}'


class BagGtFrames:
    """A split list of a mono-depth-bag-gt folder: its lidar depth PNGs and calibration YAML."""

    default_crop = 'none'            # another camera: KITTI's crops do not apply
    gt_name = 'lidar (mono-depth-bag-gt)'

    def __init__(self, data_path: str, split_file: str) -> None:
        self.data_path = data_path
        path = resolve_bag_gt_split(data_path, split_file)
        self.label, self.entries = os.fspath(path), read_bag_gt_split(path)
        self._calib: dict[str, BagGtCalib] = {}

    def ground_truth(self, entry) -> np.ndarray:
        """H×W float32 lidar depth of an entry (camera z, 0 = none)."""
        return read_bag_gt_depth(self.data_path, entry)

    def image(self, entry) -> np.ndarray:
        """The entry's RGB image."""
        return read_image(entry.image_path(self.data_path))

    def intrinsics(self, entry) -> tuple[float, float, float, float]:
        """(fx, fy, cx, cy) of the entry's calibration YAML (the matrix its depth used)."""
        if entry.calib not in self._calib:
            self._calib[entry.calib] = read_bag_gt_calib(entry.calib_path(self.data_path))
        return self._calib[entry.calib].intrinsics

    def title(self, entry) -> str:
        """Caption of the entry in the montage."""
        return entry.title()


class LidarFrames:
    """Real frames of a KITTI object, tracking or KITTI-360 folder: every frame, or those a split
    file names (one frame name a line, e.g. object/000003), with the lidar truth projected."""

    default_crop = 'garg'
    gt_name = 'velodyne-z'

    def __init__(self, data_path: str, split_file: str | None) -> None:
        self.layout = detect_layout(data_path)
        frames = list_frames(data_path)
        self.label = f'{self.layout}:{data_path}'
        if split_file:
            frames = select_frames(frames, split_file, data_path)
            self.label = os.fspath(split_file)
        self.entries = frames

    def ground_truth(self, entry) -> np.ndarray:
        """H×W float32 lidar depth of a frame (camera z, 0 = none)."""
        return entry.ground_truth()

    def image(self, entry) -> np.ndarray:
        """The frame's RGB image."""
        return read_image(entry.image_path)

    def intrinsics(self, entry) -> tuple[float, float, float, float]:
        """(fx, fy, cx, cy) of the frame's rectified camera."""
        return entry.intrinsics()

    def title(self, entry) -> str:
        """Caption of the frame in the montage."""
        return entry.name

    def regions(self, entry, image: np.ndarray) -> np.ndarray | None:
        """H×W region map of the frame's lidar pixels (evaluation.breakdown); None where the
        scan has too few returns ahead to find the road (the frame is left out of the
        breakdown, not of the metrics)."""
        try:
            return region_map(entry.camera_points(), entry.projection, image)
        except ValueError:
            return None


def open_frames(data_path: str, split: str | None, split_file: str | None, gt: str | None,
                camera_z: bool = False, image_ext: str = '.png'
                ) -> KittiFrames | BagGtFrames | LidarFrames:
    """The frames to score: a bag-gt folder (it holds bag_gt.yaml), real frames of a KITTI
    object, tracking or KITTI-360 folder, or a KITTI-layout split."""
    if not os.path.isdir(data_path):
        raise FileNotFoundError(f'data path not found: {data_path}')
    if detect_layout(data_path) is not None:
        if split or gt not in (None, 'velodyne'):
            raise ValueError(f'{data_path} holds {detect_layout(data_path)}-layout frames: '
                             'their truth is their Velodyne scans; give no --split or --gt '
                             '(--split-file may list frame names to score a subset)')
        return LidarFrames(data_path, split_file)
    if not is_bag_gt_folder(data_path):
        if not split and not split_file:
            raise ValueError(f'{data_path} is a KITTI raw root: give --split or --split-file')
        return KittiFrames(data_path, split, split_file, gt, camera_z, image_ext)
    if split or not split_file:
        raise ValueError(f'{data_path} is a mono-depth-bag-gt folder: give its split list with '
                         '--split-file (e.g. splits/test_files.txt), not a packaged --split')
    if gt not in (None, *BAG_GT_SOURCES):
        raise ValueError(f'{data_path} is a mono-depth-bag-gt folder: its ground truth is its '
                         f'lidar depth PNGs; drop --gt {gt}')
    return BagGtFrames(data_path, split_file)
