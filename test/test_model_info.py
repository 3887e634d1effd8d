"""Tests of mono-depth-model-info: all configs reported, msfusion_r50 < FCRN, FLOPs by hand."""

import json

import torch

from mono_depth_ros.networks import build_model, load_model_config
from mono_depth_ros.networks.checkpoint import save_release
from mono_depth_ros.networks.profile import count_flops
from mono_depth_ros.tools import model_info


def test_reports_every_config_and_msfusion_r50_is_smaller_than_fcrn(capsys):
    assert model_info.main(['--no-flops', '--json']) == 0
    rows = {row['name']: row for row in json.loads(capsys.readouterr().out)}
    assert {'fcrn_r50', 'msfusion_r18', 'msfusion_r50', 'unet_r18'} <= set(rows)
    assert rows['msfusion_r50']['parameters'] < rows['fcrn_r50']['parameters']
    assert abs(rows['fcrn_r50']['parameters'] - 63.6e6) < 0.1e6
    assert rows['msfusion_r18']['confidence'] and not rows['fcrn_r50']['confidence']


def test_table_with_flops_at_a_tiny_size(capsys):
    assert model_info.main(['unet_r18', 'msfusion_r18', '--size', '32', '64']) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith('| model |') and 'GFLOPs at 32x64' in lines[0]
    assert lines[2].startswith('| unet_r18 | unet | ResNet-18 | 14.33 |')
    assert lines[3].startswith('| msfusion_r18 | msfusion | ResNet-18 |')


def test_flops_count_two_per_multiply_accumulate():
    conv = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1, bias=False))
    # 8 outputs × 3 inputs × 9 taps × 32 × 64 pixels MACs, 2 FLOPs each.
    assert count_flops(conv, 32, 64) == 2 * 8 * 3 * 9 * 32 * 64


def test_unknown_model_is_an_error(capsys):
    assert model_info.main(['no_such_model', '--no-flops']) == 1
    assert "unknown model 'no_such_model'" in capsys.readouterr().err


def test_a_checkpoint_reports_the_network_it_holds(tmp_path, capsys):
    config = load_model_config('unet_r18')
    config['beyond_range'] = True                 # a head the named config lacks
    save_release(tmp_path / 'mine.pt', build_model(config, load_pretrained=False))
    assert model_info.main([str(tmp_path / 'mine.pt'), 'unet_r18', '--no-flops', '--json']) == 0
    mine, named = json.loads(capsys.readouterr().out)
    assert mine['name'] == named['name'] == 'unet_r18'
    assert mine['parameters'] > named['parameters']     # its beyond-range head counts
    (tmp_path / 'broken.pt').write_bytes(b'not a checkpoint')
    assert model_info.main([str(tmp_path / 'broken.pt'), '--no-flops']) == 1
    assert 'broken.pt is corrupt' in capsys.readouterr().err
