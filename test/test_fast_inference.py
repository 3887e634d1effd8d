"""The fast path gives the reference path's depth; its torch back-projection is geometry's.

Tolerances: fp32 on the CPU, max relative depth difference 1e-4 (measured ~1e-6: the two paths
differ only in float rounding). On CUDA (skipped without it): fp32 5e-3 (cuDNN may use TF32),
fp16 2e-2, bf16 5e-2, each against the reference at the same precision on the same GPU.
"""

import copy

import numpy as np
import pytest
import torch

from mono_depth_ros.core.geometry import backproject
from mono_depth_ros.inference.fast import backproject_torch, cpp_compiler, FastDepthEstimator
from mono_depth_ros.inference.reference import ReferenceEstimator
from mono_depth_ros.networks import build_model, load_model_config

CPU_FP32_TOLERANCE = 1e-4
CUDA_TOLERANCE = {'fp32': 5e-3, 'fp16': 2e-2, 'bf16': 5e-2}
INPUT_SIZE = (64, 224)
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(),
                                reason='no CUDA device here: the GPU path cannot run')


def small_model(name: str) -> torch.nn.Module:
    """A model config's network with fixed random weights at a small input size."""
    torch.manual_seed(0)
    config = load_model_config(name)
    config['input_size'] = list(INPUT_SIZE)
    return build_model(config, load_pretrained=False).eval()


@pytest.fixture(scope='module')
def msfusion():
    return small_model('msfusion_r18')


@pytest.fixture(scope='module')
def fast(msfusion):
    return FastDepthEstimator(copy.deepcopy(msfusion), device='cpu')


@pytest.fixture(scope='module')
def images():
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (75, 250, 3), dtype=np.uint8),
            rng.integers(0, 256, (64, 224, 3), dtype=np.uint8)]


def rel_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b) / np.abs(a)))


def test_fast_cpu_matches_reference(msfusion, fast, images):
    reference = ReferenceEstimator(copy.deepcopy(msfusion), device='cpu')
    fxs = [500.0, None]
    expected = reference.predict_batch(images, fxs)
    got = fast.predict_batch(images, fxs)
    for want, have, image in zip(expected, got, images, strict=True):
        assert have.depth.shape == image.shape[:2] and have.depth.dtype == np.float32
        assert rel_diff(want.depth, have.depth) < CPU_FP32_TOLERANCE
        assert np.max(np.abs(want.confidence - have.confidence)) < CPU_FP32_TOLERANCE
    single = fast.predict(images[0], fx=500.0)
    assert rel_diff(expected[0].depth, single.depth) < CPU_FP32_TOLERANCE


def test_fast_cpu_options_keep_numerics(images):
    model = small_model('unet_r18')  # no bin head: confidence is None
    want = ReferenceEstimator(copy.deepcopy(model), device='cpu').predict(images[0])
    keys = set(model.state_dict())
    for options in ({'channels_last': False}, {'fold_bn': False}):
        fast = FastDepthEstimator(model, device='cpu', **options)
        have = fast.predict(images[0])
        assert have.confidence is None
        assert rel_diff(want.depth, have.depth) < CPU_FP32_TOLERANCE, options
    assert set(model.state_dict()) == keys  # folding works on a private copy
    def batch_norms(module):
        return sum(isinstance(m, torch.nn.BatchNorm2d) for m in module.modules())
    assert batch_norms(model) > 10  # the ResNet-18 encoder alone has 20
    assert batch_norms(FastDepthEstimator(model, device='cpu').model) == 0  # each follows a conv


def test_network_input_memory_format_follows_channels_last(msfusion, images):
    seen = []
    for options in ({'channels_last': False}, {'channels_last': True}, {}):
        fast = FastDepthEstimator(copy.deepcopy(msfusion), device='cpu', **options)
        hook = fast.model.body.register_forward_pre_hook(lambda _, args: seen.append(
            (args[0].is_contiguous(), args[0].is_contiguous(memory_format=torch.channels_last))))
        fast.predict(images[0])
        hook.remove()
    # the H×W×3 upload must not leak channels_last into a contiguous network, nor the reverse;
    # by default the CPU network runs channels_last (no network of models/ is slower so)
    assert seen == [(True, False), (False, True), (False, True)]


def test_focal_scaling_hand_checked(msfusion, fast, images):
    image = images[0]  # 250 wide; input 224 wide
    canonical = msfusion.config['canonical_focal']
    fx = 2.0 * canonical * 250 / 224  # twice the canonical focal at the input width: depth × 2
    plain, scaled = fast.predict(image), fast.predict(image, fx=fx)
    np.testing.assert_allclose(scaled.depth, 2.0 * plain.depth, rtol=1e-6)
    np.testing.assert_array_equal(scaled.confidence, plain.confidence)


def test_bad_inputs_are_named(msfusion, fast, images):
    with pytest.raises(ValueError, match='image 1'):
        fast.predict_batch([images[0], images[0].astype(np.float32)])
    with pytest.raises(ValueError, match='focal lengths'):
        fast.predict_batch(images, [500.0])
    with pytest.raises(ValueError, match='fx'):
        fast.predict(images[0], fx=-1.0)
    with pytest.raises(ValueError, match='CUDA'):
        FastDepthEstimator(copy.deepcopy(msfusion), device='cpu', precision='fp16')
    assert fast.predict_batch([]) == []


def test_backproject_torch_hand_checked_and_equal_to_geometry():
    depth = np.array([[2.0, 0.0, 4.0, np.nan, 1.0],
                      [-1.0, 3.0, np.inf, 5.0, 2.5],
                      [1.5, 2.0, 6.0, 7.0, 8.0],
                      [9.0, 0.5, 1.0, 2.0, 3.0]], dtype=np.float32)
    fx, fy, cx, cy = 100.0, 80.0, 1.25, 2.5  # off-centre principal point
    points = backproject_torch(torch.from_numpy(depth), fx, fy, cx, cy).numpy()
    # pixel (u=3, v=1), depth 5: x = (3 - 1.25)·5/100, y = (1 - 2.5)·5/80
    np.testing.assert_allclose(points[1, 3], [0.0875, -0.09375, 5.0], rtol=1e-6)
    assert np.isnan(points[0, 1]).all() and np.isnan(points[1, 0]).all()  # 0 and negative
    assert np.isnan(points[1, 2]).all() and np.isnan(points[0, 3]).all()  # inf and NaN
    for stride in (1, 2, 3):
        want = backproject(depth, fx, fy, cx, cy, stride=stride)
        have = backproject_torch(torch.from_numpy(depth), fx, fy, cx, cy, stride=stride).numpy()
        assert have.shape == want.shape
        np.testing.assert_array_equal(have, want)  # NaNs in the same places, values bit-equal
    batch = backproject_torch(torch.from_numpy(np.stack([depth, 2 * depth])), fx, fy, cx, cy)
    np.testing.assert_array_equal(batch[1].numpy(), backproject(2 * depth, fx, fy, cx, cy))
    with pytest.raises(ValueError, match='stride'):
        backproject_torch(torch.from_numpy(depth), fx, fy, cx, cy, stride=0)
    with pytest.raises(ValueError, match='focal'):
        backproject_torch(torch.from_numpy(depth), -fx, fy, cx, cy)


def test_predict_points_is_backproject_of_masked_depth(msfusion, fast, images):
    intrinsics = (400.0, 380.0, 130.5, 30.25)
    prediction, points = fast.predict_points(images[0], *intrinsics, stride=2)
    np.testing.assert_array_equal(points, backproject(prediction.depth, *intrinsics, stride=2))
    low, high = np.quantile(prediction.depth, [0.25, 0.75])
    prediction, points = fast.predict_points(images[0], *intrinsics, stride=3,
                                             depth_range=(low, high))
    masked = np.where((prediction.depth >= low) & (prediction.depth <= high),
                      prediction.depth, np.nan)
    want = backproject(masked, *intrinsics, stride=3)
    np.testing.assert_array_equal(points, want)
    assert 0.2 < np.isnan(points[..., 2]).mean() < 0.8  # the range really removed points


def test_confidence_off_skips_it_and_keeps_depth(msfusion, fast, images):
    full = fast.predict_batch(images, [500.0, None])
    lean = fast.predict_batch(images, [500.0, None], confidence=False)
    for want, have in zip(full, lean, strict=True):
        assert want.confidence is not None and have.confidence is None
        np.testing.assert_array_equal(have.depth, want.depth)
    intrinsics = (400.0, 380.0, 130.5, 30.25)
    prediction, points = fast.predict_points(images[0], *intrinsics, confidence=False)
    assert prediction.confidence is None
    np.testing.assert_array_equal(prediction.depth, fast.predict(images[0], fx=400.0).depth)
    np.testing.assert_array_equal(points, backproject(prediction.depth, *intrinsics))


@pytest.mark.skipif(cpp_compiler() is None, reason='torch.compile on the CPU needs a C++ '
                    'compiler and there is none here')
def test_compiled_body_matches_reference(msfusion, images):
    compiled = FastDepthEstimator(copy.deepcopy(msfusion), device='cpu', compile=True)
    from torch._dynamo.eval_frame import OptimizedModule

    assert isinstance(compiled.model.body, OptimizedModule)  # the body really runs compiled
    assert not isinstance(FastDepthEstimator(copy.deepcopy(msfusion), device='cpu').model.body,
                          OptimizedModule)
    want = ReferenceEstimator(copy.deepcopy(msfusion), device='cpu').predict(images[1], fx=500.0)
    for _ in range(2):  # the first call compiles, the second runs the compiled code
        have = compiled.predict(images[1], fx=500.0)
        assert rel_diff(want.depth, have.depth) < CPU_FP32_TOLERANCE
        assert np.max(np.abs(want.confidence - have.confidence)) < CPU_FP32_TOLERANCE


@needs_cuda
@pytest.mark.cuda
@pytest.mark.parametrize('precision', ['fp32', 'fp16', 'bf16'])
def test_fast_cuda_matches_reference(msfusion, images, precision):
    if precision == 'bf16' and not torch.cuda.is_bf16_supported():
        pytest.skip('this GPU has no bf16')
    reference = ReferenceEstimator(copy.deepcopy(msfusion), device='cuda', precision=precision)
    fast = FastDepthEstimator(copy.deepcopy(msfusion), device='cuda', precision=precision)
    for _ in range(2):  # first call captures the CUDA graph, second replays it
        got = fast.predict_batch(images, [500.0, None])
    for want, have in zip(reference.predict_batch(images, [500.0, None]), got, strict=True):
        assert rel_diff(want.depth, have.depth) < CUDA_TOLERANCE[precision]


@needs_cuda
@pytest.mark.cuda
def test_cuda_graph_replay_follows_new_inputs(msfusion, images):
    fast = FastDepthEstimator(copy.deepcopy(msfusion), device='cuda')
    eager = FastDepthEstimator(copy.deepcopy(msfusion), device='cuda', cuda_graphs=False)
    first = fast.predict(images[1]).depth
    other = np.ascontiguousarray(images[1][::-1])
    replayed = fast.predict(other).depth  # same shape: replays the captured graph
    assert fast._graphs and all(g is not None for g in fast._graphs.values())
    assert rel_diff(eager.predict(other).depth, replayed) < CUDA_TOLERANCE['fp32']
    assert rel_diff(first, replayed) > 1e-3
    prediction, points = fast.predict_points(images[0], 300.0, 300.0, 120.0, 40.0, stride=2)
    want = backproject(prediction.depth, 300.0, 300.0, 120.0, 40.0, stride=2)
    np.testing.assert_allclose(points, want, rtol=1e-6, equal_nan=True)
