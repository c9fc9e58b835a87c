"""MACQL: conservative Q-learning on the joint action — the baseline whose penalty grows with the agent count.

The CFCQL paper's main point of comparison (Shao et al., NeurIPS 2023, §3 and the reference code's
``raw_cql`` / ``--cql --central_critic`` branches): the same networks and TD learning as CFCQL, but the
conservative term pushes down a logsumexp over *joint* actions in which every agent's action is resampled at
once, so the penalty scales with the joint action space (exponential in n).
- continuous: N uniform joint samples, importance-corrected by the joint density 2^{-Σ d_i};
- discrete: ``joint_samples`` uniformly random joint actions (reference: 100) through the mixer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import torch

from rlcf.algos.cfcql import CFCQL, CFCQLConfig, candidate_actions
from rlcf.config import option, require
from rlcf.registry import algos

__all__ = ["MACQL", "MACQLConfig", "joint_logsumexp_discrete"]


def joint_logsumexp_discrete(agent_q: torch.Tensor, joint_actions: torch.Tensor, state: torch.Tensor, mixer: Any) -> torch.Tensor:
    """``logsumexp_m Q_tot(s, a^m)`` over sampled joint actions ``joint_actions [B, M, n]``; returns ``[B]``."""
    B, M, n = joint_actions.shape
    q = agent_q.unsqueeze(1).expand(B, M, n, agent_q.shape[-1]).gather(-1, joint_actions.unsqueeze(-1)).squeeze(-1)
    q_tot = mixer(q, state.unsqueeze(1).expand(B, M, state.shape[-1]))
    return torch.logsumexp(q_tot, dim=1)


@dataclass
class MACQLConfig(CFCQLConfig):
    """CFCQL's fields (λ is unused) plus the number of joint samples."""

    lambda_mode: Literal["uniform", "softmax", "argmax"] = option("uniform", "Unused by MACQL (no per-agent terms).")
    joint_samples: int = option(100, "Discrete: random joint actions in the logsumexp (reference raw_sample_actions).")

    def __post_init__(self) -> None:
        super().__post_init__()
        require(self.joint_samples >= 1, "joint_samples", f"must be >= 1, got {self.joint_samples}")


@algos.register("macql", help="CQL on the joint action (the CFCQL paper's MACQL baseline)")
class MACQL(CFCQL):
    """Joint-action CQL; everything but the conservative term is CFCQL's."""

    Config = MACQLConfig

    def lambda_weights(self, batch, q_cf=None):
        return torch.full((batch["obs"].shape[0], self.n), 1.0 / self.n, device=self.device), {}

    def draw(self, batch):
        draws = super().draw(batch)
        if self.discrete:
            B = batch["obs"].shape[0]
            draws["joint"] = torch.rand(B, self.config.joint_samples, self.n, device=self.device, generator=self.gen)
        return draws

    def conservative_term(self, batch, draws, agent_q=None, q_tot=None, q_data=None):
        c = self.config
        if self.discrete:
            dims = torch.as_tensor(self.data.action_dims, device=self.device)
            joint = (draws["joint"] * dims).long().clamp_max(dims - 1)  # uniform over each agent's own actions
            lse = joint_logsumexp_discrete(agent_q, joint, batch["state"], self.mixer)
            return (lse - q_tot).mean(), {}
        a, s = batch["actions"], batch["state"]
        B = a.shape[0]
        with torch.no_grad():
            pi = self.policy(batch["obs"]) if "gauss" in draws else None
        # Joint sample k = every agent's k-th candidate (all agents leave the data at once); densities multiply.
        cand, logp = candidate_actions(self.action_valid, draws, pi, c.policy_sample_noise)
        joint, logp = cand.transpose(1, 2), logp.sum(1)  # [B, K, n, d], [B, K]
        K = joint.shape[1]
        q = self.critic_values(s.unsqueeze(1).expand(B, K, s.shape[-1]), joint)  # [B, K, 2]
        t = c.lse_temperature
        lse = t * torch.logsumexp((q - logp.unsqueeze(-1)) / t, dim=1) - t * math.log(K)  # [B, 2]
        return (lse - q_data).mean(0).sum(), {}
