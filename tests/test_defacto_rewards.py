"""DeFacto's rewards on hand-written completions, the region IoU interface, and the reward framework."""

from __future__ import annotations

import pytest

import rlcf
from rlcf.errors import ConfigError, UnknownNameError
from rlcf.answers import is_abstention, normalize_answer
from rlcf.reward_fns.defacto import (
    IMAGE_TAGS,
    DeFactoTags,
    RewardInputError,
    make_answer_reward,
    make_format_reward,
    make_grounding_reward,
    predicted_regions,
)
from rlcf.reward_fns.regions import Box, IndexSet, Span, matched_iou_score, parse_regions, region_iou, unique_regions
from rlcf.reward_set import RewardFunctionError, RewardSet
from rlcf.testing import check_reward_fn

GOOD = "<evidence>2, 5</evidence><think>Fact 2 gives the city.</think><answer>Paris</answer>"
ABSTAIN = "<evidence>unknown</evidence><think>The facts do not say.</think><answer>unknown</answer>"


def cols(variants, solutions=None, evidence=None, non_evidence=None):
    n = len(variants)
    return {
        "variant": variants,
        "solution": solutions or ["Paris"] * n,
        "evidence": evidence or [[2, 5]] * n,
        "non_evidence": non_evidence or [[1, 3, 4]] * n,
    }


# -- format ------------------------------------------------------------------------------------------------------


def test_format_reward_accepts_only_evidence_think_answer_in_order():
    fmt = rlcf.get_reward("format")
    completions = [
        GOOD,
        "  " + GOOD + "\n",  # surrounding whitespace is fine
        "<think>x</think><evidence>2</evidence><answer>Paris</answer>",  # wrong order
        "<evidence>2</evidence><answer>Paris</answer>",  # no think
        GOOD + " trailing text",  # text after the answer
        "Paris",
    ]
    assert fmt(completions, **cols(["pos"] * 6)) == [1.0, 1.0, 0.0, 0.0, 0.0, 0.0]


def test_format_reward_for_images_needs_a_json_box_list_and_follows_the_modality_column():
    fmt = rlcf.get_reward("format")
    image_ok = "<bbox>[{'Position': [1, 2, 30, 40], 'Confidence': 0.9}]</bbox><think>t</think><answer>a</answer>"
    image_bad = "<bbox>the left corner</bbox><think>t</think><answer>a</answer>"
    values = fmt([image_ok, image_bad, GOOD, image_ok], modality=["image", "image", "image", "text"], **cols(["pos"] * 4))
    assert values == [1.0, 0.0, 0.0, 0.0]  # text tags on an image row and image tags on a text row both fail
    assert make_format_reward(IMAGE_TAGS)([image_ok]) == [1.0]


# -- answer ------------------------------------------------------------------------------------------------------


def test_answer_reward_table():
    answer = rlcf.get_reward("answer")
    wrong = GOOD.replace("Paris", "Lyon")
    values = answer(
        [GOOD, wrong, ABSTAIN, ABSTAIN, GOOD, "<answer> the  PARIS. </answer>", "Paris"],
        **cols(["pos", "pos", "pos", "neg", "neg", "random", "pos"]),
    )
    # pos: right +1, wrong 0, abstain -1; neg: abstain +1, answer -1; random: normalised match +1; no tag 0.
    assert values == [1.0, 0.0, -1.0, 1.0, -1.0, 1.0, 0.0]


def test_split_answer_terms_score_only_their_variant():
    completions = [GOOD, GOOD.replace("Paris", "Lyon"), ABSTAIN, ABSTAIN, GOOD, ABSTAIN]
    columns = cols(["pos", "pos", "pos", "neg", "neg", "random"])
    full = rlcf.get_reward("answer")(completions, **columns)
    parts = {n: rlcf.get_reward(n)(completions, **columns) for n in ("accuracy", "counterfactual", "masked")}
    assert parts["accuracy"] == [1.0, 0.0, -1.0, None, None, None]
    assert parts["counterfactual"] == [None, None, None, 1.0, -1.0, None]
    assert parts["masked"] == [None, None, None, None, None, -1.0]
    # Together they are exactly the answer reward.
    assert [next(p[i] for p in parts.values() if p[i] is not None) for i in range(6)] == full


def test_abstention_is_the_token_as_a_word_inside_answer_only():
    # The reference matched "no" anywhere, so "not"/"know" in the reasoning counted as refusing.
    answer = rlcf.get_reward("answer")
    reasoning_says_no = "<evidence>2</evidence><think>I do not know yet, no wait: it is.</think><answer>Paris</answer>"
    inside_word = "<evidence>2</evidence><think>x</think><answer>unknowns</answer>"
    assert answer([reasoning_says_no, inside_word], **cols(["pos", "neg"])) == [1.0, -1.0]
    assert is_abstention("Unknown.") and not is_abstention("unknowable") and not is_abstention(None)
    assert normalize_answer("The  Eiffel-Tower!") == "eiffeltower"


# -- loopholes closed: one answer, abstention is the answer being one -------------------------------------------

HEDGED_TWICE = "<evidence>2</evidence><think><answer>Paris</answer></think><answer>Rome</answer>"


def test_repeated_or_nested_answers_fail_the_format_and_score_wrong():
    fmt, answer, ground = (rlcf.get_reward(n) for n in ("format", "answer", "grounding"))
    completions = [
        HEDGED_TWICE,  # an answer nested in the reasoning, then another one
        "<evidence>2</evidence><think>t</think><answer>Paris</answer><answer>Rome</answer>",  # two answers
        "<evidence>2</evidence><think>t</think><answer><answer>Paris</answer></answer>",  # nested
        "<evidence>2</evidence><think>t</think><answer>Paris</ANSWER><answer>Rome</answer>",  # a closing in another case
        "<evidence>2</evidence><evidence>5</evidence><think>t</think><answer>Paris</answer>",  # two evidence tags
    ]
    columns = cols(["pos"] * 5)
    # Before, the first scored format 1, answer +1 and grounding +1 against solution Paris.
    assert fmt(completions, **columns) == [0.0] * 5
    assert answer(completions, **columns) == [0.0, 0.0, 0.0, 0.0, 1.0]  # the last has one answer, and it is right
    assert ground(completions, **columns) == [0.0] * 5
    # On neg, a second answer that abstains is no abstention, and a repeated tag escapes no penalty.
    neg = [
        "<evidence>unknown</evidence><think>t</think><answer>Paris</answer><answer>unknown</answer>",
        "<evidence>2</evidence><evidence>unknown</evidence><think>t</think><answer>unknown</answer>",
        ABSTAIN,
    ]
    assert answer(neg, **cols(["neg"] * 3)) == [-1.0, 1.0, 1.0]
    assert ground(neg, **cols(["neg"] * 3)) == [-1.0, -1.0, 1.0]
    assert fmt(neg, **cols(["neg"] * 3)) == [0.0, 0.0, 1.0]


@pytest.mark.parametrize("phrase", ["unknown", "I don't know.", "I do not know", "Cannot be determined", "Not enough information."])
def test_abstention_phrases_abstain_on_neg_and_cost_on_pos(phrase):
    answer = rlcf.get_reward("answer")
    completion = f"<evidence></evidence><think>The fact is masked.</think><answer>{phrase}</answer>"
    assert answer([completion, completion], **cols(["neg", "pos"])) == [1.0, -1.0]
    assert rlcf.get_reward("grounding")([completion], **cols(["neg"])) == [1.0]  # no region cited, and it abstains


def test_neg_grounding_pays_only_an_abstention_the_answer_keeps():
    """An abstaining evidence tag followed by a value earns no grounding on neg: it was the attractor GRPO climbed
    to (evidence `unknown` up to 80% of samples, the answer never abstaining; bench/results/defacto.md, session 18)."""
    ground = rlcf.get_reward("grounding")
    completions = [
        "<evidence>unknown</evidence><think>t</think><answer>Paris</answer>",  # evidence abstains, answer does not
        "<evidence>unknown</evidence><think>t</think><answer>unknown</answer>",  # both abstain
        "<evidence></evidence><think>t</think><answer>Paris</answer>",  # nothing cited, a value answered
        "<evidence>2</evidence><think>t</think><answer>unknown</answer>",  # a fact cited
    ]
    assert ground(completions, **cols(["neg"] * 4)) == [0.0, 1.0, 0.0, -1.0]
    answer = rlcf.get_reward("answer")(completions, **cols(["neg"] * 4))
    assert answer[1] + 1.0 - (answer[0] + 0.0) == 3.0  # the consistent abstention beats the contradiction by 3, not 2


@pytest.mark.parametrize("hedge", ["Paris, or unknown", "unknown, maybe Paris", "I don't know, Paris?", "Paris (cannot be determined)"])
def test_a_hedge_naming_a_value_is_not_an_abstention(hedge):
    answer = rlcf.get_reward("answer")
    completion = f"<evidence></evidence><think>t</think><answer>{hedge}</answer>"
    # Before, "Paris, or unknown" scored +1 on neg. Now: -1 on neg, and wrong (0) rather than abstaining (-1) on pos.
    assert answer([completion, completion], **cols(["neg", "pos"])) == [-1.0, 0.0]
    assert rlcf.get_reward("grounding")([completion], **cols(["neg"])) == [0.0]


def test_the_abstention_phrase_set_is_configurable_and_checked():
    tags = DeFactoTags(abstentions=("no idea", "N/A"))
    answer, ground = make_answer_reward(tags), make_grounding_reward(tags)
    done = ["<evidence></evidence><think>t</think><answer>" + a + "</answer>" for a in ("No idea!", "n/a", "unknown", "I don't know")]
    # The configured phrases and the abstain token abstain; the default phrases are no longer in the set.
    assert answer(done, **cols(["neg"] * 4)) == [1.0, 1.0, 1.0, -1.0]
    assert ground(done, **cols(["neg"] * 4)) == [1.0, 1.0, 1.0, 0.0]
    assert make_answer_reward(DeFactoTags(abstain="n/a", abstentions=()))(done, **cols(["neg"] * 4)) == [-1.0, 1.0, -1.0, -1.0]
    with pytest.raises(ValueError, match=r"abstentions must be a tuple of phrases, got the string 'no idea'; write \('no idea',\)"):
        DeFactoTags(abstentions="no idea")
    with pytest.raises(ValueError, match=r"abstention phrase '\?!' is empty after normalisation"):
        DeFactoTags(abstentions=("no idea", "?!"))


# -- duplicates --------------------------------------------------------------------------------------------------


def test_duplicate_predicted_regions_count_once():
    ground = rlcf.get_reward("grounding")
    box = "<bbox>[[0, 0, 10, 10], [0, 0, 10, 10], {'Position': [0, 0, 10, 10], 'Confidence': 0.2}]</bbox><think>t</think><answer>a</answer>"
    facts = "<evidence>2, 2, 5, 5</evidence><think>t</think><answer>Paris</answer>"
    image = ground([box], modality=["image"], variant=["pos"], evidence=[[[0, 0, 10, 10]]], non_evidence=[[[20, 20, 30, 30]]], solution=["a"])
    # Counted three times the box would score 1/3 (two unmatched extras); counted once it is exactly the evidence.
    assert image == [1.0]
    assert ground([facts], **cols(["pos"])) == [1.0]
    # The first occurrence is kept, with its confidence, as the reference's remove_duplicates does.
    regions = parse_regions([{"Position": [0, 0, 1, 1], "Confidence": 0.3}, [0, 0, 1, 1], [0, 0, 2, 2]])
    assert unique_regions(regions) == [(Box(0, 0, 1, 1), 0.3), (Box(0, 0, 2, 2), 1.0)]
    assert matched_iou_score(regions, [Box(0, 0, 1, 1), Box(0, 0, 2, 2)]) == 1.0


# -- grounding ---------------------------------------------------------------------------------------------------


def test_grounding_reward_on_fact_regions():
    ground = rlcf.get_reward("grounding")
    completions = [
        GOOD,  # exactly the evidence: 1 - 0
        "<evidence>2</evidence><think>t</think><answer>Paris</answer>",  # half the evidence: 1/2
        "<evidence>2, 3</evidence><think>t</think><answer>Paris</answer>",  # 1 of 2 right, 1 on non-evidence
        "<evidence>1, 3, 4</evidence><think>t</think><answer>Paris</answer>",  # only non-evidence: 0 - 1
        "<evidence></evidence><think>t</think><answer>Paris</answer>",  # nothing cited
        ABSTAIN,
        "<evidence>2</evidence><think>t</think><answer>unknown</answer>",
        "<evidence></evidence><think>t</think><answer>Paris</answer>",
    ]
    variants = ["pos", "pos", "pos", "pos", "pos", "neg", "neg", "neg"]
    values = ground(completions, **cols(variants))
    # 2,3 vs evidence {2,5}: 1 match / max(2, 2) = 0.5; vs non-evidence {1,3,4}: 1 / max(3, 2) = 1/3.
    assert values == pytest.approx([1.0, 0.5, 0.5 - 1 / 3, -1.0, 0.0, 1.0, -1.0, 0.0])


def test_grounding_reward_on_boxes_uses_confidence_order_and_the_iou_threshold():
    ground = rlcf.get_reward("grounding")
    evidence = [[[0, 0, 10, 10]]]
    non_evidence = [[[20, 20, 30, 30]]]
    # A box overlapping the evidence with IoU 64/100 (kept, > 0.5) and one on the non-evidence (IoU 1).
    c1 = "<bbox>[[0, 0, 8, 8], [20, 20, 30, 30]]</bbox><think>t</think><answer>a</answer>"
    # IoU 0.25 with the evidence: matched but below the threshold, so it counts 0.
    c2 = "<bbox>[[0, 0, 5, 5]]</bbox><think>t</think><answer>a</answer>"
    # Two predictions for one evidence box: the higher-confidence one takes it, even if worse.
    c3 = ("<bbox>[{'Position': [0, 0, 6, 10], 'Confidence': 0.9}, {'Position': [0, 0, 10, 10], 'Confidence': 0.1}]"
          "</bbox><think>t</think><answer>a</answer>")
    values = ground([c1, c2, c3], modality=["image"] * 3, variant=["pos", "random", "pos"],
                    evidence=evidence * 3, non_evidence=non_evidence * 3, solution=["a"] * 3)
    assert values == pytest.approx([0.64 / 2 - 1 / 2, 0.0, 0.6 / 2])


def test_region_iou_for_every_kind():
    assert region_iou(Box(0, 0, 2, 2), Box(1, 1, 3, 3)) == pytest.approx(1 / 7)
    assert region_iou(Span(0, 10), Span(5, 15)) == pytest.approx(5 / 15)
    assert region_iou(IndexSet(frozenset({1, 2})), IndexSet(frozenset({2, 3}))) == pytest.approx(1 / 3)
    assert region_iou(Box(0, 0, 1, 1), Span(0, 1)) == 0.0
    regions = parse_regions([{"span": [0, 10]}, 3, [[0, 0, 1, 1]][0]])
    assert [type(r) for r, _ in regions] == [Span, IndexSet, Box]
    assert parse_regions([1, 2, 3, 4]) == [(IndexSet(frozenset({i})), 1.0) for i in (1, 2, 3, 4)]  # facts, not a box
    assert matched_iou_score([], [Span(0, 1)]) == 0.0
    with pytest.raises(ValueError, match="x2 >= x1"):
        Box(5, 0, 1, 1)
    assert predicted_regions("not json at all", IMAGE_TAGS) is None


def test_rewards_name_the_missing_column_and_sample():
    ground = rlcf.get_reward("grounding")
    with pytest.raises(RewardInputError, match=r"sample 1: a 'pos' row needs its evidence regions in the 'evidence' column"):
        ground([GOOD, GOOD], variant=["pos", "pos"], evidence=[[2], []], non_evidence=[[1], [1]])
    with pytest.raises(RewardInputError, match=r"sample 0: variant must be one of pos, neg, random, got 'positive'"):
        rlcf.get_reward("answer")([GOOD], variant=["positive"], solution=["Paris"])
    with pytest.raises(RewardInputError, match="needs the dataset column 'variant'"):
        rlcf.get_reward("answer")([GOOD], solution=["Paris"])


@pytest.mark.parametrize("name", ["format", "answer", "grounding", "accuracy", "counterfactual", "masked"])
def test_builtin_rewards_pass_the_protocol_check(name):
    completions = [GOOD, ABSTAIN, GOOD.replace("Paris", "Lyon")]
    check_reward_fn(name, completions, **cols(["pos", "neg", "random"]))


# -- the framework -----------------------------------------------------------------------------------------------


def test_register_and_get_reward_and_weights():
    @rlcf.register_reward("length_penalty_test", help="minus the length in characters / 100")
    def length_penalty(completions, **kwargs):
        return [-len(c) / 100 for c in completions]

    try:
        assert rlcf.get_reward("length_penalty_test") is length_penalty
        rs = RewardSet(["answer", "length_penalty_test"], [2.0, 0.5])
        out = rs(["q", "q"], [GOOD, ABSTAIN], **cols(["pos", "pos"]))
        assert out["answer"] == [1.0, -1.0]
        assert out["total"] == pytest.approx([2.0 - 0.5 * len(GOOD) / 100, -2.0 - 0.5 * len(ABSTAIN) / 100])
        assert [f.__name__ for f in rs.functions] == ["answer", "length_penalty_test"]  # what TRL logs under
    finally:
        rlcf.registry.rewards.unregister("length_penalty_test")


def test_reward_set_errors_are_clear():
    with pytest.raises(ConfigError, match=r"reward_weights.*3 weights for 2 reward functions \(format, answer\)"):
        RewardSet(["format", "answer"], [1.0, 1.0, 1.0])
    with pytest.raises(UnknownNameError, match="Did you mean 'grounding'"):
        RewardSet(["grounding_"])
    with pytest.raises(ConfigError, match="kind=env"):
        RewardSet(["mpe-spread-coverage"])

    def wrong_length(completions, **kwargs):
        return [1.0]

    def not_a_number(completions, **kwargs):
        return ["high" if "Lyon" in c else 1.0 for c in completions]

    def raises_on_one(completions, **kwargs):
        return [1.0 / (len(c) - 5) for c in completions]

    with pytest.raises(RewardFunctionError, match=r"'wrong_length' returned 1 values for 2 completions"):
        RewardSet([wrong_length])(["", ""], ["a", "b"])
    with pytest.raises(RewardFunctionError, match=r"'not_a_number' returned 'high' for sample 1"):
        RewardSet([not_a_number])(["", ""], ["Paris", "Lyon"])
    with pytest.raises(RewardFunctionError, match=r"'raises_on_one' raised on sample 2: ZeroDivisionError"):
        RewardSet([raises_on_one])(["", "", ""], ["abcdefg", "abcdef", "abcde"])
