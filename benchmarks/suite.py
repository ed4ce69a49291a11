"""`footfall bench` with no name: every benchmark, then one table of the headline figures (ours, the reference
measured in the same run, their ratio, the target), written to OUT/summary.md and OUT/summary.json."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from footfall.benchmarks.common import machine, table


def _g(d: dict[str, Any], *keys: str) -> Any:
    for k in keys:
        if not isinstance(d, dict):
            return None
        d = d.get(k)
    return d


def _ratio(a: Any, b: Any) -> float | None:
    return a / b if isinstance(a, (int, float)) and isinstance(b, (int, float)) and b else None


def rows(results: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per headline figure: benchmark, figure, ours, reference (name and value), ratio, target."""
    out: list[dict[str, Any]] = []

    def add(bench: str, figure: str, ours: Any, ref_name: str, ref: Any, target: str, ratio: Any = "auto") -> None:
        out.append(
            {
                "benchmark": bench,
                "figure": figure,
                "ours": ours,
                "reference": ref_name,
                "reference_value": ref,
                "ratio": _ratio(ours, ref) if ratio == "auto" else ratio,
                "target": target,
            }
        )

    if "env" in results:
        r = results["env"]
        add(
            "env",
            f"env steps/s, {r.get('num_envs')} envs",
            r.get("env_steps_per_s"),
            "raw mujoco.rollout",
            r.get("raw_steps_per_s"),
            "close to raw",
        )
    if "train" in results:
        r = results["train"]
        add(
            "train",
            f"time to RMSE <= {r.get('threshold')} m/s, s (median of {r.get('seeds')})",
            r.get("time_to_threshold_s"),
            "SB3 PPO + VecNormalize",
            r.get("sb3_time_to_threshold_s"),
            f"<= {r.get('budget_s', 0) / 60:g} min, before SB3",
        )
        finals = r.get("final_lin_vel_rmse_per_seed") or []
        add(
            "train",
            f"final RMSE after {r.get('budget_s', 0) / 60:g} min, m/s",
            sorted(finals)[len(finals) // 2] if finals else None,
            "SB3 PPO + VecNormalize",
            r.get("sb3_final_lin_vel_rmse"),
            "<= 0.2",
        )
    if "deploy" in results:
        r = results["deploy"]
        add(
            "deploy",
            "mean period error, us",
            r.get("period_error_mean_us"),
            "work(); sleep(period)",
            r.get("naive_sleep_period_error_mean_us"),
            "0",
        )
        add("deploy", "deadline lateness p99, us", r.get("lateness_p99_us"), "", None, "<= 200")
        add(
            "deploy",
            "tick compute median, ms",
            r.get("tick_median_ms"),
            "same code back to back",
            r.get("tick_hot_median_ms"),
            "<= 0.3",
        )
        add("deploy", "500 Hz bridge lateness p99, us", r.get("bridge_lateness_p99_us"), "", None, "-")
        add(
            "deploy",
            "whole tick median, ms (HMAC link + log thread)",
            r.get("tick_total_median_ms"),
            "keyless link, no log",
            r.get("plain_tick_total_median_ms"),
            "-",
        )
    if "faults" in results:
        r = results["faults"]
        add("faults", f"crashes ({r.get('scenarios')} scenarios)", r.get("crashes"), "", None, "0", ratio=None)
        add("faults", "unsafe commands applied", r.get("unsafe_commands_applied"), "", None, "0", ratio=None)
        add(
            "faults",
            f"spoofed / replayed accepted ({r.get('datagrams_tried')} tried)",
            f"{r.get('spoofed_accepted')} / {r.get('replayed_accepted')}",
            "",
            None,
            "0 / 0",
            ratio=None,
        )
        add("faults", "periods to damp, max", r.get("max_periods_to_damp"), "", None, "<= 3", ratio=None)
        add("faults", "log ticks lost on SIGKILL", r.get("telemetry_ticks_lost_on_sigkill"), "", None, "<= 50 (1 s)")
    if "ik" in results:
        r = results["ik"]
        add(
            "ik",
            "median solve, ms",
            r.get("median_solve_ms"),
            "mink.solve_ik (daqp)",
            r.get("mink_median_solve_ms"),
            "no slower than mink",
        )
        add("ik", "success rate (1 mm, 0.01 rad)", r.get("success_rate"), "mink", r.get("mink_success_rate"), ">= 0.99")
    if "zmp" in results:
        r = results["zmp"]
        ref = r.get("reference_no_preview") or {}
        add(
            "zmp",
            f"falls / {r.get('episodes')} episodes at {_fmt(r.get('speed_mps'))} m/s",
            r.get("falls"),
            "no preview term",
            ref.get("falls"),
            "0 of 20, >= 0.25 m/s",
            ratio=None,
        )
        add("zmp", "ZMP tracking RMS, mm", r.get("zmp_rms_mm"), "no preview term", ref.get("zmp_rms_mm"), "-")
        add("zmp", "compute per step median, ms", r.get("step_median_ms"), "", None, "<= 1")
    if "mpc" in results:
        r = results["mpc"]
        ref = r.get("reference") or {}
        add(
            "mpc",
            f"QP solve median, ms ({r.get('solver')})",
            r.get("qp_median_ms"),
            "uncondensed QP",
            ref.get("uncondensed_median_ms"),
            "<= 1",
        )
        add("mpc", "control cycle median, ms", r.get("cycle_median_ms"), "", None, "<= 4")
        add("mpc", "falls (0.8 fwd, 0.4 side, 1.5 yaw)", r.get("falls"), "", None, "0", ratio=None)
    return out


def _fmt(x: Any) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.3g}" if abs(x) < 1000 else f"{x:,.0f}"
    return str(x)


def write(results: dict[str, dict[str, Any]], out: str | Path = "bench_out") -> dict[str, Any]:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    m = machine()
    try:
        import onnxruntime

        m["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        pass
    rs = rows(results)
    head = ("benchmark", "figure", "ours", "reference", "ref. value", "ratio", "target")
    cells = [
        (
            r["benchmark"],
            r["figure"],
            _fmt(r["ours"]),
            r["reference"] or "-",
            _fmt(r["reference_value"]),
            _fmt(r["ratio"]),
            r["target"],
        )
        for r in rs
    ]
    versions = ", ".join(f"{k} {m[k]}" for k in ("python", "mujoco", "numpy", "onnxruntime") if k in m)
    text = f"{m['date']}, {m['machine']}; {versions}\n\n" + table(head, cells)
    md = [
        f"# footfall bench: {m['date']}",
        "",
        f"{m['machine']}; {versions}",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    md += ["| " + " | ".join(c) + " |" for c in cells]
    summary = {**m, "rows": rs}
    for name, body in (("summary.md", "\n".join(md) + "\n"), ("summary.json", json.dumps(summary, indent=1))):
        tmp = out / (name + ".tmp")
        tmp.write_text(body)
        os.replace(tmp, out / name)
    print("\n" + text)
    print(f"written: {out / 'summary.md'}, {out / 'summary.json'}")
    return summary
