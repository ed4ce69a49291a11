"""Export a trained run to one ONNX file that carries its policy contract.

The graph maps raw observations (batch, obs_size) to actions (batch, action_size): the observation normalizer, the
mirror-symmetric averaging (if trained with it) and the SAC tanh squash are inside it, so deploy feeds the
observation the contract describes and gets the action the contract scales. The contract (robots/contract.py) is
JSON under the metadata key `footfall_contract`.

Before the file is written, onnx.checker checks the model and a parity check runs the torch actor and
onnxruntime on observations recorded from real rollouts of the policy (randomization on). The file lands
atomically, and only when both pass.
"""

from __future__ import annotations

import io
import json
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch

from footfall.envs import make_task
from footfall.robots.contract import CONTRACT_METADATA_KEY, EVAL_METADATA_KEY, NormalizerContract, PolicyContract
from footfall.training.runner import atomic_write_bytes, load_checkpoint, policy_path

PARITY_TOL = 1e-5
OPSET = 17


class ExportError(RuntimeError):
    """The exported graph failed its checks; nothing was written."""


def _versions() -> tuple[tuple[str, str], ...]:
    out = []
    for pkg in ("footfall", "mujoco", "torch", "onnx", "numpy"):
        try:
            out.append((pkg, metadata.version(pkg)))
        except metadata.PackageNotFoundError:
            pass
    return tuple(out)


def record_observations(cfg: Any, actor: torch.nn.Module, count: int, seed: int = 0) -> np.ndarray:
    """`count` actor observations from rollouts of `actor` on the run's task (64 envs, randomization as trained)."""
    n = min(64, count)
    env = make_task(cfg.task, num_envs=n, seed=seed, **dict(cfg.env_overrides))
    try:
        obs, _ = env.reset(seed=seed)
        out = []
        while sum(len(o) for o in out) < count:
            out.append(obs.copy())
            with torch.no_grad():
                act = actor(torch.as_tensor(obs, dtype=torch.float32)).numpy().astype(np.float64)
            obs, *_ = env.step(act)
        return np.concatenate(out)[:count]
    finally:
        env.close()


def policy_contract(cfg: Any) -> PolicyContract:
    """The run's contract, checked against its robot as deploy will check it: export never writes a file that
    `footfall deploy` would refuse on the very robot it was trained on (ContractMismatchError, naming each problem)."""
    env = make_task(cfg.task, num_envs=1, seed=0, **dict(cfg.env_overrides))
    try:
        contract = env.contract(task=cfg.task, normalizer=NormalizerContract(folded=True), versions=_versions())
        contract.validate(env.robot, control_dt_s=env.cfg.control_dt_s)
        return contract
    finally:
        env.close()


def export_run(
    run: str | Path, out: str | Path, parity_samples: int = 10_000, seed: int = 0, evaluate: bool = True
) -> dict[str, Any]:
    """Write `out` (.onnx) from the run directory `run`. Returns a report: sizes, parity error, path.
    `evaluate`: run `footfall eval` on the training env first and store its figures in the file (metadata key
    `footfall_eval`), the reference the sim-to-sim gate compares against."""
    import onnx
    import onnxruntime as ort

    from footfall.training.evaluate import actor_from_checkpoint
    from footfall.training.train import run_config_from_dict

    run, out = Path(run), Path(out)
    ck = load_checkpoint(policy_path(run))
    cfg = run_config_from_dict(ck["config"])
    actor = actor_from_checkpoint(cfg, ck)
    contract = policy_contract(cfg)
    obs_size = contract.observation_size

    buf = io.BytesIO()
    torch.onnx.export(
        actor,
        (torch.zeros(1, obs_size),),
        buf,
        input_names=["obs"],
        output_names=["action"],
        dynamic_axes={"obs": {0: "batch"}, "action": {0: "batch"}},
        opset_version=OPSET,
        dynamo=False,
    )
    model = onnx.load_from_string(buf.getvalue())
    model.doc_string = f"footfall policy for {contract.robot.name} on {contract.task}"
    entry = model.metadata_props.add()
    entry.key, entry.value = CONTRACT_METADATA_KEY, contract.to_json()
    report: dict[str, Any] = {}
    if evaluate:
        from footfall.training.evaluate import evaluate_run

        report = evaluate_run(run, video=False)
        entry = model.metadata_props.add()
        entry.key = EVAL_METADATA_KEY
        entry.value = json.dumps({**report, "iteration": ck.get("iteration")})
    onnx.checker.check_model(model, full_check=True)
    data = model.SerializeToString()

    obs = record_observations(cfg, actor, parity_samples, seed=seed).astype(np.float32)
    with torch.no_grad():
        a_torch = actor(torch.as_tensor(obs)).numpy()
    sess = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    a_onnx = sess.run(None, {"obs": obs})[0]
    err = float(np.max(np.abs(a_torch - a_onnx)))
    if not err <= PARITY_TOL:
        raise ExportError(
            f"parity check failed: max |a_torch - a_onnx| = {err:.3g} > {PARITY_TOL:g} over {len(obs)} recorded "
            f"observations; {out} was not written. Please report this with the run's config.json."
        )

    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(data, out)
    return {
        "onnx": str(out),
        "task": contract.task,
        "robot": contract.robot.name,
        "observation_size": obs_size,
        "action_size": contract.action_size,
        "parity_samples": len(obs),
        "parity_max_abs_error": err,
        "opset": OPSET,
        "bytes": len(data),
        "training_eval": report,
    }
