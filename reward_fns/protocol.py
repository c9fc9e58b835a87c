"""The reward-function protocol shared by the LLM trainers and :func:`rlcf.testing.check_reward_fn`."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class RewardFn(Protocol):
    """``fn(completions, **columns) -> list[float | None]``, one value per completion (``None``: not applicable)."""

    def __call__(self, completions: list[Any], **kwargs: Any) -> list[float | None]: ...
