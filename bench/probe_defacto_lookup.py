"""Can a tiny LM learn the grounded-QA lookup? A teacher-forced probe, run before any GRPO.

DeFacto GRPO can only teach abstention on masked evidence (and not on a masked distractor) if the model can tell
which fact a question needs. This script trains the embedded tiny LM on the SFT data with a plain loop
(AdamW, warm-up, batch 32) and, every ``--every`` steps, scores held-out rows teacher-forced:

- ``evidence``: the first token inside ``<evidence>`` (the fact number) is the argmax prediction;
- ``answer``: the answer token is the argmax, given the right evidence and reasoning before it.

If ``evidence`` stays near chance while ``answer`` is high, the model copies well but cannot find the fact.

``--pretrain-steps N`` first trains N plain-LM steps on dense associative-recall text (a fact list followed by
one query per fact, see ``reading_text``) and prints that recall plus a zero-shot recall on the task's documents,
to test whether a reading "pre-training" gives the SFT stage the lookup it cannot learn on its own.

    python bench/probe_defacto_lookup.py [--hidden 128 --layers 4] [--facts 3] [--two 0.2] [--question-last]
    python bench/probe_defacto_lookup.py --pretrain-steps 2000 --pretrain-facts 4 --lr 2e-3 --two 0 --question-last
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import warnings
from pathlib import Path

warnings.filterwarnings("ignore")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--every", type=int, default=250)
    p.add_argument("--facts", type=int, default=3)
    p.add_argument("--two", type=float, default=0.2, help="share of two-fact questions")
    p.add_argument("--mask", default="value", choices=("fact", "value"))
    p.add_argument("--abstain-share", type=float, default=0.03)
    p.add_argument("--question-last", action="store_true", help="move the question after the facts")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--pretrain-steps", type=int, default=0, help="plain LM steps on dense reading text first")
    p.add_argument("--pretrain-facts", type=int, default=6)
    p.add_argument("--vocab", type=int, default=512)
    p.add_argument("--layout", default="people", choices=("people", "profile"), help="grounded-QA layout (see rlcf.envs.text.grounded_qa)")
    p.add_argument("--prefix-space", action="store_true", help="tokenizer reads every piece with a leading space")
    args = p.parse_args()

    import numpy as np
    import torch

    from rlcf.algos.llm_common import TinyLMConfig, build_tiny_lm, load_model
    from rlcf.envs.text.grounded_qa import GroundedQAConfig, completion_for, grounded_qa_rows

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cfg = GroundedQAConfig(mask_unit=args.mask, facts_per_doc=args.facts, two_fact_share=args.two, layout=args.layout)

    def rows(split: str, n: int, seed: int) -> list[dict]:
        out = grounded_qa_rows(split, n, seed=seed, config=cfg)
        if args.question_last:
            for r in out:
                lines = r["prompt"].split("\n")
                r["prompt"] = "\n".join(lines[1:-1]) + "\n" + lines[0] + "\n"
        return out

    from rlcf.envs.text.grounded_qa import ATTRIBUTES, NAMES

    def reading_text(r: np.random.Generator) -> str:
        """Dense associative recall ("pre-training" text): a numbered fact list, then one query per fact in random
        order, each answered with the fact number and value — every fact is one supervised lookup."""
        n = args.pretrain_facts
        facts = []
        for person in r.choice(NAMES, size=n, replace=False):
            attribute = str(r.choice(list(ATTRIBUTES)))
            facts.append((str(person), attribute, str(r.choice(ATTRIBUTES[attribute]))))
        doc = "".join(f"{i + 1}. {a}'s {b} is {c}.\n" for i, (a, b, c) in enumerate(facts))
        queries = "".join(f"q: {facts[i][0]}'s {facts[i][1]}? a: {i + 1} {facts[i][2]}\n" for i in r.permutation(n))
        return "facts:\n" + doc + queries

    folder = Path(tempfile.mkdtemp(prefix="rlcf-probe-")) / "lm"
    corpus = [r["prompt"] + completion_for(r) for r in rows("train", 400, 2000)]
    corpus += [reading_text(np.random.default_rng([77, i])) for i in range(400)]
    build_tiny_lm(folder, corpus, TinyLMConfig(vocab_size=args.vocab, hidden_size=args.hidden, layers=args.layers,
                                               intermediate_size=3 * args.hidden, prefix_space=args.prefix_space), seed=0)
    model, tok = load_model(folder)
    rng = np.random.default_rng(0)
    train = [r for r in rows("train", 6000, 1) if r["variant"] != "neg" or rng.random() < args.abstain_share]
    held_out = rows("eval", 100, 0)

    def recall() -> tuple[float, float]:
        """(in-distribution recall over every query of 64 held-out reading texts, zero-shot recall on the task's
        held-out pos documents asked in the reading format); the digit after "a: " is the argmax."""
        model.eval()
        colon = tok.convert_tokens_to_ids(":")
        hits, zero = [], []
        with torch.no_grad():
            texts = [reading_text(np.random.default_rng([999, i])) for i in range(64)]
            enc = tok(texts, padding=True, return_tensors="pt")
            pred, ids = model(**enc).logits.argmax(-1), enc["input_ids"]
            for i in range(len(texts)):
                for j in (ids[i] == colon).nonzero().flatten().tolist()[2::2]:  # "facts:", then "q:"/"a:" pairs
                    hits.append(bool(pred[i, j + 1] == ids[i, j + 2]))  # "a:" "Ġ" <digit>
            for r in held_out:
                if r["variant"] == "pos":
                    q = r["question"].removeprefix("what is ").rstrip("?")
                    ids = tok("facts:\n" + r["document"].rstrip("\n") + "\nq: " + q + "? a: ", return_tensors="pt")["input_ids"]
                    zero.append(tok.decode([model(input_ids=ids).logits[0, -1].argmax().item()]).strip() == str(r["evidence"][0]))
        model.train()
        return float(np.mean(hits)), float(np.mean(zero))

    if args.pretrain_steps:
        prng = np.random.default_rng(5)
        opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.0)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 50))
        t0 = time.perf_counter()
        for step in range(args.pretrain_steps + 1):
            if step % args.every == 0 or step == args.pretrain_steps:
                dense, zero = recall()
                print(f"pretrain {step:>5} {time.perf_counter() - t0:6.0f}s recall {dense:.2f}  zero-shot on task {zero:.2f}", flush=True)
            if step == args.pretrain_steps:
                break
            enc = tok([reading_text(prng) for _ in range(32)], padding=True, return_tensors="pt")
            loss = model(**enc, labels=enc["input_ids"].masked_fill(enc["attention_mask"] == 0, -100)).loss
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()

    def batch(chunk: list[dict]):
        enc = [(tok(r["prompt"])["input_ids"], tok(completion_for(r))["input_ids"]) for r in chunk]
        width = max(len(a) + len(b) for a, b in enc)
        ids = torch.full((len(enc), width), tok.pad_token_id)
        labels = torch.full((len(enc), width), -100)
        mask = torch.zeros((len(enc), width), dtype=torch.long)
        for i, (a, b) in enumerate(enc):
            ids[i, : len(a) + len(b)] = torch.tensor(a + b)
            labels[i, len(a) : len(a) + len(b)] = torch.tensor(b)
            mask[i, : len(a) + len(b)] = 1
        return ids, labels, mask

    def probe() -> dict[str, tuple[float, float]]:
        model.eval()
        out = {}
        with torch.no_grad():
            for variant in ("pos", "neg", "random"):
                chunk = [r for r in held_out if r["variant"] == variant]
                ids, labels, mask = batch(chunk)
                pred = model(input_ids=ids, attention_mask=mask).logits[:, :-1].argmax(-1)
                target = labels[:, 1:]
                ev, ans = [], []
                for i in range(len(chunk)):
                    where = (target[i] != -100).nonzero().flatten()
                    ev.append(bool(pred[i, where[1]] == target[i, where[1]]))  # the token after <evidence>
                    ans.append(bool(pred[i, where[-2]] == target[i, where[-2]]))  # the token before </answer>
                out[variant] = (float(np.mean(ev)), float(np.mean(ans)))
        model.train()
        return out

    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 50))
    start = time.perf_counter()
    loss = torch.tensor(float("nan"))
    print(f"{'step':>6} {'seconds':>8} {'loss':>7}  " + "  ".join(f"{v:>6}: evidence answer" for v in ("pos", "neg", "random")))
    for step in range(args.steps + 1):
        if step % args.every == 0:
            r = probe()
            print(f"{step:>6} {time.perf_counter() - start:>8.0f} {loss.item():>7.3f}  "
                  + "  ".join(f"{v:>6}: {r[v][0]:8.2f} {r[v][1]:6.2f}" for v in r), flush=True)
        if step == args.steps:
            break
        ids, labels, mask = batch([train[i] for i in rng.integers(0, len(train), 32)])
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()


if __name__ == "__main__":
    main()
