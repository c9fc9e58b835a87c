"""Conformance checks users run on their own plugins, the way PettingZoo ships ``parallel_api_test``.

::

    from rlcf.testing import check_env, check_reward_fn

    def test_my_env():
        check_env("my-env")                     # a name in rlcf.envs, a factory, or an env instance

    def test_my_reward():
        check_reward_fn("my_reward", completions=["<answer>4</answer>"], solution=["4"])

Each check raises :class:`~rlcf.errors.ConformanceError` naming the check that failed and how to fix it, and
returns a :class:`CheckReport` listing what passed.
"""

from __future__ import annotations

import copy
import inspect
import math
import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from rlcf.errors import ConformanceError

__all__ = ["CheckReport", "check_env", "check_reward_fn", "make_env"]


@dataclass
class CheckReport:
    """What a conformance check verified."""

    subject: str
    passed: list[str] = field(default_factory=list)

    def ok(self, what: str) -> None:
        self.passed.append(what)

    def __str__(self) -> str:
        return f"{self.subject}: {len(self.passed)} checks passed ({'; '.join(self.passed)})"


def _fail(subject: str, check: str, message: str) -> ConformanceError:
    return ConformanceError(f"{subject} fails '{check}': {message}")


# -- environments ------------------------------------------------------------------------------------------------


def make_env(env: Any, **kwargs: Any) -> Any:
    """An env instance from a registered name, a spec with ``make()``, a factory, or an instance."""
    from rlcf.registry import envs

    if isinstance(env, str):
        env = envs.get(env)
    if hasattr(env, "reset") and hasattr(env, "step"):
        return env
    if hasattr(env, "make"):
        return env.make(**kwargs)
    if callable(env):
        return env(**kwargs)
    raise ConformanceError(f"cannot make an env from {env!r}: give a registered name, a factory or an env")


def _rollout(env: Any, seed: int, steps: int) -> list[tuple[Any, Any]]:
    """Observations and rewards of a seeded rollout with seeded random actions."""
    obs, _ = env.reset(seed=seed)
    for i, agent in enumerate(env.possible_agents):
        env.action_space(agent).seed(seed + i)
    trace = [(obs, None)]
    for _ in range(steps):
        if not env.agents:
            break
        actions = {a: env.action_space(a).sample() for a in env.agents}
        obs, rewards, terms, truncs, _ = env.step(actions)
        trace.append((obs, rewards))
    return trace


def _equal(a: Any, b: Any) -> bool:
    import numpy as np

    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    return bool(np.array_equal(np.asarray(a), np.asarray(b)))


def check_env(env: Any, *, seed: int = 0, steps: int = 50, max_episode_steps: int | None = None, **kwargs: Any) -> CheckReport:
    """Check a multi-agent env against PettingZoo's parallel API and rlcf's own expectations.

    Args:
        env: a name in :data:`rlcf.envs`, a spec with ``make(**kwargs)``, a factory, or a ``ParallelEnv``.
        seed: seed for the determinism check.
        steps: steps per rollout.
        max_episode_steps: when given, an episode must end within this many steps.
        **kwargs: passed to the factory.

    Checks: PettingZoo's ``parallel_api_test``; observations inside their spaces; rewards finite numbers;
    the same seed gives the same observations and rewards (offline datasets must be regenerable);
    ``state()`` inside ``state_space`` where the env has a global state; the episode ends in time.
    """
    import numpy as np

    subject = f"env {env!r}" if isinstance(env, str) else f"env {type(env).__name__}"
    report = CheckReport(subject)
    if not (isinstance(env, str) or callable(env) or hasattr(env, "make") or hasattr(env, "step")):
        raise _fail(subject, "construct", "expected a registered name, a factory or an env")
    factory = (lambda: make_env(env, **kwargs)) if not hasattr(env, "step") else None
    instance = make_env(env, **kwargs)
    for attr in ("possible_agents", "reset", "step", "observation_space", "action_space"):
        if not hasattr(instance, attr):
            raise _fail(subject, "parallel API", f"missing '{attr}'; rlcf envs are PettingZoo ParallelEnv objects")
    report.ok("has the ParallelEnv attributes")

    from pettingzoo.test import parallel_api_test

    try:
        parallel_api_test(instance, num_cycles=steps)
    except AssertionError as exc:
        raise _fail(subject, "pettingzoo parallel_api_test", str(exc) or repr(exc)) from exc
    report.ok("pettingzoo parallel_api_test")

    trace = _rollout(instance, seed, steps)
    for t, (obs, rewards) in enumerate(trace):
        for agent, o in obs.items():
            if not instance.observation_space(agent).contains(o):
                raise _fail(subject, "observations in space", f"agent {agent} at step {t}: {o!r} is outside its space")
        for agent, r in (rewards or {}).items():
            if not isinstance(r, numbers.Real) or not math.isfinite(float(r)):
                raise _fail(subject, "finite rewards", f"agent {agent} at step {t} got reward {r!r}")
    report.ok("observations inside their spaces, rewards finite")

    if factory is not None:
        twin = factory()
        if not _equal([x for x, _ in trace], [x for x, _ in _rollout(twin, seed, steps)]) or not _equal(
            [r or {} for _, r in trace], [r or {} for _, r in _rollout(twin, seed, steps)]
        ):
            raise _fail(subject, "seeded determinism", f"two envs reset with seed={seed} diverged; seed every RNG in reset()")
        twin.close()
        report.ok(f"reset(seed={seed}) is deterministic")

    if hasattr(instance, "state") and getattr(instance, "state_space", None) is not None:
        instance.reset(seed=seed)
        state = instance.state()
        if not instance.state_space.contains(np.asarray(state, dtype=instance.state_space.dtype)):
            raise _fail(subject, "global state", f"state() of shape {np.shape(state)} is outside state_space")
        report.ok("state() inside state_space")

    if max_episode_steps is not None:
        instance.reset(seed=seed)
        for t in range(max_episode_steps + 1):
            if not instance.agents:
                break
            instance.step({a: instance.action_space(a).sample() for a in instance.agents})
        if instance.agents:
            raise _fail(subject, "episode length", f"still running after {max_episode_steps} steps")
        report.ok(f"episodes end within {max_episode_steps} steps")
    instance.close()
    return report


# -- reward functions --------------------------------------------------------------------------------------------

_TRL_KWARGS = {"trainer_state": None, "log_extra": lambda *a, **k: None, "log_metric": lambda *a, **k: None}


def check_reward_fn(
    fn: Callable[..., Sequence[float | None]] | str,
    completions: Sequence[Any],
    *,
    prompts: Sequence[Any] | None = None,
    expected: Sequence[float | None] | None = None,
    **columns: Sequence[Any],
) -> CheckReport:
    """Check a reward function against the protocol TRL's GRPOTrainer calls it with.

    Args:
        fn: the function, or its name in :data:`rlcf.rewards`.
        completions: sample completions (strings, or conversational ``[{"role": ..., "content": ...}]``).
        prompts: matching prompts (defaults to empty strings).
        expected: when given, the values the function must return for these inputs.
        **columns: extra dataset columns, one value per completion (``solution=[...]``).

    Checks: accepts ``**kwargs`` (TRL passes every dataset column and its own keywords); returns one value per
    completion; each value is a finite real number or ``None``; the same inputs give the same values; inputs
    are not modified; and, with ``expected``, the values match.
    """
    from rlcf.registry import rewards

    name = fn if isinstance(fn, str) else getattr(fn, "__name__", repr(fn))
    subject = f"reward function '{name}'"
    if isinstance(fn, str):
        fn = rewards.get(fn)
    report = CheckReport(subject)
    n = len(completions)
    for col, values in columns.items():
        if len(values) != n:
            raise ConformanceError(f"column '{col}' has {len(values)} values for {n} completions")

    params = inspect.signature(fn).parameters.values()
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        raise _fail(subject, "accepts **kwargs", "TRL passes every dataset column and its own keywords; add **kwargs")
    report.ok("accepts **kwargs")

    def call() -> tuple[Any, bool]:
        # Fresh copies per call, compared afterwards: TRL hands the same lists to every reward function,
        # so one that edits them in place corrupts the others' inputs.
        passed_completions = copy.deepcopy(list(completions))
        passed_columns = {k: copy.deepcopy(list(v)) for k, v in columns.items()}
        prompt_list = list(prompts) if prompts is not None else [""] * n
        result = fn(completions=passed_completions, prompts=prompt_list, **passed_columns, **_TRL_KWARGS)
        changed = passed_completions != list(completions) or any(passed_columns[k] != list(v) for k, v in columns.items())
        return result, changed

    out, changed = call()
    if changed:
        raise _fail(subject, "leaves inputs unchanged", "it modified the completions or a column in place")
    report.ok("leaves inputs unchanged")
    if not isinstance(out, (list, tuple)) or len(out) != n:
        got = f"{type(out).__name__} of length {len(out)}" if hasattr(out, "__len__") else repr(out)
        raise _fail(subject, "one value per completion", f"expected a list of {n} values, got {got}")
    for i, value in enumerate(out):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(float(value)):
            raise _fail(subject, "finite numbers or None", f"value {i} is {value!r}; return a float, or None if n/a")
    report.ok(f"returns {n} finite values or None")

    again, _ = call()
    if list(again) != list(out):
        raise _fail(subject, "deterministic", f"two calls on the same inputs gave {list(out)} and {list(again)}")
    report.ok("deterministic")

    if expected is not None:
        mismatches = [
            (i, o, e)
            for i, (o, e) in enumerate(zip(out, expected))
            if (o is None) != (e is None) or (o is not None and not math.isclose(float(o), float(e), abs_tol=1e-9))
        ]
        if mismatches or len(expected) != n:
            raise _fail(subject, "expected values", f"(index, got, expected): {mismatches}")
        report.ok("matches the expected values")
    return report
