"""KITTI split lists: '<date>/<drive> <frame> <l|r>' lines, and the split lists shipped here."""

from dataclasses import dataclass
import os
from pathlib import Path

from mono_depth_ros.datasets.kitti.io import KITTI_FILES

SPLITS_DIR = KITTI_FILES / 'splits'

# Packaged split names and their files below SPLITS_DIR.
SPLIT_FILES = {
    'eigen': 'eigen/test_files.txt',
    'eigen_benchmark': 'eigen_benchmark/test_files.txt',
    'eigen_zhou/train': 'eigen_zhou/train_files.txt',
    'eigen_zhou/val': 'eigen_zhou/val_files.txt',
    'eigen_full/train': 'eigen_full/train_files.txt',
    'eigen_full/val': 'eigen_full/val_files.txt',
}

SIDE_TO_CAMERA = {'l': 2, 'r': 3}


@dataclass(frozen=True)
class SplitEntry:
    """One frame of a split: drive folder ('<date>/<date>_drive_NNNN_sync'), index and side."""

    folder: str
    frame: int
    side: str = 'l'

    @property
    def camera(self) -> int:
        """KITTI camera number: 2 for the left colour camera, 3 for the right."""
        return SIDE_TO_CAMERA[self.side]

    @property
    def date(self) -> str:
        """The recording date folder, e.g. '2011_09_26'."""
        return self.folder.split('/')[0]

    def frame_name(self, ext: str) -> str:
        """File name of this frame: ten-digit zero-padded index plus ext."""
        return f'{self.frame:010d}{ext}'

    def image_path(self, root: str | os.PathLike, ext: str = '.png') -> Path:
        """Path of the rectified colour image of this frame below the KITTI raw root."""
        return Path(root, self.folder, f'image_0{self.camera}', 'data', self.frame_name(ext))

    def velodyne_path(self, root: str | os.PathLike) -> Path:
        """Path of the Velodyne scan of this frame below the KITTI raw root."""
        return Path(root, self.folder, 'velodyne_points', 'data', self.frame_name('.bin'))

    def dense_depth_path(self, root: str | os.PathLike) -> Path:
        """Path of the dense true depth (.npy, camera z, 0 = sky) a synthetic world writes."""
        return Path(root, self.folder, 'depth_dense', f'image_0{self.camera}', 'data',
                    self.frame_name('.npy'))

    def improved_gt_path(self, root: str | os.PathLike) -> Path:
        """Path of the improved ground-truth PNG (depth benchmark, merged into the raw tree)."""
        return Path(root, self.folder, 'proj_depth', 'groundtruth', f'image_0{self.camera}',
                    self.frame_name('.png'))

    def calib_dir(self, root: str | os.PathLike) -> Path:
        """Folder holding calib_cam_to_cam.txt and calib_velo_to_cam.txt for this frame."""
        return Path(root, self.date)

    def line(self) -> str:
        """This entry as a split-file line."""
        return f'{self.folder} {self.frame} {self.side}'


def split_path(name: str) -> Path:
    """Return the packaged split file for a name such as 'eigen' or 'eigen_zhou/train'."""
    if name not in SPLIT_FILES:
        raise ValueError(f'unknown split {name!r}; packaged splits are: {sorted(SPLIT_FILES)}')
    return SPLITS_DIR / SPLIT_FILES[name]


def parse_split_line(line: str, number: int, path: str) -> SplitEntry:
    """Parse one split line, raising ValueError that names the file and line number."""
    fields = line.split()
    where = f'split file {path} line {number}'
    if len(fields) != 3:
        raise ValueError(f'{where}: expected "<date>/<drive> <frame> <l|r>", got {line!r}')
    folder, frame, side = fields
    if '/' not in folder.strip('/'):
        raise ValueError(f'{where}: folder {folder!r} must be "<date>/<drive>"')
    if not frame.isdigit():
        raise ValueError(f'{where}: frame index {frame!r} is not a non-negative integer')
    if side not in SIDE_TO_CAMERA:
        raise ValueError(f'{where}: side {side!r} must be "l" or "r"')
    return SplitEntry(folder.strip('/'), int(frame), side)


def read_split(path_or_name: str | os.PathLike) -> list[SplitEntry]:
    """Read a split file (a path, or a packaged name such as 'eigen') into SplitEntry items."""
    name = os.fspath(path_or_name)
    path = split_path(name) if name in SPLIT_FILES else Path(name)
    if not path.is_file():
        raise FileNotFoundError(
            f'split file not found: {path} (packaged splits: {sorted(SPLIT_FILES)})')
    entries = []
    with open(path, encoding='utf-8') as stream:
        for number, line in enumerate(stream, start=1):
            if line.strip():
                entries.append(parse_split_line(line.rstrip('\n'), number, os.fspath(path)))
    if not entries:
        raise ValueError(f'split file {path} lists no frames')
    return entries


def split_counts(frames: int, val_fraction: float, test_fraction: float) -> tuple[int, int, int]:
    """Frames of a drive or recording for (train, val, test), as contiguous blocks in that
    order: a non-zero fraction gets at least one frame, training at least one."""
    val, test = (0 if f == 0 else max(1, int(round(frames * f)))
                 for f in (val_fraction, test_fraction))
    if frames - val - test < 1:
        raise ValueError(f'{frames} frame(s) leave none for training with '
                         f'val_fraction {val_fraction} and test_fraction {test_fraction}')
    return frames - val - test, val, test
