"""The node's DDS set-up before rclpy starts: a Fast DDS profile for large messages.

Fast DDS's built-in shared-memory segment (0.5 MiB) is smaller than one depth image or cloud,
so those go out as UDP fragments; a lost fragment of a reliable sample waits for the next
heartbeat, seconds on a busy machine. config/dds/fastdds_large_messages.xml gives the node's
participant a segment that holds them. It is applied through the profile environment variable,
read when rclpy starts, and only when the user has not chosen a profile, transports or another
RMW, and /dev/shm has room. No rclpy here: tests call it with their own environment.
"""

from collections.abc import MutableMapping
import os
from pathlib import Path
import xml.etree.ElementTree as ET

from mono_depth_ros.core.paths import find_share_file

PROFILE_NAME = 'fastdds_large_messages.xml'
# Environment variables that mean the user chose the DDS set-up: left alone.
USER_CHOICES = ('FASTRTPS_DEFAULT_PROFILES_FILE', 'FASTDDS_DEFAULT_PROFILES_FILE',
                'FASTDDS_BUILTIN_TRANSPORTS')
PROFILE_VARIABLES = ('FASTRTPS_DEFAULT_PROFILES_FILE', 'FASTDDS_DEFAULT_PROFILES_FILE')
FAST_DDS_RMW = 'rmw_fastrtps_cpp'
SHM_PATH = '/dev/shm'
_NS = '{http://www.eprosima.com/XMLSchemas/fastRTPS_Profiles}'


def profile_path() -> Path:
    """The packaged Fast DDS profile (source tree or installed share folder)."""
    return find_share_file('config/dds', PROFILE_NAME)


def segment_size(path: str | os.PathLike) -> int:
    """Bytes of the shared-memory segment a Fast DDS profile asks for."""
    node = ET.parse(path).getroot().find(f'.//{_NS}segment_size')
    if node is None or not (node.text or '').strip().isdigit():
        raise ValueError(f'{path}: no <segment_size> in bytes')
    return int(node.text.strip())


def shm_free_bytes(path: str = SHM_PATH) -> int:
    """Free bytes of the shared-memory file system (0 when there is none)."""
    try:
        stats = os.statvfs(path)
    except OSError:
        return 0
    return stats.f_bavail * stats.f_frsize


def configure_dds(env: MutableMapping[str, str] | None = None,
                  free_bytes: int | None = None) -> str:
    """Point Fast DDS at the large-message profile unless the user chose otherwise; set it in
    env (default os.environ, before rclpy.init). Returns one line saying what was decided."""
    env = os.environ if env is None else env
    rmw = env.get('RMW_IMPLEMENTATION', FAST_DDS_RMW) or FAST_DDS_RMW
    if rmw != FAST_DDS_RMW:
        return f'DDS: {rmw}, its own settings'
    chosen = [name for name in USER_CHOICES if env.get(name)]
    if chosen:
        return f'DDS: Fast DDS as set by {", ".join(chosen)}'
    path = profile_path()
    needed = segment_size(path)
    free = shm_free_bytes() if free_bytes is None else free_bytes
    if free < 2 * needed:
        return (f'DDS: Fast DDS defaults; {SHM_PATH} has {free / 2**20:.0f} MiB free, less '
                f'than twice the {needed / 2**20:.0f} MiB segment of {path.name}: large '
                'outputs travel as UDP fragments (latency spikes on a busy machine)')
    for name in PROFILE_VARIABLES:
        env[name] = str(path)
    return f'DDS: Fast DDS profile {path} ({needed / 2**20:.0f} MiB shared-memory segment)'
