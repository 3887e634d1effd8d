"""A study's report: results.json, a markdown table (mean ± std over seeds) and abs_rel plots."""

import json
import os
from pathlib import Path
import textwrap
from typing import Any

import numpy as np

from mono_depth_ros.study.config import FULL, Study

RESULTS_JSON = 'results.json'
RESULTS_MD = 'results.md'
PLOT_STEP = 'abs_rel_vs_step.png'
PLOT_WALL = 'abs_rel_vs_wall.png'
# Table columns: result key, header, decimals, whether seeds can differ (else: the mean only).
COLUMNS = (('abs_rel', 'abs_rel', 4, True), ('a1', 'δ1', 3, True), ('rmse', 'RMSE (m)', 3, True),
           ('wall_s', 'train wall (s)', 0, True), ('params_m', 'params (M)', 2, False),
           ('gflops', 'GFLOPs', 2, False), ('cpu_fps', 'CPU FPS', 1, True))


def mean_std(values: list[float]) -> tuple[float, float | None]:
    """Mean and sample standard deviation (n - 1; None for a single value)."""
    data = np.asarray(values, dtype=np.float64)
    return float(data.mean()), float(data.std(ddof=1)) if data.size > 1 else None


def groups(results: list[dict[str, Any]]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """Runs by (model, variant), in the order the study lists them."""
    table: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for result in results:
        table.setdefault((result['model'], result['variant']), []).append(result)
    return table


def paired_ratio(runs: list[dict[str, Any]], reference: list[dict[str, Any]] | None
                 ) -> float | None:
    """Mean abs_rel of runs / that of reference over the seeds both have (None: none shared)."""
    seeds = {r['seed'] for r in runs} & {r['seed'] for r in reference or []}
    if not seeds:
        return None
    return float(np.mean([r['abs_rel'] for r in runs if r['seed'] in seeds])
                 / np.mean([r['abs_rel'] for r in reference if r['seed'] in seeds]))


def summarize(results: list[dict[str, Any]], baseline: str | None = None
              ) -> list[dict[str, Any]]:
    """One row per (model, variant): seeds, mean and std of each column, the change of mean
    abs_rel against the same model's full variant (relative, None without one) and, with a
    baseline model, mean abs_rel / the baseline's full mean abs_rel (None until it has run);
    both comparisons over the seeds the two rows share, so a row with more seeds than another
    is compared seed for seed."""
    rows, table = [], groups(results)
    for (model, variant), runs in table.items():
        row = {'model': model, 'variant': variant, 'seeds': [r['seed'] for r in runs]}
        for key, *_ in COLUMNS:
            row[key], row[f'{key}_std'] = mean_std([r[key] for r in runs])
        full = paired_ratio(runs, table.get((model, FULL)))
        row['abs_rel_vs_full'] = None if full is None else full - 1.0
        row['abs_rel_vs_baseline'] = paired_ratio(runs, table.get((baseline, FULL)))
        rows.append(row)
    return rows


def cell(mean: float, std: float | None, digits: int) -> str:
    """'mean ± std' with the given decimals (only the mean for one seed)."""
    text = f'{mean:.{digits}f}'
    return text if std is None else f'{text} ± {std:.{digits}f}'


def study_seeds(study: Study) -> dict[tuple[str, str], list[int]]:
    """The seeds of each (model, variant) of a study, in run order."""
    seeds: dict[tuple[str, str], list[int]] = {}
    for run in study.runs:
        seeds.setdefault((run.model, run.variant), []).append(run.seed)
    return seeds


def seeds_text(study: Study) -> str:
    """The study's seeds, and the rows that have more."""
    more = {pair: seeds for pair, seeds in study_seeds(study).items() if seeds != study.seeds}
    return f'{study.seeds}' + ''.join(f', {model} {variant} {seeds}'
                                      for (model, variant), seeds in more.items())


def markdown(study: Study, results: list[dict[str, Any]], meta: dict[str, str]) -> str:
    """The report: what was run, the table, the variants' edits and the plots."""
    experiment = study.experiment
    height, width = study.runs[0].model_config['input_size']
    about = (
        f'{len(results)} of {len(study.runs)} runs finished. Each run trains one network on '
        f'the same world (`{study.world}`, split `{experiment["data"]["train_split"]}`) with '
        f'the same data order per seed: {experiment["train"]["iterations"]} steps, batch '
        f'{experiment["train"]["batch_size"]}, lr {experiment["optim"]["lr"]:g}, input '
        f'{height}×{width}, seeds {seeds_text(study)}; trained on {meta["train_device"]}. '
        f'abs_rel, δ1 (a1) and RMSE are the validation at the last step on '
        f'`{experiment["data"]["val_split"]}`; train wall is the training loop\'s time without '
        f'validation and checkpoints. Params and GFLOPs (2 per multiply-add) at {height}×'
        f'{width}; CPU FPS: mono-depth-bench model-only, backend `{study.fps["backend"]}`, '
        f'batch 1, fp32, {study.fps["iters"]} timed calls on {meta["cpu"]}. '
        'Values are mean ± sample std over seeds.'
        + (f' The last column divides each mean abs_rel by that of {study.baseline} full.'
           if study.baseline else '')
        + (' Both comparisons are over the seeds the two rows share.'
           if len({len(seeds) for seeds in study_seeds(study).values()}) > 1 else ''))
    ratio_header = f' abs_rel / {study.baseline} |' if study.baseline else ''
    lines = [
        f'# Study `{Path(study.path).name}`', '',
        textwrap.fill(about, 99, break_on_hyphens=False), '',
        '| model | variant | seeds | ' + ' | '.join(column[1] for column in COLUMNS)
        + ' | abs_rel vs full |' + ratio_header,
        '| --- | --- | --- | ' + ' | '.join('---:' for _ in COLUMNS) + ' | ---: |'
        + (' ---: |' if study.baseline else '')]
    for row in summarize(results, study.baseline):
        change = row['abs_rel_vs_full']
        change = '' if change is None or row['variant'] == FULL else f'{100 * change:+.1f} %'
        ratio = row['abs_rel_vs_baseline']
        ratio = '' if not study.baseline else ' – |' if ratio is None else f' {ratio:.3f} |'
        lines.append(f'| {row["model"]} | {row["variant"]} | {len(row["seeds"])} | '
                     + ' | '.join(cell(row[key], row[f'{key}_std'] if spread else None, digits)
                                  for key, _, digits, spread in COLUMNS) + f' | {change} |'
                     + ratio)
    lines += ['', 'Variants (edits of the model config and of its loss):', '']
    for name, edits in study.variants.items():
        parts = [f'`{o}`' for o in edits['model']]
        parts += [f'loss `{key}: {value}`' for key, value in edits['loss'].items()]
        lines.append(f'- `{name}`: ' + (', '.join(parts) or 'the network as configured'))
    lines += ['', f'![val abs_rel against step]({PLOT_STEP})',
              f'![val abs_rel against training wall time]({PLOT_WALL})', '']
    return '\n'.join(lines)


def mean_curve(runs: list[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Steps validated in every run of a group, with the mean train time and mean abs_rel."""
    steps = sorted(set.intersection(*[{p['step'] for p in r['curve']} for r in runs]))
    at = [{p['step']: p for p in r['curve']} for r in runs]
    wall = [np.mean([points[s]['train_s'] for points in at]) for s in steps]
    abs_rel = [np.mean([points[s]['abs_rel'] for points in at]) for s in steps]
    return np.asarray(steps), np.asarray(wall), np.asarray(abs_rel)


def write_plots(out: Path, results: list[dict[str, Any]], title: str) -> None:
    """Val abs_rel (mean over seeds) of each (model, variant) against step and wall time."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    curves = {key: mean_curve(runs) for key, runs in groups(results).items()}
    for path, index, label in ((PLOT_STEP, 0, 'training step'),
                               (PLOT_WALL, 1, 'training wall time (s)')):
        figure, axis = plt.subplots(figsize=(8, 5))
        for (model, variant), curve in curves.items():
            axis.plot(curve[index], curve[2], marker='o', markersize=3,
                      linestyle='-' if variant == FULL else '--', label=f'{model} {variant}')
        axis.set_xlabel(label)
        axis.set_ylabel('val abs_rel (mean over seeds)')
        axis.set_title(title)
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
        figure.tight_layout()
        figure.savefig(out / path, dpi=110)
        plt.close(figure)


def write_report(out: str | os.PathLike, study: Study, results: list[dict[str, Any]],
                 meta: dict[str, str]) -> None:
    """Write results.json, results.md and the two plots of the finished runs into out."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    runs = [{key: value for key, value in r.items() if key != 'settings'} for r in results]
    document = {
        'study': study.path, 'world': os.fspath(study.world), 'seeds': study.seeds,
        'steps': study.experiment['train']['iterations'],
        'input_size': study.runs[0].model_config['input_size'],
        'batch_size': study.experiment['train']['batch_size'],
        'lr': study.experiment['optim']['lr'], 'fps': study.fps, 'hardware': meta,
        'variants': study.variants, 'baseline': study.baseline,
        'summary': summarize(results, study.baseline), 'runs': runs,
    }
    (out / RESULTS_JSON).write_text(json.dumps(document, indent=1) + '\n')
    (out / RESULTS_MD).write_text(markdown(study, results, meta))
    if results:
        write_plots(out, results, f'{Path(study.path).stem}: {len(results)} runs')
