"""Evaluate a trained run: seeded episodes with randomization on and a deterministic policy.

Legged tasks: each episode is 20 s of commands held 5 s each, drawn (seeded) from the preset's command ranges.
  lin_vel_rmse       RMS of |v_xy - c_xy| (body frame, m/s) over all steps except the first second after each
                     command change (the time to accelerate), over episodes that did not fall
  fall_rate          share of episodes that ended by falling (tilt or base height)
  cost_of_transport  sum of positive joint power x dt / (m g distance), median over episodes that moved
  walk_success_rate  (biped) share of episodes at a held 0.5 m/s command that did not fall and whose mean
                     forward speed was within 20% of it
Arm: one target per episode; reach_error_m is the mean final end-effector error.
A figure with nothing to measure (RMSE when every episode fell at once, cost of transport when none moved) is None,
which JSON writes as null.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from footfall.deploy.console import Watch
from footfall.envs import make_task
from footfall.training.runner import atomic_write_text, load_checkpoint, policy_path

Policy = Callable[[np.ndarray], np.ndarray]
WALK_COMMAND = (0.5, 0.0, 0.0)  # (vx m/s, vy m/s, yaw rate rad/s) of the biped walking test
BARS = {  # robot family -> (metric, threshold, how it reads): the bars `footfall bench train` measures time to
    "quadruped": ("lin_vel_rmse", 0.2, "velocity RMSE <= 0.2 m/s and falls <= 5%"),
    "biped": ("walk_success_rate", 0.9, ">= 90% of episodes walk at 0.5 m/s for 20 s"),
    "arm": ("reach_error_m", 0.01, "mean reach error <= 1 cm"),
}


def family_of_task(task_id: str) -> str:
    """'footfall/Biped-Walk-Flat-v3' -> 'biped' (a key of BARS)."""
    return task_id.split("/")[-1].split("-")[0].lower()


def load_policy(run: str | Path) -> tuple[Any, Policy, dict]:
    """(RunConfig, deterministic numpy policy obs (N, D) -> actions (N, A), checkpoint) of a run directory (its
    best.pt when its training chose one by checks, else checkpoint.pt) or of a checkpoint file."""
    from footfall.training.train import run_config_from_dict

    ck = load_checkpoint(policy_path(run))
    cfg = run_config_from_dict(ck["config"])
    return cfg, numpy_policy(actor_from_checkpoint(cfg, ck)), ck


def numpy_policy(actor: torch.nn.Module) -> Policy:
    """obs (N, D) float64 -> actions (N, A) float64 through a torch actor, without gradients."""

    def policy(obs: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return actor(torch.as_tensor(obs, dtype=torch.float32)).numpy().astype(np.float64)

    return policy


def actor_from_checkpoint(cfg: Any, ck: dict) -> torch.nn.Module:
    """The deterministic actor module (normalizer folded in) of a checkpoint."""
    from footfall.training.networks import ActorCritic, DeterministicActor, SymmetricMean

    sd = ck["policy"]
    if cfg.algo == "sac":
        from footfall.training.sac import SACActor

        actor = SACActor(sd["norm.mean"].shape[0], ck["action_size"], cfg.sac.hidden)
        actor.load_state_dict(sd)
        return DeterministicActor(actor.norm, actor.mean_net(), squash=True).eval()
    obs_size = sd["actor_norm.mean"].shape[0]
    cobs = sd["critic_norm.mean"].shape[0]
    act = sd["log_std"].shape[0]
    mirror = SymmetricMean.identity(obs_size, act) if "mirror.obs_perm" in sd else None
    est_weights = [v for k, v in sd.items() if k.startswith("actor.estimator.") and k.endswith(".weight")]
    est = est_weights[-1].shape[0] if est_weights else 0  # the estimator's output layer
    ac = ActorCritic(
        obs_size,
        cobs,
        act,
        cfg.ppo.actor_hidden,
        cfg.ppo.critic_hidden,
        mirror=mirror,
        estimate_size=est,
        estimator_hidden=cfg.ppo.estimator_hidden,
    )
    ac.load_state_dict(sd)
    return DeterministicActor(ac.actor_norm, ac.actor, mirror=ac.mirror).eval()


def command_schedule(rng: np.random.Generator, n: int, segments: int, ranges: list[tuple[float, float]]) -> np.ndarray:
    """(segments, n, ncmd) commands, uniform in each range."""
    lo = np.array([r[0] for r in ranges])
    hi = np.array([r[1] for r in ranges])
    return rng.uniform(lo, hi, size=(segments, n, len(ranges)))


def evaluate_legged(
    task_id: str,
    policy: Policy,
    episodes: int = 20,
    seed: int = 12345,
    episode_s: float = 20.0,
    hold_s: float = 5.0,
    settle_s: float = 1.0,
    env_overrides: dict | None = None,
    frames: list | None = None,
    fixed_command: tuple[float, ...] | None = None,
    walk_tolerance: float = 0.2,
    viewer: bool = False,
) -> dict[str, Any]:
    """Seeded episodes with the deterministic `policy`. With `fixed_command`, every episode holds that command
    and the result adds `walk_success_rate`: the share of episodes that did not fall and whose mean forward speed
    (after the first `settle_s`) is within `walk_tolerance` x the commanded speed."""
    overrides = dict(env_overrides or {})
    overrides.update(episode_length_s=episode_s + 1.0, command_resample_s=1e9, zero_command_prob=0.0)
    task = make_task(task_id, num_envs=episodes, seed=seed, **overrides)
    obs, _ = task.reset(seed=seed)
    steps = int(round(episode_s / task.cfg.control_dt_s))
    hold = int(round(hold_s / task.cfg.control_dt_s))
    settle = int(round(settle_s / task.cfg.control_dt_s))
    sched = command_schedule(np.random.default_rng(seed), episodes, int(np.ceil(steps / hold)), task.command_ranges())
    if fixed_command is not None:
        sched[:] = np.asarray(fixed_command, dtype=float)
    vx_sum = np.zeros(episodes)
    alive = np.ones(episodes, dtype=bool)
    sq_err, counted = np.zeros(episodes), np.zeros(episodes)
    energy = np.zeros(episodes)
    path = np.zeros(episodes)
    mass = float(task.model.body_mass.sum())
    dt = task.cfg.control_dt_s
    renderer = _renderer(task) if frames is not None else None
    watch = Watch(task.models[0]) if viewer else None  # episode 0 in real time (ViewerUnavailable: no display)
    for k in range(steps):
        if k % hold == 0:
            task.command[:] = sched[k // hold]
            obs = task.actor_obs(task._robot_state(task.sim.sensor_out, privileged=True))
        prev_xy = task.sim.qpos[:, :2].copy()
        obs, _, term, _, _ = task.step(policy(obs))
        if watch is not None:  # episode 0, in real time
            watch.show(task.sim.qpos[0], (k + 1) * dt)
        s = task.sim.sensor_out[:, -1]
        v = s[:, task.layout.imu_linvel][:, :2]
        torque = s[:, task.torque_idx]
        qd = task.sim.qvel[:, task.dadr]
        alive &= ~term
        if k % hold >= settle:
            sq_err += np.where(alive, np.sum((v - task.command[:, :2]) ** 2, axis=-1), 0.0)
            counted += alive
        if k >= settle:
            vx_sum += v[:, 0]
        energy += np.where(alive, np.sum(np.clip(torque * qd, 0, None), axis=-1) * dt, 0.0)
        path += np.where(alive, np.linalg.norm(task.sim.qpos[:, :2] - prev_xy, axis=-1), 0.0)
        if renderer is not None and k % 2 == 0:
            frames.append(renderer(task))
    task.close()
    if watch is not None:
        watch.close()
    ok = counted > 0
    rmse = round(float(np.sqrt(sq_err[ok].sum() / counted[ok].sum())), 4) if ok.any() else None
    moved = alive & (path > 0.5)
    cot = round(float(np.median(energy[moved] / (mass * 9.81 * path[moved]))), 4) if moved.any() else None
    result = {
        "task": task_id,
        "episodes": episodes,
        "lin_vel_rmse": rmse,
        "fall_rate": round(float(1 - alive.mean()), 4),
        "cost_of_transport": cot,
        "episode_s": episode_s,
        "seed": seed,
    }
    if fixed_command is not None:
        mean_vx = vx_sum / max(steps - settle, 1)
        target = float(fixed_command[0])
        ok_speed = np.abs(mean_vx - target) <= walk_tolerance * abs(target)
        result.update(
            command=list(map(float, fixed_command)),
            mean_forward_speed=round(float(np.mean(mean_vx)), 4),
            walk_success_rate=round(float(np.mean(alive & ok_speed)), 4),
        )
    return result


def evaluate_reach(
    task_id: str, policy: Policy, episodes: int = 100, seed: int = 12345, env_overrides: dict | None = None
) -> dict[str, Any]:
    task = make_task(task_id, num_envs=episodes, seed=seed, **dict(env_overrides or {}))
    obs, _ = task.reset(seed=seed)
    for _ in range(task.max_episode_steps - 1):
        obs, *_ = task.step(policy(obs))
    ee = task.sim.sensor_out[:, -1][:, task.layout.ee_pos]
    err = np.linalg.norm(ee - task.command, axis=-1)
    task.close()
    return {
        "task": task_id,
        "episodes": episodes,
        "reach_error_m": round(float(err.mean()), 5),
        "reach_error_median_m": round(float(np.median(err)), 5),
        "within_1cm": round(float((err < 0.01).mean()), 3),
        "seed": seed,
    }


def evaluate_bar(
    task_id: str, policy: Policy, episodes: int, seed: int = 12345, env_overrides: dict | None = None
) -> dict[str, Any]:
    """The episodes of the robot's bar (BARS): reach targets (arm), the walk test at 0.5 m/s (biped), or random
    commands (quadruped)."""
    family = family_of_task(task_id)
    if family == "arm":
        return evaluate_reach(task_id, policy, episodes=episodes, seed=seed, env_overrides=env_overrides)
    walk = WALK_COMMAND if family == "biped" else None
    return evaluate_legged(
        task_id, policy, episodes=episodes, seed=seed, env_overrides=env_overrides, fixed_command=walk
    )


def selection_check(
    task_id: str, policy: Policy, episodes: int, seed: int, env_overrides: dict | None = None
) -> tuple[tuple[float, ...], dict[str, Any]]:
    """(score, figures) of `policy` on its robot's bar, for choosing among a run's policies (higher is better,
    compared as tuples). Biped: walk success at 0.5 m/s, then closeness of the mean speed to it. Quadruped: falls
    within 5%, then velocity RMSE. Arm: reach error."""
    r = evaluate_bar(task_id, policy, episodes, seed, env_overrides)
    family = family_of_task(task_id)
    if family == "arm":
        return (-r["reach_error_m"],), r
    if family == "biped":
        return (r["walk_success_rate"], -abs(r["mean_forward_speed"] - WALK_COMMAND[0])), r
    rmse = r["lin_vel_rmse"] if r["lin_vel_rmse"] is not None else float("inf")
    return (-float(r["fall_rate"] > 0.05), -rmse), r


def _renderer(task: Any):
    try:
        import mujoco

        r = mujoco.Renderer(task.models[0], 240, 320)
    except Exception as e:  # noqa: BLE001
        gl = os.environ.get("MUJOCO_GL", "glfw")
        print(
            f"video skipped: offscreen rendering unavailable with MUJOCO_GL={gl} ({e}). Headless machines need EGL "
            "(libegl1 with Mesa or a GPU driver; MUJOCO_GL=egl) or OSMesa (libosmesa6; MUJOCO_GL=osmesa)."
        )
        return None
    import mujoco

    data = mujoco.MjData(task.models[0])
    cam = mujoco.MjvCamera()

    def frame(t: Any) -> np.ndarray:
        mujoco.mj_setState(t.models[0], data, t.sim.state[0], mujoco.mjtState.mjSTATE_FULLPHYSICS)
        mujoco.mj_forward(t.models[0], data)
        cam.lookat[:] = data.qpos[:3]
        cam.distance, cam.azimuth, cam.elevation = 1.6, 135, -20
        r.update_scene(data, cam)
        return r.render().copy()

    return frame


def evaluate_run(
    run: str | Path, episodes: int = 20, seed: int = 12345, video: bool = True, viewer: bool = False
) -> dict[str, Any]:
    """`footfall eval`; with `viewer`, MuJoCo's viewer shows the first legged episode in real time (the other
    episodes run alongside it, batched)."""
    cfg, policy, ck = load_policy(run)
    overrides = dict(cfg.env_overrides)
    if "Reach" in cfg.task:
        if viewer:
            raise ValueError("--viewer shows legged episodes; the arm's reach evaluation has none to show")
        result = evaluate_reach(cfg.task, policy, episodes=max(episodes, 100), seed=seed, env_overrides=overrides)
    else:
        frames: list | None = [] if video else None
        result = evaluate_legged(
            cfg.task, policy, episodes=episodes, seed=seed, env_overrides=overrides, frames=frames, viewer=viewer
        )
        if frames:
            result["video"] = _write_video(frames, Path(run) / "rollout.gif")
        if "Biped" in cfg.task:  # the biped's bar: walk at a commanded 0.5 m/s for 20 s without falling
            walk = evaluate_legged(
                cfg.task, policy, episodes=episodes, seed=seed, env_overrides=overrides, fixed_command=WALK_COMMAND
            )
            result.update({k: walk[k] for k in ("mean_forward_speed", "walk_success_rate")})
    result.update(policy_file=policy_path(run).name, iteration=ck.get("iteration"))
    atomic_write_text(json.dumps(result, indent=1), Path(run) / "eval.json")
    return result


def _write_video(frames: list, path: Path) -> str | None:
    try:
        import imageio.v2 as imageio
    except ImportError:
        print("video skipped: imageio is not installed (pip install imageio)")
        return None
    imageio.mimsave(path, frames[::2], duration=0.08, loop=0)
    return str(path)
