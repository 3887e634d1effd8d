"""Beyond range (REP 117 +Inf): the label from the dense truth, the loss, the estimators, the
published depth image and cloud, the diagnostics share."""

import copy
import math

import numpy as np
import pytest
import torch

from mono_depth_ros.datasets.kitti.io import KittiFormatError, read_dense_depth
from mono_depth_ros.inference.estimator import check_input_size
from mono_depth_ros.inference.network import (
    BatchEstimator,
    BEYOND_FAR_DEPTH,
    BEYOND_THRESHOLD,
    BEYOND_THRESHOLD_FAR,
)
from mono_depth_ros.networks import build_model, load_model_config
from mono_depth_ros.training.losses import beyond_loss, beyond_mask, DepthLoss, valid_mask


def test_dense_truth_marks_sky_beyond_range(tmp_path):
    dense = np.array([[0.0, 5.0], [120.0, 80.0]], np.float32)  # 0: no surface hit (sky)
    np.save(tmp_path / 'frame.npy', dense)
    depth = read_dense_depth(tmp_path / 'frame.npy')
    assert depth.dtype == np.float32 and np.isposinf(depth[0, 0])
    assert depth[0, 1] == 5.0 and depth[1, 0] == 120.0 and depth[1, 1] == 80.0
    np.save(tmp_path / 'bad.npy', np.array([[1.0, -2.0]], np.float32))
    with pytest.raises(KittiFormatError, match='bad.npy holds negative or non-finite'):
        read_dense_depth(tmp_path / 'bad.npy')
    np.save(tmp_path / 'ints.npy', np.array([[1, 2]], np.int32))
    with pytest.raises(KittiFormatError, match='H×W float array'):
        read_dense_depth(tmp_path / 'ints.npy')
    with pytest.raises(FileNotFoundError, match='dense depth file not found'):
        read_dense_depth(tmp_path / 'none.npy')


def test_beyond_label_and_loss_by_hand():
    # unlabelled (0, NaN), surfaces within 80 m (5, 80), beyond range (120, +inf)
    gt = torch.tensor([[[[0.0, 5.0, 80.0, 120.0, math.inf, math.nan]]]])
    np.testing.assert_array_equal(valid_mask(gt, 80.0)[0, 0, 0].numpy(),
                                  [False, True, True, False, False, False])
    np.testing.assert_array_equal(beyond_mask(gt, 80.0)[0, 0, 0].numpy(),
                                  [False, False, False, True, True, False])
    logit = torch.tensor([[[[9.0, 0.0, 2.0, 0.0, 1.0, 9.0]]]])
    # labelled pixels: 5 (label 0, logit 0), 80 (0, 2), 120 (1, 0), +inf (1, 1)
    want = (math.log(2) + math.log(1 + math.e ** 2) + math.log(2)
            + math.log(1 + math.e ** -1)) / 4
    assert float(beyond_loss(logit, gt, 80.0)) == pytest.approx(want, rel=1e-6)
    assert float(beyond_loss(logit, torch.zeros_like(gt), 80.0)) == 0.0  # nothing labelled


def test_depth_loss_trains_the_head_and_ignores_beyond_pixels_for_depth():
    config = load_model_config('unet_r18')
    config['beyond_range'] = True
    config['loss'].update(beyond_weight=0.5)
    gt = torch.full((1, 1, 4, 4), 10.0)
    gt[0, 0, 0] = math.inf  # the top row is sky
    depth = torch.full((1, 1, 4, 4), 10.0)
    depth[0, 0, 0] = 0.5  # any depth there: regression must not see it
    logit = torch.full((1, 1, 4, 4), -20.0)
    logit[0, 0, 0] = 20.0  # certain and right everywhere
    terms = DepthLoss(config)({'depth': depth, 'beyond_logit': logit}, gt)
    assert float(terms['berhu']) == 0.0 and float(terms['beyond']) < 1e-8
    logit[0, 0, 0] = -20.0  # now the sky is called near: only the beyond term grows
    terms = DepthLoss(config)({'depth': depth, 'beyond_logit': logit}, gt)
    assert float(terms['berhu']) == 0.0 and float(terms['beyond']) == pytest.approx(5.0, 1e-4)
    with pytest.raises(ValueError, match="needs outputs\\['beyond_logit'\\]"):
        DepthLoss(config)({'depth': depth}, gt)


class PlantedMaps(BatchEstimator):
    """A backend whose network says 5 m everywhere and 'beyond range' on the left half."""

    def __init__(self) -> None:
        self.device = 'cpu'
        self.input_size = check_input_size((8, 16))
        self.canonical_focal = 100.0
        self.has_confidence = False
        self.has_beyond = True
        self.config = {'name': 'planted'}

    def _maps(self, batch, confidence):
        b, _, h, w = batch.shape
        beyond = torch.zeros(b, 1, h, w)
        beyond[..., : w // 2] = 1.0
        return torch.full((b, 1, h, w), 5.0), None, beyond


def test_estimator_publishes_inf_beyond_range_and_leaves_it_out_of_the_cloud():
    estimator = PlantedMaps()
    image = np.zeros((8, 16, 3), np.uint8)
    prediction, cloud = estimator.predict_points(image, 100.0, 100.0, 7.5, 3.5)
    assert np.isposinf(prediction.depth[:, :8]).all() and (prediction.depth[:, 8:] == 5.0).all()
    assert np.isnan(cloud[:, :8]).all() and np.isfinite(cloud[:, 8:]).all()
    assert 0.0 < BEYOND_THRESHOLD < 1.0


class UnsureMaps(PlantedMaps):
    """Columns: near 5 m and far 30 m, each with beyond-range probability 0.2, 0.4 and 0.6."""

    def _maps(self, batch, confidence):
        b, _, h, w = batch.shape
        depth = torch.tensor([5.0, 5.0, 5.0, 30.0, 30.0, 30.0]).repeat(b, 1, h, 1)
        beyond = torch.tensor([0.2, 0.4, 0.6, 0.2, 0.4, 0.6]).repeat(b, 1, h, 1)
        return depth, None, beyond


def test_an_unsure_head_calls_far_pixels_beyond_range_but_not_near_ones():
    assert BEYOND_THRESHOLD_FAR < 0.4 < BEYOND_THRESHOLD and 5.0 < BEYOND_FAR_DEPTH <= 30.0
    estimator = UnsureMaps()
    estimator.input_size = check_input_size((4, 6))
    estimator.canonical_focal = 100.0
    depth = estimator.predict(np.zeros((4, 6, 3), np.uint8), fx=100.0).depth
    # > 0.5 is beyond range at any depth; 0.4 only where the depth is far
    np.testing.assert_array_equal(depth[0], [5.0, 5.0, np.inf, 30.0, np.inf, np.inf])


def test_node_pipeline_publishes_inf_and_counts_the_share():
    pytest.importorskip('sensor_msgs')
    from std_msgs.msg import Header

    from mono_depth_ros.inference.outputs import OutputSettings
    from mono_depth_ros.ros.conversions import (
        image_to_numpy,
        numpy_to_image,
        pointcloud2_to_array,
        split_xyz_rgb,
    )
    from mono_depth_ros.ros.depth_messages import intrinsics_camera_info
    from mono_depth_ros.ros.pipeline import FramePipeline

    header = Header(frame_id='cam')
    image = numpy_to_image(np.full((8, 16, 3), 90, np.uint8), 'rgb8', header)
    info = intrinsics_camera_info((100.0, 100.0, 7.5, 3.5), (8, 16), header)
    settings = OutputSettings(cloud_stride=1, cloud_organized=False)
    result = FramePipeline(PlantedMaps(), settings).process(image, info, {'depth', 'points'})
    depth = image_to_numpy(result.messages['depth'])
    assert np.isposinf(depth[:, :8]).all() and (depth[:, 8:] == 5.0).all()  # +Inf, not NaN
    points, _ = split_xyz_rgb(pointcloud2_to_array(result.messages['points']))
    assert len(points) == 8 * 8 and np.all(points[:, 2] == 5.0)  # no beyond-range points
    assert result.beyond_fraction == pytest.approx(0.5)


@pytest.fixture(scope='module')
def beyond_model():
    """A small msfusion_r18 with the beyond-range head; its bias splits the image."""
    torch.manual_seed(0)
    config = load_model_config('msfusion_r18')
    config.update(beyond_range=True, input_size=[64, 192])
    model = build_model(config, load_pretrained=False).eval()
    return model


def test_every_backend_marks_the_same_pixels_beyond_range(beyond_model, tmp_path):
    from mono_depth_ros.inference.backends import create_estimator
    from mono_depth_ros.inference.onnx import export_onnx

    image = np.random.default_rng(3).integers(0, 256, (70, 200, 3), dtype=np.uint8)
    reference = create_estimator(copy.deepcopy(beyond_model), 'torch', device='cpu')
    with torch.no_grad():  # a bias that puts about half of this image beyond range
        probability = reference.model(torch.zeros(1, 3, 64, 192))['beyond']
        reference.model.beyond_head.conv.bias -= float(torch.logit(probability.median()))
    model = reference.model
    want = reference.predict(image).depth
    share = np.isposinf(want).mean()
    assert 0.05 < share < 0.95, share
    path = export_onnx(copy.deepcopy(model), tmp_path / 'beyond.onnx', (64, 192))
    for backend, source in (('fast', copy.deepcopy(model)), ('onnx', path)):
        have = create_estimator(source, backend, device='cpu').predict(image).depth
        inf_want, inf_have = np.isposinf(want), np.isposinf(have)
        assert (inf_want != inf_have).mean() < 1e-3, backend  # threshold ties may differ
        both = ~inf_want & ~inf_have
        np.testing.assert_allclose(have[both], want[both], rtol=1e-4)
