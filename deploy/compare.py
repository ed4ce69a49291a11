"""`footfall compare`: learned policies and classical baselines, through the same runtime, on the same scenarios.

Every controller (an exported policy.onnx, or a baseline: `mpc` for the quadruped, `zmp` for the biped, `ik` for the
arm) runs in the deploy runtime, under the same safety layer, on a MujocoRobot in lockstep, over the same seeded
scenarios. Each controller ticks at its own rate (a policy at its contract's, a baseline at its `control_dt_s`).

Legged robots:
  commands   episodes of velocity commands held `segment_s` each, drawn from `command_ranges` (seeded), with the
             physics step, command latency (0-10 ms, drawn per episode) and sensor noise of sim2sim
  friction   the same commands at half the friction
  payload    the same commands with a payload on the base (a quarter of the robot's mass)
  push       walking at `push_speed` forward, a sideways push (a step change of the base velocity) of growing size
             at 3 s; the largest one survived for 3 s more is reported
Reported per controller: velocity-tracking RMSE (|v_xy - c_xy| after the first second of each command), fall rate,
largest push survived, cost of transport, compute per control step (the runtime's own measure: reading checks,
observation or estimator, controller, safety filter).

Arm: `targets` reachable target positions (forward kinematics of seeded configurations), `reach_s` each from the
home pose: final end-effector error and the time until it stays within 1 cm.

Every number but the compute times is a function of the seeds: a re-run gives the same report (tested).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from footfall.deploy.mujoco_robot import MujocoRobot, SensorNoise
from footfall.deploy.runtime import LockstepClock, Mode, Runtime, RuntimeConfig
from footfall.deploy.sim2sim import DEPLOY_NOISE, command_sequences
from footfall.robots.registry import load_robot
from footfall.robots.spec import RobotSpec

BASELINES = {"quadruped": "mpc", "biped": "zmp", "arm": "ik"}
DEFAULT_RANGES = {  # command ranges (vx, vy, yaw rate) the scenarios draw from, per kind; the training ranges
    "quadruped": ((-1.0, 1.0), (-0.5, 0.5), (-1.0, 1.0)),
    "biped": ((0.0, 0.5), (-0.2, 0.2), (-0.3, 0.3)),
}


@dataclass(frozen=True)
class CompareConfig:
    episodes: int = 10  # command episodes (the friction and payload scenarios run half as many each)
    episode_s: float = 20.0
    segment_s: float = 5.0
    physics_dt: float = 0.002
    latency_s: tuple[float, float] = (0.0, 0.01)
    noise: SensorNoise = DEPLOY_NOISE
    friction_scale: float = 0.5
    payload_frac: float = 0.25
    push_speed: float = 0.5  # m/s forward while pushed (biped: 0.3)
    pushes: tuple[float, ...] = (0.25, 0.5, 0.75, 1.0, 1.5, 2.0)  # m/s sideways, in order
    targets: int = 20  # arm
    reach_s: float = 3.0
    seed: int = 0
    command_ranges: tuple[tuple[float, float], ...] | None = None  # default: DEFAULT_RANGES of the robot's kind


@dataclass
class Episode:
    fell: bool = False
    fault: str | None = None
    sq_err: list[float] = field(default_factory=list)
    path_m: float = 0.0
    energy_j: float = 0.0
    control_ms: list[float] = field(default_factory=list)
    trace: dict[str, list[float]] | None = None


# ---------------------------------------------------------------- controllers


def make_controller(name: str, spec: RobotSpec) -> tuple[Any, float, str]:
    """(controller, control period s, label) for `name`: a path to policy.onnx or a baseline name."""
    if name.endswith(".onnx") or os.path.isfile(name):
        from footfall.deploy.policy import OnnxPolicy, PolicyController

        policy = OnnxPolicy.load(name)
        policy.check(spec)
        return PolicyController(policy, spec), policy.contract.timing.control_dt_s, f"policy {Path(name).name}"
    if name == "ik":
        from footfall.deploy.controllers.ik import ReachController

        ctl = ReachController(spec)
    elif name == "mpc":
        from footfall.deploy.controllers.mpc import ConvexMpcController

        ctl = ConvexMpcController(spec)
    elif name == "zmp":
        from footfall.deploy.controllers.zmp import ZmpWalker

        ctl = ZmpWalker(spec)
    else:
        raise ValueError(f"controller {name!r}: give a policy.onnx file or a baseline name (mpc, zmp, ik)")
    return ctl, float(ctl.control_dt_s), name


# ---------------------------------------------------------------- one episode


def _robot(spec: RobotSpec, cfg: CompareConfig, seed: int, friction: float = 1.0, payload: float = 0.0):  # noqa: ANN202
    rng = np.random.default_rng(seed)
    latency = float(rng.uniform(*cfg.latency_s))
    robot = MujocoRobot(spec, physics_dt=cfg.physics_dt, latency_s=latency, noise=cfg.noise, seed=seed)
    robot.vary(friction_scale=friction, payload_kg=payload)
    robot.reset(yaw=float(rng.uniform(-math.pi, math.pi)) if spec.floating_base else 0.0)
    return robot


def run_legged(
    name: str,
    spec: RobotSpec,
    cfg: CompareConfig,
    commands: np.ndarray,
    seed: int,
    friction: float = 1.0,
    payload: float = 0.0,
    push: tuple[float, np.ndarray] | None = None,
    duration_s: float | None = None,
    trace: bool = False,
) -> Episode:
    """One episode: `commands` (segments, 3) held `segment_s` each; an optional (time, dv_xy) push."""
    robot = _robot(spec, cfg, seed, friction, payload)
    ctl, dt, _ = make_controller(name, spec)
    rt = Runtime(robot, spec, ctl, RuntimeConfig(control_dt_s=dt, command_hold=True), clock=LockstepClock(robot))
    rt.set_velocity(commands[0])
    rt.run_now()
    h0 = float(robot.truth().base_pos[2])
    ep = Episode(trace={"t": [], "cmd": [], "v": []} if trace else None)
    per_seg = int(round(cfg.segment_s / dt))
    settle = int(round(1.0 / dt))
    total = int(round((duration_s or cfg.episode_s) / dt))
    push_tick = int(round(push[0] / dt)) if push is not None else -1
    prev_xy = robot.truth().base_pos[:2].copy()
    for k in range(total):
        seg = min(k // per_seg, len(commands) - 1)
        if k % per_seg == 0:
            rt.set_velocity(commands[seg])
        if k == push_tick:
            robot.push(push[1])
        rt.loop(ticks=1, freeze_gc=False)
        ep.control_ms.append(rt.control_s * 1e3)
        t = robot.truth()
        ep.path_m += float(np.linalg.norm(t.base_pos[:2] - prev_xy))
        prev_xy = t.base_pos[:2].copy()
        if rt.mode != Mode.RUN or -t.gravity_z < math.cos(math.radians(60)) or t.base_pos[2] < 0.5 * h0:
            ep.fell, ep.fault = True, rt.fault or "fell"
            break
        if k % per_seg >= settle:
            e = t.base_lin_vel[:2] - commands[seg][:2]
            ep.sq_err.append(float(e @ e))
        if ep.trace is not None:
            ep.trace["t"].append((k + 1) * dt)
            ep.trace["cmd"].append([float(x) for x in commands[seg]])
            ep.trace["v"].append([float(x) for x in t.base_lin_vel[:2]])
    ep.energy_j = robot.energy_j
    return ep


def run_reach(name: str, spec: RobotSpec, cfg: CompareConfig, target: np.ndarray, seed: int) -> dict[str, float]:
    robot = _robot(spec, cfg, seed)
    ctl, dt, _ = make_controller(name, spec)
    rt = Runtime(robot, spec, ctl, RuntimeConfig(control_dt_s=dt, command_hold=True), clock=LockstepClock(robot))
    rt.set_velocity(target)
    rt.run_now()
    site = robot.model.site(spec.end_effector_site).id
    base = robot.model.body(spec.base_body).id
    inside_since, ms = None, []
    err = math.inf
    for k in range(int(round(cfg.reach_s / dt))):
        rt.loop(ticks=1, freeze_gc=False)
        ms.append(rt.control_s * 1e3)
        R = robot.data.xmat[base].reshape(3, 3)
        ee = R.T @ (robot.data.site_xpos[site] - robot.data.xpos[base])
        err = float(np.linalg.norm(ee - target))
        if err <= 0.01:
            inside_since = inside_since if inside_since is not None else (k + 1) * dt
        else:
            inside_since = None
        if rt.mode != Mode.RUN:
            break
    return {"error_m": err, "time_s": inside_since if inside_since is not None else math.nan, "ms": ms}


# ---------------------------------------------------------------- scenarios


def _summary(eps: list[Episode], mass: float) -> dict[str, Any]:
    ok = [e for e in eps if not e.fell]
    errs = [x for e in ok for x in e.sq_err]
    cots = [e.energy_j / (mass * 9.81 * e.path_m) for e in ok if e.path_m > 0.5]
    return {
        "episodes": len(eps),
        "falls": sum(e.fell for e in eps),
        "lin_vel_rmse": float(math.sqrt(np.mean(errs))) if errs else None,
        "cost_of_transport": float(np.median(cots)) if cots else None,
        "fall_reasons": sorted({e.fault for e in eps if e.fault}),
    }


def compare_legged(names: list[str], spec: RobotSpec, cfg: CompareConfig, progress: bool = True) -> dict[str, Any]:
    ranges = cfg.command_ranges or DEFAULT_RANGES[spec.kind]
    segments = int(round(cfg.episode_s / cfg.segment_s))
    cmds = command_sequences(list(ranges), cfg.episodes, segments, cfg.seed)
    mass = float(np.sum(MujocoRobot(spec).model.body_mass))
    half = max(1, cfg.episodes // 2)
    push_speed = cfg.push_speed if spec.kind == "quadruped" else min(cfg.push_speed, 0.3)
    push_cmd = np.array([[push_speed, 0.0, 0.0]])
    jobs = len(names) * (cfg.episodes + 2 * half + len(cfg.pushes))
    bar = _bar(jobs, f"compare {spec.name}", progress)
    out: dict[str, Any] = {}
    for name in names:
        _, _, label = make_controller(name, spec)
        eps, fr, pl, ms = [], [], [], []
        for i in range(cfg.episodes):
            seed = cfg.seed * 1000 + i
            eps.append(run_legged(name, spec, cfg, cmds[i], seed, trace=(i == 0)))
            bar.update()
        for i in range(half):
            seed = cfg.seed * 1000 + i
            fr.append(run_legged(name, spec, cfg, cmds[i], seed, friction=cfg.friction_scale))
            bar.update()
            pl.append(run_legged(name, spec, cfg, cmds[i], seed, payload=cfg.payload_frac * mass))
            bar.update()
        survived = 0.0
        for j, dv in enumerate(cfg.pushes):
            ep = run_legged(
                name, spec, cfg, push_cmd, cfg.seed * 1000 + 500 + j, push=(3.0, np.array([0.0, dv])), duration_s=6.0
            )
            bar.update()
            if ep.fell:
                bar.update(len(cfg.pushes) - j - 1)
                break
            survived = dv
        for e in eps + fr + pl:
            ms += e.control_ms
        nominal = _summary(eps, mass)
        everything = eps + fr + pl
        out[name] = {
            "label": label,
            "lin_vel_rmse": nominal["lin_vel_rmse"],
            "fall_rate": sum(e.fell for e in everything) / len(everything),
            "largest_push_mps": survived,
            "cost_of_transport": nominal["cost_of_transport"],
            "compute_median_ms": float(np.median(ms)) if ms else None,
            "scenarios": {
                "commands": nominal,
                f"friction x{cfg.friction_scale:g}": _summary(fr, mass),
                f"payload +{cfg.payload_frac * mass:.1f} kg": _summary(pl, mass),
            },
            "trace": eps[0].trace,
        }
    bar.close()
    return out


def compare_arm(names: list[str], spec: RobotSpec, cfg: CompareConfig, progress: bool = True) -> dict[str, Any]:
    from footfall.deploy.controllers.ik import IKSolver

    model = spec.build_mjspec().compile()
    ik = IKSolver(model, spec.end_effector_site, list(spec.joint_names))
    rng = np.random.default_rng(cfg.seed)
    targets = []
    while len(targets) < cfg.targets:  # as the reach task samples them: 0.2 rad inside the ranges, z >= 0.1 m
        q = rng.uniform(ik.lo + 0.2, ik.hi - 0.2)
        p, _ = ik.forward(q)
        if p[2] >= 0.1:
            targets.append(p)
    bar = _bar(len(names) * len(targets), f"compare {spec.name}", progress)
    out = {}
    for name in names:
        _, _, label = make_controller(name, spec)
        res = []
        for i, p in enumerate(targets):
            res.append(run_reach(name, spec, cfg, p, cfg.seed * 1000 + i))
            bar.update()
        errs = np.array([r["error_m"] for r in res])
        times = np.array([r["time_s"] for r in res])
        out[name] = {
            "label": label,
            "reach_error_m": float(np.mean(errs)),
            "reach_error_median_m": float(np.median(errs)),
            "reached_share": float(np.mean(errs <= 0.01)),
            "time_to_1cm_median_s": float(np.nanmedian(times)) if np.isfinite(times).any() else None,
            "compute_median_ms": float(np.median([m for r in res for m in r["ms"]])),
        }
    bar.close()
    return out


def _bar(total: int, desc: str, on: bool):  # noqa: ANN202
    if on:
        try:
            from tqdm import tqdm

            return tqdm(total=total, desc=desc, unit="ep")
        except ImportError:
            pass

    class _Null:
        def update(self, n: int = 1) -> None: ...
        def close(self) -> None: ...

    return _Null()


# ---------------------------------------------------------------- the report


def compare(
    controllers: list[str],
    robot: str | None = None,
    out: str | Path = "compare",
    cfg: CompareConfig | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Run `controllers` on `robot` (default: the robot of the first policy) and write out/report.md + PNGs."""
    cfg = cfg or CompareConfig()
    if robot is None:
        policies = [c for c in controllers if c.endswith(".onnx")]
        if not policies:
            raise ValueError("name the robot (--robot go1|h1|panda|SPEC.toml) when no policy.onnx is given")
        from footfall.deploy.policy import OnnxPolicy, robot_for

        spec = robot_for(OnnxPolicy.load(policies[0]).contract, None, policies[0])
    else:
        spec = load_robot(robot)
    if spec.kind == "arm":
        results = compare_arm(controllers, spec, cfg, progress)
    else:
        results = compare_legged(controllers, spec, cfg, progress)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    report = {
        "robot": spec.name,
        "kind": spec.kind,
        "config": {k: v for k, v in asdict(cfg).items() if k != "noise"} | {"noise": asdict(cfg.noise)},
        "controllers": {k: {kk: vv for kk, vv in v.items() if kk != "trace"} for k, v in results.items()},
    }
    plots = _plots(results, spec, out)
    _write_atomic(out / "result.json", json.dumps(report, indent=1))
    _write_atomic(out / "report.md", markdown(report, plots))
    report["report"] = str(out / "report.md")
    return report


def table_rows(report: dict[str, Any]) -> tuple[tuple[str, ...], list[tuple[str, ...]]]:
    def f(x: Any, fmt: str) -> str:
        return "-" if x is None else format(x, fmt)

    if report["kind"] == "arm":
        head = ("controller", "mean reach error mm", "median mm", "within 1 cm", "time to 1 cm s", "compute ms")
        rows = [
            (
                v["label"],
                f(v["reach_error_m"] * 1e3, ".1f"),
                f(v["reach_error_median_m"] * 1e3, ".1f"),
                f(v["reached_share"], ".0%"),
                f(v["time_to_1cm_median_s"], ".2f"),
                f(v["compute_median_ms"], ".3f"),
            )
            for v in report["controllers"].values()
        ]
        return head, rows
    head = ("controller", "vel RMSE m/s", "fall rate", "largest push m/s", "CoT", "compute ms")
    rows = [
        (
            v["label"],
            f(v["lin_vel_rmse"], ".3f"),
            f(v["fall_rate"], ".0%"),
            f(v["largest_push_mps"], ".2f"),
            f(v["cost_of_transport"], ".2f"),
            f(v["compute_median_ms"], ".3f"),
        )
        for v in report["controllers"].values()
    ]
    return head, rows


def markdown(report: dict[str, Any], plots: list[str]) -> str:
    head, rows = table_rows(report)
    c = report["config"]
    lines = [f"# Controller comparison: {report['robot']}", ""]
    if report["kind"] == "arm":
        lines.append(
            f"{c['targets']} seeded reachable targets, {c['reach_s']:g} s each from the home pose, physics step "
            f"{c['physics_dt'] * 1e3:g} ms, command latency {c['latency_s'][0] * 1e3:g}-{c['latency_s'][1] * 1e3:g} ms."
        )
    else:
        lines.append(
            f"{c['episodes']} seeded episodes of {c['episode_s']:g} s (commands held {c['segment_s']:g} s), the same "
            f"commands at friction x{c['friction_scale']:g} and with a payload of {c['payload_frac']:.0%} of the "
            f"robot's mass ({c['episodes'] // 2 or 1} episodes each), sideways pushes of "
            f"{', '.join(f'{p:g}' for p in c['pushes'])} m/s while walking; physics step {c['physics_dt'] * 1e3:g} ms, "
            f"command latency {c['latency_s'][0] * 1e3:g}-{c['latency_s'][1] * 1e3:g} ms, sensor noise. Velocity "
            "RMSE over the nominal episodes without a fall, after the first second of each command; fall rate over "
            "all command episodes; compute per control step as the runtime measures it."
        )
    lines += ["", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    if report["kind"] != "arm":
        lines += ["", "Per scenario (RMSE m/s, falls/episodes):", ""]
        names = list(next(iter(report["controllers"].values()))["scenarios"])
        lines += ["| controller | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
        for v in report["controllers"].values():
            cells = []
            for s in names:
                sc = v["scenarios"][s]
                rm = "-" if sc["lin_vel_rmse"] is None else f"{sc['lin_vel_rmse']:.3f}"
                cells.append(f"{rm} ({sc['falls']}/{sc['episodes']})")
            lines.append(f"| {v['label']} | " + " | ".join(cells) + " |")
    lines += [""] + [f"![{p}]({p})" for p in plots]
    if not plots:
        lines.append("(no plots: matplotlib is not installed; `pip install matplotlib`)")
    return "\n".join(lines) + "\n"


def _plots(results: dict[str, Any], spec: RobotSpec, out: Path) -> list[str]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    names = list(results)
    labels = [results[n]["label"] for n in names]
    files = []
    if spec.kind == "arm":
        fig, ax = plt.subplots(figsize=(6, 3.5))
        ax.bar(labels, [results[n]["reach_error_m"] * 1e3 for n in names], color=["C0", "C1", "C2", "C3"][: len(names)])
        ax.axhline(10, color="k", lw=0.8, ls="--", label="1 cm")
        ax.set_ylabel("mean final error, mm")
        ax.set_title(f"{spec.name}: reaching")
        ax.legend()
        fig.tight_layout()
        _save(fig, out / "reach_error.png")
        plt.close(fig)
        return ["reach_error.png"]
    scen = list(results[names[0]]["scenarios"])
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    w = 0.8 / len(names)
    for i, n in enumerate(names):
        rm = [results[n]["scenarios"][s]["lin_vel_rmse"] or 0.0 for s in scen]
        fr = [results[n]["scenarios"][s]["falls"] / results[n]["scenarios"][s]["episodes"] for s in scen]
        x = np.arange(len(scen)) + i * w
        axes[0].bar_label(axes[0].bar(x, rm, w, label=labels[i]), fmt="%.3f", fontsize=7)
        axes[1].bar_label(axes[1].bar(x, fr, w, label=labels[i]), labels=[f"{v:.0%}" for v in fr], fontsize=7)
    for ax, yl in zip(axes, ("velocity RMSE, m/s", "fall rate")):
        ax.set_xticks(np.arange(len(scen)) + 0.4 - w / 2, scen)
        ax.set_ylabel(yl)
    axes[1].set_ylim(0, 1)
    axes[0].legend()
    fig.suptitle(f"{spec.name}: tracking and falls per scenario")
    fig.tight_layout()
    _save(fig, out / "scenarios.png")
    plt.close(fig)
    files.append("scenarios.png")
    fig, axes = plt.subplots(len(names), 1, figsize=(10, 2.6 * len(names)), sharex=True, squeeze=False)
    for ax, n, lab in zip(axes[:, 0], names, labels):
        tr = results[n]["trace"]
        if not tr or not tr["t"]:
            continue
        t, cmd, v = np.array(tr["t"]), np.array(tr["cmd"]), np.array(tr["v"])
        ax.plot(t, cmd[:, 0], "C0--", lw=1, label="vx command")
        ax.plot(t, v[:, 0], "C0", lw=1, label="vx")
        ax.plot(t, cmd[:, 1], "C1--", lw=1, label="vy command")
        ax.plot(t, v[:, 1], "C1", lw=1, label="vy")
        ax.set_ylabel("m/s (base frame)")
        ax.set_title(lab, fontsize=10)
        ax.legend(loc="upper right", fontsize=7, ncol=4)
    axes[-1, 0].set_xlabel("time, s (episode 0)")
    fig.tight_layout()
    _save(fig, out / "tracking.png")
    plt.close(fig)
    files.append("tracking.png")
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.bar(labels, [results[n]["largest_push_mps"] for n in names], color=[f"C{i}" for i in range(len(names))])
    ax.set_ylabel("largest sideways push survived, m/s")
    fig.tight_layout()
    _save(fig, out / "pushes.png")
    plt.close(fig)
    files.append("pushes.png")
    return files


def _save(fig: Any, path: Path) -> None:
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110)
    os.replace(tmp, path)


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
