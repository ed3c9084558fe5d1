"""Accuracy bounds, non-finite values and integer limits."""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import pytest
import scipy.signal as ss

import portconv

from ._helpers import default_int

EPS32 = float(np.finfo(np.float32).eps)


@pytest.mark.parametrize("k", [3, 31, 101])
@pytest.mark.parametrize("method", ["direct", "fft"])
def test_float32_accuracy_1024(k, method, record_property):
    """float32 on a 1024x1024 image stays within each method's documented bound.

    direct: ``|err| <= c * eps * sqrt(taps) * (|x| * |k|)`` element-wise;
    fft:    ``max|err| <= c * eps * log2(n) * max(|x| * |k|)``, with c = 4.
    """
    rng = np.random.default_rng(k)
    x = rng.standard_normal((1024, 1024)).astype(np.float32)
    h = rng.standard_normal((k, k)).astype(np.float32)
    ref = ss.fftconvolve(x.astype(np.float64), h[::-1, ::-1].astype(np.float64), "same")
    scale = ss.fftconvolve(
        np.abs(x).astype(np.float64), np.abs(h[::-1, ::-1]).astype(np.float64), "same"
    )
    got = portconv.correlate(x, h, "same", method).astype(np.float64)
    err = np.abs(got - ref)
    if method == "direct":
        ratio = float(np.max(err / (4 * EPS32 * math.sqrt(h.size) * np.maximum(scale, 1e-30))))
    else:
        n = math.prod(portconv._plan.fast_len(s + k - 1) for s in x.shape)
        ratio = float(err.max() / (4 * EPS32 * math.log2(n) * scale.max()))
    rel = float(err.max() / np.abs(ref).max())
    record_property("relative_error", rel)
    print(f"k={k} method={method}: max|err|/max|ref| = {rel:.2e}, err/bound = {ratio:.3f}")
    assert ratio <= 1.0


def test_direct_keeps_nan_local(backend, pc):
    x = np.zeros((9, 9))
    x[4, 4] = np.nan
    h = np.ones((3, 3))
    got = backend.to_numpy(pc.correlate(x, h, "same", "direct"))
    nan = np.isnan(got)
    assert nan[3:6, 3:6].all() and nan.sum() == 9


def test_fft_spreads_nan_and_auto_warns(backend, pc):
    x = np.zeros((600, 600))
    x[4, 4] = np.nan
    h = np.ones((101, 101))
    assert pc.choose_method(x, h, "same") == "fft"
    fft = backend.to_numpy(pc.correlate(x, h, "same", "fft"))
    assert np.isnan(fft).sum() > 101 * 101  # spread beyond the windows touching it
    if backend.jit or backend.lazy:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no warning, and no host sync, under jit
            pc.correlate(x, h, "same")
    else:
        with pytest.warns(RuntimeWarning, match=r"correlate: in1 contains NaN or Inf"):
            pc.correlate(x, h, "same")


def test_int64_near_limits_exact(backend, pc):
    if not backend.has_float64:
        pytest.skip("JAX without x64 has no int64")
    big = 2**61
    x = np.array([big, big, -big, big - 1, 3], dtype=np.int64)
    h = np.array([1, 1], dtype=np.int64)
    got = backend.to_numpy(pc.correlate(x, h, "valid"))
    expected = [int(a) + int(b) for a, b in itertools.pairwise(x)]
    assert got.tolist() == expected  # reaches 2**62 without wrapping or rounding
    assert pc.correlate(x, h).dtype == default_int(backend)


def test_int8_extremes_exact(backend, pc):
    x = np.full((4, 4), -128, dtype=np.int8)
    h = np.full((3, 3), -128, dtype=np.int8)
    got = backend.to_numpy(pc.correlate(x, h, "valid"))
    assert (got == 9 * 128 * 128).all()
