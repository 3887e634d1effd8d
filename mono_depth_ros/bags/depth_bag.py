"""The depth node over a recorded bag (mono-depth-bag): the node's frames, the same messages.

Same parameters, estimator, frame pipeline and pairing rule as mono_depth_node (ros.params,
ros.pipeline, ros.frame_sync): each image gets the CameraInfo of its stamp, or, once the camera
has sent one, waits camera_info_wait of bag time for it and then takes the camera's latest;
before any CameraInfo it waits, and only fallback_intrinsics stands in (after
camera_info_timeout). The clock is the bag's receive time, so the result is deterministic and
equals what the node publishes when the bag is played to it (as long as the node keeps up: it
drops frames it has no time for, mono-depth-bag never does). Every camera of `cameras` is served
(camera C: <namespace>/C/image or image/compressed, <namespace>/C/camera_info).

The new bag holds the input topics (with /tf_static latched) plus, next to each image topic,
depth, depth/camera_info, depth/confidence, depth/colorized and points, each with the input
image's header and receive time, so `ros2 bag play` and RViz show them as the live node would.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
import posixpath
import sys
from typing import Any

from tqdm import tqdm

from mono_depth_ros.bags.bag_io import bag_topics, BagError, BagWriter, read_bag, TF_STATIC_TOPIC
from mono_depth_ros.bags.topics import IMAGE_TYPES, INFO_TYPE, pick_topic
from mono_depth_ros.inference.outputs import OutputSettings
from mono_depth_ros.ros.conversions import ConversionError
from mono_depth_ros.ros.depth_messages import camera_topic, OUTPUT_TOGGLES, OUTPUT_TYPES
from mono_depth_ros.ros.frame_sync import FrameSync, PENDING, SyncSettings
from mono_depth_ros.ros.pipeline import estimator_from_params, FramePipeline
from mono_depth_ros.ros.stamps import header_ns, NS_PER_S

Frame = tuple[Any, int]   # (image message, bag receive time ns)


@dataclass
class BagSummary:
    """What process_bag did (over all cameras)."""

    images: int = 0
    processed: int = 0
    unmatched: int = 0               # never paired with a CameraInfo (nor the fallback)
    invalid: int = 0
    latest_camera_info: int = 0      # processed with the camera's latest CameraInfo
    fallback: int = 0                # processed with fallback_intrinsics


@dataclass
class BagCamera:
    """One camera of the bag: its topics and the node's pairing rule on the bag's clock."""

    image_topic: str
    info_topic: str | None
    namespace: str                   # of its output topics
    sync: FrameSync
    pending: list[tuple[Frame, float]] = field(default_factory=list)  # (frame, deadline s)

    def on_info(self, msg: Any) -> list[tuple[Frame, Any]]:
        """A CameraInfo arrived: the frame it completes, with it (none or one)."""
        pair, _ = self.sync.add_info(header_ns(msg), msg)
        if pair is None:
            return []
        self.pending = [item for item in self.pending if item[0] is not pair[0]]
        return [pair]

    def on_image(self, msg: Any, receive_ns: int) -> list[tuple[Frame, Any]]:
        """An image arrived: itself with its CameraInfo (or None: the fallback), or nothing
        while it waits."""
        now = receive_ns / NS_PER_S
        pair, _ = self.sync.add_image(header_ns(msg), (msg, receive_ns), now)
        if pair is None:
            return []
        if pair[1] is PENDING:
            self.pending.append((pair[0], self.sync.deadline(now)))
            return []
        return [pair]

    def due(self, now: float | None) -> list[tuple[Frame, Any, bool]]:
        """(frame, CameraInfo, the latest stood in) of the pending frames whose wait ended
        before now (all of them for None: the bag ended)."""
        done = [frame for frame, deadline in self.pending if now is None or deadline < now]
        self.pending = [item for item in self.pending if now is not None and item[1] >= now]
        return [(frame, *self.sync.settle(header_ns(frame[0]))) for frame in done]


def bag_cameras(topics: dict[str, tuple[str, int]], params: dict, image_topic: str | None,
                camera_info_topic: str | None, namespace: str | None,
                output_ns: str | None) -> list[tuple[str, str | None, str]]:
    """(image topic, CameraInfo topic or None, output namespace) of each camera to serve.

    One camera [''] and no namespace: the given image topic or the bag's only one, and the
    CameraInfo next to it (or the only one). Otherwise as the node in namespace (default /)
    with its `cameras` and image_transport.
    """
    cameras = params['cameras']
    if cameras == [''] and namespace is None:
        image = pick_topic(topics, IMAGE_TYPES, image_topic, 'image')
        if image is None:
            raise BagError('the bag has no sensor_msgs Image or CompressedImage topic')
        base = posixpath.dirname(image)
        info = pick_topic(topics, (INFO_TYPE,), camera_info_topic, 'camera info',
                          prefer=posixpath.join(base, 'camera_info'))
        return [(image, info, (output_ns if output_ns is not None else base).rstrip('/'))]
    if image_topic or camera_info_topic:
        raise BagError('--image-topic and --camera-info-topic choose one camera; with '
                       f"cameras {cameras} or --namespace the topics follow the node's names")
    compressed = params['image_transport'] == 'compressed'
    found = []
    for camera in cameras:
        base = posixpath.join(namespace or '/', camera_topic(camera, '')).rstrip('/')
        image = f'{base}/image/compressed' if compressed else f'{base}/image'
        if image not in topics or topics[image][0] not in IMAGE_TYPES:
            raise BagError(f'camera {camera!r}: no image topic {image} in the bag; bag topics: '
                           f'{sorted(topics)}')
        info = f'{base}/camera_info'
        out = posixpath.join(output_ns, camera_topic(camera, '')).rstrip('/') \
            if output_ns is not None else base
        found.append((image, info if topics.get(info, ('',))[0] == INFO_TYPE else None, out))
    return found


def process_bag(input_bag: str | Path, output_bag: str | Path, params: dict,
                image_topic: str | None = None, camera_info_topic: str | None = None,
                output_ns: str | None = None, storage: str = 'mcap',
                copy_input: bool = True, namespace: str | None = None,
                warn: Callable[[str], None] | None = None) -> BagSummary:
    """Write output_bag: the input topics plus the depth node's outputs for each frame the node
    pairs with a CameraInfo (see the module docstring)."""
    warn = warn or (lambda text: print(f'warning: {text}', file=sys.stderr))
    topics = bag_topics(input_bag)
    settings = SyncSettings.from_params(params)
    cameras = [BagCamera(image, info, out, FrameSync(settings)) for image, info, out in
               bag_cameras(topics, params, image_topic, camera_info_topic, namespace, output_ns)]
    for camera in cameras:
        if camera.info_topic is not None:
            continue
        if not settings.fallback:
            raise BagError(f'{input_bag} has no CameraInfo topic for {camera.image_topic}: '
                           'without CameraInfo nothing is processed; set -p '
                           "fallback_intrinsics=kitti (or 'fx, fy, cx, cy') to state a guess")
        warn(f'{input_bag} has no CameraInfo topic for {camera.image_topic}: using '
             f'fallback_intrinsics {settings.fallback!r} after camera_info_timeout')
    estimator, model_name = estimator_from_params(params)
    pipeline = FramePipeline(estimator, OutputSettings.from_params(params), params['rectify'],
                             cameras=len(cameras), fallback=settings.fallback)
    summary = BagSummary()
    wanted = {topic for topic, toggle in OUTPUT_TOGGLES.items() if params[toggle]}
    by_topic = {topic: camera for camera in cameras
                for topic in (camera.image_topic, camera.info_topic) if topic}
    with BagWriter(output_bag, storage=storage) as bag:
        if copy_input:
            for topic, (msgtype, _) in topics.items():
                bag.add_topic(topic, msgtype, latched=topic == TF_STATIC_TOPIC)
        for camera in cameras:
            for topic in sorted(wanted):
                bag.add_topic(f'{camera.namespace}/{topic}', OUTPUT_TYPES[topic])

        def run(camera: BagCamera, frame: Frame, info: Any) -> None:
            """Infer one frame and write its outputs at the image's receive time."""
            msg, receive_ns = frame
            try:
                messages = pipeline.process(msg, info, wanted).messages
            except (ConversionError, ValueError) as error:
                summary.invalid += 1
                tqdm.write(f'skipped frame at {receive_ns} ns on {camera.image_topic}: {error}',
                           file=sys.stderr)
                return
            for topic, out in messages.items():
                bag.write(f'{camera.namespace}/{topic}', out, receive_ns)
            summary.processed += 1
            summary.fallback += info is None

        def settle(now: float | None) -> None:
            """Run the pending frames whose wait for their own CameraInfo is over."""
            for camera in cameras:
                for frame, info, stood_in in camera.due(now):
                    summary.latest_camera_info += stood_in
                    run(camera, frame, info)

        for item in tqdm(read_bag(input_bag), total=sum(n for _, n in topics.values()),
                         desc=f'mono-depth-bag ({model_name})', unit='msg'):
            settle(item.stamp_ns / NS_PER_S)
            if copy_input:
                bag.write(item.topic, item.msg, item.stamp_ns)
            camera = by_topic.get(item.topic)
            if camera is None:
                continue
            if item.topic == camera.info_topic:
                ready = camera.on_info(item.msg)
            else:
                summary.images += 1
                ready = camera.on_image(item.msg, item.stamp_ns)
            for frame, info in ready:
                run(camera, frame, info)
        settle(None)
    summary.unmatched = summary.images - summary.processed - summary.invalid
    return summary
