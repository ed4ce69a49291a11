"""Authenticated UDP link between the deploy runtime and a robot-side bridge, and a bridge that serves a MuJoCo robot.

Protocol version 2, all little endian; docs/udp-bridge.md is the full description (with a standalone bridge
skeleton that matches this file byte for byte). Every datagram is

    header   52 bytes  struct "<4sBBHHHQQddd": magic b"FFUP" | version u8 (=2) | kind u8 | nj u16 | nf u16 |
                       flags u16 | session u64 | seq u64 | stamp f64 | echo_stamp f64 | echo_recv f64
    payload  by kind:
               1 STATE   (bridge -> runtime, session key)  float32 q[nj] dq[nj] tau[nj] quat_wxyz[4] gyro[3]
                                                           accel[3] foot_force[nf]
               2 COMMAND (runtime -> bridge, session key)  float32 q[nj] dq[nj] kp[nj] kd[nj] tau_ff[nj]
               3 HELLO   (runtime -> bridge, psk)          16-byte client nonce
               4 WELCOME (bridge -> runtime, psk)          client nonce + 16-byte bridge nonce
    tag      32 bytes  HMAC-SHA256 over header + payload, with the pre-shared key (HELLO, WELCOME) or the session key
                       HMAC-SHA256(psk, b"footfall-udp-v2 session" + client nonce + bridge nonce + session u64 le)
    flags    bit 0 LATCHED (STATE: the bridge damps on its own), bit 1 KEYLESS (empty psk, loopback only),
             bit 2 NO_TORQUE (STATE: tau is 0, not measured), bit 3 UNSAFE (STATE: latched by an unsafe command),
             bit 4 REARM (HELLO: an explicit start or operator reset; only its session re-arms a latched bridge)

The runtime (UdpRobot) sends HELLO; the bridge answers WELCOME with a fresh session id and makes that session
current when the first COMMAND tagged with its key arrives from the HELLO's address. Sequence numbers are per
session and checked against a 64-packet replay window; every STATE echoes the newest COMMAND's stamp, so the runtime
estimates the clock offset NTP-style and both sides drop packets older than their maximum age. The bridge checks
every COMMAND against BridgeLimits before the drives see it; an unsafe command, or commands that stop, make it damp
and latch until a new session. Every datagram is hostile until proven otherwise: nothing one contains raises out of
UdpRobot.read/write or the bridge loop; each one is either counted ok or counted under one reason.

Both sides use time.monotonic(): only differences on one clock and the estimated offset between the two matter.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import math
import secrets
import socket
import struct
import sys
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from footfall.deploy.interface import JointCommand, RobotReading
from footfall.deploy.safety import SafetyConfig

MAGIC = b"FFUP"
VERSION = 2
STATE, COMMAND, HELLO, WELCOME = 1, 2, 3, 4
KINDS = (STATE, COMMAND, HELLO, WELCOME)
HEADER = struct.Struct("<4sBBHHHQQddd")  # 52 bytes
TAG_SIZE = 32  # HMAC-SHA256
NONCE_SIZE = 16
MAX_DATAGRAM = 4096  # larger datagrams are dropped unread (a 12-joint COMMAND is 324 bytes; 4096 fits ~200 joints)
SESSION_LABEL = b"footfall-udp-v2 session"

FLAG_LATCHED = 1 << 0  # STATE: the bridge damps on its own (latched) and ignores COMMANDs until a new session
FLAG_KEYLESS = 1 << 1  # any kind: tagged with the empty pre-shared key (allowed on loopback only)
FLAG_NO_TORQUE = 1 << 2  # STATE: the robot measures no joint torque; the tau values are 0
FLAG_UNSAFE = 1 << 3  # STATE, with LATCHED: the latch came from an unsafe COMMAND (without: commands stopped)
FLAG_REARM = 1 << 4  # HELLO: an explicit (re)start: the session it opens re-arms a latched bridge. A runtime that
# only lost the link and finds it again sends its HELLO without it: the bridge stays latched until the operator resets
_ALLOWED_FLAGS = {
    STATE: FLAG_LATCHED | FLAG_KEYLESS | FLAG_NO_TORQUE | FLAG_UNSAFE,
    COMMAND: FLAG_KEYLESS,
    HELLO: FLAG_KEYLESS | FLAG_REARM,
    WELCOME: FLAG_KEYLESS,
}

DEFAULT_PORT = 9870
MAX_AGE_S = 0.05  # default maximum age of a STATE (runtime) and of a COMMAND (bridge)
HELLO_RESEND_S = 0.25  # the runtime resends its HELLO this often until a WELCOME arrives
RESTART_AFTER_S = 0.5  # the runtime starts a new handshake when no valid STATE arrived for this long
COMMAND_TIMEOUT_S = 0.1  # the bridge damps (and latches) when no valid COMMAND arrived for this long
MAX_DRAIN = 256  # datagrams handled per read() / bridge period at most (a flood cannot stall a loop)


class ProtocolError(ValueError):
    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason  # counter key: bad_size, bad_magic, bad_version, bad_kind, bad_flags, bad_tag


# ---------------------------------------------------------------------------------------------- encoding


def payload_size(kind: int, nj: int, nf: int) -> int:
    """Payload bytes of a packet of `kind` for a robot with nj joints and nf feet."""
    if kind == STATE:
        return 4 * (3 * nj + 10 + nf)
    if kind == COMMAND:
        return 4 * 5 * nj
    if kind == HELLO:
        return NONCE_SIZE
    if kind == WELCOME:
        return 2 * NONCE_SIZE
    raise ProtocolError("bad_kind", f"unknown packet kind {kind}")


def packet_size(kind: int, nj: int, nf: int) -> int:
    return HEADER.size + payload_size(kind, nj, nf) + TAG_SIZE


@dataclass(frozen=True)
class Packet:
    """A parsed datagram (its tag checked separately, see `verify`)."""

    kind: int
    nj: int
    nf: int
    flags: int
    session: int
    seq: int
    stamp: float
    echo_stamp: float
    echo_recv: float
    payload: bytes

    def values(self) -> np.ndarray:
        """The float32 payload of a STATE or COMMAND, as float64."""
        return np.frombuffer(self.payload, dtype="<f4").astype(np.float64)


def mac(key: bytes, data: bytes | memoryview) -> bytes:
    return hmac.new(key, data, hashlib.sha256).digest()


def _f32(values: Any) -> bytes:
    with np.errstate(over="ignore", invalid="ignore"):  # beyond float32: inf, as a C cast does
        return np.ascontiguousarray(values, dtype="<f4").tobytes()


def encode(
    kind: int,
    key: bytes,
    nj: int,
    nf: int,
    payload: bytes | np.ndarray | None = None,
    *,
    session: int = 0,
    seq: int = 0,
    stamp: float = 0.0,
    echo_stamp: float = 0.0,
    echo_recv: float = 0.0,
    flags: int = 0,
) -> bytes:
    """One datagram, tagged with `key` (the psk for HELLO/WELCOME, the session key for STATE/COMMAND; keyless mode:
    psk b"" and FLAG_KEYLESS in `flags`). `payload`: bytes, or the float values of a STATE or COMMAND."""
    n = payload_size(kind, nj, nf)
    if payload is None:
        body = bytes(n)
    elif isinstance(payload, (bytes, bytearray, memoryview)):
        body = bytes(payload)
    else:
        body = _f32(payload)
    if len(body) != n:
        raise ValueError(f"payload of kind {kind} with nj={nj}, nf={nf} needs {n} bytes, got {len(body)}")
    head = HEADER.pack(MAGIC, VERSION, kind, nj, nf, flags, session, seq, stamp, echo_stamp, echo_recv)
    return head + body + mac(key, head + body)


def parse(packet: bytes) -> Packet:
    """The packet's fields after the structural checks (no crypto yet); ProtocolError naming what is wrong."""
    n = len(packet)
    if n > MAX_DATAGRAM:
        raise ProtocolError("bad_size", f"datagram of {n} bytes is larger than {MAX_DATAGRAM}")
    if n < 6:
        raise ProtocolError("bad_size", f"datagram of {n} bytes is shorter than a header")
    if packet[:4] != MAGIC:
        raise ProtocolError("bad_magic", f"bad magic {bytes(packet[:4])!r}")
    if packet[4] != VERSION:
        raise ProtocolError("bad_version", f"protocol version {packet[4]}, this side speaks {VERSION}")
    if n < HEADER.size + TAG_SIZE:
        raise ProtocolError("bad_size", f"datagram of {n} bytes is shorter than a header and a tag")
    _, _, kind, nj, nf, flags, session, seq, stamp, echo_stamp, echo_recv = HEADER.unpack_from(packet)
    if kind not in KINDS:
        raise ProtocolError("bad_kind", f"unknown packet kind {kind}")
    want = packet_size(kind, nj, nf)
    if n != want:
        raise ProtocolError("bad_size", f"kind {kind} with nj={nj}, nf={nf} needs {want} bytes, got {n}")
    if flags & ~_ALLOWED_FLAGS[kind]:
        raise ProtocolError("bad_flags", f"flags {flags:#06x} not defined for kind {kind}")
    payload = bytes(packet[HEADER.size : n - TAG_SIZE])
    return Packet(kind, nj, nf, flags, session, seq, stamp, echo_stamp, echo_recv, payload)


def verify(packet: bytes, key: bytes) -> bool:
    """Whether the packet's tag is right for `key` (constant-time comparison)."""
    view = memoryview(packet)
    return hmac.compare_digest(view[-TAG_SIZE:], mac(key, view[:-TAG_SIZE]))


def decode(packet: bytes, key: bytes) -> Packet:
    """parse + verify: the packet, or ProtocolError (bad_tag when the tag is wrong for `key`)."""
    p = parse(packet)
    if not verify(packet, key):
        raise ProtocolError("bad_tag", "authentication tag mismatch (another key, or a corrupted packet)")
    return p


def session_key(psk: bytes, client_nonce: bytes, bridge_nonce: bytes, session: int) -> bytes:
    return mac(psk, SESSION_LABEL + client_nonce + bridge_nonce + struct.pack("<Q", session))


def new_session_id() -> int:
    while True:
        s = secrets.randbits(64)
        if s:
            return s


# ---------------------------------------------------------------------------------------------- keys and addresses


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 (also as ::ffff:127.x.y.z) or the name localhost."""
    h = host.strip().strip("[]").lower()
    if h == "localhost":
        return True
    try:
        ip = ipaddress.ip_address(h.split("%")[0])
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return ip.is_loopback or (mapped is not None and mapped.is_loopback)


def _psk(key: bytes | None, addresses: tuple[str, ...], role: str) -> tuple[bytes, bool]:
    """(pre-shared key, keyless) after the checks: keyless only when every address is loopback."""
    if key is None:
        outside = [a for a in addresses if not is_loopback(a)]
        if outside:
            raise ValueError(
                f"{role}: an unauthenticated (keyless) UDP link is allowed on loopback only, not on "
                f"{', '.join(outside)}: run `footfall keygen PATH`, copy the file to both ends and pass --key PATH"
            )
        return b"", True
    if not isinstance(key, (bytes, bytearray)):
        raise ValueError(f"{role}: the key must be bytes (see footfall.deploy.keys.load_key), got {type(key).__name__}")
    if len(key) < 16:
        raise ValueError(f"{role}: a key of {len(key)} bytes is too short (16 at least): run `footfall keygen PATH`")
    return bytes(key), False


def _warn_keyless(role: str, where: str) -> None:
    print(
        f"footfall {role}: WARNING: keyless UDP link on {where} is unauthenticated (any local process can send it "
        "packets); run `footfall keygen PATH` and pass --key PATH to both ends",
        file=sys.stderr,
        flush=True,
    )


def _resolve(host: str, port: int) -> tuple[int, tuple]:
    """(address family, socket address) of host:port, IPv4 first."""
    try:
        infos = socket.getaddrinfo(host.strip("[]"), port, 0, socket.SOCK_DGRAM)
    except socket.gaierror as e:
        raise ValueError(f"cannot resolve {host!r}: {e}") from None
    infos.sort(key=lambda i: i[0] != socket.AF_INET)
    return infos[0][0], infos[0][4]


# ---------------------------------------------------------------------------------------------- replay, clocks


class ReplayWindow:
    """Sliding-window replay check over u64 sequence numbers (as IPsec/DTLS): `size` bits below the highest seen.

    `check` says why a number must be refused ("replayed": seen already; "old": below the window; "bad_seq": 0,
    which no sender uses), None if it is new. Call `update` only after the packet's tag verified."""

    def __init__(self, size: int = 64):
        self.size = size
        self.top = 0  # highest sequence number seen (0: none)
        self.bits = 0  # bit i: top - i was seen

    def check(self, seq: int) -> str | None:
        if seq <= 0:
            return "bad_seq"
        if seq > self.top:
            return None
        back = self.top - seq
        if back >= self.size:
            return "old"
        return "replayed" if (self.bits >> back) & 1 else None

    def update(self, seq: int) -> None:
        if seq > self.top:
            shift = seq - self.top
            self.bits = ((self.bits << shift) | 1) & ((1 << self.size) - 1) if shift < self.size else 1
            self.top = seq
        else:
            self.bits |= 1 << (self.top - seq)

    def accept(self, seq: int) -> str | None:
        why = self.check(seq)
        if why is None:
            self.update(seq)
        return why


class ClockSync:
    """Offset of the peer's clock from ours (peer minus local), NTP style.

    Each sample is four timestamps: t1 we sent, t2 the peer received, t3 the peer sent, t4 we received (t2, t3 on
    the peer's clock). offset = ((t2 - t1) + (t3 - t4)) / 2 is wrong by at most half the round trip
    (t4 - t1) - (t3 - t2), so the estimate is the sample with the smallest round trip among the best of each of
    the last `buckets` intervals of `bucket_s` seconds: old samples leave the window, and clock drift is followed.

    A sample whose round trip exceeds `max_rtt_s` is refused: a link that delays packets (congestion, or an attacker
    on the wire holding them back) would otherwise pull the offset by half the delay and make delayed packets look
    fresh. UdpRobot sets it to its maximum packet age, so an age is known to within half of that; while only slow
    samples arrive the last good estimate is kept (a handshake with nothing but slow samples does not complete).
    """

    def __init__(self, bucket_s: float = 1.0, buckets: int = 8, max_rtt_s: float = 10.0):
        self.bucket_s, self.n, self.max_rtt_s = bucket_s, buckets, max_rtt_s
        self.reset()

    def reset(self) -> None:
        self._best: deque[tuple[int, float, float]] = deque()  # (bucket, rtt, offset)
        self.offset: float | None = None
        self.rtt: float | None = None

    def add(self, t1: float, t2: float, t3: float, t4: float) -> bool:
        """Take one sample; False (ignored) when it is impossible (non-finite, negative or huge round trip)."""
        if not all(math.isfinite(t) for t in (t1, t2, t3, t4)):
            return False
        rtt = (t4 - t1) - (t3 - t2)
        if not -1e-4 <= rtt <= self.max_rtt_s:
            return False
        rtt = max(rtt, 0.0)
        off = ((t2 - t1) + (t3 - t4)) / 2.0
        b = math.floor(t4 / self.bucket_s)
        if self._best and self._best[-1][0] == b:
            if rtt < self._best[-1][1]:
                self._best[-1] = (b, rtt, off)
        else:
            self._best.append((b, rtt, off))
        while self._best and self._best[0][0] <= b - self.n:
            self._best.popleft()
        _, self.rtt, self.offset = min(self._best, key=lambda s: s[1])
        return True


@dataclass
class Counters:
    ok: int = 0
    bad: dict[str, int] = field(default_factory=dict)

    def count(self, reason: str) -> None:
        self.bad[reason] = self.bad.get(reason, 0) + 1


# ---------------------------------------------------------------------------------------------- payloads


def state_values(r: RobotReading, nf: int) -> np.ndarray:
    """A STATE payload from a reading (joint_torque None: zeros; send FLAG_NO_TORQUE then)."""
    nj = len(r.joint_pos)
    tau = r.joint_torque if r.joint_torque is not None else np.zeros(nj)
    quat = r.imu_quat if r.imu_quat is not None else (1.0, 0.0, 0.0, 0.0)
    gyro = r.gyro if r.gyro is not None else np.zeros(3)
    acc = r.accel if r.accel is not None else np.zeros(3)
    feet = r.foot_contact if r.foot_contact is not None else np.zeros(nf)
    return np.concatenate([r.joint_pos, r.joint_vel, tau, quat, gyro, acc, feet])


def reading_from(
    seq: int, stamp: float, nj: int, nf: int, v: np.ndarray, torque: bool = True, age_s: float | None = None
) -> RobotReading:
    return RobotReading(
        seq=seq,
        stamp_s=stamp,
        joint_pos=v[:nj].copy(),
        joint_vel=v[nj : 2 * nj].copy(),
        joint_torque=v[2 * nj : 3 * nj].copy() if torque else None,
        imu_quat=v[3 * nj : 3 * nj + 4].copy(),
        gyro=v[3 * nj + 4 : 3 * nj + 7].copy(),
        accel=v[3 * nj + 7 : 3 * nj + 10].copy(),
        foot_contact=v[3 * nj + 10 : 3 * nj + 10 + nf].copy() if nf else None,
        age_s=age_s,
    )


def command_from(v: np.ndarray, nj: int) -> JointCommand:
    return JointCommand(v[:nj], v[nj : 2 * nj], v[2 * nj : 3 * nj], v[3 * nj : 4 * nj], v[4 * nj : 5 * nj])


# ---------------------------------------------------------------------------------------------- runtime side


@dataclass
class _RuntimeSession:
    id: int
    key: bytes
    started: float
    tx_seq: int = 0
    newest: int = 0  # newest STATE seq used
    confirmed: bool = False  # a STATE of this session arrived: the bridge made it current
    window: ReplayWindow = field(default_factory=ReplayWindow)


class UdpRobot:
    """The runtime's side of the link: handshake, non-blocking reads of the newest fresh STATE, COMMAND writes.

    No threads: read() and write() drain the socket, resend the HELLO every HELLO_RESEND_S while no session is
    established, and start a new handshake when no valid STATE arrived for RESTART_AFTER_S (a restarted bridge is
    found again). The bridge makes the session current, and starts sending STATE, on the first COMMAND: call
    write() every tick (the runtime does, damping commands included).
    """

    def __init__(
        self,
        host: str,
        port: int,
        num_joints: int,
        num_feet: int,
        key: bytes | None,
        *,
        bind: str | None = None,
        max_age_s: float = MAX_AGE_S,
        clock: Callable[[], float] = time.monotonic,
    ):
        if not max_age_s > 0:
            raise ValueError(f"max_age_s must be > 0, got {max_age_s}")
        self.num_joints, self.num_feet = int(num_joints), int(num_feet)
        self.max_age_s = float(max_age_s)
        self.clock = clock
        self.psk, self.keyless = _psk(key, (host,) + ((bind,) if bind is not None else ()), "UdpRobot")
        family, addr = _resolve(host, port)
        if self.keyless and not is_loopback(addr[0]):
            raise ValueError(
                f"UdpRobot: {host} resolves to {addr[0]}, not loopback: keyless needs loopback; pass a key"
            )
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            if bind is not None:
                self.sock.bind((bind, 0))
            elif is_loopback(addr[0]):
                self.sock.bind(("::1" if family == socket.AF_INET6 else "127.0.0.1", 0))
            self.sock.connect(addr)  # the kernel now drops datagrams from other sources; read() checks again
            self.sock.setblocking(False)
            self.addr = self.sock.getpeername()
        except OSError:
            self.sock.close()
            raise
        self._flags = FLAG_KEYLESS if self.keyless else 0
        if self.keyless:
            _warn_keyless("deploy", f"{addr[0]}:{addr[1]}")
        self.counters = Counters()
        self.latest: RobotReading | None = None
        self.bridge_latched = False
        self.sync = ClockSync(max_rtt_s=self.max_age_s)
        self._reading_seq = 0
        self._session: _RuntimeSession | None = None
        self._nonce: bytes | None = None
        self._hello_stamps: deque[float] = deque(maxlen=16)
        self._next_hello = -math.inf
        self._last_state = -math.inf
        self._sent: OrderedDict[float, float] = OrderedDict()  # COMMAND stamp (bridge clock) -> local send time
        self._closed = False
        self._start_handshake(self.clock(), rearm=True)  # a new runtime starts PASSIVE: it may re-arm the bridge

    @classmethod
    def from_url(
        cls, url: str, num_joints: int, num_feet: int, key: bytes | None, max_age_s: float = MAX_AGE_S
    ) -> UdpRobot:
        """`udp://HOST:PORT` (IPv6: `udp://[::1]:PORT`)."""
        if not url.startswith("udp://"):
            raise ValueError(f"robot URL {url!r} must look like udp://HOST:PORT (or use --robot sim)")
        host, _, port = url[len("udp://") :].rpartition(":")
        host = host.strip("[]")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"robot URL {url!r} must look like udp://HOST:PORT, e.g. udp://127.0.0.1:{DEFAULT_PORT}")
        return cls(host, int(port), num_joints, num_feet, key, max_age_s=max_age_s)

    # ------------------------------------------------------------------ state

    @property
    def session_active(self) -> bool:
        """A session is established and the bridge confirmed it (a STATE of it arrived)."""
        return self._session is not None and self._session.confirmed

    @property
    def session_id(self) -> int | None:
        return self._session.id if self._session is not None else None

    def rearm(self) -> None:
        """Start a new handshake that re-arms a bridge which latched its damping (the operator's reset calls it)."""
        self._start_handshake(self.clock(), rearm=True)

    def hello(self) -> None:
        """Resend the outstanding HELLO now (no-op while a session is established)."""
        if self._nonce is not None:
            self._send_hello(self.clock())

    # ------------------------------------------------------------------ read / write

    def read(self) -> RobotReading | None:
        """The newest fresh STATE of the current session, else the previous reading (or None). Never blocks."""
        if self._closed:
            return self.latest
        newest: tuple[Packet, float] | None = None
        for _ in range(MAX_DRAIN):
            try:
                data, src = self.sock.recvfrom(MAX_DATAGRAM + 1)
            except (BlockingIOError, InterruptedError):
                break
            except ConnectionRefusedError:  # an ICMP port-unreachable for a packet we sent: the bridge is gone
                continue
            except OSError:
                break
            try:
                got = self._handle(data, src, self.clock())
            except Exception:  # last line of defence: no datagram may raise out of read()
                self.counters.count("internal_error")
                continue
            if got is not None:
                newest = got
        if newest is not None:
            p, age = newest
            self._reading_seq += 1
            torque = not p.flags & FLAG_NO_TORQUE
            self.latest = reading_from(
                self._reading_seq, p.stamp, self.num_joints, self.num_feet, p.values(), torque, age
            )
            if p.flags & FLAG_LATCHED:
                self.latest.robot_fault = (
                    "the bridge refused an unsafe command and damps, latched (a reset re-arms it)"
                    if p.flags & FLAG_UNSAFE
                    else "commands stopped reaching the bridge and it damps, latched (a reset re-arms it)"
                )
        try:
            self._maintain(self.clock())
        except Exception:
            self.counters.count("internal_error")
        return self.latest

    def write(self, cmd: JointCommand) -> None:
        """Send `cmd` in the current session (before one exists: only the HELLO, when due). Never blocks or raises."""
        if self._closed:
            return
        try:
            now = self.clock()
            self._maintain(now)
            s = self._session
            if s is None or self.sync.offset is None:
                return
            v = np.concatenate([cmd.q, cmd.dq, cmd.kp, cmd.kd, cmd.tau])
            if v.shape != (5 * self.num_joints,):
                self.counters.count("unsendable_command")
                return
            stamp = now + self.sync.offset  # in the bridge's clock: it checks the age against its own
            s.tx_seq += 1
            self._sent[stamp] = now
            while len(self._sent) > 64:
                self._sent.popitem(last=False)
            nj, nf = self.num_joints, self.num_feet
            self._send(encode(COMMAND, s.key, nj, nf, v, session=s.id, seq=s.tx_seq, stamp=stamp, flags=self._flags))
        except Exception:
            self.counters.count("unsendable_command")

    def close(self) -> None:
        self._closed = True
        self.sock.close()

    # ------------------------------------------------------------------ internals

    def _send(self, data: bytes) -> None:
        try:
            self.sock.send(data)
        except OSError:  # no route, bridge gone (ECONNREFUSED), buffer full: the stale-state trip handles it
            self.counters.count("send_failed")

    def _start_handshake(self, now: float, rearm: bool) -> None:
        self._session = None
        self._rearm = rearm
        self._nonce = secrets.token_bytes(NONCE_SIZE)
        self._hello_stamps.clear()
        self.sync.reset()
        self._send_hello(now)

    def _send_hello(self, now: float) -> None:
        self._hello_stamps.append(now)
        self._next_hello = now + HELLO_RESEND_S
        nj, nf = self.num_joints, self.num_feet
        flags = self._flags | (FLAG_REARM if self._rearm else 0)
        self._send(encode(HELLO, self.psk, nj, nf, self._nonce, stamp=now, flags=flags))

    def _maintain(self, now: float) -> None:
        if self._session is not None and now - self._last_state > RESTART_AFTER_S:
            # no valid STATE for a while: the bridge restarted, or the link broke. Find it again, but do not re-arm
            # it: if it latched its damping meanwhile, it stays damped until the operator resets (rearm)
            self._start_handshake(now, rearm=False)
        elif self._nonce is not None and now >= self._next_hello:
            self._send_hello(now)

    def _handle(self, data: bytes, src: tuple, now: float) -> tuple[Packet, float] | None:
        """Check one datagram; (packet, age) for a STATE that may be the newest reading, else None."""
        c = self.counters
        if tuple(src[:2]) != tuple(self.addr[:2]):
            c.count("wrong_source")
            return None
        try:
            p = parse(data)
        except ProtocolError as e:
            c.count(e.reason)
            return None
        if (p.nj, p.nf) != (self.num_joints, self.num_feet):
            c.count("wrong_robot")
            return None
        if bool(p.flags & FLAG_KEYLESS) != self.keyless:
            c.count("bad_tag")  # a keyless packet at a keyed end, or the other way round
            return None
        if p.kind == WELCOME:
            self._on_welcome(data, p, now)
            return None
        if p.kind != STATE:
            c.count("unexpected_kind")
            return None
        s = self._session
        if s is None or p.session != s.id:
            c.count("wrong_session")
            return None
        if not verify(data, s.key):
            c.count("bad_tag")
            return None
        why = s.window.check(p.seq)
        if why is not None:
            c.count(why)
            return None
        s.window.update(p.seq)
        if not (math.isfinite(p.stamp) and math.isfinite(p.echo_stamp) and math.isfinite(p.echo_recv)):
            c.count("bad_stamp")
            return None
        t1 = self._sent.get(p.echo_stamp)  # the echoed COMMAND's local send time: a clock-sync sample
        if t1 is not None:
            self.sync.add(t1, p.echo_recv, p.stamp, now)
        age = now - (p.stamp - self.sync.offset)
        if age > self.max_age_s:
            c.count("too_old")
            return None
        if age < -self.max_age_s:
            c.count("bad_stamp")  # from the future: the offset estimate is off, a new handshake will fix it
            return None
        if p.seq <= s.newest:
            c.count("reordered")
            return None
        s.newest = p.seq
        s.confirmed = True
        self._last_state = now
        self.bridge_latched = bool(p.flags & FLAG_LATCHED)
        c.ok += 1
        return p, age

    def _on_welcome(self, data: bytes, p: Packet, now: float) -> None:
        c = self.counters
        if self._nonce is None:
            c.count("unexpected_welcome")  # no handshake outstanding (e.g. the answer to a resent HELLO)
            return
        if not verify(data, self.psk):
            c.count("bad_tag")
            return
        client_nonce, bridge_nonce = p.payload[:NONCE_SIZE], p.payload[NONCE_SIZE:]
        if not hmac.compare_digest(client_nonce, self._nonce):
            c.count("bad_nonce")  # answers another (older) HELLO: a replayed WELCOME
            return
        if p.session == 0:
            c.count("bad_session")
            return
        if p.echo_stamp not in self._hello_stamps or not self.sync.add(p.echo_stamp, p.echo_recv, p.stamp, now):
            c.count("bad_stamp")
            return
        self._session = _RuntimeSession(p.session, session_key(self.psk, client_nonce, bridge_nonce, p.session), now)
        self._nonce = None
        self._last_state = now  # the restart clock runs from here
        self._sent.clear()
        c.ok += 1


# ---------------------------------------------------------------------------------------------- bridge side


def _as_tuple(x: Any) -> tuple[float, ...]:
    return tuple(float(v) for v in np.asarray(x, dtype=float).ravel())


@dataclass(frozen=True)
class BridgeLimits:
    """What a bridge lets through to the drives. Per joint, in the spec's joint order, SI units.

    A COMMAND passes when every value is finite, 0 <= kp <= kp_max, 0 <= kd <= kd_max, |dq| <= velocity,
    |tau_ff| <= torque and, on every joint with kp > 0, position_lo <= q <= position_hi (with kp = 0 the position
    target has no effect, and damping commands carry q = 0). Values are compared as received (float32) against the
    limits rounded to float32: rounding is monotonic, so a command clipped to a limit in float64 always passes.
    Anything else is not applied: the bridge damps (kp = 0, kd = damping_kd) and latches until a new session.
    """

    position_lo: tuple[float, ...]  # rad (m for slide joints)
    position_hi: tuple[float, ...]
    velocity: tuple[float, ...]  # rad/s
    torque: tuple[float, ...]  # N m
    kp_max: tuple[float, ...]  # N m/rad
    kd_max: tuple[float, ...]  # N m s/rad
    damping_kd: tuple[float, ...]  # N m s/rad: what the bridge damps with on its own

    # the runtime's own bounds, so the bridge never latches on a command the runtime's safety layer lets through
    GAIN_SCALE = SafetyConfig.max_gain_scale  # default: kp, kd up to this x the robot's largest spec kp, kd
    POSITION_MARGIN = SafetyConfig.position_margin_rad  # rad, default widening of the joint ranges

    def __post_init__(self) -> None:
        names = ("position_lo", "position_hi", "velocity", "torque", "kp_max", "kd_max", "damping_kd")
        arrs = {n: np.asarray(getattr(self, n), dtype=float) for n in names}
        nj = len(arrs["position_lo"])
        for n, a in arrs.items():
            object.__setattr__(self, n, _as_tuple(a))
            if a.shape != (nj,):
                raise ValueError(f"BridgeLimits.{n} needs {nj} values, got shape {a.shape}")
            if not np.isfinite(a).all():
                raise ValueError(f"BridgeLimits.{n} must be finite, got {a}")
        for n in ("velocity", "torque", "kp_max", "kd_max", "damping_kd"):
            if (arrs[n] < 0).any():
                raise ValueError(f"BridgeLimits.{n} must be >= 0, got {arrs[n]}")
        if (arrs["position_lo"] > arrs["position_hi"]).any():
            raise ValueError("BridgeLimits: position_lo above position_hi")
        if (arrs["damping_kd"] > arrs["kd_max"]).any():
            raise ValueError("BridgeLimits: damping_kd above kd_max (the bridge's own damping would not pass)")
        with np.errstate(over="ignore"):
            f32 = {n: arrs[n].astype(np.float32).astype(np.float64) for n in names}
        object.__setattr__(self, "_f32", f32)

    @classmethod
    def from_spec(
        cls,
        spec: Any,
        gain_scale: float = GAIN_SCALE,
        per_joint: bool = False,
        position_margin: float = POSITION_MARGIN,
        velocity_scale: float = 1.0,
        torque_scale: float = 1.0,
        damping_kd: float | None = None,
    ) -> BridgeLimits:
        """From a RobotSpec: its joint ranges widened by position_margin, velocity_scale x its velocity limits,
        torque_scale x its torque limits, kp and kd up to gain_scale x the robot's largest spec kp and kd (per_joint:
        x each joint's own), and its kd (or `damping_kd`) for damping.

        The position margin, 0.1 rad, is the runtime safety layer's `position_margin_rad`: it lets a joint read up to
        that far outside its range, and its target clipping (step and torque-reach limits around the measured
        position) can then point a target as far out; a strict range would latch on those.

        The default, 2 x the largest, is the runtime safety layer's own clamp (SafetyConfig.max_gain_scale), so the
        bridge never latches on a command the runtime passes, and every gain footfall sends is inside it: the
        stand-up and the policies use the spec's gains, the convex MPC's swing legs kd 1.0 on the go1 (2 x its
        0.5), the ZMP walker's hip roll kp 1000 / kd 20 on the h1 (its hip pitch's gains, 3.3 x the hip roll's
        own 300 / 6, which per_joint with gain_scale < 3.4 would refuse)."""
        if not gain_scale >= 1.0:
            raise ValueError(f"gain_scale must be >= 1 (the spec's own gains must pass), got {gain_scale}")
        if not (velocity_scale > 0 and torque_scale > 0 and position_margin >= 0):
            raise ValueError("velocity_scale and torque_scale must be > 0, position_margin >= 0")
        lo, hi = np.asarray(spec.position_limits, dtype=float).T
        lo, hi = lo - position_margin, hi + position_margin
        kp, kd = np.asarray(spec.kp, dtype=float), np.asarray(spec.kd, dtype=float)
        if not per_joint:
            kp, kd = np.full(len(kp), kp.max(initial=0.0)), np.full(len(kd), kd.max(initial=0.0))
        damp = np.asarray(spec.kd, dtype=float) if damping_kd is None else np.full(len(kd), float(damping_kd))
        return cls(
            position_lo=_as_tuple(lo),
            position_hi=_as_tuple(hi),
            velocity=_as_tuple(velocity_scale * np.asarray(spec.velocity_limits, dtype=float)),
            torque=_as_tuple(torque_scale * np.asarray(spec.torque_limits, dtype=float)),
            kp_max=_as_tuple(gain_scale * kp),
            kd_max=_as_tuple(gain_scale * kd),
            damping_kd=_as_tuple(damp),
        )

    @property
    def num_joints(self) -> int:
        return len(self.position_lo)

    def damping(self) -> JointCommand:
        return JointCommand.damping(self.num_joints, np.asarray(self.damping_kd))

    def check(self, cmd: JointCommand) -> tuple[str, str] | None:
        """None if `cmd` may reach the drives, else (reason, detail): reason one of non_finite, shape, kp_range,
        kd_range, q_range, dq_limit, tau_limit. The values are checked as float32, as they travel."""
        f = self._f32  # type: ignore[attr-defined]
        nj = self.num_joints
        arrs = {}
        for n in ("q", "dq", "kp", "kd", "tau"):
            with np.errstate(over="ignore", invalid="ignore"):  # as on the wire: float32 (beyond it: inf)
                a = np.asarray(getattr(cmd, n), dtype=float).astype(np.float32).astype(float)
            if a.shape != (nj,):
                return "shape", f"{n} has shape {a.shape}, not ({nj},)"
            if not np.isfinite(a).all():
                return "non_finite", f"{n}[{int(np.flatnonzero(~np.isfinite(a))[0])}] is {a[~np.isfinite(a)][0]}"
            arrs[n] = a
        q, dq, kp, kd, tau = arrs["q"], arrs["dq"], arrs["kp"], arrs["kd"], arrs["tau"]
        lo, hi = f["position_lo"], f["position_hi"]
        for why, name, vals, bad, lim in (
            ("kp_range", "kp", kp, (kp < 0) | (kp > f["kp_max"]), lambda j: f"[0, {f['kp_max'][j]:.6g}]"),
            ("kd_range", "kd", kd, (kd < 0) | (kd > f["kd_max"]), lambda j: f"[0, {f['kd_max'][j]:.6g}]"),
            ("q_range", "q", q, (kp > 0) & ((q < lo) | (q > hi)), lambda j: f"[{lo[j]:.6g}, {hi[j]:.6g}] (kp > 0)"),
            ("dq_limit", "dq", dq, np.abs(dq) > f["velocity"], lambda j: f"+-{f['velocity'][j]:.6g}"),
            ("tau_limit", "tau_ff", tau, np.abs(tau) > f["torque"], lambda j: f"+-{f['torque'][j]:.6g}"),
        ):
            if bad.any():
                j = int(np.flatnonzero(bad)[0])
                return why, f"{name}[{j}] = {vals[j]:.6g} outside {lim(j)}"
        return None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (`footfall bridge --print-limits`; the standalone skeleton in docs/udp-bridge.md reads it)."""
        d: dict[str, Any] = {"num_joints": self.num_joints}
        for n in ("position_lo", "position_hi", "velocity", "torque", "kp_max", "kd_max", "damping_kd"):
            d[n] = list(getattr(self, n))
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BridgeLimits:
        names = ("position_lo", "position_hi", "velocity", "torque", "kp_max", "kd_max", "damping_kd")
        return cls(**{n: tuple(d[n]) for n in names})


@dataclass
class _Pending:
    id: int
    key: bytes
    addr: tuple
    client_nonce: bytes
    bridge_nonce: bytes
    created: float
    rearm: bool = False  # its HELLO carried FLAG_REARM: its first COMMAND re-arms a latched bridge


@dataclass
class _BridgeSession:
    id: int
    key: bytes
    addr: tuple
    started: float
    window: ReplayWindow = field(default_factory=ReplayWindow)
    applied: int = 0  # seq of the last COMMAND applied
    echo_seq: int = 0  # seq of the COMMAND whose stamps the STATEs echo
    echo_stamp: float = 0.0
    echo_recv: float = 0.0
    tx_seq: int = 0


class DriveGuard:
    """What stands between decoded commands and the drives on every bridge (UDP's BridgeLink, the Unitree bridge's
    CommandGate): the limits check, damping that latches on an unsafe command or when commands stop, and the command
    the drives hold. The transport authenticates and decodes; this alone decides what the motors get.

    `offer(cmd, now)` for each command, `expire(now)` and `take()` once a bridge period (`take` returns the command
    for the drives when it changed), `unlatch()` when the transport's re-arm rule says so."""

    def __init__(self, limits: BridgeLimits, command_timeout_s: float = COMMAND_TIMEOUT_S):
        if not command_timeout_s > 0:
            raise ValueError(f"command_timeout_s must be > 0, got {command_timeout_s}")
        self.limits, self.command_timeout_s = limits, command_timeout_s
        self.counters = Counters()
        self.damping = limits.damping()
        self.held = self.damping  # what the drives get
        self._changed = True
        self.latched = False
        self.latch_reason: str | None = None
        self.last_unsafe: str | None = None
        self.last_cmd: float | None = None  # when the newest command was applied (None: the timeout is not running)
        self.unsafe_commands = self.latched_damps = self.command_timeouts = 0
        self.commands_applied = 0  # commands (other than damping) handed to the drives
        self.unsafe_applied = 0  # of those, outside the limits when re-checked at the drives: must stay 0

    def offer(self, cmd: JointCommand, now: float) -> bool:
        """Hand `cmd` to the drives unless the bridge is latched or it breaks the limits (then damp and latch)."""
        c = self.counters
        if self.latched:
            c.count("latched")
            return False
        bad = self.limits.check(cmd)
        if bad is not None:
            why, detail = bad
            self.unsafe_commands += 1
            self.last_unsafe = f"{why}: {detail}"
            c.count(f"unsafe_command:{why}")
            self.latch(f"unsafe_command:{why}")
            return False
        self.last_cmd = now
        self.held, self._changed = cmd, True
        c.ok += 1
        return True

    def expire(self, now: float) -> None:
        """Damp and latch when no command was applied for the command timeout (once the timeout runs)."""
        if not self.latched and self.last_cmd is not None and now - self.last_cmd > self.command_timeout_s:
            self.command_timeouts += 1
            self.latch("command_timeout")  # the runtime went silent: go limp slowly, and stay so

    def latch(self, reason: str) -> None:
        self.latched, self.latch_reason = True, reason
        self.latched_damps += 1
        self.hold_damping()

    def unlatch(self) -> None:
        self.latched, self.latch_reason = False, None

    def hold_damping(self) -> None:
        if self.held is not self.damping:
            self.held, self._changed = self.damping, True

    def take(self) -> JointCommand | None:
        if self._changed:
            self._changed = False
            return self.held
        return None

    def deliver(self, cmd: JointCommand, apply: Callable[[JointCommand], None]) -> None:
        """Hand `cmd` (what `take` returned) to the drives through `apply`, re-checking it at the motor boundary: a
        command outside the limits there would mean a path around `offer` (counted, never expected)."""
        if cmd is not self.damping:
            self.commands_applied += 1
            self.unsafe_applied += self.limits.check(cmd) is not None
        apply(cmd)

    def guard_report(self) -> dict[str, Any]:
        return {
            "command_timeouts": self.command_timeouts,  # times the bridge damped because commands stopped arriving
            "unsafe_commands": self.unsafe_commands,
            "latched_damps": self.latched_damps,
            "latched": self.latched,
            "latch_reason": self.latch_reason,
            "last_unsafe_command": self.last_unsafe,
            "commands_applied": self.commands_applied,
            "unsafe_applied": self.unsafe_applied,
        }


class BridgeLink(DriveGuard):
    """The bridge's side of the link, without the robot: handshake and sessions, replay and age checks, the command
    checks, the command timeout, latching, and the STATE packets. A bridge loop calls `poll()` once per period
    (it returns the command for the drives when that changed), then sends `state_packet(...)` to its address.

    Sessions: a valid HELLO makes a pending session (at most `max_pending`, one per source address, the oldest
    dropped; a resent HELLO with the same nonce gets the same session again) and is answered with a WELCOME to its
    source. The pending session becomes current on its first COMMAND from that address; that re-arms a latched
    bridge. Only COMMANDs of the current session from its address count; STATE goes only there.
    """

    def __init__(
        self,
        sock: socket.socket,
        num_joints: int,
        num_feet: int,
        key: bytes | None,
        limits: BridgeLimits,
        *,
        command_timeout_s: float = COMMAND_TIMEOUT_S,
        max_age_s: float = MAX_AGE_S,
        clock: Callable[[], float] = time.monotonic,
        max_pending: int = 4,
        pending_ttl_s: float = 2.0,
        host: str | None = None,
    ):
        if limits.num_joints != num_joints:
            raise ValueError(f"limits are for {limits.num_joints} joints, the robot has {num_joints}")
        if not (command_timeout_s > 0 and max_age_s > 0 and max_pending >= 1 and pending_ttl_s > 0):
            raise ValueError("command_timeout_s, max_age_s and pending_ttl_s must be > 0, max_pending >= 1")
        super().__init__(limits, command_timeout_s)
        bound = str(sock.getsockname()[0])
        self.psk, self.keyless = _psk(key, (bound,) if host is None else (host, bound), "bridge")
        self.sock, self.nj, self.nf = sock, int(num_joints), int(num_feet)
        self.max_age_s, self.clock = max_age_s, clock
        self.max_pending, self.pending_ttl_s = max_pending, pending_ttl_s
        self._flags = FLAG_KEYLESS if self.keyless else 0
        if self.keyless:
            _warn_keyless("bridge", ":".join(str(x) for x in sock.getsockname()[:2]))
        self.session: _BridgeSession | None = None
        self.pending: OrderedDict[int, _Pending] = OrderedDict()
        self.sessions_established = 0

    @property
    def peer(self) -> tuple | None:
        return self.session.addr if self.session is not None else None

    # ------------------------------------------------------------------ per period

    def poll(self) -> JointCommand | None:
        """Drain the socket, handle every datagram, apply the command timeout; the command for the drives if it
        changed since the last call, else None. Never raises because of a datagram."""
        for _ in range(MAX_DRAIN):
            try:
                data, src = self.sock.recvfrom(MAX_DATAGRAM + 1)
            except (BlockingIOError, InterruptedError):
                break
            except ConnectionError:  # ICMP errors for earlier sends (the runtime went away)
                continue
            except OSError:
                break
            try:
                self._handle(data, src, self.clock())
            except Exception:  # last line of defence: no datagram may raise out of the bridge loop
                self.counters.count("internal_error")
        now = self.clock()
        self.expire(now)
        for sid in [sid for sid, p in self.pending.items() if now - p.created > self.pending_ttl_s]:
            del self.pending[sid]
        return self.take()

    def state_packet(self, values: np.ndarray, torque_measured: bool = True) -> tuple[bytes, tuple] | None:
        """(STATE datagram, address) for the current session, or None when there is none."""
        s = self.session
        if s is None:
            return None
        s.tx_seq += 1
        flags = self._flags | (0 if torque_measured else FLAG_NO_TORQUE)
        if self.latched:
            flags |= FLAG_LATCHED | (FLAG_UNSAFE if self.latch_reason != "command_timeout" else 0)
        pkt = encode(
            STATE,
            s.key,
            self.nj,
            self.nf,
            values,
            session=s.id,
            seq=s.tx_seq,
            stamp=self.clock(),
            echo_stamp=s.echo_stamp,
            echo_recv=s.echo_recv,
            flags=flags,
        )
        return pkt, s.addr

    def report(self) -> dict[str, Any]:
        return {
            "packets_ok": self.counters.ok,
            "packets_bad": dict(self.counters.bad),
            "session": f"{self.session.id:016x}" if self.session is not None else None,
            "sessions_established": self.sessions_established,
            **self.guard_report(),
            "keyless": self.keyless,
        }

    # ------------------------------------------------------------------ internals

    def _send(self, data: bytes, addr: tuple) -> None:
        try:
            self.sock.sendto(data, addr)
        except OSError:
            self.counters.count("send_failed")

    def _handle(self, data: bytes, src: tuple, now: float) -> None:
        c = self.counters
        try:
            p = parse(data)
        except ProtocolError as e:
            c.count(e.reason)
            return
        if (p.nj, p.nf) != (self.nj, self.nf):
            c.count("wrong_robot")
            return
        if bool(p.flags & FLAG_KEYLESS) != self.keyless:
            c.count("bad_tag")
            return
        if p.kind == HELLO:
            self._on_hello(data, p, src, now)
        elif p.kind == COMMAND:
            self._on_command(data, p, src, now)
        else:
            c.count("unexpected_kind")

    def _on_hello(self, data: bytes, p: Packet, src: tuple, now: float) -> None:
        c = self.counters
        if not verify(data, self.psk):
            c.count("bad_tag")
            return
        if p.session != 0:
            c.count("bad_session")
            return
        if not math.isfinite(p.stamp):
            c.count("bad_stamp")
            return
        nonce = p.payload
        pend = next((q for q in self.pending.values() if q.addr == src), None)
        if pend is None or not hmac.compare_digest(pend.client_nonce, nonce):
            if pend is not None:
                del self.pending[pend.id]  # a new handshake from this address replaces its older one
            while len(self.pending) >= self.max_pending:
                self.pending.popitem(last=False)
            sid = new_session_id()
            bnonce = secrets.token_bytes(NONCE_SIZE)
            rearm = bool(p.flags & FLAG_REARM)
            pend = _Pending(sid, session_key(self.psk, nonce, bnonce, sid), src, nonce, bnonce, now, rearm)
            self.pending[sid] = pend
        welcome = encode(
            WELCOME,
            self.psk,
            self.nj,
            self.nf,
            pend.client_nonce + pend.bridge_nonce,
            session=pend.id,
            stamp=self.clock(),
            echo_stamp=p.stamp,
            echo_recv=now,
            flags=self._flags,
        )
        self._send(welcome, src)
        c.ok += 1

    def _on_command(self, data: bytes, p: Packet, src: tuple, now: float) -> None:
        c = self.counters
        s = self.session
        if s is not None and p.session == s.id:
            if src != s.addr:
                c.count("wrong_source")
                return
            if not verify(data, s.key):
                c.count("bad_tag")
                return
        elif p.session in self.pending:
            pend = self.pending[p.session]
            if src != pend.addr:
                c.count("wrong_source")
                return
            if not verify(data, pend.key):
                c.count("bad_tag")
                return
            # proof that the peer holds the key and is live: the session becomes current; it re-arms a latched
            # bridge only when its HELLO asked to (an operator's reset or a new deploy, not a link found again)
            del self.pending[p.session]
            s = self.session = _BridgeSession(pend.id, pend.key, pend.addr, now)
            self.sessions_established += 1
            if pend.rearm:
                self.unlatch()
            self.hold_damping()  # a new session starts from damping,
            self.last_cmd = now  # and the command timeout runs from now
        else:
            c.count("wrong_session")
            return
        why = s.window.check(p.seq)
        if why is not None:
            c.count(why)
            return
        s.window.update(p.seq)
        if not math.isfinite(p.stamp):
            c.count("bad_stamp")
            return
        if p.seq > s.echo_seq:  # the clock-sync sample the next STATEs carry back
            s.echo_seq, s.echo_stamp, s.echo_recv = p.seq, p.stamp, now
        if self.latched:
            c.count("latched")
            return
        age = now - p.stamp
        if age > self.max_age_s:
            c.count("too_old")
            return
        if age < -self.max_age_s:
            c.count("bad_stamp")
            return
        if p.seq <= s.applied:
            c.count("reordered")
            return
        s.applied = p.seq
        self.offer(command_from(p.values(), self.nj), now)


# ---------------------------------------------------------------------------------------------- the MuJoCo bridge


@dataclass(frozen=True)
class BridgeFaults:
    """Fault injection for testing a runtime against a misbehaving robot link."""

    drop_rate: float = 0.0  # share of STATE packets not sent
    delay_s: float = 0.0  # STATE packets leave this late
    pause_at_s: float | None = None  # at this time, hold STATE packets back for `pause_s`, then send them late
    pause_s: float = 0.0
    nan_after_s: float | None = None  # from this time on, joint_vel[0] reads NaN
    freeze_after_s: float | None = None  # from this time on, no STATE is sent at all
    zero_quat_after_s: float | None = None  # from this time on, the IMU quaternion reads (0, 0, 0, 0)
    joint_offset: tuple[float, int, float] | None = None  # (at s, joint, rad): that encoder reads off by rad from then


def free_port(host: str = "127.0.0.1") -> int:
    """A UDP port that was free on `host` a moment ago (for tests and benchmarks that start a bridge)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def bind_socket(host: str, port: int) -> socket.socket:
    family, addr = _resolve(host, port)
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.bind(addr)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def run_bridge(
    robot: str,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    rate_hz: float = 500.0,
    physics_dt: float | None = None,
    duration_s: float | None = None,
    command_timeout_s: float = COMMAND_TIMEOUT_S,
    faults: BridgeFaults | None = None,
    seed: int = 0,
    ready: object = None,
    key: bytes | None = None,
    limits: BridgeLimits | None = None,
    max_age_s: float = MAX_AGE_S,
) -> dict:
    """Serve a MujocoRobot over UDP at `rate_hz` (physics in lockstep with the bridge clock).

    `key` None: keyless, allowed when `host` is loopback only (ValueError otherwise). `limits` default to
    BridgeLimits.from_spec(the robot's spec)."""
    from footfall.deploy.mujoco_robot import MujocoRobot
    from footfall.deploy.runtime import RealClock

    _psk(key, (host,), "footfall bridge")  # refuse keyless off loopback before anything starts
    faults = faults or BridgeFaults()
    period = 1.0 / rate_hz
    sim = MujocoRobot(robot, physics_dt=physics_dt if physics_dt is not None else period, seed=seed)
    nj, nf = sim.num_joints, len(sim.spec.feet)
    limits = limits or BridgeLimits.from_spec(sim.spec)
    sock = bind_socket(host, port)
    try:
        link = BridgeLink(
            sock, nj, nf, key, limits, command_timeout_s=command_timeout_s, max_age_s=max_age_s, host=host
        )
    except ValueError:
        sock.close()
        raise
    if ready is not None:
        ready.set()  # type: ignore[attr-defined]
    rng = np.random.default_rng(seed)
    delayed: deque[tuple[float, bytes, tuple]] = deque()
    clock = RealClock()
    t0 = clock.now()
    n_max = None if duration_s is None else int(duration_s * rate_hz)
    lateness = []
    k = 0
    try:
        while n_max is None or k < n_max:
            deadline = t0 + k * period
            clock.wait_until(deadline)
            now = clock.now()
            lateness.append(now - deadline)
            t = now - t0
            cmd = link.poll()
            if cmd is not None:
                link.deliver(cmd, sim.apply)
            sim.advance_to(t)
            if link.peer is not None and (faults.freeze_after_s is None or t < faults.freeze_after_s):
                r = sim.read()
                r.joint_torque = sim.truth().torque  # the drives' output: the simulation's actuator forces
                if faults.nan_after_s is not None and t >= faults.nan_after_s:
                    r.joint_vel[0] = math.nan
                if faults.zero_quat_after_s is not None and t >= faults.zero_quat_after_s:
                    r.imu_quat = np.zeros(4)
                if faults.joint_offset is not None and t >= faults.joint_offset[0]:
                    r.joint_pos[int(faults.joint_offset[1])] += faults.joint_offset[2]
                out = link.state_packet(state_values(r, nf))
                if out is not None and rng.random() >= faults.drop_rate:
                    packet, addr = out
                    paused = (
                        faults.pause_at_s is not None and faults.pause_at_s <= t < faults.pause_at_s + faults.pause_s
                    )
                    if paused:
                        delayed.append((faults.pause_at_s + faults.pause_s, packet, addr))
                    elif faults.delay_s > 0:
                        delayed.append((t + faults.delay_s, packet, addr))
                    else:
                        link._send(packet, addr)
            while delayed and delayed[0][0] <= t:
                _, packet, addr = delayed.popleft()
                link._send(packet, addr)
            k += 1
            behind = clock.now() - (t0 + k * period)
            if behind > 0:
                k += int(behind // period) + 1
    except KeyboardInterrupt:
        pass
    finally:
        sim.apply(link.damping)
        sock.close()
    lat = np.array(lateness) if lateness else np.zeros(1)
    rep = link.report()
    return {
        "ticks": len(lateness),
        "packets_ok": rep.pop("packets_ok"),
        "packets_bad": rep.pop("packets_bad"),
        "command_timeouts": rep.pop("command_timeouts"),
        "lateness_median_us": float(np.median(lat) * 1e6),
        "lateness_p99_us": float(np.percentile(lat, 99) * 1e6),
        "sim_time_s": sim.time_s(),
        **rep,
    }


def bridge_main(argv: list[str] | None = None) -> int:
    """`footfall bridge`: serve a simulated robot over UDP (protocol version 2: docs/udp-bridge.md)."""
    import argparse
    import signal

    from footfall.deploy.keys import load_key

    p = argparse.ArgumentParser(
        prog="footfall bridge",
        description=bridge_main.__doc__,
        epilog="footfall bridge --sdk unitree --help: the same robot on Unitree SDK2's DDS topics instead "
        "(docs/unitree.md)",
    )
    p.add_argument("--robot", default="go1", help="built-in robot name or spec file (default: go1)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: loopback only)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT)
    p.add_argument(
        "--key",
        metavar="PATH",
        help="pre-shared key file (footfall keygen PATH); without it the link is unauthenticated and only a "
        "loopback --host is allowed",
    )
    p.add_argument("--rate", type=float, default=500.0, help="bridge loop rate, Hz (default: 500)")
    p.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    p.add_argument(
        "--command-timeout",
        type=float,
        default=COMMAND_TIMEOUT_S,
        help="damp the joints (kp = 0) and latch when no valid command arrived for this many seconds "
        f"(default: {COMMAND_TIMEOUT_S:g})",
    )
    p.add_argument(
        "--max-age",
        type=float,
        default=MAX_AGE_S,
        help=f"drop commands older than this many seconds, on this bridge's clock (default: {MAX_AGE_S:g})",
    )
    p.add_argument(
        "--gain-scale",
        type=float,
        default=BridgeLimits.GAIN_SCALE,
        help="latch on commands with kp or kd above this multiple of the robot's largest spec kp or kd "
        f"(default: {BridgeLimits.GAIN_SCALE:g}, the runtime's own clamp)",
    )
    p.add_argument(
        "--per-joint-gains", action="store_true", help="bound each joint's kp, kd by its own spec gains instead"
    )
    p.add_argument(
        "--position-margin",
        type=float,
        default=BridgeLimits.POSITION_MARGIN,
        help="latch on position targets (where kp > 0) farther than this outside the joint range, rad "
        f"(default: {BridgeLimits.POSITION_MARGIN:g}, the runtime's own margin)",
    )
    p.add_argument(
        "--print-limits", action="store_true", help="print the command limits as JSON (for your own bridge) and exit"
    )
    p.add_argument("--drop-rate", type=float, default=0.0, help="fault injection: share of state packets dropped")
    p.add_argument("--delay-ms", type=float, default=0.0, help="fault injection: state packets sent this late")
    p.add_argument("--nan-after", type=float, default=None, help="fault injection: NaN in a sensor after S s")
    p.add_argument("--freeze-after", type=float, default=None, help="fault injection: stop sending after S s")
    p.add_argument("--pause", type=float, nargs=2, metavar=("AT", "FOR"), help="fault injection: hold state back")
    p.add_argument(
        "--zero-quat-after", type=float, default=None, help="fault injection: the IMU quaternion reads 0 after S s"
    )
    p.add_argument(
        "--joint-offset",
        type=float,
        nargs=3,
        metavar=("AT", "JOINT", "RAD"),
        help="fault injection: from AT s, encoder JOINT (index) reads RAD off",
    )
    a = p.parse_args(argv)
    if not a.command_timeout > 0:
        p.error(f"--command-timeout must be > 0 seconds, got {a.command_timeout}")
    if not a.max_age > 0:
        p.error(f"--max-age must be > 0 seconds, got {a.max_age}")
    try:
        from footfall.robots.registry import load_robot

        limits = BridgeLimits.from_spec(
            load_robot(a.robot), gain_scale=a.gain_scale, per_joint=a.per_joint_gains, position_margin=a.position_margin
        )
        if a.print_limits:
            print(json.dumps(limits.to_dict()))
            return 0
        key = load_key(a.key) if a.key is not None else None
        _psk(key, (a.host,), "footfall bridge")
    except ValueError as e:
        p.error(str(e))

    def _terminate(*_: object) -> None:
        raise KeyboardInterrupt  # leave the loop through its cleanup, then print the report

    signal.signal(signal.SIGTERM, _terminate)
    pause_at, pause_s = a.pause if a.pause else (None, 0.0)
    faults = BridgeFaults(
        a.drop_rate,
        a.delay_ms / 1e3,
        pause_at,
        pause_s,
        a.nan_after,
        a.freeze_after,
        a.zero_quat_after,
        (a.joint_offset[0], int(a.joint_offset[1]), a.joint_offset[2]) if a.joint_offset else None,
    )

    class _Banner:  # printed once the socket is bound, so a client that waits for it is never early
        def set(self) -> None:
            auth = "keyless (unauthenticated)" if key is None else "authenticated"
            print(f"footfall bridge: {a.robot} at {a.rate:g} Hz on udp://{a.host}:{a.port}, {auth}", flush=True)

    report = run_bridge(
        a.robot,
        a.host,
        a.port,
        a.rate,
        duration_s=a.duration,
        command_timeout_s=a.command_timeout,
        faults=faults,
        ready=_Banner(),
        key=key,
        limits=limits,
        max_age_s=a.max_age,
    )
    print(json.dumps(report), flush=True)
    return 0
