"""The offline MARL algorithms train end to end on real rlcf datasets: every algorithm and action type runs,
checkpoints resume exactly, bad configs are refused, and CFCQL learns (its score rises over the untrained policy)."""

from __future__ import annotations

import warnings

import pytest
import torch

from rlcf.algorithm import train
from rlcf.data.collect import collect_dataset
from rlcf.errors import ConfigError
from rlcf.eval import EvaluationWarning, evaluate_policy
from rlcf.registry import envs

warnings.filterwarnings("ignore", category=EvaluationWarning)


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    import os

    root = tmp_path_factory.mktemp("store")
    old = os.environ.get("MINARI_DATASETS_PATH")
    os.environ["MINARI_DATASETS_PATH"] = str(root)
    ids = {}
    for env_id in ("mpe-simple_spread", "mpe-simple_spread-discrete"):
        ids[env_id] = collect_dataset(env_id, tier="expert", episodes=60, actors=0, ref_episodes=40, progress=False).dataset_id
    yield ids
    if old is not None:
        os.environ["MINARI_DATASETS_PATH"] = old


def tiny(tmp_path, dataset_id, steps=4, **config):
    return [
        f"config.dataset={dataset_id}",
        "config.batch_size=32",
        "config.eval_episodes=2",
        f"run.total_steps={steps}",
        "run.log_every=1",
        "run.checkpoint_every=2",
        f"run.out_dir={tmp_path}",
        "run.device=cpu",
        *[f"config.{k}={v}" for k, v in config.items()],
    ]


@pytest.mark.parametrize("algo", ["cfcql", "macql", "icql", "bc", "matd3bc"])
@pytest.mark.parametrize("env_id", ["mpe-simple_spread", "mpe-simple_spread-discrete"])
def test_every_algorithm_trains_and_evaluates(algo, env_id, datasets, tmp_path):
    if algo == "matd3bc" and env_id.endswith("discrete"):
        with pytest.raises(ConfigError, match="needs continuous actions"):
            train(None, tiny(tmp_path, datasets[env_id]), algo=algo)
        return
    run, final = train(None, tiny(tmp_path, datasets[env_id]), algo=algo)
    loss_keys = [k for k in final if k.startswith("losses/")]
    assert loss_keys and all(torch.isfinite(torch.tensor(final[k])) for k in loss_keys)
    score_key = f"eval/{env_id}/expert-v0/normalized_score"
    assert score_key in final
    assert [s for s, _ in run.checkpoints()][-1] == 4


@pytest.mark.parametrize("env_id", ["mpe-simple_spread", "mpe-simple_spread-discrete"])
def test_cfcql_resumes_exactly(env_id, datasets, tmp_path):
    straight, _ = train(None, tiny(tmp_path / "a", datasets[env_id], steps=6, lambda_mode="softmax"), algo="cfcql")
    first, _ = train(None, tiny(tmp_path / "b", datasets[env_id], steps=4, lambda_mode="softmax"), algo="cfcql")
    resumed, _ = train(None, ["run.total_steps=6"], resume=first.path)
    a = straight.load_checkpoint()["algorithm"]
    b = resumed.load_checkpoint()["algorithm"]
    net = "agent_q" if env_id.endswith("discrete") else "critic"
    for key, value in a[net].items():
        assert torch.equal(value, b[net][key]), key


def test_cfcql_stopped_by_ctrl_c_resumes_exactly(datasets, tmp_path):
    """`rlcf train` sent SIGINT from outside mid-run: it finishes its step, checkpoints there (no regular
    checkpoint is due), exits 130 naming the resume command; --resume then ends exactly like a run never stopped."""
    import signal
    import subprocess
    import sys
    import time

    from rlcf.runs import Run

    steps = 3000  # far more than run before the signal arrives; the resumed run does only a few before the check
    overrides = [*tiny(tmp_path / "b", datasets["mpe-simple_spread"], steps=steps), "run.checkpoint_every=100000"]
    proc = subprocess.Popen([sys.executable, "-m", "rlcf.cli", "--quiet", "train", "cfcql", *overrides],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        rows = [line for f in (tmp_path / "b").glob("cfcql/*/metrics.jsonl") for line in f.read_text().splitlines()]
        if len(rows) >= 5:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    (folder,) = (tmp_path / "b" / "cfcql").iterdir()
    run = Run.open(folder)
    ((stopped_at, _),) = run.checkpoints()
    assert 5 <= stopped_at < steps and max(r["step"] for r in run.read_metrics()) == stopped_at
    assert f"SIGINT at step {stopped_at} of {steps}; checkpoint written. Resume with: rlcf train {folder} --resume" in err

    # Both runs end a few steps after the stop: resumed with a smaller budget, and one never stopped.
    end = stopped_at + 3
    resumed, _ = train(None, [f"run.total_steps={end}"], resume=folder)
    straight, _ = train(None, [*tiny(tmp_path / "a", datasets["mpe-simple_spread"], steps=end), "run.checkpoint_every=100000"],
                        algo="cfcql")
    a, b = straight.load_checkpoint()["algorithm"], resumed.load_checkpoint()["algorithm"]
    for key, value in a["critic"].items():
        assert torch.equal(value, b["critic"][key]), key

    def losses(r):
        return [{k: v for k, v in row.items() if k.startswith("losses/") or k == "step"} for row in r.read_metrics()
                if any(k.startswith("losses/") for k in row)]

    assert losses(straight) == losses(resumed)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("algo", "env_id"), [("cfcql", "mpe-simple_spread"), ("matd3bc", "mpe-simple_spread"), ("macql", "mpe-simple_spread-discrete")]
)
def test_compiled_losses_match_eager(algo, env_id, datasets, tmp_path):
    """``config.compile=true`` runs the same updates: the networks after 6 steps agree with eager mode's."""
    extra = {"lambda_mode": "softmax"} if algo == "cfcql" else {}
    eager, _ = train(None, tiny(tmp_path / "eager", datasets[env_id], steps=6, **extra), algo=algo)
    compiled, _ = train(None, tiny(tmp_path / "compiled", datasets[env_id], steps=6, compile="true", **extra), algo=algo)
    a, b = eager.load_checkpoint()["algorithm"], compiled.load_checkpoint()["algorithm"]
    nets = ("agent_q", "mixer") if env_id.endswith("discrete") else ("critic", "actor")
    nets += ("behaviour",) if algo == "cfcql" else ()  # λ's behaviour model is CFCQL's alone
    for net in nets:
        for key, value in a[net].items():
            torch.testing.assert_close(b[net][key], value, rtol=1e-4, atol=1e-5, msg=f"{net}.{key}")


def test_bad_algorithm_configs_name_the_field(datasets, tmp_path):
    with pytest.raises(ConfigError, match="config.lambda_mode"):
        train(None, tiny(tmp_path, datasets["mpe-simple_spread"], lambda_mode="soft"), algo="cfcql")
    with pytest.raises(ConfigError, match="config.cql_alpha"):
        train(None, tiny(tmp_path, datasets["mpe-simple_spread"], cql_alpha=-1), algo="cfcql")


@pytest.mark.slow
def test_cfcql_learns_on_expert_data(datasets, tmp_path):
    """Discrete CFCQL for 250 steps: the greedy policy's normalized score rises well above the untrained one's."""
    spec = envs.get("mpe-simple_spread-discrete")
    overrides = tiny(tmp_path, datasets["mpe-simple_spread-discrete"], steps=250) + ["config.batch_size=128", "config.eval_episodes=32"]
    run, final = train(None, overrides, algo="cfcql")
    learned = final["eval/mpe-simple_spread-discrete/expert-v0/normalized_score"]
    untrained_algo = type(run.algorithm)(run.algorithm.config, run.experiment.run, torch.device("cpu"))
    meta = run.algorithm.data.metadata
    untrained = evaluate_policy(
        spec, untrained_algo.team_policy(), episodes=32, seed=10_000, ref_min=meta["ref_min_score"], ref_max=meta["ref_max_score"]
    ).normalized_score
    assert learned > untrained + 20, (learned, untrained)


def test_rlcf_eval_reports_runs_from_their_folders(datasets, tmp_path, capsys):
    import json

    from rlcf.cli import main

    folders = []
    for seed in (0, 1):
        run, _ = train(None, tiny(tmp_path, datasets["mpe-simple_spread"]) + [f"run.seed={seed}", f"run.name=s{seed}"], algo="bc")
        folders.append(str(run.path))
    out, plot = tmp_path / "marl_eval.json", tmp_path / "scores.png"
    assert main(["eval", *folders, "--episodes", "4", "--json", str(out), "--plot", str(plot)]) == 0
    captured = capsys.readouterr()
    assert "IQM" in captured.out and "seed 1: normalized score" in captured.err  # the table on stdout, progress on stderr
    assert main(["eval", *folders, "--episodes", "4", "--jsonl"]) == 0  # machine-readable stdout
    captured = capsys.readouterr()
    rows = [json.loads(line) for line in captured.out.splitlines()]
    assert [r["run_seed"] for r in rows] == [0, 1] and all(r["task"] == "mpe-simple_spread/expert-v0" for r in rows)
    assert "IQM" in captured.err
    data = json.loads(out.read_text())
    assert "bc" in json.dumps(data) and plot.read_bytes()[:4] == b"\x89PNG"
    assert main(["eval", str(tmp_path / "nope")]) == 2


def test_td_methods_keep_their_settings_and_defaults():
    """Each TD method takes the settings it uses, with the defaults it always had, and no fields of other methods."""
    from rlcf.config import load_experiment

    defaults = {name: load_experiment(None, algo=name).config for name in ("cfcql", "macql", "icql", "matd3bc")}
    td = {"critic_lr": 1e-3, "actor_lr": 1e-3, "tau": 0.01, "target_noise": 0.05, "critic_grad_clip": 0.5, "reward_scale": 1.0}
    cql = {"cql_alpha": 5.0, "num_sampled_actions": 10, "sample_sources": "uniform+policy", "policy_sample_noise": 0.2,
           "lse_temperature": 1.0, "action_reg": 1e-3, "target_update_every": 25, "actor_every": 5}
    expected = {
        "cfcql": {**td, **cql, "lambda_mode": "uniform", "lambda_temperature": 1.0, "behaviour_lr": 1e-3, "mixer_embed": 32},
        "macql": {**td, **cql, "joint_samples": 100, "mixer_embed": 32, "hypernet_embed": 64},
        "icql": {**td, **cql},
        "matd3bc": {**td, "actor_every": 2, "bc_alpha": 2.5},
    }
    for name, fields in expected.items():
        assert {k: getattr(defaults[name], k) for k in fields} == fields, name
    assert not hasattr(defaults["matd3bc"], "cql_alpha") and not hasattr(defaults["matd3bc"], "num_sampled_actions")
    assert not hasattr(defaults["icql"], "mixer_embed") and not hasattr(defaults["macql"], "lambda_mode")
    cfg = load_experiment(None, ["config.cql_alpha=0.5", "config.lambda_mode=uniform", "config.sample_sources=uniform"], algo="cfcql").config
    assert (cfg.cql_alpha, cfg.lambda_mode, cfg.sample_sources) == (0.5, "uniform", "uniform")


def test_configs_saved_before_the_td_base_still_load(tmp_path):
    """A run folder's config.yaml from when the baselines carried CFCQL's unused fields loads (with a warning);
    a misspelt key is still an error."""
    from rlcf.config import load_experiment

    old = {"algo": "matd3bc", "config": {"cql_alpha": 0.0, "lambda_mode": "uniform", "mixer_embed": 32, "bc_alpha": 2.0, "actor_every": 2}}
    with pytest.warns(UserWarning, match=r"config.cql_alpha, config.lambda_mode, config.mixer_embed"):
        exp = load_experiment(old)
    assert exp.config.bc_alpha == 2.0 and not hasattr(exp.config, "cql_alpha")
    with pytest.warns(UserWarning, match="config.lambda_mode"):
        assert load_experiment({"algo": "macql", "config": {"lambda_mode": "uniform", "joint_samples": 7}}).config.joint_samples == 7
    with pytest.raises(ConfigError, match="config.bc_alpah"):
        load_experiment({"algo": "matd3bc", "config": {"bc_alpah": 1.0}})
    with pytest.raises(ConfigError, match="config.cql_alpha"):  # CFCQL's fields are never retired for CFCQL
        load_experiment(None, ["config.cql_alpha=-1"], algo="cfcql")


_FAULTS_PER_STEP = """
import resource, sys, torch
from rlcf.device import keep_freed_cpu_memory
if not keep_freed_cpu_memory(sys.argv[1] == "on"):
    print("unsupported"); sys.exit()
def faults_per_step():
    x = torch.ones(4 << 20)  # 16 MB, like CFCQL's counterfactual rows at batch 1024
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(5):
        x = x + 1.0
    return (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 5
# The first calls grow the heap to the working set (small allocations can split a freed 16 MB hole, so that
# takes up to four calls); the count that matters is the steady state after it.
print(max([faults_per_step() for _ in range(8)][-3:]))
"""


def test_cpu_training_reuses_freed_activation_memory():
    """With rlcf's allocator setting, a step's 16 MB activations come from reused memory, not fresh page faults;
    with glibc's fixed initial threshold every step faults its 4096 pages in again.

    Each side runs in a fresh interpreter: in the test process the heap left by earlier tests (Ray's threads,
    fragmentation) decides where a 16 MB block lands, which made an in-process count depend on test order.
    """
    import subprocess
    import sys
    from pathlib import Path

    def measure(mode: str) -> str:
        run = subprocess.run([sys.executable, "-c", _FAULTS_PER_STEP, mode], capture_output=True, text=True,
                             cwd=Path(__file__).resolve().parents[1], timeout=120)
        assert run.returncode == 0, run.stderr[-2000:]
        return run.stdout.strip().splitlines()[-1]

    on = measure("on")
    if on == "unsupported":
        pytest.skip("needs glibc's mallopt")
    off = measure("off")
    assert float(on) < 100, (on, off)
    assert float(off) > 2000, (on, off)  # the A/B the setting exists for: 4096 pages per 16 MB step without it
