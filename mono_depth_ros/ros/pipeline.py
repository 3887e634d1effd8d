"""The frame pipeline: one camera frame in, the node's output messages out (no rclpy).

image (Image or CompressedImage) + CameraInfo (or None: fallback_intrinsics) → RGB →
rectified RGB (CameraInfo with distortion, rectify auto) → intrinsics (prepare) →
DepthEstimator (any backend; the frames of several cameras in one batch) → output arrays
(inference.outputs) → messages (ros.depth_messages), every one with the input header (infer).
mono_depth_node runs it live and mono-depth-bag over a recorded bag, so both publish the same
messages for the same frame.
"""

from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from sensor_msgs.msg import CameraInfo, CompressedImage

from mono_depth_ros.core.rectify import CACHE_SIZE, Calibration, Rectifier, RECTIFY_MODES
from mono_depth_ros.core.stages import recording, StageClock
from mono_depth_ros.inference.estimator import DepthEstimator, Intrinsics
from mono_depth_ros.inference.outputs import (
    DepthOutputs,
    estimate_batch_outputs,
    estimate_outputs,
    OutputSettings,
)
from mono_depth_ros.ros.conversions import camera_info_intrinsics, compressed_to_rgb, to_rgb
from mono_depth_ros.ros.depth_messages import (
    depth_camera_info,
    output_messages,
    TOPIC_COLORIZED,
    TOPIC_CONFIDENCE,
    TOPIC_POINTS,
)
from mono_depth_ros.ros.node_logic import fallback_intrinsics


def estimator_from_params(params: dict[str, Any]) -> tuple[DepthEstimator, str]:
    """The DepthEstimator the node parameters ask for, and a name for it (for diagnostics).

    Loads params['checkpoint'] (a .pt checkpoint, or an .onnx export with backend onnx) with
    inference.backends.load_estimator, or, only when params['allow_random_weights'] is true and
    no checkpoint is given, builds params['model_config'] with random weights.
    """
    from mono_depth_ros.inference.backends import create_estimator, load_estimator
    from mono_depth_ros.networks import build_model, load_model_config

    size = (params['input_height'], params['input_width'])
    options = {'device': params['device'], 'precision': params['precision'],
               'input_size': size if all(size) else None, 'compile': params['compile']}
    if params['checkpoint']:
        estimator = load_estimator(params['checkpoint'], params['backend'], **options)
        return estimator, f'{estimator.name} ({params["checkpoint"]})'
    model = build_model(load_model_config(params['model_config']), load_pretrained=False)
    estimator = create_estimator(model.eval(), params['backend'], **options)
    return estimator, f'{estimator.name} (RANDOM WEIGHTS)'


@dataclass
class FrameResult:
    """What one frame gave: the wanted messages by topic, and the share of its pixels that the
    model put beyond range (+inf: no surface within max_depth)."""

    messages: dict[str, Any]
    beyond_fraction: float
    unrectified: bool = False   # CameraInfo has distortion but rectify is off
    clock: StageClock | None = None   # the frame's stage marks (None: not recorded)


@dataclass
class PreparedFrame:
    """One frame ready for the network: its RGB (rectified when needed), intrinsics, the
    CameraInfo of its depth (None: fallback intrinsics), pixels that saw the camera (None: all)
    and the topics wanted."""

    header: Any
    rgb: np.ndarray
    intrinsics: Intrinsics
    info: CameraInfo | None
    valid: np.ndarray | None
    wanted: frozenset[str]
    unrectified: bool
    clock: StageClock | None = None   # the frame's stage marks (None: not recorded)


class FramePipeline:
    """Turns matched camera frames into the output messages that are wanted.

    settings: the node's output parameters (inference.outputs.OutputSettings); replace the
    attribute to apply new values. rectify: 'auto' rectifies an image whose CameraInfo has
    distortion (remap tables cached per calibration, for up to `cameras` cameras) and publishes
    depth in the rectified camera (P); 'off' takes every image as rectified. Bad input
    (encoding, sizes, CameraInfo) raises ConversionError or ValueError naming the problem;
    nothing is published for that frame. fallback: the fallback_intrinsics parameter, used for
    a frame without CameraInfo ('' refuses such a frame).
    """

    def __init__(self, estimator: DepthEstimator, settings: OutputSettings,
                 rectify: str = 'auto', cameras: int = 1, fallback: str = '') -> None:
        if rectify not in RECTIFY_MODES:
            raise ValueError(f'rectify must be one of {RECTIFY_MODES}, got {rectify!r}')
        self.estimator = estimator
        self.settings = settings
        self.rectify = rectify
        self.fallback = fallback
        self.rectifier = Rectifier(cache_size=CACHE_SIZE * max(1, cameras))

    def process(self, image_msg: Any, info: CameraInfo | None, wanted: Collection[str],
                clock: StageClock | None = None) -> FrameResult:
        """Output messages by topic (only the wanted topics) for an image and its CameraInfo.

        Only what a wanted topic needs is computed: confidence when depth/confidence is
        wanted (or min_confidence filters the cloud), the colour view and the cloud when their
        topics are wanted. clock: records the end of each stage (core.stages).
        """
        return self.infer([self.prepare(image_msg, info, wanted, clock)])[0]

    def prepare(self, image_msg: Any, info: CameraInfo | None, wanted: Collection[str],
                clock: StageClock | None = None) -> PreparedFrame:
        """Decode, check and (rectify auto, D ≠ 0) rectify one frame for infer; clock records
        the end of decode and rectify."""
        rgb = compressed_to_rgb(image_msg) if isinstance(image_msg, CompressedImage) \
            else to_rgb(image_msg)
        size = rgb.shape[:2]
        intrinsics = camera_info_intrinsics(info, size) if info is not None \
            else fallback_intrinsics(size, self.fallback)
        calib = camera_info_calibration(info, size) if info is not None else None
        distorted = calib is not None and calib.is_distorted()
        if clock is not None:
            clock.mark('decode')
        valid = None
        if distorted and self.rectify == 'auto':
            rgb, valid = self.rectifier.rectify(rgb, calib)
            intrinsics = calib.rectified_intrinsics()
            info = rectified_camera_info(info, calib)
        if clock is not None:
            clock.mark('rectify')
        return PreparedFrame(image_msg.header, rgb, intrinsics, info, valid, frozenset(wanted),
                             unrectified=distorted and self.rectify == 'off', clock=clock)

    def infer(self, frames: Sequence[PreparedFrame]) -> list[FrameResult]:
        """The results of prepared frames (e.g. one per camera) from one network batch; each
        is what process gives for that frame alone.

        A frame with a clock gets the marks of the batch: of several frames, the time spent
        preparing the later ones ('other cameras') and every frame's post-processing and
        messages (its results are published after the whole batch).
        """
        settings = [replace(self.settings, colorized=TOPIC_COLORIZED in frame.wanted,
                            points=TOPIC_POINTS in frame.wanted) for frame in frames]
        confidence = [TOPIC_CONFIDENCE in frame.wanted for frame in frames]
        clocks = [frame.clock for frame in frames]
        if len(frames) == 1:
            frame = frames[0]
            with recording(frame.clock):
                return [frame_result(frame, estimate_outputs(
                    self.estimator, frame.rgb, frame.intrinsics, settings[0],
                    confidence=confidence[0], valid=frame.valid))]
        batch = StageClock() if any(clock is not None for clock in clocks) else None
        if batch is not None:
            batch.mark('other cameras')
        with recording(batch):
            outputs = estimate_batch_outputs(
                self.estimator, [frame.rgb for frame in frames],
                [frame.intrinsics for frame in frames], settings, confidence,
                [frame.valid for frame in frames])
            results = [frame_result(frame, out) for frame, out in zip(frames, outputs,
                                                                       strict=True)]
        for clock in clocks:
            if clock is not None:
                clock.extend(batch.marks)
        return results


def frame_result(frame: PreparedFrame, outputs: DepthOutputs) -> FrameResult:
    """The wanted messages of one frame's output arrays, with its header."""
    size = frame.rgb.shape[:2]
    depth_info = depth_camera_info(frame.info, frame.intrinsics, size, frame.header)
    messages = output_messages(outputs, frame.header, depth_info, frame.wanted)
    beyond = np.count_nonzero(np.isposinf(outputs.depth)) / outputs.depth.size
    return FrameResult(messages, float(beyond),
                       unrectified=frame.unrectified, clock=frame.clock)


def camera_info_calibration(info: CameraInfo, size: tuple[int, int]) -> Calibration:
    """The rectification view of a CameraInfo (its size, or the image's when unset)."""
    return Calibration.from_arrays(size, info.k, info.d, info.r, info.p, info.distortion_model)


def rectified_camera_info(info: CameraInfo, calib: Calibration) -> CameraInfo:
    """CameraInfo of the rectified image: K = P's left block, no distortion, R = I, same P."""
    out = CameraInfo(header=info.header, height=info.height, width=info.width,
                     distortion_model=info.distortion_model, binning_x=info.binning_x,
                     binning_y=info.binning_y, roi=info.roi)
    matrix = calib.rectified_matrix()
    out.k = matrix.ravel()
    out.d = [0.0] * len(info.d)
    out.r = np.eye(3).ravel()
    p = np.array(info.p, dtype=np.float64)
    out.p = p if np.any(p) else np.hstack([matrix, np.zeros((3, 1))]).ravel()
    return out
