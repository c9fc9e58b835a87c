"""rlcf.eval: statistics (IQM, stratified bootstrap, normalized score), the evaluation runner, and reports."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.stats import trim_mean

from rlcf.errors import UsageError
from rlcf.eval import (
    EvalResult,
    EvaluationWarning,
    SuiteResult,
    evaluate_policy,
    evaluate_suite,
    format_table,
    iqm,
    normalized_score,
    plot_aggregates,
    stratified_bootstrap_ci,
    summarize,
    to_marl_eval_json,
)

# -- statistics ------------------------------------------------------------------------------------------------


def test_iqm_matches_scipy_trim_mean_on_random_inputs():
    rng = np.random.default_rng(0)
    for n in [1, 2, 3, 4, 5, 7, 8, 9, 10, 13, 50, 101]:
        x = rng.normal(size=n) * rng.uniform(0.1, 10)
        assert iqm(x) == pytest.approx(trim_mean(x, 0.25), abs=1e-12), n
    matrix = rng.exponential(size=(6, 11))
    np.testing.assert_allclose(iqm(matrix, axis=1), trim_mean(matrix, 0.25, axis=1))
    np.testing.assert_allclose(iqm(matrix, axis=0), trim_mean(matrix, 0.25, axis=0))
    assert iqm(matrix) == pytest.approx(trim_mean(matrix, 0.25, axis=None))


def test_iqm_hand_computed():
    # 8 values: drop the 2 lowest (-100, 1) and the 2 highest (7, 1000); mean of 2, 3, 4, 6.
    x = [7, 3, -100, 1000, 2, 6, 1, 4]
    assert iqm(x) == pytest.approx((2 + 3 + 4 + 6) / 4)
    assert iqm([5.0]) == 5.0
    with pytest.raises(UsageError):
        iqm([])


def test_normalized_score_hand_values():
    assert normalized_score(-10.0, -30.0, 10.0) == pytest.approx(50.0)
    assert normalized_score(-30.0, -30.0, 10.0) == pytest.approx(0.0)
    assert normalized_score(10.0, -30.0, 10.0) == pytest.approx(100.0)
    assert normalized_score(20.0, -30.0, 10.0) == pytest.approx(125.0)
    np.testing.assert_allclose(normalized_score(np.array([0.0, 1.0, 2.0]), 0.0, 2.0), [0.0, 50.0, 100.0])


def test_normalized_score_refuses_equal_references():
    with pytest.raises(UsageError, match="ref_min and ref_max"):
        normalized_score(1.0, 3.0, 3.0)


def test_bootstrap_ci_collapses_without_within_task_variance():
    # Very different task levels, few runs, no variance inside a task: every stratified replicate holds the same
    # multiset of scores, so any statistic is constant. A pooled (non-stratified) bootstrap would draw varying
    # numbers of 0s, 50s and 100s and give a wide interval.
    scores = {"a": [0.0, 0.0, 0.0], "b": [100.0, 100.0, 100.0], "c": [50.0, 50.0, 50.0]}
    for statistic in ("iqm", "mean", "median", np.mean):
        point, lo, hi = stratified_bootstrap_ci(scores, statistic, reps=500)
        assert lo == pytest.approx(point) and hi == pytest.approx(point)
    assert stratified_bootstrap_ci(scores, "mean")[0] == pytest.approx(50.0)


def test_bootstrap_resamples_within_each_task():
    scores = {"low": [0.0, 1.0], "high": [100.0, 101.0, 102.0]}
    seen = []

    def spy(x, axis=-1):
        seen.append(np.array(x))
        return np.mean(x, axis=axis)

    stratified_bootstrap_ci(scores, spy, reps=300, seed=3)
    replicates = seen[-1]
    assert replicates.shape == (300, 5)
    # Columns are grouped by task: each replicate keeps 2 draws from "low" and 3 from "high".
    assert set(np.unique(replicates[:, :2])) <= {0.0, 1.0}
    assert set(np.unique(replicates[:, 2:])) <= {100.0, 101.0, 102.0}
    assert len(np.unique(replicates[:, :2])) == 2  # it really resamples


def test_bootstrap_ci_contains_point_widens_with_spread_and_is_reproducible():
    rng = np.random.default_rng(1)
    matrix = rng.normal(loc=[10.0, 50.0, 90.0], scale=5.0, size=(10, 3))  # [runs, tasks]
    point, lo, hi = stratified_bootstrap_ci(matrix, reps=1000, seed=0)
    assert lo <= point <= hi and hi > lo
    assert point == pytest.approx(trim_mean(matrix, 0.25, axis=None))
    assert stratified_bootstrap_ci(matrix, reps=1000, seed=0) == (point, lo, hi)
    assert stratified_bootstrap_ci(matrix, reps=1000, seed=1) != (point, lo, hi)
    # Twice the spread inside each task (same task means): a wider interval.
    wider = matrix.mean(axis=0) + 2.0 * (matrix - matrix.mean(axis=0))
    _, wlo, whi = stratified_bootstrap_ci(wider, reps=1000, seed=0)
    assert whi - wlo > 1.5 * (hi - lo)
    # A mapping with the same columns gives the same answer as the matrix.
    mapping = {f"t{j}": matrix[:, j] for j in range(3)}
    assert stratified_bootstrap_ci(mapping, reps=1000, seed=0) == pytest.approx((point, lo, hi))


def test_bootstrap_ci_handles_unequal_run_counts_and_bad_input():
    unequal = {"a": [1.0, 2.0, 3.0, 4.0, 5.0], "b": [10.0]}
    point, lo, hi = stratified_bootstrap_ci(unequal, "mean", reps=200)
    assert point == pytest.approx((3.0 + 10.0) / 2) and lo <= point <= hi  # each task weighs the same
    assert stratified_bootstrap_ci(unequal, np.mean, reps=200)[0] == pytest.approx(25.0 / 6.0)  # a callable pools
    with pytest.raises(UsageError, match="confidence"):
        stratified_bootstrap_ci({"a": [1.0]}, confidence=1.5)
    with pytest.raises(UsageError, match="no scores"):
        stratified_bootstrap_ci({"a": []})
    with pytest.raises(UsageError, match="unknown statistic"):
        stratified_bootstrap_ci({"a": [1.0]}, "mode")


def test_summarize_reports_sample_std_and_aggregates():
    scores = {"spread": [10.0, 20.0, 30.0], "tag": [50.0, 70.0, 90.0]}
    s = summarize(scores, name="cfcql", reps=500)
    assert s.tasks["spread"].mean == pytest.approx(20.0)
    assert s.tasks["spread"].std == pytest.approx(10.0)  # sample std (ddof=1)
    assert s.tasks["tag"].n == 3
    pooled = [10.0, 20.0, 30.0, 50.0, 70.0, 90.0]
    assert s.iqm.point == pytest.approx(trim_mean(pooled, 0.25))
    assert s.mean.point == pytest.approx(np.mean(pooled))
    assert s.median.point == pytest.approx(np.median([20.0, 70.0]))  # median of the task means, as rliable
    for interval in (s.iqm, s.mean, s.median):
        assert interval.lower <= interval.point <= interval.upper
    json.dumps(s.to_dict())
    assert summarize({"one": [4.0]}, reps=10).tasks["one"].std == 0.0


# -- runner ------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def spread():
    from rlcf.registry import envs

    spec = envs.get("mpe-simple_spread")
    ok, why = spec.available()
    if not ok:
        pytest.skip(why)
    return spec


def _random_policy(spec, seed=0):
    from rlcf.envs.behaviour.policies import make_policy

    env = spec.make()
    try:
        return make_policy("random", spec, env.possible_agents, seed=seed, env=env.env)
    finally:
        env.close()


def test_evaluate_policy_random_is_deterministic_and_normalizes(spread):
    first = evaluate_policy(spread, _random_policy(spread), episodes=32, seed=0)
    assert isinstance(first, EvalResult)
    assert first.episodes == 32 and first.returns.shape == (32,)
    assert np.all(first.lengths == spread.episode_length)
    assert np.all(first.returns < 0)  # simple_spread rewards are distances to landmarks: negative
    assert len(set(first.episode_seeds)) == 32
    assert first.mean_return == pytest.approx(first.returns.mean())
    assert first.std_return == pytest.approx(first.returns.std(ddof=1))

    # Same seed, a fresh policy object (another generator state): the same returns, episode by episode.
    ref_min, ref_max = first.mean_return, first.mean_return + 10.0
    fresh = _random_policy(spread, seed=5)
    again = evaluate_policy(spread, fresh, episodes=32, seed=0, ref_min=ref_min, ref_max=ref_max)
    np.testing.assert_array_equal(again.returns, first.returns)
    assert again.normalized_score == pytest.approx(0.0, abs=1e-9)
    assert np.mean(again.normalized_scores) == pytest.approx(0.0, abs=1e-9)
    assert (again.ref_min, again.ref_max) == (ref_min, ref_max)
    json.dumps(again.to_dict())


def test_evaluate_policy_warns_or_refuses_few_episodes_and_accepts_callables(spread):
    with pytest.raises(UsageError, match="at least 32"):
        evaluate_policy(spread, "random", episodes=2, strict=True)
    with pytest.warns(EvaluationWarning, match="at least 32"):
        by_name = evaluate_policy(spread, "random", episodes=3, seed=1)
    with pytest.warns(EvaluationWarning):
        other_seed = evaluate_policy("mpe-simple_spread", "random", episodes=3, seed=2)
    assert not np.array_equal(by_name.returns, other_seed.returns)
    assert by_name.normalized_score is None or spread.ref_random_return is not None

    still = lambda obs: {a: np.zeros(5, dtype=np.float32) for a in obs}  # noqa: E731  # a plain callable
    with pytest.warns(EvaluationWarning):
        r = evaluate_policy(spread, still, episodes=2, seed=0, ref_min=-100.0, ref_max=0.0)
    assert r.episodes == 2 and r.normalized_score == pytest.approx(100.0 + r.mean_return)
    with pytest.raises(UsageError, match="both ref_min and ref_max"):
        evaluate_policy(spread, still, episodes=32, ref_min=-1.0)
    with pytest.raises(UsageError, match="cannot evaluate"):
        evaluate_policy(spread, 42, episodes=32)


def test_evaluate_suite_runs_every_task_and_seed(spread):
    calls = []

    def make(spec, seed):
        calls.append((spec.id, seed))
        return "random"

    with pytest.warns(EvaluationWarning):
        result = evaluate_suite(
            ["mpe-simple_spread"], make, seeds=[0, 1], episodes=2, algorithm="random",
            refs={"mpe-simple_spread": (-40.0, -10.0)},
        )  # fmt: skip
    assert calls == [("mpe-simple_spread", 0), ("mpe-simple_spread", 1)]
    assert result.env_ids == ("mpe-simple_spread",) and result.seeds == (0, 1)
    scores = result.scores()
    assert scores["mpe-simple_spread"].shape == (2,)
    assert result.summary(reps=100).tasks["mpe-simple_spread"].n == 2
    json.dumps(result.to_dict())
    with pytest.raises(UsageError, match="not evaluated"):
        evaluate_suite(["mpe-simple_spread"], make, seeds=[0], refs={"mpe-simple_tag": (0.0, 1.0)})


# -- reports -----------------------------------------------------------------------------------------------------


def _suite_result(algorithm: str, shift: float) -> SuiteResult:
    rng = np.random.default_rng(len(algorithm))
    env_ids = ("mpe-simple_spread", "mpe-simple_tag")
    seeds = (0, 1, 2)
    results = {
        env_id: {
            s: EvalResult(
                env_id=env_id,
                seed=s,
                returns=rng.normal(-20.0 + shift, 3.0, size=4),
                lengths=np.full(4, 25),
                episode_seeds=(1, 2, 3, 4),
                ref_min=-25.0,
                ref_max=-5.0,
            )
            for s in seeds
        }
        for env_id in env_ids
    }
    return SuiteResult(algorithm=algorithm, env_ids=env_ids, seeds=seeds, results=results, suite="mpe")


def test_marl_eval_json_round_trips_with_documented_layout(tmp_path):
    results = [_suite_result("cfcql", 10.0), _suite_result("bc", 0.0)]
    path = tmp_path / "out" / "results.json"
    to_marl_eval_json(results, path, step_count=1000)
    data = json.loads(path.read_text())
    assert list(data) == ["mpe"]
    assert list(data["mpe"]) == ["simple_spread", "simple_tag"]
    assert list(data["mpe"]["simple_tag"]) == ["cfcql", "bc"]
    runs = data["mpe"]["simple_spread"]["cfcql"]
    assert list(runs) == ["run_0", "run_1", "run_2"]
    run = runs["run_1"]
    assert list(run) == ["step_0", "absolute_metrics"]  # absolute_metrics last, as marl-eval reads it
    assert run["step_0"]["step_count"] == 1000
    source = results[0].results["mpe-simple_spread"][1]
    assert run["step_0"]["return"] == pytest.approx(source.returns.tolist())
    assert run["absolute_metrics"]["normalized_score"] == pytest.approx(source.normalized_scores.tolist())
    assert set(run["absolute_metrics"]) == {"return", "normalized_score"}
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".tmp-")]


def test_table_and_plot(tmp_path):
    summaries = [r.summary(reps=200) for r in (_suite_result("cfcql", 10.0), _suite_result("bc", 0.0))]
    table = format_table(summaries)
    lines = table.splitlines()
    assert "cfcql" in lines[1] and "bc" in lines[1]
    spread_row = next(line for line in lines if line.startswith("mpe-simple_spread"))
    t = summaries[0].tasks["mpe-simple_spread"]
    assert f"{t.mean:.1f} ± {t.std:.1f}" in spread_row
    iqm_row = next(line for line in lines if line.startswith("IQM"))
    s = summaries[1].iqm
    assert f"{s.point:.1f} [{s.lower:.1f}, {s.upper:.1f}]" in iqm_row

    png = tmp_path / "plots" / "aggregate.png"
    plot_aggregates(summaries, png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    plot_aggregates(summaries[0], tmp_path / "single.png")
    assert (tmp_path / "single.png").stat().st_size > 0


def test_table_of_one_seed_says_so_instead_of_a_zero_spread():
    summary = summarize({"mpe-simple_spread": [40.0], "mpe-simple_tag": [10.0]}, name="cfcql", reps=50)
    table = format_table(summary)
    assert "40.0 (1 seed)" in table and "± 0.0" not in table
    assert "one seed per task: no spread" in table.splitlines()[-1]
    three = summarize({"mpe-simple_spread": [40.0, 42.0, 44.0]}, name="cfcql", reps=50)
    assert "42.0 ± 2.0" in format_table(three) and "one seed" not in format_table(three)
