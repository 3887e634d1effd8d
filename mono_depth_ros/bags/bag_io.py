"""Write and read ROS 2 bags (MCAP by default, or sqlite3) with the rosbags library.

Messages are rclpy messages serialised with rclpy.serialization (the same CDR bytes a recorder
stores); message definitions for MCAP come from rosbags' ROS 2 Jazzy typestore. Types that have
no Python package here (tf2_msgs is not on PyPI) are written and read as rosbags' own message
classes: /tf_static is written that way, with the latched (transient local) QoS that
`ros2 bag play` needs to re-publish it.
"""

from collections.abc import Iterable, Iterator
import importlib
import os
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from rclpy.serialization import deserialize_message, serialize_message
from rosbags.interfaces import (
    Qos,
    QosDurability,
    QosHistory,
    QosLiveliness,
    QosReliability,
    QosTime,
)
from rosbags.rosbag2 import Reader, StoragePlugin, Writer
from rosbags.typesys import get_typestore, Stores

from mono_depth_ros.core.geometry import rotation_to_quaternion
from mono_depth_ros.ros.stamps import sec_nanosec

STORAGES = {'mcap': StoragePlugin.MCAP, 'sqlite3': StoragePlugin.SQLITE3}
TF_STATIC_TOPIC = '/tf_static'
TF_MESSAGE = 'tf2_msgs/msg/TFMessage'
_NEVER = QosTime(sec=0, nsec=0)
# /tf_static as tf2_ros' StaticTransformBroadcaster offers it: reliable, transient local, 1.
LATCHED_QOS = Qos(history=QosHistory.KEEP_LAST, depth=1, reliability=QosReliability.RELIABLE,
                  durability=QosDurability.TRANSIENT_LOCAL, deadline=_NEVER, lifespan=_NEVER,
                  liveliness=QosLiveliness.AUTOMATIC, liveliness_lease_duration=_NEVER,
                  avoid_ros_namespace_conventions=False)


class BagError(RuntimeError):
    """A bag that cannot be written or read as asked; the text says why."""


class BagMessage(NamedTuple):
    """One message read from a bag."""

    topic: str
    msgtype: str
    stamp_ns: int
    msg: Any


def typestore():
    """The rosbags typestore of ROS 2 Jazzy (message definitions and CDR for rosbags classes)."""
    return get_typestore(Stores.ROS2_JAZZY)


def msgtype_of(msg_or_class: Any) -> str:
    """'pkg/msg/Name' of an rclpy message (instance or class) or a rosbags message."""
    if hasattr(msg_or_class, '__msgtype__'):
        return msg_or_class.__msgtype__
    cls = msg_or_class if isinstance(msg_or_class, type) else type(msg_or_class)
    package, kind = cls.__module__.split('.')[:2]
    if kind not in ('msg', 'srv', 'action'):
        raise BagError(f'{cls.__module__}.{cls.__name__} is not a ROS message class')
    return f'{package}/{kind}/{cls.__name__}'


def message_class(msgtype: str) -> type | None:
    """The rclpy message class for 'pkg/msg/Name', or None when its package is not installed."""
    try:
        from rosidl_runtime_py.utilities import get_message
    except ImportError:
        get_message = None
    package, kind, name = msgtype.split('/')
    if get_message is not None:
        try:
            return get_message(msgtype)
        except (AttributeError, ModuleNotFoundError, ValueError):
            return None
    try:
        return getattr(importlib.import_module(f'{package}.{kind}'), name)
    except (ImportError, AttributeError):
        return None


class BagWriter:
    """Context manager writing one new bag: add_topic(topic, msgtype) then write(...).

    The bag is closed (metadata written, readable up to the last message) also when the block
    raises.
    """

    def __init__(self, path: str | os.PathLike, storage: str = 'mcap') -> None:
        if storage not in STORAGES:
            raise BagError(f'unknown bag storage {storage!r}; choose one of {", ".join(STORAGES)}')
        self.path = Path(path)
        if self.path.exists():
            raise BagError(f'bag {self.path} already exists; remove it or pick another path')
        self.storage = storage
        self.typestore = typestore()
        self._writer = Writer(self.path, version=9, storage_plugin=STORAGES[storage])
        self._connections = {}

    def __enter__(self) -> 'BagWriter':
        self._writer.open()
        return self

    def __exit__(self, *exc_info) -> None:
        self._writer.close()

    def add_topic(self, topic: str, msgtype: str | type, latched: bool = False) -> None:
        """Declare a topic and its type ('pkg/msg/Name' or rclpy class); latched as /tf_static."""
        if not isinstance(msgtype, str):
            msgtype = msgtype_of(msgtype)
        if topic in self._connections:
            raise BagError(f'topic {topic} was already added to {self.path}')
        if msgtype not in self.typestore.types:
            raise BagError(f'message type {msgtype} is not in the ROS 2 Jazzy typestore')
        qos = [LATCHED_QOS] if latched else []
        self._connections[topic] = self._writer.add_connection(
            topic, msgtype, typestore=self.typestore, offered_qos_profiles=qos)

    def write(self, topic: str, msg: Any, stamp_ns: int) -> None:
        """Write an rclpy (or rosbags) message on an added topic at receive time stamp_ns."""
        if topic not in self._connections:
            raise BagError(f'topic {topic} was not added to {self.path} (call add_topic first)')
        connection = self._connections[topic]
        if msgtype_of(msg) != connection.msgtype:
            raise BagError(f'topic {topic} carries {connection.msgtype}, got {msgtype_of(msg)}')
        if hasattr(msg, '__msgtype__'):
            data = self.typestore.serialize_cdr(msg, connection.msgtype)
        else:
            data = serialize_message(msg)
        self._writer.write(connection, int(stamp_ns), data)

    def write_static_transforms(self, transforms: Iterable[Any], stamp_ns: int) -> None:
        """Write one latched /tf_static message holding transforms (see static_transform)."""
        if TF_STATIC_TOPIC not in self._connections:
            self.add_topic(TF_STATIC_TOPIC, TF_MESSAGE, latched=True)
        tf_message = self.typestore.types[TF_MESSAGE]
        self.write(TF_STATIC_TOPIC, tf_message(transforms=list(transforms)), stamp_ns)


def static_transform(parent: str, child: str, transform: np.ndarray, stamp_ns: int) -> Any:
    """A geometry_msgs/TransformStamped (rosbags class): pose of child in parent, 4×4 matrix.

    As in tf2, a point p in the child frame is transform @ p in the parent frame.
    """
    transform = np.asarray(transform, dtype=np.float64)
    if transform.shape != (4, 4):
        raise ValueError(f'transform {parent} -> {child} must be 4×4, got {transform.shape}')
    types = typestore().types
    x, y, z, w = rotation_to_quaternion(transform[:3, :3])
    sec, nanosec = sec_nanosec(stamp_ns)
    stamp = types['builtin_interfaces/msg/Time'](sec=sec, nanosec=nanosec)
    translation = types['geometry_msgs/msg/Vector3'](*(float(v) for v in transform[:3, 3]))
    return types['geometry_msgs/msg/TransformStamped'](
        header=types['std_msgs/msg/Header'](stamp=stamp, frame_id=parent),
        child_frame_id=child,
        transform=types['geometry_msgs/msg/Transform'](
            translation=translation,
            rotation=types['geometry_msgs/msg/Quaternion'](x=x, y=y, z=z, w=w)))


def _open_reader(path: str | os.PathLike) -> Reader:
    """A rosbags Reader for path, with a clear error when it is not a bag."""
    path = Path(path)
    if not (path / 'metadata.yaml').is_file():
        raise BagError(f'{path} is not a ROS 2 bag (no metadata.yaml)')
    return Reader(path)


def bag_topics(path: str | os.PathLike) -> dict[str, tuple[str, int]]:
    """{topic: (msgtype, message count)} of a bag."""
    with _open_reader(path) as reader:
        return {c.topic: (c.msgtype, c.msgcount) for c in reader.connections}


def read_bag(path: str | os.PathLike, topics: Iterable[str] | None = None
             ) -> Iterator[BagMessage]:
    """Yield the messages of a bag in time order, deserialised as rclpy messages.

    Types with no Python package here (e.g. tf2_msgs) come back as rosbags' message classes.
    """
    store = typestore()
    with _open_reader(path) as reader:
        connections = reader.connections
        if topics is not None:
            topics = set(topics)
            unknown = topics - {c.topic for c in connections}
            if unknown:
                raise BagError(f'bag {path} has no topic(s) {", ".join(sorted(unknown))}')
            connections = [c for c in connections if c.topic in topics]
        classes = {c.msgtype: message_class(c.msgtype) for c in connections}
        unknown = [t for t, cls in classes.items() if cls is None and t not in store.types]
        if unknown:
            raise BagError(f'bag {path}: no message class for {", ".join(unknown)} (neither '
                           'an installed Python package nor a ROS 2 Jazzy type)')
        for connection, stamp_ns, data in reader.messages(connections=connections):
            cls = classes[connection.msgtype]
            if cls is not None:
                msg = deserialize_message(bytes(data), cls)
            else:
                msg = store.deserialize_cdr(data, connection.msgtype)
            yield BagMessage(connection.topic, connection.msgtype, stamp_ns, msg)
