"""Algorithms, one readable file each (installed as ``rlcf.algos``).

Importing this package registers rlcf's built-in algorithms in :data:`rlcf.registry.algos`:
``cfcql`` (the method), and the offline-MARL baselines ``bc``, ``icql``, ``macql`` and ``matd3bc``.
"""

from rlcf.algos import bc, cfcql, defacto, icql, macql, matd3bc  # noqa: F401  (registration side effects)
