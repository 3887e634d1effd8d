"""mono-depth-study: the ablations as config edits, a tiny study end to end (resume, skip, same
seed → same metrics, report) and bad study configs refused before anything trains."""

import json
from pathlib import Path

import pytest
import torch
import yaml

from mono_depth_ros.core.config import ConfigError
from mono_depth_ros.networks import build_model, load_model_config
from mono_depth_ros.networks.blocks import DilatedBlock, MultiScaleBlock, UpProjection
from mono_depth_ros.networks.profile import count_parameters
from mono_depth_ros.study import config as study_config
from mono_depth_ros.study.config import FULL, load_study
from mono_depth_ros.study.report import PLOT_STEP, PLOT_WALL, RESULTS_JSON, RESULTS_MD, summarize
from mono_depth_ros.study.runner import RESULT_FILE, run_study, RUNS_DIR
from mono_depth_ros.tools.study import main
from mono_depth_ros.training.checkpoints import step_checkpoints
from mono_depth_ros.training.losses import DepthLoss
from mono_depth_ros.training.reporting import METRICS_FILE

STUDY = 'config/study/msfusion_ablation.yaml'
ABLATIONS = ('no_multiscale', 'no_dilated', 'no_bins', 'no_ssim', 'upprojection_decoder')
REMOVALS = ('no_multiscale', 'no_dilated', 'no_bins')  # the variants that take a part away


@pytest.fixture(autouse=True)
def _train_on_one_thread(one_torch_thread):
    """Every test here trains on one thread (see the one_torch_thread fixture)."""


def blocks(model: torch.nn.Module, kind: type) -> int:
    """Number of modules of a kind in model."""
    return sum(isinstance(module, kind) for module in model.modules())


COMPARED = ('unet_r18', 'msfusion_r18', 'msfusion_r18_paper')  # the full runs at 6 seeds


def test_the_study_in_git_trains_every_network_alike(repo_root):
    study = load_study(repo_root / STUDY)
    assert study.seeds == [0, 1]
    compared = [(model, FULL) for model in COMPARED]
    variants = [('msfusion_r18', name) for name in (*ABLATIONS, 'full_resolution', 'head_fusion')]
    # seed by seed: every run at seeds 0 and 1, all but fcrn_r50 at 2 and 3, then the compared
    # networks at 4 and 5
    assert [(r.model, r.variant, r.seed) for r in study.runs] == [
        (*pair, seed) for seed in (0, 1) for pair in [*compared, *variants, ('fcrn_r50', FULL)]
    ] + [(*pair, seed) for seed in (2, 3) for pair in [*compared, *variants]] + [
        (*pair, seed) for seed in (4, 5) for pair in compared]
    for run in study.runs:
        experiment = run.experiment
        assert (experiment['train']['iterations'], experiment['train']['batch_size'],
                experiment['optim']['lr'], experiment['data']['input_size']) == (
            300, 4, 5e-4, [88, 304])
        assert run.model_config['encoder']['random_init'] is True
        assert run.experiment['train']['seed'] == run.seed
    first = {(r.model, r.variant): r for r in study.runs if r.seed == 0}
    for run in study.runs:  # a run differs from its seed-0 twin in the seed alone
        twin = first[(run.model, run.variant)]
        assert run.model_config == twin.model_config
        assert {**run.experiment, 'train': {**run.experiment['train'], 'seed': 0}} == \
            twin.experiment


def test_a_run_entry_may_add_seeds_but_not_drop_the_studys(tmp_path, synth_world):
    config = write_study(tmp_path / 'study.yaml', synth_world, seeds=[0], runs=[
        {'model': 'msfusion_r18', 'variants': [FULL], 'seeds': [0, 2]},
        {'model': 'msfusion_r18', 'variants': ['no_ssim']}])
    study = load_study(config)
    assert [r.name for r in study.runs] == [
        'msfusion_r18-full-seed0', 'msfusion_r18-no_ssim-seed0', 'msfusion_r18-full-seed2']
    for seeds, message in (([2], r"runs\[0\]: seeds \[2\] must include the study's seeds \[0\]"),
                           ([0, 0], r'runs\[0\]: seeds must be a non-empty list of distinct')):
        bad = write_study(tmp_path / 'bad.yaml', synth_world, seeds=[0], runs=[
            {'model': 'msfusion_r18', 'variants': [FULL], 'seeds': seeds}])
        with pytest.raises(ConfigError, match=message):
            load_study(bad)


def test_each_ablation_builds_runs_and_changes_only_its_part(repo_root):
    runs = {r.variant: r for r in load_study(repo_root / STUDY).runs
            if r.seed == 0 and r.model == 'msfusion_r18'}
    image, gt = torch.randn(1, 3, 64, 96), torch.rand(1, 1, 64, 96) * 40 + 1
    models, terms = {}, {}
    for name, run in runs.items():
        torch.manual_seed(0)
        models[name] = build_model(run.model_config, load_pretrained=False).eval()
        with torch.no_grad():
            outputs = models[name](image)
        assert outputs['depth'].shape == (1, 1, 64, 96) and torch.isfinite(outputs['depth']).all()
        terms[name] = set(DepthLoss(run.model_config)(outputs, gt)) - {'total'}
    torch.manual_seed(0)  # full is the network as configured: same weights, same output
    plain = build_model(load_model_config('msfusion_r18'), load_pretrained=False).eval()
    for (key, a), b in zip(plain.state_dict().items(), models[FULL].state_dict().values(),
                           strict=True):
        assert torch.equal(a, b), key
    with torch.no_grad():
        assert torch.equal(plain(image)['depth'], models[FULL](image)['depth'])
    full = models[FULL]  # the shipped design: no up-projections, heads at 1/2, bins at 1/4
    assert (blocks(full, MultiScaleBlock), blocks(full, DilatedBlock),
            blocks(full, UpProjection)) == (4, 4, 0)
    assert full.body.reduce[0].out_channels == 128  # the context is 128 wide
    # every stage reduces channels with a 1×1 conv before upsampling, then fuses c_out + skip
    assert [up[0][0].kernel_size for up in full.body.ups] == [(1, 1)] * 4
    assert [fuse[0].in_channels for fuse in full.body.fuses] == [
        256 + 256, 128 + 128, 64 + 64, 32 + 64]
    assert (full.out_stride, full.bins_stride) == (2, 2)
    assert terms[FULL] == {'berhu', 'ssim', 'bins'}
    assert (blocks(models['no_multiscale'], MultiScaleBlock),
            blocks(models['no_multiscale'], DilatedBlock)) == (0, 4)
    assert (blocks(models['no_dilated'], DilatedBlock),
            blocks(models['no_dilated'], MultiScaleBlock)) == (0, 4)
    paper_decoder = models['upprojection_decoder']  # up-projections at 1/16, 1/8; c_in + skip
    assert blocks(paper_decoder, UpProjection) == 2
    assert [fuse[0].in_channels for fuse in paper_decoder.body.fuses] == [
        256 + 256, 128 + 128, 128 + 64, 64 + 64]
    high = models['full_resolution']
    assert (high.out_stride, high.bins_stride, len(high.body.fuses)) == (1, 4, 5)
    fused = models['head_fusion']  # 32 own + 4 × 32 from 1/4, 1/8, 1/16 and the context
    assert [lateral[0].in_channels for lateral in fused.body.laterals] == [64, 128, 256, 128]
    assert fused.depth_head.conv.in_channels == 160 and fused.out_stride == 2
    assert models['no_bins'].bin_head is None and terms['no_bins'] == {'berhu', 'ssim'}
    assert terms['no_ssim'] == {'berhu', 'bins'}
    params = {name: count_parameters(model) for name, model in models.items()}
    assert params['no_ssim'] == params[FULL]
    assert all(params[name] < params[FULL] for name in REMOVALS)
    assert params['upprojection_decoder'] > params[FULL] < params['full_resolution']
    assert params['head_fusion'] > params[FULL]


def test_the_papers_network_stays_a_named_config(repo_root):
    runs = [r for r in load_study(repo_root / STUDY).runs if r.model == 'msfusion_r18_paper']
    assert [(r.variant, r.seed) for r in runs] == [(FULL, seed) for seed in range(6)]
    paper = build_model(runs[0].model_config, load_pretrained=False)
    assert (blocks(paper, MultiScaleBlock), blocks(paper, DilatedBlock),
            blocks(paper, UpProjection)) == (4, 4, 2)
    assert paper.body.reduce[0].out_channels == 256
    assert (paper.out_stride, paper.bins_stride, len(paper.body.fuses)) == (1, 1, 5)


def write_study(path: Path, world: Path, **changes) -> Path:
    """A tiny study config (msfusion_r18 full and no_ssim, one seed, 3 steps at 64x96)."""
    study = {
        'world': str(world), 'seeds': [0],
        'variants': {'no_ssim': {'loss': {'ssim_weight': 0.0}}},
        'runs': [{'model': 'msfusion_r18', 'variants': [FULL, 'no_ssim']}],
        'fps': {'iters': 1, 'warmup': 0},
        'experiment': {
            'model': {'overrides': ['encoder.random_init=true'], 'load_pretrained': False},
            'data': {'train_split': 'splits/train_files.txt', 'input_size': [64, 96],
                     'val_split': 'splits/val_files.txt', 'train_crop': 'benchmark',
                     'num_workers': 0},
            'optim': {'lr': 5e-4},
            'train': {'iterations': 3, 'batch_size': 1, 'val_every': 0, 'checkpoint_every': 0,
                      'tensorboard': False, 'progress': False},
            'validation': {'log_images': 0},
        },
    }
    study.update(changes)
    path.write_text(yaml.safe_dump(study))
    return path


class StopAfterFirstStep:
    """Ctrl-C once a run has logged its first step (the trainer asks before every step)."""

    signal_name = 'test'

    def __init__(self, folder: Path) -> None:
        self.log = folder / METRICS_FILE

    @property
    def requested(self) -> bool:
        return self.log.is_file() and bool(self.log.read_text())


def metrics_of(results: list[dict]) -> list[tuple]:
    """(run, abs_rel, a1, rmse) of each result."""
    return [(r['model'], r['variant'], r['seed'], r['abs_rel'], r['a1'], r['rmse'])
            for r in results]


@pytest.mark.slow
def test_study_resumes_skips_finished_runs_and_repeats_its_metrics(tmp_path, synth_world,
                                                                     capsys, monkeypatch):
    # Ctrl-C once the second run has done one step; the next invocation resumes it.
    config = write_study(tmp_path / 'study.yaml', synth_world, baseline='msfusion_r18')
    second = tmp_path / 'b' / RUNS_DIR / 'msfusion_r18-no_ssim-seed0'
    cut = run_study(load_study(config), tmp_path / 'b', StopAfterFirstStep(second),
                    progress=False)
    assert (cut.status, cut.trained, len(cut.results)) == ('interrupted', 1, 1)
    assert [step for step, _ in step_checkpoints(second)] == [1]
    resumed = run_study(load_study(config), tmp_path / 'b', progress=False)
    assert (resumed.status, resumed.trained, len(resumed.results)) == ('completed', 1, 2)
    document = json.loads((tmp_path / 'b' / RESULTS_JSON).read_text())
    for run in document['runs']:
        assert {'model', 'variant', 'seed', 'steps', 'wall_s', 'abs_rel', 'a1', 'rmse',
                'params_m', 'gflops', 'cpu_fps'} <= set(run)
        assert run['steps'] == 3 and run['wall_s'] > 0 and run['cpu_fps'] > 0
        assert [point['step'] for point in run['curve']] == [3]
    assert not list((tmp_path / 'b' / RUNS_DIR).rglob('*.pt')), 'checkpoints are dropped'
    table = [line for line in (tmp_path / 'b' / RESULTS_MD).read_text().splitlines()
             if line.startswith('| msfusion_r18')]
    assert [line.split(' | ')[1] for line in table] == [FULL, 'no_ssim']
    ratio = document['runs'][1]['abs_rel'] / document['runs'][0]['abs_rel']
    assert [line.split(' | ')[-1] for line in table] == ['1.000 |', f'{ratio:.3f} |']
    assert document['baseline'] == 'msfusion_r18'
    assert (tmp_path / 'b' / PLOT_STEP).stat().st_size and (tmp_path / 'b' / PLOT_WALL).exists()

    # Same seed, same metrics: the resumed run and an uninterrupted one in another folder.
    alone = write_study(tmp_path / 'alone.yaml', synth_world,
                        runs=[{'model': 'msfusion_r18', 'variants': ['no_ssim']}])
    straight = run_study(load_study(alone), tmp_path / 'a', progress=False)
    assert straight.trained == 1
    assert metrics_of(straight.results) == metrics_of(resumed.results[1:])

    # Finished runs are skipped: nothing is trained or rewritten.
    finished = [path.stat().st_mtime_ns for path in sorted((tmp_path / 'b').rglob(RESULT_FILE))]
    code = main(['--config', str(config), '--out', str(tmp_path / 'b'), '--no-progress'])
    out = capsys.readouterr().out
    assert code == 0 and '0 run(s) trained now, 2 of 2 finished' in out
    assert '| msfusion_r18 | no_ssim | 1 |' in out
    assert finished == [p.stat().st_mtime_ns for p in sorted((tmp_path / 'b').rglob(RESULT_FILE))]

    changed = write_study(tmp_path / 'changed.yaml', synth_world)
    changed.write_text(changed.read_text().replace('iterations: 3', 'iterations: 4'))
    with pytest.raises(ConfigError, match='trained with other settings'):
        run_study(load_study(changed), tmp_path / 'b', progress=False)

    # An edited models/msfusion_r18.yaml (here its bins weight) makes its finished runs stale.
    resolve = study_config.resolve_model_config

    def edited(experiment):
        model_config = resolve(experiment)
        model_config['loss']['bins_weight'] = 0.2
        return model_config

    monkeypatch.setattr(study_config, 'resolve_model_config', edited)
    with pytest.raises(ConfigError, match='other settings .experiment, model config or world'):
        run_study(load_study(config), tmp_path / 'b', progress=False)


@pytest.mark.parametrize('changes, message', [
    ({'runs': [{'model': 'msfusion_r18', 'variants': [FULL, 'no_such']}]},
     r"unknown variant\(s\) \['no_such'\]"),
    ({'stepz': 400}, r"unknown key\(s\) \['stepz'\]"),
    ({'variants': {'no_ssim': {'loss': {'ssim_wieght': 0.0}}}},
     r"variant 'no_ssim'.*unknown key\(s\) \['ssim_wieght'\]"),
    ({'variants': {'no_ssim': {'model': ['decoder.dilated_blocks=0']}},
      'runs': [{'model': 'unet_r18', 'variants': ['no_ssim']}]},
     r"unet_r18 variant 'no_ssim'.*'dilated_blocks' is not in decoder"),
    ({'variants': {'no_ssim': {'model': ['decoder.dilated_blocks=4']}}},
     r"variant 'no_ssim' leaves msfusion_r18 unchanged"),
    ({'seeds': [0, 0]}, r'seeds must be a non-empty list of distinct integers'),
    ({'experiment': {'train': {'seed': 3}}}, r'train\.seed is set per run by seeds'),
])
def test_bad_study_configs_are_refused_naming_the_problem(tmp_path, synth_world, changes,
                                                          message):
    with pytest.raises(ConfigError, match=message):
        load_study(write_study(tmp_path / 'bad.yaml', synth_world, **changes))


def test_missing_world_is_refused_before_training(tmp_path, synth_world, capsys):
    config = write_study(tmp_path / 'study.yaml', tmp_path / 'no_world')
    code = main(['--config', str(config), '--out', str(tmp_path / 'out'), '--no-progress'])
    err = capsys.readouterr().err
    assert code == 2 and f'world {tmp_path / "no_world"} is not a directory' in err
    assert not (tmp_path / 'out' / RUNS_DIR).exists()
    empty = tmp_path / 'empty_world'
    empty.mkdir()
    with pytest.raises(ConfigError, match=r'data\.train_split .*split file not found'):
        run_study(load_study(config, world=empty), tmp_path / 'out', progress=False)


def test_summary_is_mean_and_sample_std_over_seeds():
    runs = [{'model': 'm', 'variant': v, 'seed': s, 'abs_rel': a, 'a1': 0.9, 'rmse': 3.0,
             'wall_s': 10.0, 'params_m': 1.0, 'gflops': 2.0, 'cpu_fps': 5.0}
            for v, s, a in ((FULL, 0, 0.10), (FULL, 1, 0.14), ('x', 0, 0.09))]
    full, x = summarize(runs)
    assert full['abs_rel'] == pytest.approx(0.12) and full['seeds'] == [0, 1]
    assert full['abs_rel_std'] == pytest.approx(0.02 * 2 ** 0.5)  # sqrt((0.02² + 0.02²) / 1)
    # x ran at seed 0 only: compared with full's seed 0 (0.10), not full's mean over 0 and 1
    assert x['abs_rel_std'] is None and x['abs_rel_vs_full'] == pytest.approx(-0.1)


def test_abs_rel_against_a_baseline_model(tmp_path, repo_root):
    runs = [{'model': m, 'variant': FULL, 'seed': s, 'abs_rel': a, 'a1': 0.9, 'rmse': 3.0,
             'wall_s': 10.0, 'params_m': 1.0, 'gflops': 2.0, 'cpu_fps': 5.0}
            for m, s, a in (('base', 0, 0.10), ('base', 1, 0.14), ('new', 0, 0.09),
                            ('new', 1, 0.10))]
    base, new = summarize(runs, baseline='base')
    assert base['abs_rel_vs_baseline'] == pytest.approx(1.0)
    assert new['abs_rel_vs_baseline'] == pytest.approx(0.095 / 0.12)
    extra = {**runs[0], 'seed': 2, 'abs_rel': 0.30}  # a baseline seed 'new' did not run
    assert summarize([*runs, extra], baseline='base')[1]['abs_rel_vs_baseline'] == \
        pytest.approx(0.095 / 0.12)
    assert summarize(runs[2:], baseline='base')[0]['abs_rel_vs_baseline'] is None
    assert all(row['abs_rel_vs_baseline'] is None for row in summarize(runs))
    study = load_study(repo_root / STUDY)
    assert study.baseline == 'unet_r18'
    config = yaml.safe_load((repo_root / STUDY).read_text())
    config['baseline'] = 'fcrn_r18'
    (tmp_path / 'bad.yaml').write_text(yaml.safe_dump(config))
    with pytest.raises(ConfigError, match=r"baseline 'fcrn_r18' must be a model whose variant "
                                          r"full the runs list; they list \['fcrn_r50', "):
        load_study(tmp_path / 'bad.yaml')


def test_committed_study_results_are_complete_and_the_studies_page_shows_them(repo_root):
    document = json.loads((repo_root / 'docs/study' / RESULTS_JSON).read_text())
    seeds = {}
    for run in document['runs']:
        assert run['steps'] == 300
        seeds.setdefault((run['model'], run['variant']), set()).add(run['seed'])
    assert all(found == (set(range(6)) if pair in {(m, FULL) for m in COMPARED} else
                         {0, 1} if pair[0] == 'fcrn_r50' else set(range(4)))
               for pair, found in seeds.items())
    assert {('msfusion_r18', FULL), ('unet_r18', FULL), ('fcrn_r50', FULL)} <= set(seeds)
    assert len([pair for pair in seeds if pair[0] == 'msfusion_r18' and pair[1] != FULL]) >= 5
    page = (repo_root / 'docs' / 'studies.md').read_text()
    rows = [line for line in (repo_root / 'docs/study' / RESULTS_MD).read_text().splitlines()
            if line.startswith('| ')]
    assert len(rows) == 2 + len(seeds) and '\n'.join(rows) in page
    for name in (PLOT_STEP, PLOT_WALL):
        assert (repo_root / 'docs/study' / name).stat().st_size > 0
