"""Scripted MPE policies: experts for the controlled teams and the fixed opponents inside the envs.

Five policies, registered in :data:`rlcf.registry.policies`:

- ``mpe-spread-expert`` (simple_spread, all 3 agents): every agent solves the same landmark assignment
  (least total distance over all permutations) and drives to its landmark, keeping clear of the others.
- ``mpe-tag-expert`` (simple_tag, predators ``adversary_0..2``): run to the point where the prey can be
  intercepted (its velocity extrapolated), steering around the obstacles.
- ``mpe-tag-prey`` (simple_tag, the prey ``agent_0``; an opponent inside the env): flee the predators,
  pulled back towards the centre.
- ``mpe-world-expert`` (simple_world_comm, ``leadadversary_0`` and ``adversary_0..2``): chase the nearest
  visible good agent; the leader, who sees everyone, broadcasts where the team's target is, and followers
  who cannot see any good agent go there.
- ``mpe-world-good`` (simple_world_comm, ``agent_0, agent_1``; opponents): go for the nearest food, flee a
  nearby adversary.

Every policy acts from observations only and works with both action types: it decides a desired velocity
and :meth:`_ScriptedPolicy.move` turns that into the action that brings the agent's next velocity closest to
it under the MPE dynamics (``v' = 0.75 v + accel · 0.1 · u``; a continuous action ``a`` in [0, 1]⁵ gives
``u = (a[2] − a[1], a[4] − a[3])``, a discrete action 0-4 gives no move, −x, +x, −y or +y). The policies are
deterministic; they draw nothing from ``self.rng``.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from rlcf.envs.behaviour.policies import BehaviourPolicy
from rlcf.registry import policies

__all__ = ["SpreadExpert", "TagExpert", "TagPrey", "WorldExpert", "WorldGood"]

# MPE physics (mpe2 ``World``): time step and velocity damping per step.
DT = 0.1
DAMPING = 0.25
# Force directions of the discrete actions 0-4, as in ``SimpleEnv._set_action``.
MOVES = np.array([[0.0, 0.0], [-1.0, 0.0], [1.0, 0.0], [0.0, -1.0], [0.0, 1.0]])


def _unit(v: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(v))
    return v / norm if norm > 1e-9 else np.zeros_like(v)


def _cap(v: np.ndarray, speed: float) -> np.ndarray:
    norm = float(np.linalg.norm(v))
    return v * (speed / norm) if norm > speed else v


def _agent_index(agent: str) -> int:
    return int(agent.rsplit("_", 1)[1])


def _intercept(offset: np.ndarray, target_vel: np.ndarray, speed: float, horizon: float) -> np.ndarray:
    """Where to run to meet a target at ``offset`` moving at ``target_vel``, with speed ``speed``.

    Solves ``|offset + target_vel · t| = speed · t`` for the earliest ``t > 0`` and caps ``t`` at
    ``horizon`` (also used when the target cannot be caught): the target's velocity changes quickly, so a
    far extrapolation is worse than none.
    """
    a = float(target_vel @ target_vel) - speed * speed
    b = 2.0 * float(offset @ target_vel)
    c = float(offset @ offset)
    t = horizon
    if abs(a) > 1e-9:
        disc = b * b - 4.0 * a * c
        if disc >= 0.0:
            roots = [r for r in ((-b - disc**0.5) / (2 * a), (-b + disc**0.5) / (2 * a)) if r > 0.0]
            if roots:
                t = min(min(roots), horizon)
    elif b < 0.0:
        t = min(-c / b, horizon)
    return offset + target_vel * t


def _avoid(direction: np.ndarray, obstacles: np.ndarray, reach: float, clearance: float) -> np.ndarray:
    """``direction`` bent sideways around the obstacles (positions relative to the agent) on the way.

    Collisions with the obstacles are soft but they stop an agent dead, so a chaser that runs into one
    loses several steps; turning early costs almost nothing.
    """
    out = direction.copy()
    for rel in obstacles:
        along = float(rel @ direction)
        if along <= 0.0 or along > reach:
            continue
        side = rel - along * direction
        gap = float(np.linalg.norm(side))
        if gap < clearance:
            # Pass on the side the agent is already on; the push fades as the obstacle falls behind.
            away = -side / gap if gap > 1e-6 else np.array([-direction[1], direction[0]])
            out = out + away * (clearance - gap) / clearance * 2.0
    return _unit(out)


class _ScriptedPolicy(BehaviourPolicy):
    """Shared action encoding: from a desired velocity to a discrete or continuous MPE action."""

    #: Force scale of the agents this policy drives (``agent.accel``; 5 when the scenario sets none).
    accel: float = 5.0
    #: Their speed limit (``agent.max_speed``), or ``None``.
    max_speed: float | None = None

    def __init__(self, spec: Any, agents: Sequence[str], seed: int = 0, env: Any = None):
        super().__init__(spec, agents, seed, env)
        self._discrete: dict[str, bool] = {}

    def is_discrete(self, agent: str) -> bool:
        if agent not in self._discrete:
            self._discrete[agent] = hasattr(self.action_space(agent), "n")
        return self._discrete[agent]

    def move(self, agent: str, velocity: np.ndarray, goal: np.ndarray) -> np.ndarray | int:
        """The move (index 0-4, or force in [-1, 1]²) whose next velocity is closest to ``goal``."""
        coast = (1.0 - DAMPING) * velocity
        step = self.accel * DT
        if self.is_discrete(agent):
            nxt = coast + step * MOVES
            if self.max_speed is not None:
                nxt = np.array([_cap(v, self.max_speed) for v in nxt])
            return int(np.argmin(np.linalg.norm(nxt - goal, axis=1)))
        return np.clip((goal - coast) / step, -1.0, 1.0)

    def encode(self, agent: str, move: np.ndarray | int, word: int = 0, message: np.ndarray | None = None) -> Any:
        """The env action for ``move``; a speaking agent also sends ``word`` (discrete) or ``message``."""
        if self.is_discrete(agent):
            # The leader's Discrete(20) is word · 5 + move (SimpleEnv splits it with % 5 and // 5).
            n = self.action_space(agent).n
            return int(move) + (5 * word if n > 5 else 0)
        space = self.action_space(agent)
        if space.shape == (2,):  # a force-action env (EnvSpec.action_map "force2d"): the force itself
            return np.clip(np.asarray(move, dtype=space.dtype), -1.0, 1.0)
        action = np.zeros(space.shape, dtype=space.dtype)
        fx, fy = float(move[0]), float(move[1])  # type: ignore[index]
        action[1:5] = (max(-fx, 0.0), max(fx, 0.0), max(-fy, 0.0), max(fy, 0.0))
        if space.shape[0] > 5 and message is not None:
            action[5:] = np.clip(message, 0.0, 1.0)
        return action


def _arrive(offset: np.ndarray, velocity: np.ndarray, speed: float, gain: float) -> np.ndarray:
    """Desired velocity to stop at ``offset``: proportional to the distance left after this step's drift."""
    return _cap((offset - velocity * DT) * gain, speed)


# --------------------------------------------------------------------------------------------------------
# simple_spread


@policies.register("mpe-spread-expert", help="simple_spread: shared least-distance landmark assignment")
class SpreadExpert(_ScriptedPolicy):
    """Cover the landmarks: one assignment for the whole team, computed by every agent on its own.

    Each agent rebuilds the absolute positions of all agents and landmarks from its observation
    (``[vel, pos, landmarks − pos, others − pos, comm]``), takes the agent→landmark permutation with the least
    total distance (all agents find the same one, so no two go for the same landmark), and drives to its
    landmark with a damped controller that stops on it (desired velocity ``7 · (landmark − pos − 0.1 · vel)``,
    capped at 2). Agents closer than 0.45 push each other apart: two agents of size 0.15 that touch cost the
    team more than a small miss of the landmark.
    """

    name = "mpe-spread-expert"
    accel = 5.0
    #: Cruise speed (the agents have no speed limit of their own).
    speed = 2.0
    #: Desired speed per unit of distance to the landmark (1 / time constant of the approach).
    gain = 7.0
    separation = 0.45

    def act(self, observations: Mapping[str, np.ndarray]) -> dict[str, Any]:
        actions = {}
        for agent, obs in observations.items():
            obs = np.asarray(obs, dtype=np.float64)
            n = len(obs) // 6  # 4 + 2n (landmarks) + 2(n-1) (others) + 2(n-1) (comm)
            vel, pos = obs[0:2], obs[2:4]
            landmarks = pos + obs[4 : 4 + 2 * n].reshape(n, 2)
            others = pos + obs[4 + 2 * n : 2 + 4 * n].reshape(n - 1, 2)
            me = _agent_index(agent)
            everyone = np.insert(others, me, pos, axis=0)
            dist = np.linalg.norm(everyone[:, None, :] - landmarks[None, :, :], axis=2)
            best = min(itertools.permutations(range(n)), key=lambda p: sum(dist[i, p[i]] for i in range(n)))
            goal = _arrive(landmarks[best[me]] - pos, vel, self.speed, self.gain)
            for other in others:
                gap = pos - other
                d = float(np.linalg.norm(gap))
                if d < self.separation:
                    goal = goal + _unit(gap) * (self.separation - d) * 4.0
            actions[agent] = self.encode(agent, self.move(agent, vel, goal))
        return actions


# --------------------------------------------------------------------------------------------------------
# simple_tag


@policies.register("mpe-tag-expert", help="simple_tag predators: intercept the prey, around the obstacles")
class TagExpert(_ScriptedPolicy):
    """Predators that run to where they can meet the prey rather than to where it is.

    The prey is faster (1.3 against 1.0) and runs from the nearest predator, so chasing its current position
    only trails it. Each predator reads the prey's relative position and velocity from its observation
    (``[vel, pos, obstacles − pos, other predators − pos, prey − pos, prey vel]``), solves for the earliest
    time it could meet the prey if the prey kept its velocity, caps that time at ``horizon`` = 0.5 (the prey
    turns often), and runs at full speed to that point, bending its path around the two obstacles. Coming
    from their own sides, the predators close in on the prey from several directions; they do not keep apart,
    since every predator touching the prey scores. (Sending them to slots 120° apart around the prey caught
    less within 25 steps: the flankers arrive too late.)
    """

    name = "mpe-tag-expert"
    accel = 3.0
    max_speed = 1.0
    horizon = 0.5

    def act(self, observations: Mapping[str, np.ndarray]) -> dict[str, Any]:
        actions = {}
        for agent, obs in observations.items():
            obs = np.asarray(obs, dtype=np.float64)
            vel = obs[0:2]
            obstacles = obs[4:8].reshape(2, 2)
            aim = _intercept(obs[12:14], obs[14:16], self.max_speed, self.horizon)
            direction = _avoid(_unit(aim), obstacles, reach=0.6, clearance=0.2 + 0.075 + 0.05)
            actions[agent] = self.encode(agent, self.move(agent, vel, direction * self.max_speed))
        return actions


def _flee(pos: np.ndarray, threats: np.ndarray, inner: float, outer: float) -> np.ndarray:
    """``unit(f + c)`` of :class:`TagPrey`: flight from ``threats`` (relative positions) plus centre pull."""
    push = np.zeros(2)
    for rel in threats:
        d = max(float(np.linalg.norm(rel)), 1e-3)
        push -= rel / d**3
    r = float(np.linalg.norm(pos))
    pull = -_unit(pos) * max(0.0, r - inner) / (outer - inner)
    return _unit(_unit(push) + pull)


@policies.register("mpe-tag-prey", help="simple_tag prey (opponent): flee the predators, pulled to the centre")
class TagPrey(_ScriptedPolicy):
    """The fixed prey of ``mpe-simple_tag``: flee the predators, pulled back towards the centre.

    From its observation ``[vel, pos, obstacles − pos, predators − pos]`` the prey computes

    - a flight direction ``f = unit(Σ_j (pos − p_j) / |pos − p_j|³)`` over the three predators ``p_j``
      (each predator's push falls off with the square of its distance, so the nearest dominates);
    - a centre pull ``c = −unit(pos) · max(0, |pos| − 0.5) / 0.4``: zero inside radius 0.5, as strong as the
      flight at radius 0.9 (where the env's out-of-bounds penalty starts) and growing beyond;

    and runs at its full speed (1.3) along ``d = unit(f + c)``. An obstacle (radius 0.2) whose centre lies
    ahead along ``d`` within 0.5 and less than 0.3 to its side bends ``d`` away from it. The pull keeps the
    prey on the field, so it can be cornered and caught. It is deterministic.
    """

    name = "mpe-tag-prey"
    accel = 4.0
    max_speed = 1.3
    inner = 0.5
    outer = 0.9

    def act(self, observations: Mapping[str, np.ndarray]) -> dict[str, Any]:
        actions = {}
        for agent, obs in observations.items():
            obs = np.asarray(obs, dtype=np.float64)
            vel, pos = obs[0:2], obs[2:4]
            obstacles = obs[4:8].reshape(2, 2)
            predators = obs[8:14].reshape(3, 2)
            direction = _flee(pos, predators, self.inner, self.outer)
            direction = _avoid(direction, obstacles, reach=0.5, clearance=0.2 + 0.05 + 0.05)
            actions[agent] = self.encode(agent, self.move(agent, vel, direction * self.max_speed))
        return actions



# --------------------------------------------------------------------------------------------------------
# simple_world_comm
#
# Observation of an adversary (leader or not), 34 values: vel 0:2, pos 2:4, landmarks − pos 4:14 (obstacle,
# food 0, food 1, forest 0, forest 1), others − pos 14:24 (leader, adversary 0-2 without itself, agent 0,
# agent 1), good agents' velocities 24:28, own in-forest flags 28:30, the leader's message 30:34. A good
# agent hidden by a forest shows as (0, 0) in both position and velocity; the leader sees everyone.
# Observation of a good agent, 28 values: vel 0:2, pos 2:4, landmarks − pos 4:14, others − pos 14:24 (the
# four adversaries, then the other good agent), in-forest flags 24:26, the other good agent's velocity 26:28.

_WORLD_GOOD = slice(20, 24)


def _world_targets(obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions (relative) and velocities of the good agents this adversary sees; hidden ones dropped."""
    rel = obs[_WORLD_GOOD].reshape(2, 2)
    vel = obs[24:28].reshape(2, 2)
    seen = np.abs(rel).sum(axis=1) > 0.0
    return rel[seen], vel[seen]


@policies.register("mpe-world-expert", help="simple_world_comm adversaries: chase, the leader broadcasts the target")
class WorldExpert(_ScriptedPolicy):
    """Adversaries that chase the nearest good agent they can see; the leader tells the blind ones where to go.

    Every adversary runs to where it can intercept the nearest good agent it sees (as in ``mpe-tag-expert``),
    bending around the obstacle. The leader sees through the forests; it picks
    the good agent nearest to the adversaries' centroid and broadcasts its position: as a discrete word, the
    quadrant of the field it is in (``2·[y > 0] + [x > 0]``); as a continuous message, ``((x + 2) / 4,
    (y + 2) / 4, 1, 0)`` (the 1 marks a message; the channel is all zeros before the first one). A follower
    that sees no good agent (all are in forests it is not in, or it is in a forest) heads for the announced
    point: the quadrant's centre ``(±0.5, ±0.5)`` or the decoded position.
    """

    name = "mpe-world-expert"
    accel = 3.0
    max_speed = 1.0
    horizon = 0.5

    def act(self, observations: Mapping[str, np.ndarray]) -> dict[str, Any]:
        actions = {}
        for agent, obs in observations.items():
            obs = np.asarray(obs, dtype=np.float64)
            vel, pos = obs[0:2], obs[2:4]
            targets, target_vel = _world_targets(obs)
            leader = agent.startswith("lead")
            if len(targets):
                k = int(np.argmin(np.linalg.norm(targets, axis=1)))
                aim = _intercept(targets[k], target_vel[k], self.max_speed, self.horizon)
            else:
                aim = self._heard(agent, obs) - pos
            direction = _avoid(_unit(aim), obs[4:6][None], reach=0.6, clearance=0.2 + 0.075 + 0.05)
            move = self.move(agent, vel, direction * self.max_speed)
            if leader:
                word, message = self._announce(obs)
                actions[agent] = self.encode(agent, move, word=word, message=message)
            else:
                actions[agent] = self.encode(agent, move)
        return actions

    def _announce(self, obs: np.ndarray) -> tuple[int, np.ndarray]:
        pos = obs[2:4]
        team = np.vstack([pos, pos + obs[14:20].reshape(3, 2)])
        goods = pos + obs[_WORLD_GOOD].reshape(2, 2)
        target = goods[int(np.argmin(np.linalg.norm(goods - team.mean(axis=0), axis=1)))]
        word = 2 * int(target[1] > 0) + int(target[0] > 0)
        message = np.array([(target[0] + 2) / 4, (target[1] + 2) / 4, 1.0, 0.0])
        return word, message

    def _heard(self, agent: str, obs: np.ndarray) -> np.ndarray:
        """The point the leader announced (absolute), or the centre before any message."""
        message = obs[30:34]
        if not message.any():
            return np.zeros(2)
        if self.is_discrete(agent):
            word = int(np.argmax(message))
            return np.array([0.5 if word & 1 else -0.5, 0.5 if word & 2 else -0.5])
        return np.array([message[0] * 4 - 2, message[1] * 4 - 2])


@policies.register("mpe-world-good", help="simple_world_comm good agents (opponents): eat, flee a nearby adversary")
class WorldGood(_ScriptedPolicy):
    """The fixed good agents of ``mpe-simple_world_comm``: go for the nearest food, flee a nearby adversary.

    From its observation (``[vel, pos, landmarks − pos, adversaries − pos, other good agent − pos, in-forest,
    other good agent's vel]``; an adversary hidden by a forest reads (0, 0) and is ignored) a good agent

    - if a visible adversary is within ``danger`` = 0.4: runs at full speed (1.3) along ``unit(f + c)``, the
      same flight-plus-centre-pull rule as ``mpe-tag-prey`` (``f`` from the visible adversaries, ``c`` zero
      inside radius 0.5 and as strong as ``f`` at 0.9);
    - otherwise: moves to the nearest food and stops on it (desired velocity
      ``2.5 · (food − pos − 0.1 · vel)``, capped at 1.3), where the env pays it for eating.

    Both paths are bent around the obstacle. It is deterministic.
    """

    name = "mpe-world-good"
    accel = 4.0
    max_speed = 1.3
    danger = 0.4

    def act(self, observations: Mapping[str, np.ndarray]) -> dict[str, Any]:
        actions = {}
        for agent, obs in observations.items():
            obs = np.asarray(obs, dtype=np.float64)
            vel, pos = obs[0:2], obs[2:4]
            adversaries = obs[14:22].reshape(4, 2)
            adversaries = adversaries[np.abs(adversaries).sum(axis=1) > 0.0]
            near = adversaries[np.linalg.norm(adversaries, axis=1) < self.danger]
            if len(near):
                direction = _flee(pos, adversaries, TagPrey.inner, TagPrey.outer)
                goal = direction * self.max_speed
            else:
                food = obs[6:10].reshape(2, 2)
                target = food[int(np.argmin(np.linalg.norm(food, axis=1)))]
                goal = _arrive(target, vel, self.max_speed, 2.5)
            direction = _avoid(_unit(goal), obs[4:6][None], reach=0.5, clearance=0.2 + 0.045 + 0.05)
            goal = direction * float(np.linalg.norm(goal))
            actions[agent] = self.encode(agent, self.move(agent, vel, goal))
        return actions
