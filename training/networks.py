"""Networks: MLPs, an empirical observation normalizer, the PPO actor-critic (Gaussian with learned log-std)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


def mlp(sizes: tuple[int, ...], activation: type[nn.Module] = nn.ELU, out_gain: float | None = None) -> nn.Sequential:
    """Linear layers with `activation` between them (none after the last)."""
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(activation())
    if out_gain is not None:
        nn.init.orthogonal_(layers[-1].weight, gain=out_gain)
        nn.init.zeros_(layers[-1].bias)
    return nn.Sequential(*layers)


class EmpiricalNormalizer(nn.Module):
    """Running mean and variance of the inputs (Chan et al. parallel update); y = clip((x - mean) / std, +-clip).
    A module with buffers, so it is saved with the policy and can be exported inside the ONNX graph."""

    def __init__(self, size: int, eps: float = 1e-2, clip: float = 10.0):
        super().__init__()
        self.eps, self.clip = eps, clip
        self.register_buffer("mean", torch.zeros(size))
        self.register_buffer("var", torch.ones(size))
        self.register_buffer("count", torch.zeros((), dtype=torch.float64))

    @torch.no_grad()
    def update(self, x: torch.Tensor) -> None:
        n = x.shape[0]
        if n == 0:
            return
        batch_mean, batch_var = x.mean(0), x.var(0, unbiased=False)
        total = self.count + n
        delta = batch_mean - self.mean
        self.mean += delta * (n / total).float()
        m2 = self.var * self.count.float() + batch_var * n + delta.square() * (self.count * n / total).float()
        self.var.copy_(m2 / total.float())
        self.count.copy_(total)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.clamp((x - self.mean) / torch.sqrt(self.var + self.eps), -self.clip, self.clip)


class SymmetricMean(nn.Module):
    """Makes a policy mean exactly equivariant to a left-right reflection: mean(o) = (f(o) + M_a f(M_o o)) / 2,
    where M x = sign * x[perm] (robots/symmetry.py). Both halves run as one batch."""

    def __init__(self, obs_perm: torch.Tensor, obs_sign: torch.Tensor, act_perm: torch.Tensor, act_sign: torch.Tensor):
        super().__init__()
        self.register_buffer("obs_perm", torch.as_tensor(obs_perm, dtype=torch.long))
        self.register_buffer("obs_sign", torch.as_tensor(obs_sign, dtype=torch.float32))
        self.register_buffer("act_perm", torch.as_tensor(act_perm, dtype=torch.long))
        self.register_buffer("act_sign", torch.as_tensor(act_sign, dtype=torch.float32))

    @classmethod
    def identity(cls, obs_size: int, action_size: int) -> SymmetricMean:
        """Placeholder buffers of the right sizes, to load a checkpoint into."""
        return cls(torch.arange(obs_size), torch.ones(obs_size), torch.arange(action_size), torch.ones(action_size))

    def forward(self, f: Callable[[torch.Tensor], torch.Tensor], obs: torch.Tensor) -> torch.Tensor:
        n = obs.shape[0]
        out = f(torch.cat([obs, obs[:, self.obs_perm] * self.obs_sign]))
        return 0.5 * (out[:n] + out[n:][:, self.act_perm] * self.act_sign)


class EstimatingActor(nn.Module):
    """An actor with a concurrent state estimator (Ji et al. 2022, "Concurrent Training of a Control Policy and a
    State Estimator for Dynamic and Robust Legged Locomotion"): an MLP estimates a simulator-only quantity (the base
    velocity) from the measured observation, and the policy MLP reads the observation and the estimate. The estimator
    learns by regression on the privileged value (`estimate`, used by PPO's loss); the policy gradient does not reach
    it (the estimate enters the policy detached). Observation in, action out: it exports like a plain MLP actor."""

    def __init__(self, obs_size: int, estimate_size: int, estimator_hidden: tuple[int, ...], net: nn.Module):
        super().__init__()
        self.estimator = mlp((obs_size, *estimator_hidden, estimate_size))
        self.net = net

    def estimate(self, norm_obs: torch.Tensor) -> torch.Tensor:
        return self.estimator(norm_obs)

    def forward(self, norm_obs: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([norm_obs, self.estimator(norm_obs).detach()], dim=-1))


class ActorCritic(nn.Module):
    """Separate actor and critic MLPs; the critic may see a different (privileged) observation. With
    `estimate_size` > 0 the actor is an `EstimatingActor` whose estimator has `estimator_hidden` layers."""

    def __init__(
        self,
        obs_size: int,
        critic_obs_size: int,
        action_size: int,
        actor_hidden: tuple[int, ...],
        critic_hidden: tuple[int, ...],
        init_noise_std: float = 1.0,
        mirror: SymmetricMean | None = None,
        estimate_size: int = 0,
        estimator_hidden: tuple[int, ...] = (),
    ):
        super().__init__()
        self.mirror = mirror  # a symmetric actor when given
        self.actor_norm = EmpiricalNormalizer(obs_size)
        self.critic_norm = EmpiricalNormalizer(critic_obs_size)
        self.actor: nn.Module = mlp((obs_size + estimate_size, *actor_hidden, action_size), out_gain=0.01)
        if estimate_size:
            self.actor = EstimatingActor(obs_size, estimate_size, estimator_hidden, self.actor)
        self.critic = mlp((critic_obs_size, *critic_hidden, 1), out_gain=1.0)
        self.log_std = nn.Parameter(torch.full((action_size,), float(torch.log(torch.tensor(init_noise_std)))))

    def _mean(self, obs: torch.Tensor) -> torch.Tensor:
        if self.mirror is not None:
            return self.mirror(lambda o: self.actor(self.actor_norm(o)), obs)
        return self.actor(self.actor_norm(obs))

    def distribution(self, obs: torch.Tensor) -> torch.distributions.Normal:
        mean = self._mean(obs)
        return torch.distributions.Normal(mean, self.log_std.exp().expand_as(mean))

    def act_deterministic(self, obs: torch.Tensor) -> torch.Tensor:
        return self._mean(obs)

    def value(self, critic_obs: torch.Tensor) -> torch.Tensor:
        return self.critic(self.critic_norm(critic_obs)).squeeze(-1)


class DeterministicActor(nn.Module):
    """What leaves for deployment: raw observation -> action, normalization folded in."""

    def __init__(
        self, norm: EmpiricalNormalizer, net: nn.Module, squash: bool = False, mirror: SymmetricMean | None = None
    ):
        super().__init__()
        self.norm, self.net, self.squash, self.mirror = norm, net, squash, mirror

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        if self.mirror is not None:
            out = self.mirror(lambda o: self.net(self.norm(o)), obs)
        else:
            out = self.net(self.norm(obs))
        return torch.tanh(out) if self.squash else out
