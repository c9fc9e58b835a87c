"""The embedded paired task for DNA-Train: grounded-QA documents with *edits*.

Every person has a "usual" value per attribute (:func:`usual_value`, fixed for the library: the miniature of
common sense). A real document states the asked person's fact, which follows the usual value in a share
``usual_share`` of documents; its counterfactual twin is the same document with that one fact edited to another
value — the correct option changes, the question and the options do not (a video that defies common sense, in
miniature). A model trained on real documents alone can answer from the prior without reading; on the edit it
answers the unedited, tempting option.

``layout`` chooses how a document reads, as in :mod:`rlcf.envs.text.grounded_qa`. ``people`` (above) mixes facts about
several people, so reading means matching the asked name against every fact (content-based recall, which a
from-scratch tiny model does not learn on 2 CPU cores). ``profile`` lists one person's attributes in the fixed
order of ``ATTRIBUTES``; the question asks one attribute, whose line follows the person's usual value in a share
``usual_share`` of real documents (the other lines are drawn uniformly), and the counterfactual edits that line.
Reading is then positional (the tiny model learns it), while the prior still answers every real row it follows and
none of the edits.

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

from rlcf.envs.text.grounded_qa import ATTRIBUTES, LAYOUTS, NAMES, SPLIT_SEEDS
from rlcf.envs.variants import render_segments
from rlcf.registry import tasks

__all__ = ["GroundedPairsConfig", "completion_for", "grounded_pair_rows", "prompt_for", "usual_value"]


@dataclass(frozen=True)
class GroundedPairsConfig:
    """Shape of the paired task."""

    facts_per_doc: int = 3
    num_options: int = 4
    usual_share: float = 0.9  # real documents whose asked fact follows the person's usual value
    layout: str = "people"  # "people": facts about several people, shuffled; "profile": one person's attributes in order

    def __post_init__(self) -> None:
        from rlcf.errors import UsageError

        if self.layout not in LAYOUTS:
            raise UsageError(f"layout must be one of {', '.join(LAYOUTS)}, got {self.layout!r}")
        if self.layout == "profile" and not 2 <= self.facts_per_doc <= len(ATTRIBUTES):
            raise UsageError(
                f"facts_per_doc must be in [2, {len(ATTRIBUTES)}] with layout 'profile' (one fact per attribute: {', '.join(ATTRIBUTES)}), "
                f"got {self.facts_per_doc}"
            )
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


def _options(rng: np.random.Generator, cfg: GroundedPairsConfig, values: tuple[str, ...], real_value: str, edit: str) -> list[str]:
    distractor_values = [v for v in values if v not in (real_value, edit)]
    options = [real_value, edit, *rng.choice(distractor_values, size=cfg.num_options - 2, replace=False).tolist()]
    return [str(options[i]) for i in rng.permutation(len(options))]


def _profile_pair(rng: np.random.Generator, cfg: GroundedPairsConfig) -> tuple[list[str], list[str], str, list[str], str, str, int]:
    """One person's attributes in the fixed order; the asked line follows the usual value in ``usual_share`` of
    real documents, the other lines are drawn uniformly (so documents do not repeat)."""
    name = str(rng.choice(NAMES))
    attrs = list(ATTRIBUTES)[: cfg.facts_per_doc]
    asked = int(rng.integers(len(attrs)))
    attribute = attrs[asked]
    usual = usual_value(name, attribute)
    values = [str(rng.choice(ATTRIBUTES[a])) for a in attrs]
    values[asked] = usual if rng.random() < cfg.usual_share else str(rng.choice([v for v in ATTRIBUTES[attribute] if v != usual]))
    real_value = values[asked]
    edit = str(rng.choice([v for v in ATTRIBUTES[attribute] if v != real_value]))
    real = [f"{name}'s {a} is {v}." for a, v in zip(attrs, values)]
    cf = list(real)
    cf[asked] = f"{name}'s {attribute} is {edit}."
    options = _options(rng, cfg, ATTRIBUTES[attribute], real_value, edit)
    return real, cf, f"what is {name}'s {attribute}?", options, real_value, edit, asked + 1


def _pair(rng: np.random.Generator, cfg: GroundedPairsConfig) -> tuple[list[str], list[str], str, list[str], str, str, int]:
    if cfg.layout == "profile":
        return _profile_pair(rng, cfg)
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
    options = _options(rng, cfg, values, real_value, edit)
    return real, cf, f"what is {name}'s {attribute}?", options, real_value, edit, pos + 1


@tasks.register("grounded_pairs", help="DNA-Train task: (real, cf) pairs of documents, questions and options")
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
