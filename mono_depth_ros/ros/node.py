"""mono_depth_node: camera image + CameraInfo in; metric depth, confidence and a cloud out.

Thin rclpy layer: ros.params (parameters), ros.node_logic (newest-frame slot, stamp matcher,
statistics) and ros.pipeline (the frame pipeline that mono-depth-bag runs too: image and
CameraInfo in, output messages out). Inference runs in a worker thread that always takes the
newest frame, so latency never builds up.
"""

import re
import sys
import threading
import time
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import (
    FloatingPointRange,
    IntegerRange,
    ParameterDescriptor,
    ParameterType,
    SetParametersResult,
)
import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from mono_depth_ros.inference.outputs import OutputSettings
from mono_depth_ros.ros.conversions import ConversionError
from mono_depth_ros.ros.depth_messages import (
    diagnostics_message,
    OUTPUT_TOGGLES,
    OUTPUT_TYPES,
    TOPIC_DIAGNOSTICS,
)
from mono_depth_ros.ros.node_logic import ErrorThrottle, FrameStats, LatestSlot, StampMatcher
from mono_depth_ros.ros.params import (
    check_model_source,
    check_value,
    load_defaults,
    NODE_NAME,
    ParamError,
    SPECS,
    validate,
)
from mono_depth_ros.ros.pipeline import estimator_from_params, FramePipeline
from mono_depth_ros.ros.stamps import header_ns, seconds_to_ns

PARAMETER_TYPES = {bool: ParameterType.PARAMETER_BOOL, int: ParameterType.PARAMETER_INTEGER,
                   float: ParameterType.PARAMETER_DOUBLE, str: ParameterType.PARAMETER_STRING}


def descriptor(spec) -> ParameterDescriptor:
    """The rcl_interfaces descriptor of a ros.params spec (type, range, read_only, text)."""
    desc = ParameterDescriptor(name=spec.name, type=PARAMETER_TYPES[spec.type],
                               description=spec.description, read_only=spec.read_only,
                               additional_constraints=spec.limits())
    if spec.range is not None and spec.type is float:
        desc.floating_point_range = [FloatingPointRange(
            from_value=float(spec.range[0]), to_value=float(spec.range[1]), step=0.0)]
    elif spec.range is not None:
        desc.integer_range = [IntegerRange(from_value=int(spec.range[0]),
                                           to_value=int(spec.range[1]), step=spec.step)]
    return desc


def qos(name: str) -> QoSProfile:
    """sensor_data (best effort, keep last 5) or reliable (keep last 5)."""
    if name == 'sensor_data':
        return qos_profile_sensor_data
    return QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)


class MonoDepthNode(Node):
    """The depth node; raises ParamError (what to set) when it cannot start."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(NODE_NAME, **kwargs)
        self.params = self._declare_parameters()
        check_model_source(self.params)
        if not self.params['checkpoint']:
            self.get_logger().warn(
                'allow_random_weights is true and no checkpoint is set: RANDOM WEIGHTS, the '
                'depth is meaningless. Set checkpoint:=<file.pt> for real depth.')
        self.estimator, self.model_name = estimator_from_params(self.params)
        self.pipeline = FramePipeline(self.estimator, OutputSettings.from_params(self.params),
                                      self.params['rectify'])
        self._unrectified_warned = False
        self.stats = FrameStats()
        self.throttle = ErrorThrottle(self.params['error_log_period'])
        self.matcher = StampMatcher(seconds_to_ns(self.params['stamp_tolerance']))
        self.slot = LatestSlot()
        self._lock = threading.Lock()
        self._first_image_at: float | None = None
        self._last_info_at: float | None = None
        self._fallback_logged = False
        self._errors_reported = self._unmatched_reported = 0
        self._make_interfaces()
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self._running = True
        self._worker = threading.Thread(target=self._work, name='depth_worker', daemon=True)
        self._worker.start()
        self.get_logger().info(
            f'model {self.model_name} on {self.estimator.device} ({self.params["precision"]}); '
            f'input {self.params["image_transport"]} on {self._image_topic}')

    def _declare_parameters(self) -> dict[str, Any]:
        """Declare every parameter once (defaults from the params file) and validate them."""
        defaults = load_defaults()
        values = {}
        for spec in SPECS:
            try:
                value = self.declare_parameter(spec.name, defaults[spec.name],
                                               descriptor(spec)).value
            except Exception as error:  # noqa: BLE001 - rclpy raises several types here
                allowed = f'{spec.type.__name__} {spec.limits()}'.rstrip()
                raise ParamError(f'parameter {spec.name!r}: {error}; set it to: {allowed}') \
                    from error
            values[spec.name] = value
        overrides = set(getattr(self, '_parameter_overrides', {}))
        unknown = sorted(overrides - set(self._parameters))
        if unknown:
            raise ParamError(f'unknown parameter(s) {unknown}; valid parameters are '
                             f'{sorted(values)}')
        return validate(values, where=f'{NODE_NAME} parameters')

    def _make_interfaces(self) -> None:
        """Subscriptions, publishers and the diagnostics timer."""
        compressed = self.params['image_transport'] == 'compressed'
        self._image_topic = 'image/compressed' if compressed else 'image'
        in_qos, out_qos = qos(self.params['input_qos']), qos(self.params['output_qos'])
        self.create_subscription(CompressedImage if compressed else Image, self._image_topic,
                                 self._on_image, in_qos)
        self.create_subscription(CameraInfo, 'camera_info', self._on_camera_info, in_qos)
        self.pubs = {topic: self.create_publisher(kind, topic, out_qos)
                     for topic, kind in OUTPUT_TYPES.items()}
        self.diag_pub = self.create_publisher(DiagnosticArray, TOPIC_DIAGNOSTICS, 10)
        self.create_timer(self.params['diagnostics_period'], self._publish_diagnostics)

    def _on_set_parameters(self, changes) -> SetParametersResult:
        """Accept run-time changes that pass ros.params validation; update the settings."""
        try:
            new = dict(self.params)
            for change in changes:
                new[change.name] = check_value(change.name, change.value)
            new = validate(new)
        except ParamError as error:
            return SetParametersResult(successful=False, reason=str(error))
        self.params = new
        self.pipeline.settings = OutputSettings.from_params(new)
        self.pipeline.rectify = new['rectify']
        self.matcher.tolerance_ns = seconds_to_ns(new['stamp_tolerance'])
        self.throttle.period = new['error_log_period']
        return SetParametersResult(successful=True)

    def _wanted(self) -> set[str]:
        """Output topics that are enabled and have at least one subscriber."""
        return {topic for topic, pub in self.pubs.items()
                if self.params[OUTPUT_TOGGLES[topic]] and pub.get_subscription_count() > 0}

    def _on_camera_info(self, msg: CameraInfo) -> None:
        """Buffer a CameraInfo; process the waiting image it completes."""
        with self._lock:
            self._last_info_at = time.monotonic()
            pair, given_up = self.matcher.add_info(header_ns(msg), msg)
        self._count_unmatched(given_up)
        if pair is not None:
            self._enqueue(*pair)

    def _on_image(self, msg) -> None:
        """Match an image with its CameraInfo (or the fallback) and hand it to the worker."""
        now = time.monotonic()
        self.stats.count('received')
        with self._lock:
            self._first_image_at = self._first_image_at or now
        if not self._wanted():
            self.stats.count('skipped_no_subscribers')
            return
        frame, given_up = (msg, now), 0
        with self._lock:
            silent_since = self._last_info_at or self._first_image_at
            if now - silent_since >= self.params['camera_info_timeout']:
                self._warn_fallback()
                pair = (frame, None)
            else:
                pair, given_up = self.matcher.add_image(header_ns(msg), frame)
        self._count_unmatched(given_up)
        if pair is not None:
            self._enqueue(*pair)

    def _count_unmatched(self, count: int) -> None:
        """Count images given up for lack of a CameraInfo with their stamp; warn (throttled)."""
        if count:
            self.stats.count('dropped_unmatched', count)
            if self.throttle.should_log('unmatched', time.monotonic()):
                self.get_logger().warn(
                    'dropped an image: no CameraInfo arrived with its stamp (check the '
                    'camera_info topic, or raise stamp_tolerance)')

    def _warn_fallback(self) -> None:
        """Warn (once per silence) that the KITTI intrinsics stand in for CameraInfo."""
        if not self._fallback_logged:
            self._fallback_logged = True
            self.get_logger().warn(
                f'no CameraInfo on {self.resolve_topic_name("camera_info")} for '
                f'{self.params["camera_info_timeout"]} s: using the KITTI intrinsics scaled to '
                'the image size; metric scale and the cloud are only right for a KITTI camera')

    def _enqueue(self, frame, info) -> None:
        """Put a matched frame in the newest-frame slot; a replaced frame counts as dropped."""
        if info is not None:
            self._fallback_logged = False
        if self.slot.put((frame, info)):
            self.stats.count('dropped_busy')

    def _report(self, kind: str, message: str) -> None:
        """Record a bad input in the statistics and log it at most once per throttle period."""
        self.stats.error(message)
        key = kind + re.sub(r'[\d.]+', '#', message)
        if self.throttle.should_log(key, time.monotonic()):
            self.get_logger().error(f'dropped frame: {message}')

    def _work(self) -> None:
        """Worker thread: process the newest frame whenever one is waiting."""
        while self._running:
            item = self.slot.take(timeout=0.2)
            if item is None:
                continue
            try:
                self._process(*item)
            except (ConversionError, ValueError) as error:
                self.stats.count('invalid')
                self._report('input', str(error))
            except Exception as error:  # noqa: BLE001 - keep the node alive, report the failure
                self._report('failure', f'{type(error).__name__}: {error}')

    def _process(self, frame, info: CameraInfo | None) -> None:
        """Run the frame pipeline on one frame and publish what is subscribed."""
        (msg, received_at) = frame
        wanted = self._wanted()
        if not wanted:
            self.stats.count('skipped_no_subscribers')
            return
        result = self.pipeline.process(msg, info, wanted)
        if result.unrectified and not self._unrectified_warned:
            self._unrectified_warned = True
            self.get_logger().warn(
                'CameraInfo has distortion but rectify is off: depth and cloud are computed as '
                'if the image were rectified. Set rectify:=auto, or feed image_rect.')
        for topic, message in result.messages.items():
            self.pubs[topic].publish(message)
        self.stats.processed_frame(received_at, time.monotonic(), result.beyond_fraction)

    def _publish_diagnostics(self) -> None:
        """Publish rate, latency, counters, device, model and the last error."""
        stats = self.stats.snapshot()
        stats['recent_error'] = stats['errors'] > self._errors_reported
        unmatched = stats['dropped_unmatched'] > self._unmatched_reported
        self._errors_reported, self._unmatched_reported = stats['errors'], \
            stats['dropped_unmatched']
        with self._lock:
            fallback = self._fallback_logged
        info = {'device': str(self.estimator.device), 'model': self.model_name,
                'precision': self.params['precision'],
                'intrinsics': 'KITTI fallback' if fallback else 'camera_info'}
        warning = 'no CameraInfo: using KITTI fallback intrinsics' if fallback else \
            'images without a CameraInfo of the same stamp' if unmatched else ''
        self.diag_pub.publish(diagnostics_message(stats, info, self.get_clock().now().to_msg(),
                                                  warning))

    def destroy_node(self) -> None:
        """Stop the worker thread, then destroy the node."""
        self._running = False
        self.slot.close()
        self._worker.join(timeout=5.0)
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    """Run mono_depth_node until shut down; exit 1 with a message when it cannot start."""
    rclpy.init(args=args)
    node = None
    try:
        node = MonoDepthNode()
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception as error:  # noqa: BLE001 - a start-up failure ends in one clear message
        if node is not None:
            raise
        print(f'[{NODE_NAME}] cannot start: {error}', file=sys.stderr, flush=True)
        return 1
    finally:
        if node is not None:
            node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
    return 0


if __name__ == '__main__':
    sys.exit(main())
