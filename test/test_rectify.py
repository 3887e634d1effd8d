"""Rectification of raw camera images: calibration checks, remap tables, and a slanted wall that
stays planar in the node's cloud only when the distorted image is rectified first."""

import cv2
import numpy as np
import pytest

from mono_depth_ros.core.rectify import Calibration, Rectifier
from mono_depth_ros.inference.estimator import check_input_size, DepthEstimator, Prediction

H, W, F, CX, CY = 120, 160, 100.0, 80.0, 60.0
K = np.array([[F, 0, CX], [0, F, CY], [0, 0, 1]])
P = np.hstack([K, np.zeros((3, 1))])
D = (0.25, 0.05, 0.0, 0.0, 0.0)            # strong pincushion distortion
NORMAL, OFFSET = np.array([0.6, 0.3, 1.0]), 4.0   # the wall: NORMAL · X = OFFSET (metres)
Z_LOW, Z_SPAN = 2.0, 10.0                  # depth coded in red: 0 → 2 m, 255 → 12 m


def calib(d=D, model='plumb_bob', p=P) -> Calibration:
    """A calibration of the test camera."""
    return Calibration.from_arrays((H, W), K, d, np.eye(3), p, model)


def wall_depth(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Depth of the wall seen at rectified pixels (u, v)."""
    rays = np.stack([(u - CX) / F, (v - CY) / F, np.ones_like(u)], axis=-1)
    return OFFSET / (rays @ NORMAL)


def raw_wall_image() -> np.ndarray:
    """What the distorted camera sees: each raw pixel shows the depth of the ray it receives."""
    v, u = np.mgrid[0:H, 0:W].astype(np.float64)
    raw = np.stack([u.ravel(), v.ravel()], axis=-1)[:, None, :]
    rect = cv2.undistortPoints(raw, K, np.array(D), P=K)[:, 0, :]
    z = wall_depth(rect[:, 0], rect[:, 1]).reshape(H, W)
    red = np.clip(np.round((z - Z_LOW) / Z_SPAN * 255), 0, 255).astype(np.uint8)
    return np.stack([red, np.zeros_like(red), np.zeros_like(red)], axis=-1)


class RedDepth(DepthEstimator):
    """A backend that reads depth from the red channel (the test's code for the wall)."""

    def __init__(self) -> None:
        self.device = 'cpu'
        self.input_size = check_input_size((H, W))
        self.canonical_focal = F
        self.has_confidence = False
        self.config = {'name': 'red_depth'}

    def _run(self, images, scales, confidence, points):
        return [Prediction((Z_LOW + image[..., 0].astype(np.float32) / 255 * Z_SPAN) * scale,
                           None) for image, scale in zip(images, scales, strict=True)], None


def plane_residual(points: np.ndarray) -> float:
    """RMS distance (metres) of the finite points from the wall."""
    pts = points.reshape(-1, 3)
    pts = pts[np.all(np.isfinite(pts), axis=1)]
    assert len(pts) > 1000
    return float(np.sqrt(np.mean(((pts @ NORMAL - OFFSET) / np.linalg.norm(NORMAL)) ** 2)))


def test_calibration_checks_name_the_problem():
    with pytest.raises(ValueError, match="distortion model 'kannala' cannot be rectified"):
        calib(model='kannala').check()
    with pytest.raises(ValueError, match='equidistant takes 4 distortion coefficients, got 5'):
        calib(model='equidistant').check()
    with pytest.raises(ValueError, match='not a camera'):
        Calibration.from_arrays((H, W), np.zeros(9), D, np.eye(3), np.zeros(12),
                                'plumb_bob').check()
    assert calib().is_distorted() and not calib(d=(0.0,) * 5).is_distorted()
    assert calib(p=np.zeros(12)).rectified_intrinsics() == (F, F, CX, CY)


def test_undistorted_calibration_leaves_the_image_alone_and_tables_are_cached():
    image = np.random.default_rng(0).integers(0, 255, (H, W, 3), dtype=np.uint8)
    rectifier = Rectifier()
    out, valid = rectifier.rectify(image, calib(d=(0.0,) * 5))
    assert np.array_equal(out, image) and valid.all()
    rectifier.rectify(image, calib(d=(0.0,) * 5))
    assert rectifier.computed == 1
    with pytest.raises(ValueError, match='image size 80x60 disagrees with the calibration'):
        rectifier.rectify(image[:60, :80], calib())


def test_rectified_raw_image_matches_the_ideal_camera():
    out, valid = Rectifier().rectify(raw_wall_image(), calib())
    v, u = np.mgrid[0:H, 0:W].astype(np.float64)
    expected = (wall_depth(u, v) - Z_LOW) / Z_SPAN * 255
    error = np.abs(out[..., 0].astype(np.float64) - expected)[valid]
    assert not valid.all() and valid.mean() > 0.7   # pincushion: the corners see nothing
    assert np.percentile(error, 99) < 2.0           # red levels (1 level = 3.9 cm)


def test_equidistant_model_rectifies():
    d = (0.1, -0.05, 0.0, 0.0)
    out, valid = Rectifier().rectify(np.full((H, W, 3), 200, np.uint8),
                                     calib(d=d, model='equidistant'))
    assert valid.mean() > 0.5 and (out[valid] > 150).all()


@pytest.mark.parametrize('mode', ['auto', 'off'])
def test_wall_stays_planar_in_the_cloud_only_when_rectified(mode):
    pytest.importorskip('sensor_msgs')
    from sensor_msgs.msg import CameraInfo
    from std_msgs.msg import Header

    from mono_depth_ros.inference.outputs import OutputSettings
    from mono_depth_ros.ros.conversions import (
        image_to_numpy,
        numpy_to_image,
        pointcloud2_to_array,
        split_xyz_rgb,
    )
    from mono_depth_ros.ros.pipeline import FramePipeline

    header = Header(frame_id='cam_optical')
    info = CameraInfo(header=header, height=H, width=W, distortion_model='plumb_bob')
    info.k, info.d, info.r, info.p = K.ravel(), list(D), np.eye(3).ravel(), P.ravel()
    settings = OutputSettings(min_depth=0.1, max_depth=80.0, cloud_stride=1, max_range=0.0)
    pipeline = FramePipeline(RedDepth(), settings, rectify=mode)
    image = numpy_to_image(raw_wall_image(), 'rgb8', header)
    result = pipeline.process(image, info, {'depth', 'depth/camera_info', 'points'})
    points, _ = split_xyz_rgb(pointcloud2_to_array(result.messages['points']))
    depth = image_to_numpy(result.messages['depth'])
    residual = plane_residual(points)
    if mode == 'auto':
        assert residual < 0.03 and not result.unrectified
        assert np.isnan(depth[0, 0]) and np.isnan(points.reshape(H, W, 3)[0, 0]).all()
        depth_info = result.messages['depth/camera_info']
        assert not np.any(depth_info.d) and np.allclose(depth_info.k, P[:, :3].ravel())
        pipeline.process(image, info, {'depth'})
        assert pipeline.rectifier.computed == 1
    else:
        assert residual > 0.1 and result.unrectified
        assert np.isfinite(depth).all()
