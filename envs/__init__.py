"""Environment specs, suites, behaviour policies and LLM tasks (installed as ``rlcf.envs``).

The folder is laid out by kind:

- :mod:`rlcf.envs.spec`, :mod:`rlcf.envs.suites`: the multi-agent env contract (:class:`EnvSpec`, the team
  ``ParallelEnv``) and suites of envs, which the core and every env plug-in build on;
- :mod:`rlcf.envs.marl`: the registered multi-agent envs (MPE, MaMuJoCo) and their suites;
- :mod:`rlcf.envs.behaviour`: behaviour policies (random, scripted, fitted, trained with RLlib) and their training;
- :mod:`rlcf.envs.text`, :mod:`rlcf.envs.vision`: LLM tasks (prompt distributions plus what their rewards need),
  with :mod:`rlcf.envs.variants`, the pos / neg / random variant builders both kinds share.

Importing this package registers rlcf's built-in entries in :data:`rlcf.registry.envs`,
:data:`rlcf.registry.suites`, :data:`rlcf.registry.policies` and :data:`rlcf.registry.commands`: the MPE tasks
(continuous and discrete), MaMuJoCo HalfCheetah-2x3 (optional extra), the ``random``, scripted, fitted and
trained policies, and the ``rlcf train-behaviour`` subcommand. The upstream simulators are imported only when an
env is made; the text tasks register themselves in :data:`rlcf.registry.tasks` when :mod:`rlcf.envs.text` is
imported.
"""

import importlib
import sys
import types
import warnings
from typing import Any

from rlcf.envs import behaviour, marl  # noqa: F401  (registration side effects)
from rlcf.envs.behaviour.policies import BehaviourPolicy, EpsilonMix, RandomPolicy, make_policy
from rlcf.envs.spec import EnvSpec, TeamParallelEnv
from rlcf.envs.suites import Suite
from rlcf.registry import commands

__all__ = [
    "MOVED_MODULES",
    "BehaviourPolicy",
    "EnvSpec",
    "EpsilonMix",
    "RandomPolicy",
    "Suite",
    "TeamParallelEnv",
    "make_policy",
]

commands.register(
    "train-behaviour",
    "rlcf.envs.behaviour.train_command:TRAIN_BEHAVIOUR",
    help="train a multi-agent PPO behaviour policy with RLlib",
)

# Modules that sat flat in envs/ before it was laid out by kind -> the modules that hold their names now. Data
# written earlier names the old modules (a dataset's behaviour plan stores "rlcf.envs.rllib_behaviour:TrainedPolicy"
# or "rlcf.envs.mpe_scripted:SpreadExpert"; RLlib pickles its config's callables by module), so every old name stays
# importable: a stand-in module forwards attribute lookups to the new homes, with a DeprecationWarning.
MOVED_MODULES: dict[str, tuple[str, ...]] = {
    "mpe": ("rlcf.envs.marl.mpe",),
    "mamujoco": ("rlcf.envs.marl.mamujoco",),
    "policies": ("rlcf.envs.behaviour.policies",),
    "mpe_scripted": ("rlcf.envs.behaviour.mpe_scripted",),
    "fitted": ("rlcf.envs.behaviour.fitted",),
    "fitted_build": ("rlcf.envs.behaviour.fitted_build",),
    "rllib_behaviour": (
        "rlcf.envs.behaviour.trained",
        "rlcf.envs.behaviour.ppo_train",
        "rlcf.envs.behaviour.ppo_config",
        "rlcf.envs.behaviour.train_command",
    ),
    "grounded_qa": ("rlcf.envs.text.grounded_qa",),
    "grounded_pairs": ("rlcf.envs.text.grounded_pairs",),
    "paired": ("rlcf.envs.text.paired",),
    "grounded_images": ("rlcf.envs.vision.grounded_images",),
}


class _MovedModule(types.ModuleType):
    """Stand-in for a module that moved: attribute lookups import the new modules and take the first that has it."""

    def __init__(self, name: str, targets: tuple[str, ...]):
        super().__init__(name, f"Moved to {', '.join(targets)}.")
        self._targets = targets

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        for target in self._targets:
            module = importlib.import_module(target)
            if hasattr(module, attr):
                warnings.warn(
                    f"{self.__name__}.{attr} moved: import it from {target}", DeprecationWarning, stacklevel=2
                )
                return getattr(module, attr)
        raise AttributeError(f"module {self.__name__!r} (moved to {', '.join(self._targets)}) has no attribute {attr!r}")

    def __dir__(self) -> list[str]:
        names: set[str] = set()
        for target in self._targets:
            names.update(dir(importlib.import_module(target)))
        return sorted(names)


for _old, _targets in MOVED_MODULES.items():
    sys.modules.setdefault(f"{__name__}.{_old}", _MovedModule(f"{__name__}.{_old}", _targets))


def __getattr__(name: str) -> Any:  # `rlcf.envs.mpe` after `import rlcf.envs.mpe` (the import found the stand-in)
    if name in MOVED_MODULES:
        return sys.modules[f"{__name__}.{name}"]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
