"""Unitree SDK2 over DDS: the `unitree_go` low-level messages, their CRC, a robot interface and a desk bridge.

`footfall deploy --robot unitree://IFACE` drives a Unitree robot (Go1/Go2 class, and H1 through `unitree_go`) with
the messages its firmware speaks (rt/lowcmd, rt/lowstate); `footfall bridge --sdk unitree` serves a MuJoCo robot on
the same topics with the same types, so a policy is tested at the desk against exactly what the robot will see.
docs/unitree.md describes both.

Nothing here is imported by `footfall.deploy` itself: CycloneDDS is an optional extra (`pip install
"footfall[unitree]"`), imported by `require_cyclonedds` when a DDS object is first made. `crc` needs only numpy.
"""

from __future__ import annotations

INSTALL_HINT = 'pip install "footfall[unitree]"'


def require_cyclonedds():  # noqa: ANN201 (returns the module)
    """The `cyclonedds` package, or ImportError that says how to install it."""
    try:
        import cyclonedds  # noqa: F401
        import cyclonedds.idl  # noqa: F401
    except ImportError as e:
        raise ImportError(
            f"the Unitree SDK2 (DDS) link needs CycloneDDS's Python binding, which is not installed ({e}); "
            f"run: {INSTALL_HINT}"
        ) from e
    return cyclonedds
