"""Narrow streets (the roadside of mono-depth-synth --world roadside): what is close beside a
real car, where the first release's depth on real frames was worst (docs/real_camera.md).

One lane each way or one-way, parked vehicles nose to tail on both sides (some half on the
sidewalk), a narrow sidewalk, and right behind it continuous facades, garden fronts (hedges,
walls and fences with houses a few metres behind, bushes) or green verges (tall hedges and
trees). Looks as in varied.py (palettes, skies, light, exposure).
"""

import numpy as np

from mono_depth_ros.datasets.synth import scene as sc
from mono_depth_ros.datasets.synth import varied as vd

FRONTAGES = ('facade', 'garden', 'green')
FRONTAGE_WEIGHTS = (0.45, 0.35, 0.2)


def _bush(b: sc._Builder, rng: np.random.Generator, x: float, z: float, base: float) -> None:
    """Add a bush: one to three low spheres of foliage standing on base."""
    radius = rng.uniform(0.4, 1.4)
    green = np.array([rng.uniform(0.08, 0.35), rng.uniform(0.22, 0.5), rng.uniform(0.05, 0.22)])
    for _ in range(int(rng.integers(1, 4))):
        r = radius * rng.uniform(0.6, 1.0)
        centre = (x + rng.normal(0, 0.3 * radius), base - 0.8 * r,
                  z + rng.normal(0, 0.5 * radius))
        b.sphere(centre, r, green * rng.uniform(0.8, 1.2), sc.FOLIAGE)


def _houses(b: sc._Builder, rng: np.random.Generator, front: float, sign: int, z0: float,
            z1: float, setback: tuple[float, float], gaps: float) -> None:
    """Add buildings from z0 to z1 whose fronts lie setback metres beyond x = front."""
    z = z0
    while z < z1:
        length = rng.uniform(6, 25)
        height = rng.uniform(5, 18)
        near = front + sign * rng.uniform(*setback)
        xs = sorted((near, near + sign * rng.uniform(6, 12)))
        b.box((xs[0], sc.ROAD_Y - height, z), (xs[1], sc.ROAD_Y, z + length),
              vd.random_colour(rng, 0.4), sc.BUILDING)
        z += length + (rng.uniform(1, 6) if rng.random() < gaps else 0.0)


def _frontage(b: sc._Builder, rng: np.random.Generator, outer: float, sign: int, z0: float,
              z1: float, base: float) -> None:
    """Lay out what stands behind the sidewalk: facades, garden fronts or a green verge."""
    kind = FRONTAGES[rng.choice(len(FRONTAGES), p=FRONTAGE_WEIGHTS)]
    if kind == 'facade':
        _houses(b, rng, outer, sign, z0, z1, (0.0, 0.6), 0.2)
        return
    vd._boundary(b, rng, outer + sign * rng.uniform(0, 0.3), sign, z0, z1, base)
    if kind == 'garden':
        _houses(b, rng, outer, sign, z0, z1, (2.0, 7.0), 0.7)
    z = z0 + rng.uniform(0, 4)
    while z < z1:                                   # bushes and trees in gardens or the verge
        x = outer + sign * rng.uniform(0.6, 3.0)
        if kind == 'green' and rng.random() < 0.5:
            vd._tree(b, rng, x + sign * 1.5, z, base, big=rng.random() < 0.6)
        else:
            _bush(b, rng, x, z, base)
        z += rng.uniform(3, 10)


def _narrow_side(b: sc._Builder, rng: np.random.Generator, lay: sc.Layout, sign: int,
                 z0: float, z1: float) -> None:
    """Lay out one side of a narrow street: sidewalk, frontage, trees, poles, parked cars."""
    kerb = lay.road_right if sign > 0 else lay.road_left
    outer = kerb + sign * lay.sidewalk
    base = sc.ROAD_Y - lay.kerb_height
    vd.sidewalk(b, rng, kerb, outer, base, z0, z1)
    _frontage(b, rng, outer, sign, z0, z1, base)
    z = z0 + rng.uniform(0, 10)
    while z < z1:                                    # street trees and bushes at the kerb
        if rng.random() < 0.4:
            vd._tree(b, rng, kerb + sign * 0.6, z, base, big=False)
        elif rng.random() < 0.3:
            _bush(b, rng, kerb + sign * rng.uniform(0.3, 0.8), z, base)
        z += rng.uniform(6, 16)
    z = z0 + rng.uniform(0, 15)
    while z < z1:                                    # poles and signs
        x = kerb + sign * 0.3
        b.cylinder(x, z, rng.uniform(0.05, 0.12), rng.uniform(2.5, 7), base,
                   vd.random_colour(rng, 0.2), sc.POLE)
        if rng.random() < 0.5:
            b.box((x - 0.3, sc.ROAD_Y - 2.8, z - 0.03), (x + 0.3, sc.ROAD_Y - 2.2, z),
                  vd.random_colour(rng, 0.9), sc.SIGN)
        z += rng.uniform(8, 30)
    z = z0 + rng.uniform(0, 30)
    while z < z1:                                    # pedestrians on the sidewalk
        b.cylinder(kerb + sign * rng.uniform(0.3, max(lay.sidewalk - 0.2, 0.4)), z,
                   rng.uniform(0.2, 0.35), rng.uniform(1.5, 1.9), base,
                   vd.random_colour(rng, 0.6), sc.PERSON)
        z += rng.uniform(10, 60)
    if lay.parking > 0:                              # parked vehicles nose to tail
        z = z0 + rng.uniform(0, 4)
        while z < z1:
            if rng.random() < 0.85:
                kerbside = rng.uniform(0.4, 1.0) if rng.random() < 0.3 else 0.0
                x = kerb - sign * (lay.parking / 2 - kerbside) + rng.uniform(-0.15, 0.15)
                z += vd._vehicle(b, rng, x, z, 0.0)
            z += rng.uniform(0.5, 3)


def build_narrow_scene(rng: np.random.Generator, z_start: float, z_end: float,
                       duration: float) -> sc.Scene:
    """Lay out a random narrow street from z_start to z_end with traffic and a look."""
    one_way = rng.random() < 0.4
    lay = sc.Layout(lane_width=rng.uniform(2.6, 3.3), lanes_right=1,
                    lanes_left=0 if one_way else 1,
                    parking=0.0 if rng.random() < 0.15 else rng.uniform(1.9, 2.4),
                    sidewalk=rng.uniform(0.8, 2.5), setback=0.0,
                    kerb_height=rng.uniform(0.08, 0.16))
    b = sc._Builder()
    for sign in (1, -1):
        _narrow_side(b, rng, lay, sign, z_start, z_end)
    for lane in range(lay.lanes_left):               # sparse oncoming traffic
        x = lay.centre - (lane + 0.5) * lay.lane_width
        speed = -rng.uniform(5, 12)
        z = z_start + rng.uniform(0, 40)
        while z < z_end - speed * duration:
            z += vd._vehicle(b, rng, x + rng.uniform(-0.2, 0.2), z, speed) + rng.uniform(20, 80)
    sun = sc.sun_direction(rng.uniform(-1.4, 1.4), rng.uniform(0.3, 1.1))
    return b.scene(lay, sun, int(rng.integers(2**31)), vd.draw_look(rng))
