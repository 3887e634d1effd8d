"""One bag played to mono_depth_node over DDS and the same bag through mono-depth-bag give the
same depth for every stamp, also when the CameraInfo comes late and for every other image only."""

import numpy as np
import pytest

pytest.importorskip('rclpy')
from node_harness import (  # noqa: E402
    Harness,
    late_half_rate_frames,
    stamp_of,
    start_node,
    stop_node,
    write_camera_bag,
)

from mono_depth_ros.bags.bag_io import read_bag  # noqa: E402
from mono_depth_ros.ros.conversions import image_to_numpy  # noqa: E402
from mono_depth_ros.tools.process_bag import main as process_bag_main  # noqa: E402

pytestmark = [pytest.mark.ros, pytest.mark.slow]
NAMESPACE = '/live_offline_test'
SIZE = (60, 200)
FRAMES = 8
# CameraInfo 0.1 s after its image; the node waits 0.5 s for it (then the latest stands in)
PARAMS = {'device': 'cpu', 'camera_info_wait': 0.5, 'camera_info_timeout': 600.0,
          'cloud_stride': 4, 'diagnostics_period': 0.2}


def play(harness: Harness, process, bag) -> None:
    """Publish the bag's messages in order with their receive-time gaps; before each image wait
    for the node's depth of every image sent so far (so the node never drops one for lack of
    time: only the pairing rule decides)."""
    sent, previous = [], None
    for item in read_bag(bag):
        if previous is not None:
            harness.spin_until(lambda: False, (item.stamp_ns - previous) / 1e9, process)
        previous = item.stamp_ns
        if item.topic.endswith('/image'):
            assert harness.spin_until(
                lambda: all(harness.outputs_with_stamp('depth', s) for s in sent), 60.0,
                process), f'no depth for {sent[-1]}'
            harness.image_pub.publish(item.msg)
            sent.append(stamp_of(item.msg))
        else:
            harness.info_pub.publish(item.msg)
    assert harness.spin_until(
        lambda: all(harness.outputs_with_stamp('depth', s) for s in sent), 60.0, process)


def test_the_node_and_mono_depth_bag_give_the_same_depth_for_every_stamp(tiny_checkpoint,
                                                                          tmp_path):
    bag = write_camera_bag(tmp_path / 'late', late_half_rate_frames(FRAMES, SIZE),
                           namespace=NAMESPACE)
    out = tmp_path / 'offline'
    overrides = [f'{name}={value}' for name, value in PARAMS.items()]
    assert process_bag_main([str(bag), str(out), '--checkpoint', tiny_checkpoint,
                             '--no-copy-input', *[a for o in overrides for a in ('-p', o)]]) == 0
    offline = {stamp_of(m.msg): m.msg for m in read_bag(out, [f'{NAMESPACE}/depth'])}
    offline_info = {stamp_of(m.msg): m.msg
                    for m in read_bag(out, [f'{NAMESPACE}/depth/camera_info'])}
    assert len(offline) == FRAMES

    process = start_node(NAMESPACE, tmp_path / 'node.log', {
        'checkpoint': tiny_checkpoint, 'input_qos': 'reliable', **PARAMS})
    harness = Harness(NAMESPACE, outputs=('depth', 'depth/camera_info'))
    try:
        harness.wait_for_node(process)
        harness.spin_until(lambda: False, 1.0, process)  # both output readers matched
        play(harness, process, bag)
        assert harness.spin_until(
            lambda: all(harness.outputs_with_stamp('depth/camera_info', s) for s in offline),
            10.0, process)
        live = {stamp_of(m): m for m in harness.received['depth']}
        assert sorted(live) == sorted(offline)
        focals = []
        for stamp, msg in sorted(offline.items()):
            live_info = harness.outputs_with_stamp('depth/camera_info', stamp)[0]
            np.testing.assert_array_equal(live_info.k, offline_info[stamp].k)
            np.testing.assert_allclose(image_to_numpy(live[stamp]), image_to_numpy(msg),
                                       rtol=1e-5, atol=1e-6, equal_nan=True)
            focals.append(live_info.k[0])
        # the rule did decide: even frames their own CameraInfo (150 + 20 i), odd the latest
        assert focals == [150.0 + 20.0 * (i - i % 2) for i in range(FRAMES)]
        assert harness.spin_until(
            lambda: int(harness.diagnostics[-1]['latest_camera_info']) == FRAMES // 2, 5.0,
            process)
    finally:
        harness.close()
        stop_node(process)
