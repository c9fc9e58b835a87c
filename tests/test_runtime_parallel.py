"""Ray at scale in one process's local Ray: rollout actors (with a killed actor), evaluation across actors,
data-parallel training with Ray Train, and launch's argument handling and shipped wheel."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

from rlcf.errors import CorruptDatasetError, UsageError
from rlcf.runtime.jobs import build_wheel, parse_launch_args


# -- rlcf launch: arguments and the shipped wheel ------------------------------------------------------------------


def test_launch_options_may_stand_anywhere_and_a_config_means_train(monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    spec = parse_launch_args(["configs/cfcql/mpe_spread-medium.yaml", "run.seed=1", "--address", "10.0.0.1:8265", "--no-wait"])
    assert spec.command == ["train", "configs/cfcql/mpe_spread-medium.yaml", "run.seed=1"]
    assert spec.address == "http://10.0.0.1:8265" and not spec.wait
    spec = parse_launch_args(["--address=http://h:8265", "collect", "mpe-simple_spread", "--episodes", "5", "--env", "A=b"])
    assert spec.command == ["collect", "mpe-simple_spread", "--episodes", "5"] and spec.env == {"A": "b"}
    # After '--' everything belongs to the job, even an option launch also has.
    spec = parse_launch_args(["--address", "http://h:8265", "--", "rollout", "--python", "x"])
    assert spec.command == ["rollout", "--python", "x"] and spec.python is None
    with pytest.raises(UsageError, match="--no-wait needs --address"):
        parse_launch_args(["--no-wait", "cfcql"])
    with pytest.raises(UsageError, match="no command"):
        parse_launch_args(["--address", "http://h:8265"])
    with pytest.raises(UsageError, match="dashboard address"):
        parse_launch_args(["cfcql", "--address", "ray://h:10001"])
    monkeypatch.setenv("RAY_ADDRESS", "http://from-env:8265")
    assert parse_launch_args(["cfcql"]).address == "http://from-env:8265"


def test_shipped_wheel_carries_rlcf_code_but_no_requirements(tmp_path):
    import base64
    import hashlib

    wheel = build_wheel(tmp_path)
    assert build_wheel(tmp_path) == wheel, "an unchanged source tree reuses the cached wheel"
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        assert "rlcf/algos/cfcql.py" in names and "rlcf/envs/marl/mpe.py" in names and "rlcf/reward_fns/defacto.py" in names
        meta = z.read(next(n for n in names if n.endswith("METADATA"))).decode()
        assert "Name: rlcf" in meta and "Requires-Dist" not in meta
        record = z.read(next(n for n in names if n.endswith("RECORD"))).decode().splitlines()
        for line in record:
            name, digest, size = line.rsplit(",", 2)
            if digest:  # every file's hash matches, so pip accepts the rewritten wheel
                data = z.read(name)
                want = "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
                assert digest == want and int(size) == len(data), name


@pytest.mark.ray
def test_launch_without_an_address_runs_the_job_on_a_local_ray(tmp_path):
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env["RLCF_CACHE"] = str(tmp_path / "cache")
    proc = subprocess.run([sys.executable, "-m", "rlcf.cli", "launch", "list", "algos", "--num-cpus", "1"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert '"status": "SUCCEEDED"' in proc.stderr and "cfcql" in proc.stdout


# -- rollout actors ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    from rlcf.algos.llm_common import TinyLMConfig, build_tiny_lm
    from rlcf.envs.text.grounded_qa import completion_for, grounded_qa_rows

    out = tmp_path_factory.mktemp("model") / "lm"
    corpus = [r["prompt"] + completion_for(r) for r in grounded_qa_rows("train", 60)]
    build_tiny_lm(out, corpus, TinyLMConfig(hidden_size=32, layers=1, heads=2, kv_heads=1, intermediate_size=64))
    return out


def _key(rows):
    return [(r["prompt_id"], r["group_index"], r["completion"], r["reward"], r["reward/answer"]) for r in rows]


@pytest.mark.ray
def test_rollouts_survive_a_killed_actor_with_every_row_exactly_once(tiny_model, tmp_path, caplog):
    from rlcf.runtime.rollouts import RolloutConfig, generate_rollouts, load_rollouts, prompt_rows

    rows = prompt_rows("grounded_qa", docs=6)  # 18 prompts: pos / neg / random of 6 documents
    config = RolloutConfig(model=str(tiny_model), num_generations=3, max_new_tokens=10, rewards=("format", "answer"))
    local = generate_rollouts(config, rows, actors=0, progress=False)
    killed = []

    def kill_after_first_shard(pool, done):
        if done == 1 and not killed:
            pool.kill_one()
            killed.append(done)

    out = tmp_path / "rollouts"
    distributed = generate_rollouts(config, rows, actors=2, prompts_per_shard=2, out=out, on_progress=kill_after_first_shard,
                                    progress=False)
    assert killed and "rollout actor died" in caplog.text
    assert len(distributed) == 18 * 3
    assert _key(distributed) == _key(local), "same completions and rewards whichever actor ran a prompt"
    ds = load_rollouts(out)
    assert len(ds) == 54 and sorted(set(ds["prompt_id"])) == list(range(18))
    assert set(ds.column_names) >= {"prompt_id", "group_index", "prompt", "completion", "reward/format", "reward/answer",
                                    "reward", "variant", "solution"}
    assert json.loads((out / "meta.json").read_text())["rows"] == 54
    # Sampling differs across the completions of a group (seeded per prompt, not per completion).
    assert len({r["completion"] for r in distributed if r["prompt_id"] == 0}) > 1


def test_shards_cover_every_row_once_and_shrink_at_the_end_for_several_actors():
    from rlcf.runtime.rollouts import split_shards

    rows = [{"prompt_id": i} for i in range(30)]
    for workers in (0, 1, 2, 3):
        shards = split_shards(rows, 4, workers)
        assert [r for s in shards for r in s] == rows
        sizes = [len(s) for s in shards]
        if workers <= 1:
            assert sizes == [4] * 7 + [2]
        else:  # at least the last 2 * workers * 4 prompts one per shard: actors finish within about one prompt
            ones = sizes.index(1)
            assert set(sizes[:ones]) == {4} and set(sizes[ones:]) == {1} and len(sizes) - ones >= 2 * workers * 4
    assert [len(s) for s in split_shards(rows[:5], 4, 2)] == [1] * 5
    assert [len(s) for s in split_shards(rows, 1, 2)] == [1] * 30


@pytest.mark.ray
def test_kept_rollout_actors_fetch_each_weights_version_once(tiny_model):
    import torch

    from rlcf.runtime.rollouts import RolloutActors, RolloutConfig, RolloutWorker, generate_rollouts, prompt_rows

    rows = prompt_rows("grounded_qa", docs=3)  # 9 prompts
    config = RolloutConfig(model=str(tiny_model), num_generations=2, max_new_tokens=8, rewards=("answer",))
    local = RolloutWorker(config)
    gen = torch.Generator().manual_seed(0)
    new = {k: v + 0.5 * torch.randn(v.shape, generator=gen) if v.is_floating_point() else v
           for k, v in local.model.state_dict().items()}
    killed = []

    def kill_once(pool, done):
        if done == 1 and not killed:
            pool.kill_one()
            killed.append(done)

    with RolloutActors(config, 2) as actors:
        before = actors.generate(rows, prompts_per_shard=2, progress=False)
        assert _key(before) == _key(generate_rollouts(config, rows, actors=0, progress=False))
        assert actors.set_weights(new) == 1
        after = actors.generate(rows, prompts_per_shard=2, progress=False)
        again = actors.generate(rows, prompts_per_shard=2, progress=False)
        stats = actors.stats()
        assert [s["weight_loads"] for s in stats] == [1, 1], "each actor fetched version 1 once, not once per call"
        assert {s["weights_version"] for s in stats} == {1}
        pids = {s["pid"] for s in stats}
        # An actor that replaces a dead one fetches the current version on its first shard.
        replaced = actors.generate(rows, prompts_per_shard=2, progress=False, on_progress=kill_once)
        assert killed and len({s["pid"] for s in actors.stats()} - pids) == 1
    assert local.load_weights(1, [new]) and not local.load_weights(1, [new])
    expected = _key(local.run(rows))
    assert sorted(_key(after)) == sorted(expected) and _key(again) == _key(after) == _key(replaced)
    assert _key(after) != _key(before), "the new weights sample different completions"


def test_rollout_inputs_and_outputs_are_checked(tiny_model, tmp_path):
    from rlcf.runtime.rollouts import RolloutConfig, generate_rollouts, load_rollouts, prompt_rows

    with pytest.raises(UsageError, match="unknown reward function 'nope'"):
        RolloutConfig(model=str(tiny_model), rewards=("format", "nope"))
    with pytest.raises(UsageError, match="exactly one prompt source"):
        prompt_rows()
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "x"}\n')
    with pytest.raises(UsageError, match="no 'prompt' column"):
        prompt_rows(data=str(bad))
    good = tmp_path / "prompts.jsonl"
    good.write_text("".join(json.dumps({"prompt": f"question: what is alex's city?\nfacts:\n1. alex's city is {c}.\n",
                                        "solution": c, "variant": "pos", "evidence": [1], "non_evidence": []}) + "\n"
                            for c in ("oslo", "rome")))
    config = RolloutConfig(model=str(tiny_model), num_generations=2, max_new_tokens=6, rewards=("answer",), temperature=0)
    out = tmp_path / "r"
    rows = generate_rollouts(config, prompt_rows(data=str(good)), actors=0, out=out, progress=False)
    assert len(rows) == 4 and rows[0]["completion"] == rows[1]["completion"], "temperature 0 is greedy"
    with pytest.raises(UsageError, match="exists"):
        generate_rollouts(config, prompt_rows(data=str(good)), actors=0, out=out, progress=False)
    meta = json.loads((out / "meta.json").read_text())
    (out / "meta.json").write_text(json.dumps({**meta, "rows": 5}))
    with pytest.raises(CorruptDatasetError, match="4 rows but its meta.json says 5"):
        load_rollouts(out)


# -- evaluation across actors ------------------------------------------------------------------------------------


@pytest.mark.ray
def test_evaluation_does_not_depend_on_the_number_of_actors():
    from rlcf.eval.runner import evaluate_policy

    one = evaluate_policy("mpe-simple_spread", "random", episodes=10, seed=5)
    two = evaluate_policy("mpe-simple_spread", "random", episodes=10, seed=5, actors=2, episodes_per_task=3)
    np.testing.assert_array_equal(one.returns, two.returns)
    assert one.episode_seeds == two.episode_seeds
    other = evaluate_policy("mpe-simple_spread", "random", episodes=10, seed=6, actors=2)
    assert not np.array_equal(one.returns, other.returns)


# -- data-parallel training with Ray Train ---------------------------------------------------------------------------


@pytest.mark.ray
@pytest.mark.slow
def test_cfcql_trains_on_two_ray_train_workers_and_resumes(tmp_path, monkeypatch):
    from rlcf.algorithm import train
    from rlcf.data.collect import collect_dataset
    from rlcf.runs import Run

    monkeypatch.chdir(tmp_path)
    collect_dataset("mpe-simple_spread", policy="random", episodes=6, actors=0, references=False,
                    dataset_id="rlcf/mpe-simple_spread/dp-v0")
    overrides = ["config.dataset=rlcf/mpe-simple_spread/dp-v0", "config.eval_episodes=2", "config.batch_size=32",
                 "run.total_steps=12", "run.log_every=6", "run.checkpoint_every=6", "run.num_workers=2", "run.tensorboard=false"]
    run, final = train(None, overrides, algo="cfcql")
    assert final["train/workers"] == 2 and final["train/workers_in_sync"] == 1.0
    assert [s for s, _ in run.checkpoints()] == [6, 12]
    rows = [r for r in Run.open(run.path).read_metrics() if "losses/td" in r]
    assert [r["step"] for r in rows] == [6, 12], "only rank 0 logs"
    resumed, final = train(None, ["run.total_steps=18"], resume=run.path)
    assert resumed.path == run.path and final["train/workers_in_sync"] == 1.0
    assert [s for s, _ in Run.open(run.path).checkpoints()][-1] == 18


def test_asking_for_more_workers_than_the_cluster_has_is_a_clear_error(tmp_path, monkeypatch):
    from rlcf.algorithm import train

    monkeypatch.chdir(tmp_path)
    with pytest.raises(UsageError, match=r"run.num_workers=64 asks for 64 CPUs"):
        train(None, ["config.dataset=rlcf/mpe-simple_spread/none-v0", "run.num_workers=64"], algo="cfcql")


# -- TRL trainers on several processes (torchrun), evaluated by Ray rollout actors -------------------------------


@pytest.mark.slow
@pytest.mark.ray
@pytest.mark.parametrize("algo", ["defacto", "dna-train"])
def test_trl_trainers_train_on_two_torchrun_processes(algo, tmp_path):
    from rlcf.algorithm import train
    from rlcf.cli import main
    from rlcf.runs import Run

    tiny = {
        "defacto": ["config.sft_docs=60", "config.train_docs=12", "config.eval_docs=6", "config.prompts_per_step=2"],
        "dna-train": ["config.sft_pairs=40", "config.train_pairs=12", "config.eval_pairs=6", "config.pairs_per_step=2"],
    }[algo]
    overrides = [f"run.out_dir={tmp_path}", "run.total_steps=2", "run.log_every=1", "run.checkpoint_every=2",
                 "run.num_workers=2", "config.tiny.hidden_size=32", "config.tiny.layers=1", "config.tiny.intermediate_size=64",
                 "config.sft_epochs=1", "config.num_generations=2", "config.max_completion_length=12",
                 "config.eval_max_new_tokens=12", *tiny]
    run, final = train(None, overrides, algo=algo)
    assert final and all(k.startswith("eval/") for k in final), "rank 0's final scores come back to the driver"
    rows = Run.open(run.path).read_metrics()
    trained = [r for r in rows if "train/processes" in r]
    assert trained and all(r["train/processes"] == 2 for r in trained), "both processes trained"
    steps = [r["step"] for r in trained if "train/loss" in r]
    assert steps == [1, 2], "only rank 0 logs"
    if algo == "defacto":  # per-variant reward means cover both processes' completions: 2 × 2 prompts × 2 each
        for row in (r for r in trained if "train/loss" in r):
            assert sum(row.get(f"rewards/format/{v}/count", 0) for v in ("pos", "neg", "random")) == 8, row
    assert (run.path / "final_model" / "config.json").exists() and (run.path / "eval.json").exists()
    # The same run evaluated by two Ray rollout actors.
    assert main(["eval", str(run.path), "--actors", "2", "--json", str(tmp_path / "scores.json")]) == 0
    scores = json.loads((tmp_path / "scores.json").read_text())[str(run.path)]
    assert set(scores) == ({"pos", "neg", "random"} if algo == "defacto" else {"real", "cf", "pair"})
