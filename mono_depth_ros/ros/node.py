"""mono_depth_node: camera images + CameraInfo in; metric depth, confidence and a cloud out.

A lifecycle node (rclpy LifecycleNode): configure checks the parameters, loads and warms up the
model and creates the publishers; activate subscribes; deactivate unsubscribes and stops the
worker, keeping the model; cleanup frees the model (and the GPU memory it held); shutdown ends
the process. With autostart (the default) it walks to active at start, like a plain node.

Thin rclpy layer: ros.params (parameters), ros.camera (one CameraChannel per name in `cameras`:
topics; its ros.frame_handover pairs frames by the rule of ros.frame_sync, its ros.camera_report
counts and reports), ros.node_logic (newest-frame slots) and ros.pipeline (the frame pipeline).
mono-depth-bag (bags.depth_bag) runs the same pairing rule and pipeline over a bag. One worker
thread takes the newest frame of every camera that has one and runs them through the network as
one batch, so latency never builds up.
"""

import ctypes
import os
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
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn

from mono_depth_ros.core.stages import StageClock
from mono_depth_ros.inference.backends import release_device_memory
from mono_depth_ros.inference.outputs import OutputSettings
from mono_depth_ros.ros.camera import CameraChannel
from mono_depth_ros.ros.dds import configure_dds
from mono_depth_ros.ros.depth_messages import (
    diagnostic_status,
    diagnostics_message,
    TOPIC_DIAGNOSTICS,
)
from mono_depth_ros.ros.node_logic import LatestSlots
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

PARAMETER_TYPES = {bool: ParameterType.PARAMETER_BOOL, int: ParameterType.PARAMETER_INTEGER,
                   float: ParameterType.PARAMETER_DOUBLE, str: ParameterType.PARAMETER_STRING,
                   list: ParameterType.PARAMETER_STRING_ARRAY}
SUCCESS, FAILURE = TransitionCallbackReturn.SUCCESS, TransitionCallbackReturn.FAILURE


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


class MonoDepthNode(LifecycleNode):
    """The depth node. With autostart it is active once built, or raises what made configure
    fail (ParamError says what to set); without, it waits unconfigured.

    worker_thread: True runs the frames on a worker thread started at activate; False leaves
    them to the thread that calls serve() (main() gives them the main thread, which also ran
    the warm-up: on the CPU the network runs about 10 % slower on a second thread, whose own
    OpenMP team competes with the first one's for the cores).
    """

    def __init__(self, worker_thread: bool = True, **kwargs: Any) -> None:
        super().__init__(NODE_NAME, **kwargs)
        self.params, self._param_errors = self._declare_parameters()
        self.failure: Exception | None = None    # why the last configure failed
        self.estimator = self.pipeline = None
        self.model_name = 'none'
        self.channels: dict[str, CameraChannel] = {}
        self._slots: LatestSlots | None = None
        self._worker: threading.Thread | None = None
        self._worker_thread = worker_thread
        self._served = threading.Condition()   # serve(): slots to work on, and whether it does
        self._serving = False
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.diag_pub = self.create_publisher(DiagnosticArray, TOPIC_DIAGNOSTICS, 10)
        self.create_timer(self.params['diagnostics_period'], self._publish_diagnostics)
        if self.params['autostart']:
            try:
                self._autostart()
            except BaseException:
                self.destroy_node()
                raise

    @property
    def state(self) -> str:
        """The lifecycle state's label: unconfigured, inactive, active, finalized (or the
        transition's, such as configuring, while one runs)."""
        return self._state_machine.current_state[1]

    def _autostart(self) -> None:
        """Configure and activate; raise what made a transition fail."""
        if self.trigger_configure() != SUCCESS:
            raise self.failure or RuntimeError('configure failed')
        if self.trigger_activate() != SUCCESS:
            raise RuntimeError('activate failed (see the log)')

    def _declare_parameters(self) -> tuple[dict[str, Any], dict[str, ParamError]]:
        """Declare every parameter once (defaults from the params file); the values and, by
        name, the errors of the values that cannot be taken (configure reports them)."""
        defaults = load_defaults()
        values, errors = {}, {}
        for spec in SPECS:
            try:
                value = self.declare_parameter(spec.name, defaults[spec.name],
                                               descriptor(spec)).value
                values[spec.name] = check_value(spec.name, value)
            except Exception as error:  # noqa: BLE001 - rclpy raises several types here
                allowed = f'{spec.type_name} {spec.limits()}'.rstrip()
                errors[spec.name] = error if isinstance(error, ParamError) else ParamError(
                    f'parameter {spec.name!r}: {error}; set it to: {allowed}')
                if not self.has_parameter(spec.name):
                    self.declare_parameter(spec.name, defaults[spec.name], descriptor(spec),
                                           ignore_override=True)
                values[spec.name] = defaults[spec.name]
        overrides = set(getattr(self, '_parameter_overrides', {}))
        unknown = sorted(overrides - set(self._parameters))
        if unknown:
            errors['<unknown>'] = ParamError(f'unknown parameter(s) {unknown}; valid parameters '
                                             f'are {sorted(values)}')
        return values, errors

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
        for change in changes:
            self._param_errors.pop(change.name, None)
        if self.pipeline is not None:
            self.pipeline.settings = OutputSettings.from_params(new)
            self.pipeline.rectify = new['rectify']
            self.pipeline.fallback = new['fallback_intrinsics']
        for channel in self.channels.values():
            channel.apply_params(new)
        return SetParametersResult(successful=True)

    # --- lifecycle transitions ---

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Check the parameters, load and warm up the model, create the publishers."""
        try:
            self._configure()
        except Exception as error:  # noqa: BLE001 - a failed configure is reported, not fatal
            self._release()
            self.failure = error
            self.get_logger().error(f'configure failed: {error}')
            return FAILURE
        self.failure = None
        return super().on_configure(state)

    def _configure(self) -> None:
        """What on_configure does; raises ParamError (what to set) or the loading error."""
        if self._param_errors:
            raise next(iter(self._param_errors.values()))
        params = check_model_source(validate(self.params, where=f'{NODE_NAME} parameters'))
        if not params['checkpoint']:
            self.get_logger().warn(
                'allow_random_weights is true and no checkpoint is set: RANDOM WEIGHTS, the '
                'depth is meaningless. Set checkpoint:=<file.pt> for real depth.')
        elif not self.params['checkpoint']:
            self.get_logger().info(f'checkpoint not set: the default model {params["checkpoint"]}')
        cameras = params['cameras']
        self.estimator, self.model_name = estimator_from_params(params)
        self.estimator.warm_up(batch_sizes=(1, len(cameras)))
        self.pipeline = FramePipeline(self.estimator, OutputSettings.from_params(params),
                                      params['rectify'], cameras=len(cameras),
                                      fallback=params['fallback_intrinsics'])
        self.channels = {name: CameraChannel(self, name) for name in cameras}
        topics = ', '.join(self.resolve_topic_name(c.image_topic) for c in self.channels.values())
        self.get_logger().info(
            f'configured: model {self.model_name} on {self.estimator.device} '
            f'({params["precision"]}); input {params["image_transport"]} on {topics}')

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Enable the publishers, start the worker, subscribe."""
        result = super().on_activate(state)
        if result != SUCCESS:
            return result
        with self._served:
            self._slots = LatestSlots()
            self._served.notify_all()
        if self._worker_thread:
            self._worker = threading.Thread(target=self._work, args=(self._slots,),
                                            name='depth_worker', daemon=True)
            self._worker.start()
        for channel in self.channels.values():
            channel.activate(self._slots)
        self.get_logger().info('active: processing frames')
        return SUCCESS

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Unsubscribe and stop the worker (the model stays loaded); disable the publishers."""
        self._stop_processing()
        self.get_logger().info('inactive: not processing, model loaded')
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Destroy the publishers and free the model."""
        self._release()
        self.get_logger().info('unconfigured: model unloaded')
        return super().on_cleanup(state)

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Stop, free everything; the process then ends (see main)."""
        self._release()
        self.get_logger().info('finalized: shutting down')
        return super().on_shutdown(state)

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        """A transition raised: free everything and go back to unconfigured."""
        self._release()
        self.get_logger().error(f'error in a transition from {state.label}: model unloaded')
        return super().on_error(state)

    def _stop_processing(self) -> None:
        """Unsubscribe every camera and stop the worker after the frame it is on."""
        for channel in self.channels.values():
            channel.deactivate()
        if self._slots is not None:
            self._slots.close()
        if self._worker is not None:
            self._worker.join()
        with self._served:  # serve() returns after the frame it is on
            self._served.wait_for(lambda: not self._serving)
            self._slots = self._worker = None

    def serve(self, timeout: float) -> None:
        """With worker_thread False: process frames in the calling thread while the node is
        active (return when it stops being active), or wait up to timeout to become active."""
        with self._served:
            self._served.wait_for(lambda: self._slots is not None and not self._slots.closed,
                                  timeout)
            slots = self._slots
            if slots is None or slots.closed or self._worker_thread:
                return
            self._serving = True
        try:
            self._work(slots)
        finally:
            with self._served:
                self._serving = False
                self._served.notify_all()

    def _release(self) -> None:
        """Stop processing, destroy the publishers and free the model and its device memory."""
        self._stop_processing()
        for channel in self.channels.values():
            channel.destroy()
        device = getattr(self.estimator, 'device', None)
        self.channels = {}
        self.estimator = self.pipeline = None
        self.model_name = 'none'
        if device is not None:
            release_device_memory(device)

    # --- processing ---

    def _work(self, slots: LatestSlots) -> None:
        """Worker thread: run the newest frame of every camera that has one, as one batch."""
        while not slots.closed:
            ready = slots.take_all(timeout=0.2)
            if ready and not slots.closed:
                self._process(ready)

    def _process(self, ready: dict[str, tuple]) -> None:
        """Prepare each camera's frame, infer them together, publish each camera's result."""
        batch = []
        taken = time.monotonic()
        for name, (frame, info) in ready.items():
            channel = self.channels[name]
            clock = StageClock(frame[1], 'received')  # on the image callback
            clock.mark('handover', taken)             # in the slot until the worker took it
            info = channel.resolve(frame, info)
            clock.mark('camera info wait')
            prepared = channel.prepare(self.pipeline, frame, info, clock)
            if prepared is not None:
                batch.append((channel, prepared, frame[1]))
        if batch:
            self._infer(batch)

    def _infer(self, batch: list[tuple]) -> None:
        """Run (channel, prepared frame, received at) items as one batch and publish."""
        try:
            results = self.pipeline.infer([prepared for _, prepared, _ in batch])
        except Exception as error:  # noqa: BLE001 - keep the node alive, report the failure
            if len(batch) == 1:
                batch[0][0].failed(error)
            else:  # one camera's bad frame must not cost the other cameras theirs
                for item in batch:
                    self._infer([item])
            return
        done_at = time.monotonic()
        for (channel, _, received_at), result in zip(batch, results, strict=True):
            try:
                channel.publish(result, received_at, done_at)
            except Exception as error:  # noqa: BLE001 - keep the worker alive, report it
                channel.failed(error)
                continue
            if len(batch) > 1:
                channel.stats.count('batched')

    def _publish_diagnostics(self) -> None:
        """Publish one status per camera: lifecycle state, rate, latency, counters, model."""
        info = {'device': str(getattr(self.estimator, 'device', 'none')),
                'model': self.model_name, 'precision': str(self.params['precision'])}
        if self.channels:
            statuses = [channel.status(info, self.state) for channel in self.channels.values()]
        else:
            failure = f'configure failed: {self.failure}' if self.failure else ''
            statuses = [diagnostic_status({}, info, camera=name, state=self.state,
                                          failure=failure) for name in self.params['cameras']]
        self.diag_pub.publish(diagnostics_message(statuses, self.get_clock().now().to_msg()))

    def destroy_node(self) -> None:
        """Stop the worker and free the model, then destroy the node."""
        self._release()
        super().destroy_node()


# glibc mallopt: memory above M_MMAP_THRESHOLD bytes is mapped and unmapped per allocation,
# and free memory above M_TRIM_THRESHOLD at the heap top is given back: per frame of 375×1242
# that is about a thousand page faults (fresh pages zeroed by the kernel) for arrays of a few
# MiB made and freed again. Kept: the heap stays at its high-water mark instead.
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
KEEP_BELOW = 32 * 2 ** 20     # glibc's largest mmap threshold on 64-bit
TRIM_ABOVE = 512 * 2 ** 20


def keep_freed_memory(env: dict[str, str] | None = None) -> str:
    """Make glibc keep freed blocks of up to 32 MiB for reuse (no page faults per frame),
    unless MALLOC_* variables set it otherwise or the C library is not glibc. One line
    saying what was done."""
    env = os.environ if env is None else env
    chosen = sorted(name for name in env if name.startswith('MALLOC_'))
    if chosen:
        return f'allocator: as set by {", ".join(chosen)}'
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return 'allocator: not glibc, left as it is'
    if not (mallopt(M_MMAP_THRESHOLD, KEEP_BELOW) and mallopt(M_TRIM_THRESHOLD, TRIM_ABOVE)):
        return 'allocator: mallopt refused, left as it is'
    return f'allocator: freed blocks up to {KEEP_BELOW // 2 ** 20} MiB kept for reuse'


def spin(executor: SingleThreadedExecutor, node: MonoDepthNode,
         failures: list[BaseException]) -> None:
    """The executor thread of main: callbacks until shutdown or finalized; what it raised
    goes to failures (shutdown from outside is no failure)."""
    try:
        while rclpy.ok() and node.state != 'finalized':
            executor.spin_once(timeout_sec=0.5)
    except ExternalShutdownException:
        pass
    except BaseException as error:  # noqa: BLE001 - handed to the main thread
        failures.append(error)


def main(args: list[str] | None = None) -> int:
    """Run mono_depth_node until shut down (SIGINT or the shutdown transition); exit 1 with a
    message when autostart cannot bring it up."""
    dds = configure_dds()  # before rclpy.init: Fast DDS reads its profile when it starts
    allocator = keep_freed_memory()
    rclpy.init(args=args)
    node = None
    try:
        node = MonoDepthNode(worker_thread=False)  # frames on this thread (serve)
        node.get_logger().info(f'{dds}; {allocator}')
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        failures: list[BaseException] = []
        spinner = threading.Thread(target=spin, args=(executor, node, failures),
                                   name='executor', daemon=True)
        spinner.start()
        while spinner.is_alive():
            node.serve(timeout=0.5)
        if failures:
            raise failures[0]
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
