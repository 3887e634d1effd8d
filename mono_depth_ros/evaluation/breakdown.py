"""Where the error is on real lidar frames: per region, per distance band and scale vs structure.

Regions come from the lidar itself and the image colour, so that no labelling is needed:
each scored pixel's lidar point has a height above the road (the road level fitted per frame
from the returns ahead of the car), and its image pixel a greenness (excess green 2G − R − B).

- road:        height < ROAD_HEIGHT
- objects:     ROAD_HEIGHT … TALL_HEIGHT and not green (cars, people, walls, fences, poles)
- buildings:   above TALL_HEIGHT and not green (facades, tall poles, signs)
- vegetation:  above ROAD_HEIGHT and green (hedges, bushes, trees)
- skyline:     off the road and within SKYLINE_ROWS rows below the topmost return of its
               column (object tops against the sky, or the lidar's upper edge)
"""

import numpy as np

from mono_depth_ros.core.stats import percentile

REGIONS = ('road', 'objects', 'buildings', 'vegetation', 'skyline')
ROAD_HEIGHT = 0.25      # metres above the fitted road level
TALL_HEIGHT = 2.5
GREEN = 0.06            # excess green (2G − R − B) / 255 above which a pixel is vegetation
SKYLINE_ROWS = 6
ROAD_SEARCH = (4.0, 30.0, 4.0)  # road fit: returns 4–30 m ahead, within 4 m of the camera axis
UNKNOWN = -1


def road_level(points: np.ndarray) -> float:
    """The camera-frame y of the road ahead (metres, y down): the 90th percentile of the y of
    returns ahead within ROAD_SEARCH (most of them are the road in front of the car)."""
    near, far, side = ROAD_SEARCH
    ahead = points[(points[:, 2] > near) & (points[:, 2] < far) & (np.abs(points[:, 0]) < side)]
    if len(ahead) < 20:
        raise ValueError(f'only {len(ahead)} lidar returns {near:g}-{far:g} m ahead: cannot '
                         'find the road level')
    return percentile(ahead[:, 1], 90)


def region_map(points: np.ndarray, projection: np.ndarray, image: np.ndarray) -> np.ndarray:
    """H×W int8 region index (REGIONS; UNKNOWN where no return) of rectified-camera points
    (N×3, x right, y down, z forward) seen by a camera P (3×4) in an RGB image.

    Pixels follow the KITTI protocol (round(u) − 1, round(v) − 1, nearest return wins), so the
    map lines up with the lidar depth of datasets.kitti.ground_truth.
    """
    size = image.shape[:2]
    points = points[points[:, 2] > 0]
    height = road_level(points) - points[:, 1]
    projected = np.hstack([points, np.ones((len(points), 1))]) @ projection.T
    rows = np.round(projected[:, 1] / projected[:, 2]) - 1
    cols = np.round(projected[:, 0] / projected[:, 2]) - 1
    inside = (rows >= 0) & (cols >= 0) & (rows < size[0]) & (cols < size[1])
    rows, cols = rows[inside].astype(np.int64), cols[inside].astype(np.int64)
    height, depth = height[inside], projected[inside, 2]
    rgb = image.astype(np.float32) / 255
    green = (2 * rgb[..., 1] - rgb[..., 0] - rgb[..., 2])[rows, cols]
    cls = np.where(height < ROAD_HEIGHT, 0, np.where(height < TALL_HEIGHT, 1, 2))
    cls = np.where((cls > 0) & (green > GREEN), 3, cls)
    order = np.argsort(depth, kind='stable')            # nearest first: np.unique keeps it
    _, first = np.unique(rows[order] * size[1] + cols[order], return_index=True)
    keep = order[first]
    labels = np.full(size, UNKNOWN, np.int8)
    labels[rows[keep], cols[keep]] = cls[keep]
    seen = labels != UNKNOWN
    top = np.where(seen.any(axis=0), seen.argmax(axis=0), size[0])
    skyline = seen & (np.arange(size[0])[:, None] < top[None, :] + SKYLINE_ROWS)
    labels[skyline & (labels != 0)] = 4
    return labels


class RegionScores:
    """abs_rel, δ1 and bias (median log ratio pred / gt) per region, pixels pooled over frames;
    per frame the median scale gt / pred and the abs_rel after median scaling."""

    def __init__(self) -> None:
        self.pixels: dict[str, list[np.ndarray]] = {name: [] for name in REGIONS}
        self.frames: list[dict] = []

    def add(self, line: str, labels: np.ndarray, gt: np.ndarray, pred: np.ndarray) -> None:
        """Add one frame's scored labels, ground truth and clamped prediction (matched 1-D)."""
        for index, name in enumerate(REGIONS):
            pick = labels == index
            self.pixels[name].append(np.stack([gt[pick], pred[pick]]))
        scale = float(np.median(gt) / np.median(pred))
        self.frames.append({'frame': line, 'scale': scale,
                            'abs_rel': float(np.mean(np.abs(pred - gt) / gt)),
                            'abs_rel_median_scaled': float(np.mean(np.abs(pred * scale - gt)
                                                                   / gt))})

    def report(self) -> dict:
        """Per-region rows and per-frame scale rows."""
        regions = []
        for name in REGIONS:
            gt, pred = np.concatenate(self.pixels[name], axis=1) if self.pixels[name] else (
                np.zeros(0), np.zeros(0))
            if not len(gt):
                regions.append({'region': name, 'pixels': 0})
                continue
            ratio = np.maximum(pred / gt, gt / pred)
            regions.append({'region': name, 'pixels': int(len(gt)),
                            'abs_rel': float(np.mean(np.abs(pred - gt) / gt)),
                            'a1': float(np.mean(ratio < 1.25)),
                            'bias': float(np.exp(np.median(np.log(pred / gt))))})
        scales = [row['scale'] for row in self.frames]
        return {'regions': regions, 'frames': self.frames,
                'median_scale': float(np.median(scales)) if scales else None,
                'abs_rel_median_scaled': float(np.mean([r['abs_rel_median_scaled']
                                                        for r in self.frames]))
                if self.frames else None}
