"""Procedural street scenes: road, kerbs, sidewalks, buildings, cars, poles, trees.

World frame: the axes of the rectified left colour camera (image_02) — x right, y down,
z forward. The road surface is the plane y = ROAD_Y (the camera is KITTI_CAMERA_HEIGHT above
it); the ego vehicle drives along +z with the camera at x = 0, y = 0.
"""

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mono_depth_ros.core.constants import KITTI_CAMERA_HEIGHT

ROAD_Y = KITTI_CAMERA_HEIGHT

# Material ids: they choose the texture and lidar reflectance of a surface.
(GROUND, SIDEWALK, BUILDING, CAR_BODY, CAR_CABIN, POLE, TRUNK, FOLIAGE, SIGN, WHEEL, WALL,
 PERSON) = range(12)
REFLECTANCE = np.array([0.25, 0.3, 0.35, 0.6, 0.15, 0.45, 0.2, 0.12, 0.9, 0.05, 0.3, 0.2],
                       dtype=np.float32)

CAR_COLOURS = np.array([
    [0.75, 0.1, 0.08], [0.1, 0.2, 0.6], [0.85, 0.85, 0.85], [0.1, 0.1, 0.1], [0.55, 0.55, 0.58],
    [0.9, 0.75, 0.1], [0.15, 0.4, 0.2], [0.45, 0.25, 0.15], [0.3, 0.5, 0.7],
], dtype=np.float32)
BUILDING_COLOURS = np.array([
    [0.75, 0.65, 0.5], [0.6, 0.35, 0.28], [0.85, 0.82, 0.75], [0.55, 0.55, 0.58],
    [0.7, 0.6, 0.4], [0.45, 0.5, 0.55], [0.8, 0.7, 0.6],
], dtype=np.float32)


@dataclass
class Layout:
    """Cross-section of the street (x positions in metres, camera at x = 0)."""

    lane_width: float
    lanes_right: int          # lanes in the ego direction, ego in the rightmost-but-parking lane
    lanes_left: int           # oncoming lanes
    parking: float            # parking strip width on each side (0 = none)
    sidewalk: float
    setback: float            # gap between sidewalk and building fronts (front gardens)
    kerb_height: float

    @property
    def road_right(self) -> float:
        """The x of the right kerb."""
        return 0.5 * self.lane_width + (self.lanes_right - 1) * self.lane_width + self.parking

    @property
    def centre(self) -> float:
        """The x of the centre line between the two directions."""
        return -0.5 * self.lane_width

    @property
    def road_left(self) -> float:
        """The x of the left kerb."""
        return self.centre - self.lanes_left * self.lane_width - self.parking


@dataclass
class Scene:
    """Primitives of one drive; moving cars are boxes whose z grows with time."""

    layout: Layout
    box_lo: np.ndarray        # N×3 axis-aligned boxes
    box_hi: np.ndarray
    box_colour: np.ndarray    # N×3 in [0, 1]
    box_material: np.ndarray  # N int
    box_speed: np.ndarray     # N m/s along z (0 = static)
    cyl: np.ndarray           # M×5 vertical cylinders: x, z, radius, y_top, y_bottom
    cyl_colour: np.ndarray
    cyl_material: np.ndarray
    sph: np.ndarray           # K×4 spheres: x, y, z, radius
    sph_colour: np.ndarray
    sph_material: np.ndarray
    sun: np.ndarray = field(default_factory=lambda: np.array([0.4, -0.8, 0.45]))
    texture_seed: int = 0
    look: Any = None          # varied.Look of a varied world; None: the basic look

    def boxes_at(self, time: float) -> tuple[np.ndarray, np.ndarray]:
        """Return the box corners (lo, hi) at a time in seconds since the drive started."""
        shift = np.zeros_like(self.box_lo)
        shift[:, 2] = self.box_speed * time
        return self.box_lo + shift, self.box_hi + shift


def sun_direction(azimuth: float, elevation: float) -> np.ndarray:
    """Unit vector towards the sun (world axes: x right, y down, z forward) from its azimuth
    (radians, 0 ahead, positive to the right) and elevation (radians above the horizon)."""
    return np.array([np.sin(azimuth) * np.cos(elevation), -np.sin(elevation),
                     np.cos(azimuth) * np.cos(elevation)])


class _Builder:
    """Collects primitives while the street is laid out."""

    def __init__(self) -> None:
        self.boxes: list[tuple] = []
        self.cyls: list[tuple] = []
        self.sphs: list[tuple] = []

    def box(self, lo, hi, colour, material, speed=0.0) -> None:
        """Add an axis-aligned box given by two corners."""
        self.boxes.append((lo, hi, colour, material, speed))

    def cylinder(self, x, z, radius, height, base_y, colour, material) -> None:
        """Add a vertical cylinder standing on base_y."""
        self.cyls.append(((x, z, radius, base_y - height, base_y), colour, material))

    def sphere(self, centre, radius, colour, material) -> None:
        """Add a sphere."""
        self.sphs.append((centre, radius, colour, material))

    def scene(self, layout: Layout, sun: np.ndarray, texture_seed: int,
              look: Any = None) -> 'Scene':
        """The Scene of the primitives collected."""
        return Scene(
            layout=layout,
            box_lo=np.array([x[0] for x in self.boxes], dtype=np.float64).reshape(-1, 3),
            box_hi=np.array([x[1] for x in self.boxes], dtype=np.float64).reshape(-1, 3),
            box_colour=np.array([x[2] for x in self.boxes], dtype=np.float32).reshape(-1, 3),
            box_material=np.array([x[3] for x in self.boxes], dtype=np.int64),
            box_speed=np.array([x[4] for x in self.boxes], dtype=np.float64),
            cyl=np.array([x[0] for x in self.cyls], dtype=np.float64).reshape(-1, 5),
            cyl_colour=np.array([x[1] for x in self.cyls], dtype=np.float32).reshape(-1, 3),
            cyl_material=np.array([x[2] for x in self.cyls], dtype=np.int64),
            sph=np.array([(*x[0], x[1]) for x in self.sphs], dtype=np.float64).reshape(-1, 4),
            sph_colour=np.array([x[2] for x in self.sphs], dtype=np.float32).reshape(-1, 3),
            sph_material=np.array([x[3] for x in self.sphs], dtype=np.int64),
            sun=sun, texture_seed=texture_seed, look=look)


def _car(b: _Builder, rng: np.random.Generator, x: float, z: float, speed: float) -> None:
    """Add a car (body, cabin, two axles of wheels) centred at x with its rear at z."""
    length, width = rng.uniform(3.9, 4.9), rng.uniform(1.7, 1.9)
    body_h, cabin_h = rng.uniform(0.85, 1.05), rng.uniform(0.4, 0.55)
    colour = CAR_COLOURS[rng.integers(len(CAR_COLOURS))] * rng.uniform(0.85, 1.1)
    colour = np.clip(colour, 0, 1)
    lo = (x - width / 2, ROAD_Y - body_h, z)
    b.box(lo, (x + width / 2, ROAD_Y - 0.18, z + length), colour, CAR_BODY, speed)
    b.box((x - width / 2 + 0.08, ROAD_Y - body_h - cabin_h, z + 0.25 * length),
          (x + width / 2 - 0.08, ROAD_Y - body_h, z + 0.8 * length), colour, CAR_CABIN, speed)
    for axle in (z + 0.8, z + length - 0.9):
        b.box((x - width / 2 + 0.03, ROAD_Y - 0.62, axle - 0.31),
              (x + width / 2 - 0.03, ROAD_Y, axle + 0.31), np.full(3, 0.06), WHEEL, speed)


def _side(b: _Builder, rng: np.random.Generator, lay: Layout, sign: int, z0: float,
          z1: float) -> None:
    """Lay out kerb, sidewalk, buildings, poles, trees and parked cars on one side."""
    kerb = lay.road_right if sign > 0 else lay.road_left
    outer = kerb + sign * lay.sidewalk
    front = outer + sign * lay.setback
    paving = np.full(3, rng.uniform(0.5, 0.65), dtype=np.float32)
    xs = sorted((kerb, outer))
    b.box((xs[0], ROAD_Y - lay.kerb_height, z0), (xs[1], ROAD_Y + 0.5, z1), paving, SIDEWALK)
    z = z0
    while z < z1:                                   # buildings with gaps
        length = rng.uniform(8, 28)
        height = rng.uniform(5, 22)
        depth = rng.uniform(8, 15)
        inset = rng.uniform(0, 2.5)
        x_near = front + sign * inset
        xs = sorted((x_near, x_near + sign * depth))
        colour = BUILDING_COLOURS[rng.integers(len(BUILDING_COLOURS))] * rng.uniform(0.8, 1.1)
        b.box((xs[0], ROAD_Y - height, z), (xs[1], ROAD_Y, z + length), np.clip(colour, 0, 1),
              BUILDING)
        z += length + (rng.uniform(2, 10) if rng.random() < 0.35 else 0.0)
    z = z0 + rng.uniform(0, 10)
    pole_x = kerb + sign * 0.5
    while z < z1:                                   # street lamps and signs
        height = rng.uniform(5, 8)
        b.cylinder(pole_x, z, rng.uniform(0.08, 0.14), height, ROAD_Y - lay.kerb_height,
                   np.array([0.4, 0.42, 0.45]), POLE)
        if rng.random() < 0.3:
            b.box((pole_x - 0.35, ROAD_Y - 3.0, z - 0.03), (pole_x + 0.35, ROAD_Y - 2.3, z),
                  np.array([0.1, 0.3, 0.8]), SIGN)
        z += rng.uniform(20, 40)
    z = z0 + rng.uniform(0, 8)
    tree_x = kerb + sign * min(lay.sidewalk - 0.8, 1.6)
    while z < z1:                                   # trees along the sidewalk
        if rng.random() < 0.7:
            trunk = rng.uniform(2.2, 3.5)
            radius = rng.uniform(1.3, 2.6)
            base = ROAD_Y - lay.kerb_height
            b.cylinder(tree_x, z, rng.uniform(0.15, 0.28), trunk + radius, base,
                       np.array([0.35, 0.25, 0.15]), TRUNK)
            green = np.array([rng.uniform(0.1, 0.3), rng.uniform(0.35, 0.55),
                              rng.uniform(0.08, 0.2)])
            b.sphere((tree_x, base - trunk - 0.8 * radius, z), radius, green, FOLIAGE)
        z += rng.uniform(9, 18)
    if lay.parking > 0:                             # parked cars in the parking strip
        z = z0 + rng.uniform(0, 6)
        car_x = kerb - sign * lay.parking / 2
        while z < z1:
            if rng.random() < 0.65:
                _car(b, rng, car_x + rng.uniform(-0.15, 0.15), z, 0.0)
            z += rng.uniform(5.5, 9)


def build_scene(rng: np.random.Generator, z_start: float, z_end: float,
                duration: float) -> Scene:
    """Lay out a random street from z_start to z_end with traffic for duration seconds."""
    lay = Layout(lane_width=rng.uniform(3.0, 3.7), lanes_right=int(rng.integers(1, 3)),
                 lanes_left=int(rng.integers(1, 3)), parking=rng.uniform(2.1, 2.6),
                 sidewalk=rng.uniform(2.5, 5.0), setback=rng.uniform(0.0, 4.0),
                 kerb_height=rng.uniform(0.1, 0.18))
    b = _Builder()
    for sign in (1, -1):
        _side(b, rng, lay, sign, z_start, z_end)
    # Moving traffic: oncoming lanes drive towards the camera, other ego-direction lanes away.
    for lane in range(lay.lanes_left):
        x = lay.centre - (lane + 0.5) * lay.lane_width
        speed = -rng.uniform(7, 14)
        z = z_start + rng.uniform(0, 20)
        while z < z_end - speed * duration:
            _car(b, rng, x + rng.uniform(-0.3, 0.3), z, speed)
            z += rng.uniform(15, 45)
    for lane in range(1, lay.lanes_right):
        x = lane * lay.lane_width
        speed = rng.uniform(6, 15)
        z = z_start - speed * duration + rng.uniform(0, 20)
        while z < z_end:
            _car(b, rng, x + rng.uniform(-0.3, 0.3), z, speed)
            z += rng.uniform(15, 45)
    sun = sun_direction(rng.uniform(-1.2, 1.2), rng.uniform(0.5, 1.1))
    return b.scene(lay, sun, int(rng.integers(2**31)))
