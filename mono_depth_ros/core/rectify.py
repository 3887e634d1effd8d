"""Rectification of raw (distorted) camera images, as image_proc does it (no rclpy).

A camera calibration (sensor_msgs/CameraInfo's K, D, R, P and distortion model, as arrays)
gives cv2 remap tables once; every frame of that calibration is then one cv2.remap into the
rectified camera, whose intrinsics are P's (fx, fy, cx, cy). Pixels of the rectified image that
no raw pixel reaches are reported as invalid, so depth there is published as NaN.
"""

from collections import OrderedDict
from dataclasses import dataclass

import cv2
import numpy as np

RECTIFY_MODES = ('auto', 'off')
# sensor_msgs/distortion_models names that cv2 can undo, with the coefficient counts it takes.
DISTORTION_MODELS = {'plumb_bob': (4, 5, 8, 12, 14), 'rational_polynomial': (4, 5, 8, 12, 14),
                     'equidistant': (4,)}
CACHE_SIZE = 8   # calibrations whose remap tables are kept (one per camera is enough)


@dataclass(frozen=True)
class Calibration:
    """One camera calibration: image size (H, W), K 3×3, D, R 3×3, P 3×4 and the model name."""

    size: tuple[int, int]
    k: tuple[float, ...]
    d: tuple[float, ...]
    r: tuple[float, ...]
    p: tuple[float, ...]
    model: str

    @classmethod
    def from_arrays(cls, size: tuple[int, int], k, d, r, p, model: str) -> 'Calibration':
        """A hashable calibration from CameraInfo-like sequences (K 9, D n, R 9, P 12)."""
        return cls((int(size[0]), int(size[1])), tuple(float(v) for v in np.ravel(k)),
                   tuple(float(v) for v in np.ravel(d)), tuple(float(v) for v in np.ravel(r)),
                   tuple(float(v) for v in np.ravel(p)), str(model))

    def is_distorted(self) -> bool:
        """True when any distortion coefficient is non-zero (the image needs rectifying)."""
        return any(v != 0.0 for v in self.d)

    def rectified_matrix(self) -> np.ndarray:
        """3×3 camera matrix of the rectified image: P's left block, or K when P is unset."""
        p = np.asarray(self.p, dtype=np.float64).reshape(3, 4)
        return p[:, :3].copy() if np.any(p) else np.asarray(self.k).reshape(3, 3).copy()

    def rectified_intrinsics(self) -> tuple[float, float, float, float]:
        """(fx, fy, cx, cy) of the rectified image."""
        m = self.rectified_matrix()
        return float(m[0, 0]), float(m[1, 1]), float(m[0, 2]), float(m[1, 2])

    def check(self) -> None:
        """Raise ValueError naming the problem unless cv2 can rectify with this calibration."""
        if self.model not in DISTORTION_MODELS:
            raise ValueError(f'distortion model {self.model!r} cannot be rectified; supported: '
                             f'{sorted(DISTORTION_MODELS)}')
        counts = DISTORTION_MODELS[self.model]
        if len(self.d) not in counts:
            raise ValueError(f'{self.model} takes {" or ".join(map(str, counts))} distortion '
                             f'coefficients, got {len(self.d)}')
        if len(self.k) != 9 or len(self.r) != 9 or len(self.p) != 12:
            raise ValueError('calibration needs K (9), R (9) and P (12) values')
        m = self.rectified_matrix()
        if not np.all(np.isfinite(m)) or m[0, 0] <= 0 or m[1, 1] <= 0:
            raise ValueError(f'rectified camera matrix is not a camera: {m.tolist()}')
        if min(self.size) <= 0:
            raise ValueError(f'calibration image size must be positive, got {self.size}')


def rectify_maps(calib: Calibration) -> tuple[np.ndarray, np.ndarray]:
    """cv2 remap tables (map_x, map_y float32, H×W) from the rectified image to the raw one."""
    calib.check()
    k = np.asarray(calib.k, dtype=np.float64).reshape(3, 3)
    r = np.asarray(calib.r, dtype=np.float64).reshape(3, 3)
    if not np.any(r):
        r = np.eye(3)
    new = calib.rectified_matrix()
    h, w = calib.size
    if calib.model == 'equidistant':
        d = np.asarray(calib.d, dtype=np.float64)
        return cv2.fisheye.initUndistortRectifyMap(k, d, r, new, (w, h), cv2.CV_32FC1)
    d = np.asarray(calib.d, dtype=np.float64)
    return cv2.initUndistortRectifyMap(k, d, r, new, (w, h), cv2.CV_32FC1)


class Rectifier:
    """Rectifies images; remap tables and the valid-pixel mask are cached per calibration."""

    def __init__(self, cache_size: int = CACHE_SIZE) -> None:
        self.cache_size = cache_size
        self._cache: OrderedDict[Calibration, tuple[np.ndarray, np.ndarray, np.ndarray]] = \
            OrderedDict()
        self.computed = 0   # remap tables built so far (one per calibration seen)

    def _tables(self, calib: Calibration) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(map_x, map_y, valid) for a calibration, built on first use."""
        if calib in self._cache:
            self._cache.move_to_end(calib)
            return self._cache[calib]
        map_x, map_y = rectify_maps(calib)
        h, w = calib.size
        # bilinear samples that touch no pixel outside the raw image (float32 maps: 1e-3 slack)
        low, eps = -1e-3, 1e-3
        valid = (map_x >= low) & (map_x <= w - 1 + eps) & (map_y >= low) & (map_y <= h - 1 + eps)
        self._cache[calib] = (map_x, map_y, valid)
        self.computed += 1
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return map_x, map_y, valid

    def rectify(self, image: np.ndarray, calib: Calibration) -> tuple[np.ndarray, np.ndarray]:
        """(rectified image, H×W bool mask of pixels that see the raw image) for one frame."""
        if image.shape[:2] != calib.size:
            raise ValueError(f'image size {image.shape[1]}x{image.shape[0]} disagrees with the '
                             f'calibration size {calib.size[1]}x{calib.size[0]}')
        map_x, map_y, valid = self._tables(calib)
        out = cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        return out, valid
