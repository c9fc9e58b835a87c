"""``rlcf collect``: behaviour policy × env → a multi-agent Minari dataset, with reference scores.

Reference scores are the mean team returns of the ``random`` policy and of the env's expert over
``ref_episodes`` (≥ 100) episodes, rolled out with a fixed reference seed so every tier of an env shares them.
They are cached per env under ``<datasets root>/.rlcf-references/`` (keyed by everything they depend on).
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rlcf.atomic import atomic_write_text
from rlcf.data.catalog import datasets_root
from rlcf.data.episodes import BehaviourPlan
from rlcf.data.marl import dataset_id_for, dataset_path, dataset_stats, write_marl_dataset
from rlcf.data.tiers import CollectionPlan, tier_plan
from rlcf.errors import UsageError

log = logging.getLogger(__name__)

__all__ = ["CollectResult", "collect_dataset", "reference_returns"]

REFERENCE_SEED = 2_147_483_647  # fixed, distinct from any collection seed a user would pick


@dataclass(frozen=True)
class CollectResult:
    """What ``collect_dataset`` wrote."""

    dataset_id: str
    path: Path
    stats: dict[str, Any]
    seconds: float


def _reference_key(spec: Any, expert: BehaviourPlan, episodes: int) -> str:
    blob = json.dumps({"env": spec.to_metadata(), "expert": expert.describe(), "episodes": episodes}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def reference_returns(
    spec: Any, *, expert: BehaviourPlan | None = None, episodes: int = 100, actors: int = 1, cache: bool = True
) -> tuple[float, float]:
    """``(random mean team return, expert mean team return)`` over ``episodes`` episodes each."""
    from rlcf.runtime.collectors import collect_episodes

    if expert is None:
        if spec.expert_policy is None:
            raise UsageError(
                f"env '{spec.id}' has no scripted expert for the reference max score; pass --policy trained "
                "--policy-kwarg checkpoint=... (it is used as the expert), or --no-references"
            )
        expert = BehaviourPlan("expert")
    key = _reference_key(spec, expert, episodes)
    path = datasets_root() / ".rlcf-references" / f"{spec.id}-{key}.json"
    if cache and path.is_file():
        cached = json.loads(path.read_text())
        return float(cached["random"]), float(cached["expert"])
    means = []
    for behaviour in (BehaviourPlan("random"), expert):
        plan = CollectionPlan(spec.id, episodes, REFERENCE_SEED, ((behaviour, 1.0),), "reference")
        eps = collect_episodes(plan, spec=spec, actors=actors, progress=False)
        means.append(float(np.mean([e.team_return for e in eps])))
    if cache:
        atomic_write_text(
            path, json.dumps({"random": means[0], "expert": means[1], "episodes": episodes, "expert_plan": expert.describe()})
        )
    return means[0], means[1]


def collect_dataset(
    env_id: str,
    *,
    tier: str | None = None,
    policy: str | None = None,
    policy_kwargs: dict[str, Any] | None = None,
    epsilon: float = 0.0,
    episodes: int = 100,
    actors: int = 1,
    seed: int = 0,
    dataset_id: str | None = None,
    version: int = 0,
    references: bool = True,
    ref_episodes: int = 100,
    overwrite: bool = False,
    progress: bool = True,
) -> CollectResult:
    """Collect and write one dataset.

    Args:
        env_id: a name in :data:`rlcf.registry.envs`.
        tier: ``random | medium | medium-replay | expert | mixed`` (see :mod:`rlcf.data.tiers`), or ``None``
            with ``policy`` for a custom behaviour.
        policy / policy_kwargs / epsilon: the behaviour for a custom dataset, or the expert used by a tier
            (e.g. ``policy="trained", policy_kwargs={"checkpoint": ...}`` for envs without a scripted expert).
        episodes / actors / seed: how much, on how many Ray actors (0: in this process), from which seed.
        dataset_id: defaults to ``rlcf/<env>/<tier or policy>-v<version>``.
        references: compute ``ref_min_score``/``ref_max_score`` (random and expert, ``ref_episodes`` each).

    Returns:
        The id, folder, statistics (return mean ± std, min/max, normalized score) and wall time.
    """
    import time

    from rlcf.registry import envs
    from rlcf.runtime.collectors import collect_episodes

    spec = envs.get(env_id)
    ok, why = spec.available()
    if not ok:
        raise UsageError(why)
    if ref_episodes < 100 and references:
        log.warning("reference scores over %d episodes (< 100): fine for tests, not for reported numbers", ref_episodes)
    custom = BehaviourPlan(policy, dict(policy_kwargs or {}), epsilon) if policy else None
    if tier is not None:
        plan = tier_plan(spec, tier, episodes, seed, expert=custom)
        name = tier
    elif custom is not None:
        plan = CollectionPlan(spec.id, episodes, seed, ((custom, 1.0),), "custom")
        name = policy.rsplit(":", 1)[-1].replace("_", "-")  # type: ignore[union-attr]
    else:
        raise UsageError("give a --tier, or a --policy for a custom dataset")
    if policy == "trained" and not (policy_kwargs or {}).get("checkpoint"):
        raise UsageError("--policy trained needs --policy-kwarg checkpoint=<checkpoint folder>")
    dataset_id = dataset_id or dataset_id_for(spec.id, name, version)
    existing = dataset_path(dataset_id)
    if existing.exists() and not overwrite:  # refuse now, not after collecting every episode
        raise UsageError(
            f"dataset '{dataset_id}' already exists at {existing}; nothing was collected. Give a new id "
            f"(--version {version + 1}, or --dataset-id), or pass --overwrite to replace it"
        )

    start = time.perf_counter()
    ref_min = ref_max = None
    if references:
        ref_min, ref_max = reference_returns(
            spec, expert=custom if tier is not None else None, episodes=ref_episodes, actors=actors
        )
    episodes_data = collect_episodes(plan, spec=spec, actors=actors, progress=progress)
    meta_for_stats = {"ref_min_score": ref_min, "ref_max_score": ref_max}
    stats = dataset_stats((e.team_return for e in episodes_data), meta_for_stats)
    stats["steps"] = int(sum(e.length for e in episodes_data))
    path = write_marl_dataset(
        dataset_id,
        episodes_data,
        spec=spec,
        behaviour={**plan.describe(), "actors": actors},
        ref_min_score=ref_min,
        ref_max_score=ref_max,
        ref_episodes=ref_episodes,
        overwrite=overwrite,
        extra_metadata={"collection_seed": seed, "reference_seed": REFERENCE_SEED if references else None},
    )
    return CollectResult(dataset_id, path, stats, time.perf_counter() - start)
