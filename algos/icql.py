"""ICQL: independent CQL — every agent runs CQL on its own local Q, ignoring the others' actions.

The CFCQL paper's independent baseline (reference: ``indq_learner`` for discrete, MATD3 ``--cql`` for
continuous): the conservative TD base (:class:`rlcf.algos.cql_base.ConservativeTD`) with decentralised values,
each learnt from the team reward:
- discrete: Q_i(o_i, ·) with a double-Q target per agent (no mixer) and the penalty
  logsumexp_a Q_i(o_i, a) − Q_i(o_i, a_i^D);
- continuous: twin Q_i(o_i, a_i) per agent, a sampled logsumexp per agent (same sources as CFCQL) and per-agent
  TD3 actors that maximise their own Q_i.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from rlcf.algos.common import NEG_INF, AgentMLP
from rlcf.algos.cql_base import ConservativeTD, ConservativeTDConfig, draw_candidate_noise, sampled_logsumexp
from rlcf.registry import algos

__all__ = ["ICQL", "ICQLConfig"]


@dataclass
class ICQLConfig(ConservativeTDConfig):
    """The conservative TD fields (no mixer, no λ)."""

    # Keys that rlcf versions before the TD base wrote into ICQL configs (they never had an effect).
    RETIRED: ClassVar[frozenset[str]] = frozenset({"lambda_mode", "lambda_temperature", "behaviour_lr", "mixer_embed", "hypernet_embed"})


@algos.register("icql", help="independent CQL: per-agent CQL on local Q values (discrete and continuous)")
class ICQL(ConservativeTD):
    Config = ICQLConfig
    mixed = False  # discrete: per-agent values, no QMIX

    def build_critic(self) -> AgentMLP:
        """Twin local critics ``Q_i(o_i, a_i)``: one member per agent, two heads each."""
        return AgentMLP(self.n, self.obs_dim + self.act_dim, 2, tuple(self.config.hidden)).to(self.device)

    def q_values(self, batch, actions, next=False, critic=None):
        """``[B, n, 2]`` twin local values of per-agent ``actions [B, n, d]``."""
        return self.local_q(batch["next_obs" if next else "obs"], actions, critic)

    def local_q(self, obs: torch.Tensor, actions: torch.Tensor, critic: Any = None) -> torch.Tensor:
        return (critic or self.critic)(torch.cat([obs, actions], -1))

    def agent_values(self, batch, pi):
        return self.local_q(batch["obs"], pi)[..., 0]

    def draw(self, batch):
        # ICQL draws the target noise before the candidates (the order of its runs so far; CFCQL's is the reverse).
        if self.discrete:
            return {}
        c, a = self.config, batch["actions"]
        target = torch.randn(a.shape, device=a.device, generator=self.gen)
        return {"target": target, **draw_candidate_noise(a.shape[0], self.action_valid, c.num_sampled_actions, self.gen, c.sample_sources == "uniform+policy")}

    def penalty(self, batch, draws, values):
        """Per agent, ``logsumexp_a Q_i(o_i, a) − Q_i(o_i, a_i^D)`` (exact for discrete, sampled for continuous)."""
        q_data = values["q_data"]
        if self.discrete:
            lse = torch.logsumexp(values["agent_q"].masked_fill(~self.action_valid[None], NEG_INF), -1)
            return (lse - q_data).mean(), {}
        obs = batch["obs"]
        cand, logp = self.policy_candidates(batch, draws)  # [B, n, K, d], [B, n, K]
        B, K = obs.shape[0], cand.shape[2]
        q_smp = self.local_q(obs.unsqueeze(2).expand(B, self.n, K, self.obs_dim).transpose(1, 2), cand.transpose(1, 2))  # [B, K, n, 2]
        lse = sampled_logsumexp(q_smp, logp.transpose(1, 2).unsqueeze(-1), dim=1, temperature=self.config.lse_temperature)  # [B, n, 2]
        return (lse - q_data).mean(0).sum(-1).mean(), {}

    def stateful(self) -> dict[str, Any]:
        # The names ICQL checkpoints have always used.
        if self.discrete:
            return {"q": self.agent_q, "target_q": self.target_agent_q, "opt": self.critic_opt}
        names = ("actor", "critic", "target_actor", "target_critic", "actor_opt")
        return {**{k: getattr(self, k) for k in names}, "opt": self.critic_opt}
