"""The TD-style actor-critic skeleton under CFCQL, MACQL, ICQL and MATD3+BC.

What every TD method of rlcf does the same way, so that each algorithm's file holds only what makes it different:
per-agent deterministic actors and a centralised twin critic ``Q(s, a_1..a_n)`` learnt with TD3's target
(clipped double-Q, target-policy smoothing, one actor step and soft target update per ``actor_every`` critic
steps), the MADDPG actor objective ``Q(s, π_i(o_i), a_{-i}^D)``, and one update step that reads top to bottom
in :meth:`TDAlgorithm.train_step`. The conservative family (CFCQL, MACQL, ICQL) extends it in
:mod:`rlcf.algos.cql_base`; MATD3+BC extends it directly with its actor loss.

The loss hooks (:meth:`TDAlgorithm.critic_loss`, :meth:`TDAlgorithm.actor_loss`) are pure functions of the batch and
of the random draws made before them (:meth:`TDAlgorithm.draw`), so ``config.compile`` can compile them whole and a
run is reproducible from its generator.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import torch

from rlcf.algos.common import AgentMLP, OfflineMARLAlgorithm, OfflineMARLConfig, adam, from_unit, maybe_compile, scalar_metrics, soft_update
from rlcf.config import option, require

__all__ = ["TDAlgorithm", "TDConfig", "counterfactual_critic_values", "counterfactual_joint_actions"]


# -- critic evaluation -------------------------------------------------------------------------------------------


def counterfactual_joint_actions(data_actions: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
    """Joint actions where only agent i's action is replaced (the counterfactual of CFCQL, and MADDPG's actor input).

    Args:
        data_actions: ``[B, n, d]`` dataset actions.
        candidates: ``[B, n, K, d]``: for each agent i, K candidate actions of agent i.

    Returns:
        ``[B, n, K, n, d]``: entry ``[b, i, k]`` is the dataset joint action with agent i's slot set to
        ``candidates[b, i, k]``.
    """
    n = data_actions.shape[1]
    eye = torch.eye(n, device=data_actions.device, dtype=data_actions.dtype)[None, :, None, :, None]  # [1, i, 1, k, 1]
    return eye * candidates.unsqueeze(3) + (1 - eye) * data_actions[:, None, None, :, :]


def counterfactual_critic_values(critic: Any, state: torch.Tensor, data_actions: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
    """``critic([s, counterfactual_joint_actions(a, c)])`` without building the ``[B, n, K, S + n·d]`` inputs.

    The first layer is linear in (state, a_1, …, a_n), and a counterfactual changes one agent's slot, so its
    pre-activation is the data pre-activation plus ``(c_ik − a_i)·W_{a_i}``: the state and the other agents'
    actions go through the first layer once per row instead of once per (agent, sample). Equal to the direct
    evaluation up to float rounding (tested).

    Args:
        critic: an :class:`AgentMLP` over ``m`` heads with input ``[state, joint.flatten()]``.
        state: ``[B, S]``; data_actions: ``[B, n, d]``; candidates: ``[B, n, K, d]``.

    Returns:
        ``[B, n, K, m]``.
    """
    B, n, d = data_actions.shape
    w0, b0 = critic.weights[0], critic.biases[0]  # [m, S + n·d, H], [m, H]
    m, S, H = w0.shape[0], state.shape[-1], w0.shape[-1]
    w_state, w_act = w0[:, :S], w0[:, S:].reshape(m, n, d, H)
    K = candidates.shape[2]
    base = torch.einsum("bs,msh->mbh", state, w_state) + torch.einsum("bjd,mjdh->mbh", data_actions, w_act) + b0[:, None]
    delta = torch.einsum("bikd,midh->mbikh", candidates - data_actions.unsqueeze(2), w_act)  # [m, B, n, K, H]
    pre = (base[:, :, None, None] + delta).reshape(m, B * n * K, H)
    return critic.forward_members(pre, start=1).reshape(m, B, n, K).permute(1, 2, 3, 0)


# -- config ------------------------------------------------------------------------------------------------------


@dataclass
class TDConfig(OfflineMARLConfig):
    """The fields every TD method uses (TD3 critic and actors); defaults are the CFCQL reference's MPE settings."""

    critic_lr: float = option(1e-3, "Critic / agent-Q Adam learning rate.")
    actor_lr: float = option(1e-3, "Continuous: actor Adam learning rate (reference MPE: 1e-3; 1e-2 on spread).")
    tau: float = option(0.01, "Continuous: soft target update rate.")
    actor_every: int = option(5, "Continuous: critic updates per actor update (reference ca_ratio 5; TD3's policy delay).")
    target_noise: float = option(0.05, "Continuous: std of the target-policy smoothing noise.")
    critic_grad_clip: float = option(0.5, "Continuous: gradient-norm clip of critic and actors (reference: 0.5).")

    def __post_init__(self) -> None:
        super().__post_init__()
        require(self.actor_every >= 1, "actor_every", f"must be >= 1, got {self.actor_every}")
        require(0 < self.tau <= 1, "tau", f"must be in (0, 1], got {self.tau}")
        for name in ("actor_lr", "critic_lr"):
            require(getattr(self, name) > 0, name, f"must be > 0, got {getattr(self, name)}")


# -- algorithm ---------------------------------------------------------------------------------------------------


class TDAlgorithm(OfflineMARLAlgorithm):
    """Per-agent deterministic actors and a centralised twin critic, trained with TD3's target (continuous actions).

    Subclasses add a term to :meth:`critic_loss` or replace :meth:`actor_loss`; discrete actions are the
    conservative family's (:class:`rlcf.algos.cql_base.ConservativeTD`). One update (:meth:`train_step`):
    sample a batch, :meth:`auxiliary_step` (e.g. CFCQL's behaviour model), :meth:`draw` every random number, a
    critic step on :meth:`critic_loss`, then :meth:`after_critic_step` (actor step and soft target updates).
    """

    Config = TDConfig
    discrete_only: bool | None = False

    def __init__(self, config: TDConfig, run_config: Any, device: Any):
        super().__init__(config, run_config, device)
        torch.manual_seed(run_config.seed)
        self.build_networks()
        # The losses are pure functions of (batch, random draws), so they can be compiled as a whole.
        self.critic_loss_fn = maybe_compile(self.critic_loss, config.compile)
        self.actor_loss_fn = maybe_compile(self.actor_objective, config.compile)

    def build_networks(self) -> None:
        """Actors, the twin critic, their targets and optimizers (``critic`` and ``critic_opt`` are what
        :meth:`train_step` steps; subclasses with other value networks set those two names)."""
        c, n, d, h = self.config, self.n, self.act_dim, tuple(self.config.hidden)
        self.actor = AgentMLP(n, self.obs_dim, d, h, out_scale=3e-3).to(self.device)
        self.critic = self.build_critic()
        self.target_actor, self.target_critic = copy.deepcopy(self.actor), copy.deepcopy(self.critic)
        self.actor_opt = adam(self.actor.parameters(), c.actor_lr)
        self.critic_opt = adam(self.critic.parameters(), c.critic_lr)
        self.critic_grad_clip = c.critic_grad_clip

    def build_critic(self) -> AgentMLP:
        """The centralised twin critic ``Q(s, a_1..a_n)``: two heads in one batched MLP."""
        return AgentMLP(2, self.state_dim + self.n * self.act_dim, 1, tuple(self.config.hidden)).to(self.device)

    # -- values ---------------------------------------------------------------------------------------------------

    def critic_values(self, state: torch.Tensor, joint: torch.Tensor, critic: Any = None) -> torch.Tensor:
        """Twin critic values ``[..., 2]`` of ``state [..., S]`` and joint actions ``[..., n, d]``."""
        critic = critic or self.critic
        x = torch.cat([state, joint.flatten(-2)], dim=-1)
        return critic(x.unsqueeze(-2).expand(*x.shape[:-1], 2, x.shape[-1])).squeeze(-1)

    def q_values(self, batch: dict[str, torch.Tensor], actions: torch.Tensor, next: bool = False, critic: Any = None) -> torch.Tensor:
        """Twin values of ``actions`` in the batch's (next) states: ``[B, 2]`` for the centralised critic."""
        return self.critic_values(batch["next_state" if next else "state"], actions, critic)

    def agent_values(self, batch: dict[str, torch.Tensor], pi: torch.Tensor) -> torch.Tensor:
        """``[B, n]``: agent i's policy action with the others' dataset actions, ``Q_1(s, π_i(o_i), a_{-i}^D)``
        (MADDPG's actor input; the reference's ``cf_pol``)."""
        return counterfactual_critic_values(self.critic, batch["state"], batch["actions"], pi.unsqueeze(2))[:, :, 0, 0]

    def policy(self, obs: torch.Tensor, actor: Any = None) -> torch.Tensor:
        """Deterministic actions in [-1, 1], padded components zeroed."""
        return torch.tanh((actor or self.actor)(obs)) * self.action_valid

    def td_target(self, batch: dict[str, torch.Tensor], next_value: torch.Tensor) -> torch.Tensor:
        """``r + γ(1 − done)·V(s')``; ``next_value`` is ``[B]`` (team value) or ``[B, n]`` (per-agent values)."""
        r, done = batch["rewards"], batch["terminals"]
        if next_value.dim() > 1:
            r, done = r[:, None], done[:, None]
        return r + self.config.gamma * (1 - done) * next_value

    # -- losses (pure functions of the batch and the draws; compiled when config.compile) -------------------------

    def draw(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Every random number one update needs, drawn from the run's generator before the (pure) losses run."""
        a = batch["actions"]
        return {"target": torch.randn(a.shape, device=a.device, generator=self.gen)}

    def td_loss(self, batch: dict[str, torch.Tensor], draws: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """TD3's critic loss and the values a penalty needs (``{"q_data": Q(s, a^D)}``, twin heads last)."""
        c = self.config
        with torch.no_grad():
            next_a = ((self.policy(batch["next_obs"], self.target_actor) + draws["target"] * c.target_noise).clamp(-1, 1)) * self.action_valid
            y = self.td_target(batch, self.q_values(batch, next_a, next=True, critic=self.target_critic).min(-1).values)
        q_data = self.q_values(batch, batch["actions"])  # [B, 2] (or [B, n, 2] for per-agent critics)
        td = ((q_data - y.unsqueeze(-1)) ** 2).mean(0).sum(-1).mean()  # Σ over the twin heads, mean over agents
        return td, {"q_data": q_data}

    def value_stats(self, batch: dict[str, torch.Tensor], q_data: torch.Tensor) -> dict[str, torch.Tensor]:
        """The critic's mean value on dataset actions beside the dataset's Monte-Carlo return (overestimation check)."""
        return {"train/q_data": q_data.mean(), "train/mc_return": batch["mc_return"].mean()}

    def critic_loss(self, batch: dict[str, torch.Tensor], draws: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The critic's loss and logging tensors; the conservative methods add their penalty here."""
        td, values = self.td_loss(batch, draws)
        return td, {"losses/td": td, **self.value_stats(batch, values["q_data"])}

    def actor_loss(self, batch: dict[str, torch.Tensor], pi: torch.Tensor) -> torch.Tensor:
        """MADDPG's actor loss: −Q of each agent's policy action with the others' dataset actions."""
        return -self.agent_values(batch, pi).mean()

    def actor_objective(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.actor_loss(batch, self.policy(batch["obs"]))

    # -- the update -----------------------------------------------------------------------------------------------

    def train_step(self, step: int) -> dict[str, float]:
        batch = self.sample()
        metrics = self.auxiliary_step(batch)
        loss, stats = self.critic_loss_fn(batch, self.draw(batch))
        self.optimize(self.critic_opt, loss, self.critic_grad_clip)
        metrics.update(scalar_metrics(stats))
        metrics.update(self.after_critic_step(batch, step))
        self.updates += 1
        return metrics

    def auxiliary_step(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        """Models trained beside the critic, before it, on the same batch (none here)."""
        return {}

    def after_critic_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, float]:
        """Every ``actor_every`` steps: one actor step, then soft target updates of critic and actors."""
        c = self.config
        if step % c.actor_every != 0:
            return {}
        loss = self.actor_loss_fn(batch)
        self.optimize(self.actor_opt, loss, c.critic_grad_clip)
        soft_update(self.target_critic, self.critic, c.tau)
        soft_update(self.target_actor, self.actor, c.tau)
        return {"losses/actor": loss.item()}

    @staticmethod
    def optimize(opt: torch.optim.Optimizer, loss: torch.Tensor, clip: float) -> None:
        """One clipped gradient step of ``opt``'s parameters on ``loss``."""
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for group in opt.param_groups for p in group["params"]], clip)
        opt.step()

    # -- acting and state -----------------------------------------------------------------------------------------

    @torch.no_grad()
    def act(self, obs: torch.Tensor) -> torch.Tensor:
        """Greedy team action in env units for ``obs [n, obs_dim]``."""
        unit = self.policy(obs)
        return from_unit(unit, self.data.action_low, self.data.action_high).clamp(self.data.action_low, self.data.action_high)

    def stateful(self) -> dict[str, Any]:
        names = ("actor", "critic", "target_actor", "target_critic", "actor_opt", "critic_opt")
        return {name: getattr(self, name) for name in names}
