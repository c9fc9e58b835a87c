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

    @contextmanager
    def phase(self, label: str) -> Iterator[None]:
        """Say what the work is doing while the count stands still (``compiling…``, ``final evaluation…``).

        The bar shows ``label`` in place of the bar until the block ends; off a terminal it is one log line.
        """
        if self._bar is None:
            log.info("%s: %s (%d/%d)", self.description, label, self.completed, self.total)
            yield
            return
        self._bar.update(self._task, phase=label)
        self._bar.refresh()
        try:
            yield
        finally:
            self._bar.update(self._task, phase="")


def _short(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


_BAR_WIDTH = 17  # also the room for a phase label shown in its place ("final evaluation…" is 17)
_RATE_WIDTH = 9  # "12345/s", "123.4/s", "?/s"
_TIMES_WIDTH = 15  # elapsed<remaining, "0:01:23<0:12:34"


def _bar_columns(total: int, width: int) -> tuple[Any, ...]:
    """The bar's columns for a console ``width`` wide: description, bar (or phase), count, rate, times, fields.

    The count, rate and times have fixed widths and are never cut; the description gets what is left and ends in
    "…" when it does not fit; the fields (losses) get the rest of the line and are cut first.
    """
    from rich.progress import BarColumn, ProgressColumn
    from rich.table import Column
    from rich.text import Text

    bar_width = _BAR_WIDTH if width < 100 else 2 * _BAR_WIDTH
    count_width = 2 * len(str(total)) + 1
    fixed = bar_width + count_width + _RATE_WIDTH + _TIMES_WIDTH + 5  # 5: one space between each of six columns

    class Description(ProgressColumn):
        def render(self, task: Any) -> Text:
            return Text(task.description, style="bold", no_wrap=True, overflow="ellipsis")

    class BarOrPhase(BarColumn):
        def render(self, task: Any) -> Any:
            if task.fields.get("phase"):
                return Text(task.fields["phase"], style="yellow", no_wrap=True, overflow="ellipsis")
            return super().render(task)

    class Count(ProgressColumn):
        def render(self, task: Any) -> Text:
            return Text(f"{int(task.completed)}/{task.total:.0f}", style="green")

    class Rate(ProgressColumn):
        def render(self, task: Any) -> Text:
            speed = task.finished_speed or task.speed
            if speed is None:
                return Text("?/s", style="dim")
            return Text(f"{speed:.0f}/s" if speed >= 100 else f"{speed:.3g}/s", style="red")

    class Times(ProgressColumn):
        max_refresh = 0.5

        def render(self, task: Any) -> Text:
            elapsed = _clock(task.finished_time if task.finished else task.elapsed)
            remaining = _clock(task.time_remaining) if not task.finished else _clock(0)
            return Text(f"{elapsed}<{remaining}", style="cyan")

    class Fields(ProgressColumn):
        def render(self, task: Any) -> Text:
            return Text(task.fields.get("info", ""), no_wrap=True, overflow="ellipsis")

    return (
        Description(table_column=Column(no_wrap=True, overflow="ellipsis", max_width=max(8, width - fixed - 1))),
        BarOrPhase(bar_width=bar_width, table_column=Column(no_wrap=True, width=bar_width)),
        Count(table_column=Column(no_wrap=True, justify="right", width=count_width)),
        Rate(table_column=Column(no_wrap=True, justify="right", width=_RATE_WIDTH)),
        Times(table_column=Column(no_wrap=True, width=_TIMES_WIDTH)),
        Fields(table_column=Column(no_wrap=False)),  # the one column that may shrink to nothing
    )


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "-:--:--"
    s = int(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


@contextmanager
def progress(description: str, total: int, initial: int = 0) -> Iterator[_Tracker]:
    """A progress bar over ``total`` units starting at ``initial`` (a resumed run starts part-way)."""
    if _quiet or not sys.stderr.isatty():
        yield _Tracker(description, total, initial)
        return
    from rich.console import Console
    from rich.progress import Progress

    console = Console(file=sys.stderr)
    with Progress(*_bar_columns(total, console.width), console=console, transient=False) as bar:
        task = bar.add_task(description, total=total, completed=initial, info="", phase="")
        yield _Tracker(description, total, initial, bar, task)
