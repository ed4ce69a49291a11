"""The training runner: owns the loop, the environment, checkpoints, logs and the progress bar; the algorithm
(PPO, SAC) owns the update math (the rsl_rl split).

Checkpoints are written atomically (temporary file, fsync, rename, directory fsync) every `checkpoint_every`
iterations and when the run is interrupted (Ctrl-C / SIGTERM); so is every JSON file of the run. A checkpoint holds
the networks, optimizer, normalizers, torch and numpy generator states and a full environment snapshot, so
`--resume` continues bit for bit where the run stopped. It holds plain data only (tensors, numbers, strings, lists,
dicts; numpy arrays are stored as tensors), and `load_checkpoint` reads it with torch.load(weights_only=True): a
checkpoint someone sends you cannot run code when it is loaded.

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
import pickle
import re
import signal
import time
from collections import OrderedDict
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


def atomic_write_bytes(data: bytes, path: Path) -> None:
    """Write `data` to `path` so that a crash at any moment leaves either the old file or the new one, never half:
    a temporary file beside it, written, flushed and fsynced, renamed over `path`, then the directory fsynced (so
    the rename itself survives a power cut). On an error the temporary file is removed and `path` is untouched."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def atomic_write_text(text: str, path: Path) -> None:
    """`atomic_write_bytes` of `text` in UTF-8: every JSON file training writes (config, history, eval, stages)."""
    atomic_write_bytes(text.encode("utf-8"), path)


def atomic_save(obj: Any, path: Path) -> None:
    """torch.save to `path` atomically (`atomic_write_bytes`), numpy arrays and scalars stored as tensors (`_pack`)
    so that `load_checkpoint` reads the file back with weights_only=True."""
    buf = io.BytesIO()
    torch.save(_pack(obj), buf)
    atomic_write_bytes(buf.getvalue(), path)


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


# Checkpoints load with torch.load(weights_only=True): its unpickler builds tensors, numbers, strings, None, bools
# and dict / list / tuple / OrderedDict, and refuses any other class or function a file names, so loading never runs
# code from the file. footfall stores numpy arrays and scalars as tagged tensors (`_pack`) and generator states as
# tensors (torch) or dicts of ints (numpy), so its checkpoints need nothing more: the allow-list of extra globals is
# empty, on purpose. Never widen it to make a file load, and never fall back to an unrestricted torch.load.
CHECKPOINT_SAFE_GLOBALS: tuple[Any, ...] = ()
_NDARRAY = "__footfall_ndarray__"  # {_NDARRAY: tensor}: a numpy array, restored with its dtype and shape
_NPSCALAR = "__footfall_numpy_scalar__"  # {_NPSCALAR: 0-d tensor}: a numpy scalar (np.float64, np.int64, ...)


def _pack(obj: Any) -> Any:
    """numpy arrays and scalars -> tagged tensors, through dicts, lists and tuples. A container with nothing to
    convert is returned as it is (a module's state_dict keeps its type and version metadata)."""
    if isinstance(obj, np.ndarray):
        return {_NDARRAY: _as_tensor(obj)}
    if isinstance(obj, np.generic):
        return {_NPSCALAR: _as_tensor(np.asarray(obj))}
    if isinstance(obj, dict):
        packed = {k: _pack(v) for k, v in obj.items()}
        if all(packed[k] is obj[k] for k in obj):
            return obj
        return dict(packed) if type(obj) is dict else _same_mapping(obj, packed)
    if isinstance(obj, (list, tuple)):
        packed = [_pack(v) for v in obj]
        if all(a is b for a, b in zip(packed, obj)):
            return obj
        return packed if isinstance(obj, list) else tuple(packed)
    return obj


def _unpack(obj: Any) -> Any:
    """The inverse of `_pack`: tagged tensors back to numpy arrays and scalars, bit for bit."""
    if isinstance(obj, dict):
        if len(obj) == 1 and isinstance(obj.get(_NDARRAY), torch.Tensor):
            return obj[_NDARRAY].numpy()
        if len(obj) == 1 and isinstance(obj.get(_NPSCALAR), torch.Tensor):
            return obj[_NPSCALAR].numpy()[()]
        unpacked = {k: _unpack(v) for k, v in obj.items()}
        if all(unpacked[k] is obj[k] for k in obj):
            return obj
        return dict(unpacked) if type(obj) is dict else _same_mapping(obj, unpacked)
    if isinstance(obj, (list, tuple)):
        unpacked = [_unpack(v) for v in obj]
        if all(a is b for a, b in zip(unpacked, obj)):
            return obj
        return unpacked if isinstance(obj, list) else tuple(unpacked)
    return obj


def _same_mapping(like: dict, items: dict) -> dict:
    out = OrderedDict(items) if isinstance(like, OrderedDict) else dict(items)
    if hasattr(like, "_metadata"):  # (a state_dict's module versions)
        out._metadata = like._metadata  # type: ignore[attr-defined]
    return out


def _as_tensor(a: np.ndarray) -> torch.Tensor:
    if a.dtype.kind not in "biufc":
        raise TypeError(f"a checkpoint stores numeric numpy arrays only, got dtype {a.dtype}")
    if not a.dtype.isnative:
        a = a.astype(a.dtype.newbyteorder("="))
    if not (a.flags.c_contiguous and a.flags.writeable):
        a = a.copy(order="C")  # (not np.ascontiguousarray: it turns a 0-d array into a 1-d one)
    return torch.from_numpy(a)


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load a checkpoint without running code from it (weights_only=True, see CHECKPOINT_SAFE_GLOBALS), with an
    error that says what to do when it is missing, unreadable or asks to load anything beyond plain data."""
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT
    if not path.is_file():
        raise FileNotFoundError(
            f"no checkpoint at {path}: train first (footfall train PRESET --out DIR) or point at "
            "the run directory that holds checkpoint.pt"
        )
    try:
        with torch.serialization.safe_globals(list(CHECKPOINT_SAFE_GLOBALS)):
            ck = _unpack(torch.load(path, map_location="cpu", weights_only=True))
    except Exception as e:  # noqa: BLE001
        names = _refused_names(path, e)
        if names and all(n.startswith("numpy.") for n in names):
            raise ValueError(
                f"refusing to load checkpoint {path}: {_asks_for(names)} It was not written by this footfall: "
                "earlier footfall versions pickled numpy arrays as numpy objects. If it is your own run's, convert it "
                'once (this also runs no code from the file): `python -c "from footfall.training.runner import '
                f"upgrade_checkpoint; upgrade_checkpoint('{path}')\"`, then load it again."
            ) from None
        if names:
            raise ValueError(
                f"refusing to load checkpoint {path}: {_asks_for(names)} It was not written by footfall (nor by an "
                "older footfall). Do not load it with an unrestricted torch.load (weights_only off); train again, or get the "
                "checkpoint.pt of the footfall run it claims to come from."
            ) from None
        raise ValueError(
            f"checkpoint {path} is unreadable ({_weights_only_reason(e)}); it was not written by footfall or is damaged"
        ) from e
    if not isinstance(ck, dict) or ck.get("format") != "footfall-checkpoint-1":
        raise ValueError(
            f"{path} is not a footfall checkpoint (format {ck.get('format') if isinstance(ck, dict) else '?'})"
        )
    return ck


def _weights_only_reason(e: BaseException) -> str:
    """The line of a torch.load error that says what went wrong (torch's weights-only errors open with advice)."""
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    useful = [ln for ln in lines if not ln.startswith(("Weights only load failed", "Please file", "Check the doc"))]
    return (useful or lines or [type(e).__name__])[0][:300]


def _refused_names(path: Path, e: BaseException) -> list[str]:
    """When torch's weights-only loader refused `path`: the classes and functions the file names beyond plain data,
    read from its pickle without running it. Empty for any other error (a damaged file)."""
    if not (isinstance(e, pickle.UnpicklingError) and "Weights only load failed" in str(e)):
        return []
    try:
        names = set(torch.serialization.get_unsafe_globals_in_checkpoint(path))  # disassembles, runs nothing
    except Exception:  # noqa: BLE001 (not torch's zip format: torch's error names the first global it refused)
        names = set()
    return sorted(names | set(re.findall(r"GLOBAL ([\w.]+)", str(e))))


def _asks_for(names: list[str]) -> str:
    what = ", ".join(names[:8]) + (" ..." if len(names) > 8 else "")
    return (
        f"it asks to load {what}, which a footfall checkpoint never holds (tensors, numbers, strings, lists and "
        "dicts only), and loading it could run code hidden in the file."
    )


def upgrade_checkpoint(path: str | Path) -> Path:
    """Rewrite a checkpoint saved by an older footfall (numpy arrays pickled as numpy objects) in the current format,
    in place. Still loads with weights_only=True: only numpy's array and scalar reconstructors and numeric dtypes are
    allowed besides plain data, so even this path cannot run code from the file."""
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT
    core = np._core.multiarray if hasattr(np, "_core") else np.core.multiarray
    legacy = [
        np.ndarray,
        np.dtype,
        (core._reconstruct, "numpy.core.multiarray._reconstruct"),
        (core._reconstruct, "numpy._core.multiarray._reconstruct"),
        (core.scalar, "numpy.core.multiarray.scalar"),
        (core.scalar, "numpy._core.multiarray.scalar"),
        *{type(np.dtype(c)) for c in "?bBhHiIlLqQefdgFDG"},  # numeric dtypes' classes (BUILD sets their state)
    ]
    try:
        with torch.serialization.safe_globals(list(CHECKPOINT_SAFE_GLOBALS) + legacy):
            ck = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001
        names = _refused_names(path, e)
        if names:
            raise ValueError(f"not upgrading checkpoint {path}: {_asks_for(names)}") from None
        raise ValueError(f"checkpoint {path} is unreadable ({_weights_only_reason(e)}); not upgraded") from e
    if not isinstance(ck, dict) or ck.get("format") != "footfall-checkpoint-1":
        raise ValueError(f"{path} is not a footfall checkpoint; not upgraded")
    atomic_save(ck, path)
    return path
