"""Pieces every offline multi-agent algorithm shares: batched per-agent networks, the QMIX mixer, action scaling and
masking, the dataset-backed base class and the policy wrapper used for evaluation (the TD methods' skeleton is
:mod:`rlcf.algos.td_base`).

Everything here is vectorised over agents: a per-agent network is one set of stacked weights ``[n_agents, in,
out]`` applied with one batched matmul, never a Python loop over agents in the hot path.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from rlcf.algorithm import StepAlgorithm
from rlcf.config import option, require

__all__ = [
    "NEG_INF",
    "AgentMLP",
    "OfflineMARLAlgorithm",
    "OfflineMARLConfig",
    "QMixer",
    "TeamPolicy",
    "adam",
    "from_unit",
    "maybe_compile",
    "scalar_metrics",
    "soft_update",
    "to_unit",
]

NEG_INF = -1e10  # the logit / value given to an agent's padded (nonexistent) actions before a softmax, max or argmax


class AgentMLP(nn.Module):
    """``n`` independent MLPs evaluated together: input ``[..., n, in]`` → output ``[..., n, out]``.

    Args:
        n: number of members (agents, or twin critics).
        in_dim, out_dim: sizes.
        hidden: hidden layer widths.
        out_scale: if set, the last layer starts uniform in ``[-out_scale, out_scale]`` (small initial actions).
    """

    def __init__(self, n: int, in_dim: int, out_dim: int, hidden: tuple[int, ...] = (64, 64), out_scale: float | None = None):
        super().__init__()
        sizes = (in_dim, *hidden, out_dim)
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            bound = 1.0 / math.sqrt(fan_in)
            self.weights.append(nn.Parameter(torch.empty(n, fan_in, fan_out).uniform_(-bound, bound)))
            self.biases.append(nn.Parameter(torch.empty(n, fan_out).uniform_(-bound, bound)))
        if out_scale is not None:
            nn.init.uniform_(self.weights[-1], -out_scale, out_scale)
            nn.init.uniform_(self.biases[-1], -out_scale, out_scale)

    def forward(self, x: torch.Tensor, start: int = 0) -> torch.Tensor:
        """Apply the MLP to ``x [..., n, in]``; with ``start = k > 0``, ``x`` is layer k−1's pre-activation output
        and only the layers from k on are applied."""
        lead = x.shape[:-2]
        h = self.forward_members(x.reshape(-1, *x.shape[-2:]).transpose(0, 1), start)  # [n, B, ...]
        return h.transpose(0, 1).reshape(*lead, h.shape[0], h.shape[-1])

    def forward_members(self, h: torch.Tensor, start: int = 0) -> torch.Tensor:
        """Member-major form of :meth:`forward`: ``h [n, B, in] → [n, B, out]`` (no transposes; the fast path)."""
        last = len(self.weights) - 1
        if start > 0:
            h = torch.relu(h)
        for k in range(start, last + 1):
            h = torch.baddbmm(self.biases[k].unsqueeze(1), h, self.weights[k])
            if k < last:
                h = torch.relu(h)
        return h


class QMixer(nn.Module):
    """QMIX's monotonic mixer (Rashid et al., 2018): ``Q_tot = w2ᵀ ELU(W1ᵀ q + b1) + b2`` with state-conditioned,
    non-negative weights. Accepts any leading batch shape: ``q [..., n]``, ``state [..., state_dim]``."""

    def __init__(self, n_agents: int, state_dim: int, embed: int = 32, hyper: int = 64):
        super().__init__()
        self.n, self.embed = n_agents, embed
        self.w1 = nn.Sequential(nn.Linear(state_dim, hyper), nn.ReLU(), nn.Linear(hyper, n_agents * embed))
        self.b1 = nn.Linear(state_dim, embed)
        self.w2 = nn.Sequential(nn.Linear(state_dim, hyper), nn.ReLU(), nn.Linear(hyper, embed))
        self.b2 = nn.Sequential(nn.Linear(state_dim, embed), nn.ReLU(), nn.Linear(embed, 1))

    def forward(self, q: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        lead = q.shape[:-1]
        q = q.reshape(-1, 1, self.n)
        s = state.reshape(-1, state.shape[-1])
        w1 = self.w1(s).abs().view(-1, self.n, self.embed)
        hidden = torch.nn.functional.elu(torch.bmm(q, w1) + self.b1(s).unsqueeze(1))
        w2 = self.w2(s).abs().view(-1, self.embed, 1)
        return (torch.bmm(hidden, w2).squeeze(-1) + self.b2(s)).reshape(lead)


def to_unit(actions: torch.Tensor, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    """Map env actions in ``[low, high]`` to ``[-1, 1]`` (MPE's continuous actions lie in [0, 1])."""
    return 2.0 * (actions - low) / (high - low).clamp_min(1e-8) - 1.0


def from_unit(actions: torch.Tensor, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`to_unit`."""
    return low + (actions + 1.0) * 0.5 * (high - low)


@torch.no_grad()
def soft_update(target: nn.Module, source: nn.Module, tau: float) -> None:
    """Polyak averaging: ``target ← (1 − tau)·target + tau·source``."""
    for t, s in zip(target.parameters(), source.parameters()):
        t.lerp_(s, tau)


def adam(params: Any, lr: float) -> torch.optim.Adam:
    """Adam with the fused kernel (one kernel for every parameter, on CPU and CUDA; ~3× faster steps than the
    default for-each implementation on these small networks)."""
    return torch.optim.Adam(params, lr=lr, fused=True)


def maybe_compile(fn: Any, enabled: bool) -> Any:
    """``torch.compile(fn)`` when ``enabled``, else ``fn``; a compiler failure names the config field to turn off."""
    if not enabled:
        return fn
    compiled = torch.compile(fn, dynamic=False)

    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return compiled(*args, **kwargs)
        except Exception as exc:
            if type(exc).__module__.startswith("torch._dynamo") or type(exc).__module__.startswith("torch._inductor"):
                from rlcf.errors import ConfigError

                raise ConfigError(
                    "config.compile", f"torch.compile failed on this machine ({type(exc).__name__}: {str(exc)[:300]}); set config.compile=false"
                ) from exc
            raise

    return call


def scalar_metrics(stats: dict[str, torch.Tensor]) -> dict[str, float]:
    """Logging floats from loss tensors; a vector ``name`` (one value per agent) becomes ``name_0 … name_{n-1}``."""
    out: dict[str, float] = {}
    for name, value in stats.items():
        values = value.detach().reshape(-1).tolist()
        if value.dim() == 0:
            out[name] = float(values[0])
        else:
            out.update({f"{name}_{i}": float(v) for i, v in enumerate(values)})
    return out


@dataclass
class OfflineMARLConfig:
    """Fields every offline multi-agent algorithm shares."""

    dataset: str = option("rlcf/mpe-simple_spread/medium-v0", "Dataset id (rlcf/<env>/<tier>-vN) or folder.")
    batch_size: int = option(1024, "Transitions per gradient step (CFCQL's MPE setting).")
    hidden: tuple[int, ...] = option((64, 64), "Hidden layer widths of every network.")
    gamma: float = option(0.95, "Discount (CFCQL/OMAR MPE setting).")
    eval_episodes: int = option(32, "Episodes per evaluation (>= 32 for reported numbers).")
    eval_seed: int = option(10_000, "Seed of the evaluation episodes (fixed across runs and algorithms).")
    normalize_inputs: bool = option(
        True, "Standardise observations and states with the dataset's mean/std (the reference's input BatchNorm)."
    )
    reward_scale: float = option(
        1.0,
        "Multiply team rewards by this before TD learning (CORL-style). mpe2's MPE returns are ~20x smaller than those "
        "of the MPE the CFCQL/OMAR reference was tuned on, which makes every CQL alpha ~20x stronger against the TD "
        "loss; the force-action MPE configs set 20. Scores are always reported in the env's own reward units.",
    )
    compile: bool = option(
        False,
        "torch.compile the loss functions (fuses the elementwise work of the sampled logsumexp: ~1.5x more updates/s "
        "on CPU; costs ~30-60 s of compilation at start, cached on disk for later runs).",
    )

    def __post_init__(self) -> None:
        require(self.batch_size > 0, "batch_size", f"must be > 0, got {self.batch_size}")
        require(0.0 < self.gamma <= 1.0, "gamma", f"must be in (0, 1], got {self.gamma}")
        require(len(self.hidden) >= 1 and all(h > 0 for h in self.hidden), "hidden", f"needs positive widths, got {self.hidden}")
        require(self.eval_episodes > 0, "eval_episodes", f"must be > 0, got {self.eval_episodes}")
        require(self.reward_scale > 0, "reward_scale", f"must be > 0, got {self.reward_scale}")


class OfflineMARLAlgorithm(StepAlgorithm):
    """Loads the dataset onto the device and provides sampling, evaluation and the team policy.

    Subclasses build networks in ``__init__`` after ``super().__init__``, implement ``train_step``,
    ``act(obs [n_agents, obs_dim]) -> actions`` (env units) and ``stateful()`` (what a checkpoint holds; this
    class adds the update counter and the sampler's generator).
    """

    discrete_only: bool | None = None  # True/False when the algorithm supports one action type only

    def __init__(self, config: OfflineMARLConfig, run_config: Any, device: Any):
        from rlcf.data.marl import load_marl_dataset
        from rlcf.errors import ConfigError

        super().__init__(config, run_config, device)
        if torch.device(device).type == "cpu":
            from rlcf.device import keep_freed_cpu_memory

            keep_freed_cpu_memory()  # reuse freed activation blocks instead of page-faulting them in every step
        self.data = load_marl_dataset(config.dataset, device=device)
        self.discrete = self.data.action_type == "discrete"
        if self.discrete_only is not None and self.discrete != self.discrete_only:
            kind = "discrete" if self.discrete_only else "continuous"
            raise ConfigError(
                "config.dataset", f"{type(self).__name__} needs {kind} actions; '{config.dataset}' has {self.data.action_type}"
            )
        self.n = self.data.n_agents
        self.obs_dim = self.data.obs.shape[-1]
        self.state_dim = self.data.state.shape[-1] if self.data.state is not None else self.n * self.obs_dim
        self.act_dim = max(self.data.action_dims)
        self.gen = torch.Generator(device=device).manual_seed(run_config.seed)
        self.updates = 0
        # Padded action components of an agent with fewer dimensions never carry information: mask them.
        dims = torch.as_tensor(self.data.action_dims, device=device)
        self.action_valid = torch.arange(self.act_dim, device=device)[None, :] < dims[:, None]  # [n, act_dim]
        # Fixed input standardisation from dataset statistics (a function of the data, so not checkpointed).
        self.obs_mean, self.obs_std = self._moments(self.data.obs, per_agent=True)
        state = self.data.state if self.data.state is not None else self.data.obs.flatten(1)
        self.state_mean, self.state_std = self._moments(state, per_agent=False)

    def _moments(self, x: torch.Tensor, per_agent: bool) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.config.normalize_inputs:
            return torch.zeros(x.shape[1:], device=x.device), torch.ones(x.shape[1:], device=x.device)
        x = x.float()
        return x.mean(0), x.std(0).clamp_min(1e-3)

    def normalize_obs(self, obs: torch.Tensor) -> torch.Tensor:
        """Standardised per-agent observations ``[..., n, obs_dim]`` (identity when ``normalize_inputs`` is off)."""
        return (obs - self.obs_mean) / self.obs_std

    def normalize_state(self, state: torch.Tensor) -> torch.Tensor:
        return (state - self.state_mean) / self.state_std

    @property
    def mc_returns(self) -> torch.Tensor:
        """``[N]`` the dataset's discounted return-to-go per transition, in the scaled reward units the critic learns."""
        if getattr(self, "_mc_returns", None) is None:
            self._mc_returns = self.data.discounted_returns(self.config.gamma) * self.config.reward_scale
        return self._mc_returns

    def sample(self) -> dict[str, torch.Tensor]:
        idx = torch.randint(len(self.data), (self.config.batch_size,), device=self.data.device, generator=self.gen)
        batch = self.data.batch(idx)
        batch["mc_return"] = self.mc_returns[idx]
        if self.config.reward_scale != 1.0:
            batch["rewards"] = batch["rewards"] * self.config.reward_scale
        if batch.get("state") is None:
            batch["state"] = batch["obs"].flatten(1)
            batch["next_state"] = batch["next_obs"].flatten(1)
        for key in ("obs", "next_obs"):
            batch[key] = self.normalize_obs(batch[key])
        for key in ("state", "next_state"):
            batch[key] = self.normalize_state(batch[key])
        if not self.discrete:
            low, high = self.data.action_low, self.data.action_high
            batch["actions"] = to_unit(batch["actions"], low, high) * self.action_valid
        return batch

    @torch.no_grad()
    def act(self, obs: torch.Tensor) -> torch.Tensor:  # pragma: no cover - subclasses implement
        raise NotImplementedError

    def team_policy(self) -> TeamPolicy:
        return TeamPolicy(self)

    def evaluate(self, step: int) -> dict[str, float]:
        from rlcf.eval.runner import evaluate_policy
        from rlcf.registry import envs

        spec = envs.get(self.data.env_id)
        meta = self.data.metadata
        result = evaluate_policy(
            spec,
            self.team_policy(),
            episodes=self.config.eval_episodes,
            seed=self.config.eval_seed,
            ref_min=meta.get("ref_min_score"),
            ref_max=meta.get("ref_max_score"),
        )
        self.last_eval = result  # the full per-episode result, for reports
        key = f"eval/{spec.id}/{self.data.dataset_id.rsplit('/', 1)[-1]}"
        out = {f"{key}/return": result.mean_return}
        if result.normalized_score is not None:
            out[f"{key}/normalized_score"] = result.normalized_score
        return out

    def stateful(self) -> dict[str, Any]:
        """The networks and optimizers a checkpoint holds, by name (subclasses list theirs)."""
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        return {
            **{name: part.state_dict() for name, part in self.stateful().items()},
            "updates": self.updates,
            "gen": self.gen.get_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name, part in self.stateful().items():
            part.load_state_dict(state[name])
        self.updates = int(state["updates"])
        self.gen.set_state(state["gen"])


class TeamPolicy:
    """A trained algorithm as a behaviour policy: observations dict in, env actions dict out."""

    def __init__(self, algo: OfflineMARLAlgorithm):
        self.algo = algo
        self.agents = algo.data.agents

    def reset(self, seed: int | None = None) -> None:
        pass

    @torch.no_grad()
    def act(self, observations: dict[str, np.ndarray]) -> dict[str, Any]:
        algo = self.algo
        obs = torch.zeros(algo.n, algo.obs_dim, device=algo.device)
        for i, agent in enumerate(self.agents):
            o = torch.as_tensor(np.asarray(observations[agent], dtype=np.float32), device=algo.device).reshape(-1)
            obs[i, : o.shape[0]] = o
        actions = algo.act(algo.normalize_obs(obs)).cpu().numpy()
        out = {}
        for i, agent in enumerate(self.agents):
            if algo.discrete:
                out[agent] = int(actions[i])
            else:
                out[agent] = actions[i, : algo.data.action_dims[i]].astype(np.float32)
        return out
