"""Model-only benchmark: latency, throughput, parameters, GFLOPs, peak memory, peak fraction.

Every backend runs the same model weights on the same image (already at the network input size,
so no resize): one row per backend of inference.backends ('reference' is the 'torch' backend,
'fast', 'onnx' on an export of the model) and 'compiled' (fast with torch.compile).
Calls of the backends are interleaved, so a busy machine slows them alike and their ratio stays
fair. The first call of each backend (allocation, CUDA graph capture, compilation) is timed
apart.
"""

from collections.abc import Mapping, Sequence
import copy
from pathlib import Path
import tempfile
import time

import numpy as np
import torch

from mono_depth_ros.core.constants import KITTI_IMAGE_SIZE
from mono_depth_ros.inference.backends import BACKENDS as BACKEND_TABLE
from mono_depth_ros.inference.backends import create_estimator, get_backend
from mono_depth_ros.timing.device import peak_memory_mib, reset_peak_memory
from mono_depth_ros.timing.latency import paired_speedup, summarize_latency

# Bench rows: every backend of inference.backends.BACKENDS ('torch' is the row named
# 'reference' that the others are compared with), plus 'compiled' (fast with torch.compile).
REFERENCE = 'reference'
BACKENDS: dict[str, tuple[str, dict]] = {
    **{REFERENCE if name == 'torch' else name: (name, {}) for name in BACKEND_TABLE},
    'compiled': ('fast', {'compile': True}),
}


def bench_image(size: tuple[int, int] = KITTI_IMAGE_SIZE, seed: int = 0) -> np.ndarray:
    """A deterministic RGB uint8 image: smooth gradients plus noise (the same for every model)."""
    rng = np.random.default_rng(seed)
    v, u = np.mgrid[0:size[0], 0:size[1]].astype(np.float32)
    base = np.stack([u / size[1], v / size[0], 0.5 + 0.5 * np.sin(u / 37.0)], axis=-1) * 200
    return np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8)


def build_bench_model(name: str | Mapping) -> torch.nn.Module:
    """A model config's network with random weights (speed does not depend on the weights);
    name is a config name or path, or a model config itself (e.g. with overrides applied)."""
    from mono_depth_ros.networks import build_model, load_model_config

    config = name if isinstance(name, Mapping) else load_model_config(name)
    torch.manual_seed(0)
    return build_model(config, load_pretrained=False).eval()


def make_estimator(row: str, model: torch.nn.Module, device: str, precision: str,
                   input_size: tuple[int, int], workdir: Path):
    """The estimator of a bench row for a private copy of model (the copies never interfere).

    A backend that runs an exported file (onnx) gets a fixed-size fp32 export of the model.
    """
    if row not in BACKENDS:
        raise ValueError(f'unknown backend {row!r}; choose from {tuple(BACKENDS)}')
    name, options = BACKENDS[row]
    model = copy.deepcopy(model)
    if get_backend(name).source == 'onnx':
        from mono_depth_ros.inference.onnx import export_onnx
        path = workdir / f'{model.config["name"]}_{input_size[0]}x{input_size[1]}.onnx'
        export_onnx(model, path, input_size, dynamic=False)
        onnx_device = 'cuda' if str(device) in ('cuda', 'auto') and torch.cuda.is_available() \
            else 'cpu'
        return create_estimator(path, name, onnx_device)
    return create_estimator(model, name, device, precision, input_size, **options)


def relative_difference(reference: np.ndarray | None, other: np.ndarray) -> float | None:
    """max |other - reference| / |reference| over the image (None without a reference)."""
    if reference is None:
        return None
    return float(np.max(np.abs(other - reference) / np.abs(reference)))


def time_interleaved(calls: dict[str, callable], iters: int, warmup: int) -> dict[str, list]:
    """Latencies (ms) of each call, run round-robin after warm-up calls."""
    for call in calls.values():
        for _ in range(warmup):
            call()
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(iters):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            times[name].append((time.perf_counter() - start) * 1000.0)
    return times


def bench_model(name: str | Mapping, input_size: tuple[int, int], backends: Sequence[str],
                device: str, precision: str = 'fp32', iters: int = 10, warmup: int = 2,
                batch: int = 1, peak_tflops: float | None = None,
                workdir: Path | None = None) -> list[dict]:
    """One row per backend for a model (see build_bench_model) at an input size (see the module
    docstring)."""
    from mono_depth_ros.networks.profile import count_flops, count_parameters

    model = build_bench_model(name)
    name = name['name'] if isinstance(name, Mapping) else name
    params_m = count_parameters(model) / 1e6
    gflops = count_flops(model, *input_size) / 1e9  # NET's counter: 2 FLOPs per multiply-add
    images = [bench_image(input_size, seed=i) for i in range(batch)]
    with tempfile.TemporaryDirectory() as tmp:
        estimators = {b: make_estimator(b, model, device, precision, input_size,
                                        Path(workdir or tmp)) for b in backends}
        calls = {b: (lambda e=e: e.predict_batch(images)) for b, e in estimators.items()}
        memory, depth, first_ms = {}, {}, {}
        for backend, call in calls.items():
            dev = getattr(estimators[backend], 'device', 'cpu')
            dev = torch.device(dev if dev != 'tensorrt' else 'cuda')
            baseline = reset_peak_memory(dev)
            start = time.perf_counter()
            depth[backend] = call()[0].depth  # first call: allocations, graph capture, compile
            first_ms[backend] = (time.perf_counter() - start) * 1000.0
            peak, kind = peak_memory_mib(dev)
            memory[backend] = (peak, kind, None if peak is None else peak - baseline)
        times = time_interleaved(calls, iters, warmup)
    rows = []
    for backend in backends:
        summary = summarize_latency(times[backend], batch=batch)
        achieved = gflops * summary['fps'] / 1000.0  # TFLOP/s
        rows.append({
            'model': name, 'input_size': list(input_size), 'backend': backend,
            'device': str(getattr(estimators[backend], 'device', device)),
            'precision': precision if backend != 'onnx' else 'fp32', 'batch': batch,
            'params_m': params_m, 'gflops': gflops, **summary,
            'first_call_ms': first_ms[backend],
            'speedup_vs_reference': paired_speedup(times['reference'], times[backend])
            if 'reference' in times else None,
            'peak_memory_mib': memory[backend][0], 'memory_kind': memory[backend][1],
            'peak_above_start_mib': memory[backend][2],
            'max_rel_diff_vs_reference': relative_difference(depth.get('reference'),
                                                             depth[backend]),
            'achieved_tflops': achieved,
            'peak_fraction': achieved / peak_tflops if peak_tflops else None,
        })
    return rows


def pair_speed(first: str | Mapping, baseline: str | Mapping, input_size: tuple[int, int],
               backend: str, device: str, precision: str = 'fp32', iters: int = 10,
               warmup: int = 2, batch: int = 1) -> float:
    """first's speed over baseline's: the median over rounds of baseline / first latency, the
    two networks' calls alternating within each round (so the machine's drift between two
    separately timed rows does not enter the ratio)."""
    images = [bench_image(input_size, seed=i) for i in range(batch)]
    with tempfile.TemporaryDirectory() as tmp:
        calls = {}
        for key, name in (('first', first), ('baseline', baseline)):
            estimator = make_estimator(backend, build_bench_model(name), device, precision,
                                       input_size, Path(tmp))
            estimator.predict_batch(images)  # first call: allocations, graph capture, compile
            calls[key] = (lambda e=estimator: e.predict_batch(images))
        times = time_interleaved(calls, iters, warmup)
    return paired_speedup(times['baseline'], times['first'])
