"""Rollout throughput: completions/s of LLM rollout actors, in process vs 1 vs 2 Ray actors, in one run.

Every row generates the same completions (sampling is seeded per prompt) from the same tiny model on the same
prompts and scores them with the format and answer rewards. Ray start-up is excluded (a cluster is started once per
session). "cold" rows are one ``generate_rollouts`` call that starts its actors (process start, torch and
transformers imports, model loading included, as a one-off call pays them); "warm" rows run on
:class:`RolloutActors` started and ready before the clock, as a training or evaluation loop that keeps them pays
per call. In-process rows load the model inside the clock. Each actor uses one torch thread and one Ray CPU; the
in-process row with ``threads=0`` uses this process's CPU share (the table says how many threads that was).

    python bench/bench_rollouts.py [--docs 24] [--generations 8] [--hidden 128 --layers 4] [--rounds 2]
"""

from __future__ import annotations

import argparse
import dataclasses
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
    parser.add_argument("--rounds", type=int, default=2, help="times every arm runs (arms alternate within a round)")
    args = parser.parse_args()

    import torch

    from rlcf.algos.llm_common import TinyLMConfig, build_tiny_lm
    from rlcf.envs.text.grounded_qa import completion_for, grounded_qa_rows
    from rlcf.runtime.cluster import ensure_ray
    from rlcf.runtime.rollouts import RolloutActors, RolloutConfig, generate_rollouts, prompt_rows
    from rlcf.runtime.threads import thread_share

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
    inproc = {t: dataclasses.replace(config, threads=t) for t in (0, 1)}
    share = thread_share(0)  # what threads=0 gives this process (an actor with 1 Ray CPU gets 1)
    results, outputs, startup = [], [], {}

    def timed(label: str, threads: str, fn) -> None:
        start = time.perf_counter()
        out = fn()
        seconds = time.perf_counter() - start
        outputs.append([(r["prompt_id"], r["group_index"], r["completion"]) for r in out])
        results.append((label, threads, len(out), seconds))
        print(f"  {label}: {len(out)} completions in {seconds:.1f} s ({len(out) / seconds:.1f}/s), load average "
              f"{os.getloadavg()[0]:.2f}", flush=True)

    for _ in range(args.rounds):
        timed("in process (--actors 0)", f"{share.threads} ({share.source})",
              lambda: generate_rollouts(inproc[0], rows, actors=0, prompts_per_shard=4, progress=False))
        timed("in process, threads=1", "1", lambda: generate_rollouts(inproc[1], rows, actors=0, progress=False))
        for actors in (1, 2):
            # Cold: one call starts the actors (a process importing torch and transformers, loading the model).
            timed(f"{actors} Ray actor(s), cold", "1 per actor",
                  lambda: generate_rollouts(config, rows, actors=actors, prompts_per_shard=4, progress=False))
        for actors in (1, 2):
            # Warm: RolloutActors kept across calls (a training or evaluation loop); start-up paid before the clock.
            start = time.perf_counter()
            with RolloutActors(config, actors) as pool:
                pool.wait_ready()
                startup.setdefault(actors, []).append(time.perf_counter() - start)
                print(f"  {actors} actor(s) started and ready in {startup[actors][-1]:.1f} s", flush=True)
                timed(f"{actors} Ray actor(s), warm", "1 per actor",
                      lambda: pool.generate(rows, prompts_per_shard=4, progress=False))
    same = all(o == outputs[0] for o in outputs)
    rates: dict[str, list[float]] = {}
    for label, _, n, s in results:
        rates.setdefault(label, []).append(n / s)
    threads_of = {label: t for label, t, _, _ in results}
    mean = {label: sum(v) / len(v) for label, v in rates.items()}
    print(f"\nrollouts: {len(rows)} prompts x {args.generations} completions, {args.max_new_tokens} new tokens, "
          f"model {model}, cores {os.cpu_count()}, rounds {args.rounds}, load average at the end "
          f"{tuple(round(x, 2) for x in os.getloadavg())}")
    print(f"identical completions across all rows and rounds: {same}")
    print("actor start-up to ready (s, each round): "
          + "; ".join(f"{n} actor(s) {', '.join(f'{t:.1f}' for t in ts)}" for n, ts in startup.items()) + "\n")
    print("| setting | torch threads | completions/s (each round) | mean completions/s | vs 1 actor (same kind) "
          "| vs in process (threads=0) | vs in process (threads=1) |")
    print("|---|---|---|---:|---:|---:|---:|")
    for label, values in rates.items():
        kind = "cold" if "cold" in label else "warm"
        vs1 = f"{mean[label] / mean[f'1 Ray actor(s), {kind}']:.2f}x" if "Ray actor" in label else ""
        print(f"| {label} | {threads_of[label]} | {', '.join(f'{v:.1f}' for v in values)} | {mean[label]:.1f} | {vs1} | "
              f"{mean[label] / mean['in process (--actors 0)']:.2f}x | {mean[label] / mean['in process, threads=1']:.2f}x |")


if __name__ == "__main__":
    main()
