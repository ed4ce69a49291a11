"""Export and the deploy runtime: parity, contract refusal, the state machine, faults on both robot interfaces."""

from __future__ import annotations

import json
import math
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnx
import pytest

from footfall.deploy import udp
from footfall.deploy.interface import JointCommand, RobotReading
from footfall.deploy.mujoco_robot import MujocoRobot, SensorNoise
from footfall.deploy.policy import OnnxPolicy, PolicyController
from footfall.deploy.runtime import LockstepClock, Mode, RealClock, Runtime, RuntimeConfig, telemetry_fields
from footfall.deploy.telemetry import TelemetryWriter, read_log, replay
from footfall.robots import load_robot
from footfall.robots.contract import CONTRACT_METADATA_KEY, ContractMismatchError, PolicyContract

ROOT = Path(__file__).resolve().parents[1]


def test_export_parity_checker_and_contract(exported: tuple[Path, dict]) -> None:
    path, report = exported
    assert report["parity_samples"] == 10_000
    assert report["parity_max_abs_error"] <= 1e-5
    model = onnx.load(str(path))
    onnx.checker.check_model(model)
    meta = {p.key: p.value for p in model.metadata_props}
    contract = PolicyContract.from_json(meta[CONTRACT_METADATA_KEY])
    assert contract.robot.joint_names == load_robot("go1").joint_names
    assert contract.observation_size == report["observation_size"] and contract.timing.gait_period_s == 0.5
    assert contract.normalizer.folded


def _with_contract(path: Path, edit) -> bytes:  # noqa: ANN001
    model = onnx.load(str(path))
    for p in model.metadata_props:
        if p.key == CONTRACT_METADATA_KEY:
            d = json.loads(p.value)
            edit(d)
            p.value = json.dumps(d)
    return model.SerializeToString()


def test_contract_refusals_name_the_difference(exported: tuple[Path, dict]) -> None:
    path, _ = exported
    go1 = load_robot("go1")
    OnnxPolicy.load(path).check(go1, control_dt_s=0.02)  # the matching robot passes

    def permute(d: dict) -> None:
        j = d["robot"]["joint_names"]
        j[0], j[3] = j[3], j[0]

    with pytest.raises(ContractMismatchError, match="joint order differs at index 0"):
        OnnxPolicy(_with_contract(path, permute)).check(go1)

    def missing(d: dict) -> None:
        d["robot"]["joint_names"][5] = "FL_ankle_joint"

    with pytest.raises(ContractMismatchError, match=r"joint\(s\) \['FL_ankle_joint'\] of the policy are missing"):
        OnnxPolicy(_with_contract(path, missing)).check(go1)

    def obs_size(d: dict) -> None:
        d["observations"][0]["size"] = 4  # gyro is 3 wide

    with pytest.raises(ContractMismatchError, match="inputs but its contract describes|size"):
        OnnxPolicy(_with_contract(path, obs_size)).check(go1)

    with pytest.raises(ContractMismatchError, match="control period: policy trained at 0.02 s, loop runs at 0.01 s"):
        OnnxPolicy.load(path).check(go1, control_dt_s=0.01)

    with pytest.raises(ContractMismatchError, match="kp of"):
        OnnxPolicy.load(path).check(load_robot(ROOT / "tests/specs/reference_go1.toml")) if (
            ROOT / "../shared/reference-models/unitree_go1.xml"
        ).exists() else pytest.skip("reference models absent")


def test_deploy_imports_neither_torch_nor_gymnasium() -> None:
    code = (
        "import sys\n"
        "import footfall.deploy.main, footfall.deploy.sim2sim, footfall.deploy.udp, footfall.deploy.telemetry\n"
        "bad = [m for m in ('torch', 'gymnasium') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# ---------------------------------------------------------------- runtime on the MuJoCo robot (lockstep)


class Faulty:
    """Wraps a robot: from tick `at`, reads go wrong in the way `kind` says."""

    def __init__(self, robot: MujocoRobot, kind: str, at: int):
        self.robot, self.kind, self.at, self.n = robot, kind, at, 0
        self.num_joints = robot.num_joints
        self.frozen: RobotReading | None = None

    def read(self) -> RobotReading | None:
        self.n += 1
        r = self.robot.read()
        if self.n < self.at:
            self.prev = r
            return r
        if self.kind == "nan":
            r.gyro[1] = math.nan
        elif self.kind == "stale":
            return self.prev  # the robot stopped sending: the last reading repeats
        elif self.kind == "drop":
            return None
        return r

    def write(self, cmd: JointCommand) -> None:
        self.robot.write(cmd)

    def advance_to(self, t: float) -> None:
        self.robot.advance_to(t)

    def time_s(self) -> float:
        return self.robot.time_s()

    def close(self) -> None: ...


def _runtime(exported_path: Path, robot, controller=None) -> Runtime:  # noqa: ANN001
    spec = load_robot("go1")
    policy = OnnxPolicy.load(exported_path)
    ctl = controller or PolicyController(policy, spec)
    return Runtime(robot, spec, ctl, RuntimeConfig(control_dt_s=0.02, stand_up_s=0.5), clock=LockstepClock(robot))


def test_imu_tilt_noise_turns_the_orientation_by_the_configured_angle() -> None:
    """SensorNoise.imu_tilt rotates the IMU quaternion by N(0, sigma) per axis: unit norm, unbiased, and the angle's
    RMS is sigma * sqrt(3); without it the reading is the simulator's."""
    clean, noisy = MujocoRobot("go1"), MujocoRobot("go1", noise=SensorNoise(imu_tilt=0.05), seed=1)
    for r in (clean, noisy):
        r.reset(yaw=0.7)
    q = clean.read().imu_quat
    np.testing.assert_array_equal(q, clean.read().imu_quat)
    w, x, y, z = q
    conj = np.array([w, -x, -y, -z])
    rotvecs = []
    for _ in range(2000):
        n = noisy.read().imu_quat
        assert abs(np.linalg.norm(n) - 1.0) < 1e-12
        dw = conj[0] * n[0] - conj[1:] @ n[1:]  # q^-1 * n: the body-frame error rotation
        dv = conj[0] * n[1:] + n[0] * conj[1:] + np.cross(conj[1:], n[1:])
        angle = 2 * math.atan2(np.linalg.norm(dv), dw)
        rotvecs.append(angle * dv / max(np.linalg.norm(dv), 1e-15))
    rotvecs = np.array(rotvecs)
    rms = float(np.sqrt(np.mean(np.sum(rotvecs**2, axis=1))))
    assert abs(rms - 0.05 * math.sqrt(3)) < 0.05 * math.sqrt(3) * 0.05, rms
    np.testing.assert_allclose(rotvecs.std(axis=0), 0.05, rtol=0.1)  # the same spread on every body axis
    assert np.all(np.abs(rotvecs.mean(axis=0)) < 0.005)


def test_state_machine_stands_up_runs_and_damps(exported: tuple[Path, dict]) -> None:
    sim = MujocoRobot("go1")
    rt = _runtime(exported[0], sim)
    rt.loop(ticks=5, freeze_gc=False)
    assert rt.mode == Mode.PASSIVE and np.all(rt.last_cmd.kp == 0)
    rt.start()
    rt.run()  # requested during the stand-up: RUN follows it
    rt.loop(ticks=10, freeze_gc=False)
    assert rt.mode == Mode.STAND_UP
    rt.loop(ticks=20, freeze_gc=False)
    assert rt.mode == Mode.RUN
    assert np.all(rt.last_cmd.kp > 0)
    rt.stop()
    rt.loop(ticks=1, freeze_gc=False)
    assert rt.mode == Mode.DAMP and np.all(rt.last_cmd.kp == 0) and np.all(rt.last_cmd.kd > 0)
    rt.start()  # latched: start does nothing until reset
    assert rt.mode == Mode.DAMP
    rt.reset()
    assert rt.mode == Mode.PASSIVE and rt.fault is None
    assert [e["to"] for e in rt.events] == ["STAND_UP", "RUN", "DAMP", "PASSIVE"]


@pytest.mark.parametrize(
    "kind,reason,within",
    [("nan", "non-finite sensor value in gyro", 1), ("stale", "stale", 3), ("drop", "stale|no state", 3)],
)
def test_faulty_readings_damp_within_three_periods(exported: tuple[Path, dict], kind: str, reason: str, within: int):
    robot = Faulty(MujocoRobot("go1"), kind, at=10)
    rt = _runtime(exported[0], robot)
    rt.run_now()
    rt.loop(ticks=9 + within, freeze_gc=False)
    assert rt.mode == Mode.DAMP, f"{kind}: still {rt.mode.name} after {within} bad periods"
    assert re.search(reason, rt.fault)
    rt.loop(ticks=5, freeze_gc=False)  # keeps running, damped
    assert rt.mode == Mode.DAMP and np.all(rt.last_cmd.kp == 0)


def test_short_gaps_in_the_state_do_not_trip(exported: tuple[Path, dict]) -> None:
    class Gappy(Faulty):
        def read(self) -> RobotReading | None:
            self.n += 1
            return None if self.n % 3 == 0 else self.robot.read()  # every third period missing

    rt = _runtime(exported[0], Gappy(MujocoRobot("go1"), "gap", 0))
    rt.run_now()
    rt.loop(ticks=30, freeze_gc=False)
    assert rt.mode == Mode.RUN


def test_a_raising_or_nan_controller_damps(exported: tuple[Path, dict]) -> None:
    def boom(reading, command):  # noqa: ANN001
        raise RuntimeError("bug in the controller")

    rt = _runtime(exported[0], MujocoRobot("go1"), controller=boom)
    rt.run_now()
    rt.loop(ticks=3, freeze_gc=False)
    assert rt.mode == Mode.DAMP and "controller raised RuntimeError: bug in the controller" in rt.fault

    def nan(reading, command):  # noqa: ANN001
        z = np.zeros(12)
        return JointCommand(z + math.nan, z, z + 30, z + 1, z)

    rt = _runtime(exported[0], MujocoRobot("go1"), controller=nan)
    rt.run_now()
    rt.loop(ticks=1, freeze_gc=False)
    assert rt.mode == Mode.DAMP and "not finite" in rt.fault


def test_safety_clamps_targets_to_limits_and_step_size(exported: tuple[Path, dict]) -> None:
    spec = load_robot("go1")

    def wild(reading, command):  # noqa: ANN001
        z = np.zeros(12)
        return JointCommand(np.full(12, 100.0), z, np.asarray(spec.kp), np.asarray(spec.kd), np.full(12, 1e3))

    rt = _runtime(exported[0], MujocoRobot("go1"), controller=wild)
    rt.run_now()
    rt.loop(ticks=2, freeze_gc=False)
    hi = np.array([h for _, h in spec.position_limits])
    assert rt.mode == Mode.RUN
    assert np.all(rt.last_cmd.q <= hi + 1e-12) and np.all(np.abs(rt.last_cmd.tau) <= np.asarray(spec.torque_limits))
    assert rt.safety.clamps >= 2


def test_telemetry_log_replays_exactly_and_survives_truncation(exported: tuple[Path, dict], tmp_path: Path) -> None:
    path = exported[0]
    policy = OnnxPolicy.load(path)
    c = policy.contract
    sim = MujocoRobot("go1")
    log = tmp_path / "run.fflog"
    tel = TelemetryWriter(log, telemetry_fields(3, c.observation_size, c.action_size, 12), {"period_s": 0.02})
    spec = load_robot("go1")
    rt = Runtime(
        sim,
        spec,
        PolicyController(policy, spec),
        RuntimeConfig(stand_up_s=0.2),
        clock=LockstepClock(sim),
        telemetry=tel,
        obs_size=c.observation_size,
    )
    rt.set_velocity(np.array([0.5, 0.0, 0.0]))
    rt.start()  # stand up, then run: the tick that enters RUN sends the stand-up pose, not a policy action
    rt.run()
    rt.loop(ticks=50, freeze_gc=False)
    stats = tel.close()
    assert stats["ticks_written"] == 50 and stats["error"] is None and stats["dropped_ticks"] == 0
    t = read_log(log)
    assert len(t.ticks["mode"]) == 50 and not t.truncated and t.closed
    assert [e["to"] for e in t.events if e["event"] == "mode"] == ["STAND_UP", "RUN"]
    ran = t.ticks["ran"][:, 0] == 1
    assert np.all(t.ticks["mode"][ran] == Mode.RUN) and np.any(t.ticks["action"] != 0)
    assert (t.ticks["mode"][:, 0] == Mode.RUN).sum() == ran.sum() + 1
    r = replay(log, path)
    assert r["run_ticks"] == ran.sum() >= 35 and r["max_action_diff"] == 0.0
    data = log.read_bytes()
    cut = tmp_path / "cut.fflog"
    last = data.rfind(b'{"event": "closed"') - 9  # the clean-close record (9-byte chunk head) follows the last tick
    cut.write_bytes(data[: last - 100])  # a crash mid-record
    t2 = read_log(cut)
    assert t2.truncated and len(t2.ticks["mode"]) == 49 and not t2.closed
    other = tmp_path / "other.fflog"  # a log recorded with another policy: a clear error, not a crash
    w = TelemetryWriter(other, [("mode", 1), ("obs", c.observation_size + 1), ("action", c.action_size)], {})
    w.commit()
    w.close()
    with pytest.raises(ValueError, match="recorded with another policy"):
        replay(other, path)


def test_operator_commands_are_clipped_to_the_trained_ranges(exported: tuple[Path, dict]) -> None:
    sim = MujocoRobot("go1")
    spec = load_robot("go1")
    policy = OnnxPolicy.load(exported[0])
    ranges = tuple(policy.contract.commands.ranges)
    rt = Runtime(
        sim, spec, PolicyController(policy, spec), RuntimeConfig(command_ranges=ranges), clock=LockstepClock(sim)
    )
    rt.set_velocity(np.array([5.0, -3.0, 0.3]))  # a held-down key
    assert rt.command.tolist() == [ranges[0][1], ranges[1][0], 0.3]


def test_lockstep_ticks_advance_one_period_each(exported: tuple[Path, dict]) -> None:
    """Ticking one period at a time (as sim2sim and compare do) must step the robot, not tick twice per instant."""
    sim = MujocoRobot("go1")
    rt = _runtime(exported[0], sim)
    rt.run_now()
    for k in range(1, 6):
        rt.loop(ticks=1, freeze_gc=False)
        assert sim.time_s() == pytest.approx(0.02 * k, abs=1e-9)
    rt.loop(ticks=3, freeze_gc=False)
    assert sim.time_s() == pytest.approx(0.16, abs=1e-9)
    assert rt.mode == Mode.RUN and rt.fault is None


def test_sim2sim_reports_the_promised_keys(exported: tuple[Path, dict]) -> None:
    from footfall.deploy.sim2sim import Sim2SimConfig, sim2sim

    cfg = Sim2SimConfig(episodes=2, episode_s=2.0, segment_s=1.0)
    r = sim2sim(exported[0], cfg=cfg, reference_rmse=0.3, progress=False)
    assert {"lin_vel_rmse", "falls", "episodes", "torque_saturation", "pass"} <= set(r)
    assert r["episodes"] == 2 and 0 <= r["torque_saturation"] <= 1
    assert not any("stale" in f for f in r["fall_reasons"]), r["fall_reasons"]


def _renamed_go1(tmp_path: Path, with_map: bool) -> Path:
    """footfall's go1 with every joint renamed (fr_hip, ...), and a spec file that maps them back, or not."""
    src = ROOT / "assets" / "go1"
    tmp_path.mkdir()
    spec = load_robot("go1")
    new = {n: n.replace("_joint", "").lower() for n in spec.joint_names}
    xml = (src / "go1.xml").read_text()
    for old, nn in new.items():
        xml = xml.replace(f'"{old}"', f'"{nn}"')
    (tmp_path / "go1.xml").write_text(xml)
    toml = (src / "spec.toml").read_text().replace('name = "go1"', 'name = "my_go1"')
    for old, nn in new.items():
        toml = toml.replace(f'"{old}"', f'"{nn}"')
    if with_map:
        toml += "policy_joint_names = [" + ", ".join(f'"{n}"' for n in spec.joint_names) + "]\n"
    (tmp_path / "spec.toml").write_text(toml)
    return tmp_path / "spec.toml"


def test_policy_joint_names_map_a_renamed_model(exported: tuple[Path, dict], tmp_path: Path) -> None:
    policy = OnnxPolicy.load(exported[0])
    unmapped = load_robot(_renamed_go1(tmp_path / "a", with_map=False))
    with pytest.raises(ContractMismatchError, match="FR_hip_joint"):
        policy.check(unmapped)
    mapped = load_robot(_renamed_go1(tmp_path / "b", with_map=True))
    policy.check(mapped)  # the map makes it the same robot
    sim = MujocoRobot(mapped)
    rt = _runtime(exported[0], sim)
    rt.run_now()
    rt.loop(ticks=10, freeze_gc=False)
    assert rt.mode == Mode.RUN and sim.time_s() == pytest.approx(0.2, abs=1e-9)


# ---------------------------------------------------------------- UDP: protocol, bridge process, faults


def test_protocol_round_trip_and_rejections() -> None:
    key = bytes(range(32))
    v = np.arange(3 * 12 + 10 + 4, dtype=float)
    pkt = udp.encode(udp.STATE, key, 12, 4, v, session=3, seq=7, stamp=1.5)
    p = udp.decode(pkt, key)
    assert (p.kind, p.session, p.seq, p.stamp, p.nj, p.nf) == (udp.STATE, 3, 7, 1.5, 12, 4)
    assert np.array_equal(p.values(), v) and len(pkt) == 52 + 4 * len(v) + 32
    bad = bytearray(pkt)
    bad[60] ^= 0xFF
    for packet, reason in (
        (bytes(bad), "bad_tag"),
        (b"XXXX" + pkt[4:], "bad_magic"),
        (pkt[:4] + bytes([1]) + pkt[5:], "bad_version"),
        (pkt[:-5], "bad_size"),
        (b"\x00" * 3, "bad_size"),
    ):
        with pytest.raises(udp.ProtocolError) as e:
            udp.decode(packet, key)
        assert e.value.reason == reason
    with pytest.raises(udp.ProtocolError) as e:
        udp.decode(pkt, bytes(32))  # another key
    assert e.value.reason == "bad_tag"


def _bridge(port: int, *extra: str, duration: float = 6.0, key: Path | None = None) -> subprocess.Popen:
    p = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from footfall.deploy.udp import bridge_main; sys.exit(bridge_main())",
            "--port",
            str(port),
            "--duration",
            str(duration),
            *(("--key", str(key)) if key is not None else ()),
            *extra,
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert "footfall bridge" in p.stdout.readline()
    return p


def _udp_runtime(exported_path: Path, port: int, key: bytes | None = None) -> tuple[Runtime, udp.UdpRobot]:
    spec = load_robot("go1")
    controller = PolicyController(OnnxPolicy.load(exported_path), spec)  # (before the handshake: no pause after it)
    robot = udp.UdpRobot("127.0.0.1", port, 12, 4, key)
    damping = JointCommand.damping(12, np.asarray(spec.kd))
    t_end = time.perf_counter() + 5
    while robot.read() is None:  # the handshake: HELLO, WELCOME, then the first COMMAND makes the session
        assert time.perf_counter() < t_end, f"no state from the bridge: {robot.counters}"
        robot.write(damping)
        time.sleep(0.01)
    assert robot.session_active
    rt = Runtime(robot, spec, controller, RuntimeConfig(control_dt_s=0.02, command_hold=True), clock=RealClock())
    return rt, robot


@pytest.mark.parametrize(
    "faults,reason",
    [
        ((), None),
        (("--drop-rate", "0.3"), None),
        (("--nan-after", "1.5"), "non-finite sensor value in joint_vel"),
        (("--pause", "1.5", "0.2"), "stale"),
        (("--freeze-after", "1.5"), "stale"),
    ],
    ids=["clean", "dropped-packets", "nan-sensor", "delayed-state", "silent-bridge"],
)
def test_udp_robot_through_a_bridge_process(
    exported: tuple[Path, dict], tmp_path: Path, faults: tuple[str, ...], reason: str | None
) -> None:
    from footfall.deploy.keys import generate_key

    port = udp.free_port()
    key = generate_key(tmp_path / "robot.key")
    bridge = _bridge(port, *faults, duration=5.0, key=tmp_path / "robot.key")
    try:
        rt, robot = _udp_runtime(exported[0], port, key)
        rt.run_now()
        rt.loop(duration_s=2.5, freeze_gc=False)  # (a full collection first could outlast the bridge's timeout)
        if reason is None:
            assert rt.mode == Mode.RUN, rt.fault
        else:
            assert rt.mode == Mode.DAMP and re.search(reason, rt.fault), rt.fault
        assert not robot.bridge_latched
        robot.close()
        out, _ = bridge.communicate(timeout=10)
        report = json.loads(out.strip().splitlines()[-1])
        assert report["packets_ok"] > 50
        assert report["sessions_established"] >= 1 and report["unsafe_commands"] == 0 and not report["keyless"]
        assert not {"bad_tag", "wrong_source", "replayed", "too_old"} & report["packets_bad"].keys()
    finally:
        bridge.kill()


def test_killed_bridge_damps_the_runtime_without_a_crash(exported: tuple[Path, dict], tmp_path: Path) -> None:
    from footfall.deploy.keys import generate_key

    port = udp.free_port()
    key = generate_key(tmp_path / "robot.key")
    bridge = _bridge(port, duration=20.0, key=tmp_path / "robot.key")
    rt, robot = _udp_runtime(exported[0], port, key)
    rt.run_now()
    rt.loop(duration_s=0.5, freeze_gc=False)  # (no full collection between handshake and loop: see above)
    assert rt.mode == Mode.RUN, rt.fault
    bridge.kill()
    bridge.wait()
    rt.loop(duration_s=0.5, freeze_gc=False)
    assert rt.mode == Mode.DAMP and "stale" in rt.fault
    trip = next(e for e in rt.events if e["to"] == "DAMP")["tick"]
    assert trip - 25 <= 4  # within 3 periods (+1 for the kill landing mid-period) of the last live tick
    robot.close()


def test_bridge_ignores_and_counts_bad_packets_and_listens_on_loopback(tmp_path: Path) -> None:
    from footfall.deploy.keys import generate_key

    port = udp.free_port()
    key = generate_key(tmp_path / "robot.key")
    bridge = _bridge(port, duration=1.5, key=tmp_path / "robot.key")
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(1.0)
    v1 = b"FFUP" + bytes([1, 3]) + bytes(22)  # a version-1 HELLO
    hello = udp.encode(udp.HELLO, key, 12, 4, bytes(16), stamp=time.monotonic())
    forged = udp.encode(udp.HELLO, bytes(32), 12, 4, bytes(16), stamp=time.monotonic())
    for packet in (b"garbage", v1, forged, hello):
        s.sendto(packet, ("127.0.0.1", port))
    welcome = udp.decode(s.recv(4096), key)  # only the good HELLO is answered
    assert welcome.kind == udp.WELCOME and welcome.payload[:16] == bytes(16)
    out, _ = bridge.communicate(timeout=10)
    report = json.loads(out.strip().splitlines()[-1])
    assert report["packets_ok"] == 1 and report["sessions_established"] == 0  # no COMMAND: no session
    assert report["packets_bad"] == {"bad_magic": 1, "bad_version": 1, "bad_tag": 1}
    import inspect

    assert inspect.signature(udp.run_bridge).parameters["host"].default == "127.0.0.1"


def test_bridge_damps_when_commands_stop_after_its_command_timeout() -> None:
    port = udp.free_port()
    bridge = _bridge(port, "--command-timeout", "1.0", duration=3.0)  # keyless: loopback only
    robot = udp.UdpRobot("127.0.0.1", port, 12, 4, None)
    cmd = JointCommand.damping(12, 0.5)
    t_end = time.perf_counter() + 5
    while not robot.session_active:
        assert time.perf_counter() < t_end, f"no session: {robot.counters}"
        robot.write(cmd)
        robot.read()
        time.sleep(0.01)
    for _ in range(2):  # two commands 0.2 s apart: the default 0.1 s timeout would damp between them
        robot.write(cmd)
        time.sleep(0.2)
    t_end = time.perf_counter() + 1.2
    while time.perf_counter() < t_end:  # reading (not writing) keeps the STATEs fresh
        robot.read()
        time.sleep(0.01)
    latched = robot.bridge_latched
    robot.close()
    out, _ = bridge.communicate(timeout=10)
    report = json.loads(out.strip().splitlines()[-1])
    assert report["command_timeouts"] == 1 and report["latched_damps"] == 1  # once, after the last command
    assert report["latched"] and report["latch_reason"] == "command_timeout" and report["keyless"]
    assert latched  # the STATEs said so


def test_arm_runtime_observes_what_the_env_trained_on(tmp_path: Path) -> None:
    """A delta-action arm policy reads its own joint target (joint_target_rel): the deploy controller must build
    the observation the env builds, step for step, and send the target the env applies."""
    from footfall.envs.randomization import DomainRandomization
    from footfall.envs.tasks import make_task
    from footfall.training.export import export_run
    from footfall.training.runner import RunConfig
    from footfall.training.sac import SACConfig
    from footfall.training.train import train

    sac = SACConfig(hidden=(32,), batch_size=16, learning_starts=20, steps_per_iteration=10, utd_ratio=0.5)
    cfg = RunConfig(task="footfall/Arm-Reach-v1", algo="sac", num_envs=2, max_iterations=2, torch_threads=1, sac=sac)
    train(cfg, tmp_path / "run", progress=False)
    export_run(tmp_path / "run", tmp_path / "arm.onnx", parity_samples=100, evaluate=False)
    policy = OnnxPolicy.load(tmp_path / "arm.onnx")
    assert "joint_target_rel" in [t.name for t in policy.contract.observations]
    ctrl = PolicyController(policy, load_robot("panda"))
    env = make_task("footfall/Arm-Reach-v1", num_envs=1, seed=3, randomization=DomainRandomization.off())
    obs, _ = env.reset(seed=3)

    def reading(k: int) -> RobotReading:  # what the env's sensors measured (as a real robot reports them)
        seen = env.sim.sensor_out[0, -1]
        return RobotReading(k, 0.02 * k, seen[env.layout.joint_pos].copy(), seen[env.layout.joint_vel].copy())

    ctrl.reset(reading(0))
    moved = 0.0
    for k in range(1, 8):
        cmd = ctrl(reading(k), env.command[0])
        np.testing.assert_allclose(ctrl.last_obs, obs[0], atol=1e-6)
        obs, *_ = env.step(ctrl.action[None])
        np.testing.assert_allclose(cmd.q, env.target[0], atol=1e-9)
        moved = max(moved, float(np.abs(env.target[0] - env.sim.qpos[0, env.qadr]).max()))
    assert moved > 1e-4  # the target runs ahead of the encoders, so the term carries information they lack


def test_deploy_cli_passes_safety_overrides_to_the_safety_layer(
    exported: tuple[Path, dict], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from footfall.robots.cli import main

    base = ["deploy", str(exported[0]), "--autostart", "--velocity", "0", "0", "0", "--operator-port", "0"]
    base += ["--duration", "1", "--log", str(tmp_path / "d.fflog"), "--stand-up-s", "0.5"]
    assert main([*base, "--safety", "velocity_margin=1e-4"]) == 0  # any joint motion now trips
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["final_mode"] == "DAMP" and "x its limit" in report["fault"]
    assert main([*base, "--safety", "tilt=30"]) == 2
    assert "max_tilt_deg" in capsys.readouterr().err
