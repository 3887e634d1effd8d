"""mono-depth-gpu-check (`make gpu-check`): everything that needs a GPU, in one run.

On one CUDA GPU, in this order: the test suite's CUDA tests (marker `cuda`), mono-depth-bench
at fp16 and bf16 at 352×1216 (model-only and node end to end), ONNX Runtime's CUDA execution
provider and a TensorRT engine (fp32 and fp16), each against the eager fp32 model. Each check is
one row of <out>/gpu_check.md and gpu_check.json (pass, fail or skip, with its numbers); the
bench reports are kept beside them. Without CUDA the GPU-only checks are skipped with the reason
and the rest runs on the CPU (`--device cpu --quick` is the part `make test` runs). Exit 1 when
a check fails, or when --require-cuda is given and there is no CUDA.
"""

import argparse
import json
from pathlib import Path
import sys

import torch

REPO_ROOT = Path(__file__).resolve().parents[2]
GPU_SIZE = '352x1216'
GPU_MODELS = ['msfusion_r18', 'unet_r18']
QUICK_SIZE = '32x96'


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = argparse.ArgumentParser(prog='mono-depth-gpu-check', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--out', default='gpu_check_out', help='report folder')
    parser.add_argument('--device', choices=('auto', 'cuda', 'cpu'), default='auto')
    parser.add_argument('--quick', action='store_true',
                        help=f'tiny sizes ({QUICK_SIZE}), one model, few frames: the CPU test')
    parser.add_argument('--require-cuda', action='store_true',
                        help='fail at once when CUDA is not available (make gpu-check)')
    parser.add_argument('--skip-tests', action='store_true', help='leave out the CUDA tests')
    return parser


def run_checks(args: argparse.Namespace, device: str, out: Path) -> list[dict]:
    """Every check's row, in order."""
    from mono_depth_ros.bench import gpu_check as checks
    from mono_depth_ros.tools.bench import parse_size

    size = QUICK_SIZE if args.quick else GPU_SIZE
    models = GPU_MODELS[:1] if args.quick else GPU_MODELS
    frames = 2 if args.quick else 60
    iters = 2 if args.quick else 20
    rows = []
    if not args.skip_tests:
        rows.append(checks.guarded('CUDA tests',
                                   lambda: checks.cuda_tests(REPO_ROOT, out / 'cuda_tests.log')))
    for precision in ('fp16', 'bf16') if device == 'cuda' else ('fp32',):
        rows.append(checks.guarded(f'mono-depth-bench {precision}', lambda p=precision:
                                   checks.bench_check(p, device, size, models, out, frames,
                                                      args.quick)))
    shape = parse_size(size)
    rows.append(checks.guarded(f'ONNX Runtime {device.upper()} provider', lambda:
                               checks.onnx_check(models[0], shape, device, out, iters)))
    for precision in ('fp32', 'fp16'):
        rows.append(checks.guarded(f'TensorRT engine {precision}', lambda p=precision:
                                   checks.tensorrt_check(models[0], shape, p, out, iters)))
    return rows


def main(argv: list[str] | None = None) -> int:
    """Run the checks, write the report, print it; exit 1 when one failed."""
    args = build_parser().parse_args(argv)
    if args.device == 'cuda' or args.require_cuda:
        if not torch.cuda.is_available():
            print('mono-depth-gpu-check: CUDA is not available here (torch '
                  f'{torch.__version__}, CUDA build {torch.version.cuda})', file=sys.stderr)
            return 1
    from mono_depth_ros.bench import gpu_check as checks

    device = 'cuda' if args.device == 'auto' and torch.cuda.is_available() else (
        'cpu' if args.device == 'auto' else args.device)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    info = {**checks.environment(), 'device': device, 'quick': args.quick}
    rows = run_checks(args, device, out)
    (out / 'gpu_check.json').write_text(json.dumps({'environment': info, 'checks': rows},
                                                   indent=2, default=str))
    report = checks.markdown(info, rows)
    (out / 'gpu_check.md').write_text(report)
    print(report)
    failed = [r['check'] for r in rows if r['status'] == 'fail']
    if failed:
        print(f'mono-depth-gpu-check: failed: {", ".join(failed)}', file=sys.stderr)
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
