"""Build the fitted behaviour snapshots of :mod:`rlcf.envs.behaviour.fitted`: ``python -m rlcf.envs.behaviour.fitted_build build ENV_ID``.

Fits a shared MLP ``obs → tanh(force)`` to the env's scripted expert by regression, with DAgger rounds, keeps
snapshots of the first round's training history, and writes them with their build settings and measured scores
(atomically) to ``envs/behaviour/snapshots/<env>.npz`` or ``--out``.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rlcf.envs.behaviour.fitted import _CACHE, fitted_forces, snapshots_path
from rlcf.errors import UsageError

__all__ = ["build_fitted_behaviours"]


def _rollouts(spec: Any, act_fn: Any, label_fn: Any, episodes: int, seed: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Run ``episodes`` episodes acting with ``act_fn``; returns (obs, expert labels, mean team return)."""
    env = spec.make()
    obs_rows, label_rows, returns = [], [], []
    try:
        for e in range(episodes):
            obs, _ = env.reset(seed=seed + e)
            total = 0.0
            while env.agents:
                if label_fn is not None:
                    labels = label_fn(obs)
                    obs_rows.extend(np.asarray(obs[a], dtype=np.float64) for a in env.agents)
                    label_rows.extend(np.asarray(labels[a], dtype=np.float64) for a in env.agents)
                obs, _, _, _, infos = env.step(act_fn(obs))
                total += infos[env.possible_agents[0]]["team_reward"]
            returns.append(total)
    finally:
        env.close()
    if label_fn is None:
        return np.zeros((0,)), np.zeros((0,)), float(np.mean(returns))
    return np.stack(obs_rows), np.stack(label_rows), float(np.mean(returns))


def build_fitted_behaviours(
    env_id: str,
    out: Path,
    *,
    seed: int = 0,
    expert_episodes: int = 1000,
    dagger_rounds: int = 4,
    dagger_episodes: int = 300,
    steps_per_round: int = 3000,
    snapshot_every: int = 100,
    hidden: tuple[int, ...] = (64, 64),
    lr: float = 1e-3,
    batch_size: int = 256,
    medium_target: float = 50.0,
    eval_episodes: int = 50,
    eval_noise: float = 0.1,
) -> dict[str, Any]:
    """Fit an MLP to ``env_id``'s scripted expert (with DAgger) and write the tier snapshots to ``out``.

    Returns the info dict stored in the file (settings, stages and their measured normalized scores).
    """
    import torch

    from rlcf.envs.behaviour.policies import make_policy
    from rlcf.registry import envs

    spec = envs.get(env_id)
    if spec.action_map != "force2d":
        raise UsageError(f"fitted behaviours need a force-action env (action_map force2d); '{env_id}' is {spec.action_map}")
    torch.manual_seed(seed)
    start = time.perf_counter()
    env = spec.make()
    expert = make_policy("expert", spec, env.possible_agents, seed=seed, env=env)
    env.close()

    def label(obs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        return expert.act(obs)

    obs, y, expert_return = _rollouts(spec, label, label, expert_episodes, seed=seed * 100_003 + 1)
    mean, std = obs.mean(0), obs.std(0).clip(1e-3)
    sizes = (obs.shape[1], *hidden, 2)
    layers: list[torch.nn.Module] = []
    for k, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(torch.nn.Linear(a, b))
        if k < len(sizes) - 2:
            layers.append(torch.nn.ReLU())
    net = torch.nn.Sequential(*layers)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)

    def params() -> list[np.ndarray]:
        out_: list[np.ndarray] = []
        for m in net:
            if isinstance(m, torch.nn.Linear):
                out_ += [m.weight.detach().numpy().T.astype(np.float32).copy(), m.bias.detach().numpy().astype(np.float32).copy()]
        return out_

    def policy_fn(p: list[np.ndarray], noise: float, rng: np.random.Generator) -> Any:
        weights = [q.astype(np.float64) for q in p]
        return lambda o: fitted_forces(weights, mean, std, o, noise, rng)

    def score(p: list[np.ndarray]) -> float:
        _, _, ret = _rollouts(spec, policy_fn(p, eval_noise, np.random.default_rng(seed + 7)), None, eval_episodes, seed=10_000_019)
        return spec.normalized_score(ret)

    snapshots: list[list[np.ndarray]] = [params()]
    X, Y = torch.as_tensor((obs - mean) / std, dtype=torch.float32), torch.as_tensor(y, dtype=torch.float32)
    step = 0
    for rnd in range(dagger_rounds + 1):
        for _ in range(steps_per_round):
            idx = torch.randint(0, X.shape[0], (batch_size,), generator=gen)
            loss = ((torch.tanh(net(X[idx])) - Y[idx]) ** 2).sum(-1).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            if step % snapshot_every == 0 and rnd == 0:
                snapshots.append(params())
        if rnd < dagger_rounds:  # DAgger: the fit's own states (with exploration noise), labelled by the expert
            o2, y2, _ = _rollouts(spec, policy_fn(params(), eval_noise, np.random.default_rng(seed + rnd)), label, dagger_episodes,
                                  seed=seed * 100_003 + 1_000_000 * (rnd + 1))
            X = torch.cat([X, torch.as_tensor((o2 - mean) / std, dtype=torch.float32)])
            Y = torch.cat([Y, torch.as_tensor(y2, dtype=torch.float32)])
    final = params()
    # medium: the first snapshot of the first (plain regression) round whose closed-loop score reaches the target.
    scores = [score(p) for p in snapshots]
    medium_k = next((k for k, s in enumerate(scores) if s >= medium_target), len(snapshots) - 1)
    stages = {"init": snapshots[0]}
    history = snapshots[1:medium_k]
    for k, p in enumerate(history):
        stages[f"h{k:02d}"] = p
    stages["medium"] = snapshots[medium_k]
    stages["expert"] = final
    measured = {"init": scores[0], **{f"h{k:02d}": scores[k + 1] for k in range(len(history))}, "medium": scores[medium_k], "expert": score(final)}
    info = {
        "env_id": env_id,
        "stages": list(stages),
        "layers": [f"{kind}{k}" for k in range(len(sizes) - 1) for kind in ("w", "b")],
        "obs_mean": mean.tolist(),
        "obs_std": std.tolist(),
        "normalized_score_at_eval_noise": {k: round(v, 1) for k, v in measured.items()},
        "scripted_expert_return": expert_return,
        "settings": {
            "seed": seed, "expert_episodes": expert_episodes, "dagger_rounds": dagger_rounds, "dagger_episodes": dagger_episodes,
            "steps_per_round": steps_per_round, "snapshot_every": snapshot_every, "hidden": list(hidden), "lr": lr,
            "batch_size": batch_size, "medium_target": medium_target, "eval_episodes": eval_episodes, "eval_noise": eval_noise,
        },
        "build_seconds": round(time.perf_counter() - start, 1),
        "command": f"python -m rlcf.envs.behaviour.fitted_build build {env_id} --seed {seed}",
    }
    arrays = {f"{name}/{kind}": arr for name, p in stages.items() for kind, arr in zip(info["layers"], p)}
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, __info__=np.asarray(json.dumps(info)), **arrays)
    tmp.replace(out)
    _CACHE.pop(str(out.resolve()), None)
    return info


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rlcf.envs.behaviour.fitted_build", description="build fitted behaviour snapshots")
    sub = parser.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="fit an MLP to the env's scripted expert and write its tier snapshots")
    b.add_argument("env_id")
    b.add_argument("--out", default=None, help="output .npz (default: the shipped file of the env)")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--medium-target", type=float, default=50.0)
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    out = Path(args.out) if args.out else snapshots_path(args.env_id)
    info = build_fitted_behaviours(args.env_id, out, seed=args.seed, medium_target=args.medium_target)
    print(json.dumps({k: info[k] for k in ("env_id", "stages", "normalized_score_at_eval_noise", "build_seconds")}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


if __name__ == "__main__":
    raise SystemExit(main())
