"""`footfall deploy`: run an exported policy on a simulated robot or, over UDP or Unitree SDK2 (DDS), on a real one."""

from __future__ import annotations

import datetime as _dt
import json
import signal
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from footfall.deploy.console import Console, StatusLine
from footfall.deploy.mujoco_robot import MujocoRobot
from footfall.deploy.operator import KeyboardOperator, UdpOperator
from footfall.deploy.policy import OnnxPolicy, PolicyController, robot_for
from footfall.deploy.runtime import Runtime, RuntimeConfig, realtime_setup, telemetry_fields
from footfall.deploy.safety import SafetyConfig
from footfall.deploy.telemetry import TelemetryWriter
from footfall.deploy.udp import UdpRobot
from footfall.deploy.unitree.robot import UnitreeRobot

EXIT_SIGNALS = ("SIGTERM", "SIGHUP", "SIGINT")


@contextmanager
def exit_on_signals(runtime: Runtime):
    """SIGTERM, SIGHUP and SIGINT damp the robot and leave the loop at the next tick (then the caller flushes the
    log and closes the link); the previous handlers come back afterwards."""
    previous = {}

    def handler(signum: int, _frame: object) -> None:
        runtime.request_exit(signal.Signals(signum).name)

    for name in EXIT_SIGNALS:
        sig = getattr(signal, name, None)
        if sig is not None:
            try:
                previous[sig] = signal.signal(sig, handler)
            except ValueError:  # not the main thread: the caller handles its own signals
                pass
    try:
        yield
    finally:
        for sig, h in previous.items():
            signal.signal(sig, h)


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
    key: str | None = None,
    force: bool = False,
    viewer: bool = False,
    status: bool = True,
) -> dict[str, Any]:
    if viewer and robot != "sim":
        raise ValueError("--viewer shows a simulated robot: use it with --robot sim")
    policy = OnnxPolicy.load(policy_path)
    c = policy.contract
    robot_spec = robot_for(c, spec, str(policy_path))
    controller = PolicyController(policy, robot_spec)  # refuses a robot the contract does not fit
    secret = None
    if key is not None:
        from footfall.deploy.keys import load_key

        secret = load_key(key)
    log_path = Path(log or f"deploy-{_dt.datetime.now():%Y%m%d-%H%M%S}.fflog")
    fields = telemetry_fields(
        len(c.commands.names),
        c.observation_size,
        c.action_size,
        robot_spec.num_joints,
        len(robot_spec.feet),
        imu=robot_spec.imu_site is not None,
    )
    meta = {
        "period_s": c.timing.control_dt_s,
        "controller": "policy",
        "robot": robot_spec.name,
        "contract": json.loads(c.to_json()),
        "started_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(),
    }
    tel = TelemetryWriter(log_path, fields, meta, force=force)  # first: refuses an existing log before anything opens
    console = Console()
    resources = ExitStack()  # closed in reverse order whatever happens below; the log last
    resources.callback(tel.close)
    resources.callback(console.close)
    with resources:
        if robot == "sim":
            iface: Any = MujocoRobot(robot_spec)
            resources.callback(iface.close)
            iface.start(viewer=viewer)
        elif robot.startswith("unitree://"):
            iface = UnitreeRobot.from_url(robot, robot_spec)  # (CycloneDDS: pip install "footfall[unitree]")
            resources.callback(iface.close)
        else:
            iface = UdpRobot.from_url(robot, robot_spec.num_joints, len(robot_spec.feet), secret)
            resources.callback(iface.close)
        setup = realtime_setup(cpu) if rt else {}
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
        runtime.console = console
        ops: list[Any] = [KeyboardOperator()]
        if operator_port:
            ops.append(UdpOperator(operator_port, key=secret))
            resources.callback(ops[-1].close)
        runtime.on_tick.append(lambda r: [op.poll(r) for op in ops])
        if velocity is not None:
            runtime.set_velocity(np.asarray(velocity[: len(c.commands.names)], dtype=float))
        if autostart:
            runtime.start()
            runtime.run()
        print(
            f"footfall deploy: {policy_path} on {robot} ({robot_spec.name}) at {1 / c.timing.control_dt_s:g} Hz; "
            f"mode {runtime.mode.name}. Keys: g stand up, r run, x stop, p reset, w/a/s/d/q/e velocity. "
            + (
                f"UDP operator on 127.0.0.1:{operator_port} ("
                + ("commands need the key: footfall operator CMD --key KEY" if secret else "no key: any local process")
                + "). "
                if operator_port
                else ""
            )
            + f"Telemetry: {log_path}. Ctrl-C, SIGTERM or SIGHUP damp and exit.",
            flush=True,
        )
        if status:
            resources.callback(StatusLine(runtime).close)  # (closed first: its last line before the report)
        # the handlers stay installed until the log is closed: a second signal during the cleanup changes nothing
        with exit_on_signals(runtime):
            try:
                timing = runtime.loop(duration_s=duration_s)
            finally:
                try:
                    runtime.robot.write(runtime.damping)
                finally:
                    telemetry = tel.close()  # drains the ring, fsyncs; a write error (disk full) is reported
    return {
        "log": str(log_path),
        "final_mode": runtime.mode.name,
        "fault": runtime.fault,
        "exit": runtime.exit_reason,
        "events": [f"{e['from']}->{e['to']}: {e['reason']}" for e in runtime.events],
        "tick_errors": runtime.tick_errors,
        "safety_clamps": runtime.safety.clamps,
        "link": _counts(iface),
        "operator_rejected": {k: v for op in ops if isinstance(op, UdpOperator) for k, v in op.bad.items()},
        "telemetry": {k: telemetry[k] for k in ("ticks_written", "dropped_ticks", "error")},
        "realtime": setup,
        **timing,
    }


def _counts(iface: Any) -> dict[str, Any]:
    """What the robot link accepted and refused, by reason (a simulated robot has no link)."""
    if isinstance(iface, UdpRobot):
        return {"ok": iface.counters.ok, **{f"bad_{k}": v for k, v in iface.counters.bad.items()}}
    if isinstance(iface, UnitreeRobot):
        return iface.counts()  # ok, bad_*, stale_reads, superseded, sent
    return {}
