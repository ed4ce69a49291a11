"""Arm inverse kinematics on MuJoCo's Jacobians, and a reaching controller built on it.

The solver is damped least squares with box constraints, iterated (Levenberg-Marquardt):

    e   = [p* - p ; log(R* R^T)]                  position and orientation error, world frame (m, rad)
    dq  = argmin 1/2 |J dq - e|^2 + 1/2 lambda |dq|^2
          s.t.  max(q_lo - q, -s) <= dq <= min(q_hi - q, s)
    lambda = lambda_e |e|^2 + lambda_min          (the error-dependent damping of Sugihara 2011, "Solvability-
                                                   unconcerned inverse kinematics by the Levenberg-Marquardt
                                                   method": large far from the target, vanishing at it)

The QP is solved with qpsolvers (daqp by default). Most steps are interior: the unconstrained minimizer, one
Cholesky solve, already satisfies the bounds, and is then the QP's solution; only steps that hit a bound go to the
solver. Every iterate stays inside the joint ranges, so a solution never violates a limit.

When an attempt stalls (a local minimum, or a target at the workspace edge that the damped steps approach only
slowly) the solver restarts from a random configuration inside the limits, seeded, up to `restarts` times.

`ReachController` runs the solver each control tick from the measured joint positions (warm started from its last
solution) and sends the result as position targets with the robot's PD gains and gravity compensation as
feed-forward torque, behind the same interface as an exported policy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import mujoco
import numpy as np

from footfall.deploy.interface import JointCommand, RobotReading

Array = np.ndarray


@dataclass(frozen=True)
class IKConfig:
    pos_tol_m: float = 1e-3  # success: position error at most this
    rot_tol_rad: float = 0.01  # and orientation error at most this
    max_iters: int = 60  # per attempt
    restarts: int = 20  # further attempts from random configurations
    lambda_e: float = 1e-3  # error-dependent damping (Sugihara 2011 uses the squared error, scaled)
    lambda_min: float = 1e-6  # floor of the damping, keeps J^T J + lambda I well conditioned at singularities
    max_step_rad: float = 0.5  # largest joint change per iteration (trust region)
    stall_ratio: float = 0.999  # an attempt stalls when 20 iterations improve the error by less than this factor
    solver: str = "daqp"  # any solver qpsolvers knows that takes box bounds


@dataclass
class IKResult:
    q: Array
    success: bool
    pos_err_m: float
    rot_err_rad: float
    iterations: int  # over all attempts
    attempts: int


def _quat_conj(q: Array) -> Array:
    return np.array([q[0], -q[1], -q[2], -q[3]])


class IKSolver:
    """IK for one frame (a site) of a MuJoCo model over a set of hinge/slide joints.

    `joints`: joint names (default: every hinge and slide joint of the model). Joints without a range are
    bounded to [-pi, pi] (hinges) so that random restarts have somewhere to sample from."""

    def __init__(
        self,
        model: mujoco.MjModel,
        site: str,
        joints: list[str] | tuple[str, ...] | None = None,
        cfg: IKConfig | None = None,
        seed: int = 0,
    ):
        import qpsolvers  # the baselines extra: pip install -e ".[baselines]"

        self.cfg = cfg or IKConfig()
        if self.cfg.solver not in qpsolvers.available_solvers:
            raise ValueError(
                f"QP solver {self.cfg.solver!r} is not installed (available: {qpsolvers.available_solvers}); "
                f'pip install -e ".[baselines]" installs daqp'
            )
        self._solve_qp = qpsolvers.solve_qp
        self.model = model
        self.data = mujoco.MjData(model)
        sid = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SITE, site)
        if sid < 0:
            sites = [model.site(i).name for i in range(model.nsite)]
            raise ValueError(f"site {site!r} not in the model; its sites: {sites}")
        self.site = sid
        if joints is None:
            movable = (int(mujoco.mjtJoint.mjJNT_HINGE), int(mujoco.mjtJoint.mjJNT_SLIDE))
            ids = [j for j in range(model.njnt) if int(model.jnt_type[j]) in movable]
        else:
            ids = []
            for name in joints:
                j = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, name)
                if j < 0:
                    names = [model.joint(i).name for i in range(model.njnt)]
                    raise ValueError(f"joint {name!r} not in the model; its joints: {names}")
                ids.append(j)
        if not ids:
            raise ValueError("IK needs at least one hinge or slide joint; the model has none")
        self.joint_ids = np.array(ids, dtype=int)
        self.qadr = model.jnt_qposadr[self.joint_ids]
        self.dadr = model.jnt_dofadr[self.joint_ids]
        n = len(ids)
        self.lo = np.where(model.jnt_limited[self.joint_ids], model.jnt_range[self.joint_ids, 0], -math.pi)
        self.hi = np.where(model.jnt_limited[self.joint_ids], model.jnt_range[self.joint_ids, 1], math.pi)
        self.rng = np.random.default_rng(seed)
        self._jacp = np.zeros((3, model.nv))
        self._jacr = np.zeros((3, model.nv))
        self._J = np.zeros((6, n))
        self._eye = np.eye(n)
        self._quat = np.zeros(4)
        self._qerr = np.zeros(4)
        self._rot = np.zeros(3)

    @property
    def num_joints(self) -> int:
        return len(self.joint_ids)

    # ------------------------------------------------------------------ kinematics

    def forward(self, q: Array) -> tuple[Array, Array]:
        """Site position (3,) and orientation quaternion wxyz (4,) at joint positions q."""
        self.data.qpos[self.qadr] = q
        mujoco.mj_kinematics(self.model, self.data)
        mujoco.mju_mat2Quat(self._quat, self.data.site_xmat[self.site])
        return self.data.site_xpos[self.site].copy(), self._quat.copy()

    def _error(self, q: Array, pos: Array, quat: Array | None) -> tuple[Array, float, float]:
        """Error vector (6,) or (3,), its position and orientation norms; leaves the kinematics at q."""
        d = self.data
        d.qpos[self.qadr] = q
        mujoco.mj_kinematics(self.model, d)
        ep = pos - d.site_xpos[self.site]
        if quat is None:
            return ep, float(np.linalg.norm(ep)), 0.0
        mujoco.mju_mat2Quat(self._quat, d.site_xmat[self.site])
        mujoco.mju_mulQuat(self._qerr, quat, _quat_conj(self._quat))  # R* R^T as a quaternion
        mujoco.mju_quat2Vel(self._rot, self._qerr, 1.0)  # its rotation vector (world frame)
        return np.concatenate([ep, self._rot]), float(np.linalg.norm(ep)), float(np.linalg.norm(self._rot))

    def _jacobian(self, rows: int) -> Array:
        """d(site position, site rotation)/dq at the current kinematics (MuJoCo's mj_jacSite: measured faster
        here than assembling it in numpy from the joint axes and anchors)."""
        mujoco.mj_comPos(self.model, self.data)
        mujoco.mj_jacSite(self.model, self.data, self._jacp, self._jacr if rows == 6 else None, self.site)
        self._J[:3] = self._jacp[:, self.dadr]
        if rows == 6:
            self._J[3:] = self._jacr[:, self.dadr]
            return self._J
        return self._J[:3]

    # ------------------------------------------------------------------ solving

    def step(self, q: Array, e: Array) -> Array:
        """One damped, bounded step from q for error e (the kinematics must be at q)."""
        c = self.cfg
        J = self._jacobian(len(e))
        lam = c.lambda_e * float(e @ e) + c.lambda_min
        H = J.T @ J + lam * self._eye
        g = J.T @ e
        lb = np.maximum(self.lo - q, -c.max_step_rad)
        ub = np.minimum(self.hi - q, c.max_step_rad)
        dq = np.linalg.solve(H, g)
        if np.all(dq >= lb) and np.all(dq <= ub):
            return dq  # interior: the QP's solution is the unconstrained one
        dq = self._solve_qp(H, -g, lb=lb, ub=ub, solver=c.solver)
        if dq is None:  # (never expected for a strictly convex box QP; fall back to the clipped step)
            dq = np.clip(np.linalg.solve(H, g), lb, ub)
        return dq

    def solve(self, pos: Array, quat: Array | None = None, q0: Array | None = None) -> IKResult:
        """Joint positions that put the site at `pos` (world, m) with orientation `quat` (wxyz; None: position
        only), starting from `q0` (default: the middle of the ranges), restarting from random configurations."""
        c = self.cfg
        pos = np.asarray(pos, dtype=float)
        if quat is not None:
            quat = np.asarray(quat, dtype=float) / np.linalg.norm(quat)
        q = np.clip(np.asarray(q0, dtype=float), self.lo, self.hi) if q0 is not None else 0.5 * (self.lo + self.hi)
        best = None
        iters = 0
        for attempt in range(c.restarts + 1):
            if attempt > 0:
                q = self.rng.uniform(self.lo, self.hi)
            history = []
            for _ in range(c.max_iters):
                e, pe, re = self._error(q, pos, quat)
                if best is None or pe + re < best[1] + best[2]:
                    best = (q.copy(), pe, re)
                if pe <= c.pos_tol_m and re <= c.rot_tol_rad:
                    return IKResult(q, True, pe, re, iters, attempt + 1)
                history.append(pe + 0.1 * re)
                if len(history) > 20 and history[-1] > c.stall_ratio * history[-21]:
                    break  # stalled: restart
                q = q + self.step(q, e)
                iters += 1
            else:
                e, pe, re = self._error(q, pos, quat)
                if pe <= c.pos_tol_m and re <= c.rot_tol_rad:
                    return IKResult(q, True, pe, re, iters, attempt + 1)
        q, pe, re = best
        return IKResult(q, False, pe, re, iters, c.restarts + 1)

    def random_reachable(self, n: int, rng: np.random.Generator) -> tuple[Array, Array, Array]:
        """n targets the arm can reach: forward kinematics of configurations drawn uniformly inside the ranges.
        Returns (positions (n,3), quaternions (n,4), the configurations (n,nj))."""
        qs = rng.uniform(self.lo, self.hi, size=(n, self.num_joints))
        ps, rs = np.zeros((n, 3)), np.zeros((n, 4))
        for i, q in enumerate(qs):
            ps[i], rs[i] = self.forward(q)
        return ps, rs, qs


# ---------------------------------------------------------------- the reaching controller


@dataclass(frozen=True)
class ReachConfig:
    control_dt_s: float = 0.02  # the rate of the arm policy (50 Hz)
    iters_per_tick: int = 8  # IK iterations per tick, warm started from the last solution
    max_joint_speed: float = 1.5  # rad/s: targets move toward the IK solution at most this fast
    gravity_compensation: bool = True


class ReachController:
    """Tracks a target given as the command: position (3,) in the arm's base frame, or position + quaternion (7,).

    Each tick: IK from the last solution (or the measured joints on the first tick) toward the target, then joint
    position targets moved toward it at `max_joint_speed`, with the robot's PD gains and gravity compensation
    as feed-forward torque (from the robot's own model). Same interface as an exported policy."""

    def __init__(self, robot, cfg: ReachConfig | None = None, ik: IKConfig | None = None):  # noqa: ANN001 (RobotSpec)
        self.spec = robot
        self.cfg = cfg or ReachConfig()
        self.control_dt_s = self.cfg.control_dt_s
        if robot.end_effector_site is None:
            raise ValueError(f"robot {robot.name!r} has no end_effector_site in its spec file; IK needs one")
        model = robot.build_mjspec().compile()
        self.ik = IKSolver(model, robot.end_effector_site, list(robot.joint_names), ik)
        self.kp = np.asarray(robot.kp, dtype=float)
        self.kd = np.asarray(robot.kd, dtype=float)
        base = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, robot.base_body)
        mujoco.mj_kinematics(model, self.ik.data)
        self.base_pos = self.ik.data.xpos[base].copy()
        self.base_quat = self.ik.data.xquat[base].copy()
        self.gdata = mujoco.MjData(model)
        self.solution: Array | None = None
        self.target_q: Array | None = None
        self.last_result: IKResult | None = None

    def reset(self, reading: RobotReading | None) -> None:
        self.solution = None if reading is None else reading.joint_pos.copy()
        self.target_q = self.solution

    def _world_target(self, command: Array) -> tuple[Array, Array | None]:
        p = np.zeros(3)
        mujoco.mju_rotVecQuat(p, np.asarray(command[:3], dtype=float), self.base_quat)
        p += self.base_pos
        if len(command) >= 7:
            q = np.zeros(4)
            mujoco.mju_mulQuat(q, self.base_quat, np.asarray(command[3:7], dtype=float))
            return p, q
        return p, None

    def gravity(self, q: Array) -> Array:
        """Joint torques that hold the arm still at q, less what the robot already compensates itself (bodies
        with `gravcomp` in the model, as the Panda's firmware does on the real arm)."""
        d, m = self.gdata, self.ik.model
        d.qpos[self.ik.qadr] = q
        d.qvel[:] = 0.0
        mujoco.mj_forward(m, d)
        return (d.qfrc_bias - d.qfrc_gravcomp)[self.ik.dadr]

    def __call__(self, reading: RobotReading, command: Array) -> JointCommand:
        ik, c = self.ik, self.cfg
        if self.solution is None:
            self.reset(reading)
        pos, quat = self._world_target(command)
        q = self.solution
        for _ in range(c.iters_per_tick):
            e, pe, re = ik._error(q, pos, quat)
            if pe <= ik.cfg.pos_tol_m * 0.1 and re <= ik.cfg.rot_tol_rad * 0.1:
                break
            q = q + ik.step(q, e)
        self.solution = q
        step = c.max_joint_speed * c.control_dt_s
        self.target_q = self.target_q + np.clip(q - self.target_q, -step, step)
        tau = self.gravity(reading.joint_pos) if c.gravity_compensation else np.zeros(ik.num_joints)
        nj = ik.num_joints
        return JointCommand(q=self.target_q.copy(), dq=np.zeros(nj), kp=self.kp.copy(), kd=self.kd.copy(), tau=tau)
