"""Start and stop mono_depth_node in its own process (for the demo, the benchmark and tests)."""

from collections.abc import Mapping, Sequence
import os
from pathlib import Path
import signal
import subprocess
import sys
from typing import Any


def node_command(namespace: str, params: Mapping[str, Any],
                 remaps: Sequence[str] = ()) -> list[str]:
    """Command line running `python -m mono_depth_ros.ros.node` in namespace with parameters."""
    args = [sys.executable, '-m', 'mono_depth_ros.ros.node', '--ros-args',
            '-r', f'__ns:={namespace}']
    for remap in remaps:
        args += ['-r', remap]
    for name, value in params.items():
        text = str(value).lower() if isinstance(value, bool) else str(value)
        args += ['-p', f'{name}:={text}']
    return args


def start_node(namespace: str, params: Mapping[str, Any], log_path: Path,
               remaps: Sequence[str] = ()) -> subprocess.Popen:
    """Start the node with unbuffered logging to log_path; the process owns the log file."""
    env = dict(os.environ, PYTHONUNBUFFERED='1', RCUTILS_LOGGING_BUFFERED_STREAM='0')
    log = open(log_path, 'w')  # noqa: SIM115 - owned by the process until it exits
    return subprocess.Popen(node_command(namespace, params, remaps), stdout=log,
                            stderr=subprocess.STDOUT, env=env)


def stop_node(process: subprocess.Popen, timeout: float = 15.0) -> int:
    """SIGINT the node, kill it if it has not exited after timeout seconds; its exit code."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode
