"""Study configs: models × variants × seeds trained alike, each variant a config edit; checks."""

from collections.abc import Mapping
import copy
from dataclasses import dataclass
import hashlib
import os
from pathlib import Path
from typing import Any

from mono_depth_ros.core.config import check_keys, ConfigError, load_yaml
from mono_depth_ros.datasets.sources import build_dataset
from mono_depth_ros.networks import validate_model_config
from mono_depth_ros.timing.model_timing import BACKENDS as BENCH_BACKENDS
from mono_depth_ros.training.config import merge_experiment, resolve_split, validate_experiment
from mono_depth_ros.training.trainer import resolve_model_config

FULL = 'full'  # the variant name of a model config left as it is
REQUIRED_KEYS = ('world', 'seeds', 'experiment', 'runs')
STUDY_KEYS = {
    'world': None,               # data path every run trains on (e.g. a mono-depth-synth world)
    'seeds': None,               # each (model, variant) is trained once per seed
    'experiment': None,          # the training config all runs share (config/train/*.yaml schema)
    'variants': {},              # name -> {model: ['key=value', ...], loss: {term: weight}}
    'runs': None,                # [{model: <models/ name>, variants: [...], seeds: [...]}]
    'fps': {},                   # CPU speed of each run's network (see FPS_DEFAULTS)
    'keep_checkpoints': False,   # keep a finished run's step_<N>.pt and best.pt
    'baseline': None,            # a model whose full run every row's abs_rel is divided by
}
VARIANT_DEFAULTS = {'model': [], 'loss': {}}
RUN_DEFAULTS = {'model': None, 'variants': [FULL], 'seeds': None}  # seeds: the study's
# Model-only speed with mono-depth-bench's code, batch 1, fp32, on the CPU, at the study input.
FPS_DEFAULTS = {'backend': 'fast', 'iters': 20, 'warmup': 3}
# Experiment keys the study sets for each run itself.
OWNED_KEYS = {('model', 'config'): 'runs[].model', ('train', 'seed'): 'seeds'}


@dataclass
class RunSpec:
    """One training run of a study: a model config, a variant of it and a seed."""

    model: str
    variant: str
    seed: int
    experiment: dict[str, Any]     # the complete, checked training experiment of the run
    model_config: dict[str, Any]   # its network config (overrides, loss and input size applied)

    @property
    def name(self) -> str:
        """Folder name of the run under <out>/runs."""
        return f'{self.model}-{self.variant}-seed{self.seed}'


@dataclass
class Study:
    """A checked study config: where it came from, the world, the variants and every run."""

    path: str
    world: Path
    seeds: list[int]
    variants: dict[str, dict[str, Any]]
    runs: list[RunSpec]
    fps: dict[str, Any]
    keep_checkpoints: bool
    baseline: str | None = None

    @property
    def experiment(self) -> dict[str, Any]:
        """The training experiment of the first run (what every run shares)."""
        return self.runs[0].experiment


def _int_list(value: Any, where: str) -> list[int]:
    """A non-empty list of distinct integers >= 0, or ConfigError."""
    if (not isinstance(value, list) or not value or len(set(value)) != len(value)
            or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0
                       for v in value)):
        raise ConfigError(f'{where} must be a non-empty list of distinct integers >= 0, '
                          f'got {value!r}')
    return list(value)


def _variants(section: Any, where: str) -> dict[str, dict[str, Any]]:
    """The variant table: 'full' (no edit) and every checked variant of the config."""
    if not isinstance(section, Mapping):
        raise ConfigError(f'{where}: variants must be a mapping of name -> edits')
    if FULL in section:
        raise ConfigError(f'{where}: variant {FULL!r} is the unmodified network and cannot be '
                          'redefined')
    table = {FULL: copy.deepcopy(VARIANT_DEFAULTS)}
    for name, edits in section.items():
        here = f'{where} variant {name!r}'
        if not isinstance(edits, Mapping):
            raise ConfigError(f'{here} must be a mapping with model and/or loss')
        check_keys(edits, VARIANT_DEFAULTS, here)
        variant = {**copy.deepcopy(VARIANT_DEFAULTS), **copy.deepcopy(dict(edits))}
        if not isinstance(variant['model'], list) \
                or not all(isinstance(o, str) for o in variant['model']):
            raise ConfigError(f'{here}: model must be a list of "key=value" network edits')
        if not isinstance(variant['loss'], Mapping):
            raise ConfigError(f'{here}: loss must be a mapping of loss options')
        if not variant['model'] and not variant['loss']:
            raise ConfigError(f'{here} edits nothing: give model overrides or loss options')
        table[str(name)] = variant
    return table


def _runs(section: Any, variants: Mapping[str, Any], seeds: list[int], where: str
          ) -> list[tuple[str, str, list[int]]]:
    """(model, variant, seeds) of the runs section, in order, each variant defined once; an
    entry's seeds (default: the study's) are the study's seeds and more, never fewer."""
    if not isinstance(section, list) or not section:
        raise ConfigError(f'{where}: runs must be a non-empty list of {{model, variants}}')
    entries: list[tuple[str, str, list[int]]] = []
    for index, entry in enumerate(section):
        here = f'{where} runs[{index}]'
        if not isinstance(entry, Mapping):
            raise ConfigError(f'{here} must be a mapping with model and variants')
        check_keys(entry, RUN_DEFAULTS, here)
        model, names = entry.get('model'), entry.get('variants', [FULL])
        if not isinstance(model, str) or not model:
            raise ConfigError(f'{here}: model must name a network config (models/<name>.yaml)')
        if not isinstance(names, list) or not names:
            raise ConfigError(f'{here}: variants must be a non-empty list of variant names')
        unknown = [name for name in names if name not in variants]
        if unknown:
            raise ConfigError(f'{here} ({model}): unknown variant(s) {unknown}; defined: '
                              f'{sorted(variants)} (define new ones under variants:)')
        own = seeds if entry.get('seeds') is None else _int_list(entry['seeds'],
                                                                f'{here}: seeds')
        if not set(seeds) <= set(own):
            raise ConfigError(f"{here}: seeds {own} must include the study's seeds {seeds} "
                              '(every run has at least those)')
        for name in names:
            if any((model, name) == (listed, listed_name) for listed, listed_name, _ in entries):
                raise ConfigError(f'{here}: {model} variant {name!r} is listed twice')
            entries.append((model, name, own))
    return entries


def _fps(section: Any, where: str) -> dict[str, Any]:
    """The checked fps section over FPS_DEFAULTS."""
    if not isinstance(section, Mapping):
        raise ConfigError(f'{where}: fps must be a mapping')
    check_keys(section, FPS_DEFAULTS, f'{where} fps')
    fps = {**FPS_DEFAULTS, **section}
    if fps['backend'] not in BENCH_BACKENDS:
        raise ConfigError(f'{where}: fps.backend must be one of {list(BENCH_BACKENDS)}, got '
                          f'{fps["backend"]!r}')
    for key, low in (('iters', 1), ('warmup', 0)):
        if isinstance(fps[key], bool) or not isinstance(fps[key], int) or fps[key] < low:
            raise ConfigError(f'{where}: fps.{key} must be an integer >= {low}')
    return fps


def _base_experiment(section: Any, where: str) -> dict[str, Any]:
    """The shared experiment merged over the training defaults (keys the study owns refused)."""
    if not isinstance(section, Mapping):
        raise ConfigError(f'{where}: experiment must be a mapping (the config/train/*.yaml '
                          'schema)')
    for (part, key), owner in OWNED_KEYS.items():
        if isinstance(section.get(part), Mapping) and key in section[part]:
            raise ConfigError(f'{where}: experiment {part}.{key} is set per run by {owner}; '
                              'remove it')
    return merge_experiment(section, f'{where} experiment')


def run_experiment(base: Mapping[str, Any], model: str, variant: Mapping[str, Any],
                   seed: int, where: str) -> dict[str, Any]:
    """The checked training experiment of one run: the shared one, the model, its edits, seed."""
    experiment = copy.deepcopy(dict(base))
    experiment['model']['config'] = model
    experiment['model']['overrides'] = [*experiment['model']['overrides'], *variant['model']]
    experiment['loss'] = {**experiment['loss'], **variant['loss']}
    experiment['train']['seed'] = seed
    return validate_experiment(experiment, where)


def resolve_run(base: Mapping[str, Any], model: str, name: str, variant: Mapping[str, Any],
                seed: int, where: str) -> RunSpec:
    """A RunSpec with its network config resolved and checked (ConfigError names the run)."""
    here = f'{where}: {model} variant {name!r}'
    try:
        experiment = run_experiment(base, model, variant, seed, here)
        model_config = validate_model_config(resolve_model_config(experiment))
    except ConfigError as error:
        message = str(error)
        raise ConfigError(message if message.startswith(here) else f'{here}: {message}') \
            from None
    return RunSpec(model, name, seed, experiment, model_config)


def load_study(path: str | os.PathLike, world: str | os.PathLike | None = None) -> Study:
    """Load and check a study config; world replaces its world. No data is read here."""
    where = f'study {os.fspath(path)}'
    raw = load_yaml(path)
    check_keys(raw, STUDY_KEYS, where)
    missing = [key for key in REQUIRED_KEYS if key not in raw and not (key == 'world' and world)]
    if missing:
        raise ConfigError(f'{where} is missing required key(s) {missing}')
    world = world or raw['world']
    if not isinstance(world, str | os.PathLike) or not os.fspath(world):
        raise ConfigError(f'{where}: world must be a data path, got {world!r}')
    seeds = _int_list(raw['seeds'], f'{where}: seeds')
    variants = _variants(raw.get('variants') or {}, where)
    entries = _runs(raw['runs'], variants, seeds, where)
    pairs = [(model, name) for model, name, _ in entries]
    base = _base_experiment(raw['experiment'], where)
    every_seed = list(dict.fromkeys([*seeds, *(seed for *_, own in entries for seed in own)]))
    # seed by seed: a study cut short has every variant at the first seeds
    runs = [resolve_run(base, model, name, variants[name], seed, where)
            for seed in every_seed for model, name, own in entries if seed in own]
    first = {(run.model, run.variant): run.model_config for run in runs if run.seed == seeds[0]}
    for model, name in pairs:  # every variant must edit its network
        if (model, FULL) not in first:
            first[(model, FULL)] = resolve_run(base, model, FULL, variants[FULL], seeds[0],
                                               where).model_config
        if name != FULL and first[(model, name)] == first[(model, FULL)]:
            raise ConfigError(f'{where}: variant {name!r} leaves {model} unchanged')
    keep = raw.get('keep_checkpoints', STUDY_KEYS['keep_checkpoints'])
    if not isinstance(keep, bool):
        raise ConfigError(f'{where}: keep_checkpoints must be true or false')
    baseline = raw.get('baseline')
    if baseline is not None and (baseline, FULL) not in pairs:
        raise ConfigError(f'{where}: baseline {baseline!r} must be a model whose variant {FULL} '
                          f'the runs list; they list {sorted({m for m, v in pairs if v == FULL})}')
    return Study(os.fspath(path), Path(world), seeds, variants, runs,
                 _fps(raw.get('fps') or {}, where), keep, baseline)


def check_world(study: Study) -> str:
    """Check that every run can read its train and val splits of the world; return a short
    fingerprint of the split lists (a finished run is reused only on the same world)."""
    digest = hashlib.sha256()
    where = f'study {study.path}: world {study.world}'
    if not study.world.is_dir():
        raise ConfigError(f'{where} is not a directory; make it first (see the command in the '
                          'comments of the study config)')
    data = study.experiment['data']
    for key in ('train_split', 'val_split'):
        split = resolve_split(data[key], study.world)
        try:
            frames = len(build_dataset(data['source'], study.world, split, input_size=None,
                                       crop=None, augment=False, seed=0, gt=data['gt']))
        except (OSError, ValueError) as error:
            raise ConfigError(f'{where}: data.{key} {data[key]!r}: {error}') from None
        if not frames:
            raise ConfigError(f'{where}: data.{key} {data[key]!r} lists no frame')
        digest.update(Path(split).read_bytes() if os.path.isfile(split) else split.encode())
    return digest.hexdigest()[:16]
