"""Geometric and photometric augmentation that keeps an image, its sparse depth and K aligned.

Coordinates follow the pixel-centre convention (pixel (x, y) covers [x − 0.5, x + 0.5]).
All geometry is one affine warp: the image is resampled bilinearly, the depth with
nearest-neighbour and a zero border, so a depth value is always a copy of one input pixel
(scaled by the augmentation's 1/s) and 0 (no depth) never blends with valid depth.
"""

from dataclasses import dataclass

import cv2
import numpy as np

from mono_depth_ros.core.constants import IMAGENET_MEAN, IMAGENET_STD, KITTI_BENCHMARK_CROP

SCALE_RANGE = (1.0, 1.5)        # Eigen et al.: image magnified by s, depth divided by s
ROTATION_DEGREES = 5.0          # rotation in [-5°, 5°] about the principal point
COLOR_RANGE = (0.6, 1.4)        # brightness, contrast and saturation factors
FLIP_PROBABILITY = 0.5
# none; the paper's; the paper's + style randomisation; the same without the scale step (the
# camera keeps its height above the road and its horizon: a metric cue that carries over)
AUGMENTATIONS = (False, True, 'style', 'style_no_scale')


@dataclass
class Geometry:
    """An affine map from input to output pixels, with what it does to depth and focal length."""

    matrix: np.ndarray                       # 3×3, input pixel -> output pixel
    out_size: tuple[int, int]                # (H, W) of the output
    depth_factor: float = 1.0                # output depth = input depth · depth_factor
    focal_scale: tuple[float, float] = (1.0, 1.0)

    def then(self, matrix: np.ndarray, out_size: tuple[int, int] | None = None,
             depth_factor: float = 1.0, focal_scale: tuple[float, float] = (1.0, 1.0)
             ) -> 'Geometry':
        """Return this geometry followed by another affine step."""
        return Geometry(matrix @ self.matrix, out_size or self.out_size,
                        self.depth_factor * depth_factor,
                        (self.focal_scale[0] * focal_scale[0],
                         self.focal_scale[1] * focal_scale[1]))


def translation(dx: float, dy: float) -> np.ndarray:
    """3×3 matrix moving pixels by (dx, dy)."""
    return np.array([[1.0, 0, dx], [0, 1.0, dy], [0, 0, 1.0]])


def scaling(sx: float, sy: float) -> np.ndarray:
    """3×3 matrix resizing an image by (sx, sy) under the pixel-centre convention."""
    return np.array([[sx, 0, 0.5 * (sx - 1)], [0, sy, 0.5 * (sy - 1)], [0, 0, 1.0]])


def rotation(degrees: float, cx: float, cy: float) -> np.ndarray:
    """3×3 matrix rotating pixels about (cx, cy) by degrees (counter-clockwise on screen)."""
    return np.vstack([cv2.getRotationMatrix2D((cx, cy), degrees, 1.0), [0, 0, 1.0]])


def horizontal_flip(width: float) -> np.ndarray:
    """3×3 matrix mirroring pixels of an image of the given width."""
    return np.array([[-1.0, 0, width - 1], [0, 1.0, 0], [0, 0, 1.0]])


def benchmark_crop_offset(size: tuple[int, int]) -> tuple[int, int]:
    """Return (top, left) of the KITTI benchmark crop: bottom-centre 352×1216."""
    height, width = size
    crop_h, crop_w = KITTI_BENCHMARK_CROP
    if height < crop_h or width < crop_w:
        raise ValueError(f'image of {height}×{width} is smaller than the KITTI benchmark crop '
                         f'{crop_h}×{crop_w}')
    return height - crop_h, (width - crop_w) // 2


def random_offset(size: tuple[int, int], crop: tuple[int, int],
                  rng: np.random.Generator) -> tuple[int, int]:
    """Return a random (top, left) of a crop window inside an image of the given size."""
    if size[0] < crop[0] or size[1] < crop[1]:
        raise ValueError(f'cannot crop {crop[0]}×{crop[1]} from an image of {size[0]}×{size[1]}')
    return int(rng.integers(0, size[0] - crop[0] + 1)), int(rng.integers(0, size[1] - crop[1] + 1))


def random_geometry(size: tuple[int, int], principal_point: tuple[float, float],
                    out_size: tuple[int, int], rng: np.random.Generator,
                    scale_range: tuple[float, float] = SCALE_RANGE) -> Geometry:
    """Paper augmentation: rotate ±5° about the principal point, magnify by s, flip, crop.

    The crop window is random inside the magnified image. Depth is divided by s and the focal
    length kept (the same camera seeing the scene s times closer, from s times lower).
    """
    degrees = float(rng.uniform(-ROTATION_DEGREES, ROTATION_DEGREES))
    scale = float(rng.uniform(*scale_range))
    flip = bool(rng.random() < FLIP_PROBABILITY)
    matrix = scaling(scale, scale) @ rotation(degrees, *principal_point)
    scaled = (int(size[0] * scale), int(size[1] * scale))
    if flip:
        matrix = horizontal_flip(scaled[1]) @ matrix
    top, left = random_offset(scaled, out_size, rng)
    return Geometry(translation(-left, -top) @ matrix, out_size, 1.0 / scale)


def warp(image: np.ndarray, depth: np.ndarray, intrinsics: np.ndarray,
         geometry: Geometry) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Apply a geometry to an H×W×3 image, its H×W depth (0 = none) and 3×3 intrinsics."""
    height, width = geometry.out_size
    affine = geometry.matrix[:2]
    if np.allclose(affine[:, :2], np.eye(2)) and np.allclose(affine[:, 2], np.round(affine[:, 2])):
        image, depth = integer_crop(image, depth, -int(round(affine[1, 2])),
                                    -int(round(affine[0, 2])), geometry.out_size)
    else:
        image = cv2.warpAffine(image, affine, (width, height), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        depth = cv2.warpAffine(depth, affine, (width, height), flags=cv2.INTER_NEAREST,
                               borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    depth = depth * np.float32(geometry.depth_factor)
    k = intrinsics.astype(np.float64).copy()
    k[0, 0] *= geometry.focal_scale[0]
    k[1, 1] *= geometry.focal_scale[1]
    k[:2, 2] = (geometry.matrix @ [intrinsics[0, 2], intrinsics[1, 2], 1.0])[:2]
    return image, depth, k


def integer_crop(image: np.ndarray, depth: np.ndarray, top: int, left: int,
                 size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Crop image and depth to size at (top, left), exactly, when the window lies inside."""
    if top < 0 or left < 0 or top + size[0] > image.shape[0] or left + size[1] > image.shape[1]:
        raise ValueError(f'crop {size[0]}×{size[1]} at ({top}, {left}) leaves the '
                         f'{image.shape[0]}×{image.shape[1]} image')
    rows, cols = slice(top, top + size[0]), slice(left, left + size[1])
    return image[rows, cols].copy(), depth[rows, cols].copy()


def color_jitter(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Scale brightness, contrast and saturation of an H×W×3 float [0, 1] RGB image."""
    brightness, contrast, saturation = rng.uniform(*COLOR_RANGE, size=3)
    image = np.clip(image * brightness, 0, 1)
    gray = image @ np.array([0.299, 0.587, 0.114], dtype=image.dtype)
    image = np.clip((image - gray.mean()) * contrast + gray.mean(), 0, 1)
    gray = (image @ np.array([0.299, 0.587, 0.114], dtype=image.dtype))[..., None]
    return np.clip((image - gray) * saturation + gray, 0, 1).astype(np.float32)


def style_jitter(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Randomise the look of an H×W×3 float [0, 1] RGB image so that only its geometry is
    reliable: gamma, white balance, hue rotation, grey, exposure clipping, a soft shadow band,
    vignetting, blur, sensor noise, JPEG and cut-outs (each with its own probability)."""
    height, width = image.shape[:2]
    image = np.clip(image, 0, 1) ** np.float32(rng.uniform(0.6, 1.6))
    image = image * rng.uniform(0.75, 1.25, size=3).astype(np.float32)
    if rng.random() < 0.3:                                  # hue rotation about the grey axis
        angle = rng.uniform(-np.pi, np.pi)
        axis = np.full(3, 1 / np.sqrt(3))
        cross = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]],
                          [-axis[1], axis[0], 0]])
        turn = np.cos(angle) * np.eye(3) + np.sin(angle) * cross + (
            1 - np.cos(angle)) * np.outer(axis, axis)
        image = image @ turn.T.astype(np.float32)
    if rng.random() < 0.15:
        image = np.repeat(image @ np.array([0.299, 0.587, 0.114], np.float32), 3).reshape(
            height, width, 3)
    image = image * np.float32(rng.uniform(0.8, 1.6) if rng.random() < 0.4 else 1.0)
    if rng.random() < 0.3:                                  # a soft shadow across the image
        u, v = np.meshgrid(np.linspace(-1, 1, width), np.linspace(-1, 1, height))
        angle = rng.uniform(0, np.pi)
        side = np.cos(angle) * u + np.sin(angle) * v - rng.uniform(-0.6, 0.6)
        edge = 1 / (1 + np.exp(-side / rng.uniform(0.02, 0.2)))
        image = image * (1 - rng.uniform(0.3, 0.7) * edge)[..., None].astype(np.float32)
    if rng.random() < 0.4:                                  # vignetting
        u, v = np.meshgrid(np.linspace(-1, 1, width), np.linspace(-1, 1, height))
        image = image * (1 - rng.uniform(0.1, 0.4) * (u * u + v * v) / 2)[..., None].astype(
            np.float32)
    image = np.clip(image, 0, 1).astype(np.float32)
    if rng.random() < 0.3:
        image = cv2.GaussianBlur(image, (0, 0), rng.uniform(0.3, 1.2))
    if rng.random() < 0.5:
        image = image + rng.normal(0, rng.uniform(0.005, 0.04), image.shape).astype(np.float32)
    image = np.clip(image, 0, 1)
    if rng.random() < 0.3:
        ok, code = cv2.imencode('.jpg', (image * 255 + 0.5).astype(np.uint8),
                                [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(20, 90))])
        image = cv2.imdecode(code, cv2.IMREAD_UNCHANGED).astype(np.float32) / 255.0
    for _ in range(int(rng.integers(0, 3)) if rng.random() < 0.3 else 0):  # cut-outs
        h, w = int(rng.integers(height // 10, height // 3)), int(rng.integers(width // 20,
                                                                                width // 6))
        top, left = int(rng.integers(0, height - h)), int(rng.integers(0, width - w))
        image[top:top + h, left:left + w] = rng.random(3).astype(np.float32)
    return image.astype(np.float32)


def normalize(image: np.ndarray) -> np.ndarray:
    """ImageNet-normalise an H×W×3 float [0, 1] RGB image and return it as 3×H×W float32."""
    mean = np.array(IMAGENET_MEAN, dtype=np.float32)
    std = np.array(IMAGENET_STD, dtype=np.float32)
    return ((image - mean) / std).transpose(2, 0, 1).astype(np.float32)
