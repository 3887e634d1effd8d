"""The varied synthetic world (mono-depth-synth --world varied): what its streets hold, its looks,
its lidar truth and its determinism; the basic world is unchanged by it."""

import numpy as np
import pytest

from mono_depth_ros.datasets.kitti import generate_depth_map
from mono_depth_ros.datasets.synth import generate_world, plan_drive
from mono_depth_ros.datasets.synth import scene as sc
from mono_depth_ros.datasets.synth.varied import SKIES, STREET_KINDS

DRIVE = '2011_09_26/2011_09_26_drive_{:04d}_sync'


def test_varied_streets_hold_vans_trucks_hedges_walls_and_people():
    found = {'van or truck': 0, 'hedge': 0, 'wall': 0, 'person': 0, 'no building': 0}
    skies = set()
    for drive in range(1, 13):
        scene = plan_drive(5, drive, 3, 'varied').scene
        height = scene.box_hi[:, 1] - scene.box_lo[:, 1]
        body = scene.box_material == sc.CAR_BODY
        found['van or truck'] += int(np.any(body & (height > 1.8)))
        found['hedge'] += int(np.any(scene.box_material == sc.FOLIAGE))
        found['wall'] += int(np.any(scene.box_material == sc.WALL))
        found['person'] += int(np.any(scene.cyl_material == sc.PERSON))
        found['no building'] += int(not np.any(scene.box_material == sc.BUILDING))
        skies.add(scene.look.sky)
    assert all(count > 0 for count in found.values()), found
    assert len(skies) >= 3 and skies <= set(SKIES)
    assert plan_drive(5, 1, 3).scene.look is None          # the basic world keeps its look
    mixed = [plan_drive(5, drive, 3, 'mixed').scene.look for drive in (1, 2, 3, 4)]
    assert [look is None for look in mixed] == [True, False, True, False]
    assert mixed[1].sky == plan_drive(5, 2, 3, 'varied').scene.look.sky
    with pytest.raises(ValueError, match=r"world must be one of \('basic', 'varied', 'mixed', "
                       r"'roadside'\)"):
        plan_drive(5, 1, 3, 'fancy')
    assert len(STREET_KINDS) == 3


@pytest.mark.slow
def test_varied_world_truth_agrees_and_same_seed_gives_same_bytes(tmp_path):
    kwargs = dict(drives=2, frames=2, seed=11, val_fraction=0.0, test_fraction=0.0,
                  world='varied')
    summary = generate_world(tmp_path / 'a', **kwargs)
    assert summary['world'] == 'varied'
    generate_world(tmp_path / 'b', **kwargs)
    basic = generate_world(tmp_path / 'c', **{**kwargs, 'world': 'basic'})
    images = []
    for drive in (1, 2):
        base = tmp_path / 'a' / DRIVE.format(drive)
        image = (base / 'image_02' / 'data' / '0000000001.png').read_bytes()
        assert image == (tmp_path / 'b' / DRIVE.format(drive) / 'image_02' / 'data' /
                         '0000000001.png').read_bytes()
        assert image != (basic['root'] / DRIVE.format(drive) / 'image_02' / 'data' /
                         '0000000001.png').read_bytes()
        images.append(image)
        dense = np.load(base / 'depth_dense' / 'image_02' / 'data' / '0000000001.npy')
        gt = generate_depth_map(tmp_path / 'a' / '2011_09_26',
                                base / 'velodyne_points' / 'data' / '0000000001.bin',
                                vel_depth=False)
        shifted = np.zeros_like(dense)                     # KITTI's round(u) − 1 convention
        shifted[:-1, :-1] = dense[1:, 1:]
        both = (gt > 0) & (shifted > 0)
        assert both.sum() > 5_000
        assert np.median(np.abs(gt[both] - shifted[both]) / shifted[both]) < 0.003
    assert images[0] != images[1]
