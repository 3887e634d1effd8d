"""Experiment configuration: the strict schema of a training run and its loader."""

from collections.abc import Mapping
import copy
import os
from pathlib import Path
from typing import Any

from mono_depth_ros.core.config import apply_overrides, check_keys, ConfigError, load_yaml
from mono_depth_ros.core.constants import MAX_DEPTH, MIN_DEPTH
from mono_depth_ros.datasets.sources import check_source, DATA_SOURCES

# Every key an experiment may set, with its default. Sections are checked strictly: an unknown
# key is an error that lists the valid ones. `model.config` names a network config (models/).
DEFAULTS: dict[str, dict[str, Any]] = {
    'model': {
        'config': 'msfusion_r18',        # name (models/<name>.yaml) or path of a network config
        'overrides': [],                 # 'key.sub=value' applied to the network config
        'load_pretrained': True,         # load the ImageNet encoder file the network config names
        'init_checkpoint': None,         # fine-tune: start from this checkpoint's weights only
    },
    'loss': {},                          # given to losses.DepthLoss; {} = its defaults
    'data': {
        'source': 'kitti',               # a name in datasets.sources.DATA_SOURCES
        'gt': None,                      # a ground truth the source offers; None: its first
                                         # (kitti: velodyne, improved, dense; bag_gt: lidar)
        'train_split': 'eigen_zhou/train',
        'val_split': 'eigen_zhou/val',
        'input_size': None,              # [H, W]; None = the network config's input_size
        'train_crop': 'random',          # KittiDepthDataset crop for training
        'val_crop': 'benchmark',         # and for validation
        'augment': True,                 # the paper's augmentations (training only); 'style':
                                         # and style randomisation (augment.style_jitter);
                                         # 'style_no_scale': 'style' without the scale step
        'num_workers': 4,
        'pin_memory': True,
        'persistent_workers': True,
        'prefetch_factor': 2,
    },
    'optim': {
        'name': 'adam',                  # adam (L2 weight decay, as the paper) or adamw
        'lr': 1e-4,
        'betas': [0.9, 0.999],
        'eps': 1e-8,
        'weight_decay': 4e-4,
        'grad_clip': 1.0,                # max global gradient norm; 0 = off
    },
    'schedule': {
        'name': 'poly',                  # poly, cosine or constant (after the warm-up)
        'warmup_steps': 0,               # linear warm-up from warmup_start * lr
        'warmup_start': 0.01,
        'power': 0.9,                    # poly exponent
        'min_lr_ratio': 0.0,             # final lr = min_lr_ratio * lr
    },
    'train': {
        'iterations': 300000,            # optimizer steps
        'batch_size': 8,                 # global batch: divided among the DDP processes
        'seed': 0,
        'device': 'auto',                # auto, cpu, cuda
        'precision': 'auto',             # auto (bf16 on CUDA, fp32 on CPU), fp32, bf16, fp16
        'channels_last': True,
        'cudnn_benchmark': True,
        'sync_batchnorm': False,         # convert BatchNorm to SyncBatchNorm under DDP
        'log_every': 50,                 # steps between logged losses
        'val_every': 5000,               # steps between validations; 0 = only at the end
        'checkpoint_every': 5000,        # steps between checkpoints; 0 = only at the end
        'keep_last': 3,                  # periodic checkpoints kept besides best.pt
        'tensorboard': True,
        'progress': True,                # tqdm bar on rank 0
    },
    'validation': {
        'max_frames': None,              # validate on the first N frames of the split; None = all
        'batch_size': 4,
        'metric_crop': None,             # crop of metrics.compute_depth_metrics: garg, eigen, None
        'min_depth': MIN_DEPTH,
        'max_depth': MAX_DEPTH,
        'log_images': 4,                 # depth images written to TensorBoard per validation
    },
}

CHOICES = {
    ('optim', 'name'): ('adam', 'adamw'),
    ('schedule', 'name'): ('poly', 'cosine', 'constant'),
    ('train', 'device'): ('auto', 'cpu', 'cuda'),
    ('train', 'precision'): ('auto', 'fp32', 'bf16', 'fp16'),
    ('validation', 'metric_crop'): ('garg', 'eigen', None),
}

POSITIVE_INTS = {
    ('train', 'iterations'), ('train', 'batch_size'), ('train', 'log_every'),
    ('train', 'keep_last'), ('validation', 'batch_size'),
}

NON_NEGATIVE_INTS = {
    ('train', 'val_every'), ('train', 'checkpoint_every'), ('data', 'num_workers'),
    ('schedule', 'warmup_steps'), ('validation', 'log_images'), ('train', 'seed'),
}


# Numbers >= 0; strings such as '1e-4' (YAML 1.1 reads them as text) are converted.
FLOATS = (
    ('optim', 'lr'), ('optim', 'eps'), ('optim', 'weight_decay'), ('optim', 'grad_clip'),
    ('schedule', 'warmup_start'), ('schedule', 'power'), ('schedule', 'min_lr_ratio'),
    ('validation', 'min_depth'), ('validation', 'max_depth'),
)


def _number(value: Any, name: str) -> float:
    """Return value as a float >= 0, or raise ConfigError naming the key."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = -1.0
    if isinstance(value, bool) or not number >= 0:
        raise ConfigError(f'{name} must be a number >= 0, got {value!r}')
    return number


def experiment_defaults() -> dict[str, Any]:
    """Return a deep copy of the default experiment."""
    return copy.deepcopy(DEFAULTS)


def merge_experiment(config: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Merge a partial experiment onto the defaults, rejecting unknown sections and keys."""
    check_keys(config, DEFAULTS, where)
    merged = experiment_defaults()
    for section, values in config.items():
        if values is None:
            continue
        if not isinstance(values, Mapping):
            raise ConfigError(f'{where}: section {section!r} must be a mapping, '
                              f'got {type(values).__name__}')
        if section != 'loss':
            check_keys(values, DEFAULTS[section], f'{where} section {section!r}')
        merged[section].update(copy.deepcopy(dict(values)))
    return merged


def validate_experiment(config: dict[str, Any], where: str) -> dict[str, Any]:
    """Check the types and ranges of a merged experiment; return it."""
    for (section, key), choices in CHOICES.items():
        if config[section][key] not in choices:
            raise ConfigError(f'{where}: {section}.{key} is {config[section][key]!r}; '
                              f'choose one of {list(choices)}')
    for section, key in POSITIVE_INTS | NON_NEGATIVE_INTS:
        value = config[section][key]
        low = 1 if (section, key) in POSITIVE_INTS else 0
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ConfigError(f'{where}: {section}.{key} must be an integer >= {low}, '
                              f'got {value!r}')
    size = config['data']['input_size']
    if size is not None and (not isinstance(size, list | tuple) or len(size) != 2
                             or not all(isinstance(v, int) and v > 0 for v in size)):
        raise ConfigError(f'{where}: data.input_size must be [H, W] positive integers or null, '
                          f'got {size!r}')
    for section, key in FLOATS:
        config[section][key] = _number(config[section][key], f'{where}: {section}.{key}')
    optim = config['optim']
    betas = optim['betas']
    if not isinstance(betas, list | tuple) or len(betas) != 2 \
            or not all(isinstance(b, int | float) and 0 <= b < 1 for b in betas):
        raise ConfigError(f'{where}: optim.betas must be two numbers in [0, 1), got {betas!r}')
    overrides = config['model']['overrides']
    if not isinstance(overrides, list) or not all(isinstance(o, str) for o in overrides):
        raise ConfigError(f'{where}: model.overrides must be a list of "key=value" strings')
    data = config['data']
    try:
        if data['gt'] is None and isinstance(data['source'], str) \
                and data['source'] in DATA_SOURCES:
            data['gt'] = DATA_SOURCES[data['source']].gt[0]
        check_source(data['source'], data['gt'])
    except ValueError as error:
        raise ConfigError(f'{where}: {error}') from None
    init = config['model']['init_checkpoint']
    if init is not None and (not isinstance(init, str) or not init.strip()):
        raise ConfigError(f'{where}: model.init_checkpoint must be a checkpoint path or null, '
                          f'got {init!r}')
    val = config['validation']
    if not 0 < val['min_depth'] < val['max_depth']:
        raise ConfigError(f'{where}: validation needs 0 < min_depth < max_depth, '
                          f'got {val["min_depth"]} and {val["max_depth"]}')
    if val['max_frames'] is not None and (not isinstance(val['max_frames'], int)
                                          or val['max_frames'] < 1):
        raise ConfigError(f'{where}: validation.max_frames must be a positive integer or null')
    return config


def load_experiment(path: str | os.PathLike, overrides: list[str] | None = None
                    ) -> dict[str, Any]:
    """Load an experiment YAML, apply 'key.sub=value' overrides, and validate it strictly."""
    where = f'experiment {os.fspath(path)}'
    config = merge_experiment(load_yaml(path), where)
    if overrides:
        config = apply_overrides(config, overrides, where)
    return validate_experiment(config, where)


def resolve_split(split: str, data_path: str | os.PathLike) -> str:
    """Return a split file relative to the data directory when it exists there, else split."""
    candidate = Path(data_path) / split
    if not os.path.isabs(split) and candidate.is_file():
        return str(candidate)
    return split
