"""footfall's Go2: it compiles at its published mass, stands on Unitree's gains, matches the cited limits, and runs the
quadruped task and its preset unchanged."""

from __future__ import annotations

import mujoco
import numpy as np
import pytest

from footfall.envs.tasks import make_task
from footfall.robots import load_robot
from footfall.robots.stand import stand
from footfall.robots.symmetry import feet_mirror, joint_mirror

# Published figures, typed here from the sources cited in assets/go2/go2.xml (not read from our files), so a drifting
# model fails. Per leg, in policy order hip / thigh / calf; the legs in order FR, FL, RR, RL.
URDF_MASS_KG = 6.921 + 4 * (0.678 + 1.152 + 0.154 + 0.04)  # Unitree go2 URDF links: base, hip, thigh, calf, foot
UNITREE_MASS_KG = 15.0  # Unitree's figure for the robot, approx.
FRONT = [(-1.0472, 1.0472), (-1.5708, 3.4907), (-2.7227, -0.83776)]
REAR = [(-1.0472, 1.0472), (-0.5236, 4.5379), (-2.7227, -0.83776)]
RANGES = FRONT + FRONT + REAR + REAR
TORQUES = [23.7, 23.7, 45.43] * 4
VELOCITIES = [30.1, 30.1, 15.70] * 4
KP, KD = 20.0, 0.5  # unitree_rl_gym go2_config: control.stiffness / control.damping
DEFAULT_POSE = [-0.1, 0.8, -1.5, 0.1, 0.8, -1.5, -0.1, 1.0, -1.5, 0.1, 1.0, -1.5]  # its default_joint_angles


@pytest.fixture(scope="module")
def go2():
    return load_robot("go2")


def test_model_compiles_at_the_published_mass(go2) -> None:
    """The MJCF compiles on its own; its total mass is within 2% of the URDF's link sum and of Unitree's ~15 kg."""
    model = mujoco.MjModel.from_xml_path(str(go2.mjcf_path))
    mass = float(model.body_mass.sum())
    assert mass == pytest.approx(URDF_MASS_KG, rel=0.02)
    assert mass == pytest.approx(UNITREE_MASS_KG, rel=0.02)
    assert go2.published_mass_kg == pytest.approx(URDF_MASS_KG, abs=0.01)
    assert go2.kind == "quadruped" and go2.num_joints == 12 and go2.physics_dt == pytest.approx(0.004)


def test_limits_gains_and_default_pose_equal_the_cited_figures(go2) -> None:
    """Joint ranges, torque and velocity limits (URDF), PD gains and the default pose (unitree_rl_gym) as cited."""
    np.testing.assert_allclose(go2.position_limits, RANGES, atol=1e-6)
    np.testing.assert_allclose(go2.torque_limits, TORQUES, atol=1e-6)
    np.testing.assert_allclose(go2.velocity_limits, VELOCITIES, atol=1e-6)
    np.testing.assert_allclose(go2.kp, [KP] * 12)
    np.testing.assert_allclose(go2.kd, [KD] * 12)
    np.testing.assert_allclose(go2.default_pose, DEFAULT_POSE)


def test_stands_at_home_under_its_gains(go2) -> None:
    """Held at home for 2.5 s: the base stays within 5% of its nominal height and 5 deg of upright, only the feet
    touch the floor, and the joints stay within 0.03 rad of the keyframe (it is the rest state, not a drop)."""
    res = stand(go2, seconds=2.5)
    nominal = go2.nominal_base_height_m
    assert 0.95 * nominal <= res.base_height_min_m and res.base_height_max_m <= 1.05 * nominal, res
    assert res.max_tilt_deg < 5.0, res
    assert res.non_foot_contacts == ()
    assert res.passed()
    assert res.max_joint_error_rad < 0.4, res  # |q - PD target|: the sag of kp = 20 under 15 kg (see go2.xml)

    model = go2.build_model()
    data = mujoco.MjData(model)
    mujoco.mj_resetDataKeyframe(model, data, model.key(go2.home_keyframe).id)
    q0 = data.qpos[go2.joint_qpos_adr(model)].copy()
    data.ctrl[go2.actuator_ids(model)] = go2.default_pose
    for _ in range(int(2.5 / model.opt.timestep)):
        mujoco.mj_step(model, data)
    assert np.abs(data.qpos[go2.joint_qpos_adr(model)] - q0).max() < 0.03


def test_joint_mirror_reflects_the_feet(go2) -> None:
    """The symmetric actor's mirror map holds on the Go2: a mirrored pose puts each foot at its partner's reflection."""
    jm, fm = joint_mirror(go2), feet_mirror(go2)
    model = mujoco.MjModel.from_xml_path(str(go2.mjcf_path))
    data = mujoco.MjData(model)
    qadr = go2.joint_qpos_adr(model)
    lo, hi = np.asarray(go2.position_limits).T

    def feet_at(q: np.ndarray) -> np.ndarray:
        data.qpos[:] = 0
        data.qpos[3] = 1.0
        data.qpos[qadr] = q
        mujoco.mj_kinematics(model, data)
        return np.array([data.site(f).xpos.copy() for f in go2.feet])

    rng = np.random.default_rng(0)
    for _ in range(5):
        q = jm.apply(np.clip(jm.apply(rng.uniform(lo, hi)), lo, hi))
        np.testing.assert_allclose(feet_at(jm.apply(q)), (feet_at(q) * [1, -1, 1])[fm.perm], atol=1e-9)


def test_quadruped_task_steps_on_go2_and_its_contract_fits(go2) -> None:
    """The quadruped flat task builds on go2 by name and steps a small batch with finite observations and rewards;
    the policy contract it writes validates against the robot."""
    task = make_task("footfall/Quadruped-Walk-Flat-v0", num_envs=4, seed=0, robot="go2")
    try:
        assert task.robot.name == "go2" and task.action_size == 12
        obs, _ = task.reset(seed=0)
        for _ in range(20):
            obs, rew, *_ = task.step(np.zeros((4, 12)))
        assert np.isfinite(obs).all() and np.isfinite(rew).all()
        task.contract().validate(go2)
    finally:
        task.close()


def test_go2_flat_preset_trains_the_quadruped_task_on_go2() -> None:
    """The go2-flat preset is the quadruped flat task with its robot set to go2; the contract its export writes
    parses back equal and validates against the Go2 at the 50 Hz control rate."""
    from footfall.robots import PolicyContract
    from footfall.training.presets import preset

    cfg = preset("go2-flat")
    task = make_task(cfg.task, num_envs=1, seed=0, **dict(cfg.env_overrides))
    try:
        assert cfg.task == "footfall/Quadruped-Walk-Flat-v0" and task.robot.name == "go2"
        c = task.contract(task=cfg.task)
        back = PolicyContract.from_json(c.to_json())
        assert back == c and back.robot.name == "go2"
        back.validate(task.robot, control_dt_s=0.02)
    finally:
        task.close()
