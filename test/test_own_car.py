"""Your own car, end to end: a synthetic drive of another camera -> mono-depth-kitti2bag ->
mono-depth-bag-gt -> fine-tuning from a release checkpoint -> mono-depth-eval on a held-out part.
"""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip('rclpy')
from mono_depth_ros.bags.kitti2bag import convert_drive  # noqa: E402
from mono_depth_ros.core.config import ConfigError  # noqa: E402
from mono_depth_ros.core.constants import KITTI_INTRINSICS  # noqa: E402
from mono_depth_ros.core.metrics import average_metrics, compute_depth_metrics  # noqa: E402
from mono_depth_ros.datasets.bag_gt import (  # noqa: E402
    read_bag_gt_calib,
    read_bag_gt_split,
)
from mono_depth_ros.datasets.dataset import BagGtDataset  # noqa: E402
from mono_depth_ros.datasets.kitti import (  # noqa: E402
    generate_depth_map,
    load_intrinsics,
    read_image,
    read_improved_gt,
)
from mono_depth_ros.datasets.synth import CameraSpec, generate_world  # noqa: E402
from mono_depth_ros.evaluation.evaluate import resize_prediction  # noqa: E402
from mono_depth_ros.inference.backends import load_estimator  # noqa: E402
from mono_depth_ros.networks import build_model, load_model_config  # noqa: E402
from mono_depth_ros.networks.build import network_differences  # noqa: E402
from mono_depth_ros.networks.checkpoint import (  # noqa: E402
    load_checkpoint,
    load_model,
    save_checkpoint,
)
from mono_depth_ros.tools import (  # noqa: E402
    bag_gt,
    evaluate,
    export_gt,
    release,
    synth,
    train,
)
from mono_depth_ros.training.config import load_experiment  # noqa: E402
from mono_depth_ros.training.finetune import focal_factor, load_init_weights  # noqa: E402
from mono_depth_ros.training.trainer import resolve_model_config  # noqa: E402

# The other car: a longer lens on a smaller sensor, mounted lower and pitched 2° down.
CAMERA = CameraSpec(focal=280.0, size=(96, 320), height=1.3, pitch=2.0)
FRAMES = 8                                  # train 4, val 2, test 2 (contiguous)
INPUT = [64, 224]                           # the tiny network input of the release
CANONICAL = KITTI_INTRINSICS[0] * INPUT[1] / 1242   # KITTI's camera at that input width
CONFIG = 'config/train/own_bag_finetune.yaml'
RELEASED = 'msfusion_r18'  # the network of models/msfusion_r18.pt (its model card)
NETWORK = f'encoder.random_init=true, beyond_range=true, canonical_focal={CANONICAL}'
QUIET = [f'model.overrides=[{NETWORK}]',
         f'data.input_size={INPUT}', 'data.num_workers=0', 'train.batch_size=2',
         'train.iterations=3', 'train.val_every=0', 'train.checkpoint_every=0',
         'train.tensorboard=false', 'train.progress=false']


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    """Every test here runs torch on one thread (see the one_torch_thread fixture)."""


@pytest.fixture(scope='module')
def car(tmp_path_factory) -> dict[str, Path]:
    """The drive of the other car as a KITTI folder, its bag, its bag-gt folder, a release."""
    root = tmp_path_factory.mktemp('own_car')
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    generate_world(root / 'world', drives=1, frames=FRAMES, seed=4, val_fraction=0,
                   test_fraction=0, camera=CAMERA)
    drive = root / 'world' / '2011_09_26' / '2011_09_26_drive_0001_sync'
    convert_drive(drive, root / 'bag', progress=False)
    assert bag_gt.main([str(root / 'bag'), '--out', str(root / 'gt'), '--val-fraction', '0.25',
                        '--test-fraction', '0.25', '--no-progress']) == 0
    config = load_model_config(RELEASED)
    config['encoder']['random_init'], config['beyond_range'] = True, True
    config['input_size'], config['canonical_focal'] = INPUT, CANONICAL
    torch.manual_seed(0)
    model = build_model(config, load_pretrained=False)
    with torch.no_grad():   # a release that has learnt that the street is within range
        model.beyond_head.conv.weight.zero_()
        model.beyond_head.conv.bias.fill_(-10.0)
    save_checkpoint(root / 'trained.pt', model, step=7)
    assert release.main(['--checkpoint', str(root / 'trained.pt'),
                         '--out', str(root / 'release.pt')]) == 0
    torch.set_num_threads(threads)
    return {'root': root, 'drive': drive, 'gt': root / 'gt', 'release': root / 'release.pt'}


def test_the_other_camera_flows_into_calibration_bag_and_ground_truth(car):
    k, size = load_intrinsics(car['root'] / 'world' / '2011_09_26')
    assert size == CAMERA.size and k[0, 0] == k[1, 1] == pytest.approx(CAMERA.focal)
    assert k[0, 2] == pytest.approx((609.5593 + 0.5) * 320 / 1242 - 0.5)
    dense = np.load(car['drive'] / 'depth_dense' / 'image_02' / 'data' / '0000000000.npy')
    # The road below the principal point: depth = h / (cos p · (v − cy)/f + sin p).
    rows = np.arange(70, 96)
    pitch = math.radians(CAMERA.pitch)
    road = CAMERA.height / (math.cos(pitch) * (rows - k[1, 2]) / k[0, 0] + math.sin(pitch))
    np.testing.assert_allclose(dense[rows, int(round(k[0, 2]))], road, rtol=1e-4)
    lines = [line.split() for line in (car['gt'] / 'splits' / 'all_files.txt').read_text()
             .splitlines()]
    assert len(lines) == FRAMES
    calib = read_bag_gt_calib(car['gt'] / lines[0][2])
    np.testing.assert_allclose(calib.k, k)
    assert calib.size == CAMERA.size
    for index in (0, FRAMES - 1):
        ours = read_improved_gt(car['gt'] / lines[index][1])
        kitti = generate_depth_map(car['root'] / 'world' / '2011_09_26',
                                   car['drive'] / 'velodyne_points' / 'data' /
                                   f'{index:010d}.bin', vel_depth=False)
        either = (ours > 0) | (kitti > 0)
        assert either.sum() > 1000
        assert np.mean(np.abs(ours - kitti)[either] <= 2 / 256) >= 0.99
        truth = np.load(car['drive'] / 'depth_dense' / 'image_02' / 'data' /
                        f'{index:010d}.npy')[1:, 1:]   # the protocol's one-pixel offset
        both = (ours[:-1, :-1] > 0) & (truth > 0)
        assert np.median(np.abs(ours[:-1, :-1] - truth)[both] / truth[both]) < 0.005
    blocks = {name: [e.line() for e in read_bag_gt_split(car['gt'] / 'splits' /
                                                           f'{name}_files.txt')]
              for name in ('train', 'val', 'test')}
    everything = [' '.join(line) for line in lines]
    assert blocks == {'train': everything[:4], 'val': everything[4:6], 'test': everything[6:]}


def test_fine_tune_from_a_release_then_score_the_held_out_part(car, capsys):
    out = car['root'] / 'run'
    assert train.main(['--config', CONFIG, '--data-path', str(car['gt']), '--out', str(out),
                       f'model.init_checkpoint={car["release"]}', *QUIET]) == 0
    printed = capsys.readouterr().out
    assert f'fine-tuning from the weights of {car["release"]} (step 7)' in printed
    tuned = load_checkpoint(out / 'step_00000003.pt')
    assert tuned['extra']['step'] == 3 and tuned['extra']['scheduler']['last_epoch'] == 3
    start = load_checkpoint(car['release'])['state_dict']
    changed = [k for k, v in tuned['state_dict'].items()
               if v.is_floating_point() and not torch.equal(v.half(), start[k])]
    assert len(changed) > 50   # the weights moved from the release's

    report = car['root'] / 'eval'
    assert evaluate.main(['--data-path', str(car['gt']), '--split-file',
                          'splits/test_files.txt', '--checkpoint', str(out / 'step_00000003.pt'),
                          '--output-dir', str(report), '--device', 'cpu',
                          '--montage-frames', '0']) == 0
    metrics = json.loads((report / 'metrics.json').read_text())
    assert (metrics['frames'], metrics['crop']) == (2, 'none')
    assert metrics['ground_truth'] == 'lidar (mono-depth-bag-gt)'
    # The same numbers by hand: the network gets the other camera's focal length.
    estimator = load_estimator(out / 'step_00000003.pt', device='cpu')
    entries = read_bag_gt_split(car['gt'] / 'splits' / 'test_files.txt')

    def abs_rel(fx: float) -> float:
        rows = []
        for entry in entries:
            gt = read_improved_gt(car['gt'] / entry.depth)
            pred = estimator.predict(read_image(car['gt'] / entry.image), fx=fx).depth
            rows.append(compute_depth_metrics(gt, resize_prediction(pred, gt.shape), None))
        return average_metrics(rows)['abs_rel']

    assert metrics['abs_rel'] == pytest.approx(abs_rel(CAMERA.focal), rel=1e-5)
    assert abs(abs_rel(KITTI_INTRINSICS[0]) / metrics['abs_rel'] - 1) > 0.01


def test_init_checkpoint_errors_name_the_problem(car, capsys):
    out = car['root'] / 'bad_run'
    base = ['--config', CONFIG, '--data-path', str(car['gt']), '--out', str(out), *QUIET]
    missing = car['root'] / 'nope.pt'
    assert train.main([*base, f'model.init_checkpoint={missing}']) == 2
    assert f'checkpoint not found: {missing}' in capsys.readouterr().err
    other = f'model.overrides=[{NETWORK}, bins=32]'
    assert train.main([*base, f'model.init_checkpoint={car["release"]}', other]) == 2
    err = capsys.readouterr().err
    assert f'model.init_checkpoint {car["release"]} holds a' in err
    assert 'bins: 64 in the checkpoint, 32 in the training config' in err
    wider = [f'model.init_checkpoint={car["release"]}', 'data.input_size=[64, 448]']
    assert train.main([*base, *wider]) == 2
    assert f'set canonical_focal={2 * CANONICAL:.4f} in model.overrides' in \
        capsys.readouterr().err
    assert not list(out.glob('*.pt'))
    # At another input size with the canonical camera scaled along, the weights load strictly.
    config = load_model_config(RELEASED)
    config['encoder']['random_init'], config['beyond_range'] = True, True
    config['input_size'], config['canonical_focal'] = [64, 448], 2 * CANONICAL
    model = build_model(config, load_pretrained=False)
    info = load_init_weights(model, car['release'], model.config)
    assert info['release'] and info['step'] == 7
    start = load_checkpoint(car['release'])['state_dict']
    assert all(torch.equal(v, start[k].to(v.dtype)) for k, v in model.state_dict().items())


def test_bag_gt_data_source_config_dataset_and_eval_errors(car, repo_root, capsys):
    experiment = load_experiment(repo_root / CONFIG)
    assert (experiment['data']['source'], experiment['data']['gt']) == ('bag_gt', 'lidar')
    assert load_experiment(repo_root / CONFIG, ['data.gt=null'])['data']['gt'] == 'lidar'
    with pytest.raises(ConfigError, match=r"data.gt must be one of \['lidar'\] for source "
                                          r"'bag_gt', got 'velodyne'"):
        load_experiment(repo_root / CONFIG, ['data.gt=velodyne'])
    data = BagGtDataset(car['gt'], 'splits/train_files.txt', input_size=(48, 160))
    item, entry = data[1], data.entries[1]
    assert len(data) == 4 and tuple(item['image'].shape) == (3, 48, 160)
    assert float(item['intrinsics'][0, 0]) == pytest.approx(CAMERA.focal / 2)
    raw = read_improved_gt(car['gt'] / entry.depth)
    values = item['depth'][item['depth'] > 0].numpy()
    assert len(values) > 100 and np.isin(values, raw[raw > 0]).all()   # copies, no blending
    # Training takes the ground truth into the canonical camera: depth / (f_input / f_c).
    factor = focal_factor(item['intrinsics'][None].double(), CANONICAL)
    assert float(factor) == pytest.approx(CAMERA.focal / 2 / CANONICAL)
    with pytest.raises(FileNotFoundError, match='holds no bag_gt.yaml'):
        BagGtDataset(car['drive'], 'splits/train_files.txt')
    bad = car['root'] / 'bad_split.txt'
    bad.write_text(f'{entry.line()}\nimage/1.png depth/1.png\n')
    with pytest.raises(ValueError, match=f'split file {bad} line 2: expected'):
        BagGtDataset(car['gt'], bad)
    args = ['--data-path', str(car['gt']), '--checkpoint', str(car['release']),
            '--output-dir', str(car['root'] / 'no_eval')]
    assert evaluate.main([*args, '--split', 'eigen']) == 1
    assert 'is a mono-depth-bag-gt folder: give its split list with --split-file' in \
        capsys.readouterr().err
    assert evaluate.main([*args, '--split-file', 'splits/test_files.txt', '--gt', 'dense']) == 1
    assert 'drop --gt dense' in capsys.readouterr().err
    assert export_gt.main(['--data-path', str(car['gt']), '--split-file',
                           'splits/test_files.txt', '--output', str(car['root'] / 'x.npz')]) == 1
    assert 'is a mono-depth-bag-gt folder: its ground truth is already stored' in \
        capsys.readouterr().err


def test_synth_camera_options_are_checked(tmp_path, capsys):
    for kwargs, message in (({'focal': -5.0}, 'focal length must be a positive'),
                            ({'size': (8, 320)}, 'image size must be'),
                            ({'height': 0.0}, 'camera height must be'),
                            ({'pitch': 60.0}, 'camera pitch must be within')):
        with pytest.raises(ValueError, match=message):
            generate_world(tmp_path / 'w', camera=CameraSpec(**kwargs))
        assert not (tmp_path / 'w').exists()
    with pytest.raises(SystemExit):
        synth.main(['--out', str(tmp_path / 'w'), '--image-size', '320'])
    assert 'image size must be HEIGHTxWIDTH' in capsys.readouterr().err
    assert CameraSpec(focal=None, height=1.65).is_kitti()


@pytest.mark.parametrize('path', [CONFIG, 'config/train/real_few_frames_finetune.yaml'])
def test_the_shipped_release_loads_through_the_fine_tune_configs(repo_root, path):
    """The release holds the default network under its own name; the fine-tune configs build it,
    and the paper's network is refused naming the keys that differ."""
    experiment = load_experiment(repo_root / path)
    config = resolve_model_config(experiment)
    release = repo_root / experiment['model']['init_checkpoint']
    assert config['name'] == RELEASED == load_checkpoint(release)['model_config']['name']
    assert network_differences(load_model(release).config, load_model_config(RELEASED)) == []
    model = build_model(config, load_pretrained=False)
    info = load_init_weights(model, release, config)
    assert info['release'] and model.bins_stride == 2
    paper = resolve_model_config(load_experiment(repo_root / path,
                                                 ['model.config=msfusion_r18_paper']))
    with pytest.raises(ConfigError, match=r'decoder.channels: \[256, 128, 64, 32\] in the '
                                          r'checkpoint, \[256, 128, 64, 32, 16\] in the training'):
        load_init_weights(build_model(paper, load_pretrained=False), release, paper)
