"""Reward functions as a trainer uses them: resolved by name, guarded, weighted.

A reward function is a plain callable with TRL's contract ``fn(prompts, completions, **columns) ->
list[float | None]``. Register one with :func:`register_reward` (or a ``"package.module:function"`` path, or the
``rlcf.reward_fns`` entry-point group); :class:`RewardSet` turns names into the ``reward_funcs`` and
``reward_weights`` a GRPO trainer takes. Each function keeps its name, so TRL logs ``rewards/<name>/mean`` and
``/std`` separately. A function that raises, returns the wrong number of values or a non-number fails with its
name and the offending sample index, not a deep stack from inside the trainer.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from typing import Any

from rlcf.errors import ConfigError, UsageError

__all__ = ["RewardFunctionError", "RewardSet", "get_reward", "guard_reward", "register_reward", "resolve_reward"]

_TRL_KEYWORDS = ("trainer_state", "log_extra", "log_metric", "environments", "completion_ids")


class RewardFunctionError(UsageError):
    """A reward function failed or broke the protocol; the message names the function and the sample."""


def register_reward(name: str | Callable[..., Any] | None = None, **metadata: Any) -> Any:
    """Decorator: ``@rlcf.register_reward("my_reward", help="...")`` (or bare ``@rlcf.register_reward``)."""
    from rlcf.registry import rewards

    return rewards.register(name, **metadata)


def get_reward(name: str) -> Callable[..., list[float | None]]:
    """The reward function registered as ``name`` (or a ``"package.module:function"`` path).

    Raises:
        UnknownNameError: listing the registered reward functions.
    """
    return resolve_reward(name)


def resolve_reward(spec: str | Callable[..., Any]) -> Callable[..., Any]:
    """A callable from a registered name, a ``"package.module:function"`` path, or a callable."""
    from rlcf.registry import resolve_path, rewards

    if callable(spec):
        return spec
    if not isinstance(spec, str):
        raise UsageError(f"a reward function is a name, an import path or a callable, got {spec!r}")
    if ":" in spec:
        fn = resolve_path(spec)
        if not callable(fn):
            raise UsageError(f"'{spec}' is not callable; a reward function is fn(prompts, completions, **columns)")
        return fn
    return rewards.get(spec)


def _one_sample(kwargs: dict[str, Any], i: int, n: int) -> dict[str, Any]:
    """Keyword arguments restricted to sample ``i`` (per-sample lists sliced, TRL's own keywords kept)."""
    out = {}
    for key, value in kwargs.items():
        if key not in _TRL_KEYWORDS and isinstance(value, Sequence) and not isinstance(value, str) and len(value) == n:
            out[key] = [value[i]]
        else:
            out[key] = value
    return out


def _bad_value(value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        try:
            import numpy as np

            if isinstance(value, np.generic) and np.issubdtype(type(value), np.number):
                return not math.isfinite(float(value))
        except ImportError:  # pragma: no cover - numpy is always there with the llm extra
            pass
        return True
    return not math.isfinite(value)


def guard_reward(fn: Callable[..., Any], name: str | None = None) -> Callable[..., list[float | None]]:
    """Wrap ``fn`` so that failures name the function and the sample.

    On an exception the batch is replayed one sample at a time to find the first sample that raises. The result
    must be a list with one finite number (or ``None``) per completion. The wrapper keeps the name TRL logs by.
    """
    name = name or getattr(fn, "__name__", None) or repr(fn)

    @functools.wraps(fn)
    def guarded(*args: Any, **kwargs: Any) -> list[float | None]:
        completions = kwargs.get("completions", args[1] if len(args) > 1 else None)
        n = len(completions) if completions is not None else None
        try:
            values = fn(*args, **kwargs)
        except Exception as err:
            index = _first_failing_sample(fn, args, kwargs, n)
            where = f" on sample {index}" if index is not None else ""
            raise RewardFunctionError(f"reward function '{name}' raised{where}: {type(err).__name__}: {err}") from err
        if getattr(values, "ndim", None) == 1 and hasattr(values, "tolist"):  # a 1-D numpy array or tensor: TRL takes it
            values = values.tolist()
        if not isinstance(values, Sequence) or isinstance(values, str):
            raise RewardFunctionError(f"reward function '{name}' returned {type(values).__name__}; it must return a list of floats (None where it does not apply)")
        values = list(values)
        if n is not None and len(values) != n:
            raise RewardFunctionError(f"reward function '{name}' returned {len(values)} values for {n} completions; return one per completion")
        for i, value in enumerate(values):
            if _bad_value(value):
                raise RewardFunctionError(f"reward function '{name}' returned {value!r} for sample {i}; values must be finite numbers or None")
        return [None if v is None else float(v) for v in values]

    guarded.__name__ = name
    guarded.__rlcf_guarded__ = True  # type: ignore[attr-defined]
    return guarded


def _first_failing_sample(fn: Callable[..., Any], args: tuple, kwargs: dict, n: int | None) -> int | None:
    if not n:
        return None
    prompts = kwargs.get("prompts", args[0] if args else None)
    completions = kwargs.get("completions", args[1] if len(args) > 1 else None)
    rest = {k: v for k, v in kwargs.items() if k not in ("prompts", "completions")}
    for i in range(n):
        one = _one_sample(rest, i, n)
        try:
            fn(prompts=[prompts[i]] if prompts is not None else None, completions=[completions[i]], **one)
        except Exception:
            return i
    return None


class RewardSet:
    """Named, guarded reward functions with their weights.

    Args:
        rewards: names (registered or ``"package.module:function"``) or callables, in order.
        weights: one weight per reward (default 1 each); a length mismatch is a :class:`ConfigError` on
            ``field``.
        field: the config field the weights came from (for error messages).
    """

    def __init__(self, rewards: Sequence[str | Callable[..., Any]], weights: Sequence[float] | None = None, field: str = "config.reward_weights"):
        if not rewards:
            raise ConfigError(field.rsplit(".", 1)[0] + ".rewards", "needs at least one reward function")
        self.names: list[str] = []
        self.functions: list[Callable[..., Any]] = []
        from rlcf.registry import rewards as registry

        for spec in rewards:
            fn = resolve_reward(spec)
            entry = registry.entry(spec) if isinstance(spec, str) and ":" not in spec else None
            if entry is not None and entry.metadata.get("kind") == "env":
                llm = [e.name for e in registry.entries() if e.metadata.get("kind") != "env"]
                raise ConfigError(
                    field.rsplit(".", 1)[0] + ".rewards",
                    f"'{spec}' relabels multi-agent datasets (kind=env); LLM trainers take completion rewards: {', '.join(llm)}",
                )
            name = spec if isinstance(spec, str) and ":" not in spec else getattr(fn, "__name__", repr(fn))
            if name in self.names:
                raise ConfigError(field.rsplit(".", 1)[0] + ".rewards", f"reward '{name}' is listed twice")
            self.names.append(name)
            self.functions.append(guard_reward(fn, name))
        if weights is None:
            weights = [1.0] * len(self.functions)
        if len(weights) != len(self.functions):
            raise ConfigError(
                field, f"has {len(weights)} weights for {len(self.functions)} reward functions ({', '.join(self.names)}); give one weight per function"
            )
        bad = [w for w in weights if not isinstance(w, (int, float)) or isinstance(w, bool) or not math.isfinite(w)]
        if bad:
            raise ConfigError(field, f"weights must be finite numbers, got {bad}")
        self.weights = [float(w) for w in weights]

    def __repr__(self) -> str:
        return "RewardSet(" + ", ".join(f"{n}×{w:g}" for n, w in zip(self.names, self.weights)) + ")"

    def __call__(self, prompts: Sequence[Any], completions: Sequence[Any], **columns: Any) -> dict[str, list[float | None]]:
        """Every function's values, by name, plus ``"total"``: the weighted sum (TRL's rule: ``None`` counts as
        missing and the sum is over the functions that apply; all ``None`` gives ``None``)."""
        out = {name: fn(prompts=prompts, completions=completions, **columns) for name, fn in zip(self.names, self.functions)}
        total: list[float | None] = []
        for i in range(len(completions)):
            parts = [w * out[name][i] for name, w in zip(self.names, self.weights) if out[name][i] is not None]
            total.append(sum(parts) if parts else None)
        out["total"] = total
        return out
