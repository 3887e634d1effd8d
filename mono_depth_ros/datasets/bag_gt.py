"""A folder of lidar ground truth from a bag (mono-depth-bag-gt): its files, split lists and
calibration, for training (datasets.dataset.BagGtDataset) and evaluation (mono-depth-eval).

  DIR/image/<stamp ns>.png  DIR/depth/<stamp ns>.png  DIR/calib/<first stamp ns>.yaml
  DIR/splits/all_files.txt and {train,val,test}_files.txt: 'image/<s>.png depth/<s>.png
  calib/<c>.yaml' per frame, in message order; train, val and test are contiguous blocks
  DIR/bag_gt.yaml           the settings of the run (marks the folder as one of these)
"""

from dataclasses import dataclass
import os
from pathlib import Path, PurePosixPath

import numpy as np
import yaml

from mono_depth_ros.datasets.kitti.io import read_depth_png
from mono_depth_ros.datasets.kitti.splits import split_counts

SETTINGS_FILE = 'bag_gt.yaml'
SPLIT_FILE = 'splits/all_files.txt'
HELDOUT_SPLITS = ('train', 'val', 'test')   # splits/<name>_files.txt, contiguous in time
BAG_GT_SOURCES = ('lidar',)                 # the ground truth such a folder offers
LINE_FORMAT = '"image/<stamp>.png depth/<stamp>.png calib/<stamp>.yaml"'


def split_file(name: str) -> str:
    """Path, relative to the folder, of the split list of a name (train, val, test, all)."""
    return SPLIT_FILE if name == 'all' else f'splits/{name}_files.txt'


def is_bag_gt_folder(path: str | os.PathLike) -> bool:
    """True when path is a folder written by mono-depth-bag-gt (it holds bag_gt.yaml)."""
    return (Path(path) / SETTINGS_FILE).is_file()


@dataclass(frozen=True)
class BagGtEntry:
    """One frame of a bag-gt folder: its image, depth PNG and calibration, folder-relative."""

    image: str
    depth: str
    calib: str

    def line(self) -> str:
        """This entry as a split-file line."""
        return f'{self.image} {self.depth} {self.calib}'

    def stamp_ns(self) -> int:
        """The header stamp of the camera image (its file name)."""
        stem = PurePosixPath(self.image).stem
        if not stem.isdigit():
            raise ValueError(f'frame "{self.line()}": the image name {stem!r} is no stamp in ns')
        return int(stem)

    def title(self) -> str:
        """A short caption of the frame (for montages)."""
        return f'{PurePosixPath(self.image).stem} ns'

    def image_path(self, root: str | os.PathLike, ext: str | None = None) -> Path:
        """Path of the camera image (ext is ignored: the file name is in the line)."""
        return Path(root, self.image)

    def depth_path(self, root: str | os.PathLike) -> Path:
        """Path of the depth PNG (uint16 metres·256, 0 = no point)."""
        return Path(root, self.depth)

    def calib_path(self, root: str | os.PathLike) -> Path:
        """Path of the calibration YAML."""
        return Path(root, self.calib)


def parse_bag_gt_line(line: str, number: int, path: str) -> BagGtEntry:
    """Parse one split line, raising ValueError that names the file and line number."""
    fields = line.split()
    where = f'split file {path} line {number}'
    if len(fields) != 3:
        raise ValueError(f'{where}: expected {LINE_FORMAT}, got {line!r}')
    for field, ext in zip(fields, ('.png', '.png', '.yaml'), strict=True):
        parts = PurePosixPath(field)
        if parts.is_absolute() or '..' in parts.parts or parts.suffix != ext:
            raise ValueError(f'{where}: {field!r} must be a {ext} file inside the folder '
                             f'({LINE_FORMAT})')
    return BagGtEntry(*fields)


def read_bag_gt_split(path: str | os.PathLike) -> list[BagGtEntry]:
    """Read a bag-gt split list into BagGtEntry items; errors name the file and line."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'split file not found: {path} (mono-depth-bag-gt writes '
                                f'{SPLIT_FILE} and, with --val-fraction / --test-fraction, '
                                f'{", ".join(split_file(n) for n in HELDOUT_SPLITS)})')
    entries = [parse_bag_gt_line(line, number, os.fspath(path))
               for number, line in enumerate(path.read_text().splitlines(), start=1)
               if line.strip()]
    if not entries:
        raise ValueError(f'split file {path} lists no frames')
    return entries


def resolve_bag_gt_split(root: str | os.PathLike, split: str | os.PathLike) -> Path:
    """A split list relative to the folder (e.g. splits/test_files.txt) when it is there, else
    the path as given (as training.config.resolve_split does)."""
    split = Path(split)
    if not split.is_absolute() and (Path(root) / split).is_file():
        return Path(root) / split
    return split


@dataclass(frozen=True)
class BagGtCalib:
    """The camera of a calibration YAML: K of the image's pixels and the image size."""

    k: np.ndarray               # 3×3: P[:, :3] when the depth was projected with P, else K
    size: tuple[int, int]       # (H, W)

    @property
    def intrinsics(self) -> tuple[float, float, float, float]:
        """(fx, fy, cx, cy) in pixels."""
        return (float(self.k[0, 0]), float(self.k[1, 1]), float(self.k[0, 2]),
                float(self.k[1, 2]))


def read_bag_gt_calib(path: str | os.PathLike) -> BagGtCalib:
    """Read a calibration YAML of mono-depth-bag-gt; ValueError names the file and the key."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'calibration file not found: {path}')
    try:
        data = yaml.safe_load(path.read_text())
        use_p = data.get('depth_projection', 'K') == 'P'
        key = 'projection_matrix' if use_p else 'camera_matrix'
        shape = (3, 4) if use_p else (3, 3)
        k = np.asarray(data[key]['data'], dtype=np.float64).reshape(shape)[:, :3]
        size = (int(data['image_height']), int(data['image_width']))
    except (yaml.YAMLError, AttributeError, KeyError, TypeError, ValueError) as error:
        raise ValueError(f'calibration file {path} is not a mono-depth-bag-gt calibration '
                         f'(camera_matrix or projection_matrix, image_width, image_height): '
                         f'{type(error).__name__}: {error}') from None
    if not (np.all(np.isfinite(k)) and k[0, 0] > 0 and k[1, 1] > 0 and min(size) > 0):
        raise ValueError(f'calibration file {path}: fx, fy and the image size must be '
                         f'positive, got K {k.tolist()} and size {size}')
    return BagGtCalib(k, size)


def read_bag_gt_depth(root: str | os.PathLike, entry: BagGtEntry) -> np.ndarray:
    """The H×W float32 lidar depth (metres, camera z, 0 = no point) of one frame."""
    return read_depth_png(entry.depth_path(root), 'bag-gt depth PNG')


def block_splits(lines: list[str], val_fraction: float, test_fraction: float
                 ) -> dict[str, list[str]]:
    """Lines of train, val and test: contiguous blocks in that order (the held-out ones last,
    later in time); ValueError when the fractions leave no training frame."""
    for name, value in (('val_fraction', val_fraction), ('test_fraction', test_fraction)):
        if not 0.0 <= value < 1.0:
            raise ValueError(f'{name} must be in [0, 1), got {value!r}')
    train, val, _ = split_counts(len(lines), val_fraction, test_fraction)
    return {'train': lines[:train], 'val': lines[train:train + val],
            'test': lines[train + val:]}
