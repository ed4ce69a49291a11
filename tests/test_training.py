"""Training: the math against hand-computed cases, reproducibility, checkpoints that survive a kill."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from footfall.training.networks import EmpiricalNormalizer
from footfall.training.ppo import PPOConfig
from footfall.training.runner import CHECKPOINT, OnPolicyRunner, RunConfig, atomic_save, load_checkpoint
from footfall.training.sac import SACConfig, soft_q_target
from footfall.training.storage import gae
from footfall.training.train import make_runner, train

TINY_PPO = PPOConfig(num_steps=8, learning_epochs=2, num_minibatches=2, actor_hidden=(32,), critic_hidden=(32,))


def tiny(task: str = "footfall/Quadruped-Walk-Flat-v0", **kw) -> RunConfig:
    return RunConfig(
        task=task,
        num_envs=2,
        max_iterations=3,
        checkpoint_every=1,
        torch_threads=1,
        ppo=TINY_PPO,
        sac=SACConfig(hidden=(32,), batch_size=16, learning_starts=20, steps_per_iteration=10, utd_ratio=0.5),
        **kw,
    )


def test_gae_matches_a_hand_computed_case() -> None:
    """Two steps, two envs, a termination in env 1 at t=0; gamma=0.9, lambda=0.8."""
    r = torch.tensor([[1.0, 2.0], [0.5, 1.0]])
    v = torch.tensor([[0.2, 0.3], [0.4, 0.5]])
    d = torch.tensor([[0.0, 1.0], [0.0, 0.0]])
    last = torch.tensor([1.0, 2.0])
    adv, ret = gae(r, v, d, last, gamma=0.9, lam=0.8)
    # env 0: delta1 = 0.5 + 0.9*1.0 - 0.4 = 1.0; delta0 = 1 + 0.9*0.4 - 0.2 = 1.16; A0 = 1.16 + 0.72*1.0 = 1.88
    # env 1: delta1 = 1 + 0.9*2 - 0.5 = 2.3; delta0 = 2 + 0 - 0.3 = 1.7 (done cuts the bootstrap); A0 = 1.7
    torch.testing.assert_close(adv, torch.tensor([[1.88, 1.7], [1.0, 2.3]]))
    torch.testing.assert_close(ret, adv + v)


def test_soft_q_target_matches_the_formula() -> None:
    """y = r + gamma (1 - done) (min(Q1, Q2) - alpha log pi); terminated rows do not bootstrap."""
    y = soft_q_target(
        torch.tensor([1.0, 1.0]),
        torch.tensor([0.0, 1.0]),
        torch.tensor([3.0, 3.0]),
        torch.tensor([2.0, 5.0]),
        torch.tensor([-1.0, -1.0]),
        alpha=0.5,
        gamma=0.9,
    )
    torch.testing.assert_close(y, torch.tensor([1 + 0.9 * (2.0 + 0.5), 1.0]))


def test_sac_update_steps_the_actor_with_the_critic_frozen_and_then_trains_the_critic() -> None:
    """The actor's step matches a plain autograd step through the critic; the critic's weights come out trainable."""
    import copy

    from footfall.training.sac import SAC

    torch.manual_seed(0)
    cfg = SACConfig(hidden=(16,), batch_size=8)
    sac = SAC(5, 2, cfg)
    batch = [torch.randn(8, 5), torch.rand(8, 2) * 2 - 1, torch.randn(8), torch.randn(8, 5), torch.zeros(8)]
    ref = copy.deepcopy(sac)
    with torch.random.fork_rng():
        sac.update(batch)
    # the same update by hand, critic weights left trainable in the actor's backward pass
    obs, act, rew, next_obs, done = batch
    with torch.no_grad():
        na, nlogp = ref.actor.sample(next_obs)
        y = soft_q_target(rew, done, *ref.critic_target(next_obs, na), nlogp, ref.alpha, cfg.gamma)
    q1, q2 = ref.critic(obs, act)
    ref.critic_opt.zero_grad()
    (torch.nn.functional.mse_loss(q1, y) + torch.nn.functional.mse_loss(q2, y)).backward()
    ref.critic_opt.step()
    a, logp = ref.actor.sample(obs)
    ref.actor_opt.zero_grad()
    (ref.alpha * logp - torch.min(*ref.critic(obs, a))).mean().backward()
    ref.actor_opt.step()
    for p, q in zip(sac.actor.net.parameters(), ref.actor.net.parameters()):
        torch.testing.assert_close(p, q)
    assert all(p.requires_grad for p in sac.q_params)
    before = [p.detach().clone() for p in sac.q_params]
    sac.update(batch)
    assert any(not torch.equal(b, p) for b, p in zip(before, sac.q_params))


def test_ppo_clipped_surrogate_ignores_ratios_beyond_the_clip() -> None:
    """The clipped objective has zero gradient once the ratio leaves [1 - eps, 1 + eps] in the advantage's direction."""
    logp_new = torch.tensor([0.5], requires_grad=True)  # ratio e^0.5 = 1.65 > 1.2
    adv = torch.tensor([1.0])
    ratio = torch.exp(logp_new - 0.0)
    surrogate = -torch.min(ratio * adv, torch.clamp(ratio, 0.8, 1.2) * adv).mean()
    surrogate.backward()
    assert logp_new.grad.item() == 0.0


def test_normalizer_tracks_mean_and_variance_across_batches() -> None:
    x = torch.randn(1000, 3) * torch.tensor([1.0, 2.0, 3.0]) + torch.tensor([5.0, -1.0, 0.0])
    n = EmpiricalNormalizer(3)
    for chunk in x.split(137):
        n.update(chunk)
    torch.testing.assert_close(n.mean, x.mean(0), atol=1e-4, rtol=0)
    torch.testing.assert_close(n.var, x.var(0, unbiased=False), atol=1e-3, rtol=1e-4)


@pytest.mark.parametrize("task", ["footfall/Quadruped-Walk-Flat-v0", "footfall/Arm-Reach-v1"])
def test_one_training_iteration_on_two_envs(task: str, tmp_path: Path) -> None:
    algo = "sac" if "Reach" in task else "ppo"
    summary = train(tiny(task, algo=algo), tmp_path / "run", progress=False)
    assert summary["iteration"] == 3
    assert (tmp_path / "run" / CHECKPOINT).is_file() and (tmp_path / "run" / "config.json").is_file()
    ck = load_checkpoint(tmp_path / "run")
    assert ck["iteration"] == 3 and len(ck["history"]) == 3


def _policy_params(run: OnPolicyRunner) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in run.policy.parameters()])


@pytest.mark.parametrize("algo", ["ppo", "sac"])
def test_same_seed_and_config_give_the_same_first_iterations(algo: str, tmp_path: Path) -> None:
    task = "footfall/Arm-Reach-v1" if algo == "sac" else "footfall/Quadruped-Walk-Flat-v0"
    params = []
    for name in ("a", "b"):
        r = make_runner(tiny(task, algo=algo), tmp_path / name, log=False)
        r.train(progress=False)
        params.append(_policy_params(r))
        r.close()
    torch.testing.assert_close(params[0], params[1], rtol=0, atol=0)


@pytest.mark.parametrize("algo", ["ppo", "sac"])
def test_resume_continues_bit_for_bit(algo: str, tmp_path: Path) -> None:
    """Training 2 iterations, stopping, resuming for 2 more equals training 4 straight."""
    task = "footfall/Arm-Reach-v1" if algo == "sac" else "footfall/Quadruped-Walk-Flat-v0"
    straight = make_runner(dataclasses.replace(tiny(task, algo=algo), max_iterations=4), tmp_path / "s", log=False)
    straight.train(progress=False)
    first = make_runner(dataclasses.replace(tiny(task, algo=algo), max_iterations=2), tmp_path / "r", log=False)
    first.train(progress=False)
    first.close()
    second = make_runner(dataclasses.replace(tiny(task, algo=algo), max_iterations=4), tmp_path / "r", log=False)
    second.load()
    second.train(progress=False)
    torch.testing.assert_close(_policy_params(straight), _policy_params(second), rtol=0, atol=0)
    assert second.env_steps == straight.env_steps
    straight.close()
    second.close()


def test_atomic_save_leaves_the_old_file_when_interrupted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "ck.pt"
    atomic_save({"a": 1}, path)

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        atomic_save({"a": 2}, path)
    assert torch.load(path)["a"] == 1


def test_sigkill_mid_training_loses_at_most_one_interval(tmp_path: Path) -> None:
    """A run killed with SIGKILL leaves a loadable checkpoint; --resume continues from it."""
    out = tmp_path / "run"
    base = [sys.executable, "-m", "footfall.robots.cli", "train", "quadruped-flat", "--out", str(out)]
    small = [
        "num_envs=4",
        "checkpoint_every=2",
        "max_iterations=10000",
        "ppo.num_steps=4",
        "ppo.actor_hidden=(16,)",
        "ppo.critic_hidden=(16,)",
    ]
    cmd = base + [arg for pair in small for arg in ("--set", pair)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline:
        if (out / CHECKPOINT).is_file() and load_checkpoint(out)["iteration"] >= 4:
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    ck = load_checkpoint(out)  # loads: not corrupt
    killed_at = ck["iteration"]
    assert killed_at >= 4 and killed_at % 2 == 0
    json.loads((out / "history.json").read_text())
    resume = base + ["--resume", "--set", f"max_iterations={killed_at + 2}"]
    res = subprocess.run(resume, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert load_checkpoint(out)["iteration"] == killed_at + 2


def test_training_into_an_existing_run_without_resume_is_refused(tmp_path: Path) -> None:
    train(tiny(), tmp_path / "run", progress=False)
    with pytest.raises(ValueError, match="already holds a run.*--resume"):
        train(tiny(), tmp_path / "run", progress=False)


def test_eval_reports_the_promised_keys(tmp_path: Path) -> None:
    from footfall.training.evaluate import evaluate_run

    train(tiny(), tmp_path / "run", progress=False)
    r = evaluate_run(tmp_path / "run", episodes=2, video=False)
    assert {"lin_vel_rmse", "fall_rate", "cost_of_transport"} <= set(r)
    assert 0 <= r["fall_rate"] <= 1


def test_policy_snapshots_evaluate_like_the_run(tmp_path: Path) -> None:
    """A snapshot taken by the per-iteration callback loads as a checkpoint and evaluates."""
    from footfall.benchmarks.train_bench import eval_ours, train_ours

    cfg = dataclasses.replace(tiny(), max_iterations=2)
    snaps = train_ours(cfg, tmp_path / "run", snapshot_every_s=1e-9)
    assert len(snaps) == 2 and all(p.exists() for p in snaps)
    curve = eval_ours("quadruped-flat", snaps, episodes=2)
    assert [c["iteration"] for c in curve] == [1, 2]
    assert all({"elapsed_s", "lin_vel_rmse", "fall_rate"} <= set(c) for c in curve)


def test_bench_snapshots_each_new_best_as_it_is_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With selection on, the benchmark snapshots a policy when a check makes it the best (iterations 1 and 2 here,
    not 3 or 4, which score lower), not only on its clock, plus the run's end."""
    import footfall.training.evaluate as ev
    from footfall.benchmarks.train_bench import train_ours

    scores = iter([0.3, 0.9, 0.5, 0.2])

    def fake_check(*a, **k):
        s = next(scores)
        return (s,), {"walk_success_rate": s}

    monkeypatch.setattr(ev, "selection_check", fake_check)
    cfg = dataclasses.replace(tiny(), max_iterations=4, select_every=1, select_from=1)
    snaps = train_ours(cfg, tmp_path / "run", snapshot_every_s=1e9)
    assert [p.name[:8] for p in snaps] == ["it000001", "it000002", "it000004"]
    assert [load_checkpoint(p)["selection"]["iteration"] for p in snaps] == [1, 2, 2]


def test_selection_keeps_the_best_checked_policy_and_the_run_stands_for_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Checks at iterations 2, 3, 4 scoring 0.3, 0.9, 0.5: best.pt holds iteration 3's policy, and eval, export and
    the benchmark's snapshots use it; the checks' time counts against the budget; resume keeps the best."""
    import footfall.training.evaluate as ev
    from footfall.training.runner import BEST, policy_path

    scores = iter([0.3, 0.9, 0.5])
    seen: dict[int, dict[str, torch.Tensor]] = {}

    def fake_check(task, policy, episodes, seed, env_overrides=None):
        assert (episodes, seed) == (5, 4242)
        seen[runner.iteration] = {k: v.clone() for k, v in runner.policy.state_dict().items()}
        time.sleep(0.05)
        s = next(scores)
        return (s,), {"walk_success_rate": s, "episodes": episodes}

    monkeypatch.setattr(ev, "selection_check", fake_check)
    cfg = dataclasses.replace(
        tiny(), max_iterations=4, select_every=1, select_from=2, select_episodes=5, select_seed=4242
    )
    runner = make_runner(cfg, tmp_path / "run", log=False)
    runner.train(progress=False)
    assert sorted(seen) == [2, 3, 4]
    assert runner.best == {"iteration": 3, "score": [0.9], "walk_success_rate": 0.9}
    assert runner.elapsed_s >= 3 * 0.05
    assert [h.get("select/walk_success_rate") for h in runner.history] == [None, 0.3, 0.9, 0.5]
    best = load_checkpoint(tmp_path / "run" / BEST)
    assert best["iteration"] == 3 and best["selection"]["iteration"] == 3
    torch.testing.assert_close(best["policy"], seen[3], rtol=0, atol=0)
    assert not all(torch.equal(seen[3][k], seen[4][k]) for k in seen[3])  # training moved on after the best
    assert policy_path(tmp_path / "run") == tmp_path / "run" / BEST
    assert ev.load_policy(tmp_path / "run")[2]["iteration"] == 3
    snap = runner.selected_snapshot()  # what `footfall bench train` records now: the best policy, this moment's clock
    assert snap["iteration"] == 4 and snap["selection"]["iteration"] == 3
    assert all(torch.equal(snap["policy"][k], best["policy"][k]) for k in best["policy"])
    runner.close()
    again = make_runner(cfg, tmp_path / "run", log=False)
    again.load()
    assert again.best == runner.best
    again.close()
    # A check after the last checkpoint wrote a better best.pt, then the run died: resuming keeps the file's best.
    atomic_save({**best, "selection": {**best["selection"], "iteration": 5, "score": [1.0]}}, tmp_path / "run" / BEST)
    again = make_runner(cfg, tmp_path / "run", log=False)
    again.load()
    assert again.best["iteration"] == 5 and again.best["score"] == [1.0]
    again.close()
    (tmp_path / "run" / "checkpoint.pt").unlink()  # best.pt alone still marks the directory as a run's
    with pytest.raises(ValueError, match="already holds a run"):
        train(cfg, tmp_path / "run", progress=False)


def test_the_wall_clock_budget_ends_the_run_inside_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`minutes` is a bound: the run stops before an iteration that would overrun it (the next is taken to be as long
    as the last), and says it was not interrupted. On a fake clock, 0.15 s iterations in a 1 s budget: 6 of them
    (0.9 s); a seventh would end at 1.05 s."""
    import types

    import footfall.training.runner as runner_module

    clock = [0.0]
    monkeypatch.setattr(runner_module, "time", types.SimpleNamespace(perf_counter=lambda: clock[0]))
    cfg = dataclasses.replace(tiny(), max_iterations=1000, minutes=1.0 / 60)
    runner = make_runner(cfg, tmp_path / "run", log=False)

    def iteration() -> dict[str, float]:
        clock[0] += 0.15
        return {}

    monkeypatch.setattr(runner, "iterate", iteration)
    runner.train(progress=False)
    assert runner.iteration == 6 and runner.elapsed_s == pytest.approx(0.9)
    assert not runner.interrupted
    runner.close()
    again = make_runner(cfg, tmp_path / "run", log=False)  # resumed, it knows the last iteration's length: no 7th
    again.load()
    monkeypatch.setattr(again, "iterate", iteration)
    again.train(progress=False)
    assert again.iteration == 6
    again.close()


def test_the_final_policy_is_checked_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Checks every 2 iterations over 3: iteration 2, then the last (3), which wins here; not after an interrupt."""
    import footfall.training.evaluate as ev

    checked: list[int] = []

    def fake_check(*a, **k):
        checked.append(runner.iteration)
        return (len(checked) / 10,), {"walk_success_rate": len(checked) / 10}

    monkeypatch.setattr(ev, "selection_check", fake_check)
    cfg = dataclasses.replace(tiny(), max_iterations=3, select_every=2, select_from=1)
    runner = make_runner(cfg, tmp_path / "run", log=False)
    runner.train(progress=False)
    assert checked == [2, 3] and runner.best["iteration"] == 3
    assert load_checkpoint(tmp_path / "run" / "best.pt")["iteration"] == 3
    runner.close()
    checked.clear()
    runner = make_runner(dataclasses.replace(cfg, max_iterations=5), tmp_path / "stopped", log=False)
    runner.callbacks.append(lambda r, s: setattr(r, "_stop", r.iteration == 3))  # as Ctrl-C / SIGTERM does
    runner.train(progress=False)
    assert checked == [2] and runner.iteration == 3
    runner.close()


def test_selection_checks_do_not_change_what_training_learns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same seed trains the same parameters with checks after every iteration as without them."""
    import footfall.training.evaluate as ev

    monkeypatch.setattr(ev, "selection_check", lambda *a, **k: ((0.0,), {"walk_success_rate": 0.0}))
    params = []
    for every in (0, 1):
        cfg = dataclasses.replace(tiny(), max_iterations=3, select_every=every, select_from=1)
        r = make_runner(cfg, tmp_path / f"run{every}", log=False)
        r.train(progress=False)
        params.append(_policy_params(r))
        r.close()
    assert (tmp_path / "run1" / "best.pt").is_file() and not (tmp_path / "run0" / "best.pt").exists()
    torch.testing.assert_close(params[0], params[1], rtol=0, atol=0)


@pytest.mark.parametrize("task", ["footfall/Quadruped-Walk-Flat-v0", "footfall/Arm-Reach-v1"])
def test_selection_check_scores_the_robots_bar(task: str) -> None:
    """A policy that holds still: the quadruped's score is (falls within 5%, -RMSE), the arm's -reach error."""
    import numpy as np

    from footfall.envs import make_task
    from footfall.training.evaluate import selection_check
    from footfall.training.presets import PRESETS

    act = make_task(task, num_envs=1).action_size
    score, r = selection_check(task, lambda obs: np.zeros((obs.shape[0], act)), episodes=2, seed=3)
    if "Arm" in task:
        assert score == (-r["reach_error_m"],) and r["reach_error_m"] > 0
    else:
        assert score == (-float(r["fall_rate"] > 0.05), -r["lin_vel_rmse"]) and r["lin_vel_rmse"] > 0.1
    assert PRESETS["biped-flat"].select_every > 0  # the biped preset selects; the others keep their last policy
    assert PRESETS["quadruped-flat"].select_every == 0


def test_walking_evaluation_holds_the_command_and_scores_speed() -> None:
    """A policy that stands still never walks at 0.5 m/s; the fixed command is held for the whole episode."""
    import numpy as np

    from footfall.training.evaluate import evaluate_legged

    r = evaluate_legged(
        "footfall/Quadruped-Walk-Flat-v0",
        lambda obs: np.zeros((obs.shape[0], 12)),
        episodes=2,
        episode_s=2.0,
        fixed_command=(0.5, 0.0, 0.0),
    )
    assert r["walk_success_rate"] == 0.0
    assert abs(r["mean_forward_speed"]) < 0.1
    assert r["command"] == [0.5, 0.0, 0.0]


def test_evaluation_with_nothing_to_measure_writes_null_not_nan() -> None:
    """When every episode falls at once there is no RMSE or cost of transport: the figures are None (JSON null, which
    strict parsers accept, where NaN is not JSON), the selection ranks the policy last, and the bar fails."""
    import json

    import numpy as np

    from footfall.benchmarks.train_bench import passes
    from footfall.training.evaluate import selection_check

    task = "footfall/Quadruped-Walk-Flat-v0"
    zero = lambda obs: np.zeros((obs.shape[0], 12))  # noqa: E731
    # a base-height limit above the standing height ends every episode on its first step
    score, r = selection_check(task, zero, episodes=2, seed=0, env_overrides={"terminate_height_frac": 5.0})
    assert r["fall_rate"] == 1.0
    assert r["lin_vel_rmse"] is None and r["cost_of_transport"] is None
    json.loads(json.dumps(r, allow_nan=False))
    assert score == (-1.0, -float("inf"))
    assert not passes("quadruped-flat", r)


def test_sb3_sees_our_task_through_its_vec_env_interface() -> None:
    """The SB3 reference steps the same task: terminal observations and time-limit truncation are passed the way
    SB3 expects them, and its env checker accepts the adapter."""
    pytest.importorskip("stable_baselines3")
    import numpy as np

    from footfall.benchmarks.train_bench import _sb3_vec_env

    venv = _sb3_vec_env("footfall/Quadruped-Walk-Flat-v0", 3, 0, {"episode_length_s": 0.1})
    obs = venv.reset()
    assert obs.shape == (3, venv.core.obs_size) and obs.dtype == np.float32
    assert venv.action_space.high[0] == venv.core.cfg.action_clip
    done_seen = False
    for _ in range(6):
        obs, rew, done, infos = venv.step(np.zeros((3, venv.core.action_size), np.float32))
        assert rew.shape == (3,) and len(infos) == 3
        for i in np.flatnonzero(done):
            done_seen = True
            assert infos[i]["terminal_observation"].shape == obs[i].shape
            assert infos[i]["TimeLimit.truncated"] is True  # 0.1 s episodes end by time, not by a fall
    assert done_seen
    venv.close()


def test_symmetric_actor_trains_and_evaluates_from_its_checkpoint(tmp_path: Path) -> None:
    """ppo.symmetric_actor: the run trains, its checkpoint carries the mirror, and evaluation rebuilds it."""
    from footfall.training.evaluate import actor_from_checkpoint, evaluate_run

    cfg = dataclasses.replace(tiny(), ppo=dataclasses.replace(TINY_PPO, symmetric_actor=True))
    train(cfg, tmp_path / "run", progress=False)
    ck = load_checkpoint(tmp_path / "run")
    assert "mirror.obs_perm" in ck["policy"]
    actor = actor_from_checkpoint(cfg, ck)
    assert actor.mirror is not None and not torch.equal(actor.mirror.obs_perm, torch.arange(len(actor.mirror.obs_perm)))
    r = evaluate_run(tmp_path / "run", episodes=2, video=False)
    assert 0 <= r["fall_rate"] <= 1


def test_velocity_estimator_learns_its_target_and_the_policy_gradient_leaves_it_alone(tmp_path: Path) -> None:
    """ppo.estimate_term: PPO regresses the estimator on the critic's privileged column; the surrogate alone puts no
    gradient on the estimator (its estimate enters the policy detached)."""
    from footfall.training.networks import EstimatingActor

    cfg = dataclasses.replace(
        tiny("footfall/Biped-Walk-Flat-v3"),
        ppo=dataclasses.replace(TINY_PPO, estimate_term="base_lin_vel", estimator_hidden=(32,), symmetric_actor=True),
    )
    run = make_runner(cfg, tmp_path / "run", log=False)
    pol = run.policy
    assert isinstance(pol.actor, EstimatingActor)
    cols = run.env.critic_obs.columns("base_lin_vel")
    assert cols.stop - cols.start == 3 and run.alg.estimate_columns == cols

    run.collect()
    obs = run.storage.obs.flatten(0, 1)
    target = run.storage.critic_obs.flatten(0, 1)[:, cols]

    def est_error() -> float:
        with torch.no_grad():
            return float((pol.actor.estimate(pol.actor_norm(obs)) - target).square().mean())

    pol.zero_grad()
    pol.distribution(obs).mean.square().sum().backward()  # any function of the policy's output
    assert all(p.grad is None or not p.grad.any() for p in pol.actor.estimator.parameters())
    assert any(p.grad is not None and p.grad.any() for p in pol.actor.net.parameters())

    before = est_error()
    for _ in range(5):
        stats = run.alg.update(run.storage)
    assert stats["loss/estimator"] > 0
    assert est_error() < 0.7 * before


def test_estimating_actor_exports_and_evaluates_from_its_checkpoint(tmp_path: Path) -> None:
    """A run with a velocity estimator: its checkpoint rebuilds the same actor, and the ONNX file gives its actions."""
    import numpy as np

    from footfall.training.evaluate import actor_from_checkpoint
    from footfall.training.export import export_run

    cfg = dataclasses.replace(
        tiny("footfall/Biped-Walk-Flat-v3"),
        ppo=dataclasses.replace(TINY_PPO, estimate_term="base_lin_vel", estimator_hidden=(16, 8)),
    )
    train(cfg, tmp_path / "run", progress=False)
    ck = load_checkpoint(tmp_path / "run")
    assert "actor.estimator.4.weight" in ck["policy"]
    actor = actor_from_checkpoint(cfg, ck)
    obs = torch.randn(64, ck["policy"]["actor_norm.mean"].shape[0])
    run = make_runner(cfg, tmp_path / "run2", log=False)
    run.load(tmp_path / "run" / CHECKPOINT)
    with torch.no_grad():
        torch.testing.assert_close(actor(obs), run.policy.act_deterministic(obs))
    summary = export_run(tmp_path / "run", tmp_path / "h1.onnx", parity_samples=500, evaluate=False)
    assert summary["parity_max_abs_error"] <= 1e-5
    import onnxruntime as ort

    sess = ort.InferenceSession(str(tmp_path / "h1.onnx"))
    out = sess.run(None, {sess.get_inputs()[0].name: obs.numpy()})[0]
    np.testing.assert_allclose(out, actor(obs).detach().numpy(), atol=1e-5)


def test_learning_curve_plots_the_selection_checks(tmp_path: Path) -> None:
    """The plot writes a PNG atomically, with the checks' panel when the history has them; no history, no plot."""
    pytest.importorskip("matplotlib")
    from footfall.training.plots import plot_learning_curve

    history = [
        {
            "iteration": i,
            "time/elapsed_s": 60.0 * i,
            "episode/return": float(i),
            **({"select/walk_success_rate": i / 10} if i % 2 == 0 else {}),
        }
        for i in range(1, 9)
    ]
    path = plot_learning_curve(
        history, tmp_path / "lc.png", title="t", best_iteration=6, check_metric="walk_success_rate"
    )
    png = path.read_bytes()
    assert path == tmp_path / "lc.png" and png[:8] == b"\x89PNG\r\n\x1a\n"
    assert int.from_bytes(png[16:20], "big") == round(2 * 4.5 * 110)  # two panels (return, checks) at 110 dpi
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lc.png"]  # no temporary file left behind
    assert plot_learning_curve([], tmp_path / "none.png") is None
