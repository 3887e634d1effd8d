"""mono_depth_node's lifecycle: transitions through its services over real DDS, and a failed
configure that leaves it unconfigured (autostart false) instead of ending the process."""

import gc
import weakref

import pytest

pytest.importorskip('rclpy')
from node_harness import (  # noqa: E402
    Harness,
    image_msg,
    info_msg,
    make_image,
    make_node,
    start_node,
    stop_node,
)

pytestmark = pytest.mark.ros

SIZE = (60, 200)
INTRINSICS = (150.0, 150.0, 99.5, 29.5)
NAMESPACE = '/node_lifecycle_test'


def frame(sec: int):
    """Image and CameraInfo of one test frame stamped (sec, 0)."""
    rgb = make_image(*SIZE, seed=sec % 5)
    return image_msg(rgb, 'rgb8', (sec, 0)), info_msg(INTRINSICS, SIZE, (sec, 0))


@pytest.mark.slow
def test_transitions_through_the_lifecycle_services(tiny_checkpoint, tmp_path):
    log = tmp_path / 'node.log'
    process = start_node(NAMESPACE, log, {
        'checkpoint': tiny_checkpoint, 'device': 'cpu', 'camera_info_timeout': 600.0,
        'diagnostics_period': 0.2})
    harness = Harness(NAMESPACE, outputs=('depth',))
    try:
        harness.wait_for_node(process)
        assert harness.get_state() == 'active'  # autostart: as a plain node
        harness.send_until_output(process, *frame(1))

        assert harness.change_state('deactivate')
        assert harness.get_state() == 'inactive'
        # a diagnostics message sent after the transition (an earlier one may predate frame 1)
        assert harness.spin_until(
            lambda: harness.diagnostics[-1]['lifecycle_state'] == 'inactive', 5.0, process)
        received = int(harness.diagnostics[-1]['received'])
        for sec in range(2, 8):  # images keep arriving, nothing comes out
            image, info = frame(sec)
            harness.info_pub.publish(info)
            harness.image_pub.publish(image)
            harness.spin_until(lambda: False, 0.3, process)
        assert harness.spin_until(
            lambda: harness.diagnostics[-1]['lifecycle_state'] == 'inactive', 5.0, process)
        assert not [m for m in harness.received['depth'] if m.header.stamp.sec >= 2]
        assert int(harness.diagnostics[-1]['received']) == received  # not even taken in
        assert harness.diagnostics[-1]['model'] != 'none'            # still loaded

        assert harness.change_state('activate')
        harness.send_until_output(process, *frame(10))

        assert harness.change_state('deactivate') and harness.change_state('cleanup')
        assert harness.get_state() == 'unconfigured'
        assert harness.spin_until(
            lambda: harness.diagnostics[-1].get('lifecycle_state') == 'unconfigured'
            and harness.diagnostics[-1]['model'] == 'none', 5.0, process)
        assert 'unconfigured: model unloaded' in log.read_text()

        assert harness.change_state('configure') and harness.change_state('activate')
        harness.send_until_output(process, *frame(20))  # the model is back

        assert harness.change_state('shutdown')
        assert process.wait(timeout=30) == 0  # shutdown ends the process cleanly
    finally:
        harness.close()
        stop_node(process)


def test_a_failed_configure_leaves_the_node_unconfigured_with_the_reason(rclpy_context,
                                                                          tmp_path,
                                                                          tiny_checkpoint):
    from rclpy.lifecycle import TransitionCallbackReturn
    from rclpy.parameter import Parameter

    node = make_node(rclpy_context, autostart=False, checkpoint=str(tmp_path / 'missing.pt'))
    try:
        assert node.state == 'unconfigured' and node.estimator is None
        assert node.trigger_configure() == TransitionCallbackReturn.FAILURE
        assert node.state == 'unconfigured' and node.estimator is None
        assert 'checkpoint file not found' in str(node.failure)
    finally:
        node.destroy_node()
    node = make_node(rclpy_context, autostart=False, checkpoint=tiny_checkpoint, device='cpu',
                     cloud_stride=0)
    try:
        assert node.trigger_configure() == TransitionCallbackReturn.FAILURE
        assert "parameter 'cloud_stride'" in str(node.failure)
        # a parameter that may change at run time can be fixed, then configure succeeds
        result = node.set_parameters([Parameter('cloud_stride', value=3)])[0]
        assert result.successful, result.reason
        assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
        assert node.state == 'inactive' and node.failure is None
    finally:
        node.destroy_node()


class PickyPipeline:
    """A FramePipeline stand-in whose batch fails when it holds a frame called 'bad'."""

    def infer(self, frames):
        from mono_depth_ros.ros.pipeline import FrameResult

        if 'bad' in frames:
            raise ValueError('a bad frame')
        return [FrameResult({}, 0.0) for _ in frames]


def test_a_bad_frame_costs_only_its_camera_and_cleanup_frees_the_model(rclpy_context,
                                                                        tiny_checkpoint):
    node = make_node(rclpy_context, checkpoint=tiny_checkpoint, device='cpu',
                     cameras=['cam_a', 'cam_b'])
    try:
        assert node.state == 'active' and set(node.channels) == {'cam_a', 'cam_b'}
        estimator = weakref.ref(node.estimator)
        # a frame that breaks a batch costs only its own camera its result
        real, node.pipeline = node.pipeline, PickyPipeline()
        cam_a, cam_b = node.channels['cam_a'], node.channels['cam_b']
        node._infer([(cam_a, 'good', 0.0), (cam_b, 'bad', 0.0)])
        assert cam_a.stats.processed == 1 and cam_a.stats.errors == 0
        assert cam_b.stats.processed == 0 and cam_b.stats.invalid == 1
        assert cam_b.stats.last_error == 'a bad frame'
        node.pipeline = real
        del real  # the test holds no reference to the model
        node.trigger_deactivate()
        assert node.estimator is not None and node.state == 'inactive'
        node.trigger_cleanup()
        gc.collect()
        assert estimator() is None, 'the model is still referenced after cleanup'
        assert node.state == 'unconfigured' and node.channels == {}
        assert not [name for name, _ in node.get_publisher_names_and_types_by_node(
            'mono_depth_node', '/') if name.endswith('/depth')]
    finally:
        node.destroy_node()


def test_releasing_a_gpu_estimator_empties_the_cuda_cache(monkeypatch):
    import torch

    from mono_depth_ros.inference.backends import release_device_memory

    emptied = []
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    monkeypatch.setattr(torch.cuda, 'empty_cache', lambda: emptied.append(True))
    release_device_memory('cpu')
    assert emptied == []
    release_device_memory(torch.device('cuda', 0))
    assert emptied == [True]
