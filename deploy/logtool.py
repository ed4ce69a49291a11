"""`footfall log`: look at a deploy telemetry log (.fflog) and export it for Foxglove and PlotJuggler.

    footfall log info RUN.fflog [--json]                 a short summary: duration, modes, events and their reasons
    footfall log export RUN.fflog --mcap OUT.mcap [--force]

MCAP layout (JSON messages, one JSON Schema per channel, so Foxglove and PlotJuggler show every field; NaN is null):

    /footfall/timing    t (robot clock), wall_s, lateness_s, compute_s, age_s
    /footfall/command   mode (runtime.Mode number), mode_name, command (operator)
    /footfall/state     joint_pos, joint_vel, joint_torque, foot_force (what the robot measured)
    /footfall/imu       imu_quat (wxyz), gyro, accel
    /footfall/policy    ran, obs, action
    /footfall/target    q_target, kp, kd (the command sent to the joints)
    /footfall/other     any other tick field of the log
    /footfall/events    one message per event: mode changes with their reasons (faults), dropped records, close

Only the fields the log's header lists are written; a channel with none of its fields is left out. Each tick gives one
message on each tick channel, stamped (log_time = publish_time) with the log's start (header "started_utc", else the
Unix epoch) plus the tick's `wall_s` (else `t`, else the tick index times the period), made non-decreasing across
loop restarts. An event is stamped with the tick it happened in. The header (contract, robot, period, ...) is MCAP
metadata "footfall". The file is written to a temporary name, fsynced and renamed, and an existing file is kept
unless --force.

mcap (pip install mcap) is imported only by the export: the robot's computer can run `info` without it.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from footfall.deploy.telemetry import VERSION, Telemetry, TelemetryFormatError, fsync_dir, read_log

GROUPS: list[tuple[str, str, tuple[str, ...]]] = [
    ("/footfall/timing", "footfall.Timing", ("t", "wall_s", "lateness_s", "compute_s", "age_s")),
    ("/footfall/command", "footfall.Command", ("mode", "command")),
    ("/footfall/state", "footfall.State", ("joint_pos", "joint_vel", "joint_torque", "foot_force")),
    ("/footfall/imu", "footfall.Imu", ("imu_quat", "gyro", "accel")),
    ("/footfall/policy", "footfall.Policy", ("ran", "obs", "action")),
    ("/footfall/target", "footfall.Target", ("q_target", "kp", "kd")),
]
OTHER = ("/footfall/other", "footfall.Other")
EVENTS = ("/footfall/events", "footfall.Event")
_EVENT_PROPS = {
    "event": "string",
    "from": "string",
    "to": "string",
    "reason": "string",
    "t": "number",
    "tick": "integer",
    "log_tick": "integer",
    "dropped_ticks": "integer",
    "dropped_events": "integer",
    "ticks_written": "integer",
}
MCAP_MISSING = "footfall log export needs the mcap package: pip install mcap"


def _mode_names() -> dict[int, str]:
    try:
        from footfall.deploy.runtime import Mode

        return {int(m): m.name for m in Mode}
    except Exception:  # the runtime's imports failed: numbers will do
        return {}


def _period(tel: Telemetry) -> float | None:
    p = tel.header.get("period_s")
    return float(p) if isinstance(p, (int, float)) and not isinstance(p, bool) and 0 < p < 1e6 else None


def tick_times(tel: Telemetry) -> np.ndarray:
    """Seconds from the log's start per tick, non-decreasing: wall_s, else t, else the tick index x the period."""
    n = tel.num_ticks
    period = _period(tel) or 0.0
    src = next((tel.ticks[f][:, 0] for f in ("wall_s", "t") if f in tel.ticks and tel.ticks[f].shape[1]), None)
    if src is None or n == 0:
        return np.arange(n) * period
    src = src.copy()
    finite = np.isfinite(src)
    if not finite[0]:
        src[0], finite[0] = 0.0, True
    i = np.arange(n)
    last = np.maximum.accumulate(np.where(finite, i, 0))
    src = np.where(finite, src, src[last] + period * (i - last))  # a NaN: the last value, a period per tick on
    d = np.diff(src)
    d = np.where(np.isfinite(d) & (d >= 0), d, period)  # a loop restart (wall_s back to 0): one period
    w = np.concatenate([[0.0], np.cumsum(d)])
    return np.clip(w, 0.0, 1e9)


def _start_ns(tel: Telemetry) -> int:
    s = tel.header.get("started_utc")
    if isinstance(s, str):
        try:
            t = _dt.datetime.fromisoformat(s.replace("Z", "+00:00"))
            if t.tzinfo is None:
                t = t.replace(tzinfo=_dt.timezone.utc)
            ns = int(t.timestamp()) * 1_000_000_000 + t.microsecond * 1000
            # a forged or broken start time (year 9999) must not overflow MCAP's u64 times with the ticks added:
            # anything past year 2262 or before 1970 is refused, the ticks then start at 0
            return ns if 0 <= ns < 2**63 - 10**18 else 0
        except (ValueError, OverflowError, OSError):
            pass
    return 0


def summarize(tel: Telemetry, path: str) -> dict[str, Any]:
    names = _mode_names()
    times = tick_times(tel)
    period = _period(tel)
    n = tel.num_ticks
    duration = float(times[-1] - times[0]) + (period or 0.0) if n else 0.0
    modes: dict[str, dict[str, float]] = {}
    if "mode" in tel.ticks and tel.ticks["mode"].shape[1] and n:
        m = tel.ticks["mode"][:, 0]
        vals, counts = np.unique(m[np.isfinite(m)], return_counts=True)
        for v, c in zip(vals.tolist(), counts.tolist()):
            name = names.get(int(v), str(int(v))) if float(v).is_integer() else str(v)
            modes[name] = {"ticks": int(c), "s": c * period if period else float("nan")}
    events = []
    for ev, k in zip(tel.events, tel.event_ticks):
        events.append({"wall_s": float(times[min(k, n - 1)]) if n else 0.0, "tick_index": k, **ev})
    dropped = [e for e in tel.events if e.get("event") in ("dropped", "closed")]
    last = dropped[-1] if dropped else {}
    return {
        "log": path,
        "format": VERSION,
        "robot": tel.header.get("robot"),
        "controller": tel.header.get("controller"),
        "period_s": period,
        "started_utc": tel.header.get("started_utc"),
        "ticks": n,
        "duration_s": duration,
        "fields": {name: int(a.shape[1]) for name, a in tel.ticks.items()},
        "modes": modes,
        "events": events,
        "dropped_ticks": last.get("dropped_ticks"),
        "dropped_events": last.get("dropped_events"),
        "closed_cleanly": tel.closed,
        "truncated": tel.truncated,
        "truncated_at": tel.truncated_at,
    }


def format_summary(s: dict[str, Any]) -> str:
    rate = f", {1 / s['period_s']:g} Hz" if s["period_s"] else ""
    lines = [
        f"{s['log']}: footfall telemetry v{s['format']}, robot {s['robot'] or '?'}, "
        f"controller {s['controller'] or '?'}{rate}" + (f", started {s['started_utc']}" if s["started_utc"] else ""),
        f"{s['ticks']} ticks over {s['duration_s']:.3f} s",
    ]
    if s["modes"]:
        lines.append(
            "modes: "
            + ", ".join(
                f"{k} {v['ticks']} ticks" + (f" ({v['s']:.2f} s)" if math.isfinite(v["s"]) else "")
                for k, v in s["modes"].items()
            )
        )
    mode_events = [e for e in s["events"] if e.get("event") == "mode"]
    lines.append(f"events: {len(mode_events)} mode changes" + (", with their reasons:" if mode_events else ""))
    for e in mode_events:
        lines.append(
            f"  {e['wall_s']:9.3f} s  tick {e.get('tick', e['tick_index'])}: {e.get('from', '?')} -> "
            f"{e.get('to', '?')}  ({e.get('reason', 'no reason given')})"
        )
    for e in s["events"]:
        if e.get("event") not in ("mode", "closed", "dropped"):
            what = e.get("reason") if isinstance(e.get("reason"), str) else json.dumps(e)[:200]
            lines.append(f"  {e['wall_s']:9.3f} s  {e.get('event', 'event')}: {what}")
    if s["dropped_ticks"] is None:
        lines.append("dropped ticks: none recorded")
    else:
        lines.append(f"dropped ticks: {s['dropped_ticks']}, dropped events: {s['dropped_events']}")
    if s["closed_cleanly"]:
        lines.append("closed cleanly")
    else:
        lines.append("NOT closed cleanly: the session ended in a crash, a kill or a power cut")
    if s["truncated"]:
        lines.append(f"truncated: yes (cut off mid-record at byte {s['truncated_at']}; read up to the last whole one)")
    else:
        lines.append("truncated: no")
    lines.append("fields: " + " ".join(f"{k}({v})" for k, v in s["fields"].items()))
    return "\n".join(lines)


# ---------------------------------------------------------------------- MCAP


def _col(a: np.ndarray) -> list[Any]:
    """(T, n) float array -> T JSON values: a number for n == 1, else a list; NaN and infinities become None."""
    if a.shape[1] == 1:
        a = a[:, 0]
    finite = np.isfinite(a)
    if finite.all():
        return a.tolist()
    o = a.astype(object)
    o[~finite] = None
    return o.tolist()


_BLOCK = 4096


def _columns(tel: Telemetry, fs: list[str], b0: int, b1: int, names: dict[int, str]) -> list[tuple[str, list[Any]]]:
    """JSON values of ticks b0..b1 of the fields `fs`; mode also as mode_name."""
    cols = []
    for fl in fs:
        a = tel.ticks[fl][b0:b1]
        if fl == "mode" and a.shape[1] == 1:
            ints = [int(v) if math.isfinite(v) and v == int(v) and 0 <= v < 2**31 else None for v in a[:, 0].tolist()]
            cols.append(("mode", ints))
            cols.append(("mode_name", [None if v is None else names.get(v, str(v)) for v in ints]))
        else:
            cols.append((fl, _col(a)))
    return cols


def _clean(x: Any, depth: int = 0) -> Any:
    """An event value made strict JSON: non-finite floats become None."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict) and depth < 64:
        return {str(k): _clean(v, depth + 1) for k, v in x.items()}
    if isinstance(x, list) and depth < 64:
        return [_clean(v, depth + 1) for v in x]
    if isinstance(x, (dict, list)):
        return None
    return x


def _schema(title: str, props: dict[str, Any]) -> bytes:
    return json.dumps({"title": title, "type": "object", "properties": props}).encode()


def _field_schema(size: int) -> dict[str, Any]:
    if size == 1:
        return {"type": "number"}
    return {"type": "array", "items": {"type": "number"}, "minItems": size, "maxItems": size}


def export_mcap(log: str | Path, out: str | Path, force: bool = False) -> dict[str, Any]:
    """Write the log as MCAP (see the module docstring); returns a summary. Raises FileExistsError, ImportError."""
    out = Path(out)
    if out.exists() and not force:
        raise FileExistsError(f"{out} exists: pass --force to overwrite it, or choose another output path")
    tel = read_log(log)
    try:
        from mcap.writer import CompressionType, Writer
    except ImportError:
        raise ImportError(MCAP_MISSING) from None

    n = tel.num_ticks
    base = _start_ns(tel)
    stamps = (base + np.round(tick_times(tel) * 1e9)).astype(np.int64)
    stamps = np.maximum.accumulate(stamps) if n else stamps
    names = _mode_names()
    known = {f for _, _, fs in GROUPS for f in fs}
    groups = [(topic, title, [f for f in fs if f in tel.ticks]) for topic, title, fs in GROUPS]
    groups.append((*OTHER, [f for f in tel.ticks if f not in known]))
    groups = [g for g in groups if g[2]]

    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    counts: dict[str, int] = {}
    try:
        with open(tmp, "wb") as f:
            w = Writer(f, compression=CompressionType.ZSTD)
            w.start(profile="", library="footfall")
            channels = []  # (channel id, topic, [(field, values per tick)])
            for topic, title, fs in groups:
                props = {fl: _field_schema(tel.ticks[fl].shape[1]) for fl in fs}
                if "mode" in fs:
                    props["mode"] = {"type": "integer"}
                    props["mode_name"] = {"type": "string"}
                sid = w.register_schema(name=title, encoding="jsonschema", data=_schema(title, props))
                meta = {"fields": json.dumps({fl: int(tel.ticks[fl].shape[1]) for fl in fs})}
                joints = (tel.header.get("contract") or {}) if isinstance(tel.header.get("contract"), dict) else {}
                jn = joints.get("robot", {}).get("joint_names") if isinstance(joints.get("robot"), dict) else None
                if isinstance(jn, list):
                    meta["joint_names"] = json.dumps(jn)
                cid = w.register_channel(topic=topic, message_encoding="json", schema_id=sid, metadata=meta)
                channels.append((cid, topic, fs))
                counts[topic] = 0
            esid = w.register_schema(
                name=EVENTS[1],
                encoding="jsonschema",
                data=_schema(EVENTS[1], {k: {"type": v} for k, v in _EVENT_PROPS.items()}),
            )
            ecid = w.register_channel(topic=EVENTS[0], message_encoding="json", schema_id=esid)
            counts[EVENTS[0]] = 0
            ev_at = list(zip(tel.event_ticks, tel.events))
            e = 0
            for b0 in range(0, n + 1, _BLOCK):  # a block of ticks at a time: a long log's Python values stay small
                b1 = min(n, b0 + _BLOCK)
                block = [(cid, topic, _columns(tel, fs, b0, b1, names)) for cid, topic, fs in channels]
                ts_block = stamps[b0:b1].tolist()
                for k in range(b0, b1 + 1):
                    while e < len(ev_at) and ev_at[e][0] <= k:  # the events logged before tick k happened in it
                        ts = int(stamps[min(k, n - 1)]) if n else base
                        msg = {**_clean(ev_at[e][1]), "log_tick": ev_at[e][0]}
                        w.add_message(ecid, log_time=ts, publish_time=ts, sequence=e, data=_dumps(msg))
                        counts[EVENTS[0]] += 1
                        e += 1
                    if k == b1:
                        break
                    ts = ts_block[k - b0]
                    for cid, topic, cols in block:
                        msg = {name: vals[k - b0] for name, vals in cols}
                        w.add_message(cid, log_time=ts, publish_time=ts, sequence=k, data=_dumps(msg))
                        counts[topic] += 1
            meta = {k: v if isinstance(v, str) else json.dumps(_clean(v)) for k, v in tel.header.items()}
            meta.update(source=str(log), truncated=json.dumps(tel.truncated), closed_cleanly=json.dumps(tel.closed))
            w.add_metadata("footfall", meta)
            w.finish()
            f.flush()
            os.fsync(f.fileno())
        if force:
            os.replace(tmp, out)
        else:
            os.link(tmp, out)  # fails if `out` appeared meanwhile: never overwrite without --force
            os.unlink(tmp)
        fsync_dir(out.parent)
    except FileExistsError:
        tmp.unlink(missing_ok=True)
        raise FileExistsError(f"{out} exists: pass --force to overwrite it, or choose another output path") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return {
        "log": str(log),
        "mcap": str(out),
        "ticks": n,
        "events": len(tel.events),
        "channels": counts,
        "start_ns": int(stamps[0]) if n else base,
        "end_ns": int(stamps[-1]) if n else base,
        "truncated": tel.truncated,
    }


def _dumps(msg: dict[str, Any]) -> bytes:
    return json.dumps(msg, separators=(",", ":"), allow_nan=False).encode()


# ---------------------------------------------------------------------- CLI


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="footfall log",
        description="Inspect and convert deploy telemetry logs (.fflog, written by `footfall deploy --log`).",
        epilog="Exit status: 0 done, 2 a malformed or missing log, an existing output without --force, mcap missing.",
    )
    sub = p.add_subparsers(dest="cmd", metavar="{info,export}")
    i = sub.add_parser(
        "info",
        help="summarize a log: duration, ticks, modes, mode changes with their reasons, drops, truncation",
        description="Print a short summary of a telemetry log: its robot and rate, how long it ran, ticks per "
        "mode, every mode change with its reason (a fault's reason is why the robot went to DAMP), dropped "
        "records, and whether it was closed cleanly or cut off by a crash.",
    )
    i.add_argument("log", help="telemetry log (.fflog)")
    i.add_argument("--json", action="store_true", help="print the summary as one JSON object instead")
    e = sub.add_parser(
        "export",
        help="convert a log to MCAP for Foxglove / PlotJuggler",
        description="Convert a telemetry log to an MCAP file (JSON messages with JSON Schemas, one channel per "
        "field group: /footfall/timing, /command, /state, /imu, /policy, /target, /events), readable by "
        "Foxglove and PlotJuggler. Needs the mcap package (pip install mcap).",
    )
    e.add_argument("log", help="telemetry log (.fflog)")
    e.add_argument("--mcap", required=True, metavar="OUT.mcap", help="the MCAP file to write")
    e.add_argument("--force", action="store_true", help="overwrite OUT.mcap if it exists")
    return p


def log_main(argv: list[str] | None = None) -> int:
    """`footfall log`: returns the exit status (0 done, 2 an error, reported on stderr in one line)."""
    p = build_parser()
    try:
        a = p.parse_args(sys.argv[1:] if argv is None else argv)
    except SystemExit as ex:  # --help (0) or a usage error (2, already printed by argparse)
        return int(ex.code or 0) if not isinstance(ex.code, str) else 2
    if a.cmd is None:
        p.print_help()
        return 0
    try:
        if a.cmd == "info":
            s = summarize(read_log(a.log), a.log)
            print(json.dumps(_clean(s)) if a.json else format_summary(s))
        else:
            r = export_mcap(a.log, a.mcap, force=a.force)
            ch = ", ".join(f"{k} ({v})" for k, v in r["channels"].items())
            print(f"wrote {r['mcap']}: {r['ticks']} ticks, {r['events']} events; channels {ch}")
            if r["truncated"]:
                print("note: the log was cut off mid-record; exported up to its last whole one")
    except TelemetryFormatError as ex:
        print(f"footfall log {a.cmd}: {_one_line(ex)}", file=sys.stderr)
        return 2
    except FileNotFoundError as ex:
        print(f"footfall log {a.cmd}: no such file: {ex.filename or ex}", file=sys.stderr)
        return 2
    except (FileExistsError, ImportError, IsADirectoryError, PermissionError) as ex:
        print(f"footfall log {a.cmd}: {_one_line(ex)}", file=sys.stderr)
        return 2
    except OSError as ex:
        print(f"footfall log {a.cmd}: {_one_line(ex)}", file=sys.stderr)
        return 2
    return 0


def _one_line(ex: BaseException) -> str:
    return " ".join(str(ex).split())
