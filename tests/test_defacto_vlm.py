"""DeFacto's vision-language path: the synthetic picture task, and one GRPO step end to end on TRL with a tiny,
randomly initialised Qwen2-VL built from a config (its processor built without torchvision)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rlcf.algorithm import train
from rlcf.config import load_experiment
from rlcf.envs.grounded_images import COLORS, grounded_image_rows
from rlcf.errors import ConfigError


def test_picture_rows_mask_what_they_report():
    rows = grounded_image_rows("train", 6, seed=3)
    assert [r["variant"] for r in rows[:3]] == ["pos", "neg", "random"]
    for pos, neg, rnd in zip(rows[0::3], rows[1::3], rows[2::3]):
        base = np.asarray(pos["image"])
        box = [int(v) for v in pos["evidence"][0]]
        # The evidence square has the answer's colour; neg fills exactly it, random exactly its masked cell.
        assert tuple(base[box[1], box[0]]) == COLORS[pos["solution"]]
        for row in (neg, rnd):
            changed = (np.asarray(row["image"]) != base).any(-1)
            expected = np.zeros_like(changed)
            for x1, y1, x2, y2 in (map(int, b) for b in row["masked"]):
                expected[y1:y2, x1:x2] = True
            assert changed.any() and not (changed & ~expected).any()
        assert neg["solution"] == "unknown" and rnd["solution"] == pos["solution"]
        assert not any(min(m[2], box[2]) > max(m[0], box[0]) and min(m[3], box[3]) > max(m[1], box[1]) for m in rnd["masked"])


def test_train_and_eval_pictures_differ_and_repeat():
    train_rows, eval_rows = grounded_image_rows("train", 20), grounded_image_rows("eval", 10)
    key = lambda r: np.asarray(r["image"]).tobytes() + r["prompt"][0]["content"][1]["text"].encode()  # noqa: E731
    assert not {key(r) for r in train_rows} & {key(r) for r in eval_rows}
    assert [key(r) for r in grounded_image_rows("eval", 10)] == [key(r) for r in eval_rows]


def test_image_modality_refuses_the_text_sft_stage():
    with pytest.raises(ConfigError, match="sft_epochs"):
        load_experiment(None, ["config.modality=image", "config.sft_epochs=1"], algo="defacto")
    with pytest.raises(ConfigError, match="modality"):
        load_experiment(None, ["config.modality=audio"], algo="defacto")


@pytest.mark.slow
def test_vlm_grpo_step_runs_end_to_end(tmp_path):
    overrides = [
        f"run.out_dir={tmp_path}",
        "run.total_steps=1",
        "run.log_every=1",
        "run.checkpoint_every=1",
        "config.modality=image",
        "config.sft_epochs=0",
        "config.tiny.hidden_size=32",
        "config.tiny.heads=2",
        "config.tiny.kv_heads=1",
        "config.tiny.layers=1",
        "config.tiny.intermediate_size=64",
        "config.tiny.vocab_size=320",
        "config.train_docs=2",
        "config.eval_docs=2",
        "config.prompts_per_step=2",
        "config.num_generations=2",
        "config.max_completion_length=8",
        "config.eval_max_new_tokens=8",
    ]
    run, final = train(None, overrides, algo="defacto")
    logged = set().union(*[json.loads(line) for line in (run.path / "metrics.jsonl").read_text().splitlines()])
    assert {"rewards/format/mean", "rewards/answer/mean", "rewards/grounding/mean", "train/loss"} <= logged
    assert {"eval/pos/accuracy", "eval/neg/abstention", "eval/random/grounding"} <= set(final)
    assert (run.path / "checkpoints" / "grpo" / "checkpoint-1" / "trainer_state.json").exists()
    # The saved final model loads back through the same path a user's VLM folder takes, and evaluates.
    from rlcf.algos.defacto import DeFacto

    scores = DeFacto.evaluate_run(run)
    assert set(scores) == {"pos", "neg", "random"} and all(s.rows == 2 for s in scores.values())
