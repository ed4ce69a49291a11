"""Time to a trained policy: footfall's trainer against Stable-Baselines3 PPO, same task, same budget, this machine.

For each seed, a preset trains from scratch for a wall-clock budget. Every `snapshot_every_s` of training time the
policy the run stands for is saved (with `select_every` on, the best checked so far, see training/runner.py, and
then also whenever a check finds a new best); after
training, each snapshot is evaluated with the deterministic policy and randomization on (`footfall.training.evaluate`),
so the evaluation never slows the clock it is measured against (the selection checks, part of training, do). A
snapshot passes when it meets the preset's bar:

  quadruped-*  velocity-tracking RMSE <= 0.2 m/s and fall rate <= 5% (commands held 5 s, 20 s episodes)
  biped-flat   >= 90% of episodes walk at a commanded 0.5 m/s for 20 s without falling (at least 100 episodes)
  arm-reach    mean final end-effector error <= 1 cm over 100 targets

Time to threshold is the training wall time of the first passing snapshot, median over seeds (a seed that never
passes counts as infinite). The reference is Stable-Baselines3 PPO with its default settings plus VecNormalize, on
the same task and number of environments, with the same torch threads and wall budget (PPO presets only; SB3 has
no asymmetric critic, so its critic sees what the actor sees). It runs in a child process that is stopped at the
budget; its policy changes only after an update, so it is snapshotted after each one.
"""

from __future__ import annotations

import dataclasses
import json
import math
import multiprocessing as mp
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from footfall.benchmarks.common import cell, machine, table
from footfall.training.evaluate import BARS, family_of_task
from footfall.training.presets import preset as get_preset


def family_of_preset(name: str) -> str:
    """The robot family of a preset's task (a key of BARS): 'go2-flat' is a quadruped like 'quadruped-flat'."""
    return family_of_task(get_preset(name).task)


def bar_of(name: str) -> tuple[str, float, str]:
    return BARS[family_of_preset(name)]


def passes(preset: str, result: dict[str, Any]) -> bool:
    metric, threshold, _ = bar_of(preset)
    value = result[metric]
    if value is None:  # nothing to measure: every episode fell at once
        return False
    if metric == "lin_vel_rmse":
        return bool(value <= threshold and result["fall_rate"] <= 0.05)
    if metric == "walk_success_rate":
        return bool(value >= threshold)
    return bool(value <= threshold)


def evaluate_policy(preset: str, task: str, policy: Any, env_overrides: dict, episodes: int) -> dict[str, Any]:
    from footfall.training.evaluate import evaluate_bar

    if family_of_task(task) in ("arm", "biped"):
        # The arm's bar is over 100 targets. The biped's: a rate near 0.9 from 20 episodes has a standard error of
        # 0.07, one episode either way decides the bar, so the walk test runs at least 100 (about 12 s per snapshot
        # here): the v2 policies read 0.95 / 0.85 on 20 episodes and 0.94 / 0.84 on 100.
        episodes = max(episodes, 100)
    return evaluate_bar(task, policy, episodes, env_overrides=env_overrides)


# ---------------------------------------------------------------------------------------------------- ours


def train_ours(cfg: Any, out: Path, snapshot_every_s: float) -> list[Path]:
    from footfall.training.runner import atomic_save
    from footfall.training.train import make_runner

    snaps = out / "snapshots"
    snaps.mkdir(parents=True, exist_ok=True)
    runner = make_runner(cfg, out)
    saved: list[Path] = []
    due = [snapshot_every_s]  # the clock's next snapshot time

    def snapshot(r: Any, stats: dict) -> None:
        # On the clock, and whenever a check has just chosen the current policy: stamped at the next clock snapshot,
        # a better best.pt found between two would pass the bar minutes later than it did.
        new_best = r.best is not None and r.best["iteration"] == r.iteration
        if r.elapsed_s >= due[0] or new_best:
            path = snaps / f"it{r.iteration:06d}-t{r.elapsed_s:07.1f}s.pt"
            atomic_save(r.selected_snapshot(), path)  # with selection on, the best checked so far
            saved.append(path)
            while due[0] <= r.elapsed_s:
                due[0] += snapshot_every_s

    runner.callbacks.append(snapshot)
    try:
        runner.train(progress=True)
        path = snaps / f"it{runner.iteration:06d}-t{runner.elapsed_s:07.1f}s.pt"
        if not saved or saved[-1] != path:
            atomic_save(runner.selected_snapshot(), path)
            saved.append(path)
    finally:
        runner.close()
    return saved


def eval_ours(preset: str, snapshots: list[Path], episodes: int) -> list[dict[str, Any]]:
    from footfall.training.evaluate import actor_from_checkpoint, numpy_policy
    from footfall.training.runner import load_checkpoint
    from footfall.training.train import run_config_from_dict

    curve = []
    for path in snapshots:
        ck = load_checkpoint(path)
        cfg = run_config_from_dict(ck["config"])
        policy = numpy_policy(actor_from_checkpoint(cfg, ck))
        r = evaluate_policy(preset, cfg.task, policy, dict(cfg.env_overrides), episodes)
        curve.append({"elapsed_s": round(ck["elapsed_s"], 1), "iteration": ck["iteration"], **r})
    return curve


# ---------------------------------------------------------------------------------------------------- SB3


def _sb3_vec_env(task: str, num_envs: int, seed: int, env_overrides: dict) -> Any:
    """Our batched task behind Stable-Baselines3's VecEnv interface (terminal_observation, TimeLimit.truncated)."""
    import gymnasium as gym
    from stable_baselines3.common.vec_env import VecEnv

    from footfall.envs import make_task

    class FootfallSB3VecEnv(VecEnv):
        render_mode = None  # headless; declared so SB3 does not warn

        def __init__(self) -> None:
            self.core = make_task(task, num_envs=num_envs, seed=seed, **env_overrides)
            bound = float(self.core.cfg.action_clip)  # the task's own action clip: SB3 clips actions to the space
            obs_space = gym.spaces.Box(-np.inf, np.inf, (self.core.obs_size,), np.float32)
            act_space = gym.spaces.Box(-bound, bound, (self.core.action_size,), np.float32)
            super().__init__(num_envs, obs_space, act_space)
            self._actions: np.ndarray | None = None

        def reset(self) -> np.ndarray:
            obs, _ = self.core.reset(seed=seed)
            return obs.astype(np.float32)

        def step_async(self, actions: np.ndarray) -> None:
            self._actions = actions

        def step_wait(self) -> tuple:
            obs, rew, term, trunc, info = self.core.step(np.asarray(self._actions, dtype=np.float64))
            infos: list[dict] = [{} for _ in range(self.num_envs)]
            for j, row in enumerate(info.get("done_rows", ())):
                infos[row] = {
                    "terminal_observation": info["final_obs"][j].astype(np.float32),
                    "TimeLimit.truncated": bool(trunc[row] and not term[row]),
                    "episode": {"r": float(info["episode_return"][j]), "l": int(info["episode_length"][j]), "t": 0.0},
                }
            return obs.astype(np.float32), rew.astype(np.float32), term | trunc, infos

        def close(self) -> None:
            self.core.close()

        def get_attr(self, attr_name: str, indices: Any = None) -> list:
            return [getattr(self, attr_name)] * len(self._get_indices(indices))

        def set_attr(self, attr_name: str, value: Any, indices: Any = None) -> None:
            setattr(self, attr_name, value)

        def env_method(self, method_name: str, *args: Any, indices: Any = None, **kwargs: Any) -> list:
            return [getattr(self, method_name)(*args, **kwargs)] * len(self._get_indices(indices))

        def env_is_wrapped(self, wrapper_class: type, indices: Any = None) -> list[bool]:
            return [False] * len(self._get_indices(indices))

    return FootfallSB3VecEnv()


def _sb3_worker(
    task: str, num_envs: int, seed: int, env_overrides: dict, threads: int, budget_s: float, snapshot_dir: str
) -> None:
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.logger import configure
    from stable_baselines3.common.vec_env import VecNormalize

    torch.set_num_threads(threads)
    out = Path(snapshot_dir)
    out.mkdir(parents=True, exist_ok=True)
    venv = VecNormalize(_sb3_vec_env(task, num_envs, seed, env_overrides))
    model = PPO("MlpPolicy", venv, seed=seed, device="cpu", verbose=0)
    # SB3's own training log (losses, KL, fps) beside the snapshots, instead of an empty /tmp/SB3-* folder per run
    model.set_logger(configure(str(out.parent / "sb3-log"), ["csv"]))

    class Snapshots(BaseCallback):
        """After each update (rollout start), save the policy and VecNormalize statistics; the time spent saving
        is left off the clock. Stop stepping once the budget is spent."""

        def _on_training_start(self) -> None:
            self.t0, self.paused, self.rollouts = time.perf_counter(), 0.0, 0

        def elapsed(self) -> float:
            return time.perf_counter() - self.t0 - self.paused

        def _on_rollout_start(self) -> None:
            if self.rollouts:
                t, s0 = self.elapsed(), time.perf_counter()
                d = out / f"t{t:07.1f}s"
                d.mkdir(exist_ok=True)
                self.model.save(d / "model.zip")
                np.savez(d / "obs_rms.npz", mean=venv.obs_rms.mean, var=venv.obs_rms.var)
                (d / "meta.json").write_text(json.dumps({"elapsed_s": t, "env_steps": self.num_timesteps}))
                self.paused += time.perf_counter() - s0
                print(f"SB3 PPO: update {self.rollouts} done at {t / 60:.1f} min ({self.num_timesteps:,} steps)")
            self.rollouts += 1

        def _on_step(self) -> bool:
            return self.elapsed() < budget_s

    model.learn(total_timesteps=10**12, callback=Snapshots())


def train_sb3(cfg: Any, out: Path, budget_s: float) -> list[Path]:
    snaps = out / "snapshots"
    ctx = mp.get_context("spawn")  # a fresh interpreter: no torch thread pool inherited from our own training
    args = (cfg.task, cfg.num_envs, cfg.seed, dict(cfg.env_overrides), cfg.torch_threads, budget_s, str(snaps))
    proc = ctx.Process(target=_sb3_worker, args=args, daemon=True)
    start = time.perf_counter()
    proc.start()
    # Its clock starts after the environment is built, so allow a margin; an update still running at the budget
    # could not count anyway.
    proc.join(timeout=budget_s + 120)
    if proc.is_alive():
        proc.terminate()
        proc.join(10)
    print(f"SB3 PPO stopped after {(time.perf_counter() - start) / 60:.1f} min of wall time")
    return sorted(p for p in snaps.glob("t*s") if (p / "meta.json").exists()) if snaps.exists() else []


def eval_sb3(preset: str, cfg: Any, snapshots: list[Path], budget_s: float, episodes: int) -> list[dict[str, Any]]:
    from stable_baselines3 import PPO

    curve = []
    for d in snapshots:
        meta = json.loads((d / "meta.json").read_text())
        if meta["elapsed_s"] > budget_s:
            continue
        model = PPO.load(d / "model.zip", device="cpu")
        rms = np.load(d / "obs_rms.npz")
        mean, std = rms["mean"], np.sqrt(rms["var"] + 1e-8)  # VecNormalize's defaults: epsilon 1e-8, clip 10

        def policy(obs: np.ndarray, model: Any = model, mean: Any = mean, std: Any = std) -> np.ndarray:
            o = np.clip((obs - mean) / std, -10.0, 10.0).astype(np.float32)
            return model.predict(o, deterministic=True)[0].astype(np.float64)

        r = evaluate_policy(preset, cfg.task, policy, dict(cfg.env_overrides), episodes)
        curve.append({"elapsed_s": round(meta["elapsed_s"], 1), "env_steps": meta["env_steps"], **r})
    return curve


# ---------------------------------------------------------------------------------------------------- report


def time_to_threshold(preset: str, curve: list[dict[str, Any]]) -> float | None:
    return next((c["elapsed_s"] for c in curve if passes(preset, c)), None)


def _num(x: float | None) -> float:
    """A figure for a plot: None (nothing measured) leaves a gap."""
    return np.nan if x is None else x


def plot(preset: str, ours: dict[int, list[dict]], sb3: list[dict] | None, path: Path, title: str) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("plot skipped: matplotlib is not installed (pip install matplotlib)")
        return None
    metric, threshold, reads = bar_of(preset)
    # The biped's bar is a share that stays 0 until the robot walks at the commanded speed: a second panel shows
    # the speed it does walk at, which is where its progress shows.
    speed = metric == "walk_success_rate"
    fig, axes = plt.subplots(1, 2 if speed else 1, figsize=(12 if speed else 7, 4.2), squeeze=False)
    ax = axes[0, 0]
    blues = plt.cm.Blues(np.linspace(0.55, 0.95, max(len(ours), 1)))  # one colour per seed, the same in both panels
    if speed:
        sx = axes[0, 1]
        for (seed, curve), color in zip(sorted(ours.items()), blues):
            sx.plot(
                [c["elapsed_s"] / 60 for c in curve],
                [_num(c.get("mean_forward_speed")) for c in curve],
                "o-",
                ms=3,
                color=color,
                label=f"footfall PPO, seed {seed}",
            )
        sx.axhline(0.5, color="tab:red", ls="--", lw=1, label="commanded 0.5 m/s")
        sx.set_xlabel("training wall time, min")
        sx.set_ylabel("mean forward speed at a 0.5 m/s command, m/s")
        sx.grid(alpha=0.3)
        sx.legend(fontsize=8)
    for (seed, curve), color in zip(sorted(ours.items()), blues):
        algo = "SAC" if preset.startswith("arm") else "PPO"
        xs, ys = [c["elapsed_s"] / 60 for c in curve], [_num(c.get(metric)) for c in curve]
        ax.plot(xs, ys, "o-", ms=3, color=color, label=f"footfall {algo}, seed {seed}")
        t = time_to_threshold(preset, curve)
        if t is not None:
            ax.axvline(t / 60, color=color, lw=0.8, ls=":")
    if sb3:
        ax.plot(
            [c["elapsed_s"] / 60 for c in sb3],
            [_num(c.get(metric)) for c in sb3],
            "s-",
            ms=4,
            color="tab:orange",
            label="Stable-Baselines3 PPO + VecNormalize",
        )
    ax.axhline(threshold, color="tab:red", ls="--", lw=1, label=f"bar: {reads}")
    ax.set_xlabel("training wall time, min")
    ax.set_ylabel(metric.replace("_", " "))
    if metric == "reach_error_m":  # from half a metre down to millimetres: only a log axis shows the last centimetre
        ax.set_yscale("log")
        ax.set_ylabel("mean reach error over 100 targets, m (log scale)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)
    return path


def _median_time(times: list[float | None]) -> float | None:
    m = statistics.median([t if t is not None else math.inf for t in times])
    return None if math.isinf(m) else round(m, 1)


def run(
    preset: str = "quadruped-flat",
    quick: bool = False,
    seeds: int | None = None,
    minutes: float | None = None,
    out: str | Path | None = None,
    reference: bool = True,
    episodes: int = 20,
) -> dict[str, Any]:
    base = get_preset(preset)
    seeds = seeds if seeds is not None else (1 if quick else 3)
    minutes = (
        minutes
        if minutes is not None
        else (2.0 if quick else {"biped": 60.0, "arm": 10.0}.get(family_of_preset(preset), 15.0))
    )
    budget_s = minutes * 60
    snapshot_every_s = max(budget_s / 15, 20.0)
    out = Path(out or f"bench_out/train-{preset}")
    out.mkdir(parents=True, exist_ok=True)
    metric, threshold, reads = bar_of(preset)
    print(f"footfall bench train: {preset}, {seeds} seed(s) x {minutes:g} min, bar: {reads}; runs in {out}")

    ours: dict[int, list[dict]] = {}
    for seed in range(seeds):
        run_dir = out / f"footfall-seed{seed}"
        if run_dir.exists():
            import shutil

            shutil.rmtree(run_dir)  # a benchmark starts from scratch
        cfg = dataclasses.replace(base, seed=seed, minutes=minutes, max_iterations=10**9)
        print(f"\n[footfall seed {seed}] training {minutes:g} min")
        snaps = train_ours(cfg, run_dir, snapshot_every_s)
        print(f"[footfall seed {seed}] evaluating {len(snaps)} snapshots")
        ours[seed] = eval_ours(preset, snaps, episodes)

    sb3_curve: list[dict] | None = None
    if reference and base.algo == "ppo":
        try:
            import stable_baselines3  # noqa: F401
        except ImportError:
            print("SB3 reference skipped: stable-baselines3 is not installed (pip install -e '.[bench]')")
        else:
            sb3_dir = out / "sb3-seed0"
            if sb3_dir.exists():
                import shutil

                shutil.rmtree(sb3_dir)
            cfg = dataclasses.replace(base, seed=0)
            print(f"\n[SB3 PPO seed 0] training {minutes:g} min, default settings + VecNormalize, {cfg.num_envs} envs")
            snaps = train_sb3(cfg, sb3_dir, budget_s)
            print(f"[SB3 PPO seed 0] evaluating {len(snaps)} snapshots")
            sb3_curve = eval_sb3(preset, cfg, snaps, budget_s, episodes)

    times = {s: time_to_threshold(preset, c) for s, c in ours.items()}
    m = machine()
    png = plot(
        preset,
        ours,
        sb3_curve,
        out / "learning_curve.png",
        f"{preset}: {m['machine']}, {base.torch_threads} torch threads, {m['date']}",
    )
    fmt_t = lambda t: "never" if t is None else f"{t / 60:.1f} min"  # noqa: E731
    rows = [
        (f"footfall seed {s}", fmt_t(times[s]), cell(c[-1].get(metric), ".4g"), cell(c[-1].get("fall_rate"), ".2f"))
        for s, c in ours.items()
    ]
    sb3_time = time_to_threshold(preset, sb3_curve) if sb3_curve else None
    if sb3_curve is not None:
        last = sb3_curve[-1] if sb3_curve else {}
        rows.append(
            (
                "SB3 PPO seed 0",
                fmt_t(sb3_time),
                cell(last.get(metric), ".4g"),
                cell(last.get("fall_rate"), ".2f"),
            )
        )
    print()
    print(table(("run", "time to bar", f"final {metric}", "final fall rate"), rows))
    result = {
        "benchmark": "train",
        "preset": preset,
        "bar": reads,
        "metric": metric,
        "threshold": threshold,
        "budget_s": budget_s,
        "seeds": seeds,
        "time_to_threshold_s": _median_time(list(times.values())),
        "time_to_threshold_s_per_seed": [times[s] for s in sorted(times)],
        f"final_{metric}_per_seed": [ours[s][-1][metric] for s in sorted(ours)],
        "sb3_time_to_threshold_s": sb3_time,
        f"sb3_final_{metric}": sb3_curve[-1][metric] if sb3_curve else None,
        "sb3_updates_in_budget": len(sb3_curve) if sb3_curve is not None else None,
        "learning_curve": str(png) if png else None,
        "curves": {"footfall": {str(s): c for s, c in ours.items()}, "sb3": sb3_curve},
        **m,
    }
    from footfall.training.runner import atomic_write_text

    atomic_write_text(json.dumps(result, indent=1), out / "result.json")
    compact = {k: v for k, v in result.items() if k != "curves"}
    return compact


def main(quick: bool = False, **options: Any) -> dict[str, Any]:
    r = run(quick=quick, **{k: v for k, v in options.items() if v is not None})
    print(json.dumps(r))
    return r
