"""A newcomer's path without a stumble: the README's commands work as written, plugins load from the command line
and YAML, failed starts leave nothing behind, and the messages on the way name the problem and the fix."""

from __future__ import annotations

import fnmatch
import json
import logging
import os
import re
import shlex
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from rlcf.cli import main

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
TINY_DEFACTO = [
    "config.tiny.hidden_size=32",
    "config.tiny.layers=1",
    "config.tiny.intermediate_size=64",
    "config.sft_docs=20",
    "config.sft_epochs=1",
    "config.train_docs=4",
    "config.eval_docs=3",
    "config.prompts_per_step=3",  # the README's YAML takes whole examples (3 variants) per step
    "config.num_generations=2",
    "config.max_completion_length=8",
    "config.eval_max_new_tokens=8",
]


def _code_blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


def _commands(block: str) -> list[list[str]]:
    """The shell commands of a README block, comments dropped and continuation lines joined."""
    text = block.replace("\\\n", " ")
    return [shlex.split(line, comments=True) for line in text.splitlines() if line.strip().startswith("rlcf ")]


def _last_json(text: str) -> dict:
    return json.loads(text.strip().splitlines()[-1])


@pytest.fixture
def forget():
    """Unregister what a test's plugin registered, so the next test's plugin may register the name again."""
    from rlcf.registry import get_registry

    names: list[tuple[str, str]] = []
    yield lambda kind, name: names.append((kind, name))
    for kind, name in names:
        registry = get_registry(kind)
        if registry.entry(name) is not None:
            registry.unregister(name)


# -- 1. README: eval finds what train wrote --------------------------------------------------------------------


def test_readme_eval_globs_match_the_run_folders_its_train_commands_write():
    from rlcf.config import load_experiment
    from rlcf.runs import _algo_dirname

    checked = 0
    for block in _code_blocks("bash"):
        commands = _commands(block)
        folders = []
        for cmd in commands:
            if cmd[1] == "train" and cmd[2].endswith(".yaml") and (ROOT / cmd[2]).is_file():  # not x.yaml
                exp = load_experiment(ROOT / cmd[2], [t for t in cmd[3:] if "=" in t])
                folders.append(f"{exp.run.out_dir}/{_algo_dirname(exp.algo)}/{exp.run.name}-20260101-000000")
        for cmd in commands:
            if cmd[1] == "eval" and folders:
                pattern = cmd[2]
                assert any(fnmatch.fnmatch(f, pattern) for f in folders), (
                    f"README: 'rlcf eval {pattern}' matches none of the run folders its train commands write: {folders}"
                )
                checked += 1
    assert checked >= 3, "the offline-MARL, DeFacto and DNA-Train sections each pair a train and an eval command"


def test_collect_train_eval_as_the_readme_chains_them(tmp_path, capsys, monkeypatch):
    """collect → train a YAML → eval with the README's glob, in a folder that also holds a run that never started."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    assert main(["--quiet", "collect", "mpe-simple_spread", "--tier", "medium", "--episodes", "4", "--actors", "0",
                 "--no-references"]) == 0
    exp = tmp_path / "spread-medium.yaml"  # no run.name: the run is named after the file
    exp.write_text("algo: bc\nrun: {total_steps: 4, device: cpu}\nconfig: {dataset: rlcf/mpe-simple_spread/medium-v0}\n")
    capsys.readouterr()
    assert main(["--quiet", "train", str(exp)]) == 0
    run = Path(_last_json(capsys.readouterr().out)["run"])
    assert run.parent == Path("runs/bc") and run.name.startswith("spread-medium-")
    # A start that failed before this version cleaned up after it: a folder holding only config.yaml.
    stale = Path("runs/bc/spread-medium-20000101-000000")
    stale.mkdir()
    (stale / "config.yaml").write_text((run / "config.yaml").read_text())
    folders = sorted(str(p) for p in Path("runs/bc").glob("spread-medium-*"))
    assert main(["--quiet", "eval", *folders, "--episodes", "2", "--jsonl"]) == 0
    captured = capsys.readouterr()
    assert f"warning: skipping '{stale}': it has no checkpoint" in captured.err
    rows = [json.loads(line) for line in captured.out.splitlines() if line.startswith("{")]
    assert [r["run"] for r in rows] == [str(run)]
    assert main(["--quiet", "eval", str(stale)]) == 2
    assert "none of the 1 folder(s) given is a run with a checkpoint" in capsys.readouterr().err


# -- 2. plugins ------------------------------------------------------------------------------------------------

RECIPE_START = "# my_rewards.py\n"


def _recipe(tmp_path: Path) -> tuple[Path, list[str]]:
    """The README's custom-reward module, written to tmp_path, and its `rlcf --plugin ... train` command."""
    module = next(b for b in _code_blocks("python") if b.startswith(RECIPE_START))
    path = tmp_path / "my_rewards.py"
    path.write_text(module)
    command = next(c for b in _code_blocks("bash") for c in _commands(b) if "--plugin" in c and "my_rewards.py" in c)
    return path, [str(path) if t == "my_rewards.py" else t for t in command[1:]]


def test_readme_reward_recipe_end_to_end(tmp_path, capsys, monkeypatch, forget):
    """The README's custom reward: refused without its plugin, resolved with it, and scored in a tiny DeFacto run."""
    forget("rewards", "brevity")
    path, argv = _recipe(tmp_path)
    monkeypatch.chdir(ROOT)  # the README's paths are relative to a checkout
    assert argv[:3] == ["--plugin", str(path), "train"]
    without = [a for a in argv if a not in ("--plugin", str(path))]
    # Without the plugin: refused before any work, with the valid names and the fix.
    assert main(["config", *without[1:]]) == 2
    err = capsys.readouterr().err
    assert "config field 'config.rewards': unknown reward function 'brevity'" in err
    assert "Valid rewards: accuracy, answer" in err and "--plugin" in err
    # With it: resolved, and the plugin recorded so that eval and --resume load it again.
    assert main(["config" if a == "train" else a for a in argv]) == 0
    out = capsys.readouterr().out
    assert "- brevity" in out and f"plugins:\n- {path}" in out
    # Trained: TRL logs the plugin's reward like a built-in one.
    extra = [f"run.out_dir={tmp_path / 'runs'}", "run.total_steps=1", "run.device=cpu", *TINY_DEFACTO]
    assert main(["--quiet", *argv, *extra]) == 0
    run = Path(_last_json(capsys.readouterr().out)["run"])
    logged = set().union(*(json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()))
    assert "rewards/brevity/mean" in logged
    # A fresh process reads the run's config (as eval and --resume do) without being told about the plugin.
    proc = subprocess.run([sys.executable, "-m", "rlcf.cli", "config", str(run / "config.yaml")], capture_output=True,
                          text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "- brevity" in proc.stdout


def test_plugins_key_in_a_yaml_is_read_from_the_yaml_folder(tmp_path, capsys, monkeypatch, forget):
    forget("rewards", "shortness")
    (tmp_path / "exp").mkdir()
    (tmp_path / "exp" / "short_rewards.py").write_text(textwrap.dedent("""
        import rlcf

        @rlcf.register_reward("shortness", help="test plugin")
        def shortness(prompts, completions, **columns):
            return [-float(len(c)) for c in completions]
    """))
    exp = tmp_path / "exp" / "qa.yaml"
    exp.write_text("algo: defacto\nplugins: [short_rewards.py]\nconfig:\n  rewards: [format, shortness]\n")
    monkeypatch.chdir(tmp_path)  # not the YAML's folder
    assert main(["config", str(exp)]) == 0
    out = capsys.readouterr().out
    assert "- shortness" in out and f"plugins:\n- {tmp_path / 'exp' / 'short_rewards.py'}" in out
    exp.write_text("algo: defacto\nplugins: [missing_rewards.py]\n")
    assert main(["config", str(exp)]) == 2
    assert "plugin file 'missing_rewards.py' does not exist" in capsys.readouterr().err


def test_plugin_option_errors_name_the_plugin_and_the_fix(tmp_path, capsys):
    assert main(["--plugin", "no_such_module_xyz", "list", "rewards"]) == 2
    assert "cannot import plugin module 'no_such_module_xyz'" in capsys.readouterr().err
    broken = tmp_path / "broken_plugin.py"
    broken.write_text("raise RuntimeError('boom')\n")
    assert main(["list", "rewards", f"--plugin={broken}"]) == 2
    assert f"plugin file '{broken}' failed while importing: RuntimeError: boom" in capsys.readouterr().err


@pytest.mark.parametrize("actors", [0, pytest.param(1, marks=pytest.mark.ray)])
def test_plugin_policy_collects_from_the_cli(actors, tmp_path, capsys, monkeypatch, forget):
    """A behaviour policy defined in a user module is served like a built-in one, in this process or on Ray."""
    name = f"stand-still-{actors}"  # one name per case: a Ray worker imports every plugin this process loaded
    forget("policies", name)
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    plugin = tmp_path / "still_policy.py"
    plugin.write_text(textwrap.dedent(f"""
        from rlcf.envs.behaviour.policies import RandomPolicy
        from rlcf.registry import policies

        @policies.register("{name}", help="test plugin")
        class StandStill(RandomPolicy):
            name = "{name}"
    """))
    argv = ["collect", "mpe-simple_spread", "--policy", name, "--episodes", "2", "--actors", str(actors),
            "--no-references"]
    assert main(["--quiet", *argv]) == 2
    assert f"unknown behaviour policy '{name}'" in capsys.readouterr().err
    assert main(["--quiet", "--plugin", str(plugin), *argv]) == 0
    assert _last_json(capsys.readouterr().out)["dataset_id"] == f"rlcf/mpe-simple_spread/{name}-v0"


def test_rlcf_plugins_entry_point_is_loaded_on_lookup(tmp_path):
    """An installed package's module in the 'rlcf.plugins' group registers its rewards when a name is looked up."""
    (tmp_path / "ep_rewards_pkg.py").write_text(
        "import rlcf\n\n@rlcf.register_reward('from_entry_point')\n"
        "def from_entry_point(prompts, completions, **columns):\n    return [1.0 for _ in completions]\n"
    )
    info = tmp_path / "ep_rewards_pkg-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: ep-rewards-pkg\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[rlcf.plugins]\nep_rewards = ep_rewards_pkg\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    code = "from rlcf.registry import rewards; print(rewards.get('from_entry_point')([], ['a', 'b']))"
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[1.0, 1.0]"


# -- 3. launch names a run after its YAML ------------------------------------------------------------------------


def test_launched_yaml_without_run_name_is_named_after_its_file(tmp_path, capsys, monkeypatch):
    from rlcf.runtime.job_entry import main as job_entry
    from rlcf.runtime.jobs import _stage

    exp = tmp_path / "my-exp.yaml"
    exp.write_text(
        f"algo: 'toy_plugin:ToyRegression'\nrun: {{out_dir: {tmp_path / 'runs'}, total_steps: 2, device: cpu}}\n"
    )
    staging = tmp_path / "staging"
    staging.mkdir()
    command, shipped = _stage(["train", str(exp)], staging)
    monkeypatch.chdir(staging)  # where Ray unpacks the job's working_dir
    flags = [a for name in shipped for a in ("--shipped", name)]
    assert job_entry(["--cwd", str(tmp_path), *flags, "--", *command]) == 0
    run = Path(_last_json(capsys.readouterr().out)["run"])
    assert run.parent == tmp_path / "runs" / "toyregression" and run.name.startswith("my-exp-")
    # ... so that `rlcf launch my-exp.yaml --resume` finds it.
    monkeypatch.chdir(staging)
    assert job_entry(["--cwd", str(tmp_path), *flags, "--", *command, "--resume", "run.total_steps=3"]) == 0
    assert _last_json(capsys.readouterr().out)["run"] == str(run)


def test_launch_ships_plugin_files_to_the_job(tmp_path):
    from rlcf.runtime.jobs import _stage

    plugin = tmp_path / "my_rewards.py"
    plugin.write_text("")
    staging = tmp_path / "staging"
    staging.mkdir()
    command, shipped = _stage(["list", "rewards"], staging, [str(plugin), "my_pkg.rewards"])
    assert command == ["--plugin", "0/my_rewards.py", "--plugin", "my_pkg.rewards", "list", "rewards"]
    assert shipped == ["0/my_rewards.py"] and (staging / "0" / "my_rewards.py").is_file()
    # A YAML's own plugin files travel beside it, so its relative 'plugins:' paths resolve on the node.
    exp = tmp_path / "qa.yaml"
    exp.write_text("algo: defacto\nplugins: [my_rewards.py, my_pkg.rewards]\n")
    (tmp_path / "staging2").mkdir()
    command, shipped = _stage(["train", str(exp)], tmp_path / "staging2")
    assert command == ["train", "0/qa.yaml"] and (tmp_path / "staging2" / "0" / "my_rewards.py").is_file()


# -- 4 and 6. collect: refuse an existing id at once; --quiet logs progress ------------------------------------


def _collect_argv(*extra: str) -> list[str]:
    return ["collect", "mpe-simple_spread", "--tier", "random", "--episodes", "3", "--actors", "0", "--no-references",
            *extra]


def _progress_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("collect mpe-simple_spread (random):")]


def test_quiet_collect_logs_its_progress(tmp_path, caplog, monkeypatch):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    with caplog.at_level(logging.INFO, logger="rlcf"):
        assert main(["--quiet", *_collect_argv()]) == 0
    assert any("3/3" in line for line in _progress_lines(caplog)), "--quiet gives log lines, as RLCF_QUIET=1 does"


def test_collect_refuses_an_existing_dataset_before_collecting(tmp_path, capsys, caplog, monkeypatch):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    assert main(_collect_argv()) == 0
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="rlcf"):
        assert main(_collect_argv()) == 2
    err = capsys.readouterr().err
    assert "dataset 'rlcf/mpe-simple_spread/random-v0' already exists" in err
    assert "nothing was collected" in err and "--version 1" in err and "--overwrite" in err
    assert not _progress_lines(caplog), "no episode ran"
    assert main(_collect_argv("--overwrite")) == 0


# -- 5. failed starts leave no run folder ----------------------------------------------------------------------


def test_a_start_that_fails_leaves_no_run_folder(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    out = tmp_path / "runs"
    assert main(["--quiet", "train", "bc", "config.dataset=rlcf/mpe-simple_spread/nope-v0", f"run.out_dir={out}"]) == 2
    assert "no dataset 'rlcf/mpe-simple_spread/nope-v0'" in capsys.readouterr().err
    assert not list(out.glob("*/*")), "no run folder holding only config.yaml"
    # An unknown reward is refused before the folder is made.
    assert main(["train", "defacto", "config.rewards=[format, nope]", f"run.out_dir={out}"]) == 2
    assert not list(out.glob("*/*"))


# -- 7. jobs logs --follow of a job that has ended ----------------------------------------------------------------


class _EndedJobs:
    """Ray's JobSubmissionClient, reduced to what `rlcf jobs logs` asks of a job that has already ended."""

    def __init__(self, status: str, message: str = ""):
        self.status, self.message = status, message

    def get_job_status(self, job_id):
        return self.status

    def get_job_logs(self, job_id):
        return "step 1\nerror: boom\n"

    def get_job_info(self, job_id):
        return type("Info", (), {"message": self.message})()


@pytest.mark.parametrize(
    "status, message, code",
    [("FAILED", "Job entrypoint command failed with exit code 1", 1),
     ("FAILED", "Job entrypoint command failed with exit code 2", 2),
     ("STOPPED", "", 130),
     ("SUCCEEDED", "", 0)],
)
def test_jobs_logs_follow_of_an_ended_job_exits_with_its_status(status, message, code, capsys):
    from rlcf.runtime.jobs import show_logs

    client = _EndedJobs(status, message)
    assert show_logs(client, "job-1", status, follow_logs=True) == code
    captured = capsys.readouterr()
    assert captured.out == "step 1\nerror: boom\n"
    assert json.loads(captured.err.splitlines()[0]) == {"job_id": "job-1", "status": status, "exit_code": code}
    if code:
        assert f"job job-1 ended {status} (exit code {code})" in captured.err
    assert show_logs(client, "job-1", status, follow_logs=False) == 0, "printing the logs of any job succeeds"


# -- 8. messages -----------------------------------------------------------------------------------------------


def test_misplaced_top_level_keys_point_to_their_section(capsys):
    assert main(["config", "cfcql", "seed=1"]) == 2
    assert "Did you mean 'run.seed'?" in capsys.readouterr().err
    assert main(["config", "cfcql", "cql_alpha=1"]) == 2
    assert "Did you mean 'config.cql_alpha'?" in capsys.readouterr().err


def test_bad_yaml_names_the_file_and_line(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("algo: cfcql\nrun:\n  seed: 0\n   total_steps: 10\n")
    assert main(["config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:4:" in err and "not valid YAML" in err
    from rlcf.config import load_yaml
    from rlcf.errors import ConfigError

    with pytest.raises(ConfigError, match="bad.yaml:4"):
        load_yaml(bad)
