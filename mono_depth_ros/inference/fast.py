"""The fast inference path: preprocessing, inference and back-projection on the model's device.

On CUDA the whole frame stays on the GPU: each uint8 image is uploaded from a pinned host buffer
with a non-blocking copy, resized and ImageNet-normalised there, the batch runs in fp16/bf16
autocast and channels_last with cudnn.benchmark, and for a fixed set of image sizes the whole
pipeline is replayed as one CUDA graph; depth is resized back, focal-scaled and back-projected
on the GPU, and only the requested outputs are copied back into pinned host buffers. On the CPU
the same steps run under inference_mode in channels_last with BatchNorm folded into the
convolutions (torch.fx), only the outputs asked for (no bin expectation; no bin head at all
without confidence), and the bin head's softmax in cache-sized strips: that is where the CPU
path gains over the reference.
torch.compile of the body is an option on either device.

Same interface and arithmetic as the reference (inference.reference.ReferenceEstimator): depth
agrees within the tolerances test/test_fast_inference.py pins (fp32: 1e-4 relative).
"""

from collections.abc import Callable, Sequence
import copy
import functools
import os
import shutil
import warnings

import numpy as np
import torch

from mono_depth_ros.core import stages
from mono_depth_ros.core.geometry import check_intrinsics, check_stride
from mono_depth_ros.inference.estimator import (
    DepthEstimator,
    PointsRequest,
    Prediction,
)
from mono_depth_ros.inference.network import (
    autocast_dtype,
    image_maps,
    Maps,
    normalize_resize,
    resolve_device,
)

# Per image: depth (+inf beyond range) and confidence (or None) at the image resolution.
ImageMaps = tuple[torch.Tensor, torch.Tensor | None]
# On the CPU the bin head and its softmax run on strips of about this many pixels (K logits of
# a strip fit in cache: ~1.7× faster than at once on this project's 2-core CPU, same numbers).
STRIP_PIXELS = 20480


def backproject_torch(depth: torch.Tensor, fx: float, fy: float, cx: float, cy: float,
                      stride: int = 1,
                      depth_range: tuple[float, float] | None = None) -> torch.Tensor:
    """Torch twin of geometry.backproject, on the depth's device: H×W → ceil(H/s)×ceil(W/s)×3.

    Same convention and float32 arithmetic: x = (u - cx)·z / fx, y = (v - cy)·z / fy at pixels
    (u, v) = (s·j, s·i); NaN where depth is not finite and > 0, or outside depth_range
    (inclusive; None keeps every depth). A leading batch dimension is allowed (B×H×W →
    B×H'×W'×3, one set of intrinsics).
    """
    if depth.dim() not in (2, 3) or depth.numel() == 0:
        raise ValueError(f'depth must be a non-empty H×W or B×H×W tensor, '
                         f'got {tuple(depth.shape)}')
    check_intrinsics(fx, fy, cx, cy)
    stride = check_stride(stride)
    z = depth[..., ::stride, ::stride].float()
    keep = torch.isfinite(z) & (z > 0)
    if depth_range is not None:  # at the cloud's pixels only
        keep &= (z >= depth_range[0]) & (z <= depth_range[1])
    z = torch.where(keep, z, torch.full_like(z, float('nan')))
    height, width = depth.shape[-2:]
    u = torch.arange(0, width, stride, device=z.device, dtype=torch.float32)
    v = torch.arange(0, height, stride, device=z.device, dtype=torch.float32)
    x = (u[None, :] - np.float32(cx)) * z / np.float32(fx)
    y = (v[:, None] - np.float32(cy)) * z / np.float32(fy)
    return torch.stack([x, y, z], dim=-1)


def fold_batch_norm(model: torch.nn.Module) -> torch.nn.Module:
    """A copy of model with each eval BatchNorm of its body folded into the conv before it.

    Uses torch.fx (the body must trace; the input checks in DepthModel.forward stay outside).
    Where tracing fails the model is returned unchanged, with a warning.
    """
    from torch.fx.experimental.optimization import fuse

    folded = copy.deepcopy(model).eval()
    try:
        folded.body = fuse(folded.body)
    except Exception as error:  # noqa: BLE001 - any trace failure means: run unfolded
        warnings.warn(f'cannot fold BatchNorm into convolutions ({type(error).__name__}: '
                      f'{error}); running the model unchanged', RuntimeWarning, stacklevel=2)
        return model
    return folded


def cpp_compiler() -> str | None:
    """The C++ compiler torch.compile's CPU code generation would use, or None."""
    return os.environ.get('CXX') or shutil.which('g++') or shutil.which('clang++') \
        or shutil.which('c++')


class _CudaGraph:
    """A function of fixed-shape device tensors, captured once as a CUDA graph and replayed."""

    def __init__(self, fn: Callable, static_inputs: list[torch.Tensor], warmup: int = 3):
        self.static_inputs = static_inputs
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(warmup):  # cudnn.benchmark chooses its kernels here, not in capture
                fn(*static_inputs)
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.static_outputs = fn(*static_inputs)

    def __call__(self, *inputs: torch.Tensor):
        """Copy inputs into the captured buffers, replay, return the captured outputs."""
        for static, value in zip(self.static_inputs, inputs, strict=True):
            static.copy_(value, non_blocking=True)
        self.graph.replay()
        return self.static_outputs


class FastDepthEstimator(DepthEstimator):
    """The DepthEstimator of the 'fast' backend (see the module docstring).

    fold_bn: fold BatchNorm into the preceding convolutions (a private copy of the model;
    fewer kernels). cuda_graphs: on CUDA, replay one CUDA graph per set of image sizes (eager,
    with a warning, if capture fails). channels_last: run network and input channels_last
    (NHWC, oneDNN's preferred layout: on the CPU no network of models/ slower, up to 20 % faster)
    or contiguous (NCHW). compile: torch.compile the network body (inductor, frozen weights,
    static shapes); the first call of each batch size compiles (about a minute on this 2-core
    CPU).
    """

    def __init__(self, model: torch.nn.Module, device: str = 'auto', precision: str = 'fp32',
                 input_size: Sequence[int] | None = None, channels_last: bool = True,
                 cuda_graphs: bool = True, fold_bn: bool = True,
                 compile: bool = False):  # noqa: A002 - the word users know from torch.compile
        self.device = resolve_device(device)
        self.precision, self.autocast_dtype = precision, autocast_dtype(precision, self.device)
        self._adopt_model(model, input_size)
        cuda = self.device.type == 'cuda'
        self.channels_last = bool(channels_last)
        self.model = (fold_batch_norm(model) if fold_bn else model).to(self.device).eval()
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        if compile and not cuda and not cpp_compiler():
            raise ValueError('compile on the CPU needs a C++ compiler (g++ or clang++ on PATH, '
                             'or CXX set); install one or run without compile')
        if compile:
            self.model.body = torch.compile(self.model.body, dynamic=False,
                                            options={'freezing': True})
        if cuda:
            torch.backends.cudnn.benchmark = True
        self.use_graphs = cuda and cuda_graphs
        self._graphs: dict[tuple, _CudaGraph | None] = {}
        self._host_buffers: dict[tuple, torch.Tensor] = {}

    def _network_maps(self, x: torch.Tensor, confidence: bool) -> Maps:
        """Depth, confidence (None unless asked and available) and beyond-range probability
        (None without the head) at network resolution."""
        # The uint8 upload is H×W×3, so x arrives channels_last: convert to the network's format
        # (a mismatched input would carry its layout into the network and slow it).
        x = x.contiguous(memory_format=torch.channels_last if self.channels_last
                         else torch.contiguous_format)
        # cache_enabled=False: required inside CUDA graph capture, harmless elsewhere.
        with torch.autocast(self.device.type, dtype=self.autocast_dtype,
                            enabled=self.autocast_dtype is not None, cache_enabled=False):
            strip_rows = 0 if self.device.type == 'cuda' else max(1, STRIP_PIXELS // x.shape[-1])
            depth, confidence, beyond = self.model.predict_maps(x, confidence, strip_rows)
        return (depth.float(), None if confidence is None else confidence.float(),
                None if beyond is None else beyond.float())

    def _pipeline(self, confidence: bool, *inputs: torch.Tensor) -> list[ImageMaps]:
        """Device uint8 1×H×W×3 images and B focal factors → per-image depth, confidence."""
        images, scales = inputs[:-1], inputs[-1]
        marks = self.device.type == 'cpu'  # on CUDA the stages are asynchronous (one graph)
        batch = torch.cat([normalize_resize(image, self.input_size) for image in images])
        if marks:
            stages.mark('preprocess')
        depth, confidence, beyond = self._network_maps(batch, confidence)
        if marks:
            stages.mark('network')
        maps = [image_maps(depth[i:i + 1], None if confidence is None else confidence[i:i + 1],
                           None if beyond is None else beyond[i:i + 1],
                           tuple(image.shape[1:3]), scales[i])
                for i, image in enumerate(images)]
        if marks:
            stages.mark('post: resize')
        return maps

    def _host(self, key: tuple, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
        """A reusable host buffer (pinned on CUDA) for one role and shape."""
        key = (*key, shape, dtype)
        if key not in self._host_buffers:
            self._host_buffers[key] = torch.empty(shape, dtype=dtype,
                                                  pin_memory=self.device.type == 'cuda')
        return self._host_buffers[key]

    def _upload(self, images: Sequence[np.ndarray]) -> list[torch.Tensor]:
        """Each image as a 1×H×W×3 uint8 device tensor (via a pinned buffer on CUDA)."""
        if self.device.type == 'cpu':
            return [torch.from_numpy(np.ascontiguousarray(image))[None] for image in images]
        uploaded = []
        for i, image in enumerate(images):
            host = self._host(('in', i), (1, *image.shape), torch.uint8)
            host.numpy()[0] = image
            uploaded.append(host.to(self.device, non_blocking=True))
        return uploaded

    def _infer(self, inputs: list[torch.Tensor], confidence: bool) -> list[ImageMaps]:
        """Run the pipeline, through the CUDA graph of these image sizes when enabled."""
        pipeline = functools.partial(self._pipeline, confidence)
        if not self.use_graphs:
            return pipeline(*inputs)
        key = (confidence, *(tuple(t.shape) for t in inputs))
        if key not in self._graphs:
            try:
                self._graphs[key] = _CudaGraph(pipeline, [t.clone() for t in inputs])
            except RuntimeError as error:
                warnings.warn(f'CUDA graph capture failed for input shapes {key}, running '
                              f'eagerly: {error}', RuntimeWarning, stacklevel=3)
                self._graphs[key] = None
        graph = self._graphs[key]
        return pipeline(*inputs) if graph is None else graph(*inputs)

    def _download(self, key: tuple, tensor: torch.Tensor) -> np.ndarray:
        """Start copying a device tensor to a host buffer; valid after the stream syncs."""
        if self.device.type == 'cpu':
            return tensor.numpy()
        host = self._host(key, tuple(tensor.shape), tensor.dtype)
        host.copy_(tensor, non_blocking=True)
        return host.numpy()

    def _run(self, images: list[np.ndarray], scales: list[float], confidence: bool,
             points: PointsRequest | None) -> tuple[list[Prediction], np.ndarray | None]:
        """Predictions for images (one network batch); the cloud of image 0 when asked."""
        with torch.inference_mode():
            factors = torch.tensor(scales, dtype=torch.float32).to(self.device)
            maps = self._infer([*self._upload(images), factors], confidence)
            if self.device.type == 'cuda' and stages.active() is not None:
                torch.cuda.current_stream(self.device).synchronize()
                stages.mark('preprocess + network')  # upload, resize, network, resize back
            cloud = None
            if points is not None:
                intrinsics, stride, depth_range = points
                cloud = self._download(('points',), backproject_torch(
                    maps[0][0], *intrinsics, stride=stride, depth_range=depth_range))
                stages.mark('post: back-project')
            host = [(self._download(('depth', i), depth),
                     None if conf is None else self._download(('conf', i), conf))
                    for i, (depth, conf) in enumerate(maps)]
            if self.device.type == 'cuda':
                torch.cuda.current_stream(self.device).synchronize()
        if self.device.type == 'cuda':  # reused pinned buffers: the caller gets copies
            host = [(depth.copy(), None if conf is None else conf.copy()) for depth, conf in host]
            cloud = None if cloud is None else cloud.copy()
        stages.mark('post: download')
        return [Prediction(depth, conf) for depth, conf in host], cloud
