"""Domain randomization: one typed config, sampled per episode and per environment, seeded, and logged.

`sample(cfg, rng, n, ...)` is a pure function of the config and a numpy Generator that returns one row of
parameters per environment; `apply_to_model` writes a row into that environment's MjModel. Every range can be
switched off (`enabled=False`, or a degenerate range such as (1, 1)).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import mujoco
import numpy as np

Range = tuple[float, float]


@dataclass(frozen=True)
class DomainRandomization:
    """Ranges sampled once per episode and per environment, U(lo, hi) unless said otherwise."""

    enabled: bool = True
    friction: Range = (0.4, 1.25)  # floor and foot sliding friction
    added_base_mass_kg: Range = (-1.0, 2.0)
    base_com_offset_m: Range = (-0.03, 0.03)  # per axis, base body COM shift
    link_mass_scale: Range = (0.9, 1.1)  # every other body, mass and inertia
    kp_scale: Range = (0.9, 1.1)
    kd_scale: Range = (0.9, 1.1)
    motor_strength: Range = (0.9, 1.1)  # scales actuator force limits
    joint_damping_scale: Range = (0.8, 1.2)
    armature_scale: Range = (0.8, 1.2)
    frictionloss_scale: Range = (0.5, 1.5)
    encoder_offset_rad: Range = (-0.02, 0.02)  # constant per joint and episode, added to joint_pos readings
    action_latency_s: Range = (0.0, 0.02)  # rounded to physics steps; the delayed action is really applied late
    obs_latency_s: Range = (0.0, 0.01)  # rounded to physics steps; observations read older sensor samples
    push_interval_s: Range = (5.0, 10.0)  # time between pushes
    push_velocity_mps: float = 0.5  # base velocity impulse, uniform in [-v, v] per horizontal axis
    # sensor noise: uniform in [-a, a], added to each observation term's raw value (before scale)
    noise: tuple[tuple[str, float], ...] = (
        ("gyro", 0.2),
        ("accel", 0.5),
        ("projected_gravity", 0.05),
        ("joint_pos_rel", 0.01),
        ("joint_vel", 1.5),
    )

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, tuple) and len(v) == 2 and all(isinstance(x, (int, float)) for x in v):
                lo, hi = v
                if lo > hi:
                    raise ValueError(f"DomainRandomization.{f.name}: range lo > hi ({lo} > {hi}); give (lo, hi)")
                if f.name.endswith(("_s", "_scale", "strength")) and lo < 0:
                    raise ValueError(f"DomainRandomization.{f.name}: must be >= 0, got ({lo}, {hi})")
        if self.push_velocity_mps < 0:
            raise ValueError(f"DomainRandomization.push_velocity_mps must be >= 0, got {self.push_velocity_mps}")
        from footfall.robots.observations import TERMS

        for name, amp in self.noise:
            if name not in TERMS:
                raise ValueError(
                    f"DomainRandomization.noise names unknown observation term {name!r}; valid terms: {sorted(TERMS)}"
                )
            if amp < 0:
                raise ValueError(f"DomainRandomization.noise[{name!r}] must be >= 0, got {amp}")

    @classmethod
    def off(cls) -> DomainRandomization:
        return cls(enabled=False)


# Parameters sampled per environment: name -> shape suffix. Scales are 1 and offsets 0 when disabled.
def sample(
    cfg: DomainRandomization,
    rng: np.random.Generator,
    n: int,
    num_joints: int,
    physics_dt: float,
    max_latency_steps: int,
) -> dict[str, np.ndarray]:
    """One row of parameters per environment. Pure: same config, generator state and n give the same rows."""

    def u(r: Range, shape: tuple[int, ...] = ()) -> np.ndarray:
        return rng.uniform(r[0], r[1], size=(n, *shape))

    if not cfg.enabled:
        ones, zeros = np.ones(n), np.zeros(n)
        return dict(
            friction=np.full(n, np.nan),
            added_base_mass_kg=zeros,
            base_com_offset_m=np.zeros((n, 3)),
            link_mass_scale=ones,
            kp_scale=ones,
            kd_scale=ones,
            motor_strength=ones,
            joint_damping_scale=ones,
            armature_scale=ones,
            frictionloss_scale=ones,
            encoder_offset_rad=np.zeros((n, num_joints)),
            action_latency_steps=np.zeros(n, int),
            obs_latency_steps=np.zeros(n, int),
            push_interval_s=np.full(n, np.inf),
        )

    def steps(r: Range) -> np.ndarray:
        return np.clip(np.round(u(r) / physics_dt).astype(int), 0, max_latency_steps)

    return dict(
        friction=u(cfg.friction),
        added_base_mass_kg=u(cfg.added_base_mass_kg),
        base_com_offset_m=u(cfg.base_com_offset_m, (3,)),
        link_mass_scale=u(cfg.link_mass_scale),
        kp_scale=u(cfg.kp_scale),
        kd_scale=u(cfg.kd_scale),
        motor_strength=u(cfg.motor_strength),
        joint_damping_scale=u(cfg.joint_damping_scale),
        armature_scale=u(cfg.armature_scale),
        frictionloss_scale=u(cfg.frictionloss_scale),
        encoder_offset_rad=u(cfg.encoder_offset_rad, (num_joints,)),
        action_latency_steps=steps(cfg.action_latency_s),
        obs_latency_steps=steps(cfg.obs_latency_s),
        push_interval_s=u(cfg.push_interval_s) if cfg.push_velocity_mps > 0 else np.full(n, np.inf),
    )


class ModelRandomizer:
    """Writes sampled parameters into per-environment MjModels, relative to the nominal model."""

    def __init__(self, nominal: mujoco.MjModel, base_body: int, actuator_ids: np.ndarray, dof_ids: np.ndarray):
        self.nominal = nominal
        self.base_body = base_body
        self.act = actuator_ids
        self.dof = dof_ids
        self.mass0 = nominal.body_mass.copy()
        self.inertia0 = nominal.body_inertia.copy()
        self.ipos0 = nominal.body_ipos.copy()
        self.gain0 = nominal.actuator_gainprm[:, 0].copy()
        self.bias0 = nominal.actuator_biasprm[:, :3].copy()
        self.force0 = nominal.actuator_forcerange.copy()
        self.damping0 = nominal.dof_damping.copy()
        self.armature0 = nominal.dof_armature.copy()
        self.frictionloss0 = nominal.dof_frictionloss.copy()
        self.friction0 = nominal.geom_friction.copy()

    def apply(self, model: mujoco.MjModel, p: dict[str, np.ndarray], i: int) -> None:
        """Set environment i's model from row i of the sampled parameters."""
        others = np.ones(model.nbody, dtype=bool)
        others[[0, self.base_body]] = False
        model.body_mass[:] = self.mass0
        model.body_inertia[:] = self.inertia0
        model.body_mass[others] *= p["link_mass_scale"][i]
        model.body_inertia[others] *= p["link_mass_scale"][i]
        b = self.base_body
        scale_b = (self.mass0[b] + p["added_base_mass_kg"][i]) / self.mass0[b]
        model.body_mass[b] = self.mass0[b] * scale_b
        model.body_inertia[b] = self.inertia0[b] * scale_b
        model.body_ipos[b] = self.ipos0[b] + p["base_com_offset_m"][i]
        a = self.act
        kp = self.gain0[a] * p["kp_scale"][i]
        model.actuator_gainprm[a, 0] = kp
        model.actuator_biasprm[a, 1] = -kp
        model.actuator_biasprm[a, 2] = self.bias0[a, 2] * p["kd_scale"][i]
        model.actuator_forcerange[a] = self.force0[a] * p["motor_strength"][i]
        d = self.dof
        model.dof_damping[d] = self.damping0[d] * p["joint_damping_scale"][i]
        model.dof_armature[d] = self.armature0[d] * p["armature_scale"][i]
        model.dof_frictionloss[d] = self.frictionloss0[d] * p["frictionloss_scale"][i]
        mu = p["friction"][i]
        model.geom_friction[:, 0] = self.friction0[:, 0] if np.isnan(mu) else mu


def describe(params: dict[str, np.ndarray]) -> dict[str, float]:
    """Means of the sampled parameters, for logs."""
    return {k: float(np.mean(v[np.isfinite(v)])) if np.isfinite(v).any() else float("nan") for k, v in params.items()}


def apply_all(
    randomizer: ModelRandomizer, models: list[mujoco.MjModel], params: dict[str, np.ndarray], rows: np.ndarray
) -> None:
    """Apply row j of `params` to models[rows[j]]. Runs at reset time only, not per physics step."""
    for j, i in enumerate(rows):
        randomizer.apply(models[i], params, j)


__all__ = ["DomainRandomization", "ModelRandomizer", "apply_all", "describe", "sample"]
