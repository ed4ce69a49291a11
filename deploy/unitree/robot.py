"""UnitreeRobot: the deploy runtime's robot interface over Unitree SDK2's DDS topics (`unitree://IFACE`).

It speaks what a Unitree robot's firmware speaks (docs/unitree.md; message sources in msgs.py): it subscribes
"rt/lowstate" (unitree_go LowState_) and publishes "rt/lowcmd" (unitree_go LowCmd_, head FE EF, level_flag 0xFF,
the CRC set), on DDS domain 0 by default, through a CycloneDDS domain restricted to one network interface
(`cyclonedds_config`).

Joint order: `motor_index[j]` is the motor (0..19 in LowCmd_.motor_cmd / LowState_.motor_state) that drives the
spec's joint j. Unitree's Go1/Go2 number their motors FR, FL, RR, RL x hip, thigh, calf = 0..11, footfall's
quadrupeds list their joints in that order, so a 12-joint quadruped defaults to the identity; any other robot
needs the map (a humanoid's motor numbering has nothing to do with the policy's joint order). Motors that drive
no policy joint are held: `held[motor] = (q, kp, kd)` (a humanoid's arms at a pose), or sent the SDK's "stop"
command (mode servo, q = PosStopF, dq = VelStopF, kp = kd = tau = 0, as the SDK examples initialise every motor).

Readings: joint_pos, joint_vel, joint_torque from motor_state[m].q, .dq, .tau_est; imu_quat (w, x, y, z), gyro,
accel from imu_state; foot_contact from foot_force (raw sensor units on a real Go1/Go2, not newtons: nothing in
the runtime's safety layer reads it); stamp_s from `tick` (ms); age_s is the time since the sample arrived here.

Every sample is hostile: a LowState_ whose CRC does not verify is dropped and counted (`bad_crc`), a sample that
cannot be decoded is counted (`undecodable`), and nothing raises out of read() or write(). read() never blocks: a
listener only notes each sample's arrival time, read() takes the newest sample (history depth 1) and decodes it,
so the cost is one decode per control tick, not one per sample at the robot's 500 Hz.

The desk bridge (bridge.py) adds two footfall topics a robot does not have: "rt/footfall/rearm" (this side asks a
latched bridge to obey again: on start and on the operator's reset, like the UDP link's REARM handshake) and
"rt/footfall/bridge_status" (the bridge says it damps on its own, latched, which becomes `robot_fault`). On a real
robot nobody publishes or reads them.
"""

from __future__ import annotations

import ipaddress
import math
import secrets
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from footfall.deploy.interface import JointCommand, RobotReading
from footfall.deploy.udp import Counters

SCHEME = "unitree://"
DEFAULT_DOMAIN = 0  # unitree_sdk2: ChannelFactory::Instance()->Init(0, iface) in every example
TOPIC_REARM = "rt/footfall/rearm"
TOPIC_BRIDGE_STATUS = "rt/footfall/bridge_status"
STATUS_LATCHED = 1 << 0  # the bridge damps on its own, latched, until a rearm request
STATUS_UNSAFE = 1 << 1  # with LATCHED: the latch came from an unsafe command (without: commands stopped)
MAX_MOTORS = 20
QUADRUPED_MOTORS = 12  # Go1/Go2: FR, FL, RR, RL x hip, thigh, calf = motors 0..11 (docs/unitree.md, [DOC] in msgs)


# ---------------------------------------------------------------------------------------------- configuration


def cyclonedds_config(iface: str = "lo") -> str:
    """A CycloneDDS configuration (XML, what CYCLONEDDS_URI may hold) that keeps DDS on one network interface.

    `iface` is an interface name (eth0, enp3s0, lo) or an IPv4 address of this computer on the robot's network
    (192.168.123.99). The loopback interface has no multicast on Linux, so for `lo` discovery goes by unicast to
    127.0.0.1 with participant indices assigned automatically (at most 30 DDS processes per domain on one host)."""
    name = iface.strip()
    if not name or any(c in name for c in "<>\"'& \t\n"):
        raise ValueError(f"network interface {iface!r} is not a valid interface name or address")
    try:
        ipaddress.ip_address(name)
        nic = f'<NetworkInterface address="{name}" priority="default" multicast="default"/>'
    except ValueError:
        nic = f'<NetworkInterface name="{name}" priority="default" multicast="default"/>'
    loopback = name in ("lo", "lo0", "127.0.0.1")
    discovery = (
        "<Discovery><ParticipantIndex>auto</ParticipantIndex><MaxAutoParticipantIndex>29</MaxAutoParticipantIndex>"
        '<Peers><Peer address="127.0.0.1"/></Peers></Discovery>'
        if loopback
        else ""
    )
    return (
        '<?xml version="1.0" encoding="UTF-8" ?><CycloneDDS><Domain Id="any"><General><Interfaces>'
        f"{nic}</Interfaces></General>{discovery}</Domain></CycloneDDS>"
    )


def parse_url(url: str) -> str:
    """The interface of `unitree://IFACE`."""
    if not url.startswith(SCHEME) or not url[len(SCHEME) :].strip("/"):
        raise ValueError(f"robot URL {url!r} must look like unitree://IFACE, e.g. unitree://eth0 (or unitree://lo)")
    iface = url[len(SCHEME) :].strip("/")
    cyclonedds_config(iface)  # validates the name
    return iface


def motor_index_for(spec: Any, motor_index: Sequence[int] | None = None) -> list[int]:
    """The motor of each of the spec's joints: `motor_index` if given, else the spec file's `motor_index`, else the
    identity for a 12-joint quadruped (Go1/Go2 numbering = footfall's joint order). ValueError for anything else:
    guessing a humanoid's motor numbering would send one joint's command to another."""
    nj = int(spec.num_joints)
    if motor_index is None:
        motor_index = spec.motor_index
    if motor_index is None:
        if getattr(spec, "kind", None) == "quadruped" and nj == QUADRUPED_MOTORS:
            return list(range(QUADRUPED_MOTORS))
        raise ValueError(
            f"{getattr(spec, 'name', 'this robot')} ({getattr(spec, 'kind', '?')}, {nj} joints) needs a motor_index: "
            "which Unitree motor (0..19) drives each joint, in the spec's joint order"
        )
    return check_motor_index(motor_index, nj)


def check_motor_index(motor_index: Sequence[int], nj: int, held: Mapping[int, Any] | None = None) -> list[int]:
    idx = [int(m) for m in motor_index]
    if any(isinstance(m, bool) or int(m) != m for m in motor_index):
        raise ValueError(f"motor_index must hold whole numbers, got {list(motor_index)}")
    if len(idx) != nj:
        raise ValueError(f"motor_index has {len(idx)} entries, the robot has {nj} joints")
    if any(not 0 <= m < MAX_MOTORS for m in idx):
        raise ValueError(f"motor_index entries must lie in 0..{MAX_MOTORS - 1}, got {idx}")
    if len(set(idx)) != nj:
        raise ValueError(f"motor_index names a motor twice: {idx}")
    if held:
        both = sorted(set(idx) & {int(m) for m in held})
        if both:
            raise ValueError(f"motor(s) {both} are both policy joints (motor_index) and held")
    return idx


def check_held(held: Mapping[int, Sequence[float]] | None) -> dict[int, tuple[float, float, float]]:
    out: dict[int, tuple[float, float, float]] = {}
    for m, v in (held or {}).items():
        if isinstance(m, bool) or not 0 <= int(m) < MAX_MOTORS or int(m) != m:
            raise ValueError(f"held motor {m!r} is not a motor index 0..{MAX_MOTORS - 1}")
        q, kp, kd = (float(x) for x in v)
        if not all(math.isfinite(x) for x in (q, kp, kd)) or kp < 0 or kd < 0:
            raise ValueError(f"held motor {m}: (q, kp, kd) = {tuple(v)} must be finite, kp and kd >= 0")
        out[int(m)] = (q, kp, kd)
    return out


# ---------------------------------------------------------------------------------------------- DDS plumbing


class DdsNode:
    """A CycloneDDS domain on one interface, its participant, and the topics both ends use."""

    def __init__(self, iface: str, domain_id: int = DEFAULT_DOMAIN):
        from footfall.deploy.unitree import require_cyclonedds

        require_cyclonedds()
        from cyclonedds.core import DDSException
        from cyclonedds.domain import Domain, DomainParticipant

        from footfall.deploy.unitree import msgs

        self.msgs = msgs
        self.iface, self.domain_id = iface, int(domain_id)
        self.config = cyclonedds_config(iface)
        try:
            self.domain: Any = Domain(self.domain_id, self.config)
        except DDSException as e:  # this process made domain `domain_id` already (with its own configuration)
            self.domain = None
            print(
                f"footfall unitree: DDS domain {self.domain_id} exists in this process already ({e}); using it as "
                f"configured, not restricted to {iface}",
                file=sys.stderr,
            )
        self.participant = DomainParticipant(self.domain_id)
        self._topics: dict[str, Any] = {}

    def topic(self, name: str, datatype: type) -> Any:
        from cyclonedds.topic import Topic

        if name not in self._topics:
            self._topics[name] = Topic(self.participant, name, datatype)
        return self._topics[name]

    def reader(self, name: str, datatype: type, depth: int = 1, listener: Any = None, durable: bool = False) -> Any:
        from cyclonedds.qos import Policy, Qos
        from cyclonedds.sub import DataReader

        policies = [Policy.Reliability.BestEffort, Policy.History.KeepLast(depth)]
        if durable:
            policies = [
                Policy.Reliability.Reliable(0),
                Policy.History.KeepLast(depth),
                Policy.Durability.TransientLocal,
            ]
        return DataReader(self.participant, self.topic(name, datatype), qos=Qos(*policies), listener=listener)

    def writer(self, name: str, datatype: type, durable: bool = False) -> Any:
        from cyclonedds.pub import DataWriter
        from cyclonedds.qos import Policy, Qos

        # Reliable, as the SDK's default writer (it matches best-effort and reliable readers alike), keeping only
        # the newest sample and never blocking the caller: a write that cannot go out at once fails and is counted.
        policies = [Policy.Reliability.Reliable(0), Policy.History.KeepLast(1)]
        if durable:
            policies.append(Policy.Durability.TransientLocal)
        return DataWriter(self.participant, self.topic(name, datatype), qos=Qos(*policies))

    def close(self) -> None:
        for attr in ("participant", "domain"):
            ent = getattr(self, attr, None)
            setattr(self, attr, None)
            if ent is not None:
                try:
                    ent.__del__()  # cyclonedds deletes an entity (and its children) this way
                except Exception:  # noqa: BLE001
                    pass
        self._topics.clear()


def footfall_types() -> tuple[type, type]:
    """(Rearm_, BridgeStatus_): the two footfall-only messages of the desk bridge."""
    global _FOOTFALL_TYPES
    if _FOOTFALL_TYPES is None:
        from footfall.deploy.unitree import _footfall_msgs

        _FOOTFALL_TYPES = (_footfall_msgs.Rearm_, _footfall_msgs.BridgeStatus_)
    return _FOOTFALL_TYPES


_FOOTFALL_TYPES: tuple[type, type] | None = None


# ---------------------------------------------------------------------------------------------- the robot


class UnitreeRobot:
    """RobotInterface over Unitree SDK2 DDS. See the module docstring."""

    def __init__(
        self,
        iface: str,
        num_joints: int,
        num_feet: int = 0,
        *,
        motor_index: Sequence[int] | None = None,
        held: Mapping[int, Sequence[float]] | None = None,
        damping_kd: Sequence[float] | float = 0.0,
        motor_mode: int | Sequence[int] = 0x01,
        domain_id: int = DEFAULT_DOMAIN,
        check_state_crc: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.num_joints, self.num_feet = int(num_joints), int(num_feet)
        nj = self.num_joints
        self.held = check_held(held)
        if motor_index is None and nj != QUADRUPED_MOTORS:
            raise ValueError(f"a robot with {nj} joints needs a motor_index (which motor 0..19 drives each joint)")
        self.motor_index = check_motor_index(list(range(nj)) if motor_index is None else motor_index, nj, self.held)
        self.foot_index = list(range(self.num_feet)) if 0 < self.num_feet <= 4 else []
        kd = np.broadcast_to(np.asarray(damping_kd, dtype=float), (nj,)).copy()
        if not (np.isfinite(kd).all() and (kd >= 0).all()):
            raise ValueError(f"damping_kd must be finite and >= 0, got {kd}")
        self.damping = JointCommand.damping(nj, kd)
        modes = np.broadcast_to(np.asarray(motor_mode, dtype=int), (MAX_MOTORS,))
        self.motor_mode = [int(m) & 0xFF for m in modes]
        self.check_state_crc = bool(check_state_crc)
        self.clock = clock
        self.counters = Counters()
        self.stale_reads = 0  # read() calls that found no new sample (the previous reading returned again)
        self.superseded = 0  # samples that arrived but were replaced by a newer one before read() took them
        self.sent = 0
        self.lifecycle_samples = 0  # samples without data (DDS instance state changes: a writer left)
        self.latest: RobotReading | None = None
        self._seq = 0
        self._arrivals = 0
        self._taken = 0
        self._last_arrival: float | None = None
        self._latest_arrival: float | None = None
        self._status: Any = None
        self._closed = False

        self.node = DdsNode(iface, domain_id)
        try:
            from cyclonedds.core import Listener

            m = self.node.msgs
            self._cmd = m.low_cmd()
            for mc in self._cmd.motor_cmd:  # motors no joint uses: the SDK's "stop" command
                mc.mode, mc.q, mc.dq = m.MODE_SERVO, m.POS_STOP_F, m.VEL_STOP_F
            for mot, (q, kp, kd_) in self.held.items():
                mc = self._cmd.motor_cmd[mot]
                mc.mode, mc.q, mc.dq, mc.kp, mc.kd, mc.tau = self.motor_mode[mot], q, 0.0, kp, kd_, 0.0
            for mot in self.motor_index:
                self._cmd.motor_cmd[mot].mode = self.motor_mode[mot]
            self._listener = Listener(on_data_available=self._on_state)
            self._reader = self.node.reader(m.TOPIC_LOWSTATE, m.LowState_, depth=1, listener=self._listener)
            self._writer = self.node.writer(m.TOPIC_LOWCMD, m.LowCmd_)
            rearm_t, status_t = footfall_types()
            self._rearm_writer = self.node.writer(TOPIC_REARM, rearm_t, durable=True)
            self._status_reader = self.node.reader(TOPIC_BRIDGE_STATUS, status_t, depth=1, durable=True)
            self._rearm_type = rearm_t
        except Exception:
            self.node.close()
            raise
        self.rearm()  # a new runtime starts PASSIVE: it may re-arm a desk bridge that latched

    @classmethod
    def for_spec(cls, spec: Any, iface: str = "lo", **kw: Any) -> UnitreeRobot:
        """For a RobotSpec: its joint and foot counts, its motor_index (see `motor_index_for`), its kd for damping."""
        kw.setdefault("damping_kd", np.asarray(spec.kd, dtype=float))
        motor_index = motor_index_for(spec, kw.pop("motor_index", None))
        return cls(iface, spec.num_joints, len(spec.feet), motor_index=motor_index, **kw)

    @classmethod
    def from_url(cls, url: str, spec: Any, **kw: Any) -> UnitreeRobot:
        """`unitree://IFACE` (e.g. unitree://eth0, unitree://lo) for the robot `spec`."""
        return cls.for_spec(spec, parse_url(url), **kw)

    # ------------------------------------------------------------------ listener (a DDS thread)

    def _on_state(self, _reader: Any) -> None:
        # only the arrival time: decoding happens in read(), once per control tick, on the newest sample
        self._last_arrival = self.clock()
        self._arrivals += 1

    # ------------------------------------------------------------------ read / write

    def read(self) -> RobotReading | None:
        """The newest valid state (or the previous one, or None). Never blocks, never raises."""
        if self._closed:
            return self.latest
        try:
            arrived = self._last_arrival  # before take: a sample arriving meanwhile makes the age an overestimate
            samples = self._reader.take(N=1)
        except Exception:  # noqa: BLE001 (a sample that does not decode: take removed it already)
            self.counters.count("undecodable")
            samples = []
        fresh = False
        for s in samples:
            self._taken += 1
            try:
                if not hasattr(s, "motor_state"):  # no data: DDS says a writer left (the robot or bridge stopped)
                    self.lifecycle_samples += 1
                    continue
                if self.check_state_crc and not self._crc_ok(s):
                    self.counters.count("bad_crc")
                    continue
                reading = self._reading(s)
            except Exception:  # noqa: BLE001 (last line of defence: no sample may raise out of read())
                self.counters.count("malformed")
                continue
            # (the listener may not have stamped a sample that take() already returned: then it arrived just now)
            arrival = arrived if arrived is not None else self._last_arrival
            self.latest, self._latest_arrival, fresh = reading, arrival if arrival is not None else self.clock(), True
            self.counters.ok += 1
        try:
            self.superseded = max(0, self._arrivals - self._taken)
            if not fresh:
                self.stale_reads += 1
            if self.latest is not None:
                now = self.clock()
                self.latest.age_s = None if self._latest_arrival is None else max(0.0, now - self._latest_arrival)
                self.latest.robot_fault = self._bridge_fault()
        except Exception:  # noqa: BLE001
            self.counters.count("internal_error")
        return self.latest

    def write(self, cmd: JointCommand) -> None:
        """Publish `cmd` as a LowCmd_ (CRC set). A command that cannot be sent as it is (wrong shape, a value that is
        not finite as float32) is replaced by damping and counted. Never blocks, never raises."""
        if self._closed:
            return
        try:
            vals = self._values(cmd)
            if vals is None:
                self.counters.count("unsendable_command")
                vals = self._values(self.damping)
            q, dq, kp, kd, tau = (row.tolist() for row in vals)
            mcs = self._cmd.motor_cmd
            for j, mot in enumerate(self.motor_index):
                mc = mcs[mot]
                mc.q, mc.dq, mc.kp, mc.kd, mc.tau = q[j], dq[j], kp[j], kd[j], tau[j]
            from footfall.deploy.unitree.crc import set_crc

            set_crc(self._cmd)
            self._writer.write(self._cmd)
            self.sent += 1
        except Exception:  # noqa: BLE001 (a failed write is retried on the next tick; the stale trip covers the rest)
            self.counters.count("send_failed")

    def rearm(self) -> None:
        """Ask a desk bridge that damps on its own (latched) to obey commands again (the operator's reset). A real
        robot has nothing to re-arm and does not read the request."""
        if self._closed:
            return
        try:
            self._status = None  # the latched status is the bridge's answer to the past, not to this request
            self._rearm_writer.write(self._rearm_type(nonce=secrets.randbits(63) or 1))
        except Exception:  # noqa: BLE001
            self.counters.count("send_failed")

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.node.close()

    def counts(self) -> dict[str, Any]:
        """What the link accepted and refused, by reason (footfall deploy's report)."""
        bad = self.counters.bad
        return {
            "ok": self.counters.ok,
            **{f"bad_{k}": v for k, v in bad.items()},
            "dropped": sum(bad.get(k, 0) for k in ("bad_crc", "undecodable", "malformed")),
            "stale_reads": self.stale_reads,
            "superseded": self.superseded,
            "sent": self.sent,
        }

    # ------------------------------------------------------------------ internals

    @property
    def bridge_status(self) -> dict[str, int]:
        """The desk bridge's newest status (flags, rearm_nonce, commands_ok, bad_crc, unsafe_commands,
        command_timeouts), as of the last read(); empty when none arrived (always so on a real robot)."""
        st = self._status
        if st is None:
            return {}
        return {k: int(getattr(st, k)) for k in st.__dataclass_fields__}

    def _crc_ok(self, s: Any) -> bool:
        from footfall.deploy.unitree.crc import crc_ok

        return crc_ok(s)

    def _values(self, cmd: JointCommand) -> np.ndarray | None:
        """(5, nj) float32-exact values of q, dq, kp, kd, tau, or None when they cannot be sent."""
        try:
            with np.errstate(over="ignore", invalid="ignore"):
                v = np.array([cmd.q, cmd.dq, cmd.kp, cmd.kd, cmd.tau], dtype=np.float64).astype(np.float32)
        except Exception:  # noqa: BLE001 (not a JointCommand, ragged arrays, values that are not numbers)
            return None
        if v.shape != (5, self.num_joints) or not np.isfinite(v).all():
            return None
        return v.astype(np.float64)

    def _reading(self, s: Any) -> RobotReading:
        ms = s.motor_state
        idx = self.motor_index
        q = np.array([ms[m].q for m in idx], dtype=float)
        dq = np.array([ms[m].dq for m in idx], dtype=float)
        tau = np.array([ms[m].tau_est for m in idx], dtype=float)
        imu = s.imu_state
        self._seq += 1
        return RobotReading(
            seq=self._seq,
            stamp_s=int(s.tick) * 1e-3,
            joint_pos=q,
            joint_vel=dq,
            joint_torque=tau,
            imu_quat=np.array(imu.quaternion, dtype=float).reshape(4),
            gyro=np.array(imu.gyroscope, dtype=float).reshape(3),
            accel=np.array(imu.accelerometer, dtype=float).reshape(3),
            foot_contact=(
                np.array([s.foot_force[i] for i in self.foot_index], dtype=float) if self.foot_index else None
            ),
        )

    def _bridge_fault(self) -> str | None:
        try:
            got = self._status_reader.take(N=1)
        except Exception:  # noqa: BLE001
            self.counters.count("undecodable")
            got = []
        for st in got:
            if hasattr(st, "flags"):
                self._status = st
        st = self._status
        if st is None or not int(st.flags) & STATUS_LATCHED:
            return None
        if int(st.flags) & STATUS_UNSAFE:
            return "the bridge refused an unsafe command and damps, latched (a reset re-arms it)"
        return "commands stopped reaching the bridge and it damps, latched (a reset re-arms it)"
