"""Learning curve of the RLlib PPO behaviour policy next to the random policy, measured in the same run.

For each env: train ``rlcf.envs.behaviour.ppo_train.train_behaviour`` for a fixed number of iterations (default
hyperparameters unless given), roll out the ``random`` policy for ``--random-episodes`` episodes (seeds
0..N-1) and the final checkpoint through ``TrainedPolicy`` (deterministic and stochastic) on the same seeds,
then print the curve (iteration, env steps, team return) beside those references. Team return = sum over the
25 steps of the spec's team reward (mean of the controlled agents' rewards), as in ``curve.jsonl``.

    python bench/bench_rllib_behaviour.py                               # mpe-simple_spread, 60 iterations
    python bench/bench_rllib_behaviour.py --env mpe-simple_spread --env mpe-simple_tag --iterations 30
    python bench/bench_rllib_behaviour.py --json results.json

Wall time is about 7 s per 1,000-step iteration on a shared 2-core CPU machine, so the default takes ~8 min.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def rollout_team_returns(spec: Any, make: Any, episodes: int) -> list[float]:
    """Team returns of ``episodes`` episodes (env and policy seeded with the episode index)."""
    env = spec.make()
    returns = []
    try:
        for seed in range(episodes):
            policy = make(env, seed)
            obs, _ = env.reset(seed=seed)
            policy.reset(seed=seed)
            total = 0.0
            while env.agents:
                obs, _, _, _, infos = env.step(policy.act(obs))
                total += next(iter(infos.values()))["team_reward"]
            returns.append(total)
    finally:
        env.close()
    return returns


def summary(values: list[float]) -> str:
    mean = statistics.fmean(values)
    sem = statistics.stdev(values) / len(values) ** 0.5 if len(values) > 1 else 0.0
    return f"{mean:8.2f} ± {sem:4.2f}"


def bench_env(env_id: str, args: argparse.Namespace, out_dir: Path) -> dict[str, Any]:
    from rlcf.envs.behaviour.policies import make_policy
    from rlcf.envs.behaviour.ppo_train import train_behaviour
    from rlcf.envs.behaviour.trained import TrainedPolicy
    from rlcf.registry import envs

    spec = envs.get(env_id)
    start = time.monotonic()
    random_returns = rollout_team_returns(
        spec, lambda env, s: make_policy("random", spec, env.possible_agents, seed=s, env=env), args.random_episodes
    )
    random_s = time.monotonic() - start

    kwargs = {"iterations": args.iterations, "seed": args.seed, "checkpoint_every": args.iterations}
    for name in ("train_batch_size", "lr", "num_epochs"):
        if getattr(args, name) is not None:
            kwargs[name] = getattr(args, name)
    print(f"[{env_id}] training {args.iterations} iterations ...", file=sys.stderr, flush=True)
    start = time.monotonic()
    run = train_behaviour(
        env_id,
        out_dir,
        overwrite=True,
        progress=lambda r: print(
            f"  it {r['iteration']:3d}  steps {r['env_steps']:6d}  team {r['team_return']}", file=sys.stderr, flush=True
        ),
        **kwargs,
    )
    train_s = time.monotonic() - start
    curve = [json.loads(line) for line in (run / "curve.jsonl").read_text().splitlines()]

    trained: dict[str, list[float]] = {}
    for mode, deterministic in (("deterministic", True), ("stochastic", False)):
        trained[mode] = rollout_team_returns(
            spec,
            lambda env, s, d=deterministic: TrainedPolicy(
                spec, env.possible_agents, seed=s, env=env, checkpoint=run, deterministic=d
            ),
            args.random_episodes,
        )

    batch = json.loads((run / "behaviour.json").read_text())["hyperparameters"]["train_batch_size"]
    print(f"\n## {env_id}: PPO learning curve ({batch} env steps per iteration, seed {args.seed})")
    print(f"random policy, {args.random_episodes} episodes: team return {summary(random_returns)} (mean ± s.e.m.)")
    print(f"{'iteration':>9} {'env steps':>9} {'team return':>12} {'5-iter mean':>12} {'vs random':>10}")
    rand_mean = statistics.fmean(random_returns)
    for i, row in enumerate(curve):
        window = [r["team_return"] for r in curve[max(0, i - 4) : i + 1] if r["team_return"] is not None]
        smooth = statistics.fmean(window) if window else float("nan")
        if (i + 1) % args.print_every == 0 or i == 0 or i == len(curve) - 1:
            team = row["team_return"]
            print(f"{row['iteration']:9d} {row['env_steps']:9d} {team:12.2f} {smooth:12.2f} {smooth - rand_mean:+10.2f}")
    for mode, values in trained.items():
        print(f"final checkpoint, {mode}, same {args.random_episodes} seeds: team return {summary(values)}")
    print(f"wall: training {train_s:.0f} s ({train_s / max(len(curve), 1):.1f} s/iteration), random rollouts {random_s:.1f} s")
    return {
        "env_id": env_id,
        "run": str(run),
        "curve": curve,
        "random_team_returns": random_returns,
        "trained_team_returns": trained,
        "train_s": train_s,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", action="append", help="env id (repeatable); default mpe-simple_spread")
    parser.add_argument("--iterations", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-batch-size", type=int)
    parser.add_argument("--lr", type=float)
    parser.add_argument("--num-epochs", type=int)
    parser.add_argument("--random-episodes", type=int, default=50)
    parser.add_argument("--print-every", type=int, default=5, help="print every k-th curve row")
    parser.add_argument("--out-dir", help="keep the run folders here (default: a temporary folder)")
    parser.add_argument("--json", help="write all numbers to this file")
    args = parser.parse_args(argv)

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    import torch

    # Single-threaded torch for the evaluation roll-outs too (see train_behaviour: 2 threads on 2 busy cores
    # are ~30x slower for these tiny networks).
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory(prefix="rlcf-bench-behaviour-") as tmp:
        out_dir = Path(args.out_dir) if args.out_dir else Path(tmp)
        results = [bench_env(env_id, args, out_dir) for env_id in (args.env or ["mpe-simple_spread"])]
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
