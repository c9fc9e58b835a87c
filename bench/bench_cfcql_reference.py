"""Differential test: rlcf's continuous CFCQL against the reference implementation, same data, settings and budget.

The reference (thu-rllab/CFCQL ``continuous/algorithms/maddpg_cc.py``, ``MATD3CC.update``, the MPE branch of
``--cql --cf_cql --central_critic``: uniform samples, uniform λ, input BatchNorm, one actor update and target update
per ``ca_ratio`` = 5 critic updates) is not part of rlcf: clone it yourself and pass its folder. This script feeds it
minibatches from an rlcf dataset with the same reward scale, α, batch size, learning rate and seed as rlcf's CFCQL,
evaluates its deterministic actors in rlcf's env on the same evaluation episodes, and prints both score trajectories
and the critic's Q of dataset actions side by side:

    git clone https://github.com/thu-rllab/CFCQL /tmp/CFCQL
    python bench/bench_cfcql_reference.py --reference /tmp/CFCQL --tiers medium,expert --steps 3000

Like ``bench_cfcql_speed.py``, it makes ``Tensor.cuda`` a no-op while the reference runs and provides an empty
``tensorboard_logger`` module; nothing of the reference is copied into rlcf.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import types
import warnings
from pathlib import Path

warnings.filterwarnings("ignore")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RLCF_QUIET", "1")

ENV = "mpe-simple_spread-force"


def run_reference(reference: Path, dataset_id: str, steps: int, seed: int, lr: float, reward_scale: float, alpha: float,
                  batch: int, eval_every: int, eval_seed: int) -> dict:
    import numpy as np
    import torch

    from rlcf.data.marl import load_marl_dataset
    from rlcf.eval.runner import evaluate_policy
    from rlcf.registry import envs

    torch.manual_seed(seed)
    np.random.seed(seed)
    logger = types.ModuleType("tensorboard_logger")
    logger.configure = logger.log_value = lambda *a, **k: None
    sys.modules.setdefault("tensorboard_logger", logger)
    sys.path.insert(0, str(reference / "continuous"))
    from algorithms.maddpg_cc import MATD3CC  # type: ignore[import-not-found]

    data = load_marl_dataset(dataset_id)
    N, n, obs_dim = data.obs.shape
    act_dim = data.actions.shape[-1]

    class Box:  # what MATD3CC.init_from_env reads of a gym Box
        def __init__(self, k: int, high: float):
            self.shape, self.high, self.low = (k,), np.full(k, high, np.float32), np.full(k, -high, np.float32)

    env = types.SimpleNamespace(agent_types=["agent"] * n, observation_space=[Box(obs_dim, np.inf) for _ in range(n)],
                                action_space=[Box(act_dim, 1.0) for _ in range(n)])
    agent = MATD3CC.init_from_env(
        env, "simple_spread", "medium", tau=0.01, lr=lr, hidden_dim=64, cql=True, lse_temp=1.0, batch_size=batch,
        num_sampled_actions=10, omar=False, omar_iters=3, omar_mu=0.0, omar_sigma=2.0, omar_num_samples=10,
        omar_num_elites=10, env_info=None, logging_interval=100, no_log=True, cf_cql=True, soft_q=True,
        action_noise_scale=0.05, cf_omar=True, cf_tau=1.0, no_action_reg=False, bc_tau=0.0, sample_action_class="1-1-1",
        beta_action_noise=1e-5, cf_pol=True, cf_target=False,
    )
    agent.cql_alpha = alpha
    spec, meta = envs.get(data.env_id), data.metadata

    class Actors:
        agents = data.agents

        def reset(self, seed=None):
            pass

        @torch.no_grad()
        def act(self, obs):
            return {a: agent.agent.policys[i](torch.as_tensor(np.asarray(obs[a], np.float32))[None])[0].numpy().clip(-1, 1)
                    for i, a in enumerate(self.agents)}

    real_cuda = torch.Tensor.cuda
    torch.Tensor.cuda = lambda self, *a, **k: self
    gen = torch.Generator().manual_seed(seed)
    evals, q_data = [], []
    try:
        agent.prep_training(device="cpu")
        for t in range(steps):
            idx = torch.randint(N, (batch,), generator=gen)
            obs = [data.obs[idx, i] for i in range(n)]
            acs = [data.actions[idx, i] for i in range(n)]
            sample = (obs, acs, [data.rewards[idx].float() * reward_scale] * n, [data.next_obs[idx, i] for i in range(n)],
                      [data.terminals[idx].float()] * n, acs)
            if t % 5 == 0:
                agent.update(sample, t)
            else:
                agent.update(sample, t, only_critic=True)
                if t % 5 == 4:
                    agent.update_all_targets()
            if (t + 1) % max(1, steps // 10) == 0:
                with torch.no_grad():
                    q_data.append((t + 1, round(agent.agent.critic(torch.cat([torch.cat(obs, 1), *acs], 1))[0].mean().item(), 2)))
            if (t + 1) % eval_every == 0 or t + 1 == steps:
                nets = [*agent.agent.policys, agent.agent.critic]
                for net in nets:
                    net.eval()
                r = evaluate_policy(spec, Actors(), episodes=32, seed=eval_seed, ref_min=meta.get("ref_min_score"), ref_max=meta.get("ref_max_score"))
                evals.append((t + 1, round(r.normalized_score, 1)))
                for net in nets:
                    net.train()
    finally:
        torch.Tensor.cuda = real_cuda
    return {"evals": evals, "q_data": q_data}


def run_rlcf(dataset_id: str, steps: int, seed: int, lr: float, reward_scale: float, alpha: float, batch: int,
             eval_every: int, eval_seed: int, out: Path) -> dict:
    from rlcf.algorithm import train

    run, _ = train(None, [
        f"config.dataset={dataset_id}", f"config.batch_size={batch}", f"config.reward_scale={reward_scale}",
        f"config.cql_alpha={alpha}", "config.lambda_mode=uniform", "config.sample_sources=uniform",
        f"config.actor_lr={lr}", f"config.critic_lr={lr}", f"config.eval_seed={eval_seed}", f"run.total_steps={steps}",
        f"run.log_every={max(1, steps // 10)}", f"run.eval_every={eval_every}", f"run.checkpoint_every={steps}",
        f"run.seed={seed}", f"run.out_dir={out}", "run.name=differential",
    ], algo="cfcql")
    rows = [json.loads(line) for line in (run.path / "metrics.jsonl").read_text().splitlines() if line.strip()]
    evals = [(r["step"], round(v, 1)) for r in rows for k, v in r.items() if k.endswith("normalized_score")]
    q_data = [(r["step"], round(r["train/q_data"], 2)) for r in rows if "train/q_data" in r]
    return {"evals": evals, "q_data": q_data}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", type=Path, help="folder of a thu-rllab/CFCQL clone (required to run)")
    parser.add_argument("--tiers", default="medium,expert")
    parser.add_argument("--seeds", default="100")
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--reward-scale", type=float, default=20.0)
    parser.add_argument("--alpha", type=float, default=5.0)
    parser.add_argument("--eval-every", type=int, default=1000)
    parser.add_argument("--eval-seed", type=int, default=10_000)
    parser.add_argument("--episodes", type=int, default=4000, help="episodes per dataset when it must be collected")
    parser.add_argument("--out", default="runs/bench_cfcql_reference")
    args = parser.parse_args()
    if args.reference is None or not (args.reference / "continuous" / "algorithms" / "maddpg_cc.py").is_file():
        print("bench_cfcql_reference: needs --reference <folder of a thu-rllab/CFCQL clone> (git clone "
              "https://github.com/thu-rllab/CFCQL /tmp/CFCQL); nothing to compare, skipped")
        return

    import torch

    torch.set_num_threads(1)
    out = Path(args.out)
    os.environ.setdefault("MINARI_DATASETS_PATH", str((out / "datasets").resolve()))
    from rlcf.data.collect import collect_dataset
    from rlcf.data.marl import dataset_id_for, dataset_path

    common = dict(steps=args.steps, lr=args.lr, reward_scale=args.reward_scale, alpha=args.alpha, batch=args.batch,
                  eval_every=args.eval_every, eval_seed=args.eval_seed)
    print(f"{'tier':14s} {'seed':>4s} {'impl':10s} {'sec':>5s}  scores (step, normalized) | Q of dataset actions (step, Q)")
    for tier in args.tiers.split(","):
        dataset_id = dataset_id_for(ENV, tier)
        if not dataset_path(dataset_id).exists():
            collect_dataset(ENV, tier=tier, episodes=args.episodes, actors=2, seed=0, progress=False)
        for seed in (int(s) for s in args.seeds.split(",")):
            for impl in ("reference", "rlcf"):
                t0 = time.perf_counter()
                if impl == "reference":
                    res = run_reference(args.reference, dataset_id, seed=seed, **common)
                else:
                    res = run_rlcf(dataset_id, seed=seed, out=out / "runs", **common)
                print(f"{tier:14s} {seed:4d} {impl:10s} {time.perf_counter() - t0:5.0f}  {res['evals']} | {res['q_data'][-4:]}", flush=True)


if __name__ == "__main__":
    main()
