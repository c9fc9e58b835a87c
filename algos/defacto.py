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
   the abstention rows stay unweighted (``sft_weight_abstentions``);
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
from rlcf.algos.llm_trainer import LLMConfigChecks
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
    train_docs: int = option(400, "Documents for GRPO (each gives one row per variant).")
    eval_docs: int = option(60, "Held-out documents for evaluation (never in training).")
    data_seed: int = option(0, "Seed of the generated task data (fixed across runs so that runs compare).")
    variants: tuple[str, ...] = option(("pos", "neg", "random"), "Variants trained on; ('pos',) with format+answer = plain GRPO.")
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
    sft_answer_weight: float = option(
        14.0,
        "SFT loss weight of the answer value's tokens (between <answer> and </answer>) against 1 for every other "
        "completion token, as a weighted token mean. The answer is the one token of ~14 that needs the document, so "
        "at 1 a tiny model settles on the class prior; 14 makes it read (bench/results/defacto.md, session 15).",
    )
    sft_evidence_weight: float = option(
        1.0,
        "SFT loss weight of the cited fact numbers (between <evidence> and </evidence>), as sft_answer_weight: in "
        "layout 'people' the fact number is where the asked name must be matched.",
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
    grpo: dict[str, Any] = option(
        default_factory=dict,
        help="Any other trl.GRPOConfig field, passed through (e.g. gradient_accumulation_steps, num_iterations, "
        "vllm_mode, report_to: [wandb]); checked against TRL before training. Fields rlcf sets are refused with their rlcf name.",
    )
    sft: dict[str, Any] = option(
        default_factory=dict, help="Any other trl.SFTConfig field for the SFT stage, passed through and checked the same way."
    )
    modality: str = option(
        "text",
        "text: the grounded-QA documents and a causal LM; image: the synthetic picture task (rlcf.envs.grounded_images) "
        "and a vision-language model ('tiny' builds a tiny Qwen2-VL), rewards reading <bbox> boxes.",
    )
    facts_per_doc: int = option(4, "Text modality: facts per document (one or two are evidence, the rest distractors).")
    layout: str = option(
        "profile",
        "Text modality: 'profile' (one person's attributes in a fixed order; the tiny model learns to read it) or "
        "'people' (facts about several people, shuffled; needs name matching, for real models) - see rlcf.envs.grounded_qa.",
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
        require(0.0 <= self.sft_abstain_share <= 1.0, "sft_abstain_share", f"must be in [0, 1], got {self.sft_abstain_share}")
        require(self.sft_evidence_weight > 0, "sft_evidence_weight", f"must be > 0 (1 = plain token mean), got {self.sft_evidence_weight}")
        require(self.modality in ("text", "image"), "modality", f"must be text or image, got {self.modality!r}")
        require(
            self.modality == "text" or self.sft_epochs == 0,
            "sft_epochs",
            "the SFT stage is text-only so far; with modality image set sft_epochs: 0 (GRPO starts from the model as given)",
        )
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
        require(self.image_size % 28 == 0, "image_size", f"must be a multiple of 28 (Qwen2-VL's merged patch), got {self.image_size}")


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


def task_rows(config: DeFactoConfig, split: str, count: int, seed: int) -> list[dict[str, Any]]:
    """The embedded task's variant rows for ``config.modality``."""
    if config.modality == "image":
        from rlcf.envs.grounded_images import GroundedImageConfig, grounded_image_rows

        return grounded_image_rows(split, count, seed=seed, config=GroundedImageConfig(size=config.image_size))
    from rlcf.envs.grounded_qa import grounded_qa_rows

    return grounded_qa_rows(split, count, seed=seed, config=qa_config(config))


def qa_config(config: DeFactoConfig) -> Any:
    from rlcf.envs.grounded_qa import GroundedQAConfig

    return GroundedQAConfig(
        facts_per_doc=config.facts_per_doc, two_fact_share=config.two_fact_share, mask_unit=config.mask_unit, layout=config.layout
    )


def load_for(config: DeFactoConfig, path: str | Path, device: Any = None) -> tuple[Any, Any]:
    """``(model, processing class)``: a causal LM and its tokenizer, or a VLM and its processor."""
    from rlcf.algos.llm_common import load_model, load_vlm

    return load_vlm(path, device) if config.modality == "image" else load_model(path, device)


def _sft_rows(config: DeFactoConfig, seed: int) -> list[dict[str, Any]]:
    from rlcf.envs.grounded_qa import completion_for, grounded_qa_rows

    rng = np.random.default_rng([seed, 11])
    out = []
    for row in grounded_qa_rows("train", config.sft_docs, seed=seed + 1, config=qa_config(config)):
        if row["variant"] == "neg" and rng.random() >= config.sft_abstain_share:
            continue
        out.append({**row, "completion": completion_for(row)})
    return out


@algos.register("defacto", help="DeFacto-style counterfactual GRPO on TRL (pos / neg / random variants; format, answer, grounding)")
class DeFacto(Algorithm):
    Config = DeFactoConfig

    @classmethod
    def fit(cls, experiment: Any, run: Any, resume: bool = False) -> dict[str, Any]:
        from datasets import Dataset
        from trl import GRPOTrainer

        from rlcf.algos.llm_common import build_tiny_lm, build_tiny_vlm, run_sft
        from rlcf.algos.llm_trainer import grpo_arguments, quiet_trainer, save_final, sft_config, train_resumable, trainer_callbacks
        from rlcf.atomic import atomic_write_text
        from rlcf.device import resolve_device
        from rlcf.eval.llm import evaluate_splits, format_split_table
        from rlcf.reward_set import RewardSet
        from rlcf.seeding import seed_everything

        from rlcf.runtime.distributed import barrier, fit_with_torchrun, is_lead, launched_by_torchrun, wants_workers

        c, rc = experiment.config, experiment.run
        if wants_workers(rc) > 1 and not launched_by_torchrun():
            return fit_with_torchrun(cls, experiment, run, resume)
        lead = is_lead()  # under torchrun: rank 0 builds, evaluates, logs and writes; every rank trains
        device = resolve_device(rc.device)
        gpu = device.type == "cuda"
        seed_everything(rc.seed)
        rewards = RewardSet(list(c.rewards), list(c.reward_weights) if c.reward_weights is not None else None)
        eval_rows = task_rows(c, "eval", c.eval_docs, seed=c.data_seed)
        train_rows = [r for r in task_rows(c, "train", c.train_docs, seed=c.data_seed + 1000) if r["variant"] in c.variants]
        validate_rows(train_rows, "GRPO training data")
        validate_rows(eval_rows, "evaluation data")
        # TRL's configs first: a bad pass-through field fails here, before any stage trains.
        ckpt_dir = run.path / "checkpoints" / "grpo"
        args = grpo_arguments(c, rc, ckpt_dir, c.prompts_per_step * c.num_generations, rewards.weights, gpu)
        sft_args = sft_config(c, rc, run.path / "sft_tmp", gpu) if c.sft_epochs > 0 else None

        # Stage 1: the model.
        model_path: str | Path = c.model
        if c.model == "tiny":
            model_path = run.path / "base_model"
            if lead and not (model_path / "config.json").exists():
                if c.modality == "image":
                    from rlcf.envs.grounded_images import image_completion_for

                    rows = task_rows(c, "train", 200, seed=c.data_seed + 2000)
                    corpus = [r["prompt"][0]["content"][1]["text"] + image_completion_for(r) for r in rows]
                    build_tiny_vlm(model_path, corpus, c.tiny, image_size=c.image_size, seed=rc.seed)
                else:
                    from rlcf.envs.grounded_qa import completion_for

                    corpus = [r["prompt"] + completion_for(r) for r in task_rows(c, "train", 400, seed=c.data_seed + 2000)]
                    build_tiny_lm(model_path, corpus, c.tiny, seed=rc.seed)
        barrier()
        # Stage 2: SFT.
        if sft_args is not None:
            sft_path = run.path / "sft_model"
            if not (sft_path / "config.json").exists():
                weights = {"answer": c.sft_answer_weight, "evidence": c.sft_evidence_weight}
                run_sft(model_path, _sft_rows(c, c.data_seed), sft_path, sft_args, tag_weights=weights,
                        unweighted_contents=() if c.sft_weight_abstentions else (qa_config(c).abstain,),
                        callbacks=trainer_callbacks(run, "sft", prefix="sft"))
            model_path = sft_path
        results: dict[str, Any] = {}
        model, tokenizer = load_for(c, model_path, device)
        if lead:
            before = evaluate_splits(model, tokenizer, eval_rows, c.eval_max_new_tokens)
            results["sft" if c.sft_epochs > 0 else "base"] = before
            if not resume:
                run.log({f"eval/before/{s}/{k}": v for s, sc in before.items() for k, v in sc.as_dict().items()}, 0)

        # Stage 3: GRPO on TRL.
        tally = VariantRewardTally()
        trainer = quiet_trainer(GRPOTrainer(
            model=model,
            reward_funcs=[tally.wrap(fn, name) for fn, name in zip(rewards.functions, rewards.names)],
            args=args,
            train_dataset=Dataset.from_list(train_rows),
            processing_class=tokenizer,
            callbacks=trainer_callbacks(run, "grpo", tally),
        ))
        train_resumable(trainer, ckpt_dir, resume, "GRPO")
        if not lead:
            return {}
        model = save_final(run, trainer, tokenizer)
        after = evaluate_splits(model, tokenizer, eval_rows, c.eval_max_new_tokens)
        results["defacto" if set(c.variants) != {"pos"} else "grpo"] = after
        final = {f"eval/{s}/{k}": v for s, sc in after.items() for k, v in sc.as_dict().items()}
        run.log(final, rc.total_steps)
        table = format_split_table(results)
        atomic_write_text(
            run.path / "eval.json",
            json.dumps({name: {s: sc.as_dict() | {"rows": sc.rows} for s, sc in per.items()} for name, per in results.items()}, indent=2),
        )
        log.info("per-split scores:\n%s", table)
        run.results = results  # programmatic callers (bench, tests) read the before/after scores here
        run.close()
        return final

    @classmethod
    def evaluate_run(cls, run: Any, actors: int = 0) -> dict[str, Any]:
        """Per-split scores of a run's final model (or, before it exists, its newest GRPO checkpoint);
        ``actors`` > 0 generates on that many Ray rollout actors (text modality)."""
        from rlcf.algos.llm_trainer import final_or_checkpoint
        from rlcf.device import resolve_device
        from rlcf.errors import UsageError
        from rlcf.eval.llm import evaluate_splits

        c = run.experiment.config
        folder = final_or_checkpoint(run, "GRPO")
        rows = task_rows(c, "eval", c.eval_docs, seed=c.data_seed)
        if actors > 0:
            if c.modality != "text":
                raise UsageError("Ray rollout actors generate text; evaluate an image-modality run without --actors")
            from rlcf.eval.llm import greedy_with_actors

            completions = greedy_with_actors(folder, [r["prompt"] for r in rows], c.eval_max_new_tokens, actors)
            return evaluate_splits(None, None, rows, c.eval_max_new_tokens, completions=completions)
        model, tokenizer = load_for(c, folder, resolve_device(run.experiment.run.device))
        return evaluate_splits(model, tokenizer, rows, c.eval_max_new_tokens)


class VariantRewardTally:
    """Per-variant means of every reward between two logging steps (TRL logs only the batch mean, which hides
    whether a reward rises on ``neg`` while falling on ``random``). :meth:`wrap` keeps each function's name."""

    def __init__(self) -> None:
        self.sums: dict[str, list[float]] = {}

    def wrap(self, fn: Any, name: str) -> Any:
        import functools

        @functools.wraps(fn)
        def tallied(*args: Any, **kwargs: Any) -> Any:
            values = fn(*args, **kwargs)
            for variant, value in zip(kwargs.get("variant") or [], values):
                if value is not None:
                    acc = self.sums.setdefault(f"rewards/{name}/{variant}/mean", [0.0, 0])
                    acc[0] += float(value)
                    acc[1] += 1
            return values

        return tallied

    def flush(self) -> dict[str, float]:
        out = {key: total / count for key, (total, count) in self.sums.items() if count}
        self.sums = {}
        return out
