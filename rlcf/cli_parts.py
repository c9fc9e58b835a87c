"""The command line's building blocks that ``rlcf.cli`` and ``rlcf launch`` / ``rlcf jobs``
(:mod:`rlcf.runtime.jobs`) share: a parser whose errors are usage errors, the train/config positional, tables, and
:class:`CliCommand`, the subcommand plug-ins register in :data:`rlcf.registry.commands`.

They live here so that the CLI and the job launcher import them from one place, never from each other.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rlcf.errors import UsageError

__all__ = ["CliCommand", "CommandParser", "experiment_source", "print_table"]


class CommandParser(argparse.ArgumentParser):
    """argparse that raises instead of exiting, so every usage error takes the same path (exit code 2)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message} (see '{self.prog} --help')")


@dataclass(frozen=True)
class CliCommand:
    """An ``rlcf`` subcommand a plug-in provides; register it under its name in :data:`rlcf.registry.commands`.

    Attributes:
        add_parser: ``fn(subparsers) -> ArgumentParser``: adds the subcommand, under the registered name, to the
            object ``ArgumentParser.add_subparsers()`` returned.
        run: ``fn(args) -> int``: runs it on the parsed arguments and returns the exit code (a
            :class:`~rlcf.errors.UsageError` it raises exits with 2, like every rlcf command).
    """

    add_parser: Callable[[Any], argparse.ArgumentParser]
    run: Callable[[argparse.Namespace], int]


def experiment_source(arg: str) -> tuple[str | None, str | None]:
    """``(yaml path, algo name)`` from the positional argument of ``rlcf train`` / ``rlcf config``."""
    if arg.endswith((".yaml", ".yml")) or Path(arg).is_file():
        return arg, None
    return None, arg


def print_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Print ``rows`` under ``columns`` as a rich table on stdout.

    On a terminal, long cells wrap to the window's width. Piped to a file or another program, every row stays on
    one line at its full width, so run ids and paths come out whole for ``grep``, ``cut`` and diffs.
    """
    import sys

    from rich.console import Console
    from rich.measure import Measurement
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for col in columns:
        table.add_column(col, overflow="fold")
    for row in rows:
        table.add_row(*(str(c) for c in row))
    console = Console(file=sys.stdout)
    if console.is_terminal:
        console.print(table)
        return
    width = Measurement.get(console, console.options.update_width(1 << 20), table).maximum
    wide = Console(file=sys.stdout, width=max(width, len(title)), color_system=None)
    with wide.capture() as captured:
        wide.print(table)
    sys.stdout.write("".join(line.rstrip() + "\n" for line in captured.get().splitlines()))
