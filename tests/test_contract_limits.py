"""A policy contract is untrusted input: parsing refuses anything malformed with ContractMismatchError only, and
`validate` refuses a contract that asks for more than its robot allows, listing every problem in one message."""

from __future__ import annotations

import dataclasses
import json
import math
import random
import time
from typing import Any

import pytest

from footfall.robots import ContractMismatchError, PolicyContract, load_robot
from footfall.robots.contract import CommandContract, ObservationTermContract

OBS = (
    ObservationTermContract("gyro", 3, scale=0.25, frame="body"),
    ObservationTermContract("projected_gravity", 3, frame="body"),
    ObservationTermContract("command", 3),
    ObservationTermContract("joint_pos_rel", 12, frame="joint"),
    ObservationTermContract("joint_vel", 12, scale=0.05, frame="joint"),
    ObservationTermContract("last_action", 12),
    ObservationTermContract("gait_clock", 2),
)


@pytest.fixture(scope="module")
def go1():  # noqa: ANN201
    return load_robot("go1")


@pytest.fixture
def contract(go1) -> PolicyContract:  # noqa: ANN001
    """What footfall's quadruped task exports for go1."""
    return PolicyContract.from_robot(
        go1,
        control_dt_s=0.02,
        observations=OBS,
        commands=CommandContract(("vx", "vy", "yaw_rate"), ((-1.0, 1.0), (-0.5, 0.5), (-1.0, 1.0))),
        task="footfall/Quadruped-Walk-Flat-v0",
        timing_kwargs={"latency_range_s": (0.0, 0.02), "gait_period_s": 0.5},
    )


def _edit(c: PolicyContract, section: str = "", **changes: Any) -> PolicyContract:
    if not section:
        return dataclasses.replace(c, **changes)
    return dataclasses.replace(c, **{section: dataclasses.replace(getattr(c, section), **changes)})


def _json_with(c: PolicyContract, edit) -> str:  # noqa: ANN001
    d = json.loads(c.to_json())
    edit(d)
    return json.dumps(d)


# ---------------------------------------------------------------------- what footfall itself exports


@pytest.mark.parametrize("name", ["quadruped-flat", "quadruped-rough", "go2-flat", "biped-flat", "arm-reach"])
def test_every_preset_exports_a_contract_that_fits_its_robot(name: str) -> None:
    """The rules refuse none of footfall's own policies: each preset's contract (as export writes it) parses back
    equal and validates against its robot."""
    from footfall.envs import make_task
    from footfall.training.presets import preset

    cfg = preset(name)
    env = make_task(cfg.task, 1, seed=0, **dict(cfg.env_overrides))
    try:
        c = env.contract(task=cfg.task)
        back = PolicyContract.from_json(c.to_json())
        assert back == c
        back.validate(env.robot, control_dt_s=0.02)
    finally:
        env.close()


# ---------------------------------------------------------------------- parsing: only ContractMismatchError


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity", "1e999", "-1e999"])
def test_non_finite_numbers_are_refused_when_parsed(contract: PolicyContract, token: str) -> None:
    text = contract.to_json().replace('"control_dt_s": 0.02', f'"control_dt_s": {token}')
    assert token in text
    with pytest.raises(ContractMismatchError):
        PolicyContract.from_json(text)


def test_an_unlimited_joint_is_the_only_null_a_number_may_be(contract: PolicyContract) -> None:
    """null stands for the open side of a position limit; anywhere else a number belongs, it is refused."""

    def null_kp(d: dict) -> None:
        d["robot"]["kp"][2] = None

    with pytest.raises(ContractMismatchError, match=r"robot\.kp\[2\]: must be a number, got null"):
        PolicyContract.from_json(_json_with(contract, null_kp))

    def null_limit(d: dict) -> None:
        d["robot"]["position_limits"][0] = [None, None]

    c = PolicyContract.from_json(_json_with(contract, null_limit))
    assert c.robot.position_limits[0] == (-math.inf, math.inf)


def test_wrong_types_lengths_and_values_are_all_named_in_one_message(contract: PolicyContract) -> None:
    def edit(d: dict) -> None:
        d["robot"]["kd"] = d["robot"]["kd"][:11]
        d["robot"]["action_scale"] = True
        d["robot"]["action_type"] = "torque"
        d["robot"]["velocity_limits"][0] = "30"
        d["timing"]["physics_dt_s"] = 10**400
        d["observations"][0]["size"] = 0
        d["observations"][1]["history"] = 1.5
        d["commands"]["ranges"] = d["commands"]["ranges"][:2]
        d["task"] = 7

    with pytest.raises(ContractMismatchError) as e:
        PolicyContract.from_json(_json_with(contract, edit))
    msg = str(e.value)
    for line in (
        "robot.kd: has 11 entries, needs 12: one per joint of robot.joint_names",
        "robot.action_scale: must be a number, got True",
        "robot.action_type: 'torque' is not one of ['joint_position_offset', 'joint_position_delta']",
        "robot.velocity_limits[0]: must be a number, got '30'",
        "timing.physics_dt_s: is too large to be a number",
        "observations[0].size: must lie in [1, 100000], got 0",
        "observations[1].history: must be a whole number, got 1.5",
        "commands.ranges: has 2 entries, needs 3",
        "task: must be a string, got 7",
        "re-export the policy",
    ):
        assert line in msg, (line, msg)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "null",
        "[]",
        "1",
        '"contract"',
        "[" * 100_000,
        '{"a": ' * 50_000,
        "1" * 5000,  # more digits than Python converts
        '{"contract_version": true}',
        '{"contract_version": 1.0}',
        '{"contract_version": 1}',
        '{"contract_version": 1, "robot": [], "timing": 3, "observations": {}}',
        '{"contract_version": 1, "robot": {"joint_names": "FR_hip_joint"}, "timing": {}, "observations": [1]}',
        "\udcff",
    ],
)
def test_hostile_documents_raise_only_contract_errors(text: str) -> None:
    with pytest.raises(ContractMismatchError):
        PolicyContract.from_json(text)


def test_random_bytes_raise_only_contract_errors() -> None:
    with pytest.raises(ContractMismatchError):
        PolicyContract.from_json(b"\xff\xfe\x00{")


_POOL: list[Any] = [
    None,
    True,
    False,
    0,
    -1,
    1.5,
    -0.02,
    1e308,
    float("nan"),
    float("inf"),
    -float("inf"),
    10**400,
    "",
    "x",
    "joint_position_delta",
    [],
    [1.0],
    [[0.0, 1.0]],
    [None, None],
    {},
    {"size": 3},
    list(range(50)),
]


def _paths(node: Any, path: tuple = ()) -> list[tuple]:
    out = [path]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*path, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*path, i))
    return out


def _mutate_tree(d: Any, rng: random.Random) -> Any:
    for _ in range(rng.randint(1, 3)):
        paths = [p for p in _paths(d) if p]
        if not paths:
            return d
        path = rng.choice(paths)
        parent = d
        for k in path[:-1]:
            parent = parent[k]
        key = path[-1]
        op = rng.random()
        if op < 0.25:
            del parent[key]
        elif op < 0.8:
            parent[key] = rng.choice(_POOL)
        elif op < 0.9 and isinstance(parent, dict):
            parent[f"{key}_extra"] = parent[key]
        else:
            parent[key] = [parent[key]] if rng.random() < 0.5 else {"v": parent[key]}
    return d


def _mutate_text(text: str, rng: random.Random) -> str | bytes:
    i = rng.randrange(len(text) + 1)
    op = rng.random()
    if op < 0.3:
        return text[:i]
    if op < 0.5:
        return (
            text[:i] + rng.choice(["NaN", "Infinity", "-Infinity", "1e999", "9" * 400, "-", "[", "{", '"']) + text[i:]
        )
    if op < 0.7:
        return (
            text[:i]
            + "".join(chr(rng.randrange(0x110000 if rng.random() < 0.2 else 128)) for _ in range(3))
            + text[i + 3 :]
        )
    if op < 0.85:
        raw = bytearray(text.encode())
        for _ in range(rng.randint(1, 4)):
            raw[rng.randrange(len(raw))] = rng.randrange(256)
        return bytes(raw)
    return text[:i] + "[" * rng.randint(1, 3000) + text[i:]


def test_thousands_of_mutated_contracts_parse_or_raise_contract_errors(contract: PolicyContract, go1) -> None:  # noqa: ANN001
    """A real contract's JSON mutated 4000 ways (fields deleted, values swapped for other types, NaN, huge numbers,
    truncation, random bytes, deep nesting): from_json either returns a contract, which then validates (or lists
    its problems) and round-trips, or raises ContractMismatchError. Nothing else ever comes out."""
    rng = random.Random(1234)
    base = contract.to_dict()
    text = contract.to_json()
    t0 = time.perf_counter()
    parsed = refused = 0
    for n in range(4000):
        if n % 2:
            doc = json.dumps(_mutate_tree(json.loads(text), rng), allow_nan=True)
        else:
            doc = _mutate_text(text, rng)
        try:
            c = PolicyContract.from_json(doc)
        except ContractMismatchError:
            refused += 1
            continue
        parsed += 1
        assert isinstance(c.mismatches(go1), list)  # never raises
        assert PolicyContract.from_json(c.to_json()) == c
    assert refused > 1000 and parsed > 50, (parsed, refused)
    assert base == contract.to_dict()
    assert time.perf_counter() - t0 < 20


# ---------------------------------------------------------------------- validate: the robot's limits


def _problems(c: PolicyContract, robot, **kw: Any) -> str:  # noqa: ANN001
    with pytest.raises(ContractMismatchError) as e:
        c.validate(robot, **kw)
    return str(e.value)


@pytest.mark.parametrize("dt", [1.0, -0.02, 0.0, 0.0005, 0.2])
def test_control_period_outside_1_to_100_ms_is_refused(contract: PolicyContract, go1, dt: float) -> None:  # noqa: ANN001
    msg = _problems(_edit(contract, "timing", control_dt_s=dt), go1)
    assert f"control period {dt:g} s is outside [0.001, 0.1] s" in msg


def test_control_period_must_be_whole_physics_steps(contract: PolicyContract, go1) -> None:  # noqa: ANN001
    msg = _problems(_edit(contract, "timing", control_dt_s=0.021), go1)
    assert "control period 0.021 s is not a whole number of the robot's physics steps (0.004 s)" in msg


def test_action_reach_is_bounded_by_the_widest_joint_range(contract: PolicyContract, go1) -> None:  # noqa: ANN001
    """go1's widest joint (the thigh) spans 5.19 rad: 0.25 x 10 = 2.5 rad passes although the hips span only 1.73;
    0.6 x 10 = 6 rad asks for more than any joint of go1 can move."""
    widest = max(hi - lo for lo, hi in go1.position_limits)
    assert 5.1 < widest < 5.2 and min(hi - lo for lo, hi in go1.position_limits) < 2.5
    contract.validate(go1)
    _edit(contract, "robot", action_scale=widest / 10).validate(go1)
    msg = _problems(_edit(contract, "robot", action_scale=0.6), go1)
    assert "action_scale x action_clip = 0.6 x 10 = 6 rad" in msg
    assert f"exceeds the widest joint range of robot 'go1' ({widest:g} rad, 'FR_thigh_joint')" in msg
    msg = _problems(_edit(contract, "robot", action_scale=0.0, action_clip=-1.0), go1)
    assert "action_scale 0 rad must be a finite number > 0" in msg and "action_clip -1 must be" in msg
    msg = _problems(_edit(contract, "robot", action_type="joint_torque"), go1)
    assert "action_type 'joint_torque' is not one of" in msg


def test_the_arms_delta_actions_fit_and_a_larger_step_does_not() -> None:
    panda = load_robot("panda")
    c = PolicyContract.from_robot(
        panda,
        control_dt_s=0.02,
        observations=(ObservationTermContract("joint_pos_rel", 7),),
        robot_kwargs={"action_type": "joint_position_delta", "action_scale": 0.04, "action_clip": 10.0},
    )
    c.validate(panda)
    msg = _problems(_edit(c, "robot", action_clip=1000.0), panda)
    assert "= 40 rad, the largest joint-target step per control period" in msg


def test_limits_may_narrow_the_robots_never_widen_them(contract: PolicyContract, go1) -> None:  # noqa: ANN001
    pos = list(contract.robot.position_limits)
    vel = list(contract.robot.velocity_limits)
    narrow = _edit(
        contract,
        "robot",
        position_limits=((pos[0][0] + 0.1, pos[0][1] - 0.1), *pos[1:]),
        velocity_limits=(vel[0] / 2, *vel[1:]),
    )
    narrow.validate(go1)
    wide = _edit(
        contract,
        "robot",
        position_limits=((pos[0][0], pos[0][1] + 0.5), (-math.inf, math.inf), (1.0, -1.0), *pos[3:]),
        velocity_limits=(vel[0] * 2, -1.0, *vel[2:]),
    )
    msg = _problems(wide, go1)
    assert f"position limits of 'FR_hip_joint': policy [{pos[0][0]:g}, {pos[0][1] + 0.5:g}] rad, wider than" in msg
    assert "position limits of 'FR_thigh_joint': policy [-inf, inf] rad, wider than" in msg
    assert "position limits of 'FR_calf_joint': policy [1, -1] rad, lo above hi" in msg
    assert f"velocity limit of 'FR_hip_joint': policy {vel[0] * 2:g} rad/s, robot {vel[0]:g} rad/s" in msg
    assert "velocity limit of 'FR_thigh_joint': policy -1 rad/s" in msg


def test_every_problem_is_listed_in_one_message(contract: PolicyContract, go1) -> None:  # noqa: ANN001
    bad = _edit(
        _edit(
            _edit(
                contract,
                "timing",
                control_dt_s=1.0,
                physics_dt_s=-0.004,
                latency_range_s=(0.0, 20.0),
                gait_period_s=0.0,
            ),
            "robot",
            action_scale=1.0,
            velocity_limits=(100.0,) * 12,
            default_pose=(5.0, *contract.robot.default_pose[1:]),
        ),
        "commands",
        ranges=((1.0, -1.0), (-0.5, 0.5), (-math.inf, 1.0)),
    )
    msg = _problems(bad, go1)
    for line in (
        "control period 1 s is outside [0.001, 0.1] s",
        "physics step -0.004 s must be a finite number > 0",
        "latency range [0, 20] s: needs 0 <= lo <= hi <= 0.5 s",
        "gait period 0 s must be a finite number > 0",
        "action_scale x action_clip = 1 x 10 = 10 rad",
        "velocity limit of 'RL_calf_joint': policy 100 rad/s, robot 20.06 rad/s",
        "default pose of 'FR_hip_joint' (5 rad) lies outside the robot's range",
        "command range of 'vx': [1, -1] must be finite, with lo <= hi",
        "command range of 'yaw_rate': [-inf, 1]",
        "Retrain or re-export for this robot, or give a spec file whose joints, gains and limits match.",
    ):
        assert line in msg, (line, msg)
    assert msg.count("\n  - ") == 8 + 12  # the 8 above and each velocity limit, each named
