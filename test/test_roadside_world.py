"""The roadside world (mono-depth-synth --world roadside): narrow streets with facades, garden
fronts, hedges and parked cars close beside the car, by turns with varied and basic streets."""

import numpy as np
import pytest

from mono_depth_ros.datasets.synth import generate_world, plan_drive
from mono_depth_ros.datasets.synth import scene as sc
from mono_depth_ros.datasets.synth.narrow import build_narrow_scene
from mono_depth_ros.datasets.synth.writer import street_builder

FRONTS = (sc.BUILDING, sc.WALL, sc.FOLIAGE, sc.POLE)


def _nearest_front(scene: sc.Scene, sign: int) -> float:
    """Lateral distance (m) from the camera to the nearest facade, wall, hedge or fence on a
    side (sign +1 right, -1 left) that stands behind the sidewalk and is over 0.5 m tall."""
    outer = (scene.layout.road_right + scene.layout.sidewalk if sign > 0
             else scene.layout.road_left - scene.layout.sidewalk)
    near = scene.box_lo[:, 0] if sign > 0 else -scene.box_hi[:, 0]
    tall = scene.box_hi[:, 1] - scene.box_lo[:, 1] > 0.5
    behind = near >= sign * outer - 1e-9
    fronts = np.isin(scene.box_material, FRONTS) & tall & behind & (scene.box_speed == 0)
    return float(near[fronts].min()) if fronts.any() else np.inf


def test_roadside_world_takes_narrow_varied_and_basic_streets_by_turns():
    builders = [street_builder('roadside', drive).__name__ for drive in range(1, 9)]
    assert builders == ['build_narrow_scene', 'build_scene', 'build_narrow_scene',
                        'build_varied_scene'] * 2
    assert plan_drive(5, 2, 3, 'roadside').scene.look is None      # basic look
    assert plan_drive(5, 4, 3, 'roadside').scene.look.sky == plan_drive(5, 4, 3,
                                                                        'varied').scene.look.sky
    with pytest.raises(ValueError, match='world must be one of'):
        street_builder('narrow', 1)


def test_narrow_streets_hold_fronts_and_parked_cars_close_beside_the_car():
    near, varied_near = [], []
    for drive in range(12):
        scene = build_narrow_scene(np.random.default_rng([9, drive]), -60.0, 320.0, 5.0)
        lay = scene.layout
        assert lay.lanes_right == 1 and lay.lanes_left in (0, 1)
        assert 0.8 <= lay.sidewalk <= 2.5
        # 1.65 m kerb offset at most from the lane, 2.4 m parking, 2.5 m sidewalk: the
        # frontage starts at most 0.5 * 3.3 + 2.4 + 2.5 = 6.55 m beside the camera.
        assert lay.road_right + lay.sidewalk <= 6.55 + 1e-9
        near.append(min(_nearest_front(scene, 1), _nearest_front(scene, -1)))
        varied = plan_drive(9, 2 * drive + 2, 3, 'varied').scene
        varied_near.append(min(_nearest_front(varied, 1), _nearest_front(varied, -1)))
        parked = (scene.box_material == sc.CAR_BODY) & (scene.box_speed == 0)
        if lay.parking > 0:
            assert parked.sum() >= 20           # nose to tail on both sides over 380 m
    assert max(near) <= 6.55 + 0.6               # a facade or boundary at most 0.6 m behind
    assert np.median(near) < np.median(varied_near)


@pytest.mark.slow
def test_a_narrow_drive_renders_surfaces_close_at_the_image_sides(tmp_path):
    summary = generate_world(tmp_path, drives=1, frames=1, seed=3, val_fraction=0.0,
                             test_fraction=0.0, world='roadside')
    assert summary['world'] == 'roadside'
    depth = np.load(tmp_path / '2011_09_26' / '2011_09_26_drive_0001_sync' / 'depth_dense' /
                    'image_02' / 'data' / '0000000000.npy')
    sides = np.concatenate([depth[:, :250], depth[:, -250:]], axis=1)
    hit = sides[sides > 0]
    assert hit.size > 0.9 * sides.size          # little sky at the sides of a narrow street
    assert np.median(hit) < 12.0
