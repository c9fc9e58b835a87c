"""Training a behaviour policy with RLlib multi-agent PPO (new API stack): :func:`train_behaviour` trains on an env
spec's :class:`~rlcf.envs.spec.TeamParallelEnv` (the controlled agents only; scripted opponents stay inside the env)
and writes a run folder::

    <out_dir>/<env_id>/seed<seed>/
        curve.jsonl          one row per training iteration
        behaviour.json       env, seed, hyperparameters, module mapping, checkpoints (rewritten as they appear)
        iter_00010/          RLlib algorithm checkpoint + rlcf_checkpoint.json (written atomically)
        ...

The PPO set-up is :mod:`rlcf.envs.behaviour.ppo_config`; :class:`~rlcf.envs.behaviour.trained.TrainedPolicy` acts
with a checkpoint. Ray, RLlib and torch are imported inside :func:`train_behaviour`: importing this module stays cheap.
"""

from __future__ import annotations

import json
import logging
import math
import os
import platform
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rlcf.atomic import TMP_PREFIX, atomic_dir, atomic_write_text
from rlcf.envs.behaviour.ppo_config import DEFAULTS, TEAM_RETURN_DEFINITION, module_groups, ppo_config
from rlcf.envs.behaviour.trained import CHECKPOINT_META, RL_MODULE_DIR
from rlcf.errors import UsageError
from rlcf.runtime.cluster import ensure_ray

__all__ = ["BEHAVIOUR_JSON", "CURVE_JSONL", "train_behaviour"]

log = logging.getLogger("rlcf")

BEHAVIOUR_JSON = "behaviour.json"
CURVE_JSONL = "curve.jsonl"
_LEARNER_KEYS = ("policy_loss", "vf_loss", "vf_explained_var", "entropy", "mean_kl_loss")


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (np.floating, np.integer)) or (hasattr(value, "item") and getattr(value, "ndim", 1) == 0):
        return _jsonable(value.item())
    return value


def train_behaviour(
    env_id: str,
    out_dir: str | os.PathLike[str],
    *,
    iterations: int = DEFAULTS["iterations"],
    seed: int = 0,
    checkpoint_every: int = DEFAULTS["checkpoint_every"],
    train_batch_size: int = DEFAULTS["train_batch_size"],
    lr: float = DEFAULTS["lr"],
    minibatch_size: int = DEFAULTS["minibatch_size"],
    num_epochs: int = DEFAULTS["num_epochs"],
    gamma: float = DEFAULTS["gamma"],
    entropy_coeff: float | None = None,
    fcnet_hiddens: Sequence[int] = tuple(DEFAULTS["fcnet_hiddens"]),
    num_env_runners: int = 0,
    shared_policy: bool | None = None,
    overwrite: bool = False,
    progress: Callable[[dict[str, Any]], None] | None = None,
) -> Path:
    """Train multi-agent PPO (RLlib, new API stack) on ``env_id`` and write curve, checkpoints and metadata.

    Defaults, chosen for 25-step MPE episodes on a small CPU machine: 1,000 env steps per iteration
    (40 episodes), 15 epochs of 256-sample minibatches, Adam lr 1e-3, gamma 0.95 and GAE lambda 0.95 (the
    horizon is short and rewards are dense), PPO clip 0.2 without the KL term, entropy bonus 0.01 for
    discrete actions and 0 for continuous ones, separate 64-64 tanh policy and value networks, value loss
    weight 0.5 with its clipping effectively off (RLlib clips the squared error at ``vf_clip_param``, 10 by
    default, which stalls the value net on MPE's returns of -20 to -60 per agent).

    The curve's ``team_return`` is the mean, over the episodes that ended during the iteration, of the sum of
    the spec's team reward over the episode; ``rllib_episode_return_mean`` is RLlib's own number (the sum of
    *all* agents' rewards, smoothed over 100 episodes) and is kept only for comparison.

    Args:
        env_id: registered env id, e.g. ``"mpe-simple_spread"``.
        out_dir: root folder; the run goes to ``out_dir/<env_id>/seed<seed>/``.
        iterations: PPO iterations (each samples ``train_batch_size`` env steps, then updates).
        seed: seed of RLlib (modules, sampling, env resets).
        checkpoint_every: write ``iter_<NNNNN>/`` every this many iterations; the last one is always written.
        train_batch_size: env steps sampled per iteration (every controlled agent acts in each step).
        lr: Adam learning rate.
        minibatch_size: agent steps per SGD minibatch (at most ``train_batch_size``, which RLlib demands).
        num_epochs: passes over each batch.
        gamma: discount factor.
        entropy_coeff: entropy bonus; ``None`` picks 0.01 (discrete actions) or 0.0 (continuous).
        fcnet_hiddens: hidden layer sizes of the policy and value networks.
        num_env_runners: 0 samples in this process (best on 2 cores), 1 in one remote env runner.
        shared_policy: module sharing, see :func:`module_groups`.
        overwrite: replace an existing run folder instead of failing.
        progress: called with each curve row (a dict) after every iteration.

    Returns:
        The run folder ``out_dir/<env_id>/seed<seed>``.

    Raises:
        UsageError: unknown env, bad arguments, or an existing run folder without ``overwrite``.
    """
    from rlcf.registry import envs

    spec = envs.get(env_id)
    ok, why = spec.available()
    if not ok:
        raise UsageError(why)
    for name, value in (("iterations", iterations), ("checkpoint_every", checkpoint_every)):
        if int(value) < 1:
            raise UsageError(f"{name} must be >= 1, got {value}")
    if train_batch_size < 1 or minibatch_size < 1 or num_epochs < 1:
        raise UsageError("train_batch_size, minibatch_size and num_epochs must be >= 1")
    if num_env_runners not in (0, 1):
        raise UsageError(f"num_env_runners must be 0 (sample in this process) or 1, got {num_env_runners}")
    if not lr > 0:
        raise UsageError(f"lr must be > 0, got {lr}")

    # Module layout first: a bad shared_policy must fail before an old run folder is touched.
    probe = spec.make()
    try:
        groups = module_groups(probe, shared_policy)
    finally:
        probe.close()

    run_dir = Path(out_dir) / spec.id / f"seed{seed}"
    if run_dir.exists() and any(not p.name.startswith(TMP_PREFIX) for p in run_dir.iterdir()):
        if not overwrite:
            raise UsageError(
                f"run folder '{run_dir}' already exists; pass overwrite=True (--overwrite), another seed, or another out dir"
            )
        import shutil

        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)

    if entropy_coeff is None:
        entropy_coeff = (
            DEFAULTS["entropy_coeff_discrete"] if spec.action_type == "discrete" else DEFAULTS["entropy_coeff_continuous"]
        )
    hyper = {
        "iterations": int(iterations),
        "checkpoint_every": int(checkpoint_every),
        "train_batch_size": int(train_batch_size),
        # RLlib's PPO refuses a minibatch larger than the (env-step) train batch.
        "minibatch_size": min(int(minibatch_size), int(train_batch_size)),
        "num_epochs": int(num_epochs),
        "lr": float(lr),
        "gamma": float(gamma),
        "lambda_": DEFAULTS["lambda_"],
        "clip_param": DEFAULTS["clip_param"],
        "use_kl_loss": False,
        "entropy_coeff": float(entropy_coeff),
        "vf_loss_coeff": DEFAULTS["vf_loss_coeff"],
        "vf_clip_param": DEFAULTS["vf_clip_param"],
        "fcnet_hiddens": [int(h) for h in fcnet_hiddens],
        "fcnet_activation": DEFAULTS["fcnet_activation"],
        "vf_share_layers": False,
        "num_env_runners": int(num_env_runners),
        "shared_policy": shared_policy,
    }

    import ray
    import torch

    meta: dict[str, Any] = {
        "env_id": spec.id,
        "spec": spec.to_metadata(),
        "seed": int(seed),
        "algorithm": "PPO (RLlib new API stack)",
        "hyperparameters": hyper,
        "modules": groups,
        "team_return_definition": TEAM_RETURN_DEFINITION,
        "versions": {"ray": ray.__version__, "torch": torch.__version__, "python": platform.python_version()},
        "iterations_done": 0,
        "env_steps": 0,
        "complete": False,
        "checkpoints": [],
    }
    atomic_write_text(run_dir / BEHAVIOUR_JSON, json.dumps(meta, indent=2))

    config = ppo_config(spec.id, groups, hyper, seed)

    # On a 2-core machine torch's default intra-op pool spins against the env and Ray's processes: a 64-64
    # MLP forward pass took 3.5 ms with 2 threads and 0.1 ms with 1, so sample and learn single-threaded.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    # A small private cluster (the object store holds only sampled batches) unless one is running already.
    started = ensure_ray(num_cpus=2 + num_env_runners, object_store_memory=256 * 1024**2)
    algo = None
    curve: list[dict[str, Any]] = []
    start = time.monotonic()
    try:
        algo = config.build_algo()
        prev_total, prev_count = 0.0, 0.0
        for it in range(1, int(iterations) + 1):
            result = algo.train()
            runners = result.get("env_runners", {})
            total = float(runners.get("rlcf_team_return_total", prev_total))
            count = float(runners.get("rlcf_team_episodes_total", prev_count))
            episodes = int(round(count - prev_count))
            team_return = (total - prev_total) / episodes if episodes > 0 else None
            prev_total, prev_count = total, count
            env_steps = int(result.get("num_env_steps_sampled_lifetime", runners.get("num_env_steps_sampled_lifetime", 0)))
            row = {
                "iteration": it,
                "env_steps": env_steps,
                "team_return": _jsonable(team_return),
                "episodes": episodes,
                "rllib_episode_return_mean": _jsonable(runners.get("episode_return_mean")),
                # A few learner statistics per module, to tell "not learning yet" from "broken".
                "learner": {
                    m: {k: _jsonable(result.get("learners", {}).get(m, {}).get(k)) for k in _LEARNER_KEYS}
                    for m in groups
                },
                "wall_s": round(time.monotonic() - start, 3),
            }
            curve.append(row)
            atomic_write_text(run_dir / CURVE_JSONL, "".join(json.dumps(r) + "\n" for r in curve))
            shown = "n/a" if team_return is None else f"{team_return:.3f}"
            log.info(
                "train-behaviour %s seed %d: iteration %d/%d, %d env steps, team return %s",
                spec.id, seed, it, iterations, env_steps, shown,
            )
            if progress is not None:
                progress(dict(row))
            if it % int(checkpoint_every) == 0 or it == int(iterations):
                name = f"iter_{it:05d}"
                ckpt_meta = {
                    "env_id": spec.id,
                    "seed": int(seed),
                    "iteration": it,
                    "env_steps": env_steps,
                    "team_return": row["team_return"],
                    "modules": groups,
                    "rl_module_dir": RL_MODULE_DIR.as_posix(),
                }
                # Build the checkpoint in a temporary sibling and rename it: a crash never leaves a
                # half-written iter_* folder that TrainedPolicy could pick up as the newest.
                with atomic_dir(run_dir / name, overwrite=True) as tmp:
                    algo.save_to_path(str(tmp))
                    atomic_write_text(tmp / CHECKPOINT_META, json.dumps(ckpt_meta, indent=2))
                meta["checkpoints"].append(
                    {"iteration": it, "path": name, "env_steps": env_steps, "team_return": row["team_return"]}
                )
            meta["iterations_done"], meta["env_steps"] = it, env_steps
            meta["complete"] = it == int(iterations)
            meta["last_team_return"] = row["team_return"]
            meta["wall_s"] = row["wall_s"]
            atomic_write_text(run_dir / BEHAVIOUR_JSON, json.dumps(meta, indent=2))
    finally:
        logdir = getattr(algo, "logdir", None) if algo is not None else None
        if algo is not None:
            algo.stop()
        if started:
            ray.shutdown()
        torch.set_num_threads(threads)
        # Every Algorithm makes an (empty, on the new API stack) results folder under ~/ray_results; remove
        # ours when it stayed empty.
        if logdir:
            try:
                Path(logdir).rmdir()
            except OSError:
                pass
    return run_dir

