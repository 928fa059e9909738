"""Dataclass configs loaded from YAML with dotted command-line overrides.

Every stage has a ``@dataclass`` config whose fields carry ``metadata={"help": ...}``.
``from_dict`` builds one from plain data and rejects unknown keys (with a did-you-mean
suggestion), wrong types and values that the dataclass's ``__post_init__`` refuses, always
naming the key and the file; a dataclass with a classmethod ``from_mapping(data, *, where,
prefix)`` builds itself instead (it may call ``from_dict`` for its parts). ``apply_overrides``
takes ``a.b.c=value`` strings (values are parsed as YAML, so ``1e-4``, ``true``, ``[1, 2]`` work).
"""

from __future__ import annotations

import dataclasses
import enum
import math
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar, get_args, get_origin, get_type_hints

import yaml

from cotdistill.errors import ConfigError
from cotdistill.redaction import redact_text, strip_url_credentials
from cotdistill.registry import did_you_mean

C = TypeVar("C")

SECRET_MARKERS = ("api_key", "token", "secret", "password")


def from_dict(cls: type[C], data: Mapping[str, Any] | None, *, where: str = "config", prefix: str = "") -> C:
    """Build dataclass ``cls`` from ``data``; errors name ``where`` (file) and the dotted key."""
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: '{prefix.rstrip('.') or '<root>'}' must be a mapping, got {type(data).__name__}")
    custom = getattr(cls, "from_mapping", None)  # a config that routes its keys itself (teachers.TeacherConfig)
    if custom is not None:
        return custom(data, where=where, prefix=prefix)
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = [key for key in data if key not in fields]
    if unknown:
        key = unknown[0]
        raise ConfigError(
            f"{where}: unknown key '{prefix}{key}'{did_you_mean(str(key), list(fields))} "
            f"(valid keys: {', '.join(fields)})"
        )
    kwargs = {name: _convert(hints[name], data[name], where, f"{prefix}{name}") for name in fields if name in data}
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as exc:
        location = prefix.rstrip(".") or cls.__name__
        raise ConfigError(f"{where}: {location}: {exc}") from None


def _convert(tp: Any, value: Any, where: str, key: str) -> Any:
    origin = get_origin(tp)
    args = get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for option in (a for a in args if a is not type(None)):
            try:
                return _convert(option, value, where, key)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[-1] if errors else f"{where}: '{key}' has an invalid value {value!r}")
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(
                f"{where}: '{key}' must be one of {', '.join(map(repr, args))}, got {value!r}"
                f"{did_you_mean(str(value), [str(a) for a in args])}"
            )
        return value
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        return from_dict(tp, value, where=where, prefix=f"{key}.")
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        try:
            return tp(value)
        except ValueError:
            choices = [m.value for m in tp]
            raise ConfigError(
                f"{where}: '{key}' must be one of {', '.join(map(str, choices))}, got {value!r}"
                f"{did_you_mean(str(value), [str(c) for c in choices])}"
            ) from None
    if origin in (list, Sequence, tuple) or tp in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: '{key}' must be a list, got {value!r}")
        item = args[0] if args else Any
        converted = [_convert(item, v, where, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(converted) if origin is tuple or tp is tuple else converted
    if origin in (dict, Mapping) or tp is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: '{key}' must be a mapping, got {value!r}")
        vt = args[1] if len(args) == 2 else Any
        return {k: _convert(vt, v, where, f"{key}.{k}") for k, v in value.items()}
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: '{key}' must be true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: '{key}' must be an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, str):  # YAML 1.1 reads 1e-4 (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: '{key}' must be a number, got {value!r}")
        if not math.isfinite(value):
            raise ConfigError(f"{where}: '{key}' must be a finite number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: '{key}' must be a string, got {value!r}")
        return value
    return value


def to_dict(config: Any) -> Any:
    """Plain-data view of a config (enums as values), suitable for YAML/JSON.

    Credentials inside URLs (``http://user:KEY@host``) are left out, so no file written from a
    config can hold them.
    """
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        return {f.name: to_dict(getattr(config, f.name)) for f in dataclasses.fields(config)}
    if isinstance(config, enum.Enum):
        return config.value
    if isinstance(config, (list, tuple)):
        return [to_dict(v) for v in config]
    if isinstance(config, Mapping):
        return {k: to_dict(v) for k, v in config.items()}
    if isinstance(config, str):
        return strip_url_credentials(config)
    return config


def redact(data: Any) -> Any:
    """Replace values of secret-looking keys (api_key, token, ...) with '***' and mask known secrets."""
    if isinstance(data, Mapping):
        return {k: ("***" if _is_secret(str(k)) and v else redact(v)) for k, v in data.items()}
    if isinstance(data, list):
        return [redact(v) for v in data]
    if isinstance(data, str):
        return redact_text(data)
    return data


def _is_secret(key: str) -> bool:
    """api_key, hf_token, password, ... but not env-var names (*_env) or counts (max_tokens)."""
    key = key.lower()
    return any(m in key for m in SECRET_MARKERS) and not key.endswith(("_env", "tokens"))


def load_yaml(path: str | Path) -> dict[str, Any]:
    from cotdistill.io import read_text

    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: config file does not exist")
    try:
        data = yaml.safe_load(read_text(path))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}{line}: invalid YAML: {getattr(exc, 'problem', exc)}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping, got {type(data).__name__}")
    return data


def apply_overrides(data: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Apply ``a.b=value`` overrides to nested plain data (a deep copy is returned)."""
    import copy

    result = copy.deepcopy(data)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override '{item}' must look like key.path=value")
        key, raw = item.split("=", 1)
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        node = result
        parts = key.strip().split(".")
        for part in parts[:-1]:
            if isinstance(node, list) and part.isdigit():
                node = node[int(part)]
                continue
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, (dict, list)):
                raise ConfigError(f"override '{item}': '{part}' is not a section")
            node = child
        last = parts[-1]
        if isinstance(node, list) and last.isdigit():
            node[int(last)] = value
        else:
            node[last] = value
    return result


def load_config(
    cls: type[C],
    path: str | Path | None = None,
    overrides: Sequence[str] = (),
    *,
    base: Mapping[str, Any] | None = None,
) -> C:
    """Load ``cls`` from an optional YAML file (on top of ``base``) plus dotted overrides."""
    data: dict[str, Any] = dict(base or {})
    where = "defaults"
    if path is not None:
        data = _deep_merge(data, load_yaml(path))
        where = str(path)
    if overrides:
        data = apply_overrides(data, overrides)
        where = f"{where} + overrides"
    return from_dict(cls, data, where=where)


def _deep_merge(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def save_config(config: Any, path: str | Path) -> None:
    """Write the resolved config (secrets redacted) as YAML beside an output."""
    from cotdistill.io import atomic_write_text

    atomic_write_text(path, yaml.safe_dump(redact(to_dict(config)), sort_keys=False, allow_unicode=True))
