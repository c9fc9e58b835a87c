"""Multi-agent episodes: the record type, the behaviour plan that produced them, and one rollout.

Every episode is a pure function of ``(env spec, behaviour plan, collection seed, episode index)``: the env
is reset with a seed derived from the collection seed and the index, and the behaviour policy is reseeded
from the same derivation. That is what makes a collection identical whatever number of Ray actors ran it, and
what lets a crashed actor's unfinished episode be re-run elsewhere with the same result.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rlcf.errors import UsageError

__all__ = ["BehaviourPlan", "MultiAgentEpisode", "episode_seed", "rollout_episode"]


def episode_seed(collection_seed: int, index: int) -> int:
    """The env seed of episode ``index`` of a collection (independent streams per index)."""
    return int(np.random.SeedSequence([int(collection_seed), int(index)]).generate_state(1)[0])


@dataclass(frozen=True)
class BehaviourPlan:
    """Which behaviour acts in an episode.

    Attributes:
        policy: a name in :data:`rlcf.registry.policies`, ``"expert"`` (the env spec's expert), or a
            ``"package.module:attr"`` path. Resolved to an import path by the driver, so Ray workers that never
            imported the user's module can still build it.
        policy_kwargs: keyword arguments for the policy factory (e.g. ``checkpoint=...`` for ``trained``).
        epsilon: chance per agent and step of a uniformly random action instead of the policy's.
        epsilon_end: when set, epsilon anneals linearly from ``epsilon`` (first episode of this component) to
            ``epsilon_end`` (last episode): a learner improving over the collection, as in medium-replay.
        factory: the resolved policy factory, when it has no import path (a local function); pickled by value.
    """

    policy: str = "random"
    policy_kwargs: Mapping[str, Any] = field(default_factory=dict)
    epsilon: float = 0.0
    epsilon_end: float | None = None
    factory: Any = None

    def __post_init__(self) -> None:
        for name in ("epsilon", "epsilon_end"):
            value = getattr(self, name)
            if value is not None and not 0.0 <= value <= 1.0:
                raise UsageError(f"behaviour plan: {name} must be in [0, 1], got {value}")

    def epsilon_at(self, position: float) -> float:
        """Epsilon at ``position`` in [0, 1] through this component's episodes."""
        if self.epsilon_end is None:
            return self.epsilon
        return float(self.epsilon + (self.epsilon_end - self.epsilon) * position)

    def describe(self) -> dict[str, Any]:
        """JSON-safe provenance."""
        out: dict[str, Any] = {"policy": self.policy, "epsilon": self.epsilon}
        if self.policy_kwargs:
            out["policy_kwargs"] = {k: str(v) for k, v in self.policy_kwargs.items()}
        if self.epsilon_end is not None:
            out["epsilon_end"] = self.epsilon_end
        return out


@dataclass(frozen=True)
class MultiAgentEpisode:
    """One episode of the controlled team, keyed by agent id as PettingZoo does.

    ``T`` is the number of steps. Observations and states have ``T + 1`` rows (the reset row first); actions,
    rewards, terminations and truncations have ``T``. ``terminations[t]``/``truncations[t]`` are true when
    every controlled agent terminated/was truncated at step ``t``.
    """

    index: int
    seed: int
    agents: tuple[str, ...]
    observations: dict[str, np.ndarray]
    actions: dict[str, np.ndarray]
    rewards: dict[str, np.ndarray]
    team_rewards: np.ndarray
    terminations: np.ndarray
    truncations: np.ndarray
    states: np.ndarray | None = None
    action_masks: dict[str, np.ndarray] | None = None
    epsilon: float = 0.0

    @property
    def length(self) -> int:
        return int(self.team_rewards.shape[0])

    @property
    def team_return(self) -> float:
        return float(np.sum(self.team_rewards))

    def __repr__(self) -> str:
        a = self.agents[0]
        state = "none" if self.states is None else str(tuple(self.states.shape))
        return (
            f"MultiAgentEpisode(index={self.index}, T={self.length}, agents={list(self.agents)}, "
            f"obs[{a}]={tuple(self.observations[a].shape)}, act[{a}]={tuple(self.actions[a].shape)}, "
            f"state={state}, team_return={self.team_return:.3f})"
        )


def _stack(rows: list[Any], dtype: Any = None) -> np.ndarray:
    return np.asarray(np.stack([np.asarray(r) for r in rows]), dtype=dtype)


def rollout_episode(env: Any, policy: Any, index: int, seed: int, epsilon: float = 0.0) -> MultiAgentEpisode:
    """Run one episode of ``policy`` in ``env`` (a :class:`~rlcf.envs.spec.TeamParallelEnv`).

    Args:
        env: the team env.
        policy: a :class:`~rlcf.envs.behaviour.policies.BehaviourPolicy` for ``env.possible_agents``.
        index: the episode's index in its collection.
        seed: the env seed (see :func:`episode_seed`); the policy is reseeded from it too.
        epsilon: recorded with the episode (the policy already applies it).
    """
    agents = tuple(env.possible_agents)
    obs, infos = env.reset(seed=seed)
    policy.reset(seed=seed + 1)
    has_state = getattr(env, "state", None) is not None
    obs_rows = {a: [obs[a]] for a in agents}
    mask_rows: dict[str, list] | None = None
    if any("action_mask" in infos.get(a, {}) for a in agents):
        mask_rows = {a: [infos[a]["action_mask"]] for a in agents}
    act_rows: dict[str, list] = {a: [] for a in agents}
    rew_rows: dict[str, list] = {a: [] for a in agents}
    team, terms, truncs = [], [], []
    states = [np.asarray(env.state(), dtype=np.float32)] if has_state else None
    while env.agents:
        live = tuple(env.agents)
        if live != agents:
            raise UsageError(
                f"env '{env.spec.id}': agents left the episode early ({sorted(set(agents) - set(live))}); "
                "rlcf datasets need the controlled team present until the episode ends"
            )
        actions = policy.act({a: obs[a] for a in live})
        obs, rewards, terminations, truncations, infos = env.step(actions)
        for a in agents:
            act_rows[a].append(actions[a])
            rew_rows[a].append(float(rewards[a]))
            obs_rows[a].append(obs[a])
            if mask_rows is not None:
                mask_rows[a].append(infos[a].get("action_mask", mask_rows[a][-1]))
        team.append(infos[agents[0]]["team_reward"])
        terms.append(all(terminations[a] for a in agents))
        truncs.append(all(truncations[a] for a in agents) and not terms[-1])
        if states is not None:
            states.append(np.asarray(env.state(), dtype=np.float32))
    if not team:
        raise UsageError(f"env '{env.spec.id}' ended an episode before its first step")
    if not (terms[-1] or truncs[-1]):
        truncs[-1] = True  # the env removed the agents without flags: record the end as a truncation
    return MultiAgentEpisode(
        index=index,
        seed=seed,
        agents=agents,
        observations={a: _stack(obs_rows[a]) for a in agents},
        actions={a: _stack(act_rows[a]) for a in agents},
        rewards={a: np.asarray(rew_rows[a], dtype=np.float64) for a in agents},
        team_rewards=np.asarray(team, dtype=np.float64),
        terminations=np.asarray(terms, dtype=bool),
        truncations=np.asarray(truncs, dtype=bool),
        states=_stack(states, np.float32) if states is not None else None,
        action_masks={a: _stack(mask_rows[a]) for a in agents} if mask_rows is not None else None,
        epsilon=epsilon,
    )
