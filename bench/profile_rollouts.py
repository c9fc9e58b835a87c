"""Where a rollout run's time goes: an actor's start-up phases, a shard's generate time per thread count, and the
driver's view of each shard (Ray round trip and the tail where one actor idles).

Same tiny model and job as ``bench_rollouts.py``. Phases of start-up are timed in a fresh Python process, which
is what a new Ray actor pays; shard timings are taken in this process and through a ShardPool.

    python bench/profile_rollouts.py [--docs 24] [--generations 8]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

warnings.filterwarnings("ignore")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RLCF_QUIET", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

STARTUP = """
import time, sys
t = [("start", time.perf_counter())]
import torch; t.append(("import torch", time.perf_counter()))
torch.set_num_threads(1)
import transformers; t.append(("import transformers", time.perf_counter()))
from rlcf.runtime.rollouts import RolloutConfig, RolloutWorker; t.append(("import rlcf rollouts", time.perf_counter()))
config = RolloutConfig(model=sys.argv[1], num_generations=8, max_new_tokens=32, rewards=("format", "answer"), threads=1)
t.append(("config + reward registry", time.perf_counter()))
w = RolloutWorker(config); t.append(("RolloutWorker (model load)", time.perf_counter()))
from rlcf.runtime.rollouts import prompt_rows
rows = prompt_rows("grounded_qa", docs=2)[:1]
w.run(rows); t.append(("first prompt (warm-up)", time.perf_counter()))
w.run(rows); t.append(("second prompt", time.perf_counter()))
for (_, a), (name, b) in zip(t, t[1:]):
    print(f"  {name:<28} {b - a:6.2f} s")
print(f"  {'total':<28} {t[-1][1] - t[0][1]:6.2f} s")
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=24)
    parser.add_argument("--generations", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    args = parser.parse_args()

    from rlcf.algos.llm_common import TinyLMConfig, build_tiny_lm
    from rlcf.envs.text.grounded_qa import completion_for, grounded_qa_rows
    from rlcf.runtime.rollouts import RolloutConfig, RolloutWorker, prompt_rows

    model = str(Path(tempfile.mkdtemp(prefix="rlcf-prof-")) / "tiny")
    corpus = [r["prompt"] + completion_for(r) for r in grounded_qa_rows("train", 200)]
    build_tiny_lm(model, corpus, TinyLMConfig(hidden_size=128, layers=4, intermediate_size=384))
    print(f"load average before: {os.getloadavg()}")

    print("fresh process start-up (what each new actor pays), 1 torch thread:")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", STARTUP, model], check=True, env=env)
    print(f"  {'(incl. interpreter)':<28} {time.perf_counter() - t0:6.2f} s")

    rows = prompt_rows("grounded_qa", docs=args.docs)
    shards = [rows[i:i + 4] for i in range(0, len(rows), 4)]
    for threads in (1, 2):
        config = RolloutConfig(model=model, num_generations=args.generations, max_new_tokens=args.max_new_tokens,
                               rewards=("format", "answer"), threads=threads)
        worker = RolloutWorker(config)
        worker.run(shards[0][:1])
        times = []
        for shard in shards:
            t = time.perf_counter()
            worker.run(shard)
            times.append(time.perf_counter() - t)
        print(f"in process, {threads} thread(s): {len(shards)} shards, {sum(times):.2f} s generating "
              f"({min(times):.2f}-{max(times):.2f} s per 4-prompt shard)")

    import ray

    from rlcf.runtime.cluster import ensure_ray
    from rlcf.runtime.pool import ShardPool

    ensure_ray()
    config = RolloutConfig(model=model, num_generations=args.generations, max_new_tokens=args.max_new_tokens,
                           rewards=("format", "answer"))
    for actors in (1, 2):
        t0 = time.perf_counter()
        with ShardPool(RolloutWorker, [config], "run", actors=actors, what="rollout") as pool:
            ray.get([a.ping.remote() for a in pool.live.values()])
            ready = time.perf_counter() - t0
            done: list[float] = []
            t1 = time.perf_counter()
            pool.run(shards, lambda i, r: done.append(time.perf_counter() - t1))
        print(f"{actors} actor(s): start-up to ready {ready:.2f} s, shards {done[-1]:.2f} s "
              f"(last two shards done at {done[-2]:.2f}, {done[-1]:.2f} s)")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
