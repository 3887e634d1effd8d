"""Multi-scale feature fusion network: ResNet encoder, multi-scale and dilated context blocks at
1/32, and an upsampling decoder that concatenates encoder skips up to full resolution."""

import torch
from torch import nn
from torch.nn import functional

from mono_depth_ros.networks.blocks import ConvBNReLU, DilatedBlock, MultiScaleBlock, UpProjection
from mono_depth_ros.networks.encoder import ResNetEncoder
from mono_depth_ros.networks.heads import DepthModel


class Upsample2x(nn.Module):
    """Bilinear 2× upsampling (no parameters)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return x at twice the height and width."""
        return functional.interpolate(x, scale_factor=2, mode='bilinear', align_corners=False)


class MSFusionBody(nn.Module):
    """Encoder → context (multi-scale ×n, dilated ×m) → upsampling + skip-fusion stages, one per
    decoder width: 5 end at full resolution, 4 at 1/2. With head_fusion k the outputs of the k
    stages before the last (and, when k reaches back past the first stage, the context) are
    each reduced by a 1×1 conv to the last width, upsampled bilinearly to its resolution and
    concatenated with it: the heads see high- and intermediate-level maps at once."""

    def __init__(self, encoder: ResNetEncoder, context: int, channels: list[int],
                 multiscale_blocks: int, dilated_blocks: int, upprojection_stages: int,
                 reduce_before_upsample: bool = False, head_fusion: int = 0) -> None:
        super().__init__()
        self.encoder = encoder
        enc = encoder.channels
        self.reduce = ConvBNReLU(enc[4], context, 1)
        self.context = nn.Sequential(*[MultiScaleBlock(context) for _ in range(multiscale_blocks)],
                                     *[DilatedBlock(context) for _ in range(dilated_blocks)])
        # Stage i upsamples to stride 2**(4 - i) and fuses the encoder map of that stride.
        skips = [enc[3], enc[2], enc[1], enc[0], 0][:len(channels)]
        ins = [context, *channels[:-1]]
        # Learned up-projections at the low-resolution stages; bilinear 2× at the expensive
        # high-resolution ones, where the fusing 3×3 conv then maps c_in + skip to c_out, or,
        # with reduce_before_upsample, a 1×1 conv maps c_in to c_out before the upsampling (at
        # a quarter of the pixels) and the fusing 3×3 conv maps only c_out + skip.
        self.ups = nn.ModuleList([
            UpProjection(c_in, c_out) if i < upprojection_stages
            else nn.Sequential(ConvBNReLU(c_in, c_out, 1), Upsample2x())
            if reduce_before_upsample else Upsample2x()
            for i, (c_in, c_out) in enumerate(zip(ins, channels, strict=True))])
        self.fuses = nn.ModuleList([
            ConvBNReLU((c_out if i < upprojection_stages or reduce_before_upsample else c_in)
                       + skip, c_out, 3)
            for i, (c_in, c_out, skip) in enumerate(zip(ins, channels, skips, strict=True))])
        # ins[-1 - j] is the width of the map j stages before the last stage's output.
        self.laterals = nn.ModuleList([ConvBNReLU(ins[-1 - j], channels[-1], 1)
                                       for j in range(head_fusion)])
        self.out_channels = channels[-1] * (1 + head_fusion)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Fused features B×out_channels at full (5 stages) or half (4 stages) resolution."""
        features = self.encoder(x)
        y = self.context(self.reduce(features[4]))
        skips = [features[3], features[2], features[1], features[0], None][:len(self.fuses)]
        maps = []
        for up, fuse, skip in zip(self.ups, self.fuses, skips, strict=True):
            maps.append(y)
            y = up(y)
            y = fuse(y if skip is None else torch.cat([y, skip], dim=1))
        if not self.laterals:
            return y
        size = y.shape[-2:]
        return torch.cat([y, *[
            functional.interpolate(lateral(maps[-1 - j]), size=size, mode='bilinear',
                                   align_corners=False)
            for j, lateral in enumerate(self.laterals)]], dim=1)


class MSFusionNet(DepthModel):
    """The multi-scale fusion depth network with the regression and bin heads."""

    def __init__(self, config: dict, encoder: ResNetEncoder) -> None:
        super().__init__(config)
        dec = config['decoder']
        if not isinstance(dec['reduce_before_upsample'], bool):
            raise ValueError('decoder.reduce_before_upsample of msfusion must be true or false, '
                             f'got {dec["reduce_before_upsample"]!r}')
        if len(dec['channels']) not in (4, 5):
            raise ValueError('decoder.channels of msfusion needs 5 widths (1/16 .. 1/1) or 4 '
                             f'(1/16 .. 1/2: heads at 1/2, upsampled), got {dec["channels"]}')
        fusion = dec['head_fusion']
        if isinstance(fusion, bool) or not isinstance(fusion, int) \
                or not 0 <= fusion <= len(dec['channels']):
            raise ValueError('decoder.head_fusion of msfusion must be an integer from 0 to the '
                             f'number of stages {len(dec["channels"])}, got {fusion!r}')
        self.body = MSFusionBody(encoder, dec['context_channels'], list(dec['channels']),
                                 dec['multiscale_blocks'], dec['dilated_blocks'],
                                 dec['upprojection_stages'], dec['reduce_before_upsample'],
                                 fusion)
        self.out_stride = 2 ** (5 - len(dec['channels']))
        self.make_heads(self.body.out_channels)
