"""mono-depth-bag-gt: lidar ground truth from a ROS 2 bag, as KITTI depth PNGs.

For every camera image (in message order) the lidar scan nearest in time (within --max-dt) is
moved into the camera's optical frame with the bag's /tf_static, projected with the CameraInfo
(nearest point per pixel, camera z) and written as uint16 depth·256 PNG:
  OUT/image/<stamp ns>.png   OUT/depth/<stamp ns>.png   OUT/calib/<first stamp ns>.yaml
  OUT/splits/all_files.txt   'image/<s>.png depth/<s>.png calib/<c>.yaml' per frame
  OUT/splits/{train,val,test}_files.txt   contiguous blocks in time (--val/--test-fraction)
Topics are found automatically when the bag holds one of a kind. Interrupted runs resume: frames
whose image and depth exist are skipped. The logic is mono_depth_ros.bags.ground_truth.
"""

import argparse
import sys

from mono_depth_ros.bags.ground_truth import DEFAULT_MAX_DT, INTRINSICS, write_ground_truth
from mono_depth_ros.datasets.kitti.lidar_gt import PIXEL_CONVENTIONS


def main(argv: list[str] | None = None) -> int:
    """Command line: mono-depth-bag-gt BAG --out DIR [options]."""
    parser = argparse.ArgumentParser(prog='mono-depth-bag-gt',
                                     description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog='\n'.join(__doc__.splitlines()[2:]))
    parser.add_argument('bag', help='bag folder (MCAP or sqlite3)')
    parser.add_argument('--out', required=True, help='output folder (created; reruns resume)')
    parser.add_argument('--image-topic', help='Image or CompressedImage topic (default: the '
                        'only one)')
    parser.add_argument('--camera-info-topic', help='CameraInfo topic (default: the one next to '
                        'the image topic, or the only one)')
    parser.add_argument('--lidar-topic', help='PointCloud2 topic (default: the only one)')
    parser.add_argument('--max-dt', type=float, default=DEFAULT_MAX_DT,
                        help=f'seconds between an image and its nearest scan; farther images '
                        f'are skipped (default {DEFAULT_MAX_DT})')
    parser.add_argument('--intrinsics', choices=INTRINSICS, default='auto',
                        help='project with CameraInfo K, or P after R (a rectified image); '
                        'auto: P for image_rect* topics, else K')
    parser.add_argument('--pixel-convention', choices=PIXEL_CONVENTIONS, default='kitti',
                        help='kitti: pixel round(u) - 1 as the KITTI ground truth '
                        '(generate_depth_map); centre: round(u)')
    parser.add_argument('--val-fraction', type=float, default=0.0,
                        help='share of the frames for splits/val_files.txt (default 0)')
    parser.add_argument('--test-fraction', type=float, default=0.0,
                        help='share of the frames for splits/test_files.txt, the last ones '
                        '(default 0); train, val and test are contiguous blocks in time')
    parser.add_argument('--no-progress', action='store_true', help='no progress bar')
    args = parser.parse_args(argv)
    try:
        summary = write_ground_truth(args.bag, args.out, args.image_topic,
                                     args.camera_info_topic, args.lidar_topic, args.max_dt,
                                     args.intrinsics, args.pixel_convention,
                                     not args.no_progress, args.val_fraction,
                                     args.test_fraction)
    except (OSError, ValueError, RuntimeError) as error:
        print(f'mono-depth-bag-gt: error: {error}', file=sys.stderr)
        return 1
    for warning in summary['warnings']:
        print(f'mono-depth-bag-gt: warning: {warning}', file=sys.stderr)
    skipped = sum(summary['skipped'].values())
    print(f'{summary["images"]} images of {summary["image_topic"]} with '
          f'{summary["lidar_topic"]}: {summary["written"]} written, {summary["resumed"]} '
          f'already there, {skipped} skipped -> {summary["out"]}')
    for reason, count in sorted(summary['skipped'].items()):
        print(f'  skipped {count}: {reason}')
    if summary['splits']:
        print('splits: ' + ', '.join(f'{name} {count}' for name, count
                                     in summary['splits'].items()) + ' (contiguous in time)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
