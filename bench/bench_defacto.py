"""DeFacto GRPO against plain GRPO from the same SFT checkpoint and budget, and the trainer's step-time overhead.

1. Builds the embedded tiny LM and SFTs it once (mostly answerable examples, a small share of abstentions).
2. From that checkpoint, for each seed, trains (a) DeFacto: pos / neg / random variants with the format, answer
   and grounding rewards, and (b) plain GRPO: positive examples only, format + answer rewards — same steps,
   batch and learning rate. Evaluates each on held-out documents per split.
3. Prints answer accuracy and abstention per split (mean ± std over seeds) against the SFT model, and the
   issue's targets: neg abstention ≥ 80%, pos accuracy at least SFT's − 3 points, random accuracy within 5 points
   of pos with at most 10% abstention, plain GRPO not raising neg abstention.
4. Overhead: GRPO step time of rlcf's whole DeFacto trainer (guarded reward set, per-variant tally, callbacks)
   against TRL's ``GRPOTrainer`` with the raw reward functions, on the same model and batch, in alternating
   blocks; prints the ratio (``--overhead-only`` runs just this).

    python bench/bench_defacto.py --seeds 0,1,2 --steps 150
    python bench/bench_defacto.py --overhead-only --out runs/bench_defacto   # reuses that run's SFT checkpoint
    python bench/bench_defacto.py --task image --seeds 0,1,2 --out runs/bench_defacto_images

The defaults are the settings of ``configs/defacto/grounded_qa.yaml`` (``MEASURED``); ``--set key=value`` overrides
them for every run (e.g. ``--set layout=people`` for the harder layout, ``--set model=<hub id>`` for a real model).
"""

from __future__ import annotations

import argparse
import json
import os
import time
import warnings
from pathlib import Path

warnings.filterwarnings("ignore")
os.environ.setdefault("RLCF_QUIET", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


MEASURED = [  # configs/defacto/grounded_qa.yaml: the settings of bench/results/defacto.md, sessions 15 and 18
    "layout=profile", "tiny.hidden_size=128", "tiny.layers=4", "tiny.intermediate_size=384", "sft_docs=3000", "sft_epochs=2",
    "sft_lr=1e-3", "sft_answer_weight=14", "sft_abstain_share=0.05", "eval_docs=200", "learning_rate=2e-4", "beta=0.04",
    "prompts_per_step=9", "batch_by_example=true", "grpo.lr_scheduler_type=constant_with_warmup", "grpo.warmup_steps=20",
]


#: configs/defacto/grounded_images.yaml: the picture task's settings (bench/results/defacto.md, sessions 20 and 21), on
#: top of MEASURED (the text-only fields there are ignored with modality image). Both arms share them.
IMAGE_MEASURED = [
    "modality=image", "max_completion_length=40", "eval_max_new_tokens=40", "sft_epochs=6", "sft_think_weight=14",
    "sft_abstain_share=0", "sft_hallucinate_share=0.2", "sft_notice_share=0.02", "learning_rate=5e-5", "grpo.scale_rewards=batch",
]
#: The picture task's DeFacto rewards: the answer term split per variant (the paper's accuracy / counterfactual /
#: masked), with the masked one weighted 2 so that an abstention spreading to 'random' costs more than it gains on 'neg'.
IMAGE_DEFACTO = ["rewards=[format, accuracy, counterfactual, masked, grounding]", "reward_weights=[1, 1, 1, 2, 1]"]


def sft_checkpoint(out: Path, base_overrides: list[str]) -> Path:
    """Run DeFacto's stages 1-2 once (a 1-step GRPO run) and return its SFT model folder."""
    from rlcf.algorithm import train

    marker = out / "sft_path.txt"
    if marker.exists() and Path(marker.read_text()).exists():
        return Path(marker.read_text())
    run, _ = train(None, [f"run.out_dir={out / 'sft'}", "run.total_steps=1", "run.checkpoint_every=1", *base_overrides], algo="defacto")
    marker.write_text(str(run.path / "sft_model"))
    return run.path / "sft_model"


def arm(name: str, sft: Path, seed: int, steps: int, out: Path, base_overrides: list[str], own: list[str] = ()) -> dict:
    from rlcf.algorithm import train

    extra = {
        "defacto": ["config.variants=[pos, neg, random]", "config.rewards=[format, answer, grounding]"],
        "grpo": ["config.variants=[pos]", "config.rewards=[format, answer]"],
    }[name]
    run, _ = train(
        None,
        [*base_overrides,  # first: the arm's own settings below must win
         f"run.out_dir={out / name}", f"run.name={name}-s{seed}", f"run.seed={seed}", f"run.total_steps={steps}",
         f"run.checkpoint_every={steps}", f"run.log_every={max(1, steps // 10)}", f"config.model={sft}", "config.sft_epochs=0",
         *extra, *own],
        algo="defacto",
    )
    return {split: scores.as_dict() for split, scores in run.results[name].items()} | {
        "_before": {split: s.as_dict() for split, s in run.results["base"].items()}
    }


def overhead(sft: Path, steps: int, blocks: int) -> tuple[float, float]:
    """Median GRPO step time of rlcf's whole DeFacto trainer against TRL's plain ``GRPOTrainer``.

    rlcf: ``DeFacto.make_trainer`` as ``fit`` builds it — guarded reward set, per-variant tally, run logger and
    progress callbacks, TRL's printers removed — from ``grpo_arguments``. TRL: ``GRPOTrainer`` with the raw reward
    functions and the same ``GRPOConfig``. Same SFT model, sampler, batch (8 prompts x 8) and rows; learning rate 0, so both
    models stay equal and sample alike. Each block runs ``steps`` steps of one trainer through ``trainer.train()``
    (its whole loop, callbacks included); blocks alternate.
    """
    import dataclasses

    from datasets import Dataset
    from trl import GRPOTrainer

    from rlcf.algos.defacto import DeFacto
    from rlcf.algos.llm_common import load_model
    from rlcf.algos.hf_quiet import quiet_transformers
    from rlcf.algos.llm_trainer import grpo_arguments
    from rlcf.config import load_experiment
    from rlcf.reward_set import RewardSet, resolve_reward

    exp = load_experiment(None, [f"config.{kv}" for kv in MEASURED], algo="defacto")
    # One sampler for both (rlcf's whole-example batches would give the two trainers different prompts per step,
    # and generation time follows the completions): the comparison is of everything else rlcf adds.
    config = dataclasses.replace(exp.config, learning_rate=0.0, model=str(sft), batch_by_example=False, prompts_per_step=8)
    rows = DeFacto.train_data(config)
    names = list(config.rewards)

    def build(label: str, out: Path) -> object:
        run_config = dataclasses.replace(exp.run, total_steps=steps, log_every=steps, checkpoint_every=10**6, seed=0)
        args = grpo_arguments(config, run_config, out, DeFacto.rollout_batch(config), [1.0] * len(names), gpu=False)
        model, tok = load_model(sft)
        if label == "rlcf":
            return DeFacto.make_trainer(config, model, tok, args, rows, RewardSet(names), run=None)
        trainer = GRPOTrainer(model=model, reward_funcs=[resolve_reward(n) for n in names], args=args,
                              train_dataset=Dataset.from_list(rows), processing_class=tok)
        from transformers.trainer_callback import PrinterCallback

        trainer.remove_callback(PrinterCallback)  # neither side prints
        return trainer

    import tempfile

    times: dict[str, list[float]] = {"rlcf": [], "trl": []}
    with tempfile.TemporaryDirectory() as tmp, quiet_transformers():
        trainers = {label: build(label, Path(tmp) / label) for label in times}
        for label, trainer in trainers.items():  # warm-up block, not timed
            trainer.train()
        for _ in range(blocks):
            for label, trainer in trainers.items():
                start = time.perf_counter()
                trainer.train()
                times[label].append((time.perf_counter() - start) / steps)
    med = {k: sorted(v)[len(v) // 2] for k, v in times.items()}
    print("block step times (s):", {k: [round(t, 3) for t in v] for k, v in times.items()}, flush=True)
    return med["rlcf"], med["trl"]


def report(results: dict[str, list[dict]], steps: int, seeds: list[int], task: str) -> None:
    """Print the per-split table (mean ± std over seeds) and the issue's checks."""
    import numpy as np

    before = next(iter(results.values()))[0]["_before"]

    def cell(vals: list[float]) -> str:
        return f"{100 * np.mean(vals):5.1f} ± {100 * np.std(vals):4.1f}"

    print(f"\nHeld-out {'pictures' if task == 'image' else 'grounded-QA'}, {steps} GRPO steps from one SFT checkpoint, seeds {seeds} (mean ± std, %)")
    print(f"{'model':10s} {'pos acc':>13s} {'neg abstain':>13s} {'random acc':>13s} {'random abst':>13s}")
    print(f"{'sft':10s} {100 * before['pos']['accuracy']:13.1f} {100 * before['neg']['abstention']:13.1f} "
          f"{100 * before['random']['accuracy']:13.1f} {100 * before['random']['abstention']:13.1f}")
    for name, rs in results.items():
        for r in rs if len(rs) > 1 else ():
            print(f"{name + ' s' + str(r.get('_seed', '?')):10s} {100 * r['pos']['accuracy']:13.1f} {100 * r['neg']['abstention']:13.1f} "
                  f"{100 * r['random']['accuracy']:13.1f} {100 * r['random']['abstention']:13.1f}")
        print(f"{name:10s} {cell([r['pos']['accuracy'] for r in rs]):>13s} {cell([r['neg']['abstention'] for r in rs]):>13s} "
              f"{cell([r['random']['accuracy'] for r in rs]):>13s} {cell([r['random']['abstention'] for r in rs]):>13s}")
    d = results.get("defacto", [])
    checks = {} if not d or "grpo" not in results else {
        "DeFacto neg abstention >= 80%": np.mean([r["neg"]["abstention"] for r in d]) >= 0.8,
        "DeFacto pos accuracy >= SFT's - 3 points": np.mean([r["pos"]["accuracy"] for r in d]) >= before["pos"]["accuracy"] - 0.03,
        "DeFacto random accuracy within 5 points of its pos": abs(np.mean([r["random"]["accuracy"] - r["pos"]["accuracy"] for r in d])) <= 0.05,
        "DeFacto random abstention <= 10%": np.mean([r["random"]["abstention"] for r in d]) <= 0.1,
        "plain GRPO does not raise neg abstention": np.mean([r["neg"]["abstention"] for r in results["grpo"]]) <= before["neg"]["abstention"] + 0.05,
    }
    for text, ok in checks.items():
        print(f"  [{'x' if ok else ' '}] {text}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--steps", type=int, default=150, help="GRPO steps per arm")
    parser.add_argument("--out", default="runs/bench_defacto")
    parser.add_argument("--overhead-steps", type=int, default=5)
    parser.add_argument("--overhead-blocks", type=int, default=5)
    parser.add_argument("--overhead-only", action="store_true", help="skip the learning runs (needs a saved SFT checkpoint or builds one)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override for every run")
    parser.add_argument("--defacto-set", action="append", default=[], metavar="KEY=VALUE",
                        help="config override for the DeFacto arm only (its rewards and weights)")
    parser.add_argument("--skip-overhead", action="store_true")
    parser.add_argument("--arms", default="defacto,grpo", help="which arms to run (comma-separated: defacto, grpo)")
    parser.add_argument("--task", default="text", choices=("text", "image"),
                        help="text: the grounded-QA documents (MEASURED); image: the picture task on the tiny VLM (IMAGE_MEASURED; no overhead timing)")
    parser.add_argument("--table", nargs="+", metavar="RESULTS_JSON",
                        help="print the table of saved results.json files (e.g. the two arms run side by side, one per core) and exit")
    args = parser.parse_args()

    if args.table:
        merged: dict[str, list[dict]] = {}
        saved = [json.loads(Path(f).read_text()) for f in args.table]
        for one in saved:
            for name, runs in one["results"].items():
                merged.setdefault(name, []).extend(runs)
        befores = {json.dumps(r["_before"], sort_keys=True) for runs in merged.values() for r in runs}
        if len(befores) != 1:
            parser.error("--table: the files come from different SFT checkpoints (their 'before' scores differ)")
        report(merged, saved[0]["steps"], sorted({s for one in saved for s in one["seeds"]}), args.task)
        return

    out = Path(args.out)
    preset = [*MEASURED, *IMAGE_MEASURED] if args.task == "image" else MEASURED
    base = [f"config.{kv}" for kv in [*preset, *args.set]]  # later overrides win
    if args.task == "image":
        args.skip_overhead = True  # the overhead timing loads a text model
    sft = sft_checkpoint(out, base)
    seeds = [int(s) for s in args.seeds.split(",")]
    if args.overhead_only:
        rlcf_t, trl_t = overhead(sft, args.overhead_steps, args.overhead_blocks)
        print(f"GRPO step time, 64 completions: rlcf DeFacto trainer {rlcf_t:.3f} s, TRL GRPOTrainer {trl_t:.3f} s, ratio {rlcf_t / trl_t:.3f}")
        return
    arms = [a.strip() for a in args.arms.split(",") if a.strip()]
    if not arms or set(arms) - {"defacto", "grpo"}:
        parser.error(f"--arms takes defacto and/or grpo, got {args.arms!r}")
    results: dict[str, list[dict]] = {name: [] for name in arms}
    for seed in seeds:
        for name in results:
            own = [f"config.{kv}" for kv in [*(IMAGE_DEFACTO if args.task == "image" else []), *args.defacto_set]] if name == "defacto" else []
            results[name].append({**arm(name, sft, seed, args.steps, out, base, own), "_seed": seed})
            r = results[name][-1]
            print(f"seed {seed} {name:8s} " + "  ".join(f"{s}: acc {100 * r[s]['accuracy']:5.1f} abst {100 * r[s]['abstention']:5.1f}" for s in ("pos", "neg", "random")), flush=True)
    report(results, args.steps, seeds, args.task)
    if args.skip_overhead:
        (out / "results.json").write_text(json.dumps({"results": results, "steps": args.steps, "seeds": seeds}, indent=2))
        return
    rlcf_t, trl_t = overhead(sft, args.overhead_steps, args.overhead_blocks)
    print(f"\nGRPO step time, 64 completions: rlcf DeFacto trainer {rlcf_t:.3f} s, TRL GRPOTrainer {trl_t:.3f} s, ratio {rlcf_t / trl_t:.3f}")
    (out / "results.json").write_text(json.dumps({"results": results, "steps": args.steps, "seeds": seeds, "overhead": [rlcf_t, trl_t]}, indent=2))


if __name__ == "__main__":
    main()
