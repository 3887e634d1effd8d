"""Rank-0 reporting of a run: tqdm bar, TensorBoard scalars and images, metrics.jsonl, config."""

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm
import yaml

from mono_depth_ros.core.geometry import colorize_depth
from mono_depth_ros.training.distributed import DistInfo

METRICS_FILE = 'metrics.jsonl'
CONFIG_FILE = 'experiment.yaml'


def depth_panel(example: dict[str, np.ndarray], min_depth: float, max_depth: float
                ) -> np.ndarray:
    """Stack image, ground truth and prediction (fixed metric colours) as one 3×H×W RGB image."""
    image = example['image']
    if image.shape[0] == 3:
        image = np.transpose(image, (1, 2, 0))
    gt = colorize_depth(example['gt'], min_depth, max_depth)[..., ::-1]
    pred = colorize_depth(example['pred'], min_depth, max_depth)[..., ::-1]
    panel = np.concatenate([image.astype(np.uint8), gt, pred], axis=0)
    return np.ascontiguousarray(np.transpose(panel, (2, 0, 1)))


class Reporter:
    """Writes progress on rank 0 only; other ranks get a silent reporter."""

    def __init__(self, out_dir: Path, experiment: dict[str, Any], dist: DistInfo, total: int,
                 initial_step: int) -> None:
        self.active = dist.is_main
        self.train_cfg = experiment['train']
        self.val_cfg = experiment['validation']
        self.bar = self.writer = self.stream = None
        if not self.active:
            return
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / CONFIG_FILE).write_text(yaml.safe_dump(experiment, sort_keys=False))
        self.stream = open(out_dir / METRICS_FILE, 'a', encoding='utf-8')
        if self.train_cfg['tensorboard']:
            from torch.utils.tensorboard import SummaryWriter
            self.writer = SummaryWriter(str(out_dir / 'tensorboard'), purge_step=initial_step)
        if self.train_cfg['progress']:
            self.bar = tqdm(total=total, initial=initial_step, desc='train', unit='step',
                            dynamic_ncols=True)

    def _record(self, row: dict[str, Any]) -> None:
        """Append one JSON line to metrics.jsonl and flush it."""
        self.stream.write(json.dumps(row) + '\n')
        self.stream.flush()

    def train(self, step: int, losses: dict[str, torch.Tensor], lr: float, images: int,
              seconds: float) -> None:
        """Advance the bar; every log_every steps log each loss term, lr and throughput."""
        if not self.active:
            return
        if self.bar is not None:
            self.bar.update(1)
        if step % self.train_cfg['log_every'] and step != 1:
            return
        values = {name: float(value) for name, value in losses.items()}
        row = {'step': step, 'kind': 'train', 'lr': lr, 'images_per_s': images / seconds,
               **{f'loss/{name}': value for name, value in values.items()}}
        self._record(row)
        if self.writer is not None:
            for name, value in values.items():
                self.writer.add_scalar(f'loss/{name}', value, step)
            self.writer.add_scalar('lr', lr, step)
            self.writer.add_scalar('images_per_s', images / seconds, step)
        if self.bar is not None:
            self.bar.set_postfix(loss=f'{values["total"]:.4f}', lr=f'{lr:.2e}')

    def validation(self, step: int, metrics: dict[str, float],
                   examples: list[dict[str, np.ndarray]], best: float | None,
                   train_seconds: float | None = None) -> None:
        """Log validation metrics (and the training time so far) and depth images; print a
        one-line summary."""
        if not self.active:
            return
        self._record({'step': step, 'kind': 'val', **metrics, 'best_abs_rel': best,
                      'train_s': train_seconds})
        if self.writer is not None:
            for name, value in metrics.items():
                self.writer.add_scalar(f'val/{name}', value, step)
            for index, example in enumerate(examples):
                panel = depth_panel(example, self.val_cfg['min_depth'], self.val_cfg['max_depth'])
                self.writer.add_image(f'val/depth_{index}', panel, step)
            self.writer.flush()
        line = (f'step {step}: val abs_rel {metrics["abs_rel"]:.4f} rmse {metrics["rmse"]:.3f} '
                f'a1 {metrics["a1"]:.3f} on {metrics["frames"]} frames (best {best:.4f})')
        if 'beyond_recall' in metrics:
            line += (f'; beyond range: recall {metrics["beyond_recall"]:.3f} precision '
                     f'{metrics["beyond_precision"]:.3f}')
        (self.bar.write if self.bar is not None else print)(line)

    def close(self) -> None:
        """Close the bar, the TensorBoard writer and the metrics file."""
        for handle in (self.bar, self.writer, self.stream):
            if handle is not None:
                handle.close()
