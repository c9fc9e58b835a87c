"""Shared test set-up: no hub access, loopback Ray without tokens, a throw-away Minari store, the test plugins."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

PLUGINS = Path(__file__).parent / "plugins"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
# Never let a test write into the user's ~/.minari: each session gets its own dataset store.
os.environ["MINARI_DATASETS_PATH"] = tempfile.mkdtemp(prefix="rlcf-test-minari-")
if str(PLUGINS) not in sys.path:
    sys.path.insert(0, str(PLUGINS))
# Ray workers started by the tests import the test plugins (e.g. a policy that crashes its actor) by path.
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(PLUGINS), os.environ.get("PYTHONPATH", "")) if p)

