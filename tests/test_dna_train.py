"""DNA-Train: the pair-wise ℓ1 advantage normalization (closed form, hand-computed cases, degenerate groups),
the pair samplers, the paired-data builder and its errors, the rewards, and the trainer end to end."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from rlcf.algorithm import train
from rlcf.algos.dna_train import (
    BalancedSideSampler,
    PairRepeatSampler,
    compute_advantages,
    group_advantages,
    pair_l1_normalize,
)
from rlcf.envs.text.grounded_pairs import GroundedPairsConfig, completion_for, grounded_pair_rows, usual_value
from rlcf.envs.text.paired import pair_rows
from rlcf.errors import ConfigError, UsageError

TINY = [
    "config.tiny.hidden_size=32",
    "config.tiny.layers=1",
    "config.tiny.intermediate_size=64",
    "config.sft_pairs=40",
    "config.sft_epochs=1",
    "config.train_pairs=12",
    "config.eval_pairs=6",
    "config.pairs_per_step=2",
    "config.num_generations=2",
    "config.max_completion_length=12",
    "config.eval_max_new_tokens=12",
]


def binary_group(correct: int, g: int) -> list[float]:
    return [1.0] * correct + [0.0] * (g - correct)


def mean_abs(x: torch.Tensor) -> float:
    return float(x.abs().mean())


# ---------------------------------------------------------------------------------------------------- the formula


@pytest.mark.parametrize("g", [4, 8, 16])
def test_closed_form_binary_rewards(g):
    """Binary rewards at group accuracy p: S = mean |Â| = 2·sqrt(p(1−p)) (population std), and after
    normalization both sides of the pair carry S_target = (S_real + S_cf) / 2."""
    for k_real in range(1, g):
        for k_cf in range(1, g):
            p, q = k_real / g, k_cf / g
            rewards = torch.tensor(binary_group(k_real, g) + binary_group(k_cf, g))
            base, _ = group_advantages(rewards, g)
            assert mean_abs(base[0]) == pytest.approx(2 * math.sqrt(p * (1 - p)), rel=1e-3)
            assert mean_abs(base[1]) == pytest.approx(2 * math.sqrt(q * (1 - q)), rel=1e-3)
            adv, stats = pair_l1_normalize(rewards, g, "adjacent")
            target = math.sqrt(p * (1 - p)) + math.sqrt(q * (1 - q))
            assert mean_abs(adv[:g]) == pytest.approx(target, rel=1e-3)
            assert mean_abs(adv[g:]) == pytest.approx(target, rel=1e-3)
            assert float(stats["S_real"][0]) == pytest.approx(2 * math.sqrt(p * (1 - p)), rel=1e-3)
            # the rescaling keeps each group's signs and its zero mean
            assert torch.equal(torch.sign(adv), torch.sign(torch.cat([base[0], base[1]])))
            assert float(adv[:g].sum()) == pytest.approx(0.0, abs=1e-5)


def test_hand_computed_pair():
    # real: 1 of 4 right. mean 0.25, population std sqrt(0.1875) = 0.4330127.
    # Â_real = [0.75, -0.25, -0.25, -0.25] / (0.4330127 + 1e-4); S_real = 1.5 / 4 / 0.4331127 = 0.8658.
    # cf: 2 of 4 right. std 0.5; Â_cf = [0.5, 0.5, -0.5, -0.5] / 0.5001; S_cf = 0.49990 / 0.5 ... = 0.99980.
    adv, stats = pair_l1_normalize(torch.tensor([1.0, 0, 0, 0, 1, 1, 0, 0]), 4, "adjacent")
    s_real, s_cf = 0.375 / 0.4331127, 0.5 / 0.5001
    target = (s_real + s_cf) / 2
    expected_real = np.array([0.75, -0.25, -0.25, -0.25]) / 0.4331127 * target / s_real
    expected_cf = np.array([0.5, 0.5, -0.5, -0.5]) / 0.5001 * target / s_cf
    np.testing.assert_allclose(adv.numpy(), np.concatenate([expected_real, expected_cf]), rtol=1e-5)
    assert float(stats["alpha_real"][0]) == pytest.approx(target / s_real, rel=1e-5)
    assert float(stats["alpha_cf"][0]) == pytest.approx(target / s_cf, rel=1e-5)
    assert float(stats["alpha_real"][0]) > 1 > float(stats["alpha_cf"][0])  # the easier-to-separate side is boosted


def test_non_binary_rewards_and_several_pairs_each_balanced():
    rng = np.random.default_rng(0)
    rewards = torch.tensor(rng.normal(size=6 * 5).round(2), dtype=torch.float32)  # 3 pairs of groups of 5
    adv, stats = pair_l1_normalize(rewards, 5, "adjacent")
    groups = adv.view(6, 5)
    for k in range(3):
        assert mean_abs(groups[2 * k]) == pytest.approx(mean_abs(groups[2 * k + 1]), rel=1e-5)
        assert mean_abs(groups[2 * k]) == pytest.approx(float(stats["S_real"][k] + stats["S_cf"][k]) / 2, rel=1e-5)
    assert not stats["degenerate"].any()


def test_explicit_layout_pairs_any_two_groups():
    rewards = torch.tensor(binary_group(1, 4) + binary_group(3, 4) + binary_group(2, 4) + binary_group(2, 4))
    # pair (group 0 real, group 2 cf) and (group 3 real, group 1 cf)
    adv, stats = pair_l1_normalize(rewards, 4, [[0, 2], [3, 1]])
    g = adv.view(4, 4)
    assert mean_abs(g[0]) == pytest.approx(mean_abs(g[2]), rel=1e-5)
    assert mean_abs(g[3]) == pytest.approx(mean_abs(g[1]), rel=1e-5)
    with pytest.raises(UsageError, match="exactly once"):
        pair_l1_normalize(rewards, 4, [[0, 2], [2, 1]])
    with pytest.raises(UsageError, match=r"\(pairs, 2\)"):
        pair_l1_normalize(rewards, 4, [0, 1, 2, 3])


def test_odd_number_of_groups_is_refused():
    with pytest.raises(UsageError, match="odd number of groups"):
        pair_l1_normalize(torch.zeros(12), 4, "adjacent")


@pytest.mark.parametrize("rule, live_scale", [("keep", 1.0), ("halve", 0.5), ("drop", 0.0)])
def test_degenerate_groups(rule, live_scale):
    # real side all right (S = 0, dead), cf side live.
    rewards = torch.tensor(binary_group(4, 4) + binary_group(1, 4))
    base, _ = group_advantages(rewards, 4)
    adv, stats = pair_l1_normalize(rewards, 4, "adjacent", degenerate=rule)
    assert torch.count_nonzero(adv[:4]) == 0  # the dead group never pulls
    np.testing.assert_allclose(adv[4:].numpy(), live_scale * base[1].numpy(), rtol=1e-6)
    assert bool(stats["degenerate"][0]) and float(stats["alpha_cf"][0]) == live_scale and float(stats["alpha_real"][0]) == 0.0
    # both sides dead: all zero, no NaN
    adv, stats = pair_l1_normalize(torch.ones(8), 4, "adjacent", degenerate=rule)
    assert torch.count_nonzero(adv) == 0 and not torch.isnan(adv).any()
    with pytest.raises(UsageError, match="keep, halve, drop"):
        pair_l1_normalize(rewards, 4, "adjacent", degenerate="ignore")


def test_unscorable_completions_are_left_out():
    rewards = torch.tensor([1.0, 0.0, float("nan"), 0.0, 1.0, 1.0, 0.0, 0.0])
    adv, stats = pair_l1_normalize(rewards, 4, "adjacent")
    assert float(adv[2]) == 0.0 and not torch.isnan(adv).any()
    # the real group is scored over its 3 scorable rows: p = 1/3
    assert float(stats["S_real"][0]) == pytest.approx(2 * math.sqrt(1 / 3 * 2 / 3), rel=1e-3)
    assert mean_abs(adv[[0, 1, 3]]) == pytest.approx(mean_abs(adv[4:]), rel=1e-5)


def test_group_and_none_baselines():
    rewards = torch.tensor(binary_group(1, 4) + binary_group(2, 4))
    group, _ = compute_advantages(rewards, 4, "group")
    base, _ = group_advantages(rewards, 4)
    assert torch.allclose(group, base.reshape(-1))
    none, _ = compute_advantages(rewards, 4, "none")
    assert torch.allclose(none, torch.tensor([0.75, -0.25, -0.25, -0.25, 0.5, 0.5, -0.5, -0.5]))
    with pytest.raises(UsageError, match="pair_l1, group, none"):
        compute_advantages(rewards, 4, "batch")


# ---------------------------------------------------------------------------------------------------- samplers


def test_pair_repeat_sampler_keeps_both_groups_of_a_pair_in_one_batch():
    g, per_batch = 3, 4  # 4 prompts = 2 pairs per generation batch
    sampler = PairRepeatSampler(num_rows=10, num_generations=g, prompts_per_batch=per_batch, repeat_count=2, seed=1)
    order = list(sampler)
    assert len(order) == len(sampler) == (10 // per_batch) * per_batch * g * 2
    batches = [order[i : i + per_batch * g] for i in range(0, len(order), per_batch * g)]
    seen_pairs = set()
    for batch in batches:
        groups = [batch[i : i + g] for i in range(0, len(batch), g)]
        assert all(len(set(grp)) == 1 for grp in groups)  # a group repeats one prompt
        heads = [grp[0] for grp in groups]
        for real, cf in zip(heads[0::2], heads[1::2]):
            assert real % 2 == 0 and cf == real + 1  # the real group, then its cf group
            seen_pairs.add(real // 2)
    assert batches[0] == batches[1]  # repeat_count reuses a generation batch
    assert len(seen_pairs) == 4  # 5 pairs, 2 whole batches of 2 pairs; the incomplete one is dropped
    with pytest.raises(UsageError, match="splits a pair"):
        PairRepeatSampler(num_rows=10, num_generations=g, prompts_per_batch=3)
    with pytest.raises(UsageError, match="odd number"):
        PairRepeatSampler(num_rows=9, num_generations=g, prompts_per_batch=2)


def test_balanced_sampler_gives_half_real_half_cf_batches():
    sides = ["real", "cf"] * 20 + ["real"] * 6
    sampler = BalancedSideSampler(sides, seed=0)
    first, second = list(sampler), list(sampler)
    assert first != second  # reshuffled every pass
    cf = {i for i, s in enumerate(sides) if s == "cf"}
    for order in (first, second):
        assert len(order) == len(sampler) == 40 == len(set(order))
        assert set(order) & cf == cf  # every cf row each pass; as many of the 26 real rows
        for batch in (order[i : i + 8] for i in range(0, len(order), 8)):
            assert [sides[i] for i in batch].count("real") == 4


# ---------------------------------------------------------------------------------------------------- data


def test_embedded_pairs_edit_only_the_evidence_and_share_question_and_options():
    rows = grounded_pair_rows("train", 40, seed=2)
    assert len(pair_rows(rows)) == 80
    usual = 0
    for real, cf in zip(rows[0::2], rows[1::2]):
        assert (real["side"], cf["side"]) == ("real", "cf") and real["pair_id"] == cf["pair_id"]
        assert real["question"] == cf["question"] and real["options"] == cf["options"]
        assert real["solution"] != cf["solution"] and {real["solution"], cf["solution"]} <= set(real["options"])
        lines_r, lines_c = real["document"].splitlines(), cf["document"].splitlines()
        diff = [i + 1 for i, (a, b) in enumerate(zip(lines_r, lines_c)) if a != b]
        assert diff == real["evidence"] == cf["evidence"]
        assert lines_c[diff[0] - 1].endswith(f" is {cf['solution']}.")
        name, attr = real["question"].removeprefix("what is ").removesuffix("?").split("'s ")
        usual += real["solution"] == usual_value(name, attr)
        assert completion_for(cf).endswith(f"<answer>{cf['solution']}</answer>")
    assert usual >= 30  # the tempting prior: most real documents follow the usual value
    eval_ids = {r["pair_id"] for r in grounded_pair_rows("eval", 40, seed=2)}
    assert not eval_ids & {r["pair_id"] for r in grounded_pair_rows("train", 400, seed=2)}
    with pytest.raises(UsageError, match="num_options"):
        GroundedPairsConfig(num_options=12)


def test_pair_rows_refuses_bad_pairs():
    real = {"pair_id": "p", "side": "real", "question": "q?", "options": ["a", "b"], "solution": "a"}
    cf = {**real, "side": "cf", "solution": "b"}
    other = {**real, "pair_id": "z"}
    ordered = pair_rows([cf, other, real, {**other, "side": "cf", "solution": "b"}])  # pairs by first appearance
    assert [(r["pair_id"], r["side"]) for r in ordered] == [("p", "real"), ("p", "cf"), ("z", "real"), ("z", "cf")]
    with pytest.raises(UsageError, match="'p' is unpaired"):
        pair_rows([real])
    with pytest.raises(UsageError, match="different questions"):
        pair_rows([real, {**cf, "question": "other?"}])
    with pytest.raises(UsageError, match="different options"):
        pair_rows([real, {**cf, "options": ["b", "a"]}])
    with pytest.raises(UsageError, match="same answer"):
        pair_rows([real, {**cf, "solution": "a"}])
    with pytest.raises(UsageError, match="two 'real' rows"):
        pair_rows([real, real])
    with pytest.raises(UsageError, match="not one of its options"):
        pair_rows([real, {**cf, "solution": "c"}])
    with pytest.raises(UsageError, match="has no 'side'"):
        pair_rows([{k: v for k, v in real.items() if k != "side"}])


def test_dna_rewards_on_hand_written_completions():
    from rlcf.reward_set import get_reward

    choice, fmt = get_reward("choice"), get_reward("think_answer_format")
    completions = [
        "<think>fact 2 says so.</think><answer>dog</answer>",
        "<think>fact 2 says so.</think><answer>Dog.</answer>",  # normalised match
        "<think>x</think><answer>cat</answer>",  # wrong option
        "<answer>dog</answer>",  # right, bad format
        "<think>x</think><answer>wolf</answer>",  # not an option
        "dog",  # no answer tag
    ]
    kwargs = {"solution": ["dog"] * 6, "options": [["cat", "dog", "wolf2"]] * 6}
    assert choice(completions, **kwargs) == [1.0, 1.0, 0.0, 1.0, 0.0, 0.0]
    assert fmt(completions) == [1.0, 1.0, 1.0, 0.0, 1.0, 0.0]


def test_dna_rewards_refuse_repeated_answers_and_missing_solutions():
    from rlcf.reward_fns.defacto import RewardInputError
    from rlcf.reward_set import get_reward

    choice, fmt = get_reward("choice"), get_reward("think_answer_format")
    completions = [
        "<think><answer>dog</answer></think><answer>cat</answer>",  # an answer nested in the reasoning, then another
        "<think>x</think><answer>dog</answer><answer>cat</answer>",  # two answers
        "<think>x</think><answer><answer>dog</answer></answer>",  # nested answers
        "<think>x</think><Answer>cat</Answer><answer>dog</answer>",  # a second answer in another case
        "<think>x</think><answer>dog</answer>",
    ]
    kwargs = {"solution": ["dog"] * 5, "options": [["cat", "dog"]] * 5}
    assert choice(completions, **kwargs) == [0.0, 0.0, 0.0, 0.0, 1.0]
    assert fmt(completions) == [0.0, 0.0, 0.0, 0.0, 1.0]
    # A row without its solution is an error naming the sample, as for DeFacto's answer reward (it used to score 0).
    with pytest.raises(RewardInputError, match=r"reward 'choice', sample 1: the row has no answer in the 'solution' column"):
        choice(completions[:2], solution=["dog", None])


def test_completions_table_logs_the_advantages_the_loss_uses(tmp_path):
    """TRL logs its own (group-scaled) advantages for the completions table; DNA-Train replaces them with its own."""
    from datasets import Dataset
    from trl import GRPOConfig

    from rlcf.algos.dna_train import DNAGRPOTrainer
    from rlcf.algos.llm_common import TinyLMConfig, build_tiny_lm, load_model

    torch.set_num_threads(1)
    rows = grounded_pair_rows("train", 4, seed=0)
    path = build_tiny_lm(tmp_path / "m", [r["prompt"] + completion_for(r) for r in rows], TinyLMConfig(hidden_size=32, layers=1, intermediate_size=64))
    model, tok = load_model(path)
    args = GRPOConfig(output_dir=str(tmp_path / "o"), per_device_train_batch_size=4, num_generations=2, max_steps=1, max_completion_length=4,
                      use_cpu=True, bf16=False, report_to="none", remove_unused_columns=False, logging_steps=1, save_strategy="no")

    def second_of_group_scores_3(completions, **kwargs):  # every group's rewards are [0, 3]
        return [3.0 * (i % 2) for i in range(len(completions))]

    trainer = DNAGRPOTrainer(model=model, reward_funcs=[second_of_group_scores_3], args=args, train_dataset=Dataset.from_list(rows),
                             processing_class=tok, advantage="none")
    trainer.train()
    # advantage: none is r - mean = [-1.5, 1.5] per group; TRL's own, scaled by the group's std, are [-0.71, 0.71].
    assert list(trainer._logs["advantages"]) == pytest.approx([-1.5, 1.5, -1.5, 1.5])
    assert list(trainer._logs["rewards"]["second_of_group_scores_3"]) == [0.0, 3.0, 0.0, 3.0]


# ---------------------------------------------------------------------------------------------------- trainer


def test_concat_pairs_pads_prompts_left_and_completions_right():
    from rlcf.algos.dna_train import _concat_pairs

    a = {"prompt_ids": torch.tensor([[5, 6]] * 4), "prompt_mask": torch.ones(4, 2, dtype=torch.long),
         "completion_ids": torch.tensor([[7]] * 4), "completion_mask": torch.ones(4, 1, dtype=torch.long), "advantages": torch.zeros(4),
         "num_items_in_batch": torch.tensor(4), "num_images": None}
    b = {"prompt_ids": torch.tensor([[1, 2, 3]] * 4), "prompt_mask": torch.ones(4, 3, dtype=torch.long),
         "completion_ids": torch.tensor([[8, 9]] * 4), "completion_mask": torch.ones(4, 2, dtype=torch.long), "advantages": torch.ones(4),
         "num_items_in_batch": torch.tensor(8), "num_images": None}
    out = _concat_pairs([(a, [0]), (b, [0])], num_generations=2, pad_token_id=0)  # one pair = 4 rows from each
    assert out["prompt_ids"][0].tolist() == [0, 5, 6] and out["prompt_mask"][0].tolist() == [0, 1, 1]  # left
    assert out["completion_ids"][0].tolist() == [7, 0] and out["completion_mask"][0].tolist() == [1, 0]  # right
    assert out["prompt_ids"][4].tolist() == [1, 2, 3] and out["advantages"].tolist() == [0.0] * 4 + [1.0] * 4
    assert "num_items_in_batch" not in out  # the caller recounts it
    with pytest.raises(UsageError, match="text-only"):
        _concat_pairs([({**a, "pixel_values_list": [1]}, [0])], num_generations=2, pad_token_id=0)


def test_dynamic_sampling_refills_the_batch_with_pairs_that_have_no_dead_side(tmp_path):
    """DAPO's dynamic sampling per pair: a reward that is constant on half the pairs (a dead side) leaves, without
    it, dead pairs in most batches; with it every batch the loss sees is live, and the completions table still
    logs one advantage per generated completion (0 for those left out)."""
    from datasets import Dataset
    from trl import GRPOConfig

    from rlcf.algos.dna_train import DNAGRPOTrainer
    from rlcf.algos.llm_common import TinyLMConfig, build_tiny_lm, load_model

    torch.set_num_threads(1)
    rows = pair_rows(grounded_pair_rows("train", 12, seed=0))
    live_ids = {r["pair_id"] for r in rows[0::4]}  # every other pair is live

    def live_on_half_the_pairs(completions, pair_id, **kwargs):  # a live group scores [0, 3], a dead one [1, 1]
        return [3.0 * (i % 2) if pid in live_ids else 1.0 for i, pid in enumerate(pair_id)]

    def run(dynamic: bool):
        path = build_tiny_lm(tmp_path / f"m{dynamic}", [r["prompt"] + completion_for(r) for r in rows], TinyLMConfig(hidden_size=32, layers=1, intermediate_size=64))
        model, tok = load_model(path)
        args = GRPOConfig(output_dir=str(tmp_path / f"o{dynamic}"), per_device_train_batch_size=8, num_generations=2, max_steps=4,
                          max_completion_length=4, use_cpu=True, bf16=False, report_to="none", remove_unused_columns=False,
                          logging_steps=1, save_strategy="no", seed=3)
        trainer = DNAGRPOTrainer(model=model, reward_funcs=[live_on_half_the_pairs], args=args, train_dataset=Dataset.from_list(rows),
                                 processing_class=tok, advantage="none", dynamic_sampling=dynamic, dynamic_max_rounds=8)
        trainer.train()
        return trainer, [h for h in trainer.state.log_history if "dna/degenerate_pairs" in h]

    plain, plain_logs = run(False)
    assert max(h["dna/degenerate_pairs"] for h in plain_logs) > 0  # without it, dead pairs reach the loss
    dyn, logs = run(True)
    assert len(logs) == 4 and all(h["dna/degenerate_pairs"] == 0 for h in logs)
    assert min(h["dna/first_draw_live_pairs"] for h in logs) < 1 and max(h["dna/dynamic_rounds"] for h in logs) >= 1
    # The table (TRL keeps the last generation's rows) pairs each logged completion with the advantage it got: a
    # refill's live pair ±1.5, a completion left out 0.
    adv = list(dyn._logs["advantages"])
    assert len(adv) == len(dyn._logs["prompt"]) and set(adv) <= {-1.5, 0.0, 1.5} and any(a != 0 for a in adv)


def test_bad_configs_fail_before_training(tmp_path):
    base = [f"run.out_dir={tmp_path}", *TINY]
    with pytest.raises(ConfigError, match="advantage"):
        train(None, [*base, "config.advantage=batch"], algo="dna-train")
    with pytest.raises(ConfigError, match="sft_batch_size"):
        train(None, [*base, "config.sft_batch_size=7"], algo="dna-train")
    with pytest.raises(ConfigError, match="reward_weights"):
        train(None, [*base, "config.reward_weights=[1.0]"], algo="dna-train")
    with pytest.raises(ConfigError, match="degenerate"):
        train(None, [*base, "config.degenerate=zero"], algo="dna-train")
    assert not list(tmp_path.rglob("checkpoint-*"))


def test_trainer_refuses_odd_groups_and_unpaired_layouts(tmp_path):
    from datasets import Dataset
    from trl import GRPOConfig

    from rlcf.algos.dna_train import DNAGRPOTrainer
    from rlcf.algos.llm_common import TinyLMConfig, build_tiny_lm, load_model

    rows = grounded_pair_rows("train", 4, seed=0)
    path = build_tiny_lm(tmp_path / "m", [r["prompt"] + completion_for(r) for r in rows], TinyLMConfig(hidden_size=32, layers=1, intermediate_size=64))
    model, tok = load_model(path)

    def args(batch: int) -> GRPOConfig:
        return GRPOConfig(output_dir=str(tmp_path / "o"), per_device_train_batch_size=batch, num_generations=2, max_steps=1,
                          use_cpu=True, bf16=False, report_to="none", remove_unused_columns=False)

    reward = [lambda completions, **kw: [0.0] * len(completions)]
    with pytest.raises(UsageError, match="odd number"):  # 6 completions / 2 = 3 groups
        DNAGRPOTrainer(model=model, reward_funcs=reward, args=args(6), train_dataset=Dataset.from_list(rows), processing_class=tok)
    swapped = [rows[1], rows[0], *rows[2:]]
    with pytest.raises(UsageError, match="not one pair's real and cf"):
        DNAGRPOTrainer(model=model, reward_funcs=reward, args=args(4), train_dataset=Dataset.from_list(swapped), processing_class=tok)


def test_dna_train_runs_end_to_end_and_resumes(tmp_path):
    overrides = [f"run.out_dir={tmp_path}", "run.total_steps=2", "run.log_every=1", "run.checkpoint_every=1", *TINY]
    run, final = train(None, overrides, algo="dna-train")
    assert {"eval/real/accuracy", "eval/cf/accuracy", "eval/pair/accuracy"} <= set(final)
    rows = [json.loads(line) for line in (run.path / "metrics.jsonl").read_text().splitlines()]
    logged = set().union(*rows)
    assert {"dna/S_real", "dna/S_cf", "dna/reward_real", "dna/reward_cf", "dna/degenerate_pairs", "rewards/choice/mean"} <= logged
    table = json.loads((run.path / "eval.json").read_text())
    assert set(table) == {"sft", "dna-pair_l1"} and set(table["sft"]) == {"real", "cf", "pair"}
    assert table["sft"]["pair"]["rows"] == 6 and table["sft"]["real"]["rows"] == 6
    ckpt = run.path / "checkpoints" / "grpo"
    assert (ckpt / "checkpoint-2" / "trainer_state.json").exists()

    sft_mtime = (run.path / "sft_model" / "config.json").stat().st_mtime
    train(resume=run.path, overrides=["run.total_steps=3"])
    assert json.loads((ckpt / "checkpoint-3" / "trainer_state.json").read_text())["global_step"] == 3
    assert (run.path / "sft_model" / "config.json").stat().st_mtime == sft_mtime

    from rlcf.cli import main

    assert main(["eval", str(run.path), "--json", str(tmp_path / "pairs.json")]) == 0
    scores = json.loads((tmp_path / "pairs.json").read_text())[str(run.path)]
    assert set(scores) == {"real", "cf", "pair"} and scores["pair"]["rows"] == 6


def _write_pairs(folder, split, rows):
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"{split}.jsonl", "w") as f:
        for r in rows:
            f.write(json.dumps({**r, "completion": completion_for(r)}) + "\n")


def test_user_datasets_load_from_a_local_folder_and_bad_pairs_fail_before_training(tmp_path):
    data = tmp_path / "pairs"
    _write_pairs(data, "train", grounded_pair_rows("train", 20, seed=4))
    _write_pairs(data, "test", grounded_pair_rows("eval", 4, seed=4))
    base = [f"run.out_dir={tmp_path / 'runs'}", "run.total_steps=1", "run.checkpoint_every=1", *TINY, f"config.data={data}"]
    run, final = train(None, base, algo="dna-train")
    assert json.loads((run.path / "eval.json").read_text())["sft"]["pair"]["rows"] == 4

    bad = tmp_path / "bad"
    rows = grounded_pair_rows("train", 20, seed=4)
    _write_pairs(bad, "train", rows[:-1])  # the last pair lost its cf row
    _write_pairs(bad, "test", grounded_pair_rows("eval", 4, seed=4))
    with pytest.raises(UsageError, match="is unpaired"):
        train(None, [*base[:-1], f"config.data={bad}", f"run.out_dir={tmp_path / 'bad_runs'}"], algo="dna-train")
    with pytest.raises(UsageError, match="no split 'validation'; its splits: (test, train|train, test)"):
        train(None, [*base, "config.eval_split=validation", f"run.out_dir={tmp_path / 'bad_runs'}"], algo="dna-train")
    assert not list((tmp_path / "bad_runs").rglob("sft_model"))

