"""mono-depth-demo (`make demo`): the whole pipeline on a synthetic drive, end to end.

1. renders a short synthetic KITTI-format drive (mono_depth_ros.datasets.synth) and turns it
   into a bag (mono-depth-kitti2bag);
2. gets a model: --checkpoint, else the default model (models/), else a short CPU training run on a
   synthetic world with mono-depth-train (config/train/synth_msfusion_r18.yaml), cached under
   .cache/demo/ by a hash of the config, the overrides and the world, so a second run reuses it;
3. runs mono_depth_node in its own process over real DDS while a player publishes the drive's
   image + CameraInfo with the drive's stamps at the camera rate, and records every output;
4. writes to demo_out/: bag/ (MCAP: the drive and the outputs, for `ros2 bag play` and RViz),
   overview.png (one frame's camera, depth and cloud), depth_montage.png, cloud.ply, node.log
   and summary.json, and prints the summary (latency from message in to depth out, frames
   processed/dropped, accuracy against the drive's lidar and its dense truth, and how much of
   the sky is published in front of the car).
"""

import argparse
import hashlib
import json
import os
from pathlib import Path
import shutil
import subprocess
import sys
import time

import cv2
import numpy as np

from mono_depth_ros.core.constants import MAX_DEPTH, MIN_DEPTH
from mono_depth_ros.core.geometry import colorize_depth, write_ply
from mono_depth_ros.core.metrics import average_metrics, compute_depth_metrics
from mono_depth_ros.core.paths import DEFAULT_MODEL, default_model
from mono_depth_ros.datasets.kitti import generate_depth_map
from mono_depth_ros.datasets.synth import generate_world
from mono_depth_ros.ros.conversions import image_to_numpy, pointcloud2_to_array, split_xyz_rgb
from mono_depth_ros.ros.stamps import header_ns, NS_PER_S, set_stamp

REPO_ROOT = Path(__file__).resolve().parents[2]
TRAIN_CONFIG = REPO_ROOT / 'config' / 'train' / 'synth_msfusion_r18.yaml'
TRAIN_WORLD = {'drives': 2, 'frames': 16, 'seed': 0, 'val_fraction': 0.125,
               'test_fraction': 0.0}
DRIVE_WORLD = {'drives': 1, 'frames': 24, 'seed': 7, 'val_fraction': 0.0, 'test_fraction': 0.0}
# The training run fits the 6-minute budget of `make demo` on a 2-core CPU (~1.3 s a step at
# 88x304, batch 4): the experiment config's recipe, fewer steps, one validation at the end.
TRAIN_OVERRIDES = ['train.iterations=120', 'train.val_every=120', 'train.checkpoint_every=120',
                   'train.log_every=25']
NAMESPACE = '/kitti/camera_color_left'
CAMERA_RATE = 10.0   # Hz, KITTI's camera
MONTAGE_FRAMES = 4
OVERVIEW_WIDTH = 560          # px per tile of overview.png (camera | depth | cloud, stacked)
OVERVIEW_DEPTH_RANGE = (3.0, 80.0)  # metres: the colour scale of its depth tile
# The cloud view of overview.png: a virtual camera this far above and behind the real one,
# pitched down (metres, metres, degrees), with 1.2 times the real camera's focal length.
CLOUD_VIEW = (3.0, 6.0, 12.0)
CLOUD_ZOOM = 1.2
NODE_COUNTERS = ('received', 'processed', 'dropped_busy', 'dropped_unmatched', 'invalid',
                 'skipped_no_subscribers')


def log(message: str) -> None:
    """Print a demo step."""
    print(f'[demo] {message}', flush=True)


def ensure_world(path: Path, spec: dict) -> Path:
    """A synthetic world made with spec under path, rendered once and reused afterwards."""
    marker = path / 'world.json'
    if marker.is_file() and json.loads(marker.read_text()) == spec:
        return path
    log(f'rendering a synthetic world {spec} -> {path}')
    generate_world(path, overwrite=True, **spec)
    marker.write_text(json.dumps(spec))
    return path


def train_key(config: Path, overrides: list[str]) -> str:
    """Hash of the training config text, the overrides and the training world."""
    digest = hashlib.sha256(config.read_bytes())
    digest.update(json.dumps([TRAIN_OVERRIDES, overrides, TRAIN_WORLD]).encode())
    return digest.hexdigest()[:12]


def get_model(args: argparse.Namespace, cache: Path) -> tuple[str, str]:
    """(checkpoint path, where it came from): given, the default model, cached or trained."""
    if args.checkpoint:
        return args.checkpoint, 'given with --checkpoint'
    try:
        return str(default_model()), 'the default model'
    except FileNotFoundError:
        pass
    key = train_key(Path(args.train_config), args.train_override)
    run_dir = cache / f'train_{key}'
    done = run_dir / 'demo_checkpoint.txt'
    if done.is_file() and Path(done.read_text().strip()).is_file():
        return done.read_text().strip(), f'cached training run {run_dir}'
    world = ensure_world(cache / 'train_world', TRAIN_WORLD)
    if run_dir.exists():
        shutil.rmtree(run_dir)  # an unfinished run from an interrupted demo
    log(f'no default model ({DEFAULT_MODEL}): training on {world} (cached as {run_dir})')
    command = [sys.executable, '-m', 'mono_depth_ros.tools.train', '--config',
               str(args.train_config), '--data-path', str(world), '--out', str(run_dir),
               *TRAIN_OVERRIDES, *args.train_override]
    result = subprocess.run(command)
    if result.returncode != 0:
        raise RuntimeError(f'training failed (exit {result.returncode}): {" ".join(command)}')
    checkpoints = sorted(run_dir.glob('step_*.pt'), key=lambda p: int(p.stem.split('_')[1]))
    if not checkpoints:
        raise RuntimeError(f'training wrote no step_*.pt checkpoint in {run_dir}')
    done.write_text(str(checkpoints[-1]))
    return str(checkpoints[-1]), f'trained now ({run_dir})'


def make_drive_bag(cache: Path) -> tuple[Path, Path, dict]:
    """(drive folder, bag of it, kitti2bag summary), cached."""
    from mono_depth_ros.bags.kitti2bag import convert_drive

    world = ensure_world(cache / 'drive_world', DRIVE_WORLD)
    drive = next((world / '2011_09_26').glob('*_sync'))
    bag = cache / 'drive_bag'
    info_file = cache / 'drive_bag.json'
    if bag.is_dir() and info_file.is_file() and json.loads(info_file.read_text())[0] == \
            str(drive):
        return drive, bag, json.loads(info_file.read_text())[1]
    if bag.exists():
        shutil.rmtree(bag)
    info = convert_drive(drive, bag, progress=False)
    info_file.write_text(json.dumps([str(drive), {k: str(v) for k, v in info.items()}]))
    return drive, bag, info


def evaluate(drive: Path, depth_msgs: list, stamps: list[int]) -> tuple[dict, list]:
    """Metrics of each published depth against the drive's lidar; (average, per frame)."""
    calib = drive.parent
    velo = sorted((drive / 'velodyne_points' / 'data').glob('*.bin'))
    index = {stamp: i for i, stamp in enumerate(stamps)}
    per_frame = []
    for msg in depth_msgs:
        i = index[header_ns(msg)]
        gt = generate_depth_map(calib, velo[i], cam=2)
        metrics = compute_depth_metrics(gt, image_to_numpy(msg), crop=None)
        per_frame.append((i, metrics))
    return average_metrics(m for _, m in per_frame), per_frame


def evaluate_dense(drive: Path, depth_msgs: list, stamps: list[int]) -> dict:
    """The published depth against the drive's dense truth (every pixel, +inf = sky): metrics
    averaged per frame, and the shares of evaluation.published pooled over pixels."""
    from mono_depth_ros.datasets.kitti.io import read_dense_depth
    from mono_depth_ros.evaluation.published import PublishedScore

    dense = sorted((drive / 'depth_dense' / 'image_02' / 'data').glob('*.npy'))
    index = {stamp: i for i, stamp in enumerate(stamps)}
    score = PublishedScore(MIN_DEPTH, MAX_DEPTH)
    per_frame = []
    for msg in depth_msgs:
        truth = read_dense_depth(dense[index[header_ns(msg)]])
        published = image_to_numpy(msg)
        per_frame.append(compute_depth_metrics(truth, published, crop=None))
        score.add_depth(truth, published)
    shares = score.report()
    return {**average_metrics(per_frame), **{key: shares[key] for key in (
        'coverage', 'beyond_recall', 'sky_near')}}


def write_montage(path: Path, frames: list, depth_msgs: list, drive: Path, stamps: list[int]
                  ) -> None:
    """Rows of [camera | predicted depth | lidar depth] on one metric colour scale."""
    calib = drive.parent
    velo = sorted((drive / 'velodyne_points' / 'data').glob('*.bin'))
    index = {stamp: i for i, stamp in enumerate(stamps)}
    picks = depth_msgs[::max(len(depth_msgs) // MONTAGE_FRAMES, 1)][:MONTAGE_FRAMES]
    rows = []
    for msg in picks:
        i = index[header_ns(msg)]
        rgb = image_to_numpy(frames[i][0])
        lidar = generate_depth_map(calib, velo[i], cam=2)
        lidar = cv2.dilate(lidar, np.ones((3, 3), np.uint8))  # make the scan lines visible
        tiles = [cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
                 colorize_depth(image_to_numpy(msg), 1.0, 80.0), colorize_depth(lidar, 1.0, 80.0)]
        for tile, label in zip(tiles, (f'frame {i}', 'mono_depth_node', 'lidar'), strict=True):
            cv2.putText(tile, label, (10, 30), cv2.FONT_HERSHEY_SIMPLEX, 1.0, (255, 255, 255), 2)
        rows.append(np.hstack(tiles))
    montage = np.vstack(rows)
    scale = min(1.0, 2400 / montage.shape[1])
    cv2.imwrite(str(path), cv2.resize(montage, None, fx=scale, fy=scale,
                                      interpolation=cv2.INTER_AREA))


def render_cloud(points: np.ndarray, colors: np.ndarray, size: tuple[int, int], focal: float,
                 view: tuple[float, float, float] = CLOUD_VIEW) -> np.ndarray:
    """An H×W×3 RGB image of a coloured cloud (optical frame: x right, y down, z forward) seen
    by a virtual camera lifted and moved back by view's metres and pitched down by its
    degrees; nearer points hide farther ones, and no point is dark grey."""
    lift, back, pitch = view
    height, width = size
    points, colors = points.reshape(-1, 3), colors.reshape(-1, 3)
    keep = np.isfinite(points).all(axis=1)
    x, y, z = (points[keep] - np.array([0.0, -lift, -back])).T
    angle = np.radians(pitch)
    y, z = y * np.cos(angle) - z * np.sin(angle), y * np.sin(angle) + z * np.cos(angle)
    ahead = z > 0.1
    u = np.round(focal * x[ahead] / z[ahead] + (width - 1) / 2).astype(np.int64)
    v = np.round(focal * y[ahead] / z[ahead] + (height - 1) / 2).astype(np.int64)
    image = np.full((height, width, 3), 40, np.uint8)
    order = np.argsort(-z[ahead])  # far first: near points are drawn over them
    u, v, rgb = u[order], v[order], colors[keep][ahead][order]
    for du in (0, 1):            # 2×2 splats close the gaps between cloud_stride samples
        for dv in (0, 1):
            inside = (u + du >= 0) & (u + du < width) & (v + dv >= 0) & (v + dv < height)
            image[v[inside] + dv, u[inside] + du] = rgb[inside]
    return image


def write_overview(path: Path, image_msg, depth_msg, cloud_msg, focal: float) -> None:
    """overview.png: one frame's camera image, its depth and its cloud, stacked (the README's
    picture)."""
    rgb = image_to_numpy(image_msg)
    points, colors = split_xyz_rgb(pointcloud2_to_array(cloud_msg))
    scale = OVERVIEW_WIDTH / rgb.shape[1]
    size = (round(rgb.shape[0] * scale), OVERVIEW_WIDTH)
    tiles = [cv2.resize(tile, size[::-1], interpolation=cv2.INTER_AREA) for tile in (
        cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
        colorize_depth(image_to_numpy(depth_msg), *OVERVIEW_DEPTH_RANGE))]
    tiles.append(cv2.cvtColor(render_cloud(points, colors, size, focal * scale * CLOUD_ZOOM),
                              cv2.COLOR_RGB2BGR))
    for tile, label in zip(tiles, ('camera', 'depth', 'points'), strict=True):
        cv2.putText(tile, label, (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (255, 255, 255), 2)
    cv2.imwrite(str(path), np.vstack(tiles), [cv2.IMWRITE_PNG_COMPRESSION, 9])


def format_summary(summary: dict) -> str:
    """The printed summary."""
    acc = summary['accuracy']
    dense = summary['accuracy_dense']
    lat = summary['latency_ms']
    node = summary['node_latency_ms']
    counters = summary['node_counters']
    return '\n'.join([
        'mono_depth_ros demo summary',
        f"  model        {summary['model']} ({summary['model_source']})",
        f"  device       {summary['device']}",
        f"  drive        {summary['frames_sent']} frames at {CAMERA_RATE:g} Hz "
        f"({summary['image_size'][1]}x{summary['image_size'][0]})",
        f"  processed    {summary['frames_processed']}   dropped: busy "
        f"{summary['frames_dropped']}, CameraInfo late {counters.get('dropped_unmatched', 0)}, "
        f"not received {summary['frames_sent'] - counters.get('received', 0)}",
        f"  latency      p50 {lat['p50_ms']:.0f} ms   p95 {lat['p95_ms']:.0f} ms   "
        f"max {lat['max_ms']:.0f} ms (message in -> depth out; in the node: p50 "
        f"{node['p50_ms']:.0f} ms, p95 {node['p95_ms']:.0f} ms)",
        f"  accuracy     abs_rel {acc['abs_rel']:.3f}   rmse {acc['rmse']:.2f} m   "
        f"a1 {acc['a1']:.3f}   vs lidar, {summary['frames_scored']} frames",
        f"               abs_rel {dense['abs_rel']:.3f}   rmse {dense['rmse']:.2f} m   "
        f"a1 {dense['a1']:.3f}   vs the dense truth (every pixel)",
        f"  beyond range sky published nearer than 60 m: {100 * dense['sky_near']:.2f} %   "
        f"beyond range published +inf: {100 * dense['beyond_recall']:.1f} %   "
        f"surfaces within 80 m published finite: {100 * dense['coverage']:.1f} %",
        f"  outputs      {summary['out_dir']}/: bag/ ({summary['bag_messages']} messages), "
        'overview.png, depth_montage.png, cloud.ply, summary.json',
        f"  time         {summary['seconds']:.0f} s"])


def start_node(checkpoint: str, namespace: str, device: str, log_path: Path
               ) -> subprocess.Popen:
    """Start mono_depth_node in its own process on <namespace>/image_raw and camera_info."""
    from mono_depth_ros.ros.node_process import start_node as start_node_process

    # the player is reliable like `ros2 bag play`; a best-effort reader loses many of the
    # 1.4 MB frames on a loaded 2-core machine (DDS fragments), hiding the node's own
    # newest-frame dropping that the demo measures
    params = {'checkpoint': checkpoint, 'device': device, 'diagnostics_period': 0.5,
              'input_qos': 'reliable'}
    return start_node_process(namespace, params, log_path, remaps=['image:=image_raw'])


def run_demo(args: argparse.Namespace) -> dict:
    """Every step of the demo; returns the summary."""
    from mono_depth_ros.bags import player
    from mono_depth_ros.ros.node_process import stop_node

    started = time.monotonic()
    out, cache = Path(args.out), Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    drive, drive_bag, bag_info = make_drive_bag(cache)
    checkpoint, source = get_model(args, cache)
    log(f'model: {checkpoint} ({source})')
    frames = player.load_frames(drive_bag, bag_info['image_topic'],
                                  bag_info['camera_info_topic'])
    stamps = [header_ns(image) for image, _ in frames]
    process = start_node(checkpoint, NAMESPACE, args.device, out / 'node.log')
    drive_player = player.DrivePlayer(NAMESPACE, bag_info['image_topic'],
                                      bag_info['camera_info_topic'])
    try:
        log('starting mono_depth_node and waiting for its first depth image')
        drive_player.wait_ready(process, _restamped(frames[0], stamps[0] - NS_PER_S))
        log(f'playing {len(frames)} frames at {CAMERA_RATE:g} Hz')
        run = drive_player.play(frames, CAMERA_RATE, process)
    finally:
        drive_player.close()
        stop_node(process)
    depth_msgs = sorted(run.outputs['depth'], key=lambda p: header_ns(p[0]))
    depth_msgs = [msg for msg, _ in depth_msgs if header_ns(msg) in run.sent]
    if not depth_msgs:
        raise RuntimeError(f'the node published no depth; see {out / "node.log"}')
    counts = player.write_output_bag(out / 'bag', drive_bag, NAMESPACE, run)
    accuracy, _ = evaluate(drive, depth_msgs, stamps)
    accuracy_dense = evaluate_dense(drive, depth_msgs, stamps)
    write_montage(out / 'depth_montage.png', frames, depth_msgs, drive, stamps)
    clouds = [m for m, _ in run.outputs['points'] if header_ns(m) in run.sent]
    cloud = clouds[len(clouds) // 2]
    points, colors = split_xyz_rgb(pointcloud2_to_array(cloud))
    write_ply(out / 'cloud.ply', points, colors)
    frame = frames[stamps.index(header_ns(cloud))]
    depth = next(msg for msg in depth_msgs if header_ns(msg) == header_ns(cloud))
    write_overview(out / 'overview.png', frame[0], depth, cloud, frame[1].k[0])
    diag = run.diagnostics[-1] if run.diagnostics else {}
    summary = {
        'model': Path(checkpoint).name, 'model_source': source,
        'device': diag.get('device', args.device), 'frames_sent': len(frames),
        'image_size': [frames[0][0].height, frames[0][0].width],
        'frames_processed': len(depth_msgs),
        'frames_dropped': run.node_counters(NODE_COUNTERS).get('dropped_busy', 0),
        'frames_without_output': len(frames) - len(depth_msgs),
        'latency_ms': player.latency_stats(run.depth_latencies()),
        'node_latency_ms': {'p50_ms': float(diag.get('latency_p50_ms', 'nan')),
                            'p95_ms': float(diag.get('latency_p95_ms', 'nan'))},
        'node_counters': run.node_counters(NODE_COUNTERS),
        'accuracy': accuracy, 'accuracy_dense': accuracy_dense,
        'frames_scored': len(depth_msgs),
        'bag_topics': counts, 'bag_messages': sum(counts.values()),
        'out_dir': str(out), 'seconds': time.monotonic() - started}
    (out / 'summary.json').write_text(json.dumps(summary, indent=2))
    return summary


def _restamped(frame: tuple, stamp: int) -> tuple:
    """Copies of an (image, info) pair with another stamp (for the warm-up frame)."""
    import copy

    image, info = copy.deepcopy(frame[0]), copy.deepcopy(frame[1])
    for msg in (image, info):
        set_stamp(msg.header.stamp, stamp)
    return image, info


def main(argv: list[str] | None = None) -> int:
    """Command line: mono-depth-demo [--out demo_out] [--checkpoint model.pt] ..."""
    parser = argparse.ArgumentParser(prog='mono-depth-demo', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--out', default='demo_out', help='output folder (replaced)')
    parser.add_argument('--cache', default='.cache/demo', help='cache of worlds and models')
    parser.add_argument('--checkpoint', help='use this model instead of models/ or training')
    parser.add_argument('--device', default='auto', choices=('auto', 'cuda', 'cpu'))
    parser.add_argument('--train-config', default=str(TRAIN_CONFIG),
                        help='experiment config of the training run when no model is found')
    parser.add_argument('--train-override', action='append', default=[], metavar='KEY=VALUE',
                        help='mono-depth-train override, e.g. train.iterations=200')
    args = parser.parse_args(argv)
    try:
        summary = run_demo(args)
    except (RuntimeError, OSError, ValueError) as error:
        print(f'mono-depth-demo: {error}', file=sys.stderr)
        return 1
    print(format_summary(summary))
    return 0


if __name__ == '__main__':
    sys.exit(main())
