"""Each randomization changes what it claims to change, and nothing when switched off."""

from __future__ import annotations

import mujoco
import numpy as np
import pytest

from footfall.envs import DomainRandomization, TerrainConfig, make_task
from footfall.envs.randomization import ModelRandomizer, sample
from footfall.envs.terrain import Terrain, update_levels
from footfall.robots import load_robot

FLAT = "footfall/Quadruped-Walk-Flat-v0"


@pytest.fixture(scope="module")
def go1():
    robot = load_robot("go1")
    model = robot.build_model()
    rnd = ModelRandomizer(model, model.body(robot.base_body).id, robot.actuator_ids(model), robot.joint_dof_adr(model))
    return robot, model, rnd


def _neutral(nj: int) -> dict[str, np.ndarray]:
    return sample(DomainRandomization.off(), np.random.default_rng(0), 1, nj, 0.004, 5)


# (parameter, value, model field, expected as a function of the nominal model)
CASES = [
    ("friction", 0.3, lambda m, r: m.geom_friction[:, 0], lambda n, r: np.full(n.ngeom, 0.3)),
    ("added_base_mass_kg", 1.5, lambda m, r: m.body_mass[r.base_body], lambda n, r: n.body_mass[r.base_body] + 1.5),
    ("link_mass_scale", 1.1, lambda m, r: m.body_mass[2:], lambda n, r: n.body_mass[2:] * 1.1),
    ("kp_scale", 1.2, lambda m, r: m.actuator_gainprm[r.act, 0], lambda n, r: n.actuator_gainprm[r.act, 0] * 1.2),
    ("kd_scale", 0.8, lambda m, r: m.actuator_biasprm[r.act, 2], lambda n, r: n.actuator_biasprm[r.act, 2] * 0.8),
    ("motor_strength", 0.9, lambda m, r: m.actuator_forcerange[r.act], lambda n, r: n.actuator_forcerange[r.act] * 0.9),
    ("joint_damping_scale", 1.2, lambda m, r: m.dof_damping[r.dof], lambda n, r: n.dof_damping[r.dof] * 1.2),
    ("armature_scale", 0.8, lambda m, r: m.dof_armature[r.dof], lambda n, r: n.dof_armature[r.dof] * 0.8),
    ("frictionloss_scale", 1.5, lambda m, r: m.dof_frictionloss[r.dof], lambda n, r: n.dof_frictionloss[r.dof] * 1.5),
]


@pytest.mark.parametrize("name,value,field,expected", CASES, ids=[c[0] for c in CASES])
def test_model_randomization_writes_its_field(go1, name, value, field, expected) -> None:
    """Applying one sampled parameter changes exactly the model field it names, by the sampled amount."""
    robot, nominal, rnd = go1
    model = robot.build_model()
    p = _neutral(robot.num_joints)
    rnd.apply(model, p, 0)
    before = np.array(field(model, rnd), copy=True)
    np.testing.assert_allclose(before, field(nominal, rnd))  # neutral parameters leave the model nominal
    p[name] = np.array([value])
    rnd.apply(model, p, 0)
    np.testing.assert_allclose(field(model, rnd), expected(nominal, rnd))
    assert not np.allclose(field(model, rnd), before)


def test_base_com_offset_moves_the_base_com(go1) -> None:
    robot, nominal, rnd = go1
    model = robot.build_model()
    p = _neutral(robot.num_joints)
    p["base_com_offset_m"] = np.array([[0.01, -0.02, 0.03]])
    rnd.apply(model, p, 0)
    np.testing.assert_allclose(model.body_ipos[rnd.base_body], nominal.body_ipos[rnd.base_body] + [0.01, -0.02, 0.03])


def test_sampling_is_seeded_and_within_ranges() -> None:
    cfg = DomainRandomization()
    a = sample(cfg, np.random.default_rng(5), 100, 12, 0.004, 5)
    b = sample(cfg, np.random.default_rng(5), 100, 12, 0.004, 5)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    assert a["friction"].min() >= 0.4 and a["friction"].max() <= 1.25
    assert set(np.unique(a["action_latency_steps"])) <= set(range(0, 6)) and a["action_latency_steps"].max() >= 4


def _task(**dr):
    cfg = DomainRandomization(**dr)
    return make_task(FLAT, num_envs=4, seed=0, randomization=cfg)


def test_action_latency_applies_the_new_target_late() -> None:
    """With a latency of L physics steps, the first L substeps still get the previous joint target."""
    task = _task()
    task.reset(seed=0)
    task.params["action_latency_steps"][:] = [0, 1, 3, 5]
    prev = task.target.copy()
    task.step(np.ones((4, 12)))
    ctrl = task.control[:, :, task.act_ids]  # (N, decimation, nj)
    for row, lat in enumerate([0, 1, 3, 5]):
        np.testing.assert_array_equal(ctrl[row, :lat], np.broadcast_to(prev[row], (lat, 12)))
        np.testing.assert_array_equal(ctrl[row, lat:], np.broadcast_to(task.target[row], (5 - lat, 12)))
    task.close()


def test_observation_latency_reads_older_sensor_samples() -> None:
    """With observation latency L, joint positions come from the sensor sample L physics steps old."""
    task = _task(noise=(), encoder_offset_rad=(0.0, 0.0))
    task.reset(seed=0)
    task.step(np.zeros((4, 12)))
    task.params["obs_latency_steps"][:] = [0, 2, 4, 5]
    task.step(np.ones((4, 12)) * 0.5)
    s = task._robot_state(task.sim.sensor_out, privileged=False)
    lay = task.layout
    for row, lat in enumerate([0, 2, 4, 5]):
        idx = task.decimation - 1 - lat
        src = task.sim.sensor_out[row, idx] if idx >= 0 else task.prev_sensor[row, idx + task.decimation]
        np.testing.assert_array_equal(s.joint_pos[row], src[lay.joint_pos])
    assert not np.allclose(s.joint_pos[0], s.joint_pos[3])
    task.close()


def test_encoder_offset_shifts_joint_readings() -> None:
    task = _task(noise=(), obs_latency_s=(0.0, 0.0))
    task.reset(seed=0)
    offset = task.params["encoder_offset_rad"]
    assert np.abs(offset).max() > 0
    s = task._robot_state(task.sim.sensor_out, privileged=False)
    np.testing.assert_allclose(s.joint_pos - offset, task.sim.sensor_out[:, -1][:, task.layout.joint_pos])
    task.close()


def test_sensor_noise_perturbs_observations_within_its_amplitude() -> None:
    noisy = _task(noise=(("joint_vel", 1.5),))
    obs, _ = noisy.reset(seed=0)
    s = noisy._robot_state(noisy.sim.sensor_out, privileged=False)
    clean = noisy.actor_obs(s)
    diff = obs - clean
    cols = np.flatnonzero(np.abs(diff).max(axis=0) > 0)
    assert len(cols) == 12  # only the joint_vel block changes
    assert np.abs(diff).max() <= 1.5 * 0.05 + 1e-12  # amplitude times the term's scale
    noisy.close()


def test_pushes_change_the_base_velocity() -> None:
    """A push adds a horizontal velocity impulse; without pushes the same rollout differs."""
    vels = []
    for v in (0.0, 1.0):
        task = _task(push_velocity_mps=v, push_interval_s=(0.02, 0.02))
        task.reset(seed=0)
        task.step(np.zeros((4, 12)))
        vels.append(task.sim.qvel[:, :2].copy())
        task.close()
    assert np.abs(vels[1] - vels[0]).max() > 0.05


def test_randomization_off_changes_nothing() -> None:
    task = make_task(FLAT, num_envs=2, seed=0, randomization=DomainRandomization.off())
    task.reset(seed=0)
    np.testing.assert_array_equal(task.models[0].body_mass, task.model.body_mass)
    np.testing.assert_array_equal(task.models[1].geom_friction, task.model.geom_friction)
    assert task.params["action_latency_steps"].max() == 0 and np.isinf(task.params["push_interval_s"]).all()
    task.close()


def test_terrain_heightfield_has_the_configured_features() -> None:
    """Rough tiles are bumpy, slopes rise at their slope, stairs come in steps, all harder on higher rows."""
    cfg = TerrainConfig(num_levels=3)
    t = Terrain(cfg)
    px = t.px
    tile = lambda level, kind: t.heights[
        level * px : (level + 1) * px, cfg.types.index(kind) * px : (cfg.types.index(kind) + 1) * px
    ]  # noqa: E501
    assert tile(2, "rough").std() > tile(0, "rough").std() > 0
    assert np.ptp(tile(2, "slope_up")) > np.ptp(tile(1, "slope_up")) > 0
    steps = np.unique(np.round(tile(2, "stairs_down"), 6))
    assert len(steps) > 3 and np.allclose(np.diff(steps), cfg.step_height_m[1])
    x = np.array([[t.origin[0] + 0.05 + 1.0, t.origin[1] + 0.05]])
    assert t.height_at(x)[0] == pytest.approx(t.heights[0, 10], abs=0.02)


def test_robots_spawn_on_the_terrain_and_the_curriculum_moves_levels() -> None:
    task = make_task("footfall/Quadruped-Walk-Rough-v0", num_envs=8, seed=0)
    task.reset(seed=0)
    ground = task.terrain.height_at(task.sim.qpos[:, :2])
    assert np.all(task.sim.qpos[:, 2] - ground > 0.2)
    m = task.models[0]
    assert m.nhfield == 1 and int(m.geom_type[m.geom("terrain").id]) == int(mujoco.mjtGeom.mjGEOM_HFIELD)
    new = update_levels(np.array([0, 2, 2, 5]), np.array([3.0, 0.1, 1.5, 3.0]), np.array([2.0, 2.0, 2.0, 2.0]), 4.0, 6)
    np.testing.assert_array_equal(new, [1, 1, 2, 5])
    task.close()


def test_gait_contact_rewards_the_scheduled_trot() -> None:
    """At phase 0.25 a trot wants FR and RL down, FL and RR up; the matching pattern scores 1, its opposite 0."""
    from footfall.envs.rewards import gait_contact

    offsets = np.array([0.0, 0.5, 0.5, 0.0])
    trot = np.array([[True, False, False, True], [False, True, True, False]])
    r = gait_contact(trot, np.array([0.25, 0.25]), offsets, moving=np.ones(2))
    np.testing.assert_array_equal(r, [1.0, 0.0])
    assert gait_contact(trot, np.array([0.25, 0.25]), offsets, moving=np.zeros(2)).sum() == 0


def test_randomization_is_overridable_by_dotted_key_and_survives_the_saved_config() -> None:
    import json

    from footfall.envs import DomainRandomization
    from footfall.envs.tasks import make_task, task_config
    from footfall.training.runner import RunConfig, config_to_dict
    from footfall.training.train import run_config_from_dict

    task = "footfall/Quadruped-Walk-Flat-v0"
    assert task_config(task, **{"randomization.friction": [0.5, 1.0]}).randomization.friction == (0.5, 1.0)
    with pytest.raises(ValueError, match="valid fields: .*'friction'"):
        task_config(task, **{"randomization.frictoin": (0.5, 1.0)})
    cfg = RunConfig(env_overrides=(("randomization", DomainRandomization.off()),))
    back = run_config_from_dict(json.loads(json.dumps(config_to_dict(cfg))))  # as eval/export/resume read it
    env = make_task(task, num_envs=2, seed=0, **dict(back.env_overrides))
    assert env.cfg.randomization == DomainRandomization.off()
    env.close()


def test_a_misspelt_noise_term_is_refused_with_the_valid_names() -> None:
    with pytest.raises(ValueError, match="unknown observation term 'joint_vell'.*'joint_vel'"):
        DomainRandomization(noise=(("joint_vell", 0.1),))
    with pytest.raises(ValueError, match="must be >= 0"):
        DomainRandomization(noise=(("joint_vel", -0.1),))
