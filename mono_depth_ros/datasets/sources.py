"""The table of training data sources: the names a training config's `data.source` may take.

A source is a torch Dataset class built as
`cls(data_path, split, input_size=..., crop=..., augment=..., seed=..., gt=...)` whose items
are dicts with 'image', 'depth' (0 = no ground truth), 'intrinsics' and 'image_raw' (see
datasets.dataset.DepthDataset). Classes are imported on first use.
"""

from collections.abc import Sequence
from dataclasses import dataclass
import importlib
import os
from typing import Any

from mono_depth_ros.datasets.bag_gt import BAG_GT_SOURCES
from mono_depth_ros.datasets.kitti.ground_truth import GT_SOURCES
from mono_depth_ros.datasets.kitti.layouts import LIDAR_FRAME_SOURCES


@dataclass(frozen=True)
class DataSource:
    """One kind of training data: its Dataset class and the ground truths it offers."""

    name: str
    target: str                 # 'module:Class' of its Dataset
    gt: tuple[str, ...]         # accepted values of data.gt, the first is the default
    description: str

    def dataset_class(self) -> type:
        """The Dataset class (imported now)."""
        module, _, name = self.target.partition(':')
        return getattr(importlib.import_module(module), name)


DATA_SOURCES: dict[str, DataSource] = {source.name: source for source in (
    DataSource('kitti', 'mono_depth_ros.datasets.dataset:KittiDepthDataset', GT_SOURCES,
               'KITTI raw layout: real KITTI raw, or a synthetic world from mono-depth-synth; '
               'ground truth from the Velodyne scans or the improved (proj_depth) PNGs'),
    DataSource('bag_gt', 'mono_depth_ros.datasets.dataset:BagGtDataset', BAG_GT_SOURCES,
               "a folder of mono-depth-bag-gt: your own bag's images with the lidar depth "
               "PNGs and the intrinsics of each frame's calibration YAML; split lists "
               'splits/{all,train,val,test}_files.txt'),
    DataSource('lidar_frames', 'mono_depth_ros.datasets.dataset:LidarFrameDataset',
               LIDAR_FRAME_SOURCES,
               'real frames with Velodyne scans in the KITTI object, tracking or KITTI-360 '
               'layout; split lists name frames (object/000003), all: every frame'),
)}


def check_source(source: str, gt: str, where: str = 'data') -> DataSource:
    """The table entry of source, after checking that it offers gt; ValueError names both."""
    if source not in DATA_SOURCES:
        raise ValueError(f'{where}.source must be one of {list(DATA_SOURCES)}, got {source!r}')
    entry = DATA_SOURCES[source]
    if gt not in entry.gt:
        raise ValueError(f'{where}.gt must be one of {list(entry.gt)} for source {source!r}, '
                         f'got {gt!r}')
    return entry


def build_dataset(source: str, data_path: str | os.PathLike, split: str | os.PathLike,
                  input_size: Sequence[int] | None, crop: str | None, augment: bool, seed: int,
                  gt: str) -> Any:
    """The Dataset of a data source over one split of data_path."""
    entry = check_source(source, gt)
    return entry.dataset_class()(data_path, split, input_size=input_size, crop=crop,
                                 augment=augment, seed=seed, gt=gt)
