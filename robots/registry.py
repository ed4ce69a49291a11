"""The built-in robots, found by name, and any robot given by the path of its spec file."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from footfall.assets import builtin_spec_files
from footfall.robots.spec import RobotSpec, RobotSpecError


def robot_names() -> list[str]:
    """Names of the built-in robots."""
    return list(builtin_spec_files())


@cache
def _load_cached(path: str) -> RobotSpec:
    return RobotSpec.from_file(path)


def load_robot(name_or_path: str | Path) -> RobotSpec:
    """A built-in robot by name (`go1`, `go2`, `h1`, `panda`), or any robot by the path of its spec file (.toml)."""
    key = str(name_or_path)
    builtins = builtin_spec_files()
    if key in builtins:
        return _load_cached(str(builtins[key]))
    if key.endswith(".toml") or Path(key).is_file():
        return _load_cached(str(Path(key).resolve()))
    raise RobotSpecError(
        f"unknown robot {key!r}. Built-in robots: {list(builtins)}; "
        "or pass the path of a spec file (.toml) for your own robot."
    )
