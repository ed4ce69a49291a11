"""What `footfall deploy` shows a person while it runs, from threads of their own: a stalled terminal (Ctrl-S, a hung
SSH session) must never block the control loop.

- `Console`: fault notices (the runtime's `console` hook), one line each, through a bounded queue.
- `StatusLine`: mode, command, fault, lateness and missed deadlines, redrawn in place four times a second on a
  terminal, or one plain line every few seconds when stderr is a file or a pipe.
- `open_viewer`: MuJoCo's passive viewer on a simulated robot, or an error that says there is no display;
  `Watch`: the same for lockstep or batched episodes (sim2sim, eval), paced to real time.
"""

from __future__ import annotations

import os
import queue
import sys
import threading
import time
from typing import Any, TextIO

import numpy as np


class Console:
    """Prints messages from a thread of its own. A full queue drops messages (the telemetry log has every one)."""

    def __init__(self, stream: TextIO | None = None, prefix: str = "footfall deploy: ", size: int = 256):
        self.stream, self.prefix = stream, prefix
        self.queue: queue.Queue[str | None] = queue.Queue(maxsize=size)
        self.thread = threading.Thread(target=self._run, name="footfall-console", daemon=True)
        self.thread.start()

    def __call__(self, message: str) -> None:
        try:
            self.queue.put_nowait(message)
        except queue.Full:
            pass

    def _run(self) -> None:
        while (message := self.queue.get()) is not None:
            try:
                print(f"\r{self.prefix}{message}", file=self.stream or sys.stderr, flush=True)
            except (OSError, ValueError):  # a closed stream: nothing more to show
                return

    def close(self, timeout_s: float = 1.0) -> None:
        try:
            self.queue.put(None, timeout=timeout_s)
        except queue.Full:
            return
        self.thread.join(timeout_s)


def status_text(runtime: Any) -> str:
    """One line: mode, operator command, lateness p99 over the last second, missed deadlines, fault (if any)."""
    n = min(runtime.tick_count, len(runtime.lateness))
    per_s = max(1, round(1.0 / runtime.cfg.control_dt_s))
    recent = runtime.lateness[max(0, n - per_s) : n]
    p99 = f"{np.percentile(recent, 99) * 1e6:.0f} us" if len(recent) else "-"
    command = " ".join(f"{x:+.2f}" for x in runtime.command)
    text = (
        f"{runtime.mode.name:<8} cmd {command} | tick {runtime.tick_count} | lateness p99 {p99} "
        f"| missed {runtime.missed}"
    )
    return text + (f" | fault: {runtime.fault}" if runtime.fault else "")


class StatusLine:
    """Redraws `status_text(runtime)` every `every_s` on a terminal (stderr), or prints it every `plain_every_s`
    when stderr is not a terminal. Reads the runtime's fields from another thread: a line may mix two ticks."""

    def __init__(self, runtime: Any, stream: TextIO | None = None, every_s: float = 0.25, plain_every_s: float = 5.0):
        self.runtime = runtime
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.every_s = every_s if self.tty else plain_every_s
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="footfall-status", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        width = 0
        while not self._stop.wait(self.every_s):
            try:
                line = status_text(self.runtime)
                if self.tty:
                    self.stream.write("\r" + line.ljust(width))
                    width = len(line)
                else:
                    self.stream.write(line + "\n")
                self.stream.flush()
            except Exception:  # noqa: BLE001 (a closed stream or a racing read: the status is not worth a crash)
                return
        if self.tty and width:
            try:
                self.stream.write("\n")
                self.stream.flush()
            except (OSError, ValueError):
                pass

    def close(self) -> None:
        self._stop.set()
        self.thread.join(1.0)


class ViewerUnavailable(RuntimeError):
    """MuJoCo's interactive viewer cannot open here (no display)."""


def open_viewer(model: Any, data: Any) -> Any:
    """MuJoCo's passive viewer on (model, data); ViewerUnavailable with what to do when there is no display."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise ViewerUnavailable(
            "--viewer needs a display, and this session has none (DISPLAY is not set): run it on a desktop, over "
            "`ssh -X`, or under Xvfb. Without one, a deploy's telemetry log (footfall log export --mcap) and "
            "footfall eval's rollout GIF show a run"
        )
    try:
        import mujoco.viewer

        return mujoco.viewer.launch_passive(model, data)
    except Exception as e:  # noqa: BLE001 (GLFW or OpenGL missing: say so)
        raise ViewerUnavailable(f"MuJoCo's viewer could not open ({type(e).__name__}: {e})") from e


class Watch:
    """MuJoCo's passive viewer on its own MjData for `model`, fed the robot's joint positions (once a control tick,
    paced to real time, for a run of episodes in sim2sim or eval; 60 times a second for deploy's simulated robot).
    The viewer never sees the simulation's own MjData, so its render thread cannot read a state mid-step. Closing the
    window lets the run go on without it."""

    def __init__(self, model: Any):
        import mujoco

        self._mj = mujoco
        self.model, self.data = model, mujoco.MjData(model)
        self.handle = open_viewer(model, self.data)
        self._t0: tuple[float, float] | None = None  # (wall, simulated) time when the episode's first tick showed

    def episode(self) -> None:
        """A new episode begins: its time starts again."""
        self._t0 = None

    def show(self, qpos: np.ndarray, t_sim: float | None = None) -> None:
        """Show this pose; with `t_sim`, first wait until the wall clock has caught up with it (real-time pace)."""
        if self.handle is None or not self.handle.is_running():
            return
        with self.handle.lock():  # (the viewer renders its own copy from a thread of its own)
            self.data.qpos[:] = qpos
            self._mj.mj_forward(self.model, self.data)
        self.handle.sync()
        if t_sim is None:
            return
        now = time.perf_counter()
        if self._t0 is None:
            self._t0 = (now, t_sim)
        ahead = (t_sim - self._t0[1]) - (now - self._t0[0])
        if ahead > 0:
            time.sleep(ahead)

    def close(self, timeout_s: float = 2.0) -> None:
        """Close the window and wait for the viewer's thread to let go of it (exiting while it still renders can
        crash the process in the OpenGL teardown)."""
        if self.handle is not None:
            self.handle.close()
            end = time.perf_counter() + timeout_s
            while self.handle.is_running() and time.perf_counter() < end:
                time.sleep(0.01)
            self.handle = None
