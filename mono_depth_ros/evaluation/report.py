"""Reports of mono-depth-eval: the metrics table, CSV, error-by-distance plot and montage."""

import csv
import os

import cv2
import numpy as np

from mono_depth_ros.core.geometry import colorize_depth
from mono_depth_ros.core.metrics import METRIC_NAMES

ERROR_SCALE = 0.5      # abs rel error shown from 0 (dark) to this value (bright) in the montage
DISPLAY_MIN_DEPTH = 2.0  # nearest depth of the montage's fixed colour scale (metres)
BIN_WIDTH = 10.0       # metres per distance bin of the error-by-distance plot


def format_table(metrics: dict[str, float]) -> str:
    """The standard one-row metrics table (monodepth2 order plus log10 and silog)."""
    header = ''.join(f'{name:>10}' for name in METRIC_NAMES)
    values = ''.join(f'{metrics[name]:>10.3f}' for name in METRIC_NAMES)
    return f'{header}\n{values}'


def write_csv(path: str, rows: list[dict]) -> None:
    """Write per-frame rows (index, frame, valid_pixels and the metrics) as CSV."""
    fields = ['index', 'frame', 'valid_pixels', *METRIC_NAMES]
    with open(path, 'w', newline='', encoding='utf-8') as stream:
        writer = csv.DictWriter(stream, fieldnames=fields)
        writer.writeheader()
        for row in rows:
            writer.writerow({key: row[key] for key in fields})


class DistanceBins:
    """Pixel errors pooled over all frames, per ground-truth distance bin."""

    def __init__(self, max_depth: float, width: float = BIN_WIDTH) -> None:
        self.edges = np.append(np.arange(0.0, max_depth, width), max_depth)
        bins = len(self.edges) - 1
        self.count = np.zeros(bins)
        self.abs_rel = np.zeros(bins)
        self.squared = np.zeros(bins)

    def add(self, gt: np.ndarray, pred: np.ndarray) -> None:
        """Add matched 1-D arrays of scored ground truth and clamped predictions."""
        index = np.clip(np.digitize(gt, self.edges) - 1, 0, len(self.count) - 1)
        self.count += np.bincount(index, minlength=len(self.count))
        self.abs_rel += np.bincount(index, np.abs(gt - pred) / gt, len(self.count))
        self.squared += np.bincount(index, (gt - pred) ** 2, len(self.count))

    def table(self) -> list[dict]:
        """Per-bin rows: range, pixel count, abs_rel and rmse (NaN for empty bins)."""
        with np.errstate(invalid='ignore', divide='ignore'):
            abs_rel = self.abs_rel / self.count
            rmse = np.sqrt(self.squared / self.count)
        return [{'from_m': float(lo), 'to_m': float(hi), 'pixels': int(n),
                 'abs_rel': float(a), 'rmse': float(r)}
                for lo, hi, n, a, r in zip(self.edges[:-1], self.edges[1:], self.count, abs_rel,
                                           rmse, strict=True)]

    def plot(self, path: str, title: str) -> None:
        """Save abs rel and rmse per distance bin as a PNG (matplotlib, Agg)."""
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt

        rows = self.table()
        centres = [(r['from_m'] + r['to_m']) / 2 for r in rows]
        width = 0.8 * (rows[0]['to_m'] - rows[0]['from_m'])
        figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
        left.bar(centres, [r['abs_rel'] for r in rows], width=width, color='tab:blue')
        left.set(xlabel='ground-truth depth (m)', ylabel='abs rel', title='abs rel per bin')
        right.bar(centres, [r['rmse'] for r in rows], width=width, color='tab:orange')
        right.set(xlabel='ground-truth depth (m)', ylabel='rmse (m)', title='rmse per bin')
        for axis in (left, right):
            axis.set_xticks(self.edges)
            axis.grid(axis='y', alpha=0.3)
        figure.suptitle(f'{title} (pixels pooled over all frames)')
        figure.tight_layout()
        figure.savefig(path, dpi=100)
        plt.close(figure)


def sparse_view(values: np.ndarray, valid: np.ndarray, size: int = 3) -> tuple[np.ndarray,
                                                                               np.ndarray]:
    """Grow sparse points to size×size blocks for display (nearest point wins, no blending)."""
    kernel = np.ones((size, size), np.uint8)
    inverse = np.where(valid, 1.0 / np.maximum(values, 1e-6), 0).astype(np.float32)
    grown = cv2.dilate(inverse, kernel)
    mask = grown > 0
    return np.where(mask, 1.0 / np.maximum(grown, 1e-12), 0).astype(np.float32), mask


def error_colours(error: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """H×W×3 RGB uint8 view of abs rel error on a fixed 0..ERROR_SCALE scale (black = none)."""
    index = np.round(np.clip(error / ERROR_SCALE, 0, 1) * 255).astype(np.uint8)
    rgb = cv2.cvtColor(cv2.applyColorMap(index, cv2.COLORMAP_INFERNO), cv2.COLOR_BGR2RGB)
    rgb[~valid] = 0
    return rgb


def depth_colours(depth: np.ndarray, min_depth: float, max_depth: float) -> np.ndarray:
    """H×W×3 RGB uint8 view of depth on the project's fixed metric scale (black = none)."""
    return cv2.cvtColor(colorize_depth(depth, min_depth, max_depth), cv2.COLOR_BGR2RGB)


def montage_row(image: np.ndarray, gt: np.ndarray, pred: np.ndarray, scored: np.ndarray,
                min_depth: float, max_depth: float) -> list[np.ndarray]:
    """The four panels of one frame: image, prediction, ground truth over the (dimmed) image,
    abs rel error."""
    gt_view, gt_mask = sparse_view(gt, gt > 0)
    error = np.zeros_like(gt)
    error[scored] = np.abs(pred[scored] - gt[scored]) / gt[scored]
    kernel = np.ones((3, 3), np.uint8)
    error_view = cv2.dilate(error, kernel)
    error_mask = cv2.dilate(scored.astype(np.uint8), kernel) > 0
    near = max(min_depth, DISPLAY_MIN_DEPTH)
    truth = (image // 2).astype(np.uint8)
    truth[gt_mask] = depth_colours(gt_view, near, max_depth)[gt_mask]
    return [image, depth_colours(pred, near, max_depth), truth,
            error_colours(error_view, error_mask)]


def save_montage(path: str, rows: list[tuple[str, list[np.ndarray]]], min_depth: float,
                 max_depth: float) -> None:
    """Save frames × (image | prediction | truth over the image | error), fixed colour scales."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    height, width = rows[0][1][0].shape[:2]
    columns = ('image', 'prediction', 'ground truth over the image',
               f'abs rel error (0 .. {ERROR_SCALE})')
    figure, axes = plt.subplots(len(rows) + 1, 4, squeeze=False,
                                figsize=(16, len(rows) * (4 * height / width + 0.35) + 0.9),
                                gridspec_kw={'height_ratios': [1] * len(rows) + [0.12]})
    for row, (label, panels) in enumerate(rows):
        for column, panel in enumerate(panels):
            axis = axes[row, column]
            axis.imshow(panel, interpolation='nearest')
            axis.set_xticks([])
            axis.set_yticks([])
            if row == 0:
                axis.set_title(columns[column], fontsize=10)
        axes[row, 0].set_ylabel(label, fontsize=7)
    scale_bars(axes[-1], min_depth, max_depth)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def scale_bars(axes: np.ndarray, min_depth: float, max_depth: float) -> None:
    """Draw the metric depth colour scale and the error colour scale under the montage."""
    near = max(min_depth, DISPLAY_MIN_DEPTH)
    ticks = [t for t in (2, 3, 5, 10, 20) if near <= t <= max_depth]
    inverse = np.linspace(1.0 / max_depth, 1.0 / near, 512)  # the colour map is linear in 1/z
    axes[0].set_axis_off()
    axes[0].text(1.0, 0.5, 'colour = depth (fixed scale, linear in 1/depth)', ha='right',
                 va='center', fontsize=9, transform=axes[0].transAxes)
    for axis in axes[1:3]:
        axis.imshow(depth_colours(np.tile(1.0 / inverse, (8, 1)), near, max_depth),
                    aspect='auto')
        positions = np.interp([1.0 / t for t in ticks], inverse, np.arange(len(inverse)))
        axis.set_xticks(positions, [f'{t:g} m' for t in ticks], fontsize=8)
        axis.set_yticks([])
    errors = np.linspace(0, ERROR_SCALE, 256)
    axes[3].imshow(error_colours(np.tile(errors, (8, 1)), np.ones((8, 256), bool)),
                   aspect='auto')
    axes[3].set_xticks([0, 127.5, 255], ['0', f'{ERROR_SCALE / 2:g}', f'{ERROR_SCALE:g}'],
                       fontsize=8)
    axes[3].set_yticks([])


def ensure_dir(path: str) -> str:
    """Create an output folder (and parents) and return it."""
    os.makedirs(path, exist_ok=True)
    return path
