"""Monodepth2-style ResNet U-Net depth decoder (a benchmark baseline), bounded depth head."""

import torch
from torch import nn
from torch.nn import functional

from mono_depth_ros.networks.encoder import ResNetEncoder
from mono_depth_ros.networks.heads import DepthModel


def conv_elu(cin: int, cout: int) -> nn.Sequential:
    """Monodepth2's ConvBlock (3×3 conv and ELU), replicate-padded so 1×1 maps work too."""
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, padding_mode='replicate'),
                         nn.ELU(inplace=True))


class UNetBody(nn.Module):
    """Per stage: conv, nearest 2× upsampling, concatenation with the encoder skip, conv."""

    def __init__(self, encoder: ResNetEncoder, channels: list[int]) -> None:
        super().__init__()
        self.encoder = encoder
        enc = encoder.channels
        # channels are listed from 1/16 to 1/1, like msfusion; stage i has skip enc[3 - i].
        ins = [enc[4], *channels[:-1]]
        skips = [enc[3], enc[2], enc[1], enc[0], 0]
        self.pre = nn.ModuleList([conv_elu(c_in, c) for c_in, c in zip(ins, channels,
                                                                     strict=True)])
        self.post = nn.ModuleList([conv_elu(c + s, c) for c, s in zip(channels, skips,
                                                                    strict=True)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Full-resolution decoder features."""
        features = self.encoder(x)
        y = features[4]
        skips = [features[3], features[2], features[1], features[0], None]
        for pre, post, skip in zip(self.pre, self.post, skips, strict=True):
            y = functional.interpolate(pre(y), scale_factor=2, mode='nearest')
            y = post(y if skip is None else torch.cat([y, skip], dim=1))
        return y


class UNet(DepthModel):
    """The U-Net baseline with the bounded depth head (and the bin head if configured)."""

    def __init__(self, config: dict, encoder: ResNetEncoder) -> None:
        super().__init__(config)
        channels = list(config['decoder']['channels'])
        if len(channels) != 5:
            raise ValueError(f'decoder.channels of unet needs 5 widths, got {channels}')
        self.body = UNetBody(encoder, channels)
        self.make_heads(channels[-1])
