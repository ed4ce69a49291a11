"""The sim-to-sim gate: an exported policy, through the deploy runtime, on a MuJoCo robot that differs from training.

Each episode: a fresh MujocoRobot (physics step `physics_dt`, command latency drawn from `latency_s`, sensor noise),
the robot at its home pose turned to a random heading, the runtime in lockstep running the policy on 20 s of
velocity commands held 5 s each (seeded, from the contract's command ranges). Reported, as `footfall eval` does:
  lin_vel_rmse       RMS of |v_xy - c_xy| (IMU frame) over every tick except the first second after a command
                     change, over episodes without a fall
  falls              episodes where the base tilted past 60 deg, dropped below half its standing height, or the
                     safety layer tripped
  torque_saturation  share of physics steps with some joint at its torque limit
  cost_of_transport  positive joint work / (m g path length), median over episodes without a fall
Pass: no falls and lin_vel_rmse <= (1 + rmse_tolerance) x the training-env evaluation stored in the policy file
at export (or `reference_rmse` when given).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from footfall.deploy.console import Watch
from footfall.deploy.mujoco_robot import MujocoRobot, SensorNoise
from footfall.deploy.policy import OnnxPolicy, PolicyController, robot_for
from footfall.deploy.runtime import LockstepClock, Mode, Runtime, RuntimeConfig
from footfall.robots.spec import RobotSpec

# Sensor noise of the sim-to-sim gate and of `footfall compare`: uniform amplitudes in rad, rad/s, rad/s, m/s^2.
DEPLOY_NOISE = SensorNoise(joint_pos=0.005, joint_vel=0.1, gyro=0.02, accel=0.05)
SETTLE_S = 1.0  # seconds after each command change left out of the RMSE (acceleration), as in `footfall eval`


@dataclass(frozen=True)
class Sim2SimConfig:
    episodes: int = 20
    episode_s: float = 20.0
    segment_s: float = 5.0
    physics_dt: float = 0.002
    latency_s: tuple[float, float] = (0.0, 0.02)
    noise: SensorNoise = DEPLOY_NOISE
    seed: int = 0
    rmse_tolerance: float = 0.25


def command_sequences(ranges: list[tuple[float, float]], episodes: int, segments: int, seed: int) -> np.ndarray:
    """(episodes, segments, ncmd) commands, uniform in the ranges, from `seed`."""
    rng = np.random.default_rng(seed)
    lo, hi = np.array([r[0] for r in ranges]), np.array([r[1] for r in ranges])
    return rng.uniform(lo, hi, size=(episodes, segments, len(ranges)))


def run_episode(
    policy: OnnxPolicy, spec: RobotSpec, commands: np.ndarray, cfg: Sim2SimConfig, seed: int, watch: Watch | None = None
) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    latency = float(rng.uniform(*cfg.latency_s))
    robot = MujocoRobot(spec, physics_dt=cfg.physics_dt, latency_s=latency, noise=cfg.noise, seed=seed)
    robot.reset(yaw=float(rng.uniform(-math.pi, math.pi)))
    controller = PolicyController(policy, spec)
    dt = policy.contract.timing.control_dt_s
    rt = Runtime(robot, spec, controller, RuntimeConfig(control_dt_s=dt, command_hold=True), clock=LockstepClock(robot))
    rt.set_velocity(commands[0])
    rt.run_now()
    h0 = float(robot.truth().base_pos[2])
    ticks_per_segment = int(round(cfg.segment_s / dt))
    settle = int(round(SETTLE_S / dt))
    sq_err: list[float] = []
    fell = False
    prev_xy = robot.truth().base_pos[:2].copy()
    path = 0.0  # distance walked along the path (as `footfall eval` measures it), not start-to-end
    for k in range(int(round(cfg.episode_s / dt))):
        seg = k // ticks_per_segment
        if k % ticks_per_segment == 0:
            rt.set_velocity(commands[seg])
        rt.loop(ticks=1, freeze_gc=False)
        if watch is not None:
            watch.show(robot.data.qpos, robot.time_s())
        t = robot.truth()
        path += float(np.linalg.norm(t.base_pos[:2] - prev_xy))
        prev_xy = t.base_pos[:2].copy()
        if rt.mode != Mode.RUN or -t.gravity_z < math.cos(math.radians(60)) or t.base_pos[2] < 0.5 * h0:
            fell = True
            break
        if k % ticks_per_segment >= settle:
            e = t.base_lin_vel[:2] - commands[seg][:2]
            sq_err.append(float(e @ e))
    mass = float(np.sum(robot.model.body_mass))
    return {
        "fell": fell,
        "fault": rt.fault,
        "sq_err": sq_err,
        "torque_saturation": robot.saturated_steps / max(1, robot.steps),
        "cost_of_transport": robot.energy_j / (mass * 9.81 * path) if path > 0.5 and not fell else None,
        "latency_s": latency,
    }


def sim2sim(
    policy_path: str | Path,
    robot_spec: str | Path | None = None,
    cfg: Sim2SimConfig | None = None,
    reference_rmse: float | None = None,
    progress: bool = True,
    viewer: bool = False,
) -> dict[str, Any]:
    cfg = cfg or Sim2SimConfig()
    policy = OnnxPolicy.load(policy_path)
    c = policy.contract
    spec = robot_for(c, robot_spec, str(policy_path))
    policy.check(spec)
    if c.commands.names[:2] != ("vx", "vy"):
        raise ValueError(f"sim2sim runs velocity-tracking policies; {policy_path} takes commands {c.commands.names}")
    segments = int(round(cfg.episode_s / cfg.segment_s))
    cmds = command_sequences(list(c.commands.ranges), cfg.episodes, segments, cfg.seed)
    episodes = []
    watch = Watch(spec.build_model()) if viewer else None  # (ViewerUnavailable without a display)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=cfg.episodes, desc=f"sim2sim {spec.name}", unit="ep")
    try:
        for i in range(cfg.episodes):
            if watch is not None:
                watch.episode()
            episodes.append(run_episode(policy, spec, cmds[i], cfg, seed=cfg.seed * 1000 + i, watch=watch))
            if bar is not None:
                bar.update()
    finally:
        if watch is not None:
            watch.close()
    if bar is not None:
        bar.close()
    ok = [e for e in episodes if not e["fell"]]
    errs = [x for e in ok for x in e["sq_err"]]
    rmse = float(math.sqrt(np.mean(errs))) if errs else None  # None: every episode fell before a measured tick
    ref = reference_rmse if reference_rmse is not None else policy.eval_report.get("lin_vel_rmse")
    falls = sum(e["fell"] for e in episodes)
    cots = [e["cost_of_transport"] for e in episodes if e["cost_of_transport"] is not None]
    passed = falls == 0 and ref is not None and rmse is not None and rmse <= (1 + cfg.rmse_tolerance) * ref
    return {
        "policy": str(policy_path),
        "robot": spec.name,
        "physics_dt": cfg.physics_dt,
        "latency_s": list(cfg.latency_s),
        "episodes": cfg.episodes,
        "falls": int(falls),
        "fall_reasons": sorted({e["fault"] for e in episodes if e["fault"]}),
        "lin_vel_rmse": rmse,
        "reference_rmse": ref,
        "rmse_ratio": rmse / ref if ref and rmse is not None else None,
        "torque_saturation": float(np.mean([e["torque_saturation"] for e in episodes])),
        "cost_of_transport": float(np.median(cots)) if cots else None,
        "pass": bool(passed),
    }
