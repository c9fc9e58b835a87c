"""ICQL: independent CQL — every agent runs CQL on its own local Q, ignoring the others' actions.

The CFCQL paper's independent baseline (reference: ``indq_learner`` for discrete, MATD3 ``--cql`` for
continuous). Each agent learns from the team reward with a decentralised value:
- discrete: Q_i(o_i, ·) with a double-Q target per agent and the penalty logsumexp_a Q_i(o_i, a) − Q_i(o_i, a_i^D);
- continuous: twin Q_i(o_i, a_i) per agent, sampled logsumexp per agent (same sources as CFCQL), and per-agent TD3 actors.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any

import torch

from rlcf.algos.cfcql import NEG_INF, CFCQLConfig, sample_actions
from rlcf.algos.common import AgentMLP, OfflineMARLAlgorithm, adam, from_unit, soft_update
from rlcf.registry import algos

__all__ = ["ICQL"]


@dataclass
class ICQLConfig(CFCQLConfig):
    """CFCQL's fields; λ, the mixer and the behaviour model are unused."""


@algos.register("icql", help="independent CQL: per-agent CQL on local Q values (discrete and continuous)")
class ICQL(OfflineMARLAlgorithm):
    Config = ICQLConfig

    def __init__(self, config: ICQLConfig, run_config: Any, device: Any):
        super().__init__(config, run_config, device)
        torch.manual_seed(run_config.seed)
        n, h, d = self.n, tuple(config.hidden), self.act_dim
        if self.discrete:
            self.q = AgentMLP(n, self.obs_dim, d, h).to(device)
            self.target_q = copy.deepcopy(self.q)
            self.opt = adam(self.q.parameters(), config.critic_lr)
        else:
            self.actor = AgentMLP(n, self.obs_dim, d, h, out_scale=3e-3).to(device)
            self.critic = AgentMLP(n, self.obs_dim + d, 2, h).to(device)  # twin heads per agent
            self.target_actor, self.target_critic = copy.deepcopy(self.actor), copy.deepcopy(self.critic)
            self.actor_opt = adam(self.actor.parameters(), config.actor_lr)
            self.opt = adam(self.critic.parameters(), config.critic_lr)

    def policy(self, obs, actor=None):
        return torch.tanh((actor or self.actor)(obs)) * self.action_valid

    def local_q(self, obs, actions, critic=None):
        """``[..., n, 2]`` twin local values of per-agent actions ``[..., n, d]``."""
        return (critic or self.critic)(torch.cat([obs, actions], -1))

    def train_step(self, step: int) -> dict[str, float]:
        c, b = self.config, self.sample()
        r, done = b["rewards"][:, None], b["terminals"][:, None]
        if self.discrete:
            valid = self.action_valid[None]
            with torch.no_grad():
                greedy = self.q(b["next_obs"]).masked_fill(~valid, NEG_INF).argmax(-1, keepdim=True)
                y = r + c.gamma * (1 - done) * self.target_q(b["next_obs"]).gather(-1, greedy).squeeze(-1)
            q_all = self.q(b["obs"])
            q_data = q_all.gather(-1, b["actions"].unsqueeze(-1)).squeeze(-1)  # [B, n]
            td = 0.5 * ((q_data - y) ** 2).mean()
            penalty = (torch.logsumexp(q_all.masked_fill(~valid, NEG_INF), -1) - q_data).mean()
            loss = td + c.cql_alpha * penalty
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.q.parameters(), 10.0)
            self.opt.step()
            self.updates += 1
            if self.updates % c.target_update_every == 0:
                self.target_q.load_state_dict(self.q.state_dict())
            return {"losses/td": td.item(), "losses/cql": penalty.item(), "train/q_data": q_data.mean().item(), "train/mc_return": b["mc_return"].mean().item()}

        a, valid, N = b["actions"], self.action_valid, c.num_sampled_actions
        with torch.no_grad():
            noise = torch.randn(a.shape, device=a.device, generator=self.gen) * c.target_noise
            next_a = (self.policy(b["next_obs"], self.target_actor) + noise).clamp(-1, 1) * valid
            y = r + c.gamma * (1 - done) * self.local_q(b["next_obs"], next_a, self.target_critic).min(-1).values
        q_data = self.local_q(b["obs"], a)  # [B, n, 2]
        td = ((q_data - y.unsqueeze(-1)) ** 2).mean(0).sum(-1).mean()
        B = a.shape[0]
        with torch.no_grad():
            pi = self.policy(b["obs"]) if c.sample_sources == "uniform+policy" else None
        cand, logp = sample_actions(B, valid, N, self.gen, pi, c.policy_sample_noise)  # [B, n, K, d], [B, n, K]
        K = cand.shape[2]
        q_smp = self.local_q(b["obs"].unsqueeze(2).expand(B, self.n, K, self.obs_dim).transpose(1, 2), cand.transpose(1, 2))
        lse = torch.logsumexp(q_smp - logp.transpose(1, 2).unsqueeze(-1), dim=1) - math.log(K)  # [B, n, 2]
        penalty = (lse - q_data).mean(0).sum(-1).mean()
        loss = td + c.cql_alpha * penalty
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.critic.parameters(), c.critic_grad_clip)
        self.opt.step()
        metrics = {"losses/td": td.item(), "losses/cql": penalty.item(), "train/q_data": q_data.mean().item(), "train/mc_return": b["mc_return"].mean().item()}
        if step % c.actor_every == 0:
            pi = self.policy(b["obs"])
            actor_loss = -self.local_q(b["obs"], pi)[..., 0].mean() + c.action_reg * (pi**2).mean()
            self.actor_opt.zero_grad(set_to_none=True)
            actor_loss.backward()
            torch.nn.utils.clip_grad_norm_(self.actor.parameters(), c.critic_grad_clip)
            self.actor_opt.step()
            soft_update(self.target_critic, self.critic, c.tau)
            soft_update(self.target_actor, self.actor, c.tau)
            metrics["losses/actor"] = actor_loss.item()
        return metrics

    @torch.no_grad()
    def act(self, obs: torch.Tensor) -> torch.Tensor:
        if self.discrete:
            return self.q(obs).masked_fill(~self.action_valid, NEG_INF).argmax(-1)
        return from_unit(self.policy(obs), self.data.action_low, self.data.action_high)

    def stateful(self) -> dict[str, Any]:
        if self.discrete:
            return {"q": self.q, "target_q": self.target_q, "opt": self.opt}
        names = ("actor", "critic", "target_actor", "target_critic", "actor_opt", "opt")
        return {k: getattr(self, k) for k in names}
