"""Running a study: each run through the project's Trainer (resumed from its own checkpoints),
then scored from its validation log and timed on the CPU with mono-depth-bench's code."""

from dataclasses import dataclass, field
import json
import os
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from mono_depth_ros.core.config import ConfigError
from mono_depth_ros.core.paths import atomic_output
from mono_depth_ros.study.config import check_world, RunSpec, Study
from mono_depth_ros.study.report import write_report
from mono_depth_ros.timing.device import device_name
from mono_depth_ros.timing.model_timing import bench_model
from mono_depth_ros.training.checkpoints import BEST_NAME, latest_checkpoint, step_checkpoints
from mono_depth_ros.training.distributed import DistInfo, pick_device
from mono_depth_ros.training.reporting import METRICS_FILE
from mono_depth_ros.training.signals import StopRequest
from mono_depth_ros.training.trainer import read_resume_checkpoint, RunResult, Trainer

RUNS_DIR = 'runs'
RESULT_FILE = 'result.json'  # written when a run is finished; its presence means "skip it"
CURVE_KEYS = ('step', 'train_s', 'abs_rel', 'a1', 'rmse')


@dataclass
class StudyOutcome:
    """How a study invocation ended, its finished runs and how many it trained now."""

    status: str                      # 'completed' or 'interrupted'
    results: list[dict[str, Any]] = field(default_factory=list)
    trained: int = 0


def normalised(value: Any) -> Any:
    """value as JSON reads it back (lists for tuples, str keys): for comparing settings."""
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def run_settings(spec: RunSpec, world_id: str) -> dict[str, Any]:
    """What a run's result depends on: its training experiment, its network's config as
    resolved now (an edited models/<name>.yaml counts) and the world's split lists."""
    return normalised({'experiment': spec.experiment, 'model_config': spec.model_config,
                       'world': world_id})


def write_json(path: Path, value: Any) -> None:
    """Write JSON whole or not at all (core.paths.atomic_output)."""
    with atomic_output(path) as stream:
        stream.write((json.dumps(value, indent=1) + '\n').encode('utf-8'))


def finished_result(folder: Path, settings: dict[str, Any]) -> dict[str, Any] | None:
    """The result of a finished run, None when it is not finished; ConfigError when the run
    was made (or started) with other settings than these."""
    path = folder / RESULT_FILE
    stale = (f'{folder} was trained with other settings (experiment, model config or world) '
             'than the study config gives now; delete that folder or use another --out')
    if path.is_file():
        result = json.loads(path.read_text())
        if result.get('settings') != settings:
            raise ConfigError(stale)
        return result
    if step_checkpoints(folder):
        saved = read_resume_checkpoint(latest_checkpoint(folder))
        if (normalised(saved['extra']['train_config']) != settings['experiment']
                or normalised(saved['model_config']) != settings['model_config']):
            raise ConfigError(stale)
    return None


def train_run(spec: RunSpec, world: Path, folder: Path, stop: StopRequest | None
              ) -> RunResult:
    """Train one run to its last step with the project's Trainer, resuming from the newest
    step_<N>.pt of its folder when there is one (as mono-depth-train --resume)."""
    resume = None
    if step_checkpoints(folder):
        resume = read_resume_checkpoint(latest_checkpoint(folder))
    dist = DistInfo(0, 1, 0, pick_device(spec.experiment['train']['device']))
    trainer = Trainer(spec.experiment, world, folder, dist, resume)
    return trainer.run(stop)


def validation_curve(folder: Path) -> list[dict[str, float]]:
    """Validation rows of a run's metrics.jsonl, one per step (the last one written wins: a
    resumed run may validate a step again)."""
    rows: dict[int, dict[str, float]] = {}
    for line in (folder / METRICS_FILE).read_text().splitlines():
        row = json.loads(line)
        if row.get('kind') == 'val':
            rows[row['step']] = {key: row.get(key) for key in CURVE_KEYS}
    return [rows[step] for step in sorted(rows)]


def measure_speed(spec: RunSpec, fps: dict[str, Any]) -> dict[str, float]:
    """Parameters, GFLOPs and CPU frames/s of the run's network at its input size, batch 1,
    fp32, with mono-depth-bench's model-only code (random weights: speed does not depend on
    them)."""
    size = tuple(spec.model_config['input_size'])
    row = bench_model(spec.model_config, size, [fps['backend']], 'cpu', 'fp32',
                      iters=fps['iters'], warmup=fps['warmup'])[0]
    return {'params_m': row['params_m'], 'gflops': row['gflops'], 'cpu_fps': row['fps'],
            'cpu_p50_ms': row['p50_ms']}


def finish_run(spec: RunSpec, folder: Path, settings: dict[str, Any], study: Study
               ) -> dict[str, Any]:
    """Score a trained run, time its network, write its result.json; drop its checkpoints."""
    curve = validation_curve(folder)
    steps = spec.experiment['train']['iterations']
    final = curve[-1] if curve else {}
    if final.get('step') != steps:
        raise RuntimeError(f'{folder}: no validation at the last step {steps} in {METRICS_FILE}')
    train = spec.experiment['train']
    result = {'model': spec.model, 'variant': spec.variant, 'seed': spec.seed, 'steps': steps,
              'wall_s': final['train_s'], 'abs_rel': final['abs_rel'], 'a1': final['a1'],
              'rmse': final['rmse'], **measure_speed(spec, study.fps),
              'input_size': spec.model_config['input_size'], 'batch_size': train['batch_size'],
              'lr': spec.experiment['optim']['lr'], 'curve': curve, 'settings': settings}
    write_json(folder / RESULT_FILE, result)
    if not study.keep_checkpoints:
        for _, path in step_checkpoints(folder):
            path.unlink(missing_ok=True)
        (folder / BEST_NAME).unlink(missing_ok=True)
    return result


def run_study(study: Study, out_dir: str | os.PathLike, stop: StopRequest | None = None,
              progress: bool = True) -> StudyOutcome:
    """Train every run not finished yet, in order, and write the report of the finished ones.

    Everything is checked before the first step: the world, and that each run folder already
    in out_dir was made with the same settings. A stop request (Ctrl-C) checkpoints the current
    run and ends the invocation; the next one resumes that run.
    """
    out = Path(out_dir)
    world_id = check_world(study)
    folders = [out / RUNS_DIR / spec.name for spec in study.runs]
    settings = [run_settings(spec, world_id) for spec in study.runs]
    done = [finished_result(folder, s) for folder, s in zip(folders, settings, strict=True)]
    outcome = StudyOutcome('completed')
    bar = tqdm(total=len(study.runs), initial=sum(r is not None for r in done), desc='study',
               unit='run', dynamic_ncols=True, disable=not progress)
    for index, (spec, folder) in enumerate(zip(study.runs, folders, strict=True)):
        if done[index] is not None:
            continue
        if stop is not None and stop.requested:
            outcome.status = 'interrupted'
            break
        bar.set_postfix_str(spec.name)
        folder.mkdir(parents=True, exist_ok=True)
        if train_run(spec, study.world, folder, stop).status == 'interrupted':
            outcome.status = 'interrupted'
            break
        result = done[index] = finish_run(spec, folder, settings[index], study)
        outcome.trained += 1
        bar.update(1)
        bar.write(f'{spec.name}: abs_rel {result["abs_rel"]:.4f} a1 {result["a1"]:.3f} '
                  f'rmse {result["rmse"]:.3f} after {result["wall_s"]:.0f} s of training; '
                  f'{result["cpu_fps"]:.1f} frames/s on the CPU')
    bar.close()
    outcome.results = [result for result in done if result is not None]
    train_device = pick_device(study.experiment['train']['device'])
    write_report(out, study, outcome.results, {'cpu': device_name(torch.device('cpu')),
                                               'train_device': device_name(train_device)})
    return outcome
