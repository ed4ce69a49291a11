"""The registered tasks: versioned ids, each a config preset over a task class. A change to what observations,
actions or rewards mean bumps the version."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from footfall.envs.core import BatchedTask, TaskConfig
from footfall.envs.locomotion import BIPED_REWARDS, VelocityTask, VelocityTaskConfig
from footfall.envs.reach import ReachTask, ReachTaskConfig
from footfall.envs.terrain import TerrainConfig

TASKS: dict[str, tuple[type[BatchedTask], TaskConfig]] = {
    "footfall/Quadruped-Walk-Flat-v0": (VelocityTask, VelocityTaskConfig(robot="go1")),
    "footfall/Quadruped-Walk-Rough-v0": (VelocityTask, VelocityTaskConfig(robot="go1", terrain=TerrainConfig())),
    # v1: feet_swing_height joins the reward (one 60-minute run: walk_success_rate 0.05 -> 0.70)
    # v2: track_lin_vel_xy_fine joins it (60-minute runs: 0.70 -> 0.95 / 0.85 on seeds 0 / 1, 0.46 m/s at 0.5 m/s)
    # v3: track_lin_vel_xy_fine weighs 2.0, not 1.0 (seeds 0 / 1, 100 walk episodes: 0.88 / 0.97; v2 0.94 / 0.84)
    "footfall/Biped-Walk-Flat-v3": (
        VelocityTask,
        VelocityTaskConfig(
            robot="h1",
            reward_weights=BIPED_REWARDS,
            vx_range=(-0.5, 1.0),
            vy_range=(-0.3, 0.3),
            yaw_rate_range=(-0.5, 0.5),
            gait_period_s=0.8,
            terminate_height_frac=0.7,
            terminate_tilt_deg=45.0,
        ),
    ),
    # v1: the actor observes its joint target (joint_target_rel), and the reward adds posture and a 10x action rate
    "footfall/Arm-Reach-v1": (ReachTask, ReachTaskConfig()),
}


def task_config(task: str, **overrides: Any) -> TaskConfig:
    """The preset config of `task` with `overrides` applied. A dotted key reaches into a nested config
    (`randomization.friction=(0.5, 1.0)`); unknown fields are refused, naming the valid ones."""
    if task not in TASKS:
        base = re.match(r"(.+)-v\d+$", task)
        newer = [t for t in TASKS if base and t.rsplit("-v", 1)[0] == base.group(1)]
        if newer:  # an old version: its observations or rewards changed, so its policies do not carry over
            raise ValueError(
                f"task {task!r} has been replaced by {newer[0]!r} (its observations or rewards changed; see "
                "envs/tasks.py): train a new policy on it, or use the footfall release that trained this one"
            )
        raise ValueError(f"unknown task {task!r}; registered tasks: {sorted(TASKS)}")
    _, cfg = TASKS[task]
    for key, value in overrides.items():
        cfg = _replace_path(cfg, key.split("."), value, key)
    return cfg


def _replace_path(obj: Any, path: list[str], value: Any, key: str) -> Any:
    valid = {f.name for f in dataclasses.fields(obj)}
    if path[0] not in valid:
        raise ValueError(f"{type(obj).__name__} has no field(s) [{key!r}]; valid fields: {sorted(valid)}")
    current = getattr(obj, path[0])
    if len(path) > 1:
        if not dataclasses.is_dataclass(current):
            raise ValueError(f"{key!r}: {type(obj).__name__}.{path[0]} is not a nested config")
        value = _replace_path(current, path[1:], value, key)
    elif isinstance(current, tuple) and isinstance(value, list):  # (JSON gives lists back for tuples)
        value = tuple(tuple(v) if isinstance(v, list) else v for v in value)
    elif dataclasses.is_dataclass(current) and isinstance(value, dict):  # a whole nested config, as JSON saves it
        for k, v in value.items():
            current = _replace_path(current, [k], v, f"{key}.{k}")
        value = current
    return dataclasses.replace(obj, **{path[0]: value})


def make_task(task: str, num_envs: int, seed: int | None = None, **overrides: Any) -> BatchedTask:
    """The batched core of a registered task, without gymnasium."""
    cls, _ = TASKS[task] if task in TASKS else (None, None)
    cfg = task_config(task, **overrides)
    return cls(cfg, num_envs, seed)
