"""An exported policy: the ONNX graph, the contract it carries, and the controller that runs it on a robot.

`OnnxPolicy.load(path)` reads the contract from the file's metadata; `check(robot)` refuses a robot the policy was
not trained for, with a message that names each difference. `PolicyController` turns robot readings into joint
commands with the very observation-term code the environments use (robots/observations.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import mujoco
import numpy as np

from footfall.deploy.interface import JointCommand, RobotReading
from footfall.deploy.safety import SafetyFault
from footfall.robots.contract import (
    CONTRACT_METADATA_KEY,
    EVAL_METADATA_KEY,
    ContractMismatchError,
    PolicyContract,
)
from footfall.robots.observations import ObservationBuilder, RobotState, TermContext
from footfall.robots.registry import load_robot, robot_names
from footfall.robots.spec import RobotSpec

_EE_TERMS = ("ee_pos", "ee_to_target", "ee_to_target_dir")


class ForwardKinematics:
    """End-effector position from joint angles, as the arm environments' sensor reports it: the site's position in
    the frame of the robot's (fixed) base at its model pose, from the same compiled model."""

    def __init__(self, robot: RobotSpec):
        if not robot.end_effector_site:
            raise ContractMismatchError(
                f"the policy observes the end effector but robot {robot.name!r} names no end_effector_site in its "
                "spec file; add one (an arm's tool frame)"
            )
        self.model = robot.build_model()
        self.data = mujoco.MjData(self.model)
        self.qadr = robot.joint_qpos_adr(self.model)
        self.site = self.model.site(robot.end_effector_site).id

    def __call__(self, joint_pos: np.ndarray) -> np.ndarray:
        self.data.qpos[self.qadr] = joint_pos
        mujoco.mj_kinematics(self.model, self.data)
        return self.data.site_xpos[self.site].copy()


class OnnxPolicy:
    """obs (D,) or (N, D) float -> action (A,) or (N, A), with the policy contract."""

    def __init__(self, data: bytes, source: str = "<bytes>"):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1  # one small MLP: threads cost more than they give on a control loop
        opts.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own exception types
            raise ContractMismatchError(f"{source} is not a loadable ONNX model: {e}") from e
        meta = self.session.get_modelmeta().custom_metadata_map
        if CONTRACT_METADATA_KEY not in meta:
            raise ContractMismatchError(
                f"{source} carries no footfall policy contract (metadata key {CONTRACT_METADATA_KEY!r}). "
                "Export it with `footfall export RUN -o policy.onnx`."
            )
        self.contract = PolicyContract.from_json(meta[CONTRACT_METADATA_KEY])
        try:
            report = json.loads(meta.get(EVAL_METADATA_KEY, "{}"))
        except (ValueError, RecursionError):
            report = None
        # informational only (sim2sim's reference RMSE): a malformed one is dropped, never trusted
        self.eval_report: dict[str, Any] = report if isinstance(report, dict) else {}
        inp, out = self.session.get_inputs()[0], self.session.get_outputs()[0]
        self.input_name, self.output_name = inp.name, out.name
        width, actions = inp.shape[-1], out.shape[-1]
        if isinstance(width, int) and width != self.contract.observation_size:
            raise ContractMismatchError(
                f"{source}: the graph takes {width} inputs but its contract describes {self.contract.observation_size}"
            )
        if not isinstance(actions, int) or actions != self.contract.action_size:
            # (a graph with one output, or a symbolic width, would be broadcast onto every joint)
            raise ContractMismatchError(
                f"{source}: the graph gives {actions} outputs but its contract has {self.contract.action_size} joints; "
                "re-export the policy with `footfall export`"
            )
        self.source = source
        self._buf = np.zeros((1, self.contract.observation_size), dtype=np.float32)

    @classmethod
    def load(cls, path: str | Path) -> OnnxPolicy:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"policy file not found: {path}. Export one with `footfall export RUN -o {path}`.")
        return cls(path.read_bytes(), str(path))

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        if obs.ndim == 1:
            self._buf[0] = obs
            return self.session.run([self.output_name], {self.input_name: self._buf})[0][0].astype(np.float64)
        return self.session.run([self.output_name], {self.input_name: obs.astype(np.float32)})[0].astype(np.float64)

    def check(self, robot: RobotSpec, control_dt_s: float | None = None) -> None:
        """Raise ContractMismatchError naming every difference between the contract and `robot`."""
        self.contract.validate(robot, control_dt_s=control_dt_s)
        ctx = context_of(self.contract, robot)
        try:
            builder = ObservationBuilder.from_contract(self.contract.observations, ctx)
        except ValueError as e:
            raise ContractMismatchError(f"{self.source}: {e}") from e
        if builder.size != self.contract.observation_size:
            raise ContractMismatchError(
                f"{self.source}: observation size: policy expects {self.contract.observation_size}, "
                f"robot {robot.name!r} gives {builder.size}"
            )


def robot_for(contract: PolicyContract, spec: str | None, source: str = "the policy") -> RobotSpec:
    """The robot to run on: the explicit `spec` (a built-in name or a spec file), else the built-in robot of the
    contract's name. A name inside a policy file is never used as a path: a file could otherwise choose the spec that
    supplies its own safety limits."""
    if spec is not None:
        return load_robot(spec)
    name = contract.robot.name
    if name in robot_names():
        return load_robot(name)
    raise ContractMismatchError(
        f"{source} was trained on robot {name!r}, which is not a built-in robot ({robot_names()}); pass the robot's "
        "spec file with --spec PATH (a robot is never looked up from a name inside a policy file)"
    )


def context_of(contract: PolicyContract, robot: RobotSpec) -> TermContext:
    return TermContext(
        np.asarray(contract.robot.default_pose), num_commands=len(contract.commands.names), num_feet=len(robot.feet)
    )


class PolicyController:
    """Runs an OnnxPolicy: reading + command -> observation (shared term code) -> action -> joint command.

    Keeps what the policy's observation needs beyond the reading: its last action and the gait clock. Action
    semantics follow the contract: target = clip(default + scale * clip(a)) (offset) or target += scale * clip(a)
    (delta), clipped to the joint ranges of both the contract and the robot (a contract narrows, never widens); kp and
    kd are the contract's gains (checked equal to the robot's). A raw action holding a NaN or an infinity raises
    SafetyFault before any clipping: the runtime damps."""

    name = "policy"

    def __init__(self, policy: OnnxPolicy, robot: RobotSpec):
        policy.check(robot)
        self.policy, self.contract, self.robot = policy, policy.contract, robot
        c = self.contract
        self.builder = ObservationBuilder.from_contract(c.observations, context_of(c, robot))
        self.default = np.asarray(c.robot.default_pose, dtype=np.float64)
        # targets stay inside both the contract's ranges and the robot's: a contract may narrow them, never widen
        self.lo = np.maximum([lo for lo, _ in c.robot.position_limits], [lo for lo, _ in robot.position_limits])
        self.hi = np.minimum([hi for _, hi in c.robot.position_limits], [hi for _, hi in robot.position_limits])
        self.kp = np.asarray(c.robot.kp, dtype=np.float64)
        self.kd = np.asarray(c.robot.kd, dtype=np.float64)
        self.nj = len(self.default)
        self.needs_clock = any(t.name == "gait_clock" for t in c.observations)
        self.fk = ForwardKinematics(robot) if any(t.name in _EE_TERMS for t in c.observations) else None
        if self.needs_clock and not c.timing.gait_period_s:
            raise ContractMismatchError(f"{policy.source}: observes a gait clock but its contract has no gait period")
        self.reset(None)

    def reset(self, reading: RobotReading | None) -> None:
        self.action = np.zeros(self.nj)
        self.phase = 0.0
        self.target = self.default.copy() if reading is None else reading.joint_pos.copy()
        self.builder.reset()
        self.last_obs = np.zeros(self.contract.observation_size)

    def state_of(self, reading: RobotReading, command: np.ndarray) -> RobotState:
        return RobotState(
            joint_pos=reading.joint_pos[None],
            joint_vel=reading.joint_vel[None],
            imu_quat=None if reading.imu_quat is None else reading.imu_quat[None],
            gyro=None if reading.gyro is None else reading.gyro[None],
            accel=None if reading.accel is None else reading.accel[None],
            command=np.asarray(command, dtype=np.float64)[None],
            last_action=self.action[None],
            joint_target=self.target[None],
            phase=np.array([self.phase]),
            ee_pos=None if self.fk is None else self.fk(reading.joint_pos)[None],
        )

    def __call__(self, reading: RobotReading, command: np.ndarray) -> JointCommand:
        c = self.contract
        obs = self.builder(self.state_of(reading, command))[0]
        self.last_obs = obs
        a = self.policy(obs)
        if not np.isfinite(a).all():  # before any clipping, which would turn inf into a finite, wrong target
            j = int(np.flatnonzero(~np.isfinite(a))[0])
            raise SafetyFault(f"policy action is not finite ({c.robot.joint_names[j]}: {a[j]})")
        a = np.clip(a, -c.robot.action_clip, c.robot.action_clip)
        self.action = a
        base = self.target if c.robot.action_type == "joint_position_delta" else self.default
        self.target = np.clip(base + c.robot.action_scale * a, self.lo, self.hi)
        if self.needs_clock:
            self.phase = (self.phase + c.timing.control_dt_s / c.timing.gait_period_s) % 1.0
        z = np.zeros(self.nj)
        return JointCommand(q=self.target.copy(), dq=z, kp=self.kp.copy(), kd=self.kd.copy(), tau=z.copy())
