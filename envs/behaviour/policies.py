"""Behaviour policies: what acts in an env when a dataset is collected (and as fixed opponents).

A behaviour policy is registered in :data:`rlcf.registry.policies` as a factory
``factory(spec, agents, seed=0, **kwargs) -> BehaviourPolicy``. It acts for a fixed set of agents from
their observations only, so the same policy runs inside a Ray actor, in an evaluation loop, or as the
opponent inside :class:`~rlcf.envs.spec.TeamParallelEnv`. Every random choice comes from the policy's own
generator, reseeded by :meth:`BehaviourPolicy.reset`, so a collection is a function of its seeds.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from rlcf.errors import UsageError
from rlcf.registry import policies

if TYPE_CHECKING:
    from rlcf.envs.spec import EnvSpec

__all__ = ["BehaviourPolicy", "EpsilonMix", "RandomPolicy"]


class BehaviourPolicy(abc.ABC):
    """Acts for ``agents`` of the env described by ``spec``.

    Args:
        spec: the env spec.
        agents: the agent ids this policy acts for.
        seed: seed of the policy's own generator.
        env: the upstream env (only for policies that must read its action spaces before a reset).
    """

    #: Provenance recorded in dataset metadata; subclasses add their own keys.
    name: str = "policy"

    def __init__(self, spec: EnvSpec, agents: Sequence[str], seed: int = 0, env: Any = None):
        self.spec = spec
        self.agents = tuple(agents)
        self.rng = np.random.default_rng(seed)
        self._env = env

    def reset(self, seed: int | None = None) -> None:
        """Start an episode; with ``seed``, reseed the policy's generator."""
        if seed is not None:
            self.rng = np.random.default_rng(seed)

    @abc.abstractmethod
    def act(self, observations: Mapping[str, np.ndarray]) -> dict[str, Any]:
        """Actions for the agents present in ``observations``."""

    def describe(self) -> dict[str, Any]:
        """JSON-safe provenance: name and parameters."""
        return {"name": self.name}

    # helpers for subclasses ------------------------------------------------------------------------------

    def action_space(self, agent: str) -> Any:
        if self._env is None:
            raise UsageError(f"policy {self.name} needs the env's action spaces; pass env=...")
        return self._env.action_space(agent)

    def random_action(self, agent: str) -> Any:
        """A uniformly random action for ``agent`` from the policy's own generator."""
        import gymnasium as gym

        space = self.action_space(agent)
        if isinstance(space, gym.spaces.Discrete):
            return int(space.start + self.rng.integers(space.n))
        if isinstance(space, gym.spaces.Box):
            return self.rng.uniform(space.low, space.high).astype(space.dtype)
        raise UsageError(f"random actions for {type(space).__name__} spaces are not supported")


@policies.register("random", help="uniformly random actions")
class RandomPolicy(BehaviourPolicy):
    """Uniformly random actions (the ``random`` tier and the reference minimum return)."""

    name = "random"

    def act(self, observations: Mapping[str, np.ndarray]) -> dict[str, Any]:
        return {a: self.random_action(a) for a in observations}


class EpsilonMix(BehaviourPolicy):
    """With probability ``epsilon`` per agent and step, a random action instead of ``base``'s.

    This is how the medium tier degrades an expert (D4RL-style noisy experts), and how medium-replay anneals
    from random to medium.
    """

    name = "epsilon_mix"

    def __init__(self, base: BehaviourPolicy, epsilon: float, seed: int = 0):
        if not 0.0 <= epsilon <= 1.0:
            raise UsageError(f"epsilon must be in [0, 1], got {epsilon}")
        super().__init__(base.spec, base.agents, seed, base._env)
        self.base = base
        self.epsilon = float(epsilon)

    def reset(self, seed: int | None = None) -> None:
        super().reset(seed)
        self.base.reset(None if seed is None else seed + 1)

    def act(self, observations: Mapping[str, np.ndarray]) -> dict[str, Any]:
        actions = self.base.act(observations)
        for agent in observations:
            if self.rng.random() < self.epsilon:
                actions[agent] = self.random_action(agent)
        return actions

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "epsilon": self.epsilon, "base": self.base.describe()}


def make_policy(name: str, spec: EnvSpec, agents: Sequence[str], seed: int, env: Any, **kwargs: Any) -> BehaviourPolicy:
    """Build the registered policy ``name`` (``"expert"`` means the spec's expert policy)."""
    if name == "expert":
        if spec.expert_policy is None:
            raise UsageError(f"env '{spec.id}' has no expert policy; pass --policy trained with a checkpoint")
        name = spec.expert_policy
    factory = policies.get(name)
    policy = factory(spec, agents, seed=seed, env=env, **kwargs)
    if not isinstance(policy, BehaviourPolicy):
        raise UsageError(f"policy '{name}' returned {type(policy).__name__}, not a BehaviourPolicy")
    return policy


# Multi-agent PPO trained with RLlib; Ray loads only when this policy is used.
policies.register(
    "trained",
    "rlcf.envs.behaviour.trained:TrainedPolicy",
    help="multi-agent PPO trained with RLlib (rlcf train-behaviour); needs checkpoint=PATH",
)
