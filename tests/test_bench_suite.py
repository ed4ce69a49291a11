"""The suite summary of `footfall bench`: headline rows with the reference measured in the same run and the ratio."""

from __future__ import annotations

import json
from pathlib import Path

from footfall.benchmarks.suite import rows, write


def test_rows_pair_each_figure_with_its_reference(tmp_path: Path) -> None:
    results = {
        "ik": {"median_solve_ms": 0.5, "mink_median_solve_ms": 0.8, "success_rate": 1.0, "mink_success_rate": 0.9},
        "deploy": {
            "period_error_mean_us": 0.01,
            "naive_sleep_period_error_mean_us": 830.0,
            "lateness_p99_us": 35.0,
            "tick_median_ms": 0.6,
            "tick_hot_median_ms": 0.15,
            "bridge_lateness_p99_us": 140.0,
        },
    }
    rs = rows(results)
    ik = next(r for r in rs if r["benchmark"] == "ik" and r["figure"].startswith("median solve"))
    assert ik["ratio"] == 0.5 / 0.8 and ik["reference"].startswith("mink")
    assert {r["benchmark"] for r in rs} == {"ik", "deploy"}  # benchmarks not run leave no rows
    summary = write(results, tmp_path)
    md = (tmp_path / "summary.md").read_text()
    assert "| ik | median solve, ms | 0.5 | mink.solve_ik (daqp) | 0.8 | 0.625 |" in md
    assert json.loads((tmp_path / "summary.json").read_text())["rows"] == summary["rows"]
    assert "machine" in summary and "date" in summary
