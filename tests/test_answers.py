"""The shared completion parser (rlcf.answers), and the evaluation reading completions exactly as the rewards do."""

from __future__ import annotations

import pytest

import rlcf
from rlcf.answers import DEFAULT_ABSTENTIONS, abstention_phrases, answer_of, is_abstention, single_tag, tag_count, tag_sequence
from rlcf.eval.llm import evaluate_splits


def test_single_tag_reads_one_answer_and_refuses_repeats_and_nesting():
    assert single_tag("<think>t</think><answer> oslo </answer>", "answer") == " oslo "
    assert single_tag("<think>t</think>", "answer") is None
    assert single_tag("<answer>oslo</answer><answer>rome</answer>", "answer") is None
    assert single_tag("<think><answer>oslo</answer></think><answer>rome</answer>", "answer") is None
    assert single_tag("<answer><answer>oslo</answer></answer>", "answer") is None
    assert single_tag("<answer id=1>oslo</answer><answer>rome</answer>", "answer") is None  # attributes count
    assert single_tag("<Answer>oslo</Answer>", "answer") is None  # one tag, but not the exact form
    assert single_tag("<answer>oslo</answer>", "answers") is None and tag_count("<answers>x</answers>", "answer") == 0
    assert tag_count("<answer>a</answer><ANSWER>b", "answer") == 2
    assert answer_of([{"role": "assistant", "content": "<answer>oslo</answer>"}]) == "oslo"  # TRL's conversational form


def test_tag_sequence_needs_each_tag_once_in_order():
    assert tag_sequence(" <think>a</think>\n<answer>b</answer> ", ("think", "answer")) == ["a", "b"]
    assert tag_sequence("<answer>b</answer><think>a</think>", ("think", "answer")) is None
    assert tag_sequence("<think><answer>x</answer></think><answer>b</answer>", ("think", "answer")) is None
    assert tag_sequence("<think>a</think><answer>b</answer> and more", ("think", "answer")) is None


def test_abstention_is_the_whole_answer_being_a_phrase():
    for phrase in ("unknown", "Unknown.", "I don't know", "i dont know!", "It cannot be determined.", "Not enough information"):
        assert is_abstention(phrase), phrase
    for answer in ("oslo, or unknown", "unknown city", "unknowable", "I know", "", None):
        assert not is_abstention(answer), answer
    assert is_abstention("no idea", ["No idea."]) and not is_abstention("unknown", ["no idea"])
    assert "unknown" in abstention_phrases(DEFAULT_ABSTENTIONS)
    with pytest.raises(ValueError, match="got the string 'unknown'"):
        is_abstention("unknown", "unknown")
    with pytest.raises(ValueError, match="abstention phrases are empty"):
        abstention_phrases([])
    with pytest.raises(ValueError, match="must be strings, got \\[3\\]"):
        abstention_phrases(["unknown", 3])


def test_evaluation_counts_correct_and_abstaining_exactly_as_the_rewards_score():
    completions = [
        "<evidence>2</evidence><think><answer>oslo</answer></think><answer>rome</answer>",  # two answers: wrong
        "<evidence>2</evidence><think>t</think><answer>Oslo.</answer>",  # right
        "<evidence></evidence><think>t</think><answer>oslo, or unknown</answer>",  # a hedge: not an abstention
        "<evidence></evidence><think>t</think><answer>I don't know</answer>",
        "<evidence></evidence><think>t</think><answer>not enough information</answer>",
        "<evidence></evidence><think>t</think><answer>unknown</answer><answer>oslo</answer>",  # two answers: no abstention
    ]
    variants = ["pos", "pos", "neg", "neg", "neg", "neg"]
    rows = [{"prompt": "p", "variant": v, "solution": "oslo" if v == "pos" else "unknown", "evidence": [2], "non_evidence": [1, 3]}
            for v in variants]
    scores = evaluate_splits(None, None, rows, completions=completions)
    assert (scores["pos"].rows, scores["pos"].accuracy, scores["pos"].abstention, scores["pos"].format) == (2, 0.5, 0.0, 0.5)
    assert (scores["neg"].rows, scores["neg"].accuracy, scores["neg"].abstention) == (4, 0.5, 0.5)
    # Row by row: the evaluation's abstention is the answer reward's +1 on neg.
    columns = {k: [r[k] for r in rows] for k in ("variant", "solution", "evidence", "non_evidence")}
    neg_answer = rlcf.get_reward("answer")(completions, **{**columns, "variant": ["neg"] * len(rows)})
    assert [v == 1.0 for v in neg_answer] == [is_abstention(answer_of(c)) for c in completions] == [False, False, False, True, True, False]
    # A custom phrase set changes what the evaluation counts.
    assert evaluate_splits(None, None, rows, completions=completions, abstentions=["unknown"])["neg"].abstention == 0.0
