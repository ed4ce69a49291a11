"""`field=value` overrides of (nested, frozen) config dataclasses, as the CLI's --set, --env and --safety take them.
Torch-free, so the deploy side can use it too."""

from __future__ import annotations

import ast
import dataclasses
from typing import Any


def parse_value(value: str) -> Any:
    try:
        return ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return value  # a bare string


def apply_overrides(cfg: Any, pairs: list[str]) -> Any:
    """Apply `a.b=value` overrides to a (nested, frozen) dataclass; values are Python literals."""
    for pair in pairs:
        if "=" not in pair:
            raise ValueError(f"override {pair!r} must look like field=value (e.g. ppo.learning_rate=3e-4)")
        key, raw = pair.split("=", 1)
        cfg = _set(cfg, key.strip().split("."), parse_value(raw.strip()), key)
    return cfg


def _set(obj: Any, path: list[str], value: Any, full: str) -> Any:
    names = {f.name for f in dataclasses.fields(obj)}
    if path[0] not in names:
        raise ValueError(f"unknown field {full!r}: {type(obj).__name__} has {sorted(names)}")
    if len(path) == 1:
        current = getattr(obj, path[0])
        if isinstance(current, tuple) and isinstance(value, list):
            value = tuple(tuple(v) if isinstance(v, list) else v for v in value)
        return dataclasses.replace(obj, **{path[0]: value})
    return dataclasses.replace(obj, **{path[0]: _set(getattr(obj, path[0]), path[1:], value, full)})


def describe_fields(cfg: Any, prefix: str = "") -> list[str]:
    """One line per settable field with its current value: the `--set` reference in `--help`."""
    lines = []
    for f in dataclasses.fields(cfg):
        v = getattr(cfg, f.name)
        if dataclasses.is_dataclass(v):
            lines += describe_fields(v, f"{prefix}{f.name}.")
        else:
            lines.append(f"  {prefix}{f.name} = {v!r}")
    return lines
