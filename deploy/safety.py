"""The safety layer between any controller and the robot.

Every tick it checks the reading and the controller's command and either passes a (possibly clamped) command or
reports a fault; the runtime answers a fault by damping. Checks, in order:

fault (-> damping)                                   clamp (counted, not a fault)
- no reading yet / stale: the robot's sequence       - position targets into the joint ranges
  number has not advanced for `stale_periods`        - target step per tick to `max_step_rad`
  control periods                                    - targets so that kp |q* - q| <= 2 x torque limit
- non-finite value in the reading                    - feed-forward torque to the torque limit
- base tilt beyond `max_tilt_deg`                    - kp, kd to >= 0
- joint speed beyond `velocity_margin` x its limit
- non-finite value in the command
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


@dataclass(frozen=True)
class SafetyConfig:
    max_tilt_deg: float = 60.0
    velocity_margin: float = 1.5  # trip at this multiple of a joint's velocity limit
    max_step_rad: float = 0.5  # largest change of a position target per control tick
    stale_periods: int = 3  # trip when no new reading arrived for this many periods
    command_timeout_s: float = 0.5  # operator velocity command older than this -> zero command
    torque_reach: float = 2.0  # targets stay within torque_reach x tau_max / kp of the measured position; the
    # drives clip torque anyway (as in training), this bounds how far past saturation a target may point


def safety_config(pairs: list[str] | tuple[str, ...] = ()) -> SafetyConfig:
    """SafetyConfig with `field=value` overrides, as `footfall deploy --safety` takes them."""
    cfg = apply_overrides(SafetyConfig(), list(pairs))
    for f in dataclasses.fields(cfg):
        v = getattr(cfg, f.name)
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ValueError(f"safety field {f.name!r} needs a number, got {v!r}")
    if (
        cfg.stale_periods < 1
        or min(cfg.velocity_margin, cfg.max_step_rad, cfg.command_timeout_s, cfg.torque_reach) <= 0
    ):
        raise ValueError(f"stale_periods must be >= 1 and the other safety limits > 0, got {cfg}")
    return dataclasses.replace(cfg, stale_periods=int(cfg.stale_periods))


class SafetyLayer:
    def __init__(
        self,
        position_limits: np.ndarray,
        velocity_limits: np.ndarray,
        torque_limits: np.ndarray,
        cfg: SafetyConfig | None = None,
        floating_base: bool = True,
    ):
        self.cfg = cfg or SafetyConfig()
        self.lo, self.hi = np.asarray(position_limits, dtype=float).T
        self.vmax = np.asarray(velocity_limits, dtype=float)
        self.tau_max = np.asarray(torque_limits, dtype=float)
        self.floating_base = floating_base
        self.cos_tilt = math.cos(math.radians(self.cfg.max_tilt_deg))
        self.reset()

    @classmethod
    def for_robot(cls, robot, cfg: SafetyConfig | None = None) -> SafetyLayer:  # noqa: ANN001 (RobotSpec)
        return cls(robot.position_limits, robot.velocity_limits, robot.torque_limits, cfg, robot.floating_base)

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
        if not reading.finite():
            bad = [
                name
                for name in ("joint_pos", "joint_vel", "imu_quat", "gyro", "accel", "foot_contact")
                if getattr(reading, name) is not None and not np.isfinite(getattr(reading, name)).all()
            ]
            return f"non-finite sensor value in {', '.join(bad)}"
        if self.floating_base and reading.imu_quat is not None:
            gz = projected_gravity(reading.imu_quat)[2]
            if -gz < self.cos_tilt:
                tilt = math.degrees(math.acos(max(-1.0, min(1.0, -gz))))
                return f"base tilt {tilt:.0f} deg beyond {self.cfg.max_tilt_deg:g} deg"
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

    def filter(self, cmd: JointCommand, reading: RobotReading) -> tuple[JointCommand, str | None]:
        """(command to send, fault reason or None)."""
        for name in ("q", "dq", "kp", "kd", "tau"):
            if not np.isfinite(getattr(cmd, name)).all():
                return cmd, f"controller output {name} is not finite"
        out = cmd.copy()
        q = np.clip(out.q, self.lo, self.hi)
        ref = self.prev_q if self.prev_q is not None else reading.joint_pos
        q = np.clip(q, ref - self.cfg.max_step_rad, ref + self.cfg.max_step_rad)
        kp = np.maximum(out.kp, 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            reach = np.where(kp > 0, self.cfg.torque_reach * self.tau_max / kp, np.inf)
        q = np.clip(q, reading.joint_pos - reach, reading.joint_pos + reach)
        tau = np.clip(out.tau, -self.tau_max, self.tau_max)
        clamped = not (np.array_equal(q, out.q) and np.array_equal(tau, out.tau) and np.array_equal(kp, out.kp))
        self.clamps += int(clamped)
        out.q, out.kp, out.kd, out.tau = q, kp, np.maximum(out.kd, 0.0), tau
        self.prev_q = q
        return out, None
