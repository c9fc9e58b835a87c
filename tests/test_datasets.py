"""Ray-collected multi-agent Minari datasets: round trip, determinism across actor counts, faults."""

from __future__ import annotations

import json

import minari
import numpy as np
import pytest
import torch

from rlcf.cli import main
from rlcf.data.collect import collect_dataset
from rlcf.data.episodes import BehaviourPlan, episode_seed
from rlcf.data.marl import load_marl_dataset, validate_dataset, write_marl_dataset
from rlcf.data.tiers import CollectionPlan, tier_plan
from rlcf.errors import CorruptDatasetError, UnknownNameError, UsageError
from rlcf.registry import envs
from rlcf.runtime.collectors import collect_episodes

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module", autouse=True)
def ray_cluster():
    import ray

    from rlcf.runtime.cluster import ensure_ray

    started = ensure_ray(num_cpus=2)
    yield
    if started:
        ray.shutdown()


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "datasets"))
    return tmp_path / "datasets"


def random_plan(env_id="mpe-simple_spread", episodes=6, seed=3, policy="random", **kwargs):
    return CollectionPlan(env_id, episodes, seed, ((BehaviourPlan(policy, kwargs), 1.0),))


def test_two_actors_round_trip_through_plain_minari_and_match_one_actor(store):
    result = collect_dataset("mpe-simple_spread", policy="random", episodes=6, actors=2, seed=3, references=False)
    assert result.dataset_id == "rlcf/mpe-simple_spread/random-v0"
    reference = collect_episodes(random_plan(), actors=0, progress=False)  # in-process, no Ray

    ds = minari.load_dataset(result.dataset_id)  # plain Minari, no rlcf code in the read path
    assert ds.total_episodes == 6 and ds.total_steps == 6 * 25
    assert set(ds.observation_space.keys()) == {"agent_0", "agent_1", "agent_2"}
    for ep, ref in zip(ds.iterate_episodes(), reference):
        assert ep.id == ref.index
        for agent in ref.agents:
            np.testing.assert_array_equal(ep.observations[agent], ref.observations[agent])
            np.testing.assert_array_equal(ep.actions[agent], ref.actions[agent])
            np.testing.assert_array_equal(ep.infos["agent_rewards"][agent][1:], ref.rewards[agent])
            assert ep.infos["agent_rewards"][agent][0] == 0.0  # Minari's info row 0 is the reset
        np.testing.assert_allclose(ep.rewards, ref.team_rewards)
        np.testing.assert_array_equal(ep.infos["state"], ref.states)
        np.testing.assert_array_equal(ep.terminations, ref.terminations)
        np.testing.assert_array_equal(ep.truncations, ref.truncations)
        assert ep.truncations[-1] and not ep.terminations.any()
    meta = ds.storage.metadata["rlcf"]
    assert meta["env"]["id"] == "mpe-simple_spread" and meta["env"]["version"] == 3
    assert meta["episode_seeds"] == [episode_seed(3, i) for i in range(6)]
    assert meta["behaviour"]["seed"] == 3 and meta["behaviour"]["actors"] == 2

    one = collect_episodes(random_plan(), actors=1, progress=False)
    for a, b in zip(one, reference):
        for agent in a.agents:
            np.testing.assert_array_equal(a.observations[agent], b.observations[agent])
            np.testing.assert_array_equal(a.actions[agent], b.actions[agent])


def test_a_different_seed_gives_different_data():
    a = collect_episodes(random_plan(seed=1, episodes=1), actors=0, progress=False)[0]
    b = collect_episodes(random_plan(seed=2, episodes=1), actors=0, progress=False)[0]
    assert not np.array_equal(a.observations["agent_0"], b.observations["agent_0"])


def test_killed_actor_costs_only_its_unfinished_episode(tmp_path, caplog):
    marker = tmp_path / "crashed"
    plan = random_plan(
        episodes=8, policy="crash_policy:CrashOncePolicy", crash_seed=episode_seed(3, 5), marker=str(marker)
    )
    episodes = collect_episodes(plan, actors=2, progress=False)
    assert marker.exists(), "the actor really died"
    assert "collector actor died" in caplog.text
    clean = collect_episodes(random_plan(episodes=8), actors=0, progress=False)
    assert [e.index for e in episodes] == list(range(8))
    for a, b in zip(episodes, clean):
        np.testing.assert_array_equal(a.actions["agent_1"], b.actions["agent_1"])


def test_loaded_tensors_and_sampler(store):
    collect_dataset("mpe-simple_spread-discrete", policy="random", episodes=4, actors=0, references=False)
    data = load_marl_dataset("rlcf/mpe-simple_spread-discrete/random-v0")
    assert len(data) == 100 and data.n_agents == 3 and data.n_episodes == 4
    assert data.obs.shape == (100, 3, 18) and data.next_obs.shape == (100, 3, 18)
    assert data.actions.shape == (100, 3) and data.actions.dtype == torch.int64
    assert data.state.shape == (100, 54) and data.action_dims == (5, 5, 5)
    # next_obs of step t is obs of step t+1 inside an episode
    assert torch.equal(data.next_obs[:24], data.obs[1:25])
    assert data.timeouts.sum() == 4 and data.terminals.sum() == 0
    batch = data.sample(32, torch.Generator().manual_seed(0))
    assert batch["obs"].shape == (32, 3, 18) and batch["state"].shape == (32, 54)
    again = data.sample(32, torch.Generator().manual_seed(0))
    assert torch.equal(batch["actions"], again["actions"])
    returns = data.episode_returns()
    assert returns.shape == (4,) and np.isclose(returns.sum(), data.rewards.sum().item(), rtol=1e-5)


def test_heterogeneous_agents_are_padded_with_their_true_sizes(store):
    collect_dataset("mpe-simple_world_comm-discrete", policy="random", episodes=2, actors=0, references=False)
    data = load_marl_dataset("rlcf/mpe-simple_world_comm-discrete/random-v0")
    assert data.agents == ("leadadversary_0", "adversary_0", "adversary_1", "adversary_2")
    assert data.action_dims == (20, 5, 5, 5) and data.obs_dims == (34, 34, 34, 34)


def test_truncated_or_altered_files_are_refused(store):
    result = collect_dataset("mpe-simple_spread", policy="random", episodes=2, actors=0, references=False)
    (data_file,) = [p for p in (result.path / "data").iterdir() if p.name != "metadata.json"]
    content = data_file.read_bytes()
    data_file.write_bytes(content[: len(content) // 2])
    with pytest.raises(CorruptDatasetError, match="does not match its checksum"):
        load_marl_dataset(result.dataset_id)
    assert main(["show", result.dataset_id]) == 2  # refused on the command line too
    data_file.unlink()
    with pytest.raises(CorruptDatasetError, match="is missing"):
        validate_dataset(result.dataset_id)


def test_metadata_without_rlcf_block_is_refused(store):
    result = collect_dataset("mpe-simple_spread", policy="random", episodes=2, actors=0, references=False)
    meta_path = result.path / "data" / "metadata.json"
    meta = json.loads(meta_path.read_text())
    meta.pop("rlcf")
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(CorruptDatasetError, match="has no rlcf metadata"):
        load_marl_dataset(result.dataset_id)


def test_a_crash_while_writing_leaves_no_dataset(store, monkeypatch):
    import rlcf.data.marl as marl

    episodes = collect_episodes(random_plan(episodes=3), actors=0, progress=False)
    calls = {"n": 0}
    original = marl._to_buffer

    def failing(ep):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt("killed while writing")
        return original(ep)

    monkeypatch.setattr(marl, "_to_buffer", failing)
    spec = envs.get("mpe-simple_spread")
    with pytest.raises(KeyboardInterrupt):
        write_marl_dataset("rlcf/mpe-simple_spread/partial-v0", episodes, spec=spec, behaviour={}, ref_min_score=None, ref_max_score=None)
    assert minari.list_local_datasets() == {}
    assert not (store / "rlcf" / "mpe-simple_spread" / "partial-v0").exists()
    assert not [p for p in store.iterdir() if p.name.startswith(".tmp-")], "the staging folder is removed"


def test_existing_dataset_needs_overwrite(store):
    collect_dataset("mpe-simple_spread", policy="random", episodes=1, actors=0, references=False)
    with pytest.raises(UsageError, match="already exists"):
        collect_dataset("mpe-simple_spread", policy="random", episodes=1, actors=0, references=False)
    again = collect_dataset("mpe-simple_spread", policy="random", episodes=2, actors=0, references=False, overwrite=True)
    assert minari.load_dataset(again.dataset_id).total_episodes == 2


def test_bad_requests_are_refused_with_the_fix(store, capsys):
    with pytest.raises(UnknownNameError, match="unknown env 'mpe-simple_sprad'. Did you mean 'mpe-simple_spread'"):
        collect_dataset("mpe-simple_sprad", tier="random", episodes=1)
    assert main(["collect", "mpe-simple_sprad", "--tier", "random", "--episodes", "1"]) == 2
    with pytest.raises(UsageError, match="unknown tier 'meduim'; valid tiers: random, medium"):
        collect_dataset("mpe-simple_spread", tier="meduim", episodes=1)
    with pytest.raises(UsageError, match="needs --policy-kwarg checkpoint="):
        collect_dataset("mpe-simple_spread", policy="trained", episodes=1)
    with pytest.raises(UsageError, match="give a --tier, or a --policy"):
        collect_dataset("mpe-simple_spread", episodes=1)
    with pytest.raises(UsageError, match="dataset id 'bad' must look like"):
        collect_dataset("mpe-simple_spread", policy="random", episodes=1, dataset_id="bad", references=False)
    with pytest.raises(UsageError, match="no dataset 'rlcf/none/x-v0'"):
        load_marl_dataset("rlcf/none/x-v0")


def test_tiers_build_the_documented_plans():
    spec = envs.get("mpe-simple_spread")
    if spec.medium_epsilon is None:
        pytest.skip("medium epsilon not calibrated")
    replay = tier_plan(spec, "medium-replay", 11, 0)
    assert replay.behaviour(0)[2] == 1.0 and replay.behaviour(10)[2] == pytest.approx(spec.medium_epsilon)
    mixed = tier_plan(spec, "mixed", 10, 0)
    assert mixed.behaviour(4)[2] == spec.medium_epsilon and mixed.behaviour(5)[2] == 0.0


def test_relabel_with_an_env_reward(store, capsys):
    """simple_spread pays each agent 0.5·coverage + 0.5·collisions; the coverage relabel must explain it."""
    source = collect_dataset("mpe-simple_spread", policy="random", episodes=3, actors=0, references=False)
    assert main(["relabel", source.dataset_id, "--reward", "mpe-spread-coverage"]) == 0
    new_id = json.loads(capsys.readouterr().out)["dataset_id"]
    assert new_id == "rlcf/mpe-simple_spread/random-relabelled-v0"
    old, new = load_marl_dataset(source.dataset_id), load_marl_dataset(new_id)
    assert torch.equal(old.obs, new.obs) and torch.equal(old.actions, new.actions)
    assert new.metadata["rlcf"]["relabelled_from"] == source.dataset_id
    coverage = new.rewards.double()
    twice_original = 2 * old.rewards.double()  # = coverage + collision penalty (<= 0)
    assert torch.all(coverage >= twice_original - 1e-4)
    no_collision = (old.agent_rewards.double() * 2 - coverage[:, None]).abs().max(dim=1).values < 1e-4
    assert no_collision.float().mean() > 0.5, "most random steps have no collision and match exactly"
    # per-agent shaping: each agent gets its own value
    per_agent = main(["relabel", source.dataset_id, "--reward", "mpe-spread-nearest-landmark", "--dataset-id", "rlcf/mpe-simple_spread/near-v0"])
    assert per_agent == 0
    near = load_marl_dataset("rlcf/mpe-simple_spread/near-v0")
    assert not torch.allclose(near.agent_rewards[:, 0], near.agent_rewards[:, 1])
    assert main(["relabel", source.dataset_id, "--reward", "no-such-reward"]) == 2


def test_tier_with_a_missing_behaviour_checkpoint_is_refused(store, tmp_path):
    missing = tmp_path / "no-such-checkpoint"
    with pytest.raises(UsageError, match="no-such-checkpoint") as info:
        collect_dataset(
            "mpe-simple_spread", tier="expert", policy="trained", policy_kwargs={"checkpoint": str(missing)},
            episodes=2, actors=0, references=False,
        )
    assert "rlcf train-behaviour" in str(info.value)
    assert minari.list_local_datasets() == {}, "nothing half-written"
    spec = envs.get("mamujoco-halfcheetah-2x3")
    with pytest.raises(UsageError, match="has no scripted expert"):
        tier_plan(spec, "expert", 2, 0)
