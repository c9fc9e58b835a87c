"""rlcf: counterfactual reinforcement learning.

CFCQL for offline multi-agent RL, DeFacto-style counterfactual GRPO and DNA-Train for LLM post-training,
on shared registries, configs, datasets and evaluation.

``import rlcf`` is kept cheap: torch, Ray, TRL, PettingZoo and Minari load only when the code that needs
them runs. The registries live in :mod:`rlcf.registry` (``rlcf.registry.envs``, ``.suites``, ``.policies``,
``.rewards``, ``.algos``); the names ``rlcf.envs``, ``rlcf.algos`` and ``rlcf.reward_fns`` are the
subpackages holding rlcf's own environments, algorithms and reward functions.
"""

from rlcf import registry
from rlcf.errors import ConfigError, RegistrationError, RlcfError, UnknownNameError, UsageError
from rlcf.reward_set import get_reward, register_reward

__version__ = "0.1.0.dev0"

__all__ = [
    "ConfigError",
    "RegistrationError",
    "RlcfError",
    "UnknownNameError",
    "UsageError",
    "get_reward",
    "register_reward",
    "registry",
    "__version__",
]
