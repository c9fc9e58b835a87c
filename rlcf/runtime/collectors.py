"""Collect multi-agent episodes with Ray actors (or in this process).

Each actor holds its own env copy and rolls out the episodes the driver hands it, a few indices per call and
a few calls in flight per actor. Episodes are pure functions of ``(plan, index)``, so the driver can hand any index to any
actor: the data do not depend on the number of actors, and when an actor dies only its unfinished episodes
are re-run, on a replacement actor, with identical results.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import Any

from rlcf.data.episodes import MultiAgentEpisode, rollout_episode
from rlcf.data.tiers import CollectionPlan, build_policy, resolve_behaviour

log = logging.getLogger(__name__)

__all__ = ["EpisodeWorker", "collect_episodes"]


class EpisodeWorker:
    """Rolls out episodes of one collection plan (a Ray actor, or used directly in-process)."""

    def __init__(self, spec: Any, plan: CollectionPlan):
        from rlcf.runtime.threads import set_torch_threads

        # Scripted policies never import torch; trained ones do, and then use this process's CPU share.
        set_torch_threads(load_torch=False)
        self.spec = spec
        self.plan = plan
        self.env = spec.make()
        self._bases: dict[int, Any] = {}

    def _policy(self, index: int) -> tuple[Any, float]:
        k, behaviour, epsilon = self.plan.behaviour(index)
        if k not in self._bases:
            self._bases[k] = build_policy(behaviour, self.spec, self.env.possible_agents, self.env, 0.0)
        base = self._bases[k]
        if epsilon > 0:
            from rlcf.envs import EpsilonMix

            return EpsilonMix(base, epsilon), epsilon
        return base, epsilon

    def run(self, index: int) -> MultiAgentEpisode:
        policy, epsilon = self._policy(index)
        return rollout_episode(self.env, policy, index, self.plan.seed_of(index), epsilon)

    def run_many(self, indices: list[int]) -> list[MultiAgentEpisode]:
        return [self.run(i) for i in indices]

    def ping(self) -> bool:
        return True


def _resolved(plan: CollectionPlan, spec: Any) -> CollectionPlan:
    components = tuple((resolve_behaviour(b, spec), f) for b, f in plan.components)
    return replace(plan, components=components)


def collect_episodes(
    plan: CollectionPlan,
    *,
    spec: Any = None,
    actors: int = 1,
    in_flight: int = 2,
    episodes_per_task: int = 4,
    max_actor_restarts: int = 3,
    progress: bool = True,
    actor_options: dict[str, Any] | None = None,
) -> list[MultiAgentEpisode]:
    """Run every episode of ``plan``; returns them ordered by index.

    Args:
        plan: what to collect.
        spec: the env spec (default: ``plan.env_id`` looked up in the registry). The spec object travels to
            the actors, so user envs registered only in this process work too.
        actors: number of Ray actors; ``0`` runs in this process without Ray.
        in_flight: tasks queued per actor (hides the driver's round trip).
        episodes_per_task: episodes per actor call; larger amortises Ray's per-call cost, smaller bounds the
            work a dead actor takes with it (its unfinished task, re-run elsewhere with identical results).
        max_actor_restarts: how many dead actors may be replaced before the collection fails.
        progress: show a progress bar with episodes/s and steps/s.
        actor_options: extra ``.options(...)`` for the actors (e.g. ``runtime_env``).

    Raises:
        RlcfError: more actors died than ``max_actor_restarts`` allows.
    """
    from rlcf.progress import progress as progress_bar
    from rlcf.registry import envs

    spec = spec if spec is not None else envs.get(plan.env_id)
    plan = _resolved(plan, spec)
    n = plan.episodes
    results: dict[int, MultiAgentEpisode] = {}
    start = time.perf_counter()
    steps = 0
    desc = f"collect {plan.env_id} ({plan.tier})"
    with progress_bar(desc, total=n) as bar:

        def record(ep: MultiAgentEpisode) -> None:
            nonlocal steps
            results[ep.index] = ep
            steps += ep.length
            elapsed = max(time.perf_counter() - start, 1e-9)
            if progress:
                bar.advance(1, eps_per_s=round(len(results) / elapsed, 1), steps_per_s=round(steps / elapsed))

        if actors <= 0:
            worker = EpisodeWorker(spec, plan)
            for i in range(n):
                record(worker.run(i))
        else:
            _collect_with_ray(
                spec, plan, actors, in_flight, max(1, episodes_per_task), max_actor_restarts, actor_options or {}, record
            )
    return [results[i] for i in range(n)]


def _collect_with_ray(spec, plan, actors, in_flight, per_task, max_restarts, actor_options, record) -> None:
    from rlcf.runtime.pool import ShardPool

    indices = list(range(plan.episodes))
    shards = [indices[i:i + per_task] for i in range(0, len(indices), per_task)]
    with ShardPool(EpisodeWorker, [spec, plan], "run_many", actors=actors, in_flight=in_flight,
                   max_actor_restarts=max_restarts, actor_options=actor_options, what="collector") as pool:
        pool.run(shards, lambda _, episodes: [record(e) for e in episodes])
