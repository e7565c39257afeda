"""spattn for PyTorch: sparse attention as a differentiable function of CPU tensors.

    import torch, spattn.torch as st
    q, k, v = (torch.randn(2, 4, 1024, 64, requires_grad=True) for _ in range(3))
    o = st.sparse_attention(q, k, v, "sliding(128) | sink(4)")   # [2, 4, 1024, 64]
    o.sum().backward()                                           # q.grad, k.grad, v.grad

float32 tensors run the block-sparse flash forward and the deterministic flash backward, with
no copies (tensors are viewed through NumPy with their strides). float64 tensors run the dense
double reference forward and backward (textbook formulas; small sizes), which is what
torch.autograd.gradcheck needs.

Score modifications (as spattn.attention): alibi=True or per-head slopes, softcap=C, and
sinks, a tensor [Hq] of learned sink logits (gpt-oss) whose gradient is returned when it
requires one, so sinks can be trained as a parameter.
"""
import numpy as np
import torch

import spattn as _sp

__all__ = ["sparse_attention", "SparseAttention"]


def _np(t, what):
    if not isinstance(t, torch.Tensor):
        raise ValueError(f"{what} is a {type(t).__name__}: sparse_attention takes torch tensors")
    if t.device.type != "cpu":
        raise ValueError(f"{what} is on {t.device}: spattn runs on CPU tensors")
    return t.detach().numpy()


def _sink_values(sinks):
    if sinks is None:
        return None
    if isinstance(sinks, torch.Tensor):
        return _np(sinks, "sinks")
    return sinks


class SparseAttention(torch.autograd.Function):
    """autograd.Function: forward(q, k, v, sinks, layout, scale, alibi, softcap) -> o; see
    sparse_attention."""

    @staticmethod
    def forward(ctx, q, k, v, sinks, layout, scale, alibi, softcap):
        qn, kn, vn = _np(q, "q"), _np(k, "k"), _np(v, "v")
        mods = dict(alibi=alibi, softcap=softcap, sinks=_sink_values(sinks))
        dtypes = {q.dtype, k.dtype, v.dtype}
        if dtypes == {torch.float64}:
            o, lse = _sp.reference(qn, kn, vn, layout, scale=scale, **mods)
        elif dtypes == {torch.float32}:
            o, lse = _sp.attention(qn, kn, vn, layout, scale=scale, **mods)
        else:
            raise ValueError(f"q, k and v have dtypes {q.dtype}, {k.dtype}, {v.dtype}: they must "
                             "all be torch.float32 (the flash executor) or all torch.float64 "
                             "(the double reference)")
        o, lse = torch.from_numpy(o), torch.from_numpy(lse)
        ctx.save_for_backward(q, k, v, o, lse)
        ctx.layout, ctx.scale, ctx.mods = layout, scale, mods
        ctx.sinks_dtype = sinks.dtype if isinstance(sinks, torch.Tensor) else None
        return o

    @staticmethod
    def backward(ctx, d_o):
        q, k, v, o, lse = ctx.saved_tensors
        qn, kn, vn = q.detach().numpy(), k.detach().numpy(), v.detach().numpy()
        don = d_o.detach().numpy()
        if q.dtype == torch.float64:
            grads = _sp.reference(qn, kn, vn, ctx.layout, d_o=np.asarray(don), scale=ctx.scale,
                                  **ctx.mods)[2:]
        else:
            grads = _sp.attention_backward(qn, kn, vn, o.numpy(), lse.numpy(),
                                           don.astype(np.float32, copy=False), ctx.layout,
                                           scale=ctx.scale, **ctx.mods)
        dq, dk, dv = (torch.from_numpy(g) for g in grads[:3])
        d_sinks = None
        if ctx.sinks_dtype is not None and ctx.needs_input_grad[3]:
            d_sinks = torch.from_numpy(np.asarray(grads[3])).to(ctx.sinks_dtype)
        return dq, dk, dv, d_sinks, None, None, None, None


def sparse_attention(q, k, v, layout_or_spec, scale=None, alibi=False, softcap=None, sinks=None):
    """o = softmax(scale q k^T over the kept pairs) v. q [B, Hq, nq, d], k and v [B, Hkv, nk, d]
    CPU tensors (float32: flash executor; float64: double reference), any strides; Hq a multiple
    of Hkv. layout_or_spec: a spattn.Layout for (nq, nk, Hq or 1 heads) or a spec string (built
    for these sizes). Returns o [B, Hq, nq, d]; a fully masked row is 0 with zero gradient.
    alibi, softcap and sinks: the score modifications of spattn.attention; sinks may be a
    tensor [Hq] that requires grad (its values are used as float32)."""
    if not isinstance(layout_or_spec, _sp.Layout):
        layout_or_spec = _sp._as_layout(layout_or_spec, _np(q, "q"), _np(k, "k"))
    return SparseAttention.apply(q, k, v, sinks, layout_or_spec, scale, alibi, softcap)
