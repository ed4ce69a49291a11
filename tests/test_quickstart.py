"""`footfall quickstart` end to end (slow: trains, evaluates, exports, gates, compares): every stage's figure reaches
the report, and running it again skips the finished stages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("qpsolvers")


@pytest.mark.slow
def test_quickstart_writes_every_figure_and_resumes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from footfall.training.quickstart import STAGES, quickstart

    out = tmp_path / "qs"
    assert quickstart(out, minutes=0.05, compare_episodes=1, video=False) == 0
    state = json.loads((out / "stages.json").read_text())
    assert set(STAGES) <= set(state)
    md = (out / "report.md").read_text()
    for needle in ("velocity RMSE", "Parity", "Sim-to-sim", "PASS" if state["sim2sim"]["pass"] else "FAIL", "| mpc |"):
        assert needle in md
    assert (out / "learning_curve.png").is_file() and (out / "compare" / "scenarios.png").is_file()
    capsys.readouterr()
    assert quickstart(out, minutes=0.05, compare_episodes=1, video=False) == 0
    again = capsys.readouterr().out
    assert "done already: train, evaluate, export, sim2sim, compare, report" in again and "[1/6]" not in again
