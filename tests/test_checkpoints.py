"""Checkpoints load without running code from the file (torch.load weights_only=True, no extra globals), hold
numpy data bit for bit, and every file a run writes lands atomically."""

from __future__ import annotations

import json
import os
import pickle
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch

import footfall.training.runner as runner_mod
from footfall.training.ppo import PPOConfig
from footfall.training.runner import (
    CHECKPOINT,
    CHECKPOINT_SAFE_GLOBALS,
    RunConfig,
    _pack,
    _unpack,
    atomic_save,
    atomic_write_text,
    load_checkpoint,
    upgrade_checkpoint,
)
from footfall.training.sac import SACConfig
from footfall.training.train import train


def _tiny(task: str, algo: str) -> RunConfig:
    return RunConfig(
        task=task,
        algo=algo,
        num_envs=2,
        max_iterations=2,
        checkpoint_every=1,
        torch_threads=1,
        ppo=PPOConfig(num_steps=8, learning_epochs=1, num_minibatches=2, actor_hidden=(16,), critic_hidden=(16,)),
        sac=SACConfig(hidden=(16,), batch_size=8, learning_starts=10, steps_per_iteration=10, utd_ratio=0.5),
    )


@pytest.mark.parametrize(
    ("algo", "task"), [("ppo", "footfall/Quadruped-Walk-Flat-v0"), ("sac", "footfall/Arm-Reach-v1")]
)
def test_real_checkpoints_need_no_globals_beyond_plain_data(algo: str, task: str, tmp_path: Path) -> None:
    """A PPO and a SAC checkpoint name no class or function torch's weights-only loader does not build by itself,
    and load back with the environment snapshot's numpy arrays and generator state as they were."""
    assert CHECKPOINT_SAFE_GLOBALS == ()
    train(_tiny(task, algo), tmp_path / "run", progress=False)
    path = tmp_path / "run" / CHECKPOINT
    assert torch.serialization.get_unsafe_globals_in_checkpoint(path) == []
    torch.load(path, weights_only=True)  # plain torch, no allow-list
    ck = load_checkpoint(tmp_path / "run")
    assert ck["iteration"] == 2
    env = ck["env"]
    assert env["arrays"] and all(isinstance(v, np.ndarray) for v in env["arrays"].values())
    assert isinstance(env["sim"]["state"], np.ndarray) and env["sim"]["state"].dtype == np.float64
    assert isinstance(env["rng"]["state"]["state"], int)  # PCG64's 128-bit state: a plain int
    if algo == "sac":
        assert isinstance(ck["buffer"]["obs"], np.ndarray) and ck["buffer"]["obs"].dtype == np.float32


def test_numpy_data_survives_a_checkpoint_bit_for_bit(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    state = OrderedDict(w=torch.randn(3))
    state._metadata = {"": {"version": 2}}  # type: ignore[attr-defined]
    obj = {
        "format": "footfall-checkpoint-1",
        "arrays": {
            dt: (rng.standard_normal((3, 4)) * 100).astype(dt) for dt in ("f8", "f4", "f2", "i8", "i4", "u1", "?")
        },
        "scalar0d": np.asarray(np.float64(np.pi)),
        "strided": np.arange(20.0)[::3],
        "big_endian": np.arange(4, dtype=">f8"),
        "scalars": [np.float64(0.1), np.int64(-7), np.bool_(True), np.float32(1 / 3)],
        "tuple": (np.zeros(2), 3, "x"),
        "rng": rng.bit_generator.state,
        "state_dict": state,
    }
    atomic_save(obj, tmp_path / "c.pt")
    back = load_checkpoint(tmp_path / "c.pt")
    for k, a in obj["arrays"].items():
        assert back["arrays"][k].dtype == a.dtype and back["arrays"][k].tobytes() == a.tobytes()
    assert back["scalar0d"].shape == () and back["scalar0d"] == np.pi
    np.testing.assert_array_equal(back["strided"], obj["strided"])
    np.testing.assert_array_equal(back["big_endian"], obj["big_endian"])
    assert [type(x) for x in back["scalars"]] == [type(x) for x in obj["scalars"]]
    assert back["scalars"] == obj["scalars"]
    assert isinstance(back["tuple"], tuple) and back["tuple"][1:] == (3, "x")
    assert back["rng"] == obj["rng"]
    assert type(back["state_dict"]) is OrderedDict and back["state_dict"]._metadata == {"": {"version": 2}}
    assert _unpack(_pack(state)) is state  # nothing to convert: the very object


class _RunsCode:
    """What a hostile checkpoint hides: unpickling it calls a function of the attacker's choice."""

    def __init__(self, func, arg: str):  # noqa: ANN001
        self.func, self.arg = func, arg

    def __reduce__(self):  # noqa: ANN204
        return (self.func, (self.arg,))


def _hostile(tmp_path: Path, marker: Path) -> list[Path]:
    payloads = [
        _RunsCode(os.system, f"touch {marker}"),
        _RunsCode(exec, f"open({str(marker)!r}, 'w').write('ran')"),
    ]
    files = []
    for i, p in enumerate(payloads):
        zipped = tmp_path / f"zip{i}.pt"
        torch.save({"format": "footfall-checkpoint-1", "policy": p}, zipped)  # torch's zip format
        raw = tmp_path / f"raw{i}.pt"
        raw.write_bytes(pickle.dumps({"format": "footfall-checkpoint-1", "policy": p}))  # a bare pickle
        files += [zipped, raw]
    return files


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_a_checkpoint_that_would_run_code_is_refused_and_the_code_does_not_run(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    files = _hostile(tmp_path, marker)
    for path in files:
        with pytest.raises(ValueError) as e:
            load_checkpoint(path)
        msg = str(e.value)
        assert "not written by footfall" in msg
        if path.name.startswith("zip"):  # torch's format: the refusal names what the file asked for
            assert f"refusing to load checkpoint {path}" in msg
            assert "posix.system" in msg or "builtins.exec" in msg
            assert "weights_only off" in msg
        with pytest.raises(ValueError, match="not upgraded|not upgrading checkpoint"):
            upgrade_checkpoint(path)
        assert not marker.exists()
    pickle.loads(files[1].read_bytes())  # the payload is live: plain unpickling runs it
    assert marker.exists()


def test_a_checkpoint_from_an_older_footfall_is_refused_then_upgraded(tmp_path: Path) -> None:
    """Before this format, numpy arrays were pickled as numpy objects: refused by default, converted on request (still
    with the weights-only loader), then loaded with the same values."""
    path = tmp_path / "old.pt"
    old = {"format": "footfall-checkpoint-1", "env": {"a": np.arange(5, dtype=np.int32)}, "x": np.float64(2.5)}
    torch.save(old, path)
    with pytest.raises(ValueError, match=r"asks to load .*numpy.*not written by this footfall.*upgrade_checkpoint\('"):
        load_checkpoint(path)
    upgrade_checkpoint(path)
    ck = load_checkpoint(path)
    assert ck["env"]["a"].dtype == np.int32 and ck["env"]["a"].tolist() == [0, 1, 2, 3, 4]
    assert ck["x"] == 2.5 and isinstance(ck["x"], np.float64)


def test_a_damaged_file_says_so(tmp_path: Path) -> None:
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint at all")
    with pytest.raises(ValueError, match="unreadable.*not written by footfall or is damaged"):
        load_checkpoint(tmp_path / "bad.pt")


# ---------------------------------------------------------------------- atomic files


def test_a_crash_while_writing_json_leaves_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """os.replace failing (the crash between writing and renaming) or fsync failing (the disk): the old file is
    intact, and no partial or temporary file is left beside it."""
    path = tmp_path / "history.json"
    atomic_write_text(json.dumps([1, 2]), path)

    def boom(*a, **k):  # noqa: ANN002, ANN003, ANN202
        raise OSError("simulated crash")

    for name in ("replace", "fsync"):
        with monkeypatch.context() as m:
            m.setattr(os, name, boom)
            with pytest.raises(OSError, match="simulated crash"):
                atomic_write_text(json.dumps([3] * 1000), path)
        assert json.loads(path.read_text()) == [1, 2]
        assert sorted(p.name for p in tmp_path.iterdir()) == ["history.json"]


def test_atomic_writes_fsync_the_file_and_its_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[str] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}") if os.path.exists("/proc/self/fd") else str(fd))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    atomic_write_text("{}", tmp_path / "eval.json")
    assert len(synced) == 2
    if os.path.exists("/proc/self/fd"):
        assert synced[0].startswith(str(tmp_path / ".eval.json.tmp-")) and synced[1] == str(tmp_path)


def test_every_file_a_run_writes_goes_through_the_atomic_writer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from footfall.training.evaluate import evaluate_run

    written: list[str] = []
    real = runner_mod.atomic_write_bytes

    def spy(data: bytes, path: Path) -> None:
        written.append(Path(path).name)
        real(data, path)

    monkeypatch.setattr(runner_mod, "atomic_write_bytes", spy)
    train(_tiny("footfall/Quadruped-Walk-Flat-v0", "ppo"), tmp_path / "run", progress=False)
    evaluate_run(tmp_path / "run", episodes=1, video=False)
    assert {"config.json", "history.json", "checkpoint.pt", "eval.json"} <= set(written)
    for f in ("config.json", "history.json", "eval.json"):
        json.loads((tmp_path / "run" / f).read_text())
