"""Error breakdown on real lidar frames: regions from height above the road and greenness, worked
out by hand; region scores, per-frame scale and median-scaled abs_rel by hand."""

import numpy as np
import pytest

from mono_depth_ros.evaluation.breakdown import region_map, REGIONS, RegionScores, road_level

F, CX, CY = 100.0, 50.0, 40.0
P = np.array([[F, 0, CX, 0], [0, F, CY, 0], [0, 0, 1, 0]])


def pixel(point) -> tuple[int, int]:
    """KITTI pixel (row, col) of a camera-frame point: round(v) − 1, round(u) − 1."""
    x, y, z = point
    return int(round(F * y / z + CY)) - 1, int(round(F * x / z + CX)) - 1


def test_regions_from_height_above_the_road_and_greenness():
    # The road: 40 returns 5-24 m ahead at y = 1.65 (camera 1.65 m above it).
    road = [(0.5 * (i % 5) - 1, 1.65, 5.0 + 0.5 * i) for i in range(40)]
    car = (2.0, 0.65, 10.0)            # 1 m above the road: objects
    tall = (-3.0, -2.35, 20.0)         # 4 m above the road: buildings
    hedge = (4.0, 0.85, 8.0)           # 0.8 m above the road, green in the image: vegetation
    # Facade points 5 m up in the car's and the hedge's columns: theirs are the skyline rows.
    above = [(4.0, -3.35, 20.0), (10.0, -3.35, 20.0)]
    points = np.array([*road, car, tall, hedge, *above])
    image = np.full((80, 100, 3), 120, np.uint8)
    image[pixel(hedge)] = (40, 160, 40)
    assert road_level(points) == pytest.approx(1.65)
    labels = region_map(points, P, image)
    assert labels[pixel(car)] == REGIONS.index('objects')
    assert labels[pixel(hedge)] == REGIONS.index('vegetation')
    assert [labels[pixel(p)] for p in road] == [REGIONS.index('road')] * len(road)
    assert [labels[pixel(p)] for p in above] == [REGIONS.index('skyline')] * 2
    # The tall point is the topmost return of its column: skyline, not buildings.
    assert labels[pixel(tall)] == REGIONS.index('skyline')
    image[:] = 120
    under = np.array([*road, tall, (-3.0, -2.35 + 1.0, 20.0)])   # 3 m up: 5 rows lower
    labels = region_map(under, P, image)
    assert labels[pixel(under[-1])] == REGIONS.index('skyline')  # within 6 rows of the top
    far_below = np.array([*road, tall, (-3.0, -2.35 + 1.5, 20.0)])  # 2.5 m up: 7.5 rows lower
    labels = region_map(far_below, P, image)
    assert labels[pixel(far_below[-1])] == REGIONS.index('buildings')
    assert (labels >= 0).sum() == len(np.unique([pixel(p) for p in far_below], axis=0))


def test_too_few_returns_ahead_is_an_error():
    with pytest.raises(ValueError, match='cannot find the road level'):
        road_level(np.array([[0.0, 1.65, 10.0]] * 5))


def test_region_scores_by_hand():
    scores = RegionScores()
    labels = np.array([0, 0, 1, 3])
    gt = np.array([10.0, 20.0, 5.0, 8.0])
    pred = np.array([12.0, 20.0, 10.0, 8.0])
    scores.add('frame', labels, gt, pred)
    report = scores.report()
    rows = {row['region']: row for row in report['regions']}
    assert rows['road']['abs_rel'] == pytest.approx((0.2 + 0.0) / 2)
    assert rows['road']['a1'] == 1.0
    assert rows['objects']['abs_rel'] == pytest.approx(1.0) and rows['objects']['a1'] == 0.0
    assert rows['objects']['bias'] == pytest.approx(2.0)
    assert rows['buildings']['pixels'] == 0
    # median gt (8 + 10) / 2 = 9, median pred (10 + 12) / 2 = 11: scale 9 / 11.
    assert report['median_scale'] == pytest.approx(9 / 11)
    expected = np.mean([abs(12 * 9 / 11 - 10) / 10, abs(20 * 9 / 11 - 20) / 20,
                        abs(10 * 9 / 11 - 5) / 5, abs(8 * 9 / 11 - 8) / 8])
    assert report['abs_rel_median_scaled'] == pytest.approx(expected)
