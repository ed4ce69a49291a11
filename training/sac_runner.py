"""The off-policy runner: SAC on a batched task, with the same checkpoint, log and progress behaviour as PPO's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from footfall.training.runner import CHECKPOINT, OnPolicyRunner, RunConfig, load_checkpoint
from footfall.training.sac import SAC, ReplayBuffer


class OffPolicyRunner(OnPolicyRunner):
    """Reuses the on-policy runner's loop, checkpointing and logging; replaces collection and update."""

    def __init__(self, cfg: RunConfig, out_dir: str | Path, log: bool = True):
        super().__init__(cfg, out_dir, log)

    def _build_algorithm(self) -> None:
        env, c = self.env, self.cfg.sac
        self.sac = SAC(env.obs_size, env.action_size, c)
        self.policy = self.sac.actor
        self.buffer = ReplayBuffer(c.buffer_size, env.obs_size, env.action_size)
        self.gen = torch.Generator().manual_seed(self.cfg.seed)
        self.updates_per_step = c.utd_ratio * self.cfg.num_envs
        self.reward_scale = c.reward_scale if c.reward_scale is not None else 1.0 / env.cfg.control_dt_s
        self._update_debt = 0.0

    def steps_per_iteration(self) -> int:
        return self.cfg.sac.steps_per_iteration * self.cfg.num_envs

    def state_dict(self) -> dict[str, Any]:
        b = self.buffer
        return {
            **self._common_state(),
            "policy": self.sac.actor.state_dict(),
            "critic": self.sac.critic.state_dict(),
            "critic_target": self.sac.critic_target.state_dict(),
            "log_alpha": self.sac.log_alpha.detach().clone(),
            "optimizers": [o.state_dict() for o in (self.sac.actor_opt, self.sac.critic_opt, self.sac.alpha_opt)],
            "buffer": {k: getattr(b, k)[: b.size].copy() for k in ("obs", "next_obs", "actions", "rewards", "dones")}
            | {"ptr": b.ptr, "size": b.size},
            "gen": self.gen.get_state(),
            "update_debt": self._update_debt,
            "action_size": self.env.action_size,
        }

    def load(self, path: Path | None = None) -> None:
        ck = load_checkpoint(path or self.out / CHECKPOINT)
        self._load_common(ck)
        self.sac.actor.load_state_dict(ck["policy"])
        self.sac.critic.load_state_dict(ck["critic"])
        self.sac.critic_target.load_state_dict(ck["critic_target"])
        with torch.no_grad():
            self.sac.log_alpha.copy_(ck["log_alpha"])
        for o, s in zip((self.sac.actor_opt, self.sac.critic_opt, self.sac.alpha_opt), ck["optimizers"]):
            o.load_state_dict(s)
        b, saved = self.buffer, ck["buffer"]
        for k in ("obs", "next_obs", "actions", "rewards", "dones"):
            getattr(b, k)[: saved["size"]] = saved[k]
        b.ptr, b.size = saved["ptr"], saved["size"]
        self.gen.set_state(ck["gen"])
        self._update_debt = ck["update_debt"]

    def iterate(self) -> dict[str, float]:
        c, env = self.cfg.sac, self.env
        stats: dict[str, float] = {}
        returns, upd = [], []
        for _ in range(c.steps_per_iteration):
            obs_np = self.obs.numpy()
            if self.buffer.size < c.learning_starts:
                actions = torch.rand(self.cfg.num_envs, env.action_size, generator=self.gen) * 2 - 1
            else:
                with torch.no_grad():
                    actions, _ = self.sac.actor.sample(self.obs)
            self.sac.actor.norm.update(self.obs)
            next_obs, rew, term, trunc, info = env.step(actions.numpy().astype(np.float64))
            stored_next = next_obs.copy()
            if "done_rows" in info:  # the transition's next state is the episode's last, not the reset one
                stored_next[info["done_rows"]] = info["final_obs"]
                returns += info["episode_return"].tolist()
            self.buffer.add(obs_np, actions.numpy(), rew * self.reward_scale, stored_next, term.astype(np.float32))
            self.obs = torch.as_tensor(next_obs, dtype=torch.float32)
            self.env_steps += self.cfg.num_envs
            if self.buffer.size >= c.learning_starts:
                self._update_debt += self.updates_per_step
                while self._update_debt >= 1:
                    upd.append(self.sac.update(self.buffer.sample(c.batch_size, self.gen)))
                    self._update_debt -= 1
        if upd:
            stats.update({k: float(np.mean([u[k] for u in upd])) for k in upd[0]})
        if returns:
            stats["episode/return"] = float(np.mean(returns))
        return stats
