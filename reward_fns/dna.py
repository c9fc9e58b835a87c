"""DNA-Train's rewards (arXiv 2512.24271, Eq. 6-7): ``R = r_f + r_c``.

- ``choice`` (``r_c``): 1 if the ``<answer>`` content is the correct option (the ``solution`` column, after
  SQuAD-style normalisation), else 0. With an ``options`` column, an answer that is none of the options is 0 too.
- ``think_answer_format`` (``r_f``): 1 if the completion is ``<think>…</think><answer>…</answer>``, else 0 (the
  paper does not spell its format out; this is the usual R1-style one).

Completions are read by :mod:`rlcf.answers` (as DeFacto's rewards and the evaluation read them): the answer is the
content of the completion's one ``<answer>`` tag, so a repeated or nested ``<answer>`` is no answer (0) and fails
the format.

Columns read: ``solution`` (required on every row), optionally ``options`` (a list of strings).
"""

from __future__ import annotations

from typing import Any

from rlcf.answers import answer_of, completion_text, normalize_answer, tag_sequence
from rlcf.registry import rewards
from rlcf.reward_fns.defacto import RewardInputError

__all__ = ["choice_reward", "think_answer_format_reward"]


@rewards.register("choice", help="DNA-Train r_c: 1 if <answer> is the correct option (solution column), else 0")
def choice_reward(completions: list[Any], **kwargs: Any) -> list[float]:
    """1 if the ``<answer>`` content is the correct option, else 0."""
    solutions = kwargs.get("solution")
    if solutions is None or len(solutions) != len(completions):
        raise RewardInputError(f"reward 'choice' needs the dataset column 'solution' with one value per completion (got {None if solutions is None else len(solutions)} for {len(completions)})")
    options = kwargs.get("options")
    out = []
    for i, completion in enumerate(completions):
        if solutions[i] is None:
            raise RewardInputError(f"reward 'choice', sample {i}: the row has no answer in the 'solution' column; give every row its correct option")
        answer = answer_of(completion)
        if answer is None:
            out.append(0.0)
            continue
        got = normalize_answer(answer)
        if options is not None and options[i] is not None and got not in {normalize_answer(str(o)) for o in options[i]}:
            out.append(0.0)
            continue
        out.append(1.0 if got == normalize_answer(str(solutions[i])) else 0.0)
    return out


@rewards.register("think_answer_format", help="DNA-Train r_f: 1 if <think>…</think><answer>…</answer>, else 0")
def think_answer_format_reward(completions: list[Any], **kwargs: Any) -> list[float]:
    """1 if the completion is ``<think>…</think><answer>…</answer>``, each tag once and none nested, else 0."""
    return [1.0 if tag_sequence(completion_text(c), ("think", "answer")) is not None else 0.0 for c in completions]
