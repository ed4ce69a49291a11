"""Networks: MLPs, an empirical observation normalizer, the PPO actor-critic (Gaussian with learned log-std)."""

from __future__ import annotations

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


class ActorCritic(nn.Module):
    """Separate actor and critic MLPs; the critic may see a different (privileged) observation."""

    def __init__(
        self,
        obs_size: int,
        critic_obs_size: int,
        action_size: int,
        actor_hidden: tuple[int, ...],
        critic_hidden: tuple[int, ...],
        init_noise_std: float = 1.0,
    ):
        super().__init__()
        self.actor_norm = EmpiricalNormalizer(obs_size)
        self.critic_norm = EmpiricalNormalizer(critic_obs_size)
        self.actor = mlp((obs_size, *actor_hidden, action_size), out_gain=0.01)
        self.critic = mlp((critic_obs_size, *critic_hidden, 1), out_gain=1.0)
        self.log_std = nn.Parameter(torch.full((action_size,), float(torch.log(torch.tensor(init_noise_std)))))

    def distribution(self, obs: torch.Tensor) -> torch.distributions.Normal:
        mean = self.actor(self.actor_norm(obs))
        return torch.distributions.Normal(mean, self.log_std.exp().expand_as(mean))

    def act_deterministic(self, obs: torch.Tensor) -> torch.Tensor:
        return self.actor(self.actor_norm(obs))

    def value(self, critic_obs: torch.Tensor) -> torch.Tensor:
        return self.critic(self.critic_norm(critic_obs)).squeeze(-1)


class DeterministicActor(nn.Module):
    """What leaves for deployment: raw observation -> action, normalization folded in."""

    def __init__(self, norm: EmpiricalNormalizer, net: nn.Module, squash: bool = False):
        super().__init__()
        self.norm, self.net, self.squash = norm, net, squash

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        out = self.net(self.norm(obs))
        return torch.tanh(out) if self.squash else out
