# spattn.torch.sparse_attention: gradcheck in double through the reference path, and the float
# path's forward and gradients against the double ones.
import numpy as np
import pytest

torch = pytest.importorskip("torch")
import spattn  # noqa: E402
import spattn.torch as st  # noqa: E402


def test_gradcheck_double():
    torch.manual_seed(0)
    q = torch.randn(1, 2, 12, 4, dtype=torch.float64, requires_grad=True)
    k = torch.randn(1, 1, 12, 4, dtype=torch.float64, requires_grad=True)
    v = torch.randn(1, 1, 12, 4, dtype=torch.float64, requires_grad=True)
    lay = spattn.layout("sliding(4) | sink(1)", n=12, heads=2, block=16)
    assert torch.autograd.gradcheck(lambda a, b, c: st.sparse_attention(a, b, c, lay), (q, k, v))


def test_float_path_matches_double_path():
    torch.manual_seed(1)
    shape_q, shape_kv = (2, 4, 96, 16), (2, 2, 96, 16)
    q64 = torch.randn(shape_q, dtype=torch.float64)
    k64, v64 = torch.randn(shape_kv, dtype=torch.float64), torch.randn(shape_kv, dtype=torch.float64)
    w = torch.randn(shape_q, dtype=torch.float64)
    grads = {}
    for dt in (torch.float64, torch.float32):
        q, k, v = (x.detach().to(dt).clone().requires_grad_() for x in (q64, k64, v64))
        o = st.sparse_attention(q, k, v, "causal & window(20)")
        (o * w.to(dt)).sum().backward()
        grads[dt] = [o.detach().double()] + [x.grad.double() for x in (q, k, v)]
    for a, b in zip(grads[torch.float32], grads[torch.float64]):
        assert (a - b).abs().max() <= 2e-5 * b.abs().max()


def test_bshd_views_and_errors():
    x = torch.randn(1, 64, 2, 8, requires_grad=True)  # [B, N, H, d]
    o = st.sparse_attention(x.transpose(1, 2), x.transpose(1, 2), x.transpose(1, 2), "causal")
    o.sum().backward()
    assert x.grad.shape == x.shape and torch.isfinite(x.grad).all()
    with pytest.raises(ValueError, match="dtypes"):
        st.sparse_attention(x.half(), x.half(), x.half(), "causal")
