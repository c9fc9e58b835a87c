"""Algorithms, one readable file each (installed as ``rlcf.algos``).

Importing this package registers rlcf's built-in algorithms in :data:`rlcf.algos`.
"""
