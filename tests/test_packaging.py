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
                   "rlcf/data/marl.py", "rlcf/eval/runner.py", "rlcf/runtime/pool.py", "rlcf/envs/behaviours/mpe-simple_spread-force.npz"):
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
