"""SciPy-style functions against ``scipy.signal`` on every backend."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal as ss
from hypothesis import given, settings
from hypothesis import strategies as st

from ._helpers import assert_close, default_int, error_bound, n_examples, xp_dtype

FUNCS = {
    "correlate": ss.correlate,
    "convolve": ss.convolve,
    "correlate2d": ss.correlate2d,
    "convolve2d": ss.convolve2d,
}
DTYPES = ["float64", "float32", "complex128", "complex64", "int8", "int16", "int64", "uint8"]


def _data(rng: np.random.Generator, shape, dtype: str) -> np.ndarray:
    if dtype.startswith("int") or dtype.startswith("uint"):
        info = np.iinfo(dtype)
        lo, hi = max(info.min, -20), min(info.max, 20)
        return rng.integers(lo, hi + 1, size=shape).astype(dtype)
    a = rng.standard_normal(shape)
    if dtype.startswith("complex"):
        a = a + 1j * rng.standard_normal(shape)
    return a.astype(dtype)


def _expected(name, a, b, mode, boundary=None, fillvalue=0):
    """float64/complex128 (or exact int64) SciPy oracle."""
    if np.issubdtype(a.dtype, np.integer):
        a64, b64 = a.astype(np.int64), b.astype(np.int64)
    else:
        wide = np.complex128 if np.iscomplexobj(a) or np.iscomplexobj(b) else np.float64
        a64, b64 = a.astype(wide), b.astype(wide)
    if name in ("correlate2d", "convolve2d"):
        return FUNCS[name](a64, b64, mode, boundary, fillvalue)
    return FUNCS[name](a64, b64, mode, method="direct")


def _narrow(backend, dtype: str) -> str:
    """The dtype the backend really holds (JAX without x64 narrows 64-bit)."""
    if backend.has_float64:
        return dtype
    # int16 products could overflow JAX's int32 accumulator: refused (tested below)
    narrow = {"float64": "float32", "complex128": "complex64", "int64": "int32", "int16": "int8"}
    return narrow.get(dtype, dtype)


def _result_dtype(backend, dtype: str):
    if dtype.startswith(("int", "uint")):
        return default_int(backend)
    return xp_dtype(backend, dtype)


@st.composite
def signal_cases(draw):
    name = draw(st.sampled_from(sorted(FUNCS)))
    ndim = 2 if name.endswith("2d") else draw(st.integers(1, 3))
    s1 = tuple(draw(st.lists(st.integers(1, 7), min_size=ndim, max_size=ndim)))
    s2 = tuple(draw(st.lists(st.integers(1, 6), min_size=ndim, max_size=ndim)))
    mode = draw(st.sampled_from(["full", "same", "valid"]))
    if mode == "valid" and not (
        all(a >= b for a, b in zip(s1, s2)) or all(b >= a for a, b in zip(s1, s2))
    ):
        s2 = tuple(min(a, b) for a, b in zip(s1, s2))
    dtype = draw(st.sampled_from(DTYPES))
    method = draw(st.sampled_from(["auto", "direct", "fft"]))
    boundary = draw(st.sampled_from(["fill", "wrap", "symm", "circular", "symmetric"]))
    fill = draw(st.sampled_from([0, 2])) if boundary == "fill" else 0
    seed = draw(st.integers(0, 2**31 - 1))
    return name, s1, s2, mode, dtype, method, boundary, fill, seed


@settings(max_examples=n_examples(520))
@given(case=signal_cases())
def test_matches_scipy(backend, pc, case):
    name, s1, s2, mode, dtype, method, boundary, fill, seed = case
    dtype = _narrow(backend, dtype)
    rng = np.random.default_rng(seed)
    a, b = _data(rng, s1, dtype), _data(rng, s2, dtype)
    if name.endswith("2d"):
        got = getattr(pc, name)(a, b, mode, boundary, fill)
        expected = _expected(name, a, b, mode, boundary, fill)
    else:
        exact_fft = dtype in ("int8", "uint8", "int16") and backend.has_float64
        if method == "fft" and dtype.startswith(("int", "uint")) and not exact_fft:
            method = "direct"  # not provably exact: refused (tested separately)
        got = getattr(pc, name)(a, b, mode, method)
        expected = _expected(name, a, b, mode)
    bound = error_bound(a, b, np.dtype(dtype), expected.shape)
    if name.endswith("2d") and fill:
        bound *= 1 + abs(fill)
    assert_close(backend, got, expected, dtype=_result_dtype(backend, dtype), bound=bound)


def test_seed_example(backend, pc):
    window = np.array([[1, 2, 3], [4, 5, 6], [7, 8, 9]], dtype=np.float64)
    kernel = np.array([[1, 0, -1]] * 3, dtype=np.float64)
    got = pc.correlate(window, kernel, "valid")
    assert backend.to_numpy(got).tolist() == [[-6.0]]
    # the seed's worked example correlates the *flipped* kernel: -5 shows up
    # with the kernel [[1, 0, -1]] on a window whose columns differ by 5/3
    seed = np.array([[1, 2, 3], [4, 5, 6], [7, 8, 9]], dtype=np.float64)
    flipped = np.array([[1, 0, -1]] * 3, dtype=np.float64)
    assert backend.to_numpy(pc.convolve(seed, flipped, "valid")).tolist() == [[6.0]]


@pytest.mark.parametrize(("n", "k"), [(7, 2), (7, 4), (8, 2), (8, 3), (5, 6), (4, 7), (6, 6)])
@pytest.mark.parametrize("name", sorted(FUNCS))
def test_same_mode_even_kernels(backend, pc, name, n, k):
    """N-d and 2-d ``same`` windows differ for even kernels, as in SciPy."""
    rng = np.random.default_rng(n * 10 + k)
    a = rng.standard_normal((3, n))
    b = rng.standard_normal((2, k))
    got = getattr(pc, name)(a, b, "same")
    expected = FUNCS[name](a, b, "same")
    assert_close(
        backend,
        got,
        expected,
        dtype=xp_dtype(backend, "float64"),
        bound=error_bound(a, b, a.dtype if backend.has_float64 else np.float32, expected.shape),
    )


def test_same_rules_really_differ():
    # guards the test above: for an even kernel the two SciPy rules disagree
    a = np.arange(8.0)[None, :]
    b = np.array([[1.0, 2.0]])
    assert not np.allclose(ss.correlate(a, b, "same"), ss.correlate2d(a, b, "same"))


@pytest.mark.parametrize("name", sorted(FUNCS))
def test_valid_swap_complex(backend, pc, name):
    """``valid`` with the larger in2 follows SciPy's swap rule, conjugation included."""
    if not backend.has_float64:
        pytest.skip("needs complex128 (JAX with x64 disabled narrows it)")
    rng = np.random.default_rng(3)
    a = _data(rng, (3, 4), "complex128")
    b = _data(rng, (5, 6), "complex128")
    got = getattr(pc, name)(a, b, "valid")
    expected = FUNCS[name](a, b, "valid")
    assert expected.shape == (3, 3)
    assert_close(
        backend,
        got,
        expected,
        dtype=xp_dtype(backend, "complex128"),
        bound=error_bound(a, b, np.complex128, expected.shape),
    )


@pytest.mark.parametrize("name", sorted(FUNCS))
def test_valid_neither_fits(pc, name):
    with pytest.raises(ValueError, match=r"mode='valid'.*in1.shape=\(3, 6\).*in2.shape=\(5, 2\)"):
        getattr(pc, name)(np.ones((3, 6)), np.ones((5, 2)), "valid")


def test_integers_exact_where_scipy_wraps(backend, pc):
    a = np.full((1, 3), 100, dtype=np.int8)
    b = np.full((1, 3), 100, dtype=np.int8)
    assert ss.correlate(a, b, "valid")[0, 0] == 48  # SciPy wraps around in int8
    for method in ("direct", "fft", "auto"):
        got = pc.correlate(a, b, "valid", method)
        assert backend.to_numpy(got).tolist() == [[30000]]
        assert got.dtype == default_int(backend)


def test_int16_near_limits_exact(backend, pc):
    rng = np.random.default_rng(0)
    a = rng.choice(np.array([-32768, 32767], dtype=np.int16), size=(9, 9))
    b = rng.choice(np.array([-32768, 32767], dtype=np.int16), size=(5, 5))
    expected = ss.correlate(a.astype(np.int64), b.astype(np.int64), method="direct")
    if not backend.has_float64:
        # JAX without x64 accumulates in int32: refused rather than wrapped
        with pytest.raises(TypeError, match="would wrap silently"):
            pc.correlate(a, b, "full", "direct")
        return
    for method in ("direct", "fft"):
        got = pc.correlate(a, b, "full", method)
        assert_close(backend, got, expected, dtype=default_int(backend), bound=0.0)


def test_int64_fft_refused(pc):
    a = np.ones((4, 4), dtype=np.int64)
    with pytest.raises(ValueError, match=r"correlate: method='fft' cannot give exact results"):
        pc.correlate(a, a, "full", "fft")


def test_zero_dim(backend, pc):
    a, b = np.array(2.0 + 1.0j), np.array(3.0 + 1.0j)
    if not backend.has_float64:
        pytest.skip("needs complex128")
    assert complex(backend.to_numpy(pc.correlate(a, b))) == complex(ss.correlate(a, b))
    assert complex(backend.to_numpy(pc.convolve(a, b))) == complex(ss.convolve(a, b))


@pytest.mark.parametrize(
    ("d1", "d2", "expected"),
    [
        ("float32", "float32", "float32"),
        ("float32", "float64", "float64"),
        ("complex64", "float32", "complex64"),
        ("int8", "int16", "int64"),
    ],
)
def test_result_dtype(backend, pc, d1, d2, expected):
    if not backend.has_float64 and "64" in d1 + d2 + expected:
        pytest.skip("JAX without x64 has no 64-bit dtypes")
    got = pc.correlate(np.ones((4,), dtype=d1), np.ones((2,), dtype=d2))
    want = default_int(backend) if expected == "int64" else xp_dtype(backend, expected)
    assert got.dtype == want


def test_choose_method_static(backend, pc):
    small = pc.choose_method(np.ones((32, 32)), np.ones((3, 3)))
    large = pc.choose_method(np.ones((512, 512)), np.ones((127, 127)))
    assert small == "direct"
    assert large == "fft"
    ints = pc.choose_method(
        np.ones((512, 512), dtype=np.int64), np.ones((127, 127), dtype=np.int64)
    )
    assert ints == "direct"  # FFT could not round int64 results exactly


@pytest.mark.parametrize("dtype", DTYPES)
def test_long_channels_on_the_flat_grid_match_scipy(backend, pc, dtype):
    # 98 x 102 = 9,996 padded positions, over the cpu row's flat_run: on
    # NumPy-like libraries the direct method of integers runs the elementwise
    # strategy on the channel-major flat grid, in chunks (see the plan below)
    from portconv import _plan

    g = _plan.Geometry(1, 1, 1, 1, (96, 100), (3, 3), (1, 1), (1, 1), ((1, 1), (1, 1)))
    ints = _plan.DtypeInfo("int", 8, int_bound=20)
    plan = _plan.plan_correlation(g, "direct", ints, "cpu", True, False, 2**40, "c")
    assert (plan.strategy, plan.flat_chunk) == ("elementwise", _plan._COSTS["cpu"]["flat_chunk"])
    dtype = _narrow(backend, dtype)
    rng = np.random.default_rng(len(dtype))
    a, b = _data(rng, (96, 100), dtype), _data(rng, (3, 3), dtype)
    for name in ("correlate", "convolve"):
        got = getattr(pc, name)(a, b, "same", "direct")
        expected = _expected(name, a, b, "same")
        bound = error_bound(a, b, np.dtype(dtype), expected.shape)
        assert_close(backend, got, expected, dtype=_result_dtype(backend, dtype), bound=bound)
