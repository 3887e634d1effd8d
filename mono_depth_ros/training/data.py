"""Training and validation DataLoaders over the data source a config names (datasets.sources)."""

import os
from typing import Any

import torch
from torch.utils.data import DataLoader, Subset

from mono_depth_ros.datasets.sources import build_dataset
from mono_depth_ros.training.config import resolve_split
from mono_depth_ros.training.distributed import DistInfo
from mono_depth_ros.training.sampler import EpochIndexedDataset, ResumableSampler
from mono_depth_ros.training.signals import ignore_interrupts_in_worker


def loader_options(data: dict[str, Any], device: torch.device, workers: int) -> dict[str, Any]:
    """DataLoader keyword arguments: workers, pinned memory, persistent workers, prefetch."""
    options: dict[str, Any] = {'num_workers': workers,
                               'pin_memory': bool(data['pin_memory']) and device.type == 'cuda'}
    if workers > 0:
        options.update(persistent_workers=bool(data['persistent_workers']),
                       prefetch_factor=data['prefetch_factor'],
                       worker_init_fn=ignore_interrupts_in_worker)
    return options


def build_train_loader(experiment: dict[str, Any], data_path: str | os.PathLike,
                       input_size: list[int], dist: DistInfo, batch_per_rank: int
                       ) -> tuple[DataLoader, ResumableSampler]:
    """Return the shuffled training loader (drop_last) and its resumable sampler."""
    data = experiment['data']
    seed = experiment['train']['seed']
    split = resolve_split(data['train_split'], data_path)
    dataset = build_dataset(data['source'], data_path, split,
                            input_size=tuple(input_size), crop=data['train_crop'],
                            augment=data['augment'], seed=seed, gt=data['gt'])
    if len(dataset) < batch_per_rank * dist.world_size:
        raise ValueError(f'training split {data["train_split"]} has {len(dataset)} frames, '
                         f'fewer than one batch ({batch_per_rank * dist.world_size})')
    sampler = ResumableSampler(dataset, dist.world_size, dist.rank, shuffle=True, seed=seed)
    # The loader's own generator keeps iterator creation off the global torch RNG.
    loader = DataLoader(EpochIndexedDataset(dataset), batch_size=batch_per_rank,
                        sampler=sampler, drop_last=True,
                        generator=torch.Generator().manual_seed(seed),
                        **loader_options(data, dist.device, data['num_workers']))
    return loader, sampler


def build_val_loader(experiment: dict[str, Any], data_path: str | os.PathLike,
                     input_size: list[int], dist: DistInfo) -> DataLoader:
    """Return this rank's share (every world_size-th frame) of the validation frames."""
    data = experiment['data']
    val = experiment['validation']
    split = resolve_split(data['val_split'], data_path)
    dataset = build_dataset(data['source'], data_path, split,
                            input_size=tuple(input_size), crop=data['val_crop'],
                            augment=False, seed=experiment['train']['seed'], gt=data['gt'])
    count = len(dataset) if val['max_frames'] is None else min(val['max_frames'], len(dataset))
    shard = Subset(dataset, list(range(dist.rank, count, dist.world_size)))
    options = loader_options(data, dist.device, min(data['num_workers'], 2))
    options.pop('persistent_workers', None)
    return DataLoader(shard, batch_size=val['batch_size'], shuffle=False, **options)
