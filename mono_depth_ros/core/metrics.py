"""Depth metrics of the KITTI protocol: one crop function, named depth limits, a dict of metrics.

`silog` is the scale-invariant log error as the KITTI depth benchmark and BTS report it:
100 · sqrt(mean(d²) − mean(d)²) with d = log(pred) − log(gt) (λ = 1, natural log, ×100).
"""

from collections.abc import Iterable, Mapping

import numpy as np

from mono_depth_ros.core.constants import EIGEN_CROP, GARG_CROP, MAX_DEPTH, MIN_DEPTH

METRIC_NAMES = ('abs_rel', 'sq_rel', 'rmse', 'rmse_log', 'log10', 'silog', 'a1', 'a2', 'a3')

CROPS = {'garg': GARG_CROP, 'eigen': EIGEN_CROP}


def crop_box(shape: tuple[int, int], crop: str) -> tuple[int, int, int, int]:
    """Return the crop as pixel bounds (top, bottom, left, right), bottom/right exclusive."""
    if crop not in CROPS:
        raise ValueError(f'unknown crop {crop!r}; valid crops are {sorted(CROPS)} or None')
    height, width = shape[:2]
    top, bottom, left, right = CROPS[crop]
    return int(top * height), int(bottom * height), int(left * width), int(right * width)


def crop_mask(shape: tuple[int, int], crop: str | None) -> np.ndarray:
    """Return an H×W bool mask that is True inside the named crop ('garg', 'eigen' or None)."""
    mask = np.zeros(shape[:2], dtype=bool)
    if crop is None:
        mask[:] = True
        return mask
    top, bottom, left, right = crop_box(shape, crop)
    mask[top:bottom, left:right] = True
    return mask


def evaluation_mask(gt: np.ndarray, crop: str | None = 'garg', min_depth: float = MIN_DEPTH,
                    max_depth: float = MAX_DEPTH) -> np.ndarray:
    """Return the pixels that are scored: min_depth < gt < max_depth inside the crop."""
    return (gt > min_depth) & (gt < max_depth) & crop_mask(gt.shape, crop)


def depth_errors(gt: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """Return the metrics of matched 1-D arrays of positive ground-truth and predicted depths."""
    gt = gt.astype(np.float64)
    pred = pred.astype(np.float64)
    thresh = np.maximum(gt / pred, pred / gt)
    log_diff = np.log(pred) - np.log(gt)
    silog_var = max(float(np.mean(log_diff ** 2) - np.mean(log_diff) ** 2), 0.0)
    return {
        'abs_rel': float(np.mean(np.abs(gt - pred) / gt)),
        'sq_rel': float(np.mean((gt - pred) ** 2 / gt)),
        'rmse': float(np.sqrt(np.mean((gt - pred) ** 2))),
        'rmse_log': float(np.sqrt(np.mean(log_diff ** 2))),
        'log10': float(np.mean(np.abs(np.log10(pred) - np.log10(gt)))),
        'silog': float(100.0 * np.sqrt(silog_var)),
        'a1': float(np.mean(thresh < 1.25)),
        'a2': float(np.mean(thresh < 1.25 ** 2)),
        'a3': float(np.mean(thresh < 1.25 ** 3)),
    }


def compute_depth_metrics(gt: np.ndarray, pred: np.ndarray, crop: str | None = 'garg',
                          min_depth: float = MIN_DEPTH, max_depth: float = MAX_DEPTH,
                          median_scaling: bool = False) -> dict[str, float]:
    """Score one predicted depth map against its ground truth (0 = no depth) on the KITTI protocol.

    Scored pixels: min_depth < gt < max_depth inside the crop. With median_scaling the
    prediction is multiplied by median(gt) / median(pred) over those pixels. Predictions are
    then clamped to [min_depth, max_depth].
    """
    return depth_errors(*scored_pixels(gt, pred, crop, min_depth, max_depth, median_scaling)[1:])


def scored_pixels(gt: np.ndarray, pred: np.ndarray, crop: str | None = 'garg',
                  min_depth: float = MIN_DEPTH, max_depth: float = MAX_DEPTH,
                  median_scaling: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (mask, gt values, clamped prediction values) of the pixels the metrics score."""
    gt = np.asarray(gt)
    pred = np.asarray(pred)
    if gt.ndim != 2 or gt.shape != pred.shape:
        raise ValueError(f'gt and pred must be H×W arrays of one shape, got {gt.shape} '
                         f'and {pred.shape} (resize the prediction to the ground truth first)')
    mask = evaluation_mask(gt, crop, min_depth, max_depth)
    if not mask.any():
        raise ValueError(f'no ground-truth pixel in ({min_depth}, {max_depth}) m inside crop '
                         f'{crop!r}: nothing to score')
    gt_valid = gt[mask].astype(np.float64)
    pred_valid = np.nan_to_num(pred[mask].astype(np.float64), nan=min_depth)
    if median_scaling:
        pred_valid = pred_valid * (np.median(gt_valid) / max(np.median(pred_valid), min_depth))
    return mask, gt_valid, np.clip(pred_valid, min_depth, max_depth)


def average_metrics(metrics: Iterable[Mapping[str, float]]) -> dict[str, float]:
    """Average per-image metric dicts key by key (the protocol averages per image)."""
    metrics = list(metrics)
    if not metrics:
        raise ValueError('no metrics to average')
    return {name: float(np.mean([m[name] for m in metrics])) for name in METRIC_NAMES}
