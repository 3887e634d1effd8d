"""mono-depth-doctor reports the environment and fails on a missing required module."""

import json

from mono_depth_ros.tools import doctor


def test_doctor_reports_required_modules(capsys):
    assert doctor.main(['--json']) == 0
    report = json.loads(capsys.readouterr().out)
    modules = {row['module']: row for row in report['modules']}
    assert modules['torch']['ok'] and modules['rclpy']['ok']
    assert report['missing_required'] == []
    assert report['device'].split(':')[0] in ('cpu', 'cuda')


def test_doctor_fails_when_required_module_missing(monkeypatch, capsys):
    monkeypatch.setattr(doctor, 'CHECKS', doctor.CHECKS + [('no_such_module_xyz', True)])
    assert doctor.main([]) == 1
    assert 'no_such_module_xyz' in capsys.readouterr().out
