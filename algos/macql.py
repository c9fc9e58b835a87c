"""MACQL: conservative Q-learning on the joint action — the baseline whose penalty grows with the agent count.

The CFCQL paper's main point of comparison (Shao et al., NeurIPS 2023, §3 and the reference code's
``raw_cql`` / ``--cql --central_critic`` branches): the conservative TD base (centralised twin critic or QMIX,
:class:`rlcf.algos.cql_base.ConservativeTD`) with a conservative term that pushes down a logsumexp over *joint*
actions in which every agent's action is resampled at once, so the penalty scales with the joint action space
(exponential in n):
- continuous: K joint samples (agent j's k-th candidate for every j), importance-corrected by the product of the
  agents' densities;
- discrete: ``joint_samples`` uniformly random joint actions (reference: 100) through the mixer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from rlcf.algos.cql_base import ConservativeTD, QMixTDConfig, sampled_logsumexp
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
class MACQLConfig(QMixTDConfig):
    """The conservative TD fields plus the number of discrete joint samples."""

    # Keys that rlcf versions before the TD base wrote into MACQL configs (they never had an effect).
    RETIRED: ClassVar[frozenset[str]] = frozenset({"lambda_mode", "lambda_temperature", "behaviour_lr"})

    joint_samples: int = option(100, "Discrete: random joint actions in the logsumexp (reference raw_sample_actions).")

    def __post_init__(self) -> None:
        super().__post_init__()
        require(self.joint_samples >= 1, "joint_samples", f"must be >= 1, got {self.joint_samples}")


@algos.register("macql", help="CQL on the joint action (the CFCQL paper's MACQL baseline)")
class MACQL(ConservativeTD):
    """Joint-action CQL on the conservative TD base."""

    Config = MACQLConfig

    def draw(self, batch):
        draws = super().draw(batch)
        if self.discrete:
            B = batch["obs"].shape[0]
            draws["joint"] = torch.rand(B, self.config.joint_samples, self.n, device=self.device, generator=self.gen)
        return draws

    def penalty(self, batch, draws, values):
        """``E_s[logsumexp_a Q(s, a) − Q(s, a^D)]`` over joint actions a (every agent leaves the data at once)."""
        if self.discrete:
            dims = torch.as_tensor(self.data.action_dims, device=self.device)
            joint = (draws["joint"] * dims).long().clamp_max(dims - 1)  # uniform over each agent's own actions
            lse = joint_logsumexp_discrete(values["agent_q"], joint, batch["state"], self.mixer)
            return (lse - values["q_data"]).mean(), {}
        s = batch["state"]
        B = s.shape[0]
        # Joint sample k = every agent's k-th candidate; densities multiply.
        cand, logp = self.policy_candidates(batch, draws)
        joint, logp = cand.transpose(1, 2), logp.sum(1)  # [B, K, n, d], [B, K]
        K = joint.shape[1]
        q = self.critic_values(s.unsqueeze(1).expand(B, K, s.shape[-1]), joint)  # [B, K, 2]
        lse = sampled_logsumexp(q, logp.unsqueeze(-1), dim=1, temperature=self.config.lse_temperature)  # [B, 2]
        return (lse - values["q_data"]).mean(0).sum(), {}
