"""MPE behaviour policies and dataset tiers: reference returns, medium calibration, tier statistics.

For every MPE env (continuous and discrete actions) this measures, in one run and with fixed seeds:
1. the mean team return of the `random` policy and of the scripted expert over 100 episodes (the reference
   returns stored as ref_min_score / ref_max_score);
2. the medium epsilon: the random-action probability at which the noisy expert scores closest to a
   normalized 50 (grid search, 50 episodes per point);
3. per tier (random, medium, medium-replay, expert, mixed): return mean ± std, min/max and normalized score
   of a small collection through `rlcf.data.collect.collect_dataset` (Ray actors, written and re-read).

The numbers in envs/mpe.py (REFERENCE_RETURNS, MEDIUM_EPSILON) come from this script.

    python bench/bench_mpe_policies.py [--envs mpe-simple_spread,...] [--tier-episodes 50] [--actors 2]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import warnings

warnings.filterwarnings("ignore")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RLCF_QUIET", "1")

GRID = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)


def mean_return(spec, behaviour, episodes, seed, actors):
    import numpy as np

    from rlcf.data.tiers import CollectionPlan
    from rlcf.runtime.collectors import collect_episodes

    plan = CollectionPlan(spec.id, episodes, seed, ((behaviour, 1.0),), "bench")
    returns = [e.team_return for e in collect_episodes(plan, spec=spec, actors=actors, progress=False)]
    return float(np.mean(returns)), float(np.std(returns))


def main() -> None:
    from rlcf.registry import envs, suites

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_envs = ",".join(suites.get("mpe").envs + suites.get("mpe-discrete").envs)
    parser.add_argument("--envs", default=default_envs)
    parser.add_argument("--ref-episodes", type=int, default=100)
    parser.add_argument("--calib-episodes", type=int, default=50)
    parser.add_argument("--tier-episodes", type=int, default=50)
    parser.add_argument("--actors", type=int, default=2)
    parser.add_argument("--skip-tiers", action="store_true")
    parser.add_argument("--tiers-only", action="store_true", help="use the specs' stored references and epsilons")
    args = parser.parse_args()

    from rlcf.runtime.cluster import ensure_ray

    ensure_ray()
    os.environ["MINARI_DATASETS_PATH"] = tempfile.mkdtemp(prefix="rlcf-bench-")
    refs, calib = {}, {}
    if args.tiers_only:
        calib = {env_id: envs.get(env_id).medium_epsilon for env_id in args.envs.split(",")}
    else:
        calibrate(args, envs, refs, calib)
    if args.skip_tiers:
        return
    tier_table(args, envs, calib)


def calibrate(args, envs, refs, calib) -> None:
    from rlcf.data.collect import REFERENCE_SEED
    from rlcf.data.episodes import BehaviourPlan

    print(f"Reference returns: mean ± std team return over {args.ref_episodes} episodes (seed {REFERENCE_SEED})")
    print(f"{'env':34s} {'random':>18s} {'expert':>18s} {'medium eps':>10s} {'medium norm':>11s} {'s':>6s}")
    for env_id in args.envs.split(","):
        spec = envs.get(env_id)
        start = time.perf_counter()
        rnd = mean_return(spec, BehaviourPlan("random"), args.ref_episodes, REFERENCE_SEED, args.actors)
        exp = mean_return(spec, BehaviourPlan("expert"), args.ref_episodes, REFERENCE_SEED, args.actors)
        refs[env_id] = (rnd[0], exp[0])
        best = None
        for eps in GRID:
            m, _ = mean_return(spec, BehaviourPlan("expert", epsilon=eps), args.calib_episodes, 12345, args.actors)
            norm = 100 * (m - rnd[0]) / (exp[0] - rnd[0])
            if best is None or abs(norm - 50) < abs(best[1] - 50):
                best = (eps, norm)
        calib[env_id] = best[0]
        print(
            f"{env_id:34s} {rnd[0]:9.2f} ± {rnd[1]:6.2f} {exp[0]:9.2f} ± {exp[1]:6.2f} {best[0]:10.2f} {best[1]:11.1f}"
            f" {time.perf_counter() - start:6.1f}"
        )
    print("\nREFERENCE_RETURNS =", {k: (round(a, 3), round(b, 3)) for k, (a, b) in refs.items()})
    print("MEDIUM_EPSILON =", calib)


def tier_table(args, envs, calib) -> None:
    from dataclasses import replace

    from rlcf.data.collect import collect_dataset

    print(f"\nTier datasets ({args.tier_episodes} episodes each, written with rlcf collect and read back)")
    print(f"{'dataset':52s} {'return mean ± std':>20s} {'min':>8s} {'max':>8s} {'normalized':>10s}")
    from rlcf.data.marl import dataset_stats, load_marl_dataset

    for env_id in args.envs.split(","):
        spec = replace(envs.get(env_id), medium_epsilon=calib[env_id])
        envs.unregister(env_id)
        envs.register(env_id, spec)
        for tier in ("random", "medium-replay", "medium", "mixed", "expert"):
            result = collect_dataset(
                env_id, tier=tier, episodes=args.tier_episodes, actors=args.actors, ref_episodes=args.ref_episodes, progress=False
            )
            data = load_marl_dataset(result.dataset_id)
            s = dataset_stats(data.episode_returns(), data.metadata)
            print(
                f"{result.dataset_id:52s} {s['return_mean']:9.2f} ± {s['return_std']:7.2f} {s['return_min']:8.2f}"
                f" {s['return_max']:8.2f} {s['normalized_score']:10.1f}"
            )


if __name__ == "__main__":
    main()
