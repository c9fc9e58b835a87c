"""Target of a test entry point. Importing this module counts, to check entry points load lazily."""

IMPORTED = 0
IMPORTED += 1


def exclaim_reward(completions, **kwargs):
    """1.0 for completions that end with '!'."""
    return [1.0 if str(c).endswith("!") else 0.0 for c in completions]
