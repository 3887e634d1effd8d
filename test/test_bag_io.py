"""ROS 2 bags: write with rclpy serialisation, read back, and check with rosbags' own reader."""

import json
import os
from pathlib import Path
import sys

import numpy as np
import pytest
from rosbags.rosbag2 import Reader, StoragePlugin, Writer
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
from std_msgs.msg import Header

from mono_depth_ros.bags.bag_io import (
    bag_topics,
    BagError,
    BagWriter,
    LATCHED_QOS,
    msgtype_of,
    read_bag,
    static_transform,
    TF_STATIC_TOPIC,
    typestore,
)
from mono_depth_ros.ros.conversions import image_to_numpy, make_pointcloud2, numpy_to_image


def frame(i):
    """An rgb8 image and a cloud stamped at i seconds + 5 ms."""
    header = Header(frame_id='camera_optical_frame')
    header.stamp.sec, header.stamp.nanosec = i, 5_000_000
    pixels = np.full((4, 6, 3), i, np.uint8)
    points = np.arange(24, dtype=np.float32).reshape(2, 4, 3) + i
    return numpy_to_image(pixels, 'rgb8', header), make_pointcloud2(points, None, header)


@pytest.mark.parametrize('storage', ['mcap', 'sqlite3'])
def test_write_read_round_trip(tmp_path, storage):
    path = tmp_path / 'bag'
    pose = np.eye(4)
    pose[:3, 3] = [0.0, 0.0, 1.73]
    with BagWriter(path, storage=storage) as bag:
        bag.add_topic('/cam/image_raw', Image)
        bag.add_topic('/cam/points', 'sensor_msgs/msg/PointCloud2')
        bag.add_topic('/cam/camera_info', CameraInfo)
        bag.write_static_transforms([static_transform('base_link', 'velo_link', pose, 0)], 0)
        for i in range(3):
            image, cloud = frame(i)
            stamp = i * 10**9 + 5_000_000
            bag.write('/cam/image_raw', image, stamp)
            bag.write('/cam/points', cloud, stamp)
        bag.write('/cam/camera_info', CameraInfo(width=6, height=4), 7)
    if storage == 'mcap':
        assert list(path.glob('*.mcap'))
    else:
        assert list(path.glob('*.db3'))

    assert bag_topics(path) == {
        '/cam/image_raw': ('sensor_msgs/msg/Image', 3),
        '/cam/points': ('sensor_msgs/msg/PointCloud2', 3),
        '/cam/camera_info': ('sensor_msgs/msg/CameraInfo', 1),
        TF_STATIC_TOPIC: ('tf2_msgs/msg/TFMessage', 1),
    }
    images = list(read_bag(path, topics=['/cam/image_raw']))
    assert [m.stamp_ns for m in images] == [5_000_000, 1_005_000_000, 2_005_000_000]
    for i, message in enumerate(images):
        assert isinstance(message.msg, Image) and message.msgtype == 'sensor_msgs/msg/Image'
        assert message.msg.header.stamp.sec == i
        assert message.msg.header.frame_id == 'camera_optical_frame'
        np.testing.assert_array_equal(image_to_numpy(message.msg), np.full((4, 6, 3), i))
    clouds = [m.msg for m in read_bag(path) if m.topic == '/cam/points']
    assert len(clouds) == 3 and isinstance(clouds[0], PointCloud2)
    assert bytes(clouds[2].data) == bytes(frame(2)[1].data)
    stamps = [m.stamp_ns for m in read_bag(path)]
    assert stamps == sorted(stamps) and len(stamps) == 8

    (tf,) = [m.msg for m in read_bag(path, topics=[TF_STATIC_TOPIC])]
    (transform,) = tf.transforms
    assert transform.header.frame_id == 'base_link' and transform.child_frame_id == 'velo_link'
    assert transform.transform.translation.z == pytest.approx(1.73)
    assert transform.transform.rotation.w == pytest.approx(1.0)


def test_rosbags_reader_sees_topics_types_counts_and_qos(tmp_path):
    path = tmp_path / 'bag'
    with BagWriter(path) as bag:
        bag.add_topic('/cam/image_raw', Image)
        for i in range(2):
            bag.write('/cam/image_raw', frame(i)[0], i)
        bag.write_static_transforms([static_transform('a', 'b', np.eye(4), 0)], 0)
    with Reader(path) as reader:
        topics = {name: (info.msgtype, info.msgcount) for name, info in reader.topics.items()}
        assert topics == {'/cam/image_raw': ('sensor_msgs/msg/Image', 2),
                          TF_STATIC_TOPIC: ('tf2_msgs/msg/TFMessage', 1)}
        assert reader.message_count == 3
        (tf_connection,) = [c for c in reader.connections if c.topic == TF_STATIC_TOPIC]
        assert tf_connection.ext.offered_qos_profiles == [LATCHED_QOS]
        assert tf_connection.msgdef.data  # MCAP carries the message definition
        store = typestore()
        decoded = {c.topic: [] for c in reader.connections}
        for connection, _, data in reader.messages():
            decoded[connection.topic].append(store.deserialize_cdr(data, connection.msgtype))
        images = decoded['/cam/image_raw']  # rclpy's CDR read by rosbags' own decoder
        assert [(m.width, m.height, m.encoding, m.header.stamp.sec) for m in images] == [
            (6, 4, 'rgb8', 0), (6, 4, 'rgb8', 1)]
        assert decoded[TF_STATIC_TOPIC][0].transforms[0].child_frame_id == 'b'
    metadata = (path / 'metadata.yaml').read_text()
    assert 'storage_identifier: mcap' in metadata


def test_bad_use_gives_clear_errors(tmp_path):
    path = tmp_path / 'bag'
    with pytest.raises(BagError, match='unknown bag storage'):
        BagWriter(path, storage='rosbag1')
    with BagWriter(path) as bag:
        bag.add_topic('/image', Image)
        with pytest.raises(BagError, match='not added'):
            bag.write('/other', Image(), 0)
        with pytest.raises(BagError, match='carries sensor_msgs/msg/Image'):
            bag.write('/image', CameraInfo(), 0)
        with pytest.raises(BagError, match='already added'):
            bag.add_topic('/image', Image)
        with pytest.raises(BagError, match='not in the ROS 2 Jazzy typestore'):
            bag.add_topic('/x', 'my_msgs/msg/Nothing')
    with pytest.raises(BagError, match='already exists'):
        BagWriter(path)
    with pytest.raises(BagError, match='no topic'):
        list(read_bag(path, topics=['/nope']))
    with pytest.raises(BagError, match='not a ROS 2 bag'):
        bag_topics(tmp_path)
    assert msgtype_of(Image()) == msgtype_of(Image) == 'sensor_msgs/msg/Image'


@pytest.mark.parametrize('msgtype', ['sensor_msgs/msg/Image', 'sensor_msgs/msg/CameraInfo',
                                     'sensor_msgs/msg/PointCloud2'])
def test_type_hashes_match_the_installed_messages(msgtype):
    package, _, name = msgtype.split('/')
    candidates = [Path(prefix) / 'share' / package / 'msg' / f'{name}.json' for prefix in
                  [sys.prefix, *os.environ.get('AMENT_PREFIX_PATH', '').split(os.pathsep)]
                  if prefix]
    found = [path for path in candidates if path.is_file()]
    if not found:
        pytest.skip(f'no type description file for {msgtype} under {sys.prefix}')
    description = json.loads(found[0].read_text())
    hashes = [h['hash_string'] for h in description['type_hashes'] if h['type_name'] == msgtype]
    assert hashes == [typestore().hash_rihs01(msgtype)]


def test_unknown_message_type_is_a_clear_error(tmp_path):
    path = tmp_path / 'bag'
    with Writer(path, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        connection = writer.add_connection('/thing', 'my_msgs/msg/Thing', msgdef='int32 a',
                                           rihs01='RIHS01_' + '0' * 64)
        writer.write(connection, 1, bytes([0, 1, 0, 0, 7, 0, 0, 0]))
    assert bag_topics(path) == {'/thing': ('my_msgs/msg/Thing', 1)}
    with pytest.raises(BagError, match='no message class for my_msgs/msg/Thing'):
        list(read_bag(path))
