"""`footfall bench mpc`: the quadruped convex MPC (deploy/controllers/mpc.py) trotting go1 in MuJoCo.

Each episode: a fresh MujocoRobot (2 ms physics, command latency 0-10 ms and the sensor noise of sim2sim and
`footfall compare`, see BenchConfig; seeded), the deploy runtime in lockstep with the safety layer at its
defaults, the controller at its own rate (500 Hz, MPC at 33 Hz).
The command ramps linearly from zero to its target over 1 s, then holds for `hold_s`. Base velocity and height
come from the controller's state estimator (leg kinematics + accelerometer), never from the simulator; the
simulator's truth is read only for the metrics:
  falls        base tilt past 60 deg, base below half its standing height, or the runtime leaving RUN (fault)
  *_rmse       RMS of the tracking error of vx, vy (IMU frame) and yaw rate over the hold, after 1 s to settle
  qp_median_ms the QP solve alone (qpsolvers.solve_qp), median over every solve
  cycle_median_ms the whole controller call on ticks that solve the MPC (estimator + QP build + solve + leg
               control), median; `cycle_all_median_ms` over every tick
Reference, same run and same QPs: a sample of the condensed QPs is re-solved (a) in the uncondensed form (states
as variables, the dynamics step by step as equality constraints, swing forces bounded to zero) with the same
solver and (b) with OSQP if it is installed; reported as ratios of medians.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from footfall.benchmarks.common import machine, table

SCENARIOS: dict[str, tuple[float, float, float]] = {
    "forward 0.8 m/s": (0.8, 0.0, 0.0),
    "sideways 0.4 m/s": (0.0, 0.4, 0.0),
    "yaw 1.5 rad/s": (0.0, 0.0, 1.5),
    "mixed": (0.5, 0.2, 0.8),
}


@dataclass(frozen=True)
class BenchConfig:
    seeds: int = 3
    ramp_s: float = 1.0
    hold_s: float = 6.0
    settle_s: float = 1.0  # left out of the RMSE after the ramp
    physics_dt: float = 0.002
    # command latency (uniform per episode) and sensor noise: those of sim2sim and `footfall compare` (0-10 ms;
    # SensorNoise(0.005, 0.1, 0.02, 0.05)). Until the swing legs ran joint PD inside the drives, the benchmark used
    # 0-4 ms and about half this noise: a swing-foot Cartesian PD closed at 500 Hz went unstable with ~10 ms
    latency_s: tuple[float, float] = (0.0, 0.01)
    noise_joint_pos: float = 0.005  # rad
    noise_joint_vel: float = 0.1  # rad/s
    noise_gyro: float = 0.02  # rad/s
    noise_accel: float = 0.05  # m/s^2


def run_episode(
    command: tuple[float, float, float],
    seed: int,
    cfg: BenchConfig,
    controller_cfg: Any = None,
    keep_qps: int = 0,
) -> dict[str, Any]:
    """One episode through the deploy runtime in lockstep; returns tracking errors, timings and a QP sample."""
    from footfall.deploy.controllers.mpc import ConvexMpcController
    from footfall.deploy.mujoco_robot import MujocoRobot, SensorNoise
    from footfall.deploy.runtime import LockstepClock, Mode, Runtime, RuntimeConfig
    from footfall.robots.registry import load_robot

    rng = np.random.default_rng(seed)
    spec = load_robot("go1")
    noise = SensorNoise(cfg.noise_joint_pos, cfg.noise_joint_vel, cfg.noise_gyro, cfg.noise_accel)
    latency = float(rng.uniform(*cfg.latency_s))
    robot = MujocoRobot(spec, physics_dt=cfg.physics_dt, latency_s=latency, noise=noise, seed=seed)
    robot.reset(yaw=float(rng.uniform(-math.pi, math.pi)))
    ctl = ConvexMpcController(spec, controller_cfg)
    ctl.robot_truth = robot  # used only when controller_cfg.use_truth (debugging); the benchmark leaves it off
    dt = ctl.control_dt_s
    rt = Runtime(robot, spec, ctl, RuntimeConfig(control_dt_s=dt, command_hold=True), clock=LockstepClock(robot))
    target = np.asarray(command, dtype=float)
    rt.set_velocity(np.zeros(3))
    rt.loop(ticks=1, freeze_gc=False)  # a first reading for reset()
    rt.run_now()
    h0 = float(robot.truth().base_pos[2])
    n_ramp = int(round(cfg.ramp_s / dt))
    n_total = n_ramp + int(round(cfg.hold_s / dt))
    n_settle = n_ramp + int(round(cfg.settle_s / dt))
    err = []
    qp_s, cycle_solve_s, cycle_all_s = [], [], []
    qps = []
    fell = False
    gyro_id = robot.layout.imu_gyro
    for k in range(n_total):
        rt.set_velocity(target * min(1.0, (k + 1) / n_ramp))
        rt.loop(ticks=1, freeze_gc=False)
        if rt.mode != Mode.RUN:
            fell = True
            break
        t = robot.truth()
        if -t.gravity_z < math.cos(math.radians(60)) or t.base_pos[2] < 0.5 * h0:
            fell = True
            break
        tm = ctl.timing
        cycle_all_s.append(tm["cycle_s"])
        if tm["qp_s"] > 0:
            qp_s.append(tm["qp_s"])
            cycle_solve_s.append(tm["cycle_s"])
            if keep_qps and len(qps) < keep_qps and ctl.solves % 3 == 0:
                qps.append(ctl.last_qp)
        if k >= n_settle:
            yaw_rate = float(robot.data.sensordata[gyro_id][2])  # IMU z ~ world z when upright
            err.append((t.base_lin_vel[0] - target[0], t.base_lin_vel[1] - target[1], yaw_rate - target[2]))
    e = np.asarray(err) if err else np.full((1, 3), np.nan)
    return {
        "fell": fell,
        "fault": rt.fault,
        "sim_s": float(robot.time_s()),
        "sq_err": e**2,
        "mean_err": e.mean(axis=0),
        "qp_s": qp_s,
        "cycle_solve_s": cycle_solve_s,
        "cycle_all_s": cycle_all_s,
        "qp_failures": ctl.failures,
        "solves": ctl.solves,
        "qps": qps,
        "torque_saturation": robot.saturated_steps / max(1, robot.steps),
        "safety_clamps": rt.safety.clamps,
        "latency_s": latency,
    }


def uncondensed(problem: Any) -> dict[str, np.ndarray]:
    """The same MPC with the states kept as variables, z = (x_1..x_N, u_0..u_{N-1} for all feet): the dynamics
    x_{k+1} = A_d x_k + B_k u_k as equality constraints step by step (A_d and B_k read back from the condensed
    matrices: S_x's first block and S_u's diagonal blocks), swing forces bounded to zero. A reference only."""
    sx, su, x0, w = problem.Sx, problem.Su, problem.x0, problem.weights
    nxh, nu_all = su.shape
    nz = nxh + nu_all
    p = np.zeros((nz, nz))
    p[:nxh, :nxh] = 2.0 * np.diag(w)
    p[nxh:, nxh:] = 2.0 * problem.alpha * np.eye(nu_all)
    q = np.zeros(nz)
    q[:nxh] = -2.0 * w * problem.x_ref.reshape(-1)
    nx, n = 13, nxh // 13
    m_u = nu_all // n
    a_d = sx[:nx]
    a = np.zeros((nxh, nz))
    a[:, :nxh] = np.eye(nxh)
    for k in range(n):
        rows = slice(k * nx, (k + 1) * nx)
        a[rows, nxh + k * m_u : nxh + (k + 1) * m_u] = -su[rows, k * m_u : (k + 1) * m_u]  # - B_k
        if k:
            a[rows, (k - 1) * nx : k * nx] = -a_d  # - A_d x_k
    b = np.zeros(nxh)
    b[:nx] = a_d @ x0
    pyramid = problem.G[:4, :3]  # one foot's friction rows (the same for every foot and step)
    g = np.hstack([np.zeros((4 * nu_all // 3, nxh)), np.kron(np.eye(nu_all // 3), pyramid)])
    h = np.zeros(g.shape[0])
    lb = np.full(nz, -1e9)
    ub = np.full(nz, 1e9)
    lb_u, ub_u = np.zeros(nu_all), np.zeros(nu_all)
    lb_u[problem.columns], ub_u[problem.columns] = problem.lb, problem.ub
    lb[nxh:], ub[nxh:] = lb_u, ub_u
    return {"P": p, "q": q, "G": g, "h": h, "A": a, "b": b, "lb": lb, "ub": ub}


def time_reference(qps: list[Any], solver: str) -> dict[str, Any]:
    """Re-solve sampled QPs: the condensed form with `solver` (timed again here, beside the others), the
    uncondensed form with the same solver, and the condensed form with OSQP when installed."""
    import qpsolvers

    from footfall.deploy.controllers.mpc import solve_forces

    out: dict[str, Any] = {"qps_resolved": len(qps)}
    cond, unc, osqp, dev_unc, dev_osqp = [], [], [], [], []
    for pr in qps:
        t0 = time.perf_counter()
        u = solve_forces(pr, solver)
        cond.append(time.perf_counter() - t0)
        m = uncondensed(pr)
        t0 = time.perf_counter()
        z = qpsolvers.solve_qp(m["P"], m["q"], m["G"], m["h"], m["A"], m["b"], m["lb"], m["ub"], solver=solver)
        unc.append(time.perf_counter() - t0)
        if u is not None and z is not None:
            dev_unc.append(float(np.max(np.abs(z[len(m["b"]) :][pr.columns] - u))))
        if "osqp" in qpsolvers.available_solvers:
            t0 = time.perf_counter()
            v = solve_forces(pr, "osqp", eps_abs=1e-5, eps_rel=1e-5, polish=True)
            osqp.append(time.perf_counter() - t0)
            if u is not None and v is not None:
                dev_osqp.append(float(np.max(np.abs(v - u))))
    med = lambda xs: float(np.median(xs) * 1e3) if xs else None  # noqa: E731
    out["resolve_condensed_median_ms"] = med(cond)
    out["uncondensed_median_ms"] = med(unc)
    out["uncondensed_ratio"] = med(unc) / med(cond) if cond and unc else None
    out["uncondensed_max_force_diff_n"] = max(dev_unc) if dev_unc else None
    out["uncondensed_size"] = [int(uncondensed(qps[0])["P"].shape[0]), int(uncondensed(qps[0])["A"].shape[0])]
    out["osqp_median_ms"] = med(osqp)
    out["osqp_ratio"] = med(osqp) / med(cond) if osqp else None
    out["osqp_max_force_diff_n"] = max(dev_osqp) if dev_osqp else None
    if not osqp:
        out["osqp_note"] = "osqp not installed (pip install osqp): skipped"
    return out


def run(quick: bool = False) -> dict[str, Any]:
    from footfall.deploy.controllers.mpc import ConvexMpcConfig

    cfg = BenchConfig(seeds=1, hold_s=3.0) if quick else BenchConfig()
    ccfg = ConvexMpcConfig()
    wall0 = time.perf_counter()
    per: dict[str, Any] = {}
    all_qp, all_cyc, all_cyc_all, sample = [], [], [], []
    falls = 0
    sq = []
    for name, cmd in SCENARIOS.items():
        eps = [run_episode(cmd, seed, cfg, ccfg, keep_qps=20) for seed in range(cfg.seeds)]
        ok = [e for e in eps if not e["fell"]]
        falls += len(eps) - len(ok)
        s = np.concatenate([e["sq_err"] for e in ok]) if ok else np.full((1, 3), np.nan)
        sq.append(s)
        per[name] = {
            "command": list(cmd),
            "falls": len(eps) - len(ok),
            "faults": sorted({e["fault"] for e in eps if e["fault"]}),
            "vx_rmse": float(np.sqrt(np.mean(s[:, 0]))),
            "vy_rmse": float(np.sqrt(np.mean(s[:, 1]))),
            "yaw_rate_rmse": float(np.sqrt(np.mean(s[:, 2]))),
            "mean_err": np.mean([e["mean_err"] for e in ok], axis=0).tolist() if ok else None,
            "torque_saturation": float(np.mean([e["torque_saturation"] for e in eps])),
            "qp_failures": int(sum(e["qp_failures"] for e in eps)),
        }
        for e in eps:
            all_qp += e["qp_s"]
            all_cyc += e["cycle_solve_s"]
            all_cyc_all += e["cycle_all_s"]
            sample += e["qps"]
    sq_all = np.concatenate(sq)
    ref = time_reference(sample[:60], ccfg.mpc.solver) if sample else {}
    nu = [int(len(p.q)) for p in sample]
    mc = ccfg.mpc
    return {
        **machine(),
        "quick": quick,
        "solver": mc.solver,
        "solver_settings": dict(mc.solver_settings) or "qpsolvers defaults",
        "estimator": "leg kinematics + accelerometer (use_truth=False)",
        "episodes": cfg.seeds * len(SCENARIOS),
        "hold_s": cfg.hold_s,
        "physics_dt": cfg.physics_dt,
        "latency_s": list(cfg.latency_s),
        "noise": {
            "joint_pos": cfg.noise_joint_pos,
            "joint_vel": cfg.noise_joint_vel,
            "gyro": cfg.noise_gyro,
            "accel": cfg.noise_accel,
        },
        "control_dt_s": ccfg.control_dt_s,
        "mpc_dt_s": mc.mpc_dt_s,
        "horizon": mc.horizon,
        "gait": f"trot, period {ccfg.gait.period_s} s, duty {ccfg.gait.duty}",
        "qp_vars_median": float(np.median(nu)) if nu else None,
        "qp_vars_uncondensed_full": mc.horizon * 12,
        "falls": int(falls),
        "vx_rmse": float(np.sqrt(np.nanmean(sq_all[:, 0]))),
        "vy_rmse": float(np.sqrt(np.nanmean(sq_all[:, 1]))),
        "yaw_rate_rmse": float(np.sqrt(np.nanmean(sq_all[:, 2]))),
        "qp_median_ms": float(np.median(all_qp) * 1e3) if all_qp else None,
        "qp_p99_ms": float(np.percentile(all_qp, 99) * 1e3) if all_qp else None,
        "cycle_median_ms": float(np.median(all_cyc) * 1e3) if all_cyc else None,
        "cycle_p99_ms": float(np.percentile(all_cyc, 99) * 1e3) if all_cyc else None,
        "cycle_all_median_ms": float(np.median(all_cyc_all) * 1e3) if all_cyc_all else None,
        "reference": ref,
        "scenarios": per,
        "wall_s": time.perf_counter() - wall0,
    }


def main(quick: bool = False) -> dict[str, Any]:
    r = run(quick)
    print(
        f"Convex MPC on go1 through the deploy runtime in lockstep: {r['gait']}, horizon {r['horizon']} x "
        f"{r['mpc_dt_s']} s, control {1 / r['control_dt_s']:g} Hz, physics {r['physics_dt']} s, latency "
        f"{r['latency_s']} s, sensor noise {r['noise']}; state from the estimator ({r['machine']}, "
        f"python {r['python']})"
    )
    rows = []
    for name, s in r["scenarios"].items():
        rows.append(
            (
                name,
                str(s["falls"]),
                f"{s['vx_rmse']:.3f}",
                f"{s['vy_rmse']:.3f}",
                f"{s['yaw_rate_rmse']:.3f}",
                f"{s['torque_saturation']:.3f}",
                str(s["qp_failures"]),
            )
        )
    print(table(("command", "falls", "vx rmse", "vy rmse", "yaw rate rmse", "torque sat.", "QP fails"), rows))
    ref = r["reference"]
    fmt = lambda x, f="{:.3f}": "-" if x is None else f.format(x)  # noqa: E731
    print()
    print(
        table(
            ("timing", "median ms", "p99 ms", "vs condensed"),
            [
                (
                    f"QP solve, condensed ({r['solver']}, {r['solver_settings']})",
                    fmt(r["qp_median_ms"]),
                    fmt(r["qp_p99_ms"]),
                    "1",
                ),
                (
                    "control cycle on solve ticks (estimator + MPC + legs)",
                    fmt(r["cycle_median_ms"]),
                    fmt(r["cycle_p99_ms"]),
                    "-",
                ),
                ("control cycle, every tick", fmt(r["cycle_all_median_ms"]), "-", "-"),
                (
                    f"re-solve of {ref.get('qps_resolved', 0)} sampled QPs, condensed",
                    fmt(ref.get("resolve_condensed_median_ms")),
                    "-",
                    "1",
                ),
                (
                    f"same QPs uncondensed {ref.get('uncondensed_size')} ({r['solver']})",
                    fmt(ref.get("uncondensed_median_ms")),
                    "-",
                    fmt(ref.get("uncondensed_ratio"), "{:.1f}x"),
                ),
                (
                    "same QPs condensed, osqp",
                    fmt(ref.get("osqp_median_ms")),
                    "-",
                    fmt(ref.get("osqp_ratio"), "{:.1f}x"),
                ),
            ],
        )  # fmt: skip
    )
    print(
        f"targets: no falls; QP median <= 1 ms; control cycle median <= 4 ms. QP variables (stance forces) median "
        f"{r['qp_vars_median']} of {r['qp_vars_uncondensed_full']}. Wall time {r['wall_s']:.0f} s."
    )
    print(json.dumps(r))
    return r
