"""Progress bars for long work (rich), or plain log lines when quiet or not on a terminal.

``--quiet`` on the command line (or ``RLCF_QUIET=1``) turns bars off; progress then goes to the ``rlcf``
logger every ``log_fraction`` of the total, which is what batch jobs and CI logs want.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

log = logging.getLogger("rlcf")

_quiet = os.environ.get("RLCF_QUIET", "") not in ("", "0", "false")


def set_quiet(quiet: bool) -> None:
    """Turn progress bars off (``True``) or on."""
    global _quiet
    _quiet = quiet


def is_quiet() -> bool:
    return _quiet


class _Tracker:
    def __init__(self, description: str, total: int, initial: int, bar: Any = None, task: Any = None):
        self.description, self.total, self.completed = description, total, initial
        self._bar, self._task = bar, task
        self._start, self._start_count = time.monotonic(), initial
        self._next_log = initial
        self._stride = max(1, total // 10)
        self.fields: dict[str, Any] = {}

    def advance(self, n: int = 1, **fields: Any) -> None:
        """Move forward ``n`` units; ``fields`` (e.g. ``loss=0.3``) are shown beside the bar."""
        self.completed += n
        self.fields.update(fields)
        if self._bar is not None:
            shown = " ".join(f"{k}={_short(v)}" for k, v in self.fields.items())
            self._bar.update(self._task, completed=self.completed, info=shown)
        elif self.completed >= self._next_log or self.completed >= self.total:
            self._next_log = self.completed + self._stride
            rate = (self.completed - self._start_count) / max(time.monotonic() - self._start, 1e-9)
            shown = " ".join(f"{k}={_short(v)}" for k, v in self.fields.items())
            log.info("%s: %d/%d (%.1f/s) %s", self.description, self.completed, self.total, rate, shown)


def _short(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


@contextmanager
def progress(description: str, total: int, initial: int = 0) -> Iterator[_Tracker]:
    """A progress bar over ``total`` units starting at ``initial`` (a resumed run starts part-way)."""
    if _quiet or not sys.stderr.isatty():
        yield _Tracker(description, total, initial)
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[info]}"),
    )
    with Progress(*columns, transient=False) as bar:
        task = bar.add_task(description, total=total, completed=initial, info="")
        yield _Tracker(description, total, initial, bar, task)
