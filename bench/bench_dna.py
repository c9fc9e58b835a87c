"""DNA-Train on the embedded paired task: the SFT data ablation, and pair_l1 against group advantages.

1. Builds the embedded tiny LM once and SFTs two copies with the same number of rows and steps: on paired data
   (balanced real/cf batches) and on real data only. Evaluates both on held-out pairs (the paper's data
   ablation, Table 3, in miniature).
2. From the paired SFT checkpoint, for each seed, runs the RL stage (DAPO settings) with ``advantage: pair_l1``
   (DNA-Train) and ``advantage: group`` (the DAPO baseline) — same steps, batch, learning rate and seeds.
3. Prints real / counterfactual / pair accuracy (mean ± std over seeds) for every arm, and which one wins.

    python bench/bench_dna.py --seeds 0,1,2 --steps 60
    python bench/bench_dna.py --seeds 0,1,2 --arms pair_l1,group,pair_l1+dyn,group+dyn --start real --no-ablation
"""

from __future__ import annotations

import argparse
import json
import os
import warnings
from pathlib import Path

warnings.filterwarnings("ignore")
os.environ.setdefault("RLCF_QUIET", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


def sft_run(out: Path, data: str, base: list[str]) -> tuple[Path, dict]:
    """SFT once on ``data`` (paired | real) plus a 1-step RL run; returns the SFT model folder and its scores."""
    from rlcf.algorithm import train

    marker = out / f"sft_{data}.json"
    if marker.exists():
        saved = json.loads(marker.read_text())
        if Path(saved["path"]).exists():
            return Path(saved["path"]), saved["scores"]
    run, _ = train(None, [f"run.out_dir={out / 'sft'}", f"run.name=sft-{data}", "run.total_steps=1", "run.checkpoint_every=1",
                          *base, f"config.sft_data={data}"], algo="dna-train")
    scores = {s: sc.as_dict() for s, sc in run.results["sft"].items()}
    marker.write_text(json.dumps({"path": str(run.path / "sft_model"), "scores": scores}))
    return run.path / "sft_model", scores


def parse_arm(arm: str) -> tuple[str, list[str]]:
    """``pair_l1``, ``group`` or ``none``, optionally ``+dyn`` (DAPO's dynamic sampling per pair)."""
    advantage, _, extra = arm.partition("+")
    sets = [f"config.advantage={advantage}"]
    if extra == "dyn":
        sets.append("config.dynamic_sampling=true")
    elif extra:
        raise SystemExit(f"unknown arm suffix {extra!r} in {arm!r}; valid: +dyn")
    return advantage, sets


def logged_means(run_path: Path) -> dict[str, float]:
    """Means over the run's logged steps of DNA-Train's per-step statistics (S, α, dead pairs, dynamic rounds)."""
    import numpy as np

    keys = ("dna/S_real", "dna/S_cf", "dna/alpha_real", "dna/alpha_cf", "dna/degenerate_pairs",
            "dna/first_draw_live_pairs", "dna/dynamic_rounds", "dna/reward_real", "dna/reward_cf")
    rows = [json.loads(line) for line in (run_path / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return {k.split("/")[-1]: float(np.mean(v)) for k in keys if (v := [r[k] for r in rows if k in r])}


def rl_arm(arm: str, sft: Path, seed: int, steps: int, out: Path, base: list[str]) -> dict:
    from rlcf.algorithm import train

    advantage, sets = parse_arm(arm)
    run, _ = train(
        None,
        [*base, f"run.out_dir={out / arm}", f"run.name={arm}-s{seed}", f"run.seed={seed}", f"run.total_steps={steps}",
         f"run.checkpoint_every={steps}", f"run.log_every={max(1, steps // 10)}", f"config.model={sft}", "config.sft_epochs=0", *sets],
        algo="dna-train",
    )
    scores = {s: sc.as_dict() for s, sc in run.results[f"dna-{advantage}"].items()}
    return {**scores, "logged": logged_means(run.path)}


def ci95(vals: list[float]) -> float:
    """Half-width of the 95% t-interval of the mean over seeds."""
    import numpy as np
    from scipy import stats

    return float(stats.t.ppf(0.975, len(vals) - 1) * np.std(vals, ddof=1) / np.sqrt(len(vals))) if len(vals) > 1 else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--steps", type=int, default=60, help="RL steps per arm")
    parser.add_argument("--out", default="runs/bench_dna")
    parser.add_argument("--arms", default="pair_l1,group", help="advantage normalizations to compare; '+dyn' adds dynamic sampling (pair_l1+dyn)")
    parser.add_argument("--start", default="paired", choices=("paired", "real"), help="the SFT checkpoint RL starts from")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override for every run")
    parser.add_argument("--no-ablation", action="store_true", help="skip the real-only SFT (only the RL comparison)")
    args = parser.parse_args()

    import numpy as np

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    base = [f"config.{kv}" for kv in args.set]
    sft_paired, paired_scores = sft_run(out, "paired", base)
    real_scores = None
    if not args.no_ablation or args.start == "real":
        sft_real, real_scores = sft_run(out, "real", base)
    start, start_scores = (sft_paired, paired_scores) if args.start == "paired" else (sft_real, real_scores)
    if not args.no_ablation:
        print("SFT data ablation (held-out pairs, greedy; same rows and steps):")
        print(f"{'SFT data':10s} {'real acc':>9s} {'cf acc':>9s} {'pair acc':>9s}")
        for name, sc in (("paired", paired_scores), ("real only", real_scores)):
            print(f"{name:10s} {100 * sc['real']['accuracy']:9.1f} {100 * sc['cf']['accuracy']:9.1f} {100 * sc['pair']['accuracy']:9.1f}")
        print(f"  [{'x' if paired_scores['cf']['accuracy'] > real_scores['cf']['accuracy'] else ' '}] paired SFT beats real-only SFT on counterfactual accuracy\n", flush=True)

    seeds = [int(s) for s in args.seeds.split(",")]
    arms = args.arms.split(",")
    results: dict[str, list[dict]] = {a: [] for a in arms}
    for seed in seeds:
        for a in arms:
            r = rl_arm(a, start, seed, args.steps, out, base)
            results[a].append(r)
            print(f"seed {seed} {a:8s} real {100 * r['real']['accuracy']:5.1f}  cf {100 * r['cf']['accuracy']:5.1f}  pair {100 * r['pair']['accuracy']:5.1f}", flush=True)

    def cell(rs: list[dict], split: str) -> str:
        vals = [100 * r[split]["accuracy"] for r in rs]
        return f"{np.mean(vals):5.1f} ± {ci95(vals):4.1f}"

    print(f"\nHeld-out pairs, {args.steps} RL steps (DAPO settings) from the {args.start} SFT checkpoint, seeds {seeds} "
          f"(mean ± 95% t-interval half-width, %)")
    print(f"{'arm':13s} {'real acc':>13s} {'cf acc':>13s} {'pair acc':>13s}")
    print(f"{'sft':13s} {100 * start_scores['real']['accuracy']:13.1f} {100 * start_scores['cf']['accuracy']:13.1f} {100 * start_scores['pair']['accuracy']:13.1f}")
    for a, rs in results.items():
        print(f"{a:13s} {cell(rs, 'real'):>13s} {cell(rs, 'cf'):>13s} {cell(rs, 'pair'):>13s}")
    print("\nLogged during RL (mean over steps and seeds): S per side, α on live pairs, share of pairs with a dead side, "
          "and with +dyn the first draw's live share and the refill rounds")
    cols = ("S_real", "S_cf", "alpha_real", "alpha_cf", "degenerate_pairs", "first_draw_live_pairs", "dynamic_rounds")
    print(f"{'arm':13s} " + " ".join(f"{c:>12s}" for c in cols))
    for a, rs in results.items():
        vals = [np.mean([r["logged"][c] for r in rs]) if all(c in r["logged"] for r in rs) else float("nan") for c in cols]
        print(f"{a:13s} " + " ".join(f"{v:12.3f}" for v in vals))
    means = {a: float(np.mean([r["pair"]["accuracy"] for r in rs])) for a, rs in results.items()}
    best = max(means, key=means.get)
    print(f"best pair accuracy: {best} ({100 * means[best]:.1f}%)" + (
        f"; pair_l1 − group = {100 * (means['pair_l1'] - means['group']):+.1f} points (paper: about +2)" if {"pair_l1", "group"} <= set(means) else ""))
    (out / "results.json").write_text(json.dumps({"sft": {"paired": paired_scores, "real": real_scores}, "rl": results, "steps": args.steps, "seeds": seeds, "set": args.set, "start": args.start}, indent=2))


if __name__ == "__main__":
    main()
