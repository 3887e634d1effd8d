"""Depth networks: the multi-scale fusion network, the FCRN and U-Net baselines, build_model."""

from mono_depth_ros.networks.build import (
    available_models,
    build_model,
    load_model_config,
    validate_model_config,
)
from mono_depth_ros.networks.encoder import PretrainedWeightsError
from mono_depth_ros.networks.heads import depth_to_bin, DepthModel, log_bin_edges

__all__ = [
    'available_models', 'build_model', 'depth_to_bin', 'DepthModel', 'load_model_config',
    'log_bin_edges', 'PretrainedWeightsError', 'validate_model_config',
]
