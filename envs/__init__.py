"""Batched, domain-randomized MuJoCo environments. Importing this package registers the footfall/ task ids with
gymnasium: `gymnasium.make("footfall/Quadruped-Walk-Flat-v0")` for one robot, `gymnasium.make_vec(id, num_envs=N,
vectorization_mode="vector_entry_point")` for N robots stepped together in MuJoCo's C threads."""

import gymnasium as gym

from footfall.envs.core import BatchedTask, TaskConfig
from footfall.envs.locomotion import VelocityTask, VelocityTaskConfig
from footfall.envs.randomization import DomainRandomization
from footfall.envs.reach import ReachTask, ReachTaskConfig
from footfall.envs.tasks import TASKS, make_task, task_config
from footfall.envs.terrain import TerrainConfig

for _id in TASKS:
    if _id not in gym.registry:
        gym.register(
            id=_id,
            entry_point="footfall.envs.gym:FootfallEnv",
            vector_entry_point="footfall.envs.gym:FootfallVectorEnv",
            kwargs={"task": _id},
        )

__all__ = [
    "TASKS",
    "BatchedTask",
    "DomainRandomization",
    "ReachTask",
    "ReachTaskConfig",
    "TaskConfig",
    "TerrainConfig",
    "VelocityTask",
    "VelocityTaskConfig",
    "make_task",
    "task_config",
]
