"""A behaviour policy that kills its own process once, at the episode whose seed it is given.

Used to test that a collection survives a dead Ray actor: the marker file makes the crash happen only on the
first attempt, so the re-run of that episode on a replacement actor succeeds.
"""

from __future__ import annotations

import os
from pathlib import Path

from rlcf.envs.behaviour.policies import RandomPolicy


class CrashOncePolicy(RandomPolicy):
    name = "crash_once"

    def __init__(self, spec, agents, seed=0, env=None, crash_seed: int = -1, marker: str = ""):
        super().__init__(spec, agents, seed, env)
        self.crash_seed = int(crash_seed)
        self.marker = Path(marker)

    def reset(self, seed=None):
        super().reset(seed)
        if seed is not None and seed - 1 == self.crash_seed and not self.marker.exists():
            self.marker.write_text(str(os.getpid()))
            os._exit(1)  # the actor process dies mid-collection, with an episode unfinished
