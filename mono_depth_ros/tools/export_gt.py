"""mono-depth-export-gt: export the evaluation ground truth of a KITTI split once, as an npz."""

import argparse
import sys

import numpy as np

from mono_depth_ros.datasets.bag_gt import is_bag_gt_folder
from mono_depth_ros.datasets.kitti.ground_truth import (
    describe_source,
    export_ground_truth,
    GT_SOURCES,
    resolve_protocol,
    save_gt_npz,
)
from mono_depth_ros.datasets.kitti.splits import SPLIT_FILES


def add_split_arguments(parser: argparse.ArgumentParser, bag_gt: bool = False) -> None:
    """Add --data-path, --split / --split-file, --gt, --camera-z and --skip-missing (bag_gt:
    the tool also reads mono-depth-bag-gt folders)."""
    parser.add_argument('--data-path', required=True,
                        help='KITTI raw root (holding 2011_09_26/ ...) or a synthetic world' + (
                            ', or a mono-depth-bag-gt folder (its bag_gt.yaml marks it; then '
                            '--split-file splits/test_files.txt, relative to it), or real frames '
                            'in the KITTI object, tracking or KITTI-360 layout (every frame, or '
                            'those --split-file names)' if bag_gt else ''))
    which = parser.add_mutually_exclusive_group(required=not bag_gt)
    which.add_argument('--split', choices=sorted(SPLIT_FILES),
                       help='packaged split: eigen (697 frames, Velodyne ground truth) or '
                            'eigen_benchmark (652 frames, improved ground truth), ...')
    which.add_argument('--split-file', help='a split list of your own, "<date>/<drive> <frame> '
                                            '<l|r>" per line (e.g. a synthetic world\'s '
                                            'splits/test_files.txt)')
    parser.add_argument('--gt', choices=GT_SOURCES, default=None,
                        help='ground-truth source (default: improved for eigen_benchmark, '
                             'else velodyne)')
    parser.add_argument('--camera-z', action='store_true',
                        help='Velodyne ground truth as camera z instead of the Velodyne forward '
                             'distance x (the standard eigen export uses x)')
    parser.add_argument('--skip-missing', action='store_true',
                        help='skip frames whose files are missing (counted in the report) '
                             'instead of stopping with an error')


def main(argv: list[str] | None = None) -> int:
    """Export ground truth of a split to an npz (one float32 array per frame, in split order)."""
    parser = argparse.ArgumentParser(prog='mono-depth-export-gt', description=__doc__)
    add_split_arguments(parser)
    parser.add_argument('--output', default='gt_depths.npz',
                        help='npz file to write (default: gt_depths.npz)')
    args = parser.parse_args(argv)
    try:
        if is_bag_gt_folder(args.data_path):
            raise ValueError(f'{args.data_path} is a mono-depth-bag-gt folder: its ground truth '
                             'is already stored (depth/*.png); mono-depth-eval reads it directly')
        label, entries, source = resolve_protocol(args.data_path, args.split, args.split_file,
                                                  args.gt)
        lines, depths, skipped = export_ground_truth(args.data_path, entries, source,
                                                     not args.camera_z, args.skip_missing)
        save_gt_npz(args.output, lines, depths, describe_source(source, args.camera_z))
    except (OSError, ValueError) as error:
        print(f'mono-depth-export-gt: error: {error}', file=sys.stderr)
        return 1
    valid = np.mean([np.count_nonzero(depth) for depth in depths])
    print(f'split {label}: exported {len(depths)} frames ({source} ground truth, '
          f'{valid:.0f} valid pixels per frame on average), skipped {len(skipped)} '
          f'-> {args.output}')
    for line in skipped[:10]:
        print(f'  skipped (missing files): {line}')
    if len(skipped) > 10:
        print(f'  ... and {len(skipped) - 10} more')
    return 0


if __name__ == '__main__':
    sys.exit(main())
