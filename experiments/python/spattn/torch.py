"""spattn for PyTorch: sparse attention as a differentiable function of CPU tensors.

    import torch, spattn.torch as st
    q, k, v = (torch.randn(2, 4, 1024, 64, requires_grad=True) for _ in range(3))
    o = st.sparse_attention(q, k, v, "sliding(128) | sink(4)")   # [2, 4, 1024, 64]
    o.sum().backward()                                           # q.grad, k.grad, v.grad

float32 tensors run the block-sparse flash forward and the deterministic flash backward, with
no copies (tensors are viewed through NumPy with their strides). float64 tensors run the dense
double reference forward and backward (textbook formulas; small sizes), which is what
torch.autograd.gradcheck needs.
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


class SparseAttention(torch.autograd.Function):
    """autograd.Function: forward(q, k, v, layout, scale) -> o; see sparse_attention."""

    @staticmethod
    def forward(ctx, q, k, v, layout, scale):
        qn, kn, vn = _np(q, "q"), _np(k, "k"), _np(v, "v")
        dtypes = {q.dtype, k.dtype, v.dtype}
        if dtypes == {torch.float64}:
            o, lse = _sp.reference(qn, kn, vn, layout, scale=scale)
        elif dtypes == {torch.float32}:
            o, lse = _sp.attention(qn, kn, vn, layout, scale=scale)
        else:
            raise ValueError(f"q, k and v have dtypes {q.dtype}, {k.dtype}, {v.dtype}: they must "
                             "all be torch.float32 (the flash executor) or all torch.float64 "
                             "(the double reference)")
        o, lse = torch.from_numpy(o), torch.from_numpy(lse)
        ctx.save_for_backward(q, k, v, o, lse)
        ctx.layout, ctx.scale = layout, scale
        return o

    @staticmethod
    def backward(ctx, d_o):
        q, k, v, o, lse = ctx.saved_tensors
        qn, kn, vn = q.detach().numpy(), k.detach().numpy(), v.detach().numpy()
        don = d_o.detach().numpy()
        if q.dtype == torch.float64:
            _, _, dq, dk, dv = _sp.reference(qn, kn, vn, ctx.layout, d_o=np.asarray(don),
                                             scale=ctx.scale)
        else:
            dq, dk, dv = _sp.attention_backward(qn, kn, vn, o.numpy(), lse.numpy(),
                                                don.astype(np.float32, copy=False), ctx.layout,
                                                scale=ctx.scale)
        return torch.from_numpy(dq), torch.from_numpy(dk), torch.from_numpy(dv), None, None


def sparse_attention(q, k, v, layout_or_spec, scale=None):
    """o = softmax(scale q k^T over the kept pairs) v. q [B, Hq, nq, d], k and v [B, Hkv, nk, d]
    CPU tensors (float32: flash executor; float64: double reference), any strides; Hq a multiple
    of Hkv. layout_or_spec: a spattn.Layout for (nq, nk, Hq or 1 heads) or a spec string (built
    for these sizes). Returns o [B, Hq, nq, d]; a fully masked row is 0 with zero gradient."""
    if not isinstance(layout_or_spec, _sp.Layout):
        layout_or_spec = _sp._as_layout(layout_or_spec, _np(q, "q"), _np(k, "k"))
    return SparseAttention.apply(q, k, v, layout_or_spec, scale)
