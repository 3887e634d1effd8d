"""What the backends share: device and precision choice, preprocessing (resize to the network
input, ImageNet normalisation), and the maps brought back to each image: depth resized and
focal-scaled, +inf where the beyond-range head says no surface lies within max_depth."""

import abc
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 - the usual name

from mono_depth_ros.core import stages
from mono_depth_ros.core.constants import IMAGENET_MEAN, IMAGENET_STD
from mono_depth_ros.inference.estimator import DepthEstimator, PointsRequest, Prediction

PRECISIONS = {'fp32': None, 'fp16': torch.float16, 'bf16': torch.bfloat16}
# depth, confidence (or None), beyond-range probability (or None): B×1×h×w each
Maps = tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]
# A pixel whose beyond-range probability is above BEYOND_THRESHOLD gets depth +inf (REP 117:
# no return); so does one above BEYOND_THRESHOLD_FAR whose depth is at least BEYOND_FAR_DEPTH
# metres: an unsure head and a far depth together are sky far more often than a surface.
# Chosen on the release model's validation drives (docs in models/msfusion_r18.md): sky
# published nearer than 60 m 2.8 % -> 1.4 %, abs_rel +0.001, coverage 99.8 % -> 99.2 %.
BEYOND_THRESHOLD = 0.5
BEYOND_THRESHOLD_FAR = 0.3
BEYOND_FAR_DEPTH = 20.0


def resolve_device(device: str | torch.device) -> torch.device:
    """Turn 'auto' into cuda when available (else cpu) and check that cuda exists if asked."""
    if str(device) == 'auto':
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda[:N]', got {device!r}") from error
    if resolved.type == 'cuda' and not torch.cuda.is_available():
        raise ValueError(f'device {device!r} asked for, but CUDA is not available')
    if resolved.type not in ('cpu', 'cuda'):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda[:N]', got {device!r}")
    return resolved


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of a precision name (None for fp32); reduced precision needs CUDA."""
    if precision not in PRECISIONS:
        raise ValueError(f'precision must be one of {sorted(PRECISIONS)}, got {precision!r}')
    if precision != 'fp32' and device.type != 'cuda':
        raise ValueError(f'precision {precision!r} needs a CUDA device (autocast runs on '
                         f'CUDA only); use fp32 on {device.type}')
    return PRECISIONS[precision]


def normalize_resize(image_u8: torch.Tensor, input_size: Sequence[int]) -> torch.Tensor:
    """B×H×W×3 uint8 → B×3×h×w float32 resized (bilinear) to input_size, ImageNet-normalised."""
    x = image_u8.permute(0, 3, 1, 2).float().div_(255.0)
    if tuple(x.shape[-2:]) != tuple(input_size):
        x = F.interpolate(x, size=tuple(input_size), mode='bilinear', align_corners=False)
    mean = torch.tensor(IMAGENET_MEAN, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std


def resize_maps(maps: torch.Tensor, image_size: Sequence[int]) -> torch.Tensor:
    """B×1×h×w maps → B×H×W float32 at the image resolution (bilinear)."""
    maps = maps.float()
    if tuple(maps.shape[-2:]) != tuple(image_size):
        maps = F.interpolate(maps, size=tuple(image_size), mode='bilinear', align_corners=False)
    return maps[:, 0]


def image_maps(depth: torch.Tensor, confidence: torch.Tensor | None,
               beyond: torch.Tensor | None, size: Sequence[int], scale: float | torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One image's 1×1×h×w maps → its H×W depth (scaled, +inf beyond range) and confidence."""
    image_depth = resize_maps(depth, size)[0] * scale
    if beyond is not None:
        probability = resize_maps(beyond, size)[0]
        far = (probability > BEYOND_THRESHOLD) | (
            (probability > BEYOND_THRESHOLD_FAR) & (image_depth >= BEYOND_FAR_DEPTH))
        image_depth = torch.where(far, torch.full_like(image_depth, float('inf')), image_depth)
    image_conf = None if confidence is None else resize_maps(confidence, size)[0].clamp(0.0, 1.0)
    return image_depth, image_conf


class BatchEstimator(DepthEstimator):
    """A DepthEstimator whose backend maps a normalised batch to depth and confidence maps.

    Preprocessing and resizing back run with torch on `tensor_device`; the backend implements
    `_maps` only.
    """

    tensor_device = torch.device('cpu')

    def _run(self, images: list[np.ndarray], scales: list[float], confidence: bool,
             points: PointsRequest | None) -> tuple[list[Prediction], None]:
        """Preprocess, run _maps, resize each map to its image and apply its focal factor."""
        with torch.inference_mode():
            # contiguous: the H×W×3 upload leaves the batch channels_last, which would carry
            # through the network (slower on the CPU, and other rounding than the model's own)
            batch = torch.cat([normalize_resize(
                torch.from_numpy(np.ascontiguousarray(image)).to(self.tensor_device)[None],
                self.input_size) for image in images]).contiguous()
            stages.mark('preprocess')
            depth, conf, beyond = self._maps(batch, confidence and self.has_confidence)
            stages.mark('network')
            predictions = []
            for i, (image, scale) in enumerate(zip(images, scales, strict=True)):
                image_depth, image_conf = image_maps(
                    depth[i:i + 1], None if conf is None else conf[i:i + 1],
                    None if beyond is None else beyond[i:i + 1], image.shape[:2], scale)
                predictions.append(Prediction(
                    image_depth.cpu().numpy(),
                    None if image_conf is None else image_conf.cpu().numpy()))
            stages.mark('post: resize')
        return predictions, None

    @abc.abstractmethod
    def _maps(self, batch: torch.Tensor, confidence: bool) -> Maps:
        """Depth, confidence (when asked and available) and beyond-range probability (when the
        model has the head) maps, B×1×h×w, of a batch."""
