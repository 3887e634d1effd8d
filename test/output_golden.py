"""Fixed frames through FramePipeline with a deterministic estimator: the node's messages as bytes.

Used by test_output_golden.py, which compares them with test/data/output_golden.npz, written by
the code before the node's speed work (issue 27) with `python test/output_golden.py OUT.npz`.
The estimator computes depth and confidence from the image with elementwise numpy arithmetic
(no network), so the messages depend only on the node's own code: decoding, rectification,
post-processing and message building.
"""

import sys

import numpy as np
from rclpy.serialization import serialize_message
from std_msgs.msg import Header

from mono_depth_ros.inference.estimator import DepthEstimator, Prediction
from mono_depth_ros.inference.outputs import OutputSettings
from mono_depth_ros.ros.conversions import numpy_to_image
from mono_depth_ros.ros.depth_messages import intrinsics_camera_info
from mono_depth_ros.ros.params import load_defaults
from mono_depth_ros.ros.pipeline import FramePipeline

SIZE = (40, 120)
# The output rules of config/mono_depth_node.yaml when the golden file was written; the defaults
# have moved since (min_confidence 0.02 for the second release), the code must not have.
GOLDEN_RULES = {'min_confidence': 0.01, 'cloud_edge_threshold': 0.03}
INTRINSICS = (90.0, 88.0, 59.5, 20.25)
ALL_TOPICS = ('depth', 'depth/camera_info', 'depth/confidence', 'depth/colorized', 'points')
BENCH_TOPICS = ('depth', 'depth/camera_info', 'points')


class FormulaEstimator(DepthEstimator):
    """Depth and confidence from the image by a fixed formula: a road-like ramp, a near box
    (depth edges), far and beyond-range (+inf) pixels, and confidence from the colours."""

    device = 'cpu'
    canonical_focal = 90.0
    has_confidence = True
    has_beyond = True
    config = {'name': 'formula'}

    def __init__(self, input_size=(20, 60)):
        self.input_size = input_size

    def _run(self, images, scales, confidence, points):
        predictions = []
        for image, scale in zip(images, scales, strict=True):
            height, width = image.shape[:2]
            rows = np.arange(height, dtype=np.float32)[:, None]
            cols = np.arange(width, dtype=np.float32)[None, :]
            depth = 3.0 + 60.0 / (1.0 + rows) + cols / 7.0
            depth = depth + image[..., 1].astype(np.float32) / 64.0
            depth[height // 4:height // 2, width // 3:width // 2] = 4.5  # a near box
            depth[:2, :] = np.inf                                      # sky: beyond range
            depth[-1, :5] = 0.05                                       # too near
            depth = (depth * np.float32(scale)).astype(np.float32)
            conf = None
            if confidence:
                conf = (image[..., 0].astype(np.float32) / 255.0).astype(np.float32)
                conf[::7, ::5] = 0.004  # below min_confidence
            predictions.append(Prediction(depth, conf))
        return predictions, None


def frame_image(seed: int, size=SIZE) -> np.ndarray:
    """A deterministic RGB uint8 image."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (*size, 3), dtype=np.uint8)


def frame_messages(seed: int, stamp_s: int, distorted: bool = False, size=SIZE):
    """An rgb8 Image and its CameraInfo (plumb-bob; with distortion when asked)."""
    header = Header(frame_id='golden_optical_frame')
    header.stamp.sec, header.stamp.nanosec = stamp_s, 250_000_000
    image = numpy_to_image(frame_image(seed, size), 'rgb8', header)
    info = intrinsics_camera_info(INTRINSICS, size, header)
    if distorted:
        info.d = [-0.2, 0.05, 0.001, -0.002, 0.0]
    return image, info


def cases() -> dict[str, tuple]:
    """name → (settings overrides, rectify, wanted topics, frames as (seed, distorted))."""
    return {
        'defaults_all': ({}, 'auto', ALL_TOPICS, [(1, False)]),
        'defaults_bench': ({}, 'auto', BENCH_TOPICS, [(2, False)]),
        'defaults_points_only': ({}, 'auto', ('points',), [(3, False)]),
        'rectified_all': ({}, 'auto', ALL_TOPICS, [(4, True)]),
        'rectified_bench': ({}, 'auto', BENCH_TOPICS, [(5, True)]),
        'unorganised_stride1': ({'cloud_stride': 1, 'cloud_organized': False},
                                'auto', ALL_TOPICS, [(6, False)]),
        'no_filters': ({'max_range': 0.0, 'min_confidence': 0.0, 'cloud_edge_threshold': 0.0,
                        'cloud_stride': 3}, 'auto', BENCH_TOPICS, [(7, False)]),
        'batch_two_cameras': ({}, 'auto', BENCH_TOPICS, [(8, False), (9, True)]),
        'batch_mixed_topics': ({}, 'auto', ALL_TOPICS, [(10, False), (11, False)]),
    }


def golden_messages() -> dict[str, bytes]:
    """'case|frame|topic' → the serialised message (CDR) of every case's frames."""
    params = {**load_defaults(), **GOLDEN_RULES}
    result = {}
    for name, (overrides, rectify, topics, frames) in cases().items():
        settings = OutputSettings.from_params({**params, **overrides})
        pipeline = FramePipeline(FormulaEstimator(), settings, rectify, cameras=len(frames))
        prepared = []
        for index, (seed, distorted) in enumerate(frames):
            image, info = frame_messages(seed, 100 + index, distorted)
            wanted = topics if index == 0 or name != 'batch_mixed_topics' else BENCH_TOPICS
            prepared.append(pipeline.prepare(image, info, wanted))
        results = pipeline.infer(prepared) if len(frames) > 1 else \
            [pipeline.infer(prepared)[0]]
        for index, frame in enumerate(results):
            for topic, message in frame.messages.items():
                result[f'{name}|{index}|{topic}'] = bytes(serialize_message(message))
    return result


def main(path: str) -> int:
    """Write the golden file."""
    messages = golden_messages()
    np.savez_compressed(path, **{key: np.frombuffer(value, np.uint8)
                                 for key, value in messages.items()})
    print(f'{len(messages)} messages → {path}')
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1]))
