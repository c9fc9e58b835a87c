"""Pieces the LLM trainers share: a tiny causal LM with a locally trained tokenizer, model loading, and the
SFT stage on TRL's ``SFTTrainer``.

No machine here reaches a model hub, so the embedded default builds its model: a byte-level BPE tokenizer
trained on the task's own text (tags such as ``<answer>`` are single, ordinary tokens, so TRL's decoding with
``skip_special_tokens=True`` keeps them) and a randomly initialised Qwen2- or Llama-architecture model of a few
hundred thousand parameters. Both are saved with ``save_pretrained`` and loaded back with
``from_pretrained`` — the same code path a user takes with a hub id or a local checkpoint.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rlcf.algos.hf_quiet import quiet_trainer, quiet_transformers
from rlcf.config import option, require

__all__ = [
    "ImageQwen2VLProcessor",
    "TinyLMConfig",
    "build_tiny_lm",
    "build_tiny_vlm",
    "load_model",
    "load_tokenizer",
    "load_vlm",
    "run_sft",
    "sft_arguments",
    "span_weights",
]

TAGS = ("<evidence>", "</evidence>", "<bbox>", "</bbox>", "<think>", "</think>", "<answer>", "</answer>")


@dataclass
class TinyLMConfig:
    """Shape of the embedded tiny model."""

    architecture: str = option("qwen2", "qwen2 or llama.")
    hidden_size: int = option(64, "Model width.")
    layers: int = option(2, "Transformer blocks.")
    heads: int = option(4, "Attention heads.")
    kv_heads: int = option(2, "Key/value heads (grouped-query attention).")
    intermediate_size: int = option(192, "MLP width.")
    vocab_size: int = option(512, "BPE vocabulary size (including the byte alphabet and the tags).")
    max_positions: int = option(256, "Longest sequence.")
    prefix_space: bool = option(
        False,
        "Tokenizer: read every text piece as if a space preceded it, so a word is the same token at a line start or "
        "after a tag ('<answer>riga' and 'is riga' share 'Ġriga'); copying a word then needs no token-to-token map.",
    )

    vision_family: str = option(
        "qwen3_vl",
        "Image modality: the tiny VLM's family. qwen3_vl (learned absolute positions in the vision tower, height and "
        "width interleaved over the rotary frequencies) learns which picture cell a question asks for; qwen2_vl "
        "(height and width on the slowest rotary frequencies, no absolute positions) did not (bench/results/defacto.md).",
    )
    rope_theta: float | None = option(
        None,
        "Rotary base of the language model. None: the architecture's default for text models; 10 for the tiny VLM, "
        "whose image tokens then differ by a visible angle per row and column (at Qwen's 1e6 a cell apart turns a "
        "32-wide head by under 0.03 rad).",
    )

    def __post_init__(self) -> None:
        require(self.architecture in ("qwen2", "llama"), "architecture", f"must be qwen2 or llama, got {self.architecture!r}")
        require(self.vision_family in ("qwen2_vl", "qwen3_vl"), "vision_family", f"must be qwen2_vl or qwen3_vl, got {self.vision_family!r}")
        require(self.rope_theta is None or self.rope_theta > 1.0, "rope_theta", f"must be above 1, got {self.rope_theta!r}")
        require(self.hidden_size % self.heads == 0, "hidden_size", f"{self.hidden_size} is not divisible by heads={self.heads}")
        require(self.heads % self.kv_heads == 0, "kv_heads", f"heads={self.heads} is not divisible by kv_heads={self.kv_heads}")


def build_tokenizer(corpus: Iterable[str], vocab_size: int, extra_specials: Sequence[str] = (), prefix_space: bool = False) -> Any:
    """A byte-level BPE tokenizer trained on ``corpus``, with the DeFacto tags as single ordinary tokens (and
    ``extra_specials``, e.g. a vision model's image placeholders, as special tokens). With ``prefix_space`` each
    piece between tags is read as if it began with a space (decoding then yields ``"<answer> riga</answer>"``)."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=prefix_space)
    tok.decoder = decoders.ByteLevel()
    specials = ["<|pad|>", "<|endoftext|>", *extra_specials]
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    tok.train_from_iterator(corpus, trainer=trainer)
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in TAGS])
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<|pad|>", eos_token="<|endoftext|>", bos_token=None)


#: The tiny text model's chat template (with ``chat=True``): ChatML turns, as Qwen's instruct models write them, so
#: the chat-formatted path (system instruction, user prompt, assistant completion) runs on CPU as on a real model.
TEXT_CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def _language_model_kwargs(cfg: TinyLMConfig, tokenizer: Any, max_positions: int) -> dict[str, Any]:
    """The language model's shape from ``cfg`` and its special tokens from ``tokenizer`` (EOS doubles as BOS)."""
    return dict(
        vocab_size=len(tokenizer),
        hidden_size=cfg.hidden_size,
        intermediate_size=cfg.intermediate_size,
        num_hidden_layers=cfg.layers,
        num_attention_heads=cfg.heads,
        num_key_value_heads=cfg.kv_heads,
        max_position_embeddings=max_positions,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.eos_token_id,
    )


def build_tiny_lm(out_dir: str | Path, corpus: Sequence[str], config: TinyLMConfig | None = None, seed: int = 0, chat: bool = False) -> Path:
    """Train a tokenizer on ``corpus``, initialise a tiny causal LM, save both to ``out_dir``; returns the path.

    ``chat=True`` gives the tokenizer ChatML's turn markers as special tokens and :data:`TEXT_CHAT_TEMPLATE`, with
    ``<|im_end|>`` as the end of a turn (the model's EOS), like an instruct model."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    from rlcf.atomic import atomic_dir

    cfg = config or TinyLMConfig()
    tokenizer = build_tokenizer(corpus, cfg.vocab_size, extra_specials=("<|im_start|>", "<|im_end|>") if chat else (), prefix_space=cfg.prefix_space)
    if chat:
        tokenizer.chat_template = TEXT_CHAT_TEMPLATE
        tokenizer.eos_token = "<|im_end|>"
    kwargs = _language_model_kwargs(cfg, tokenizer, cfg.max_positions)
    if cfg.rope_theta:
        kwargs["rope_theta"] = cfg.rope_theta
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(Qwen2Config(**kwargs)) if cfg.architecture == "qwen2" else LlamaForCausalLM(LlamaConfig(**kwargs))
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    out = Path(out_dir)

    with quiet_transformers(), atomic_dir(out, overwrite=True) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        _mark_own_tokenizer(Path(tmp))
    return out


#: Key in ``tokenizer_config.json`` of the tiny models: load ``tokenizer.json`` as written. Without it transformers
#: maps a ``qwen2`` model folder to ``Qwen2Tokenizer``, which replaces the saved pre-tokenizer with Qwen2's own
#: (dropping, e.g., ``prefix_space``), so the model would be trained on other tokens than its tokenizer was built for.
OWN_TOKENIZER_KEY = "rlcf_own_tokenizer"


def _mark_own_tokenizer(folder: Path) -> None:
    path = folder / "tokenizer_config.json"
    cfg = json.loads(path.read_text())
    cfg[OWN_TOKENIZER_KEY] = True
    path.write_text(json.dumps(cfg, indent=2))


def load_tokenizer(name_or_path: str | Path) -> Any:
    """The tokenizer of a hub id or folder; a tiny model's own tokenizer (:data:`OWN_TOKENIZER_KEY`) exactly as saved."""
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    config = Path(name_or_path) / "tokenizer_config.json"
    if config.is_file() and json.loads(config.read_text()).get(OWN_TOKENIZER_KEY):
        return PreTrainedTokenizerFast.from_pretrained(str(name_or_path))
    return AutoTokenizer.from_pretrained(str(name_or_path))


# -- the vision-language path ----------------------------------------------------------------------------------------

VISION_SPECIALS = ("<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>")
VLM_CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def _image_processor_class() -> Any:
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    return Qwen2VLImageProcessorPil


#: Vision-language families whose processor rlcf can build without torchvision, and their processor classes.
IMAGE_ONLY_PROCESSORS = {
    "qwen2_vl": "Qwen2VLProcessor",
    "qwen2_5_vl": "Qwen2_5_VLProcessor",
    "qwen3_vl": "Qwen3VLProcessor",
}


def _image_only_processor(model_type: str = "qwen2_vl") -> Any:
    import transformers

    base = getattr(transformers, IMAGE_ONLY_PROCESSORS[model_type])

    class ImageOnlyProcessor(base):  # type: ignore[misc, valid-type]
        """A Qwen-VL processor for images only: no video processor, so it needs no torchvision (which the pinned
        CPU stack lacks). Everything else, chat template and image-token expansion included, is the family's own."""

        def __init__(self, image_processor: Any = None, tokenizer: Any = None, chat_template: str | None = None, **kwargs: Any):
            super().__init__(image_processor, tokenizer, None, chat_template=chat_template, **kwargs)

    ImageOnlyProcessor.__name__ = ImageOnlyProcessor.__qualname__ = f"Image{IMAGE_ONLY_PROCESSORS[model_type]}"
    return ImageOnlyProcessor


def __getattr__(name: str) -> Any:  # ImageQwen2VLProcessor imports transformers only when asked for
    if name == "ImageQwen2VLProcessor":
        return _image_only_processor("qwen2_vl")
    raise AttributeError(name)


#: The tiny VLM's rotary base when ``TinyLMConfig.rope_theta`` is None (see its help).
TINY_VLM_ROPE_THETA = 10.0


def build_tiny_vlm(out_dir: str | Path, corpus: Sequence[str], config: TinyLMConfig | None = None, image_size: int = 56, seed: int = 0) -> Path:
    """A tiny randomly initialised Qwen3-VL or Qwen2-VL (``config.vision_family``; vision tower and language model
    from a config), its tokenizer (trained on ``corpus``, with the Qwen-VL vision placeholders) and image processor
    (14-px patches merged 2 × 2), saved to ``out_dir``."""
    import torch
    import transformers

    from rlcf.atomic import atomic_dir

    cfg = config or TinyLMConfig()
    tokenizer = build_tokenizer(corpus, cfg.vocab_size, VISION_SPECIALS)
    tokenizer.chat_template = VLM_CHAT_TEMPLATE
    tokenizer.eos_token = "<|im_end|>"  # a turn ends there (as in Qwen-VL instruct models): SFT teaches it, generation stops on it
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in VISION_SPECIALS}
    head_dim = cfg.hidden_size // cfg.heads
    theta = cfg.rope_theta or TINY_VLM_ROPE_THETA
    text = _language_model_kwargs(cfg, tokenizer, max(cfg.max_positions, 512))
    vision = dict(patch_size=14, spatial_merge_size=2, temporal_patch_size=2, in_channels=3, num_heads=cfg.heads)
    tokens = dict(
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=True,
    )
    if cfg.vision_family == "qwen3_vl":
        # Interleaved multimodal rotary: height and width take every third frequency, fast ones included; the rest
        # (temporal, and text positions) take the others. The vision tower adds learned absolute positions, one per
        # patch of the picture's grid.
        section = [head_dim // 2 - 2 * (head_dim // 6), head_dim // 6, head_dim // 6]
        text.update(head_dim=head_dim, rope_parameters={"rope_type": "default", "rope_theta": theta, "mrope_section": section, "mrope_interleaved": True})
        grid = image_size // 14
        vision.update(depth=1, hidden_size=cfg.hidden_size, intermediate_size=2 * cfg.hidden_size, out_hidden_size=cfg.hidden_size,
                      num_position_embeddings=max(grid * grid, 16), deepstack_visual_indexes=[])
        config_ = transformers.Qwen3VLConfig(text_config=text, vision_config=vision, **tokens)
        model_class = transformers.Qwen3VLForConditionalGeneration
    else:
        section = [head_dim // 8, (head_dim // 2 - head_dim // 8) // 2]
        section.append(head_dim // 2 - sum(section))  # temporal, height, width parts of head_dim/2, in that order
        text.update(rope_theta=theta, rope_scaling={"type": "mrope", "mrope_section": section})
        vision.update(depth=1, embed_dim=cfg.hidden_size, hidden_size=cfg.hidden_size, mlp_ratio=2)
        config_ = transformers.Qwen2VLConfig(text_config=text, vision_config=vision, bos_token_id=tokenizer.eos_token_id, **tokens)
        model_class = transformers.Qwen2VLForConditionalGeneration
    torch.manual_seed(seed)
    model = model_class(config_)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    pixels = image_size * image_size
    image_processor = _image_processor_class()(min_pixels=pixels, max_pixels=pixels, patch_size=14, merge_size=2, temporal_patch_size=2)
    out = Path(out_dir)

    with quiet_transformers(), atomic_dir(out, overwrite=True) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        image_processor.save_pretrained(tmp)
    return out


def load_vlm(name_or_path: str | Path, device: Any = None) -> tuple[Any, Any]:
    """``(model, processor)`` of a vision-language model from a hub id or a local folder.

    The processor is ``AutoProcessor``'s; where that cannot be built because torchvision is missing (Qwen2-VL's
    processor insists on a video processor, which needs it), a Qwen2-VL-family model gets
    :class:`ImageQwen2VLProcessor` from the same folder's tokenizer and image processor.
    """
    from transformers import AutoConfig, AutoModelForImageTextToText, AutoProcessor, AutoTokenizer, ProcessorMixin

    from rlcf.errors import UsageError

    processor, reason = None, "AutoProcessor found only a tokenizer"
    try:
        found = AutoProcessor.from_pretrained(str(name_or_path))
        processor = found if isinstance(found, ProcessorMixin) else None
    except (AttributeError, ImportError, ValueError, OSError) as exc:
        reason = f"{type(exc).__name__}: {str(exc).strip()[:160]}"
    if processor is None:
        model_type = AutoConfig.from_pretrained(str(name_or_path)).model_type
        if model_type not in IMAGE_ONLY_PROCESSORS:
            raise UsageError(
                f"could not build a processor for the vision-language model '{name_or_path}' ({reason}); without torchvision rlcf "
                f"builds one only for {', '.join(IMAGE_ONLY_PROCESSORS)} models (install torchvision for others)"
            )
        tokenizer = AutoTokenizer.from_pretrained(str(name_or_path))
        image_processor = _image_processor_class().from_pretrained(str(name_or_path))
        processor = _image_only_processor(model_type)(image_processor=image_processor, tokenizer=tokenizer, chat_template=tokenizer.chat_template)
    if processor.tokenizer.pad_token is None:
        processor.tokenizer.pad_token = processor.tokenizer.eos_token

    with quiet_transformers():
        model = AutoModelForImageTextToText.from_pretrained(str(name_or_path))
    if device is not None:
        model.to(device)
    return model, processor


def load_model(name_or_path: str | Path, device: Any = None) -> tuple[Any, Any]:
    """``(model, tokenizer)`` from a hub id or a local folder (``from_pretrained``); pad token set if missing."""
    from transformers import AutoModelForCausalLM

    tokenizer = load_tokenizer(name_or_path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token

    with quiet_transformers():  # no weight-loading bar: rlcf's progress shows the stages
        model = AutoModelForCausalLM.from_pretrained(str(name_or_path))
    if device is not None:
        model.to(device)
    return model, tokenizer


def sft_arguments(out_dir: str | Path, *, epochs: float, lr: float, batch_size: int, seed: int, use_gpu: bool, **extra: Any) -> Any:
    """``trl.SFTConfig`` for CPU (fp32, no gradient checkpointing) or GPU (bf16) from the same settings."""
    from trl import SFTConfig

    settings = dict(
        output_dir=str(out_dir),
        num_train_epochs=epochs,
        learning_rate=lr,
        per_device_train_batch_size=batch_size,
        seed=seed,
        bf16=use_gpu,
        use_cpu=not use_gpu,
        activation_checkpointing=False,
        report_to="none",
        logging_steps=10,
        save_strategy="no",
        lr_scheduler_type="cosine",
        warmup_steps=0.05,
        max_length=None,
        disable_tqdm=True,
    )
    settings.update(extra)  # the caller's (e.g. config.sft's pass-through) win
    return SFTConfig(**settings)


def span_weights(labels: Any, spans: Sequence[tuple[int, int, float]], skip: Sequence[Sequence[int]] = ()) -> Any:
    """Per-token loss weights for (already shifted) ``labels``: for each ``(open_id, close_id, weight)`` of
    ``spans``, ``weight`` on the labelled tokens strictly between the two tag ids (e.g. ``<answer>`` …
    ``</answer>``); 1 on the other labelled tokens, 0 where the label is ignored (-100). A span whose tokens equal
    one of ``skip`` (e.g. the abstention's) keeps weight 1."""
    import torch

    skipped = {tuple(int(t) for t in ids) for ids in skip}
    weights = (labels != -100).to(torch.float32)
    for open_id, close_id, weight in spans:
        opened = (labels == open_id).long().cumsum(1)
        closed = (labels == close_id).long().cumsum(1)
        span = (opened > closed) & (labels != open_id) & (labels != -100)
        for row in range(labels.shape[0]) if skipped else ():
            if tuple(labels[row][span[row]].tolist()) in skipped:
                span[row] = False
        weights = torch.where(span, torch.full_like(weights, float(weight)), weights)
    return weights


def _span_weighted_trainer(base: Any, tag_weights: dict[str, float], skip_contents: Sequence[str]) -> Any:
    """``base`` (an ``SFTTrainer`` class) with its loss replaced by the weighted token mean ``Σ w·nll / Σ w``
    (:func:`span_weights`) per micro-batch, ``tag_weights`` giving the weight inside each tag (``{"answer": 14}`` →
    ``<answer>`` … ``</answer>``). In the grounded-QA completion the answer value is the one token of ~14 that
    needs the document; at weight 1 a tiny model settles on the class prior (``bench/results/defacto.md``,
    session 15). Each tag must be a single token of the tokenizer (the tiny models' are)."""
    import torch

    class SpanWeightedSFTTrainer(base):
        def compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool = False, num_items_in_batch: Any = None) -> Any:
            if not hasattr(self, "_rlcf_spans"):
                from rlcf.errors import UsageError

                tok = getattr(self.processing_class, "tokenizer", self.processing_class)  # a VLM's processor holds one
                for tag in (f"<{t}>" for t in tag_weights):
                    if len(tok(tag, add_special_tokens=False)["input_ids"]) != 1:
                        raise UsageError(
                            f"SFT loss weighting finds the {tag} span by its token, but this tokenizer splits {tag!r} "
                            "into several tokens; add the tags as tokens or leave the weights at 1"
                        )
                self._rlcf_spans = [
                    (tok.convert_tokens_to_ids(f"<{t}>"), tok.convert_tokens_to_ids(f"</{t}>"), w) for t, w in tag_weights.items()
                ]
                self._rlcf_skip = [
                    tok(f"<{t}>{c}</{t}>", add_special_tokens=False)["input_ids"][1:-1] for t in tag_weights for c in skip_contents
                ]
            labels = inputs["labels"][:, 1:]
            outputs = model(**{k: v for k, v in inputs.items() if k not in ("labels", "use_cache")}, use_cache=False)
            logits = outputs.logits[:, :-1].float()
            nll = torch.nn.functional.cross_entropy(logits.transpose(1, 2), labels, ignore_index=-100, reduction="none")
            w = span_weights(labels, self._rlcf_spans, self._rlcf_skip).to(nll.device)
            loss = (w * nll).sum() / w.sum().clamp(min=1e-8)
            with torch.no_grad():  # TRL's token accuracy, and that of the weighted tokens (the ones that need reading)
                mode = "train" if model.training else "eval"
                valid = labels != -100
                correct = (logits.argmax(-1) == labels) & valid
                spans = valid & (w != 1.0)
                self._metrics[mode]["mean_token_accuracy"].append((correct.sum() / valid.sum().clamp(min=1)).item())
                if spans.any():
                    self._metrics[mode]["weighted_token_accuracy"].append((correct & spans).sum().item() / spans.sum().item())
            return (loss, outputs) if return_outputs else loss

    return SpanWeightedSFTTrainer


def run_sft(
    model_path: str | Path,
    rows: Sequence[dict[str, Any]],
    out_dir: str | Path,
    args: Any,
    sampler: Any = None,
    tag_weights: dict[str, float] | None = None,
    unweighted_contents: Sequence[str] = (),
    callbacks: Sequence[Any] = (),
    load: Any = None,
) -> Path:
    """SFT on ``prompt``/``completion`` rows (loss on the completion only); saves model + tokenizer to ``out_dir``.

    ``sampler`` (optional, a ``torch.utils.data.Sampler`` over ``rows``) replaces the trainer's shuffling, e.g.
    DNA-Train's balanced real/counterfactual batches. ``tag_weights`` (e.g. ``{"answer": 14.0}``) weights the loss
    of the tokens inside each tag (``<answer>`` … ``</answer>``) by its factor, as a weighted token mean
    (:func:`span_weights`), except a span whose text is one of ``unweighted_contents`` (e.g. the abstention);
    without it (or with all weights 1) the loss is TRL's plain token mean. ``callbacks`` (e.g.
    :func:`rlcf.algos.llm_trainer.trainer_callbacks`) replace TRL's stdout printer. ``load`` (default
    :func:`load_model`) gives ``(model, processing class)`` from a folder: :func:`load_vlm` for a vision-language
    model, whose rows then carry an ``image`` column beside a conversational prompt and completion (TRL's
    vision collator renders them through the processor).
    """
    from datasets import Dataset
    from trl import SFTTrainer

    from rlcf.atomic import atomic_dir

    with quiet_transformers():
        model, tokenizer = (load or load_model)(model_path)
    columns = ("prompt", "completion", "image") if rows and "image" in rows[0] else ("prompt", "completion")
    data = Dataset.from_list([{k: r[k] for k in columns} for r in rows])
    cls = SFTTrainer
    if sampler is not None:

        class SampledSFTTrainer(SFTTrainer):
            def _get_train_sampler(self, train_dataset: Any = None) -> Any:
                return sampler

        cls = SampledSFTTrainer
    if tag_weights and any(w != 1.0 for w in tag_weights.values()):  # a tag at weight 1 need not be one token
        cls = _span_weighted_trainer(cls, {t: w for t, w in tag_weights.items() if w != 1.0}, unweighted_contents)
    with quiet_transformers():  # (the trainer tokenizes the dataset when built)
        trainer = quiet_trainer(cls(model=model, args=args, train_dataset=data, processing_class=tokenizer, callbacks=list(callbacks)))
        trainer.train()
    out = Path(out_dir)
    if trainer.is_world_process_zero():  # under torchrun every rank trains, rank 0 writes
        with quiet_transformers(), atomic_dir(out, overwrite=True) as tmp:
            trainer.accelerator.unwrap_model(trainer.model).save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
    trainer.accelerator.wait_for_everyone()
    return out
