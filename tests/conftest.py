"""Shared fixtures. The third-party reference models live outside the repository (../shared/reference-models);
tests that need them skip with a reason when that folder is absent, as it is in a user's checkout."""

from __future__ import annotations

from pathlib import Path

import pytest

TESTS_DIR = Path(__file__).resolve().parent
REFERENCE_DIR = TESTS_DIR.parent.parent / "shared" / "reference-models"
SPECS_DIR = TESTS_DIR / "specs"


def _reference_spec(name: str) -> Path:
    if not (REFERENCE_DIR / "README.md").is_file():
        pytest.skip(
            f"third-party reference models not found at {REFERENCE_DIR} (only present beside the repo in CI "
            "and development checkouts)"
        )
    return SPECS_DIR / f"{name}.toml"


@pytest.fixture
def reference_go1_spec() -> Path:
    return _reference_spec("reference_go1")


@pytest.fixture
def reference_panda_spec() -> Path:
    return _reference_spec("reference_panda")
