"""The safety layer between any controller and the robot.

Every tick it checks the reading and the controller's command and either passes a (possibly clamped) command or
reports a fault; the runtime answers a fault by damping. Checks, in order:

fault (-> damping)                                     clamp (counted, not a fault)
- no reading yet / stale: the robot's sequence         - position targets into the joint ranges
  number has not advanced for `stale_periods`          - target rate to `max_target_rate_rad_s` (rad/s, so the
  control periods                                        same limit holds at 50 Hz and at 500 Hz)
- the reading is older than `max_state_age_s`          - targets so that kp |q* - q| <= torque_reach x tau_max
- the robot reports a fault of its own (a bridge that  - feed-forward torque to the torque limit
  damps by itself)                                     - velocity targets to the joint velocity limits
- non-finite value in the reading                      - kp, kd into [0, max_gain_scale x the robot's largest
- IMU quaternion norm off by > `quat_norm_tolerance`     spec gain]
  (a zero quaternion is an uninitialised IMU, not
  "upright")
- base tilt beyond `max_tilt_deg`
- joint position beyond its range by > `position_margin_rad`
- joint speed beyond `velocity_margin` x its limit
- non-finite raw action (checked before any clipping) or non-finite command
- `max_missed_deadlines` control deadlines missed in a row (the runtime counts them)
A velocity command older than `command_timeout_s` is replaced by zero (stand still) by the runtime.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from footfall.deploy.interface import JointCommand, RobotReading
from footfall.robots.observations import projected_gravity
from footfall.robots.overrides import apply_overrides


class SafetyFault(RuntimeError):
    """Raised by a controller (or the loop) for a condition that must damp the robot; the message is the reason."""


@dataclass(frozen=True)
class SafetyConfig:
    max_tilt_deg: float = 60.0
    velocity_margin: float = 1.5  # trip at this multiple of a joint's velocity limit
    max_target_rate_rad_s: float = 25.0  # largest rate of change of a position target (0.5 rad per tick at 50 Hz)
    stale_periods: int = 3  # trip when no new reading arrived for this many periods
    command_timeout_s: float = 0.5  # operator velocity command older than this -> zero command
    torque_reach: float = 2.0  # targets stay within torque_reach x tau_max / kp of the measured position; the
    # drives clip torque anyway (as in training), this bounds how far past saturation a target may point
    quat_norm_tolerance: float = 0.1  # trip when | |quat| - 1 | exceeds this (a zero quaternion: no IMU data)
    position_margin_rad: float = 0.1  # trip when a measured joint position leaves its range by more than this
    max_state_age_s: float = 0.05  # trip when the robot says its newest reading is older than this (transport)
    max_missed_deadlines: int = 3  # trip after this many control deadlines missed in a row
    max_gain_scale: float = 2.0  # kp, kd clamped to this multiple of the robot's largest spec kp, kd


_INT_FIELDS = ("stale_periods", "max_missed_deadlines")


def safety_config(pairs: list[str] | tuple[str, ...] = ()) -> SafetyConfig:
    """SafetyConfig with `field=value` overrides, as `footfall deploy --safety` takes them."""
    cfg = apply_overrides(SafetyConfig(), list(pairs))
    for f in dataclasses.fields(cfg):
        v = getattr(cfg, f.name)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ValueError(f"safety field {f.name!r} needs a finite number, got {v!r}")
        if v <= 0:
            raise ValueError(f"safety field {f.name!r} must be > 0, got {v!r}")
    ints = {n: int(getattr(cfg, n)) for n in _INT_FIELDS}
    if any(v < 1 for v in ints.values()):
        raise ValueError(f"{', '.join(_INT_FIELDS)} must be whole numbers >= 1, got {ints}")
    return dataclasses.replace(cfg, **ints)


class SafetyLayer:
    def __init__(
        self,
        position_limits: np.ndarray,
        velocity_limits: np.ndarray,
        torque_limits: np.ndarray,
        cfg: SafetyConfig | None = None,
        floating_base: bool = True,
        control_dt_s: float = 0.02,
        kp: np.ndarray | None = None,
        kd: np.ndarray | None = None,
    ):
        self.cfg = cfg or SafetyConfig()
        self.lo, self.hi = np.asarray(position_limits, dtype=float).T
        self.vmax = np.asarray(velocity_limits, dtype=float)
        self.tau_max = np.asarray(torque_limits, dtype=float)
        self.floating_base = floating_base
        self.cos_tilt = math.cos(math.radians(self.cfg.max_tilt_deg))
        if not (math.isfinite(control_dt_s) and control_dt_s > 0):
            raise ValueError(f"control period must be a positive number of seconds, got {control_dt_s!r}")
        self.max_step = self.cfg.max_target_rate_rad_s * control_dt_s  # rad per tick
        nj = len(self.vmax)
        # Gain bounds: a multiple of the robot's largest spec gain (baselines run some joints stiffer than the spec,
        # e.g. the ZMP walker's hip roll at the hip pitch's kp); without spec gains, no bound.
        self.kp_max = np.full(nj, np.inf if kp is None else self.cfg.max_gain_scale * float(np.max(kp)))
        self.kd_max = np.full(nj, np.inf if kd is None else self.cfg.max_gain_scale * float(np.max(kd)))
        self.reset()

    @classmethod
    def for_robot(cls, robot, cfg: SafetyConfig | None = None, control_dt_s: float = 0.02) -> SafetyLayer:  # noqa: ANN001 (RobotSpec)
        return cls(
            robot.position_limits,
            robot.velocity_limits,
            robot.torque_limits,
            cfg,
            robot.floating_base,
            control_dt_s,
            np.asarray(robot.kp, dtype=float),
            np.asarray(robot.kd, dtype=float),
        )

    def reset(self) -> None:
        self.last_seq: int | None = None
        self.stale_ticks = 0
        self.prev_q: np.ndarray | None = None
        self.clamps = 0  # ticks where a command was clamped

    def check_reading(self, reading: RobotReading | None) -> str | None:
        """A fault reason, or None if the reading can be used."""
        if reading is None or reading.seq == self.last_seq:
            self.stale_ticks += 1
            if self.stale_ticks >= self.cfg.stale_periods:
                what = "no state received" if reading is None and self.last_seq is None else "robot state is stale"
                return f"{what} for {self.stale_ticks} control periods"
            return None
        self.stale_ticks = 0
        self.last_seq = reading.seq
        if reading.robot_fault:
            return f"the robot reports a fault: {reading.robot_fault}"
        if reading.age_s is not None and not reading.age_s <= self.cfg.max_state_age_s:
            return f"robot state is {reading.age_s * 1e3:.0f} ms old (limit {self.cfg.max_state_age_s * 1e3:g} ms)"
        bad = reading.non_finite()
        if bad:
            return f"non-finite sensor value in {', '.join(bad)}"
        if self.floating_base and reading.imu_quat is not None:
            norm = float(np.linalg.norm(reading.imu_quat))
            if abs(norm - 1.0) > self.cfg.quat_norm_tolerance:
                return f"IMU quaternion norm {norm:.3g}, not 1 (uninitialised or broken IMU)"
            gz = projected_gravity(reading.imu_quat / norm)[2]
            if -gz < self.cos_tilt:
                tilt = math.degrees(math.acos(max(-1.0, min(1.0, -gz))))
                return f"base tilt {tilt:.0f} deg beyond {self.cfg.max_tilt_deg:g} deg"
        m = self.cfg.position_margin_rad
        out = (reading.joint_pos < self.lo - m) | (reading.joint_pos > self.hi + m)
        if out.any():
            j = int(np.flatnonzero(out)[0])
            return (
                f"joint {j} position {reading.joint_pos[j]:.3f} rad outside its range "
                f"[{self.lo[j]:.3f}, {self.hi[j]:.3f}] by more than {m:g} rad"
            )
        over = np.abs(reading.joint_vel) > self.cfg.velocity_margin * self.vmax
        if over.any():
            j = int(np.flatnonzero(over)[0])
            return (
                f"joint {j} speed {reading.joint_vel[j]:.1f} rad/s beyond "
                f"{self.cfg.velocity_margin:g} x its limit {self.vmax[j]:g}"
            )
        return None

    def fresh(self) -> bool:
        """Whether the last checked reading was new."""
        return self.stale_ticks == 0

    def check_action(self, action: np.ndarray | None) -> str | None:
        """A fault reason when a controller's raw output (before any clipping) holds a NaN or an infinity."""
        if action is None or np.isfinite(action).all():
            return None
        bad = np.flatnonzero(~np.isfinite(action))
        return f"controller action is not finite at index {', '.join(map(str, bad[:4]))} ({action[bad[0]]})"

    def filter(self, cmd: JointCommand, reading: RobotReading) -> tuple[JointCommand, str | None]:
        """(command to send, fault reason or None)."""
        for name in ("q", "dq", "kp", "kd", "tau"):
            if not np.isfinite(getattr(cmd, name)).all():
                return cmd, f"controller output {name} is not finite"
        out = cmd.copy()
        q = np.clip(out.q, self.lo, self.hi)
        ref = self.prev_q if self.prev_q is not None else reading.joint_pos
        q = np.clip(q, ref - self.max_step, ref + self.max_step)
        kp = np.clip(out.kp, 0.0, self.kp_max)
        kd = np.clip(out.kd, 0.0, self.kd_max)
        with np.errstate(divide="ignore", invalid="ignore"):
            reach = np.where(kp > 0, self.cfg.torque_reach * self.tau_max / kp, np.inf)
        q = np.clip(q, reading.joint_pos - reach, reading.joint_pos + reach)
        tau = np.clip(out.tau, -self.tau_max, self.tau_max)
        dq = np.clip(out.dq, -self.vmax, self.vmax)
        clamped = not (
            np.array_equal(q, out.q)
            and np.array_equal(tau, out.tau)
            and np.array_equal(kp, out.kp)
            and np.array_equal(kd, out.kd)
            and np.array_equal(dq, out.dq)
        )
        self.clamps += int(clamped)
        out.q, out.dq, out.kp, out.kd, out.tau = q, dq, kp, kd, tau
        self.prev_q = q
        return out, None
