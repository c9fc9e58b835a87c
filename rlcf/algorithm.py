"""What an algorithm is to rlcf, and the training loop that step-based algorithms share.

An algorithm registered in :data:`rlcf.algos` is a class with

- ``Config``: its hyperparameter dataclass (help text on every field, checks in ``__post_init__``);
- ``fit(experiment, run, resume=False)``: train, writing metrics and checkpoints into ``run``.

Step-based algorithms (CFCQL and the offline baselines) subclass :class:`StepAlgorithm` and write only the
update step, the evaluation and their state; the loop here does seeding, device selection, logging, periodic
evaluation, atomic checkpoints, resume, the progress bar, and a graceful stop: SIGINT (Ctrl-C) or SIGTERM ends
the current step, writes a checkpoint at it and raises :class:`~rlcf.errors.TrainingInterrupted` (``rlcf train``
exits with code 130), and ``--resume`` continues exactly as if nothing had happened. Trainer-based algorithms
(TRL's GRPO/SFT) subclass :class:`Algorithm` directly and hand the run folder to their trainer.

:func:`train` is what ``rlcf train`` calls.
"""

from __future__ import annotations

import abc
import logging
import signal
import threading
import time
from collections.abc import Mapping, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any, ClassVar

from rlcf.config import ExperimentConfig, RunConfig, load_experiment
from rlcf.errors import TrainingInterrupted, UsageError
from rlcf.runs import Run, find_latest_run

log = logging.getLogger(__name__)

__all__ = ["Algorithm", "StepAlgorithm", "train"]


class Algorithm(abc.ABC):
    """Base of every registered algorithm."""

    #: The hyperparameter dataclass; subclasses replace it.
    Config: ClassVar[type]
    #: Whether ``run.num_gpus``/``run.num_workers`` start Ray Train workers (step algorithms); trainer-based
    #: algorithms launch their own processes instead.
    ray_train_workers: ClassVar[bool] = False

    @classmethod
    @abc.abstractmethod
    def fit(cls, experiment: ExperimentConfig, run: Run, resume: bool = False) -> dict[str, Any]:
        """Train; return the final metrics. With ``resume``, continue from ``run``'s newest checkpoint."""


class StepAlgorithm(Algorithm):
    """An algorithm trained by repeated gradient steps, with the shared loop in :meth:`fit`.

    Subclasses implement :meth:`train_step`, :meth:`state_dict` and :meth:`load_state_dict`, and may
    implement :meth:`evaluate`. Keep every random stream the algorithm uses (batch sampling, exploration
    noise) in a ``torch.Generator`` or ``numpy.random.Generator`` held in the state dict: then a resumed run
    repeats exactly the steps an uninterrupted run would have taken.

    Args:
        config: the algorithm's ``Config``.
        run_config: seed, device and the step budget.
        device: the resolved ``torch.device``.
    """

    def __init__(self, config: Any, run_config: RunConfig, device: Any):
        self.config = config
        self.run_config = run_config
        self.device = device

    @abc.abstractmethod
    def train_step(self, step: int) -> Mapping[str, float]:
        """One update; returns namespaced metrics (``losses/…``, ``train/…``)."""

    def evaluate(self, step: int) -> Mapping[str, float]:
        """Evaluate the current policy; returns ``eval/…`` metrics. The default evaluates nothing."""
        return {}

    @property
    def compiles(self) -> bool:
        """Whether the first :meth:`train_step` compiles (``config.compile``), so the progress bar says "compiling…"
        meanwhile. Override it if your algorithm compiles under another switch."""
        return bool(getattr(self.config, "compile", False))

    @abc.abstractmethod
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue training: weights, optimizers, random generators, counters."""

    @abc.abstractmethod
    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`'s output."""

    #: Trained data-parallel by Ray Train workers when ``run.num_gpus``/``run.num_workers`` ask for them.
    ray_train_workers: ClassVar[bool] = True

    @classmethod
    def fit(
        cls, experiment: ExperimentConfig, run: Run, resume: bool = False, parallel: Any = None
    ) -> dict[str, Any]:
        """Train (``parallel``: the :class:`~rlcf.runtime.distributed.DataParallel` of a Ray Train worker)."""
        from rlcf.device import resolve_device
        from rlcf.progress import progress
        from rlcf.runtime.threads import set_torch_threads
        from rlcf.seeding import rng_state, seed_everything, set_rng_state

        rc = experiment.run
        if parallel is None:
            from rlcf.runtime.distributed import fit_with_ray_train, wants_workers

            if wants_workers(rc):
                return fit_with_ray_train(cls, experiment, run, resume)
        lead = parallel is None or parallel.rank == 0  # the one process that logs, evaluates and checkpoints
        set_torch_threads(rc.threads)  # a Ray Train worker gets the CPUs Ray assigned it
        if parallel is not None:
            from ray.train.torch import get_device

            device = get_device()
        else:
            device = resolve_device(rc.device)
        seed_everything(rc.seed)
        algo = cls(experiment.config, rc, device)
        run.algorithm = algo  # programmatic callers (notebooks, benchmarks) can inspect the trained algorithm
        start = 0
        if resume:
            ckpt = run.load_checkpoint(map_location=device)
            algo.load_state_dict(ckpt["algorithm"])
            set_rng_state(ckpt["rng"])
            start = int(ckpt["step"])
            if lead:
                run.truncate_metrics(start)
            log.info("resumed %s at step %d from %s", experiment.algo, start, run.path)
            if start >= rc.total_steps:
                log.info("the run already reached run.total_steps=%d; nothing to do", rc.total_steps)
        if parallel is not None:
            parallel.attach(algo)
            if parallel.rank:
                parallel.reseed(algo, rc.seed, start)

        def checkpoint(step: int) -> None:
            if lead:
                run.save_checkpoint({"algorithm": algo.state_dict(), "rng": rng_state()}, step)

        final: dict[str, Any] = {}
        window_start, window_steps = time.perf_counter(), 0
        # Data-parallel workers would have to agree on the step to stop at; there Ctrl-C interrupts as before.
        with _StopRequests(enabled=parallel is None) as stop, \
                progress(f"{experiment.algo} {rc.name}", total=rc.total_steps, initial=start) as bar:
            for step in range(start + 1, rc.total_steps + 1):
                # The count stands still while the first step compiles and while an evaluation runs: say why.
                with bar.phase("compiling…") if step == start + 1 and algo.compiles else nullcontext():
                    metrics = dict(algo.train_step(step))
                window_steps += 1
                if lead and (step % rc.log_every == 0 or step == rc.total_steps):
                    elapsed = time.perf_counter() - window_start
                    metrics["train/steps_per_second"] = window_steps / max(elapsed, 1e-9)
                    if parallel is not None:
                        metrics["train/workers"] = parallel.world_size
                    run.log(metrics, step)
                    window_start, window_steps = time.perf_counter(), 0
                final.update(metrics)
                if lead and ((rc.eval_every and step % rc.eval_every == 0) or step == rc.total_steps):
                    with bar.phase("final evaluation…" if step == rc.total_steps else "evaluating…"):
                        scores = dict(algo.evaluate(step))
                    run.log(scores, step)
                    final.update(scores)
                stopping = stop.signal is not None and step < rc.total_steps
                if step % rc.checkpoint_every == 0 or step == rc.total_steps or stopping:
                    checkpoint(step)
                shown = {k.rsplit("/", 1)[-1]: v for k, v in metrics.items() if k.startswith("losses/")}
                bar.advance(1, **shown)
                if stopping:
                    run.close()
                    raise TrainingInterrupted(
                        f"{stop.signal} at step {step} of {rc.total_steps}; checkpoint written. "
                        f"Resume with: rlcf train {run.path} --resume"
                    )
        if parallel is not None:  # every worker must end with the weights rank 0 saved
            synced = parallel.in_sync(algo)
            final["train/workers_in_sync"] = float(synced)
            if not synced:
                raise RuntimeError("data-parallel workers ended with different weights; please report this")
        run.close()
        return final


class _StopRequests:
    """Catches SIGINT and SIGTERM while the training loop runs (in the main thread only; signals are delivered
    there). The first one is recorded in :attr:`signal` for the loop to stop after its current step; a second
    one raises :class:`KeyboardInterrupt` at once, without a checkpoint. The previous handlers come back on exit.
    """

    def __init__(self, enabled: bool = True):
        self.enabled = enabled and threading.current_thread() is threading.main_thread()
        self.signal: str | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _StopRequests:
        if self.enabled:
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signal is not None:
            raise KeyboardInterrupt(f"second {signal.Signals(signum).name}: stopped at once, without a checkpoint")
        self.signal = signal.Signals(signum).name
        log.warning("%s: stopping after this step with a checkpoint (send it again to stop at once)", self.signal)

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
        self._previous.clear()


def train(
    source: str | Path | Mapping[str, Any] | None = None,
    overrides: Sequence[str] = (),
    *,
    algo: str | None = None,
    resume: str | Path | bool = False,
    plugins: Sequence[str] = (),
) -> tuple[Run, dict[str, Any]]:
    """Resolve an experiment, make (or reopen) its run folder, and train.

    Args:
        source: YAML experiment path or mapping (or ``None`` with ``algo``).
        overrides: ``key=value`` strings.
        algo: algorithm name when ``source`` does not give one.
        resume: ``False`` for a new run; a run folder to continue; ``True`` for the newest run folder of this
            experiment (same ``out_dir``, algorithm and run name) that has a checkpoint.
        plugins: modules or ``.py`` files to import and record in the new run's config (``rlcf --plugin``).

    A new run whose training fails before it wrote anything but its ``config.yaml`` (a missing or damaged
    dataset, a model that cannot be loaded) leaves no run folder behind.

    Returns:
        The run and its final metrics.
    """
    from rlcf.registry import algos

    if resume is False:
        experiment = load_experiment(source, overrides, algo=algo, plugins=plugins)
        run = Run.create(experiment)
        log.info("run folder: %s", run.path)
        try:
            return run, algos.get(experiment.algo).fit(experiment, run, resume=False)
        except BaseException:
            run.close()
            if run.remove_if_unstarted():
                log.info("removed the run folder %s: the run failed before it wrote anything", run.path)
            raise

    if resume is True:
        wanted = load_experiment(source, overrides, algo=algo)
        folder = find_latest_run(wanted.run.out_dir, wanted.algo, wanted.run.name)
        if folder is None:
            raise UsageError(
                f"--resume: no run of '{wanted.algo}' named '{wanted.run.name}' with a checkpoint under "
                f"'{wanted.run.out_dir}'; start it without --resume, or pass --resume RUN_FOLDER"
            )
        # Only the overrides the user typed may differ from the saved config (and only resumable ones).
        run = Run.open(folder, overrides)
    else:
        if source is not None:
            raise UsageError("--resume RUN_FOLDER takes the config from the run folder; do not pass a config too")
        run = Run.open(resume, overrides)
    log.info("resuming run folder: %s", run.path)
    return run, algos.get(run.experiment.algo).fit(run.experiment, run, resume=True)
