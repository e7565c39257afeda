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


def test_gradcheck_double_score_mods():
    # ALiBi, soft-capping and learned sinks through the double reference: q, k, v by gradcheck's
    # default step; the sinks (used as float32 values) with a step of 2^-12, exact in float32.
    torch.manual_seed(2)
    q = torch.randn(1, 2, 10, 4, dtype=torch.float64, requires_grad=True)
    k = torch.randn(1, 1, 10, 4, dtype=torch.float64, requires_grad=True)
    v = torch.randn(1, 1, 10, 4, dtype=torch.float64, requires_grad=True)
    sinks = torch.tensor([0.5, -0.25], dtype=torch.float64, requires_grad=True)
    lay = spattn.layout("sliding(4) | sink(1)", n=10, heads=2, block=16)
    mods = dict(alibi=[0.25, 0.5], softcap=1.5)
    assert torch.autograd.gradcheck(
        lambda a, b, c: st.sparse_attention(a, b, c, lay, sinks=sinks.detach(), **mods), (q, k, v))
    assert torch.autograd.gradcheck(
        lambda s: st.sparse_attention(q.detach(), k.detach(), v.detach(), lay, sinks=s, **mods),
        (sinks,), eps=2.0**-12)


def test_float_path_score_mods_match_double_path():
    torch.manual_seed(3)
    shape_q, shape_kv = (2, 4, 80, 16), (2, 2, 80, 16)
    q64 = torch.randn(shape_q, dtype=torch.float64)
    k64, v64 = torch.randn(shape_kv, dtype=torch.float64), torch.randn(shape_kv, dtype=torch.float64)
    s64 = torch.tensor([0.5, -1.0, 2.0, 0.0], dtype=torch.float64)
    w = torch.randn(shape_q, dtype=torch.float64)
    grads = {}
    for dt in (torch.float64, torch.float32):
        q, k, v, s = (x.detach().to(dt).clone().requires_grad_() for x in (q64, k64, v64, s64))
        o = st.sparse_attention(q, k, v, "causal & window(20)", alibi=True, softcap=2.0, sinks=s)
        (o * w.to(dt)).sum().backward()
        assert s.grad.dtype == dt and s.grad.shape == (4,)
        grads[dt] = [o.detach().double()] + [x.grad.double() for x in (q, k, v, s)]
    for a, b in zip(grads[torch.float32], grads[torch.float64]):
        assert (a - b).abs().max() <= 2e-5 * b.abs().max()


def test_backward_refuses_sinks_of_wrong_length():
    q = torch.randn(1, 2, 16, 8, requires_grad=True)
    with pytest.raises(ValueError, match="sink logit list has 3 values but there are 2 query"):
        st.sparse_attention(q, q, q, "causal", sinks=torch.zeros(3))
