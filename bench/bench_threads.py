"""Two training processes side by side: torch's default threads against rlcf's CPU share (issue 18).

Each arm starts ``--copies`` processes at once; each runs the same CPU training loop (an Adam step on a
CFCQL-sized critic MLP) for ``--seconds`` and reports its steps per second. Arm "torch default" leaves torch's
intra-op pool as it comes (every core the process sees); arm "rlcf share" calls
:func:`rlcf.runtime.threads.set_torch_threads` told that ``--copies`` workers share the machine, which is what
a Ray actor's assigned CPUs or torchrun's worker count tell it in rlcf. ``OMP_NUM_THREADS`` is removed from
both arms' environment so that neither inherits a choice. The arms alternate for ``--rounds`` rounds.

    python bench/bench_threads.py [--copies 2] [--seconds 15] [--rounds 2] [--out bench/results/threads.md]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ARMS = ("torch default", "rlcf share")


def worker(arm: str, copies: int, start_at: float, seconds: float, batch: int, hidden: int) -> None:
    """One training process: wait for the common start, train for ``seconds``, print a JSON line."""
    import torch

    if arm == "rlcf share":
        from rlcf.runtime.threads import set_torch_threads

        set_torch_threads(workers=copies)
    torch.manual_seed(0)
    obs_dim, act_dim = 54, 15  # simple_spread: 3 agents' observations and 5-d actions, as a joint critic sees them
    critic = torch.nn.Sequential(
        torch.nn.Linear(obs_dim + act_dim, hidden), torch.nn.ReLU(),
        torch.nn.Linear(hidden, hidden), torch.nn.ReLU(),
        torch.nn.Linear(hidden, 1),
    )
    opt = torch.optim.Adam(critic.parameters(), lr=3e-4)
    x, y = torch.randn(batch, obs_dim + act_dim), torch.randn(batch, 1)

    def step() -> None:
        loss = torch.nn.functional.mse_loss(critic(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    step()  # allocate before the clock starts
    while time.time() < start_at:
        time.sleep(0.005)
    # A process that was not ready at the common start (slow import under load) still times a full window.
    late = max(0.0, time.time() - start_at)
    t0, steps = time.perf_counter(), 0
    while steps == 0 or time.perf_counter() - t0 < seconds:
        step()
        steps += 1
    elapsed = time.perf_counter() - t0
    print(json.dumps({"arm": arm, "threads": torch.get_num_threads(), "steps_per_s": steps / elapsed,
                      "late_s": round(late, 2)}), flush=True)


def run_arm(arm: str, args: argparse.Namespace) -> list[dict]:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    start_at = time.time() + args.startup
    cmd = [sys.executable, __file__, "--worker", arm, "--copies", str(args.copies), "--start-at", repr(start_at),
           "--seconds", str(args.seconds), "--batch", str(args.batch), "--hidden", str(args.hidden)]
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True) for _ in range(args.copies)]
    rows = []
    for proc in procs:
        out, _ = proc.communicate()
        if proc.returncode != 0:
            sys.exit(f"a {arm!r} worker failed (exit {proc.returncode})")
        rows.append(json.loads(out.strip().splitlines()[-1]))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=2, help="processes training side by side in each arm")
    parser.add_argument("--seconds", type=float, default=15.0, help="timed training per process and round")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds of the two arms")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--startup", type=float, default=10.0, help="seconds allowed for the processes to import torch")
    parser.add_argument("--out", default=None, help="also write the table as Markdown to this file")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--start-at", type=float, default=0.0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.copies, args.start_at, args.seconds, args.batch, args.hidden)
        return

    load_before = os.getloadavg()[0]
    per_arm: dict[str, list[dict]] = {arm: [] for arm in ARMS}
    for r in range(args.rounds):
        for arm in ARMS:
            rows = run_arm(arm, args)
            per_arm[arm].extend(rows)
            rates = ", ".join(f"{row['steps_per_s']:.1f} (started {row['late_s']:.1f} s late)" for row in rows)
            print(f"round {r + 1} {arm}: {rows[0]['threads']} threads/process, steps/s per process: {rates}", file=sys.stderr)

    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:
        cpus = os.cpu_count()
    lines = [
        f"{args.copies} processes side by side, each an Adam step of a {args.hidden}-{args.hidden} critic MLP on a batch "
        f"of {args.batch}, {args.seconds:g} s timed per process, {args.rounds} alternating rounds; {cpus} CPUs usable; "
        f"1-minute load average {load_before:.1f} before and {os.getloadavg()[0]:.1f} after (other jobs on the machine).",
        "",
        "| arm | torch threads per process | steps/s per process (each run) | mean steps/s per process | total steps/s |",
        "|---|---:|---|---:|---:|",
    ]
    means = {}
    for arm in ARMS:
        rates = [row["steps_per_s"] for row in per_arm[arm]]
        means[arm] = statistics.fmean(rates)
        threads = sorted({row["threads"] for row in per_arm[arm]})
        lines.append(
            f"| {arm} | {', '.join(map(str, threads))} | {', '.join(f'{x:.1f}' for x in rates)} | "
            f"{means[arm]:.1f} | {means[arm] * args.copies:.1f} |"
        )
    lines += ["", f"Ratio rlcf share / torch default (mean steps/s per process): **{means['rlcf share'] / means['torch default']:.2f}**"]
    table = "\n".join(lines)
    print(table)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(table + "\n")


if __name__ == "__main__":
    main()
