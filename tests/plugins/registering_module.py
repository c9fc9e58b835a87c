"""A plugin module that registers at import time (like rlcf's own modules); reloaded by the tests."""

import rlcf


@rlcf.registry.rewards.register("test_length_reward")
def length_reward(completions, **kwargs):
    """Shorter is better: -len/100 per completion."""
    return [-len(c) / 100 for c in completions]
