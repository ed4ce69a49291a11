"""`train(cfg, out_dir)`: start or resume a run, write its config, learning curve and checkpoint."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from footfall.training.runner import (
    BEST,
    CHECKPOINT,
    OnPolicyRunner,
    RunConfig,
    atomic_write_text,
    config_to_dict,
    load_checkpoint,
)


def make_runner(cfg: RunConfig, out: Path, log: bool = True):
    if cfg.algo == "sac":
        from footfall.training.sac_runner import OffPolicyRunner

        return OffPolicyRunner(cfg, out, log=log)
    return OnPolicyRunner(cfg, out, log=log)


def train(cfg: RunConfig, out_dir: str | Path, resume: bool = False, progress: bool = True) -> dict[str, Any]:
    out = Path(out_dir)
    ck_path = out / CHECKPOINT
    if resume:
        ck = load_checkpoint(ck_path)
        saved = ck["config"]
        # The run's own config wins; only the budget may change on resume.
        budget = {"minutes": cfg.minutes, "max_iterations": cfg.max_iterations}
        cfg = dataclasses.replace(run_config_from_dict(saved), **budget)
        print(f"Resuming {out} at iteration {ck['iteration']} ({ck['elapsed_s'] / 60:.1f} min trained).")
    elif ck_path.exists() or (out / BEST).exists():
        raise ValueError(
            f"{out} already holds a run ({CHECKPOINT} or {BEST}); pass --resume to continue it, or choose another --out"
        )
    runner = make_runner(cfg, out)
    if resume:
        runner.load(ck_path)
    else:
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(json.dumps(config_to_dict(cfg), indent=1), out / "config.json")
        eta = f"{cfg.minutes:g} min budget" if cfg.minutes else f"{cfg.max_iterations} iterations"
        print(
            f"Training {cfg.task} with {cfg.algo.upper()} on {cfg.num_envs} envs, seed {cfg.seed} ({eta}); "
            f"logs: tensorboard --logdir {out / 'tb'}"
        )
    try:
        stats = runner.train(progress=progress)
    finally:
        runner.close()
    from footfall.training.evaluate import BARS, family_of_task
    from footfall.training.plots import plot_learning_curve

    metric, threshold, _ = BARS.get(family_of_task(cfg.task), ("", 0.0, ""))
    vel_target = threshold if metric == "lin_vel_rmse" else None  # the biped's bar is walk success, the arm's reach
    png = plot_learning_curve(
        runner.history,
        out / "learning_curve.png",
        title=cfg.task,
        vel_target=vel_target,
        best_iteration=runner.best["iteration"] if runner.best else None,
        check_metric=metric,
    )
    return {
        "run": str(out),
        "iteration": runner.iteration,
        "elapsed_s": round(runner.elapsed_s, 1),
        "env_steps": runner.env_steps,
        "interrupted": runner.interrupted,
        "learning_curve": str(png) if png else None,
        **({"selected": runner.best} if runner.best is not None else {}),
        **{k: round(v, 4) for k, v in stats.items() if k.startswith(("episode", "tracking"))},
    }


def run_config_from_dict(d: dict[str, Any]) -> RunConfig:
    from footfall.training.ppo import PPOConfig

    d = dict(d)
    ppo = PPOConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.pop("ppo").items()})
    sac = d.pop("sac", None)
    kwargs = {
        k: tuple(tuple(x) if isinstance(x, list) else x for x in v) if isinstance(v, list) else v for k, v in d.items()
    }
    if sac is not None:
        from footfall.training.sac import SACConfig

        kwargs["sac"] = SACConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in sac.items()})
    return RunConfig(ppo=ppo, **kwargs)
