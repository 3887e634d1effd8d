"""Tests of checkpoints: round trip, atomic writing, and clear errors for bad files."""

import os

import pytest
import torch

from mono_depth_ros.networks import build_model, load_model_config
from mono_depth_ros.networks.checkpoint import (
    CHECKPOINT_FORMAT,
    CheckpointError,
    load_checkpoint,
    load_model,
    save_checkpoint,
)


@pytest.fixture(scope='module')
def trained_model():
    """A unet_r18 whose weights and BN statistics differ from a fresh build."""
    torch.manual_seed(3)
    model = build_model(load_model_config('unet_r18'), load_pretrained=False)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(0.01 * torch.randn_like(param))
        model.train()(torch.randn(2, 3, 64, 64))  # moves BN running statistics
    return model.eval()


def test_round_trip_gives_identical_outputs(tmp_path, trained_model):
    path = save_checkpoint(tmp_path / 'sub' / 'model.pt', trained_model, step=7,
                           train_config={'lr': 1e-4})
    assert path.is_file()
    assert not [p for p in os.listdir(path.parent) if p.endswith('.tmp')]
    data = load_checkpoint(path)
    assert data['format'] == CHECKPOINT_FORMAT
    assert data['input_size'] == [352, 1216]
    assert data['depth_range'] == [0.5, 80.0]
    assert data['extra'] == {'step': 7, 'train_config': {'lr': 1e-4}}
    assert data['model_config'] == trained_model.config
    loaded = load_model(path)
    assert not loaded.training
    x = torch.randn(1, 3, 40, 70)
    with torch.no_grad():
        assert torch.equal(loaded(x)['depth'], trained_model(x)['depth'])


def test_missing_corrupt_and_wrong_format(tmp_path, trained_model):
    with pytest.raises(CheckpointError, match='not found: .*nothing.pt'):
        load_model(tmp_path / 'nothing.pt')
    path = save_checkpoint(tmp_path / 'model.pt', trained_model)
    truncated = tmp_path / 'truncated.pt'
    truncated.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(CheckpointError, match='truncated.pt is corrupt'):
        load_checkpoint(truncated)
    bare = tmp_path / 'bare.pt'
    torch.save(trained_model.state_dict(), bare)
    with pytest.raises(CheckpointError, match=r'bare.pt is not a mono_depth_ros checkpoint'):
        load_model(bare)
    listed = tmp_path / 'list.pt'
    torch.save([1, 2], listed)
    with pytest.raises(CheckpointError, match="format 'list'"):
        load_checkpoint(listed)


def test_mismatched_state_dict_is_an_error(tmp_path, trained_model):
    data = load_checkpoint(save_checkpoint(tmp_path / 'model.pt', trained_model))
    data['state_dict'].pop('depth_head.conv.bias')
    data['state_dict']['surprise'] = torch.zeros(1)
    torch.save(data, tmp_path / 'edited.pt')
    with pytest.raises(CheckpointError, match=r"(?s)does not match its model 'unet_r18'.*surp"):
        load_model(tmp_path / 'edited.pt')
    data['model_config']['bogus'] = 1
    torch.save(data, tmp_path / 'config.pt')
    with pytest.raises(CheckpointError, match='(?s)invalid model config.*bogus'):
        load_model(tmp_path / 'config.pt')


def test_save_does_not_replace_existing_file_on_failure(tmp_path, trained_model):
    path = save_checkpoint(tmp_path / 'model.pt', trained_model)
    before = path.read_bytes()
    with pytest.raises(Exception):  # noqa: B017 — a lambda is not picklable by torch.save
        save_checkpoint(path, trained_model, bad=lambda: 0)
    assert path.read_bytes() == before
    assert not [p for p in os.listdir(tmp_path) if p.endswith('.tmp')]


def test_release_checkpoint_is_fp16_weights_only_and_loads_strictly(tmp_path, trained_model):
    from mono_depth_ros.tools import release

    optimizer = torch.optim.Adam(trained_model.parameters())
    trained_model(torch.randn(1, 3, 32, 32)).get('depth').mean().backward()
    optimizer.step()  # optimizer state as big as the weights, twice
    trained_model.eval()
    source = save_checkpoint(tmp_path / 'step_00000100.pt', trained_model, step=100,
                             optimizer=optimizer.state_dict(), best_abs_rel=0.25,
                             train_config={'train': {'iterations': 100}})
    out = tmp_path / 'models' / 'release.pt'
    out.parent.mkdir()
    assert release.main(['--checkpoint', str(source), '--out', str(out)]) == 0
    data = load_checkpoint(out)
    assert set(data['extra']) == {'release'}  # no optimizer, no training state
    assert data['extra']['release'] == {
        'weights': 'fp16', 'source': 'step_00000100.pt', 'step': 100,
        'experiment': {'train': {'iterations': 100}}, 'best_val_abs_rel': 0.25}
    floats = [v for v in data['state_dict'].values() if v.is_floating_point()]
    assert floats and all(v.dtype == torch.float16 for v in floats)
    assert out.stat().st_size < 0.3 * source.stat().st_size  # fp16, no Adam moments
    loaded = load_model(out)  # strict: every key, fp32 parameters again
    for name, value in trained_model.state_dict().items():
        have = loaded.state_dict()[name]
        assert have.dtype == value.dtype, name
        want = value.half().to(value.dtype) if value.is_floating_point() else value
        assert torch.equal(have, want), name
    assert release.main(['--checkpoint', str(source), '--out', str(tmp_path / 'big.pt'),
                         '--max-mib', '0.01']) == 1
    assert not list(tmp_path.glob('big.pt*'))  # nothing half-written is left
    assert release.main(['--checkpoint', str(tmp_path / 'none.pt'),
                         '--out', str(tmp_path / 'x.pt')]) == 1


def _unet(*edits: str, name: str | None = None):
    """A unet_r18 with decoder edits (key=value) and the name given (default: the config's)."""
    config = load_model_config('unet_r18')
    for edit in edits:
        key, value = edit.split('=')
        config['decoder'][key] = [int(v) for v in value.split(',')]
    config['name'] = name or config['name']
    return build_model(config, load_pretrained=False)


def test_a_network_that_is_not_the_named_config_it_claims_is_refused(tmp_path):
    path = save_checkpoint(tmp_path / 'claims.pt', _unet('channels=64,32,16,8,4'))
    with pytest.raises(CheckpointError, match=r"calls its network 'unet_r18' but holds another "
                       r"one: decoder.channels: \[64, 32, 16, 8, 4\] here, \[256, 128, 64, 32, "
                       r"16\] in the named config 'unet_r18'"):
        load_model(path)
    path = save_checkpoint(tmp_path / 'listed.pt', _unet('channels=256,128,64,32,16',
                                                         name='unet_r18+decoder.channels'))
    with pytest.raises(CheckpointError, match='decoder.channels: named as edited but equal'):
        load_model(path)


def test_networks_named_after_what_they_hold_load(tmp_path):
    edited = _unet('channels=64,32,16,8,4', name='unet_r18+decoder.channels')
    assert load_model(save_checkpoint(tmp_path / 'a.pt', edited)).config['name'] == (
        'unet_r18+decoder.channels')
    own = _unet('channels=64,32,16,8,4', name='my_small_unet')   # a config file of one's own
    assert load_model(save_checkpoint(tmp_path / 'b.pt', own)).config['name'] == 'my_small_unet'
    config = load_model_config('unet_r18')                        # head and camera are free
    config.update(bins=16, beyond_range=True, max_depth=60.0, canonical_focal=300.0)
    assert load_model(save_checkpoint(tmp_path / 'c.pt', build_model(
        config, load_pretrained=False))).config['name'] == 'unet_r18'
