"""rlcf.testing: the conformance checks pass real plugins and catch broken ones."""

from __future__ import annotations

import pytest

from rlcf.errors import ConformanceError
from rlcf.registry import envs, rewards
from rlcf.testing import check_dataset, check_env, check_reward_fn


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


# -- datasets ------------------------------------------------------------------------------------------------------


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "datasets"))
    return tmp_path / "datasets"


def collected(env_id, episodes=3):
    from rlcf.data.collect import collect_dataset

    return collect_dataset(env_id, policy="random", episodes=episodes, actors=0, references=False, progress=False)


@pytest.mark.parametrize("env_id", ["mpe-simple_spread", "mpe-simple_spread-discrete", "mpe-simple_tag"])
def test_check_dataset_passes_collected_datasets(env_id, store):
    result = collected(env_id)
    report = check_dataset(result.dataset_id)
    assert "rlcf metadata present, data files match their checksums" in report.passed
    assert "3 episodes readable, in their spaces, rewards finite, ends consistent" in report.passed
    assert "recover_environment() builds the env with the dataset's spaces" in report.passed
    assert check_dataset(result.path)  # its folder works too


def _episodes(env_id="mpe-simple_spread", n=2):
    from rlcf.data.episodes import BehaviourPlan
    from rlcf.data.tiers import CollectionPlan
    from rlcf.runtime.collectors import collect_episodes

    return collect_episodes(CollectionPlan(env_id, n, 0, ((BehaviourPlan("random"), 1.0),)), actors=0, progress=False)


def _nan_team_reward(ep):
    team = ep.team_rewards.copy()
    team[4] = float("nan")
    return {"team_rewards": team}


def _action_outside(ep):
    actions = {a: v.copy() for a, v in ep.actions.items()}
    actions["agent_1"][2, 0] = 2.0  # the space is [0, 1]^5
    return {"actions": actions}


def _early_termination(ep):
    terms = ep.terminations.copy()
    terms[3] = True
    return {"terminations": terms}


def _no_end(ep):
    truncs = ep.truncations.copy()
    truncs[-1] = False
    return {"truncations": truncs}


def _infinite_agent_reward(ep):
    rewards = {a: v.copy() for a, v in ep.rewards.items()}
    rewards["agent_2"][6] = float("inf")
    return {"rewards": rewards}


def _short_state(ep):
    return {"states": ep.states[:-1]}


@pytest.mark.parametrize(
    "breakage, message",
    [
        (_nan_team_reward, r"fails 'finite rewards': episode 1, rewards\[4\] is nan"),
        (_action_outside, r"fails 'actions in space': episode 1, actions\['agent_1'\] step 2: \[2\.0, .*\] is outside Box"),
        (_early_termination, r"fails 'episode ends': episode 1, terminations\[3\] is true before the last step \(24\)"),
        (_no_end, r"fails 'episode ends': episode 1, the last step is neither terminated nor truncated"),
        (_infinite_agent_reward, r"fails 'agent rewards': episode 1, infos\['agent_rewards'\]\['agent_2'\]\[7\] is inf"),
        (_short_state, r"fails 'global state': episode 1, infos\['state'\] has shape \(25, \d+\); expected 26 rows"),
    ],
)
def test_check_dataset_names_the_episode_and_field_at_fault(breakage, message, store):
    """A dataset written through rlcf's own writer with one field of episode 1 broken: the check names them."""
    from dataclasses import replace

    from rlcf.data.marl import write_marl_dataset

    episodes = _episodes()
    episodes[1] = replace(episodes[1], **breakage(episodes[1]))
    write_marl_dataset("user/broken-v0", episodes, spec=envs.get("mpe-simple_spread"), behaviour={"tier": "custom"},
                       ref_min_score=None, ref_max_score=None)
    with pytest.raises(ConformanceError, match=message):
        check_dataset("user/broken-v0")


def test_check_dataset_refuses_altered_files_and_foreign_datasets(store):
    result = collected("mpe-simple_spread", episodes=1)
    (data_file,) = [p for p in (result.path / "data").rglob("*.hdf5")]
    data_file.write_bytes(data_file.read_bytes()[:-100])
    with pytest.raises(ConformanceError, match=r"fails 'rlcf metadata and checksums'.*does not match its checksum"):
        check_dataset(result.dataset_id)
    with pytest.raises(ConformanceError, match=r"fails 'rlcf metadata and checksums': no dataset 'rlcf/nope/random-v0'"):
        check_dataset("rlcf/nope/random-v0")


def test_minari_recovers_the_env_an_rlcf_dataset_was_recorded_on(store):
    """``minari.load_dataset(...).recover_environment()`` rebuilds the team env: reset with an episode's seed and
    stepped with its actions, it replays the episode (observations, team rewards, end); a dataset written before
    rlcf stored the env spec is recovered by rlcf's helper."""
    import json

    import minari
    import numpy as np

    from rlcf.data.marl import recover_environment

    result = collected("mpe-simple_tag")  # the prey is driven by the env's opponent policy, seeded by reset
    ds = minari.load_dataset(result.dataset_id)
    env = ds.recover_environment()
    assert env.observation_space == ds.observation_space and env.action_space == ds.action_space
    for ep, seed in zip(ds.iterate_episodes(), ds.storage.metadata["rlcf"]["episode_seeds"]):
        obs, info = env.reset(seed=seed)
        assert all(np.array_equal(obs[a], ep.observations[a][0]) for a in obs)
        np.testing.assert_array_equal(info["state"], ep.infos["state"][0])
        for t in range(len(ep.rewards)):
            obs, reward, terminated, truncated, info = env.step({a: ep.actions[a][t] for a in obs})
            assert reward == pytest.approx(ep.rewards[t])
            assert all(np.array_equal(obs[a], ep.observations[a][t + 1]) for a in obs)
            for agent in obs:
                assert info["agent_rewards"][agent] == pytest.approx(ep.infos["agent_rewards"][agent][t + 1])
            assert (terminated, truncated) == (ep.terminations[t], ep.truncations[t])
    env.close()

    # An older dataset, without env_spec in its metadata (which no checksum covers).
    meta_path = result.path / "data" / "metadata.json"
    meta = json.loads(meta_path.read_text())
    del meta["env_spec"]
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="env_spec is None"):
        minari.load_dataset(result.dataset_id).recover_environment()
    env = recover_environment(result.dataset_id)
    assert env.observation_space == ds.observation_space
    env.close()


def test_check_reward_fn_takes_numpy_values_and_names_a_raised_exception():
    """TRL accepts a 1-D numpy array of rewards, so the check and rlcf's guarded call accept it too; a function
    that raises gets a conformance failure naming the exception, not the raw traceback."""
    import numpy as np

    from rlcf.reward_set import guard_reward

    def as_array(completions, **kwargs):
        return np.array([float(len(c)) for c in completions])

    report = check_reward_fn(as_array, ["ab", "abc"])
    assert "returns 2 finite values or None" in str(report)
    assert guard_reward(as_array, "as_array")(prompts=["", ""], completions=["ab", "abc"]) == [2.0, 3.0]

    def broken(completions, **kwargs):
        raise KeyError("solution")

    with pytest.raises(ConformanceError, match=r"runs on the sample inputs.*raised KeyError: 'solution'"):
        check_reward_fn(broken, ["a"])
