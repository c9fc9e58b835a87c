"""What datasets are on this machine (Minari's local store, ``MINARI_DATASETS_PATH``)."""

from __future__ import annotations

import os
from pathlib import Path

from rlcf.errors import UsageError


def datasets_root() -> Path:
    """Minari's local dataset folder: ``$MINARI_DATASETS_PATH`` or ``~/.minari/datasets``."""
    return Path(os.environ.get("MINARI_DATASETS_PATH") or Path.home() / ".minari" / "datasets")


def local_datasets() -> list[tuple[str, int, int, str]]:
    """``(id, episodes, steps, path)`` for every Minari dataset stored locally, sorted by id."""
    try:
        import minari
    except ImportError as exc:
        raise UsageError("listing datasets needs minari: pip install 'rlcf[marl]'") from exc
    root = datasets_root()
    rows = []
    for dataset_id, meta in sorted(minari.list_local_datasets().items()):
        rows.append(
            (dataset_id, int(meta.get("total_episodes", 0)), int(meta.get("total_steps", 0)), str(root / dataset_id))
        )
    return rows
