"""The embedded image task for DeFacto's vision-language path: synthetic pictures, no download.

A ``size × size`` picture (default 56 px, a 2 × 2 grid of cells) has a noisy gray background and two to four
coloured squares, each inside its own cell. The question names a cell: ``"What color is the square in the top
left cell?"``; the answer is the square's colour, and the evidence is the square's box. The other cells are the
non-evidence regions, and :func:`rlcf.envs.variants.build_image_variants` gives the three variants:

- ``pos``: the picture as drawn;
- ``neg``: the evidence square filled black (the cell looks empty): the expected answer is the abstention token;
- ``random``: another square filled black, exactly its box: the answer must not change.

``neg`` and ``random`` both black out one square of the picture, drawn alike, so without the question the two
pictures have the same distribution: mask area, shape, position and the number of squares left tell them apart
no better than chance. Only the question does, which is what the ``random`` variant is for. (Filling a whole
28 × 28 cell in ``random`` and only the square in ``neg`` let mask area alone separate them on every row.)

Pictures are partitioned between ``train`` and ``eval`` by the hash of their pixels and question (as the text
task's documents are by their text), so the two splits never share an example whatever the seeds and counts.
Rows carry a conversational ``prompt`` (an image part and a text part) and the ``image`` column, which is what
TRL's ``GRPOTrainer`` feeds a vision-language model's processor.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from rlcf.envs.variants import build_image_variants

__all__ = ["CELLS", "COLORS", "IMAGE_ABSTAIN_REASON", "IMAGE_EMPTY", "IMAGE_NOTICED_REASON", "GroundedImageConfig", "grounded_image_rows", "image_completion_for", "image_prompt_for"]

COLORS = {
    "red": (220, 40, 40),
    "green": (40, 180, 60),
    "blue": (50, 80, 220),
    "yellow": (230, 210, 40),
    "white": (245, 245, 245),
    "purple": (150, 60, 190),
}
CELLS = ("top left", "top right", "bottom left", "bottom right")
_SPLIT_STREAMS = {"train": 0, "eval": 1_000_003}


@dataclass(frozen=True)
class GroundedImageConfig:
    """Shape of the generated pictures."""

    size: int = 56  # pixels per side; a multiple of 28 suits Qwen2-VL's 14-px patches merged 2 × 2
    min_squares: int = 2  # at least 2: ``random`` masks a square other than the asked one
    max_squares: int = 4  # at most one per cell
    abstain: str = "unknown"

    def __post_init__(self) -> None:
        from rlcf.errors import UsageError

        if not 2 <= self.min_squares <= self.max_squares <= len(CELLS):
            raise UsageError(
                f"squares per picture must satisfy 2 <= min_squares <= max_squares <= {len(CELLS)}, got min_squares={self.min_squares}, "
                f"max_squares={self.max_squares}: the 'random' variant masks a square other than the asked one, and each cell holds one"
            )


#: The reasoning of an abstention's completion (``neg``: the asked square is masked).
IMAGE_ABSTAIN_REASON = "the cell is empty."
#: What a completion reads in a masked square it cites and notices (``image_completion_for(row, reads=IMAGE_EMPTY)``).
IMAGE_EMPTY = "empty"
#: The reasoning of that late abstention: the masked square cited, then read as empty where a colour would be read.
IMAGE_NOTICED_REASON = f"the square is {IMAGE_EMPTY}."


def image_prompt_for(question: str) -> list[dict[str, Any]]:
    """The conversational prompt of a row: the picture, then the question."""
    return [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]}]


def image_completion_for(row: dict[str, Any], abstain: str = "unknown", reads: str | None = None) -> str:
    """The completion a row expects: the evidence box as JSON, a short reasoning, the answer (or abstention).

    ``reads`` overrides what the completion reads in the evidence square, whichever the variant: a colour (on a
    ``neg`` row, a made-up answer that cites the masked square) or :data:`IMAGE_EMPTY` (the masked square cited,
    noticed as empty, then the abstention)."""
    if reads is None and row["variant"] == "neg":
        return f"<bbox>[]</bbox><think>{IMAGE_ABSTAIN_REASON}</think><answer>{abstain}</answer>"
    box = json.dumps([[int(v) for v in b] for b in row["evidence"]])
    seen = row["solution"] if reads is None else reads
    return f"<bbox>{box}</bbox><think>the square is {seen}.</think><answer>{abstain if seen == IMAGE_EMPTY else seen}</answer>"


def _cell_box(cell: int, size: int) -> list[float]:
    half = size // 2
    x, y = (cell % 2) * half, (cell // 2) * half
    return [float(x), float(y), float(x + half), float(y + half)]


def _picture(rng: np.random.Generator, cfg: GroundedImageConfig) -> tuple[np.ndarray, dict[int, tuple[str, list[float]]]]:
    """Pixels ``[size, size, 3]`` and the squares: cell → (colour name, box)."""
    size, half = cfg.size, cfg.size // 2
    pixels = rng.integers(90, 140, size=(size, size, 3), dtype=np.uint8)  # noisy gray, never black or a palette colour
    count = int(rng.integers(cfg.min_squares, cfg.max_squares + 1))
    cells = rng.choice(len(CELLS), size=count, replace=False)
    colors = rng.choice(len(COLORS), size=count, replace=False)
    squares: dict[int, tuple[str, list[float]]] = {}
    for cell, color in zip(cells.tolist(), colors.tolist()):
        name = list(COLORS)[color]
        side = int(rng.integers(half // 2, half - 3))
        x0, y0 = (cell % 2) * half, (cell // 2) * half
        x1 = x0 + int(rng.integers(1, half - side))
        y1 = y0 + int(rng.integers(1, half - side))
        pixels[y1 : y1 + side, x1 : x1 + side] = COLORS[name]
        squares[cell] = (name, [float(x1), float(y1), float(x1 + side), float(y1 + side)])
    return pixels, squares


def _split_of(pixels: np.ndarray, question: str) -> str:
    digest = hashlib.sha1(pixels.tobytes() + question.encode()).hexdigest()
    return "eval" if int(digest[:8], 16) % 10 == 0 else "train"


def grounded_image_rows(split: str, count: int, seed: int = 0, config: GroundedImageConfig | None = None) -> list[dict[str, Any]]:
    """``3·count`` rows (pos, neg, random per picture) with ``prompt``, ``image``, the picture's ``uid`` and the
    reward columns."""
    from PIL import Image

    from rlcf.errors import UsageError

    if split not in _SPLIT_STREAMS:
        raise UsageError(f"unknown split '{split}'. Valid splits: {', '.join(_SPLIT_STREAMS)}")
    cfg = config or GroundedImageConfig()
    if cfg.size % 2 or cfg.size < 28:
        raise UsageError(f"image size must be even and at least 28 px, got {cfg.size}")
    rng = np.random.default_rng([_SPLIT_STREAMS[split], seed])
    rows: list[dict[str, Any]] = []
    for _ in range(200 * count + 1000):
        pixels, squares = _picture(rng, cfg)
        cell = int(rng.choice(sorted(squares)))
        question = f"What color is the square in the {CELLS[cell]} cell?"
        if _split_of(pixels, question) != split:
            continue
        color, box = squares[cell]
        other_cells = [_cell_box(c, cfg.size) for c in range(len(CELLS)) if c != cell]
        # random masks another square, drawn like the evidence square, so that mask size and shape are no shortcut.
        distractors = [squares[c][1] for c in sorted(squares) if c != cell]
        variants = build_image_variants(
            Image.fromarray(pixels), [box], distractors, rng, question=question, answer=color, abstain=cfg.abstain, non_evidence=other_cells
        )
        uid = f"{split}-{seed}-{len(rows) // 3}"  # the picture: its variants share it (batch_by_example groups by it)
        for row in variants:
            row["prompt"] = image_prompt_for(question)
            row["uid"] = uid
            rows.append(row)
        if len(rows) == 3 * count:
            return rows
    raise UsageError(f"could only draw {len(rows) // 3} '{split}' pictures of {count}")
