"""Pinhole geometry for depth maps: back-projection, intrinsics scaling, filters, colours, PLY.

Conventions (pinned by test/test_geometry.py):
- Pixel (u, v) is column u, row v; its centre is at the integer coordinate (u, v), so the pixel
  covers [u - 0.5, u + 0.5]. The principal point (cx, cy) is in that same convention (as in
  OpenCV, ROS CameraInfo and KITTI's P matrices).
- A depth map holds the camera z (metres) per pixel; NaN, inf, 0 or negative means "no depth".
- Points are in the optical frame (REP 103: x right, y down, z forward), metres, float32.
- Image sizes are (height, width), as in mono_depth_ros.core.constants.
"""

from pathlib import Path

import cv2
import numpy as np


def check_intrinsics(fx: float, fy: float, cx: float, cy: float) -> None:
    """Raise ValueError unless fx, fy are positive and all four values are finite."""
    values = np.array([fx, fy, cx, cy], dtype=np.float64)
    if not np.all(np.isfinite(values)):
        raise ValueError(f'intrinsics must be finite, got fx={fx} fy={fy} cx={cx} cy={cy}')
    if fx <= 0 or fy <= 0:
        raise ValueError(f'focal lengths must be positive, got fx={fx} fy={fy}')


def check_stride(stride: int) -> int:
    """Return stride as an int, or raise ValueError unless it is a whole number >= 1."""
    if isinstance(stride, bool) or int(stride) != stride or stride < 1:
        raise ValueError(f'stride must be an integer >= 1, got {stride!r}')
    return int(stride)


def decimate(array: np.ndarray, stride: int = 1) -> np.ndarray:
    """Keep every stride-th row and column (pixels 0, stride, 2·stride, ...), as backproject."""
    stride = check_stride(stride)
    return array[::stride, ::stride]


def depth_jumps(depth: np.ndarray) -> np.ndarray:
    """Per pixel, the largest relative depth jump to a 4-neighbour (0 where there is none).

    The jump between neighbours z1, z2 is |z1 - z2| / min(z1, z2). A +inf neighbour (beyond
    range) is an infinite jump; NaN pixels and neighbours are ignored (jump 0).
    """
    depth = np.asarray(depth, dtype=np.float32)
    if depth.ndim != 2:
        raise ValueError(f'depth must be H×W, got shape {depth.shape}')
    jumps = np.zeros(depth.shape, dtype=np.float32)
    with np.errstate(invalid='ignore', divide='ignore'):
        for a, b in ((depth[:, :-1], depth[:, 1:]), (depth[:-1, :], depth[1:, :])):
            jump = np.subtract(a, b)
            np.abs(jump, out=jump)
            np.divide(jump, np.minimum(a, b), out=jump)
            # fmax skips NaN jumps (NaN pixels, inf next to inf); jumps starts at 0 and never
            # holds NaN, so a negative jump (depth <= 0) changes nothing either
            if a.shape[1] < depth.shape[1]:  # horizontal neighbours
                np.fmax(jumps[:, :-1], jump, out=jumps[:, :-1])
                np.fmax(jumps[:, 1:], jump, out=jumps[:, 1:])
            else:
                np.fmax(jumps[:-1, :], jump, out=jumps[:-1, :])
                np.fmax(jumps[1:, :], jump, out=jumps[1:, :])
    return jumps


def depth_edges(depth: np.ndarray, threshold: float,
                jumps: np.ndarray | None = None) -> np.ndarray:
    """True at finite pixels whose depth jumps by more than threshold (relative) to a
    4-neighbour (depth_jumps; pass jumps when already made).

    Both pixels of a discontinuity are marked, and so is every pixel interpolated between a
    near and a far surface (a flying pixel), while a smooth slanted surface (a road,
    1/(v - cy) per row) is not. A +inf neighbour (beyond range) is an infinite jump; NaN
    neighbours are ignored.
    """
    if not threshold > 0:
        raise ValueError(f'threshold must be > 0, got {threshold}')
    depth = np.asarray(depth, dtype=np.float32)
    jumps = depth_jumps(depth) if jumps is None else jumps
    return (jumps > threshold) & np.isfinite(depth)


def edge_confidence(jumps: np.ndarray, confidence: np.ndarray, window: int,
                    scale: float, stride: int = 1) -> np.ndarray:
    """Confidence lowered near depth edges: c / (1 + J / scale), J the largest depth_jumps
    value (at most 10) within a window × window square around the pixel.

    Depth at and beside a discontinuity (edges, flying pixels, thin objects) is where the
    network errs most; a network's own confidence does not see that it is interpolating.
    stride > 1 gives decimate(result, stride), computed at those pixels only (the window still
    looks at every pixel).
    """
    if np.shape(confidence) != np.shape(jumps):
        raise ValueError(f'confidence {np.shape(confidence)} and depth jumps '
                         f'{np.shape(jumps)} differ')
    if window < 1 or not scale > 0:
        raise ValueError(f'window must be >= 1 and scale > 0, got {window} and {scale}')
    capped = np.minimum(jumps, 10.0).astype(np.float32)
    if window > 1:
        capped = cv2.dilate(capped, np.ones((window, window), np.uint8))
    confidence = decimate(np.asarray(confidence, dtype=np.float32), stride)
    return (confidence / (1.0 + decimate(capped, stride) / scale)).astype(np.float32)


def valid_depth_mask(depth: np.ndarray) -> np.ndarray:
    """True where depth is a usable measurement: finite and > 0."""
    depth = np.asarray(depth)
    with np.errstate(invalid='ignore'):
        return np.isfinite(depth) & (depth > 0)


def mask_depth(depth: np.ndarray, min_depth: float, max_depth: float) -> np.ndarray:
    """float32 copy of depth with NaN outside [min_depth, max_depth]; +inf stays +inf.

    +inf means "no surface within range" (REP 117), as a model with the beyond-range head
    says; NaN (and -inf, 0, negative, out-of-range values) means invalid.
    """
    depth = np.array(depth, dtype=np.float32)
    with np.errstate(invalid='ignore'):
        keep = (np.isfinite(depth) & (depth >= min_depth) & (depth <= max_depth)) \
            | np.isposinf(depth)
    depth[~keep] = np.nan
    return depth


def backproject(depth: np.ndarray, fx: float, fy: float, cx: float, cy: float,
                stride: int = 1) -> np.ndarray:
    """Turn an H×W depth map into organised optical-frame points (NaN where depth is invalid).

    x = (u - cx)·z / fx, y = (v - cy)·z / fy, z = depth(v, u), with the calibrated principal
    point. With stride s the result is ceil(H/s)×ceil(W/s)×3 and holds the pixels
    (u, v) = (s·j, s·i), i.e. decimate(depth, s) back-projected at its original coordinates.
    """
    depth = np.asarray(depth)
    if depth.ndim != 2 or depth.size == 0:
        raise ValueError(f'depth must be a non-empty H×W array, got shape {depth.shape}')
    check_intrinsics(fx, fy, cx, cy)
    stride = check_stride(stride)
    z = decimate(depth, stride).astype(np.float32)
    z[~valid_depth_mask(z)] = np.nan
    u = np.arange(0, depth.shape[1], stride, dtype=np.float32)
    v = np.arange(0, depth.shape[0], stride, dtype=np.float32)
    x = (u[None, :] - np.float32(cx)) * z / np.float32(fx)
    y = (v[:, None] - np.float32(cy)) * z / np.float32(fy)
    return np.stack([x, y, z], axis=-1)


def scale_intrinsics(fx: float, fy: float, cx: float, cy: float,
                     from_size: tuple[int, int], to_size: tuple[int, int]
                     ) -> tuple[float, float, float, float]:
    """Intrinsics of the same camera after resizing its image from (H, W) to (H', W').

    Pixel centres sit at integer coordinates, so a resize by s maps x to (x + 0.5)·s - 0.5:
    fx' = fx·sx, cx' = (cx + 0.5)·sx - 0.5 (same for y), with sx = W'/W and sy = H'/H. This is
    exactly the mapping cv2.resize uses (INTER_LINEAR, INTER_AREA).
    """
    check_intrinsics(fx, fy, cx, cy)
    (h, w), (h2, w2) = from_size, to_size
    if min(h, w, h2, w2) <= 0:
        raise ValueError(f'image sizes must be positive, got {from_size} -> {to_size}')
    sx, sy = w2 / w, h2 / h
    return fx * sx, fy * sy, (cx + 0.5) * sx - 0.5, (cy + 0.5) * sy - 0.5


def filter_points(points: np.ndarray, max_range: float | None = None,
                  confidence: np.ndarray | None = None,
                  min_confidence: float | None = None) -> np.ndarray:
    """Copy of points with NaN where the range ‖p‖ > max_range or confidence < min_confidence.

    points is H×W×3 or N×3; confidence (when given) has the shape points.shape[:-1] (decimate a
    full-resolution map with the same stride first). A None limit disables that filter.
    """
    points = np.array(points, dtype=np.float32, copy=True)
    if points.ndim not in (2, 3) or points.shape[-1] != 3:
        raise ValueError(f'points must be N×3 or H×W×3, got shape {points.shape}')
    drop = np.zeros(points.shape[:-1], dtype=bool)
    if max_range is not None:
        if not max_range > 0:
            raise ValueError(f'max_range must be > 0, got {max_range}')
        with np.errstate(invalid='ignore'):  # ‖p‖ as np.linalg.norm sums it, in order
            squares = np.square(points)
            drop |= np.sqrt(squares[..., 0] + squares[..., 1] + squares[..., 2]) > max_range
    if min_confidence is not None:
        if confidence is None:
            raise ValueError('min_confidence is set but no confidence map was given')
        confidence = np.asarray(confidence)
        if confidence.shape != points.shape[:-1]:
            raise ValueError(f'confidence shape {confidence.shape} does not match points '
                             f'{points.shape[:-1]}')
        with np.errstate(invalid='ignore'):
            drop |= ~(confidence >= min_confidence)
    points[drop] = np.nan
    return points


def colorize_depth(depth: np.ndarray, min_depth: float, max_depth: float) -> np.ndarray:
    """H×W×3 BGR uint8 view of a depth map on a fixed metric scale (black = no depth).

    Inverse depth is mapped linearly from 1/max_depth (index 0, dark blue) to 1/min_depth
    (index 255, dark red) through OpenCV's TURBO colour map, so a given depth always gets the
    same colour whatever else is in the image; depths outside the range are clipped, and +inf
    (beyond range) gets the far end's colour.
    """
    depth = np.asarray(depth, dtype=np.float32)
    if depth.ndim != 2:
        raise ValueError(f'depth must be H×W, got shape {depth.shape}')
    if not 0 < min_depth < max_depth or not np.isfinite(max_depth):
        raise ValueError(f'need 0 < min_depth < max_depth, got {min_depth}, {max_depth}')
    valid = valid_depth_mask(depth) | np.isposinf(depth)
    inverse = np.zeros_like(depth)
    inverse[valid] = 1.0 / depth[valid]  # 0 for +inf: the far end
    lo, hi = 1.0 / max_depth, 1.0 / min_depth
    t = np.clip((inverse - lo) / (hi - lo), 0.0, 1.0)
    index = np.round(t * 255.0).astype(np.uint8)
    bgr = cv2.applyColorMap(index, cv2.COLORMAP_TURBO)
    bgr[~valid] = 0
    return bgr


_PLY_XYZ = [('x', '<f4'), ('y', '<f4'), ('z', '<f4')]
_PLY_RGB = [('red', 'u1'), ('green', 'u1'), ('blue', 'u1')]
_PLY_TYPES = {'float': '<f4', 'float32': '<f4', 'uchar': 'u1', 'uint8': 'u1'}


def write_ply(path: str | Path, points: np.ndarray, colors: np.ndarray | None = None) -> int:
    """Write a binary little-endian PLY (x, y, z float32 [+ red, green, blue uchar]).

    points is N×3 or H×W×3; colors (RGB uint8, same leading shape) or None. Points with any
    non-finite coordinate are skipped. Returns the number of vertices written.
    """
    points = np.asarray(points, dtype=np.float32)
    if points.ndim not in (2, 3) or points.shape[-1] != 3:
        raise ValueError(f'points must be N×3 or H×W×3, got shape {points.shape}')
    points = points.reshape(-1, 3)
    keep = np.all(np.isfinite(points), axis=1)
    dtype = list(_PLY_XYZ)
    if colors is not None:
        colors = np.asarray(colors)
        if colors.dtype != np.uint8 or colors.reshape(-1, 3).shape != points.shape:
            raise ValueError(f'colors must be uint8 with one RGB triple per point, got '
                             f'{colors.dtype} {colors.shape} for {len(points)} points')
        dtype += _PLY_RGB
    vertices = np.empty(int(keep.sum()), dtype=dtype)
    for i, axis in enumerate('xyz'):
        vertices[axis] = points[keep, i]
    if colors is not None:
        for i, channel in enumerate(('red', 'green', 'blue')):
            vertices[channel] = colors.reshape(-1, 3)[keep, i]
    header = ['ply', 'format binary_little_endian 1.0', f'element vertex {len(vertices)}']
    header += [f'property float {axis}' for axis in 'xyz']
    if colors is not None:
        header += [f'property uchar {channel}' for channel in ('red', 'green', 'blue')]
    header.append('end_header')
    with open(path, 'wb') as f:
        f.write(('\n'.join(header) + '\n').encode('ascii'))
        f.write(vertices.tobytes())
    return len(vertices)


def read_ply(path: str | Path) -> tuple[np.ndarray, np.ndarray | None]:
    """Read a binary little-endian vertex-only PLY: (N×3 float32 points, N×3 uint8 RGB or None)."""
    with open(path, 'rb') as f:
        if f.readline().strip() != b'ply':
            raise ValueError(f'{path}: not a PLY file')
        count, fields = None, []
        for raw in iter(f.readline, b''):
            words = raw.decode('ascii').split()
            if words[:1] == ['format'] and words[1] != 'binary_little_endian':
                raise ValueError(f'{path}: only binary_little_endian PLY is supported')
            if words[:2] == ['element', 'vertex']:
                count = int(words[2])
            elif words[:1] == ['property']:
                if words[1] not in _PLY_TYPES:
                    raise ValueError(f'{path}: unsupported PLY property type {words[1]}')
                fields.append((words[2], _PLY_TYPES[words[1]]))
            elif words[:1] == ['end_header']:
                break
        else:
            raise ValueError(f'{path}: PLY header has no end_header')
        if count is None:
            raise ValueError(f'{path}: PLY header has no vertex element')
        data = np.frombuffer(f.read(), dtype=fields, count=count)
    points = np.stack([data[axis] for axis in 'xyz'], axis=1).astype(np.float32)
    names = {name for name, _ in fields}
    if not {'red', 'green', 'blue'} <= names:
        return points, None
    return points, np.stack([data[c] for c in ('red', 'green', 'blue')], axis=1)


def invert_transform(transform: np.ndarray) -> np.ndarray:
    """Inverse of a 4×4 rigid transform [R | t] (R orthonormal): [Rᵀ | -Rᵀt]."""
    transform = np.asarray(transform, dtype=np.float64)
    if transform.shape != (4, 4):
        raise ValueError(f'need a 4×4 transform, got shape {transform.shape}')
    inverse = np.eye(4)
    inverse[:3, :3] = transform[:3, :3].T
    inverse[:3, 3] = -transform[:3, :3].T @ transform[:3, 3]
    return inverse


def rotation_to_quaternion(rotation: np.ndarray) -> tuple[float, float, float, float]:
    """Unit quaternion (x, y, z, w), w >= 0, of a 3×3 rotation matrix (re-orthonormalised)."""
    rotation = np.asarray(rotation, dtype=np.float64)
    if rotation.shape != (3, 3) or not np.all(np.isfinite(rotation)):
        raise ValueError(f'need a finite 3×3 rotation matrix, got {rotation.tolist()}')
    u, _, vt = np.linalg.svd(rotation)  # nearest rotation: KITTI's matrices are rounded
    r = u @ vt
    if np.linalg.det(r) < 0:
        raise ValueError('matrix is a reflection, not a rotation (determinant < 0)')
    # The eigenvector of the largest eigenvalue of Bar-Itzhack's symmetric 4×4 matrix.
    k = np.array([
        [r[0, 0] - r[1, 1] - r[2, 2], r[1, 0] + r[0, 1], r[2, 0] + r[0, 2], r[2, 1] - r[1, 2]],
        [r[1, 0] + r[0, 1], r[1, 1] - r[0, 0] - r[2, 2], r[2, 1] + r[1, 2], r[0, 2] - r[2, 0]],
        [r[2, 0] + r[0, 2], r[2, 1] + r[1, 2], r[2, 2] - r[0, 0] - r[1, 1], r[1, 0] - r[0, 1]],
        [r[2, 1] - r[1, 2], r[0, 2] - r[2, 0], r[1, 0] - r[0, 1], r[0, 0] + r[1, 1] + r[2, 2]],
    ]) / 3.0
    values, vectors = np.linalg.eigh(k)
    q = vectors[:, np.argmax(values)]
    q = q if q[3] >= 0 else -q
    return tuple(float(c) for c in q)
