"""The two footfall-only DDS messages of the Unitree desk bridge (not part of Unitree's SDK; a robot ignores them).

- Rearm_ on "rt/footfall/rearm", UnitreeRobot -> bridge: obey commands again after a latch. Each request carries a
  fresh random nonce; the bridge acts on a nonce once, so a request that DDS delivers again (a link that comes back,
  a late reader: the topic is transient-local) re-arms nothing.
- BridgeStatus_ on "rt/footfall/bridge_status", bridge -> UnitreeRobot: whether the bridge damps on its own
  (flags: bit 0 latched, bit 1 the latch came from an unsafe command), and what it refused so far.
"""

# (no `from __future__ import annotations`: CycloneDDS resolves the member types from the real annotations)
from dataclasses import dataclass

from footfall.deploy.unitree import require_cyclonedds

require_cyclonedds()

import cyclonedds.idl as idl  # noqa: E402
import cyclonedds.idl.annotations as annotate  # noqa: E402
import cyclonedds.idl.types as types  # noqa: E402


@dataclass
@annotate.final
@annotate.autoid("sequential")
class Rearm_(idl.IdlStruct, typename="footfall.msg.dds_.Rearm_"):
    nonce: types.uint64


@dataclass
@annotate.final
@annotate.autoid("sequential")
class BridgeStatus_(idl.IdlStruct, typename="footfall.msg.dds_.BridgeStatus_"):
    flags: types.uint32
    rearm_nonce: types.uint64  # the newest rearm request acted on (0: none)
    commands_ok: types.uint32
    bad_crc: types.uint32
    unsafe_commands: types.uint32
    command_timeouts: types.uint32
