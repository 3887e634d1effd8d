"""Fine-tuning from a checkpoint, and the canonical camera that training shares with inference.

`model.init_checkpoint` starts a run from the weights of a checkpoint (a release of
mono-depth-release, or any checkpoint): weights only, loaded strictly; the optimizer, the
schedule and the step start fresh. The checkpoint must hold the network that the training config
builds: every key of the model config must match except the loss weights, the ImageNet-file
settings of the encoder and the input size; at another input size canonical_focal must scale with
the input width (the same canonical camera).

A network predicts depth for its canonical camera (focal length canonical_focal at the network
input); inference multiplies by f_input / canonical_focal (inference.estimator.focal_scale).
Training therefore divides the ground truth by that factor, with f_input the focal length of
the training image at the network input (the dataset's 'intrinsics').
"""

import os
from typing import Any

import torch
from torch import nn

from mono_depth_ros.core.config import ConfigError
from mono_depth_ros.networks.build import config_differences, validate_model_config
from mono_depth_ros.networks.checkpoint import CheckpointError, load_checkpoint

# Model-config keys that may differ from the checkpoint's: they do not change the weights.
FREE_KEYS = ('name', 'loss', 'input_size', 'canonical_focal', 'encoder.pretrained_path',
             'encoder.random_init')
FOCAL_TOLERANCE = 1e-4          # relative, canonical_focal per pixel of input width


def focal_factor(intrinsics: torch.Tensor, canonical_focal: float) -> torch.Tensor:
    """B×1×1×1 depth factor f_input / canonical_focal of a batch of 3×3 input intrinsics."""
    return (intrinsics[:, 0, 0] / canonical_focal).reshape(-1, 1, 1, 1)


def check_init_config(path: str, saved: dict[str, Any], wanted: dict[str, Any]) -> None:
    """ConfigError when the checkpoint's model config is not the network being trained."""
    # Defaults filled in first: a checkpoint made before a key existed has that key's default.
    differ = config_differences(validate_model_config(saved), wanted, FREE_KEYS,
                                ('in the checkpoint', 'in the training config'))
    per_pixel = float(saved['canonical_focal']) / saved['input_size'][1]
    wanted_focal = float(wanted['canonical_focal'])
    if abs(wanted_focal / wanted['input_size'][1] / per_pixel - 1) > FOCAL_TOLERANCE:
        differ.append(f'canonical_focal: {saved["canonical_focal"]} at input width '
                      f'{saved["input_size"][1]} in the checkpoint, {wanted_focal} at input '
                      f'width {wanted["input_size"][1]} in the training config (another '
                      f'canonical camera; set canonical_focal='
                      f'{per_pixel * wanted["input_size"][1]:.4f} in model.overrides)')
    if differ:
        raise ConfigError(
            f'model.init_checkpoint {path} holds a {saved.get("name")!r} network that differs '
            f'from the training config\'s model ({wanted.get("name")!r}): '
            + '; '.join(differ) + '. Make model.config and model.overrides describe the '
            "checkpoint's network")


def load_init_weights(model: nn.Module, path: str | os.PathLike,
                      model_config: dict[str, Any]) -> dict[str, Any]:
    """Load a checkpoint's weights (strictly) into model; returns what was loaded.

    CheckpointError for a missing or unreadable file, ConfigError for another network.
    """
    path = os.path.expanduser(os.fspath(path))
    data = load_checkpoint(path)
    check_init_config(path, data['model_config'], model_config)
    try:
        model.load_state_dict(data['state_dict'], strict=True)
    except RuntimeError as error:
        raise CheckpointError(f'model.init_checkpoint {path} does not fit the network: '
                              f'{error}') from error
    extra = data.get('extra') or {}
    release = extra.get('release') or {}
    return {'path': path, 'step': release.get('step', extra.get('step')),
            'release': bool(release)}
