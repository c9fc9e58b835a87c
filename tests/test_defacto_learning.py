"""DeFacto's learning claim, short version (``bench/bench_defacto.py`` is the full comparison).

From one SFT checkpoint and the same GRPO budget: DeFacto GRPO (pos / neg / random variants, format + answer +
grounding rewards) raises abstention on held-out counterfactual (``neg``) inputs and keeps answering, and answering
right, when nothing or only an irrelevant fact is masked (``pos``, ``random``); plain GRPO (positive examples,
format + answer) does not raise abstention. The SFT model reads the document (its answer-weighted loss,
``sft_answer_weight``), so "answering right" means copying the asked value, not guessing the class prior.
Real parts: the embedded grounded-QA task (profile layout), a tiny Qwen2 model built from a config, TRL's
``SFTTrainer`` and ``GRPOTrainer`` on CPU.
"""

from __future__ import annotations

import pytest

from rlcf.algorithm import train

SMALL = [
    "config.layout=profile",
    "config.tiny.hidden_size=128",
    "config.tiny.layers=4",
    "config.tiny.intermediate_size=384",
    "config.eval_docs=80",
    "config.num_generations=8",
    "config.prompts_per_step=9",
    "config.batch_by_example=true",  # an example's three variants in one step (bench/results/defacto.md, session 18)
]
# The SFT and GRPO settings of configs/defacto/grounded_qa.yaml (the bench), on fewer evaluation documents: the
# answer value's loss weighted x14 so that SFT reads the document, 5% abstention rows (unweighted).
SFT = ["config.sft_docs=3000", "config.sft_epochs=2", "config.sft_lr=1e-3", "config.sft_answer_weight=14", "config.sft_abstain_share=0.05"]
GRPO_STEPS = 150


@pytest.mark.slow
@pytest.mark.timeout(2400)  # about 8 min on 2 cores: 390 SFT steps, 2 x 150 GRPO steps, 5 evaluations
def test_defacto_grpo_teaches_abstention_where_plain_grpo_does_not(tmp_path):
    base = [f"run.out_dir={tmp_path}", "run.log_every=10", *SMALL]
    sft_run, _ = train(None, [*base, "run.name=sft", "run.total_steps=1", "run.checkpoint_every=1", *SFT], algo="defacto")
    sft = sft_run.results["sft"]
    arms = {}
    for name, extra in {
        "defacto": ["config.variants=[pos, neg, random]", "config.rewards=[format, answer, grounding]"],
        "grpo": ["config.variants=[pos]", "config.rewards=[format, answer]"],
    }.items():
        run, _ = train(
            None,
            [*base, f"run.name={name}", f"run.total_steps={GRPO_STEPS}", f"run.checkpoint_every={GRPO_STEPS}",
             f"config.model={sft_run.path / 'sft_model'}", "config.sft_epochs=0", "config.learning_rate=2e-4",
             "config.beta=0.04", "config.grpo.lr_scheduler_type=constant_with_warmup", "config.grpo.warmup_steps=20", *extra],
            algo="defacto",
        )
        arms[name] = run.results[name]
    d, g = arms["defacto"], arms["grpo"]
    summary = {k: {s: (round(v[s].accuracy, 3), round(v[s].abstention, 3)) for s in v} for k, v in {"sft": sft, **arms}.items()}
    print(summary)
    # The SFT model reads: it copies the asked value from the document (the class prior would give about 12%).
    assert sft["pos"].accuracy >= 0.9, summary
    # DeFacto raises abstention on masked evidence to the 80%, well above plain GRPO ...
    assert d["neg"].abstention >= 0.8, summary
    assert d["neg"].abstention >= g["neg"].abstention + 0.5, summary
    # ... keeps answering, and answering right, where the evidence is intact (nothing or an irrelevant fact masked) ...
    assert d["pos"].accuracy >= sft["pos"].accuracy - 0.05 and d["pos"].abstention <= 0.05, summary
    assert d["random"].abstention <= 0.1, summary
    assert d["random"].accuracy >= d["pos"].accuracy - 0.1, summary
    # Plain GRPO, which never sees a masked input, does not raise abstention.
    assert g["neg"].abstention <= sft["neg"].abstention + 0.1, summary
