"""Reward functions and the reward protocol (installed as ``rlcf.reward_fns``).

A reward function is a plain callable, TRL-compatible::

    def fn(completions: list, **columns) -> list[float | None]: ...

one value per completion, ``None`` where the reward does not apply. It must accept ``**kwargs``: TRL passes
every extra dataset column plus its own keywords (``trainer_state``, ``log_extra``, ``log_metric``).
Importing this package registers rlcf's built-in reward functions in :data:`rlcf.rewards`.
"""

from rlcf.reward_fns.protocol import RewardFn

__all__ = ["RewardFn"]
