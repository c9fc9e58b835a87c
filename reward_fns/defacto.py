"""DeFacto's rewards (arXiv 2509.20912): format, answer (with abstention on counterfactuals) and grounding.

Every example comes in three variants, named by the ``variant`` column:

- ``pos``: the input unchanged — answer correctly and cite the evidence;
- ``neg``: the evidence is masked (the counterfactual) — abstain, with the abstention token (``unknown``);
- ``random``: irrelevant parts are masked — the answer must not change.

The expected completion is ``<evidence>…</evidence><think>…</think><answer>…</answer>`` for text (evidence =
the fact numbers cited) and ``<bbox>[…]</bbox><think>…</think><answer>…</answer>`` for images (a JSON list of
boxes ``[x1, y1, x2, y2]`` or ``{"Position": […], "Confidence": c}``). The tag set comes from the factory's
``tags`` argument, or per row from the ``modality`` column (``text`` | ``image``; text when absent).

Columns read: ``variant``, ``solution`` (the answer), ``evidence`` and ``non_evidence`` (regions, see
:mod:`rlcf.reward_fns.regions`), optionally ``modality``.

Completions are read by :mod:`rlcf.answers`, the parser the evaluation uses too: a completion's answer is the
content of its one ``<answer>`` tag, and an abstention is an answer that *is* one of the phrases of
``DeFactoTags.abstentions`` (default :data:`rlcf.answers.DEFAULT_ABSTENTIONS`: ``unknown``, "I don't know",
"cannot be determined", "not enough information", …) or the tags' ``abstain`` token.

Differences from the reference code (``virft/src/open_r1/grpo_defacto.py``), deliberate:
- Abstention is the whole ``<answer>`` being an abstention phrase. The reference searches ``unknown|no|none``
  anywhere in the completion, so "not" or "know" in the reasoning counted as refusals, and a hedge
  (``oslo, or unknown``) counted as abstaining.
- Exactly one ``<answer>`` (and one evidence tag): a repeated or nested tag fails the format and leaves the
  completion without an answer (scored wrong), so a completion cannot hedge by writing two answers.
- The answer is compared after SQuAD-style normalisation (case, punctuation, articles, spacing), against the
  ``solution`` column's plain answer.
- Grounding on ``neg``: +1 for abstaining — the answer abstains and the evidence tag cites no region (it is
  empty or an abstention) —, −1 for citing any region, 0 otherwise (the reference gave +1 to any completion
  without a parsable box, including malformed ones and ones answering a value). An abstaining evidence tag
  followed by a value earns 0: paying it +1 made that self-contradiction the completion GRPO climbed to on
  ``neg``, with the answer never following (bench/results/defacto.md, session 18). A completion with a repeated or nested
  evidence or answer tag gets no grounding reward: 0 on ``pos``/``random``, −1 on ``neg`` (as the answer
  reward scores a completion without a readable answer).
- Duplicate predicted regions count once (the reference removes duplicate boxes before matching, too).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rlcf.answers import (
    DEFAULT_ABSTENTIONS,
    abstention_phrases,
    completion_text,
    is_abstention,
    normalize_answer,
    single_tag,
    tag_count,
    tag_sequence,
)
from rlcf.registry import rewards
from rlcf.reward_fns.regions import matched_iou_score, parse_regions

__all__ = [
    "DeFactoTags",
    "IMAGE_TAGS",
    "RewardInputError",
    "TEXT_TAGS",
    "VARIANTS",
    "answer_reward",
    "format_reward",
    "grounding_reward",
    "make_answer_reward",
    "make_format_reward",
    "make_grounding_reward",
    "predicted_regions",
]

VARIANTS = ("pos", "neg", "random")


@dataclass(frozen=True)
class DeFactoTags:
    """Tag names of the expected completion and what counts as abstaining.

    Attributes:
        evidence, think, answer: the three tags, in this order.
        abstain: the abstention token the datasets' ``neg`` rows and target completions use; always an abstention.
        json_regions: the evidence tag must hold a JSON list (image boxes).
        abstentions: further answers that abstain, compared whole after normalisation (a hedge that also
            names a value is not one).
    """

    evidence: str = "evidence"
    think: str = "think"
    answer: str = "answer"
    abstain: str = "unknown"
    json_regions: bool = False
    abstentions: tuple[str, ...] = DEFAULT_ABSTENTIONS

    def __post_init__(self) -> None:
        if isinstance(self.abstentions, str):
            raise ValueError(f"DeFactoTags.abstentions must be a tuple of phrases, got the string {self.abstentions!r}; write ({self.abstentions!r},)")
        object.__setattr__(self, "abstentions", tuple(self.abstentions))
        try:
            abstention_phrases(self.phrases)
        except ValueError as err:
            raise ValueError(f"DeFactoTags.abstain / abstentions: {err}") from None

    @property
    def phrases(self) -> tuple[str, ...]:
        """Every answer that abstains: ``abstentions`` and the ``abstain`` token."""
        return (*self.abstentions, self.abstain)


TEXT_TAGS = DeFactoTags()
IMAGE_TAGS = DeFactoTags(evidence="bbox", json_regions=True)
_BY_MODALITY = {"text": TEXT_TAGS, "image": IMAGE_TAGS}


class RewardInputError(ValueError):
    """A dataset row the reward cannot score (missing or invalid column); names the column and the sample."""


# -- parsing (the completion's tags and answer: rlcf.answers) --------------------------------------------------


def predicted_regions(content: str | None, tags: DeFactoTags) -> list | None:
    """Regions cited in the evidence tag's ``content``: ``[]`` for none (or abstention), ``None`` if unparsable.

    Image tags: a JSON list of boxes or of ``{"Position": …, "Confidence": …}`` (single quotes accepted, a lone
    box accepted). Text tags: JSON regions, or else the fact numbers written in the text (``"2, 5"``,
    ``"facts 2 and 5"``).
    """
    if content is None:
        return None
    stripped = content.strip()
    if not stripped or is_abstention(stripped, tags.phrases):
        return []
    try:
        value = json.loads(stripped.replace("'", '"'))
    except ValueError:
        value = None
        if tags.json_regions:
            return None
    if value is not None:
        if isinstance(value, list) and len(value) == 4 and all(isinstance(v, (int, float)) for v in value) and tags.json_regions:
            value = [value]  # a lone box
        try:
            return parse_regions(value)
        except (ValueError, TypeError):
            return None
    numbers = re.findall(r"\d+", stripped)
    return parse_regions([int(n) for n in numbers]) if numbers else None


# -- the rewards -------------------------------------------------------------------------------------------------


def _column(kwargs: dict, name: str, n: int, reward: str) -> list:
    values = kwargs.get(name)
    if values is None:
        raise RewardInputError(f"reward '{reward}' needs the dataset column '{name}' (got columns: {sorted(k for k in kwargs if not k.startswith('trainer_') and k not in ('log_extra', 'log_metric'))})")
    if len(values) != n:
        raise RewardInputError(f"reward '{reward}': column '{name}' has {len(values)} values for {n} completions")
    return list(values)


def _variant(value: Any, i: int, reward: str) -> str:
    if value not in VARIANTS:
        raise RewardInputError(f"reward '{reward}', sample {i}: variant must be one of {', '.join(VARIANTS)}, got {value!r}")
    return value


def _tags_for(tags: DeFactoTags | None, kwargs: dict, i: int) -> DeFactoTags:
    if tags is not None:
        return tags
    modality = (kwargs.get("modality") or [None] * (i + 1))[i] or "text"
    if modality not in _BY_MODALITY:
        raise RewardInputError(f"sample {i}: modality must be 'text' or 'image', got {modality!r}")
    return _BY_MODALITY[modality]


def _repeated_tag(text: str, tags: tuple[str, ...]) -> bool:
    """Whether one of ``tags`` opens or closes more than once in ``text`` (repeated or nested)."""
    return any(tag_count(text, tag) > 1 for tag in tags)


def make_format_reward(tags: DeFactoTags | None = None, name: str = "format", qualname: str | None = None) -> Callable[..., list[float]]:
    """1 if the completion is exactly evidence-think-answer, each tag once and none nested (the image variant's
    evidence a JSON list), else 0."""

    def fn(completions: list[Any], **kwargs: Any) -> list[float]:
        out = []
        for i, completion in enumerate(completions):
            t = _tags_for(tags, kwargs, i)
            sections = tag_sequence(completion_text(completion), (t.evidence, t.think, t.answer))
            ok = sections is not None and (not t.json_regions or predicted_regions(sections[0], t) is not None)
            out.append(1.0 if ok else 0.0)
        return out

    fn.__name__, fn.__qualname__ = name, qualname or name
    fn.__doc__ = make_format_reward.__doc__
    return fn


def make_answer_reward(tags: DeFactoTags | None = None, name: str = "answer", qualname: str | None = None) -> Callable[..., list[float]]:
    """pos/random: +1 normalized exact match, 0 wrong or missing, −1 abstention; neg: +1 abstention, −1 otherwise.
    The answer is the content of the completion's one ``<answer>`` tag: repeated or nested tags leave none."""

    def fn(completions: list[Any], **kwargs: Any) -> list[float]:
        n = len(completions)
        variants = _column(kwargs, "variant", n, name)
        solutions = kwargs.get("solution")
        out = []
        for i, completion in enumerate(completions):
            t = _tags_for(tags, kwargs, i)
            variant = _variant(variants[i], i, name)
            answer = single_tag(completion_text(completion), t.answer)
            if variant == "neg":
                out.append(1.0 if is_abstention(answer, t.phrases) else -1.0)
                continue
            if solutions is None or solutions[i] is None:
                raise RewardInputError(f"reward '{name}', sample {i}: a '{variant}' row needs its answer in the 'solution' column")
            if is_abstention(answer, t.phrases):
                out.append(-1.0)
            elif answer is not None and normalize_answer(answer) == normalize_answer(str(solutions[i])):
                out.append(1.0)
            else:
                out.append(0.0)
        return out

    fn.__name__, fn.__qualname__ = name, qualname or name
    fn.__doc__ = make_answer_reward.__doc__
    return fn


def make_grounding_reward(tags: DeFactoTags | None = None, name: str = "grounding", qualname: str | None = None) -> Callable[..., list[float]]:
    """pos/random: clip(score(evidence) − score(non-evidence), −1, 1) with greedy matched IoU (duplicate regions
    count once); neg: +1 when the answer abstains and no region is cited, −1 any region, else 0. A repeated or nested evidence or answer tag: 0 on pos/random,
    −1 on neg."""

    def fn(completions: list[Any], **kwargs: Any) -> list[float]:
        n = len(completions)
        variants = _column(kwargs, "variant", n, name)
        evidence = kwargs.get("evidence")
        non_evidence = kwargs.get("non_evidence")
        out = []
        for i, completion in enumerate(completions):
            t = _tags_for(tags, kwargs, i)
            variant = _variant(variants[i], i, name)
            if variant != "neg" and (evidence is None or not evidence[i]):
                raise RewardInputError(
                    f"reward '{name}', sample {i}: a '{variant}' row needs its evidence regions in the 'evidence' column"
                )
            text = completion_text(completion)
            if _repeated_tag(text, (t.evidence, t.answer)):
                # Two evidence or answer tags hedge between readings: no grounding, and no escape from neg's penalty.
                out.append(-1.0 if variant == "neg" else 0.0)
                continue
            content = single_tag(text, t.evidence)
            regions = predicted_regions(content, t)
            if variant == "neg":
                if regions:
                    out.append(-1.0)
                elif is_abstention(single_tag(text, t.answer), t.phrases) and (regions == [] or is_abstention(content, t.phrases)):
                    # The +1 needs the answer to abstain too: an abstaining evidence tag followed by a value cites
                    # nothing the answer rests on. Paying it anyway made "evidence unknown, answer <value>" the
                    # attractor GRPO climbed on neg (bench/results/defacto.md, session 18).
                    out.append(1.0)
                else:
                    out.append(0.0)
                continue
            if not regions:
                out.append(0.0)
                continue
            try:
                truth = [r for r, _ in parse_regions(evidence[i])]
                other = [r for r, _ in parse_regions(non_evidence[i])] if non_evidence is not None else []
            except ValueError as err:
                raise RewardInputError(f"reward '{name}', sample {i}: {err}") from None
            score = matched_iou_score(regions, truth) - matched_iou_score(regions, other)
            out.append(float(min(1.0, max(-1.0, score))))
        return out

    fn.__name__, fn.__qualname__ = name, qualname or name
    fn.__doc__ = make_grounding_reward.__doc__
    return fn


format_reward = rewards.register("format", help="DeFacto: 1 if evidence-think-answer format (tags by modality), else 0")(
    make_format_reward(qualname="format_reward")
)
answer_reward = rewards.register("answer", help="DeFacto: pos/random +1 right, 0 wrong, -1 abstain; neg +1 abstain, -1 otherwise")(
    make_answer_reward(qualname="answer_reward")
)
grounding_reward = rewards.register(
    "grounding", help="DeFacto: matched IoU on evidence minus on non-evidence, clipped; neg +1 abstain, -1 any region"
)(make_grounding_reward(qualname="grounding_reward"))


def make_variant_answer_reward(variant: str, name: str, tags: DeFactoTags | None = None) -> Callable[..., list[float | None]]:
    """The ``answer`` reward on one variant only (``None``, not applicable, on the others).

    DeFacto's answer term split three ways: ``accuracy`` (pos), ``counterfactual`` (neg) and ``masked``
    (random), so that ``reward_weights`` can weigh them apart, e.g. to stop a policy from abstaining on every
    masked input when it cannot yet tell a masked distractor from masked evidence.
    """
    answer = make_answer_reward(tags, name=name)

    def fn(completions: list[Any], **kwargs: Any) -> list[float | None]:
        n = len(completions)
        variants = [_variant(v, i, name) for i, v in enumerate(_column(kwargs, "variant", n, name))]
        values = answer(completions, **kwargs)
        return [v if variants[i] == variant else None for i, v in enumerate(values)]

    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = make_variant_answer_reward.__doc__
    return fn


accuracy_reward = rewards.register("accuracy", help="DeFacto answer term on pos rows only: +1 right, 0 wrong, -1 abstain")(
    make_variant_answer_reward("pos", "accuracy")
)
counterfactual_reward = rewards.register("counterfactual", help="DeFacto answer term on neg rows only: +1 abstain, -1 otherwise")(
    make_variant_answer_reward("neg", "counterfactual")
)
masked_reward = rewards.register("masked", help="DeFacto answer term on random-masked rows only: +1 right, 0 wrong, -1 abstain")(
    make_variant_answer_reward("random", "masked")
)
