"""ONNX export of a depth network, and an ONNX Runtime estimator with the predict interface.

The exported graph is the network itself: input 'image' (B×3×H×W float32, ImageNet-normalised),
outputs 'depth' (B×1×H×W metres) and, for models with them, 'confidence' (bin head) and
'beyond' (beyond-range probability). Everything
the estimator needs besides the weights (depth range, input size, canonical focal, the model
config) is stored in the ONNX metadata, so an .onnx file runs on its own. Pre- and
post-processing are those of every batch backend (inference.network), on the host.
TensorRT runs through ONNX Runtime's TensorRT execution provider where it is installed.
"""

import json
import os
from pathlib import Path
import warnings

import numpy as np
import torch
from torch import nn

from mono_depth_ros.inference.estimator import check_input_size
from mono_depth_ros.inference.network import BatchEstimator, Maps

METADATA_KEY = 'mono_depth_ros'
FORMAT = 'mono_depth_ros.onnx/1'
DEFAULT_OPSET = 17
# ONNX Runtime execution providers for each backend name, best first.
PROVIDERS = {
    'cpu': ['CPUExecutionProvider'],
    'cuda': ['CUDAExecutionProvider', 'CPUExecutionProvider'],
    'tensorrt': ['TensorrtExecutionProvider', 'CUDAExecutionProvider', 'CPUExecutionProvider'],
}


class OnnxExportError(RuntimeError):
    """An ONNX file cannot be written or is not a mono_depth_ros export."""


def output_names(has_confidence: bool, has_beyond: bool) -> list[str]:
    """The graph's output names, in order: depth[, confidence][, beyond]."""
    return ['depth', *(['confidence'] if has_confidence else []),
            *(['beyond'] if has_beyond else [])]


class _GraphOutputs(nn.Module):
    """The network with its dict output flattened to (depth[, confidence][, beyond])."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.names = output_names(bool(model.has_confidence), bool(model.has_beyond))

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The outputs named by self.names."""
        out = self.model(image)
        return tuple(out[name] for name in self.names)


def export_metadata(model: nn.Module, input_size: tuple[int, int], dynamic: bool,
                    batch: int) -> dict:
    """What an exported file must carry to run alone: format, shapes, range, focal, config."""
    return {
        'format': FORMAT, 'input_size': list(input_size), 'dynamic': bool(dynamic),
        'batch': int(batch),
        'min_depth': float(model.min_depth), 'max_depth': float(model.max_depth),
        'canonical_focal': float(model.config['canonical_focal']),
        'has_confidence': bool(model.has_confidence), 'has_beyond': bool(model.has_beyond),
        'model_config': model.config,
    }


def export_onnx(model: nn.Module, path: str | os.PathLike,
                input_size: tuple[int, int] | None = None, dynamic: bool = True,
                batch: int = 1, opset: int = DEFAULT_OPSET) -> Path:
    """Write model as ONNX (traced at input_size; batch, height and width dynamic if asked).

    The file is written next to path and renamed into place, so a failed export leaves nothing.
    Returns the path.
    """
    import onnx

    path = Path(path)
    size = tuple(int(v) for v in (input_size or model.config['input_size']))
    if len(size) != 2 or min(size) <= 0 or batch < 1:
        raise ValueError(f'need input_size [H, W] > 0 and batch >= 1, got {size}, {batch}')
    wrapper = _GraphOutputs(model.cpu().eval())
    names = wrapper.names
    axes = {0: 'batch', 2: 'height', 3: 'width'}
    dynamic_axes = {name: axes for name in ['image', *names]} if dynamic else None
    tmp = path.with_name(path.name + '.tmp')
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter('ignore')  # the TorchScript exporter's deprecation and trace notes
        torch.onnx.export(wrapper, (torch.zeros(batch, 3, *size),), str(tmp), dynamo=False,
                          input_names=['image'], output_names=names, opset_version=opset,
                          dynamic_axes=dynamic_axes, do_constant_folding=True)
    proto = onnx.load(str(tmp))
    entry = proto.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps(export_metadata(model, size, dynamic, batch))
    onnx.checker.check_model(proto)
    onnx.save(proto, str(tmp))
    os.replace(tmp, path)
    return path


def read_metadata(path: str | os.PathLike) -> dict:
    """The mono_depth_ros metadata of an exported file (OnnxExportError if absent or foreign)."""
    import onnx

    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as error:  # noqa: BLE001 - any parse failure means "not an ONNX model"
        raise OnnxExportError(f'{path}: not a readable ONNX file ({error})') from error
    props = {entry.key: entry.value for entry in proto.metadata_props}
    if METADATA_KEY not in props:
        raise OnnxExportError(f'{path}: ONNX file has no {METADATA_KEY!r} metadata; export it '
                              'with mono-depth-export')
    meta = json.loads(props[METADATA_KEY])
    if meta.get('format') != FORMAT:
        raise OnnxExportError(f'{path}: unsupported export format {meta.get("format")!r}, '
                              f'expected {FORMAT!r}')
    return meta


def available_backends() -> dict[str, bool]:
    """Which ONNX Runtime backends (cpu, cuda, tensorrt) this installation can run."""
    import onnxruntime as ort

    have = set(ort.get_available_providers())
    return {name: providers[0] in have for name, providers in PROVIDERS.items()}


class OnnxDepthEstimator(BatchEstimator):
    """The DepthEstimator of the 'onnx' backend: an exported .onnx file under ONNX Runtime.

    device: auto, cpu, cuda or tensorrt (ONNX Runtime execution providers); precision: fp32
    only (the exported graph's).
    """

    def __init__(self, path: str | os.PathLike, device: str = 'cpu', precision: str = 'fp32',
                 input_size: tuple[int, int] | None = None, threads: int | None = None):
        import onnxruntime as ort

        if precision != 'fp32':
            raise ValueError(f'the onnx backend runs the exported fp32 graph; got {precision!r}')
        if not Path(path).is_file():
            raise FileNotFoundError(f'ONNX model not found: {path}')
        self.meta = read_metadata(path)
        device = str(device)
        backend = 'cuda' if device == 'auto' and available_backends()['cuda'] else device
        backend = 'cpu' if backend == 'auto' else backend
        if backend not in PROVIDERS:
            raise ValueError(f'device must be one of auto, {", ".join(PROVIDERS)}; got {device!r}')
        if not available_backends()[backend]:
            raise ValueError(f'ONNX Runtime here has no {PROVIDERS[backend][0]} (available: '
                             f'{ort.get_available_providers()}); use device="cpu"')
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = int(threads)
        self.session = ort.InferenceSession(str(path), options, providers=PROVIDERS[backend])
        self.device = backend
        size = tuple(input_size) if input_size else tuple(self.meta['input_size'])
        if not self.meta['dynamic'] and size != tuple(self.meta['input_size']):
            raise ValueError(f'{path} was exported for the fixed size {self.meta["input_size"]}; '
                             f'cannot run at {list(size)} (export with dynamic axes)')
        self.input_size = check_input_size(size)
        self.has_confidence = bool(self.meta['has_confidence'])
        self.has_beyond = bool(self.meta.get('has_beyond', False))  # older exports: no head
        self.min_depth, self.max_depth = self.meta['min_depth'], self.meta['max_depth']
        self.canonical_focal = float(self.meta['canonical_focal'])
        self.config = self.meta['model_config']

    def _maps(self, batch: torch.Tensor, confidence: bool) -> Maps:
        """The exported graph on a host batch (only the asked-for outputs are fetched)."""
        if not self.meta['dynamic'] and len(batch) != self.meta['batch']:
            raise ValueError(f'this ONNX model was exported for batches of exactly '
                             f'{self.meta["batch"]}, got {len(batch)} images')
        names = output_names(confidence, self.has_beyond)
        outputs = dict(zip(names, (torch.from_numpy(out) for out in
                                   self.session.run(names, {'image': batch.numpy()})),
                           strict=True))
        return outputs['depth'], outputs.get('confidence'), outputs.get('beyond')


def onnx_parity(model: nn.Module, path: str | os.PathLike, image: np.ndarray,
                input_size: tuple[int, int]) -> float:
    """Max relative depth difference of ONNX Runtime and the reference backend on one image."""
    import copy

    from mono_depth_ros.inference.reference import ReferenceEstimator

    reference = ReferenceEstimator(copy.deepcopy(model), device='cpu', input_size=input_size)
    onnx = OnnxDepthEstimator(path, device='cpu', input_size=input_size)
    a, b = reference.predict(image).depth, onnx.predict(image).depth
    return float(np.max(np.abs(a - b) / np.abs(a)))
