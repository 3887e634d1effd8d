"""mono-depth-synth: render a synthetic KITTI-format world (images, lidar, true depth, splits)."""

import argparse
import sys

from tqdm import tqdm

from mono_depth_ros.core.constants import KITTI_CAMERA_HEIGHT, KITTI_INTRINSICS
from mono_depth_ros.datasets.synth import CameraSpec, generate_world, WORLDS


def image_size(text: str) -> tuple[int, int]:
    """Parse 'HxW' (e.g. 320x1024) into (H, W)."""
    height, sep, width = text.lower().partition('x')
    if not sep or not height.isdigit() or not width.isdigit():
        raise argparse.ArgumentTypeError(f'image size must be HEIGHTxWIDTH, e.g. 320x1024, got '
                                         f'{text!r}')
    return int(height), int(width)


def build_parser() -> argparse.ArgumentParser:
    """Command-line options of mono-depth-synth."""
    parser = argparse.ArgumentParser(prog='mono-depth-synth', description=__doc__)
    parser.add_argument('--out', required=True, help='output directory (KITTI raw layout)')
    parser.add_argument('--drives', type=int, default=2, help='number of drives (default 2)')
    parser.add_argument('--frames', type=int, default=50,
                        help='frames per drive, 10 Hz (default 50)')
    parser.add_argument('--seed', type=int, default=0, help='random seed (default 0)')
    parser.add_argument('--val-fraction', type=float, default=0.1,
                        help='fraction of each drive (its later frames) for val (default 0.1)')
    parser.add_argument('--test-fraction', type=float, default=0.1,
                        help='fraction of each drive (its last frames) for test (default 0.1)')
    parser.add_argument('--heldout-drives', type=int, default=0,
                        help='keep the last N drives out of training: all their frames go to '
                             'val and test (alternating drives), the fractions apply to the '
                             'others (default 0)')
    parser.add_argument('--stereo', action='store_true',
                        help='also render the right camera (image_03, P_rect_03)')
    parser.add_argument('--overwrite', action='store_true',
                        help='empty a non-empty output directory first')
    parser.add_argument('--world', choices=WORLDS, default='basic',
                        help='basic: the first streets and look; varied: city, residential and '
                             'rural streets with vans, trucks, hedges, walls and people, random '
                             'palettes, skies, light and exposure; mixed: odd drives basic, even '
                             'drives varied; roadside: odd drives narrow streets (facades, '
                             'gardens, hedges and parked cars close by), even drives varied and '
                             'basic by turns (default basic)')
    car = parser.add_argument_group(
        'camera', "another car's left camera (image_02); the defaults are KITTI's, and the "
        "lidar stays KITTI's; the calibration files describe the camera rendered")
    car.add_argument('--focal', type=float, default=None, metavar='PX',
                     help=f"focal length fx = fy in pixels (default KITTI's "
                          f'{KITTI_INTRINSICS[0]})')
    car.add_argument('--image-size', type=image_size, default=None, metavar='HxW',
                     help='image height x width in pixels, e.g. 320x1024 (default 375x1242); '
                          'the principal point keeps its relative place')
    car.add_argument('--camera-height', type=float, default=KITTI_CAMERA_HEIGHT, metavar='M',
                     help=f'camera height above the road in metres (default '
                          f'{KITTI_CAMERA_HEIGHT})')
    car.add_argument('--camera-pitch', type=float, default=0.0, metavar='DEG',
                     help='camera pitch in degrees, positive looks down (default 0)')
    return parser


def main(argv: list[str] | None = None) -> int:
    """Render the world with a progress bar and print where everything went."""
    args = build_parser().parse_args(argv)
    total = args.drives * args.frames if args.drives > 0 and args.frames > 0 else 0
    try:
        with tqdm(total=total, unit='frame', desc='rendering', delay=0.2) as bar:
            summary = generate_world(args.out, drives=args.drives, frames=args.frames,
                                     seed=args.seed, val_fraction=args.val_fraction,
                                     test_fraction=args.test_fraction,
                                     overwrite=args.overwrite, stereo=args.stereo,
                                     progress=bar.update, heldout_drives=args.heldout_drives,
                                     camera=CameraSpec(args.focal, args.image_size,
                                                       args.camera_height, args.camera_pitch),
                                     world=args.world)
    except (ValueError, FileExistsError) as error:
        print(f'mono-depth-synth: error: {error}', file=sys.stderr)
        return 2
    splits = summary['splits']
    print(f'wrote {summary["frames"]} frames in {len(summary["drives"])} drive(s) to '
          f'{summary["root"]} ({summary["seconds_per_frame"]:.2f} s/frame)')
    for folder in summary['drives']:
        print(f'  {folder}')
    camera = summary['camera']
    if not camera.is_kitti():
        print(f'camera: {camera} (calibration in {summary["root"]}/2011_09_26)')
    print(f'splits: train {splits["train"]}, val {splits["val"]}, test {splits["test"]} '
          f'(in {summary["root"] / "splits"})')
    return 0


if __name__ == '__main__':
    sys.exit(main())
