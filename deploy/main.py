"""`footfall deploy`: run an exported policy on a simulated robot or, over UDP, on a real one."""

from __future__ import annotations

import datetime as _dt
import json
from pathlib import Path
from typing import Any

import numpy as np

from footfall.deploy.mujoco_robot import MujocoRobot
from footfall.deploy.operator import KeyboardOperator, UdpOperator
from footfall.deploy.policy import OnnxPolicy, PolicyController
from footfall.deploy.runtime import Runtime, RuntimeConfig, realtime_setup, telemetry_fields
from footfall.deploy.safety import SafetyConfig
from footfall.deploy.telemetry import TelemetryWriter
from footfall.deploy.udp import UdpRobot
from footfall.robots.registry import load_robot


def deploy(
    policy_path: str,
    robot: str = "sim",
    spec: str | None = None,
    duration_s: float | None = None,
    log: str | None = None,
    operator_port: int | None = 9871,
    autostart: bool = False,
    velocity: tuple[float, ...] | None = None,
    rt: bool = False,
    cpu: int | None = None,
    safety: SafetyConfig | None = None,
    stand_up_s: float = 2.0,
) -> dict[str, Any]:
    policy = OnnxPolicy.load(policy_path)
    c = policy.contract
    robot_spec = load_robot(spec) if spec is not None else load_robot(c.robot.name)
    controller = PolicyController(policy, robot_spec)  # refuses a robot the contract does not fit
    if robot == "sim":
        iface: Any = MujocoRobot(robot_spec)
        iface.start()
    else:
        iface = UdpRobot.from_url(robot, robot_spec.num_joints, len(robot_spec.feet))
    setup = realtime_setup(cpu) if rt else {}
    fields = telemetry_fields(len(c.commands.names), c.observation_size, c.action_size, robot_spec.num_joints)
    log_path = Path(log or f"deploy-{_dt.datetime.now():%Y%m%d-%H%M%S}.fflog")
    meta = {
        "period_s": c.timing.control_dt_s,
        "controller": "policy",
        "robot": robot_spec.name,
        "contract": json.loads(c.to_json()),
        "started_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(),
    }
    tel = TelemetryWriter(log_path, fields, meta)
    runtime = Runtime(
        iface,
        robot_spec,
        controller,
        RuntimeConfig(
            control_dt_s=c.timing.control_dt_s,
            num_commands=len(c.commands.names),
            command_hold=velocity is not None,
            command_ranges=tuple(c.commands.ranges),
            stand_up_s=stand_up_s,
        ),
        safety,
        telemetry=tel,
        obs_size=c.observation_size,
    )
    ops: list[Any] = [KeyboardOperator()]
    if operator_port:
        ops.append(UdpOperator(operator_port))
    runtime.on_tick.append(lambda r: [op.poll(r) for op in ops])
    if velocity is not None:
        runtime.set_velocity(np.asarray(velocity[: len(c.commands.names)], dtype=float))
    if autostart:
        runtime.start()
        runtime.run()
    print(
        f"footfall deploy: {policy_path} on {robot} ({robot_spec.name}) at {1 / c.timing.control_dt_s:g} Hz; "
        f"mode {runtime.mode.name}. Keys: g stand up, r run, x stop, p reset, w/a/s/d/q/e velocity. "
        + (f"UDP operator on 127.0.0.1:{operator_port}. " if operator_port else "")
        + f"Telemetry: {log_path}. Ctrl-C damps and exits.",
        flush=True,
    )
    try:
        timing = runtime.loop(duration_s=duration_s)
    finally:
        runtime.robot.write(runtime.damping)
        tel.close()
        iface.close()
        for op in ops:
            if hasattr(op, "close"):
                op.close()
    return {
        "log": str(log_path),
        "final_mode": runtime.mode.name,
        "fault": runtime.fault,
        "events": [f"{e['from']}->{e['to']}: {e['reason']}" for e in runtime.events],
        "realtime": setup,
        **timing,
    }
