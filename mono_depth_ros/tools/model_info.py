"""mono-depth-model-info: parameters and GFLOPs of model configs or checkpoints at a size."""

import argparse
import json
import sys

from tqdm import tqdm

from mono_depth_ros.core.config import ConfigError
from mono_depth_ros.core.constants import KITTI_BENCHMARK_CROP
from mono_depth_ros.networks import available_models
from mono_depth_ros.networks.checkpoint import CheckpointError
from mono_depth_ros.networks.profile import model_info


def format_table(rows: list[dict]) -> str:
    """A Markdown table of model_info rows."""
    size = 'x'.join(str(v) for v in rows[0]['input_size']) if rows else ''
    lines = ['| model | architecture | encoder | parameters (M) '
             f'| GFLOPs at {size} | confidence |',
             '| --- | --- | --- | ---: | ---: | --- |']
    for row in rows:
        gflops = f'{row["gflops"]:.1f}' if 'gflops' in row else '-'
        lines.append(f'| {row["name"]} | {row["architecture"]} | {row["encoder"]} | '
                     f'{row["parameters"] / 1e6:.2f} | {gflops} | '
                     f'{"yes" if row["confidence"] else "no"} |')
    return '\n'.join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line arguments."""
    parser = argparse.ArgumentParser(
        prog='mono-depth-model-info',
        description='Parameters and GFLOPs (FlopCounterMode: conv/matmul FLOPs = 2 x MACs, '
                    'batch 1) of model configs; every config in models/ by default.')
    parser.add_argument('models', nargs='*',
                        help='model names (e.g. msfusion_r18), YAML paths or checkpoints (.pt, '
                             'e.g. models/msfusion_r18.pt); default: every named config')
    parser.add_argument('--size', nargs=2, type=int, metavar=('H', 'W'),
                        default=list(KITTI_BENCHMARK_CROP),
                        help='input height and width (default: %(default)s)')
    parser.add_argument('--no-flops', action='store_true',
                        help='only count parameters (no forward pass)')
    parser.add_argument('--json', action='store_true', help='print JSON instead of a table')
    args = parser.parse_args(argv)
    if min(args.size) <= 0:
        parser.error(f'--size must be positive, got {args.size}')
    return args


def main(argv: list[str] | None = None) -> int:
    """Print the table (or JSON) for the selected model configs."""
    args = parse_args(argv)
    names = args.models or sorted(available_models())
    if not names:
        print('error: no model configs found', file=sys.stderr)
        return 1
    rows = []
    try:
        for name in tqdm(names, desc='models', disable=args.json or len(names) < 2,
                         file=sys.stderr):
            rows.append(model_info(name, *args.size, flops=not args.no_flops))
    except (ConfigError, CheckpointError) as error:
        print(f'error: {error}', file=sys.stderr)
        return 1
    print(json.dumps(rows, indent=2) if args.json else format_table(rows))
    return 0


if __name__ == '__main__':
    sys.exit(main())
