"""Ctrl-C: the first SIGINT/SIGTERM asks the loop to checkpoint and stop; a second aborts."""

import signal
import threading
from types import FrameType


class StopRequest:
    """A flag set by SIGINT or SIGTERM while installed; the trainer checks it between steps."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.requested = False
        self.signal_name = ''
        self._previous: dict[int, object] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        """First signal: set the flag. A second one: restore the old handlers and abort."""
        if self.requested:
            self.uninstall()
            raise KeyboardInterrupt
        self.requested = True
        self.signal_name = signal.Signals(signum).name

    def install(self) -> 'StopRequest':
        """Catch SIGINT and SIGTERM (main thread only; elsewhere the flag is never set)."""
        if threading.current_thread() is threading.main_thread():
            for signum in self.SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def uninstall(self) -> None:
        """Put the previous handlers back."""
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def __enter__(self) -> 'StopRequest':
        return self.install()

    def __exit__(self, *exc: object) -> None:
        self.uninstall()


def ignore_interrupts_in_worker(worker_id: int) -> None:
    """DataLoader worker_init_fn: leave Ctrl-C to the main process, which checkpoints first."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
