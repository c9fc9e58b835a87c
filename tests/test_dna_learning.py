"""DNA-Train's learning claim, short version (``bench/bench_dna.py`` is the full comparison over seeds).

From a paired-SFT warm start on the embedded paired task (``layout: profile``: the counterfactual edits the asked
line, so the person's usual value — the prior — is wrong on every edit), the RL stage with pair-wise ℓ1
advantages raises held-out counterfactual and pair accuracy over the SFT model. Real parts: a tiny Qwen2 model
built from a config, TRL's ``SFTTrainer`` and the ``GRPOTrainer`` subclass on CPU, held-out pairs, greedy decoding.
"""

from __future__ import annotations

import pytest

from rlcf.algorithm import train


@pytest.mark.slow
@pytest.mark.timeout(1800)  # about 4 min on 2 cores: 94 SFT steps, 60 RL steps, 2 evaluations of 200 rows
def test_dna_rl_stage_beats_its_sft_warm_start_on_pair_accuracy(tmp_path):
    # the embedded defaults are the measured setting (bench/results/dna.md): 1500 pairs x 1 SFT epoch, 60 RL steps
    run, _ = train(
        None,
        [f"run.out_dir={tmp_path}", "run.name=dna", "run.total_steps=60", "run.checkpoint_every=60", "run.log_every=10",
         "config.eval_pairs=100"],
        algo="dna-train",
    )
    sft, rl = run.results["sft"], run.results["dna-pair_l1"]
    acc = {name: {s: 100 * sc.as_dict()["accuracy"] for s, sc in per.items()} for name, per in (("sft", sft), ("rl", rl))}
    assert acc["sft"]["real"] > acc["sft"]["cf"] + 10, f"the edit should be the harder side after SFT: {acc}"
    assert acc["rl"]["cf"] >= acc["sft"]["cf"] + 5, f"RL should raise counterfactual accuracy: {acc}"
    assert acc["rl"]["pair"] > acc["sft"]["pair"], f"RL should raise pair accuracy: {acc}"
    assert acc["rl"]["real"] >= acc["sft"]["real"] - 5, f"RL should keep real accuracy: {acc}"
