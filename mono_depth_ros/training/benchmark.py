"""Training throughput: images per second of train_step on random batches at a given size."""

import copy
import tempfile
import time
from typing import Any

import torch

from mono_depth_ros.training.distributed import DistInfo, pick_device
from mono_depth_ros.training.trainer import Trainer


def random_batch(batch: int, size: list[int], max_depth: float, density: float = 0.05,
                 seed: int = 0) -> dict[str, torch.Tensor]:
    """A batch of normalised noise images and lidar-like sparse depth (density of pixels set)."""
    generator = torch.Generator().manual_seed(seed)
    height, width = size
    image = torch.randn(batch, 3, height, width, generator=generator)
    depth = 1.0 + (max_depth - 2.0) * torch.rand(batch, 1, height, width, generator=generator)
    depth[torch.rand(batch, 1, height, width, generator=generator) > density] = 0.0
    return {'image': image, 'depth': depth}


def benchmark_training(experiment: dict[str, Any], steps: int, warmup: int = 1
                       ) -> dict[str, Any]:
    """Time `steps` optimizer steps after `warmup` ones; return images/s and the set-up."""
    experiment = copy.deepcopy(experiment)
    experiment['model']['load_pretrained'] = False   # weights do not change the speed
    device = pick_device(experiment['train']['device'])
    with tempfile.TemporaryDirectory() as scratch:
        trainer = Trainer(experiment, None, scratch, DistInfo(0, 1, 0, device))
        size = trainer.model_config['input_size']
        batch_size = experiment['train']['batch_size']
        batch = random_batch(batch_size, size, trainer.model.max_depth)
        for _ in range(warmup):
            trainer.train_step(batch)
        if device.type == 'cuda':
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        for _ in range(steps):
            trainer.train_step(batch)
        if device.type == 'cuda':
            torch.cuda.synchronize(device)
        seconds = time.perf_counter() - start
    return {
        'model': trainer.model_config['name'], 'device': str(device),
        'threads': torch.get_num_threads(), 'precision': experiment['train']['precision'],
        'batch_size': batch_size, 'input_size': list(size), 'steps': steps,
        'seconds_per_step': seconds / steps, 'images_per_s': batch_size * steps / seconds,
    }
