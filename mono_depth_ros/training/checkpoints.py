"""Checkpoint files of a run: step_<N>.pt every N steps (last K kept), best.pt, and checks."""

import os
from pathlib import Path
import re
import tempfile
from typing import Any

from torch import nn

from mono_depth_ros.core.config import ConfigError
from mono_depth_ros.networks.checkpoint import save_checkpoint

STEP_PATTERN = re.compile(r'^step_(\d{8})\.pt$')
BEST_NAME = 'best.pt'


def ensure_writable_dir(path: str | os.PathLike) -> Path:
    """Create path if needed and prove it is writable, or raise ConfigError naming it."""
    folder = Path(path)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix='.write-test-'):
            pass
    except OSError as error:
        raise ConfigError(f'output directory {folder} is not writable: {error}') from error
    return folder


def step_checkpoints(folder: str | os.PathLike) -> list[tuple[int, Path]]:
    """Return (step, path) of every step_<N>.pt in folder, oldest first."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = []
    for path in folder.iterdir():
        match = STEP_PATTERN.match(path.name)
        if match:
            found.append((int(match.group(1)), path))
    return sorted(found)


def latest_checkpoint(folder: str | os.PathLike) -> Path:
    """Return the newest step checkpoint in folder, or raise ConfigError when there is none."""
    found = step_checkpoints(folder)
    if not found:
        raise ConfigError(f'--resume: no step_<N>.pt checkpoint in {folder}; '
                          'give the checkpoint path after --resume')
    return found[-1][1]


class CheckpointManager:
    """Writes a run's checkpoints atomically and keeps the last K plus the best."""

    def __init__(self, folder: str | os.PathLike, keep_last: int) -> None:
        self.folder = Path(folder)
        self.keep_last = keep_last
        self.last_path: Path | None = None

    def step_path(self, step: int) -> Path:
        """Path of the checkpoint written after `step` optimizer steps."""
        return self.folder / f'step_{step:08d}.pt'

    @property
    def best_path(self) -> Path:
        """Path of the checkpoint with the best validation abs_rel."""
        return self.folder / BEST_NAME

    def save(self, step: int, model: nn.Module, extra: dict[str, Any]) -> Path:
        """Write step_<step>.pt (tmp file + rename) and delete periodic ones beyond the last K."""
        path = self.step_path(step)
        save_checkpoint(path, model, **extra)
        self.last_path = path
        for _, old in step_checkpoints(self.folder)[:-self.keep_last]:
            old.unlink(missing_ok=True)
        return path

    def save_best(self, model: nn.Module, extra: dict[str, Any]) -> Path:
        """Write best.pt atomically."""
        save_checkpoint(self.best_path, model, **extra)
        return self.best_path
