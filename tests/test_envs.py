"""Env specs and suites: registered, versioned, conformant, with the controlled team and team reward right."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from rlcf.envs.spec import EnvSpec
from rlcf.errors import UnknownNameError, UsageError
from rlcf.registry import envs, policies, suites
from rlcf.testing import check_env

MPE = [
    "mpe-simple_spread",
    "mpe-simple_spread-discrete",
    "mpe-simple_tag",
    "mpe-simple_tag-discrete",
    "mpe-simple_world_comm",
    "mpe-simple_world_comm-discrete",
]


def test_suites_group_the_specs():
    assert suites.get("mpe").envs == ("mpe-simple_spread", "mpe-simple_tag", "mpe-simple_world_comm")
    assert suites.get("mpe-discrete").envs == tuple(f"{e}-discrete" for e in suites.get("mpe").envs)
    assert [s.id for s in suites.get("mamujoco").specs()] == ["mamujoco-halfcheetah-2x3"]
    for env_id in MPE:
        spec = envs.get(env_id)
        assert spec.version == 3 and spec.episode_length == 25
        assert spec.action_type == ("discrete" if env_id.endswith("discrete") else "continuous")


@pytest.mark.parametrize("env_id", MPE)
def test_every_mpe_spec_passes_the_conformance_check(env_id):
    report = check_env(env_id, steps=30, max_episode_steps=25)
    assert "reset(seed=0) is deterministic" in report.passed and "state() inside state_space" in report.passed


def test_predator_prey_exposes_only_the_predators():
    env = envs.get("mpe-simple_tag").make()
    assert env.possible_agents == ["adversary_0", "adversary_1", "adversary_2"]
    assert env.others == ("agent_0",)
    obs, _ = env.reset(seed=0)
    assert set(obs) == set(env.possible_agents)
    _, rewards, _, _, infos = env.step({a: env.action_space(a).sample() for a in env.agents})
    assert set(rewards) == set(env.possible_agents)
    assert infos["adversary_0"]["team_reward"] == pytest.approx(np.mean(list(rewards.values())))
    assert env.state().shape == (62,)  # the global state still covers the prey


def test_world_comm_team_has_a_speaking_leader():
    env = envs.get("mpe-simple_world_comm-discrete").make()
    assert env.possible_agents[0] == "leadadversary_0" and env.others == ("agent_0", "agent_1")
    assert env.action_space("leadadversary_0").n == 20 and env.action_space("adversary_0").n == 5


def test_opponent_moves_are_seeded_with_the_episode():
    spec = envs.get("mpe-simple_tag")

    def run(seed):
        env = spec.make()
        env.reset(seed=seed)
        zero = {a: np.zeros(5, dtype=np.float32) for a in env.possible_agents}
        for _ in range(5):
            env.step(zero)
        return env.state()

    np.testing.assert_array_equal(run(4), run(4))
    assert not np.array_equal(run(4), run(5))


def test_mamujoco_spec(monkeypatch):
    spec = envs.get("mamujoco-halfcheetah-2x3")
    ok, why = spec.available()
    if not ok:
        assert "pip install 'rlcf[mamujoco]'" in why
        with pytest.raises(UsageError, match="rlcf\\[mamujoco\\]"):
            spec.make()
        pytest.skip(why)
    env = spec.make()
    obs, _ = env.reset(seed=0)
    assert env.possible_agents == ["agent_0", "agent_1"]
    assert env.action_space("agent_0").shape == (3,) and env.state().shape[0] > 0


def test_missing_optional_extra_names_the_fix():
    spec = replace(envs.get("mamujoco-halfcheetah-2x3"), requires=("no_such_simulator_xyz",))
    ok, why = spec.available()
    assert not ok and "needs no_such_simulator_xyz" in why and "rlcf[mamujoco]" in why


def test_user_env_spec_registers_and_checks():
    spec = EnvSpec(
        id="user-spread-4",
        entry="mpe2.simple_spread_v3:parallel_env",
        version=3,
        episode_length=10,
        action_type="discrete",
        kwargs={"N": 4, "max_cycles": 10},
    )
    envs.register(spec.id, spec)
    try:
        envs.register(spec.id, replace(spec))  # an equal spec again (module re-import) is harmless
        assert check_env("user-spread-4", max_episode_steps=10)
        assert len(envs.get("user-spread-4").make().possible_agents) == 4
    finally:
        envs.unregister(spec.id)


def test_unknown_env_and_bad_spec():
    with pytest.raises(UnknownNameError, match="Valid envs: mamujoco-halfcheetah-2x3, mpe-simple_spread"):
        envs.get("spread")
    with pytest.raises(UsageError, match="team_reward must be"):
        EnvSpec(id="x", entry="a:b", version=1, episode_length=1, action_type="discrete", team_reward="max")  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="names no opponent_policy"):
        replace(envs.get("mpe-simple_tag"), opponent_policy=None).make()


def test_scripted_policies_are_registered():
    for name in ("random", "mpe-spread-expert", "mpe-tag-expert", "mpe-tag-prey", "mpe-world-expert", "mpe-world-good", "trained"):
        assert name in policies


def test_old_module_names_still_resolve_with_a_deprecation_warning():
    """Datasets and checkpoints written before envs/ was laid out by kind name the flat modules
    ("rlcf.envs.rllib_behaviour:TrainedPolicy" in a behaviour plan, "rlcf.envs.fitted:fitted_tiers")."""
    import importlib

    import rlcf.envs
    from rlcf.envs.behaviour.fitted import fitted_tiers
    from rlcf.envs.behaviour.mpe_scripted import SpreadExpert
    from rlcf.envs.behaviour.trained import TrainedPolicy
    from rlcf.registry import resolve_path

    for path, obj in (
        ("rlcf.envs.rllib_behaviour:TrainedPolicy", TrainedPolicy),
        ("rlcf.envs.mpe_scripted:SpreadExpert", SpreadExpert),
        ("rlcf.envs.fitted:fitted_tiers", fitted_tiers),
    ):
        with pytest.warns(DeprecationWarning, match="moved"):
            assert resolve_path(path) is obj
    with pytest.warns(DeprecationWarning):
        assert policies.get("rlcf.envs.policies:RandomPolicy") is rlcf.envs.RandomPolicy
    with pytest.warns(DeprecationWarning):
        from rlcf.envs.paired import pair_rows  # noqa: F401  (the import statement form)
    for old, targets in rlcf.envs.MOVED_MODULES.items():
        assert importlib.import_module(f"rlcf.envs.{old}") is getattr(rlcf.envs, old)
        for target in targets:
            importlib.import_module(target)  # every new home exists
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        rlcf.envs.mpe.nope  # noqa: B018
