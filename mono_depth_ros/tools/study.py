"""mono-depth-study: train several networks and variants of them alike on one world, for
several seeds, and compare them: val abs_rel, δ1, RMSE, training time, params, GFLOPs, CPU FPS.

Writes <out>/results.json, <out>/results.md (mean ± std over seeds) and plots of val abs_rel
against step and wall time; each run trains in <out>/runs/<model>-<variant>-seed<N>. Run the
same command again to continue: finished runs are skipped, an interrupted run resumes from its
last checkpoint. Exit codes: 0 done, 1 stopped on a non-finite loss, 2 bad input, 130
interrupted (checkpointed).
"""

import argparse
from pathlib import Path
import sys

from mono_depth_ros.core.config import ConfigError
from mono_depth_ros.networks import PretrainedWeightsError
from mono_depth_ros.networks.checkpoint import CheckpointError
from mono_depth_ros.study.config import load_study
from mono_depth_ros.study.report import RESULTS_MD
from mono_depth_ros.study.runner import run_study
from mono_depth_ros.training.signals import StopRequest
from mono_depth_ros.training.trainer import NonFiniteLossError

EXIT_INTERRUPTED = 130


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(prog='mono-depth-study', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--config', required=True,
                        help='study YAML (e.g. config/study/msfusion_ablation.yaml)')
    parser.add_argument('--out', required=True, help='output directory (results and runs)')
    parser.add_argument('--world', help="data path to train on instead of the config's world")
    parser.add_argument('--no-progress', action='store_true', help='no tqdm bars')
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Check the study, run what is left of it and print its table."""
    args = parse_args(argv)
    try:
        study = load_study(args.config, args.world)
        with StopRequest() as stop:
            outcome = run_study(study, args.out, stop, progress=not args.no_progress)
    except (ConfigError, CheckpointError, PretrainedWeightsError) as error:
        print(f'mono-depth-study: error: {error}', file=sys.stderr)
        return 2
    except NonFiniteLossError as error:
        print(f'mono-depth-study: error: {error}', file=sys.stderr)
        return 1
    print(f'{outcome.trained} run(s) trained now, {len(outcome.results)} of '
          f'{len(study.runs)} finished; report: {args.out}/{RESULTS_MD}')
    if outcome.status == 'interrupted':
        print(f'interrupted ({stop.signal_name}): run the same command again to continue')
        return EXIT_INTERRUPTED
    text = (Path(args.out) / RESULTS_MD).read_text(encoding='utf-8')
    print('\n'.join(line for line in text.splitlines() if line.startswith('|')))
    return 0


if __name__ == '__main__':
    sys.exit(main())
