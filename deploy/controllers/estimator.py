"""Base state estimator for a legged robot from what it measures: joint encoders, IMU, foot contact forces.

Orientation comes from the IMU quaternion (wxyz), angular velocity from the gyro. Linear velocity and height are
not measured, so they are estimated:

- leg kinematics: a foot in contact does not move, so the base velocity is minus the foot's velocity relative to the
  base, v_base = -(J_foot dq + w x r_foot), with r_foot the foot position relative to the base in the
  world-aligned frame (the IMU orientation); averaged over the feet whose contact force exceeds a threshold.
  A round foot rolls: its contact point, not its centre, is at rest, so the centre moves at w_calf x (0, 0, rho)
  (rho the foot radius) and v_base = w_calf x (0, 0, rho) - (J_foot dq + w x r_foot). Left out, this reads a
  go1 trotting at 0.8 m/s about 0.06 m/s slow (its calf turns about 3 rad/s in stance);
- the accelerometer (specific force a_imu in the IMU frame): v_dot = R a_imu + g_world, integrated every tick;
- a complementary filter blends the two: v <- v + dt (R a_imu + g) then v <- v + k (v_legs - v) with
  k = dt / tau_v (tau_v the time constant over which the legs correct the integrated accelerometer);
- height on flat ground: the stance feet rest on the floor, so z_base = foot radius - mean(r_foot_z); low-passed.
  Horizontal position is the integral of the estimated velocity (odometry: it drifts, which is harmless for a
  velocity-tracking controller that plans relative to where the robot is).

The kinematics run on a private MjData of the robot's own MjModel: base at the origin with the estimated
orientation, joints at the encoders, base linear velocity zero, base angular velocity the gyro. Then a foot site's
Jacobian times qvel is exactly J_foot dq + w x r_foot.

`use_truth=True` (simulation only, for debugging) replaces the estimate with MujocoRobot.truth(); never use it in
a benchmark.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import mujoco
import numpy as np

from footfall.deploy.interface import RobotReading
from footfall.robots.spec import RobotSpec

GRAVITY = np.array([0.0, 0.0, -9.81])  # m/s^2, world frame (z up)


@dataclass(frozen=True)
class EstimatorConfig:
    """Complementary filter settings."""

    contact_threshold_n: float = 8.0  # a foot whose touch sensor reads more than this is taken as standing
    velocity_tau_s: float = 0.05  # legs correct the integrated accelerometer over this time constant
    height_tau_s: float = 0.02  # low-pass time constant of the kinematic height
    foot_radius_m: float = 0.02  # the foot site sits at the centre of a sphere of this radius (go1: [U1] in go1.xml)


@dataclass
class BaseState:
    """The estimate, all in the world-aligned frame (z up, yaw from the IMU) unless the name says otherwise."""

    rot: np.ndarray = field(default_factory=lambda: np.eye(3))  # (3, 3) base-to-world rotation
    pos: np.ndarray = field(default_factory=lambda: np.zeros(3))  # m, base origin (xy: odometry)
    lin_vel: np.ndarray = field(default_factory=lambda: np.zeros(3))  # m/s, base origin, world frame
    ang_vel: np.ndarray = field(default_factory=lambda: np.zeros(3))  # rad/s, world frame
    foot_rel: np.ndarray = field(default_factory=lambda: np.zeros((4, 3)))  # m, foot sites minus base origin
    foot_vel_rel: np.ndarray = field(default_factory=lambda: np.zeros((4, 3)))  # m/s, J dq + w x r per foot
    foot_roll_vel: np.ndarray = field(default_factory=lambda: np.zeros((4, 3)))  # m/s, w_calf x (0, 0, rho)
    foot_jac: np.ndarray = field(default_factory=lambda: np.zeros((4, 3, 3)))  # d foot_rel / d q_leg per foot
    contact: np.ndarray = field(default_factory=lambda: np.zeros(4, bool))  # foot force above the threshold

    def lin_vel_body(self) -> np.ndarray:
        """Base linear velocity in the base frame, m/s (what MujocoRobot.truth().base_lin_vel holds at the IMU)."""
        return self.rot.T @ self.lin_vel


def quat_to_mat(q: np.ndarray) -> np.ndarray:
    """wxyz quaternion -> (3, 3) rotation matrix."""
    out = np.empty(9)
    mujoco.mju_quat2Mat(out, np.asarray(q, dtype=float))
    return out.reshape(3, 3)


class StateEstimator:
    """Leg kinematics fused with the accelerometer; see the module docstring. Call `update(reading)` every tick."""

    def __init__(self, spec: RobotSpec, model: mujoco.MjModel | None = None, cfg: EstimatorConfig | None = None):
        if not spec.floating_base or spec.imu_site is None or not spec.feet:
            raise ValueError(
                f"StateEstimator needs a floating-base robot with an IMU site and feet; {spec.name} has "
                f"imu_site={spec.imu_site!r}, feet={spec.feet!r}"
            )
        self.spec = spec
        self.cfg = cfg or EstimatorConfig()
        self.model = model if model is not None else spec.build_mjspec().compile()
        self.data = mujoco.MjData(self.model)
        m = self.model
        self.nfeet = len(spec.feet)
        self.qadr = spec.joint_qpos_adr(m)
        self.dadr = spec.joint_dof_adr(m)
        self.foot_sites = np.array([m.site(name).id for name in spec.feet])
        imu = m.site(spec.imu_site)
        if m.body(imu.bodyid[0]).name != spec.base_body:
            raise ValueError(f"the IMU site {spec.imu_site!r} must sit on the base body {spec.base_body!r}")
        self.imu_rot_in_base = quat_to_mat(imu.quat)  # (3, 3) IMU frame -> base frame
        self.imu_pos_in_base = np.array(imu.pos)
        # per foot, the dof columns of that foot's leg: the joints on the path from the foot to the base
        self.leg_dofs = []
        for sid in self.foot_sites:
            cols, b = [], int(m.site_bodyid[sid])
            while b != 0 and m.body(b).name != spec.base_body:
                cols += [int(m.jnt_dofadr[j]) for j in range(m.body_jntadr[b], m.body_jntadr[b] + m.body_jntnum[b])]
                b = int(m.body_parentid[b])
            self.leg_dofs.append(np.array(sorted(cols)))
        if any(len(c) != 3 for c in self.leg_dofs):
            raise ValueError(f"expected three joints per leg, got {[len(c) for c in self.leg_dofs]} for {spec.feet}")
        self._jac = np.zeros((3, m.nv))
        self._jacr = np.zeros((3, m.nv))
        self.state = BaseState(
            foot_rel=np.zeros((self.nfeet, 3)),
            foot_vel_rel=np.zeros((self.nfeet, 3)),
            foot_roll_vel=np.zeros((self.nfeet, 3)),
            foot_jac=np.zeros((self.nfeet, 3, 3)),
            contact=np.zeros(self.nfeet, bool),
        )
        self.last_stamp: float | None = None
        self.robot_truth = None  # set to a MujocoRobot to debug with true velocity and position (use_truth)

    def reset(self, reading: RobotReading, height_m: float | None = None) -> BaseState:
        """Start from rest: zero velocity, xy at the origin, height from the feet (all taken as standing)."""
        self.last_stamp = None
        self.state.lin_vel[:] = 0.0
        self.state.pos[:] = 0.0
        self._kinematics(reading)
        z = self.cfg.foot_radius_m - float(np.mean(self.state.foot_rel[:, 2]))
        self.state.pos[2] = z if height_m is None else height_m
        self.last_stamp = reading.stamp_s
        return self.state

    def _kinematics(self, reading: RobotReading) -> None:
        m, d, s = self.model, self.data, self.state
        rho = self.cfg.foot_radius_m
        if reading.imu_quat is None or reading.gyro is None:
            raise ValueError("the estimator needs imu_quat and gyro in every reading; this robot sends none")
        r_imu = quat_to_mat(reading.imu_quat)
        s.rot = r_imu @ self.imu_rot_in_base.T  # base -> world
        w_base = self.imu_rot_in_base @ reading.gyro  # base frame
        s.ang_vel = s.rot @ w_base
        d.qpos[:3] = 0.0
        mujoco.mju_mat2Quat(d.qpos[3:7], s.rot.ravel())
        d.qpos[self.qadr] = reading.joint_pos
        d.qvel[:] = 0.0
        d.qvel[3:6] = w_base  # a free joint's angular velocity is in the body frame
        d.qvel[self.dadr] = reading.joint_vel
        mujoco.mj_kinematics(m, d)
        mujoco.mj_comPos(m, d)
        for i, sid in enumerate(self.foot_sites):
            mujoco.mj_jacSite(m, d, self._jac, self._jacr, sid)
            s.foot_rel[i] = d.site_xpos[sid]
            s.foot_vel_rel[i] = self._jac @ d.qvel
            w_calf = self._jacr @ d.qvel
            s.foot_roll_vel[i] = (w_calf[1] * rho, -w_calf[0] * rho, 0.0)  # w x (0, 0, rho)
            s.foot_jac[i] = self._jac[:, self.leg_dofs[i]]
        if reading.foot_contact is not None:
            s.contact = reading.foot_contact > self.cfg.contact_threshold_n
        else:
            s.contact = s.foot_rel[:, 2] < np.min(s.foot_rel[:, 2]) + 0.02  # the lowest feet, without sensors

    def update(self, reading: RobotReading, trust: np.ndarray | None = None) -> BaseState:
        """Fold one reading into the estimate and return it (the same BaseState object every call).

        `trust` (nfeet,) in [0, 1], optional: how much each foot's kinematics may count (a gait scheduler knows that
        a foot just landing or about to lift still moves); the touch sensors' contact is required as well."""
        s, c = self.state, self.cfg
        if self.last_stamp is None:
            return self.reset(reading)
        dt = max(0.0, reading.stamp_s - self.last_stamp)
        self.last_stamp = reading.stamp_s
        self._kinematics(reading)
        if self.robot_truth is not None:
            t = self.robot_truth.truth()
            imu_off = s.rot @ self.imu_pos_in_base
            s.lin_vel = s.rot @ self.imu_rot_in_base @ t.base_lin_vel - np.cross(s.ang_vel, imu_off)
            s.pos = t.base_pos.copy()
            return s
        # predict: integrate the accelerometer (specific force -> acceleration of the IMU point; the base origin
        # differs by w x (w x r) + w_dot x r, neglected here: the IMU of a legged robot sits near the base origin)
        if reading.accel is not None:
            s.lin_vel += dt * (s.rot @ self.imu_rot_in_base @ reading.accel + GRAVITY)
        wt = s.contact.astype(float) if trust is None else s.contact * np.clip(trust, 0.0, 1.0)
        stance = wt > 0.0
        if stance.any():
            v_legs = (wt @ (s.foot_roll_vel - s.foot_vel_rel)) / wt.sum()
            k = min(1.0, dt / c.velocity_tau_s) if reading.accel is not None else 1.0
            s.lin_vel += k * float(wt.max()) * (v_legs - s.lin_vel)  # low trust: the accelerometer carries on
            z_legs = c.foot_radius_m - float(np.mean(s.foot_rel[stance, 2]))
            kz = min(1.0, dt / c.height_tau_s)
            s.pos[2] += dt * s.lin_vel[2]
            s.pos[2] += kz * (z_legs - s.pos[2])
        else:
            s.pos[2] += dt * s.lin_vel[2]
        s.pos[:2] += dt * s.lin_vel[:2]
        return s
