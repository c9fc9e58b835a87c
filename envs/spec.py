"""Environment specs: what an offline-MARL task is, beyond the PettingZoo env that simulates it.

An :class:`EnvSpec` names the upstream env and its arguments, which agents the learner controls (in
predator-prey tasks the prey is driven by a fixed, documented policy and is part of the environment), how
the per-agent rewards become the team reward, the episode length and the reference returns. Calling a spec
(or :meth:`EnvSpec.make`) gives a :class:`TeamParallelEnv`: a PettingZoo ``ParallelEnv`` over the controlled
agents only, which is what datasets record and algorithms train on.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from pettingzoo import ParallelEnv

from rlcf.errors import UsageError

__all__ = ["EnvSpec", "TeamParallelEnv", "force_to_mpe"]


def force_to_mpe(force: Any, size: int = 5) -> np.ndarray:
    """A 2-D force in [-1, 1]² as mpe2's continuous movement action ``(no-op, -x, +x, -y, +y)`` in [0, 1].

    mpe2 moves an agent by ``u = (a[2] − a[1], a[4] − a[3])``; the map puts each force component on one side, so
    ``u`` equals the (clipped) force exactly and every force has exactly one 5-D encoding. Components past the
    movement (a speaking agent's message) stay 0.
    """
    fx, fy = np.clip(np.asarray(force, dtype=np.float64).reshape(-1)[:2], -1.0, 1.0)
    out = np.zeros(size, dtype=np.float32)
    out[1:5] = (max(-fx, 0.0), max(fx, 0.0), max(-fy, 0.0), max(fy, 0.0))
    return out


@dataclass(frozen=True)
class EnvSpec:
    """A registered multi-agent task.

    Attributes:
        id: registry name, e.g. ``"mpe-simple_spread"`` (continuous actions) or ``"mpe-simple_spread-discrete"``.
        entry: ``"package.module:factory"`` of the upstream PettingZoo parallel env.
        version: the upstream env's version (``simple_spread_v3`` → 3); datasets record it.
        kwargs: arguments for the factory.
        episode_length: steps per episode (truncation).
        action_type: ``"continuous"`` or ``"discrete"``.
        controlled: the agent ids the learner controls, in order; ``()`` means every agent.
        opponent_policy: registered behaviour policy that drives the other agents (required when ``controlled``
            leaves some agents out).
        team_reward: how per-agent rewards of the controlled agents become the team reward: ``"mean"``, ``"sum"``
            or ``"first"`` (the first controlled agent's reward, for tasks where rewards are shared).
        expert_policy: registered behaviour policy used as the expert tier and reference (``None``: none known).
        medium_epsilon: chance per agent and step that the medium tier replaces the expert's action with a
            random one; chosen so that the medium tier scores roughly half the expert's normalized return.
        ref_random_return: mean team return of the ``random`` policy (≥ 100 episodes), measured by
            ``bench/bench_mpe_policies.py``; ``None`` until measured.
        ref_expert_return: the same for ``expert_policy``.
        requires: modules that must be importable (optional extras); a clear error names the extra otherwise.
        extra: the name of the pip extra that provides ``requires``.
        description: one line for ``rlcf list envs``.
        action_map: ``"native"`` (the upstream env's own actions) or ``"force2d"`` (continuous MPE only: each
            movable agent acts with a 2-D force in [-1, 1]², the reference CFCQL/OMAR action, mapped onto mpe2's
            5-D [0, 1] action ``(no-op, -x, +x, -y, +y)``; see :func:`force_to_mpe`).
        tiers: ``"package.module:function"`` of ``fn(spec, tier) -> ((policy, policy_kwargs, fraction), ...) | None``,
            the behaviour mixture each tier is collected from (OMAR-style tiers from fitted policies); ``None``
            (or a tier it returns ``None`` for) uses the expert and ``medium_epsilon`` (:func:`rlcf.data.tiers.tier_plan`).
    """

    id: str
    entry: str
    version: int
    episode_length: int
    action_type: Literal["continuous", "discrete"]
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    controlled: tuple[str, ...] = ()
    opponent_policy: str | None = None
    team_reward: Literal["mean", "sum", "first"] = "mean"
    expert_policy: str | None = None
    medium_epsilon: float | None = None
    ref_random_return: float | None = None
    ref_expert_return: float | None = None
    requires: tuple[str, ...] = ()
    extra: str = ""
    description: str = ""
    action_map: Literal["native", "force2d"] = "native"
    tiers: str | None = None

    def __post_init__(self) -> None:
        if self.team_reward not in ("mean", "sum", "first"):
            raise UsageError(f"EnvSpec {self.id}: team_reward must be mean, sum or first, got {self.team_reward!r}")
        if self.action_type not in ("continuous", "discrete"):
            raise UsageError(f"EnvSpec {self.id}: action_type must be continuous or discrete")
        if self.action_map not in ("native", "force2d"):
            raise UsageError(f"EnvSpec {self.id}: action_map must be native or force2d, got {self.action_map!r}")
        if self.action_map == "force2d" and self.action_type != "continuous":
            raise UsageError(f"EnvSpec {self.id}: action_map force2d needs action_type continuous")

    @property
    def __doc__(self) -> str:  # type: ignore[override]  # shown by `rlcf list envs`
        return self.description

    def available(self) -> tuple[bool, str]:
        """``(True, "")`` when the modules this env needs import, else ``(False, why and how to fix)``."""
        for module in self.requires:
            try:
                importlib.import_module(module)
            except ImportError as exc:
                hint = f"pip install 'rlcf[{self.extra}]'" if self.extra else f"install {module}"
                return False, f"env '{self.id}' needs {module} ({exc}); {hint}"
        return True, ""

    def make_upstream(self, **overrides: Any) -> Any:
        """The upstream PettingZoo parallel env with every agent (no team wrapper)."""
        ok, why = self.available()
        if not ok:
            raise UsageError(why)
        from rlcf.registry import resolve_path

        factory = resolve_path(self.entry)
        return factory(**{**dict(self.kwargs), **overrides})

    def make(self, **overrides: Any) -> TeamParallelEnv:
        """A :class:`TeamParallelEnv` over the controlled agents."""
        return TeamParallelEnv(self, self.make_upstream(**overrides))

    __call__ = make

    def agents(self) -> tuple[str, ...]:
        """The controlled agents, in order."""
        if self.controlled:
            return self.controlled
        env = self.make_upstream()
        try:
            return tuple(env.possible_agents)
        finally:
            env.close()

    def normalized_score(self, team_return: float) -> float:
        """``100 · (R − R_random) / (R_expert − R_random)`` from the spec's reference returns."""
        if self.ref_random_return is None or self.ref_expert_return is None:
            raise UsageError(f"env '{self.id}' has no reference returns yet; run bench/bench_mpe_policies.py")
        return 100.0 * (team_return - self.ref_random_return) / (self.ref_expert_return - self.ref_random_return)

    def to_metadata(self) -> dict[str, Any]:
        """JSON-safe description stored in dataset metadata (env id, version and arguments)."""
        return {
            "id": self.id,
            "entry": self.entry,
            "version": self.version,
            "kwargs": dict(self.kwargs),
            "episode_length": self.episode_length,
            "action_type": self.action_type,
            "controlled": list(self.controlled),
            "opponent_policy": self.opponent_policy,
            "team_reward": self.team_reward,
            "action_map": self.action_map,
        }


def _reduce(spec: EnvSpec, rewards: Mapping[str, float], agents: tuple[str, ...]) -> float:
    values = [float(rewards[a]) for a in agents if a in rewards]
    if not values:
        return 0.0
    if spec.team_reward == "sum":
        return float(np.sum(values))
    if spec.team_reward == "first":
        return values[0]
    return float(np.mean(values))


class TeamParallelEnv(ParallelEnv):
    """A PettingZoo ``ParallelEnv`` over the controlled agents of an upstream env.

    The other agents act through the spec's opponent policy, seeded from ``reset(seed=...)``, so an episode
    is a deterministic function of the seed and the controlled agents' actions. ``infos[agent]`` carries
    ``"team_reward"``; :meth:`state` is the upstream global state.
    """

    metadata = {"name": "rlcf_team_env", "is_parallelizable": True}

    def __init__(self, spec: EnvSpec, env: Any):
        self.spec = spec
        self.env = env
        all_agents = tuple(env.possible_agents)
        self.possible_agents = list(spec.controlled) if spec.controlled else list(all_agents)
        unknown = [a for a in self.possible_agents if a not in all_agents]
        if unknown:
            raise UsageError(f"env '{spec.id}': controlled agents {unknown} are not in {list(all_agents)}")
        self.others = tuple(a for a in all_agents if a not in self.possible_agents)
        self.agents: list[str] = []
        self._opponent = None
        if self.others:
            if spec.opponent_policy is None:
                raise UsageError(f"env '{spec.id}' leaves {list(self.others)} uncontrolled but names no opponent_policy")
            from rlcf.registry import policies

            self._opponent = policies.get(spec.opponent_policy)(spec, self.others, seed=0, env=env)
        self._last_obs: dict[str, Any] = {}
        self.observation_spaces = {a: env.observation_space(a) for a in self.possible_agents}
        self.upstream_action_spaces = {a: env.action_space(a) for a in self.possible_agents}
        self.action_spaces = dict(self.upstream_action_spaces)
        if spec.action_map == "force2d":
            import gymnasium as gym

            for agent, space in self.upstream_action_spaces.items():
                if not isinstance(space, gym.spaces.Box) or space.shape != (5,):
                    raise UsageError(
                        f"env '{spec.id}': action_map force2d needs 5-D movement actions, agent {agent} has {space}"
                    )
                self.action_spaces[agent] = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.render_mode = getattr(env, "render_mode", None)

    def __repr__(self) -> str:
        return f"TeamParallelEnv({self.spec.id}, agents={self.possible_agents}, others={list(self.others)})"

    def observation_space(self, agent: str) -> Any:
        return self.observation_spaces[agent]

    def action_space(self, agent: str) -> Any:
        return self.action_spaces[agent]

    @property
    def state_space(self) -> Any:
        return getattr(self.env, "state_space", None)

    @property
    def num_agents(self) -> int:
        return len(self.agents)

    @property
    def max_num_agents(self) -> int:
        return len(self.possible_agents)

    @property
    def unwrapped(self) -> Any:
        return self.env.unwrapped

    def reset(self, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        obs, infos = self.env.reset(seed=seed, options=options)
        if self._opponent is not None:
            self._opponent.reset(seed=None if seed is None else seed + 7919)
        self._last_obs = obs
        self.agents = [a for a in self.possible_agents if a in obs]
        return {a: obs[a] for a in self.agents}, {a: dict(infos.get(a, {})) for a in self.agents}

    def step(self, actions: Mapping[str, Any]) -> tuple[dict, dict, dict, dict, dict]:
        missing = [a for a in self.agents if a not in actions]
        if missing:
            raise UsageError(f"env '{self.spec.id}': no action for agents {missing}")
        joint = {a: actions[a] for a in self.agents}
        if self.spec.action_map == "force2d":
            joint = {a: force_to_mpe(act) for a, act in joint.items()}
        if self._opponent is not None:
            live = {a: self._last_obs[a] for a in self.others if a in self._last_obs}
            if live:
                joint.update(self._opponent.act(live))
        obs, rewards, terms, truncs, infos = self.env.step(joint)
        self._last_obs = obs
        controlled = tuple(a for a in self.agents)
        team = _reduce(self.spec, rewards, controlled)
        out_infos = {a: {**dict(infos.get(a, {})), "team_reward": team} for a in controlled}
        result = (
            {a: obs[a] for a in controlled if a in obs},
            {a: float(rewards.get(a, 0.0)) for a in controlled},
            {a: bool(terms.get(a, False)) for a in controlled},
            {a: bool(truncs.get(a, False)) for a in controlled},
            out_infos,
        )
        self.agents = [a for a in controlled if a in obs and not (result[2][a] or result[3][a])]
        return result

    def team_reward(self, rewards: Mapping[str, float]) -> float:
        """The team reward of per-agent ``rewards`` under the spec's definition."""
        return _reduce(self.spec, rewards, tuple(self.possible_agents))

    def state(self) -> np.ndarray:
        return self.env.state()

    def render(self) -> Any:
        return self.env.render()

    def close(self) -> None:
        self.env.close()

