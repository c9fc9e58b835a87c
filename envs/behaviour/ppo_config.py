"""The RLlib multi-agent PPO set-up of a behaviour policy: hyperparameter defaults, which agents share which
RLModule, the env creator, the team-return callbacks, and the ``PPOConfig`` built from them.

Everything RLlib's remote env runners import by name lives here at module level (the agent-to-module mapping,
the env creator, the callbacks). Ray and RLlib are imported inside the functions: importing this module stays cheap.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from rlcf.errors import UsageError

__all__ = ["DEFAULTS", "TEAM_RETURN_DEFINITION", "module_groups", "ppo_config"]

#: PPO defaults for 25-step MPE episodes (see :func:`rlcf.envs.behaviour.ppo_train.train_behaviour`).
DEFAULTS: dict[str, Any] = {
    "iterations": 100,
    "checkpoint_every": 10,
    "train_batch_size": 1000,  # env steps per iteration = 40 episodes of 25 steps
    "minibatch_size": 256,  # agent steps per SGD minibatch (per module)
    "num_epochs": 15,
    "lr": 1e-3,
    "gamma": 0.95,
    "lambda_": 0.95,
    "clip_param": 0.2,
    "entropy_coeff_discrete": 0.01,
    "entropy_coeff_continuous": 0.0,
    "vf_loss_coeff": 0.5,
    "vf_clip_param": 1000.0,
    "fcnet_hiddens": [64, 64],
    "fcnet_activation": "tanh",
}

# What the curve's team_return means; stored in behaviour.json so nobody has to guess.
TEAM_RETURN_DEFINITION = (
    "mean over the episodes that ended during the iteration of the episode team return: the sum over the "
    "episode's steps of infos[agent]['team_reward'] (the spec's team reward of the controlled agents). "
    "RLlib's own episode_return_mean (also stored, as rllib_episode_return_mean) sums every agent's reward "
    "and is smoothed over the last 100 episodes."
)


# --------------------------------------------------------------------------------------------------------
# modules: which agents share which RLModule
# --------------------------------------------------------------------------------------------------------


def _group_name(agents: Sequence[str]) -> str:
    """A readable module id for a group of agents: their common name without the index (``adversary``)."""
    stems = {re.sub(r"_?\d+$", "", a) for a in agents}
    return stems.pop() if len(stems) == 1 else "group"


def module_groups(env: Any, shared_policy: bool | None = None) -> dict[str, list[str]]:
    """Which controlled agents share which RLModule.

    Args:
        env: a PettingZoo ParallelEnv (the spec's team env); its ``possible_agents`` and spaces are read.
        shared_policy: ``None`` (default) shares one module among agents with identical observation and
            action spaces (one module in total when all spaces match); ``True`` demands a single module and
            fails when the spaces differ; ``False`` gives every agent its own module.

    Returns:
        ``{module_id: [agent, ...]}`` in the env's agent order; a single shared module is called ``"shared"``.

    Raises:
        UsageError: ``shared_policy=True`` but the agents' spaces differ.
    """
    agents = list(env.possible_agents)
    if shared_policy is False:
        return {a: [a] for a in agents}
    groups: list[tuple[Any, Any, list[str]]] = []
    for agent in agents:
        obs_space, act_space = env.observation_space(agent), env.action_space(agent)
        for g_obs, g_act, members in groups:
            if g_obs == obs_space and g_act == act_space:
                members.append(agent)
                break
        else:
            groups.append((obs_space, act_space, [agent]))
    if len(groups) == 1:
        return {"shared": groups[0][2]}
    if shared_policy is True:
        detail = "; ".join(f"{m}: obs {o}, actions {a}" for o, a, m in groups)
        raise UsageError(
            f"shared_policy=True needs identical spaces for all agents, but they differ ({detail}); "
            "use shared_policy=None (one module per distinct space) or False (one per agent)"
        )
    result: dict[str, list[str]] = {}
    for _, _, members in groups:
        name = _group_name(members)
        if name in result:
            name = f"{name}_{len(result)}"
        result[name] = members
    return result


class _MapAgentToModule:
    """RLlib ``policy_mapping_fn``: a picklable lookup (remote env runners receive it by value)."""

    def __init__(self, mapping: Mapping[str, str]):
        self.mapping = dict(mapping)

    def __call__(self, agent_id: str, *args: Any, **kwargs: Any) -> str:
        return self.mapping[agent_id]


class _EnvCreator:
    """``register_env`` creator: rebuilds the spec's team env (also inside remote env runners)."""

    def __init__(self, env_id: str):
        self.env_id = env_id

    def __call__(self, env_config: Any = None) -> Any:
        from ray.rllib.env.wrappers.pettingzoo_env import ParallelPettingZooEnv

        from rlcf.registry import envs

        class _OrderedParallelPettingZooEnv(ParallelPettingZooEnv):
            # ParallelPettingZooEnv builds `agents`/`possible_agents` from a set, so their order changes
            # with the string hash seed; keep the env's own order for reproducible runs.
            def __init__(self, env: Any):
                super().__init__(env)
                self.possible_agents = list(env.possible_agents)
                self.agents = list(self.possible_agents)

        return _OrderedParallelPettingZooEnv(envs.get(self.env_id).make())



# --------------------------------------------------------------------------------------------------------
# team-return metrics (RLlib callbacks; module-level functions so remote env runners import them by name)
# --------------------------------------------------------------------------------------------------------


def _on_episode_step(*, episode: Any, **kwargs: Any) -> None:
    # Every controlled agent's info carries the same team reward; custom_data survives episode chunking.
    infos = episode.get_infos(-1)
    for info in infos.values():
        if isinstance(info, Mapping) and "team_reward" in info:
            episode.custom_data["rlcf_team_return"] = episode.custom_data.get("rlcf_team_return", 0.0) + float(
                info["team_reward"]
            )
            break


def _on_episode_end(*, episode: Any, metrics_logger: Any = None, **kwargs: Any) -> None:
    if metrics_logger is None:
        return
    # Lifetime sums are exact across env runners and iterations; the trainer differences them per iteration
    # instead of trusting a smoothing window.
    team_return = episode.custom_data.get("rlcf_team_return", 0.0)
    metrics_logger.log_value("rlcf_team_return_total", team_return, reduce="lifetime_sum")
    metrics_logger.log_value("rlcf_team_episodes_total", 1, reduce="lifetime_sum")



# --------------------------------------------------------------------------------------------------------
# the PPO config
# --------------------------------------------------------------------------------------------------------


def ppo_config(env_id: str, groups: Mapping[str, Sequence[str]], hyper: Mapping[str, Any], seed: int) -> Any:
    """The RLlib ``PPOConfig`` of a :func:`~rlcf.envs.behaviour.ppo_train.train_behaviour` run.

    Registers the env ``rlcf-<env_id>`` with Ray Tune's env registry (its creator rebuilds the spec's team env in
    every env runner) and maps each agent to its module.

    Args:
        env_id: registered env id.
        groups: ``{module_id: [agent, ...]}`` (:func:`module_groups`).
        hyper: the run's hyperparameters (the ``hyperparameters`` block of ``behaviour.json``).
        seed: RLlib's seed (modules, sampling, env resets).

    Returns:
        The PPO config, ready for ``build_algo()``.
    """
    from ray.rllib.algorithms.ppo import PPOConfig
    from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig
    from ray.rllib.core.rl_module.multi_rl_module import MultiRLModuleSpec
    from ray.rllib.core.rl_module.rl_module import RLModuleSpec
    from ray.tune.registry import register_env

    agent_to_module = {a: m for m, members in groups.items() for a in members}
    num_env_runners = int(hyper["num_env_runners"])
    rllib_env = f"rlcf-{env_id}"
    register_env(rllib_env, _EnvCreator(env_id))
    model = DefaultModelConfig(
        fcnet_hiddens=hyper["fcnet_hiddens"], fcnet_activation=hyper["fcnet_activation"], vf_share_layers=False
    )
    return (
        PPOConfig()
        .environment(rllib_env)
        # episodes_to_numpy=False: in Ray 2.60 the multi-agent env runner converts *every* finished episode
        # of the sample call to numpy again after each env step (quadratic in the batch size); measured 40%
        # of the sampling time at 2,400 steps. The learner connectors accept list-based episodes.
        .env_runners(num_env_runners=num_env_runners, num_envs_per_env_runner=1, episodes_to_numpy=False)
        .multi_agent(policies=set(groups), policy_mapping_fn=_MapAgentToModule(agent_to_module))
        .rl_module(rl_module_spec=MultiRLModuleSpec(rl_module_specs={m: RLModuleSpec(model_config=model) for m in groups}))
        .training(
            train_batch_size_per_learner=hyper["train_batch_size"],
            minibatch_size=hyper["minibatch_size"],
            num_epochs=hyper["num_epochs"],
            lr=hyper["lr"],
            gamma=hyper["gamma"],
            lambda_=hyper["lambda_"],
            clip_param=hyper["clip_param"],
            use_kl_loss=False,
            entropy_coeff=hyper["entropy_coeff"],
            vf_loss_coeff=hyper["vf_loss_coeff"],
            vf_clip_param=hyper["vf_clip_param"],
        )
        .callbacks(on_episode_step=_on_episode_step, on_episode_end=_on_episode_end)
        .debugging(seed=int(seed))
    )
