"""``rlcf demo``: the end-to-end quickstart on embedded defaults.

The quickstart is a list of stages. A stage runs when what it needs is registered in this installation, and
is reported as skipped, with the reason, when it is not: the demo never pretends to have run something.
"""

from __future__ import annotations

import logging
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rlcf.registry import get_registry


@dataclass(frozen=True)
class Stage:
    """One step of the quickstart.

    Attributes:
        title: what the stage does, in words.
        needs: ``(registry kind, name)`` pairs that must be registered for the stage to run.
        run: ``run(out_dir, episodes) -> summary``.
    """

    title: str
    needs: tuple[tuple[str, str], ...]
    run: Callable[[Path, int], str]


DEMO_EPISODES = 1000  # per tier: 25,000 env steps each, about a minute in all on 2 cores with 2 actors


DEMO_ENV = "mpe-simple_spread-force"  # 2-D force actions and fitted-policy tiers: the CFCQL paper's MPE setting
DEMO_TIER = "random"  # the tier where the bench (bench/results/cfcql_spread_force.md) shows CFCQL ahead of BC
# CFCQL's tuned settings for this env (configs/cfcql/mpe_spread_force-*.yaml)
CFCQL_SETTINGS = ["config.reward_scale=20", "config.cql_alpha=5", "config.lambda_mode=uniform", "config.sample_sources=uniform"]


def _collect_stage(out: Path, episodes: int) -> str:
    """Collect the random, medium and expert tiers of simple_spread on 2 Ray actors and print their statistics."""
    import os

    from rlcf.data.collect import collect_dataset

    # The demo keeps its datasets beside its runs unless the user chose a Minari store.
    os.environ.setdefault("MINARI_DATASETS_PATH", str((out / "datasets").resolve()))
    lines = []
    for tier in ("random", "medium", "expert"):
        result = collect_dataset(DEMO_ENV, tier=tier, episodes=episodes, actors=2, seed=0, overwrite=True, progress=False)
        st = result.stats
        lines.append(
            f"{result.dataset_id}: {st['episodes']} episodes, {st['steps']} steps, team return "
            f"{st['return_mean']:.2f} ± {st['return_std']:.2f} (min {st['return_min']:.2f}, max {st['return_max']:.2f}), "
            f"normalized {st['normalized_score']:.1f}, {result.seconds:.1f} s -> {result.path}"
        )
    return "\n      ".join(lines)


def _train_stage(out: Path, episodes: int) -> str:
    """Train CFCQL and BC on the random tier of stage 1 and compare their normalized scores."""
    from rlcf.algorithm import train
    from rlcf.eval import SuiteResult, format_table, plot_aggregates

    # The full demo trains the bench's budget (3000 updates at batch 256, about a minute for CFCQL on 2 cores);
    # a smoke-sized demo (tests, --episodes below the default) a few dozen updates.
    steps = 3000 if episodes >= DEMO_EPISODES else max(20, min(500, episodes // 2))
    task = f"{DEMO_ENV}/{DEMO_TIER}"
    summaries, lines = [], []
    for algo in ("cfcql", "bc"):
        run, _ = train(
            None,
            [
                f"config.dataset=rlcf/{DEMO_ENV}/{DEMO_TIER}-v0",
                "config.batch_size=256",
                f"run.total_steps={steps}",
                f"run.checkpoint_every={steps}",
                f"run.log_every={max(1, steps // 5)}",
                f"run.out_dir={out / 'runs'}",
                "run.name=demo",
                *(CFCQL_SETTINGS if algo == "cfcql" else []),
            ],
            algo=algo,
        )
        result = run.algorithm.last_eval
        summaries.append(SuiteResult(algo, (task,), (0,), {task: {0: result}}).summary())
        note = ""
        if result.normalized_score is not None and result.normalized_score < 0:
            note = " (below a uniformly random policy: too few updates for this method to learn; the full demo trains 3000)"
        lines.append(f"{algo}: {steps} steps, normalized score {result.normalized_score:.1f}{note} -> {run.path}")
    plot = out / "demo_scores.png"
    plot_aggregates(summaries, plot, title=f"rlcf demo: simple_spread (force actions), {DEMO_TIER} tier")
    table = format_table(summaries).replace("\n", "\n      ")
    return "\n      ".join(lines) + f"\n      {table}\n      plot: {plot}"


def _defacto_stage(out: Path, episodes: int) -> str:
    """Tiny local LM → SFT → a short DeFacto GRPO run; the per-split table before and after."""
    from rlcf.algorithm import train
    from rlcf.eval.llm import format_split_table

    steps = 150
    # the measured setting of configs/defacto/grounded_qa.yaml (bench/results/defacto.md), on 60 evaluation documents
    quick: list[str] = ["config.tiny.hidden_size=128", "config.tiny.layers=4", "config.tiny.intermediate_size=384",
                        "config.sft_docs=3000", "config.sft_epochs=2", "config.sft_lr=1e-3", "config.sft_answer_weight=14",
                        "config.sft_abstain_share=0.05", "config.learning_rate=2e-4", "config.beta=0.04",
                        "config.prompts_per_step=9", "config.batch_by_example=true",
                        "config.grpo.lr_scheduler_type=constant_with_warmup", "config.grpo.warmup_steps=20"]
    if episodes < DEMO_EPISODES:  # a smoke-sized demo (tests, --episodes below the default): a few seconds
        steps = 2
        quick = ["config.tiny.hidden_size=32", "config.tiny.layers=1", "config.tiny.intermediate_size=64",
                 "config.sft_docs=60", "config.sft_epochs=1", "config.train_docs=12", "config.eval_docs=6",
                 "config.prompts_per_step=2", "config.num_generations=2", "config.max_completion_length=12"]
    run, _ = train(
        None,
        [f"run.out_dir={out / 'runs'}", "run.name=demo", f"run.total_steps={steps}", f"run.checkpoint_every={steps}",
         "run.log_every=5", *quick],
        algo="defacto",
    )
    table = format_split_table(run.results, width=74).replace("\n", "\n      ")
    return f"{table}\n      run folder: {run.path} (eval.json, metrics.jsonl; rlcf eval {run.path} --plot rewards.png)"


def _dna_stage(out: Path, episodes: int) -> str:
    """Tiny local LM → paired SFT → a short DNA-Train RL run; real / cf / pair accuracy before and after."""
    from rlcf.algorithm import train
    from rlcf.eval.llm import format_split_table

    steps = 120  # the measured setting of configs/dna/grounded_qa_pairs.yaml (bench/results/dna.md, session 19)
    quick: list[str] = ["config.eval_pairs=100"]
    if episodes < DEMO_EPISODES:  # smoke-sized (tests): a few seconds
        steps = 2
        quick = ["config.tiny.hidden_size=32", "config.tiny.layers=1", "config.tiny.intermediate_size=64",
                 "config.sft_pairs=40", "config.sft_epochs=1", "config.train_pairs=12", "config.eval_pairs=6",
                 "config.pairs_per_step=2", "config.num_generations=2", "config.max_completion_length=12",
                 "config.eval_max_new_tokens=12"]
    run, _ = train(  # embedded defaults (configs/dna/grounded_qa_pairs.yaml is the longer, measured setting)
        None,
        [f"run.out_dir={out / 'runs'}", "run.name=demo-dna", f"run.total_steps={steps}", f"run.checkpoint_every={steps}",
         "run.log_every=5", *quick],
        algo="dna-train",
    )
    table = format_split_table(run.results, width=74).replace("\n", "\n      ")
    return f"{table}\n      run folder: {run.path} (eval.json, metrics.jsonl; rlcf eval {run.path})"


STAGES: list[Stage] = [
    Stage(
        "collect offline datasets: MPE simple_spread (2-D force actions), random / medium / expert tiers from fitted "
        "policies, 2 Ray actors",
        (("envs", DEMO_ENV), ("policies", "random"), ("policies", "fitted"), ("policies", "mpe-spread-expert")),
        _collect_stage,
    ),
    Stage(
        "train CFCQL and BC on the random tier, evaluate both (32 episodes), print the table and plot",
        (("algos", "cfcql"), ("algos", "bc")),
        _train_stage,
    ),
    Stage(
        "DeFacto-style counterfactual GRPO: build a tiny local LM, SFT it, GRPO on pos/neg/random, table before/after",
        (("algos", "defacto"), ("rewards", "format"), ("rewards", "answer"), ("rewards", "grounding")),
        _defacto_stage,
    ),
    Stage(
        "DNA-Train: build a tiny local LM, SFT on paired real/counterfactual data, RL with pair-wise l1 advantages, "
        "pair accuracy before/after",
        (("algos", "dna-train"), ("rewards", "choice"), ("rewards", "think_answer_format")),
        _dna_stage,
    ),
]


def _environment_summary() -> list[str]:
    import torch

    from rlcf import __version__
    from rlcf.device import resolve_device

    return [
        f"rlcf {__version__} on Python {platform.python_version()}, torch {torch.__version__}",
        f"device 'auto' resolves to: {resolve_device('auto')}",
    ]


def run_demo(out_dir: str | Path = "runs/demo", stages: list[Stage] | None = None, episodes: int = DEMO_EPISODES) -> int:
    """Run every available stage; print what ran and what was skipped and why. Returns an exit code."""
    out = Path(out_dir)
    print("rlcf demo")
    for line in _environment_summary():
        print(f"  {line}")
    for kind in ("envs", "suites", "policies", "rewards", "algos"):
        names = get_registry(kind).names()
        print(f"  registered {kind}: {', '.join(names) if names else '(none yet)'}")
    ran = skipped = 0
    # Each LLM stage's summary prints the before/after table; the trainer's own INFO copy would show it twice.
    trainer_log = logging.getLogger("rlcf.algos.llm_trainer")
    level = trainer_log.level
    trainer_log.setLevel(max(level, logging.WARNING))
    try:
        for i, stage in enumerate(stages if stages is not None else STAGES, 1):
            missing = [f"{kind}:{name}" for kind, name in stage.needs if name not in get_registry(kind)]
            if missing:
                why = f"needs {', '.join(missing)}, which this installation does not register"
                print(f"[{i}] SKIPPED {stage.title}\n      {why}")
                skipped += 1
                continue
            start = time.perf_counter()
            summary = stage.run(out, episodes)
            print(f"[{i}] RAN {stage.title} ({time.perf_counter() - start:.1f} s)\n      {summary}")
            ran += 1
    finally:
        trainer_log.setLevel(level)
    print(f"demo finished: {ran} stage(s) ran, {skipped} skipped")
    return 0
