"""The DeFacto trainer on TRL: config and data errors before training, an end-to-end run, and resume."""

from __future__ import annotations

import json

import pytest

from rlcf.algorithm import train
from rlcf.algos.defacto import validate_rows
from rlcf.config import load_experiment
from rlcf.errors import ConfigError, UnknownNameError, UsageError

TINY = [
    "config.tiny.hidden_size=32",
    "config.tiny.layers=1",
    "config.tiny.intermediate_size=64",
    "config.sft_docs=60",
    "config.sft_epochs=1",
    "config.train_docs=12",
    "config.eval_docs=6",
    "config.prompts_per_step=2",
    "config.num_generations=2",
    "config.max_completion_length=12",
    "config.eval_max_new_tokens=12",
]


def test_bad_configs_fail_before_training(tmp_path):
    with pytest.raises(ConfigError, match=r"reward_weights.*2 weights for 3 rewards \(format, answer, grounding\)"):
        load_experiment(None, ["config.reward_weights=[1.0, 2.0]"], algo="defacto")
    with pytest.raises(ConfigError, match="variants.*got \\['pos', 'negative'\\]"):
        load_experiment(None, ["config.variants=[pos, negative]"], algo="defacto")
    with pytest.raises(ConfigError, match="num_generations"):
        load_experiment(None, ["config.num_generations=1"], algo="defacto")
    # An unknown reward is refused before any model is built or trained: no model folder appears.
    with pytest.raises(UnknownNameError, match="Valid rewards: accuracy, answer, choice, counterfactual, format, grounding, masked"):
        train(None, [f"run.out_dir={tmp_path}", "config.rewards=[format, answr, grounding]", *TINY], algo="defacto")
    assert not list(tmp_path.rglob("config.json"))


def test_rows_without_evidence_are_refused():
    good = {"prompt": "p", "variant": "pos", "solution": "oslo", "evidence": [2], "non_evidence": [1]}
    validate_rows([good])
    with pytest.raises(UsageError, match=r"row 1 \(random\) has no evidence regions"):
        validate_rows([good, {**good, "variant": "random", "evidence": []}])
    with pytest.raises(UsageError, match="row 0: variant must be one of pos, neg, random"):
        validate_rows([{**good, "variant": "counterfactual"}])


@pytest.mark.slow
def test_defacto_runs_end_to_end_and_resumes(tmp_path):
    overrides = [f"run.out_dir={tmp_path}", "run.total_steps=2", "run.log_every=1", "run.checkpoint_every=1", *TINY]
    run, final = train(None, overrides, algo="defacto")
    assert {"eval/neg/abstention", "eval/pos/accuracy", "eval/random/format"} <= set(final)
    rows = [json.loads(line) for line in (run.path / "metrics.jsonl").read_text().splitlines()]
    logged = set().union(*rows)
    # Each reward is logged on its own (TRL's rewards/<name>/mean), as are the before-GRPO scores.
    assert {"rewards/format/mean", "rewards/answer/mean", "rewards/grounding/mean", "eval/before/neg/abstention"} <= logged
    # ... and per variant, so that a reward rising on neg while falling on random shows.
    assert {"rewards/answer/neg/mean", "rewards/answer/pos/mean", "rewards/grounding/random/mean"} <= logged
    table = json.loads((run.path / "eval.json").read_text())
    assert set(table) == {"sft", "defacto"} and set(table["sft"]) == {"pos", "neg", "random"}
    assert (run.path / "final_model" / "config.json").exists()
    ckpt = run.path / "checkpoints" / "grpo"
    assert (ckpt / "checkpoint-2" / "trainer_state.json").exists()

    # Resume with a larger budget: the GRPO stage continues from checkpoint 2 (SFT is not redone).
    sft_mtime = (run.path / "sft_model" / "config.json").stat().st_mtime
    resumed, _ = train(resume=run.path, overrides=["run.total_steps=3"])
    state = json.loads((ckpt / "checkpoint-3" / "trainer_state.json").read_text())
    assert state["global_step"] == 3
    assert (run.path / "sft_model" / "config.json").stat().st_mtime == sft_mtime
    steps = [json.loads(line)["step"] for line in (run.path / "metrics.jsonl").read_text().splitlines()]
    assert 3 in steps

    # rlcf eval on the run folder: the per-split table, JSON and a plot of the reward curves.
    from rlcf.cli import main

    assert main(["eval", str(run.path), "--json", str(tmp_path / "llm.json"), "--plot", str(tmp_path / "curves.png")]) == 0
    scores = json.loads((tmp_path / "llm.json").read_text())[str(run.path)]
    assert set(scores) == {"pos", "neg", "random"} and scores["neg"]["rows"] == 6
    assert (tmp_path / "curves.png").read_bytes()[:4] == b"\x89PNG"


def test_tiny_model_loads_with_the_tokenizer_it_was_built_with(tmp_path):
    """transformers maps a qwen2 folder to Qwen2Tokenizer, whose own pre-tokenizer would drop ``prefix_space``;
    the tiny model's folder is marked so that ``load_model`` reads its ``tokenizer.json`` as written."""
    from rlcf.algos.llm_common import TinyLMConfig, build_tiny_lm, load_model, load_tokenizer
    from rlcf.envs.text.grounded_qa import GroundedQAConfig, completion_for, grounded_qa_rows

    rows = grounded_qa_rows("train", 30, config=GroundedQAConfig(layout="profile", two_fact_share=0))
    corpus = [r["prompt"] + completion_for(r) for r in rows]
    path = build_tiny_lm(tmp_path / "m", corpus, TinyLMConfig(hidden_size=32, layers=1, intermediate_size=64, prefix_space=True))
    _, tokenizer = load_model(path)
    pos = rows[0]
    tokens = tokenizer.convert_ids_to_tokens(tokenizer(pos["prompt"] + completion_for(pos))["input_ids"])
    answer = tokens[tokens.index("<answer>") + 1]
    # The answer word after the tag is the very token the document holds ("is riga" and "<answer>riga").
    assert answer == "Ġ" + pos["solution"] and tokens.count(answer) == 2
    tokenizer.save_pretrained(tmp_path / "again")  # the mark survives a re-save (SFT and GRPO save the tokenizer)
    again = load_tokenizer(tmp_path / "again")
    assert again(pos["prompt"])["input_ids"] == tokenizer(pos["prompt"])["input_ids"]


def test_sft_answer_weight_is_the_weighted_token_mean(tmp_path):
    """``run_sft(tag_weights={"answer": w})``: the loss is Σ w_t·nll_t / Σ w_t over the completion tokens, w_t = w on
    the answer value (between ``<answer>`` and ``</answer>``) of answerable rows, 1 elsewhere and on the abstention's
    answer; with w = 1 it is TRL's own token mean. Real tiny model and TRL batch, loss computed by hand from the logits."""
    import torch
    from datasets import Dataset
    from trl import SFTTrainer

    from rlcf.algos.llm_common import TinyLMConfig, _span_weighted_trainer, build_tiny_lm, load_model, sft_arguments
    from rlcf.envs.text.grounded_qa import GroundedQAConfig, completion_for, grounded_qa_rows

    rows = grounded_qa_rows("train", 30, config=GroundedQAConfig(layout="profile", two_fact_share=0))
    corpus = [r["prompt"] + completion_for(r) for r in rows]
    path = build_tiny_lm(tmp_path / "m", corpus, TinyLMConfig(hidden_size=32, layers=1, intermediate_size=64, prefix_space=True))
    batch_rows = rows[:6]  # pos, neg, random of two documents: one abstention row per document
    data = Dataset.from_list([{"prompt": r["prompt"], "completion": completion_for(r)} for r in batch_rows])
    args = sft_arguments(tmp_path / "out", epochs=1, lr=1e-3, batch_size=6, seed=0, use_gpu=False)

    def loss_of(cls):
        model, tokenizer = load_model(path)
        trainer = cls(model=model, args=args, train_dataset=data, processing_class=tokenizer)
        inputs = trainer._prepare_inputs(next(iter(trainer.get_train_dataloader())))
        with torch.no_grad():
            return trainer.compute_loss(trainer.model, dict(inputs)).item(), trainer.model, tokenizer, inputs

    weight = 14.0
    weighted, model, tokenizer, inputs = loss_of(_span_weighted_trainer(SFTTrainer, {"answer": weight}, ("unknown",)))
    plain, *_ = loss_of(SFTTrainer)
    same, *_ = loss_of(_span_weighted_trainer(SFTTrainer, {"answer": 1.0, "evidence": 1.0}, ()))
    assert same == pytest.approx(plain, rel=1e-5)  # at weight 1 the override is TRL's loss

    with torch.no_grad():
        logp = torch.log_softmax(model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"]).logits.float(), -1)
    open_id, close_id = tokenizer.convert_tokens_to_ids("<answer>"), tokenizer.convert_tokens_to_ids("</answer>")
    total = norm = 0.0
    answer_tokens = abstentions = 0
    for b, labels in enumerate(inputs["labels"].tolist()):
        completion = [t for t in range(1, len(labels)) if labels[t] != -100]
        start, end = labels.index(open_id), labels.index(close_id)
        answer = tokenizer.decode(labels[start + 1 : end]).strip()
        abstentions += answer == "unknown"
        for t in completion:
            w = weight if start < t < end and answer != "unknown" else 1.0
            answer_tokens += w == weight
            total += -w * logp[b, t - 1, labels[t]].item()
            norm += w
    assert abstentions == 2 and answer_tokens == 4  # two abstention rows stay unweighted; one token per answer
    assert weighted == pytest.approx(total / norm, rel=1e-5)
    assert weighted != pytest.approx(plain, rel=1e-3)


def test_sft_answer_weight_is_validated():
    with pytest.raises(ConfigError, match="sft_answer_weight.*must be > 0"):
        load_experiment(None, ["config.sft_answer_weight=0"], algo="defacto")
    with pytest.raises(ConfigError, match="sft_evidence_weight.*must be > 0"):
        load_experiment(None, ["config.sft_evidence_weight=-1"], algo="defacto")
