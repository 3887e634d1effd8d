"""Training core: experiment schema, schedule, sampler position, RNG state, checkpoints, loop."""

import json
import random

import numpy as np
import pytest
import torch

from mono_depth_ros.core.config import ConfigError
from mono_depth_ros.networks.checkpoint import load_checkpoint, load_model
from mono_depth_ros.training.checkpoints import step_checkpoints
from mono_depth_ros.training.config import load_experiment
from mono_depth_ros.training.distributed import DistInfo
from mono_depth_ros.training.reporting import METRICS_FILE
from mono_depth_ros.training.sampler import ResumableSampler
from mono_depth_ros.training.schedule import LearningRateFactor
from mono_depth_ros.training.state import capture_rng_state, restore_rng_state
from mono_depth_ros.training.trainer import (
    NonFiniteLossError,
    read_resume_checkpoint,
    resolve_model_config,
    Trainer,
)

CPU = DistInfo(rank=0, world_size=1, local_rank=0, device=torch.device('cpu'))


@pytest.fixture(autouse=True)
def _train_on_one_thread(one_torch_thread):
    """Every test here trains on one thread (see the one_torch_thread fixture)."""


def synth_config(repo_root, tmp_path, world, *overrides):
    """The synthetic-world experiment at a tiny size, quiet, for the CPU tests."""
    val = tmp_path / 'heldout.txt'
    val.write_text((world / 'splits' / 'val_files.txt').read_text()
                   + (world / 'splits' / 'test_files.txt').read_text())
    base = ['data.input_size=[64, 224]', 'data.num_workers=0', 'train.tensorboard=false',
            'train.progress=false', f'data.val_split={val}', 'validation.batch_size=2']
    return load_experiment(repo_root / 'config/train/synth_msfusion_r18.yaml',
                           base + list(overrides))


def test_kitti_configs_pin_the_paper_recipe(repo_root):
    for name, model in (('kitti_eigen_msfusion_r50', 'msfusion_r50'),
                        ('kitti_eigen_msfusion_r18', 'msfusion_r18'),
                        ('kitti_eigen_msfusion_r18_paper', 'msfusion_r18_paper')):
        config = load_experiment(repo_root / f'config/train/{name}.yaml')
        assert config['optim'] == {'name': 'adam', 'lr': 1e-4, 'betas': [0.9, 0.999],
                                   'eps': 1e-8, 'weight_decay': 4e-4, 'grad_clip': 1.0}
        assert config['train']['batch_size'] == 8
        assert config['train']['iterations'] == 300000
        assert config['data']['input_size'] == [352, 1216]
        assert config['data']['augment'] is True
        assert (config['data']['train_split'], config['data']['val_split']) == (
            'eigen_zhou/train', 'eigen_zhou/val')
        assert (config['validation']['min_depth'], config['validation']['max_depth']) == (
            1e-3, 80.0)
        model_cfg = resolve_model_config(config)
        assert model_cfg['name'] == model
        assert model_cfg['loss']['ssim_weight'] == 0.1
        assert model_cfg['loss']['bins_weight'] == 0.1


def test_synth_config_overrides_the_network(repo_root):
    config = load_experiment(repo_root / 'config/train/synth_msfusion_r18.yaml')
    model_cfg = resolve_model_config(config)
    assert model_cfg['encoder']['random_init'] is True
    assert model_cfg['input_size'] == [88, 304]
    assert model_cfg['canonical_focal'] == pytest.approx(721.5377 / 4, abs=1e-4)


def test_overrides_that_edit_the_layers_rename_the_network(repo_root):
    """A camera, depth range or head override keeps the name; a layer edit is named in it."""
    config = load_experiment(repo_root / 'config/train/synth_release_msfusion_r18.yaml')
    assert resolve_model_config(config)['name'] == 'msfusion_r18'
    config = load_experiment(repo_root / 'config/train/synth_msfusion_r18.yaml')
    config['model']['overrides'] += ['decoder.dilated_blocks=0', 'bins=32',
                                     'decoder.channels=[64, 32, 16, 8]']
    model_cfg = resolve_model_config(config)
    assert model_cfg['name'] == 'msfusion_r18+decoder.channels+decoder.dilated_blocks'
    assert model_cfg['decoder']['dilated_blocks'] == 0


def test_unknown_keys_are_errors_listing_valid_keys(tmp_path, repo_root):
    path = tmp_path / 'bad.yaml'
    path.write_text('train:\n  iteratons: 10\n')
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['iteratons'\].*'iterations'"):
        load_experiment(path)
    path.write_text('trian: {}\n')
    with pytest.raises(ConfigError, match=r"\['trian'\].*valid keys are: \['data', 'loss'"):
        load_experiment(path)
    path.write_text('loss: {ssim_wieght: 1}\n')
    with pytest.raises(ConfigError, match='ssim_wieght'):
        resolve_model_config(load_experiment(path))
    with pytest.raises(ConfigError, match="'lrr' is not in optim"):
        load_experiment(repo_root / 'config/train/synth_msfusion_r18.yaml', ['optim.lrr=1'])
    with pytest.raises(ConfigError, match='train.precision is .fp8.; choose one of'):
        load_experiment(repo_root / 'config/train/synth_msfusion_r18.yaml',
                        ['train.precision=fp8'])
    with pytest.raises(ConfigError, match='train.batch_size must be an integer >= 1'):
        load_experiment(repo_root / 'config/train/synth_msfusion_r18.yaml',
                        ['train.batch_size=0'])


def test_learning_rate_schedule_values():
    poly = LearningRateFactor('poly', total_steps=110, warmup_steps=10, warmup_start=0.1,
                              power=0.9, min_lr_ratio=0.0)
    assert poly(0) == pytest.approx(0.1)
    assert poly(5) == pytest.approx(0.55)               # half-way up the linear warm-up
    assert poly(10) == pytest.approx(1.0)
    assert poly(60) == pytest.approx(0.5 ** 0.9)        # half-way through the decay
    assert poly(110) == pytest.approx(0.0)
    cosine = LearningRateFactor('cosine', total_steps=100, min_lr_ratio=0.1)
    assert cosine(50) == pytest.approx(0.1 + 0.9 * 0.5)
    assert cosine(100) == pytest.approx(0.1)
    assert LearningRateFactor('constant', 100)(73) == 1.0


def test_sampler_resumes_mid_epoch_with_the_same_order():
    data = list(range(11))
    full = ResumableSampler(data, num_replicas=2, rank=1, seed=3)
    full.set_position(epoch=4, start=0)
    order = list(full)
    assert len(order) == 6 and {epoch for epoch, _ in order} == {4}
    resumed = ResumableSampler(data, num_replicas=2, rank=1, seed=3)
    resumed.set_position(epoch=4, start=4)
    assert list(resumed) == order[4:] and len(resumed) == 2
    full.set_position(epoch=5, start=0)
    assert [i for _, i in full] != [i for _, i in order], 'each epoch is shuffled anew'


def test_rng_state_round_trip():
    torch.manual_seed(1)
    state = capture_rng_state()
    first = (random.random(), np.random.rand(), torch.rand(3))
    random.random(), np.random.rand(), torch.rand(5)
    restore_rng_state(state)
    again = (random.random(), np.random.rand(), torch.rand(3))
    assert first[:2] == again[:2] and torch.equal(first[2], again[2])


def test_checkpoint_manager_keeps_last_k_and_best(repo_root, tmp_path):
    config = load_experiment(repo_root / 'config/train/synth_msfusion_r18.yaml',
                             ['data.input_size=[64, 96]', 'train.keep_last=2'])
    trainer = Trainer(config, None, tmp_path, CPU)
    for step in (10, 20, 30):
        trainer.step = step
        trainer.save_checkpoint(best=step == 20)
    assert [step for step, _ in step_checkpoints(tmp_path)] == [20, 30]
    assert load_checkpoint(tmp_path / 'best.pt')['extra']['step'] == 20
    assert not list(tmp_path.glob('*.tmp')), 'no temporary file is left behind'
    extra = read_resume_checkpoint(tmp_path / 'step_00000030.pt')['extra']
    assert extra['train_config'] == config and extra['rng'][0]['torch'].dtype == torch.uint8


@pytest.mark.slow
def test_training_lowers_validation_abs_rel(repo_root, tmp_path, synth_world):
    config = synth_config(repo_root, tmp_path, synth_world, 'train.iterations=20',
                          'train.batch_size=2', 'train.val_every=10',
                          'train.checkpoint_every=10')
    trainer = Trainer(config, synth_world, tmp_path / 'run', CPU)
    before = trainer.validate()[0]['abs_rel']
    result = trainer.run()
    assert result.status == 'completed' and result.step == 20
    after = result.best_abs_rel
    # Seed 0, 64x224, batch 2, 20 steps: abs_rel 0.484 -> 0.450 (step 10) -> 0.343 (step 20)
    # on the 2 held-out frames (val + test) of the synth_world fixture.
    assert after < 0.8 * before, (before, after)
    assert [step for step, _ in step_checkpoints(tmp_path / 'run')] == [10, 20]
    lines = (tmp_path / 'run' / METRICS_FILE).read_text().splitlines()
    rows = [json.loads(line) for line in lines]
    val = {row['step']: row['abs_rel'] for row in rows if row['kind'] == 'val'}
    assert sorted(val) == [10, 20] and min(val.values()) == after
    best = load_checkpoint(tmp_path / 'run' / 'best.pt')['extra']
    assert val[best['step']] == after == best['best_abs_rel']
    final = load_model(tmp_path / 'run' / 'step_00000020.pt')
    image = torch.randn(1, 3, 64, 224)
    trainer.model.eval()
    with torch.no_grad():
        assert torch.equal(final(image)['depth'], trainer.model(image)['depth'])


class StopAfter:
    """A stop request that fires once the trainer has done `steps` steps (like Ctrl-C)."""

    def __init__(self, trainer, steps):
        self.trainer, self.steps, self.signal_name = trainer, steps, 'test'

    @property
    def requested(self):
        return self.trainer.step >= self.steps


@pytest.mark.slow
def test_resume_gives_bitwise_identical_weights(repo_root, tmp_path, synth_world):
    # batch 1 over 3 training frames: 3 batches per epoch; stop at step 4 = mid epoch 1.
    overrides = ['train.iterations=6', 'train.batch_size=1', 'train.val_every=0',
                 'train.checkpoint_every=0', 'validation.max_frames=1']
    config = synth_config(repo_root, tmp_path, synth_world, *overrides)
    straight = Trainer(config, synth_world, tmp_path / 'straight', CPU)
    assert straight.run().step == 6
    first = Trainer(config, synth_world, tmp_path / 'resumed', CPU)
    stopped = first.run(StopAfter(first, 4))
    assert (stopped.status, stopped.step) == ('interrupted', 4)
    checkpoint = read_resume_checkpoint(stopped.checkpoint)
    assert (checkpoint['extra']['epoch'], checkpoint['extra']['epoch_batch']) == (1, 1)
    torch.manual_seed(1234)     # the resumed run must not depend on the process's RNG state
    second = Trainer(config, synth_world, tmp_path / 'resumed', CPU, resume=checkpoint)
    assert second.run().step == 6
    for (name, a), b in zip(straight.model.state_dict().items(),
                            second.model.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    assert straight.optimizer.state_dict()['state'][0]['exp_avg'].equal(
        second.optimizer.state_dict()['state'][0]['exp_avg'])


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(repo_root, tmp_path,
                                                              synth_world):
    config = synth_config(repo_root, tmp_path, synth_world, 'train.iterations=6',
                          'train.batch_size=1', 'train.val_every=0',
                          'train.checkpoint_every=2')
    trainer = Trainer(config, synth_world, tmp_path / 'run', CPU)
    criterion = trainer.criterion

    def poisoned(outputs, depth):
        losses = criterion(outputs, depth)
        if trainer.step == 3:
            losses['total'] = losses['total'] * float('nan')
        return losses

    trainer.criterion = poisoned
    with pytest.raises(NonFiniteLossError, match=r'non-finite loss at step 4 .*total=nan.*'
                       r'last good checkpoint is .*step_00000002\.pt'):
        trainer.run()
    assert [step for step, _ in step_checkpoints(tmp_path / 'run')] == [2]
    good = load_checkpoint(tmp_path / 'run' / 'step_00000002.pt')
    assert good['extra']['step'] == 2
    assert all(torch.isfinite(v).all() for v in good['state_dict'].values()
               if v.is_floating_point())
