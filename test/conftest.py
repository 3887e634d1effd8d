"""Shared test set-up: an isolated DDS domain per test run, and paths to the repository."""

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]

# Keep DDS traffic of this test run on this machine and apart from other runs.
os.environ.setdefault('ROS_DOMAIN_ID', str(1 + os.getpid() % 100))
os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')


@pytest.fixture(scope='session')
def repo_root() -> Path:
    """The repository root."""
    return REPO_ROOT


# A small synthetic KITTI-format world: 1 drive × 5 frames (3 train, 1 val, 1 test), seed 0.
SYNTH_WORLD = {'drives': 1, 'frames': 5, 'seed': 0, 'val_fraction': 0.2, 'test_fraction': 0.2}


@pytest.fixture(scope='session')
def synth_world(tmp_path_factory) -> Path:
    """Root of a small synthetic KITTI raw world (mono_depth_ros.datasets.synth), made once."""
    from mono_depth_ros.datasets.synth import generate_world

    root = tmp_path_factory.mktemp('synth_world')
    generate_world(root, **SYNTH_WORLD)
    return root


# A small random-init msfusion_r18 (network input 96×320) for the node and bag-tool tests.
TINY_INPUT_SIZE = (96, 320)


@pytest.fixture(scope='session')
def tiny_checkpoint(tmp_path_factory) -> str:
    """Path of a random-init msfusion_r18 checkpoint with a 96×320 input, saved once per run."""
    import torch

    from mono_depth_ros.networks import build_model, load_model_config
    from mono_depth_ros.networks.checkpoint import save_checkpoint

    config = load_model_config('msfusion_r18')
    scale = TINY_INPUT_SIZE[1] / config['input_size'][1]
    config['canonical_focal'] = config['canonical_focal'] * scale  # same camera, smaller input
    config['input_size'] = list(TINY_INPUT_SIZE)
    torch.manual_seed(0)
    model = build_model(config, load_pretrained=False).eval()
    path = tmp_path_factory.mktemp('checkpoint') / 'tiny_msfusion_r18.pt'
    save_checkpoint(path, model)
    return str(path)


@pytest.fixture
def one_torch_thread():
    """Run torch on one thread: on the shared 2-core machine two threads ran 2-25x slower."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def rclpy_context():
    """A fresh rclpy context for constructing nodes in this process."""
    import rclpy
    from rclpy.context import Context

    ctx = Context()
    rclpy.init(context=ctx)
    yield ctx
    rclpy.shutdown(context=ctx)
