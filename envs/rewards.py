"""Reward terms: small pure functions of arrays, batched over a leading axis. Weights live in the task config;
the environment reports every weighted term in `info["reward_terms"]`, and the reward is their sum."""

from __future__ import annotations

import numpy as np

Array = np.ndarray


def track_lin_vel_xy(command_xy: Array, lin_vel_xy_body: Array, sigma: float = 0.25) -> Array:
    """exp(-|c - v|^2 / sigma): 1 when planar velocity tracking is perfect. (N, 2), (N, 2) -> (N,)."""
    return np.exp(-np.sum(np.square(command_xy - lin_vel_xy_body), axis=-1) / sigma)


def track_ang_vel_z(command_yaw_rate: Array, ang_vel_z: Array, sigma: float = 0.25) -> Array:
    """exp(-(c - w_z)^2 / sigma). (N,), (N,) -> (N,)."""
    return np.exp(-np.square(command_yaw_rate - ang_vel_z) / sigma)


def lin_vel_z(lin_vel_body: Array) -> Array:
    """Vertical base velocity squared (bouncing). (N, 3) -> (N,)."""
    return np.square(lin_vel_body[:, 2])


def ang_vel_xy(gyro: Array) -> Array:
    """Roll and pitch rates squared (wobbling). (N, 3) -> (N,)."""
    return np.sum(np.square(gyro[:, :2]), axis=-1)


def orientation(projected_gravity: Array) -> Array:
    """Tilt: squared horizontal part of body-frame gravity, 0 upright. (N, 3) -> (N,)."""
    return np.sum(np.square(projected_gravity[:, :2]), axis=-1)


def base_height(height: Array, target: float) -> Array:
    """Squared error to the nominal base height. (N,) -> (N,)."""
    return np.square(height - target)


def torques(joint_torque: Array) -> Array:
    """Sum of squared joint torques, N^2 m^2. (N, nj) -> (N,)."""
    return np.sum(np.square(joint_torque), axis=-1)


def action_rate(action: Array, last_action: Array) -> Array:
    """Squared change of the policy output between steps (jerk). (N, nj) -> (N,)."""
    return np.sum(np.square(action - last_action), axis=-1)


def joint_pos_limits(joint_pos: Array, lo: Array, hi: Array, margin: float = 0.05) -> Array:
    """How far joints go past their range shrunk by `margin` (rad). (N, nj) -> (N,)."""
    return np.sum(np.clip(lo + margin - joint_pos, 0, None) + np.clip(joint_pos - (hi - margin), 0, None), axis=-1)


def feet_air_time(first_contact: Array, air_time: Array, moving: Array, target_s: float = 0.25) -> Array:
    """On touchdown, reward (air time - target): long steps when a motion is commanded. (N, nf) -> (N,)."""
    return np.sum((air_time - target_s) * first_contact, axis=-1) * moving


def gait_contact(contact: Array, phase: Array, stance_offsets: Array, moving: Array, duty: float = 0.5) -> Array:
    """Share of feet whose contact matches a periodic gait schedule: foot i should be on the ground when
    (phase + offset_i) mod 1 < duty. A trot offsets the diagonal pairs by half a cycle. Only while a motion is
    commanded. (N, nf) bool, (N,), (nf,), (N,) -> (N,)."""
    desired = ((phase[:, None] + stance_offsets[None, :]) % 1.0) < duty
    return np.mean(contact == desired, axis=-1) * moving


def feet_swing_height(
    foot_height: Array, phase: Array, stance_offsets: Array, moving: Array, swing_height: float, duty: float = 0.5
) -> Array:
    """exp(-sum (h - h_ref)^2 / 0.005 m^2) for the gait schedule's foot heights: h_ref is 0 in stance and
    swing_height x sin(pi x swing progress) in swing, so a swing foot lifts instead of shuffling. Only while a
    motion is commanded. foot_height: (N, nf) m above its standing height; (N,), (nf,), (N,) -> (N,)."""
    p = (phase[:, None] + stance_offsets[None, :]) % 1.0
    progress = np.clip((p - duty) / (1.0 - duty), 0.0, 1.0)
    ref = np.where(p < duty, 0.0, swing_height * np.sin(np.pi * progress))
    return np.exp(-np.sum(np.square(foot_height - ref), axis=-1) / 0.005) * moving


def stand_still(joint_pos_rel: Array, moving: Array) -> Array:
    """Deviation from the default pose when the command is (near) zero. (N, nj) -> (N,)."""
    return np.sum(np.abs(joint_pos_rel), axis=-1) * (1.0 - moving)


def feet_slip(foot_vel_xy: Array, contact: Array) -> Array:
    """Horizontal speed of feet that are on the ground. (N, nf, 2), (N, nf) -> (N,)."""
    return np.sum(np.sum(np.square(foot_vel_xy), axis=-1) * contact, axis=-1)


def energy(joint_torque: Array, joint_vel: Array) -> Array:
    """Positive mechanical power, W. (N, nj) -> (N,)."""
    return np.sum(np.clip(joint_torque * joint_vel, 0, None), axis=-1)


def reach_distance(ee_to_target: Array, sigma: float = 0.3) -> Array:
    """exp(-|d| / sigma), a wide kernel that rewards progress from anywhere in the workspace, plus a sharp kernel
    exp(-|d| / 0.02) that pays for the last centimetres: 2 at zero error. (N, 3) -> (N,)."""
    d = np.linalg.norm(ee_to_target, axis=-1)
    return np.exp(-d / sigma) + np.exp(-d / 0.02)


def posture(joint_pos_rel: Array) -> Array:
    """Sum of squared joint offsets from the default pose. (N, nj) -> (N,). A redundant arm's task reward leaves its
    null space free; a light pull toward one posture gives it a preferred point."""
    return np.sum(np.square(joint_pos_rel), axis=-1)


def joint_vel_sq(joint_vel: Array) -> Array:
    """Sum of squared joint velocities. (N, nj) -> (N,)."""
    return np.sum(np.square(joint_vel), axis=-1)


def alive(n: int) -> Array:
    """1 per step while the episode runs. -> (N,)."""
    return np.ones(n)
