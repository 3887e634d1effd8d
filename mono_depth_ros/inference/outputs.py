"""What the node publishes, as arrays: depth with NaN, confidence, colour view and the cloud.

Shared by mono_depth_node and mono-depth-bag so live and offline outputs are identical. Pure
numpy on top of mono_depth_ros.core.geometry (no rclpy, no sensor_msgs).
"""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mono_depth_ros.core import stages
from mono_depth_ros.core.geometry import (
    backproject,
    colorize_depth,
    decimate,
    depth_edges,
    depth_jumps,
    edge_confidence,
    filter_points,
    mask_depth,
)

# The published confidence is the network's, lowered near depth edges (geometry.
# edge_confidence): a 9×9 window and scale 0.03 rank the validation errors best (AUSE ratio
# 0.46 -> 0.41 on the release model's validation drives; see models/msfusion_r18.md).
CONFIDENCE_EDGE_WINDOW = 9
CONFIDENCE_EDGE_SCALE = 0.03


@dataclass(frozen=True)
class OutputSettings:
    """The output parameters of the node (see ros.params) that shape the arrays."""

    min_depth: float = 0.1
    max_depth: float = 80.0
    cloud_stride: int = 1
    cloud_organized: bool = True
    max_range: float = 0.0
    min_confidence: float = 0.0
    edge_threshold: float = 0.0   # drop cloud points at depth jumps above this (0: keep all)
    colorized: bool = True
    points: bool = True

    @classmethod
    def from_params(cls, params: dict) -> 'OutputSettings':
        """Settings from a dict of node parameter values."""
        return cls(min_depth=params['min_depth'], max_depth=params['max_depth'],
                   cloud_stride=params['cloud_stride'],
                   cloud_organized=params['cloud_organized'], max_range=params['max_range'],
                   min_confidence=params['min_confidence'],
                   edge_threshold=params['cloud_edge_threshold'],
                   colorized=params['publish_colorized'], points=params['publish_points'])


@dataclass
class DepthOutputs:
    """Arrays of one frame; points/colors are h×w×3 (organised) or N×3, None when not wanted."""

    depth: np.ndarray
    confidence: np.ndarray | None
    colorized: np.ndarray | None
    points: np.ndarray | None
    colors: np.ndarray | None


def make_cloud(depth: np.ndarray, image_rgb: np.ndarray,
               intrinsics: tuple[float, float, float, float], settings: OutputSettings,
               confidence: np.ndarray | None = None, grid: np.ndarray | None = None,
               valid: np.ndarray | None = None, jumps: np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
    """Back-project depth with (fx, fy, cx, cy); filter by range, confidence and depth jumps
    (flying pixels: geometry.depth_edges at full resolution); add colours. jumps:
    depth_jumps(depth), when already made.

    grid: the back-projection already made (e.g. on the GPU by an estimator's predict_points),
    used instead of geometry.backproject; it must have the strided organised shape. valid: H×W
    bool, pixels that saw the camera (a rectified image's border does not); the rest is left out.
    confidence: H×W, or already at the cloud's pixels (decimated by the cloud stride).
    """
    stride = settings.cloud_stride
    shape = decimate(depth, stride).shape
    if grid is None:
        grid = backproject(depth, *intrinsics, stride=stride)
    elif grid.shape != (*shape, 3):
        raise ValueError(f'back-projected grid has shape {grid.shape}, expected '
                         f'{(*shape, 3)} for depth {depth.shape} at cloud stride {stride}')
    colors = np.ascontiguousarray(decimate(image_rgb, stride))
    use_confidence = confidence is not None and settings.min_confidence > 0
    if use_confidence and confidence.shape != shape:
        if confidence.shape != depth.shape:
            raise ValueError(f'confidence {confidence.shape} is neither the depth '
                             f'{depth.shape} nor the cloud grid {shape}')
        confidence = decimate(confidence, stride)
    points = filter_points(  # a float32 copy: the grid is never changed
        grid, max_range=settings.max_range if settings.max_range > 0 else None,
        confidence=confidence if use_confidence else None,
        min_confidence=settings.min_confidence if use_confidence else None)
    if settings.edge_threshold > 0:  # the edges at the cloud's pixels only (same values)
        jumps = depth_jumps(depth) if jumps is None else jumps  # of every pixel's neighbours
        points[depth_edges(decimate(depth, stride), settings.edge_threshold,
                           decimate(jumps, stride))] = np.nan
    if valid is not None:
        points[~decimate(valid, stride)] = np.nan
    if not settings.cloud_organized:
        keep = np.all(np.isfinite(points), axis=-1)
        points, colors = points[keep], colors[keep]
    return points, colors


def compute_outputs(depth: np.ndarray, confidence: np.ndarray | None, image_rgb: np.ndarray,
                    intrinsics: tuple[float, float, float, float], settings: OutputSettings,
                    grid: np.ndarray | None = None, valid: np.ndarray | None = None,
                    confidence_output: bool = True) -> DepthOutputs:
    """All output arrays of one frame from the network's depth (metres) and confidence
    (published lowered near depth edges: edge_confidence).

    grid: optional back-projection of the depth masked to [min_depth, max_depth] at
    settings.cloud_stride (an estimator's predict_points), so the cloud is not made twice.
    valid: optional H×W bool; depth is NaN (invalid) and confidence 0 where it is false.
    confidence_output: False when the confidence only filters the cloud (min_confidence) and
    is not published: it is then made at the cloud's pixels only (the same values there) and
    the outputs' confidence is None.
    """
    if depth.shape != image_rgb.shape[:2]:
        raise ValueError(f'depth {depth.shape} and image {image_rgb.shape[:2]} sizes differ')
    if valid is not None and valid.shape != depth.shape:
        raise ValueError(f'valid mask {valid.shape} and depth {depth.shape} sizes differ')
    depth = mask_depth(depth, settings.min_depth, settings.max_depth)
    if valid is not None:
        depth[~valid] = np.nan
    stages.mark('post: depth')
    jumps = None
    if confidence is not None or (settings.points and settings.edge_threshold > 0):
        jumps = depth_jumps(depth)
    cloud_confidence = None
    if confidence is not None:
        stride = 1 if confidence_output else settings.cloud_stride
        confidence = edge_confidence(jumps, np.clip(np.asarray(confidence, dtype=np.float32),
                                                    0.0, 1.0),
                                     CONFIDENCE_EDGE_WINDOW, CONFIDENCE_EDGE_SCALE, stride)
        if valid is not None:
            confidence[~decimate(valid, stride)] = 0.0
        cloud_confidence = confidence
        if not confidence_output:
            confidence = None
        stages.mark('post: confidence')
    colorized = None
    if settings.colorized:
        colorized = colorize_depth(depth, settings.min_depth, settings.max_depth)
        stages.mark('post: colorized')
    points = colors = None
    if settings.points:
        points, colors = make_cloud(depth, image_rgb, intrinsics, settings, cloud_confidence,
                                    grid, valid, jumps)
        stages.mark('post: points')
    return DepthOutputs(depth, confidence, colorized, points, colors)


def needs_confidence(confidence: bool, settings: OutputSettings) -> bool:
    """Whether a frame needs the network's confidence: wanted as an output, or filtering the
    cloud (min_confidence > 0)."""
    return confidence or (settings.points and settings.min_confidence > 0)


def estimate_outputs(estimator, image_rgb: np.ndarray,
                     intrinsics: tuple[float, float, float, float], settings: OutputSettings,
                     confidence: bool = True, valid: np.ndarray | None = None) -> DepthOutputs:
    """Run an estimator (any backend) on one frame and build its outputs.

    The cloud comes from the estimator's predict_points (back-projected on its device: the GPU
    for the fast backend) when settings.points is set. Confidence is computed only when it is
    wanted (confidence=True) or filters the cloud (min_confidence > 0). valid: see
    compute_outputs (a rectified image's border).
    """
    need_confidence = needs_confidence(confidence, settings)
    grid = None
    if settings.points:
        prediction, grid = estimator.predict_points(
            image_rgb, *intrinsics, stride=settings.cloud_stride,
            depth_range=(settings.min_depth, settings.max_depth), confidence=need_confidence)
    else:
        prediction = estimator.predict(image_rgb, fx=intrinsics[0], confidence=need_confidence)
    return compute_outputs(prediction.depth, prediction.confidence, image_rgb, intrinsics,
                           settings, grid, valid, confidence_output=confidence)


def estimate_batch_outputs(estimator, images: Sequence[np.ndarray],
                           intrinsics: Sequence[tuple[float, float, float, float]],
                           settings: Sequence[OutputSettings], confidence: Sequence[bool],
                           valid: Sequence[np.ndarray | None]) -> list[DepthOutputs]:
    """The outputs of several frames (e.g. one per camera) from one network batch.

    Each frame gets what estimate_outputs gives it alone: predict_batch prepares and scales
    every image as predict does, and compute_outputs back-projects each cloud (on the CPU,
    where predict_points may use the device). Confidence is computed for all frames when one
    of them needs it (see estimate_outputs).
    """
    need_confidence = any(needs_confidence(wanted, frame)
                          for wanted, frame in zip(confidence, settings, strict=True))
    predictions = estimator.predict_batch(images, [k[0] for k in intrinsics],
                                          confidence=need_confidence)
    return [compute_outputs(prediction.depth, prediction.confidence, image, k, frame,
                            valid=mask, confidence_output=wanted)
            for prediction, image, k, frame, mask, wanted in zip(
                predictions, images, intrinsics, settings, valid, confidence, strict=True)]
