"""The LLM trainer skeleton DeFacto and DNA-Train share: TRL's configs passed through and checked, clean output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from rlcf.algorithm import train
from rlcf.config import load_experiment
from rlcf.errors import ConfigError, UsageError

ROOT = Path(__file__).resolve().parents[1]
TINY = [  # a 1-layer model and a handful of documents: the stages run in seconds
    "config.tiny.hidden_size=32", "config.tiny.layers=1", "config.tiny.intermediate_size=64", "config.sft_docs=60",
    "config.sft_epochs=1", "config.train_docs=12", "config.eval_docs=6", "config.prompts_per_step=2",
    "config.num_generations=2", "config.max_completion_length=12", "config.eval_max_new_tokens=12",
]


def test_unknown_or_rlcf_owned_trl_fields_are_refused_before_any_work(tmp_path):
    # A misspelt GRPOConfig field: refused with the close match, before any model folder is built.
    with pytest.raises(ConfigError, match=r"grpo\.gradient_accumulaton_steps.*did you mean gradient_accumulation_steps"):
        train(None, [f"run.out_dir={tmp_path}", "config.grpo.gradient_accumulaton_steps=2", *TINY], algo="defacto")
    assert not list(tmp_path.rglob("config.json"))
    # A field rlcf sets from its own config names that field; one it sets from the run names the run field.
    with pytest.raises(ConfigError, match=r"grpo\.temperature.*from config\.temperature"):
        train(None, [f"run.out_dir={tmp_path}", "config.grpo.temperature=0.3", *TINY], algo="defacto")
    with pytest.raises(ConfigError, match=r"sft\.num_train_epochs.*from config\.sft_epochs"):
        train(None, [f"run.out_dir={tmp_path}", "config.sft.num_train_epochs=3"], algo="dna-train")
    with pytest.raises(ConfigError, match=r"grpo\.max_steps.*from run\.total_steps"):
        train(None, [f"run.out_dir={tmp_path}", "config.grpo.max_steps=3"], algo="dna-train")
    # DNA-Train owns epsilon (config.epsilon); DeFacto has no such field, so there it passes through.
    with pytest.raises(ConfigError, match=r"grpo\.epsilon.*from config\.epsilon"):
        train(None, [f"run.out_dir={tmp_path}", "config.grpo.epsilon=0.1"], algo="dna-train")
    # A value TRL's own checks refuse is reported against the pass-through keys, still before any work.
    with pytest.raises(ConfigError, match=r"trl\.GRPOConfig refused config\.grpo\.generation_batch_size"):
        train(None, [f"run.out_dir={tmp_path}", "config.grpo.generation_batch_size=3", *TINY], algo="defacto")
    assert not list(tmp_path.rglob("config.json"))
    # The multi-GPU routes of any Hugging Face trainer are fields like any other.
    from rlcf.algos.llm_trainer import check_trl_fields

    check_trl_fields("grpo", {"deepspeed": "ds.json", "fsdp": "full_shard auto_wrap", "vllm_mode": "server"})
    check_trl_fields("sft", {"fsdp": "full_shard", "packing": True})
    with pytest.raises(ConfigError, match=r"config\.grpo.*expected a mapping"):
        load_experiment(None, ["config.grpo=5"], algo="defacto")


def test_a_trainer_checkpoint_flushes_the_runs_logs(tmp_path):
    """TRL's logs reach the run's TensorBoard file on disk when the trainer saves a checkpoint (a run killed
    after it keeps them), not only when the writer's buffer happens to flush."""
    from tests_support import tensorboard_scalars
    from transformers import TrainerControl, TrainerState, TrainingArguments

    from rlcf.algos.llm_trainer import trainer_callbacks
    from rlcf.runs import Run

    run = Run.create(load_experiment(None, [f"run.out_dir={tmp_path}"], algo="defacto"))
    logger, _ = trainer_callbacks(run, "grpo")
    args = TrainingArguments(output_dir=str(tmp_path / "trl"), report_to=[])
    state, control = TrainerState(global_step=3), TrainerControl()
    logger.on_log(args, state, control, logs={"loss": 0.5})
    logger.on_save(args, state, control)
    assert tensorboard_scalars(run.path / "tb").get("train/loss") == {3: 0.5}
    run.close()


@pytest.mark.slow
def test_passed_through_fields_reach_the_trainers(tmp_path):
    """config.grpo / config.sft fields land in the TRL arguments the run trains with (TRL saves them with each
    checkpoint), the old ``gradient_checkpointing`` name included, and the SFT stage's logs reach metrics.jsonl."""
    overrides = [
        f"run.out_dir={tmp_path}", "run.total_steps=1", "run.checkpoint_every=1", "run.log_every=1", *TINY,
        "config.grpo.gradient_accumulation_steps=2", "config.grpo.num_iterations=2", "config.grpo.gradient_checkpointing=false",
        "config.sft.logging_steps=1", "config.sft.max_grad_norm=0.5",
    ]
    run, _ = train(None, overrides, algo="defacto")
    args = torch.load(run.path / "checkpoints" / "grpo" / "checkpoint-1" / "training_args.bin", weights_only=False)
    assert (args.gradient_accumulation_steps, args.num_iterations, args.activation_checkpointing) == (2, 2, False)
    assert args.temperature == run.experiment.config.temperature  # rlcf's own fields are still set
    rows = [json.loads(line) for line in (run.path / "metrics.jsonl").read_text().splitlines()]
    sft_rows = [r for r in rows if "sft/loss" in r]
    assert len(sft_rows) >= 2  # logging_steps=1 over the SFT stage's steps (TRL's default would log every 10)
    assert all(r["sft/grad_norm"] <= 1e6 for r in sft_rows if "sft/grad_norm" in r)


@pytest.mark.slow
def test_rlcf_train_on_an_llm_config_prints_one_json_line(tmp_path):
    """stdout is one parseable JSON summary line, as for the MARL trainers; TRL's raw log dicts appear nowhere,
    and --quiet progress comes as log lines on stderr."""
    args = [f"run.out_dir={tmp_path}", "run.total_steps=2", "run.log_every=1", "run.checkpoint_every=2", *TINY]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-m", "rlcf.cli", "--quiet", "train", "defacto", *args], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1, proc.stdout[-3000:]
    summary = json.loads(lines[0])
    assert "eval/neg/abstention" in summary["final"] and Path(summary["run"]).is_dir()
    assert "{'loss'" not in proc.stdout + proc.stderr and "'train_runtime'" not in proc.stdout + proc.stderr
    assert "Loading weights" not in proc.stderr and "Writing model shards" not in proc.stderr
    assert "grpo: 2/2" in proc.stderr and "sft:" in proc.stderr  # the stages' progress, as log lines


@pytest.mark.slow
def test_chat_formatted_prompts_run_through_the_tiny_models_template(tmp_path):
    """prompt_format: chat gives the tiny model a ChatML template; SFT, GRPO and evaluation all see the system
    instruction (format and abstention answer) and the prompt as the user turn, as a real instruct model would."""
    from rlcf.algos.llm_common import load_tokenizer
    from rlcf.algos.llm_trainer import as_chat

    run, final = train(None, [f"run.out_dir={tmp_path}", "run.total_steps=1", "run.checkpoint_every=1", *TINY,
                              "config.prompt_format=chat", "config.sft.logging_steps=1"], algo="defacto")
    tokenizer = load_tokenizer(run.path / "final_model")
    assert tokenizer.chat_template and tokenizer.eos_token == "<|im_end|>"
    rows = as_chat([{"prompt": "question: q\nfacts:\n1. a\n", "completion": "<answer>x</answer>"}], "Say unknown if masked.")
    text = tokenizer.apply_chat_template(rows[0]["prompt"], add_generation_prompt=True, tokenize=False)
    assert text == "<|im_start|>system\nSay unknown if masked.<|im_end|>\n<|im_start|>user\nquestion: q\nfacts:\n1. a\n<|im_end|>\n<|im_start|>assistant\n"
    assert rows[0]["completion"] == [{"role": "assistant", "content": "<answer>x</answer>"}]
    assert "eval/neg/abstention" in final
    # The SFT stage trained on the conversations: its loss fell over the stage.
    sft = [json.loads(line)["sft/loss"] for line in (run.path / "metrics.jsonl").read_text().splitlines() if "sft/loss" in line]
    assert len(sft) >= 3 and sft[-1] < sft[0], sft
    # 'auto' keeps the tiny model's plain prompts; 'chat' on a tokenizer without a template is a clear error.
    from rlcf.algos.llm_trainer import use_chat
    from rlcf.errors import UsageError

    plain = load_tokenizer(run.path / "final_model")
    plain.chat_template = None
    cfg = load_experiment(None, ["config.prompt_format=chat", "config.model=some/base-model"], algo="dna-train").config
    with pytest.raises(UsageError, match="has no chat template; use an instruct/chat model or set prompt_format: plain"):
        use_chat(cfg, plain)
    assert not use_chat(load_experiment(None, [], algo="dna-train").config, tokenizer)  # auto + tiny: plain
    assert use_chat(load_experiment(None, ["config.model=Qwen/Qwen2.5-0.5B-Instruct"], algo="dna-train").config, tokenizer)


def _write_split(folder: Path, name: str, rows: list[dict]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


@pytest.mark.slow
def test_defacto_trains_on_user_data_from_a_local_folder(tmp_path):
    """config.data: a folder of train/test jsonl files (text rows), validated before training; SFT reads its
    completion column, evaluation its test split."""
    from rlcf.envs.text.grounded_qa import completion_for, grounded_qa_rows

    keep = ("prompt", "variant", "solution", "evidence", "non_evidence")
    train_rows = [{**{k: r[k] for k in keep}, "completion": completion_for(r)} for r in grounded_qa_rows("train", 20, seed=3)]
    test_rows = [{k: r[k] for k in keep} for r in grounded_qa_rows("eval", 4, seed=3)]
    data = tmp_path / "mydata"
    _write_split(data, "train", train_rows)
    _write_split(data, "test", test_rows)
    run, final = train(None, [f"run.out_dir={tmp_path / 'runs'}", "run.total_steps=1", "run.checkpoint_every=1", *TINY,
                              f"config.data={data}"], algo="defacto")
    scores = json.loads((run.path / "eval.json").read_text())["defacto"]
    assert {s: v["rows"] for s, v in scores.items()} == {"pos": 4, "neg": 4, "random": 4}  # the test split, all of it
    # Bad user data is refused before anything trains, naming the row and the fix.
    _write_split(tmp_path / "bad", "train", [{**train_rows[0], "variant": "negative"}])
    _write_split(tmp_path / "bad", "test", test_rows)
    with pytest.raises(UsageError, match=r"dataset .*bad.* \[train\] row 0: variant must be one of pos, neg, random"):
        train(None, [f"run.out_dir={tmp_path / 'runs2'}", *TINY, f"config.data={tmp_path / 'bad'}"], algo="defacto")
    nosft = tmp_path / "nocompletion"
    _write_split(nosft, "train", [{k: r[k] for k in keep} for r in train_rows])
    _write_split(nosft, "test", test_rows)
    with pytest.raises(UsageError, match="SFT needs a 'completion' column"):
        train(None, [f"run.out_dir={tmp_path / 'runs3'}", *TINY, f"config.data={nosft}"], algo="defacto")
    with pytest.raises(UsageError, match="has no split 'valid'; its splits: test, train"):
        train(None, [f"run.out_dir={tmp_path / 'runs4'}", *TINY, f"config.data={data}", "config.eval_split=valid"], algo="defacto")
    assert not (tmp_path / "runs2").exists() or not list((tmp_path / "runs2").rglob("config.json"))


def test_group_repeat_sampler_keeps_an_examples_rows_in_one_batch():
    from rlcf.algos.llm_trainer import GroupRepeatSampler

    groups = [[3 * k, 3 * k + 1, 3 * k + 2] for k in range(5)]
    order = list(GroupRepeatSampler(groups, num_generations=2, prompts_per_batch=6, seed=0))
    assert len(order) == 24  # 15 rows -> two whole batches of 6 prompts (the rest dropped), each prompt twice
    assert order[0::2] == order[1::2]  # each prompt's completions are adjacent
    prompts = order[0::2]
    for batch in (prompts[:6], prompts[6:]):
        examples = {i // 3 for i in batch}
        assert len(examples) == 2 and sorted(batch) == sorted(i for k in examples for i in groups[k]), batch
    with pytest.raises(UsageError, match="a generation batch of 4 prompts splits a group of 3 rows; use a multiple of 3"):
        GroupRepeatSampler(groups, 2, 4)


@pytest.mark.slow
def test_defacto_batch_by_example_trains_on_whole_examples(tmp_path):
    with pytest.raises(ConfigError, match="prompts_per_step.*multiple of 3, got 2"):
        load_experiment(None, [*TINY, "config.batch_by_example=true"], algo="defacto")
    run, final = train(None, [f"run.out_dir={tmp_path}", "run.total_steps=2", "run.log_every=1", "run.checkpoint_every=2", *TINY,
                              "config.batch_by_example=true", "config.prompts_per_step=3"], algo="defacto")
    rows = [json.loads(line) for line in (run.path / "metrics.jsonl").read_text().splitlines()]
    counts = [{v: r.get(f"rewards/format/{v}/count") for v in ("pos", "neg", "random")} for r in rows if "train/loss" in r]
    assert counts == [{"pos": 2.0, "neg": 2.0, "random": 2.0}] * 2  # one example's three variants x 2 completions each step
