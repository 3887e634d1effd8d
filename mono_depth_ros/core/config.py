"""Strict YAML configuration loading: unknown keys and wrong types are errors that name them."""

from collections.abc import Mapping
import os
from typing import Any

import yaml


class ConfigError(ValueError):
    """A configuration file or dictionary is invalid; the message says what to fix."""


def load_yaml(path: str | os.PathLike) -> dict[str, Any]:
    """Read a YAML mapping from path, with an error naming the file when it is missing or bad."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ConfigError(f'config file not found: {path}')
    try:
        with open(path, encoding='utf-8') as stream:
            data = yaml.safe_load(stream)
    except yaml.YAMLError as error:
        raise ConfigError(f'config file {path} is not valid YAML: {error}') from error
    except UnicodeDecodeError as error:
        raise ConfigError(f'config file {path} is not UTF-8 text (a checkpoint or another '
                          f'binary file?): {error}') from error
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f'config file {path} must hold a mapping, got {type(data).__name__}')
    return dict(data)


def check_keys(config: Mapping[str, Any], valid: Mapping[str, Any] | set[str],
               where: str) -> None:
    """Raise ConfigError listing the valid keys when config holds a key not in valid."""
    unknown = sorted(set(config) - set(valid))
    if unknown:
        raise ConfigError(
            f'unknown key(s) {unknown} in {where}; valid keys are: {sorted(valid)}')


def merge_defaults(config: Mapping[str, Any], defaults: Mapping[str, Any],
                   where: str) -> dict[str, Any]:
    """Return defaults updated by config, rejecting keys that defaults does not define."""
    check_keys(config, defaults, where)
    merged = dict(defaults)
    merged.update(config)
    return merged


def apply_overrides(config: dict[str, Any], overrides: list[str], where: str) -> dict[str, Any]:
    """Apply 'a.b=value' overrides (value parsed as YAML) to a nested config, strictly."""
    result = {key: dict(value) if isinstance(value, Mapping) else value
              for key, value in config.items()}
    for item in overrides:
        if '=' not in item:
            raise ConfigError(f'override {item!r} for {where} must look like key=value')
        dotted, raw = item.split('=', 1)
        keys = dotted.split('.')
        node = result
        for depth, key in enumerate(keys):
            if not isinstance(node, dict) or key not in node:
                valid = sorted(node) if isinstance(node, dict) else []
                prefix = '.'.join(keys[:depth]) or where
                raise ConfigError(
                    f'unknown override key {dotted!r}: {key!r} is not in {prefix}; '
                    f'valid keys are: {valid}')
            if depth == len(keys) - 1:
                node[key] = yaml.safe_load(raw)
            else:
                node[key] = dict(node[key]) if isinstance(node[key], Mapping) else node[key]
                node = node[key]
    return result
