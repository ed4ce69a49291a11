"""The deploy runtime's safety layer and loop against the faults and attacks they exist for (issue: a runtime you
would trust on a real robot). Each test names the fault or attack it stops."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from footfall.deploy.interface import JointCommand, RobotReading
from footfall.deploy.mujoco_robot import MujocoRobot
from footfall.deploy.operator import UdpOperator, operator_datagram
from footfall.deploy.policy import OnnxPolicy, PolicyController, robot_for
from footfall.deploy.runtime import LockstepClock, Mode, Runtime, RuntimeConfig
from footfall.deploy.safety import SafetyConfig, SafetyLayer, safety_config
from footfall.robots import load_robot
from footfall.robots.contract import ContractMismatchError

GO1 = load_robot("go1")


class Tampered:
    """Wraps a MuJoCo robot; `edit(reading)` changes each reading from tick `at` on (None: no change)."""

    def __init__(self, robot: MujocoRobot, edit=None, at: int = 0):  # noqa: ANN001
        self.robot, self.edit, self.at, self.n = robot, edit, at, 0
        self.num_joints = robot.num_joints
        self.sent: list[JointCommand] = []
        self.rearmed = 0

    def read(self) -> RobotReading | None:
        self.n += 1
        r = self.robot.read()
        if self.edit is not None and self.n >= self.at:
            self.edit(r)
        return r

    def write(self, cmd: JointCommand) -> None:
        self.sent.append(cmd.copy())
        self.robot.write(cmd)

    def rearm(self) -> None:
        self.rearmed += 1

    def advance_to(self, t: float) -> None:
        self.robot.advance_to(t)

    def time_s(self) -> float:
        return self.robot.time_s()

    def close(self) -> None: ...


def _runtime(robot, controller, dt: float = 0.02, safety: SafetyConfig | None = None) -> Runtime:  # noqa: ANN001
    cfg = RuntimeConfig(control_dt_s=dt, stand_up_s=0.5)
    return Runtime(robot, GO1, controller, cfg, safety, clock=LockstepClock(robot))


def _policy_controller(path: Path) -> PolicyController:
    return PolicyController(OnnxPolicy.load(path), GO1)


def _damping(cmd: JointCommand) -> bool:
    return bool(np.all(cmd.kp == 0) and np.all(cmd.q == 0) and np.all(cmd.tau == 0))


def test_infinite_policy_action_damps_before_any_clipping(exported: tuple[Path, dict]) -> None:
    """Attack: a policy that outputs +inf. Clipping would turn inf into a finite joint-limit target (three ticks of
    +inf used to leave the runtime in RUN, 0.9-1.5 rad off the default pose); it must damp on the first one."""
    robot = Tampered(MujocoRobot("go1"))
    ctl = _policy_controller(exported[0])
    rt = _runtime(robot, ctl)
    rt.run_now()
    rt.loop(ticks=3, freeze_gc=False)
    assert rt.mode == Mode.RUN
    sent = len(robot.sent)
    ctl.policy = lambda obs: np.full(12, np.inf)
    rt.loop(ticks=3, freeze_gc=False)
    assert rt.mode == Mode.DAMP and "policy action is not finite" in rt.fault
    assert all(_damping(c) for c in robot.sent[sent:]), "a command computed from inf reached the robot"
    default = np.asarray(GO1.default_pose)
    assert np.all(np.abs(ctl.target - default) < 1.0)  # the target was not moved by the inf action


def test_non_finite_raw_action_of_any_controller_trips() -> None:
    """Fault: a controller whose command is finite but whose raw action (its `action`) holds a NaN."""

    class Ctl:
        action = np.array([0.0, math.nan])

        def __call__(self, reading, command):  # noqa: ANN001
            z = np.zeros(12)
            return JointCommand(reading.joint_pos.copy(), z, np.asarray(GO1.kp), np.asarray(GO1.kd), z)

    rt = _runtime(MujocoRobot("go1"), Ctl())
    rt.run_now()
    rt.loop(ticks=1, freeze_gc=False)
    assert rt.mode == Mode.DAMP and "controller action is not finite" in rt.fault


def _hold(reading, command):  # noqa: ANN001
    z = np.zeros(12)
    return JointCommand(np.asarray(GO1.default_pose), z, np.asarray(GO1.kp), np.asarray(GO1.kd), z)


@pytest.mark.parametrize(
    "what,edit,reason",
    [
        ("uninitialised IMU (zero quaternion) reads as upright", lambda r: r.imu_quat.fill(0.0), "quaternion norm 0"),
        ("quaternion scaled by 2", lambda r: r.imu_quat.__imul__(2.0), "quaternion norm 2"),
        ("encoder beyond its range", lambda r: r.joint_pos.__setitem__(2, -3.5), "joint 2 position -3.500 rad outside"),
        ("2-second-old state", lambda r: setattr(r, "age_s", 2.0), "2000 ms old"),
        ("bridge damps on its own", lambda r: setattr(r, "robot_fault", "bridge latched"), "reports a fault"),
        ("NaN torque reading", lambda r: r.joint_torque.__setitem__(0, math.nan), "non-finite sensor value in joint_t"),
    ],
)
def test_implausible_readings_trip_on_the_tick_they_arrive(what: str, edit, reason: str) -> None:  # noqa: ANN001
    """Faults a plausibility check must catch: each damps on the first tick it is seen, with its reason."""
    robot = Tampered(MujocoRobot("go1"), edit, at=4)
    rt = _runtime(robot, _hold)
    rt.run_now()
    rt.loop(ticks=3, freeze_gc=False)
    assert rt.mode == Mode.RUN, what
    rt.loop(ticks=1, freeze_gc=False)
    assert rt.mode == Mode.DAMP, what
    assert reason in rt.fault, (what, rt.fault)
    assert _damping(robot.sent[-1])


def test_position_margin_lets_small_overshoot_through() -> None:
    """A joint a little past its range (soft limits, calibration) is not a fault; past the margin it is."""
    layer = SafetyLayer.for_robot(GO1, SafetyConfig(position_margin_rad=0.1))
    r = MujocoRobot("go1").read()
    lo = GO1.position_limits[2][0]
    r.joint_pos[2] = lo - 0.05
    assert layer.check_reading(r) is None
    r.seq += 1
    r.joint_pos[2] = lo - 0.15
    assert "outside its range" in layer.check_reading(r)


def test_missed_deadlines_in_a_row_trip() -> None:
    """Fault: the control computer stalls (another process, swapping) so that ticks miss their deadlines."""

    class SlowClock(LockstepClock):
        slow = False

        def now(self) -> float:
            return self.robot.time_s() + (0.05 if self.slow else 0.0)  # every tick ends 2.5 periods late

    sim = MujocoRobot("go1")
    rt = _runtime(sim, _hold)
    rt.clock = clock = SlowClock(sim)
    rt.run_now()
    rt.loop(ticks=5, freeze_gc=False)
    assert rt.mode == Mode.RUN and rt.missed == 0
    clock.slow = True
    rt.loop(ticks=6, freeze_gc=False)
    assert rt.mode == Mode.DAMP and "control deadlines in a row" in rt.fault


@pytest.mark.parametrize("dt", [0.02, 0.002])
def test_target_rate_limit_is_per_second_not_per_tick(dt: float) -> None:
    """A target step limit per tick lets a 500 Hz controller move targets 10x faster than a 50 Hz one; in rad/s it
    is the same limit at every rate."""
    layer = SafetyLayer.for_robot(GO1, SafetyConfig(max_target_rate_rad_s=5.0), control_dt_s=dt)
    r = MujocoRobot("go1").read()
    z = np.zeros(12)
    q = r.joint_pos.copy()
    for _ in range(round(0.1 / dt)):  # 0.1 s of commands asking for +1 rad
        out, fault = layer.filter(JointCommand(q + 1.0, z, np.asarray(GO1.kp), np.asarray(GO1.kd), z), r)
        assert fault is None
    moved = out.q - r.joint_pos
    hi = np.array([h for _, h in GO1.position_limits]) - r.joint_pos
    np.testing.assert_allclose(moved, np.minimum(0.5, hi), atol=1e-9)  # 5 rad/s x 0.1 s, or the range's end


def test_gains_and_velocity_targets_are_bounded() -> None:
    """Attack: a controller (or a forged policy) asks for kd = 1e6 and a velocity target of 1e4 rad/s: kd x dq is a
    torque nothing else bounds. Both are clamped; negative gains become 0."""
    layer = SafetyLayer.for_robot(GO1, SafetyConfig(max_gain_scale=2.0))
    r = MujocoRobot("go1").read()
    z = np.zeros(12)
    cmd = JointCommand(r.joint_pos.copy(), np.full(12, 1e4), np.full(12, 1e6), np.full(12, 1e6), z)
    out, fault = layer.filter(cmd, r)
    assert fault is None
    assert np.all(out.kp <= 2 * max(GO1.kp)) and np.all(out.kd <= 2 * max(GO1.kd))
    assert np.all(np.abs(out.dq) <= np.asarray(GO1.velocity_limits))
    out, _ = layer.filter(JointCommand(r.joint_pos.copy(), -np.ones(12), -np.ones(12), -np.ones(12), z), r)
    assert np.all(out.kp == 0) and np.all(out.kd == 0) and np.all(out.dq == -1)
    assert layer.clamps == 2


def test_an_exception_anywhere_in_a_tick_damps_and_the_loop_goes_on() -> None:
    """Fault: a malformed reading (wrong shape) makes the tick raise. The loop must not exit: it damps and keeps
    sending damping commands on every later tick."""

    def bad_shape(r: RobotReading) -> None:
        r.joint_pos = np.zeros(3)

    robot = Tampered(MujocoRobot("go1"), bad_shape, at=3)
    rt = _runtime(robot, _hold)
    rt.run_now()
    timing = rt.loop(ticks=10, freeze_gc=False)
    assert timing["ticks"] == 10 and rt.mode == Mode.DAMP and rt.tick_errors >= 1
    assert "tick raised" in rt.fault
    assert len(robot.sent) == 10 and all(_damping(c) for c in robot.sent[2:])


def test_the_log_records_the_damping_sent_on_a_tick_that_raised(tmp_path: Path) -> None:
    """The telemetry of the tick that crashed must show what went out (damping, mode DAMP), not the previous
    tick's RUN command left in the writer's row."""
    from footfall.deploy.runtime import telemetry_fields
    from footfall.deploy.telemetry import TelemetryWriter, read_log

    def bad_shape(r: RobotReading) -> None:
        r.joint_pos = np.zeros(3)

    tel = TelemetryWriter(tmp_path / "t.fflog", telemetry_fields(3, 0, 12, 12, 4), {"period_s": 0.02})
    robot = Tampered(MujocoRobot("go1"), bad_shape, at=4)
    rt = Runtime(robot, GO1, _hold, RuntimeConfig(control_dt_s=0.02), telemetry=tel, clock=LockstepClock(robot.robot))
    rt.run_now()
    rt.loop(ticks=5, freeze_gc=False)
    tel.close()
    t = read_log(tmp_path / "t.fflog")
    assert list(t.ticks["mode"][:, 0]) == [Mode.RUN] * 3 + [Mode.DAMP] * 2
    assert np.all(t.ticks["kp"][2] > 0) and np.all(t.ticks["kp"][3:] == 0)
    assert np.all(np.isnan(t.ticks["joint_pos"][3]))  # no usable reading on that tick


def test_a_raising_operator_hook_does_not_end_the_loop() -> None:
    """Fault: an operator input handler raises (a bug, a malformed message it did not expect)."""

    def hook(rt: Runtime) -> None:
        raise OverflowError("int too large to convert to float")

    robot = Tampered(MujocoRobot("go1"))
    rt = _runtime(robot, _hold)
    rt.on_tick.append(hook)
    rt.run_now()
    assert rt.loop(ticks=5, freeze_gc=False)["ticks"] == 5
    assert rt.mode == Mode.DAMP and "on_tick hook raised OverflowError" in rt.fault


def test_fault_reasons_reach_the_console_after_the_damping_command() -> None:
    """Every trip names its reason on the console, printed after the tick has sent its damping command."""
    shown: list[tuple[str, int]] = []
    robot = Tampered(MujocoRobot("go1"), lambda r: r.imu_quat.fill(0.0), at=2)
    rt = _runtime(robot, _hold)
    rt.console = lambda m: shown.append((m, len(robot.sent)))
    rt.run_now()
    rt.loop(ticks=4, freeze_gc=False)
    assert len(shown) == 1 and "RUN -> DAMP: IMU quaternion norm 0" in shown[0][0]
    assert _damping(robot.sent[shown[0][1] - 1])


def test_only_an_explicit_reset_leaves_a_latched_fault_and_it_re_arms_the_link() -> None:
    """A fault stays latched however good the readings become; reset works only in DAMP or PASSIVE (never from RUN),
    and it re-arms the robot link (a bridge that latched its own damping needs a new handshake)."""
    robot = Tampered(MujocoRobot("go1"), lambda r: setattr(r, "age_s", 1.0), at=2)
    rt = _runtime(robot, _hold)
    rt.run_now()
    rt.loop(ticks=2, freeze_gc=False)
    assert rt.mode == Mode.DAMP
    robot.edit = None
    rt.loop(ticks=50, freeze_gc=False)
    assert rt.mode == Mode.DAMP and rt.fault is not None
    rt.start()
    rt.run()
    assert rt.mode == Mode.DAMP
    rt.reset()
    assert rt.mode == Mode.PASSIVE and robot.rearmed == 1
    rt.start()
    rt.run()
    rt.loop(ticks=30, freeze_gc=False)
    assert rt.mode == Mode.RUN
    rt.reset()  # in RUN: nothing happens
    assert rt.mode == Mode.RUN and robot.rearmed == 1


def test_request_exit_damps_and_leaves_the_loop() -> None:
    """SIGTERM's path: request_exit (called from a signal handler) damps on the next tick, sends it, and returns."""
    robot = Tampered(MujocoRobot("go1"))
    rt = _runtime(robot, _hold)
    rt.run_now()
    rt.on_tick.append(lambda r: r.request_exit("SIGTERM") if r.tick_count == 5 else None)
    timing = rt.loop(ticks=100, freeze_gc=False)
    assert timing["ticks"] == 6 and rt.mode == Mode.DAMP and rt.fault == "SIGTERM"
    assert _damping(robot.sent[-1])


def test_safety_config_refuses_nonsense() -> None:
    """--safety values that would switch a check off silently (NaN, inf, zero, negative) are refused."""
    for bad in ("max_tilt_deg=nan", "velocity_margin=inf", "max_target_rate_rad_s=0", "max_state_age_s=-1"):
        with pytest.raises(ValueError):
            safety_config([bad])
    with pytest.raises(ValueError, match="whole numbers"):
        safety_config(["max_missed_deadlines=0.5"])
    assert safety_config(["max_missed_deadlines=5"]).max_missed_deadlines == 5


def test_runtime_refuses_a_control_period_outside_1_to_100_ms() -> None:
    """A contract's control period of 1 s (or -0.02 s) used to stretch the stale trip to 3 s."""
    for dt in (1.0, -0.02, 0.0005, math.nan):
        with pytest.raises(ValueError, match="control period"):
            _runtime(MujocoRobot("go1"), _hold, dt=dt)


def test_the_robot_comes_from_a_built_in_name_or_an_explicit_spec(exported: tuple[Path, dict], tmp_path: Path):
    """Attack: a policy file whose contract names its robot by a path (`/tmp/evil/spec.toml`), choosing the spec
    that supplies its own safety limits. Only built-in names are looked up; anything else needs --spec."""
    import dataclasses

    c = OnnxPolicy.load(exported[0]).contract
    assert robot_for(c, None).name == "go1"
    evil = dataclasses.replace(c, robot=dataclasses.replace(c.robot, name=str(tmp_path / "evil.toml")))
    with pytest.raises(ContractMismatchError, match="--spec"):
        robot_for(evil, None)
    assert robot_for(evil, "go1").name == "go1"  # the operator's explicit choice


# ---------------------------------------------------------------- the operator port


class FakeRuntime:
    def __init__(self) -> None:
        self.calls: list[str] = []
        self.command = np.zeros(3)

    def __getattr__(self, name: str):  # start, run, stop, reset
        if name in ("start", "run", "stop", "reset"):
            return lambda: self.calls.append(name)
        raise AttributeError(name)

    def set_velocity(self, v: np.ndarray) -> None:
        self.calls.append("velocity")
        self.command[:] = v


def _send_all(op: UdpOperator, datagrams: list[bytes]) -> None:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for d in datagrams:
            s.sendto(d, op.sock.getsockname())


def _drain(op: UdpOperator, rt: FakeRuntime, n: int) -> None:
    deadline = time.monotonic() + 5
    while op.ok + op.rejected < n and time.monotonic() < deadline:
        op.poll(rt)
        time.sleep(0.001)


def test_operator_datagrams_that_crash_json_parsing_are_counted_and_ignored() -> None:
    """Attack: one local datagram used to end the loop: a 400-digit number (float() overflows), deeply nested JSON
    (RecursionError), bad UTF-8, a huge datagram. Each is counted and ignored."""
    op = UdpOperator(0)
    rt = FakeRuntime()
    bad = [
        b'{"vx": ' + b"9" * 400 + b"}",
        b"[" * 100_000 + b"]" * 100_000,
        b'{"cmd": {"nested": ' * 500 + b"1" + b"}" * 500,
        b"\xff\xfe{",
        b'{"vx": 1e999}',
        b'{"vx": "fast"}',
        b'{"vx": true}',
        b'{"cmd": "selfdestruct"}',
        b'{"cmd": null}',
        b'{"cmd": ["start"]}',
        b"[]",
        b"x" * 1500,
    ]
    _send_all(op, [d[:60000] for d in bad])
    _drain(op, rt, len(bad))
    assert op.ok == 0 and op.rejected == len(bad) and rt.calls == []
    op.close()


def test_keyed_operator_obeys_only_fresh_tagged_commands_but_anyone_may_stop() -> None:
    """Attack: any local process used to be able to reset a latched fault and start motion. With a key, a command
    needs a valid HMAC tag and a fresh, increasing stamp: an untagged, wrongly keyed, replayed or stale one is
    refused. `stop` only ever damps, so it is obeyed from anyone."""
    key = os.urandom(32)
    op = UdpOperator(0, key=key)
    rt = FakeRuntime()
    good = operator_datagram({"cmd": "reset"}, key)
    now = time.time_ns()
    datagrams = [
        operator_datagram({"cmd": "start"}, None),  # untagged
        operator_datagram({"cmd": "start"}, os.urandom(32)),  # wrong key
        operator_datagram({"cmd": "run"}, key, t_ns=now - 10**10),  # 10 s old
        good,
        good,  # replayed
        operator_datagram({"cmd": "stop"}, None),  # anyone may stop
        operator_datagram({"vx": 0.3}, key),
    ]
    _send_all(op, datagrams)
    _drain(op, rt, len(datagrams))
    assert rt.calls == ["reset", "stop", "velocity"], rt.calls
    assert op.bad == {"bad_tag": 2, "stale_time": 1, "replayed": 1}
    op.close()


def test_operator_fuzz_never_raises_and_never_moves_the_robot_without_the_key() -> None:
    """10,000 random and mutated datagrams through a keyed operator port's socket and poll: nothing raises, every
    one is counted, and nothing but `stop` is obeyed (a flipped bit anywhere breaks the tag)."""
    key = os.urandom(32)
    op = UdpOperator(0, key=key, max_per_poll=1000)
    rt = FakeRuntime()
    rng = np.random.default_rng(0)
    seeds = [operator_datagram(m, key) for m in ({"cmd": "start"}, {"cmd": "reset"}, {"vx": 0.5, "yaw_rate": 1})]
    seeds += [b'{"cmd": "run", "t": 1}', b'{"vx": 0.1}']
    n, burst = 10_000, 250
    for k in range(0, n, burst):
        datagrams = []
        for i in range(k, k + burst):
            d = bytearray(seeds[i % len(seeds)])
            kind = rng.integers(5)
            if kind == 0:
                d = bytearray(rng.bytes(int(rng.integers(0, 200))))
            elif kind == 1:
                for _ in range(int(rng.integers(1, 4))):
                    d[int(rng.integers(len(d)))] ^= 1 << int(rng.integers(8))
            elif kind == 2:
                d = d[: int(rng.integers(len(d)))]
            elif kind == 3:
                d[int(rng.integers(len(d))) :] = rng.bytes(int(rng.integers(1, 40)))
            else:  # well-formed, fresh, untagged
                d = bytearray(json.dumps({"cmd": ["start", "run", "reset"][i % 3], "t": time.time_ns()}).encode())
            datagrams.append(bytes(d))
        _send_all(op, datagrams)
        _drain(op, rt, k + burst)
    assert op.ok + op.rejected == n
    assert set(rt.calls) <= {"stop"} and op.ok == len(rt.calls)
    op.close()


# ---------------------------------------------------------------- signals, end to end


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGHUP"])
def test_signal_to_deploy_damps_flushes_the_log_and_exits_cleanly(
    exported: tuple[Path, dict], tmp_path: Path, sig: str
) -> None:
    """Fault: deploy is told to stop (systemd's SIGTERM, a closed SSH session's SIGHUP). It used to die without
    damping or flushing; now it damps, writes the log and exits 0 with its report."""
    from footfall.deploy.telemetry import read_log

    log = tmp_path / "d.fflog"
    cmd = [sys.executable, "-m", "footfall.robots.cli", "deploy", str(exported[0]), "--robot", "sim", "--autostart"]
    cmd += ["--velocity", "0", "0", "0", "--operator-port", "0", "--log", str(log), "--stand-up-s", "0.3"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().startswith("footfall deploy:")  # the banner: the loop is about to run
        time.sleep(1.5)
        proc.send_signal(getattr(signal, sig))
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    report = json.loads(out.strip().splitlines()[-1])
    assert report["final_mode"] == "DAMP" and report["exit"] == sig
    assert f"RUN->DAMP: {sig}" in report["events"]
    t = read_log(log)
    assert not t.truncated and len(t.ticks["mode"]) == report["ticks"]
    assert t.ticks["mode"][-1, 0] == Mode.DAMP and np.all(t.ticks["kp"][-1] == 0)
    assert any(e.get("to") == "DAMP" and e.get("reason") == sig for e in t.events)


# ---------------------------------------------------------------- what a person sees while it runs


def test_status_line_names_mode_command_lateness_and_fault() -> None:
    """The live status line shows the mode, the command, the last second's lateness and the fault's reason."""
    from footfall.deploy.console import status_text

    robot = Tampered(MujocoRobot("go1"), lambda r: r.imu_quat.fill(0.0), at=30)
    rt = _runtime(robot, _hold)
    rt.set_velocity(np.array([0.3, 0.0, -0.2]))
    rt.run_now()
    rt.loop(ticks=20, freeze_gc=False)
    line = status_text(rt)
    assert line.startswith("RUN") and "cmd +0.30 +0.00 -0.20" in line and "tick 20" in line
    assert "lateness p99 0 us" in line and "fault" not in line  # (lockstep: never late)
    rt.loop(ticks=15, freeze_gc=False)
    assert status_text(rt).startswith("DAMP") and "fault: IMU quaternion norm 0" in status_text(rt)


def test_viewer_without_a_display_is_refused_with_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    """--viewer on a machine without a display says so and how to get one, instead of a GLFW traceback."""
    from footfall.deploy.console import ViewerUnavailable, open_viewer
    from footfall.robots.cli import main

    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    robot = MujocoRobot("go1")
    if sys.platform.startswith("linux"):
        with pytest.raises(ViewerUnavailable, match="needs a display"):
            open_viewer(robot.model, robot.data)
    assert main(["deploy", "policy.onnx", "--robot", "udp://127.0.0.1:9", "--viewer"]) == 2  # sim only
