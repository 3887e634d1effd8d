"""Real frames with lidar in the KITTI 3D-object, KITTI tracking and KITTI-360 layouts.

Each layout gives a list of LidarFrame: an image, its Velodyne scan, the rigid map from the
Velodyne to the rectified camera (R_rect·T_velo→cam) and the camera's P_rect. The ground truth
is made by the same projection as KITTI raw (ground_truth.scan_to_depth_map: nearest return per
pixel, camera z, pixel = round(u) − 1, round(v) − 1).

- object:   <root>/[training/]{image_2/NNNNNN.png, velodyne/NNNNNN.bin, calib/NNNNNN.txt}
            with P2, R0_rect, Tr_velo_to_cam
- tracking: <root>/[training/]{image_02/SSSS/NNNNNN.png, velodyne/SSSS/NNNNNN.bin,
            calib/SSSS.txt} with P2, R_rect, Tr_velo_cam (keys with or without a colon)
- kitti360: <root>/calibration/{perspective.txt (P_rect_00, R_rect_00), calib_cam_to_velo.txt
            (3×4, camera 0 → Velodyne)}, data_2d_raw/<drive>/image_00/data_rect/NNNNNNNNNN.png,
            data_3d_raw/<drive>/velodyne_points/data/NNNNNNNNNN.bin
"""

from dataclasses import dataclass
import os
from pathlib import Path

import cv2
import numpy as np

from mono_depth_ros.datasets.kitti.calib import read_calib_file
from mono_depth_ros.datasets.kitti.ground_truth import scan_to_depth_map
from mono_depth_ros.datasets.kitti.io import KittiFormatError, load_velodyne, require_file

LAYOUTS = ('object', 'tracking', 'kitti360')
IMAGE_EXTS = ('.png', '.jpg')
LIDAR_FRAME_SOURCES = ('lidar',)  # ground truth of real frames: the projected scan

# Keys of the per-frame calibration, in the object layout and (second) the tracking layout.
OBJECT_KEYS = {'P2': ('P2',), 'R_rect': ('R0_rect', 'R_rect'),
               'Tr': ('Tr_velo_to_cam', 'Tr_velo_cam')}


@dataclass(frozen=True)
class LidarFrame:
    """One real frame: image, Velodyne scan and the Velodyne → image projection (3×4)."""

    name: str                  # e.g. 'object/000003', 'tracking/0001/000010'
    image_path: Path
    scan_path: Path
    velo_to_rect: np.ndarray   # R_rect · T_velo→cam (3×4): Velodyne → rectified camera
    projection: np.ndarray     # P_rect (3×4): the rectified camera's intrinsics

    @property
    def velo_to_image(self) -> np.ndarray:
        """P_rect · R_rect · T_velo→cam (3×4): Velodyne points to image pixels."""
        return self.projection @ _homogeneous(self.velo_to_rect)

    def camera_points(self) -> np.ndarray:
        """N×3 Velodyne points in the rectified camera frame (x right, y down, z forward)."""
        points = load_velodyne(self.scan_path)[:, :3].astype(np.float64)
        return points @ self.velo_to_rect[:, :3].T + self.velo_to_rect[:, 3]

    def line(self) -> str:
        """The frame's name (what split lists and reports call it)."""
        return self.name

    def intrinsics(self) -> tuple[float, float, float, float]:
        """(fx, fy, cx, cy) of the rectified camera."""
        p = self.projection
        return float(p[0, 0]), float(p[1, 1]), float(p[0, 2]), float(p[1, 2])

    def image_size(self) -> tuple[int, int]:
        """(H, W) of the image, read from its header."""
        image = cv2.imread(os.fspath(require_file(self.image_path, 'image')),
                           cv2.IMREAD_UNCHANGED)
        if image is None:
            raise KittiFormatError(f'image {self.image_path} could not be decoded')
        return image.shape[:2]

    def ground_truth(self, size: tuple[int, int] | None = None) -> np.ndarray:
        """H×W float32 lidar depth (camera z in metres, 0 = none) at the image's size."""
        size = size or self.image_size()
        return scan_to_depth_map(load_velodyne(self.scan_path), self.velo_to_image, size)


def _matrix(calib: dict, names: tuple[str, ...], shape: tuple[int, int], path) -> np.ndarray:
    """The first of names found in calib, reshaped; KittiFormatError naming the file if none."""
    for name in names:
        if name in calib:
            if calib[name].size != shape[0] * shape[1]:
                raise KittiFormatError(f'calibration file {path}: {name!r} has '
                                       f'{calib[name].size} values, expected '
                                       f'{shape[0] * shape[1]}')
            return calib[name].reshape(shape)
    raise KittiFormatError(f'calibration file {path} has none of the keys {list(names)}')


def _homogeneous(matrix: np.ndarray) -> np.ndarray:
    """A 3×3 or 3×4 matrix padded to 4×4 (identity elsewhere)."""
    out = np.eye(4)
    out[:3, :matrix.shape[1]] = matrix
    return out


def object_projection(calib_path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """(Velodyne → rectified camera 3×4, P2) of a KITTI object or tracking calibration file."""
    calib = read_calib_file(calib_path, bare_keys=True)
    p2 = _matrix(calib, OBJECT_KEYS['P2'], (3, 4), calib_path)
    r_rect = _matrix(calib, OBJECT_KEYS['R_rect'], (3, 3), calib_path)
    tr = _matrix(calib, OBJECT_KEYS['Tr'], (3, 4), calib_path)
    if not all(np.all(np.isfinite(m)) for m in (p2, r_rect, tr)):
        raise KittiFormatError(f'calibration file {calib_path} holds non-finite values')
    return (_homogeneous(r_rect) @ _homogeneous(tr))[:3], p2


def kitti360_projection(root: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """(Velodyne → rectified camera 3×4, P_rect_00) of a KITTI-360 root's camera 0."""
    folder = Path(root) / 'calibration'
    perspective = read_calib_file(folder / 'perspective.txt')
    p_rect = _matrix(perspective, ('P_rect_00',), (3, 4), folder / 'perspective.txt')
    r_rect = _matrix(perspective, ('R_rect_00',), (3, 3), folder / 'perspective.txt')
    path = require_file(folder / 'calib_cam_to_velo.txt', 'KITTI-360 calibration')
    try:
        cam_to_velo = np.loadtxt(path, dtype=np.float64).reshape(3, 4)
    except ValueError as error:
        raise KittiFormatError(f'{path}: expected 12 numbers (3×4, camera 0 → Velodyne): '
                               f'{error}') from error
    velo_to_cam = np.linalg.inv(_homogeneous(cam_to_velo))
    return (_homogeneous(r_rect) @ velo_to_cam)[:3], p_rect


def detect_layout(root: str | os.PathLike) -> str | None:
    """The layout of a folder ('object', 'tracking', 'kitti360') or None."""
    root = Path(root)
    if (root / 'calibration' / 'perspective.txt').is_file() and (root / 'data_2d_raw').is_dir():
        return 'kitti360'
    base = _object_base(root)
    if base is None:
        return None
    return 'object' if (base / 'image_2').is_dir() else 'tracking'


def _object_base(root: Path) -> Path | None:
    """The folder holding calib/ and image_2/ (object) or image_02/ (tracking), if any."""
    for base in (root, root / 'training'):
        if (base / 'calib').is_dir() and (base / 'velodyne').is_dir() and (
                (base / 'image_2').is_dir() or (base / 'image_02').is_dir()):
            return base
    return None


def _image(folder: Path, stem: str) -> Path | None:
    """The image of a frame stem in a folder (png or jpg), None if absent."""
    for ext in IMAGE_EXTS:
        if (folder / f'{stem}{ext}').is_file():
            return folder / f'{stem}{ext}'
    return None


def _frames_in(images: Path, scans: Path, prefix: str, projection) -> list[LidarFrame]:
    """Frames of an image folder that have a scan (sorted by name); the calibration is read
    (projection()) only when there is one."""
    pairs = [(scan, _image(images, scan.stem)) for scan in sorted(scans.glob('*.bin'))]
    pairs = [(scan, image) for scan, image in pairs if image is not None]
    if not pairs:
        return []
    velo_to_rect, p_rect = projection()
    return [LidarFrame(f'{prefix}/{scan.stem}', image, scan, velo_to_rect, p_rect)
            for scan, image in pairs]


def list_frames(root: str | os.PathLike) -> list[LidarFrame]:
    """Every frame with an image, a scan and calibration under a real-data root.

    FileNotFoundError when the folder is missing, ValueError when it is none of LAYOUTS or
    holds no complete frame.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f'data path not found: {root}')
    layout = detect_layout(root)
    if layout is None:
        raise ValueError(f'{root} is none of the layouts {LAYOUTS}: expected calib/, velodyne/ '
                         'and image_2/ (object) or image_02/ (tracking), or calibration/ and '
                         'data_2d_raw/ (KITTI-360)')
    frames = []
    if layout == 'kitti360':
        calibration = kitti360_projection(root)
        for drive in sorted(p for p in (root / 'data_2d_raw').iterdir() if p.is_dir()):
            frames += _frames_in(drive / 'image_00' / 'data_rect',
                                 root / 'data_3d_raw' / drive.name / 'velodyne_points' / 'data',
                                 f'kitti360/{drive.name}', lambda: calibration)
    elif layout == 'object':
        base = _object_base(root)
        for scan in sorted((base / 'velodyne').glob('*.bin')):
            image = _image(base / 'image_2', scan.stem)
            if image is not None:
                frames.append(LidarFrame(f'object/{scan.stem}', image, scan,
                                         *object_projection(base / 'calib' / f'{scan.stem}.txt')))
    else:
        base = _object_base(root)
        for sequence in sorted(p for p in (base / 'image_02').iterdir() if p.is_dir()):
            calib = base / 'calib' / f'{sequence.name}.txt'
            frames += _frames_in(sequence, base / 'velodyne' / sequence.name,
                                 f'tracking/{sequence.name}',
                                 lambda calib=calib: object_projection(calib))
    if not frames:
        raise ValueError(f'{root} ({layout} layout) holds no frame with both an image and a '
                         'Velodyne scan')
    return frames


def select_frames(frames: list[LidarFrame], split_file: str | os.PathLike,
                  data_path: str | os.PathLike) -> list[LidarFrame]:
    """The frames a split file names (one frame name a line, e.g. object/000003; '#' comments),
    in its order; ValueError naming the frames data_path does not hold."""
    lines = Path(split_file).read_text(encoding='utf-8').splitlines()
    names = [line.strip() for line in lines if line.strip() and not line.startswith('#')]
    known = {frame.name: frame for frame in frames}
    missing = [name for name in names if name not in known]
    if missing:
        raise ValueError(f'{split_file} names frames that {data_path} does not hold: '
                         f'{missing[:5]} (frame names look like {frames[0].name})')
    if not names:
        raise ValueError(f'{split_file} names no frame')
    return [known[name] for name in names]
