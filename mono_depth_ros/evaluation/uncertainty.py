"""Does the confidence rank the errors? Sparsification curves, AUSE and a coverage table.

Sparsification (Ilg et al. 2018; Poggi et al. 2020): remove a growing fraction of a frame's
scored pixels, least confident first, and follow the mean abs_rel of the pixels left. The
oracle removes the largest errors first (the best any ranking can do); a random order leaves the
mean unchanged (the expected curve is flat). AUSE is the area between a curve and the oracle's
over fractions 0..1: the confidence is useful when its AUSE is well below the random order's.
Curves are per frame and averaged over frames.
"""

from collections.abc import Sequence

import numpy as np

# Fractions of the pixels removed: 0, 0.02, ..., 0.98.
FRACTIONS = np.round(np.arange(0.0, 1.0, 0.02), 2)
# Confidence thresholds of the coverage table (what min_confidence trades).
THRESHOLDS = (0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5)
# Shares of the pixels the keep table keeps: the min_confidence that keeps each (any model's
# confidence scale, however small its values).
KEEP_SHARES = (1.0, 0.9, 0.75, 0.5, 0.25, 0.1)
# Confidences are pooled in this many bins over [0, 1] for the keep table.
HISTOGRAM_BINS = 10000


def sparsification(errors: np.ndarray, removal_order: np.ndarray,
                   fractions: Sequence[float] = FRACTIONS) -> np.ndarray:
    """Mean error of the pixels left after removing each fraction, in removal_order.

    removal_order: indices of errors, first removed first. A fraction removes
    round(fraction · N) pixels; at least one pixel is always left.
    """
    errors = np.asarray(errors, dtype=np.float64)
    if errors.ndim != 1 or errors.size == 0:
        raise ValueError(f'need a non-empty 1-D array of errors, got shape {errors.shape}')
    left = errors[np.asarray(removal_order)][::-1]  # the last removed first
    means = np.cumsum(left) / np.arange(1, left.size + 1)  # mean of the last k kept
    kept = [max(1, errors.size - int(round(f * errors.size))) for f in fractions]
    return means[np.array(kept) - 1]


def ause(curve: np.ndarray, oracle: np.ndarray,
         fractions: Sequence[float] = FRACTIONS) -> float:
    """Area between a sparsification curve and the oracle's (trapezoids over the fractions)."""
    gap = np.asarray(curve, dtype=np.float64) - np.asarray(oracle, dtype=np.float64)
    return float(np.trapezoid(gap, np.asarray(fractions, dtype=np.float64)))


def frame_curves(errors: np.ndarray, confidence: np.ndarray,
                 fractions: Sequence[float] = FRACTIONS) -> dict[str, np.ndarray]:
    """One frame's curves: 'confidence' (least confident removed first), 'oracle' (largest
    error first) and 'random' (the expected curve of a random order: flat at the mean)."""
    errors = np.asarray(errors, dtype=np.float64).ravel()
    confidence = np.asarray(confidence, dtype=np.float64).ravel()
    if errors.shape != confidence.shape:
        raise ValueError(f'{errors.size} errors but {confidence.size} confidences')
    by_confidence = np.argsort(confidence, kind='stable')
    by_error = np.argsort(-errors, kind='stable')
    return {'confidence': sparsification(errors, by_confidence, fractions),
            'oracle': sparsification(errors, by_error, fractions),
            'random': np.full(len(fractions), errors.mean())}


class SparsificationScore:
    """Averages frames' sparsification curves and pools the confidence-threshold table."""

    def __init__(self, fractions: Sequence[float] = FRACTIONS,
                 thresholds: Sequence[float] = THRESHOLDS) -> None:
        self.fractions = np.asarray(fractions, dtype=np.float64)
        self.thresholds = tuple(thresholds)
        self.sums = {name: np.zeros(len(self.fractions)) for name in
                     ('confidence', 'oracle', 'random')}
        self.frames = 0
        self.counts = np.zeros(len(self.thresholds))
        self.error_sums = np.zeros(len(self.thresholds))
        self.total = 0
        self.histogram = np.zeros(HISTOGRAM_BINS)         # pixels per confidence bin
        self.histogram_errors = np.zeros(HISTOGRAM_BINS)  # their summed errors

    def add(self, errors: np.ndarray, confidence: np.ndarray) -> None:
        """Add one frame: per-pixel abs_rel errors of its scored pixels and their confidence."""
        errors = np.asarray(errors, dtype=np.float64).ravel()
        confidence = np.asarray(confidence, dtype=np.float64).ravel()
        if errors.size == 0:
            return
        for name, curve in frame_curves(errors, confidence, self.fractions).items():
            self.sums[name] += curve
        self.frames += 1
        for i, threshold in enumerate(self.thresholds):
            kept = confidence >= threshold
            self.counts[i] += kept.sum()
            self.error_sums[i] += errors[kept].sum()
        self.total += errors.size
        bins = np.clip((confidence * HISTOGRAM_BINS).astype(np.int64), 0, HISTOGRAM_BINS - 1)
        self.histogram += np.bincount(bins, minlength=HISTOGRAM_BINS)
        self.histogram_errors += np.bincount(bins, weights=errors, minlength=HISTOGRAM_BINS)

    def keep_table(self, shares: Sequence[float] = KEEP_SHARES) -> list[dict]:
        """Per share: the largest min_confidence (a bin edge) that keeps at least that share of
        the pixels, the share it keeps (coverage) and their abs_rel."""
        kept = np.cumsum(self.histogram[::-1])[::-1]  # pixels with confidence >= bin k's edge
        errors = np.cumsum(self.histogram_errors[::-1])[::-1]
        rows = []
        for share in shares:
            k = int(np.nonzero(kept >= share * self.total - 1e-9)[0].max())
            rows.append({'keep': share, 'min_confidence': k / HISTOGRAM_BINS,
                         'coverage': float(kept[k] / self.total),
                         'abs_rel': float(errors[k] / kept[k])})
        return rows

    def report(self) -> dict:
        """Averaged curves, AUSE of the confidence and of a random order, their ratio, and the
        tables: per threshold the share of pixels kept (coverage) and their abs_rel, and the
        same at the thresholds that keep KEEP_SHARES (keep_table)."""
        if not self.frames:
            raise ValueError('no frame with confidence was scored')
        curves = {name: total / self.frames for name, total in self.sums.items()}
        ause_conf = ause(curves['confidence'], curves['oracle'], self.fractions)
        ause_random = ause(curves['random'], curves['oracle'], self.fractions)
        table = [{'min_confidence': t, 'coverage': float(n / self.total),
                  'abs_rel': float(s / n) if n else float('nan')}
                 for t, n, s in zip(self.thresholds, self.counts, self.error_sums, strict=True)]
        return {'frames': self.frames, 'fractions': self.fractions.tolist(),
                'curves': {name: curve.tolist() for name, curve in curves.items()},
                'ause': ause_conf, 'ause_random': ause_random,
                'ause_ratio': ause_conf / ause_random if ause_random > 0 else float('nan'),
                'coverage_table': table, 'keep_table': self.keep_table()}

    def plot(self, path: str, title: str) -> None:
        """Write the averaged curves (abs_rel of the pixels left vs fraction removed) as PNG."""
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt

        report = self.report()
        fig, ax = plt.subplots(figsize=(6.4, 4.2))
        styles = {'oracle': ('oracle (largest error first)', 'k--'),
                  'confidence': (f'confidence (AUSE {report["ause"]:.4f})', 'C0-'),
                  'random': (f'random order (AUSE {report["ause_random"]:.4f})', 'C7:')}
        for name, (label, style) in styles.items():
            ax.plot(self.fractions, report['curves'][name], style, label=label)
        ax.set_xlabel('fraction of pixels removed')
        ax.set_ylabel('abs_rel of the pixels left')
        ax.set_title(title)
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        fig.savefig(path, dpi=120)
        plt.close(fig)
