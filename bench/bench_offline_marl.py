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


# The reference code's per-dataset α on MPE (continuous; ``maddpg_cc.py`` for the centralised critic = CFCQL and
# MACQL, ``maddpg.py`` for independent critics = ICQL), tiers in the order random, medium-replay, medium, expert.
REFERENCE_ALPHA = {
    "central": {"simple_spread": (0.5, 1.0, 5.0, 2.5), "simple_tag": (0.5, 0.5, 0.6, 2.0), "simple_world_comm": (0.5, 0.5, 0.32, 0.3)},
    "independent": {"simple_spread": (0.5, 1.0, 5.0, 5.0), "simple_tag": (0.5, 0.5, 5.0, 5.0), "simple_world_comm": (0.5, 1.0, 0.5, 5.0)},
}
TIER_ORDER = ("random", "medium-replay", "medium", "expert")


def reference_alpha(algo: str, env_id: str, tier: str, discrete: bool) -> list[str]:
    """``config.cql_alpha=…`` as the reference sets it for this dataset (continuous MPE only), else nothing."""
    kind = {"cfcql": "central", "macql": "central", "icql": "independent"}.get(algo)
    task = env_id.removeprefix("mpe-")
    if discrete or kind is None or task not in REFERENCE_ALPHA[kind] or tier not in TIER_ORDER:
        return []
    return [f"config.cql_alpha={REFERENCE_ALPHA[kind][task][TIER_ORDER.index(tier)]}"]


def load_results(path: Path) -> dict:
    """Finished runs from earlier invocations: ``{(task, algo, seed): EvalResult}``."""
    import numpy as np

    from rlcf.eval import EvalResult

    out = {}
    if path.exists():
        for line in path.read_text().splitlines():
            if line.strip():
                r = json.loads(line)
                out[(r["task"], r["algo"], r["seed"])] = EvalResult(
                    r["env_id"], r["eval_seed"], np.asarray(r["returns"]), np.asarray(r["lengths"]),
                    tuple(r["episode_seeds"]), r["ref_min"], r["ref_max"],
                )
    return out


def save_result(path: Path, key: tuple, result, seconds: float) -> None:
    task, algo, seed = key
    row = {
        "task": task, "algo": algo, "seed": seed, "env_id": result.env_id, "eval_seed": result.seed,
        "returns": result.returns.tolist(), "lengths": result.lengths.tolist(),
        "episode_seeds": list(result.episode_seeds), "ref_min": result.ref_min, "ref_max": result.ref_max,
        "normalized_score": result.normalized_score, "seconds": round(seconds, 1),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:  # one short line per write: appends from several processes do not interleave
        f.write(json.dumps(row) + "\n")


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
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default); run several "
                        "processes with --threads 1 and disjoint --envs to use more cores")
    parser.add_argument("--no-reference-alpha", dest="reference_alpha", action="store_false",
                        help="use the configs' cql_alpha instead of the reference's per-dataset values")
    parser.add_argument("--report", action="store_true", help="only print the table of the runs already in --out")
    parser.add_argument("--set", action="append", default=[], metavar="ALGO:KEY=VALUE",
                        help="per-algorithm config override ('*:KEY=VALUE' for every algorithm)")
    args = parser.parse_args()

    import torch

    from rlcf.algorithm import train
    from rlcf.eval import SuiteResult, format_table, plot_aggregates, to_marl_eval_json
    from rlcf.registry import envs

    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    os.environ.setdefault("MINARI_DATASETS_PATH", str((out / "datasets").resolve()))
    seeds = [int(s) for s in args.seeds.split(",")]
    algos = args.algos.split(",")
    extra: dict[str, list[str]] = {}
    for item in args.set:  # ALGO:KEY=VALUE; '*' as ALGO applies to every algorithm
        algo, _, kv = item.partition(":")
        for name in algos if algo == "*" else [algo]:
            extra.setdefault(name, []).append(f"config.{kv}")
    results_file = out / "results.jsonl"  # one line per finished run: reruns skip them, processes share them
    done = load_results(results_file)
    tasks, results = [], {a: {} for a in algos}
    start = time.perf_counter()
    for env_id in args.envs.split(","):
        discrete = envs.get(env_id).action_type == "discrete"
        for tier in args.tiers.split(","):
            task = f"{env_id}/{tier}"
            tasks.append(task)
            for algo in algos:
                if algo == "matd3bc" and discrete:
                    continue
                results[algo][task] = {}
                for seed in seeds:
                    key = (task, algo, seed)
                    if key in done:
                        results[algo][task][seed] = done[key]
                        continue
                    if args.report:
                        continue
                    dataset_id = ensure_dataset(env_id, tier, args.episodes, args.actors)
                    overrides = [
                        f"config.dataset={dataset_id}",
                        f"config.batch_size={args.batch_size}",
                        f"run.total_steps={args.steps}",
                        f"run.log_every={max(1, args.steps // 10)}",
                        f"run.checkpoint_every={args.steps}",
                        f"run.seed={seed}",
                        f"run.out_dir={out / 'runs'}",
                        f"run.name={env_id}-{tier}-s{seed}",
                        *(reference_alpha(algo, env_id, tier, discrete) if args.reference_alpha else []),
                        *extra.get(algo, []),
                    ]
                    t0 = time.perf_counter()
                    run, final = train(None, overrides, algo=algo)
                    result = run.algorithm.last_eval
                    results[algo][task][seed] = result
                    save_result(results_file, key, result, time.perf_counter() - t0)
                    score = result.normalized_score
                    print(f"{task:40s} {algo:8s} seed {seed}: normalized {score:7.1f}  ({time.perf_counter() - start:6.0f} s)", flush=True)
    results = {a: {t: r for t, r in per.items() if set(r) == set(seeds)} for a, per in results.items()}
    tasks = [t for t in tasks if any(t in results[a] for a in algos)]
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
