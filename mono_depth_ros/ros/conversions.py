"""Conversions between sensor_msgs messages and numpy arrays (no rclpy).

Images: rgb8, bgr8, mono8, bgra8, rgba8, 32FC1 and 16UC1, honouring row padding (step) and
is_bigendian; cv_bridge is used when importable (same semantics, our checks run first). Depth
follows REP 118: 32FC1 metres with NaN for no depth. Point clouds carry x, y, z float32 and the
colour packed RViz-style into one float32 'rgb' field (0x00RRGGBB) at offset 12. Image sizes are
(height, width), as in mono_depth_ros.core.geometry. Every malformed message raises
ConversionError.
"""

import array as array_module
import sys

import cv2
import numpy as np
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2, PointField
from std_msgs.msg import Header

from mono_depth_ros.core.geometry import scale_intrinsics

try:  # cv_bridge comes with a ROS installation; the PyPI wheels do not ship it.
    from cv_bridge import CvBridge
except ImportError:  # pragma: no cover - depends on the environment
    CvBridge = None


class ConversionError(ValueError):
    """A message that cannot be converted; the text says what is wrong with it."""


# encoding -> (numpy dtype, channels)
ENCODINGS = {
    'rgb8': (np.uint8, 3), 'bgr8': (np.uint8, 3), 'rgba8': (np.uint8, 4),
    'bgra8': (np.uint8, 4), 'mono8': (np.uint8, 1), '32FC1': (np.float32, 1),
    '16UC1': (np.uint16, 1),
}
COLOR_ENCODINGS = ('rgb8', 'bgr8', 'mono8', 'bgra8', 'rgba8')

# PointField datatype <-> numpy scalar type.
POINTFIELD_DTYPES = {
    PointField.INT8: np.int8, PointField.UINT8: np.uint8, PointField.INT16: np.int16,
    PointField.UINT16: np.uint16, PointField.INT32: np.int32, PointField.UINT32: np.uint32,
    PointField.FLOAT32: np.float32, PointField.FLOAT64: np.float64,
}
_NATIVE_BIG = sys.byteorder == 'big'
_BRIDGE = None


def _bridge():
    """The shared CvBridge, or None when cv_bridge is not importable."""
    global _BRIDGE
    if _BRIDGE is None and CvBridge is not None:
        _BRIDGE = CvBridge()
    return _BRIDGE


def _check_image(msg: Image) -> tuple[np.dtype, int, int]:
    """Validate an Image's layout; return (dtype, channels, bytes per row of pixels)."""
    if msg.encoding not in ENCODINGS:
        raise ConversionError(f'unsupported image encoding {msg.encoding!r}; supported: '
                              f'{", ".join(ENCODINGS)}')
    if msg.height == 0 or msg.width == 0:
        raise ConversionError(f'zero-sized image ({msg.width}x{msg.height})')
    dtype, channels = ENCODINGS[msg.encoding]
    row_bytes = msg.width * channels * np.dtype(dtype).itemsize
    if msg.step < row_bytes:
        raise ConversionError(f'{msg.encoding} image step {msg.step} is less than width '
                              f'{msg.width} x {channels} channel(s) = {row_bytes} bytes')
    if len(msg.data) < msg.step * msg.height:
        raise ConversionError(f'image data has {len(msg.data)} bytes, less than step '
                              f'{msg.step} x height {msg.height} = {msg.step * msg.height}')
    return np.dtype(dtype), channels, row_bytes


def image_to_numpy(msg: Image) -> np.ndarray:
    """Pixels of an Image in its own encoding: H×W (one channel) or H×W×C, native byte order."""
    dtype, channels, row_bytes = _check_image(msg)
    bridge = _bridge()
    # cv_bridge needs whole-pixel padding; foreign byte order goes our way (its byte swap
    # uses ndarray.newbyteorder, which NumPy 2 removed).
    if (bridge is not None and msg.step % (dtype.itemsize * channels) == 0
            and bool(msg.is_bigendian) == _NATIVE_BIG):
        return np.array(bridge.imgmsg_to_cv2(msg, desired_encoding='passthrough'), dtype=dtype)
    rows = np.frombuffer(msg.data, dtype=np.uint8, count=msg.step * msg.height)
    rows = rows.reshape(msg.height, msg.step)[:, :row_bytes]
    wire = dtype.newbyteorder('>' if msg.is_bigendian else '<')
    array = np.ascontiguousarray(rows).view(wire).astype(dtype)
    shape = (msg.height, msg.width) if channels == 1 else (msg.height, msg.width, channels)
    return array.reshape(shape)


def to_rgb(msg: Image) -> np.ndarray:
    """H×W×3 RGB uint8 from a colour or mono Image (what the network takes)."""
    if msg.encoding not in COLOR_ENCODINGS:
        raise ConversionError(f'image encoding {msg.encoding!r} is not a colour encoding; '
                              f'expected one of {", ".join(COLOR_ENCODINGS)}')
    pixels = image_to_numpy(msg)
    if msg.encoding == 'mono8':
        return np.repeat(pixels[:, :, None], 3, axis=2)
    if msg.encoding.startswith('bgr'):
        return np.ascontiguousarray(pixels[:, :, 2::-1])
    return np.ascontiguousarray(pixels[:, :, :3])


def numpy_to_image(array: np.ndarray, encoding: str, header: Header | None = None) -> Image:
    """An Image (native byte order, no padding) holding array in the given encoding."""
    if encoding not in ENCODINGS:
        raise ConversionError(f'unsupported image encoding {encoding!r}; supported: '
                              f'{", ".join(ENCODINGS)}')
    dtype, channels = ENCODINGS[encoding]
    array = np.asarray(array)
    expected = array.ndim == 2 if channels == 1 else array.shape[2:] == (channels,)
    if array.ndim == 3 and channels == 1 and array.shape[2] == 1:
        array, expected = array[:, :, 0], True
    if not expected or array.ndim not in (2, 3) or array.size == 0:
        raise ConversionError(f'array of shape {array.shape} does not fit {encoding} '
                              f'({channels} channel(s))')
    if array.dtype != dtype:
        raise ConversionError(f'{encoding} needs dtype {np.dtype(dtype).name}, got {array.dtype}')
    array = np.ascontiguousarray(array)
    bridge = _bridge()
    if bridge is not None:
        msg = bridge.cv2_to_imgmsg(array, encoding=encoding)
    else:
        msg = Image(height=array.shape[0], width=array.shape[1], encoding=encoding,
                    is_bigendian=_NATIVE_BIG, step=array.shape[1] * channels * array.itemsize)
        msg.data = byte_array(array)
    if header is not None:
        msg.header = header
    return msg


def byte_array(array: np.ndarray) -> array_module.array:
    """The bytes of an array (C order) as the array.array('B') a message's uint8[] field holds,
    copied once (the message takes it as it is)."""
    data = array_module.array('B')
    data.frombytes(memoryview(np.ascontiguousarray(array)).cast('B'))
    return data


def compressed_to_rgb(msg: CompressedImage) -> np.ndarray:
    """Decode a CompressedImage (JPEG, PNG, ...) with OpenCV into H×W×3 RGB uint8."""
    if len(msg.data) == 0:
        raise ConversionError('compressed image has no data')
    bgr = cv2.imdecode(np.frombuffer(msg.data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if bgr is None or bgr.size == 0:
        raise ConversionError(f'cannot decode compressed image (format {msg.format!r}, '
                              f'{len(msg.data)} bytes)')
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def depth_to_image(depth: np.ndarray, header: Header | None = None) -> Image:
    """A REP 118 depth Image: 32FC1 metres, NaN where invalid (NaN, -inf or <= 0), +inf where
    no surface lies within range (REP 117)."""
    depth = np.array(depth, dtype=np.float32)
    if depth.ndim != 2:
        raise ConversionError(f'depth must be H×W, got shape {depth.shape}')
    with np.errstate(invalid='ignore'):
        depth[~((np.isfinite(depth) & (depth > 0)) | np.isposinf(depth))] = np.nan
    return numpy_to_image(depth, '32FC1', header)


def pack_rgb(colors: np.ndarray) -> np.ndarray:
    """Pack ...×3 RGB uint8 into float32 words holding 0x00RRGGBB (the RViz 'rgb' field)."""
    colors = np.asarray(colors, dtype=np.uint32)
    packed = (colors[..., 0] << 16) | (colors[..., 1] << 8) | colors[..., 2]
    return packed.astype(np.uint32).view(np.float32)


def unpack_rgb(rgb: np.ndarray) -> np.ndarray:
    """Inverse of pack_rgb: float32 'rgb' words -> ...×3 RGB uint8."""
    packed = np.ascontiguousarray(rgb, dtype=np.float32).view(np.uint32)
    return np.stack([(packed >> s) & 0xFF for s in (16, 8, 0)], axis=-1).astype(np.uint8)


def structured_to_pointcloud2(array: np.ndarray, header: Header | None = None) -> PointCloud2:
    """A PointCloud2 from a structured array: shape (N,) unorganised, (H, W) organised."""
    if array.dtype.names is None or array.ndim not in (1, 2):
        raise ConversionError('need a 1-D or 2-D structured array of point fields')
    reverse = {np.dtype(t): code for code, t in POINTFIELD_DTYPES.items()}
    fields = []
    for name in array.dtype.names:
        dtype, offset = array.dtype.fields[name][:2]
        if dtype.base not in reverse:
            raise ConversionError(f'point field {name!r} has unsupported dtype {dtype}')
        fields.append(PointField(name=name, offset=offset, datatype=reverse[dtype.base],
                                 count=1))
    height, width = array.shape if array.ndim == 2 else (1, array.shape[0])
    msg = PointCloud2(height=height, width=width, fields=fields, is_bigendian=_NATIVE_BIG,
                      point_step=array.dtype.itemsize, row_step=array.dtype.itemsize * width)
    msg.is_dense = bool(all(np.isfinite(array[n]).all() for n in array.dtype.names
                            if n in ('x', 'y', 'z'))) and array.ndim == 1
    msg.data = byte_array(array)
    if header is not None:
        msg.header = header
    return msg


def make_pointcloud2(points: np.ndarray, colors: np.ndarray | None = None,
                     header: Header | None = None) -> PointCloud2:
    """PointCloud2 with x, y, z float32 (+ packed 'rgb'): H×W×3 organised, N×3 unorganised.

    Organised clouds keep NaN points and have is_dense False; colors are RGB uint8 with the
    same leading shape as points. Layout: x 0, y 4, z 8, rgb 12, point_step 16 (12 without rgb).
    """
    points = np.asarray(points)
    if points.ndim not in (2, 3) or points.shape[-1] != 3:
        raise ConversionError(f'points must be N×3 or H×W×3, got shape {points.shape}')
    dtype = [('x', np.float32), ('y', np.float32), ('z', np.float32)]
    if colors is not None:
        colors = np.asarray(colors)
        if colors.dtype != np.uint8 or colors.shape != points.shape:
            raise ConversionError(f'colors must be uint8 of shape {points.shape}, got '
                                  f'{colors.dtype} {colors.shape}')
        dtype.append(('rgb', np.float32))
    cloud = np.empty(points.shape[:-1], dtype=dtype)
    for i, axis in enumerate('xyz'):
        cloud[axis] = points[..., i]
    if colors is not None:
        cloud['rgb'] = pack_rgb(colors)
    return structured_to_pointcloud2(cloud, header)


def pointcloud2_to_array(msg: PointCloud2) -> np.ndarray:
    """Structured array of a PointCloud2's fields, native byte order: (H, W), or (W,) if H is 1."""
    if not msg.fields:
        raise ConversionError('point cloud has no fields')
    order = '>' if msg.is_bigendian else '<'
    names, formats, offsets = [], [], []
    for field in msg.fields:
        if field.datatype not in POINTFIELD_DTYPES or field.count != 1:
            raise ConversionError(f'point field {field.name!r}: unsupported datatype '
                                  f'{field.datatype} or count {field.count}')
        names.append(field.name)
        formats.append(np.dtype(POINTFIELD_DTYPES[field.datatype]).newbyteorder(order))
        offsets.append(field.offset)
    wire = np.dtype({'names': names, 'formats': formats, 'offsets': offsets,
                     'itemsize': msg.point_step})
    if msg.point_step < max(o + f.itemsize for o, f in zip(offsets, formats, strict=True)):
        raise ConversionError(f'point_step {msg.point_step} is smaller than the fields need')
    if msg.row_step < msg.point_step * msg.width:
        raise ConversionError(f'row_step {msg.row_step} < point_step x width')
    if len(msg.data) < msg.row_step * msg.height:
        raise ConversionError(f'cloud data has {len(msg.data)} bytes, expected '
                              f'{msg.row_step * msg.height}')
    rows = np.frombuffer(msg.data, np.uint8, count=msg.row_step * msg.height)
    rows = np.ascontiguousarray(rows.reshape(msg.height, msg.row_step)[:, :wire.itemsize
                                                                       * msg.width])
    native = np.dtype([(n, f.newbyteorder('=')) for n, f in zip(names, formats, strict=True)])
    cloud = rows.view(wire).reshape(msg.height, msg.width).astype(native)
    return cloud[0] if msg.height == 1 else cloud


def split_xyz_rgb(cloud: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """(...×3 float32 points, ...×3 RGB uint8 or None) from a structured cloud array."""
    points = np.stack([cloud[axis] for axis in 'xyz'], axis=-1).astype(np.float32)
    if 'rgb' not in cloud.dtype.names:
        return points, None
    return points, unpack_rgb(cloud['rgb'])


def check_camera_info(msg: CameraInfo) -> None:
    """Raise ConversionError naming the matrix unless K (9), R (9) and P (12) have their sizes
    and K, D, R and P hold only finite values (a NaN would make every output NaN)."""
    sizes = {'K': 9, 'D': None, 'R': 9, 'P': 12}
    for name, size in sizes.items():
        values = np.asarray(getattr(msg, name.lower()), dtype=np.float64).ravel()
        if size is not None and values.size != size:
            raise ConversionError(f'CameraInfo {name} has {values.size} values, expected {size}')
        if not np.all(np.isfinite(values)):
            raise ConversionError(f'CameraInfo {name} has non-finite values: {values.tolist()}')


def camera_info_intrinsics(msg: CameraInfo, image_size: tuple[int, int] | None = None
                           ) -> tuple[float, float, float, float]:
    """(fx, fy, cx, cy) from CameraInfo.k, checked against the image size (height, width).

    CameraInfo width and height both 0 mean "unset" and K is taken at the image's resolution;
    otherwise they must equal the image size. Binning and ROI are not supported.
    """
    check_camera_info(msg)
    k = np.asarray(msg.k, dtype=np.float64)
    if not np.any(k):
        raise ConversionError('CameraInfo K is all zeros (camera not calibrated)')
    fx, fy, cx, cy = k[0], k[4], k[2], k[5]
    if fx <= 0 or fy <= 0:
        raise ConversionError(f'CameraInfo K has non-positive focal length fx={fx} fy={fy}')
    if msg.binning_x > 1 or msg.binning_y > 1 or msg.roi.width or msg.roi.height:
        raise ConversionError('CameraInfo with binning or ROI is not supported')
    if image_size is not None and (msg.width or msg.height):
        if (msg.height, msg.width) != tuple(image_size):
            raise ConversionError(f'CameraInfo size {msg.width}x{msg.height} disagrees with '
                                  f'the image size {image_size[1]}x{image_size[0]}')
    return float(fx), float(fy), float(cx), float(cy)


def scale_camera_info(msg: CameraInfo, width: int, height: int) -> CameraInfo:
    """Copy of a CameraInfo for the image resized to width×height (K and P scaled).

    Uses geometry.scale_intrinsics' pixel-centre convention; D, R and the distortion model are
    copied unchanged. The source CameraInfo must have its width and height set.
    """
    if msg.width == 0 or msg.height == 0:
        raise ConversionError('cannot scale a CameraInfo whose width/height are unset (0)')
    if width <= 0 or height <= 0:
        raise ConversionError(f'target size must be positive, got {width}x{height}')
    camera_info_intrinsics(msg)
    sx, sy = width / msg.width, height / msg.height
    out = CameraInfo(header=msg.header, width=width, height=height,
                     distortion_model=msg.distortion_model)
    out.d = list(msg.d)
    out.r = np.array(msg.r, dtype=np.float64)
    k = np.array(msg.k, dtype=np.float64)
    fx, fy, cx, cy = scale_intrinsics(k[0], k[4], k[2], k[5], (msg.height, msg.width),
                                      (height, width))
    k[[0, 1, 2, 4, 5]] = fx, k[1] * sx, cx, fy, cy
    out.k = k
    p = np.array(msg.p, dtype=np.float64)
    if np.any(p):
        pfx, pfy, pcx, pcy = scale_intrinsics(p[0], p[5], p[2], p[6], (msg.height, msg.width),
                                              (height, width))
        p[[0, 1, 2, 3, 5, 6, 7]] = pfx, p[1] * sx, pcx, p[3] * sx, pfy, pcy, p[7] * sy
    out.p = p
    return out
