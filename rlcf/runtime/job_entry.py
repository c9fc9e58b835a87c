"""What a job submitted by ``rlcf launch`` runs on the cluster (:mod:`rlcf.runtime.jobs` builds the command)::

    python -m rlcf.runtime.job_entry --cwd DIR [--shipped NAME]... -- COMMAND...

It makes the files shipped in the job's ``working_dir`` absolute, changes to ``DIR`` and runs ``rlcf COMMAND``.
A module of its own, so that the launcher never imports the command line that imports it.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["main"]


def main(argv: Sequence[str]) -> int:
    """Run the job's rlcf command; returns its exit code."""
    argv = list(argv)
    cut = argv.index("--")
    own, command = argv[:cut], argv[cut + 1:]
    p = argparse.ArgumentParser(prog="rlcf-job")
    p.add_argument("--cwd", required=True)
    p.add_argument("--shipped", action="append", default=[])
    args = p.parse_args(own)
    here = Path.cwd()
    command = [str(here / tok) if tok in args.shipped else tok for tok in command]
    Path(args.cwd).mkdir(parents=True, exist_ok=True)
    os.chdir(args.cwd)
    from rlcf.cli import main as rlcf_main

    return rlcf_main(["--quiet", *command])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
