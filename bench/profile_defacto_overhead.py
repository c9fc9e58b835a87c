"""What rlcf's DeFacto trainer adds to a GRPO step, measured inside one run (cProfile) rather than as a difference
of two noisy step times.

Builds the trainer as ``DeFacto.fit`` does (``make_trainer``: guarded reward set, per-variant tally, run logger and
progress callbacks) on the SFT checkpoint of a ``bench_defacto.py`` run, trains 10 steps to warm up, then profiles
10 more and prints the cumulative time of rlcf's layers against the whole step. ``tallied`` (the tally wrapper)
contains the guard and the reward functions themselves, which TRL would call anyway, so it bounds the reward
layers' cost from above.

    python bench/profile_defacto_overhead.py --out runs/bench_defacto     # after bench_defacto.py wrote its SFT model
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import os
import pstats
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("RLCF_QUIET", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/bench_defacto", help="a bench_defacto.py output folder (its sft_path.txt)")
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import bench_defacto

    from rlcf.algos.defacto import DeFacto
    from rlcf.algos.llm_common import load_model
    from rlcf.algos.hf_quiet import quiet_transformers
    from rlcf.algos.llm_trainer import grpo_arguments
    from rlcf.config import load_experiment
    from rlcf.reward_set import RewardSet

    marker = Path(args.out) / "sft_path.txt"
    if not marker.exists():
        raise SystemExit(f"{marker} not found: run bench/bench_defacto.py --out {args.out} first (it writes the SFT model)")
    sft = Path(marker.read_text())
    exp = load_experiment(None, [f"config.{kv}" for kv in bench_defacto.MEASURED], algo="defacto")
    config = dataclasses.replace(exp.config, learning_rate=0.0, model=str(sft), batch_by_example=False, prompts_per_step=8)
    run_config = dataclasses.replace(exp.run, total_steps=args.steps, log_every=args.steps, checkpoint_every=10**6, seed=0)
    with tempfile.TemporaryDirectory() as tmp, quiet_transformers():
        grpo = grpo_arguments(config, run_config, Path(tmp), DeFacto.rollout_batch(config), [1.0] * len(config.rewards), gpu=False)
        model, tok = load_model(sft)
        trainer = DeFacto.make_trainer(config, model, tok, grpo, DeFacto.train_data(config), RewardSet(list(config.rewards)), run=None)
        trainer.train()  # warm-up
        profile = cProfile.Profile()
        profile.enable()
        trainer.train()
        profile.disable()
    stats = pstats.Stats(profile)

    def cumulative(name: str) -> float:
        return sum(v[3] for k, v in stats.stats.items() if k[2] == name)

    total = stats.total_tt
    print(f"{'layer':48s} {'s / step':>9s} {'share':>7s}")
    for name, what in (("tallied", "reward layer (tally + guard + the reward functions)"), ("on_log", "run logger callbacks"),
                       ("on_step_end", "progress callback"), ("flush", "per-variant flush")):
        t = cumulative(name)
        print(f"{what:48s} {t / args.steps:9.4f} {100 * t / total:6.2f}%")
    print(f"{'whole GRPO step':48s} {total / args.steps:9.4f} {100.0:6.2f}%")


if __name__ == "__main__":
    main()
