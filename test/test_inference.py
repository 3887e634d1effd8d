"""Tests of DepthEstimator: resolution, focal scaling by hand, confidence, devices, errors."""

import numpy as np
import pytest
import torch

from mono_depth_ros.inference.estimator import focal_scale, Prediction
from mono_depth_ros.inference.reference import ReferenceEstimator
from mono_depth_ros.networks import build_model, load_model_config

CANONICAL = 721.5377  # canonical_focal of the shipped configs (KITTI cam 2)
MID_DEPTH = float(np.sqrt(0.5 * 80.0))  # depth head output for a zero logit: 6.32456 m


@pytest.fixture(scope='module')
def constant_model():
    """A unet_r18 whose depth head outputs exactly MID_DEPTH everywhere."""
    model = build_model(load_model_config('unet_r18'), load_pretrained=False)
    with torch.no_grad():
        model.depth_head.conv.weight.zero_()
        model.depth_head.conv.bias.zero_()
    return model


@pytest.fixture(scope='module')
def msfusion():
    """A randomly initialised msfusion_r18 (has the confidence output)."""
    torch.manual_seed(0)
    return build_model(load_model_config('msfusion_r18'), load_pretrained=False)


def random_image(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A random RGB uint8 image."""
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_focal_scale_numbers():
    assert focal_scale(None, 1242, 1216, CANONICAL) == 1.0
    assert focal_scale(2 * CANONICAL, 1216, 1216, CANONICAL) == pytest.approx(2.0)
    # A 2432-wide image resized to 1216 halves its focal: 2·f_c there is canonical.
    assert focal_scale(2 * CANONICAL, 2432, 1216, CANONICAL) == pytest.approx(1.0)
    # KITTI's own camera at 1242 wide, resized to 1216: 1216 / 1242 = 0.979066.
    assert focal_scale(CANONICAL, 1242, 1216, CANONICAL) == pytest.approx(0.979066, abs=1e-6)
    for bad in (0.0, -5.0, float('nan'), 'x'):
        with pytest.raises(ValueError, match='fx must be a positive focal length'):
            focal_scale(bad, 100, 100, CANONICAL)


def test_depth_at_image_resolution_with_focal_scaling(constant_model):
    estimator = ReferenceEstimator(constant_model, device='cpu', input_size=(64, 96))
    assert estimator.device == torch.device('cpu')
    image = random_image(50, 96)
    plain = estimator.predict(image)
    assert isinstance(plain, Prediction)
    assert plain.depth.shape == (50, 96) and plain.depth.dtype == np.float32
    assert plain.confidence is None
    np.testing.assert_allclose(plain.depth, MID_DEPTH, rtol=1e-5)
    doubled = estimator.predict(image, fx=2 * CANONICAL)
    np.testing.assert_allclose(doubled.depth, 2 * MID_DEPTH, rtol=1e-5)
    wide = estimator.predict(random_image(30, 192), fx=CANONICAL)
    assert wide.depth.shape == (30, 192)
    np.testing.assert_allclose(wide.depth, 0.5 * MID_DEPTH, rtol=1e-5)


def test_predict_batch_several_cameras(constant_model):
    estimator = ReferenceEstimator(constant_model, device='cpu', input_size=(32, 64))
    images = [random_image(40, 64, 1), random_image(33, 128, 2)]
    results = estimator.predict_batch(images, [CANONICAL, 3 * CANONICAL])
    assert [r.depth.shape for r in results] == [(40, 64), (33, 128)]
    np.testing.assert_allclose(results[0].depth, MID_DEPTH, rtol=1e-5)
    np.testing.assert_allclose(results[1].depth, 1.5 * MID_DEPTH, rtol=1e-5)
    assert estimator.predict_batch([]) == []
    with pytest.raises(ValueError, match='2 images but 1 focal'):
        estimator.predict_batch(images, [CANONICAL])


def test_warm_up_runs_each_batch_size_once_at_the_input_size(constant_model, monkeypatch):
    estimator = ReferenceEstimator(constant_model, device='cpu', input_size=(32, 64))
    calls = []
    run = estimator._run
    monkeypatch.setattr(estimator, '_run', lambda images, *rest: calls.append(
        [image.shape for image in images]) or run(images, *rest))
    estimator.warm_up(batch_sizes=(2, 1, 2))
    assert calls == [[(32, 64, 3)], [(32, 64, 3)] * 2]


def test_outputs_match_the_model_run_by_hand(msfusion):
    estimator = ReferenceEstimator(msfusion, device='cpu', input_size=(64, 96))
    image = random_image(64, 96, 5)
    result = estimator.predict(image)
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        reference = msfusion.eval()((x - mean) / std)
    np.testing.assert_allclose(result.depth, reference['depth'][0, 0].numpy(), rtol=1e-5)
    np.testing.assert_allclose(result.confidence, reference['confidence'][0, 0].numpy(),
                               atol=1e-6)


def test_confidence_in_unit_range_at_image_resolution(msfusion):
    estimator = ReferenceEstimator(msfusion, device='cpu', input_size=(64, 96))
    result = estimator.predict(random_image(71, 130, 3), fx=500.0)
    assert result.confidence.shape == (71, 130) and result.confidence.dtype == np.float32
    assert 0.0 <= result.confidence.min() and result.confidence.max() <= 1.0
    scale = 500.0 * 96 / 130 / CANONICAL
    assert 0.5 * scale <= result.depth.min() and result.depth.max() <= 80.0 * scale


def test_confidence_off_and_points_of_the_reference(msfusion):
    from mono_depth_ros.core.geometry import backproject

    estimator = ReferenceEstimator(msfusion, device='cpu', input_size=(64, 96))
    image = random_image(50, 90, 4)
    full = estimator.predict(image, fx=300.0)
    lean = estimator.predict(image, fx=300.0, confidence=False)
    assert full.confidence is not None and lean.confidence is None
    np.testing.assert_array_equal(lean.depth, full.depth)
    intrinsics = (300.0, 290.0, 40.5, 20.0)
    low = float(np.median(full.depth))
    prediction, points = estimator.predict_points(image, *intrinsics, stride=3,
                                                  depth_range=(low, 80.0))
    np.testing.assert_array_equal(prediction.confidence, full.confidence)
    masked = np.where(full.depth >= low, full.depth, np.nan)
    np.testing.assert_array_equal(points, backproject(masked, *intrinsics, stride=3))
    assert points.shape == (17, 30, 3) and 0.3 < np.isnan(points[..., 2]).mean() < 0.7


def test_default_input_size_and_auto_device(constant_model):
    estimator = ReferenceEstimator(constant_model)
    assert estimator.input_size == (352, 1216)
    expected = 'cuda' if torch.cuda.is_available() else 'cpu'
    assert estimator.device.type == expected
    assert next(constant_model.parameters()).device.type == expected
    constant_model.to('cpu')


def test_reference_network_input_is_contiguous(msfusion):
    # the H×W×3 upload is channels_last; the reference runs the model on a plain NCHW batch, so
    # its numbers stay those of model(batch) (a channels_last batch rounds differently)
    estimator = ReferenceEstimator(msfusion, device='cpu', input_size=(64, 96))
    seen = []
    hook = msfusion.register_forward_pre_hook(lambda _, args: seen.append(
        (args[0].is_contiguous(), args[0].is_contiguous(memory_format=torch.channels_last))))
    depth = estimator.predict(random_image(64, 96)).depth
    hook.remove()
    assert seen == [(True, False)]
    batch = estimator_input(random_image(64, 96))
    with torch.no_grad():
        np.testing.assert_array_equal(depth, msfusion(batch)['depth'][0, 0].numpy())


def estimator_input(image: np.ndarray) -> torch.Tensor:
    """The reference preprocessing by hand: /255, ImageNet mean and std, NCHW (no resize)."""
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255.0
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    return ((x - mean) / std).contiguous()


def test_bad_arguments_are_named(constant_model):
    with pytest.raises(ValueError, match='precision must be one of'):
        ReferenceEstimator(constant_model, device='cpu', precision='int8')
    with pytest.raises(ValueError, match="precision 'fp16' needs a CUDA device"):
        ReferenceEstimator(constant_model, device='cpu', precision='fp16')
    with pytest.raises(ValueError, match='device must be'):
        ReferenceEstimator(constant_model, device='tpu')
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match='CUDA is not available'):
            ReferenceEstimator(constant_model, device='cuda')
    estimator = ReferenceEstimator(constant_model, device='cpu', input_size=(32, 32))
    with pytest.raises(ValueError, match='H×W×3 uint8 RGB, got float64'):
        estimator.predict(np.zeros((8, 8, 3)))
    with pytest.raises(ValueError, match=r'H×W×3 uint8 RGB, got uint8 \(8, 8\)'):
        estimator.predict(np.zeros((8, 8), np.uint8))
    with pytest.raises(ValueError, match='numpy array'):
        estimator.predict([[1, 2, 3]])


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
@pytest.mark.cuda
@pytest.mark.parametrize('precision', ['fp16', 'bf16'])
def test_reduced_precision_on_cuda_matches_fp32(msfusion, precision):
    image = random_image(64, 96, 9)
    ref = ReferenceEstimator(msfusion, device='cuda', input_size=(64, 96)).predict(image)
    low = ReferenceEstimator(msfusion, device='cuda', precision=precision,
                         input_size=(64, 96)).predict(image)
    assert low.depth.dtype == np.float32
    np.testing.assert_allclose(low.depth, ref.depth, rtol=0.05)
    msfusion.to('cpu')
