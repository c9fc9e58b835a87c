"""DeFacto's vision-language path: the synthetic picture task, the tiny VLM learning to read the asked cell, and
one GRPO step end to end on TRL with a tiny, randomly initialised Qwen3-VL (or Qwen2-VL) built from a config (its
processor built without torchvision)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rlcf.algorithm import train
from rlcf.config import load_experiment
from rlcf.envs.vision.grounded_images import COLORS, grounded_image_rows
from rlcf.errors import ConfigError, UsageError

#: Training steps of the reading test (batch 32).
STEPS_TO_READ = 250


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


def _best_threshold_accuracy(neg: np.ndarray, rnd: np.ndarray) -> float:
    """Accuracy of the best rule "feature <= t is neg" (or its flip) at telling neg rows from random ones."""
    values = np.concatenate([neg, rnd])
    best = 0.5
    for t in np.unique(values):
        right = (neg <= t).sum() + (rnd > t).sum()
        best = max(best, right / len(values), 1 - right / len(values))
    return float(best)


def test_a_question_blind_rule_cannot_tell_neg_from_random():
    """neg masks the asked square, random another one drawn alike: the masked area, the mask's shape and what is
    left of the picture separate them no better than chance (filling a whole cell in random did, on every row)."""
    rows = grounded_image_rows("train", 300, seed=5)
    features: dict[str, dict[str, list[float]]] = {}
    for row in rows:
        if row["variant"] == "pos":
            continue
        pixels = np.asarray(row["image"]).astype(int)
        black = (pixels == 0).all(-1)  # the background and the squares are never black: black is the mask
        ys, xs = np.nonzero(black)
        width, height = xs.max() - xs.min() + 1, ys.max() - ys.min() + 1
        coloured = np.isin(pixels @ [65536, 256, 1], [r * 65536 + g * 256 + b for r, g, b in COLORS.values()])
        seen = {
            "masked pixels": black.sum(),
            "mask width": width,
            "mask aspect": width / height,
            "mask fills its bounding box": black.sum() / (width * height),
            "coloured pixels left": coloured.sum(),
            "masked column": xs.min(),
        }
        for name, value in seen.items():
            features.setdefault(name, {"neg": [], "random": []})[row["variant"]].append(float(value))
    for name, by_variant in features.items():
        assert len(by_variant["neg"]) == len(by_variant["random"]) == 300
        accuracy = _best_threshold_accuracy(np.asarray(by_variant["neg"]), np.asarray(by_variant["random"]))
        assert accuracy <= 0.6, (name, accuracy)
    # Both variants mask exactly one square's box, and never the same square.
    for pos, neg, rnd in zip(rows[0::3], rows[1::3], rows[2::3]):
        assert neg["masked"] == pos["evidence"] and len(rnd["masked"]) == 1 and rnd["masked"] != neg["masked"]
        (x1, y1, x2, y2), = rnd["masked"]
        assert x2 - x1 == y2 - y1 and tuple(np.asarray(pos["image"])[int(y1), int(x1)]) in COLORS.values()


def test_picture_config_needs_a_second_square_for_random():
    from rlcf.envs.vision.grounded_images import GroundedImageConfig
    from rlcf.errors import UsageError

    with pytest.raises(UsageError, match=r"2 <= min_squares <= max_squares <= 4, got min_squares=1.*masks a square other than the asked one"):
        GroundedImageConfig(min_squares=1)
    with pytest.raises(UsageError, match="max_squares=5"):
        GroundedImageConfig(max_squares=5)


def test_train_and_eval_pictures_differ_and_repeat():
    train_rows, eval_rows = grounded_image_rows("train", 20), grounded_image_rows("eval", 10)
    key = lambda r: np.asarray(r["image"]).tobytes() + r["prompt"][0]["content"][1]["text"].encode()  # noqa: E731
    assert not {key(r) for r in train_rows} & {key(r) for r in eval_rows}
    assert [key(r) for r in grounded_image_rows("eval", 10)] == [key(r) for r in eval_rows]


def test_image_config_checks():
    with pytest.raises(ConfigError, match="modality"):
        load_experiment(None, ["config.modality=audio"], algo="defacto")
    with pytest.raises(ConfigError, match="sft_think_weight.*must be > 0"):
        load_experiment(None, ["config.modality=image", "config.sft_think_weight=0"], algo="defacto")
    with pytest.raises(ConfigError, match="sft_hallucinate_share.*must sum to at most 1"):
        load_experiment(None, ["config.modality=image", "config.sft_abstain_share=0.5", "config.sft_hallucinate_share=0.4", "config.sft_notice_share=0.2"], algo="defacto")
    for name in ("sft_hallucinate_share", "sft_notice_share"):
        with pytest.raises(ConfigError, match=f"{name}.*modality image"):
            load_experiment(None, [f"config.{name}=0.1"], algo="defacto")


def test_image_sft_rows_are_conversations_with_their_picture():
    from rlcf.algos.defacto import DeFacto

    exp = load_experiment(None, ["config.modality=image", "config.sft_docs=20", "config.sft_abstain_share=1"], algo="defacto")
    sft = DeFacto.sft_data(exp.config)
    rows = sft["rows"]
    assert len(rows) == 60 and sft["load"].__name__ == "load_vlm"
    assert set(sft["tag_weights"]) == {"answer", "think", "bbox"} and "unknown" in sft["unweighted_contents"]
    for row in rows:
        assert row["prompt"][0]["content"][0] == {"type": "image"} and row["image"].size == (56, 56)
        (turn,) = row["completion"]
        assert turn["role"] == "assistant" and turn["content"].endswith(f"<answer>{row['solution']}</answer>")


def test_image_sft_neg_rows_abstain_hallucinate_or_notice_in_their_shares():
    """The 'neg' pictures SFT keeps: abstentions (no box), hallucinations (the masked square's box and a made-up
    colour) and noticed ones (the masked square's box, read as empty, then the abstention), each in its share; with
    the two new shares at 0 the rows are exactly those of the abstentions alone."""
    from rlcf.algos.defacto import DeFacto
    from rlcf.envs.vision.grounded_images import IMAGE_ABSTAIN_REASON, IMAGE_NOTICED_REASON

    base = ["config.modality=image", "config.sft_docs=300", "config.sft_abstain_share=0.2"]
    exp = load_experiment(None, [*base, "config.sft_hallucinate_share=0.4", "config.sft_notice_share=0.2"], algo="defacto")
    rows = DeFacto.sft_data(exp.config)["rows"]
    kinds: dict[str, list] = {"abstained": [], "made_up": [], "noticed": []}
    for row in (r for r in rows if r["variant"] == "neg"):
        content = row["completion"][0]["content"]
        box = f"<bbox>{json.dumps([[int(v) for v in row['masked'][0]]])}</bbox>"
        if content == f"<bbox>[]</bbox><think>{IMAGE_ABSTAIN_REASON}</think><answer>unknown</answer>":
            kinds["abstained"].append(row)
        elif content == f"{box}<think>{IMAGE_NOTICED_REASON}</think><answer>unknown</answer>":
            kinds["noticed"].append(row)
        else:
            colour = content.rsplit("<answer>", 1)[1].removesuffix("</answer>")
            assert colour in COLORS and content == f"{box}<think>the square is {colour}.</think><answer>{colour}</answer>"
            kinds["made_up"].append(row)
    shares = {k: len(v) / 300 for k, v in kinds.items()}
    assert 0.12 < shares["abstained"] < 0.28 and 0.3 < shares["made_up"] < 0.5 and 0.12 < shares["noticed"] < 0.28, shares
    assert len({r["completion"][0]["content"].rsplit("<answer>", 1)[1] for r in kinds["made_up"]}) > 3  # drawn, not one constant
    plain = DeFacto.sft_data(load_experiment(None, base, algo="defacto").config)["rows"]
    added = {id(r) for r in kinds["made_up"] + kinds["noticed"]}
    assert [r["completion"] for r in plain] == [r["completion"] for r in rows if id(r) not in added]


@pytest.mark.parametrize("family", ["qwen3_vl", "qwen2_vl"])
def test_tiny_vlm_builds_and_loads_either_family(tmp_path, family):
    from rlcf.algos.llm_common import TinyLMConfig, build_tiny_vlm, load_vlm

    build_tiny_vlm(tmp_path, ["what color is the square red green blue"] * 8, TinyLMConfig(hidden_size=32, heads=2, kv_heads=1, vision_family=family))
    model, processor = load_vlm(tmp_path)
    assert model.config.model_type == family and type(processor).__name__ == {"qwen3_vl": "ImageQwen3VLProcessor", "qwen2_vl": "ImageQwen2VLProcessor"}[family]
    assert model.generation_config.eos_token_id == processor.tokenizer.convert_tokens_to_ids("<|im_end|>")
    rope = model.config.text_config.rope_parameters
    assert rope["rope_theta"] == 10.0 and sum(rope["mrope_section"]) == 32 // 2 // 2  # head size 16: 8 frequencies
    picture = grounded_image_rows("eval", 1)[0]
    text = processor.apply_chat_template(picture["prompt"], add_generation_prompt=True, tokenize=False)
    enc = processor(text=[text], images=[[picture["image"]]], return_tensors="pt")
    assert int((enc["input_ids"] == model.config.image_token_id).sum()) == 4  # a 56-px picture: one token per cell
    assert model(**enc).logits.shape[1] == enc["input_ids"].shape[1]


@pytest.mark.slow
def test_tiny_vlm_learns_which_cell_the_question_asks_for():
    """The lookup the picture task needs, by position alone: 4 image tokens, one per cell, and the question names a
    cell. Trained on the colour token after the prompt (teacher-forced, AdamW), the default tiny VLM (Qwen3-VL,
    rotary base 10) names the asked square's colour on held-out pictures far above picking among the picture's
    colours (34%). The Qwen2-VL tiny model of session 19 stayed at 35-40% (bench/probe_vlm_reading.py)."""
    import tempfile

    import torch

    from rlcf.algos.llm_common import TinyLMConfig, build_tiny_vlm, load_vlm

    torch.manual_seed(0)
    train_rows = [r for r in grounded_image_rows("train", 1200, seed=0) if r["variant"] == "pos"]
    test_rows = [r for r in grounded_image_rows("eval", 100, seed=0) if r["variant"] == "pos"]
    with tempfile.TemporaryDirectory() as tmp:
        build_tiny_vlm(tmp, [r["prompt"][0]["content"][1]["text"] + " the square is " + r["solution"] for r in train_rows[:300]],
                       TinyLMConfig(hidden_size=128, layers=4, intermediate_size=384))
        model, processor = load_vlm(tmp)
    processor.tokenizer.padding_side = "left"
    ids = torch.tensor([processor.tokenizer(" " + c, add_special_tokens=False).input_ids[0] for c in COLORS])

    def batch(rows):
        texts = [processor.apply_chat_template(r["prompt"], add_generation_prompt=True, tokenize=False) + "the square is" for r in rows]
        enc = processor(text=texts, images=[[r["image"]] for r in rows], return_tensors="pt", padding=True)
        return enc, torch.tensor([list(COLORS).index(r["solution"]) for r in rows])

    def accuracy():
        with torch.no_grad():
            enc, target = batch(test_rows)
            return float((model(**enc).logits[:, -1, ids].argmax(-1) == target).float().mean())

    before = accuracy()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.0)
    rng = np.random.default_rng(0)
    for step in range(STEPS_TO_READ):
        for group in opt.param_groups:
            group["lr"] = 1e-3 * min(1.0, (step + 1) / 50)
        enc, target = batch([train_rows[i] for i in rng.choice(len(train_rows), 32, replace=False)])
        loss = torch.nn.functional.cross_entropy(model(**enc).logits[:, -1, ids], target)
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = accuracy()
    assert before < 0.34 and after >= 0.6, (before, after)


def test_image_sft_runs_and_lowers_its_loss(tmp_path):
    """The SFT stage on picture rows (TRL's vision collator, the processor, the weighted loss) trains the tiny VLM:
    the logged loss falls, and the SFT model is saved, evaluated and continued by GRPO."""
    overrides = [
        f"run.out_dir={tmp_path}", "run.total_steps=1", "run.checkpoint_every=1", "config.modality=image",
        "config.tiny.hidden_size=32", "config.tiny.heads=2", "config.tiny.kv_heads=1", "config.tiny.layers=1",
        "config.tiny.intermediate_size=64", "config.tiny.vocab_size=320", "config.sft_docs=48", "config.sft_epochs=4",
        "config.sft_batch_size=16", "config.sft_lr=1e-2", "config.sft.logging_steps=2", "config.train_docs=2",
        "config.eval_docs=2", "config.prompts_per_step=2", "config.num_generations=2", "config.max_completion_length=8",
        "config.eval_max_new_tokens=8",
    ]
    run, _ = train(None, overrides, algo="defacto")
    losses = [m["sft/loss"] for m in map(json.loads, (run.path / "metrics.jsonl").read_text().splitlines()) if "sft/loss" in m]
    assert len(losses) >= 4 and losses[-1] < 0.6 * losses[0], losses
    assert (run.path / "sft_model" / "model.safetensors").exists()  # GRPO and evaluation loaded it through load_vlm
    assert set(json.loads((run.path / "eval.json").read_text())) == {"sft", "defacto"}


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


def test_vlm_grpo_trains_on_user_image_rows_from_a_folder(tmp_path):
    """config.data with modality image: jsonl rows whose image column holds a path relative to the folder (a text
    prompt becomes the user turn beside the image); a missing image file is refused before training."""

    data = tmp_path / "pictures"
    (data / "img").mkdir(parents=True)
    for split, name in (("train", "train"), ("eval", "test")):
        lines = []
        for i, row in enumerate(grounded_image_rows(split, 2, seed=4)):
            row["image"].save(data / "img" / f"{name}-{i}.png")
            question = row["prompt"][0]["content"][1]["text"]
            lines.append(json.dumps({"prompt": question, "image": f"img/{name}-{i}.png", "variant": row["variant"],
                                     "solution": row["solution"], "evidence": row["evidence"], "non_evidence": row["non_evidence"]}))
        (data / f"{name}.jsonl").write_text("\n".join(lines) + "\n")
    overrides = [f"run.out_dir={tmp_path / 'runs'}", "run.total_steps=1", "run.checkpoint_every=1", "config.modality=image",
                 "config.sft_epochs=0", "config.tiny.hidden_size=32", "config.tiny.heads=2", "config.tiny.kv_heads=1",
                 "config.tiny.layers=1", "config.tiny.intermediate_size=64", "config.tiny.vocab_size=320",
                 "config.prompts_per_step=2", "config.num_generations=2", "config.max_completion_length=8",
                 "config.eval_max_new_tokens=8", f"config.data={data}"]
    run, final = train(None, overrides, algo="defacto")
    scores = json.loads((run.path / "eval.json").read_text())["defacto"]
    assert {s: v["rows"] for s, v in scores.items()} == {"pos": 2, "neg": 2, "random": 2}
    (data / "img" / "test-0.png").unlink()
    with pytest.raises(UsageError, match=r"\[test\] row 0: image file .*test-0.png' does not exist"):
        train(None, [*overrides, f"run.out_dir={tmp_path / 'runs2'}"], algo="defacto")
