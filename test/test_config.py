"""Strict configuration loading."""

import pytest

from mono_depth_ros.core.config import (
    apply_overrides,
    check_keys,
    ConfigError,
    load_yaml,
    merge_defaults,
)


def test_load_yaml_reads_mapping(tmp_path):
    path = tmp_path / 'a.yaml'
    path.write_text('a: 1\nb: {c: 2}\n')
    assert load_yaml(path) == {'a': 1, 'b': {'c': 2}}


def test_load_yaml_missing_file_names_path(tmp_path):
    with pytest.raises(ConfigError, match='not found: .*nope.yaml'):
        load_yaml(tmp_path / 'nope.yaml')


def test_load_yaml_rejects_non_mapping_and_bad_yaml(tmp_path):
    (tmp_path / 'list.yaml').write_text('- 1\n- 2\n')
    with pytest.raises(ConfigError, match='must hold a mapping'):
        load_yaml(tmp_path / 'list.yaml')
    (tmp_path / 'bad.yaml').write_text('a: [1, 2\n')
    with pytest.raises(ConfigError, match='not valid YAML'):
        load_yaml(tmp_path / 'bad.yaml')


def test_load_yaml_names_a_binary_file_such_as_a_checkpoint(tmp_path):
    (tmp_path / 'model.pt').write_bytes(b'PK\x03\x04\x80\xff\xfe binary')
    with pytest.raises(ConfigError, match=r'model.pt is not UTF-8 text \(a checkpoint'):
        load_yaml(tmp_path / 'model.pt')


def test_unknown_key_lists_valid_keys():
    expected = r"unknown key\(s\) \['lr_x'\] in train; valid keys are: \['batch_size', 'lr'\]"
    with pytest.raises(ConfigError, match=expected):
        check_keys({'lr_x': 1}, {'lr': 1, 'batch_size': 8}, 'train')
    assert merge_defaults({'lr': 2}, {'lr': 1, 'b': 3}, 'x') == {'lr': 2, 'b': 3}


def test_overrides_parse_yaml_values_and_reject_unknown_paths():
    config = {'optim': {'lr': 1e-4, 'betas': [0.9, 0.999]}, 'steps': 10}
    result = apply_overrides(config, ['optim.lr=0.001', 'steps=20'], 'train')
    assert result == {'optim': {'lr': 0.001, 'betas': [0.9, 0.999]}, 'steps': 20}
    assert config['optim']['lr'] == 1e-4, 'the input config must not be modified'
    with pytest.raises(ConfigError, match="'lrr' is not in optim"):
        apply_overrides(config, ['optim.lrr=1'], 'train')
    with pytest.raises(ConfigError, match='key=value'):
        apply_overrides(config, ['steps'], 'train')
