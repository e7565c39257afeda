"""spattn from Python: exact sparse-attention layouts and the block-sparse flash executor.

A thin layer over the C++ library (spattn._core): NumPy arrays go in and out without copies,
errors are the C++ library's (and the CLI's) messages as ValueError (bad input) or MemoryError
(a refused memory budget).

    import numpy as np, spattn
    lay = spattn.layout("sliding(256) | sink(4)", n=4096, heads=8)
    lay.stats()["layout"]["allowed_pairs"]
    q, k, v = (np.random.randn(1, 8, 4096, 64).astype(np.float32) for _ in range(3))
    o, lse = spattn.attention(q, k, v, lay)
    dq, dk, dv = spattn.attention_backward(q, k, v, o, lse, np.ones_like(o), lay)

Tensors are [B, H, N, d] (or [H, N, d], [N, d]) float32 with any non-negative strides: a
[B, N, H, d] array x is passed as x.transpose(0, 2, 1, 3), still without a copy.
Query i sits at position i + nk - nq (bottom-right alignment) as everywhere in spattn.
"""
import json

import numpy as np

from . import _core

__all__ = ["Layout", "layout", "select", "attention", "attention_backward", "reference", "patterns",
           "from_mask_mod"]


class Layout:
    """An exact block-sparse layout: the pairs a pattern keeps at one geometry.

    Attributes: spec (as given), canonical_spec, nq, nk, heads, block_q, block_k.
    """

    def __init__(self, core):
        self._core = core

    spec = property(lambda self: self._core.spec)
    canonical_spec = property(lambda self: self._core.canonical_spec)
    nq = property(lambda self: self._core.nq)
    nk = property(lambda self: self._core.nk)
    heads = property(lambda self: self._core.heads)
    block_q = property(lambda self: self._core.block_q)
    block_k = property(lambda self: self._core.block_k)

    def stats(self):
        """The Measurement record `spattn stats --json` prints, as a dict (layout counts under
        "layout": allowed_pairs, computed_pairs, kept/full/partial tiles, layout_bytes, scanned,
        build_seconds; the cost model's prediction under "predicted", for head dim 64)."""
        return json.loads(self._core.record)

    def block_mask(self):
        """uint8 [heads, q_blocks, k_blocks]: 1 where the tile is kept (DeepSpeed's shape, the
        block .npy of `spattn mask --level block`)."""
        return self._core.block_mask()

    def dense_mask(self, max_elements=1 << 26):
        """uint8 [heads, nq, nk]: 1 where query i may attend to key j. Refused (ValueError) when
        heads * nq * nk exceeds max_elements: this is the one quadratic export."""
        return self._core.dense_mask(int(max_elements))

    def to_flex(self):
        """The arrays of PyTorch FlexAttention's BlockMask, built in O(kept tiles), as a dict of
        NumPy int32 arrays (B = 1, broadcast over the batch; H = heads):

        - kv_num_blocks [1, H, q_blocks]: Partial (mask_mod needed) kept key blocks per query
          block; kv_indices [1, H, q_blocks, k_blocks]: their key-block indices, increasing,
          first kv_num_blocks entries valid, the rest 0.
        - full_kv_num_blocks, full_kv_indices: the same for Full tiles (every pair kept, no
          mask_mod call needed).
        - q_num_blocks [1, H, k_blocks], q_indices [1, H, k_blocks, q_blocks], full_q_num_blocks,
          full_q_indices: the transposed lists (query blocks per key block), which FlexAttention's
          backward reads.
        - BLOCK_SIZE: (block_q, block_k).

        With torch >= 2.5 on a GPU:
            f = lay.to_flex(); t = {k: torch.from_numpy(v).cuda() for k, v in f.items()
                                   if k != "BLOCK_SIZE"}
            bm = BlockMask.from_kv_blocks(t["kv_num_blocks"], t["kv_indices"],
                                          t["full_kv_num_blocks"], t["full_kv_indices"],
                                          BLOCK_SIZE=f["BLOCK_SIZE"], mask_mod=mask_mod)
        where mask_mod gives the pattern's rule inside Partial tiles (FlexAttention indexes
        queries from 0; spattn's query i sits at position i + nk - nq).
        """
        return self._core.to_flex()

    def __repr__(self):
        return (f"spattn.Layout({self.spec!r}, nq={self.nq}, nk={self.nk}, heads={self.heads}, "
                f"block=({self.block_q}, {self.block_k}))")


def layout(spec, n, nk=None, heads=1, block=64, block_k=None, threads=0):
    """Builds the layout of `spec` (a pattern spec string, see patterns()) for n queries, nk keys
    (default n), `heads` heads, tiles of block x block_k (16, 32, 64 or 128). Bad specs and sizes
    raise ValueError with the CLI's message."""
    spec = str(spec)
    return Layout(_core.layout(spec, int(n), None if nk is None else int(nk), int(heads),
                               int(block), None if block_k is None else int(block_k),
                               int(threads)))


def select(spec, q, k, block=64, threads=0):
    """Resolves the content-based selectors of `spec` (patterns/README.md, "Selectors") on
    q [B, Hq, nq, d] and k [B, Hkv, nk, d] float32 arrays: a list of one Layout per batch (one
    Layout for every batch when the spec has no selector), usable wherever a Layout is. The
    selection is not differentiable: a training step selects on the current q and k and the
    backward runs on that fixed selection. stats() holds select_seconds and select_flops."""
    q, k = _float32(q, "q", False), _float32(k, "k", False)
    return [Layout(c) for c in _core.select(str(spec), q, k, int(block), int(threads))]


def _float32(x, what, convert):
    if convert and isinstance(x, np.ndarray) and x.dtype != np.float32:
        return x.astype(np.float32)
    if not isinstance(x, np.ndarray):
        if convert:
            return np.asarray(x, dtype=np.float32)
        raise ValueError(f"{what} is a {type(x).__name__}: spattn takes a NumPy float32 array "
                         "(or pass convert=True)")
    return x


def _as_layout(layout_or_spec, q, k, block=64):
    if isinstance(layout_or_spec, Layout):
        return layout_or_spec
    if isinstance(layout_or_spec, MaskMod):
        layout_or_spec = layout_or_spec.name
    if not isinstance(layout_or_spec, str):
        raise ValueError("layout_or_spec must be a spattn.Layout or a spec string, not "
                         f"{type(layout_or_spec).__name__}")
    if q.ndim < 2 or k.ndim < 2:
        raise ValueError("q and k must be [B, H, N, d], [H, N, d] or [N, d]")
    heads = q.shape[-3] if q.ndim >= 3 else 1
    return layout(layout_or_spec, q.shape[-2], k.shape[-2], heads=heads, block=block)


def alibi_slopes(heads):
    """The ALiBi paper's slopes for `heads` query heads: 2^(-8 (h + 1) / H) for H a power of
    two, the paper's interleaving otherwise (as `spattn run --alibi`)."""
    return _core.alibi_slopes(int(heads))


def _per_head(values, name):
    if values is None:
        return []
    try:
        return [float(x) for x in np.asarray(values, dtype=np.float64).reshape(-1)]
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a sequence of numbers (one per query head), not "
                         f"{type(values).__name__}") from None


def attention(q, k, v, layout_or_spec, scale=None, threads=0, convert=False, alibi=False,
              softcap=None, sinks=None, bias=None, kv_dtype="f32"):
    """Block-sparse flash attention. q and k [B, Hq or Hkv, n, d], v [B, Hkv, nk, d_v] float32
    (any strides, not copied; Hq a multiple of Hkv; d_v may differ from d, as in DeepSeek MLA's
    192/128), a Layout for (nq, nk, Hq or 1 heads) or a spec string. Returns
    (o [B, Hq, nq, d_v], lse [B, Hq, nq]) float32; a fully masked row has o = 0 and
    lse = -inf. scale defaults to 1/sqrt(d); threads = 0 uses every core (the result does not
    depend on it). Other dtypes are refused unless convert=True. Runs without the GIL.

    Score modifications (attention/README.md, "Score modifications"; attention_backward and
    reference take the same ones except bias): alibi=True adds -m_h |p - j| with the paper's
    slopes (alibi_slopes(Hq)), or alibi=[m_0, ..., m_{Hq-1}] with given slopes; softcap=C maps each scaled score s to
    C tanh(s / C) first; sinks=[one logit per query head] adds exp(sink_h) to each row's softmax
    denominator (a fully masked row then has o = 0 and lse = sink_h); bias=array adds a bias
    after soft-capping, with ALiBi: [Hq or 1, nq, nk] (one value per pair) or [Hq or 1, q_blocks,
    k_blocks] (one per tile of the layout).

    kv_dtype="bf16" or "int8" stores K and V narrow first (bfloat16 rounded to nearest even, or
    int8 with one scale max|x| / 127 per token) and runs the executor on them; queries and
    accumulation stay float32, so the result is that of attention on the rounded K and V."""
    q, k, v = (_float32(x, n, convert) for x, n in ((q, "q"), (k, "k"), (v, "v")))
    lay = _as_layout(layout_or_spec, q, k)
    return _core.attention(q, k, v, lay._core, scale, int(threads),
                           *_score_mod(q, alibi, softcap, sinks), bias, str(kv_dtype))


def _score_mod(q, alibi, softcap, sinks):
    """(slopes, softcap, sinks) for the core from the Python arguments."""
    heads = q.shape[-3] if q.ndim >= 3 else 1
    if alibi is True:
        slopes = alibi_slopes(heads)
    elif alibi is False or alibi is None:
        slopes = []
    else:
        slopes = _per_head(alibi, "alibi")
    cap = None if softcap is None else float(softcap)
    return slopes, cap, _per_head(sinks, "sinks")


def attention_backward(q, k, v, o, lse, d_o, layout_or_spec, scale=None, threads=0, alibi=False,
                       softcap=None, sinks=None):
    """Gradients (dq, dk, dv) of sum(o * d_o) for o, lse = attention(q, k, v, layout, scale, ...):
    the deterministic block-sparse flash backward (bitwise the same on any thread count). The
    score modifications must be the forward's; with sinks, a fourth array d_sinks [Hq] float32
    (the gradient of the sink logits) is returned."""
    lay = _as_layout(layout_or_spec, q, k)
    return _core.backward(q, k, v, o, lse, d_o, lay._core, scale, int(threads),
                          *_score_mod(q, alibi, softcap, sinks))


def reference(q, k, v, layout_or_spec, d_o=None, scale=None, alibi=False, softcap=None,
              sinks=None):
    """The dense double reference (materializes nq x nk; small sizes): float64 inputs, returns
    (o, lse) or, with d_o, (o, lse, dq, dk, dv) (and d_sinks [Hq] with sinks), all float64, from
    the textbook formulas. Score modifications as in attention()."""
    lay = _as_layout(layout_or_spec, q, k)
    return _core.reference(q, k, v, d_o, lay._core, scale, *_score_mod(q, alibi, softcap, sinks))


def patterns():
    """The pattern catalogue (`spattn patterns`): a list of dicts with name, summary, rule,
    convention, example and params (name, type, doc)."""
    return _core.patterns()


class MaskMod:
    """A FlexAttention-style mask_mod registered as a pattern; str(m) is its pattern name."""

    def __init__(self, name):
        self.name = name

    def __str__(self):
        return self.name

    def __or__(self, other):
        return f"{self.name} | {other}"

    def __ror__(self, other):
        return f"{other} | {self.name}"

    def __and__(self, other):
        return f"{self.name} & {other}"

    def __rand__(self, other):
        return f"{other} & {self.name}"


def from_mask_mod(fn, name=None, batch=0):
    """Registers FlexAttention's mask_mod `fn(b, h, q_idx, kv_idx) -> bool array` (vectorized:
    NumPy int64 arrays in, broadcast against each other) as a pattern. Its layout is built by
    evaluating fn tile by tile (a quadratic scan, reported as scanned in stats()); the returned
    MaskMod is usable wherever a spec is (spattn.layout(m, n), attention(q, k, v, m)) and composes
    with spec strings: m | "sink(4)", "causal & " + str(m). q_idx is the query index (0..nq-1) and
    kv_idx the key index, as in FlexAttention; b is `batch`."""
    return MaskMod(_core.register_mask_mod(fn, name, int(batch)))
