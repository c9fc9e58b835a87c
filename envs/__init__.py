"""Environment specs, suites and behaviour policies (installed as ``rlcf.envs``).

Importing this package registers rlcf's built-in entries in :data:`rlcf.envs`, :data:`rlcf.suites` and
:data:`rlcf.policies`. Heavy libraries (PettingZoo, MPE, MuJoCo) are imported only when an env is made.
"""
