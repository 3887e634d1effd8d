"""Size and cost of a network: parameters and FLOPs (what mono-depth-model-info prints)."""

import os

import torch
from torch.utils.flop_counter import FlopCounterMode

from mono_depth_ros.networks.build import build_model, load_model_config
from mono_depth_ros.networks.checkpoint import load_checkpoint


def count_parameters(model: torch.nn.Module) -> int:
    """Number of parameters (weights and biases; BN running statistics excluded)."""
    return sum(p.numel() for p in model.parameters())


def count_flops(model: torch.nn.Module, height: int, width: int) -> int:
    """FLOPs of one forward pass on a 1×3×height×width input, as FlopCounterMode counts them:
    convolutions and matrix products, 2 FLOPs per multiply-accumulate; elementwise ops,
    normalisation, pooling and interpolation are not counted."""
    model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, 3, height, width))
    return int(counter.get_total_flops())


def model_info(name: str, height: int, width: int, flops: bool = True) -> dict:
    """Parameters, FLOPs and heads of one named or YAML model config, or of the network a
    checkpoint (.pt, e.g. a release) holds."""
    if name.endswith('.pt') or (os.path.isfile(name) and not name.endswith(('.yaml', '.yml'))):
        config = load_checkpoint(name)['model_config']
    else:
        config = load_model_config(name)
    model = build_model(config, load_pretrained=False)
    info = {'name': config['name'], 'architecture': config['architecture'],
            'encoder': f'ResNet-{config["encoder"]["depth"]}',
            'parameters': count_parameters(model), 'confidence': model.has_confidence,
            'input_size': [height, width]}
    if flops:
        info['gflops'] = count_flops(model, height, width) / 1e9
    return info
