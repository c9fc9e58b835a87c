"""Score statistics: normalized scores, the interquartile mean, stratified-bootstrap intervals, summaries.

Pure numpy. The aggregate protocol is the one of Agarwal et al., "Deep Reinforcement Learning at the Edge of
the Statistical Precipice" (NeurIPS 2021, arXiv:2108.13264), with the definitions of its ``rliable`` library
(checked against **rliable 1.2.0** by ``tests/test_stats_vs_rliable.py``):

- the **interquartile mean** (IQM) of all ``runs × tasks`` normalized scores pooled together: the mean of the
  middle 50 %, robust to a few outlying runs yet using more of the data than the median
  (rliable's ``aggregate_iqm``);
- the **mean** and the **median** of the per-task mean scores: each task weighs the same whatever its number
  of runs (rliable's ``aggregate_mean`` and ``aggregate_median``; the median is *not* the median of the pooled
  runs);
- the **optimality gap**, ``γ − mean(min(score, γ))`` over all pooled runs, how far the runs fall short of the
  target ``γ`` (rliable's ``aggregate_optimality_gap``; ``γ = 100`` on the normalized-score scale, where
  rliable's scores run 0–1 and its ``γ = 1``);
- **95 % stratified-bootstrap confidence intervals**: each bootstrap replicate resamples the runs of every task
  with replacement, independently per task (each task keeps its own number of runs), then recomputes the
  statistic over the replicate; the interval is the percentile interval of the replicates (rliable's
  ``get_interval_estimates`` with ``method="percentile"``).

rliable itself is not a dependency: its 1.2.0 release requires ``arch<8``, and arch 7 fails to import under
the pandas 3 this stack pins, while arch 8 no longer accepts the ``random_state`` rliable passes. The test
therefore re-derives rliable's definitions independently, and compares with rliable itself when it imports.

Standard deviations (per-task "mean ± std over seeds") are **sample** standard deviations (``ddof=1``), the
unbiased-variance estimate of the spread between independent runs; a single run reports ``0.0``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Union

import numpy as np

from rlcf.errors import UsageError

__all__ = [
    "Interval",
    "Summary",
    "TaskSummary",
    "iqm",
    "normalized_score",
    "optimality_gap",
    "sample_std",
    "stratified_bootstrap_ci",
    "summarize",
]

#: Per-task scores: ``{task: per-run scores}``, or a ``[runs, tasks]`` matrix (rliable's layout).
Scores = Union[Mapping[str, Any], np.ndarray]
#: A statistic that reduces an array along ``axis`` (numpy's convention), e.g. :func:`iqm` or ``np.mean``.
Statistic = Callable[..., Any]
#: A statistic of per-task blocks: ``f([block per task]) -> array``, each block ``[..., runs of that task]``.
_TaskStatistic = Callable[[list[np.ndarray]], np.ndarray]


def normalized_score(returns: Any, ref_min: float, ref_max: float) -> Any:
    """``100 · (R − R_random) / (R_expert − R_random)``: 0 is the random policy, 100 the expert.

    Args:
        returns: a return or an array of returns.
        ref_min: the reference minimum (random policy's mean return).
        ref_max: the reference maximum (expert's mean return).

    Returns:
        A float for a scalar input, else an array of the same shape.

    Raises:
        UsageError: the references are equal (or not finite), so the score is undefined.
    """
    lo, hi = float(ref_min), float(ref_max)
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise UsageError(f"reference returns must be finite numbers, got ref_min={ref_min}, ref_max={ref_max}")
    if hi == lo:
        raise UsageError(
            f"ref_min and ref_max are both {lo}, so the normalized score is undefined; measure the references "
            "again (random and expert returns must differ) or pass different ref_min/ref_max"
        )
    out = 100.0 * (np.asarray(returns, dtype=np.float64) - lo) / (hi - lo)
    return float(out) if out.ndim == 0 else out


def iqm(x: Any, axis: int | None = None) -> Any:
    """Interquartile mean: the mean of the middle 50 % of ``x`` (25 % trimmed at each end).

    Equals ``scipy.stats.trim_mean(x, 0.25, axis=axis)``: with ``n`` values, ``floor(n / 4)`` are dropped at each
    end of the sorted values and the rest averaged. ``axis=None`` pools every value.
    """
    a = np.asarray(x, dtype=np.float64)
    if axis is None:
        a, axis = a.reshape(-1), 0
    n = a.shape[axis]
    if n == 0:
        raise UsageError("iqm of an empty array is undefined; give at least one score")
    cut = int(0.25 * n)
    middle = np.take(np.sort(a, axis=axis), np.arange(cut, n - cut), axis=axis)
    out = middle.mean(axis=axis)
    return float(out) if np.ndim(out) == 0 else out


def optimality_gap(x: Any, axis: int | None = None, gamma: float = 100.0) -> Any:
    """Optimality gap: ``gamma − mean(min(x, gamma))``, the average shortfall from the target ``gamma``.

    Scores above ``gamma`` count as ``gamma``, so exceeding the target on one task cannot hide a shortfall on
    another. ``gamma=100`` is the expert on the normalized-score scale. ``axis=None`` pools every value.
    """
    a = np.asarray(x, dtype=np.float64)
    if a.size == 0:
        raise UsageError("optimality gap of an empty array is undefined; give at least one score")
    out = float(gamma) - np.minimum(a, float(gamma)).mean(axis=axis)
    return float(out) if np.ndim(out) == 0 else out


def sample_std(x: Any) -> float:
    """Sample standard deviation (``ddof=1``) of ``x``; ``0.0`` for a single value."""
    a = np.asarray(x, dtype=np.float64).reshape(-1)
    return float(a.std(ddof=1)) if a.size > 1 else 0.0


def _as_task_scores(scores: Scores) -> dict[str, np.ndarray]:
    """``{task: 1-D float array}`` from a mapping or a ``[runs, tasks]`` matrix; validates."""
    if isinstance(scores, Mapping):
        out = {str(task): np.asarray(v, dtype=np.float64).reshape(-1) for task, v in scores.items()}
    else:
        matrix = np.asarray(scores, dtype=np.float64)
        if matrix.ndim != 2:
            raise UsageError(
                f"scores must be a mapping task -> per-run scores or a [runs, tasks] matrix, got shape {matrix.shape}"
            )
        out = {f"task_{j}": matrix[:, j] for j in range(matrix.shape[1])}
    if not out:
        raise UsageError("no tasks in scores; give at least one task with one run")
    for task, values in out.items():
        if values.size == 0:
            raise UsageError(f"task '{task}' has no scores; every task needs at least one run")
        if not np.all(np.isfinite(values)):
            raise UsageError(f"task '{task}' has non-finite scores {values.tolist()}; drop or fix those runs")
    return out


def _pooled(statistic: Statistic) -> _TaskStatistic:
    """A statistic of all runs of all tasks pooled, as a statistic of per-task blocks."""
    return lambda blocks: statistic(np.concatenate(blocks, axis=-1), axis=-1)


def _task_means(blocks: list[np.ndarray]) -> np.ndarray:
    """``[..., tasks]``: each task's mean over its runs."""
    return np.stack([block.mean(axis=-1) for block in blocks], axis=-1)


#: The named aggregates, with rliable's definitions (see the module docstring).
_NAMED: dict[str, _TaskStatistic] = {
    "iqm": _pooled(iqm),
    "mean": lambda blocks: _task_means(blocks).mean(axis=-1),
    "median": lambda blocks: np.median(_task_means(blocks), axis=-1),
    "optimality_gap": _pooled(optimality_gap),
}


def _resolve_statistic(statistic: Statistic | str) -> _TaskStatistic:
    if callable(statistic):
        return _pooled(statistic)
    if statistic not in _NAMED:
        raise UsageError(f"unknown statistic '{statistic}'; use one of {sorted(_NAMED)} or a function f(x, axis)")
    return _NAMED[statistic]


def stratified_bootstrap_ci(
    scores: Scores,
    statistic: Statistic | str = iqm,
    reps: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float, float]:
    """Point estimate and stratified-bootstrap percentile interval of an aggregate statistic.

    Each of ``reps`` replicates draws, for every task independently, as many runs as that task has, with
    replacement from that task's runs (the stratification: a replicate never moves weight between tasks). The
    statistic is then computed over all resampled scores pooled across tasks.

    Args:
        scores: ``{task: per-run scores}`` (tasks may have different numbers of runs) or a ``[runs, tasks]``
            matrix.
        statistic: one of the names ``"iqm"``, ``"mean"``, ``"median"``, ``"optimality_gap"`` (rliable's
            aggregates: the mean and median are of the per-task means, the others pool all runs), or a function
            ``f(x, axis=...)`` reducing an axis (``iqm``, ``np.mean``, ...), which is applied to all runs of all
            tasks pooled: it is called once on a ``[reps, total runs]`` array with ``axis=-1``, the columns
            grouped by task in the mapping's order.
        reps: number of bootstrap replicates.
        confidence: coverage of the interval, in (0, 1).
        seed: seed of the resampling generator (same seed, same interval).

    Returns:
        ``(point, lower, upper)``: the statistic of the data as given and the interval's bounds.
    """
    if not 0.0 < confidence < 1.0:
        raise UsageError(f"confidence must be in (0, 1), got {confidence}")
    if int(reps) < 1:
        raise UsageError(f"reps must be a positive number of bootstrap replicates, got {reps}")
    stat = _resolve_statistic(statistic)
    tasks = _as_task_scores(scores)
    point = float(np.asarray(stat([values[None, :] for values in tasks.values()]), dtype=np.float64).reshape(-1)[0])
    rng = np.random.default_rng(seed)
    # One [reps, n_task] block of indices per task, drawn within that task only.
    blocks = [values[rng.integers(0, values.size, size=(int(reps), values.size))] for values in tasks.values()]
    replicates = np.asarray(stat(blocks), dtype=np.float64)
    alpha = 100.0 * (1.0 - confidence) / 2.0
    lower, upper = np.percentile(replicates, [alpha, 100.0 - alpha])
    return point, float(lower), float(upper)


@dataclass(frozen=True)
class Interval:
    """A point estimate with its confidence interval."""

    point: float
    lower: float
    upper: float

    def to_dict(self) -> dict[str, float]:
        return {"point": self.point, "lower": self.lower, "upper": self.upper}


@dataclass(frozen=True)
class TaskSummary:
    """One task's scores over runs (seeds).

    Attributes:
        mean: mean over runs.
        std: sample standard deviation over runs (``ddof=1``; ``0.0`` for one run).
        scores: the per-run scores.
    """

    mean: float
    std: float
    scores: tuple[float, ...]

    @property
    def n(self) -> int:
        return len(self.scores)

    def to_dict(self) -> dict[str, Any]:
        return {"mean": self.mean, "std": self.std, "n": self.n, "scores": list(self.scores)}


@dataclass(frozen=True)
class Summary:
    """Per-task mean ± std and aggregate IQM, mean and median with stratified-bootstrap CIs, for one algorithm.

    Attributes:
        name: the algorithm (column name in tables and plots).
        tasks: ``{task: TaskSummary}`` in the input's order.
        iqm / mean / median: aggregates with their intervals: the IQM of all runs of all tasks pooled, the mean
            and the median of the per-task means (rliable's definitions).
        confidence: the intervals' coverage.
        reps: bootstrap replicates behind the intervals.
        metric: what the scores are (``"normalized_score"`` or ``"return"``).
    """

    name: str
    tasks: Mapping[str, TaskSummary]
    iqm: Interval
    mean: Interval
    median: Interval
    confidence: float = 0.95
    reps: int = 2000
    metric: str = "normalized_score"

    def __repr__(self) -> str:
        return (
            f"Summary({self.name!r}, metric={self.metric}, tasks={list(self.tasks)}, "
            f"iqm={self.iqm.point:.3g} [{self.iqm.lower:.3g}, {self.iqm.upper:.3g}])"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {
            "name": self.name,
            "metric": self.metric,
            "confidence": self.confidence,
            "reps": self.reps,
            "tasks": {task: s.to_dict() for task, s in self.tasks.items()},
            "aggregates": {"iqm": self.iqm.to_dict(), "mean": self.mean.to_dict(), "median": self.median.to_dict()},
        }


def summarize(
    per_task_seed_scores: Scores,
    *,
    name: str = "policy",
    metric: str = "normalized_score",
    reps: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Summary:
    """Summarize one algorithm's scores: per task mean ± sample std over seeds; IQM, mean, median with CIs.

    Args:
        per_task_seed_scores: ``{task: per-seed scores}`` or a ``[seeds, tasks]`` matrix.
        name: the algorithm's name.
        metric: what the scores are, for labels.
        reps / confidence / seed: see :func:`stratified_bootstrap_ci` (the three aggregates share the seed, so
            their intervals come from the same replicates).
    """
    tasks = _as_task_scores(per_task_seed_scores)
    per_task = {
        task: TaskSummary(float(values.mean()), sample_std(values), tuple(float(v) for v in values))
        for task, values in tasks.items()
    }
    aggregates = {
        stat: Interval(*stratified_bootstrap_ci(tasks, stat, reps=reps, confidence=confidence, seed=seed))
        for stat in ("iqm", "mean", "median")
    }
    return Summary(
        name=name,
        tasks=per_task,
        iqm=aggregates["iqm"],
        mean=aggregates["mean"],
        median=aggregates["median"],
        confidence=confidence,
        reps=int(reps),
        metric=metric,
    )
