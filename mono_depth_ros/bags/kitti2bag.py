"""A KITTI raw drive (real or synthetic) as a ROS 2 bag (the logic of mono-depth-kitti2bag).

Topics (camera 2 = left colour camera; camera 3 gives .../camera_color_right/...):
  /kitti/camera_color_left/image_raw    sensor_msgs/Image rgb8, rectified
  /kitti/camera_color_left/camera_info  K = P = P_rect_02 (Tx = Ty = 0, see below), D = 0, R = I
  /kitti/velo/pointcloud                sensor_msgs/PointCloud2 x, y, z, intensity (velo_link)
  /tf_static                            base_link -> velo_link -> camera_color_left_optical_frame
Frames follow REP 103/105: base_link on the ground below the Velodyne (x forward, y left, z up),
velo_link the Velodyne (same axes, KITTI_VELODYNE_HEIGHT above), and the camera's optical frame
(x right, y down, z forward) at the rectified camera centre, from calib_velo_to_cam, R_rect_00
and the offset in P_rect_0x. The camera frame holds its own centre, so CameraInfo.P carries no
baseline (Tx = Ty = 0, as for a monocular camera). KITTI timestamps (local time, no zone) are read
as UTC; header stamps and bag receive times are the recorded camera and Velodyne times.
"""

import os
from pathlib import Path

import numpy as np
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
from std_msgs.msg import Header
from tqdm import tqdm

from mono_depth_ros.bags.bag_io import BagWriter, static_transform
from mono_depth_ros.core.constants import KITTI_VELODYNE_HEIGHT
from mono_depth_ros.core.geometry import invert_transform
from mono_depth_ros.datasets.kitti import load_velo_to_cam, load_velodyne, read_image
from mono_depth_ros.datasets.kitti.calib import load_camera
from mono_depth_ros.datasets.kitti.io import read_timestamps
from mono_depth_ros.ros.conversions import numpy_to_image, structured_to_pointcloud2
from mono_depth_ros.ros.stamps import set_stamp

BASE_FRAME = 'base_link'
VELO_FRAME = 'velo_link'
CAMERA_NAMES = {2: 'camera_color_left', 3: 'camera_color_right'}
VELO_TOPIC = '/kitti/velo/pointcloud'


def camera_frame(cam: int) -> str:
    """Optical frame id of KITTI colour camera cam (2 left, 3 right)."""
    return f'{CAMERA_NAMES[cam]}_optical_frame'


def camera_topics(cam: int) -> tuple[str, str]:
    """(image topic, camera_info topic) of KITTI colour camera cam."""
    base = f'/kitti/{CAMERA_NAMES[cam]}'
    return f'{base}/image_raw', f'{base}/camera_info'


def camera_to_velo(calib_dir: Path, cam: int) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """(4×4 pose of the rectified camera in velo_link, K 3×3, (H, W)) from the calibration."""
    p_rect, r_rect, size = load_camera(calib_dir, cam)
    k = p_rect[:, :3]
    cam_from_velo = r_rect @ load_velo_to_cam(calib_dir)
    cam_from_velo[:3, 3] += np.linalg.solve(k, p_rect[:, 3])  # rectified cam 0 -> cam
    return invert_transform(cam_from_velo), k.copy(), size


def kitti_camera_info(k: np.ndarray, size: tuple[int, int], header: Header) -> CameraInfo:
    """CameraInfo of a rectified KITTI camera: K = P[:, :3], no distortion, R = I."""
    msg = CameraInfo(header=header, height=size[0], width=size[1], distortion_model='plumb_bob')
    msg.d = [0.0] * 5
    msg.k = k.reshape(-1)
    msg.r = np.eye(3).reshape(-1)
    msg.p = np.hstack([k, np.zeros((3, 1))]).reshape(-1)
    return msg


def velodyne_cloud(scan: np.ndarray, header: Header) -> PointCloud2:
    """PointCloud2 (x, y, z, intensity float32) of an N×4 KITTI scan."""
    cloud = np.empty(len(scan), dtype=[('x', np.float32), ('y', np.float32),
                                       ('z', np.float32), ('intensity', np.float32)])
    for i, name in enumerate(cloud.dtype.names):
        cloud[name] = scan[:, i]
    return structured_to_pointcloud2(cloud, header)


def make_header(stamp_ns: int, frame_id: str) -> Header:
    """A Header with the given stamp and frame."""
    header = Header(frame_id=frame_id)
    set_stamp(header.stamp, stamp_ns)
    return header


def drive_frames(drive_dir: Path, cam: int) -> list[str]:
    """Frame names (without extension) of a drive's camera images, sorted."""
    image_dir = drive_dir / f'image_0{cam}' / 'data'
    if not image_dir.is_dir():
        raise FileNotFoundError(f'image folder not found: {image_dir} (expected a KITTI raw '
                                f'drive folder like <root>/2011_09_26/2011_09_26_drive_0001_sync)')
    frames = sorted(p.stem for p in image_dir.glob('*.png'))
    if not frames:
        raise FileNotFoundError(f'no PNG images in {image_dir}')
    return frames


def convert_drive(drive_dir: str | os.PathLike, output: str | os.PathLike, cam: int = 2,
                  max_frames: int | None = None, velodyne: bool = True,
                  storage: str = 'mcap', progress: bool = True) -> dict:
    """Write a drive's images, camera info, Velodyne scans and static transforms to a new bag."""
    drive_dir = Path(drive_dir)
    if cam not in CAMERA_NAMES:
        raise ValueError(f'camera must be 2 (left) or 3 (right), got {cam}')
    frames = drive_frames(drive_dir, cam)[:max_frames]
    velo_dir = drive_dir / 'velodyne_points'
    if velodyne:  # check every scan before the bag is created, so no half bag is left behind
        missing = [n for n in frames if not (velo_dir / 'data' / f'{n}.bin').is_file()]
        if missing:
            raise FileNotFoundError(f'Velodyne scan not found: {velo_dir / "data"}/{missing[0]}'
                                    f'.bin ({len(missing)} missing; use --no-velodyne to skip)')
    calib_dir = drive_dir.parent
    camera_pose, k, size = camera_to_velo(calib_dir, cam)
    image_stamps = read_timestamps(drive_dir / f'image_0{cam}' / 'timestamps.txt', len(frames))
    velo_stamps = read_timestamps(velo_dir / 'timestamps.txt', len(frames)) if velodyne else []
    image_topic, info_topic = camera_topics(cam)
    base_pose = np.eye(4)
    base_pose[2, 3] = KITTI_VELODYNE_HEIGHT
    with BagWriter(output, storage=storage) as bag:
        bag.add_topic(image_topic, Image)
        bag.add_topic(info_topic, CameraInfo)
        if velodyne:
            bag.add_topic(VELO_TOPIC, PointCloud2)
        start = min(image_stamps[:1] + velo_stamps[:1])
        bag.write_static_transforms([
            static_transform(BASE_FRAME, VELO_FRAME, base_pose, start),
            static_transform(VELO_FRAME, camera_frame(cam), camera_pose, start)], start)
        for i, name in enumerate(tqdm(frames, desc='kitti2bag', unit='frame',
                                      disable=not progress)):
            rgb = read_image(drive_dir / f'image_0{cam}' / 'data' / f'{name}.png')
            if rgb.shape[:2] != size:
                raise ValueError(f'image {name}.png is {rgb.shape[1]}x{rgb.shape[0]}, but '
                                 f'S_rect_0{cam} in {calib_dir} says {size[1]}x{size[0]}')
            header = make_header(image_stamps[i], camera_frame(cam))
            bag.write(image_topic, numpy_to_image(rgb, 'rgb8', header), image_stamps[i])
            bag.write(info_topic, kitti_camera_info(k, size, header), image_stamps[i])
            if velodyne:
                scan = load_velodyne(velo_dir / 'data' / f'{name}.bin')
                cloud = velodyne_cloud(scan, make_header(velo_stamps[i], VELO_FRAME))
                bag.write(VELO_TOPIC, cloud, velo_stamps[i])
    return {'bag': str(output), 'frames': len(frames), 'image_topic': image_topic,
            'camera_info_topic': info_topic, 'velodyne_topic': VELO_TOPIC if velodyne else None,
            'camera_frame': camera_frame(cam)}
