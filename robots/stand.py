"""Hold a robot at its home pose under its own PD gains and measure how well it holds.

This is footfall's first smoke test of a robot description: a legged robot that cannot stand on its own gains at
its keyframe has a wrong mass, gain, keyframe or foot geometry, and nothing trained on it will transfer.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import mujoco
import numpy as np

from footfall.robots.spec import RobotSpec


@dataclass(frozen=True)
class StandResult:
    robot: str
    seconds: float  # simulated
    mass_kg: float
    base_height_nominal_m: float | None  # legged robots
    base_height_min_m: float | None
    base_height_max_m: float | None
    base_height_final_m: float | None
    max_joint_error_rad: float  # |q - home| over the run's second half (settled)
    non_foot_contacts: tuple[str, ...]  # bodies other than the feet that touched the floor
    max_tilt_deg: float | None  # base tilt from upright (legged)

    def passed(self, height_tol: float = 0.10, joint_tol_rad: float = 1e-3) -> bool:
        """Legged: base height within `height_tol` of nominal throughout, feet the only contacts.
        Arm: joints within `joint_tol_rad` of home once settled."""
        if self.base_height_nominal_m is None:
            return self.max_joint_error_rad <= joint_tol_rad
        lo, hi = (1 - height_tol) * self.base_height_nominal_m, (1 + height_tol) * self.base_height_nominal_m
        return lo <= self.base_height_min_m and self.base_height_max_m <= hi and not self.non_foot_contacts

    def as_dict(self) -> dict:
        return asdict(self)


def stand(robot: RobotSpec, seconds: float = 10.0, model: mujoco.MjModel | None = None) -> StandResult:
    """Start at the home keyframe, command the home pose, simulate `seconds`, and measure."""
    model = model if model is not None else robot.build_model()
    data = mujoco.MjData(model)
    key = model.key(robot.home_keyframe).id
    mujoco.mj_resetDataKeyframe(model, data, key)
    act = robot.actuator_ids(model)
    qadr = robot.joint_qpos_adr(model)
    home = np.asarray(robot.default_pose)
    data.ctrl[act] = home
    base = model.body(robot.base_body).id
    floor_geoms = {i for i in range(model.ngeom) if model.geom_bodyid[i] == 0}
    foot_bodies = set(robot.foot_body_ids(model).tolist()) if robot.feet else set()

    steps = int(round(seconds / model.opt.timestep))
    heights = np.empty(steps)
    joint_err = np.zeros(steps)
    tilt = np.zeros(steps)
    bad_contacts: set[str] = set()
    for k in range(steps):
        mujoco.mj_step(model, data)
        heights[k] = data.xpos[base, 2]
        joint_err[k] = np.max(np.abs(data.qpos[qadr] - home))
        tilt[k] = np.degrees(np.arccos(np.clip(data.xmat[base, 8], -1.0, 1.0)))  # angle of body z from world z
        for c in data.contact[: data.ncon]:
            g1, g2 = int(c.geom[0]), int(c.geom[1])
            if g1 in floor_geoms or g2 in floor_geoms:
                other = model.geom_bodyid[g2 if g1 in floor_geoms else g1]
                if other not in foot_bodies:
                    bad_contacts.add(model.body(other).name)
    settled = joint_err[steps // 2 :]
    legged = robot.is_legged
    return StandResult(
        robot=robot.name,
        seconds=seconds,
        mass_kg=float(model.body_mass.sum()),
        base_height_nominal_m=robot.nominal_base_height_m if legged else None,
        base_height_min_m=float(heights.min()) if legged else None,
        base_height_max_m=float(heights.max()) if legged else None,
        base_height_final_m=float(heights[-1]) if legged else None,
        max_joint_error_rad=float(settled.max()),
        non_foot_contacts=tuple(sorted(bad_contacts)),
        max_tilt_deg=float(tilt.max()) if legged else None,
    )
