"""footfall's built-in robot descriptions (MJCF + spec file per robot), shipped as package data.

Each folder holds `<robot>.xml` (the MJCF, written by this project from the published facts cited in
its header) and `spec.toml` (joint order, feet, IMU, limits not expressible in MJCF).
"""

from pathlib import Path

ASSETS_DIR = Path(__file__).resolve().parent


def builtin_spec_files() -> dict[str, Path]:
    """Map robot name -> spec file path for every built-in robot."""
    return {p.parent.name: p for p in sorted(ASSETS_DIR.glob("*/spec.toml"))}
