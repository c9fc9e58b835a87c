"""rlcf.runtime.threads: each process's torch threads from its CPU share; an explicit value wins."""

from __future__ import annotations

import os
import sys

import pytest
import torch

from rlcf.errors import ConfigError, UsageError
from rlcf.runtime.threads import ThreadShare, ray_assigned_cpus, set_torch_threads, thread_share, usable_cpus


@pytest.fixture
def keep_torch_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.fixture
def eight_cpus(monkeypatch):
    """A process allowed on 8 CPUs, with no OMP_NUM_THREADS."""
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)), raising=False)


def test_affinity_share_divided_among_known_workers(eight_cpus):
    assert usable_cpus() == 8
    assert thread_share() == ThreadShare(8, "affinity")
    assert thread_share(workers=3) == ThreadShare(2, "affinity")  # rounded down
    assert thread_share(workers=16) == ThreadShare(1, "affinity")  # never below one


def test_omp_num_threads_is_respected_and_explicit_wins(eight_cpus, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert thread_share() == ThreadShare(3, "OMP_NUM_THREADS")
    assert thread_share(workers=4) == ThreadShare(3, "OMP_NUM_THREADS")
    assert thread_share(2) == ThreadShare(2, "explicit")
    assert thread_share(0) == ThreadShare(3, "OMP_NUM_THREADS")  # 0: "decide from the share"
    for unusable in ("", "zero", "0", "-2"):
        monkeypatch.setenv("OMP_NUM_THREADS", unusable)
        assert thread_share() == ThreadShare(8, "affinity"), unusable


def test_bad_arguments_are_refused():
    with pytest.raises(UsageError, match="threads must be >= 0"):
        thread_share(-1)
    with pytest.raises(UsageError, match="workers must be >= 1"):
        thread_share(workers=0)


def test_set_torch_threads_sets_torch_and_can_stay_light(eight_cpus, monkeypatch, keep_torch_threads):
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert set_torch_threads() == ThreadShare(2, "OMP_NUM_THREADS")
    assert torch.get_num_threads() == 2
    assert set_torch_threads(1).threads == 1 and torch.get_num_threads() == 1
    # A process that has not imported torch is left alone with load_torch=False.
    monkeypatch.delitem(sys.modules, "torch")
    assert set_torch_threads(3, load_torch=False) == ThreadShare(3, "explicit")
    assert "torch" not in sys.modules


def test_a_driver_is_not_a_ray_worker():
    assert ray_assigned_cpus() is None  # Ray not started (or this is its driver)


def test_run_threads_wins_in_the_training_loop(tmp_path, monkeypatch, keep_torch_threads):
    from rlcf.algorithm import train

    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    common = [f"run.out_dir={tmp_path}", "run.total_steps=2", "run.tensorboard=false", "run.log_every=1"]
    torch.set_num_threads(2)
    train(None, [*common, "run.threads=1"], algo="toy_plugin:ToyRegression")
    assert torch.get_num_threads() == 1
    train(None, common, algo="toy_plugin:ToyRegression")
    assert torch.get_num_threads() == 2  # run.threads=0: OMP_NUM_THREADS
    with pytest.raises(ConfigError, match="threads"):
        train(None, [*common, "run.threads=-1"], algo="toy_plugin:ToyRegression")


@pytest.mark.ray
def test_ray_workers_get_the_cpus_ray_assigned():
    import ray

    from rlcf.runtime.cluster import ensure_ray

    started = ensure_ray(num_cpus=2)
    try:

        def probe(explicit=None, drop_omp=False):
            if drop_omp:  # isolate rule 3 from the OMP_NUM_THREADS Ray (or the test's environment) set
                os.environ.pop("OMP_NUM_THREADS", None)
            share = set_torch_threads(explicit)
            return share, torch.get_num_threads(), ray_assigned_cpus()

        @ray.remote(num_cpus=1)
        class OneCpu:
            def probe(self, explicit=None, drop_omp=False):
                return probe(explicit, drop_omp)

        @ray.remote(num_cpus=2)
        def two_cpus(drop_omp):
            return probe(None, drop_omp)

        @ray.remote(num_cpus=1)
        def one_cpu():
            return probe(None, True)

        actor = OneCpu.remote()
        share, threads, assigned = ray.get(actor.probe.remote())
        assert (share.threads, threads, assigned) == (1, 1, 1.0)
        assert ray.get(actor.probe.remote(drop_omp=True))[0] == ThreadShare(1, "ray")
        assert ray.get(actor.probe.remote(explicit=2))[:2] == (ThreadShare(2, "explicit"), 2)  # explicit wins
        ray.kill(actor)
        assert ray.get(two_cpus.remote(True))[:2] == (ThreadShare(2, "ray"), 2)
        # A pooled worker that imported torch for a 2-CPU task keeps 2 threads unless the helper runs again.
        ray.get(two_cpus.remote(True))
        assert ray.get([one_cpu.remote() for _ in range(2)]) == [(ThreadShare(1, "ray"), 1, 1.0)] * 2
    finally:
        if started:
            ray.shutdown()
