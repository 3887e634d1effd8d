"""mono-depth-export: write a checkpoint's network as ONNX and check it against PyTorch.

The .onnx file carries the depth range, input size, canonical focal and model config, so the
node (backend onnx) and OnnxDepthEstimator run it on their own. --check runs ONNX Runtime and
the PyTorch reference on the same image and fails when depth differs by more than --tolerance.
"""

import argparse
import sys
import time

DEFAULT_TOLERANCE = 1e-4  # max relative depth difference, fp32 ONNX Runtime CPU vs PyTorch CPU


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    p = argparse.ArgumentParser(prog='mono-depth-export', description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument('--checkpoint', help='checkpoint (.pt) written by mono-depth-train')
    source.add_argument('--random-weights', metavar='MODEL_CONFIG',
                        help='export a model config with random weights (for trying only)')
    p.add_argument('--out', required=True, help='output .onnx path')
    p.add_argument('--size', nargs=2, type=int, metavar=('H', 'W'),
                   help='network input size to trace at (default: the model input_size)')
    p.add_argument('--fixed', action='store_true',
                   help='fixed batch and size (default: batch, height and width dynamic)')
    p.add_argument('--batch', type=int, default=1, help='batch size to trace with (default 1)')
    p.add_argument('--opset', type=int, default=17, help='ONNX opset (default 17)')
    p.add_argument('--check', action='store_true',
                   help='compare ONNX Runtime with PyTorch on one image; exit 1 if it differs')
    p.add_argument('--tolerance', type=float, default=DEFAULT_TOLERANCE,
                   help=f'max relative depth difference for --check (default {DEFAULT_TOLERANCE})')
    return p


def load_source(args: argparse.Namespace):
    """The model to export: from the checkpoint, or a config with random weights."""
    if args.checkpoint:
        from mono_depth_ros.networks.checkpoint import load_model
        return load_model(args.checkpoint, device='cpu')
    from mono_depth_ros.networks import build_model, load_model_config
    return build_model(load_model_config(args.random_weights), load_pretrained=False).eval()


def main(argv: list[str] | None = None) -> int:
    """Export (and optionally check) one model; exit 1 with a message on failure."""
    args = build_parser().parse_args(argv)
    from mono_depth_ros.inference.onnx import export_onnx

    if args.size is not None and min(args.size) <= 0 or args.batch < 1:
        print('mono-depth-export: --size and --batch must be positive', file=sys.stderr)
        return 1
    try:
        model = load_source(args)
        size = tuple(args.size) if args.size else tuple(model.config['input_size'])
        start = time.perf_counter()
        path = export_onnx(model, args.out, size, dynamic=not args.fixed, batch=args.batch,
                           opset=args.opset)
    except (OSError, ValueError, RuntimeError) as error:
        print(f'mono-depth-export: {error}', file=sys.stderr)
        return 1
    print(f'wrote {path} ({path.stat().st_size / 2 ** 20:.1f} MiB, '
          f'{"fixed" if args.fixed else "dynamic"} {size[0]}×{size[1]}, '
          f'{time.perf_counter() - start:.1f} s)')
    if args.check:
        from mono_depth_ros.inference.onnx import onnx_parity
        from mono_depth_ros.timing.model_timing import bench_image

        difference = onnx_parity(model, path, bench_image(size), size)
        ok = difference <= args.tolerance
        print(f'ONNX Runtime vs PyTorch: max relative depth difference {difference:.2e} '
              f'({"within" if ok else "OVER"} tolerance {args.tolerance:g})')
        return 0 if ok else 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
