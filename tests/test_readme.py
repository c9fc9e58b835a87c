"""The README stays true: every shell block in it runs as written, on small budgets.

Each ```bash block is one test case, run in README order in one shared workspace (a temporary folder holding
``configs/``, ``runs/`` and the Minari store), as a reader following the README would run them: a later block may
use the dataset an earlier one collected. Commands go through ``rlcf.cli.main`` exactly as split by the shell,
with globs expanded as a shell would, plus the budget overrides in ``BUDGETS`` below (fewer episodes and steps,
tiny models, no Ray actors, no torch.compile); nothing else is changed.

A block that cannot run here says so in the README itself, with an HTML comment on the line before it:
``<!-- readme-test: skip (needs a GPU) -->``. It shows up as a skipped test with that reason.
"""

from __future__ import annotations

import glob
import json
import re
import shlex
from pathlib import Path

import pytest

from rlcf.cli import main

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
SKIP = re.compile(r"^<!-- readme-test: skip \((?P<reason>.+?)\) -->$", re.M)

# -- the budget overrides, the only thing the test adds to a README command ----------------------------------------

COLLECT = {"--episodes": "4", "--actors": "0"}  # replaced values; --actors 0 collects in this process (no Ray)
EVAL = ["--episodes", "2"]
MARL = ["run.total_steps=10", "config.batch_size=64", "config.eval_episodes=2", "config.compile=false"]
TINY_LM = ["config.tiny.hidden_size=32", "config.tiny.layers=1", "config.tiny.intermediate_size=64",
           "config.num_generations=2", "config.max_completion_length=8", "config.eval_max_new_tokens=8"]
TRAIN = {
    "cfcql": MARL,
    "bc": MARL,
    "defacto": ["run.total_steps=1", *TINY_LM, "config.sft_docs=20", "config.sft_epochs=1", "config.train_docs=4",
                "config.eval_docs=3", "config.prompts_per_step=3"],
    "defacto-image": ["run.total_steps=1", *TINY_LM, "config.tiny.heads=2", "config.tiny.kv_heads=1",
                      "config.tiny.vocab_size=320", "config.sft_docs=8", "config.sft_epochs=1", "config.train_docs=2",
                      "config.eval_docs=2", "config.prompts_per_step=3"],
    "dna-train": ["run.total_steps=1", *TINY_LM, "config.sft_pairs=40", "config.sft_epochs=1", "config.train_pairs=12",
                  "config.eval_pairs=6", "config.pairs_per_step=2"],
}


def _blocks() -> list[tuple[str, str, str | None]]:
    """``(id, block, skip reason)`` for every ```bash block, named after its section."""
    out, section, counts = [], "top", {}
    lines = README.splitlines(keepends=True)
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("#"):
            section = re.sub(r"[^a-z0-9]+", "-", line.lstrip("#").strip().lower()).strip("-")
        if line.rstrip() == "```bash":
            end = next(j for j in range(i + 1, len(lines)) if lines[j].rstrip() == "```")
            marker = SKIP.search(lines[i - 1]) if i else None
            counts[section] = counts.get(section, 0) + 1
            out.append((f"{section}-{counts[section]}", "".join(lines[i + 1 : end]), marker and marker["reason"]))
            i = end
        i += 1
    return out


def _commands(block: str) -> list[list[str]]:
    """A block's commands as the shell splits them: comments dropped, continuation lines joined."""
    return [words for line in block.replace("\\\n", " ").splitlines() if (words := shlex.split(line, comments=True))]


def _as_shell_expands(word: str) -> list[str]:
    """A word with a glob becomes the sorted matches (relative to the current folder), or itself if none match."""
    if not any(c in word for c in "*?["):
        return [word]
    return sorted(glob.glob(word)) or [word]


def _newest_for_example_folder(word: str) -> str:
    """``runs/<algo>/<name>-<timestamp>`` with an example timestamp stands for the newest run of that name."""
    m = re.fullmatch(r"(runs/[^/]+/.+)-\d{8}-\d{6}", word)
    if m and not Path(word).exists():
        found = sorted(glob.glob(f"{m[1]}-*"))
        return found[-1] if found else word
    return word


def _with_budget(argv: list[str]) -> list[str]:
    argv = [_newest_for_example_folder(w) for w in argv]
    argv = [x for w in argv for x in _as_shell_expands(w)]
    command = next(w for w in argv if not w.startswith("-") and w not in _plugin_values(argv))
    if command == "collect":
        return [COLLECT.get(argv[i - 1], w) if i else w for i, w in enumerate(argv)]
    if command == "eval":
        return [*argv, *EVAL]
    if command == "train" and "--resume" not in argv:
        return [*argv, *TRAIN[_budget_key(argv[argv.index("train") + 1])]]
    return argv


def _plugin_values(argv: list[str]) -> set[str]:
    return {argv[i + 1] for i, w in enumerate(argv[:-1]) if w == "--plugin"}


def _budget_key(source: str) -> str:
    from rlcf.config import load_experiment

    if not source.endswith((".yaml", ".yml")):
        return source
    experiment = load_experiment(source)
    image = getattr(experiment.config, "modality", "text") == "image"
    return f"{experiment.algo}-image" if image else experiment.algo


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A folder that looks like a checkout to the README's commands: ``configs/`` (the repository's files, plus the
    README's own example ``configs/cfcql/x.yaml``), and a Minari store of its own."""
    root = tmp_path_factory.mktemp("readme")
    for path in (ROOT / "configs").rglob("*.yaml"):
        link = root / path.relative_to(ROOT)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(path)
    example = next(b for b in re.findall(r"```yaml\n(.*?)```", README, flags=re.S) if b.startswith("algo: cfcql"))
    (root / "configs" / "cfcql" / "x.yaml").write_text(example)
    return root


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::rlcf.eval.runner.EvaluationWarning")  # 2 evaluation episodes, on purpose
@pytest.mark.parametrize("block, skip", [pytest.param(b, s, id=i) for i, b, s in _blocks()])
def test_readme_block_runs_as_written(block, skip, workspace, monkeypatch, capsys):
    if skip:
        pytest.skip(f"README marks this block: {skip}")
    monkeypatch.chdir(workspace)
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(workspace / "minari"))
    commands = _commands(block)
    assert commands, "an empty block"
    for words in commands:
        assert words[0] == "rlcf", (
            f"README runs {shlex.join(words)!r}, which this test cannot run: mark the block with "
            "<!-- readme-test: skip (why) --> or move the command to a marked block"
        )
        argv = _with_budget(words[1:])
        code = main(argv)
        captured = capsys.readouterr()
        assert code == 0, f"README command failed (exit {code}): rlcf {shlex.join(argv)}\n{captured.err[-3000:]}"
        if "train" in argv:
            json.loads(captured.out.strip().splitlines()[-1])  # train ends stdout with one JSON line


def test_every_readme_skip_gives_a_reason_and_marks_a_block():
    markers = SKIP.findall(README)
    skipped = [s for _, _, s in _blocks() if s]
    assert len(markers) == len(skipped), "a skip marker must stand on the line right before a ```bash block"
