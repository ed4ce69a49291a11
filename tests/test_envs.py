"""Environments: gymnasium API, determinism, itemized rewards, observation layout, robustness, bad config."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import footfall.envs
from footfall.envs import DomainRandomization, make_task, task_config
from footfall.robots.observations import TERMS, TermContext

IDS = sorted(footfall.envs.TASKS)


@pytest.mark.parametrize("env_id", IDS)
def test_check_env_passes(env_id: str) -> None:
    """gymnasium's env checker accepts every registered id."""
    env = gym.make(env_id)
    check_env(env.unwrapped, skip_render_check=True)
    env.close()


def test_ids_are_registered_on_import_in_the_footfall_namespace() -> None:
    assert all(i.startswith("footfall/") and re.search(r"-v\d+$", i) for i in IDS)
    assert {
        "footfall/Quadruped-Walk-Flat-v0",
        "footfall/Quadruped-Walk-Rough-v0",
        "footfall/Biped-Walk-Flat-v3",
        "footfall/Arm-Reach-v1",
    } <= set(gym.registry)


@pytest.mark.parametrize("env_id", IDS)
def test_seeded_resets_and_rollouts_are_deterministic(env_id: str) -> None:
    """Same seed, same actions: identical observations and rewards (randomization included)."""
    runs = []
    for _ in range(2):
        task = make_task(env_id, num_envs=4)
        obs, _ = task.reset(seed=7)
        actions = np.random.default_rng(0).uniform(-1, 1, (30, 4, task.action_size))
        trace = [obs]
        for a in actions:
            obs, rew, *_ = task.step(a)
            trace += [obs, rew[:, None]]
        runs.append(np.concatenate(trace, axis=1))
        task.close()
    np.testing.assert_array_equal(runs[0], runs[1])


@pytest.mark.parametrize("env_id", IDS)
def test_reward_equals_sum_of_info_terms_and_obs_size_matches_terms(env_id: str) -> None:
    task = make_task(env_id, num_envs=8, seed=0)
    obs, info = task.reset(seed=0)
    ctx = TermContext(task.default_pose, len(task.command_names), len(task.robot.feet))
    assert obs.shape[1] == sum(TERMS[t.name].size(ctx) * t.history for t in task.cfg.actor_obs)
    assert info["critic_obs"].shape[1] == task.critic_obs_size
    rng = np.random.default_rng(1)
    for _ in range(20):
        obs, rew, term, trunc, info = task.step(rng.uniform(-1, 1, (8, task.action_size)))
        np.testing.assert_allclose(rew, np.sum(list(info["reward_terms"].values()), axis=0), rtol=1e-12, atol=1e-12)
        assert set(info["reward_terms"]) == {n for n, _ in task.cfg.reward_weights}
    task.close()


@pytest.mark.parametrize("env_id", ["footfall/Quadruped-Walk-Rough-v0", "footfall/Biped-Walk-Flat-v3"])
def test_no_nan_in_ten_thousand_random_steps_with_all_randomization(env_id: str) -> None:
    """10k env steps (64 envs x 160 steps) of random actions with every randomization on: all finite."""
    task = make_task(env_id, num_envs=64, seed=3, episode_length_s=1.0)
    obs, info = task.reset(seed=3)
    rng = np.random.default_rng(3)
    episodes = 0
    for _ in range(160):
        obs, rew, term, trunc, info = task.step(rng.uniform(-3, 3, (64, task.action_size)))
        assert np.isfinite(obs).all() and np.isfinite(rew).all() and np.isfinite(info["critic_obs"]).all()
        episodes += int(np.sum(term | trunc))
    assert episodes >= 64 * 3  # truncation at 1 s: every env went through several episodes
    task.close()


def test_truncation_reports_timeouts_not_terminations() -> None:
    task = make_task("footfall/Arm-Reach-v1", num_envs=2, seed=0, episode_length_s=0.1)
    task.reset(seed=0)
    for _ in range(5):
        _, _, term, trunc, info = task.step(np.zeros((2, 7)))
    assert trunc.all() and not term.any()
    assert info["final_obs"].shape == (2, task.obs_size)
    task.close()


def test_actor_may_not_read_simulator_only_terms() -> None:
    from footfall.robots.observations import TermConfig

    cfg = task_config("footfall/Quadruped-Walk-Flat-v0")
    with pytest.raises(ValueError, match=r"\['base_lin_vel'\] are simulator-only.*estimator"):
        make_task(
            "footfall/Quadruped-Walk-Flat-v0", num_envs=1, actor_obs=cfg.actor_obs + (TermConfig("base_lin_vel"),)
        )


def test_reference_go1_runs_the_quadruped_task_unchanged(reference_go1_spec: Path) -> None:
    """The third-party Go1 builds and steps on the quadruped task through its spec file, no code change."""
    task = make_task("footfall/Quadruped-Walk-Flat-v0", num_envs=4, seed=0, robot=str(reference_go1_spec))
    obs, _ = task.reset(seed=0)
    for _ in range(50):
        obs, rew, *_ = task.step(np.zeros((4, 12)))
    assert np.isfinite(obs).all() and task.robot.name == "reference_go1"
    task.close()


# ---------------------------------------------------------------- bad config


def test_unknown_reward_term_names_valid_terms() -> None:
    with pytest.raises(ValueError, match=r"unknown reward term\(s\) \['speed'\]; valid terms: \[.*'track_lin_vel_xy'"):
        make_task("footfall/Quadruped-Walk-Flat-v0", num_envs=1, reward_weights=(("speed", 1.0),))


def test_range_with_lo_above_hi_names_the_field() -> None:
    with pytest.raises(ValueError, match=r"DomainRandomization.friction: range lo > hi"):
        DomainRandomization(friction=(1.2, 0.4))
    with pytest.raises(ValueError, match=r"VelocityTaskConfig.vx_range: lo > hi"):
        task_config("footfall/Quadruped-Walk-Flat-v0", vx_range=(1.0, -1.0))


def test_negative_latency_is_refused() -> None:
    with pytest.raises(ValueError, match=r"DomainRandomization.action_latency_s: must be >= 0"):
        DomainRandomization(action_latency_s=(-0.01, 0.0))


def test_a_retired_task_version_names_its_successor() -> None:
    with pytest.raises(ValueError, match="replaced by 'footfall/Arm-Reach-v1'"):
        task_config("footfall/Arm-Reach-v0")
    with pytest.raises(ValueError, match="replaced by 'footfall/Biped-Walk-Flat-v3'"):  # a v2 policy's checkpoint
        task_config("footfall/Biped-Walk-Flat-v2")


def test_observation_columns_skip_the_history_of_earlier_terms() -> None:
    """ObservationBuilder.columns: where a term's newest entry sits, after earlier terms' full histories. The biped's
    actor here keeps 3 joint-position readings, the critic 1: without noise their newest entries are equal, and the
    actor's older ones lag behind."""
    from footfall.envs.locomotion import ACTOR_OBS

    actor_obs = tuple(dataclasses.replace(t, history=3) if t.name == "joint_pos_rel" else t for t in ACTOR_OBS)
    task = make_task(
        "footfall/Biped-Walk-Flat-v3", num_envs=2, seed=0, actor_obs=actor_obs, randomization=DomainRandomization.off()
    )
    nj = task.robot.num_joints
    obs, info = task.reset(seed=0)
    for _ in range(5):
        obs, _, _, _, info = task.step(np.full((2, nj), 0.5))
    a, c = task.actor_obs.columns("joint_pos_rel"), task.critic_obs.columns("joint_pos_rel")
    assert a.stop - a.start == c.stop - c.start == nj
    np.testing.assert_array_equal(obs[:, a], info["critic_obs"][:, c])
    assert np.abs(obs[:, a.stop : a.stop + nj] - obs[:, a]).max() > 1e-3  # the previous reading differs
    g = task.actor_obs.columns("gait_clock")  # the term after the history: 2 * nj older readings in between
    assert g.start == a.stop + 2 * nj + nj + nj  # history, joint_vel, last_action
    with pytest.raises(ValueError, match="'accel' is not in this observation"):
        task.actor_obs.columns("accel")


def test_unknown_config_field_and_task_list_valid_choices() -> None:
    with pytest.raises(ValueError, match=r"has no field\(s\) \['num_legs'\]; valid fields"):
        task_config("footfall/Quadruped-Walk-Flat-v0", num_legs=4)
    with pytest.raises(ValueError, match=r"unknown task 'Go1-v0'; registered tasks"):
        task_config("Go1-v0")
    with pytest.raises(ValueError, match=r"not a whole number of go1's physics steps"):
        make_task("footfall/Quadruped-Walk-Flat-v0", num_envs=1, control_dt_s=0.021)


@pytest.mark.slow
def test_memory_for_1024_quadrupeds_stays_under_2_gib() -> None:
    """Peak resident memory of a process holding 1024 randomized quadrupeds and stepping them stays < 2 GiB."""
    import subprocess
    import sys

    code = (
        "import resource, numpy as np; from footfall.envs import make_task; "
        "t = make_task('footfall/Quadruped-Walk-Flat-v0', num_envs=1024, seed=0); t.reset(seed=0); "
        "[t.step(np.zeros((1024, 12))) for _ in range(20)]; "
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    )
    kib = int(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
    assert kib * 1024 < 2 * 2**30


def test_batched_rollout_matches_the_plain_mj_step_loop() -> None:
    """BatchedSim (mujoco.rollout on a thread pool) and SerialSim (mj_step in Python) give identical trajectories."""
    from footfall.envs.sim import SerialSim
    from footfall.envs.tasks import TASKS

    cls, _ = TASKS["footfall/Quadruped-Walk-Flat-v0"]
    serial_cls = type("SerialVelocityTask", (cls,), {"sim_class": SerialSim})
    cfg = task_config("footfall/Quadruped-Walk-Flat-v0")
    a, b = cls(cfg, 3, seed=1), serial_cls(cfg, 3, seed=1)
    oa, _ = a.reset(seed=1)
    ob, _ = b.reset(seed=1)
    actions = np.random.default_rng(2).uniform(-1, 1, (25, 3, 12))
    for act in actions:
        oa, ra, *_ = a.step(act)
        ob, rb, *_ = b.step(act)
    np.testing.assert_allclose(a.sim.state, b.sim.state, rtol=0, atol=1e-9)
    np.testing.assert_allclose(oa, ob, rtol=0, atol=1e-9)
    a.close()
    b.close()


def test_bench_env_reports_the_figures_it_promises() -> None:
    from footfall.benchmarks.env_throughput import run

    r = run(quick=True, num_envs=8)
    for key in ("env_steps_per_s", "raw_steps_per_s", "single_env_steps_per_s"):
        assert r[key] > 0


@pytest.mark.parametrize("env_id", ["footfall/Quadruped-Walk-Rough-v0", "footfall/Arm-Reach-v1"])
def test_snapshot_restore_continues_bit_for_bit(env_id: str) -> None:
    """Restoring a snapshot into a fresh task reproduces the original continuation exactly."""
    a = make_task(env_id, num_envs=4, seed=0, episode_length_s=0.5)
    a.reset(seed=0)
    rng = np.random.default_rng(0)
    for _ in range(13):
        a.step(rng.uniform(-1, 1, (4, a.action_size)))
    snap = a.get_state()
    b = make_task(env_id, num_envs=4, seed=99, episode_length_s=0.5)
    b.reset(seed=99)
    b.set_state(snap)
    acts = rng.uniform(-1, 1, (40, 4, a.action_size))
    for act in acts:
        oa, ra, ta, tra, _ = a.step(act)
        ob, rb, tb, trb, _ = b.step(act)
        np.testing.assert_array_equal(oa, ob)
        np.testing.assert_array_equal(ra, rb)
    a.close()
    b.close()


def test_reach_targets_are_reachable_within_an_episode_by_actions_in_range() -> None:
    """Steering the joint targets toward the configuration a target was sampled from, with actions in [-1, 1] (the
    delta action's speed limit), reaches every target within the episode (< 1 cm)."""
    task = make_task("footfall/Arm-Reach-v1", num_envs=16, seed=0)
    task.reset(seed=0)
    for _ in range(task.max_episode_steps - 1):
        task.step(np.clip((task.target_joint_pos - task.target) / task.cfg.action_scale, -1.0, 1.0))
    ee = task.sim.sensor_out[:, -1][:, task.layout.ee_pos]
    assert np.linalg.norm(ee - task.command, axis=-1).max() < 0.01
    task.close()


def test_delta_actions_move_the_joint_target_from_where_it_is() -> None:
    """joint_position_delta: target += scale x action per step, starting from the measured pose at reset; the
    offset type ignores where the target was."""
    task = make_task("footfall/Arm-Reach-v1", num_envs=2, seed=0)
    task.reset(seed=0)
    start = task.target.copy()
    np.testing.assert_allclose(start, task.sim.qpos[:, task.qadr])
    a = np.zeros((2, 7))
    a[:, 0] = 1.0
    task.step(a)
    task.step(a)
    np.testing.assert_allclose(task.target[:, 0], np.minimum(start[:, 0] + 2 * task.cfg.action_scale, task.pos_hi[0]))
    np.testing.assert_allclose(task.target[:, 1:], start[:, 1:])
    assert task.contract().robot.action_type == "joint_position_delta"
    task.close()
    offset = make_task("footfall/Arm-Reach-v1", num_envs=2, seed=0, action_type="joint_position_offset")
    offset.reset(seed=0)
    offset.step(a)
    offset.step(a)
    np.testing.assert_allclose(offset.target[:, 0], offset.default_pose[0] + offset.cfg.action_scale)
    offset.close()


def test_only_weighted_reward_terms_are_reported_and_gait_contact_can_be_weighted() -> None:
    """Weighting gait_contact adds it to info's terms (and the reward sum); unweighted terms are not computed."""
    weights = (("track_lin_vel_xy", 1.0), ("gait_contact", 0.5))
    task = make_task("footfall/Quadruped-Walk-Flat-v0", num_envs=4, seed=0, reward_weights=weights)
    task.reset(seed=0)
    _, rew, _, _, info = task.step(np.zeros((4, 12)))
    assert set(info["reward_terms"]) == {"track_lin_vel_xy", "gait_contact"}
    np.testing.assert_allclose(rew, info["reward_terms"]["track_lin_vel_xy"] + info["reward_terms"]["gait_contact"])
    task.close()


def test_ee_to_target_dir_magnifies_the_last_centimetres() -> None:
    from footfall.robots.observations import TERMS, RobotState

    target = np.array([[0.5, 0.0, 0.5]] * 3)
    ee = target - np.array([[0.3, 0.0, 0.0], [0.01, 0.0, 0.0], [0.0, 0.0, 0.002]])
    s = RobotState(joint_pos=np.zeros((3, 7)), joint_vel=np.zeros((3, 7)), command=target, ee_pos=ee)
    d = TERMS["ee_to_target_dir"].fn(s, None)
    np.testing.assert_allclose(d[0], [0.3 / 0.31, 0, 0])  # far: nearly a unit vector
    np.testing.assert_allclose(d[1], [0.5, 0, 0])  # 1 cm reads 0.5
    np.testing.assert_allclose(d[2], [0, 0, 0.002 / 0.012])  # points at the target, still visible at 2 mm


def test_reach_posture_term_prices_distance_from_the_default_pose() -> None:
    """The arm's posture penalty is 0 at the default pose and grows with the squared joint offsets, weighted and
    dt-scaled like every other term."""
    task = make_task("footfall/Arm-Reach-v1", num_envs=2, seed=0, reward_weights=(("posture", -1.0),))
    task.reset(seed=0)
    q = task.sim.qpos.copy()
    q[0, task.qadr] = task.default_pose
    q[1, task.qadr] = task.default_pose + np.array([0.3, 0, 0, 0, 0, 0, 0])
    state = task.sim.state.copy()
    state[:, task.sim.qpos_slice] = q
    state[:, task.sim.qvel_slice] = 0.0
    task.sim.state[:] = state
    task.target[:] = q[:, task.qadr]  # hold the pose
    _, rew, _, _, info = task.step(np.zeros((2, 7)))
    posture = info["reward_terms"]["posture"]
    np.testing.assert_allclose(posture[1], -(0.3**2) * task.cfg.control_dt_s, rtol=0.05)
    assert abs(posture[0]) < 0.05 * abs(posture[1])  # (encoder noise and one step's sag, not 0 exactly)
    task.close()


def test_feet_swing_height_follows_the_gait_schedule() -> None:
    """1 when the swing foot is at the reference arc and the stance foot is down; less when a swing foot drags;
    0 while standing is commanded."""
    from footfall.envs import rewards as R

    phase, offsets, moving = np.array([0.75, 0.75, 0.75]), np.array([0.0, 0.5]), np.ones(3)
    # phase 0.75: foot 0 is mid-swing (reference 0.08 m), foot 1 mid-stance (reference 0)
    heights = np.array([[0.08, 0.0], [0.0, 0.0], [0.08, 0.08]])
    r = R.feet_swing_height(heights, phase, offsets, moving, swing_height=0.08)
    np.testing.assert_allclose(r, [1.0, np.exp(-(0.08**2) / 0.005), np.exp(-(0.08**2) / 0.005)])
    assert not R.feet_swing_height(heights, phase, offsets, np.zeros(3), swing_height=0.08).any()


def test_biped_foot_height_is_zero_standing_and_rises_when_a_foot_lifts() -> None:
    task = make_task("footfall/Biped-Walk-Flat-v3", num_envs=1, seed=0, randomization=DomainRandomization.off())
    task.reset(seed=0)
    task.step(np.zeros((1, task.robot.num_joints)))
    s = task._robot_state(task.sim.sensor_out, privileged=True)
    np.testing.assert_allclose(task._foot_height(s), 0.0, atol=0.01)  # standing in the home pose
    s.extras["foot_pos"] = s.extras["foot_pos"] + np.array([0.0, 0.0, 0.05])
    np.testing.assert_allclose(task._foot_height(s), 0.05, atol=0.01)
    task.close()


def test_fine_velocity_term_is_the_same_error_under_a_narrower_kernel() -> None:
    """track_lin_vel_xy_fine = exp(-e^2 / 0.02) on the error that track_lin_vel_xy puts under exp(-e^2 / 0.25), so
    fine = wide ** (0.25 / 0.02) for any velocity; and it is one of the biped's weighted terms."""
    weights = (("track_lin_vel_xy", 1.0), ("track_lin_vel_xy_fine", 1.0))
    task = make_task("footfall/Biped-Walk-Flat-v3", num_envs=4, seed=0, reward_weights=weights)
    task.reset(seed=0)
    task.command[:] = [[0.1, 0.0, 0.0], [0.3, 0.1, 0.0], [-0.2, 0.0, 0.0], [0.0, 0.0, 0.0]]
    dt = task.cfg.control_dt_s
    for _ in range(3):
        _, _, _, _, info = task.step(np.zeros((4, task.action_size)))
        wide, fine = info["reward_terms"]["track_lin_vel_xy"] / dt, info["reward_terms"]["track_lin_vel_xy_fine"] / dt
        np.testing.assert_allclose(fine, wide ** (0.25 / 0.02), rtol=1e-9)
        assert np.all(fine <= wide) and np.any(fine < 0.99 * wide)
    task.close()
    assert "track_lin_vel_xy_fine" in dict(task_config("footfall/Biped-Walk-Flat-v3").reward_weights)
