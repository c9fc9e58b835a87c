"""Run folders, metrics, atomic checkpoints and resume, driven through a real (toy) user algorithm."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from rlcf.algorithm import train
from rlcf.atomic import atomic_dir, atomic_write_text
from rlcf.config import load_experiment
from rlcf.errors import CheckpointError, ConfigError, UsageError
from rlcf.runs import Run, validate_metric_key

TOY = "toy_plugin:ToyRegression"


def experiment(tmp_path: Path, *overrides: str, name: str = "toy") -> dict:
    return {
        "algo": TOY,
        "run": {"name": name, "out_dir": str(tmp_path / "runs"), "total_steps": 20, "log_every": 1,
                "checkpoint_every": 5, "keep_checkpoints": 2, "device": "cpu"},
        "config": {"lr": 0.05},
    }


def test_run_folder_layout_and_metrics(tmp_path):
    run, final = train(experiment(tmp_path))
    assert run.path.parent == tmp_path / "runs" / "toyregression"
    assert run.path.name.startswith("toy-")
    # the resolved config alone reproduces the experiment
    again = load_experiment(run.path / "config.yaml")
    assert again.algo == TOY and again.config.lr == 0.05 and again.run.total_steps == 20
    rows = run.read_metrics()
    assert [r["step"] for r in rows if "losses/mse" in r] == list(range(1, 21))
    assert rows[-1]["eval/toy/weight_error"] == pytest.approx(final["eval/toy/weight_error"])
    # the loss falls: SGD on a noiseless-ish regression
    losses = [r["losses/mse"] for r in rows if "losses/mse" in r]
    assert losses[-1] < 0.5 * losses[0]
    assert list((run.path / "tb").glob("events.out.tfevents.*")), "TensorBoard event file written"
    # keep_checkpoints=2: only the two newest survive
    assert [s for s, _ in run.checkpoints()] == [15, 20]


def test_metric_keys_must_be_namespaced():
    validate_metric_key("eval/mpe/simple_spread/normalized_score")
    validate_metric_key("rewards/<fn>/mean")
    for bad in ("loss", "/loss", "losses/", "losses//td", "has space/x"):
        with pytest.raises(UsageError, match="not namespaced"):
            validate_metric_key(bad)


def test_non_finite_metrics_are_written_as_null(tmp_path):
    run = Run.create(load_experiment(experiment(tmp_path)))
    run.log({"losses/a": float("nan"), "losses/b": torch.tensor(2.5)}, step=1)
    run.close()
    assert run.read_metrics()[0]["losses/a"] is None and run.read_metrics()[0]["losses/b"] == 2.5


def test_crash_mid_checkpoint_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    run = Run.create(load_experiment(experiment(tmp_path)))
    good = run.save_checkpoint({"payload": torch.arange(4)}, step=5)
    before = good.read_bytes()

    def torn_save(obj, fh):  # writes part of the file, then the process "dies"
        fh.write(b"PK\x03\x04partial")
        raise KeyboardInterrupt("killed mid-write")

    monkeypatch.setattr(torch, "save", torn_save)
    with pytest.raises(KeyboardInterrupt):
        run.save_checkpoint({"payload": torch.arange(8)}, step=10)
    monkeypatch.undo()
    assert good.read_bytes() == before
    assert not run.checkpoint_path(10).exists(), "a torn checkpoint must never appear under its final name"
    assert [p.name for p in run.checkpoint_dir.iterdir()] == [good.name], "the temporary file is cleaned up"
    assert run.load_checkpoint()["payload"].tolist() == [0, 1, 2, 3]


def test_damaged_newest_checkpoint_falls_back_to_the_previous_one(tmp_path):
    run = Run.create(load_experiment(experiment(tmp_path)))
    run.save_checkpoint({"v": 1}, step=5)
    newest = run.save_checkpoint({"v": 2}, step=10)
    newest.write_bytes(newest.read_bytes()[:20])  # damaged on disk after it was written
    assert run.load_checkpoint()["v"] == 1
    with pytest.raises(CheckpointError, match="cannot be read"):
        run.load_checkpoint(step=10)
    with pytest.raises(CheckpointError, match="no checkpoint at step 7; it has: 5, 10"):
        run.load_checkpoint(step=7)


def test_no_checkpoint_is_a_clear_error(tmp_path):
    run = Run.create(load_experiment(experiment(tmp_path)))
    with pytest.raises(CheckpointError, match="no checkpoint to resume from"):
        run.load_checkpoint()


def _final_weights(run: Run) -> torch.Tensor:
    return run.load_checkpoint()["algorithm"]["model"]["weight"]


def test_resume_reproduces_an_uninterrupted_run_exactly(tmp_path):
    straight, _ = train(experiment(tmp_path, name="straight"))
    # A run that stops after 10 steps (its budget), then is extended to 20 by resuming.
    short_exp = experiment(tmp_path, name="split")
    short_exp["run"]["total_steps"] = 10
    first, _ = train(short_exp)
    resumed, _ = train(short_exp, ["run.total_steps=20"], resume=True)
    assert resumed.path == first.path
    assert torch.equal(_final_weights(straight), _final_weights(resumed))
    a = [(r["step"], r.get("losses/mse")) for r in straight.read_metrics() if "losses/mse" in r]
    b = [(r["step"], r.get("losses/mse")) for r in resumed.read_metrics() if "losses/mse" in r]
    assert a == b, "the resumed run logs exactly the same losses at the same steps"


def test_resume_refuses_changes_that_make_it_another_experiment(tmp_path):
    first, _ = train(experiment(tmp_path))
    with pytest.raises(ConfigError) as info:
        train(None, ["config.lr=0.5"], resume=first.path)
    assert info.value.field == "config.lr" and "cannot change when resuming" in str(info.value)
    with pytest.raises(UsageError, match="no run of .* named 'other'"):
        train(experiment(tmp_path, name="other"), resume=True)


def test_killed_run_resumes_from_its_last_checkpoint_via_the_cli(tmp_path):
    """SIGKILL at step 13 (after the checkpoint at 10); `rlcf train --resume` finishes it identically."""
    from tests_support import plugin_pythonpath

    cfg = tmp_path / "toy.yaml"
    cfg.write_text(json.dumps(experiment(tmp_path)))  # JSON is YAML
    env = plugin_pythonpath()
    cmd = [sys.executable, "-m", "rlcf.cli", "--quiet", "train", str(cfg)]
    killed = subprocess.run(cmd, env={**env, "RLCF_TOY_CRASH_AT": "13"}, capture_output=True, text=True)
    assert killed.returncode == -9, killed.stderr
    (folder,) = (tmp_path / "runs" / "toyregression").iterdir()
    run = Run.open(folder)
    assert [s for s, _ in run.checkpoints()] == [5, 10]
    assert max(r["step"] for r in run.read_metrics()) == 12  # logged past the checkpoint before dying

    done = subprocess.run(cmd + ["--resume"], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1])["run"] == str(folder)
    steps = [r["step"] for r in run.read_metrics() if "losses/mse" in r]
    assert steps == list(range(1, 21)), "rows after the checkpoint are replaced, not duplicated"

    straight, _ = train(experiment(tmp_path, name="straight"))
    assert torch.equal(_final_weights(Run.open(folder)), _final_weights(straight))


def test_killed_run_has_every_checkpointed_step_in_tensorboard(tmp_path):
    """SIGKILL soon after a checkpoint: each step logged up to that checkpoint is in an event file, not only in
    metrics.jsonl; the resumed run's event files then hold each step once, with the uninterrupted run's values."""
    from tests_support import plugin_pythonpath, tensorboard_scalars

    cfg = tmp_path / "toy.yaml"
    cfg.write_text(json.dumps(experiment(tmp_path)))
    env = plugin_pythonpath()
    cmd = [sys.executable, "-m", "rlcf.cli", "--quiet", "train", str(cfg)]
    killed = subprocess.run(cmd, env={**env, "RLCF_TOY_CRASH_AT": "13"}, capture_output=True, text=True)
    assert killed.returncode == -9, killed.stderr
    (folder,) = (tmp_path / "runs" / "toyregression").iterdir()
    logged = {r["step"]: r["losses/mse"] for r in Run.open(folder).read_metrics() if "losses/mse" in r}
    in_tb = tensorboard_scalars(folder / "tb").get("losses/mse", {})
    assert set(range(1, 11)) <= set(in_tb), f"steps up to the checkpoint at 10 missing from TensorBoard: {sorted(in_tb)}"
    assert all(in_tb[s] == pytest.approx(logged[s]) for s in in_tb)

    done = subprocess.run(cmd + ["--resume"], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    in_tb = tensorboard_scalars(folder / "tb")["losses/mse"]
    logged = {r["step"]: r["losses/mse"] for r in Run.open(folder).read_metrics() if "losses/mse" in r}
    assert sorted(in_tb) == list(range(1, 21))
    assert all(in_tb[s] == pytest.approx(logged[s]) for s in in_tb)


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_signal_stops_training_with_a_checkpoint_and_resume_continues_exactly(sig, tmp_path):
    """Ctrl-C or SIGTERM during step 7 (checkpoints every 5): step 7 ends, a checkpoint at 7 is written, the logs
    are flushed, exit code 130 says how to resume; --resume then finishes exactly like an uninterrupted run."""
    from tests_support import plugin_pythonpath, tensorboard_scalars

    cfg = tmp_path / "toy.yaml"
    cfg.write_text(json.dumps(experiment(tmp_path)))
    env = plugin_pythonpath()
    cmd = [sys.executable, "-m", "rlcf.cli", "--quiet", "train", str(cfg)]
    stopped = subprocess.run(cmd, env={**env, "RLCF_TOY_SIGNAL_AT": f"7:{sig}"}, capture_output=True, text=True)
    (folder,) = (tmp_path / "runs" / "toyregression").iterdir()
    assert stopped.returncode == 130, stopped.stderr
    assert f"{sig} at step 7 of 20; checkpoint written. Resume with: rlcf train {folder} --resume" in stopped.stderr
    run = Run.open(folder)
    assert [s for s, _ in run.checkpoints()] == [5, 7]
    assert max(r["step"] for r in run.read_metrics()) == 7
    assert sorted(tensorboard_scalars(folder / "tb")["losses/mse"]) == list(range(1, 8))

    done = subprocess.run([sys.executable, "-m", "rlcf.cli", "--quiet", "train", str(folder), "--resume"],
                          env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    straight, _ = train(experiment(tmp_path, name="straight"))
    assert torch.equal(_final_weights(Run.open(folder)), _final_weights(straight))
    a = [(r["step"], r["losses/mse"]) for r in straight.read_metrics() if "losses/mse" in r]
    b = [(r["step"], r["losses/mse"]) for r in Run.open(folder).read_metrics() if "losses/mse" in r]
    assert a == b


def test_signal_handlers_are_restored_after_training(tmp_path):
    import signal

    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    train(experiment(tmp_path))
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before


def test_atomic_dir_appears_only_when_complete(tmp_path):
    target = tmp_path / "dataset"
    with pytest.raises(RuntimeError):
        with atomic_dir(target) as tmp:
            (tmp / "part").write_text("half")
            raise RuntimeError("crash while writing")
    assert not target.exists() and list(tmp_path.iterdir()) == []
    with atomic_dir(target) as tmp:
        (tmp / "data").write_text("v1")
    with pytest.raises(FileExistsError):
        with atomic_dir(target):
            pass
    with atomic_dir(target, overwrite=True) as tmp:
        (tmp / "data").write_text("v2")
    assert (target / "data").read_text() == "v2" and [p.name for p in tmp_path.iterdir()] == ["dataset"]
    atomic_write_text(tmp_path / "x.txt", "hello")
    assert (tmp_path / "x.txt").read_text() == "hello"
