"""mono-depth-train: input errors before training, corrupt checkpoints, Ctrl-C, torchrun DDP."""

import json
import os
from pathlib import Path
import signal
import subprocess
import sys
import time

import pytest
import torch

from mono_depth_ros.networks.checkpoint import load_checkpoint, load_model
from mono_depth_ros.tools.train import main
from mono_depth_ros.training.checkpoints import step_checkpoints
from mono_depth_ros.training.reporting import METRICS_FILE

SYNTH = 'config/train/synth_msfusion_r18.yaml'
QUIET = ['data.input_size=[64, 224]', 'train.tensorboard=false', 'train.progress=false',
         'validation.max_frames=1']


@pytest.fixture(autouse=True)
def _train_on_one_thread(one_torch_thread):
    """Every test here trains on one thread (see the one_torch_thread fixture)."""


def run_main(capsys, *argv):
    """Run the CLI in-process; return (exit code, stdout, stderr)."""
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_bad_inputs_are_errors_before_training(capsys, repo_root, tmp_path, synth_world):
    config = repo_root / SYNTH
    bad = tmp_path / 'bad.yaml'
    bad.write_text('optim:\n  learning_rate: 0.1\n')
    code, _, err = run_main(capsys, '--config', bad, '--data-path', synth_world)
    assert code == 2
    assert "unknown key(s) ['learning_rate']" in err and "'weight_decay'" in err
    code, _, err = run_main(capsys, '--config', config, '--data-path', synth_world,
                            '--out', tmp_path / 'o', 'train.iteration=3')
    assert code == 2 and "'iteration' is not in train" in err
    code, _, err = run_main(capsys, '--config', config, '--data-path', tmp_path / 'no_world',
                            '--out', tmp_path / 'o')
    assert code == 2 and f'data path {tmp_path / "no_world"} is not a directory' in err
    blocker = tmp_path / 'a_file'
    blocker.write_text('')
    code, _, err = run_main(capsys, '--config', config, '--data-path', synth_world,
                            '--out', blocker / 'out')
    assert code == 2 and f'output directory {blocker / "out"} is not writable' in err
    code, _, err = run_main(capsys, '--config', config, '--data-path', synth_world,
                            '--out', tmp_path / 'empty', '--resume')
    assert code == 2 and 'no step_<N>.pt checkpoint in' in err
    assert not (tmp_path / 'o').exists(), 'nothing is written before the inputs are checked'


def test_corrupted_checkpoint_is_a_clear_error_on_resume(capsys, repo_root, tmp_path,
                                                         synth_world):
    out = tmp_path / 'run'
    code, stdout, _ = run_main(capsys, '--config', repo_root / SYNTH, '--data-path',
                               synth_world, '--out', out, *QUIET, 'train.iterations=1',
                               'train.batch_size=1', 'data.num_workers=0')
    assert code == 0 and 'done: 1 steps' in stdout
    path = out / 'step_00000001.pt'
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    code, _, err = run_main(capsys, '--data-path', synth_world, '--out', out, '--resume')
    assert code == 2 and str(path) in err and 'Traceback' not in err
    path.write_bytes(b'not a checkpoint at all')
    code, _, err = run_main(capsys, '--data-path', synth_world, '--resume', path)
    assert code == 2 and str(path) in err


def wait_for(predicate, timeout, process):
    """Poll predicate until true; fail when the process exits or the time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if process.poll() is not None:
            pytest.fail(f'trainer exited early: {process.communicate()}')
        time.sleep(0.2)
    process.kill()
    pytest.fail(f'timed out: {process.communicate()}')


@pytest.mark.slow
def test_ctrl_c_writes_a_checkpoint_and_exits_cleanly(repo_root, tmp_path, synth_world):
    out = tmp_path / 'run'
    command = [sys.executable, '-m', 'mono_depth_ros.tools.train', '--config',
               str(repo_root / SYNTH), '--data-path', str(synth_world), '--out', str(out),
               *QUIET, 'train.iterations=100000', 'train.batch_size=1', 'data.num_workers=1',
               'train.val_every=0', 'train.checkpoint_every=0']
    # A new session, so that SIGINT goes to the trainer and its loader worker, as Ctrl-C does.
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, start_new_session=True, cwd=tmp_path,
                               env={**os.environ, 'OMP_NUM_THREADS': '1'})
    metrics = out / METRICS_FILE
    wait_for(lambda: metrics.is_file() and metrics.read_text().strip(), 120, process)
    os.killpg(process.pid, signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert 'Traceback' not in stderr
    ((step, path),) = step_checkpoints(out)
    assert f'interrupted (SIGINT) at step {step}' in stdout and step >= 1
    extra = load_checkpoint(path)['extra']
    assert extra['step'] == step and extra['epoch'] * 3 + extra['epoch_batch'] == step


@pytest.mark.slow
def test_torchrun_two_process_ddp_run(repo_root, tmp_path, synth_world):
    out = tmp_path / 'ddp'
    command = [sys.executable, '-m', 'torch.distributed.run', '--standalone',
               '--nproc_per_node', '2', '-m', 'mono_depth_ros.tools.train',
               '--config', str(repo_root / SYNTH), '--data-path', str(synth_world),
               '--out', str(out), *QUIET, 'train.iterations=2', 'train.batch_size=2',
               'data.num_workers=0', 'train.val_every=2']
    env = {**os.environ, 'OMP_NUM_THREADS': '1'}
    result = subprocess.run(command, capture_output=True, text=True, timeout=240, env=env,
                            cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count('done: 2 steps') == 1, 'only rank 0 reports'
    path = out / 'step_00000002.pt'
    extra = load_checkpoint(path)['extra']
    assert extra['world_size'] == 2 and len(extra['rng']) == 2
    # 3 frames over 2 ranks (padded to 4), 1 per rank per step: 2 steps fill epoch 0.
    assert (extra['epoch'], extra['epoch_batch']) == (0, 2)
    model = load_model(path)
    depth = model(torch.zeros(1, 3, 64, 224))['depth']
    assert depth.shape == (1, 1, 64, 224) and torch.isfinite(depth).all()
    rows = [json.loads(line) for line in (out / METRICS_FILE).read_text().splitlines()]
    assert [row['step'] for row in rows if row['kind'] == 'val'] == [2]


def test_benchmark_reports_images_per_second(capsys, repo_root):
    code, out, _ = run_main(capsys, '--config', repo_root / SYNTH, '--benchmark-steps', 1,
                            'data.input_size=[64, 96]', 'train.batch_size=1')
    assert code == 0
    result = json.loads(out.strip().splitlines()[-1])
    assert result['batch_size'] == 1 and result['input_size'] == [64, 96]
    assert result['images_per_s'] > 0 and result['model'] == 'msfusion_r18'
    assert Path(repo_root / SYNTH).is_file()
