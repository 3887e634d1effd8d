"""ResNet encoders from torchvision that return features at strides 2, 4, 8, 16 and 32."""

import os

import torch
from torch import nn
import torchvision

from mono_depth_ros.core.config import ConfigError

# torchvision constructor and feature widths (stride 2, 4, 8, 16, 32) per ResNet depth.
RESNETS = {
    18: (torchvision.models.resnet18, (64, 64, 128, 256, 512)),
    34: (torchvision.models.resnet34, (64, 64, 128, 256, 512)),
    50: (torchvision.models.resnet50, (64, 256, 512, 1024, 2048)),
    101: (torchvision.models.resnet101, (64, 256, 512, 1024, 2048)),
}


class PretrainedWeightsError(ConfigError):
    """The ImageNet weights file named in a model config is missing or does not fit the encoder."""


def load_resnet_weights(net: nn.Module, path: str, depth: int) -> None:
    """Load a torchvision ResNet state dict from a local file into net strictly, or fail."""
    path = os.path.expanduser(os.fspath(path))
    if not os.path.isfile(path):
        raise PretrainedWeightsError(
            f'ImageNet weights for ResNet-{depth} not found at {path}; put the torchvision '
            f'state dict there, or set encoder.random_init: true to train from scratch')
    try:
        state = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as error:
        raise PretrainedWeightsError(
            f'cannot read ImageNet weights {path} as a torch state dict: {error}') from error
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise PretrainedWeightsError(
            f'{path} is not a torchvision state dict (a mapping of names to tensors)')
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as error:
        raise PretrainedWeightsError(
            f'{path} does not match torchvision ResNet-{depth}: {error}') from error


class ResNetEncoder(nn.Module):
    """A torchvision ResNet without its classifier; forward returns the five feature maps."""

    def __init__(self, depth: int, pretrained_path: str | None = None) -> None:
        super().__init__()
        if depth not in RESNETS:
            raise ConfigError(f'encoder.depth must be one of {sorted(RESNETS)}, got {depth!r}')
        constructor, self.channels = RESNETS[depth]
        net = constructor(weights=None)
        if pretrained_path is not None:
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
