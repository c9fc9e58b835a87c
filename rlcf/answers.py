"""What a completion answers: its tagged sections, its one answer, and whether that answer is an abstention.

One parser for the reward functions (:mod:`rlcf.reward_fns`) and the evaluation (:mod:`rlcf.eval.llm`), so that
a completion the rewards pay as correct is exactly one the evaluation counts as correct. It lives in core
because both import it: the rewards are plug-ins (core reaches them only through the registry), and a
plug-in may import core, never the reverse.

The rules:

- **One answer.** :func:`single_tag` returns a tag's content only when the completion holds exactly one opening
  and one closing tag of that name (any case, with or without attributes). A repeated or nested ``<answer>``
  has no answer: a completion cannot hedge by writing two.
- **An abstention is an answer that is one.** :func:`is_abstention` compares the whole normalised answer with
  a phrase set (:data:`DEFAULT_ABSTENTIONS` unless given): ``"I don't know."`` abstains, ``"oslo, or
  unknown"`` names a value and does not, and neither does ``"unknowable"``.
- **Answers compare after SQuAD's normalisation** (:func:`normalize_answer`): case, punctuation, articles, spacing.
"""

from __future__ import annotations

import functools
import re
import string
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = [
    "DEFAULT_ABSTENTIONS",
    "abstention_phrases",
    "answer_of",
    "completion_text",
    "is_abstention",
    "normalize_answer",
    "single_tag",
    "tag_count",
    "tag_sequence",
]

DEFAULT_ABSTENTIONS: tuple[str, ...] = (
    "unknown",
    "I don't know",
    "I do not know",
    "don't know",
    "cannot be determined",
    "can't be determined",
    "it cannot be determined",
    "not enough information",
    "there is not enough information",
)
"""Answers that abstain (compared after :func:`normalize_answer`, so case and punctuation do not matter)."""


def completion_text(completion: Any) -> str:
    """The text of a completion: a string, or TRL's conversational form ``[{"role": "assistant", "content": …}]``."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, Sequence) and completion and isinstance(completion[-1], dict):
        content = completion[-1].get("content", "")
        if isinstance(content, list):  # multimodal content parts
            return "".join(part.get("text", "") for part in content if isinstance(part, dict))
        return str(content)
    return str(completion)


@functools.lru_cache(maxsize=64)
def _tag_patterns(tag: str) -> tuple[re.Pattern[str], re.Pattern[str], re.Pattern[str]]:
    name = re.escape(tag)
    # Openings and closings are counted loosely (any case, attributes, spaces) so that a second answer cannot
    # hide as <Answer> or <answer id=2>; the content is read only from the exact form <tag>…</tag>.
    opening = re.compile(rf"<\s*{name}(?:\s[^>]*)?>", re.IGNORECASE)
    closing = re.compile(rf"<\s*/\s*{name}\s*>", re.IGNORECASE)
    exact = re.compile(rf"<{name}>(.*?)</{name}>", re.DOTALL)
    return opening, closing, exact


def tag_count(text: str, tag: str) -> int:
    """How many times ``tag`` occurs in ``text``: the larger of its openings and closings (any case or attributes)."""
    opening, closing, _ = _tag_patterns(tag)
    return max(len(opening.findall(text)), len(closing.findall(text)))


def _occurs_once(text: str, tag: str) -> bool:
    opening, closing, _ = _tag_patterns(tag)
    return len(opening.findall(text)) == 1 and len(closing.findall(text)) == 1


def single_tag(text: str, tag: str) -> str | None:
    """Content of the one ``<tag>…</tag>`` in ``text``; ``None`` when it is absent, repeated or nested."""
    if not _occurs_once(text, tag):
        return None
    m = _tag_patterns(tag)[2].search(text)
    return m.group(1) if m else None


def tag_sequence(text: str, tags: Sequence[str]) -> list[str] | None:
    """Contents of the sections when ``text`` is exactly ``<t1>…</t1><t2>…</t2>…`` in this order (whitespace
    around and between allowed), each tag exactly once and none inside another; else ``None``."""
    if not all(_occurs_once(text, t) for t in tags):
        return None
    pattern = r"\s*" + r"\s*".join(rf"<{re.escape(t)}>(.*?)</{re.escape(t)}>" for t in tags) + r"\s*"
    m = re.fullmatch(pattern, text, re.DOTALL)
    return list(m.groups()) if m else None


def answer_of(completion: Any, tag: str = "answer") -> str | None:
    """The completion's answer: the content of its one ``<answer>`` tag (``None`` if absent, repeated or nested)."""
    return single_tag(completion_text(completion), tag)


_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(text: str) -> str:
    """Lower case, no punctuation, no articles, single spaces (SQuAD's normalisation)."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in string.punctuation)
    return " ".join(_ARTICLES.sub(" ", text).split())


def abstention_phrases(phrases: Iterable[str] = DEFAULT_ABSTENTIONS) -> frozenset[str]:
    """The normalised phrase set; ``ValueError`` for a bare string or a phrase that normalises to nothing."""
    if isinstance(phrases, str):
        raise ValueError(f"abstention phrases must be a list of phrases, got the string {phrases!r}; write ({phrases!r},)")
    phrases = tuple(phrases)
    bad = [p for p in phrases if not isinstance(p, str)]
    if bad:
        raise ValueError(f"abstention phrases must be strings, got {bad!r}")
    return _normalized_phrases(phrases)


@functools.lru_cache(maxsize=32)
def _normalized_phrases(phrases: tuple[str, ...]) -> frozenset[str]:
    if not phrases:
        raise ValueError("abstention phrases are empty; give at least one (e.g. rlcf.answers.DEFAULT_ABSTENTIONS)")
    out = set()
    for p in phrases:
        if not normalize_answer(p):
            raise ValueError(f"abstention phrase {p!r} is empty after normalisation (case, punctuation, articles removed); give words")
        out.add(normalize_answer(p))
    return frozenset(out)


def is_abstention(answer: str | None, phrases: Iterable[str] = DEFAULT_ABSTENTIONS) -> bool:
    """Whether ``answer`` *is* an abstention: its normalised text equals one of the normalised ``phrases``.

    A hedge that also names a value (``"oslo, or unknown"``) is not one; ``None`` (no answer) is not one either.
    """
    return answer is not None and normalize_answer(answer) in abstention_phrases(phrases)
