"""mono_depth_node refuses to start on a missing model or a bad parameter, saying what to set."""

import os
from pathlib import Path
import subprocess
import sys

import pytest

pytest.importorskip('rclpy')
from node_harness import (  # noqa: E402
    Harness,
    image_msg,
    info_msg,
    make_image,
    make_node,
    stop_node,
)

pytestmark = pytest.mark.ros


def run_node(*params: str, timeout: float = 60.0) -> subprocess.CompletedProcess:
    """Run the node with -p params and return once it exits (it must exit by itself)."""
    args = [sys.executable, '-m', 'mono_depth_ros.ros.node', '--ros-args']
    for param in params:
        args += ['-p', param]
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout,
                          env=dict(os.environ, PYTHONUNBUFFERED='1'))


def test_missing_checkpoint_ends_the_process_with_a_message():
    result = run_node('checkpoint:=/nonexistent/model.pt')
    assert result.returncode == 1, result.stdout + result.stderr
    assert "cannot start: checkpoint file not found: '/nonexistent/model.pt'" in result.stderr
    assert 'set the parameter checkpoint' in result.stderr


def test_without_a_checkpoint_parameter_the_node_runs_the_shipped_model(rclpy_context, repo_root,
                                                                         one_torch_thread):
    from mono_depth_ros.core.paths import DEFAULT_MODEL

    node = make_node(rclpy_context, device='cpu')
    try:
        assert node.state == 'active'
        shipped = repo_root / 'models' / DEFAULT_MODEL
        assert node.model_name.endswith(f'({shipped})'), node.model_name
        assert str(node.estimator.device) == 'cpu'
    finally:
        node.destroy_node()


@pytest.mark.slow
def test_the_installed_node_with_no_arguments_publishes_depth_and_points(tmp_path, repo_root):
    from mono_depth_ros.core.paths import DEFAULT_MODEL

    script = Path(sys.executable).parent / 'mono_depth_node'
    assert script.is_file(), f'{script} is missing: run make setup'
    namespace, log_path = '/no_arguments', tmp_path / 'node.log'
    with open(log_path, 'w') as log:  # only device:=cpu, as a machine without a GPU needs
        process = subprocess.Popen(
            [str(script), '--ros-args', '-r', f'__ns:={namespace}', '-p', 'device:=cpu'],
            stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ, PYTHONUNBUFFERED='1'))
    harness = Harness(namespace)
    try:
        harness.wait_for_node(process, timeout=120.0)
        size, stamp = (96, 320), (1750000000, 0)
        image = image_msg(make_image(*size), 'rgb8', stamp)
        info = info_msg((250.0, 250.0, 159.5, 47.5), size, stamp)
        depth = harness.send_until_output(process, image, info, timeout=120.0)
        assert (depth.height, depth.width, depth.encoding) == (*size, '32FC1')
        assert harness.spin_until(lambda: harness.outputs_with_stamp('points', stamp), 30.0,
                                  process)
    finally:
        harness.close()
        stop_node(process)
    shipped = repo_root / 'models' / DEFAULT_MODEL
    assert f'checkpoint not set: the default model {shipped}' in log_path.read_text()


@pytest.mark.parametrize('params, message', [
    ({'allow_random_weights': True, 'device': 'gpu'},
     "'device' = 'gpu' is not allowed; set it to one of: auto, cuda, cpu"),
    ({'allow_random_weights': True, 'cloud_stride': 0}, "parameter 'cloud_stride'"),
    ({'allow_random_weights': True, 'input_height': 100}, "parameter 'input_height'"),
    ({'allow_random_weights': True, 'devise': 'cpu'}, "unknown parameter(s) ['devise']"),
    ({'allow_random_weights': True, 'min_depth': 50.0, 'max_depth': 10.0},
     'must be below max_depth'),
    ({'allow_random_weights': True, 'publish_points': 'yes'}, "parameter 'publish_points'"),
    ({'allow_random_weights': True, 'cameras': ['cam_a', 'cam_a']},
     "parameter 'cameras' lists ['cam_a'] more than once"),
    ({'allow_random_weights': True, 'cameras': 'cam_a'}, "parameter 'cameras'"),
])
def test_bad_parameters_fail_at_start_saying_what_to_set(rclpy_context, params, message):
    from mono_depth_ros.ros.params import ParamError

    with pytest.raises(ParamError) as error:
        make_node(rclpy_context, **params)
    assert message in str(error.value)
