"""Data-parallel training of step algorithms (CFCQL and its baselines) on N workers with Ray Train.

``run.num_gpus: N`` trains on N GPUs, ``run.num_workers: N`` on N CPU workers of one CPU each (the same code
path, for testing and for CPU clusters). Each worker builds the algorithm, takes rank 0's weights, draws its own
batches (its random streams are seeded by rank), and before every optimizer step the gradients of that
optimizer's parameters are averaged over the workers in one all-reduce. The effective batch is
``N × config.batch_size``. Rank 0 alone logs, evaluates and writes checkpoints into the run folder, which every
worker must see (one machine, or a shared filesystem on a cluster); a resumed run restarts every worker from the
newest checkpoint.

Differences from ``torch.nn.parallel.DistributedDataParallel``, chosen so that no algorithm file changes:
gradients are averaged at the optimizer step instead of during backward (no overlap of communication with
compute, which at these model sizes costs nothing measurable), and gradient-norm clipping, where an algorithm
clips, applies to each worker's local gradient before the average.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from rlcf.errors import RlcfError
from rlcf.runtime.threads import thread_share

log = logging.getLogger(__name__)

__all__ = ["DataParallel", "fit_with_ray_train", "wants_workers"]


def wants_workers(run_config: Any) -> int:
    """Number of Ray Train workers a run asks for (0: train in this process)."""
    gpus = int(getattr(run_config, "num_gpus", 0) or 0)
    return gpus if gpus > 0 else int(getattr(run_config, "num_workers", 0) or 0)


class DataParallel:
    """Ties one algorithm instance to a ``torch.distributed`` process group (gloo on CPU, NCCL on GPU)."""

    def __init__(self, rank: int, world_size: int):
        self.rank = rank
        self.world_size = world_size

    def attach(self, algo: Any) -> None:
        """Copy rank 0's weights to every worker and average gradients before each optimizer step."""
        import torch

        for module in _modules(algo):
            for tensor in module.state_dict().values():
                torch.distributed.broadcast(tensor, src=0)
        for optimizer in _optimizers(algo):
            optimizer.register_step_pre_hook(self._average_gradients)

    def _average_gradients(self, optimizer: Any, args: Any, kwargs: Any) -> None:
        import torch

        params = [p for group in optimizer.param_groups for p in group["params"] if p.requires_grad]
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        if not grads:
            return
        flat = torch.cat([g.reshape(-1) for g in grads])
        torch.distributed.all_reduce(flat)
        flat /= self.world_size
        offset = 0
        for p, g in zip(params, grads):
            n = g.numel()
            p.grad = flat[offset:offset + n].view_as(p).clone()
            offset += n

    def in_sync(self, algo: Any) -> bool:
        """Whether every worker holds the same weights (checked once, at the end of training)."""
        import torch

        total = torch.zeros(2, dtype=torch.float64)
        for module in _modules(algo):
            for tensor in module.state_dict().values():
                if tensor.is_floating_point():
                    t = tensor.detach().double().cpu()
                    total += torch.stack([t.sum(), (t * t).sum()])
        gathered = [torch.zeros_like(total) for _ in range(self.world_size)]
        torch.distributed.all_gather(gathered, total.to(_collective_device()))
        return all(torch.allclose(g.cpu(), gathered[0].cpu(), rtol=1e-9, atol=1e-9) for g in gathered)

    def reseed(self, algo: Any, seed: int, step: int) -> None:
        """Give this worker's random streams their own seed (different batches per worker, reproducible)."""
        import numpy as np
        import torch

        from rlcf.seeding import seed_everything

        worker_seed = (seed * 1_000_003 + self.rank * 7919 + step) % 2**31
        seed_everything(worker_seed)
        for name, value in vars(algo).items():
            if isinstance(value, torch.Generator):
                value.manual_seed(worker_seed + hash(name) % 1000)
            elif isinstance(value, np.random.Generator):
                setattr(algo, name, np.random.default_rng([worker_seed, abs(hash(name)) % 1000]))


def _collective_device() -> Any:
    import torch

    backend = torch.distributed.get_backend()
    return torch.device("cuda", torch.cuda.current_device()) if backend == "nccl" else torch.device("cpu")


def _modules(algo: Any) -> list[Any]:
    import torch

    seen, out = set(), []
    for value in vars(algo).values():
        if isinstance(value, torch.nn.Module) and id(value) not in seen:
            seen.add(id(value))
            out.append(value)
    return out


def _optimizers(algo: Any) -> list[Any]:
    import torch

    return [v for v in vars(algo).values() if isinstance(v, torch.optim.Optimizer)]


def fit_with_ray_train(cls: Any, experiment: Any, run: Any, resume: bool) -> dict[str, Any]:
    """Train ``cls`` on Ray Train workers; returns rank 0's final metrics."""
    import ray
    from ray.train import RunConfig as RayRunConfig
    from ray.train import ScalingConfig
    from ray.train.torch import TorchTrainer

    from rlcf.runtime.cluster import ensure_ray

    rc = experiment.run
    workers = wants_workers(rc)
    use_gpu = int(rc.num_gpus or 0) > 0
    ensure_ray()
    available = ray.cluster_resources()
    need = {"GPU": workers} if use_gpu else {"CPU": workers}
    for key, count in need.items():
        if available.get(key, 0) < count:
            from rlcf.errors import UsageError

            field = "run.num_gpus" if use_gpu else "run.num_workers"
            raise UsageError(
                f"{field}={workers} asks for {count} {key}s but the Ray cluster has {available.get(key, 0):g}; "
                f"lower {field} or add nodes"
            )
    run.close()  # rank 0 reopens the run folder in its own process
    trainer = TorchTrainer(
        _train_loop,
        train_loop_config={
            "algo": experiment.algo, "run_path": str(run.path.resolve()), "resume": bool(resume), "cwd": os.getcwd(),
        },
        scaling_config=ScalingConfig(
            num_workers=workers, use_gpu=use_gpu, resources_per_worker={"GPU": 1} if use_gpu else {"CPU": 1}
        ),
        run_config=RayRunConfig(name=run.path.name, storage_path=str(run.path.resolve() / "ray_train")),
    )
    try:
        trainer.fit()
    except Exception as exc:  # Ray wraps worker errors; say which run failed and keep the workers' message
        raise RlcfError(f"data-parallel training of {run.path} on {workers} workers failed: {exc}") from exc
    final_file = run.path / "final_metrics.json"
    return json.loads(final_file.read_text()) if final_file.exists() else {}


def _train_loop(loop_config: dict[str, Any]) -> None:
    """One Ray Train worker: open the run folder, train with gradient averaging; rank 0 writes."""
    import ray.train

    from rlcf.atomic import atomic_write_text
    from rlcf.registry import algos
    from rlcf.runs import Run

    if Path(loop_config["cwd"]).is_dir():  # relative paths in the config mean what they meant to the driver
        os.chdir(loop_config["cwd"])
    context = ray.train.get_context()
    rank, world = context.get_world_rank(), context.get_world_size()
    if rank:
        from rlcf.progress import set_quiet

        set_quiet(True)
    run = Run.open(loop_config["run_path"])  # no overrides: opening writes nothing
    cls = algos.get(loop_config["algo"])
    final = cls.fit(run.experiment, run, resume=loop_config["resume"], parallel=DataParallel(rank, world))
    if rank == 0:
        atomic_write_text(Path(loop_config["run_path"]) / "final_metrics.json", json.dumps(final, default=float))


# -- TRL trainers: one process per GPU (or CPU worker) under torchrun --------------------------------------------
#
# TRL's trainers are distributed through accelerate, which reads torchrun's environment (RANK, WORLD_SIZE, ...).
# A trainer-based algorithm asked for N > 1 workers re-runs its own ``fit`` in N processes started by
# ``torch.distributed.run`` (torchrun) on the run folder the driver already created. Inside, rank 0 alone builds
# the tiny model, evaluates, logs and writes the final model; every rank trains.


def launched_by_torchrun() -> bool:
    """Whether this process is one of several started by torchrun (or any launcher that sets WORLD_SIZE)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def is_lead() -> bool:
    """Rank 0 of a distributed run, or the only process."""
    return int(os.environ.get("RANK", "0")) == 0


def barrier() -> None:
    """Wait for every process of the group (no-op outside a distributed run)."""
    import torch

    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()


def fit_with_torchrun(cls: Any, experiment: Any, run: Any, resume: bool) -> dict[str, Any]:
    """Run ``cls.fit`` on the run folder in ``N`` torchrun processes; returns rank 0's final metrics."""
    import subprocess
    import sys

    rc = experiment.run
    workers = wants_workers(rc)
    run.close()
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={workers}",
           "-m", "rlcf.runtime.distributed", str(run.path.resolve())]
    if resume:
        cmd.append("--resume")
    env = dict(os.environ)
    # The workers share this machine's CPUs (each still applies an explicit run.threads).
    env.setdefault("OMP_NUM_THREADS", str(thread_share(workers=workers).threads))
    log.info("training %s on %d processes: %s", experiment.algo, workers, " ".join(cmd))
    proc = subprocess.run(cmd, env=env)
    if proc.returncode != 0:
        raise RlcfError(f"distributed training of {run.path} on {workers} processes failed (exit {proc.returncode}); "
                        "the workers' errors are above")
    final_file = run.path / "final_metrics.json"
    return json.loads(final_file.read_text()) if final_file.exists() else {}


def _torchrun_main(argv: list[str]) -> int:
    import argparse

    import torch

    from rlcf.atomic import atomic_write_text
    from rlcf.registry import algos
    from rlcf.runs import Run

    p = argparse.ArgumentParser(prog="python -m rlcf.runtime.distributed")
    p.add_argument("run_path")
    p.add_argument("--resume", action="store_true")
    args = p.parse_args(argv)
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    if not is_lead():
        from rlcf.progress import set_quiet

        set_quiet(True)
    run = Run.open(args.run_path)
    final = algos.get(run.experiment.algo).fit(run.experiment, run, resume=args.resume)
    if is_lead():
        atomic_write_text(Path(args.run_path) / "final_metrics.json", json.dumps(final, default=float))
    # Tear the process group down before the interpreter exits: left to exit, a worker's gloo threads can still be
    # running when their C++ objects are destroyed ("terminate called without an active exception", exit -6),
    # failing a run whose work is done.
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(_torchrun_main(sys.argv[1:]))
