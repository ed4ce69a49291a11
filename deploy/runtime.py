"""The deploy runtime: a fixed-rate loop with a state machine and a safety layer around any controller.

    PASSIVE --start--> STAND_UP --(ramp done)--> STAND --run--> RUN
       ^                                                        |
       +----reset---- DAMP <----stop / fault (any mode)---------+

- PASSIVE and DAMP: kp = 0, kd = the robot's damping: the joints go limp slowly. DAMP is latched until an operator
  `reset` (which also re-arms the robot link, e.g. a new handshake with a bridge that damped on its own).
- STAND_UP: a smooth (smoothstep) ramp from the measured pose to the default pose over `stand_up_s`.
- RUN: the controller (an ONNX policy or a model-based controller) commands the joints, through the safety layer.

The loop sleeps to absolute deadlines t0 + k * period, so errors do not accumulate; a tick that wakes past the
next deadline skips to the one after and counts the miss. Per-tick lateness and compute time go to preallocated
arrays (and to the telemetry log). `realtime_setup` asks the OS for SCHED_FIFO, a pinned CPU and locked memory
where it allows, and garbage collection is frozen once the loop runs.

The loop never dies on input: an exception anywhere in a tick (a controller bug, a malformed reading) moves to DAMP
and the loop goes on sending damping commands; `max_missed_deadlines` deadlines missed in a row trip DAMP too.
`request_exit(reason)` (what `footfall deploy`'s SIGTERM / SIGHUP / SIGINT handlers call; it only sets a flag, so
it is safe in a signal handler) damps and leaves the loop at the next tick.

Lockstep: with a simulated robot that implements `advance_to`, `LockstepClock` makes "sleep until the deadline"
mean "simulate until the deadline", so the same loop runs deterministically and faster than real time.
"""

from __future__ import annotations

import gc
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import numpy as np

from footfall.deploy.interface import JointCommand, RobotInterface, RobotReading
from footfall.deploy.safety import SafetyConfig, SafetyFault, SafetyLayer
from footfall.robots.spec import RobotSpec

Controller = Callable[[RobotReading, np.ndarray], JointCommand]


class Mode(IntEnum):
    PASSIVE = 0
    STAND_UP = 1
    STAND = 2
    RUN = 3
    DAMP = 4


@dataclass(frozen=True)
class RuntimeConfig:
    control_dt_s: float = 0.02
    stand_up_s: float = 2.0
    damping_kd: float | None = None  # per-joint damping in PASSIVE/DAMP (default: the robot's kd)
    num_commands: int = 3  # operator command size (vx, vy, yaw rate)
    command_hold: bool = False  # True: keep the last velocity command forever (no timeout): scripted runs
    command_ranges: tuple[tuple[float, float], ...] | None = None  # operator commands are clipped into these
    # (deploy passes the contract's: the ranges the policy was trained on)
    max_ticks: int = 360_000  # timing arrays' length (2 h at 50 Hz); later ticks keep the last slot


class RealClock:
    """Wall clock with absolute-deadline sleeps: coarse sleep, then a short spin for the last `spin_s`."""

    def __init__(self, spin_s: float = 200e-6):
        self.spin_s = spin_s

    def now(self) -> float:
        return time.perf_counter()

    def wait_until(self, t: float) -> None:
        while True:
            left = t - time.perf_counter()
            if left <= 0:
                return
            if left > self.spin_s:
                time.sleep(left - self.spin_s)


class LockstepClock:
    """Simulated time: waiting until t advances the simulated robot to t."""

    def __init__(self, robot: Any):
        self.robot = robot

    def now(self) -> float:
        return self.robot.time_s()

    def wait_until(self, t: float) -> None:
        self.robot.advance_to(t)


def realtime_setup(cpu: int | None = None, priority: int = 80) -> dict[str, str]:
    """Best-effort real-time settings for this process; returns what each step did."""
    done: dict[str, str] = {}
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
        done["sched_fifo"] = f"ok (priority {priority})"
    except (OSError, AttributeError) as e:
        done["sched_fifo"] = f"not allowed ({e}); run as root or grant CAP_SYS_NICE / rtprio in limits.conf"
    if cpu is not None:
        try:
            os.sched_setaffinity(0, {cpu})
            done["cpu"] = f"pinned to {cpu}"
        except (OSError, AttributeError) as e:
            done["cpu"] = f"not pinned ({e})"
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        if libc.mlockall(1 | 2) == 0:  # MCL_CURRENT | MCL_FUTURE
            done["mlockall"] = "ok"
        else:
            done["mlockall"] = f"not allowed (errno {ctypes.get_errno()}); raise RLIMIT_MEMLOCK"
    except (OSError, AttributeError) as e:
        done["mlockall"] = f"unavailable ({e})"
    return done


class Runtime:
    def __init__(
        self,
        robot: RobotInterface,
        spec: RobotSpec,
        controller: Controller,
        cfg: RuntimeConfig | None = None,
        safety: SafetyConfig | None = None,
        clock: Any = None,
        telemetry: Any = None,
        obs_size: int = 0,
    ):
        self.robot, self.spec, self.controller = robot, spec, controller
        self.cfg = cfg or RuntimeConfig()
        if not (math.isfinite(self.cfg.control_dt_s) and 0.001 <= self.cfg.control_dt_s <= 0.1):
            raise ValueError(f"control period must lie in [1, 100] ms, got {self.cfg.control_dt_s!r} s")
        self.safety = SafetyLayer.for_robot(spec, safety, control_dt_s=self.cfg.control_dt_s)
        self.clock = clock or RealClock()
        self.telemetry = telemetry
        nj = spec.num_joints
        self.nj = nj
        self.default = np.asarray(spec.default_pose, dtype=float)
        self.kp = np.asarray(spec.kp, dtype=float)
        self.kd = np.asarray(spec.kd, dtype=float)
        kd_damp = self.kd if self.cfg.damping_kd is None else np.full(nj, self.cfg.damping_kd)
        self.damping = JointCommand.damping(nj, kd_damp)
        if not np.any(np.asarray(kd_damp) > 0):
            print(
                f"warning: {spec.name} has no joint damping (kd = 0 in its model and spec), so PASSIVE and DAMP "
                "apply no torque at all: set kd in the spec file, or RuntimeConfig.damping_kd",
                file=sys.stderr,
            )
        self.mode = Mode.PASSIVE
        self.fault: str | None = None
        self.events: list[dict[str, Any]] = []
        self.command = np.zeros(self.cfg.num_commands)
        self.command_stamp = -math.inf
        self.last_cmd = self.damping.copy()
        self.last_reading: RobotReading | None = None
        self.stand_from: np.ndarray | None = None
        self.stand_t0 = 0.0
        self.tick_count = 0
        self.missed = 0
        self.missed_in_a_row = 0
        self.tick_errors = 0  # exceptions caught inside ticks (each one damped the robot)
        self.exit_reason: str | None = None  # set by request_exit: damp and leave the loop
        self.notices: list[str] = []  # fault reasons not yet shown on the console (printed after the tick's write)
        self.console: Callable[[str], None] | None = None  # where fault reasons are shown (footfall deploy: stderr)
        n = self.cfg.max_ticks
        self.lateness = np.zeros(n)
        self.compute = np.zeros(n)  # the whole tick: read, check, control, filter, write, log
        self.control = np.zeros(n)  # its compute alone: reading checks + observation + controller + safety filter
        self.wake = np.zeros(n)
        self.deadline = np.zeros(n)  # the scheduled time of each tick, same origin as `wake`
        self.obs_size = obs_size
        self.on_tick: list[Callable[[Runtime], None]] = []  # called after each tick (metrics, scripted commands)

    # ------------------------------------------------------------------ operator commands

    def set_velocity(self, command: np.ndarray) -> None:
        self.command[:] = command
        if self.cfg.command_ranges is not None:
            lo, hi = np.array(self.cfg.command_ranges, dtype=float).T
            np.clip(self.command, lo, hi, out=self.command)
        self.command_stamp = self.clock.now()

    def start(self) -> None:
        """PASSIVE -> STAND_UP."""
        if self.mode == Mode.PASSIVE:
            self._enter(Mode.STAND_UP, "operator start")

    def run(self) -> None:
        """STAND -> RUN (STAND_UP finishes first)."""
        if self.mode in (Mode.STAND, Mode.STAND_UP):
            self._run_requested = True
            if self.mode == Mode.STAND:
                self._enter(Mode.RUN, "operator run")

    def stop(self, reason: str = "operator stop") -> None:
        if self.mode != Mode.DAMP:
            self._enter(Mode.DAMP, reason)

    def reset(self) -> None:
        """DAMP -> PASSIVE, clearing the fault (an explicit operator action; nothing in the loop calls it). The robot
        link is re-armed too: a bridge that latched its own damping obeys commands again after a new handshake."""
        if self.mode in (Mode.DAMP, Mode.PASSIVE):
            try:
                self.robot.rearm()
            except Exception as e:  # noqa: BLE001 (a robot without a link to re-arm, or a failing one: stay damped)
                self._note(f"re-arming the robot link failed: {type(e).__name__}: {e}")
        if self.mode == Mode.DAMP:
            self.fault = None
            self._enter(Mode.PASSIVE, "operator reset")

    def request_exit(self, reason: str) -> None:
        """Damp and leave the loop at the next tick (safe to call from a signal handler: it sets a flag)."""
        self.exit_reason = reason

    def _note(self, message: str) -> None:
        self.notices.append(message)
        if self.telemetry is not None:
            self.telemetry.event(t=self.clock.now(), tick=self.tick_count, event="notice", reason=message)

    def run_now(self) -> None:
        """Skip the stand-up: RUN at once (simulation, when the robot already stands at the default pose)."""
        self._enter(Mode.RUN, "run without stand-up")

    # ------------------------------------------------------------------ the loop

    _run_requested = False
    control_s = 0.0

    def _enter(self, mode: Mode, reason: str) -> None:
        t = self.clock.now()
        ev = {"t": t, "tick": self.tick_count, "event": "mode", "from": self.mode.name, "to": mode.name}
        ev["reason"] = reason
        self.events.append(ev)
        if self.telemetry is not None:
            self.telemetry.event(**ev)
        if mode == Mode.STAND_UP:
            self.stand_from = None
            self.stand_t0 = t
        if mode == Mode.RUN and hasattr(self.controller, "reset"):
            self.controller.reset(self.last_reading)
        if mode == Mode.DAMP:
            self.fault = reason
            self._run_requested = False
            self.notices.append(f"{ev['from']} -> DAMP: {reason}")
        self.mode = mode

    def _fault(self, reason: str) -> None:
        """Damp for `reason` unless already PASSIVE or DAMP (both already damp)."""
        if self.mode not in (Mode.PASSIVE, Mode.DAMP):
            self._enter(Mode.DAMP, reason)

    def tick(self) -> JointCommand:
        """One control step: read, check, control, filter, write. Never raises: an exception damps the robot."""
        try:
            return self._tick()
        except Exception as e:  # noqa: BLE001 (anything a tick raises is a reason to damp, never to exit)
            self.tick_errors += 1
            reason = f"tick raised {type(e).__name__}: {e}"
            try:
                self._fault(reason)
                if self.mode == Mode.PASSIVE:
                    self._note(reason)
            except Exception:  # noqa: BLE001 (the telemetry itself may be what failed)
                self.mode, self.fault = Mode.DAMP, reason
            self.last_cmd = self.damping
            try:
                self.robot.write(self.damping)
            except Exception:  # noqa: BLE001 (a write that fails is retried on the next tick)
                pass
            try:
                self._log(None, self.damping, None)  # the record says what was sent: damping, no reading
            except Exception:  # noqa: BLE001
                pass
            return self.damping

    def _tick(self) -> JointCommand:
        reading = self.robot.read()
        t_ctl = time.perf_counter()
        fault = self.safety.check_reading(reading)
        fresh = self.safety.fresh() and reading is not None
        if fresh:
            self.last_reading = reading
        if fault is not None:
            self._fault(fault)
        now = self.clock.now()
        if not self.cfg.command_hold and now - self.command_stamp > self.safety.cfg.command_timeout_s:
            self.command[:] = 0.0  # operator link silent: stand still
        out = self.damping
        action = None
        if self.mode in (Mode.STAND_UP, Mode.STAND, Mode.RUN) and not fresh:
            out = self.last_cmd  # hold the last command until the state is fresh again (or the stale trip)
        elif self.mode == Mode.STAND_UP:
            if self.stand_from is None:
                self.stand_from = reading.joint_pos.copy()
                self.safety.prev_q = self.stand_from.copy()
            s = min(1.0, (now - self.stand_t0) / self.cfg.stand_up_s)
            s = s * s * (3 - 2 * s)
            q = self.stand_from + s * (self.default - self.stand_from)
            out = JointCommand(q, np.zeros(self.nj), self.kp.copy(), self.kd.copy(), np.zeros(self.nj))
            if s >= 1.0:
                self._enter(Mode.RUN if self._run_requested else Mode.STAND, "stand-up done")
        elif self.mode == Mode.STAND:
            out = JointCommand(
                self.default.copy(), np.zeros(self.nj), self.kp.copy(), self.kd.copy(), np.zeros(self.nj)
            )
        elif self.mode == Mode.RUN:
            try:
                out = self.controller(reading, self.command)
                action = getattr(self.controller, "action", None)
                fault = self.safety.check_action(action)
                if fault is not None:
                    raise SafetyFault(fault)
            except SafetyFault as e:  # the controller (or its raw action) says the robot must damp
                self._enter(Mode.DAMP, str(e))
                out, action = self.damping, None
            except Exception as e:  # a controller bug must not take the robot down with it
                self._enter(Mode.DAMP, f"controller raised {type(e).__name__}: {e}")
                out, action = self.damping, None
        if self.mode in (Mode.STAND_UP, Mode.STAND, Mode.RUN) and out is not self.last_cmd:
            out, fault = self.safety.filter(out, reading)
            if fault is not None:
                self._enter(Mode.DAMP, fault)
                out = self.damping
        if self.mode in (Mode.PASSIVE, Mode.DAMP):
            out = self.damping
            self.safety.prev_q = None
        self.control_s = time.perf_counter() - t_ctl
        self.robot.write(out)
        self.last_cmd = out
        self._log(reading, out, action)
        return out

    def _log(self, reading: RobotReading | None, out: JointCommand, action: np.ndarray | None) -> None:
        """Hand this tick's record to the telemetry writer (it copies the values into its ring buffer: no file IO
        here). Fields the writer was not given are skipped; sensors the robot does not report read NaN."""
        tel = self.telemetry
        if tel is None:
            return
        have = tel.offsets

        def put(name: str, value: Any) -> None:
            if name in have:
                tel.set(name, math.nan if value is None else value)

        put("t", reading.stamp_s if reading is not None else None)
        put("mode", float(self.mode))
        put("command", self.command)
        if self.obs_size:
            obs = getattr(self.controller, "last_obs", None)
            ran = action is not None and obs is not None  # the controller ran this tick (not stale, not a transition)
            put("ran", float(ran))
            put("obs", obs if ran else 0.0)
            put("action", action if ran else 0.0)
        r = reading
        for name, value in (
            ("joint_pos", None if r is None else r.joint_pos),
            ("joint_vel", None if r is None else r.joint_vel),
            ("joint_torque", None if r is None else r.joint_torque),
            ("imu_quat", None if r is None else r.imu_quat),
            ("gyro", None if r is None else r.gyro),
            ("accel", None if r is None else r.accel),
            ("foot_force", None if r is None else r.foot_contact),
            ("age_s", None if r is None else r.age_s),
            ("q_target", out.q),
            ("kp", out.kp),
            ("kd", out.kd),
        ):
            put(name, value)

    def loop(self, duration_s: float | None = None, ticks: int | None = None, freeze_gc: bool = True) -> dict[str, Any]:
        """Run ticks on absolute deadlines until `duration_s` or `ticks` (or KeyboardInterrupt); report timing."""
        period = self.cfg.control_dt_s
        clock = self.clock
        k0 = self.tick_count
        n_max = ticks if ticks is not None else (int(round(duration_s / period)) if duration_s is not None else None)
        gc_was = gc.isenabled()
        if freeze_gc:  # (before the first deadline is set: a full collection can take a few hundred ms)
            gc.collect()
            gc.freeze()
            gc.disable()
        t0 = clock.now()
        try:
            k = 0
            while n_max is None or k < n_max:
                deadline = t0 + k * period
                clock.wait_until(deadline)
                woke = clock.now()
                leaving = self.exit_reason is not None
                if leaving:  # a signal asked to stop: damp, send the damping command, log it, leave
                    self._fault(self.exit_reason)
                    self._note(f"exit requested: {self.exit_reason}")
                self.tick()
                done = clock.now()
                i = min(self.tick_count, len(self.lateness) - 1)
                self.lateness[i] = woke - deadline
                self.compute[i] = done - woke
                self.control[i] = self.control_s
                self.wake[i] = woke - t0
                self.deadline[i] = deadline - t0
                if self.telemetry is not None:
                    self.telemetry.set("wall_s", woke - t0)
                    self.telemetry.set("lateness_s", woke - deadline)
                    self.telemetry.set("compute_s", done - woke)
                    self.telemetry.commit()
                self.tick_count += 1
                self._after_tick()
                if leaving:
                    break
                k += 1
                behind = clock.now() - (t0 + k * period)
                if behind > 0:  # overran the next deadline: skip the ticks that are already past
                    skip = int(behind // period) + 1
                    self.missed += skip
                    self.missed_in_a_row += skip
                    k += skip  # (the loop still ends at the same time: ticks count deadlines)
                    if self.missed_in_a_row >= self.safety.cfg.max_missed_deadlines:
                        self._fault(f"missed {self.missed_in_a_row} control deadlines in a row")
                else:
                    self.missed_in_a_row = 0
            else:
                # Wait out the last period, so that the next loop() call (or a caller ticking one period at a time)
                # starts on the next deadline instead of ticking twice at the same instant.
                clock.wait_until(t0 + k * period)
        except KeyboardInterrupt:
            self.stop("KeyboardInterrupt")
            self.robot.write(self.damping)
            self._show_notices()
        finally:
            if freeze_gc:
                gc.unfreeze()
                if gc_was:
                    gc.enable()
        return self.timing(k0)

    def _after_tick(self) -> None:
        """After the tick's command went out: operator input and metrics (on_tick), then console notices."""
        for f in self.on_tick:
            try:
                f(self)
            except Exception as e:  # noqa: BLE001 (operator input or a metric hook must not end the loop)
                self.tick_errors += 1
                self._fault(f"on_tick hook raised {type(e).__name__}: {e}")
        self._show_notices()

    def _show_notices(self) -> None:
        if self.notices:
            notices, self.notices = self.notices, []
            if self.console is not None:
                for n in notices:
                    try:
                        self.console(n)
                    except Exception:  # noqa: BLE001 (a closed console must not end the loop)
                        pass

    def timing(self, since: int = 0) -> dict[str, Any]:
        n = min(self.tick_count, len(self.lateness))
        lat, comp, wake = self.lateness[since:n], self.compute[since:n], self.wake[since:n]
        ctl = self.control[since:n]
        if len(wake) > 1:
            # actual minus scheduled period, averaged: a loop that drifts shows its drift per tick here; skipped
            # (missed) deadlines count as the longer periods they were scheduled to be
            period_err = float(np.mean(np.diff(wake) - np.diff(self.deadline[since:n])))
        else:
            period_err = 0.0
        return {
            "ticks": int(len(lat)),
            "missed": int(self.missed),
            "period_error_mean_us": period_err * 1e6,
            "lateness_median_us": float(np.median(lat) * 1e6) if len(lat) else 0.0,
            "lateness_p99_us": float(np.percentile(lat, 99) * 1e6) if len(lat) else 0.0,
            "lateness_max_us": float(np.max(lat) * 1e6) if len(lat) else 0.0,
            "tick_median_ms": float(np.median(ctl) * 1e3) if len(ctl) else 0.0,
            "tick_p99_ms": float(np.percentile(ctl, 99) * 1e3) if len(ctl) else 0.0,
            "tick_total_median_ms": float(np.median(comp) * 1e3) if len(comp) else 0.0,
        }


def telemetry_fields(
    num_commands: int, obs_size: int, action_size: int, nj: int, num_feet: int = 0, imu: bool = True
) -> list[tuple[str, int]]:
    """The tick record the runtime writes: timing, mode, command, the policy's input and output, every sensor the
    robot reports (NaN where it reports none), the command sent (targets and gains)."""
    fields = [("t", 1), ("wall_s", 1), ("lateness_s", 1), ("compute_s", 1), ("mode", 1), ("command", num_commands)]
    if obs_size:
        fields += [("ran", 1), ("obs", obs_size), ("action", action_size)]
    fields += [("joint_pos", nj), ("joint_vel", nj), ("joint_torque", nj)]
    if imu:
        fields += [("imu_quat", 4), ("gyro", 3), ("accel", 3)]
    if num_feet:
        fields += [("foot_force", num_feet)]
    return fields + [("age_s", 1), ("q_target", nj), ("kp", nj), ("kd", nj)]
