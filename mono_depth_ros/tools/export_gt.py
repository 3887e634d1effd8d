"""mono-depth-export-gt: export the evaluation ground truth of a KITTI split once, as an npz."""

import argparse
import os
import sys

import numpy as np
from tqdm import tqdm

from mono_depth_ros.datasets.kitti.ground_truth import (
    GT_SOURCES,
    load_ground_truth,
    PROTOCOLS,
    save_gt_npz,
)
from mono_depth_ros.datasets.kitti.splits import read_split, SPLIT_FILES, SplitEntry


def add_split_arguments(parser: argparse.ArgumentParser) -> None:
    """Add --data-path, --split / --split-file, --gt, --camera-z and --skip-missing."""
    parser.add_argument('--data-path', required=True,
                        help='KITTI raw root (holding 2011_09_26/ ...) or a synthetic world')
    which = parser.add_mutually_exclusive_group(required=True)
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


def resolve_split(args: argparse.Namespace) -> tuple[str, list[SplitEntry], str]:
    """Return (split label, entries, ground-truth source) from parsed split arguments."""
    label = args.split or os.fspath(args.split_file)
    entries = read_split(args.split or args.split_file)
    source = args.gt or PROTOCOLS.get(args.split or '', {}).get('gt', 'velodyne')
    if not os.path.isdir(args.data_path):
        raise FileNotFoundError(f'data path not found: {args.data_path}')
    return label, entries, source


def export_ground_truth(data_path: str, entries: list[SplitEntry], source: str,
                        vel_depth: bool = True, skip_missing: bool = False
                        ) -> tuple[list[str], list[np.ndarray], list[str]]:
    """Load the ground truth of every entry: (exported lines, depth maps, skipped lines)."""
    lines, depths, skipped = [], [], []
    for entry in tqdm(entries, desc='ground truth', unit='frame'):
        try:
            depth = load_ground_truth(data_path, entry, source, vel_depth)
        except FileNotFoundError as error:
            if not skip_missing:
                raise FileNotFoundError(f'frame "{entry.line()}": {error} '
                                        '(use --skip-missing to skip such frames)') from error
            skipped.append(entry.line())
            continue
        lines.append(entry.line())
        depths.append(depth)
    if not depths:
        raise FileNotFoundError(f'all {len(entries)} frames of the split miss files under '
                                f'{data_path} (first: {skipped[0]})')
    return lines, depths, skipped


def main(argv: list[str] | None = None) -> int:
    """Export ground truth of a split to an npz (one float32 array per frame, in split order)."""
    parser = argparse.ArgumentParser(prog='mono-depth-export-gt', description=__doc__)
    add_split_arguments(parser)
    parser.add_argument('--output', default='gt_depths.npz',
                        help='npz file to write (default: gt_depths.npz)')
    args = parser.parse_args(argv)
    try:
        label, entries, source = resolve_split(args)
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


def describe_source(source: str, camera_z: bool) -> str:
    """Name the ground truth stored in an export: improved, velodyne-x or velodyne-z."""
    if source == 'improved':
        return 'improved'
    return 'velodyne-z' if camera_z else 'velodyne-x'


if __name__ == '__main__':
    sys.exit(main())
