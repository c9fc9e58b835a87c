"""Every experiment under configs/ resolves: known algorithm, known keys, valid values."""

from __future__ import annotations

from pathlib import Path

import pytest

from rlcf.config import load_experiment

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").rglob("*.yaml"))


def test_there_are_configs():
    assert CONFIGS


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_config_resolves(path):
    exp = load_experiment(path)
    assert exp.algo == path.parent.name or exp.algo.startswith(path.parent.name + "-")  # configs/dna/ holds dna-train
    assert exp.run.name == path.stem
    if hasattr(exp.config, "dataset"):  # offline-MARL experiments name an rlcf dataset
        assert exp.config.dataset.startswith("rlcf/")
