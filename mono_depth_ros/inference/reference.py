"""DepthEstimator: metric depth (and confidence) for RGB images of any size and camera.

Reference path: each image is resized (bilinear) to the model's input_size, normalised with the
ImageNet mean and std, run under torch.inference_mode on the device of the model's parameters
(autocast to fp16/bf16 on CUDA when asked), and depth and confidence are resized (bilinear) back
to the image's resolution.

Focal scaling. A model is trained for one canonical camera: `canonical_focal` in its config is
the focal length in pixels, at the network input resolution, of that camera (KITTI cam 2 for the
shipped configs). An object of size S at depth Z spans f·S/Z pixels, so a network that sees an
image taken with focal f (at its input resolution) answers Z·f_c/f; the estimator undoes this:
    depth ← depth · f_input / canonical_focal,   f_input = fx · input_w / image_w
where fx is the camera's focal length in pixels at the given image's resolution (e.g. from
CameraInfo K[0]). A camera with twice the canonical focal, at the input width, doubles depth.
With fx=None no scaling is applied (the camera is assumed canonical).
"""

from dataclasses import dataclass
import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional

from mono_depth_ros.core.constants import IMAGENET_MEAN, IMAGENET_STD

PRECISIONS = {'fp32': None, 'fp16': torch.float16, 'bf16': torch.bfloat16}


@dataclass
class Prediction:
    """Depth in metres (H×W float32) and confidence in [0, 1] (H×W float32, or None)."""

    depth: np.ndarray
    confidence: np.ndarray | None


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


def focal_scale(fx: float | None, image_width: int, input_width: int,
                canonical_focal: float) -> float:
    """Depth factor (fx · input_w / image_w) / canonical_focal; 1 when fx is None."""
    if fx is None:
        return 1.0
    if not isinstance(fx, int | float) or not math.isfinite(fx) or fx <= 0:
        raise ValueError(f'fx must be a positive focal length in pixels or None, got {fx!r}')
    return float(fx) * input_width / image_width / canonical_focal


def check_image(image: np.ndarray) -> None:
    """Raise ValueError unless image is an H×W×3 uint8 array."""
    if not isinstance(image, np.ndarray):
        raise ValueError(f'image must be a numpy array, got {type(image).__name__}')
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3 or image.size == 0:
        raise ValueError(f'image must be H×W×3 uint8 RGB, got {image.dtype} {image.shape}')


class DepthEstimator:
    """Runs a depth model on RGB images; the node and tools use only this interface."""

    def __init__(self, model: nn.Module, device: str | torch.device = 'auto',
                 precision: str = 'fp32', input_size: tuple[int, int] | None = None) -> None:
        if precision not in PRECISIONS:
            raise ValueError(f'precision must be one of {sorted(PRECISIONS)}, got {precision!r}')
        self.device = resolve_device(device)
        if precision != 'fp32' and self.device.type != 'cuda':
            raise ValueError(f'precision {precision!r} needs a CUDA device (autocast runs on '
                             f'CUDA only); use fp32 on {self.device.type}')
        self.precision = precision
        self.model = model.to(self.device).eval()
        size = input_size if input_size is not None else model.config['input_size']
        if len(size) != 2 or min(int(v) for v in size) <= 0:
            raise ValueError(f'input_size must be (H, W) positive, got {size!r}')
        self.input_size = (int(size[0]), int(size[1]))
        self.canonical_focal = float(model.config['canonical_focal'])
        self.mean = torch.tensor(IMAGENET_MEAN, device=self.device).view(1, 3, 1, 1)
        self.std = torch.tensor(IMAGENET_STD, device=self.device).view(1, 3, 1, 1)

    def predict(self, image_rgb: np.ndarray, fx: float | None = None,
                confidence: bool = True) -> Prediction:
        """Depth (metres) and confidence at the image's resolution for one RGB image.

        confidence=False returns confidence None (the reference still runs the whole model).
        """
        return self.predict_batch([image_rgb], [fx], confidence)[0]

    def predict_batch(self, images: list[np.ndarray], fxs: list[float | None] | None = None,
                      confidence: bool = True) -> list[Prediction]:
        """Predict several images (any sizes, e.g. several cameras) in one forward pass."""
        if not images:
            return []
        fxs = [None] * len(images) if fxs is None else list(fxs)
        if len(fxs) != len(images):
            raise ValueError(f'got {len(images)} images but {len(fxs)} focal lengths')
        for image in images:
            check_image(image)
        scales = [focal_scale(fx, image.shape[1], self.input_size[1], self.canonical_focal)
                  for image, fx in zip(images, fxs, strict=True)]
        outputs = self.forward(self.preprocess(images))
        if not confidence:
            outputs.pop('confidence', None)
        return self.postprocess(outputs, [image.shape[:2] for image in images], scales)

    def predict_points(self, image_rgb: np.ndarray, fx: float, fy: float, cx: float, cy: float,
                       stride: int = 1, depth_range: tuple[float, float] | None = None,
                       confidence: bool = True) -> tuple[Prediction, np.ndarray]:
        """Prediction and its organised cloud (see prediction_points), on the CPU."""
        prediction = self.predict(image_rgb, fx, confidence)
        return prediction, prediction_points(prediction, (fx, fy, cx, cy), stride, depth_range)

    def preprocess(self, images: list[np.ndarray]) -> torch.Tensor:
        """Resize each image to input_size and normalise: B×3×h×w float32 on the device."""
        batch = []
        for image in images:
            x = torch.from_numpy(np.ascontiguousarray(image)).to(self.device)
            x = x.permute(2, 0, 1).unsqueeze(0).float().div_(255.0)
            if tuple(x.shape[-2:]) != self.input_size:
                x = functional.interpolate(x, size=self.input_size, mode='bilinear',
                                           align_corners=False)
            batch.append(x)
        return (torch.cat(batch) - self.mean) / self.std

    def forward(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        """Run the model without gradients, under autocast when a reduced precision is set."""
        dtype = PRECISIONS[self.precision]
        with torch.inference_mode(), torch.autocast(self.device.type, dtype=dtype,
                                                    enabled=dtype is not None):
            outputs = self.model(batch)
        return {key: value.float() for key, value in outputs.items()
                if key in ('depth', 'confidence')}

    def postprocess(self, outputs: dict[str, torch.Tensor], sizes: list[tuple[int, int]],
                    scales: list[float]) -> list[Prediction]:
        """Resize depth and confidence back to each image's size and apply focal scaling."""
        results = []
        for i, (size, scale) in enumerate(zip(sizes, scales, strict=True)):
            depth = self.resize(outputs['depth'][i:i + 1], size) * scale
            confidence = None
            if 'confidence' in outputs:
                confidence = self.resize(outputs['confidence'][i:i + 1], size).clamp(0.0, 1.0)
                confidence = confidence.cpu().numpy()
            results.append(Prediction(depth.cpu().numpy(), confidence))
        return results

    @staticmethod
    def resize(value: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """Bilinear resize of a 1×1×h×w map to size, returned as an H×W float32 tensor."""
        if tuple(value.shape[-2:]) != tuple(size):
            value = functional.interpolate(value, size=tuple(size), mode='bilinear',
                                           align_corners=False)
        return value[0, 0].float()


def prediction_points(prediction: Prediction, intrinsics: tuple[float, float, float, float],
                      stride: int = 1,
                      depth_range: tuple[float, float] | None = None) -> np.ndarray:
    """geometry.backproject of the depth with NaN outside depth_range (inclusive; None: all)."""
    from mono_depth_ros.core.geometry import backproject
    from mono_depth_ros.inference.outputs import mask_depth

    depth = prediction.depth if depth_range is None else mask_depth(prediction.depth,
                                                                    *depth_range)
    return backproject(depth, *intrinsics, stride=stride)


BACKENDS = ('torch', 'fast', 'onnx')


def create_estimator(source, backend: str = 'torch', device: str | torch.device = 'auto',
                     precision: str = 'fp32', input_size: tuple[int, int] | None = None,
                     compile: bool = False):  # noqa: A002 - torch.compile's word
    """An estimator with DepthEstimator's interface for a backend (see README, Speed).

    'torch': this reference DepthEstimator; 'fast': fast_inference.FastDepthEstimator (GPU
    preprocessing, CUDA graphs, folded BatchNorm; source is a model as here; compile=True
    adds torch.compile); 'onnx': export.OnnxDepthEstimator on an exported file (source is its
    .onnx path; fp32 only).
    """
    if compile and backend != 'fast':
        raise ValueError(f'compile applies to the fast backend only, not {backend!r}')
    if backend == 'torch':
        return DepthEstimator(source, device, precision, input_size)
    if backend == 'fast':
        from mono_depth_ros.inference.fast import FastDepthEstimator
        return FastDepthEstimator(source, str(device), precision, input_size, compile=compile)
    if backend == 'onnx':
        from mono_depth_ros.inference.onnx import OnnxDepthEstimator
        if precision != 'fp32':
            raise ValueError(f'the onnx backend runs the exported fp32 graph; got {precision!r}')
        return OnnxDepthEstimator(source, device=str(device), input_size=input_size)
    raise ValueError(f'backend must be one of {BACKENDS}, got {backend!r}')
