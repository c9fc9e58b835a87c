"""Conformance checks users run on their own plugins, the way PettingZoo ships ``parallel_api_test``.

::

    from rlcf.testing import check_dataset, check_env, check_reward_fn

    def test_my_env():
        check_env("my-env")                     # a name in rlcf.envs, a factory, or an env instance

    def test_my_dataset():
        check_dataset("rlcf/my-env/expert-v0")  # a dataset id in the local Minari store, or its folder

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
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rlcf.errors import ConformanceError

__all__ = ["CheckReport", "check_dataset", "check_env", "check_reward_fn", "make_env"]


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


# -- datasets ----------------------------------------------------------------------------------------------------


def _outside(space: Any, rows: Any) -> str | None:
    """Why the first of ``rows`` (one per step) lies outside ``space``; ``None`` when every row is inside."""
    import gymnasium as gym
    import numpy as np

    rows = np.asarray(rows)
    if isinstance(space, gym.spaces.Box):
        if rows.shape[1:] != space.shape:
            return f"rows of shape {rows.shape[1:]}, but the space's shape is {space.shape}"
        if not np.can_cast(rows.dtype, space.dtype):
            return f"dtype {rows.dtype}, which does not fit the space's {space.dtype}"
        inside = ((rows >= space.low) & (rows <= space.high)).reshape(len(rows), -1).all(axis=1)
    elif isinstance(space, gym.spaces.Discrete):
        flat = rows.reshape(len(rows), -1)
        if flat.shape[1] != 1 or not np.issubdtype(rows.dtype, np.integer):
            return f"rows of shape {rows.shape[1:]} and dtype {rows.dtype}; a Discrete space needs one integer per step"
        inside = (flat[:, 0] >= space.start) & (flat[:, 0] < space.start + space.n)
    else:
        inside = np.array([space.contains(row) for row in rows], dtype=bool)
    bad = np.flatnonzero(~inside)
    return None if bad.size == 0 else f"step {bad[0]}: {np.asarray(rows[bad[0]]).tolist()} is outside {space}"


def check_dataset(dataset: str | os.PathLike[str]) -> CheckReport:
    """Check a multi-agent dataset on disk against the format rlcf writes, trains on and recovers envs from.

    Args:
        dataset: a dataset id in the local Minari store (``rlcf/mpe-simple_spread/expert-v0``) or its folder.

    Checks: rlcf's metadata block and the data files' checksums; Minari reads every episode; in each episode
    the observations and actions have a key per recorded agent and no other, ``T + 1`` observation rows and
    ``T`` action rows inside the agent's space (shape, dtype, bounds); ``T`` finite team rewards equal to
    ``infos["team_reward"]``; ``T`` terminations and truncations, none before the last step and exactly one of
    them at it; ``infos["agent_rewards"]`` per agent (``T + 1`` finite values, 0 at the reset row), the global
    state and the action masks where the metadata says the env has them; step and episode counts as in the
    metadata; and ``recover_environment()`` builds an env with the dataset's spaces.
    """
    import minari
    import numpy as np

    from rlcf.data.marl import _minari_root, _resolve, validate_dataset
    from rlcf.errors import CorruptDatasetError, UsageError

    subject = f"dataset {str(dataset)!r}"
    report = CheckReport(subject)
    try:
        folder, dataset_id = _resolve(dataset)
        meta = validate_dataset(folder, expect_id=dataset_id)
    except (CorruptDatasetError, UsageError) as exc:
        raise _fail(subject, "rlcf metadata and checksums", str(exc)) from exc
    rlcf_meta = meta["rlcf"]
    agents = tuple(rlcf_meta.get("agents", ()))
    report.ok("rlcf metadata present, data files match their checksums")

    with _minari_root(folder.parents[len(Path(dataset_id).parts) - 1]):
        try:
            ds = minari.load_dataset(dataset_id)
        except Exception as exc:  # noqa: BLE001 - whatever Minari trips on, the user needs to see it
            raise _fail(subject, "Minari opens it", f"{type(exc).__name__}: {exc}") from exc
        obs_space, act_space = ds.observation_space, ds.action_space
        for kind, space in (("observation", obs_space), ("action", act_space)):
            keys = tuple(getattr(space, "spaces", {}).keys())
            if set(keys) != set(agents):
                raise _fail(subject, f"{kind} space keyed by agent", f"keys {list(keys)}, recorded agents {list(agents)}")
        total_steps = 0
        for index in ds.episode_indices:
            try:
                (ep,) = ds.iterate_episodes([index])
            except Exception as exc:  # noqa: BLE001
                raise _fail(subject, "episodes readable", f"episode {index}: {type(exc).__name__}: {exc}") from exc
            _check_episode(subject, ep, agents, obs_space, act_space, rlcf_meta)
            total_steps += len(ep.rewards)
    report.ok(f"{len(ds.episode_indices)} episodes readable, in their spaces, rewards finite, ends consistent")
    if int(meta.get("total_steps", -1)) != total_steps:
        raise _fail(subject, "step count", f"metadata says {meta.get('total_steps')} steps, the episodes hold {total_steps}")
    report.ok(f"{total_steps} steps, as the metadata says")

    from rlcf.data.marl import recover_environment

    try:
        env = recover_environment(folder)
    except Exception as exc:  # noqa: BLE001
        why = f"{type(exc).__name__}: {exc}; register the env it was recorded on"
        raise _fail(subject, "recover_environment", why) from exc
    try:
        if env.observation_space != obs_space or env.action_space != act_space:
            raise _fail(subject, "recover_environment", f"the recovered env's spaces differ from the dataset's: "
                        f"{env.observation_space} / {env.action_space}")
    finally:
        env.close()
    report.ok("recover_environment() builds the env with the dataset's spaces")
    return report


def _check_episode(
    subject: str, ep: Any, agents: tuple[str, ...], obs_space: Any, act_space: Any, rlcf_meta: dict[str, Any]
) -> None:
    import numpy as np

    where = f"episode {ep.id}"
    T = len(ep.rewards)

    def fail(check: str, message: str) -> ConformanceError:
        return _fail(subject, check, f"{where}, {message}")

    if T == 0:
        raise fail("episode length", "no steps")
    for field_name, values, space, rows in (("observations", ep.observations, obs_space, T + 1),
                                           ("actions", ep.actions, act_space, T)):
        if not isinstance(values, dict) or set(values) != set(agents):
            got = list(values) if isinstance(values, dict) else type(values).__name__
            raise fail("per-agent keys", f"{field_name} has {got}; expected one entry per agent {list(agents)}")
        for agent in agents:
            if len(values[agent]) != rows:
                raise fail(f"{field_name} length",
                           f"{field_name}[{agent!r}] has {len(values[agent])} rows for {T} steps; expected {rows}")
            why = _outside(space[agent], values[agent])
            if why:
                raise fail(f"{field_name} in space", f"{field_name}[{agent!r}] {why}")
    rewards = np.asarray(ep.rewards)
    if rewards.shape != (T,) or not np.issubdtype(rewards.dtype, np.number):
        raise fail("finite rewards", f"rewards have shape {rewards.shape} and dtype {rewards.dtype}; expected ({T},) numbers")
    bad = np.flatnonzero(~np.isfinite(rewards))
    if bad.size:
        raise fail("finite rewards", f"rewards[{bad[0]}] is {rewards[bad[0]]}")
    ends = {}
    for field_name in ("terminations", "truncations"):
        flags = np.asarray(getattr(ep, field_name))
        if flags.shape != (T,) or flags.dtype != bool:
            raise fail("episode ends", f"{field_name} have shape {flags.shape} and dtype {flags.dtype}; expected ({T},) bool")
        early = np.flatnonzero(flags[:-1])
        if early.size:
            raise fail("episode ends", f"{field_name}[{early[0]}] is true before the last step ({T - 1}); an episode ends once")
        ends[field_name] = bool(flags[-1])
    if ends["terminations"] == ends["truncations"]:
        both = "both terminated and truncated" if ends["terminations"] else "neither terminated nor truncated"
        raise fail("episode ends", f"the last step is {both}; exactly one of them ends an episode")

    infos = ep.infos
    agent_rewards = infos.get("agent_rewards")
    if not isinstance(agent_rewards, dict) or set(agent_rewards) != set(agents):
        got = list(agent_rewards) if isinstance(agent_rewards, dict) else agent_rewards
        raise fail("per-agent keys", f"infos['agent_rewards'] has {got!r}; expected one entry per agent {list(agents)}")
    for agent in agents:
        r = np.asarray(agent_rewards[agent], dtype=np.float64)
        if r.shape != (T + 1,):
            raise fail("agent rewards",
                       f"infos['agent_rewards'][{agent!r}] has shape {r.shape}; expected ({T + 1},) (reset row first)")
        bad = np.flatnonzero(~np.isfinite(r))
        if bad.size:
            raise fail("agent rewards", f"infos['agent_rewards'][{agent!r}][{bad[0]}] is {r[bad[0]]}")
        if r[0] != 0:
            raise fail("agent rewards", f"infos['agent_rewards'][{agent!r}][0] is {r[0]}; the reset row holds 0")
    team = np.asarray(infos.get("team_reward", []), dtype=np.float64)
    if team.shape != (T + 1,) or not np.allclose(team[1:], rewards):
        raise fail("team reward", f"infos['team_reward'] (shape {team.shape}) does not match rewards, reset row first")
    if rlcf_meta.get("has_state"):
        state = np.asarray(infos.get("state", []))
        if state.ndim != 2 or len(state) != T + 1:
            raise fail("global state",
                       f"infos['state'] has shape {state.shape}; expected {T + 1} rows (the metadata says the env has one)")
    if rlcf_meta.get("has_action_mask"):
        masks = infos.get("action_mask")
        if not isinstance(masks, dict) or set(masks) != set(agents):
            got = list(masks) if isinstance(masks, dict) else masks
            raise fail("per-agent keys", f"infos['action_mask'] has {got!r}; expected one entry per agent {list(agents)}")
        for agent in agents:
            if len(masks[agent]) != T + 1:
                raise fail("action masks", f"infos['action_mask'][{agent!r}] has {len(masks[agent])} rows; expected {T + 1}")


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

    try:
        out, changed = call()
    except Exception as err:  # noqa: BLE001  (the report names whatever the function raised)
        raise _fail(subject, "runs on the sample inputs", f"it raised {type(err).__name__}: {err}") from err
    if getattr(out, "ndim", None) == 1 and hasattr(out, "tolist"):  # a 1-D numpy array or tensor, as TRL accepts
        out = out.tolist()
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
    again = again.tolist() if getattr(again, "ndim", None) == 1 and hasattr(again, "tolist") else again
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
