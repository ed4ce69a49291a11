"""PolicyContract: everything a deployed policy assumes about its robot, its inputs and its timing.

Training fills it and writes it as JSON into the exported ONNX file; deploy reads it back and calls
`validate(robot_spec)` before it sends a single command. One object owns the joint order, default pose, gains,
limits, action scaling, observation layout and timing, so no deploy script re-types them by hand.

Conventions: angles in rad, times in s, quaternions wxyz, per-joint tuples in the policy's joint order.
JSON round-trip is exact: `PolicyContract.from_json(c.to_json()) == c` (floats are written with repr precision).

A policy file is untrusted input. `from_json` checks the form of every field (types, finiteness, lengths) and raises
ContractMismatchError, and nothing else, for any text; `validate` checks the values against the robot: a contract
may narrow the robot's limits, never widen them. docs/contract.md lists every rule and says why it is where it is.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from footfall.robots.spec import RobotSpec

CONTRACT_VERSION = 1
CONTRACT_METADATA_KEY = "footfall_contract"  # ONNX metadata_props key holding the JSON
EVAL_METADATA_KEY = "footfall_eval"  # ONNX metadata_props key: the training-env evaluation at export (JSON)
ACTION_TYPES = ("joint_position_offset", "joint_position_delta")
# Sanity bounds on what a contract may claim (docs/contract.md says why each is where it is).
CONTROL_DT_RANGE_S = (0.001, 0.1)  # a control period outside 1-100 ms is a unit mistake or not a footfall policy
MAX_LATENCY_S = 0.5  # latency trained against: footfall's tasks use 0-20 ms; 0.5 s catches ms written as s
MAX_OBSERVATION_SIZE = 100_000  # values in one observation, all terms and histories (a bound on memory)


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
    def from_json(cls, text: str | bytes) -> PolicyContract:
        """Parse a contract. Any input that is not a well-formed contract raises ContractMismatchError (and nothing
        else), naming every problem: a policy file is untrusted input."""
        try:
            data = json.loads(text, parse_constant=_reject_constant)
        except (ValueError, TypeError, RecursionError) as e:  # JSONDecodeError is a ValueError; so are NaN, Infinity
            raise ContractMismatchError(f"policy contract is not valid JSON: {_clip_text(str(e), 200)}") from e
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: Any) -> PolicyContract:
        """Rebuild a contract from its `to_dict` form, checking every field's type, finiteness and length first."""
        if not isinstance(data, dict):
            raise ContractMismatchError(f"policy contract must be a JSON object, got {_show(data)}")
        version = data.get("contract_version")
        if type(version) is not int or version != CONTRACT_VERSION:
            raise ContractMismatchError(
                f"policy contract version {_show(version)} is not supported by this footfall (reads version "
                f"{CONTRACT_VERSION}). Re-export the policy with this footfall version."
            )
        reader = _Reader()
        contract = reader.policy(data)
        if reader.problems or contract is None:
            raise ContractMismatchError(
                "policy contract is malformed:\n  - "
                + "\n  - ".join(_first(reader.problems, 40))
                + "\nThis file was not written by footfall's export (or was damaged): re-export the policy with "
                "`footfall export RUN -o policy.onnx`."
            )
        return contract

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
        """Every way this contract disagrees with `robot` (and the loop's period / observation size, if given), or
        asks for more than the robot allows: gains and torque limits equal; default pose, position and velocity
        limits inside the robot's; the action's reach within its joint ranges; timing and command ranges sane.
        The rules and their reasons: docs/contract.md."""
        problems: list[str] = []
        r = self.robot
        ours, theirs = r.joint_names, robot.policy_names
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
        per_joint = {
            "default_pose": r.default_pose,
            "kp": r.kp,
            "kd": r.kd,
            "torque_limits": r.torque_limits,
            "position_limits": r.position_limits,
            "velocity_limits": r.velocity_limits,
        }
        for label, values in per_joint.items():
            if len(values) != len(ours):
                problems.append(f"{label} has {len(values)} entries but joint_names has {len(ours)} (one per joint)")
        if not problems:
            problems += self._joint_problems(robot, rtol)
        problems += self._action_problems(robot)
        problems += self._timing_problems(robot, control_dt_s)
        c = self.commands
        if len(c.names) != len(c.ranges):
            problems.append(f"commands: {len(c.names)} names but {len(c.ranges)} ranges (one per command)")
        for name, (lo, hi) in zip(c.names, c.ranges):
            if not (math.isfinite(lo) and math.isfinite(hi) and lo <= hi):
                problems.append(f"command range of {name!r}: [{lo:g}, {hi:g}] must be finite, with lo <= hi")
        if observation_size is not None and observation_size != self.observation_size:
            problems.append(
                f"observation size: policy expects {self.observation_size}, runtime builds {observation_size}"
            )
        return problems

    def _joint_problems(self, robot: RobotSpec, rtol: float) -> list[str]:
        """Per joint, once the joints match: gains and torque limits equal to the robot's; default pose, position
        and velocity limits inside the robot's (a contract may narrow a limit, never widen it)."""
        problems: list[str] = []
        r = self.robot
        for label, a, b in (
            ("kp", r.kp, robot.kp),
            ("kd", r.kd, robot.kd),
            ("torque limit", r.torque_limits, robot.torque_limits),
        ):
            for j, x, y in zip(r.joint_names, a, b):
                if not math.isclose(x, y, rel_tol=rtol, abs_tol=1e-12):
                    problems.append(f"{label} of {j!r}: policy {x:g}, robot {y:g}")
        for j, q, (lo, hi) in zip(r.joint_names, r.default_pose, robot.position_limits):
            if not lo <= q <= hi:
                problems.append(f"default pose of {j!r} ({q:g} rad) lies outside the robot's range [{lo:g}, {hi:g}]")
        for j, (lo, hi), (slo, shi) in zip(r.joint_names, r.position_limits, robot.position_limits):
            if not lo <= hi:
                problems.append(f"position limits of {j!r}: policy [{lo:g}, {hi:g}] rad, lo above hi")
            elif not (lo >= slo - _slack(slo, rtol) and hi <= shi + _slack(shi, rtol)):
                problems.append(
                    f"position limits of {j!r}: policy [{lo:g}, {hi:g}] rad, wider than the robot's range "
                    f"[{slo:g}, {shi:g}] rad (a contract may narrow a joint's range, never widen it)"
                )
        for j, v, sv in zip(r.joint_names, r.velocity_limits, robot.velocity_limits):
            if not 0 <= v <= sv + _slack(sv, rtol):
                problems.append(
                    f"velocity limit of {j!r}: policy {v:g} rad/s, robot {sv:g} rad/s (a contract may lower a "
                    "joint's velocity limit, never raise it or make it negative)"
                )
        return problems

    def _action_problems(self, robot: RobotSpec) -> list[str]:
        """action_scale and action_clip positive, and their product, the largest joint-target offset from the
        default pose (or step per control period, for delta actions) the policy can command, no larger than the
        robot's widest joint range. (A bound per joint would refuse every legged policy footfall trains: 0.25 x 10
        = 2.5 rad against go1's 1.73 rad hips and h1's 0.86 rad hips; each target is clipped to its joint's range.)"""
        problems: list[str] = []
        r = self.robot
        if r.action_type not in ACTION_TYPES:
            problems.append(f"action_type {r.action_type!r} is not one of {list(ACTION_TYPES)}")
        scale, clip = r.action_scale, r.action_clip
        if not (math.isfinite(scale) and scale > 0):
            problems.append(f"action_scale {scale:g} rad must be a finite number > 0")
        if not (math.isfinite(clip) and clip > 0):
            problems.append(f"action_clip {clip:g} must be a finite number > 0")
        if not problems and robot.position_limits:
            widths = [hi - lo for lo, hi in robot.position_limits]
            i = max(range(len(widths)), key=lambda k: widths[k])
            what = (
                "step per control period" if r.action_type == "joint_position_delta" else "offset from the default pose"
            )
            if not scale * clip <= widths[i] * (1 + 1e-9):
                problems.append(
                    f"action_scale x action_clip = {scale:g} x {clip:g} = {scale * clip:g} rad, the largest joint-"
                    f"target {what} this policy can command, exceeds the widest joint range of robot {robot.name!r} "
                    f"({widths[i]:g} rad, {robot.policy_names[i]!r}): no joint of this robot moves that far. "
                    "footfall's tasks command at most 0.25 x 10 = 2.5 rad (legged) and 0.04 x 10 = 0.4 rad per step "
                    "(arm)"
                )
        return problems

    def _timing_problems(self, robot: RobotSpec, control_dt_s: float | None) -> list[str]:
        """Control period in [1, 100] ms and a whole number of the robot's physics steps (and the loop's period,
        when given); physics step > 0; latency range inside [0, MAX_LATENCY_S]; gait period > 0 when present."""
        problems: list[str] = []
        t = self.timing
        dt, (lo_dt, hi_dt) = t.control_dt_s, CONTROL_DT_RANGE_S
        if not lo_dt <= dt <= hi_dt:
            problems.append(
                f"control period {dt:g} s is outside [{lo_dt:g}, {hi_dt:g}] s (1 to 100 ms): a period in ms written "
                "as s, or not a footfall policy"
            )
        else:
            ratio = dt / robot.physics_dt
            if abs(ratio - round(ratio)) > 1e-6:
                problems.append(
                    f"control period {dt:g} s is not a whole number of the robot's "
                    f"physics steps ({robot.physics_dt:g} s)"
                )
        if control_dt_s is not None and not math.isclose(control_dt_s, dt, rel_tol=1e-9):
            problems.append(f"control period: policy trained at {dt:g} s, loop runs at {control_dt_s:g} s")
        if not (math.isfinite(t.physics_dt_s) and t.physics_dt_s > 0):
            problems.append(f"physics step {t.physics_dt_s:g} s must be a finite number > 0")
        lat_lo, lat_hi = t.latency_range_s
        if not 0 <= lat_lo <= lat_hi <= MAX_LATENCY_S:
            problems.append(
                f"latency range [{lat_lo:g}, {lat_hi:g}] s: needs 0 <= lo <= hi <= {MAX_LATENCY_S:g} s (a latency in "
                "ms written as s?)"
            )
        if t.gait_period_s is not None and not (math.isfinite(t.gait_period_s) and t.gait_period_s > 0):
            problems.append(f"gait period {t.gait_period_s:g} s must be a finite number > 0 (or null: no gait clock)")
        return problems

    def validate(self, robot: RobotSpec, **kwargs: Any) -> None:
        """Raise ContractMismatchError listing every mismatch with `robot`; return None when it fits."""
        problems = self.mismatches(robot, **kwargs)
        if problems:
            raise ContractMismatchError(
                f"policy contract (task {self.task or '?'}, robot {self.robot.name!r}) does not fit robot "
                f"{robot.name!r} ({robot.spec_path}):\n  - "
                + "\n  - ".join(problems)
                + "\nRetrain or re-export for this robot, or give a spec file whose joints, gains and limits match."
            )


def _slack(x: float, rtol: float) -> float:
    """Tolerance of a limit comparison: relative to the limit, at least rtol rad; none for an infinite limit."""
    return rtol * max(1.0, abs(x)) if math.isfinite(x) else 0.0


def _finite_or_none(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number a policy contract may hold (JSON has no NaN or infinity)")


def _clip_text(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 3] + "..."


def _show(value: Any) -> str:
    """A short description of an untrusted value for an error message (never a deep or long repr)."""
    if isinstance(value, dict):
        return f"an object with {len(value)} field(s)"
    if isinstance(value, list):
        return f"a list of {len(value)}"
    if value is None:
        return "null"
    if isinstance(value, (bool, int, float, str)):
        return _clip_text(repr(value), 40)
    return type(value).__name__


def _first(lines: list[str], n: int) -> list[str]:
    return lines if len(lines) <= n else [*lines[:n], f"... and {len(lines) - n} more"]


_ABSENT = object()  # a required field the document lacks (reported once, as missing)


def _required(cls: type) -> list[str]:
    return [f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING]


class _Reader:
    """Reads the `to_dict` form of a contract from untrusted JSON, collecting every problem (path, what is wrong)
    instead of stopping at the first. Returns None for a part it cannot build; the caller raises when any problem
    was found, so the placeholders never leave this class."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def bad(self, where: str, what: str) -> None:
        self.problems.append(f"{where}: {what}")

    def fields_of(self, value: Any, where: str, cls: type) -> dict[str, Any] | None:
        if not isinstance(value, dict):
            self.bad(where, f"must be an object ({cls.__name__}), got {_show(value)}")
            return None
        names = [f.name for f in fields(cls)]
        unknown = sorted(set(value) - set(names))
        if unknown:
            shown = unknown if len(unknown) <= 10 else [*unknown[:10], "..."]
            self.problems.append(
                f"unknown field(s) {[_clip_text(k, 40) for k in shown]} in {cls.__name__} (valid fields: {names})"
            )
        missing = [k for k in _required(cls) if k not in value]
        if missing:
            self.problems.append(f"missing field(s) {missing} in {cls.__name__}")
        return value

    def number(self, value: Any, where: str) -> float:
        if value is _ABSENT:  # (reported as a missing field)
            return math.nan
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.bad(where, f"must be a number, got {_show(value)}")
            return math.nan
        try:
            x = float(value)
        except OverflowError:
            self.bad(where, f"is too large to be a number ({_show(value)})")
            return math.nan
        if not math.isfinite(x):
            self.bad(where, f"must be finite, got {x}")
        return x

    def whole(self, value: Any, where: str, lo: int, hi: int) -> int:
        if value is _ABSENT:
            return lo
        if isinstance(value, bool) or not isinstance(value, int):
            self.bad(where, f"must be a whole number, got {_show(value)}")
            return lo
        if not lo <= value <= hi:
            self.bad(where, f"must lie in [{lo}, {hi}], got {_show(value)}")
            return lo
        return value

    def text(self, value: Any, where: str) -> str:
        if value is _ABSENT:
            return ""
        if not isinstance(value, str):
            self.bad(where, f"must be a string, got {_show(value)}")
            return ""
        return value

    def items(self, value: Any, where: str, count: int | None = None, count_of: str = "") -> list[Any]:
        if value is _ABSENT:
            return []
        if not isinstance(value, list):
            self.bad(where, f"must be a list, got {_show(value)}")
            return []
        if count is not None and len(value) != count:
            self.bad(where, f"has {len(value)} entries, needs {count}: {count_of}")
        return value

    def numbers(self, value: Any, where: str, count: int | None = None, count_of: str = "") -> tuple[float, ...]:
        return tuple(self.number(v, f"{where}[{i}]") for i, v in enumerate(self.items(value, where, count, count_of)))

    def pair(self, value: Any, where: str, null_lo: float | None = None, null_hi: float | None = None) -> tuple:
        """(lo, hi); with null_lo / null_hi, a null on that side stands for that value (an unlimited joint)."""
        v = self.items(value, where)
        if len(v) != 2:
            if isinstance(value, list):
                self.bad(where, f"must be a pair [lo, hi], got a list of {len(v)}")
            return (math.nan, math.nan)
        lo = null_lo if v[0] is None and null_lo is not None else self.number(v[0], f"{where}[0]")
        hi = null_hi if v[1] is None and null_hi is not None else self.number(v[1], f"{where}[1]")
        return (lo, hi)

    def pairs(self, value: Any, where: str, count: int | None = None, count_of: str = "", **null: float) -> tuple:
        return tuple(
            self.pair(v, f"{where}[{i}]", **null) for i, v in enumerate(self.items(value, where, count, count_of))
        )

    # ------------------------------------------------------------------ the sections

    def policy(self, d: dict[str, Any]) -> PolicyContract | None:
        self.fields_of(d, "policy contract", PolicyContract)
        robot = self.robot(d["robot"]) if "robot" in d else None
        timing = self.timing(d["timing"]) if "timing" in d else None
        observations = tuple(
            self.observation(v, f"observations[{i}]")
            for i, v in enumerate(self.items(d.get("observations", []), "observations"))
        )
        total = sum(t.size * t.history for t in observations if t is not None)
        if total > MAX_OBSERVATION_SIZE:
            self.bad("observations", f"describe {total} values in all, more than {MAX_OBSERVATION_SIZE}")
        commands = self.commands(d["commands"]) if "commands" in d else CommandContract()
        normalizer = self.normalizer(d["normalizer"]) if "normalizer" in d else NormalizerContract()
        task = self.text(d.get("task", ""), "task")
        versions = tuple(
            tuple(
                self.text(x, f"versions[{i}]") for x in self.items(v, f"versions[{i}]", 2, "a (package, version) pair")
            )
            for i, v in enumerate(self.items(d.get("versions", []), "versions"))
        )
        if self.problems or robot is None or timing is None or commands is None or normalizer is None:
            return None
        return PolicyContract(robot, timing, observations, commands, normalizer, task, versions, CONTRACT_VERSION)

    def robot(self, value: Any) -> RobotContract | None:
        d = self.fields_of(value, "robot", RobotContract)
        if d is None:
            return None
        w = "robot."
        names = tuple(
            self.text(v, f"{w}joint_names[{i}]")
            for i, v in enumerate(self.items(d.get("joint_names", _ABSENT), f"{w}joint_names"))
        )
        if not names and "joint_names" in d:
            self.bad(f"{w}joint_names", "must name at least one joint")
        elif len(set(names)) != len(names):
            self.bad(
                f"{w}joint_names",
                f"names a joint more than once: {sorted(j for j, k in Counter(names).items() if k > 1)[:5]}",
            )
        n, of = len(names), "one per joint of robot.joint_names"
        kw: dict[str, Any] = {
            "name": self.text(d.get("name", _ABSENT), f"{w}name"),
            "joint_names": names,
            "default_pose": self.numbers(d.get("default_pose", _ABSENT), f"{w}default_pose", n, of),
            "kp": self.numbers(d.get("kp", _ABSENT), f"{w}kp", n, of),
            "kd": self.numbers(d.get("kd", _ABSENT), f"{w}kd", n, of),
            "torque_limits": self.numbers(d.get("torque_limits", _ABSENT), f"{w}torque_limits", n, of),
            "position_limits": self.pairs(
                d.get("position_limits", _ABSENT), f"{w}position_limits", n, of, null_lo=-math.inf, null_hi=math.inf
            ),
            "velocity_limits": self.numbers(d.get("velocity_limits", _ABSENT), f"{w}velocity_limits", n, of),
        }
        if "action_scale" in d:
            kw["action_scale"] = self.number(d["action_scale"], f"{w}action_scale")
        if "action_clip" in d:
            kw["action_clip"] = self.number(d["action_clip"], f"{w}action_clip")
        if "action_type" in d:
            kw["action_type"] = self.text(d["action_type"], f"{w}action_type")
            if kw["action_type"] not in ACTION_TYPES:
                self.bad(f"{w}action_type", f"{_show(kw['action_type'])} is not one of {list(ACTION_TYPES)}")
        if "model_sha256" in d:
            kw["model_sha256"] = self.text(d["model_sha256"], f"{w}model_sha256")
        return RobotContract(**kw)

    def timing(self, value: Any) -> TimingContract | None:
        d = self.fields_of(value, "timing", TimingContract)
        if d is None:
            return None
        kw: dict[str, Any] = {
            "control_dt_s": self.number(d.get("control_dt_s", _ABSENT), "timing.control_dt_s"),
            "physics_dt_s": self.number(d.get("physics_dt_s", _ABSENT), "timing.physics_dt_s"),
        }
        if "latency_range_s" in d:
            kw["latency_range_s"] = self.pair(d["latency_range_s"], "timing.latency_range_s")
        if d.get("gait_period_s") is not None:
            kw["gait_period_s"] = self.number(d["gait_period_s"], "timing.gait_period_s")
        return TimingContract(**kw)

    def observation(self, value: Any, where: str) -> ObservationTermContract | None:
        d = self.fields_of(value, where, ObservationTermContract)
        if d is None:
            return None
        kw: dict[str, Any] = {
            "name": self.text(d.get("name", _ABSENT), f"{where}.name"),
            "size": self.whole(d.get("size", _ABSENT), f"{where}.size", 1, MAX_OBSERVATION_SIZE),
        }
        if "scale" in d:
            kw["scale"] = self.number(d["scale"], f"{where}.scale")
        if d.get("clip") is not None:
            kw["clip"] = self.number(d["clip"], f"{where}.clip")
            if not kw["clip"] > 0:
                self.bad(f"{where}.clip", f"must be > 0 (or null: no clip), got {kw['clip']:g}")
        if "history" in d:
            kw["history"] = self.whole(d["history"], f"{where}.history", 1, MAX_OBSERVATION_SIZE)
        for key in ("frame", "quat_convention"):
            if key in d:
                kw[key] = self.text(d[key], f"{where}.{key}")
        return ObservationTermContract(**kw)

    def commands(self, value: Any) -> CommandContract | None:
        d = self.fields_of(value, "commands", CommandContract)
        if d is None:
            return None
        names = tuple(
            self.text(v, f"commands.names[{i}]") for i, v in enumerate(self.items(d.get("names", []), "commands.names"))
        )
        ranges = self.pairs(d.get("ranges", []), "commands.ranges", len(names), "one per command of commands.names")
        return CommandContract(names, ranges)

    def normalizer(self, value: Any) -> NormalizerContract | None:
        d = self.fields_of(value, "normalizer", NormalizerContract)
        if d is None:
            return None
        folded = d.get("folded", True)
        if not isinstance(folded, bool):
            self.bad("normalizer.folded", f"must be true or false, got {_show(folded)}")
        mean = self.numbers(d.get("mean", []), "normalizer.mean")
        std = self.numbers(d.get("std", []), "normalizer.std", len(mean), "one per entry of normalizer.mean")
        if not all(s > 0 for s in std if math.isfinite(s)):
            self.bad("normalizer.std", "must hold numbers > 0")
        return NormalizerContract(bool(folded), mean, std)
