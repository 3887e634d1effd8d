"""The backend table: every inference backend registers here once, and is built from here.

The node's `backend` parameter, mono-depth-bag, mono-depth-bench, mono-depth-eval and the Python
API all read this table. A backend is a DepthEstimator class built as
`cls(source, device=..., precision=..., input_size=..., **options)`, where source is a model
(`source: 'model'`: a network, or a checkpoint for load_estimator) or an exported ONNX file
(`source: 'onnx'`). Classes are imported on first use, so reading the table is cheap.
"""

from collections.abc import Sequence
from dataclasses import dataclass
import importlib
import os
from typing import Any


@dataclass(frozen=True)
class Backend:
    """One inference backend: its class, what it runs, what it offers."""

    name: str
    target: str               # 'module:Class' of its DepthEstimator
    source: str               # 'model' (a network / .pt checkpoint) or 'onnx' (an .onnx export)
    description: str
    compiles: bool = False    # accepts compile=True (torch.compile)

    def estimator_class(self) -> type:
        """The DepthEstimator class (imported now)."""
        module, _, name = self.target.partition(':')
        return getattr(importlib.import_module(module), name)


BACKENDS: dict[str, Backend] = {backend.name: backend for backend in (
    Backend('torch', 'mono_depth_ros.inference.reference:ReferenceEstimator', 'model',
            "the reference: the model's own forward pass"),
    Backend('fast', 'mono_depth_ros.inference.fast:FastDepthEstimator', 'model',
            'folded BatchNorm, only the asked-for outputs; GPU preprocessing and CUDA graphs on '
            'CUDA; optionally torch.compile', compiles=True),
    Backend('onnx', 'mono_depth_ros.inference.onnx:OnnxDepthEstimator', 'onnx',
            'ONNX Runtime on an exported .onnx file (CPU, CUDA or TensorRT providers)'),
)}


def get_backend(name: str) -> Backend:
    """The table entry of a backend name; ValueError lists the names."""
    if name not in BACKENDS:
        raise ValueError(f'backend must be one of {tuple(BACKENDS)}, got {name!r}')
    return BACKENDS[name]


def create_estimator(source: Any, backend: str = 'torch', device: Any = 'auto',
                     precision: str = 'fp32', input_size: Sequence[int] | None = None,
                     compile: bool = False):  # noqa: A002 - torch.compile's word
    """A DepthEstimator of a backend for source (a model, or the .onnx path for 'onnx').

    compile=True (backend fast only) runs the network body under torch.compile.
    """
    spec = get_backend(backend)
    if compile and not spec.compiles:
        raise ValueError(f'compile applies to the fast backend only, not {backend!r}')
    options = {'compile': True} if compile else {}
    return spec.estimator_class()(source, device=device, precision=precision,
                                  input_size=input_size, **options)


def load_estimator(checkpoint: str | os.PathLike, backend: str = 'torch', device: Any = 'auto',
                   precision: str = 'fp32', input_size: Sequence[int] | None = None,
                   compile: bool = False):  # noqa: A002 - torch.compile's word
    """A DepthEstimator for a saved model in one call.

    checkpoint is a .pt file written by mono-depth-train (loaded strictly with
    networks.checkpoint.load_model) or, for backend 'onnx', an .onnx file from
    mono-depth-export. Missing or foreign files raise CheckpointError / OnnxExportError /
    FileNotFoundError naming the file.
    """
    spec = get_backend(backend)
    path = os.fspath(checkpoint)
    is_onnx = path.endswith('.onnx')
    if (spec.source == 'onnx') != is_onnx:
        want = 'an .onnx file written by mono-depth-export' if spec.source == 'onnx' \
            else 'a .pt checkpoint written by mono-depth-train'
        raise ValueError(f'backend {backend!r} runs {want}; got {path!r}'
                         + ('' if spec.source == 'onnx' else " (use backend 'onnx')"))
    if spec.source == 'onnx':
        source = path
    else:
        from mono_depth_ros.networks.checkpoint import load_model
        source = load_model(path, device='cpu')
    return create_estimator(source, backend, device, precision, input_size, compile)


def release_device_memory(device: Any) -> None:
    """Give memory of dropped estimators back: collect garbage, then empty torch's CUDA cache
    when the device is a GPU (an ONNX Runtime session frees its own on deletion)."""
    import gc

    gc.collect()
    if str(device).startswith('cuda'):
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
