"""Algorithms, one readable file each (installed as ``rlcf.algos``).

Importing this package registers rlcf's built-in algorithms in :data:`rlcf.registry.algos`:
``cfcql`` (the method), and the offline-MARL baselines ``bc``, ``icql``, ``macql`` and ``matd3bc`` (the TD ones
on the shared skeleton in ``td_base`` / ``cql_base``);
``defacto`` (counterfactual GRPO) and ``dna-train`` (paired SFT → RL with pair-wise ℓ1 advantages).
"""

from rlcf.algos import bc, cfcql, defacto, dna_train, icql, macql, matd3bc  # noqa: F401  (registration side effects)
