"""mono-depth-eval: score a checkpoint or saved predictions against KITTI ground truth, or
against the lidar ground truth of a mono-depth-bag-gt folder (each frame with its calibration).

Predictions are resized to the ground-truth size with bilinear interpolation of depth
(cv2.INTER_LINEAR), then scored with mono_depth_ros.core.metrics (clamped to [min, max] depth,
averaged per image). Writes metrics.json, per_frame.csv, error_by_distance.png and montage.png.
The logic is mono_depth_ros.evaluation.evaluate.
"""

import argparse
from dataclasses import fields
import os
import sys

from mono_depth_ros.core.constants import MAX_DEPTH, MIN_DEPTH
from mono_depth_ros.core.metrics import METRIC_NAMES
from mono_depth_ros.evaluation.evaluate import EvalSettings, evaluate
from mono_depth_ros.evaluation.report import format_table
from mono_depth_ros.inference.backends import BACKENDS
from mono_depth_ros.inference.outputs import OutputSettings
from mono_depth_ros.ros.params import resolve_params
from mono_depth_ros.tools.export_gt import add_split_arguments


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line arguments of mono-depth-eval."""
    parser = argparse.ArgumentParser(prog='mono-depth-eval', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_split_arguments(parser, bag_gt=True)
    model = parser.add_mutually_exclusive_group(required=True)
    model.add_argument('--checkpoint', help='model checkpoint to run on the split images')
    model.add_argument('--pred-npz', help='saved predictions: N×H×W metric depths in split '
                                          'order (.npz with one array, or .npy)')
    model.add_argument('--bag', help="a bag of the node's outputs (mono-depth-bag, or a "
                                     'recording of mono_depth_node): its depth, confidence and '
                                     'organised cloud, matched to the frames by image stamp')
    parser.add_argument('--bag-ns', help='namespace of the depth topic in --bag (default: the '
                                         'only one)')
    parser.add_argument('--gt-npz', help='ground truth exported by mono-depth-export-gt '
                                         '(default: computed from the split files)')
    parser.add_argument('--output-dir', default='eval_results', help='folder for the reports')
    parser.add_argument('--crop', choices=('garg', 'eigen', 'none'), default=None,
                        help="evaluation crop (default: the split's protocol; garg for eigen, "
                             'eigen_benchmark and split files)')
    parser.add_argument('--min-depth', type=float, default=MIN_DEPTH)
    parser.add_argument('--max-depth', type=float, default=MAX_DEPTH,
                        help='depth cap in metres (default: 80)')
    parser.add_argument('--median-scaling', action='store_true',
                        help='scale each prediction by median(gt) / median(pred) (relative-depth '
                             'models); off for metric models')
    parser.add_argument('--montage-frames', type=int, default=4,
                        help='frames shown in montage.png (evenly spaced; 0: no montage)')
    parser.add_argument('--image-ext', default='.png',
                        help='image file extension (.jpg after download --convert jpg)')
    parser.add_argument('--backend', default='torch', choices=list(BACKENDS),
                        help='inference backend for --checkpoint (default torch, the reference)')
    parser.add_argument('--device', default='auto', help='auto, cpu or cuda (--checkpoint)')
    parser.add_argument('--precision', default='fp32', choices=('fp32', 'fp16', 'bf16'))
    parser.add_argument('--params-file', help='mono_depth_node params file whose output '
                        'parameters (min/max depth, cloud stride, max range, edge threshold, '
                        'min confidence) shape the published depth and cloud that are scored '
                        '(default: config/mono_depth_node.yaml)')
    parser.add_argument('-p', '--param', action='append', default=[], metavar='NAME=VALUE',
                        help='override one node parameter, e.g. -p cloud_edge_threshold=0.2')
    args = parser.parse_args(argv)
    if not args.min_depth < args.max_depth:
        parser.error(f'--min-depth {args.min_depth} must be below --max-depth {args.max_depth}')
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the evaluation and print the standard table."""
    args = parse_args(argv)
    errors: tuple[type[Exception], ...] = (OSError, ValueError)
    try:
        params = resolve_params(args.params_file, args.param, where='mono-depth-eval parameters',
                                require_model=False)
        args.outputs = OutputSettings.from_params(params)
        predictor = None
        if args.bag:  # the ROS layer (rosbags, rclpy) only for a bag
            from mono_depth_ros.bags.bag_io import BagError
            from mono_depth_ros.bags.predictor import BagPredictor
            errors += (BagError,)
            predictor = BagPredictor(args.bag, args.data_path, args.bag_ns)
        report = evaluate(EvalSettings(**{f.name: getattr(args, f.name)
                                          for f in fields(EvalSettings)}), predictor)
    except errors as error:
        print(f'mono-depth-eval: error: {error}', file=sys.stderr)
        return 1
    print(f'split {report["split"]}: {report["frames"]} frames scored, {report["skipped"]} '
          f'skipped ({report["ground_truth"]} ground truth, crop {report["crop"]}, '
          f'{report["min_depth"]:g}-{report["max_depth"]:g} m'
          f'{", median scaling" if report["median_scaling"] else ""})')
    print(format_table({name: report[name] for name in METRIC_NAMES}))
    for line in published_lines(report):
        print(line)
    print(f'reports: {os.path.abspath(args.output_dir)}/(metrics.json, per_frame.csv, '
          'error_by_distance.png, montage.png'
          f'{", sparsification.png" if "sparsification" in report else ""})')
    return 0


def published_lines(report: dict) -> list[str]:
    """Lines about the published depth, the cloud and the confidence (where they were scored)."""
    published, lines = report['published'], []

    def pct(value: float | None) -> str:
        return '-' if value is None else f'{100 * value:.2f} %'

    lines.append(f'published depth: finite on {pct(published["coverage"])} of the surfaces '
                 f'within range; beyond range published +inf: {pct(published["beyond_recall"])};'
                 f' sky published nearer than {published["near_sky_depth"]:g} m: '
                 f'{pct(published["sky_near"])}')
    if published['counts']['points']:
        lines.append(f'cloud: {published["counts"]["points"]} points, '
                     f'{pct(published["flying_rate"])} off by more than '
                     f'{100 * published["flying_error"]:g} % (flying pixels)')
    if 'breakdown' in report:
        breakdown = report['breakdown']
        lines.append(f'median scale gt / pred {breakdown["median_scale"]:.3f} (per frame); '
                     f'abs_rel after per-frame median scaling '
                     f'{breakdown["abs_rel_median_scaled"]:.3f}')
        lines.append('  region         pixels  abs_rel     δ1  pred / gt')
        lines += [f'  {row["region"]:<12} {row["pixels"]:>8}  {row["abs_rel"]:.3f}  '
                  f'{row["a1"]:.3f}  {row["bias"]:.3f}'
                  for row in breakdown['regions'] if row['pixels']]
    if 'sparsification' in report:
        sparse = report['sparsification']
        lines.append(f'confidence: AUSE {sparse["ause"]:.4f} vs {sparse["ause_random"]:.4f} for '
                     f'a random order (ratio {sparse["ause_ratio"]:.2f})')
        lines.append('  min_confidence  coverage  abs_rel')
        lines += [f'  {row["min_confidence"]:>14.4f}  {100 * row["coverage"]:>7.1f}%  '
                  f'{row["abs_rel"]:.4f}' for row in sparse['keep_table']]
    return lines


if __name__ == '__main__':
    sys.exit(main())
