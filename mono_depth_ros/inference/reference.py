"""The reference backend ('torch'): the model's own forward pass, nothing else.

Each image is resized (bilinear) to the model's input_size and ImageNet-normalised; the model
runs under torch.inference_mode on the device of its parameters (autocast to fp16/bf16 on CUDA
when asked) and depth and confidence are resized (bilinear) back to the image's resolution.
The other backends are tested against this one.
"""

from collections.abc import Sequence

import torch
from torch import nn

from mono_depth_ros.inference.network import autocast_dtype, BatchEstimator, Maps, resolve_device


class ReferenceEstimator(BatchEstimator):
    """The DepthEstimator of the 'torch' backend: a model's full forward pass."""

    def __init__(self, model: nn.Module, device: str | torch.device = 'auto',
                 precision: str = 'fp32', input_size: Sequence[int] | None = None) -> None:
        self.device = self.tensor_device = resolve_device(device)
        self.autocast_dtype = autocast_dtype(precision, self.device)
        self.precision = precision
        self.model = model.to(self.device).eval()
        self._adopt_model(model, input_size)

    def _maps(self, batch: torch.Tensor, confidence: bool) -> Maps:
        """The model's forward pass under autocast when a reduced precision is set."""
        dtype = self.autocast_dtype
        with torch.autocast(self.device.type, dtype=dtype, enabled=dtype is not None):
            outputs = self.model(batch)
        conf = outputs.get('confidence') if confidence else None
        beyond = outputs.get('beyond')
        return (outputs['depth'].float(), None if conf is None else conf.float(),
                None if beyond is None else beyond.float())
