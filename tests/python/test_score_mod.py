# Score modifications from Python (ALiBi, soft-capping, learned sinks, scale) and a value head
# dim d_v != d against the formulas of attention/README.md written out in NumPy double, on a
# layout's dense mask.
import numpy as np
import pytest

import spattn


def modified_attention(q, k, v, mask, scale, slopes, cap, sinks, bias=None):
    """Dense double attention with the modifications: z = C tanh(s / C) (cap), then
    z -= m_h |p - j| (slopes) and z += bias[h or 0] ([H or 1, nq, nk]), then the mask; sinks add
    exp(sink_h) to the denominator."""
    q, k, v = (x.astype(np.float64) for x in (q, k, v))
    B, H, nq, d = q.shape
    group = H // k.shape[1]
    nk = k.shape[2]
    pos = np.arange(nq)[:, None] + (nk - nq)
    keys = np.arange(nk)[None, :]
    o = np.zeros((B, H, nq, v.shape[-1]))
    lse = np.zeros((B, H, nq))
    for b in range(B):
        for h in range(H):
            s = scale * q[b, h] @ k[b, h // group].T
            if cap is not None:
                s = cap * np.tanh(s / cap)
            if slopes is not None:
                s = s - slopes[h] * np.abs(pos - keys)
            if bias is not None:
                s = s + bias[h if bias.shape[0] > 1 else 0]
            s = np.where(mask[h] > 0, s, -np.inf)
            m = np.max(s, axis=1, keepdims=True)
            if sinks is not None:
                m = np.maximum(m, sinks[h])
            m = np.where(np.isfinite(m), m, 0.0)
            e = np.exp(s - m)
            den = e.sum(axis=1, keepdims=True)
            if sinks is not None:
                den = den + np.exp(sinks[h] - m)
            with np.errstate(invalid="ignore", divide="ignore"):
                o[b, h] = np.where(den > 0, (e @ v[b, h // group]) / np.where(den > 0, den, 1), 0)
                lse[b, h] = np.where(den[:, 0] > 0, np.log(den[:, 0]) + m[:, 0], -np.inf)
    return o, lse


@pytest.mark.parametrize("spec", ["causal", "sliding(20) | sink(3)", "bigbird(block=16, window=3, global=1, random=1, seed=5)"])
def test_modifications_match_the_formulas(rng, spec):
    B, H, Hkv, nq, nk, d = 2, 4, 2, 70, 101, 16
    q = rng.standard_normal((B, H, nq, d), dtype=np.float32)
    k = rng.standard_normal((B, Hkv, nk, d), dtype=np.float32)
    v = rng.standard_normal((B, Hkv, nk, d), dtype=np.float32)
    lay = spattn.layout(spec, n=nq, nk=nk, heads=H, block=16)
    mask = lay.dense_mask(max_elements=10**6)
    scale = 0.3
    slopes = np.array(spattn.alibi_slopes(H))
    sinks = np.array([0.5, -1.0, 2.0, 0.0])
    cases = [
        dict(alibi=True), dict(softcap=2.5), dict(sinks=sinks),
        dict(alibi=True, softcap=2.5, sinks=sinks), dict(alibi=[0.1, 0.0, 0.3, 0.05]),
    ]
    for kw in cases:
        o, lse = spattn.attention(q, k, v, lay, scale=scale, **kw)
        want_slopes = slopes if kw.get("alibi") is True else (
            np.array(kw["alibi"]) if "alibi" in kw else None)
        wo, wl = modified_attention(q, k, v, mask, scale, want_slopes, kw.get("softcap"),
                                    kw.get("sinks"))
        err = np.linalg.norm(o - wo) / np.linalg.norm(wo)
        assert err < 1e-5, (kw, err)
        finite = np.isfinite(wl)
        assert np.array_equal(finite, np.isfinite(lse)), kw
        assert np.max(np.abs(lse[finite] - wl[finite])) < 1e-4, kw


def test_paper_slopes():
    # H = 8: 2^(-1), ..., 2^(-8); H = 6: the 4 slopes of H = 4, then slopes 0 and 2 of H = 8.
    assert spattn.alibi_slopes(8) == [2.0 ** -(i + 1) for i in range(8)]
    assert spattn.alibi_slopes(6) == [0.25, 0.0625, 0.015625, 0.00390625, 0.5, 0.125]


def test_sinks_on_a_fully_masked_row(rng):
    # nq > nk: the first queries sit before key 0 under causal, so they keep nothing.
    q = rng.standard_normal((1, 2, 8, 16), dtype=np.float32)
    k = rng.standard_normal((1, 2, 8, 16), dtype=np.float32)
    lay = spattn.layout("sliding(2) - sliding(2)", n=8, heads=2)
    o, lse = spattn.attention(q, k, k, lay, sinks=[1.5, -2.0])
    assert np.all(o == 0)
    assert np.allclose(lse[0, 0], 1.5) and np.allclose(lse[0, 1], -2.0)


@pytest.mark.parametrize("kw, message", [
    (dict(softcap=0.0), "softcap"),
    (dict(softcap=-1.0), "softcap"),
    (dict(sinks=[1.0]), "sink logit list has 1 values"),
    (dict(sinks=[float("nan"), 0.0]), "sink"),
    (dict(alibi=[0.5, 0.25, 0.1]), "slope list has 3 values"),
    (dict(scale=0.0), "scale = 0"),
    (dict(scale=-0.5), "scale = -0.5"),
    (dict(scale=float("inf")), "scale = inf"),
    (dict(scale=float("nan")), "scale = nan"),
])
def test_bad_modifications_raise_value_error(rng, kw, message):
    q = rng.standard_normal((1, 2, 16, 8), dtype=np.float32)
    with pytest.raises(ValueError, match=message):
        spattn.attention(q, q, q, "causal", **kw)


@pytest.mark.parametrize("dv", [40, 8])
def test_value_head_dim(rng, dv):
    # v and o with d_v, q and k with d; GQA 4:2, nq < nk, with and without modifications.
    B, H, Hkv, nq, nk, d = 1, 4, 2, 50, 90, 24
    q = rng.standard_normal((B, H, nq, d), dtype=np.float32)
    k = rng.standard_normal((B, Hkv, nk, d), dtype=np.float32)
    v = rng.standard_normal((B, Hkv, nk, dv), dtype=np.float32)
    lay = spattn.layout("sliding(20) | sink(3)", n=nq, nk=nk, heads=H, block=16)
    mask = lay.dense_mask(max_elements=10**6)
    for kw in [dict(), dict(alibi=True, softcap=3.0, scale=0.2)]:
        o, lse = spattn.attention(q, k, v, lay, **kw)
        assert o.shape == (B, H, nq, dv)
        slopes = np.array(spattn.alibi_slopes(H)) if kw.get("alibi") else None
        wo, wl = modified_attention(q, k, v, mask, kw.get("scale", 1 / np.sqrt(d)), slopes,
                                    kw.get("softcap"), None)
        assert np.linalg.norm(o - wo) / np.linalg.norm(wo) < 1e-5, kw
        assert np.max(np.abs(lse - wl)) < 1e-4, kw
    with pytest.raises(ValueError, match="d_v"):
        spattn.attention(q, k, np.zeros((B, Hkv, nk, 300), dtype=np.float32), lay)


def test_bias_per_pair_and_per_tile(rng):
    B, H, Hkv, nq, nk, d = 1, 4, 2, 40, 70, 16
    q = rng.standard_normal((B, H, nq, d), dtype=np.float32)
    k = rng.standard_normal((B, Hkv, nk, d), dtype=np.float32)
    v = rng.standard_normal((B, Hkv, nk, d), dtype=np.float32)
    lay = spattn.layout("sliding(24) | strided(9)", n=nq, nk=nk, heads=H, block=16)
    mask = lay.dense_mask(max_elements=10**6)
    per_pair = rng.standard_normal((H, nq, nk)).astype(np.float32)
    per_tile = rng.standard_normal((1, 3, 5)).astype(np.float32)  # ceil(40/16), ceil(70/16)
    expanded = np.repeat(np.repeat(per_tile, 16, axis=1), 16, axis=2)[:, :nq, :nk]
    for given, want in [(per_pair, per_pair), (per_tile, expanded)]:
        o, lse = spattn.attention(q, k, v, lay, bias=given, softcap=3.0, alibi=True)
        wo, wl = modified_attention(q, k, v, mask, 1 / np.sqrt(d), np.array(spattn.alibi_slopes(H)),
                                    3.0, None, bias=want.astype(np.float64))
        assert np.linalg.norm(o - wo) / np.linalg.norm(wo) < 1e-5
        finite = np.isfinite(wl)
        assert np.max(np.abs(lse[finite] - wl[finite])) < 1e-4
    with pytest.raises(ValueError, match=r"shape \[4, 40, 69\] is not allowed"):
        spattn.attention(q, k, v, lay, bias=per_pair[:, :, :69])
