"""Play a drive to a running mono_depth_node over real DDS and record its outputs (`make demo`).

A player publishes the drive's image + CameraInfo (with the drive's stamps) at a fixed rate; a
recorder in the same process receives every output of the node, notes when each depth arrived
and writes everything into an MCAP bag. The node runs in its own process, as in deployment.
"""

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
import subprocess
import time

from diagnostic_msgs.msg import DiagnosticArray
import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSProfile, ReliabilityPolicy

from mono_depth_ros.bags.bag_io import BagWriter, read_bag, TF_STATIC_TOPIC
from mono_depth_ros.core.stats import percentile
from mono_depth_ros.ros.depth_messages import diagnostics_values, OUTPUT_TYPES
from mono_depth_ros.ros.stamps import header_ns as stamp_ns

NODE_START_TIMEOUT = 120.0   # seconds for the node process to load the model and match topics
DRAIN_TIMEOUT = 20.0         # seconds to wait for the last outputs after the last frame


@dataclass
class DriveRun:
    """What happened when the drive was played to the node."""

    sent: dict[int, float] = field(default_factory=dict)          # stamp ns -> send time
    outputs: dict[str, list] = field(default_factory=lambda: defaultdict(list))  # (msg, t)
    diagnostics: list[dict[str, str]] = field(default_factory=list)
    baseline: dict[str, str] = field(default_factory=dict)  # node diagnostics before the drive

    def node_counters(self, names: tuple[str, ...]) -> dict[str, int]:
        """The node's counters for the drive alone (last diagnostics minus the baseline)."""
        last = self.diagnostics[-1] if self.diagnostics else {}
        return {name: int(last[name]) - int(self.baseline.get(name, 0)) for name in names
                if name in last}

    def depth_latencies(self) -> list[float]:
        """Seconds from publishing each frame to receiving its depth."""
        return [t - self.sent[stamp_ns(msg)] for msg, t in self.outputs['depth']
                if stamp_ns(msg) in self.sent]


class DrivePlayer:
    """Publishes a drive to the node and records the node's outputs (one rclpy context)."""

    def __init__(self, namespace: str, image_topic: str, info_topic: str) -> None:
        self.context = Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node('mono_depth_drive_player', context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        from sensor_msgs.msg import CameraInfo, Image
        self.image_pub = self.node.create_publisher(Image, image_topic, reliable)
        self.info_pub = self.node.create_publisher(CameraInfo, info_topic, reliable)
        self.run = DriveRun()
        self.subs = {}
        for topic, kind in OUTPUT_TYPES.items():
            name = f'{namespace}/{topic}'
            self.subs[topic] = self.node.create_subscription(
                kind, name, lambda msg, t=topic: self._record(t, msg),
                QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE))
        self.node.create_subscription(DiagnosticArray, '/diagnostics', self._on_diagnostics, 10)

    def _record(self, topic: str, msg) -> None:
        self.run.outputs[topic].append((msg, time.monotonic()))

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        values = diagnostics_values(msg)
        if values:
            self.run.diagnostics.append(values)

    def spin_for(self, seconds: float, process: subprocess.Popen) -> None:
        """Process callbacks for the given time; fail if the node process exited."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f'mono_depth_node exited with code {process.returncode}')
            self.executor.spin_once(timeout_sec=min(0.01, max(deadline - time.monotonic(), 0)))

    def wait_ready(self, process: subprocess.Popen, warmup) -> None:
        """Wait for discovery and one processed warm-up frame (the first inference is slow)."""
        deadline = time.monotonic() + NODE_START_TIMEOUT
        image, info = warmup
        while not any(stamp_ns(m) == stamp_ns(image) for m, _ in self.run.outputs['depth']):
            if time.monotonic() > deadline:
                raise RuntimeError('mono_depth_node produced no depth for the warm-up frame in '
                                   f'{NODE_START_TIMEOUT:.0f} s; see its log')
            if self.image_pub.get_subscription_count() and all(
                    sub.get_publisher_count() for sub in self.subs.values()):
                self.info_pub.publish(info)
                self.image_pub.publish(image)
            self.spin_for(1.0, process)
        self.spin_for(1.2, process)  # a diagnostics message that counts the warm-up frames
        baseline = self.run.diagnostics[-1] if self.run.diagnostics else {}
        self.run = DriveRun(baseline=baseline)  # the warm-up is not part of the drive

    def play(self, frames: list, rate: float, process: subprocess.Popen) -> DriveRun:
        """Publish (image, info) pairs at rate Hz, then wait for the node to finish."""
        for image, info in frames:
            start = time.monotonic()
            self.info_pub.publish(info)
            self.image_pub.publish(image)
            self.run.sent[stamp_ns(image)] = start
            self.spin_for(max(1.0 / rate - (time.monotonic() - start), 0.0), process)
        last = stamp_ns(frames[-1][0])
        deadline = time.monotonic() + DRAIN_TIMEOUT
        while time.monotonic() < deadline and not any(
                stamp_ns(m) == last for m, _ in self.run.outputs['depth']):
            self.spin_for(0.1, process)
        self.spin_for(1.5, process)  # the remaining outputs of the last frame and diagnostics
        return self.run

    def close(self) -> None:
        """Destroy the player node and its context."""
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)


def load_frames(bag: Path, image_topic: str, info_topic: str) -> list:
    """(Image, CameraInfo) pairs of a drive bag, in order."""
    images, infos = {}, {}
    for item in read_bag(bag, [image_topic, info_topic]):
        (images if item.topic == image_topic else infos)[stamp_ns(item.msg)] = item.msg
    return [(images[s], infos[s]) for s in sorted(images) if s in infos]


def write_output_bag(path: Path, drive_bag: Path, namespace: str, run: DriveRun) -> dict:
    """The drive's input topics plus every recorded output, at the header stamps (drive time)."""
    with BagWriter(path) as bag:
        inputs = list(read_bag(drive_bag))
        for topic in dict.fromkeys(item.topic for item in inputs):
            msgtype = next(item.msgtype for item in inputs if item.topic == topic)
            bag.add_topic(topic, msgtype, latched=topic == TF_STATIC_TOPIC)
        for item in inputs:
            bag.write(item.topic, item.msg, item.stamp_ns)
        counts = {topic: len([i for i in inputs if i.topic == topic])
                  for topic in dict.fromkeys(item.topic for item in inputs)}
        for topic, received in run.outputs.items():
            received = [msg for msg, _ in received if stamp_ns(msg) in run.sent]
            if not received:
                continue
            name = f'{namespace}/{topic}'
            bag.add_topic(name, OUTPUT_TYPES[topic])
            for msg in sorted(received, key=stamp_ns):
                bag.write(name, msg, stamp_ns(msg))
            counts[name] = len(received)
    return counts


def latency_stats(latencies: list[float]) -> dict[str, float]:
    """p50 / p95 / max of latencies (seconds) in milliseconds; NaN without any."""
    values = [latency * 1e3 for latency in latencies]
    return {'p50_ms': percentile(values, 50), 'p95_ms': percentile(values, 95),
            'max_ms': max(values, default=float('nan'))}
