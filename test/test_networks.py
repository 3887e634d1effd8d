"""Tests of the networks: output shapes at odd sizes, gradients, bounds, configs, weights."""

import math

import pytest
import torch
from torch.nn import functional
import torchvision

from mono_depth_ros.core.config import ConfigError, load_yaml
from mono_depth_ros.networks import (
    available_models,
    build_model,
    load_model_config,
    PretrainedWeightsError,
)
from mono_depth_ros.networks.blocks import FastUpConv
from mono_depth_ros.networks.heads import BinHead

MODEL_NAMES = ('fcrn_r50', 'msfusion_r18', 'msfusion_r18_paper', 'msfusion_r50', 'unet_r18')


def tiny_config(name: str = 'msfusion_r18', **changes) -> dict:
    """A packaged config, loaded, with top-level changes applied."""
    config = load_model_config(name)
    config.update(changes)
    return config


def test_all_packaged_configs_are_found_and_valid():
    assert set(MODEL_NAMES) <= set(available_models())
    for name in MODEL_NAMES:
        config = load_model_config(name)
        assert config['name'] == name
        assert config['encoder']['random_init'] is False
        assert config['encoder']['pretrained_path'] is None  # torchvision's weights API


@pytest.mark.slow
def test_msfusion_r18_output_shapes_at_odd_sizes():
    torch.manual_seed(0)
    model = build_model(load_model_config('msfusion_r18'), load_pretrained=False).eval()
    assert model.bin_centers.shape == (model.config['bins'],)
    for size in [(375, 1242), (352, 1216), (192, 640)]:
        with torch.no_grad():
            out = model(torch.randn(1, 3, *size))
        assert out['depth'].shape == (1, 1, *size)
        assert out['confidence'].shape == (1, 1, *size)
        assert out['bin_depth'].shape == (1, 1, *size)
        assert out['logits'].shape == (1, model.config['bins'], *size)


@pytest.mark.parametrize('name', MODEL_NAMES)
@pytest.mark.parametrize('beyond', [False, True])
def test_every_model_small_odd_input_bounded_and_interface(name, beyond):
    torch.manual_seed(0)
    config = load_model_config(name)
    config['beyond_range'] = beyond
    model = build_model(config, load_pretrained=False).eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, 45, 71) * 3)
    assert out['depth'].shape == (1, 1, 45, 71)
    depth = out['depth']
    assert float(depth.min()) >= model.min_depth and float(depth.max()) <= model.max_depth
    assert model.has_confidence == ('confidence' in out)
    assert model.has_beyond == beyond == ('beyond' in out) == ('beyond_logit' in out)
    if model.has_confidence:
        conf = out['confidence']
        assert conf.shape == (1, 1, 45, 71)
        assert 0.0 <= float(conf.min()) and float(conf.max()) <= 1.0
    else:
        assert model.bin_centers is None
    if beyond:
        assert out['beyond'].shape == (1, 1, 45, 71)
        torch.testing.assert_close(out['beyond'], torch.sigmoid(out['beyond_logit']))
    x = torch.randn(2, 3, 45, 71) * 3  # predict_maps is forward's depth, confidence, beyond
    with torch.no_grad():
        out = model(x)
        depth, conf, far = model.predict_maps(x)
        depth_only, none, far_too = model.predict_maps(x, confidence=False)
    torch.testing.assert_close(depth, out['depth'], rtol=0, atol=0)
    torch.testing.assert_close(depth_only, out['depth'], rtol=0, atol=0)
    assert none is None
    if beyond:
        torch.testing.assert_close(far, out['beyond'], rtol=0, atol=0)
        torch.testing.assert_close(far_too, out['beyond'], rtol=0, atol=0)
    else:
        assert far is None and far_too is None
    if model.has_confidence:
        torch.testing.assert_close(conf, out['confidence'], rtol=0, atol=0)
        for rows in (1, 7, 45, 100):  # strips of the bin head: same confidence (and depth)
            with torch.no_grad():
                strip_depth, strip_conf, strip_far = model.predict_maps(x, strip_rows=rows)
            torch.testing.assert_close(strip_depth, depth, rtol=0, atol=0)
            torch.testing.assert_close(strip_conf, conf, rtol=0, atol=1e-6)
            if beyond:
                torch.testing.assert_close(strip_far, far, rtol=0, atol=0)
    else:
        assert conf is None


def test_beyond_range_is_a_checked_config_key():
    config = load_model_config('unet_r18')
    assert config['beyond_range'] is False  # the default: older configs and checkpoints load
    config['beyond_range'] = 'yes'
    with pytest.raises(ConfigError, match="beyond_range must be true or false, got 'yes'"):
        build_model(config, load_pretrained=False)


def test_bin_confidence_hand_checked():
    head = BinHead(4, 0.5, 80.0, 4)
    logits = torch.zeros(1, 4, 1, 3)
    logits[0, 0, 0, 1] = 200.0  # one certain bin: entropy 0, confidence 1
    logits[0, :2, 0, 2] = 50.0  # two equal bins: entropy log 2 of log 4, confidence 1/2
    expectation, confidence = head.interpret(logits)
    torch.testing.assert_close(confidence.flatten(), torch.tensor([0.0, 1.0, 0.5]))
    torch.testing.assert_close(head.confidence(logits), confidence, rtol=0, atol=0)
    centers = head.centers  # uniform: the mean centre; certain: that bin's centre
    torch.testing.assert_close(expectation.flatten(),
                               torch.stack([centers.mean(), centers[0], centers[:2].mean()]))
    prob = torch.softmax(torch.randn(2, 4, 5, 6) * 4, dim=1)  # the textbook entropy formula
    entropy = -(prob * torch.log(prob)).sum(dim=1, keepdim=True)
    torch.testing.assert_close(head.confidence(torch.log(prob)),
                               (1 - entropy / math.log(4)).clamp(0, 1), rtol=0, atol=1e-6)


def test_depth_head_reaches_its_bounds():
    model = build_model(load_model_config('unet_r18'), load_pretrained=False).eval()
    conv = model.depth_head.conv
    with torch.no_grad():
        conv.weight.zero_()
        conv.bias.fill_(50.0)
        high = model(torch.zeros(1, 3, 32, 32))['depth']
        conv.bias.fill_(-50.0)
        low = model(torch.zeros(1, 3, 32, 32))['depth']
        conv.bias.fill_(0.0)
        mid = model(torch.zeros(1, 3, 32, 32))['depth']
    assert torch.allclose(high, torch.full_like(high, 80.0))
    assert torch.allclose(low, torch.full_like(low, 0.5))
    # sigmoid(0) = 0.5 is the geometric mean of the range: sqrt(0.5 · 80) = 6.3246 m.
    assert torch.allclose(mid, torch.full_like(mid, 6.324555), atol=1e-4)


@pytest.mark.parametrize('name', ['msfusion_r18', 'unet_r18'])
def test_gradients_reach_every_parameter(name):
    torch.manual_seed(0)
    model = build_model(load_model_config(name), load_pretrained=False).train()
    out = model(torch.randn(2, 3, 32, 64))
    loss = out['depth'].log().mean()
    if 'logits' in out:
        loss = loss + out['logits'].square().mean()
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum()]
    assert not missing


def test_fcrn_gradients_reach_every_parameter():
    # The FCRN structure on ResNet-18 with narrow up-projections keeps this test cheap.
    config = load_model_config('fcrn_r50')
    config['encoder']['depth'] = 18
    config['decoder']['channels'] = [64, 32, 16, 8, 8]
    torch.manual_seed(0)
    model = build_model(config, load_pretrained=False).train()
    assert model.out_stride == 2
    out = model(torch.randn(2, 3, 32, 64))
    assert out['depth'].shape == (2, 1, 32, 64)
    out['depth'].log().mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum()]
    assert not missing


def test_parameter_counts_msfusion_r50_below_fcrn():
    counts = {name: sum(p.numel() for p in build_model(load_model_config(name),
                                                        load_pretrained=False).parameters())
              for name in ('fcrn_r50', 'msfusion_r50')}
    # Laina et al.'s FCRN-ResNet-50 has 63.6 M parameters.
    assert abs(counts['fcrn_r50'] - 63.6e6) < 0.1e6
    assert counts['msfusion_r50'] < counts['fcrn_r50']


def test_fast_up_conv_equals_unpooling_then_5x5_conv():
    torch.manual_seed(0)
    up = FastUpConv(2, 3)
    x = torch.randn(1, 2, 4, 5)
    # The equivalent 5×5 kernel: each phase kernel sits at its offset inside a 5×5 grid.
    kernel = torch.zeros(3, 2, 5, 5)
    a, b, c, d = (conv.weight.detach() for conv in up.convs)
    kernel[..., 0::2, 0::2] = a
    kernel[..., 0::2, 1::2] = b
    kernel[..., 1::2, 0::2] = c
    kernel[..., 1::2, 1::2] = d
    unpooled = torch.zeros(1, 2, 8, 10)
    unpooled[..., 0::2, 0::2] = x
    reference = torch.nn.functional.conv2d(unpooled, kernel, padding=2)
    assert torch.allclose(up(x), reference, atol=1e-5)


def test_build_model_rejects_unknown_keys_listing_valid_ones():
    config = tiny_config(colour='red')
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['colour'\].*'max_depth'"):
        build_model(config, load_pretrained=False)
    config = load_model_config('msfusion_r18')
    config['encoder']['dept'] = 18
    with pytest.raises(ConfigError, match=r"\['dept'\].*valid keys are: \['depth', "):
        build_model(config, load_pretrained=False)
    config = load_model_config('msfusion_r18')
    config['loss'] = ['berhu']  # the loss options are training's (test_losses), but a mapping
    with pytest.raises(ConfigError, match='loss must be a mapping'):
        build_model(config, load_pretrained=False)


def test_bad_config_values_are_named():
    with pytest.raises(ConfigError, match='architecture must be one of'):
        build_model(tiny_config(architecture='vit'), load_pretrained=False)
    with pytest.raises(ConfigError, match='min_depth < max_depth'):
        build_model(tiny_config(min_depth=90.0), load_pretrained=False)
    with pytest.raises(ConfigError, match='unknown model'):
        load_model_config('no_such_model')


def test_pretrained_weights_load_from_local_torchvision_state_dict(tmp_path):
    torch.manual_seed(0)
    reference = torchvision.models.resnet18(weights=None)
    path = tmp_path / 'resnet18.pth'
    torch.save(reference.state_dict(), path)
    config = load_model_config('msfusion_r18')
    config['encoder']['pretrained_path'] = str(path)
    model = build_model(config)
    assert torch.equal(model.body.encoder.stem[0].weight, reference.conv1.weight)
    assert torch.equal(model.body.encoder.layer4[1].conv2.weight,
                       reference.layer4[1].conv2.weight)


def test_pretrained_weights_fail_loudly(tmp_path):
    config = load_model_config('msfusion_r18')
    config['encoder']['pretrained_path'] = str(tmp_path / 'missing.pth')
    with pytest.raises(PretrainedWeightsError, match='not found at .*missing.pth'):
        build_model(config)
    wrong = tmp_path / 'resnet34.pth'
    torch.save(torchvision.models.resnet34(weights=None).state_dict(), wrong)
    config['encoder']['pretrained_path'] = str(wrong)
    with pytest.raises(PretrainedWeightsError, match='does not match torchvision ResNet-18'):
        build_model(config)
    garbage = tmp_path / 'garbage.pth'
    garbage.write_bytes(b'not a checkpoint')
    config['encoder']['pretrained_path'] = str(garbage)
    with pytest.raises(PretrainedWeightsError, match='cannot read ImageNet weights'):
        build_model(config)
    # random_init is the only way to skip the weights.
    config['encoder']['random_init'] = True
    assert build_model(config) is not None


@pytest.fixture
def offline_torch_home(tmp_path, monkeypatch):
    """An empty TORCH_HOME in which every download fails as it does without internet; returns
    the URLs asked for."""
    import urllib.error

    asked = []

    def no_internet(url, dst, *args, **kwargs):
        asked.append(url)
        raise urllib.error.URLError('[Errno -3] Temporary failure in name resolution')

    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))
    monkeypatch.setattr(torch.hub, 'download_url_to_file', no_internet)
    return asked


def test_imagenet_weights_come_from_torchvisions_cache(offline_torch_home, tmp_path):
    from mono_depth_ros.networks.encoder import imagenet_weights_file

    cached = tmp_path / 'torch_home' / 'hub' / 'checkpoints' / 'resnet18-f37072fd.pth'
    assert imagenet_weights_file(18) == cached
    cached.parent.mkdir(parents=True)
    torch.manual_seed(1)
    reference = torchvision.models.resnet18(weights=None)
    torch.save(reference.state_dict(), cached)
    model = build_model(load_model_config('msfusion_r18'))  # pretrained_path empty
    assert offline_torch_home == []  # the cached file is used, nothing is downloaded
    assert torch.equal(model.body.encoder.stem[0].weight, reference.conv1.weight)


def test_imagenet_weights_are_downloaded_into_the_cache_once(tmp_path, monkeypatch):
    torch.manual_seed(2)
    reference = torchvision.models.resnet18(weights=None)
    downloads = []

    def download(url, dst, *args, **kwargs):
        downloads.append((url, dst))
        torch.save(reference.state_dict(), dst)

    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))
    monkeypatch.setattr(torch.hub, 'download_url_to_file', download)
    for _ in range(2):
        model = build_model(load_model_config('unet_r18'))
        assert torch.equal(model.body.encoder.layer4[1].conv2.weight,
                           reference.layer4[1].conv2.weight)
    cached = tmp_path / 'torch_home' / 'hub' / 'checkpoints' / 'resnet18-f37072fd.pth'
    assert downloads == [('https://download.pytorch.org/models/resnet18-f37072fd.pth',
                          str(cached))]


def test_offline_without_the_weights_names_the_file_and_where_to_put_it(offline_torch_home,
                                                                        tmp_path):
    cached = tmp_path / 'torch_home' / 'hub' / 'checkpoints' / 'resnet50-0676ba61.pth'
    with pytest.raises(PretrainedWeightsError) as error:
        build_model(load_model_config('fcrn_r50'))
    message = str(error.value)
    assert offline_torch_home == ['https://download.pytorch.org/models/resnet50-0676ba61.pth']
    assert f'could not be downloaded from {offline_torch_home[0]}' in message
    assert f'copy that file to {cached}' in message and 'URLError' in message
    assert 'encoder.pretrained_path' in message and 'encoder.random_init: true' in message
    cached.parent.mkdir(parents=True, exist_ok=True)  # torch.hub makes the folder
    cached.write_bytes(b'a partial download')
    with pytest.raises(PretrainedWeightsError, match=f'cannot read the ImageNet weights of '
                                                     f'ResNet-50 at {cached}: .*delete the file'):
        build_model(load_model_config('fcrn_r50'))
    # neither the file nor the network is needed for checkpoints and random_init
    assert build_model(load_model_config('fcrn_r50'), load_pretrained=False) is not None
    assert offline_torch_home == [offline_torch_home[0]]


def test_configs_on_disk_match_names(repo_root):
    for name in MODEL_NAMES:
        assert load_yaml(repo_root / 'models' / f'{name}.yaml')['name'] == name


def test_bins_stride_is_a_checked_config_key():
    for bad in (3, 16, True, '2'):
        with pytest.raises(ConfigError, match=r'bins_stride must be one of \(1, 2, 4, 8\)'):
            build_model(tiny_config(bins_stride=bad), load_pretrained=False)
    with pytest.raises(ConfigError, match='bins_stride 2 needs a bin head'):
        build_model(tiny_config('unet_r18', bins_stride=2), load_pretrained=False)


def test_bin_head_at_a_stride_is_the_full_resolution_head_pooled():
    # A 1×1 conv commutes with average pooling, so the strided head's logits are the full head's
    # logits averaged over s×s cells; confidence and bin depth are taken there and upsampled.
    torch.manual_seed(0)
    full = build_model(tiny_config(bins_stride=1), load_pretrained=False).eval()
    strided = build_model(tiny_config(bins_stride=4), load_pretrained=False).eval()
    strided.load_state_dict(full.state_dict())
    x = torch.randn(1, 3, 45, 71) * 3
    with torch.no_grad():
        features, size = full.features(x)
        cells = functional.avg_pool2d(full.bin_head(features), 4, ceil_mode=True)
        bin_depth, confidence = full.bin_head.interpret(cells)
        out = strided(x)
        _, conf, _ = strided.predict_maps(x)
    assert cells.shape[-2:] == (size[2] // 2 // 4, size[3] // 2 // 4)  # heads at 1/2, bins 1/8
    for name, coarse in (('confidence', confidence), ('bin_depth', bin_depth),
                         ('logits', cells)):
        expected = functional.interpolate(coarse, size=size[2:], mode='bilinear',
                                          align_corners=False)[..., :45, :71]
        torch.testing.assert_close(out[name], expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(conf, out['confidence'], rtol=0, atol=0)
    torch.testing.assert_close(out['depth'], full(x)['depth'], rtol=0, atol=0)


def test_msfusion_with_four_decoder_widths_predicts_at_half_resolution():
    torch.manual_seed(0)
    model = build_model(load_model_config('msfusion_r18'), load_pretrained=False).eval()
    assert model.config['decoder']['channels'] == [256, 128, 64, 32]
    assert model.out_stride == 2 and len(model.body.fuses) == 4
    with torch.no_grad():
        features, size = model.features(torch.randn(1, 3, 45, 71))
    assert features.shape == (1, 32, size[2] // 2, size[3] // 2)
    config = load_model_config('msfusion_r18')
    config['decoder']['channels'] = [256, 128, 64]
    with pytest.raises(ValueError, match=r'needs 5 widths \(1/16 .. 1/1\) or 4'):
        build_model(config, load_pretrained=False)


def test_head_fusion_concatenates_earlier_decoder_maps_before_the_heads():
    torch.manual_seed(0)
    plain = build_model(load_model_config('msfusion_r18'), load_pretrained=False).eval()
    config = load_model_config('msfusion_r18')
    config['decoder']['head_fusion'] = 2
    fused = build_model(config, load_pretrained=False).eval()
    assert fused.depth_head.conv.in_channels == 32 * 3
    body = {k: v for k, v in fused.state_dict().items() if k.startswith('body.')
            and not k.startswith('body.laterals.')}
    plain.load_state_dict(body, strict=False)
    seen = {}
    for index in (2, 3):  # the inputs of the last two stages: the maps at 1/8 and 1/4
        fused.body.ups[index].register_forward_pre_hook(
            lambda _, args, index=index: seen.__setitem__(index, args[0]))
    with torch.no_grad():
        x = torch.randn(1, 3, 64, 96)
        features, _ = fused.features(x)
        expected = plain.features(x)[0]
        torch.testing.assert_close(features[:, :32], expected, rtol=0, atol=0)
        for j, index in enumerate((3, 2)):  # lateral j: the map j stages before the last
            lateral = functional.interpolate(fused.body.laterals[j](seen[index]), size=(32, 48),
                                             mode='bilinear', align_corners=False)
            torch.testing.assert_close(features[:, 32 * (j + 1):32 * (j + 2)], lateral)
    assert seen[3].shape[1] == 64 and seen[2].shape[1] == 128
    for bad in (True, -1, 5, 1.5):
        config['decoder']['head_fusion'] = bad
        with pytest.raises(ValueError, match='head_fusion of msfusion must be an integer'):
            build_model(config, load_pretrained=False)
