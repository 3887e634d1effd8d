"""Latency statistics shared by the model-only, end-to-end and soak measurements."""

import math

import numpy as np

from mono_depth_ros.core.stats import percentile


def summarize_latency(values_ms: list[float] | np.ndarray, batch: int = 1) -> dict:
    """p50, p99, mean, min and max latency (ms) and throughput (frames/s) of timed calls.

    Each value is one call that processed `batch` frames; throughput is frames over the total
    time of the calls.
    """
    values = np.asarray(values_ms, dtype=np.float64)
    if values.size == 0:
        raise ValueError('no latencies to summarise')
    if np.any(~np.isfinite(values)) or np.any(values < 0):
        raise ValueError('latencies must be finite and >= 0 ms')
    total_s = float(values.sum()) / 1000.0
    return {
        'count': int(values.size),
        'p50_ms': percentile(values, 50),
        'p99_ms': percentile(values, 99),
        'mean_ms': float(values.mean()),
        'min_ms': float(values.min()),
        'max_ms': float(values.max()),
        'fps': batch * values.size / total_s if total_s > 0 else math.inf,
    }


def drift(first_ms: list[float], last_ms: list[float]) -> dict:
    """Latency drift between two windows (e.g. first and last minute of a soak): p50s and ratio."""
    first, last = percentile(first_ms, 50), percentile(last_ms, 50)
    ratio = last / first if first > 0 and not math.isnan(first + last) else math.nan
    return {'first_p50_ms': first, 'last_p50_ms': last, 'ratio': ratio}


def paired_speedup(reference_ms: list[float], other_ms: list[float]) -> float:
    """Median over rounds of reference / other latency, for calls made in the same rounds.

    Interleaved calls of a round share the machine's state, so the ratio of a pair cancels
    most of a busy neighbour's effect that a ratio of two means would keep.
    """
    reference = np.asarray(reference_ms, dtype=np.float64)
    other = np.asarray(other_ms, dtype=np.float64)
    if reference.size == 0 or reference.shape != other.shape:
        raise ValueError(f'need the same number (> 0) of paired latencies, got '
                         f'{reference.size} and {other.size}')
    if np.any(other <= 0) or np.any(reference <= 0):
        raise ValueError('paired latencies must be > 0 ms')
    return float(np.median(reference / other))


def summarize_stages(frames: list[dict[str, float]]) -> dict[str, float]:
    """p50 (ms) per stage over frames (a stage missing from a frame counts as 0), in the order
    the stages first appear."""
    names: dict[str, None] = {}
    for frame in frames:
        names.update(dict.fromkeys(frame))
    return {name: float(np.median([frame.get(name, 0.0) for frame in frames]))
            for name in names}
