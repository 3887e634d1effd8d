"""Stage marks of a frame: when each stage of its processing ended, on time.monotonic().

The code that does the work marks the end of each stage (`mark('network')`); whoever wants the
breakdown of a frame records into a StageClock for the duration (`with recording(clock):`), and
a mark without a recording clock on the thread costs one attribute look-up. time.monotonic() is
CLOCK_MONOTONIC on Linux: one clock for every process of a host, so the node's marks and a
client's send and arrival times on the same host subtract. A stage's duration is its mark minus
the previous mark; a stage marked more than once (e.g. once per camera of a batch) sums.
"""

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
import threading
import time

_LOCAL = threading.local()


class StageClock:
    """The stage marks of one frame (or of one network batch): (stage, seconds) in order."""

    def __init__(self, start: float | None = None, stage: str = 'start') -> None:
        self.marks: list[tuple[str, float]] = [] if start is None else [(stage, float(start))]

    def mark(self, stage: str, at: float | None = None) -> None:
        """Record that stage ended now (or at the given time.monotonic() seconds)."""
        self.marks.append((stage, time.monotonic() if at is None else float(at)))

    def extend(self, marks: Iterable[tuple[str, float]]) -> None:
        """Append marks recorded elsewhere (e.g. the batch a frame ran in)."""
        self.marks.extend((str(stage), float(at)) for stage, at in marks)

    def last(self) -> float | None:
        """The time of the latest mark (None before the first)."""
        return self.marks[-1][1] if self.marks else None

    def durations(self) -> dict[str, float]:
        """Seconds per stage (a stage's mark minus the one before), in first-mark order."""
        return stage_durations(self.marks)


def stage_durations(marks: Iterable[tuple[str, float]]) -> dict[str, float]:
    """Seconds per stage of ordered (stage, seconds) marks; the first mark only starts."""
    result: dict[str, float] = {}
    previous = None
    for stage, at in marks:
        if previous is not None:
            result[stage] = result.get(stage, 0.0) + (at - previous)
        previous = at
    return result


@contextmanager
def recording(clock: StageClock | None) -> Iterator[StageClock | None]:
    """Make clock the one mark() records into on this thread (None: record nothing)."""
    previous = getattr(_LOCAL, 'clock', None)
    _LOCAL.clock = clock
    try:
        yield clock
    finally:
        _LOCAL.clock = previous


def active() -> StageClock | None:
    """The clock mark() records into on this thread, or None."""
    return getattr(_LOCAL, 'clock', None)


def mark(stage: str) -> None:
    """Mark the end of stage on this thread's recording clock (nothing without one)."""
    clock = getattr(_LOCAL, 'clock', None)
    if clock is not None:
        clock.mark(stage)
