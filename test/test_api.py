"""The Python API without ROS, the backend table, the frame pipeline and the data-source table."""

import copy

import numpy as np
import pytest

import mono_depth_ros
from mono_depth_ros.core.config import ConfigError
from mono_depth_ros.datasets.sources import build_dataset, check_source, DATA_SOURCES
from mono_depth_ros.inference.backends import BACKENDS, get_backend, load_estimator
from mono_depth_ros.inference.estimator import DepthEstimator

PUBLIC = ('build_model', 'load_model_config', 'create_estimator', 'load_estimator',
          'generate_depth_map', 'compute_depth_metrics')


def test_public_names_resolve_to_their_layers():
    from mono_depth_ros.core.metrics import compute_depth_metrics
    from mono_depth_ros.datasets.kitti.ground_truth import generate_depth_map
    from mono_depth_ros.inference import backends
    from mono_depth_ros.networks import build

    assert set(PUBLIC) <= set(mono_depth_ros.__all__) and set(PUBLIC) <= set(dir(mono_depth_ros))
    assert mono_depth_ros.build_model is build.build_model
    assert mono_depth_ros.load_model_config is build.load_model_config
    assert mono_depth_ros.create_estimator is backends.create_estimator
    assert mono_depth_ros.load_estimator is backends.load_estimator
    assert mono_depth_ros.generate_depth_map is generate_depth_map
    assert mono_depth_ros.compute_depth_metrics is compute_depth_metrics
    with pytest.raises(AttributeError, match='no attribute'):
        mono_depth_ros.DepthEstimatorr  # noqa: B018 - a typo is an AttributeError


def test_readme_example_runs(tiny_checkpoint):
    from mono_depth_ros import load_estimator

    estimator = load_estimator(tiny_checkpoint, backend='fast', device='cpu')
    image = np.random.default_rng(0).integers(0, 256, (120, 400, 3), dtype=np.uint8)
    prediction = estimator.predict(image, fx=240.0)
    assert prediction.depth.shape == (120, 400) and prediction.confidence.shape == (120, 400)
    prediction, cloud = estimator.predict_points(image, 240.0, 240.0, 199.5, 59.5, stride=4)
    assert cloud.shape == (30, 100, 3)
    assert isinstance(estimator, DepthEstimator) and estimator.name == 'msfusion_r18'


def test_load_estimator_equals_building_it_by_hand(tiny_checkpoint):
    from mono_depth_ros.inference.backends import create_estimator
    from mono_depth_ros.networks.checkpoint import load_model

    image = np.random.default_rng(1).integers(0, 256, (96, 320, 3), dtype=np.uint8)
    by_hand = create_estimator(load_model(tiny_checkpoint), 'torch', device='cpu')
    want = by_hand.predict(image, fx=200.0)
    for backend in ('torch', 'fast'):
        have = load_estimator(tiny_checkpoint, backend, device='cpu').predict(image, fx=200.0)
        np.testing.assert_allclose(have.depth, want.depth, rtol=1e-4)
        np.testing.assert_allclose(have.confidence, want.confidence, atol=1e-4)


def test_load_estimator_bad_inputs_are_named(tiny_checkpoint, tmp_path):
    from mono_depth_ros.networks.checkpoint import CheckpointError

    with pytest.raises(CheckpointError, match='checkpoint not found: .*missing.pt'):
        load_estimator(tmp_path / 'missing.pt')
    with pytest.raises(ValueError, match="backend 'onnx' runs an .onnx file"):
        load_estimator(tiny_checkpoint, 'onnx')
    with pytest.raises(ValueError, match="runs a .pt checkpoint.*use backend 'onnx'"):
        load_estimator(tmp_path / 'model.onnx', 'torch')
    with pytest.raises(ValueError, match=r"backend must be one of \('torch', 'fast', 'onnx'\)"):
        load_estimator(tiny_checkpoint, 'tensorflow')
    with pytest.raises(ValueError, match='compile applies to the fast backend only'):
        load_estimator(tiny_checkpoint, 'torch', compile=True)


def test_backend_table_entries_build_depth_estimators():
    assert tuple(BACKENDS) == ('torch', 'fast', 'onnx')
    for name, spec in BACKENDS.items():
        assert spec.name == name and get_backend(name) is spec
        assert issubclass(spec.estimator_class(), DepthEstimator)
    assert [n for n, s in BACKENDS.items() if s.source == 'onnx'] == ['onnx']
    assert [n for n, s in BACKENDS.items() if s.compiles] == ['fast']


def test_an_estimator_must_implement_run():
    class Incomplete(DepthEstimator):
        pass

    with pytest.raises(TypeError, match='_run'):
        Incomplete()


def test_data_source_table(synth_world):
    assert list(DATA_SOURCES) == ['kitti', 'bag_gt', 'lidar_frames']
    assert DATA_SOURCES['kitti'].gt[0] == 'velodyne'
    assert DATA_SOURCES['bag_gt'].gt == DATA_SOURCES['lidar_frames'].gt == ('lidar',)
    dataset = build_dataset('kitti', synth_world, synth_world / 'splits' / 'train_files.txt',
                            input_size=(64, 192), crop=None, augment=False, seed=0,
                            gt='velodyne')
    item = dataset[0]
    assert tuple(item['image'].shape) == (3, 64, 192) and float(item['depth'].max()) > 0
    with pytest.raises(ValueError, match=r"data.source must be one of \['kitti', 'bag_gt', "
                                         r"'lidar_frames'\], got 'kiti'"):
        check_source('kiti', 'velodyne')
    with pytest.raises(ValueError, match=r"data.gt must be one of \['velodyne', 'improved', "
                                         r"'dense'\] for source 'kitti', got 'stereo'"):
        check_source('kitti', 'stereo')


def test_training_config_names_a_data_source(repo_root):
    from mono_depth_ros.training.config import load_experiment

    config = repo_root / 'config/train/synth_msfusion_r18.yaml'
    experiment = load_experiment(config)
    assert (experiment['data']['source'], experiment['data']['gt']) == ('kitti', 'velodyne')
    assert load_experiment(config, ['data.gt=improved'])['data']['gt'] == 'improved'
    with pytest.raises(ConfigError, match="data.source must be one of .*got 'lidar_bag'"):
        load_experiment(config, ['data.source=lidar_bag'])
    assert load_experiment(config, ['data.gt=dense'])['data']['gt'] == 'dense'
    with pytest.raises(ConfigError, match="data.gt must be one of .*got 'stereo'"):
        load_experiment(config, ['data.gt=stereo'])


def frame_messages(rgb: np.ndarray, intrinsics: tuple[float, float, float, float]):
    """An rgb8 Image and its CameraInfo with a stamp and optical frame."""
    from std_msgs.msg import Header

    from mono_depth_ros.ros.conversions import numpy_to_image
    from mono_depth_ros.ros.depth_messages import intrinsics_camera_info
    from mono_depth_ros.ros.stamps import set_stamp

    header = Header(frame_id='cam_optical_frame')
    set_stamp(header.stamp, 1_317_384_506_123_456_789)
    return numpy_to_image(rgb, 'rgb8', header), intrinsics_camera_info(intrinsics,
                                                                       rgb.shape[:2], header)


def test_frame_pipeline_without_dds(tiny_checkpoint):
    pytest.importorskip('sensor_msgs')
    from mono_depth_ros.inference.outputs import OutputSettings
    from mono_depth_ros.ros.conversions import ConversionError, image_to_numpy
    from mono_depth_ros.ros.pipeline import FramePipeline
    from mono_depth_ros.ros.stamps import header_ns

    estimator = load_estimator(tiny_checkpoint, 'torch', device='cpu')
    settings = OutputSettings(min_depth=0.1, max_depth=80.0, cloud_stride=2)
    pipeline = FramePipeline(estimator, settings)
    rgb = np.random.default_rng(2).integers(0, 256, (60, 200, 3), dtype=np.uint8)
    intrinsics = (150.0, 150.0, 90.25, 31.5)
    image, info = frame_messages(rgb, intrinsics)
    result = pipeline.process(image, info, {'depth', 'points'})
    out = result.messages
    assert result.beyond_fraction == 0.0  # the tiny model has no beyond-range head
    assert set(out) == {'depth', 'points'}
    for message in out.values():
        assert header_ns(message) == 1_317_384_506_123_456_789
        assert message.header.frame_id == 'cam_optical_frame'
    want = estimator.predict(rgb, fx=intrinsics[0]).depth
    np.testing.assert_allclose(image_to_numpy(out['depth']), want, rtol=1e-5)
    assert (out['points'].height, out['points'].width) == (30, 100)
    everything = pipeline.process(image, info, {'depth', 'depth/camera_info', 'depth/confidence',
                                                'depth/colorized', 'points'}).messages
    assert set(everything) == {'depth', 'depth/camera_info', 'depth/confidence',
                               'depth/colorized', 'points'}
    with pytest.raises(ValueError, match='no CameraInfo .* fallback_intrinsics is not set'):
        pipeline.process(image, None, {'depth/camera_info'})  # no silent guess
    pipeline.fallback = 'kitti'  # a guess stated: KITTI's intrinsics scaled to the image
    fallback = pipeline.process(image, None, {'depth/camera_info'}).messages
    assert fallback['depth/camera_info'].k[0] == pytest.approx(721.5377 * 200 / 1242)
    pipeline.fallback = ''
    bad = copy.deepcopy(info)
    bad.k = [0.0] * 9
    with pytest.raises(ConversionError, match='K'):
        pipeline.process(image, bad, {'depth'})


def test_eval_backend_option_runs_the_fast_backend(tiny_checkpoint, tmp_path):
    import json
    from pathlib import Path

    from mono_depth_ros.tools import evaluate

    sample = Path(__file__).resolve().parent / 'data' / 'kitti_sample'
    split = tmp_path / 'split.txt'
    split.write_text('2011_09_26/2011_09_26_drive_0001_sync 0000000000 l\n')
    reports = {}
    for backend in ('torch', 'fast'):
        out = tmp_path / backend
        assert evaluate.main(['--data-path', str(sample), '--split-file', str(split),
                              '--checkpoint', tiny_checkpoint, '--backend', backend,
                              '--device', 'cpu', '--montage-frames', '0',
                              '--output-dir', str(out)]) == 0
        reports[backend] = json.loads((out / 'metrics.json').read_text())
    assert reports['fast']['abs_rel'] == pytest.approx(reports['torch']['abs_rel'], rel=1e-4)
