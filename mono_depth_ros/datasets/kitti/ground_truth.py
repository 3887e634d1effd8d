"""Sparse ground-truth depth from a Velodyne scan: the KITTI protocol used by every paper."""

import os

import numpy as np
from tqdm import tqdm

from mono_depth_ros.datasets.kitti.calib import velo_to_image_matrix
from mono_depth_ros.datasets.kitti.io import load_velodyne, read_dense_depth, read_improved_gt
from mono_depth_ros.datasets.kitti.splits import read_split, SplitEntry


def project_points(points: np.ndarray, velo_to_image: np.ndarray, size: tuple[int, int],
                   vel_depth: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Project Velodyne points to (rows, cols, depths) of the in-image points with x ≥ 0."""
    points = points[points[:, 0] >= 0]
    homogeneous = np.hstack([points[:, :3].astype(np.float64), np.ones((len(points), 1))])
    projected = homogeneous @ velo_to_image.T
    with np.errstate(divide='ignore', invalid='ignore'):
        u = projected[:, 0] / projected[:, 2]
        v = projected[:, 1] / projected[:, 2]
    depth = points[:, 0].astype(np.float64) if vel_depth else projected[:, 2]
    cols = np.round(u) - 1
    rows = np.round(v) - 1
    height, width = size
    inside = (cols >= 0) & (rows >= 0) & (cols < width) & (rows < height)
    return rows[inside].astype(np.int64), cols[inside].astype(np.int64), depth[inside]


def generate_depth_map(calib_dir: str | os.PathLike, velo_path: str | os.PathLike,
                       cam: int = 2, vel_depth: bool = False) -> np.ndarray:
    """Return the H×W float32 depth map of a scan (0 = none); nearest point wins per pixel.

    Standard protocol (Eigen et al., monodepth2): keep points with x ≥ 0, project with
    P_rect·R_rect·velo_to_cam, pixel = round(u) − 1, round(v) − 1, keep those inside the image.
    Depth is the Velodyne forward distance x when vel_depth is True (the 'eigen' export), else
    the camera z; negative depths become 0.
    """
    velo_to_image, size = velo_to_image_matrix(calib_dir, cam)
    return scan_to_depth_map(load_velodyne(velo_path), velo_to_image, size, vel_depth)


def scan_to_depth_map(points: np.ndarray, velo_to_image: np.ndarray, size: tuple[int, int],
                      vel_depth: bool = False) -> np.ndarray:
    """Return the H×W float32 depth map of Velodyne points (N×3+) under a 3×4 projection."""
    rows, cols, depth = project_points(points, velo_to_image, size, vel_depth)
    depth_map = np.zeros(size, dtype=np.float64)
    # Sorted nearest first, np.unique's first occurrence of each pixel is its nearest point.
    order = np.argsort(depth, kind='stable')
    _, first = np.unique(rows[order] * size[1] + cols[order], return_index=True)
    keep = order[first]
    depth_map[rows[keep], cols[keep]] = depth[keep]
    depth_map[depth_map < 0] = 0
    return depth_map.astype(np.float32)


# Ground-truth protocol of each packaged test split: source and evaluation crop.
PROTOCOLS = {
    'eigen': {'gt': 'velodyne', 'crop': 'garg'},
    'eigen_benchmark': {'gt': 'improved', 'crop': 'garg'},
}
GT_SOURCES = ('velodyne', 'improved', 'dense')


def load_ground_truth(root: str | os.PathLike, entry: SplitEntry, source: str = 'velodyne',
                      vel_depth: bool = True) -> np.ndarray:
    """Return the H×W float32 evaluation ground truth of one split entry (0 = none).

    source 'velodyne' projects the scan (vel_depth=True: Velodyne x, the 'eigen' export);
    'improved' reads proj_depth/groundtruth (the 'eigen_benchmark' protocol); 'dense' reads a
    synthetic world's depth_dense (every pixel: camera z, +inf where no surface was hit).
    """
    if source == 'improved':
        return read_improved_gt(entry.improved_gt_path(root))
    if source == 'dense':
        return read_dense_depth(entry.dense_depth_path(root))
    if source != 'velodyne':
        raise ValueError(f'ground-truth source must be one of {GT_SOURCES}, got {source!r}')
    return generate_depth_map(entry.calib_dir(root), entry.velodyne_path(root),
                              cam=entry.camera, vel_depth=vel_depth)


def save_gt_npz(path: str | os.PathLike, lines: list[str], depths: list[np.ndarray],
                source: str) -> None:
    """Write exported ground truth: one float32 array per frame plus the split lines it covers."""
    if len(lines) != len(depths):
        raise ValueError(f'{len(lines)} split lines but {len(depths)} depth maps')
    arrays = {f'depth_{i:05d}': depth.astype(np.float32) for i, depth in enumerate(depths)}
    np.savez_compressed(os.fspath(path), lines=np.array(lines, dtype=str),
                        source=np.array(source), **arrays)


def load_gt_npz(path: str | os.PathLike) -> tuple[list[str], list[np.ndarray], str]:
    """Read a file written by save_gt_npz: (split lines, depth maps, source)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f'ground-truth file not found: {path}')
    try:
        with np.load(path, allow_pickle=False) as data:
            lines = [str(line) for line in data['lines']]
            depths = [data[f'depth_{i:05d}'] for i in range(len(lines))]
            source = str(data['source'])
    except (KeyError, ValueError, OSError) as error:
        raise ValueError(f'{path} is not a ground-truth file of mono-depth-export-gt: '
                         f'{error}') from error
    return lines, depths, source


def resolve_protocol(data_path: str | os.PathLike, split: str | None, split_file: str | None,
                     gt: str | None = None) -> tuple[str, list[SplitEntry], str]:
    """(split label, entries, ground-truth source) of a packaged split or a split file.

    The source defaults to the packaged split's protocol (improved for eigen_benchmark), else
    velodyne. FileNotFoundError when data_path is not a folder.
    """
    label = split or os.fspath(split_file)
    entries = read_split(split or split_file)
    source = gt or PROTOCOLS.get(split or '', {}).get('gt', 'velodyne')
    if not os.path.isdir(data_path):
        raise FileNotFoundError(f'data path not found: {data_path}')
    return label, entries, source


def describe_source(source: str, camera_z: bool) -> str:
    """Name the ground truth stored in an export: improved, velodyne-x or velodyne-z."""
    if source in ('improved', 'dense'):
        return source
    return 'velodyne-z' if camera_z else 'velodyne-x'


def export_ground_truth(data_path: str | os.PathLike, entries: list[SplitEntry], source: str,
                        vel_depth: bool = True, skip_missing: bool = False
                        ) -> tuple[list[str], list[np.ndarray], list[str]]:
    """Load the ground truth of every entry: (exported lines, depth maps, skipped lines)."""
    lines, depths, skipped = [], [], []
    for entry in tqdm(entries, desc='ground truth', unit='frame'):
        try:
            depth = load_ground_truth(data_path, entry, source, vel_depth)
        except FileNotFoundError as error:
            if not skip_missing:
                raise FileNotFoundError(f'frame "{entry.line()}": {error} '
                                        '(use --skip-missing to skip such frames)') from error
            skipped.append(entry.line())
            continue
        lines.append(entry.line())
        depths.append(depth)
    if not depths:
        raise FileNotFoundError(f'all {len(entries)} frames of the split miss files under '
                                f'{data_path} (first: {skipped[0]})')
    return lines, depths, skipped
