"""MujocoRobot: a robot in MuJoCo behind the deploy interface, at its own physics rate.

The drives are simulated as a real robot's are: each physics step applies tau = kp (q* - q) + kd (dq* - dq) + tau_ff,
clipped to the torque limits, with the per-joint kp/kd of the latest command. (MuJoCo's affine actuators compute
exactly this inside the step, so the implicit integrator treats the damping term as it does in training.)

Two ways to run it:
- lockstep (`advance_to`): the runtime advances simulated time itself; deterministic and faster than real time,
  for tests, sim2sim and comparisons;
- real time (`start()`): a thread steps the physics against the wall clock, as hardware would run beside the
  control loop.
Commands take effect `latency_s` after they are written; readings carry Gaussian noise of `noise` std (the IMU
orientation as a small random rotation, `SensorNoise.imu_tilt`).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import mujoco
import numpy as np

from footfall.deploy.console import Watch
from footfall.deploy.interface import JointCommand, RobotReading
from footfall.robots.registry import load_robot
from footfall.robots.spec import RobotSpec


@dataclass(frozen=True)
class SensorNoise:
    """Standard deviations added to readings."""

    joint_pos: float = 0.0  # rad
    joint_vel: float = 0.0  # rad/s
    gyro: float = 0.0  # rad/s
    accel: float = 0.0  # m/s^2
    imu_tilt: float = 0.0  # rad, per axis: the IMU orientation is turned by a small random rotation in the body frame


@dataclass
class Truth:
    """Simulator-only quantities for metrics (never given to a controller)."""

    base_lin_vel: np.ndarray = field(default_factory=lambda: np.zeros(3))  # IMU frame, m/s
    base_pos: np.ndarray = field(default_factory=lambda: np.zeros(3))
    gravity_z: float = -1.0  # z of gravity in the IMU frame (-1 upright)
    torque: np.ndarray = field(default_factory=lambda: np.zeros(0))


class MujocoRobot:
    def __init__(
        self,
        robot: RobotSpec | str,
        physics_dt: float | None = None,
        latency_s: float = 0.0,
        noise: SensorNoise | None = None,
        seed: int = 0,
    ):
        self.spec = robot if isinstance(robot, RobotSpec) else load_robot(robot)
        s = self.spec.build_mjspec()
        self.model = s.compile()
        if physics_dt is not None:
            self.model.opt.timestep = physics_dt
        self.data = mujoco.MjData(self.model)
        self.layout = self.spec.sensor_layout(self.model)
        self.act = self.spec.actuator_ids(self.model)
        self._dadr = self.spec.joint_dof_adr(self.model)
        self.num_joints = self.spec.num_joints
        self.tau_max = np.asarray(self.spec.torque_limits, dtype=np.float64)
        m = self.model
        m.actuator_gaintype[self.act] = mujoco.mjtGain.mjGAIN_FIXED
        m.actuator_biastype[self.act] = mujoco.mjtBias.mjBIAS_AFFINE
        m.actuator_dyntype[self.act] = mujoco.mjtDyn.mjDYN_NONE
        m.actuator_gear[self.act, 0] = 1.0
        m.actuator_forcelimited[self.act] = 1
        m.actuator_forcerange[self.act] = np.stack([-self.tau_max, self.tau_max], axis=-1)
        m.actuator_ctrllimited[self.act] = 0
        self.latency_s = float(latency_s)
        self.noise = noise or SensorNoise()
        self.rng = np.random.default_rng(seed)
        self._pending: list[tuple[float, JointCommand]] = []
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._viewer = None  # MuJoCo's passive viewer, in real-time mode with start(viewer=True)
        self._running = False
        self.steps = 0
        self.saturated_steps = 0  # physics steps with at least one joint at its torque limit
        self.energy_j = 0.0  # positive mechanical work of the joints
        self.apply(JointCommand.damping(self.num_joints, np.asarray(self.spec.kd)))
        self.reset()

    # ------------------------------------------------------------------ scenario variations

    def vary(self, friction_scale: float = 1.0, payload_kg: float = 0.0) -> None:
        """Scale every geom's sliding friction (MuJoCo takes the larger of two geoms' values, so the floor's
        scales too) and add a payload to the base body (its inertia scaled with its mass)."""
        if friction_scale != 1.0:
            self.model.geom_friction[:, 0] *= friction_scale
        if payload_kg:
            b = self.model.body(self.spec.base_body).id
            m0 = float(self.model.body_mass[b])
            self.model.body_mass[b] = m0 + payload_kg
            self.model.body_inertia[b] *= (m0 + payload_kg) / m0
        mujoco.mj_setConst(self.model, self.data)

    def push(self, dv_xy: np.ndarray) -> None:
        """An impulse on a floating base: its horizontal velocity changes by `dv_xy` (m/s, world frame) at once."""
        if not self.spec.floating_base:
            raise ValueError(f"{self.spec.name} has no floating base to push")
        with self._lock:
            self.data.qvel[0:2] += dv_xy

    # ------------------------------------------------------------------ state

    @property
    def physics_dt(self) -> float:
        return float(self.model.opt.timestep)

    def reset(self, yaw: float = 0.0, qpos_noise: float = 0.0) -> None:
        """Home keyframe (its qpos), optionally turned by `yaw` about z, with uniform joint noise."""
        with self._lock:
            mujoco.mj_resetDataKeyframe(self.model, self.data, self.model.key(self.spec.home_keyframe).id)
            if self.spec.floating_base and yaw:
                q = self.data.qpos[3:7].copy()
                c, s = np.cos(yaw / 2), np.sin(yaw / 2)
                self.data.qpos[3:7] = [
                    c * q[0] - s * q[3],
                    c * q[1] - s * q[2],
                    c * q[2] + s * q[1],
                    c * q[3] + s * q[0],
                ]
            if qpos_noise:
                adr = self.spec.joint_qpos_adr(self.model)
                self.data.qpos[adr] += self.rng.uniform(-qpos_noise, qpos_noise, len(adr))
            self.data.ctrl[:] = 0.0
            mujoco.mj_forward(self.model, self.data)
            self._pending.clear()
            self.steps = self.saturated_steps = 0
            self.energy_j = 0.0

    def time_s(self) -> float:
        return float(self.data.time)

    def read(self) -> RobotReading:
        with self._lock:
            sd, lay, n = self.data.sensordata, self.layout, self.noise
            r = RobotReading(
                seq=self.steps,
                stamp_s=float(self.data.time),
                joint_pos=sd[lay.joint_pos].copy(),
                joint_vel=sd[lay.joint_vel].copy(),
                joint_torque=self.data.actuator_force[self.act].copy(),  # what the drives apply (no noise)
            )
            if lay.imu_quat is not None:
                r.imu_quat, r.gyro, r.accel = sd[lay.imu_quat].copy(), sd[lay.imu_gyro].copy(), sd[lay.imu_acc].copy()
            if lay.foot_touch is not None:
                r.foot_contact = sd[lay.foot_touch].copy()
        if n.joint_pos:
            r.joint_pos += self.rng.normal(0, n.joint_pos, r.joint_pos.shape)
        if n.joint_vel:
            r.joint_vel += self.rng.normal(0, n.joint_vel, r.joint_vel.shape)
        if n.gyro and r.gyro is not None:
            r.gyro += self.rng.normal(0, n.gyro, 3)
        if n.accel and r.accel is not None:
            r.accel += self.rng.normal(0, n.accel, 3)
        if n.imu_tilt and r.imu_quat is not None:  # q * exp(rotvec), rotvec in the body frame (unit norm kept)
            mujoco.mju_quatIntegrate(r.imu_quat, self.rng.normal(0, n.imu_tilt, 3), 1.0)
        return r

    def truth(self) -> Truth:
        with self._lock:
            sd, lay = self.data.sensordata, self.layout
            t = Truth(
                base_pos=self.data.qpos[0:3].copy(),
                torque=self.data.actuator_force[self.act].copy(),
            )
            if lay.imu_quat is not None:
                t.base_lin_vel = sd[lay.imu_linvel].copy()
                w, x, y, z = sd[lay.imu_quat]
                t.gravity_z = -(1.0 - 2.0 * (x * x + y * y))  # z of R^T (0, 0, -1)
        return t

    # ------------------------------------------------------------------ commands and stepping

    def write(self, cmd: JointCommand) -> None:
        with self._lock:
            self._pending.append((float(self.data.time) + self.latency_s, cmd.copy()))

    def apply(self, cmd: JointCommand) -> None:
        """Set the drives to `cmd` now: force = kp ctrl + (kd dq* + tau_ff) - kp q - kd dq."""
        m, a = self.model, self.act
        m.actuator_gainprm[a, 0] = cmd.kp
        m.actuator_biasprm[a, 0] = cmd.kd * cmd.dq + cmd.tau
        m.actuator_biasprm[a, 1] = -cmd.kp
        m.actuator_biasprm[a, 2] = -cmd.kd
        self.data.ctrl[a] = cmd.q

    def _step(self) -> None:
        t = self.data.time + 1e-9
        while self._pending and self._pending[0][0] <= t:
            self.apply(self._pending.pop(0)[1])
        mujoco.mj_step(self.model, self.data)
        self.steps += 1
        tau = self.data.actuator_force[self.act]
        if np.any(np.abs(tau) >= self.tau_max * 0.999):
            self.saturated_steps += 1
        qvel = self.data.qvel[self._dadr]
        self.energy_j += float(np.sum(np.clip(tau * qvel, 0, None))) * self.physics_dt

    def advance_to(self, t_s: float) -> None:
        """Lockstep: simulate until robot time `t_s` (whole physics steps)."""
        with self._lock:
            while self.data.time < t_s - 0.5 * self.physics_dt:
                self._step()

    # ------------------------------------------------------------------ real time

    def start(self, viewer: bool = False) -> None:
        """Step the physics in a thread against the wall clock (real-time mode); with `viewer`, MuJoCo's passive
        viewer shows it, synced 60 times a second (ViewerUnavailable, raised here, when there is no display)."""
        if self._thread is not None:
            return
        watch = self._viewer = Watch(self.model) if viewer else None
        self._running = True
        t0 = time.perf_counter() - self.data.time

        def loop() -> None:
            next_sync = 0.0
            while self._running:
                self.advance_to(time.perf_counter() - t0)
                if watch is not None and time.perf_counter() >= next_sync:
                    with self._lock:
                        qpos = self.data.qpos.copy()
                    watch.show(qpos)
                    next_sync = time.perf_counter() + 1 / 60
                time.sleep(self.physics_dt / 2)

        self._thread = threading.Thread(target=loop, name="MujocoRobot", daemon=True)
        self._thread.start()

    def rearm(self) -> None:
        """Nothing to re-arm: a simulated robot has no link of its own that latches."""

    def close(self) -> None:
        self._running = False
        if self._thread is not None:
            self._thread.join(timeout=1.0)
            self._thread = None
        if self._viewer is not None:
            self._viewer.close()
            self._viewer = None
