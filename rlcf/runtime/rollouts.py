"""LLM rollout actors: generate completions for a prompt dataset, score them, write a rollout dataset.

A pool of Ray actors (:class:`~rlcf.runtime.pool.ShardPool`), each holding one copy of the model, works through
shards of prompts. Sampling is seeded per prompt (``seed``, ``prompt_id``), and each prompt's group is generated in
one call, so a prompt's completions do not depend on which actor ran it or how many actors there were; an actor
that dies costs only its unfinished shards, which another actor re-runs with identical results. Completions are
scored by registered reward functions (each logged as its own column) and written as one row per completion:

    prompt_id, group_index, prompt, completion, reward/<fn>..., reward (weighted sum), <the prompt's other columns>

into ``<out>/rollouts.parquet`` plus ``<out>/meta.json``, atomically (a folder appears only when complete).
Load it back with :func:`load_rollouts` (which refuses a folder whose row count or keys do not add up) or with
``datasets.load_dataset("parquet", data_files=...)``; the format lives in :mod:`rlcf.data.rollouts`.

One call of :func:`generate_rollouts` starts its actors and stops them; a loop that generates again and again keeps
:class:`RolloutActors` instead, so each actor starts (imports torch and transformers, loads the model) once and
fetches each new version of the weights once.

Backends: Hugging Face ``transformers`` everywhere; vLLM when ``backend="vllm"`` (or ``"auto"`` with vLLM
installed and a GPU present).
"""

from __future__ import annotations

import logging
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rlcf.data.rollouts import META_FILE, ROLLOUT_FILE, load_rollouts, prompt_rows, write_rollouts
from rlcf.errors import UsageError

log = logging.getLogger(__name__)

__all__ = [
    "RolloutActors", "RolloutConfig", "RolloutWorker", "generate_rollouts", "load_rollouts", "prompt_rows", "seed_for",
    "split_shards", "write_rollouts", "ROLLOUT_FILE", "META_FILE",
]



@dataclass(frozen=True)
class RolloutConfig:
    """What each rollout actor loads and how it samples."""

    model: str
    num_generations: int = 4
    max_new_tokens: int = 48
    temperature: float = 1.0  # 0: greedy (then every completion of a group is the same)
    top_p: float = 1.0
    seed: int = 0
    rewards: tuple[str, ...] = ()
    reward_weights: tuple[float, ...] | None = None
    backend: str = "auto"  # "auto" | "hf" | "vllm"
    device: str = "auto"
    # torch CPU threads per actor, and the Ray CPUs each actor reserves; 0: the process's CPU share (1 CPU and
    # 1 thread per Ray actor; in this process, OMP_NUM_THREADS or the CPUs it may run on). See rlcf.runtime.threads.
    threads: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.num_generations < 1:
            raise UsageError(f"num_generations must be >= 1, got {self.num_generations}")
        if self.max_new_tokens < 1:
            raise UsageError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if self.temperature < 0:
            raise UsageError(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise UsageError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.threads < 0:
            raise UsageError(f"threads must be >= 0 (0: the process's CPU share), got {self.threads}")
        if self.backend not in ("auto", "hf", "vllm"):
            raise UsageError(f"backend must be one of auto, hf, vllm; got {self.backend!r}")
        if self.rewards:
            from rlcf.reward_set import RewardSet

            RewardSet(list(self.rewards), self.reward_weights, field="reward_weights")  # unknown names fail here


def seed_for(seed: int, prompt_id: int) -> int:
    """The sampling seed of one prompt's group (independent of actors and shards)."""
    return (int(seed) * 1_000_003 + int(prompt_id) * 7919 + 17) % 2**31


class RolloutWorker:
    """Holds one model copy; :meth:`run` turns a shard of prompt rows into scored completion rows."""

    def __init__(self, config: RolloutConfig):
        import torch

        from rlcf.runtime.threads import set_torch_threads

        self.config = config
        set_torch_threads(config.threads)
        cuda = torch.cuda.is_available() and config.device in ("auto", "cuda") or config.device.startswith("cuda:")
        self.device = torch.device(config.device if config.device.startswith("cuda:") else ("cuda" if cuda else "cpu"))
        self.backend = config.backend
        import importlib.util

        if self.backend == "auto":
            self.backend = "vllm" if (cuda and importlib.util.find_spec("vllm") is not None) else "hf"
        elif self.backend == "vllm" and (importlib.util.find_spec("vllm") is None or not cuda):
            raise UsageError(
                "backend 'vllm' needs the vllm package and a CUDA GPU on the actor's node "
                f"({'vllm is not installed' if importlib.util.find_spec('vllm') is None else 'no GPU'}); "
                "install vllm on GPU nodes, or use backend 'hf' (or 'auto', which picks vLLM where it can run)"
            )
        if self.backend == "vllm":
            from vllm import LLM  # noqa: PLC0415 - optional, GPU nodes only

            self.llm = LLM(model=config.model, seed=config.seed, **config.extra)
        else:
            from rlcf.algos.llm_common import load_model

            self.model, self.tokenizer = load_model(config.model, self.device)
            self.model.eval()
        self.weights_version: int | None = None  # None: the weights of config.model as loaded
        self.weight_loads = 0
        self.rewards = None
        if config.rewards:
            from rlcf.reward_set import RewardSet

            self.rewards = RewardSet(list(config.rewards), config.reward_weights, field="reward_weights")

    def _generate_hf(self, prompt: str, seed: int) -> list[str]:
        import torch

        c = self.config
        enc = self.tokenizer([prompt], return_tensors="pt").to(self.device)
        torch.manual_seed(seed)
        sample = c.temperature > 0
        kwargs: dict[str, Any] = {"do_sample": sample, "max_new_tokens": c.max_new_tokens,
                                  "num_return_sequences": c.num_generations if sample else 1,
                                  "pad_token_id": self.tokenizer.pad_token_id}
        if sample:
            kwargs.update(temperature=c.temperature, top_p=c.top_p, top_k=0)
        with torch.no_grad():
            ids = self.model.generate(**enc, **kwargs)
        texts = self.tokenizer.batch_decode(ids[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
        return texts if sample else texts * c.num_generations  # greedy: one decode, the same for the whole group

    def _generate_vllm(self, prompt: str, seed: int) -> list[str]:
        from vllm import SamplingParams

        c = self.config
        params = SamplingParams(n=c.num_generations, temperature=c.temperature, top_p=c.top_p,
                                max_tokens=c.max_new_tokens, seed=seed)
        return [o.text for o in self.llm.generate([prompt], params, use_tqdm=False)[0].outputs]

    def load_weights(self, version: int, box: list[Any]) -> bool:
        """Load the state dict in ``box`` (a one-item list holding it or its Ray object ref) unless this worker
        already holds ``version``; returns whether it loaded. Actors receive the ref, not the tensors, with every
        call, so each fetches a version's weights once."""
        if version == self.weights_version:
            return False
        if self.backend == "vllm":
            raise UsageError("weight updates reach rollout actors on backend 'hf' only; reload a vLLM actor from a saved model")
        state = box[0]
        ray = sys.modules.get("ray")  # a ref can only come from a process that imported Ray
        if ray is not None and isinstance(state, ray.ObjectRef):
            state = ray.get(state)
        self.model.load_state_dict(state)
        self.weights_version = version
        self.weight_loads += 1
        return True

    def run(self, shard: list[dict[str, Any]], weights: tuple[int, list[Any]] | None = None) -> list[dict[str, Any]]:
        """Completion rows of ``shard``; ``weights``: ``(version, [state dict or its ref])`` to sample from."""
        c = self.config
        if weights is not None:
            self.load_weights(*weights)
        generate = self._generate_vllm if self.backend == "vllm" else self._generate_hf
        out: list[dict[str, Any]] = []
        for row in shard:
            completions = generate(row["prompt"], seed_for(c.seed, row["prompt_id"]))
            for g, completion in enumerate(completions):
                out.append({"prompt_id": int(row["prompt_id"]), "group_index": g, "completion": completion,
                            **{k: v for k, v in row.items() if k not in ("prompt_id", "completion")}})
        if self.rewards is not None and out:
            columns = {k: [r.get(k) for r in out] for k in out[0] if k not in ("prompt", "completion")}
            scores = self.rewards([r["prompt"] for r in out], [r["completion"] for r in out], **columns)
            for name, values in scores.items():
                key = "reward" if name == "total" else f"reward/{name}"
                for r, v in zip(out, values):
                    r[key] = None if v is None else float(v)
        return out

    def ping(self) -> bool:
        return True

    def stats(self) -> dict[str, Any]:
        """What this worker holds: its weights version and how many times it loaded new weights."""
        return {"weights_version": self.weights_version, "weight_loads": self.weight_loads, "pid": os.getpid()}


def split_shards(rows: list[dict[str, Any]], prompts_per_shard: int, workers: int = 1) -> list[list[dict[str, Any]]]:
    """Consecutive shards of at most ``prompts_per_shard`` rows; with several ``workers``, the last
    ``2 * workers * prompts_per_shard`` rows go one per shard, so the actors run out of work within about one
    prompt of each other instead of one idling while another finishes a full shard (and one queued behind it).
    A prompt's completions do not depend on its shard (sampling is seeded per prompt), so neither do the rows."""
    size = max(1, int(prompts_per_shard))
    if workers <= 1 or size == 1:
        return [rows[i:i + size] for i in range(0, len(rows), size)]
    bulk = max(0, len(rows) - 2 * workers * size)
    bulk -= bulk % size  # whole shards before the tail; the remainder joins the tail
    return [rows[i:i + size] for i in range(0, bulk, size)] + [[r] for r in rows[bulk:]]


class RolloutActors:
    """Ray rollout actors kept alive across calls, so their start-up is paid once.

    A new actor is a fresh process that imports torch and transformers and loads the model: seconds, which on a
    short job is most of the time (issue 18). A loop that samples every iteration, or evaluates every few steps,
    keeps one of these; :meth:`set_weights` puts the policy's new weights in the object store once per version,
    and each actor fetches them once (an actor that replaces a dead one fetches them on its first shard).

    Args:
        config: what every actor loads and how it samples.
        actors: number of actors (each holds a model copy).
        actor_options: Ray actor options; ``num_cpus`` defaults to ``config.threads`` (at least 1).
        max_actor_restarts: how many dead actors may be replaced before a run fails.
    """

    def __init__(self, config: RolloutConfig, actors: int = 2, *, actor_options: dict[str, Any] | None = None,
                 max_actor_restarts: int = 3):
        from rlcf.runtime.pool import ShardPool

        if actors < 1:
            raise UsageError(f"actors must be >= 1, got {actors}")
        options = dict(actor_options or {})
        options.setdefault("num_cpus", max(1, config.threads))
        self.config = config
        self.actors = actors
        self.weights: tuple[int, list[Any]] | None = None
        self.pool = ShardPool(RolloutWorker, [config], "run", actors=actors, actor_options=options,
                              max_actor_restarts=max_actor_restarts, what="rollout")

    def set_weights(self, state_dict: dict[str, Any], version: int | None = None) -> int:
        """Sample from ``state_dict`` (the model's ``state_dict()``, on CPU) from the next call on.

        Args:
            version: a number that changes with the weights (a training step); default: the last one plus 1.

        Returns:
            The version the actors will hold.
        """
        import ray

        if version is None:
            version = self.weights[0] + 1 if self.weights is not None else 1
        self.weights = (int(version), [ray.put(state_dict)])  # in a list: actors get the ref and fetch it once
        return int(version)

    def wait_ready(self) -> None:
        """Block until every actor has started and loaded its model (start-up can then overlap other work)."""
        import ray

        ray.get([actor.ping.remote() for actor in self.pool.live.values()])

    def stats(self) -> list[dict[str, Any]]:
        """Each live actor's :meth:`RolloutWorker.stats` (weights version, weight loads, pid)."""
        import ray

        return ray.get([actor.stats.remote() for actor in self.pool.live.values()])

    def run(self, shards: list[list[dict[str, Any]]], on_result: Any, on_progress: Any = None) -> None:
        """Run shards of prompt rows through the actors (see :meth:`ShardPool.run`)."""
        self.pool.run(shards, on_result, on_progress, args=() if self.weights is None else (self.weights,))

    def generate(self, rows: list[dict[str, Any]], **kwargs: Any) -> list[dict[str, Any]]:
        """:func:`generate_rollouts` on these actors (same keyword arguments)."""
        return generate_rollouts(self.config, rows, actors=self, **kwargs)

    def close(self) -> None:
        self.pool.close()

    def __enter__(self) -> RolloutActors:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def generate_rollouts(
    config: RolloutConfig,
    rows: list[dict[str, Any]],
    *,
    actors: int | RolloutActors = 1,
    prompts_per_shard: int = 4,
    out: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
    actor_options: dict[str, Any] | None = None,
    max_actor_restarts: int = 3,
    on_progress: Any = None,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Generate and score ``num_generations`` completions per prompt row; optionally write them to ``out``.

    Args:
        actors: Ray actors (each holds a model copy) started for this call and stopped after it; ``0`` runs in
            this process without Ray; a :class:`RolloutActors` runs on those (kept alive for later calls).
        prompts_per_shard: prompts per actor call; smaller bounds what a dead actor takes with it.
        out: folder to write ``rollouts.parquet`` and ``meta.json`` into (atomically).
        on_progress: ``fn(pool, shards_done)`` after each shard (Ray only; used by the fault test).

    Returns:
        The rows, ordered by (prompt_id, group_index).
    """
    from rlcf.progress import progress as progress_bar

    if isinstance(actors, RolloutActors) and actors.config != config:
        raise UsageError("the RolloutActors were started with a different RolloutConfig than this call's")
    if out is not None:
        out = Path(out)
        if out.exists() and not overwrite:
            raise UsageError(f"'{out}' exists; pass overwrite=True (--overwrite) to replace it")
    workers = actors.actors if isinstance(actors, RolloutActors) else max(0, actors)
    shards = split_shards(rows, prompts_per_shard, workers)
    results: dict[int, list[dict[str, Any]]] = {}
    start = time.perf_counter()
    with progress_bar(f"rollouts {config.model}", total=len(rows)) as bar:

        def record(index: int, shard_rows: list[dict[str, Any]]) -> None:
            results[index] = shard_rows
            if progress:
                done = sum(len(shards[i]) for i in results)
                bar.advance(len(shards[index]), prompts_per_s=round(done / max(time.perf_counter() - start, 1e-9), 2))

        if isinstance(actors, RolloutActors):
            actors.run(shards, record, on_progress)
        elif actors <= 0:
            worker = RolloutWorker(config)
            for i, shard in enumerate(shards):
                record(i, worker.run(shard))
        else:
            with RolloutActors(config, actors, actor_options=actor_options, max_actor_restarts=max_actor_restarts) as pool:
                pool.run(shards, record, on_progress)
    seconds = time.perf_counter() - start
    out_rows = sorted((r for rs in results.values() for r in rs), key=lambda r: (r["prompt_id"], r["group_index"]))
    if out is not None:
        meta = {"config": {**asdict(config), "rewards": list(config.rewards)}, "prompts": len(rows),
                "rows": len(out_rows), "actors": workers, "seconds": round(seconds, 3)}
        write_rollouts(out_rows, out, meta, overwrite=overwrite)
    return out_rows
