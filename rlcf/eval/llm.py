"""Evaluation of a language model on DeFacto-style splits: per variant (pos / neg / random) the answer
accuracy, abstention rate, grounding score and format rate, from greedy generations.

- accuracy: share of rows whose answer reward is +1 (on ``neg`` that means it abstained);
- abstention: share of rows whose ``<answer>`` holds the abstention token;
- grounding: mean grounding reward (matched IoU on evidence minus on non-evidence; on ``neg`` ±1);
- format: share of rows in the expected tag format.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["PairScores", "SplitScores", "evaluate_pairs", "evaluate_splits", "format_split_table", "generate", "plot_reward_curves"]


@dataclass(frozen=True)
class SplitScores:
    split: str
    rows: int
    accuracy: float
    abstention: float
    grounding: float
    format: float

    def as_dict(self) -> dict[str, float]:
        return {"accuracy": self.accuracy, "abstention": self.abstention, "grounding": self.grounding, "format": self.format}


def generate(
    model: Any, tokenizer: Any, prompts: Sequence[Any], max_new_tokens: int, batch_size: int = 64, images: Sequence[Any] | None = None
) -> list[str]:
    """Greedy completions (left padding), decoded without special tokens.

    Plain-text ``prompts`` go through ``tokenizer``; with ``images`` (one per prompt), ``tokenizer`` is a
    vision-language processor and each prompt a conversation that its chat template renders.
    """
    import torch

    text_tok = getattr(tokenizer, "tokenizer", tokenizer)
    side = text_tok.padding_side
    text_tok.padding_side = "left"
    out: list[str] = []
    was_training = model.training
    model.eval()
    try:
        for start in range(0, len(prompts), batch_size):
            chunk = list(prompts[start : start + batch_size])
            if images is None:
                enc = tokenizer(chunk, return_tensors="pt", padding=True)
            else:
                texts = [tokenizer.apply_chat_template(p, add_generation_prompt=True, tokenize=False) for p in chunk]
                enc = tokenizer(text=texts, images=list(images[start : start + batch_size]), return_tensors="pt", padding=True)
            enc = enc.to(model.device)
            with torch.no_grad():
                ids = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=text_tok.pad_token_id)
            out += text_tok.batch_decode(ids[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)
    finally:
        text_tok.padding_side = side
        model.train(was_training)
    return out


def evaluate_splits(model: Any, tokenizer: Any, rows: Sequence[dict[str, Any]], max_new_tokens: int = 48) -> dict[str, SplitScores]:
    """Scores per variant of ``rows`` (each with ``prompt`` and the DeFacto reward columns; with an ``image``
    column, ``tokenizer`` is the vision-language model's processor)."""
    from rlcf.reward_fns.defacto import abstains, completion_text, tag_content
    from rlcf.reward_set import get_reward

    images = [r["image"] for r in rows] if rows and "image" in rows[0] else None
    completions = generate(model, tokenizer, [r["prompt"] for r in rows], max_new_tokens, images=images)
    columns = {k: [r.get(k) for r in rows] for k in ("variant", "solution", "evidence", "non_evidence", "modality")}
    answer = np.asarray(get_reward("answer")(completions, **columns))
    grounding = np.asarray(get_reward("grounding")(completions, **columns))
    fmt = np.asarray(get_reward("format")(completions, **columns))
    abstained = np.asarray([abstains(tag_content(completion_text(c), "answer")) for c in completions])
    variants = np.asarray(columns["variant"])
    out = {}
    for split in ("pos", "neg", "random"):
        m = variants == split
        if m.any():
            out[split] = SplitScores(
                split, int(m.sum()), float((answer[m] == 1).mean()), float(abstained[m].mean()), float(grounding[m].mean()), float(fmt[m].mean())
            )
    return out


@dataclass(frozen=True)
class PairScores:
    """Scores of one side of paired data (``real`` | ``cf``) or of whole pairs (``pair``: both sides right)."""

    split: str
    rows: int
    accuracy: float
    format: float

    def as_dict(self) -> dict[str, float]:
        return {"accuracy": self.accuracy, "format": self.format}


def evaluate_pairs(model: Any, tokenizer: Any, rows: Sequence[dict[str, Any]], max_new_tokens: int = 24) -> dict[str, PairScores]:
    """Greedy answers on paired rows laid out ``[real, cf, …]`` (:func:`rlcf.envs.paired.pair_rows`): accuracy
    (the ``choice`` reward) and format rate per side, and strict pair accuracy (both sides right), the paper's metric."""
    from rlcf.reward_set import get_reward

    completions = generate(model, tokenizer, [r["prompt"] for r in rows], max_new_tokens)
    columns = {k: [r.get(k) for r in rows] for k in ("solution", "options")}
    right = np.asarray(get_reward("choice")(completions, **columns)) == 1
    fmt = np.asarray(get_reward("think_answer_format")(completions)) == 1
    sides = np.asarray([r["side"] for r in rows])
    out = {s: PairScores(s, int((sides == s).sum()), float(right[sides == s].mean()), float(fmt[sides == s].mean())) for s in ("real", "cf")}
    out["pair"] = PairScores("pair", len(rows) // 2, float((right[0::2] & right[1::2]).mean()), float((fmt[0::2] & fmt[1::2]).mean()))
    return out


_PERCENT = {"accuracy", "abstention", "format"}


def format_split_table(results: dict[str, dict[str, Any]]) -> str:
    """A text table: one row per (model, split); columns are the scores' fields (DeFacto's splits, DNA's pairs)."""
    keys: list[str] = []
    for per_split in results.values():
        for s in per_split.values():
            keys += [k for k in s.as_dict() if k not in keys]
    width = {k: max(9, len(k) + 1) for k in keys}
    lines = [f"{'model':14s} {'split':7s} {'rows':>5s} " + " ".join(f"{k:>{width[k]}s}" for k in keys)]
    for name, per_split in results.items():
        for split, s in per_split.items():
            d = s.as_dict()
            cells = []
            for k in keys:
                if k not in d:
                    cells.append(f"{'':>{width[k]}s}")
                elif k in _PERCENT:
                    cells.append(f"{100 * d[k]:{width[k] - 1}.1f}%")
                else:
                    cells.append(f"{d[k]:{width[k]}.3f}")
            lines.append(f"{name:14s} {split:7s} {s.rows:5d} " + " ".join(cells))
    return "\n".join(lines)


def plot_reward_curves(run_folders: Sequence[Any], path: Any) -> None:
    """A PNG of every ``rewards/<name>/mean`` curve logged in the runs' metrics.jsonl, one panel per reward."""
    import json
    from pathlib import Path

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from rlcf.atomic import atomic_write

    curves: dict[str, dict[str, tuple[list[int], list[float]]]] = {}
    for folder in run_folders:
        for line in (Path(folder) / "metrics.jsonl").read_text().splitlines():
            row = json.loads(line)
            for key, value in row.items():
                if key.startswith("rewards/") and key.endswith("/mean") and value is not None:
                    xs, ys = curves.setdefault(key.split("/")[1], {}).setdefault(Path(folder).name, ([], []))
                    xs.append(row["step"])
                    ys.append(value)
    names = sorted(curves) or ["(no reward logged)"]
    fig, axes = plt.subplots(1, len(names), figsize=(4 * len(names), 3), squeeze=False)
    for ax, name in zip(axes[0], names):
        for run, (xs, ys) in curves.get(name, {}).items():
            ax.plot(xs, ys, label=run)
        ax.set_title(name)
        ax.set_xlabel("GRPO step")
    axes[0][0].set_ylabel("mean reward")
    if curves:
        axes[0][-1].legend(fontsize=6)
    fig.tight_layout()
    with atomic_write(path) as f:
        fig.savefig(f, format="png", dpi=100)
    plt.close(fig)
