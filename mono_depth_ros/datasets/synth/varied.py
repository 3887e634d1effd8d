"""Varied streets and looks (mono-depth-synth --world varied): what real streets hold, drawn
so that a network must read geometry rather than the synthetic textures.

Streets: city (continuous facades at the sidewalk), residential (houses with gaps behind
hedges, walls and fences) and rural roads (tree rows, hedges, guard rails, no buildings);
cars, vans and trucks, parked and moving; pedestrians and cyclists; bushes and large
canopies. Looks: a palette, texture scales, sun and sky (clear, overcast, blown-out white,
hazy) and exposure per drive (Look, used by render.render_camera).
"""

from dataclasses import dataclass

import numpy as np

from mono_depth_ros.datasets.synth import scene as sc

STREET_KINDS = ('city', 'residential', 'rural')
STREET_WEIGHTS = (0.35, 0.35, 0.3)
SKIES = ('clear', 'overcast', 'white', 'hazy')
SKY_WEIGHTS = (0.3, 0.25, 0.3, 0.15)


@dataclass
class Look:
    """A drive's appearance: sky, light, exposure and texture statistics."""

    sky: str                     # one of SKIES
    sky_top: np.ndarray          # RGB at the zenith and at the horizon
    sky_horizon: np.ndarray
    clouds: float                # cloud texture contrast (0: none)
    sun_strength: float          # direct light (0.1 overcast … 0.9 clear)
    ambient: float
    exposure: float              # gain before clipping (white skies clip)
    white_balance: np.ndarray    # per-channel gains
    texture_scale: float         # metres of the coarse texture
    texture_contrast: float
    asphalt: float               # road brightness
    haze_distance: float         # metres over which colours fade 63 % to the horizon colour


def draw_look(rng: np.random.Generator) -> Look:
    """A random look of a drive."""
    sky = SKIES[rng.choice(len(SKIES), p=SKY_WEIGHTS)]
    if sky == 'clear':
        top = np.array([0.25, 0.45, 0.85]) * rng.uniform(0.8, 1.1)
        horizon = np.array([0.75, 0.83, 0.95])
    elif sky == 'overcast':
        top = np.full(3, rng.uniform(0.6, 0.85))
        horizon = top + 0.08
    elif sky == 'white':
        top, horizon = np.full(3, rng.uniform(0.9, 1.2)), np.full(3, 1.2)
    else:
        top = np.array([0.6, 0.68, 0.8]) * rng.uniform(0.9, 1.1)
        horizon = np.full(3, rng.uniform(0.8, 0.95))
    overcast = sky in ('overcast', 'hazy')
    return Look(
        sky=sky, sky_top=np.clip(top, 0, 1.3).astype(np.float32),
        sky_horizon=np.clip(horizon, 0, 1.3).astype(np.float32),
        clouds=float(rng.uniform(0.0, 0.25)) if sky != 'white' else 0.0,
        sun_strength=float(rng.uniform(0.1, 0.35) if overcast else rng.uniform(0.55, 0.95)),
        ambient=float(rng.uniform(0.35, 0.6) if overcast else rng.uniform(0.2, 0.4)),
        exposure=float(rng.uniform(1.0, 1.6) if sky == 'white' else rng.uniform(0.8, 1.25)),
        white_balance=rng.uniform(0.9, 1.1, size=3).astype(np.float32),
        texture_scale=float(rng.uniform(0.1, 1.5)),
        texture_contrast=float(rng.uniform(0.15, 0.6)),
        asphalt=float(rng.uniform(0.18, 0.45)),
        haze_distance=float(rng.uniform(150, 400) if sky == 'hazy' else rng.uniform(400, 900)))


def random_colour(rng: np.random.Generator, saturation: float = 0.5) -> np.ndarray:
    """A random RGB colour: a random grey mixed with a random hue."""
    grey = rng.uniform(0.15, 0.85)
    hue = rng.random(3)
    mix = rng.uniform(0, saturation)
    return np.clip((1 - mix) * grey + mix * hue, 0, 1).astype(np.float32)


def sidewalk(b: sc._Builder, rng: np.random.Generator, kerb: float, outer: float, base: float,
             z0: float, z1: float) -> None:
    """Add a sidewalk of a random paving colour between x = kerb and x = outer, its top at
    base, from z0 to z1."""
    xs = sorted((kerb, outer))
    b.box((xs[0], base, z0), (xs[1], sc.ROAD_Y + 0.5, z1), random_colour(rng, 0.15),
          sc.SIDEWALK)


def _vehicle(b: sc._Builder, rng: np.random.Generator, x: float, z: float,
             speed: float) -> float:
    """Add a car (70 %), van (20 %) or truck (10 %) with its rear at z; returns its length."""
    kind = rng.choice(3, p=(0.7, 0.2, 0.1))
    if kind == 0:
        sc._car(b, rng, x, z, speed)
        return 4.9
    length = rng.uniform(4.6, 5.8) if kind == 1 else rng.uniform(7.0, 12.0)
    width = rng.uniform(1.9, 2.1) if kind == 1 else rng.uniform(2.3, 2.55)
    height = rng.uniform(1.9, 2.5) if kind == 1 else rng.uniform(3.0, 3.9)
    colour = random_colour(rng, 0.7)
    b.box((x - width / 2, sc.ROAD_Y - height, z), (x + width / 2, sc.ROAD_Y - 0.3, z + length),
          colour, sc.CAR_BODY, speed)
    for axle in (z + 0.9, z + length - 1.0):
        b.box((x - width / 2 + 0.03, sc.ROAD_Y - 0.75, axle - 0.38),
              (x + width / 2 - 0.03, sc.ROAD_Y, axle + 0.38), np.full(3, 0.06), sc.WHEEL, speed)
    return length


def _tree(b: sc._Builder, rng: np.random.Generator, x: float, z: float, base: float,
          big: bool) -> None:
    """Add a tree: a trunk and a canopy of one to four spheres."""
    trunk = rng.uniform(1.8, 4.0)
    radius = rng.uniform(2.0, 4.5) if big else rng.uniform(1.0, 2.4)
    b.cylinder(x, z, rng.uniform(0.12, 0.35), trunk + radius, base,
               random_colour(rng, 0.2) * 0.6, sc.TRUNK)
    green = np.array([rng.uniform(0.08, 0.35), rng.uniform(0.25, 0.55), rng.uniform(0.05, 0.25)])
    for _ in range(int(rng.integers(1, 5))):
        offset = rng.normal(0, 0.4 * radius, 3) * [1, 0.5, 1]
        b.sphere((x + offset[0], base - trunk - 0.8 * radius + offset[1], z + offset[2]),
                 radius * rng.uniform(0.6, 1.0), green * rng.uniform(0.8, 1.2), sc.FOLIAGE)


def _boundary(b: sc._Builder, rng: np.random.Generator, x: float, sign: int, z0: float,
              z1: float, base: float) -> None:
    """Add hedges, walls and fences along x (the front of the plots), with gaps."""
    z = z0
    while z < z1:
        length = rng.uniform(5, 40)
        kind = rng.choice(4, p=(0.4, 0.25, 0.15, 0.2))       # hedge, wall, fence, gap
        thick = rng.uniform(0.3, 1.5) if kind == 0 else rng.uniform(0.1, 0.4)
        height = rng.uniform(0.7, 2.6) if kind == 0 else rng.uniform(0.5, 2.0)
        xs = sorted((x, x + sign * thick))
        if kind == 0:
            green = np.array([rng.uniform(0.1, 0.3), rng.uniform(0.25, 0.5),
                              rng.uniform(0.05, 0.2)])
            b.box((xs[0], base - height, z), (xs[1], base, z + length), green, sc.FOLIAGE)
        elif kind in (1, 2):
            material = sc.WALL if kind == 1 else sc.POLE
            b.box((xs[0], base - height, z), (xs[1], base, z + length), random_colour(rng),
                  material)
        z += length + rng.uniform(0, 6)


def _side(b: sc._Builder, rng: np.random.Generator, lay: sc.Layout, kind: str, sign: int,
          z0: float, z1: float) -> None:
    """Lay out one side of a varied street."""
    kerb = lay.road_right if sign > 0 else lay.road_left
    outer = kerb + sign * lay.sidewalk
    base = sc.ROAD_Y - lay.kerb_height
    if lay.sidewalk > 0:
        sidewalk(b, rng, kerb, outer, base, z0, z1)
    front = outer + sign * lay.setback
    if kind != 'rural':
        z = z0
        while z < z1:
            length = rng.uniform(12, 40) if kind == 'city' else rng.uniform(7, 16)
            height = rng.uniform(8, 25) if kind == 'city' else rng.uniform(5, 11)
            near = front + sign * (rng.uniform(0, 1) if kind == 'city' else rng.uniform(0, 8))
            xs = sorted((near, near + sign * rng.uniform(8, 15)))
            b.box((xs[0], sc.ROAD_Y - height, z), (xs[1], sc.ROAD_Y, z + length),
                  random_colour(rng, 0.4), sc.BUILDING)
            gap = rng.uniform(0, 3) if kind == 'city' else rng.uniform(2, 12)
            z += length + (gap if rng.random() < (0.3 if kind == 'city' else 0.8) else 0)
    if kind != 'city' or rng.random() < 0.3:
        _boundary(b, rng, outer + sign * rng.uniform(0, 0.5), sign, z0, z1, base)
    z = z0 + rng.uniform(0, 8)
    spacing = rng.uniform(6, 12) if kind == 'rural' else rng.uniform(8, 20)
    while z < z1:                                    # trees: rows on rural roads
        if rng.random() < (0.8 if kind == 'rural' else 0.5):
            x = outer + sign * rng.uniform(0.5, 6 if kind == 'rural' else 2)
            _tree(b, rng, x, z, base, big=rng.random() < 0.5)
        z += spacing * rng.uniform(0.6, 1.4)
    z = z0 + rng.uniform(0, 20)
    while z < z1:                                    # poles and signs
        x = kerb + sign * 0.4
        b.cylinder(x, z, rng.uniform(0.05, 0.15), rng.uniform(2.5, 9), base,
                   random_colour(rng, 0.2), sc.POLE)
        if rng.random() < 0.4:
            b.box((x - 0.35, sc.ROAD_Y - 3.0, z - 0.03), (x + 0.35, sc.ROAD_Y - 2.3, z),
                  random_colour(rng, 0.9), sc.SIGN)
        z += rng.uniform(10, 40)
    if kind == 'rural' and rng.random() < 0.6:       # guard rail at the verge
        x = kerb + sign * 0.3
        xs = sorted((x, x + sign * 0.15))
        b.box((xs[0], sc.ROAD_Y - 0.75, z0), (xs[1], sc.ROAD_Y - 0.35, z1),
              np.full(3, 0.7, np.float32), sc.POLE)
    if lay.sidewalk > 1:                             # pedestrians and cyclists
        z = z0 + rng.uniform(0, 30)
        while z < z1:
            x = kerb + sign * rng.uniform(0.5, lay.sidewalk)
            b.cylinder(x, z, rng.uniform(0.2, 0.35), rng.uniform(1.5, 1.9), base,
                       random_colour(rng, 0.6), sc.PERSON)
            z += rng.uniform(8, 50)
    if lay.parking > 0:                              # parked vehicles
        z = z0 + rng.uniform(0, 6)
        while z < z1:
            if rng.random() < 0.75:
                z += _vehicle(b, rng, kerb - sign * lay.parking / 2 + rng.uniform(-0.2, 0.2), z,
                              0.0)
            z += rng.uniform(0.8, 4)


def build_varied_scene(rng: np.random.Generator, z_start: float, z_end: float,
                       duration: float) -> sc.Scene:
    """Lay out a random varied street from z_start to z_end with traffic and a look."""
    kind = STREET_KINDS[rng.choice(len(STREET_KINDS), p=STREET_WEIGHTS)]
    rural = kind == 'rural'
    lay = sc.Layout(lane_width=rng.uniform(2.8, 3.8), lanes_right=int(rng.integers(1, 3)),
                    lanes_left=int(rng.integers(1, 3)),
                    parking=0.0 if rural or rng.random() < 0.25 else rng.uniform(2.0, 2.6),
                    sidewalk=rng.uniform(0.0, 1.0) if rural else rng.uniform(1.5, 4.5),
                    setback=0.0 if kind == 'city' else rng.uniform(0.0, 5.0),
                    kerb_height=rng.uniform(0.0, 0.05) if rural else rng.uniform(0.08, 0.18))
    b = sc._Builder()
    for sign in (1, -1):
        _side(b, rng, lay, kind, sign, z_start, z_end)
    for lane in range(lay.lanes_left):               # oncoming traffic
        x = lay.centre - (lane + 0.5) * lay.lane_width
        speed = -rng.uniform(6, 16)
        z = z_start + rng.uniform(0, 20)
        while z < z_end - speed * duration:
            z += _vehicle(b, rng, x + rng.uniform(-0.3, 0.3), z, speed) + rng.uniform(8, 45)
    for lane in range(1, lay.lanes_right):           # traffic in the ego direction
        x = lane * lay.lane_width
        speed = rng.uniform(6, 14)
        z = z_start - speed * duration + rng.uniform(0, 20)
        while z < z_end:
            z += _vehicle(b, rng, x + rng.uniform(-0.3, 0.3), z, speed) + rng.uniform(8, 45)
    sun = sc.sun_direction(rng.uniform(-1.4, 1.4), rng.uniform(0.3, 1.1))
    return b.scene(lay, sun, int(rng.integers(2**31)), draw_look(rng))
