"""Environment specs, suites and behaviour policies (installed as ``rlcf.envs``).

Importing this package registers rlcf's built-in entries in :data:`rlcf.registry.envs`,
:data:`rlcf.registry.suites` and :data:`rlcf.registry.policies`: the MPE tasks (continuous and discrete),
MaMuJoCo HalfCheetah-2x3 (optional extra), the ``random`` policy and the scripted MPE policies.
The upstream simulators are imported only when an env is made.
"""

from rlcf.envs import fitted, mamujoco, mpe, mpe_scripted, policies  # noqa: F401  (registration side effects)
from rlcf.envs.policies import BehaviourPolicy, EpsilonMix, RandomPolicy, make_policy
from rlcf.envs.spec import EnvSpec, TeamParallelEnv
from rlcf.envs.suites import Suite

__all__ = ["BehaviourPolicy", "EnvSpec", "EpsilonMix", "RandomPolicy", "Suite", "TeamParallelEnv", "make_policy"]
