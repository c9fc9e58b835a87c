"""MATD3+BC: TD3+BC (Fujimoto & Gu, NeurIPS 2021) with CFCQL's centralised twin critic — a continuous baseline.

The critic is CFCQL's without any conservative term; each actor maximises the centralised Q of the joint
policy action, normalised by its mean magnitude, plus a behaviour-cloning term to the dataset actions:
``L_π = −λ·Q(s, π(o)) / mean|Q| + mean‖π(o) − a^D‖²`` with λ = ``bc_alpha`` (paper: 2.5).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from rlcf.algos.cfcql import CFCQL, CFCQLConfig
from rlcf.config import option, require
from rlcf.registry import algos

__all__ = ["MATD3BC", "MATD3BCConfig"]


@dataclass
class MATD3BCConfig(CFCQLConfig):
    """CFCQL's continuous fields (the conservative ones unused) plus TD3+BC's α."""

    lambda_mode: Literal["uniform", "softmax", "argmax"] = option("uniform", "Unused by MATD3+BC.")
    cql_alpha: float = option(0.0, "Unused by MATD3+BC (no conservative term).")
    bc_alpha: float = option(2.5, "λ of TD3+BC: weight of the normalised Q term against behaviour cloning.")
    actor_every: int = option(2, "Critic updates per actor update (TD3's policy delay).")

    def __post_init__(self) -> None:
        super().__post_init__()
        require(self.bc_alpha > 0, "bc_alpha", f"must be > 0, got {self.bc_alpha}")


@algos.register("matd3bc", help="multi-agent TD3+BC with a centralised critic (continuous baseline)")
class MATD3BC(CFCQL):
    Config = MATD3BCConfig
    discrete_only = False

    def lambda_weights(self, batch, q_cf=None):
        return torch.full((batch["obs"].shape[0], self.n), 1.0 / self.n, device=self.device), {}

    def draw(self, batch):
        a = batch["actions"]
        return {"target": torch.randn(a.shape, device=a.device, generator=self.gen)}

    def conservative_term(self, batch, draws, agent_q=None, q_tot=None, q_data=None):
        return torch.zeros((), device=self.device), {}

    def actor_loss(self, batch, pi):
        q = self.critic_values(batch["state"], pi)[..., 0]
        lam = self.config.bc_alpha / q.abs().mean().detach().clamp_min(1e-6)
        return -lam * q.mean() + ((pi - batch["actions"]) ** 2).sum(-1).mean()
