"""ResNet encoders from torchvision that return features at strides 2, 4, 8, 16 and 32."""

import os
from pathlib import Path
from urllib.parse import urlparse

import torch
from torch import nn
import torchvision
from torchvision.models import (
    ResNet18_Weights,
    ResNet34_Weights,
    ResNet50_Weights,
    ResNet101_Weights,
)

from mono_depth_ros.core.config import ConfigError

# torchvision constructor, ImageNet weights and feature widths (stride 2, 4, 8, 16, 32) per depth.
RESNETS = {
    18: (torchvision.models.resnet18, ResNet18_Weights.IMAGENET1K_V1, (64, 64, 128, 256, 512)),
    34: (torchvision.models.resnet34, ResNet34_Weights.IMAGENET1K_V1, (64, 64, 128, 256, 512)),
    50: (torchvision.models.resnet50, ResNet50_Weights.IMAGENET1K_V1,
         (64, 256, 512, 1024, 2048)),
    101: (torchvision.models.resnet101, ResNet101_Weights.IMAGENET1K_V1,
          (64, 256, 512, 1024, 2048)),
}


class PretrainedWeightsError(ConfigError):
    """The encoder's ImageNet weights cannot be had (no file, no download) or do not fit it."""


def imagenet_weights_file(depth: int) -> Path:
    """Where torchvision keeps a ResNet's ImageNet weights: $TORCH_HOME/hub/checkpoints/<file>."""
    url = RESNETS[depth][1].url
    return Path(torch.hub.get_dir()) / 'checkpoints' / os.path.basename(urlparse(url).path)


def read_weights_file(path: str, depth: int) -> dict:
    """A torchvision ResNet state dict from a local file, or PretrainedWeightsError."""
    path = os.path.expanduser(os.fspath(path))
    if not os.path.isfile(path):
        raise PretrainedWeightsError(
            f'ImageNet weights for ResNet-{depth} not found at {path}; put the torchvision '
            'state dict there, leave encoder.pretrained_path empty for the torchvision weights '
            f'(downloaded once to {imagenet_weights_file(depth)}), or set '
            'encoder.random_init: true to train from scratch')
    try:
        return torch.load(path, map_location='cpu', weights_only=True)
    except Exception as error:
        raise PretrainedWeightsError(
            f'cannot read ImageNet weights {path} as a torch state dict: {error}') from error


def torchvision_weights(depth: int) -> dict:
    """torchvision's ImageNet weights of a ResNet: from its cache, else downloaded into it."""
    weights, cached = RESNETS[depth][1], imagenet_weights_file(depth)
    try:
        return weights.get_state_dict(map_location='cpu', progress=True, check_hash=True,
                                       weights_only=True)
    except Exception as error:
        if cached.is_file():
            raise PretrainedWeightsError(
                f'cannot read the ImageNet weights of ResNet-{depth} at {cached}: {error}; '
                'delete the file to download it again') from error
        raise PretrainedWeightsError(
            f'the ImageNet weights of ResNet-{depth} are not in the torchvision cache and could '
            f'not be downloaded from {weights.url} ({type(error).__name__}: {error}); without '
            f'internet, copy that file to {cached} (TORCH_HOME sets the folder), or set '
            'encoder.pretrained_path to a local copy, or encoder.random_init: true to train '
            'from scratch') from error


def load_resnet_weights(net: nn.Module, path: str | None, depth: int) -> None:
    """Load ImageNet weights into a torchvision ResNet strictly, or fail: from the local file
    path, or with path None torchvision's own (its cache, downloaded on first use)."""
    state = torchvision_weights(depth) if path is None else read_weights_file(path, depth)
    where = path if path is not None else imagenet_weights_file(depth)
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise PretrainedWeightsError(
            f'{where} is not a torchvision state dict (a mapping of names to tensors)')
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as error:
        raise PretrainedWeightsError(
            f'{where} does not match torchvision ResNet-{depth}: {error}') from error


class ResNetEncoder(nn.Module):
    """A torchvision ResNet without its classifier; forward returns the five feature maps.

    pretrained loads ImageNet weights: from pretrained_path, or with None torchvision's own.
    """

    def __init__(self, depth: int, pretrained: bool = False,
                 pretrained_path: str | None = None) -> None:
        super().__init__()
        if depth not in RESNETS:
            raise ConfigError(f'encoder.depth must be one of {sorted(RESNETS)}, got {depth!r}')
        constructor, _, self.channels = RESNETS[depth]
        net = constructor(weights=None)
        if pretrained:
            load_resnet_weights(net, pretrained_path, depth)
        self.stem = nn.Sequential(net.conv1, net.bn1, net.relu)
        self.pool = net.maxpool
        self.layer1, self.layer2 = net.layer1, net.layer2
        self.layer3, self.layer4 = net.layer3, net.layer4

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Features at strides 2, 4, 8, 16, 32 of an input whose sides are multiples of 32."""
        f2 = self.stem(x)
        f4 = self.layer1(self.pool(f2))
        f8 = self.layer2(f4)
        f16 = self.layer3(f8)
        f32 = self.layer4(f16)
        return [f2, f4, f8, f16, f32]
