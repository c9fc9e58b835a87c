"""The skeleton DeFacto and DNA-Train share: TRL configs with pass-through, run logging, progress, checkpoints.

Both LLM algorithms run the same stages — build or load the model, SFT on TRL's ``SFTTrainer``, RL on a
``GRPOTrainer`` (sub)class, evaluate before and after — and differ only in their task rows, rewards and
advantages. This module holds what they share, so that each ``fit`` says only what differs:

- :class:`LLMConfigChecks`: the config checks both configs need (sizes, groups, reward weights, the
  ``grpo``/``sft`` pass-through dicts);
- :func:`grpo_arguments` / :func:`sft_config`: TRL's ``GRPOConfig`` / ``SFTConfig`` from rlcf's fields plus
  ``config.grpo.<field>`` / ``config.sft.<field>`` — any field of TRL's dataclass, checked against it before
  any training (an unknown name is refused with the close match; a field rlcf sets from its own config names
  that field);
- :func:`trainer_callbacks` (with :func:`rlcf.algos.hf_quiet.quiet_trainer`): TRL's logs go to the run's
  ``metrics.jsonl`` and TensorBoard and to rlcf's progress bar (or log lines with ``--quiet``), never as raw
  dicts on stdout;
- :func:`latest_trainer_checkpoint`, :func:`train_resumable`, :func:`save_final`, :func:`final_or_checkpoint`;
- :class:`LLMAlgorithm`: the stages themselves (data → model → SFT → RL → evaluation), which each algorithm
  extends through hooks; ``prompt_format`` (plain or chat-formatted prompts, :func:`as_chat`), user data
  (:func:`load_user_rows`) and :class:`GroupRepeatSampler` (rows that belong together in one batch).

``report_to``: rlcf writes TensorBoard and ``metrics.jsonl`` itself; TRL's own reporters are off unless
``config.grpo.report_to`` / ``config.sft.report_to`` names them (e.g. ``[wandb]``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import logging
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from rlcf.algos.hf_quiet import quiet_trainer, quiet_transformers
from rlcf.algos.llm_common import build_tiny_lm, load_model, load_tokenizer, run_sft, sft_arguments
from rlcf.config import option, require
from rlcf.errors import ConfigError, UsageError

__all__ = [
    "GroupRepeatSampler",
    "LLMAlgorithm",
    "LLMConfigChecks",
    "as_chat",
    "check_trl_fields",
    "final_or_checkpoint",
    "grpo_arguments",
    "latest_trainer_checkpoint",
    "load_user_rows",
    "prompt_format_option",
    "save_final",
    "sft_config",
    "train_resumable",
    "trainer_callbacks",
    "trl_passthrough",
    "use_chat",
]

log = logging.getLogger(__name__)

# TRL fields rlcf sets from its own config (the pass-through refuses them and names the rlcf field instead) or
# from the run (output folder, checkpointing, seed, device): one source of truth per setting.
GRPO_OWNED = {
    "num_generations": "num_generations",
    "max_completion_length": "max_completion_length",
    "temperature": "temperature",
    "learning_rate": "learning_rate",
    "beta": "beta",
    "loss_type": "loss_type",
    "reward_weights": "reward_weights",
    "use_vllm": "use_vllm",
    "epsilon": "epsilon",
    "epsilon_high": "epsilon_high",
    "output_dir": "run.out_dir",
    "max_steps": "run.total_steps",
    "logging_steps": "run.log_every",
    "save_steps": "run.checkpoint_every",
    "save_total_limit": "run.keep_checkpoints",
    "seed": "run.seed",
    "use_cpu": "run.device",
}
SFT_OWNED = {
    "num_train_epochs": "sft_epochs",
    "learning_rate": "sft_lr",
    "per_device_train_batch_size": "sft_batch_size",
    "output_dir": "run.out_dir",
    "seed": "run.seed",
    "use_cpu": "run.device",
}


def _trl_class(kind: str) -> Any:
    from trl import GRPOConfig, SFTConfig

    return {"grpo": GRPOConfig, "sft": SFTConfig}[kind]


def check_trl_fields(kind: str, overrides: Mapping[str, Any], config: Any = None) -> None:
    """Refuse a ``config.<kind>.<name>`` that is not a field of TRL's ``GRPOConfig`` (``kind`` grpo) or
    ``SFTConfig`` (sft), naming the close match, or one rlcf sets from its own field (naming that field: a run
    field, or a field of ``config`` when it has one of that name)."""
    cls = _trl_class(kind)
    owned = {
        name: where for name, where in (GRPO_OWNED if kind == "grpo" else SFT_OWNED).items()
        if where.startswith("run.") or config is None or hasattr(config, where)
    }
    valid = {f.name for f in dataclasses.fields(cls) if f.init}
    for name in overrides:
        if name in owned:
            where = owned[name]
            raise ConfigError(
                f"{kind}.{name}",
                f"rlcf sets {cls.__name__}.{name} from {'config.' if '.' not in where else ''}{where}; set that instead",
            )
        if name not in valid:
            close = difflib.get_close_matches(name, sorted(valid), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else f"; see trl.{cls.__name__} for the fields"
            raise ConfigError(f"{kind}.{name}", f"is not a field of trl.{cls.__name__}{hint}")


PROMPT_FORMATS = ("auto", "plain", "chat")


def prompt_format_option() -> Any:
    """The ``prompt_format`` config field."""
    return option(
        "auto",
        "plain (the prompt text, continued by the model), chat (a system instruction stating the output format and the "
        "abstention answer, then the prompt as the user turn, through the model's chat template) or auto (chat when the "
        "model is not 'tiny' and its tokenizer has a chat template). With model 'tiny', chat builds it a ChatML template.",
    )


def use_chat(config: Any, tokenizer: Any) -> bool:
    """Whether prompts go through the chat template (``prompt_format``); a clear error where it cannot."""
    has_template = bool(getattr(tokenizer, "chat_template", None))
    if config.prompt_format == "chat" and not has_template:
        raise UsageError(
            f"prompt_format: chat, but the tokenizer of {config.model!r} has no chat template; use an instruct/chat model "
            "or set prompt_format: plain"
        )
    if config.prompt_format == "auto":
        return has_template and config.model != "tiny"
    return config.prompt_format == "chat"


def as_chat(rows: Sequence[dict[str, Any]], instruction: str) -> list[dict[str, Any]]:
    """Rows with a text ``prompt`` (and ``completion``) in TRL's conversational form: a system turn holding
    ``instruction``, the prompt as the user turn, the completion as the assistant turn. Rows whose prompt is
    already a conversation (the image task's) are kept as they are."""
    out = []
    for row in rows:
        if not isinstance(row["prompt"], str):
            out.append(row)
            continue
        new = {**row, "prompt": [{"role": "system", "content": instruction}, {"role": "user", "content": row["prompt"]}]}
        if isinstance(row.get("completion"), str):
            new["completion"] = [{"role": "assistant", "content": row["completion"]}]
        out.append(new)
    return out


_DATA_KINDS = {".jsonl": "json", ".json": "json", ".parquet": "parquet", ".csv": "csv"}


def _split_files(folder: Path) -> dict[str, tuple[str, list[str]]]:
    """``{split: (builder, files)}`` of a local folder's ``<split>.jsonl`` / ``<split>-00000.parquet`` … files."""
    found: dict[str, tuple[str, list[str]]] = {}
    for file in sorted(folder.iterdir()):
        kind = _DATA_KINDS.get(file.suffix)
        if kind and file.is_file():
            split = file.stem.split("-")[0]
            found.setdefault(split, (kind, []))[1].append(str(file))
    return found


def load_user_rows(data: str, split: str, which: str) -> list[dict[str, Any]]:
    """Rows of split ``split`` of ``data`` — a local folder of ``<split>.jsonl`` / parquet / csv files (read with
    that builder, so that images beside them are not taken for an image dataset) or a hub id — through
    ``datasets.load_dataset``; ``which`` names the config field of the split in errors."""
    from datasets import get_dataset_split_names, load_dataset

    path = Path(data)
    if path.is_file():  # one file would serve training and evaluation alike
        raise UsageError(
            f"config.data: {data!r} is a single file; give a folder with one file per split (e.g. train.jsonl and "
            "test.jsonl) or a hub id, so that evaluation rows stay out of training"
        )
    if path.is_dir():
        files = _split_files(path)
        if not files:
            raise UsageError(f"config.data: folder {data!r} has no <split>.jsonl, .parquet or .csv files (e.g. train.jsonl, test.jsonl)")
        if split not in files:
            raise UsageError(f"config.{which}: dataset {data!r} has no split {split!r}; its splits: {', '.join(files)}")
        kind, paths = files[split]
        with quiet_transformers():
            return [dict(r) for r in load_dataset(kind, data_files={split: paths}, split=split)]
    try:
        with quiet_transformers():
            available = get_dataset_split_names(data)
    except Exception as err:  # noqa: BLE001  (datasets raises many kinds; the message is what matters)
        raise UsageError(f"config.data: cannot open dataset {data!r} ({type(err).__name__}: {err}); give a hub id or a local folder") from None
    if split not in available:
        raise UsageError(f"config.{which}: dataset {data!r} has no split {split!r}; its splits: {', '.join(available)}")
    with quiet_transformers():
        return [dict(r) for r in load_dataset(data, split=split)]


def trl_passthrough(kind: str) -> Any:
    """The ``grpo`` / ``sft`` config field: any other field of TRL's ``GRPOConfig`` / ``SFTConfig``, passed through."""
    stage, cls = ("RL", "GRPOConfig") if kind == "grpo" else ("SFT", "SFTConfig")
    return option(
        default_factory=dict,
        help=f"Any other trl.{cls} field for the {stage} stage, passed through (e.g. gradient_accumulation_steps"
        + (", num_iterations, vllm_mode, report_to: [wandb]" if kind == "grpo" else ", max_grad_norm, packing")
        + "); checked against TRL before training. Fields rlcf sets are refused with their rlcf name.",
    )


class LLMConfigChecks:
    """Checks shared by the LLM algorithms' configs; call :meth:`check_llm_fields` from ``__post_init__``."""

    def check_llm_fields(self, positive: Sequence[str]) -> None:
        for name in positive:
            require(getattr(self, name) > 0, name, f"must be > 0, got {getattr(self, name)}")
        require(self.num_generations >= 2, "num_generations", "a GRPO group needs at least 2 completions")
        require(len(self.rewards) > 0, "rewards", "needs at least one reward function")
        require(
            self.reward_weights is None or len(self.reward_weights) == len(self.rewards),
            "reward_weights",
            f"has {len(self.reward_weights or ())} weights for {len(self.rewards)} rewards ({', '.join(self.rewards)}); give one per reward",
        )
        require(self.sft_epochs >= 0, "sft_epochs", f"must be >= 0, got {self.sft_epochs}")
        require(self.temperature > 0, "temperature", f"must be > 0, got {self.temperature}")
        require(self.sft_answer_weight > 0, "sft_answer_weight", f"must be > 0 (1 = plain token mean), got {self.sft_answer_weight}")
        require(self.prompt_format in PROMPT_FORMATS, "prompt_format", f"must be one of {', '.join(PROMPT_FORMATS)}, got {self.prompt_format!r}")
        for kind in ("grpo", "sft"):
            value = getattr(self, kind)
            require(isinstance(value, Mapping), kind, f"must be a mapping of trl.{kind.upper()}Config fields, got {value!r}")
            bad = [k for k in value if not isinstance(k, str) or not k.isidentifier()]
            require(not bad, kind, f"keys must be field names of trl's {kind.upper()}Config, got {bad}")


def grpo_arguments(config: Any, run_config: Any, output_dir: Path, batch_size: int, reward_weights: Sequence[float], gpu: bool, **own: Any) -> Any:
    """TRL's ``GRPOConfig``: rlcf's settings, the algorithm's ``own`` ones, then ``config.grpo``'s pass-through.

    Built before any stage trains, so that a bad value fails first (TRL's ``__post_init__`` checks it)."""
    from trl import GRPOConfig

    check_trl_fields("grpo", config.grpo, config)
    if config.use_vllm:
        import importlib.util

        if importlib.util.find_spec("vllm") is None or not gpu:
            raise ConfigError(
                "use_vllm",
                f"vLLM generation needs the vllm package and a GPU ({'vllm is not installed' if importlib.util.find_spec('vllm') is None else 'no GPU here'}); "
                "install vllm on the GPU node (config.grpo.vllm_mode: colocate or server), or set use_vllm: false",
            )
    rc = run_config
    settings = dict(
        output_dir=str(output_dir),
        max_steps=rc.total_steps,
        per_device_train_batch_size=batch_size,
        num_generations=config.num_generations,
        max_completion_length=config.max_completion_length,
        temperature=config.temperature,
        learning_rate=config.learning_rate,
        beta=config.beta,
        loss_type=config.loss_type,
        reward_weights=list(reward_weights),
        logging_steps=rc.log_every,
        save_steps=rc.checkpoint_every,
        save_total_limit=rc.keep_checkpoints,
        seed=rc.seed,
        bf16=gpu,
        use_cpu=not gpu,
        activation_checkpointing=False,
        use_vllm=config.use_vllm,
        report_to="none",
        disable_tqdm=True,
        lr_scheduler_type="constant",
        remove_unused_columns=False,
    )
    settings.update(own)
    settings.update(_renamed(dict(config.grpo)))
    with quiet_transformers():
        try:
            return GRPOConfig(**settings)
        except (ValueError, TypeError) as err:
            keys = ", ".join(f"config.grpo.{k}" for k in config.grpo) or "the GRPO settings"
            raise ConfigError("grpo", f"trl.GRPOConfig refused {keys}: {err}") from None


def sft_config(config: Any, run_config: Any, output_dir: Path, gpu: bool) -> Any:
    """TRL's ``SFTConfig`` for the SFT stage: rlcf's fields, then ``config.sft``'s pass-through."""

    check_trl_fields("sft", config.sft, config)
    with quiet_transformers():
        try:
            return sft_arguments(
                output_dir, epochs=config.sft_epochs, lr=config.sft_lr, batch_size=config.sft_batch_size, seed=run_config.seed,
                use_gpu=gpu, **_renamed(dict(config.sft)),
            )
        except (ValueError, TypeError) as err:
            keys = ", ".join(f"config.sft.{k}" for k in config.sft) or "the SFT settings"
            raise ConfigError("sft", f"trl.SFTConfig refused {keys}: {err}") from None


def _renamed(overrides: dict[str, Any]) -> dict[str, Any]:
    """transformers 5 renamed ``gradient_checkpointing`` to ``activation_checkpointing``; accept the old name
    (every TRL recipe uses it) without a FutureWarning."""
    if "gradient_checkpointing" in overrides and "activation_checkpointing" not in overrides:
        overrides["activation_checkpointing"] = overrides.pop("gradient_checkpointing")
    return overrides


def trainer_callbacks(run: Any, stage: str, tally: Any = None, prefix: str = "train") -> list[Any]:
    """The run logger (TRL's logs into ``metrics.jsonl`` / TensorBoard under ``<prefix>/``) and rlcf's progress
    bar for a TRL trainer; pass them as ``callbacks=`` and :func:`quiet_trainer` the trainer."""
    from transformers import TrainerCallback

    from rlcf.progress import progress

    class RunLogger(TrainerCallback):
        def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
            # Every process gets here at each logging step; the tally is gathered over all of them.
            per_variant = tally.flush() if tally is not None else {}
            if logs and state.is_world_process_zero and run is not None:
                numeric = {_metric_key(prefix, k): float(v) for k, v in logs.items() if isinstance(v, (int, float))}
                numeric[f"{prefix}/processes"] = float(args.world_size)
                run.log(numeric | per_variant, int(state.global_step))

        def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if state.is_world_process_zero and run is not None:
                run.flush()  # a run killed after this checkpoint keeps its logs up to it

    class Progress(TrainerCallback):
        """rlcf's progress bar over the stage's optimizer steps (log lines with ``--quiet`` or off a terminal)."""

        def __init__(self) -> None:
            self._stack: contextlib.ExitStack | None = None
            self._bar: Any = None
            self._shown: dict[str, float] = {}

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if state.is_world_process_zero:
                self._stack = contextlib.ExitStack()
                self._bar = self._stack.enter_context(progress(stage, total=int(state.max_steps), initial=int(state.global_step)))

        def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
            for key in ("reward", "loss"):
                if logs and isinstance(logs.get(key), (int, float)):
                    self._shown[key] = float(logs[key])

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if self._bar is not None:
                self._bar.advance(int(state.global_step) - self._bar.completed, **self._shown)

        def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if self._stack is not None:
                self._stack.close()
                self._stack, self._bar = None, None

    return [RunLogger(), Progress()]


def _metric_key(prefix: str, key: str) -> str:
    """GRPO's ``loss`` → ``train/loss`` and its ``rewards/format/mean`` kept as is; SFT's ``loss`` → ``sft/loss``."""
    if prefix == "train":
        return key if "/" in key else f"train/{key}"
    return f"{prefix}/{key}"


def latest_trainer_checkpoint(folder: Path) -> Path | None:
    """The newest complete TRL checkpoint (``checkpoint-N`` with its ``trainer_state.json``)."""
    found = []
    for child in folder.glob("checkpoint-*") if folder.is_dir() else []:
        m = re.fullmatch(r"checkpoint-(\d+)", child.name)
        if m and (child / "trainer_state.json").exists():
            found.append((int(m.group(1)), child))
    return max(found)[1] if found else None


def train_resumable(trainer: Any, checkpoints: Path, resume: bool, stage: str) -> None:
    """``trainer.train()``, from the newest complete checkpoint under ``checkpoints`` when resuming."""
    resume_from = latest_trainer_checkpoint(checkpoints) if resume else None
    if resume and resume_from is None:
        log.warning("no complete %s checkpoint under %s; training from the start of the %s stage", stage, checkpoints, stage)
    with quiet_transformers():
        trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)


def save_final(run: Any, trainer: Any, processing_class: Any) -> Any:
    """Write the trained model and its tokenizer/processor to ``<run>/final_model`` atomically; return the model."""
    from rlcf.atomic import atomic_dir

    model = trainer.accelerator.unwrap_model(trainer.model)
    with quiet_transformers(), atomic_dir(run.path / "final_model", overwrite=True) as tmp:
        model.save_pretrained(tmp)
        processing_class.save_pretrained(tmp)
    return model


def final_or_checkpoint(run: Any, stage: str = "GRPO") -> Path:
    """A run's ``final_model``, or before it exists its newest RL checkpoint; a clear error when neither is there."""
    folder = run.path / "final_model"
    if (folder / "config.json").exists():
        return folder
    found = latest_trainer_checkpoint(run.path / "checkpoints" / "grpo")
    if found is None:
        raise UsageError(f"run '{run.path}' has no final model and no {stage} checkpoint yet; train it first")
    return found


class GroupRepeatSampler:
    """TRL's ``RepeatSampler`` over groups of rows that belong together (the variants of one example, the two sides
    of a pair): shuffles the groups, takes ``prompts_per_batch`` rows (whole groups) per generation batch, repeats
    each row ``num_generations`` times and each batch ``repeat_count`` times — so a group's completions sit side
    by side in one batch. ``groups`` lists each group's row indices; every group must have the same size, and
    that size must divide ``prompts_per_batch``. Incomplete batches are dropped, as TRL does."""

    def __init__(self, groups: Sequence[Sequence[int]], num_generations: int, prompts_per_batch: int, repeat_count: int = 1,
                 shuffle: bool = True, seed: int = 0, what: str = "group"):
        import torch

        sizes = {len(g) for g in groups}
        if len(sizes) != 1:
            raise UsageError(f"every {what} must have the same number of rows, got sizes {sorted(sizes)}")
        (size,) = sizes
        if prompts_per_batch % size:
            raise UsageError(f"a generation batch of {prompts_per_batch} prompts splits a {what} of {size} rows; use a multiple of {size}")
        self.groups = [list(g) for g in groups]
        self.g, self.per_batch, self.repeat, self.shuffle = num_generations, prompts_per_batch, repeat_count, shuffle
        self.generator = torch.Generator().manual_seed(seed)

    def __iter__(self) -> Iterator[int]:
        import torch

        n = len(self.groups)
        order = torch.randperm(n, generator=self.generator).tolist() if self.shuffle else list(range(n))
        rows = [i for k in order for i in self.groups[k]]
        for start in range(0, len(rows) - self.per_batch + 1, self.per_batch):
            chunk = rows[start : start + self.per_batch]
            for _ in range(self.repeat):
                for index in chunk:
                    for _ in range(self.g):
                        yield index

    def __len__(self) -> int:
        rows = sum(len(g) for g in self.groups)
        return (rows // self.per_batch) * self.per_batch * self.g * self.repeat


# --------------------------------------------------------------------------------------------------------------
# The stages.


class LLMAlgorithm:
    """The stages every LLM algorithm runs, as a mixin for :class:`rlcf.algorithm.Algorithm`: the subclass says
    what differs through the hooks below, and :meth:`fit` does the rest.

    1. data: :meth:`eval_data` and :meth:`train_data` (validated) and, when SFT runs, :meth:`sft_data` — both
       before anything trains, as are TRL's configs (:func:`grpo_arguments`, :func:`sft_config`);
    2. the model: ``model: tiny`` builds the embedded tiny model from :meth:`tiny_corpus` (:meth:`build_tiny`);
       any other value is a hub id or a local folder;
    3. SFT on TRL's ``SFTTrainer`` (skipped with ``sft_epochs: 0``), into ``<run>/sft_model``;
    4. RL on :meth:`make_trainer`'s ``GRPOTrainer`` (sub)class, checkpointed by TRL and resumable;
    5. :meth:`evaluate` before and after RL; ``final_model``, ``eval.json`` and the table in the log.
    """

    #: The RL stage's name in messages and progress ("GRPO", "RL").
    rl_stage: str = "GRPO"

    # -- hooks -----------------------------------------------------------------------------------------------

    @classmethod
    def eval_data(cls, config: Any) -> list[dict[str, Any]]:
        """Held-out rows for evaluation, validated."""
        raise NotImplementedError

    @classmethod
    def train_data(cls, config: Any) -> list[dict[str, Any]]:
        """RL training rows, validated."""
        raise NotImplementedError

    @classmethod
    def sft_data(cls, config: Any) -> dict[str, Any]:
        """Keyword arguments of :func:`rlcf.algos.llm_common.run_sft` for the SFT stage: ``rows`` and optionally
        ``sampler``, ``tag_weights``, ``unweighted_contents``."""
        raise NotImplementedError

    @classmethod
    def instruction(cls, config: Any) -> str:
        """The system instruction of chat-formatted prompts: the output format and the abstention answer."""
        raise NotImplementedError

    @classmethod
    def tiny_corpus(cls, config: Any, train_rows: list[dict[str, Any]]) -> list[str]:
        """Text the embedded tiny model's tokenizer is trained on."""
        raise NotImplementedError

    @classmethod
    def build_tiny(cls, config: Any, path: Path, corpus: list[str], seed: int) -> None:

        build_tiny_lm(path, corpus, config.tiny, seed=seed, chat=config.prompt_format == "chat")

    @classmethod
    def load(cls, config: Any, path: str | Path, device: Any = None) -> tuple[Any, Any]:
        """``(model, processing class)`` from a folder or hub id."""

        return load_model(path, device)

    @classmethod
    def evaluate(cls, config: Any, model: Any, processing_class: Any, rows: list[dict[str, Any]], completions: Any = None) -> dict[str, Any]:
        """Scores per split (``{split: scores}``) of greedy completions (generated here unless given)."""
        raise NotImplementedError

    @classmethod
    def rollout_batch(cls, config: Any) -> int:
        """Completions per optimizer step (TRL's ``per_device_train_batch_size``)."""
        raise NotImplementedError

    @classmethod
    def grpo_settings(cls, config: Any) -> dict[str, Any]:
        """GRPOConfig fields of this algorithm's own beyond the shared ones (e.g. clip ranges)."""
        return {}

    @classmethod
    def make_trainer(cls, config: Any, model: Any, processing_class: Any, args: Any, train_rows: list[dict[str, Any]],
                     rewards: Any, run: Any) -> Any:
        """The RL trainer, its callbacks from :func:`trainer_callbacks`."""
        raise NotImplementedError

    @classmethod
    def result_name(cls, config: Any) -> str:
        """The after-RL row's name in ``eval.json`` and the table."""
        raise NotImplementedError

    # -- the stages --------------------------------------------------------------------------------------------

    @classmethod
    def fit(cls, experiment: Any, run: Any, resume: bool = False) -> dict[str, Any]:
        import json

        from rlcf.atomic import atomic_write_text
        from rlcf.device import resolve_device
        from rlcf.eval.llm import format_split_table
        from rlcf.reward_set import RewardSet
        from rlcf.runtime.distributed import barrier, fit_with_torchrun, is_lead, launched_by_torchrun, wants_workers
        from rlcf.runtime.threads import set_torch_threads
        from rlcf.seeding import seed_everything

        c, rc = experiment.config, experiment.run
        if wants_workers(rc) > 1 and not launched_by_torchrun():
            return fit_with_torchrun(cls, experiment, run, resume)
        lead = is_lead()  # under torchrun: rank 0 builds, evaluates, logs and writes; every rank trains
        set_torch_threads(rc.threads)
        device = resolve_device(rc.device)
        gpu = device.type == "cuda"
        seed_everything(rc.seed)
        rewards = RewardSet(list(c.rewards), list(c.reward_weights) if c.reward_weights is not None else None)
        # Everything that can be refused is checked before any stage trains: data, SFT data, TRL's configs.
        eval_rows = cls.eval_data(c)
        train_rows = cls.train_data(c)
        sft = cls.sft_data(c) if c.sft_epochs > 0 else None
        ckpt_dir = run.path / "checkpoints" / "grpo"
        args = grpo_arguments(c, rc, ckpt_dir, cls.rollout_batch(c), rewards.weights, gpu, **cls.grpo_settings(c))
        sft_args = sft_config(c, rc, run.path / "sft_tmp", gpu) if sft is not None else None

        model_path: str | Path = c.model
        if c.model == "tiny":
            model_path = run.path / "base_model"
            if lead and not (model_path / "config.json").exists():
                corpus = cls.tiny_corpus(c, train_rows)
                if c.prompt_format == "chat":  # the instruction's words, too
                    corpus = [f"{cls.instruction(c)}\n{text}" for text in corpus]
                cls.build_tiny(c, model_path, corpus, rc.seed)
        barrier()
        if cls.chat_for(c, model_path):
            eval_rows, train_rows = as_chat(eval_rows, cls.instruction(c)), as_chat(train_rows, cls.instruction(c))
            if sft is not None:
                sft = {**sft, "rows": as_chat(sft["rows"], cls.instruction(c))}
        if sft is not None:
            sft_path = run.path / "sft_model"
            if not (sft_path / "config.json").exists():
                run_sft(model_path, out_dir=sft_path, args=sft_args, callbacks=trainer_callbacks(run, "sft", prefix="sft"), **sft)
            model_path = sft_path
        results: dict[str, Any] = {}
        model, processing_class = cls.load(c, model_path, device)
        if lead:
            before = cls.evaluate(c, model, processing_class, eval_rows)
            results["sft" if sft is not None else "base"] = before
            if not resume:
                run.log({f"eval/before/{s}/{k}": v for s, sc in before.items() for k, v in sc.as_dict().items()}, 0)

        with quiet_transformers():  # (TRL loads the reference model and tokenizes while building the trainer)
            trainer = quiet_trainer(cls.make_trainer(c, model, processing_class, args, train_rows, rewards, run))
        train_resumable(trainer, ckpt_dir, resume, cls.rl_stage)
        if not lead:
            return {}
        model = save_final(run, trainer, processing_class)
        after = cls.evaluate(c, model, processing_class, eval_rows)
        results[cls.result_name(c)] = after
        final = {f"eval/{s}/{k}": v for s, sc in after.items() for k, v in sc.as_dict().items()}
        run.log(final, rc.total_steps)
        atomic_write_text(
            run.path / "eval.json",
            json.dumps({name: {s: sc.as_dict() | {"rows": sc.rows} for s, sc in per.items()} for name, per in results.items()}, indent=2),
        )
        log.info("%s scores:\n%s", cls.rl_stage, format_split_table(results))
        run.results = results  # programmatic callers (bench, tests) read the before/after scores here
        run.close()
        return final

    @classmethod
    def evaluate_run(cls, run: Any, actors: int = 0) -> dict[str, Any]:
        """Per-split scores of a run's final model (or, before it exists, its newest RL checkpoint); ``actors`` > 0
        generates on that many Ray rollout actors."""
        from rlcf.device import resolve_device

        c = run.experiment.config
        folder = final_or_checkpoint(run, cls.rl_stage)
        rows = cls.eval_data(c)
        if cls.chat_for(c, folder):
            rows = as_chat(rows, cls.instruction(c))
        if actors > 0:
            cls.check_actors(c)
            from rlcf.eval.llm import greedy_with_actors

            tokenizer = load_tokenizer(folder)
            prompts = [p if isinstance(p, str) else tokenizer.apply_chat_template(p, add_generation_prompt=True, tokenize=False)
                       for p in (r["prompt"] for r in rows)]
            completions = greedy_with_actors(folder, prompts, c.eval_max_new_tokens, actors)
            return cls.evaluate(c, None, None, rows, completions=completions)
        model, processing_class = cls.load(c, folder, resolve_device(run.experiment.run.device))
        return cls.evaluate(c, model, processing_class, rows)

    @classmethod
    def chat_for(cls, config: Any, model_path: str | Path) -> bool:
        """Whether this run's prompts are chat-formatted, from ``prompt_format`` and the model's tokenizer."""
        if config.prompt_format == "plain" or getattr(config, "modality", "text") != "text":
            return False

        return use_chat(config, load_tokenizer(model_path))

    @classmethod
    def check_actors(cls, config: Any) -> None:
        """Refuse Ray actor evaluation where it cannot run (the actors generate text)."""
