"""Where the package's shared folders (config, models, launch) and its default model are, in a
checkout or installed; and files written whole or not at all (atomic_output)."""

from collections.abc import Iterator
from contextlib import contextmanager
import os
from pathlib import Path
import sys
import tempfile
from typing import BinaryIO

PACKAGE = 'mono_depth_ros'
# The shipped model, models/<this> (installed as share/mono_depth_ros/models/<this>): what the
# node loads when its parameter checkpoint is empty.
DEFAULT_MODEL = 'msfusion_r18.pt'
_HERE = Path(__file__).resolve()
# The repository root when running from a source checkout (editable install, PYTHONPATH).
SOURCE_ROOT = _HERE.parents[2]


def share_candidates(folder: str) -> list[Path]:
    """Every place a shared folder may be, best first (existing or not).

    The source tree's <folder>, then share/mono_depth_ros/<folder> under the install prefix of
    this file (<prefix>/lib/pythonX.Y/site-packages/mono_depth_ros/core/paths.py), sys.prefix
    and every AMENT_PREFIX_PATH entry (colcon and ROS installs).
    """
    prefixes = [*_HERE.parents[5:6], Path(sys.prefix),
                *(Path(p) for p in os.environ.get('AMENT_PREFIX_PATH', '').split(os.pathsep) if p)]
    candidates = [SOURCE_ROOT / folder, *(p / 'share' / PACKAGE / folder for p in prefixes)]
    return list(dict.fromkeys(candidates))


def share_dirs(folder: str) -> list[Path]:
    """The share_candidates of a folder that exist."""
    return [path for path in share_candidates(folder) if path.is_dir()]


def find_share_file(folder: str, name: str) -> Path:
    """The file name in the first shared folder that holds it; FileNotFoundError lists where."""
    candidates = [path / name for path in share_candidates(folder)]
    found = next((path for path in candidates if path.is_file()), None)
    if found is None:
        raise FileNotFoundError(f'{name} not found; looked in {[str(c) for c in candidates]}')
    return found


def default_model_candidates() -> list[Path]:
    """Every place the default model may be, best first: the package's share directory as the
    ament index finds it (a colcon or ROS install), then the share_candidates of models/."""
    installed = []
    try:
        from ament_index_python.packages import get_package_share_directory
    except ImportError:  # no ROS: the ament index is not there to ask
        pass
    else:
        try:
            installed.append(Path(get_package_share_directory(PACKAGE)) / 'models')
        except (LookupError, OSError):  # not installed there, or AMENT_PREFIX_PATH unset
            pass
    folders = [*installed, *share_candidates('models')]
    return list(dict.fromkeys(folder / DEFAULT_MODEL for folder in folders))


def default_model() -> Path:
    """The package's default model file; FileNotFoundError names every place looked in."""
    candidates = default_model_candidates()
    found = next((path for path in candidates if path.is_file()), None)
    if found is None:
        raise FileNotFoundError(
            f'the default model {DEFAULT_MODEL} is not installed; looked for '
            f'{", ".join(str(path) for path in candidates)}')
    return found


@contextmanager
def atomic_output(path: str | os.PathLike, fsync: bool = False) -> Iterator[BinaryIO]:
    """A binary stream whose content replaces path only if the block ends without error.

    It is a temporary file in path's folder, renamed over path (os.replace) at the end, so an
    interruption leaves the old file or the new one, never a part of one; fsync also flushes it
    to the disk first (checkpoints).
    """
    path = Path(path)
    handle, tmp = tempfile.mkstemp(prefix=f'.{path.name}.', suffix='.tmp', dir=path.parent)
    try:
        with os.fdopen(handle, 'wb') as stream:
            yield stream
            if fsync:
                stream.flush()
                os.fsync(stream.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
