"""mono-depth-bench: statistics, peak rates, ratios, the report, a quick real run (CPU, DDS)."""

import json
import math
import mmap

import pytest
import torch

from mono_depth_ros.bench.camera_bench import rig_commands, summarize_rounds
from mono_depth_ros.bench.node_bench import bench_node_command, summarize_soak
from mono_depth_ros.bench.report import compute_ratios, markdown, pair_ratio_row
from mono_depth_ros.timing import model_timing
from mono_depth_ros.timing.device import (
    lookup_gpu_peak,
    peak_memory_mib,
    probe_peak_tflops,
    reset_peak_memory,
)
from mono_depth_ros.timing.latency import drift, paired_speedup, summarize_latency
from mono_depth_ros.tools import bench as bench_tool


def test_latency_summary_hand_checked():
    summary = summarize_latency([10.0, 20.0, 30.0, 40.0])
    assert summary['p50_ms'] == 25.0 and summary['mean_ms'] == 25.0
    assert summary['p99_ms'] == pytest.approx(39.7)  # 30 + 0.97 · 10, linear interpolation
    assert summary['fps'] == pytest.approx(40.0)  # 4 frames in 100 ms
    assert summarize_latency([10.0, 20.0, 30.0, 40.0], batch=2)['fps'] == pytest.approx(80.0)
    with pytest.raises(ValueError, match='no latencies'):
        summarize_latency([])
    with pytest.raises(ValueError, match='finite'):
        summarize_latency([1.0, -2.0])
    assert drift([10.0, 12.0, 14.0], [18.0, 18.0]) == {
        'first_p50_ms': 12.0, 'last_p50_ms': 18.0, 'ratio': 1.5}
    assert math.isnan(drift([], [1.0])['ratio'])
    # rounds (ref, other): (100, 50) 2×, (300, 100) 3× while the machine was busy, (90, 100) 0.9×
    assert paired_speedup([100.0, 300.0, 90.0], [50.0, 100.0, 100.0]) == 2.0
    with pytest.raises(ValueError, match='same number'):
        paired_speedup([1.0, 2.0], [1.0])


def test_soak_summary_hand_checked():
    # RSS grows 1 MiB every 10 s: 6 MiB/min; GPU unknown (CPU). 10 frames, 2 never came back.
    samples = [(t, 500.0 + t / 10.0, None) for t in range(0, 31, 10)]
    frames = [(t * 3.0, 100.0 + t) for t in range(8)] + [(27.0, None), (28.0, None)]
    soak = summarize_soak(samples, frames, duration_s=30.0, rate_hz=1 / 3, window_s=10.0)
    assert (soak['sent'], soak['completed'], soak['dropped']) == (10, 8, 2)
    assert soak['drop_fraction'] == pytest.approx(0.2)
    assert soak['rss']['growth_mib'] == pytest.approx(3.0)
    assert soak['rss']['slope_mib_per_min'] == pytest.approx(6.0)
    assert soak['gpu_memory']['growth_mib'] is None
    # first window: frames at 0, 3, 6, 9 s (100..103 ms); last window (>= 20 s): 21 s (107 ms)
    assert soak['latency_drift']['first_p50_ms'] == pytest.approx(101.5)
    assert soak['latency_drift']['last_p50_ms'] == pytest.approx(107.0)


def test_gpu_peak_table_and_cpu_probe():
    assert lookup_gpu_peak('NVIDIA H100 80GB HBM3', 'fp16') == 989.0
    assert lookup_gpu_peak('NVIDIA H100 PCIe', 'fp32') == 51.0
    assert lookup_gpu_peak('NVIDIA L40S', 'fp32') == 91.6
    assert lookup_gpu_peak('NVIDIA L4', 'fp32') == 30.3
    assert lookup_gpu_peak('NVIDIA A100-SXM4-40GB', 'bf16') == 312.0
    assert lookup_gpu_peak('Some Future GPU', 'fp32') is None
    tflops = probe_peak_tflops(torch.device('cpu'), size=256, repeats=2)
    assert 1e-4 < tflops < 100.0  # a CPU core does at least 0.1 GFLOP/s, no CPU does 100 TF


def test_peak_rss_window_sees_an_allocation():
    cpu = torch.device('cpu')
    start = reset_peak_memory(cpu)
    # 64 MiB of fresh pages (a new anonymous mapping: malloc could hand back memory that is
    # still resident from an earlier test, which would not raise the RSS), every page touched
    block = mmap.mmap(-1, 64 * 2 ** 20)
    for offset in range(0, len(block), mmap.PAGESIZE):
        block[offset] = 1
    block.close()
    peak, kind = peak_memory_mib(cpu)
    assert kind.startswith('rss_peak') and peak - start > 50.0


def test_ratios_and_markdown():
    row = {'input_size': [352, 1216], 'params_m': 1.0, 'gflops': 2.0, 'p50_ms': 1.0,
           'p99_ms': 2.0, 'peak_memory_mib': 3.0, 'peak_fraction': 0.5, 'first_call_ms': 2500.0,
           'max_rel_diff_vs_reference': None}
    rows = [{**row, 'model': 'msfusion_r18', 'backend': 'reference', 'fps': 30.0},
            {**row, 'model': 'msfusion_r18', 'backend': 'fast', 'fps': 45.0,
             'speedup_vs_reference': 1.5},
            {**row, 'model': 'fcrn_r50', 'backend': 'reference', 'fps': 24.0},
            {**row, 'model': 'unet_r18', 'backend': 'reference', 'fps': 30.0},
            {**row, 'model': 'unet_r18', 'backend': 'fast', 'fps': 50.0}]
    ratios = {(r['what'], r['backend']): r for r in compute_ratios(rows)}
    target = ratios[('msfusion_r18 / fcrn_r50 throughput', 'reference')]
    assert target['ratio'] == pytest.approx(1.25) and target['met'] is False
    unet = [ratios[('msfusion_r18 / unet_r18 throughput', b)] for b in ('reference', 'fast')]
    assert [(r['ratio'], r['target'], r['met']) for r in unet] == [
        (1.0, 1.0, True), (pytest.approx(0.9), 1.0, False)]
    assert ratios[('msfusion_r18 fast / reference speed (median of paired calls)',
                   'fast')]['ratio'] == 1.5
    results = {'device': {'name': 'x', 'type': 'cpu', 'torch': '2', 'peak_tflops': 1.0,
                          'precision': 'fp32', 'peak_source': 'probe'},
               'settings': {'iters': 3, 'batch': 1, 'camera_size': [375, 1242]},
               'model': rows, 'node': [], 'ratios': list(ratios.values()), 'soak': None}
    text = markdown(results)
    assert '| msfusion_r18 | 352×1216 | fast |' in text and '50.0 |' in text
    assert '| 45.00 | 2.50 | 3 |' in text  # frames/s, first call in s, peak memory
    assert '1.25× (target ≥ 1.5×: NOT met)' in text
    node = {'model': 'msfusion_r18', 'input_size': [192, 640], 'count': 60, 'lost': 0}
    results['node'] = [{**node, 'backend': 'node (torch)', 'p50_ms': 500.0, 'p99_ms': 900.0},
                       {**node, 'backend': 'node (fast)', 'p50_ms': 400.0, 'p99_ms': 1000.0}]
    text = markdown(results)
    assert '| msfusion_r18 | 192×640 | node (fast) | 400.0 | 1000.0 | 2.50 | 60 | 0 |' in text
    assert 'node p99 ≤ 2× p50 (steady latency): 1 of 2 runs (NOT met)' in text


def test_camera_rigs_share_topics_and_report_totals():
    one = rig_commands('msfusion_r18', (96, 320), '/ns', 2, 'one process')
    assert len(one) == 1 and "cameras:=['cam0', 'cam1']" in one[0]
    assert '__ns:=/ns' in one[0]
    apart = rig_commands('msfusion_r18', (96, 320), '/ns', 2, 'one process per camera')
    assert [c[c.index('-r') + 1] for c in apart] == ['__ns:=/ns/cam0', '__ns:=/ns/cam1']
    assert not [arg for c in apart for arg in c if arg.startswith('cameras:=')]
    with pytest.raises(ValueError, match='layout'):
        rig_commands('msfusion_r18', (96, 320), '/ns', 2, 'threads')
    row = summarize_rounds([100.0, 200.0, 300.0, 400.0], 1, 2.0,
                           {'rss_mib': 900.0, 'gpu_mib': None})
    assert row['total_fps'] == 2.0 and row['lost'] == 1 and 'fps' not in row
    assert row['p50_ms'] == 250.0 and row['count'] == 4
    results = {'device': {'name': 'x', 'type': 'cpu', 'torch': '2', 'peak_tflops': 1.0,
                          'precision': 'fp32', 'peak_source': 'probe'},
               'settings': {'iters': 3, 'batch': 1, 'camera_size': [375, 1242]},
               'model': [], 'node': [], 'ratios': [], 'soak': None,
               'cameras': [{'model': 'msfusion_r18', 'input_size': [96, 320],
                            'backend': 'fast', 'cameras': 2, 'layout': 'one process',
                            'processes': 1, **row}]}
    assert '| 2 | one process | 1 | 2.00 | 250.0 | 397.0 | 4 | 1 | 900 | – |' in \
        markdown(results)


def test_node_command_and_bad_arguments():
    command = bench_node_command('fcrn_r50', (192, 640), '/ns', 'cpu', 'fp32')
    assert command[1:4] == ['-m', 'mono_depth_ros.ros.node', '--ros-args']
    assert 'input_height:=192' in command and 'model_config:=fcrn_r50' in command
    with pytest.raises(SystemExit):
        bench_tool.main(['--sizes', '192by640'])
    with pytest.raises(SystemExit, match='iters'):
        bench_tool.main(['--iters', '0'])
    with pytest.raises(SystemExit, match='--cameras'):
        bench_tool.main(['--cameras', '0'])


@pytest.mark.slow
@pytest.mark.ros
def test_quick_run_writes_json_and_table(tmp_path, capsys):
    out = tmp_path / 'bench'
    assert bench_tool.main(['--quick', '--device', 'cpu', '--soak-minutes', '0.05',
                            '--out', str(out)]) == 0
    results = json.loads((out / 'bench.json').read_text())
    rows = {r['backend']: r for r in results['model']}
    assert set(rows) == {'reference', 'fast'}
    for row in rows.values():
        assert row['model'] == 'msfusion_r18' and row['input_size'] == [32, 96]
        assert row['count'] == 2 and row['fps'] > 0 and row['p99_ms'] >= row['p50_ms'] > 0
        assert row['params_m'] > 1 and row['gflops'] > 0 and row['peak_memory_mib'] > 100
        assert 0 < row['peak_fraction'] < 1
    assert rows['fast']['max_rel_diff_vs_reference'] < 1e-4
    assert [r['what'] for r in results['ratios']] == [
        'msfusion_r18 fast / reference speed (median of paired calls)']
    assert rows['fast']['speedup_vs_reference'] > 0
    assert rows['reference']['speedup_vs_reference'] == 1.0
    nodes = {r['backend']: r for r in results['node']}
    assert set(nodes) == {'node (torch)', 'node (fast)'}
    for node in nodes.values():
        assert node['count'] + node['lost'] == 2 and node['count'] >= 1 and node['p50_ms'] > 0
        stages = node['stages_p50_ms']  # the node's stage_times and the client's own times
        assert list(stages)[0] == 'delivery to node' and list(stages)[-1] == 'delivery to client'
        assert {'handover', 'decode', 'preprocess', 'network', 'post: points',
                'message: depth', 'publish: points'} <= set(stages)
        assert 'message: confidence' not in stages  # nobody subscribes to it
        assert node['model_only_p50_ms'] > 0 and node['node_over_model'] > 0
    pipelines = {r['backend']: r for r in results['pipeline']}
    assert set(pipelines) == {'pipeline (torch)', 'pipeline (fast)'}
    for row in pipelines.values():
        assert row['count'] == 2 and row['p50_ms'] > 0 and row['model_only_p50_ms'] > 0
        assert row['topics'] == ['depth', 'depth/camera_info', 'points']
        assert {'decode', 'network', 'post: points', 'message: points'} <= \
            set(row['stages_p50_ms'])
    assert rows['fast']['first_call_ms'] > 0
    soak = results['soak']
    assert soak['sent'] >= 60 and soak['completed'] >= 1  # 30 Hz for 3 s
    assert soak['backend'] == 'fast'  # the last of --node-backends
    assert soak['dropped'] == soak['sent'] - soak['completed']
    assert soak['rss']['first_mib'] > 100 and soak['rss']['growth_mib'] is not None
    assert soak['gpu_memory']['growth_mib'] is None  # no GPU here
    assert {'first_p50_ms', 'last_p50_ms', 'ratio'} <= set(soak['latency_drift'])
    cameras = {r['layout']: r for r in results['cameras']}
    assert set(cameras) == {'one process', 'one process per camera'}
    for row in cameras.values():
        assert row['cameras'] == 2 and row['count'] + row['lost'] == 4 and row['count'] >= 1
        assert 'network' in row['stages_p50_ms']
        assert row['total_fps'] > 0 and row['rss_mib'] > 100
    assert cameras['one process']['processes'] == 1
    assert cameras['one process per camera']['processes'] == 2
    table = (out / 'bench.md').read_text()
    assert '| 2 | one process per camera | 2 |' in table
    assert '| msfusion_r18 | 32×96 | reference |' in table and 'Soak: msfusion_r18' in table
    assert '| msfusion_r18 | 32×96 | node (fast) |' in table
    assert '| stage | pipeline (torch), 32×96 | pipeline (fast), 32×96 | node (torch), 32×96 |' \
        in table and '| **end to end p50** |' in table
    assert 'node end to end (fast) p50' in table and 'in-process pipeline (fast) p50' in table
    assert table in capsys.readouterr().out


def test_pair_speed_alternates_the_two_networks_and_takes_the_median_ratio(monkeypatch):
    order = []

    def fake_interleaved(calls, iters, warmup):
        for _ in range(iters):
            for key, call in calls.items():
                order.append(key)
                call()
        return {'first': [10.0, 20.0, 30.0], 'baseline': [20.0, 20.0, 90.0]}

    monkeypatch.setattr(model_timing, 'time_interleaved', fake_interleaved)
    ratio = model_timing.pair_speed('msfusion_r18', 'unet_r18', (32, 96), 'fast', 'cpu',
                                   iters=3, warmup=0)
    assert ratio == 2.0  # median of 20/10, 20/20, 90/30
    assert order == ['first', 'baseline'] * 3
    row = pair_ratio_row('msfusion_r18', 'unet_r18', 1.0, (192, 640), 'fast', ratio)
    rows = compute_ratios([], [row])
    assert rows == [row] and row['met'] is True
    assert row['what'] == 'msfusion_r18 / unet_r18 speed (median of alternating calls)'
    # measured for real: a positive ratio from alternating calls at a tiny size
    monkeypatch.undo()
    assert model_timing.pair_speed('msfusion_r18', 'unet_r18', (32, 96), 'fast', 'cpu',
                                  iters=2, warmup=0) > 0
