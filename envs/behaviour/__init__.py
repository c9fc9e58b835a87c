"""Behaviour policies that collect multi-agent datasets: the :class:`~rlcf.envs.behaviour.policies.BehaviourPolicy`
contract with ``random`` and epsilon mixing, scripted MPE experts, MLPs fitted to them, and PPO policies trained
with RLlib (``rlcf train-behaviour``).

Importing a module registers its policies in :data:`rlcf.registry.policies`; Ray and torch load only when a trained
policy is trained or used.
"""
