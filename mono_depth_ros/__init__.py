"""mono_depth_ros: metric monocular depth estimation for ROS 2."""

from importlib import import_module

__version__ = '0.1.0'

# Public functions, imported on first use so that `import mono_depth_ros` stays light.
_LAZY_EXPORTS = {
    'generate_depth_map': 'mono_depth_ros.datasets.kitti.ground_truth',
    'compute_depth_metrics': 'mono_depth_ros.core.metrics',
}

__all__ = ['__version__', *_LAZY_EXPORTS]


def __getattr__(name: str):
    """Import a public function from its module on first access (PEP 562)."""
    if name in _LAZY_EXPORTS:
        return getattr(import_module(_LAZY_EXPORTS[name]), name)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
