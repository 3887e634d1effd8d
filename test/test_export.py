"""ONNX export: ONNX Runtime (CPU) matches PyTorch; the file runs on its own; bad files fail.

Tolerance: max relative depth difference 1e-4 between ONNX Runtime fp32 CPU and the PyTorch
reference fp32 CPU (measured ~1e-6), and 1e-4 absolute on confidence. TensorRT and CUDA
execution providers are checked only where ONNX Runtime has them (skipped otherwise).
"""

import copy

import numpy as np
import pytest
import torch

from mono_depth_ros.inference.estimator import DepthEstimator
from mono_depth_ros.inference.onnx import (
    available_backends,
    export_onnx,
    OnnxDepthEstimator,
    OnnxExportError,
    read_metadata,
)
from mono_depth_ros.inference.reference import ReferenceEstimator
from mono_depth_ros.networks import build_model, load_model_config
from mono_depth_ros.networks.checkpoint import save_checkpoint
from mono_depth_ros.tools import export_onnx as export_tool

TOLERANCE = 1e-4
EXPORT_SIZE = (96, 320)


def small_model(name: str, size: tuple[int, int]) -> torch.nn.Module:
    """A model config's network with fixed random weights at a small input size."""
    torch.manual_seed(0)
    config = load_model_config(name)
    config['input_size'] = list(size)
    return build_model(config, load_pretrained=False).eval()


def rel_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b) / np.abs(a)))


@pytest.fixture(scope='module')
def msfusion():
    return small_model('msfusion_r18', EXPORT_SIZE)


@pytest.fixture(scope='module')
def dynamic_onnx(msfusion, tmp_path_factory):
    path = tmp_path_factory.mktemp('onnx') / 'msfusion_r18.onnx'
    return export_onnx(copy.deepcopy(msfusion), path, EXPORT_SIZE, dynamic=True)


@pytest.fixture(scope='module')
def images():
    rng = np.random.default_rng(1)
    return [rng.integers(0, 256, (110, 370, 3), dtype=np.uint8),
            rng.integers(0, 256, (96, 320, 3), dtype=np.uint8)]


@pytest.mark.slow
def test_onnx_runtime_matches_pytorch(msfusion, dynamic_onnx, images):
    reference = ReferenceEstimator(copy.deepcopy(msfusion), device='cpu')
    onnx = OnnxDepthEstimator(dynamic_onnx, device='cpu')
    fxs = [650.0, None]
    for want, have in zip(reference.predict_batch(images, fxs), onnx.predict_batch(images, fxs),
                          strict=True):
        assert have.depth.shape == want.depth.shape
        assert rel_diff(want.depth, have.depth) < TOLERANCE
        assert np.max(np.abs(want.confidence - have.confidence)) < TOLERANCE
    # Dynamic height and width: another network input size runs and still matches.
    other = (128, 416)
    want = ReferenceEstimator(copy.deepcopy(msfusion), device='cpu', input_size=other)
    have = OnnxDepthEstimator(dynamic_onnx, device='cpu', input_size=other)
    assert rel_diff(want.predict(images[0]).depth, have.predict(images[0]).depth) < TOLERANCE


def test_metadata_makes_the_file_self_contained(msfusion, dynamic_onnx):
    meta = read_metadata(dynamic_onnx)
    assert meta['input_size'] == list(EXPORT_SIZE) and meta['dynamic'] is True
    assert (meta['min_depth'], meta['max_depth']) == (msfusion.min_depth, msfusion.max_depth)
    assert meta['canonical_focal'] == msfusion.config['canonical_focal']
    assert meta['has_confidence'] is True and meta['model_config']['name'] == 'msfusion_r18'
    onnx = OnnxDepthEstimator(dynamic_onnx)
    assert onnx.input_size == EXPORT_SIZE and onnx.device == 'cpu'


def test_points_from_onnx_estimator(dynamic_onnx, images):
    from mono_depth_ros.core.geometry import backproject

    onnx = OnnxDepthEstimator(dynamic_onnx)
    prediction, points = onnx.predict_points(images[1], 300.0, 310.0, 150.5, 50.0, stride=4)
    assert points.shape == (24, 80, 3)
    np.testing.assert_array_equal(
        points, backproject(prediction.depth, 300.0, 310.0, 150.5, 50.0, stride=4))
    low, high = np.quantile(prediction.depth, [0.3, 0.7])  # range mask, no confidence
    lean, masked = onnx.predict_points(images[1], 300.0, 310.0, 150.5, 50.0, stride=4,
                                       depth_range=(low, high), confidence=False)
    assert lean.confidence is None and prediction.confidence is not None
    np.testing.assert_array_equal(lean.depth, prediction.depth)
    inside = (prediction.depth >= low) & (prediction.depth <= high)
    want = backproject(np.where(inside, prediction.depth, np.nan), 300.0, 310.0, 150.5, 50.0,
                       stride=4)
    np.testing.assert_array_equal(masked, want)
    assert 0.2 < np.isnan(masked[..., 2]).mean() < 0.8


def test_cli_exports_a_checkpoint_fixed_size(tmp_path, images, capsys):
    model = small_model('unet_r18', (64, 224))
    checkpoint = save_checkpoint(tmp_path / 'unet.pt', model)
    out = tmp_path / 'unet.onnx'
    assert export_tool.main(['--checkpoint', str(checkpoint), '--out', str(out), '--fixed',
                             '--check']) == 0
    printed = capsys.readouterr().out
    assert 'within tolerance' in printed and out.is_file()
    onnx = OnnxDepthEstimator(out)
    prediction = onnx.predict(images[0])
    assert prediction.confidence is None and prediction.depth.shape == images[0].shape[:2]
    with pytest.raises(ValueError, match='fixed size'):
        OnnxDepthEstimator(out, input_size=(96, 320))
    with pytest.raises(ValueError, match='batches of exactly 1'):
        onnx.predict_batch(images)
    assert not list(tmp_path.glob('*.tmp'))


def test_bad_files_fail_clearly(tmp_path):
    with pytest.raises(FileNotFoundError, match='missing.onnx'):
        OnnxDepthEstimator(tmp_path / 'missing.onnx')
    junk = tmp_path / 'junk.onnx'
    junk.write_bytes(b'not a model')
    with pytest.raises(OnnxExportError, match='junk.onnx'):
        OnnxDepthEstimator(junk)
    assert export_tool.main(['--checkpoint', str(tmp_path / 'none.pt'),
                             '--out', str(tmp_path / 'x.onnx')]) == 1


def test_foreign_onnx_without_metadata_is_rejected(tmp_path):
    path = tmp_path / 'plain.onnx'
    torch.onnx.export(torch.nn.Conv2d(3, 1, 1), (torch.zeros(1, 3, 4, 4),), str(path),
                      dynamo=False)
    with pytest.raises(OnnxExportError, match='mono-depth-export'):
        read_metadata(path)


@pytest.mark.cuda
@pytest.mark.parametrize('backend', ['cuda', 'tensorrt'])
def test_gpu_execution_providers(backend, dynamic_onnx, msfusion, images):
    if not available_backends()[backend] or not torch.cuda.is_available():
        pytest.skip(f'ONNX Runtime here has no {backend} execution provider (CPU-only install)')
    reference = ReferenceEstimator(copy.deepcopy(msfusion), device='cpu')
    onnx = OnnxDepthEstimator(dynamic_onnx, device=backend)
    tolerance = 5e-3 if backend == 'cuda' else 2e-2  # TF32 / TensorRT kernel choices
    assert rel_diff(reference.predict(images[1]).depth, onnx.predict(images[1]).depth) < tolerance


def test_create_estimator_dispatches_to_every_backend(msfusion, dynamic_onnx, images):
    from mono_depth_ros.inference.backends import create_estimator
    from mono_depth_ros.inference.fast import FastDepthEstimator

    torch_path = create_estimator(copy.deepcopy(msfusion), 'torch', device='cpu')
    fast = create_estimator(copy.deepcopy(msfusion), 'fast', device='cpu')
    onnx = create_estimator(dynamic_onnx, 'onnx', device='cpu')
    assert isinstance(torch_path, ReferenceEstimator) and isinstance(fast, FastDepthEstimator)
    assert isinstance(onnx, OnnxDepthEstimator)
    assert all(isinstance(e, DepthEstimator) for e in (torch_path, fast, onnx))  # one interface
    want = torch_path.predict(images[1], fx=500.0).depth
    for estimator in (fast, onnx):
        assert rel_diff(want, estimator.predict(images[1], fx=500.0).depth) < TOLERANCE
    with pytest.raises(ValueError, match='backend must be one of'):
        create_estimator(msfusion, 'tensorflow')
    with pytest.raises(ValueError, match='fp32'):
        create_estimator(dynamic_onnx, 'onnx', precision='fp16')
