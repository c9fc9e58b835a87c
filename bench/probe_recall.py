"""Can the embedded tiny LM's architecture learn a content-based lookup on CPU at all? Synthetic sanity checks.

The grounded-QA lookup probe (``probe_defacto_lookup.py``) stays near chance. This script strips the task down to
token ids and the same Qwen2 shape (128 hidden, 4 layers, 4 heads, 2 key/value heads), batch 32, AdamW lr 1e-3:

- ``repeat``: a random 24-token sequence repeated once; accuracy on the second half. A fixed positional offset
  solves it, so it checks that training works at all;
- ``recall``: ``--pairs`` key/value pairs (keys from 26 "names", values from 36 ids), then one key; the answer is
  its value (one supervised token per sequence);
- ``recall-rev``: the same with every pair written value first, as the task's "2. lea's …" puts the fact
  number before the name;
- ``dense``: every key queried once, in random order, each followed by its value (``--pairs`` supervised tokens).

Prints one row per check and evaluation step: accuracy of the supervised tokens on 128–256 fresh sequences.

    python bench/probe_recall.py [--checks repeat recall recall-rev dense] [--steps 1500] [--pairs 4]
"""

from __future__ import annotations

import argparse
import time
import warnings

warnings.filterwarnings("ignore")

KEYS, VOCAB = 26, 64  # ids 2..27 are keys, 28..63 values


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checks", nargs="+", default=["repeat", "recall", "recall-rev", "dense"],
                   choices=["repeat", "recall", "recall-rev", "dense"])
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--every", type=int, default=250)
    p.add_argument("--pairs", type=int, default=4)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()

    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.set_num_threads(args.threads)
    n = args.pairs

    def sequences(check: str, b: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """(ids, labels): labels are -100 except on the tokens the check scores."""
        if check == "repeat":
            x = torch.randint(2, VOCAB, (b, 24), generator=g)
            ids = torch.cat([x, x], 1)
            labels = ids.clone()
            labels[:, :25] = -100
            return ids, labels
        rows, labs = [], []
        for _ in range(b):
            keys = torch.randperm(KEYS, generator=g)[:n] + 2
            vals = torch.randint(KEYS + 2, VOCAB, (n,), generator=g)
            context = [t for k, v in zip(keys.tolist(), vals.tolist()) for t in ((v, k) if check == "recall-rev" else (k, v))]
            asked = torch.randperm(n, generator=g).tolist() if check == "dense" else [int(torch.randint(0, n, (1,), generator=g))]
            row = torch.tensor(context + [t for i in asked for t in (int(keys[i]), int(vals[i]))])
            lab = torch.full_like(row, -100)
            lab[2 * n + 1 :: 2] = row[2 * n + 1 :: 2]
            rows.append(row)
            labs.append(lab)
        return torch.stack(rows), torch.stack(labs)

    print(f"{'check':>10} {'step':>6} {'seconds':>8} {'accuracy':>9}  (chance: repeat 1/62, recall 1/{n})")
    for check in args.checks:
        torch.manual_seed(0)
        g, held = torch.Generator().manual_seed(1), torch.Generator().manual_seed(2)
        test_ids, test_labels = sequences(check, 256, held)
        model = Qwen2ForCausalLM(Qwen2Config(vocab_size=VOCAB, hidden_size=128, intermediate_size=384, num_hidden_layers=4,
                                             num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                                             tie_word_embeddings=True))
        opt = torch.optim.AdamW(model.parameters(), lr=args.lr)
        start = time.perf_counter()
        for step in range(args.steps + 1):
            if step % args.every == 0 or step == args.steps:
                model.eval()
                with torch.no_grad():
                    pred = model(input_ids=test_ids).logits[:, :-1].argmax(-1)
                target = test_labels[:, 1:]
                acc = (pred == target)[target != -100].float().mean().item()
                model.train()
                print(f"{check:>10} {step:>6} {time.perf_counter() - start:>8.0f} {acc:>9.2f}", flush=True)
            if step == args.steps:
                break
            ids, labels = sequences(check, 32, g)
            loss = model(input_ids=ids, labels=labels).loss
            opt.zero_grad()
            loss.backward()
            opt.step()


if __name__ == "__main__":
    main()
