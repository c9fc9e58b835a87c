"""DNA-Train (arXiv 2512.24271): paired SFT → RL with pair-wise ℓ1 (duality-normalized) advantages.

Data come in pairs: a real input and its counterfactual edit, with the same question and options and a
different correct answer (:mod:`rlcf.envs.text.paired`; the embedded task is :mod:`rlcf.envs.text.grounded_pairs`).

1. **SFT** (TRL's ``SFTTrainer``) on paired data with balanced batches: every batch is half real, half
   counterfactual (:class:`BalancedSideSampler`). ``sft_data: real`` trains on real rows only (the paper's data
   ablation), with as many rows.
2. **RL** (:class:`DNAGRPOTrainer`, a ``GRPOTrainer`` subclass; TRL's loss with DAPO settings: ``loss_type
   dapo`` and clip-higher ``epsilon_high``). Its sampler (:class:`PairRepeatSampler`) puts the real group and the
   counterfactual group of a pair next to each other in one generation batch, and the advantages go through
   :func:`pair_l1_normalize` — the method's defining lines:

   - per group, the usual advantages ``Â = (r − mean) / (std + 1e-4)`` (population std);
   - per group, ``S = mean |Â|``; per pair, ``S_target = (S_real + S_cf) / 2``;
   - each group's advantages are multiplied by ``S_target / S``, so both sides of every pair carry the same ℓ1
     mass. With binary rewards at group accuracy ``p``, ``S = 2·sqrt(p(1 − p))``: without the rescaling the
     easy side (p near 1) would pull far less than the side at p = 0.5.

   ``advantage: group`` keeps the per-group advantages (the GRPO/DAPO baseline) and ``advantage: none`` uses
   ``r − mean`` (no std), from the same trainer.

**Degenerate groups** (all rewards equal: ``S = 0``), which the paper leaves open (DAPO's dynamic sampling would
have dropped them). A dead group's advantages are zero whatever the rule; ``degenerate`` decides the live side of
a pair whose other side is dead:

- ``keep`` (default): the live group keeps its own advantages (α = 1). The pair then acts as plain GRPO, which
  is what DAPO would do with the surviving group, and no signal is lost or amplified;
- ``halve``: the paper's formula read literally, ``S_target = S_live / 2`` ⇒ α = 1/2;
- ``drop``: the whole pair gets zero advantages (the pair-level analogue of dynamic sampling).

**Dynamic sampling** (``dynamic_sampling: true``, DAPO's, at the pair level): after scoring, pairs with a dead side
are dropped and fresh pairs are generated and scored in their place, up to ``dynamic_max_rounds`` extra generations
per step, so every pair the loss sees pulls on both sides. A batch still short keeps some dead pairs (zero advantage,
as without the option) and the share is logged (``dna/dead_pairs_kept``, with ``dna/first_draw_live_pairs`` and
``dna/dynamic_rounds``). Refill pairs are drawn from the train set by (seed, step, round, process), so a resumed run
draws the same ones. Text generations only.

``S`` counts as zero below ``pair_eps``. Logged per step: ``dna/S_real``, ``dna/S_cf``, ``dna/alpha_real``,
``dna/alpha_cf`` (over live pairs), ``dna/degenerate_pairs`` (share), ``dna/reward_real``, ``dna/reward_cf``.

Evaluation (:func:`rlcf.eval.llm.evaluate_pairs`): real accuracy, counterfactual accuracy and the paper's strict
pair accuracy (both sides right), on held-out pairs, before and after RL.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rlcf.algorithm import Algorithm
from rlcf.algos.llm_common import TinyLMConfig
from rlcf.algos.llm_trainer import LLMAlgorithm, LLMConfigChecks, prompt_format_option, trl_passthrough
from rlcf.config import option, require
from rlcf.errors import UsageError
from rlcf.registry import algos

__all__ = [
    "ADVANTAGES",
    "BalancedSideSampler",
    "DEGENERATE_RULES",
    "DNATrain",
    "DNATrainConfig",
    "PairRepeatSampler",
    "adjacent_pairs",
    "compute_advantages",
    "group_advantages",
    "pair_l1_normalize",
]

log = logging.getLogger(__name__)

ADVANTAGES = ("pair_l1", "group", "none")
DEGENERATE_RULES = ("keep", "halve", "drop")
STD_EPS = 1e-4  # as TRL's GRPO: Â = (r − mean) / (std + 1e-4)


# --------------------------------------------------------------------------------------------------------------
# The defining lines.


def adjacent_pairs(num_groups: int) -> Any:
    """The layout ``[[0, 1], [2, 3], …]``: group ``2k`` is pair k's real side, ``2k + 1`` its counterfactual."""
    import torch

    if num_groups % 2:
        raise UsageError(
            f"a generation batch holds an odd number of groups ({num_groups}); DNA-Train needs both groups of every "
            "pair in the same batch: make (generation batch size / num_generations) even"
        )
    return torch.arange(num_groups).view(-1, 2)


def group_advantages(rewards: Any, num_generations: int, scale: bool = True) -> tuple[Any, Any]:
    """``(Â, valid)``: per-group advantages (``r − mean``, over ``std + 1e-4`` when ``scale``; population std) and
    the mask of scorable rows. NaN rewards (unscorable completions) are left out of the group statistics and get
    advantage 0, as in TRL."""
    import torch

    r = torch.as_tensor(rewards, dtype=torch.float32).reshape(-1)
    if r.numel() % num_generations:
        raise UsageError(f"{r.numel()} rewards are not whole groups of num_generations={num_generations}")
    g = r.view(-1, num_generations)
    valid = ~torch.isnan(g)
    n = valid.sum(dim=1, keepdim=True).clamp(min=1)
    filled = torch.where(valid, g, torch.zeros_like(g))
    mean = filled.sum(dim=1, keepdim=True) / n
    centred = torch.where(valid, g - mean, torch.zeros_like(g))
    adv = centred
    if scale:
        std = (centred.square().sum(dim=1, keepdim=True) / n).sqrt()
        adv = centred / (std + STD_EPS)
    return adv, valid


def pair_l1_normalize(
    rewards: Any, num_generations: int, pair_layout: Any = "adjacent", eps: float = 1e-6, *, degenerate: str = "keep"
) -> tuple[Any, dict[str, Any]]:
    """DNA-Train's duality-normalized advantages.

    Args:
        rewards: ``(num_groups · num_generations,)`` total rewards, group after group (NaN = unscorable).
        num_generations: the group size G.
        pair_layout: ``(P, 2)`` group indices ``[real_group, cf_group]`` covering every group exactly once, or
            ``"adjacent"`` (:func:`adjacent_pairs`).
        eps: a group with ``S <= eps`` is degenerate (all its rewards equal).
        degenerate: ``keep`` | ``halve`` | ``drop``, the rule for the live side of a half-degenerate pair (module doc).

    Returns:
        ``(advantages, stats)``: advantages in the rewards' order, shape ``(num_groups · G,)``; stats holds per-pair
        tensors ``S_real``, ``S_cf``, ``alpha_real``, ``alpha_cf`` (0 on a dead side) and ``degenerate`` (bool:
        at least one side dead).
    """
    import torch

    if degenerate not in DEGENERATE_RULES:
        raise UsageError(f"unknown degenerate rule {degenerate!r}; valid: {', '.join(DEGENERATE_RULES)}")
    adv, valid = group_advantages(rewards, num_generations, scale=True)
    num_groups = adv.shape[0]
    layout = adjacent_pairs(num_groups) if isinstance(pair_layout, str) and pair_layout == "adjacent" else torch.as_tensor(pair_layout, dtype=torch.long)
    if layout.ndim != 2 or layout.shape[1] != 2:
        raise UsageError(f"pair_layout must be (pairs, 2) group indices [real, cf], got shape {tuple(layout.shape)}")
    if sorted(layout.reshape(-1).tolist()) != list(range(num_groups)):
        raise UsageError(f"pair_layout must use each of the {num_groups} groups exactly once, got {layout.tolist()}")
    s = adv.abs().sum(dim=1) / valid.sum(dim=1).clamp(min=1)  # mean |Â| over the group's scorable rows
    s_real, s_cf = s[layout[:, 0]], s[layout[:, 1]]
    target = (s_real + s_cf) / 2
    live_real, live_cf = s_real > eps, s_cf > eps
    both = live_real & live_cf
    one_side = {"keep": 1.0, "halve": 0.5, "drop": 0.0}[degenerate]
    zero = torch.zeros_like(target)

    def alpha(s_side: Any, live: Any) -> Any:
        return torch.where(both, target / s_side.clamp(min=eps), torch.where(live, torch.full_like(target, one_side), zero))

    a_real, a_cf = alpha(s_real, live_real), alpha(s_cf, live_cf)
    scale = torch.empty(num_groups)
    scale[layout[:, 0]] = a_real
    scale[layout[:, 1]] = a_cf
    out = (adv * scale[:, None]).reshape(-1)
    stats = {"S_real": s_real, "S_cf": s_cf, "alpha_real": a_real, "alpha_cf": a_cf, "degenerate": ~both}
    return out, stats


def compute_advantages(rewards: Any, num_generations: int, advantage: str = "pair_l1", degenerate: str = "keep", eps: float = 1e-6) -> tuple[Any, dict[str, Any]]:
    """Advantages by the config's choice: ``pair_l1`` (:func:`pair_l1_normalize`), ``group`` (per-group
    standardised, the GRPO/DAPO baseline) or ``none`` (``r − mean``). Stats as :func:`pair_l1_normalize`'s,
    from the per-group advantages before any rescaling for ``group`` / ``none``."""
    if advantage == "pair_l1":
        return pair_l1_normalize(rewards, num_generations, "adjacent", eps, degenerate=degenerate)
    if advantage not in ADVANTAGES:
        raise UsageError(f"unknown advantage normalization {advantage!r}; valid: {', '.join(ADVANTAGES)}")
    adv, valid = group_advantages(rewards, num_generations, scale=advantage == "group")
    layout = adjacent_pairs(adv.shape[0])
    s = adv.abs().sum(dim=1) / valid.sum(dim=1).clamp(min=1)
    s_real, s_cf = s[layout[:, 0]], s[layout[:, 1]]
    ones = (s_real > eps) & (s_cf > eps)
    return adv.reshape(-1), {"S_real": s_real, "S_cf": s_cf, "alpha_real": ones.float(), "alpha_cf": ones.float(), "degenerate": ~ones}


# --------------------------------------------------------------------------------------------------------------
# Samplers.


class PairRepeatSampler:
    """TRL's ``RepeatSampler`` over pairs: for rows laid out ``[real_0, cf_0, real_1, cf_1, …]`` it shuffles the
    pairs, takes ``prompts_per_batch`` rows (whole pairs) per generation batch, repeats each row
    ``num_generations`` times and each batch ``repeat_count`` times — so a pair's real group and counterfactual
    group are adjacent in one generation batch (:class:`rlcf.algos.llm_trainer.GroupRepeatSampler` with groups of
    two). Incomplete batches are dropped, as TRL does."""

    def __new__(cls, num_rows: int, num_generations: int, prompts_per_batch: int, repeat_count: int = 1, shuffle: bool = True, seed: int = 0) -> Any:
        from rlcf.algos.llm_trainer import GroupRepeatSampler

        if num_rows % 2:
            raise UsageError(f"paired data has {num_rows} rows, an odd number; rows must come as [real, cf] pairs")
        if prompts_per_batch % 2:
            raise UsageError(
                f"a generation batch of {prompts_per_batch} prompts splits a pair; DNA-Train needs an even number of groups per batch"
            )
        pairs = [(2 * p, 2 * p + 1) for p in range(num_rows // 2)]
        return GroupRepeatSampler(pairs, num_generations, prompts_per_batch, repeat_count, shuffle, seed, what="pair")


class BalancedSideSampler:
    """SFT sampler for paired rows: real rows and counterfactual rows are shuffled separately and interleaved, so
    every batch of an even size holds as many real as counterfactual examples (the paper's balanced sampling).
    Each pass reshuffles."""

    def __init__(self, sides: Sequence[str], seed: int = 0):
        self.real = [i for i, s in enumerate(sides) if s == "real"]
        self.cf = [i for i, s in enumerate(sides) if s == "cf"]
        if not self.real or not self.cf:
            raise UsageError("balanced SFT needs both real and cf rows")
        self.rng = np.random.default_rng(seed)

    def __iter__(self) -> Iterator[int]:
        n = min(len(self.real), len(self.cf))
        real = self.rng.permutation(self.real)[:n]
        cf = self.rng.permutation(self.cf)[:n]
        for a, b in zip(real.tolist(), cf.tolist()):
            yield a
            yield b

    def __len__(self) -> int:
        return 2 * min(len(self.real), len(self.cf))


def _dna_trainer_class() -> Any:
    from trl import GRPOTrainer

    class DNAGRPOTrainer(GRPOTrainer):
        """TRL's ``GRPOTrainer`` with pair-aware sampling and :func:`compute_advantages`; TRL's loss unchanged.

        The train dataset must be laid out ``[real_0, cf_0, real_1, cf_1, …]`` (:func:`rlcf.envs.text.paired.pair_rows`)
        with ``side`` and ``pair_id`` columns.
        """

        def __init__(
            self, *args: Any, advantage: str = "pair_l1", degenerate: str = "keep", pair_eps: float = 1e-6,
            dynamic_sampling: bool = False, dynamic_max_rounds: int = 3, **kwargs: Any,
        ):
            if advantage not in ADVANTAGES:
                raise UsageError(f"unknown advantage normalization {advantage!r}; valid: {', '.join(ADVANTAGES)}")
            if degenerate not in DEGENERATE_RULES:
                raise UsageError(f"unknown degenerate rule {degenerate!r}; valid: {', '.join(DEGENERATE_RULES)}")
            args_ = kwargs.get("args")
            if args_ is not None and (args_.generation_batch_size // args_.num_generations) % 2:
                raise UsageError(
                    f"a generation batch holds {args_.generation_batch_size // args_.num_generations} groups, an odd number; "
                    "DNA-Train keeps both groups of a pair in one batch: make (generation batch size / num_generations) even"
                )
            data = kwargs.get("train_dataset")
            if data is not None:
                _check_layout(data)
            if dynamic_max_rounds < 0:
                raise UsageError(f"dynamic_max_rounds must be >= 0, got {dynamic_max_rounds}")
            self.dna_advantage, self.dna_degenerate, self.dna_eps = advantage, degenerate, pair_eps
            self.dna_dynamic, self.dna_max_rounds = dynamic_sampling, dynamic_max_rounds
            self._dna_rewards: Any = None
            super().__init__(*args, **kwargs)
            if dynamic_sampling:
                local = self.args.per_device_train_batch_size * self.args.steps_per_generation
                if local % (2 * self.num_generations):
                    raise UsageError(
                        f"dynamic_sampling keeps whole pairs on each process, but a process holds {local} completions, not a "
                        f"multiple of 2 × num_generations = {2 * self.num_generations}; change the batch size"
                    )

        def _get_train_sampler(self, dataset: Any = None) -> Any:
            dataset = self.train_dataset if dataset is None else dataset
            return PairRepeatSampler(
                len(dataset), self.num_generations, self.args.generation_batch_size // self.num_generations,
                repeat_count=self.num_iterations * self.args.steps_per_generation, shuffle=self.shuffle_dataset, seed=self.args.seed,
            )

        def _calculate_rewards(self, inputs: Any, prompts: Any, completions: Any, completion_ids_list: Any) -> Any:
            out = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
            self._dna_rewards = out  # gathered over processes, global order: the pair layout lives here
            return out

        def _scored_rewards(self) -> Any:
            """The last generation's total rewards, global order (NaN where every reward function gave None)."""
            import torch

            per_func = self._dna_rewards
            rewards = (per_func * self.reward_weights.to(per_func.device).unsqueeze(0)).nansum(dim=1)
            rewards[torch.isnan(per_func).all(dim=1)] = torch.nan
            return rewards.cpu()

        def _local_rewards(self, out: Any) -> Any:
            local = out["advantages"].shape[0]
            start = self.accelerator.process_index * local
            return self._scored_rewards()[start : start + local]

        def _live_pairs(self, rewards: Any) -> Any:
            """Per pair of ``rewards`` (local rows, whole pairs): True when neither side's group is all-equal."""
            _, stats = compute_advantages(rewards, self.num_generations, "group", "keep", self.dna_eps)
            return ~stats["degenerate"]

        def _refill_rows(self, round_: int, pairs: int) -> list[dict[str, Any]]:
            """``pairs`` pairs drawn afresh from the train set, each row repeated ``num_generations`` times in the
            sampler's layout. The draw is a function of (seed, step, round, process): resuming redraws the same."""
            rng = np.random.default_rng([self.args.seed, self.state.global_step, round_, self.accelerator.process_index, 7])
            chosen = rng.choice(len(self.train_dataset) // 2, size=pairs, replace=len(self.train_dataset) // 2 < pairs)
            rows: list[dict[str, Any]] = []
            for p in chosen.tolist():
                for k in (2 * p, 2 * p + 1):
                    rows.extend([self.train_dataset[k]] * self.num_generations)
            return rows

        def _dynamic_batch(self, out: Any) -> tuple[Any, Any, dict[str, float], Any]:
            """DAPO's dynamic sampling at the pair level: keep the pairs with no dead side; while fewer than the
            batch's pairs are live, generate fresh pairs (at most ``dynamic_max_rounds`` extra generations, decided
            together on every process) and keep theirs. A batch still short is topped up with the first draw's dead
            pairs (they carry zero advantage, as without dynamic sampling)."""
            import torch

            g2 = 2 * self.num_generations
            rewards = self._local_rewards(out)
            want = rewards.numel() // g2
            live = self._live_pairs(rewards)
            kept = [(0, out, rewards, [int(i) for i in torch.nonzero(live).flatten()])]
            sizes = [rewards.numel()]
            have = len(kept[0][3])
            first_live = have / max(want, 1)
            rounds = 0
            while rounds < self.dna_max_rounds:
                short = torch.tensor([max(want - have, 0)], device=self.accelerator.device)
                if int(self.accelerator.gather(short).max()) == 0:
                    break
                rounds += 1
                extra = super()._generate_and_score_completions(self._refill_rows(rounds, want))
                r = self._local_rewards(extra)
                idx = [int(i) for i in torch.nonzero(self._live_pairs(r)).flatten()][: max(want - have, 0)]
                kept.append((rounds, extra, r, idx))
                sizes.append(r.numel())
                have += len(idx)
            dead = [i for i in range(want) if not bool(live[i])][: max(want - have, 0)]
            kept.append((0, out, rewards, dead))
            parts = [k for k in kept if k[3]]
            batch = _concat_pairs([(o, idx) for _, o, _, idx in parts], self.num_generations, self._tokenizer.pad_token_id)
            local_rewards = torch.cat([r.view(-1, g2)[idx].reshape(-1) for _, _, r, idx in parts])
            mask = batch["completion_mask"] * batch["tool_mask"] if "tool_mask" in batch else batch["completion_mask"]
            batch["num_items_in_batch"] = self.accelerator.gather(mask.sum()).sum()
            global_rewards = self.accelerator.gather(local_rewards.to(self.accelerator.device)).cpu()
            # Where each kept row came from (generation call, row in that call's local output), for the logs.
            sources = [(c, i * g2 + j) for c, _, _, idx in parts for i in idx for j in range(g2)]
            info = {"dna/dynamic_rounds": float(rounds), "dna/first_draw_live_pairs": first_live, "dna/dead_pairs_kept": len(dead) / max(want, 1)}
            return batch, global_rewards, info, (sources, sizes)

        def _generate_and_score_completions(self, inputs: Any) -> Any:
            import torch

            out = super()._generate_and_score_completions(inputs)
            if not self.model.training or self._dna_rewards is None:
                return out
            info: dict[str, float] = {}
            origin = None
            if self.dna_dynamic:
                out, rewards, info, origin = self._dynamic_batch(out)
            else:
                rewards = self._scored_rewards()
            adv, stats = compute_advantages(rewards, self.num_generations, self.dna_advantage, self.dna_degenerate, self.dna_eps)
            local = out["advantages"].shape[0]
            start = self.accelerator.process_index * local
            mine = adv[start : start + local]
            out["advantages"] = mine.to(out["advantages"].device, out["advantages"].dtype)
            # TRL logged its own advantages for the completions table; log the ones the loss uses instead (0 for
            # completions that dynamic sampling generated but left out of the batch).
            if origin is None:
                used = adv.tolist()
            else:
                sources, sizes = origin
                per_call = [torch.zeros(n) for n in sizes]
                for value, (c, row) in zip(mine.tolist(), sources):
                    per_call[c][row] = value
                used = torch.cat([self.accelerator.gather(v.to(self.accelerator.device)).cpu() for v in per_call]).tolist()
            logged = self._logs["advantages"]
            for _ in range(min(len(used), len(logged))):
                logged.pop()
            logged.extend(used)
            self._log_dna(rewards, stats, info)
            return out

        def _log_dna(self, rewards: Any, stats: dict[str, Any], info: dict[str, float]) -> None:
            import torch

            metrics = self._metrics["train"]
            g = rewards.view(-1, self.num_generations)
            metrics["dna/reward_real"].append(float(torch.nanmean(g[0::2])))
            metrics["dna/reward_cf"].append(float(torch.nanmean(g[1::2])))
            metrics["dna/S_real"].append(float(stats["S_real"].mean()))
            metrics["dna/S_cf"].append(float(stats["S_cf"].mean()))
            live = ~stats["degenerate"]
            if live.any():
                metrics["dna/alpha_real"].append(float(stats["alpha_real"][live].mean()))
                metrics["dna/alpha_cf"].append(float(stats["alpha_cf"][live].mean()))
            metrics["dna/degenerate_pairs"].append(float(stats["degenerate"].float().mean()))
            for k, v in info.items():
                metrics[k].append(v)

    return DNAGRPOTrainer



def _concat_pairs(parts: list[tuple[dict[str, Any], list[int]]], num_generations: int, pad_token_id: int | None) -> dict[str, Any]:
    """Row-wise concatenation of chosen pairs from several of TRL's generation outputs (one process's rows).

    ``parts`` holds ``(output, pair indices)``; a pair is ``2 · num_generations`` consecutive rows. Token tensors
    are padded to the longest: prompts on the left (TRL left-pads them), everything else on the right; ids with
    the pad token, masks and log-probabilities with 0, a tool mask with 1. Scalars are left to the caller.
    """
    import torch

    g2 = 2 * num_generations
    keys = [k for k, v in parts[0][0].items() if torch.is_tensor(v) and v.ndim > 0]
    other = [k for k, v in parts[0][0].items() if k not in keys and k != "num_items_in_batch" and v is not None]
    if other:
        raise UsageError(f"dynamic_sampling supports text-only generations; TRL's output also holds {other}")
    out: dict[str, Any] = {}
    for key in keys:
        pieces = []
        for o, idx in parts:
            t = o[key]
            rows = torch.cat([torch.arange(i * g2, (i + 1) * g2) for i in idx]).to(t.device)
            pieces.append(t.index_select(0, rows))
        if pieces[0].ndim > 1:
            width = max(p.shape[1] for p in pieces)
            value = (pad_token_id or 0) if key.endswith("_ids") else 1 if key == "tool_mask" else 0
            left = key.startswith("prompt")
            padded = []
            for p in pieces:
                gap = width - p.shape[1]
                if gap:
                    fill = torch.full((p.shape[0], gap, *p.shape[2:]), value, dtype=p.dtype, device=p.device)
                    p = torch.cat([fill, p] if left else [p, fill], dim=1)
                padded.append(p)
            pieces = padded
        out[key] = torch.cat(pieces, dim=0)
    return out


def _check_layout(data: Any) -> None:
    """The GRPO dataset must alternate real / cf rows of the same pair (what :func:`rlcf.envs.text.paired.pair_rows` makes)."""
    cols = getattr(data, "column_names", None) or (list(data[0]) if len(data) else [])
    for col in ("side", "pair_id"):
        if col not in cols:
            raise UsageError(f"DNA-Train's dataset needs a '{col}' column; build it with rlcf.envs.text.paired.pair_rows")
    sides, pids = list(data["side"]), list(data["pair_id"])
    if len(sides) % 2:
        raise UsageError(f"DNA-Train's dataset has {len(sides)} rows, an odd number; it must be [real, cf] pairs (rlcf.envs.text.paired.pair_rows)")
    for k in range(0, len(sides), 2):
        if (sides[k], sides[k + 1]) != ("real", "cf") or pids[k] != pids[k + 1]:
            raise UsageError(f"DNA-Train's dataset rows {k} and {k + 1} are not one pair's real and cf sides; lay rows out with rlcf.envs.text.paired.pair_rows")


def __getattr__(name: str) -> Any:  # DNAGRPOTrainer imports TRL only when asked for
    if name == "DNAGRPOTrainer":
        return _dna_trainer_class()
    raise AttributeError(name)


# --------------------------------------------------------------------------------------------------------------
# The algorithm.


@dataclass
class DNATrainConfig(LLMConfigChecks):
    """DNA-Train on the embedded paired grounded-QA task (or any model id / folder)."""

    model: str = option("tiny", "'tiny' builds the embedded tiny LM; otherwise a Hugging Face model id or a local folder.")
    tiny: TinyLMConfig = field(
        default_factory=lambda: TinyLMConfig(hidden_size=128, layers=4, intermediate_size=384, prefix_space=True),
        metadata={"help": "Shape of the embedded tiny model."},
    )
    data: str = option(
        "embedded",
        "'embedded' (the paired grounded-QA task) or a dataset id / local folder for datasets.load_dataset with columns "
        "pair_id, side (real|cf), question, options, solution, prompt, and completion (the SFT target)",
    )
    train_split: str = option("train", "Split of 'data' for SFT and RL (user data only).")
    eval_split: str = option("test", "Split of 'data' for evaluation (user data only).")
    train_pairs: int = option(400, "Pairs for the RL stage.")
    eval_pairs: int = option(60, "Held-out pairs for evaluation (documents never in training).")
    data_seed: int = option(0, "Seed of the generated task data (fixed across runs so that runs compare).")
    layout: str = option(
        "profile",
        "Embedded task: 'profile' (one person's attributes in a fixed order; the tiny model learns to read it) or "
        "'people' (facts about several people: reading needs name matching, for real models).",
    )
    facts_per_doc: int = option(4, "Facts per document (one is the evidence; at most 4 with layout 'profile').")
    num_options: int = option(4, "Options per question (shared by both sides of a pair).")
    usual_share: float = option(0.9, "Share of real documents whose evidence follows the person's usual value (the tempting prior).")
    sft_data: str = option("paired", "SFT data: paired (balanced real/cf batches) or real (real rows only, as many rows: the data ablation).")
    sft_pairs: int = option(1500, "Pairs for SFT (real-only SFT draws twice as many real documents).")
    sft_epochs: float = option(
        1.0,
        "SFT epochs (0 skips SFT: the model is used as given). The tiny model's default is a warm start (about 94 steps: it reads "
        "some edits and leans on the prior on others); two epochs reach 100% held-out pair accuracy and leave RL nothing to add.",
    )
    sft_lr: float = option(1e-3, "SFT learning rate (tiny model; use ~1e-6 to 2e-5 for real models).")
    sft_batch_size: int = option(32, "SFT batch size (even: half real, half cf).")
    sft_answer_weight: float = option(
        14.0,
        "SFT loss weight of the answer tokens (between <answer> and </answer>) against 1 for the rest of the "
        "completion: the answer is the one token that needs the document (as DeFacto's sft_answer_weight).",
    )
    rewards: tuple[str, ...] = option(("think_answer_format", "choice"), "Reward functions by name (the paper: r_f + r_c).")
    reward_weights: tuple[float, ...] | None = option(None, "One weight per reward (default all 1).")
    advantage: str = option("pair_l1", "Advantage normalization: pair_l1 (DNA), group (GRPO/DAPO baseline) or none (r - mean).")
    degenerate: str = option("keep", "Live side of a pair whose other group is all-equal: keep (α=1), halve (α=1/2), drop (α=0).")
    pair_eps: float = option(1e-6, "A group with mean |advantage| at most this is degenerate.")
    dynamic_sampling: bool = option(
        False,
        "DAPO's dynamic sampling, per pair: drop pairs with a dead side (a group whose rewards are all equal) and refill the "
        "batch with freshly generated pairs, up to dynamic_max_rounds extra generations per step.",
    )
    dynamic_max_rounds: int = option(3, "With dynamic_sampling: the most extra generations per step (a batch still short keeps dead pairs).")
    num_generations: int = option(8, "Completions per prompt (each side's group).")
    pairs_per_step: int = option(4, "Pairs per optimizer step (batch = 2 × pairs × generations completions).")
    max_completion_length: int = option(24, "Longest completion, in tokens.")
    temperature: float = option(
        0.5,
        "Sampling temperature of the rollouts. The tiny warm-started model samples mostly malformed completions at 1.0 "
        "(RL then degrades it; bench/results/dna.md); real models: the paper's 1.0.",
    )
    learning_rate: float = option(2e-4, "RL learning rate (tiny model; the paper uses 1e-6 for 7B).")
    beta: float = option(0.0, "KL coefficient (DAPO: none).")
    loss_type: str = option("dapo", "TRL loss aggregation (DAPO: token-level).")
    epsilon: float = option(0.2, "Lower clip range.")
    epsilon_high: float = option(0.28, "Upper clip range (DAPO's clip-higher).")
    use_vllm: bool = option(False, "Generate with vLLM (GPU only).")
    eval_max_new_tokens: int = option(24, "Generation length in evaluation.")
    prompt_format: str = prompt_format_option()
    grpo: dict[str, Any] = trl_passthrough("grpo")
    sft: dict[str, Any] = trl_passthrough("sft")

    def __post_init__(self) -> None:
        self.check_llm_fields(("train_pairs", "eval_pairs", "sft_pairs", "num_generations", "pairs_per_step", "max_completion_length", "sft_batch_size"))
        require(self.sft_data in ("paired", "real"), "sft_data", f"must be paired or real, got {self.sft_data!r}")
        require(self.sft_batch_size % 2 == 0, "sft_batch_size", f"must be even (half real, half cf), got {self.sft_batch_size}")
        require(self.advantage in ADVANTAGES, "advantage", f"must be one of {', '.join(ADVANTAGES)}, got {self.advantage!r}")
        require(self.degenerate in DEGENERATE_RULES, "degenerate", f"must be one of {', '.join(DEGENERATE_RULES)}, got {self.degenerate!r}")
        require(self.dynamic_max_rounds >= 0, "dynamic_max_rounds", f"must be >= 0, got {self.dynamic_max_rounds}")
        require(self.epsilon_high >= self.epsilon, "epsilon_high", f"must be >= epsilon ({self.epsilon}), got {self.epsilon_high}")
        require(self.facts_per_doc >= 2, "facts_per_doc", f"must be >= 2, got {self.facts_per_doc}")
        require(self.layout in ("people", "profile"), "layout", f"must be people or profile, got {self.layout!r}")
        require(
            self.layout == "people" or self.facts_per_doc <= 4,
            "facts_per_doc",
            f"must be in [2, 4] with layout 'profile' (one fact per attribute), got {self.facts_per_doc}",
        )
        require(0.0 <= self.usual_share <= 1.0, "usual_share", f"must be in [0, 1], got {self.usual_share}")


def _task(config: DNATrainConfig) -> Any:
    from rlcf.envs.text.grounded_pairs import GroundedPairsConfig

    return GroundedPairsConfig(
        facts_per_doc=config.facts_per_doc, num_options=config.num_options, usual_share=config.usual_share, layout=config.layout
    )


def load_user_pairs(config: DNATrainConfig, split: str) -> list[dict[str, Any]]:
    """``config.data``'s ``split`` through ``datasets.load_dataset`` (a hub id or a local folder of
    ``<split>.jsonl`` / parquet files), validated and laid out [real, cf, …] by :func:`rlcf.envs.text.paired.pair_rows`."""
    from rlcf.algos.llm_trainer import load_user_rows
    from rlcf.envs.text.paired import pair_rows

    name = config.train_split if split == "train" else config.eval_split
    rows = load_user_rows(config.data, name, "train_split" if split == "train" else "eval_split")
    missing = [c for c in ("prompt",) if rows and c not in rows[0]]
    if missing:
        raise UsageError(f"dataset {config.data!r} [{name}] has no '{missing[0]}' column; paired rows need pair_id, side, question, options, solution, prompt")
    return pair_rows(rows, where=f"dataset {config.data!r} [{name}]")


def pair_data(config: DNATrainConfig, split: str, pairs: int, seed: int, sides: tuple[str, ...] = ("real", "cf")) -> list[dict[str, Any]]:
    """Rows validated and laid out [real, cf, …] (real-only when ``sides`` is ``("real",)``): the embedded task's,
    or the first ``pairs`` pairs of ``config.data``'s split."""
    from rlcf.envs.text.grounded_pairs import grounded_pair_rows
    from rlcf.envs.text.paired import pair_rows

    if config.data != "embedded":
        rows = load_user_pairs(config, split)[: 2 * pairs] if sides == ("real", "cf") else load_user_pairs(config, split)
        return rows if sides == ("real", "cf") else [r for r in rows if r["side"] in sides]
    rows = grounded_pair_rows(split, pairs, seed=seed, config=_task(config), sides=sides)
    return pair_rows(rows, where=f"{split} pairs") if sides == ("real", "cf") else rows


def _sft_rows(config: DNATrainConfig) -> tuple[list[dict[str, Any]], Any]:
    from rlcf.envs.text.grounded_pairs import completion_for

    seed = config.data_seed + 1
    if config.sft_data == "paired":
        rows = pair_data(config, "train", config.sft_pairs, seed)
        sampler = BalancedSideSampler([r["side"] for r in rows], seed=seed)
    else:
        rows = pair_data(config, "train", 2 * config.sft_pairs, seed, sides=("real",))
        sampler = None
    if config.data != "embedded":
        if any(not r.get("completion") for r in rows):
            raise UsageError(f"dataset {config.data!r}: SFT needs a 'completion' column (the target text) in every row; add it or set sft_epochs: 0")
        return rows, sampler
    return [{**r, "completion": completion_for(r)} for r in rows], sampler


@algos.register("dna-train", help="DNA-Train: paired SFT then DAPO with pair-wise l1 (duality-normalized) advantages")
class DNATrain(LLMAlgorithm, Algorithm):
    """The stages are :class:`rlcf.algos.llm_trainer.LLMAlgorithm`'s; this says what DNA-Train's are made of."""

    Config = DNATrainConfig
    rl_stage = "RL"

    @classmethod
    def eval_data(cls, config: DNATrainConfig) -> list[dict[str, Any]]:
        return pair_data(config, "eval", config.eval_pairs, config.data_seed)

    @classmethod
    def train_data(cls, config: DNATrainConfig) -> list[dict[str, Any]]:
        return pair_data(config, "train", config.train_pairs, config.data_seed + 1000)

    @classmethod
    def sft_data(cls, config: DNATrainConfig) -> dict[str, Any]:
        rows, sampler = _sft_rows(config)  # bad data fails here, before training
        return {"rows": rows, "sampler": sampler, "tag_weights": {"answer": config.sft_answer_weight}}

    @classmethod
    def instruction(cls, config: DNATrainConfig) -> str:
        return "Answer the question from the facts with one of the options. Write <think>your reasoning</think><answer>the option</answer>."

    @classmethod
    def tiny_corpus(cls, config: DNATrainConfig, train_rows: list[dict[str, Any]]) -> list[str]:
        from rlcf.envs.text.grounded_pairs import completion_for

        if config.data == "embedded":
            return [r["prompt"] + completion_for(r) for r in pair_data(config, "train", 200, config.data_seed + 2000)]
        return [r["prompt"] + str(r.get("completion") or r["solution"]) for r in train_rows]

    @classmethod
    def evaluate(cls, config: DNATrainConfig, model: Any, processing_class: Any, rows: list[dict[str, Any]], completions: Any = None) -> dict[str, Any]:
        from rlcf.eval.llm import evaluate_pairs

        return evaluate_pairs(model, processing_class, rows, config.eval_max_new_tokens, completions=completions)

    @classmethod
    def rollout_batch(cls, config: DNATrainConfig) -> int:
        return 2 * config.pairs_per_step * config.num_generations  # both sides of every pair

    @classmethod
    def grpo_settings(cls, config: DNATrainConfig) -> dict[str, Any]:
        return {"epsilon": config.epsilon, "epsilon_high": config.epsilon_high}

    @classmethod
    def make_trainer(cls, config: DNATrainConfig, model: Any, processing_class: Any, args: Any, train_rows: list[dict[str, Any]],
                     rewards: Any, run: Any) -> Any:
        from datasets import Dataset

        from rlcf.algos.llm_trainer import trainer_callbacks

        return _dna_trainer_class()(
            model=model,
            reward_funcs=list(rewards.functions),
            args=args,
            train_dataset=Dataset.from_list(train_rows),
            processing_class=processing_class,
            callbacks=trainer_callbacks(run, "dna-train"),
            advantage=config.advantage,
            degenerate=config.degenerate,
            pair_eps=config.pair_eps,
            dynamic_sampling=config.dynamic_sampling,
            dynamic_max_rounds=config.dynamic_max_rounds,
        )

    @classmethod
    def result_name(cls, config: DNATrainConfig) -> str:
        return f"dna-{config.advantage}"
