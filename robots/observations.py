"""RobotState and the observation terms: the same code builds observations in training and on the robot.

A `RobotState` holds what a robot measures (plus, in simulation, privileged quantities for the critic), batched
over a leading axis: the environments call the terms with N rows, deploy with one. Terms are small pure functions of
a state; an `ObservationBuilder` concatenates configured terms with scale, clip and history, and describes itself as
the contract's observation section. Quaternions are wxyz everywhere; body-frame vectors are in the IMU frame.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from footfall.robots.contract import ObservationTermContract

Array = np.ndarray


@dataclass
class RobotState:
    """Measured (and, in simulation, privileged) robot state. Leading axis: batch. Units SI, quaternions wxyz."""

    joint_pos: Array  # (N, nj) rad, policy order
    joint_vel: Array  # (N, nj) rad/s
    imu_quat: Array | None = None  # (N, 4) IMU orientation in the world, wxyz
    gyro: Array | None = None  # (N, 3) rad/s, IMU frame
    accel: Array | None = None  # (N, 3) m/s^2 specific force, IMU frame
    command: Array | None = None  # (N, ncmd) task command (velocity command, reach target, ...)
    last_action: Array | None = None  # (N, nj) the policy's previous output (unscaled)
    joint_target: Array | None = None  # (N, nj) rad, the position target the controller sent last (its own state)
    phase: Array | None = None  # (N,) gait clock phase in [0, 1)
    ee_pos: Array | None = None  # (N, 3) arm end-effector position, base frame
    # privileged: simulator-only, for the critic (a real robot has no sensor for these)
    base_lin_vel: Array | None = None  # (N, 3) m/s, IMU frame
    foot_contact: Array | None = None  # (N, nfeet) contact normal force, N
    base_height: Array | None = None  # (N,) m above the ground under the robot
    extras: dict[str, Array] = field(default_factory=dict)  # e.g. randomized parameters for the critic

    @property
    def batch_size(self) -> int:
        return self.joint_pos.shape[0]


# ---------------------------------------------------------------- math helpers


def _cross(a: Array, b: Array) -> Array:
    """a x b over the last axis. Written out: np.cross's axis handling costs more than the arithmetic for the
    single-robot calls of the deploy loop."""
    a0, a1, a2 = a[..., 0], a[..., 1], a[..., 2]
    b0, b1, b2 = b[..., 0], b[..., 1], b[..., 2]
    return np.stack([a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0], axis=-1)


def quat_rotate_inverse(q: Array, v: Array) -> Array:
    """Express world vector v in the frame of orientation q (wxyz): R(q)^T v. (..., 4), (..., 3) -> (..., 3)."""
    w, u = q[..., :1], q[..., 1:]
    uv = _cross(u, v)
    return v - 2.0 * w * uv + 2.0 * _cross(u, uv)


def quat_rotate(q: Array, v: Array) -> Array:
    """Rotate v by orientation q (wxyz): R(q) v. (..., 4), (..., 3) -> (..., 3)."""
    w, u = q[..., :1], q[..., 1:]
    uv = _cross(u, v)
    return v + 2.0 * w * uv + 2.0 * _cross(u, uv)


def projected_gravity(q: Array) -> Array:
    """Unit gravity direction in the body frame: (0, 0, -1) when upright. (..., 4) -> (..., 3).
    R(q)^T (0, 0, -1) is minus the third row of R(q), written out."""
    w, x, y, z = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    return np.stack([2.0 * (w * y - x * z), -2.0 * (y * z + w * x), 2.0 * (x * x + y * y) - 1.0], axis=-1)


def yaw_from_quat(q: Array) -> Array:
    """Heading angle (rad) of orientation q (wxyz). (..., 4) -> (...)."""
    w, x, y, z = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    return np.arctan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))


# ---------------------------------------------------------------- terms


@dataclass(frozen=True)
class TermContext:
    """What terms need beyond the state: fixed properties of the robot and task."""

    default_pose: Array  # (nj,)
    num_commands: int = 0
    num_feet: int = 0


@dataclass(frozen=True)
class ObservationTerm:
    """A named function of a RobotState. `privileged` terms are simulator-only (critic inputs)."""

    name: str
    fn: Callable[[RobotState, TermContext], Array]
    size: Callable[[TermContext], int]
    frame: str = "none"
    privileged: bool = False
    doc: str = ""


def _need(x: Array | None, term: str, what: str) -> Array:
    if x is None:
        raise ValueError(f"observation term {term!r} needs RobotState.{what}, which this robot/runtime does not fill")
    return x


TERMS: dict[str, ObservationTerm] = {}


def _term(name: str, size: Callable[[TermContext], int], frame: str = "none", privileged: bool = False):
    def register(fn: Callable[[RobotState, TermContext], Array]) -> Callable[[RobotState, TermContext], Array]:
        TERMS[name] = ObservationTerm(name, fn, size, frame, privileged, (fn.__doc__ or "").strip())
        return fn

    return register


@_term("gyro", lambda c: 3, frame="body")
def _gyro(s: RobotState, c: TermContext) -> Array:
    """IMU angular velocity, rad/s."""
    return _need(s.gyro, "gyro", "gyro")


@_term("accel", lambda c: 3, frame="body")
def _accel(s: RobotState, c: TermContext) -> Array:
    """IMU specific force, m/s^2 (+9.81 along body z at rest, upright)."""
    return _need(s.accel, "accel", "accel")


@_term("projected_gravity", lambda c: 3, frame="body")
def _projected_gravity(s: RobotState, c: TermContext) -> Array:
    """Gravity direction in the IMU frame, from the IMU quaternion (wxyz)."""
    return projected_gravity(_need(s.imu_quat, "projected_gravity", "imu_quat"))


@_term("joint_pos_rel", lambda c: len(c.default_pose), frame="joint")
def _joint_pos_rel(s: RobotState, c: TermContext) -> Array:
    """Joint encoder angles minus the default pose, rad."""
    return s.joint_pos - c.default_pose


@_term("joint_vel", lambda c: len(c.default_pose), frame="joint")
def _joint_vel(s: RobotState, c: TermContext) -> Array:
    """Joint velocities, rad/s."""
    return s.joint_vel


@_term("command", lambda c: c.num_commands)
def _command(s: RobotState, c: TermContext) -> Array:
    """The task command (velocity: vx m/s, vy m/s, yaw rate rad/s; reach: target position m, base frame)."""
    return _need(s.command, "command", "command")


@_term("last_action", lambda c: len(c.default_pose), frame="joint")
def _last_action(s: RobotState, c: TermContext) -> Array:
    """The previous policy output."""
    return _need(s.last_action, "last_action", "last_action")


@_term("joint_target_rel", lambda c: len(c.default_pose), frame="joint")
def _joint_target_rel(s: RobotState, c: TermContext) -> Array:
    """The joint position target the controller last sent, minus the default pose, rad. With joint_position_delta
    actions the target is the integral of past actions, which the encoders do not show (the PD loop lags it)."""
    return _need(s.joint_target, "joint_target_rel", "joint_target") - c.default_pose


@_term("gait_clock", lambda c: 2)
def _gait_clock(s: RobotState, c: TermContext) -> Array:
    """sin and cos of the gait phase (a clock the controller keeps; no sensor needed)."""
    phase = _need(s.phase, "gait_clock", "phase")
    return np.stack([np.sin(2 * np.pi * phase), np.cos(2 * np.pi * phase)], axis=-1)


@_term("ee_pos", lambda c: 3, frame="base")
def _ee_pos(s: RobotState, c: TermContext) -> Array:
    """End-effector position from forward kinematics of the encoders, m, base frame."""
    return _need(s.ee_pos, "ee_pos", "ee_pos")


@_term("ee_to_target", lambda c: 3, frame="base")
def _ee_to_target(s: RobotState, c: TermContext) -> Array:
    """Target position (the command) minus end-effector position, m, base frame."""
    return _target_offset(s, "ee_to_target")


def _target_offset(s: RobotState, term: str) -> Array:
    return _need(s.command, term, "command")[..., :3] - _need(s.ee_pos, term, "ee_pos")


@_term("ee_to_target_dir", lambda c: 3, frame="base")
def _ee_to_target_dir(s: RobotState, c: TermContext) -> Array:
    """d / (|d| + 1 cm) for d = target - end effector: the direction to the target, with the last centimetres
    magnified (1 cm reads 0.5, 2 mm reads 0.17) where the metre-scale `ee_to_target` barely moves."""
    d = _target_offset(s, "ee_to_target_dir")
    return d / (np.linalg.norm(d, axis=-1, keepdims=True) + 0.01)


@_term("base_lin_vel", lambda c: 3, frame="body", privileged=True)
def _base_lin_vel(s: RobotState, c: TermContext) -> Array:
    """Base linear velocity, m/s, IMU frame. Simulator-only: on hardware an estimator must supply it."""
    return _need(s.base_lin_vel, "base_lin_vel", "base_lin_vel")


@_term("foot_contact", lambda c: c.num_feet, privileged=True)
def _foot_contact(s: RobotState, c: TermContext) -> Array:
    """1 where a foot's contact force exceeds 1 N."""
    return (_need(s.foot_contact, "foot_contact", "foot_contact") > 1.0).astype(np.float64)


@_term("base_height", lambda c: 1, privileged=True)
def _base_height(s: RobotState, c: TermContext) -> Array:
    """Base height above the ground below it, m."""
    return _need(s.base_height, "base_height", "base_height")[..., None]


# ---------------------------------------------------------------- builder


@dataclass(frozen=True)
class TermConfig:
    """One observation term as configured: obs = clip(scale * value, -clip, clip), `history` entries newest first."""

    name: str
    scale: float = 1.0
    clip: float | None = None
    history: int = 1

    def __post_init__(self) -> None:
        if self.name not in TERMS:
            raise ValueError(f"unknown observation term {self.name!r}; valid terms: {sorted(TERMS)}")
        if self.history < 1:
            raise ValueError(f"observation term {self.name!r}: history must be >= 1, got {self.history}")
        if self.clip is not None and self.clip <= 0:
            raise ValueError(f"observation term {self.name!r}: clip must be > 0, got {self.clip}")


class ObservationBuilder:
    """Concatenates configured terms into one (N, D) array, keeping per-row history buffers."""

    def __init__(self, terms: tuple[TermConfig, ...], context: TermContext, batch_size: int):
        self.terms = terms
        self.context = context
        self.sizes = [TERMS[t.name].size(context) for t in terms]
        self.size = sum(n * t.history for n, t in zip(self.sizes, terms))
        self._history = [np.zeros((batch_size, t.history, n)) for n, t in zip(self.sizes, terms)]
        self._fresh = np.ones(batch_size, dtype=bool)  # rows whose history must be filled on the next call

    @property
    def privileged(self) -> bool:
        return any(TERMS[t.name].privileged for t in self.terms)

    def columns(self, name: str) -> slice:
        """The columns of term `name`'s newest entry in the built observation; raises naming the terms if absent."""
        col = 0
        for cfg, n in zip(self.terms, self.sizes):
            if cfg.name == name:
                return slice(col, col + n)
            col += n * cfg.history
        terms = [t.name for t in self.terms]
        raise ValueError(f"observation term {name!r} is not in this observation; its terms: {terms}")

    def reset(self, rows: Array | None = None) -> None:
        """Forget the history of `rows` (bool mask or indices; all rows if None)."""
        if rows is None:
            self._fresh[:] = True
        else:
            self._fresh[rows] = True

    def __call__(self, state: RobotState, noise: dict[str, Array] | None = None) -> Array:
        """Build observations. `noise[name]` (N, size) is added to a term's raw value before scaling."""
        out = np.empty((state.batch_size, self.size))
        col = 0
        fresh = self._fresh
        for cfg, n, hist in zip(self.terms, self.sizes, self._history):
            value = TERMS[cfg.name].fn(state, self.context)
            if noise is not None and cfg.name in noise:
                value = value + noise[cfg.name]
            value = value * cfg.scale
            if cfg.clip is not None:
                value = np.clip(value, -cfg.clip, cfg.clip)
            if cfg.history > 1:
                hist[:, 1:] = hist[:, :-1]
                hist[:, 0] = value
                if fresh.any():
                    hist[fresh] = value[fresh, None, :]
                out[:, col : col + n * cfg.history] = hist.reshape(len(value), -1)
            else:
                out[:, col : col + n] = value
            col += n * cfg.history
        self._fresh[:] = False
        return out

    def contract_terms(self) -> tuple[ObservationTermContract, ...]:
        return tuple(
            ObservationTermContract(
                name=t.name, size=n, scale=t.scale, clip=t.clip, history=t.history, frame=TERMS[t.name].frame
            )
            for t, n in zip(self.terms, self.sizes)
        )

    @classmethod
    def from_contract(
        cls, terms: tuple[ObservationTermContract, ...], context: TermContext, batch_size: int = 1
    ) -> ObservationBuilder:
        """The builder a deployed policy's contract describes; raises if a term's size differs here."""
        builder = cls(tuple(TermConfig(t.name, t.scale, t.clip, t.history) for t in terms), context, batch_size)
        for t, n in zip(terms, builder.sizes):
            if t.size != n:
                raise ValueError(f"observation term {t.name!r}: contract says size {t.size}, this robot gives {n}")
        return builder
