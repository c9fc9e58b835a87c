"""Collect multi-agent episodes with Ray actors (or in this process).

Each actor holds its own env copy and rolls out the episodes the driver hands it, a few indices per call and
a few calls in flight per actor. Episodes are pure functions of ``(plan, index)``, so the driver can hand any index to any
actor: the data do not depend on the number of actors, and when an actor dies only its unfinished episodes
are re-run, on a replacement actor, with identical results.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from dataclasses import replace
from typing import Any

from rlcf.data.episodes import MultiAgentEpisode, rollout_episode
from rlcf.data.tiers import CollectionPlan, build_policy, resolve_behaviour
from rlcf.errors import RlcfError

log = logging.getLogger(__name__)

__all__ = ["EpisodeWorker", "collect_episodes"]


class EpisodeWorker:
    """Rolls out episodes of one collection plan (a Ray actor, or used directly in-process)."""

    def __init__(self, spec: Any, plan: CollectionPlan):
        self.spec = spec
        self.plan = plan
        self.env = spec.make()
        self._bases: dict[int, Any] = {}

    def _policy(self, index: int) -> tuple[Any, float]:
        k, behaviour, epsilon = self.plan.behaviour(index)
        if k not in self._bases:
            self._bases[k] = build_policy(behaviour, self.spec, self.env.possible_agents, self.env.env, 0.0)
        base = self._bases[k]
        if epsilon > 0:
            from rlcf.envs.policies import EpsilonMix

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
    import ray
    from ray.exceptions import ActorDiedError, ActorUnavailableError, RayActorError

    from rlcf.runtime.cluster import ensure_ray

    ensure_ray()
    remote_cls = ray.remote(num_cpus=1, max_restarts=0)(EpisodeWorker)
    spec_ref, plan_ref = ray.put(spec), ray.put(plan)

    def new_actor() -> Any:
        return remote_cls.options(**actor_options).remote(spec_ref, plan_ref)

    live: dict[int, Any] = {k: new_actor() for k in range(actors)}
    pending = deque(range(plan.episodes))
    flying: dict[Any, tuple[int, list[int]]] = {}  # object ref -> (actor key, episode indices)
    restarts, next_key = 0, actors
    try:
        while pending or flying:
            for key, actor in list(live.items()):
                while pending and sum(1 for a, _ in flying.values() if a == key) < in_flight:
                    indices = [pending.popleft() for _ in range(min(per_task, len(pending)))]
                    flying[actor.run_many.remote(indices)] = (key, indices)
            done, _ = ray.wait(list(flying), num_returns=1)
            ref = done[0]
            key, indices = flying.pop(ref)
            try:
                for episode in ray.get(ref):
                    record(episode)
            except (ActorDiedError, ActorUnavailableError, RayActorError) as exc:
                if key not in live:
                    pending.extendleft(reversed(indices))  # another task of an actor already replaced
                    continue
                restarts += 1
                lost = sorted([*indices, *(i for r, (k, idx) in flying.items() if k == key for i in idx)])
                for r in [r for r, (k, _) in flying.items() if k == key]:
                    flying.pop(r)
                pending.extendleft(reversed(lost))
                del live[key]
                log.warning("collector actor died (%s); re-running episodes %s", type(exc).__name__, lost)
                if restarts > max_restarts:
                    raise RlcfError(
                        f"{restarts} collector actors died (max_actor_restarts={max_restarts}); last error: {exc}"
                    ) from exc
                live[next_key] = new_actor()
                next_key += 1
    finally:
        for actor in live.values():
            ray.kill(actor)
