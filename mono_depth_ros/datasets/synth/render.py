"""Shade camera hits into an RGB image with true depth, and turn lidar hits into a scan."""

import numpy as np

from mono_depth_ros.datasets.synth import scene as sc
from mono_depth_ros.datasets.synth.raycast import (
    BOX,
    box_distance,
    CameraGrid,
    CYLINDER,
    GROUND,
    Hits,
    LIDAR_MIN_RANGE,
    LidarGrid,
    NONE,
    SPHERE,
    trace,
)

SKY_TOP = np.array([0.32, 0.5, 0.82], dtype=np.float32)
SKY_HORIZON = np.array([0.78, 0.85, 0.93], dtype=np.float32)
HAZE_DISTANCE = 500.0   # metres over which colours fade 63 % towards the horizon colour


def _hash(ix: np.ndarray, iy: np.ndarray, seed: int) -> np.ndarray:
    """Deterministic pseudo-random value in [0, 1) for every integer lattice point."""
    h = (ix.astype(np.int64) * 73856093) ^ (iy.astype(np.int64) * 19349663) ^ (seed * 83492791)
    h = (h ^ (h >> 13)) * 1274126177
    h = h ^ (h >> 16)
    return ((h & 0xFFFFFF).astype(np.float32)) / np.float32(0x1000000)


def value_noise(a: np.ndarray, b: np.ndarray, scale: float, seed: int) -> np.ndarray:
    """Smooth value noise in [0, 1) of two surface coordinates (metres) at a length scale."""
    a, b = a / scale, b / scale
    ia, ib = np.floor(a), np.floor(b)
    fa, fb = a - ia, b - ib
    fa, fb = fa * fa * (3 - 2 * fa), fb * fb * (3 - 2 * fb)
    top = _hash(ia, ib, seed) * (1 - fa) + _hash(ia + 1, ib, seed) * fa
    bottom = _hash(ia, ib + 1, seed) * (1 - fa) + _hash(ia + 1, ib + 1, seed) * fa
    return (top * (1 - fb) + bottom * fb).astype(np.float32)


def _markings(x: np.ndarray, z: np.ndarray, lay: sc.Layout) -> tuple[np.ndarray, np.ndarray]:
    """Masks (lane marking, on the road) of ground points at world (x, z)."""
    road = (x > lay.road_left) & (x < lay.road_right)
    half = 0.06
    dashes = (z % 9.0) < 3.0
    lines = np.abs(x - lay.centre) < half
    for lane in range(1, lay.lanes_right):
        lines |= (np.abs(x - (lay.centre + lane * lay.lane_width)) < half) & dashes
    for lane in range(1, lay.lanes_left):
        lines |= (np.abs(x - (lay.centre - lane * lay.lane_width)) < half) & dashes
    lines |= np.abs(x - (lay.road_right - lay.parking - 0.2)) < half
    lines |= np.abs(x - (lay.road_left + lay.parking + 0.2)) < half
    return lines, road


def _ground_reflectance(x: np.ndarray, z: np.ndarray, lay: sc.Layout) -> np.ndarray:
    """Lidar reflectance of ground points: bright markings, asphalt, darker verge."""
    lines, road = _markings(x, z, lay)
    return np.where(lines, 0.7, np.where(road, sc.REFLECTANCE[sc.GROUND], 0.15)).astype(
        np.float32)


def _ground(p: np.ndarray, lay: sc.Layout, seed: int) -> np.ndarray:
    """Albedo of ground points: asphalt, lane markings, verge."""
    x, z = p[:, 0], p[:, 2]
    grain = value_noise(x, z, 0.15, seed) * 0.5 + value_noise(x, z, 2.0, seed + 1) * 0.5
    lines, road = _markings(x, z, lay)
    colour = np.empty((len(p), 3), np.float32)
    colour[:] = (0.26 + 0.08 * grain)[:, None]
    verge = ~road
    colour[verge] = np.stack([0.3 + 0.1 * grain, 0.42 + 0.1 * grain, 0.18 + 0.05 * grain],
                             axis=-1)[verge]
    colour[lines] = (0.85 + 0.1 * grain[lines])[:, None]
    return colour


def _windows(along: np.ndarray, height: np.ndarray) -> np.ndarray:
    """Mask of facade points that lie in a window (3 m floors, 2.6 m window pitch)."""
    floor_pos = height % 3.0
    col_pos = along % 2.6
    return (floor_pos > 0.9) & (floor_pos < 2.4) & (col_pos > 0.6) & (col_pos < 1.9) & (
        height > 1.0)


def _box_albedo(scene: sc.Scene, index: np.ndarray, p: np.ndarray, normal: np.ndarray,
                lo: np.ndarray, seed: int) -> np.ndarray:
    """Albedo of box points: facades with windows, kerbs, paving, car paint, glass and lights."""
    colour = scene.box_colour[index].copy()
    material = scene.box_material[index]
    height = sc.ROAD_Y - p[:, 1]
    side_x = np.abs(normal[:, 0]) > 0.5
    side_z = np.abs(normal[:, 2]) > 0.5
    along = np.where(side_x, p[:, 2] - lo[:, 2], p[:, 0] - lo[:, 0])
    grain = value_noise(along, height, 0.3, seed + 2)
    colour *= (0.85 + 0.3 * grain)[:, None]
    facade = (material == sc.BUILDING) & (side_x | side_z)
    win = facade & _windows(along, height)
    colour[win] = np.array([0.12, 0.15, 0.2]) + 0.15 * grain[win, None]
    roof = (material == sc.BUILDING) & (normal[:, 1] < -0.5)
    colour[roof] *= 0.6
    kerb = (material == sc.SIDEWALK) & (normal[:, 1] > -0.5)
    colour[kerb] = 0.75
    top = (material == sc.SIDEWALK) & ~kerb
    tiles = ((p[top, 0] % 0.6) < 0.04) | ((p[top, 2] % 0.6) < 0.04)
    colour[np.flatnonzero(top)[tiles]] *= 0.7
    glass = (material == sc.CAR_CABIN) & (normal[:, 1] > -0.5)
    colour[glass] = np.array([0.08, 0.1, 0.13]) + 0.1 * grain[glass, None]
    lamp_band = (material == sc.CAR_BODY) & side_z & (height > 0.6) & (height < 0.8)
    width = np.abs(p[:, 0] - lo[:, 0])
    lamp = lamp_band & ((width < 0.35) | (width > scene.box_hi[index, 0] - lo[:, 0] - 0.35))
    rear = (normal[:, 2] < 0) ^ (scene.box_speed[index] < 0)   # oncoming cars face -z
    colour[lamp & rear] = np.array([0.8, 0.05, 0.05])
    colour[lamp & ~rear] = np.array([0.95, 0.95, 0.8])
    return colour


def _box_normals(p: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Outward normal of the box face nearest to each hit point."""
    gaps = np.concatenate([np.abs(p - lo), np.abs(p - hi)], axis=1)
    face = gaps.argmin(axis=1)
    normal = np.zeros_like(p)
    normal[np.arange(len(p)), face % 3] = np.where(face < 3, -1.0, 1.0)
    return normal


def _surface(scene: sc.Scene, hits: Hits, p: np.ndarray, time: float,
             seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Albedo and normal of every hit point (kind != NONE)."""
    kind = hits.kind[hits.kind != NONE]
    index = hits.index[hits.kind != NONE]
    albedo = np.zeros((len(p), 3), np.float32)
    normal = np.zeros((len(p), 3), np.float64)
    m = kind == GROUND
    normal[m] = (0, -1, 0)
    albedo[m] = _ground(p[m], scene.layout, seed)
    m = kind == BOX
    box_lo, box_hi = scene.boxes_at(time)
    lo, hi = box_lo[index[m]], box_hi[index[m]]
    normal[m] = _box_normals(p[m], lo, hi)
    albedo[m] = _box_albedo(scene, index[m], p[m], normal[m], lo, seed)
    m = kind == CYLINDER
    cyl = scene.cyl[index[m]]
    radial = np.stack([p[m, 0] - cyl[:, 0], np.zeros(m.sum()), p[m, 2] - cyl[:, 1]], axis=-1)
    normal[m] = radial / cyl[:, 2:3]
    grain = value_noise(np.arctan2(radial[:, 0], radial[:, 2]) * cyl[:, 2], p[m, 1], 0.1, seed)
    albedo[m] = scene.cyl_colour[index[m]] * (0.8 + 0.4 * grain)[:, None]
    m = kind == SPHERE
    sph = scene.sph[index[m]]
    normal[m] = (p[m] - sph[:, :3]) / sph[:, 3:4]
    leaves = value_noise(p[m, 0] + p[m, 2], p[m, 1], 0.25, seed + 3)
    albedo[m] = scene.sph_colour[index[m]] * (0.55 + 0.9 * leaves)[:, None]
    return albedo, normal


def _reflectance(scene: sc.Scene, kind: np.ndarray, index: np.ndarray,
                 p: np.ndarray) -> np.ndarray:
    """Lidar reflectance in [0, 1] of hit points, from their material."""
    reflect = np.zeros(len(p), np.float32)
    m = kind == GROUND
    reflect[m] = _ground_reflectance(p[m, 0], p[m, 2], scene.layout)
    for hit_kind, material in ((BOX, scene.box_material), (CYLINDER, scene.cyl_material),
                               (SPHERE, scene.sph_material)):
        m = kind == hit_kind
        reflect[m] = sc.REFLECTANCE[material[index[m]]]
    return reflect


def _shadowed(scene: sc.Scene, p: np.ndarray, normal: np.ndarray, time: float) -> np.ndarray:
    """True where the ray from a point towards the sun hits a box or a tree canopy."""
    sun = (scene.sun / np.linalg.norm(scene.sun)).astype(np.float32)
    start = p + normal * 1e-3
    order = np.argsort(start[:, 2], kind='stable')
    start = start[order]
    z_sorted = start[:, 2]
    inside = np.zeros(len(p), bool)
    inv = np.float32(1) / sun
    drift = sun[[0, 2]] / -sun[1]               # horizontal shift per metre of height
    box_lo, box_hi = scene.boxes_at(time)
    spans = [(lo, hi, None) for lo, hi in zip(box_lo, box_hi, strict=True)]
    spans += [(s[:3] - s[3], s[:3] + s[3], s) for s in scene.sph]
    for lo, hi, sph in spans:
        # Points that can see the object towards the sun lie within its footprint swept back
        # against the sun by the object's height above the road.
        shift = -drift * (sc.ROAD_Y - lo[1])
        x0, x1 = lo[0] + min(shift[0], 0), hi[0] + max(shift[0], 0)
        z0, z1 = lo[2] + min(shift[1], 0), hi[2] + max(shift[1], 0)
        i0, i1 = np.searchsorted(z_sorted, [z0, z1])
        if i1 <= i0:
            continue
        block = start[i0:i1]
        near = (block[:, 0] > x0) & (block[:, 0] < x1) & ~inside[i0:i1]
        if not near.any():
            continue
        rel = block[near]
        if sph is None:
            hit = np.isfinite(box_distance(inv, (lo - rel).T, (hi - rel).T))
        else:
            centre = (sph[:3] - rel).astype(np.float32)
            b = centre @ sun
            hit = (b > 0) & (b * b - ((centre * centre).sum(axis=1) - sph[3] ** 2) >= 0)
        inside[i0 + np.flatnonzero(near)[hit]] = True
    shadow = np.zeros(len(p), bool)
    shadow[order] = inside
    return shadow


def _varied_albedo(albedo: np.ndarray, p: np.ndarray, normal: np.ndarray, kind: np.ndarray,
                   look, seed: int) -> np.ndarray:
    """Albedo of a varied look: road brightness and two octaves of texture on every surface."""
    flat = np.abs(normal[:, 1]) > 0.5
    a = np.where(flat, p[:, 0], p[:, 0] + p[:, 2]).astype(np.float32)
    b = np.where(flat, p[:, 2], p[:, 1]).astype(np.float32)
    texture = 0.6 * value_noise(a, b, look.texture_scale, seed + 5) + 0.4 * value_noise(
        a, b, look.texture_scale * 0.17, seed + 6)
    albedo = albedo * (1 + 2 * look.texture_contrast * (texture - 0.5))[:, None]
    ground = kind == GROUND
    albedo[ground] *= look.asphalt / 0.3
    return np.clip(albedo, 0, 1)


def _sky(grid: CameraGrid, look, seed: int) -> np.ndarray:
    """H×W×3 sky colour of every pixel: gradient by elevation, clouds in a varied look."""
    elevation = np.clip(-grid.dirs[1] / np.hypot(grid.dirs[1], 1.0) * 3.0, 0, 1)
    top = SKY_TOP if look is None else look.sky_top
    horizon = SKY_HORIZON if look is None else look.sky_horizon
    sky = horizon + (top - horizon) * elevation[..., None]
    if look is not None and look.clouds > 0:
        x = grid.dirs[0] / np.maximum(-grid.dirs[1], 0.05)   # a cloud layer overhead
        z = grid.dirs[2] / np.maximum(-grid.dirs[1], 0.05)
        cloud = value_noise(x, z, 0.8, seed + 7) * 0.6 + value_noise(x, z, 0.2, seed + 8) * 0.4
        sky = sky + look.clouds * (cloud - 0.3)[..., None] * elevation[..., None]
    return sky.astype(np.float32)


def render_camera(scene: sc.Scene, grid: CameraGrid, time: float,
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Return (RGB uint8 H×W×3, depth float32 H×W camera z in metres, 0 = sky)."""
    look = scene.look
    hits = trace(grid, scene, time)
    hit = hits.kind != NONE
    depth = np.where(hit, hits.t, 0).astype(np.float32)
    p = grid.origin + hits.t[hit, None].astype(np.float64) * grid.dirs[:, hit].T
    albedo, normal = _surface(scene, hits, p, time, scene.texture_seed)
    if look is not None:
        albedo = _varied_albedo(albedo, p, normal, hits.kind[hit], look, scene.texture_seed)
    sun = scene.sun / np.linalg.norm(scene.sun)
    lambert = np.clip(normal @ sun, 0, None)
    lambert[_shadowed(scene, p, normal, time)] = 0
    sky_light = 0.5 - 0.5 * normal[:, 1]                       # more ambient facing up
    if look is None:
        light = 0.28 + 0.14 * sky_light + 0.75 * lambert
    else:
        light = look.ambient + 0.14 * sky_light + look.sun_strength * lambert
    colour = albedo * light[:, None].astype(np.float32)
    image = _sky(grid, look, scene.texture_seed)
    haze = 1 - np.exp(-hits.t[hit] / (HAZE_DISTANCE if look is None else look.haze_distance))
    horizon = SKY_HORIZON if look is None else np.minimum(look.sky_horizon, 1)
    colour += (horizon - colour) * haze[:, None]
    image[hit] = colour
    if look is not None:
        image = image * look.exposure * look.white_balance
    image += rng.normal(0, 0.012, image.shape).astype(np.float32)
    return (np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8), depth


def scan_lidar(scene: sc.Scene, grid: LidarGrid, time: float) -> np.ndarray:
    """Return the N×4 float32 scan (x, y, z, reflectance) in the lidar's own frame."""
    hits = trace(grid, scene, time)
    hit = (hits.kind != NONE) & (hits.t >= LIDAR_MIN_RANGE)
    t = hits.t[hit].astype(np.float64)
    p = grid.origin + t[:, None] * grid.dirs[:, hit].T
    reflect = _reflectance(scene, hits.kind[hit], hits.index[hit], p)
    points = (p - grid.origin) @ grid.to_sensor.T
    return np.concatenate([points, reflect[:, None]], axis=1).astype(np.float32)

