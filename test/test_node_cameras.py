"""Several cameras in one mono_depth_node: one batch through the network, each camera's own
topics, frame_id, intrinsics and counters; a silent camera does not stall the others."""

import numpy as np
import pytest

pytest.importorskip('rclpy')
from node_harness import Harness, image_msg, info_msg, make_image, start_node, stop_node  # noqa: E402

from mono_depth_ros.ros.conversions import image_to_numpy, pointcloud2_to_array  # noqa: E402

pytestmark = pytest.mark.ros

NAMESPACE = '/node_cameras_test'
SIZE = (60, 200)
INTRINSICS = {'cam_a': (150.0, 150.0, 99.5, 29.5), 'cam_b': (300.0, 300.0, 90.0, 35.0)}


def camera_frame(camera: str, stamp: tuple[int, int], seed: int = 0, size=SIZE):
    """Image and CameraInfo of one camera, in that camera's optical frame."""
    image = image_msg(make_image(*size, seed=seed), 'rgb8', stamp)
    info = info_msg(INTRINSICS[camera], size, stamp)
    for msg in (image, info):
        msg.header.frame_id = f'{camera}_optical_frame'
    return image, info


def test_a_batch_gives_each_camera_its_single_frame_messages(tiny_checkpoint):
    from mono_depth_ros.inference.backends import load_estimator
    from mono_depth_ros.inference.outputs import OutputSettings
    from mono_depth_ros.ros.pipeline import FramePipeline

    pipeline = FramePipeline(load_estimator(tiny_checkpoint, 'torch', device='cpu'),
                             OutputSettings(cloud_stride=2, max_range=0.0), cameras=2)
    frames = [camera_frame('cam_a', (5, 0), seed=1),
              camera_frame('cam_b', (5, 7), seed=2, size=(90, 160))]
    wanted = [{'depth', 'points'}, {'depth', 'depth/confidence', 'depth/camera_info'}]
    batch = pipeline.infer([pipeline.prepare(image, info, topics)
                            for (image, info), topics in zip(frames, wanted, strict=True)])
    for (image, info), topics, have in zip(frames, wanted, batch, strict=True):
        want = pipeline.process(image, info, topics)
        assert set(have.messages) == set(want.messages) == topics
        for topic, message in have.messages.items():
            assert message.header == image.header, topic
        np.testing.assert_allclose(image_to_numpy(have.messages['depth']),
                                   image_to_numpy(want.messages['depth']), rtol=1e-5)
    np.testing.assert_allclose(image_to_numpy(batch[1].messages['depth/confidence']),
                               image_to_numpy(pipeline.process(*frames[1], wanted[1]).messages[
                                   'depth/confidence']), atol=1e-5)
    have = pointcloud2_to_array(batch[0].messages['points'])
    want = pointcloud2_to_array(pipeline.process(*frames[0], wanted[0]).messages['points'])
    np.testing.assert_allclose(have['z'], want['z'], rtol=1e-5, equal_nan=True)


@pytest.mark.slow
def test_two_cameras_in_one_process(tiny_checkpoint, tmp_path):
    log = tmp_path / 'node.log'
    process = start_node(NAMESPACE, log, {
        'checkpoint': tiny_checkpoint, 'device': 'cpu', 'cameras': ['cam_a', 'cam_b'],
        'input_qos': 'reliable', 'camera_info_timeout': 600.0, 'diagnostics_period': 0.2})
    cams = {name: Harness(NAMESPACE, camera=name, outputs=('depth',))
            for name in INTRINSICS}
    try:
        for harness in cams.values():
            harness.wait_for_node(process)
        a, b = cams['cam_a'], cams['cam_b']
        # cam_b is silent: cam_a is served all the same
        for sec in (1, 2, 3):
            depth = a.send_until_output(process, *camera_frame('cam_a', (sec, 0), seed=sec))
            assert depth.header.frame_id == 'cam_a_optical_frame'
        # both cameras at once, the same picture: cam_b's longer lens sees it twice as far
        stamps = [(10 + k, 0) for k in range(6)]
        for k, stamp in enumerate(stamps):
            for name, harness in cams.items():
                image, info = camera_frame(name, stamp, seed=k)
                harness.info_pub.publish(info)
                harness.image_pub.publish(image)
        for harness in cams.values():
            assert harness.spin_until(lambda h=harness: h.outputs_with_stamp('depth', stamps[-1]),
                                      60.0, process)
        pairs = 0
        for stamp in stamps:
            got = [harness.outputs_with_stamp('depth', stamp) for harness in (a, b)]
            if got[0] and got[1]:
                near, far = (image_to_numpy(msgs[0]) for msgs in got)
                both = np.isfinite(near) & np.isfinite(far)
                np.testing.assert_allclose(far[both], 2 * near[both], rtol=1e-4)
                pairs += 1
        assert pairs >= 1
        for name, harness in cams.items():
            assert {m.header.frame_id for m in harness.received['depth']} == \
                {f'{name}_optical_frame'}
        assert b.spin_until(lambda: int(b.diagnostics[-1]['processed']) >= 1, 5.0, process)
        # frames of both cameras were ready together and went through the network as a batch
        assert int(b.diagnostics[-1]['batched']) >= 1, b.diagnostics[-1]
        assert a.spin_until(lambda: int(a.diagnostics[-1]['processed']) >= 4, 5.0, process)
        assert a.diagnostics[-1]['image_topic'] == f'{NAMESPACE}/cam_a/image'
    finally:
        for harness in cams.values():
            harness.close()
        stop_node(process)
