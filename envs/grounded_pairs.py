"""The embedded paired task for DNA-Train: grounded-QA documents with *edits*.

Every person has a "usual" value per attribute (:func:`usual_value`, fixed for the library: the miniature of
common sense). A real document states the asked person's fact, which follows the usual value in a share
``usual_share`` of documents; its counterfactual twin is the same document with that one fact edited to another
value — the correct option changes, the question and the options do not (a video that defies common sense, in
miniature). A model trained on real documents alone can answer from the prior without reading; on the edit it
answers the unedited, tempting option.

Multiple choice with shared options, as in the paper: the prompt lists the options, the completion is
``<think>fact k says so.</think><answer>value</answer>``. Rows carry ``pair_id``, ``side`` (``real`` | ``cf``),
``question``, ``options``, ``solution``, ``evidence`` (the fact number), ``document`` and ``prompt``. Train and
eval are split by the hash of the real document, so they never share one.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from rlcf.envs.grounded_qa import ATTRIBUTES, NAMES, SPLIT_SEEDS
from rlcf.envs.variants import render_segments

__all__ = ["GroundedPairsConfig", "completion_for", "grounded_pair_rows", "prompt_for", "usual_value"]


@dataclass(frozen=True)
class GroundedPairsConfig:
    """Shape of the paired task."""

    facts_per_doc: int = 3
    num_options: int = 4
    usual_share: float = 0.9  # real documents whose asked fact follows the person's usual value

    def __post_init__(self) -> None:
        from rlcf.errors import UsageError

        if self.facts_per_doc < 2:
            raise UsageError(f"facts_per_doc must be >= 2 (the evidence and a distractor), got {self.facts_per_doc}")
        smallest = min(len(v) for v in ATTRIBUTES.values())
        if not 2 <= self.num_options <= smallest:
            raise UsageError(f"num_options must be in [2, {smallest}], got {self.num_options}")
        if not 0.0 <= self.usual_share <= 1.0:
            raise UsageError(f"usual_share must be in [0, 1], got {self.usual_share}")


def usual_value(name: str, attribute: str) -> str:
    """The person's usual value of ``attribute`` (a fixed hash: the same in every run and every split)."""
    values = ATTRIBUTES[attribute]
    return values[int(hashlib.sha1(f"{name}/{attribute}".encode()).hexdigest()[:8], 16) % len(values)]


def prompt_for(row: dict[str, Any]) -> str:
    return f"question: {row['question']}\noptions: {', '.join(row['options'])}\nfacts:\n{row['document']}\n"


def completion_for(row: dict[str, Any]) -> str:
    cited = ", ".join(str(i) for i in row["evidence"])
    return f"<think>fact {cited} says so.</think><answer>{row['solution']}</answer>"


def _pair(rng: np.random.Generator, cfg: GroundedPairsConfig) -> tuple[list[str], list[str], str, list[str], str, str, int]:
    attrs = list(ATTRIBUTES)
    name = str(rng.choice(NAMES))
    attribute = str(rng.choice(attrs))
    values = ATTRIBUTES[attribute]
    usual = usual_value(name, attribute)
    real_value = usual if rng.random() < cfg.usual_share else str(rng.choice([v for v in values if v != usual]))
    edit = str(rng.choice([v for v in values if v != real_value]))
    others = [p for p in NAMES if p != name]
    facts = [(name, attribute, real_value)]
    while len(facts) < cfg.facts_per_doc:
        person = str(rng.choice(others))
        attr = attribute if rng.random() < 0.5 else str(rng.choice(attrs))
        if any(f[0] == person and f[1] == attr for f in facts):
            continue
        facts.append((person, attr, str(rng.choice(ATTRIBUTES[attr]))))
    order = rng.permutation(len(facts))
    pos = int(np.flatnonzero(order == 0)[0])
    real = [f"{p}'s {a} is {v}." for p, a, v in (facts[i] for i in order)]
    cf = list(real)
    cf[pos] = f"{name}'s {attribute} is {edit}."
    distractor_values = [v for v in values if v not in (real_value, edit)]
    options = [real_value, edit, *rng.choice(distractor_values, size=cfg.num_options - 2, replace=False).tolist()]
    options = [str(options[i]) for i in rng.permutation(len(options))]
    return real, cf, f"what is {name}'s {attribute}?", options, real_value, edit, pos + 1


def grounded_pair_rows(split: str, pairs: int, seed: int = 0, config: GroundedPairsConfig | None = None, sides: tuple[str, ...] = ("real", "cf")) -> list[dict[str, Any]]:
    """``pairs`` distinct pairs of ``split`` as rows ``[real, cf, real, cf, …]`` (only ``sides`` kept)."""
    from rlcf.errors import UsageError

    if split not in SPLIT_SEEDS:
        raise UsageError(f"unknown split '{split}'. Valid splits: {', '.join(SPLIT_SEEDS)}")
    cfg = config or GroundedPairsConfig()
    rng = np.random.default_rng([SPLIT_SEEDS[split], seed, 23])
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    for _ in range(200 * pairs + 1000):
        real, cf, question, options, real_answer, cf_answer, evidence = _pair(rng, cfg)
        uid = hashlib.sha1(("\n".join(real) + question).encode()).hexdigest()[:16]
        in_eval = int(uid[:8], 16) % 10 == 0
        if in_eval != (split == "eval") or uid in seen:
            continue
        seen.add(uid)
        for side, segments, answer in (("real", real, real_answer), ("cf", cf, cf_answer)):
            if side not in sides:
                continue
            row = {"pair_id": uid, "side": side, "question": question, "options": options, "solution": answer,
                   "evidence": [evidence], "document": render_segments(segments)}
            row["prompt"] = prompt_for(row)
            rows.append(row)
        if len(seen) == pairs:
            return rows
    raise UsageError(f"could only draw {len(seen)} distinct '{split}' pairs of {pairs}; lower the count")
