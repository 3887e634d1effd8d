"""End-to-end latency of the real node over DDS, its stages, and the soak test.

The node (mono_depth_ros.ros.node) runs in a subprocess exactly as a user starts it; this process
publishes Image + CameraInfo with a fresh stamp and subscribes to `depth` and `points`. A frame's
latency is from just before its image is published to the arrival of the later of its depth and
cloud (matched by stamp), both on this process's monotonic clock. The client also subscribes to
the node's `stage_times` (ros.depth_messages): when each stage of the frame ended in the node, on
the same clock (time.monotonic() is CLOCK_MONOTONIC, one clock for every process of the host),
so a frame's latency splits into delivery to the node, the node's stages and delivery back
(frame_stages). rclpy is imported here only.
"""

from collections.abc import Callable, Sequence
import os
from pathlib import Path
import shutil
import subprocess
import threading
import time

import numpy as np

from mono_depth_ros.bench.pipeline_bench import bench_messages
from mono_depth_ros.core.stages import stage_durations
from mono_depth_ros.ros import node_process
from mono_depth_ros.ros.stamps import header_ns, NS_PER_S, set_stamp
from mono_depth_ros.timing.latency import (
    drift,
    paired_speedup,
    summarize_latency,
    summarize_stages,
)

# The stages the client measures itself, around the node's own (ros.depth_messages stage_times).
DELIVERY_TO_NODE = 'delivery to node'
DELIVERY_TO_CLIENT = 'delivery to client'
OUTPUT_TOPICS = ('depth', 'points')
# Pause after a model-only call in this process before the next frame: its OpenMP threads spin
# a few milliseconds after the call (libgomp's default wait policy), which would slow the
# node's first steps of the frame on a 2-core CPU.
SETTLE_S = 0.03


def bench_node_command(model: str, input_size: tuple[int, int], namespace: str,
                       device: str = 'cpu', precision: str = 'fp32',
                       extra: Sequence[str] = ()) -> list[str]:
    """Command line starting the real node with random weights of a model config.

    Input QoS is reliable (the bench publishes reliably): a best-effort 1.4 MB image can be lost
    on a busy machine, and a lost frame is not a latency.
    """
    params = {'allow_random_weights': 'true', 'model_config': model, 'device': device,
              'precision': precision, 'input_height': str(input_size[0]),
              'input_width': str(input_size[1]), 'input_qos': 'reliable'}
    args = node_process.node_command(namespace, params)
    for item in extra:
        args += ['-p', item]
    return args


def process_rss_mib(pid: int) -> float | None:
    """Resident memory of a process in MiB (None once it has exited)."""
    try:
        with open(f'/proc/{pid}/status') as f:
            for line in f:
                if line.startswith('VmRSS:'):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def process_gpu_mib(pid: int) -> float | None:
    """GPU memory a process holds, from nvidia-smi (None without an NVIDIA GPU or tool)."""
    if shutil.which('nvidia-smi') is None:
        return None
    try:
        out = subprocess.run(['nvidia-smi', '--query-compute-apps=pid,used_memory',
                              '--format=csv,noheader,nounits'], capture_output=True, text=True,
                             timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    used = [float(row.split(',')[1]) for row in out.splitlines()
            if row.strip() and row.split(',')[0].strip() == str(pid)]
    return sum(used) if used else 0.0


class NodeClient:
    """Bench-side ROS node: publishes frames to the node under test and times its outputs."""

    def __init__(self, namespace: str, image: np.ndarray) -> None:
        from diagnostic_msgs.msg import DiagnosticArray
        import rclpy
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import CameraInfo, Image, PointCloud2

        from mono_depth_ros.ros.dds import configure_dds
        from mono_depth_ros.ros.depth_messages import TOPIC_STAGE_TIMES

        # The client stands for a camera driver on the node's host, started as docs/node.md
        # recommends: with the node's Fast DDS profile (its images fit the shared memory; with
        # the default segment they go as UDP fragments and its CameraInfo comes late).
        self.dds = configure_dds()
        self._rclpy = rclpy
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node('mono_depth_bench_client', namespace=namespace,
                                      context=self.context)
        self.image_msg, self.info_msg = bench_messages(image)
        reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        self.image_pub = self.node.create_publisher(Image, 'image', reliable)
        self.info_pub = self.node.create_publisher(CameraInfo, 'camera_info', reliable)
        self.subs = [self.node.create_subscription(kind, topic, self._arrived(topic), reliable)
                     for topic, kind in (('depth', Image), ('points', PointCloud2))]
        self.stage_sub = self.node.create_subscription(DiagnosticArray, TOPIC_STAGE_TIMES,
                                                       self._on_stage_times, reliable)
        self.sent: dict[int, float] = {}
        self.arrivals: dict[str, dict[int, float]] = {topic: {} for topic in OUTPUT_TOPICS}
        self.node_marks: dict[int, list[tuple[str, float]]] = {}
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._sequence = 0
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._spinner = threading.Thread(target=self.executor.spin, daemon=True)
        self._spinner.start()

    def _arrived(self, topic: str):
        """Subscription callback recording when the output of a stamp arrived."""
        def callback(msg) -> None:
            now = time.monotonic()
            stamp = header_ns(msg)
            with self._lock:
                self.arrivals[topic].setdefault(stamp, now)
                self._changed.notify_all()
        return callback

    def _on_stage_times(self, msg) -> None:
        """Keep the node's stage marks of a frame."""
        from mono_depth_ros.ros.depth_messages import stage_marks

        marks = stage_marks(msg)
        with self._lock:
            self.node_marks[header_ns(msg)] = marks
            self._changed.notify_all()

    def connected(self) -> bool:
        """True once the node under test subscribes to our image and publishes both outputs."""
        return (self.image_pub.get_subscription_count() > 0
                and all(sub.get_publisher_count() > 0 for sub in self.subs))

    def send(self) -> int:
        """Publish CameraInfo and Image with a new stamp; return the stamp (ns)."""
        self._sequence += 1
        stamp = NS_PER_S + self._sequence * 1_000_000  # 1 ms apart: never confused
        for msg in (self.info_msg, self.image_msg):
            set_stamp(msg.header.stamp, stamp)
        self.info_pub.publish(self.info_msg)
        with self._lock:
            self.sent[stamp] = time.monotonic()
        self.image_pub.publish(self.image_msg)
        return stamp

    def latency_ms(self, stamp: int) -> float | None:
        """In-to-out latency of a frame (both outputs arrived), or None while incomplete."""
        with self._lock:
            return self._latency_ms(stamp)

    def _latency_ms(self, stamp: int) -> float | None:
        """latency_ms with the lock held."""
        times = [self.arrivals[topic].get(stamp) for topic in self.arrivals]
        if any(t is None for t in times):
            return None
        return (max(times) - self.sent[stamp]) * 1000.0

    def wait_for(self, stamp: int, timeout: float) -> float | None:
        """Wait until both outputs of stamp arrived; its latency (ms) or None on time-out."""
        with self._lock:
            if self._changed.wait_for(lambda: self._latency_ms(stamp) is not None, timeout):
                return self._latency_ms(stamp)
        return None

    def stages_ms(self, stamp: int, timeout: float = 1.0) -> dict[str, float] | None:
        """Milliseconds per stage of a completed frame (frame_stages), waiting up to timeout
        for the node's marks; None without them (a node that does not publish stage_times)."""
        with self._lock:
            if not self._changed.wait_for(lambda: stamp in self.node_marks, timeout):
                return None
            arrivals = {topic: self.arrivals[topic].get(stamp) for topic in self.arrivals}
            if any(t is None for t in arrivals.values()):
                return None
            return frame_stages(self.sent[stamp], self.node_marks[stamp],
                                max(arrivals.values()))

    def close(self) -> None:
        """Stop spinning and shut this client's ROS context down."""
        self.executor.shutdown()
        self.node.destroy_node()
        self._rclpy.shutdown(context=self.context)
        self._spinner.join(timeout=5.0)


def frame_stages(sent: float, node_marks: list[tuple[str, float]], arrived: float
                 ) -> dict[str, float]:
    """Milliseconds per stage of one frame, all on time.monotonic() seconds: delivery to the
    node (client's send to the node's image callback, the node's first mark), the node's
    stages (its marks, core.stages), and delivery to the client (the node's last publish to
    the arrival of the later output at the client's subscription callback)."""
    if not node_marks:
        raise ValueError('a frame needs at least one node mark')
    marks = [('sent', sent), (DELIVERY_TO_NODE, node_marks[0][1]), *node_marks[1:],
             (DELIVERY_TO_CLIENT, arrived)]
    return {stage: 1000.0 * seconds for stage, seconds in stage_durations(marks).items()}


class NodeRig:
    """Node processes started as a user starts them, and a client per camera namespace (a
    context manager): start, wait until every camera's first frame comes back, stop."""

    def __init__(self, commands: Sequence[list[str]], namespaces: Sequence[str],
                 image: np.ndarray, log_paths: Sequence[str | os.PathLike | None] = (),
                 start_timeout: float = 120.0) -> None:
        self.commands, self.namespaces, self.image = list(commands), list(namespaces), image
        self.log_paths = list(log_paths) or [None] * len(self.commands)
        self.start_timeout = start_timeout
        self.processes: list[subprocess.Popen] = []
        self.clients: list[NodeClient] = []

    def __enter__(self) -> 'NodeRig':
        try:
            for command, log_path in zip(self.commands, self.log_paths, strict=True):
                log = open(log_path, 'w') if log_path else subprocess.DEVNULL  # noqa: SIM115
                self.processes.append(subprocess.Popen(command, stdout=log,
                                                       stderr=subprocess.STDOUT))
            self.clients = [NodeClient(namespace, self.image) for namespace in self.namespaces]
            self._wait_ready()
        except BaseException:
            self.__exit__()
            raise
        return self

    def _wait_ready(self) -> None:
        """Wait for discovery, then send frames until each camera's first one comes back."""
        deadline = time.monotonic() + self.start_timeout
        waiting = list(self.clients)
        while waiting and time.monotonic() < deadline:
            self._check_alive()
            client = waiting[0]
            if not client.connected():
                time.sleep(0.1)
            elif client.wait_for(client.send(),
                                 timeout=min(10.0, self.start_timeout)) is not None:
                waiting.pop(0)
        if waiting:
            raise TimeoutError(f'{len(waiting)} camera(s) gave no depth and cloud within '
                               f'{self.start_timeout} s (logs: {self._logs()})')

    def _logs(self) -> str:
        """The log files, for error messages."""
        return ', '.join(str(p) for p in self.log_paths if p) or 'not kept'

    def _check_alive(self) -> None:
        """Raise with the exit code and the end of its log if a node process ended."""
        for process, log_path in zip(self.processes, self.log_paths, strict=False):
            if process.poll() is not None:
                tail = Path(log_path).read_text()[-2000:] if log_path else ''
                raise RuntimeError(f'node exited with code {process.returncode}: '
                                   f'{" ".join(process.args)}\n{tail}')

    def __exit__(self, *exc) -> None:
        for client in self.clients:
            client.close()
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


class NodeUnderTest(NodeRig):
    """The real node in a subprocess, with a client connected to it (a context manager)."""

    def __init__(self, command: list[str], namespace: str, image: np.ndarray,
                 log_path: str | os.PathLike | None = None, start_timeout: float = 120.0):
        super().__init__([command], [namespace], image, [log_path], start_timeout)

    @property
    def process(self) -> subprocess.Popen:
        """The node process."""
        return self.processes[0]

    @property
    def client(self) -> NodeClient:
        """The client feeding and timing it."""
        return self.clients[0]

    def closed_loop(self, frames: int, warmup: int = 1, timeout: float = 60.0,
                    between: Callable[[], object] | None = None) -> dict:
        """Send one frame at a time, waiting for its outputs: unloaded in-to-out latency, and
        the p50 of each stage.

        A frame whose outputs take longer than 10× the warm-up latency (at least 5 s, at most
        timeout) counts as lost. between: a call timed after every frame (the model-only
        call, in this process while the node waits), so the node's latency is compared with
        it frame by frame ('model_only_p50_ms', 'node_over_model': the median of the
        per-frame ratios), which the machine's drift does not move.
        """
        seen = [self.client.wait_for(self.client.send(), timeout) for _ in range(warmup)]
        seen = [s for s in seen if s is not None]
        if seen:
            timeout = min(timeout, max(5.0, 10.0 * max(seen) / 1000.0))
        if between is not None:
            between()
        latencies, stages, paired, lost = [], [], [], 0
        for _ in range(frames):
            self._check_alive()
            stamp = self.client.send()
            latency = self.client.wait_for(stamp, timeout)
            if latency is None:
                lost += 1
                continue
            latencies.append(latency)
            breakdown = self.client.stages_ms(stamp)
            if breakdown is not None:
                stages.append(breakdown)
            if between is not None:
                start = time.perf_counter()
                between()
                paired.append((latency, (time.perf_counter() - start) * 1000.0))
                time.sleep(SETTLE_S)
        if not latencies:
            raise RuntimeError(f'no frame of {frames} came back within {timeout} s')
        result = {**summarize_latency(latencies), 'sent': frames, 'lost': lost,
                  'stages_p50_ms': summarize_stages(stages) if stages else None,
                  'stage_frames': len(stages)}
        if paired:
            node, model = np.array(paired).T
            result.update(model_only_p50_ms=float(np.median(model)),
                          node_over_model=paired_speedup(node, model))
        return result

    def soak(self, duration_s: float, rate_hz: float = 30.0, sample_period_s: float = 1.0,
             drain_s: float = 5.0) -> dict:
        """Feed frames at rate_hz for duration_s; memory growth, latency drift, dropped frames."""
        pid = self.process.pid
        period = 1.0 / rate_hz
        window = min(60.0, duration_s / 3.0)
        samples = []  # (seconds since start, rss MiB, GPU MiB)
        stamps = []  # (seconds since start, stamp)
        start = time.monotonic()
        next_send = next_sample = start
        while True:
            now = time.monotonic()
            if now - start >= duration_s:
                break
            if now >= next_sample:
                self._check_alive()
                samples.append((now - start, process_rss_mib(pid), process_gpu_mib(pid)))
                next_sample += sample_period_s
            if now >= next_send:
                stamps.append((now - start, self.client.send()))
                next_send += period
            time.sleep(max(0.0, min(next_send, next_sample) - time.monotonic()))
        time.sleep(drain_s)
        samples.append((time.monotonic() - start, process_rss_mib(pid), process_gpu_mib(pid)))
        return summarize_soak(samples, [(t, self.client.latency_ms(s)) for t, s in stamps],
                              duration_s, rate_hz, window)


def _growth(samples: list[tuple[float, float | None]]) -> dict:
    """First, last, max and growth (MiB) of a memory series, plus a least-squares slope/min."""
    points = [(t, m) for t, m in samples if m is not None]
    if len(points) < 2:
        return {'first_mib': None, 'last_mib': None, 'max_mib': None, 'growth_mib': None,
                'slope_mib_per_min': None}
    t, m = np.array(points, dtype=np.float64).T
    slope = float(np.polyfit(t, m, 1)[0]) * 60.0 if np.ptp(t) > 0 else 0.0
    return {'first_mib': float(m[0]), 'last_mib': float(m[-1]), 'max_mib': float(m.max()),
            'growth_mib': float(m[-1] - m[0]), 'slope_mib_per_min': slope}


def summarize_soak(samples: list[tuple[float, float | None, float | None]],
                   frames: list[tuple[float, float | None]], duration_s: float, rate_hz: float,
                   window_s: float) -> dict:
    """Soak report: memory growth (RSS, GPU), latency drift first vs last window, drops."""
    done = [(t, lat) for t, lat in frames if lat is not None]
    latencies = [lat for _, lat in done]
    first = [lat for t, lat in done if t < window_s]
    last = [lat for t, lat in done if t >= duration_s - window_s]
    return {
        'duration_s': duration_s, 'rate_hz': rate_hz, 'window_s': window_s,
        'sent': len(frames), 'completed': len(done), 'dropped': len(frames) - len(done),
        'drop_fraction': (len(frames) - len(done)) / len(frames) if frames else 0.0,
        'output_fps': len(done) / duration_s,
        'latency': summarize_latency(latencies) if latencies else None,
        'latency_drift': drift(first, last),
        'rss': _growth([(t, rss) for t, rss, _ in samples]),
        'gpu_memory': _growth([(t, gpu) for t, _, gpu in samples]),
    }
