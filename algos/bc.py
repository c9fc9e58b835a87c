"""BC: per-agent behaviour cloning — the floor every offline MARL method must clear.

Discrete actions: cross-entropy of each agent's policy on its dataset action. Continuous actions: mean squared
error of a deterministic tanh policy to the dataset action (in [-1, 1] units).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from rlcf.algos.common import NEG_INF, AgentMLP, OfflineMARLAlgorithm, OfflineMARLConfig, adam, from_unit
from rlcf.config import option, require
from rlcf.registry import algos

__all__ = ["BC", "BCConfig"]


@dataclass
class BCConfig(OfflineMARLConfig):
    lr: float = option(1e-3, "Adam learning rate.")

    def __post_init__(self) -> None:
        super().__post_init__()
        require(self.lr > 0, "lr", f"must be > 0, got {self.lr}")


@algos.register("bc", help="per-agent behaviour cloning (discrete and continuous)")
class BC(OfflineMARLAlgorithm):
    Config = BCConfig

    def __init__(self, config: BCConfig, run_config: Any, device: Any):
        super().__init__(config, run_config, device)
        torch.manual_seed(run_config.seed)
        self.policy_net = AgentMLP(self.n, self.obs_dim, self.act_dim, tuple(config.hidden)).to(device)
        self.opt = adam(self.policy_net.parameters(), config.lr)

    def train_step(self, step: int) -> dict[str, float]:
        batch = self.sample()
        out = self.policy_net(batch["obs"])
        if self.discrete:
            logits = out.masked_fill(~self.action_valid[None], NEG_INF)
            loss = F.cross_entropy(logits.flatten(0, 1), batch["actions"].flatten())
        else:
            loss = (((torch.tanh(out) - batch["actions"]) * self.action_valid) ** 2).sum(-1).mean()
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return {"losses/bc": loss.item()}

    @torch.no_grad()
    def act(self, obs: torch.Tensor) -> torch.Tensor:
        out = self.policy_net(obs)
        if self.discrete:
            return out.masked_fill(~self.action_valid, NEG_INF).argmax(-1)
        return from_unit(torch.tanh(out) * self.action_valid, self.data.action_low, self.data.action_high)

    def stateful(self) -> dict[str, Any]:
        return {"policy": self.policy_net, "opt": self.opt}
