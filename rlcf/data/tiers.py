"""Collection plans and the D4RL/OMAR quality tiers.

A :class:`CollectionPlan` says, for every episode index of a collection, which :class:`BehaviourPlan` acts.
The tiers of the offline-MARL literature are plans built from the env spec:

============== ===================================================================================================
``random``     uniformly random actions.
``expert``     the spec's expert policy (scripted where a good one is simple; otherwise ``trained``).
``medium``     the expert with each agent's action replaced by a random one with probability
               ``spec.medium_epsilon`` — calibrated per env so the tier scores about half the expert's
               normalized return (D4RL's noisy-expert construction).
``medium-replay`` what a learner sees while improving from random to medium: epsilon anneals linearly from 1
               to ``spec.medium_epsilon`` over the episodes. (OMAR/CFCQL use a real replay buffer of a training
               run; with a scripted expert this annealed curriculum is the closest reproducible analogue.)
``mixed``      half medium, half expert episodes (as CFCQL's SMAC "mixed").
============== ===================================================================================================

An env spec may name its own tier recipes (``EnvSpec.tiers``): the force-action MPE tasks collect every tier from
snapshots of an MLP fitted to the scripted expert, as OMAR collects them from snapshots of RL training
(:mod:`rlcf.envs.behaviour.fitted`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from rlcf.data.episodes import BehaviourPlan, episode_seed
from rlcf.errors import UsageError

__all__ = ["TIERS", "CollectionPlan", "build_policy", "resolve_behaviour", "tier_plan"]

TIERS = ("random", "medium", "medium-replay", "expert", "mixed")


@dataclass(frozen=True)
class CollectionPlan:
    """Episodes ``0 .. episodes-1`` split into consecutive components.

    Attributes:
        env_id: the env spec's id.
        episodes: number of episodes.
        seed: collection seed; episode ``i`` uses :func:`~rlcf.data.episodes.episode_seed` ``(seed, i)``.
        components: ``(behaviour, fraction)`` pairs; fractions sum to 1.
        tier: the tier name, or ``"custom"``.
    """

    env_id: str
    episodes: int
    seed: int
    components: tuple[tuple[BehaviourPlan, float], ...]
    tier: str = "custom"

    def __post_init__(self) -> None:
        if self.episodes < 1:
            raise UsageError(f"a collection needs at least 1 episode, got {self.episodes}")
        total = sum(f for _, f in self.components)
        if not self.components or abs(total - 1.0) > 1e-9:
            raise UsageError(f"collection plan fractions must sum to 1, got {total}")

    def _bounds(self) -> list[int]:
        bounds, acc = [0], 0.0
        for _, fraction in self.components:
            acc += fraction
            bounds.append(round(acc * self.episodes))
        bounds[-1] = self.episodes
        return bounds

    def behaviour(self, index: int) -> tuple[int, BehaviourPlan, float]:
        """``(component number, behaviour, epsilon)`` of episode ``index``."""
        bounds = self._bounds()
        for k, (plan, _) in enumerate(self.components):
            lo, hi = bounds[k], bounds[k + 1]
            if lo <= index < hi:
                position = 0.0 if hi - lo <= 1 else (index - lo) / (hi - lo - 1)
                return k, plan, plan.epsilon_at(position)
        raise IndexError(f"episode {index} is outside 0..{self.episodes - 1}")

    def seed_of(self, index: int) -> int:
        return episode_seed(self.seed, index)

    def describe(self) -> dict[str, Any]:
        return {
            "tier": self.tier,
            "episodes": self.episodes,
            "seed": self.seed,
            "components": [{"fraction": f, **p.describe()} for p, f in self.components],
        }


def tier_plan(spec: Any, tier: str, episodes: int, seed: int, expert: BehaviourPlan | None = None) -> CollectionPlan:
    """The collection plan of ``tier`` for ``spec``.

    Args:
        spec: the env spec.
        tier: one of :data:`TIERS`.
        episodes: number of episodes.
        seed: collection seed.
        expert: the expert behaviour; defaults to the spec's expert policy.

    Raises:
        UsageError: unknown tier, no expert known for the env, or no calibrated medium epsilon.
    """
    if tier not in TIERS:
        raise UsageError(f"unknown tier '{tier}'; valid tiers: {', '.join(TIERS)}")
    if expert is None and getattr(spec, "tiers", None):
        from rlcf.registry import resolve_path

        recipe = resolve_path(spec.tiers)(spec, tier)
        if recipe is not None:
            components = tuple((BehaviourPlan(policy, dict(kwargs)), float(fraction)) for policy, kwargs, fraction in recipe)
            return CollectionPlan(spec.id, episodes, seed, components, tier)
    if tier == "random":
        return CollectionPlan(spec.id, episodes, seed, ((BehaviourPlan("random"), 1.0),), tier)
    if expert is None:
        if spec.expert_policy is None:
            raise UsageError(
                f"env '{spec.id}' has no scripted expert; train one with `rlcf train-behaviour {spec.id}` and "
                "collect with --policy trained --policy-kwarg checkpoint=<its checkpoint>"
            )
        expert = BehaviourPlan("expert")
    if tier == "expert":
        return CollectionPlan(spec.id, episodes, seed, ((expert, 1.0),), tier)
    if spec.medium_epsilon is None:
        raise UsageError(
            f"env '{spec.id}' has no calibrated medium_epsilon; run bench/bench_mpe_policies.py to measure one"
        )
    medium = replace(expert, epsilon=spec.medium_epsilon)
    if tier == "medium":
        return CollectionPlan(spec.id, episodes, seed, ((medium, 1.0),), tier)
    if tier == "medium-replay":
        replay = replace(expert, epsilon=1.0, epsilon_end=spec.medium_epsilon)
        return CollectionPlan(spec.id, episodes, seed, ((replay, 1.0),), tier)
    return CollectionPlan(spec.id, episodes, seed, ((medium, 0.5), (expert, 0.5)), tier)


def resolve_behaviour(plan: BehaviourPlan, spec: Any) -> BehaviourPlan:
    """Replace the policy name by an import path (or the factory itself) that any Ray worker can load.

    Policies registered by decorator in a user's script exist only in the driver's registry; a worker
    resolves the path instead, or receives the factory pickled by value when it has no import path.
    """
    from rlcf.registry import policies

    name = spec.expert_policy if plan.policy == "expert" else plan.policy
    if name is None:
        raise UsageError(f"env '{spec.id}' has no expert policy")
    if ":" in name:
        return replace(plan, policy=name)
    entry = policies.entry(name)
    if entry is None:
        policies.get(name)  # raises the "unknown behaviour policy ... valid: ..." error
    assert entry is not None
    if entry.path:
        return replace(plan, policy=entry.path)
    return replace(plan, policy=name, factory=policies.get(name))


def build_policy(plan: BehaviourPlan, spec: Any, agents: Sequence[str], env: Any, epsilon: float) -> Any:
    """Instantiate the behaviour of ``plan`` for ``agents`` (wrapped in epsilon-random actions if > 0)."""
    from rlcf.envs import BehaviourPolicy, EpsilonMix
    from rlcf.registry import policies

    factory = plan.factory if plan.factory is not None else policies.get(plan.policy)
    policy = factory(spec, tuple(agents), seed=0, env=env, **dict(plan.policy_kwargs))
    if not isinstance(policy, BehaviourPolicy):
        raise UsageError(f"policy '{plan.policy}' returned {type(policy).__name__}, not a BehaviourPolicy")
    return EpsilonMix(policy, epsilon) if epsilon > 0 else policy
