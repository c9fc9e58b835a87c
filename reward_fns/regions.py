"""Regions behind one IoU interface: image boxes, text character spans and index sets (facts, sentences).

DeFacto's grounding reward matches the regions a model cites against the evidence regions of the example. The
same matching works for every modality once a region knows its IoU with another region of its kind:

- :class:`Box` ``[x1, y1, x2, y2]`` (pixels; area IoU),
- :class:`Span` ``(start, end)`` (half-open character offsets; length IoU),
- :class:`IndexSet` ``{i, j, …}`` (fact or sentence numbers; Jaccard).

:func:`parse_region` turns the JSON-friendly forms that travel in dataset columns into these: a list of four
numbers is a box, ``{"span": [s, e]}`` a span, ``{"ids": [...]}`` or a bare integer an index set, and
``{"Position": [...], "Confidence": c}`` (DeFacto's output format) a box with a confidence.
:func:`matched_iou_score` is the reference's greedy one-to-one matching.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Union

__all__ = ["Box", "IndexSet", "Region", "Span", "match_threshold", "matched_iou_score", "parse_region", "parse_regions", "region_iou", "unique_regions"]

match_threshold = 0.5  # a predicted region counts for a ground-truth region only above this IoU (reference: 0.5)


@dataclass(frozen=True)
class Box:
    x1: float
    y1: float
    x2: float
    y2: float

    def __post_init__(self) -> None:
        if not (self.x2 >= self.x1 and self.y2 >= self.y1):
            raise ValueError(f"box {self.as_list()} needs x2 >= x1 and y2 >= y1")

    def as_list(self) -> list[float]:
        return [self.x1, self.y1, self.x2, self.y2]

    @property
    def area(self) -> float:
        return (self.x2 - self.x1) * (self.y2 - self.y1)


@dataclass(frozen=True)
class Span:
    start: int
    end: int  # exclusive

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError(f"span ({self.start}, {self.end}) needs end >= start")


@dataclass(frozen=True)
class IndexSet:
    ids: frozenset[int]


Region = Union[Box, Span, IndexSet]


def region_iou(a: Region, b: Region) -> float:
    """Intersection over union of two regions of the same kind (0 for different kinds or empty unions)."""
    if isinstance(a, Box) and isinstance(b, Box):
        w = min(a.x2, b.x2) - max(a.x1, b.x1)
        h = min(a.y2, b.y2) - max(a.y1, b.y1)
        inter = max(w, 0.0) * max(h, 0.0)
        union = a.area + b.area - inter
    elif isinstance(a, Span) and isinstance(b, Span):
        inter = max(min(a.end, b.end) - max(a.start, b.start), 0)
        union = (a.end - a.start) + (b.end - b.start) - inter
    elif isinstance(a, IndexSet) and isinstance(b, IndexSet):
        inter, union = len(a.ids & b.ids), len(a.ids | b.ids)
    else:
        return 0.0
    return float(inter / union) if union > 0 else 0.0


def parse_region(obj: Any) -> tuple[Region, float]:
    """A region and its confidence (1.0 unless given) from a column / completion value; ``ValueError`` if not one."""
    if isinstance(obj, (Box, Span, IndexSet)):
        return obj, 1.0
    if isinstance(obj, dict):
        confidence = float(obj.get("Confidence", obj.get("confidence", 1.0)))
        if "Position" in obj or "position" in obj or "box" in obj:
            return parse_region(obj.get("Position", obj.get("position", obj.get("box"))))[0], confidence
        if "span" in obj:
            start, end = obj["span"]
            return Span(int(start), int(end)), confidence
        if "ids" in obj:
            return IndexSet(frozenset(int(i) for i in obj["ids"])), confidence
        raise ValueError(f"region dict needs 'Position'/'box', 'span' or 'ids', got keys {sorted(obj)}")
    if isinstance(obj, bool):
        raise ValueError(f"not a region: {obj!r}")
    if isinstance(obj, int):
        return IndexSet(frozenset([obj])), 1.0
    if isinstance(obj, (set, frozenset)):
        return IndexSet(frozenset(int(i) for i in obj)), 1.0
    if isinstance(obj, Sequence) and not isinstance(obj, str) and len(obj) == 4 and all(isinstance(v, (int, float)) for v in obj):
        return Box(*(float(v) for v in obj)), 1.0
    raise ValueError(f"not a region: {obj!r} (boxes are [x1, y1, x2, y2], spans {{'span': [s, e]}}, facts integers)")


def parse_regions(values: Any) -> list[tuple[Region, float]]:
    """A list of regions (see :func:`parse_region`); ``None`` or an empty list gives ``[]``. A flat list of
    integers is a list of index regions (``[2, 5]``: facts 2 and 5); boxes are always nested (``[[x1, y1, x2, y2]]``)."""
    if values is None:
        return []
    if isinstance(values, (dict, int, Box, Span, IndexSet)):
        values = [values]  # a single region
    if isinstance(values, str) or not isinstance(values, Sequence):
        raise ValueError(f"regions must be a list, got {values!r}")
    return [parse_region(v) for v in values]


def unique_regions(predicted: Sequence[tuple[Region, float]]) -> list[tuple[Region, float]]:
    """``predicted`` without repeats of a region, each kept at its first occurrence (with that confidence), as the
    reference removes duplicate boxes before matching: a repeated region would otherwise count as an extra,
    unmatched prediction in :func:`matched_iou_score`."""
    seen: set[Region] = set()
    out = []
    for region, confidence in predicted:
        if region not in seen:
            seen.add(region)
            out.append((region, confidence))
    return out


def matched_iou_score(predicted: Sequence[tuple[Region, float]], truth: Sequence[Region], threshold: float = match_threshold) -> float:
    """Greedy one-to-one matching, highest confidence first: each prediction is matched to the unmatched
    ground-truth region it overlaps most, and the match counts its IoU only above ``threshold`` (a prediction
    overlapping no free region matches nothing). Duplicate predictions count once (:func:`unique_regions`).
    Score = Σ counted IoU / max(#truth, #predicted) — missed evidence and extra regions both cost. 0 if both empty."""
    predicted = unique_regions(predicted)
    if not predicted or not truth:
        return 0.0
    free = list(range(len(truth)))
    total = 0.0
    for region, _ in sorted(predicted, key=lambda rc: -rc[1]):
        if not free:
            break
        ious = [region_iou(region, truth[j]) for j in free]
        best = max(range(len(free)), key=ious.__getitem__)
        if ious[best] <= 0.0:
            continue  # overlaps no free region: matches nothing (rather than taking the first one, order-dependently)
        if ious[best] > threshold:
            total += ious[best]
        free.pop(best)  # matched either way; only an IoU above the threshold counts
    return total / max(len(truth), len(predicted))
