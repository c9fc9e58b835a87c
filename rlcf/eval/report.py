"""Reports of evaluations: marl-eval JSON, an aggregate plot, a plain-text table.

Every file is written atomically (:mod:`rlcf.atomic`). matplotlib is imported only by :func:`plot_aggregates`.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any, Union

from rlcf.atomic import atomic_write, atomic_write_text
from rlcf.errors import UsageError
from rlcf.eval.runner import SuiteResult
from rlcf.eval.stats import Summary

__all__ = ["format_table", "marl_eval_data", "plot_aggregates", "to_marl_eval_json"]

Results = Union[SuiteResult, Sequence[SuiteResult], Mapping[str, SuiteResult]]
Summaries = Union[Summary, Sequence[Summary], Mapping[str, Summary]]


def _by_algorithm(items: Any, kind: type, what: str) -> dict[str, Any]:
    """``{algorithm: item}`` from one item, a sequence (named by each item) or a mapping."""
    if isinstance(items, kind):
        items = [items]
    if isinstance(items, Mapping):
        out = {str(k): v for k, v in items.items()}
    else:
        out = {}
        for item in items:
            name = item.algorithm if kind is SuiteResult else item.name
            if name in out:
                raise UsageError(f"two {what}s are named '{name}'; give a mapping {{name: {what}}} to tell them apart")
            out[name] = item
    if not out:
        raise UsageError(f"no {what}s to report")
    bad = [k for k, v in out.items() if not isinstance(v, kind)]
    if bad:
        raise UsageError(f"{bad} are not {kind.__name__} objects; give {kind.__name__}s (see rlcf.eval)")
    return out


def _split_env_id(env_id: str) -> tuple[str, str]:
    """``"mpe-simple_spread"`` → ``("mpe", "simple_spread")``; an id without ``-`` is its own env and task."""
    env, sep, task = env_id.partition("-")
    return (env, task) if sep and task else (env_id, env_id)


def marl_eval_data(results: Results, *, env_name: str | None = None, step_count: int = 0) -> dict[str, Any]:
    """The dict :func:`to_marl_eval_json` writes (see there for the layout)."""
    by_algo = _by_algorithm(results, SuiteResult, "suite result")
    with_scores = {
        r.has_references for res in by_algo.values() for runs in res.results.values() for r in runs.values()
    }
    if with_scores == {True, False}:
        raise UsageError(
            "some evaluations have reference returns and some do not, so 'normalized_score' would be missing for "
            "part of the data (marl-eval needs every run to log the same metrics); pass the same refs everywhere"
        )
    include_scores = with_scores == {True}
    data: dict[str, Any] = {}
    for algo, res in by_algo.items():
        for env_id in res.env_ids:
            env, task = _split_env_id(env_id)
            env = (env_name or env).lower()
            runs = data.setdefault(env, {}).setdefault(task.lower(), {}).setdefault(algo, {})
            for i, seed in enumerate(res.seeds):
                result = res.results[env_id][seed]
                metrics: dict[str, list[float]] = {"return": [float(r) for r in result.returns]}
                if include_scores:
                    scores = result.normalized_scores
                    assert scores is not None  # include_scores: every result has references
                    metrics["normalized_score"] = [float(v) for v in scores]
                runs[f"run_{i}"] = {
                    "step_0": {"step_count": int(step_count), **metrics},
                    "absolute_metrics": {k: list(v) for k, v in metrics.items()},
                }
    return data


def to_marl_eval_json(
    results: Results, path: str | os.PathLike[str], *, env_name: str | None = None, step_count: int = 0
) -> dict[str, Any]:
    """Write evaluations as the raw-data JSON that InstaDeep's ``marl-eval`` consumes.

    Layout (one evaluation per run, the final policy's, so one logging step)::

        {
          "<env>": {                          # env id's prefix ("mpe" of "mpe-simple_spread"), or env_name
            "<task>": {                       # the rest of the env id ("simple_spread")
              "<algorithm>": {                # SuiteResult.algorithm, or the mapping's key
                "run_<i>": {                  # i = position of the seed in SuiteResult.seeds (0-based)
                  "step_0": {
                    "step_count": <int>,      # step_count argument (training steps of the evaluated policy)
                    "return": [<team return of each episode>],
                    "normalized_score": [<normalized score of each episode>]
                  },
                  "absolute_metrics": {       # always the last key of a run, as marl-eval expects
                    "return": [...],          # the same final evaluation (rlcf reports the final policy,
                    "normalized_score": [...] # not the best one)
                  }
                }
              }
            }
          }
        }

    Env and task keys are lower-cased (marl-eval lower-cases the names it looks up). ``normalized_score`` is
    present when every evaluation has reference returns and absent when none has; a mix is refused. Give
    ``metrics_to_normalize=["return"]`` to marl-eval to min-max normalize returns its own way;
    ``normalized_score`` is already normalized.

    Args:
        results: a :class:`SuiteResult`, several (named by their ``algorithm``), or ``{algorithm: SuiteResult}``.
        path: the JSON file to write.
        env_name: one env key for every task (default: each env id's prefix).
        step_count: the ``step_count`` logged with the evaluation.

    Returns:
        The written data.
    """
    data = marl_eval_data(results, env_name=env_name, step_count=step_count)
    atomic_write_text(path, json.dumps(data, indent=2) + "\n")
    return data


def _fmt(x: float, digits: int) -> str:
    return "nan" if math.isnan(x) else f"{x:.{digits}f}"


def format_table(summary: Summaries, *, digits: int = 1) -> str:
    """A plain-text table: one row per task ("mean ± std" over seeds per algorithm), then aggregate rows.

    The aggregate rows are the IQM of all runs and tasks, and the mean and median of the per-task means, each
    as ``point [lower, upper]`` with its stratified-bootstrap interval. A task an algorithm was not evaluated on shows ``-``.

    Args:
        summary: a :class:`Summary`, several (named by ``name``), or ``{algorithm: Summary}``.
        digits: decimals shown.
    """
    by_algo = _by_algorithm(summary, Summary, "summary")
    tasks: list[str] = []
    for s in by_algo.values():
        tasks.extend(t for t in s.tasks if t not in tasks)
    confidence = {s.confidence for s in by_algo.values()}
    level = f"{round(100 * next(iter(confidence)))}% CI" if len(confidence) == 1 else "CI"
    header = ["task"] + list(by_algo)
    rows = []
    for task in tasks:
        cells = [task]
        for s in by_algo.values():
            t = s.tasks.get(task)
            if t is None:
                cells.append("-")
            elif t.n < 2:  # one seed has no spread: say so rather than print ± 0.0
                cells.append(f"{_fmt(t.mean, digits)} (1 seed)")
            else:
                cells.append(f"{_fmt(t.mean, digits)} ± {_fmt(t.std, digits)}")
        rows.append(cells)
    aggregate_rows = []
    for stat in ("iqm", "mean", "median"):
        cells = [f"{stat.upper() if stat == 'iqm' else stat} [{level}]"]
        for s in by_algo.values():
            iv = getattr(s, stat)
            cells.append(f"{_fmt(iv.point, digits)} [{_fmt(iv.lower, digits)}, {_fmt(iv.upper, digits)}]")
        aggregate_rows.append(cells)
    widths = [max(len(r[j]) for r in [header, *rows, *aggregate_rows]) for j in range(len(header))]

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) if j == 0 else c.rjust(w) for j, (c, w) in enumerate(zip(cells, widths))).rstrip()

    rule = "-" * (sum(widths) + 2 * (len(widths) - 1))
    metrics = {s.metric for s in by_algo.values()}
    title = f"{' / '.join(sorted(metrics))} (mean ± std over seeds)"
    one_seed = all(t.n < 2 for s in by_algo.values() for t in s.tasks.values())
    footer = [f"(one seed per task: no spread, and the {level}s above have no width; evaluate >= 3 seeds to compare)"] if one_seed else []
    return "\n".join([title, line(header), rule, *map(line, rows), rule, *map(line, aggregate_rows), *footer]) + "\n"


def plot_aggregates(summary: Summaries, path: str | os.PathLike[str], *, title: str | None = None) -> None:
    """A PNG: IQM with its confidence interval per algorithm (left), per-task mean ± std over seeds (right).

    Args:
        summary: a :class:`Summary`, several, or ``{algorithm: Summary}``.
        path: the PNG file to write (atomically).
        title: figure title (default: the metric).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    by_algo = _by_algorithm(summary, Summary, "summary")
    names = list(by_algo)
    tasks: list[str] = []
    for s in by_algo.values():
        tasks.extend(t for t in s.tasks if t not in tasks)
    metric = " / ".join(sorted({s.metric for s in by_algo.values()}))
    colors = [f"C{i % 10}" for i in range(len(names))]

    # Figure + Agg canvas directly, not pyplot: no global backend switch, no figure registry, thread-safe.
    fig = Figure(figsize=(4 + 1.2 * len(tasks) + 0.3 * len(names), 3.6 + 0.15 * len(names)), layout="constrained")
    FigureCanvasAgg(fig)
    left, right = fig.subplots(1, 2, width_ratios=[1, max(1.5, 0.8 * len(tasks))])

    points = [by_algo[n].iqm.point for n in names]
    err = [
        [max(0.0, by_algo[n].iqm.point - by_algo[n].iqm.lower) for n in names],
        [max(0.0, by_algo[n].iqm.upper - by_algo[n].iqm.point) for n in names],
    ]
    ys = list(range(len(names)))
    left.errorbar(points, ys, xerr=err, fmt="none", ecolor="black", capsize=4, zorder=1)
    left.scatter(points, ys, c=colors, s=40, zorder=2)
    left.set_yticks(ys, names)
    left.set_ylim(len(names) - 0.5, -0.5)  # first algorithm on top, half a row of margin
    levels = {s.confidence for s in by_algo.values()}
    level = f"{round(100 * next(iter(levels)))}% CI" if len(levels) == 1 else "CI"
    left.set_xlabel(f"IQM {metric}")
    left.set_title(f"IQM ({level}, stratified bootstrap)", fontsize=9)
    left.grid(axis="x", alpha=0.3)

    width = 0.8 / len(names)
    for k, (name, color) in enumerate(zip(names, colors)):
        xs, means, stds = [], [], []
        for j, task in enumerate(tasks):
            t = by_algo[name].tasks.get(task)
            if t is not None:
                xs.append(j - 0.4 + width * (k + 0.5))
                means.append(t.mean)
                stds.append(t.std)
        right.bar(xs, means, width=width, yerr=stds, color=color, capsize=3, label=name)
    right.set_xticks(range(len(tasks)), tasks, rotation=20, ha="right", fontsize=8)
    right.set_ylabel(metric)
    right.set_title("per task: mean ± std over seeds", fontsize=9)
    right.axhline(0.0, color="black", linewidth=0.6)
    right.grid(axis="y", alpha=0.3)
    if len(names) > 1:
        right.legend(fontsize=8)
    fig.suptitle(title or metric)
    with atomic_write(path, "wb") as fh:
        fig.savefig(fh, format="png", dpi=120)
