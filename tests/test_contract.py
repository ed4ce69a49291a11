"""The policy contract: exact JSON round-trip, and refusal, with a message that says what differs."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest

from footfall.robots import ContractMismatchError, PolicyContract, load_robot
from footfall.robots.contract import CommandContract, NormalizerContract, ObservationTermContract

OBS = (
    ObservationTermContract("gyro", 3, scale=0.25, clip=100.0, frame="body"),
    ObservationTermContract("projected_gravity", 3, frame="body"),
    ObservationTermContract("joint_pos_rel", 12, frame="joint", history=3),
    ObservationTermContract("command", 3),
    ObservationTermContract("last_action", 12),
)


@pytest.fixture
def contract() -> PolicyContract:
    robot = load_robot("go1")
    return PolicyContract.from_robot(
        robot,
        control_dt_s=0.02,
        observations=OBS,
        commands=CommandContract(("vx", "vy", "yaw_rate"), ((-1.0, 1.0), (-0.5, 0.5), (-1.0, 1.0))),
        normalizer=NormalizerContract(folded=False, mean=(0.1, 1 / 3), std=(2.0, 0.7)),
        task="footfall/Quadruped-Walk-Flat-v0",
        versions=(("footfall", "0.1.0"), ("mujoco", "x")),
        timing_kwargs={"latency_range_s": (0.0, 0.02)},
    )


def test_json_round_trip_is_exact(contract: PolicyContract) -> None:
    """from_json(to_json(c)) == c, field for field, floats bit for bit, and the JSON is stable."""
    text = contract.to_json()
    back = PolicyContract.from_json(text)
    assert back == contract
    assert back.normalizer.mean[1] == 1 / 3
    assert back.to_json() == text
    assert back.observation_size == 3 + 3 + 36 + 3 + 12


def test_an_unlimited_joint_round_trips_as_null(contract: PolicyContract) -> None:
    """A continuous joint (a wheel, a spinning wrist) has an infinite range; JSON has no infinity."""
    limits = list(contract.robot.position_limits)
    limits[0], limits[1] = (-math.inf, math.inf), (-1.0, math.inf)
    c = dataclasses.replace(contract, robot=dataclasses.replace(contract.robot, position_limits=tuple(limits)))
    text = c.to_json()
    assert json.loads(text)["robot"]["position_limits"][:2] == [[None, None], [-1.0, None]]
    assert PolicyContract.from_json(text) == c


def test_contract_fits_the_robot_it_was_made_for(contract: PolicyContract) -> None:
    contract.validate(load_robot("go1"), control_dt_s=0.02, observation_size=57)


def test_permuted_joint_order_is_refused_naming_the_first_differing_joint(contract: PolicyContract) -> None:
    joints = list(contract.robot.joint_names)
    joints[3], joints[6] = joints[6], joints[3]  # FL hip <-> RR hip
    bad = dataclasses.replace(contract, robot=dataclasses.replace(contract.robot, joint_names=tuple(joints)))
    with pytest.raises(
        ContractMismatchError,
        match=r"joint order differs at index 3: policy expects 'RR_hip_joint', robot has 'FL_hip_joint'",
    ):
        bad.validate(load_robot("go1"))


def test_every_mismatch_is_reported_in_one_message(contract: PolicyContract) -> None:
    """A wrong control period, observation size and gain are all listed together."""
    bad = dataclasses.replace(contract, robot=dataclasses.replace(contract.robot, kp=(20.0,) * 12))
    with pytest.raises(ContractMismatchError) as e:
        bad.validate(load_robot("go1"), control_dt_s=0.01, observation_size=50)
    msg = str(e.value)
    assert "control period: policy trained at 0.02 s, loop runs at 0.01 s" in msg
    assert "observation size: policy expects 57, runtime builds 50" in msg
    assert "kp of 'FR_hip_joint': policy 20, robot 35" in msg


def test_missing_joint_and_wrong_robot_are_refused(contract: PolicyContract) -> None:
    with pytest.raises(ContractMismatchError, match=r"joint\(s\) \[.*'FR_hip_joint'.*\] of the policy are missing"):
        contract.validate(load_robot("h1"))


def test_unsupported_version_and_malformed_json_are_refused(contract: PolicyContract) -> None:
    data = json.loads(contract.to_json())
    data["contract_version"] = 99
    with pytest.raises(ContractMismatchError, match="version 99 is not supported"):
        PolicyContract.from_dict(data)
    data["contract_version"] = 1
    data["robot"]["gains"] = 1
    with pytest.raises(ContractMismatchError, match=r"unknown field\(s\) \['gains'\]"):
        PolicyContract.from_dict(data)
    with pytest.raises(ContractMismatchError, match="not valid JSON"):
        PolicyContract.from_json("{")
