"""The node's frame pipeline in one process: FramePipeline.process without DDS, by stage.

A camera image message (rgb8, the bench's image) and its CameraInfo go through
ros.pipeline.FramePipeline.process with the node's default output parameters, wanting the topics
the node bench subscribes to (depth and points, and depth/camera_info that goes with depth). Its
calls alternate with the model-only call of the same estimator (predict_batch on an image at the
network input, computing what the defaults need: confidence while min_confidence > 0), so the
ratio of the two is not moved by the machine's drift. Every call records its stage marks
(core.stages) on time.monotonic().
"""

from collections.abc import Callable
import time

import numpy as np

from mono_depth_ros.core.constants import KITTI_IMAGE_SIZE, KITTI_INTRINSICS
from mono_depth_ros.core.geometry import scale_intrinsics
from mono_depth_ros.core.stages import StageClock
from mono_depth_ros.timing.latency import (
    paired_speedup,
    summarize_latency,
    summarize_stages,
)
from mono_depth_ros.timing.model_timing import bench_image, build_bench_model

# The outputs the node bench's client subscribes to (depth/camera_info comes with depth).
BENCH_TOPICS = ('depth', 'depth/camera_info', 'points')


def bench_messages(image: np.ndarray):
    """The Image (rgb8) and plumb-bob CameraInfo (KITTI intrinsics scaled to the image) the
    benches send, with an unset stamp."""
    from std_msgs.msg import Header

    from mono_depth_ros.ros.conversions import numpy_to_image
    from mono_depth_ros.ros.depth_messages import intrinsics_camera_info

    header = Header(frame_id='camera_optical_frame')
    intrinsics = scale_intrinsics(*KITTI_INTRINSICS, KITTI_IMAGE_SIZE, image.shape[:2])
    return (numpy_to_image(image, 'rgb8', header),
            intrinsics_camera_info(intrinsics, image.shape[:2], header))


def bench_estimator(model: str, input_size: tuple[int, int], backend: str = 'fast',
                    device: str = 'cpu', precision: str = 'fp32'):
    """The estimator the benches time: random weights of model on a backend, warmed up."""
    from mono_depth_ros.inference.backends import create_estimator

    estimator = create_estimator(build_bench_model(model), backend, device, precision,
                                 tuple(input_size))
    estimator.warm_up()
    return estimator


def default_confidence(topics: tuple[str, ...] = BENCH_TOPICS) -> bool:
    """Whether the node's default parameters make the network compute confidence for topics
    (min_confidence > 0, or depth/confidence wanted)."""
    from mono_depth_ros.inference.outputs import needs_confidence, OutputSettings
    from mono_depth_ros.ros.params import load_defaults

    return needs_confidence('depth/confidence' in topics,
                            OutputSettings.from_params(load_defaults()))


def model_only_call(estimator, input_size: tuple[int, int],
                    topics: tuple[str, ...] = BENCH_TOPICS) -> Callable[[], object]:
    """The model-only call the node and pipeline rows are compared with: predict_batch of an
    image at the network input, computing what the defaults need for topics."""
    image, confidence = bench_image(tuple(input_size)), default_confidence(topics)
    return lambda: estimator.predict_batch([image], confidence=confidence)


def bench_pipeline(model: str, input_size: tuple[int, int], camera_size: tuple[int, int],
                   backend: str = 'fast', device: str = 'cpu', precision: str = 'fp32',
                   iters: int = 10, warmup: int = 2,
                   topics: tuple[str, ...] = BENCH_TOPICS) -> dict:
    """One row: FramePipeline.process latency and stages (p50 ms), and the model-only latency
    of its calls alternating with it."""
    from mono_depth_ros.inference.outputs import OutputSettings
    from mono_depth_ros.ros.params import load_defaults
    from mono_depth_ros.ros.pipeline import FramePipeline

    params = load_defaults()
    estimator = bench_estimator(model, input_size, backend, device, precision)
    pipeline = FramePipeline(estimator, OutputSettings.from_params(params), params['rectify'])
    image_msg, info = bench_messages(bench_image(camera_size))
    model_only = model_only_call(estimator, input_size, topics)
    for _ in range(warmup):
        pipeline.process(image_msg, info, topics)
        model_only()
    times: dict[str, list[float]] = {'pipeline': [], 'model': []}
    clocks = []
    for _ in range(iters):
        clock = StageClock(time.monotonic())
        pipeline.process(image_msg, info, topics, clock)
        times['pipeline'].append((clock.last() - clock.marks[0][1]) * 1000.0)
        clocks.append(clock)
        start = time.perf_counter()
        model_only()
        times['model'].append((time.perf_counter() - start) * 1000.0)
    stages = [{name: 1000.0 * s for name, s in clock.durations().items()} for clock in clocks]
    return {'model': model, 'input_size': list(input_size), 'backend': f'pipeline ({backend})',
            'camera_size': list(camera_size), 'topics': list(topics),
            **summarize_latency(times['pipeline']),
            'model_only_p50_ms': float(np.median(times['model'])),
            'model_only_confidence': default_confidence(topics),
            'pipeline_over_model': paired_speedup(times['pipeline'], times['model']),
            'stages_p50_ms': summarize_stages(stages)}
