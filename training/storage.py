"""Rollout storage for on-policy learning and the advantage computation."""

from __future__ import annotations

import torch


def gae(
    rewards: torch.Tensor, values: torch.Tensor, dones: torch.Tensor, last_value: torch.Tensor, gamma: float, lam: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalized advantage estimation (Schulman et al. 2016). Inputs (T, N); last_value (N,).

    TD error:   delta_t = r_t + gamma * V(s_{t+1}) * (1 - done_t) - V(s_t)
    advantage:  A_t = delta_t + gamma * lam * (1 - done_t) * A_{t+1}
    return:     R_t = A_t + V(s_t)
    Truncated episodes are handled by the caller, who adds gamma * V(final state) to the reward of that step and
    marks it done, so bootstrapping crosses the time limit but not a reset.
    """
    T = rewards.shape[0]
    adv = torch.zeros_like(rewards)
    next_adv = torch.zeros_like(last_value)
    next_value = last_value
    for t in reversed(range(T)):
        not_done = 1.0 - dones[t]
        delta = rewards[t] + gamma * next_value * not_done - values[t]
        next_adv = delta + gamma * lam * not_done * next_adv
        adv[t] = next_adv
        next_value = values[t]
    return adv, adv + values


class RolloutStorage:
    """(T, N) buffers of one PPO iteration."""

    def __init__(self, T: int, N: int, obs_size: int, critic_obs_size: int, action_size: int):
        z = lambda *s: torch.zeros(*s)  # noqa: E731
        self.obs, self.critic_obs = z(T, N, obs_size), z(T, N, critic_obs_size)
        self.actions, self.log_probs = z(T, N, action_size), z(T, N)
        self.mu, self.sigma = z(T, N, action_size), z(T, N, action_size)
        self.rewards, self.dones, self.values = z(T, N), z(T, N), z(T, N)
        self.advantages, self.returns = z(T, N), z(T, N)
        self.T, self.N, self.step = T, N, 0

    def minibatches(self, num_minibatches: int, epochs: int):
        """Shuffled minibatches over all T * N samples, `epochs` times."""
        B = self.T * self.N
        flat = lambda x: x.reshape(B, *x.shape[2:])  # noqa: E731
        data = [
            flat(x)
            for x in (
                self.obs,
                self.critic_obs,
                self.actions,
                self.log_probs,
                self.mu,
                self.sigma,
                self.values,
                self.advantages,
                self.returns,
            )
        ]
        size = B // num_minibatches
        for _ in range(epochs):
            perm = torch.randperm(B)
            for i in range(num_minibatches):
                idx = perm[i * size : (i + 1) * size]
                yield [x[idx] for x in data]
