"""KITTI raw data: calibration, Velodyne scans, images, split lists and lidar ground truth."""

from mono_depth_ros.datasets.kitti.calib import (
    load_intrinsics,
    load_velo_to_cam,
    read_calib_file,
    velo_to_image_matrix,
)
from mono_depth_ros.datasets.kitti.ground_truth import generate_depth_map, scan_to_depth_map
from mono_depth_ros.datasets.kitti.io import (
    KittiFormatError,
    load_velodyne,
    read_image,
    read_improved_gt,
)
from mono_depth_ros.datasets.kitti.splits import read_split, SPLIT_FILES, split_path, SplitEntry

__all__ = [
    'generate_depth_map', 'KittiFormatError', 'load_intrinsics', 'load_velo_to_cam',
    'load_velodyne', 'read_calib_file', 'read_image', 'read_improved_gt', 'read_split',
    'scan_to_depth_map', 'split_path', 'SPLIT_FILES', 'SplitEntry', 'velo_to_image_matrix',
]
