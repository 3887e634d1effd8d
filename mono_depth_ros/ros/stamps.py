"""Message stamps ↔ integer nanoseconds: the one conversion the node, bags and tools share.

Works on any builtin_interfaces/Time-like object (rclpy messages and rosbags' classes alike).
"""

from typing import Any

NS_PER_S = 1_000_000_000


def stamp_ns(stamp: Any) -> int:
    """A Time (sec, nanosec) as integer nanoseconds."""
    return int(stamp.sec) * NS_PER_S + int(stamp.nanosec)


def header_ns(msg: Any) -> int:
    """The header stamp of a message as integer nanoseconds."""
    return stamp_ns(msg.header.stamp)


def sec_nanosec(ns: int) -> tuple[int, int]:
    """Integer nanoseconds as (sec, nanosec) with 0 <= nanosec < 1e9."""
    return divmod(int(ns), NS_PER_S)


def set_stamp(stamp: Any, ns: int) -> Any:
    """Write integer nanoseconds into a Time in place; returns it."""
    stamp.sec, stamp.nanosec = sec_nanosec(ns)
    return stamp


def seconds_to_ns(seconds: float) -> int:
    """A duration in seconds (e.g. a stamp tolerance) as integer nanoseconds."""
    return int(round(seconds * NS_PER_S))
