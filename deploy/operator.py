"""Operator commands for the runtime: velocity and start/run/stop/reset, from the keyboard or over UDP.

UDP: one datagram per command to the operator port (bound to 127.0.0.1), a JSON object

    {"cmd": "start" | "run" | "stop" | "reset", "t": UNIX_TIME_NS}
    {"vx": 0.5, "vy": 0.0, "yaw_rate": 0.2, "t": UNIX_TIME_NS}

followed, when the runtime has a key (`footfall deploy --key KEY`), by a 32-byte tag:
HMAC-SHA256(key, b"footfall-operator-v1\\0" + json_bytes). `t` is the sender's wall clock in integer nanoseconds; a
datagram is obeyed only if its tag verifies, `t` lies within `max_skew_s` (2 s) of the runtime's clock and is later
than the last one obeyed (a captured datagram replayed later, or twice, is refused). `footfall operator CMD --key KEY`
sends one. Without a key (simulation, or a bridge on loopback) neither the tag nor `t` is needed, and the runtime
says so at start.
`stop` is obeyed from any local sender, tag or not, like an emergency stop anyone may press; it only ever damps.

A velocity must be re-sent at least every `command_timeout_s` (SafetyConfig, 0.5 s) or the runtime stands still.
Any datagram that fails to parse or verify is counted by reason (`bad`) and ignored; nothing in one can raise out
of `poll`, and at most `max_per_poll` datagrams are read per tick, so a flood cannot stall the loop.

Keyboard (when stdin is a terminal): g start (stand up), r run, x stop (damp), p reset to passive,
w/s vx +-0.1 m/s, a/d vy +-0.1 m/s, q/e yaw rate +-0.2 rad/s, space zero velocity. Keyboard velocity is held.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import socket
import sys
import threading
import time
from typing import Any

import numpy as np

COMMANDS = ("start", "run", "stop", "reset")
DEFAULT_OPERATOR_PORT = 9871
_DOMAIN = b"footfall-operator-v1\0"
TAG_SIZE = 32
MAX_DATAGRAM = 1024


def operator_tag(key: bytes, body: bytes) -> bytes:
    return hmac.new(key, _DOMAIN + body, hashlib.sha256).digest()


def operator_datagram(message: dict[str, Any], key: bytes | None, t_ns: int | None = None) -> bytes:
    """The datagram for one operator message ({"cmd": ...} or {"vx": ..., ...}), stamped now and tagged if keyed."""
    body = json.dumps({**message, "t": time.time_ns() if t_ns is None else int(t_ns)}, allow_nan=False).encode()
    return body + (operator_tag(key, body) if key is not None else b"")


class OperatorRejected(ValueError):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class UdpOperator:
    def __init__(
        self,
        port: int,
        host: str = "127.0.0.1",
        key: bytes | None = None,
        max_skew_s: float = 2.0,
        max_per_poll: int = 64,
        clock: Any = time.time_ns,
    ):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((host, port))
        self.sock.setblocking(False)
        self.key = key
        self.max_skew_ns = int(max_skew_s * 1e9)
        self.max_per_poll = max_per_poll
        self.clock = clock
        self.last_t = -1
        self.ok = 0
        self.bad: dict[str, int] = {}

    @property
    def rejected(self) -> int:
        return sum(self.bad.values())

    def parse(self, data: bytes) -> dict[str, Any]:
        """The message in one datagram, or OperatorRejected naming why it is refused. Never raises anything else."""
        try:
            return self._parse(data)
        except OperatorRejected:
            raise
        except Exception as e:  # noqa: BLE001 (deep nesting, huge numbers, bad UTF-8: refused, never raised)
            raise OperatorRejected(f"malformed:{type(e).__name__}") from None

    def _parse(self, data: bytes) -> dict[str, Any]:
        if len(data) > MAX_DATAGRAM:
            raise OperatorRejected("too_long")
        verified = self.key is None
        if self.key is not None and len(data) > TAG_SIZE:
            body, tag = data[:-TAG_SIZE], data[-TAG_SIZE:]
            verified = hmac.compare_digest(tag, operator_tag(self.key, body))
        if self.key is not None and not verified:
            try:
                msg = json.loads(data)  # an untagged datagram: only a stop is obeyed
            except ValueError:
                raise OperatorRejected("bad_tag") from None
        else:
            msg = json.loads(body if self.key is not None else data)
        if not isinstance(msg, dict):
            raise OperatorRejected("not_an_object")
        cmd = msg.get("cmd")
        if "cmd" in msg and cmd not in COMMANDS:  # (a null or a number is no command either)
            raise OperatorRejected("unknown_cmd")
        if cmd == "stop":
            return msg  # anyone may damp the robot
        if not verified:
            raise OperatorRejected("bad_tag")
        t = msg.get("t")
        if t is not None or self.key is not None:  # (keyless, anyone could forge a datagram anyway: t is optional)
            if isinstance(t, bool) or not isinstance(t, int):
                raise OperatorRejected("no_time")
            if abs(t - self.clock()) > self.max_skew_ns:
                raise OperatorRejected("stale_time")
            if t <= self.last_t:
                raise OperatorRejected("replayed")
        if cmd is None:
            v = [msg.get(k, 0.0) for k in ("vx", "vy", "yaw_rate")]
            if any(isinstance(x, bool) or not isinstance(x, (int, float)) for x in v):
                raise OperatorRejected("bad_velocity")
            v = [float(x) for x in v]
            if not all(math.isfinite(x) for x in v):
                raise OperatorRejected("bad_velocity")
            msg["_velocity"] = v
        if t is not None:
            self.last_t = t
        return msg

    def poll(self, runtime: Any) -> None:
        for _ in range(self.max_per_poll):
            try:
                data = self.sock.recv(MAX_DATAGRAM + 1)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            try:
                msg = self.parse(data)
            except OperatorRejected as e:
                self.bad[e.reason] = self.bad.get(e.reason, 0) + 1
                continue
            self.ok += 1
            cmd = msg.get("cmd")
            if cmd is not None:
                getattr(runtime, cmd)()
            else:
                runtime.set_velocity(np.array(msg["_velocity"][: len(runtime.command)]))

    def close(self) -> None:
        self.sock.close()


def send(message: dict[str, Any], port: int = DEFAULT_OPERATOR_PORT, key: bytes | None = None) -> None:
    """Send one operator message to a runtime on this machine."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(operator_datagram(message, key), ("127.0.0.1", port))


class KeyboardOperator:
    """Reads single keys from a terminal in a background thread; `poll` applies them on the loop's thread."""

    STEP = {"w": (0, 0.1), "s": (0, -0.1), "a": (1, 0.1), "d": (1, -0.1), "q": (2, 0.2), "e": (2, -0.2)}
    MODE = {"g": "start", "r": "run", "x": "stop", "p": "reset"}

    def __init__(self) -> None:
        self.keys: list[str] = []
        self.velocity = np.zeros(3)
        self.used = False  # keyboard velocity overrides others once a velocity key was pressed
        self._lock = threading.Lock()
        self.enabled = sys.stdin.isatty()
        if self.enabled:
            threading.Thread(target=self._read, name="keyboard", daemon=True).start()

    def _read(self) -> None:
        import termios
        import tty

        fd = sys.stdin.fileno()
        old = termios.tcgetattr(fd)
        try:
            tty.setcbreak(fd)
            while True:
                ch = sys.stdin.read(1)
                with self._lock:
                    self.keys.append(ch)
        finally:
            termios.tcsetattr(fd, termios.TCSADRAIN, old)

    def poll(self, runtime: Any) -> None:
        with self._lock:
            keys, self.keys = self.keys, []
        for ch in keys:
            if ch in self.MODE:
                getattr(runtime, self.MODE[ch])()
            elif ch in self.STEP:
                i, dv = self.STEP[ch]
                self.velocity[i] += dv
                self.used = True
            elif ch == " ":
                self.velocity[:] = 0.0
                self.used = True
        if self.used:
            runtime.set_velocity(self.velocity[: len(runtime.command)])

    def close(self) -> None:
        pass


def operator_main(argv: list[str] | None = None) -> int:
    """`footfall operator`: send one operator command to a `footfall deploy` running on this machine."""
    import argparse

    p = argparse.ArgumentParser(
        prog="footfall operator",
        description="Send one operator command to the UDP operator port of a footfall deploy on this machine. With "
        "--key (the deploy's key file) the datagram is tagged with HMAC-SHA256 and stamped, as a keyed deploy "
        "requires; stop is obeyed from anyone. A velocity must be re-sent every 0.5 s or the robot stands still.",
        epilog="examples:\n  footfall operator start --key robot.key\n  footfall operator vel 0.5 0 0 --key robot.key"
        "\n  footfall operator stop",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("command", choices=[*COMMANDS, "vel"], help="start, run, stop, reset, or vel VX VY YAW_RATE")
    p.add_argument("velocity", nargs="*", type=float, help="with vel: vx (m/s) vy (m/s) yaw_rate (rad/s)")
    p.add_argument("--port", type=int, default=DEFAULT_OPERATOR_PORT, help="operator port (default: 9871)")
    p.add_argument("--key", help="the deploy's key file (footfall keygen): required by a deploy started with --key")
    a = p.parse_args(argv)
    if a.command == "vel":
        if not 1 <= len(a.velocity) <= 3 or not all(math.isfinite(v) for v in a.velocity):
            p.error("vel takes one to three finite numbers: VX [VY [YAW_RATE]]")
        message: dict[str, Any] = dict(zip(("vx", "vy", "yaw_rate"), a.velocity))
    elif a.velocity:
        p.error(f"{a.command} takes no numbers")
    else:
        message = {"cmd": a.command}
    key = None
    if a.key is not None:
        from footfall.deploy.keys import load_key

        try:
            key = load_key(a.key)
        except (OSError, ValueError) as e:
            print(f"footfall operator: {e}", file=sys.stderr)
            return 2
    send(message, a.port, key)
    return 0
