"""make demo's building blocks: model choice and cache key, scoring, counters, the summary."""

import argparse

import numpy as np
import pytest

pytest.importorskip('rclpy')
from std_msgs.msg import Header  # noqa: E402

from mono_depth_ros.bags.player import DriveRun, latency_stats  # noqa: E402
from mono_depth_ros.core import paths  # noqa: E402
from mono_depth_ros.core.paths import DEFAULT_MODEL  # noqa: E402
from mono_depth_ros.ros.conversions import depth_to_image  # noqa: E402
from mono_depth_ros.tools import demo  # noqa: E402


def args(**kwargs) -> argparse.Namespace:
    base = {'checkpoint': None, 'train_config': str(demo.TRAIN_CONFIG), 'train_override': []}
    return argparse.Namespace(**{**base, **kwargs})


def test_model_choice_order_given_then_default_model_then_cache(tmp_path, monkeypatch):
    shipped = tmp_path / 'models' / DEFAULT_MODEL
    monkeypatch.setattr(paths, 'default_model_candidates', lambda: [shipped])
    assert demo.get_model(args(checkpoint='x.pt'), tmp_path)[0] == 'x.pt'
    (tmp_path / 'models').mkdir()
    (tmp_path / 'models' / 'another.pt').write_bytes(b'')  # only the default model counts
    shipped.write_bytes(b'')
    assert demo.get_model(args(), tmp_path) == (str(shipped), 'the default model')
    shipped.unlink()
    key = demo.train_key(demo.TRAIN_CONFIG, [])
    run = tmp_path / f'train_{key}'
    run.mkdir()
    (run / 'step_00000120.pt').write_bytes(b'')
    (run / 'demo_checkpoint.txt').write_text(str(run / 'step_00000120.pt'))
    path, source = demo.get_model(args(), tmp_path)  # cached: no training run
    assert path == str(run / 'step_00000120.pt') and 'cached' in source


def test_training_cache_key_follows_config_and_overrides(tmp_path):
    config = tmp_path / 'c.yaml'
    config.write_text('a: 1\n')
    key = demo.train_key(config, [])
    assert key == demo.train_key(config, [])
    assert key != demo.train_key(config, ['train.iterations=400'])
    config.write_text('a: 2\n')
    assert key != demo.train_key(config, [])


def test_scoring_against_the_lidar_of_a_synthetic_drive(synth_world):
    drive = next((synth_world / '2011_09_26').glob('*_sync'))
    dense = sorted((drive / 'depth_dense' / 'image_02' / 'data').glob('*.npy'))
    stamps = [1000 + i for i in range(len(dense))]
    msgs = []
    for i in (0, 2):
        header = Header()
        header.stamp.sec, header.stamp.nanosec = divmod(stamps[i], 1_000_000_000)
        msgs.append(depth_to_image(np.load(dense[i]), header))
    perfect, per_frame = demo.evaluate(drive, msgs, stamps)
    assert [i for i, _ in per_frame] == [0, 2]
    # true depth vs its own lidar: only pixel-rounding at object edges differs
    assert perfect['abs_rel'] < 0.05 and perfect['a1'] > 0.95
    msgs = [depth_to_image(np.load(dense[0]) * 1.25, msgs[0].header)]
    scaled, _ = demo.evaluate(drive, msgs, stamps)
    assert scaled['abs_rel'] == pytest.approx(0.25, abs=0.04)
    # against the dense truth: the true depth (+inf for sky) is perfect; 1.25× is off by 25 %
    truth = [np.load(path) for path in dense]
    msgs = [depth_to_image(np.where(truth[0] > 0, truth[0], np.inf), msgs[0].header)]
    perfect = demo.evaluate_dense(drive, msgs, stamps)
    assert perfect['abs_rel'] == 0.0 and perfect['a1'] == 1.0
    assert (perfect['sky_near'], perfect['coverage']) == (0.0, 1.0)
    sky = truth[0] == 0
    near_sky = np.where(sky, 30.0, truth[0] * 1.25)  # every sky pixel at 30 m: in front
    scaled = demo.evaluate_dense(drive, [depth_to_image(near_sky, msgs[0].header)], stamps)
    assert scaled['abs_rel'] == pytest.approx(0.25, abs=0.005)  # 1.25 × 64+ m clips at 80 m
    assert (scaled['sky_near'], scaled['beyond_recall']) == (1.0, 0.0)


def test_drive_counters_exclude_the_warm_up_and_latency_percentiles():
    run = DriveRun(baseline={'received': '3', 'processed': '1'})
    run.diagnostics.append({'received': '27', 'processed': '9', 'dropped_busy': '12'})
    assert run.node_counters(('received', 'processed', 'dropped_busy', 'invalid')) == {
        'received': 24, 'processed': 8, 'dropped_busy': 12}
    stats = latency_stats([0.1, 0.2, 0.3, 0.4, 1.0])
    assert stats['p50_ms'] == pytest.approx(300.0) and stats['max_ms'] == pytest.approx(1000.0)


def test_summary_text_names_every_number():
    summary = {
        'model': 'step_120.pt', 'model_source': 'cached', 'device': 'cpu', 'frames_sent': 24,
        'image_size': [375, 1242], 'frames_processed': 8, 'frames_dropped': 12,
        'latency_ms': {'p50_ms': 300.0, 'p95_ms': 500.0, 'max_ms': 600.0},
        'node_latency_ms': {'p50_ms': 250.0, 'p95_ms': 450.0},
        'node_counters': {'received': 24, 'dropped_unmatched': 4},
        'accuracy': {'abs_rel': 0.15, 'rmse': 5.0, 'a1': 0.78}, 'frames_scored': 8,
        'accuracy_dense': {'abs_rel': 0.07, 'rmse': 3.5, 'a1': 0.94, 'sky_near': 0.012,
                           'beyond_recall': 0.97, 'coverage': 0.985},
        'bag_messages': 110, 'out_dir': 'demo_out', 'seconds': 42.0}
    text = demo.format_summary(summary)
    for part in ('processed    8', 'busy 12', 'CameraInfo late 4', 'not received 0',
                 'p50 300 ms', 'p95 500 ms', 'abs_rel 0.150', 'a1 0.780', '1242x375',
                 'abs_rel 0.070', 'a1 0.940   vs the dense truth', 'nearer than 60 m: 1.20 %',
                 'published +inf: 97.0 %', 'published finite: 98.5 %'):
        assert part in text, part


def test_the_cloud_view_draws_near_points_over_far_ones():
    size, focal = (60, 80), 40.0
    lift, back, pitch = 0.0, 0.0, 0.0  # the real camera's own view
    points = np.array([[0.0, 0.0, 10.0], [0.0, 0.0, 5.0], [2.0, 1.0, 8.0],
                       [np.nan, np.nan, np.nan], [0.0, 0.0, -3.0]], np.float32)
    colors = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [9, 9, 9], [9, 9, 9]], np.uint8)
    image = demo.render_cloud(points, colors, size, focal, (lift, back, pitch))
    cy, cx = round((size[0] - 1) / 2), round((size[1] - 1) / 2)
    assert image[cy, cx].tolist() == [0, 255, 0]  # the nearer of the two on the axis
    u = round(focal * 2.0 / 8.0 + (size[1] - 1) / 2)
    v = round(focal * 1.0 / 8.0 + (size[0] - 1) / 2)
    assert image[v, u].tolist() == [0, 0, 255]
    assert (image == 9).all(axis=-1).sum() == 0  # NaN and behind-the-camera points not drawn
    assert image[0, 0].tolist() == [40, 40, 40]
    lifted = demo.render_cloud(points, colors, size, focal, (2.0, 0.0, 0.0))
    assert lifted[cy, cx].tolist() == [40, 40, 40]  # seen from 2 m up, the points move down
    assert lifted[round(focal * 2.0 / 5.0 + (size[0] - 1) / 2), cx].tolist() == [0, 255, 0]
