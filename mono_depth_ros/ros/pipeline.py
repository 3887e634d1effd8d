"""The frame pipeline: one camera frame in, the node's output messages out (no rclpy).

image (Image or CompressedImage) + CameraInfo (or None: KITTI fallback intrinsics) → RGB →
intrinsics → DepthEstimator (any backend) → output arrays (inference.outputs) → messages
(ros.depth_messages), every one with the input header. mono_depth_node runs it live and
mono-depth-bag over a recorded bag, so both publish the same messages for the same frame.
"""

from collections.abc import Collection
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from sensor_msgs.msg import CameraInfo, CompressedImage

from mono_depth_ros.inference.estimator import DepthEstimator
from mono_depth_ros.inference.outputs import estimate_outputs, OutputSettings
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


class FramePipeline:
    """Turns one matched camera frame into the output messages that are wanted.

    settings: the node's output parameters (inference.outputs.OutputSettings); replace the
    attribute to apply new values. Bad input (encoding, sizes, CameraInfo) raises
    ConversionError or ValueError naming the problem; nothing is published for that frame.
    """

    def __init__(self, estimator: DepthEstimator, settings: OutputSettings) -> None:
        self.estimator = estimator
        self.settings = settings

    def process(self, image_msg: Any, info: CameraInfo | None,
                wanted: Collection[str]) -> FrameResult:
        """Output messages by topic (only the wanted topics) for an image and its CameraInfo.

        Only what a wanted topic needs is computed: confidence when depth/confidence is
        wanted (or min_confidence filters the cloud), the colour view and the cloud when their
        topics are wanted.
        """
        rgb = compressed_to_rgb(image_msg) if isinstance(image_msg, CompressedImage) \
            else to_rgb(image_msg)
        size = rgb.shape[:2]
        intrinsics = camera_info_intrinsics(info, size) if info is not None \
            else fallback_intrinsics(size)
        settings = replace(self.settings, colorized=TOPIC_COLORIZED in wanted,
                           points=TOPIC_POINTS in wanted)
        outputs = estimate_outputs(self.estimator, rgb, intrinsics, settings,
                                   confidence=TOPIC_CONFIDENCE in wanted)
        depth_info = depth_camera_info(info, intrinsics, size, image_msg.header)
        messages = {topic: message for topic, message in
                    output_messages(outputs, image_msg.header, depth_info).items()
                    if topic in wanted}
        return FrameResult(messages, float(np.mean(np.isposinf(outputs.depth))))
