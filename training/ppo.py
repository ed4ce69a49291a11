"""Proximal Policy Optimization (Schulman et al. 2017), as the update reads in the paper, with the choices that
make it train legged robots quickly (Rudin et al. 2022): clipped value loss, adaptive learning rate on KL,
advantage normalization per minibatch, gradient clipping, entropy bonus."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from footfall.training.networks import ActorCritic, EstimatingActor
from footfall.training.storage import RolloutStorage


@dataclass(frozen=True)
class PPOConfig:
    """PPO hyperparameters."""

    num_steps: int = 24  # environment steps per iteration and environment
    learning_epochs: int = 5  # passes over the iteration's data
    num_minibatches: int = 4
    gamma: float = 0.99  # discount
    lam: float = 0.95  # GAE lambda
    clip: float = 0.2  # policy ratio clip
    value_clip: float = 0.2  # value prediction clip around the old value
    value_coef: float = 1.0
    entropy_coef: float = 0.005
    learning_rate: float = 1e-3
    schedule: str = "adaptive"  # "adaptive": scale lr to keep KL near desired_kl; "fixed"
    desired_kl: float = 0.01
    max_grad_norm: float = 1.0
    actor_hidden: tuple[int, ...] = (256, 128, 128)
    critic_hidden: tuple[int, ...] = (256, 128, 128)
    init_noise_std: float = 1.0
    symmetric_actor: bool = False  # mean(o) = (f(o) + M f(M o)) / 2 for the left-right reflection M (symmetry.py)
    # A concurrent estimator (networks.EstimatingActor): the actor estimates this critic-observation term (a
    # simulator-only one, e.g. "base_lin_vel") from what it measures and reads its estimate; "" for none
    estimate_term: str = ""
    estimator_hidden: tuple[int, ...] = (128, 64)
    estimator_coef: float = 1.0  # weight of the estimator's regression loss (mean squared error, scaled units)

    def __post_init__(self) -> None:
        if self.schedule not in ("adaptive", "fixed"):
            raise ValueError(f"PPOConfig.schedule must be 'adaptive' or 'fixed', got {self.schedule!r}")


class PPO:
    def __init__(self, policy: ActorCritic, cfg: PPOConfig, estimate_columns: slice | None = None):
        """`estimate_columns`: where the estimator's target sits in the critic observation (with an
        EstimatingActor)."""
        if (estimate_columns is None) == isinstance(policy.actor, EstimatingActor):
            raise ValueError("PPO: give estimate_columns exactly when the policy's actor has an estimator")
        self.policy, self.cfg, self.estimate_columns = policy, cfg, estimate_columns
        self.lr = cfg.learning_rate
        self.optimizer = torch.optim.Adam(policy.parameters(), lr=self.lr)

    def update(self, storage: RolloutStorage) -> dict[str, float]:
        cfg, pol = self.cfg, self.policy
        stats = {"loss/surrogate": 0.0, "loss/value": 0.0, "loss/entropy": 0.0, "policy/kl": 0.0}
        if self.estimate_columns is not None:
            stats["loss/estimator"] = 0.0
        n = 0
        for obs, cobs, actions, old_logp, old_mu, old_sigma, old_v, adv, ret in storage.minibatches(
            cfg.num_minibatches, cfg.learning_epochs
        ):
            dist = pol.distribution(obs)
            logp = dist.log_prob(actions).sum(-1)
            entropy = dist.entropy().sum(-1).mean()
            value = pol.value(cobs)
            # KL(old || new) between diagonal Gaussians, for the adaptive learning rate
            with torch.no_grad():
                mu, sigma = dist.mean, dist.stddev
                kl = (
                    (
                        torch.log(sigma / old_sigma)
                        + (old_sigma.square() + (old_mu - mu).square()) / (2 * sigma.square())
                        - 0.5
                    )
                    .sum(-1)
                    .mean()
                )
            if cfg.schedule == "adaptive":
                if kl > 2 * cfg.desired_kl:
                    self.lr = max(1e-5, self.lr / 1.5)
                elif 0 < kl < cfg.desired_kl / 2:
                    self.lr = min(1e-2, self.lr * 1.5)
                for g in self.optimizer.param_groups:
                    g["lr"] = self.lr
            adv = (adv - adv.mean()) / (adv.std() + 1e-8)
            # clipped surrogate: -min(r A, clip(r, 1 - eps, 1 + eps) A)
            ratio = torch.exp(logp - old_logp)
            surrogate = -torch.min(ratio * adv, torch.clamp(ratio, 1 - cfg.clip, 1 + cfg.clip) * adv).mean()
            # clipped value loss: max((V - R)^2, (V_old + clip(V - V_old) - R)^2)
            v_clipped = old_v + torch.clamp(value - old_v, -cfg.value_clip, cfg.value_clip)
            value_loss = torch.max((value - ret).square(), (v_clipped - ret).square()).mean()
            loss = surrogate + cfg.value_coef * value_loss - cfg.entropy_coef * entropy
            if self.estimate_columns is not None:  # regression of the estimate on the privileged value
                est = pol.actor.estimate(pol.actor_norm(obs))
                est_loss = (est - cobs[:, self.estimate_columns]).square().mean()
                loss = loss + cfg.estimator_coef * est_loss
                stats["loss/estimator"] += est_loss.item()
            self.optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(pol.parameters(), cfg.max_grad_norm)
            self.optimizer.step()
            stats["loss/surrogate"] += surrogate.item()
            stats["loss/value"] += value_loss.item()
            stats["loss/entropy"] += entropy.item()
            stats["policy/kl"] += kl.item()
            n += 1
        out = {k: v / n for k, v in stats.items()}
        out["policy/learning_rate"] = self.lr
        out["policy/noise_std"] = float(pol.log_std.detach().exp().mean())
        return out
