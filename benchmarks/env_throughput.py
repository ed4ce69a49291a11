"""Environment throughput: footfall's batched quadruped task against raw MuJoCo and a plain single-env loop.

All three run the same model (the Go1 quadruped flat task), the same number of robots N, the same threads and
the same decimation (physics steps per policy step), in this process, interleaved, and report policy steps per
second (robot-steps: N robots x policy steps):
  env     footfall VelocityTask, all randomization on, random actions: observations, itemized rewards,
          terminations, latency and autoreset included;
  raw     mujoco.rollout alone on a persistent pool: the physics floor, no task logic at all;
  single  one gymnasium.Env with one MjData, mj_step per physics step, and the same observation and reward terms
          computed in Python on one robot per step (the loop most MuJoCo gym envs use); randomization off.
"""

from __future__ import annotations

import copy
import json
import os
import resource

import gymnasium as gym
import mujoco
import numpy as np
from mujoco import rollout

from footfall.benchmarks.common import machine, median, rate, table
from footfall.envs import DomainRandomization, VelocityTask, make_task, task_config
from footfall.envs.sim import SerialSim


class SingleVelocityTask(VelocityTask):
    """The plain single-environment loop on the same task: one MjData, mj_step per physics step, and the same
    observation and reward code run on one robot per Python step (no randomization, which only favours it)."""

    sim_class = SerialSim


class MinimalGo1Env(gym.Env):
    """A deliberately lean single env: one MjData, mj_step per physics step, a hand-inlined observation and a
    two-term reward. The fastest plain loop one can write for this model; a lower bound for the reference."""

    def __init__(self, model: mujoco.MjModel, decimation: int, default_pose: np.ndarray, act: np.ndarray):
        self.m, self.d = model, mujoco.MjData(model)
        self.decimation, self.default, self.act = decimation, default_pose, act
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (45,), np.float32)
        self.action_space = gym.spaces.Box(-1, 1, (12,), np.float32)
        self.last = np.zeros(12)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        mujoco.mj_resetDataKeyframe(self.m, self.d, 0)
        return self._obs(np.zeros(3)), {}

    def _obs(self, cmd: np.ndarray) -> np.ndarray:
        d = self.d
        w, x, y, z = d.qpos[3:7]
        grav = -np.array([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)])
        return np.concatenate(
            [d.qvel[3:6] * 0.25, grav, cmd, d.qpos[7:] - self.default, d.qvel[6:] * 0.05, self.last]
        ).astype(np.float32)

    def step(self, action):
        self.d.ctrl[self.act] = self.default + 0.25 * action
        for _ in range(self.decimation):
            mujoco.mj_step(self.m, self.d)
        cmd = np.array([0.5, 0.0, 0.0])
        reward = np.exp(-np.sum((cmd[:2] - self.d.qvel[:2]) ** 2) / 0.25) - 0.01 * np.sum((action - self.last) ** 2)
        self.last = np.asarray(action, dtype=np.float64)
        terminated = bool(self.d.qpos[2] < 0.12)
        if terminated:
            self.reset()
        return self._obs(cmd), float(reward), terminated, False, {}


class SingleEnv(gym.Env):
    """A gymnasium.Env around one SingleVelocityTask robot."""

    def __init__(self) -> None:
        cfg = task_config("footfall/Quadruped-Walk-Flat-v0", randomization=DomainRandomization.off())
        self.task = SingleVelocityTask(cfg, num_envs=1, seed=0)
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (self.task.obs_size,), np.float32)
        self.action_space = gym.spaces.Box(-1, 1, (self.task.action_size,), np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        obs, info = self.task.reset(seed=seed)
        return obs[0].astype(np.float32), info

    def step(self, action):
        obs, rew, term, trunc, info = self.task.step(np.asarray(action)[None])
        return obs[0].astype(np.float32), float(rew[0]), bool(term[0]), bool(trunc[0]), info


def run(quick: bool = False, num_envs: int = 256) -> dict:
    repeats = 3 if quick else 7
    steps = 20 if quick else 60  # policy steps per timed run
    nthread = os.cpu_count() or 1
    task = make_task("footfall/Quadruped-Walk-Flat-v0", num_envs=num_envs, seed=0, nthread=nthread)
    task.reset(seed=0)
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1, 1, (steps, num_envs, task.action_size))
    dec = task.decimation

    def env_run() -> None:
        for a in actions:
            task.step(a)

    # raw rollout: same (unrandomized) model, N copies, same threads and decimation
    models = [copy.deepcopy(task.model) for _ in range(num_envs)]
    datas = [mujoco.MjData(task.model) for _ in range(nthread)]
    pool = rollout.Rollout(nthread=nthread)
    state0 = np.tile(task.home_state, (num_envs, 1))
    ctrl = np.empty((num_envs, dec, task.model.nu))
    targets = np.asarray(task.default_pose) + task.cfg.action_scale * actions  # the env's actions, no latency
    st = np.empty((num_envs, dec, task.sim.nstate))
    sd = np.empty((num_envs, dec, task.model.nsensordata))
    state = state0.copy()

    def raw_run() -> None:
        for k in range(steps):
            ctrl[:, :, task.act_ids] = targets[k][:, None]
            pool.rollout(
                models,
                datas,
                state,
                ctrl,
                skip_checks=True,
                nstep=dec,
                state=st,
                sensordata=sd,
                chunk_size=task.sim.chunk_size,
            )
            state[:] = st[:, -1]

    single = SingleEnv()
    single.reset(seed=0)
    single_steps = max(steps * 4, 100)
    single_actions = actions.reshape(-1, 12)[:single_steps]

    def single_run() -> None:
        for a in single_actions:
            single.step(a)  # the task core resets a finished episode itself

    minimal = MinimalGo1Env(copy.deepcopy(task.model), dec, np.asarray(task.default_pose), task.act_ids)
    minimal.reset(seed=0)

    def minimal_run() -> None:
        for a in single_actions:
            minimal.step(a)

    env_r, raw_r, single_r, minimal_r = [], [], [], []
    for _ in range(repeats):  # interleave so that load changes hit all three alike
        env_r += rate(env_run, steps * num_envs, 1)
        raw_r += rate(raw_run, steps * num_envs, 1)
        single_r += rate(single_run, single_steps, 1)
        minimal_r += rate(minimal_run, single_steps, 1)
    pool.close()
    task.close()
    env_sps, raw_sps, single_sps = median(env_r), median(raw_r), median(single_r)
    result = {
        "benchmark": "env",
        "task": "footfall/Quadruped-Walk-Flat-v0",
        "num_envs": num_envs,
        "threads": nthread,
        "decimation": dec,
        "repeats": repeats,
        "env_steps_per_s": round(env_sps, 1),
        "raw_steps_per_s": round(raw_sps, 1),
        "single_env_steps_per_s": round(single_sps, 1),
        "env_over_raw": round(env_sps / raw_sps, 3),
        "env_over_single": round(env_sps / single_sps, 2),
        "single_env_minimal_steps_per_s": round(median(minimal_r), 1),
        "env_over_single_minimal": round(env_sps / median(minimal_r), 2),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        **machine(),
    }
    return result


def main(quick: bool = False) -> dict:
    r = run(quick)
    print(
        f"Environment throughput, Go1 flat task, N={r['num_envs']}, {r['threads']} threads, decimation "
        f"{r['decimation']}, median of {r['repeats']} runs ({r['machine']}, mujoco {r['mujoco']})"
    )
    print(
        table(
            ("loop", "policy steps/s", "ratio to env"),
            [
                ("footfall env (all randomization)", f"{r['env_steps_per_s']:,.0f}", "1.00"),
                (
                    "raw mujoco.rollout",
                    f"{r['raw_steps_per_s']:,.0f}",
                    f"{r['raw_steps_per_s'] / r['env_steps_per_s']:.2f}",
                ),
                (
                    "single-env loop, same obs + reward code",
                    f"{r['single_env_steps_per_s']:,.0f}",
                    f"{r['single_env_steps_per_s'] / r['env_steps_per_s']:.2f}",
                ),
                (
                    "single-env loop, minimal 2-term reward",
                    f"{r['single_env_minimal_steps_per_s']:,.0f}",
                    f"{r['single_env_minimal_steps_per_s'] / r['env_steps_per_s']:.2f}",
                ),
            ],
        )
    )
    print(
        f"env / raw = {r['env_over_raw']:.2f} (target >= 0.6); env / single = {r['env_over_single']:.1f} "
        f"(target >= 2); env / minimal single = {r['env_over_single_minimal']:.2f}"
    )
    print(json.dumps(r))
    return r
