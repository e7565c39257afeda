#!/usr/bin/env python3
"""Multi-query associative recall (MQAR) with spattn's sparse attention, trained on CPU.

The task (Zoology's MQAR recipe, Arora et al. 2023): a sequence starts with `pairs` key-value
pairs k1 v1 k2 v2 ..., keys drawn from the first half of the vocabulary and values from the
second half; later in the sequence each key appears again as a query at a random position, and
the model must output the key's value at that position (the loss and the accuracy count only
those positions; the other positions hold noise tokens from the value half). Answering needs attention back to the
pair, which can be thousands of tokens away: a pattern that cannot reach it cannot solve recall.

The model: a token embedding plus an embedding of the previous token (a token shift, the
smallest form of the short convolutions Zoology's recall models use: it lets a value position
carry its key, so that one attention lookup can answer), two pre-norm blocks of (causal) sparse
attention and an MLP, a linear read-out; no position embedding (recall is by content, and the
pattern alone decides which positions a query can reach). Every pattern is intersected with
causal (a language model's setting): the spec S runs as "(S) & causal". Attention is
spattn.torch.sparse_attention (the block-sparse flash forward and its deterministic backward),
with the layout built once per (pattern, length); a content-based selector (a spec that needs
inputs, e.g. quest) is resolved on each block's current q and k at every call (spattn.select,
one layout per sequence), and the backward runs on that fixed selection.

    PYTHONPATH=build/release/python /usr/bin/python3 experiments/examples/mqar.py
    ... --lengths 256 1024 --specs dense 'sliding(64)' --steps 400

prints one accuracy per (pattern, length): the fraction of query positions answered right on
held-out sequences after training.
"""
import argparse
import math
import sys
import time

import torch

import spattn
import spattn.torch as st

# The patterns of the table: dense, a window, a window with attention sinks, BigBird, and a
# content-based selector (Quest: the query's own 16-key page plus the 7 pages whose keys bound
# q.k highest).
DEFAULT_SPECS = [
    "dense",
    "sliding(64)",
    "sliding(64) | sink(4)",
    "bigbird(block=64, window=3, global=2, random=3)",
    "quest(128, page=16)",
]


def make_batch(gen, batch, n, vocab, pairs):
    """Tokens [batch, n] and targets [batch, n] (-100 where no answer is asked). Noise tokens come
    from the value half, so that a key occurs only in its pair and in its query (a noise key
    would plant a false pair after it)."""
    half = vocab // 2
    x = torch.randint(half, vocab, (batch, n), generator=gen)  # noise tokens
    y = torch.full((batch, n), -100, dtype=torch.long)
    for b in range(batch):
        keys = torch.randperm(half - 1, generator=gen)[:pairs] + 1
        vals = torch.randint(half, vocab, (pairs,), generator=gen)
        x[b, 0:2 * pairs:2], x[b, 1:2 * pairs:2] = keys, vals
        # queries at distinct positions after the pairs, each key once
        pos = torch.randperm(n - 2 * pairs, generator=gen)[:pairs] + 2 * pairs
        x[b, pos] = keys
        y[b, pos] = vals
    return x, y


class Block(torch.nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.n1, self.n2 = torch.nn.LayerNorm(dim), torch.nn.LayerNorm(dim)
        self.qkv, self.out = torch.nn.Linear(dim, 3 * dim), torch.nn.Linear(dim, dim)
        self.mlp = torch.nn.Sequential(torch.nn.Linear(dim, 2 * dim), torch.nn.GELU(),
                                       torch.nn.Linear(2 * dim, dim))

    def forward(self, x, layout):
        b, n, dim = x.shape
        q, k, v = self.qkv(self.n1(x)).view(b, n, 3, self.heads, dim // self.heads).unbind(2)
        # [B, N, H, d] views as [B, H, N, d]: spattn reads them in place, no copy
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
        if isinstance(layout, str):  # a selector: select on this q and k, one layout per sequence
            lays = spattn.select(layout, q.detach().numpy(), k.detach().numpy(), block=64)
            o = torch.cat([st.sparse_attention(q[i:i + 1], k[i:i + 1], v[i:i + 1], lay)
                           for i, lay in enumerate(lays)])
        else:
            o = st.sparse_attention(q, k, v, layout)
        x = x + self.out(o.transpose(1, 2).reshape(b, n, dim))
        return x + self.mlp(self.n2(x))


class Model(torch.nn.Module):
    def __init__(self, vocab, dim, heads, layers=2):
        super().__init__()
        self.tok, self.prev = torch.nn.Embedding(vocab, dim), torch.nn.Embedding(vocab, dim)
        self.blocks = torch.nn.ModuleList(Block(dim, heads) for _ in range(layers))
        self.head = torch.nn.Linear(dim, vocab)

    def forward(self, x, layout):
        shifted = torch.nn.functional.pad(x[:, :-1], (1, 0))  # token 0 before the first
        h = self.tok(x) + self.prev(shifted)
        for blk in self.blocks:
            h = blk(h, layout)
        return self.head(h)


def run(spec, n, args):
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    try:
        layout = spattn.layout(f"({spec}) & causal", n=n, block=64)
    except ValueError as e:
        if "--inputs" not in str(e):
            raise
        layout = f"({spec}) & causal"  # a selector: resolved on every call
    model = Model(args.vocab, args.dim, args.heads)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.1)
    batch = max(1, args.tokens // n)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, args.lr, total_steps=args.steps)
    for _ in range(args.steps):
        x, y = make_batch(gen, batch, n, args.vocab, args.pairs)
        loss = torch.nn.functional.cross_entropy(model(x, layout).flatten(0, 1), y.flatten())
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    with torch.no_grad():
        x, y = make_batch(torch.Generator().manual_seed(args.seed + 1), args.eval, n, args.vocab,
                          args.pairs)
        pred = model(x, layout).argmax(-1)
        asked = y != -100
        return (pred[asked] == y[asked]).float().mean().item()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--specs", nargs="+", default=DEFAULT_SPECS, help="pattern specs (rows)")
    p.add_argument("--lengths", nargs="+", type=int, default=[256, 512, 1024, 2048])
    p.add_argument("--pairs", type=int, default=4, help="key-value pairs per sequence")
    p.add_argument("--vocab", type=int, default=32)
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--heads", type=int, default=2)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--tokens", type=int, default=2048, help="tokens per training batch")
    p.add_argument("--eval", type=int, default=32, help="held-out sequences")
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: its default)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if 2 * args.pairs * 2 > min(args.lengths) or args.pairs >= args.vocab // 2:
        p.error("need 4 * pairs <= every length and pairs < vocab / 2")
    width = max(len(s) for s in args.specs)
    print(f"MQAR: {args.pairs} pairs, vocab {args.vocab}, d_model {args.dim}, {args.heads} heads,"
          f" 2 layers, {args.steps} steps of {args.tokens} tokens; accuracy on held-out queries")
    print(f"| {'pattern':<{width}} | " + " | ".join(f"N={n:<5}" for n in args.lengths) + " |")
    print(f"|{'-' * (width + 2)}|" + "|".join("-" * 9 for _ in args.lengths) + "|")
    table = {}
    start = time.time()
    for spec in args.specs:
        row = [run(spec, n, args) for n in args.lengths]
        table[spec] = row
        print(f"| {spec:<{width}} | " + " | ".join(f"{a:7.3f}" for a in row) + " |", flush=True)
    print(f"({time.time() - start:.0f} s; chance is {1 / (args.vocab - args.vocab // 2):.3f})")
    return table


if __name__ == "__main__":
    main()
