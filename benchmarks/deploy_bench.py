"""`footfall bench deploy`: timing of the deploy loop on the real two-process path.

A bridge process serves a MuJoCo Go1 over loopback UDP at 500 Hz; the runtime runs the quadruped policy (the
preset's network: untrained weights, the same compute) at 50 Hz for 60 s (10 s with --quick) over the
authenticated link (protocol 2, HMAC-SHA256 on every datagram) with the telemetry writer thread: observation terms,
onnxruntime, safety layer, link, log. The safety layer's tilt, speed and joint-range trips are off here so that the
policy runs for the whole minute even when the untrained robot falls; what is timed is the same code.

References, same run: the same loop for the same time over a keyless link without telemetry (the whole tick's
ratio shows what the authenticated link and the log cost in the loop; a keyless link still tags with the empty key,
so the HMAC's own cost is timed apart, back to back); and the loop most deploy scripts use,
`work(); time.sleep(period)`, which drifts by the work's duration every tick.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from footfall.benchmarks.common import machine, table
from footfall.deploy.keys import generate_key, load_key
from footfall.deploy.policy import OnnxPolicy, PolicyController
from footfall.deploy.runtime import Mode, Runtime, RuntimeConfig, telemetry_fields
from footfall.deploy.safety import SafetyConfig
from footfall.deploy.telemetry import TelemetryWriter
from footfall.deploy.udp import UdpRobot, free_port
from footfall.deploy.unitree.robot import UnitreeRobot
from footfall.robots.registry import load_robot


def make_policy(out: Path) -> Path:
    """The quadruped preset's actor with untrained weights, exported through `footfall export`."""
    from footfall.training.export import export_run
    from footfall.training.presets import preset
    from footfall.training.train import train

    cfg = dataclasses.replace(preset("quadruped-flat"), num_envs=2, max_iterations=1, checkpoint_every=1)
    cfg = dataclasses.replace(cfg, ppo=dataclasses.replace(cfg.ppo, num_steps=4))
    train(cfg, out / "run", progress=False)
    path = out / "policy.onnx"
    export_run(out / "run", path, parity_samples=256, evaluate=False)
    return path


def naive_loop(work: Any, period: float, duration: float) -> dict[str, float]:
    wake = []
    t_end = time.perf_counter() + duration
    while time.perf_counter() < t_end:
        wake.append(time.perf_counter())
        work()
        time.sleep(period)
    p = np.diff(wake)
    return {"period_error_mean_us": float((p.mean() - period) * 1e6)}


def hot_tick(rt: Any, reading: Any, n: int = 2000) -> float:
    """Median ms of the same per-tick compute (observation + ONNX + safety) called back to back, caches warm.
    Set beside the loop's median, it separates the code's cost from what waking up every period costs on this
    machine (on a shared VM the caches are cold again after each 20 ms sleep)."""
    cmd = np.array([0.5, 0.0, 0.0])
    ts = np.empty(n)
    for i in range(n):
        t0 = time.perf_counter()
        out = rt.controller(reading, cmd)
        rt.safety.filter(out, reading)
        ts[i] = time.perf_counter() - t0
    return float(np.median(ts) * 1e3)


def wake_probe(policy: Any, obs: np.ndarray, n: int = 200) -> dict[str, float]:
    """Median ms of one ONNX call after each kind of wait. If flushing the data caches costs little while 20 ms of
    waiting (asleep or spinning) costs much, what slows the first call of a tick is the machine taking the core away
    between ticks (a shared VM's other tenants, branch-predictor flushes on their switches), not the code's memory
    footprint; a dedicated core (isolcpus) is the fix, not a code change."""
    big = np.ones(4_000_000)  # 32 MB, more than the last-level cache

    def spin(d: float) -> None:
        t = time.perf_counter() + d
        while time.perf_counter() < t:
            pass

    waits = {
        "back_to_back": lambda: None,
        "after_32mb_cache_flush": lambda: big.sum(),
        "after_2ms_spin": lambda: spin(0.002),
        "after_20ms_spin": lambda: spin(0.02),
        "after_20ms_sleep": lambda: time.sleep(0.02),
    }
    out = {}
    for name, wait in waits.items():
        ts = np.empty(n)
        for i in range(n):
            wait()
            t0 = time.perf_counter()
            policy(obs)
            ts[i] = time.perf_counter() - t0
        out[name] = float(np.median(ts) * 1e3)
    return out


def timed_loop(
    policy: Any, port: int, duration: float, key_path: Path | None, log: Path | None, dds_iface: str | None = None
) -> dict[str, Any]:
    """The policy in the runtime at its period for `duration` against a bridge process on `port`: over the
    authenticated link when `key_path` is given (keyless otherwise), with the telemetry writer thread when `log` is;
    with `dds_iface`, over Unitree SDK2's DDS topics on that interface instead (`footfall bridge --sdk unitree`).
    Returns the loop's timing, the bridge's report, the runtime and its robot."""
    c = policy.contract
    spec = load_robot(c.robot.name)
    if dds_iface is None:
        code = "import sys; from footfall.deploy.udp import bridge_main; sys.exit(bridge_main())"
        where = ["--port", str(port)] + (["--key", str(key_path)] if key_path is not None else [])
    else:
        code = "import sys; from footfall.deploy.unitree.bridge import unitree_bridge_main as m; sys.exit(m())"
        where = ["--iface", dds_iface]
    cmd = [sys.executable, "-c", code, "--robot", spec.name, "--duration", str(duration + 4), *where]
    bridge = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    tel = robot = None
    try:
        bridge.stdout.readline()  # the banner: it is listening
        if dds_iface is None:
            key = load_key(key_path) if key_path is not None else None
            robot = UdpRobot("127.0.0.1", port, spec.num_joints, len(spec.feet), key)
            linked = lambda: robot.session_active  # noqa: E731
        else:
            robot = UnitreeRobot.for_spec(spec, dds_iface)
            linked = lambda: robot.latest is not None  # noqa: E731
        controller = PolicyController(policy, spec)
        if log is not None:
            fields = telemetry_fields(
                len(c.commands.names), c.observation_size, c.action_size, spec.num_joints, len(spec.feet)
            )
            tel = TelemetryWriter(log, fields, {"period_s": c.timing.control_dt_s}, force=True)
        safety = SafetyConfig(max_tilt_deg=180.0, velocity_margin=1e6, position_margin_rad=10.0)
        rt = Runtime(
            robot,
            spec,
            controller,
            RuntimeConfig(control_dt_s=c.timing.control_dt_s, command_hold=True),
            safety,
            telemetry=tel,
            obs_size=c.observation_size,
        )
        rt.set_velocity(np.array([0.5, 0.0, 0.0]))

        def run_once_linked(r: Runtime) -> None:  # the handshake happens in the loop's first ticks, as in deploy
            if r.mode == Mode.PASSIVE and linked() and r.safety.fresh():
                r.run_now()

        rt.on_tick.append(run_once_linked)
        timing = rt.loop(duration_s=duration)
        robot.close()
        out, _ = bridge.communicate(timeout=15)
        bridge_report = json.loads(out.strip().splitlines()[-1])
    finally:
        if robot is not None:
            robot.close()
        if tel is not None:
            tel.close()
        if bridge.poll() is None:
            bridge.kill()
    return {"timing": timing, "bridge": bridge_report, "runtime": rt, "robot": robot}


def hmac_cost_us(nj: int, nf: int, n: int = 5000) -> dict[str, float]:
    """Median microseconds, back to back, to encode one COMMAND datagram with its HMAC-SHA256 tag, and of the tag
    alone (keyless links tag with the empty key: the same cost, so the loop comparison below cannot isolate it)."""
    import hmac as _hmac

    from footfall.deploy import udp

    key = bytes(32)
    v = np.zeros(5 * nj)
    enc, tag = np.empty(n), np.empty(n)
    for i in range(n):
        t0 = time.perf_counter()
        pkt = udp.encode(udp.COMMAND, key, nj, nf, v, session=1, seq=i + 1, stamp=0.0)
        t1 = time.perf_counter()
        _hmac.digest(key, pkt[: -udp.TAG_SIZE], "sha256")
        t2 = time.perf_counter()
        enc[i], tag[i] = t1 - t0, t2 - t1
    return {"encode_us": float(np.median(enc) * 1e6), "hmac_us": float(np.median(tag) * 1e6)}


def run(quick: bool = False, robot: str | None = None) -> dict[str, Any]:
    dds_iface = None
    if robot is not None:
        if not robot.startswith("unitree://"):
            raise ValueError(f"bench deploy --robot takes unitree://IFACE (UDP is always measured), got {robot}")
        dds_iface = robot[len("unitree://") :]
    duration = 10.0 if quick else 60.0
    tmp = Path(tempfile.mkdtemp(prefix="footfall-bench-deploy-"))
    policy = OnnxPolicy.load(make_policy(tmp))
    c = policy.contract
    key_path = tmp / "bench.key"
    generate_key(key_path)
    # the reference, same run: keyless link, no telemetry (what the loop costs without either)
    plain = timed_loop(policy, free_port(), duration, None, None)
    main_run = timed_loop(policy, free_port(), duration, key_path, tmp / "bench.fflog")
    timing, bridge_report, rt, udp_robot = (main_run[k] for k in ("timing", "bridge", "runtime", "robot"))
    stayed_in_run = not any(e["to"] == "DAMP" for e in rt.events) and rt.mode == Mode.RUN
    controller = rt.controller
    costs = hmac_cost_us(rt.nj, len(rt.spec.feet))
    last = udp_robot.latest
    naive = naive_loop(lambda: controller(last, np.zeros(3)), c.timing.control_dt_s, duration)
    hot = hot_tick(rt, last)
    probe = wake_probe(policy, controller.last_obs, n=50 if quick else 200)
    dds: dict[str, Any] = {}
    if dds_iface is not None:  # the same loop (telemetry on) over Unitree SDK2's DDS topics, same run
        d = timed_loop(policy, 0, duration, None, tmp / "dds.fflog", dds_iface)
        t, drt = d["timing"], d["runtime"]
        dds = {
            "dds_iface": dds_iface,
            **{f"dds_{k}": t[k] for k in ("ticks", "missed", "period_error_mean_us", "lateness_p99_us")},
            **{f"dds_{k}": t[k] for k in ("tick_median_ms", "tick_total_median_ms")},
            "dds_stayed_in_run": drt.mode == Mode.RUN and not any(e["to"] == "DAMP" for e in drt.events),
            "dds_link": d["robot"].counts(),
            "dds_bridge_states_sent": d["bridge"].get("states_sent"),
            "dds_over_udp_tick_compute": t["tick_median_ms"] / timing["tick_median_ms"],
            "dds_over_udp_tick_total": t["tick_total_median_ms"] / timing["tick_total_median_ms"],
        }
    return {
        **machine(),
        "duration_s": duration,
        "rate_hz": 1 / c.timing.control_dt_s,
        **{
            k: timing[k]
            for k in (
                "ticks",
                "missed",
                "period_error_mean_us",
                "lateness_median_us",
                "lateness_p99_us",
                "lateness_max_us",
                "tick_median_ms",
                "tick_p99_ms",
                "tick_total_median_ms",
            )
        },
        "stayed_in_run": stayed_in_run,
        "authenticated": True,
        "telemetry_thread": True,
        "plain_tick_median_ms": plain["timing"]["tick_median_ms"],
        "plain_tick_total_median_ms": plain["timing"]["tick_total_median_ms"],
        "plain_lateness_p99_us": plain["timing"]["lateness_p99_us"],
        "tick_total_ratio_auth_telemetry_vs_plain": main_run["timing"]["tick_total_median_ms"]
        / plain["timing"]["tick_total_median_ms"],
        "command_encode_us": costs["encode_us"],
        "command_hmac_us": costs["hmac_us"],
        "bridge_sessions_established": bridge_report.get("sessions_established"),
        "bridge_rate_hz": 500.0,
        "bridge_ticks": bridge_report["ticks"],
        "bridge_lateness_median_us": bridge_report["lateness_median_us"],
        "bridge_lateness_p99_us": bridge_report["lateness_p99_us"],
        "bridge_packets_bad": sum(bridge_report["packets_bad"].values()),
        "naive_sleep_period_error_mean_us": naive["period_error_mean_us"],
        **dds,
        "tick_hot_median_ms": hot,
        "onnx_call_median_ms": probe,
    }


def main(quick: bool = False, robot: str | None = None) -> dict[str, Any]:
    r = run(quick, robot)
    print(
        f"Deploy loop timing: quadruped policy at {r['rate_hz']:g} Hz for {r['duration_s']:g} s against a Go1 bridge "
        f"process at 500 Hz over loopback UDP ({r['machine']}, python {r['python']})"
    )
    print(
        table(
            (
                "loop",
                "period error mean us",
                "lateness median us",
                "lateness p99 us",
                "tick compute median ms",
                "whole tick median ms",
            ),
            [
                (
                    "footfall runtime, 50 Hz",
                    f"{r['period_error_mean_us']:.2f}",
                    f"{r['lateness_median_us']:.0f}",
                    f"{r['lateness_p99_us']:.0f}",
                    f"{r['tick_median_ms']:.3f}",
                    f"{r['tick_total_median_ms']:.3f}",
                ),
                (
                    "bridge, 500 Hz",
                    "-",
                    f"{r['bridge_lateness_median_us']:.0f}",
                    f"{r['bridge_lateness_p99_us']:.0f}",
                    "-",
                    "-",
                ),
                (
                    "same loop, keyless link, no telemetry",
                    "-",
                    "-",
                    f"{r['plain_lateness_p99_us']:.0f}",
                    f"{r['plain_tick_median_ms']:.3f}",
                    f"{r['plain_tick_total_median_ms']:.3f}",
                ),
                ("same tick compute, back to back (warm caches)", "-", "-", "-", f"{r['tick_hot_median_ms']:.3f}", "-"),
                ("reference: work(); sleep(period)", f"{r['naive_sleep_period_error_mean_us']:.0f}", *["-"] * 4),
            ]
            + (
                [
                    (
                        f"same loop over Unitree SDK2 DDS ({r['dds_iface']}), telemetry on",
                        f"{r['dds_period_error_mean_us']:.2f}",
                        "-",
                        f"{r['dds_lateness_p99_us']:.0f}",
                        f"{r['dds_tick_median_ms']:.3f}",
                        f"{r['dds_tick_total_median_ms']:.3f}",
                    )
                ]
                if "dds_iface" in r
                else []
            ),
        )
    )
    print(
        f"targets: period error 0 (absolute deadlines), lateness p99 <= 200 us, tick compute (observation + ONNX + "
        f"safety) median <= 0.3 ms; the whole tick adds the UDP read and write and the telemetry log. "
        f"Missed ticks {r['missed']}; bad packets at the bridge {r['bridge_packets_bad']}. Whole tick, authenticated "
        "link + telemetry thread / keyless link without telemetry: "
        f"{r['tick_total_ratio_auth_telemetry_vs_plain']:.2f}. One COMMAND datagram: "
        f"{r['command_encode_us']:.1f} us to encode, of which {r['command_hmac_us']:.1f} us HMAC-SHA256 (back to back)."
    )
    if "dds_iface" in r:
        print(
            f"DDS / UDP, same run: tick compute {r['dds_over_udp_tick_compute']:.2f}, whole tick "
            f"{r['dds_over_udp_tick_total']:.2f}; DDS missed {r['dds_missed']}, link {r['dds_link']}, stayed in RUN: "
            f"{r['dds_stayed_in_run']}."
        )
    rows = [(k.replace("_", " "), f"{v:.3f}") for k, v in r["onnx_call_median_ms"].items()]
    print(
        "Why the loop's tick costs more than back to back: one ONNX call, median ms, after each kind of wait\n"
        + table(("wait before the call", "ONNX call median ms"), rows)
    )
    print(json.dumps(r))
    return r
