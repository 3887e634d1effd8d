"""mono_depth_node runs an exported ONNX model over real DDS, with the reference's depth."""

import numpy as np
import pytest

pytest.importorskip('rclpy')
pytest.importorskip('onnxruntime')
from node_harness import Harness, image_msg, info_msg, make_image, start_node, stop_node  # noqa: E402

from mono_depth_ros.ros.conversions import image_to_numpy  # noqa: E402
from mono_depth_ros.ros.params import check_model_source, ParamError  # noqa: E402

SIZE = (120, 400)
INTRINSICS = (300.0, 280.0, 150.5, 40.25)


def test_backend_and_checkpoint_kind_must_agree(tmp_path):
    onnx_file = tmp_path / 'model.onnx'
    onnx_file.write_bytes(b'x')
    pt_file = tmp_path / 'model.pt'
    pt_file.write_bytes(b'x')
    base = {'allow_random_weights': False}
    with pytest.raises(ParamError, match='set the parameter backend to onnx'):
        check_model_source({**base, 'checkpoint': str(onnx_file), 'backend': 'torch'})
    with pytest.raises(ParamError, match='an .onnx file written by mono-depth-export'):
        check_model_source({**base, 'checkpoint': str(pt_file), 'backend': 'onnx'})
    check_model_source({**base, 'checkpoint': str(onnx_file), 'backend': 'onnx'})


@pytest.mark.ros
@pytest.mark.slow
def test_node_runs_an_exported_onnx_model(tiny_checkpoint, tmp_path):
    from mono_depth_ros.inference.onnx import export_onnx
    from mono_depth_ros.inference.reference import ReferenceEstimator
    from mono_depth_ros.networks.checkpoint import load_model

    model = load_model(tiny_checkpoint)
    onnx_path = export_onnx(model, tmp_path / 'tiny.onnx')
    rgb = make_image(*SIZE, seed=3)
    reference = ReferenceEstimator(model, device='cpu').predict(rgb, fx=INTRINSICS[0])

    namespace = '/node_onnx_test'
    process = start_node(namespace, tmp_path / 'node.log', {
        'checkpoint': str(onnx_path), 'backend': 'onnx', 'device': 'cpu',
        'camera_info_timeout': 600.0})
    harness = Harness(namespace)
    try:
        harness.wait_for_node(process)
        stamp = (1900000000, 5)
        depth_msg = harness.send_until_output(process, image_msg(rgb, 'rgb8', stamp),
                                              info_msg(INTRINSICS, SIZE, stamp))
    finally:
        harness.close()
        stop_node(process)
    depth = image_to_numpy(depth_msg)
    assert depth.shape == SIZE
    valid = np.isfinite(depth)
    assert valid.mean() > 0.5
    # ONNX Runtime vs PyTorch on the CPU: ~1e-6 relative (see test_export); the node adds nothing.
    np.testing.assert_allclose(depth[valid], reference.depth[valid], rtol=1e-3)


@pytest.mark.ros
@pytest.mark.slow
def test_node_fast_backend_cloud_from_predict_points(tiny_checkpoint, tmp_path):
    from mono_depth_ros.core.geometry import backproject
    from mono_depth_ros.inference.reference import ReferenceEstimator
    from mono_depth_ros.networks.checkpoint import load_model
    from mono_depth_ros.ros.conversions import pointcloud2_to_array, split_xyz_rgb

    rgb = make_image(*SIZE, seed=4)
    reference = ReferenceEstimator(load_model(tiny_checkpoint), device='cpu').predict(
        rgb, fx=INTRINSICS[0])
    namespace = '/node_fast_test'
    process = start_node(namespace, tmp_path / 'node.log', {
        'checkpoint': str(tiny_checkpoint), 'backend': 'fast', 'device': 'cpu',
        'cloud_stride': 3, 'max_range': 0.0, 'camera_info_timeout': 600.0,
        # no cloud filter: min_confidence > 0 would make the node compute confidence
        'min_confidence': 0.0, 'cloud_edge_threshold': 0.0})
    harness = Harness(namespace, outputs=('depth', 'points'))  # nobody wants confidence
    try:
        harness.wait_for_node(process)
        stamp = (1900000000, 7)
        depth_msg = harness.send_until_output(process, image_msg(rgb, 'rgb8', stamp),
                                              info_msg(INTRINSICS, SIZE, stamp))
        assert harness.spin_until(lambda: harness.outputs_with_stamp('points', stamp), 10.0,
                                  process)
        cloud_msg = harness.outputs_with_stamp('points', stamp)[0]
    finally:
        harness.close()
        stop_node(process)
    depth = image_to_numpy(depth_msg)
    valid = np.isfinite(depth)
    assert valid.mean() > 0.5
    np.testing.assert_allclose(depth[valid], reference.depth[valid], rtol=1e-4)
    points, _ = split_xyz_rgb(pointcloud2_to_array(cloud_msg))
    assert points.shape == (40, 134, 3)  # ceil(120 / 3) × ceil(400 / 3), organised
    want = backproject(depth, *INTRINSICS, stride=3)  # published depth has NaN out of range
    np.testing.assert_allclose(points, want, rtol=1e-6, atol=1e-6, equal_nan=True)
