"""Depth losses, all masked for sparse ground truth (0 = no depth): berHu, SILog, SSIM on depth,
cross-entropy on the ground-truth bin and binary cross-entropy of the beyond-range head;
DepthLoss weights them from the model config.

Ground truth per pixel: 0 (or NaN) = no label; 0 < d <= max_depth = a surface at d metres
(regression, SSIM, bins; "within range" for the beyond head); d > max_depth, +inf included =
no surface within max_depth (only the beyond head learns from it).
"""

from collections.abc import Mapping
import math
from typing import Any

import torch
from torch import nn
from torch.nn import functional

from mono_depth_ros.core.config import check_keys, ConfigError
from mono_depth_ros.networks import depth_to_bin, log_bin_edges, validate_model_config

SSIM_C1 = 0.01 ** 2
SSIM_C2 = 0.03 ** 2
REGRESSIONS = ('berhu', 'silog')
# Loss weights and options: a model config's `loss:` section, merged over these.
LOSS_DEFAULTS = {
    'regression': 'berhu',      # 'berhu' or 'silog'
    'regression_weight': 1.0,
    'berhu_fraction': 0.2,      # c = fraction · max |residual| over the batch's valid pixels
    'silog_lambda': 0.85,       # BTS variant: scale · sqrt(mean d² − λ mean(d)²)
    'silog_scale': 10.0,
    'ssim_weight': 0.0,
    'ssim_window': 3,
    'bins_weight': 0.0,         # cross-entropy on the ground-truth bin (needs the bin head)
    'beyond_weight': 0.0,       # binary cross-entropy of the beyond-range head (needs the head)
}


def loss_options(model_config: Mapping[str, Any]) -> dict[str, Any]:
    """The complete, checked loss options of a model config (its `loss:` over LOSS_DEFAULTS)."""
    where = f'model config {model_config.get("name")!r} loss'
    section = model_config.get('loss') or {}
    if not isinstance(section, Mapping):
        raise ConfigError(f'{where} must be a mapping, got {type(section).__name__}')
    check_keys(section, LOSS_DEFAULTS, where)
    options = {**LOSS_DEFAULTS, **section}
    if options['regression'] not in REGRESSIONS:
        raise ConfigError(f'{where}: regression must be one of {list(REGRESSIONS)}, got '
                          f'{options["regression"]!r}')
    if options['bins_weight'] and not model_config.get('bins'):
        raise ConfigError(f'{where}: bins_weight needs a bin head (bins > 0)')
    if options['beyond_weight'] and not model_config.get('beyond_range'):
        raise ConfigError(f'{where}: beyond_weight needs the beyond-range head '
                          '(beyond_range: true)')
    return options


def valid_mask(gt: torch.Tensor, max_depth: float = math.inf) -> torch.Tensor:
    """Pixels with a surface to regress to: finite, > 0 and <= max_depth."""
    return torch.isfinite(gt) & (gt > 0) & (gt <= max_depth)


def beyond_mask(gt: torch.Tensor, max_depth: float) -> torch.Tensor:
    """Pixels labelled "no surface within max_depth": gt > max_depth, +inf included."""
    return gt > max_depth


def beyond_loss(logit: torch.Tensor, gt: torch.Tensor, max_depth: float) -> torch.Tensor:
    """Binary cross-entropy of the beyond-range logit over the labelled pixels (1 beyond range,
    0 a surface within max_depth; unlabelled pixels, gt 0 or NaN, do not count)."""
    beyond = beyond_mask(gt, max_depth)
    labelled = beyond | valid_mask(gt, max_depth)
    if not labelled.any():
        return _zero(logit)
    return functional.binary_cross_entropy_with_logits(logit.float()[labelled],
                                                       beyond[labelled].float())


def _zero(pred: torch.Tensor) -> torch.Tensor:
    """A zero that keeps the graph (for batches without any valid pixel)."""
    return pred.sum() * 0.0


def berhu_loss(pred: torch.Tensor, gt: torch.Tensor, mask: torch.Tensor,
               fraction: float = 0.2) -> torch.Tensor:
    """Reverse Huber (Laina et al.): |r| if |r| <= c else (r² + c²) / 2c, c = fraction · max |r|
    over the batch's valid pixels (c is not differentiated), averaged over valid pixels."""
    if not mask.any():
        return _zero(pred)
    r = (pred - gt)[mask].abs()
    c = fraction * r.detach().max()
    if c <= 0:
        return r.mean()
    return torch.where(r <= c, r, (r * r + c * c) / (2 * c)).mean()


def silog_loss(pred: torch.Tensor, gt: torch.Tensor, mask: torch.Tensor,
               lam: float = 0.85, scale: float = 10.0) -> torch.Tensor:
    """BTS's scale-invariant log loss: scale · sqrt(mean d² − λ · (mean d)²), d = log pred − log
    gt over all valid pixels of the batch (λ 0.85, scale 10 by default)."""
    if not mask.any():
        return _zero(pred)
    d = torch.log(pred[mask]) - torch.log(gt[mask])
    return scale * torch.sqrt((d.square().mean() - lam * d.mean().square()).clamp_min(1e-12))


def masked_ssim_loss(pred: torch.Tensor, gt: torch.Tensor, mask: torch.Tensor,
                     scale: float, window: int = 3) -> torch.Tensor:
    """(1 − SSIM) / 2 between depth maps divided by scale, averaged over valid pixels.

    Local means, variances and covariance use only the valid pixels of each window × window
    neighbourhood, so predictions where the ground truth is missing have no influence.
    """
    if not mask.any():
        return _zero(pred)
    m = mask.to(pred.dtype)
    x, y = pred / scale * m, gt.nan_to_num(0.0, posinf=0.0) / scale * m

    def local(value: torch.Tensor) -> torch.Tensor:
        return functional.avg_pool2d(value, window, stride=1, padding=window // 2)

    n = local(m).clamp_min(1e-6)
    mu_x, mu_y = local(x) / n, local(y) / n
    var_x = local(x * x) / n - mu_x.square()
    var_y = local(y * y) / n - mu_y.square()
    cov = local(x * y) / n - mu_x * mu_y
    ssim = ((2 * mu_x * mu_y + SSIM_C1) * (2 * cov + SSIM_C2)
            / ((mu_x.square() + mu_y.square() + SSIM_C1) * (var_x + var_y + SSIM_C2)))
    return ((1 - ssim) / 2)[mask].mean()


def bin_cross_entropy(logits: torch.Tensor, gt: torch.Tensor, mask: torch.Tensor,
                      edges: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the logits against the bin holding the ground truth (see depth_to_bin)."""
    if not mask.any():
        return _zero(logits)
    target = depth_to_bin(gt.nan_to_num(0.0, posinf=0.0), edges.to(gt.device))[:, 0]
    ce = functional.cross_entropy(logits.float(), target, reduction='none')
    return ce[mask[:, 0]].mean()


class DepthLoss(nn.Module):
    """The training loss of a model config's `loss:` section; returns named terms and 'total'.

    Terms: 'berhu' or 'silog' (on outputs['depth']), 'ssim' when ssim_weight > 0, 'bins' (on
    outputs['logits']) when bins_weight > 0, 'beyond' (on outputs['beyond_logit']) when
    beyond_weight > 0. total = Σ weight · term.
    """

    def __init__(self, config: dict) -> None:
        super().__init__()
        cfg = validate_model_config(config)
        self.options = loss_options(cfg)
        self.max_depth = float(cfg['max_depth'])
        edges = log_bin_edges(cfg['min_depth'], cfg['max_depth'], cfg['bins']) if cfg['bins'] \
            else torch.zeros(0, dtype=torch.float64)
        self.register_buffer('edges', edges.float(), persistent=False)

    def forward(self, outputs: dict[str, torch.Tensor],
                gt_depth: torch.Tensor) -> dict[str, torch.Tensor]:
        """Loss terms for a batch; gt_depth B×1×H×W metres, 0 where there is no ground truth."""
        pred = outputs['depth']
        if gt_depth.shape != pred.shape:
            raise ValueError(f'gt depth shape {tuple(gt_depth.shape)} differs from the '
                             f'prediction {tuple(pred.shape)}')
        opts = self.options
        mask = valid_mask(gt_depth, self.max_depth)
        pred = pred.float()
        terms = {}
        if opts['regression'] == 'berhu':
            terms['berhu'] = berhu_loss(pred, gt_depth, mask, opts['berhu_fraction'])
        else:
            terms['silog'] = silog_loss(pred, gt_depth, mask, opts['silog_lambda'],
                                        opts['silog_scale'])
        total = opts['regression_weight'] * terms[opts['regression']]
        if opts['ssim_weight']:
            terms['ssim'] = masked_ssim_loss(pred, gt_depth, mask, self.max_depth,
                                             opts['ssim_window'])
            total = total + opts['ssim_weight'] * terms['ssim']
        if opts['bins_weight']:
            if 'logits' not in outputs:
                raise ValueError("loss.bins_weight > 0 needs outputs['logits'] (the bin head)")
            terms['bins'] = bin_cross_entropy(outputs['logits'], gt_depth, mask, self.edges)
            total = total + opts['bins_weight'] * terms['bins']
        if opts['beyond_weight']:
            if 'beyond_logit' not in outputs:
                raise ValueError("loss.beyond_weight > 0 needs outputs['beyond_logit'] (the "
                                 'beyond-range head)')
            terms['beyond'] = beyond_loss(outputs['beyond_logit'], gt_depth, self.max_depth)
            total = total + opts['beyond_weight'] * terms['beyond']
        terms['total'] = total
        return terms
