"""sensor_msgs / diagnostic_msgs messages of the depth node's outputs (no rclpy).

Every output copies the input header (stamp and optical frame_id). Shared by mono_depth_node and
mono-depth-bag so live and offline outputs are the same messages.
"""

from collections.abc import Collection
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
import numpy as np
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
from std_msgs.msg import Header

from mono_depth_ros.core import stages
from mono_depth_ros.inference.outputs import DepthOutputs
from mono_depth_ros.ros.conversions import depth_to_image, make_pointcloud2, numpy_to_image
from mono_depth_ros.ros.stamps import set_stamp, stamp_ns

# Output topic names relative to the node namespace (REP 118 / image_pipeline conventions).
TOPIC_DEPTH = 'depth'
TOPIC_DEPTH_INFO = 'depth/camera_info'
TOPIC_CONFIDENCE = 'depth/confidence'
TOPIC_COLORIZED = 'depth/colorized'
TOPIC_POINTS = 'points'
TOPIC_DIAGNOSTICS = '/diagnostics'
# Per frame, when the end of each stage of its processing was (core.stages), for benchmarks.
TOPIC_STAGE_TIMES = 'stage_times'
STAGE_TIMES_NAME = 'stage marks (time.monotonic seconds, CLOCK_MONOTONIC)'
DIAGNOSTIC_NAME = 'mono_depth_node: depth estimation'


def copy_header(header: Header) -> Header:
    """A fresh Header with the same stamp and frame_id."""
    out = Header(frame_id=header.frame_id)
    set_stamp(out.stamp, stamp_ns(header.stamp))
    return out


def intrinsics_camera_info(intrinsics: tuple[float, float, float, float],
                           image_size: tuple[int, int], header: Header) -> CameraInfo:
    """A plumb-bob CameraInfo without distortion for (fx, fy, cx, cy) at image_size (H, W)."""
    fx, fy, cx, cy = intrinsics
    info = CameraInfo(header=copy_header(header), height=image_size[0], width=image_size[1],
                      distortion_model='plumb_bob')
    info.d = [0.0] * 5
    info.k = np.array([fx, 0, cx, 0, fy, cy, 0, 0, 1], dtype=np.float64)
    info.r = np.eye(3).ravel()
    info.p = np.array([fx, 0, cx, 0, 0, fy, cy, 0, 0, 0, 1, 0], dtype=np.float64)
    return info


def depth_camera_info(info: CameraInfo | None, intrinsics: tuple[float, float, float, float],
                      image_size: tuple[int, int], header: Header) -> CameraInfo:
    """CameraInfo of the depth image: the input one re-stamped, or one from the intrinsics.

    The depth is published at the camera resolution, so the input K and P apply unchanged; a
    CameraInfo with width/height unset (0) gets the image size filled in.
    """
    if info is None:
        return intrinsics_camera_info(intrinsics, image_size, header)
    out = CameraInfo(header=copy_header(header), height=image_size[0], width=image_size[1],
                     distortion_model=info.distortion_model, binning_x=info.binning_x,
                     binning_y=info.binning_y, roi=info.roi)
    out.d, out.k, out.r, out.p = list(info.d), info.k, info.r, info.p
    return out


def output_messages(outputs: DepthOutputs, header: Header, camera_info: CameraInfo,
                    topics: Collection[str] | None = None) -> dict[str, Any]:
    """Messages by output topic for the arrays that were computed (all with the input header);
    only those of topics when given (no message is built for the others)."""
    wanted = set(OUTPUT_TYPES) if topics is None else set(topics)
    messages: dict[str, Any] = {}
    if TOPIC_DEPTH in wanted:
        messages[TOPIC_DEPTH] = depth_to_image(outputs.depth, copy_header(header))
        stages.mark('message: depth')
    if TOPIC_DEPTH_INFO in wanted:
        messages[TOPIC_DEPTH_INFO] = camera_info
    if outputs.confidence is not None and TOPIC_CONFIDENCE in wanted:
        messages[TOPIC_CONFIDENCE] = numpy_to_image(outputs.confidence, '32FC1',
                                                    copy_header(header))
        stages.mark('message: confidence')
    if outputs.colorized is not None and TOPIC_COLORIZED in wanted:
        messages[TOPIC_COLORIZED] = numpy_to_image(outputs.colorized, 'bgr8',
                                                   copy_header(header))
        stages.mark('message: colorized')
    if outputs.points is not None and TOPIC_POINTS in wanted:
        messages[TOPIC_POINTS] = make_pointcloud2(outputs.points, outputs.colors,
                                                  copy_header(header))
        stages.mark('message: points')
    return messages


OUTPUT_TYPES = {TOPIC_DEPTH: Image, TOPIC_DEPTH_INFO: CameraInfo, TOPIC_CONFIDENCE: Image,
                TOPIC_COLORIZED: Image, TOPIC_POINTS: PointCloud2}
# The node parameter that switches each output topic on (node and bag tool alike).
OUTPUT_TOGGLES = {TOPIC_DEPTH: 'publish_depth', TOPIC_DEPTH_INFO: 'publish_depth',
                  TOPIC_CONFIDENCE: 'publish_confidence', TOPIC_COLORIZED: 'publish_colorized',
                  TOPIC_POINTS: 'publish_points'}


def camera_topic(camera: str, topic: str) -> str:
    """A topic of one camera: the topic itself for camera '' (the node's own), else C/topic."""
    return f'{camera.rstrip("/")}/{topic}' if camera else topic


def diagnostic_name(camera: str = '') -> str:
    """The DiagnosticStatus name of one camera (camera '' keeps the single-camera name)."""
    return f'{DIAGNOSTIC_NAME} ({camera})' if camera else DIAGNOSTIC_NAME


def diagnostic_status(stats: dict[str, Any], info: dict[str, str], warning: str = '',
                      camera: str = '', state: str = 'active',
                      failure: str = '') -> DiagnosticStatus:
    """One camera's status: lifecycle state, counters, rate, latency, device, model, last error.

    While active: OK 'running', or WARN with the warning or a recent bad input. Otherwise OK
    with the state's name, or ERROR with the failure (a configure that failed).
    """
    level, message = DiagnosticStatus.OK, 'running' if state == 'active' else state
    if state == 'active' and warning:
        level, message = DiagnosticStatus.WARN, warning
    if state == 'active' and stats.get('last_error') and stats.get('recent_error'):
        level, message = DiagnosticStatus.WARN, f'bad input: {stats["last_error"]}'
    if failure:
        level, message = DiagnosticStatus.ERROR, failure
    status = DiagnosticStatus(level=level, name=diagnostic_name(camera), message=message,
                              hardware_id=info.get('device', ''))
    values = {'lifecycle_state': state, **info,
              **{key: value for key, value in stats.items() if key != 'recent_error'}}
    status.values = [KeyValue(key=key, value=f'{value:.2f}' if isinstance(value, float)
                              else str(value)) for key, value in values.items()]
    return status


def diagnostics_message(statuses: list[DiagnosticStatus], stamp: Any) -> DiagnosticArray:
    """A DiagnosticArray of the node's statuses (one per camera)."""
    array = DiagnosticArray(status=statuses)
    array.header.stamp = stamp
    return array


def diagnostics_values(array: DiagnosticArray, camera: str = '') -> dict[str, str]:
    """The key/value pairs of one camera's status in a DiagnosticArray ({} if absent)."""
    name = diagnostic_name(camera)
    for status in array.status:
        if status.name == name:
            return {pair.key: pair.value for pair in status.values}
    return {}


def stage_times_message(marks: Collection[tuple[str, float]], header: Header) -> DiagnosticArray:
    """A frame's stage marks (core.stages) as a DiagnosticArray with the frame's header: one
    status whose values are (stage, time.monotonic() seconds) in order."""
    status = DiagnosticStatus(level=DiagnosticStatus.OK, name=STAGE_TIMES_NAME)
    status.values = [KeyValue(key=stage, value=f'{at:.9f}') for stage, at in marks]
    return DiagnosticArray(header=copy_header(header), status=[status])


def stage_marks(array: DiagnosticArray) -> list[tuple[str, float]]:
    """The (stage, seconds) marks of a stage_times message; ValueError if it holds none."""
    for status in array.status:
        if status.name == STAGE_TIMES_NAME:
            return [(pair.key, float(pair.value)) for pair in status.values]
    raise ValueError(f'no {STAGE_TIMES_NAME!r} status in the message')
