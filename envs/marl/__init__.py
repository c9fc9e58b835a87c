"""Multi-agent environments: the registered MPE and MaMuJoCo tasks and their suites.

Each module registers its :class:`~rlcf.envs.spec.EnvSpec` entries in :data:`rlcf.registry.envs` and its suites in
:data:`rlcf.registry.suites` when imported; the upstream simulators load only when an env is made.
"""

from rlcf.envs.marl import mamujoco, mpe  # noqa: F401  (registration side effects)
