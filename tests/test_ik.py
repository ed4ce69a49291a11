"""Arm IK: Jacobian, solves checked by forward kinematics, limits, unreachable targets, the reaching controller."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("qpsolvers")

from footfall.deploy.controllers.ik import IKConfig, IKSolver, ReachController  # noqa: E402
from footfall.deploy.mujoco_robot import MujocoRobot  # noqa: E402
from footfall.deploy.runtime import LockstepClock, Runtime, RuntimeConfig  # noqa: E402
from footfall.robots import load_robot  # noqa: E402


@pytest.fixture(scope="module")
def solver() -> IKSolver:
    spec = load_robot("panda")
    return IKSolver(spec.build_mjspec().compile(), spec.end_effector_site, list(spec.joint_names), seed=0)


def _rot_angle(qa: np.ndarray, qb: np.ndarray) -> float:
    return 2 * float(np.arccos(min(1.0, abs(float(qa @ qb)))))


def test_jacobian_matches_finite_differences(solver: IKSolver) -> None:
    q = np.random.default_rng(0).uniform(solver.lo, solver.hi)
    solver._error(q, np.zeros(3), np.array([1.0, 0, 0, 0]))
    J = solver._jacobian(6).copy()
    h = 1e-6
    p0, _ = solver.forward(q)
    for j in range(solver.num_joints):
        dq = np.zeros(solver.num_joints)
        dq[j] = h
        p1, _ = solver.forward(q + dq)
        np.testing.assert_allclose((p1 - p0) / h, J[:3, j], atol=1e-5)


def test_solves_random_reachable_targets_inside_the_limits(solver: IKSolver) -> None:
    rng = np.random.default_rng(3)
    P, R, _ = solver.random_reachable(40, rng)
    q0 = solver.model.key_qpos[0][solver.qadr]
    for p, r in zip(P, R):
        res = solver.solve(p, r, q0)
        assert res.success, f"target {p} not reached: {res.pos_err_m * 1e3:.2f} mm, {res.rot_err_rad:.4f} rad"
        assert np.all(res.q >= solver.lo) and np.all(res.q <= solver.hi)
        p_fk, r_fk = solver.forward(res.q)  # checked independently of the solver's own error
        assert np.linalg.norm(p_fk - p) <= 1e-3 and _rot_angle(r_fk, r) <= 0.01


def test_position_only_target(solver: IKSolver) -> None:
    p, _ = solver.forward(0.5 * (solver.lo + solver.hi) + 0.2)
    res = solver.solve(p, None, solver.model.key_qpos[0][solver.qadr])
    assert res.success and res.rot_err_rad == 0.0
    assert np.linalg.norm(solver.forward(res.q)[0] - p) <= 1e-3


def test_unreachable_target_fails_cleanly_with_the_closest_pose(solver: IKSolver) -> None:
    quick = IKSolver(solver.model, "ee", None, IKConfig(restarts=2), seed=1)
    res = quick.solve(np.array([3.0, 0.0, 0.5]), None)  # 3 m away: beyond the arm's ~0.85 m reach
    assert not res.success and res.attempts == 3
    assert np.all(res.q >= quick.lo) and np.all(res.q <= quick.hi)
    assert 2.0 < res.pos_err_m < 2.5  # stretched toward it


def test_a_step_against_a_limit_stays_inside(solver: IKSolver) -> None:
    q = solver.hi.copy()  # every joint at its upper limit
    p, _ = solver.forward(q)
    e, _, _ = solver._error(q, p + np.array([0.3, -0.3, 0.3]), None)
    dq = solver.step(q, e)
    assert np.all(q + dq <= solver.hi + 1e-9) and np.all(q + dq >= solver.lo - 1e-9)
    assert np.all(np.abs(dq) <= solver.cfg.max_step_rad + 1e-9)
    assert np.linalg.norm(solver._error(q + dq, p + np.array([0.3, -0.3, 0.3]), None)[0]) < np.linalg.norm(e)


def test_unknown_site_or_joint_names_the_choices(solver: IKSolver) -> None:
    with pytest.raises(ValueError, match="its sites"):
        IKSolver(solver.model, "no_such_site")
    with pytest.raises(ValueError, match="its joints"):
        IKSolver(solver.model, "ee", ["joint1", "jointX"])


def test_reach_controller_through_the_runtime() -> None:
    spec = load_robot("panda")
    ctl = ReachController(spec)
    robot = MujocoRobot(spec)
    rt = Runtime(
        robot, spec, ctl, RuntimeConfig(control_dt_s=ctl.control_dt_s, command_hold=True), clock=LockstepClock(robot)
    )
    target, _ = ctl.ik.forward(np.array([0.3, -0.2, 0.2, -1.8, 0.1, 1.9, 0.5]))  # reachable, base at the origin
    rt.run_now()
    rt.set_velocity(target)
    rt.loop(ticks=int(4.0 / ctl.control_dt_s), freeze_gc=False)
    assert rt.fault is None
    ee = robot.data.site_xpos[ctl.ik.site]
    assert np.linalg.norm(ee - target) < 0.01, f"end effector {ee} is {np.linalg.norm(ee - target):.4f} m off"
