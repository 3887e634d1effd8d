"""The DepthEstimator interface: metric depth (and confidence) for RGB images of any size.

Every backend (inference.backends) is a DepthEstimator: it says where it runs (`device`), the
network input size and the model config, and implements one method, `_run`. predict,
predict_batch and predict_points, with their checks and focal scaling, are written here once.

Focal scaling. A model is trained for one canonical camera: `canonical_focal` in its config is
the focal length in pixels, at the network input resolution, of that camera (KITTI cam 2 for the
shipped configs). An object of size S at depth Z spans f·S/Z pixels, so a network that sees an
image taken with focal f (at its input resolution) answers Z·f_c/f; the estimator undoes this:
    depth ← depth · f_input / canonical_focal,   f_input = fx · input_w / image_w
where fx is the camera's focal length in pixels at the given image's resolution (e.g. from
CameraInfo K[0]). A camera with twice the canonical focal, at the input width, doubles depth.
With fx=None no scaling is applied (the camera is assumed canonical).
"""

import abc
from collections.abc import Sequence
from dataclasses import dataclass
import math
from typing import Any

import numpy as np

from mono_depth_ros.core import stages
from mono_depth_ros.core.geometry import backproject, check_intrinsics, mask_depth

Intrinsics = tuple[float, float, float, float]
# What predict_points asks of _run: intrinsics (fx, fy, cx, cy), stride and depth range.
PointsRequest = tuple[Intrinsics, int, tuple[float, float] | None]


@dataclass
class Prediction:
    """Depth in metres (H×W float32) and confidence in [0, 1] (H×W float32, or None)."""

    depth: np.ndarray
    confidence: np.ndarray | None


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


def check_images(images: Sequence[np.ndarray]) -> None:
    """Raise ValueError (naming the image) unless each is H×W×3 uint8."""
    for i, image in enumerate(images):
        try:
            check_image(image)
        except ValueError as error:
            raise ValueError(f'image {i}: {error}') from error


def check_input_size(size: Sequence[int]) -> tuple[int, int]:
    """(H, W) as ints; ValueError unless two positive numbers."""
    if len(size) != 2 or min(int(v) for v in size) <= 0:
        raise ValueError(f'input_size must be (H, W) positive, got {size!r}')
    return int(size[0]), int(size[1])


def prediction_points(prediction: Prediction, intrinsics: Intrinsics, stride: int = 1,
                      depth_range: tuple[float, float] | None = None) -> np.ndarray:
    """geometry.backproject of the depth with NaN outside depth_range (inclusive; None: all)."""
    depth = prediction.depth if depth_range is None else mask_depth(prediction.depth,
                                                                    *depth_range)
    return backproject(depth, *intrinsics, stride=stride)


class DepthEstimator(abc.ABC):
    """Metric depth for RGB images: the one interface of every backend (see the module doc).

    A backend sets `device`, `input_size` (H, W), `canonical_focal`, `has_confidence`,
    `has_beyond` and `config` (the model config), and implements `_run`. Depth is in metres,
    +inf where a model with the beyond-range head sees no surface within its max_depth.
    """

    device: Any
    input_size: tuple[int, int]
    canonical_focal: float
    has_confidence: bool
    has_beyond: bool = False
    config: dict

    @property
    def name(self) -> str:
        """The model config's name (for logs and diagnostics)."""
        return str(self.config.get('name', 'model'))

    def predict(self, image_rgb: np.ndarray, fx: float | None = None,
                confidence: bool = True) -> Prediction:
        """Depth (metres) and confidence at the image's resolution for one RGB image.

        confidence=False returns confidence None (and lets a backend skip the bin head).
        """
        return self.predict_batch([image_rgb], [fx], confidence)[0]

    def predict_batch(self, images: Sequence[np.ndarray],
                      fxs: Sequence[float | None] | None = None,
                      confidence: bool = True) -> list[Prediction]:
        """Predict several images (any sizes, e.g. several cameras) in one network batch."""
        if not len(images):
            return []
        images = list(images)
        fxs = [None] * len(images) if fxs is None else list(fxs)
        if len(fxs) != len(images):
            raise ValueError(f'got {len(images)} images but {len(fxs)} focal lengths')
        return self._run(images, self._scales(images, fxs), bool(confidence), None)[0]

    def predict_points(self, image_rgb: np.ndarray, fx: float, fy: float, cx: float, cy: float,
                       stride: int = 1, depth_range: tuple[float, float] | None = None,
                       confidence: bool = True) -> tuple[Prediction, np.ndarray]:
        """Prediction and its organised cloud (ceil(H/s)×ceil(W/s)×3, NaN where invalid).

        The cloud equals geometry.backproject(depth, fx, fy, cx, cy, stride), where depth is
        the prediction with NaN outside depth_range (inclusive; None keeps every depth), with
        the calibrated intrinsics at the image resolution. A backend may compute it on its
        device (the fast backend on CUDA does).
        """
        check_intrinsics(fx, fy, cx, cy)
        request = ((fx, fy, cx, cy), stride, depth_range)
        predictions, points = self._run([image_rgb], self._scales([image_rgb], [fx]),
                                        bool(confidence), request)
        if points is None:
            points = prediction_points(predictions[0], *request)
            stages.mark('post: back-project')
        return predictions[0], points

    def _adopt_model(self, model: Any, input_size: Sequence[int] | None) -> None:
        """Take a model's config, focal, heads and input size (input_size when given)."""
        self.input_size = check_input_size(input_size if input_size is not None
                                           else model.config['input_size'])
        self.config = model.config
        self.canonical_focal = float(model.config['canonical_focal'])
        self.has_confidence = bool(model.has_confidence)
        self.has_beyond = bool(model.has_beyond)

    def warm_up(self, batch_sizes: Sequence[int] = (1,)) -> None:
        """Run the network once per batch size on a grey image of its input size, so that
        the first frames do not pay for allocation, autotuning or compilation."""
        image = np.full((*self.input_size, 3), 128, dtype=np.uint8)
        for size in sorted(set(batch_sizes)):
            self.predict_batch([image] * size, confidence=True)

    def _scales(self, images: list[np.ndarray], fxs: list[float | None]) -> list[float]:
        """Check the images; their focal-scaling factors (see the module docstring)."""
        check_images(images)
        return [focal_scale(fx, image.shape[1], self.input_size[1], self.canonical_focal)
                for image, fx in zip(images, fxs, strict=True)]

    @abc.abstractmethod
    def _run(self, images: list[np.ndarray], scales: list[float], confidence: bool,
             points: PointsRequest | None) -> tuple[list[Prediction], np.ndarray | None]:
        """Predictions of checked images (depth × its scale); the cloud of image 0, or None.

        A backend that returns None for the cloud leaves it to prediction_points.
        """
