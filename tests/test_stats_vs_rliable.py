"""rlcf.eval.stats against rliable 1.2.0's aggregates, on the same seeded ``[runs, tasks]`` score matrices.

rliable cannot be a dependency of this stack (its 1.2.0 release needs ``arch<8``; arch 7 fails to import under
pandas 3, arch 8 rejects the ``random_state`` rliable passes), so the first tests restate rliable's definitions
here, written from its documented formulas rather than through rlcf's code:

- ``aggregate_iqm``: ``scipy.stats.trim_mean(scores, 0.25, axis=None)``, the whole matrix pooled;
- ``aggregate_mean`` / ``aggregate_median``: the mean / median over tasks of the per-task mean over runs;
- ``aggregate_optimality_gap``: ``gamma - mean(minimum(scores, gamma))`` over the whole matrix;
- ``StratifiedBootstrap``: every cell of a replicate draws a run index uniformly, independently, within its own
  task column; the ``percentile`` interval is ``np.percentile`` of the replicates at 2.5 and 97.5.

Point estimates must agree to float precision. Interval endpoints come from two independent Monte-Carlo
bootstraps, so they can only agree up to Monte-Carlo error: the standard error of a sample ``q``-quantile of
``B`` replicates is ``sqrt(q (1 - q) / B) / f(x_q)``, with the density ``f`` at the quantile estimated from the
replicates' own quantile spacing. Both sides draw ``B`` replicates of the same distribution, so the difference of
their endpoints has ``sqrt(2)`` times that error; an endpoint passes within four such standard errors (a false
alarm has probability ~6e-5 per endpoint), and the test also checks that this tolerance is a small part of the
interval, so a definitional slip (e.g. an unstratified resampling) cannot hide in it.

The last test compares with rliable itself when ``rliable.library`` imports, and is skipped otherwise.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import trim_mean

from rlcf.eval import optimality_gap, stratified_bootstrap_ci, summarize

REPS = 20_000
GAMMA = 100.0  # rliable's gamma=1 on its 0–1 scale is 100 on rlcf's normalized-score scale
STATS = ("iqm", "mean", "median", "optimality_gap")


def _score_matrices() -> dict[str, np.ndarray]:
    """Seeded ``[runs, tasks]`` normalized-score matrices: plain, heavy-tailed, few runs above the target."""
    rng = np.random.default_rng(2021)
    plain = rng.normal(loc=rng.uniform(10, 90, size=6), scale=8.0, size=(5, 6))
    outliers = rng.standard_t(df=2, size=(10, 8)) * 15.0 + rng.uniform(0, 80, size=8)
    above_target = rng.uniform(40, 130, size=(3, 12))  # some runs past the expert, so the gap's clip matters
    return {"plain_5x6": plain, "outliers_10x8": outliers, "above_target_3x12": above_target}


MATRICES = _score_matrices()


# -- rliable 1.2.0's definitions, restated on a [..., runs, tasks] array ------------------------------------------


def _reference(stat: str, scores: np.ndarray) -> np.ndarray:
    """rliable's aggregate ``stat`` of each ``[runs, tasks]`` matrix in ``scores`` (leading axes are replicates)."""
    lead = scores.shape[:-2]
    if stat == "iqm":
        return trim_mean(scores.reshape(*lead, -1), 0.25, axis=-1)
    if stat == "mean":
        return scores.mean(axis=-2).mean(axis=-1)
    if stat == "median":
        return np.median(scores.mean(axis=-2), axis=-1)
    if stat == "optimality_gap":
        return GAMMA - np.minimum(scores, GAMMA).reshape(*lead, -1).mean(axis=-1)
    raise AssertionError(stat)


def _reference_replicates(scores: np.ndarray, reps: int, seed: int) -> np.ndarray:
    """``[reps, runs, tasks]``: each cell a run drawn with replacement from its own task's column."""
    runs, tasks = scores.shape
    rows = np.random.default_rng(seed).integers(0, runs, size=(reps, runs, tasks))
    return scores[rows, np.arange(tasks)]


def _quantile_se(replicates: np.ndarray, q: float, h: float = 0.01) -> float:
    """Monte-Carlo standard error of the sample ``q``-quantile of ``replicates``.

    ``sqrt(q (1 - q) / B) / f(x_q)``, with ``1 / f(x_q)`` estimated by the quantile spacing
    ``(x_{q+h} - x_{q-h}) / (2 h)``.
    """
    lo, hi = np.quantile(replicates, [max(q - h, 0.0), min(q + h, 1.0)])
    inverse_density = (hi - lo) / (2.0 * h)
    return float(np.sqrt(q * (1.0 - q) / replicates.size) * inverse_density)


def _reference_interval(stat: str, scores: np.ndarray, seed: int) -> tuple[float, float, float, float]:
    """``(lower, upper, se_lower, se_upper)`` of rliable's percentile interval, from the restated bootstrap."""
    values = _reference(stat, _reference_replicates(scores, REPS, seed))
    lower, upper = np.percentile(values, [2.5, 97.5])
    return float(lower), float(upper), _quantile_se(values, 0.025), _quantile_se(values, 0.975)


# -- tests ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(MATRICES))
@pytest.mark.parametrize("stat", STATS)
def test_point_estimates_equal_rliable_definitions(name, stat):
    scores = MATRICES[name]
    expected = float(_reference(stat, scores))
    point, _, _ = stratified_bootstrap_ci(scores, stat, reps=1)
    assert point == pytest.approx(expected, rel=1e-12, abs=1e-12)
    mapping = {f"task{j}": scores[:, j] for j in range(scores.shape[1])}
    assert stratified_bootstrap_ci(mapping, stat, reps=1)[0] == pytest.approx(expected, rel=1e-12, abs=1e-12)


def test_summary_and_optimality_gap_use_the_same_definitions():
    scores = MATRICES["outliers_10x8"]
    s = summarize(scores, reps=10)
    for stat in ("iqm", "mean", "median"):
        assert getattr(s, stat).point == pytest.approx(float(_reference(stat, scores)), rel=1e-12)
    assert optimality_gap(scores) == pytest.approx(float(_reference("optimality_gap", scores)), rel=1e-12)
    # The median of the task means is not the median of the pooled runs: the test data tells them apart.
    assert abs(s.median.point - np.median(scores)) > 1.0


@pytest.mark.parametrize("name", sorted(MATRICES))
@pytest.mark.parametrize("stat", STATS)
def test_interval_endpoints_agree_within_monte_carlo_error(name, stat):
    scores = MATRICES[name]
    _, lower, upper = stratified_bootstrap_ci(scores, stat, reps=REPS, seed=1)
    ref_lower, ref_upper, se_lower, se_upper = _reference_interval(stat, scores, seed=12345)
    # Both bootstraps sample the same distribution with the same number of replicates, so each endpoint has about
    # the same standard error in both, and their difference sqrt(2) times that.
    tol_lower, tol_upper = 4.0 * np.sqrt(2.0) * se_lower, 4.0 * np.sqrt(2.0) * se_upper
    # The tolerance must be small against the interval, or the comparison would prove nothing.
    assert max(tol_lower, tol_upper) < 0.1 * (upper - lower), (tol_lower, tol_upper, upper - lower)
    assert abs(lower - ref_lower) < tol_lower, (lower, ref_lower, tol_lower)
    assert abs(upper - ref_upper) < tol_upper, (upper, ref_upper, tol_upper)


def _import_rliable():
    """rliable's ``library`` and ``metrics``, or a skip naming why they do not import here."""
    try:
        from rliable import library, metrics
    except Exception as exc:  # noqa: BLE001 — arch 7 under pandas 3 raises TypeError, not ImportError
        pytest.skip(f"rliable does not import here ({type(exc).__name__}: {exc}); compared with its restated definitions")
    return library, metrics


def test_against_rliable_itself_when_it_imports():
    library, metrics = _import_rliable()

    def aggregates(x: np.ndarray) -> np.ndarray:
        return np.array(
            [
                metrics.aggregate_iqm(x),
                metrics.aggregate_mean(x),
                metrics.aggregate_median(x),
                metrics.aggregate_optimality_gap(x, gamma=GAMMA),
            ]
        )

    for name, scores in MATRICES.items():
        np.random.seed(7)  # rliable's StratifiedBootstrap draws from numpy's global generator
        points, intervals = library.get_interval_estimates({name: scores}, aggregates, reps=REPS)
        for k, stat in enumerate(STATS):
            point, lower, upper = stratified_bootstrap_ci(scores, stat, reps=REPS, seed=3)
            assert point == pytest.approx(points[name][k], rel=1e-12, abs=1e-12), (name, stat)
            _, _, se_lower, se_upper = _reference_interval(stat, scores, seed=3)
            tol_lower, tol_upper = 4.0 * np.sqrt(2.0) * se_lower, 4.0 * np.sqrt(2.0) * se_upper
            assert abs(lower - intervals[name][0, k]) < tol_lower, (name, stat, lower, intervals[name][0, k])
            assert abs(upper - intervals[name][1, k]) < tol_upper, (name, stat, upper, intervals[name][1, k])
