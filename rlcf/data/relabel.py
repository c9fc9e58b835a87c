"""Relabel an offline multi-agent dataset with a registered env reward into a new dataset version."""

from __future__ import annotations

from typing import Any

import numpy as np

from rlcf.data.episodes import MultiAgentEpisode
from rlcf.data.marl import _minari_root, _resolve, validate_dataset, write_marl_dataset
from rlcf.errors import UsageError

__all__ = ["relabel_dataset"]


def _next_version(dataset_id: str) -> str:
    stem, _, version = dataset_id.rpartition("-v")
    return f"{stem}-relabelled-v{int(version)}"


def relabel_dataset(source: str, reward: str, new_id: str | None = None, overwrite: bool = False, **reward_kwargs: Any) -> str:
    """Write a copy of ``source`` whose rewards come from the env reward ``reward``.

    Observations, actions, states, seeds and reference scores are kept; per-agent rewards are replaced and the
    team reward is recomputed with the env spec's definition. The new dataset records where it came from.

    Returns:
        The new dataset id (default ``<name>-relabelled-v<N>`` beside the source).
    """
    import minari

    from rlcf.envs.spec import _reduce
    from rlcf.registry import envs, rewards
    from rlcf.reward_fns.env_rewards import EpisodeView

    entry = rewards.entry(reward)
    fn = rewards.get(reward)
    if entry is not None and entry.metadata.get("kind") != "env":
        raise UsageError(f"reward '{reward}' is not an env reward (register env rewards with kind='env')")
    folder, dataset_id = _resolve(source)
    meta = validate_dataset(folder, expect_id=dataset_id)
    rlcf_meta = meta["rlcf"]
    spec = envs.get(rlcf_meta["env"]["id"])
    agents = tuple(rlcf_meta["agents"])
    new_id = new_id or _next_version(dataset_id)
    with _minari_root(folder.parents[len(dataset_id.split("/")) - 1]):
        source_eps = list(minari.load_dataset(dataset_id).iterate_episodes())
    out = []
    for ep in source_eps:
        view = EpisodeView(
            env_id=spec.id,
            agents=agents,
            observations={a: np.asarray(ep.observations[a]) for a in agents},
            actions={a: np.asarray(ep.actions[a]) for a in agents},
            agent_rewards={a: np.asarray(ep.infos["agent_rewards"][a][1:]) for a in agents},
            states=np.asarray(ep.infos["state"]) if rlcf_meta.get("has_state") else None,
        )
        new = fn(view, **reward_kwargs)
        if set(new) != set(agents) or any(np.shape(new[a]) != (view.length,) for a in agents):
            raise UsageError(f"env reward '{reward}' must return {{agent: array of shape ({view.length},)}} for {list(agents)}")
        team = np.array([_reduce(spec, {a: new[a][t] for a in agents}, agents) for t in range(view.length)])
        out.append(
            MultiAgentEpisode(
                index=int(ep.id),
                seed=int(rlcf_meta["episode_seeds"][len(out)]),
                agents=agents,
                observations=dict(view.observations),
                actions=dict(view.actions),
                rewards={a: np.asarray(new[a], dtype=np.float64) for a in agents},
                team_rewards=team,
                terminations=np.asarray(ep.terminations, dtype=bool),
                truncations=np.asarray(ep.truncations, dtype=bool),
                states=view.states,
                epsilon=float(ep.infos["epsilon"][0]) if "epsilon" in ep.infos else 0.0,
            )
        )
    write_marl_dataset(
        new_id,
        out,
        spec=spec,
        behaviour=rlcf_meta["behaviour"],
        ref_min_score=None,  # the old references measured the old reward; they do not apply
        ref_max_score=None,
        overwrite=overwrite,
        extra_metadata={"relabelled_from": dataset_id, "reward": reward, "reward_kwargs": {k: str(v) for k, v in reward_kwargs.items()}},
    )
    return new_id
