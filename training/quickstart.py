"""`footfall quickstart`: the whole path on built-in defaults, one command, one report.

Stages, each resumable (its result is stored in OUT/stages.json once it is done, written atomically; Ctrl-C stops
the current stage cleanly, and running the same command again continues from there: training from its last
checkpoint, every finished stage skipped):

1. train     the quadruped on flat ground (preset quadruped-flat, PPO) for `minutes`
2. evaluate  `footfall eval`: velocity-tracking RMSE, fall rate, cost of transport over 20 seeded episodes, and a
             rollout GIF when offscreen rendering works (skipped with a message when it does not)
3. export    the ONNX policy with its contract, after the torch/onnxruntime parity check
4. sim2sim   the sim-to-sim gate through the deploy runtime (2 ms physics, 0-20 ms latency, sensor noise)
5. compare   the policy against the convex-MPC baseline on the same seeded scenarios (`footfall compare`)
6. report    OUT/report.md: every figure above, the learning curve and the comparison plots
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from pathlib import Path
from typing import Any

from footfall.training.runner import atomic_write_text

STAGES = ("train", "evaluate", "export", "sim2sim", "compare", "report")
# Minutes each stage after training takes on a 2-core machine (measured; printed as the plan at the start).
STAGE_MINUTES = {"evaluate": 0.7, "export": 0.8, "sim2sim": 0.5, "compare": 1.5, "report": 0.1}


def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.is_file() else {}


def _save(path: Path, state: dict[str, Any]) -> None:
    atomic_write_text(json.dumps(state, indent=1), path)


def quickstart(
    out: str | Path = "runs/quickstart", minutes: float = 15.0, compare_episodes: int = 4, video: bool = True
) -> int:
    from footfall.training.presets import preset

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    state_path = out / "stages.json"
    state = _load(state_path)
    done = [s for s in STAGES if s in state]
    left = [s for s in STAGES if s not in state]
    est = sum(STAGE_MINUTES.get(s, 0.0) for s in left)
    if "train" in left:
        trained = 0.0
        ck = out / "train" / "checkpoint.pt"
        if ck.is_file():
            trained = _load(out / "train" / "progress.json").get("elapsed_s", 0.0) / 60
        est += max(0.0, minutes - trained)
    print(
        f"footfall quickstart -> {out}: train the quadruped ({minutes:g} min), evaluate, export to ONNX, sim-to-sim "
        f"gate, compare with convex MPC, report. About {est:.0f} minutes left on this machine"
        + (f" (done already: {', '.join(done)})" if done else "")
        + ". Ctrl-C stops; the same command continues.",
        flush=True,
    )
    t0 = time.perf_counter()
    run = out / "train"
    policy = out / "policy.onnx"

    if "train" not in state:
        print("\n[1/6] train", flush=True)
        from footfall.training.train import train

        cfg = dataclasses.replace(preset("quadruped-flat"), minutes=minutes)
        summary = train(cfg, run, resume=(run / "checkpoint.pt").is_file())
        atomic_write_text(json.dumps({"elapsed_s": summary["elapsed_s"]}), run / "progress.json")
        if summary["interrupted"]:
            print(f"\nstopped after {summary['elapsed_s'] / 60:.1f} min of training; run the same command to continue")
            return 130
        state["train"] = summary
        _save(state_path, state)

    if "evaluate" not in state:
        print("\n[2/6] evaluate (20 seeded episodes, training environment)", flush=True)
        from footfall.training.evaluate import evaluate_run

        state["evaluate"] = evaluate_run(run, video=video)
        _save(state_path, state)

    if "export" not in state:
        print("\n[3/6] export to ONNX (parity check on 10k recorded observations)", flush=True)
        from footfall.training.export import export_run

        state["export"] = export_run(run, policy, evaluate=True)
        _save(state_path, state)

    if "sim2sim" not in state:
        print("\n[4/6] sim-to-sim gate", flush=True)
        from footfall.deploy.sim2sim import sim2sim

        state["sim2sim"] = sim2sim(policy)
        _save(state_path, state)

    if "compare" not in state:
        print(f"\n[5/6] compare with convex MPC ({compare_episodes} episodes per scenario set)", flush=True)
        from footfall.deploy.compare import CompareConfig, compare

        try:
            state["compare"] = compare(
                [str(policy), "mpc"], out=out / "compare", cfg=CompareConfig(episodes=compare_episodes)
            )
        except ImportError as e:
            print(f"comparison skipped: {e} (pip install -e '.[baselines]')")
            state["compare"] = {"skipped": str(e)}
        _save(state_path, state)

    print("\n[6/6] report", flush=True)
    report = write_report(out, state)
    state["report"] = str(report)
    _save(state_path, state)
    print(f"\nreport: {report}  ({(time.perf_counter() - t0) / 60:.1f} min this time)")
    print(json.dumps(summary_figures(state)))
    return 0


def summary_figures(state: dict[str, Any]) -> dict[str, Any]:
    ev, s2s, ex = state.get("evaluate", {}), state.get("sim2sim", {}), state.get("export", {})
    out = {
        "train_minutes": round(state.get("train", {}).get("elapsed_s", 0.0) / 60, 1),
        "lin_vel_rmse": ev.get("lin_vel_rmse"),
        "fall_rate": ev.get("fall_rate"),
        "cost_of_transport": ev.get("cost_of_transport"),
        "parity_max_abs_error": ex.get("parity_max_abs_error"),
        "sim2sim_pass": s2s.get("pass"),
        "sim2sim_lin_vel_rmse": s2s.get("lin_vel_rmse"),
        "sim2sim_falls": s2s.get("falls"),
    }
    for name, c in state.get("compare", {}).get("controllers", {}).items():
        key = "mpc" if name == "mpc" else "policy"
        out[f"compare_{key}_lin_vel_rmse"] = c["lin_vel_rmse"]
        out[f"compare_{key}_fall_rate"] = c["fall_rate"]
        out[f"compare_{key}_largest_push_mps"] = c["largest_push_mps"]
    return out


def write_report(out: Path, state: dict[str, Any]) -> Path:
    from footfall.benchmarks.common import cell, machine

    tr, ev, ex, s2s = state["train"], state["evaluate"], state["export"], state["sim2sim"]
    m = machine()
    lines = [
        "# footfall quickstart report",
        "",
        f"{m['date']}, {m['machine']}, Python {m['python']}, MuJoCo {m['mujoco']}.",
        "",
        "## Training (quadruped-flat, PPO)",
        "",
        f"{tr['iteration']} iterations, {tr['env_steps']:,} environment steps in {tr['elapsed_s'] / 60:.1f} minutes.",
        "",
    ]
    if (out / "train" / "learning_curve.png").is_file():
        shutil.copyfile(out / "train" / "learning_curve.png", out / "learning_curve.png")
        lines += ["![learning curve](learning_curve.png)", ""]
    lines += [
        "## Evaluation (training environment, 20 seeded episodes of 20 s, deterministic policy)",
        "",
        "| velocity RMSE m/s | fall rate | cost of transport |",
        "|---|---|---|",
        f"| {cell(ev.get('lin_vel_rmse'), '.3f')} | {cell(ev.get('fall_rate'), '.0%')} | "
        f"{cell(ev.get('cost_of_transport'), '.2f')} |",
        "",
        "The bar footfall sets itself: RMSE <= 0.2 m/s and falls <= 5% (`footfall bench train`).",
        "",
    ]
    if ev.get("video"):
        shutil.copyfile(ev["video"], out / "rollout.gif")
        lines += ["![rollout](rollout.gif)", ""]
    else:
        lines += ["(no video: offscreen rendering was unavailable; install libosmesa6 and set MUJOCO_GL=osmesa)", ""]
    lines += [
        "## Export",
        "",
        f"`{ex['onnx']}`: {ex['observation_size']} observations -> {ex['action_size']} actions, opset {ex['opset']}, "
        f"{ex['bytes'] / 1024:.0f} KiB, the policy contract in its metadata. Parity: max |a_torch - a_onnx| = "
        f"{ex['parity_max_abs_error']:.2e} over {ex['parity_samples']:,} recorded observations.",
        "",
        "## Sim-to-sim gate (deploy runtime, MujocoRobot)",
        "",
        "| physics dt | latency ms | episodes | falls | velocity RMSE | training RMSE | ratio | result |",
        "|---|---|---|---|---|---|---|---|",
        f"| {s2s['physics_dt'] * 1e3:g} ms | {s2s['latency_s'][0] * 1e3:g}-{s2s['latency_s'][1] * 1e3:g} | "
        f"{s2s['episodes']} | {s2s['falls']} | {cell(s2s['lin_vel_rmse'], '.3f')} | "
        f"{cell(s2s['reference_rmse'], '.3f')} | "
        f"{cell(s2s['rmse_ratio'], '.2f')} | {'PASS' if s2s['pass'] else 'FAIL'} |",
        "",
        "Pass: no falls and RMSE within 25% of the training-environment evaluation.",
        "",
        "## Against convex MPC (same runtime, same seeded scenarios)",
        "",
    ]
    cmp = state.get("compare", {})
    if "controllers" in cmp:
        md = (out / "compare" / "report.md").read_text().splitlines()[2:]
        lines += [ln.replace("](", "](compare/") if ln.startswith("![") else ln for ln in md]
    else:
        lines.append(f"(skipped: {cmp.get('skipped', 'not run')})")
    path = out / "report.md"
    atomic_write_text("\n".join(lines) + "\n", path)
    return path
