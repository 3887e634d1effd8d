"""Several cameras: one node process serving N cameras against N single-camera processes.

One process runs `cameras:=['cam0', ..., 'camN-1']` under a namespace: one copy of the model,
frames ready together go through the network as one batch. The alternative is N processes of
one camera each (a copy of the model each), under <namespace>/cam<i>, so both layouts have the
same topics. Each round sends a frame to every camera at the same moment (synchronised cameras)
and waits for every camera's depth and cloud: total frames/s over the rounds, p50/p99 latency
over all frames, and the resident (and GPU) memory of the node processes together.
"""

from collections.abc import Sequence
import os
from pathlib import Path
import time

import numpy as np

from mono_depth_ros.bench.node_bench import (
    bench_node_command,
    NodeRig,
    process_gpu_mib,
    process_rss_mib,
)
from mono_depth_ros.timing.latency import summarize_latency, summarize_stages

LAYOUTS = ('one process', 'one process per camera')


def camera_names(count: int) -> list[str]:
    """cam0, cam1, ... for count cameras."""
    return [f'cam{i}' for i in range(count)]


def rig_commands(model: str, input_size: tuple[int, int], namespace: str, count: int,
                 layout: str, device: str = 'cpu', precision: str = 'fp32',
                 extra: Sequence[str] = ()) -> list[list[str]]:
    """Node command lines of one layout; camera i's topics are <namespace>/cam<i>/... in both."""
    if layout not in LAYOUTS:
        raise ValueError(f'layout must be one of {LAYOUTS}, got {layout!r}')
    names = camera_names(count)
    if layout == LAYOUTS[0]:
        return [bench_node_command(model, input_size, namespace, device, precision,
                                   extra=[*extra, f'cameras:={names!r}'])]
    return [bench_node_command(model, input_size, f'{namespace}/{name}', device, precision,
                               extra=extra) for name in names]


def summarize_rounds(latencies_ms: list[float], lost: int, elapsed_s: float,
                     memory: dict) -> dict:
    """Rounds report: total frames/s, latency percentiles over all frames, lost, memory."""
    summary = summarize_latency(latencies_ms)
    del summary['fps']  # per-call throughput: not what several cameras at once deliver
    return {**summary, 'lost': lost, 'total_fps': len(latencies_ms) / elapsed_s, **memory}


class CameraRig(NodeRig):
    """Node processes of one layout and a client per camera (a context manager)."""

    def __init__(self, commands: list[list[str]], namespace: str, count: int,
                 image: np.ndarray, log_dir: str | os.PathLike | None = None,
                 start_timeout: float = 180.0) -> None:
        log_paths = [Path(log_dir) / f'node_{index}.log' for index in range(len(commands))] \
            if log_dir else []
        super().__init__(commands, [f'{namespace}/{name}' for name in camera_names(count)],
                         image, log_paths, start_timeout)

    def rounds(self, count: int, timeout: float = 60.0) -> dict:
        """Send a frame to every camera at once, count times, waiting for all their outputs."""
        latencies, stages, lost = [], [], 0
        elapsed = 0.0
        for _ in range(count):
            self._check_alive()
            start = time.monotonic()
            stamps = [client.send() for client in self.clients]
            done = []
            for client, stamp in zip(self.clients, stamps, strict=True):
                latency = client.wait_for(stamp, timeout)
                if latency is None:
                    lost += 1
                else:
                    latencies.append(latency)
                    done.append((client, stamp))
            elapsed += time.monotonic() - start
            # the stage marks come just after the outputs: collected outside the round's time
            stages += [s for s in (client.stages_ms(stamp) for client, stamp in done)
                       if s is not None]
        if not latencies:
            raise RuntimeError(f'no frame of {count} rounds came back within {timeout} s')
        return {**summarize_rounds(latencies, lost, elapsed, self.memory()),
                'stages_p50_ms': summarize_stages(stages) if stages else None}

    def memory(self) -> dict:
        """Resident and GPU memory (MiB) of the node processes together (None if unknown)."""
        rss = [process_rss_mib(p.pid) for p in self.processes]
        gpu = [process_gpu_mib(p.pid) for p in self.processes]
        return {'rss_mib': None if None in rss else sum(rss),
                'gpu_mib': None if None in gpu else sum(gpu)}


def bench_cameras(model: str, input_size: tuple[int, int], counts: Sequence[int],
                  image: np.ndarray, rounds: int, device: str = 'cpu', precision: str = 'fp32',
                  backend: str = 'torch', out_dir: str | os.PathLike | None = None) -> list[dict]:
    """One row per camera count and layout (one row for 1 camera: both layouts are the same)."""
    rows = []
    for count in counts:
        for layout in LAYOUTS[:1] if count == 1 else LAYOUTS:
            namespace = f'/mono_depth_cameras_{os.getpid()}_{count}_{len(rows)}'
            commands = rig_commands(model, input_size, namespace, count, layout, device,
                                    precision, extra=[f'backend:={backend}'])
            log_dir = None
            if out_dir is not None:
                log_dir = Path(out_dir) / f'cameras_{count}_{layout.replace(" ", "_")}'
                log_dir.mkdir(parents=True, exist_ok=True)
            with CameraRig(commands, namespace, count, image, log_dir) as rig:
                summary = rig.rounds(rounds)
            rows.append({'model': model, 'input_size': list(input_size), 'backend': backend,
                         'cameras': count, 'layout': layout, 'processes': len(commands),
                         'rounds': rounds, **summary})
    return rows
