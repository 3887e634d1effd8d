"""The depth node over a recorded bag (mono-depth-bag): every frame, the same messages.

Same parameters, estimator and frame pipeline as mono_depth_node (ros.params, ros.pipeline),
but every image is processed (no dropping). The new bag holds the input topics (with /tf_static
latched) plus, next to the image topic, depth, depth/camera_info, depth/confidence,
depth/colorized and points, each with the input image's header and receive time, so
`ros2 bag play` and RViz show them as the live node would.
"""

from dataclasses import dataclass
from pathlib import Path
import posixpath
import sys

from tqdm import tqdm

from mono_depth_ros.bags.bag_io import bag_topics, BagError, BagWriter, read_bag, TF_STATIC_TOPIC
from mono_depth_ros.bags.topics import IMAGE_TYPES, INFO_TYPE, pick_topic
from mono_depth_ros.inference.outputs import OutputSettings
from mono_depth_ros.ros.conversions import ConversionError
from mono_depth_ros.ros.depth_messages import OUTPUT_TOGGLES, OUTPUT_TYPES
from mono_depth_ros.ros.node_logic import StampMatcher
from mono_depth_ros.ros.pipeline import estimator_from_params, FramePipeline
from mono_depth_ros.ros.stamps import header_ns, seconds_to_ns


@dataclass
class BagSummary:
    """What process_bag did."""

    images: int = 0
    processed: int = 0
    unmatched: int = 0
    invalid: int = 0
    fallback: bool = False


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
    estimator, model_name = estimator_from_params(params)
    pipeline = FramePipeline(estimator, OutputSettings.from_params(params), params['rectify'])
    matcher = StampMatcher(seconds_to_ns(params['stamp_tolerance']))
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
                messages = pipeline.process(msg, info, wanted).messages
            except (ConversionError, ValueError) as error:
                summary.invalid += 1
                tqdm.write(f'skipped frame at {receive_ns} ns: {error}', file=sys.stderr)
                return
            for topic, out in messages.items():
                bag.write(f'{namespace}/{topic}', out, receive_ns)
            summary.processed += 1

        total = topics[image_topic][1]
        for item in tqdm(read_bag(input_bag), total=sum(n for _, n in topics.values()),
                         desc=f'mono-depth-bag ({model_name})', unit='msg'):
            if copy_input:
                bag.write(item.topic, item.msg, item.stamp_ns)
            if item.topic == info_topic:
                pair, _ = matcher.add_info(header_ns(item.msg), item.msg)
            elif item.topic == image_topic:
                summary.images += 1
                if info_topic is None:
                    pair = ((item.msg, item.stamp_ns), None)
                else:
                    pair, _ = matcher.add_image(header_ns(item.msg), (item.msg, item.stamp_ns))
            else:
                continue
            if pair is not None:
                run(*pair)
        summary.unmatched = total - summary.processed - summary.invalid
    return summary
