"""mono-depth-release: a training checkpoint → a release checkpoint (weights only, fp16).

The release file holds what load_model needs (config, input size, depth range, weights) plus
how it was made (the source checkpoint, step, experiment and its best validation metrics). No
optimizer, scheduler or RNG state: it cannot resume training, it is for the node and the tools.
"""

import argparse
from pathlib import Path
import sys

DEFAULT_MAX_MIB = 60.0


def main(argv: list[str] | None = None) -> int:
    """Write the release checkpoint; exit 1 with a message when it cannot (or is too big)."""
    parser = argparse.ArgumentParser(prog='mono-depth-release', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--checkpoint', required=True, help='training checkpoint (.pt)')
    parser.add_argument('--out', required=True, help='release checkpoint to write (.pt)')
    parser.add_argument('--fp32', action='store_true', help='keep fp32 weights (default fp16)')
    parser.add_argument('--max-mib', type=float, default=DEFAULT_MAX_MIB,
                        help=f'refuse a file larger than this (default {DEFAULT_MAX_MIB:g} MiB)')
    args = parser.parse_args(argv)
    from mono_depth_ros.networks.checkpoint import (
        CheckpointError,
        load_checkpoint,
        load_model,
        save_release,
    )

    out = Path(args.out)
    tmp = out.with_name(out.name + '.partial')
    try:
        data = load_checkpoint(args.checkpoint)
        model = load_model(args.checkpoint)
        extra = data['extra']
        info = {'source': Path(args.checkpoint).name, 'step': extra.get('step'),
                'experiment': extra.get('train_config'),
                'best_val_abs_rel': extra.get('best_abs_rel')}
        save_release(tmp, model, half=not args.fp32, **info)
        size_mib = tmp.stat().st_size / 2 ** 20
        if size_mib > args.max_mib:
            raise CheckpointError(f'the release would be {size_mib:.1f} MiB, over --max-mib '
                                  f'{args.max_mib:g}')
        load_model(tmp)  # loads strictly, as every user will
        tmp.replace(out)
    except (CheckpointError, OSError) as error:
        print(f'mono-depth-release: {error}', file=sys.stderr)
        return 1
    finally:
        tmp.unlink(missing_ok=True)
    print(f'wrote {out} ({size_mib:.1f} MiB, {"fp32" if args.fp32 else "fp16"} weights of '
          f'{model.config["name"]}, step {info["step"]})')
    return 0


if __name__ == '__main__':
    sys.exit(main())
