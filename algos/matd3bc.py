"""MATD3+BC: TD3+BC (Fujimoto & Gu, NeurIPS 2021) with a centralised twin critic — a continuous baseline.

The TD base (:class:`rlcf.algos.td_base.TDAlgorithm`: the critic learns by TD3 with no conservative term) with
TD3+BC's actor: each actor maximises the centralised Q of the joint policy action, normalised by its mean
magnitude, plus a behaviour-cloning term to the dataset actions:
``L_π = −λ·Q(s, π(o)) / mean|Q| + mean‖π(o) − a^D‖²`` with λ = ``bc_alpha`` (paper: 2.5).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from rlcf.algos.td_base import TDAlgorithm, TDConfig
from rlcf.config import option, require
from rlcf.registry import algos

__all__ = ["MATD3BC", "MATD3BCConfig"]


@dataclass
class MATD3BCConfig(TDConfig):
    """The TD fields plus TD3+BC's α (and TD3's policy delay of 2)."""

    # Keys that rlcf versions before the TD base wrote into MATD3+BC configs (they never had an effect).
    RETIRED: ClassVar[frozenset[str]] = frozenset({
        "cql_alpha", "lambda_mode", "lambda_temperature", "num_sampled_actions", "sample_sources", "policy_sample_noise",
        "lse_temperature", "behaviour_lr", "action_reg", "mixer_embed", "hypernet_embed", "target_update_every",
    })

    actor_every: int = option(2, "Critic updates per actor update (TD3's policy delay).")
    bc_alpha: float = option(2.5, "λ of TD3+BC: weight of the normalised Q term against behaviour cloning.")

    def __post_init__(self) -> None:
        super().__post_init__()
        require(self.bc_alpha > 0, "bc_alpha", f"must be > 0, got {self.bc_alpha}")


@algos.register("matd3bc", help="multi-agent TD3+BC with a centralised critic (continuous baseline)")
class MATD3BC(TDAlgorithm):
    Config = MATD3BCConfig

    def actor_loss(self, batch, pi):
        q = self.critic_values(batch["state"], pi)[..., 0]
        lam = self.config.bc_alpha / q.abs().mean().detach().clamp_min(1e-6)
        return -lam * q.mean() + ((pi - batch["actions"]) ** 2).sum(-1).mean()
