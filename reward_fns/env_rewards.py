"""Environment-side reward functions: relabel offline multi-agent data with another reward.

The MARL side of the shared reward abstraction. An env reward is a plain callable registered in
:data:`rlcf.registry.rewards` with ``kind="env"``::

    fn(episode: EpisodeView, **kwargs) -> dict[agent_id, np.ndarray]   # per-agent rewards, shape (T,)

:func:`rlcf.data.relabel.relabel_dataset` applies one to every episode of a dataset and writes a new dataset
version whose team reward follows the env spec's definition (mean/sum/first of the per-agent rewards).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from rlcf.registry import rewards

__all__ = ["EpisodeView", "spread_coverage", "spread_nearest_landmark"]


@dataclass(frozen=True)
class EpisodeView:
    """One episode as an env reward sees it (``T`` steps; observations and states have ``T + 1`` rows)."""

    env_id: str
    agents: tuple[str, ...]
    observations: Mapping[str, np.ndarray]
    actions: Mapping[str, np.ndarray]
    agent_rewards: Mapping[str, np.ndarray]
    states: np.ndarray | None

    @property
    def length(self) -> int:
        return int(next(iter(self.actions.values())).shape[0])


def _spread_geometry(episode: EpisodeView) -> np.ndarray:
    """Distances ``[T, n_agents, n_landmarks]`` after each step, from simple_spread observations.

    An agent's observation is [vel(2), pos(2), landmark offsets (2 per landmark), other agents' offsets, comm];
    the offsets are relative to the agent, so the distance to a landmark is the offset's norm.
    """
    if not episode.env_id.startswith("mpe-simple_spread"):
        raise ValueError(f"this reward is defined for mpe-simple_spread, not {episode.env_id}")
    n_landmarks = len(episode.agents)
    offsets = np.stack([episode.observations[a][1:, 4 : 4 + 2 * n_landmarks] for a in episode.agents], axis=1)
    return np.linalg.norm(offsets.reshape(offsets.shape[0], len(episode.agents), n_landmarks, 2), axis=-1)


@rewards.register("mpe-spread-coverage", kind="env", help="simple_spread: -sum over landmarks of the nearest agent's distance, shared (no collision term)")
def spread_coverage(episode: EpisodeView, **kwargs) -> dict[str, np.ndarray]:
    """The shared coverage term of simple_spread without its collision penalty, for every agent."""
    dist = _spread_geometry(episode)
    team = -dist.min(axis=1).sum(axis=1)
    return {a: team.copy() for a in episode.agents}


@rewards.register("mpe-spread-nearest-landmark", kind="env", help="simple_spread: each agent's own -distance to its nearest landmark (per-agent)")
def spread_nearest_landmark(episode: EpisodeView, **kwargs) -> dict[str, np.ndarray]:
    """A per-agent shaping: minus the distance from each agent to its nearest landmark."""
    dist = _spread_geometry(episode)
    return {a: -dist[:, i, :].min(axis=1) for i, a in enumerate(episode.agents)}
