# Narrow K/V from Python: attention(..., kv_dtype="bf16") equals attention on K and V rounded to
# bfloat16 in NumPy (round to nearest even, written out here), and both match the double
# reference on the rounded values; int8 stays within its rounding of the float32 result.
import numpy as np
import pytest

import spattn


def to_bf16(x):
    """float32 -> nearest bfloat16 (ties to even) -> float32, by bit arithmetic."""
    b = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    rounded = (b + 0x7FFF + ((b >> 16) & 1)) & 0xFFFF0000
    return rounded.astype(np.uint32).view(np.float32).reshape(x.shape)


@pytest.mark.parametrize("spec", ["causal", "sliding(20) | sink(2)"])
def test_bf16_is_attention_on_rounded_kv(rng, spec):
    q, k, v = (rng.standard_normal((1, 2, 96, 32)).astype(np.float32) for _ in range(3))
    o, lse = spattn.attention(q, k, v, spec, kv_dtype="bf16")
    kr, vr = to_bf16(k), to_bf16(v)
    assert not np.array_equal(kr, k)
    o2, lse2 = spattn.attention(q, kr, vr, spec)
    np.testing.assert_array_equal(o, o2)
    np.testing.assert_array_equal(lse, lse2)
    ro, _ = spattn.reference(q.astype(np.float64), kr.astype(np.float64), vr.astype(np.float64),
                             spec)
    assert np.max(np.abs(o - ro)) <= 1e-5 * max(1.0, np.max(np.abs(ro)))


def test_int8_within_its_rounding_and_bad_dtype(rng):
    q, k, v = (rng.standard_normal((1, 2, 64, 32)).astype(np.float32) for _ in range(3))
    o, _ = spattn.attention(q, k, v, "causal")
    o8, _ = spattn.attention(q, k, v, "causal", kv_dtype="int8")
    err = np.max(np.abs(o8 - o)) / np.max(np.abs(o))
    assert 0 < err < 5e-2
    with pytest.raises(ValueError, match="fp8"):
        spattn.attention(q, k, v, "causal", kv_dtype="fp8")
