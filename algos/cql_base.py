"""The conservative TD family (CFCQL, MACQL, ICQL): TD learning plus ``α × penalty``, for both action types.

Extends :class:`rlcf.algos.td_base.TDAlgorithm` with what the CQL-style methods share and MATD3+BC does not:
- the critic loss ``TD + cql_alpha · penalty``, where each method defines :meth:`ConservativeTD.penalty`;
- candidate actions for a sampled logsumexp over continuous actions — uniform samples on the action box and,
  optionally, noisy policy samples — with their log-densities as importance weights (:func:`candidate_actions`,
  :func:`sampled_logsumexp`), the reference code's ``num_sampled_actions`` / ``cql_sample_noise_level`` sources;
- discrete actions: per-agent Q networks with a one-step double-Q target, mixed into a team value by QMIX
  (Rashid et al., 2018) for the centralised methods, and hard target copies every ``target_update_every`` steps;
- the reference MADDPG actor's action-magnitude regulariser.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any, Literal

import torch

from rlcf.algos.common import NEG_INF, AgentMLP, QMixer, adam
from rlcf.algos.td_base import TDAlgorithm, TDConfig
from rlcf.config import option, require

__all__ = [
    "ConservativeTD",
    "ConservativeTDConfig",
    "QMixTDConfig",
    "candidate_actions",
    "draw_candidate_noise",
    "sampled_logsumexp",
]


# -- candidate actions for a sampled logsumexp -------------------------------------------------------------------


def draw_candidate_noise(batch_size: int, valid: torch.Tensor, num: int, generator: Any, with_policy: bool) -> dict[str, torch.Tensor]:
    """The random numbers behind :func:`candidate_actions`: ``uniform [B, n, num, d]`` in [0, 1) and, for policy
    samples, standard-normal ``gauss [B, n, num, d]``. Drawn apart from the loss so the loss is a pure function of
    its inputs (``torch.compile`` cannot trace a seeded generator) and runs are reproducible from ``generator``."""
    n, d = valid.shape
    out = {"uniform": torch.rand(batch_size, n, num, d, device=valid.device, generator=generator)}
    if with_policy:
        out["gauss"] = torch.randn(batch_size, n, num, d, device=valid.device, generator=generator)
    return out


def candidate_actions(
    valid: torch.Tensor, draws: dict[str, torch.Tensor], policy_actions: torch.Tensor | None = None, noise: float = 0.2
) -> tuple[torch.Tensor, torch.Tensor]:
    """Candidate actions per agent for a sampled logsumexp, and their log-densities (importance weights).

    ``num`` uniform samples on [-1, 1]^{d_i} (log-density −d_i·log 2) and, when ``policy_actions [B, n, d]`` is
    given, ``num`` more around them, ``clip(π_i(o_i) + N(0, noise²))`` with the Gaussian's log-density (the
    reference's MaMuJoCo sources; log-densities carry no gradient). Padded components (``valid [n, d]``) are 0.

    Returns:
        ``candidates [B, n, K, d]`` and ``log_density [B, n, K]``, K = num or 2·num.
    """
    dims = valid.sum(-1).to(torch.float32)
    mask = valid[None, :, None, :]
    uniform = (draws["uniform"] * 2 - 1) * mask
    B, num = uniform.shape[0], uniform.shape[2]
    samples, logp = [uniform], [(-dims * math.log(2.0))[None, :, None].expand(B, -1, num)]
    if policy_actions is not None:
        eps = draws["gauss"] * noise
        samples.append((policy_actions.unsqueeze(2) + eps).clamp(-1, 1) * mask)
        gauss = -0.5 * (eps / noise) ** 2 - math.log(noise) - 0.5 * math.log(2 * math.pi)
        logp.append((gauss * mask).sum(-1))
    return torch.cat(samples, 2), torch.cat(logp, 2)


def sampled_logsumexp(values: torch.Tensor, log_density: torch.Tensor, dim: int, temperature: float = 1.0) -> torch.Tensor:
    """Importance-sampled ``t·log E_{a~U}[exp(Q(a)/t)]`` over ``dim``: ``t·logsumexp((Q − log q)/t) − t·log K``
    for K samples of density q (CQL's estimator of the logsumexp over a continuous action box)."""
    t = temperature
    return t * torch.logsumexp((values - log_density) / t, dim=dim) - t * math.log(values.shape[dim])


# -- config ------------------------------------------------------------------------------------------------------


@dataclass
class ConservativeTDConfig(TDConfig):
    """The conservative family's fields (CFCQL, MACQL, ICQL), on top of the TD ones."""

    cql_alpha: float = option(5.0, "α, weight of the conservative term (reference MPE: 0.5–5 by dataset).")
    num_sampled_actions: int = option(10, "Continuous: samples of an agent's action per source in the logsumexp.")
    sample_sources: Literal["uniform", "uniform+policy"] = option(
        "uniform+policy",
        "Continuous: where the logsumexp samples come from (reference: uniform on MPE, +policy on MaMuJoCo; "
        "rlcf's default adds policy samples everywhere: on small MPE datasets uniform-only lets the actors run to "
        "the box corners the samples never reach).",
    )
    policy_sample_noise: float = option(0.2, "Continuous: std of the Gaussian noise on policy samples.")
    lse_temperature: float = option(1.0, "Continuous: temperature of the sampled logsumexp.")
    action_reg: float = option(1e-3, "Continuous: weight of the actor's action-magnitude regulariser (reference MADDPG actor).")
    target_update_every: int = option(25, "Discrete: hard target-network copy every this many updates (reference ≈ 25).")

    def __post_init__(self) -> None:
        super().__post_init__()
        require(self.cql_alpha >= 0, "cql_alpha", f"must be >= 0, got {self.cql_alpha}")
        require(self.num_sampled_actions >= 1, "num_sampled_actions", f"must be >= 1, got {self.num_sampled_actions}")
        require(self.lse_temperature > 0, "lse_temperature", f"must be > 0, got {self.lse_temperature}")
        require(self.target_update_every >= 1, "target_update_every", f"must be >= 1, got {self.target_update_every}")


@dataclass
class QMixTDConfig(ConservativeTDConfig):
    """The centralised conservative methods' fields (CFCQL, MACQL): the QMIX mixer of their discrete team value."""

    mixer_embed: int = option(32, "Discrete: QMIX mixing embedding size.")
    hypernet_embed: int = option(64, "Discrete: QMIX hypernetwork hidden size.")


# -- algorithm ---------------------------------------------------------------------------------------------------


class ConservativeTD(TDAlgorithm):
    """TD learning plus ``cql_alpha × penalty`` for discrete and continuous actions; subclasses define :meth:`penalty`.

    Discrete actions: per-agent Q networks ``agent_q`` mixed by QMIX (``mixer``) into ``Q_tot`` — or, with
    ``mixed = False`` (ICQL), left per agent — with a double-Q target and hard target copies.
    """

    Config = ConservativeTDConfig
    discrete_only: bool | None = None
    mixed = True  # discrete: a QMIX team value (needs a QMixTDConfig); False: per-agent values

    def build_networks(self) -> None:
        if not self.discrete:
            super().build_networks()
            return
        c, h = self.config, tuple(self.config.hidden)
        self.agent_q = AgentMLP(self.n, self.obs_dim, self.act_dim, h).to(self.device)
        params = list(self.agent_q.parameters())
        if self.mixed:
            self.mixer = QMixer(self.n, self.state_dim, c.mixer_embed, c.hypernet_embed).to(self.device)
            params += list(self.mixer.parameters())
        self.target_agent_q = copy.deepcopy(self.agent_q)
        self.target_mixer = copy.deepcopy(self.mixer) if self.mixed else None
        self.critic_opt = adam(params, c.critic_lr)
        self.critic_grad_clip = 10.0  # the reference's discrete clip

    # -- values ---------------------------------------------------------------------------------------------------

    def mix(self, agent_values: torch.Tensor, state: torch.Tensor, target: bool = False) -> torch.Tensor:
        """Discrete: team value ``Q_tot [B]`` from per-agent values ``[B, n]`` (identity when not ``mixed``)."""
        if not self.mixed:
            return agent_values
        return (self.target_mixer if target else self.mixer)(agent_values, state)

    # -- losses ---------------------------------------------------------------------------------------------------

    def draw(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Continuous: the candidate-action noise, then the target-smoothing noise; discrete: nothing."""
        if self.discrete:
            return {}
        c = self.config
        noise = draw_candidate_noise(batch["actions"].shape[0], self.action_valid, c.num_sampled_actions, self.gen, c.sample_sources == "uniform+policy")
        return {**super().draw(batch), **noise}

    def td_loss(self, batch: dict[str, torch.Tensor], draws: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Continuous: TD3's; discrete: one-step double-Q on the (mixed) value, with ``agent_q`` for the penalty."""
        if not self.discrete:
            return super().td_loss(batch, draws)
        valid = self.action_valid[None]
        with torch.no_grad():
            next_q = self.agent_q(batch["next_obs"]).masked_fill(~valid, NEG_INF)
            greedy = next_q.argmax(-1, keepdim=True)  # double Q: online argmax, target value
            target_q = self.target_agent_q(batch["next_obs"]).gather(-1, greedy).squeeze(-1)
            y = self.td_target(batch, self.mix(target_q, batch["next_state"], target=True))
        agent_q = self.agent_q(batch["obs"])
        q_data = self.mix(agent_q.gather(-1, batch["actions"].unsqueeze(-1)).squeeze(-1), batch["state"])
        td = 0.5 * ((q_data - y) ** 2).mean()
        return td, {"q_data": q_data, "agent_q": agent_q}

    def penalty(self, batch: dict[str, torch.Tensor], draws: dict[str, torch.Tensor], values: dict[str, torch.Tensor]):
        """The conservative term (a scalar) and logging tensors; ``values`` is :meth:`td_loss`'s."""
        raise NotImplementedError

    def critic_loss(self, batch: dict[str, torch.Tensor], draws: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        td, values = self.td_loss(batch, draws)
        penalty, stats = self.penalty(batch, draws, values)
        loss = td + self.config.cql_alpha * penalty
        return loss, {"losses/td": td, "losses/cql": penalty, **self.value_stats(batch, values["q_data"]), **stats}

    def policy_candidates(self, batch: dict[str, torch.Tensor], draws: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Continuous: ``candidate_actions`` for this batch (policy samples around the current, detached policy)."""
        with torch.no_grad():
            pi = self.policy(batch["obs"]) if "gauss" in draws else None
        return candidate_actions(self.action_valid, draws, pi, self.config.policy_sample_noise)

    def actor_loss(self, batch: dict[str, torch.Tensor], pi: torch.Tensor) -> torch.Tensor:
        return super().actor_loss(batch, pi) + self.config.action_reg * (pi**2).mean()

    # -- the update -----------------------------------------------------------------------------------------------

    def after_critic_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, float]:
        """Continuous: TD3's actor step and soft targets; discrete: a hard target copy every ``target_update_every``."""
        if not self.discrete:
            return super().after_critic_step(batch, step)
        if (self.updates + 1) % self.config.target_update_every == 0:
            self.target_agent_q.load_state_dict(self.agent_q.state_dict())
            if self.mixed:
                self.target_mixer.load_state_dict(self.mixer.state_dict())
        return {}

    # -- acting and state -----------------------------------------------------------------------------------------

    @torch.no_grad()
    def act(self, obs: torch.Tensor) -> torch.Tensor:
        """Greedy team action for ``obs [n, obs_dim]``: indices (discrete) or env-unit actions (continuous)."""
        if self.discrete:
            return self.agent_q(obs).masked_fill(~self.action_valid, NEG_INF).argmax(-1)
        return super().act(obs)

    def stateful(self) -> dict[str, Any]:
        if not self.discrete:
            return super().stateful()
        parts = {"agent_q": self.agent_q, "mixer": getattr(self, "mixer", None), "target_agent_q": self.target_agent_q,
                 "target_mixer": self.target_mixer, "q_opt": self.critic_opt}
        return {name: part for name, part in parts.items() if part is not None}

