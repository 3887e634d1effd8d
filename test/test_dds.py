"""The node's Fast DDS profile for large messages: when it is applied and when it is not."""

import pytest

from mono_depth_ros.ros.dds import configure_dds, profile_path, segment_size

GIB = 2**30


def test_the_profile_is_applied_by_default_with_room_in_shared_memory():
    env = {}
    line = configure_dds(env, free_bytes=GIB)
    path = str(profile_path())
    assert env == {'FASTRTPS_DEFAULT_PROFILES_FILE': path, 'FASTDDS_DEFAULT_PROFILES_FILE': path}
    assert line == f'DDS: Fast DDS profile {path} (32 MiB shared-memory segment)'
    assert segment_size(path) == 32 * 2**20  # larger than a 4-camera frame's outputs


@pytest.mark.parametrize('env, says', [
    ({'RMW_IMPLEMENTATION': 'rmw_cyclonedds_cpp'}, 'DDS: rmw_cyclonedds_cpp, its own settings'),
    ({'FASTRTPS_DEFAULT_PROFILES_FILE': '/mine.xml'},
     'DDS: Fast DDS as set by FASTRTPS_DEFAULT_PROFILES_FILE'),
    ({'FASTDDS_BUILTIN_TRANSPORTS': 'LARGE_DATA'},
     'DDS: Fast DDS as set by FASTDDS_BUILTIN_TRANSPORTS'),
])
def test_a_user_choice_is_left_alone(env, says):
    before = dict(env)
    assert configure_dds(env, free_bytes=GIB) == says
    assert env == before


def test_too_little_shared_memory_keeps_the_defaults_and_says_why():
    env = {'RMW_IMPLEMENTATION': 'rmw_fastrtps_cpp'}
    line = configure_dds(env, free_bytes=40 * 2**20)  # a small container /dev/shm
    assert env == {'RMW_IMPLEMENTATION': 'rmw_fastrtps_cpp'}
    assert '40 MiB free, less than twice the 32 MiB segment' in line


def test_a_profile_without_a_segment_size_is_refused(tmp_path):
    bad = tmp_path / 'bad.xml'
    bad.write_text('<profiles xmlns="http://www.eprosima.com/XMLSchemas/fastRTPS_Profiles"/>')
    with pytest.raises(ValueError, match='no <segment_size>'):
        segment_size(bad)
