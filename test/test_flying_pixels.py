"""The cloud's depth-discontinuity filter (flying pixels) on hand-built step edges and roads."""

import numpy as np
import pytest

from mono_depth_ros.core.geometry import (
    backproject,
    depth_edges,
    depth_jumps,
    edge_confidence,
)
from mono_depth_ros.inference.outputs import compute_outputs, make_cloud, OutputSettings


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


def test_depth_jumps_are_the_largest_relative_step_to_a_neighbour():
    jumps = depth_jumps(step_edge())
    # 10→15: 0.5 (cols 3, 4); 15→20: 1/3 (col 5 also has 20→25 = 0.25); 25→30: 0.2 (col 7)
    np.testing.assert_allclose(jumps[0], [0, 0, 0, 0.5, 0.5, 1 / 3, 0.25, 0.2, 0, 0, 0, 0],
                               rtol=1e-6)
    odd = np.array([[np.inf, 20.0, np.nan]], np.float32)
    np.testing.assert_array_equal(depth_jumps(odd), [[np.inf, np.inf, 0.0]])


def test_edge_confidence_lowers_the_confidence_around_a_depth_edge_only():
    depth = step_edge()
    confidence = np.full(depth.shape, 0.8, np.float32)
    near_edge = edge_confidence(depth_jumps(depth), confidence, window=1, scale=0.1)
    # c / (1 + J / 0.1): flat columns keep 0.8; column 3 (J 0.5) gets 0.8 / 6
    np.testing.assert_allclose(near_edge[0, :3], 0.8)
    np.testing.assert_allclose(near_edge[0, 3], 0.8 / 6, rtol=1e-6)
    np.testing.assert_allclose(near_edge[0, 7], 0.8 / 3, rtol=1e-6)
    widened = edge_confidence(depth_jumps(depth), confidence, window=3, scale=0.1)
    # a 3×3 window carries column 3's jump to column 2 and column 7's to column 8
    np.testing.assert_allclose(widened[0, [1, 2, 8, 9]], [0.8, 0.8 / 6, 0.8 / 3, 0.8],
                               rtol=1e-6)
    sky = np.full((3, 3), np.inf, np.float32)
    sky[2] = 20.0
    capped = edge_confidence(depth_jumps(sky), np.ones((3, 3), np.float32), window=1,
                             scale=1.0)
    np.testing.assert_allclose(capped[2], 1 / 11)  # jump to +inf counts as 10
    with pytest.raises(ValueError, match='differ'):
        edge_confidence(depth_jumps(depth), confidence[:, :3], 9, 0.03)


def test_published_confidence_is_lowered_at_the_edges():
    depth = np.pad(step_edge(), ((0, 0), (0, 12)), mode='edge')  # 30 m up to column 23
    image = np.zeros((*depth.shape, 3), np.uint8)
    outputs = compute_outputs(depth, np.full(depth.shape, 0.5, np.float32), image,
                              (50.0, 50.0, 5.5, 3.5), OutputSettings())
    # a 9×9 window reaches 4 columns: column 11 sees column 7's jump, column 12 sees none
    assert outputs.confidence[0, 12] == pytest.approx(0.5)
    assert outputs.confidence[0, 11] < 0.5 and outputs.confidence[0, 5] < 0.5 / 10
