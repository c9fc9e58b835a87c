"""Can the tiny VLM learn which picture cell a question asks for? A teacher-forced probe, run before any SFT.

The picture task (``rlcf.envs.vision.grounded_images``) asks for the colour of the square in one cell of a 2 × 2
grid; a 56-px picture becomes 4 image tokens, one per cell, so the lookup is by position alone. This script builds
the embedded tiny VLM (``build_tiny_vlm``) and trains it with a plain loop (AdamW, 50-step warm-up, batch 32) on
one target: the colour token after the completion's ``<bbox>…</bbox><think>the square is`` (``--mode bbox``, the
SFT format) or right after the prompt (``--mode direct``). Every ``--every`` steps it scores held-out ``pos``
pictures: is the argmax among the six colour tokens the asked square's colour? Naming a colour that is in the
picture, uniformly, scores about 34%; chance is 17%.

    python bench/probe_vlm_reading.py --family qwen3_vl                 # the default tiny VLM (rotary base 10)
    python bench/probe_vlm_reading.py --family qwen2_vl --theta 1e6     # the tiny VLM of session 19
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import warnings

warnings.filterwarnings("ignore")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--family", default="qwen3_vl", choices=("qwen3_vl", "qwen2_vl"))
    p.add_argument("--theta", type=float, default=None, help="rotary base (default: the tiny VLM's, 10)")
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--mode", default="bbox", choices=("bbox", "direct"))
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--every", type=int, default=250)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()

    import numpy as np
    import torch

    from rlcf.algos.llm_common import TinyLMConfig, build_tiny_vlm, load_vlm
    from rlcf.envs.vision.grounded_images import COLORS, grounded_image_rows, image_completion_for

    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    train = [r for r in grounded_image_rows("train", 3000, seed=args.seed) if r["variant"] == "pos"]
    test = [r for r in grounded_image_rows("eval", 200, seed=args.seed) if r["variant"] == "pos"]
    corpus = [r["prompt"][0]["content"][1]["text"] + image_completion_for(r) for r in train[:500]]
    tiny = TinyLMConfig(hidden_size=args.hidden, layers=args.layers, intermediate_size=3 * args.hidden, vision_family=args.family, rope_theta=args.theta)
    with tempfile.TemporaryDirectory() as tmp:
        build_tiny_vlm(tmp, corpus, tiny, seed=args.seed)
        model, processor = load_vlm(tmp)
    tok = processor.tokenizer
    tok.padding_side = "left"
    colour_ids = {name: tok(" " + name, add_special_tokens=False).input_ids[0] for name in COLORS}
    candidates = torch.tensor(list(colour_ids.values()))

    def batch(rows):
        texts = []
        for r in rows:
            prompt = processor.apply_chat_template(r["prompt"], add_generation_prompt=True, tokenize=False)
            completion = image_completion_for(r)
            lead = completion[: completion.index("<think>the square is") + len("<think>the square is")] if args.mode == "bbox" else "the square is"
            texts.append(prompt + lead)
        enc = processor(text=texts, images=[[r["image"]] for r in rows], return_tensors="pt", padding=True)
        return enc, torch.tensor([colour_ids[r["solution"]] for r in rows])

    def accuracy() -> float:
        model.eval()
        right = 0
        with torch.no_grad():
            for i in range(0, len(test), 50):
                enc, target = batch(test[i : i + 50])
                logits = model(**enc).logits[:, -1, candidates]
                right += int((candidates[logits.argmax(-1)] == target).sum())
        model.train()
        return right / len(test)

    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 50))
    rng = np.random.default_rng(args.seed)
    start = time.perf_counter()
    print(f"{args.family} theta={args.theta or 'default'} mode={args.mode}: step 0 held-out accuracy {accuracy():.3f}", flush=True)
    for step in range(1, args.steps + 1):
        enc, target = batch([train[i] for i in rng.choice(len(train), 32, replace=False)])
        loss = torch.nn.functional.cross_entropy(model(**enc).logits[:, -1, :], target)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        if step % args.every == 0:
            print(f"step {step}: loss {loss.item():.3f}, held-out accuracy {accuracy():.3f} ({time.perf_counter() - start:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
