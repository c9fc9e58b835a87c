"""Multi-agent Minari datasets: write, validate, load into tensors, sample minibatches.

Minari cannot record PettingZoo environments; rlcf stores them without leaving the format. A dataset is a
real Minari dataset (``minari.load_dataset`` opens it) whose observation and action spaces are
``gymnasium.spaces.Dict`` keyed by agent id, whose rewards are the team reward, and whose ``infos`` hold, per
step, the per-agent rewards (``infos["agent_rewards"][agent]``), the global state (``infos["state"]``) and the
action masks where the env has them (``infos["action_mask"][agent]``). Following Minari, ``infos`` rows are
``T + 1`` long: row 0 is the reset, row ``t + 1`` follows step ``t`` (so ``agent_rewards[0]`` is 0).

Metadata: ``ref_min_score`` / ``ref_max_score`` (random and expert mean team returns, so
``minari.get_normalized_score`` works), an ``env_spec`` whose entry point rebuilds the team env as a gymnasium env
(:mod:`rlcf.data.team_gym_env`, so ``dataset.recover_environment()`` works) and an ``rlcf`` block with the env
spec (id, version, kwargs), the behaviour plan, the collection seed, per-episode seeds, and SHA-256 checksums of the data files.

Writing is atomic: the dataset is built under a temporary Minari root beside the real one and moved under its
final id only when complete and validated. Loading verifies the checksums and the shapes and refuses a corrupt
or truncated dataset with an error that names the file and the fix.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import threading
import uuid
import warnings
from collections.abc import Iterable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from rlcf.atomic import TMP_PREFIX
from rlcf.data.catalog import datasets_root
from rlcf.data.episodes import MultiAgentEpisode
from rlcf.errors import CorruptDatasetError, UsageError

__all__ = [
    "CorruptDatasetError",
    "MarlDataset",
    "dataset_id_for",
    "dataset_path",
    "dataset_stats",
    "load_marl_dataset",
    "recover_environment",
    "validate_dataset",
    "write_marl_dataset",
]

_ID_RE = re.compile(r"^[A-Za-z0-9_\-]{2,}(/[A-Za-z0-9_\-.]+)*/[A-Za-z0-9_\-.]+-v\d+$")
_ENV_LOCK = threading.Lock()  # MINARI_DATASETS_PATH is process-global while a dataset is being built


def dataset_id_for(env_id: str, tier: str, version: int = 0) -> str:
    """``rlcf/<env>/<tier>-v<N>``, e.g. ``rlcf/mpe-simple_spread/medium-v0``."""
    return f"rlcf/{env_id}/{tier}-v{version}"


def _check_id(dataset_id: str) -> None:
    if not _ID_RE.match(dataset_id):
        raise UsageError(
            f"dataset id '{dataset_id}' must look like 'namespace/name-vN' with a namespace of at least 2 "
            "characters, e.g. 'rlcf/mpe-simple_spread/medium-v0'"
        )


def dataset_path(dataset_id: str) -> Path:
    """Where ``dataset_id`` lives in the local Minari store."""
    return datasets_root() / dataset_id


@contextmanager
def _minari_root(root: Path) -> Iterator[None]:
    with _ENV_LOCK:
        previous = os.environ.get("MINARI_DATASETS_PATH")
        os.environ["MINARI_DATASETS_PATH"] = str(root)
        try:
            yield
        finally:
            if previous is None:
                os.environ.pop("MINARI_DATASETS_PATH", None)
            else:
                os.environ["MINARI_DATASETS_PATH"] = previous


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _data_files(folder: Path) -> list[Path]:
    """The data files of a dataset folder (Minari keeps metadata.json beside them in data/)."""
    return sorted(p for p in (folder / "data").rglob("*") if p.is_file() and p.name != "metadata.json")


def _space_of(env: Any, agents: Sequence[str], kind: str) -> Any:
    import gymnasium as gym

    get = env.observation_space if kind == "observation" else env.action_space
    return gym.spaces.Dict({a: get(a) for a in agents})


def _to_buffer(ep: MultiAgentEpisode) -> Any:
    from minari.data_collector import EpisodeBuffer

    zeros = np.zeros(1, dtype=np.float64)
    infos: dict[str, Any] = {
        "agent_rewards": {a: np.concatenate([zeros, ep.rewards[a]]) for a in ep.agents},
        "team_reward": np.concatenate([zeros, ep.team_rewards]),
        "epsilon": np.full(ep.length + 1, ep.epsilon, dtype=np.float32),
    }
    if ep.states is not None:
        infos["state"] = ep.states
    if ep.action_masks is not None:
        infos["action_mask"] = ep.action_masks
    return EpisodeBuffer(
        id=ep.index,
        seed=ep.seed,
        observations=ep.observations,
        actions=ep.actions,
        rewards=list(ep.team_rewards),
        terminations=list(ep.terminations),
        truncations=list(ep.truncations),
        infos=infos,
    )


def write_marl_dataset(
    dataset_id: str,
    episodes: Sequence[MultiAgentEpisode],
    *,
    spec: Any,
    behaviour: dict[str, Any],
    ref_min_score: float | None,
    ref_max_score: float | None,
    ref_episodes: int = 100,
    description: str = "",
    overwrite: bool = False,
    extra_metadata: dict[str, Any] | None = None,
) -> Path:
    """Write ``episodes`` as the Minari dataset ``dataset_id``; it appears only when complete and valid.

    Args:
        dataset_id: ``namespace/name-vN``.
        episodes: the episodes, in order (their ``index`` becomes the Minari episode id).
        spec: the env spec (its spaces come from a fresh env).
        behaviour: JSON-safe description of what collected the data (plan, policies, seeds).
        ref_min_score / ref_max_score: random and expert mean team returns for normalized scores.
        ref_episodes: how many episodes each reference return averages.
        description: free text stored in the metadata.
        overwrite: replace an existing dataset of this id (the old one is removed only after the new is valid).
        extra_metadata: more JSON-safe keys for the ``rlcf`` metadata block.

    Returns:
        The dataset's folder.
    """
    import minari
    from minari.namespace import create_namespace, list_local_namespaces

    from rlcf.data.team_gym_env import gym_env_spec

    _check_id(dataset_id)
    if not episodes:
        raise UsageError("cannot write a dataset with no episodes")
    final = dataset_path(dataset_id)
    if final.exists() and not overwrite:
        raise UsageError(f"dataset '{dataset_id}' already exists at {final}; bump its -vN or pass --overwrite")
    agents = episodes[0].agents
    env = spec.make()
    try:
        obs_space = _space_of(env, agents, "observation")
        act_space = _space_of(env, agents, "action")
    finally:
        env.close()

    root = datasets_root()
    root.mkdir(parents=True, exist_ok=True)
    staging = root / f"{TMP_PREFIX}{uuid.uuid4().hex[:10]}"
    staging.mkdir()
    try:
        with _minari_root(staging), warnings.catch_warnings():
            # The env spec is added below (Minari would build the env to take it here).
            warnings.filterwarnings("ignore", message=".*env_spec is None.*")
            warnings.filterwarnings("ignore", message=".*eval_env.*")
            # Nor are author / permalink asked of the user; the rlcf block (env, behaviour, seeds, checksums) is the
            # dataset's provenance. Left on, Minari repeats these three warnings for every dataset written.
            warnings.filterwarnings("ignore", message=r".*`(code_permalink|author|author_email)` is set to None.*")
            ds = minari.create_dataset_from_buffers(
                dataset_id,
                [_to_buffer(ep) for ep in episodes],
                observation_space=obs_space,
                action_space=act_space,
                algorithm_name=str(behaviour.get("tier", "custom")),
                description=description or f"rlcf multi-agent dataset of {spec.id}",
                data_format="hdf5",
                requirements=["rlcf", "mpe2>=1.1"] if spec.id.startswith("mpe") else ["rlcf"],
            )
            built = staging / dataset_id
            rlcf_meta = {
                "format": 1,
                "env": spec.to_metadata(),
                "agents": list(agents),
                "behaviour": behaviour,
                "episode_seeds": [int(ep.seed) for ep in episodes],
                "has_state": episodes[0].states is not None,
                "has_action_mask": episodes[0].action_masks is not None,
                **(extra_metadata or {}),
            }
            # A gymnasium EnvSpec rebuilding the team env, so that Minari's recover_environment() works.
            update: dict[str, Any] = {"rlcf": rlcf_meta, "env_spec": gym_env_spec(rlcf_meta["env"]).to_json()}
            if ref_min_score is not None and ref_max_score is not None:
                update.update(
                    ref_min_score=float(ref_min_score),
                    ref_max_score=float(ref_max_score),
                    num_episodes_average_score=int(ref_episodes),
                )
            ds.storage.update_metadata(update)
            # Checksums last: they cover the data files as they will be read.
            rlcf_meta["checksums"] = {str(p.relative_to(built)): _sha256(p) for p in _data_files(built)}
            ds.storage.update_metadata({"rlcf": rlcf_meta})
        validate_dataset(built, expect_id=dataset_id)
        # Minari lists datasets by walking namespaces: make sure the namespace exists in the real store.
        namespace = dataset_id.rsplit("/", 1)[0]
        with _minari_root(root):
            parts = namespace.split("/")
            for i in range(1, len(parts) + 1):
                ns = "/".join(parts[:i])
                if ns not in list_local_namespaces():
                    create_namespace(ns)
        final.parent.mkdir(parents=True, exist_ok=True)
        if final.exists():
            old = final.with_name(f"{TMP_PREFIX}{final.name}-{uuid.uuid4().hex[:6]}")
            os.replace(final, old)
            os.replace(built, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(built, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return final


def _read_metadata(folder: Path) -> dict[str, Any]:
    path = folder / "data" / "metadata.json"
    if not path.is_file():
        raise CorruptDatasetError(f"'{folder}' is not a Minari dataset: metadata.json is missing")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise CorruptDatasetError(f"'{path}' is not valid JSON ({exc}); re-collect the dataset") from exc


def _resolve(source: str | os.PathLike[str]) -> tuple[Path, str]:
    """``(folder, dataset id)`` from a dataset id or a dataset folder."""
    p = Path(source)
    if p.is_dir() and (p / "data" / "metadata.json").is_file():
        return p, str(_read_metadata(p).get("dataset_id", p.name))
    source = str(source)
    _check_id(source)
    folder = dataset_path(source)
    if not folder.is_dir():
        from rlcf.data.catalog import local_datasets

        known = [row[0] for row in local_datasets()]
        import difflib

        close = difflib.get_close_matches(source, known, n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise UsageError(
            f"no dataset '{source}' under {datasets_root()}.{hint} Local datasets: {', '.join(known) or 'none'}. "
            "Collect one with `rlcf collect`."
        )
    return folder, source


def validate_dataset(source: str | os.PathLike[str], expect_id: str | None = None) -> dict[str, Any]:
    """Check a dataset before anything reads it; returns its metadata.

    Checks: Minari metadata present; an ``rlcf`` block; every data file listed in the checksums exists and
    matches its SHA-256 (a truncated or altered file fails here); episode and step counts agree with the
    metadata; Dict spaces keyed by the recorded agents.

    Raises:
        CorruptDatasetError: naming the file or field at fault and what to do.
    """
    folder, dataset_id = (Path(source), expect_id) if expect_id else _resolve(source)
    meta = _read_metadata(folder)
    if expect_id and meta.get("dataset_id") != expect_id:
        raise CorruptDatasetError(f"'{folder}' holds dataset {meta.get('dataset_id')!r}, expected {expect_id!r}")
    rlcf_meta = meta.get("rlcf")
    if not isinstance(rlcf_meta, dict):
        raise CorruptDatasetError(
            f"dataset '{dataset_id}' has no rlcf metadata: it was not written by rlcf (or its metadata.json was "
            "replaced); open it with minari.load_dataset, or re-collect it with `rlcf collect`"
        )
    checksums = rlcf_meta.get("checksums")
    if not checksums:
        raise CorruptDatasetError(f"dataset '{dataset_id}' has no checksums: its writing never finished")
    for rel, digest in checksums.items():
        path = folder / rel
        if not path.is_file():
            raise CorruptDatasetError(f"dataset '{dataset_id}': data file {path} is missing; re-collect it")
        if _sha256(path) != digest:
            raise CorruptDatasetError(
                f"dataset '{dataset_id}': {path} does not match its checksum (truncated or altered on disk); "
                f"delete {folder} and collect it again"
            )
    seeds = rlcf_meta.get("episode_seeds", [])
    if int(meta.get("total_episodes", -1)) != len(seeds):
        raise CorruptDatasetError(
            f"dataset '{dataset_id}': metadata says {meta.get('total_episodes')} episodes but recorded "
            f"{len(seeds)} episode seeds"
        )
    return meta


def recover_environment(source: str | os.PathLike[str], **kwargs: Any) -> Any:
    """The env a dataset (id or folder) was recorded on, as a :class:`~rlcf.data.team_gym_env.TeamGymEnv` made by
    ``gymnasium.make``: what Minari's ``dataset.recover_environment()`` gives, also for datasets written before
    rlcf stored their ``env_spec``.

    Args:
        source: a dataset id (``rlcf/mpe-simple_spread/expert-v0``) or its folder.
        **kwargs: passed to ``gymnasium.make``.
    """
    import gymnasium as gym

    from rlcf.data.team_gym_env import gym_env_spec

    folder, dataset_id = _resolve(source)
    meta = validate_dataset(folder, expect_id=dataset_id)
    return gym.make(gym_env_spec(meta["rlcf"]["env"]), **kwargs)


@dataclass(frozen=True)
class MarlDataset:
    """A multi-agent dataset as stacked transition tensors, ``N`` transitions by ``n_agents``.

    Per-agent tensors are padded to the largest agent's size (``obs_dims[i]`` / ``action_dims[i]`` give each
    agent's true size). Discrete actions are integer indices ``[N, n_agents]``; continuous ones
    ``[N, n_agents, act_dim]``.

    Attributes:
        dataset_id, agents, env_id, action_type: what the data is.
        obs, next_obs: ``[N, n_agents, obs_dim]`` float32.
        actions: ``[N, n_agents]`` int64 or ``[N, n_agents, act_dim]`` float32.
        rewards: ``[N]`` team reward; ``agent_rewards``: ``[N, n_agents]``.
        terminals: ``[N]`` 1.0 where the episode terminated (no bootstrapping); ``timeouts``: ``[N]`` truncations.
        state, next_state: ``[N, state_dim]`` or ``None``.
        action_mask, next_action_mask: ``[N, n_agents, n_actions]`` bool or ``None``.
        episode_starts: ``[E + 1]`` offsets of each episode's first transition (and ``N`` at the end).
        action_low, action_high: ``[n_agents, act_dim]`` bounds of continuous actions (``None`` if discrete).
        metadata: the Minari metadata.
    """

    dataset_id: str
    agents: tuple[str, ...]
    env_id: str
    action_type: str
    obs: Any
    next_obs: Any
    actions: Any
    rewards: Any
    agent_rewards: Any
    terminals: Any
    timeouts: Any
    state: Any
    next_state: Any
    action_mask: Any
    next_action_mask: Any
    episode_starts: Any
    obs_dims: tuple[int, ...]
    action_dims: tuple[int, ...]
    metadata: dict[str, Any]
    action_low: Any = None
    action_high: Any = None

    def __len__(self) -> int:
        return int(self.rewards.shape[0])

    def __repr__(self) -> str:
        shapes = ", ".join(
            f"{k}={tuple(getattr(self, k).shape)}" for k in ("obs", "actions", "rewards", "state") if getattr(self, k) is not None
        )
        return f"MarlDataset({self.dataset_id!r}, agents={list(self.agents)}, {shapes})"

    @property
    def n_agents(self) -> int:
        return len(self.agents)

    @property
    def n_episodes(self) -> int:
        return int(self.episode_starts.shape[0]) - 1

    @property
    def device(self) -> Any:
        return self.obs.device

    def to(self, device: Any) -> MarlDataset:
        """A copy with every tensor on ``device``."""
        moved = {k: (v.to(device) if hasattr(v, "to") and not isinstance(v, (str, dict, tuple)) else v) for k, v in self.__dict__.items()}
        return MarlDataset(**moved)

    def sample(self, batch_size: int, generator: Any = None) -> dict[str, Any]:
        """A uniform minibatch of transitions (indices drawn on the data's device)."""
        import torch

        idx = torch.randint(len(self), (batch_size,), device=self.device, generator=generator)
        return self.batch(idx)

    def batch(self, idx: Any) -> dict[str, Any]:
        """The transitions at ``idx`` as a dict of tensors."""
        out = {
            "obs": self.obs[idx],
            "actions": self.actions[idx],
            "rewards": self.rewards[idx],
            "agent_rewards": self.agent_rewards[idx],
            "next_obs": self.next_obs[idx],
            "terminals": self.terminals[idx],
            "timeouts": self.timeouts[idx],
        }
        for key in ("state", "next_state", "action_mask", "next_action_mask"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value[idx]
        return out

    def episode_returns(self) -> np.ndarray:
        """Team return of every episode."""
        r = self.rewards.detach().cpu().numpy()
        starts = self.episode_starts.cpu().numpy()
        return np.add.reduceat(r, starts[:-1]) if len(r) else np.zeros(0)

    def discounted_returns(self, gamma: float) -> Any:
        """``[N]`` Monte-Carlo discounted team return-to-go of every transition, to the end of its episode.

        The standard diagnostic beside a critic's Q of dataset actions. Where episodes end by truncation (MPE's
        25 steps) a TD critic bootstraps past the end, so its Q exceeds this in magnitude near the end by up to
        ``γ^(T−t)·V(s_T)``; early in an episode the two are comparable.
        """
        import torch

        r = self.rewards.detach().cpu().double().numpy()
        starts = self.episode_starts.cpu().numpy()
        out = np.zeros_like(r)
        for lo, hi in zip(starts[:-1], starts[1:]):
            acc = 0.0
            for t in range(hi - 1, lo - 1, -1):
                acc = r[t] + gamma * acc
                out[t] = acc
        return torch.as_tensor(out, dtype=torch.float32, device=self.rewards.device)

    def normalized_score(self, returns: Any) -> np.ndarray:
        """``100·(R − ref_min)/(ref_max − ref_min)`` with the dataset's reference scores."""
        lo, hi = self.metadata.get("ref_min_score"), self.metadata.get("ref_max_score")
        if lo is None or hi is None:
            raise UsageError(f"dataset '{self.dataset_id}' has no reference scores; re-collect it with references")
        return 100.0 * (np.asarray(returns, dtype=np.float64) - lo) / (hi - lo)


def _pad(arrays: list[np.ndarray], width: int) -> np.ndarray:
    out = np.zeros((arrays[0].shape[0], len(arrays), width), dtype=np.float32)
    for i, a in enumerate(arrays):
        out[:, i, : a.shape[1]] = a.reshape(a.shape[0], -1)
    return out


def load_marl_dataset(source: str | os.PathLike[str], device: Any = "cpu") -> MarlDataset:
    """Validate a dataset (id or folder) and load it as stacked tensors on ``device``.

    Raises:
        UsageError: no such dataset (with the local ones listed).
        CorruptDatasetError: the dataset fails :func:`validate_dataset` or its episodes do not fit its spaces.
    """
    import minari
    import torch

    folder, dataset_id = _resolve(source)
    meta = validate_dataset(folder, expect_id=dataset_id)
    rlcf_meta = meta["rlcf"]
    agents = tuple(rlcf_meta["agents"])
    with _minari_root(folder.parents[len(Path(dataset_id).parts) - 1]):
        try:
            ds = minari.load_dataset(dataset_id)
            episodes = list(ds.iterate_episodes())
        except Exception as exc:  # noqa: BLE001 - any read failure of a checksummed file is corruption
            raise CorruptDatasetError(f"dataset '{dataset_id}' cannot be read: {exc}") from exc
    if len(episodes) != len(rlcf_meta["episode_seeds"]):
        raise CorruptDatasetError(f"dataset '{dataset_id}': read {len(episodes)} episodes, metadata says more")

    discrete = rlcf_meta["env"]["action_type"] == "discrete"
    obs_rows, next_rows, act_rows = ({a: [] for a in agents} for _ in range(3))
    rew, arew, term, trunc, st, nst, starts = [], [], [], [], [], [], [0]
    mask_rows: dict[str, list] | None = {a: [] for a in agents} if rlcf_meta.get("has_action_mask") else None
    next_mask_rows: dict[str, list] | None = {a: [] for a in agents} if mask_rows is not None else None
    for ep in episodes:
        T = len(ep.rewards)
        for a in agents:
            o = np.asarray(ep.observations[a], dtype=np.float32)
            if o.shape[0] != T + 1 or np.asarray(ep.actions[a]).shape[0] != T:
                raise CorruptDatasetError(
                    f"dataset '{dataset_id}' episode {ep.id}: agent {a} has {o.shape[0]} observations and "
                    f"{np.asarray(ep.actions[a]).shape[0]} actions for {T} steps"
                )
            obs_rows[a].append(o[:-1].reshape(T, -1))
            next_rows[a].append(o[1:].reshape(T, -1))
            act_rows[a].append(np.asarray(ep.actions[a]))
            if mask_rows is not None and next_mask_rows is not None:
                m = np.asarray(ep.infos["action_mask"][a], dtype=bool)
                mask_rows[a].append(m[:-1])
                next_mask_rows[a].append(m[1:])
        rew.append(np.asarray(ep.rewards, dtype=np.float32))
        arew.append(np.stack([np.asarray(ep.infos["agent_rewards"][a][1:], dtype=np.float32) for a in agents], 1))
        term.append(np.asarray(ep.terminations, dtype=np.float32))
        trunc.append(np.asarray(ep.truncations, dtype=np.float32))
        if rlcf_meta.get("has_state"):
            s = np.asarray(ep.infos["state"], dtype=np.float32)
            st.append(s[:-1])
            nst.append(s[1:])
        starts.append(starts[-1] + T)

    obs_dims = tuple(int(np.concatenate(obs_rows[a]).shape[1]) for a in agents)
    obs = _pad([np.concatenate(obs_rows[a]) for a in agents], max(obs_dims))
    next_obs = _pad([np.concatenate(next_rows[a]) for a in agents], max(obs_dims))
    if discrete:
        actions_np = np.stack([np.concatenate(act_rows[a]).astype(np.int64).reshape(-1) for a in agents], 1)
        action_dims = tuple(int(ds.action_space[a].n) for a in agents)
        actions = torch.as_tensor(actions_np)
        bounds = (None, None)
    else:
        flat = [np.concatenate(act_rows[a]).astype(np.float32).reshape(starts[-1], -1) for a in agents]
        action_dims = tuple(int(f.shape[1]) for f in flat)
        actions = torch.as_tensor(_pad(flat, max(action_dims)))
        low = np.zeros((len(agents), max(action_dims)), dtype=np.float32)
        high = np.ones((len(agents), max(action_dims)), dtype=np.float32)
        for i, a in enumerate(agents):
            low[i, : action_dims[i]] = np.asarray(ds.action_space[a].low, dtype=np.float32).reshape(-1)
            high[i, : action_dims[i]] = np.asarray(ds.action_space[a].high, dtype=np.float32).reshape(-1)
        bounds = (torch.as_tensor(low), torch.as_tensor(high))

    def cat(rows: list[np.ndarray]) -> Any:
        return torch.as_tensor(np.concatenate(rows)) if rows else None

    def masks(rows: dict[str, list] | None) -> Any:
        if rows is None:
            return None
        return torch.as_tensor(np.stack([np.concatenate(rows[a]) for a in agents], 1))

    data = MarlDataset(
        dataset_id=dataset_id,
        agents=agents,
        env_id=rlcf_meta["env"]["id"],
        action_type=rlcf_meta["env"]["action_type"],
        obs=torch.as_tensor(obs),
        next_obs=torch.as_tensor(next_obs),
        actions=actions,
        rewards=cat(rew),
        agent_rewards=cat(arew),
        terminals=cat(term),
        timeouts=cat(trunc),
        state=cat(st),
        next_state=cat(nst),
        action_mask=masks(mask_rows),
        next_action_mask=masks(next_mask_rows),
        episode_starts=torch.as_tensor(np.asarray(starts, dtype=np.int64)),
        obs_dims=obs_dims,
        action_dims=action_dims,
        metadata=meta,
        action_low=bounds[0],
        action_high=bounds[1],
    )
    return data.to(device) if str(device) != "cpu" else data


def dataset_stats(returns: Iterable[float], meta: dict[str, Any]) -> dict[str, Any]:
    """Episode-return statistics of a dataset, with its normalized score where references exist."""
    r = np.asarray(list(returns), dtype=np.float64)
    out: dict[str, Any] = {
        "episodes": int(r.size),
        "return_mean": float(r.mean()) if r.size else float("nan"),
        "return_std": float(r.std()) if r.size else float("nan"),
        "return_min": float(r.min()) if r.size else float("nan"),
        "return_max": float(r.max()) if r.size else float("nan"),
    }
    lo, hi = meta.get("ref_min_score"), meta.get("ref_max_score")
    if lo is not None and hi is not None and r.size:
        out["normalized_score"] = float(100.0 * (r.mean() - lo) / (hi - lo))
        out["ref_min_score"], out["ref_max_score"] = lo, hi
    return out
