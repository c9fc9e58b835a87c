"""Collection throughput: a plain single-process loop vs `rlcf collect` with 0, 1 and 2 Ray actors.

All rows roll out the same behaviour (uniformly random actions) in the same env for the same number of
episodes, in one run; the table reports env-steps/s and each row's ratio to the plain loop. The plain loop is
the cheapest possible rollout (PettingZoo env + policy, nothing recorded). Ray start-up is excluded (a cluster
is started once per session); actor start-up is included.

    python bench/bench_collect.py [--env mpe-simple_spread] [--episodes 1000]
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

warnings.filterwarnings("ignore")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RLCF_QUIET", "1")


def plain_loop(spec, episodes: int, seed: int) -> int:
    from rlcf.envs.behaviour.policies import RandomPolicy

    env = spec.make()
    policy = RandomPolicy(spec, env.possible_agents, seed=seed, env=env.env)
    steps = 0
    for i in range(episodes):
        obs, _ = env.reset(seed=seed + i)
        while env.agents:
            obs, *_ = env.step(policy.act(obs))
            steps += 1
    return steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="mpe-simple_spread")
    parser.add_argument("--episodes", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from rlcf.data.episodes import BehaviourPlan
    from rlcf.data.tiers import CollectionPlan
    from rlcf.registry import envs
    from rlcf.runtime.cluster import ensure_ray
    from rlcf.runtime.collectors import collect_episodes

    spec = envs.get(args.env)
    plan = CollectionPlan(spec.id, args.episodes, args.seed, ((BehaviourPlan("random"), 1.0),))
    ensure_ray()
    rows = []
    start = time.perf_counter()
    steps = plain_loop(spec, args.episodes, args.seed)
    rows.append(("plain loop (1 process, nothing recorded)", steps, time.perf_counter() - start))
    for actors in (0, 1, 2):
        start = time.perf_counter()
        eps = collect_episodes(plan, spec=spec, actors=actors, progress=False)
        label = "rlcf collect, in process (--actors 0)" if actors == 0 else f"rlcf collect, {actors} Ray actor(s)"
        rows.append((label, sum(e.length for e in eps), time.perf_counter() - start))
    base = rows[0][1] / rows[0][2]
    print(f"Collection throughput on {spec.id}, {args.episodes} episodes, {os.cpu_count()} CPUs")
    print(f"{'how':44s} {'steps':>8s} {'seconds':>8s} {'steps/s':>9s} {'x plain':>8s}")
    for label, steps, seconds in rows:
        print(f"{label:44s} {steps:8d} {seconds:8.2f} {steps / seconds:9.0f} {steps / seconds / base:8.2f}")


if __name__ == "__main__":
    main()
