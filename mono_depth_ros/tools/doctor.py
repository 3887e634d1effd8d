"""mono-depth-doctor: report which dependencies and accelerators this environment provides."""

import argparse
import importlib
import json
import sys

# (module, required): required modules make the tool exit non-zero when missing.
CHECKS = [
    ('torch', True),
    ('torchvision', True),
    ('numpy', True),
    ('cv2', True),
    ('yaml', True),
    ('rosbags', True),
    ('rclpy', True),
    ('rclpy.lifecycle', True),
    ('sensor_msgs.msg', True),
    ('cv_bridge', False),
    ('launch_ros', False),
    ('onnxruntime', False),
]


def probe(module: str) -> dict:
    """Import module and return its status and version, or the import error."""
    try:
        loaded = importlib.import_module(module)
    except Exception as error:  # noqa: BLE001 - any import failure is a finding to report
        return {'module': module, 'ok': False, 'detail': f'{type(error).__name__}: {error}'}
    version = getattr(loaded, '__version__', '')
    return {'module': module, 'ok': True, 'detail': str(version)}


def accelerator() -> str:
    """Describe the device PyTorch would use."""
    import torch
    if torch.cuda.is_available():
        return f'cuda: {torch.cuda.get_device_name(0)} (CUDA {torch.version.cuda})'
    return f'cpu: {torch.get_num_threads()} threads (torch built for CUDA {torch.version.cuda})'


def main(argv: list[str] | None = None) -> int:
    """Print the environment report; exit 1 when a required dependency is missing."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--json', action='store_true', help='print the report as JSON')
    args = parser.parse_args(argv)
    report = {'python': sys.version.split()[0], 'modules': [], 'missing_required': []}
    for module, required in CHECKS:
        row = probe(module)
        row['required'] = required
        report['modules'].append(row)
        if required and not row['ok']:
            report['missing_required'].append(module)
    report['device'] = accelerator() if probe('torch')['ok'] else 'unknown (no torch)'
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f'python {report["python"]}   device {report["device"]}')
        for row in report['modules']:
            mark = 'ok ' if row['ok'] else ('MISSING' if row['required'] else 'absent (optional)')
            print(f'  {row["module"]:<16} {mark:<18} {row["detail"]}')
    return 1 if report['missing_required'] else 0


if __name__ == '__main__':
    sys.exit(main())
