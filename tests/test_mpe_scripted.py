"""Scripted MPE policies: the experts beat random play, the scripted opponents beat random opponents, every
action is valid, and a rollout is a function of its seeds."""

from __future__ import annotations

import dataclasses
import functools

import numpy as np
import pytest

pytest.importorskip("mpe2")

from rlcf.envs.behaviour.policies import BehaviourPolicy, make_policy  # noqa: E402
from rlcf.registry import envs, policies  # noqa: E402

ENV_IDS = [
    "mpe-simple_spread",
    "mpe-simple_spread-discrete",
    "mpe-simple_tag",
    "mpe-simple_tag-discrete",
    "mpe-simple_world_comm",
    "mpe-simple_world_comm-discrete",
]
EPISODES = 20
# Least gap between the expert's and random play's mean team return, about half of what 20 episodes show:
# spread -6 against -26, tag 34 against 0, world 30 against 0.
MIN_GAP = {"simple_spread": 10.0, "simple_tag": 15.0, "simple_world_comm": 15.0}
NAMES = ["mpe-spread-expert", "mpe-tag-expert", "mpe-tag-prey", "mpe-world-expert", "mpe-world-good"]


def _spec(env_id: str, opponent: str | None = None):
    spec = envs.get(env_id)
    return dataclasses.replace(spec, opponent_policy=opponent) if opponent else spec


def rollout(env_id: str, policy: str, seed: int, opponent: str | None = None) -> tuple[float, list]:
    """One episode of ``policy`` for the controlled team: its team return and the actions taken."""
    spec = _spec(env_id, opponent)
    env = spec.make()
    try:
        actor = make_policy(policy, spec, env.possible_agents, seed=seed, env=env)
        obs, _ = env.reset(seed=seed)
        actor.reset(seed)
        total, taken = 0.0, []
        while env.agents:
            actions = actor.act(obs)
            for agent, action in actions.items():
                assert env.action_space(agent).contains(action), (agent, action)
            taken.append(actions)
            obs, _, _, _, infos = env.step(actions)
            total += next(iter(infos.values()))["team_reward"]
        return total, taken
    finally:
        env.close()


@functools.lru_cache(maxsize=None)
def returns(env_id: str, policy: str, episodes: int = EPISODES, opponent: str | None = None) -> np.ndarray:
    # Cached: the expert's returns serve both the expert-vs-random and the opponent comparisons.
    return np.array([rollout(env_id, policy, seed, opponent)[0] for seed in range(episodes)])


def test_the_five_policies_are_registered():
    for name in NAMES:
        cls = policies.get(name)
        assert issubclass(cls, BehaviourPolicy) and cls.__doc__
    for env_id in ENV_IDS:
        spec = envs.get(env_id)
        assert spec.expert_policy in NAMES and spec.opponent_policy in (None, *NAMES)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_expert_beats_random(env_id):
    expert, random = returns(env_id, "expert"), returns(env_id, "random")
    gap = expert.mean() - random.mean()
    stderr = np.sqrt(expert.var(ddof=1) / len(expert) + random.var(ddof=1) / len(random))
    task = env_id.split("-")[1]
    assert gap > max(4.0 * stderr, MIN_GAP[task]), (expert.mean(), random.mean(), stderr)


@pytest.mark.parametrize("task", ["simple_tag", "simple_world_comm"])
def test_scripted_opponents_are_harder_than_random_ones(task):
    # The same expert team scores far more against random prey / good agents than against the scripted ones.
    scripted, random = [], []
    for env_id in (f"mpe-{task}", f"mpe-{task}-discrete"):
        scripted.append(returns(env_id, "expert")[:10])
        random.append(returns(env_id, "expert", 10, opponent="random"))
    diff = np.concatenate(random) - np.concatenate(scripted)  # paired by seed
    assert diff.mean() > 3.0 * diff.std(ddof=1) / np.sqrt(len(diff)), diff


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_same_seed_same_actions_and_return(env_id):
    first, second = rollout(env_id, "expert", seed=3), rollout(env_id, "expert", seed=3)
    assert first[0] == second[0] and len(first[1]) == len(second[1]) == 25
    for a, b in zip(first[1], second[1]):
        assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    other = rollout(env_id, "expert", seed=4)[1]
    assert any(not np.array_equal(a[k], b[k]) for a, b in zip(first[1], other) for k in a)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_every_agent_acts_validly_in_the_full_env(env_id):
    # Drive every agent of the upstream env (the opponents too) with the scripted policies.
    spec = envs.get(env_id)
    env = spec.make_upstream()
    controlled = list(spec.controlled) or list(env.possible_agents)
    others = [a for a in env.possible_agents if a not in controlled]
    actors = [make_policy("expert", spec, controlled, seed=0, env=env)]
    if others:
        actors.append(make_policy(spec.opponent_policy, spec, others, seed=0, env=env))
    obs, _ = env.reset(seed=11)
    spoken = []
    while env.agents:
        actions = {}
        for actor in actors:
            actions.update(actor.act({a: obs[a] for a in actor.agents if a in obs}))
        assert sorted(actions) == sorted(env.agents)
        for agent, action in actions.items():
            assert env.action_space(agent).contains(action), (agent, action)
        if "leadadversary_0" in actions:
            spoken.append(np.asarray(actions["leadadversary_0"]))
        obs, *_ = env.step(actions)
    env.close()
    if spoken:
        # The leader really talks: a word above 0 (action >= 5) or a non-zero continuous message.
        said = [int(a) // 5 for a in spoken] if spoken[0].ndim == 0 else [tuple(a[5:]) for a in spoken]
        assert any(s not in (0, (0.0, 0.0, 0.0, 0.0)) for s in said)


@pytest.mark.parametrize("env_id", ["mpe-simple_spread", "mpe-simple_spread-discrete"])
def test_actions_push_towards_the_goal(env_id):
    # Pins the action encoding: agent_0 at rest at the origin, its landmark straight to the right (+x).
    spec = envs.get(env_id)
    env = spec.make()
    policy = make_policy("expert", spec, env.possible_agents, seed=0, env=env)
    obs = np.zeros(18, dtype=np.float32)
    obs[4:10] = [1.0, 0.0, 5.0, 5.0, -5.0, 5.0]  # landmarks: the near one at (1, 0)
    obs[10:14] = [5.0, 6.0, -5.0, 6.0]  # the other agents, nearer the far landmarks
    action = policy.act({"agent_0": obs})["agent_0"]
    if spec.action_type == "discrete":
        assert action == 2  # move right
    else:
        assert action[2] == pytest.approx(1.0) and action[1] == 0.0 and action[3] == action[4] == 0.0
    env.close()
