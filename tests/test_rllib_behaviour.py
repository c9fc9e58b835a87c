"""RLlib behaviour policies: training writes a consistent run folder, TrainedPolicy reproduces the module."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

from rlcf.errors import UsageError

pytestmark = pytest.mark.ray

pytest.importorskip("ray.rllib")
pytest.importorskip("mpe2")

from rlcf.envs.behaviour.ppo_config import module_groups  # noqa: E402
from rlcf.envs.behaviour.ppo_train import train_behaviour  # noqa: E402
from rlcf.envs.behaviour.trained import CHECKPOINT_META, TrainedPolicy, find_checkpoint  # noqa: E402
from rlcf.registry import commands, envs, policies  # noqa: E402

DISCRETE, CONTINUOUS = "mpe-simple_spread-discrete", "mpe-simple_spread"
ITERATIONS, BATCH = 2, 200  # 8 episodes of 25 steps per iteration


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="rlcf")
    commands.get("train-behaviour").add_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


@pytest.fixture(scope="module")
def discrete_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """Trained through the CLI hook, so the command is covered as well."""
    import contextlib
    import io

    out = tmp_path_factory.mktemp("behaviour")
    args = _parse(
        ["train-behaviour", DISCRETE, "--iterations", str(ITERATIONS), "--checkpoint-every", "1",
         "--out-dir", str(out), "--train-batch-size", str(BATCH)]
    )
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        assert commands.get("train-behaviour").run(args) == 0
    printed = json.loads(buffer.getvalue().strip().splitlines()[-1])
    return out / DISCRETE / "seed0", printed


@pytest.fixture(scope="module", autouse=True)
def no_ray_running():
    """Earlier tests in the same process may have left a local Ray running; these tests check that training
    starts and stops its own, and that loading a policy needs none, so they start from no cluster."""
    import ray

    if ray.is_initialized():
        ray.shutdown()
    yield


@pytest.fixture(scope="module")
def continuous_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Sampled in one remote env runner: callbacks, agent mapping and env creator must pickle."""
    out = tmp_path_factory.mktemp("behaviour-box")
    return train_behaviour(
        CONTINUOUS, out, iterations=ITERATIONS, checkpoint_every=5, train_batch_size=BATCH, num_epochs=2, num_env_runners=1
    )


def _rows(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "curve.jsonl").read_text().splitlines()]


def test_run_folder_curve_checkpoints_and_metadata_agree(discrete_run):
    run, printed = discrete_run
    import ray

    assert not ray.is_initialized()  # the Ray that training started is shut down again
    rows = _rows(run)
    assert [r["iteration"] for r in rows] == [1, 2]
    assert [r["env_steps"] for r in rows] == [BATCH, 2 * BATCH]
    assert all(r["episodes"] == BATCH // 25 and np.isfinite(r["team_return"]) for r in rows)
    # First iteration: RLlib's smoothed return covers the same 8 episodes and sums the 3 agents' rewards,
    # while the team reward is their mean.
    assert rows[0]["team_return"] == pytest.approx(rows[0]["rllib_episode_return_mean"] / 3, rel=1e-6)
    assert sorted(p.name for p in run.iterdir()) == ["behaviour.json", "curve.jsonl", "iter_00001", "iter_00002"]
    meta = json.loads((run / "behaviour.json").read_text())
    assert meta["env_id"] == DISCRETE and meta["seed"] == 0 and meta["complete"] is True
    assert meta["spec"] == envs.get(DISCRETE).to_metadata()
    assert meta["hyperparameters"]["train_batch_size"] == BATCH
    assert meta["modules"] == {"shared": ["agent_0", "agent_1", "agent_2"]}
    assert [(c["iteration"], c["path"], c["team_return"]) for c in meta["checkpoints"]] == [
        (r["iteration"], f"iter_{r['iteration']:05d}", r["team_return"]) for r in rows
    ]
    for row in rows:
        ckpt = json.loads((run / f"iter_{row['iteration']:05d}" / CHECKPOINT_META).read_text())
        assert ckpt["iteration"] == row["iteration"] and ckpt["team_return"] == row["team_return"]
    assert printed["run"] == str(run) and printed["team_return"] == pytest.approx(rows[-1]["team_return"], abs=1e-4)
    assert find_checkpoint(run) == run / "iter_00002"


def _direct_actions(checkpoint: Path, module_id: str, obs: np.ndarray) -> np.ndarray:
    import torch
    from ray.rllib.core.rl_module.rl_module import RLModule

    module = RLModule.from_checkpoint(checkpoint / "learner_group" / "learner" / "rl_module" / module_id)
    with torch.no_grad():
        out = module.forward_inference({"obs": torch.as_tensor(obs, dtype=torch.float32)})
        dist = module.get_inference_action_dist_cls().from_logits(out["action_dist_inputs"])
        return dist.to_deterministic().sample().numpy()


def _observations(spec, seed: int = 3, steps: int = 4):
    """An env and the observations of a few random steps (the inputs the policies are compared on)."""
    from rlcf.envs.behaviour.policies import make_policy

    env = spec.make()
    random = make_policy("random", spec, env.possible_agents, seed=seed, env=env)
    obs, _ = env.reset(seed=seed)
    seen = [obs]
    for _ in range(steps):
        obs, *_ = env.step(random.act(obs))
        seen.append(obs)
    return env, seen


def test_trained_policy_discrete_matches_the_module(discrete_run):
    run, _ = discrete_run
    import ray

    spec = envs.get(DISCRETE)
    env, seen = _observations(spec)
    assert policies.get("trained") is TrainedPolicy
    from rlcf.envs.behaviour.policies import make_policy

    policy = make_policy("trained", spec, env.possible_agents, seed=0, env=env, checkpoint=run)
    assert not ray.is_initialized()  # loading needs no cluster
    assert policy.describe()["name"] == "trained" and policy.describe()["iteration"] == 2
    assert policy.describe()["checkpoint"] == str(run / "iter_00002")
    for obs in seen:
        actions = policy.act(obs)
        assert actions == policy.act(obs)  # deterministic
        assert all(isinstance(a, int) and env.action_space(agent).contains(a) for agent, a in actions.items())
        agents = list(obs)
        direct = _direct_actions(run / "iter_00002", "shared", np.stack([obs[a] for a in agents]))
        assert [actions[a] for a in agents] == [int(x) for x in direct]
    # An older checkpoint by its own folder.
    older = TrainedPolicy(spec, env.possible_agents, env=env, checkpoint=run / "iter_00001")
    assert older.describe()["iteration"] == 1

    stochastic = TrainedPolicy(spec, env.possible_agents, seed=5, env=env, checkpoint=run, deterministic=False)
    stochastic.reset(seed=11)
    first = [stochastic.act(obs) for obs in seen]
    stochastic.reset(seed=11)
    assert [stochastic.act(obs) for obs in seen] == first  # reproducible from the seed
    assert all(env.action_space(a).contains(x) for acts in first for a, x in acts.items())


def test_trained_policy_continuous_actions_are_unsquashed_into_the_box(continuous_run):
    import ray

    run = continuous_run
    assert not ray.is_initialized()
    rows = _rows(run)
    assert [r["iteration"] for r in rows] == [1, 2] and all(r["episodes"] == BATCH // 25 for r in rows)
    assert json.loads((run / "behaviour.json").read_text())["hyperparameters"]["num_env_runners"] == 1
    assert sorted(p.name for p in run.glob("iter_*")) == ["iter_00002"]  # the last iteration is always saved
    from ray.rllib.utils.spaces.space_utils import unsquash_action

    spec = envs.get(CONTINUOUS)
    env, seen = _observations(spec)
    policy = TrainedPolicy(spec, env.possible_agents, env=env, checkpoint=run)
    for obs in seen:
        actions = policy.act(obs)
        for agent, action in actions.items():
            space = env.action_space(agent)
            assert isinstance(space, gym.spaces.Box) and action.dtype == np.float32 and space.contains(action)
            assert np.all(action >= 0.0) and np.all(action <= 1.0)
        agents = list(obs)
        direct = _direct_actions(run / "iter_00002", "shared", np.stack([obs[a] for a in agents]))
        for agent, raw in zip(agents, direct):
            expected = np.clip(unsquash_action(raw.astype(np.float64), env.action_space(agent)), 0.0, 1.0)
            np.testing.assert_allclose(actions[agent], expected, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(np.stack(list(policy.act(obs).values())), np.stack(list(actions.values())))
    stochastic = TrainedPolicy(spec, env.possible_agents, seed=1, env=env, checkpoint=run, deterministic=False)
    for obs in seen:
        assert all(env.action_space(a).contains(x) for a, x in stochastic.act(obs).items())


def test_missing_or_malformed_checkpoints_raise_usage_errors(tmp_path, discrete_run):
    spec = envs.get(DISCRETE)
    agents = ["agent_0", "agent_1", "agent_2"]
    missing = tmp_path / "nope"
    with pytest.raises(UsageError, match="rlcf train-behaviour") as info:
        TrainedPolicy(spec, agents, checkpoint=missing)
    assert str(missing) in str(info.value)
    with pytest.raises(UsageError, match="checkpoint=PATH"):
        TrainedPolicy(spec, agents)
    with pytest.raises(UsageError, match="iter_"):
        TrainedPolicy(spec, agents, checkpoint=tmp_path)  # an empty folder
    broken = tmp_path / "iter_00001"
    broken.mkdir()
    (broken / CHECKPOINT_META).write_text("{not json")
    with pytest.raises(UsageError, match=str(broken)):
        TrainedPolicy(spec, agents, checkpoint=broken)
    (broken / CHECKPOINT_META).write_text(json.dumps({"env_id": DISCRETE, "modules": {"shared": agents}}))
    with pytest.raises(UsageError, match="lacks module folder"):
        TrainedPolicy(spec, agents, checkpoint=broken)
    run, _ = discrete_run
    with pytest.raises(UsageError, match="trained on 'mpe-simple_spread-discrete'"):
        TrainedPolicy(envs.get(CONTINUOUS), agents, checkpoint=run)


def test_training_refuses_bad_input_before_starting_ray(tmp_path, discrete_run):
    run, _ = discrete_run
    with pytest.raises(UsageError, match="already exists"):
        train_behaviour(DISCRETE, run.parent.parent, iterations=1)
    with pytest.raises(UsageError, match="num_env_runners"):
        train_behaviour(DISCRETE, tmp_path, num_env_runners=3)
    with pytest.raises(UsageError, match="iterations"):
        train_behaviour(DISCRETE, tmp_path, iterations=0)
    with pytest.raises(UsageError, match="unknown env"):
        train_behaviour("mpe-nope", tmp_path)


def test_module_groups_share_identical_spaces_only():
    spread = envs.get(DISCRETE).make()
    assert module_groups(spread) == {"shared": ["agent_0", "agent_1", "agent_2"]}
    assert module_groups(spread, shared_policy=False) == {a: [a] for a in spread.possible_agents}
    world = envs.get("mpe-simple_world_comm").make()
    groups = module_groups(world)
    assert groups == {"leadadversary": ["leadadversary_0"], "adversary": ["adversary_0", "adversary_1", "adversary_2"]}
    with pytest.raises(UsageError, match="shared_policy=True"):
        module_groups(world, shared_policy=True)


def test_cli_arguments_and_cheap_import():
    args = _parse(
        ["train-behaviour", DISCRETE, "--iterations", "3", "--seed", "2", "--out-dir", "x", "--checkpoint-every", "2"]
    )
    assert (args.env, args.iterations, args.seed, args.out_dir, args.checkpoint_every) == (DISCRETE, 3, 2, "x", 2)
    code = (
        "import sys, rlcf.envs.behaviour.train_command, rlcf.envs.behaviour.ppo_train, rlcf.envs.behaviour.trained; "
        "print(sorted(m for m in ('ray', 'torch') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
