"""Node parameters: declared once, defaults only in the params file, strict validation."""

import re

import pytest
import yaml

from mono_depth_ros.core import paths
from mono_depth_ros.core.paths import DEFAULT_MODEL, default_model, default_model_candidates
from mono_depth_ros.ros.params import (
    check_model_source,
    check_value,
    default_params_file,
    load_defaults,
    markdown_table,
    ParamError,
    SPECS,
    validate,
)


def test_params_file_gives_every_default_and_nothing_else(repo_root):
    path = repo_root / 'config' / 'mono_depth_node.yaml'
    assert default_params_file() == path
    values = yaml.safe_load(path.read_text())['mono_depth_node']['ros__parameters']
    assert set(values) == {spec.name for spec in SPECS}
    defaults = load_defaults()
    assert defaults['device'] == 'auto' and defaults['input_qos'] == 'sensor_data'
    assert defaults['output_qos'] == 'reliable'
    assert defaults['cameras'] == [''] and defaults['autostart'] is True  # today's node


def test_every_spec_has_a_description_and_a_matching_default_type():
    defaults = load_defaults()
    for spec in SPECS:
        assert len(spec.description) > 20, spec.name
        assert type(defaults[spec.name]) is spec.type, spec.name


def test_params_file_with_unknown_or_missing_key_is_rejected(tmp_path):
    values = dict(load_defaults())
    values['devise'] = 'cpu'
    path = tmp_path / 'bad.yaml'
    path.write_text(yaml.safe_dump({'mono_depth_node': {'ros__parameters': values}}))
    with pytest.raises(ParamError, match=r"unknown parameter\(s\) \['devise'\]"):
        load_defaults(path)
    del values['devise'], values['device']
    path.write_text(yaml.safe_dump({'mono_depth_node': {'ros__parameters': values}}))
    with pytest.raises(ParamError, match="no default for parameter.*'device'"):
        load_defaults(path)


@pytest.mark.parametrize('name, value, message', [
    ('device', 'gpu', "'device' = 'gpu' is not allowed; set it to one of: auto, cuda, cpu"),
    ('precision', 'int8', 'fp32, fp16, bf16'),
    ('cloud_stride', 0, r'out of range; set it within \[1, 64\]'),
    ('input_height', 100, r'step 32'),
    ('min_confidence', 1.5, r'\[0, 1\]'),
    ('max_range', float('nan'), 'out of range'),
    ('publish_points', 'yes', 'must be a bool'),
    ('colour_scale', 1.0, 'unknown parameter'),
    ('autostart', 'yes', "'autostart' must be a bool"),
    ('cameras', [], "'cameras' = \\[\\] is not a non-empty list of strings"),
    ('cameras', 'cam_a', 'not a non-empty list'),
    ('cameras', ['cam_a', 7], 'not a non-empty list'),
    ('cameras', ['cam_a', '2nd cam'], r"\['2nd cam'\] not a topic namespace"),
    ('cameras', ['cam_a', 'cam_b', 'cam_a'], r"lists \['cam_a'\] more than once"),
])
def test_bad_values_name_the_parameter_and_what_to_set(name, value, message):
    with pytest.raises(ParamError, match=message):
        check_value(name, value)


def test_camera_names_are_topic_namespaces():
    assert check_value('cameras', ('',)) == ['']
    assert check_value('cameras', ['cam_a', '/car/front', 'rear/cam_2']) == \
        ['cam_a', '/car/front', 'rear/cam_2']


def test_relations_between_parameters():
    values = dict(load_defaults())
    assert check_value('max_range', 10) == 10.0  # ints are accepted for floats
    with pytest.raises(ParamError, match='min_depth .* must be below max_depth'):
        validate({**values, 'min_depth': 50.0, 'max_depth': 40.0})
    with pytest.raises(ParamError, match='set both input_height and input_width'):
        validate({**values, 'input_height': 96})
    assert validate({**values, 'input_height': 96, 'input_width': 320})['input_width'] == 320


def test_model_source_must_be_a_file_or_explicit_random_weights(tmp_path):
    values = dict(load_defaults())
    with pytest.raises(ParamError, match='checkpoint file not found'):
        check_model_source({**values, 'checkpoint': str(tmp_path / 'missing.pt')})
    assert check_model_source({**values, 'allow_random_weights': True})['checkpoint'] == ''
    (tmp_path / 'model.pt').write_bytes(b'x')
    assert check_model_source({**values, 'checkpoint': str(tmp_path / 'model.pt')}) == {
        **values, 'checkpoint': str(tmp_path / 'model.pt')}
    with pytest.raises(ParamError, match='compile applies to backend fast only'):
        check_model_source({**values, 'allow_random_weights': True, 'compile': True})
    check_model_source({**values, 'allow_random_weights': True, 'compile': True,
                        'backend': 'fast'})


def test_an_empty_checkpoint_is_the_default_model_of_the_source_tree(repo_root):
    values = dict(load_defaults())
    assert values['checkpoint'] == '' and not values['allow_random_weights']
    resolved = check_model_source(values)
    assert resolved['checkpoint'] == str(repo_root / 'models' / DEFAULT_MODEL)
    assert resolved == {**values, 'checkpoint': resolved['checkpoint']}
    assert values['checkpoint'] == ''  # the caller's values are not changed
    assert default_model() == repo_root / 'models' / DEFAULT_MODEL


def test_the_installed_default_model_comes_first(tmp_path, monkeypatch):
    share = tmp_path / 'install' / 'share' / 'mono_depth_ros'
    (share / 'models').mkdir(parents=True)
    (share / 'models' / DEFAULT_MODEL).write_bytes(b'x')
    index = tmp_path / 'install' / 'share' / 'ament_index' / 'resource_index' / 'packages'
    index.mkdir(parents=True)
    (index / 'mono_depth_ros').write_text('')
    pytest.importorskip('ament_index_python')
    monkeypatch.setenv('AMENT_PREFIX_PATH', str(tmp_path / 'install'))
    assert default_model_candidates()[0] == share / 'models' / DEFAULT_MODEL
    assert default_model() == share / 'models' / DEFAULT_MODEL
    assert check_model_source(load_defaults())['checkpoint'] == str(
        share / 'models' / DEFAULT_MODEL)


def test_a_missing_default_model_names_where_it_looked_and_what_to_set(tmp_path, monkeypatch):
    missing = [tmp_path / 'share' / 'models' / DEFAULT_MODEL, tmp_path / 'src' / DEFAULT_MODEL]
    monkeypatch.setattr(paths, 'default_model_candidates', lambda: missing)
    with pytest.raises(FileNotFoundError, match=f'the default model {DEFAULT_MODEL} is not '
                                                f'installed; looked for {missing[0]}, '
                                                f'{missing[1]}'):
        default_model()
    with pytest.raises(ParamError) as error:
        check_model_source(load_defaults())
    message = str(error.value)
    assert str(missing[0]) in message and str(missing[1]) in message
    assert 'set the parameter checkpoint to a .pt file' in message
    # random weights and an explicit checkpoint never look for the default model
    check_model_source({**load_defaults(), 'allow_random_weights': True})
    (tmp_path / 'model.pt').write_bytes(b'x')
    check_model_source({**load_defaults(), 'checkpoint': str(tmp_path / 'model.pt')})


def test_the_parameter_table_of_the_node_page_is_generated_from_the_specs(repo_root):
    page = (repo_root / 'docs' / 'node.md').read_text()
    table = markdown_table()
    assert table in page, 'the table of docs/node.md is stale: paste ros.params.markdown_table()'
    assert len(re.findall(r'^\| `', table, re.M)) == len(SPECS)
