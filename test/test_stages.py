"""Stage marks (core.stages), the node bench's per-frame stages and the stage table."""

import threading

from output_golden import ALL_TOPICS, BENCH_TOPICS, FormulaEstimator, frame_messages
import pytest

from mono_depth_ros.bench.node_bench import frame_stages
from mono_depth_ros.bench.report import markdown
from mono_depth_ros.core import stages
from mono_depth_ros.core.stages import recording, stage_durations, StageClock
from mono_depth_ros.inference.outputs import OutputSettings
from mono_depth_ros.ros.depth_messages import stage_marks, stage_times_message
from mono_depth_ros.ros.params import load_defaults
from mono_depth_ros.ros.pipeline import FramePipeline
from mono_depth_ros.timing.latency import summarize_stages


def test_durations_are_differences_of_marks_and_repeated_stages_add_up():
    assert stage_durations([('start', 1.0), ('a', 1.5), ('b', 1.75), ('a', 2.0)]) == {
        'a': 0.75, 'b': 0.25}
    clock = StageClock(10.0, 'received')
    clock.mark('decode', 10.002)
    clock.extend([('network', 10.1)])
    assert clock.durations() == pytest.approx({'decode': 0.002, 'network': 0.098})
    assert clock.last() == 10.1 and StageClock().last() is None


def test_marks_go_to_the_clock_recording_on_this_thread_only():
    clock, other = StageClock(0.0), StageClock(0.0)
    stages.mark('nowhere')  # no clock: nothing happens
    with recording(clock):
        stages.mark('a')
        thread = threading.Thread(target=lambda: stages.mark('b'))  # another thread: not here
        thread.start()
        thread.join()
        with recording(other):
            stages.mark('c')
        stages.mark('d')
    stages.mark('e')
    assert [name for name, _ in clock.marks] == ['start', 'a', 'd']
    assert [name for name, _ in other.marks] == ['start', 'c']


def test_stage_times_message_round_trip():
    image, _ = frame_messages(1, 5)
    marks = [('received', 100.25), ('decode', 100.2503), ('publish: depth', 100.4)]
    message = stage_times_message(marks, image.header)
    assert message.header.stamp == image.header.stamp
    assert stage_marks(message) == marks
    message.status[0].name = 'something else'
    with pytest.raises(ValueError, match='no'):
        stage_marks(message)


def test_frame_stages_from_client_and_node_marks():
    node = [('received', 10.004), ('handover', 10.005), ('network', 10.095),
            ('publish: depth', 10.097), ('publish: points', 10.098)]
    have = frame_stages(10.0, node, 10.1)
    assert list(have) == ['delivery to node', 'handover', 'network', 'publish: depth',
                          'publish: points', 'delivery to client']
    assert have == pytest.approx({'delivery to node': 4.0, 'handover': 1.0, 'network': 90.0,
                                  'publish: depth': 2.0, 'publish: points': 1.0,
                                  'delivery to client': 2.0})
    assert sum(have.values()) == pytest.approx(100.0)  # the frame's end-to-end latency
    with pytest.raises(ValueError, match='node mark'):
        frame_stages(10.0, [], 10.1)
    summary = summarize_stages([{'a': 1.0, 'b': 4.0}, {'a': 3.0}, {'a': 2.0, 'c': 1.0}])
    assert summary == {'a': 2.0, 'b': 0.0, 'c': 0.0}  # missing counts as 0


@pytest.mark.parametrize('topics', [BENCH_TOPICS, ALL_TOPICS])
def test_the_pipeline_marks_each_stage_of_what_it_makes(topics):
    settings = OutputSettings.from_params(load_defaults())
    pipeline = FramePipeline(FormulaEstimator(), settings)
    image, info = frame_messages(2, 7)
    clock = StageClock(0.0)
    result = pipeline.process(image, info, topics, clock)
    assert result.clock is clock
    names = [name for name, _ in clock.marks]
    want = ['start', 'decode', 'rectify', 'post: back-project', 'post: depth',
            'post: confidence', 'post: points', 'message: depth', 'message: points']
    if topics == ALL_TOPICS:
        want[6:6] = ['post: colorized']
        want[-1:-1] = ['message: confidence', 'message: colorized']
    assert names == want
    times = [at for _, at in clock.marks[1:]]
    assert times == sorted(times)
    assert set(result.messages) == set(topics)


def test_the_stage_table_and_the_own_cost_lines():
    model = {'model': 'msfusion_r18', 'input_size': [192, 640], 'backend': 'fast',
             'params_m': 1.0, 'gflops': 2.0, 'p50_ms': 80.0, 'p99_ms': 90.0, 'fps': 12.0,
             'first_call_ms': 100.0, 'peak_memory_mib': 3.0, 'peak_fraction': 0.5,
             'max_rel_diff_vs_reference': None}
    node = {'model': 'msfusion_r18', 'input_size': [192, 640], 'backend': 'node (fast)',
            'p50_ms': 100.0, 'p99_ms': 120.0, 'count': 30, 'lost': 0,
            'stages_p50_ms': {'delivery to node': 1.5, 'network': 81.0, 'publish: points': 0.7,
                              'delivery to client': 1.25}}
    pipeline = {'model': 'msfusion_r18', 'input_size': [192, 640],
                'backend': 'pipeline (fast)', 'camera_size': [375, 1242],
                'topics': ['depth', 'points'], 'p50_ms': 90.0, 'p99_ms': 95.0,
                'model_only_p50_ms': 79.0, 'pipeline_over_model': 1.14,
                'stages_p50_ms': {'decode': 0.5, 'network': 80.0}}
    results = {'device': {'name': 'x', 'type': 'cpu', 'torch': '2', 'peak_tflops': 1.0,
                          'precision': 'fp32', 'peak_source': 'probe'},
               'settings': {'iters': 3, 'batch': 1, 'camera_size': [375, 1242]},
               'model': [model], 'pipeline': [pipeline], 'node': [node], 'ratios': [],
               'soak': None}
    text = markdown(results)
    assert ('node end to end (fast) p50 100.0 ms / model-only p50 80.0 ms (its row; '
            'msfusion_r18, 192×640) = 1.25× (target ≤ 1.3×: met)') in text
    assert ('in-process pipeline (fast) p50 90.0 ms / model-only p50 79.0 ms (alternating '
            'with its frames; msfusion_r18, 192×640) = 1.14× (target ≤ 1.15×: met); over the '
            "model-only row's p50 80.0 ms: 1.12×") in text
    assert '| stage | pipeline (fast), 192×640 | node (fast), 192×640 | how it is measured |' \
        in text
    assert '| decode | 0.50 | – |' in text and '| network | 80.00 | 81.00 |' in text
    assert '| delivery to node | – | 1.50 | client, before publishing' in text
    assert '| publish: points | – | 0.70 | node: rclpy publish() of points' in text
    assert '| **end to end p50** | 90.0 | 100.0 | |' in text
    node['p50_ms'] = 110.0
    assert '1.38× (target ≤ 1.3×: NOT met)' in markdown(results)


def test_the_node_keeps_freed_memory_unless_told_otherwise():
    from mono_depth_ros.ros.node import keep_freed_memory

    assert keep_freed_memory({'MALLOC_ARENA_MAX': '2'}) == 'allocator: as set by MALLOC_ARENA_MAX'
    line = keep_freed_memory({})
    assert line.startswith('allocator: ') and ('32 MiB' in line or 'left as it is' in line)
