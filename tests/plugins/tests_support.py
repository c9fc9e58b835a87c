"""Helpers for tests that start subprocesses which must see the test plugins."""

from __future__ import annotations

import os
from pathlib import Path

PLUGINS = Path(__file__).parent


def plugin_pythonpath(*extra: Path) -> dict[str, str]:
    env = dict(os.environ)
    parts = [str(p) for p in extra] + [str(PLUGINS)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
    env["PYTHONPATH"] = os.pathsep.join(parts)
    env["RLCF_QUIET"] = "1"
    return env
