"""mono-depth-bag: a synthetic KITTI bag in, a bag with the node's outputs out, read by rosbags."""

import numpy as np
import pytest

pytest.importorskip('rclpy')
from node_harness import late_half_rate_frames, write_camera_bag  # noqa: E402
from rosbags.rosbag2 import Reader  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image  # noqa: E402
from std_msgs.msg import Header  # noqa: E402

from mono_depth_ros.bags.bag_io import bag_topics, BagWriter, read_bag, typestore  # noqa: E402
from mono_depth_ros.bags.kitti2bag import convert_drive  # noqa: E402
from mono_depth_ros.ros.conversions import (  # noqa: E402
    camera_info_intrinsics,
    image_to_numpy,
    numpy_to_image,
    pointcloud2_to_array,
    split_xyz_rgb,
)
from mono_depth_ros.ros.node_logic import fallback_intrinsics  # noqa: E402
from mono_depth_ros.tools.process_bag import main  # noqa: E402

pytestmark = pytest.mark.slow
CAM = '/kitti/camera_color_left'
OUTPUTS = {'depth': 'sensor_msgs/msg/Image', 'depth/camera_info': 'sensor_msgs/msg/CameraInfo',
           'depth/confidence': 'sensor_msgs/msg/Image', 'depth/colorized': 'sensor_msgs/msg/Image',
           'points': 'sensor_msgs/msg/PointCloud2'}


@pytest.fixture(scope='module')
def drive_bag(synth_world, tmp_path_factory):
    """A 3-frame bag of the synthetic drive made with mono-depth-kitti2bag."""
    drive = next((synth_world / '2011_09_26').glob('*_sync'))
    path = tmp_path_factory.mktemp('bags') / 'drive'
    convert_drive(drive, path, max_frames=3, progress=False)
    return path


def test_outputs_are_written_next_to_the_image_topic(drive_bag, tiny_checkpoint, tmp_path):
    out = tmp_path / 'out'
    code = main([str(drive_bag), str(out), '--checkpoint', tiny_checkpoint, '-p', 'device=cpu',
                 '-p', 'cloud_stride=4', '-p', 'max_range=0.0'])
    assert code == 0
    topics = bag_topics(out)
    for topic, (msgtype, count) in bag_topics(drive_bag).items():
        assert topics[topic] == (msgtype, count)  # the input is copied
    for name, msgtype in OUTPUTS.items():
        assert topics[f'{CAM}/{name}'] == (msgtype, 3)
    images = {m.msg.header.stamp.sec * 10**9 + m.msg.header.stamp.nanosec: m
              for m in read_bag(out, [f'{CAM}/image_raw'])}
    infos = [m.msg for m in read_bag(out, [f'{CAM}/camera_info'])]
    for item in read_bag(out, [f'{CAM}/{name}' for name in OUTPUTS]):
        header = item.msg.header
        source = images[header.stamp.sec * 10**9 + header.stamp.nanosec]
        assert header.frame_id == source.msg.header.frame_id == \
            'camera_color_left_optical_frame'
        assert item.stamp_ns == source.stamp_ns  # written at the image's receive time
        if item.topic.endswith('/depth'):
            depth = image_to_numpy(item.msg)
            assert depth.shape == (375, 1242) and item.msg.encoding == '32FC1'
        if item.topic.endswith('/points'):
            cloud = pointcloud2_to_array(item.msg)
            assert cloud.shape == (94, 311)  # ceil(375 / 4) × ceil(1242 / 4)
            points, colors = split_xyz_rgb(cloud)
            fx, fy, cx, cy = camera_info_intrinsics(infos[0])
            z = points[10, 20, 2]
            np.testing.assert_allclose(points[10, 20, :2], [(80 - cx) * z / fx,
                                                            (40 - cy) * z / fy], rtol=1e-5)
            rgb = image_to_numpy(source.msg)
            np.testing.assert_array_equal(colors[10, 20], rgb[40, 80])


def test_rosbags_reads_the_output_with_its_own_deserialiser(drive_bag, tiny_checkpoint,
                                                            tmp_path):
    out = tmp_path / 'out'
    assert main([str(drive_bag), str(out), '--checkpoint', tiny_checkpoint, '-p', 'device=cpu',
                 '--no-copy-input', '-p', 'publish_colorized=false']) == 0
    store = typestore()
    with Reader(out) as reader:
        topics = {c.topic for c in reader.connections}
        assert topics == {f'{CAM}/{n}' for n in OUTPUTS if n != 'depth/colorized'}
        depth = [c for c in reader.connections if c.topic == f'{CAM}/depth']
        for _, _, raw in reader.messages(connections=depth):
            msg = store.deserialize_cdr(raw, 'sensor_msgs/msg/Image')
            assert (msg.height, msg.width, msg.encoding) == (375, 1242, '32FC1')


def test_a_bag_without_camera_info_is_refused_unless_fallback_intrinsics_is_set(
        tiny_checkpoint, tmp_path, capsys):
    bag = tmp_path / 'no_info'
    rgb = np.full((60, 200, 3), 90, np.uint8)
    with BagWriter(bag) as writer:
        writer.add_topic('/cam/image', Image)
        for i in range(2):
            header = Header(frame_id='cam_optical_frame')
            header.stamp.sec = 100 + i
            writer.write('/cam/image', numpy_to_image(rgb, 'rgb8', header), (100 + i) * 10**9)
    args = [str(bag), '--checkpoint', tiny_checkpoint, '-p', 'device=cpu']
    assert main([args[0], str(tmp_path / 'refused'), *args[1:]]) == 1
    err = capsys.readouterr().err
    assert 'no CameraInfo topic for /cam/image' in err and 'fallback_intrinsics=kitti' in err
    assert not (tmp_path / 'refused').exists()  # refused before anything is written
    out = tmp_path / 'out'
    assert main([args[0], str(out), *args[1:], '-p', 'fallback_intrinsics=kitti',
                 '-p', 'camera_info_timeout=0.0']) == 0
    assert "using fallback_intrinsics 'kitti'" in capsys.readouterr().err
    infos = [m.msg for m in read_bag(out, ['/cam/depth/camera_info'])]
    assert len(infos) == 2 and isinstance(infos[0], CameraInfo)
    np.testing.assert_allclose(camera_info_intrinsics(infos[0], (60, 200)),
                               fallback_intrinsics((60, 200), 'kitti'))
    given = tmp_path / 'given'
    assert main([args[0], str(given), *args[1:], '-p', 'fallback_intrinsics=300, 310, 99, 29',
                 '-p', 'camera_info_timeout=0.0']) == 0
    info = next(read_bag(given, ['/cam/depth/camera_info'])).msg
    assert camera_info_intrinsics(info, (60, 200)) == (300.0, 310.0, 99.0, 29.0)


def depth_infos(bag) -> dict[int, float]:
    """fx of each depth/camera_info of a bag by its stamp's seconds."""
    return {m.msg.header.stamp.sec: m.msg.k[0] for m in read_bag(bag, ['/cam/depth/camera_info'])}


def test_late_half_rate_camera_info_gets_the_nodes_rule_in_bag_time(tiny_checkpoint, tmp_path,
                                                                    capsys):
    # CameraInfo for frames 0, 2, 4, 6 only, each 0.1 s after its image (fx 150 + 20 i)
    bag = write_camera_bag(tmp_path / 'late', late_half_rate_frames(8, (60, 200)))
    args = ['--checkpoint', tiny_checkpoint, '-p', 'device=cpu', '--no-copy-input']
    # waiting 0.5 s covers the lateness: even frames get their own, odd ones the latest
    assert main([str(bag), str(tmp_path / 'wait'), *args, '-p', 'camera_info_wait=0.5']) == 0
    assert depth_infos(tmp_path / 'wait') == {100 + i: 150.0 + 20 * (i - i % 2) for i in range(8)}
    assert '8 of 8 images processed (4 with the latest CameraInfo' in capsys.readouterr().out
    # waiting 0.05 s does not: frame 0 waits for a first CameraInfo (none stands in), every
    # later frame takes the latest, which is two frames old for the even ones
    assert main([str(bag), str(tmp_path / 'short'), *args, '-p', 'camera_info_wait=0.05']) == 0
    expected = {100: 150.0, **{100 + i: 150.0 + 20 * ((i - 1) // 2 * 2) for i in range(1, 8)}}
    assert depth_infos(tmp_path / 'short') == expected


def test_every_camera_of_the_cameras_parameter_is_served(tiny_checkpoint, tmp_path):
    items = late_half_rate_frames(3, (60, 200))
    bag = tmp_path / 'two'
    with BagWriter(bag) as writer:
        for camera in ('front', 'rear'):
            for topic in ('image', 'camera_info'):
                writer.add_topic(f'/car/{camera}/{topic}', CameraInfo if topic == 'camera_info'
                                 else Image)
        for receive, topic, msg in sorted(items, key=lambda item: item[0]):
            for camera in ('front', 'rear'):
                writer.write(f'/car/{camera}/{topic}', msg, receive)
    out = tmp_path / 'out'
    assert main([str(bag), str(out), '--checkpoint', tiny_checkpoint, '-p', 'device=cpu',
                 '--namespace', '/car', '-p', 'cameras=[front, rear]', '--no-copy-input']) == 0
    topics = bag_topics(out)
    for camera in ('front', 'rear'):
        assert topics[f'/car/{camera}/depth'] == ('sensor_msgs/msg/Image', 3)
    assert main([str(bag), str(tmp_path / 'bad'), '--checkpoint', tiny_checkpoint,
                 '--namespace', '/car', '-p', 'cameras=[front, side]']) == 1


def test_bad_arguments_exit_with_a_message(drive_bag, tiny_checkpoint, tmp_path, capsys):
    assert main([str(drive_bag), str(tmp_path / 'a'), '--checkpoint', '/missing.pt']) == 1
    assert 'checkpoint file not found' in capsys.readouterr().err
    assert main([str(drive_bag), str(tmp_path / 'b'), '--checkpoint', tiny_checkpoint,
                 '--image-topic', '/nope']) == 1
    assert 'image topic /nope is not in the bag' in capsys.readouterr().err
    assert main([str(tmp_path), str(tmp_path / 'c'), '--checkpoint', tiny_checkpoint]) == 1
    assert 'is not a ROS 2 bag' in capsys.readouterr().err
    assert main([str(drive_bag), str(tmp_path / 'd'), '--checkpoint', tiny_checkpoint,
                 '-p', 'cloud_stride=0']) == 1
    assert "'cloud_stride' = 0 is out of range" in capsys.readouterr().err


def test_eval_scores_the_bag_as_it_scores_the_checkpoint(drive_bag, synth_world, tiny_checkpoint,
                                                         tmp_path, capsys):
    import json

    from mono_depth_ros.tools import evaluate

    out = tmp_path / 'out'
    assert main([str(drive_bag), str(out), '--checkpoint', tiny_checkpoint, '-p',
                 'device=cpu']) == 0
    split = tmp_path / 'split.txt'
    drive = next((synth_world / '2011_09_26').glob('*_sync')).relative_to(synth_world)
    split.write_text(''.join(f'{drive} {i:010d} l\n' for i in range(4)))  # frame 3: not in bag
    base = ['--data-path', str(synth_world), '--gt', 'dense', '--crop', 'none',
            '--montage-frames', '0', '--skip-missing']
    assert evaluate.main([*base, '--split-file', str(split), '--bag', str(out),
                          '--output-dir', str(tmp_path / 'b')]) == 0
    from_bag = json.loads((tmp_path / 'b' / 'metrics.json').read_text())
    assert (from_bag['frames'], from_bag['skipped']) == (3, 1)
    assert from_bag['skipped_frames'] == [f'{drive} 3 l']  # the bag holds frames 0-2
    three = tmp_path / 'three.txt'
    three.write_text(''.join(split.read_text().splitlines(True)[:3]))
    assert evaluate.main([*base, '--split-file', str(three), '--checkpoint', tiny_checkpoint,
                          '--device', 'cpu', '--output-dir', str(tmp_path / 'd')]) == 0
    direct = json.loads((tmp_path / 'd' / 'metrics.json').read_text())
    for name in ('abs_rel', 'rmse', 'a1'):
        assert from_bag[name] == pytest.approx(direct[name], rel=1e-5), name
    for name in ('coverage', 'sky_near', 'flying_rate'):
        assert from_bag['published'][name] == pytest.approx(direct['published'][name]), name
    assert from_bag['published']['counts']['points'] == direct['published']['counts']['points']
    assert from_bag['sparsification']['ause'] == pytest.approx(
        direct['sparsification']['ause'], rel=1e-4)
    assert evaluate.main([*base, '--split-file', str(split), '--bag', str(out), '--bag-ns',
                          '/elsewhere', '--output-dir', str(tmp_path / 'e')]) == 1
    assert 'no /elsewhere/depth Image topic' in capsys.readouterr().err
