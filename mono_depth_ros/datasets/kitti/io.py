"""Readers for KITTI raw files: Velodyne scans, images and improved ground-truth PNGs."""

from datetime import datetime, UTC
import os
from pathlib import Path

import cv2
import numpy as np

# Files shipped with the package: split lists, the raw archive list, one date's calibration.
KITTI_FILES = Path(__file__).resolve().parent / 'files'

# Bytes per Velodyne point: four float32 values (x, y, z, reflectance).
VELODYNE_POINT_BYTES = 16

# Improved ground truth (KITTI depth benchmark) stores depth in metres times this factor.
IMPROVED_GT_SCALE = 256.0


class KittiFormatError(ValueError):
    """A KITTI file exists but its content is malformed; the message names the file."""


def require_file(path: str | os.PathLike, what: str) -> str:
    """Return path as a string, raising FileNotFoundError naming what and path if it is absent."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f'{what} not found: {path}')
    return path


def load_velodyne(path: str | os.PathLike) -> np.ndarray:
    """Read a Velodyne .bin scan as an N×4 float32 array of x, y, z, reflectance."""
    path = require_file(path, 'Velodyne scan')
    size = os.path.getsize(path)
    if size % VELODYNE_POINT_BYTES:
        raise KittiFormatError(
            f'Velodyne scan {path} has {size} bytes, not a multiple of {VELODYNE_POINT_BYTES} '
            '(4 float32 per point): the file is truncated or not a KITTI scan')
    return np.fromfile(path, dtype=np.float32).reshape(-1, 4)


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read a colour image file as an H×W×3 RGB uint8 array."""
    path = require_file(path, 'image')
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        raise KittiFormatError(f'image {path} could not be decoded')
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def read_dense_depth(path: str | os.PathLike) -> np.ndarray:
    """Read a synthetic world's dense true depth (.npy, camera z, 0 = no surface) as float32
    metres with +inf where no surface was hit (sky: beyond every range)."""
    path = require_file(path, 'dense depth file')
    try:
        depth = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as error:
        raise KittiFormatError(f'dense depth file {path} could not be read: {error}') from error
    if depth.ndim != 2 or not np.issubdtype(depth.dtype, np.floating):
        raise KittiFormatError(f'dense depth file {path} must hold an H×W float array, got '
                               f'{depth.dtype} with shape {depth.shape}')
    depth = depth.astype(np.float32)
    if not np.all(np.isfinite(depth) & (depth >= 0)):
        raise KittiFormatError(f'dense depth file {path} holds negative or non-finite values')
    depth[depth == 0] = np.inf
    return depth


def read_improved_gt(path: str | os.PathLike) -> np.ndarray:
    """Read an improved ground-truth PNG (uint16, depth·256, 0 = none) as float32 metres."""
    return read_depth_png(path, 'improved ground-truth PNG')


def read_depth_png(path: str | os.PathLike, what: str = 'depth PNG') -> np.ndarray:
    """Read a KITTI depth PNG (uint16, depth·256, 0 = none) as float32 metres; errors name
    what the file is and its path."""
    path = require_file(path, what)
    raw = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if raw is None:
        raise KittiFormatError(f'{what} {path} could not be decoded')
    if raw.dtype != np.uint16 or raw.ndim != 2:
        raise KittiFormatError(
            f'{what} {path} must be single-channel uint16, '
            f'got {raw.dtype} with shape {raw.shape}')
    return raw.astype(np.float32) / IMPROVED_GT_SCALE


def parse_timestamp(text: str) -> int:
    """Nanoseconds since the epoch of a KITTI time '2011-09-26 13:02:25.964389445' (as UTC)."""
    whole, _, fraction = text.strip().partition('.')
    try:
        moment = datetime.strptime(whole, '%Y-%m-%d %H:%M:%S').replace(tzinfo=UTC)
        if not fraction.isdigit() or len(fraction) > 9:
            raise ValueError(fraction)
    except ValueError:
        raise ValueError(f'bad KITTI timestamp {text.strip()!r}') from None
    return int(moment.timestamp()) * 1_000_000_000 + int(fraction.ljust(9, '0'))


def read_timestamps(path: Path, count: int) -> list[int]:
    """count stamps (ns) from a KITTI timestamps.txt, with errors naming the file."""
    if not path.is_file():
        raise FileNotFoundError(f'timestamps file not found: {path}')
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    if len(lines) < count:
        raise ValueError(f'{path} has {len(lines)} timestamps for {count} frames')
    try:
        return [parse_timestamp(line) for line in lines[:count]]
    except ValueError as error:
        raise ValueError(f'{path}: {error}') from None
