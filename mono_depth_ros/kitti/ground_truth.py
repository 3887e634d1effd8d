"""Sparse ground-truth depth from a Velodyne scan: the KITTI protocol used by every paper."""

import os

import numpy as np

from mono_depth_ros.kitti.calib import velo_to_image_matrix
from mono_depth_ros.kitti.io import load_velodyne


def project_points(points: np.ndarray, velo_to_image: np.ndarray, size: tuple[int, int],
                   vel_depth: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Project Velodyne points to (rows, cols, depths) of the in-image points with x ≥ 0."""
    points = points[points[:, 0] >= 0]
    homogeneous = np.hstack([points[:, :3].astype(np.float64), np.ones((len(points), 1))])
    projected = homogeneous @ velo_to_image.T
    with np.errstate(divide='ignore', invalid='ignore'):
        u = projected[:, 0] / projected[:, 2]
        v = projected[:, 1] / projected[:, 2]
    depth = points[:, 0].astype(np.float64) if vel_depth else projected[:, 2]
    cols = np.round(u) - 1
    rows = np.round(v) - 1
    height, width = size
    inside = (cols >= 0) & (rows >= 0) & (cols < width) & (rows < height)
    return rows[inside].astype(np.int64), cols[inside].astype(np.int64), depth[inside]


def generate_depth_map(calib_dir: str | os.PathLike, velo_path: str | os.PathLike,
                       cam: int = 2, vel_depth: bool = False) -> np.ndarray:
    """Return the H×W float32 depth map of a scan (0 = none); nearest point wins per pixel.

    Standard protocol (Eigen et al., monodepth2): keep points with x ≥ 0, project with
    P_rect·R_rect·velo_to_cam, pixel = round(u) − 1, round(v) − 1, keep those inside the image.
    Depth is the Velodyne forward distance x when vel_depth is True (the 'eigen' export), else
    the camera z; negative depths become 0.
    """
    velo_to_image, size = velo_to_image_matrix(calib_dir, cam)
    return scan_to_depth_map(load_velodyne(velo_path), velo_to_image, size, vel_depth)


def scan_to_depth_map(points: np.ndarray, velo_to_image: np.ndarray, size: tuple[int, int],
                      vel_depth: bool = False) -> np.ndarray:
    """Return the H×W float32 depth map of Velodyne points (N×3+) under a 3×4 projection."""
    rows, cols, depth = project_points(points, velo_to_image, size, vel_depth)
    depth_map = np.zeros(size, dtype=np.float64)
    # Sorted nearest first, np.unique's first occurrence of each pixel is its nearest point.
    order = np.argsort(depth, kind='stable')
    _, first = np.unique(rows[order] * size[1] + cols[order], return_index=True)
    keep = order[first]
    depth_map[rows[keep], cols[keep]] = depth[keep]
    depth_map[depth_map < 0] = 0
    return depth_map.astype(np.float32)
