"""Behaviour policies trained with RLlib multi-agent PPO (new API stack), and the policy that replays them.

:func:`train_behaviour` trains PPO on an env spec's :class:`~rlcf.envs.spec.TeamParallelEnv` (the controlled
agents only; scripted opponents stay inside the env) and writes a run folder::

    <out_dir>/<env_id>/seed<seed>/
        curve.jsonl          one row per training iteration
        behaviour.json       env, seed, hyperparameters, module mapping, checkpoints (rewritten as they appear)
        iter_00010/          RLlib algorithm checkpoint + rlcf_checkpoint.json (written atomically)
        ...

:class:`TrainedPolicy` (registered as the behaviour policy ``trained``) loads the RLModules of one such
checkpoint with plain torch, without a Ray cluster, so datasets can be collected with it anywhere.

Ray, RLlib and torch are imported inside the functions that need them: importing this module stays cheap.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import platform
import re
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rlcf.atomic import TMP_PREFIX, atomic_dir, atomic_write_text
from rlcf.envs.behaviour.policies import BehaviourPolicy
from rlcf.errors import UsageError

if TYPE_CHECKING:
    from rlcf.envs.spec import EnvSpec

__all__ = [
    "DEFAULTS",
    "TrainedPolicy",
    "add_train_behaviour_parser",
    "cmd_train_behaviour",
    "find_checkpoint",
    "train_behaviour",
]

log = logging.getLogger("rlcf")

#: PPO defaults for 25-step MPE episodes (see :func:`train_behaviour`).
DEFAULTS: dict[str, Any] = {
    "iterations": 100,
    "checkpoint_every": 10,
    "train_batch_size": 1000,  # env steps per iteration = 40 episodes of 25 steps
    "minibatch_size": 256,  # agent steps per SGD minibatch (per module)
    "num_epochs": 15,
    "lr": 1e-3,
    "gamma": 0.95,
    "lambda_": 0.95,
    "clip_param": 0.2,
    "entropy_coeff_discrete": 0.01,
    "entropy_coeff_continuous": 0.0,
    "vf_loss_coeff": 0.5,
    "vf_clip_param": 1000.0,
    "fcnet_hiddens": [64, 64],
    "fcnet_activation": "tanh",
}

CHECKPOINT_META = "rlcf_checkpoint.json"
BEHAVIOUR_JSON = "behaviour.json"
CURVE_JSONL = "curve.jsonl"
_ITER_RE = re.compile(r"^iter_(\d+)$")
_RL_MODULE_DIR = Path("learner_group", "learner", "rl_module")
_LEARNER_KEYS = ("policy_loss", "vf_loss", "vf_explained_var", "entropy", "mean_kl_loss")

# What the curve's team_return means; stored in behaviour.json so nobody has to guess.
TEAM_RETURN_DEFINITION = (
    "mean over the episodes that ended during the iteration of the episode team return: the sum over the "
    "episode's steps of infos[agent]['team_reward'] (the spec's team reward of the controlled agents). "
    "RLlib's own episode_return_mean (also stored, as rllib_episode_return_mean) sums every agent's reward "
    "and is smoothed over the last 100 episodes."
)


# --------------------------------------------------------------------------------------------------------
# modules: which agents share which RLModule
# --------------------------------------------------------------------------------------------------------


def _group_name(agents: Sequence[str]) -> str:
    """A readable module id for a group of agents: their common name without the index (``adversary``)."""
    stems = {re.sub(r"_?\d+$", "", a) for a in agents}
    return stems.pop() if len(stems) == 1 else "group"


def module_groups(env: Any, shared_policy: bool | None = None) -> dict[str, list[str]]:
    """Which controlled agents share which RLModule.

    Args:
        env: a PettingZoo ParallelEnv (the spec's team env); its ``possible_agents`` and spaces are read.
        shared_policy: ``None`` (default) shares one module among agents with identical observation and
            action spaces (one module in total when all spaces match); ``True`` demands a single module and
            fails when the spaces differ; ``False`` gives every agent its own module.

    Returns:
        ``{module_id: [agent, ...]}`` in the env's agent order; a single shared module is called ``"shared"``.

    Raises:
        UsageError: ``shared_policy=True`` but the agents' spaces differ.
    """
    agents = list(env.possible_agents)
    if shared_policy is False:
        return {a: [a] for a in agents}
    groups: list[tuple[Any, Any, list[str]]] = []
    for agent in agents:
        obs_space, act_space = env.observation_space(agent), env.action_space(agent)
        for g_obs, g_act, members in groups:
            if g_obs == obs_space and g_act == act_space:
                members.append(agent)
                break
        else:
            groups.append((obs_space, act_space, [agent]))
    if len(groups) == 1:
        return {"shared": groups[0][2]}
    if shared_policy is True:
        detail = "; ".join(f"{m}: obs {o}, actions {a}" for o, a, m in groups)
        raise UsageError(
            f"shared_policy=True needs identical spaces for all agents, but they differ ({detail}); "
            "use shared_policy=None (one module per distinct space) or False (one per agent)"
        )
    result: dict[str, list[str]] = {}
    for _, _, members in groups:
        name = _group_name(members)
        if name in result:
            name = f"{name}_{len(result)}"
        result[name] = members
    return result


class _MapAgentToModule:
    """RLlib ``policy_mapping_fn``: a picklable lookup (remote env runners receive it by value)."""

    def __init__(self, mapping: Mapping[str, str]):
        self.mapping = dict(mapping)

    def __call__(self, agent_id: str, *args: Any, **kwargs: Any) -> str:
        return self.mapping[agent_id]


class _EnvCreator:
    """``register_env`` creator: rebuilds the spec's team env (also inside remote env runners)."""

    def __init__(self, env_id: str):
        self.env_id = env_id

    def __call__(self, env_config: Any = None) -> Any:
        from ray.rllib.env.wrappers.pettingzoo_env import ParallelPettingZooEnv

        from rlcf.registry import envs

        class _OrderedParallelPettingZooEnv(ParallelPettingZooEnv):
            # ParallelPettingZooEnv builds `agents`/`possible_agents` from a set, so their order changes
            # with the string hash seed; keep the env's own order for reproducible runs.
            def __init__(self, env: Any):
                super().__init__(env)
                self.possible_agents = list(env.possible_agents)
                self.agents = list(self.possible_agents)

        return _OrderedParallelPettingZooEnv(envs.get(self.env_id).make())


# --------------------------------------------------------------------------------------------------------
# team-return metrics (RLlib callbacks; module-level functions so remote env runners import them by name)
# --------------------------------------------------------------------------------------------------------


def _on_episode_step(*, episode: Any, **kwargs: Any) -> None:
    # Every controlled agent's info carries the same team reward; custom_data survives episode chunking.
    infos = episode.get_infos(-1)
    for info in infos.values():
        if isinstance(info, Mapping) and "team_reward" in info:
            episode.custom_data["rlcf_team_return"] = episode.custom_data.get("rlcf_team_return", 0.0) + float(
                info["team_reward"]
            )
            break


def _on_episode_end(*, episode: Any, metrics_logger: Any = None, **kwargs: Any) -> None:
    if metrics_logger is None:
        return
    # Lifetime sums are exact across env runners and iterations; the trainer differences them per iteration
    # instead of trusting a smoothing window.
    team_return = episode.custom_data.get("rlcf_team_return", 0.0)
    metrics_logger.log_value("rlcf_team_return_total", team_return, reduce="lifetime_sum")
    metrics_logger.log_value("rlcf_team_episodes_total", 1, reduce="lifetime_sum")


# --------------------------------------------------------------------------------------------------------
# training
# --------------------------------------------------------------------------------------------------------


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (np.floating, np.integer)) or (hasattr(value, "item") and getattr(value, "ndim", 1) == 0):
        return _jsonable(value.item())
    return value


def _start_ray(num_cpus: int) -> bool:
    """Start a small local Ray unless one is running; returns whether this call started it."""
    import ray

    if ray.is_initialized():
        return False
    # A local ray.init() without an explicit mode turns token auth on and breaks later `ray start` job
    # clients (see STACK.md); the cluster started here is private and on loopback.
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    ray.init(
        num_cpus=num_cpus,
        include_dashboard=False,
        object_store_memory=256 * 1024**2,
        logging_level=logging.WARNING,
        log_to_driver=True,
    )
    return True


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

    agent_to_module = {a: m for m, members in groups.items() for a in members}
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
    from ray.rllib.algorithms.ppo import PPOConfig
    from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig
    from ray.rllib.core.rl_module.multi_rl_module import MultiRLModuleSpec
    from ray.rllib.core.rl_module.rl_module import RLModuleSpec
    from ray.tune.registry import register_env

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

    rllib_env = f"rlcf-{spec.id}"
    register_env(rllib_env, _EnvCreator(spec.id))
    model = DefaultModelConfig(
        fcnet_hiddens=hyper["fcnet_hiddens"], fcnet_activation=hyper["fcnet_activation"], vf_share_layers=False
    )
    config = (
        PPOConfig()
        .environment(rllib_env)
        # episodes_to_numpy=False: in Ray 2.60 the multi-agent env runner converts *every* finished episode
        # of the sample call to numpy again after each env step (quadratic in the batch size); measured 40%
        # of the sampling time at 2,400 steps. The learner connectors accept list-based episodes.
        .env_runners(num_env_runners=num_env_runners, num_envs_per_env_runner=1, episodes_to_numpy=False)
        .multi_agent(policies=set(groups), policy_mapping_fn=_MapAgentToModule(agent_to_module))
        .rl_module(rl_module_spec=MultiRLModuleSpec(rl_module_specs={m: RLModuleSpec(model_config=model) for m in groups}))
        .training(
            train_batch_size_per_learner=hyper["train_batch_size"],
            minibatch_size=hyper["minibatch_size"],
            num_epochs=hyper["num_epochs"],
            lr=hyper["lr"],
            gamma=hyper["gamma"],
            lambda_=hyper["lambda_"],
            clip_param=hyper["clip_param"],
            use_kl_loss=False,
            entropy_coeff=hyper["entropy_coeff"],
            vf_loss_coeff=hyper["vf_loss_coeff"],
            vf_clip_param=hyper["vf_clip_param"],
        )
        .callbacks(on_episode_step=_on_episode_step, on_episode_end=_on_episode_end)
        .debugging(seed=int(seed))
    )

    # On a 2-core machine torch's default intra-op pool spins against the env and Ray's processes: a 64-64
    # MLP forward pass took 3.5 ms with 2 threads and 0.1 ms with 1, so sample and learn single-threaded.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    started = _start_ray(num_cpus=2 + num_env_runners)
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
                    "rl_module_dir": _RL_MODULE_DIR.as_posix(),
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


# --------------------------------------------------------------------------------------------------------
# loading
# --------------------------------------------------------------------------------------------------------


def _how_to_create(spec_id: str | None = None) -> str:
    env = spec_id or "ENV"
    return f"create one with `rlcf train-behaviour {env}` (checkpoints are the iter_* folders of its run folder)"


def _is_checkpoint(path: Path) -> bool:
    return (path / CHECKPOINT_META).is_file() or (path / _RL_MODULE_DIR).is_dir()


def find_checkpoint(path: str | os.PathLike[str], spec_id: str | None = None) -> Path:
    """The checkpoint folder that ``path`` names: an ``iter_*`` folder, or the newest one in a run folder.

    Args:
        path: a checkpoint folder, or a run folder ``<out_dir>/<env_id>/seed<seed>`` holding ``iter_*`` folders.
        spec_id: env id, only to make the error message name the right command.

    Returns:
        The checkpoint folder.

    Raises:
        UsageError: nothing usable at ``path``.
    """
    folder = Path(path).expanduser()
    if not folder.exists():
        raise UsageError(f"checkpoint '{folder}' does not exist; {_how_to_create(spec_id)}")
    if not folder.is_dir():
        raise UsageError(f"checkpoint '{folder}' is not a folder; {_how_to_create(spec_id)}")
    if _is_checkpoint(folder):
        return folder
    found = []
    for child in folder.iterdir():
        match = _ITER_RE.match(child.name)
        if match and child.is_dir() and _is_checkpoint(child):
            found.append((int(match.group(1)), child))
    if not found:
        raise UsageError(
            f"'{folder}' is neither a checkpoint (no {CHECKPOINT_META} or {_RL_MODULE_DIR.as_posix()}/) "
            f"nor a run folder with iter_* checkpoints; {_how_to_create(spec_id)}"
        )
    return max(found)[1]


class TrainedPolicy(BehaviourPolicy):
    """Acts with the PPO modules of a :func:`train_behaviour` checkpoint (no Ray cluster needed).

    Args:
        spec: the env spec (must be the one the checkpoint was trained on).
        agents: the agents to act for; each must be mapped to a module in the checkpoint.
        seed: seed of the generator used in stochastic mode.
        env: the env (for action spaces; when omitted, the spaces stored in the modules are used).
        checkpoint: an ``iter_*`` checkpoint folder, or a run folder (its newest checkpoint is used).
        deterministic: take the mode of each action distribution (argmax / Gaussian mean); otherwise sample.

    Raises:
        UsageError: no checkpoint given, a missing or malformed checkpoint, or one for another env or agents.
    """

    name = "trained"

    def __init__(
        self,
        spec: EnvSpec,
        agents: Sequence[str],
        seed: int = 0,
        env: Any = None,
        checkpoint: str | os.PathLike[str] | None = None,
        deterministic: bool = True,
    ):
        super().__init__(spec, agents, seed, env)
        if checkpoint is None:
            raise UsageError(
                f"policy 'trained' needs checkpoint=PATH (an iter_* folder or a run folder); {_how_to_create(spec.id)}"
            )
        self.checkpoint = find_checkpoint(checkpoint, spec.id)
        self.deterministic = bool(deterministic)
        meta = self._read_meta()
        if meta.get("env_id") not in (None, spec.id):
            raise UsageError(
                f"checkpoint '{self.checkpoint}' was trained on '{meta['env_id']}', not '{spec.id}'; "
                f"{_how_to_create(spec.id)}"
            )
        self.iteration = meta.get("iteration")
        self.modules_map: dict[str, list[str]] = {m: list(a) for m, a in meta["modules"].items()}
        agent_to_module = {a: m for m, members in self.modules_map.items() for a in members}
        missing = [a for a in self.agents if a not in agent_to_module]
        if missing:
            raise UsageError(
                f"checkpoint '{self.checkpoint}' has no module for agents {missing} (it maps {agent_to_module}); "
                f"{_how_to_create(spec.id)}"
            )
        self._agent_to_module = {a: agent_to_module[a] for a in self.agents}
        self._modules = self._load_modules(sorted(set(self._agent_to_module.values())))
        self._generator = self._new_generator()

    # -- loading ---------------------------------------------------------------------------------------

    def _read_meta(self) -> dict[str, Any]:
        meta_path = self.checkpoint / CHECKPOINT_META
        if meta_path.is_file():
            try:
                meta = json.loads(meta_path.read_text())
                if not isinstance(meta.get("modules"), dict):
                    raise ValueError("no 'modules' mapping")
                return meta
            except (OSError, ValueError) as exc:
                raise UsageError(
                    f"checkpoint '{self.checkpoint}': unreadable {CHECKPOINT_META} ({exc}); {_how_to_create(self.spec.id)}"
                ) from exc
        # A bare RLlib checkpoint: usable when it holds a single module shared by every agent.
        module_root = self.checkpoint / _RL_MODULE_DIR
        ids = sorted(p.name for p in module_root.iterdir() if p.is_dir()) if module_root.is_dir() else []
        if len(ids) != 1:
            raise UsageError(
                f"checkpoint '{self.checkpoint}' has no {CHECKPOINT_META} and {len(ids)} modules {ids}, so the "
                f"agent-to-module mapping is unknown; {_how_to_create(self.spec.id)}"
            )
        return {"modules": {ids[0]: list(self.agents)}}

    def _load_modules(self, module_ids: Sequence[str]) -> dict[str, Any]:
        import torch  # noqa: F401  (RLModule.from_checkpoint needs it; imported here to fail early and clearly)
        from ray.rllib.core.rl_module.rl_module import RLModule

        modules = {}
        for module_id in module_ids:
            path = self.checkpoint / _RL_MODULE_DIR / module_id
            if not path.is_dir():
                raise UsageError(
                    f"checkpoint '{self.checkpoint}' lacks module folder '{path}'; {_how_to_create(self.spec.id)}"
                )
            try:
                module = RLModule.from_checkpoint(path)
            except Exception as exc:  # noqa: BLE001 - any unpickling failure means a broken checkpoint
                raise UsageError(
                    f"checkpoint module '{path}' cannot be loaded ({type(exc).__name__}: {exc}); "
                    f"{_how_to_create(self.spec.id)}"
                ) from exc
            module.eval()
            modules[module_id] = module
        return modules

    # -- acting ----------------------------------------------------------------------------------------

    def _new_generator(self) -> Any:
        import torch

        return torch.Generator().manual_seed(int(self.rng.integers(2**62)))

    def reset(self, seed: int | None = None) -> None:
        """Start an episode; with ``seed``, reseed the generator that stochastic mode samples from."""
        super().reset(seed)
        if seed is not None:
            self._generator = self._new_generator()

    def _space(self, agent: str, module: Any) -> Any:
        if self._env is not None:
            return self._env.action_space(agent)
        return module.action_space

    def _sample(self, dist: Any) -> Any:
        import torch

        inner = getattr(dist, "_dist", None)
        if isinstance(inner, torch.distributions.Categorical):
            return torch.multinomial(inner.probs, 1, generator=self._generator).squeeze(-1)
        if isinstance(inner, torch.distributions.Normal):
            noise = torch.randn(inner.loc.shape, generator=self._generator, dtype=inner.loc.dtype)
            return inner.loc + inner.scale * noise
        # Other distributions cannot take a generator: draw from the global one, seeded from ours, without
        # disturbing anybody else's global random state.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(torch.randint(2**62, (1,), generator=self._generator)))
            return dist.sample()

    def module_actions(self, module_id: str, obs: np.ndarray) -> np.ndarray:
        """Actions of one module for a batch of observations, as RLlib's env runner computes them.

        Args:
            module_id: a module of the checkpoint.
            obs: observations stacked on the first axis.

        Returns:
            The modal (or sampled) actions as a numpy array; Box actions are still in the module's [-1, 1]
            range (:meth:`act` maps them onto the space).
        """
        import torch
        from ray.rllib.core.columns import Columns

        module = self._modules[module_id]
        with torch.no_grad():
            out = module.forward_inference({Columns.OBS: torch.as_tensor(np.asarray(obs, dtype=np.float32))})
            dist = module.get_inference_action_dist_cls().from_logits(out[Columns.ACTION_DIST_INPUTS])
            actions = dist.to_deterministic().sample() if self.deterministic else self._sample(dist)
        return actions.cpu().numpy()

    def act(self, observations: Mapping[str, np.ndarray]) -> dict[str, Any]:
        """Actions for the agents in ``observations``: ``int`` for Discrete, float32 arrays for Box spaces.

        The agents of one module go through one batched forward pass. Box actions are mapped from the
        module's [-1, 1] range onto the space's bounds and clipped, as RLlib's env runner does.
        """
        import gymnasium as gym
        from ray.rllib.utils.spaces.space_utils import unsquash_action

        unknown = [a for a in observations if a not in self._agent_to_module]
        if unknown:
            raise UsageError(f"policy 'trained' acts for {list(self.agents)}, not for {unknown}")
        by_module: dict[str, list[str]] = {}
        for agent in observations:
            by_module.setdefault(self._agent_to_module[agent], []).append(agent)
        actions: dict[str, Any] = {}
        for module_id, members in by_module.items():
            raw = self.module_actions(module_id, np.stack([np.asarray(observations[a]) for a in members]))
            for agent, action in zip(members, raw):
                space = self._space(agent, self._modules[module_id])
                if isinstance(space, gym.spaces.Discrete):
                    actions[agent] = int(action)
                elif isinstance(space, gym.spaces.Box):
                    action = unsquash_action(np.asarray(action, dtype=np.float64), space)
                    actions[agent] = np.clip(action, space.low, space.high).astype(space.dtype)
                else:
                    actions[agent] = action
        return actions

    def describe(self) -> dict[str, Any]:
        """Provenance: name, checkpoint path and iteration, mode, module mapping."""
        return {
            "name": self.name,
            "checkpoint": str(self.checkpoint),
            "iteration": self.iteration,
            "deterministic": self.deterministic,
            "modules": {m: list(a) for m, a in self.modules_map.items()},
        }


# --------------------------------------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------------------------------------


def add_train_behaviour_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``train-behaviour ENV [--iterations N] [--seed S] [--out-dir DIR] [--checkpoint-every K]``.

    Args:
        subparsers: the object ``ArgumentParser.add_subparsers()`` returned.

    Returns:
        The new subcommand parser.
    """
    p = subparsers.add_parser(
        "train-behaviour",
        help="train a multi-agent PPO behaviour policy with RLlib (use it as --policy trained)",
        description="Example: rlcf train-behaviour mpe-simple_spread --iterations 100 --seed 0. Writes "
        "DIR/ENV/seedS/ with curve.jsonl, behaviour.json and iter_* checkpoints.",
    )
    p.add_argument("env", help="env id (see `rlcf list envs`)")
    p.add_argument("--iterations", type=int, default=DEFAULTS["iterations"], help="PPO iterations")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out-dir", default="runs/behaviour", help="root of the run folders")
    p.add_argument(
        "--checkpoint-every", type=int, default=DEFAULTS["checkpoint_every"], help="iterations between checkpoints"
    )
    p.add_argument("--train-batch-size", type=int, default=DEFAULTS["train_batch_size"], help="env steps per iteration")
    p.add_argument("--lr", type=float, default=DEFAULTS["lr"])
    p.add_argument("--env-runners", type=int, default=0, choices=(0, 1), help="0: sample in this process; 1: one Ray worker")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run folder")
    return p


def cmd_train_behaviour(args: argparse.Namespace) -> int:
    """Run ``rlcf train-behaviour``; prints one JSON line with the run folder and the last team return.

    Args:
        args: parsed arguments of :func:`add_train_behaviour_parser`.

    Returns:
        0 on success (errors raise; the CLI maps them to exit codes).
    """
    from rlcf.progress import progress

    last: dict[str, Any] = {}
    with progress(f"train-behaviour {args.env}", total=args.iterations) as bar:

        def report(row: dict[str, Any]) -> None:
            last.update(row)
            shown = {"team_return": row["team_return"]} if row["team_return"] is not None else {}
            bar.advance(1, env_steps=row["env_steps"], **shown)

        run = train_behaviour(
            args.env,
            args.out_dir,
            iterations=args.iterations,
            seed=args.seed,
            checkpoint_every=args.checkpoint_every,
            train_batch_size=args.train_batch_size,
            lr=args.lr,
            num_env_runners=args.env_runners,
            overwrite=args.overwrite,
            progress=report,
        )
    team = last.get("team_return")
    print(
        json.dumps(
            {
                "run": str(run),
                "env": args.env,
                "iterations": last.get("iteration"),
                "env_steps": last.get("env_steps"),
                "team_return": None if team is None else round(team, 4),
                "checkpoint": str(find_checkpoint(run)),
            }
        )
    )
    return 0
