"""DeFacto's variant builders (text and image) and the embedded grounded-QA generator."""

from __future__ import annotations

import numpy as np
import pytest

import rlcf
from rlcf.envs.text.grounded_qa import completion_for, generate_examples, grounded_qa_rows
from rlcf.envs.variants import MASK_TEXT, TextExample, build_image_variants, build_text_variants
from rlcf.errors import UsageError


def test_text_variants_mask_evidence_or_only_non_evidence():
    ex = TextExample(("a is 1.", "b is 2.", "c is 3.", "d is 4.", "e is 5."), "what is b?", "2", (1,), uid="doc")
    pos, neg, rnd = build_text_variants(ex, np.random.default_rng(0), random_count=2)
    assert [r["variant"] for r in (pos, neg, rnd)] == ["pos", "neg", "random"]
    assert MASK_TEXT not in pos["document"] and pos["solution"] == "2"
    assert neg["document"].splitlines()[1] == f"2. {MASK_TEXT}" and neg["solution"] == "unknown" and neg["masked"] == [2]
    assert rnd["solution"] == "2" and len(rnd["masked"]) == 2 and 2 not in rnd["masked"]
    lines = rnd["document"].splitlines()
    assert [i + 1 for i, line in enumerate(lines) if MASK_TEXT in line] == rnd["masked"]
    assert all(r["evidence"] == [2] and r["non_evidence"] == [1, 3, 4, 5] for r in (pos, neg, rnd))
    # By default random masks as many segments as neg does: the count of masks is no shortcut.
    _, neg2, rnd2 = build_text_variants(TextExample(ex.segments, ex.question, ex.answer, (1, 3)), np.random.default_rng(1))
    assert len(rnd2["masked"]) == len(neg2["masked"]) == 2 and not set(rnd2["masked"]) & {2, 4}


def test_span_masks_hide_only_the_value():
    from rlcf.envs.text.grounded_qa import GroundedQAConfig

    rows = grounded_qa_rows("train", 20, seed=3, config=GroundedQAConfig(mask_unit="value", facts_per_doc=3, two_fact_share=0.5))
    for pos, neg, rnd in zip(rows[0::3], rows[1::3], rows[2::3]):
        for row in (neg, rnd):
            lines, originals = row["document"].splitlines(), pos["document"].splitlines()
            for i, (line, orig) in enumerate(zip(lines, originals), start=1):
                if i in row["masked"]:  # same subject and attribute, value gone
                    assert line.endswith(f" is {MASK_TEXT}.") and line.rsplit(" is ", 1)[0] == orig.rsplit(" is ", 1)[0]
                else:
                    assert line == orig
        assert neg["masked"] == neg["evidence"] and not set(rnd["masked"]) & set(rnd["evidence"])
    with pytest.raises(UsageError, match="mask_unit"):
        GroundedQAConfig(mask_unit="word")
    with pytest.raises(UsageError, match="span"):
        TextExample(("a is 1.",), "q?", "1", (0,), spans=((5, 99),))


def test_examples_without_evidence_are_refused():
    with pytest.raises(UsageError, match="has no evidence regions"):
        TextExample(("a.",), "q?", "x", (), uid="doc-7")
    with pytest.raises(UsageError, match="outside its 1 segments"):
        TextExample(("a.",), "q?", "x", (3,))


def test_image_variants_mask_exactly_the_reported_boxes():
    from PIL import Image

    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(1, 255, size=(48, 64, 3), dtype=np.uint8))  # no pure-black pixels
    evidence = [[4, 4, 20, 16]]
    candidates = [[10, 10, 30, 30], [40, 2, 60, 20], [30, 30, 50, 46]]  # the first overlaps the evidence
    pos, neg, rnd = build_image_variants(image, evidence, candidates, rng, question="q", answer="a", num_random=2)
    before = np.asarray(image)
    for row in (pos, neg, rnd):
        changed = np.any(np.asarray(row["image"]) != before, axis=-1)
        expected = np.zeros_like(changed)
        for x1, y1, x2, y2 in row["masked"]:
            expected[int(y1) : int(y2), int(x1) : int(x2)] = True
        assert np.array_equal(changed, expected), row["variant"]
    assert neg["masked"] == [[4.0, 4.0, 20.0, 16.0]] and neg["solution"] == "unknown"
    assert len(rnd["masked"]) == 2 and [10.0, 10.0, 30.0, 30.0] not in rnd["masked"]  # never overlapping evidence
    assert pos["masked"] == [] and rnd["solution"] == "a"
    with pytest.raises(UsageError, match="not \\[x1, y1, x2, y2\\] inside the 64x48 image"):
        build_image_variants(image, [[0, 0, 70, 10]], [], rng)


def test_generator_is_reproducible_and_splits_share_no_document():
    a, b = generate_examples("train", 50, seed=3), generate_examples("train", 50, seed=3)
    assert a == b and len({e.uid for e in a}) == 50
    assert generate_examples("train", 50, seed=4) != a
    train = {e.uid for e in generate_examples("train", 2000)}
    evaluation = {e.uid for e in generate_examples("eval", 200)}
    assert not train & evaluation
    with pytest.raises(UsageError, match="unknown split 'test'"):
        generate_examples("test", 1)


def test_generated_rows_score_full_marks_with_their_target_completions():
    rows = grounded_qa_rows("train", 30, seed=1)
    assert len(rows) == 90
    completions = [completion_for(r) for r in rows]
    columns = {k: [r[k] for r in rows] for k in ("variant", "solution", "evidence", "non_evidence")}
    for name in ("format", "answer", "grounding"):
        assert rlcf.get_reward(name)(completions, **columns) == [1.0] * 90, name
    # The question is answerable from the evidence: the answer word is in the evidence fact (one-fact questions).
    for r in rows:
        if r["variant"] == "pos" and r["solution"] not in ("yes", "no"):
            facts = r["document"].splitlines()
            assert any(r["solution"] in facts[i - 1] for i in r["evidence"])


def test_profile_layout_fixes_the_evidence_line_by_attribute():
    from rlcf.envs.text.grounded_qa import ATTRIBUTES, GroundedQAConfig

    cfg = GroundedQAConfig(layout="profile", two_fact_share=0)
    rows = grounded_qa_rows("train", 40, seed=2, config=cfg)
    attrs = list(ATTRIBUTES)
    for pos, neg, rnd in zip(rows[0::3], rows[1::3], rows[2::3]):
        lines = pos["document"].splitlines()
        asked = pos["question"].rstrip("?").rsplit(" ", 1)[1]
        # One person, attributes in the fixed order; the evidence line is the asked attribute's, holding the answer.
        assert [line.split()[2] for line in lines] == attrs and len({line.split()[1] for line in lines}) == 1
        assert pos["evidence"] == [attrs.index(asked) + 1] and lines[attrs.index(asked)].endswith(f" {pos['solution']}.")
        # neg hides that line; random hides another one, so the two differ only in which line is masked.
        assert neg["masked"] == pos["evidence"] and neg["solution"] == "unknown"
        assert len(rnd["masked"]) == 1 and rnd["masked"] != pos["evidence"] and rnd["solution"] == pos["solution"]
    completions = [completion_for(r) for r in rows]
    columns = {k: [r[k] for r in rows] for k in ("variant", "solution", "evidence", "non_evidence")}
    assert rlcf.get_reward("answer")(completions, **columns) == [1.0] * len(rows)
    train = {e.uid for e in generate_examples("train", 1500, config=cfg)}
    assert not train & {e.uid for e in generate_examples("eval", 150, config=cfg)}
    with pytest.raises(UsageError, match="two_fact_share must be 0 with layout 'profile'"):
        GroundedQAConfig(layout="profile")
    with pytest.raises(UsageError, match=r"facts_per_doc must be in \[2, 4\]"):
        GroundedQAConfig(layout="profile", two_fact_share=0, facts_per_doc=5)
    with pytest.raises(UsageError, match="layout must be one of people, profile"):
        GroundedQAConfig(layout="table")
