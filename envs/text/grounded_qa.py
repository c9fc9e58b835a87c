"""The embedded grounded-QA task: short documents of numbered facts, a question answerable from one or two of
them, evidence = those facts. No download; seeds make it reproducible; train and eval never share documents.

A document lists ``facts_per_doc`` facts ``"<name>'s <attribute> is <value>."`` about a few people. Questions:

- one fact (default 80%): ``"What is <name>'s <attribute>?"`` → the value; evidence = that fact;
- two facts: ``"Do <a> and <b> have the same <attribute>?"`` → ``yes`` / ``no``; evidence = both facts.

Distractor facts are about other people, often with the asked attribute, so the answer must be read from the
fact that names the asked person. ``mask_unit`` says what a mask hides: the whole fact (``fact``: under ``neg``
the asked person is absent from the document) or only its value (``value``: ``"alex's city is [masked]."`` —
the fact is still there, its evidence is not, as when DeFacto blacks out an image region). Either way the model
must learn to answer ``neg`` with the abstention token.

``layout`` chooses how a document is laid out. ``people`` (above) mixes facts about several people in a random
order, so finding the evidence means matching the asked name against every fact: content-based recall, which a
tiny model trained for minutes on 2 CPU cores does not learn (``bench/results/defacto.md`` measures this).
``profile`` lists one person's attributes in a fixed order (city, color, pet, job), one fact per line, and asks
about one of them: the evidence line follows from the asked attribute, the asked value occurs once, and
``neg`` (that line masked) differs from ``random`` (another line masked) only in *which* line is hidden — the
counterfactual distinction DeFacto trains, on a reading step the tiny model learns. Profiles ask one-fact questions. :func:`grounded_qa_rows` turns documents into DeFacto's three variants (:mod:`rlcf.envs.variants`) with a
``prompt`` column; :func:`completion_for` writes the target completion a row expects (used for SFT data).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from rlcf.envs.variants import TextExample, build_text_variants
from rlcf.registry import tasks

__all__ = [
    "ATTRIBUTES",
    "GroundedQAConfig",
    "LAYOUTS",
    "NAMES",
    "SPLIT_SEEDS",
    "completion_for",
    "generate_examples",
    "grounded_qa_rows",
    "prompt_for",
    "vocabulary",
]

NAMES = (
    "alex", "bea", "cai", "dana", "eli", "fay", "gus", "hana", "ivo", "jun", "kim", "lea", "max", "nia", "otto",
    "pia", "quin", "rex", "sol", "tess", "uma", "val", "wes", "xia", "yan", "zoe",
)
ATTRIBUTES = {
    "city": ("oslo", "lima", "rome", "kyiv", "doha", "baku", "riga", "bern", "quito", "accra"),
    "color": ("red", "blue", "green", "pink", "gray", "gold", "teal", "plum"),
    "pet": ("cat", "dog", "owl", "fox", "yak", "eel", "ant", "bee"),
    "job": ("cook", "pilot", "nurse", "baker", "judge", "poet", "smith", "tailor"),
}
LAYOUTS = ("people", "profile")
SPLIT_SEEDS = {"train": 0, "eval": 1_000_003}  # separate streams; documents are also de-duplicated across splits


@dataclass(frozen=True)
class GroundedQAConfig:
    """Shape of the generated task."""

    facts_per_doc: int = 4
    two_fact_share: float = 0.2
    random_count: int | None = None  # facts the ``random`` variant masks (default: as many as ``neg`` masks)
    abstain: str = "unknown"
    mask_unit: str = "fact"  # "fact": a mask replaces the whole fact; "value": only its value ("alex's city is [masked].")
    layout: str = "people"  # "people": facts about several people, shuffled; "profile": one person's attributes in fixed order

    def __post_init__(self) -> None:
        from rlcf.errors import UsageError

        if self.mask_unit not in ("fact", "value"):
            raise UsageError(f"mask_unit must be 'fact' or 'value', got {self.mask_unit!r}")
        if self.layout not in LAYOUTS:
            raise UsageError(f"layout must be one of {', '.join(LAYOUTS)}, got {self.layout!r}")
        if self.layout == "profile":
            if not 2 <= self.facts_per_doc <= len(ATTRIBUTES):
                raise UsageError(
                    f"facts_per_doc must be in [2, {len(ATTRIBUTES)}] with layout 'profile' (one fact per attribute: "
                    f"{', '.join(ATTRIBUTES)}), got {self.facts_per_doc}"
                )
            if self.two_fact_share > 0:
                raise UsageError("two_fact_share must be 0 with layout 'profile' (a profile asks one-fact questions); set two_fact_share: 0")


def _fact(name: str, attribute: str, value: str) -> str:
    return f"{name}'s {attribute} is {value}."


def _document_key(segments: tuple[str, ...]) -> str:
    return hashlib.sha1("\n".join(segments).encode()).hexdigest()[:16]


def _value_spans(segments: tuple[str, ...], values: list[str]) -> tuple[tuple[int, int], ...]:
    """The value's characters in each fact: after "<name>'s <attribute> is ", before the final "."."""
    return tuple((len(seg) - 1 - len(value), len(seg) - 1) for seg, value in zip(segments, values))


def _profile(rng: np.random.Generator, cfg: GroundedQAConfig) -> TextExample:
    """One person's attributes in the fixed order of ``ATTRIBUTES``; the question asks one of them."""
    person = str(rng.choice(NAMES))
    attrs = list(ATTRIBUTES)[: cfg.facts_per_doc]
    values = [str(rng.choice(ATTRIBUTES[a])) for a in attrs]
    asked = int(rng.integers(len(attrs)))
    segments = tuple(_fact(person, a, v) for a, v in zip(attrs, values))
    spans = _value_spans(segments, values) if cfg.mask_unit == "value" else None
    question = f"what is {person}'s {attrs[asked]}?"
    return TextExample(segments, question, values[asked], (asked,), uid=_document_key(segments), spans=spans)


def _one(rng: np.random.Generator, cfg: GroundedQAConfig) -> TextExample:
    if cfg.layout == "profile":
        return _profile(rng, cfg)
    n = cfg.facts_per_doc
    attrs = list(ATTRIBUTES)
    two = n >= 2 and rng.random() < cfg.two_fact_share
    people = [str(p) for p in rng.choice(NAMES, size=2, replace=False)]
    asked_attr = str(rng.choice(attrs))
    facts: list[tuple[str, str, str]] = []
    if two:
        a, b = people[0], people[1]
        va = str(rng.choice(ATTRIBUTES[asked_attr]))
        vb = va if rng.random() < 0.5 else str(rng.choice([v for v in ATTRIBUTES[asked_attr] if v != va]))
        facts += [(a, asked_attr, va), (b, asked_attr, vb)]
        question, answer = f"do {a} and {b} have the same {asked_attr}?", "yes" if va == vb else "no"
    else:
        a = people[0]
        va = str(rng.choice(ATTRIBUTES[asked_attr]))
        facts.append((a, asked_attr, va))
        question, answer = f"what is {a}'s {asked_attr}?", va
    n_evidence = len(facts)
    asked_people = {f[0] for f in facts}
    others = [p for p in NAMES if p not in asked_people]
    while len(facts) < n:  # distractors: about other people, often the asked attribute (the value must be read
        # from the fact naming the asked person; with the evidence masked, that person is absent from the document)
        person = str(rng.choice(others))
        attribute = asked_attr if rng.random() < 0.5 else str(rng.choice(attrs))
        if any(f[0] == person and f[1] == attribute for f in facts):
            continue
        facts.append((person, attribute, str(rng.choice(ATTRIBUTES[attribute]))))
    order = rng.permutation(n)
    segments = tuple(_fact(*facts[i]) for i in order)
    evidence = tuple(int(np.flatnonzero(order == j)[0]) for j in range(n_evidence))
    spans = _value_spans(segments, [facts[i][2] for i in order]) if cfg.mask_unit == "value" else None
    return TextExample(segments, question, answer, evidence, uid=_document_key(segments), spans=spans)


def _split_of(uid: str) -> str:
    """Documents are partitioned by content hash: one in ten belongs to eval, so the splits cannot share one."""
    return "eval" if int(uid[:8], 16) % 10 == 0 else "train"


def generate_examples(split: str, count: int, seed: int = 0, config: GroundedQAConfig | None = None) -> list[TextExample]:
    """``count`` distinct examples of ``split`` (``train`` | ``eval``); the same arguments give the same examples.

    Every document belongs to exactly one split by the hash of its text (:func:`_split_of`), so eval documents
    never occur in train, whatever the seeds and counts; each split draws from its own random stream.
    """
    from rlcf.errors import UsageError

    if split not in SPLIT_SEEDS:
        raise UsageError(f"unknown split '{split}'. Valid splits: {', '.join(SPLIT_SEEDS)}")
    cfg = config or GroundedQAConfig()
    rng = np.random.default_rng([SPLIT_SEEDS[split], seed])
    out: list[TextExample] = []
    seen: set[str] = set()
    for _ in range(200 * count + 1000):
        example = _one(rng, cfg)
        if _split_of(example.uid) != split or example.uid in seen:
            continue
        seen.add(example.uid)
        out.append(example)
        if len(out) == count:
            return out
    raise UsageError(f"could only draw {len(out)} distinct '{split}' documents of {count}; lower the count or raise facts_per_doc")


def prompt_for(row: dict[str, Any]) -> str:
    """The plain-text prompt of a variant row (a base LM continues it with the completion). The question comes
    first so that a small causal model reads every fact already knowing what it looks for."""
    return f"question: {row['question']}\nfacts:\n{row['document']}\n"


def completion_for(row: dict[str, Any], abstain: str = "unknown") -> str:
    """The completion a row expects: evidence fact numbers, a short reasoning, the answer (or abstention)."""
    if row["variant"] == "neg":
        return f"<evidence>{abstain}</evidence><think>the needed fact is masked.</think><answer>{abstain}</answer>"
    cited = ", ".join(str(i) for i in row["evidence"])
    return f"<evidence>{cited}</evidence><think>fact {cited} answers it.</think><answer>{row['solution']}</answer>"


@tasks.register("grounded_qa", help="DeFacto text task: pos / neg / random rows of generated fact documents")
def grounded_qa_rows(split: str, count: int, seed: int = 0, config: GroundedQAConfig | None = None) -> list[dict[str, Any]]:
    """``3·count`` rows (pos, neg, random per document) with ``prompt`` and the reward columns."""
    cfg = config or GroundedQAConfig()
    rng = np.random.default_rng([SPLIT_SEEDS[split], seed, 7])
    rows = []
    for example in generate_examples(split, count, seed, cfg):
        for row in build_text_variants(example, rng, abstain=cfg.abstain, random_count=cfg.random_count):
            row["prompt"] = prompt_for(row)
            rows.append(row)
    return rows


def vocabulary() -> list[str]:
    """Every word the task can produce (names, attributes, values, template words), for a word-level tokenizer."""
    words = {*NAMES, *ATTRIBUTES, *(v for vs in ATTRIBUTES.values() for v in vs)}
    words |= {"what", "is", "do", "and", "have", "the", "same", "yes", "no", "facts", "question", "fact", "answers",
              "it", "needed", "masked", "unknown", "'s"}
    return sorted(words)
