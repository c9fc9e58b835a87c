"""Rollout throughput: completions/s of LLM rollout actors, in process vs 1 vs 2 Ray actors, in one run.

Every row generates the same completions (sampling is seeded per prompt) from the same tiny model on the same
prompts, scores them with the format and answer rewards, and the table reports completions/s and each row's ratio
to the 1-actor row. Ray start-up is excluded (a cluster is started once per session); actor start-up and model
loading are included, as a user pays them. Each actor uses one torch thread and one Ray CPU.

    python bench/bench_rollouts.py [--docs 24] [--generations 8] [--hidden 128 --layers 4]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import warnings
from pathlib import Path

warnings.filterwarnings("ignore")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RLCF_QUIET", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=24, help="documents; 3 prompts each (pos / neg / random)")
    parser.add_argument("--generations", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--model", help="a hub id or local folder instead of the tiny model")
    args = parser.parse_args()

    import torch

    from rlcf.algos.llm_common import TinyLMConfig, build_tiny_lm
    from rlcf.envs.text.grounded_qa import completion_for, grounded_qa_rows
    from rlcf.runtime.cluster import ensure_ray
    from rlcf.runtime.rollouts import RolloutConfig, generate_rollouts, prompt_rows

    torch.set_num_threads(1)
    model = args.model
    if model is None:
        model = str(Path(tempfile.mkdtemp(prefix="rlcf-bench-")) / "tiny")
        corpus = [r["prompt"] + completion_for(r) for r in grounded_qa_rows("train", 200)]
        build_tiny_lm(model, corpus, TinyLMConfig(hidden_size=args.hidden, layers=args.layers, intermediate_size=3 * args.hidden))
    rows = prompt_rows("grounded_qa", docs=args.docs)
    config = RolloutConfig(model=model, num_generations=args.generations, max_new_tokens=args.max_new_tokens,
                           rewards=("format", "answer"))
    ensure_ray()
    results, outputs = [], {}
    for actors in (0, 1, 2):
        start = time.perf_counter()
        out = generate_rollouts(config, rows, actors=actors, prompts_per_shard=4, progress=False)
        seconds = time.perf_counter() - start
        outputs[actors] = [(r["prompt_id"], r["group_index"], r["completion"]) for r in out]
        label = "in process (--actors 0)" if actors == 0 else f"{actors} Ray actor(s)"
        results.append((label, len(out), seconds))
    same = outputs[0] == outputs[1] == outputs[2]
    base = next(n / s for label, n, s in results if label.startswith("1 "))
    print(f"\nrollouts: {len(rows)} prompts x {args.generations} completions, model {model}, cores {os.cpu_count()}")
    print(f"identical completions across rows: {same}\n")
    print(f"| {'setting':<26} | {'completions':>11} | {'seconds':>8} | {'completions/s':>13} | {'vs 1 actor':>10} |")
    print(f"|{'-' * 28}|{'-' * 13}|{'-' * 10}|{'-' * 15}|{'-' * 12}|")
    for label, n, s in results:
        print(f"| {label:<26} | {n:>11} | {s:>8.1f} | {n / s:>13.1f} | {n / s / base:>9.2f}x |")


if __name__ == "__main__":
    main()
