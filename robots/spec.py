"""RobotSpec: one typed description of a robot, loaded from an MJCF file plus a small TOML spec file.

The MJCF says what MuJoCo needs (bodies, joints, actuators, sensors); the spec file says what the rest of
footfall needs and MJCF cannot express: the joint order the policy uses, which site is the IMU, which sites are
feet, velocity limits, the published mass to check against. Everything else (default pose, PD gains, torque and
position limits, physics step) is read from the model, so the two files cannot disagree.

Spec file fields (TOML):

    name = "go1"                      # registry name
    kind = "quadruped"                # quadruped | biped | arm
    mjcf = "go1.xml"                  # path relative to the spec file
    joints = ["FR_hip_joint", ...]    # model joint names, in policy order
    velocity_limits = [30.1, ...]     # rad/s, policy order
    base_body = "trunk"               # floating base (legged) or fixed base (arm)
    home_keyframe = "home"            # default pose; must lie inside the joint ranges
    imu_site = "imu"                  # legged robots: frame of the IMU
    feet = ["FR_foot", ...]           # legged robots: sites enclosing each foot's contact geometry
    end_effector_site = "ee"          # arms
    nominal_base_height_m = 0.285     # legged robots: base height standing at home
    published_mass_kg = 12.74         # optional: total mass from the cited source
    description = "..."               # optional
    actuators = [...]                 # optional: actuator names in policy order (default: the one driving each joint)
    kp = [...]                        # optional: override the model's PD gains (policy order); turns any
    kd = [...]                        #   actuator on the joint into a position (PD) actuator with these gains
    torque_limits = [...]             # optional: override actuator force limits (N m, policy order)
    motor_index = [...]               # optional: the robot SDK's motor number for each joint above (policy order),
                                      #   e.g. Unitree's H1 [7, 3, 4, 5, 10, 8, 0, 1, 2, 11]; 0..19, distinct
    policy_joint_names = [...]        # optional: the name a policy uses for each joint above (a joint-name map,
                                      #   for a model whose joints are named differently from the trained one)

Third-party models often lack the sensors footfall reads (IMU, joint encoders, foot contact). `build_model`
adds whatever is missing through MjSpec, so a model from outside the project runs unchanged.
"""

from __future__ import annotations

import hashlib
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import mujoco
import numpy as np

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

RobotKind = Literal["quadruped", "biped", "arm"]
ROBOT_KINDS: tuple[str, ...] = ("quadruped", "biped", "arm")

_REQUIRED = ("name", "kind", "mjcf", "joints", "velocity_limits", "base_body", "home_keyframe")
_OPTIONAL = (
    "imu_site",
    "feet",
    "end_effector_site",
    "nominal_base_height_m",
    "published_mass_kg",
    "description",
    "actuators",
    "kp",
    "kd",
    "torque_limits",
    "policy_joint_names",
    "motor_index",
)


class RobotSpecError(ValueError):
    """A robot description (MJCF or spec file) is missing, malformed or inconsistent."""


@dataclass(frozen=True)
class SensorLayout:
    """Indices into `MjData.sensordata` for each quantity footfall reads. Arrays are in policy joint order."""

    joint_pos: np.ndarray  # (nj,)
    joint_vel: np.ndarray  # (nj,)
    imu_quat: np.ndarray | None = None  # (4,) orientation of the IMU frame in the world, wxyz
    imu_gyro: np.ndarray | None = None  # (3,) angular velocity, IMU frame, rad/s
    imu_acc: np.ndarray | None = None  # (3,) specific force, IMU frame, m/s^2 (reads +g upward at rest)
    imu_linvel: np.ndarray | None = None  # (3,) linear velocity, IMU frame, m/s: simulator-only (critic)
    foot_touch: np.ndarray | None = None  # (nfeet,) normal contact force on each foot site, N
    ee_pos: np.ndarray | None = None  # (3,) end-effector position, world frame
    ee_quat: np.ndarray | None = None  # (4,) end-effector orientation, wxyz


@dataclass(frozen=True, eq=False)
class RobotSpec:
    """Everything footfall knows about one robot. Per-joint tuples are in policy order."""

    name: str
    kind: RobotKind
    mjcf_path: Path
    spec_path: Path | None
    description: str
    joint_names: tuple[str, ...]
    actuator_names: tuple[str, ...]
    default_pose: tuple[float, ...]  # rad, from the home keyframe
    kp: tuple[float, ...]  # N m / rad
    kd: tuple[float, ...]  # N m s / rad
    torque_limits: tuple[float, ...]  # N m (symmetric)
    position_limits: tuple[tuple[float, float], ...]  # rad, (lo, hi)
    velocity_limits: tuple[float, ...]  # rad/s
    base_body: str
    home_keyframe: str
    physics_dt: float  # s, the MJCF's timestep
    total_mass_kg: float
    imu_site: str | None = None
    feet: tuple[str, ...] = ()
    end_effector_site: str | None = None
    nominal_base_height_m: float | None = None
    published_mass_kg: float | None = None
    gain_override: bool = False  # kp/kd/torque limits came from the spec file, not the MJCF
    policy_joint_names: tuple[str, ...] | None = None  # names a policy knows the joints by (default: joint_names)
    motor_index: tuple[int, ...] | None = None  # the robot SDK's motor number per joint (Unitree SDK2: 0..19)

    @property
    def policy_names(self) -> tuple[str, ...]:
        """Joint names as policies see them: `policy_joint_names` when the spec maps them, else the model's."""
        return self.policy_joint_names or self.joint_names

    @property
    def num_joints(self) -> int:
        return len(self.joint_names)

    @property
    def is_legged(self) -> bool:
        return self.kind in ("quadruped", "biped")

    @property
    def floating_base(self) -> bool:
        return self.is_legged

    def model_hash(self) -> str:
        """sha256 of the MJCF text, recorded in policy contracts."""
        return hashlib.sha256(self.mjcf_path.read_bytes()).hexdigest()

    # ------------------------------------------------------------------ loading

    @classmethod
    def from_file(cls, spec_path: str | Path) -> RobotSpec:
        """Load a spec file (TOML) and the MJCF it names, and check that they agree."""
        spec_path = Path(spec_path)
        if not spec_path.is_file():
            raise RobotSpecError(
                f"robot spec file not found: {spec_path}. Pass a path to a .toml spec file "
                "(see robots/spec.py for its fields) or the name of a built-in robot."
            )
        try:
            fields = tomllib.loads(spec_path.read_text())
        except tomllib.TOMLDecodeError as e:
            raise RobotSpecError(f"spec file {spec_path} is not valid TOML: {e}") from e
        missing = [k for k in _REQUIRED if k not in fields]
        if missing:
            raise RobotSpecError(
                f"spec file {spec_path} lacks required field(s) {missing}; required: {list(_REQUIRED)}"
            )
        unknown = sorted(set(fields) - set(_REQUIRED) - set(_OPTIONAL))
        if unknown:
            raise RobotSpecError(
                f"spec file {spec_path} has unknown field(s) {unknown}; valid fields: {sorted(_REQUIRED + _OPTIONAL)}"
            )
        if fields["kind"] not in ROBOT_KINDS:
            raise RobotSpecError(f"spec file {spec_path}: kind {fields['kind']!r} is not one of {list(ROBOT_KINDS)}")
        mjcf_path = (spec_path.parent / fields["mjcf"]).resolve()
        return cls._from_fields(fields, mjcf_path, spec_path.resolve())

    @classmethod
    def _from_fields(cls, fields: dict, mjcf_path: Path, spec_path: Path | None) -> RobotSpec:
        where = f"spec file {spec_path}" if spec_path else "robot spec"
        mjspec = _load_mjspec(mjcf_path)
        model = _compile(mjspec, mjcf_path)
        joints = tuple(fields["joints"])
        n = len(joints)
        kind = fields["kind"]

        valid_joints = [
            model.joint(i).name
            for i in range(model.njnt)
            if int(model.jnt_type[i]) in (int(mujoco.mjtJoint.mjJNT_HINGE), int(mujoco.mjtJoint.mjJNT_SLIDE))
        ]
        for j in joints:
            if j not in valid_joints:
                raise RobotSpecError(
                    f"{where} names joint {j!r}, which {mjcf_path.name} does not have. Valid joints: {valid_joints}"
                )
        if len(set(joints)) != n:
            dup = sorted({j for j in joints if joints.count(j) > 1})
            raise RobotSpecError(f"{where} lists joint(s) {dup} more than once")

        def per_joint(key: str) -> tuple[float, ...] | None:
            if key not in fields:
                return None
            v = fields[key]
            if len(v) != n:
                raise RobotSpecError(
                    f"{where}: {key} has {len(v)} entries but joints has {n} (one per joint, policy order)"
                )
            if not all(isinstance(x, (int, float)) and math.isfinite(x) and x >= 0 for x in v):
                raise RobotSpecError(f"{where}: {key} must hold finite non-negative numbers, got {v}")
            return tuple(float(x) for x in v)

        vel_limits = per_joint("velocity_limits")
        kp_over, kd_over, tau_over = per_joint("kp"), per_joint("kd"), per_joint("torque_limits")
        if (kp_over is None) != (kd_over is None):
            raise RobotSpecError(f"{where}: give both kp and kd to override the model's gains, or neither")

        # Actuators: named in the spec, or found by the joint they drive.
        act_by_joint = {}
        for a in range(model.nu):
            if int(model.actuator_trntype[a]) == int(mujoco.mjtTrn.mjTRN_JOINT):
                act_by_joint.setdefault(model.joint(model.actuator_trnid[a, 0]).name, model.actuator(a).name)
        if "actuators" in fields:
            acts = tuple(fields["actuators"])
            valid_acts = [model.actuator(a).name for a in range(model.nu)]
            for a in acts:
                if a not in valid_acts:
                    raise RobotSpecError(
                        f"{where} names actuator {a!r}, which {mjcf_path.name} does not have. "
                        f"Valid actuators: {valid_acts}"
                    )
            if len(acts) != n:
                raise RobotSpecError(f"{where}: actuators has {len(acts)} entries but joints has {n}")
        else:
            lacking = [j for j in joints if j not in act_by_joint]
            if lacking:
                raise RobotSpecError(
                    f"{where}: joint(s) {lacking} have no actuator in {mjcf_path.name}. Add a "
                    "<position> actuator per joint, or list `actuators` in the spec file."
                )
            acts = tuple(act_by_joint[j] for j in joints)

        # Named frames.
        def check_name(objtype: mujoco.mjtObj, key: str, value: str | None) -> None:
            if value is None:
                return
            if mujoco.mj_name2id(model, objtype, value) < 0:
                kind_name = {mujoco.mjtObj.mjOBJ_SITE: "site", mujoco.mjtObj.mjOBJ_BODY: "body"}[objtype]
                count = model.nsite if kind_name == "site" else model.nbody
                valid = [mujoco.mj_id2name(model, objtype, i) for i in range(count)]
                raise RobotSpecError(
                    f"{where}: {key} = {value!r} is not a {kind_name} of {mjcf_path.name}. "
                    f"Valid {kind_name}s: {[v for v in valid if v]}"
                )

        check_name(mujoco.mjtObj.mjOBJ_BODY, "base_body", fields["base_body"])
        check_name(mujoco.mjtObj.mjOBJ_SITE, "imu_site", fields.get("imu_site"))
        check_name(mujoco.mjtObj.mjOBJ_SITE, "end_effector_site", fields.get("end_effector_site"))
        for foot in fields.get("feet", []):
            check_name(mujoco.mjtObj.mjOBJ_SITE, "feet", foot)
        if kind in ("quadruped", "biped"):
            for key in ("imu_site", "feet", "nominal_base_height_m"):
                if key not in fields:
                    raise RobotSpecError(f"{where}: a {kind} needs `{key}` in its spec file")
            if model.njnt == 0 or int(model.jnt_type[0]) != int(mujoco.mjtJoint.mjJNT_FREE):
                raise RobotSpecError(
                    f"{where}: a {kind} needs a free joint on its base body "
                    f"{fields['base_body']!r} as the first joint of {mjcf_path.name}"
                )
        elif "end_effector_site" not in fields:
            raise RobotSpecError(f"{where}: an arm needs `end_effector_site` in its spec file")

        # Default pose from the home keyframe, checked against the joint ranges.
        key_name = fields["home_keyframe"]
        key_id = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_KEY, key_name)
        if key_id < 0:
            valid = [model.key(i).name for i in range(model.nkey)]
            raise RobotSpecError(
                f"{where}: home_keyframe {key_name!r} is not a keyframe of {mjcf_path.name}. Valid keyframes: {valid}"
            )
        # The keyframe's ctrl (the PD targets) is the default pose when it has one; its qpos may be the sagged rest
        # state under those targets. Without ctrl, qpos is the default pose.
        qpos0 = model.key_qpos[key_id]
        key_ctrl = next((np.asarray(k.ctrl) for k in mjspec.keys if k.name == key_name), np.zeros(0))
        default_pose, pos_limits = [], []
        for i, j in enumerate(joints):
            jid = model.joint(j).id
            q = float(qpos0[model.jnt_qposadr[jid]])
            aid = model.actuator(acts[i]).id
            target = float(key_ctrl[aid]) if len(key_ctrl) == model.nu else q
            lo, hi = (float(x) for x in model.jnt_range[jid]) if model.jnt_limited[jid] else (-math.inf, math.inf)
            for what, value in (("qpos", q), ("ctrl", target)):
                if not lo - 1e-9 <= value <= hi + 1e-9:
                    raise RobotSpecError(
                        f"keyframe {key_name!r} in {mjcf_path.name} puts joint {j!r} at {value:.4f} rad ({what}), "
                        f"outside its range [{lo:.4f}, {hi:.4f}]. Move the keyframe inside the range or widen "
                        "the joint's range."
                    )
            default_pose.append(target)
            pos_limits.append((lo, hi))

        # Gains and torque limits from the actuators (or the spec's override).
        kp, kd, tau = [], [], []
        for i, a in enumerate(acts):
            aid = model.actuator(a).id
            gain, bias = model.actuator_gainprm[aid], model.actuator_biasprm[aid]
            is_pd = (
                int(model.actuator_gaintype[aid]) == int(mujoco.mjtGain.mjGAIN_FIXED)
                and int(model.actuator_biastype[aid]) == int(mujoco.mjtBias.mjBIAS_AFFINE)
                and abs(bias[1] + gain[0]) <= 1e-9 * max(1.0, abs(gain[0]))
            )
            if kp_over is not None:
                kp.append(kp_over[i])
                kd.append(kd_over[i])
            elif is_pd:
                kp.append(float(gain[0]))
                kd.append(float(-bias[2]))
            else:
                raise RobotSpecError(
                    f"actuator {a!r} in {mjcf_path.name} is not a position (PD) actuator. "
                    "footfall runs PD inside the physics step: use <position kp=.. kv=..>, "
                    "or give kp and kd in the spec file to convert it."
                )
            if tau_over is not None:
                tau.append(tau_over[i])
            elif model.actuator_forcelimited[aid]:
                tau.append(float(max(abs(model.actuator_forcerange[aid, 0]), abs(model.actuator_forcerange[aid, 1]))))
            else:
                jid = model.joint(joints[i]).id
                if model.jnt_actfrclimited[jid]:
                    tau.append(float(max(abs(x) for x in model.jnt_actfrcrange[jid])))
                else:
                    raise RobotSpecError(
                        f"actuator {a!r} in {mjcf_path.name} has no force limit. Set forcerange "
                        "on it (the motor's peak torque), or torque_limits in the spec file."
                    )

        return cls(
            name=str(fields["name"]),
            kind=kind,
            mjcf_path=mjcf_path,
            spec_path=spec_path,
            description=str(fields.get("description", "")),
            joint_names=joints,
            actuator_names=acts,
            default_pose=tuple(default_pose),
            kp=tuple(kp),
            kd=tuple(kd),
            torque_limits=tuple(tau),
            position_limits=tuple(pos_limits),
            velocity_limits=vel_limits,
            base_body=str(fields["base_body"]),
            home_keyframe=key_name,
            physics_dt=float(model.opt.timestep),
            total_mass_kg=float(model.body_mass.sum()),
            imu_site=fields.get("imu_site"),
            feet=tuple(fields.get("feet", ())),
            end_effector_site=fields.get("end_effector_site"),
            nominal_base_height_m=fields.get("nominal_base_height_m"),
            published_mass_kg=fields.get("published_mass_kg"),
            gain_override=kp_over is not None or tau_over is not None,
            policy_joint_names=_policy_names(fields, n, where),
            motor_index=_motor_index(fields, n, where),
        )

    # ------------------------------------------------------------------ building

    def build_mjspec(self, floor: bool | None = None) -> mujoco.MjSpec:
        """An editable MjSpec of the robot: spec-file gain overrides applied, missing sensors added, and
        (legged robots, unless `floor=False`) a flat floor and a light added. Environments add terrain to it."""
        spec = _load_mjspec(self.mjcf_path)
        acts = {a.name: a for a in spec.actuators}
        if self.gain_override:
            for i, name in enumerate(self.actuator_names):
                act = acts[name]
                act.gaintype = mujoco.mjtGain.mjGAIN_FIXED
                act.biastype = mujoco.mjtBias.mjBIAS_AFFINE
                act.dyntype = mujoco.mjtDyn.mjDYN_NONE
                act.gainprm[0] = self.kp[i]
                act.biasprm[0:3] = [0.0, -self.kp[i], -self.kd[i]]
                act.gear[0] = 1.0
                act.forcelimited = 1
                act.forcerange = [-self.torque_limits[i], self.torque_limits[i]]
        _add_missing_sensors(spec, self)
        if floor if floor is not None else self.is_legged:
            spec.worldbody.add_geom(
                name="floor",
                type=mujoco.mjtGeom.mjGEOM_PLANE,
                size=[0, 0, 0.05],
                contype=1,
                conaffinity=0,
                condim=3,
                friction=[1.0, 0.005, 0.0001],
                rgba=[0.55, 0.6, 0.65, 1],
            )
            spec.worldbody.add_light(pos=[0, 0, 3], dir=[0, 0, -1], type=int(mujoco.mjtLightType.mjLIGHT_DIRECTIONAL))
        return spec

    def build_model(self, floor: bool | None = None) -> mujoco.MjModel:
        """Compile the robot, ready to simulate (see `build_mjspec`)."""
        return _compile(self.build_mjspec(floor), self.mjcf_path)

    def sensor_layout(self, model: mujoco.MjModel) -> SensorLayout:
        """Locate each quantity footfall reads in `sensordata` of a model built by `build_model`."""
        index = {}
        for s in range(model.nsensor):
            key = (int(model.sensor_type[s]), int(model.sensor_objtype[s]), int(model.sensor_objid[s]))
            index[key] = np.arange(model.sensor_adr[s], model.sensor_adr[s] + model.sensor_dim[s])
        S = mujoco.mjtSensor

        def get(stype: mujoco.mjtSensor, objtype: mujoco.mjtObj, name: str) -> np.ndarray:
            return index[(int(stype), int(objtype), mujoco.mj_name2id(model, objtype, name))]

        J, SITE = mujoco.mjtObj.mjOBJ_JOINT, mujoco.mjtObj.mjOBJ_SITE
        layout = dict(
            joint_pos=np.concatenate([get(S.mjSENS_JOINTPOS, J, j) for j in self.joint_names]),
            joint_vel=np.concatenate([get(S.mjSENS_JOINTVEL, J, j) for j in self.joint_names]),
        )
        if self.imu_site:
            layout.update(
                imu_quat=get(S.mjSENS_FRAMEQUAT, SITE, self.imu_site),
                imu_gyro=get(S.mjSENS_GYRO, SITE, self.imu_site),
                imu_acc=get(S.mjSENS_ACCELEROMETER, SITE, self.imu_site),
                imu_linvel=get(S.mjSENS_VELOCIMETER, SITE, self.imu_site),
            )
        if self.feet:
            layout["foot_touch"] = np.concatenate([get(S.mjSENS_TOUCH, SITE, f) for f in self.feet])
        if self.end_effector_site:
            layout.update(
                ee_pos=get(S.mjSENS_FRAMEPOS, SITE, self.end_effector_site),
                ee_quat=get(S.mjSENS_FRAMEQUAT, SITE, self.end_effector_site),
            )
        return SensorLayout(**layout)

    def joint_qpos_adr(self, model: mujoco.MjModel) -> np.ndarray:
        """qpos addresses of the policy joints. (nj,)"""
        return np.array([model.jnt_qposadr[model.joint(j).id] for j in self.joint_names])

    def joint_dof_adr(self, model: mujoco.MjModel) -> np.ndarray:
        """qvel addresses of the policy joints. (nj,)"""
        return np.array([model.jnt_dofadr[model.joint(j).id] for j in self.joint_names])

    def actuator_ids(self, model: mujoco.MjModel) -> np.ndarray:
        """Actuator ids in policy order; `ctrl[actuator_ids] = targets`. (nj,)"""
        return np.array([model.actuator(a).id for a in self.actuator_names])

    def foot_body_ids(self, model: mujoco.MjModel) -> np.ndarray:
        """Body that carries each foot site. (nfeet,)"""
        return np.array([model.site_bodyid[model.site(f).id] for f in self.feet])

    def summary(self) -> str:
        return f"{self.name} ({self.kind}, {self.num_joints} DoF, {self.total_mass_kg:.2f} kg)"


def _load_mjspec(mjcf_path: Path) -> mujoco.MjSpec:
    if not mjcf_path.is_file():
        raise RobotSpecError(
            f"MJCF file not found: {mjcf_path}. The spec file's `mjcf` field is resolved "
            "relative to the spec file; check the path and file name."
        )
    try:
        return mujoco.MjSpec.from_file(str(mjcf_path))
    except ValueError as e:
        raise RobotSpecError(
            f"could not parse MJCF {mjcf_path}: {str(e).strip()}. Fix the XML (check it with "
            "`python -m mujoco.viewer --mjcf FILE` or an XML linter) and load it again."
        ) from e


def _compile(spec: mujoco.MjSpec, mjcf_path: Path) -> mujoco.MjModel:
    try:
        return spec.compile()
    except ValueError as e:
        raise RobotSpecError(f"MuJoCo could not compile {mjcf_path}: {str(e).strip()}") from e


def _policy_names(fields: dict, n: int, where: str) -> tuple[str, ...] | None:
    names = fields.get("policy_joint_names")
    if names is None:
        return None
    if len(names) != n or not all(isinstance(x, str) for x in names) or len(set(names)) != n:
        raise RobotSpecError(
            f"{where}: policy_joint_names must hold {n} distinct names, one per entry of joints (policy order)"
        )
    return tuple(names)


MAX_MOTORS = 20  # Unitree SDK2's LowCmd_ carries 20 motor commands


def _motor_index(fields: dict, n: int, where: str) -> tuple[int, ...] | None:
    idx = fields.get("motor_index")
    if idx is None:
        return None
    ok = (
        isinstance(idx, list)
        and len(idx) == n
        and all(isinstance(m, int) and not isinstance(m, bool) and 0 <= m < MAX_MOTORS for m in idx)
        and len(set(idx)) == n
    )
    if not ok:
        raise RobotSpecError(
            f"{where}: motor_index must hold {n} distinct motor numbers in 0..{MAX_MOTORS - 1}, one per entry of "
            f"joints (policy order), got {idx!r}"
        )
    return tuple(idx)


def _add_missing_sensors(spec: mujoco.MjSpec, robot: RobotSpec) -> None:
    """Add the sensors footfall reads where the model lacks them (third-party models rarely have all)."""
    S, Obj = mujoco.mjtSensor, mujoco.mjtObj
    have = {(int(s.type), s.objname) for s in spec.sensors}

    def ensure(stype: mujoco.mjtSensor, objtype: mujoco.mjtObj, objname: str, suffix: str) -> None:
        if (int(stype), objname) not in have:
            spec.add_sensor(name=f"footfall_{objname}_{suffix}", type=stype, objtype=objtype, objname=objname)
            have.add((int(stype), objname))

    for j in robot.joint_names:
        ensure(S.mjSENS_JOINTPOS, Obj.mjOBJ_JOINT, j, "pos")
        ensure(S.mjSENS_JOINTVEL, Obj.mjOBJ_JOINT, j, "vel")
    if robot.imu_site:
        ensure(S.mjSENS_FRAMEQUAT, Obj.mjOBJ_SITE, robot.imu_site, "quat")
        ensure(S.mjSENS_GYRO, Obj.mjOBJ_SITE, robot.imu_site, "gyro")
        ensure(S.mjSENS_ACCELEROMETER, Obj.mjOBJ_SITE, robot.imu_site, "acc")
        ensure(S.mjSENS_VELOCIMETER, Obj.mjOBJ_SITE, robot.imu_site, "linvel")
    for foot in robot.feet:
        ensure(S.mjSENS_TOUCH, Obj.mjOBJ_SITE, foot, "touch")
    if robot.end_effector_site:
        ensure(S.mjSENS_FRAMEPOS, Obj.mjOBJ_SITE, robot.end_effector_site, "pos")
        ensure(S.mjSENS_FRAMEQUAT, Obj.mjOBJ_SITE, robot.end_effector_site, "quat")
