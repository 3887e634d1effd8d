"""sensor_msgs <-> numpy: every encoding, padded rows, big-endian data, clouds, CameraInfo."""

import importlib.util

import cv2
import numpy as np
import pytest
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2
from std_msgs.msg import Header

from mono_depth_ros.core.geometry import backproject
from mono_depth_ros.ros.conversions import (
    camera_info_intrinsics,
    compressed_to_rgb,
    ConversionError,
    depth_to_image,
    ENCODINGS,
    image_to_numpy,
    make_pointcloud2,
    numpy_to_image,
    pack_rgb,
    pointcloud2_to_array,
    scale_camera_info,
    split_xyz_rgb,
    structured_to_pointcloud2,
    to_rgb,
    unpack_rgb,
)

RNG = np.random.default_rng(6)


def sample(encoding, height=3, width=5):
    """Random pixels for an encoding."""
    dtype, channels = ENCODINGS[encoding]
    shape = (height, width) if channels == 1 else (height, width, channels)
    if dtype == np.float32:
        return RNG.uniform(0.5, 80.0, shape).astype(np.float32)
    return RNG.integers(0, np.iinfo(dtype).max, shape, endpoint=True).astype(dtype)


def raw_image(array, encoding, pad=0, big_endian=False):
    """An Image built by hand: rows padded with `pad` junk bytes, in the chosen byte order."""
    wire = array.astype(array.dtype.newbyteorder('>' if big_endian else '<'))
    rows = wire.reshape(array.shape[0], -1).view(np.uint8)
    junk = np.full((array.shape[0], pad), 0xAB, np.uint8)
    msg = Image(height=array.shape[0], width=array.shape[1], encoding=encoding,
                is_bigendian=big_endian, step=rows.shape[1] + pad)
    msg.data = np.hstack([rows, junk]).tobytes()
    return msg


def header():
    """A header with a stamp and an optical frame."""
    h = Header(frame_id='camera_optical_frame')
    h.stamp.sec, h.stamp.nanosec = 1317384506, 123456789
    return h


@pytest.mark.parametrize('encoding', list(ENCODINGS))
def test_round_trip_every_encoding(encoding):
    array = sample(encoding)
    msg = numpy_to_image(array, encoding, header())
    assert (msg.height, msg.width, msg.encoding) == (3, 5, encoding)
    assert msg.step == 5 * ENCODINGS[encoding][1] * array.itemsize
    assert msg.header.frame_id == 'camera_optical_frame' and msg.header.stamp.nanosec == 123456789
    back = image_to_numpy(msg)
    assert back.dtype == array.dtype
    np.testing.assert_array_equal(back, array)


@pytest.mark.parametrize('encoding', list(ENCODINGS))
@pytest.mark.parametrize('big_endian', [False, True])
def test_padded_rows_and_byte_order(encoding, big_endian):
    array = sample(encoding, 4, 3)
    msg = raw_image(array, encoding, pad=7, big_endian=big_endian)
    np.testing.assert_array_equal(image_to_numpy(msg), array)


def test_big_endian_32fc1_by_hand():
    msg = Image(height=1, width=2, encoding='32FC1', is_bigendian=True, step=8)
    msg.data = bytes.fromhex('3fc00000' 'c2f60000')  # 1.5, -123.0 in IEEE big-endian
    np.testing.assert_array_equal(image_to_numpy(msg), [[1.5, -123.0]])


def test_to_rgb_from_every_colour_encoding():
    rgb = sample('rgb8')
    alpha = np.full(rgb.shape[:2] + (1,), 7, np.uint8)
    cases = {'rgb8': rgb, 'bgr8': rgb[:, :, ::-1], 'rgba8': np.dstack([rgb, alpha]),
             'bgra8': np.dstack([rgb[:, :, ::-1], alpha])}
    for encoding, pixels in cases.items():
        out = to_rgb(raw_image(np.ascontiguousarray(pixels), encoding, pad=3))
        assert out.shape == rgb.shape and out.flags.c_contiguous
        np.testing.assert_array_equal(out, rgb, err_msg=encoding)
    mono = sample('mono8')
    np.testing.assert_array_equal(to_rgb(numpy_to_image(mono, 'mono8')),
                                  np.dstack([mono] * 3))
    with pytest.raises(ConversionError, match='not a colour encoding'):
        to_rgb(numpy_to_image(sample('32FC1'), '32FC1'))


def good_image():
    """A valid 2x2 rgb8 image."""
    return numpy_to_image(np.zeros((2, 2, 3), np.uint8), 'rgb8')


@pytest.mark.parametrize('change, match', [
    (dict(encoding='yuv422'), 'unsupported image encoding'),
    (dict(encoding='16UC3'), 'unsupported image encoding'),
    (dict(width=0), 'zero-sized'),
    (dict(height=0, data=b''), 'zero-sized'),
    (dict(data=bytes(11)), 'less than step'),
    (dict(step=5), 'step 5 is less than width'),
])
def test_bad_images_raise(change, match):
    msg = good_image()
    for key, value in change.items():
        setattr(msg, key, value)
    with pytest.raises(ConversionError, match=match):
        image_to_numpy(msg)


def test_numpy_to_image_rejects_mismatches():
    with pytest.raises(ConversionError, match='dtype'):
        numpy_to_image(np.zeros((2, 2), np.float64), '32FC1')
    with pytest.raises(ConversionError, match='does not fit'):
        numpy_to_image(np.zeros((2, 2), np.uint8), 'rgb8')
    with pytest.raises(ConversionError, match='unsupported'):
        numpy_to_image(np.zeros((2, 2), np.uint8), 'jpeg')


def test_compressed_round_trip_and_garbage():
    rgb = np.zeros((8, 10, 3), np.uint8)
    rgb[:, :5] = (255, 0, 0)
    ok, png = cv2.imencode('.png', cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    msg = CompressedImage(format='png')
    msg.data = png.tobytes()
    np.testing.assert_array_equal(compressed_to_rgb(msg), rgb)
    msg.data = b'not an image at all'
    with pytest.raises(ConversionError, match='cannot decode'):
        compressed_to_rgb(msg)
    with pytest.raises(ConversionError, match='no data'):
        compressed_to_rgb(CompressedImage(format='jpeg'))


def test_depth_to_image_is_rep118_with_rep117_beyond_range():
    depth = np.array([[1.5, 0.0, -2.0, -np.inf], [np.inf, np.nan, 80.0, 3.0]], np.float64)
    msg = depth_to_image(depth, header())
    assert msg.encoding == '32FC1' and msg.step == 16
    assert msg.header.frame_id == 'camera_optical_frame'
    back = image_to_numpy(msg)
    np.testing.assert_array_equal(np.isnan(back), [[False, True, True, True],
                                                   [False, True, False, False]])
    assert back[0, 0] == 1.5 and back[1, 2] == 80.0 and back[1, 3] == 3.0
    assert np.isposinf(back[1, 0])  # REP 117: no surface within range is +Inf, not NaN


def test_pointcloud_layout_is_what_rviz_expects():
    depth = np.array([[2.0, np.nan], [4.0, 8.0]], np.float32)
    points = backproject(depth, 100.0, 100.0, 0.3, 0.7)
    colors = np.array([[[255, 128, 1], [0, 0, 0]], [[10, 20, 30], [1, 2, 3]]], np.uint8)
    msg = make_pointcloud2(points, colors, header())
    assert isinstance(msg, PointCloud2)
    assert [(f.name, f.offset, f.datatype, f.count) for f in msg.fields] == [
        ('x', 0, 7, 1), ('y', 4, 7, 1), ('z', 8, 7, 1), ('rgb', 12, 7, 1)]
    assert (msg.height, msg.width, msg.point_step, msg.row_step) == (2, 2, 16, 32)
    assert msg.is_dense is False and len(msg.data) == 64
    assert msg.header.stamp.sec == 1317384506
    # the rgb word of the first point is 0x00FF8001 (little-endian bytes 01 80 FF 00)
    assert bytes(msg.data[12:16]) == bytes([0x01, 0x80, 0xFF, 0x00])
    cloud = pointcloud2_to_array(msg)
    assert cloud.shape == (2, 2)
    xyz, rgb = split_xyz_rgb(cloud)
    np.testing.assert_array_equal(xyz, points)
    np.testing.assert_array_equal(rgb, colors)


def test_unorganised_cloud_without_colour():
    points = np.array([[1, 2, 3], [4, 5, 6]], np.float32)
    msg = make_pointcloud2(points)
    assert (msg.height, msg.width, msg.point_step, msg.is_dense) == (1, 2, 12, True)
    xyz, rgb = split_xyz_rgb(pointcloud2_to_array(msg))
    assert rgb is None
    np.testing.assert_array_equal(xyz, points)
    with pytest.raises(ConversionError, match='colors'):
        make_pointcloud2(points, np.zeros((2, 3), np.float32))


def test_read_big_endian_padded_cloud_with_intensity():
    wire = np.zeros(2, dtype={'names': ['x', 'y', 'z', 'intensity'], 'itemsize': 20,
                              'formats': ['>f4', '>f4', '>f4', '>f4'],
                              'offsets': [0, 4, 8, 16]})
    wire['x'], wire['intensity'] = [1.0, -2.0], [0.25, 0.5]
    msg = structured_to_pointcloud2(np.zeros(2, [('x', '<f4'), ('y', '<f4'), ('z', '<f4'),
                                                 ('intensity', '<f4')]))
    msg.is_bigendian, msg.point_step, msg.row_step = True, 20, 40
    msg.fields[3].offset = 16
    msg.data = wire.tobytes()
    cloud = pointcloud2_to_array(msg)
    np.testing.assert_array_equal(cloud['x'], [1.0, -2.0])
    np.testing.assert_array_equal(cloud['intensity'], [0.25, 0.5])
    msg.data = msg.data[:30]
    with pytest.raises(ConversionError, match='cloud data'):
        pointcloud2_to_array(msg)


def test_pack_rgb_round_trip():
    colors = RNG.integers(0, 256, (50, 3)).astype(np.uint8)
    np.testing.assert_array_equal(unpack_rgb(pack_rgb(colors)), colors)


def camera_info(width=1242, height=375):
    """KITTI-like CameraInfo with an off-centre principal point."""
    msg = CameraInfo(width=width, height=height, distortion_model='plumb_bob')
    msg.k = [721.5, 0.0, 609.5, 0.0, 720.0, 172.8, 0.0, 0.0, 1.0]
    msg.p = [721.5, 0.0, 609.5, -387.5, 0.0, 720.0, 172.8, 0.0, 0.0, 0.0, 1.0, 0.0]
    msg.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    msg.d = [0.1, -0.2, 0.0, 0.0, 0.0]
    return msg


def test_camera_info_intrinsics_and_size_rules():
    assert camera_info_intrinsics(camera_info(), (375, 1242)) == (721.5, 720.0, 609.5, 172.8)
    unset = camera_info(0, 0)
    assert camera_info_intrinsics(unset, (100, 200))[2] == 609.5  # 0x0 means unset


@pytest.mark.parametrize('change, match', [
    (dict(k=[0.0] * 9), 'all zeros'),
    (dict(k=[721.5, 0, np.nan, 0, 720, 172.8, 0, 0, 1]), 'non-finite'),
    (dict(k=[np.inf, 0, 609.5, 0, 720, 172.8, 0, 0, 1]), 'non-finite'),
    (dict(d=[0.1, np.nan, 0.0, 0.0, 0.0]), 'D has non-finite'),
    (dict(r=[1.0, 0, 0, 0, np.inf, 0, 0, 0, 1]), 'R has non-finite'),
    (dict(p=[721.5, 0, 609.5, np.nan, 0, 720, 172.8, 0, 0, 0, 1, 0]), 'P has non-finite'),
    (dict(p=[721.5, 0, 609.5, 0, 720, 172.8, 0, 0, 1]), 'P has 9 values, expected 12'),
    (dict(k=[-721.5, 0, 609.5, 0, 720, 172.8, 0, 0, 1]), 'non-positive'),
    (dict(width=1240), 'disagrees'),
    (dict(binning_x=2), 'binning'),
])
def test_bad_camera_info_raises(change, match):
    msg = camera_info()
    for key, value in change.items():
        setattr(msg, key, value)
    with pytest.raises(ConversionError, match=match):
        camera_info_intrinsics(msg, (375, 1242))


def test_scale_camera_info():
    msg = camera_info()
    msg.header = header()
    out = scale_camera_info(msg, 621, 375 // 3)
    assert (out.width, out.height) == (621, 125)
    fx, fy, cx, cy = camera_info_intrinsics(out, (125, 621))
    assert fx == pytest.approx(360.75) and cx == pytest.approx(610.0 / 2 - 0.5)
    assert fy == pytest.approx(240.0) and cy == pytest.approx(173.3 / 3 - 0.5)
    assert out.p[0] == pytest.approx(360.75) and out.p[3] == pytest.approx(-193.75)
    assert out.p[2] == pytest.approx(304.5) and out.p[6] == pytest.approx(cy)
    assert list(out.d) == list(msg.d) and out.distortion_model == 'plumb_bob'
    np.testing.assert_array_equal(out.r, msg.r)
    assert out.header.frame_id == 'camera_optical_frame'
    with pytest.raises(ConversionError, match='unset'):
        scale_camera_info(camera_info(0, 0), 10, 10)


@pytest.mark.skipif(importlib.util.find_spec('cv_bridge') is None,
                    reason='cv_bridge is not installed (it comes with a ROS installation)')
@pytest.mark.parametrize('encoding', list(ENCODINGS))
def test_same_semantics_as_cv_bridge(encoding):
    from cv_bridge import CvBridge
    array = sample(encoding)
    msg = raw_image(array, encoding, pad=ENCODINGS[encoding][1] * array.itemsize)
    # image_to_numpy may itself call cv_bridge here, so both are checked against the pixels
    np.testing.assert_array_equal(CvBridge().imgmsg_to_cv2(msg, 'passthrough'), array)
    np.testing.assert_array_equal(image_to_numpy(msg), array)
    np.testing.assert_array_equal(image_to_numpy(CvBridge().cv2_to_imgmsg(array, encoding)),
                                  array)


@pytest.mark.skipif(importlib.util.find_spec('sensor_msgs_py') is None,
                    reason='sensor_msgs_py is not installed (it comes with a ROS installation)')
def test_same_semantics_as_sensor_msgs_py():
    from sensor_msgs_py import point_cloud2
    points = RNG.uniform(-5, 5, (4, 3, 3)).astype(np.float32)
    points[1, 1] = np.nan
    msg = make_pointcloud2(points, RNG.integers(0, 256, (4, 3, 3)).astype(np.uint8))
    theirs = point_cloud2.read_points_numpy(msg, field_names=('x', 'y', 'z'))
    np.testing.assert_array_equal(theirs, points.reshape(-1, 3))
