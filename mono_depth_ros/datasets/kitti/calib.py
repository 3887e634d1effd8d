"""KITTI raw calibration: parse calib_*.txt files and build camera and projection matrices."""

import os

import numpy as np

from mono_depth_ros.datasets.kitti.io import KittiFormatError, require_file

CAM_TO_CAM = 'calib_cam_to_cam.txt'
VELO_TO_CAM = 'calib_velo_to_cam.txt'
TEXT_KEYS = ('calib_time',)  # keys whose value is text, e.g. 'calib_time: 09-Jan-2012 13:57:47'


def read_calib_file(path: str | os.PathLike, bare_keys: bool = False) -> dict[str, np.ndarray]:
    """Parse a KITTI calibration file into {key: float64 vector} (calib_time is skipped).

    bare_keys also reads 'key values' lines without a colon, as the KITTI tracking devkit writes
    R_rect and Tr_velo_cam.
    """
    path = require_file(path, 'calibration file')
    data = {}
    with open(path, encoding='utf-8') as stream:
        for number, line in enumerate(stream, start=1):
            if not line.strip():
                continue
            key, sep, value = line.partition(':')
            if bare_keys and (not sep or ' ' in key.strip()):
                key, sep, value = line.strip().partition(' ')
            if not sep:
                raise KittiFormatError(
                    f'calibration file {path} line {number}: expected "key: values", '
                    f'got {line.strip()!r}')
            key = key.strip()
            if key in TEXT_KEYS:
                continue
            try:
                data[key] = np.array([float(v) for v in value.split()])
            except ValueError as error:
                raise KittiFormatError(f'calibration file {path} line {number}: {key!r} '
                                       f'holds a non-number ({error})') from error
    return data


def calib_value(calib: dict[str, np.ndarray], key: str, size: int, path: str) -> np.ndarray:
    """Return calib[key], raising KittiFormatError when it is missing or has the wrong size."""
    if key not in calib:
        raise KittiFormatError(f'calibration file {path} has no key {key!r}')
    value = calib[key]
    if value.size != size:
        raise KittiFormatError(
            f'calibration file {path}: {key!r} has {value.size} values, expected {size}')
    return value


def check_camera(cam: int) -> None:
    """Raise ValueError unless cam is one of KITTI's colour cameras (2 = left, 3 = right)."""
    if cam not in (2, 3):
        raise ValueError(f'camera must be 2 (left, image_02) or 3 (right, image_03), got {cam}')


def load_velo_to_cam(calib_dir: str | os.PathLike) -> np.ndarray:
    """Return the 4×4 rigid transform from the Velodyne frame to the reference camera."""
    path = os.path.join(os.fspath(calib_dir), VELO_TO_CAM)
    calib = read_calib_file(path)
    transform = np.eye(4)
    transform[:3, :3] = calib_value(calib, 'R', 9, path).reshape(3, 3)
    transform[:3, 3] = calib_value(calib, 'T', 3, path)
    return transform


def load_camera(calib_dir: str | os.PathLike, cam: int = 2) -> tuple[np.ndarray, np.ndarray,
                                                                        tuple[int, int]]:
    """Return (P_rect 3×4, R_rect_00 padded to 4×4, (H, W)) of a rectified colour camera."""
    check_camera(cam)
    path = os.path.join(os.fspath(calib_dir), CAM_TO_CAM)
    calib = read_calib_file(path)
    p_rect = calib_value(calib, f'P_rect_0{cam}', 12, path).reshape(3, 4)
    r_rect = np.eye(4)
    r_rect[:3, :3] = calib_value(calib, 'R_rect_00', 9, path).reshape(3, 3)
    width, height = calib_value(calib, f'S_rect_0{cam}', 2, path)
    return p_rect, r_rect, (int(round(height)), int(round(width)))


def load_intrinsics(calib_dir: str | os.PathLike,
                    cam: int = 2) -> tuple[np.ndarray, tuple[int, int]]:
    """Return (K 3×3, (H, W)) of rectified colour camera cam (2 or 3) from calib_cam_to_cam."""
    p_rect, _, size = load_camera(calib_dir, cam)
    return p_rect[:, :3].copy(), size


def velo_to_image_matrix(calib_dir: str | os.PathLike,
                         cam: int = 2) -> tuple[np.ndarray, tuple[int, int]]:
    """Return (P_rect·R_rect·velo_to_cam as 3×4, (H, W)): Velodyne points to image pixels."""
    p_rect, r_rect, size = load_camera(calib_dir, cam)
    return p_rect @ r_rect @ load_velo_to_cam(calib_dir), size
