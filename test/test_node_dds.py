"""mono_depth_node over real DDS: the node in its own process, fed and watched from this one.

Checks headers, encodings and sizes of every output, the cloud against a hand back-projection
with an off-centre principal point, each bad input (node survives, next frame processed), and
that a burst of frames is dropped down to the newest instead of queued.
"""

import numpy as np
import pytest

pytest.importorskip('rclpy')
from node_harness import (  # noqa: E402
    FRAME_ID,
    Harness,
    image_msg,
    info_msg,
    make_image,
    stamp_of,
    start_node,
    stop_node,
)
from sensor_msgs.msg import PointField  # noqa: E402

from mono_depth_ros.ros.conversions import image_to_numpy, pointcloud2_to_array, split_xyz_rgb  # noqa: E402

pytestmark = [pytest.mark.ros, pytest.mark.slow]

SIZE = (120, 400)                               # camera image (H, W)
INTRINSICS = (300.0, 280.0, 150.5, 40.25)       # off-centre: the image centre is (199.5, 59.5)
NAMESPACE = '/node_dds_test'
_STAMPS = iter(range(1700000000, 1800000000, 10))


def next_stamp() -> tuple[int, int]:
    """A stamp no other test frame has (frames are seconds apart: far beyond the tolerance)."""
    return next(_STAMPS), 250_000_000


def running_node(checkpoint: str, log, namespace: str, **params):
    """Start the node under test (its own process) and a harness talking to it; yield both."""
    process = start_node(namespace, log, {
        'checkpoint': checkpoint, 'device': 'cpu', 'cloud_stride': 1, 'max_range': 0.0,
        # the cloud's filters off: every pixel with a depth is a point (filters: test_flying_*)
        'min_confidence': 0.0, 'cloud_edge_threshold': 0.0,
        'camera_info_timeout': 600.0, 'diagnostics_period': 0.2, 'error_log_period': 600.0,
        **params})
    harness = Harness(namespace)
    try:
        harness.wait_for_node(process)
        yield process, harness, log
    finally:
        harness.close()
        stop_node(process)


@pytest.fixture(scope='module')
def node(tiny_checkpoint, tmp_path_factory):
    """The node under test with its default (sensor_data, best-effort) input QoS."""
    yield from running_node(tiny_checkpoint, tmp_path_factory.mktemp('node') / 'node.log',
                            NAMESPACE)


@pytest.fixture
def reliable_node(tiny_checkpoint, tmp_path):
    """The node under test with input_qos reliable: every frame sent reaches its callbacks.

    Best-effort input may lose any frame of a burst, the last one included (over shared memory
    under load only 3 to 13 of 40 arrived, and now and then not the last), so which frame is
    the newest the node got cannot be known from outside; a reliable reader gets the newest sent.
    """
    yield from running_node(tiny_checkpoint, tmp_path / 'node.log', NAMESPACE + '_reliable',
                            input_qos='reliable')


def frame(stamp, encoding='rgb8', seed=0, size=SIZE, intrinsics=INTRINSICS):
    """(rgb, Image, CameraInfo) of one test frame."""
    rgb = make_image(*size, seed=seed)
    return rgb, image_msg(rgb, encoding, stamp), info_msg(intrinsics, size, stamp)


def test_outputs_carry_the_input_header_and_the_right_encodings(node):
    process, harness, _ = node
    stamp = next_stamp()
    rgb, image, info = frame(stamp)
    depth_msg = harness.send_until_output(process, image, info)
    topics = ('depth/camera_info', 'depth/confidence', 'depth/colorized', 'points')
    assert harness.spin_until(lambda: all(harness.outputs_with_stamp(t, stamp) for t in topics),
                              10.0, process)
    for topic in ('depth', *topics):
        msg = harness.outputs_with_stamp(topic, stamp)[0]
        assert msg.header.frame_id == FRAME_ID, topic
    assert (depth_msg.height, depth_msg.width) == SIZE
    assert depth_msg.encoding == '32FC1' and depth_msg.step == SIZE[1] * 4
    depth = image_to_numpy(depth_msg)
    assert np.isfinite(depth).mean() > 0.5
    assert np.nanmin(depth) >= 0.1 and np.nanmax(depth) <= 80.0  # default depth range
    confidence = image_to_numpy(harness.outputs_with_stamp('depth/confidence', stamp)[0])
    assert confidence.shape == SIZE and confidence.min() >= 0 and confidence.max() <= 1
    colorized = harness.outputs_with_stamp('depth/colorized', stamp)[0]
    assert (colorized.encoding, colorized.height, colorized.width) == ('bgr8', *SIZE)
    depth_info = harness.outputs_with_stamp('depth/camera_info', stamp)[0]
    assert (depth_info.height, depth_info.width) == SIZE
    np.testing.assert_allclose(depth_info.k, info.k)
    np.testing.assert_allclose(depth_info.p, info.p)


def test_depth_scales_with_the_camera_focal_length(node):
    # the same picture from a camera with twice the focal length is twice as far (canonical
    # camera scaling, the DepthEstimator); pixels are compared where both are in range
    process, harness, _ = node
    rgb, image, info = frame(next_stamp(), seed=3)
    near = image_to_numpy(harness.send_until_output(process, image, info))
    fx, fy, cx, cy = INTRINSICS
    image.header.stamp.sec = info.header.stamp.sec = next_stamp()[0]  # another frame
    info.k[0], info.p[0] = 2 * fx, 2 * fx
    far = image_to_numpy(harness.send_until_output(process, image, info))
    both = np.isfinite(near) & np.isfinite(far)
    assert both.mean() > 0.3
    np.testing.assert_allclose(far[both], 2 * near[both], rtol=1e-4)


def test_cloud_is_the_back_projection_with_the_camera_info_intrinsics(node):
    process, harness, _ = node
    stamp = next_stamp()
    rgb, image, info = frame(stamp, seed=1)
    depth = image_to_numpy(harness.send_until_output(process, image, info))
    assert harness.spin_until(lambda: harness.outputs_with_stamp('points', stamp), 10.0, process)
    cloud_msg = harness.outputs_with_stamp('points', stamp)[0]
    fields = {(f.name, f.offset, f.datatype, f.count) for f in cloud_msg.fields}
    assert fields == {('x', 0, PointField.FLOAT32, 1), ('y', 4, PointField.FLOAT32, 1),
                      ('z', 8, PointField.FLOAT32, 1), ('rgb', 12, PointField.FLOAT32, 1)}
    assert cloud_msg.point_step == 16 and cloud_msg.row_step == 16 * SIZE[1]
    assert (cloud_msg.height, cloud_msg.width) == SIZE and not cloud_msg.is_dense
    points, colors = split_xyz_rgb(pointcloud2_to_array(cloud_msg))
    fx, fy, cx, cy = INTRINSICS
    for u, v in [(0, 0), (150, 40), (10, 100), (333, 7), (399, 119)]:
        z = depth[v, u]
        if not np.isfinite(z):
            assert np.isnan(points[v, u]).all()
            continue
        expected = [(u - cx) * z / fx, (v - cy) * z / fy, z]
        np.testing.assert_allclose(points[v, u], expected, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(colors[v, u], rgb[v, u])
    assert np.array_equal(np.isnan(points[..., 2]), np.isnan(depth))


@pytest.mark.parametrize('encoding', ['bgr8', 'mono8', 'bgra8', 'rgba8'])
def test_every_colour_encoding_is_read_with_its_channel_order(node, encoding):
    process, harness, _ = node
    stamp = next_stamp()
    rgb, image, info = frame(stamp, encoding=encoding, seed=2)
    harness.send_until_output(process, image, info)
    assert harness.spin_until(lambda: harness.outputs_with_stamp('points', stamp), 10.0, process)
    _, colors = split_xyz_rgb(pointcloud2_to_array(harness.outputs_with_stamp('points',
                                                                              stamp)[0]))
    expected = np.repeat(rgb[:, :, :1], 3, axis=2) if encoding == 'mono8' else rgb
    np.testing.assert_array_equal(colors, expected)


def bad_inputs(stamp):
    """(name, image, info, log text) of every kind of bad input the node must survive."""
    rgb, image, info = frame(stamp)
    cases = []
    wrong = image_msg(rgb, 'rgb8', stamp)
    wrong.encoding, wrong.step = '16UC1', SIZE[1] * 2
    wrong.data = np.zeros(SIZE, np.uint16).tobytes()
    cases.append(('encoding', wrong, info, "image encoding '16UC1' is not a colour encoding"))
    empty = image_msg(rgb, 'rgb8', stamp)
    empty.height = empty.width = empty.step = 0
    empty.data = b''
    cases.append(('zero size', empty, info, 'zero-sized image'))
    short = image_msg(rgb, 'rgb8', stamp)
    short.data = bytes(short.data)[:-short.step]
    cases.append(('short data', short, info, 'less than step'))
    zero_k = info_msg(INTRINSICS, SIZE, stamp)
    zero_k.k = [0.0] * 9
    cases.append(('zero K', image, zero_k, 'K is all zeros'))
    nan_k = info_msg(INTRINSICS, SIZE, stamp)
    nan_k.k[0] = float('nan')
    cases.append(('NaN K', image, nan_k, 'non-finite values'))
    for matrix, index, value in (('d', 1, float('nan')), ('r', 4, float('inf')),
                                 ('p', 3, float('nan'))):
        bad = info_msg(INTRINSICS, SIZE, stamp)
        values = list(getattr(bad, matrix))
        values[index] = value
        setattr(bad, matrix, values)
        cases.append((f'{value} in {matrix.upper()}', image, bad,
                      f'CameraInfo {matrix.upper()} has non-finite values'))
    cases.append(('size', image, info_msg(INTRINSICS, (240, 800), stamp), 'disagrees with'))
    return cases


def test_bad_inputs_are_dropped_and_the_next_good_frame_is_processed(node):
    process, harness, log = node
    for index, (name, bad_image, bad_info, text) in enumerate(bad_inputs((0, 0))):
        stamp = next_stamp()
        for msg in (bad_image, bad_info):
            msg.header.stamp.sec, msg.header.stamp.nanosec = stamp
        errors_before = int(harness.diagnostics[-1]['errors'])
        harness.info_pub.publish(bad_info)
        harness.image_pub.publish(bad_image)
        reported = harness.spin_until(
            lambda n=errors_before: int(harness.diagnostics[-1]['errors']) > n, 15.0, process)
        assert reported, f'{name}: the bad input was not reported in diagnostics'
        assert text in harness.diagnostics[-1]['last_error'], name
        assert not harness.outputs_with_stamp('depth', stamp), f'{name}: bad frame published'
        good = next_stamp()
        _, image, info = frame(good, seed=index)
        harness.send_until_output(process, image, info)
        assert process.poll() is None
        assert text in log.read_text(), f'{name}: no error logged'
    assert harness.diagnostics[-1]['invalid'] == harness.diagnostics[-1]['errors']


def test_a_repeated_bad_input_is_logged_once_per_throttle_period(node):
    process, harness, log = node
    name, bad_image, bad_info, text = bad_inputs((0, 0))[1]  # zero-sized image
    errors_before = int(harness.diagnostics[-1]['errors'])
    for repeat in range(1, 4):  # each right after the previous one was handled
        stamp = next_stamp()
        for msg in (bad_image, bad_info):
            msg.header.stamp.sec, msg.header.stamp.nanosec = stamp
        harness.info_pub.publish(bad_info)
        harness.image_pub.publish(bad_image)
        assert harness.spin_until(
            lambda n=errors_before + repeat: int(harness.diagnostics[-1]['errors']) >= n, 15.0,
            process)
    assert log.read_text().count(text) == 1  # counted every time, logged once


def test_a_burst_is_dropped_to_the_newest_frame_instead_of_queued(reliable_node):
    process, harness, _ = reliable_node
    _, image, info = frame(next_stamp())
    harness.send_until_output(process, image, info)  # the node is warm and idle
    dropped_before = int(harness.diagnostics[-1]['dropped_busy'])
    sent = [next_stamp() for _ in range(40)]
    burst = [frame(stamp, seed=i % 7)[1:] for i, stamp in enumerate(sent)]
    for image, info in burst:  # all at once: far faster than the network runs
        harness.info_pub.publish(info)
        harness.image_pub.publish(image)
    assert harness.spin_until(lambda: harness.outputs_with_stamp('depth', sent[-1]), 30.0,
                              process), 'the newest frame of the burst was never processed'
    processed = [stamp_of(m) for m in harness.received['depth'] if stamp_of(m) in sent]
    assert len(processed) < len(sent), 'every frame of the burst was processed: queued'
    assert processed == sorted(processed) and processed[-1] == sent[-1]
    assert harness.spin_until(
        lambda: int(harness.diagnostics[-1]['dropped_busy']) > dropped_before, 5.0, process)


def test_an_image_without_its_camera_info_gets_the_latest_one_after_the_wait(node):
    process, harness, log = node
    stamp = next_stamp()
    rgb, image, info = frame(stamp, seed=3)
    harness.send_until_output(process, image, info)
    # the next image's CameraInfo never comes: after camera_info_wait (0.05 s) the camera's
    # latest stands in (the same calibration), and the frame is counted as such
    later = next_stamp()
    _, lone_image, _ = frame(later, seed=4)
    harness.send_until_output(process, lone_image, None, 'depth/camera_info')
    depth_info = harness.outputs_with_stamp('depth/camera_info', later)[0]
    np.testing.assert_allclose(depth_info.k, info.k)
    assert harness.spin_until(
        lambda: int(harness.diagnostics[-1].get('latest_camera_info', 0)) >= 1, 10.0, process)
    # the node's DDS set-up is logged once at start (the large-message profile by default)
    assert 'DDS: ' in log.read_text()
