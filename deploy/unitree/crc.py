"""The CRC a Unitree robot checks on every LowCmd_ (and sets on every LowState_): unitree_sdk2's `crc32_core`.

The procedure, from unitree_sdk2 (example/low_level/stand_example_go2.cpp, `crc32_core`, and the same function in
example/h1/low_level and crc_pybind.cpp; https://github.com/unitreerobotics/unitree_sdk2):

- the input is the message's C struct image read as 32-bit words (little endian on the robot's computers);
- every word but the last is covered: `len = (sizeof(LowCmd_) >> 2) - 1`; the last word is the `crc` member itself;
- the register starts at 0xFFFFFFFF; for each word, for each of its 32 bits from the most significant down:
  shift the register left by one, XOR 0x04C11DB7 if the bit shifted out was 1, then XOR 0x04C11DB7 again if the
  data bit is 1; no reflection, no final XOR; the result goes into `crc`.

That is CRC-32/MPEG-2 (poly 0x04C11DB7, init 0xFFFFFFFF, not reflected, xorout 0) over the words written as big
endian bytes. `crc32_core` computes it with zlib's (reflected) CRC-32 on bit-reversed bytes, which gives the same
register bit-reversed; `crc32_core_reference` is the published bit-by-bit procedure, kept for the tests.

This module needs only numpy; `message_crc` and friends import the message types (CycloneDDS) when called.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from typing import Any

import numpy as np

POLY = 0x04C11DB7
INIT = 0xFFFFFFFF

_REV8 = bytes(int(f"{i:08b}"[::-1], 2) for i in range(256))


def _rev32(x: int) -> int:
    return int(f"{x & 0xFFFFFFFF:032b}"[::-1], 2)


def crc32_core_reference(words: Iterable[int]) -> int:
    """unitree_sdk2's crc32_core, bit by bit, as published (slow: tests only)."""
    crc = INIT
    for w in words:
        data = int(w) & 0xFFFFFFFF
        for bit in range(31, -1, -1):
            top = crc & 0x80000000
            crc = (crc << 1) & 0xFFFFFFFF
            if top:
                crc ^= POLY
            if (data >> bit) & 1:
                crc ^= POLY
    return crc


def crc32_mpeg2(data: bytes) -> int:
    """CRC-32/MPEG-2 of a byte string (catalogue check value: 0x0376E6E7 for b"123456789"), through zlib: zlib's
    CRC-32 is the same polynomial reflected, so on bit-reversed bytes its register (before its final XOR) is this
    register bit-reversed."""
    return _rev32(zlib.crc32(bytes(data).translate(_REV8)) ^ 0xFFFFFFFF)


def crc32_core(words: Any) -> int:
    """crc32_core over `words` (a sequence or array of uint32), the fast way."""
    return crc32_mpeg2(np.asarray(words, dtype=np.uint64).astype(">u4").tobytes())


def image_crc(image: bytes | bytearray | memoryview) -> int:
    """The CRC the robot computes over a C struct image: its little-endian words, all but the last one."""
    n = len(image) // 4 - 1
    if n < 0:
        raise ValueError(f"a struct image of {len(image)} bytes holds no CRC word")
    return crc32_mpeg2(np.frombuffer(image, dtype="<u4", count=n).astype(">u4").tobytes())


def message_crc(msg: Any) -> int:
    """The CRC of a LowCmd_ or LowState_ (whatever its `crc` member holds now: the last word is left out)."""
    from footfall.deploy.unitree.msgs import native_bytes

    return image_crc(native_bytes(msg))


def set_crc(msg: Any) -> Any:
    """Write the CRC into `msg.crc` (after every other member is final); returns `msg`."""
    msg.crc = message_crc(msg)
    return msg


def crc_ok(msg: Any) -> bool:
    """Whether `msg.crc` is right for its other members. False, never an exception, for a malformed message."""
    try:
        return int(msg.crc) == message_crc(msg)
    except Exception:  # noqa: BLE001 (a hostile sample: wrong array sizes, out-of-range values)
        return False
