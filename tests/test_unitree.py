"""Unitree SDK2 over DDS (deploy/unitree): the messages against Unitree's IDL, the CRC against the published
algorithm, and a desk round trip: the bridge in a subprocess on the loopback interface, a UnitreeRobot here.

Every DDS test uses a random domain id, so runs on one machine at the same time do not hear each other; traffic
stays on `lo` (cyclonedds_config("lo")); each wait is bounded. Tests that need CycloneDDS skip without it.
"""

from __future__ import annotations

import os
import random
import select
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

from footfall.deploy.interface import JointCommand
from footfall.deploy.udp import BridgeLimits
from footfall.deploy.unitree import crc
from footfall.robots import load_robot

ROOT = Path(__file__).resolve().parents[1]
try:
    import cyclonedds  # noqa: F401

    HAVE_DDS = True
except ImportError:
    HAVE_DDS = False
needs_dds = pytest.mark.skipif(not HAVE_DDS, reason='CycloneDDS not installed (pip install "footfall[unitree]")')
SPEC = load_robot("go1")
NJ, NF = SPEC.num_joints, len(SPEC.feet)


def domain_id() -> int:
    return random.SystemRandom().randrange(100, 230)


def stand(offset: dict[int, float] | None = None, kp_scale: float = 1.0) -> JointCommand:
    q = np.asarray(SPEC.default_pose, dtype=float).copy()
    for j, d in (offset or {}).items():
        q[j] += d
    return JointCommand(q, np.zeros(NJ), kp_scale * np.asarray(SPEC.kp), np.asarray(SPEC.kd), np.zeros(NJ))


def lowcmd(cmd: JointCommand, good_crc: bool = True):  # noqa: ANN201
    """A LowCmd_ for `cmd` (motor j = joint j, servo mode), its CRC set, or set and then broken."""
    from footfall.deploy.unitree import msgs

    m = msgs.low_cmd()
    for j in range(NJ):
        mc = m.motor_cmd[j]
        mc.mode, mc.q, mc.dq, mc.kp, mc.kd, mc.tau = 1, cmd.q[j], cmd.dq[j], cmd.kp[j], cmd.kd[j], cmd.tau[j]
    crc.set_crc(m)
    if not good_crc:
        m.crc ^= 1
    return m


def wait_for(pred, timeout_s: float, step_s: float = 0.01):  # noqa: ANN001, ANN201
    t_end = time.monotonic() + timeout_s
    while time.monotonic() < t_end:
        got = pred()
        if got:
            return got
        time.sleep(step_s)
    return pred()


# ---------------------------------------------------------------------------------------------- without CycloneDDS


def test_deploy_imports_without_cyclonedds_and_the_error_says_how_to_install():
    """`import footfall.deploy` (and the unitree modules that need no DDS) work with CycloneDDS unavailable; making
    a DDS object then fails with the install command. No torch, no gymnasium either."""
    code = (
        "import sys; sys.modules['cyclonedds'] = None\n"
        "import footfall.deploy, footfall.deploy.main, footfall.deploy.unitree.crc\n"
        "import footfall.deploy.unitree.robot as r, footfall.deploy.unitree.bridge\n"
        "assert not any(m in sys.modules for m in ('torch', 'gymnasium')), 'heavy import'\n"
        "try:\n"
        "    r.UnitreeRobot('lo', 12, 4)\n"
        "except ImportError as e:\n"
        "    print('ERR', e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert 'pip install "footfall[unitree]"' in out.stdout


def test_crc_vectors_from_the_published_algorithm():
    """crc32_core as published (bit by bit, poly 0x04C11DB7, init 0xFFFFFFFF, MSB first, no final XOR) and the fast
    zlib form agree; the values are recorded so that a change to either shows."""
    assert crc.crc32_mpeg2(b"123456789") == 0x0376E6E7  # the CRC-32/MPEG-2 catalogue check value
    vectors = {
        (): 0xFFFFFFFF,
        (0,): 0xC704DD7B,
        (0x31323334, 0x35363738): 0x49E3C2FB,  # = CRC-32/MPEG-2 of b"12345678": words go in most significant byte first
        tuple(range(1, 9)): 0x0A69FA44,
        (0xFFFFFFFF,) * 3: 0xAE006622,
    }
    for words, want in vectors.items():
        assert crc.crc32_core_reference(words) == want, words
        assert crc.crc32_core(words) == want, words
    rng = np.random.default_rng(7)
    for n in (1, 5, 202, 294):  # 202 words: a LowCmd_ image without its crc; 294: a LowState_'s
        w = rng.integers(0, 2**32, n, dtype=np.uint64)
        assert crc.crc32_core(w) == crc.crc32_core_reference(w)
    image = np.arange(1, 11, dtype="<u4").tobytes()  # the last word is the crc member: left out
    assert crc.image_crc(image) == crc.crc32_core_reference(range(1, 10))


def test_motor_index_defaults_and_checks_and_the_interface_config(tmp_path):
    """Go1/Go2 (12-joint quadrupeds, FR FL RR RL x hip thigh calf) map joint j to motor j; anything else must say
    which motor drives which joint (read from the spec file's `motor_index` when it has one); the CycloneDDS
    configuration names the interface, with unicast discovery on lo."""

    from footfall.deploy.unitree.robot import check_held, cyclonedds_config, motor_index_for, parse_url

    for name in ("go1", "go2"):
        assert motor_index_for(load_robot(name)) == list(range(12))
    with pytest.raises(ValueError, match="needs a motor_index"):
        motor_index_for(load_robot("h1"))
    h1_legs = [7, 3, 4, 5, 10, 8, 0, 1, 2, 11]  # unitree_sdk2 example/h1: JointIndex of the spec's leg joints
    assert motor_index_for(load_robot("h1"), h1_legs) == h1_legs
    # the spec file's motor_index (RobotSpec checks it: distinct, 0..19, one per joint)
    from footfall.robots.spec import RobotSpecError

    h1 = load_robot("h1")
    text = h1.spec_path.read_text().replace('mjcf = "h1.xml"', f'mjcf = "{h1.mjcf_path}"')
    for bad in ("[7, 3, 4]", "[7, 3, 4, 5, 10, 8, 0, 1, 2, 7]", "[7, 3, 4, 5, 10, 8, 0, 1, 2, 20]"):
        (tmp_path / "bad.toml").write_text(text + f"motor_index = {bad}\n")
        with pytest.raises(RobotSpecError, match="motor_index"):
            load_robot(tmp_path / "bad.toml")
    (tmp_path / "h1.toml").write_text(text + f"motor_index = {h1_legs}\n")
    assert motor_index_for(load_robot(tmp_path / "h1.toml")) == h1_legs
    for bad in ([0] * 12, list(range(11)), list(range(9, 21)), [0.5] + list(range(1, 12))):
        with pytest.raises(ValueError):
            motor_index_for(SPEC, bad)
    assert check_held({12: (0.1, 20, 1)}) == {12: (0.1, 20.0, 1.0)}
    for bad in ({20: (0, 1, 1)}, {12: (float("nan"), 1, 1)}, {12: (0, -1, 1)}):
        with pytest.raises(ValueError):
            check_held(bad)
    assert parse_url("unitree://eth0") == "eth0" and parse_url("unitree://192.168.123.99/") == "192.168.123.99"
    for bad in ("unitree://", "udp://1.2.3.4:5", 'unitree://eth0"/><x', "unitree://a b"):
        with pytest.raises(ValueError):
            parse_url(bad)
    assert '<NetworkInterface address="192.168.123.99"' in cyclonedds_config("192.168.123.99")
    lo = cyclonedds_config("lo")
    assert '<NetworkInterface name="lo"' in lo and '<Peer address="127.0.0.1"/>' in lo


# ---------------------------------------------------------------------------------------------- messages


@needs_dds
def test_type_names_and_c_struct_layout_match_the_idl():
    from footfall.deploy.unitree import msgs

    for cls in msgs.MESSAGES:
        assert msgs.typename(cls) == f"unitree_go::msg::dds_::{cls.__name__}"
    # C struct sizes (natural alignment) by hand from the IDL: MotorCmd_ = u8 + 3 pad + 5 f32 + 3 u32 = 36;
    # MotorState_ = u8 + 3 + 7 f32 + u8 + 3 + u32 + 2 u32 = 48; IMUState_ = 13 f32 + u8 -> 53, padded to 56;
    # BmsCmd_ = 4; BmsState_ = 4 u8 + i32 + u16 + 2 u8 + 2 u8 + 15 u16 = 44
    sizes = {"MotorCmd_": 36, "MotorState_": 48, "IMUState_": 56, "BmsCmd_": 4, "BmsState_": 44}
    # LowCmd_: 2+1+1 + 8 + 8 + 2 (+2 pad) = 24, 20 x 36 = 720 -> 744, bms 4 -> 748, 40 + 12 + 2 + 1 (+1) -> 804,
    # reserve 4, crc 4 = 812 (unitree_sdk2_python utils/crc.py packs 812 bytes for it, 1180 for LowState_)
    sizes["LowCmd_"] = 812
    # LowState_: 24, imu 56 -> 80, 20 x 48 -> 1040, bms 44 -> 1084, 2 x 8 -> 1100, tick -> 1104, 40 -> 1144,
    # bit_flag (+3) -> 1148, adc_reel -> 1152, 2 u8 (+2) -> 1156, 2 f32 -> 1164, 4 u16 -> 1172, reserve, crc = 1180
    sizes["LowState_"] = 1180
    for cls in msgs.MESSAGES:
        assert msgs.native_layout(cls).size == sizes[cls.__name__], cls.__name__
    cmd = msgs.native_layout(msgs.LowCmd_).offsets
    want = {"motor_cmd": 24, "bms_cmd": 744, "wireless_remote": 748, "led": 788, "fan": 800, "gpio": 802}
    assert {k: cmd[k] for k in want} == want and (cmd["reserve"], cmd["crc"]) == (804, 808)
    st = msgs.native_layout(msgs.LowState_).offsets
    want = {"imu_state": 24, "motor_state": 80, "bms_state": 1040, "foot_force": 1084, "tick": 1100}
    want.update(bit_flag=1144, adc_reel=1148, power_v=1156, fan_frequency=1164, reserve=1172, crc=1176)
    assert {k: st[k] for k in want} == want
    # the CRC of a message covers its image but the last word (crc itself), as the SDK's (sizeof >> 2) - 1 words
    lc = msgs.low_cmd()
    for j in range(12):
        mc = lc.motor_cmd[j]
        mc.mode, mc.q, mc.dq, mc.kp, mc.kd, mc.tau = 1, 0.125 * j, 0.0, 20.0, 0.5, -0.25 * j
    words = np.frombuffer(msgs.native_bytes(lc), dtype="<u4")
    assert len(words) == 203
    assert crc.message_crc(lc) == crc.crc32_core_reference(words[:-1]) == 0xDD5481A6
    assert crc.message_crc(msgs.low_cmd()) == 0x322AC991  # head FE EF, level_flag FF, the rest 0
    ls = msgs.low_state()
    ls.tick, ls.motor_state[3].q, ls.foot_force = 123456, -1.5, [10, 20, -30, 40]
    ls.imu_state.accelerometer = [0.0, 0.0, 9.75]
    assert crc.message_crc(ls) == 0xE4CA7D47
    lc.crc = 0xDEADBEEF
    assert crc.message_crc(lc) == 0xDD5481A6  # the crc member's own value does not enter
    assert not crc.crc_ok(lc) and crc.crc_ok(crc.set_crc(lc))


@needs_dds
def test_xcdr_serialized_sizes_and_offsets_match_the_idl():
    """What goes on the wire (XCDR1 little endian: 4-byte header, every primitive aligned to its size from the
    start of the payload, no padding after a struct), field by field, computed by hand from the IDL."""
    from footfall.deploy.unitree import msgs

    def offset(make, setter) -> int:  # noqa: ANN001 (first byte that a marker value changes, payload-relative)
        a = make()
        b = make()
        setter(b)
        x, y = a.serialize(), b.serialize()
        assert x[:4] == b"\x00\x01\x00\x00" and len(x) == len(y)  # CDR_LE encapsulation
        return next(i for i in range(len(x)) if x[i] != y[i]) - 4

    F = 1.0000001  # float32 0x3F800001: its first (least significant) byte changes
    assert len(msgs.motor_cmd().serialize()) - 4 == 36  # u8, 3 pad, 5 f32, 3 u32
    assert len(msgs.motor_state().serialize()) - 4 == 48  # u8, 3, 7 f32, u8, 3, u32, 2 u32
    imu = msgs.IMUState_([1.0, 0, 0, 0], [0.0] * 3, [0.0] * 3, [0.0] * 3, 0)
    assert len(imu.serialize()) - 4 == 53  # 13 f32 + u8, nothing after
    assert len(msgs.BmsCmd_(0, [0, 0, 0]).serialize()) - 4 == 4
    assert len(msgs.BmsState_(0, 0, 0, 0, 0, 0, [0, 0], [0, 0], [0] * 15).serialize()) - 4 == 44

    # LowCmd_: head 0, level_flag 2, frame_reserve 3, sn 4, version 12, bandwidth 20..22; motor_cmd[0].mode 22,
    # its q aligned to 24 .. kd 40, reserve 44..56; each next MotorCmd_ 36 bytes from 56: motor_cmd[19] at 704;
    # bms_cmd 740, wireless_remote 744, led 784, fan 796, gpio 798, reserve aligned to 800, crc 804; 808 bytes
    assert len(msgs.low_cmd().serialize()) - 4 == 808
    c = msgs.low_cmd
    checks = {
        "sn": (lambda m: setattr(m, "sn", [0x01020304, 0]), 4),
        "bandwidth": (lambda m: setattr(m, "bandwidth", 0x0102), 20),
        "motor_cmd[0].mode": (lambda m: setattr(m.motor_cmd[0], "mode", 7), 22),
        "motor_cmd[0].q": (lambda m: setattr(m.motor_cmd[0], "q", F), 24),
        "motor_cmd[0].kd": (lambda m: setattr(m.motor_cmd[0], "kd", F), 40),
        "motor_cmd[0].reserve": (lambda m: setattr(m.motor_cmd[0], "reserve", [1, 0, 0]), 44),
        "motor_cmd[1].mode": (lambda m: setattr(m.motor_cmd[1], "mode", 7), 56),
        "motor_cmd[1].q": (lambda m: setattr(m.motor_cmd[1], "q", F), 60),
        "motor_cmd[19].mode": (lambda m: setattr(m.motor_cmd[19], "mode", 7), 704),
        "bms_cmd.off": (lambda m: setattr(m.bms_cmd, "off", 0xA5), 740),
        "wireless_remote": (lambda m: setattr(m, "wireless_remote", [9] + [0] * 39), 744),
        "led": (lambda m: setattr(m, "led", [9] + [0] * 11), 784),
        "fan": (lambda m: setattr(m, "fan", [9, 0]), 796),
        "gpio": (lambda m: setattr(m, "gpio", 9), 798),
        "reserve": (lambda m: setattr(m, "reserve", 0x01020304), 800),
        "crc": (lambda m: setattr(m, "crc", 0x01020304), 804),
    }
    for name, (setter, want) in checks.items():
        assert offset(c, setter) == want, name

    # LowState_: 0..22 as LowCmd_; imu quaternion 24, gyroscope 40, accelerometer 52, rpy 64, temperature 76;
    # motor_state[0].mode 77, q 80, ddq_raw 104, temperature 108, lost 112, reserve 116..124; each next MotorState_
    # 48 bytes from 124: motor_state[19] at 988 .. 1036; bms_state 1036 (current 1040, cycle 1044, cell_vol 1050);
    # foot_force 1080, foot_force_est 1088, tick 1096, wireless_remote 1100, bit_flag 1140, adc_reel 1144,
    # temperature_ntc1 1148, ntc2 1149, power_v 1152, power_a 1156, fan_frequency 1160, reserve 1168, crc 1172
    assert len(msgs.low_state().serialize()) - 4 == 1176
    s = msgs.low_state
    checks = {
        "imu.quaternion[1]": (lambda m: setattr(m.imu_state, "quaternion", [1.0, F, 0, 0]), 28),
        "imu.gyroscope": (lambda m: setattr(m.imu_state, "gyroscope", [F, 0, 0]), 40),
        "imu.accelerometer": (lambda m: setattr(m.imu_state, "accelerometer", [F, 0, 0]), 52),
        "imu.rpy": (lambda m: setattr(m.imu_state, "rpy", [F, 0, 0]), 64),
        "imu.temperature": (lambda m: setattr(m.imu_state, "temperature", 9), 76),
        "motor_state[0].mode": (lambda m: setattr(m.motor_state[0], "mode", 9), 77),
        "motor_state[0].q": (lambda m: setattr(m.motor_state[0], "q", F), 80),
        "motor_state[0].tau_est": (lambda m: setattr(m.motor_state[0], "tau_est", F), 92),
        "motor_state[0].temperature": (lambda m: setattr(m.motor_state[0], "temperature", 9), 108),
        "motor_state[0].lost": (lambda m: setattr(m.motor_state[0], "lost", 0x01020304), 112),
        "motor_state[1].mode": (lambda m: setattr(m.motor_state[1], "mode", 9), 124),
        "motor_state[19].q": (lambda m: setattr(m.motor_state[19], "q", F), 992),
        "bms_state.version_high": (lambda m: setattr(m.bms_state, "version_high", 9), 1036),
        "bms_state.current": (lambda m: setattr(m.bms_state, "current", 0x01020304), 1040),
        "bms_state.cell_vol": (lambda m: setattr(m.bms_state, "cell_vol", [0x0102] + [0] * 14), 1050),
        "foot_force": (lambda m: setattr(m, "foot_force", [0x0102, 0, 0, 0]), 1080),
        "foot_force_est": (lambda m: setattr(m, "foot_force_est", [0x0102, 0, 0, 0]), 1088),
        "tick": (lambda m: setattr(m, "tick", 0x01020304), 1096),
        "wireless_remote": (lambda m: setattr(m, "wireless_remote", [9] + [0] * 39), 1100),
        "bit_flag": (lambda m: setattr(m, "bit_flag", 9), 1140),
        "adc_reel": (lambda m: setattr(m, "adc_reel", F), 1144),
        "temperature_ntc2": (lambda m: setattr(m, "temperature_ntc2", 9), 1149),
        "power_v": (lambda m: setattr(m, "power_v", F), 1152),
        "fan_frequency": (lambda m: setattr(m, "fan_frequency", [0x0102, 0, 0, 0]), 1160),
        "reserve": (lambda m: setattr(m, "reserve", 0x01020304), 1168),
        "crc": (lambda m: setattr(m, "crc", 0x01020304), 1172),
    }
    for name, (setter, want) in checks.items():
        assert offset(s, setter) == want, name
    # and back: a serialized state decodes to the same values
    ls = msgs.low_state()
    ls.motor_state[7].q, ls.tick = -0.5, 77
    back = msgs.LowState_.deserialize(ls.serialize())
    assert back.motor_state[7].q == -0.5 and back.tick == 77 and crc.message_crc(back) == crc.message_crc(ls)


# ---------------------------------------------------------------------------------------------- the gate, no network


@needs_dds
def test_command_gate_drops_bad_crc_latches_on_unsafe_and_on_silence_and_rearms_once():
    from footfall.deploy.unitree.bridge import CommandGate, command_from_lowcmd

    limits = BridgeLimits.from_spec(SPEC)
    gate = CommandGate(limits, list(range(NJ)), command_timeout_s=0.1)
    assert gate.poll(0.0) is gate.damping  # damping from the start

    gate.on_command(lowcmd(stand({0: 0.2}), good_crc=False), 1.0)
    assert gate.counters.bad == {"bad_crc": 1} and gate.poll(1.0) is None  # dropped: the drives keep damping
    gate.on_command(lowcmd(stand({0: 0.2})), 1.0)
    got = gate.poll(1.0)
    assert got is not None and np.isclose(got.q[0], SPEC.default_pose[0] + 0.2, atol=1e-6)
    gate.on_command(lowcmd(stand(kp_scale=10.0)), 1.01)  # kp 10 x the spec's: beyond the 2 x bound
    assert gate.latched and gate.poll(1.01) is gate.damping and gate.flags() == 3
    gate.on_command(lowcmd(stand()), 1.02)
    assert gate.counters.bad["latched"] == 1 and gate.poll(1.02) is None  # latched: nothing passes
    gate.on_rearm(12345)
    gate.on_rearm(12345)  # the same request delivered again re-arms nothing
    assert not gate.latched and gate.rearms == 1 and gate.counters.bad["rearm_repeated"] == 1
    gate.on_command(lowcmd(stand()), 2.0)
    assert gate.poll(2.0) is not gate.damping
    assert gate.poll(2.15) is gate.damping and gate.latched and gate.latch_reason == "command_timeout"
    assert gate.flags() == 1
    # the SDK's stop markers (PosStopF, VelStopF) and mode 0 mean no position loop, no velocity loop, motor off
    m = lowcmd(stand())
    m.motor_cmd[0].q, m.motor_cmd[1].dq, m.motor_cmd[2].mode = 2.146e9, 16000.0, 0
    c = command_from_lowcmd(m, list(range(NJ)))
    assert c.kp[0] == 0 and c.q[0] == 0 and c.kd[1] == 0 and c.dq[1] == 0 and c.kp[2] == c.kd[2] == 0
    assert limits.check(c) is None


@needs_dds
def test_robot_maps_motors_checks_state_crc_and_never_raises():
    """A permuted motor_index on a synthetic LowState_ (delivered locally in this process), a state with a bad
    CRC dropped and counted, and write() of hostile commands: damping goes out instead, nothing raises."""
    from footfall.deploy.unitree import msgs
    from footfall.deploy.unitree.robot import UnitreeRobot

    perm = [3, 4, 5, 0, 1, 2, 9, 10, 11, 6, 7, 8]  # the FL leg's motors drive footfall's joints 0..2, and so on
    robot = UnitreeRobot("lo", NJ, NF, motor_index=perm, damping_kd=np.asarray(SPEC.kd), domain_id=domain_id())
    try:
        w = robot.node.writer(msgs.TOPIC_LOWSTATE, msgs.LowState_)
        st = msgs.low_state()
        for m in range(20):
            st.motor_state[m].q, st.motor_state[m].dq, st.motor_state[m].tau_est = m, 100 + m, -m
        st.imu_state.quaternion, st.foot_force, st.tick = [0.5, 0.5, 0.5, 0.5], [1, 2, 3, 4], 2500
        w.write(crc.set_crc(st))
        r = wait_for(lambda: robot.read(), 2.0)
        assert r is not None and r.seq == 1
        assert r.joint_pos.tolist() == perm and r.joint_vel.tolist() == [100 + m for m in perm]
        assert r.joint_torque.tolist() == [-m for m in perm]
        assert r.imu_quat.tolist() == [0.5] * 4 and r.foot_contact.tolist() == [1, 2, 3, 4] and r.stamp_s == 2.5
        assert r.age_s is not None and 0 <= r.age_s < 1.0 and r.robot_fault is None
        st.tick = 2600
        crc.set_crc(st)
        st.crc ^= 0x80
        w.write(st)
        time.sleep(0.05)
        assert robot.read().seq == 1 and robot.counters.bad.get("bad_crc") == 1
        assert robot.stale_reads >= 1
        # commands: motor perm[j] gets joint j's values; motors no joint uses get the SDK's stop command
        cmd = stand({0: 0.1})
        robot.write(cmd)
        mc = robot._cmd.motor_cmd
        assert np.isclose(mc[3].q, cmd.q[0], atol=1e-6) and np.isclose(mc[0].q, cmd.q[3], atol=1e-6)
        assert mc[12].q == 2.146e9 and mc[12].dq == 16000.0 and mc[12].kp == 0 and crc.crc_ok(robot._cmd)
        for bad in (
            JointCommand(np.full(NJ, np.nan), *(np.zeros(NJ) for _ in range(4))),
            JointCommand(np.zeros(3), *(np.zeros(3) for _ in range(4))),
            JointCommand(np.full(NJ, 1e300), *(np.zeros(NJ) for _ in range(4))),
            None,
        ):
            robot.write(bad)  # type: ignore[arg-type]
        assert robot.counters.bad["unsendable_command"] == 4
        assert all(mc[m].kp == 0.0 and np.isclose(mc[m].kd, SPEC.kd[j]) for j, m in enumerate(perm))  # damping
        assert robot.sent == 5
    finally:
        robot.close()
    robot.write(stand())  # after close: nothing, no exception
    assert robot.read() is not None


# ---------------------------------------------------------------------------------------------- the desk round trip


class Bridge:
    """`python -m footfall.deploy.unitree.bridge` on lo in a subprocess, its banner awaited."""

    def __init__(self, domain: int, *extra: str):
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.err = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "footfall.deploy.unitree.bridge", "--robot", "go1", "--iface", "lo"]
            + ["--domain", str(domain), *extra],
            stdout=subprocess.PIPE,
            stderr=self.err,
            text=True,
            cwd=ROOT,
            env=env,
        )
        t_end = time.monotonic() + 30
        line = ""
        while time.monotonic() < t_end and "footfall bridge" not in line:
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.5)
            if ready:
                line = self.proc.stdout.readline()
            if self.proc.poll() is not None:
                break
        if "footfall bridge" not in line:
            self.stop()
            self.err.seek(0)
            raise AssertionError(f"the bridge did not start: {self.err.read()[-4000:]}")

    def stop(self, sig: int = signal.SIGTERM) -> str:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            out, _ = self.proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
        return out or ""


@needs_dds
def test_round_trip_state_commands_bad_crc_unsafe_latch_and_a_dead_bridge():
    from footfall.deploy.unitree.robot import UnitreeRobot

    dom = domain_id()
    bridge = Bridge(dom)
    robot = UnitreeRobot.for_spec(SPEC, "lo", domain_id=dom)
    try:
        # state arrives, with the right shapes, every joint inside its own range (a hip reading a calf's angle
        # would not be), calves bent backwards
        r = wait_for(lambda: robot.read(), 10.0)
        assert r is not None, f"no LowState_ from the bridge: {robot.counts()}"
        assert r.joint_pos.shape == r.joint_vel.shape == r.joint_torque.shape == (NJ,)
        assert r.imu_quat.shape == (4,) and r.gyro.shape == r.accel.shape == (3,) and r.foot_contact.shape == (NF,)
        lo, hi = np.asarray(SPEC.position_limits).T
        assert ((r.joint_pos > lo - 0.05) & (r.joint_pos < hi + 0.05)).all() and (r.joint_pos[2::3] < -0.5).all()
        assert abs(np.linalg.norm(r.imu_quat) - 1) < 1e-3
        assert r.age_s < 0.05 and robot.counters.bad.get("bad_crc") is None

        def settle(cmd: JointCommand, seconds: float) -> np.ndarray:
            t_end = time.monotonic() + seconds
            while time.monotonic() < t_end:
                robot.write(cmd)
                time.sleep(0.02)
            return robot.read().joint_pos.copy()

        # commands reach the simulated drives, in the spec's joint order: it stands (hips near 0, thighs forward,
        # calves back, wherever its legs were when the bridge started: it damps until the first command), and a
        # calf target folded on joint 2 (FR calf: the foot lifts) moves that joint's reading most
        q0 = settle(stand(), 1.2)
        assert (np.abs(q0[0::3]) < 0.5).all() and (q0[1::3] > 0.3).all() and (q0[2::3] < -1.0).all(), q0
        w, x, y, z = robot.read().imu_quat
        assert 1 - 2 * (x * x + y * y) > 0.8  # upright: the IMU's z within ~35 deg of vertical
        moved = {2: -0.8}
        q1 = settle(stand(moved), 0.5)
        d = np.abs(q1 - q0)
        assert d[2] > 0.5 and int(np.argmax(d)) == 2 and q1[2] < -2.2, d.round(3)

        # a command whose CRC is wrong is dropped (counted by the bridge) and not applied
        t_end = time.monotonic() + 0.3
        while time.monotonic() < t_end:
            robot.write(stand(moved))
            time.sleep(0.01)
            robot._writer.write(lowcmd(stand({2: 0.6}), good_crc=False))  # would stretch that leg out
            time.sleep(0.01)
        robot.read()
        q2 = robot.read().joint_pos.copy()
        assert q2[2] < -2.2, (q1, q2)  # folded still: the bad commands' -1.2 never reached the drive
        assert wait_for(lambda: robot.read() and (robot.bridge_status.get("bad_crc", 0) >= 10), 1.0)

        # an unsafe command (kp 10 x the spec's) latches the bridge: it damps, the reading reports it
        robot.write(stand(kp_scale=10.0))
        r = wait_for(lambda: (x := robot.read()) is not None and x.robot_fault and x, 1.0)
        assert r and "unsafe" in r.robot_fault and robot.bridge_status["unsafe_commands"] == 1
        # ... until a rearm request: then it obeys again
        robot.rearm()
        assert wait_for(lambda: robot.read() is not None and robot.bridge_status.get("flags") == 0, 1.0)
        q3 = settle(stand(moved), 0.3)
        assert q3[2] < -2.2 and robot.read().robot_fault is None

        # commands stop: the bridge damps and latches on its own after 0.1 s
        time.sleep(0.25)
        r = wait_for(lambda: (x := robot.read()) is not None and x.robot_fault and x, 1.0)
        assert r and "commands stopped" in r.robot_fault

        # the bridge dies: reads go stale (the same reading, seq unchanged)
        bridge.stop(signal.SIGKILL)
        robot.read()
        seq = robot.read().seq
        time.sleep(0.1)
        assert robot.read().seq == seq and robot.stale_reads >= 2
        counts = robot.counts()
        print(counts)
        assert counts["ok"] >= 5 and counts["sent"] > 50 and counts["superseded"] > 200  # ~500 states/s arrived
        assert counts["dropped"] == 0 and "bad_send_failed" not in counts
    finally:
        robot.close()
        bridge.stop(signal.SIGKILL)


@needs_dds
def test_runtime_damps_within_three_periods_when_the_bridge_dies():
    """Runtime + UnitreeRobot against the bridge, standing up; the bridge is killed: the safety layer's stale trip
    damps on the third tick that finds no new state."""
    from footfall.deploy.runtime import Mode, Runtime, RuntimeConfig
    from footfall.deploy.unitree.robot import UnitreeRobot

    dom = domain_id()
    bridge = Bridge(dom)
    robot = UnitreeRobot.for_spec(SPEC, "lo", domain_id=dom)
    try:
        assert wait_for(lambda: robot.read(), 10.0) is not None
        damping = JointCommand.damping(NJ, np.asarray(SPEC.kd))
        rt = Runtime(robot, SPEC, lambda r, c: damping, RuntimeConfig(stand_up_s=0.2))
        rt.start()
        fresh: list[bool] = []
        killed: list[int] = []

        def hook(runtime: Runtime) -> None:
            fresh.append(runtime.safety.fresh())
            if runtime.tick_count == 20:
                bridge.proc.kill()
                bridge.proc.wait(timeout=5)
                killed.append(runtime.tick_count)

        rt.on_tick.append(hook)
        rt.loop(ticks=30, freeze_gc=False)
        damp = [e for e in rt.events if e["to"] == "DAMP"]
        assert killed and damp, rt.events
        assert rt.mode == Mode.DAMP and "stale" in damp[0]["reason"], damp
        assert damp[0]["tick"] >= killed[0], (damp[0], killed)  # nothing tripped while the bridge lived
        assert any(e["to"] == "STAND" for e in rt.events)
        last_fresh = max(i for i, f in enumerate(fresh) if f)  # tick index of the last new state
        assert damp[0]["tick"] - last_fresh == 3, (damp[0], fresh)
        assert damp[0]["tick"] - killed[0] <= 4  # a sample already delivered when the bridge died may be read once
    finally:
        robot.close()
        bridge.stop(signal.SIGKILL)


@needs_dds
def test_bridge_cli_prints_its_config_and_dispatches_by_sdk(capsys):
    from footfall.deploy.unitree.bridge import bridge_main

    assert bridge_main(["--sdk", "unitree", "--iface", "eth0", "--print-config"]) == 0
    out = capsys.readouterr().out
    assert '<NetworkInterface name="eth0"' in out and "<Peers>" not in out
    assert bridge_main(["--sdk=unitree", "--print-config"]) == 0
    out = capsys.readouterr().out
    assert '<NetworkInterface name="lo"' in out and '<Peer address="127.0.0.1"/>' in out
    assert bridge_main(["--sdk", "udp", "--print-limits"]) == 0  # the UDP bridge's own options still work
    assert '"num_joints": 12' in capsys.readouterr().out
    assert bridge_main(["--sdk", "ros"]) == 2
