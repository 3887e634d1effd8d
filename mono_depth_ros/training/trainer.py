"""The training loop: train_step, validate, save_checkpoint, resume, run; one GPU or many."""

import contextlib
import copy
from dataclasses import dataclass
import os
from pathlib import Path
import time
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from mono_depth_ros.core.config import apply_overrides, check_keys, ConfigError
from mono_depth_ros.core.metrics import average_metrics, compute_depth_metrics, evaluation_mask
from mono_depth_ros.networks import build_model, load_model_config
from mono_depth_ros.networks.build import edited_name
from mono_depth_ros.networks.checkpoint import load_checkpoint
from mono_depth_ros.training.checkpoints import CheckpointManager, ensure_writable_dir
from mono_depth_ros.training.data import build_train_loader, build_val_loader
from mono_depth_ros.training.distributed import all_gather_objects, any_rank, DistInfo
from mono_depth_ros.training.finetune import focal_factor, load_init_weights
from mono_depth_ros.training.losses import DepthLoss, LOSS_DEFAULTS, loss_options
from mono_depth_ros.training.reporting import Reporter
from mono_depth_ros.training.schedule import build_scheduler
from mono_depth_ros.training.signals import StopRequest
from mono_depth_ros.training.state import capture_rng_state, restore_rng_state, seed_everything

CHECKPOINT_KIND = 'mono_depth_ros.training'


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; training stopped before the bad step was applied."""


@dataclass
class RunResult:
    """How a run ended: 'completed' or 'interrupted', at which step, with which checkpoint,
    and the seconds spent training so far (see Trainer.train_seconds)."""

    status: str
    step: int
    checkpoint: Path | None
    best_abs_rel: float | None
    train_seconds: float = 0.0


def resolve_model_config(experiment: dict[str, Any]) -> dict[str, Any]:
    """Return the network config of an experiment: file, overrides, loss, input size.

    Overrides that change the network's layers rename it: 'msfusion_r18' with
    decoder.dilated_blocks=0 is 'msfusion_r18+decoder.dilated_blocks', so that a checkpoint's
    name never claims a named config whose network it does not hold.
    """
    named = load_model_config(experiment['model']['config'])
    where = f'model config {experiment["model"]["config"]!r} (model.overrides)'
    model_cfg = apply_overrides(named, experiment['model']['overrides'], where)
    model_cfg['name'] = edited_name(model_cfg, named)
    check_keys(experiment['loss'], LOSS_DEFAULTS, 'experiment section loss')
    model_cfg['loss'] = loss_options({**model_cfg, 'loss': {**model_cfg['loss'],
                                                            **experiment['loss']}})
    if experiment['data']['input_size'] is not None:
        model_cfg['input_size'] = list(experiment['data']['input_size'])
    return model_cfg


def beyond_counts_of(gt: np.ndarray, beyond: np.ndarray, max_depth: float) -> np.ndarray:
    """[true positives, labelled beyond range, predicted beyond range] of a batch: labels are
    gt > max_depth (+inf included), predictions a beyond-range probability above 0.5."""
    labelled = gt > max_depth
    predicted = beyond > 0.5
    return np.array([np.sum(labelled & predicted), np.sum(labelled), np.sum(predicted)],
                    dtype=np.float64)


def precision_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """Return the autocast dtype for the precision setting (None = fp32)."""
    if precision == 'auto':
        return torch.bfloat16 if device.type == 'cuda' else None
    if precision == 'fp16' and device.type != 'cuda':
        raise ConfigError('train.precision fp16 needs CUDA (its GradScaler); use bf16 or fp32')
    return {'fp32': None, 'bf16': torch.bfloat16, 'fp16': torch.float16}[precision]


class Trainer:
    """Trains a depth network from an experiment config; rank 0 logs and writes checkpoints."""

    def __init__(self, experiment: dict[str, Any], data_path: str | os.PathLike | None,
                 out_dir: str | os.PathLike, dist: DistInfo,
                 resume: dict[str, Any] | None = None) -> None:
        self.experiment = copy.deepcopy(experiment)
        self.dist = dist
        self.device = dist.device
        self.out_dir = Path(out_dir)
        train = self.experiment['train']
        if train['batch_size'] % dist.world_size:
            raise ConfigError(f'train.batch_size {train["batch_size"]} (the global batch) must '
                              f'divide evenly among {dist.world_size} processes')
        self.batch_per_rank = train['batch_size'] // dist.world_size
        self.step = 0
        self.epoch = 0
        self.epoch_batch = 0          # batches of the current epoch already trained on
        self.best_abs_rel: float | None = None
        # Wall time of the training loop without validation and checkpoints, over every session
        # of the run (kept in checkpoints): what "wall time" means when runs are compared.
        self.train_seconds = 0.0
        seed_everything(train['seed'] + dist.rank)
        self.model_config = resolve_model_config(self.experiment)
        if resume is not None and resume['model_config'] != self.model_config:
            self.model_config = resume['model_config']
        init = self.experiment['model']['init_checkpoint'] if resume is None else None
        self.build_model(load_pretrained=resume is None and init is None
                         and self.experiment['model']['load_pretrained'], init_checkpoint=init)
        self.build_optimizer()
        self.train_loader = self.val_loader = None
        if data_path is not None:
            self.train_loader, self.sampler = build_train_loader(
                self.experiment, data_path, self.model_config['input_size'], dist,
                self.batch_per_rank)
            self.val_loader = build_val_loader(
                self.experiment, data_path, self.model_config['input_size'], dist)
        if resume is not None:
            self.load_state(resume)
        self.checkpoints = CheckpointManager(self.out_dir, train['keep_last'])

    # ---- set-up -------------------------------------------------------------------------
    def build_model(self, load_pretrained: bool, init_checkpoint: str | None = None) -> None:
        """Build the network (with the weights of init_checkpoint, when given), its loss, and
        the DDP / SyncBatchNorm / channels_last wrapping."""
        train = self.experiment['train']
        model = build_model(self.model_config, load_pretrained=load_pretrained)
        self.init_info = None
        if init_checkpoint is not None:
            self.init_info = load_init_weights(model, init_checkpoint, model.config)
        if self.dist.enabled and train['sync_batchnorm']:
            if self.device.type != 'cuda':
                raise ConfigError('train.sync_batchnorm needs CUDA: PyTorch has no CPU '
                                  'SyncBatchNorm (set it false for gloo/CPU runs)')
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        self.memory_format = (torch.channels_last if train['channels_last']
                              else torch.contiguous_format)
        self.model = model.to(self.device, memory_format=self.memory_format)
        self.criterion = DepthLoss(self.model_config).to(self.device)
        self.ddp_model: nn.Module = self.model
        if self.dist.enabled:
            ids = [self.device.index] if self.device.type == 'cuda' else None
            self.ddp_model = DistributedDataParallel(self.model, device_ids=ids)
        if self.device.type == 'cuda':
            torch.backends.cudnn.benchmark = bool(train['cudnn_benchmark'])
        self.amp_dtype = precision_dtype(train['precision'], self.device)

    def build_optimizer(self) -> None:
        """Adam (L2 weight decay) or AdamW, the lr schedule, and the fp16 GradScaler."""
        optim = self.experiment['optim']
        kind = torch.optim.Adam if optim['name'] == 'adam' else torch.optim.AdamW
        self.optimizer = kind(self.model.parameters(), lr=optim['lr'],
                              betas=tuple(optim['betas']), eps=optim['eps'],
                              weight_decay=optim['weight_decay'])
        self.scheduler = build_scheduler(self.optimizer, self.experiment['schedule'],
                                         self.experiment['train']['iterations'])
        self.scaler = torch.amp.GradScaler('cuda', enabled=self.amp_dtype == torch.float16)

    def autocast(self) -> contextlib.AbstractContextManager:
        """Mixed-precision context for the configured precision (a no-op for fp32)."""
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def agreed(self, flag: bool) -> bool:
        """True on every rank when flag is True on any rank (so that all ranks act alike)."""
        return any_rank(flag, self.dist)

    # ---- one step -----------------------------------------------------------------------
    def canonical_depth(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The batch's ground truth in the canonical camera: depth / (f_input / canonical_focal)
        (training.finetune); a batch without intrinsics is taken as from that camera."""
        depth = batch['depth']
        if 'intrinsics' in batch:
            depth = depth / focal_factor(batch['intrinsics'].double(),
                                         float(self.model_config['canonical_focal'])).float()
        return depth

    def forward_losses(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Run the network on a batch and return the loss terms (float32)."""
        images = batch['image'].to(self.device, non_blocking=True)
        images = images.contiguous(memory_format=self.memory_format)
        depth = self.canonical_depth(batch).to(self.device, non_blocking=True)
        with self.autocast():
            outputs = self.ddp_model(images)
        outputs = {key: value.float() for key, value in outputs.items()}
        return self.criterion(outputs, depth)

    def train_step(self, batch: dict[str, torch.Tensor], stop: StopRequest | None = None
                   ) -> dict[str, torch.Tensor] | None:
        """One optimizer step; None when a stop (Ctrl-C) was requested before it began.

        The stop request is checked before the forward pass, which would otherwise update the
        BatchNorm statistics of a step that the resumed run does again.
        """
        if self.agreed(stop is not None and stop.requested):
            return None
        self.ddp_model.train()
        losses = self.forward_losses(batch)
        total = losses['total']
        if self.agreed(not bool(torch.isfinite(total.detach()))):
            terms = ', '.join(f'{k}={float(v.detach()):.4g}' for k, v in losses.items())
            raise NonFiniteLossError(f'non-finite loss at step {self.step + 1} ({terms})')
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(total).backward()
        clip = self.experiment['optim']['grad_clip']
        if clip > 0:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        self.step += 1
        self.epoch_batch += 1
        return {key: value.detach() for key, value in losses.items()}

    # ---- validation ---------------------------------------------------------------------
    @torch.no_grad()
    def validate(self) -> tuple[dict[str, float], list[dict[str, np.ndarray]]]:
        """Score the validation split with metrics.compute_depth_metrics (as mono-depth-eval).

        Returns the averaged metrics (every rank gets them) and up to validation.log_images
        examples (rank 0) for TensorBoard.
        """
        if self.val_loader is None:
            raise RuntimeError('validate() needs a data path')
        val = self.experiment['validation']
        self.model.eval()
        rows: list[dict[str, float]] = []
        examples: list[dict[str, np.ndarray]] = []
        beyond_counts = np.zeros(3)  # true positives, labelled beyond, predicted beyond
        for batch in self.val_loader:
            images = batch['image'].to(self.device).contiguous(memory_format=self.memory_format)
            with self.autocast():
                outputs = self.model(images)
            pred = outputs['depth'].float().cpu().numpy()[:, 0]
            gt = batch['depth'].numpy()[:, 0]
            if 'intrinsics' in batch:  # metric depth, as inference scales it
                factor = focal_factor(batch['intrinsics'].double(),
                                      float(self.model_config['canonical_focal']))
                pred = pred * factor.numpy()[:, 0].astype(np.float32)
            if 'beyond' in outputs:
                far = outputs['beyond'].float().cpu().numpy()[:, 0]
                beyond_counts += beyond_counts_of(self.canonical_depth(batch).numpy()[:, 0],
                                                  far, self.model_config['max_depth'])
            for index in range(len(pred)):
                if not evaluation_mask(gt[index], val['metric_crop'], val['min_depth'],
                                       val['max_depth']).any():
                    continue
                rows.append(compute_depth_metrics(gt[index], pred[index], val['metric_crop'],
                                                  val['min_depth'], val['max_depth']))
                if len(examples) < val['log_images']:
                    examples.append({'image': batch['image_raw'][index].numpy(),
                                     'gt': gt[index], 'pred': pred[index]})
        rows = [row for part in all_gather_objects(rows, self.dist) for row in part]
        if not rows:
            raise RuntimeError('validation split has no frame with ground truth in range')
        metrics = average_metrics(rows)
        metrics['frames'] = len(rows)
        if self.model_config.get('beyond_range'):
            hits, labelled, predicted = np.sum(all_gather_objects(beyond_counts, self.dist),
                                               axis=0)
            metrics['beyond_recall'] = float(hits / labelled) if labelled else float('nan')
            metrics['beyond_precision'] = float(hits / predicted) if predicted else float('nan')
        return metrics, examples

    # ---- state --------------------------------------------------------------------------
    def state_extra(self) -> dict[str, Any]:
        """Everything besides the weights that a resumed run needs (collective under DDP)."""
        rng = all_gather_objects(capture_rng_state(), self.dist)
        return {
            'kind': CHECKPOINT_KIND,
            'optimizer': self.optimizer.state_dict(),
            'scheduler': self.scheduler.state_dict(),
            'scaler': self.scaler.state_dict(),
            'rng': rng,
            'step': self.step,
            'epoch': self.epoch,
            'epoch_batch': self.epoch_batch,
            'world_size': self.dist.world_size,
            'train_config': copy.deepcopy(self.experiment),
            'best_abs_rel': self.best_abs_rel,
            'train_seconds': self.train_seconds,
        }

    def load_state(self, checkpoint: dict[str, Any]) -> None:
        """Restore weights, optimizer, scheduler, scaler, RNGs and data position."""
        extra = checkpoint['extra']
        self.model.load_state_dict(checkpoint['state_dict'])
        self.optimizer.load_state_dict(extra['optimizer'])
        self.scheduler.load_state_dict(extra['scheduler'])
        self.scheduler.lr_lambdas[0].total_steps = self.experiment['train']['iterations']
        self.scaler.load_state_dict(extra['scaler'])
        self.step, self.epoch = int(extra['step']), int(extra['epoch'])
        self.epoch_batch = int(extra['epoch_batch'])
        self.best_abs_rel = extra['best_abs_rel']
        self.train_seconds = float(extra.get('train_seconds', 0.0))  # absent before it existed
        rng = extra['rng']
        restore_rng_state(rng[self.dist.rank] if self.dist.rank < len(rng) else rng[0])

    def save_checkpoint(self, best: bool = False) -> Path | None:
        """Write step_<N>.pt (and best.pt when best) on rank 0; returns the path there."""
        extra = self.state_extra()
        path = None
        if self.dist.is_main:
            path = self.checkpoints.save(self.step, self.model, extra)
            if best:
                self.checkpoints.save_best(self.model, extra)
        return path

    # ---- the loop -----------------------------------------------------------------------
    def maybe_validate(self, reporter: Reporter, final: bool) -> bool:
        """Validate when due; return True when abs_rel improved on the best so far."""
        every = self.experiment['train']['val_every']
        if not (final or (every and self.step % every == 0)):
            return False
        metrics, examples = self.validate()
        improved = self.best_abs_rel is None or metrics['abs_rel'] < self.best_abs_rel
        if improved:
            self.best_abs_rel = metrics['abs_rel']
        reporter.validation(self.step, metrics, examples, self.best_abs_rel,
                            self.train_seconds)
        return improved

    def batches(self):
        """Yield training batches forever from the saved data position (epoch, batch)."""
        while True:
            self.sampler.set_position(self.epoch, self.epoch_batch * self.batch_per_rank)
            yield from self.train_loader
            self.epoch += 1
            self.epoch_batch = 0

    def run(self, stop: StopRequest | None = None) -> RunResult:
        """Train until train.iterations steps (or a stop request); checkpoint along the way."""
        if self.train_loader is None:
            raise RuntimeError('run() needs a data path')
        train = self.experiment['train']
        total = train['iterations']
        if self.step >= total:
            return RunResult('completed', self.step, None, self.best_abs_rel, self.train_seconds)
        ensure_writable_dir(self.out_dir)
        reporter = Reporter(self.out_dir, self.experiment, self.dist, total, self.step)
        status = 'completed'
        try:
            tick = time.perf_counter()  # loading the batch counts as training time
            for batch in self.batches():
                if self.step >= total:
                    break
                start = time.perf_counter()
                losses = self.train_step(batch, stop)
                if losses is None:
                    status = 'interrupted'
                    break
                now = time.perf_counter()
                self.train_seconds += now - tick
                reporter.train(self.step, losses, self.scheduler.get_last_lr()[0],
                               len(batch['image']) * self.dist.world_size, now - start)
                final = self.step >= total
                improved = self.maybe_validate(reporter, final)
                every = train['checkpoint_every']
                if final or improved or (every and self.step % every == 0):
                    self.save_checkpoint(best=improved)
                if final:
                    break
                tick = time.perf_counter()
            if status == 'interrupted':
                self.save_checkpoint()
        except NonFiniteLossError as error:
            last = self.checkpoints.last_path
            kept = f'the last good checkpoint is {last}' if last else 'no checkpoint was written'
            raise NonFiniteLossError(f'{error}; training stopped, {kept}') from None
        finally:
            reporter.close()
        return RunResult(status, self.step, self.checkpoints.last_path, self.best_abs_rel,
                         self.train_seconds)


def read_resume_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Load a checkpoint to resume from; ConfigError when it was not written by the trainer."""
    checkpoint = load_checkpoint(path)
    extra = checkpoint.get('extra') or {}
    if extra.get('kind') != CHECKPOINT_KIND:
        raise ConfigError(f'--resume: {path} is a model checkpoint without training state '
                          '(optimizer, step, RNG); it cannot be resumed')
    return checkpoint
