"""Biped ZMP walking: footstep planner, cart-table preview control, swing trajectories, whole-body leg IK.

The pattern (Kajita et al. 2003, "Biped Walking Pattern Generation by using Preview Control of Zero-Moment Point",
ICRA 2003) is generated online, one control tick at a time, in the controller's own *plan frame* (x forward, z up,
origin on the ground under the pelvis at `reset`):

1. Footstep planner. A virtual body pose (x, y, yaw) advances by the velocity command over each step period T;
   step k puts its foot at that pose plus half the step width to the foot's side. Consecutive footsteps therefore
   advance by v T (a stride of 2 v T per 2 T). Footsteps are fixed when they enter the preview window.
2. ZMP reference. During a step, the first `double_support` share of T moves the ZMP linearly from the previous
   support foot to the new one; the rest (single support) holds it at the support foot's ZMP point.
3. Cart-table model and preview control. With the CoM at constant height z_c, the ZMP of a cart on a table is
   p = x - (z_c / g) x''. With jerk u as input and state (x, x', x'') sampled at dt (Kajita 2003, eq. 7-8):
       x(k+1) = A x(k) + B u(k),  p(k) = C x(k),
       A = [[1, dt, dt^2/2], [0, 1, dt], [0, 0, 1]],  B = [dt^3/6, dt^2/2, dt],  C = [1, 0, -z_c/g].
   The servo with integral action (Katayama et al. 1985, the form Kajita 2003 uses) works on the increments:
   state X = [e(k); dx(k)], e = p - p_ref, dx(k) = x(k) - x(k-1), input du(k) = u(k) - u(k-1):
       X(k+1) = At X(k) + Bt du(k) - [1, 0, 0, 0]^T dp_ref(k+1),
       At = [[1, C A], [0, A]],  Bt = [C B; B],  J = sum Qe e^2 + dx^T Qx dx + R du^2.
   With P from the discrete algebraic Riccati equation (scipy.linalg.solve_discrete_are) and
   F = (R + Bt^T P Bt)^-1 Bt^T, the optimal input with N samples of preview is
       du(k) = -K X(k) - sum_{j=1..N} Gd(j) dp_ref(k+j),   K = F P At,
       Gd(j) = F (Ac^T)^(j-1) P [-1, 0, 0, 0]^T,           Ac = At - Bt K.
   Kajita 2003 uses dt = 5 ms, z_c = 0.814 m, Qe = 1, R = 1e-6 and 1.6 s of preview; the same weights work here.
   `preview=False` drops the Gd term: the plain LQR ZMP servo, the reference that shows what preview buys.
4. Swing foot: quintic horizontal blend (zero speed and acceleration at lift-off and touch-down) and a height
   profile 16 h s^2 (1 - s)^2 (peak h at mid-swing, zero vertical speed at both ends); the stance foot stays flat.
5. Whole-body IK on the MuJoCo model: the floating base and the 10 leg joints (16 DoF) are solved by weighted,
   damped Gauss-Newton steps for both foot poses, the CoM and the pelvis orientation, warm-started every tick.
   This leg (hip yaw, roll, pitch, knee, ankle pitch; no ankle roll) keeps a foot flat only when the hip roll
   cancels the pelvis roll, so the CoM sways sideways by rolling the whole body over the stance leg; the IK finds
   that roll (its weight on pelvis roll is small) instead of a hand-written analytic solution.

Feed-forward and feedback. The joint targets carry an inverse-dynamics feed-forward torque (gravity and the
planned CoM acceleration, the load split between the feet by where the planned ZMP lies), so the stiff position
drives do not sag. What the controller measures, all of it in `RobotReading`: the joint encoders (only at `reset`,
to start the pattern from the measured pose) and the IMU quaternion (torso roll and pitch). The measured torso
tilt minus the IK's planned tilt is added to the stance hip roll and pitch targets (an attitude stabilizer,
`k_tilt`, weighted by each foot's planned load share). Foot contact forces, gyro and accelerometer are not used,
and there is no CoM or ZMP feedback: the pattern itself runs open loop. Drive gains: the spec's, except hip roll
(see `ZmpConfig.kp`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import mujoco
import numpy as np
import scipy.linalg

from footfall.deploy.interface import JointCommand, RobotReading
from footfall.robots.registry import load_robot
from footfall.robots.spec import RobotSpec

GRAVITY = 9.81


# ---------------------------------------------------------------------------------------------- configs


@dataclass(frozen=True)
class PreviewConfig:
    """Cart-table preview control (Kajita 2003)."""

    dt_s: float = 0.01  # sample period of the pattern (the control period)
    com_height_m: float = 0.92  # z_c: CoM height of the cart-table model (0.946 m standing at `home`)
    preview_s: float = 1.6  # preview horizon; Kajita 2003 shows 1.6 s is enough for z_c = 0.814 m
    q_zmp: float = 1.0  # Qe, weight on the ZMP error (Kajita 2003)
    r_jerk: float = 1e-6  # R, weight on the jerk increment (Kajita 2003)
    preview: bool = True  # False: no preview term (plain LQR ZMP servo), the reference


@dataclass(frozen=True)
class GaitConfig:
    """Footstep timing and geometry."""

    step_period_s: float = 0.45  # one step (double support + single support); short steps keep the sway small
    double_support: float = 0.15  # share of the step period with both feet down
    step_width_m: float = 0.4057  # lateral foot distance; the hip-pitch axes are 2 x 0.2029 m apart on H1
    swing_height_m: float = 0.05  # peak foot lift
    zmp_offset_x_m: float = -0.02  # planned ZMP relative to the foot site (site is 0.04 m ahead of the ankle)
    zmp_inset_y_m: float = 0.02  # planned ZMP this far inward of the foot's centre line (less sideways sway)
    start_s: float = 1.0  # stand in double support (and lower to z_c) before the first step
    max_vx_mps: float = 0.5  # command clip: step length vx T stays within reach
    max_vy_mps: float = 0.0  # lateral stepping off: the foot separation is fixed by the hips (see module doc)
    max_yaw_rate: float = 0.4  # rad/s; a step turns at most yaw_rate T (hip yaw range +-0.43 rad)


@dataclass(frozen=True)
class ZmpConfig:
    preview: PreviewConfig = field(default_factory=PreviewConfig)
    gait: GaitConfig = field(default_factory=GaitConfig)
    feedforward: bool = True  # inverse-dynamics feed-forward torque (gravity and the planned CoM acceleration)
    ik_iterations: int = 2  # Gauss-Newton steps per control tick (warm-started)
    ik_damping: float = 1e-4  # Levenberg-Marquardt damping on the step
    w_foot: float = 10.0  # IK weight on each foot pose (m, rad)
    w_com: float = 3.0  # IK weight on the CoM
    w_pelvis: tuple[float, float, float] = (0.02, 0.5, 0.5)  # IK weight on pelvis roll, pitch, yaw
    k_tilt: tuple[float, float] = (3.0, 2.0)  # stance hip roll, pitch correction per rad of torso roll, pitch error
    # Drive gains per joint (hip yaw, roll, pitch, knee, ankle per leg). The spec's hip roll kp 300 / kd 6 lets the
    # stance hip sag 0.1-0.25 rad under the rolling upper body in single support (measured); here the hip roll
    # gets the spec's own hip-pitch gains (kp 1000, kd 20). None: the spec's gains.
    kp: tuple[float, ...] | None = (300.0, 1000.0, 1000.0, 1000.0, 1000.0) * 2
    kd: tuple[float, ...] | None = (6.0, 20.0, 20.0, 20.0, 20.0) * 2


# ---------------------------------------------------------------------------------------------- preview control


class PreviewController:
    """Cart-table ZMP preview servo for one horizontal axis (see the module docstring for the equations)."""

    def __init__(self, cfg: PreviewConfig):
        self.cfg = cfg
        dt, zc = cfg.dt_s, cfg.com_height_m
        self.A = np.array([[1.0, dt, dt * dt / 2], [0.0, 1.0, dt], [0.0, 0.0, 1.0]])
        self.B = np.array([dt**3 / 6, dt * dt / 2, dt])
        self.C = np.array([1.0, 0.0, -zc / GRAVITY])
        At = np.zeros((4, 4))
        At[0, 0] = 1.0
        At[0, 1:] = self.C @ self.A
        At[1:, 1:] = self.A
        Bt = np.concatenate([[self.C @ self.B], self.B])[:, None]  # (4, 1)
        Q = np.diag([cfg.q_zmp, 0.0, 0.0, 0.0])
        R = np.array([[cfg.r_jerk]])
        P = scipy.linalg.solve_discrete_are(At, Bt, Q, R)
        F = np.linalg.solve(R + Bt.T @ P @ Bt, Bt.T)  # (1, 4)
        self.K = (F @ P @ At).ravel()  # (4,): [Gi, Gx]
        Ac = At - Bt @ self.K[None, :]
        self.N = int(round(cfg.preview_s / dt))
        gd = np.empty(self.N)
        v = P @ np.array([-1.0, 0.0, 0.0, 0.0])
        for j in range(self.N):
            gd[j] = (F @ v)[0]
            v = Ac.T @ v
        self.Gd = gd  # (N,) gains on dp_ref(k+1 .. k+N)
        self.reset(0.0)

    def reset(self, x0: float, p_ref0: float | None = None) -> None:
        """At rest at x0; the ZMP reference so far was p_ref0 (default x0)."""
        self.x = np.array([x0, 0.0, 0.0])
        self.dx = np.zeros(3)
        self.u = 0.0
        self.p_ref_prev = x0 if p_ref0 is None else p_ref0

    def zmp(self) -> float:
        return float(self.C @ self.x)

    def step(self, p_ref: np.ndarray) -> np.ndarray:
        """Advance one sample. p_ref: (N + 1,) reference from now (k) to k + N. Returns the new state (3,)."""
        e = self.C @ self.x - p_ref[0]
        du = -(self.K[0] * e + self.K[1:] @ self.dx)
        if self.cfg.preview:
            du -= self.Gd @ np.diff(p_ref[: self.N + 1])
        self.u += du
        x_new = self.A @ self.x + self.B * self.u
        self.dx = x_new - self.x
        self.x = x_new
        return self.x


# ---------------------------------------------------------------------------------------------- footsteps


def _wrap(a: float) -> float:
    return (a + math.pi) % (2 * math.pi) - math.pi


@dataclass
class Footstep:
    foot: int  # 0 left, 1 right
    pose: np.ndarray  # (3,) x, y, yaw of the foot site in the plan frame
    t_start: float  # start of the step (double support begins); the foot swings in the single-support part
    first: bool = False  # the first step of the walk: its double support starts from both feet


class FootstepPlanner:
    """Footsteps from the velocity command: a virtual body pose advances by (vx, vy, yaw_rate) T per step, and
    each foot lands at half the step width to its side of that pose."""

    def __init__(self, gait: GaitConfig, lateral_m: np.ndarray | None = None):
        self.gait = gait
        # lateral offset of each foot site from the body line (left +, right -)
        self.lateral = np.array([gait.step_width_m / 2, -gait.step_width_m / 2]) if lateral_m is None else lateral_m

    def clip(self, command: np.ndarray) -> np.ndarray:
        g = self.gait
        return np.array(
            [
                np.clip(command[0], -g.max_vx_mps, g.max_vx_mps),
                np.clip(command[1], -g.max_vy_mps, g.max_vy_mps),
                np.clip(command[2], -g.max_yaw_rate, g.max_yaw_rate),
            ]
        )

    def advance(self, body: np.ndarray, command: np.ndarray) -> np.ndarray:
        """The body pose one step period later under `command` (body-frame velocities)."""
        T = self.gait.step_period_s
        vx, vy, wz = self.clip(command)
        yaw = body[2] + 0.5 * wz * T  # midpoint heading
        c, s = math.cos(yaw), math.sin(yaw)
        return np.array([body[0] + (c * vx - s * vy) * T, body[1] + (s * vx + c * vy) * T, body[2] + wz * T])

    def foot_pose(self, body: np.ndarray, foot: int) -> np.ndarray:
        c, s = math.cos(body[2]), math.sin(body[2])
        d = self.lateral[foot]
        return np.array([body[0] - s * d, body[1] + c * d, body[2]])

    def plan(self, body: np.ndarray, first_foot: int, command: np.ndarray, n: int) -> list[np.ndarray]:
        """n footstep poses (x, y, yaw) for a constant command, starting with `first_foot` (test helper)."""
        out = []
        for k in range(n):
            body = self.advance(body, command)
            out.append(self.foot_pose(body, (first_foot + k) % 2))
        return out


# ---------------------------------------------------------------------------------------------- swing foot


def swing_profile(s: float, start: np.ndarray, end: np.ndarray, height: float) -> tuple[np.ndarray, float]:
    """Swing foot at phase s in [0, 1]: (x, y, yaw) quintic blend, and the lift 16 h s^2 (1 - s)^2."""
    s = min(1.0, max(0.0, s))
    b = s * s * s * (10 - 15 * s + 6 * s * s)  # quintic: zero speed and acceleration at both ends
    pose = start + b * (end - start)
    pose[2] = start[2] + b * _wrap(end[2] - start[2])
    return pose, 16.0 * height * s * s * (1 - s) * (1 - s)


# ---------------------------------------------------------------------------------------------- leg IK


def _yaw_quat(yaw: float) -> np.ndarray:
    return np.array([math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2)])


def _quat_rp_yaw(roll: float, pitch: float, yaw: float) -> np.ndarray:
    """wxyz of Rz(yaw) Ry(pitch) Rx(roll)."""
    cr, sr = math.cos(roll / 2), math.sin(roll / 2)
    cp, sp = math.cos(pitch / 2), math.sin(pitch / 2)
    cy, sy = math.cos(yaw / 2), math.sin(yaw / 2)
    return np.array(
        [
            cy * cp * cr + sy * sp * sr,
            cy * cp * sr - sy * sp * cr,
            cy * sp * cr + sy * cp * sr,
            sy * cp * cr - cy * sp * sr,
        ]
    )


def _roll_pitch(quat: np.ndarray) -> tuple[float, float]:
    w, x, y, z = quat
    roll = math.atan2(2 * (w * x + y * z), 1 - 2 * (x * x + y * y))
    pitch = math.asin(max(-1.0, min(1.0, 2 * (w * y - z * x))))
    return roll, pitch


class LegIK:
    """Whole-body IK on the robot's MuJoCo model: floating base + leg joints for foot poses, CoM and pelvis
    orientation. All targets in the plan frame (ground at z = 0); foot poses are the foot sites' (flat feet)."""

    def __init__(self, spec: RobotSpec, cfg: ZmpConfig):
        self.spec, self.cfg = spec, cfg
        self.model = spec.build_mjspec(floor=False).compile()
        self.data = mujoco.MjData(self.model)
        m = self.model
        self.qadr = spec.joint_qpos_adr(m)
        self.vadr = spec.joint_dof_adr(m)
        self.sites = [m.site(f).id for f in spec.feet]
        self.pelvis = m.body(spec.base_body).id
        self.lo, self.hi = np.asarray(spec.position_limits, dtype=float).T
        # height of each foot site above the ground when the foot is flat: site z minus the bottom of its geom
        self.site_height = np.zeros(2)
        for i, sid in enumerate(self.sites):
            body = m.site_bodyid[sid]
            gid = [g for g in range(m.ngeom) if m.geom_bodyid[g] == body][0]
            self.site_height[i] = m.site_pos[sid][2] - (m.geom_pos[gid][2] - m.geom_size[gid][2])
        nv = m.nv
        self._jp = np.zeros((3, nv))
        self._jr = np.zeros((3, nv))
        self._jc = np.zeros((3, nv))
        self._rows = 6 + 6 + 3 + 3
        self._J = np.zeros((self._rows, nv))
        self._e = np.zeros(self._rows)
        self._w = np.concatenate([[cfg.w_foot] * 12, [cfg.w_com] * 3, np.zeros(3)])
        self._tmp = np.zeros(3)
        self._bias = np.zeros(nv)
        self.mass = float(m.body_subtreemass[self.pelvis])
        self._q4 = np.zeros(4)

    def set_state(self, base_pos: np.ndarray, base_quat: np.ndarray, joints: np.ndarray) -> None:
        d = self.data
        d.qpos[0:3] = base_pos
        d.qpos[3:7] = base_quat
        d.qpos[self.qadr] = joints
        mujoco.mj_kinematics(self.model, d)
        mujoco.mj_comPos(self.model, d)

    def com(self) -> np.ndarray:
        return self.data.subtree_com[self.pelvis].copy()

    def foot_pose(self, i: int) -> np.ndarray:
        """(x, y, z, yaw) of foot site i (z of the sole: site z minus its height above the sole)."""
        d, sid = self.data, self.sites[i]
        R = d.site_xmat[sid].reshape(3, 3)
        p = d.site_xpos[sid]
        return np.array([p[0], p[1], p[2] - self.site_height[i], math.atan2(R[1, 0], R[0, 0])])

    def solve(
        self,
        feet: list[np.ndarray],
        com: np.ndarray,
        pelvis_rpy: tuple[float, float, float],
        iterations: int,
    ) -> np.ndarray:
        """Joint positions (nj,) that put the feet at `feet` [(x, y, z_sole, yaw) each, flat], the CoM at `com`
        and the pelvis near `pelvis_rpy` (roll weighted lightly), from the current state."""
        m, d, cfg = self.model, self.data, self.cfg
        J, e = self._J, self._e
        w = self._w
        w[15:18] = cfg.w_pelvis
        foot_q = [_yaw_quat(f[3]) for f in feet]
        pel_q = _quat_rp_yaw(*pelvis_rpy)
        for _ in range(iterations):
            for i, sid in enumerate(self.sites):
                r = 6 * i
                tgt = feet[i]
                e[r : r + 2] = tgt[0:2] - d.site_xpos[sid][0:2]
                e[r + 2] = tgt[2] + self.site_height[i] - d.site_xpos[sid][2]
                mujoco.mju_mat2Quat(self._q4, d.site_xmat[sid])
                mujoco.mju_subQuat(self._tmp, foot_q[i], self._q4)  # in the site frame
                e[r + 3 : r + 6] = d.site_xmat[sid].reshape(3, 3) @ self._tmp
                mujoco.mj_jacSite(m, d, self._jp, self._jr, sid)
                J[r : r + 3] = self._jp
                J[r + 3 : r + 6] = self._jr
            e[12:15] = com - d.subtree_com[self.pelvis]
            mujoco.mj_jacSubtreeCom(m, d, self._jc, self.pelvis)
            J[12:15] = self._jc
            mujoco.mju_subQuat(self._tmp, pel_q, d.qpos[3:7])  # in the pelvis frame
            e[15:18] = self._tmp
            J[15:18] = 0.0
            J[15:18, 3:6] = np.eye(3)  # free joint angular velocity is in the body frame
            Jw = J * w[:, None]
            H = Jw.T @ J
            H[np.diag_indices_from(H)] += cfg.ik_damping
            dq = np.linalg.solve(H, Jw.T @ e)
            mujoco.mj_integratePos(m, d.qpos, dq, 1.0)
            d.qpos[self.qadr] = np.clip(d.qpos[self.qadr], self.lo, self.hi)
            mujoco.mj_kinematics(m, d)
            mujoco.mj_comPos(m, d)
        return d.qpos[self.qadr].copy()

    def feedforward(self, com_acc: np.ndarray, share_left: float) -> np.ndarray:
        """Joint torques (nj,) that hold the solved pose while the CoM accelerates by `com_acc` (3,), the feet
        carrying `share_left` and 1 - share_left of the load (inverse dynamics with zero joint acceleration).

        Static balance of the floating base: bias_base + m a (at the CoM) = sum_i J_i,base^T w_i, with each foot
        wrench w_i (force and torque at its site, world frame) carrying its share; the joints then need
        tau = bias_joints - sum_i J_i,joints^T w_i (the sign convention of M qacc + bias = tau + J^T w)."""
        m, d = self.model, self.data
        bias = self._bias
        mujoco.mj_rne(m, d, 0, bias)  # qvel = 0: gravity only
        base = bias[:6].copy()
        f = self.mass * com_acc
        base[0:3] += f
        r = d.subtree_com[self.pelvis] - d.xpos[self.pelvis]
        base[3:6] += d.xmat[self.pelvis].reshape(3, 3).T @ np.cross(r, f)  # free-joint torque rows: body frame
        tau = bias[self.vadr].copy()
        for i, sid in enumerate(self.sites):
            share = share_left if i == 0 else 1.0 - share_left
            if share <= 1e-6:
                continue
            mujoco.mj_jacSite(m, d, self._jp, self._jr, sid)
            Jc = np.vstack([self._jp, self._jr])  # (6, nv)
            w = np.linalg.solve(Jc[:, :6].T, share * base)
            tau -= Jc[:, self.vadr].T @ w
        return tau


# ---------------------------------------------------------------------------------------------- the walker


class ZmpWalker:
    """The biped ZMP walking controller: `walker(reading, command) -> JointCommand` (see the module docstring).

    After each call, `zmp_ref` (planned ZMP, plan frame), `com_ref` (planned CoM) and `support` (planned feet on
    the ground: 0 left, 1 right, 2 both) describe the pattern, and `feet_ref` the planned foot poses."""

    def __init__(self, robot: RobotSpec | str = "h1", cfg: ZmpConfig | None = None):
        self.spec = robot if isinstance(robot, RobotSpec) else load_robot(robot)
        if self.spec.kind != "biped" or len(self.spec.feet) != 2:
            raise ValueError(f"ZmpWalker needs a biped with two feet; {self.spec.name} is a {self.spec.kind}")
        self.cfg = cfg or ZmpConfig()
        self.control_dt_s = self.cfg.preview.dt_s
        self.ik = LegIK(self.spec, self.cfg)
        self.px = PreviewController(self.cfg.preview)
        self.py = PreviewController(self.cfg.preview)
        self.N = self.px.N
        nj = self.spec.num_joints
        self.kp = np.asarray(self.cfg.kp if self.cfg.kp is not None else self.spec.kp, dtype=float)
        self.kd = np.asarray(self.cfg.kd if self.cfg.kd is not None else self.spec.kd, dtype=float)
        self.nj = nj
        self._ref = np.zeros((self.N + 1, 2))
        # per leg, the index of its hip roll and hip pitch joint: the joints about x and y nearest the pelvis
        self._hip_roll, self._hip_pitch = [], []
        m = self.ik.model
        for leg in range(2):
            chain = self._leg_joints(leg)
            axes = [np.abs(m.jnt_axis[m.joint(self.spec.joint_names[j]).id]) for j in chain]
            self._hip_roll.append(next(j for j, a in zip(chain, axes) if a[0] > 0.9))
            self._hip_pitch.append(next(j for j, a in zip(chain, axes) if a[1] > 0.9))
        self.reset(None)

    def _leg_joints(self, leg: int) -> list[int]:
        """Policy indices of the joints between the pelvis and foot `leg`, from the pelvis outward."""
        m = self.ik.model
        body = m.site_bodyid[self.ik.sites[leg]]
        chain = []
        while body > 0:
            for jid in range(m.body_jntadr[body], m.body_jntadr[body] + m.body_jntnum[body]):
                name = m.joint(jid).name
                if name in self.spec.joint_names:
                    chain.append(self.spec.joint_names.index(name))
            body = m.body_parentid[body]
        return chain[::-1]

    # ------------------------------------------------------------------ pattern

    def reset(self, reading: RobotReading | None) -> None:
        """Start the pattern from the measured pose: plan frame origin under the pelvis, x along its heading."""
        q = np.asarray(self.spec.default_pose, dtype=float) if reading is None else reading.joint_pos
        quat = np.array([1.0, 0, 0, 0]) if reading is None or reading.imu_quat is None else reading.imu_quat
        roll, pitch = _roll_pitch(quat)
        ik = self.ik
        ik.set_state(np.zeros(3), _quat_rp_yaw(roll, pitch, 0.0), q)
        feet = [ik.foot_pose(0), ik.foot_pose(1)]
        ground = min(feet[0][2], feet[1][2])
        ik.data.qpos[2] -= ground
        mujoco.mj_kinematics(ik.model, ik.data)
        mujoco.mj_comPos(ik.model, ik.data)
        feet = [ik.foot_pose(0), ik.foot_pose(1)]
        self.com0 = ik.com()
        self.z0 = float(self.com0[2])
        self.placed = [np.array([f[0], f[1], f[3]]) for f in feet]  # current foot poses (x, y, yaw)
        lateral = np.array([1.0, -1.0]) * abs(feet[0][1] - feet[1][1]) / 2
        self.planner = FootstepPlanner(self.cfg.gait, lateral)
        mid = 0.5 * (self.placed[0] + self.placed[1])
        self.body = np.array([mid[0], mid[1], _wrap(0.5 * (self.placed[0][2] + self.placed[1][2]))])
        self.t = 0.0
        self.k = 0
        self.steps: list[Footstep] = []  # planned steps (the last one is the furthest in time)
        self._next_foot = 1  # the right foot swings first (the left foot supports)
        self.q_prev = q.copy()
        zx, zy = self._zmp_point(self.placed[0], 0), self._zmp_point(self.placed[1], 1)
        mid_zmp = 0.5 * (zx + zy)
        self.px.reset(float(self.com0[0]), float(mid_zmp[0]))
        self.py.reset(float(self.com0[1]), float(mid_zmp[1]))
        self.zmp_ref = mid_zmp.copy()
        self.com_ref = self.com0.copy()
        self.support = 2
        self.feet_ref = [np.array([f[0], f[1], 0.0, f[2]]) for f in self.placed]
        self._fresh = True

    def _zmp_point(self, foot: np.ndarray, i: int) -> np.ndarray:
        """The planned ZMP under foot i (0 left, 1 right) at pose (x, y, yaw)."""
        c, s = math.cos(foot[2]), math.sin(foot[2])
        dx = self.cfg.gait.zmp_offset_x_m
        dy = -self.cfg.gait.zmp_inset_y_m if i == 0 else self.cfg.gait.zmp_inset_y_m
        return np.array([foot[0] + c * dx - s * dy, foot[1] + s * dx + c * dy])

    def _extend_plan(self, t_until: float, command: np.ndarray) -> None:
        g = self.cfg.gait
        while not self.steps or self.steps[-1].t_start < t_until:
            t0 = g.start_s if not self.steps else self.steps[-1].t_start + g.step_period_s
            self.body = self.planner.advance(self.body, command)
            foot = self._next_foot
            self.steps.append(Footstep(foot, self.planner.foot_pose(self.body, foot), t0, first=t0 == g.start_s))
            self._next_foot = 1 - foot

    def _state_at(self, t: float) -> tuple[np.ndarray, int]:
        """(ZMP reference (2,), support: 0 left, 1 right, 2 both) at time t, from the placed feet and the plan."""
        g = self.cfg.gait
        T, ds = g.step_period_s, g.double_support * g.step_period_s
        feet = [self.placed[0], self.placed[1]]
        mid = 0.5 * (self._zmp_point(feet[0], 0) + self._zmp_point(feet[1], 1))
        if not self.steps or t < self.steps[0].t_start:
            return mid, 2
        for i, st in enumerate(self.steps):
            if t < st.t_start + T or i == len(self.steps) - 1:
                # the support moves from the foot about to swing (both feet before the first step) to the other
                p_from = mid if st.first else self._zmp_point(feet[st.foot], st.foot)
                p_to = self._zmp_point(feet[1 - st.foot], 1 - st.foot)
                tau = t - st.t_start
                if tau < ds:
                    return p_from + (tau / ds) * (p_to - p_from), 2
                return p_to, 1 - st.foot
            feet[st.foot] = st.pose
            mid = 0.5 * (self._zmp_point(feet[0], 0) + self._zmp_point(feet[1], 1))
        raise AssertionError("unreachable")

    # ------------------------------------------------------------------ control

    def __call__(self, reading: RobotReading, command: np.ndarray) -> JointCommand:
        cfg, g = self.cfg, self.cfg.gait
        dt, N = self.control_dt_s, self.N
        T = g.step_period_s
        t = self.t
        command = np.asarray(command, dtype=float)
        # footsteps are fixed once they enter the preview window; plan one step period beyond it
        self._extend_plan(t + (N + 1) * dt + T, command)
        while self.steps and t >= self.steps[0].t_start + T:  # finished steps: their feet are placed
            st = self.steps.pop(0)
            self.placed[st.foot] = st.pose
        ref = self._ref
        if self._fresh:
            for j in range(N + 1):
                ref[j] = self._state_at(t + j * dt)[0]
            self._fresh = False
        else:
            ref[:-1] = ref[1:]
            ref[-1] = self._state_at(t + N * dt)[0]
        self.zmp_ref, self.support = self._state_at(t)
        xs = self.px.step(ref[:, 0])
        ys = self.py.step(ref[:, 1])
        s = min(1.0, t / max(g.start_s, dt))
        z = self.z0 + (cfg.preview.com_height_m - self.z0) * s * s * (3 - 2 * s)
        self.com_ref = np.array([xs[0], ys[0], z])
        feet = [np.array([p[0], p[1], 0.0, p[2]]) for p in self.placed]
        if self.support != 2 and self.steps:
            st = self.steps[0]
            ds = g.double_support * T
            phase = (t - st.t_start - ds) / (T - ds)
            pose, lift = swing_profile(phase, self.placed[st.foot], st.pose, g.swing_height_m)
            feet[st.foot] = np.array([pose[0], pose[1], lift, pose[2]])
        self.feet_ref = feet
        yaw = _wrap(feet[0][3] + 0.5 * _wrap(feet[1][3] - feet[0][3]))
        q_t = self.ik.solve(feet, self.com_ref, (0.0, 0.0, yaw), cfg.ik_iterations)
        share = self._share_left(feet)
        tau = np.zeros(self.nj)
        if cfg.feedforward:
            tau = self.ik.feedforward(np.array([xs[2], ys[2], 0.0]), share)
        q_cmd = q_t.copy()
        if reading.imu_quat is not None:
            # attitude stabilizer: the stance hip takes up the torso's roll and pitch error (pelvis roll = -hip
            # roll and pelvis pitch = -(hip + knee + ankle pitch) when the foot is flat), weighted by load share
            roll, pitch = _roll_pitch(reading.imu_quat)
            roll_p, pitch_p = _roll_pitch(self.ik.data.qpos[3:7])
            e_roll, e_pitch = _wrap(roll - roll_p), pitch - pitch_p
            for leg, w in ((0, share), (1, 1.0 - share)):
                q_cmd[self._hip_roll[leg]] += w * cfg.k_tilt[0] * e_roll
                q_cmd[self._hip_pitch[leg]] += w * cfg.k_tilt[1] * e_pitch
        dq_t = (q_t - self.q_prev) / dt
        self.q_prev = q_t
        self.t = t + dt
        return JointCommand(q_cmd, dq_t, self.kp.copy(), self.kd.copy(), tau)

    def _share_left(self, feet: list[np.ndarray]) -> float:
        """Share of the load on the left foot: 1 or 0 in single support; in double support, where the planned ZMP
        lies between the two feet's ZMP points."""
        if self.support != 2:
            return 1.0 if self.support == 0 else 0.0
        a = self._zmp_point(np.array([feet[0][0], feet[0][1], feet[0][3]]), 0)
        b = self._zmp_point(np.array([feet[1][0], feet[1][1], feet[1][3]]), 1)
        d = a - b
        return float(np.clip((self.zmp_ref - b) @ d / max(d @ d, 1e-9), 0.0, 1.0))
