"""Lidar ground truth from a ROS 2 bag (the logic of mono-depth-bag-gt).

For every camera image, in message order, the lidar scan nearest in time (header stamps, within
max_dt) is moved into the image's optical frame (its header frame_id) with the bag's /tf_static,
projected with the CameraInfo (datasets.kitti.lidar_gt: nearest point per pixel, camera z) and
written as a KITTI depth-completion PNG next to the image:

  OUT/image/<stamp ns>.png   the camera image (RGB PNG)
  OUT/depth/<stamp ns>.png   uint16 depth·256 (metres), 0 = no point
  OUT/calib/<stamp ns>.yaml  one per calibration, named by the stamp of its first image
  OUT/splits/all_files.txt   'image/<s>.png depth/<s>.png calib/<c>.yaml', one frame a line
  OUT/splits/{train,val,test}_files.txt   the same lines as contiguous blocks in time
  OUT/bag_gt.yaml            the settings; a rerun resumes only with the same ones

Every check of the input (topics, /tf_static, CameraInfo, image sizes and encodings, cloud
fields) runs before anything is written. Files are written atomically (temporary name, then
os.replace), and a rerun skips the frames whose image and depth both exist.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
import posixpath
from typing import Any

import numpy as np
from sensor_msgs.msg import CompressedImage, PointCloud2
from tqdm import tqdm
import yaml

from mono_depth_ros.bags.bag_io import bag_topics, BagError, msgtype_of, read_bag, TF_STATIC_TOPIC
from mono_depth_ros.bags.topics import IMAGE_TYPES, INFO_TYPE, pick_topic
from mono_depth_ros.core.transforms import FrameTree, pose_matrix, TransformError
from mono_depth_ros.datasets.bag_gt import (
    block_splits,
    HELDOUT_SPLITS,
    SETTINGS_FILE,
    SPLIT_FILE,
    split_file,
)
from mono_depth_ros.datasets.kitti.lidar_gt import (
    camera_depth_map,
    camera_projection,
    encode_depth_png,
    PIXEL_CONVENTIONS,
    transform_points,
    write_atomic,
    write_png,
    xyz_points,
)
from mono_depth_ros.ros.conversions import (
    camera_info_intrinsics,
    COLOR_ENCODINGS,
    compressed_to_rgb,
    ConversionError,
    pointcloud2_to_array,
    to_rgb,
)
from mono_depth_ros.ros.stamps import header_ns, NS_PER_S, seconds_to_ns

CLOUD_TYPE = msgtype_of(PointCloud2)
COMPRESSED_TYPE = msgtype_of(CompressedImage)
DEFAULT_MAX_DT = 0.05           # seconds between an image and its lidar scan
INTRINSICS = ('auto', 'K', 'P')
NO_SCAN = 'no lidar scan within max_dt'
# Settings a rerun into the same folder may change: the split lists are written anew each run.
RERUN_FREE = ('bag', 'max_dt', 'val_fraction', 'test_fraction')
DUPLICATE = 'duplicate image stamp'


@dataclass
class Calib:
    """One calibration of the camera: the CameraInfo, image size and projection it gives."""

    name: str                   # the stamp (ns) of its first image: calib/<name>.yaml
    info: Any
    size: tuple[int, int]       # (H, W)
    projection: np.ndarray      # 3×4
    rotation: np.ndarray        # 3×3, into the projection's frame


@dataclass
class Frame:
    """One image of the bag and what becomes of it."""

    index: int                  # position among the image topic's messages
    stamp_ns: int
    calib: str
    lidar: int | None = None    # position of its scan among the lidar topic's messages
    skip: str | None = None     # why it gets no ground truth

    def files(self, out: Path) -> tuple[Path, Path]:
        """(image PNG, depth PNG) of this frame below out."""
        return out / 'image' / f'{self.stamp_ns}.png', out / 'depth' / f'{self.stamp_ns}.png'


@dataclass
class GtPlan:
    """Everything checked before writing: topics, frames, the extrinsics, the calibrations."""

    image_topic: str
    info_topic: str
    lidar_topic: str
    camera_frame: str
    lidar_frame: str
    lidar_to_camera: np.ndarray
    use_p: bool
    frames: list[Frame]
    calibs: dict[str, Calib]
    warnings: list[str] = field(default_factory=list)


def only_frame(frames: set[str], topic: str) -> str:
    """The one header frame_id the messages of a topic carry; BagError otherwise."""
    if len(frames) != 1 or '' in frames:
        raise BagError(f'messages of {topic} must all carry one non-empty header frame_id, '
                       f'got {sorted(frames)}')
    return frames.pop()


def lidar_transform(tree: FrameTree, camera_frame: str, lidar_frame: str, image_topic: str,
                    lidar_topic: str) -> np.ndarray:
    """4×4 transform of lidar points into the camera frame; BagError naming the frames."""
    try:
        return tree.lookup(camera_frame, lidar_frame)
    except TransformError as error:
        raise BagError(f'no transform between the lidar frame {lidar_frame!r} ({lidar_topic}) '
                       f'and the camera frame {camera_frame!r} ({image_topic}) in '
                       f'{TF_STATIC_TOPIC}; {TF_STATIC_TOPIC} holds the frames: '
                       f'{", ".join(tree.frames) or "none"} ({error})') from None


def nearest_finder(stamps: list[int]) -> Callable[[int], tuple[int, int]]:
    """A function of a stamp: (position in stamps of the nearest one, |difference| in ns).

    Of two equally near stamps the earlier wins.
    """
    order = np.argsort(np.array(stamps, dtype=np.int64), kind='stable')
    ordered = np.array(stamps, dtype=np.int64)[order]

    def nearest(stamp: int) -> tuple[int, int]:
        """Position and distance of the stamp nearest to stamp."""
        at = int(np.searchsorted(ordered, stamp))
        gap, i = min((abs(int(ordered[i]) - stamp), i) for i in (at - 1, at)
                     if 0 <= i < len(ordered))
        return int(order[i]), gap

    return nearest


def plan_ground_truth(bag: str | Path, image_topic: str | None = None,
                      info_topic: str | None = None, lidar_topic: str | None = None,
                      max_dt: float = DEFAULT_MAX_DT, intrinsics: str = 'auto') -> GtPlan:
    """Read a bag's headers, CameraInfo and /tf_static and check them; BagError when unusable."""
    if intrinsics not in INTRINSICS:
        raise BagError(f'intrinsics must be one of {INTRINSICS}, got {intrinsics!r}')
    if not max_dt >= 0:
        raise BagError(f'max_dt must be >= 0 seconds, got {max_dt}')
    topics = bag_topics(bag)
    image_topic = pick_topic(topics, IMAGE_TYPES, image_topic, 'image')
    if image_topic is None:
        raise BagError(f'{bag} has no sensor_msgs Image or CompressedImage topic; topics: '
                       f'{sorted(topics)}')
    base = posixpath.dirname(image_topic.removesuffix('/compressed'))
    info_topic = pick_topic(topics, (INFO_TYPE,), info_topic, 'camera info',
                            prefer=posixpath.join(base, 'camera_info'))
    if info_topic is None or topics[info_topic][1] == 0:
        raise BagError(f'{bag} has no CameraInfo ({INFO_TYPE}) messages: the camera '
                       f'intrinsics are needed to project the lidar; topics: {sorted(topics)}')
    lidar_topic = pick_topic(topics, (CLOUD_TYPE,), lidar_topic, 'lidar')
    if lidar_topic is None:
        raise BagError(f'{bag} has no {CLOUD_TYPE} topic; topics: {sorted(topics)}')
    compressed = topics[image_topic][0] == COMPRESSED_TYPE
    images, infos, scans = [], [], []
    tree = FrameTree()
    wanted = [image_topic, info_topic, lidar_topic] + \
        ([TF_STATIC_TOPIC] if TF_STATIC_TOPIC in topics else [])
    for item in read_bag(bag, wanted):
        msg = item.msg
        if item.topic == TF_STATIC_TOPIC:
            for t in msg.transforms:
                v, q = t.transform.translation, t.transform.rotation
                tree.add(t.header.frame_id, t.child_frame_id,
                         pose_matrix((v.x, v.y, v.z), (q.x, q.y, q.z, q.w)))
        elif item.topic == image_topic:
            if compressed:  # only the first one is decoded here; the others when written
                try:
                    size = compressed_to_rgb(msg).shape[:2] if not images else None
                except ConversionError as error:
                    raise BagError(f'image {image_topic} at {header_ns(msg)} ns: '
                                   f'{error}') from None
            elif msg.encoding not in COLOR_ENCODINGS:
                raise BagError(f'image {image_topic} at {header_ns(msg)} ns has encoding '
                               f'{msg.encoding!r}; supported: {", ".join(COLOR_ENCODINGS)}')
            else:
                size = (msg.height, msg.width)
            images.append((header_ns(msg), msg.header.frame_id, size))
        elif item.topic == info_topic:
            infos.append((header_ns(msg), msg))
        else:
            names = {f.name for f in msg.fields}
            if not {'x', 'y', 'z'} <= names:
                raise BagError(f'lidar {lidar_topic} at {header_ns(msg)} ns has no x, y, z '
                               f'fields; fields: {sorted(names)}')
            scans.append((header_ns(msg), msg.header.frame_id))
    for topic, messages in ((image_topic, images), (lidar_topic, scans)):
        if not messages:
            raise BagError(f'topic {topic} of {bag} holds no messages')
    camera_frame = only_frame({frame for _, frame, _ in images}, image_topic)
    lidar_frame = only_frame({frame for _, frame in scans}, lidar_topic)
    lidar_to_camera = lidar_transform(tree, camera_frame, lidar_frame, image_topic, lidar_topic)
    use_p = intrinsics == 'P' or (intrinsics == 'auto' and any(
        part.startswith('image_rect') for part in image_topic.split('/')))
    plan = GtPlan(image_topic, info_topic, lidar_topic, camera_frame, lidar_frame,
                  lidar_to_camera, use_p, [], {})
    plan_frames(plan, images, infos, scans, max_dt)
    return plan


def calib_name(plan: GtPlan, info: Any, size: tuple[int, int], stamp: int, keys: dict) -> str:
    """Name of the calibration of an image (CameraInfo and size), checked and made on first use."""
    key = (tuple(info.k), tuple(info.d), tuple(info.r), tuple(info.p), info.distortion_model,
           info.width, info.height, size)
    if key in keys:
        return keys[key]
    try:
        camera_info_intrinsics(info, size)
        projection, rotation = camera_projection(info.k, info.p, info.r, plan.use_p)
    except (ConversionError, ValueError) as error:
        raise BagError(f'CameraInfo {plan.info_topic} for the image {plan.image_topic} at '
                       f'{stamp} ns: {error}') from None
    keys[key] = str(stamp)
    plan.calibs[str(stamp)] = Calib(str(stamp), info, tuple(size), projection, rotation)
    if not plan.use_p and any(info.d):
        plan.warnings.append(
            f'CameraInfo D is not zero ({info.distortion_model}) but {plan.image_topic} looks '
            'unrectified: the lidar is projected with K, without the distortion; use a '
            'rectified image topic with --intrinsics P for exact pixels')
    return keys[key]


def plan_frames(plan: GtPlan, images: list, infos: list, scans: list, max_dt: float) -> None:
    """Give each image its calibration and its nearest scan (or a reason to skip it)."""
    nearest_info = nearest_finder([stamp for stamp, _ in infos])
    nearest_scan = nearest_finder([stamp for stamp, _ in scans])
    limit, keys, seen, closest = seconds_to_ns(max_dt), {}, set(), None
    for index, (stamp, _, size) in enumerate(images):
        info = infos[nearest_info(stamp)[0]][1]
        size = size or images[0][2]  # compressed: the first one's, checked again when written
        frame = Frame(index, stamp, calib_name(plan, info, size, stamp, keys))
        scan, gap = nearest_scan(stamp)
        closest = gap if closest is None else min(closest, gap)
        if stamp in seen:
            frame.skip = DUPLICATE
        elif gap > limit:
            frame.skip = NO_SCAN
        else:
            frame.lidar = scan
        seen.add(stamp)
        plan.frames.append(frame)
    if all(frame.lidar is None for frame in plan.frames):
        raise BagError(f'no image of {plan.image_topic} has a {plan.lidar_topic} scan within '
                       f'{max_dt} s (the nearest is {closest / NS_PER_S:.3f} s away); '
                       'raise --max-dt')


def calib_yaml(plan: GtPlan, calib: Calib, pixel_convention: str) -> str:
    """A calibration as camera_calibration_parsers' YAML, plus the frames and extrinsics used."""
    info = calib.info

    def matrix(values, rows: int, cols: int) -> dict:
        """One matrix entry of the YAML."""
        return {'rows': rows, 'cols': cols, 'data': [float(v) for v in np.ravel(values)]}

    return yaml.safe_dump({
        'image_width': calib.size[1], 'image_height': calib.size[0],
        'camera_name': plan.camera_frame,
        'camera_matrix': matrix(info.k, 3, 3),
        'distortion_model': info.distortion_model,
        'distortion_coefficients': matrix(info.d, 1, len(info.d)),
        'rectification_matrix': matrix(info.r, 3, 3),
        'projection_matrix': matrix(info.p, 3, 4),
        'frame_id': plan.camera_frame,
        'first_stamp_ns': int(calib.name),
        'depth_projection': 'P' if plan.use_p else 'K',
        'pixel_convention': pixel_convention,
        'lidar_frame': plan.lidar_frame,
        'lidar_to_camera': matrix(plan.lidar_to_camera, 4, 4),
    }, sort_keys=False, default_flow_style=None)


def check_settings(out: Path, settings: dict) -> None:
    """BagError when out holds ground truth made with other settings (RERUN_FREE aside)."""
    path = out / SETTINGS_FILE
    if not path.is_file():
        return
    old = yaml.safe_load(path.read_text()) or {}
    differ = sorted(k for k in settings if k not in RERUN_FREE and old.get(k) != settings[k])
    if differ:
        raise BagError(f'{out} holds ground truth written with other settings '
                       f'({", ".join(f"{k}: {old.get(k)!r} now {settings[k]!r}" for k in differ)}'
                       '); use another --out or remove it')


def frame_ground_truth(plan: GtPlan, frame: Frame, image_msg: Any, scan_msg: Any, out: Path,
                       pixel_convention: str) -> str | None:
    """Write one frame's image and depth PNGs; the reason when the frame cannot be used."""
    calib = plan.calibs[frame.calib]
    try:
        if msgtype_of(image_msg) == COMPRESSED_TYPE:
            rgb = compressed_to_rgb(image_msg)
        else:
            rgb = to_rgb(image_msg)
        points = xyz_points(pointcloud2_to_array(scan_msg))
    except (ConversionError, ValueError) as error:
        return f'unreadable message ({error})'
    if rgb.shape[:2] != calib.size:
        return 'image size differs from its CameraInfo'
    points = transform_points(points, plan.lidar_to_camera)
    depth = camera_depth_map(points, calib.projection, calib.size, calib.rotation,
                             pixel_convention)
    image_path, depth_path = frame.files(out)
    write_png(image_path, rgb)
    write_png(depth_path, encode_depth_png(depth))  # last: its presence marks the frame done
    return None


def write_ground_truth(bag: str | Path, out: str | Path, image_topic: str | None = None,
                       info_topic: str | None = None, lidar_topic: str | None = None,
                       max_dt: float = DEFAULT_MAX_DT, intrinsics: str = 'auto',
                       pixel_convention: str = 'kitti', progress: bool = True,
                       val_fraction: float = 0.0, test_fraction: float = 0.0) -> dict:
    """Write the lidar ground truth of every image of a bag below out; returns a summary.

    The split lists: all frames, and train, val and test as contiguous blocks in message order
    (val_fraction and test_fraction of the frames, the held-out ones last).
    """
    if pixel_convention not in PIXEL_CONVENTIONS:
        raise BagError(f'pixel convention must be one of {PIXEL_CONVENTIONS}, got '
                       f'{pixel_convention!r}')
    plan = plan_ground_truth(bag, image_topic, info_topic, lidar_topic, max_dt, intrinsics)
    usable = [f'{f.stamp_ns}' for f in plan.frames if f.skip is None]
    try:
        block_splits(usable, val_fraction, test_fraction)
    except ValueError as error:
        raise BagError(f'{len(usable)} frame(s) with a scan cannot be split: {error}') from None
    out = Path(out)
    settings = {'bag': str(Path(bag).resolve()), 'image_topic': plan.image_topic,
                'camera_info_topic': plan.info_topic, 'lidar_topic': plan.lidar_topic,
                'camera_frame': plan.camera_frame, 'lidar_frame': plan.lidar_frame,
                'depth_projection': 'P' if plan.use_p else 'K',
                'pixel_convention': pixel_convention, 'max_dt': max_dt,
                'val_fraction': val_fraction, 'test_fraction': test_fraction}
    check_settings(out, settings)
    for sub in ('image', 'depth', 'calib', 'splits'):
        (out / sub).mkdir(parents=True, exist_ok=True)
    write_atomic(out / SETTINGS_FILE, yaml.safe_dump(settings, sort_keys=False).encode())
    for calib in plan.calibs.values():
        write_atomic(out / 'calib' / f'{calib.name}.yaml',
                     calib_yaml(plan, calib, pixel_convention).encode())
    skipped: dict[str, int] = {}
    for frame in plan.frames:
        if frame.skip:
            skipped[frame.skip] = skipped.get(frame.skip, 0) + 1
    todo = [f for f in plan.frames if f.skip is None and not all(p.is_file()
                                                                 for p in f.files(out))]
    resumed = sum(1 for f in plan.frames if f.skip is None) - len(todo)
    written = stream_frames(plan, todo, bag, out, pixel_convention, skipped, progress,
                            len(plan.frames) - len(todo))
    done = [f for f in plan.frames if f.skip is None and all(p.is_file() for p in f.files(out))]
    lines = [f'image/{f.stamp_ns}.png depth/{f.stamp_ns}.png calib/{f.calib}.yaml\n'
             for f in done]
    write_atomic(out / SPLIT_FILE, ''.join(lines).encode())
    try:
        blocks = block_splits(lines, val_fraction, test_fraction)
    except ValueError as error:   # frames lost while writing (unreadable messages)
        blocks = {}
        plan.warnings.append(f'no train/val/test lists: {len(lines)} frame(s) written, {error}')
    for name in HELDOUT_SPLITS:
        if name in blocks:
            write_atomic(out / split_file(name), ''.join(blocks[name]).encode())
    return {'out': str(out), 'images': len(plan.frames), 'written': written,
            'resumed': resumed, 'skipped': skipped, 'listed': len(done),
            'splits': {name: len(block) for name, block in blocks.items()},
            'image_topic': plan.image_topic, 'camera_info_topic': plan.info_topic,
            'lidar_topic': plan.lidar_topic, 'calibrations': len(plan.calibs),
            'warnings': plan.warnings}


def stream_frames(plan: GtPlan, todo: list[Frame], bag: str | Path, out: Path,
                  pixel_convention: str, skipped: dict[str, int], progress: bool,
                  done_already: int) -> int:
    """Write the frames of todo in one pass over the bag; returns how many were written.

    An image waits for its scan when the scan comes later in the bag; a scan is kept until the
    last image that needs it is written.
    """
    by_image = {frame.index: frame for frame in todo}
    users: dict[int, list[Frame]] = {}
    for frame in todo:
        users.setdefault(frame.lidar, []).append(frame)
    waiting: dict[int, Any] = {}     # image index -> message, waiting for its scan
    scans: dict[int, Any] = {}       # scan index -> message still needed
    written, counts = 0, {plan.image_topic: 0, plan.lidar_topic: 0}
    bar = tqdm(total=len(plan.frames), initial=done_already, desc='bag-gt', unit='frame',
               disable=not progress)

    def finish(frame: Frame, image_msg: Any) -> None:
        """Write one frame with its scan and release the scan after its last image."""
        nonlocal written
        reason = frame_ground_truth(plan, frame, image_msg, scans[frame.lidar], out,
                                    pixel_convention)
        if reason is None:
            written += 1
        else:
            skipped[reason] = skipped.get(reason, 0) + 1
        users[frame.lidar].remove(frame)
        if not users[frame.lidar]:
            del scans[frame.lidar]
        bar.update()

    with bar:
        for item in read_bag(bag, [plan.image_topic, plan.lidar_topic]):
            index = counts[item.topic]
            counts[item.topic] += 1
            if item.topic == plan.lidar_topic:
                if users.get(index):
                    scans[index] = item.msg
                    for frame in [f for f in users[index] if f.index in waiting]:
                        finish(frame, waiting.pop(frame.index))
            elif index in by_image:
                frame = by_image[index]
                if frame.lidar in scans:
                    finish(frame, item.msg)
                else:
                    waiting[index] = item.msg
    return written
