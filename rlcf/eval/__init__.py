"""Evaluation: run policies on env specs and suites, score them, aggregate over seeds and report.

- :mod:`rlcf.eval.stats`: normalized score, interquartile mean (IQM), optimality gap, stratified-bootstrap
  confidence intervals (Agarwal et al., NeurIPS 2021, rliable's definitions) and per-algorithm summaries.
  Pure numpy.
- :mod:`rlcf.eval.runner`: :func:`evaluate_policy` (≥ 32 episodes with fixed seeds, per-episode team returns)
  and :func:`evaluate_suite` (every task × seed of a suite).
- :mod:`rlcf.eval.report`: marl-eval-compatible JSON, an aggregate plot (PNG) and a plain-text table.

``import rlcf.eval`` stays light: PettingZoo and the envs load when an evaluation runs, matplotlib when a plot
is drawn.
"""

from rlcf.eval.report import format_table, marl_eval_data, plot_aggregates, to_marl_eval_json
from rlcf.eval.runner import (
    MIN_EPISODES,
    EvalResult,
    EvaluationWarning,
    SuiteResult,
    evaluate_policy,
    evaluate_suite,
)
from rlcf.eval.stats import (
    Interval,
    Summary,
    TaskSummary,
    iqm,
    normalized_score,
    optimality_gap,
    sample_std,
    stratified_bootstrap_ci,
    summarize,
)

__all__ = [
    "MIN_EPISODES",
    "EvalResult",
    "EvaluationWarning",
    "Interval",
    "SuiteResult",
    "Summary",
    "TaskSummary",
    "evaluate_policy",
    "evaluate_suite",
    "format_table",
    "iqm",
    "marl_eval_data",
    "normalized_score",
    "optimality_gap",
    "plot_aggregates",
    "sample_std",
    "stratified_bootstrap_ci",
    "summarize",
    "to_marl_eval_json",
]
