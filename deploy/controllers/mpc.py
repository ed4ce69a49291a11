"""Quadruped locomotion by convex model-predictive control (Di Carlo et al. 2018, "Dynamic Locomotion in the MIT
Cheetah 3 Through Convex Model-Predictive Control", IROS), behind the controller interface of the deploy runtime.

The pieces, each a small class or function:

- `Gait`: a periodic contact schedule (trot: diagonal pairs, half a period apart, duty 0.5);
- `SrbModel` and `condensed_qp`: the single-rigid-body model and the MPC as one dense QP in the foot forces;
- `solve_forces`: that QP through qpsolvers (daqp by default), swing feet removed from the decision variables;
- `ConvexMpcController`: estimator -> MPC (every `mpc_dt_s`) -> per-leg control (every tick):
  stance legs tau_ff = -J^T f; swing legs joint PD inside the drives to the leg IK of a swing trajectory to a
  Raibert foothold (q*, dq* = J^-1 v*, the leg's gravity torque as feed-forward). The drives close that loop at the
  physics rate, so command latency (0-10 ms in `footfall compare`, 20 ms tested) does not destabilize it, as it
  did a Cartesian PD closed at the control rate.

The model. The robot is one rigid body of mass m and inertia I (the whole robot's, about its centre of mass, at the
home pose); the legs are massless and push on the body with ground reaction forces f_i at the feet r_i (relative to
the centre of mass, world frame). The state is

    x = [Theta, p, w, v, g]  (13,)   Theta = (roll, pitch, yaw), p = COM position, w = angular velocity (world),
                                     v = COM velocity, g = 9.81 (a constant state that makes gravity linear)

and, with roll and pitch small (Di Carlo et al. eq. 10-16), the dynamics are linear once the yaw psi is fixed:

    Theta_dot = Rz(psi)^T w
    p_dot     = v
    w_dot     = I_w^-1 sum_i r_i x f_i          I_w = Rz(psi) I_body Rz(psi)^T
    v_dot     = sum_i f_i / m - (0, 0, g)

x_dot = A x + B(r, psi) u, u = (f_1, ..., f_n), linearized about the yaw at the start of the horizon (A) and the
reference yaw of each step (the inertia in B). A is nilpotent (A^3 = 0: Theta <- w, p <- v <- g) and A^2 B = 0, so
the zero-order-hold discretization with step dt is exact in three terms: A_d = I + A dt + A^2 dt^2 / 2,
B_d = B dt + A B dt^2 / 2 (gravity and the forces both move the position within the step).

The condensed QP. Over a horizon of N steps the predicted states are X = S_x x0 + S_u U with
S_u[k, j] = A^(k-j) B_j (j <= k), so the states drop out:

    min_U  (X - X_ref)^T Q (X - X_ref) + alpha |U|^2
    =  1/2 U^T P U + q^T U,  P = 2 (S_u^T Q S_u + alpha I),  q = 2 S_u^T Q (S_x x0 - X_ref)
    s.t.   |f_x| + |f_y| <= mu f_z,  f_min <= f_z <= f_max   (friction pyramid, see MpcConfig.mu)   for stance feet

A foot in swing at step j carries no force: its three columns of S_u are dropped (not constrained to zero), so
the QP has 3 x (stance feet summed over the horizon) variables: 60 for a trot with a 10-step horizon instead of 120.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import mujoco
import numpy as np
import qpsolvers

from footfall.deploy.controllers.estimator import BaseState, EstimatorConfig, StateEstimator
from footfall.deploy.interface import JointCommand, RobotReading
from footfall.robots.spec import RobotSpec

G = 9.81  # m/s^2
NX = 13  # state size


# ---------------------------------------------------------------------------------------------------- configs


@dataclass(frozen=True)
class GaitConfig:
    """A periodic gait: foot i is in stance while (t / period + offset_i) mod 1 < duty."""

    period_s: float = 0.30  # trot period; Di Carlo et al. trot Cheetah 3 at 0.3-0.5 s cycles (their Table II)
    duty: float = 0.5  # share of the period each foot stands
    offsets: tuple[float, ...] = (0.0, 0.5, 0.5, 0.0)  # per foot in spec order (go1: FR, FL, RR, RL): a trot


@dataclass(frozen=True)
class MpcConfig:
    """The MPC problem. Weights are per state (roll pitch yaw, x y z, wx wy wz, vx vy vz); see `SrbModel`."""

    horizon: int = 10  # steps; Di Carlo et al.: 10 steps, about one gait cycle
    mpc_dt_s: float = 0.03  # s per horizon step, and the re-solve period (33 Hz; Di Carlo et al. solve at 20-40 Hz)
    # own tuning. Roll and pitch at 10 (were 2): with 2 the body pitched 0.3-0.5 rad walking at 1 m/s (nose down
    # backwards, up forwards), far outside the small-angle model, and fell at half friction; 10 keeps it ~0.1 rad
    weights: tuple[float, ...] = (10.0, 10.0, 10.0, 0.0, 0.0, 50.0, 0.2, 0.2, 0.3, 10.0, 10.0, 1.0)
    alpha: float = 1e-5  # force regularization (per N^2), small as in Di Carlo et al. (they use 4e-5..1e-6)
    # Friction. MuJoCo's default (pyramidal) contact cone is the diamond |f_t1| + |f_t2| <= mu f_n in a tangent frame
    # turned arbitrarily about the normal, with mu the larger of the two geoms' (go1: floor 1.0, feet 0.9; the
    # compare scenario at half friction: 0.5). The classic box |f_x|, |f_y| <= mu f_z lets the diagonal reach
    # sqrt(2) mu f_z, which slipped the feet at half friction with mu 0.6 (and 0.4). So the MPC uses the diamond
    # |f_x| + |f_y| <= mu f_z ("diamond"), and mu 0.35 = 0.5 / sqrt(2): the largest diamond that fits inside the
    # floor's at half friction whatever its tangent frame's turn; at full friction it keeps a wide margin. Walking
    # needs a ratio of about 0.1-0.3, so the nominal cases lose little. cone="box" gives the classic pyramid.
    mu: float = 0.35
    cone: str = "diamond"  # "diamond" (|fx| + |fy| <= mu fz) or "box" (|fx|, |fy| <= mu fz, Di Carlo et al.)
    f_min_n: float = 0.0  # normal force bounds of a stance foot
    f_max_n: float = 150.0  # ~ what the go1 calf torque limit (35.55 N m) supports at the home knee angle
    solver: str = "daqp"  # any qpsolvers solver name that takes dense matrices (daqp, osqp, quadprog, ...)
    solver_settings: tuple[tuple[str, float], ...] = ()  # extra keyword arguments for the solver


@dataclass(frozen=True)
class LegConfig:
    """Per-leg control and foot placement."""

    body_height_m: float = 0.27  # walking height of the base origin (go1 home pose stands at 0.2435 under PD)
    swing_height_m: float = 0.08  # apex of a swing foot above the ground
    # Swing legs are joint PD inside the drives (tau = kp (q* - q) + kd (dq* - dq) + tau_ff at the physics rate),
    # to q* from leg IK of the swing trajectory and dq* = J^-1 of its velocity. A Cartesian PD on the foot closed in
    # the controller (500 Hz) goes unstable once command latency reaches ~5-10 ms (a 500 N/m, 12 N s/m foot loop
    # with 10 ms of delay tripped the joint-speed check at 30 rad/s); the drives' loop sees no latency.
    swing_joint_kp: tuple[float, float, float] = (35.0, 35.0, 35.0)  # N m/rad, hip thigh calf: the go1's own kp
    # N m s/rad: 1.0, not the go1's 0.5: the joints' inertia at home (armature included) is about 0.026 (hip,
    # thigh) and 0.016 kg m^2 (calf), so with kp 35 critical damping is 2 sqrt(kp I) ~ 1.9 and 1.5; 1.0 gives a
    # damping ratio of 0.5-0.7 (0.5: 0.25-0.35, a ringing foot)
    swing_joint_kd: tuple[float, float, float] = (1.0, 1.0, 1.0)
    swing_gravity_ff: bool = True  # add the leg's gravity torque (at the estimated base orientation) to tau_ff
    ik_iterations: int = 2  # Newton steps of the leg IK per tick, warm-started at the last tick's solution
    stance_joint_kd: float = 0.0  # N m s/rad, drive damping of stance legs toward J^-1 (-(v + w x r))
    raibert_k: float = 0.03  # s, foothold correction per m/s of velocity error (Raibert 1986; Di Carlo et al. eq. 18)
    max_foothold_offset_m: float = 0.15  # clip on the foothold's distance from the hip's touchdown position
    max_accel: tuple[float, float, float] = (2.0, 2.0, 6.0)  # command slew limit: m/s^2, m/s^2, rad/s^2
    estimator_trust_ramp: float = 0.3  # share of stance at each end where a foot's kinematics count less
    velocity_ki: tuple[float, float, float] = (1.0, 1.0, 1.0)  # 1/s, integral of the (vx, vy, yaw rate) error
    velocity_integral_limit: tuple[float, float, float] = (0.2, 0.2, 0.3)  # clip of that integral (m/s, rad/s)


@dataclass(frozen=True)
class ConvexMpcConfig:
    control_dt_s: float = 0.002  # runtime tick (500 Hz): estimator and leg control; the MPC every mpc_dt_s
    gait: GaitConfig = GaitConfig()
    mpc: MpcConfig = MpcConfig()
    legs: LegConfig = LegConfig()
    estimator: EstimatorConfig = EstimatorConfig()
    use_truth: bool = False  # debugging only: base velocity and position from the simulator instead of estimated


# ---------------------------------------------------------------------------------------------------- gait


class Gait:
    """Periodic contact schedule. Pure functions of time t (s since the gait started)."""

    def __init__(self, cfg: GaitConfig, nfeet: int):
        if len(cfg.offsets) != nfeet:
            raise ValueError(f"GaitConfig.offsets has {len(cfg.offsets)} entries; the robot has {nfeet} feet")
        if not 0.0 < cfg.duty < 1.0:
            raise ValueError(f"GaitConfig.duty must lie in (0, 1), got {cfg.duty}")
        self.cfg = cfg
        self.offsets = np.asarray(cfg.offsets, dtype=float)
        self.stance_s = cfg.duty * cfg.period_s
        self.swing_s = (1.0 - cfg.duty) * cfg.period_s

    def phase(self, t: float) -> np.ndarray:
        """(nfeet,) position in each foot's cycle, in [0, 1): stance first, then swing."""
        return np.mod(t / self.cfg.period_s + self.offsets, 1.0)

    def contact(self, t: float) -> np.ndarray:
        return self.phase(t) < self.cfg.duty  # (nfeet,) bool

    def schedule(self, t0: float, dt: float, n: int) -> np.ndarray:
        """(n, nfeet) contact at the middle of each horizon step."""
        ts = t0 + (np.arange(n) + 0.5) * dt
        return np.mod(ts[:, None] / self.cfg.period_s + self.offsets[None, :], 1.0) < self.cfg.duty

    def swing_progress(self, t: float) -> np.ndarray:
        """(nfeet,) 0 at lift-off, 1 at touchdown (meaningful for feet in swing)."""
        return np.clip((self.phase(t) - self.cfg.duty) / (1.0 - self.cfg.duty), 0.0, 1.0)

    def time_to_touchdown(self, t: float) -> np.ndarray:
        """(nfeet,) s until the next touchdown of each foot (0 for a foot standing now)."""
        return np.where(self.contact(t), 0.0, (1.0 - self.phase(t)) * self.cfg.period_s)


# ---------------------------------------------------------------------------------------------------- model


def skew(r: np.ndarray) -> np.ndarray:
    """[r]x: skew(r) @ f == cross(r, f)."""
    return np.array([[0.0, -r[2], r[1]], [r[2], 0.0, -r[0]], [-r[1], r[0], 0.0]])


def rot_z(psi: float) -> np.ndarray:
    c, s = np.cos(psi), np.sin(psi)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def rpy_from_mat(r: np.ndarray) -> np.ndarray:
    """(roll, pitch, yaw), ZYX Euler angles of a rotation matrix: R = Rz(yaw) Ry(pitch) Rx(roll)."""
    return np.array(
        [np.arctan2(r[2, 1], r[2, 2]), -np.arcsin(np.clip(r[2, 0], -1.0, 1.0)), np.arctan2(r[1, 0], r[0, 0])]
    )


@dataclass
class SrbModel:
    """Single rigid body: mass, inertia about the COM in the base frame, the COM's offset from the base origin."""

    mass_kg: float
    inertia_body: np.ndarray  # (3, 3) kg m^2, about the COM, base frame
    com_in_base: np.ndarray  # (3,) m, COM minus base origin, base frame

    @classmethod
    def from_model(cls, model: mujoco.MjModel, spec: RobotSpec) -> SrbModel:
        """The whole robot lumped at its home pose (the legs' inertia folded in by the parallel-axis theorem)."""
        d = mujoco.MjData(model)
        mujoco.mj_resetDataKeyframe(model, d, model.key(spec.home_keyframe).id)
        d.qpos[:3] = 0.0
        d.qpos[3:7] = (1.0, 0.0, 0.0, 0.0)  # base level at the origin: world frame == base frame
        mujoco.mj_forward(model, d)
        base = model.body(spec.base_body).id
        bodies = [b for b in range(1, model.nbody) if model.body_rootid[b] == model.body_rootid[base]]
        mass = float(sum(model.body_mass[b] for b in bodies))
        com = sum(model.body_mass[b] * d.xipos[b] for b in bodies) / mass
        inertia = np.zeros((3, 3))
        for b in bodies:
            rot = d.ximat[b].reshape(3, 3)
            r = d.xipos[b] - com
            inertia += rot @ np.diag(model.body_inertia[b]) @ rot.T
            inertia += model.body_mass[b] * (r @ r * np.eye(3) - np.outer(r, r))
        return cls(mass, inertia, com - d.xpos[base])

    def dynamics(self, psi: float) -> np.ndarray:
        """A (13, 13) of x_dot = A x + B u, linearized about yaw psi."""
        a = np.zeros((NX, NX))
        a[0:3, 6:9] = rot_z(psi).T
        a[3:6, 9:12] = np.eye(3)
        a[11, 12] = -1.0
        return a

    def input_matrix(self, psi: float, r_feet: np.ndarray) -> np.ndarray:
        """B (13, 3 nfeet): the effect of each foot force; r_feet (nfeet, 3) feet minus COM, world frame."""
        rz = rot_z(psi)
        inv_iw = rz @ self.inertia_inv @ rz.T
        n = len(r_feet)
        sk = np.zeros((n, 3, 3))  # [r_i]x
        sk[:, 0, 1], sk[:, 0, 2], sk[:, 1, 2] = -r_feet[:, 2], r_feet[:, 1], -r_feet[:, 0]
        sk[:, 1, 0], sk[:, 2, 0], sk[:, 2, 1] = r_feet[:, 2], -r_feet[:, 1], r_feet[:, 0]
        b = np.zeros((NX, 3 * n))
        b[6:9] = (inv_iw @ sk).transpose(1, 0, 2).reshape(3, 3 * n)
        b[9:12] = np.tile(np.eye(3) / self.mass_kg, n)
        return b

    @property
    def inertia_inv(self) -> np.ndarray:
        if getattr(self, "_inertia_inv", None) is None:
            self._inertia_inv = np.linalg.inv(self.inertia_body)
        return self._inertia_inv


@dataclass
class QpProblem:
    """1/2 u^T P u + q^T u subject to G u <= h, lb <= u <= ub, in the stance forces only."""

    P: np.ndarray  # (nu, nu)
    q: np.ndarray  # (nu,)
    G: np.ndarray  # (4 nu / 3, nu) friction pyramid
    h: np.ndarray
    lb: np.ndarray
    ub: np.ndarray
    columns: np.ndarray  # (nu,) index of each variable in the full force vector (horizon x nfeet x 3)
    # the uncondensed data, kept for the reference formulation in the benchmark
    Sx: np.ndarray = field(repr=False, default=None)
    Su: np.ndarray = field(repr=False, default=None)
    x0: np.ndarray = field(repr=False, default=None)
    x_ref: np.ndarray = field(repr=False, default=None)
    weights: np.ndarray = field(repr=False, default=None)
    alpha: float = 0.0


def condensed_qp(
    model: SrbModel,
    cfg: MpcConfig,
    x0: np.ndarray,
    x_ref: np.ndarray,
    r_feet: np.ndarray,
    contact: np.ndarray,
    psi_ref: np.ndarray,
) -> QpProblem:
    """The MPC as one dense QP in the stance forces (see the module docstring).

    x0 (13,) now; x_ref (N, 13) the reference for x_1..x_N; r_feet (N, nfeet, 3) feet minus COM at each step;
    contact (N, nfeet) bool; psi_ref (N,) reference yaw per step (for the world-frame inertia).
    """
    n, dt = cfg.horizon, cfg.mpc_dt_s
    nfeet = contact.shape[1]
    ac = model.dynamics(float(x0[2]))
    a = np.eye(NX) + ac * dt + ac @ ac * (0.5 * dt * dt)  # A_d, exact (A^3 = 0)
    powers = np.empty((n + 1, NX, NX))  # A_d^k
    powers[0] = np.eye(NX)
    for k in range(1, n + 1):
        powers[k] = a @ powers[k - 1]
    sx = powers[1:].reshape(n * NX, NX)
    su = np.zeros((n * NX, n * 3 * nfeet))
    for j in range(n):
        bc = model.input_matrix(float(psi_ref[j]), r_feet[j])
        bd = bc * dt + ac @ bc * (0.5 * dt * dt)
        # rows of x_{j+1} .. x_N get A^0 B_j .. A^(N-1-j) B_j
        su[j * NX :, j * 3 * nfeet : (j + 1) * 3 * nfeet] = (powers[: n - j] @ bd).reshape((n - j) * NX, 3 * nfeet)
    cols = np.flatnonzero(np.repeat(contact.reshape(-1), 3))
    su_s = su[:, cols]
    w = np.tile(np.append(np.asarray(cfg.weights, dtype=float), 0.0), n)  # (N 13,) no weight on g
    qsu = su_s * w[:, None]
    err = sx @ x0 - x_ref.reshape(-1)
    nu = len(cols)
    p = 2.0 * (su_s.T @ qsu + cfg.alpha * np.eye(nu))
    q = 2.0 * (qsu.T @ err)
    m = cfg.mu
    pyramid = friction_rows(m, cfg.cone)
    g = np.kron(np.eye(nu // 3), pyramid)
    h = np.zeros(g.shape[0])
    fmax_xy = m * cfg.f_max_n
    lb = np.tile([-fmax_xy, -fmax_xy, cfg.f_min_n], nu // 3)
    ub = np.tile([fmax_xy, fmax_xy, cfg.f_max_n], nu // 3)
    return QpProblem(p, q, g, h, lb, ub, cols, sx, su, x0, x_ref, w, cfg.alpha)


def friction_rows(mu: float, cone: str = "diamond") -> np.ndarray:
    """(4, 3) rows a of a f <= 0 for one foot force f: the diamond |fx| + |fy| <= mu fz, or the box."""
    if cone == "diamond":
        return np.array([[1.0, 1.0, -mu], [1.0, -1.0, -mu], [-1.0, 1.0, -mu], [-1.0, -1.0, -mu]])
    if cone == "box":
        return np.array([[1.0, 0.0, -mu], [-1.0, 0.0, -mu], [0.0, 1.0, -mu], [0.0, -1.0, -mu]])
    raise ValueError(f"MpcConfig.cone must be 'diamond' or 'box', got {cone!r}")


def solve_forces(problem: QpProblem, solver: str = "daqp", **settings: float) -> np.ndarray | None:
    """The QP's stance forces (nu,), or None when the solver finds no solution."""
    return qpsolvers.solve_qp(
        problem.P,
        problem.q,
        problem.G,
        problem.h,
        lb=problem.lb,
        ub=problem.ub,
        solver=solver,
        **settings,
    )


# ---------------------------------------------------------------------------------------------------- controller


class ConvexMpcController:
    """Trotting quadruped: state estimator, convex MPC for the stance forces, Raibert footholds, swing-leg joint PD.

    `controller(reading, command)` with command = (vx, vy, yaw rate) in the heading frame. Runs every
    `control_dt_s`; re-solves the MPC every `mpc_dt_s`. After each call, `timing` holds this tick's seconds
    (`cycle_s`, and `qp_s` when the MPC was solved, else 0), and `forces` the current ground forces (nfeet, 3).
    """

    def __init__(self, spec: RobotSpec, cfg: ConvexMpcConfig | None = None, model: mujoco.MjModel | None = None):
        if spec.kind != "quadruped":
            raise ValueError(f"ConvexMpcController drives quadrupeds; {spec.name} is a {spec.kind}")
        self.spec = spec
        self.cfg = cfg = cfg or ConvexMpcConfig()
        self.control_dt_s = cfg.control_dt_s
        ratio = cfg.mpc.mpc_dt_s / cfg.control_dt_s
        if abs(ratio - round(ratio)) > 1e-6 or round(ratio) < 1:
            raise ValueError(
                f"mpc_dt_s ({cfg.mpc.mpc_dt_s}) must be a whole multiple of control_dt_s ({cfg.control_dt_s}): "
                f"the MPC is re-solved every that many ticks"
            )
        if cfg.mpc.solver not in qpsolvers.available_solvers:
            raise ValueError(
                f"QP solver {cfg.mpc.solver!r} is not installed; available: {qpsolvers.available_solvers} "
                f"(pip install footfall[baselines] brings daqp)"
            )
        self.ticks_per_solve = int(round(ratio))
        self.model = model if model is not None else spec.build_mjspec().compile()
        self.estimator = StateEstimator(spec, self.model, cfg.estimator)
        self.srb = SrbModel.from_model(self.model, spec)
        self.nfeet = len(spec.feet)
        self.gait = Gait(cfg.gait, self.nfeet)
        self.nj = spec.num_joints
        # per foot, the three positions of its joints in the policy joint order
        dof_to_joint = {int(d): i for i, d in enumerate(spec.joint_dof_adr(self.model))}
        self.leg_joints = [np.array([dof_to_joint[int(d)] for d in dofs]) for dofs in self.estimator.leg_dofs]
        # nominal foot xy under each hip, base frame, from the home pose
        d = mujoco.MjData(self.model)
        mujoco.mj_resetDataKeyframe(self.model, d, self.model.key(spec.home_keyframe).id)
        d.qpos[:3], d.qpos[3:7] = 0.0, (1.0, 0.0, 0.0, 0.0)
        mujoco.mj_kinematics(self.model, d)
        self.foot_nominal = d.site_xpos[self.estimator.foot_sites].copy()
        self.foot_nominal[:, 2] = 0.0
        # leg IK: a private MjData, base at the origin with the estimated orientation (world-aligned frame, as the
        # estimator's foot_rel), joints at the IK guesses
        self.ik_data = mujoco.MjData(self.model)
        self.ik_qadr = spec.joint_qpos_adr(self.model)
        self.ik_dadr = spec.joint_dof_adr(self.model)
        self._ik_jac = np.zeros((3, self.model.nv))
        self._rne = np.zeros(self.model.nv)
        lim = np.asarray(spec.position_limits, dtype=float)
        self.q_lo, self.q_hi = lim[:, 0], lim[:, 1]
        self.robot_truth = None  # a MujocoRobot, when cfg.use_truth
        self.reset(None)

    # ------------------------------------------------------------------ interface

    def reset(self, reading: RobotReading | None) -> None:
        self.t = 0.0
        self.tick = 0
        self.cmd = np.zeros(3)  # slew-limited command
        self.integral = np.zeros(3)  # added to the command in the MPC reference
        self.forces = np.zeros((self.nfeet, 3))
        self.was_contact = np.ones(self.nfeet, bool)
        self.liftoff = np.zeros((self.nfeet, 3))  # world (odometry) position of each foot at lift-off
        self.q_swing = np.zeros(self.nj)  # last IK solution of each swing leg (its warm start)
        self.yaw_ref = 0.0
        self.timing = {"cycle_s": 0.0, "qp_s": 0.0}
        self.solves = 0
        self.failures = 0
        self.last_qp: QpProblem | None = None
        self.estimator.robot_truth = self.robot_truth if self.cfg.use_truth else None
        if reading is not None:
            if self.cfg.use_truth and self.robot_truth is None:
                raise ValueError(
                    "ConvexMpcConfig(use_truth=True) needs the simulated robot: set controller.robot_truth = "
                    "<MujocoRobot> before the runtime enters RUN (debugging only; benchmarks use the estimator)"
                )
            s = self.estimator.reset(reading)
            self.yaw_ref = float(rpy_from_mat(s.rot)[2])
            self.liftoff = s.pos + s.foot_rel

    def __call__(self, reading: RobotReading, command: np.ndarray) -> JointCommand:
        t_start = time.perf_counter()
        cfg = self.cfg
        dt = cfg.control_dt_s
        s = self.estimator.update(reading, self._trust())
        # slew-limit the command (heading frame: vx, vy, yaw rate)
        step = np.asarray(cfg.legs.max_accel) * dt
        self.cmd += np.clip(np.asarray(command[:3], dtype=float) - self.cmd, -step, step)
        # integral action on the tracking error (heading frame): the single-rigid-body model leaves out the swing
        # legs' momentum and the feet's impacts, which drag the robot a few percent behind the command
        yaw = float(np.arctan2(s.rot[1, 0], s.rot[0, 0]))
        v_heading = rot_z(yaw).T @ s.lin_vel
        err = self.cmd - np.array([v_heading[0], v_heading[1], s.ang_vel[2]])
        lim = np.asarray(cfg.legs.velocity_integral_limit)
        self.integral = np.clip(self.integral + np.asarray(cfg.legs.velocity_ki) * err * dt, -lim, lim)
        contact = self.gait.contact(self.t)
        qp_s = 0.0
        if self.tick % self.ticks_per_solve == 0:
            self._solve(s)
            qp_s = self.qp_s
        out = self._legs(reading, s, contact)
        self.was_contact = contact
        self.t += dt
        self.tick += 1
        self.timing["qp_s"] = qp_s
        self.timing["cycle_s"] = time.perf_counter() - t_start
        return out

    def _trust(self) -> np.ndarray:
        """Per foot weight of its kinematics in the estimator: 0 in swing, rising over the first
        `estimator_trust_ramp` of stance and falling over its last (a landing or lifting foot still moves)."""
        ramp = self.cfg.legs.estimator_trust_ramp
        ph = self.gait.phase(self.t) / self.gait.cfg.duty  # (nfeet,) 0..1 through stance, > 1 in swing
        if ramp <= 0:
            return (ph < 1.0).astype(float)
        return np.clip(np.minimum(ph, 1.0 - ph) / ramp, 0.0, 1.0) * (ph < 1.0) + 1e-3 * (ph < 1.0)

    # ------------------------------------------------------------------ MPC

    def reference(self, s: BaseState) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(x0 (13,), x_ref (N, 13), psi_ref (N,)) from the estimate and the slew-limited command."""
        mc = self.cfg.mpc
        n, dt = mc.horizon, mc.mpc_dt_s
        rpy = rpy_from_mat(s.rot)
        com = s.pos + s.rot @ self.srb.com_in_base
        com_vel = s.lin_vel + np.cross(s.ang_vel, s.rot @ self.srb.com_in_base)
        x0 = np.concatenate([rpy, com, s.ang_vel, com_vel, [G]])
        # the yaw reference follows the yaw rate command from where the robot heads now (no accumulated error)
        yaw = rpy[2]
        ts = (np.arange(n) + 1.0) * dt
        cmd = self.cmd + self.integral
        psi_ref = yaw + cmd[2] * ts
        v_heading = np.array([cmd[0], cmd[1], 0.0])
        x_ref = np.zeros((n, NX))
        x_ref[:, 2] = psi_ref
        # COM path: integrate the commanded body velocity, turning with the commanded yaw rate
        psi_mid = yaw + cmd[2] * (ts - 0.5 * dt)
        vel = np.stack([np.cos(psi_mid) * v_heading[0] - np.sin(psi_mid) * v_heading[1],
                        np.sin(psi_mid) * v_heading[0] + np.cos(psi_mid) * v_heading[1]], axis=1)  # fmt: skip
        x_ref[:, 3:5] = com[:2] + np.cumsum(vel, axis=0) * dt
        x_ref[:, 5] = self.cfg.legs.body_height_m + self.srb.com_in_base[2]
        x_ref[:, 8] = cmd[2]
        x_ref[:, 9:11] = vel
        x_ref[:, 12] = G
        return x0, x_ref, psi_ref

    def _solve(self, s: BaseState) -> None:
        mc = self.cfg.mpc
        n, dt = mc.horizon, mc.mpc_dt_s
        x0, x_ref, psi_ref = self.reference(s)
        contact = self.gait.schedule(self.t, dt, n)
        # feet relative to the COM at each step: a standing foot stays where it is; a foot that lands within the
        # horizon stands on its planned foothold; both relative to the reference COM of that step
        feet_world = s.pos + s.foot_rel  # (nfeet, 3)
        r = np.empty((n, self.nfeet, 3))
        stand_now = self.gait.contact(self.t)
        footholds: dict[tuple[int, float], np.ndarray] = {}  # one per foot and touchdown
        for j in range(n):
            t_j = self.t + (j + 0.5) * dt
            for i in range(self.nfeet):
                if stand_now[i] and contact[: j + 1, i].all():
                    p = feet_world[i]
                else:
                    key = (i, round(self._next_touchdown(i, t_j), 6))
                    if key not in footholds:
                        footholds[key] = self._foothold(s, i, t_j)
                    p = footholds[key]
                r[j, i] = p - x_ref[j, 3:6]
        r[:, :, 2] = np.minimum(r[:, :, 2], -0.05)  # the feet are below the COM (guards a bad estimate)
        problem = condensed_qp(self.srb, mc, x0, x_ref, r, contact, psi_ref)
        t0 = time.perf_counter()
        u = solve_forces(problem, mc.solver, **dict(mc.solver_settings))
        self.qp_s = time.perf_counter() - t0
        self.solves += 1
        self.last_qp = problem
        full = np.zeros(n * self.nfeet * 3)
        if u is None:  # keep the robot up: share its weight among the standing feet
            self.failures += 1
            stance = contact[0]
            full[: self.nfeet * 3].reshape(self.nfeet, 3)[stance, 2] = self.srb.mass_kg * G / max(1, stance.sum())
        else:
            full[problem.columns] = u
        self.forces = full[: self.nfeet * 3].reshape(self.nfeet, 3).copy()

    # ------------------------------------------------------------------ legs

    def _foothold(self, s: BaseState, i: int, t_touch: float) -> np.ndarray:
        """World (odometry) foothold of foot i for a touchdown at gait time >= t_touch (Raibert heuristic):
        under the hip where the hip will be at mid-stance, plus a correction for the velocity error."""
        lc = self.cfg.legs
        dt_td = max(0.0, self._next_touchdown(i, t_touch) - self.t)
        yaw = float(rpy_from_mat(s.rot)[2])
        yaw_td = yaw + self.cmd[2] * (dt_td + 0.5 * self.gait.stance_s)
        v_cmd = rot_z(yaw) @ np.array([self.cmd[0], self.cmd[1], 0.0])
        hip_td = s.pos + v_cmd * (dt_td + 0.5 * self.gait.stance_s) + rot_z(yaw_td) @ self.foot_nominal[i]
        # Raibert: land half a stance ahead of where the hip goes (symmetric stance) plus k (v - v_cmd)
        offset = lc.raibert_k * (s.lin_vel - v_cmd)
        offset[2] = 0.0
        offset = np.clip(offset, -lc.max_foothold_offset_m, lc.max_foothold_offset_m)
        p = hip_td + offset
        p[2] = self.cfg.estimator.foot_radius_m
        return p

    def _next_touchdown(self, i: int, t: float) -> float:
        """Gait time of foot i's touchdown at or after t (the start of its next stance)."""
        period = self.gait.cfg.period_s
        ph = (t / period + self.gait.offsets[i]) % 1.0
        if ph < self.gait.cfg.duty:  # standing at t: the touchdown was at the stance start
            return t - ph * period
        return t + (1.0 - ph) * period

    def _legs(self, reading: RobotReading, s: BaseState, contact: np.ndarray) -> JointCommand:
        lc = self.cfg.legs
        nj = self.nj
        q_des = reading.joint_pos.copy()
        dq_des = np.zeros(nj)
        kp = np.zeros(nj)
        kd = np.zeros(nj)
        tau = np.zeros(nj)
        progress = self.gait.swing_progress(self.t)
        swing_s = self.gait.swing_s
        swing_targets: list[tuple[int, np.ndarray]] = []
        for i in range(self.nfeet):
            js = self.leg_joints[i]
            jac = s.foot_jac[i]  # (3, 3) world-aligned, d foot / d q_leg
            foot = s.pos + s.foot_rel[i]
            if contact[i]:
                tau[js] = (
                    -jac.T @ self.forces[i]
                )  # the ground pushes the body with f: the leg pushes the ground with -f
                kd[js] = lc.stance_joint_kd
                if lc.stance_joint_kd > 0:
                    v_rel = -(s.lin_vel + np.cross(s.ang_vel, s.foot_rel[i]))  # foot at rest in the world
                    dq_des[js] = _solve3(jac, v_rel - (s.foot_vel_rel[i] - jac @ reading.joint_vel[js]))
                continue
            if self.was_contact[i]:  # lift-off now: the IK starts from the measured leg
                self.liftoff[i] = foot
                self.q_swing[js] = reading.joint_pos[js]
            sp = float(progress[i])
            target = self._foothold(s, i, self.t)
            p0 = self.liftoff[i]
            # xy: smoothstep from lift-off to the foothold; z: 64 s^3 (1-s)^3 bump to the swing height
            b = sp * sp * (3.0 - 2.0 * sp)
            db = 6.0 * sp * (1.0 - sp) / swing_s
            p_des = p0 + b * (target - p0)
            v_des = db * (target - p0)
            z0 = target[2]
            bump = 64.0 * sp**3 * (1.0 - sp) ** 3
            dbump = 64.0 * (3.0 * sp**2 * (1.0 - sp) ** 3 - 3.0 * sp**3 * (1.0 - sp) ** 2) / swing_s
            p_des[2] = z0 + (p0[2] - z0) * (1.0 - b) + lc.swing_height_m * bump
            v_des[2] = -(p0[2] - z0) * db + lc.swing_height_m * dbump
            swing_targets.append((i, p_des - s.pos))
            # joint velocity that moves the foot at v_des given the base motion: J dq = v_des - v - w x r
            v_rel = v_des - s.lin_vel - (s.foot_vel_rel[i] - jac @ reading.joint_vel[js])
            dq_des[js] = _solve3(jac, v_rel)
            kp[js] = lc.swing_joint_kp
            kd[js] = lc.swing_joint_kd
        if swing_targets:
            tau_g = self._leg_ik(s, swing_targets)
            for i, _ in swing_targets:
                js = self.leg_joints[i]
                q_des[js] = self.q_swing[js]
                if lc.swing_gravity_ff:
                    tau[js] = tau_g[js]
        return JointCommand(q_des, dq_des, kp, kd, tau)

    def _leg_ik(self, s: BaseState, targets: list[tuple[int, np.ndarray]]) -> np.ndarray:
        """Joint positions (into `q_swing`) that put each foot i at its target (foot minus base origin, world-aligned
        frame) at the estimated base orientation: damped Newton steps from the last solution, inside the joint
        ranges. Returns the joints' gravity torques (nj,) at the solution (what holds a swing leg up)."""
        m, d = self.model, self.ik_data
        d.qpos[:3] = 0.0
        mujoco.mju_mat2Quat(d.qpos[3:7], s.rot.ravel())
        d.qvel[:] = 0.0
        for it in range(self.cfg.legs.ik_iterations + 1):
            d.qpos[self.ik_qadr] = self.q_swing
            mujoco.mj_kinematics(m, d)
            mujoco.mj_comPos(m, d)
            if it == self.cfg.legs.ik_iterations:
                break
            for i, rel in targets:
                js = self.leg_joints[i]
                sid = self.estimator.foot_sites[i]
                mujoco.mj_jacSite(m, d, self._ik_jac, None, sid)
                jac = self._ik_jac[:, self.estimator.leg_dofs[i]]
                step = _solve3(jac, rel - d.site_xpos[sid])
                step *= min(1.0, 0.3 / max(1e-9, float(np.abs(step).max())))  # at most 0.3 rad per Newton step
                self.q_swing[js] = np.clip(self.q_swing[js] + step, self.q_lo[js], self.q_hi[js])
        tau_g = np.zeros(self.nj)
        if self.cfg.legs.swing_gravity_ff:
            mujoco.mj_rne(m, d, 0, self._rne)  # qvel = 0: gravity only
            tau_g = self._rne[self.ik_dadr].copy()
        return tau_g


def _solve3(jac: np.ndarray, v: np.ndarray) -> np.ndarray:
    """J^-1 v, damped near a singular leg (stretched knee)."""
    return np.linalg.solve(jac.T @ jac + 1e-4 * np.eye(3), jac.T @ v)
