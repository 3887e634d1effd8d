"""A TensorRT engine built from an exported .onnx file, with the predict interface.

TensorRT's own Python API (the `tensorrt` wheel, e.g. tensorrt-cu13) parses the ONNX graph that
mono-depth-export writes and builds an engine for one input size (fp32, or fp16 where the
builder offers it); buffers are torch CUDA tensors, so no other CUDA binding is needed. Pre- and
post-processing are those of every batch backend (inference.network), on the GPU. Used by
`make gpu-check` to measure TensorRT's speed and its accuracy against the eager model.
"""

import os
from pathlib import Path

import torch

from mono_depth_ros.inference.estimator import check_input_size
from mono_depth_ros.inference.network import BatchEstimator, Maps
from mono_depth_ros.inference.onnx import output_names, read_metadata

TENSORRT_PRECISIONS = ('fp32', 'fp16')
WORKSPACE_BYTES = 2 << 30


class TensorRTError(RuntimeError):
    """TensorRT is missing, or could not parse or build the ONNX graph."""


def import_tensorrt():
    """The tensorrt module; TensorRTError says how to install it when it is missing."""
    try:
        import tensorrt
    except ImportError as error:
        raise TensorRTError('TensorRT is not installed: `make gpu-check` installs it '
                            '(requirements/gpu.txt: tensorrt-cu13)') from error
    return tensorrt


def torch_dtype(trt, dtype) -> torch.dtype:
    """The torch dtype of a TensorRT tensor dtype."""
    table = {trt.float32: torch.float32, trt.float16: torch.float16}
    if hasattr(trt, 'bfloat16'):
        table[trt.bfloat16] = torch.bfloat16
    if dtype not in table:
        raise TensorRTError(f'unsupported TensorRT output dtype {dtype}')
    return table[dtype]


def build_engine(path: str | os.PathLike, input_shape: tuple[int, int, int, int],
                 precision: str = 'fp32') -> bytes:
    """A serialised TensorRT engine of an .onnx file for one B×3×H×W input shape."""
    trt = import_tensorrt()
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(Path(path).read_bytes()):
        errors = '; '.join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise TensorRTError(f'TensorRT could not parse {path}: {errors}')
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, WORKSPACE_BYTES)
    if precision == 'fp16':
        if not hasattr(trt.BuilderFlag, 'FP16'):
            raise TensorRTError('this TensorRT builds strongly typed networks only: fp16 needs '
                                'an fp16 ONNX export; use precision fp32')
        config.set_flag(trt.BuilderFlag.FP16)
    profile = builder.create_optimization_profile()
    profile.set_shape('image', input_shape, input_shape, input_shape)
    config.add_optimization_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise TensorRTError(f'TensorRT could not build an engine for {path} at {input_shape}')
    return bytes(serialized)


class TensorRTDepthEstimator(BatchEstimator):
    """A DepthEstimator running a TensorRT engine built from a mono-depth-export .onnx file.

    device: cuda only; precision: fp32 or fp16 (TensorRT chooses fp16 kernels where allowed);
    batch: the images per call the engine is built for.
    """

    def __init__(self, path: str | os.PathLike, device: str = 'cuda', precision: str = 'fp32',
                 input_size: tuple[int, int] | None = None, batch: int = 1):
        if precision not in TENSORRT_PRECISIONS:
            raise ValueError(f'precision must be one of {TENSORRT_PRECISIONS}, got {precision!r}')
        if str(device) not in ('cuda', 'auto') or not torch.cuda.is_available():
            raise TensorRTError(f'TensorRT needs a CUDA device (device={device!r}, CUDA '
                                f'available: {torch.cuda.is_available()})')
        if not Path(path).is_file():
            raise FileNotFoundError(f'ONNX model not found: {path}')
        trt = import_tensorrt()
        self.meta = read_metadata(path)
        size = tuple(input_size) if input_size else tuple(self.meta['input_size'])
        self.input_size = check_input_size(size)
        self.batch = int(batch)
        self.device = 'cuda'
        self.tensor_device = torch.device('cuda')
        self.precision = precision
        self.has_confidence = bool(self.meta['has_confidence'])
        self.has_beyond = bool(self.meta.get('has_beyond', False))
        self.min_depth, self.max_depth = self.meta['min_depth'], self.meta['max_depth']
        self.canonical_focal = float(self.meta['canonical_focal'])
        self.config = self.meta['model_config']
        shape = (self.batch, 3, *self.input_size)
        self._trt = trt
        self.engine = trt.Runtime(trt.Logger(trt.Logger.WARNING)).deserialize_cuda_engine(
            build_engine(path, shape, precision))
        self.context = self.engine.create_execution_context()
        self.context.set_input_shape('image', shape)
        self._outputs = {
            name: torch.empty(tuple(self.context.get_tensor_shape(name)), device='cuda',
                              dtype=torch_dtype(trt, self.engine.get_tensor_dtype(name)))
            for name in output_names(self.has_confidence, self.has_beyond)}

    def _maps(self, batch: torch.Tensor, confidence: bool) -> Maps:
        """The engine on a CUDA batch of exactly the built batch size."""
        if len(batch) != self.batch:
            raise ValueError(f'this TensorRT engine was built for batches of {self.batch}, '
                             f'got {len(batch)} images')
        image = batch.to('cuda', torch.float32).contiguous()
        self.context.set_tensor_address('image', image.data_ptr())
        for name, tensor in self._outputs.items():
            self.context.set_tensor_address(name, tensor.data_ptr())
        stream = torch.cuda.current_stream()
        if not self.context.execute_async_v3(stream.cuda_stream):
            raise TensorRTError('TensorRT execution failed')
        stream.synchronize()
        out = {name: tensor.float().clone() for name, tensor in self._outputs.items()}
        return out['depth'], out.get('confidence') if confidence else None, out.get('beyond')
