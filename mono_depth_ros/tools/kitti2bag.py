"""mono-depth-kitti2bag: turn a KITTI raw drive (real or synthetic) into a ROS 2 bag.

Topics (camera 2 = left colour camera; camera 3 gives .../camera_color_right/...):
  /kitti/camera_color_left/image_raw    sensor_msgs/Image rgb8, rectified
  /kitti/camera_color_left/camera_info  K = P = P_rect_02 (Tx = Ty = 0), D = 0, R = I
  /kitti/velo/pointcloud                sensor_msgs/PointCloud2 x, y, z, intensity (velo_link)
  /tf_static                            base_link -> velo_link -> camera_color_left_optical_frame
Frames and stamps: see mono_depth_ros.bags.kitti2bag.
"""

import argparse
import sys

from mono_depth_ros.bags.bag_io import STORAGES
from mono_depth_ros.bags.kitti2bag import CAMERA_NAMES, convert_drive


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog='\n'.join(__doc__.splitlines()[2:]))
    parser.add_argument('drive', help='drive folder, e.g. <root>/2011_09_26/'
                        '2011_09_26_drive_0001_sync (calibration files in its parent)')
    parser.add_argument('output', help='bag folder to create (must not exist)')
    parser.add_argument('--camera', type=int, choices=sorted(CAMERA_NAMES), default=2,
                        help='KITTI colour camera: 2 left (default), 3 right')
    parser.add_argument('--max-frames', type=int, default=None,
                        help='convert only the first N frames')
    parser.add_argument('--no-velodyne', action='store_true', help='leave out the lidar scans')
    parser.add_argument('--storage', choices=sorted(STORAGES), default='mcap',
                        help='bag storage format (default mcap)')
    args = parser.parse_args(argv)
    if args.max_frames is not None and args.max_frames < 1:
        parser.error(f'--max-frames must be >= 1, got {args.max_frames}')
    try:
        summary = convert_drive(args.drive, args.output, args.camera, args.max_frames,
                                not args.no_velodyne, args.storage)
    except (OSError, ValueError, RuntimeError) as error:
        print(f'mono-depth-kitti2bag: error: {error}', file=sys.stderr)
        return 1
    print(f'wrote {summary["frames"]} frames to {summary["bag"]}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
