"""Behaviour policies trained with RLlib multi-agent PPO. Being written."""
