"""Plots a person would rather look at than read. matplotlib is optional: without it, plots are skipped."""

from __future__ import annotations

from pathlib import Path


def plot_learning_curve(
    history: list[dict[str, float]],
    path: Path,
    title: str = "",
    vel_target: float | None = None,
    best_iteration: int | None = None,
    check_metric: str = "",
) -> Path | None:
    """Return, tracking error and episode length over wall time; `vel_target` draws an RMSE bar. A run with
    selection checks gets a panel of their `check_metric`, with a star on `best_iteration` (the policy in best.pt)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    if not history:
        return None
    t = [h["time/elapsed_s"] / 60 for h in history]
    panels = [
        (k, label)
        for k, label in (
            ("episode/return", "episode return"),
            ("tracking/lin_vel_xy_rms_error", "velocity tracking error, m/s"),
            ("episode/length_s", "episode length, s"),
            (f"select/{check_metric}", f"selection checks: {check_metric}"),
        )
        if any(k in h for h in history)
    ]
    if not panels:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 3.4), squeeze=False)
    for ax, (k, label) in zip(axes[0], panels):
        xs = [ti for ti, h in zip(t, history) if k in h]
        ys = [h[k] for h in history if k in h]
        if k.startswith("select/"):  # sparse points: the checks that chose best.pt (star)
            ax.plot(xs, ys, "o-", ms=3, lw=1)
            best = [(ti, h[k]) for ti, h in zip(t, history) if k in h and h.get("iteration") == best_iteration]
            if best:
                ax.plot(*best[0], "*", ms=12, color="tab:orange", label=f"best.pt (iteration {best_iteration})")
                ax.legend()
        else:
            ax.plot(xs, ys, lw=1.5)
        ax.set_xlabel("wall time, min")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        if k.startswith("tracking") and vel_target is not None:
            ax.axhline(vel_target, color="tab:red", ls="--", lw=1, label=f"{vel_target:g} m/s target")
            ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)
    return path
