"""How many torch CPU threads a process should use: its share of the machine's CPUs.

torch sizes its intra-op thread pool to every core it can see. Processes that share a machine (Ray actors,
data-parallel workers, several runs side by side) then each spin that many threads on the same cores, and a
small network's step gets many times slower: issue 18 measured 1.03 steps/s with 2 threads per process under
contention against 17.4 with one. Every rlcf process that computes with torch sets its threads here, once, when
it starts work (the training loop, collection, evaluation and rollout actors).

The share is, first match wins:

1. an explicit value from a config (``run.threads``, ``RolloutConfig.threads``), when greater than 0;
2. ``OMP_NUM_THREADS``, when set to a positive integer: the user's choice, or inside a Ray worker the one Ray
   sets from the CPUs of the current task or actor (Ray leaves a value the user set alone);
3. inside a Ray task or actor, the CPUs Ray assigned to it (rounded down, at least 1; an actor without CPUs
   gets 1, as Ray itself decides);
4. otherwise the CPUs this process may run on (``os.sched_getaffinity``), divided among the ``workers`` that the
   caller knows run concurrently on them (rounded down, at least 1).

Setting the threads explicitly matters inside Ray even though Ray sets ``OMP_NUM_THREADS``: torch reads that
variable once, at import, and Ray reuses worker processes, so a worker that imported torch for an earlier task
of 2 CPUs keeps 2 threads for a later task of 1 CPU.
"""

from __future__ import annotations

import logging
import math
import os
import sys
from dataclasses import dataclass

from rlcf.errors import UsageError

log = logging.getLogger(__name__)

__all__ = ["ThreadShare", "ray_assigned_cpus", "set_torch_threads", "thread_share", "usable_cpus"]


@dataclass(frozen=True)
class ThreadShare:
    """A thread count and what decided it.

    Attributes:
        threads: torch intra-op threads, at least 1.
        source: ``"explicit"``, ``"OMP_NUM_THREADS"``, ``"ray"`` or ``"affinity"`` (see the module docstring).
    """

    threads: int
    source: str


def usable_cpus() -> int:
    """The CPUs this process may run on: its affinity mask where the OS has one, else ``os.cpu_count()``."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # macOS and Windows have no affinity call
        return max(1, os.cpu_count() or 1)


def ray_assigned_cpus() -> float | None:
    """The CPUs Ray assigned to the task or actor this process runs, or ``None`` outside a Ray worker.

    Never imports Ray: a process that has not imported it is not a Ray worker. An actor created without
    ``num_cpus`` holds no CPU and reports ``0.0``.
    """
    ray = sys.modules.get("ray")
    if ray is None or not ray.is_initialized():
        return None
    try:
        context = ray.get_runtime_context()
        # The check Ray's own accessors make: only a worker (task or actor) has assigned resources; a driver
        # (mode SCRIPT_MODE) has none.
        if context.worker.mode != ray._private.worker.WORKER_MODE:
            return None
        return float(context.get_assigned_resources().get("CPU", 0.0))
    except Exception:  # noqa: BLE001 - a Ray internals change must not stop training; fall back to affinity
        log.debug("could not read Ray's assigned resources; using the CPU affinity instead", exc_info=True)
        return None


def _omp_threads() -> int | None:
    raw = os.environ.get("OMP_NUM_THREADS", "").strip()
    try:
        value = int(raw)
    except ValueError:
        if raw:
            log.warning("OMP_NUM_THREADS=%r is not a whole number; ignoring it", raw)
        return None
    return value if value > 0 else None


def thread_share(explicit: int | None = None, *, workers: int = 1) -> ThreadShare:
    """This process's torch thread count (see the module docstring for the order of the rules).

    Args:
        explicit: a configured thread count; ``None`` or ``0`` means "decide from the CPU share".
        workers: processes the caller knows share this process's CPUs, itself included (rule 4 only).

    Returns:
        The thread count and the rule that decided it.

    Raises:
        UsageError: ``explicit`` is negative or ``workers`` is below 1.
    """
    if explicit is not None and int(explicit) < 0:
        raise UsageError(f"threads must be >= 0 (0: from the CPU share), got {explicit}")
    if int(workers) < 1:
        raise UsageError(f"workers must be >= 1, got {workers}")
    if explicit:
        return ThreadShare(int(explicit), "explicit")
    omp = _omp_threads()
    if omp is not None:
        return ThreadShare(omp, "OMP_NUM_THREADS")
    assigned = ray_assigned_cpus()
    if assigned is not None:
        return ThreadShare(max(1, math.floor(assigned)), "ray")
    return ThreadShare(max(1, usable_cpus() // int(workers)), "affinity")


def set_torch_threads(explicit: int | None = None, *, workers: int = 1, load_torch: bool = True) -> ThreadShare:
    """Set torch's intra-op threads to :func:`thread_share` and return the decision.

    Args:
        explicit / workers: see :func:`thread_share`.
        load_torch: import torch if this process has not yet. With ``False`` a process without torch is left
            alone: should it import torch later, torch reads ``OMP_NUM_THREADS``, which Ray sets in its workers.
            Code that may never need torch (scripted collection policies) passes ``False`` to stay light.
    """
    share = thread_share(explicit, workers=workers)
    if not load_torch and "torch" not in sys.modules:
        return share
    import torch

    if torch.get_num_threads() != share.threads:
        torch.set_num_threads(share.threads)
    log.debug("torch CPU threads: %d (%s)", share.threads, share.source)
    return share
