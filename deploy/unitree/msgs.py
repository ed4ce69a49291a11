"""The `unitree_go` low-level messages (LowCmd_, LowState_ and their parts) as CycloneDDS IDL dataclasses.

Sources (facts only; the code is footfall's own):
- [PY] unitree_sdk2_python, unitree_sdk2py/idl/unitree_go/msg/dds_/_LowCmd_.py, _LowState_.py, _MotorCmd_.py,
  _MotorState_.py, _IMUState_.py, _BmsCmd_.py, _BmsState_.py (https://github.com/unitreerobotics/unitree_sdk2_python):
  the IDL as generated for Python by CycloneDDS's idlc, with typename "unitree_go.msg.dds_.NAME", @final,
  sequential member ids.
- [CPP] unitree_sdk2, example/low_level/stand_example_go2.cpp and example/h1/low_level/humanoid.hpp
  (https://github.com/unitreerobotics/unitree_sdk2): the same structs used from C++ as
  `unitree_go::msg::dds_::LowCmd_` (header unitree/idl/go2/LowCmd_.hpp) on the topics "rt/lowcmd" and
  "rt/lowstate"; head = {0xFE, 0xEF}, level_flag = 0xFF, gpio = 0 in every command; the CRC over the C struct.
- [DOC] Unitree's developer documentation (support.unitree.com, Go2 "DDS services interface", the IDL listing):
  octet head[2]; ... MotorCmd_ motor_cmd[20]; ...; IMU quaternion order w, x, y, z; motors 0..11 are
  FR, FL, RR, RL x hip, thigh, calf.

IDL to Python: octet -> uint8, short -> int16, unsigned short -> uint16, long -> int32, unsigned long -> uint32,
float -> float32. The DDS type name is the typename with "." turned into "::" (cyclonedds.idl.IDL does that), so
these types match a robot's and an official client's: `unitree_go::msg::dds_::LowCmd_` and so on.

Two byte layouts matter, and differ in their padding:
- the wire: XCDR1, little endian, what CycloneDDS writes for these @final types (a 4-byte encapsulation header, then
  every primitive aligned to its own size from the start of the payload, no padding after a struct);
- the C struct in memory (natural alignment, every struct padded to a multiple of its largest member): the robot
  checks the CRC over this image, as the C++ SDK computes it over `&low_cmd` ([CPP]: `crc32_core((uint32_t *)&cmd,
  (sizeof(LowCmd_) >> 2) - 1)`; sizeof(LowCmd_) = 812, sizeof(LowState_) = 1180). `native_bytes` builds it.

Importing this module needs CycloneDDS (`pip install "footfall[unitree]"`).
"""

# (no `from __future__ import annotations`: CycloneDDS resolves the member types from the real annotations)
import struct
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from footfall.deploy.unitree import require_cyclonedds

require_cyclonedds()

import cyclonedds.idl as idl  # noqa: E402
import cyclonedds.idl.annotations as annotate  # noqa: E402
import cyclonedds.idl.types as types  # noqa: E402

TOPIC_LOWCMD = "rt/lowcmd"  # [CPP] TOPIC_LOWCMD
TOPIC_LOWSTATE = "rt/lowstate"  # [CPP] TOPIC_LOWSTATE
NUM_MOTORS = 20  # [PY] motor_cmd: array[MotorCmd_, 20], motor_state: array[MotorState_, 20]
HEAD = (0xFE, 0xEF)  # [CPP] InitLowCmd: head()[0] = 0xFE, head()[1] = 0xEF
LOWLEVEL = 0xFF  # [CPP] level_flag() = 0xFF (unitree_legged_sdk: LOWLEVEL = 0xff, HIGHLEVEL = 0xee)
MODE_SERVO = 0x01  # [CPP] stand_example_go2.cpp: "motor switch to servo (PMSM) mode"
MODE_SERVO_STRONG = 0x0A  # [CPP] humanoid.hpp: H1's strong (non-"weak") motors
POS_STOP_F = 2.146e9  # [CPP] PosStopF: "no position loop" marker in MotorCmd_.q
VEL_STOP_F = 16000.0  # [CPP] VelStopF: "no velocity loop" marker in MotorCmd_.dq


@dataclass
@annotate.final
@annotate.autoid("sequential")
class MotorCmd_(idl.IdlStruct, typename="unitree_go.msg.dds_.MotorCmd_"):
    mode: types.uint8
    q: types.float32
    dq: types.float32
    tau: types.float32
    kp: types.float32
    kd: types.float32
    reserve: types.array[types.uint32, 3]


@dataclass
@annotate.final
@annotate.autoid("sequential")
class MotorState_(idl.IdlStruct, typename="unitree_go.msg.dds_.MotorState_"):
    mode: types.uint8
    q: types.float32
    dq: types.float32
    ddq: types.float32
    tau_est: types.float32
    q_raw: types.float32
    dq_raw: types.float32
    ddq_raw: types.float32
    temperature: types.uint8
    lost: types.uint32
    reserve: types.array[types.uint32, 2]


@dataclass
@annotate.final
@annotate.autoid("sequential")
class IMUState_(idl.IdlStruct, typename="unitree_go.msg.dds_.IMUState_"):
    quaternion: types.array[types.float32, 4]  # w, x, y, z [DOC]
    gyroscope: types.array[types.float32, 3]  # rad/s
    accelerometer: types.array[types.float32, 3]  # m/s^2
    rpy: types.array[types.float32, 3]  # rad
    temperature: types.uint8


@dataclass
@annotate.final
@annotate.autoid("sequential")
class BmsCmd_(idl.IdlStruct, typename="unitree_go.msg.dds_.BmsCmd_"):
    off: types.uint8
    reserve: types.array[types.uint8, 3]


@dataclass
@annotate.final
@annotate.autoid("sequential")
class BmsState_(idl.IdlStruct, typename="unitree_go.msg.dds_.BmsState_"):
    version_high: types.uint8
    version_low: types.uint8
    status: types.uint8
    soc: types.uint8
    current: types.int32
    cycle: types.uint16
    bq_ntc: types.array[types.uint8, 2]
    mcu_ntc: types.array[types.uint8, 2]
    cell_vol: types.array[types.uint16, 15]


@dataclass
@annotate.final
@annotate.autoid("sequential")
class LowCmd_(idl.IdlStruct, typename="unitree_go.msg.dds_.LowCmd_"):
    head: types.array[types.uint8, 2]
    level_flag: types.uint8
    frame_reserve: types.uint8
    sn: types.array[types.uint32, 2]
    version: types.array[types.uint32, 2]
    bandwidth: types.uint16
    motor_cmd: types.array[MotorCmd_, 20]
    bms_cmd: BmsCmd_
    wireless_remote: types.array[types.uint8, 40]
    led: types.array[types.uint8, 12]
    fan: types.array[types.uint8, 2]
    gpio: types.uint8
    reserve: types.uint32
    crc: types.uint32


@dataclass
@annotate.final
@annotate.autoid("sequential")
class LowState_(idl.IdlStruct, typename="unitree_go.msg.dds_.LowState_"):
    head: types.array[types.uint8, 2]
    level_flag: types.uint8
    frame_reserve: types.uint8
    sn: types.array[types.uint32, 2]
    version: types.array[types.uint32, 2]
    bandwidth: types.uint16
    imu_state: IMUState_
    motor_state: types.array[MotorState_, 20]
    bms_state: BmsState_
    foot_force: types.array[types.int16, 4]
    foot_force_est: types.array[types.int16, 4]
    tick: types.uint32
    wireless_remote: types.array[types.uint8, 40]
    bit_flag: types.uint8
    adc_reel: types.float32
    temperature_ntc1: types.uint8
    temperature_ntc2: types.uint8
    power_v: types.float32
    power_a: types.float32
    fan_frequency: types.array[types.uint16, 4]
    reserve: types.uint32
    crc: types.uint32


MESSAGES = (MotorCmd_, MotorState_, IMUState_, BmsCmd_, BmsState_, LowCmd_, LowState_)


# ---------------------------------------------------------------------------------------------- zero messages


def motor_cmd() -> MotorCmd_:
    return MotorCmd_(mode=0, q=0.0, dq=0.0, tau=0.0, kp=0.0, kd=0.0, reserve=[0, 0, 0])


def motor_state() -> MotorState_:
    return MotorState_(0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0, 0, [0, 0])


def low_cmd() -> LowCmd_:
    """A command as the SDK examples initialise one [CPP]: head FE EF, level_flag 0xFF, gpio 0, the rest 0."""
    return LowCmd_(
        head=list(HEAD),
        level_flag=LOWLEVEL,
        frame_reserve=0,
        sn=[0, 0],
        version=[0, 0],
        bandwidth=0,
        motor_cmd=[motor_cmd() for _ in range(NUM_MOTORS)],
        bms_cmd=BmsCmd_(off=0, reserve=[0, 0, 0]),
        wireless_remote=[0] * 40,
        led=[0] * 12,
        fan=[0] * 2,
        gpio=0,
        reserve=0,
        crc=0,
    )


def low_state() -> LowState_:
    """A state of zeros (identity quaternion), head and level_flag as in a command."""
    return LowState_(
        head=list(HEAD),
        level_flag=LOWLEVEL,
        frame_reserve=0,
        sn=[0, 0],
        version=[0, 0],
        bandwidth=0,
        imu_state=IMUState_([1.0, 0.0, 0.0, 0.0], [0.0] * 3, [0.0] * 3, [0.0] * 3, 0),
        motor_state=[motor_state() for _ in range(NUM_MOTORS)],
        bms_state=BmsState_(0, 0, 0, 0, 0, 0, [0, 0], [0, 0], [0] * 15),
        foot_force=[0] * 4,
        foot_force_est=[0] * 4,
        tick=0,
        wireless_remote=[0] * 40,
        bit_flag=0,
        adc_reel=0.0,
        temperature_ntc1=0,
        temperature_ntc2=0,
        power_v=0.0,
        power_a=0.0,
        fan_frequency=[0] * 4,
        reserve=0,
        crc=0,
    )


# ---------------------------------------------------------------------------------------------- the C struct image

_PRIMITIVES = {"uint8": "B", "int8": "b", "uint16": "H", "int16": "h", "uint32": "I", "int32": "i", "float32": "f"}


@dataclass(frozen=True)
class NativeLayout:
    """A message type's C struct image: `struct.Struct` (little endian, padding as `x`), member offsets, and a
    function that lists a message's values in the order the Struct packs them."""

    struct: struct.Struct
    size: int
    align: int
    offsets: dict[str, int]
    values: Callable[[Any], list]

    def pack(self, msg: Any) -> bytes:
        return self.struct.pack(*self.values(msg))


def _member(tp: Any) -> tuple[str, int, int, Callable[[Any, list], None]]:
    """(struct format, size, alignment, appender) of one member type."""
    args = typing.get_args(tp)
    meta = args[1] if len(args) == 2 else None
    if isinstance(meta, str) and meta in _PRIMITIVES:
        code = _PRIMITIVES[meta]
        n = struct.calcsize("<" + code)
        return code, n, n, lambda v, out: out.append(v)
    if isinstance(meta, types.array):
        code, n, align, _ = _member(meta.subtype)
        k = meta.length
        if isinstance(meta.subtype, type):  # an array of structs
            inner = native_layout(meta.subtype).values

            def add_structs(v: Any, out: list, k: int = k) -> None:
                if len(v) != k:
                    raise ValueError(f"array needs {k} elements, got {len(v)}")
                for e in v:
                    out.extend(inner(e))

            return code * k, n * k, align, add_structs

        def add_values(v: Any, out: list, k: int = k) -> None:
            if len(v) != k:
                raise ValueError(f"array needs {k} elements, got {len(v)}")
            out.extend(v)

        return code * k, n * k, align, add_values
    if isinstance(tp, type) and issubclass(tp, idl.IdlStruct):
        lay = native_layout(tp)
        return lay.struct.format[1:], lay.size, lay.align, lambda v, out: out.extend(lay.values(v))
    raise TypeError(f"no native layout for member type {tp!r}")


_LAYOUTS: dict = {}


def native_layout(cls: type) -> NativeLayout:
    """The C struct layout of an IDL struct type (natural alignment, trailing padding), derived from its members."""
    if cls in _LAYOUTS:
        return _LAYOUTS[cls]
    hints = typing.get_type_hints(cls, include_extras=True)
    fmt, off, align = "", 0, 1
    offsets: dict[str, int] = {}
    adders: list[tuple[str, Callable[[Any, list], None]]] = []
    for name in cls.__dataclass_fields__:
        code, n, a, add = _member(hints[name])
        pad = -off % a
        fmt += "x" * pad
        off += pad
        offsets[name] = off
        fmt += code
        off += n
        align = max(align, a)
        adders.append((name, add))
    pad = -off % align
    fmt += "x" * pad
    off += pad

    def values(msg: Any) -> list:
        out: list = []
        for name, add in adders:
            add(getattr(msg, name), out)
        return out

    s = struct.Struct("<" + fmt)
    if s.size != off:
        raise AssertionError(f"{cls.__name__}: struct size {s.size} != computed {off}")
    _LAYOUTS[cls] = lay = NativeLayout(s, off, align, offsets, values)
    return lay


def native_bytes(msg: Any) -> bytes:
    """The message's C struct image (padding zero), as the robot's firmware holds it in memory."""
    return native_layout(type(msg)).pack(msg)


def typename(cls: type) -> str:
    """The DDS type name, e.g. unitree_go::msg::dds_::LowCmd_."""
    return cls.__idl__.idl_transformed_typename
