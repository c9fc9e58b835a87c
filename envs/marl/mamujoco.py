"""MaMuJoCo (gymnasium-robotics): HalfCheetah split into 2 agents of 3 joints, as in OMAR and CFCQL.

Optional: needs ``pip install 'rlcf[mamujoco]'`` (gymnasium-robotics and mujoco). Without it the spec is still
registered, and making it raises an error that names the extra. Each agent sees only its own joints
(``agent_obsk=0``); the team reward is the shared HalfCheetah reward. Episodes are 1000 steps. There is no
scripted expert: the expert tier comes from a trained behaviour policy.
"""

from __future__ import annotations

from rlcf.envs.spec import EnvSpec
from rlcf.envs.suites import register_suite
from rlcf.registry import envs

HALFCHEETAH_2X3 = EnvSpec(
    id="mamujoco-halfcheetah-2x3",
    entry="gymnasium_robotics:mamujoco_v1.parallel_env",
    version=1,
    episode_length=1000,
    action_type="continuous",
    kwargs={"scenario": "HalfCheetah", "agent_conf": "2x3", "agent_obsk": 0},
    team_reward="first",  # both agents receive the same HalfCheetah reward
    requires=("gymnasium_robotics", "mujoco"),
    extra="mamujoco",
    description="HalfCheetah 2x3: 2 agents of 3 joints each (optional extra 'mamujoco')",
)

envs.register(HALFCHEETAH_2X3.id, HALFCHEETAH_2X3)
register_suite("mamujoco", (HALFCHEETAH_2X3.id,), "MaMuJoCo tasks (optional extra 'mamujoco')")
