"""The benchmark's outputs: throughput ratios, the JSON file and the markdown tables."""

import json
import math
import os
from pathlib import Path

# Throughput targets (model, baseline, ratio): msfusion_r18 at least 1.5× FCRN's and at least
# as fast as the U-Net baseline (docs/study/: and more accurate than it).
TARGET_PAIRS = (('msfusion_r18', 'fcrn_r50', 1.5), ('msfusion_r18', 'unet_r18', 1.0))
# Steady latency: the node's end-to-end p99 at most this many times its p50.
TARGET_TAIL = 2.0
# The node's own cost: end to end (p50) at most this many times the network's model-only p50
# (same model, input size and backend), the in-process pipeline at most PIPELINE.
TARGET_NODE_OVER_MODEL = 1.3
TARGET_PIPELINE_OVER_MODEL = 1.15
REFERENCE_ROW = 'reference'   # the model-only row of the node's torch backend
# How each stage of the stage table is measured; every time is time.monotonic() (the host's
# CLOCK_MONOTONIC), so the client's and the node's marks subtract.
STAGE_NOTES = {
    'delivery to node': 'client, before publishing the image → node, entering its image '
                        'callback (DDS, deserialisation into a Python message, executor)',
    'handover': 'node: image callback → worker takes the frame from its slot',
    'camera info wait': "node worker: waiting for the frame's own CameraInfo",
    'decode': 'node worker: Image → RGB array, CameraInfo checks',
    'rectify': 'node worker: remap (distorted CameraInfo only)',
    'other cameras': "node worker: preparing the batch's other frames",
    'preprocess': 'upload, resize to the network input, normalisation (CPU)',
    'network': 'the network (CPU)',
    'preprocess + network': 'CUDA: upload, resize, network and maps resized back (one graph, '
                            'synchronised)',
    'post: resize': 'maps resized back to the image, focal scale, beyond range',
    'post: back-project': "cloud grid on the estimator's device",
    'post: download': 'maps and grid copied to numpy',
    'post: depth': 'NaN outside [min_depth, max_depth]',
    'post: confidence': 'depth jumps, confidence lowered near edges',
    'post: colorized': 'colour view',
    'post: points': 'cloud filters and colours',
    'message: depth': 'sensor_msgs/Image of the depth',
    'message: confidence': 'sensor_msgs/Image of the confidence',
    'message: colorized': 'sensor_msgs/Image of the colour view',
    'message: points': 'sensor_msgs/PointCloud2',
    'delivery to client': "node's last publish() returned → the later output enters the "
                          "client's subscription callback",
}


def size_text(size: list[int] | tuple[int, int]) -> str:
    """'352×1216' for [352, 1216]."""
    return f'{size[0]}×{size[1]}'


def compute_ratios(rows: list[dict], pairs: list[dict] | None = None) -> list[dict]:
    """Each TARGET_PAIRS throughput ratio per size and backend, the pairs measured with
    alternating calls (pair_ratio_row), each backend's paired speed-up over the reference
    (median of per-round latency ratios)."""
    fps = {(r['model'], tuple(r['input_size']), r['backend']): r['fps'] for r in rows}
    speedups = {(r['model'], tuple(r['input_size']), r['backend']):
                r.get('speedup_vs_reference') for r in rows}
    ratios = list(pairs or [])
    for (model, size, backend), value in sorted(fps.items()):
        for first, baseline, target in TARGET_PAIRS:
            if model == first and (baseline, size, backend) in fps:
                ratio = value / fps[(baseline, size, backend)]
                ratios.append({'what': f'{first} / {baseline} throughput',
                               'input_size': list(size), 'backend': backend, 'ratio': ratio,
                               'target': target, 'met': ratio >= target})
        paired = speedups.get((model, size, backend))
        if backend != 'reference' and paired is not None:
            ratios.append({'what': f'{model} {backend} / reference speed (median of paired calls)',
                           'input_size': list(size), 'backend': backend, 'ratio': paired,
                           'target': 1.0, 'met': paired >= 1.0})
    return sorted(ratios, key=lambda r: ('paired' in r['what'], r['what'], r['input_size'],
                                         r['backend']))


def pair_ratio_row(first: str, baseline: str, target: float, size: list[int] | tuple[int, int],
                   backend: str, ratio: float) -> dict:
    """A ratio row for first / baseline speed measured with their calls alternating."""
    return {'what': f'{first} / {baseline} speed (median of alternating calls)',
            'input_size': list(size), 'backend': backend, 'ratio': ratio, 'target': target,
            'met': ratio >= target}


def _num(value, digits: int = 1) -> str:
    """A number for a table cell ('–' for None or NaN)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return '–'
    return f'{value:.{digits}f}'


def _sci(value) -> str:
    """A small number such as a relative difference, in scientific notation."""
    return '–' if value is None else f'{value:.1e}'


def markdown(results: dict) -> str:
    """The report as markdown: device line, model-only table, node table, ratios, soak."""
    dev = results['device']
    lines = [f'Device: {dev["name"]} ({dev["type"]}), torch {dev["torch"]}, peak '
             f'{_num(dev["peak_tflops"], 3)} TFLOP/s {dev["precision"]} ({dev["peak_source"]}). '
             f'{results["settings"]["iters"]} timed calls per row, batch '
             f'{results["settings"]["batch"]}.', '']
    if results['model']:
        lines += ['| model | input | backend | params (M) | GFLOPs | p50 (ms) | p99 (ms) | '
                  'frames/s | first call (s) | peak mem (MiB) | % of peak FLOP/s | '
                  'max rel. diff vs ref |',
                  '|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|']
        for r in results['model']:
            fraction = None if r['peak_fraction'] is None else 100 * r['peak_fraction']
            lines.append(
                f'| {r["model"]} | {size_text(r["input_size"])} | {r["backend"]} | '
                f'{_num(r["params_m"])} | {_num(r["gflops"])} | {_num(r["p50_ms"])} | '
                f'{_num(r["p99_ms"])} | {_num(r["fps"], 2)} | '
                f'{_num(r["first_call_ms"] / 1000.0, 2)} | '
                f'{_num(r["peak_memory_mib"], 0)} | '
                f'{_num(fraction)} | {_sci(r["max_rel_diff_vs_reference"])} |')
        lines.append('')
    if results['node']:
        lines += ['Node end to end over DDS (image in → depth and cloud out, '
                  f'{size_text(results["settings"]["camera_size"])} camera images):', '',
                  '| model | network input | backend | p50 (ms) | p99 (ms) | p99 / p50 | frames '
                  '| lost |',
                  '|---|---|---|---:|---:|---:|---:|---:|']
        for r in results['node']:
            lines.append(f'| {r["model"]} | {size_text(r["input_size"])} | {r["backend"]} | '
                         f'{_num(r["p50_ms"])} | {_num(r["p99_ms"])} | '
                         f'{_num(r["p99_ms"] / r["p50_ms"], 2)} | {r["count"]} | {r["lost"]} |')
        steady = [r for r in results['node'] if r['p99_ms'] <= TARGET_TAIL * r['p50_ms']]
        verdict = 'met' if len(steady) == len(results['node']) else 'NOT met'
        lines += ['', f'- node p99 ≤ {TARGET_TAIL:g}× p50 (steady latency): {len(steady)} of '
                  f'{len(results["node"])} runs ({verdict})', '']
    if results.get('pipeline'):
        lines += [*pipeline_lines(results['pipeline']), '']
    own = own_cost_lines(results)
    if own:
        lines += [*own, '']
    if results.get('cameras'):
        lines += [*camera_lines(results['cameras']), '']
    stage_table = stage_lines(results)
    if stage_table:
        lines += [*stage_table, '']
    for ratio in results['ratios']:
        verdict = 'met' if ratio['met'] else 'NOT met'
        lines.append(f'- {ratio["what"]} at {size_text(ratio["input_size"])} '
                     f'({ratio["backend"]}): {ratio["ratio"]:.2f}× (target ≥ '
                     f'{ratio["target"]:g}×: {verdict})')
    if results.get('soak'):
        lines += ['', *soak_lines(results['soak'])]
    return '\n'.join(lines).rstrip() + '\n'


def pipeline_lines(rows: list[dict]) -> list[str]:
    """Markdown table of the in-process pipeline rows (FramePipeline.process, no DDS)."""
    lines = ['In-process frame pipeline (FramePipeline.process of a camera image and its '
             'CameraInfo, node default parameters, no DDS; its calls alternate with the '
             'model-only call):', '',
             '| model | network input | camera image | topics | p50 (ms) | p99 (ms) | '
             'model-only p50 (ms) | pipeline / model (median of alternating calls) |',
             '|---|---|---|---|---:|---:|---:|---:|']
    for r in rows:
        lines.append(f'| {r["model"]} | {size_text(r["input_size"])} | '
                     f'{size_text(r["camera_size"])} | {", ".join(r["topics"])} | '
                     f'{_num(r["p50_ms"])} | {_num(r["p99_ms"])} | '
                     f'{_num(r["model_only_p50_ms"])} | {_num(r["pipeline_over_model"], 2)} |')
    return lines


def model_p50(results: dict, model: str, size: list[int], backend: str) -> float | None:
    """The model-only p50 (ms) of a model, input size and backend in this run, or None."""
    backend = REFERENCE_ROW if backend == 'torch' else backend
    for r in results.get('model', []):
        if r['model'] == model and list(r['input_size']) == list(size) \
                and r['backend'] == backend:
            return r['p50_ms']
    return None


def run_backend(row: dict) -> str:
    """The backend of a node or pipeline row ('node (fast)' → 'fast')."""
    return row['backend'].split('(')[-1].rstrip(')').strip()


def own_cost_lines(results: dict) -> list[str]:
    """The node's own cost: end to end and in-process pipeline p50 over the model-only p50.

    The verdict takes the model-only calls that alternated with the run's frames when there
    are ('model_only_p50_ms': the machine's drift moves both alike), else the model-only row;
    the line gives the ratio to the row too.
    """
    lines = []
    checks = [(r, 'node end to end', TARGET_NODE_OVER_MODEL) for r in results.get('node', [])]
    checks += [(r, 'in-process pipeline', TARGET_PIPELINE_OVER_MODEL)
               for r in results.get('pipeline') or []]
    for r, what, target in checks:
        row = model_p50(results, r['model'], r['input_size'], run_backend(r))
        model = r.get('model_only_p50_ms') or row
        if model is None:
            continue
        ratio = r['p50_ms'] / model
        verdict = 'met' if ratio <= target else 'NOT met'
        how = 'alternating with its frames' if r.get('model_only_p50_ms') else 'its row'
        also = '' if row is None or model == row else \
            f'; over the model-only row\'s p50 {row:.1f} ms: {r["p50_ms"] / row:.2f}×'
        lines.append(f'- {what} ({run_backend(r)}) p50 {r["p50_ms"]:.1f} ms / model-only p50 '
                     f'{model:.1f} ms ({how}; {r["model"]}, {size_text(r["input_size"])}) = '
                     f'{ratio:.2f}× (target ≤ {target:g}×: {verdict}){also}')
    return lines


def stage_order(stage: str) -> int:
    """Where a stage goes in the table: the order of a frame's way (STAGE_NOTES), publishing
    before delivery to the client, unknown stages last (sorted() keeps their order)."""
    order = [name for name in STAGE_NOTES if name != 'delivery to client']
    if stage in order:
        return order.index(stage)
    return len(order) + (0 if stage.startswith('publish: ') else
                         1 if stage == 'delivery to client' else 2)


def stage_lines(results: dict) -> list[str]:
    """The stage table: p50 (ms) per stage of every run that has stages (pipeline, node and
    several-camera rows), with how each stage is measured."""
    runs = []
    for r in results.get('pipeline') or []:
        runs.append((f'{r["backend"]}, {size_text(r["input_size"])}', r))
    for r in results.get('node', []):
        runs.append((f'{r["backend"]}, {size_text(r["input_size"])}', r))
    for r in results.get('cameras') or []:
        runs.append((f'{r["cameras"]} cam., {r["layout"]}', r))
    runs = [(name, r) for name, r in runs if r.get('stages_p50_ms')]
    if not runs:
        return []
    names = sorted(dict.fromkeys(stage for _, r in runs for stage in r['stages_p50_ms']),
                   key=stage_order)
    lines = ['Stages (p50 ms per stage over the frames; p50s do not add up to the end-to-end '
             'p50 exactly). Node rows: the node publishes when each stage of a frame ended '
             '(`stage_times`), the client adds its send and arrival times, all on '
             'time.monotonic(); pipeline rows: the same marks in one process:', '',
             '| stage | ' + ' | '.join(name for name, _ in runs) + ' | how it is measured |',
             '|---|' + '---:|' * len(runs) + '---|']
    for stage in names:
        note = STAGE_NOTES.get(stage, '')
        if stage.startswith('publish: '):
            note = f'node: rclpy publish() of {stage[9:]} (conversion, serialisation, DDS write)'
        cells = ' | '.join(_num(r['stages_p50_ms'].get(stage), 2) for _, r in runs)
        lines.append(f'| {stage} | {cells} | {note} |')
    totals = ' | '.join(_num(r['p50_ms']) for _, r in runs)
    lines.append(f'| **end to end p50** | {totals} | |')
    return lines


def camera_lines(rows: list[dict]) -> list[str]:
    """Markdown table of the several-cameras runs: one process against one per camera."""
    first = rows[0]
    lines = [f'Several cameras ({first["model"]}, network input '
             f'{size_text(first["input_size"])}, backend {first["backend"]}): every round sends '
             'a frame to each camera at once and waits for all their depth and clouds; memory '
             'of all node processes together:', '',
             '| cameras | layout | processes | frames/s (total) | p50 (ms) | p99 (ms) | frames '
             '| lost | RSS (MiB) | GPU (MiB) |',
             '|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|']
    for r in rows:
        lines.append(f'| {r["cameras"]} | {r["layout"]} | {r["processes"]} | '
                     f'{_num(r["total_fps"], 2)} | {_num(r["p50_ms"])} | {_num(r["p99_ms"])} | '
                     f'{r["count"]} | {r["lost"]} | {_num(r["rss_mib"], 0)} | '
                     f'{_num(r["gpu_mib"], 0)} |')
    return lines


def soak_lines(soak: dict) -> list[str]:
    """Markdown lines of a soak report."""
    lat, drift, rss, gpu = soak['latency'] or {}, soak['latency_drift'], soak['rss'], \
        soak['gpu_memory']
    return [
        f'Soak: {soak["model"]} at {size_text(soak["input_size"])} (backend '
        f'{soak["backend"]}), {soak["rate_hz"]:g} Hz for '
        f'{soak["duration_s"]:g} s: {soak["sent"]} sent, {soak["completed"]} completed, '
        f'{soak["dropped"]} dropped ({100 * soak["drop_fraction"]:.0f} %), '
        f'{soak["output_fps"]:.2f} outputs/s.',
        f'- latency p50 {_num(lat.get("p50_ms"))} ms, p99 {_num(lat.get("p99_ms"))} ms; drift '
        f'(first vs last {soak["window_s"]:g} s, p50) {_num(drift["first_p50_ms"])} → '
        f'{_num(drift["last_p50_ms"])} ms (×{_num(drift["ratio"], 2)})',
        f'- node RSS {_num(rss["first_mib"], 0)} → {_num(rss["last_mib"], 0)} MiB (growth '
        f'{_num(rss["growth_mib"])} MiB, slope {_num(rss["slope_mib_per_min"])} MiB/min); '
        f'GPU memory growth {_num(gpu["growth_mib"])} MiB',
    ]


def write_results(results: dict, out_dir: str | os.PathLike) -> tuple[Path, Path]:
    """Write bench.json and bench.md into out_dir; return both paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out / 'bench.json', out / 'bench.md'
    json_path.write_text(json.dumps(results, indent=2, allow_nan=True) + '\n')
    md_path.write_text(markdown(results))
    return json_path, md_path
