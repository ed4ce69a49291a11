"""Left-right mirror maps: checked against the physics (forward kinematics) and the observation-term code."""

import mujoco
import numpy as np
import pytest
import torch

from footfall.envs.tasks import make_task
from footfall.robots import load_robot
from footfall.robots.observations import ObservationBuilder, RobotState
from footfall.robots.symmetry import Mirror, feet_mirror, gait_phase_shift, joint_mirror, mirror_name
from footfall.training.networks import ActorCritic, DeterministicActor, SymmetricMean


def test_mirror_name_swaps_side_tokens_and_keeps_case():
    assert mirror_name("FL_hip_joint") == "FR_hip_joint"
    assert mirror_name("RR_calf_joint") == "RL_calf_joint"
    assert mirror_name("left_knee_joint") == "right_knee_joint"
    assert mirror_name("L-ankle") == "R-ankle"
    assert mirror_name("LF_HAA") == "RF_HAA"
    assert mirror_name("torso_joint") == "torso_joint"


@pytest.mark.parametrize("robot_name", ["go1", "h1"])
def test_joint_mirror_reflects_the_feet_in_forward_kinematics(robot_name):
    """Put the robot in a random pose q and in the mirrored pose M q: each foot of the second must sit where the
    reflection (y -> -y, base frame) of its partner foot in the first sits. This checks pairs and signs."""
    robot = load_robot(robot_name)
    jm, fm = joint_mirror(robot), feet_mirror(robot)
    model = mujoco.MjModel.from_xml_path(str(robot.mjcf_path))
    data = mujoco.MjData(model)
    qadr = np.array([model.jnt_qposadr[model.joint(j).id] for j in robot.joint_names])
    lo = np.array([lim[0] for lim in robot.position_limits])
    hi = np.array([lim[1] for lim in robot.position_limits])
    rng = np.random.default_rng(0)

    def feet_at(q):
        data.qpos[:] = 0
        data.qpos[3] = 1.0  # base at the origin, upright
        data.qpos[qadr] = q
        mujoco.mj_kinematics(model, data)
        return np.array([data.site_xpos[model.site(f).id].copy() for f in robot.feet])

    for _ in range(5):
        q = rng.uniform(lo, hi)
        q_m = jm.apply(q)
        q_m = np.clip(q_m, lo, hi)  # joint ranges mirror too; clipping only guards rounding
        q = jm.apply(q_m)
        a, b = feet_at(q), feet_at(q_m)
        np.testing.assert_allclose(b, (a * [1, -1, 1])[fm.perm], atol=1e-9)


def _state(rng, nj, phase):
    q = rng.normal(size=(1, 4))
    return RobotState(
        joint_pos=rng.normal(size=(1, nj)),
        joint_vel=rng.normal(size=(1, nj)),
        imu_quat=q / np.linalg.norm(q),
        gyro=rng.normal(size=(1, 3)),
        command=rng.normal(size=(1, 3)),
        last_action=rng.normal(size=(1, nj)),
        phase=np.array([phase]),
    )


@pytest.mark.parametrize("task", ["footfall/Quadruped-Walk-Flat-v0", "footfall/Biped-Walk-Flat-v3"])
def test_observation_mirror_matches_the_observation_of_the_mirrored_state(task):
    env = make_task(task, 1)
    obs_m, act_m = env.actor_mirror()
    shift = env.gait_phase_shift()
    assert shift == 0.5  # trot / alternating steps: the mirrored gait is the same gait half a cycle later
    rng = np.random.default_rng(1)
    for _ in range(3):
        s = _state(rng, env.robot.num_joints, phase=rng.uniform())
        w, x, y, z = s.imu_quat[0]
        d = env.default_pose
        mirrored = RobotState(
            joint_pos=act_m.apply(s.joint_pos - d) + d,
            joint_vel=act_m.apply(s.joint_vel),
            imu_quat=np.array([[w, -x, y, -z]]),  # reflecting a rotation in the x-z plane
            gyro=s.gyro * [-1, 1, -1],
            command=s.command * [1, -1, -1],
            last_action=act_m.apply(s.last_action),
            phase=(s.phase + shift) % 1.0,
        )
        builder = ObservationBuilder(env.cfg.actor_obs, env.actor_obs.context, 1)
        o = builder(s)
        builder.reset()
        np.testing.assert_allclose(builder(mirrored), obs_m.apply(o), atol=1e-12)
        np.testing.assert_allclose(obs_m.apply(obs_m.apply(o)), o)  # an involution


def test_gait_phase_shift_rejects_an_asymmetric_gait():
    fm = feet_mirror(load_robot("go1"))
    assert gait_phase_shift((0.0, 0.0, 0.5, 0.5), fm) == 0.0  # bound: left and right pairs in phase
    with pytest.raises(ValueError, match="not left-right symmetric"):
        gait_phase_shift((0.0, 0.25, 0.5, 0.75), fm)


def test_symmetric_actor_is_exactly_equivariant_and_survives_a_checkpoint():
    env = make_task("footfall/Quadruped-Walk-Flat-v0", 1)
    obs_m, act_m = env.actor_mirror()
    torch.manual_seed(0)
    mirror = SymmetricMean(obs_m.perm, obs_m.sign, act_m.perm, act_m.sign)
    ac = ActorCritic(env.obs_size, env.critic_obs_size, env.action_size, (32, 32), (32,), mirror=mirror)
    with torch.no_grad():  # a non-trivial normalizer and output layer
        ac.actor_norm.update(torch.randn(100, env.obs_size) * 3 + 1)
        ac.actor[-1].weight.normal_()
    o = torch.randn(64, env.obs_size, dtype=torch.float32)
    om = o[:, torch.as_tensor(obs_m.perm)] * torch.as_tensor(obs_m.sign, dtype=torch.float32)
    a, a_m = ac.act_deterministic(o), ac.act_deterministic(om)
    assert a.abs().max() > 1e-2
    torch.testing.assert_close(a_m, a[:, torch.as_tensor(act_m.perm)] * torch.as_tensor(act_m.sign).float())
    # the plain network is not equivariant: the symmetry comes from the wrapper
    plain = ac.actor(ac.actor_norm(o))
    assert (plain - a).abs().max() > 1e-3
    # a fresh module loads the checkpoint's mirror buffers and gives the same actions
    sd = ac.state_dict()
    ac2 = ActorCritic(
        env.obs_size,
        env.critic_obs_size,
        env.action_size,
        (32, 32),
        (32,),
        mirror=SymmetricMean.identity(env.obs_size, env.action_size),
    )
    ac2.load_state_dict(sd)
    det = DeterministicActor(ac2.actor_norm, ac2.actor, mirror=ac2.mirror)
    torch.testing.assert_close(det(o), a)


def test_mirror_concat_offsets_permutations():
    m = Mirror.concat([Mirror.signs((1.0, -1.0)), Mirror(np.array([1, 0]), np.array([1.0, 1.0]))])
    np.testing.assert_array_equal(m.apply(np.array([1.0, 2.0, 3.0, 4.0])), [1.0, -2.0, 4.0, 3.0])
