"""Write synthetic drives in the exact KITTI raw layout, with dense depth and split lists."""

from collections.abc import Callable
import copy
from dataclasses import dataclass
from datetime import datetime, timedelta
import os
from pathlib import Path
import shutil

import cv2
import numpy as np

from mono_depth_ros.core.constants import MAX_DEPTH
from mono_depth_ros.datasets.kitti import read_calib_file
from mono_depth_ros.datasets.kitti.io import KITTI_FILES
from mono_depth_ros.datasets.kitti.splits import split_counts
from mono_depth_ros.datasets.synth.camera import CameraSpec, velo_to_car, write_calibration
from mono_depth_ros.datasets.synth.narrow import build_narrow_scene
from mono_depth_ros.datasets.synth.raycast import CameraGrid, LIDAR_ELEVATIONS_DEG, LidarGrid
from mono_depth_ros.datasets.synth.render import render_camera, scan_lidar
from mono_depth_ros.datasets.synth.scene import build_scene, Scene
from mono_depth_ros.datasets.synth.varied import build_varied_scene

DATE = '2011_09_26'
CALIB_FILES = ('calib_cam_to_cam.txt', 'calib_velo_to_cam.txt', 'calib_imu_to_velo.txt')
CALIB_DIR = KITTI_FILES / 'calib' / DATE
FRAME_PERIOD = 0.1          # seconds (10 Hz)
START_TIME = datetime(2011, 9, 26, 13, 2, 25, 964389)
# The first streets and look; varied.py's; the two by turns (odd drives basic, even varied); or
# roadside: narrow.py's streets on odd drives, varied and basic by turns on the even ones.
WORLDS = ('basic', 'varied', 'mixed', 'roadside')


class Rig:
    """Cameras 2 and 3 and the Velodyne of a car; world axes = KITTI's rectified camera 2.

    camera (CameraSpec) mounts another camera 2 (focal length, image size, height, pitch), with
    camera 3 at its KITTI baseline beside it; the Velodyne stays where KITTI's is.
    """

    def __init__(self, calib_dir: Path = CALIB_DIR, camera: CameraSpec | None = None) -> None:
        cam = read_calib_file(calib_dir / 'calib_cam_to_cam.txt')
        velo = read_calib_file(calib_dir / 'calib_velo_to_cam.txt')
        width, height = cam['S_rect_02']
        self.size = (int(round(height)), int(round(width)))
        # P_rect_0c = K·[I | b_c]: camera c sits at −b_c in the rectified camera-0 frame.
        p_rect = {c: cam[f'P_rect_0{c}'].reshape(3, 4) for c in (2, 3)}
        self.k = {c: p_rect[c][:, :3] for c in (2, 3)}
        shift = {c: np.linalg.solve(self.k[c], p_rect[c][:, 3]) for c in (2, 3)}
        self.offset = {c: shift[2] - shift[c] for c in (2, 3)}   # camera c in the car frame
        # Velodyne → camera 2 (rectified), so that P_rect_02·R_rect_00·[R|T] = K·velo_to_cam2.
        self.velo_to_cam2 = velo_to_car(cam, velo)[0]
        rotation = None
        if camera is not None and not camera.is_kitti():
            camera.check()
            k, self.size = camera.matrix(self.k[2], self.size)
            self.k = {c: k for c in (2, 3)}
            rotation, centre = camera.mount()
            self.offset = {c: centre + rotation @ self.offset[c] for c in (2, 3)}
        self._cameras = {c: CameraGrid(np.zeros(3), self.k[c], self.size, rotation)
                         for c in (2, 3)}
        self._lidar = LidarGrid(self.velo_to_cam2[:3, 3], self.velo_to_cam2[:3, :3])
        self._cam2_to_velo = np.linalg.inv(self.velo_to_cam2)

    def camera(self, position: np.ndarray, cam: int = 2) -> CameraGrid:
        """Ray grid of camera cam (2 or 3) when camera 2 is at a world position."""
        grid = copy.copy(self._cameras[cam])
        grid.origin = np.asarray(position, np.float64) + self.offset[cam]
        return grid

    def lidar(self, position: np.ndarray) -> LidarGrid:
        """Velodyne ray grid when camera 2 is at a world position."""
        grid = copy.copy(self._lidar)
        grid.origin = np.asarray(position, np.float64) + self.velo_to_cam2[:3, 3]
        return grid

    def lidar_sweep_mask(self, depth: np.ndarray, cam: int = 2) -> np.ndarray:
        """True where a pixel's surface point lies within the lidar's vertical field of view."""
        rays = self._cameras[cam].dirs                     # 3×H×W in the car frame, camera z 1
        points = rays * depth + self.offset[cam][:, None, None]
        velo = np.tensordot(self._cam2_to_velo[:3, :3], points, axes=1)
        velo += self._cam2_to_velo[:3, 3, None, None]
        limit = np.tan(np.deg2rad(LIDAR_ELEVATIONS_DEG.max()))
        return velo[2] <= limit * np.hypot(velo[0], velo[1])


def kitti_timestamp(moment: datetime, nanoseconds: int) -> str:
    """KITTI's timestamp text, e.g. '2011-09-26 13:02:25.964389445'."""
    return moment.strftime('%Y-%m-%d %H:%M:%S.') + f'{nanoseconds:09d}'


def _timestamps(rng: np.random.Generator, start: datetime, frames: int) -> list[str]:
    """10 Hz timestamps with sub-millisecond jitter, as the KITTI recordings have."""
    base_ns = start.microsecond * 1000 + int(rng.integers(0, 1000))
    out = []
    for k in range(frames):
        ns = base_ns + int(round(k * FRAME_PERIOD * 1e9)) + int(rng.integers(-200_000, 200_000))
        seconds, rest = divmod(ns, 1_000_000_000)
        out.append(kitti_timestamp(start.replace(microsecond=0) + timedelta(seconds=seconds),
                                   rest))
    return out


def _shift_stamp(stamp: str, seconds: float) -> str:
    """A KITTI timestamp text moved by some seconds (nanoseconds kept)."""
    moment = datetime.strptime(stamp[:19], '%Y-%m-%d %H:%M:%S')
    total = int(stamp[20:]) + int(round(seconds * 1e9))
    whole, rest = divmod(total, 1_000_000_000)
    return kitti_timestamp(moment + timedelta(seconds=whole), rest)


def _write_png(path: Path, image: np.ndarray) -> None:
    """Write a PNG (RGB arrays are stored as RGB, uint16 as 16-bit grey)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    if not cv2.imwrite(str(path), image, [cv2.IMWRITE_PNG_COMPRESSION, 1]):
        raise OSError(f'could not write {path}')


@dataclass
class DrivePlan:
    """Everything that decides a drive's frames: its scene, ego speed and timestamps."""

    folder: str
    scene: Scene
    speed: float            # m/s along +z
    stamps: list[str]       # KITTI timestamp text per frame
    times: np.ndarray       # seconds since the first frame

    def camera_position(self, frame: int) -> np.ndarray:
        """World position of camera 2 at a frame."""
        return np.array([0.0, 0.0, self.speed * self.times[frame]])


def street_builder(world: str, drive: int) -> Callable[..., Scene]:
    """The function that lays out drive number drive (1-based) of a world (WORLDS)."""
    if world not in WORLDS:
        raise ValueError(f'world must be one of {WORLDS}, got {world!r}')
    if world == 'roadside':
        return build_narrow_scene if drive % 2 else (
            build_varied_scene if drive % 4 == 0 else build_scene)
    varied = world == 'varied' or (world == 'mixed' and drive % 2 == 0)
    return build_varied_scene if varied else build_scene


def plan_drive(seed: int, drive: int, frames: int, world: str = 'basic') -> DrivePlan:
    """Lay out drive number drive (1-based) of a world ('basic' or 'varied' streets and
    looks, 'mixed': odd drives basic, even ones varied, or 'roadside': odd drives narrow, even
    ones varied and basic by turns; WORLDS); same arguments → same plan."""
    build = street_builder(world, drive)
    rng = np.random.default_rng([seed, drive])
    speed = float(rng.uniform(8.5, 11.5))
    stamps = _timestamps(rng, START_TIME + timedelta(minutes=7 * drive), frames)
    moments = [datetime.strptime(stamp[:26], '%Y-%m-%d %H:%M:%S.%f') for stamp in stamps]
    times = np.array([(m - moments[0]).total_seconds() for m in moments])
    scene = build(rng, -60.0, speed * times[-1] + 320.0, float(times[-1]) + 1.0)
    return DrivePlan(f'{DATE}/{DATE}_drive_{drive:04d}_sync', scene, speed, stamps, times)


def write_drive(root: Path, plan: DrivePlan, seed: int, drive: int, rig: Rig,
                cameras: tuple[int, ...] = (2,),
                progress: Callable[[], None] | None = None) -> None:
    """Render and write every frame of a planned drive under root."""
    base = root / plan.folder
    for k, time in enumerate(plan.times):
        position = plan.camera_position(k)
        name = f'{k:010d}'
        for cam in cameras:
            frame_rng = np.random.default_rng([seed, drive, k, cam])
            image, depth = render_camera(plan.scene, rig.camera(position, cam), time, frame_rng)
            side = f'image_0{cam}'
            _write_png(base / side / 'data' / f'{name}.png', image)
            dense = base / 'depth_dense' / side / 'data'
            dense.mkdir(parents=True, exist_ok=True)
            np.save(dense / f'{name}.npy', depth)
            swept = (depth > 0) & (depth <= MAX_DEPTH) & rig.lidar_sweep_mask(depth, cam)
            _write_png(base / 'proj_depth' / 'groundtruth' / side / f'{name}.png',
                       np.round(np.where(swept, depth, 0) * 256).astype(np.uint16))
        scan = scan_lidar(plan.scene, rig.lidar(position), time)
        velo_dir = base / 'velodyne_points' / 'data'
        velo_dir.mkdir(parents=True, exist_ok=True)
        scan.tofile(velo_dir / f'{name}.bin')
        if progress is not None:
            progress()
    for sub in (*(f'image_0{cam}' for cam in cameras), 'velodyne_points'):
        (base / sub / 'timestamps.txt').write_text('\n'.join(plan.stamps) + '\n')
    for name, shift in (('timestamps_start.txt', -0.05), ('timestamps_end.txt', 0.05)):
        stamps = [_shift_stamp(stamp, shift) for stamp in plan.stamps]
        (base / 'velodyne_points' / name).write_text('\n'.join(stamps) + '\n')


def write_splits(root: Path, frames_by_drive: dict[str, int], val_fraction: float,
                 test_fraction: float, stereo: bool = False,
                 heldout_drives: int = 0) -> dict[str, int]:
    """Write splits/{train,val,test}_files.txt: per drive, the last frames go to val then test.

    heldout_drives > 0 keeps the last that many drives out of training altogether: every frame
    of them goes to val or test (alternating drives, val first), and the fractions apply to the
    other drives. With stereo, train and val list every frame for both sides (l then r), as
    eigen_zhou does; test lists the left camera only, as the Eigen test split does.
    """
    lines: dict[str, list[str]] = {'train': [], 'val': [], 'test': []}
    folders = list(frames_by_drive)
    first_heldout = len(folders) - heldout_drives
    for index, (folder, frames) in enumerate(frames_by_drive.items()):
        n_train, n_val, _ = split_counts(frames, val_fraction, test_fraction)
        if index >= first_heldout:
            n_train, n_val = (0, frames) if (index - first_heldout) % 2 == 0 else (0, 0)
        for k in range(frames):
            split = 'train' if k < n_train else 'val' if k < n_train + n_val else 'test'
            lines[split].append(f'{folder} {k:010d} l')
            if stereo and split != 'test':
                lines[split].append(f'{folder} {k:010d} r')
    (root / 'splits').mkdir(parents=True, exist_ok=True)
    for split, entries in lines.items():
        text = '\n'.join(entries) + ('\n' if entries else '')
        (root / 'splits' / f'{split}_files.txt').write_text(text)
    return {split: len(entries) for split, entries in lines.items()}


def prepare_output(out_dir: str | os.PathLike, overwrite: bool,
                   camera: CameraSpec | None = None) -> Path:
    """Create out_dir with the calibration of camera (KITTI's by default); replace a non-empty
    out_dir only if overwrite and synthetic."""
    root = Path(out_dir)
    if root.exists() and not root.is_dir():
        raise FileExistsError(f'output path {root} exists and is not a directory')
    if root.is_dir() and any(root.iterdir()):
        if not overwrite:
            raise FileExistsError(
                f'output directory {root} is not empty; choose another or pass '
                'overwrite=True (--overwrite) to replace it')
        foreign = sorted(p.name for p in root.iterdir() if p.name not in (DATE, 'splits'))
        if foreign:
            raise FileExistsError(
                f'output directory {root} holds {foreign[0]!r}, which is not part of a '
                'synthetic world; refusing to delete it')
        for name in (DATE, 'splits'):
            if (root / name).is_dir():
                shutil.rmtree(root / name)
            elif (root / name).exists():
                (root / name).unlink()
    (root / DATE).mkdir(parents=True, exist_ok=True)
    write_calibration(CALIB_DIR, root / DATE, camera or CameraSpec(), CALIB_FILES)
    return root
