"""CFCQL against the offline-MARL baselines on rlcf's MPE datasets: final normalized scores, IQM with CIs.

For every env × tier dataset (collected first if it is not in the Minari store) and every algorithm × seed,
trains for a fixed number of gradient steps through `rlcf.algorithm.train` (run folders, checkpoints and all),
evaluates the final policy for 32 episodes on fixed seeds, and prints the per-dataset mean ± std over seeds
and the IQM with 95% stratified-bootstrap CIs; writes marl-eval JSON and a PNG plot beside the runs.

The budgets here are far below the paper's (CFCQL: ~10k critic steps at batch 1024 on MPE) so that the whole
table fits this 2-core machine; the exact settings are printed with the table.

    python bench/bench_offline_marl.py --envs mpe-simple_spread --tiers medium,expert --seeds 0,1,2 --steps 1000
"""

from __future__ import annotations

import argparse
import json
import os
import time
import warnings
from pathlib import Path

warnings.filterwarnings("ignore")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RLCF_QUIET", "1")


def ensure_dataset(env_id: str, tier: str, episodes: int, actors: int) -> str:
    from rlcf.data.collect import collect_dataset
    from rlcf.data.marl import dataset_id_for, dataset_path

    dataset_id = dataset_id_for(env_id, tier)
    if not dataset_path(dataset_id).exists():
        collect_dataset(env_id, tier=tier, episodes=episodes, actors=actors, seed=0, progress=False)
    return dataset_id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", default="mpe-simple_spread,mpe-simple_tag,mpe-simple_world_comm")
    parser.add_argument("--tiers", default="random,medium-replay,medium,expert")
    parser.add_argument("--algos", default="cfcql,bc,icql,macql,matd3bc")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--steps", type=int, default=1000, help="gradient steps per run")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--episodes", type=int, default=1000, help="episodes per collected dataset")
    parser.add_argument("--actors", type=int, default=2)
    parser.add_argument("--out", default="runs/bench_offline_marl")
    parser.add_argument("--set", action="append", default=[], metavar="ALGO:KEY=VALUE", help="per-algorithm config override")
    args = parser.parse_args()

    from rlcf.algorithm import train
    from rlcf.eval import SuiteResult, format_table, plot_aggregates, to_marl_eval_json
    from rlcf.registry import envs

    out = Path(args.out)
    os.environ.setdefault("MINARI_DATASETS_PATH", str((out / "datasets").resolve()))
    seeds = [int(s) for s in args.seeds.split(",")]
    algos = args.algos.split(",")
    extra: dict[str, list[str]] = {}
    for item in args.set:
        algo, _, kv = item.partition(":")
        extra.setdefault(algo, []).append(f"config.{kv}")
    tasks, results = [], {a: {} for a in algos}
    start = time.perf_counter()
    for env_id in args.envs.split(","):
        discrete = envs.get(env_id).action_type == "discrete"
        for tier in args.tiers.split(","):
            dataset_id = ensure_dataset(env_id, tier, args.episodes, args.actors)
            task = f"{env_id}/{tier}"
            tasks.append(task)
            for algo in algos:
                if algo == "matd3bc" and discrete:
                    continue
                results[algo][task] = {}
                for seed in seeds:
                    overrides = [
                        f"config.dataset={dataset_id}",
                        f"config.batch_size={args.batch_size}",
                        f"run.total_steps={args.steps}",
                        f"run.log_every={max(1, args.steps // 10)}",
                        f"run.checkpoint_every={args.steps}",
                        f"run.seed={seed}",
                        f"run.out_dir={out / 'runs'}",
                        f"run.name={env_id}-{tier}-s{seed}",
                        *extra.get(algo, []),
                    ]
                    run, final = train(None, overrides, algo=algo)
                    results[algo][task][seed] = run.algorithm.last_eval
                    score = run.algorithm.last_eval.normalized_score
                    print(f"{task:40s} {algo:8s} seed {seed}: normalized {score:7.1f}  ({time.perf_counter() - start:6.0f} s)", flush=True)
    suites = {
        algo: SuiteResult(algo, tuple(t for t in tasks if t in results[algo]), tuple(seeds), results[algo])
        for algo in algos
        if results[algo]
    }
    summaries = [s.summary() for s in suites.values()]
    print(f"\nFinal normalized score (100 = expert, 0 = random), mean ± std over seeds {seeds}; "
          f"{args.steps} steps at batch {args.batch_size}, {args.episodes}-episode datasets, 32 eval episodes")
    print(format_table(summaries))
    to_marl_eval_json(list(suites.values()), out / "marl_eval.json")
    plot_aggregates(summaries, out / "aggregate.png", title="offline MARL on rlcf MPE datasets")
    (out / "settings.json").write_text(json.dumps(vars(args), indent=2))
    print(f"\nmarl-eval JSON: {out / 'marl_eval.json'}\nplot: {out / 'aggregate.png'}")


if __name__ == "__main__":
    main()
