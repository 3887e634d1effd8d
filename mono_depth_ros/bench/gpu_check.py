"""The checks of `make gpu-check`: each runs on its own and ends as one row of the report.

A row is {'check', 'status' (pass, fail or skip), 'detail', and numbers}. A check that raises
becomes a failed row with the error, so one broken part (a missing TensorRT, a provider that
does not load) never hides the others. Without CUDA the GPU-only checks are skipped with the
reason and the rest run on the CPU (that is what `make test` runs).
"""

from collections.abc import Callable
import copy
import os
from pathlib import Path
import re
import subprocess
import sys
import time

import numpy as np
import torch

from mono_depth_ros.timing.latency import summarize_latency
from mono_depth_ros.timing.model_timing import (
    bench_image,
    build_bench_model,
    relative_difference,
)

STATUSES = ('pass', 'fail', 'skip')
# Largest max relative depth difference against the eager fp32 model that passes, per path.
TOLERANCE = {'onnx_cuda': 5e-3, 'tensorrt_fp32': 2e-2, 'tensorrt_fp16': 5e-2}


def row(check: str, status: str, detail: str = '', **numbers) -> dict:
    """One report row."""
    if status not in STATUSES:
        raise ValueError(f'status must be one of {STATUSES}, got {status!r}')
    return {'check': check, 'status': status, 'detail': detail, **numbers}


def guarded(check: str, function: Callable[[], dict]) -> dict:
    """function's row, or a failed row naming the exception it raised."""
    start = time.perf_counter()
    try:
        result = function()
    except Exception as error:  # noqa: BLE001 - a check's failure is a row of the report
        result = row(check, 'fail', f'{type(error).__name__}: {error}')
    result.setdefault('seconds', round(time.perf_counter() - start, 1))
    return result


def environment() -> dict:
    """What the check runs on: torch, CUDA, the GPU, ONNX Runtime providers, TensorRT."""
    info = {'python': sys.version.split()[0], 'torch': torch.__version__,
            'cuda': torch.version.cuda, 'cuda_available': torch.cuda.is_available()}
    if torch.cuda.is_available():
        info['gpu'] = torch.cuda.get_device_name(0)
        info['bf16'] = torch.cuda.is_bf16_supported()
    try:
        import onnxruntime
        info['onnxruntime'] = onnxruntime.__version__
        info['onnxruntime_providers'] = onnxruntime.get_available_providers()
    except ImportError:
        info['onnxruntime'] = None
    try:
        import tensorrt
        info['tensorrt'] = tensorrt.__version__
    except ImportError:
        info['tensorrt'] = None
    return info


def pytest_counts(text: str) -> dict[str, int]:
    """passed / failed / skipped / error counts of pytest's summary line."""
    counts = {key: 0 for key in ('passed', 'failed', 'skipped', 'errors', 'deselected')}
    for number, word in re.findall(r'(\d+) (passed|failed|skipped|errors?|deselected)', text):
        counts['errors' if word.startswith('error') else word] += int(number)
    return counts


def cuda_tests(repo_root: str | os.PathLike, log_path: str | os.PathLike) -> dict:
    """The test suite's CUDA tests (marker `cuda`); skipped as a whole without CUDA."""
    command = [sys.executable, '-m', 'pytest', '-q', '-p', 'no:cacheprovider', '-m', 'cuda',
               '-rs', str(Path(repo_root) / 'test')]
    done = subprocess.run(command, cwd=repo_root, capture_output=True, text=True, check=False)
    Path(log_path).write_text(done.stdout + done.stderr)
    counts = pytest_counts(done.stdout.strip().splitlines()[-1] if done.stdout.strip() else '')
    detail = ', '.join(f'{v} {k}' for k, v in counts.items() if v and k != 'deselected')
    if done.returncode not in (0, 5) or counts['failed'] or counts['errors']:
        return row('CUDA tests', 'fail', f'{detail or "pytest failed"} (log: {log_path})',
                   **counts)
    status = 'pass' if counts['passed'] else 'skip'
    return row('CUDA tests', status, detail + ('' if counts['passed'] else ' (no CUDA here)'),
               **counts)


def timed_calls(call: Callable[[], object], iters: int, warmup: int) -> dict:
    """Latency summary of iters calls after warmup untimed ones (CUDA synchronised)."""
    for _ in range(warmup):
        call()
    times = []
    for _ in range(iters):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        start = time.perf_counter()
        call()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append((time.perf_counter() - start) * 1000.0)
    return summarize_latency(times)


def eager_depth(model: torch.nn.Module, image: np.ndarray, device: str,
                input_size: tuple[int, int]) -> np.ndarray:
    """The eager fp32 model's depth of image: what every export is compared with."""
    from mono_depth_ros.inference.reference import ReferenceEstimator

    estimator = ReferenceEstimator(copy.deepcopy(model), device=device, input_size=input_size)
    return estimator.predict(image).depth


def export_path(model: torch.nn.Module, input_size: tuple[int, int], workdir: Path) -> Path:
    """A fixed-size fp32 ONNX export of model in workdir (made once)."""
    from mono_depth_ros.inference.onnx import export_onnx

    path = workdir / f'{model.config["name"]}_{input_size[0]}x{input_size[1]}.onnx'
    if not path.is_file():
        export_onnx(copy.deepcopy(model), path, input_size, dynamic=False)
    return path


def onnx_check(model_name: str, input_size: tuple[int, int], device: str, workdir: Path,
               iters: int = 10, warmup: int = 2) -> dict:
    """ONNX Runtime on an export of the model (CUDA provider on a GPU), against eager fp32."""
    from mono_depth_ros.inference.onnx import available_backends, OnnxDepthEstimator

    name = f'ONNX Runtime {device.upper()} provider'
    if device == 'cuda' and not available_backends()['cuda']:
        return row(name, 'fail' if torch.cuda.is_available() else 'skip',
                   'ONNX Runtime here has no CUDAExecutionProvider (onnxruntime-gpu: '
                   'requirements/gpu.txt)')
    model = build_bench_model(model_name)
    image = bench_image(input_size, seed=1)
    want = eager_depth(model, image, 'cuda' if device == 'cuda' else 'cpu', input_size)
    estimator = OnnxDepthEstimator(export_path(model, input_size, workdir), device=device)
    diff = relative_difference(want, estimator.predict(image).depth)
    latency = timed_calls(lambda: estimator.predict(image), iters, warmup)
    tolerance = TOLERANCE['onnx_cuda']
    return row(name, 'pass' if diff <= tolerance else 'fail',
               f'max rel. diff {diff:.1e} vs eager fp32 (tolerance {tolerance:.0e})',
               model=model_name, input_size=list(input_size), max_rel_diff=diff,
               p50_ms=latency['p50_ms'], p99_ms=latency['p99_ms'])


def tensorrt_check(model_name: str, input_size: tuple[int, int], precision: str, workdir: Path,
                   iters: int = 10, warmup: int = 2) -> dict:
    """A TensorRT engine of the model's ONNX export, against the eager fp32 model on CUDA."""
    from mono_depth_ros.inference.tensorrt import TensorRTDepthEstimator

    name = f'TensorRT engine {precision}'
    if not torch.cuda.is_available():
        return row(name, 'skip', 'no CUDA here')
    model = build_bench_model(model_name)
    image = bench_image(input_size, seed=1)
    want = eager_depth(model, image, 'cuda', input_size)
    start = time.perf_counter()
    estimator = TensorRTDepthEstimator(export_path(model, input_size, workdir),
                                       precision=precision)
    build_s = time.perf_counter() - start
    diff = relative_difference(want, estimator.predict(image).depth)
    latency = timed_calls(lambda: estimator.predict(image), iters, warmup)
    tolerance = TOLERANCE[f'tensorrt_{precision}']
    return row(name, 'pass' if diff <= tolerance else 'fail',
               f'max rel. diff {diff:.1e} vs eager fp32 (tolerance {tolerance:.0e}); '
               f'engine built in {build_s:.0f} s', model=model_name,
               input_size=list(input_size), max_rel_diff=diff, build_s=build_s,
               p50_ms=latency['p50_ms'], p99_ms=latency['p99_ms'])


def bench_check(precision: str, device: str, size: str, models: list[str], out_dir: Path,
                node_frames: int, quick: bool = False) -> dict:
    """mono-depth-bench at one precision: model-only and node end to end; rows kept."""
    import json

    name = f'mono-depth-bench {precision}'
    if precision != 'fp32' and device != 'cuda':
        return row(name, 'skip', f'{precision} needs CUDA')
    if precision == 'bf16' and not torch.cuda.is_bf16_supported():
        return row(name, 'skip', 'this GPU has no bf16')
    out = out_dir / f'bench_{precision}'
    command = [sys.executable, '-m', 'mono_depth_ros.tools.bench', '--device', device,
               '--precision', precision, '--sizes', size, '--models', *models,
               '--node-backends', 'fast', '--node-frames', str(node_frames), '--out', str(out)]
    command += ['--quick', '--no-node'] if quick else []  # quick: model-only, tiny
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    (out_dir / f'bench_{precision}.log').write_text(done.stdout + done.stderr)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ['no output']
        return row(name, 'fail', f'exit {done.returncode}: {tail[0]}')
    results = json.loads((out / 'bench.json').read_text())
    fast = {r['model']: r for r in results['model'] if r['backend'] == 'fast'}
    node = {r['model']: r for r in results['node']}
    summary = '; '.join(f'{m}: model {fast[m]["p50_ms"]:.1f} ms p50'
                        + (f', node {node[m]["p50_ms"]:.1f}/{node[m]["p99_ms"]:.1f} ms p50/p99'
                           f'{own_cost(node[m])}' if m in node else '') for m in fast)
    return row(name, 'pass', summary, report=str(out / 'bench.md'), model=results['model'],
               node=results['node'], pipeline=results.get('pipeline', []))


# The node's stages that are the network's work (CPU: apart; CUDA: one synchronised graph).
NETWORK_STAGES = ('preprocess', 'network', 'preprocess + network')


def own_cost(node_row: dict) -> str:
    """', of which the network X ms and the node's own cost Y ms' from a node row's stages
    ('' without them)."""
    stages = node_row.get('stages_p50_ms') or {}
    if not stages:
        return ''
    network = sum(stages.get(name, 0.0) for name in NETWORK_STAGES)
    return (f' (stages p50: network {network:.1f} ms, everything else '
            f'{sum(stages.values()) - network:.1f} ms)')


def stage_table(rows: list[dict]) -> list[str]:
    """Markdown: the node rows' stage p50s (ms) of the bench checks, one column per node run."""
    runs = [(f'{r["check"]}: {n["model"]} {n["backend"]}', n['stages_p50_ms'])
            for r in rows for n in r.get('node', []) if n.get('stages_p50_ms')]
    if not runs:
        return []
    names = dict.fromkeys(stage for _, stages in runs for stage in stages)
    lines = ['', "The node's stages (p50 ms; how each is measured: docs/speed.md):", '',
             '| stage | ' + ' | '.join(name for name, _ in runs) + ' |',
             '|---|' + '---:|' * len(runs)]
    lines += [f'| {stage} | ' + ' | '.join(f'{stages.get(stage, 0.0):.2f}' for _, stages in runs)
              + ' |' for stage in names]
    return lines


def markdown(environment_info: dict, rows: list[dict]) -> str:
    """The report: environment, then one table line per check."""
    lines = ['# make gpu-check', '']
    lines += [f'- {key}: {value}' for key, value in environment_info.items()]
    lines += ['', '| check | status | seconds | detail |', '| --- | --- | ---: | --- |']
    lines += [f'| {r["check"]} | {r["status"]} | {r.get("seconds", "")} | {r["detail"]} |'
              for r in rows]
    lines += stage_table(rows)
    return '\n'.join(lines) + '\n'
