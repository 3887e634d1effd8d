"""Rigid transforms between named frames, as tf2 holds static ones (numpy only, no ROS).

A pose is a 4×4 matrix [R | t]; as in tf2, the pose of a child frame in its parent maps a point
p in the child frame to pose @ p in the parent frame. Frame names are compared without a leading
'/', as tf2 does.
"""

import numpy as np

from mono_depth_ros.core.geometry import invert_transform


class TransformError(ValueError):
    """No chain of transforms joins two frames; the text names both and the known frames."""


def quaternion_to_rotation(x: float, y: float, z: float, w: float) -> np.ndarray:
    """3×3 rotation matrix of the quaternion (x, y, z, w), normalised first."""
    q = np.array([x, y, z, w], dtype=np.float64)
    norm = np.linalg.norm(q)
    if not np.all(np.isfinite(q)) or norm < 1e-9:
        raise ValueError(f'quaternion (x, y, z, w) = {q.tolist()} is not a rotation')
    x, y, z, w = q / norm
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


def pose_matrix(translation: tuple[float, float, float],
                quaternion: tuple[float, float, float, float]) -> np.ndarray:
    """4×4 pose from a translation (x, y, z) and a rotation quaternion (x, y, z, w)."""
    translation = np.asarray(translation, dtype=np.float64)
    if translation.shape != (3,) or not np.all(np.isfinite(translation)):
        raise ValueError(f'translation must be 3 finite values, got {translation.tolist()}')
    pose = np.eye(4)
    pose[:3, :3] = quaternion_to_rotation(*quaternion)
    pose[:3, 3] = translation
    return pose


def frame_name(frame: str) -> str:
    """A frame id as tf2 compares it: without a leading '/'."""
    return frame.lstrip('/')


class FrameTree:
    """Static transforms: each child frame's pose in its one parent; any two frames looked up.

    A later add() for the same child replaces the earlier transform (as a newer /tf_static
    message does in tf2).
    """

    def __init__(self) -> None:
        self._parents: dict[str, tuple[str, np.ndarray]] = {}

    def add(self, parent: str, child: str, pose: np.ndarray) -> None:
        """Record the 4×4 pose of child in parent."""
        parent, child = frame_name(parent), frame_name(child)
        pose = np.asarray(pose, dtype=np.float64)
        if pose.shape != (4, 4) or not np.all(np.isfinite(pose)):
            raise ValueError(f'transform {parent} -> {child} must be a finite 4×4 matrix')
        if parent == child:
            raise ValueError(f'transform from frame {child!r} to itself')
        self._parents[child] = (parent, pose)

    @property
    def frames(self) -> list[str]:
        """Every frame named by a transform, sorted."""
        return sorted(set(self._parents) | {parent for parent, _ in self._parents.values()})

    def _pose_in_root(self, frame: str) -> tuple[str, np.ndarray]:
        """(root frame of the tree holding frame, pose of frame in that root)."""
        pose, seen = np.eye(4), {frame}
        while frame in self._parents:
            frame, step = self._parents[frame]
            if frame in seen:
                raise TransformError(f'the transforms form a cycle through frame {frame!r}')
            seen.add(frame)
            pose = step @ pose
        return frame, pose

    def lookup(self, target: str, source: str) -> np.ndarray:
        """4×4 transform of points in source to target (tf2's lookupTransform(target, source)).

        The chain may go up and down the tree through any other frames.
        """
        target, source = frame_name(target), frame_name(source)
        if source == target:
            return np.eye(4)
        known = self.frames
        missing = [f for f in (source, target) if f not in known]
        root_source, source_in_root = self._pose_in_root(source)
        root_target, target_in_root = self._pose_in_root(target)
        if missing or root_source != root_target:
            why = (f'{" and ".join(repr(f) for f in missing)} not in any transform' if missing
                   else f'they are in separate trees (roots {root_source!r} and '
                   f'{root_target!r})')
            raise TransformError(f'no chain of transforms joins frame {source!r} to frame '
                                 f'{target!r}: {why}; frames known: {", ".join(known) or "none"}')
        return invert_transform(target_in_root) @ source_in_root
