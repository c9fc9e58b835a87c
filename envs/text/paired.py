"""Paired rows for DNA-Train: a real input and its counterfactual edit, with the same question and options but
a different correct answer.

:func:`pair_rows` turns any dataset with paired rows (a pair id, a side, a shared question and options, a
per-side answer) into the trainer's layout — real then counterfactual, pair after pair — and refuses what the
trainer cannot use: unpaired rows, a side given twice, sides with different questions or options, an answer
outside the options, or sides with the same answer (then the pair teaches nothing the real row does not).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rlcf.errors import UsageError

__all__ = ["SIDES", "pair_rows"]

SIDES = ("real", "cf")


def pair_rows(
    rows: Sequence[dict[str, Any]],
    *,
    pair_key: str = "pair_id",
    side_key: str = "side",
    question_key: str = "question",
    options_key: str | None = "options",
    answer_key: str = "solution",
    where: str = "dataset",
) -> list[dict[str, Any]]:
    """Rows reordered ``[real_0, cf_0, real_1, cf_1, …]`` (pairs in order of first appearance), validated.

    Each returned row keeps its columns and has ``pair_id`` and ``side`` (``real`` | ``cf``) set from
    ``pair_key`` / ``side_key``. Raises :class:`~rlcf.errors.UsageError` naming the pair and the fix.
    """
    pairs: dict[Any, dict[str, dict[str, Any]]] = {}
    for i, row in enumerate(rows):
        for key in (pair_key, side_key, question_key, answer_key):
            if row.get(key) in (None, ""):
                raise UsageError(f"{where} row {i} has no '{key}'; paired rows need {pair_key}, {side_key}, {question_key}, {answer_key}" + (f", {options_key}" if options_key else ""))
        side = row[side_key]
        if side not in SIDES:
            raise UsageError(f"{where} row {i}: {side_key} must be one of {', '.join(SIDES)}, got {side!r}")
        sides = pairs.setdefault(row[pair_key], {})
        if side in sides:
            raise UsageError(f"{where}: pair {row[pair_key]!r} has two '{side}' rows (row {i} repeats it); each pair has exactly one real and one cf row")
        sides[side] = {**row, "pair_id": row[pair_key], "side": side}
    out: list[dict[str, Any]] = []
    for pid, sides in pairs.items():
        missing = [s for s in SIDES if s not in sides]
        if missing:
            raise UsageError(f"{where}: pair {pid!r} is unpaired (no '{missing[0]}' row); every pair needs a real and a cf row — drop it or add its other side")
        real, cf = sides["real"], sides["cf"]
        if real[question_key] != cf[question_key]:
            raise UsageError(f"{where}: pair {pid!r} has different questions on its sides ({real[question_key]!r} vs {cf[question_key]!r}); a pair shares its question")
        if options_key is not None:
            if list(real.get(options_key) or []) != list(cf.get(options_key) or []):
                raise UsageError(f"{where}: pair {pid!r} has different options on its sides ({real.get(options_key)!r} vs {cf.get(options_key)!r}); a pair shares its options, in the same order")
            for row in (real, cf):
                if row.get(options_key) and row[answer_key] not in row[options_key]:
                    raise UsageError(f"{where}: pair {pid!r}, side {row['side']}: answer {row[answer_key]!r} is not one of its options {row[options_key]}")
        if real[answer_key] == cf[answer_key]:
            raise UsageError(f"{where}: pair {pid!r} has the same answer ({real[answer_key]!r}) on both sides; the counterfactual must change the correct answer")
        out += [real, cf]
    return out
