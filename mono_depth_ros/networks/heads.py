"""Output heads: bounded metric depth, K log-spaced depth bins, beyond range; the model base."""

import math

import torch
from torch import nn
from torch.nn import functional

# Every network's input is padded (replicate) to a multiple of this stride and cropped back.
PAD_STRIDE = 32


def log_bin_edges(min_depth: float, max_depth: float, count: int) -> torch.Tensor:
    """The count + 1 edges of count log-spaced bins from min_depth to max_depth (float64)."""
    return torch.logspace(math.log10(min_depth), math.log10(max_depth), count + 1,
                          dtype=torch.float64)


def depth_to_bin(depth: torch.Tensor, edges: torch.Tensor) -> torch.Tensor:
    """Bin index of each depth: bin k holds [edges[k], edges[k+1]); the last bin includes
    max_depth, and depths outside the range are clamped to the first or last bin."""
    inner = edges[1:-1].to(depth.dtype)
    return torch.bucketize(depth.contiguous(), inner, right=True)


class DepthHead(nn.Module):
    """3×3 conv to one channel; a sigmoid scaled in log space bounds depth to [min, max]."""

    def __init__(self, cin: int, min_depth: float, max_depth: float) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, 1, 3, padding=1)
        self.log_min = math.log(min_depth)
        self.log_span = math.log(max_depth) - math.log(min_depth)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Depth in metres, B×1×H×W."""
        return torch.exp(self.log_min + self.log_span * torch.sigmoid(self.conv(x)))


class BinHead(nn.Module):
    """1×1 conv to K logits over log-spaced depth bins; gives expectation depth and confidence."""

    def __init__(self, cin: int, min_depth: float, max_depth: float, count: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, count, 1)
        edges = log_bin_edges(min_depth, max_depth, count)
        self.register_buffer('edges', edges.float(), persistent=False)
        self.register_buffer('centers', torch.sqrt(edges[:-1] * edges[1:]).float(),
                             persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits B×K×H×W."""
        return self.conv(x)

    def interpret(self, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Expectation depth and confidence (1 − entropy / log K), each B×1×H×W."""
        log_prob = torch.log_softmax(logits.float(), dim=1)
        prob = log_prob.exp()
        expectation = (prob * self.centers.view(1, -1, 1, 1)).sum(dim=1, keepdim=True)
        return expectation, entropy_confidence(prob, log_prob)

    def confidence(self, logits: torch.Tensor) -> torch.Tensor:
        """Only the confidence of interpret (what inference needs), B×1×H×W."""
        log_prob = torch.log_softmax(logits.float(), dim=1)
        return entropy_confidence(log_prob.exp(), log_prob)


class BeyondHead(nn.Module):
    """1×1 conv to one logit: no surface within max_depth at this pixel (sky, far away)."""

    def __init__(self, cin: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logit B×1×H×W (sigmoid: the probability that the pixel is beyond range)."""
        return self.conv(x)


def entropy_confidence(prob: torch.Tensor, log_prob: torch.Tensor) -> torch.Tensor:
    """1 − entropy / log K of B×K×H×W bin probabilities, in [0, 1] (1: one certain bin)."""
    entropy = -(prob * log_prob).sum(dim=1, keepdim=True)
    return (1.0 - entropy / math.log(prob.shape[1])).clamp(0.0, 1.0)


class DepthModel(nn.Module):
    """Base of every network: pads to PAD_STRIDE, runs the body and heads, crops back.

    Subclasses set self.body (returning features at 1/self.out_stride of the padded input) and
    call self.make_heads(channels). The regression head gives 'depth'; the bin head, when the
    config has bins > 0, gives 'logits', 'bin_depth' and 'confidence'; the beyond-range head,
    when the config has beyond_range: true, gives 'beyond_logit' and 'beyond' (its sigmoid: the
    probability that no surface lies within max_depth). With bins_stride s > 1 the bin head
    runs on the features average-pooled s×s: its confidence and bin depth are computed there and
    upsampled bilinearly (its logits too, for the loss). See docs/networks.md.
    """

    def __init__(self, config: dict) -> None:
        super().__init__()
        self.config = config
        self.min_depth = float(config['min_depth'])
        self.max_depth = float(config['max_depth'])
        self.out_stride = 1
        self.bins_stride = int(config.get('bins_stride', 1))

    def make_heads(self, channels: int) -> None:
        """Create the depth head and, when configured, the bin head on channels features."""
        self.depth_head = DepthHead(channels, self.min_depth, self.max_depth)
        count = int(self.config['bins'])
        self.bin_head = BinHead(channels, self.min_depth, self.max_depth, count) if count else None
        self.beyond_head = BeyondHead(channels) if self.config.get('beyond_range') else None

    @property
    def has_confidence(self) -> bool:
        """Whether the model outputs a confidence map (it has the bin head)."""
        return self.bin_head is not None

    @property
    def has_beyond(self) -> bool:
        """Whether the model says where no surface lies within max_depth (beyond-range head)."""
        return self.beyond_head is not None

    @property
    def bin_centers(self) -> torch.Tensor | None:
        """Geometric centres of the K depth bins in metres, or None without a bin head."""
        return None if self.bin_head is None else self.bin_head.centers

    @property
    def bin_edges(self) -> torch.Tensor | None:
        """The K + 1 bin edges in metres, or None without a bin head."""
        return None if self.bin_head is None else self.bin_head.edges

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Predict from an ImageNet-normalised B×3×H×W batch of any size."""
        features, size = self.features(x)
        outputs = {'depth': self.to_input(self.depth_head(features), size)}
        if self.bin_head is not None:
            logits = self.bin_head(self.bin_features(features))
            outputs['logits'] = self.to_input(logits, size)
            if self.bins_stride == 1:
                outputs['bin_depth'], outputs['confidence'] = self.bin_head.interpret(
                    outputs['logits'])
            else:  # interpreted where the head runs, then upsampled (as predict_maps)
                bin_depth, confidence = self.bin_head.interpret(logits)
                outputs['bin_depth'] = self.to_input(bin_depth, size)
                outputs['confidence'] = self.to_input(confidence, size)
        if self.beyond_head is not None:
            outputs['beyond_logit'] = self.to_input(self.beyond_head(features), size)
            outputs['beyond'] = torch.sigmoid(outputs['beyond_logit'])
        return outputs

    def predict_maps(self, x: torch.Tensor, confidence: bool = True, strip_rows: int = 0
                     ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """Only forward's depth, confidence (if asked and there is a bin head) and beyond.

        What inference needs. strip_rows > 0 runs a full-resolution bin head and its confidence
        on strips of that many rows: the same numbers, with the K logits of a strip staying in
        the CPU's cache.
        """
        features, size = self.features(x)
        depth = self.to_input(self.depth_head(features), size)
        beyond = None if self.beyond_head is None \
            else torch.sigmoid(self.to_input(self.beyond_head(features), size))
        if not confidence or self.bin_head is None:
            return depth, None, beyond
        if self.bins_stride != 1:
            logits = self.bin_head(self.bin_features(features))
            return depth, self.to_input(self.bin_head.confidence(logits), size), beyond
        if strip_rows <= 0 or self.out_stride != 1:
            logits = self.to_input(self.bin_head(features), size)
            return depth, self.bin_head.confidence(logits), beyond
        features = features[..., :size[0], :size[1]]  # the 1×1 bin head works per pixel
        return depth, torch.cat([self.bin_head.confidence(self.bin_head(
            features[..., row:row + strip_rows, :])) for row in range(0, size[0], strip_rows)],
            dim=-2), beyond

    def bin_features(self, features: torch.Tensor) -> torch.Tensor:
        """The body's features where the bin head runs: average-pooled by bins_stride."""
        if self.bins_stride == 1:
            return features
        return functional.avg_pool2d(features, self.bins_stride, ceil_mode=True)

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int, int, int]]:
        """Body features of x padded to PAD_STRIDE, and (h, w, padded h, padded w)."""
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f'expected a B×3×H×W image batch, got shape {tuple(x.shape)}')
        h, w = x.shape[-2:]
        padded = functional.pad(x, (0, -w % PAD_STRIDE, 0, -h % PAD_STRIDE), mode='replicate')
        return self.body(padded), (h, w, *padded.shape[-2:])

    def to_input(self, value: torch.Tensor, size: tuple[int, int, int, int]) -> torch.Tensor:
        """A head's output brought to the padded input resolution and cropped to h×w."""
        h, w, padded_h, padded_w = size
        if tuple(value.shape[-2:]) != (padded_h, padded_w):
            value = functional.interpolate(value, size=(padded_h, padded_w), mode='bilinear',
                                           align_corners=False)
        return value[..., :h, :w]
