"""Packaging: envs/, algos/, reward_fns/ ship as rlcf.envs, rlcf.algos, rlcf.reward_fns, never top-level."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (path,) = out.glob("rlcf-*.whl")
    return path


def test_wheel_maps_the_top_level_folders_under_rlcf(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    for module in ("rlcf/__init__.py", "rlcf/envs/__init__.py", "rlcf/algos/__init__.py", "rlcf/reward_fns/protocol.py",
                   "rlcf/data/marl.py", "rlcf/eval/runner.py", "rlcf/runtime/pool.py", "rlcf/envs/marl/mpe.py",
                   "rlcf/envs/behaviour/trained.py", "rlcf/envs/text/grounded_qa.py", "rlcf/envs/vision/grounded_images.py",
                   "rlcf/envs/behaviour/snapshots/mpe-simple_spread-force.npz"):
        assert module in names, f"{module} missing from {wheel.name}"
    top_level = {n.split("/")[0] for n in names if not n.split("/")[0].endswith((".dist-info", ".data"))}
    assert top_level == {"rlcf"}, f"the wheel must install only the rlcf namespace, found {top_level}"
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "rlcf = rlcf.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


def test_installed_wheel_imports_the_mapped_subpackages(wheel, tmp_path):
    """Install the wheel alone into a folder and import from there, away from the source tree."""
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
    )
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import rlcf.envs, rlcf.algos, rlcf.reward_fns, rlcf.cli; "
        "print(rlcf.envs.__file__); print(rlcf.reward_fns.RewardFn.__module__)"
    )
    out = subprocess.run(
        [sys.executable, "-I", "-c", code, str(target)], capture_output=True, text=True, check=False, cwd=tmp_path
    )
    # -I isolates from the editable install and the source tree; yaml etc. come from the venv's site-packages
    if out.returncode != 0 and "No module named 'yaml'" in out.stderr:
        pytest.skip("isolated interpreter cannot see the venv's site-packages")
    assert out.returncode == 0, out.stderr
    envs_file, protocol_module = out.stdout.split()
    assert Path(envs_file).is_relative_to(target)
    assert protocol_module == "rlcf.reward_fns.protocol"


def _import_graph(folder: Path, package: str) -> dict[str, set[str]]:
    """``{module: rlcf modules it imports}`` of the ``.py`` files under ``folder``, function-level imports included."""
    import ast

    modules = {}
    for path in folder.rglob("*.py"):
        parts = [p for p in path.relative_to(folder).with_suffix("").parts if p != "__init__"]
        modules[".".join([package, *parts])] = path
    graph = {}
    for name, path in modules.items():
        imported = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                imported |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
        graph[name] = {m for m in imported if m in modules and m != name}
    return graph


def test_rlcf_core_modules_import_no_cycle():
    """STYLE 14: shared helpers live in a module of their own, so no two core modules import each other, even
    inside functions (a cycle there still ties their load order and their tests together)."""
    graph = _import_graph(ROOT / "rlcf", "rlcf")

    def cycle_from(start: str) -> list[str] | None:
        path, seen = [start], set()

        def walk(node: str) -> list[str] | None:
            for nxt in sorted(graph[node]):
                if nxt == start:
                    return [*path, start]
                if nxt not in seen:
                    seen.add(nxt)
                    path.append(nxt)
                    found = walk(nxt)
                    if found:
                        return found
                    path.pop()
            return None

        return walk(start)

    cycles = [c for c in (cycle_from(m) for m in sorted(graph)) if c]
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)
