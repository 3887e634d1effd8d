"""mono-depth-eval: score a checkpoint or saved predictions against KITTI ground truth.

Predictions are resized to the ground-truth size with bilinear interpolation of depth
(cv2.INTER_LINEAR), then scored with mono_depth_ros.core.metrics (clamped to [min, max] depth,
averaged per image). Writes metrics.json, per_frame.csv, error_by_distance.png and montage.png.
"""

import argparse
import json
import os
import sys

import cv2
import numpy as np
from tqdm import tqdm

from mono_depth_ros.core.constants import MAX_DEPTH, MIN_DEPTH
from mono_depth_ros.core.metrics import average_metrics, depth_errors, METRIC_NAMES, scored_pixels
from mono_depth_ros.datasets.kitti.calib import load_intrinsics
from mono_depth_ros.datasets.kitti.ground_truth import load_ground_truth, load_gt_npz, PROTOCOLS
from mono_depth_ros.datasets.kitti.io import read_image
from mono_depth_ros.evaluation.report import (
    DistanceBins,
    ensure_dir,
    format_table,
    montage_row,
    save_montage,
    write_csv,
)
from mono_depth_ros.tools.export_gt import add_split_arguments, describe_source, resolve_split

PRED_KEYS = ('pred', 'depth', 'pred_depth')


def load_pred_npz(path: str, frames: int) -> np.ndarray:
    """Load an N×H×W array of metric depths (.npz or .npy) and check N against the split."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f'prediction file not found: {path}')
    if path.endswith('.npy'):
        pred = np.load(path, allow_pickle=False)
    else:
        with np.load(path, allow_pickle=False) as data:
            keys = [key for key in PRED_KEYS if key in data.files] or data.files
            if len(keys) != 1:
                raise ValueError(f'{path} holds arrays {data.files}; name the predictions '
                                 f'one of {PRED_KEYS} or store a single array')
            pred = data[keys[0]]
    if pred.ndim != 3 or not np.issubdtype(pred.dtype, np.number):
        raise ValueError(f'{path}: predictions must be an N×H×W numeric array of metric '
                         f'depths, got {pred.dtype} with shape {pred.shape}')
    if len(pred) != frames:
        raise ValueError(f'{path} holds {len(pred)} predictions but the split has {frames} '
                         'frames: predictions must cover the split, in split order')
    return pred


def make_estimator(checkpoint: str, device: str, precision: str):
    """Load a checkpoint into an inference.DepthEstimator."""
    from mono_depth_ros.inference.reference import DepthEstimator
    from mono_depth_ros.networks.checkpoint import CheckpointError, load_model

    try:
        model = load_model(checkpoint)
    except CheckpointError as error:
        raise ValueError(str(error)) from error
    return DepthEstimator(model, device=device, precision=precision)


def resize_prediction(pred: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize a depth prediction to the ground-truth (H, W) with bilinear interpolation."""
    pred = np.asarray(pred, dtype=np.float32)
    if pred.shape == tuple(size):
        return pred
    return cv2.resize(pred, (size[1], size[0]), interpolation=cv2.INTER_LINEAR)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line arguments of mono-depth-eval."""
    parser = argparse.ArgumentParser(prog='mono-depth-eval', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_split_arguments(parser)
    model = parser.add_mutually_exclusive_group(required=True)
    model.add_argument('--checkpoint', help='model checkpoint to run on the split images')
    model.add_argument('--pred-npz', help='saved predictions: N×H×W metric depths in split '
                                          'order (.npz with one array, or .npy)')
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
    parser.add_argument('--device', default='auto', help='auto, cpu or cuda (--checkpoint)')
    parser.add_argument('--precision', default='fp32', choices=('fp32', 'fp16', 'bf16'))
    args = parser.parse_args(argv)
    if not args.min_depth < args.max_depth:
        parser.error(f'--min-depth {args.min_depth} must be below --max-depth {args.max_depth}')
    return args


def evaluate(args: argparse.Namespace) -> dict:
    """Score every frame of the split; write the reports; return the metrics.json content."""
    label, entries, source = resolve_split(args)
    args.crop = args.crop or PROTOCOLS.get(args.split or '', {}).get('crop', 'garg')
    crop = None if args.crop == 'none' else args.crop
    gt_table, gt_name = None, describe_source(source, args.camera_z)
    if args.gt_npz:
        lines, depths, gt_name = load_gt_npz(args.gt_npz)
        gt_table = dict(zip(lines, depths, strict=True))
    preds = load_pred_npz(args.pred_npz, len(entries)) if args.pred_npz else None
    estimator = make_estimator(args.checkpoint, args.device, args.precision) if (
        args.checkpoint) else None
    show = set(np.linspace(0, len(entries) - 1, min(args.montage_frames, len(entries)))
               .round().astype(int).tolist()) if args.montage_frames > 0 else set()
    limits = (crop, args.min_depth, args.max_depth, args.median_scaling)
    rows, skipped, montage, bins = [], [], [], DistanceBins(args.max_depth)
    for index, entry in enumerate(tqdm(entries, desc='evaluate', unit='frame')):
        try:
            if gt_table is not None:
                if entry.line() not in gt_table:
                    raise FileNotFoundError(f'{args.gt_npz} has no ground truth for this frame')
                gt = gt_table[entry.line()]
            else:
                gt = load_ground_truth(args.data_path, entry, source, not args.camera_z)
            image = read_image(entry.image_path(args.data_path, args.image_ext)) if (
                estimator or index in show) else None
        except FileNotFoundError as error:
            if not args.skip_missing:
                raise FileNotFoundError(f'frame "{entry.line()}": {error} '
                                        '(use --skip-missing to skip such frames)') from error
            skipped.append(entry.line())
            continue
        if estimator is not None:
            fx = load_intrinsics(entry.calib_dir(args.data_path), entry.camera)[0][0, 0]
            pred = estimator.predict(image, fx=fx).depth
        else:
            pred = preds[index]
        pred = resize_prediction(pred, gt.shape)
        try:
            mask, gt_valid, pred_valid = scored_pixels(gt, pred, *limits)
        except ValueError as error:
            raise ValueError(f'frame "{entry.line()}": {error}') from error
        bins.add(gt_valid, pred_valid)
        rows.append({'index': index, 'frame': entry.line(), 'valid_pixels': int(mask.sum()),
                     **depth_errors(gt_valid, pred_valid)})
        if index in show:
            label_text = f'{entry.folder.split("/")[-1]}\nframe {entry.frame} {entry.side}'
            panels = montage_row(cv2.resize(image, (gt.shape[1], gt.shape[0])), gt, pred, mask,
                                 args.min_depth, args.max_depth)
            montage.append((label_text, panels))
    if not rows:
        raise FileNotFoundError(f'all {len(entries)} frames of {label} miss files')
    report = {**average_metrics(rows), 'frames': len(rows), 'skipped': len(skipped),
              'split': label, 'ground_truth': gt_name, 'crop': args.crop,
              'min_depth': args.min_depth, 'max_depth': args.max_depth,
              'median_scaling': args.median_scaling,
              'prediction': args.pred_npz or args.checkpoint, 'interpolation': 'bilinear',
              'by_distance': bins.table(), 'skipped_frames': skipped}
    write_reports(args.output_dir, report, rows, bins, montage)
    return report


def write_reports(folder: str, report: dict, rows: list[dict], bins: DistanceBins,
                  montage: list) -> None:
    """Write metrics.json, per_frame.csv, error_by_distance.png and montage.png into folder."""
    ensure_dir(folder)
    with open(os.path.join(folder, 'metrics.json'), 'w', encoding='utf-8') as stream:
        json.dump(without_nan(report), stream, indent=2)
    write_csv(os.path.join(folder, 'per_frame.csv'), rows)
    bins.plot(os.path.join(folder, 'error_by_distance.png'),
              f'{report["split"]}: {report["frames"]} frames')
    if montage:
        save_montage(os.path.join(folder, 'montage.png'), montage, report['min_depth'],
                     report['max_depth'])


def without_nan(value):
    """Replace NaN floats (empty distance bins) by None, recursively, for strict JSON."""
    if isinstance(value, dict):
        return {key: without_nan(item) for key, item in value.items()}
    if isinstance(value, list):
        return [without_nan(item) for item in value]
    return None if isinstance(value, float) and value != value else value


def main(argv: list[str] | None = None) -> int:
    """Run the evaluation and print the standard table."""
    args = parse_args(argv)
    try:
        report = evaluate(args)
    except (OSError, ValueError) as error:
        print(f'mono-depth-eval: error: {error}', file=sys.stderr)
        return 1
    print(f'split {report["split"]}: {report["frames"]} frames scored, {report["skipped"]} '
          f'skipped ({report["ground_truth"]} ground truth, crop {report["crop"]}, '
          f'{report["min_depth"]:g}-{report["max_depth"]:g} m'
          f'{", median scaling" if report["median_scaling"] else ""})')
    print(format_table({name: report[name] for name in METRIC_NAMES}))
    print(f'reports: {os.path.abspath(args.output_dir)}/(metrics.json, per_frame.csv, '
          'error_by_distance.png, montage.png)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
