"""`footfall bench zmp`: the biped ZMP walker (deploy/controllers/zmp.py) on the H1 through the deploy runtime.

Each episode: a fresh MujocoRobot (physics step 2 ms), the runtime in lockstep with the safety layer in between,
the walker commanded (vx, vy, yaw rate) = (0.3, 0, 0) for the whole episode (20 s; 10 s with --quick). Seeds vary
the initial joint angles (uniform +-0.02 rad), the command latency (uniform 0-10 ms), the foot-floor friction
(uniform 0.6-1.0) and the sensor noise draws (joint encoders 0.002 rad, 0.05 rad/s; gyro 0.01 rad/s; accel 0.05
m/s^2). What the walker reads: joint encoders and the IMU quaternion, nothing else.

Measured (from the simulator, for the report only; the controller never sees it):
  falls          tilt past 60 deg, base below half its standing height, or a safety trip
  speed_mps      median over episodes of the base's forward displacement from t = 2 s to the end, per second
  zmp_rms_mm     RMS of (measured ZMP - planned ZMP) over all control ticks after the first second; measured ZMP =
                 centre of pressure of the foot-floor contact normal forces (mj_contactForce); the plan is mapped
                 into the world through the planned and actual poses of the feet on the ground
  min_margin_mm  smallest distance of the measured ZMP to the edge of the support polygon (convex hull of the
                 soles of the feet touching the floor), over all ticks after the first second. The CoP cannot leave
                 that polygon, so 0 means a foot rolled onto an edge; `edge_share` is the share of ticks with the
                 ZMP within 2 mm of the edge, `margin_p05_mm` the 5th percentile of the margin over ticks
  step_median_ms median compute per control tick in the runtime: reading checks + walker + safety filter

Reference, same run and seeds: the same gait with the preview term switched off (the LQR ZMP servo alone), on the
first 5 episodes (2 with --quick); it shows what looking ahead buys.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, replace
from typing import Any

import mujoco
import numpy as np

from footfall.benchmarks.common import cell, machine, median, table

COMMAND = np.array([0.3, 0.0, 0.0])  # (vx, vy, yaw rate)
WARMUP_S = 1.0  # left out of the ZMP figures: the walker stands and lowers to its CoM height first
SPEED_FROM_S = 2.0  # speed measured from here (after the start and the first steps) to the end


@dataclass(frozen=True)
class Episode:
    seed: int
    latency_s: float
    friction: float
    qpos_noise: float


def draw_episode(seed: int) -> Episode:
    rng = np.random.default_rng(seed)
    return Episode(seed, float(rng.uniform(0.0, 0.010)), float(rng.uniform(0.6, 1.0)), 0.02)


# ---------------------------------------------------------------------------------------------- measurement


def centre_of_pressure(points: np.ndarray, normal_forces: np.ndarray) -> np.ndarray | None:
    """(2,) centre of pressure on flat ground of contact points (n, 3) with normal forces (n,); None if unloaded."""
    total = float(np.sum(normal_forces))
    if total <= 1e-6:
        return None
    return (normal_forces @ points[:, :2]) / total


def convex_hull(points: np.ndarray) -> np.ndarray:
    """Counter-clockwise convex hull (monotone chain) of 2-D points (n, 2) -> (m, 2)."""
    pts = sorted(map(tuple, np.asarray(points, dtype=float)))
    if len(pts) <= 2:
        return np.array(pts)

    def cross(o: tuple, a: tuple, b: tuple) -> float:
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    lower: list[tuple] = []
    for p in pts:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], p) <= 0:
            lower.pop()
        lower.append(p)
    upper: list[tuple] = []
    for p in reversed(pts):
        while len(upper) >= 2 and cross(upper[-2], upper[-1], p) <= 0:
            upper.pop()
        upper.append(p)
    return np.array(lower[:-1] + upper[:-1])


def polygon_margin(hull: np.ndarray, p: np.ndarray) -> float:
    """Signed distance of p to the edge of a counter-clockwise convex polygon: > 0 inside."""
    a = hull
    b = np.roll(hull, -1, axis=0)
    e = b - a
    cross = e[:, 0] * (p[1] - a[:, 1]) - e[:, 1] * (p[0] - a[:, 0])
    return float(np.min(cross / np.linalg.norm(e, axis=1)))


def sole_corners(data: mujoco.MjData, model: mujoco.MjModel, geom: int) -> np.ndarray:
    """(4, 2) ground-plane corners of a box sole."""
    c, R, h = data.geom_xpos[geom], data.geom_xmat[geom].reshape(3, 3), model.geom_size[geom]
    return np.array(
        [(c + R @ np.array([sx * h[0], sy * h[1], 0.0]))[:2] for sx, sy in ((1, 1), (-1, 1), (-1, -1), (1, -1))]
    )


class ZmpProbe:
    """The measured ZMP and the support polygon of a MujocoRobot's feet, from the simulator's contacts."""

    def __init__(self, model: mujoco.MjModel, foot_geoms: list[int]):
        self.model = model
        self.feet = foot_geoms
        self._f = np.zeros(6)

    def measure(self, data: mujoco.MjData) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
        """(CoP (2,) or None, normal force per foot (2,), support polygon hull (m, 2))."""
        pts, fn, per_foot = [], [], np.zeros(len(self.feet))
        for i in range(data.ncon):
            c = data.contact[i]
            for k, g in enumerate(self.feet):
                if g in (c.geom1, c.geom2):
                    mujoco.mj_contactForce(self.model, data, i, self._f)
                    n = c.frame[0:3]  # contact normal (first row of the frame)
                    fz = abs(self._f[0] * n[2])  # vertical part of the normal force (flat ground)
                    pts.append(c.pos.copy())
                    fn.append(fz)
                    per_foot[k] += fz
        if not pts:
            return None, per_foot, np.zeros((0, 2))
        cop = centre_of_pressure(np.array(pts), np.array(fn))
        corners = [sole_corners(data, self.model, g) for k, g in enumerate(self.feet) if per_foot[k] > 0.0]
        hull = convex_hull(np.concatenate(corners)) if corners else np.zeros((0, 2))
        return cop, per_foot, hull


def _pose2(data: mujoco.MjData, site: int) -> np.ndarray:
    R = data.site_xmat[site].reshape(3, 3)
    return np.array([data.site_xpos[site][0], data.site_xpos[site][1], math.atan2(R[1, 0], R[0, 0])])


def plan_to_world(planned: list[np.ndarray], actual: list[np.ndarray]) -> tuple[np.ndarray, float]:
    """Planar rigid transform (translation (2,), rotation) taking planned foot poses (x, y, yaw) onto the actual
    ones, averaged over the feet given."""
    ang = float(np.mean([math.remainder(a[2] - p[2], math.tau) for p, a in zip(planned, actual)]))
    c, s = math.cos(ang), math.sin(ang)
    R = np.array([[c, -s], [s, c]])
    t = np.mean([a[:2] - R @ p[:2] for p, a in zip(planned, actual)], axis=0)
    return t, ang


# ---------------------------------------------------------------------------------------------- episodes


def run_episode(ep: Episode, episode_s: float, preview: bool = True, cfg: Any = None) -> dict[str, Any]:
    """One seeded episode; `cfg` a ZmpConfig (default: the walker's), its preview switch set from `preview`."""
    from footfall.deploy.controllers.zmp import ZmpConfig, ZmpWalker
    from footfall.deploy.mujoco_robot import MujocoRobot, SensorNoise
    from footfall.deploy.runtime import LockstepClock, Mode, Runtime, RuntimeConfig
    from footfall.robots.registry import load_robot

    spec = load_robot("h1")
    noise = SensorNoise(joint_pos=0.002, joint_vel=0.05, gyro=0.01, accel=0.05)
    robot = MujocoRobot(spec, physics_dt=0.002, latency_s=ep.latency_s, noise=noise, seed=ep.seed)
    m, d = robot.model, robot.data
    foot_geoms = [m.geom(f).id for f in spec.feet]
    floor = m.geom("floor").id
    for g in [*foot_geoms, floor]:
        m.geom_friction[g, 0] = ep.friction
    robot.reset(qpos_noise=ep.qpos_noise)
    cfg = cfg or ZmpConfig()
    walker = ZmpWalker(spec, replace(cfg, preview=replace(cfg.preview, preview=preview)))
    dt = walker.control_dt_s
    rt = Runtime(robot, spec, walker, RuntimeConfig(control_dt_s=dt, command_hold=True), clock=LockstepClock(robot))
    rt.set_velocity(COMMAND)
    rt.run_now()
    probe = ZmpProbe(m, foot_geoms)
    sites = [m.site(f).id for f in spec.feet]
    h0 = float(robot.truth().base_pos[2])
    sq, margins = [], []
    x_from = None
    fell = False
    n = int(round(episode_s / dt))
    for k in range(n):
        rt.loop(ticks=1, freeze_gc=False)
        t = robot.truth()
        if rt.mode != Mode.RUN or -t.gravity_z < math.cos(math.radians(60)) or t.base_pos[2] < 0.5 * h0:
            fell = True
            break
        t_s = (k + 1) * dt
        if x_from is None and t_s >= SPEED_FROM_S:
            x_from = (t_s, t.base_pos[:2].copy())
        if t_s < WARMUP_S:
            continue
        cop, _, hull = probe.measure(d)
        if cop is None:
            continue
        feet = [0, 1] if walker.support == 2 else [walker.support]
        planned = [walker.feet_ref[i][[0, 1, 3]] for i in feet]
        tr, ang = plan_to_world(planned, [_pose2(d, sites[i]) for i in feet])
        c, s = math.cos(ang), math.sin(ang)
        ref = tr + np.array([[c, -s], [s, c]]) @ walker.zmp_ref
        e = cop - ref
        sq.append(float(e @ e))
        if len(hull) >= 3:
            margins.append(polygon_margin(hull, cop))
    speed = None
    if not fell and x_from is not None:
        t1, p1 = x_from
        speed = float(np.linalg.norm(robot.truth().base_pos[:2] - p1) / (episode_s - t1))
    timing = rt.timing()
    return {
        "seed": ep.seed,
        "fell": fell,
        "fault": rt.fault,
        "speed_mps": speed,
        "sq_err": sq,
        "margins": margins,
        "tick_median_ms": timing["tick_median_ms"],
        "clamps": rt.safety.clamps,
        "ticks": timing["ticks"],
    }


def summarize(eps: list[dict[str, Any]]) -> dict[str, Any]:
    errs = [x for e in eps for x in e["sq_err"]]
    margins = [min(e["margins"]) for e in eps if e["margins"]]
    all_m = np.array([x for e in eps for x in e["margins"]])
    speeds = [e["speed_mps"] for e in eps if e["speed_mps"] is not None]
    return {
        "episodes": len(eps),
        "falls": int(sum(e["fell"] for e in eps)),
        "speed_mps": median(speeds) if speeds else None,
        "speed_min_mps": min(speeds) if speeds else None,
        "zmp_rms_mm": float(math.sqrt(np.mean(errs)) * 1e3) if errs else None,
        "min_margin_mm": float(min(margins) * 1e3) if margins else None,
        "median_min_margin_mm": float(median(margins) * 1e3) if margins else None,
        "margin_p05_mm": float(np.percentile(all_m, 5) * 1e3) if len(all_m) else None,
        "margin_median_mm": float(np.median(all_m) * 1e3) if len(all_m) else None,
        "edge_share": float(np.mean(all_m < 0.002)) if len(all_m) else None,
        "step_median_ms": median([e["tick_median_ms"] for e in eps]),
        "clamp_share": float(sum(e["clamps"] for e in eps) / max(1, sum(e["ticks"] for e in eps))),
        "fall_reasons": sorted({e["fault"] for e in eps if e["fault"]}),
    }


def run(quick: bool = False) -> dict[str, Any]:
    episodes, episode_s, ref_episodes = (3, 10.0, 2) if quick else (20, 20.0, 5)
    draws = [draw_episode(1000 + i) for i in range(episodes)]
    t0 = time.perf_counter()
    main_eps = [run_episode(ep, episode_s, preview=True) for ep in draws]
    ref_eps = [run_episode(ep, episode_s, preview=False) for ep in draws[:ref_episodes]]
    wall = time.perf_counter() - t0
    r, ref = summarize(main_eps), summarize(ref_eps)
    out = {**machine(), "episode_s": episode_s, "command": COMMAND.tolist(), **r}
    out["reference_no_preview"] = ref
    out["wall_s"] = wall

    def ratio(a: float | None, b: float | None) -> float | None:
        return a / b if a is not None and b not in (None, 0) else None

    out["zmp_rms_ratio_no_preview"] = ratio(ref["zmp_rms_mm"], r["zmp_rms_mm"])
    return out


def main(quick: bool = False) -> dict[str, Any]:
    r = run(quick)
    ref = r["reference_no_preview"]
    print(
        f"Biped ZMP walking: H1, command vx {COMMAND[0]:g} m/s for {r['episode_s']:g} s, physics 2 ms, control "
        f"10 ms, lockstep runtime + safety layer ({r['machine']}, python {r['python']}, mujoco {r['mujoco']})"
    )
    rows = []
    for name, s in (("preview control (Kajita 2003)", r), ("reference: no preview term", ref)):
        rows.append(
            (
                name,
                f"{s['episodes']}",
                f"{s['falls']}",
                cell(s["speed_mps"], ".3f"),
                cell(s["zmp_rms_mm"], ".1f"),
                cell(s["min_margin_mm"], ".1f"),
                cell(s["margin_p05_mm"], ".1f"),
                cell(s["margin_median_mm"], ".1f"),
                cell(s["edge_share"], ".3f"),
                cell(s["step_median_ms"], ".3f"),
            )
        )
    print(
        table(
            (
                "controller",
                "episodes",
                "falls",
                "speed m/s (median)",
                "ZMP RMS mm",
                "min margin mm",
                "margin p5 mm",
                "margin median mm",
                "share at edge",
                "tick median ms",
            ),
            rows,
        )
    )
    print(
        f"targets: 0 falls, speed >= 0.25 m/s, tick median <= 1 ms. Reference ZMP RMS / preview ZMP RMS = "
        f"{cell(r['zmp_rms_ratio_no_preview'], '.2f')}. Fall reasons: {r['fall_reasons'] or 'none'}; "
        f"reference: {ref['fall_reasons'] or 'none'}. Wall {r['wall_s']:.0f} s."
    )
    print(json.dumps(r))
    return r


if __name__ == "__main__":
    main(quick=True)
