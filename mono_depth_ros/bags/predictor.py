"""Score a bag of the node's outputs (live recording or mono-depth-bag) against ground truth.

The depth, confidence and cloud messages of one namespace are matched to split entries by the
header stamp the camera image had: the drive's image timestamps (KITTI timestamps.txt, as
mono-depth-kitti2bag stamps them), or the stamp a mono-depth-bag-gt frame is named by.
mono-depth-eval --bag uses it.
"""

from pathlib import Path
import posixpath

import numpy as np

from mono_depth_ros.bags.bag_io import bag_topics, BagError, read_bag
from mono_depth_ros.datasets.bag_gt import BagGtEntry
from mono_depth_ros.datasets.kitti.io import parse_timestamp
from mono_depth_ros.datasets.kitti.splits import SplitEntry
from mono_depth_ros.evaluation.evaluate import FramePrediction
from mono_depth_ros.ros.conversions import image_to_numpy, pointcloud2_to_array, split_xyz_rgb
from mono_depth_ros.ros.depth_messages import TOPIC_CONFIDENCE, TOPIC_DEPTH, TOPIC_POINTS
from mono_depth_ros.ros.stamps import header_ns

IMAGE_TYPE = 'sensor_msgs/msg/Image'


def depth_namespace(topics: dict[str, tuple[str, int]], namespace: str | None) -> str:
    """The namespace whose `depth` topic is scored: given (checked) or the only one."""
    found = sorted(posixpath.dirname(t) for t, (kind, _) in topics.items()
                   if kind == IMAGE_TYPE and posixpath.basename(t) == TOPIC_DEPTH)
    if namespace is not None:
        namespace = namespace.rstrip('/')
        if namespace not in found:
            raise BagError(f'the bag has no {namespace}/{TOPIC_DEPTH} Image topic; depth topics: '
                           f'{[f"{n}/{TOPIC_DEPTH}" for n in found]}')
        return namespace
    if len(found) != 1:
        raise BagError(f'the bag has {len(found)} depth topics '
                       f'{[f"{n}/{TOPIC_DEPTH}" for n in found]}; choose one with --bag-ns')
    return found[0]


class BagPredictor:
    """The published depth (and confidence and organised cloud, when recorded) of each entry."""

    needs_image = False

    def __init__(self, bag: str | Path, data_path: str | Path,
                 namespace: str | None = None) -> None:
        topics = bag_topics(bag)
        self.namespace = depth_namespace(topics, namespace)
        self.name = f'{bag} ({self.namespace}/{TOPIC_DEPTH})'
        self.data_path = Path(data_path)
        wanted = {f'{self.namespace}/{topic}': topic
                  for topic in (TOPIC_DEPTH, TOPIC_CONFIDENCE, TOPIC_POINTS)}
        self.frames: dict[int, dict] = {}
        for item in read_bag(bag, [name for name in wanted if name in topics]):
            self.frames.setdefault(header_ns(item.msg), {})[wanted[item.topic]] = item.msg
        self._stamps: dict[tuple[str, int], list[int]] = {}

    def stamp(self, entry: SplitEntry | BagGtEntry) -> int:
        """The stamp (ns) the camera image of an entry carries: its drive's timestamp, or a
        bag-gt frame's name."""
        if isinstance(entry, BagGtEntry):
            return entry.stamp_ns()
        key = (entry.folder, entry.camera)
        if key not in self._stamps:
            path = self.data_path / entry.folder / f'image_0{entry.camera}' / 'timestamps.txt'
            if not path.is_file():
                raise FileNotFoundError(f'timestamps file not found: {path}')
            self._stamps[key] = [parse_timestamp(line) for line in path.read_text().splitlines()
                                 if line.strip()]
        stamps = self._stamps[key]
        if entry.frame >= len(stamps):
            raise FileNotFoundError(f'{entry.folder} has no timestamp for frame {entry.frame}')
        return stamps[entry.frame]

    def __call__(self, index: int, entry: SplitEntry | BagGtEntry, image: np.ndarray | None
                 ) -> FramePrediction:
        """The recorded outputs of one frame; FileNotFoundError when the node skipped it."""
        stamp = self.stamp(entry)
        messages = self.frames.get(stamp, {})
        if TOPIC_DEPTH not in messages:
            raise FileNotFoundError(f'no {self.namespace}/{TOPIC_DEPTH} message with stamp '
                                    f'{stamp} ns in the bag')
        depth = image_to_numpy(messages[TOPIC_DEPTH]).astype(np.float32)
        confidence = image_to_numpy(messages[TOPIC_CONFIDENCE]).astype(np.float32) \
            if TOPIC_CONFIDENCE in messages else None
        cloud, stride = None, 1
        if TOPIC_POINTS in messages and messages[TOPIC_POINTS].height > 1:  # organised only
            cloud, _ = split_xyz_rgb(pointcloud2_to_array(messages[TOPIC_POINTS]))
            stride = cloud_stride(depth.shape, cloud.shape[:2])
        return FramePrediction(depth, depth, confidence, cloud, stride)


def cloud_stride(image_size: tuple[int, int], grid_size: tuple[int, int]) -> int:
    """The stride s of an organised cloud: ceil(H/s)×ceil(W/s) = its grid; ValueError if none."""
    for stride in range(1, max(image_size) + 1):
        if (-(-image_size[0] // stride), -(-image_size[1] // stride)) == tuple(grid_size):
            return stride
    raise ValueError(f'an organised cloud of {grid_size[0]}×{grid_size[1]} points is no '
                     f'stride of a {image_size[0]}×{image_size[1]} depth image')
