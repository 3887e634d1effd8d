"""mono_depth_node on CompressedImage without CameraInfo: nothing is computed while nobody
listens; with listeners it still processes nothing and says in /diagnostics which topic it waits
on, until fallback_intrinsics kitti makes the guess explicit."""

from diagnostic_msgs.msg import DiagnosticStatus
import numpy as np
import pytest

pytest.importorskip('rclpy')
from node_harness import (  # noqa: E402
    compressed_msg,
    FRAME_ID,
    Harness,
    make_image,
    start_node,
    stop_node,
)

from mono_depth_ros.ros.conversions import (  # noqa: E402
    camera_info_intrinsics,
    pointcloud2_to_array,
    split_xyz_rgb,
)
from mono_depth_ros.ros.node_logic import fallback_intrinsics  # noqa: E402

pytestmark = [pytest.mark.ros, pytest.mark.slow]
NAMESPACE = '/node_fallback_test'
SIZE = (90, 300)


def test_without_camera_info_nothing_is_guessed_until_fallback_intrinsics_says_so(
        tiny_checkpoint, tmp_path):
    log = tmp_path / 'node.log'
    process = start_node(NAMESPACE, log, {
        'checkpoint': tiny_checkpoint, 'device': 'cpu', 'image_transport': 'compressed',
        'camera_info_timeout': 0.0, 'diagnostics_period': 0.2, 'cloud_stride': 3})
    harness = Harness(NAMESPACE, compressed=True, outputs=())
    try:
        ready = harness.spin_until(lambda: harness.diagnostics
                                   and harness.image_pub.get_subscription_count(), 60.0, process)
        assert ready, 'the node did not come up'
        rgb = make_image(*SIZE, seed=5)
        # nobody subscribes to an output: frames are counted and skipped, never inferred
        for sec in range(3):
            harness.image_pub.publish(compressed_msg(rgb, (sec + 1, 0)))
            harness.spin_until(lambda: False, 0.3, process)
        assert harness.spin_until(
            lambda: int(harness.diagnostics[-1]['skipped_no_subscribers']) >= 1, 10.0, process)
        assert harness.diagnostics[-1]['processed'] == '0'
        # a subscriber appears; CameraInfo never does and no fallback is set: nothing is
        # processed, and the status warns naming the topic it waits on
        for topic in ('depth/camera_info', 'points'):
            harness.subscribe(topic)
        harness.spin_until(lambda: False, 1.0, process)
        for sec in range(10, 14):
            harness.image_pub.publish(compressed_msg(rgb, (sec, 0)))
            harness.spin_until(lambda: False, 0.3, process)
        info_topic = f'{NAMESPACE}/camera_info'
        assert harness.spin_until(
            lambda: harness.statuses[-1].level == DiagnosticStatus.WARN
            and info_topic in harness.statuses[-1].message, 10.0, process)
        assert 'fallback_intrinsics' in harness.statuses[-1].message
        assert harness.diagnostics[-1]['processed'] == '0'
        assert not harness.received['points'] and not harness.received['depth/camera_info']
        assert f'waiting for CameraInfo on {info_topic}' in log.read_text()
        # the guess made explicit at run time: KITTI's intrinsics scaled to the image
        assert harness.set_parameter('fallback_intrinsics', 'kitti')
        assert not harness.set_parameter('fallback_intrinsics', '1, 2, 3')  # refused
        stamp = (50, 0)
        cloud = harness.send_until_output(process, compressed_msg(rgb, stamp), None, 'points')
        assert harness.spin_until(
            lambda: harness.outputs_with_stamp('depth/camera_info', stamp), 10.0, process)
        info = harness.outputs_with_stamp('depth/camera_info', stamp)[0]
        assert info.header.frame_id == FRAME_ID and (info.height, info.width) == SIZE
        expected = fallback_intrinsics(SIZE, 'kitti')
        np.testing.assert_allclose(camera_info_intrinsics(info, SIZE), expected)
        points, colors = split_xyz_rgb(pointcloud2_to_array(cloud))
        assert points.shape == (30, 100, 3)  # stride 3
        np.testing.assert_array_equal(colors, rgb[::3, ::3])  # PNG is lossless
        assert not harness.received['depth']  # not subscribed: not published
        assert harness.spin_until(
            lambda: harness.diagnostics[-1]['intrinsics'] == 'fallback_intrinsics kitti', 5.0,
            process)
        assert harness.statuses[-1].level == DiagnosticStatus.WARN
        assert "using fallback_intrinsics 'kitti'" in log.read_text()
    finally:
        harness.close()
        stop_node(process)
