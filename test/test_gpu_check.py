"""make gpu-check: its report logic, and the part that runs without a GPU."""

import json

import pytest
import torch

from mono_depth_ros.bench import gpu_check
from mono_depth_ros.tools import gpu_check as tool


def test_pytest_summary_counts():
    line = '3 passed, 2 skipped, 1 failed, 1 error, 40 deselected in 12.3s'
    assert gpu_check.pytest_counts(line) == {'passed': 3, 'failed': 1, 'skipped': 2,
                                             'errors': 1, 'deselected': 40}
    assert gpu_check.pytest_counts('8 skipped, 500 deselected in 30s')['skipped'] == 8


def test_a_raising_check_is_a_failed_row_and_others_go_on():
    def broken():
        raise RuntimeError('provider did not load')

    failed = gpu_check.guarded('ONNX Runtime CUDA provider', broken)
    assert failed['status'] == 'fail' and 'RuntimeError: provider did not load' in failed['detail']
    fine = gpu_check.guarded('x', lambda: gpu_check.row('x', 'pass', 'ok', p50_ms=1.0))
    text = gpu_check.markdown({'torch': '2.13'}, [failed, fine])
    assert '| ONNX Runtime CUDA provider | fail |' in text and '| x | pass |' in text
    with pytest.raises(ValueError, match='status must be one of'):
        gpu_check.row('x', 'ok')


@pytest.mark.skipif(torch.cuda.is_available(), reason='checks the refusal without CUDA')
def test_without_cuda_refuses_or_skips(tmp_path, capsys):
    assert tool.main(['--require-cuda', '--out', str(tmp_path / 'a')]) == 1
    assert 'CUDA is not available' in capsys.readouterr().err
    from mono_depth_ros.inference.tensorrt import TensorRTDepthEstimator, TensorRTError
    with pytest.raises(TensorRTError, match='needs a CUDA device'):
        TensorRTDepthEstimator(tmp_path / 'model.onnx')
    assert gpu_check.tensorrt_check('msfusion_r18', (32, 96), 'fp16', tmp_path)['status'] == \
        'skip'


@pytest.mark.slow
def test_cpu_part_of_the_gpu_check_runs(tmp_path):
    out = tmp_path / 'report'
    assert tool.main(['--device', 'cpu', '--quick', '--skip-tests', '--out', str(out)]) == 0
    report = json.loads((out / 'gpu_check.json').read_text())
    rows = {r['check']: r for r in report['checks']}
    assert rows['mono-depth-bench fp32']['status'] == 'pass'
    assert rows['mono-depth-bench fp32']['model'][0]['model'] == 'msfusion_r18'
    onnx = rows['ONNX Runtime CPU provider']
    assert onnx['status'] == 'pass' and onnx['max_rel_diff'] < 1e-3 and onnx['p50_ms'] > 0
    if not torch.cuda.is_available():
        assert rows['TensorRT engine fp32']['status'] == 'skip'
    assert (out / 'gpu_check.md').read_text().startswith('# make gpu-check')


def test_the_bench_rows_node_stages_are_reported_beside_the_network():
    stages = {'delivery to node': 0.5, 'preprocess + network': 4.0, 'post: points': 1.5,
              'publish: points': 0.5, 'delivery to client': 0.5}
    node = {'model': 'msfusion_r18', 'backend': 'node (fast)', 'p50_ms': 7.5, 'p99_ms': 9.0,
            'stages_p50_ms': stages}
    assert gpu_check.own_cost(node) == \
        ' (stages p50: network 4.0 ms, everything else 3.0 ms)'
    assert gpu_check.own_cost({**node, 'stages_p50_ms': None}) == ''
    bench = gpu_check.row('mono-depth-bench fp16', 'pass', 'ok', node=[node])
    text = gpu_check.markdown({'torch': '2.13'}, [bench])
    assert '| stage | mono-depth-bench fp16: msfusion_r18 node (fast) |' in text
    assert '| preprocess + network | 4.00 |' in text and '| post: points | 1.50 |' in text
