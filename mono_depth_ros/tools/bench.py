"""mono-depth-bench: model-only and node end-to-end speed of the depth networks, side by side.

In one run, on the same inputs: per model and network input size, the latency (p50, p99) and
throughput of each inference backend, parameters, GFLOPs, peak memory and the fraction of the
device's peak FLOP rate; the real node's end-to-end latency over DDS; 1, 2 and 4 cameras in one
node process against as many single-camera processes; optionally a soak test.
Writes <out>/bench.json and <out>/bench.md. Random weights: speed does not depend on them.
"""

import argparse
from datetime import datetime, UTC
import os
import sys

import torch
from tqdm import tqdm

from mono_depth_ros.bench.pipeline_bench import (
    bench_estimator,
    bench_pipeline,
    model_only_call,
)
from mono_depth_ros.bench.report import (
    compute_ratios,
    pair_ratio_row,
    TARGET_PAIRS,
    write_results,
)
from mono_depth_ros.core.constants import KITTI_IMAGE_SIZE
from mono_depth_ros.inference.backends import BACKENDS as BACKEND_TABLE
from mono_depth_ros.timing.device import device_name, peak_tflops
from mono_depth_ros.timing.model_timing import (
    BACKENDS,
    bench_image,
    bench_model,
    pair_speed,
    REFERENCE,
)

DEFAULT_MODELS = ['msfusion_r18', 'msfusion_r18_paper', 'msfusion_r50', 'fcrn_r50', 'unet_r18']
DEFAULT_SIZES = ['352x1216', '192x640']
# The node runs random weights of a model config: the backends that run a model, not a file.
NODE_BACKENDS = tuple(name for name, spec in BACKEND_TABLE.items() if spec.source == 'model')
DEFAULT_CAMERAS = [1, 2, 4]
QUICK = {'sizes': ['32x96'], 'models': ['msfusion_r18'], 'iters': 2, 'warmup': 1,
         'node_frames': 2, 'camera_size': '48x160', 'soak_drain_s': 1.0, 'cameras': [2],
         'camera_rounds': 2}


def parse_size(text: str) -> tuple[int, int]:
    """'192x640' → (192, 640); argparse error otherwise."""
    try:
        height, width = (int(v) for v in text.lower().replace('×', 'x').split('x'))
    except ValueError:
        raise argparse.ArgumentTypeError(f'size must look like 192x640, got {text!r}') from None
    if height <= 0 or width <= 0:
        raise argparse.ArgumentTypeError(f'size must be positive, got {text!r}')
    return height, width


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    p = argparse.ArgumentParser(prog='mono-depth-bench', description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--models', nargs='+', help=f'model configs (default {DEFAULT_MODELS})')
    p.add_argument('--sizes', nargs='+', type=parse_size,
                   help=f'network input sizes HxW (default {DEFAULT_SIZES})')
    p.add_argument('--backends', nargs='+', choices=list(BACKENDS), default=[REFERENCE, 'fast'],
                   help='inference backends to time (default: reference fast)')
    p.add_argument('--device', default='auto', choices=['auto', 'cpu', 'cuda'])
    p.add_argument('--precision', default='fp32', choices=['fp32', 'fp16', 'bf16'])
    p.add_argument('--iters', type=int, default=10, help='timed calls per row (default 10)')
    p.add_argument('--warmup', type=int, default=2, help='untimed calls first (default 2)')
    p.add_argument('--batch', type=int, default=1, help='images per call (default 1)')
    p.add_argument('--node-sizes', nargs='*', type=parse_size,
                   help='network input sizes for the node end-to-end runs (default: --sizes)')
    p.add_argument('--node-frames', type=int, default=60,
                   help='frames per node run (default 60: a p99 over at least 50 frames)')
    p.add_argument('--node-backends', nargs='+', choices=NODE_BACKENDS,
                   default=list(NODE_BACKENDS),
                   help='node backend parameter of the end-to-end runs (default: torch fast; '
                        'the soak uses the last)')
    p.add_argument('--no-node', action='store_true', help='skip the node end-to-end runs')
    p.add_argument('--camera-size', type=parse_size,
                   default=f'{KITTI_IMAGE_SIZE[0]}x{KITTI_IMAGE_SIZE[1]}',
                   help='size of the camera images sent to the node (default KITTI raw)')
    p.add_argument('--cameras', nargs='*', type=int,
                   help='camera counts run in one node process and in one process per camera '
                        f'(default {DEFAULT_CAMERAS}; none: skip)')
    p.add_argument('--camera-rounds', type=int, default=20,
                   help='rounds (a frame to every camera) per camera run (default 20)')
    p.add_argument('--camera-model', default='msfusion_r18', help='model for the camera runs')
    p.add_argument('--camera-input', type=parse_size, default='192x640',
                   help='network input size for the camera runs')
    p.add_argument('--soak-minutes', type=float, default=0.0,
                   help='feed the node for this many minutes (0 = no soak)')
    p.add_argument('--soak-rate', type=float, default=30.0, help='soak frame rate (Hz)')
    p.add_argument('--soak-model', default='msfusion_r18', help='model for the soak')
    p.add_argument('--soak-size', type=parse_size, default='192x640',
                   help='network input size for the soak')
    p.add_argument('--quick', action='store_true',
                   help='tiny sizes and few iterations (a smoke test; numbers mean little)')
    p.add_argument('--out', default='bench_out', help='output folder (bench.json, bench.md)')
    return p


def resolve_args(args: argparse.Namespace) -> argparse.Namespace:
    """Fill defaults (quick or full) and check the values."""
    quick = QUICK if args.quick else {}
    args.models = args.models or quick.get('models', DEFAULT_MODELS)
    args.sizes = args.sizes or [parse_size(s) for s in quick.get('sizes', DEFAULT_SIZES)]
    args.node_sizes = args.sizes if args.node_sizes is None else args.node_sizes
    if args.cameras is None:
        args.cameras = quick.get('cameras', DEFAULT_CAMERAS)
    if args.quick:
        args.iters, args.warmup = QUICK['iters'], QUICK['warmup']
        args.node_frames = min(args.node_frames, QUICK['node_frames'])
        args.camera_size = parse_size(QUICK['camera_size'])
        args.soak_size = args.camera_input = args.sizes[0]
        args.camera_rounds = min(args.camera_rounds, QUICK['camera_rounds'])
    if min(args.iters, args.batch, args.node_frames, args.camera_rounds, *args.cameras) < 1 \
            or args.warmup < 0:
        raise SystemExit('mono-depth-bench: --iters, --batch, --node-frames, --cameras and '
                         '--camera-rounds must be >= 1 and --warmup >= 0')
    if args.soak_minutes < 0 or args.soak_rate <= 0:
        raise SystemExit('mono-depth-bench: --soak-minutes must be >= 0, --soak-rate > 0')
    return args


def run_node(args: argparse.Namespace, device: str, out_dir: str) -> tuple[list, dict | None]:
    """Node end-to-end rows and the soak report (the soak reuses a node of the same model)."""
    from mono_depth_ros.bench.node_bench import bench_node_command, NodeUnderTest

    image = bench_image(args.camera_size)
    runs = [] if args.no_node else [(m, s, b) for m in args.models for s in args.node_sizes
                                     for b in args.node_backends]
    soak_run = (args.soak_model, tuple(args.soak_size), args.node_backends[-1]) \
        if args.soak_minutes > 0 else None
    if soak_run and soak_run not in runs:
        runs.append(soak_run)
    rows, soak = [], None
    for index, (model, size, backend) in enumerate(tqdm(runs, desc='node end-to-end',
                                                        unit='run')):
        namespace = f'/mono_depth_bench_{os.getpid()}_{index}'
        log = os.path.join(out_dir, f'node_{model}_{size[0]}x{size[1]}_{backend}.log')
        command = bench_node_command(model, size, namespace, device, args.precision,
                                     extra=[f'backend:={backend}'])
        with NodeUnderTest(command, namespace, image, log_path=log) as node:
            if not args.no_node:
                estimator = bench_estimator(model, size, backend, device, args.precision)
                summary = node.closed_loop(args.node_frames, warmup=1,
                                           between=model_only_call(estimator, size))
                rows.append({'model': model, 'input_size': list(size),
                             'backend': f'node ({backend})', **summary})
            if soak_run == (model, size, backend):
                soak = {'model': model, 'input_size': list(size), 'backend': backend,
                        **node.soak(args.soak_minutes * 60.0, rate_hz=args.soak_rate,
                                    drain_s=QUICK['soak_drain_s'] if args.quick else 5.0)}
    return rows, soak


def run_pipeline(args: argparse.Namespace, device: str) -> list[dict]:
    """In-process pipeline rows: one per node run (model, size, backend); none with
    --no-node."""
    if args.no_node:
        return []
    runs = [(m, s, b) for m in args.models for s in args.node_sizes for b in args.node_backends]
    return [bench_pipeline(model, tuple(size), tuple(args.camera_size), backend, device,
                           args.precision, args.iters, args.warmup)
            for model, size, backend in tqdm(runs, desc='in-process pipeline', unit='run')]


def run_cameras(args: argparse.Namespace, device: str, out_dir: str) -> list[dict]:
    """Several-camera rows (none with --no-node or an empty --cameras)."""
    if args.no_node or not args.cameras:
        return []
    from mono_depth_ros.bench.camera_bench import bench_cameras

    return bench_cameras(args.camera_model, tuple(args.camera_input), args.cameras,
                         bench_image(args.camera_size), args.camera_rounds, device,
                         args.precision, args.node_backends[-1], out_dir)


def paired_ratios(args: argparse.Namespace, device: str) -> list[dict]:
    """Each TARGET_PAIRS ratio whose two models are benched, per size and backend, measured
    with the two networks' calls alternating (pair_speed)."""
    jobs = [(first, baseline, target, size, backend)
            for first, baseline, target in TARGET_PAIRS
            if first in args.models and baseline in args.models
            for size in args.sizes for backend in args.backends]
    return [pair_ratio_row(first, baseline, target, size, backend,
                           pair_speed(first, baseline, size, backend, device, args.precision,
                                      args.iters, args.warmup, args.batch))
            for first, baseline, target, size, backend in tqdm(jobs, desc='model pairs',
                                                               unit='pair')]


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and write its JSON and markdown; print the markdown."""
    args = resolve_args(build_parser().parse_args(argv))
    device = torch.device('cuda' if args.device == 'auto' and torch.cuda.is_available()
                          else ('cpu' if args.device == 'auto' else args.device))
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise SystemExit('mono-depth-bench: --device cuda but CUDA is not available here')
    os.makedirs(args.out, exist_ok=True)
    peak, source = peak_tflops(device, args.precision)
    results = {
        'date': datetime.now(UTC).isoformat(timespec='seconds'),
        'device': {'name': device_name(device), 'type': device.type, 'torch': torch.__version__,
                   'threads': torch.get_num_threads(), 'precision': args.precision,
                   'peak_tflops': peak, 'peak_source': source},
        'settings': {'models': args.models, 'sizes': [list(s) for s in args.sizes],
                     'backends': args.backends, 'iters': args.iters, 'warmup': args.warmup,
                     'batch': args.batch, 'quick': args.quick,
                     'camera_size': list(args.camera_size), 'node_frames': args.node_frames,
                     'node_backends': args.node_backends, 'cameras': args.cameras,
                     'camera_rounds': args.camera_rounds},
        'model': [], 'pipeline': [], 'node': [], 'cameras': [], 'ratios': [], 'soak': None,
    }
    jobs = [(m, s) for s in args.sizes for m in args.models]
    for model, size in tqdm(jobs, desc='model-only', unit='model'):
        results['model'] += bench_model(model, size, args.backends, str(device), args.precision,
                                        args.iters, args.warmup, args.batch, peak)
    results['ratios'] = compute_ratios(results['model'], paired_ratios(args, str(device)))
    results['pipeline'] = run_pipeline(args, str(device))
    results['node'], results['soak'] = run_node(args, str(device), args.out)
    results['cameras'] = run_cameras(args, str(device), args.out)
    json_path, md_path = write_results(results, args.out)
    print(md_path.read_text())
    print(f'wrote {json_path} and {md_path}', file=sys.stderr)
    return 0


if __name__ == '__main__':
    sys.exit(main())
