"""Tests of the losses: zero for perfect predictions, masking, hand-computed values, bin edges."""

import math

import pytest
import torch

from mono_depth_ros.core.config import ConfigError
from mono_depth_ros.networks import depth_to_bin, load_model_config, log_bin_edges
from mono_depth_ros.training.losses import (
    berhu_loss,
    bin_cross_entropy,
    DepthLoss,
    LOSS_DEFAULTS,
    loss_options,
    masked_ssim_loss,
    silog_loss,
    valid_mask,
)


def sparse_gt(seed: int = 0) -> torch.Tensor:
    """A 2×1×12×16 depth map in [1, 70] m with about 70 % of pixels missing (0)."""
    g = torch.Generator().manual_seed(seed)
    gt = 1 + 69 * torch.rand(2, 1, 12, 16, generator=g)
    return gt * (torch.rand(2, 1, 12, 16, generator=g) > 0.7)


def t(values) -> torch.Tensor:
    """A 1×1×1×N tensor."""
    return torch.tensor(values, dtype=torch.float32).view(1, 1, 1, -1)


def test_berhu_hand_computed():
    pred, gt = t([1.0, 2.0, 3.0, 4.0]), t([1.0, 1.0, 1.0, 0.0])
    # Valid residuals 0, 1, 2 (the last pixel has no ground truth); c = 0.2 · 2 = 0.4.
    # 0 -> 0;  1 > c -> (1 + 0.16) / 0.8 = 1.45;  2 -> (4 + 0.16) / 0.8 = 5.2;  mean = 2.216667.
    assert float(berhu_loss(pred, gt, valid_mask(gt))) == pytest.approx(6.65 / 3, rel=1e-6)
    # Below c the loss is L1: residuals 0.1 and 1.0, c = 0.2 -> (0.1 + (1 + 0.04) / 0.4) / 2.
    pred, gt = t([1.1, 3.0]), t([1.0, 2.0])
    assert float(berhu_loss(pred, gt, valid_mask(gt))) == pytest.approx(1.35, rel=1e-5)


def test_silog_hand_computed_bts_variant():
    # d = [ln 2, 0]: 10 · sqrt(ln²2 / 2 − 0.85 · (ln 2 / 2)²) = 3.716588.
    pred, gt = t([2.0, 1.0, 5.0]), t([1.0, 1.0, 0.0])
    assert float(silog_loss(pred, gt, valid_mask(gt))) == pytest.approx(3.716588, rel=1e-5)
    # A global scale error of 2 costs 10 · ln 2 · sqrt(1 − 0.85) = 2.684547 (λ = 0.85, ×10).
    gt = sparse_gt()
    assert float(silog_loss(2 * gt.clamp_min(1), gt, valid_mask(gt))) == pytest.approx(
        2.684547, rel=1e-4)


def test_ssim_hand_computed():
    # One 3×3 window covers both pixels: μx = 2, μy = 1, σx² = 1, σy² = 0, σxy = 0, so
    # SSIM = (2·2·1 + C1)(0 + C2) / ((4 + 1 + C1)(1 + 0 + C2)) = 7.193562e-4, loss = (1 − SSIM)/2.
    pred, gt = t([1.0, 3.0]), t([1.0, 1.0])
    loss = masked_ssim_loss(pred, gt, valid_mask(gt), scale=1.0, window=3)
    assert float(loss) == pytest.approx(0.49964032, rel=1e-5)


def test_bin_cross_entropy_hand_computed():
    edges = log_bin_edges(1.0, 100.0, 2)
    logits = torch.tensor([0.0, math.log(3.0)]).view(1, 2, 1, 1).repeat(1, 1, 1, 3)
    # p = [0.25, 0.75]; gt 50 m -> bin 1: −ln 0.75; gt 2 m -> bin 0: ln 4; the third has none.
    gt = t([50.0, 2.0, 0.0])
    loss = bin_cross_entropy(logits, gt, valid_mask(gt), edges)
    assert float(loss) == pytest.approx((0.2876821 + 1.3862944) / 2, rel=1e-6)


def test_log_bin_edges_by_hand():
    edges = log_bin_edges(1.0, 100.0, 2)
    assert torch.allclose(edges, torch.tensor([1.0, 10.0, 100.0], dtype=torch.float64))


def test_bin_targets_at_bin_edges():
    edges = log_bin_edges(0.5, 80.0, 64).float()
    # Half-open bins [e_k, e_k+1): an edge belongs to the bin above it ...
    assert torch.equal(depth_to_bin(edges[:-1], edges), torch.arange(64))
    # ... just below an edge is the bin below; max_depth itself is in the last bin.
    below = torch.nextafter(edges[1:], torch.zeros(64))
    assert torch.equal(depth_to_bin(below, edges), torch.arange(64))
    assert int(depth_to_bin(edges[-1:], edges)) == 63
    # Out of range is clamped to the first / last bin.
    assert depth_to_bin(torch.tensor([0.01, 0.4999, 80.01, 500.0]), edges).tolist() == [
        0, 0, 63, 63]


def test_model_bin_centers_match_loss_edges():
    from mono_depth_ros.networks.heads import BinHead
    head = BinHead(4, 0.5, 80.0, 64)
    loss = DepthLoss(load_model_config('msfusion_r18'))
    assert torch.equal(head.edges, loss.edges)
    assert torch.all((head.edges[:-1] < head.centers) & (head.centers < head.edges[1:]))
    assert torch.equal(depth_to_bin(head.centers, head.edges), torch.arange(64))


def perfect_outputs(gt: torch.Tensor, edges: torch.Tensor) -> dict:
    """Outputs whose depth equals gt (1 m where gt is missing) and logits one-hot at gt's bin."""
    depth = torch.where(gt > 0, gt, torch.ones_like(gt))
    target = depth_to_bin(depth, edges)[:, 0]
    logits = 100.0 * functional_one_hot(target, len(edges) - 1)
    return {'depth': depth, 'logits': logits}


def functional_one_hot(target: torch.Tensor, count: int) -> torch.Tensor:
    """B×H×W indices to B×K×H×W one-hot floats."""
    return torch.nn.functional.one_hot(target, count).permute(0, 3, 1, 2).float()


@pytest.mark.parametrize('regression', ['berhu', 'silog'])
def test_depth_loss_zero_for_perfect_prediction(regression):
    config = load_model_config('msfusion_r18')
    config['loss'].update(regression=regression, ssim_weight=0.5, bins_weight=0.1)
    loss = DepthLoss(config)
    gt = sparse_gt()
    terms = loss(perfect_outputs(gt, loss.edges), gt)
    assert set(terms) == {regression, 'ssim', 'bins', 'total'}
    for name, value in terms.items():
        assert float(value) == pytest.approx(0.0, abs=1e-4), name


def test_depth_loss_ignores_pixels_without_ground_truth():
    config = load_model_config('msfusion_r18')
    config['loss'].update(ssim_weight=0.5, bins_weight=0.1)
    loss = DepthLoss(config)
    gt = sparse_gt(1)
    g = torch.Generator().manual_seed(2)
    outputs = {'depth': 1 + 60 * torch.rand(gt.shape, generator=g),
               'logits': torch.randn(2, 64, 12, 16, generator=g)}
    first = loss(outputs, gt)
    missing = gt == 0
    changed = {'depth': torch.where(missing, torch.full_like(gt, 77.0), outputs['depth']),
               'logits': torch.where(missing, -outputs['logits'], outputs['logits'])}
    second = loss(changed, gt)
    for name in first:
        assert float(first[name]) > 0
        assert float(second[name]) == pytest.approx(float(first[name]), rel=1e-6), name
    for regression in ('berhu', 'silog'):
        config['loss']['regression'] = regression
        one = DepthLoss(config)(outputs, gt)[regression]
        assert float(DepthLoss(config)(changed, gt)[regression]) == pytest.approx(float(one))


def test_total_is_the_weighted_sum_and_gradients_flow():
    config = load_model_config('msfusion_r18')
    config['loss'].update(regression_weight=2.0, ssim_weight=0.5, bins_weight=0.25)
    gt = sparse_gt(3)
    depth = (1 + 60 * torch.rand(gt.shape)).requires_grad_()
    logits = torch.randn(2, 64, 12, 16, requires_grad=True)
    terms = DepthLoss(config)({'depth': depth, 'logits': logits}, gt)
    expected = 2.0 * terms['berhu'] + 0.5 * terms['ssim'] + 0.25 * terms['bins']
    assert terms['total'].item() == pytest.approx(expected.item(), rel=1e-6)
    terms['total'].backward()
    assert depth.grad[gt == 0].abs().sum() == 0 and depth.grad[gt > 0].abs().sum() > 0
    assert logits.grad.abs().sum() > 0


def test_empty_ground_truth_gives_zero_not_nan():
    config = load_model_config('msfusion_r18')
    config['loss'].update(ssim_weight=0.5, bins_weight=0.1)
    depth = torch.full((1, 1, 4, 4), 3.0, requires_grad=True)
    terms = DepthLoss(config)({'depth': depth, 'logits': torch.zeros(1, 64, 4, 4)},
                              torch.zeros(1, 1, 4, 4))
    assert all(v.item() == 0.0 for v in terms.values())
    terms['total'].backward()


def test_config_errors():
    config = load_model_config('fcrn_r50')
    config['loss']['weight'] = 1
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['weight'\].*'bins_weight'"):
        DepthLoss(config)
    config = load_model_config('msfusion_r18')
    config['loss']['ssim'] = 1.0
    with pytest.raises(ConfigError, match=r"'ssim_weight'"):
        loss_options(config)
    config = load_model_config('unet_r18')
    config['loss']['bins_weight'] = 0.5
    with pytest.raises(ConfigError, match='bins_weight needs a bin head'):
        DepthLoss(config)
    config['loss'] = {'regression': 'l1'}
    with pytest.raises(ConfigError, match=r"regression must be one of \['berhu', 'silog'\]"):
        loss_options(config)
    config = load_model_config('unet_r18')
    assert loss_options(config) == {**LOSS_DEFAULTS, **config['loss']}  # the YAML over defaults
    config['loss'] = {}
    assert loss_options(config) == LOSS_DEFAULTS
    assert LOSS_DEFAULTS['regression'] == 'berhu' and LOSS_DEFAULTS['berhu_fraction'] == 0.2
    config = load_model_config('msfusion_r18')
    with pytest.raises(ValueError, match='needs outputs'):
        DepthLoss(config)({'depth': torch.ones(1, 1, 2, 2)}, torch.ones(1, 1, 2, 2))
    with pytest.raises(ValueError, match='gt depth shape'):
        DepthLoss(config)({'depth': torch.ones(1, 1, 2, 2)}, torch.ones(1, 2, 2))
