"""The command line: exit codes scripts can trust (0 ok, 2 bad usage/input, 1 failure), and its outputs."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import pytest

from rlcf.cli import main
from rlcf.registry import algos

TOY = "toy_plugin:ToyRegression"


@pytest.fixture
def toy_yaml(tmp_path):
    path = tmp_path / "toy-exp.yaml"
    path.write_text(
        f"algo: '{TOY}'\nrun:\n  out_dir: {tmp_path / 'runs'}\n  total_steps: 6\n  log_every: 2\n"
        "  checkpoint_every: 3\n  device: cpu\nconfig:\n  lr: 0.1\n"
    )
    return path


def test_help_and_version_exit_zero(capsys):
    assert main(["--help"]) == 0
    assert "train" in capsys.readouterr().out
    assert main(["--version"]) == 0
    assert main([]) == 2, "no command is a usage error"


@pytest.mark.parametrize("kind", ["envs", "suites", "policies", "rewards", "algos", "datasets"])
def test_list_every_kind(kind, capsys):
    assert main(["list", kind, "--json"]) == 0
    assert isinstance(json.loads(capsys.readouterr().out), list)


def test_list_shows_a_registered_plugin(capsys):
    import toy_plugin

    algos.register("toy_cli", toy_plugin.ToyRegression)
    try:
        assert main(["list", "algos", "--json"]) == 0
        rows = json.loads(capsys.readouterr().out)
        assert {"name": "toy_cli", "source": "code", "description": "Fit y = w·x with SGD on freshly sampled batches."} in rows
    finally:
        algos.unregister("toy_cli")


@pytest.mark.parametrize(
    "argv, message",
    [
        (["list", "gizmos"], "invalid choice: 'gizmos'"),
        (["train", "no_such_algo"], "unknown algorithm 'no_such_algo'"),
        (["train", "missing.yaml"], "config file 'missing.yaml' does not exist"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
    ],
)
def test_bad_usage_exits_2_with_a_message(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_bad_config_field_exits_2_and_names_the_field(toy_yaml, capsys):
    assert main(["train", str(toy_yaml), "config.lr=-1"]) == 2
    assert "config field 'config.lr': must be > 0, got -1.0" in capsys.readouterr().err
    assert main(["train", str(toy_yaml), "cofig.lr=1"]) == 2
    assert "unknown top-level key" in capsys.readouterr().err


def test_train_prints_the_run_and_final_metrics(toy_yaml, capsys):
    assert main(["--quiet", "train", str(toy_yaml)]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["run"].startswith(str(toy_yaml.parent / "runs" / "toyregression" / "toy-exp-"))
    assert "eval/toy/weight_error" in result["final"]


def test_a_failure_while_training_exits_1(toy_yaml, capsys):
    assert main(["--quiet", "train", str(toy_yaml), "config.fail_at=2"]) == 1
    assert "toy failure at step 2" in capsys.readouterr().err


def test_run_folder_needs_resume(toy_yaml, capsys):
    assert main(["--quiet", "train", str(toy_yaml)]) == 0
    folder = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["run"]
    assert main(["train", folder]) == 2
    assert "add --resume" in capsys.readouterr().err
    assert main(["--quiet", "train", folder, "--resume", "run.total_steps=9"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["run"] == folder


def test_config_prints_the_resolved_experiment(toy_yaml, capsys):
    assert main(["config", str(toy_yaml), "run.seed=7"]) == 0
    out = capsys.readouterr().out
    assert "seed: 7" in out and "lr: 0.1" in out and "batch_size: 16" in out
    assert main(["config", str(toy_yaml), "--fields"]) == 0
    assert "Samples per step." in capsys.readouterr().out


def test_launch_usage_errors_before_anything_starts(capsys, monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert main(["launch"]) == 2
    assert "no command to run" in capsys.readouterr().err
    assert main(["launch", "--help"]) == 0
    assert "Submit an rlcf command as a Ray job" in capsys.readouterr().out
    assert main(["launch", "cfcql", "config.nope=1", "--address", "http://127.0.0.1:9"]) == 2
    assert "config.nope" in capsys.readouterr().err  # validated here, before contacting the cluster
    assert main(["jobs", "list"]) == 2
    assert "pass --address" in capsys.readouterr().err


def test_console_script_exit_codes_in_a_real_process(toy_yaml):
    """The installed `rlcf` script, as a shell script would call it."""
    rlcf = [sys.executable, "-m", "rlcf.cli"]
    assert subprocess.run(rlcf + ["list", "algos"], capture_output=True).returncode == 0
    bad = subprocess.run(rlcf + ["train", "nope"], capture_output=True, text=True)
    assert bad.returncode == 2 and "unknown algorithm 'nope'" in bad.stderr


@pytest.mark.ray
def test_demo_runs_and_says_what_it_ran(tmp_path, capsys, caplog, monkeypatch):
    monkeypatch.delenv("MINARI_DATASETS_PATH", raising=False)  # the demo keeps its datasets in its folder
    caplog.set_level(logging.INFO, logger="rlcf.algos.llm_trainer")
    assert main(["--quiet", "demo", "--out-dir", str(tmp_path), "--episodes", "10"]) == 0
    # each LLM table once: in the stage summary, not also in the trainer's log
    assert not [r for r in caplog.records if r.name == "rlcf.algos.llm_trainer" and "scores:" in r.getMessage()]
    assert logging.getLogger("rlcf.algos.llm_trainer").level == logging.INFO  # restored after the demo
    out = capsys.readouterr().out
    assert "device 'auto' resolves to" in out
    assert "[1] RAN collect offline datasets" in out
    assert "rlcf/mpe-simple_spread-force/expert-v0: 10 episodes, 250 steps" in out
    assert (tmp_path / "datasets" / "rlcf" / "mpe-simple_spread-force" / "expert-v0").is_dir()
    assert "[2] RAN train CFCQL and BC" in out and "cfcql: 20 steps, normalized score" in out
    assert (tmp_path / "demo_scores.png").read_bytes()[:4] == b"\x89PNG"
    assert "[3] RAN DeFacto-style counterfactual GRPO" in out and "neg" in out
    assert "[4] RAN DNA-Train" in out and "pair" in out
    assert "demo finished: 4 stage(s) ran, 0 skipped" in out


def test_subcommands_come_from_the_commands_registry(capsys):
    """rlcf's own train-behaviour and a plug-in's command reach the CLI through rlcf.registry.commands; the
    core command line names no plug-in module."""
    import argparse
    import inspect

    import rlcf.cli
    from rlcf.cli_parts import CliCommand
    from rlcf.registry import commands

    assert "rlcf.envs" not in inspect.getsource(rlcf.cli)
    assert main(["train-behaviour", "--help"]) == 0
    assert "PPO" in capsys.readouterr().out

    def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
        p = sub.add_parser("hello", help="say hello")
        p.add_argument("who")
        return p

    commands.register("hello", CliCommand(add_parser=add_parser, run=lambda args: print(f"hi {args.who}") or 0))
    try:
        assert main(["hello", "there"]) == 0
        assert capsys.readouterr().out.strip() == "hi there"
    finally:
        commands.unregister("hello")


def test_python_dash_m_rlcf_runs_the_command_line():
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "rlcf", "list", "algos"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "cfcql" in out.stdout and "dna-train" in out.stdout
