"""DistributedDataParallel set-up for torchrun (env:// init): ranks, devices, collectives."""

from dataclasses import dataclass
import datetime
import os
from typing import Any

import torch
import torch.distributed as dist

from mono_depth_ros.core.config import ConfigError

TORCHRUN_VARIABLES = ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR', 'MASTER_PORT')


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits in the job: rank, world size, local rank and device."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def enabled(self) -> bool:
        """True when a process group of more than one process is running."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """True on rank 0, the process that logs and writes checkpoints."""
        return self.rank == 0


def pick_device(preference: str, local_rank: int = 0) -> torch.device:
    """Return the device for 'auto', 'cpu' or 'cuda' (one GPU per local rank)."""
    if preference == 'cpu' or (preference == 'auto' and not torch.cuda.is_available()):
        return torch.device('cpu')
    if not torch.cuda.is_available():
        raise ConfigError('train.device is cuda but no CUDA device is available')
    if local_rank >= torch.cuda.device_count():
        raise ConfigError(f'local rank {local_rank} has no GPU: only '
                          f'{torch.cuda.device_count()} visible on this node')
    return torch.device('cuda', local_rank)


def launched_by_torchrun() -> bool:
    """True when torchrun (or another env:// launcher) set WORLD_SIZE above 1."""
    return int(os.environ.get('WORLD_SIZE', '1')) > 1


def init_distributed(preference: str = 'auto', timeout_s: float = 1800.0) -> DistInfo:
    """Join the torchrun process group when launched by it (nccl on CUDA, gloo on CPU)."""
    if not launched_by_torchrun():
        return DistInfo(0, 1, 0, pick_device(preference))
    missing = [name for name in TORCHRUN_VARIABLES if name not in os.environ]
    if missing:
        raise ConfigError(f'WORLD_SIZE > 1 but {missing} are not set: launch with torchrun')
    rank = int(os.environ['RANK'])
    world_size = int(os.environ['WORLD_SIZE'])
    local_rank = int(os.environ['LOCAL_RANK'])
    device = pick_device(preference, local_rank)
    if device.type == 'cuda':
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(
            backend='nccl' if device.type == 'cuda' else 'gloo', init_method='env://',
            timeout=datetime.timedelta(seconds=timeout_s),
            device_id=device if device.type == 'cuda' else None)
    return DistInfo(rank, world_size, local_rank, device)


def cleanup_distributed() -> None:
    """Leave the process group if one was joined."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier(info: DistInfo) -> None:
    """Wait for every rank (no-op when not distributed)."""
    if info.enabled:
        dist.barrier()


def any_rank(flag: bool, info: DistInfo) -> bool:
    """Return True on every rank when flag is True on any rank."""
    if not info.enabled:
        return flag
    value = torch.tensor([1.0 if flag else 0.0], device=info.device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item() > 0)


def all_gather_objects(obj: Any, info: DistInfo) -> list[Any]:
    """Return [obj of rank 0, obj of rank 1, ...] on every rank."""
    if not info.enabled:
        return [obj]
    gathered: list[Any] = [None] * info.world_size
    dist.all_gather_object(gathered, obj)
    return gathered


def broadcast_object(obj: Any, info: DistInfo) -> Any:
    """Return rank 0's obj on every rank."""
    if not info.enabled:
        return obj
    holder = [obj]
    dist.broadcast_object_list(holder, src=0)
    return holder[0]
