"""The real-model recipes (configs/<algo>/qwen*.yaml) resolve, and every TRL setting they make is accepted by TRL's own
dataclasses (GRPOConfig / SFTConfig), without loading any weights."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from rlcf.algos.llm_trainer import grpo_arguments, sft_config
from rlcf.config import load_experiment
from rlcf.errors import ConfigError
from rlcf.registry import algos

RECIPES = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*/qwen*.yaml"))


def test_there_are_recipes_for_text_and_image_models():
    names = {f"{p.parent.name}/{p.stem}" for p in RECIPES}
    assert {"defacto/qwen2.5-0.5b-instruct", "defacto/qwen2.5-1.5b-instruct", "defacto/qwen2-vl-2b-instruct",
            "dna/qwen2.5-0.5b-instruct"} <= names


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_recipe_validates_against_trl(path, tmp_path):
    exp = load_experiment(path)
    c = exp.config
    assert c.model != "tiny" and "/" in c.model
    assert c.learning_rate <= 1e-5, "a real-model recipe keeps the tiny model's learning rate"
    if getattr(c, "modality", "text") == "text":
        assert c.prompt_format == "chat" and c.sft_lr <= 1e-4
    algo = algos.get(exp.algo)
    # The TRL configs the run would build, on CPU here (bf16 is refused without a GPU; it is the only GPU-side field
    # rlcf itself sets), with every pass-through field checked against TRL's dataclass and its __post_init__.
    if c.use_vllm:  # vLLM generation needs the package and a GPU: refused here with the reason and the fix
        with pytest.raises(ConfigError, match=r"use_vllm.*vLLM generation needs the vllm package and a GPU.*set use_vllm: false"):
            grpo_arguments(c, exp.run, tmp_path / "grpo", algo.rollout_batch(c), [1.0] * len(c.rewards), gpu=False)
        c = dataclasses.replace(c, use_vllm=False)  # the rest is checked as TRL would check it
    args = grpo_arguments(c, exp.run, tmp_path / "grpo", algo.rollout_batch(c), [1.0] * len(c.rewards), gpu=False, **algo.grpo_settings(c))
    assert args.learning_rate == c.learning_rate and args.num_generations == c.num_generations
    for key, value in c.grpo.items():
        name = "activation_checkpointing" if key == "gradient_checkpointing" else key
        assert getattr(args, name) == value, key
    assert args.use_vllm == c.use_vllm
    if c.sft_epochs > 0:
        sft = sft_config(c, exp.run, tmp_path / "sft", gpu=False)
        assert sft.learning_rate == c.sft_lr
        for key, value in c.sft.items():
            assert getattr(sft, "activation_checkpointing" if key == "gradient_checkpointing" else key) == value, key
