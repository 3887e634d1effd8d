"""Model configs (strict, with defaults) and build_model, the one way to create a network."""

from collections.abc import Mapping
import copy
import os
from pathlib import Path
from typing import Any

from mono_depth_ros.core.config import check_keys, ConfigError, load_yaml
from mono_depth_ros.core.paths import share_dirs
from mono_depth_ros.networks.encoder import ResNetEncoder
from mono_depth_ros.networks.fcrn import FCRN
from mono_depth_ros.networks.heads import DepthModel
from mono_depth_ros.networks.msfusion import MSFusionNet
from mono_depth_ros.networks.unet import UNet

REQUIRED = object()

ARCHITECTURES = {'msfusion': MSFusionNet, 'fcrn': FCRN, 'unet': UNet}

# Keys in which a network may differ from the named config it carries the name of: its training
# camera, depth range, heads, loss and ImageNet-file settings; its layers may not differ.
NAMED_FREE_KEYS = ('name', 'loss', 'input_size', 'canonical_focal', 'min_depth', 'max_depth',
                   'bins', 'bins_stride', 'beyond_range', 'encoder.pretrained_path',
                   'encoder.random_init')

BINS_STRIDES = (1, 2, 4, 8)  # powers of two that divide PAD_STRIDE: pooled maps stay aligned

TOP_DEFAULTS = {
    'name': REQUIRED, 'architecture': REQUIRED, 'min_depth': REQUIRED, 'max_depth': REQUIRED,
    'input_size': REQUIRED, 'canonical_focal': REQUIRED, 'encoder': REQUIRED,
    'decoder': REQUIRED, 'bins': 0,
    'bins_stride': 1,  # the bin head runs at 1/bins_stride of the body's output resolution
    'beyond_range': False,  # a head for "no surface within max_depth" (sky, far away)
    'loss': {},  # training loss options: the network keeps them, training.losses checks them
}
ENCODER_DEFAULTS = {'depth': REQUIRED, 'pretrained_path': None, 'random_init': False}
DECODER_DEFAULTS = {
    'msfusion': {'context_channels': REQUIRED, 'channels': REQUIRED,
                 'multiscale_blocks': 4, 'dilated_blocks': 4, 'upprojection_stages': 2,
                 'reduce_before_upsample': False,
                 'head_fusion': 0},  # earlier decoder maps concatenated before the heads
    'fcrn': {'channels': [1024, 512, 256, 128, 64]},
    'unet': {'channels': [256, 128, 64, 32, 16]},
}
def _section(config: Any, defaults: dict, where: str) -> dict:
    """Merge a config section over its defaults, strictly, and insist on required keys."""
    if not isinstance(config, Mapping):
        raise ConfigError(f'{where} must be a mapping, got {type(config).__name__}')
    check_keys(config, defaults, where)
    merged = {**copy.deepcopy(defaults), **copy.deepcopy(dict(config))}
    missing = sorted(key for key, value in merged.items() if value is REQUIRED)
    if missing:
        raise ConfigError(f'{where} is missing required key(s) {missing}')
    return merged


def validate_model_config(config: Mapping) -> dict:
    """Return a complete, checked copy of a model config (defaults filled in)."""
    cfg = _section(config, TOP_DEFAULTS, 'model config')
    where = f'model config {cfg["name"]!r}'
    if cfg['architecture'] not in ARCHITECTURES:
        raise ConfigError(f'{where}: architecture must be one of {sorted(ARCHITECTURES)}, '
                          f'got {cfg["architecture"]!r}')
    if not 0 < float(cfg['min_depth']) < float(cfg['max_depth']):
        raise ConfigError(f'{where}: need 0 < min_depth < max_depth, got '
                          f'{cfg["min_depth"]}, {cfg["max_depth"]}')
    size = cfg['input_size']
    if (not isinstance(size, list | tuple) or len(size) != 2
            or not all(isinstance(v, int) and v > 0 for v in size)):
        raise ConfigError(f'{where}: input_size must be [H, W] positive integers, got {size!r}')
    cfg['input_size'] = list(size)
    if float(cfg['canonical_focal']) <= 0:
        raise ConfigError(f'{where}: canonical_focal must be positive pixels')
    if not isinstance(cfg['bins'], int) or cfg['bins'] < 0 or cfg['bins'] == 1:
        raise ConfigError(f'{where}: bins must be 0 (no bin head) or an integer >= 2')
    if cfg['bins_stride'] not in BINS_STRIDES or isinstance(cfg['bins_stride'], bool):
        raise ConfigError(f'{where}: bins_stride must be one of {BINS_STRIDES}, got '
                          f'{cfg["bins_stride"]!r}')
    if cfg['bins_stride'] != 1 and not cfg['bins']:
        raise ConfigError(f'{where}: bins_stride {cfg["bins_stride"]} needs a bin head (bins > 0)')
    if not isinstance(cfg['beyond_range'], bool):
        raise ConfigError(f'{where}: beyond_range must be true or false, got '
                          f'{cfg["beyond_range"]!r}')
    cfg['encoder'] = _section(cfg['encoder'], ENCODER_DEFAULTS, f'{where} encoder')
    cfg['decoder'] = _section(cfg['decoder'], DECODER_DEFAULTS[cfg['architecture']],
                              f'{where} decoder ({cfg["architecture"]})')
    if not isinstance(cfg['loss'], Mapping):
        raise ConfigError(f'{where}: loss must be a mapping (the training loss options, checked '
                          f'by training.losses), got {type(cfg["loss"]).__name__}')
    cfg['loss'] = dict(cfg['loss'])
    return cfg


def model_config_dirs() -> list[Path]:
    """Folders searched for named model configs: the source tree, then installed share dirs."""
    return share_dirs('models')


def available_models() -> dict[str, Path]:
    """Map every named model config found to its YAML path (first folder wins)."""
    found: dict[str, Path] = {}
    for folder in model_config_dirs():
        for path in sorted(folder.glob('*.yaml')):
            found.setdefault(path.stem, path)
    return found


def load_model_config(path_or_name: str | os.PathLike) -> dict:
    """Load and validate a model config from a YAML path or a name such as 'msfusion_r18'."""
    text = os.fspath(path_or_name)
    if os.path.isfile(text) or text.endswith(('.yaml', '.yml')):
        return validate_model_config(load_yaml(text))
    models = available_models()
    if text not in models:
        raise ConfigError(f'unknown model {text!r}; available: {sorted(models)}')
    return validate_model_config(load_yaml(models[text]))


def build_model(config: Mapping, load_pretrained: bool = True) -> DepthModel:
    """Build the network a model config describes.

    With load_pretrained the encoder starts from ImageNet weights unless encoder.random_init is
    true: torchvision's (its weights API: the cache under $TORCH_HOME/hub/checkpoints, downloaded
    there on first use), or a local torchvision state dict named by encoder.pretrained_path. No
    file and no download, or a mismatched file, raises PretrainedWeightsError saying where to put
    it. Checkpoint loading and tests pass load_pretrained=False.
    """
    cfg = validate_model_config(config)
    enc = cfg['encoder']
    pretrained = load_pretrained and not enc['random_init']
    encoder = ResNetEncoder(enc['depth'], pretrained, enc['pretrained_path'] or None)
    return ARCHITECTURES[cfg['architecture']](cfg, encoder)


def config_differences(first: Any, second: Any, free_keys: tuple[str, ...],
                       labels: tuple[str, str], prefix: str = '') -> list[str]:
    """'key: first value <labels[0]>, second value <labels[1]>' for each differing key.

    Keys are dotted ('decoder.dilated_blocks'); those in free_keys (and below them) are skipped.
    """
    if prefix.rstrip('.') in free_keys:
        return []
    if isinstance(first, Mapping) and isinstance(second, Mapping):
        return [line for key in sorted(set(first) | set(second), key=str)
                for line in config_differences(first.get(key, '<missing>'),
                                               second.get(key, '<missing>'), free_keys, labels,
                                               f'{prefix}{key}.')]
    if first != second and not (isinstance(first, list | tuple)
                                and isinstance(second, list | tuple)
                                and list(first) == list(second)):
        return [f'{prefix.rstrip(".")}: {first!r} {labels[0]}, {second!r} {labels[1]}']
    return []


def network_differences(config: Mapping, named: Mapping) -> list[str]:
    """Where config's network differs from the named config's (NAMED_FREE_KEYS aside)."""
    return config_differences(validate_model_config(config), validate_model_config(named),
                              NAMED_FREE_KEYS, ('here', f'in the named config {named["name"]!r}'))


def difference_key(line: str) -> str:
    """The dotted key a line of config_differences is about."""
    return line.split(':', 1)[0]


def edited_name(config: Mapping, named: Mapping) -> str:
    """The name a network carries: the named config's, plus '+key' for each edited network key."""
    edited = [difference_key(line) for line in network_differences(config, named)]
    return '+'.join([str(named['name']), *edited])


def claim_differences(config: Mapping) -> list[str]:
    """Where a network differs from the named config its name claims, beyond the '+key' edits
    the name lists; [] for a name that is no named config (a config file of your own)."""
    base, *edited = str(config['name']).split('+')
    models = available_models()
    if base not in models:
        return []
    named = load_model_config(models[base])
    found = network_differences(config, named)
    unlisted = [line for line in found if difference_key(line) not in edited]
    listed_equal = sorted(set(edited) - {difference_key(line) for line in found})
    return unlisted + [f'{key}: named as edited but equal to the named config'
                       for key in listed_equal]
