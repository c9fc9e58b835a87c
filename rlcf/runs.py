"""Run folders: resolved config, metrics (JSONL + TensorBoard), atomic checkpoints, resume.

A run lives in ``<out_dir>/<algo>/<name>-<YYYYmmdd-HHMMSS>/``::

    config.yaml              the resolved experiment (reproduce the run from this file alone)
    metrics.jsonl            one JSON object per log call: {"step": ..., "time": ..., "<ns>/<key>": ...}
    tb/                      TensorBoard event files with the same keys
    checkpoints/step_000001000.pt, ...   written atomically; the newest readable one is resumed from

Metric keys are namespaced (``train/…``, ``losses/…``, ``rewards/<fn>/mean``, ``eval/<suite>/<task>/…``).
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import time
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

from rlcf.atomic import TMP_PREFIX, atomic_save, atomic_write_text, clean_temporaries
from rlcf.config import ExperimentConfig, RunConfig, load_experiment, to_dict, to_yaml
from rlcf.errors import CheckpointError, ConfigError, UsageError

log = logging.getLogger(__name__)

__all__ = ["Run", "find_latest_run", "validate_metric_key"]

_CKPT_RE = re.compile(r"^step_(\d+)\.pt$")
_KEY_RE = re.compile(r"^[A-Za-z0-9_.\-]+(/[A-Za-z0-9_.\-<>]+)+$")
CONFIG_FILE = "config.yaml"
METRICS_FILE = "metrics.jsonl"


def validate_metric_key(key: str) -> None:
    """Metric keys are ``namespace/name`` (more levels allowed): ``losses/critic``, ``eval/mpe/spread/score``."""
    if not isinstance(key, str) or not _KEY_RE.match(key):
        raise UsageError(
            f"metric key {key!r} is not namespaced; use 'namespace/name', e.g. 'train/step_time' or 'losses/td'"
        )


def _json_number(value: Any) -> float | int | None:
    if hasattr(value, "item"):  # torch / numpy scalars
        value = value.item()
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    value = float(value)
    return value if math.isfinite(value) else None  # JSON has no NaN/inf; null marks them


class Run:
    """One run folder. Create with :meth:`create`, reopen with :meth:`open` (e.g. to resume)."""

    def __init__(self, path: Path, experiment: ExperimentConfig):
        self.path = Path(path)
        self.experiment = experiment
        self.checkpoint_dir = self.path / "checkpoints"
        self._metrics_fh = None
        self._tb = None
        self.algorithm: Any = None  # set by the training loop to the algorithm it trains

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r})"

    # -- creation -------------------------------------------------------------------------------------------

    @classmethod
    def create(cls, experiment: ExperimentConfig, *, timestamp: datetime | None = None) -> Run:
        """Make a new run folder and write the resolved config into it."""
        algo_dir = _algo_dirname(experiment.algo)
        stamp = (timestamp or datetime.now()).strftime("%Y%m%d-%H%M%S")
        root = Path(experiment.run.out_dir) / algo_dir
        root.mkdir(parents=True, exist_ok=True)
        base = f"{experiment.run.name}-{stamp}"
        path = root / base
        k = 1
        while True:
            try:
                path.mkdir()
                break
            except FileExistsError:
                k += 1
                path = root / f"{base}-{k}"
        run = cls(path, experiment)
        run.write_config()
        return run

    @classmethod
    def open(cls, path: str | os.PathLike[str], overrides: list[str] | tuple[str, ...] = ()) -> Run:
        """Reopen an existing run folder from its ``config.yaml``.

        Args:
            path: the run folder.
            overrides: ``key=value`` changes; only :attr:`RunConfig.RESUMABLE` fields may change.
        """
        p = Path(path)
        cfg = p / CONFIG_FILE
        if not cfg.is_file():
            raise UsageError(f"'{p}' is not a run folder: it has no {CONFIG_FILE}")
        original = load_experiment(cfg)
        experiment = load_experiment(cfg, overrides)
        changed = _changed_fields(to_dict(original), to_dict(experiment))
        forbidden = [f for f in changed if not (f.startswith("run.") and f[4:] in RunConfig.RESUMABLE)]
        if forbidden:
            raise ConfigError(
                forbidden[0],
                "cannot change when resuming a run (it would no longer be the same experiment). "
                f"Fields that may change on resume: {', '.join(sorted('run.' + f for f in RunConfig.RESUMABLE))}. "
                "Start a new run instead.",
            )
        # run.name and out_dir are fixed by the folder itself
        experiment = replace(experiment, run=replace(experiment.run, name=original.run.name))
        run = cls(p, experiment)
        if changed:
            run.write_config()
        return run

    def remove_if_unstarted(self) -> bool:
        """Delete the run folder when it holds nothing but ``config.yaml`` (and empty folders): a start that
        failed, which ``--resume`` and ``rlcf eval`` could only trip over. Returns whether it was deleted."""
        import shutil

        if not self.path.is_dir():
            return False
        for child in self.path.rglob("*"):
            if child.is_file() and child != self.path / CONFIG_FILE:
                return False
        shutil.rmtree(self.path, ignore_errors=True)
        return True

    def has_trained_state(self) -> bool:
        """Whether the run has something to evaluate or resume: an rlcf checkpoint, a Hugging Face trainer
        checkpoint (``checkpoints/<stage>/checkpoint-N``) or a ``final_model``."""
        ckpts = self.checkpoint_dir
        return (
            bool(self.checkpoints())
            or any(ckpts.glob("*/checkpoint-*/trainer_state.json"))
            or (self.path / "final_model").is_dir()
        )

    def write_config(self) -> None:
        header = (
            "# Resolved rlcf experiment. Reproduce with: rlcf train <this file>\n"
            f"# written {datetime.now().isoformat(timespec='seconds')}\n"
        )
        atomic_write_text(self.path / CONFIG_FILE, header + to_yaml(self.experiment))

    # -- metrics --------------------------------------------------------------------------------------------

    def log(self, metrics: Mapping[str, Any], step: int) -> None:
        """Append ``metrics`` at ``step`` to metrics.jsonl (flushed per call) and TensorBoard."""
        if not metrics:
            return
        row: dict[str, Any] = {"step": int(step), "time": round(time.time(), 3)}
        for key, value in metrics.items():
            validate_metric_key(key)
            row[key] = _json_number(value)
        if self._metrics_fh is None:
            self._metrics_fh = open(self.path / METRICS_FILE, "a", encoding="utf-8")
        self._metrics_fh.write(json.dumps(row) + "\n")
        self._metrics_fh.flush()
        if self.experiment.run.tensorboard:
            self._tensorboard().add_scalars(
                {k: v for k, v in row.items() if k not in ("step", "time") and v is not None}, int(step)
            )

    def flush(self) -> None:
        """Put every metric logged so far into its files, so that a process killed from now on loses none of
        them (called before each checkpoint is written: a resumed run continues both files from there)."""
        if self._metrics_fh is not None:
            self._metrics_fh.flush()
        if self._tb is not None:
            self._tb.flush()

    def _tensorboard(self, purge_step: int | None = None) -> _EventFile:
        if self._tb is None:
            self._tb = _EventFile(self.path / "tb", purge_step=purge_step)
        return self._tb

    def read_metrics(self) -> list[dict[str, Any]]:
        """All complete rows of metrics.jsonl (a torn last line from a crash is skipped)."""
        path = self.path / METRICS_FILE
        if not path.is_file():
            return []
        rows = []
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return rows

    def truncate_metrics(self, step: int) -> None:
        """Drop metric rows logged after ``step`` (they will be logged again by the resumed run)."""
        self.close()
        rows = [r for r in self.read_metrics() if r.get("step", 0) <= step]
        atomic_write_text(self.path / METRICS_FILE, "".join(json.dumps(r) + "\n" for r in rows))
        if self.experiment.run.tensorboard:
            # TensorBoard discards events at or after purge_step from earlier files of this folder.
            self._tensorboard(purge_step=step + 1)

    def close(self) -> None:
        if self._metrics_fh is not None:
            self._metrics_fh.close()
            self._metrics_fh = None
        if self._tb is not None:
            self._tb.close()
            self._tb = None

    def __enter__(self) -> Run:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- checkpoints ----------------------------------------------------------------------------------------

    def checkpoint_path(self, step: int) -> Path:
        return self.checkpoint_dir / f"step_{int(step):09d}.pt"

    def checkpoints(self) -> list[tuple[int, Path]]:
        """``(step, path)`` of the complete checkpoints, oldest first (temporaries are ignored)."""
        if not self.checkpoint_dir.is_dir():
            return []
        found = []
        for child in self.checkpoint_dir.iterdir():
            m = _CKPT_RE.match(child.name)
            if m and not child.name.startswith(TMP_PREFIX):
                found.append((int(m.group(1)), child))
        return sorted(found)

    def save_checkpoint(self, state: Mapping[str, Any], step: int) -> Path:
        """Flush the logs, write ``state`` at ``step`` atomically, then prune to ``run.keep_checkpoints`` newest."""
        self.flush()  # the logs reach the checkpoint's step before the checkpoint exists
        path = self.checkpoint_path(step)
        payload = {"step": int(step), "algo": self.experiment.algo, "config": to_dict(self.experiment), **state}
        atomic_save(payload, path)
        keep = self.experiment.run.keep_checkpoints
        for _, old in self.checkpoints()[:-keep]:
            old.unlink(missing_ok=True)
        return path

    def load_checkpoint(self, step: int | None = None, map_location: Any = "cpu") -> dict[str, Any]:
        """Load the checkpoint at ``step`` (default: the newest one that reads back completely).

        A newest checkpoint that cannot be read (damaged on disk after it was written) is skipped with a
        warning, and the one before it is used; asking for that ``step`` explicitly raises instead.

        Raises:
            CheckpointError: no checkpoint exists, or none can be read.
        """
        import torch

        clean_temporaries(self.checkpoint_dir)
        found = self.checkpoints()
        if step is not None:
            found = [(s, p) for s, p in found if s == step]
            if not found:
                steps = ", ".join(str(s) for s, _ in self.checkpoints()) or "none"
                raise CheckpointError(f"run '{self.path}' has no checkpoint at step {step}; it has: {steps}")
        if not found:
            raise CheckpointError(
                f"run '{self.path}' has no checkpoint to resume from; start a new run without --resume"
            )
        errors = []
        for s, path in reversed(found):
            try:
                state = torch.load(path, map_location=map_location, weights_only=False)
            except Exception as exc:  # noqa: BLE001 - any unpickling failure means "unreadable"
                if step is not None:
                    raise CheckpointError(f"checkpoint '{path}' cannot be read: {exc}") from exc
                log.warning("checkpoint %s cannot be read (%s); trying the previous one", path, exc)
                errors.append(f"{path.name}: {exc}")
                continue
            if not isinstance(state, dict) or state.get("step") != s:
                errors.append(f"{path.name}: not an rlcf checkpoint")
                continue
            return state
        raise CheckpointError(f"no readable checkpoint in '{self.checkpoint_dir}': " + "; ".join(errors))


class _EventFile:
    """A TensorBoard event file written in the calling thread.

    tensorboardX's ``SummaryWriter`` hands events to a background thread through a queue, and its ``flush()``
    does not wait for that queue: events logged just before a checkpoint could still be lost to a kill. Here
    every event is in the file's buffer when :meth:`add_scalars` returns, :meth:`flush` puts it on disk, and the
    buffer is flushed at most every ``flush_secs`` for a TensorBoard watching the run.

    Args:
        logdir: the folder of the event files (one new file per writer).
        purge_step: when resuming, TensorBoard drops the events at or after this step from the folder's
            earlier files (they are logged again).
        flush_secs: the longest time an event waits in the buffer while logging goes on.
    """

    def __init__(self, logdir: Path, purge_step: int | None = None, flush_secs: float = 10.0):
        from tensorboardX.event_file_writer import EventsWriter
        from tensorboardX.proto.event_pb2 import Event, SessionLog

        logdir.mkdir(parents=True, exist_ok=True)
        # A suffix unique to this process and writer: two writers opened in the same second never share a file.
        self._writer = EventsWriter(str(logdir / "events"), f".{os.getpid()}.{time.monotonic_ns()}")
        self._event = Event
        if purge_step is not None:
            self._writer.write_event(Event(step=purge_step, session_log=SessionLog(status=SessionLog.START)))
        self._flush_secs = flush_secs
        self._flushed_at = time.monotonic()

    def add_scalars(self, scalars: Mapping[str, float], step: int) -> None:
        from tensorboardX.summary import scalar

        wall_time = time.time()
        for tag, value in scalars.items():
            self._writer.write_event(self._event(summary=scalar(tag, value), step=step, wall_time=wall_time))
        if time.monotonic() - self._flushed_at > self._flush_secs:
            self.flush()

    def flush(self) -> None:
        self._writer.flush()
        self._flushed_at = time.monotonic()

    def close(self) -> None:
        self._writer.close()


def _algo_dirname(algo: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.\-]+", "_", algo.rsplit(":", 1)[-1]).lower()


def _changed_fields(a: Any, b: Any, prefix: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for key in sorted(set(a) | set(b)):
            out += _changed_fields(a.get(key), b.get(key), f"{prefix}.{key}" if prefix else key)
        return out
    return [] if a == b else [prefix]


def find_latest_run(out_dir: str | os.PathLike[str], algo: str, name: str) -> Path | None:
    """The newest run folder ``<out_dir>/<algo>/<name>-<timestamp>`` that has a checkpoint, if any."""
    root = Path(out_dir) / _algo_dirname(algo)
    if not root.is_dir():
        return None
    pattern = re.compile(rf"^{re.escape(name)}-\d{{8}}-\d{{6}}(-\d+)?$")
    candidates = []
    for child in root.iterdir():
        ckpts = child / "checkpoints"
        # rlcf's own checkpoints, or a Hugging Face trainer's (``checkpoints/<stage>/checkpoint-N``, complete once
        # its trainer_state.json is written).
        has_checkpoint = any(ckpts.glob("step_*.pt")) or any(ckpts.glob("*/checkpoint-*/trainer_state.json"))
        if child.is_dir() and pattern.match(child.name) and has_checkpoint:
            candidates.append((child.stat().st_mtime, child.name, child))
    return max(candidates)[2] if candidates else None
