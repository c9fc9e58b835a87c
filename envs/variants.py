"""DeFacto's three variants of an example: ``pos`` (unchanged), ``neg`` (evidence masked) and ``random``
(irrelevant regions masked), for text and for images.

- Text: the input is a list of segments (sentences, numbered facts); regions are segment indices. ``neg`` masks
  every evidence segment and expects the abstention token; ``random`` masks some non-evidence segments and
  keeps the answer. A mask replaces the whole segment, or only its span when the example gives one per segment
  (a fact's value, keeping its subject: the evidence is gone but the question still refers to the document).
- Images: regions are boxes ``[x1, y1, x2, y2]`` in pixels; masking fills the box (Pillow). ``random`` masks only
  candidate boxes that do not overlap any evidence box. Give candidates drawn like the evidence (objects of the
  same kind and size): if ``random``'s masks differ from ``neg``'s in area or shape, a model tells the variants
  apart by the mask and never reads the question.

Each variant is one dataset row; the variant and the regions travel as columns (``variant``, ``solution``,
``evidence``, ``non_evidence``, ``masked``, ``modality``) to the rewards of :mod:`rlcf.reward_fns.defacto`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rlcf.errors import UsageError

__all__ = ["MASK_TEXT", "TextExample", "build_image_variants", "build_text_variants", "render_segments"]

MASK_TEXT = "[masked]"


@dataclass(frozen=True)
class TextExample:
    """A text example with its evidence.

    Attributes:
        segments: the input's parts, in order (numbered facts, sentences).
        question: the question.
        answer: the answer when nothing is masked.
        evidence: indices of the segments the answer rests on (at least one).
        uid: an identifier of the source document (kept in every variant's row).
        spans: optional ``(start, end)`` character span per segment: the part a mask replaces (e.g. a fact's
            value, keeping its subject). ``None`` masks whole segments.
    """

    segments: tuple[str, ...]
    question: str
    answer: str
    evidence: tuple[int, ...]
    uid: str = ""
    spans: tuple[tuple[int, int], ...] | None = None


    def __post_init__(self) -> None:
        if not self.evidence:
            raise UsageError(f"example {self.uid or self.question!r} has no evidence regions; every example needs at least one")
        bad = [i for i in self.evidence if not 0 <= i < len(self.segments)]
        if bad:
            raise UsageError(f"example {self.uid or self.question!r}: evidence indices {bad} are outside its {len(self.segments)} segments")
        if self.spans is not None:
            if len(self.spans) != len(self.segments):
                raise UsageError(f"example {self.uid or self.question!r}: {len(self.spans)} spans for {len(self.segments)} segments; give one per segment")
            for i, (a, b) in enumerate(self.spans):
                if not 0 <= a < b <= len(self.segments[i]):
                    raise UsageError(f"example {self.uid or self.question!r}: span {(a, b)} of segment {i + 1} is empty or outside its text")

    def masked_segment(self, i: int, mask: str = MASK_TEXT) -> str:
        """Segment ``i`` with its span (or all of it) replaced by ``mask``."""
        if self.spans is None:
            return mask
        a, b = self.spans[i]
        return self.segments[i][:a] + mask + self.segments[i][b:]


def render_segments(segments: Sequence[str]) -> str:
    """Numbered lines, ``1. …``; fact numbers in completions are these 1-based numbers."""
    return "\n".join(f"{i + 1}. {s}" for i, s in enumerate(segments))


def build_text_variants(
    example: TextExample, rng: np.random.Generator, abstain: str = "unknown", random_count: int | None = None, mask: str = MASK_TEXT
) -> list[dict[str, Any]]:
    """The three variants of ``example`` as rows (regions are 1-based segment numbers, as rendered).

    ``random`` masks ``random_count`` non-evidence segments chosen by ``rng`` — by default as many as ``neg``
    masks (the number of evidence segments), so the number of masks never tells the variants apart (with more
    masks in ``random`` than in ``neg`` a model learns "one mask ⇒ abstain" instead of reading the question).
    An example without non-evidence segments gets a ``random`` row with nothing masked.
    """
    n = len(example.segments)
    evidence = sorted(set(example.evidence))
    others = [i for i in range(n) if i not in evidence]
    k = min(len(others), len(evidence) if random_count is None else random_count)
    random_masked = sorted(rng.choice(others, size=k, replace=False).tolist()) if k else []

    def row(variant: str, masked: list[int], solution: str) -> dict[str, Any]:
        segments = [example.masked_segment(i, mask) if i in masked else s for i, s in enumerate(example.segments)]
        return {
            "uid": example.uid,
            "variant": variant,
            "document": render_segments(segments),
            "question": example.question,
            "solution": solution,
            "evidence": [i + 1 for i in evidence],
            "non_evidence": [i + 1 for i in others],
            "masked": [i + 1 for i in masked],
            "modality": "text",
        }

    return [row("pos", [], example.answer), row("neg", evidence, abstain), row("random", random_masked, example.answer)]


def _overlaps(a: Sequence[float], b: Sequence[float]) -> bool:
    return min(a[2], b[2]) > max(a[0], b[0]) and min(a[3], b[3]) > max(a[1], b[1])


def build_image_variants(
    image: Any,
    evidence: Sequence[Sequence[float]],
    candidates: Sequence[Sequence[float]],
    rng: np.random.Generator,
    question: str = "",
    answer: str = "",
    abstain: str = "unknown",
    num_random: int = 1,
    fill: tuple[int, int, int] = (0, 0, 0),
    non_evidence: Sequence[Sequence[float]] | None = None,
) -> list[dict[str, Any]]:
    """The three variants of an image example, with Pillow.

    Args:
        image: a ``PIL.Image``.
        evidence: evidence boxes (at least one), ``[x1, y1, x2, y2]`` in pixels.
        candidates: other boxes that may be masked in ``random`` (those overlapping evidence are skipped). Draw
            them like the evidence boxes (same kind of object, same size distribution): a mask whose area or
            shape differs between ``neg`` and ``random`` is a shortcut that needs no question.
        num_random: how many candidate boxes ``random`` masks (fewer if fewer qualify).
        non_evidence: the ``non_evidence`` column (regions the grounding reward penalises citing); the
            candidates when not given.

    Returns:
        Rows with ``image`` (a new image per masked variant), ``masked`` (exactly the boxes filled),
        ``evidence``, ``non_evidence`` and the other columns of the text builder.
    """
    from PIL import ImageDraw

    if not evidence:
        raise UsageError("an image example needs at least one evidence box")
    w, h = image.size
    boxes = [[float(v) for v in b] for b in evidence]
    others = [[float(v) for v in c] for c in (candidates if non_evidence is None else non_evidence)]
    for b in [*boxes, *candidates, *others]:
        if len(b) != 4 or not (0 <= b[0] < b[2] <= w and 0 <= b[1] < b[3] <= h):
            raise UsageError(f"box {list(b)} is not [x1, y1, x2, y2] inside the {w}x{h} image")
    free = [[float(v) for v in c] for c in candidates if not any(_overlaps(c, e) for e in boxes)]
    k = min(num_random, len(free))
    chosen = sorted(rng.choice(len(free), size=k, replace=False).tolist()) if k else []
    random_boxes = [free[i] for i in chosen]

    def masked(boxes_to_fill: list[list[float]]) -> Any:
        out = image.copy()
        draw = ImageDraw.Draw(out)
        for x1, y1, x2, y2 in boxes_to_fill:
            # Pillow's rectangle includes its far edge; fill exactly the pixels [x1, x2) × [y1, y2).
            draw.rectangle([int(x1), int(y1), int(x2) - 1, int(y2) - 1], fill=fill)
        return out

    def row(variant: str, img: Any, fills: list[list[float]], solution: str) -> dict[str, Any]:
        return {
            "variant": variant,
            "image": img,
            "question": question,
            "solution": solution,
            "evidence": boxes,
            "non_evidence": [list(c) for c in others],
            "masked": fills,
            "modality": "image",
        }

    return [
        row("pos", image.copy(), [], answer),
        row("neg", masked(boxes), boxes, abstain),
        row("random", masked(random_boxes), random_boxes, answer),
    ]
