"""Import cost of rlcf next to the libraries it keeps lazy.

Each row starts a fresh interpreter N times and reports the median wall time of the import, and its ratio to
`import rlcf` measured in the same run (absolute times are noise on shared machines; ratios are the result).

    python bench/bench_import.py [--repeats N]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

STATEMENTS = [
    ("python (no import)", "pass"),
    ("import rlcf", "import rlcf"),
    ("import rlcf + list all registries", "import rlcf.registry as r; [reg.names() for reg in r.registries.values()]"),
    ("import rlcf.cli", "import rlcf.cli"),
    ("import torch", "import torch"),
    ("import pettingzoo + mpe2", "import pettingzoo, mpe2"),
    ("import ray", "import ray"),
    ("import trl", "import trl"),
]


def time_statement(stmt: str, repeats: int) -> float:
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", stmt], check=True)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    rows = [(label, time_statement(stmt, args.repeats)) for label, stmt in STATEMENTS]
    baseline = rows[0][1]
    rlcf_cost = rows[1][1] - baseline
    print(f"Import cost, median of {args.repeats} fresh interpreters (interpreter start-up subtracted)")
    print(f"{'statement':40s} {'seconds':>9s} {'x import rlcf':>14s}")
    for label, seconds in rows[1:]:
        cost = seconds - baseline
        print(f"{label:40s} {cost:9.3f} {cost / rlcf_cost:14.1f}")


if __name__ == "__main__":
    main()
