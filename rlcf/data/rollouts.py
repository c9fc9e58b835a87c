"""The rollout dataset: prompt rows in (a registered task or a dataset with a ``prompt`` column), scored completion
rows out, stored as ``rollouts.parquet`` plus ``meta.json`` in a folder that appears only when complete.
:mod:`rlcf.runtime.rollouts` generates it."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from rlcf.errors import CorruptDatasetError, UsageError

__all__ = ["META_FILE", "ROLLOUT_FILE", "load_rollouts", "prompt_rows", "write_rollouts"]

ROLLOUT_FILE, META_FILE = "rollouts.parquet", "meta.json"


def prompt_rows(task: str | None = None, data: str | None = None, *, split: str = "eval", docs: int = 32,
                seed: int = 0, data_split: str = "train") -> list[dict[str, Any]]:
    """Prompt rows with a ``prompt_id``: from a task of :data:`rlcf.registry.tasks` (``grounded_qa``,
    ``grounded_pairs``, or a plug-in's) or from a
    dataset (hub id or local folder/file, read with ``datasets.load_dataset``; it needs a ``prompt`` column)."""
    if (task is None) == (data is None):
        raise UsageError("give exactly one prompt source: --task NAME (embedded) or --data PATH_OR_HUB_ID")
    if task is not None:
        from rlcf.registry import tasks

        rows = tasks.get(task)(split, docs, seed=seed)  # an unknown name lists the registered tasks
    else:
        import datasets

        path = Path(str(data))
        if path.suffix in (".parquet", ".json", ".jsonl", ".csv"):
            fmt = {".jsonl": "json"}.get(path.suffix, path.suffix[1:])
            ds = datasets.load_dataset(fmt, data_files=str(path), split="train")
        else:
            ds = datasets.load_dataset(str(data), split=data_split)
        if "prompt" not in ds.column_names:
            raise UsageError(f"dataset {data!r} has no 'prompt' column (columns: {', '.join(ds.column_names)})")
        rows = [dict(r) for r in ds]
    out = []
    for i, row in enumerate(rows):
        row = {k: v for k, v in row.items() if k != "image"}
        row.setdefault("prompt_id", i)
        if not isinstance(row["prompt"], str):
            raise UsageError(f"row {i}: rollouts take text prompts; 'prompt' is a {type(row['prompt']).__name__}")
        out.append(row)
    ids = [r["prompt_id"] for r in out]
    if len(set(ids)) != len(ids):
        raise UsageError("prompt_id values must be unique in the prompt dataset")
    return out


def write_rollouts(rows: list[dict[str, Any]], out: Path, meta: dict[str, Any], overwrite: bool = False) -> Path:
    """Write rows as parquet plus meta.json into a temporary sibling folder, then move it into place."""
    import datasets

    datasets.disable_progress_bars()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        try:
            ds = datasets.Dataset.from_list(rows)
        except Exception as exc:  # mixed column types across rows, unsupported objects
            raise UsageError(f"rollout rows cannot be stored as a table ({exc}); check the prompt dataset's extra columns") from exc
        ds.to_parquet(str(tmp / ROLLOUT_FILE))
        (tmp / META_FILE).write_text(json.dumps(meta, indent=2, default=str))
        if out.exists():
            if not overwrite:
                raise UsageError(f"'{out}' exists; pass overwrite=True to replace it")
            shutil.rmtree(out)
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def load_rollouts(path: str | os.PathLike[str]) -> Any:
    """The rollout dataset at ``path`` as a ``datasets.Dataset``; refused if incomplete or inconsistent."""
    import datasets

    path = Path(path)
    if not (path / META_FILE).is_file() or not (path / ROLLOUT_FILE).is_file():
        raise CorruptDatasetError(f"'{path}' is not a complete rollout dataset (it needs {ROLLOUT_FILE} and {META_FILE})")
    meta = json.loads((path / META_FILE).read_text())
    try:
        ds = datasets.Dataset.from_parquet(str(path / ROLLOUT_FILE))
    except Exception as exc:
        raise CorruptDatasetError(f"'{path / ROLLOUT_FILE}' cannot be read: {exc}") from exc
    if len(ds) != meta.get("rows"):
        raise CorruptDatasetError(f"'{path}' has {len(ds)} rows but its meta.json says {meta.get('rows')}")
    keys = list(zip(ds["prompt_id"], ds["group_index"]))
    if len(set(keys)) != len(keys):
        raise CorruptDatasetError(f"'{path}' has duplicate (prompt_id, group_index) rows")
    return ds
