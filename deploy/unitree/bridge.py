"""`footfall bridge --sdk unitree`: a MuJoCo robot served on Unitree SDK2's DDS topics, as the robot itself serves them.

The bridge publishes "rt/lowstate" (unitree_go LowState_, CRC set) at 500 Hz and subscribes "rt/lowcmd" (LowCmd_),
so `footfall deploy --robot unitree://lo` (or any SDK2 client) sees what a Go1/Go2 would show it. Like the UDP bridge
(`footfall.deploy.udp.run_bridge`) it guards the simulated drives: a command whose CRC does not verify is dropped
and counted; every other command is checked against `BridgeLimits.from_spec(spec)` before the drives see it, and an
unsafe one, or commands that stop for `command_timeout_s` (0.1 s) after they started, make the bridge damp and latch
until a rearm request (UnitreeRobot sends one on start and on the operator's reset; rt/footfall/rearm). Its state
goes out on rt/footfall/bridge_status, which UnitreeRobot turns into `robot_fault`.

How a LowCmd_ reaches the simulated drives, per policy joint j (motor m = motor_index[j]):
- mode 0 (the motor off): no torque (kp = kd = tau = 0);
- q = PosStopF (|q| >= 2e9): no position loop (kp = 0); dq = VelStopF (|dq| >= 16000): no velocity loop (kd = 0),
  the markers the SDK examples send to a motor that should hold no position;
- otherwise the drive law of the deploy interface: tau = kp (q - q_meas) + kd (dq - dq_meas) + tau.
Motors that no policy joint maps to are not simulated and their commands are ignored.
"""

from __future__ import annotations

import json
import math
import sys
from collections import deque
from typing import Any

import numpy as np

from footfall.deploy.interface import JointCommand
from footfall.deploy.udp import COMMAND_TIMEOUT_S, BridgeLimits, DriveGuard
from footfall.deploy.unitree.robot import (
    DEFAULT_DOMAIN,
    STATUS_LATCHED,
    STATUS_UNSAFE,
    TOPIC_BRIDGE_STATUS,
    TOPIC_REARM,
    DdsNode,
    check_motor_index,
    cyclonedds_config,
    footfall_types,
    motor_index_for,
)

POS_STOP_MIN = 2.0e9  # |q| at least this: PosStopF (2.146e9), no position loop
VEL_STOP_MIN = 15999.0  # |dq| at least this: VelStopF (16000), no velocity loop
STATUS_EVERY = 10  # bridge periods between two status messages (20 ms at 500 Hz); a change goes out at once
MAX_TAKE = 16  # commands handled per bridge period at most (a flood cannot stall the loop)


def command_from_lowcmd(msg: Any, motor_index: list[int]) -> JointCommand:
    """The JointCommand (policy joint order) a LowCmd_ asks of the simulated drives (rules in the module docstring)."""
    nj = len(motor_index)
    q, dq, kp, kd, tau = (np.zeros(nj) for _ in range(5))
    mcs = msg.motor_cmd
    for j, m in enumerate(motor_index):
        mc = mcs[m]
        if int(mc.mode) == 0:
            continue
        q[j], dq[j], kp[j], kd[j], tau[j] = float(mc.q), float(mc.dq), float(mc.kp), float(mc.kd), float(mc.tau)
        if abs(q[j]) >= POS_STOP_MIN:
            q[j], kp[j] = 0.0, 0.0
        if abs(dq[j]) >= VEL_STOP_MIN:
            dq[j], kd[j] = 0.0, 0.0
    return JointCommand(q, dq, kp, kd, tau)


class CommandGate(DriveGuard):
    """The bridge's guard in front of the drives, without DDS: the CRC check and decoding, then the UDP bridge's
    DriveGuard (limits, command timeout, latch); a latch is lifted only by a rearm request with a new nonce.

    Call `on_command` for each LowCmd_ sample, `on_rearm` for each rearm request, and `poll` once per period: it
    returns the command for the drives when that changed."""

    def __init__(self, limits: BridgeLimits, motor_index: list[int], command_timeout_s: float = COMMAND_TIMEOUT_S):
        if limits.num_joints != len(motor_index):
            raise ValueError(f"limits are for {limits.num_joints} joints, motor_index has {len(motor_index)}")
        super().__init__(limits, command_timeout_s)
        self.motor_index = motor_index
        self.rearms = 0
        self.rearm_nonce = 0
        self._nonces: deque[int] = deque(maxlen=256)

    def on_command(self, msg: Any, now: float) -> None:
        from footfall.deploy.unitree.crc import crc_ok

        if not crc_ok(msg):
            self.counters.count("bad_crc")
            return
        try:
            cmd = command_from_lowcmd(msg, self.motor_index)
        except Exception:  # noqa: BLE001 (a hostile sample)
            self.counters.count("malformed")
            return
        self.offer(cmd, now)

    def on_rearm(self, nonce: int) -> None:
        """Obey commands again (a new nonce only: DDS may deliver an old request again)."""
        if not nonce or nonce in self._nonces:
            self.counters.count("rearm_repeated")
            return
        self._nonces.append(nonce)
        self.rearms += 1
        self.rearm_nonce = nonce
        if self.latched:  # (an unlatched bridge keeps what it does: a request may arrive after commands started)
            self.unlatch()
            self.last_cmd = None  # the timeout runs again from the next command
            self.hold_damping()

    def poll(self, now: float) -> JointCommand | None:
        self.expire(now)
        return self.take()

    def flags(self) -> int:
        if not self.latched:
            return 0
        return STATUS_LATCHED | (STATUS_UNSAFE if self.latch_reason != "command_timeout" else 0)


def _rpy(qw: float, qx: float, qy: float, qz: float) -> list[float]:
    """Roll, pitch, yaw (rad, Z-Y-X) of a unit quaternion, as LowState_.imu_state.rpy carries them."""
    roll = math.atan2(2 * (qw * qx + qy * qz), 1 - 2 * (qx * qx + qy * qy))
    pitch = math.asin(max(-1.0, min(1.0, 2 * (qw * qy - qz * qx))))
    yaw = math.atan2(2 * (qw * qz + qx * qy), 1 - 2 * (qy * qy + qz * qz))
    return [roll, pitch, yaw]


def fill_lowstate(st: Any, r: Any, motor_index: list[int], t_s: float) -> Any:
    """Write a RobotReading into a LowState_ (motors by motor_index, float32 values) and set its CRC."""
    from footfall.deploy.unitree.crc import set_crc

    with np.errstate(over="ignore", invalid="ignore"):
        q = np.asarray(r.joint_pos, dtype=np.float32).tolist()
        dq = np.asarray(r.joint_vel, dtype=np.float32).tolist()
        tau = np.asarray(r.joint_torque if r.joint_torque is not None else np.zeros(len(q)), np.float32).tolist()
    for j, m in enumerate(motor_index):
        ms = st.motor_state[m]
        ms.mode, ms.q, ms.dq, ms.tau_est = 0x01, q[j], dq[j], tau[j]
    imu = st.imu_state
    if r.imu_quat is not None:
        quat = np.asarray(r.imu_quat, dtype=np.float32)
        imu.quaternion = quat.tolist()
        imu.gyroscope = np.asarray(r.gyro, dtype=np.float32).tolist()
        imu.accelerometer = np.asarray(r.accel, dtype=np.float32).tolist()
        imu.rpy = np.asarray(_rpy(*(float(x) for x in quat)), dtype=np.float32).tolist()
    feet = [0, 0, 0, 0]
    if r.foot_contact is not None:
        for i, f in enumerate(np.asarray(r.foot_contact, dtype=float)[:4].tolist()):
            feet[i] = int(min(32767, max(-32768, round(f)))) if math.isfinite(f) else 0
    st.foot_force = feet
    st.tick = int(round(t_s * 1000.0)) & 0xFFFFFFFF
    return set_crc(st)


def run_unitree_bridge(
    robot: str = "go1",
    iface: str = "lo",
    domain_id: int = DEFAULT_DOMAIN,
    rate_hz: float = 500.0,
    physics_dt: float | None = None,
    duration_s: float | None = None,
    command_timeout_s: float = COMMAND_TIMEOUT_S,
    limits: BridgeLimits | None = None,
    motor_index: list[int] | None = None,
    seed: int = 0,
    ready: Any = None,
) -> dict:
    """Serve a MujocoRobot on rt/lowstate / rt/lowcmd at `rate_hz` (physics in lockstep with the bridge clock)."""
    from footfall.deploy.mujoco_robot import MujocoRobot
    from footfall.deploy.runtime import RealClock

    period = 1.0 / rate_hz
    sim = MujocoRobot(robot, physics_dt=physics_dt if physics_dt is not None else period, seed=seed)
    spec = sim.spec
    motors = check_motor_index(motor_index_for(spec, motor_index), spec.num_joints)
    limits = limits or BridgeLimits.from_spec(spec)
    gate = CommandGate(limits, motors, command_timeout_s)
    node = DdsNode(iface, domain_id)
    m = node.msgs
    try:
        rearm_t, status_t = footfall_types()
        state_writer = node.writer(m.TOPIC_LOWSTATE, m.LowState_)
        cmd_reader = node.reader(m.TOPIC_LOWCMD, m.LowCmd_, depth=MAX_TAKE)
        rearm_reader = node.reader(TOPIC_REARM, rearm_t, depth=8, durable=True)
        status_writer = node.writer(TOPIC_BRIDGE_STATUS, status_t, durable=True)
    except Exception:
        node.close()
        raise
    if ready is not None:
        ready.set()
    st = m.low_state()
    clock = RealClock()
    t0 = clock.now()
    n_max = None if duration_s is None else int(duration_s * rate_hz)
    lateness: list[float] = []
    k = sent = send_failed = undecodable = 0
    last_flags = -1
    try:
        while n_max is None or k < n_max:
            deadline = t0 + k * period
            clock.wait_until(deadline)
            now = clock.now()
            lateness.append(now - deadline)
            t = now - t0
            try:
                for req in rearm_reader.take(N=8):
                    if hasattr(req, "nonce"):  # (a sample without data: a writer left)
                        gate.on_rearm(int(req.nonce))
            except Exception:  # noqa: BLE001
                undecodable += 1
            try:
                samples = cmd_reader.take(N=MAX_TAKE)
            except Exception:  # noqa: BLE001 (a sample that does not decode)
                undecodable += 1
                samples = []
            for s in samples:
                if hasattr(s, "motor_cmd"):  # (else a sample without data: a writer left)
                    gate.on_command(s, now)
            cmd = gate.poll(now)
            if cmd is not None:
                gate.deliver(cmd, sim.apply)
            sim.advance_to(t)
            r = sim.read()
            r.joint_torque = sim.truth().torque
            try:
                state_writer.write(fill_lowstate(st, r, motors, t))
                sent += 1
            except Exception:  # noqa: BLE001
                send_failed += 1
            flags = gate.flags()
            if flags != last_flags or k % STATUS_EVERY == 0:
                last_flags = flags
                try:
                    status_writer.write(
                        status_t(
                            flags=flags,
                            rearm_nonce=gate.rearm_nonce,
                            commands_ok=gate.counters.ok & 0xFFFFFFFF,
                            bad_crc=gate.counters.bad.get("bad_crc", 0) & 0xFFFFFFFF,
                            unsafe_commands=gate.unsafe_commands & 0xFFFFFFFF,
                            command_timeouts=gate.command_timeouts & 0xFFFFFFFF,
                        )
                    )
                except Exception:  # noqa: BLE001
                    send_failed += 1
            k += 1
            behind = clock.now() - (t0 + k * period)
            if behind > 0:
                k += int(behind // period) + 1
    except KeyboardInterrupt:
        pass
    finally:
        sim.apply(gate.damping)
        node.close()
    lat = np.array(lateness) if lateness else np.zeros(1)
    return {
        "ticks": len(lateness),
        "states_sent": sent,
        "send_failed": send_failed,
        "commands_ok": gate.counters.ok,
        "commands_bad": dict(gate.counters.bad),
        "undecodable": undecodable,
        **gate.guard_report(),
        "rearms": gate.rearms,
        "lateness_median_us": float(np.median(lat) * 1e6),
        "lateness_p99_us": float(np.percentile(lat, 99) * 1e6),
        "sim_time_s": sim.time_s(),
    }


def unitree_bridge_main(argv: list[str] | None = None) -> int:
    """`footfall bridge --sdk unitree`: serve a simulated robot on Unitree SDK2's DDS topics (docs/unitree.md)."""
    import argparse
    import signal

    p = argparse.ArgumentParser(prog="footfall bridge --sdk unitree", description=unitree_bridge_main.__doc__)
    p.add_argument("--robot", default="go1", help="built-in robot name or spec file (default: go1)")
    p.add_argument("--iface", default="lo", help="network interface or local IPv4 address for DDS (default: lo)")
    p.add_argument("--domain", type=int, default=DEFAULT_DOMAIN, help="DDS domain id (default: 0, as the robot)")
    p.add_argument("--rate", type=float, default=500.0, help="LowState_ rate, Hz (default: 500)")
    p.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    p.add_argument(
        "--command-timeout",
        type=float,
        default=COMMAND_TIMEOUT_S,
        help="damp (kp = 0) and latch when no valid command arrived for this many seconds, once commands started "
        f"(default: {COMMAND_TIMEOUT_S:g})",
    )
    p.add_argument(
        "--motor-index",
        default=None,
        metavar="M0,M1,...",
        help="the motor (0..19) of each spec joint, comma separated (default: the spec's; identity for a "
        "12-joint quadruped)",
    )
    p.add_argument("--gain-scale", type=float, default=BridgeLimits.GAIN_SCALE, help="as footfall bridge")
    p.add_argument("--per-joint-gains", action="store_true", help="as footfall bridge")
    p.add_argument("--position-margin", type=float, default=BridgeLimits.POSITION_MARGIN, help="as footfall bridge")
    p.add_argument("--print-config", action="store_true", help="print the CycloneDDS configuration (XML) and exit")
    a = p.parse_args(argv)
    if not a.command_timeout > 0:
        p.error(f"--command-timeout must be > 0 seconds, got {a.command_timeout}")
    if not a.rate > 0:
        p.error(f"--rate must be > 0, got {a.rate}")
    if not 0 <= a.domain <= 232:
        p.error(f"--domain must lie in 0..232, got {a.domain}")
    try:
        config = cyclonedds_config(a.iface)
        if a.print_config:
            print(config)
            return 0
        from footfall.robots.registry import load_robot

        spec = load_robot(a.robot)
        motors = None
        if a.motor_index is not None:
            motors = [int(x) for x in a.motor_index.split(",") if x.strip()]
        motors = check_motor_index(motor_index_for(spec, motors), spec.num_joints)
        limits = BridgeLimits.from_spec(
            spec, gain_scale=a.gain_scale, per_joint=a.per_joint_gains, position_margin=a.position_margin
        )
        from footfall.deploy.unitree import require_cyclonedds

        require_cyclonedds()
    except (ValueError, ImportError) as e:
        p.error(str(e))

    def _terminate(*_: object) -> None:
        raise KeyboardInterrupt  # leave the loop through its cleanup, then print the report

    signal.signal(signal.SIGTERM, _terminate)

    class _Banner:  # printed once the DDS entities exist, so a client that waits for it is never early
        def set(self) -> None:
            print(
                f"footfall bridge: {a.robot} at {a.rate:g} Hz on Unitree SDK2 DDS (domain {a.domain}, interface "
                f"{a.iface}): rt/lowstate, rt/lowcmd",
                flush=True,
            )

    report = run_unitree_bridge(
        spec,
        a.iface,
        a.domain,
        a.rate,
        duration_s=a.duration,
        command_timeout_s=a.command_timeout,
        limits=limits,
        motor_index=motors,
        ready=_Banner(),
    )
    print(json.dumps(report), flush=True)
    return 0


def bridge_main(argv: list[str] | None = None) -> int:
    """`footfall bridge [--sdk udp|unitree] ...`: the UDP bridge (default) or the Unitree SDK2 (DDS) one."""
    args = list(sys.argv[1:] if argv is None else argv)
    sdk = "udp"
    for i, x in enumerate(args):
        if x == "--sdk" and i + 1 < len(args):
            sdk = args[i + 1]
            del args[i : i + 2]
            break
        if x.startswith("--sdk="):
            sdk = x.split("=", 1)[1]
            del args[i]
            break
    if sdk == "unitree":
        return unitree_bridge_main(args)
    if sdk == "udp":
        from footfall.deploy.udp import bridge_main as udp_bridge_main

        return udp_bridge_main(args)
    print(f"footfall bridge: error: --sdk must be udp or unitree, got {sdk!r}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(unitree_bridge_main())
