"""Scores of what the node publishes, against a dense truth: coverage, beyond range, the cloud.

The published depth is finite metres, +inf where the model says no surface lies within range,
NaN where invalid (inference.outputs); the cloud is the organised grid of the kept points.
Counts are pooled over pixels of all frames.
"""

import numpy as np

from mono_depth_ros.core.geometry import decimate

# A sky pixel published nearer than this counts as "sky in front of the car".
NEAR_SKY_DEPTH = 60.0
# A cloud point whose depth is off by more than this share of the true depth is a flying pixel.
FLYING_ERROR = 0.25


class PublishedScore:
    """Pools beyond-range and cloud counts over frames; report() gives the shares."""

    def __init__(self, min_depth: float, max_depth: float) -> None:
        self.min_depth, self.max_depth = float(min_depth), float(max_depth)
        self.counts = dict.fromkeys(('within', 'within_finite', 'beyond', 'beyond_published',
                                     'sky', 'sky_near', 'points', 'flying'), 0)

    def add_depth(self, gt: np.ndarray, published: np.ndarray) -> None:
        """Count one frame's published depth against its truth (+inf: no surface)."""
        gt, published = np.asarray(gt), np.asarray(published)
        if gt.shape != published.shape:
            raise ValueError(f'gt {gt.shape} and published depth {published.shape} differ')
        within = (gt > self.min_depth) & (gt <= self.max_depth)
        beyond = gt > self.max_depth
        sky = np.isposinf(gt)
        with np.errstate(invalid='ignore'):
            near = np.isfinite(published) & (published < NEAR_SKY_DEPTH)
        self.counts['within'] += int(within.sum())
        self.counts['within_finite'] += int(np.isfinite(published[within]).sum())
        self.counts['beyond'] += int(beyond.sum())
        self.counts['beyond_published'] += int(np.isposinf(published[beyond]).sum())
        self.counts['sky'] += int(sky.sum())
        self.counts['sky_near'] += int(near[sky].sum())

    def add_cloud(self, gt: np.ndarray, points: np.ndarray, stride: int) -> None:
        """Count one frame's organised cloud (ceil(H/s)×ceil(W/s)×3) against its truth.

        Each kept point is scored at the pixel it came from; a point where the truth has no
        surface (+inf) is a flying pixel too. Pixels without truth (0, NaN) are not scored.
        """
        truth = decimate(np.asarray(gt, dtype=np.float64), stride)
        if points.shape != (*truth.shape, 3):
            raise ValueError(f'cloud {points.shape} is not the organised grid of a '
                             f'{np.asarray(gt).shape} truth at stride {stride}')
        kept = np.all(np.isfinite(points), axis=-1) & ((truth > 0) | np.isposinf(truth))
        z, truth = points[..., 2][kept].astype(np.float64), truth[kept]
        with np.errstate(invalid='ignore'):
            error = np.where(np.isposinf(truth), np.inf, np.abs(z - truth) / truth)
        self.counts['points'] += int(kept.sum())
        self.counts['flying'] += int((error > FLYING_ERROR).sum())

    def report(self) -> dict:
        """Shares: coverage (surfaces within range published finite), beyond_recall (beyond
        range published +inf), sky_near (sky published finite and < NEAR_SKY_DEPTH),
        flying_rate (cloud points off by > FLYING_ERROR), with the counts behind them."""
        c = self.counts

        def share(part: str, whole: str) -> float | None:
            return c[part] / c[whole] if c[whole] else None

        return {'coverage': share('within_finite', 'within'),
                'beyond_recall': share('beyond_published', 'beyond'),
                'sky_near': share('sky_near', 'sky'),
                'flying_rate': share('flying', 'points'),
                'near_sky_depth': NEAR_SKY_DEPTH, 'flying_error': FLYING_ERROR,
                'counts': dict(c)}
