"""Lidar ground truth for any calibrated camera, as KITTI depth PNGs (numpy and OpenCV, no ROS).

Points already in the camera's optical frame (x right, y down, z forward) are projected with a
pinhole camera matrix (CameraInfo's K, or P after the rectification rotation R) by the same
code as the KITTI protocol (ground_truth.scan_to_depth_map): nearest point per pixel, camera z
as depth, pixel = round(u) − 1, round(v) − 1 ('kitti', what generate_depth_map gives) or
round(u), round(v) ('centre': pixel centres at integer coordinates, as core.geometry).
"""

import os
from pathlib import Path

import cv2
import numpy as np

from mono_depth_ros.core.paths import atomic_output
from mono_depth_ros.datasets.kitti.ground_truth import scan_to_depth_map
from mono_depth_ros.datasets.kitti.io import IMPROVED_GT_SCALE

PIXEL_CONVENTIONS = ('kitti', 'centre')
# Deepest depth a uint16 depth·256 PNG holds (metres); deeper points are left out.
MAX_PNG_DEPTH = np.iinfo(np.uint16).max / IMPROVED_GT_SCALE
# round(u + 1) − 1 = round(u): adding 1 to u and v turns the KITTI convention into 'centre'.
_SHIFT_ONE_PIXEL = np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0], [0.0, 0.0, 1.0]])


def camera_projection(k, p, r, use_p: bool) -> tuple[np.ndarray, np.ndarray]:
    """(3×4 projection, 3×3 rotation into its frame) from CameraInfo K (9), P (12), R (9).

    use_p: P after R (a rectified image); else K in the optical frame itself. An all-zero R is
    read as the identity. ValueError when the matrix is not a pinhole camera.
    """
    if use_p:
        projection = np.asarray(p, dtype=np.float64).reshape(3, 4)
        rotation = np.asarray(r, dtype=np.float64).reshape(3, 3)
        rotation = rotation if np.any(rotation) else np.eye(3)
        what = 'P'
    else:
        projection = np.hstack([np.asarray(k, dtype=np.float64).reshape(3, 3), np.zeros((3, 1))])
        rotation, what = np.eye(3), 'K'
    if not np.all(np.isfinite(projection)) or not np.all(np.isfinite(rotation)):
        raise ValueError(f'CameraInfo {what} or R holds non-finite values')
    if projection[0, 0] <= 0 or projection[1, 1] <= 0 or \
            not np.allclose(projection[2], [0.0, 0.0, 1.0, 0.0]):
        raise ValueError(f'CameraInfo {what} is not a pinhole camera matrix (fx, fy > 0, last '
                         f'row 0 0 1): {projection.round(6).tolist()}')
    return projection, rotation


def camera_depth_map(points: np.ndarray, projection: np.ndarray, size: tuple[int, int],
                     rotation: np.ndarray | None = None,
                     pixel_convention: str = 'kitti') -> np.ndarray:
    """H×W float32 camera-z depth (0 = none) of optical-frame points (N×3) seen by a camera.

    Points are rotated by rotation (CameraInfo R, for P) first; points with z ≤ 0 or a
    non-finite coordinate are dropped, the nearest point wins each pixel.
    """
    if pixel_convention not in PIXEL_CONVENTIONS:
        raise ValueError(f'pixel convention must be one of {PIXEL_CONVENTIONS}, got '
                         f'{pixel_convention!r}')
    points = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    if rotation is not None:
        points = points @ np.asarray(rotation, dtype=np.float64).T
    points = points[np.all(np.isfinite(points), axis=1) & (points[:, 2] > 0)]
    projection = np.asarray(projection, dtype=np.float64)
    if pixel_convention == 'centre':
        projection = _SHIFT_ONE_PIXEL @ projection
    # scan_to_depth_map keeps the points whose first coordinate is >= 0 (the Velodyne's forward
    # axis) and takes depth from the projection's last row (here z): hand it (z, x, y) and the
    # matching columns of the projection.
    return scan_to_depth_map(points[:, [2, 0, 1]], projection[:, [2, 0, 1, 3]], tuple(size))


def xyz_points(cloud: np.ndarray) -> np.ndarray:
    """N×3 float64 x, y, z of a structured point array (any shape), finite points only."""
    names = cloud.dtype.names or ()
    missing = [axis for axis in 'xyz' if axis not in names]
    if missing:
        raise ValueError(f'point cloud has no field(s) {", ".join(missing)}; fields: '
                         f'{", ".join(names) or "none"}')
    points = np.stack([cloud[axis].reshape(-1) for axis in 'xyz'], axis=1).astype(np.float64)
    return points[np.all(np.isfinite(points), axis=1)]


def transform_points(points: np.ndarray, transform: np.ndarray) -> np.ndarray:
    """N×3 points mapped by a 4×4 rigid transform (R·p + t)."""
    transform = np.asarray(transform, dtype=np.float64)
    return np.asarray(points, dtype=np.float64) @ transform[:3, :3].T + transform[:3, 3]


def encode_depth_png(depth: np.ndarray) -> np.ndarray:
    """uint16 H×W depth·256 (KITTI depth completion; 0 = no depth) of metres (0 = none).

    Depths that round to 0 or exceed MAX_PNG_DEPTH cannot be stored and become 0.
    """
    depth = np.asarray(depth, dtype=np.float64)
    with np.errstate(invalid='ignore'):
        keep = np.isfinite(depth) & (depth > 0) & (depth <= MAX_PNG_DEPTH)
    return np.round(np.where(keep, depth, 0.0) * IMPROVED_GT_SCALE).astype(np.uint16)


def write_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """Write data to path whole or not at all (core.paths.atomic_output)."""
    with atomic_output(path) as stream:
        stream.write(data)
    return Path(path)


def write_png(path: str | os.PathLike, image: np.ndarray) -> Path:
    """Write an RGB uint8 or a uint16 single-channel image as a PNG, atomically."""
    image = np.asarray(image)
    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    ok, encoded = cv2.imencode('.png', image)
    if not ok:
        raise OSError(f'could not encode {path} as PNG')
    return write_atomic(path, encoded.tobytes())
