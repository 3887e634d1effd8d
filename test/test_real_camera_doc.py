"""docs/real_camera.md: its tables are the rows of the committed docs/real_camera/results.json."""

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = json.loads((ROOT / 'docs' / 'real_camera' / 'results.json').read_text())
DOC = (ROOT / 'docs' / 'real_camera.md').read_text()
REGIONS = ('road', 'objects', 'vegetation', 'skyline')


def study_row(run: dict) -> str:
    """The study table's row of one run."""
    real, basic, varied = run['real'], run['unseen_basic'], run['unseen_varied']
    regions = ' | '.join(f'{real["regions"][name]:.3f}' for name in REGIONS)
    return (f'| {run["run"]} | {run["network"]} | {run["world"]} | {run["augment"]} | '
            f'{run["steps"]} | {real["abs_rel"]:.3f} | {real["a1"]:.3f} | {real["scale"]:.3f} | '
            f'{real["ms_abs_rel"]:.3f} | {regions} | {basic["abs_rel"]:.3f} / {basic["a1"]:.3f} | '
            f'{varied["abs_rel"]:.3f} / {varied["a1"]:.3f} |')


def test_the_study_table_is_the_results_file():
    for run in RESULTS:
        assert study_row(run) in DOC, run['run']


def test_the_per_frame_table_is_the_results_file():
    runs = {run['run']: run for run in RESULTS}
    columns = [runs[name]['real_per_frame_abs_rel']
               for name in ('previous_release', 'first_release', 'release')]
    assert len(columns[0]) == 18
    for frame in columns[0]:
        row = f'| {frame} | ' + ' | '.join(f'{column[frame]:.3f}' for column in columns) + ' |'
        assert row in DOC, frame


def test_the_release_row_is_the_model_card():
    release = {run['run']: run for run in RESULTS}['release']
    card = (ROOT / 'models' / 'msfusion_r18.md').read_text()
    real = release['real']
    assert (f'| this release | {real["abs_rel"]:.3f} | {real["a1"]:.3f} | {real["rmse"]:.2f} | '
            f'{real["scale"]:.3f} | {real["ms_abs_rel"]:.3f} |') in card


def test_the_few_frames_table_is_its_results_file():
    few = json.loads((ROOT / 'docs' / 'real_camera' / 'few_frames.json').read_text())
    assert len(few['rows']) == 2
    for run in few['rows']:
        name = Path(run['trained_on']).stem.replace('real_object_', '')
        scored = Path(run['scored_on']).stem.replace('real_object_', '')
        cells = [f'{run[key]["abs_rel"]:.3f} / {run[key]["a1"]:.3f}'
                 for key in ('release', 'fine_tuned', 'fine_tuned_on_its_training_frames')]
        assert f'| {name} (9) | {scored} (9) | ' + ' | '.join(cells) + ' |' in DOC, name
