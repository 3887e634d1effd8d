"""mono-depth-bag: run the depth network over a bag offline; write the node's outputs to a new bag.

Same parameters, inference and messages as mono_depth_node (node_params, depth_outputs,
ros.depth_messages), but every image is processed (no dropping). The new bag holds the input
topics (with /tf_static latched) plus, next to the image topic, depth, depth/camera_info,
depth/confidence, depth/colorized and points, each with the input image's header and receive
time, so `ros2 bag play` and RViz show them as the live node would.
"""

import argparse
from dataclasses import dataclass
from pathlib import Path
import posixpath
import sys

from tqdm import tqdm

from mono_depth_ros.core.config import ConfigError
from mono_depth_ros.inference.outputs import estimate_outputs, OutputSettings
from mono_depth_ros.networks.checkpoint import CheckpointError
from mono_depth_ros.ros.bag_io import (
    bag_topics,
    BagError,
    BagWriter,
    read_bag,
    STORAGES,
    TF_STATIC_TOPIC,
)
from mono_depth_ros.ros.conversions import (
    camera_info_intrinsics,
    compressed_to_rgb,
    ConversionError,
    to_rgb,
)
from mono_depth_ros.ros.depth_messages import (
    depth_camera_info,
    output_messages,
    OUTPUT_TOGGLES,
    OUTPUT_TYPES,
    TOPIC_CONFIDENCE,
)
from mono_depth_ros.ros.node_logic import fallback_intrinsics, load_estimator, StampMatcher
from mono_depth_ros.ros.params import (
    check_model_source,
    load_defaults,
    NODE_NAME,
    ParamError,
    read_params_file,
    validate,
)

IMAGE_TYPES = ('sensor_msgs/msg/Image', 'sensor_msgs/msg/CompressedImage')
INFO_TYPE = 'sensor_msgs/msg/CameraInfo'


@dataclass
class BagSummary:
    """What process_bag did."""

    images: int = 0
    processed: int = 0
    unmatched: int = 0
    invalid: int = 0
    fallback: bool = False


def pick_topic(topics: dict[str, tuple[str, int]], types: tuple[str, ...], given: str | None,
               what: str, prefer: str | None = None) -> str | None:
    """The topic to use: given (checked), the preferred one, or the only one of those types."""
    if given:
        if given not in topics or topics[given][0] not in types:
            raise BagError(f'{what} topic {given} is not in the bag with type {types}; bag '
                           f'topics: {sorted(topics)}')
        return given
    found = sorted(t for t, (kind, _) in topics.items() if kind in types)
    if prefer in found:
        return prefer
    if len(found) > 1:
        raise BagError(f'the bag has several {what} topics {found}; choose one with '
                       f'--{what.replace(" ", "-")}-topic')
    return found[0] if found else None


def load_params(params_file: str | None, overrides: list[str], checkpoint: str | None) -> dict:
    """Node parameters: the package defaults, then a params file, then NAME=VALUE overrides."""
    import yaml

    values = load_defaults()
    if params_file:
        values.update(read_params_file(params_file))
    for item in overrides:
        name, sep, raw = item.partition('=')
        if not sep:
            raise ParamError(f'override {item!r} must look like name=value')
        values[name] = yaml.safe_load(raw)
    if checkpoint:
        values['checkpoint'] = checkpoint
    values = validate(values, where='mono-depth-bag parameters')
    check_model_source(values)
    return values


def process_bag(input_bag: str | Path, output_bag: str | Path, params: dict,
                image_topic: str | None = None, camera_info_topic: str | None = None,
                output_ns: str | None = None, storage: str = 'mcap',
                copy_input: bool = True) -> BagSummary:
    """Write output_bag: the input topics plus the depth node's outputs for every image."""
    topics = bag_topics(input_bag)
    image_topic = pick_topic(topics, IMAGE_TYPES, image_topic, 'image')
    if image_topic is None:
        raise BagError(f'{input_bag} has no sensor_msgs Image or CompressedImage topic')
    base = posixpath.dirname(image_topic)
    info_topic = pick_topic(topics, (INFO_TYPE,), camera_info_topic, 'camera info',
                            prefer=posixpath.join(base, 'camera_info'))
    namespace = (output_ns if output_ns is not None else base).rstrip('/')
    estimator, model_name = load_estimator(params)
    settings = OutputSettings.from_params(params)
    matcher = StampMatcher(int(params['stamp_tolerance'] * 1e9))
    summary = BagSummary(fallback=info_topic is None)
    if info_topic is None:
        print(f'warning: {input_bag} has no CameraInfo topic: using the KITTI intrinsics '
              'scaled to the image size', file=sys.stderr)
    wanted = {topic for topic, toggle in OUTPUT_TOGGLES.items() if params[toggle]}
    with BagWriter(output_bag, storage=storage) as bag:
        if copy_input:
            for topic, (msgtype, _) in topics.items():
                bag.add_topic(topic, msgtype, latched=topic == TF_STATIC_TOPIC)
        for topic in sorted(wanted):
            bag.add_topic(f'{namespace}/{topic}', OUTPUT_TYPES[topic])

        def run(image_item, info) -> None:
            """Infer one frame and write its outputs at the image's receive time."""
            msg, receive_ns = image_item
            try:
                rgb = to_rgb(msg) if hasattr(msg, 'encoding') else compressed_to_rgb(msg)
                size = rgb.shape[:2]
                intrinsics = camera_info_intrinsics(info, size) if info is not None \
                    else fallback_intrinsics(size)
            except (ConversionError, ValueError) as error:
                summary.invalid += 1
                tqdm.write(f'skipped frame at {receive_ns} ns: {error}', file=sys.stderr)
                return
            outputs = estimate_outputs(estimator, rgb, intrinsics, settings,
                                       confidence=TOPIC_CONFIDENCE in wanted)
            camera_info = depth_camera_info(info, intrinsics, size, msg.header)
            for topic, out in output_messages(outputs, msg.header, camera_info).items():
                if topic in wanted:
                    bag.write(f'{namespace}/{topic}', out, receive_ns)
            summary.processed += 1

        total = topics[image_topic][1]
        for item in tqdm(read_bag(input_bag), total=sum(n for _, n in topics.values()),
                         desc=f'mono-depth-bag ({model_name})', unit='msg'):
            if copy_input:
                bag.write(item.topic, item.msg, item.stamp_ns)
            stamp = item.msg.header.stamp.sec * 10**9 + item.msg.header.stamp.nanosec \
                if item.topic in (image_topic, info_topic) else None
            if item.topic == info_topic:
                pair, _ = matcher.add_info(stamp, item.msg)
            elif item.topic == image_topic:
                summary.images += 1
                if info_topic is None:
                    pair = ((item.msg, item.stamp_ns), None)
                else:
                    pair, _ = matcher.add_image(stamp, (item.msg, item.stamp_ns))
            else:
                continue
            if pair is not None:
                run(*pair)
        summary.unmatched = total - summary.processed - summary.invalid
    return summary


def main(argv: list[str] | None = None) -> int:
    """Command line: mono-depth-bag INPUT OUTPUT --checkpoint model.pt [options]."""
    parser = argparse.ArgumentParser(prog='mono-depth-bag', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('input', help='input bag folder (MCAP or sqlite3)')
    parser.add_argument('output', help='output bag folder (must not exist)')
    parser.add_argument('--checkpoint', help='model checkpoint (.pt); overrides the params file')
    parser.add_argument('--params-file', help=f'{NODE_NAME} params file (ros2 format); default: '
                        'config/mono_depth_node.yaml')
    parser.add_argument('-p', '--param', action='append', default=[], metavar='NAME=VALUE',
                        help='override one node parameter, e.g. -p device=cpu -p cloud_stride=4')
    parser.add_argument('--image-topic', help='image topic (default: the only image topic)')
    parser.add_argument('--camera-info-topic', help='CameraInfo topic (default: the one next to '
                        'the image topic, or the only one)')
    parser.add_argument('--output-ns', help='namespace of the output topics (default: that of '
                        'the image topic)')
    parser.add_argument('--storage', choices=sorted(STORAGES), default='mcap')
    parser.add_argument('--no-copy-input', action='store_true',
                        help='write only the outputs, not the input topics')
    args = parser.parse_args(argv)
    try:
        params = load_params(args.params_file, args.param, args.checkpoint)
        summary = process_bag(args.input, args.output, params, args.image_topic,
                              args.camera_info_topic, args.output_ns, args.storage,
                              not args.no_copy_input)
    except (BagError, CheckpointError, ConfigError, OSError) as error:
        print(f'mono-depth-bag: {error}', file=sys.stderr)
        return 1
    print(f'{summary.processed} of {summary.images} images processed '
          f'({summary.unmatched} without CameraInfo, {summary.invalid} invalid) -> {args.output}')
    return 0 if summary.processed else 1


if __name__ == '__main__':
    sys.exit(main())
