"""What does one DeFacto GRPO step do to the picture model's abstention? A per-step probe.

Builds rlcf's DeFacto trainer (``DeFacto.make_trainer``, as ``fit`` does) on an SFT checkpoint of the picture task,
then runs GRPO steps by hand (the trainer's own generation, rewards, advantages and loss; plain AdamW at a fixed
learning rate, no warm-up) and after every step prints, on 40 fixed held-out pictures, the mean probability of
abstaining at the decision token: after ``<bbox>[``, ``]`` (``<bbox>[]``: no region, the abstention) against ``[``
(a box). A model that has the rule has it high on ``neg`` and near 0 on ``random`` and ``pos``.

    python bench/probe_defacto_image_steps.py --sft <run>/sft_model --lr 2e-4 --steps 15
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import tempfile
import warnings
from pathlib import Path

warnings.filterwarnings("ignore")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sft", required=True, help="SFT model folder of the picture task")
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--steps", type=int, default=15)
    p.add_argument("--rewards", default="format,answer,grounding")
    args = p.parse_args()

    import torch

    from rlcf.algos.defacto import DeFacto
    from rlcf.algos.llm_common import load_vlm
    from rlcf.algos.llm_trainer import grpo_arguments
    from rlcf.config import load_experiment
    from rlcf.envs.vision.grounded_images import grounded_image_rows
    from rlcf.reward_set import RewardSet

    torch.set_num_threads(1)
    root = Path(__file__).resolve().parents[1]
    exp = load_experiment(root / "configs/defacto/grounded_images.yaml",
                          [f"config.model={args.sft}", "config.sft_epochs=0", f"config.rewards=[{args.rewards}]"], algo="defacto")
    config = exp.config
    rows = DeFacto.train_data(config)
    names = list(config.rewards)
    run = dataclasses.replace(exp.run, total_steps=1, log_every=1, checkpoint_every=10**6, seed=0)
    model, processor = load_vlm(args.sft)
    with tempfile.TemporaryDirectory() as tmp:
        grpo_args = grpo_arguments(config, run, Path(tmp), DeFacto.rollout_batch(config), [1.0] * len(names), gpu=False)
        trainer = DeFacto.make_trainer(config, model, processor, grpo_args, rows, RewardSet(names), run=None)
        trainer.current_gradient_accumulation_steps = 1  # set by Trainer's loop, which this script replaces
        tok = processor.tokenizer
        close = tok("<bbox>[]", add_special_tokens=False).input_ids[2]
        probe = grounded_image_rows("eval", 40, seed=7)

        def abstention() -> dict[str, float]:
            model.eval()
            seen: dict[str, list[float]] = {"pos": [], "neg": [], "random": []}
            with torch.no_grad():
                for r in probe:
                    text = processor.apply_chat_template(r["prompt"], add_generation_prompt=True, tokenize=False) + "<bbox>["
                    enc = processor(text=[text], images=[[r["image"]]], return_tensors="pt")
                    seen[r["variant"]].append(float(torch.softmax(model(**enc).logits[0, -1].float(), -1)[close]))
            model.train()
            return {k: round(sum(v) / len(v), 3) for k, v in seen.items()}

        opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.0)
        batches = iter(trainer.get_train_dataloader())
        print(f"lr {args.lr}: P(abstain) at the decision token, mean over 40 held-out pictures per variant")
        print("step 0", abstention(), flush=True)
        for step in range(1, args.steps + 1):
            model.train()
            inputs = trainer._generate_and_score_completions(next(batches))
            loss = trainer.compute_loss(model, inputs)
            opt.zero_grad()
            loss.backward()
            opt.step()
            print(f"step {step}", abstention(), flush=True)


if __name__ == "__main__":
    main()
