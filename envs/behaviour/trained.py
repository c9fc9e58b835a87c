"""The behaviour policy ``trained``: acts with the RLModules of a checkpoint that
:func:`~rlcf.envs.behaviour.ppo_train.train_behaviour` (``rlcf train-behaviour``) wrote.

:class:`TrainedPolicy` loads the modules with plain torch, without a Ray cluster, so datasets can be collected with
it anywhere. Ray's RLlib and torch are imported when a policy is built: importing this module stays cheap.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rlcf.envs.behaviour.policies import BehaviourPolicy
from rlcf.errors import UsageError

if TYPE_CHECKING:
    from rlcf.envs.spec import EnvSpec

__all__ = ["CHECKPOINT_META", "RL_MODULE_DIR", "TrainedPolicy", "find_checkpoint"]

#: rlcf's metadata file inside an ``iter_*`` checkpoint (env, iteration, agent-to-module mapping).
CHECKPOINT_META = "rlcf_checkpoint.json"
#: Where an RLlib algorithm checkpoint keeps its RLModules (one folder per module id).
RL_MODULE_DIR = Path("learner_group", "learner", "rl_module")
_ITER_RE = re.compile(r"^iter_(\d+)$")


def _how_to_create(spec_id: str | None = None) -> str:
    env = spec_id or "ENV"
    return f"create one with `rlcf train-behaviour {env}` (checkpoints are the iter_* folders of its run folder)"


def _is_checkpoint(path: Path) -> bool:
    return (path / CHECKPOINT_META).is_file() or (path / RL_MODULE_DIR).is_dir()


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
            f"'{folder}' is neither a checkpoint (no {CHECKPOINT_META} or {RL_MODULE_DIR.as_posix()}/) "
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
        module_root = self.checkpoint / RL_MODULE_DIR
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
            path = self.checkpoint / RL_MODULE_DIR / module_id
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

