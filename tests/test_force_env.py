"""The force-action MPE task (CFCQL's setting) and its fitted-policy tiers: the 2-D force is exactly mpe2's movement,
the fitted snapshots load and get better along the fit, tiers follow OMAR's structure, and the offline-MARL
diagnostics (Monte-Carlo return, reward scale) are what they claim."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rlcf.algorithm import train
from rlcf.data.collect import collect_dataset
from rlcf.data.tiers import tier_plan
from rlcf.envs.behaviour.fitted import load_snapshots
from rlcf.envs.behaviour.policies import make_policy
from rlcf.envs.spec import force_to_mpe
from rlcf.errors import ConfigError, UsageError
from rlcf.registry import envs

FORCE = "mpe-simple_spread-force"


def test_force_maps_onto_mpe_movement_exactly():
    a = force_to_mpe([0.3, -0.8])
    assert a.shape == (5,) and a[0] == 0.0
    assert a[2] - a[1] == pytest.approx(0.3) and a[4] - a[3] == pytest.approx(-0.8)
    assert (a >= 0).all() and (a <= 1).all()
    assert force_to_mpe([5.0, -5.0])[[2, 3]].tolist() == [1.0, 1.0]  # clipped to the unit box


def test_force_env_steps_like_the_native_env_given_the_same_force():
    """Same seed, same forces: the force env and mpe2's own 5-D encoding of them give identical trajectories."""
    force_env, native_env = envs.get(FORCE).make(), envs.get("mpe-simple_spread").make()
    assert force_env.action_space("agent_0").shape == (2,) and native_env.action_space("agent_0").shape == (5,)
    rng = np.random.default_rng(0)
    o1, _ = force_env.reset(seed=3)
    o2, _ = native_env.reset(seed=3)
    for _ in range(10):
        forces = {a: rng.uniform(-1, 1, 2).astype(np.float32) for a in force_env.agents}
        o1, r1, *_ = force_env.step(forces)
        o2, r2, *_ = native_env.step({a: force_to_mpe(f) for a, f in forces.items()})
        for a in forces:
            np.testing.assert_allclose(o1[a], o2[a], atol=1e-6)
            assert r1[a] == pytest.approx(r2[a])


def test_scripted_expert_acts_with_forces_and_keeps_its_return():
    spec = envs.get(FORCE)
    env = spec.make()
    expert = make_policy("expert", spec, env.possible_agents, seed=0, env=env)
    obs, _ = env.reset(seed=1)
    actions = expert.act(obs)
    assert all(np.asarray(v).shape == (2,) and np.abs(v).max() <= 1 for v in actions.values())


def test_fitted_snapshots_get_better_along_the_fit():
    stages, info = load_snapshots(FORCE)
    assert stages and list(stages)[0] == "init" and list(stages)[-2:] == ["medium", "expert"]
    scores = info["normalized_score_at_eval_noise"]
    assert scores["init"] < 20 < scores["medium"] < scores["expert"]  # measured when the snapshots were built
    spec = envs.get(FORCE)
    env = spec.make()
    returns = {}
    for stage in ("init", "expert"):  # and measured again here, closed loop, on fresh episodes
        policy = make_policy("fitted", spec, env.possible_agents, seed=0, env=env, stage=stage, noise=0.1)
        total = []
        for e in range(6):
            obs, _ = env.reset(seed=500 + e)
            policy.reset(seed=e)
            ret = 0.0
            while env.agents:
                obs, _, _, _, infos = env.step(policy.act(obs))
                ret += infos["agent_0"]["team_reward"]
            total.append(ret)
        returns[stage] = np.mean(total)
    assert returns["expert"] > returns["init"] + 5


def test_fitted_policy_refuses_bad_input():
    spec = envs.get(FORCE)
    env = spec.make()
    with pytest.raises(UsageError, match="valid stages: init"):
        make_policy("fitted", spec, env.possible_agents, seed=0, env=env, stage="nope")
    native = envs.get("mpe-simple_spread")
    with pytest.raises(UsageError, match="2-D forces"):
        make_policy("fitted", native, native.make().possible_agents, seed=0, env=native.make())


def test_force_tiers_follow_omar():
    spec = envs.get(FORCE)
    random = tier_plan(spec, "random", 10, 0)
    assert [(p.policy, p.policy_kwargs["stage"]) for p, _ in random.components] == [("fitted", "init")]
    replay = tier_plan(spec, "medium-replay", 300, 0)
    stages = [p.policy_kwargs["stage"] for p, _ in replay.components]
    assert stages[0] == "init" and stages[-1] == "medium" and len(stages) > 5  # the fit's history, in order
    assert sum(f for _, f in replay.components) == pytest.approx(1.0)
    expert = tier_plan(spec, "expert", 10, 0)
    assert expert.components[0][0].policy_kwargs == {"stage": "expert", "noise": 0.1}


@pytest.fixture(scope="module")
def force_dataset(tmp_path_factory):
    import os

    root = tmp_path_factory.mktemp("store")
    old = os.environ.get("MINARI_DATASETS_PATH")
    os.environ["MINARI_DATASETS_PATH"] = str(root)
    result = collect_dataset(FORCE, tier="medium", episodes=8, actors=0, ref_episodes=20, progress=False)
    yield result.dataset_id
    if old is not None:
        os.environ["MINARI_DATASETS_PATH"] = old
    else:
        del os.environ["MINARI_DATASETS_PATH"]


def test_force_dataset_stores_two_d_actions_and_discounted_returns(force_dataset):
    from rlcf.data.marl import load_marl_dataset

    data = load_marl_dataset(force_dataset)
    assert data.actions.shape[1:] == (3, 2) and data.metadata["ref_min_score"] is not None
    g = data.discounted_returns(0.9).numpy()
    r = data.rewards.numpy()
    lo, hi = int(data.episode_starts[0]), int(data.episode_starts[1])
    assert g[hi - 1] == pytest.approx(r[hi - 1])  # last step of an episode: its own reward only
    assert g[lo] == pytest.approx(sum(0.9**k * r[lo + k] for k in range(hi - lo)), rel=1e-5)
    assert data.discounted_returns(1.0).numpy()[lo] == pytest.approx(data.episode_returns()[0], rel=1e-5)


def test_reward_scale_scales_the_td_rewards_and_logs_q_beside_mc(force_dataset, tmp_path):
    base = [f"config.dataset={force_dataset}", "config.batch_size=16", "config.eval_episodes=2", "run.total_steps=2",
            "run.log_every=1", "run.checkpoint_every=2", f"run.out_dir={tmp_path}", "run.device=cpu"]
    run, final = train(None, [*base, "config.reward_scale=20"], algo="cfcql")
    algo = run.algorithm
    batch = algo.sample()
    assert "train/q_data" in final and "train/mc_return" in final
    gen = torch.Generator().manual_seed(0)
    idx = torch.randint(len(algo.data), (16,), generator=gen)
    assert torch.allclose(algo.mc_returns[idx], algo.data.discounted_returns(algo.config.gamma)[idx] * 20)
    assert batch["rewards"].abs().mean() > 5 * algo.data.rewards.abs().mean()  # scaled ×20 (rewards are all < 0)
    with pytest.raises(ConfigError, match="reward_scale"):
        train(None, [*base, "config.reward_scale=0"], algo="cfcql")
