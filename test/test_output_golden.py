"""No output changes: the node's messages for fixed frames equal those of the code before its
speed work (test/data/output_golden.npz, written by test/output_golden.py at that commit)."""

from pathlib import Path

import numpy as np
from output_golden import golden_messages
import pytest
from rclpy.serialization import deserialize_message

from mono_depth_ros.inference.outputs import compute_outputs, OutputSettings
from mono_depth_ros.ros.depth_messages import OUTPUT_TYPES

GOLDEN = Path(__file__).parent / 'data' / 'output_golden.npz'


def message_type(key: str):
    """The message class of a 'case|frame|topic' key."""
    return OUTPUT_TYPES[key.split('|')[2]]


def test_messages_equal_the_golden_file():
    golden = np.load(GOLDEN)
    have = golden_messages()
    assert sorted(have) == sorted(golden.files)  # no message more, none less
    differ = [key for key in golden.files
              if deserialize_message(golden[key].tobytes(), message_type(key))
              != deserialize_message(have[key], message_type(key))]
    assert not differ, f'messages differ from the golden file: {differ}'


def test_the_comparison_sees_a_changed_value():
    golden = np.load(GOLDEN)
    key = 'defaults_bench|0|points'
    message = deserialize_message(golden[key].tobytes(), message_type(key))
    changed = deserialize_message(golden[key].tobytes(), message_type(key))
    changed.data[100] ^= 1
    assert message != changed


@pytest.mark.parametrize('stride', [1, 2, 3])
def test_confidence_made_at_the_cloud_pixels_gives_the_same_cloud(stride):
    rng = np.random.default_rng(stride)
    rows, cols = np.mgrid[0:31, 0:47].astype(np.float32)
    depth = (5.0 + 0.5 * rows + 0.3 * cols + rng.uniform(0, 0.01, rows.shape)).astype(np.float32)
    depth[5:12, 10:20] = 3.0   # a near box: depth edges
    depth[20:, 40:] = 70.0     # beyond max_range
    confidence = rng.uniform(0.0, 0.05, depth.shape).astype(np.float32)
    rgb = rng.integers(0, 256, (*depth.shape, 3), dtype=np.uint8)
    valid = rng.uniform(size=depth.shape) > 0.1
    settings = OutputSettings(cloud_stride=stride, min_confidence=0.01, edge_threshold=0.03,
                              max_range=40.0)
    full = compute_outputs(depth, confidence, rgb, (50.0, 50.0, 23.0, 15.0), settings,
                           valid=valid)
    cloud_only = compute_outputs(depth, confidence, rgb, (50.0, 50.0, 23.0, 15.0), settings,
                                 valid=valid, confidence_output=False)
    assert cloud_only.confidence is None and full.confidence is not None
    np.testing.assert_array_equal(cloud_only.points, full.points)
    np.testing.assert_array_equal(cloud_only.colors, full.colors)
    np.testing.assert_array_equal(cloud_only.depth, full.depth)
    assert np.isnan(full.points).any() and np.isfinite(full.points).any()
