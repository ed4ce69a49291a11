"""Left-right mirror symmetry: how joints, feet and observation terms map under reflection in the sagittal plane.

A legged robot is (near) mirror-symmetric about its base frame's x-z plane. Reflecting a state in that plane swaps
the left and right limbs and flips some signs. A policy that is equivariant to the reflection, pi(M_o o) = M_a pi(o),
learns one gait instead of two half-gaits and needs about half the data to find it (Mittal et al., "Symmetry
Considerations for Learning Task Symmetric Robot Policies", ICRA 2024).

A mirror map is a signed permutation, stored as two arrays: `mirrored[i] = sign[i] * x[perm[i]]`. Applying a
reflection twice gives back the original, so `perm[perm] == arange` and `sign[perm] == sign`.

Joints pair by name: a name with a left/right token (`left`/`right`, `L`/`R`, `FL`/`FR`, `RL`/`RR`, `LF`/`RF`,
`LH`/`RH`) pairs with the name that has the opposite token; a name without one pairs with itself. The sign comes
from the model: at the home pose, the reflection of joint i's axis must be parallel (+1) or antiparallel (-1) to
its partner's axis. A robot whose model fails that check is not mirror-symmetric and gets an error naming the joint.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import mujoco
import numpy as np

from footfall.robots.observations import TERMS, TermConfig, TermContext
from footfall.robots.spec import RobotSpec, RobotSpecError

Array = np.ndarray

_SWAP = {"left": "right", "l": "r", "fl": "fr", "rl": "rr", "hl": "hr", "bl": "br", "lf": "rf", "lh": "rh"}
_SWAP.update({v: k for k, v in list(_SWAP.items())})


def mirror_name(name: str) -> str:
    """The name of the limb part on the other side: `FL_hip_joint` -> `FR_hip_joint`, `left_knee` -> `right_knee`.
    Tokens are separated by `_`, `-`, `.` or spaces; case is kept. A name without a side token maps to itself."""
    parts = re.split(r"([_\-. ]+)", name)
    out = []
    for p in parts:
        swap = _SWAP.get(p.lower())
        if swap is None:
            out.append(p)
        elif p.isupper():
            out.append(swap.upper())
        elif p[:1].isupper():
            out.append(swap.capitalize())
        else:
            out.append(swap)
    return "".join(out)


@dataclass(frozen=True)
class Mirror:
    """A signed permutation: `apply(x)[..., i] = sign[i] * x[..., perm[i]]`."""

    perm: Array
    sign: Array

    def apply(self, x: Array) -> Array:
        return x[..., self.perm] * self.sign

    @staticmethod
    def concat(parts: Sequence[Mirror]) -> Mirror:
        perms, signs, offset = [], [], 0
        for m in parts:
            perms.append(m.perm + offset)
            signs.append(m.sign)
            offset += len(m.perm)
        return Mirror(np.concatenate(perms).astype(np.int64), np.concatenate(signs).astype(np.float64))

    @staticmethod
    def signs(sign: Sequence[float]) -> Mirror:
        """No permutation, per-entry signs."""
        return Mirror(np.arange(len(sign)), np.asarray(sign, dtype=np.float64))


def _pairing(names: Sequence[str], what: str, robot: str) -> Array:
    index = {n: i for i, n in enumerate(names)}
    perm = np.empty(len(names), dtype=np.int64)
    for i, n in enumerate(names):
        partner = mirror_name(n)
        if partner not in index:
            raise RobotSpecError(
                f"{robot}: {what} {n!r} has no mirror partner {partner!r}. Symmetric training pairs left and right "
                f"parts by name (left/right, L/R, FL/FR, RL/RR, LF/RF, LH/RH tokens); rename the parts, or train "
                "without the symmetric actor (--set ppo.symmetric_actor=False)."
            )
        perm[i] = index[partner]
    return perm


def joint_mirror(robot: RobotSpec, tol: float = 1e-3) -> Mirror:
    """The joint map of `robot` (policy order), with signs from its joint axes at the home pose."""
    perm = _pairing(robot.joint_names, "joint", robot.name)
    model = mujoco.MjModel.from_xml_path(str(robot.mjcf_path))
    data = mujoco.MjData(model)
    mujoco.mj_resetDataKeyframe(model, data, model.key(robot.home_keyframe).id)
    mujoco.mj_forward(model, data)
    base = model.body(robot.base_body).id
    rot = data.xmat[base].reshape(3, 3)
    axes = np.array([rot.T @ data.xaxis[model.joint(j).id] for j in robot.joint_names])  # base frame
    # A joint axis is an axial vector: reflecting it in the x-z plane gives (-x, y, -z).
    reflected = axes * np.array([-1.0, 1.0, -1.0])
    dots = np.sum(reflected * axes[perm], axis=-1)
    bad = np.flatnonzero(np.abs(np.abs(dots) - 1.0) > tol)
    if len(bad):
        j = robot.joint_names[bad[0]]
        raise RobotSpecError(
            f"{robot.name}: joint {j!r} (axis {axes[bad[0]].round(3)} in the base frame) is not the mirror image of "
            f"{robot.joint_names[perm[bad[0]]]!r} (axis {axes[perm[bad[0]]].round(3)}): the model is not "
            "left-right symmetric. Train without the symmetric actor (--set ppo.symmetric_actor=False)."
        )
    sign = np.sign(dots)
    default = np.asarray(robot.default_pose)
    if np.max(np.abs(default[perm] * sign - default)) > 1e-6:
        raise RobotSpecError(
            f"{robot.name}: the home pose {robot.home_keyframe!r} is not left-right symmetric, so offsets from it "
            "do not mirror. Make the keyframe symmetric, or train without the symmetric actor."
        )
    return Mirror(perm, sign)


def feet_mirror(robot: RobotSpec) -> Mirror:
    perm = _pairing(robot.feet, "foot", robot.name)
    return Mirror(perm, np.ones(len(perm)))


# How each observation term reflects. Body-frame vectors negate y; angular velocities (axial) negate x and z.
_POLAR = (1.0, -1.0, 1.0)
_AXIAL = (-1.0, 1.0, -1.0)
_TERM_KIND = {
    "gyro": "axial",
    "accel": "polar",
    "projected_gravity": "polar",
    "joint_pos_rel": "joint",
    "joint_vel": "joint",
    "last_action": "joint",
    "joint_target_rel": "joint",
    "command": "command",
    "gait_clock": "phase",
    "ee_pos": "polar",
    "ee_to_target": "polar",
    "ee_to_target_dir": "polar",
    "base_lin_vel": "polar",
    "foot_contact": "feet",
    "base_height": "scalar",
}


def observation_mirror(
    terms: Sequence[TermConfig],
    context: TermContext,
    joints: Mirror,
    feet: Mirror | None,
    command: Sequence[float],
    phase_shift: float,
) -> Mirror:
    """The map of an observation vector built from `terms` (with history). `command` holds the command's signs
    under reflection (velocity: vx, -vy, -yaw rate); `phase_shift` is the gait-clock shift, 0 or 0.5, that makes
    the reflected gait the original one (a trot or an alternating biped gait: 0.5)."""
    parts = []
    for t in terms:
        kind = _TERM_KIND.get(t.name)
        if kind is None:
            raise ValueError(f"observation term {t.name!r} has no mirror rule; add it to robots/symmetry.py _TERM_KIND")
        if kind == "axial":
            m = Mirror.signs(_AXIAL)
        elif kind == "polar":
            m = Mirror.signs(_POLAR)
        elif kind == "joint":
            m = joints
        elif kind == "feet":
            if feet is None:
                raise ValueError("foot_contact needs a foot mirror")
            m = feet
        elif kind == "command":
            m = Mirror.signs(command)
        elif kind == "phase":
            if phase_shift not in (0.0, 0.5):
                raise ValueError(f"gait clock phase shift {phase_shift} is not 0 or 0.5: it does not mirror")
            s = -1.0 if phase_shift == 0.5 else 1.0  # sin and cos of 2 pi (phase + 1/2) are minus themselves
            m = Mirror.signs((s, s))
        else:
            m = Mirror.signs((1.0,) * TERMS[t.name].size(context))
        if len(m.perm) != TERMS[t.name].size(context):
            raise ValueError(f"mirror of {t.name!r} has size {len(m.perm)}, the term has {TERMS[t.name].size(context)}")
        parts += [m] * t.history  # history entries are stacked newest first, each mirrors alike
    return Mirror.concat(parts)


def gait_phase_shift(offsets: Sequence[float], feet: Mirror) -> float:
    """The clock shift that maps the gait schedule onto its mirror image: offsets[perm[i]] = offsets[i] + shift."""
    off = np.asarray(offsets, dtype=np.float64)
    for shift in (0.0, 0.5):
        if np.allclose((off + shift) % 1.0, off[feet.perm] % 1.0, atol=1e-9):
            return shift
    raise ValueError(
        f"gait offsets {tuple(off)} are not left-right symmetric (no clock shift of 0 or 1/2 maps them onto their "
        "mirror image); use a symmetric gait or train without the symmetric actor"
    )
