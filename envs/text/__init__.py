"""Text tasks for the LLM trainers: DeFacto's grounded QA and DNA-Train's (real, counterfactual) pairs.

Importing this package registers the embedded tasks in :data:`rlcf.registry.tasks` (``grounded_qa``,
``grounded_pairs``); :mod:`rlcf.envs.text.paired` lays out any paired dataset for DNA-Train.
"""

from rlcf.envs.text import grounded_pairs, grounded_qa  # noqa: F401  (registration side effects)
