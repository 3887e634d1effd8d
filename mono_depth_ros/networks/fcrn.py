"""FCRN (Laina et al. 2016): ResNet-50, 1×1 conv to 1024, four up-projections, 3×3 conv."""

import torch
from torch import nn

from mono_depth_ros.networks.blocks import UpProjection
from mono_depth_ros.networks.encoder import ResNetEncoder
from mono_depth_ros.networks.heads import DepthModel


class FCRNBody(nn.Module):
    """ResNet → 1×1 conv to 1024 → up-projections 1024→512→256→128→64 (output at 1/2)."""

    def __init__(self, encoder: ResNetEncoder, channels: list[int]) -> None:
        super().__init__()
        self.encoder = encoder
        self.reduce = nn.Sequential(nn.Conv2d(encoder.channels[4], channels[0], 1, bias=False),
                                    nn.BatchNorm2d(channels[0]))
        self.ups = nn.Sequential(*[UpProjection(c_in, c_out)
                                   for c_in, c_out in zip(channels[:-1], channels[1:],
                                                          strict=True)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Features at half the input resolution."""
        return self.ups(self.reduce(self.encoder(x)[4]))


class FCRN(DepthModel):
    """The FCRN baseline; its 3×3 depth conv is bounded like every head, output upsampled ×2."""

    def __init__(self, config: dict, encoder: ResNetEncoder) -> None:
        super().__init__(config)
        channels = list(config['decoder']['channels'])
        self.body = FCRNBody(encoder, channels)
        self.out_stride = 2 ** (5 - (len(channels) - 1))
        self.make_heads(channels[-1])
