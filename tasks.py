#!/usr/bin/env python3
"""rlcf's one entry script: set up the environment, then run the demo, the tests, or the benchmarks.

    python3 tasks.py demo      # the end-to-end quickstart on embedded defaults
    python3 tasks.py test      # the test suite (what CI runs)
    python3 tasks.py bench     # the benchmarks under bench/
    python3 tasks.py setup     # only create/update .venv
    python3 tasks.py lock      # rewrite constraints.txt from the current .venv

Needs nothing but Python 3.11+. The first run creates ``.venv`` and installs torch==2.13.0 first (exactly:
an unpinned torch would pull a multi-GB CUDA build), then rlcf with every extra, pinned by constraints.txt.
Later runs reuse ``.venv`` and reinstall only when pyproject.toml or constraints.txt changed.
Extra arguments go to the command: ``python3 tasks.py test -k registry -x``.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / ("python.exe" if os.name == "nt" else "python")
STAMP = VENV / ".rlcf-setup"
TORCH = "torch==2.13.0"
EXTRAS = "all,dev,mamujoco"


def _say(msg: str) -> None:
    print(f"[tasks] {msg}", flush=True)


def _pip(*args: str) -> None:
    """Run pip in the venv; its noise about unused local package folders is dropped."""
    cmd = [str(PY), "-m", "pip", "--disable-pip-version-check", *args]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        if not line.startswith("WARNING: Location"):
            sys.stdout.write(line)
    if proc.wait() != 0:
        sys.exit(f"[tasks] pip {' '.join(args)} failed (exit {proc.returncode})")


def _fingerprint() -> str:
    h = hashlib.sha256(TORCH.encode() + EXTRAS.encode())
    for name in ("pyproject.toml", "constraints.txt"):
        h.update((ROOT / name).read_bytes())
    return h.hexdigest()


def setup() -> None:
    """Create .venv if missing and install rlcf into it (skipped when nothing changed)."""
    if sys.version_info < (3, 11):
        sys.exit(f"[tasks] rlcf needs Python 3.11 or newer; this is {sys.version.split()[0]}")
    if not PY.exists():
        _say(f"creating {VENV}")
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    want = _fingerprint()
    if STAMP.exists() and STAMP.read_text().strip() == want:
        return
    _say(f"installing {TORCH} (first and exactly), then rlcf[{EXTRAS}] pinned by constraints.txt")
    _pip("install", "-q", TORCH)
    _pip("install", "-q", "-c", "constraints.txt", "-e", f".[{EXTRAS}]")
    STAMP.write_text(want + "\n")
    _say("environment ready")


def _run(cmd: list[str]) -> int:
    env = dict(os.environ)
    env.setdefault("HF_HUB_OFFLINE", "1")  # nothing here reaches a model hub; fail fast instead of hanging
    env.setdefault("RAY_AUTH_MODE", "disabled")  # local, loopback-only Ray in demos and tests (see STACK.md)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return subprocess.call(cmd, cwd=ROOT, env=env)


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(__doc__)
        return 0 if argv else 2
    task, rest = argv[0], argv[1:]
    if task not in ("setup", "demo", "test", "bench", "lock"):
        print(f"[tasks] unknown task '{task}'; valid tasks: setup, demo, test, bench, lock", file=sys.stderr)
        return 2
    setup()
    if task == "setup":
        return 0
    if task == "demo":
        return _run([str(BIN / "rlcf"), "demo", *rest])
    if task == "test":
        return _run([str(PY), "-m", "pytest", *rest])
    if task == "bench":
        scripts = sorted((ROOT / "bench").glob("bench_*.py"))
        return max((_run([str(PY), str(s), *rest]) for s in scripts), default=0)
    frozen = subprocess.run([str(PY), "-m", "pip", "freeze", "--all", "--exclude-editable"], capture_output=True, text=True, check=True)
    lines = [ln.replace("+cpu", "") for ln in frozen.stdout.splitlines() if ln and not ln.startswith(("rlcf", "#", "pip=="))]
    header = (ROOT / "constraints.txt").read_text().splitlines()[:2]
    (ROOT / "constraints.txt").write_text("\n".join(header + lines) + "\n")
    _say(f"wrote constraints.txt ({len(lines)} pins)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
