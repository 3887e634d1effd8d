"""mono-depth-bag: run the depth network over a bag offline; write the node's outputs to a new bag.

Same parameters, estimator, frame pipeline and pairing of images with CameraInfo as
mono_depth_node (in bag time, so a late or half-rate CameraInfo gives the frames the node gives),
but no frame is dropped for lack of time. The new bag holds the input topics (with /tf_static
latched) plus, next to each image topic, depth, depth/camera_info, depth/confidence,
depth/colorized and points, each with the input image's header and receive time, so
`ros2 bag play` and RViz show them as the live node would. The logic is
mono_depth_ros.bags.depth_bag.
"""

import argparse
import sys

from mono_depth_ros.bags.bag_io import BagError, STORAGES
from mono_depth_ros.bags.depth_bag import process_bag
from mono_depth_ros.core.config import ConfigError
from mono_depth_ros.networks.checkpoint import CheckpointError
from mono_depth_ros.ros.params import NODE_NAME, resolve_params


def main(argv: list[str] | None = None) -> int:
    """Command line: mono-depth-bag INPUT OUTPUT [--checkpoint model.pt] [options]."""
    parser = argparse.ArgumentParser(prog='mono-depth-bag', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('input', help='input bag folder (MCAP or sqlite3)')
    parser.add_argument('output', help='output bag folder (must not exist)')
    parser.add_argument('--checkpoint', help='model checkpoint (.pt); overrides the params file, '
                        'whose empty checkpoint is the default model')
    parser.add_argument('--params-file', help=f'{NODE_NAME} params file (ros2 format); default: '
                        'config/mono_depth_node.yaml')
    parser.add_argument('-p', '--param', action='append', default=[], metavar='NAME=VALUE',
                        help='override one node parameter, e.g. -p device=cpu -p cloud_stride=4')
    parser.add_argument('--image-topic', help='image topic (default: the only image topic)')
    parser.add_argument('--camera-info-topic', help='CameraInfo topic (default: the one next to '
                        'the image topic, or the only one)')
    parser.add_argument('--namespace', help="the node's namespace: each camera C of the "
                        'parameter cameras reads <namespace>/C/image and '
                        '<namespace>/C/camera_info, as the node would (default: one camera on '
                        'the only image topic)')
    parser.add_argument('--output-ns', help='namespace of the output topics (default: that of '
                        'the image topic)')
    parser.add_argument('--storage', choices=sorted(STORAGES), default='mcap')
    parser.add_argument('--no-copy-input', action='store_true',
                        help='write only the outputs, not the input topics')
    args = parser.parse_args(argv)
    try:
        params = resolve_params(args.params_file, args.param, args.checkpoint,
                                where='mono-depth-bag parameters')
        summary = process_bag(args.input, args.output, params, args.image_topic,
                              args.camera_info_topic, args.output_ns, args.storage,
                              not args.no_copy_input, args.namespace)
    except (BagError, CheckpointError, ConfigError, OSError) as error:
        print(f'mono-depth-bag: {error}', file=sys.stderr)
        return 1
    print(f'{summary.processed} of {summary.images} images processed '
          f'({summary.latest_camera_info} with the latest CameraInfo, {summary.fallback} with '
          f'fallback_intrinsics; {summary.unmatched} without CameraInfo, {summary.invalid} '
          f'invalid) -> {args.output}')
    return 0 if summary.processed else 1


if __name__ == '__main__':
    sys.exit(main())
