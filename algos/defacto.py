"""DeFacto-style counterfactual GRPO (arXiv 2509.20912) as a thin layer over TRL's ``GRPOTrainer``.

Every training example comes in three variants (:mod:`rlcf.envs.variants`): ``pos`` (unchanged), ``neg``
(evidence masked: the model must abstain) and ``random`` (irrelevant parts masked: the answer must not change).
The rewards (:mod:`rlcf.reward_fns.defacto`) are format, answer-with-abstention and grounding, wired into TRL
with ``reward_weights``; TRL's own GRPO loss, generation and logging do the rest (``rewards/<name>/mean`` per
function). The run has three stages, each resumable:

1. the model: ``model: tiny`` builds the embedded tiny LM (a tokenizer trained on the task's text and a
   random Qwen2/Llama model) in the run folder; any other value is a hub id or a local folder;
2. SFT (the paper's cold start) with TRL's ``SFTTrainer`` on mostly ``pos``/``random`` examples plus a small
   share (``sft_abstain_share``) of abstentions on ``neg``, so that the model answers fluently but usually
   hallucinates when the evidence is masked; skipped with ``sft_epochs: 0``. ``sft_answer_weight`` weights the
   answer value's loss (the one completion token that needs the document) so that a tiny model learns to read;
   the abstention rows stay unweighted (``sft_weight_abstentions``). With ``modality: image`` the rows are the
   pictures (TRL's vision collator renders them through the processor) and ``sft_think_weight`` can weight the
   ``<think>`` span, where the picture task's completion first names the colour; there ``sft_hallucinate_share``
   and ``sft_notice_share`` shape what SFT does on a masked square (make a colour up, or read it as empty and
   abstain), which decides whether its abstention is tied to the asked cell;
3. GRPO on the three variants (``variants``; ``[pos]`` with rewards ``[format, answer]`` is plain GRPO, the
   baseline), checkpointed by TRL every ``run.checkpoint_every`` steps.

The SFT model and the final model are evaluated per split (accuracy, abstention, grounding, format) and the
table is written to ``eval.json`` in the run folder. On CPU the run uses fp32 and no gradient checkpointing; on
GPU bf16 (and vLLM when ``use_vllm``), from the same config.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rlcf.algorithm import Algorithm
from rlcf.algos.llm_common import TinyLMConfig
from rlcf.algos.llm_trainer import LLMAlgorithm, LLMConfigChecks, prompt_format_option, trainer_callbacks, trl_passthrough
from rlcf.config import option, require
from rlcf.registry import algos

__all__ = ["DeFacto", "DeFactoConfig", "load_for", "task_rows", "validate_rows"]

log = logging.getLogger(__name__)


@dataclass
class DeFactoConfig(LLMConfigChecks):
    """DeFacto GRPO on the embedded grounded-QA task (or any model id / folder)."""

    model: str = option("tiny", "'tiny' builds the embedded tiny LM; otherwise a Hugging Face model id or a local folder.")
    tiny: TinyLMConfig = field(
        default_factory=lambda: TinyLMConfig(prefix_space=True), metadata={"help": "Shape of the embedded tiny model."}
    )
    data: str = option(
        "embedded",
        "'embedded' (the generated grounded-QA or picture task, by modality) or a dataset id / local folder for "
        "datasets.load_dataset with columns prompt, variant (pos|neg|random), solution, evidence, non_evidence, "
        "completion (the SFT target; needed when sft_epochs > 0) and, with modality image, image",
    )
    train_split: str = option("train", "Split of 'data' for SFT and GRPO (user data only).")
    eval_split: str = option("test", "Split of 'data' for evaluation (user data only).")
    train_docs: int = option(400, "Documents for GRPO (each gives one row per variant).")
    eval_docs: int = option(60, "Held-out documents for evaluation (never in training).")
    data_seed: int = option(0, "Seed of the generated task data (fixed across runs so that runs compare).")
    variants: tuple[str, ...] = option(("pos", "neg", "random"), "Variants trained on; ('pos',) with format+answer = plain GRPO.")
    batch_by_example: bool = option(
        False,
        "GRPO batches hold whole examples: an example's variants (pos, neg, random of one document) are prompts of one "
        "step, side by side, so every step contrasts masked evidence with a masked irrelevant part on the same input. "
        "prompts_per_step must then be a multiple of the number of variants.",
    )
    variant_repeats: tuple[int, ...] | None = option(
        None,
        "One integer per entry of variants: how often each row of that variant appears in the GRPO data (default all 1). "
        "E.g. [1, 2, 1] with variants [pos, neg, random] makes half the GRPO prompts counterfactual.",
    )
    rewards: tuple[str, ...] = option(("format", "answer", "grounding"), "Reward functions by name (registry or 'pkg.mod:fn').")
    reward_weights: tuple[float, ...] | None = option(None, "One weight per reward (default: all 1, as the paper's unweighted sum).")
    sft_docs: int = option(1500, "Documents for the SFT stage.")
    sft_epochs: float = option(3.0, "SFT epochs (0 skips SFT: the model is used as given).")
    sft_lr: float = option(3e-3, "SFT learning rate (tiny model; use ~2e-5 for real models).")
    sft_batch_size: int = option(32, "SFT batch size.")
    sft_abstain_share: float = option(
        0.05,
        "Share of 'neg' examples (with the abstention target) kept in SFT: enough that GRPO's groups sample some "
        "abstentions, few enough that SFT does not already abstain on most 'neg' inputs (session 15: 1.5% gave 0%, "
        "5% gave 21% with the answer weighted).",
    )
    sft_hallucinate_share: float = option(
        0.0,
        "Image modality: share of 'neg' examples kept in SFT with a made-up answer instead of the abstention (the "
        "masked square's box and a palette colour drawn at random): the SFT model that usually hallucinates on a "
        "masked square, for DeFacto GRPO to correct. Pair it with sft_notice_share. Beside the <bbox>[]</bbox> "
        "abstention rows (sft_abstain_share) the tiny VLM learned 'any masked square: abstain ~6%', not tied to the "
        "asked cell, and GRPO spread that to 'random' (bench/results/defacto.md, session 21).",
    )
    sft_notice_share: float = option(
        0.0,
        "Image modality: share of 'neg' examples kept in SFT that cite the masked square's box, then read it as empty "
        "and abstain (<think>the square is empty.</think><answer>unknown</answer>). The choice between 'empty' and a "
        "colour is made where the model reads the asked square, so this abstention is tied to the asked cell; beside "
        "sft_hallucinate_share it is sampled about notice / (notice + hallucinate) of the time on 'neg' and almost "
        "never elsewhere (bench/results/defacto.md, session 21).",
    )
    sft_answer_weight: float = option(
        14.0,
        "SFT loss weight of the answer value's tokens (between <answer> and </answer>) against 1 for every other "
        "completion token, as a weighted token mean. The answer is the one token of ~14 that needs the document, so "
        "at 1 a tiny model settles on the class prior; 14 makes it read (bench/results/defacto.md, session 15).",
    )
    sft_evidence_weight: float = option(
        1.0,
        "SFT loss weight of the cited evidence, as sft_answer_weight: the fact numbers between <evidence> and "
        "</evidence> (in layout 'people' the fact number is where the asked name must be matched), or with modality "
        "image the box between <bbox> and </bbox> (its first token is where the model decides to abstain).",
    )
    sft_think_weight: float = option(
        1.0,
        "Image modality: SFT loss weight of the <think> span's tokens, as sft_answer_weight. The picture task's "
        "completion names the colour in <think> before <answer> copies it, so the colour token there is the one that "
        "needs the picture.",
    )
    sft_weight_abstentions: bool = option(
        False,
        "Weight the abstention rows' answer and evidence ('neg': 'unknown') by sft_answer_weight / "
        "sft_evidence_weight too. Off: only answerable rows are weighted, so the few abstention rows do not make SFT "
        "abstain on every 'neg' input (which would leave DeFacto GRPO nothing to show).",
    )
    num_generations: int = option(8, "Completions per prompt (the GRPO group).")
    prompts_per_step: int = option(8, "Prompts per optimizer step (batch = prompts × generations completions).")
    max_completion_length: int = option(40, "Longest completion, in tokens.")
    temperature: float = option(1.0, "Sampling temperature of the rollouts.")
    learning_rate: float = option(2e-4, "GRPO learning rate (tiny model; use ~1e-6 for 7B models as the paper).")
    beta: float = option(0.0, "KL coefficient to the reference model (TRL's default 0: no reference model).")
    loss_type: str = option("dapo", "TRL loss aggregation: grpo, dapo, dr_grpo, bnpo, ...")
    use_vllm: bool = option(False, "Generate with vLLM (GPU only).")
    eval_max_new_tokens: int = option(48, "Generation length in evaluation.")
    prompt_format: str = prompt_format_option()
    grpo: dict[str, Any] = trl_passthrough("grpo")
    sft: dict[str, Any] = trl_passthrough("sft")
    modality: str = option(
        "text",
        "text: the grounded-QA documents and a causal LM; image: the synthetic picture task (rlcf.envs.vision.grounded_images) "
        "and a vision-language model ('tiny' builds a tiny Qwen3-VL, see tiny.vision_family), rewards reading <bbox> boxes.",
    )
    facts_per_doc: int = option(4, "Text modality: facts per document (one or two are evidence, the rest distractors).")
    layout: str = option(
        "profile",
        "Text modality: 'profile' (one person's attributes in a fixed order; the tiny model learns to read it) or "
        "'people' (facts about several people, shuffled; needs name matching, for real models) - see rlcf.envs.text.grounded_qa.",
    )
    two_fact_share: float | None = option(
        None, "Text modality, layout 'people': share of questions that need two facts ('do a and b have the same …?'); default 0.2 (0 for 'profile')."
    )
    mask_unit: str = option("fact", "Text modality: what a mask hides, 'fact' (the whole fact) or 'value' (its value, keeping its subject).")
    image_size: int = option(56, "Image modality: picture side in pixels (a multiple of 28).")

    def __post_init__(self) -> None:
        from rlcf.reward_fns.defacto import VARIANTS

        self.check_llm_fields(("train_docs", "eval_docs", "sft_docs", "num_generations", "prompts_per_step", "max_completion_length", "sft_batch_size"))
        bad = [v for v in self.variants if v not in VARIANTS]
        require(not bad and len(self.variants) > 0, "variants", f"must be a non-empty subset of {', '.join(VARIANTS)}, got {list(self.variants)}")
        require(
            not self.batch_by_example or self.prompts_per_step % len(self.variants) == 0,
            "prompts_per_step",
            f"with batch_by_example each step takes whole examples of {len(self.variants)} variants; use a multiple of "
            f"{len(self.variants)}, got {self.prompts_per_step}",
        )
        require(
            not (self.batch_by_example and self.variant_repeats),
            "variant_repeats",
            "cannot be combined with batch_by_example (an example's variants are taken together, once each)",
        )
        require(
            self.variant_repeats is None or (len(self.variant_repeats) == len(self.variants) and all(n >= 1 for n in self.variant_repeats)),
            "variant_repeats",
            f"needs one integer >= 1 per variant ({', '.join(self.variants)}), got {self.variant_repeats}",
        )
        require(0.0 <= self.sft_abstain_share <= 1.0, "sft_abstain_share", f"must be in [0, 1], got {self.sft_abstain_share}")
        for name in ("sft_hallucinate_share", "sft_notice_share"):
            require(0.0 <= getattr(self, name) <= 1.0, name, f"must be in [0, 1], got {getattr(self, name)}")
            require(getattr(self, name) == 0 or self.modality == "image", name, "is for modality image (the picture task); set it to 0 for the text task")
        neg_shares = self.sft_abstain_share + self.sft_hallucinate_share + self.sft_notice_share
        require(
            neg_shares <= 1.0 + 1e-9,
            "sft_hallucinate_share",
            f"sft_abstain_share + sft_hallucinate_share + sft_notice_share are shares of the 'neg' examples and must sum to at most 1, "
            f"got {self.sft_abstain_share} + {self.sft_hallucinate_share} + {self.sft_notice_share}",
        )
        require(self.sft_evidence_weight > 0, "sft_evidence_weight", f"must be > 0 (1 = plain token mean), got {self.sft_evidence_weight}")
        require(self.modality in ("text", "image"), "modality", f"must be text or image, got {self.modality!r}")
        require(self.sft_think_weight > 0, "sft_think_weight", f"must be > 0 (1 = plain token mean), got {self.sft_think_weight}")
        require(self.layout in ("people", "profile"), "layout", f"must be people or profile, got {self.layout!r}")
        if self.two_fact_share is None:
            self.two_fact_share = 0.2 if self.layout == "people" else 0.0
        require(0.0 <= self.two_fact_share <= 1.0, "two_fact_share", f"must be in [0, 1], got {self.two_fact_share}")
        require(
            self.layout == "people" or self.two_fact_share == 0,
            "two_fact_share",
            "must be 0 with layout 'profile' (a profile asks one-fact questions); set two_fact_share: 0 or layout: people",
        )
        if self.layout == "people":
            require(self.facts_per_doc >= 3, "facts_per_doc", f"must be >= 3 (up to two evidence facts plus a distractor), got {self.facts_per_doc}")
        else:
            require(2 <= self.facts_per_doc <= 4, "facts_per_doc", f"must be in [2, 4] with layout 'profile' (one fact per attribute), got {self.facts_per_doc}")
        require(self.mask_unit in ("fact", "value"), "mask_unit", f"must be fact or value, got {self.mask_unit!r}")
        require(self.image_size % 28 == 0, "image_size", f"must be a multiple of 28 (the Qwen-VL merged patch: 14-px patches, 2 x 2), got {self.image_size}")


def validate_rows(rows: list[dict[str, Any]], where: str = "dataset") -> None:
    """Refuse rows the DeFacto rewards cannot score, before any training: names the row and the fix."""
    from rlcf.errors import UsageError
    from rlcf.reward_fns.defacto import VARIANTS

    for i, row in enumerate(rows):
        for col in ("prompt", "variant", "solution"):
            if row.get(col) in (None, ""):
                raise UsageError(f"{where} row {i} has no '{col}'; DeFacto rows need prompt, variant, solution, evidence, non_evidence")
        if row["variant"] not in VARIANTS:
            raise UsageError(f"{where} row {i}: variant must be one of {', '.join(VARIANTS)}, got {row['variant']!r}")
        if not row.get("evidence"):
            raise UsageError(
                f"{where} row {i} ({row['variant']}) has no evidence regions; every example needs the regions its answer "
                "rests on in the 'evidence' column (build rows with rlcf.envs.variants)"
            )


def user_rows(config: DeFactoConfig, split: str) -> list[dict[str, Any]]:
    """``config.data``'s train or eval split, checked: every row scorable by the DeFacto rewards; with modality image
    an ``image`` per row; a text prompt of an image row becomes the user turn beside the image."""
    from rlcf.algos.llm_trainer import load_user_rows
    from rlcf.errors import UsageError

    name = config.train_split if split == "train" else config.eval_split
    rows = load_user_rows(config.data, name, "train_split" if split == "train" else "eval_split")
    where = f"dataset {config.data!r} [{name}]"
    if not rows:
        raise UsageError(f"{where} has no rows")
    for i, row in enumerate(rows):
        if row.get("prompt") in (None, ""):
            raise UsageError(f"{where} row {i} has no 'prompt'; DeFacto rows need prompt, variant, solution, evidence, non_evidence")
        if config.modality == "image":
            if row.get("image") is None:
                raise UsageError(f"{where} row {i} has no 'image'; image rows need an image column (modality: image)")
            if isinstance(row["image"], str):  # a path, relative to the dataset folder (jsonl rows)
                from PIL import Image

                path = Path(config.data) / row["image"] if not Path(row["image"]).is_absolute() else Path(row["image"])
                if not path.is_file():
                    raise UsageError(f"{where} row {i}: image file {str(path)!r} does not exist")
                row["image"] = Image.open(path).convert("RGB")
            if isinstance(row["prompt"], str):
                row["prompt"] = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": row["prompt"]}]}]
        elif not isinstance(row.get("prompt"), str):
            raise UsageError(f"{where} row {i}: a text row's prompt must be a string, got {type(row.get('prompt')).__name__}")
    validate_rows(rows, where)
    return rows


def task_rows(config: DeFactoConfig, split: str, count: int, seed: int) -> list[dict[str, Any]]:
    """The variant rows of ``split``: ``config.data``'s (its first ``3 * count`` rows: ``count`` documents' worth),
    or the embedded task's for ``config.modality``."""
    if config.data != "embedded":
        return user_rows(config, split)[: 3 * count]
    if config.modality == "image":
        from rlcf.envs.vision.grounded_images import GroundedImageConfig, grounded_image_rows

        return grounded_image_rows(split, count, seed=seed, config=GroundedImageConfig(size=config.image_size))
    from rlcf.envs.text.grounded_qa import grounded_qa_rows

    return grounded_qa_rows(split, count, seed=seed, config=qa_config(config))


def qa_config(config: DeFactoConfig) -> Any:
    from rlcf.envs.text.grounded_qa import GroundedQAConfig

    return GroundedQAConfig(
        facts_per_doc=config.facts_per_doc, two_fact_share=config.two_fact_share, mask_unit=config.mask_unit, layout=config.layout
    )


def load_for(config: DeFactoConfig, path: str | Path, device: Any = None) -> tuple[Any, Any]:
    """``(model, processing class)``: a causal LM and its tokenizer, or a VLM and its processor."""
    from rlcf.algos.llm_common import load_model, load_vlm

    return load_vlm(path, device) if config.modality == "image" else load_model(path, device)


def _sft_rows(config: DeFactoConfig, seed: int) -> list[dict[str, Any]]:
    from rlcf.envs.text.grounded_qa import completion_for, grounded_qa_rows

    if config.data != "embedded":
        from rlcf.errors import UsageError

        rows = user_rows(config, "train")[: 3 * config.sft_docs]
        if any(not r.get("completion") for r in rows):
            raise UsageError(f"dataset {config.data!r}: SFT needs a 'completion' column (the target text) in every row; add it or set sft_epochs: 0")
        return rows

    rng = np.random.default_rng([seed, 11])
    made_up = np.random.default_rng([seed, 12])  # its own stream: sft_hallucinate_share 0 leaves the rows as they were
    out = []
    if config.modality == "image":  # the completion is the assistant turn after the picture-and-question user turn
        from rlcf.envs.vision.grounded_images import COLORS, IMAGE_EMPTY, GroundedImageConfig, grounded_image_rows, image_completion_for

        rows = grounded_image_rows("train", config.sft_docs, seed=seed + 1, config=GroundedImageConfig(size=config.image_size))
        target = lambda row, reads=None: [{"role": "assistant", "content": image_completion_for(row, reads=reads)}]  # noqa: E731
    else:
        rows = grounded_qa_rows("train", config.sft_docs, seed=seed + 1, config=qa_config(config))
        target = completion_for
    for row in rows:
        if row["variant"] == "neg":
            u = rng.random()
            if u >= config.sft_abstain_share + config.sft_hallucinate_share + config.sft_notice_share:
                continue
            if u >= config.sft_abstain_share + config.sft_hallucinate_share:  # cites the masked square, reads it as empty
                out.append({**row, "completion": target(row, reads=IMAGE_EMPTY)})
                continue
            if u >= config.sft_abstain_share:  # a hallucination: the masked square's box, a colour it cannot show
                out.append({**row, "completion": target(row, reads=str(made_up.choice(list(COLORS))))})
                continue
        out.append({**row, "completion": target(row)})
    return out


@algos.register("defacto", help="DeFacto-style counterfactual GRPO on TRL (pos / neg / random variants; format, answer, grounding)")
class DeFacto(LLMAlgorithm, Algorithm):
    """The stages are :class:`rlcf.algos.llm_trainer.LLMAlgorithm`'s; this says what DeFacto's are made of."""

    Config = DeFactoConfig

    @classmethod
    def eval_data(cls, config: DeFactoConfig) -> list[dict[str, Any]]:
        rows = task_rows(config, "eval", config.eval_docs, seed=config.data_seed)
        validate_rows(rows, "evaluation data")
        return rows

    @classmethod
    def train_data(cls, config: DeFactoConfig) -> list[dict[str, Any]]:
        repeats = dict(zip(config.variants, config.variant_repeats or [1] * len(config.variants)))
        rows = [r for r in task_rows(config, "train", config.train_docs, seed=config.data_seed + 1000) if r["variant"] in repeats]
        rows = [r for r in rows for _ in range(repeats[r["variant"]])]
        validate_rows(rows, "GRPO training data")
        return rows

    @classmethod
    def sft_data(cls, config: DeFactoConfig) -> dict[str, Any]:
        if config.modality == "image":
            from rlcf.algos.llm_common import load_vlm
            from rlcf.envs.vision.grounded_images import IMAGE_ABSTAIN_REASON, GroundedImageConfig

            abstain = GroundedImageConfig().abstain
            return {
                "rows": _sft_rows(config, config.data_seed),
                # The colour is first written inside <think> ("the square is red."); <answer> then copies it, so
                # under teacher forcing only the <think> span's colour needs the picture (sft_think_weight).
                "tag_weights": {"answer": config.sft_answer_weight, "think": config.sft_think_weight, "bbox": config.sft_evidence_weight},
                "unweighted_contents": () if config.sft_weight_abstentions else (abstain, IMAGE_ABSTAIN_REASON),
                "load": load_vlm,
            }
        return {
            "rows": _sft_rows(config, config.data_seed),
            "tag_weights": {"answer": config.sft_answer_weight, "evidence": config.sft_evidence_weight},
            "unweighted_contents": () if config.sft_weight_abstentions else (qa_config(config).abstain,),
        }

    @classmethod
    def instruction(cls, config: DeFactoConfig) -> str:
        abstain = qa_config(config).abstain
        return (
            "Answer the question from the numbered facts. Write <evidence>the numbers of the facts you use</evidence>"
            f"<think>your reasoning</think><answer>the answer</answer>. If the fact you need is masked, write {abstain} "
            "as the evidence and as the answer."
        )

    @classmethod
    def tiny_corpus(cls, config: DeFactoConfig, train_rows: list[dict[str, Any]]) -> list[str]:
        if config.data != "embedded":
            texts = [r["prompt"] if isinstance(r["prompt"], str) else json.dumps(r["prompt"]) for r in train_rows]
            return [t + str(r.get("completion") or r["solution"]) for t, r in zip(texts, train_rows)]
        rows = task_rows(config, "train", 200 if config.modality == "image" else 400, seed=config.data_seed + 2000)
        if config.modality == "image":
            from rlcf.envs.vision.grounded_images import image_completion_for

            return [r["prompt"][0]["content"][1]["text"] + image_completion_for(r) for r in rows]
        from rlcf.envs.text.grounded_qa import completion_for

        return [r["prompt"] + completion_for(r) for r in rows]

    @classmethod
    def build_tiny(cls, config: DeFactoConfig, path: Path, corpus: list[str], seed: int) -> None:
        from rlcf.algos.llm_common import build_tiny_lm, build_tiny_vlm

        if config.modality == "image":
            build_tiny_vlm(path, corpus, config.tiny, image_size=config.image_size, seed=seed)
        else:
            build_tiny_lm(path, corpus, config.tiny, seed=seed, chat=config.prompt_format == "chat")

    @classmethod
    def load(cls, config: DeFactoConfig, path: str | Path, device: Any = None) -> tuple[Any, Any]:
        return load_for(config, path, device)

    @classmethod
    def evaluate(cls, config: DeFactoConfig, model: Any, processing_class: Any, rows: list[dict[str, Any]], completions: Any = None) -> dict[str, Any]:
        from rlcf.eval.llm import evaluate_splits

        return evaluate_splits(model, processing_class, rows, config.eval_max_new_tokens, completions=completions)

    @classmethod
    def rollout_batch(cls, config: DeFactoConfig) -> int:
        return config.prompts_per_step * config.num_generations

    @classmethod
    def make_trainer(cls, config: DeFactoConfig, model: Any, processing_class: Any, args: Any, train_rows: list[dict[str, Any]],
                     rewards: Any, run: Any) -> Any:
        from datasets import Dataset
        from trl import GRPOTrainer

        tally = VariantRewardTally()  # per-variant reward means beside TRL's batch means
        trainer_cls = _example_batched_trainer(train_rows) if config.batch_by_example else GRPOTrainer
        return trainer_cls(
            model=model,
            reward_funcs=[tally.wrap(fn, name) for fn, name in zip(rewards.functions, rewards.names)],
            args=args,
            train_dataset=Dataset.from_list(train_rows),
            processing_class=processing_class,
            callbacks=trainer_callbacks(run, "grpo", tally),
        )

    @classmethod
    def result_name(cls, config: DeFactoConfig) -> str:
        return "defacto" if set(config.variants) != {"pos"} else "grpo"

    @classmethod
    def check_actors(cls, config: DeFactoConfig) -> None:
        from rlcf.errors import UsageError

        if config.modality != "text":
            raise UsageError("Ray rollout actors generate text; evaluate an image-modality run without --actors")


def _example_batched_trainer(rows: list[dict[str, Any]]) -> Any:
    """``GRPOTrainer`` whose batches hold whole examples: the rows sharing a ``uid`` (consecutive, one per
    variant), through :class:`rlcf.algos.llm_trainer.GroupRepeatSampler`."""
    from trl import GRPOTrainer

    from rlcf.algos.llm_trainer import GroupRepeatSampler
    from rlcf.errors import UsageError

    groups: list[list[int]] = []
    for i, row in enumerate(rows):
        uid = row.get("uid")
        if uid is None:
            raise UsageError(f"batch_by_example needs a 'uid' column naming each row's example; row {i} has none")
        if groups and rows[groups[-1][0]].get("uid") == uid:
            groups[-1].append(i)
        else:
            groups.append([i])

    class ExampleBatchedGRPOTrainer(GRPOTrainer):
        def _get_train_sampler(self, dataset: Any = None) -> Any:
            return GroupRepeatSampler(
                groups, self.num_generations, self.args.generation_batch_size // self.num_generations,
                repeat_count=self.num_iterations * self.args.steps_per_generation, shuffle=self.shuffle_dataset,
                seed=self.args.seed, what="example",
            )

    return ExampleBatchedGRPOTrainer


class VariantRewardTally:
    """Per-variant means of every reward between two logging steps (TRL logs only the batch mean, which hides
    whether a reward rises on ``neg`` while falling on ``random``). :meth:`wrap` keeps each function's name.

    Under several processes each scores its own completions; :meth:`flush` sums them over all processes (every
    process must call it at the same logging step, as the trainer's ``on_log`` does), so the logged means and
    counts cover the whole batch, not rank 0's share.
    """

    def __init__(self) -> None:
        self.sums: dict[str, list[float]] = {}

    def wrap(self, fn: Any, name: str) -> Any:
        import functools

        @functools.wraps(fn)
        def tallied(*args: Any, **kwargs: Any) -> Any:
            values = fn(*args, **kwargs)
            for variant, value in zip(kwargs.get("variant") or [], values):
                if value is not None:
                    acc = self.sums.setdefault(f"rewards/{name}/{variant}", [0.0, 0])
                    acc[0] += float(value)
                    acc[1] += 1
            return values

        return tallied

    def flush(self) -> dict[str, float]:
        """``rewards/<name>/<variant>/mean`` and ``…/count`` since the last flush, over all processes."""
        import torch.distributed as dist

        parts = [self.sums]
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            parts = [None] * dist.get_world_size()
            dist.all_gather_object(parts, self.sums)
        self.sums = {}
        total: dict[str, list[float]] = {}
        for part in parts:
            for key, (value, count) in (part or {}).items():
                acc = total.setdefault(key, [0.0, 0])
                acc[0] += value
                acc[1] += count
        out: dict[str, float] = {}
        for key, (value, count) in total.items():
            if count:
                out[f"{key}/mean"], out[f"{key}/count"] = value / count, float(count)
        return out
