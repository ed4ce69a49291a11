"""The `footfall` command a newcomer meets first, and the import boundary deploy depends on."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from footfall.robots.cli import main


def test_help_lists_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "robots" in out and "stand" in out


@pytest.mark.parametrize("command", ["export", "deploy", "sim2sim", "replay", "compare", "bridge", "bench"])
def test_every_command_explains_itself(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main([command, "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: footfall {command}") and len(out) > 300


def test_robots_lists_dof_mass_and_height(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["robots"]) == 0
    out = capsys.readouterr().out
    assert "go1" in out and "h1" in out and "panda" in out
    go1 = next(line for line in out.splitlines() if line.startswith("go1"))
    assert "12" in go1.split() and "12.74" in go1.split()


def test_stand_ends_with_a_json_line_and_fails_on_an_unknown_robot(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["stand", "--robot", "panda", "--seconds", "1"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert json.loads(last)["pass"] is True
    assert main(["stand", "--robot", "nope"]) == 2
    assert "unknown robot 'nope'" in capsys.readouterr().err


def test_robots_package_imports_neither_torch_nor_gymnasium() -> None:
    """The deploy side stands on footfall.robots; it must not pull in training dependencies."""
    code = (
        "import sys, footfall.robots, footfall.robots.cli, footfall.robots.stand; "
        "print(sorted(m for m in ('torch', 'gymnasium') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
