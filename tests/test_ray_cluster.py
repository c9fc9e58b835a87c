"""`rlcf launch` and `rlcf jobs` against a real Ray cluster: `ray start --head` on loopback (dashboard on
127.0.0.1, token auth disabled), jobs submitted over HTTP exactly as on a remote cluster, `ray stop` at the end
even when a test fails."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.ray, pytest.mark.slow]

BIN = Path(sys.executable).parent
RLCF = [sys.executable, "-m", "rlcf.cli"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _own_ports() -> list[str]:
    """Ports a second cluster on the same machine would otherwise share with the first (its job agent's among them)."""
    return [f"--dashboard-agent-listen-port={_free_port()}", f"--ray-client-server-port={_free_port()}"]


@contextlib.contextmanager
def head_node(work: Path, cpus: int, **env_overrides: str):
    """`ray start --head` on loopback with its own ports; `ray stop` afterwards, even when a test failed."""
    import ray

    if ray.is_initialized():  # `ray stop` below ends every Ray instance on the machine, this process's too
        ray.shutdown()
    env = {**os.environ, "MINARI_DATASETS_PATH": str(work / "minari"), "RLCF_CACHE": str(work / "cache"), **env_overrides}
    port, dash = _free_port(), _free_port()
    start = [str(BIN / "ray"), "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}",
             "--dashboard-host=127.0.0.1", f"--dashboard-port={dash}", "--include-dashboard=true", *_own_ports(),
             f"--num-cpus={cpus}", "--disable-usage-stats"]
    try:
        started = subprocess.run(start, env=env, capture_output=True, text=True, timeout=120)
        assert started.returncode == 0, started.stdout + started.stderr
        yield {"address": f"http://127.0.0.1:{dash}", "env": env, "work": work}
    finally:
        subprocess.run([str(BIN / "ray"), "stop", "--force"], env=env, capture_output=True, timeout=120)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with head_node(tmp_path_factory.mktemp("cluster"), 2, RAY_AUTH_MODE="disabled") as c:
        yield c


def rlcf(cluster, *args, timeout=300):
    proc = subprocess.run([*RLCF, *args], env=cluster["env"], cwd=cluster["work"], capture_output=True, text=True,
                          timeout=timeout)
    return proc.returncode, proc.stdout, proc.stderr


def jobs(cluster) -> list[dict]:
    code, out, err = rlcf(cluster, "jobs", "list", "--json", "--address", cluster["address"])
    assert code == 0, err
    return json.loads(out)


def test_launch_collect_then_train_into_the_cluster(cluster):
    a = cluster["address"]
    code, out, err = rlcf(cluster, "launch", "collect", "mpe-simple_spread", "--tier", "random", "--episodes", "12",
                          "--actors", "2", "--no-references", "--address", a)
    assert code == 0, err[-3000:]
    assert '"status": "SUCCEEDED"' in err
    dataset = cluster["work"] / "minari" / "rlcf" / "mpe-simple_spread" / "random-v0"
    assert (dataset / "data").is_dir(), "the job wrote its dataset where the driver pointed MINARI_DATASETS_PATH"
    # The job's own output came back in the stream.
    assert json.loads([line for line in out.splitlines() if line.startswith("{")][-1])["episodes"] == 12

    yaml = cluster["work"] / "launched.yaml"  # no run.name: the run is named after the file, as `rlcf train` does
    yaml.write_text("algo: cfcql\nrun: {total_steps: 20, log_every: 10, checkpoint_every: 10}\n"
                    "config: {dataset: rlcf/mpe-simple_spread/random-v0, eval_episodes: 2, batch_size: 32}\n")
    code, out, err = rlcf(cluster, "launch", str(yaml), "run.seed=3", "--address", a)
    assert code == 0, err[-3000:]
    (run,) = (cluster["work"] / "runs" / "cfcql").glob("launched-*")
    assert (run / "checkpoints").is_dir() and any((run / "checkpoints").iterdir())
    assert "seed: 3" in (run / "config.yaml").read_text()  # the override travelled with the shipped config
    listed = {j["job_id"]: j for j in jobs(cluster)}
    assert sum(j["status"] == "SUCCEEDED" for j in listed.values()) >= 2


def test_failures_are_exit_codes_and_jobs_can_be_stopped(cluster):
    a = cluster["address"]
    before = len(jobs(cluster))
    code, _, err = rlcf(cluster, "launch", "cfcql", "config.nope=1", "--address", a)
    assert code == 2 and "config.nope" in err
    assert len(jobs(cluster)) == before, "a bad config is refused before anything is submitted"

    code, out, err = rlcf(cluster, "launch", "show", "rlcf/nope/none-v0", "--address", a)
    assert code == 2, "the job's own rlcf exit code comes back"
    assert '"status": "FAILED"' in err and "no dataset 'rlcf/nope/none-v0'" in out  # the job's log stream
    failed = json.loads(next(line for line in err.splitlines() if line.startswith('{"job_id"')))["job_id"]
    code, out, err = rlcf(cluster, "jobs", "logs", failed, "--follow", "--address", a)
    assert code == 2, "following an ended job exits with its status, as following it while it runs does"
    assert "no dataset 'rlcf/nope/none-v0'" in out and f"job {failed} ended FAILED (exit code 2)" in err

    code, out, err = rlcf(cluster, "launch", "--no-wait", "collect", "mpe-simple_spread", "--tier", "random",
                          "--episodes", "5000", "--no-references", "--dataset-id", "rlcf/mpe-simple_spread/long-v0",
                          "--address", a)
    assert code == 0, err
    job_id = out.strip().splitlines()[-1]
    deadline = time.time() + 120
    while json.loads(rlcf(cluster, "jobs", "status", job_id, "--address", a)[1])["status"] != "RUNNING":
        assert time.time() < deadline, "the job never started"
        time.sleep(1)
    code, out, _ = rlcf(cluster, "jobs", "stop", job_id, "--address", a)
    assert code == 0 and json.loads(out)["stop_requested"]
    deadline = time.time() + 60
    while (status := json.loads(rlcf(cluster, "jobs", "status", job_id, "--address", a)[1])["status"]) != "STOPPED":
        assert time.time() < deadline, status
        time.sleep(1)
    assert not (cluster["work"] / "minari" / "rlcf" / "mpe-simple_spread" / "long-v0").exists(), \
        "a stopped collection leaves no half-written dataset under its final id"
    code, out, _ = rlcf(cluster, "jobs", "logs", job_id, "--address", a)
    assert code == 0
    code, out, err = rlcf(cluster, "jobs", "logs", job_id, "--follow", "--address", a)
    assert code == 130 and f"job {job_id} ended STOPPED" in err


def test_unreachable_cluster_is_a_clear_usage_error(cluster):
    code, _, err = rlcf(cluster, "launch", "collect", "mpe-simple_spread", "--address", f"http://127.0.0.1:{_free_port()}")
    assert code == 2 and "cannot reach the Ray job server" in err
    code, _, err = rlcf(cluster, "jobs", "status", "raysubmit_nope", "--address", cluster["address"])
    assert code == 2 and "no job 'raysubmit_nope'" in err


@pytest.fixture(scope="module")
def token_cluster(tmp_path_factory):
    import secrets

    work = tmp_path_factory.mktemp("token_cluster")
    # HOME points at an empty folder so that no ~/.ray/auth_token of the machine can stand in for the token.
    with head_node(work, 1, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(32), HOME=str(work)) as c:
        yield c


def test_token_auth_cluster_takes_the_token_the_standard_way(token_cluster):
    a = token_cluster["address"]
    code, out, err = rlcf(token_cluster, "launch", "list", "algos", "--address", a)
    assert code == 0, err[-2000:]
    assert "cfcql" in out
    no_token = {**token_cluster, "env": {k: v for k, v in token_cluster["env"].items() if k != "RAY_AUTH_TOKEN"}}
    code, _, err = rlcf(no_token, "launch", "list", "algos", "--address", a)
    assert code == 2 and "token" in err
    (token_cluster["work"] / ".ray").mkdir()
    (token_cluster["work"] / ".ray" / "auth_token").write_text(token_cluster["env"]["RAY_AUTH_TOKEN"])
    code, out, err = rlcf(no_token, "jobs", "list", "--json", "--address", a)  # the token file works as well
    assert code == 0 and json.loads(out)[0]["status"] == "SUCCEEDED", err
