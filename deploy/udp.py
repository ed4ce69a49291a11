"""UDP link between the deploy runtime and a robot-side bridge, and a bridge that serves a MuJoCo robot.

Protocol, version 1 (all little endian). Every datagram is

    header   24 bytes  magic b"FFUP" | version u8 (=1) | kind u8 | nj u16 | nf u16 | reserved u16 | seq u32 |
                       stamp f64 (sender clock, s)
    payload  float32 values, by kind:
               kind 1 STATE   (bridge -> runtime)  q[nj] dq[nj] quat_wxyz[4] gyro[3] accel[3] foot_force[nf]
               kind 2 COMMAND (runtime -> bridge)  q[nj] dq[nj] kp[nj] kd[nj] tau_ff[nj]
               kind 3 HELLO   (runtime -> bridge)  empty: "send state to this address"
    trailer  crc32 u32 (zlib.crc32) of header + payload

Joint order is the robot spec's (policy) order. A receiver drops a datagram with a wrong magic, version, size or
checksum and counts it; it never acts on one. The bridge sends STATE to the address of the last valid COMMAND or
HELLO, once per bridge period; it damps its joints (kp = 0) when no valid command arrived for `command_timeout_s`.
To write a bridge for your robot's SDK, implement this file's `encode`/`decode` in your language, read the SDK's
state into a STATE each period and hand each COMMAND's per-joint q, dq, kp, kd, tau to the SDK's motor command.
"""

from __future__ import annotations

import json
import math
import socket
import struct
import time
import zlib
from dataclasses import dataclass, field

import numpy as np

from footfall.deploy.interface import JointCommand, RobotReading

MAGIC = b"FFUP"
VERSION = 1
STATE, COMMAND, HELLO = 1, 2, 3
_HEADER = struct.Struct("<4sBBHHHId")
_CRC = struct.Struct("<I")
DEFAULT_PORT = 9870


class ProtocolError(ValueError):
    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason  # counter key: bad_magic, bad_version, bad_checksum, bad_size, bad_kind


def _payload_len(kind: int, nj: int, nf: int) -> int:
    if kind == STATE:
        return 2 * nj + 10 + nf
    if kind == COMMAND:
        return 5 * nj
    if kind == HELLO:
        return 0
    raise ProtocolError("bad_kind", f"unknown packet kind {kind}")


def encode(kind: int, seq: int, stamp: float, nj: int, nf: int, values: np.ndarray | None = None) -> bytes:
    n = _payload_len(kind, nj, nf)
    payload = np.zeros(n, dtype="<f4") if values is None else np.asarray(values, dtype="<f4")
    if payload.shape != (n,):
        raise ValueError(f"payload of kind {kind} needs {n} values, got {payload.shape}")
    body = _HEADER.pack(MAGIC, VERSION, kind, nj, nf, 0, seq & 0xFFFFFFFF, stamp) + payload.tobytes()
    return body + _CRC.pack(zlib.crc32(body))


def decode(packet: bytes) -> tuple[int, int, float, int, int, np.ndarray]:
    """(kind, seq, stamp, nj, nf, float64 payload); raises ProtocolError naming what is wrong."""
    if len(packet) < _HEADER.size + _CRC.size:
        raise ProtocolError("bad_size", f"packet of {len(packet)} bytes is shorter than a header")
    magic, version, kind, nj, nf, _, seq, stamp = _HEADER.unpack_from(packet)
    if magic != MAGIC:
        raise ProtocolError("bad_magic", f"bad magic {magic!r}")
    if version != VERSION:
        raise ProtocolError("bad_version", f"protocol version {version}, this side speaks {VERSION}")
    n = _payload_len(kind, nj, nf)
    if len(packet) != _HEADER.size + 4 * n + _CRC.size:
        raise ProtocolError("bad_size", f"kind {kind} with nj={nj}, nf={nf} needs {_HEADER.size + 4 * n + 4} bytes")
    (crc,) = _CRC.unpack_from(packet, len(packet) - _CRC.size)
    if crc != zlib.crc32(packet[: -_CRC.size]):
        raise ProtocolError("bad_checksum", "checksum mismatch")
    values = np.frombuffer(packet, dtype="<f4", count=n, offset=_HEADER.size).astype(np.float64)
    return kind, seq, stamp, nj, nf, values


def state_values(r: RobotReading, nf: int) -> np.ndarray:
    quat = r.imu_quat if r.imu_quat is not None else (1.0, 0.0, 0.0, 0.0)
    gyro = r.gyro if r.gyro is not None else np.zeros(3)
    acc = r.accel if r.accel is not None else np.zeros(3)
    feet = r.foot_contact if r.foot_contact is not None else np.zeros(nf)
    return np.concatenate([r.joint_pos, r.joint_vel, quat, gyro, acc, feet])


def reading_from(seq: int, stamp: float, nj: int, nf: int, v: np.ndarray) -> RobotReading:
    return RobotReading(
        seq=seq,
        stamp_s=stamp,
        joint_pos=v[:nj].copy(),
        joint_vel=v[nj : 2 * nj].copy(),
        imu_quat=v[2 * nj : 2 * nj + 4].copy(),
        gyro=v[2 * nj + 4 : 2 * nj + 7].copy(),
        accel=v[2 * nj + 7 : 2 * nj + 10].copy(),
        foot_contact=v[2 * nj + 10 : 2 * nj + 10 + nf].copy() if nf else None,
    )


@dataclass
class Counters:
    ok: int = 0
    bad: dict[str, int] = field(default_factory=dict)

    def count(self, reason: str) -> None:
        self.bad[reason] = self.bad.get(reason, 0) + 1


class UdpRobot:
    """The runtime's side of the link: non-blocking reads of the newest STATE, COMMAND writes."""

    def __init__(self, host: str, port: int, num_joints: int, num_feet: int, bind: str = "127.0.0.1"):
        self.addr = (host, port)
        self.num_joints, self.num_feet = num_joints, num_feet
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((bind, 0))
        self.sock.setblocking(False)
        self.seq = 0
        self.latest: RobotReading | None = None
        self.counters = Counters()
        self.hello()

    @classmethod
    def from_url(cls, url: str, num_joints: int, num_feet: int) -> UdpRobot:
        """`udp://HOST:PORT`."""
        if not url.startswith("udp://"):
            raise ValueError(f"robot URL {url!r} must look like udp://HOST:PORT (or use --robot sim)")
        host, _, port = url[len("udp://") :].rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"robot URL {url!r} must look like udp://HOST:PORT, e.g. udp://127.0.0.1:{DEFAULT_PORT}")
        bind = "127.0.0.1" if host in ("127.0.0.1", "localhost") else "0.0.0.0"
        return cls(host, int(port), num_joints, num_feet, bind=bind)

    def hello(self) -> None:
        self._send(encode(HELLO, self.seq, time.perf_counter(), self.num_joints, self.num_feet))

    def _send(self, data: bytes) -> None:
        try:
            self.sock.sendto(data, self.addr)
        except OSError:
            pass  # no route / bridge gone: the stale-state trip handles it

    def read(self) -> RobotReading | None:
        while True:
            try:
                data = self.sock.recv(2048)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:  # e.g. ECONNREFUSED from an ICMP port-unreachable: the bridge is gone
                break
            try:
                kind, seq, stamp, nj, nf, v = decode(data)
            except ProtocolError as e:
                self.counters.count(e.reason)
                continue
            if kind != STATE or nj != self.num_joints or nf != self.num_feet:
                self.counters.count("bad_kind")
                continue
            self.counters.ok += 1
            if self.latest is None or seq > self.latest.seq or seq + 1000 < self.latest.seq:  # (bridge restart)
                self.latest = reading_from(seq, stamp, nj, nf, v)
        return self.latest

    def write(self, cmd: JointCommand) -> None:
        self.seq += 1
        v = np.concatenate([cmd.q, cmd.dq, cmd.kp, cmd.kd, cmd.tau])
        self._send(encode(COMMAND, self.seq, time.perf_counter(), self.num_joints, self.num_feet, v))

    def close(self) -> None:
        self.sock.close()


@dataclass(frozen=True)
class BridgeFaults:
    """Fault injection for testing a runtime against a misbehaving robot link."""

    drop_rate: float = 0.0  # share of STATE packets not sent
    delay_s: float = 0.0  # STATE packets leave this late
    pause_at_s: float | None = None  # at this time, hold STATE packets back for `pause_s`, then send them late
    pause_s: float = 0.0
    nan_after_s: float | None = None  # from this time on, joint_vel[0] reads NaN
    freeze_after_s: float | None = None  # from this time on, no STATE is sent at all


def free_port(host: str = "127.0.0.1") -> int:
    """A UDP port that was free on `host` a moment ago (for tests and benchmarks that start a bridge)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def run_bridge(
    robot: str,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    rate_hz: float = 500.0,
    physics_dt: float | None = None,
    duration_s: float | None = None,
    command_timeout_s: float = 0.1,
    faults: BridgeFaults | None = None,
    seed: int = 0,
    ready: object = None,
) -> dict:
    """Serve a MujocoRobot over UDP at `rate_hz` (physics in lockstep with the bridge clock)."""
    from footfall.deploy.mujoco_robot import MujocoRobot
    from footfall.deploy.runtime import RealClock

    faults = faults or BridgeFaults()
    period = 1.0 / rate_hz
    sim = MujocoRobot(robot, physics_dt=physics_dt if physics_dt is not None else period, seed=seed)
    nj, nf = sim.num_joints, len(sim.spec.feet)
    damping = JointCommand.damping(nj, np.asarray(sim.spec.kd))
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((host, port))
    sock.setblocking(False)
    if ready is not None:
        ready.set()  # type: ignore[attr-defined]
    rng = np.random.default_rng(seed)
    counters = Counters()
    client = None
    last_cmd_t = -math.inf
    damped = True
    timeouts = 0
    delayed: list[tuple[float, bytes]] = []
    clock = RealClock()
    t0 = clock.now()
    n_max = None if duration_s is None else int(duration_s * rate_hz)
    lateness = []
    seq = k = 0
    try:
        while n_max is None or k < n_max:
            deadline = t0 + k * period
            clock.wait_until(deadline)
            now = clock.now()
            lateness.append(now - deadline)
            t = now - t0
            while True:
                try:
                    data, addr = sock.recvfrom(2048)
                except (BlockingIOError, InterruptedError, ConnectionError):
                    break
                try:
                    kind, _, _, pnj, pnf, v = decode(data)
                    if pnj != nj or pnf != nf:
                        raise ProtocolError("bad_size", f"robot has nj={nj}, nf={nf}")
                except ProtocolError as e:
                    counters.count(e.reason)
                    continue
                counters.ok += 1
                client = addr
                if kind == COMMAND:
                    sim.apply(JointCommand(v[:nj], v[nj : 2 * nj], v[2 * nj : 3 * nj], v[3 * nj : 4 * nj], v[4 * nj :]))
                    last_cmd_t, damped = t, False
            if not damped and t - last_cmd_t > command_timeout_s:
                sim.apply(damping)  # the runtime went silent: go limp slowly
                damped, timeouts = True, timeouts + 1
            sim.advance_to(t)
            if client is not None and (faults.freeze_after_s is None or t < faults.freeze_after_s):
                r = sim.read()
                if faults.nan_after_s is not None and t >= faults.nan_after_s:
                    r.joint_vel[0] = math.nan
                seq += 1
                packet = encode(STATE, seq, sim.time_s(), nj, nf, state_values(r, nf))
                paused = faults.pause_at_s is not None and faults.pause_at_s <= t < faults.pause_at_s + faults.pause_s
                if rng.random() >= faults.drop_rate:
                    if paused:
                        delayed.append((faults.pause_at_s + faults.pause_s, packet))
                    elif faults.delay_s > 0:
                        delayed.append((t + faults.delay_s, packet))
                    else:
                        sock.sendto(packet, client)
            while delayed and delayed[0][0] <= t:
                sock.sendto(delayed.pop(0)[1], client)
            k += 1
            behind = clock.now() - (t0 + k * period)
            if behind > 0:
                k += int(behind // period) + 1
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
    lat = np.array(lateness) if lateness else np.zeros(1)
    return {
        "ticks": len(lateness),
        "packets_ok": counters.ok,
        "packets_bad": counters.bad,
        "command_timeouts": timeouts,  # times the bridge damped because commands stopped arriving
        "lateness_median_us": float(np.median(lat) * 1e6),
        "lateness_p99_us": float(np.percentile(lat, 99) * 1e6),
        "sim_time_s": sim.time_s(),
    }


def bridge_main(argv: list[str] | None = None) -> int:
    """`footfall bridge`: serve a simulated robot over UDP (see the module docstring for the protocol)."""
    import argparse
    import signal

    p = argparse.ArgumentParser(prog="footfall bridge", description=bridge_main.__doc__)
    p.add_argument("--robot", default="go1", help="built-in robot name or spec file (default: go1)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: loopback only)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT)
    p.add_argument("--rate", type=float, default=500.0, help="bridge loop rate, Hz (default: 500)")
    p.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    p.add_argument(
        "--command-timeout",
        type=float,
        default=0.1,
        help="damp the joints (kp = 0) when no valid command arrived for this many seconds (default: 0.1)",
    )
    p.add_argument("--drop-rate", type=float, default=0.0, help="fault injection: share of state packets dropped")
    p.add_argument("--delay-ms", type=float, default=0.0, help="fault injection: state packets sent this late")
    p.add_argument("--nan-after", type=float, default=None, help="fault injection: NaN in a sensor after S s")
    p.add_argument("--freeze-after", type=float, default=None, help="fault injection: stop sending after S s")
    p.add_argument("--pause", type=float, nargs=2, metavar=("AT", "FOR"), help="fault injection: hold state back")
    a = p.parse_args(argv)
    if not a.command_timeout > 0:
        p.error(f"--command-timeout must be > 0 seconds, got {a.command_timeout}")

    def _terminate(*_: object) -> None:
        raise KeyboardInterrupt  # leave the loop through its cleanup, then print the report

    signal.signal(signal.SIGTERM, _terminate)
    pause_at, pause_s = a.pause if a.pause else (None, 0.0)
    faults = BridgeFaults(a.drop_rate, a.delay_ms / 1e3, pause_at, pause_s, a.nan_after, a.freeze_after)

    class _Banner:  # printed once the socket is bound, so a client that waits for it is never early
        def set(self) -> None:
            print(f"footfall bridge: {a.robot} at {a.rate:g} Hz on udp://{a.host}:{a.port}", flush=True)

    report = run_bridge(
        a.robot,
        a.host,
        a.port,
        a.rate,
        duration_s=a.duration,
        command_timeout_s=a.command_timeout,
        faults=faults,
        ready=_Banner(),
    )
    print(json.dumps(report), flush=True)
    return 0
