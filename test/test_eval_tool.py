"""mono-depth-export-gt and mono-depth-eval on the sample frame and on the synthetic world."""

import csv
import json
from pathlib import Path
import shutil

import cv2
import numpy as np
import pytest

from mono_depth_ros import compute_depth_metrics, generate_depth_map
from mono_depth_ros.core.metrics import average_metrics, METRIC_NAMES
from mono_depth_ros.datasets.kitti import read_improved_gt, read_split
from mono_depth_ros.datasets.kitti.ground_truth import load_gt_npz
from mono_depth_ros.tools import evaluate, export_gt

SAMPLE = Path(__file__).resolve().parent / 'data' / 'kitti_sample'
SAMPLE_LINE = '2011_09_26/2011_09_26_drive_0001_sync 0 l'


def write_split(path: Path, lines: list[str]) -> Path:
    """Write a split file and return its path."""
    path.write_text(''.join(line + '\n' for line in lines))
    return path


def test_export_gt_matches_generate_depth_map_and_counts_skips(tmp_path, capsys):
    split = write_split(tmp_path / 'split.txt', [
        SAMPLE_LINE, '2011_09_26/2011_09_26_drive_0001_sync 7 l',
        '2011_09_26/2011_09_26_drive_0009_sync 0 l'])
    out = tmp_path / 'gt.npz'
    args = ['--data-path', str(SAMPLE), '--split-file', str(split), '--output', str(out)]
    assert export_gt.main(args) == 1
    err = capsys.readouterr().err
    assert 'velodyne_points/data/0000000007.bin' in err and '--skip-missing' in err
    assert export_gt.main([*args, '--skip-missing']) == 0
    assert 'exported 1 frames' in capsys.readouterr().out
    lines, depths, source = load_gt_npz(out)
    assert lines == [SAMPLE_LINE] and source == 'velodyne-x'
    calib, velo = SAMPLE / '2011_09_26', read_split(split)[0].velodyne_path(SAMPLE)
    np.testing.assert_array_equal(depths[0], generate_depth_map(calib, velo, vel_depth=True))
    assert export_gt.main([*args, '--skip-missing', '--camera-z']) == 0
    np.testing.assert_array_equal(load_gt_npz(out)[1][0],
                                  generate_depth_map(calib, velo, vel_depth=False))


def test_export_gt_errors(tmp_path, capsys):
    missing = write_split(tmp_path / 'missing.txt', ['2011_09_26/2011_09_26_drive_0009_sync 0 l'])
    args = ['--data-path', str(SAMPLE), '--split-file', str(missing), '--output',
            str(tmp_path / 'gt.npz'), '--skip-missing']
    assert export_gt.main(args) == 1
    assert 'all 1 frames of the split miss files' in capsys.readouterr().err
    bad = write_split(tmp_path / 'bad.txt', [SAMPLE_LINE, 'oops'])
    assert export_gt.main(['--data-path', str(SAMPLE), '--split-file', str(bad)]) == 1
    assert 'line 2' in capsys.readouterr().err
    (tmp_path / 'junk.npz').write_bytes(b'junk')
    with pytest.raises(ValueError, match='not a ground-truth file'):
        load_gt_npz(tmp_path / 'junk.npz')


def synthetic_predictions(world: Path, entries, size=(192, 640), seed=0) -> np.ndarray:
    """Blurred, rescaled true depth at a lower resolution: a plausible imperfect model."""
    rng = np.random.default_rng(seed)
    preds = []
    for entry in entries:
        dense = np.load(world / entry.folder / 'depth_dense' / 'image_02' / 'data' /
                        f'{entry.frame:010d}.npy')
        dense = cv2.GaussianBlur(np.where(dense > 0, dense, 80.0), (9, 9), 3)
        preds.append(cv2.resize(dense * rng.uniform(0.9, 1.1), size[::-1],
                                interpolation=cv2.INTER_AREA))
    return np.stack(preds).astype(np.float32)


def direct_metrics(world: Path, entries, preds: np.ndarray, improved: bool) -> list[dict]:
    """Score predictions frame by frame with the library functions only."""
    results = []
    for entry, pred in zip(entries, preds, strict=True):
        if improved:
            gt = read_improved_gt(entry.improved_gt_path(world))
        else:
            gt = generate_depth_map(entry.calib_dir(world), entry.velodyne_path(world),
                                    vel_depth=True)
        pred = cv2.resize(pred, gt.shape[::-1], interpolation=cv2.INTER_LINEAR)
        results.append(compute_depth_metrics(gt, pred, crop='garg'))
    return results


@pytest.mark.slow
def test_eval_pred_npz_on_synthetic_world_reproduces_direct_metrics(synth_world, tmp_path,
                                                                    capsys):
    splits = synth_world / 'splits'
    lines = [line for name in ('test', 'val', 'train')
             for line in (splits / f'{name}_files.txt').read_text().split('\n') if line]
    split = write_split(tmp_path / 'all.txt', lines[:4])
    entries = read_split(split)
    preds = synthetic_predictions(synth_world, entries)
    np.savez(tmp_path / 'pred.npz', pred=preds)
    out = tmp_path / 'eval'
    base = ['--data-path', str(synth_world), '--split-file', str(split), '--pred-npz',
            str(tmp_path / 'pred.npz'), '--montage-frames', '2']
    assert evaluate.main([*base, '--output-dir', str(out)]) == 0
    printed = capsys.readouterr().out
    report = json.loads((out / 'metrics.json').read_text())
    per_frame = direct_metrics(synth_world, entries, preds, improved=False)
    expected = average_metrics(per_frame)
    for name in METRIC_NAMES:
        assert report[name] == pytest.approx(expected[name], rel=1e-9)
    assert (report['frames'], report['skipped']) == (4, 0)
    assert 0.02 < report['abs_rel'] < 0.3 and report['a1'] > 0.7   # a plausible imperfect model
    assert ' '.join(f'{expected[n]:.3f}' for n in METRIC_NAMES) in ' '.join(printed.split())
    with open(out / 'per_frame.csv', newline='') as stream:
        rows = list(csv.DictReader(stream))
    assert [row['frame'] for row in rows] == [entry.line() for entry in entries]
    assert float(rows[2]['rmse']) == pytest.approx(per_frame[2]['rmse'], rel=1e-9)
    assert sum(b['pixels'] for b in report['by_distance']) == sum(
        int(row['valid_pixels']) for row in rows)
    montage = cv2.imread(str(out / 'montage.png'))
    plot = cv2.imread(str(out / 'error_by_distance.png'))
    assert montage.shape[0] > 300 and montage.shape[1] >= 1000 and plot.shape[1] > 500

    # The same through an exported ground truth, and with the improved (PNG) ground truth.
    gt_npz = tmp_path / 'gt.npz'
    assert export_gt.main(['--data-path', str(synth_world), '--split-file', str(split),
                           '--output', str(gt_npz)]) == 0
    assert evaluate.main([*base, '--gt-npz', str(gt_npz), '--output-dir', str(tmp_path / 'b'),
                          '--montage-frames', '0']) == 0
    again = json.loads((tmp_path / 'b' / 'metrics.json').read_text())
    assert all(again[name] == report[name] for name in METRIC_NAMES)
    assert evaluate.main([*base, '--gt', 'improved', '--output-dir', str(tmp_path / 'c')]) == 0
    improved = json.loads((tmp_path / 'c' / 'metrics.json').read_text())
    expected = average_metrics(direct_metrics(synth_world, entries, preds, improved=True))
    assert improved['abs_rel'] == pytest.approx(expected['abs_rel'], rel=1e-9)
    assert improved['ground_truth'] == 'improved'


def sample_world(root: Path) -> Path:
    """A copy of the sample frame, so that frames can be added or removed."""
    shutil.copytree(SAMPLE, root, dirs_exist_ok=True)
    return root


def test_eval_mismatched_predictions_and_skip_missing(tmp_path, capsys):
    world = sample_world(tmp_path / 'world')
    split = write_split(tmp_path / 'split.txt', [SAMPLE_LINE,
                                                 '2011_09_26/2011_09_26_drive_0001_sync 1 l'])
    gt = generate_depth_map(world / '2011_09_26', read_split(split)[0].velodyne_path(world),
                            vel_depth=True)
    preds = np.stack([np.full((375, 1242), 20.0, np.float32)] * 2)
    np.savez(tmp_path / 'one.npz', pred=preds[:1])
    np.save(tmp_path / 'two.npy', preds)
    base = ['--data-path', str(world), '--split-file', str(split), '--output-dir',
            str(tmp_path / 'out'), '--montage-frames', '1']
    assert evaluate.main([*base, '--pred-npz', str(tmp_path / 'one.npz')]) == 1
    assert 'holds 1 predictions but the split has 2 frames' in capsys.readouterr().err
    assert evaluate.main([*base, '--pred-npz', str(tmp_path / 'two.npy')]) == 1
    assert '0000000001.bin' in capsys.readouterr().err
    assert evaluate.main([*base, '--pred-npz', str(tmp_path / 'two.npy'), '--skip-missing']) == 0
    report = json.loads((tmp_path / 'out' / 'metrics.json').read_text())
    assert (report['frames'], report['skipped']) == (1, 1)
    assert report['skipped_frames'] == ['2011_09_26/2011_09_26_drive_0001_sync 1 l']
    assert report['abs_rel'] == pytest.approx(compute_depth_metrics(gt, preds[0])['abs_rel'])
    np.savez(tmp_path / 'flat.npz', pred=preds[0])
    assert evaluate.main([*base, '--pred-npz', str(tmp_path / 'flat.npz')]) == 1
    assert 'N×H×W' in capsys.readouterr().err


@pytest.mark.slow
def test_eval_checkpoint_runs_the_estimator(tmp_path, capsys, request):
    pytest.importorskip('mono_depth_ros.inference.reference',
                        reason='inference module not available')
    checkpoint = request.getfixturevalue('tiny_checkpoint')
    split = write_split(tmp_path / 'split.txt', [SAMPLE_LINE])
    assert evaluate.main(['--data-path', str(SAMPLE), '--split-file', str(split),
                          '--checkpoint', checkpoint, '--device', 'cpu',
                          '--output-dir', str(tmp_path / 'out')]) == 0
    report = json.loads((tmp_path / 'out' / 'metrics.json').read_text())
    assert report['frames'] == 1 and np.isfinite(report['abs_rel'])
    assert (tmp_path / 'out' / 'montage.png').is_file()
    assert evaluate.main(['--data-path', str(SAMPLE), '--split-file', str(split),
                          '--checkpoint', str(tmp_path / 'none.pt')]) == 1
    assert 'none.pt' in capsys.readouterr().err


@pytest.mark.slow
def test_eval_against_dense_truth_scores_published_depth(synth_world, tmp_path, capsys):
    from mono_depth_ros.datasets.kitti.io import read_dense_depth

    split = synth_world / 'splits' / 'test_files.txt'
    entries = read_split(split)
    truth = [read_dense_depth(entry.dense_depth_path(synth_world)) for entry in entries]
    assert any(np.isposinf(depth).any() for depth in truth)  # the world has sky
    # what an ideal node publishes: the truth, +inf where no surface lies within 80 m
    perfect = np.stack([np.where(depth > 80.0, np.inf, depth) for depth in truth])
    np.savez(tmp_path / 'perfect.npz', pred=perfect)
    base = ['--data-path', str(synth_world), '--split-file', str(split), '--gt', 'dense',
            '--crop', 'none', '--montage-frames', '0']
    assert evaluate.main([*base, '--pred-npz', str(tmp_path / 'perfect.npz'),
                          '--output-dir', str(tmp_path / 'perfect')]) == 0
    report = json.loads((tmp_path / 'perfect' / 'metrics.json').read_text())
    assert report['ground_truth'] == 'dense' and report['abs_rel'] == 0.0 and report['a1'] == 1
    published = report['published']
    # the truth itself: every surface within 80 m finite, all beyond range +inf, no near sky
    assert (published['coverage'], published['beyond_recall'], published['sky_near']) == \
        (1.0, 1.0, 0.0)
    assert published['counts']['sky'] == sum(int(np.isposinf(d).sum()) for d in truth)
    assert 'published depth: finite on 100.00 %' in capsys.readouterr().out


@pytest.mark.slow
def test_eval_checkpoint_scores_cloud_and_confidence_as_the_node_publishes(
        synth_world, tmp_path, capsys, request):
    from mono_depth_ros.core.metrics import scored_pixels
    from mono_depth_ros.datasets.kitti.calib import load_intrinsics
    from mono_depth_ros.datasets.kitti.io import read_dense_depth, read_image
    from mono_depth_ros.evaluation.uncertainty import SparsificationScore
    from mono_depth_ros.inference.backends import load_estimator
    from mono_depth_ros.inference.outputs import estimate_outputs, OutputSettings

    checkpoint = request.getfixturevalue('tiny_checkpoint')
    split = synth_world / 'splits' / 'test_files.txt'
    assert evaluate.main(['--data-path', str(synth_world), '--split-file', str(split),
                          '--gt', 'dense', '--crop', 'none', '--checkpoint', checkpoint,
                          '--device', 'cpu', '--montage-frames', '0', '-p', 'cloud_stride=4',
                          '-p', 'cloud_edge_threshold=0.2', '-p', 'min_confidence=0',
                          '--output-dir', str(tmp_path / 'out')]) == 0
    report = json.loads((tmp_path / 'out' / 'metrics.json').read_text())
    assert report['output_settings']['cloud_stride'] == 4
    assert report['output_settings']['edge_threshold'] == 0.2
    # the same frame by hand: the node's outputs, then the counts
    entry = read_split(split)[0]
    estimator = load_estimator(checkpoint, 'torch', device='cpu')
    k = load_intrinsics(entry.calib_dir(synth_world), entry.camera)[0]
    intrinsics = (k[0, 0], k[1, 1], k[0, 2], k[1, 2])
    image = read_image(entry.image_path(synth_world))
    settings = OutputSettings(cloud_stride=4, max_range=40.0, edge_threshold=0.2)
    outputs = estimate_outputs(estimator, image, intrinsics, settings)
    gt = read_dense_depth(entry.dense_depth_path(synth_world))
    sky = np.isposinf(gt)
    assert report['published']['sky_near'] == pytest.approx(
        np.mean(np.isfinite(outputs.depth[sky]) & (outputs.depth[sky] < 60.0)))
    z = outputs.points[..., 2]
    truth = gt[::4, ::4]
    kept = np.isfinite(z)
    with np.errstate(invalid='ignore'):
        error = np.where(np.isposinf(truth[kept]), np.inf,
                         np.abs(z[kept] - truth[kept]) / truth[kept])
    assert report['published']['counts']['points'] == kept.sum()
    assert report['published']['flying_rate'] == pytest.approx(np.mean(error > 0.25))
    mask, gt_valid, pred_valid = scored_pixels(gt, estimator.predict(image, k[0, 0]).depth,
                                               None, 1e-3, 80.0)
    score = SparsificationScore()
    score.add(np.abs(pred_valid - gt_valid) / gt_valid, outputs.confidence[mask])
    assert report['sparsification']['ause'] == pytest.approx(score.report()['ause'], rel=1e-6)
    assert (tmp_path / 'out' / 'sparsification.png').is_file()
    assert 'confidence: AUSE' in capsys.readouterr().out
