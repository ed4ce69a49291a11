"""The batched task core: N robots in a BatchedSim, observations, rewards, terminations and resets as numpy over N.

`BatchedTask` owns what every task shares: per-environment randomized models, action and observation latency at
physics-step resolution, pushes, actor/critic observation builders, itemized rewards, autoreset. A task subclass
(`VelocityTask`, `ReachTask`) adds its commands, reward terms, terminations and reset pose. The gymnasium faces
in `footfall.envs.gym` wrap a core; so does a training runner that wants arrays without gymnasium's checks.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Any

import mujoco
import numpy as np

from footfall.envs.randomization import DomainRandomization, ModelRandomizer, apply_all, sample
from footfall.envs.sim import BatchedSim
from footfall.robots import RobotSpec, load_robot
from footfall.robots.contract import CommandContract, PolicyContract
from footfall.robots.observations import ObservationBuilder, RobotState, TermConfig, TermContext
from footfall.robots.symmetry import Mirror, feet_mirror, joint_mirror, observation_mirror

Array = np.ndarray
ACTION_TYPES = ("joint_position_offset", "joint_position_delta")


@dataclass(frozen=True)
class TaskConfig:
    """Settings every task shares. Subclasses add their commands and reward weights."""

    robot: str = "go1"  # built-in robot name or path to a spec file
    control_dt_s: float = 0.02  # policy period (50 Hz); must be a whole number of physics steps
    episode_length_s: float = 20.0
    action_scale: float = 0.25  # joint target = default_pose + action_scale * action
    action_clip: float = 10.0
    # "joint_position_offset": target = default_pose + action_scale * action (legged robots);
    # "joint_position_delta": target += action_scale * action each step, starting from the pose at reset (rad per
    # step): the policy steers the target, which lets a squashed policy settle it precisely (the arm)
    action_type: str = "joint_position_offset"
    actor_obs: tuple[TermConfig, ...] = ()
    critic_obs: tuple[TermConfig, ...] = ()  # empty: the critic sees the actor's observation
    reward_weights: tuple[tuple[str, float], ...] = ()
    randomization: DomainRandomization = field(default_factory=DomainRandomization)
    nthread: int | None = None  # physics threads (default: all cores)

    def __post_init__(self) -> None:
        if self.control_dt_s <= 0 or self.episode_length_s <= 0:
            raise ValueError("TaskConfig: control_dt_s and episode_length_s must be > 0")
        if self.action_scale <= 0:
            raise ValueError(f"TaskConfig.action_scale must be > 0, got {self.action_scale}")
        if self.action_type not in ACTION_TYPES:
            raise ValueError(f"TaskConfig.action_type must be one of {ACTION_TYPES}, got {self.action_type!r}")


class BatchedTask:
    """Abstract batched task. Subclasses implement the hooks marked `# hook`."""

    reward_names: tuple[str, ...] = ()  # reward terms this task can compute (valid reward_weights keys)
    command_names: tuple[str, ...] = ()
    sim_class: type[BatchedSim] = BatchedSim  # SerialSim: the plain one-MjData-per-robot mj_step loop

    def __init__(self, cfg: TaskConfig, num_envs: int, seed: int | None = None):
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        unknown = [n for n, _ in cfg.reward_weights if n not in self.reward_names]
        if unknown:
            raise ValueError(
                f"{type(cfg).__name__}.reward_weights: unknown reward term(s) {unknown}; "
                f"valid terms: {sorted(self.reward_names)}"
            )
        self.cfg = cfg
        self.num_envs = n = num_envs
        self.robot: RobotSpec = load_robot(cfg.robot)
        spec = self.build_mjspec()
        self.model = spec.compile()
        self.after_compile(self.model)
        physics_dt = self.model.opt.timestep
        ratio = cfg.control_dt_s / physics_dt
        if abs(ratio - round(ratio)) > 1e-6:
            raise ValueError(
                f"control_dt_s {cfg.control_dt_s} is not a whole number of {self.robot.name}'s physics "
                f"steps ({physics_dt} s); valid: multiples of {physics_dt}"
            )
        self.decimation = int(round(ratio))
        self.physics_dt = physics_dt
        self.max_episode_steps = int(round(cfg.episode_length_s / cfg.control_dt_s))
        self.layout = self.robot.sensor_layout(self.model)
        self.act_ids = self.robot.actuator_ids(self.model)
        self.qadr = self.robot.joint_qpos_adr(self.model)
        self.dadr = self.robot.joint_dof_adr(self.model)
        self.default_pose = np.asarray(self.robot.default_pose)
        self.pos_lo = np.array([lo for lo, _ in self.robot.position_limits])
        self.pos_hi = np.array([hi for _, hi in self.robot.position_limits])
        self.models = [copy.deepcopy(self.model) for _ in range(n)]
        self.sim = self.sim_class(self.models, self.decimation, cfg.nthread)
        self.randomizer = ModelRandomizer(self.model, self.model.body(self.robot.base_body).id, self.act_ids, self.dadr)
        data = mujoco.MjData(self.model)
        mujoco.mj_resetDataKeyframe(self.model, data, self.model.key(self.robot.home_keyframe).id)
        self.home_state = self.sim.state_from_data(self.model, data)
        self.max_latency_steps = self.decimation

        nj = self.robot.num_joints
        ctx = TermContext(self.default_pose, num_commands=len(self.command_names), num_feet=len(self.robot.feet))
        self.actor_obs = ObservationBuilder(cfg.actor_obs, ctx, n)
        self.critic_obs = ObservationBuilder(cfg.critic_obs or cfg.actor_obs, ctx, n)
        if self.actor_obs.privileged:
            names = [t.name for t in cfg.actor_obs if t.name in ("base_lin_vel", "foot_contact", "base_height")]
            raise ValueError(
                f"actor observation term(s) {names} are simulator-only: a real robot has no sensor "
                "for them. Move them to critic_obs, or name the state estimator that will supply them "
                "and feed it in as a measured term."
            )
        self.noise_amp = dict(cfg.randomization.noise) if cfg.randomization.enabled else {}

        # Per-environment buffers.
        self.rng = np.random.default_rng(seed)
        self.command = np.zeros((n, len(self.command_names)))
        self.action = np.zeros((n, nj))
        self.last_action = np.zeros((n, nj))
        self.target = np.tile(self.default_pose, (n, 1))
        self.prev_target = self.target.copy()
        self.control = np.zeros((n, self.decimation, self.model.nu))
        self.prev_sensor = np.zeros((n, self.decimation, self.model.nsensordata))
        self.episode_step = np.zeros(n, dtype=int)
        self.time_since_push = np.zeros(n)
        self.params = sample(cfg.randomization, self.rng, n, nj, physics_dt, self.max_latency_steps)
        self.episode_return = np.zeros(n)
        self._substep = np.arange(self.decimation)

    # ------------------------------------------------------------------ hooks

    def build_mjspec(self) -> mujoco.MjSpec:  # hook
        spec = self.robot.build_mjspec()
        for a in self.robot.actuator_names:
            spec.add_sensor(
                name=f"footfall_{a}_force",
                type=mujoco.mjtSensor.mjSENS_ACTUATORFRC,
                objtype=mujoco.mjtObj.mjOBJ_ACTUATOR,
                objname=a,
            )
        return spec

    def after_compile(self, model: mujoco.MjModel) -> None:  # hook
        S = mujoco.mjtSensor
        ids = [model.sensor(f"footfall_{a}_force").id for a in self.robot.actuator_names]
        self.torque_idx = np.array([model.sensor_adr[i] for i in ids])
        assert all(int(model.sensor_type[i]) == int(S.mjSENS_ACTUATORFRC) for i in ids)

    def reset_state(self, rows: Array) -> Array:  # hook: full physics state rows (len(rows), nstate)
        return np.tile(self.home_state, (len(rows), 1))

    def sample_commands(self, rows: Array) -> None:  # hook
        pass

    def fill_task_state(self, s: RobotState, sensors: Array) -> None:  # hook: task-specific state fields
        pass

    def rewards(self, s: RobotState, names: set[str]) -> dict[str, Array]:  # hook: unweighted terms in `names`
        raise NotImplementedError

    def terminated(self, s: RobotState) -> Array:  # hook
        return np.zeros(self.num_envs, dtype=bool)

    def on_episode_end(self, rows: Array) -> dict[str, float]:  # hook: e.g. curriculum; returns log scalars
        return {}

    def pre_physics(self) -> None:  # hook: e.g. gait clock
        pass

    # ------------------------------------------------------------------ API

    @property
    def obs_size(self) -> int:
        return self.actor_obs.size

    @property
    def critic_obs_size(self) -> int:
        return self.critic_obs.size

    @property
    def action_size(self) -> int:
        return self.robot.num_joints

    def reset(self, seed: int | None = None) -> tuple[Array, dict[str, Any]]:
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        rows = np.arange(self.num_envs)
        self._reset_rows(rows)
        s = self._robot_state(self.sim.sensor_out, privileged=True)
        return self.actor_obs(s, self._noise()), {"critic_obs": self.critic_obs(s)}

    def step(self, action: Array) -> tuple[Array, Array, Array, Array, dict[str, Any]]:
        """Advance one policy step. action: (N, nj). Returns obs (N, D), reward (N,), terminated (N,),
        truncated (N,), info. Finished rows are reset in the same call; info["final_obs"] holds their last obs."""
        cfg = self.cfg
        action = np.asarray(action, dtype=np.float64)
        if action.shape != (self.num_envs, self.action_size):
            raise ValueError(f"action shape {action.shape}, expected {(self.num_envs, self.action_size)}")
        action = np.clip(np.nan_to_num(action, nan=0.0), -cfg.action_clip, cfg.action_clip)
        self.last_action[:] = self.action
        self.action[:] = action
        self.prev_target[:] = self.target
        base = self.prev_target if cfg.action_type == "joint_position_delta" else self.default_pose
        self.target[:] = np.clip(base + cfg.action_scale * action, self.pos_lo, self.pos_hi)
        # Action latency: substeps before the env's delay still see the previous target.
        late = self._substep[None, :] < self.params["action_latency_steps"][:, None]  # (N, decimation)
        self.control[:, :, self.act_ids] = np.where(late[..., None], self.prev_target[:, None], self.target[:, None])
        self.pre_physics()
        self.prev_sensor[:] = self.sim.sensor_out
        self.sim.step(self.control)
        self._push()
        self.episode_step += 1

        s = self._robot_state(self.sim.sensor_out, privileged=True)
        terminated = self.terminated(s) | ~np.isfinite(self.sim.state).all(axis=1)
        s.extras["terminated"] = terminated
        w = dict(cfg.reward_weights)
        terms = self.rewards(s, set(w))
        weighted = {k: w[k] * v * cfg.control_dt_s for k, v in terms.items()}
        reward = np.sum(list(weighted.values()), axis=0) if weighted else np.zeros(self.num_envs)
        truncated = (self.episode_step >= self.max_episode_steps) & ~terminated
        self.episode_return += reward
        obs = self.actor_obs(s, self._noise())
        critic = self.critic_obs(s)
        info: dict[str, Any] = {"reward_terms": weighted}
        done = terminated | truncated
        if done.any():
            rows = np.flatnonzero(done)
            info["final_obs"] = obs[rows].copy()
            info["final_critic_obs"] = critic[rows].copy()
            info["done_rows"] = rows
            info["episode_return"] = self.episode_return[rows].copy()
            info["episode_length"] = self.episode_step[rows].copy()
            info["episode_log"] = self.on_episode_end(rows)
            self._reset_rows(rows)
            s2 = self._robot_state(self.sim.sensor_out, privileged=True)
            fresh_obs = self.actor_obs(s2, self._noise())
            fresh_critic = self.critic_obs(s2)
            obs[rows] = fresh_obs[rows]
            critic[rows] = fresh_critic[rows]
        info["critic_obs"] = critic
        return obs, reward, terminated, truncated, info

    def close(self) -> None:
        self.sim.close()

    # ------------------------------------------------------------------ snapshots (bit-for-bit resume)

    def get_state(self) -> dict[str, Any]:
        """Everything that evolves during a run: per-env buffers, physics state, observation histories, the
        generator. Models are not stored: they are a function of the sampled parameters and are re-derived."""
        arrays = {k: v.copy() for k, v in vars(self).items() if isinstance(v, np.ndarray)}
        return {
            "arrays": arrays,
            "params": {k: v.copy() for k, v in self.params.items()},
            "sim": {"state": self.sim.state.copy(), "sensor_out": self.sim.sensor_out.copy()},
            "obs_history": [
                [h.copy() for h in b._history] + [b._fresh.copy()] for b in (self.actor_obs, self.critic_obs)
            ],
            "rng": self.rng.bit_generator.state,
        }

    def set_state(self, snap: dict[str, Any]) -> None:
        """Restore a `get_state` snapshot taken from a task with the same config and number of envs."""
        for k, v in snap["arrays"].items():
            current = getattr(self, k, None)
            if not isinstance(current, np.ndarray) or current.shape != v.shape:
                raise ValueError(
                    f"snapshot does not fit this task: buffer {k!r} has shape {v.shape}, task has "
                    f"{getattr(current, 'shape', None)}; resume with the run's own config and num_envs"
                )
            current[...] = v
        for k, v in snap["params"].items():
            self.params[k][...] = v
        apply_all(self.randomizer, self.models, self.params, np.arange(self.num_envs))
        self.sim.state[...] = snap["sim"]["state"]
        self.sim.sensor_out[...] = snap["sim"]["sensor_out"]
        for b, hist in zip((self.actor_obs, self.critic_obs), snap["obs_history"]):
            for h, v in zip(b._history, hist[:-1]):
                h[...] = v
            b._fresh[...] = hist[-1]
        self.rng.bit_generator.state = snap["rng"]

    def contract(self, **kwargs: Any) -> PolicyContract:
        """The policy contract for a policy trained on this task."""
        lat = self.cfg.randomization.action_latency_s if self.cfg.randomization.enabled else (0.0, 0.0)
        return PolicyContract.from_robot(
            self.robot,
            control_dt_s=self.cfg.control_dt_s,
            observations=self.actor_obs.contract_terms(),
            commands=CommandContract(self.command_names, tuple(self.command_ranges())),
            robot_kwargs={
                "action_scale": self.cfg.action_scale,
                "action_clip": self.cfg.action_clip,
                "action_type": self.cfg.action_type,
            },
            timing_kwargs={"latency_range_s": tuple(lat), "gait_period_s": getattr(self.cfg, "gait_period_s", None)},
            **kwargs,
        )

    def command_ranges(self) -> list[tuple[float, float]]:  # hook
        return []

    command_mirror_signs: tuple[float, ...] = ()  # how each command reflects in the sagittal plane

    def gait_phase_shift(self) -> float:  # hook: the gait-clock shift that mirrors the gait (see robots/symmetry)
        return 0.0

    def actor_mirror(self) -> tuple[Mirror, Mirror]:
        """Left-right reflection maps of the actor observation and of the action (for a symmetric actor).
        Raises RobotSpecError when the robot or its home pose is not mirror-symmetric."""
        joints = joint_mirror(self.robot)
        feet = feet_mirror(self.robot) if self.robot.feet else None
        obs = observation_mirror(
            self.cfg.actor_obs, self.actor_obs.context, joints, feet, self.command_mirror_signs, self.gait_phase_shift()
        )
        return obs, joints

    # ------------------------------------------------------------------ internals

    def _reset_rows(self, rows: Array) -> None:
        p = sample(
            self.cfg.randomization, self.rng, len(rows), self.robot.num_joints, self.physics_dt, self.max_latency_steps
        )
        for k, v in p.items():
            self.params[k][rows] = v
        apply_all(self.randomizer, self.models, p, rows)
        self.sim.state[rows] = self.reset_state(rows)
        self.episode_step[rows] = 0
        self.episode_return[rows] = 0.0
        self.time_since_push[rows] = 0.0
        self.action[rows] = 0.0
        self.last_action[rows] = 0.0
        self.target[rows] = self.sim.state[rows][:, self.sim.qpos_slice][:, self.qadr]
        self.prev_target[rows] = self.target[rows]
        self.sample_commands(rows)
        self.actor_obs.reset(rows)
        self.critic_obs.reset(rows)
        # Sensors of reset rows: evaluate them at the new state so the first observation is consistent.
        for i in rows:
            m, d = self.models[i], self.sim._datas[0]
            mujoco.mj_setState(m, d, self.sim.state[i], mujoco.mjtState.mjSTATE_FULLPHYSICS)
            mujoco.mj_forward(m, d)
            self.sim.sensor_out[i, :] = d.sensordata
            self.prev_sensor[i, :] = d.sensordata

    def _push(self) -> None:
        self.time_since_push += self.cfg.control_dt_s
        due = self.time_since_push >= self.params["push_interval_s"]
        if self.robot.floating_base and due.any():
            rows = np.flatnonzero(due)
            v = self.cfg.randomization.push_velocity_mps
            qvel = self.sim.state[:, self.sim.qvel_slice]
            qvel[rows, :2] += self.rng.uniform(-v, v, size=(len(rows), 2))
            self.sim.state[:, self.sim.qvel_slice] = qvel
            self.time_since_push[rows] = 0.0

    def _noise(self) -> dict[str, Array] | None:
        if not self.noise_amp:
            return None
        out = {}
        for t in self.cfg.actor_obs:
            a = self.noise_amp.get(t.name)
            if a:
                size = self.actor_obs.sizes[self.cfg.actor_obs.index(t)]
                out[t.name] = self.rng.uniform(-a, a, size=(self.num_envs, size))
        return out

    def _delayed(self, sensors: Array) -> Array:
        """Sensor rows as the policy sees them: `obs_latency_steps` physics steps old. (N, nstep, ns) -> (N, ns)."""
        idx = self.decimation - 1 - self.params["obs_latency_steps"]  # may be negative: previous call's samples
        n = np.arange(self.num_envs)
        cur = sensors[n, np.clip(idx, 0, None)]
        old = self.prev_sensor[n, np.clip(idx + self.decimation, 0, self.decimation - 1)]
        return np.where((idx >= 0)[:, None], cur, old)

    def _robot_state(self, sensors: Array, privileged: bool) -> RobotState:
        lay = self.layout
        seen = self._delayed(sensors)
        s = RobotState(
            joint_pos=seen[:, lay.joint_pos] + self.params["encoder_offset_rad"],
            joint_vel=seen[:, lay.joint_vel],
            command=self.command,
            last_action=self.action,
            joint_target=self.target,
        )
        if lay.imu_quat is not None:
            s.imu_quat = seen[:, lay.imu_quat]
            s.gyro = seen[:, lay.imu_gyro]
            s.accel = seen[:, lay.imu_acc]
        latest = sensors[:, -1]
        s.extras["torque"] = latest[:, self.torque_idx]
        s.extras["true_joint_pos"] = self.sim.state[:, self.sim.qpos_slice][:, self.qadr]
        s.extras["true_joint_vel"] = self.sim.state[:, self.sim.qvel_slice][:, self.dadr]
        if privileged and lay.imu_linvel is not None:
            s.base_lin_vel = latest[:, lay.imu_linvel]
            s.foot_contact = latest[:, lay.foot_touch]
            s.extras["true_gyro"] = latest[:, lay.imu_gyro]
            s.extras["true_quat"] = latest[:, lay.imu_quat]
        self.fill_task_state(s, latest)
        return s


def angle_wrap(x: Array) -> Array:
    return (x + math.pi) % (2 * math.pi) - math.pi
