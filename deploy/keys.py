"""Pre-shared keys for the UDP link between `footfall deploy` and a robot bridge (docs/udp-bridge.md).

A key file holds 32 random bytes, hex encoded, and a newline. Both ends of the link read the same file:
`footfall deploy ... --key PATH` on the control computer and `footfall bridge --key PATH` (or your own bridge) on
the robot. Like ssh with its private keys, `load_key` refuses a file that the group or others may read.

Standard library only: this module runs on the robot's computer.
"""

from __future__ import annotations

import argparse
import os
import secrets
import stat
import sys
from pathlib import Path

KEY_BYTES = 32  # what `generate_key` writes (HMAC-SHA256 gains nothing from longer keys)
MIN_KEY_BYTES = 16  # what `load_key` accepts at least
_MAX_FILE_BYTES = 4096  # a key file is ~65 bytes; never read more than this


def generate_key(path: str | Path, force: bool = False) -> bytes:
    """Write a new random key to `path` (mode 0600, created atomically); return it.

    Refuses (FileExistsError) to replace an existing file unless `force`. The file appears complete or not at all:
    it is written and fsynced under a temporary name in the same folder, then linked (or, with force, renamed) into
    place.
    """
    path = Path(path)
    key = secrets.token_bytes(KEY_BYTES)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise FileNotFoundError(f"cannot write key file {path}: folder {folder} does not exist")
    if path.exists() and not force:
        raise FileExistsError(
            f"key file {path} exists already; pass --force to replace it (both ends need the new one)"
        )
    tmp = folder / f".{path.name}.{secrets.token_hex(6)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        try:
            os.fchmod(fd, 0o600)  # whatever the umask says
            os.write(fd, key.hex().encode("ascii") + b"\n")
            os.fsync(fd)
        finally:
            os.close(fd)
        if force:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)  # atomic, and fails if `path` appeared meanwhile
            except FileExistsError:
                raise FileExistsError(f"key file {path} exists already; pass --force to replace it") from None
            except OSError:  # a file system without hard links: fall back to a rename
                if path.exists():
                    raise FileExistsError(f"key file {path} exists already; pass --force to replace it") from None
                os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    try:  # make the new directory entry durable too
        dfd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass
    return key


def load_key(path: str | Path) -> bytes:
    """The key in `path`; ValueError saying what to do when the file is missing, malformed, too short or readable
    by others."""
    path = Path(path)
    hint = f"create one with `footfall keygen {path}` and copy it to both ends of the link (scp -p keeps mode 0600)"
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise ValueError(f"no key file at {path}: {hint}") from None
    except OSError as e:
        raise ValueError(f"cannot read key file {path}: {e}") from None
    if not stat.S_ISREG(st.st_mode):
        raise ValueError(f"key file {path} is not a regular file: {hint}")
    if os.name == "posix" and st.st_mode & 0o077:
        raise ValueError(
            f"key file {path} has mode {stat.S_IMODE(st.st_mode):04o}: group and others must not read it; "
            f"run `chmod 600 {path}`"
        )
    try:
        with open(path, "rb") as f:
            raw = f.read(_MAX_FILE_BYTES + 1)
    except OSError as e:
        raise ValueError(f"cannot read key file {path}: {e}") from None
    if len(raw) > _MAX_FILE_BYTES:
        raise ValueError(f"key file {path} is larger than {_MAX_FILE_BYTES} bytes: not a key file; {hint}")
    text = raw.strip()
    try:
        key = bytes.fromhex(text.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise ValueError(f"key file {path} does not hold one hex-encoded key: {hint}") from None
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(f"key in {path} has {len(key)} bytes, fewer than {MIN_KEY_BYTES}: {hint}")
    return key


def keygen_main(argv: list[str] | None = None) -> int:
    """`footfall keygen PATH [--force]`: write a new pre-shared key for the UDP robot link."""
    p = argparse.ArgumentParser(
        prog="footfall keygen",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Write a new random 256-bit key for the authenticated UDP link between\n"
        "`footfall deploy` and a robot bridge to PATH: hex encoded, mode 0600, created\n"
        "atomically. Copy it to the robot's computer (scp -p keeps the mode) and pass\n"
        "it to both ends: `footfall bridge --key PATH` (or your own bridge) and\n"
        "`footfall deploy ... --key PATH`. Anyone who can read it can command the robot.",
        epilog="example:\n  footfall keygen ~/.config/footfall/robot.key\n"
        "  scp -p ~/.config/footfall/robot.key robot:.config/footfall/robot.key",
    )
    p.add_argument("path", metavar="PATH", help="where to write the key file")
    p.add_argument("--force", action="store_true", help="replace an existing key file (both ends need the new one)")
    a = p.parse_args(argv)
    try:
        generate_key(a.path, force=a.force)
    except OSError as e:  # exists already, no such folder, no permission, read-only file system
        print(f"footfall keygen: {e}", file=sys.stderr)
        return 1
    print(f"footfall keygen: wrote a {8 * KEY_BYTES}-bit key to {a.path} (mode 0600)")
    return 0
