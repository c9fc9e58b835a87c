"""``rlcf launch`` and ``rlcf jobs``: any rlcf command as a Ray job, through Ray's own job API.

``rlcf launch [options] COMMAND ...`` submits ``rlcf COMMAND ...`` (``train``, ``collect``, ``eval``, …; a YAML
file or an algorithm name alone means ``train``) with :class:`ray.job_submission.JobSubmissionClient`:

- rlcf travels as a wheel built from this source tree (cached by content) in ``runtime_env["py_modules"]``,
  so the nodes need only rlcf's dependencies, not rlcf itself — and always run the code you launched;
- the YAML files named on the command line travel in a small ``working_dir``;
- the job runs in ``--remote-cwd`` (default: the folder you launch from, which is the same folder on a
  shared filesystem or a local cluster), so relative output paths such as ``runs/`` land where you expect;
- dataset and hub settings (``MINARI_DATASETS_PATH``, ``HF_*``, ``RLCF_*``) are forwarded, plus ``--env K=V``;
- the experiment is validated before it is submitted: a bad config field fails here, not on the cluster.

Without ``--address`` (and without ``RAY_ADDRESS``) the same job goes to a Ray instance started for it on this
machine, so a command that works locally works on a cluster unchanged. Authentication is Ray's: with
``RAY_AUTH_MODE=token`` the client reads the token the standard way (``RAY_AUTH_TOKEN``,
``RAY_AUTH_TOKEN_PATH`` or ``~/.ray/auth_token``).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rlcf.errors import RlcfError, UsageError

log = logging.getLogger(__name__)

__all__ = ["LaunchSpec", "build_wheel", "launch", "parse_launch_args", "jobs_main"]

# rlcf commands a job may run (the job's own `rlcf` command line), besides those of rlcf.registry.commands.
JOB_COMMANDS = ("train", "collect", "eval", "show", "relabel", "rollout", "list", "config")
FORWARDED_ENV = ("MINARI_DATASETS_PATH", "HF_HOME", "HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")
TERMINAL = ("SUCCEEDED", "FAILED", "STOPPED")
_SHIPPED_SUFFIXES = (".yaml", ".yml", ".json")


@dataclass
class LaunchSpec:
    """What ``rlcf launch`` parsed: the job's command line and how to submit it."""

    command: list[str]
    address: str | None = None
    wait: bool = True
    submission_id: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    remote_cwd: str | None = None
    ship: str = "wheel"
    entrypoint_num_cpus: float | None = None
    entrypoint_num_gpus: float | None = None
    local_num_cpus: int | None = None
    python: str | None = None
    plugins: list[str] = field(default_factory=list)  # `rlcf --plugin`s, shipped (.py files) and loaded by the job


def _launch_parser() -> argparse.ArgumentParser:
    from rlcf.cli_parts import CommandParser

    p = CommandParser(
        prog="rlcf launch",
        description="Submit an rlcf command as a Ray job. Examples:  rlcf launch configs/cfcql/mpe_spread-medium.yaml "
        "run.seed=1 --address http://HEAD:8265  |  rlcf launch --no-wait collect mpe-simple_spread --tier expert "
        "--episodes 1000 --actors 8 --address http://HEAD:8265  |  rlcf launch eval runs/cfcql/x --address ...",
        epilog="launch's own options may stand anywhere; put them before a '--' to pass a same-named option to the job.",
    )
    p.add_argument("--address", help="Ray dashboard address http://HEAD:8265 (default: RAY_ADDRESS, else a local Ray)")
    p.add_argument("--no-wait", action="store_true", help="submit, print the job id and return")
    p.add_argument("--submission-id", help="job id to use (default: Ray's rlcf-<time>-<random>)")
    p.add_argument("--env", action="append", default=[], metavar="KEY=VALUE", help="environment variable for the job")
    p.add_argument("--remote-cwd", help="folder the job runs in (default: this folder; must exist or be creatable on the node)")
    p.add_argument("--ship", choices=("wheel", "none"), default="wheel",
                   help="wheel: ship rlcf built from this source tree; none: nodes have rlcf installed")
    p.add_argument("--entrypoint-num-cpus", type=float, help="CPUs reserved for the job's driver (default 0)")
    p.add_argument("--entrypoint-num-gpus", type=float, help="GPUs reserved for the job's driver (default: from the config)")
    p.add_argument("--num-cpus", type=int, help="CPUs of the local Ray instance used without --address")
    p.add_argument("--python", help="the node's Python that runs the job (default: this interpreter for a cluster on "
                   "this machine, else 'python' on the node's PATH)")
    return p


_OWN_WITH_VALUE = ("--address", "--submission-id", "--env", "--remote-cwd", "--ship", "--entrypoint-num-cpus",
                   "--entrypoint-num-gpus", "--num-cpus", "--python")
_OWN_FLAGS = ("--no-wait",)


def _is_registered_command(word: str) -> bool:
    """Whether ``word`` names a subcommand of :data:`rlcf.registry.commands` (``train-behaviour``, a plug-in's)."""
    from rlcf.registry import commands

    return not word.startswith("-") and ":" not in word and not word.endswith((".yaml", ".yml")) and word in commands


def parse_launch_args(tokens: Sequence[str]) -> LaunchSpec:
    """Split ``rlcf launch``'s own options from the job's command line (see the module docstring)."""
    tokens = list(tokens)
    if "--" in tokens:
        cut = tokens.index("--")
        own, command = tokens[:cut], tokens[cut + 1:]
    else:
        own, command = [], []
        i = 0
        while i < len(tokens):
            tok = tokens[i]
            name = tok.split("=", 1)[0]
            if tok in ("-h", "--help") and not command:
                own.append(tok)
            elif name in _OWN_WITH_VALUE:
                own.append(tok)
                if "=" not in tok:
                    if i + 1 >= len(tokens):
                        raise UsageError(f"rlcf launch: {tok} needs a value")
                    own.append(tokens[i + 1])
                    i += 1
            elif tok in _OWN_FLAGS:
                own.append(tok)
            else:
                command.append(tok)
            i += 1
    args = _launch_parser().parse_args(own)
    if not command:
        raise UsageError("rlcf launch: no command to run; e.g. 'rlcf launch configs/cfcql/mpe_spread-medium.yaml' "
                         "or 'rlcf launch collect mpe-simple_spread --episodes 100'")
    if command[0] not in JOB_COMMANDS and not _is_registered_command(command[0]):
        if command[0].startswith("-"):
            raise UsageError(f"rlcf launch: unknown option {command[0]!r} before the command (see 'rlcf launch --help')")
        command = ["train", *command]  # a YAML file or an algorithm name: train it
    env = {}
    for item in args.env:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"rlcf launch: --env takes KEY=VALUE, got {item!r}")
        env[key] = value
    address = args.address or os.environ.get("RAY_ADDRESS") or None
    if address and not re.match(r"^(https?|ray)://", address):
        if re.match(r"^[\w.\-]+:\d+$", address):
            address = f"http://{address}"
        else:
            raise UsageError(f"rlcf launch: --address must look like http://HEAD:8265, got {address!r}")
    if address and address.startswith("ray://"):
        raise UsageError("rlcf launch: jobs go to the dashboard address (http://HEAD:8265), not a ray:// client address")
    spec = LaunchSpec(
        command=command, address=address, wait=not args.no_wait, submission_id=args.submission_id, env=env,
        remote_cwd=args.remote_cwd, ship=args.ship, entrypoint_num_cpus=args.entrypoint_num_cpus,
        entrypoint_num_gpus=args.entrypoint_num_gpus, local_num_cpus=args.num_cpus, python=args.python,
    )
    if not spec.wait and not spec.address:
        raise UsageError("rlcf launch: --no-wait needs --address (the local Ray instance ends with this command)")
    return spec


# -- shipping rlcf ----------------------------------------------------------------------------------------------


def source_root() -> Path | None:
    """The source tree rlcf runs from (an editable or in-place checkout), or None for an installed wheel."""
    import rlcf

    root = Path(rlcf.__file__).resolve().parent.parent
    return root if (root / "pyproject.toml").is_file() and (root / "algos").is_dir() else None


def _tree_hash(root: Path) -> str:
    h = hashlib.sha256()
    for folder in ("rlcf", "envs", "algos", "reward_fns"):
        for path in sorted((root / folder).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix in (".py", ".typed"):
                h.update(str(path.relative_to(root)).encode())
                h.update(path.read_bytes())
    h.update((root / "pyproject.toml").read_bytes())
    return h.hexdigest()[:16]


def build_wheel(cache_dir: str | Path | None = None) -> Path:
    """Build rlcf's wheel from its source tree, or reuse the cached one built from identical sources.

    Raises:
        UsageError: rlcf is not running from a source tree, or the build fails.
    """
    root = source_root()
    if root is None:
        raise UsageError(
            "rlcf launch --ship wheel builds rlcf from its source tree, but this rlcf is an installed package; "
            "install rlcf on every node and pass --ship none"
        )
    cache = Path(cache_dir or os.environ.get("RLCF_CACHE", Path.home() / ".cache" / "rlcf")) / "wheels" / _tree_hash(root)
    found = sorted(cache.glob("rlcf-*.whl")) if cache.is_dir() else []
    if found:
        return found[0]
    tmp = Path(tempfile.mkdtemp(prefix="rlcf-wheel-"))
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp), str(root)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wheels = sorted(tmp.glob("rlcf-*.whl"))
    if proc.returncode != 0 or not wheels:
        raise UsageError(
            f"building rlcf's wheel failed (is setuptools installed? pip install 'setuptools>=70.1'):\n{proc.stderr[-2000:]}"
        )
    cache.mkdir(parents=True, exist_ok=True)
    final = cache / wheels[0].name
    part = cache / (wheels[0].name + ".part")
    _without_requirements(wheels[0], part)
    os.replace(part, final)
    shutil.rmtree(tmp, ignore_errors=True)
    return final


def _without_requirements(src: Path, dst: Path) -> None:
    """Copy a wheel with its ``Requires-Dist`` lines removed (and RECORD updated to match).

    Ray installs a ``py_modules`` wheel with a plain ``pip install WHEEL --target DIR``, which would download
    and install every dependency (torch, ray, …) again into the job's folder: minutes and gigabytes per node.
    The nodes already run rlcf's dependencies (they run Ray with them), so the shipped wheel carries rlcf's
    code only.
    """
    import base64
    import zipfile

    def digest(data: bytes) -> str:
        return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()

    with zipfile.ZipFile(src) as zin:
        names = zin.namelist()
        meta_name = next(n for n in names if n.endswith(".dist-info/METADATA"))
        record_name = next(n for n in names if n.endswith(".dist-info/RECORD"))
        meta = zin.read(meta_name).decode()
        meta = "".join(line for line in meta.splitlines(keepends=True) if not line.startswith("Requires-Dist:"))
        records = []
        with zipfile.ZipFile(dst, "w", compression=zipfile.ZIP_DEFLATED) as zout:
            for name in names:
                if name == record_name:
                    continue
                data = meta.encode() if name == meta_name else zin.read(name)
                zout.writestr(zin.getinfo(name), data)
                records.append(f"{name},{digest(data)},{len(data)}")
            records.append(f"{record_name},,")
            zout.writestr(zin.getinfo(record_name), "\n".join(records) + "\n")


# -- resources and validation --------------------------------------------------------------------------------


def _validate_and_resources(command: list[str]) -> dict[str, float]:
    """Check a train command's experiment here; returns the driver's resource request it implies."""
    if command[0] != "train" or len(command) < 2:
        return {}
    from rlcf.cli_parts import experiment_source
    from rlcf.config import load_experiment

    target = command[1]
    if Path(target).is_dir():
        return {}  # a run folder to resume: validated on the node, where the folder is
    overrides = [t for t in command[2:] if "=" in t and not t.startswith("-")]
    source, algo = experiment_source(target)
    experiment = load_experiment(source, overrides, algo=algo)
    gpus = int(getattr(experiment.run, "num_gpus", 0) or 0)
    from rlcf.registry import algos

    cls = algos.get(experiment.algo)
    # Ray Train workers request their own GPUs; a TRL trainer's torchrun processes run inside the driver.
    if gpus and not getattr(cls, "ray_train_workers", False):
        return {"entrypoint_num_gpus": float(gpus)}
    return {}


def _job_env(spec: LaunchSpec) -> dict[str, str]:
    env = {k: os.environ[k] for k in FORWARDED_ENV if k in os.environ}
    env.update({k: v for k, v in os.environ.items() if k.startswith("RLCF_") and k != "RLCF_CACHE"})
    env.setdefault("RLCF_QUIET", "1")  # logs, not progress bars, in a job's log stream
    env.update(spec.env)
    return env


def _yaml_plugin_files(path: Path) -> list[str]:
    """The relative ``.py`` files an experiment YAML's ``plugins:`` names (and that exist beside it)."""
    from rlcf.config import load_yaml

    try:
        plugins = load_yaml(path).get("plugins") or []
    except UsageError:
        return []  # not an experiment, or not valid: the job reports it
    plugins = [plugins] if isinstance(plugins, str) else plugins
    return [p for p in plugins if isinstance(p, str) and p.endswith(".py") and not Path(p).is_absolute()
            and ".." not in Path(p).parts and (path.parent / p).is_file()]


def _stage(command: list[str], staging: Path, plugins: Sequence[str] = ()) -> tuple[list[str], list[str]]:
    """Copy the YAML/JSON files the command names, and the ``.py`` plugin files, into ``staging``.

    Each file keeps its name (in a numbered folder, so two ``config.yaml`` cannot clash): a YAML without
    ``run.name`` names its run after the file's stem, as ``rlcf train`` does here, so ``--resume`` finds it.

    Returns:
        ``(command, shipped names)``; the command starts with a ``--plugin`` pair per plugin.
    """
    out, shipped = [], []

    def ship(path: Path) -> str:
        name = f"{len(shipped)}/{path.name}"
        (staging / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, staging / name)
        shipped.append(name)
        if path.suffix in (".yaml", ".yml"):  # the YAML's own plugin files travel beside it
            for plugin in _yaml_plugin_files(path):
                target = (staging / name).parent / plugin
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path.parent / plugin, target)
        return name

    for plugin in plugins:
        path = Path(plugin)
        out += ["--plugin", ship(path) if path.suffix == ".py" and path.is_file() else plugin]
    for i, tok in enumerate(command):
        path = Path(tok)
        if i > 0 and path.suffix in _SHIPPED_SUFFIXES and path.is_file():
            out.append(ship(path))
        else:
            out.append(tok)
    return out, shipped


def _is_this_machine(address: str) -> bool:
    import socket
    from urllib.parse import urlparse

    host = urlparse(address).hostname or ""
    if host in ("127.0.0.1", "localhost", "::1"):
        return True
    try:
        return host in (socket.gethostname(), socket.getfqdn()) or socket.gethostbyname(host) in (
            socket.gethostbyname(socket.gethostname()),)
    except OSError:
        return False


def _entrypoint(command: list[str], shipped: list[str], remote_cwd: str, python: str) -> str:
    import shlex

    parts = [python, "-m", "rlcf.runtime.job_entry", "--cwd", remote_cwd]
    for name in shipped:
        parts += ["--shipped", name]
    return " ".join(shlex.quote(p) for p in [*parts, "--", *command])


# -- submitting and following ------------------------------------------------------------------------------------


def _client(address: str):
    from ray.job_submission import JobSubmissionClient

    try:
        return JobSubmissionClient(address)
    except Exception as exc:  # connection refused, 401/403 from a token-auth cluster, …
        text = str(exc)
        hint = ""
        if "401" in text or "403" in text or "uthenticat" in text:
            hint = (" — the cluster uses token authentication: set RAY_AUTH_MODE=token and put the cluster's token in "
                    "RAY_AUTH_TOKEN or ~/.ray/auth_token")
        elif "onnect" in text:
            hint = " — is the head running ('ray start --head --dashboard-host=...') and is the dashboard port (8265) reachable?"
        raise UsageError(f"cannot reach the Ray job server at {address}: {text.splitlines()[0] if text else exc}{hint}") from exc


def follow(client: Any, job_id: str, out=None) -> str:
    """Stream a job's logs until it ends; returns its final status name."""
    out = out or sys.stdout

    async def tail() -> None:
        async for chunk in client.tail_job_logs(job_id):
            out.write(chunk)
            out.flush()

    try:
        asyncio.run(tail())
    except Exception as exc:  # the log stream can drop (head restart); fall back to polling the status
        log.warning("log stream ended early (%s); polling the job status", exc)
    while True:
        status = str(client.get_job_status(job_id)).rsplit(".", 1)[-1]
        if status in TERMINAL:
            return status
        time.sleep(1.0)


def exit_code_of(client: Any, job_id: str, status: str) -> int:
    """0 for SUCCEEDED; the job's own rlcf exit code when Ray reports it; else 1 (130 for STOPPED)."""
    if status == "SUCCEEDED":
        return 0
    if status == "STOPPED":
        return 130
    info = client.get_job_info(job_id)
    match = re.search(r"exit code (\d+)", str(getattr(info, "message", "") or ""))
    code = int(match.group(1)) if match else 1
    return code if code else 1


def launch(spec: LaunchSpec) -> int:
    """Submit (and by default follow) one job; returns the exit code ``rlcf launch`` ends with."""
    resources = _validate_and_resources(spec.command)
    started_local = False
    address = spec.address
    if address is None:
        from rlcf.runtime.cluster import ensure_ray

        os.environ.setdefault("RAY_AUTH_MODE", "disabled")
        ensure_ray(num_cpus=spec.local_num_cpus, include_dashboard=True, dashboard_host="127.0.0.1")
        started_local = True
        address = _local_dashboard_url()
    try:
        client = _client(address)
        staging = Path(tempfile.mkdtemp(prefix="rlcf-job-"))
        command, shipped = _stage(spec.command, staging, spec.plugins)
        runtime_env: dict[str, Any] = {"working_dir": str(staging), "env_vars": _job_env(spec)}
        if spec.ship == "wheel":
            runtime_env["py_modules"] = [str(build_wheel())]
        options: dict[str, Any] = dict(resources)
        if spec.entrypoint_num_cpus is not None:
            options["entrypoint_num_cpus"] = spec.entrypoint_num_cpus
        if spec.entrypoint_num_gpus is not None:
            options["entrypoint_num_gpus"] = spec.entrypoint_num_gpus
        remote_cwd = spec.remote_cwd or os.getcwd()
        python = spec.python or (sys.executable if _is_this_machine(address) else "python")
        deadline = time.monotonic() + 90
        while True:
            try:
                job_id = client.submit_job(
                    entrypoint=_entrypoint(command, shipped, remote_cwd, python),
                    runtime_env=runtime_env,
                    submission_id=spec.submission_id,
                    metadata={"rlcf_command": " ".join(spec.command)[:500]},
                    **options,
                )
                break
            except RuntimeError as exc:  # a head that has just started has no job agent for a few seconds
                if "No available agent" not in str(exc):
                    raise
                if time.monotonic() > deadline:
                    raise RlcfError(
                        f"the Ray head at {address} has no job agent after 90 s; check its dashboard_agent logs "
                        "(e.g. a port clash with another Ray cluster on that machine: --dashboard-agent-listen-port)"
                    ) from exc
                time.sleep(2.0)
        shutil.rmtree(staging, ignore_errors=True)
        print(json.dumps({"job_id": job_id, "address": address, "command": " ".join(spec.command)}), file=sys.stderr)
        if not spec.wait:
            print(job_id)
            return 0
        try:
            status = follow(client, job_id)
        except KeyboardInterrupt:
            print(f"\nstopped following; job {job_id} keeps running. 'rlcf jobs stop {job_id} --address {address}' "
                  "stops it.", file=sys.stderr)
            return 130
        code = exit_code_of(client, job_id, status)
        print(json.dumps({"job_id": job_id, "status": status, "exit_code": code}), file=sys.stderr)
        return code
    finally:
        if started_local:
            import ray

            ray.shutdown()


def _local_dashboard_url() -> str:
    import ray

    url = ray.get_runtime_context().worker.node.address_info.get("webui_url") or ""
    if not url:
        raise RlcfError("the local Ray instance started without a dashboard; install ray[default]")
    return url if "://" in url else f"http://{url}"


# -- rlcf jobs ------------------------------------------------------------------------------------------------------


def jobs_main(args: argparse.Namespace) -> int:
    """``rlcf jobs list|status|logs|stop``."""
    address = args.address or os.environ.get("RAY_ADDRESS")
    if not address:
        raise UsageError(f"rlcf jobs {args.action}: pass --address http://HEAD:8265 (or set RAY_ADDRESS)")
    client = _client(address if "://" in address else f"http://{address}")
    if args.action == "list":
        rows = []
        for job in client.list_jobs():
            rows.append({
                "job_id": job.submission_id or job.job_id,
                "status": str(job.status).rsplit(".", 1)[-1],
                "command": (job.metadata or {}).get("rlcf_command", job.entrypoint),
                "start": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime((job.start_time or 0) / 1000)),
            })
        rows.sort(key=lambda r: r["start"])
        if args.json:
            print(json.dumps(rows, indent=2))
        else:
            from rlcf.cli_parts import print_table

            print_table(f"Ray jobs at {address}", ("job_id", "status", "start", "command"),
                         [(r["job_id"], r["status"], r["start"], r["command"]) for r in rows])
        return 0
    if not args.job_id:
        raise UsageError(f"rlcf jobs {args.action}: give the job id (see 'rlcf jobs list')")
    try:
        status = str(client.get_job_status(args.job_id)).rsplit(".", 1)[-1]
    except RuntimeError as exc:
        raise UsageError(f"no job {args.job_id!r} at {address} (see 'rlcf jobs list')") from exc
    if args.action == "status":
        info = client.get_job_info(args.job_id)
        print(json.dumps({"job_id": args.job_id, "status": status, "message": info.message}))
        return 0 if status != "FAILED" else 1
    if args.action == "logs":
        return show_logs(client, args.job_id, status, follow_logs=args.follow)
    if args.action == "stop":
        stopped = client.stop_job(args.job_id)
        print(json.dumps({"job_id": args.job_id, "stop_requested": bool(stopped), "status_before": status}))
        return 0
    raise UsageError(f"unknown jobs action {args.action!r}")


def show_logs(client: Any, job_id: str, status: str, *, follow_logs: bool, out=None, err=None) -> int:
    """``rlcf jobs logs``: print the job's logs; with ``follow_logs``, stream them until it ends.

    With ``follow_logs`` the exit code is the job's, whether it ends while followed or had ended before (0
    succeeded, its rlcf exit code when it failed, 130 stopped), and the final status is said on stderr.
    Without it, printing the logs succeeds (0) for any job state.
    """
    out, err = out or sys.stdout, err or sys.stderr
    if follow_logs and status not in TERMINAL:
        status = follow(client, job_id, out)
    else:
        out.write(client.get_job_logs(job_id))
        out.flush()
        if not follow_logs:
            return 0
    code = exit_code_of(client, job_id, status)
    print(json.dumps({"job_id": job_id, "status": status, "exit_code": code}), file=err)
    if code:
        print(f"job {job_id} ended {status} (exit code {code})", file=err)
    return code
