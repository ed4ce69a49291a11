"""The authenticated UDP link (protocol version 2): each test names the attack or fault it stops.

Loopback only, bounded in packets and time. Most tests run a BridgeLink and a UdpRobot on fake clocks (the bridge's
clock is the runtime's plus a large offset, as on two computers) and step them by hand; a few run the MuJoCo bridge
or the documented standalone skeleton in a thread against a real UdpRobot for about a second.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import random
import re
import socket
import stat
import struct
import threading
import time
import zlib
from pathlib import Path

import numpy as np
import pytest

from footfall.deploy import udp
from footfall.deploy.interface import JointCommand, RobotReading
from footfall.deploy.keys import generate_key, keygen_main, load_key
from footfall.robots import load_robot

ROOT = Path(__file__).resolve().parents[1]
KEY = bytes.fromhex("5d1f0c9a7e3b2a4410ee9d8c7b6a59483726150413f2e1d0c0b0a09080706050")
OTHER_KEY = bytes(range(32))
SPEC = load_robot("go1")
NJ, NF = SPEC.num_joints, len(SPEC.feet)
LIMITS = udp.BridgeLimits.from_spec(SPEC)
DAMPING = JointCommand.damping(NJ, np.asarray(SPEC.kd))
READING = RobotReading(
    0,
    0.0,
    np.asarray(SPEC.default_pose, dtype=float),
    np.zeros(NJ),
    imu_quat=np.array([1.0, 0.0, 0.0, 0.0]),
    gyro=np.zeros(3),
    accel=np.array([0.0, 0.0, 9.81]),
    foot_contact=np.full(NF, 30.0),
    joint_torque=np.linspace(-1.0, 1.0, NJ),
)
STATE_VALUES = udp.state_values(READING, NF)


def stand() -> JointCommand:
    return JointCommand(
        np.asarray(SPEC.default_pose, dtype=float), np.zeros(NJ), np.asarray(SPEC.kp), np.asarray(SPEC.kd), np.zeros(NJ)
    )


class FakeClock:
    def __init__(self, t: float = 100.0):
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, dt: float) -> None:
        self.t += dt


def until(cond, timeout: float = 2.0) -> bool:  # noqa: ANN001
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            return False
        time.sleep(0.001)
    return True


def recv(sock: socket.socket, timeout: float = 1.0) -> tuple[bytes, tuple]:
    end = time.monotonic() + timeout
    while True:
        try:
            return sock.recvfrom(udp.MAX_DATAGRAM + 1)
        except BlockingIOError:
            assert time.monotonic() < end, "no datagram arrived"
            time.sleep(0.001)


def attacker() -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.setblocking(False)
    return s


def same(a: JointCommand, b: JointCommand) -> bool:
    return all(
        np.array_equal(np.float32(getattr(a, n)), np.float32(getattr(b, n))) for n in ("q", "dq", "kp", "kd", "tau")
    )


class Pair:
    """A BridgeLink on a loopback socket and a UdpRobot connected to it. The runtime's clock is `clock`, the
    bridge's clock + `offset`; `applied` is what reached the drives."""

    def __init__(self, key: bytes | None = KEY, robot_key: bytes | None = KEY, offset: float = 1234.5, **kw):
        self.clock = FakeClock()
        self.offset = offset
        self.sock = udp.bind_socket("127.0.0.1", 0)
        self.link = udp.BridgeLink(self.sock, NJ, NF, key, LIMITS, clock=self.bridge_clock, **kw)
        self.robot = udp.UdpRobot("127.0.0.1", self.sock.getsockname()[1], NJ, NF, robot_key, clock=self.clock)
        self.applied: list[JointCommand] = []

    def bridge_clock(self) -> float:
        return self.clock() + self.offset

    def serve(self, send_state: bool = True) -> None:
        """One bridge period."""
        cmd = self.link.poll()
        if cmd is not None:
            self.applied.append(cmd)
        out = self.link.state_packet(STATE_VALUES) if send_state else None
        if out is not None:
            self.link._send(*out)

    def tick(self, cmd: JointCommand | None = None, dt: float = 0.02) -> RobotReading | None:
        """One runtime tick (write) and one bridge period, then the runtime's read."""
        self.clock.advance(dt)
        self.robot.write(cmd if cmd is not None else DAMPING)
        self.serve()
        return self.robot.read()

    def connect(self, cmd: JointCommand | None = None) -> None:
        for _ in range(10):
            self.tick(cmd)
            if self.robot.session_active:
                return
        raise AssertionError(f"no session: robot {self.robot.counters}, bridge {self.link.counters}")

    def close(self) -> None:
        self.robot.close()
        self.sock.close()


@pytest.fixture
def pair():
    p = Pair()
    yield p
    p.close()


# ---------------------------------------------------------------------------------------------- packets


def test_packet_sizes_layout_and_structural_rejections() -> None:
    """Truncated, oversized, mislabelled or corrupted datagrams are refused before any crypto or state change."""
    assert udp.HEADER.size == 52
    sizes = {k: udp.packet_size(k, 12, 4) for k in udp.KINDS}
    assert sizes == {udp.STATE: 284, udp.COMMAND: 324, udp.HELLO: 100, udp.WELCOME: 116}
    pkt = udp.encode(udp.STATE, KEY, 12, 4, STATE_VALUES, session=7, seq=3, stamp=1.5, echo_stamp=1.25, flags=5)
    p = udp.decode(pkt, KEY)
    assert (p.kind, p.nj, p.nf, p.flags, p.session, p.seq, p.stamp, p.echo_stamp) == (1, 12, 4, 5, 7, 3, 1.5, 1.25)
    np.testing.assert_array_equal(p.values(), STATE_VALUES.astype(np.float32))
    flipped = bytearray(pkt)
    flipped[60] ^= 1
    for bad, reason in (
        (bytes(flipped), "bad_tag"),
        (pkt[:-1] + bytes([pkt[-1] ^ 1]), "bad_tag"),
        (b"XXXX" + pkt[4:], "bad_magic"),
        (pkt[:4] + b"\x01" + pkt[5:], "bad_version"),
        (pkt[:5] + b"\x09" + pkt[6:], "bad_kind"),
        (pkt[:-5], "bad_size"),
        (pkt + b"\x00", "bad_size"),
        (b"\x00" * 3, "bad_size"),
        (pkt[:52], "bad_size"),
        (pkt + bytes(udp.MAX_DATAGRAM), "bad_size"),
        (udp.encode(udp.COMMAND, KEY, 12, 4, np.zeros(60), flags=udp.FLAG_LATCHED), "bad_flags"),
    ):
        with pytest.raises(udp.ProtocolError) as e:
            udp.decode(bad, KEY)
        assert e.value.reason == reason, reason
    with pytest.raises(udp.ProtocolError) as e:
        udp.decode(pkt, OTHER_KEY)
    assert e.value.reason == "bad_tag"


def test_doc_hex_example_is_a_keyless_hello() -> None:
    """The documented bytes are what footfall sends: a port written from the doc interoperates."""
    doc = (ROOT / "docs" / "udp-bridge.md").read_text()
    hexed = re.search(r"```hex\n(.*?)```", doc, re.S).group(1)
    want = udp.encode(udp.HELLO, b"", 12, 4, bytes(range(16)), flags=udp.FLAG_KEYLESS)
    assert bytes.fromhex("".join(hexed.split())) == want


def test_replay_window_refuses_duplicates_and_old_numbers() -> None:
    """Replay: a sequence number seen before, or too old to tell, is refused; reordering inside the window is not."""
    w = udp.ReplayWindow()
    assert w.accept(0) == "bad_seq"
    for s in (1, 2, 5, 4):
        assert w.accept(s) is None
    assert w.accept(5) == "replayed" and w.accept(1) == "replayed"
    assert w.accept(3) is None  # late, but inside the window and never seen
    assert w.accept(100) is None
    assert w.accept(100 - 63) is None and w.accept(100 - 64) == "old"
    assert w.accept(36) == "old" and w.accept(99) is None and w.accept(99) == "replayed"
    assert w.accept(2**64 - 1) is None and w.accept(100) == "old"


def test_clock_sync_keeps_the_smallest_round_trip_and_follows_drift() -> None:
    """Clock skew: the offset estimate comes from the fastest round trip, so a delayed packet does not skew ages."""
    c = udp.ClockSync()
    off = 500.0

    def sample(t1: float, up: float, hold: float, down: float) -> None:
        t2 = t1 + up + off
        assert c.add(t1, t2, t2 + hold, t1 + up + hold + down)

    sample(10.0, 0.001, 0.002, 0.001)
    assert c.offset == pytest.approx(off, abs=1e-9) and c.rtt == pytest.approx(0.002)
    sample(10.1, 0.030, 0.0, 0.001)  # a slow uplink: off by 15 ms, ignored for the better sample
    assert c.offset == pytest.approx(off, abs=1e-9)
    assert not c.add(10.2, math.nan, 1.0, 10.3) and not c.add(10.0, off, off, 9.0)  # impossible samples
    off = 500.5  # the clocks drifted: once the good old sample leaves the window, newer ones rule
    for k in range(12):
        sample(12.0 + k, 0.003, 0.0, 0.003)
    assert c.offset == pytest.approx(500.5, abs=1e-9)


def test_clock_sync_refuses_slow_round_trips_so_a_delayed_link_cannot_look_fresh() -> None:
    """Attack: hold every packet back by d (one way) from the handshake on. Accepting that sample would pull the
    offset by d / 2 and make d-old packets look d / 2 old; a sample slower than max_rtt_s is refused, and the last
    good estimate stays."""
    c = udp.ClockSync(max_rtt_s=0.05)
    off = 500.0
    assert not c.add(10.0, 10.0 + off, 10.0 + off, 10.08)  # 80 ms one way: refused
    assert c.offset is None
    assert c.add(11.0, 11.001 + off, 11.001 + off, 11.002)
    for k in range(20):  # a delay attack later on: never taken, the good estimate is kept
        assert not c.add(12.0 + k, 12.0 + k + off, 12.0 + k + off, 12.09 + k)
    assert c.offset == pytest.approx(off, abs=1e-9)


# ---------------------------------------------------------------------------------------------- sessions


def test_handshake_establishes_a_session_and_readings_flow(pair: Pair) -> None:
    """Clock offset between computers: a session works with a bridge clock 1234.5 s away, ages are right."""
    assert not pair.robot.session_active and pair.robot.read() is None
    pair.connect()
    assert pair.link.sessions_established == 1 and pair.robot.session_id == pair.link.session.id
    assert pair.robot.sync.offset == pytest.approx(pair.offset, abs=1e-6)
    r1 = pair.tick(stand())
    r2 = pair.tick(stand())
    assert r2.seq == r1.seq + 1 and r2.age_s == pytest.approx(0.0, abs=1e-6)
    np.testing.assert_allclose(r2.joint_torque, READING.joint_torque, rtol=1e-6)
    np.testing.assert_allclose(r2.foot_contact, READING.foot_contact)
    assert same(pair.applied[-1], stand()) and not pair.link.latched
    assert pair.link.counters.bad == {} and pair.robot.counters.bad == {}


def test_spoofed_state_from_another_socket_is_dropped(pair: Pair) -> None:
    """Spoofing: a STATE from any address but the bridge's never becomes a reading, even with the right tag."""
    pair.connect()
    before = pair.robot.read().seq
    s = pair.link.session
    forged = udp.encode(
        udp.STATE, s.key, NJ, NF, STATE_VALUES * 0 + 1.0, session=s.id, seq=s.tx_seq + 1, stamp=pair.bridge_clock()
    )
    evil = attacker()
    evil.sendto(forged, pair.robot.sock.getsockname())  # the kernel drops it (connected socket), or read() does
    assert pair.robot.read().seq == before
    # datagrams queued before connect() reach the socket: read() checks the source itself
    assert pair.robot._handle(forged, evil.getsockname(), pair.clock()) is None
    assert pair.robot.counters.bad == {"wrong_source": 1}
    assert pair.robot.read().seq == before
    evil.close()


def test_command_from_a_non_session_address_is_not_applied(pair: Pair) -> None:
    """Hijacking: a COMMAND from another address is ignored, even with the session's id, key and a fresh seq."""
    pair.connect(stand())
    s = pair.link.session
    n = len(pair.applied)
    evil = attacker()
    bad = stand()
    bad.q = bad.q + 0.1
    v = np.concatenate([bad.q, bad.dq, bad.kp, bad.kd, bad.tau])
    evil.sendto(
        udp.encode(udp.COMMAND, s.key, NJ, NF, v, session=s.id, seq=10**6, stamp=pair.bridge_clock()),
        pair.sock.getsockname(),
    )
    evil.sendto(  # and one of an unknown session
        udp.encode(udp.COMMAND, KEY, NJ, NF, v, session=12345, seq=1, stamp=pair.bridge_clock()),
        pair.sock.getsockname(),
    )
    assert until(lambda: (pair.serve(), sum(pair.link.counters.bad.values()) >= 2)[1])
    assert pair.link.counters.bad == {"wrong_source": 1, "wrong_session": 1}
    assert len(pair.applied) == n and pair.link.session is s
    pair.tick(stand())  # the real runtime carries on (its window did not move)
    assert same(pair.applied[-1], stand()) and pair.link.counters.bad.keys() == {"wrong_source", "wrong_session"}
    evil.close()


def test_wrong_key_is_rejected() -> None:
    """Unauthorized peers: another key (or keyless against keyed) gets no session, in either direction."""
    p = Pair(key=KEY, robot_key=OTHER_KEY)
    for _ in range(5):
        p.tick()
    assert p.link.session is None and not p.link.pending and not p.robot.session_active
    assert p.link.counters.bad == {"bad_tag": 1} and p.link.counters.ok == 0
    # a WELCOME made with another key for the robot's own nonce
    welcome = udp.encode(
        udp.WELCOME, KEY, NJ, NF, p.robot._nonce + bytes(16), session=9, stamp=1.0, echo_stamp=p.robot._hello_stamps[0]
    )
    p.link._send(welcome, p.robot.sock.getsockname())
    p.robot.read()
    assert p.robot.counters.bad == {"bad_tag": 1} and p.robot.session_id is None
    p.close()
    q = Pair(key=KEY, robot_key=None)
    for _ in range(3):
        q.tick()
    assert q.link.session is None and q.link.counters.bad == {"bad_tag": 1}
    q.close()


def test_replayed_state_and_command_are_rejected(pair: Pair) -> None:
    """Replay: an exact duplicate STATE or COMMAND, or one of an earlier session, is refused."""
    pair.connect(stand())
    # STATE: duplicate
    before = pair.robot.read().seq
    state, addr = pair.link.state_packet(STATE_VALUES)
    for _ in range(2):
        pair.link._send(state, addr)
    assert pair.robot.read().seq == before + 1
    assert pair.robot.counters.bad == {"replayed": 1}
    # COMMAND: duplicate (captured on its way, then delivered twice from the runtime's own address)
    cmd = stand()
    cmd.q = cmd.q + 0.05
    pair.robot.write(cmd)
    captured, _ = recv(pair.sock)
    n = len(pair.applied)
    pair.robot.sock.send(captured)
    pair.serve()
    assert len(pair.applied) == n + 1 and same(pair.applied[-1], cmd)
    pair.robot.sock.send(captured)
    assert until(lambda: (pair.serve(), pair.link.counters.bad.get("replayed"))[1])
    assert len(pair.applied) == n + 1
    # both, from the previous session, after a new handshake
    old_state, _ = pair.link.state_packet(STATE_VALUES)
    pair.robot.rearm()
    pair.connect(stand())
    assert pair.link.sessions_established == 2
    stale = pair.robot.counters.bad.get("wrong_session", 0)  # (the old session's STATEs still on their way)
    before = pair.robot.read().seq
    pair.link._send(old_state, addr)
    pair.robot.sock.send(captured)
    assert pair.robot.read().seq == before
    assert until(lambda: (pair.serve(), pair.link.counters.bad.get("wrong_session"))[1])
    assert pair.robot.counters.bad.get("wrong_session") == stale + 1
    assert pair.link.counters.bad == {"replayed": 1, "wrong_session": 1}


def test_delayed_state_older_than_max_age_is_dropped(pair: Pair) -> None:
    """Delay: a STATE held back in the network longer than max_age_s never becomes a reading; its age is reported."""
    pair.connect()
    before = pair.robot.read().seq
    state, addr = pair.link.state_packet(STATE_VALUES)
    pair.clock.advance(0.06)
    pair.link._send(state, addr)
    assert pair.robot.read().seq == before and pair.robot.counters.bad == {"too_old": 1}
    state, addr = pair.link.state_packet(STATE_VALUES)
    pair.clock.advance(0.03)
    pair.link._send(state, addr)
    r = pair.robot.read()
    assert r.seq == before + 1 and r.age_s == pytest.approx(0.03, abs=1e-6)


def test_old_command_is_not_applied_by_the_bridge(pair: Pair) -> None:
    """Delay: a COMMAND older than the bridge's max age (on its own clock) never reaches the drives."""
    pair.connect(stand())
    late = stand()
    late.q = late.q - 0.05
    pair.robot.write(late)
    pair.clock.advance(0.06)
    n = len(pair.applied)
    pair.serve()
    assert len(pair.applied) == n and pair.link.counters.bad == {"too_old": 1}
    pair.tick(late, dt=0.0)
    assert same(pair.applied[-1], late)


def test_v1_packets_are_refused_with_bad_version(pair: Pair) -> None:
    """Protocol confusion: a version-1 peer is refused with a clear reason, never misread."""
    head = struct.Struct("<4sBBHHHId")
    v1_hello = head.pack(b"FFUP", 1, 3, 12, 4, 0, 0, 0.0)
    v1_hello += struct.pack("<I", zlib.crc32(v1_hello))
    v1_cmd = head.pack(b"FFUP", 1, 2, 12, 4, 0, 1, 0.0) + np.zeros(60, "<f4").tobytes()
    v1_cmd += struct.pack("<I", zlib.crc32(v1_cmd))
    for pkt in (v1_hello, v1_cmd):
        with pytest.raises(udp.ProtocolError) as e:
            udp.parse(pkt)
        assert e.value.reason == "bad_version"
        pair.robot.sock.send(pkt)
    assert until(lambda: (pair.serve(), pair.link.counters.bad.get("bad_version", 0) == 2)[1])
    assert pair.link.session is None and pair.link.counters.bad == {"bad_version": 2}


def test_keyless_is_refused_off_loopback_and_warns_on_it(capsys: pytest.CaptureFixture[str]) -> None:
    """Accidental exposure: no key means loopback only, on both ends; keyless on loopback warns once."""
    for call in (
        lambda: udp.UdpRobot("10.0.0.2", 9870, NJ, NF, None),
        lambda: udp.UdpRobot.from_url("udp://192.168.123.10:9870", NJ, NF, None),
        lambda: udp.UdpRobot("127.0.0.1", 9870, NJ, NF, None, bind="0.0.0.0"),
        lambda: udp.run_bridge("go1", host="0.0.0.0", port=udp.free_port(), duration_s=0.1),
    ):
        with pytest.raises(ValueError, match="footfall keygen"):
            call()
    with pytest.raises(ValueError, match="too short"):
        udp.UdpRobot("10.0.0.2", 9870, NJ, NF, b"short")
    s = udp.bind_socket("0.0.0.0", 0)
    with pytest.raises(ValueError, match="footfall keygen"):
        udp.BridgeLink(s, NJ, NF, None, LIMITS)
    s.close()
    with pytest.raises(SystemExit):
        udp.bridge_main(["--host", "0.0.0.0", "--duration", "0.1"])
    assert "footfall keygen" in capsys.readouterr().err
    for host in ("127.0.0.1", "localhost", "127.0.0.2"):
        r = udp.UdpRobot(host, 9870, NJ, NF, None)
        assert r.keyless
        r.close()
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all("unauthenticated" in line for line in err)
    assert udp.is_loopback("::1") and udp.is_loopback("[::1]") and not udp.is_loopback("10.0.0.1")


# ---------------------------------------------------------------------------------------------- the bridge's checks


def _unsafe(name: str) -> JointCommand:
    c = stand()
    if name == "nan":
        c.q[0] = math.nan
    elif name == "inf":
        c.tau[1] = math.inf
    elif name == "q_out_of_range":
        c.q[2] = 0.0  # the go1's calf range is [-2.818, -0.888]
    elif name == "kp_too_big":
        c.kp[0] = 2.01 * max(SPEC.kp)
    elif name == "negative_kd":
        c.kd[3] = -0.1
    elif name == "tau_over_limit":
        c.tau[2] = SPEC.torque_limits[2] * 1.01
    elif name == "dq_over_limit":
        c.dq[4] = -SPEC.velocity_limits[4] * 1.01
    return c


UNSAFE = {
    "nan": "non_finite",
    "inf": "non_finite",
    "q_out_of_range": "q_range",
    "kp_too_big": "kp_range",
    "negative_kd": "kd_range",
    "tau_over_limit": "tau_limit",
    "dq_over_limit": "dq_limit",
}


@pytest.mark.parametrize("name", list(UNSAFE))
def test_unsafe_commands_never_reach_the_drives_and_latch_until_a_new_handshake(pair: Pair, name: str) -> None:
    """A runtime bug or a bad controller: a command outside the robot's limits is never applied; the bridge damps,
    latches (ignoring further commands, flagging STATE) until a new session re-arms it."""
    pair.connect(stand())
    pair.tick(stand())
    pair.tick(_unsafe(name))
    why = UNSAFE[name]
    assert pair.link.latched and pair.link.latch_reason == f"unsafe_command:{why}"
    assert pair.link.counters.bad == {f"unsafe_command:{why}": 1} and pair.link.unsafe_commands == 1
    assert same(pair.applied[-1], DAMPING) and pair.link.latched_damps == 1
    for _ in range(3):
        pair.tick(stand())
    assert same(pair.applied[-1], DAMPING) and pair.link.counters.bad["latched"] == 3
    assert pair.robot.bridge_latched and "unsafe command" in pair.robot.read().robot_fault
    assert all(LIMITS.check(c) is None for c in pair.applied)
    pair.robot.rearm()
    pair.connect(stand())
    pair.tick(stand())
    assert not pair.link.latched and not pair.robot.bridge_latched and same(pair.applied[-1], stand())
    assert pair.link.sessions_established == 2 and pair.robot.read().robot_fault is None


def test_command_loss_damping_latches(pair: Pair) -> None:
    """Runtime crash or network loss: commands stop, the bridge damps after its timeout and stays damped even when
    commands come back, until a new handshake."""
    pair.connect(stand())
    pair.tick(stand())
    assert same(pair.applied[-1], stand())
    pair.clock.advance(0.09)
    pair.serve()
    assert not pair.link.latched
    pair.clock.advance(0.02)
    pair.serve()
    assert pair.link.latched and pair.link.latch_reason == "command_timeout" and pair.link.command_timeouts == 1
    assert same(pair.applied[-1], DAMPING)
    pair.tick(stand())
    assert same(pair.applied[-1], DAMPING) and pair.link.counters.bad == {"latched": 1} and pair.robot.bridge_latched
    assert "commands stopped" in pair.robot.read().robot_fault
    assert pair.link.report()["latched_damps"] == 1
    pair.robot.rearm()
    pair.connect(stand())
    pair.tick(stand())
    assert same(pair.applied[-1], stand()) and not pair.robot.bridge_latched


def test_a_link_that_comes_back_by_itself_does_not_re_arm_the_bridge(pair: Pair) -> None:
    """Outage: the link drops for 0.6 s both ways, the bridge latches its damping, and the runtime finds the bridge
    again with a new handshake of its own. That session must not re-arm the bridge (a runtime whose own stale trip
    was set loose, e.g. --safety stale_periods=100, would otherwise drive the motors again with no operator in the
    loop): only rearm(), the operator's reset, does."""
    pair.connect(stand())
    pair.tick(stand())
    assert same(pair.applied[-1], stand())
    first = pair.link.session
    for _ in range(30):  # 0.6 s: nothing gets through in either direction
        pair.clock.advance(0.02)
        pair.serve(send_state=False)
    assert pair.link.latched and pair.link.latch_reason == "command_timeout"
    pair.robot.write(stand())  # the runtime notices the silence (RESTART_AFTER_S) and starts a handshake of its own
    for _ in range(10):
        pair.tick(stand())
    assert pair.link.session is not first and pair.robot.session_active  # the link is back ...
    assert pair.link.latched and same(pair.applied[-1], DAMPING)  # ... but the bridge stays damped
    assert pair.robot.bridge_latched and "commands stopped" in pair.robot.read().robot_fault
    pair.robot.rearm()  # the operator's reset
    pair.connect(stand())
    pair.tick(stand())
    assert not pair.link.latched and same(pair.applied[-1], stand())


def test_replayed_hello_does_not_take_over_the_session() -> None:
    """Session hijack by replay: a captured HELLO, replayed from anywhere, gets a WELCOME its sender cannot use
    and leaves the current session alone."""
    p = Pair()
    hello, _ = recv(p.sock)  # the robot's first HELLO, captured on its way
    p.robot.sock.send(hello)
    p.connect(stand())
    sid = p.link.session.id
    evil = attacker()
    evil.sendto(hello, p.sock.getsockname())
    p.serve()
    welcome, _ = recv(evil)
    w = udp.decode(welcome, KEY)
    assert w.kind == udp.WELCOME and w.session != sid and p.link.session.id == sid
    # without the psk it cannot compute the session key; a COMMAND with a guessed one fails
    guess = udp.encode(
        udp.COMMAND, OTHER_KEY, NJ, NF, np.zeros(5 * NJ), session=w.session, seq=1, stamp=p.bridge_clock()
    )
    evil.sendto(guess, p.sock.getsockname())
    p.robot.sock.send(hello)  # replayed from the runtime's own address: its WELCOME is unexpected there
    p.tick(stand())
    assert p.link.session.id == sid and p.link.counters.bad == {"bad_tag": 1}
    assert p.robot.counters.bad == {"unexpected_welcome": 1} and p.robot.session_id == sid
    assert same(p.applied[-1], stand()) and p.link.sessions_established == 1
    evil.close()
    p.close()


def test_hostile_datagrams_never_raise_and_are_all_counted(pair: Pair) -> None:
    """Fuzzing: random bytes and mangled real packets, to both ends: nothing raises, nothing is applied, every one
    is counted under a reason."""
    pair.connect(stand())
    rng = random.Random(7)
    s = pair.link.session
    cmd_v = np.concatenate([stand().q, stand().dq, stand().kp, stand().kd, stand().tau])
    samples = [
        udp.encode(udp.COMMAND, s.key, NJ, NF, cmd_v, session=s.id, seq=s.window.top + 1, stamp=pair.bridge_clock()),
        pair.link.state_packet(STATE_VALUES)[0],
        udp.encode(udp.HELLO, KEY, NJ, NF, bytes(16), stamp=1.0),
        udp.encode(udp.WELCOME, KEY, NJ, NF, bytes(32), session=5),
    ]

    def mangled() -> bytes:
        r = rng.random()
        if r < 0.25:
            return rng.randbytes(rng.randrange(0, 5000))
        b = bytearray(rng.choice(samples))
        if r < 0.6:
            for _ in range(rng.randrange(1, 4)):
                b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
        elif r < 0.8:
            del b[rng.randrange(len(b)) :]
        else:
            b[6:10] = rng.randbytes(4)  # nj, nf
        return bytes(b)

    def total(c: udp.Counters) -> int:
        return c.ok + sum(c.bad.values())

    n0_link, n0_robot = total(pair.link.counters), total(pair.robot.counters)
    n = 0
    for _ in range(20):
        for _ in range(40):
            pair.robot.sock.send(mangled())  # from the session's own address: the hardest place
            pair.link._send(mangled(), pair.robot.sock.getsockname())
            n += 1
        assert until(lambda n=n: (pair.link.poll(), total(pair.link.counters) - n0_link >= n)[1])
        assert until(lambda n=n: (pair.robot.read(), total(pair.robot.counters) - n0_robot >= n)[1])
    assert total(pair.link.counters) - n0_link == n and total(pair.robot.counters) - n0_robot == n
    assert "internal_error" not in pair.link.counters.bad and "internal_error" not in pair.robot.counters.bad
    assert pair.link.session is s and not pair.link.latched
    assert all(LIMITS.check(c) is None for c in pair.applied)


def _mutate(rng: random.Random, samples: list[bytes]) -> bytes:
    r = rng.random()
    if r < 0.2:
        return rng.randbytes(rng.randrange(0, 600))
    b = bytearray(rng.choice(samples))
    if r < 0.5:
        for _ in range(rng.randrange(1, 4)):
            b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
    elif r < 0.65:
        del b[rng.randrange(len(b)) :]
    elif r < 0.8:
        b[rng.randrange(len(b)) :] = rng.randbytes(rng.randrange(1, 80))
    else:
        b[rng.randrange(4, 52)] = rng.randrange(256)  # a header field: version, kind, sizes, flags, session, seq
    return bytes(b)


def test_ten_thousand_hostile_datagrams_into_each_side_of_a_running_loop() -> None:
    """Fuzzing the whole path: the runtime in RUN ticks against a BridgeLink while 10,000 random and mutated
    datagrams go to each side, from the peers' own addresses (the hardest place: past the source checks) and from
    a stranger. Nothing raises, not even inside a tick; every datagram is counted; the runtime stays in RUN on the
    real state; and no command outside the robot's limits ever reaches the drives."""
    from footfall.deploy.runtime import Mode, Runtime, RuntimeConfig

    class Clock:
        def __init__(self, pair: Pair):
            self.pair = pair

        def now(self) -> float:
            return self.pair.clock()

        def wait_until(self, t: float) -> None:
            self.pair.clock.t = max(self.pair.clock.t, t)

    pair = Pair()
    stranger = attacker()
    try:
        pair.connect(stand())

        def hold(reading: RobotReading, command: np.ndarray) -> JointCommand:
            return stand()

        rt = Runtime(pair.robot, SPEC, hold, RuntimeConfig(control_dt_s=0.02), clock=Clock(pair))
        rt.run_now()
        s = pair.link.session
        cmd_v = np.concatenate([stand().q, stand().dq, stand().kp, stand().kd, stand().tau])
        samples = [
            udp.encode(udp.COMMAND, s.key, NJ, NF, cmd_v, session=s.id, seq=s.window.top + 1, stamp=1.0),
            pair.link.state_packet(STATE_VALUES)[0],
            udp.encode(udp.HELLO, KEY, NJ, NF, bytes(16), stamp=1.0),
            udp.encode(udp.WELCOME, KEY, NJ, NF, bytes(32), session=5),
        ]
        rng = random.Random(11)

        def total(c: udp.Counters) -> int:
            return c.ok + sum(c.bad.values())

        n, per_tick = 10_000, 100
        robot_addr, link_addr = pair.robot.sock.getsockname(), pair.sock.getsockname()
        for k in range(n // per_tick):
            for i in range(per_tick):  # from the peers' own sockets
                pair.robot.sock.send(_mutate(rng, samples))
                pair.link._send(_mutate(rng, samples), robot_addr)
                if i % 4 == 0:  # and from a stranger (the runtime's kernel drops these: its socket is connected)
                    stranger.sendto(_mutate(rng, samples), link_addr)
                    stranger.sendto(_mutate(rng, samples), robot_addr)
            pair.clock.advance(0.02)
            rt.tick()  # reads (the fuzz and the real state), checks, commands, writes
            pair.serve()  # the bridge drains its fuzz and the command, sends the next state
            assert rt.mode == Mode.RUN, (k, rt.fault)
        pair.clock.advance(0.02)
        rt.tick()
        assert rt.tick_errors == 0 and rt.mode == Mode.RUN
        assert "internal_error" not in pair.link.counters.bad and "internal_error" not in pair.robot.counters.bad
        # every datagram that reached a side was counted (ok or by reason): its fuzz plus the real traffic
        assert total(pair.link.counters) >= n * 5 // 4 and total(pair.robot.counters) >= n
        assert pair.link.session is s and not pair.link.latched
        assert len(pair.applied) > 0 and all(LIMITS.check(c) is None for c in pair.applied)
    finally:
        stranger.close()
        pair.close()


def test_gain_bounds_pass_every_controller_footfall_ships() -> None:
    """False latching: the bridge's default bounds let through every gain footfall itself sends (a bridge that
    damps a correct controller would be switched off), and not much more."""
    from footfall.deploy.controllers.mpc import LegConfig
    from footfall.deploy.controllers.zmp import ZmpConfig
    from footfall.robots.registry import robot_names

    for name in robot_names():
        spec = load_robot(name)
        lim = udp.BridgeLimits.from_spec(spec)
        nj = spec.num_joints
        q = np.clip(np.asarray(spec.default_pose, dtype=float), *np.asarray(spec.position_limits).T)
        z = np.zeros(nj)
        own = JointCommand(q, z, np.asarray(spec.kp), np.asarray(spec.kd), np.asarray(spec.torque_limits))
        assert lim.check(own) is None, name
        assert lim.check(JointCommand.damping(nj, np.asarray(spec.kd))) is None, name
        for gain, why in (("kp", "kp_range"), ("kd", "kd_range")):
            over = own.copy()
            g = getattr(over, gain)
            g[np.argmax(g)] *= 2.001  # just past 2 x the robot's largest spec gain
            assert lim.check(over)[0] == why, name
    go1 = udp.BridgeLimits.from_spec(load_robot("go1"))
    lc = LegConfig()
    swing = stand()
    swing.kp, swing.kd = np.tile(lc.swing_joint_kp, 4), np.tile(lc.swing_joint_kd, 4)
    assert go1.check(swing) is None
    h1 = load_robot("h1")
    zc = ZmpConfig()
    walk = JointCommand(
        np.asarray(h1.default_pose, float), np.zeros(10), np.asarray(zc.kp), np.asarray(zc.kd), np.zeros(10)
    )
    assert udp.BridgeLimits.from_spec(h1).check(walk) is None
    assert udp.BridgeLimits.from_spec(h1, per_joint=True).check(walk)[0] == "kp_range"  # the hip roll: 3.3 x its own
    assert udp.BridgeLimits.from_spec(h1, gain_scale=3.4, per_joint=True).check(walk) is None
    clipped = stand()  # a target clipped to a limit in float64 passes after the float32 trip
    clipped.q[2] = SPEC.position_limits[2][1]
    clipped.tau[:] = np.asarray(SPEC.torque_limits)
    v = np.concatenate([clipped.q, clipped.dq, clipped.kp, clipped.kd, clipped.tau])
    assert go1.check(udp.command_from(np.frombuffer(udp._f32(v), "<f4").astype(float), NJ)) is None
    assert udp.BridgeLimits.from_dict(json.loads(json.dumps(go1.to_dict()))) == go1


def test_whatever_the_runtime_safety_layer_passes_the_bridge_accepts() -> None:
    """False latching, the general case: any command the runtime's safety layer lets through (wild controller
    outputs, joints measured up to its margin outside their ranges) passes the bridge's checks; the two agree on
    the gain bound and the position margin."""
    from footfall.deploy.safety import SafetyConfig, SafetyLayer
    from footfall.robots.registry import robot_names

    cfg = SafetyConfig()
    assert udp.BridgeLimits.GAIN_SCALE == cfg.max_gain_scale
    assert udp.BridgeLimits.POSITION_MARGIN == cfg.position_margin_rad
    rng = np.random.default_rng(0)
    for name in robot_names():
        spec = load_robot(name)
        nj = spec.num_joints
        lim = udp.BridgeLimits.from_spec(spec)
        lo, hi = np.asarray(spec.position_limits).T
        layer = SafetyLayer.for_robot(spec, cfg)
        for k in range(400):
            m = cfg.position_margin_rad
            jp = rng.uniform(lo - m, hi + m)
            if k % 4 == 0:  # right at the margin
                jp = np.where(rng.random(nj) < 0.5, lo - m, hi + m)
            reading = RobotReading(k, 0.0, jp, np.zeros(nj))
            wild = lambda scale, n=nj: rng.normal(0.0, scale, n) * (rng.random(n) < 0.7)  # noqa: E731
            cmd = JointCommand(
                jp + wild(3.0),
                wild(3.0 * max(spec.velocity_limits)),
                np.abs(wild(3.0 * max(spec.kp))),
                np.abs(wild(3.0 * max(spec.kd))),
                wild(3.0 * max(spec.torque_limits)),
            )
            if k % 2:
                layer.prev_q = None
            out, fault = layer.filter(cmd, reading)
            assert fault is None
            assert lim.check(out) is None, (name, lim.check(out))


# ---------------------------------------------------------------------------------------------- real time


def _serve_in_thread(**kw) -> tuple[threading.Thread, dict, threading.Event]:  # noqa: ANN003
    ready, out = threading.Event(), {}
    th = threading.Thread(target=lambda: out.update(udp.run_bridge("go1", **kw, ready=ready)), daemon=True)
    th.start()
    assert ready.wait(10)
    return th, out, ready


def _run_robot(robot: udp.UdpRobot, seconds: float, cmd: JointCommand | None = None) -> RobotReading | None:
    end = time.monotonic() + seconds
    r = None
    while time.monotonic() < end:
        r = robot.read()
        robot.write(cmd if cmd is not None and robot.session_active else DAMPING)
        time.sleep(0.02)
    return r


def test_simulated_bridge_keeps_unsafe_commands_from_the_robot(monkeypatch: pytest.MonkeyPatch) -> None:
    """A runtime bug against the MuJoCo bridge: an unsafe command never reaches the simulated drives; the bridge
    latches and says so in STATE and in its report; a new handshake re-arms it."""
    from footfall.deploy.mujoco_robot import MujocoRobot

    seen: list[JointCommand] = []
    real_apply = MujocoRobot.apply
    monkeypatch.setattr(MujocoRobot, "apply", lambda self, cmd: (seen.append(cmd.copy()), real_apply(self, cmd))[1])
    port = udp.free_port()
    th, out, _ = _serve_in_thread(port=port, duration_s=2.0, key=KEY)
    robot = udp.UdpRobot("127.0.0.1", port, NJ, NF, KEY)
    try:
        _run_robot(robot, 0.4, stand())
        assert robot.session_active and not robot.bridge_latched
        robot.write(_unsafe("kp_too_big"))
        assert until(lambda: (robot.read(), robot.bridge_latched)[1])
        _run_robot(robot, 0.1, stand())
        assert robot.bridge_latched
        robot.rearm()
        assert until(lambda: (robot.read(), robot.write(stand()), robot.session_active and not robot.bridge_latched)[2])
        r = _run_robot(robot, 0.2, stand())
        assert r is not None and r.joint_torque is not None and np.abs(r.joint_torque).max() > 0
    finally:
        robot.close()
        th.join(5)
    assert out["unsafe_commands"] == 1 and out["sessions_established"] == 2 and out["latched_damps"] >= 1
    assert out["packets_bad"].get("unsafe_command:kp_range") == 1
    assert seen and all(LIMITS.check(c) is None for c in seen)
    assert any(same(c, stand()) for c in seen)


def test_a_restarted_bridge_is_picked_up_again() -> None:
    """Bridge restart: a running UdpRobot finds a new bridge on the same port by itself, and its readings' seq keeps
    increasing across the restart."""
    port = udp.free_port()
    robot = udp.UdpRobot("127.0.0.1", port, NJ, NF, KEY)
    th, out1, _ = _serve_in_thread(port=port, duration_s=0.6, key=KEY)
    try:
        r = _run_robot(robot, 0.5)
        assert robot.session_active and r is not None
        first, seq = robot.session_id, r.seq
        th.join(5)
        th, out2, _ = _serve_in_thread(port=port, duration_s=2.0, key=KEY)
        assert until(
            lambda: (robot.read(), robot.write(DAMPING), robot.session_id != first and robot.session_active)[2]
        )
        r = _run_robot(robot, 0.1)
        assert r.seq > seq
    finally:
        robot.close()
        th.join(5)
    assert out1["sessions_established"] == 1 and out2["sessions_established"] == 1


# ---------------------------------------------------------------------------------------------- key files


def test_key_files_are_0600_and_bad_ones_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Key theft and misconfiguration: key files are created private and atomically, never overwritten by accident,
    and unreadable, malformed, short or group/world-readable keys are refused with what to do."""
    path = tmp_path / "robot.key"
    key = generate_key(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600 and len(key) == 32
    assert path.read_text() == key.hex() + "\n" and load_key(path) == key
    with pytest.raises(FileExistsError, match="--force"):
        generate_key(path)
    assert load_key(path) == key and [p.name for p in tmp_path.iterdir()] == ["robot.key"]
    assert generate_key(path, force=True) != key and stat.S_IMODE(os.stat(path).st_mode) == 0o600
    for content, mode, message in (
        (None, 0o600, "no key file"),
        ("zz-not-hex\n", 0o600, "hex"),
        ("", 0o600, "hex|fewer"),
        ((b"k" * 8).hex(), 0o600, "fewer than 16"),
        (key.hex(), 0o644, "chmod 600"),
        (key.hex(), 0o640, "chmod 600"),
    ):
        bad = tmp_path / "bad.key"
        if bad.exists():
            bad.unlink()
        if content is not None:
            bad.write_text(content)
            bad.chmod(mode)
        with pytest.raises(ValueError, match=message):
            load_key(bad)
    assert keygen_main([str(tmp_path / "k2")]) == 0 and len(load_key(tmp_path / "k2")) == 32
    assert keygen_main([str(tmp_path / "k2")]) == 1 and "--force" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        keygen_main(["--help"])
    assert "footfall keygen" in capsys.readouterr().out
    with pytest.raises(SystemExit):  # the bridge refuses a world-readable key too
        udp.bridge_main(["--key", str(bad), "--duration", "0.1"])
    assert "chmod 600" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------- the documented skeleton


def _skeleton(tmp_path: Path):  # noqa: ANN202
    doc = (ROOT / "docs" / "udp-bridge.md").read_text()
    section = doc.split("## A bridge skeleton in Python", 1)[1]
    code = re.search(r"```python\n(.*?)\n```", section, re.S).group(1)
    path = tmp_path / "ff_bridge.py"
    path.write_text(code + "\n")
    spec = importlib.util.spec_from_file_location("ff_bridge_from_doc", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_doc_skeleton_packets_match_deploy_udp(tmp_path: Path) -> None:
    """Protocol drift: the documented standalone bridge encodes, parses, keys and checks exactly as deploy/udp.py."""
    fb = _skeleton(tmp_path)
    rng = np.random.default_rng(3)
    cn, bn = bytes(range(16)), bytes(range(16, 32))
    sk = udp.session_key(KEY, cn, bn, 0x0123456789ABCDEF)
    assert fb.session_key(KEY, cn, bn, 0x0123456789ABCDEF) == sk
    assert fb.HEADER.format == udp.HEADER.format and fb.NF == NF
    state = [float(x) for x in rng.normal(size=3 * NJ + 10 + NF)]
    state[0] = 1e39  # beyond float32: inf on both sides
    command = [float(x) for x in rng.normal(size=5 * NJ)]
    fields = dict(session=0x0123456789ABCDEF, seq=2**63 + 5, stamp=1234.5, echo_stamp=1.25, echo_recv=-3.0)
    for kind, key, flags, ours, theirs in (
        (udp.STATE, sk, udp.FLAG_LATCHED | udp.FLAG_NO_TORQUE, np.array(state), fb.floats(state)),
        (udp.COMMAND, sk, 0, np.array(command), fb.floats(command)),
        (udp.HELLO, KEY, 0, cn, cn),
        (udp.WELCOME, b"", udp.FLAG_KEYLESS, cn + bn, cn + bn),
    ):
        a = udp.encode(kind, key, NJ, NF, ours, flags=flags, **fields)
        b = fb.encode(kind, key, NJ, NF, theirs, flags=flags, **fields)
        assert a == b, kind
        p = udp.parse(a)
        assert fb.parse(a) == (
            p.kind,
            p.nj,
            p.nf,
            p.flags,
            p.session,
            p.seq,
            p.stamp,
            p.echo_stamp,
            p.echo_recv,
            p.payload,
        )
        assert fb.verify(a, key) and not fb.verify(a, OTHER_KEY)
    good = udp.encode(udp.COMMAND, KEY, NJ, NF, np.array(command))
    for bad in (b"", b"garbage", good[:-1], good + b"x", b"FFUP\x01" + good[5:], good[:5] + b"\x07" + good[6:]):
        with pytest.raises(udp.ProtocolError) as e:
            udp.parse(bad)
        with pytest.raises(ValueError, match=e.value.reason):
            fb.parse(bad)
    lim = fb.Limits(LIMITS.to_dict())
    for cmd in [stand(), DAMPING] + [_unsafe(n) for n in UNSAFE]:
        v = np.frombuffer(udp._f32(np.concatenate([cmd.q, cmd.dq, cmd.kp, cmd.kd, cmd.tau])), "<f4").astype(float)
        ours = LIMITS.check(udp.command_from(v, NJ))
        theirs = lim.check(*(list(v[i * NJ : (i + 1) * NJ]) for i in range(5)))
        assert theirs == (ours[0] if ours else None)
    w = fb.ReplayWindow()
    u = udp.ReplayWindow()
    for s in [int(x) for x in rng.integers(0, 200, 300)] + [2**64 - 1, 5]:
        a, b = w.check(s), u.check(s)
        assert a == b
        if a is None:
            w.update(s)
            u.update(s)


def test_doc_skeleton_bridge_serves_a_udp_robot(tmp_path: Path) -> None:
    """Interoperability and the skeleton's own defences, live: handshake, commands applied, a COMMAND from another
    address and an unsafe one refused, the latch reported in STATE and cleared by a new handshake."""
    fb = _skeleton(tmp_path)

    class FakeSdk(fb.RobotSdk):
        def connect(self) -> None:
            self.q = list(SPEC.default_pose)
            self.commands: list[tuple] = []

        def read(self) -> tuple:
            return self.q, [0.0] * NJ, None, [1.0, 0.0, 0.0, 0.0], [0.0] * 3, [0.0, 0.0, 9.81], [30.0] * NF

        def command(self, q, dq, kp, kd, tau) -> None:  # noqa: ANN001
            self.commands.append((list(q), list(dq), list(kp), list(kd), list(tau)))
            if any(kp):
                self.q = list(q)

    sdk, out, ready = FakeSdk(), {}, threading.Event()
    port = udp.free_port()
    th = threading.Thread(
        target=lambda: out.update(fb.run(sdk, fb.Limits(LIMITS.to_dict()), KEY, "127.0.0.1", port, 1.6, ready)),
        daemon=True,
    )
    th.start()
    assert ready.wait(5)
    robot = udp.UdpRobot("127.0.0.1", port, NJ, NF, KEY)
    evil = attacker()
    try:
        r = _run_robot(robot, 0.4, stand())
        assert robot.session_active and r is not None and r.joint_torque is None  # NO_TORQUE: no fake zeros
        np.testing.assert_allclose(r.joint_pos, np.float32(SPEC.default_pose))
        s = robot._session
        spoof = stand()
        spoof.kp = spoof.kp * 0 + 100.0
        v = np.concatenate([spoof.q, spoof.dq, spoof.kp, spoof.kd, spoof.tau])
        evil.sendto(udp.encode(udp.COMMAND, s.key, NJ, NF, v, session=s.id, seq=10**9, stamp=0.0), ("127.0.0.1", port))
        _run_robot(robot, 0.1, stand())
        assert not robot.bridge_latched
        robot.write(_unsafe("tau_over_limit"))
        assert until(lambda: (robot.read(), robot.bridge_latched)[1])
        robot.rearm()
        assert until(lambda: (robot.read(), robot.write(stand()), robot.session_active and not robot.bridge_latched)[2])
        _run_robot(robot, 0.1, stand())
    finally:
        robot.close()
        evil.close()
        th.join(5)
    counts = out["counts"]
    assert counts.get("wrong_source") == 1 and counts.get("unsafe_command:tau_limit") == 1
    assert out["sessions_established"] == 2 and out["unsafe_commands"] == 1
    pd = [c for c in sdk.commands if any(c[2])]
    assert pd and all(max(c[2]) <= max(SPEC.kp) for c in pd)  # the spoofed kp 100 never reached the drives
    assert all(max(abs(t) for t in c[4]) <= max(SPEC.torque_limits) for c in sdk.commands)
