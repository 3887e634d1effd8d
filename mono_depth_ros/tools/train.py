"""mono-depth-train: train a depth network from an experiment config (one GPU, many, or CPU).

Multi-GPU / multi-node: torchrun --nproc_per_node N -m mono_depth_ros.tools.train ...
Exit codes: 0 done, 1 stopped on a non-finite loss, 2 bad input, 130 interrupted (checkpointed).
"""

import argparse
import json
import os
from pathlib import Path
import sys

from mono_depth_ros.core.config import apply_overrides, ConfigError
from mono_depth_ros.networks import PretrainedWeightsError
from mono_depth_ros.networks.checkpoint import CheckpointError
from mono_depth_ros.training.checkpoints import ensure_writable_dir, latest_checkpoint
from mono_depth_ros.training.config import load_experiment, merge_experiment, validate_experiment
from mono_depth_ros.training.distributed import cleanup_distributed, init_distributed

SETUP_ERRORS = (ConfigError, CheckpointError, PretrainedWeightsError, OSError, ValueError)
EXIT_INTERRUPTED = 130


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        prog='mono-depth-train', description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--config', help='experiment YAML (e.g. config/train/'
                        'kitti_eigen_msfusion_r50.yaml); optional with --resume')
    parser.add_argument('--data-path', help='KITTI raw root or a synthetic world directory')
    parser.add_argument('--out', help='output directory (default: runs/<config name>)')
    parser.add_argument('--resume', nargs='?', const='latest', metavar='PATH',
                        help='continue from a checkpoint (default: the newest in --out)')
    parser.add_argument('--benchmark-steps', type=int, metavar='N',
                        help='only time N training steps on random data and print images/s')
    parser.add_argument('overrides', nargs='*', metavar='key.sub=value',
                        help='experiment overrides, e.g. train.batch_size=4')
    args = parser.parse_args(argv)
    if args.config is None and args.resume is None:
        parser.error('--config is required (unless --resume names a checkpoint)')
    return args


def load_run_config(args: argparse.Namespace) -> tuple[dict, dict | None, Path]:
    """Return (experiment, resume checkpoint or None, output dir), checking every input."""
    from mono_depth_ros.training.trainer import read_resume_checkpoint
    experiment = load_experiment(args.config, args.overrides) if args.config else None
    if args.benchmark_steps is not None:
        return experiment, None, Path('.')
    if args.data_path is None:
        raise ConfigError('--data-path is required (a KITTI raw root or a synthetic world)')
    if not os.path.isdir(args.data_path):
        raise ConfigError(f'data path {args.data_path} is not a directory (missing?)')
    name = Path(args.config).stem if args.config else 'resumed'
    out_dir = Path(args.out) if args.out else Path('runs') / name
    resume = None
    if args.resume is not None:
        path = latest_checkpoint(out_dir) if args.resume == 'latest' else Path(args.resume)
        resume = read_resume_checkpoint(path)
        if experiment is None:
            where = f'training config stored in {path}'
            saved = validate_experiment(merge_experiment(resume['extra']['train_config'],
                                                         where), where)
            experiment = validate_experiment(apply_overrides(saved, args.overrides, where),
                                             where)
        print(f'resuming from {path} at step {resume["extra"]["step"]}')
    ensure_writable_dir(out_dir)
    return experiment, resume, out_dir


def run_benchmark(experiment: dict, steps: int) -> int:
    """Print the training throughput of the experiment's model at its input size."""
    from mono_depth_ros.training.benchmark import benchmark_training
    if steps < 1:
        raise ConfigError('--benchmark-steps must be at least 1')
    result = benchmark_training(experiment, steps)
    print(f'{result["model"]} {result["input_size"][0]}x{result["input_size"][1]} '
          f'batch {result["batch_size"]} on {result["device"]} ({result["precision"]}): '
          f'{result["images_per_s"]:.3f} images/s ({result["seconds_per_step"]:.2f} s/step)')
    print(json.dumps(result))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Validate every input, then train; see the module docstring for exit codes."""
    args = parse_args(argv)
    from mono_depth_ros.training.signals import StopRequest
    from mono_depth_ros.training.trainer import NonFiniteLossError, Trainer
    try:
        experiment, resume, out_dir = load_run_config(args)
        if args.benchmark_steps is not None:
            return run_benchmark(experiment, args.benchmark_steps)
        dist = init_distributed(experiment['train']['device'])
    except SETUP_ERRORS as error:
        print(f'mono-depth-train: error: {error}', file=sys.stderr)
        return 2
    try:
        try:
            trainer = Trainer(experiment, args.data_path, out_dir, dist, resume)
        except SETUP_ERRORS as error:
            print(f'mono-depth-train: error: {error}', file=sys.stderr)
            return 2
        del resume
        if trainer.init_info is not None and dist.is_main:
            print(f'fine-tuning from the weights of {trainer.init_info["path"]} (step '
                  f'{trainer.init_info["step"]}); optimizer and schedule start fresh')
        with StopRequest() as stop:
            result = trainer.run(stop)
    except NonFiniteLossError as error:
        print(f'mono-depth-train: error: {error}', file=sys.stderr)
        return 1
    finally:
        cleanup_distributed()
    if not dist.is_main:
        return EXIT_INTERRUPTED if result.status == 'interrupted' else 0
    if result.status == 'interrupted':
        print(f'interrupted ({stop.signal_name}) at step {result.step}: checkpoint '
              f'{result.checkpoint}; continue with --resume {result.checkpoint}')
        return EXIT_INTERRUPTED
    best = 'n/a' if result.best_abs_rel is None else f'{result.best_abs_rel:.4f}'
    print(f'done: {result.step} steps, checkpoint {result.checkpoint}, best val abs_rel {best}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
