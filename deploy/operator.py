"""Operator commands for the runtime: velocity and start/run/stop/reset, from the keyboard or over UDP.

UDP: one JSON object per datagram to the operator port (loopback by default), e.g.
    {"cmd": "start"}   {"cmd": "run"}   {"cmd": "stop"}   {"cmd": "reset"}
    {"vx": 0.5, "vy": 0.0, "yaw_rate": 0.2}
A velocity must be re-sent at least every `command_timeout_s` (SafetyConfig, 0.5 s) or the runtime stands still.
Malformed datagrams are counted and ignored.

Keyboard (when stdin is a terminal): g start (stand up), r run, x stop (damp), p reset to passive,
w/s vx +-0.1 m/s, a/d vy +-0.1 m/s, q/e yaw rate +-0.2 rad/s, space zero velocity. Keyboard velocity is held.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
from typing import Any

import numpy as np

COMMANDS = ("start", "run", "stop", "reset")


class UdpOperator:
    def __init__(self, port: int, host: str = "127.0.0.1"):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((host, port))
        self.sock.setblocking(False)
        self.bad = 0

    def poll(self, runtime: Any) -> None:
        while True:
            try:
                data = self.sock.recv(4096)
            except (BlockingIOError, InterruptedError):
                return
            try:
                msg = json.loads(data)
                if not isinstance(msg, dict):
                    raise ValueError("not an object")
                if "cmd" in msg:
                    if msg["cmd"] not in COMMANDS:
                        raise ValueError(f"unknown cmd {msg['cmd']!r}")
                    getattr(runtime, msg["cmd"])()
                else:
                    v = [float(msg.get(k, 0.0)) for k in ("vx", "vy", "yaw_rate")][: len(runtime.command)]
                    if not np.isfinite(v).all():
                        raise ValueError("non-finite velocity")
                    runtime.set_velocity(np.array(v))
            except (ValueError, TypeError, UnicodeDecodeError):
                self.bad += 1

    def close(self) -> None:
        self.sock.close()


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
