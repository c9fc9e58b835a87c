"""The controlled team of an rlcf env as one ``gymnasium.Env``: what ``recover_environment()`` builds.

Minari records gymnasium envs; an rlcf dataset records a PettingZoo team as a single Minari agent (Dict
observations and actions keyed by agent id, the team reward, an episode that ends when every agent terminated or
was truncated; see :mod:`rlcf.data.marl`). :class:`TeamGymEnv` steps the team env with exactly that view, and
every rlcf dataset stores a gymnasium ``EnvSpec`` whose entry point is this class, so Minari's own
``dataset.recover_environment()`` rebuilds the env the data came from::

    import minari
    env = minari.load_dataset("rlcf/mpe-simple_spread/expert-v0").recover_environment()
    obs, info = env.reset(seed=0)                      # {"agent_0": ..., "agent_1": ..., "agent_2": ...}
    obs, team_reward, terminated, truncated, info = env.step(env.action_space.sample())

Datasets written before the spec was stored: :func:`rlcf.data.marl.recover_environment` reads the env from their
``rlcf`` metadata block instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np

from rlcf.errors import UsageError

__all__ = ["ENTRY_POINT", "TeamGymEnv", "gym_env_spec"]

ENTRY_POINT = "rlcf.data.team_gym_env:TeamGymEnv"


class TeamGymEnv(gym.Env):
    """A registered rlcf env's controlled team as one gymnasium agent, stepped as its datasets record it.

    ``step(actions)`` takes one action per agent and returns the team reward; ``terminated`` when every agent
    terminated, ``truncated`` when every agent was truncated (or the env ended the episode without flags).
    ``info`` holds ``agent_rewards`` (per agent), ``state`` (the global state, where the env has one) and
    ``action_mask`` (per agent, where the env gives masks), as the datasets' ``infos`` do.

    Args:
        env_id: a name in :data:`rlcf.registry.envs`.
        env_kwargs: the env's arguments (default: the registered spec's).
        version: the upstream env version the data was recorded with; a different registered version is refused.
    """

    metadata = {"render_modes": []}

    def __init__(self, env_id: str, env_kwargs: Mapping[str, Any] | None = None, version: int | None = None):
        from rlcf.registry import envs

        spec = envs.get(env_id)
        if version is not None and int(spec.version) != int(version):
            raise UsageError(
                f"the data was recorded on env '{env_id}' version {version}, but the registered '{env_id}' is "
                f"version {spec.version}; install the rlcf (or plug-in) release that recorded it"
            )
        self.team = spec.make(**dict(env_kwargs or {}))
        self.agents = tuple(self.team.possible_agents)
        self.observation_space = gym.spaces.Dict({a: self.team.observation_space(a) for a in self.agents})
        self.action_space = gym.spaces.Dict({a: self.team.action_space(a) for a in self.agents})
        self._has_state = getattr(self.team, "state_space", None) is not None

    def __repr__(self) -> str:
        return f"TeamGymEnv({self.team.spec.id}, agents={list(self.agents)})"

    def _info(self, infos: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
        info: dict[str, Any] = {}
        if self._has_state:
            info["state"] = np.asarray(self.team.state(), dtype=np.float32)
        if any("action_mask" in infos.get(a, {}) for a in self.agents):
            info["action_mask"] = {a: infos[a]["action_mask"] for a in self.agents if "action_mask" in infos.get(a, {})}
        return info

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[dict, dict]:
        super().reset(seed=seed)
        obs, infos = self.team.reset(seed=seed, options=options)
        return {a: obs[a] for a in self.agents}, self._info(infos)

    def step(self, action: Mapping[str, Any]) -> tuple[dict, float, bool, bool, dict]:
        live = tuple(self.team.agents)
        if live != self.agents:
            raise UsageError(
                f"env '{self.team.spec.id}': step() on an ended episode, or agents left it early "
                f"({sorted(set(self.agents) - set(live))}); call reset()"
            )
        obs, rewards, terms, truncs, infos = self.team.step(action)
        terminated = all(terms[a] for a in self.agents)
        # An env that removes its agents without flags ended the episode: a truncation, as the datasets record it.
        truncated = not terminated and (all(truncs[a] for a in self.agents) or not self.team.agents)
        info = self._info(infos)
        info["agent_rewards"] = {a: float(rewards[a]) for a in self.agents}
        return {a: obs[a] for a in self.agents}, float(infos[self.agents[0]]["team_reward"]), terminated, truncated, info

    def render(self) -> Any:
        return self.team.render()

    def close(self) -> None:
        self.team.close()


def gym_env_spec(env: Mapping[str, Any]) -> Any:
    """The gymnasium ``EnvSpec`` that rebuilds ``env`` (an rlcf env spec's ``to_metadata()``) as a
    :class:`TeamGymEnv`; stored as a dataset's ``env_spec`` so Minari can recover it."""
    from gymnasium.envs.registration import EnvSpec

    return EnvSpec(
        id=f"rlcf/{env['id']}-v{int(env['version'])}",
        entry_point=ENTRY_POINT,
        kwargs={"env_id": env["id"], "env_kwargs": dict(env.get("kwargs", {})), "version": int(env["version"])},
    )
