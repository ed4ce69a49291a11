"""The small protocol between the deploy runtime and a robot: read a state, write per-joint commands.

Every robot (MujocoRobot in simulation, UdpRobot over the network to a hardware bridge) is driven through these two
records. Arrays are float64, per-joint arrays in the robot's policy joint order, SI units, quaternions wxyz.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

Array = np.ndarray


@dataclass
class RobotReading:
    """One sample of what the robot measures."""

    seq: int  # increases by one per sample the robot takes; a repeat means no new data
    stamp_s: float  # robot clock, s
    joint_pos: Array  # (nj,) rad
    joint_vel: Array  # (nj,) rad/s
    imu_quat: Array | None = None  # (4,) wxyz
    gyro: Array | None = None  # (3,) rad/s, IMU frame
    accel: Array | None = None  # (3,) m/s^2, IMU frame
    foot_contact: Array | None = None  # (nfeet,) N
    joint_torque: Array | None = None  # (nj,) N m, measured (or estimated by the drives), when the robot reports it
    age_s: float | None = None  # how old the sample was when it was read (transport delay), None if unknown
    robot_fault: str | None = None  # a fault the robot side reports (e.g. its bridge damps on its own, latched)

    SENSORS = ("joint_pos", "joint_vel", "imu_quat", "gyro", "accel", "foot_contact", "joint_torque")

    def finite(self) -> bool:
        return all(x is None or bool(np.isfinite(x).all()) for x in (getattr(self, n) for n in self.SENSORS))

    def non_finite(self) -> list[str]:
        """Names of the fields holding a NaN or an infinity."""
        return [n for n in self.SENSORS if getattr(self, n) is not None and not np.isfinite(getattr(self, n)).all()]


@dataclass
class JointCommand:
    """Per-joint command: tau = kp (q - q_meas) + kd (dq - dq_meas) + tau_ff, computed by the robot's drives."""

    q: Array
    dq: Array
    kp: Array
    kd: Array
    tau: Array
    extras: dict[str, float] = field(default_factory=dict)

    @classmethod
    def damping(cls, nj: int, kd: Array | float) -> JointCommand:
        """No stiffness, only damping: the safe state a robot falls into gently."""
        z = np.zeros(nj)
        return cls(q=z.copy(), dq=z.copy(), kp=z.copy(), kd=np.broadcast_to(kd, (nj,)).astype(float), tau=z.copy())

    def copy(self) -> JointCommand:
        return JointCommand(self.q.copy(), self.dq.copy(), self.kp.copy(), self.kd.copy(), self.tau.copy())


class RobotInterface(Protocol):
    """What the runtime needs from a robot."""

    num_joints: int

    def read(self) -> RobotReading | None:
        """The newest state, or None if none has arrived yet. Never blocks."""

    def write(self, cmd: JointCommand) -> None:
        """Send a command. Never blocks."""

    def rearm(self) -> None:
        """Re-arm the link after an operator reset (a bridge that damped on its own obeys commands again)."""

    def close(self) -> None: ...


class Lockstep(Protocol):
    """A simulated robot the runtime advances itself (deterministic, faster than real time)."""

    def advance_to(self, t_s: float) -> None:
        """Simulate until robot time t_s."""

    def time_s(self) -> float: ...
