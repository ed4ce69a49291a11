"""`footfall compare`: the report is written, and a re-run with the same seed gives the same numbers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from footfall.deploy.compare import CompareConfig, compare


def _numbers(result_json: Path) -> dict:
    r = json.loads(result_json.read_text())
    for v in r["controllers"].values():
        v.pop("compute_median_ms")  # wall-clock: the one figure a re-run does not repeat
    return r


def test_legged_compare_is_reproducible_and_writes_the_report(exported: tuple[Path, dict], tmp_path: Path) -> None:
    cfg = CompareConfig(episodes=2, episode_s=2.0, segment_s=1.0, pushes=(0.5, 1.0))
    a = compare([str(exported[0])], out=tmp_path / "a", cfg=cfg, progress=False)
    b = compare([str(exported[0])], out=tmp_path / "b", cfg=cfg, progress=False)
    assert _numbers(tmp_path / "a" / "result.json") == _numbers(tmp_path / "b" / "result.json")
    c = next(iter(a["controllers"].values()))
    assert set(c["scenarios"]) == {"commands", "friction x0.5", "payload +3.2 kg"}
    assert 0 <= c["fall_rate"] <= 1 and c["compute_median_ms"] > 0
    md = (tmp_path / "a" / "report.md").read_text()
    assert "| controller | vel RMSE m/s | fall rate | largest push m/s | CoT | compute ms |" in md
    pytest.importorskip("matplotlib")
    for png in ("scenarios.png", "tracking.png", "pushes.png"):
        assert (tmp_path / "a" / png).stat().st_size > 1000 and f"]({png})" in md
    assert b["robot"] == "go1"


def test_different_seeds_give_different_scenarios(exported: tuple[Path, dict], tmp_path: Path) -> None:
    cfg = CompareConfig(episodes=1, episode_s=2.0, segment_s=1.0, pushes=(0.5,))
    compare([str(exported[0])], out=tmp_path / "a", cfg=cfg, progress=False)
    compare([str(exported[0])], out=tmp_path / "b", cfg=CompareConfig(**{**cfg.__dict__, "seed": 1}), progress=False)
    assert _numbers(tmp_path / "a" / "result.json") != _numbers(tmp_path / "b" / "result.json")


def test_arm_compare_with_the_ik_baseline(tmp_path: Path) -> None:
    pytest.importorskip("qpsolvers")
    r = compare(["ik"], robot="panda", out=tmp_path, cfg=CompareConfig(targets=3, reach_s=2.5), progress=False)
    ik = r["controllers"]["ik"]
    assert ik["reach_error_m"] < 0.01 and ik["reached_share"] == 1.0


def test_unknown_controller_names_the_choices(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="mpc, zmp, ik"):
        compare(["lqr"], robot="go1", out=tmp_path, cfg=CompareConfig(episodes=1), progress=False)
