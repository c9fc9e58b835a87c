"""Fitted behaviour policies: OMAR-style data tiers from smooth, learnable policies.

OMAR and CFCQL collect their MPE tiers from MATD3 policies at different stages of RL training: ``random`` an
initialised network, ``medium`` a partially trained one, ``medium-replay`` the training history up to medium,
``expert`` a fully trained one. Training MPE policies with RL to expert level does not fit a 2-core machine
(RLlib PPO moved simple_spread from −26.5 to −22.4 in 60k steps), so rlcf keeps OMAR's structure with policies
*fitted* to the scripted expert instead (the acceptable substitute named in issue 19):

1. roll out the scripted expert (force actions) and fit a shared MLP policy ``obs → tanh(force)`` to it by
   regression, with DAgger rounds (the fit's own states, labelled by the expert) so the closed-loop policy
   recovers from its own mistakes;
2. keep a snapshot every ``snapshot_every`` steps: the untrained initialisation is ``init``, the final fit
   ``expert``, and ``medium`` is the first snapshot whose closed-loop normalized score reaches
   ``medium_target`` (≈ half the expert); the snapshots before it are the fit's history ``h00 … hNN``.

The snapshots ship with rlcf (``envs/behaviour/snapshots/<env>.npz``, a few hundred KB) together with their build
settings and measured scores, so every user collects the same tiers; ``python -m rlcf.envs.behaviour.fitted_build build ENV``
rebuilds them (about a minute on one core). Every fitted behaviour acts with Gaussian exploration noise of std
``noise`` on the force (OMAR's behaviour policies explored with Gaussian noise), drawn from the policy's own
generator, so a collection stays a function of its seeds.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rlcf.envs.behaviour.policies import BehaviourPolicy
from rlcf.errors import UsageError
from rlcf.registry import policies

__all__ = ["FittedPolicy", "fitted_forces", "fitted_tiers", "load_snapshots", "snapshots_path"]

SNAPSHOTS_DIR = Path(__file__).resolve().parent / "snapshots"


def snapshots_path(env_id: str) -> Path:
    """The shipped snapshot file of ``env_id``."""
    return SNAPSHOTS_DIR / f"{env_id}.npz"


_CACHE: dict[str, tuple[dict[str, list[np.ndarray]], dict[str, Any]]] = {}


def load_snapshots(source: str) -> tuple[dict[str, list[np.ndarray]], dict[str, Any]]:
    """``({stage: [w0, b0, w1, b1, …]}, info)`` from an env id with shipped snapshots or an ``.npz`` path."""
    path = Path(source) if source.endswith(".npz") else snapshots_path(source)
    key = str(path.resolve())
    if key in _CACHE:
        return _CACHE[key]
    if not path.is_file():
        shipped = sorted(p.stem for p in SNAPSHOTS_DIR.glob("*.npz"))
        raise UsageError(
            f"no fitted behaviour snapshots at {path}; shipped: {', '.join(shipped) or 'none'}; "
            f"build them with `python -m rlcf.envs.behaviour.fitted_build build ENV_ID --out FILE.npz`"
        )
    with np.load(path, allow_pickle=False) as f:
        info = json.loads(str(f["__info__"]))
        stages: dict[str, list[np.ndarray]] = {}
        for name in info["stages"]:
            layers = info["layers"]
            stages[name] = [np.asarray(f[f"{name}/{k}"], dtype=np.float64) for k in layers]
    _CACHE[key] = (stages, info)
    return stages, info


def _mlp(params: Sequence[np.ndarray], obs: np.ndarray) -> np.ndarray:
    h = obs
    last = len(params) // 2 - 1
    for k in range(last + 1):
        h = h @ params[2 * k] + params[2 * k + 1]
        if k < last:
            h = np.maximum(h, 0.0)
    return np.tanh(h)


def fitted_forces(params: Sequence[np.ndarray], obs_mean: np.ndarray, obs_std: np.ndarray,
                  observations: Mapping[str, np.ndarray], noise: float, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Forces in [-1, 1]² of a fitted snapshot for ``observations`` (standardised inputs, Gaussian noise, clipped)."""
    names = list(observations)
    obs = np.stack([np.asarray(observations[a], dtype=np.float64) for a in names])
    force = _mlp(params, (obs - obs_mean) / obs_std)
    if noise > 0:
        force = force + rng.normal(0.0, noise, size=force.shape)
    force = np.clip(force, -1.0, 1.0).astype(np.float32)
    return {a: force[i] for i, a in enumerate(names)}


@policies.register("fitted", help="an MLP snapshot fitted to the scripted expert (OMAR-style tiers); stage=…, noise=…")
class FittedPolicy(BehaviourPolicy):
    """A fitted MLP snapshot acting with Gaussian exploration noise.

    Args:
        stage: ``init``, ``h00`` …, ``medium`` or ``expert`` (see the module docstring).
        noise: std of the Gaussian noise added to the force before clipping to [-1, 1].
        snapshots: env id with shipped snapshots, or an ``.npz`` path (default: the env's own).
    """

    name = "fitted"

    def __init__(self, spec: Any, agents: Sequence[str], seed: int = 0, env: Any = None, stage: str = "expert",
                 noise: float = 0.1, snapshots: str | None = None):
        super().__init__(spec, agents, seed, env)
        if spec.action_map != "force2d":
            raise UsageError(f"policy 'fitted' acts with 2-D forces; env '{spec.id}' has action_map {spec.action_map!r}")
        self.source = snapshots or spec.id
        stages, info = load_snapshots(self.source)
        if stage not in stages:
            raise UsageError(f"unknown fitted stage '{stage}' for {self.source}; valid stages: {', '.join(stages)}")
        if not 0.0 <= float(noise) <= 2.0:
            raise UsageError(f"fitted policy noise must be in [0, 2], got {noise}")
        self.stage, self.noise, self.params = stage, float(noise), stages[stage]
        self.obs_mean = np.asarray(info["obs_mean"], dtype=np.float64)
        self.obs_std = np.asarray(info["obs_std"], dtype=np.float64)

    def act(self, observations: Mapping[str, np.ndarray]) -> dict[str, Any]:
        return fitted_forces(self.params, self.obs_mean, self.obs_std, observations, self.noise, self.rng)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "stage": self.stage, "noise": self.noise, "snapshots": self.source}


# -- tier recipes -----------------------------------------------------------------------------------------------

#: Exploration noise (std of the Gaussian on the force) per tier: the expert explores least.
TIER_NOISE = {"random": 0.3, "medium": 0.2, "medium-replay": 0.2, "expert": 0.1}


def fitted_tiers(spec: Any, tier: str) -> tuple[tuple[str, dict[str, Any], float], ...] | None:
    """OMAR's tiers from the env's fitted snapshots (``EnvSpec.tiers`` of the force-action MPE tasks).

    ``random`` the untrained initialisation, ``medium`` the first snapshot at about half the expert's score,
    ``medium-replay`` every snapshot from the initialisation up to medium in training order (equal shares: the
    fit's history), ``expert`` the final fit, ``mixed`` half medium and half expert.
    """
    stages, _ = load_snapshots(spec.id)

    def one(stage: str, noise: float, fraction: float) -> tuple[str, dict[str, Any], float]:
        return ("fitted", {"stage": stage, "noise": noise}, fraction)

    if tier == "random":
        return (one("init", TIER_NOISE["random"], 1.0),)
    if tier == "medium":
        return (one("medium", TIER_NOISE["medium"], 1.0),)
    if tier == "expert":
        return (one("expert", TIER_NOISE["expert"], 1.0),)
    if tier == "medium-replay":
        history = ["init", *sorted(s for s in stages if s.startswith("h")), "medium"]
        return tuple(one(s, TIER_NOISE["medium-replay"], 1.0 / len(history)) for s in history)
    if tier == "mixed":
        return (one("medium", TIER_NOISE["medium"], 0.5), one("expert", TIER_NOISE["expert"], 0.5))
    return None
