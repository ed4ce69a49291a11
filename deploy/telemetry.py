"""Telemetry log: a small documented binary format, one file per deploy session, written off the control thread.

Format, version 2 (little endian):

    magic    8 bytes   b"FFTLM\\x00\\x02\\n"  ("FFTLM", version as u16 big endian, newline)
    chunks   repeated  kind u8 | length u32 | crc32 u32 | payload (length bytes)

    crc32 is zlib.crc32 over the 5 bytes kind|length followed by the payload.

    kind 1  header   UTF-8 JSON object, the first chunk and only there: {"format": 2, "fields": [[name, size], ...],
                     and the session's metadata: "period_s", "controller", "robot", "contract" (the policy contract
                     or null), "started_utc", ...}
    kind 2  tick     float64 x sum(sizes): the fields in header order; length is exactly 8 * sum(sizes)
    kind 3  event    UTF-8 JSON object. The runtime's mode changes: {"t": runtime clock, "tick": n, "event": "mode",
                     "from", "to", "reason"} (a fault's reason is the `reason` of the change to DAMP). The writer
                     adds {"event": "dropped", "dropped_ticks", "dropped_events"} when the ring was full and records
                     were lost, and {"event": "closed", "ticks_written", "dropped_ticks", "dropped_events"} last on a
                     clean close: a log without it ended in a crash, a kill or a power cut.

Version 1 (no crc, no writer events) is refused with a message saying so.

Tick fields: whatever the header lists, each a float64 vector; a reader must use the header and assume no field
exists. The deploy runtime (runtime.telemetry_fields) writes: t (robot clock, s), wall_s (since the loop started),
lateness_s (wake-up after the deadline), compute_s (reading -> command sent), mode (runtime.Mode as a number),
command (operator command), ran (1 when the policy ran this tick), obs (its observation, zeros when it did not run),
action (its output, zeros when it did not run), joint_pos, joint_vel, joint_torque (measured, NaN when the robot does
not report it), imu_quat (wxyz), gyro, accel, foot_force, age_s (age of the reading), q_target, kp, kd (the command
sent). `set(name, None)` writes NaN: "not measured this tick".

Records are in the order they were committed: the runtime's events precede the tick they happened in, and
read_log gives each event the number of ticks before it (`event_ticks`).

Truncation: a file that ends inside a chunk, or whose tail is zero-filled or torn (a crash, SIGKILL, or a power cut
before the filesystem wrote its last blocks), reads up to its last whole, intact record, with `truncated=True` (a
damaged last record followed by nothing but zeros counts as torn). Damage anywhere else, and any file that is not a
version-2 log, raises TelemetryFormatError (a ValueError) naming the file and the problem: one exception type for
any content (a missing or unreadable file is still an OSError).

Writer design (TelemetryWriter): the control tick never does file IO. `set()` fills a preallocated row, `commit()`
copies it into a preallocated ring of `capacity` rows (no allocation in steady state) and `event()` puts its payload
in the same ring, so ticks and events stay in order. One producer (the tick) and one consumer (a writer thread): the
producer only advances `_head`, the consumer only advances `_tail`, so neither takes a lock; the producer wakes the
writer through a threading.Event when the ring is half full or an event arrives, and otherwise the writer wakes every
`write_interval_s`. A full ring drops the record and counts it (`dropped_ticks`, `dropped_events`): the tick never
waits. The writer encodes and writes what is queued at every wake (in batches, releasing the GIL in os.write) and
fsyncs every `fsync_interval_s`, and at once after an event (a fault's record is on disk one fsync later). A
SIGKILL loses what was not yet written (about `write_interval_s`), a power cut what was not yet fsynced (about
`write_interval_s + fsync_interval_s`); `flush(timeout)` waits until everything committed is fsynced. A write error
(ENOSPC, EIO, ...) is stored in `error`; the writer stops writing, keeps emptying the ring so that the tick never
sees it, and `close()` reports it. The writer thread drops any real-time scheduling it inherited (SCHED_FIFO from
realtime_setup) so that it never preempts the control loop.
"""

from __future__ import annotations

import atexit
import json
import math
import os
import struct
import sys
import threading
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

VERSION = 2
MAGIC = b"FFTLM" + VERSION.to_bytes(2, "big") + b"\n"
HEADER, TICK, EVENT = 1, 2, 3
_CHUNK = struct.Struct("<BII")  # kind, length, crc32
_KL = struct.Struct("<BI")  # kind, length: the crc's prefix
MAX_FIELDS = 4096
MAX_WIDTH = 1 << 16  # float64 per tick (512 KiB)
MAX_NAME = 256
MAX_HEADER_BYTES = 16 << 20
MAX_EVENT_BYTES = 1 << 20
MAX_INT_DIGITS = 100


class TelemetryFormatError(ValueError):
    """The file is not a readable footfall telemetry log; the message names the file and what is wrong."""


def _crc(kind: int, payload: bytes | memoryview) -> int:
    return zlib.crc32(payload, zlib.crc32(_KL.pack(kind, len(payload))))


def _chunk(kind: int, payload: bytes) -> bytes:
    return _CHUNK.pack(kind, len(payload), _crc(kind, payload)) + payload


def check_fields(fields: Any) -> list[tuple[str, int]]:
    """Validate a field list [[name, size], ...]; raise ValueError saying what is wrong."""
    if not isinstance(fields, (list, tuple)):
        raise ValueError(f'"fields" must be a list of [name, size] pairs, got {type(fields).__name__}')
    if len(fields) > MAX_FIELDS:
        raise ValueError(f'"fields" lists {len(fields)} fields, more than {MAX_FIELDS}')
    out, seen, width = [], set(), 0
    for i, f in enumerate(fields):
        if not isinstance(f, (list, tuple)) or len(f) != 2:
            raise ValueError(f'"fields"[{i}] must be a [name, size] pair, got {str(f)[:80]}')
        name, size = f
        if not isinstance(name, str) or not 0 < len(name) <= MAX_NAME:
            raise ValueError(f'"fields"[{i}]: the name must be a string of 1 to {MAX_NAME} characters')
        if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size <= MAX_WIDTH:
            raise ValueError(f'"fields"[{i}] ({name}): size must be an integer from 0 to {MAX_WIDTH}, got {size!r}')
        if name in seen:
            raise ValueError(f'"fields"[{i}]: {name} appears twice')
        seen.add(name)
        width += size
        out.append((name, size))
    if width > MAX_WIDTH:
        raise ValueError(f"the fields add up to {width} values per tick, more than {MAX_WIDTH}")
    return out


def _parse_int(s: str) -> int:
    if len(s) > MAX_INT_DIGITS:
        raise ValueError(f"an integer with {len(s)} digits")
    return int(s)


def _loads(payload: bytes | memoryview) -> Any:
    return json.loads(bytes(payload).decode("utf-8"), parse_int=_parse_int)


def _json_default(x: Any) -> Any:
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, np.generic):
        return x.item()
    return str(x)


class TelemetryWriter:
    """Writes a telemetry log from a writer thread; see the module docstring for the design.

    Stats (read any time; `stats()` for all of them): ticks_written, ticks_synced (on disk for sure),
    dropped_ticks, dropped_events, fsyncs, set_errors, error (None, or what went wrong writing).
    """

    def __init__(
        self,
        path: str | Path,
        fields: list[tuple[str, int]],
        meta: dict[str, Any],
        *,
        force: bool = False,
        capacity: int = 4096,
        write_interval_s: float = 0.1,
        fsync_interval_s: float = 0.5,
        sync_events: bool = True,
        close_timeout_s: float = 10.0,
    ):
        if capacity < 2:
            raise ValueError(f"capacity must be at least 2 records, got {capacity}")
        if not 0 < write_interval_s <= fsync_interval_s <= 1.0:
            raise ValueError(
                "need 0 < write_interval_s <= fsync_interval_s <= 1 s (a power cut must lose at most a second), "
                f"got {write_interval_s} and {fsync_interval_s}"
            )
        self.path = Path(path)
        self.fields = check_fields(fields)
        self.width = sum(n for _, n in self.fields)
        self.offsets: dict[str, slice] = {}
        col = 0
        for name, n in self.fields:
            self.offsets[name] = slice(col, col + n)
            col += n
        self.row = np.zeros(self.width)  # fill with set(), then commit()
        self.write_interval_s, self.fsync_interval_s = write_interval_s, fsync_interval_s
        self.sync_events, self.close_timeout_s = sync_events, close_timeout_s
        # the ring: written by the producer at _head, read by the writer at _tail (counts of records, not slots)
        self._cap = capacity
        self._rows = np.zeros((capacity, self.width))
        self._slot = list(self._rows)  # per-slot views, so that commit() creates no array
        self._kinds = [0] * capacity
        self._payloads: list[dict[str, Any] | None] = [None] * capacity
        self._head = 0
        self._tail = 0
        self._wake_at = capacity // 2
        self._wake = threading.Event()
        self._cv = threading.Condition()
        # stats
        self.ticks_written = 0
        self.ticks_synced = 0
        self.dropped_ticks = 0
        self.dropped_events = 0
        self.ticks_discarded = 0  # queued but not written because of an earlier write error
        self.fsyncs = 0
        self.set_errors = 0
        self.set_error_first: str | None = None
        self.error: str | None = None
        # writer state
        self._closed = False  # no more records accepted
        self._done = False  # the writer thread finished
        self._sync_req = False
        self._written = 0  # records (ticks and events) handed to the OS
        self._synced = 0  # records known to be on disk
        self._bytes_written = 0
        self._bytes_synced = 0
        self._dropped_logged = (0, 0)
        self._tick_base_crc = zlib.crc32(_KL.pack(TICK, 8 * self.width))
        self._tick_prefix = _KL.pack(TICK, 8 * self.width)
        self._result: dict[str, Any] | None = None

        header = json.dumps({**meta, "format": VERSION, "fields": [list(f) for f in self.fields]}).encode()
        if len(header) > MAX_HEADER_BYTES:
            raise ValueError(f"the telemetry header is {len(header)} bytes, more than {MAX_HEADER_BYTES}")
        flags = os.O_WRONLY | os.O_CREAT | getattr(os, "O_CLOEXEC", 0) | (os.O_TRUNC if force else os.O_EXCL)
        try:
            self._fd = os.open(self.path, flags, 0o644)
        except FileExistsError:
            raise FileExistsError(
                f"{self.path} exists: pass --force to overwrite it, or choose another --log path"
            ) from None
        try:
            self._write_all(MAGIC + _chunk(HEADER, header))
            os.fsync(self._fd)
            fsync_dir(self.path.parent)  # the file's name survives a power cut too
        except BaseException:
            os.close(self._fd)
            if not force:  # ours, and unusable: do not leave it to block the next attempt
                self.path.unlink(missing_ok=True)
            raise
        self._thread = threading.Thread(target=self._run, name="footfall-telemetry", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    # ------------------------------------------------------------------ producer side (the control tick)

    def set(self, name: str, value: Any) -> None:
        """Set a field of the current row; None writes NaN. Never raises: a bad name or shape is counted."""
        try:
            self.row[self.offsets[name]] = math.nan if value is None else value
        except (KeyError, ValueError, TypeError, IndexError) as e:
            self.set_errors += 1
            if self.set_error_first is None:
                self.set_error_first = f"set({name!r}): {type(e).__name__}: {e}"

    def commit(self) -> None:
        """Queue the current row; never blocks, never does IO. A full ring drops it and counts it."""
        h = self._head
        if self._closed or h - self._tail >= self._cap:
            self.dropped_ticks += 1
            return
        i = h % self._cap
        np.copyto(self._slot[i], self.row)
        self._kinds[i] = TICK
        self._head = h + 1
        if h - self._tail >= self._wake_at:
            self._wake.set()

    def event(self, **payload: Any) -> None:
        """Queue an event (a JSON object) between the ticks; never blocks, never does IO."""
        h = self._head
        if self._closed or h - self._tail >= self._cap:
            self.dropped_events += 1
            return
        i = h % self._cap
        self._payloads[i] = payload
        self._kinds[i] = EVENT
        self._head = h + 1
        self._wake.set()

    # ------------------------------------------------------------------ control (any thread but the writer)

    def flush(self, timeout: float | None = 5.0) -> bool:
        """Wait until everything committed so far is fsynced; False on a timeout or a write error."""
        target = self._head
        if self._synced >= target:
            return True
        if self.error is not None or self._done:
            return False
        self._sync_req = True
        self._wake.set()
        with self._cv:
            self._cv.wait_for(lambda: self._synced >= target or self.error is not None or self._done, timeout)
        return self._synced >= target

    def stats(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "ticks_written": self.ticks_written,
            "ticks_synced": self.ticks_synced,
            "dropped_ticks": self.dropped_ticks,
            "dropped_events": self.dropped_events,
            "ticks_discarded": self.ticks_discarded,
            "fsyncs": self.fsyncs,
            "set_errors": self.set_errors,
            "set_error_first": self.set_error_first,
            "error": self.error,
        }

    def close(self) -> dict[str, Any]:
        """Drain, fsync, close and join the writer; idempotent. Returns stats(); warns on stderr about an error."""
        if self._result is not None:
            return self._result
        self._closed = True
        self._wake.set()
        if threading.current_thread() is not self._thread:
            self._thread.join(self.close_timeout_s)
        if self._thread.is_alive() and self.error is None:
            self.error = (
                f"the telemetry writer did not finish within {self.close_timeout_s} s (a hung disk?); "
                f"{self.path} may lack its last records"
            )
        atexit.unregister(self.close)
        self._result = self.stats()
        problems = [p for p in (self.error, self.set_error_first) if p]
        if self.dropped_ticks or self.dropped_events:
            problems.append(f"{self.dropped_ticks} ticks and {self.dropped_events} events dropped (ring full)")
        if problems:
            print(f"warning: telemetry {self.path}: " + "; ".join(problems), file=sys.stderr)
        return self._result

    def __enter__(self) -> TelemetryWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ the writer thread

    def _run(self) -> None:
        _drop_realtime_priority()
        last_sync = time.monotonic()
        while True:
            self._wake.wait(self.write_interval_s)
            self._wake.clear()
            closing = self._closed
            try:
                urgent = self._drain()
                now = time.monotonic()
                if closing or urgent or self._sync_req or now - last_sync >= self.fsync_interval_s:
                    self._sync()
                    last_sync = now
            except Exception as e:  # never let the thread die: the ring would fill and every tick would drop
                self._fail(e)
            if closing and self._tail == self._head:
                break
        try:
            self._write(_chunk(EVENT, json.dumps({"event": "closed", **self._counts()}).encode()), 0)
            self._sync()
        except Exception as e:
            self._fail(e)
        try:
            os.close(self._fd)
        except OSError as e:
            self._fail(e)
        with self._cv:
            self._done = True
            self._cv.notify_all()

    def _counts(self) -> dict[str, int]:
        return {
            "ticks_written": self.ticks_written,
            "dropped_ticks": self.dropped_ticks,
            "dropped_events": self.dropped_events,
        }

    def _drain(self) -> bool:
        """Write everything queued, in batches of up to 32 records; True when an event was among them."""
        head = self._head
        urgent = False
        while self._tail < head:
            if self.error is not None:  # keep the ring empty, write nothing
                for t in range(self._tail, head):
                    i = t % self._cap
                    self.ticks_discarded += self._kinds[i] == TICK
                    self._payloads[i] = None
                self._tail = head
                break
            parts: list[bytes] = []
            t, end, nt = self._tail, min(head, self._tail + 32), 0  # (small: the GIL is held while encoding)
            while t < end:
                i = t % self._cap
                if self._kinds[i] == TICK:
                    b = self._slot[i].tobytes()
                    parts.append(self._tick_prefix + struct.pack("<I", zlib.crc32(b, self._tick_base_crc)) + b)
                    nt += 1
                else:
                    p, self._payloads[i] = self._payloads[i], None
                    parts.append(_chunk(EVENT, _encode_event(p)))
                    urgent = urgent or self.sync_events
                t += 1
            self._tail = t  # the slots are copied out: the producer may reuse them now
            if self._write(b"".join(parts), nt):
                self._written = t
        d = (self.dropped_ticks, self.dropped_events)
        if d != self._dropped_logged:
            self._dropped_logged = d
            ev = {"event": "dropped", "dropped_ticks": d[0], "dropped_events": d[1], "capacity": self._cap}
            self._write(_chunk(EVENT, json.dumps(ev).encode()), 0)
        return urgent

    def _write(self, data: bytes, ticks: int) -> bool:
        """Hand `data` to the OS (os.write releases the GIL); after a write error, write nothing."""
        if self.error is not None:
            return False
        try:
            self._write_all(data)
        except OSError as e:
            self._fail(e)
            return False
        self.ticks_written += ticks
        self._bytes_written += len(data)
        return True

    def _write_all(self, data: bytes) -> None:
        mv = memoryview(data)
        while mv:
            n = os.write(self._fd, mv)
            mv = mv[n:]

    def _sync(self) -> None:
        self._sync_req = False
        if self.error is not None:
            return
        written, ticks, nbytes = self._written, self.ticks_written, self._bytes_written
        if nbytes > self._bytes_synced:
            try:
                os.fsync(self._fd)
            except OSError as e:
                self._fail(e)
                return
            self.fsyncs += 1
            self._bytes_synced = nbytes
        with self._cv:
            self._synced = max(self._synced, written)
            self.ticks_synced = ticks
            self._cv.notify_all()

    def _fail(self, e: BaseException) -> None:
        if self.error is None:
            what = f"[Errno {e.errno}] {e.strerror}" if isinstance(e, OSError) and e.errno else f"{e}"
            self.error = (
                f"writing {self.path} failed ({type(e).__name__}: {what}); the log stops at its last record written "
                "before that, the run went on without logging"
            )
        with self._cv:
            self._cv.notify_all()


def _encode_event(payload: dict[str, Any] | None) -> bytes:
    try:
        b = json.dumps(payload, default=_json_default).encode()
    except (TypeError, ValueError) as e:
        b = json.dumps({"event": "unserializable", "error": str(e), "repr": repr(payload)[:4096]}).encode()
    if len(b) > MAX_EVENT_BYTES:
        b = json.dumps({"event": "oversized", "bytes": len(b), "head": b[:4096].decode("utf-8", "replace")}).encode()
    return b


def _drop_realtime_priority() -> None:
    """The writer thread inherits the control thread's SCHED_FIFO; give it up so it never delays a tick."""
    try:
        if os.sched_getscheduler(0) != os.SCHED_OTHER:
            os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
    except (OSError, AttributeError):
        pass


def fsync_dir(d: Path) -> None:
    """fsync a directory (a file's new name survives a power cut); best effort."""
    try:
        fd = os.open(d, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# ---------------------------------------------------------------------- reading


@dataclass
class Telemetry:
    header: dict[str, Any]
    ticks: dict[str, np.ndarray]  # field -> (T, size)
    events: list[dict[str, Any]]
    truncated: bool  # the file ended inside a record, or with a torn/zero-filled tail (a crash mid-write)
    event_ticks: list[int] = field(default_factory=list)  # per event: how many ticks precede it in the file
    truncated_at: int | None = None  # byte offset of the first record not read, when truncated
    num_ticks: int = 0

    @property
    def closed(self) -> bool:
        """The writer closed the log cleanly (its last record is the "closed" event)."""
        return bool(self.events) and self.events[-1].get("event") == "closed"


def _last_nonzero(data: bytes, start: int) -> int:
    """Index of the last non-zero byte at or after `start`, or start - 1 if there is none."""
    end = len(data)
    block = 1 << 20
    while end > start:
        lo = max(start, end - block)
        a = np.frombuffer(data, np.uint8, count=end - lo, offset=lo)
        nz = np.flatnonzero(a)
        if len(nz):
            return lo + int(nz[-1])
        end = lo
    return start - 1


def read_log(path: str | Path) -> Telemetry:
    """Read a telemetry log; TelemetryFormatError (a ValueError) for anything that is not a readable one."""
    return parse_log(Path(path).read_bytes(), str(path))


def parse_log(data: bytes, name: str = "<telemetry>") -> Telemetry:
    """Parse the bytes of a telemetry log; `name` goes into error messages."""

    def bad(msg: str) -> TelemetryFormatError:
        return TelemetryFormatError(f"{name}: {msg}")

    n = len(data)
    if n < len(MAGIC):
        if MAGIC.startswith(data):
            raise bad("the file ends before its header (empty or cut off at once); nothing was recorded")
        raise bad("not a footfall telemetry log (bad magic); expected a .fflog written by footfall deploy")
    if data[:8] != MAGIC:
        if data[:5] == b"FFTLM" and data[7:8] == b"\n":
            v = int.from_bytes(data[5:7], "big")
            raise bad(
                f"telemetry format version {v}; this footfall reads version {VERSION} only "
                f"({'an older' if v < VERSION else 'a newer'} footfall wrote it: read it with that one)"
            )
        raise bad("not a footfall telemetry log (bad magic); expected a .fflog written by footfall deploy")
    mv = memoryview(data)
    H = _CHUNK.size
    pos = len(MAGIC)
    header: dict[str, Any] | None = None
    fields: list[tuple[str, int]] = []
    width = 0
    parts: list[np.ndarray] = []
    ntick = 0
    events: list[dict[str, Any]] = []
    event_ticks: list[int] = []
    truncated_at: int | None = None
    rec: np.dtype | None = None
    window = 256

    def torn(span_end: int) -> bool:  # nothing but zeros after this record: a torn or zero-filled tail
        return _last_nonzero(data, min(span_end, n)) < min(span_end, n)

    while pos < n:
        if n - pos < H:
            truncated_at = pos
            break
        kind, length, crc = _CHUNK.unpack_from(data, pos)
        if kind == TICK and rec is not None:  # fast path: a run of tick records
            rs = H + 8 * width
            kmax = min((n - pos) // rs, window)
            if kmax:
                v = np.frombuffer(data, rec, count=kmax, offset=pos)
                ok = (v["kind"] == TICK) & (v["length"] == 8 * width)
                k = kmax if ok.all() else int(np.argmin(ok))
                base = zlib.crc32(_KL.pack(TICK, 8 * width))
                for j, c in enumerate(v["crc"][:k].tolist()):
                    s = pos + j * rs + H
                    if zlib.crc32(mv[s : s + 8 * width], base) != c:
                        k = j
                        break
                window = min(window * 2, 1 << 16) if k == kmax else 256  # short runs between frequent events
                if k:
                    parts.append(v["data"][:k])
                    ntick += k
                    pos += k * rs
                    continue
        if kind not in (HEADER, TICK, EVENT):
            if torn(pos + H):
                truncated_at = pos
                break
            raise bad(f"unknown chunk kind {kind} at byte {pos}; the file is damaged")
        if kind == HEADER:
            if pos != len(MAGIC):
                raise bad(f"a second header at byte {pos}; the file is damaged")
            if length > MAX_HEADER_BYTES:
                if torn(pos + H):
                    truncated_at = pos
                    break
                raise bad(f"the header chunk claims {length} bytes, more than {MAX_HEADER_BYTES}; the file is damaged")
        elif header is None:
            raise bad(f"a {'tick' if kind == TICK else 'event'} chunk at byte {pos} before the header")
        elif kind == TICK and length != 8 * width:
            if torn(pos + H + 8 * width):
                truncated_at = pos
                break
            raise bad(
                f"a tick chunk at byte {pos} holds {length} bytes, the header's fields need {8 * width} "
                f"({width} float64); the file is damaged"
            )
        elif kind == EVENT and length > MAX_EVENT_BYTES:
            if torn(pos + H):
                truncated_at = pos
                break
            raise bad(f"an event chunk at byte {pos} claims {length} bytes, more than {MAX_EVENT_BYTES}")
        end = pos + H + length
        if end > n:
            truncated_at = pos
            break
        payload = mv[pos + H : end]
        if _crc(kind, payload) != crc:
            if torn(end):
                truncated_at = pos
                break
            raise bad(f"checksum mismatch in the {_KIND_NAMES[kind]} chunk at byte {pos}; the file is damaged")
        if kind == HEADER:
            try:
                h = _loads(payload)
            except (ValueError, RecursionError) as e:
                raise bad(f"the header is not valid JSON ({_short(e)})") from None
            if not isinstance(h, dict):
                raise bad(f"the header is a JSON {_json_type(h)}, not an object")
            if "fields" not in h:
                raise bad('the header has no "fields" list')
            try:
                fields = check_fields(h["fields"])
            except ValueError as e:
                raise bad(f"header: {e}") from None
            header = h
            width = sum(s for _, s in fields)
            rec = np.dtype([("kind", "u1"), ("length", "<u4"), ("crc", "<u4"), ("data", "<f8", (width,))])
        elif kind == TICK:
            parts.append(np.frombuffer(data, "<f8", count=width, offset=pos + H).reshape(1, width))
            ntick += 1
        else:
            try:
                ev = _loads(payload)
            except (ValueError, RecursionError) as e:
                raise bad(f"the event chunk at byte {pos} is not valid JSON ({_short(e)})") from None
            if not isinstance(ev, dict):
                raise bad(f"the event chunk at byte {pos} is a JSON {_json_type(ev)}, not an object")
            events.append(ev)
            event_ticks.append(ntick)
        pos = end
    if header is None:
        raise bad(
            "the file was cut off before its header was complete; nothing was recorded"
            if truncated_at is not None
            else "no header chunk; the file is damaged"
        )
    table = np.concatenate(parts) if parts else np.zeros((0, width))
    ticks, col = {}, 0
    for fname, size in fields:
        ticks[fname] = table[:, col : col + size]
        col += size
    return Telemetry(header, ticks, events, truncated_at is not None, event_ticks, truncated_at, ntick)


_KIND_NAMES = {HEADER: "header", TICK: "tick", EVENT: "event"}


def _json_type(x: Any) -> str:
    if x is None:
        return "null"
    if isinstance(x, bool):
        return "boolean"
    return {list: "array", str: "string", int: "number", float: "number"}.get(type(x), type(x).__name__)


def _short(e: BaseException) -> str:
    if isinstance(e, RecursionError):
        return "nested too deeply"
    return str(e).splitlines()[0][:200] if str(e) else type(e).__name__


def replay(log: str | Path, policy_path: str | Path) -> dict[str, Any]:
    """Re-run the policy on the logged observations of the ticks it ran on; report the largest action difference."""
    from footfall.deploy.policy import OnnxPolicy
    from footfall.deploy.runtime import Mode

    tel = read_log(log)
    missing = [f for f in ("mode", "obs", "action") if f not in tel.ticks]
    if missing:
        raise ValueError(
            f"{log} has no {', '.join(missing)} field{'s' if len(missing) > 1 else ''} (it records "
            f"{', '.join(tel.ticks) or 'none'}): replay needs a log that `footfall deploy` wrote while running a policy"
            f" (controller: {tel.header.get('controller', 'unknown')})"
        )
    policy = OnnxPolicy.load(policy_path)
    c = policy.contract
    for fname, want in (("mode", 1), ("ran", 1), ("obs", c.observation_size), ("action", c.action_size)):
        if fname in tel.ticks and tel.ticks[fname].shape[1] != want:
            raise ValueError(
                f"the log's {fname} has {tel.ticks[fname].shape[1]} entries, {policy_path} expects {want}: "
                + ("the log was recorded with another policy" if fname in ("obs", "action") else "the log is damaged")
            )
    run = tel.ticks["mode"][:, 0] == Mode.RUN
    if "ran" in tel.ticks:  # ticks where the policy ran (RUN ticks on a stale reading, or entering RUN, hold)
        run &= tel.ticks["ran"][:, 0] == 1.0
    obs, act = tel.ticks["obs"][run], tel.ticks["action"][run]
    diff = np.abs(policy(obs) - act) if len(obs) else np.zeros((0, 1))
    return {
        "log": str(log),
        "ticks": int(len(tel.ticks["mode"])),
        "run_ticks": int(run.sum()),
        "max_action_diff": float(diff.max()) if diff.size else 0.0,
        "truncated": tel.truncated,
        "events": len(tel.events),
    }
