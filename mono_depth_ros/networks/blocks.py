"""Building blocks: conv-BN-ReLU, multi-scale and dilated fusion blocks, FCRN up-projection."""

import torch
from torch import nn
from torch.nn import functional


class ConvBNReLU(nn.Sequential):
    """A k×k convolution (same padding, optional dilation), batch norm and ReLU."""

    def __init__(self, cin: int, cout: int, kernel: int = 3, dilation: int = 1) -> None:
        pad = dilation * (kernel - 1) // 2
        super().__init__(
            nn.Conv2d(cin, cout, kernel, padding=pad, dilation=dilation, bias=False),
            nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class MultiScaleBlock(nn.Module):
    """Parallel 1×1, 3×3, 5×5, 7×7 branches, concatenated and fused by a 1×1 conv, residual."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        mid = channels // 4
        self.branches = nn.ModuleList([ConvBNReLU(channels, mid, 1)] + [
            nn.Sequential(ConvBNReLU(channels, mid, 1), ConvBNReLU(mid, mid, k))
            for k in (3, 5, 7)])
        self.fuse = nn.Sequential(nn.Conv2d(4 * mid, channels, 1, bias=False),
                                  nn.BatchNorm2d(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Fuse the four receptive fields and add the input back."""
        y = torch.cat([branch(x) for branch in self.branches], dim=1)
        return functional.relu(x + self.fuse(y))


class DilatedBlock(nn.Module):
    """Plain, dilation-2 and dilation-4 3×3 convs concatenated and fused (replaces FC layers)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        mid = channels // 4
        self.branches = nn.ModuleList([ConvBNReLU(channels, mid, 3, d) for d in (1, 2, 4)])
        self.fuse = nn.Sequential(nn.Conv2d(3 * mid, channels, 1, bias=False),
                                  nn.BatchNorm2d(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Fuse the three dilation rates and add the input back."""
        y = torch.cat([branch(x) for branch in self.branches], dim=1)
        return functional.relu(x + self.fuse(y))


class FastUpConv(nn.Module):
    """Laina et al.'s fast up-convolution: 3×3, 3×2, 2×3, 2×2 convs interleaved to 2× size."""

    # (kernel (h, w), padding (left, right, top, bottom)) for output phases (0,0), (0,1), (1,0),
    # (1,1): equal to 2×2 zero-unpooling followed by a 5×5 convolution, without the zeros.
    PHASES = (((3, 3), (1, 1, 1, 1)), ((3, 2), (0, 1, 1, 1)),
              ((2, 3), (1, 1, 0, 1)), ((2, 2), (0, 1, 0, 1)))

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.convs = nn.ModuleList([nn.Conv2d(cin, cout, k, bias=False) for k, _ in self.PHASES])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the 2× upsampled map (B×cout×2H×2W)."""
        phases = [conv(functional.pad(x, pad)) for conv, (_, pad) in zip(self.convs, self.PHASES,
                                                               strict=True)]
        b, c, h, w = phases[0].shape
        stacked = torch.stack(phases, dim=2).reshape(b, 4 * c, h, w)
        return functional.pixel_shuffle(stacked, 2)


class UpProjection(nn.Module):
    """FCRN up-projection: two fast up-convs, one followed by a 3×3 conv, summed (residual)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.up_main = nn.Sequential(FastUpConv(cin, cout), nn.BatchNorm2d(cout),
                                     nn.ReLU(inplace=True))
        self.conv = nn.Sequential(nn.Conv2d(cout, cout, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(cout))
        self.up_skip = nn.Sequential(FastUpConv(cin, cout), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Upsample x by 2 with learned kernels."""
        return functional.relu(self.conv(self.up_main(x)) + self.up_skip(x))
