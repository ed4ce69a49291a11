"""The training runner: owns the loop, the environment, checkpoints, logs and the progress bar; the algorithm
(PPO, SAC) owns the update math (the rsl_rl split).

Checkpoints are written atomically (temporary file, fsync, rename) every `checkpoint_every` iterations and when the
run is interrupted (Ctrl-C / SIGTERM). A checkpoint holds the networks, optimizer, normalizers, torch and numpy
generator states and a full environment snapshot, so `--resume` continues bit for bit where the run stopped.

With `select_every`, the runner also checks the deterministic policy every that many iterations (from `select_from`)
on the robot's bar, on held-out episodes (`select_seed`, never the evaluation's seed), and keeps the best so far as
best.pt, the policy the run directory stands for (`policy_path`): PPO's last iterate wanders, and the deployed
policy should be the one that passed, not the one that happened to be last (Stable-Baselines3's EvalCallback keeps a
best_model the same way). The checks' time counts against the wall-clock budget.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from footfall.envs import make_task
from footfall.training.networks import ActorCritic, SymmetricMean
from footfall.training.ppo import PPO, PPOConfig
from footfall.training.sac import SACConfig
from footfall.training.storage import RolloutStorage, gae

CHECKPOINT = "checkpoint.pt"
BEST = "best.pt"  # the policy chosen by the checks (select_every > 0)


@dataclass(frozen=True)
class RunConfig:
    """One training run. Every field can be overridden from the command line."""

    task: str = "footfall/Quadruped-Walk-Flat-v0"  # registered env id
    algo: str = "ppo"  # ppo | sac
    num_envs: int = 1024
    seed: int = 0
    max_iterations: int = 1000
    minutes: float | None = None  # wall-clock budget: stops (with a checkpoint) before an iteration would overrun it
    checkpoint_every: int = 25  # iterations
    torch_threads: int = 2
    env_overrides: tuple[tuple[str, Any], ...] = ()  # (field, value) pairs applied to the task config
    # Policy selection (see the module docstring): 0 keeps the last policy as the run's.
    select_every: int = 0  # iterations between checks
    select_from: int = 0  # first iteration checked
    select_episodes: int = 100  # episodes per check (the biped's walk test: 100, about 12 s on two cores)
    select_seed: int = 777  # the checks' episodes; evaluation uses 12345, so the choice is scored on other episodes
    ppo: PPOConfig = field(default_factory=PPOConfig)
    sac: SACConfig = field(default_factory=SACConfig)

    def __post_init__(self) -> None:
        if self.algo not in ("ppo", "sac"):
            raise ValueError(f"RunConfig.algo must be 'ppo' or 'sac', got {self.algo!r}")
        if self.select_every < 0 or self.select_episodes < 1:
            raise ValueError(
                f"RunConfig.select_every must be >= 0 (0: off) and select_episodes >= 1, got {self.select_every} and "
                f"{self.select_episodes}"
            )


def atomic_save(obj: Any, path: Path) -> None:
    """torch.save to `path` so that a crash at any moment leaves either the old file or the new one, never half."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(buf.getvalue())
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def atomic_write_text(text: str, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def config_to_dict(cfg: Any) -> Any:
    return json.loads(json.dumps(dataclasses.asdict(cfg), default=str))


class OnPolicyRunner:
    """PPO on a batched task."""

    def __init__(self, cfg: RunConfig, out_dir: str | Path, log: bool = True):
        self.cfg = cfg
        self.out = Path(out_dir)
        self.out.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(cfg.seed)
        torch.set_num_threads(cfg.torch_threads)
        self.env = make_task(cfg.task, cfg.num_envs, seed=cfg.seed, **dict(cfg.env_overrides))
        self._build_algorithm()
        self.iteration = 0
        self.elapsed_s = 0.0  # training wall time over all sessions of this run
        self.env_steps = 0
        self.history: list[dict[str, float]] = []  # per-iteration scalars (also in TensorBoard)
        obs, info = self.env.reset(seed=cfg.seed)
        self.obs = torch.as_tensor(obs, dtype=torch.float32)
        self.critic_obs = torch.as_tensor(info["critic_obs"], dtype=torch.float32)
        self.writer = None
        if log:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(self.out / "tb"))
        self._stop = False
        self.callbacks: list[Any] = []  # called as f(runner, stats) after every iteration (benchmarks use this)
        self._last_return = float("nan")  # shown in the progress bar while no episode has ended
        self.best: dict[str, Any] | None = None  # the best check so far: iteration, score, figures

    def _build_algorithm(self) -> None:
        env, cfg = self.env, self.cfg
        mirror = None
        if cfg.ppo.symmetric_actor:
            obs_m, act_m = env.actor_mirror()
            mirror = SymmetricMean(obs_m.perm, obs_m.sign, act_m.perm, act_m.sign)
        columns = None
        if cfg.ppo.estimate_term:
            try:
                columns = env.critic_obs.columns(cfg.ppo.estimate_term)
            except ValueError as e:
                raise ValueError(f"ppo.estimate_term names a term of the critic's observation: {e}") from None
        self.policy = ActorCritic(
            env.obs_size,
            env.critic_obs_size,
            env.action_size,
            cfg.ppo.actor_hidden,
            cfg.ppo.critic_hidden,
            cfg.ppo.init_noise_std,
            mirror,
            estimate_size=columns.stop - columns.start if columns else 0,
            estimator_hidden=cfg.ppo.estimator_hidden,
        )
        self.alg = PPO(self.policy, cfg.ppo, columns)
        self.storage = RolloutStorage(
            cfg.ppo.num_steps, cfg.num_envs, env.obs_size, env.critic_obs_size, env.action_size
        )

    def steps_per_iteration(self) -> int:
        return self.cfg.ppo.num_steps * self.cfg.num_envs

    def iterate(self) -> dict[str, float]:
        """One iteration: collect experience, then update."""
        t0 = time.perf_counter()
        stats = self.collect()
        stats["perf/collect_s"] = time.perf_counter() - t0
        stats.update(self.alg.update(self.storage))
        return stats

    # ------------------------------------------------------------------ checkpoints

    def _common_state(self) -> dict[str, Any]:
        return {
            "format": "footfall-checkpoint-1",
            "config": config_to_dict(self.cfg),
            "iteration": self.iteration,
            "elapsed_s": self.elapsed_s,
            "env_steps": self.env_steps,
            "torch_rng": torch.get_rng_state(),
            "env": self.env.get_state(),
            "obs": self.obs,
            "critic_obs": self.critic_obs,
            "history": self.history,
        }

    def _load_common(self, ck: dict[str, Any]) -> None:
        torch.set_rng_state(ck["torch_rng"])
        self.env.set_state(ck["env"])
        self.obs, self.critic_obs = ck["obs"], ck["critic_obs"]
        self.iteration, self.elapsed_s, self.env_steps = ck["iteration"], ck["elapsed_s"], ck["env_steps"]
        self.history = ck["history"]
        best = self.out / BEST  # the best check lives in best.pt alone (it may be newer than this checkpoint)
        self.best = load_checkpoint(best)["selection"] if best.is_file() else None

    def state_dict(self) -> dict[str, Any]:
        return {
            **self._common_state(),
            "policy": self.policy.state_dict(),
            "optimizer": self.alg.optimizer.state_dict(),
            "lr": self.alg.lr,
        }

    def policy_snapshot(self) -> dict[str, Any]:
        """The policy alone, in checkpoint format: what `load_policy` and the evaluators need, and no more."""
        return {
            "format": "footfall-checkpoint-1",
            "config": config_to_dict(self.cfg),
            "iteration": self.iteration,
            "elapsed_s": self.elapsed_s,
            "env_steps": self.env_steps,
            "policy": {k: v.clone() for k, v in self.policy.state_dict().items()},
            "action_size": self.env.action_size,
        }

    def selected_snapshot(self) -> dict[str, Any]:
        """The policy the run stands for now, in policy_snapshot format (with this moment's elapsed time): the best
        checked one when selection is on and a check has run, else the current one."""
        snap = self.policy_snapshot()
        if self.best is not None:  # (set only with best.pt written)
            best = load_checkpoint(self.out / BEST)
            snap.update(policy=best["policy"], selection=best["selection"])
        return snap

    def check(self) -> None:
        """One selection check of the current policy; best.pt is replaced (atomically) when it beats the best."""
        from footfall.training.evaluate import actor_from_checkpoint, numpy_policy, selection_check

        cfg = self.cfg
        snap = self.policy_snapshot()
        with torch.random.fork_rng():  # building the actor draws initial weights: keep them off training's generator
            policy = numpy_policy(actor_from_checkpoint(cfg, snap))
        score, result = selection_check(cfg.task, policy, cfg.select_episodes, cfg.select_seed, dict(cfg.env_overrides))
        figures = {
            k: v
            for k, v in result.items()
            if isinstance(v, (int, float)) and k not in ("episodes", "seed", "episode_s")
        }
        if self.writer is not None:
            for k, v in figures.items():
                self.writer.add_scalar(f"select/{k}", v, self.env_steps)
        self.history[-1].update({f"select/{k}": v for k, v in figures.items()})
        if self.best is None or tuple(score) > tuple(self.best["score"]):
            self.best = {"iteration": self.iteration, "score": list(score), **figures}
            atomic_save({**snap, "selection": self.best}, self.out / BEST)

    def save(self) -> Path:
        path = self.out / CHECKPOINT
        atomic_save(self.state_dict(), path)
        atomic_write_text(json.dumps(self.history), self.out / "history.json")
        return path

    def load(self, path: Path | None = None) -> None:
        path = path or self.out / CHECKPOINT
        ck = load_checkpoint(path)
        self._load_common(ck)
        self.policy.load_state_dict(ck["policy"])
        self.alg.optimizer.load_state_dict(ck["optimizer"])
        self.alg.lr = ck["lr"]
        for g in self.alg.optimizer.param_groups:
            g["lr"] = self.alg.lr

    # ------------------------------------------------------------------ training

    def collect(self) -> dict[str, float]:
        """One iteration of experience: num_steps x num_envs transitions into storage."""
        cfg, env, pol, st = self.cfg.ppo, self.env, self.policy, self.storage
        ep_returns, ep_lengths, term_sums = [], [], {}
        track_err = []
        with torch.no_grad():
            for t in range(cfg.num_steps):
                pol.actor_norm.update(self.obs)
                pol.critic_norm.update(self.critic_obs)
                dist = pol.distribution(self.obs)
                actions = dist.sample()
                st.obs[t], st.critic_obs[t], st.actions[t] = self.obs, self.critic_obs, actions
                st.log_probs[t] = dist.log_prob(actions).sum(-1)
                st.mu[t], st.sigma[t] = dist.mean, dist.stddev
                st.values[t] = pol.value(self.critic_obs)
                obs, rew, term, trunc, info = env.step(actions.numpy().astype(np.float64))
                rew_t = torch.as_tensor(rew, dtype=torch.float32)
                if "done_rows" in info:
                    rows = info["done_rows"]
                    tr = trunc[rows]
                    if tr.any():  # bootstrap through time limits: r += gamma * V(final state)
                        final_critic = torch.as_tensor(info["final_critic_obs"][tr], dtype=torch.float32)
                        rew_t[torch.as_tensor(rows[tr])] += cfg.gamma * pol.value(final_critic)
                    ep_returns += info["episode_return"].tolist()
                    ep_lengths += info["episode_length"].tolist()
                st.rewards[t] = rew_t
                st.dones[t] = torch.as_tensor(term | trunc, dtype=torch.float32)
                for k, v in info["reward_terms"].items():
                    term_sums[k] = term_sums.get(k, 0.0) + float(v.mean())
                if getattr(env.layout, "imu_linvel", None) is not None:
                    vel = env.sim.sensor_out[:, -1][:, env.layout.imu_linvel][:, :2]
                    track_err.append(float(np.sqrt(np.mean(np.sum((vel - env.command[:, :2]) ** 2, axis=-1)))))
                self.obs = torch.as_tensor(obs, dtype=torch.float32)
                self.critic_obs = torch.as_tensor(info["critic_obs"], dtype=torch.float32)
            last_value = pol.value(self.critic_obs)
        st.advantages, st.returns = gae(st.rewards, st.values, st.dones, last_value, cfg.gamma, cfg.lam)
        self.env_steps += cfg.num_steps * self.cfg.num_envs
        out = {f"reward_terms/{k}": v / cfg.num_steps for k, v in term_sums.items()}
        out["reward/step_mean"] = float(st.rewards.mean())
        if ep_returns:
            out["episode/return"] = float(np.mean(ep_returns))
            out["episode/length_s"] = float(np.mean(ep_lengths)) * self.env.cfg.control_dt_s
        if track_err:
            out["tracking/lin_vel_xy_rms_error"] = float(np.mean(track_err))
        return out

    def _handle_signal(self, signum: int, frame: Any) -> None:
        self._stop = True

    @property
    def interrupted(self) -> bool:
        """Whether Ctrl-C or SIGTERM stopped the last `train` before its budget or iteration count."""
        return self._stop

    def train(self, progress: bool = True) -> dict[str, float]:
        cfg = self.cfg
        budget_s = cfg.minutes * 60 if cfg.minutes is not None else None
        old = {s: signal.signal(s, self._handle_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        bar = None
        if progress:
            from tqdm import tqdm

            name = cfg.task.split("/")[-1]
            if budget_s is not None:  # the wall-clock budget binds: the bar (and its ETA) counts seconds
                bar = tqdm(
                    total=round(budget_s),
                    initial=min(round(self.elapsed_s), round(budget_s)),
                    dynamic_ncols=True,
                    desc=name,
                    bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.0f}/{total} s [{elapsed}<{remaining}{postfix}]",
                )
            else:
                bar = tqdm(total=cfg.max_iterations, initial=self.iteration, unit="it", dynamic_ncols=True, desc=name)
        stats: dict[str, float] = {}
        # So that a run ends inside its budget, the next iteration is taken to be as long as the last, and the longest
        # check so far is held back for the final check; after a resume both come from the history.
        last = self.history[-1] if self.history else {}
        last_s = self.steps_per_iteration() / last["perf/fps"] if last.get("perf/fps") else 0.0
        reserve_s = max((h.get("perf/check_s", 0.0) for h in self.history), default=0.0)
        try:
            while self.iteration < cfg.max_iterations and not self._stop:
                if budget_s is not None and self.elapsed_s + last_s + reserve_s >= budget_s:
                    break
                t0 = time.perf_counter()
                stats = self.iterate()
                dt = time.perf_counter() - t0
                self.elapsed_s += dt
                last_s = dt
                self.iteration += 1
                stats["perf/fps"] = self.steps_per_iteration() / dt
                stats["time/elapsed_s"] = self.elapsed_s
                self.history.append({"iteration": self.iteration, "env_steps": self.env_steps, **stats})
                if self.writer is not None:
                    for k, v in stats.items():
                        self.writer.add_scalar(k, v, self.env_steps)
                if bar is not None:
                    bar.update(min(dt, max(0.0, bar.total - bar.n)) if budget_s is not None else 1)
                    bar.set_postfix_str(self._postfix(stats))
                if cfg.select_every and self.iteration >= cfg.select_from and self.iteration % cfg.select_every == 0:
                    reserve_s = max(reserve_s, self._timed_check(bar, budget_s))
                for callback in self.callbacks:
                    callback(self, stats)
                if self.iteration % cfg.checkpoint_every == 0:
                    self.save()
            # The final policy is a candidate too (it may be the first to pass), unless the run was interrupted.
            checked = bool(self.history) and "perf/check_s" in self.history[-1]
            if cfg.select_every and not self._stop and self.iteration >= cfg.select_from and not checked:
                self._timed_check(bar, budget_s)
            self.save()
        finally:
            for s, h in old.items():
                signal.signal(s, h)
            if bar is not None:
                bar.close()
            if self.writer is not None:
                self.writer.flush()
        return stats

    def _timed_check(self, bar: Any, budget_s: float | None) -> float:
        t0 = time.perf_counter()
        self.check()
        dt = time.perf_counter() - t0
        self.elapsed_s += dt  # the checks are part of the run's wall time
        self.history[-1]["perf/check_s"] = dt
        if self.writer is not None:
            self.writer.add_scalar("perf/check_s", dt, self.env_steps)
        if bar is not None and budget_s is not None:
            bar.update(min(dt, max(0.0, bar.total - bar.n)))
        return dt

    def _postfix(self, s: dict[str, float]) -> str:
        if "episode/return" in s and np.isfinite(s["episode/return"]):  # else keep the last
            self._last_return = s["episode/return"]
        parts = [f"it {self.iteration}", f"ret {self._last_return:.2f}"]
        if self.best is not None:
            from footfall.training.evaluate import BARS, family_of_task

            name = BARS[family_of_task(self.cfg.task)][0]
            if name in self.best:
                parts.append(f"best check {name} {self.best[name]:.3g} @ it {self.best['iteration']}")
        if "tracking/lin_vel_xy_rms_error" in s:
            parts.append(f"vel err {s['tracking/lin_vel_xy_rms_error']:.3f} m/s")
        parts.append(f"{s['perf/fps']:.0f} steps/s")
        return ", ".join(parts)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.env.close()


def policy_path(run: str | Path) -> Path:
    """The checkpoint holding the policy that a run directory (or a checkpoint file) stands for: best.pt when the
    run's checks chose one, else checkpoint.pt."""
    run = Path(run)
    if run.is_dir():
        return run / BEST if (run / BEST).is_file() else run / CHECKPOINT
    return run


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load a checkpoint, with an error that says what to do when it is missing or unreadable."""
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT
    if not path.is_file():
        raise FileNotFoundError(
            f"no checkpoint at {path}: train first (footfall train PRESET --out DIR) or point at "
            "the run directory that holds checkpoint.pt"
        )
    try:
        ck = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # noqa: BLE001
        raise ValueError(f"checkpoint {path} is unreadable ({e}); it was not written by footfall or is damaged") from e
    if not isinstance(ck, dict) or ck.get("format") != "footfall-checkpoint-1":
        raise ValueError(
            f"{path} is not a footfall checkpoint (format {ck.get('format') if isinstance(ck, dict) else '?'})"
        )
    return ck
