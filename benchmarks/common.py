"""Helpers shared by the benchmarks: timing with medians, machine description, table printing."""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any


def rate(fn: Callable[[], None], items: int, repeats: int) -> list[float]:
    """Run `fn` `repeats` times; return items per second of each run."""
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(items / (time.perf_counter() - t0))
    return out


def median(xs: list[float]) -> float:
    return float(statistics.median(xs))


def machine() -> dict[str, str]:
    import mujoco
    import numpy as np

    return {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {platform.system()}",
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "python": platform.python_version(),
        "mujoco": mujoco.__version__,
        "numpy": np.__version__,
    }


def cell(x: Any, spec: str = "") -> str:
    """A table cell: `x` formatted with `spec`, or "-" where there is no figure (None)."""
    return "-" if x is None else format(x, spec)


def table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    fmt = lambda cells: "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths)))  # noqa: E731
    return "\n".join([fmt(header), fmt(tuple("-" * w for w in widths))] + [fmt(r) for r in rows])
