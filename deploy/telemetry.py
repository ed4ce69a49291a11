"""Telemetry log: a small documented binary format, one file per deploy session.

Layout (little endian):

    magic    8 bytes   b"FFTLM\\x00\\x01\\n"  (format version 1)
    chunks   repeated  kind u8 | length u32 | payload (length bytes)

    kind 1  header   UTF-8 JSON: {"fields": [[name, size], ...], "period_s", "controller", "robot",
                     "contract": the policy contract or null, "started_utc"}
    kind 2  tick     float64 x sum(sizes): the fields in header order
    kind 3  event    UTF-8 JSON: {"t": robot time, "tick": n, "event": "mode", "from", "to", "reason"}

Tick fields: t (robot clock s), wall_s (since start), lateness_s (wake-up after the deadline), compute_s
(reading -> command sent), mode (runtime.Mode), command (operator command), ran (1 when the policy ran this
tick), obs (its observation, zeros when it did not run), action (its output, zeros when it did not run),
joint_pos, joint_vel, q_target.

A reader stops at the first incomplete chunk, so a log cut off by a crash or SIGKILL reads up to its last whole
tick. Ticks are buffered and written in blocks of `flush_every`; the file is flushed and fsynced on close.
"""

from __future__ import annotations

import json
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

MAGIC = b"FFTLM\x00\x01\n"
HEADER, TICK, EVENT = 1, 2, 3
_CHUNK = struct.Struct("<BI")


class TelemetryWriter:
    def __init__(self, path: str | Path, fields: list[tuple[str, int]], meta: dict[str, Any], flush_every: int = 50):
        self.path = Path(path)
        self.fields = fields
        self.width = sum(n for _, n in fields)
        self.offsets: dict[str, slice] = {}
        col = 0
        for name, n in fields:
            self.offsets[name] = slice(col, col + n)
            col += n
        self.dtype = np.dtype([("kind", "u1"), ("length", "<u4"), ("data", "<f8", (self.width,))])
        self.buf = np.zeros(flush_every, dtype=self.dtype)
        self.buf["kind"] = TICK
        self.buf["length"] = 8 * self.width
        self.n = 0
        self.row = np.zeros(self.width)  # fill with set(), then commit()
        self.f = open(self.path, "wb")
        self.f.write(MAGIC)
        self._chunk(HEADER, json.dumps({"fields": fields, **meta}).encode())

    def _chunk(self, kind: int, payload: bytes) -> None:
        self.f.write(_CHUNK.pack(kind, len(payload)) + payload)

    def set(self, name: str, value: Any) -> None:
        self.row[self.offsets[name]] = value

    def commit(self) -> None:
        self.buf["data"][self.n] = self.row
        self.n += 1
        if self.n == len(self.buf):
            self.flush()

    def event(self, **payload: Any) -> None:
        self.flush()
        self._chunk(EVENT, json.dumps(payload).encode())

    def flush(self) -> None:
        if self.n:
            self.f.write(self.buf[: self.n].tobytes())
            self.n = 0
        self.f.flush()

    def close(self) -> None:
        if self.f.closed:
            return
        self.flush()
        os.fsync(self.f.fileno())
        self.f.close()


@dataclass
class Telemetry:
    header: dict[str, Any]
    ticks: dict[str, np.ndarray]  # field -> (T, size)
    events: list[dict[str, Any]]
    truncated: bool  # the file ended inside a chunk (a crash mid-write)


def read_log(path: str | Path) -> Telemetry:
    data = Path(path).read_bytes()
    if not data.startswith(MAGIC):
        raise ValueError(f"{path} is not a footfall telemetry log (bad magic); expected one written by footfall deploy")
    pos, header, rows, events, truncated = len(MAGIC), None, [], [], False
    while pos < len(data):
        if pos + _CHUNK.size > len(data):
            truncated = True
            break
        kind, length = _CHUNK.unpack_from(data, pos)
        start, end = pos + _CHUNK.size, pos + _CHUNK.size + length
        if end > len(data):
            truncated = True
            break
        payload = data[start:end]
        if kind == HEADER:
            header = json.loads(payload)
        elif kind == TICK:
            rows.append(np.frombuffer(payload, dtype="<f8"))
        elif kind == EVENT:
            events.append(json.loads(payload))
        else:
            raise ValueError(f"{path}: unknown chunk kind {kind} at byte {pos}; the file is damaged")
        pos = end
    if header is None:
        raise ValueError(f"{path}: no header chunk; the file is empty or damaged")
    table = np.array(rows) if rows else np.zeros((0, sum(n for _, n in header["fields"])))
    ticks, col = {}, 0
    for name, n in header["fields"]:
        ticks[name] = table[:, col : col + n]
        col += n
    return Telemetry(header, ticks, events, truncated)


def replay(log: str | Path, policy_path: str | Path) -> dict[str, Any]:
    """Re-run the policy on the logged observations of the ticks it ran on; report the largest action difference."""
    from footfall.deploy.policy import OnnxPolicy
    from footfall.deploy.runtime import Mode

    tel = read_log(log)
    policy = OnnxPolicy.load(policy_path)
    run = tel.ticks["mode"][:, 0] == Mode.RUN
    if "ran" in tel.ticks:  # ticks where the policy ran (RUN ticks on a stale reading, or entering RUN, hold)
        run &= tel.ticks["ran"][:, 0] == 1.0
    obs, act = tel.ticks["obs"][run], tel.ticks["action"][run]
    if obs.shape[1] != policy.contract.observation_size:
        raise ValueError(
            f"the log's observations have {obs.shape[1]} entries, {policy_path} expects "
            f"{policy.contract.observation_size}: the log was recorded with another policy"
        )
    diff = np.abs(policy(obs) - act) if len(obs) else np.zeros((0, 1))
    return {
        "log": str(log),
        "ticks": int(len(tel.ticks["mode"])),
        "run_ticks": int(run.sum()),
        "max_action_diff": float(diff.max()) if diff.size else 0.0,
        "truncated": tel.truncated,
        "events": len(tel.events),
    }
