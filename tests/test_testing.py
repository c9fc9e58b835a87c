"""rlcf.testing: the conformance checks pass real plugins and catch broken ones."""

from __future__ import annotations

import pytest

from rlcf.errors import ConformanceError
from rlcf.registry import envs, rewards
from rlcf.testing import check_env, check_reward_fn


def spread_env(**kwargs):
    from mpe2 import simple_spread_v3

    return simple_spread_v3.parallel_env(max_cycles=10, **kwargs)


@pytest.fixture
def registered_spread():
    envs.register("user-simple_spread", spread_env)
    yield "user-simple_spread"
    envs.unregister("user-simple_spread")


def test_check_env_passes_a_registered_pettingzoo_env(registered_spread):
    report = check_env(registered_spread, steps=20, max_episode_steps=10)
    assert "pettingzoo parallel_api_test" in report.passed
    assert "reset(seed=0) is deterministic" in report.passed
    assert "state() inside state_space" in report.passed
    assert "episodes end within 10 steps" in report.passed
    # continuous actions through the factory's kwargs
    assert check_env(spread_env, continuous_actions=True, steps=10)


def test_check_env_catches_unseeded_randomness():
    import numpy as np

    class Unseeded:
        """simple_spread whose reset ignores the seed for one observation entry."""

        def __init__(self):
            self._env = spread_env()
            self._rng = np.random.default_rng()  # not reseeded in reset(): a real bug in user envs

        def __getattr__(self, name):
            return getattr(self._env, name)

        def reset(self, seed=None, options=None):
            obs, infos = self._env.reset(seed=seed, options=options)
            first = self._env.agents[0]
            obs[first] = obs[first].copy()
            obs[first][0] = self._rng.uniform(-0.5, 0.5)
            return obs, infos

    with pytest.raises(ConformanceError, match="fails 'seeded determinism'"):
        check_env(Unseeded, steps=5)


def test_check_env_catches_non_finite_rewards():
    class NaNReward:
        def __init__(self):
            self._env = spread_env()

        def __getattr__(self, name):
            return getattr(self._env, name)

        def step(self, actions):
            obs, rew, term, trunc, info = self._env.step(actions)
            return obs, {a: float("nan") for a in rew}, term, trunc, info

    with pytest.raises(ConformanceError, match="finite rewards|parallel_api_test"):
        check_env(NaNReward, steps=5)


def exact_match(completions, solution, **kwargs):
    return [1.0 if c.strip() == s else 0.0 for c, s in zip(completions, solution)]


def test_check_reward_fn_accepts_a_good_function_and_checks_values():
    report = check_reward_fn(exact_match, ["4", " 5 ", "x"], solution=["4", "5", "6"], expected=[1.0, 1.0, 0.0])
    assert "deterministic" in report.passed and "matches the expected values" in report.passed
    with pytest.raises(ConformanceError, match="expected values"):
        check_reward_fn(exact_match, ["4"], solution=["4"], expected=[0.0])


def test_check_reward_fn_by_registered_name():
    rewards.register("user_exact_match", exact_match)
    try:
        assert check_reward_fn("user_exact_match", ["a"], solution=["a"])
    finally:
        rewards.unregister("user_exact_match")


@pytest.mark.parametrize(
    "fn, check",
    [
        (lambda completions, solution: [0.0] * len(completions), "accepts \\*\\*kwargs"),
        (lambda completions, **kw: [0.0], "one value per completion"),
        (lambda completions, **kw: [float("inf")] * len(completions), "finite numbers or None"),
        (lambda completions, **kw: [True] * len(completions), "finite numbers or None"),
        (lambda completions, **kw: completions.append("x") or [0.0] * 2, "leaves inputs unchanged"),
    ],
)
def test_check_reward_fn_rejects_broken_functions(fn, check):
    with pytest.raises(ConformanceError, match=f"fails '{check}'"):
        check_reward_fn(fn, ["a", "b"], solution=["a", "b"])


def test_check_reward_fn_catches_nondeterminism():
    import itertools

    counter = itertools.count()

    def drifting(completions, **kwargs):
        return [float(next(counter)) for _ in completions]

    with pytest.raises(ConformanceError, match="fails 'deterministic'"):
        check_reward_fn(drifting, ["a"])


def test_none_means_not_applicable():
    def only_math(completions, task, **kwargs):
        return [1.0 if t == "math" else None for t in task]

    assert check_reward_fn(only_math, ["a", "b"], task=["math", "vqa"], expected=[1.0, None])
