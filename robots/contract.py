"""PolicyContract: everything a deployed policy assumes about its robot, its inputs and its timing.

Training fills it and writes it as JSON into the exported ONNX file; deploy reads it back and calls
`validate(robot_spec)` before it sends a single command. One object owns the joint order, default pose, gains,
limits, action scaling, observation layout and timing, so no deploy script re-types them by hand.

Conventions: angles in rad, times in s, quaternions wxyz, per-joint tuples in the policy's joint order.
JSON round-trip is exact: `PolicyContract.from_json(c.to_json()) == c` (floats are written with repr precision).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from footfall.robots.spec import RobotSpec

CONTRACT_VERSION = 1
CONTRACT_METADATA_KEY = "footfall_contract"  # ONNX metadata_props key holding the JSON
EVAL_METADATA_KEY = "footfall_eval"  # ONNX metadata_props key: the training-env evaluation at export (JSON)


class ContractMismatchError(ValueError):
    """A policy contract does not fit the robot (or the loop) it is asked to run on."""


@dataclass(frozen=True)
class RobotContract:
    """The robot as the policy was trained on it. Per-joint tuples are in the policy's joint order."""

    name: str
    joint_names: tuple[str, ...]
    default_pose: tuple[float, ...]  # rad
    kp: tuple[float, ...]  # N m / rad
    kd: tuple[float, ...]  # N m s / rad
    torque_limits: tuple[float, ...]  # N m
    position_limits: tuple[tuple[float, float], ...]  # rad, (lo, hi)
    velocity_limits: tuple[float, ...]  # rad/s
    action_scale: float = 0.25  # target = default_pose + action_scale * clip(action, -action_clip, action_clip)
    action_clip: float = 10.0
    action_type: str = "joint_position_offset"  # or "joint_position_delta": target += action_scale * action per step
    model_sha256: str = ""  # hash of the MJCF trained on (informational: another file of the same robot is fine)


@dataclass(frozen=True)
class TimingContract:
    control_dt_s: float  # one policy step
    physics_dt_s: float  # physics step used in training
    latency_range_s: tuple[float, float] = (0.0, 0.0)  # action/observation latency trained against
    gait_period_s: float | None = None  # period of the gait clock the controller keeps (gait_clock term)


@dataclass(frozen=True)
class ObservationTermContract:
    """One term of the observation vector, in order. `size` counts one history entry."""

    name: str
    size: int
    scale: float = 1.0  # obs = clip(scale * value, -clip, clip)
    clip: float | None = None
    history: int = 1  # stacked entries, newest first
    frame: str = "none"  # body | world | joint | none
    quat_convention: str = "wxyz"


@dataclass(frozen=True)
class CommandContract:
    names: tuple[str, ...] = ()
    ranges: tuple[tuple[float, float], ...] = ()  # (lo, hi) per command, units per name (m/s, rad/s, m)


@dataclass(frozen=True)
class NormalizerContract:
    """Observation normalization. `folded=True`: already inside the ONNX graph; deploy feeds raw observations."""

    folded: bool = True
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()


@dataclass(frozen=True)
class PolicyContract:
    robot: RobotContract
    timing: TimingContract
    observations: tuple[ObservationTermContract, ...]
    commands: CommandContract = field(default_factory=CommandContract)
    normalizer: NormalizerContract = field(default_factory=NormalizerContract)
    task: str = ""  # env id trained on, e.g. "footfall/Quadruped-Walk-Flat-v0"
    versions: tuple[tuple[str, str], ...] = ()  # (package, version) pairs at export time
    contract_version: int = CONTRACT_VERSION

    @property
    def observation_size(self) -> int:
        return sum(t.size * t.history for t in self.observations)

    @property
    def action_size(self) -> int:
        return len(self.robot.joint_names)

    # ------------------------------------------------------------------ JSON

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        # An unlimited (continuous) joint has an infinite range, which JSON cannot hold: write null for that side.
        d["robot"]["position_limits"] = [[_finite_or_none(x) for x in lim] for lim in d["robot"]["position_limits"]]
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, allow_nan=False)

    @classmethod
    def from_json(cls, text: str) -> PolicyContract:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ContractMismatchError(f"policy contract is not valid JSON: {e}") from e
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PolicyContract:
        version = data.get("contract_version")
        if version != CONTRACT_VERSION:
            raise ContractMismatchError(
                f"policy contract version {version!r} is not supported by this footfall (reads version "
                f"{CONTRACT_VERSION}). Re-export the policy with this footfall version."
            )
        try:
            return _build(cls, data)
        except (TypeError, KeyError) as e:
            raise ContractMismatchError(f"policy contract is malformed: {e}") from e

    @classmethod
    def from_robot(
        cls, robot: RobotSpec, *, control_dt_s: float, observations: tuple[ObservationTermContract, ...], **kwargs: Any
    ) -> PolicyContract:
        """A contract for `robot` with its joint order, pose, gains and limits filled in from the spec."""
        robot_kw = kwargs.pop("robot_kwargs", {})
        return cls(
            robot=RobotContract(
                name=robot.name,
                joint_names=robot.policy_names,
                default_pose=robot.default_pose,
                kp=robot.kp,
                kd=robot.kd,
                torque_limits=robot.torque_limits,
                position_limits=robot.position_limits,
                velocity_limits=robot.velocity_limits,
                model_sha256=robot.model_hash(),
                **robot_kw,
            ),
            timing=TimingContract(
                control_dt_s=control_dt_s, physics_dt_s=robot.physics_dt, **kwargs.pop("timing_kwargs", {})
            ),
            observations=observations,
            **kwargs,
        )

    # ------------------------------------------------------------------ validation

    def mismatches(
        self,
        robot: RobotSpec,
        *,
        control_dt_s: float | None = None,
        observation_size: int | None = None,
        rtol: float = 1e-6,
    ) -> list[str]:
        """Every way this contract disagrees with `robot` (and the loop's period / observation size, if given)."""
        problems: list[str] = []
        ours, theirs = self.robot.joint_names, robot.policy_names
        missing = [j for j in ours if j not in theirs]
        if missing:
            problems.append(
                f"joint(s) {missing} of the policy are missing on robot {robot.name!r} (robot joints: {list(theirs)})"
            )
        if len(ours) != len(theirs):
            problems.append(f"joint count: policy has {len(ours)}, robot {robot.name!r} has {len(theirs)}")
        elif not missing and ours != theirs:
            i = next(i for i, (a, b) in enumerate(zip(ours, theirs)) if a != b)
            problems.append(
                f"joint order differs at index {i}: policy expects {ours[i]!r}, robot has {theirs[i]!r} "
                f"(policy order: {list(ours)})"
            )
        if not problems:
            for label, a, b in (
                ("kp", self.robot.kp, robot.kp),
                ("kd", self.robot.kd, robot.kd),
                ("torque limit", self.robot.torque_limits, robot.torque_limits),
            ):
                for j, x, y in zip(ours, a, b):
                    if not math.isclose(x, y, rel_tol=rtol, abs_tol=1e-12):
                        problems.append(f"{label} of {j!r}: policy {x:g}, robot {y:g}")
            for j, q, (lo, hi) in zip(ours, self.robot.default_pose, robot.position_limits):
                if not lo <= q <= hi:
                    problems.append(
                        f"default pose of {j!r} ({q:g} rad) lies outside the robot's range [{lo:g}, {hi:g}]"
                    )
        if control_dt_s is not None and not math.isclose(control_dt_s, self.timing.control_dt_s, rel_tol=1e-9):
            problems.append(
                f"control period: policy trained at {self.timing.control_dt_s:g} s, loop runs at {control_dt_s:g} s"
            )
        ratio = self.timing.control_dt_s / robot.physics_dt
        if abs(ratio - round(ratio)) > 1e-6:
            problems.append(
                f"control period {self.timing.control_dt_s:g} s is not a whole number of the robot's "
                f"physics steps ({robot.physics_dt:g} s)"
            )
        if observation_size is not None and observation_size != self.observation_size:
            problems.append(
                f"observation size: policy expects {self.observation_size}, runtime builds {observation_size}"
            )
        return problems

    def validate(self, robot: RobotSpec, **kwargs: Any) -> None:
        """Raise ContractMismatchError listing every mismatch with `robot`; return None when it fits."""
        problems = self.mismatches(robot, **kwargs)
        if problems:
            raise ContractMismatchError(
                f"policy contract (task {self.task or '?'}, robot {self.robot.name!r}) does not fit robot "
                f"{robot.name!r} ({robot.spec_path}):\n  - "
                + "\n  - ".join(problems)
                + "\nRetrain or re-export for this robot, or give a spec file whose joint order and gains match."
            )


def _build(cls: type, data: Any) -> Any:
    """Rebuild a (nested, frozen) contract dataclass from its `asdict` form, lists back to tuples."""
    kwargs = {}
    hints = {f.name: f for f in fields(cls)}
    unknown = set(data) - set(hints)
    if unknown:
        raise KeyError(f"unknown field(s) {sorted(unknown)} in {cls.__name__}")
    for name, value in data.items():
        kwargs[name] = _convert(cls, name, value)
    return cls(**kwargs)


_NESTED = {
    ("PolicyContract", "robot"): RobotContract,
    ("PolicyContract", "timing"): TimingContract,
    ("PolicyContract", "commands"): CommandContract,
    ("PolicyContract", "normalizer"): NormalizerContract,
}


def _convert(cls: type, name: str, value: Any) -> Any:
    nested = _NESTED.get((cls.__name__, name))
    if nested is not None:
        return _build(nested, value)
    if cls is PolicyContract and name == "observations":
        return tuple(_build(ObservationTermContract, v) for v in value)
    if cls is RobotContract and name == "position_limits":  # null: that side is unlimited
        return tuple(
            (-math.inf if lo is None else float(lo), math.inf if hi is None else float(hi)) for lo, hi in value
        )
    return _tuplify(value)


def _finite_or_none(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def _tuplify(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_tuplify(v) for v in value)
    return value
