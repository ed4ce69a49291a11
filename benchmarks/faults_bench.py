"""`footfall bench faults`: every fault and attack the deploy side must survive, against the bridge process over
loopback UDP, each scenario scored by what got through.

A `footfall bridge` process serves a MuJoCo Go1 at 500 Hz with a key file; the runtime (in this process, or a
`footfall deploy` process) runs at 50 Hz. Where a scenario needs to sit on the wire, a proxy thread in this process
forwards the datagrams between the two and replays, duplicates or delays them. Scenarios:

  spoofed source       datagrams that are valid in every way (the session key is read out of the runtime, as an
                       attacker on the wire who stole it could not even do) but come from another socket
  replayed packets     every datagram sent twice, and each with one from 10 packets ago, both directions
  delayed packets      every STATE held back 0.3 s by the proxy
  wrong key            a runtime whose key differs from the bridge's
  unsafe commands      a runtime with the right key sends NaN, inf, out-of-range targets and gains, huge torques
  killed bridge        SIGKILL to the bridge in RUN, then a new bridge on the same port
  inf / NaN action     the policy's output turns infinite / NaN
  zero quaternion      the bridge reports an IMU quaternion of zeros (an IMU that has not started)
  joint out of range   the bridge reports a calf encoder 0.5 rad beyond its range
  controller exception the controller raises
  fuzz                 10,000 random and mutated datagrams at each of the bridge and the runtime in RUN
  SIGTERM to deploy    a `footfall deploy` process against the bridge gets SIGTERM
  full disk            `footfall deploy` writes its log on a 64 KiB filesystem (tmpfs; simulated when mounting is
                       not allowed)
  SIGKILL to deploy    ticks the log lost, against the ticks the loop had run when it was killed

The last line is JSON with `scenarios`, `datagrams_tried`, `crashes`, `unsafe_commands_applied`, `spoofed_accepted`,
`replayed_accepted`, `max_periods_to_damp`, `telemetry_ticks_lost_on_sigkill` and each scenario's figures. Targets:
0 crashes, 0 unsafe commands applied, 0 spoofed or replayed datagrams accepted, damping within 3 periods, at most one
second of ticks lost.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np

from footfall.benchmarks.common import machine, table
from footfall.deploy import udp
from footfall.deploy.interface import JointCommand
from footfall.deploy.keys import generate_key, load_key
from footfall.deploy.runtime import Mode, Runtime, RuntimeConfig
from footfall.deploy.safety import SafetyConfig
from footfall.robots.registry import load_robot

ROBOT = "go1"
PERIOD = 0.02
DAMP_WITHIN = 3  # periods


class Hold:
    """Stands at the default pose (what the scenarios need from a controller: commands a running robot gets)."""

    def __init__(self, spec: Any):
        z = np.zeros(spec.num_joints)
        self.cmd = JointCommand(np.asarray(spec.default_pose), z, np.asarray(spec.kp), np.asarray(spec.kd), z)
        self.fail: str | None = None

    def __call__(self, reading: Any, command: np.ndarray) -> JointCommand:
        if self.fail == "raise":
            raise RuntimeError("injected controller bug")
        return self.cmd.copy()


# ---------------------------------------------------------------------------------------------- processes


def start_bridge(port: int, key_path: Path | None, *extra: str, duration: float = 60.0) -> subprocess.Popen:
    cmd = [sys.executable, "-c", "import sys; from footfall.deploy.udp import bridge_main; sys.exit(bridge_main())"]
    cmd += ["--robot", ROBOT, "--port", str(port), "--duration", str(duration), *extra]
    if key_path is not None:
        cmd += ["--key", str(key_path)]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = p.stdout.readline()  # the banner: it listens
    if not line.startswith("footfall bridge"):
        p.kill()
        raise RuntimeError(f"the bridge did not start: {line!r} {p.stderr.read()}")
    return p


def stop_bridge(p: subprocess.Popen) -> tuple[dict[str, Any] | None, bool]:
    """(the bridge's JSON report, whether it crashed): SIGTERM, then its last line."""
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
    try:
        out, err = p.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        return None, True
    lines = out.strip().splitlines()
    try:
        report = json.loads(lines[-1]) if lines else None
    except ValueError:
        report = None
    crashed = p.returncode not in (0, -signal.SIGTERM) or report is None
    return report, crashed


class Harness:
    """The runtime in this process against a bridge (or a proxy) on `port`, with a real clock."""

    def __init__(self, port: int, key: bytes | None, controller: Any = None, safety: SafetyConfig | None = None):
        self.spec = load_robot(ROBOT)
        self.robot = udp.UdpRobot("127.0.0.1", port, self.spec.num_joints, len(self.spec.feet), key)
        self.controller = controller or Hold(self.spec)
        self.rt = Runtime(
            self.robot, self.spec, self.controller, RuntimeConfig(control_dt_s=PERIOD, stand_up_s=0.5), safety
        )
        self.sent: list[JointCommand] = []
        write = self.robot.write

        def spy(cmd: JointCommand) -> None:
            self.sent.append(cmd)
            write(cmd)

        self.robot.write = spy  # type: ignore[method-assign]
        self.fresh: list[bool] = []  # per tick: did a new reading arrive
        self.rt.on_tick.append(lambda rt: self.fresh.append(rt.safety.fresh()))

    def first_stale_tick(self, since_tick: int) -> int | None:
        """The first tick from `since_tick` on without a new reading: where a lost link becomes visible."""
        return next((k for k in range(since_tick, len(self.fresh)) if not self.fresh[k]), None)

    def connect(self, timeout_s: float = 3.0) -> bool:
        t_end = time.monotonic() + timeout_s
        while time.monotonic() < t_end:
            self.rt.loop(ticks=5, freeze_gc=False)
            if self.robot.session_active and self.rt.last_reading is not None:
                return True
        return False

    def run_mode(self) -> bool:
        """PASSIVE -> stand up -> RUN; True when it got there."""
        self.rt.start()
        self.rt.run()
        self.rt.loop(ticks=40, freeze_gc=False)
        return self.rt.mode == Mode.RUN

    def damp_tick(self, since_tick: int) -> int | None:
        for e in self.rt.events:
            if e["to"] == "DAMP" and e["tick"] >= since_tick:
                return int(e["tick"])
        return None

    def close(self) -> None:
        self.robot.close()


def periods(onset_tick: int, damp_tick: int | None) -> int | None:
    """Periods from the first tick that saw the fault to the tick that damped, both counted."""
    return None if damp_tick is None else damp_tick - onset_tick + 1


# ---------------------------------------------------------------------------------------------- the wire


class Proxy:
    """Sits between the runtime and the bridge, forwarding both ways; can duplicate, replay and delay datagrams."""

    def __init__(self, bridge_port: int):
        self.front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.front.bind(("127.0.0.1", 0))
        self.back = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.back.bind(("127.0.0.1", 0))
        self.bridge = ("127.0.0.1", bridge_port)
        self.port = self.front.getsockname()[1]
        self.runtime: tuple | None = None
        self.replay = False
        self.delay_to_runtime_s = 0.0
        self.injected = {"to_runtime": 0, "to_bridge": 0}
        self.held: deque[tuple[float, bytes]] = deque()
        self.history = {"to_runtime": deque(maxlen=10), "to_bridge": deque(maxlen=10)}
        self._stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _forward(self, data: bytes, direction: str) -> None:
        sock, addr = (self.front, self.runtime) if direction == "to_runtime" else (self.back, self.bridge)
        if addr is None:
            return
        if direction == "to_runtime" and self.delay_to_runtime_s > 0:
            self.held.append((time.monotonic() + self.delay_to_runtime_s, data))
            self.injected["to_runtime"] += 1
            return
        sock.sendto(data, addr)
        hist = self.history[direction]
        if self.replay:  # the same datagram again, and one from 10 packets ago
            sock.sendto(data, addr)
            self.injected[direction] += 1
            if len(hist) == hist.maxlen:
                sock.sendto(hist[0], addr)
                self.injected[direction] += 1
        hist.append(data)

    def _run(self) -> None:
        while not self._stop:
            ready, _, _ = select.select([self.front, self.back], [], [], 0.005)
            for s in ready:
                try:
                    data, src = s.recvfrom(8192)
                except OSError:
                    continue
                if s is self.front:
                    self.runtime = src
                    self._forward(data, "to_bridge")
                else:
                    self._forward(data, "to_runtime")
            now = time.monotonic()
            while self.held and self.held[0][0] <= now and self.runtime is not None:
                self.front.sendto(self.held.popleft()[1], self.runtime)

    def close(self) -> None:
        self._stop = True
        self.thread.join(timeout=2)
        self.front.close()
        self.back.close()


class Linked:
    """A bridge process on a free port (behind a Proxy when `via_proxy`) and the runtime harness connected to it,
    as a context manager: on exit the harness and the proxy close and the bridge is stopped, its report and whether
    it crashed kept in `report` and `crashed`. `key` None: the bench's key."""

    def __init__(
        self,
        ctx: dict[str, Any],
        *bridge_args: str,
        via_proxy: bool = False,
        key: bytes | None = None,
        controller: Any = None,
        safety: SafetyConfig | None = None,
        delay_to_runtime_s: float = 0.0,
    ):
        self.port = udp.free_port()
        self.bridge = start_bridge(self.port, ctx["key_path"], *bridge_args)
        self.report: dict[str, Any] | None = None
        self.crashed = False
        self.proxy: Proxy | None = None
        try:
            self.proxy = Proxy(self.port) if via_proxy else None
            if self.proxy is not None:
                self.proxy.delay_to_runtime_s = delay_to_runtime_s  # before the harness sends its first HELLO
            port = self.proxy.port if self.proxy is not None else self.port
            self.h = Harness(port, ctx["key"] if key is None else key, controller, safety)
        except BaseException:
            self.__exit__()
            raise

    def __enter__(self) -> Linked:
        return self

    def __exit__(self, *exc: object) -> None:
        if getattr(self, "h", None) is not None:
            self.h.close()
        if self.proxy is not None:
            self.proxy.close()
        self.report, self.crashed = stop_bridge(self.bridge)


REPLAY_REASONS = ("replayed", "old", "reordered", "too_old")


def _rejected_as_replays(bad: dict[str, int]) -> int:
    return sum(bad.get(r, 0) for r in REPLAY_REASONS)


# ---------------------------------------------------------------------------------------------- scenarios


def scenario_spoofed_source(ctx: dict[str, Any]) -> dict[str, Any]:
    """Valid datagrams from the wrong address: the runtime takes STATE from its bridge only, the bridge obeys its
    session's address only."""
    with Linked(ctx) as link:
        h, port = link.h, link.port
        ok = h.connect() and h.run_mode()
        s = h.robot._session
        spoofer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        spoofer.bind(("127.0.0.1", 0))
        runtime_addr = h.robot.sock.getsockname()
        nj, nf = h.spec.num_joints, len(h.spec.feet)
        n = 500
        fake_state = np.zeros(3 * nj + 10 + nf)  # a zero quaternion: a reading of it would show (and trip)
        ok_before = h.robot.counters.ok
        seen_fake = 0
        for i in range(n):
            seq = s.newest + 1000 + i
            pkt = udp.encode(
                udp.STATE, s.key, nj, nf, fake_state, session=s.id, seq=seq, stamp=time.monotonic(), flags=0
            )
            spoofer.sendto(pkt, runtime_addr)
            cmd = np.concatenate([np.zeros(nj), np.zeros(nj), np.full(nj, 80.0), np.zeros(nj), np.zeros(nj)])
            pkt = udp.encode(udp.COMMAND, s.key, nj, nf, cmd, session=s.id, seq=s.tx_seq + 1000 + i, stamp=0.0)
            spoofer.sendto(pkt, ("127.0.0.1", port))
            if i % 50 == 0:
                h.rt.loop(ticks=1, freeze_gc=False)
                if h.rt.last_reading is not None and np.all(h.rt.last_reading.imu_quat == 0):
                    seen_fake += 1
        h.rt.loop(ticks=10, freeze_gc=False)
        accepted_rt = seen_fake
        wrong_source_rt = h.robot.counters.bad.get("wrong_source", 0)
        still_run = h.rt.mode == Mode.RUN
        ok_delta = h.robot.counters.ok - ok_before
        spoofer.close()
    report, crashed = link.report, link.crashed
    wrong_source_bridge = (report or {}).get("packets_bad", {}).get("wrong_source", 0)
    return {
        "ran": ok,
        "datagrams": 2 * n,
        # (the runtime's socket is connected to its bridge, so the kernel drops other sources before read() sees
        # them: its own wrong_source count stays 0, and a spoofed reading would show as a zero quaternion)
        "spoofed_accepted": accepted_rt + max(0, n - wrong_source_bridge),
        "runtime_counted_wrong_source": wrong_source_rt,
        "bridge_dropped_wrong_source": wrong_source_bridge,
        "still_in_run": still_run,
        "real_states_meanwhile": ok_delta,
        "crashed": crashed,
    }


def scenario_replayed(ctx: dict[str, Any]) -> dict[str, Any]:
    """Every datagram twice, and each with the one from 10 packets ago, both ways, for 2 s of RUN."""
    with Linked(ctx, via_proxy=True) as link:
        h, proxy = link.h, link.proxy
        ok = h.connect() and h.run_mode()
        bad_rt0 = dict(h.robot.counters.bad)
        proxy.replay = True
        h.rt.loop(ticks=100, freeze_gc=False)
        proxy.replay = False
        h.rt.loop(ticks=5, freeze_gc=False)
        still_run = h.rt.mode == Mode.RUN
        bad_rt = {k: v - bad_rt0.get(k, 0) for k, v in h.robot.counters.bad.items()}
    report, crashed = link.report, link.crashed
    bad_br = (report or {}).get("packets_bad", {})
    inj_rt, inj_br = proxy.injected["to_runtime"], proxy.injected["to_bridge"]
    return {
        "ran": ok,
        "datagrams": inj_rt + inj_br,
        "replayed_accepted": max(0, inj_rt - _rejected_as_replays(bad_rt))
        + max(0, inj_br - _rejected_as_replays(bad_br)),
        "runtime_rejected": {r: bad_rt.get(r, 0) for r in REPLAY_REASONS},
        "bridge_rejected": {r: bad_br.get(r, 0) for r in REPLAY_REASONS},
        "still_in_run": still_run,
        "crashed": crashed,
    }


def scenario_delayed(ctx: dict[str, Any]) -> dict[str, Any]:
    """Every STATE held back 0.3 s: none may be used, and the runtime damps as for a lost link."""
    with Linked(ctx, via_proxy=True) as link:
        h, proxy = link.h, link.proxy
        ok = h.connect() and h.run_mode()
        start = h.rt.tick_count
        proxy.delay_to_runtime_s = 0.3
        h.rt.loop(ticks=2, freeze_gc=False)  # (datagrams already past the proxy arrive on time: not delayed)
        ok0 = h.robot.counters.ok
        h.rt.loop(ticks=38, freeze_gc=False)
        accepted = h.robot.counters.ok - ok0
        onset = h.first_stale_tick(start)
        damp = h.damp_tick(start)
    crashed = link.crashed
    return {
        "ran": ok,
        "datagrams": proxy.injected["to_runtime"],
        "delayed_accepted": accepted,
        "periods_to_damp": None if onset is None else periods(onset, damp),
        "fault": h.rt.fault,
        "crashed": crashed,
    }


def scenario_delayed_from_the_start(ctx: dict[str, Any]) -> dict[str, Any]:
    """Every datagram to the runtime held back 0.1 s from the first one: the handshake's clock sample is too slow to
    trust, so no session forms and no state is used; `start` damps at once."""
    with Linked(ctx, via_proxy=True, delay_to_runtime_s=0.1) as link:
        h, proxy = link.h, link.proxy
        h.rt.loop(ticks=75, freeze_gc=False)
        onset = h.rt.tick_count
        h.rt.start()
        h.rt.loop(ticks=5, freeze_gc=False)
        damp = h.damp_tick(onset)
    crashed = link.crashed
    return {
        "datagrams": proxy.injected["to_runtime"],
        "delayed_accepted": h.robot.counters.ok,
        "session_established": h.robot.session_active,
        "periods_to_damp": periods(onset, damp),
        "fault": h.rt.fault,
        "crashed": crashed,
    }


def scenario_wrong_key(ctx: dict[str, Any]) -> dict[str, Any]:
    with Linked(ctx, key=os.urandom(32)) as link:
        h = link.h
        h.rt.loop(ticks=50, freeze_gc=False)  # 1 s of HELLOs and (no) commands
        linked = h.robot.session_active
        onset = h.rt.tick_count
        h.rt.start()
        h.rt.loop(ticks=5, freeze_gc=False)
        damp = h.damp_tick(onset)
    report, crashed = link.report, link.crashed
    bad = (report or {}).get("packets_bad", {})
    return {
        "datagrams": bad.get("bad_tag", 0),
        "session_established": linked or bool((report or {}).get("sessions_established")),
        "bridge_bad_tag": bad.get("bad_tag", 0),
        "periods_to_damp": periods(onset, damp),
        "fault": h.rt.fault,
        "crashed": crashed,
    }


def scenario_unsafe_commands(ctx: dict[str, Any]) -> dict[str, Any]:
    """A runtime holding the key (a bug, not an attacker) sends commands outside the robot's limits: the bridge
    refuses each before the drives, damps and latches until a new handshake."""
    port = udp.free_port()
    bridge = start_bridge(port, ctx["key_path"])
    spec = load_robot(ROBOT)
    nj = spec.num_joints
    z = np.zeros(nj)
    hi = np.array([h for _, h in spec.position_limits])
    kp, kd = np.asarray(spec.kp), np.asarray(spec.kd)
    bad_cmds = {
        "nan_q": JointCommand(z + np.nan, z, kp, kd, z),
        "inf_tau": JointCommand(np.asarray(spec.default_pose), z, kp, kd, z + np.inf),
        "q_out_of_range": JointCommand(hi + 0.5, z, kp, kd, z),
        "kp_huge": JointCommand(np.asarray(spec.default_pose), z, kp * 1e3, kd, z),
        "kd_negative": JointCommand(np.asarray(spec.default_pose), z, kp, -kd, z),
        "tau_over_limit": JointCommand(np.asarray(spec.default_pose), z, kp, kd, np.asarray(spec.torque_limits) * 3),
        "dq_huge": JointCommand(np.asarray(spec.default_pose), z + 1e4, kp, kd, z),
    }
    refused = 0
    crashed = False
    for cmd in bad_cmds.values():
        h = Harness(port, ctx["key"])
        try:
            h.connect()
            h.robot.write(cmd)  # straight to the link: no safety layer in between
            h.rt.loop(ticks=5, freeze_gc=False)
            refused += int(h.robot.bridge_latched)
        finally:
            h.close()
        time.sleep(0.05)
    report, crashed = stop_bridge(bridge)
    report = report or {}
    return {
        "datagrams": len(bad_cmds),
        "refused_and_latched": refused,
        "bridge_unsafe_commands": report.get("unsafe_commands"),
        "unsafe_commands_applied": report.get("unsafe_applied", 0) + (len(bad_cmds) - refused),
        "crashed": crashed,
    }


def scenario_killed_bridge(ctx: dict[str, Any]) -> dict[str, Any]:
    """SIGKILL to the bridge in RUN: damp within 3 periods; a new bridge on the same port is found again, the
    runtime stays damped until the operator resets, then runs again."""
    with Linked(ctx) as link:
        h = link.h
        ok = h.connect() and h.run_mode()
        start = h.rt.tick_count
        link.bridge.kill()
        link.bridge.wait()
        h.rt.loop(ticks=10, freeze_gc=False)
        onset = h.first_stale_tick(start)
        damp = h.damp_tick(start)
        link.bridge = start_bridge(link.port, ctx["key_path"])  # a new bridge on the same port
        t0 = time.monotonic()
        relinked_s = None
        for _ in range(150):
            h.rt.loop(ticks=1, freeze_gc=False)
            if h.robot.session_active and h.rt.safety.fresh():
                relinked_s = time.monotonic() - t0
                break
        stayed_damped = h.rt.mode == Mode.DAMP
        h.rt.reset()
        h.rt.loop(ticks=5, freeze_gc=False)
        runs_again = h.run_mode()
    crashed = link.crashed
    return {
        "ran": ok,
        "periods_to_damp": None if onset is None else periods(onset, damp),
        "fault": next((e["reason"] for e in h.rt.events if e["to"] == "DAMP"), None),
        "relinked_after_s": relinked_s,
        "stayed_damped_until_reset": stayed_damped,
        "runs_again_after_reset": runs_again,
        "crashed": crashed,
    }


def _policy_scenario(ctx: dict[str, Any], value: float) -> dict[str, Any]:
    from footfall.deploy.policy import OnnxPolicy, PolicyController

    spec = load_robot(ROBOT)
    ctl = PolicyController(OnnxPolicy.load(ctx["policy"]), spec)
    # an untrained policy may fall: tilt and speed trips off, so that what trips is the action alone
    with Linked(ctx, controller=ctl, safety=SafetyConfig(max_tilt_deg=180.0, velocity_margin=1e6)) as link:
        h = link.h
        ok = h.connect() and h.run_mode()
        n_sent = len(h.sent)
        onset = h.rt.tick_count
        real = ctl.policy
        ctl.policy = lambda obs: np.full(spec.num_joints, value)
        h.rt.loop(ticks=5, freeze_gc=False)
        ctl.policy = real
        damp = h.damp_tick(onset)
        after = h.sent[n_sent:]
        unsafe = sum(1 for c in after if np.any(c.kp > 0))
    crashed = link.crashed
    return {
        "ran": ok,
        "periods_to_damp": periods(onset, damp),
        "fault": h.rt.fault,
        "commands_from_the_bad_action": unsafe,
        "crashed": crashed,
    }


def _bridge_fault_scenario(ctx: dict[str, Any], flags: tuple[str, ...], seen: Any) -> dict[str, Any]:
    onset = None
    with Linked(ctx, *flags) as link:
        h = link.h
        ok = h.connect() and h.run_mode()
        for _ in range(150):
            h.rt.loop(ticks=1, freeze_gc=False)
            if onset is None and h.robot.latest is not None and seen(h.robot.latest):
                onset = h.rt.tick_count - 1
            if onset is not None and h.rt.tick_count > onset + 5:
                break
        damp = h.damp_tick(onset if onset is not None else 0)
    crashed = link.crashed
    return {
        "ran": ok and onset is not None,
        "periods_to_damp": None if onset is None else periods(onset, damp),
        "fault": h.rt.fault,
        "crashed": crashed,
    }


def scenario_controller_exception(ctx: dict[str, Any]) -> dict[str, Any]:
    with Linked(ctx) as link:
        h = link.h
        ok = h.connect() and h.run_mode()
        onset = h.rt.tick_count
        h.controller.fail = "raise"
        t = h.rt.loop(ticks=20, freeze_gc=False)
        damp = h.damp_tick(onset)
        kept_ticking = t["ticks"] == 20 and all(np.all(c.kp == 0) for c in h.sent[-19:])
    crashed = link.crashed
    return {
        "ran": ok,
        "periods_to_damp": periods(onset, damp),
        "fault": h.rt.fault,
        "loop_kept_sending_damping": kept_ticking,
        "crashed": crashed,
    }


def _mutations(seeds: list[bytes], n: int, rng: np.random.Generator) -> list[bytes]:
    out = []
    for i in range(n):
        d = bytearray(seeds[i % len(seeds)])
        k = int(rng.integers(5))
        if k == 0:
            d = bytearray(rng.bytes(int(rng.integers(0, 400))))
        elif k == 1:
            for _ in range(int(rng.integers(1, 4))):
                d[int(rng.integers(len(d)))] ^= 1 << int(rng.integers(8))
        elif k == 2:
            d = d[: int(rng.integers(len(d)))]
        elif k == 3:
            d[int(rng.integers(len(d))) :] = rng.bytes(int(rng.integers(1, 64)))
        else:
            d[5] = int(rng.integers(256))  # kind
        out.append(bytes(d))
    return out


def scenario_fuzz(ctx: dict[str, Any], n: int) -> dict[str, Any]:
    """n random and mutated datagrams at the bridge and n at the runtime, during RUN: nothing may change."""
    rng = np.random.default_rng(7)
    with Linked(ctx) as link:
        h, port = link.h, link.port
        ok = h.connect() and h.run_mode()
        s = h.robot._session
        nj, nf = h.spec.num_joints, len(h.spec.feet)
        # seeds: real-looking datagrams of every kind (tagged with the wrong key, or right-keyed but stale)
        v_state, v_cmd = np.zeros(3 * nj + 10 + nf), np.zeros(5 * nj)
        seeds = [
            udp.encode(udp.STATE, os.urandom(32), nj, nf, v_state, session=s.id, seq=s.newest + 5, stamp=0.0),
            udp.encode(udp.COMMAND, os.urandom(32), nj, nf, v_cmd, session=s.id, seq=s.tx_seq + 5, stamp=0.0),
            udp.encode(udp.HELLO, os.urandom(32), nj, nf, os.urandom(16), stamp=0.0),
            udp.encode(udp.WELCOME, os.urandom(32), nj, nf, os.urandom(32), session=1, stamp=0.0),
        ]
        fuzz = _mutations(seeds, n, rng)
        spoofer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        spoofer.bind(("127.0.0.1", 0))
        runtime_addr = h.robot.sock.getsockname()
        for i in range(0, n, 50):  # 50 a tick to each side (2,500 a second): hostile traffic, not a flood that
            # overruns the sockets' kernel buffers (that only drops datagrams, real commands too, and the bridge
            # then damps for the lost commands: safe, but another test)
            for d in fuzz[i : i + 50]:
                spoofer.sendto(d, ("127.0.0.1", port))
                spoofer.sendto(d, runtime_addr)
            h.rt.loop(ticks=1, freeze_gc=False)
        h.rt.loop(ticks=10, freeze_gc=False)
        spoofer.close()
        still_run = h.rt.mode == Mode.RUN
        rejected_rt = sum(h.robot.counters.bad.values())
    report, crashed = link.report, link.crashed
    return {
        "ran": ok,
        "datagrams": 2 * n,
        "still_in_run": still_run,
        "fault": h.rt.fault,
        "runtime_rejected": rejected_rt,
        "bridge_rejected": sum((report or {}).get("packets_bad", {}).values()),
        "unsafe_commands_applied": (report or {}).get("unsafe_applied", 0),
        "crashed": crashed,
    }


def _deploy_cmd(ctx: dict[str, Any], robot: str, log: Path, *extra: str) -> list[str]:
    cmd = [sys.executable, "-m", "footfall.robots.cli", "deploy", str(ctx["policy"]), "--robot", robot]
    cmd += ["--autostart", "--velocity", "0", "0", "0", "--operator-port", "0", "--log", str(log), "--stand-up-s"]
    cmd += ["0.5", "--safety", "max_tilt_deg=180", "--safety", "velocity_margin=1e6", *extra]
    return cmd


def scenario_sigterm_deploy(ctx: dict[str, Any]) -> dict[str, Any]:
    from footfall.deploy.telemetry import read_log

    port = udp.free_port()
    bridge = start_bridge(port, ctx["key_path"])
    log = ctx["tmp"] / "sigterm.fflog"
    cmd = _deploy_cmd(ctx, f"udp://127.0.0.1:{port}", log, "--key", str(ctx["key_path"]))
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        p.stdout.readline()
        time.sleep(2.0)
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=20)
    finally:
        if p.poll() is None:
            p.kill()
    report = json.loads(out.strip().splitlines()[-1]) if p.returncode == 0 else {}
    time.sleep(0.3)  # past the bridge's command timeout
    bridge_report, crashed = stop_bridge(bridge)
    try:
        t = read_log(log)
        closed, last_damped = t.closed, bool(t.ticks["kp"].size and np.all(t.ticks["kp"][-1] == 0))
    except Exception:  # noqa: BLE001
        closed = last_damped = False
    return {
        "exit_code": p.returncode,
        "final_mode": report.get("final_mode"),
        "exit": report.get("exit"),
        "log_closed_cleanly": closed,
        "last_logged_command_damps": last_damped,
        "bridge_latched_after": (bridge_report or {}).get("latched"),
        "crashed": crashed or p.returncode != 0,
    }


def _small_filesystem(tmp: Path) -> tuple[Path, bool]:
    """A 64 KiB tmpfs (a disk that fills), or a plain folder when mounting is not allowed here."""
    mnt = tmp / "small-disk"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)], capture_output=True)
    return mnt, r.returncode == 0


def scenario_full_disk(ctx: dict[str, Any]) -> dict[str, Any]:
    """The log's filesystem fills during the run: the loop keeps its rate and its robot; the report says why the log
    stopped."""
    mnt, mounted = _small_filesystem(ctx["tmp"])
    log = mnt / "full.fflog"
    try:
        if not mounted:
            return {"measured": False, "why": "mounting a tmpfs is not allowed here", "crashed": False}
        p = subprocess.run(_deploy_cmd(ctx, "sim", log, "--duration", "6"), capture_output=True, text=True, timeout=60)
        report = json.loads(p.stdout.strip().splitlines()[-1]) if p.returncode == 0 else {}
    finally:
        if mounted:
            subprocess.run(["umount", str(mnt)], capture_output=True)
    return {
        "measured": True,
        "exit_code": p.returncode,
        "ticks": report.get("ticks"),
        "missed": report.get("missed"),
        "final_mode": report.get("final_mode"),
        "telemetry_error": (report.get("telemetry") or {}).get("error"),
        "crashed": p.returncode != 0 or report.get("ticks", 0) < 290,
    }


def scenario_sigkill_deploy(ctx: dict[str, Any]) -> dict[str, Any]:
    """SIGKILL in the middle of a run: the log must hold every tick but the last second's at most."""
    from footfall.deploy.telemetry import read_log

    log = ctx["tmp"] / "sigkill.fflog"
    p = subprocess.Popen(_deploy_cmd(ctx, "sim", log), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        p.stdout.readline()  # the banner, printed just before the loop's first tick
        t_start = time.monotonic()
        time.sleep(4.0)
        t_kill = time.monotonic()
        p.kill()
        p.wait()
    finally:
        if p.poll() is None:
            p.kill()
    t = read_log(log)
    ran = int((t_kill - t_start) / PERIOD)  # ticks the loop had run (within one or two)
    logged = len(t.ticks["mode"])
    return {"ticks_run": ran, "ticks_logged": logged, "ticks_lost": max(0, ran - logged), "crashed": False}


# ---------------------------------------------------------------------------------------------- the bench


def run(quick: bool = False) -> dict[str, Any]:
    from footfall.benchmarks.deploy_bench import make_policy

    tmp = Path(tempfile.mkdtemp(prefix="footfall-bench-faults-"))
    key_path = tmp / "link.key"
    generate_key(key_path)
    ctx = {"tmp": tmp, "key_path": key_path, "key": load_key(key_path), "policy": make_policy(tmp)}
    t0 = time.monotonic()
    spec = load_robot(ROBOT)
    calf_lo = spec.position_limits[2][0]
    scenarios: dict[str, dict[str, Any]] = {}
    plan = [
        ("spoofed source", lambda: scenario_spoofed_source(ctx)),
        ("replayed packets", lambda: scenario_replayed(ctx)),
        ("delayed packets", lambda: scenario_delayed(ctx)),
        ("delayed from the start", lambda: scenario_delayed_from_the_start(ctx)),
        ("wrong key", lambda: scenario_wrong_key(ctx)),
        ("unsafe commands", lambda: scenario_unsafe_commands(ctx)),
        ("killed and restarted bridge", lambda: scenario_killed_bridge(ctx)),
        ("inf action", lambda: _policy_scenario(ctx, np.inf)),
        ("NaN action", lambda: _policy_scenario(ctx, np.nan)),
        (
            "zero quaternion",
            lambda: _bridge_fault_scenario(ctx, ("--zero-quat-after", "2"), lambda r: np.all(r.imu_quat == 0)),
        ),
        (
            "joint out of range",
            lambda: _bridge_fault_scenario(
                ctx, ("--joint-offset", "2", "2", "-1.5"), lambda r: r.joint_pos[2] < calf_lo - 0.3
            ),
        ),
        ("exception in the controller", lambda: scenario_controller_exception(ctx)),
        ("fuzz", lambda: scenario_fuzz(ctx, 2_000 if quick else 10_000)),
        ("SIGTERM to deploy", lambda: scenario_sigterm_deploy(ctx)),
        ("log on a full disk", lambda: scenario_full_disk(ctx)),
        ("SIGKILL to deploy", lambda: scenario_sigkill_deploy(ctx)),
    ]
    for name, fn in plan:
        print(f"  {name} ...", flush=True)
        try:
            scenarios[name] = fn()
        except Exception as e:  # noqa: BLE001 (a scenario that breaks is a crash in the table, not a dead bench)
            scenarios[name] = {"crashed": True, "error": f"{type(e).__name__}: {e}"}
    damp = [s["periods_to_damp"] for s in scenarios.values() if s.get("periods_to_damp") is not None]
    expected_damp = [n for n, s in scenarios.items() if "periods_to_damp" in s]
    missing = [n for n in expected_damp if scenarios[n]["periods_to_damp"] is None]
    lost = scenarios["SIGKILL to deploy"].get("ticks_lost")
    return {
        **machine(),
        "quick": quick,
        "scenarios": len(scenarios),
        "datagrams_tried": int(sum(s.get("datagrams", 0) for s in scenarios.values())),
        "crashes": int(sum(bool(s.get("crashed")) for s in scenarios.values())),
        "unsafe_commands_applied": int(sum(s.get("unsafe_commands_applied", 0) or 0 for s in scenarios.values())),
        "spoofed_accepted": int(scenarios["spoofed source"].get("spoofed_accepted", 0))
        + int(scenarios["wrong key"].get("session_established", False)),
        "replayed_accepted": int(scenarios["replayed packets"].get("replayed_accepted", 0))
        + int(scenarios["delayed packets"].get("delayed_accepted", 0))
        + int(scenarios["delayed from the start"].get("delayed_accepted", 0)),
        "max_periods_to_damp": max(damp) if damp and not missing else None,
        "not_damped": missing,
        "telemetry_ticks_lost_on_sigkill": lost,
        "telemetry_lost_s_on_sigkill": None if lost is None else lost * PERIOD,
        "wall_s": time.monotonic() - t0,
        "detail": scenarios,
    }


def _verdict(name: str, s: dict[str, Any]) -> str:
    if s.get("crashed"):
        return "CRASH " + s.get("error", "")
    if s.get("measured") is False:
        return "not measured: " + s.get("why", "")
    keys = (
        "periods_to_damp",
        "spoofed_accepted",
        "replayed_accepted",
        "delayed_accepted",
        "unsafe_commands_applied",
        "still_in_run",
        "relinked_after_s",
        "ticks_lost",
        "exit",
        "telemetry_error",
        "fault",
    )
    parts = []
    for k in keys:
        if k in s and s[k] is not None:
            v = s[k]
            v = f"{v:.2f}" if isinstance(v, float) else str(v)
            parts.append(f"{k}={v[:60]}")
    return ", ".join(parts)


def main(quick: bool = False) -> dict[str, Any]:
    print("Faults and attacks against the deploy runtime and the bridge process over loopback UDP (Go1, 50 Hz)")
    r = run(quick)
    rows = [(name, str(s.get("datagrams", "-")), _verdict(name, s)) for name, s in r["detail"].items()]
    print(table(("scenario", "datagrams", "result"), rows))
    print(
        table(
            ("figure", "value", "target"),
            [
                ("crashes", str(r["crashes"]), "0"),
                ("unsafe commands applied", str(r["unsafe_commands_applied"]), "0"),
                ("spoofed datagrams accepted", str(r["spoofed_accepted"]), "0"),
                ("replayed or delayed datagrams accepted", str(r["replayed_accepted"]), "0"),
                ("periods to damp (max)", str(r["max_periods_to_damp"]), "<= 3"),
                ("telemetry ticks lost on SIGKILL", str(r["telemetry_ticks_lost_on_sigkill"]), "<= 50 (1 s)"),
                ("datagrams tried", str(r["datagrams_tried"]), "-"),
            ],
        )
    )
    print(json.dumps(r))
    return r
