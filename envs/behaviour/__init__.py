"""Behaviour policies that collect multi-agent datasets: the :class:`~rlcf.envs.behaviour.policies.BehaviourPolicy`
contract with ``random`` and epsilon mixing, scripted MPE experts, MLPs fitted to them, and PPO policies trained
with RLlib (``rlcf train-behaviour``).

Importing this package registers the policies in :data:`rlcf.registry.policies` (``trained`` by import path);
Ray and torch load only when a trained policy is trained or used.
"""

from rlcf.envs.behaviour import fitted, mpe_scripted, policies  # noqa: F401  (registration side effects)
