"""mono-depth-bag-gt: lidar ground truth from a bag, against the KITTI folder and hand numbers."""

from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

pytest.importorskip('rclpy')
from sensor_msgs.msg import (  # noqa: E402
    CameraInfo,
    CompressedImage,
    Image,
    PointCloud2,
    PointField,
)

from mono_depth_ros.bags import ground_truth as bag_gt  # noqa: E402
from mono_depth_ros.bags.bag_io import BagWriter, static_transform  # noqa: E402
from mono_depth_ros.bags.kitti2bag import (  # noqa: E402
    camera_to_velo,
    convert_drive,
    kitti_camera_info,
    make_header,
)
from mono_depth_ros.core.transforms import (  # noqa: E402
    FrameTree,
    quaternion_to_rotation,
    TransformError,
)
from mono_depth_ros.datasets.kitti import (  # noqa: E402
    generate_depth_map,
    load_intrinsics,
    read_image,
    read_improved_gt,
)
from mono_depth_ros.datasets.kitti.io import read_timestamps  # noqa: E402
from mono_depth_ros.datasets.kitti.lidar_gt import (  # noqa: E402
    camera_depth_map,
    camera_projection,
    encode_depth_png,
    xyz_points,
)
from mono_depth_ros.ros.conversions import (  # noqa: E402
    numpy_to_image,
    pointcloud2_to_array,
    structured_to_pointcloud2,
)
from mono_depth_ros.tools.bag_gt import main  # noqa: E402

# A hand-built rig: base_link on the ground, the lidar 1 m above it, the camera's optical frame
# (x right, y down, z forward) 0.5 m ahead and 1.2 m up, both children of base_link.
T0 = 1_700_000_000_000_000_000
MS = 1_000_000
BASE, VELO, CAMERA = 'base_link', 'velo_link', 'cam_optical'
IMAGE, INFO, LIDAR = '/cam/image_raw', '/cam/camera_info', '/lidar/points'
SIZE = (6, 8)
K = np.array([[8.0, 0.0, 3.0], [0.0, 8.0, 2.0], [0.0, 0.0, 1.0]])
VELO_IN_BASE = np.array([[1.0, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 1.0], [0, 0, 0, 1]])
CAMERA_IN_BASE = np.array([[0.0, 0, 1, 0.5], [-1, 0, 0, 0], [0, -1, 0, 1.2], [0, 0, 0, 1]])
RIG = [(BASE, VELO, VELO_IN_BASE), (BASE, CAMERA, CAMERA_IN_BASE)]
# Lidar points (velo_link) and where they land by hand: (4.5, 0, 0.2) is 4 m straight ahead of
# the camera, pixel (u, v) = (cx, cy) = (3, 2); (2.5, 0, 0.2) is 2 m ahead on the same pixel and
# wins it; (8.5, 1, 0.2) is 8 m ahead and 1 m left: u = 3 - 8·1/8 = 2; (-3, 0, 0.2) is behind
# the camera (z = -3.5) and dropped, although it projects onto (3, 2) as well.
POINTS = np.array([[4.5, 0, 0.2], [8.5, 1, 0.2], [2.5, 0, 0.2], [-3, 0, 0.2], [np.nan, 0, 0]])
# KITTI convention: row = round(v) - 1, column = round(u) - 1; depth·256.
EXPECTED = np.zeros(SIZE, dtype=np.uint16)
EXPECTED[1, 2], EXPECTED[1, 1] = 2 * 256, 8 * 256
RGB = np.random.default_rng(0).integers(0, 256, (*SIZE, 3), dtype=np.uint8)


def cloud(scan: int, header) -> PointCloud2:
    """Scan number scan of POINTS moved scan metres forward: float64 x, y, z after intensity."""
    array = np.zeros(len(POINTS), dtype=[('intensity', '<f4'), ('z', '<f8'), ('y', '<f8'),
                                         ('x', '<f8')])
    array['x'], array['y'], array['z'] = POINTS[:, 0] + scan, POINTS[:, 1], POINTS[:, 2]
    return structured_to_pointcloud2(array, header)


def image(header, compressed: bool):
    """The camera image RGB as an rgb8 Image or a PNG CompressedImage."""
    if not compressed:
        return numpy_to_image(RGB, 'rgb8', header)
    png = cv2.imencode('.png', cv2.cvtColor(RGB, cv2.COLOR_RGB2BGR))[1]
    return CompressedImage(header=header, format='png', data=png.tobytes())


def hand_bag(path: Path, image_stamps=(T0,), scan_stamps=(T0,), transforms=tuple(RIG),
             info_size=SIZE, info=True, image_topics=(IMAGE,), lidar_topics=(LIDAR,),
             compressed=False, storage='mcap') -> Path:
    """A bag of the hand-built rig: images (+ CameraInfo) and scans at the given stamps."""
    events = sorted([(s, 0, k) for k, s in enumerate(image_stamps)]
                    + [(s, 1, k) for k, s in enumerate(scan_stamps)])
    with BagWriter(path, storage=storage) as bag:
        if transforms:
            bag.write_static_transforms([static_transform(*t, T0) for t in transforms], T0 - MS)
        for topic in image_topics:
            bag.add_topic(topic, CompressedImage if compressed else Image)
        if info:
            bag.add_topic(INFO, CameraInfo)
        for topic in lidar_topics:
            bag.add_topic(topic, PointCloud2)
        for stamp, kind, k in events:
            if kind == 0:
                header = make_header(stamp, CAMERA)
                for topic in image_topics:
                    bag.write(topic, image(header, compressed), stamp)
                if info:
                    bag.write(INFO, kitti_camera_info(K, info_size, header), stamp)
            else:
                for topic in lidar_topics:
                    bag.write(topic, cloud(k, make_header(stamp, VELO)), stamp)
    return path


def split_lines(out: Path) -> list[list[str]]:
    """The fields of each line of OUT/splits/all_files.txt."""
    return [line.split() for line in (out / 'splits' / 'all_files.txt').read_text().splitlines()]


@pytest.mark.slow
def test_kitti_drive_agrees_with_the_kitti_folder_ground_truth(synth_world, tmp_path, capsys):
    drive = synth_world / '2011_09_26' / '2011_09_26_drive_0001_sync'
    bag, out = tmp_path / 'drive', tmp_path / 'gt'
    convert_drive(drive, bag, max_frames=3, progress=False)
    assert main([str(bag), '--out', str(out), '--no-progress']) == 0
    assert '3 written, 0 already there, 0 skipped' in capsys.readouterr().out
    stamps = read_timestamps(drive / 'image_02' / 'timestamps.txt', 3)
    lines = split_lines(out)
    assert [line[1] for line in lines] == [f'depth/{s}.png' for s in stamps]  # message order
    assert sorted(p.name for p in (out / 'depth').iterdir()) == [f'{s}.png' for s in stamps]
    agreement = []
    for i, (image_file, depth_file, calib_file) in enumerate(lines):
        ours = read_improved_gt(out / depth_file)
        kitti = generate_depth_map(synth_world / '2011_09_26',
                                   drive / 'velodyne_points' / 'data' / f'{i:010d}.bin',
                                   cam=2, vel_depth=False)  # the velodyne ground truth as camera z
        either = (ours > 0) | (kitti > 0)
        assert either.sum() > 10_000
        agreement.append(np.mean(np.abs(ours - kitti)[either] <= 2 / 256))
        np.testing.assert_array_equal(read_image(out / image_file),
                                      read_image(drive / 'image_02' / 'data' / f'{i:010d}.png'))
        assert calib_file == f'calib/{stamps[0]}.yaml'
    print(f'pixels with depth in either map agreeing within 2/256 m: {agreement}')
    assert min(agreement) >= 0.99
    calib = yaml.safe_load((out / lines[0][2]).read_text())
    k, size = load_intrinsics(synth_world / '2011_09_26')
    assert calib['camera_matrix']['data'] == pytest.approx(k.ravel().tolist())
    assert (calib['image_height'], calib['image_width']) == size
    assert calib['frame_id'] == 'camera_color_left_optical_frame'
    velo_in_camera = np.linalg.inv(camera_to_velo(synth_world / '2011_09_26', 2)[0])
    np.testing.assert_allclose(np.reshape(calib['lidar_to_camera']['data'], (4, 4)),
                               velo_in_camera, atol=1e-6)


@pytest.mark.parametrize('storage, compressed', [('mcap', False), ('sqlite3', True)])
def test_hand_built_rig_gives_the_hand_computed_depth(tmp_path, storage, compressed):
    bag = hand_bag(tmp_path / 'bag', storage=storage, compressed=compressed)
    summary = bag_gt.write_ground_truth(bag, tmp_path / 'out', progress=False)
    assert (summary['written'], summary['skipped'], summary['image_topic']) == (1, {}, IMAGE)
    out = tmp_path / 'out'
    depth = cv2.imread(str(out / 'depth' / f'{T0}.png'), cv2.IMREAD_UNCHANGED)
    assert depth.dtype == np.uint16
    np.testing.assert_array_equal(depth, EXPECTED)
    np.testing.assert_array_equal(read_image(out / 'image' / f'{T0}.png'), RGB)
    assert split_lines(out) == [[f'image/{T0}.png', f'depth/{T0}.png', f'calib/{T0}.yaml']]
    calib = yaml.safe_load((out / 'calib' / f'{T0}.yaml').read_text())
    assert calib['depth_projection'] == 'K' and calib['lidar_frame'] == VELO
    assert not list(out.rglob('*.tmp'))


def test_centre_pixel_convention_moves_every_point_one_pixel_down_right(tmp_path):
    bag = hand_bag(tmp_path / 'bag')
    assert main([str(bag), '--out', str(tmp_path / 'out'), '--pixel-convention', 'centre',
                 '--no-progress']) == 0
    depth = read_improved_gt(tmp_path / 'out' / 'depth' / f'{T0}.png')
    expected = np.zeros(SIZE, dtype=np.float32)
    expected[2, 3], expected[2, 2] = 2.0, 8.0
    np.testing.assert_array_equal(depth, expected)


def test_each_image_takes_the_nearest_scan_within_max_dt(tmp_path, capsys):
    # Images at 0, 100, 200 ms; scans at 10, 120, 500 ms, each after its image in the bag.
    # Scan k is moved k metres forward, so the pixel (3, 2) says which scan was used: 2 + k m.
    bag = hand_bag(tmp_path / 'bag', image_stamps=(T0, T0 + 100 * MS, T0 + 200 * MS),
                   scan_stamps=(T0 + 10 * MS, T0 + 120 * MS, T0 + 500 * MS))
    out = tmp_path / 'out'
    assert main([str(bag), '--out', str(out), '--max-dt', '0.05', '--no-progress']) == 0
    printed = capsys.readouterr().out
    assert '2 written, 0 already there, 1 skipped' in printed
    assert 'skipped 1: no lidar scan within max_dt' in printed
    for stamp, scan in ((T0, 0), (T0 + 100 * MS, 1)):
        assert read_improved_gt(out / 'depth' / f'{stamp}.png')[1, 2] == 2.0 + scan
    assert not (out / 'depth' / f'{T0 + 200 * MS}.png').exists()
    assert [line[1] for line in split_lines(out)] == [f'depth/{T0}.png',
                                                      f'depth/{T0 + 100 * MS}.png']


@pytest.mark.parametrize('bag_args, cli_args, expected', [
    ({'transforms': [(BASE, VELO, VELO_IN_BASE)]}, [],
     ["lidar frame 'velo_link'", "camera frame 'cam_optical'",
      '/tf_static holds the frames: base_link, velo_link']),
    ({'transforms': ()}, [], ["'velo_link'", "'cam_optical'", 'holds the frames: none']),
    ({'info': False}, [], ['no CameraInfo']),
    ({'image_topics': (IMAGE, '/cam2/image_raw')}, [],
     ["several image topics ['/cam/image_raw', '/cam2/image_raw']", '--image-topic']),
    ({'lidar_topics': (LIDAR, '/lidar2/points')}, [],
     ["several lidar topics ['/lidar/points', '/lidar2/points']", '--lidar-topic']),
    ({'info_size': (6, 10)}, [], ['CameraInfo size 10x6 disagrees with the image size 8x6']),
    ({'scan_stamps': (T0 + 300 * MS,)}, [], ['within 0.05 s', '0.300 s away', '--max-dt']),
    ({}, ['--lidar-topic', '/nope'], ['lidar topic /nope is not in the bag']),
])
def test_bad_input_stops_before_anything_is_written(tmp_path, capsys, bag_args, cli_args,
                                                    expected):
    bag = hand_bag(tmp_path / 'bag', **bag_args)
    out = tmp_path / 'out'
    assert main([str(bag), '--out', str(out), '--no-progress', *cli_args]) == 1
    error = capsys.readouterr().err
    assert error.startswith('mono-depth-bag-gt: error:')
    for text in expected:
        assert text in error
    assert not out.exists()


def test_an_interrupted_run_leaves_no_partial_files_and_a_rerun_resumes(tmp_path, monkeypatch):
    stamps = (T0, T0 + 100 * MS, T0 + 200 * MS)
    bag = hand_bag(tmp_path / 'bag', image_stamps=stamps, scan_stamps=stamps)
    out = tmp_path / 'out'
    real_replace, calls = bag_gt.write_atomic.__globals__['os'].replace, []

    def replace_then_die(src, dst):
        """os.replace that is interrupted before renaming the 6th file (frame 2's depth)."""
        calls.append(dst)
        if len(calls) == 6:
            raise KeyboardInterrupt
        real_replace(src, dst)

    # Files in order: bag_gt.yaml, calib, then image and depth of each frame.
    monkeypatch.setattr('mono_depth_ros.datasets.kitti.lidar_gt.os.replace', replace_then_die)
    with pytest.raises(KeyboardInterrupt):
        bag_gt.write_ground_truth(bag, out, progress=False)
    monkeypatch.undo()
    assert Path(calls[-1]) == out / 'depth' / f'{stamps[1]}.png'
    assert (out / 'image' / f'{stamps[1]}.png').is_file()
    assert not (out / 'depth' / f'{stamps[1]}.png').exists()
    assert not list(out.rglob('.*.tmp')) and not (out / 'splits' / 'all_files.txt').exists()

    summary = bag_gt.write_ground_truth(bag, out, progress=False)
    assert (summary['resumed'], summary['written'], summary['listed']) == (1, 2, 3)
    fresh = bag_gt.write_ground_truth(bag, tmp_path / 'fresh', progress=False)
    assert fresh['written'] == 3
    for sub in ('image', 'depth', 'calib', 'splits'):
        for path in sorted((tmp_path / 'fresh' / sub).iterdir()):
            assert (out / sub / path.name).read_bytes() == path.read_bytes(), path
    again = bag_gt.write_ground_truth(bag, out, progress=False)
    assert (again['resumed'], again['written']) == (3, 0)
    with pytest.raises(bag_gt.BagError, match="pixel_convention: 'kitti' now 'centre'"):
        bag_gt.write_ground_truth(bag, out, pixel_convention='centre', progress=False)


def pointcloud(fields: list[tuple[str, int, int]], data: bytes, point_step: int, width: int,
               height: int = 1, row_step: int | None = None,
               bigendian: bool = False) -> PointCloud2:
    """A PointCloud2 from (name, offset, datatype) fields and raw bytes."""
    msg = PointCloud2(height=height, width=width, point_step=point_step, is_bigendian=bigendian,
                      row_step=row_step or point_step * width,
                      fields=[PointField(name=n, offset=o, datatype=d, count=1)
                              for n, o, d in fields])
    msg.data = data
    return msg


def test_cloud_parsing_float64_shuffled_organised_and_big_endian():
    f32, f64 = PointField.FLOAT32, PointField.FLOAT64
    # Unorganised, point_step 32: y float64 at 0, intensity at 8, x float32 at 12, z float64 at
    # 20, 4 bytes of padding.
    raw = np.zeros(2, dtype={'names': ['y', 'i', 'x', 'z'], 'offsets': [0, 8, 12, 20],
                             'formats': ['<f8', '<f4', '<f4', '<f8'], 'itemsize': 32})
    raw['x'], raw['y'], raw['z'], raw['i'] = [1.5, 0.5], [-2.25, 0.25], [10.0, 3.0], [7, 7]
    msg = pointcloud([('y', 0, f64), ('intensity', 8, f32), ('x', 12, f32), ('z', 20, f64)],
                     raw.tobytes(), 32, 2)
    np.testing.assert_array_equal(xyz_points(pointcloud2_to_array(msg)),
                                  [[1.5, -2.25, 10.0], [0.5, 0.25, 3.0]])
    # Organised 2×2, z, x, y float32, 4 padding bytes at the end of each row; one NaN point.
    rows = np.array([[[4.0, 1.0, 2.0], [np.nan, 0.0, 0.0]], [[6.0, 3.0, -1.0], [8.0, -4.0, 0.5]]],
                    dtype='<f4')
    data = b''.join(row.tobytes() + b'\0' * 4 for row in rows)
    msg = pointcloud([('z', 0, f32), ('x', 4, f32), ('y', 8, f32)], data, 12, 2, height=2,
                     row_step=28)
    np.testing.assert_array_equal(xyz_points(pointcloud2_to_array(msg)),
                                  [[1.0, 2.0, 4.0], [3.0, -1.0, 6.0], [-4.0, 0.5, 8.0]])
    # Big-endian float64 x, y, z.
    msg = pointcloud([('x', 0, f64), ('y', 8, f64), ('z', 16, f64)],
                     np.array([0.125, -3.0, 12.5], dtype='>f8').tobytes(), 24, 1, bigendian=True)
    np.testing.assert_array_equal(xyz_points(pointcloud2_to_array(msg)), [[0.125, -3.0, 12.5]])
    msg = pointcloud([('x', 0, f32), ('y', 4, f32)], bytes(8), 8, 1)
    with pytest.raises(ValueError, match='no field.* z; fields: x, y'):
        xyz_points(pointcloud2_to_array(msg))


def test_transform_chain_through_base_link_by_hand(tmp_path):
    tree = FrameTree()
    for parent, child, pose in RIG:
        tree.add('/' + parent, child, pose)  # a leading '/' names the same frame, as in tf2
    # velo -> base: +1 m up; base -> camera: subtract (0.5, 0, 1.2), then x_cam = -y,
    # y_cam = -z, z_cam = x. So t = R^T((0, 0, 1) - (0.5, 0, 1.2)) = (0, 0.2, -0.5).
    velo_to_camera = np.array([[0.0, -1, 0, 0], [0, 0, -1, 0.2], [1, 0, 0, -0.5], [0, 0, 0, 1]])
    np.testing.assert_allclose(tree.lookup(CAMERA, VELO), velo_to_camera, atol=1e-12)
    np.testing.assert_allclose(tree.lookup(VELO, CAMERA), np.linalg.inv(velo_to_camera),
                               atol=1e-12)
    np.testing.assert_allclose(tree.lookup(CAMERA, VELO) @ [4.5, 0, 0.2, 1], [0, 0, 4, 1],
                               atol=1e-12)
    tree.add('world', BASE, VELO_IN_BASE)  # a longer chain above base_link changes nothing
    np.testing.assert_allclose(tree.lookup(CAMERA, VELO), velo_to_camera, atol=1e-12)
    tree.add('map', 'odom', np.eye(4))
    with pytest.raises(TransformError, match='separate trees.*frames known: base_link, '
                       'cam_optical, map, odom, velo_link, world'):
        tree.lookup(CAMERA, 'odom')
    with pytest.raises(TransformError, match="'radar' not in any transform"):
        tree.lookup('radar', VELO)
    # The bag's /tf_static (quaternions) gives the same chain.
    plan = bag_gt.plan_ground_truth(hand_bag(tmp_path / 'bag'))
    np.testing.assert_allclose(plan.lidar_to_camera, velo_to_camera, atol=1e-9)


def test_quaternion_to_rotation_by_hand():
    s = np.sqrt(0.5)
    np.testing.assert_allclose(quaternion_to_rotation(0, 0, s, s),
                               [[0, -1, 0], [1, 0, 0], [0, 0, 1]], atol=1e-12)
    np.testing.assert_allclose(quaternion_to_rotation(0, 0, 2, 2),  # normalised first
                               [[0, -1, 0], [1, 0, 0], [0, 0, 1]], atol=1e-12)
    with pytest.raises(ValueError, match='not a rotation'):
        quaternion_to_rotation(0, 0, 0, 0)


def test_projection_with_p_after_r_and_depth_encoding_by_hand():
    # R turns 90° about z (x' = -y, y' = x); P has a baseline term Tx = -8 (1 m at fx 8).
    r = np.array([[0.0, -1, 0], [1, 0, 0], [0, 0, 1]])
    p = np.array([[8.0, 0, 3, -8], [0, 8, 2, 0], [0, 0, 1, 0]])
    projection, rotation = camera_projection(K.ravel(), p.ravel(), r.ravel(), use_p=True)
    np.testing.assert_array_equal(projection, p)
    np.testing.assert_array_equal(rotation, r)
    # (0.5, -1, 4) -> R: (1, 0.5, 4) -> u = (8 + 12 - 8) / 4 = 3, v = (4 + 8) / 4 = 3.
    depth = camera_depth_map([[0.5, -1, 4], [0, 0, 0]], projection, SIZE, rotation)
    assert np.argwhere(depth).tolist() == [[2, 2]] and depth[2, 2] == 4.0
    projection, rotation = camera_projection(K.ravel(), np.zeros(12), np.zeros(9), use_p=False)
    np.testing.assert_array_equal(projection, np.hstack([K, np.zeros((3, 1))]))
    np.testing.assert_array_equal(rotation, np.eye(3))
    with pytest.raises(ValueError, match='CameraInfo P is not a pinhole camera'):
        camera_projection(K.ravel(), np.zeros(12), np.eye(3).ravel(), use_p=True)
    depth = np.array([[2.0, 0.001, 300.0], [np.nan, 1.4 / 256, -1.0]])
    np.testing.assert_array_equal(encode_depth_png(depth), [[512, 0, 0], [0, 1, 0]])
