"""Run a policy in an env spec's team env and score it; run an algorithm over a suite's tasks × seeds.

Evaluation follows DESIGN ("Evaluation"): the *final* policy is evaluated (never the best checkpoint), on at
least 32 episodes, and scored by the normalized score ``100·(R − R_random)/(R_expert − R_random)``. Episode
``i`` of an evaluation with seed ``s`` resets the env with :func:`rlcf.data.episodes.episode_seed` ``(s, i)``
and reseeds the policy with that seed + 1 (as dataset collection does), so an evaluation is a deterministic
function of the policy and ``s``.

A policy is anything with ``act(observations) -> actions`` (dicts keyed by agent id, as PettingZoo's
``ParallelEnv``), optionally ``reset(seed)``; a plain callable ``observations -> actions``; or the name of a
registered behaviour policy (``"random"``, ``"expert"``, ...), built for the env here.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rlcf.errors import UsageError
from rlcf.eval.stats import Summary, normalized_score, sample_std, summarize

__all__ = ["MIN_EPISODES", "EvalResult", "EvaluationWarning", "RunPolicy", "SuiteResult", "evaluate_policy", "evaluate_suite"]

#: DESIGN: "≥ 32 episodes per evaluation". Fewer is allowed for tests and smoke runs, with a warning.
MIN_EPISODES = 32


class EvaluationWarning(UserWarning):
    """An evaluation ran with settings that make its numbers unfit for reporting (e.g. too few episodes)."""


@dataclass(frozen=True)
class EvalResult:
    """Per-episode team returns of one evaluation, and their normalized score.

    Attributes:
        env_id: the env spec's id.
        seed: the evaluation seed (episode ``i`` used ``episode_seed(seed, i)``).
        returns: team return of each episode (sum of ``infos[agent]["team_reward"]``).
        lengths: steps of each episode.
        episode_seeds: the env seed of each episode.
        ref_min / ref_max: reference returns behind the normalized score (``None``: no references known).
    """

    env_id: str
    seed: int
    returns: np.ndarray
    lengths: np.ndarray
    episode_seeds: tuple[int, ...]
    ref_min: float | None = None
    ref_max: float | None = None

    def __repr__(self) -> str:
        score = "none" if self.normalized_score is None else f"{self.normalized_score:.2f}"
        return (
            f"EvalResult({self.env_id}, seed={self.seed}, episodes={self.episodes}, "
            f"return={self.mean_return:.3f} ± {self.std_return:.3f}, normalized_score={score})"
        )

    @property
    def episodes(self) -> int:
        return int(self.returns.shape[0])

    @property
    def mean_return(self) -> float:
        return float(np.mean(self.returns))

    @property
    def std_return(self) -> float:
        """Sample standard deviation (``ddof=1``) of the episode returns."""
        return sample_std(self.returns)

    @property
    def has_references(self) -> bool:
        return self.ref_min is not None and self.ref_max is not None

    @property
    def normalized_scores(self) -> np.ndarray | None:
        """Normalized score of each episode (``None`` without references)."""
        if not self.has_references:
            return None
        return np.asarray(normalized_score(self.returns, self.ref_min, self.ref_max))  # type: ignore[arg-type]

    @property
    def normalized_score(self) -> float | None:
        """Normalized score of the mean return (``None`` without references)."""
        if not self.has_references:
            return None
        return normalized_score(self.mean_return, self.ref_min, self.ref_max)  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form (per-episode values included)."""
        return {
            "env_id": self.env_id,
            "seed": self.seed,
            "episodes": self.episodes,
            "mean_return": self.mean_return,
            "std_return": self.std_return,
            "normalized_score": self.normalized_score,
            "ref_min": self.ref_min,
            "ref_max": self.ref_max,
            "returns": [float(r) for r in self.returns],
            "lengths": [int(n) for n in self.lengths],
            "episode_seeds": list(self.episode_seeds),
        }


class _CallablePolicy:
    """A plain ``observations -> actions`` function as a policy."""

    def __init__(self, fn: Callable[[Mapping[str, Any]], Mapping[str, Any]]):
        self.fn = fn

    def reset(self, seed: int | None = None) -> None:
        pass

    def act(self, observations: Mapping[str, Any]) -> Mapping[str, Any]:
        return self.fn(observations)


def _as_policy(policy: Any, spec: Any, env: Any, seed: int) -> Any:
    if isinstance(policy, str):
        from rlcf.envs import make_policy

        return make_policy(policy, spec, env.possible_agents, seed=seed, env=env)
    if callable(getattr(policy, "act", None)):
        return policy
    if callable(policy):
        return _CallablePolicy(policy)
    raise UsageError(
        f"cannot evaluate a {type(policy).__name__}: give an object with act(observations) -> actions "
        "(and optionally reset(seed)), a function observations -> actions, or a registered policy name"
    )


class RunPolicy:
    """The final policy of a run folder, loaded where it is used (small to pickle: Ray evaluation actors load
    the checkpoint themselves instead of receiving the algorithm and its dataset)."""

    def __init__(self, run_path: Any):
        from pathlib import Path

        self.run_path = str(Path(run_path).resolve())
        self._policy: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {"run_path": self.run_path, "_policy": None}

    def _load(self) -> Any:
        if self._policy is None:
            from rlcf.device import resolve_device
            from rlcf.registry import algos
            from rlcf.runs import Run

            run = Run.open(self.run_path)
            exp = run.experiment
            algo = algos.get(exp.algo)(exp.config, exp.run, resolve_device(exp.run.device))
            algo.load_state_dict(run.load_checkpoint(map_location=algo.device)["algorithm"])
            self._policy = algo.team_policy()
        return self._policy

    def reset(self, seed: int | None = None) -> None:
        self._load().reset(seed=seed)

    def act(self, observations: Mapping[str, Any]) -> Mapping[str, Any]:
        return self._load().act(observations)


class _EpisodeEvaluator:
    """Runs evaluation episodes by index (in this process, or as a Ray actor of :func:`evaluate_policy`)."""

    def __init__(self, spec: Any, policy: Any, seed: int, max_steps: int):
        from rlcf.runtime.threads import set_torch_threads

        set_torch_threads(load_torch=False)  # a trained policy computes with this process's CPU share
        self.spec, self.seed, self.max_steps = spec, int(seed), max_steps
        self.env = spec.make()
        self.actor = _as_policy(policy, spec, self.env, seed)

    def run(self, indices: list[int]) -> list[tuple[int, float, int, int]]:
        from rlcf.data.episodes import episode_seed

        env, actor, out = self.env, self.actor, []
        for i in indices:
            env_seed = episode_seed(self.seed, i)
            obs, _ = env.reset(seed=env_seed)
            reset = getattr(actor, "reset", None)
            if callable(reset):
                reset(seed=env_seed + 1)
            total, steps = 0.0, 0
            while env.agents:
                if steps >= self.max_steps:
                    raise UsageError(
                        f"env '{self.spec.id}' ran {steps} steps without ending an episode; check its episode_length "
                        "and truncation"
                    )
                actions = actor.act({a: obs[a] for a in env.agents})
                obs, _, _, _, infos = env.step(actions)
                if infos:
                    total += float(next(iter(infos.values()))["team_reward"])
                steps += 1
            out.append((i, total, steps, env_seed))
        return out

    def close(self) -> None:
        self.env.close()


def _resolve_spec(spec: Any) -> Any:
    if isinstance(spec, str):
        from rlcf.registry import envs

        return envs.get(spec)
    return spec


def _references(spec: Any, ref_min: float | None, ref_max: float | None) -> tuple[float | None, float | None]:
    if (ref_min is None) != (ref_max is None):
        raise UsageError(
            f"give both ref_min and ref_max (got ref_min={ref_min}, ref_max={ref_max}), or neither to use the "
            f"references of env '{spec.id}'"
        )
    if ref_min is None:
        ref_min, ref_max = getattr(spec, "ref_random_return", None), getattr(spec, "ref_expert_return", None)
        if ref_min is None or ref_max is None:
            return None, None
    normalized_score(0.0, ref_min, ref_max)  # type: ignore[arg-type]  # validates: finite and different
    return float(ref_min), float(ref_max)  # type: ignore[arg-type]


def evaluate_policy(
    spec: Any,
    policy: Any,
    episodes: int = MIN_EPISODES,
    seed: int = 0,
    *,
    ref_min: float | None = None,
    ref_max: float | None = None,
    strict: bool = False,
    actors: int = 0,
    episodes_per_task: int = 4,
) -> EvalResult:
    """Run ``policy`` for ``episodes`` episodes of ``spec``'s team env and return their team returns.

    Args:
        spec: an :class:`~rlcf.envs.spec.EnvSpec`, or an env id in :data:`rlcf.registry.envs`.
        policy: an object with ``act(observations) -> actions`` (and optionally ``reset(seed)``), a function
            ``observations -> actions``, or a registered behaviour policy name (built with ``seed``).
        episodes: how many episodes; fewer than 32 warns (:class:`EvaluationWarning`), or raises with ``strict``.
        seed: the evaluation seed; episode ``i`` resets the env with ``episode_seed(seed, i)``.
        ref_min / ref_max: reference returns for the normalized score (e.g. a dataset's ``ref_min_score`` and
            ``ref_max_score``); both ``None`` uses the spec's ``ref_random_return``/``ref_expert_return``, and
            without those the result has no normalized score.
        strict: raise instead of warning when ``episodes`` < 32.
        actors: run the episodes on this many Ray actors (0: in this process). Episode ``i`` is seeded by
            ``(seed, i)`` whichever actor runs it, so the result does not depend on the number of actors; the
            policy object travels to the actors (pickled), and an actor that dies has its episodes re-run.
        episodes_per_task: episodes per actor call.

    Returns:
        An :class:`EvalResult`.
    """
    spec = _resolve_spec(spec)
    episodes = int(episodes)
    if episodes < 1:
        raise UsageError(f"episodes must be at least 1, got {episodes}")
    if episodes < MIN_EPISODES:
        message = (
            f"evaluating env '{spec.id}' on {episodes} episodes; reported numbers need at least {MIN_EPISODES} "
            f"(pass episodes={MIN_EPISODES} or more)"
        )
        if strict:
            raise UsageError(message)
        warnings.warn(message, EvaluationWarning, stacklevel=2)
    lo, hi = _references(spec, ref_min, ref_max)
    # Guards against an env that never ends its episodes; MPE truncates at episode_length.
    max_steps = 10 * max(int(getattr(spec, "episode_length", 0) or 0), 100)

    if actors and actors > 0:
        from rlcf.runtime.pool import ShardPool

        shards = [list(range(i, min(i + episodes_per_task, episodes))) for i in range(0, episodes, episodes_per_task)]
        found: dict[int, tuple[float, int, int]] = {}

        def record(_: int, rows: list[tuple[int, float, int, int]]) -> None:
            for i, total, steps, env_seed in rows:
                found[i] = (total, steps, env_seed)

        with ShardPool(_EpisodeEvaluator, [spec, policy, seed, max_steps], "run", actors=actors, what="evaluation") as pool:
            pool.run(shards, record)
        rows = [(i, *found[i]) for i in range(episodes)]
    else:
        worker = _EpisodeEvaluator(spec, policy, seed, max_steps)
        try:
            rows = worker.run(list(range(episodes)))
        finally:
            worker.close()
    returns = [r[1] for r in rows]
    lengths = [r[2] for r in rows]
    seeds = [r[3] for r in rows]
    return EvalResult(
        env_id=spec.id,
        seed=int(seed),
        returns=np.asarray(returns, dtype=np.float64),
        lengths=np.asarray(lengths, dtype=np.int64),
        episode_seeds=tuple(seeds),
        ref_min=lo,
        ref_max=hi,
    )


@dataclass(frozen=True)
class SuiteResult:
    """One algorithm evaluated on every task of a suite × every seed.

    Attributes:
        algorithm: the algorithm's name (column of tables, key of marl-eval JSON).
        env_ids: the tasks, in order.
        seeds: the run seeds, in order.
        results: ``{env_id: {seed: EvalResult}}``.
        suite: the suite's name, when one was evaluated.
    """

    algorithm: str
    env_ids: tuple[str, ...]
    seeds: tuple[int, ...]
    results: Mapping[str, Mapping[int, EvalResult]] = field(default_factory=dict)
    suite: str | None = None

    def __repr__(self) -> str:
        return (
            f"SuiteResult({self.algorithm!r}, suite={self.suite}, tasks={list(self.env_ids)}, seeds={list(self.seeds)})"
        )

    def scores(self, metric: str = "normalized_score") -> dict[str, np.ndarray]:
        """``{env_id: per-seed score}``: each seed's normalized score (or mean return, ``metric="return"``)."""
        if metric not in ("normalized_score", "return"):
            raise UsageError(f"metric must be 'normalized_score' or 'return', got {metric!r}")
        out = {}
        for env_id in self.env_ids:
            values = []
            for s in self.seeds:
                result = self.results[env_id][s]
                if metric == "return":
                    values.append(result.mean_return)
                elif result.normalized_score is None:
                    raise UsageError(
                        f"env '{env_id}' has no reference returns, so no normalized score; pass refs= to "
                        "evaluate_suite, measure them with bench/bench_mpe_policies.py, or use metric='return'"
                    )
                else:
                    values.append(result.normalized_score)
            out[env_id] = np.asarray(values, dtype=np.float64)
        return out

    def summary(
        self, metric: str = "normalized_score", *, reps: int = 2000, confidence: float = 0.95, seed: int = 0
    ) -> Summary:
        """Per-task mean ± std over seeds and aggregate IQM/mean/median with CIs (see :func:`summarize`)."""
        return summarize(
            self.scores(metric), name=self.algorithm, metric=metric, reps=reps, confidence=confidence, seed=seed
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {
            "algorithm": self.algorithm,
            "suite": self.suite,
            "env_ids": list(self.env_ids),
            "seeds": list(self.seeds),
            "results": {e: {str(s): r.to_dict() for s, r in runs.items()} for e, runs in self.results.items()},
        }


def _accepts_seed(fn: Callable[..., Any]) -> bool:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == "seed" or p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


def evaluate_suite(
    suite: str | Iterable[str],
    make_policy: Callable[..., Any],
    seeds: Sequence[int] = (0, 1, 2),
    episodes: int = MIN_EPISODES,
    *,
    algorithm: str = "policy",
    refs: Mapping[str, tuple[float, float]] | None = None,
    strict: bool = False,
) -> SuiteResult:
    """Evaluate one algorithm on every task × seed of a suite.

    Args:
        suite: a name in :data:`rlcf.registry.suites`, or env ids.
        make_policy: ``make_policy(spec)`` or ``make_policy(spec, seed=seed)`` (called with ``seed`` when it
            takes that keyword) returning a policy for :func:`evaluate_policy`: e.g. the run of that seed's
            final checkpoint, or a registered policy name.
        seeds: run seeds; seed ``s`` is also the evaluation seed of its run.
        episodes: episodes per task and seed (≥ 32 for reported numbers).
        algorithm: name for tables, plots and marl-eval JSON.
        refs: ``{env_id: (ref_min, ref_max)}`` overriding the specs' reference returns.
        strict: raise instead of warning when ``episodes`` < 32.

    Returns:
        A :class:`SuiteResult`; ``.summary()`` aggregates it, :mod:`rlcf.eval.report` writes it.
    """
    from rlcf.registry import envs, suites

    suite_name = None
    if isinstance(suite, str):
        suite_name = suite
        env_ids = tuple(suites.get(suite).envs)
    else:
        env_ids = tuple(suite)
    if not env_ids:
        raise UsageError("no tasks to evaluate; give a suite name or at least one env id")
    seeds = tuple(int(s) for s in seeds)
    if not seeds:
        raise UsageError("no seeds to evaluate; give at least one run seed")
    if len(set(seeds)) != len(seeds):
        raise UsageError(f"seeds must be distinct, got {list(seeds)}")
    refs = dict(refs or {})
    unknown = sorted(set(refs) - set(env_ids))
    if unknown:
        raise UsageError(f"refs name envs that are not evaluated: {unknown}; evaluated: {list(env_ids)}")
    with_seed = _accepts_seed(make_policy)
    results: dict[str, dict[int, EvalResult]] = {}
    for env_id in env_ids:
        spec = envs.get(env_id)
        lo, hi = refs.get(env_id, (None, None))
        results[env_id] = {}
        for s in seeds:
            policy = make_policy(spec, seed=s) if with_seed else make_policy(spec)
            results[env_id][s] = evaluate_policy(
                spec, policy, episodes=episodes, seed=s, ref_min=lo, ref_max=hi, strict=strict
            )
    return SuiteResult(algorithm=algorithm, env_ids=env_ids, seeds=seeds, results=results, suite=suite_name)
