"""Gradient updates per second of rlcf's continuous CFCQL against the reference implementation, side by side.

rlcf's update (``rlcf.algos.cfcql.CFCQL.train_step`` on a real simple_spread dataset, a fresh batch sampled every
step) and the reference's (thu-rllab/CFCQL ``continuous/algorithms/maddpg_cc.py`` ``MATD3CC.update``, the MPE
branch of ``--cql --cf_cql --central_critic``) run in alternating timed blocks in one process, with the same
batch size, hidden width (64), 3 agents × 5-d actions, 10 uniform samples per agent, twin critic and one actor
update per 5 critic updates. The reference is not part of rlcf: clone it yourself and pass its folder:

    git clone https://github.com/thu-rllab/CFCQL /tmp/CFCQL
    python bench/bench_cfcql_speed.py --reference /tmp/CFCQL --batch 256,1024

Without ``--reference`` only rlcf's numbers are printed. To make the reference run on a CPU-only machine this
script (not the reference's files) makes ``Tensor.cuda`` a no-op while the reference runs (its MPE branch calls
``.cuda()`` on the sampled actions), provides an empty ``tensorboard_logger`` module (logging is off), and builds
MATD3CC from a minimal stand-in for the particle env (only the spaces' shapes are read). The reference reuses one
fixed random batch (no sampling cost); rlcf samples from its dataset each step, so the comparison favours the
reference slightly.

Allocator: rlcf's offline-MARL algorithms keep freed CPU memory for reuse (``rlcf.device.keep_freed_cpu_memory``)
instead of page-faulting their activations in every step. Each timed block runs under its arm's own setting:
rlcf's arms with it, the reference and the ``--before`` arm (rlcf with glibc's default thresholds, i.e. rlcf
before the change) without it, so every arm runs as it would on its own.

    python bench/bench_cfcql_speed.py --threads 1 --before --no-compile      # rlcf before/after, side by side
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import types
import warnings
from pathlib import Path

warnings.filterwarnings("ignore")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RLCF_QUIET", "1")

N_AGENTS, OBS_DIM, ACT_DIM, CA_RATIO = 3, 18, 5, 5


def rlcf_stepper(batch: int, lambda_mode: str, dataset_id: str, compile: bool = False):
    from rlcf.config import load_experiment
    from rlcf.device import resolve_device
    from rlcf.registry import algos

    overrides = [f"config.batch_size={batch}", f"config.dataset={dataset_id}", f"config.lambda_mode={lambda_mode}", "config.sample_sources=uniform", f"config.compile={compile}"]
    exp = load_experiment(None, overrides, algo="cfcql")
    algo = algos.get("cfcql")(exp.config, exp.run, resolve_device("cpu"))
    state = {"step": 0}

    def step() -> None:
        algo.train_step(state["step"])
        state["step"] += 1

    return step


def reference_stepper(reference: Path, batch: int):
    import numpy as np
    import torch

    logger = types.ModuleType("tensorboard_logger")  # imported by the reference's utils/tb_log.py; logging is off
    logger.configure = logger.log_value = lambda *args, **kwargs: None
    sys.modules.setdefault("tensorboard_logger", logger)
    sys.path.insert(0, str(reference / "continuous"))
    from algorithms.maddpg_cc import MATD3CC  # type: ignore[import-not-found]

    class Box:  # what MATD3CC.init_from_env reads of a gym Box
        def __init__(self, n: int, high: float):
            self.shape, self.high, self.low = (n,), np.full(n, high, np.float32), np.full(n, -high, np.float32)

    env = types.SimpleNamespace(
        agent_types=["agent"] * N_AGENTS,
        observation_space=[Box(OBS_DIM, np.inf) for _ in range(N_AGENTS)],
        action_space=[Box(ACT_DIM, 1.0) for _ in range(N_AGENTS)],
    )
    # main.py's settings for `--env_id simple_spread --data_type medium --cql --cf_cql --central_critic`.
    agent = MATD3CC.init_from_env(
        env, "simple_spread", "medium", tau=0.01, lr=0.01, hidden_dim=64, cql=True, lse_temp=1.0,
        batch_size=batch, num_sampled_actions=10, omar=False, omar_iters=3, omar_mu=0.0, omar_sigma=2.0,
        omar_num_samples=10, omar_num_elites=10, env_info=None, logging_interval=100, no_log=True, cf_cql=True,
        soft_q=True, action_noise_scale=0.05, cf_omar=True, cf_tau=1.0, no_action_reg=False, bc_tau=0.0,
        sample_action_class="1-1-1", beta_action_noise=1e-5, cf_pol=True, cf_target=False,
    )
    agent.prep_training(device="cpu")
    g = torch.Generator().manual_seed(1)
    per_agent = lambda *shape: [torch.randn(*shape, generator=g) for _ in range(N_AGENTS)]  # noqa: E731
    actions = lambda: [torch.rand(batch, ACT_DIM, generator=g) * 2 - 1 for _ in range(N_AGENTS)]  # noqa: E731
    done = (torch.rand(batch, generator=g) < 0.04).float()
    sample = (per_agent(batch, OBS_DIM), actions(), per_agent(batch), per_agent(batch, OBS_DIM), [done] * N_AGENTS, actions())
    state = {"t": 0}
    real_cuda = torch.Tensor.cuda

    def step() -> None:  # one critic update; every CA_RATIO-th also updates the actors and the targets
        torch.Tensor.cuda = lambda self, *a, **k: self
        try:
            t = state["t"]
            if t % CA_RATIO == 0:
                agent.update(sample, t)
            else:
                agent.update(sample, t, only_critic=True)
                if t % CA_RATIO == CA_RATIO - 1:
                    agent.update_all_targets()
            state["t"] = t + 1
        finally:
            torch.Tensor.cuda = real_cuda

    return step


def timed(step, updates: int) -> float:
    start = time.perf_counter()
    for _ in range(updates):
        step()
    return updates / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", type=Path, help="folder of a thu-rllab/CFCQL clone (optional)")
    parser.add_argument("--batch", default="256,1024", help="comma-separated batch sizes")
    parser.add_argument("--updates", type=int, default=25, help="critic updates per timed block (a multiple of 5)")
    parser.add_argument("--blocks", type=int, default=3, help="alternating timed blocks per implementation")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-compile", dest="compile", action="store_false", help="skip the config.compile=true arms")
    parser.add_argument("--before", action="store_true", help="add rlcf arms under glibc's default malloc thresholds")
    parser.add_argument("--out", default="runs/bench_cfcql_speed")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    os.environ.setdefault("MINARI_DATASETS_PATH", str((Path(args.out) / "datasets").resolve()))
    from rlcf.data.collect import collect_dataset
    from rlcf.data.marl import dataset_id_for, dataset_path
    from rlcf.device import keep_freed_cpu_memory

    dataset_id = dataset_id_for("mpe-simple_spread", "medium")
    if not dataset_path(dataset_id).exists():
        collect_dataset("mpe-simple_spread", tier="medium", episodes=100, actors=1, seed=0, progress=False)

    rows = []
    for batch in (int(b) for b in args.batch.split(",")):
        steppers = {
            "rlcf cfcql (uniform λ)": rlcf_stepper(batch, "uniform", dataset_id),
            "rlcf cfcql (softmax λ)": rlcf_stepper(batch, "softmax", dataset_id),
        }
        if args.compile:
            steppers["rlcf cfcql compiled (uniform λ)"] = rlcf_stepper(batch, "uniform", dataset_id, compile=True)
            steppers["rlcf cfcql compiled (softmax λ)"] = rlcf_stepper(batch, "softmax", dataset_id, compile=True)
        keeps = dict.fromkeys(steppers, True)
        if args.before:
            for lam in ("uniform", "softmax"):
                name = f"rlcf cfcql before, glibc malloc ({lam} λ)"
                steppers[name], keeps[name] = rlcf_stepper(batch, lam, dataset_id), False
        if args.reference:
            name = "reference MATD3CC (uniform λ)"
            steppers[name], keeps[name] = reference_stepper(args.reference.resolve(), batch), False
        for name, step in steppers.items():  # warm-up (compiles the compiled arms' critic and actor losses)
            keep_freed_cpu_memory(keeps[name])
            timed(step, 2 * CA_RATIO)
        rates: dict[str, list[float]] = {name: [] for name in steppers}
        for _ in range(args.blocks):  # alternate so that load changes hit every implementation alike
            for name, step in steppers.items():
                keep_freed_cpu_memory(keeps[name])
                rates[name].append(timed(step, args.updates))
        for name, r in rates.items():
            rows.append((batch, name, sorted(r)[len(r) // 2]))
        print(f"batch {batch}: done", file=sys.stderr, flush=True)

    print(f"\nCritic gradient updates per second (median of {args.blocks} alternating blocks of {args.updates}), "
          f"{args.threads} threads, hidden 64, 3 agents x 5-d actions, 10 uniform samples/agent, 1 actor step per 5")
    print(f"{'batch':>6}  {'implementation':44s} {'updates/s':>10}  {'vs reference':>12}")
    for batch, name, rate in rows:
        ref = next((r for b, n, r in rows if b == batch and n.startswith("reference")), None)
        ratio = f"{rate / ref:11.2f}x" if ref else "           -"
        print(f"{batch:>6}  {name:44s} {rate:10.2f}  {ratio}")


if __name__ == "__main__":
    main()
