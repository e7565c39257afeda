# The spattn Python module: layouts against the CLI's counts and brute force, attention and the
# backward against the double reference, zero-copy strided inputs, and Python exceptions with
# the C++ library's messages for bad input.
import threading

import numpy as np
import pytest

import spattn


def qkv(rng, b, hq, hkv, nq, nk, d, dtype=np.float32):
    return (rng.standard_normal((b, hq, nq, d)).astype(dtype),
            rng.standard_normal((b, hkv, nk, d)).astype(dtype),
            rng.standard_normal((b, hkv, nk, d)).astype(dtype))


def causal_sliding(w, nq, nk):
    i = np.arange(nq)[:, None] + (nk - nq)
    j = np.arange(nk)[None, :]
    return (j <= i) & (i - j < w)


def test_layout_counts_match_brute_force():
    lay = spattn.layout("sliding(20) | sink(3)", n=200, heads=2, block=32)
    dense = lay.dense_mask()
    want = causal_sliding(20, 200, 200) | (np.arange(200)[None, :] < 3)  # sink: j < s
    assert dense.shape == (2, 200, 200) and dense.dtype == np.uint8
    assert (dense[0] == want).all() and (dense[1] == want).all()
    st = lay.stats()
    assert st["layout"]["allowed_pairs"] == int(want.sum()) * 2
    assert st["layout"]["build"] == "analytic"
    bm = lay.block_mask()
    assert bm.shape == (2, 7, 7)
    for r in range(7):
        for c in range(7):
            assert bm[0, r, c] == dense[0, r * 32:(r + 1) * 32, c * 32:(c + 1) * 32].any()


def test_to_flex_matches_block_mask():
    lay = spattn.layout("heads(0: window(5); 1: causal)", n=300, heads=2, block=64)
    f = lay.to_flex()
    dense = lay.dense_mask()
    qb, kb = 5, 5
    assert f["BLOCK_SIZE"] == (64, 64)
    for h in range(2):
        for r in range(qb):
            partial = set(f["kv_indices"][0, h, r, :f["kv_num_blocks"][0, h, r]])
            full = set(f["full_kv_indices"][0, h, r, :f["full_kv_num_blocks"][0, h, r]])
            for c in range(kb):
                tile = dense[h, r * 64:(r + 1) * 64, c * 64:(c + 1) * 64]
                assert (c in full) == bool(tile.all())
                assert (c in partial) == bool(tile.any() and not tile.all())
        for c in range(kb):
            qs = set(f["q_indices"][0, h, c, :f["q_num_blocks"][0, h, c]]) | set(
                f["full_q_indices"][0, h, c, :f["full_q_num_blocks"][0, h, c]])
            assert qs == {r for r in range(qb) if dense[h, r * 64:(r + 1) * 64,
                                                        c * 64:(c + 1) * 64].any()}


def test_attention_and_backward_match_reference(rng):
    q, k, v = qkv(rng, 2, 4, 2, 100, 130, 16)
    d_o = rng.standard_normal(q.shape).astype(np.float32)
    lay = spattn.layout("causal | sink(2)", n=100, nk=130, heads=4, block=32)
    o, lse = spattn.attention(q, k, v, lay)
    dq, dk, dv = spattn.attention_backward(q, k, v, o, lse, d_o, lay)
    f64 = lambda x: x.astype(np.float64)
    ro, rl, rdq, rdk, rdv = spattn.reference(f64(q), f64(k), f64(v), lay, d_o=f64(d_o))
    for got, want in ((o, ro), (dq, rdq), (dk, rdk), (dv, rdv)):
        assert np.abs(got - want).max() <= 2e-5 * np.abs(want).max()
    assert np.abs(lse - rl).max() < 1e-5 * np.abs(rl).max()


def test_strided_inputs_are_views_and_agree(rng):
    # [B, N, H, d] buffers passed as [B, H, N, d] views: no copy, the same result.
    qb, kb, vb = (rng.standard_normal((1, 256, 4, 32)).astype(np.float32) for _ in range(3))
    qt, kt, vt = (x.transpose(0, 2, 1, 3) for x in (qb, kb, vb))
    assert not qt.flags["C_CONTIGUOUS"]
    o1, l1 = spattn.attention(qt, kt, vt, "sliding(64)")
    o2, l2 = spattn.attention(*(np.ascontiguousarray(x) for x in (qt, kt, vt)), "sliding(64)")
    assert np.array_equal(o1, o2) and np.array_equal(l1, l2)
    # A view with a head-dim stride (every other element).
    wide = rng.standard_normal((1, 4, 256, 64)).astype(np.float32)
    o3, _ = spattn.attention(wide[..., ::2], kt, vt, "sliding(64)")
    o4, _ = spattn.attention(np.ascontiguousarray(wide[..., ::2]), kt, vt, "sliding(64)")
    assert np.array_equal(o3, o4)


def test_backward_bitwise_equal_over_threads(rng):
    q, k, v = qkv(rng, 1, 4, 1, 512, 512, 32)
    d_o = rng.standard_normal(q.shape).astype(np.float32)
    lay = spattn.layout("sliding(100) | global(1)", n=512, heads=4)
    o, lse = spattn.attention(q, k, v, lay, threads=1)
    one = spattn.attention_backward(q, k, v, o, lse, d_o, lay, threads=1)
    two = spattn.attention_backward(q, k, v, o, lse, d_o, lay, threads=2)
    for a, b in zip(one, two):
        assert np.array_equal(a, b)


def test_gil_released_during_attention(rng):
    # While one thread is inside spattn.attention, the main thread keeps running Python: its
    # longest pause is far shorter than the call (with the GIL held it would span the call).
    import time
    q, k, v = qkv(rng, 1, 8, 8, 2048, 2048, 64)
    want, _ = spattn.attention(q, k, v, "dense", threads=1)
    box = {}

    def work():
        start = time.perf_counter()
        box["o"] = spattn.attention(q, k, v, "dense", threads=1)[0]
        box["span"] = (start, time.perf_counter())

    t = threading.Thread(target=work)
    stamps = []
    t.start()
    while t.is_alive():
        stamps.append(time.perf_counter())
    t.join()
    start, end = box["span"]
    inside = [s for s in stamps if start <= s <= end]
    gaps = np.diff([start] + inside + [end])
    assert gaps.max() < 0.5 * (end - start)
    assert np.array_equal(box["o"], want)


@pytest.mark.parametrize("bad, message", [
    (lambda q: q.astype(np.float64), "q has dtype float64: spattn takes float32"),
    (lambda q: q[0, 0, 0], "q has rank 1"),
    (lambda q: q[:, :, :50], "tokens"),
    (lambda q: np.where(np.arange(64) == 7, np.nan, q).astype(np.float32),
     "q: element [0, 0, 0, 7] (flat index 7) is nan: inputs must be finite"),
])
def test_bad_input_raises_value_error(rng, bad, message):
    q, k, v = qkv(rng, 1, 2, 2, 64, 64, 64)
    lay = spattn.layout("causal", n=64, heads=2)
    with pytest.raises(ValueError, match=None) as e:
        spattn.attention(bad(q), k, v, lay)
    assert message in str(e.value)


def test_errors_carry_the_cli_messages(rng):
    with pytest.raises(ValueError, match="unknown pattern 'slidin': did you mean 'sliding'"):
        spattn.layout("slidin(3)", n=10)
    q, k, v = qkv(rng, 1, 1, 1, 64, 64, 8)
    other = spattn.layout("causal", n=128)
    with pytest.raises(ValueError, match="128"):
        spattn.attention(q, k, v, other)
    with pytest.raises(ValueError, match="block"):
        spattn.layout("causal", n=64, block=48)
    with pytest.raises(ValueError, match="max_elements"):
        spattn.layout("causal", n=4096).dense_mask(max_elements=1000)
    assert spattn.attention(q.astype(np.float64), k, v, "causal", convert=True)[0].dtype == \
        np.float32


def test_patterns_lists_the_catalogue():
    names = {p["name"] for p in spattn.patterns()}
    assert {"causal", "sliding", "bigbird", "dense"} <= names
    sliding = next(p for p in spattn.patterns() if p["name"] == "sliding")
    assert sliding["rule"] and sliding["params"][0]["name"]


def test_from_mask_mod_is_scanned_exact_and_composes(rng):
    m = spattn.from_mask_mod(lambda b, h, qi, ki: ((qi - ki) % 5 == 0) & (ki <= qi))
    lay = spattn.layout(m | "sink(2)", n=150, block=32)
    i, j = np.arange(150)[:, None], np.arange(150)[None, :]
    want = (((i - j) % 5 == 0) & (j <= i)) | (j < 2)
    assert (lay.dense_mask()[0] == want).all()
    st = lay.stats()["layout"]
    assert st["build"] == "scanned" and st["scanned_part"] == m.name
    q, k, v = qkv(rng, 1, 1, 1, 150, 150, 8)
    o, _ = spattn.attention(q, k, v, "sink(2) | " + str(m))
    ro, _ = spattn.reference(q.astype(np.float64), k.astype(np.float64), v.astype(np.float64),
                             lay)
    assert np.abs(o - ro).max() < 1e-5 * np.abs(ro).max()


def test_budget_refusal_is_memory_error():
    with pytest.raises(MemoryError, match="layout memory budget"):
        spattn.layout("dense", n=2 ** 40, heads=64)  # petabytes on any machine


def test_select_matches_brute_force_topk():
    # oracle_topk(5): per query the 5 largest q_i . k_j among j <= i (ties to the lower key),
    # computed here by brute force in double; one layout per batch.
    rng = np.random.default_rng(7)
    q = rng.standard_normal((2, 2, 40, 8)).astype(np.float32)
    k = rng.standard_normal((2, 2, 40, 8)).astype(np.float32)
    lays = spattn.select("oracle_topk(5)", q, k, block=16)
    assert len(lays) == 2
    for b, lay in enumerate(lays):
        got = lay.dense_mask()
        want = np.zeros_like(got)
        for h in range(2):
            s = q[b, h].astype(np.float64) @ k[b, h].astype(np.float64).T
            for i in range(40):
                order = sorted(range(i + 1), key=lambda j: (-s[i, j], j))[:5]
                want[h, i, order] = 1
        assert (got == want).all()
        o, _ = spattn.attention(q[b:b + 1], k[b:b + 1], k[b:b + 1], lay)
        assert np.isfinite(o).all()
    with pytest.raises(ValueError, match="float32"):
        spattn.select("oracle_topk(5)", q.astype(np.float64), k, block=16)
