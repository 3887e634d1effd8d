"""mono-depth-kitti2bag on the synthetic world and on the real sample frame's calibration."""

from pathlib import Path
import shutil

import numpy as np
import pytest
from sensor_msgs.msg import CameraInfo, Image, PointCloud2

from mono_depth_ros.bags.bag_io import bag_topics, read_bag
from mono_depth_ros.bags.kitti2bag import camera_to_velo
from mono_depth_ros.datasets.kitti import (
    load_intrinsics,
    load_velodyne,
    read_image,
    velo_to_image_matrix,
)
from mono_depth_ros.datasets.kitti.io import parse_timestamp
from mono_depth_ros.ros.conversions import (
    camera_info_intrinsics,
    image_to_numpy,
    pointcloud2_to_array,
)
from mono_depth_ros.tools.kitti2bag import main

SAMPLE = Path(__file__).resolve().parent / 'data' / 'kitti_sample'
DRIVE = '2011_09_26/2011_09_26_drive_0001_sync'
IMAGE = '/kitti/camera_color_left/image_raw'
INFO = '/kitti/camera_color_left/camera_info'
VELO = '/kitti/velo/pointcloud'
OPTICAL = 'camera_color_left_optical_frame'


def pose_matrix(transform) -> np.ndarray:
    """4×4 matrix of a TransformStamped's transform."""
    q, t = transform.transform.rotation, transform.transform.translation
    x, y, z, w = q.x, q.y, q.z, q.w
    pose = np.eye(4)
    pose[:3, :3] = [[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                    [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                    [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]]
    pose[:3, 3] = t.x, t.y, t.z
    return pose


def test_parse_timestamp_by_hand():
    # 2011-09-26 13:02:25 UTC = 1317042145 s since the epoch
    assert parse_timestamp('2011-09-26 13:02:25.964389445') == 1317042145_964389445
    assert parse_timestamp('2011-09-26 13:02:25.5\n') == 1317042145_500000000
    with pytest.raises(ValueError, match='bad KITTI timestamp'):
        parse_timestamp('26/09/2011 13:02')


def test_camera_pose_from_real_calibration():
    pose, k, size = camera_to_velo(SAMPLE / '2011_09_26', 2)
    # KITTI's rig: the left colour camera sits 0.27 m ahead of the Velodyne, 0.06 m to its left
    # and 0.07 m lower; its optical axes are (z forward, x right, y down) in velodyne terms.
    np.testing.assert_allclose(pose[:3, 3], [0.27, 0.058, -0.072], atol=0.002)
    np.testing.assert_allclose(pose[:3, :3], [[0, 0, 1], [-1, 0, 0], [0, -1, 0]], atol=0.02)
    assert size == (375, 1242) and k[0, 2] == pytest.approx(609.5593)


def test_synthetic_drive_to_bag(synth_world, tmp_path):
    drive = synth_world / DRIVE
    bag = tmp_path / 'drive.bag'
    assert main([str(drive), str(bag), '--max-frames', '2']) == 0
    assert bag_topics(bag) == {IMAGE: ('sensor_msgs/msg/Image', 2),
                               INFO: ('sensor_msgs/msg/CameraInfo', 2),
                               VELO: ('sensor_msgs/msg/PointCloud2', 2),
                               '/tf_static': ('tf2_msgs/msg/TFMessage', 1)}
    stamps = [parse_timestamp(line) for line in
              (drive / 'image_02' / 'timestamps.txt').read_text().splitlines()[:2]]
    messages = list(read_bag(bag))
    by_topic = {topic: [m for m in messages if m.topic == topic] for topic in bag_topics(bag)}

    k, size = load_intrinsics(synth_world / '2011_09_26')
    for i, (image, info) in enumerate(zip(by_topic[IMAGE], by_topic[INFO], strict=True)):
        assert isinstance(image.msg, Image) and isinstance(info.msg, CameraInfo)
        assert image.stamp_ns == info.stamp_ns == stamps[i]
        stamp = image.msg.header.stamp
        assert stamp.sec * 10**9 + stamp.nanosec == stamps[i]
        assert image.msg.header.frame_id == info.msg.header.frame_id == OPTICAL
        assert image.msg.encoding == 'rgb8'
        np.testing.assert_array_equal(image_to_numpy(image.msg),
                                      read_image(drive / 'image_02' / 'data' / f'{i:010d}.png'))
        assert camera_info_intrinsics(info.msg, size) == (k[0, 0], k[1, 1], k[0, 2], k[1, 2])
        assert info.msg.p[3] == 0.0 and not np.any(info.msg.d)

    cloud_msg = by_topic[VELO][1].msg
    assert isinstance(cloud_msg, PointCloud2) and cloud_msg.header.frame_id == 'velo_link'
    assert [f.name for f in cloud_msg.fields] == ['x', 'y', 'z', 'intensity']
    cloud = pointcloud2_to_array(cloud_msg)
    scan = load_velodyne(drive / 'velodyne_points' / 'data' / '0000000001.bin')
    for i, name in enumerate(('x', 'y', 'z', 'intensity')):
        np.testing.assert_array_equal(cloud[name], scan[:, i])

    # The tf chain and CameraInfo put each lidar point on the pixel KITTI's projection gives.
    (tf,) = by_topic['/tf_static']
    transforms = {t.child_frame_id: t for t in tf.msg.transforms}
    assert transforms['velo_link'].header.frame_id == 'base_link'
    assert transforms['velo_link'].transform.translation.z == pytest.approx(1.73)
    assert transforms[OPTICAL].header.frame_id == 'velo_link'
    camera_in_velo = pose_matrix(transforms[OPTICAL])
    ahead = scan[scan[:, 0] > 2.0, :3].astype(np.float64)
    in_camera = (np.linalg.inv(camera_in_velo) @ np.c_[ahead, np.ones(len(ahead))].T)[:3]
    ours = (k @ in_camera)[:2] / (k @ in_camera)[2]
    matrix, _ = velo_to_image_matrix(synth_world / '2011_09_26')
    kitti = (matrix @ np.c_[ahead, np.ones(len(ahead))].T)
    np.testing.assert_allclose(ours, kitti[:2] / kitti[2], atol=0.05)


def copy_sample(tmp_path: Path) -> Path:
    """The real sample frame as a one-frame drive with timestamps, in tmp_path."""
    root = tmp_path / 'kitti'
    shutil.copytree(SAMPLE, root)
    drive = root / DRIVE
    for sub in ('image_02', 'velodyne_points'):
        (drive / sub / 'timestamps.txt').write_text('2011-09-26 13:02:25.964389445\n')
    return drive


def test_real_sample_frame_and_sqlite3(tmp_path):
    drive = copy_sample(tmp_path)
    assert main([str(drive), str(tmp_path / 'bag'), '--storage', 'sqlite3', '--no-velodyne']) == 0
    topics = bag_topics(tmp_path / 'bag')
    assert VELO not in topics and topics[IMAGE] == ('sensor_msgs/msg/Image', 1)
    assert list((tmp_path / 'bag').glob('*.db3'))


@pytest.mark.parametrize('remove, message', [
    ('image_02/timestamps.txt', 'timestamps file not found'),
    ('velodyne_points/data/0000000000.bin', 'Velodyne scan not found'),
    ('../calib_velo_to_cam.txt', 'not found'),
    ('image_02/data', 'image folder not found'),
])
def test_missing_files_give_clear_errors(tmp_path, capsys, remove, message):
    drive = copy_sample(tmp_path)
    target = drive / remove
    shutil.rmtree(target) if target.is_dir() else target.unlink()
    assert main([str(drive), str(tmp_path / 'bag')]) == 1
    error = capsys.readouterr().err
    assert message in error and 'mono-depth-kitti2bag: error' in error
    assert not (tmp_path / 'bag').exists()  # nothing half-written
