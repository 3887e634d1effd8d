"""The rendered camera of a synthetic world: KITTI's, or another car's, and its calibration files.

A CameraSpec changes the left colour camera (image_02; image_03 keeps its KITTI baseline next
to it): focal length, image size, mounting height above the road and pitch. The lidar stays
where KITTI's is, so that the drive looks as if another car carried the same Velodyne. The
calibration files of a world with such a camera describe it exactly: every rectified camera
gets the new K and size (P_rect_0c = K·[I | b_c] with KITTI's baselines b_c, S_rect_0c), and
calib_velo_to_cam.txt the new extrinsics, so that P_rect_02·R_rect_00·[R|T] projects the lidar
onto the pixels that see it. The unrectified entries (K_0c, D_0c, S_0c ...) stay KITTI's.
"""

from dataclasses import dataclass
import math
from pathlib import Path
import shutil

import numpy as np

from mono_depth_ros.core.constants import KITTI_CAMERA_HEIGHT
from mono_depth_ros.datasets.kitti import read_calib_file

CAM_TO_CAM, VELO_TO_CAM = 'calib_cam_to_cam.txt', 'calib_velo_to_cam.txt'
RECTIFIED_CAMERAS = (0, 1, 2, 3)
MAX_PITCH_DEGREES = 45.0


@dataclass(frozen=True)
class CameraSpec:
    """The left colour camera of a synthetic car; the defaults are KITTI's."""

    focal: float | None = None              # fx = fy in pixels; None: KITTI's (P_rect_02)
    size: tuple[int, int] | None = None     # (H, W); None: KITTI's 375×1242
    height: float = KITTI_CAMERA_HEIGHT     # metres above the road
    pitch: float = 0.0                      # degrees; positive tilts the camera down

    def is_kitti(self) -> bool:
        """True when every option keeps KITTI's camera (the world is then KITTI's exactly)."""
        return self == CameraSpec()

    def check(self) -> None:
        """Raise ValueError naming the first option out of range."""
        if self.focal is not None and not (math.isfinite(self.focal) and self.focal > 0):
            raise ValueError(f'camera focal length must be a positive number of pixels, got '
                             f'{self.focal!r}')
        if self.size is not None and (len(self.size) != 2 or not all(
                isinstance(v, int) and not isinstance(v, bool) and v >= 16 for v in self.size)):
            raise ValueError(f'camera image size must be (height, width), integers >= 16, got '
                             f'{self.size!r}')
        if not (math.isfinite(self.height) and 0.2 <= self.height <= 10.0):
            raise ValueError(f'camera height must be 0.2-10 m above the road, got '
                             f'{self.height!r}')
        if not (math.isfinite(self.pitch) and abs(self.pitch) <= MAX_PITCH_DEGREES):
            raise ValueError(f'camera pitch must be within ±{MAX_PITCH_DEGREES:g} degrees, got '
                             f'{self.pitch!r}')

    def matrix(self, kitti_k: np.ndarray, kitti_size: tuple[int, int]
               ) -> tuple[np.ndarray, tuple[int, int]]:
        """(K 3×3, (H, W)) of this camera, given KITTI's.

        The principal point keeps its place relative to the image (KITTI's is slightly off
        centre): c' = (c + 0.5)·W'/W − 0.5, pixel centres at integer coordinates.
        """
        height, width = self.size or kitti_size
        k = np.array(kitti_k, dtype=np.float64)
        if self.size is not None:
            k[0, 2] = (k[0, 2] + 0.5) * width / kitti_size[1] - 0.5
            k[1, 2] = (k[1, 2] + 0.5) * height / kitti_size[0] - 0.5
        if self.focal is not None:
            k[0, 0] = k[1, 1] = float(self.focal)
        return k, (int(height), int(width))

    def mount(self) -> tuple[np.ndarray, np.ndarray]:
        """(rotation 3×3 camera → car, camera centre in the car frame) of this camera.

        The car frame is KITTI's rectified camera 2 (x right, y down, z forward, the road
        KITTI_CAMERA_HEIGHT below it); a camera pitched by p looks along (0, sin p, cos p).
        """
        angle = math.radians(self.pitch)
        rotation = np.array([[1.0, 0.0, 0.0],
                             [0.0, math.cos(angle), math.sin(angle)],
                             [0.0, -math.sin(angle), math.cos(angle)]])
        return rotation, np.array([0.0, KITTI_CAMERA_HEIGHT - self.height, 0.0])


def _line(key: str, values: np.ndarray) -> str:
    """One calibration line, at full double precision (the renderer uses the exact values)."""
    return f'{key}: ' + ' '.join(f'{v:.15e}' for v in np.ravel(values)) + '\n'


def _replace_lines(text: str, lines: dict[str, str]) -> str:
    """text with the line of each key replaced; KeyError when a key is missing."""
    out, seen = [], set()
    for line in text.splitlines(keepends=True):
        key = line.partition(':')[0].strip()
        out.append(lines.get(key, line))
        seen.add(key)
    missing = sorted(set(lines) - seen)
    if missing:
        raise KeyError(f'calibration keys not found: {missing}')
    return ''.join(out)


def write_calibration(source_dir: Path, target_dir: Path, camera: CameraSpec,
                      files: tuple[str, ...]) -> None:
    """Copy KITTI's calibration files; for another camera, rewrite the entries it changes."""
    for name in files:
        shutil.copyfile(source_dir / name, target_dir / name)
    if camera.is_kitti():
        return
    cam = read_calib_file(source_dir / CAM_TO_CAM)
    velo = read_calib_file(source_dir / VELO_TO_CAM)
    kitti_k = cam['P_rect_02'].reshape(3, 4)[:, :3]
    width, height = cam['S_rect_02']
    k, size = camera.matrix(kitti_k, (int(round(height)), int(round(width))))
    lines = {}
    for c in RECTIFIED_CAMERAS:
        p_rect = cam[f'P_rect_0{c}'].reshape(3, 4)
        baseline = np.linalg.solve(p_rect[:, :3], p_rect[:, 3])
        lines[f'P_rect_0{c}'] = _line(f'P_rect_0{c}', k @ np.hstack([np.eye(3),
                                                                      baseline[:, None]]))
        lines[f'S_rect_0{c}'] = _line(f'S_rect_0{c}', [size[1], size[0]])
    text = (target_dir / CAM_TO_CAM).read_text()
    (target_dir / CAM_TO_CAM).write_text(_replace_lines(text, lines))
    velo_to_cam = velo_to_reference(cam, velo, camera)
    text = (target_dir / VELO_TO_CAM).read_text()
    (target_dir / VELO_TO_CAM).write_text(_replace_lines(text, {
        'R': _line('R', velo_to_cam[:3, :3]), 'T': _line('T', velo_to_cam[:3, 3])}))


def velo_to_car(cam: dict, velo: dict) -> tuple[np.ndarray, np.ndarray]:
    """(4×4 Velodyne → car frame, 4×4 rectified camera 0 → camera 2) of KITTI's calibration."""
    p_rect = cam['P_rect_02'].reshape(3, 4)
    to_cam2 = np.eye(4)
    to_cam2[:3, 3] = np.linalg.solve(p_rect[:, :3], p_rect[:, 3])
    r_rect = np.eye(4)
    r_rect[:3, :3] = cam['R_rect_00'].reshape(3, 3)
    velo_to_cam = np.eye(4)
    velo_to_cam[:3, :3] = velo['R'].reshape(3, 3)
    velo_to_cam[:3, 3] = velo['T']
    return to_cam2 @ r_rect @ velo_to_cam, to_cam2


def velo_to_reference(cam: dict, velo: dict, camera: CameraSpec) -> np.ndarray:
    """4×4 calib_velo_to_cam [R|T] that puts camera 2 where camera mounts it.

    With P_rect_02 = K·[I | b_2] and R_rect_00 kept, P_rect_02·R_rect_00·[R|T] must equal
    K·(car → camera)·(Velodyne → car).
    """
    lidar, to_cam2 = velo_to_car(cam, velo)
    rotation, centre = camera.mount()
    car_to_camera = np.eye(4)
    car_to_camera[:3, :3] = rotation.T
    car_to_camera[:3, 3] = -rotation.T @ centre
    r_rect = np.eye(4)
    r_rect[:3, :3] = cam['R_rect_00'].reshape(3, 3)
    return np.linalg.inv(r_rect) @ np.linalg.inv(to_cam2) @ car_to_camera @ lidar
