"""Telemetry that survives the crash it records: the writer thread, the format's errors, MCAP export, the CLI."""

from __future__ import annotations

import errno
import json
import os
import random
import signal
import struct
import subprocess
import sys
import textwrap
import threading
import time
import zlib
from pathlib import Path

import numpy as np
import pytest

from footfall.deploy import telemetry as T
from footfall.deploy.logtool import log_main, tick_times
from footfall.deploy.telemetry import TelemetryFormatError, TelemetryWriter, parse_log, read_log

FIELDS = [("t", 1), ("wall_s", 1), ("mode", 1), ("command", 3), ("obs", 3), ("action", 2), ("imu_quat", 4)]
ROOT = Path(__file__).resolve().parents[1]


def _row(w: TelemetryWriter, k: int) -> None:
    w.set("t", 0.02 * k)
    w.set("wall_s", 0.02 * k)
    w.set("mode", 3.0 if k >= 10 else 1.0)
    w.set("command", [0.5, 0.0, k])
    w.set("obs", [k, -k, 0.25])
    w.set("imu_quat", None if k % 5 == 0 else [1.0, 0.0, 0.0, 0.0])  # None: not measured this tick -> NaN


def _mode(w: TelemetryWriter, k: int, frm: str, to: str, reason: str) -> None:
    w.event(t=0.02 * k, tick=k, event="mode", **{"from": frm, "to": to, "reason": reason})


def _small_log(path: Path, ticks: int = 30, **kw) -> Path:  # noqa: ANN003
    meta = {"period_s": 0.02, "robot": "go1", "controller": "policy", "started_utc": "2025-01-02T03:04:05+00:00"}
    w = TelemetryWriter(path, FIELDS, {**meta, "contract": {"robot": {"joint_names": ["a", "b"]}}}, **kw)
    for k in range(ticks):
        _row(w, k)
        if k == 10:
            _mode(w, k, "STAND_UP", "RUN", "stand-up done")
        if k == 25:
            _mode(w, k, "RUN", "DAMP", "tilt 52 deg > 40 deg")
        w.commit()
    assert w.close()["error"] is None
    return path


class _FdSpy:
    """Wraps os.write/os.fsync: records the calling thread for calls on one fd; can block or fail them."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, fd: int):
        self.fd, self.calls = fd, []
        self.fail: OSError | None = None
        self.fail_fsync: OSError | None = None
        self.gate: threading.Event | None = None
        self.entered = threading.Event()
        real_write, real_fsync = os.write, os.fsync

        def write(f: int, data: bytes) -> int:
            if f == self.fd:
                self.calls.append(("write", threading.current_thread().name))
                self.entered.set()
                if self.gate is not None:
                    self.gate.wait(10)
                if self.fail is not None:
                    raise self.fail
            return real_write(f, data)

        def fsync(f: int) -> None:
            if f == self.fd:
                self.calls.append(("fsync", threading.current_thread().name))
                if self.fail_fsync is not None:
                    raise self.fail_fsync
            return real_fsync(f)

        monkeypatch.setattr(os, "write", write)
        monkeypatch.setattr(os, "fsync", fsync)


# ---------------------------------------------------------------------- the writer


def test_the_tick_does_no_file_io(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Stops: file writes and fsyncs on the control thread (a slow disk or a fault's log record delaying a tick,
    even the damping command on the fault path). commit(), event() and set() touch no file; the writer thread does."""
    w = TelemetryWriter(tmp_path / "a.fflog", FIELDS, {"period_s": 0.02}, write_interval_s=0.05)
    spy = _FdSpy(monkeypatch, w._fd)
    size0 = (tmp_path / "a.fflog").stat().st_size
    for k in range(200):
        _row(w, k)
        if k % 50 == 7:
            _mode(w, k, "RUN", "DAMP", "fault")
        w.commit()
    ticked = [c for c in spy.calls if c[1] == threading.current_thread().name]
    assert ticked == []
    assert w.flush(5.0) and w.ticks_synced == 200
    assert (tmp_path / "a.fflog").stat().st_size > size0
    w.close()
    assert spy.calls and {name for _, name in spy.calls} == {"footfall-telemetry"}


def test_the_tick_never_waits_for_a_stuck_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Stops: a producer that blocks while the writer sits in a slow write (NFS, a dying SD card): commit() and
    event() return at once however long os.write takes."""
    w = TelemetryWriter(tmp_path / "a.fflog", FIELDS, {}, capacity=64, write_interval_s=0.01)
    spy = _FdSpy(monkeypatch, w._fd)
    spy.gate = threading.Event()
    w.commit()
    _mode(w, 1, "RUN", "DAMP", "fault")  # wakes the writer, which now hangs in os.write
    assert spy.entered.wait(5)
    worst = 0.0
    for k in range(300):  # more than the ring holds
        _row(w, k)
        t0 = time.perf_counter()
        w.commit()
        if k % 100 == 0:
            _mode(w, k, "RUN", "DAMP", "again")
        worst = max(worst, time.perf_counter() - t0)
    assert worst < 0.05, worst  # (blocking would take the 10 s gate timeout)
    assert w.dropped_ticks > 0
    spy.gate.set()
    w.close()


def test_sigkill_loses_at_most_a_second(tmp_path: Path) -> None:
    """Stops: logs that lose the end of a run when the process dies (SIGKILL, a segfault in a driver): ticks reach
    the file within about write_interval_s, so a killed 250 Hz process loses well under a second."""
    log, shm, hz = tmp_path / "k.fflog", tmp_path / "counter", 250.0
    shm.write_bytes(bytes(8))
    child = textwrap.dedent(
        """
        import mmap, os, sys, time
        import numpy as np
        from footfall.deploy.telemetry import TelemetryWriter
        log, shm, hz = sys.argv[1], sys.argv[2], float(sys.argv[3])
        fd = os.open(shm, os.O_RDWR)
        counter = np.frombuffer(mmap.mmap(fd, 8), dtype=np.int64)
        w = TelemetryWriter(log, [("k", 1), ("x", 16)], {"period_s": 1 / hz})
        t0, k = time.perf_counter(), 0
        while True:
            k += 1
            w.set("k", k)
            w.commit()
            counter[0] = k  # shared memory: survives the kill
            time.sleep(max(0.0, t0 + k / hz - time.perf_counter()))
        """
    )
    p = subprocess.Popen([sys.executable, "-c", child, str(log), str(shm), str(hz)])
    try:
        deadline = time.monotonic() + 30
        while int.from_bytes(shm.read_bytes(), "little") < 0.2 * hz:
            assert p.poll() is None and time.monotonic() < deadline, "the child did not start writing"
            time.sleep(0.02)
        time.sleep(1.2)
    finally:
        os.kill(p.pid, signal.SIGKILL)
        p.wait(10)
    committed = int.from_bytes(shm.read_bytes(), "little")
    tel = read_log(log)
    k = tel.ticks["k"][:, 0]
    assert len(k) and np.array_equal(k, np.arange(1, len(k) + 1))  # in order, nothing dropped
    lost = committed - int(k[-1])
    print(f"SIGKILL at {hz:g} Hz lost {lost} of {committed} committed ticks ({lost / hz:.3f} s)")
    assert 0 <= lost <= hz * 1.0, f"lost {lost} of {committed} ticks ({lost / hz:.2f} s)"
    assert not tel.closed


def test_fsync_cadence_and_flush(tmp_path: Path) -> None:
    """Stops: fsync only at close (a power cut loses the fall itself): the writer fsyncs every fsync_interval_s
    while ticks come in, and flush() returns once everything committed is on disk."""
    w = TelemetryWriter(tmp_path / "a.fflog", FIELDS, {}, write_interval_s=0.05, fsync_interval_s=0.2)
    t0 = time.monotonic()
    k = 0
    while time.monotonic() - t0 < 0.7:
        _row(w, k)
        w.commit()
        k += 1
        time.sleep(0.005)
    assert w.fsyncs >= 2
    assert k - w.ticks_synced <= 0.5 / 0.005  # at most ~fsync_interval + write_interval behind
    assert w.flush(5.0) and w.ticks_synced == k
    s = w.close()
    assert s == w.close()  # idempotent
    assert s["ticks_written"] == k and s["error"] is None and read_log(tmp_path / "a.fflog").num_ticks == k


@pytest.mark.parametrize("where", ["write", "fsync"])
def test_io_error_never_reaches_the_tick(
    where: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Stops: a full disk (ENOSPC) or a failing card (EIO) crashing the control loop, or the ring filling up behind
    a dead writer: commit/event never raise, the writer keeps draining, and close() reports the error."""
    w = TelemetryWriter(tmp_path / "a.fflog", FIELDS, {}, capacity=32, write_interval_s=0.01, fsync_interval_s=0.02)
    for k in range(5):
        _row(w, k)
        w.commit()
    assert w.flush(5.0)
    spy = _FdSpy(monkeypatch, w._fd)
    if where == "write":
        spy.fail = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    else:
        spy.fail_fsync = OSError(errno.EIO, os.strerror(errno.EIO))
    for k in range(5, 200):  # six times the ring
        _row(w, k)
        w.commit()
        if k % 40 == 0:
            _mode(w, k, "RUN", "DAMP", "fault")
        time.sleep(0.0005)
    assert not w.flush(2.0)
    assert w.error is not None and ("No space left" if where == "write" else "Input/output error") in w.error
    deadline = time.monotonic() + 5
    while w._tail != w._head and time.monotonic() < deadline:
        time.sleep(0.01)
    assert w._tail == w._head  # drained although nothing is written
    s = w.close()
    assert s["error"] == w.error and s["ticks_discarded"] > 0
    assert "warning: telemetry" in capsys.readouterr().err
    tel = read_log(tmp_path / "a.fflog")  # what reached the file before the error still reads
    assert tel.num_ticks >= 5 and not tel.closed


def test_existing_log_is_not_overwritten_without_force(tmp_path: Path) -> None:
    """Stops: a second deploy with the same --log silently destroying the log of the run before (the fall that one
    recorded)."""
    path = _small_log(tmp_path / "a.fflog")
    before = path.read_bytes()
    with pytest.raises(FileExistsError, match="--force.*--log"):
        TelemetryWriter(path, FIELDS, {})
    assert path.read_bytes() == before
    w = TelemetryWriter(path, FIELDS, {}, force=True)
    w.close()
    assert read_log(path).num_ticks == 0


def test_events_stay_in_order_among_ticks(tmp_path: Path) -> None:
    """Stops: events written out of order with the ticks (a fault's reason attached to the wrong moment)."""
    tel = read_log(_small_log(tmp_path / "a.fflog"))
    assert [e["reason"] for e in tel.events[:2]] == ["stand-up done", "tilt 52 deg > 40 deg"]
    assert tel.event_ticks[:2] == [10, 25]  # emitted before tick k was committed: k ticks precede it
    assert tel.events[-1]["event"] == "closed" and tel.closed and tel.event_ticks[-1] == 30
    assert tel.ticks["obs"][:, 0].tolist() == list(range(30))
    assert np.isnan(tel.ticks["imu_quat"][0]).all() and tel.ticks["imu_quat"][1, 0] == 1.0


def test_full_ring_drops_and_counts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Stops: a tick that blocks when the writer falls behind, and drops that go unnoticed: a full ring drops the
    record, counts it, and the log says so."""
    w = TelemetryWriter(tmp_path / "a.fflog", FIELDS, {}, capacity=8, write_interval_s=1.0, fsync_interval_s=1.0)
    spy = _FdSpy(monkeypatch, w._fd)
    spy.gate = threading.Event()
    _row(w, 0)
    w.commit()
    _mode(w, 0, "PASSIVE", "STAND_UP", "start")  # wakes the writer: it takes both and hangs in os.write
    assert spy.entered.wait(5)
    deadline = time.monotonic() + 5
    while w._tail != 2 and time.monotonic() < deadline:
        time.sleep(0.001)
    for k in range(1, 21):
        _row(w, k)
        w.commit()
    _mode(w, 21, "RUN", "DAMP", "lost")
    assert (w.dropped_ticks, w.dropped_events) == (12, 1)
    spy.gate.set()
    s = w.close()
    assert s["dropped_ticks"] == 12 and s["ticks_written"] == 9
    tel = read_log(tmp_path / "a.fflog")
    assert tel.ticks["obs"][:, 0].tolist() == list(range(9))
    dropped = [e for e in tel.events if e["event"] == "dropped"]
    assert dropped and dropped[-1]["dropped_ticks"] == 12 and tel.events[-1]["dropped_ticks"] == 12


def test_set_never_raises_in_the_tick(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Stops: a telemetry bug (an unknown field, a sensor of another size) raising inside the control tick."""
    w = TelemetryWriter(tmp_path / "a.fflog", FIELDS, {})
    w.set("nope", 1.0)
    w.set("command", [1.0, 2.0])
    w.commit()
    s = w.close()
    assert s["set_errors"] == 2 and "nope" in s["set_error_first"]
    assert "set('nope')" in capsys.readouterr().err


def test_writer_thread_gives_up_realtime_priority(tmp_path: Path) -> None:
    """Stops: the writer thread inheriting SCHED_FIFO (realtime_setup runs before the writer starts) and preempting
    the control loop while it encodes and writes."""
    out: dict = {}

    def rt_thread() -> None:
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
        except (OSError, AttributeError) as e:
            out["skip"] = str(e)
            return
        w = TelemetryWriter(tmp_path / "a.fflog", FIELDS, {})
        w.flush(1.0)
        out["policy"] = os.sched_getscheduler(w._thread.native_id)
        out["w"] = w

    th = threading.Thread(target=rt_thread)
    th.start()
    th.join()
    if "skip" in out:
        pytest.skip(f"SCHED_FIFO not allowed here: {out['skip']}")
    out["w"].close()
    assert out["policy"] == os.SCHED_OTHER


# ---------------------------------------------------------------------- the format


def _chunks(data: bytes) -> list[tuple[int, int, int]]:
    """(offset, kind, length) of each chunk of a well-formed log."""
    out, pos = [], len(T.MAGIC)
    while pos < len(data):
        kind, length, _ = struct.unpack_from("<BII", data, pos)
        out.append((pos, kind, length))
        pos += 9 + length
    return out


def _chunk(kind: int, payload: bytes) -> bytes:
    return (
        struct.pack("<BII", kind, len(payload), zlib.crc32(payload, zlib.crc32(struct.pack("<BI", kind, len(payload)))))
        + payload
    )


def _with_header(data: bytes, payload: bytes) -> bytes:
    (pos, _, length) = _chunks(data)[0]
    return data[:pos] + _chunk(T.HEADER, payload) + data[pos + 9 + length :]


@pytest.mark.parametrize(
    ("header", "match"),
    [
        (b"{not json", "header is not valid JSON"),
        (b"[1, 2]", "a JSON array, not an object"),
        (b'{"period_s": 0.02}', 'no "fields"'),
        (b'{"fields": 5}', "must be a list"),
        (b'{"fields": [["a", -1]]}', "size must be an integer"),
        (b'{"fields": [["a", 1e308]]}', "size must be an integer"),
        (b'{"fields": [["a", 100000000]]}', "size must be an integer"),
        (b'{"fields": [[3, 1]]}', "name must be a string"),
        (b'{"fields": [["a", 1, 2]]}', "pair"),
        (b'{"fields": [["a", 1], ["a", 2]]}', "appears twice"),
        (b'{"fields": [["a", ' + b"9" * 5000 + b"]]}", "5000 digits"),
        (b"[" * 50_000 + b"]" * 50_000, "nested too deeply"),
        (b'{"fields": "\xff\xfe"}', "not valid JSON"),
    ],
)
def test_malformed_headers_give_one_clear_error(header: bytes, match: str, tmp_path: Path) -> None:
    """Stops: a malformed header crashing the reader with a raw KeyError/TypeError/RecursionError."""
    data = _with_header(_small_log(tmp_path / "a.fflog").read_bytes(), header)
    bad = tmp_path / "bad.fflog"
    bad.write_bytes(data)
    with pytest.raises(TelemetryFormatError, match=match) as e:
        read_log(bad)
    assert str(bad) in str(e.value) and "\n" not in str(e.value)


def test_signature_version_and_chunk_errors(tmp_path: Path) -> None:
    """Stops: other files, other format versions and damaged chunks read as garbage or crashing the reader."""
    data = _small_log(tmp_path / "a.fflog").read_bytes()
    cs = _chunks(data)
    with pytest.raises(TelemetryFormatError, match="bad magic"):
        parse_log(b"PK\x03\x04 a zip file", "z")
    with pytest.raises(TelemetryFormatError, match="version 1; this footfall reads version 2"):
        parse_log(b"FFTLM\x00\x01\n" + data[8:], "v1")
    with pytest.raises(TelemetryFormatError, match="ends before its header"):
        parse_log(b"", "empty")
    tick = next(c for c in cs if c[1] == T.TICK)
    with pytest.raises(TelemetryFormatError, match="holds 16 bytes, the header's fields need 120"):
        parse_log(data[: tick[0]] + _chunk(T.TICK, bytes(16)) + data[tick[0] :], "short")
    with pytest.raises(TelemetryFormatError, match="unknown chunk kind 9"):
        parse_log(data[: tick[0]] + _chunk(9, b"x") + data[tick[0] :], "kind")
    with pytest.raises(TelemetryFormatError, match="event chunk .* is not valid JSON"):
        parse_log(data[: tick[0]] + _chunk(T.EVENT, b"{oops") + data[tick[0] :], "ev")
    with pytest.raises(TelemetryFormatError, match="is a JSON array, not an object"):
        parse_log(data[: tick[0]] + _chunk(T.EVENT, b"[]") + data[tick[0] :], "ev")
    with pytest.raises(TelemetryFormatError, match="a second header"):
        parse_log(data[: tick[0]] + data[cs[0][0] : cs[1][0]] + data[tick[0] :], "hdr")
    mid = cs[len(cs) // 2][0] + 20
    flipped = data[:mid] + bytes([data[mid] ^ 0x10]) + data[mid + 1 :]
    with pytest.raises(TelemetryFormatError, match="checksum mismatch"):
        parse_log(flipped, "flip")


def test_cut_off_and_zero_filled_tails_read_up_to_the_last_record(tmp_path: Path) -> None:
    """Stops: losing a whole crash log because its last write was torn: a file cut mid-record, or whose tail a power
    cut left zero-filled, reads up to its last whole record (truncated=True)."""
    data = _small_log(tmp_path / "a.fflog").read_bytes()
    closed_at = _chunks(data)[-1][0]
    t = parse_log(data[: closed_at - 50], "cut")
    assert t.truncated and t.num_ticks == 29 and not t.closed
    t = parse_log(data[:closed_at] + bytes(4096), "zeros")
    assert t.truncated and t.num_ticks == 30 and t.truncated_at == closed_at
    t = parse_log(data[: closed_at - 50] + bytes(4096), "torn")
    assert t.truncated and t.num_ticks == 29
    t = parse_log(data[:closed_at], "killed")  # killed between records: whole, but not closed
    assert not t.truncated and not t.closed and t.num_ticks == 30


def _mutations(base: bytes, rng: random.Random):  # noqa: ANN202
    cs = _chunks(base)
    header_json = base[cs[0][0] + 9 : cs[0][0] + 9 + cs[0][2]]
    bad_json = [
        b"",
        b"null",
        b'"fields"',
        b"{" * 3000,
        b"[" * 3000 + b"]" * 3000,
        b'{"fields": [["a", 1]], "x": ' + b"1" * 200 + b"}",
        b'{"fields": [["a", 1e999]]}',
        b'{"fields": [["a", NaN]]}',
        b'{"fields": [["a", true]]}',
        b'{"fields": [["a", 65537]]}',
        b'{"fields": [["a", 40000], ["b", 40000]]}',
        b'{"fields": [["", 1]]}',
        b'{"fields": [[null, 1]]}',
        b'{"fields": [{"a": 1}]}',
        b'{"fields": []}',
        b'{"fields": [["a", 0]]}',
        b'{"fields": [["t", 1], ["x", 14]]}',
        b"\xc3\x28",
    ]
    ops = ["flip", "cut", "bytes", "length", "header", "header_char", "event", "kind", "splice", "random"]
    while True:
        op = rng.choice(ops)
        d = bytearray(base)
        if op == "flip":
            for _ in range(rng.randint(1, 4)):
                i = rng.randrange(len(d))
                d[i] ^= 1 << rng.randrange(8)
        elif op == "cut":
            d = d[: rng.randrange(len(d) + 1)]
        elif op == "bytes":
            i = rng.randrange(len(d))
            d[i : i + rng.randint(1, 32)] = rng.randbytes(rng.randint(1, 32))
        elif op == "length":
            pos, _, length = rng.choice(cs)
            new = rng.choice([0, 1, length - 1, length + 1, length + 8, 2**32 - 1, rng.randrange(2**32)])
            struct.pack_into("<I", d, pos + 1, max(0, new))
        elif op in ("header", "header_char"):
            if op == "header":
                h = rng.choice(bad_json)
            else:
                h = bytearray(header_json)
                for _ in range(rng.randint(1, 3)):
                    h[rng.randrange(len(h))] = rng.choice(b'{}[]",:0123456789-e.ntrufalsx \\')
                h = bytes(h)
            d = bytearray(_with_header(bytes(d), h))
        elif op == "event":
            pos, _, length = rng.choice([c for c in cs if c[1] == T.EVENT])
            d[pos : pos + 9 + length] = _chunk(T.EVENT, rng.choice(bad_json))
        elif op == "kind":
            pos, _, length = rng.choice(cs)
            payload = bytes(d[pos + 9 : pos + 9 + length])
            d[pos : pos + 9 + length] = _chunk(rng.randrange(256), payload)
        elif op == "splice":  # chunks repeated, moved or dropped, with valid checksums
            pieces = [bytes(d[p : p + 9 + n]) for p, _, n in cs]
            i, j = rng.randrange(len(pieces)), rng.randrange(len(pieces))
            pieces.insert(j, pieces[i] if rng.random() < 0.5 else pieces.pop(i))
            d = bytearray(T.MAGIC + b"".join(pieces))
        else:
            d = bytearray(T.MAGIC + rng.randbytes(rng.randint(0, 300)))
        yield op, bytes(d)


def test_fuzzed_logs_read_or_raise_one_error_type(tmp_path: Path) -> None:
    """Stops: any damaged input (bit flips, cuts, bad lengths, bad JSON, unknown kinds, reordered chunks, random
    bytes) escaping read_log as anything but TelemetryFormatError (IndexError, struct.error, KeyError,
    RecursionError, MemoryError...) or hanging it."""
    base = _small_log(tmp_path / "a.fflog").read_bytes()
    rng = random.Random(1234)
    seen: dict[str, list[int]] = {}
    t0 = time.perf_counter()
    for _, (op, data) in zip(range(4000), _mutations(base, rng)):
        try:
            tel = parse_log(data, "fuzz.fflog")
        except TelemetryFormatError as e:
            assert str(e).startswith("fuzz.fflog: ")
            seen.setdefault(op, [0, 0])[1] += 1
            continue
        seen.setdefault(op, [0, 0])[0] += 1
        n = tel.num_ticks
        for name, size in T.check_fields(tel.header["fields"]):
            assert tel.ticks[name].shape == (n, size)
        assert len(tel.event_ticks) == len(tel.events) and all(isinstance(e, dict) for e in tel.events)
    elapsed = time.perf_counter() - t0
    assert elapsed < 15, f"4000 parses took {elapsed:.1f} s"
    assert all(r + e > 0 for r, e in seen.values()) and sum(r for r, _ in seen.values()) > 100
    assert sum(e for _, e in seen.values()) > 1000


# ---------------------------------------------------------------------- replay, MCAP, CLI


def test_replay_reports_a_log_without_policy_fields(tmp_path: Path) -> None:
    """Stops: replay crashing with KeyError: 'obs' on a log recorded without a policy (a model-based controller)."""
    w = TelemetryWriter(tmp_path / "mpc.fflog", [("t", 1), ("mode", 1)], {"controller": "mpc"})
    w.commit()
    w.close()
    with pytest.raises(ValueError, match="has no obs, action fields.*controller: mpc"):
        T.replay(tmp_path / "mpc.fflog", tmp_path / "policy.onnx")


def test_mcap_export_round_trip(tmp_path: Path) -> None:
    """Stops: an export Foxglove or PlotJuggler cannot open: JSON Schema per channel (types Foxglove parses), strict
    JSON messages (NaN as null), one message per tick per channel, non-decreasing times, header as metadata."""
    pytest.importorskip("mcap")
    from mcap.reader import make_reader

    log = _small_log(tmp_path / "a.fflog")
    out = tmp_path / "a.mcap"
    assert log_main(["export", str(log), "--mcap", str(out)]) == 0
    with open(out, "rb") as f:
        reader = make_reader(f)
        summary = reader.get_summary()
        topics = {c.topic: c for c in summary.channels.values()}
        assert set(topics) == {
            "/footfall/timing",
            "/footfall/command",
            "/footfall/imu",
            "/footfall/policy",
            "/footfall/events",
        }
        for s in summary.schemas.values():
            assert s.encoding == "jsonschema"
            schema = json.loads(s.data)
            assert schema["type"] == "object"
            for prop in schema["properties"].values():  # the types Foxglove's parseJsonSchema accepts
                assert prop["type"] in ("number", "integer", "string", "array")
                if prop["type"] == "array":
                    assert prop["items"]["type"] == "number"
        counts = summary.statistics.channel_message_counts
        for topic, ch in topics.items():
            assert counts[ch.id] == (3 if topic == "/footfall/events" else 30), topic  # 2 mode changes, closed
            assert ch.message_encoding == "json"
        last, msgs = -1, {}
        for _, ch, m in reader.iter_messages(log_time_order=False):
            assert m.log_time >= last and m.publish_time == m.log_time
            last = m.log_time
            msgs.setdefault(ch.topic, []).append(json.loads(m.data, parse_constant=lambda c: pytest.fail(c)))
        meta = {r.name: r.metadata for r in reader.iter_metadata()}
    assert msgs["/footfall/imu"][0]["imu_quat"] == [None] * 4 and msgs["/footfall/imu"][1]["imu_quat"][0] == 1.0
    assert msgs["/footfall/command"][12]["mode_name"] == "RUN" and msgs["/footfall/command"][12]["mode"] == 3
    damp = msgs["/footfall/events"][1]
    assert damp["to"] == "DAMP" and damp["reason"] == "tilt 52 deg > 40 deg"
    start = 1735787045 * 10**9  # started_utc
    assert msgs and last == start + round(0.02 * 29 * 1e9)
    assert json.loads(meta["footfall"]["contract"])["robot"]["joint_names"] == ["a", "b"]
    assert log_main(["export", str(log), "--mcap", str(out)]) == 2  # exists
    assert log_main(["export", str(log), "--mcap", str(out), "--force"]) == 0
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary file left


def test_times_stay_monotonic_across_loop_restarts(tmp_path: Path) -> None:
    """Stops: MCAP times going backwards when runtime.loop() runs twice (wall_s restarts at 0) or wall_s is NaN."""
    w = TelemetryWriter(tmp_path / "a.fflog", [("wall_s", 1)], {"period_s": 0.02})
    for v in [0.0, 0.02, 0.04, 0.0, 0.02, float("nan"), 0.08]:
        w.set("wall_s", v)
        w.commit()
    w.close()
    t = tick_times(read_log(tmp_path / "a.fflog"))
    assert np.all(np.diff(t) >= 0) and t.tolist() == pytest.approx([0, 0.02, 0.04, 0.06, 0.08, 0.1, 0.14])


def test_log_cli_exit_codes_and_messages(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stops: tracebacks instead of one-line errors, and exit codes scripts cannot rely on."""
    log = _small_log(tmp_path / "a.fflog")
    assert log_main(["info", str(log)]) == 0
    out = capsys.readouterr().out
    assert "30 ticks" in out and "RUN -> DAMP  (tilt 52 deg > 40 deg)" in out and "closed cleanly" in out
    assert log_main(["info", str(log), "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["ticks"] == 30 and s["dropped_ticks"] == 0 and s["modes"]["RUN"]["ticks"] == 20

    bad = tmp_path / "bad.fflog"
    bad.write_bytes(_with_header(log.read_bytes(), b'{"fields": [["a", -3]]}'))
    for argv in (["info", str(bad)], ["export", str(bad), "--mcap", str(tmp_path / "b.mcap")]):
        assert log_main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and str(bad) in err and "size must be an integer" in err
    assert not (tmp_path / "b.mcap").exists()
    assert log_main(["info", str(tmp_path / "missing.fflog")]) == 2
    assert "no such file" in capsys.readouterr().err

    monkeypatch.setitem(sys.modules, "mcap", None)
    monkeypatch.setitem(sys.modules, "mcap.writer", None)
    assert log_main(["export", str(log), "--mcap", str(tmp_path / "c.mcap")]) == 2
    assert "pip install mcap" in capsys.readouterr().err

    assert log_main(["--help"]) == 0
    assert "export" in capsys.readouterr().out
    assert log_main(["export", str(log)]) == 2  # --mcap missing: argparse says so
    assert "--mcap" in capsys.readouterr().err


@pytest.mark.parametrize("start", ["9999-12-31T23:59:59+00:00", "1066-10-14T09:00:00+00:00", "not a date"])
def test_mcap_export_survives_a_forged_start_time(tmp_path: Path, start: str) -> None:
    """Stops: a header whose start time is out of MCAP's range (year 9999 overflowed its u64 nanoseconds with a
    struct.error traceback): the ticks then count from 0."""
    pytest.importorskip("mcap")
    from mcap.reader import make_reader

    log = tmp_path / "a.fflog"
    w = TelemetryWriter(log, FIELDS, {"period_s": 0.02, "started_utc": start})
    for k in range(5):
        _row(w, k)
        w.commit()
    w.close()
    out = tmp_path / "a.mcap"
    assert log_main(["export", str(log), "--mcap", str(out)]) == 0
    with open(out, "rb") as f:
        times = [m.log_time for _, _, m in make_reader(f).iter_messages()]
    assert times and 0 <= min(times) and max(times) < 2**63


def test_log_info_runs_without_mcap_installed() -> None:
    """Stops: `footfall log info` on the robot's computer failing because mcap (an export-only dependency) is absent,
    and deploy pulling in torch or gymnasium through the log tool."""
    code = (
        "import sys\n"
        "sys.modules['mcap'] = None\n"
        "import footfall.deploy.logtool, footfall.deploy.telemetry\n"
        "bad = [m for m in ('torch', 'gymnasium') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
