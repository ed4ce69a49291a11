"""The biped ZMP walker: preview control on the cart-table model, footsteps, swing profile, leg IK, and a walk."""

from __future__ import annotations

import math

import numpy as np

from footfall.benchmarks.zmp_bench import centre_of_pressure, convex_hull, polygon_margin
from footfall.deploy.controllers.zmp import (
    FootstepPlanner,
    GaitConfig,
    LegIK,
    PreviewConfig,
    PreviewController,
    ZmpConfig,
    ZmpWalker,
    swing_profile,
)
from footfall.robots.registry import load_robot


def _track_step(preview: bool) -> tuple[float, float]:
    """Cart-table ZMP (C x) against a 0.1 m ZMP step at t = 2 s: (RMS error, final error)."""
    pc = PreviewController(PreviewConfig(preview=preview))
    n = 600
    ref = np.where(np.arange(n + pc.N + 1) * pc.cfg.dt_s >= 2.0, 0.1, 0.0)
    err = []
    for k in range(n):
        pc.step(ref[k : k + pc.N + 1])
        err.append(pc.zmp() - ref[k + 1])
    return float(np.sqrt(np.mean(np.square(err)))), abs(err[-1])


def test_preview_tracks_zmp_step_on_cart_table() -> None:
    """On the cart-table model itself, the preview servo's ZMP follows a step reference with a small error, much
    smaller than the servo without preview, and settles on it."""
    rms, final = _track_step(preview=True)
    rms_ref, _ = _track_step(preview=False)
    assert rms < 0.005 and final < 1e-4
    assert rms_ref > 2 * rms


def test_preview_gains_decay() -> None:
    """Preview gains fade over the horizon: the last ones weigh the far future little (the horizon is long enough)."""
    gd = PreviewController(PreviewConfig()).Gd
    assert abs(gd[-1]) < 0.01 * np.max(np.abs(gd))


def test_footsteps_advance_by_v_times_T() -> None:
    """For a constant forward command, consecutive footsteps advance by v T and alternate sides at the step width."""
    g = GaitConfig()
    steps = FootstepPlanner(g).plan(np.zeros(3), 1, np.array([0.3, 0.0, 0.0]), 6)
    xs = np.array([s[0] for s in steps])
    np.testing.assert_allclose(np.diff(xs), 0.3 * g.step_period_s, atol=1e-12)
    ys = np.array([s[1] for s in steps])
    np.testing.assert_allclose(np.abs(np.diff(ys)), g.step_width_m, atol=1e-12)


def test_footsteps_turn_at_the_commanded_rate() -> None:
    """A yaw-rate command turns each footstep by yaw_rate T; commands beyond the limits are clipped."""
    g = GaitConfig()
    steps = FootstepPlanner(g).plan(np.zeros(3), 0, np.array([0.0, 0.0, 0.2]), 4)
    np.testing.assert_allclose(np.diff([s[2] for s in steps]), 0.2 * g.step_period_s, atol=1e-12)
    assert FootstepPlanner(g).clip(np.array([9.0, 0.0, -9.0]))[0] == g.max_vx_mps


def test_swing_profile_ends_on_its_footholds() -> None:
    """The swing foot starts and ends on the ground at its footholds and peaks at the swing height mid-swing."""
    a, b = np.array([0.0, 0.2, 0.0]), np.array([0.3, 0.2, 0.1])
    p0, h0 = swing_profile(0.0, a, b, 0.05)
    p1, h1 = swing_profile(1.0, a, b, 0.05)
    _, hm = swing_profile(0.5, a, b, 0.05)
    np.testing.assert_allclose(p0, a)
    np.testing.assert_allclose(p1, b)
    assert h0 == 0.0 and h1 == 0.0 and math.isclose(hm, 0.05)


def test_leg_ik_round_trips_through_forward_kinematics() -> None:
    """IK targets (flat feet, CoM) taken from forward kinematics of a bent-knee, toed-out pose are reached to < 1 mm
    by the IK started from the home pose. (Hip roll 0 with an upright pelvis: a flat foot needs it on this leg.)"""
    spec = load_robot("h1")
    ik = LegIK(spec, ZmpConfig())
    q_true = np.array([0.05, 0.0, -0.4, 0.8, -0.4, -0.02, 0.0, -0.3, 0.6, -0.3])
    ik.set_state(np.array([0.0, 0.0, 0.95]), np.array([1.0, 0, 0, 0]), q_true)
    feet = [ik.foot_pose(0), ik.foot_pose(1)]
    com = ik.com()
    ik.set_state(np.array([0.0, 0.0, 1.0]), np.array([1.0, 0, 0, 0]), np.asarray(spec.default_pose, dtype=float))
    for _ in range(10):
        ik.solve(feet, com, (0.0, 0.0, 0.0), 2)
    for i in range(2):
        err = ik.foot_pose(i) - feet[i]
        assert np.linalg.norm(err[:3]) < 1e-3 and abs(err[3]) < 1e-3
    assert np.linalg.norm(ik.com() - com) < 1e-3


def test_cop_and_support_margin() -> None:
    """The centre of pressure is the force-weighted mean of the contact points; the margin is the distance to the
    nearest edge of the support polygon, positive inside and negative outside."""
    pts = np.array([[0.0, 0.0, 0.0], [0.2, 0.0, 0.0], [0.2, 0.1, 0.0], [0.0, 0.1, 0.0]])
    cop = centre_of_pressure(pts, np.array([1.0, 3.0, 3.0, 1.0]))
    np.testing.assert_allclose(cop, [0.15, 0.05])
    hull = convex_hull(np.vstack([pts[:, :2], [[0.1, 0.05]]]))
    assert len(hull) == 4
    assert math.isclose(polygon_margin(hull, cop), 0.05)
    assert math.isclose(polygon_margin(hull, np.array([0.25, 0.05])), -0.05)


def test_walker_walks_three_seconds_in_lockstep() -> None:
    """Through the runtime and its safety layer, the walker takes its first steps at 0.3 m/s without a fall and
    moves forward; its compute per tick stays well under the control period."""
    from footfall.deploy.mujoco_robot import MujocoRobot
    from footfall.deploy.runtime import LockstepClock, Mode, Runtime, RuntimeConfig

    spec = load_robot("h1")
    robot = MujocoRobot(spec, physics_dt=0.002)
    robot.reset()
    walker = ZmpWalker(spec)
    rt = Runtime(
        robot,
        spec,
        walker,
        RuntimeConfig(control_dt_s=walker.control_dt_s, command_hold=True),
        clock=LockstepClock(robot),
    )
    rt.set_velocity(np.array([0.3, 0.0, 0.0]))
    rt.run_now()
    h0 = robot.truth().base_pos[2]
    for _ in range(int(3.0 / walker.control_dt_s)):
        rt.loop(ticks=1, freeze_gc=False)
        t = robot.truth()
        assert rt.mode == Mode.RUN, rt.fault
        assert -t.gravity_z > math.cos(math.radians(60)) and t.base_pos[2] > 0.5 * h0
    assert robot.truth().base_pos[0] > 0.3  # 2 s of stepping at 0.3 m/s after the 1 s start
    assert rt.timing()["tick_median_ms"] < walker.control_dt_s * 1e3
