"""A fault-tolerant pool of Ray actors that works through numbered shards.

Every shard is a pure function of its payload (seeds travel in the payload), so any actor may run any shard:
results do not depend on the number of actors, and when an actor dies only its unfinished shards are re-run, on
a replacement actor, with identical results. Each shard's result is recorded once, by shard index: the output
has every row exactly once.
"""

from __future__ import annotations

import logging
import os
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from rlcf.errors import RlcfError
from rlcf.plugins import ENV_VAR as PLUGINS_ENV_VAR

log = logging.getLogger(__name__)

__all__ = ["ShardPool"]


class ShardPool:
    """Run ``method`` of ``actors`` Ray actors over ``shards``, replacing actors that die.

    Args:
        actor_class: the plain class; it is made a Ray actor with ``actor_options`` (default ``num_cpus=1``).
        init_args: arguments of every actor's constructor (put them in the object store once).
        method: the actor method that takes one shard payload and returns its result.
        actors: number of actors.
        in_flight: shards queued per actor (hides the driver's round trip).
        max_actor_restarts: how many dead actors may be replaced before the run fails.
        what: a short name for log and error messages ("rollout", "evaluation", …).
    """

    def __init__(
        self,
        actor_class: type,
        init_args: Sequence[Any],
        method: str,
        *,
        actors: int,
        in_flight: int = 2,
        max_actor_restarts: int = 3,
        actor_options: dict[str, Any] | None = None,
        what: str = "worker",
    ):
        import ray

        from rlcf.runtime.cluster import ensure_ray

        if actors < 1:
            raise ValueError(f"actors must be >= 1, got {actors}")
        ensure_ray()
        options = {"num_cpus": 1, **(actor_options or {})}
        plugins = os.environ.get(PLUGINS_ENV_VAR)
        if plugins:  # the actors import this process's plugins when a registry lookup misses (rlcf.plugins)
            runtime_env = dict(options.get("runtime_env") or {})
            runtime_env["env_vars"] = {PLUGINS_ENV_VAR: plugins, **(runtime_env.get("env_vars") or {})}
            options["runtime_env"] = runtime_env
        self._remote = ray.remote(max_restarts=0)(actor_class).options(**options)
        self._init_refs = [ray.put(a) for a in init_args]
        self.method = method
        self.in_flight = max(1, in_flight)
        self.max_actor_restarts = max_actor_restarts
        self.what = what
        self.live: dict[int, Any] = {}
        self._next_key = 0
        self.restarts = 0
        for _ in range(actors):
            self._spawn()

    def _spawn(self) -> None:
        self.live[self._next_key] = self._remote.remote(*self._init_refs)
        self._next_key += 1

    def run(
        self,
        shards: Sequence[Any],
        on_result: Callable[[int, Any], None],
        on_progress: Callable[[ShardPool, int], None] | None = None,
        args: Sequence[Any] = (),
    ) -> None:
        """Run every shard; ``on_result(index, result)`` is called once per shard, in completion order.

        ``on_progress(pool, shards_done)`` runs on the driver after each finished shard (progress bars; tests use
        it to kill an actor mid-run). ``args`` follow the shard in every call (the same for all shards of this run;
        an object ref nested in a list there reaches the actor as a ref, which it resolves only if it needs to).
        """
        import ray
        from ray.exceptions import ActorDiedError, ActorUnavailableError, RayActorError

        pending = deque(range(len(shards)))
        flying: dict[Any, tuple[int, int]] = {}  # object ref -> (actor key, shard index)
        done_count = 0
        while pending or flying:
            for key, actor in list(self.live.items()):
                while pending and sum(1 for k, _ in flying.values() if k == key) < self.in_flight:
                    index = pending.popleft()
                    flying[getattr(actor, self.method).remote(shards[index], *args)] = (key, index)
            ready, _ = ray.wait(list(flying), num_returns=1)
            ref = ready[0]
            key, index = flying.pop(ref)
            try:
                result = ray.get(ref)
            except (ActorDiedError, ActorUnavailableError, RayActorError) as exc:
                lost = [index]
                if key in self.live:
                    lost += [i for r, (k, i) in list(flying.items()) if k == key]
                    for r in [r for r, (k, _) in flying.items() if k == key]:
                        flying.pop(r)
                    del self.live[key]
                    self.restarts += 1
                    log.warning("%s actor died (%s); re-running shards %s on a new actor", self.what, type(exc).__name__, sorted(lost))
                    if self.restarts > self.max_actor_restarts:
                        raise RlcfError(
                            f"{self.restarts} {self.what} actors died (max_actor_restarts={self.max_actor_restarts}); "
                            f"last error: {exc}"
                        ) from exc
                    self._spawn()
                pending.extendleft(sorted(lost, reverse=True))
                continue
            on_result(index, result)
            done_count += 1
            if on_progress is not None:
                on_progress(self, done_count)

    def kill_one(self) -> None:
        """Kill one live actor (fault-injection for tests and drills)."""
        import ray

        key = next(iter(self.live))
        ray.kill(self.live[key], no_restart=True)

    def close(self) -> None:
        import ray

        for actor in self.live.values():
            ray.kill(actor)
        self.live.clear()

    def __enter__(self) -> ShardPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
