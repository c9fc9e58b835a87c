"""Multi-agent particle environments from ``mpe2``, as offline-MARL tasks (OMAR / CFCQL settings).

- ``simple_spread`` (cooperative navigation): 3 agents cover 3 landmarks; every agent is controlled.
- ``simple_tag`` (predator-prey): 3 slower predators chase 1 faster prey among 2 obstacles. The controlled
  team is the predators; the prey is part of the environment, driven by the fixed scripted policy
  ``mpe-tag-prey`` (flee the predators, weighted by inverse square distance, pulled back towards the centre).
- ``simple_world_comm``: 4 adversaries (one leader who can speak) chase 2 good agents among forests and food.
  The controlled team is the adversaries; the good agents follow the fixed scripted policy ``mpe-world-good``
  (go for the nearest food, flee a nearby adversary).

Episodes last 25 steps, as in OMAR and CFCQL. Each task comes with continuous actions (``mpe-<task>``; MPE
continuous actions lie in [0, 1]) and discrete actions (``mpe-<task>-discrete``). The team reward is the mean
of the controlled agents' rewards (in these tasks the controlled agents share their reward up to the local
collision terms of simple_spread). Reference returns are mean team returns over 100 episodes, measured by
``bench/bench_mpe_policies.py``.
"""

from __future__ import annotations

from dataclasses import replace

from rlcf.envs.spec import EnvSpec
from rlcf.envs.suites import register_suite
from rlcf.registry import envs

EPISODE_LENGTH = 25

_TASKS = {
    "simple_spread": dict(
        entry="mpe2.simple_spread_v3:parallel_env",
        version=3,
        controlled=(),
        opponent_policy=None,
        expert_policy="mpe-spread-expert",
        description="cooperative navigation: 3 agents cover 3 landmarks",
    ),
    "simple_tag": dict(
        entry="mpe2.simple_tag_v3:parallel_env",
        version=3,
        controlled=("adversary_0", "adversary_1", "adversary_2"),
        opponent_policy="mpe-tag-prey",
        expert_policy="mpe-tag-expert",
        description="predator-prey: 3 predators (controlled) chase a scripted prey",
    ),
    "simple_world_comm": dict(
        entry="mpe2.simple_world_comm_v3:parallel_env",
        version=3,
        controlled=("leadadversary_0", "adversary_0", "adversary_1", "adversary_2"),
        opponent_policy="mpe-world-good",
        expert_policy="mpe-world-expert",
        description="world: 4 adversaries with a speaking leader (controlled) chase 2 scripted good agents",
    ),
}

# Measured by bench/bench_mpe_policies.py on 2026-11-28: mean team return of `random` and of the scripted expert
# over 100 episodes from the reference seed (rlcf.data.collect.REFERENCE_SEED). Datasets store their own
# references, measured the same way at collection time; these serve evaluation without a dataset.
REFERENCE_RETURNS: dict[str, tuple[float, float]] = {
    "mpe-simple_spread": (-24.36, -5.416),
    "mpe-simple_spread-discrete": (-25.377, -7.058),
    "mpe-simple_tag": (1.0, 35.6),
    "mpe-simple_tag-discrete": (1.8, 31.5),
    "mpe-simple_world_comm": (0.432, 37.317),
    "mpe-simple_world_comm-discrete": (0.454, 31.315),
}
# Random-action probability at which the noisy expert scores closest to 50 normalized (grid 0.1..0.8, 50
# episodes per point; measured normalized scores 47.6, 49.2, 47.4, 54.5, 53.7, 51.1 in the order below).
MEDIUM_EPSILON: dict[str, float] = {
    "mpe-simple_spread": 0.7,
    "mpe-simple_spread-discrete": 0.6,
    "mpe-simple_tag": 0.4,
    "mpe-simple_tag-discrete": 0.3,
    "mpe-simple_world_comm": 0.5,
    "mpe-simple_world_comm-discrete": 0.4,
}


def _spec(task: str, action_type: str) -> EnvSpec:
    info = dict(_TASKS[task])
    env_id = f"mpe-{task}" + ("-discrete" if action_type == "discrete" else "")
    ref_random, ref_expert = REFERENCE_RETURNS.get(env_id, (None, None))
    description = info.pop("description") + f" ({action_type} actions)"
    return EnvSpec(
        id=env_id,
        episode_length=EPISODE_LENGTH,
        action_type=action_type,  # type: ignore[arg-type]
        kwargs={"max_cycles": EPISODE_LENGTH, "continuous_actions": action_type == "continuous"},
        team_reward="mean",
        medium_epsilon=MEDIUM_EPSILON.get(env_id),
        ref_random_return=ref_random,
        ref_expert_return=ref_expert,
        requires=("mpe2",),
        extra="marl",
        description=description,
        **info,
    )


SPECS = {spec.id: spec for task in _TASKS for spec in (_spec(task, "continuous"), _spec(task, "discrete"))}
for _spec_obj in SPECS.values():
    envs.register(_spec_obj.id, _spec_obj)

# The reference CFCQL/OMAR setting: continuous simple_spread with a 2-D force in [-1, 1]² per agent (mpe2's 5-D
# action has redundant components, and scripted or uniform actions pile up on its box faces, where the policy stands
# still), and data tiers collected from snapshots of an MLP fitted to the scripted expert (rlcf.envs.behaviour.fitted).
FORCE_REFERENCE_RETURNS: dict[str, tuple[float, float]] = {"mpe-simple_spread-force": (-24.36, -5.416)}


def _force_spec(task: str) -> EnvSpec:
    base = SPECS[f"mpe-{task}"]
    env_id = f"mpe-{task}-force"
    ref_random, ref_expert = FORCE_REFERENCE_RETURNS[env_id]
    return replace(
        base,
        id=env_id,
        action_map="force2d",
        tiers="rlcf.envs.behaviour.fitted:fitted_tiers",
        medium_epsilon=None,
        ref_random_return=ref_random,
        ref_expert_return=ref_expert,
        description=_TASKS[task]["description"] + " (2-D force actions in [-1, 1]², the CFCQL paper's MPE setting)",
    )


FORCE_SPECS = {spec.id: spec for spec in (_force_spec("simple_spread"),)}
for _spec_obj in FORCE_SPECS.values():
    envs.register(_spec_obj.id, _spec_obj)
SPECS.update(FORCE_SPECS)

register_suite("mpe", tuple(f"mpe-{t}" for t in _TASKS), "MPE tasks with continuous actions (OMAR/CFCQL)")
register_suite("mpe-discrete", tuple(f"mpe-{t}-discrete" for t in _TASKS), "MPE tasks with discrete actions")
register_suite("mpe-force", tuple(FORCE_SPECS), "MPE tasks with 2-D force actions and fitted-policy tiers (CFCQL's setting)")
