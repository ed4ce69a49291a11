"""The gymnasium faces of a batched task: `FootfallEnv` (one robot, gymnasium.Env) and `FootfallVectorEnv`
(N robots, gymnasium.vector.VectorEnv with same-step autoreset). Both wrap the same core; observations are the
actor's, the critic's asymmetric observation is in `info["critic_obs"]`, and `info["reward_terms"]` itemizes the
reward (weighted terms that sum to it). Timeouts are reported as truncation."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import mujoco
import numpy as np
from gymnasium.vector import AutoresetMode

from footfall.envs.core import BatchedTask
from footfall.envs.tasks import make_task


def _box(n: int, batch: int | None = None, bound: float = np.inf) -> gym.spaces.Box:
    shape = (n,) if batch is None else (batch, n)
    return gym.spaces.Box(-bound, bound, shape=shape, dtype=np.float32)


class FootfallEnv(gym.Env):
    """One robot. `task` names a preset (see footfall.envs.tasks.TASKS); `**overrides` replace config fields."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 50}

    def __init__(self, task: str, render_mode: str | None = None, **overrides: Any):
        self.core: BatchedTask = make_task(task, num_envs=1, **overrides)
        self.render_mode = render_mode
        self.observation_space = _box(self.core.obs_size)
        self.action_space = _box(self.core.action_size, bound=1.0)
        self.metadata = dict(self.metadata, render_fps=int(round(1 / self.core.cfg.control_dt_s)))
        self._renderer = None

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        obs, info = self.core.reset(seed=seed if seed is not None else int(self.np_random.integers(2**31)))
        return obs[0].astype(np.float32), {"critic_obs": info["critic_obs"][0]}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        obs, rew, term, trunc, info = self.core.step(np.asarray(action, dtype=np.float64)[None])
        out = {"reward_terms": {k: float(v[0]) for k, v in info["reward_terms"].items()}}
        if "final_obs" in info:  # the core reset this row already; report the episode's last observation
            obs = info["final_obs"]
        out["critic_obs"] = info["critic_obs"][0]
        return obs[0].astype(np.float32), float(rew[0]), bool(term[0]), bool(trunc[0]), out

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array":
            return None
        if self._renderer is None:
            try:
                self._renderer = mujoco.Renderer(self.core.models[0], 240, 320)
            except Exception as e:  # no OpenGL context (e.g. no libosmesa6 with MUJOCO_GL=osmesa)
                raise RuntimeError(
                    f"offscreen rendering is unavailable ({e}); install libosmesa6 and set "
                    "MUJOCO_GL=osmesa, or run without rendering"
                ) from e
        m = self.core.models[0]
        d = mujoco.MjData(m)
        mujoco.mj_setState(m, d, self.core.sim.state[0], mujoco.mjtState.mjSTATE_FULLPHYSICS)
        mujoco.mj_forward(m, d)
        cam = mujoco.MjvCamera()
        cam.type = mujoco.mjtCamera.mjCAMERA_FREE
        cam.lookat[:] = d.qpos[:3] if self.core.robot.floating_base else [0.3, 0, 0.4]
        cam.distance, cam.azimuth, cam.elevation = (
            2.0 * max(self.core.robot.nominal_base_height_m or 0.5, 0.5),
            120,
            -20,
        )
        self._renderer.update_scene(d, cam)
        return self._renderer.render()

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
        self.core.close()


class FootfallVectorEnv(gym.vector.VectorEnv):
    """N robots stepped together in MuJoCo's C threads. Autoreset happens in the same step (SAME_STEP mode):
    the returned observation of a finished row is its next episode's first; `info["final_obs"]` holds the last."""

    metadata = {"autoreset_mode": AutoresetMode.SAME_STEP}

    def __init__(self, task: str, num_envs: int, **overrides: Any):
        self.core: BatchedTask = make_task(task, num_envs=num_envs, **overrides)
        self.num_envs = num_envs
        self.single_observation_space = _box(self.core.obs_size)
        self.single_action_space = _box(self.core.action_size, bound=1.0)
        self.observation_space = _box(self.core.obs_size, num_envs)
        self.action_space = _box(self.core.action_size, num_envs, bound=1.0)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        obs, info = self.core.reset(seed=seed)
        return obs.astype(np.float32), info

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict]:
        obs, rew, term, trunc, info = self.core.step(actions)
        return obs.astype(np.float32), rew, term, trunc, info

    def close_extras(self, **kwargs: Any) -> None:
        self.core.close()
