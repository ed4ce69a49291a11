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


@pytest.fixture(scope="session")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """A small quadruped policy (symmetric actor), trained 2 iterations and exported with the full parity check."""
    from footfall.training.export import export_run
    from footfall.training.ppo import PPOConfig
    from footfall.training.runner import RunConfig
    from footfall.training.train import train

    out = tmp_path_factory.mktemp("export")
    cfg = RunConfig(
        num_envs=4,
        max_iterations=2,
        checkpoint_every=1,
        torch_threads=1,
        ppo=PPOConfig(
            num_steps=8,
            learning_epochs=1,
            num_minibatches=2,
            actor_hidden=(32, 32),
            critic_hidden=(32,),
            symmetric_actor=True,
        ),
    )
    train(cfg, out / "run", progress=False)
    report = export_run(out / "run", out / "policy.onnx", parity_samples=10_000, evaluate=False)
    return out / "policy.onnx", report
