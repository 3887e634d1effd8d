"""Checkpoints: atomic save, checked load, and rebuilding the model a checkpoint describes.

A checkpoint is a torch file holding a dict with 'format' (CHECKPOINT_FORMAT), 'model_config'
(the model's complete config), 'input_size' [H, W], 'depth_range' [min, max], 'state_dict'
(CPU tensors) and 'extra' (whatever the caller adds: optimizer, step, train config ...).
Files are read with torch.load(weights_only=True), so 'extra' may hold tensors, numbers,
strings, lists, tuples and dicts only (store RNG states as tensors or lists, not numpy objects).
"""

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mono_depth_ros.core.config import ConfigError
from mono_depth_ros.core.paths import atomic_output
from mono_depth_ros.networks import build_model
from mono_depth_ros.networks.build import claim_differences

CHECKPOINT_FORMAT = 'mono_depth_ros/checkpoint/v1'
REQUIRED_KEYS = ('format', 'model_config', 'input_size', 'depth_range', 'state_dict', 'extra')


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, unreadable, of another format or does not fit its model."""


def save_checkpoint(path: str | os.PathLike, model: nn.Module,
                    weights_dtype: torch.dtype | None = None, **extra: Any) -> Path:
    """Write model (config, input size, depth range, weights) and extra to path atomically.

    weights_dtype (e.g. torch.float16) stores the floating-point weights in that type; load_model
    loads them back into the model's own (float32) parameters.
    """
    path = Path(path)
    config = getattr(model, 'config', None)
    if not isinstance(config, dict):
        raise CheckpointError(f'cannot save {path}: the model has no config (use build_model)')
    payload = {
        'format': CHECKPOINT_FORMAT,
        'model_config': config,
        'input_size': list(config['input_size']),
        'depth_range': [float(model.min_depth), float(model.max_depth)],
        'state_dict': {k: _stored(v.detach().cpu(), weights_dtype)
                       for k, v in model.state_dict().items()},
        'extra': extra,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path, fsync=True) as stream:
        torch.save(payload, stream)
    return path


def _stored(tensor: torch.Tensor, dtype: torch.dtype | None) -> torch.Tensor:
    """A tensor as stored: floating point in dtype when given, anything else unchanged."""
    return tensor.to(dtype) if dtype is not None and tensor.is_floating_point() else tensor


def save_release(path: str | os.PathLike, model: nn.Module, half: bool = True,
                 **info: Any) -> Path:
    """A release checkpoint: the weights (fp16 with half), config, input size and depth range,
    and info (plain data: how it was trained and scored); no optimizer or training state."""
    return save_checkpoint(path, model, torch.float16 if half else None,
                           release={'weights': 'fp16' if half else 'fp32', **info})


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read and check a checkpoint dict (CPU tensors); CheckpointError names the path."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise CheckpointError(f'checkpoint not found: {path}')
    try:
        data = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as error:
        raise CheckpointError(
            f'checkpoint {path} is corrupt or holds objects other than plain data '
            f'(tensors, numbers, strings, lists, dicts): {error}') from error
    if not isinstance(data, dict) or data.get('format') != CHECKPOINT_FORMAT:
        found = data.get('format') if isinstance(data, dict) else type(data).__name__
        raise CheckpointError(
            f'{path} is not a mono_depth_ros checkpoint (format {found!r}, expected '
            f"{CHECKPOINT_FORMAT!r}); a bare state dict or another project's file will not do")
    missing = [key for key in REQUIRED_KEYS if key not in data]
    if missing:
        raise CheckpointError(f'checkpoint {path} lacks {missing}')
    return data


def load_model(path: str | os.PathLike, device: str | torch.device = 'cpu') -> nn.Module:
    """Rebuild the checkpoint's model (no ImageNet file needed), load weights strictly, eval.

    CheckpointError where the network differs from the named config its name claims.
    """
    data = load_checkpoint(path)
    config = dict(data['model_config'])
    config['input_size'] = list(data['input_size'])
    try:
        model = build_model(config, load_pretrained=False)
        claimed = claim_differences(config)
    except (ConfigError, ValueError) as error:
        raise CheckpointError(f'checkpoint {path} has an invalid model config: {error}') from error
    if claimed:
        raise CheckpointError(
            f'checkpoint {path} calls its network {config["name"]!r} but holds another one: '
            + '; '.join(claimed) + '. Rename it after what it holds (training does: '
            "'msfusion_r18+decoder.dilated_blocks') or rebuild it from the named config")
    try:
        model.load_state_dict(data['state_dict'], strict=True)
    except RuntimeError as error:
        raise CheckpointError(
            f'checkpoint {path} does not match its model {config.get("name")!r}: {error}'
        ) from error
    return model.to(device).eval()
