"""mono_depth_ros: metric monocular depth estimation for ROS 2.

The Python API for using the estimator without ROS (each name is imported on first use, so
`import mono_depth_ros` stays light):

    build_model(config, load_pretrained=True)    a network from a model config (networks)
    load_model_config(name_or_path)              a checked model config (models/*.yaml)
    create_estimator(model, backend='torch', device='auto', precision='fp32', input_size=None)
    load_estimator(checkpoint, backend='torch', device='auto', precision='fp32')
                                                 a DepthEstimator: predict, predict_batch,
                                                 predict_points (inference)
    generate_depth_map(calib_dir, velo_path, cam=2, vel_depth=False)
                                                 KITTI lidar ground truth (datasets.kitti)
    compute_depth_metrics(gt, pred, crop='garg') abs_rel ... a3 (core.metrics)
"""

from importlib import import_module

__version__ = '0.1.0'

# Public functions, imported on first use so that `import mono_depth_ros` stays light.
_LAZY_EXPORTS = {
    'build_model': 'mono_depth_ros.networks.build',
    'load_model_config': 'mono_depth_ros.networks.build',
    'create_estimator': 'mono_depth_ros.inference.backends',
    'load_estimator': 'mono_depth_ros.inference.backends',
    'generate_depth_map': 'mono_depth_ros.datasets.kitti.ground_truth',
    'compute_depth_metrics': 'mono_depth_ros.core.metrics',
}

__all__ = ['__version__', *_LAZY_EXPORTS]


def __getattr__(name: str):
    """Import a public function from its module on first access (PEP 562)."""
    if name in _LAZY_EXPORTS:
        return getattr(import_module(_LAZY_EXPORTS[name]), name)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')


def __dir__() -> list[str]:
    """The public names (for tab completion)."""
    return sorted(__all__)
