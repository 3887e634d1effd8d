"""The cloud's depth-discontinuity filter (flying pixels) on hand-built step edges and roads."""

import numpy as np
import pytest

from mono_depth_ros.core.geometry import backproject, depth_edges
from mono_depth_ros.inference.outputs import make_cloud, OutputSettings


def step_edge() -> np.ndarray:
    """8×12 depth: 10 m, then a bilinear ramp 10 → 30 m over three columns, then 30 m."""
    row = np.array([10, 10, 10, 10, 15, 20, 25, 30, 30, 30, 30, 30], np.float32)
    return np.tile(row, (8, 1))


def test_step_edge_marks_the_ramp_and_its_two_ends():
    edges = depth_edges(step_edge(), 0.1)
    # jumps: 10→15 is 0.5, 15→20 0.33, 20→25 0.25, 25→30 0.2: columns 3..7 touch one
    np.testing.assert_array_equal(edges[0], [0, 0, 0, 1, 1, 1, 1, 1, 0, 0, 0, 0])
    assert (edges == edges[0]).all()  # every row alike
    assert depth_edges(step_edge(), 0.6).sum() == 0  # no jump above 0.5
    np.testing.assert_array_equal(depth_edges(step_edge(), 0.3)[0],
                                  [0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0])


def test_a_road_is_smooth_and_beyond_range_next_to_a_surface_is_a_jump():
    v = np.arange(42, 120, dtype=np.float32)[:, None]  # rows 42..119 below a horizon at 30
    road = np.tile(1.65 * 721.5 / (v - 30.0), (1, 6))  # 99 m down to 13 m
    # row to row the road's depth changes by 1 / (v - cy - 1) of the nearer: < 10 % below 99 m
    assert not depth_edges(road, 0.1).any()
    farther = np.tile(1.65 * 721.5 / (np.arange(40, 44, dtype=np.float32)[:, None] - 30.0),
                      (1, 2))
    assert depth_edges(farther, 0.1)[:2].all()  # 119 m → 108 m is a jump of 10.0 % +
    sky = np.full((3, 3), np.inf, np.float32)
    sky[2, :] = 20.0
    sky[1, 1] = np.nan
    edges = depth_edges(sky, 0.1)
    # the 20 m row touches +inf above it; +inf pixels are never points; NaN does not count
    np.testing.assert_array_equal(edges, [[0, 0, 0], [0, 0, 0], [1, 0, 1]])
    with pytest.raises(ValueError, match='threshold must be > 0'):
        depth_edges(road, 0.0)


def test_cloud_drops_flying_pixels_only_when_asked():
    depth = step_edge()
    image = np.zeros((*depth.shape, 3), np.uint8)
    intrinsics = (50.0, 50.0, 5.5, 3.5)
    keep_all, _ = make_cloud(depth, image, intrinsics, OutputSettings(cloud_stride=1))
    np.testing.assert_array_equal(keep_all, backproject(depth, *intrinsics))
    filtered, _ = make_cloud(depth, image, intrinsics,
                             OutputSettings(cloud_stride=1, edge_threshold=0.1))
    assert np.isnan(filtered[:, 3:8]).all() and np.isfinite(filtered[:, :3]).all()
    np.testing.assert_array_equal(filtered[:, 8:], keep_all[:, 8:])
    strided, _ = make_cloud(depth, image, intrinsics,
                            OutputSettings(cloud_stride=2, edge_threshold=0.1))
    # kept columns 0, 2, 4, 6, 8, 10: 4 and 6 lie on the ramp
    np.testing.assert_array_equal(np.isnan(strided[0, :, 2]), [0, 0, 1, 1, 0, 0])
