"""Reward functions and the reward protocols (installed as ``rlcf.reward_fns``).

Two kinds live in :data:`rlcf.registry.rewards`:

- LLM rewards, plain callables with TRL's signature ``fn(completions, **columns) -> list[float | None]``:
  one value per completion, ``None`` where the reward does not apply; they must accept ``**kwargs`` (TRL
  passes every extra dataset column plus ``trainer_state``, ``log_extra``, ``log_metric``).
- Env rewards (registered with ``kind="env"``), which relabel offline multi-agent data:
  ``fn(episode: EpisodeView, **kwargs) -> {agent_id: rewards (T,)}`` — see :mod:`rlcf.reward_fns.env_rewards`.

Importing this package registers rlcf's built-in reward functions: DNA-Train's ``choice`` and ``think_answer_format``
(:mod:`rlcf.reward_fns.dna`), DeFacto's ``format``, ``answer`` and
``grounding`` (:mod:`rlcf.reward_fns.defacto`) and the MPE relabelling rewards.
"""

from rlcf.reward_fns import defacto, dna, env_rewards  # noqa: F401  (registration side effects)
from rlcf.reward_fns.env_rewards import EpisodeView
from rlcf.reward_fns.protocol import RewardFn

__all__ = ["EpisodeView", "RewardFn"]
