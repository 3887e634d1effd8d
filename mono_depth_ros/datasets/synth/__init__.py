"""Synthetic KITTI-format world: ray-cast street drives with images, lidar and true depth."""

from collections.abc import Callable
import os
import time

from mono_depth_ros.datasets.kitti.splits import split_counts
from mono_depth_ros.datasets.synth.camera import CameraSpec
from mono_depth_ros.datasets.synth.writer import (
    plan_drive,
    prepare_output,
    Rig,
    WORLDS,
    write_drive,
    write_splits,
)


def _check(drives: int, frames: int, seed: int, val_fraction: float,
           test_fraction: float) -> None:
    """Raise ValueError naming the first bad argument of generate_world."""
    for name, value in (('drives', drives), ('frames', frames)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f'{name} must be a positive integer, got {value!r}')
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f'seed must be a non-negative integer, got {seed!r}')
    if drives > 9999:
        raise ValueError(f'drives must be at most 9999 (KITTI drive numbers), got {drives}')
    for name, value in (('val_fraction', val_fraction), ('test_fraction', test_fraction)):
        if not 0.0 <= value < 1.0:
            raise ValueError(f'{name} must be in [0, 1), got {value!r}')
    if val_fraction + test_fraction >= 1.0:
        raise ValueError(f'val_fraction + test_fraction must be below 1, got '
                         f'{val_fraction} + {test_fraction}')
    split_counts(frames, val_fraction, test_fraction)


def generate_world(out_dir: str | os.PathLike, drives: int = 1, frames: int = 4, seed: int = 0,
                   val_fraction: float = 0.1, test_fraction: float = 0.1,
                   overwrite: bool = False, stereo: bool = False,
                   progress: Callable[[], None] | None = None, heldout_drives: int = 0,
                   camera: CameraSpec | None = None, world: str = 'basic') -> dict:
    """Render drives × frames synthetic KITTI raw frames under out_dir; returns a summary.

    Layout: 2011_09_26/calib_*.txt (KITTI's real calibration), per drive
    image_02/data/*.png, velodyne_points/data/*.bin, timestamps.txt,
    depth_dense/image_02/data/*.npy (camera z, 0 = sky) and
    proj_depth/groundtruth/image_02/*.png; split lists splits/{train,val,test}_files.txt.
    stereo adds the right camera (image_03, from P_rect_03) with its own depth files.
    heldout_drives: the last that many drives are never in train (val and test only).
    camera (CameraSpec): another car's camera (focal length, image size, height, pitch), written
    into the calibration files too; None or the defaults: KITTI's, byte for byte.
    world: 'basic' streets and look, 'varied' (synth.varied: city, residential and rural
    streets, vans, trucks, hedges, people; random palettes, skies, light and exposure), or
    'mixed' (odd drives basic, even drives varied) or 'roadside' (odd drives narrow streets,
    synth.narrow; even ones varied and basic by turns).
    progress, if given, is called once per rendered frame. Same seed → identical bytes.
    """
    _check(drives, frames, seed, val_fraction, test_fraction)
    if world not in WORLDS:
        raise ValueError(f'world must be one of {WORLDS}, got {world!r}')
    if isinstance(heldout_drives, bool) or not isinstance(heldout_drives, int) \
            or not 0 <= heldout_drives < drives:
        raise ValueError(f'heldout_drives must be an integer in [0, drives - 1] (at least one '
                         f'drive trains), got {heldout_drives!r} with {drives} drive(s)')
    camera = camera or CameraSpec()
    camera.check()
    root = prepare_output(out_dir, overwrite, camera)
    rig = Rig(camera=camera)
    started = time.perf_counter()
    folders = {}
    for drive in range(1, drives + 1):
        plan = plan_drive(seed, drive, frames, world)
        write_drive(root, plan, seed, drive, rig, (2, 3) if stereo else (2,), progress)
        folders[plan.folder] = frames
    elapsed = time.perf_counter() - started
    counts = write_splits(root, folders, val_fraction, test_fraction, stereo, heldout_drives)
    return {'root': root, 'drives': list(folders), 'frames': drives * frames, 'splits': counts,
            'seconds_per_frame': elapsed / (drives * frames), 'camera': camera,
            'world': world}


__all__ = ['CameraSpec', 'generate_world', 'plan_drive', 'Rig', 'WORLDS']
