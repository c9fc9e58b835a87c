"""Atomic writes: a file or folder appears under its final name complete, or not at all.

Everything rlcf persists (resolved configs, checkpoints, datasets, result JSON) goes through here. The recipe
is the usual one: write to a hidden temporary sibling in the same folder (so the rename stays on one file
system), flush and ``fsync`` it, ``os.replace`` it onto the final name, then ``fsync`` the folder so the rename
itself survives a power cut. A crash at any point leaves the previous version intact and at most a
``.tmp-*`` sibling behind, which readers ignore and :func:`clean_temporaries` removes.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

TMP_PREFIX = ".tmp-"

__all__ = ["TMP_PREFIX", "atomic_dir", "atomic_save", "atomic_write", "atomic_write_text", "clean_temporaries"]


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # some platforms cannot open folders; the rename is still atomic there
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _temporary_sibling(path: Path) -> Path:
    return path.with_name(f"{TMP_PREFIX}{path.name}-{uuid.uuid4().hex[:8]}")


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary sibling of ``path`` for writing; on success it replaces ``path`` atomically.

    On an exception the temporary file is removed and ``path`` keeps its previous content.
    """
    if "w" not in mode:
        raise ValueError(f"atomic_write needs a write mode, got {mode!r}")
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary_sibling(final)
    try:
        with open(tmp, mode) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    _fsync_dir(final.parent)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_write(path, "w") as fh:
        fh.write(text)


def atomic_save(obj: Any, path: str | os.PathLike[str], save: Callable[[Any, IO[bytes]], None] | None = None) -> None:
    """Serialize ``obj`` to ``path`` atomically; ``save(obj, fh)`` defaults to ``torch.save``."""
    if save is None:
        import torch

        save = torch.save
    with atomic_write(path, "wb") as fh:
        save(obj, fh)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike[str], *, overwrite: bool = False) -> Iterator[Path]:
    """Build a folder in a temporary sibling; it is renamed to ``path`` only if the block succeeds.

    Args:
        path: the final folder.
        overwrite: replace an existing folder (the old one is removed only after the new one is complete).

    Raises:
        FileExistsError: ``path`` exists and ``overwrite`` is false.
    """
    final = Path(path)
    if final.exists() and not overwrite:
        raise FileExistsError(f"'{final}' already exists; remove it or pass overwrite=True")
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary_sibling(final)
    tmp.mkdir()
    try:
        yield tmp
        if final.exists():
            old = _temporary_sibling(final)
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _fsync_dir(final.parent)


def clean_temporaries(folder: str | os.PathLike[str]) -> list[Path]:
    """Remove ``.tmp-*`` leftovers of interrupted atomic writes in ``folder``; returns what was removed."""
    removed = []
    root = Path(folder)
    if not root.is_dir():
        return removed
    for child in root.iterdir():
        if child.name.startswith(TMP_PREFIX):
            if child.is_dir():
                shutil.rmtree(child, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    child.unlink()
            removed.append(child)
    return removed
