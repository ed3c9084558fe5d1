"""Hypothesis property tests: algebraic invariants of the one correlation core.

Each property compares portconv with itself on every backend (linearity,
shift equivariance, mode windows, flips and conjugation, groups, layouts,
stride, dilation, adjoints, FFT against direct), with a tolerance derived from
the problem (:func:`tests._helpers.error_bound`) and exact equality for
integers.  Two more run on NumPy only: views (strided with NaN in the gaps,
negative strides, transposed) give bit-identical results, and so do repeated
and concurrent calls.

Runtime: under JAX every call is jitted, and compiling costs ~0.25 s per
distinct program.  There the structural parameters (shapes, modes, strides,
dtypes...) come from a small fixed pool of configurations drawn once with a
seeded RNG, so the compiled programs are reused across examples while the
values still vary; the other backends draw the configuration freely.  Both
kinds are built by the same ``make_*`` function.
"""

from __future__ import annotations

import concurrent.futures
import math
import random
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import portconv

from ._helpers import error_bound

EXAMPLES = 25  # per property and per backend
NUMPY_EXAMPLES = 40  # the NumPy-only properties are cheap
MODES = ("full", "same", "valid")
METHODS = ("auto", "direct", "fft")
PADDING_MODES = ("zeros", "reflect", "replicate", "circular", "symmetric")

Pick = Callable[[Sequence[Any]], Any]


# ----------------------------------------------------------------------------
# configurations: wide (hypothesis draws freely) or narrow (a fixed pool)


@st.composite
def _wide(draw, make: Callable[[Pick], dict]) -> dict:
    return make(lambda seq: draw(st.sampled_from(seq)))


def _unrolled(c: dict) -> int:
    """Roughly how many operations JAX traces (and compiles) for ``c``."""
    if "s2" in c:
        return math.prod(c["s2"]) * max(1, math.prod(c["s1"]) // 16)
    return math.prod(c["w_shape"][1:]) * c["x_shape"][0]


class Configs:
    """``make(pick)`` as a free hypothesis strategy and as a small fixed pool.

    The pool (used under JAX) keeps only configurations that compile quickly.
    """

    def __init__(self, name: str, make: Callable[[Pick], dict], pool: int):
        self.wide = _wide(make)
        rng = random.Random(name)
        configs: list[dict] = []
        while len(configs) < pool:
            c = make(rng.choice)
            if _unrolled(c) <= 16 and c not in configs:
                configs.append(c)
        self.narrow = st.sampled_from(configs)

    def draw(self, data: st.DataObject, backend) -> dict:
        return data.draw(self.narrow if backend.jit else self.wide, label="config")


def _shapes_that_fit(pick: Pick, ndim: int, mode: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    s1 = tuple(pick(range(1, 8)) for _ in range(ndim))
    s2 = tuple(pick(range(1, 6)) for _ in range(ndim))
    if mode == "valid" and not (
        all(a >= b for a, b in zip(s1, s2)) or all(b >= a for a, b in zip(s1, s2))
    ):
        # make one input contain the other, either way round
        if pick((True, False)):
            s2 = tuple(min(a, b) for a, b in zip(s1, s2))
        else:
            s2 = tuple(max(a, b) for a, b in zip(s1, s2))
    return s1, s2


def make_signal(
    pick: Pick,
    *,
    dtypes=("float64", "int64", "complex128"),
    modes=MODES,
    methods=METHODS,
    funcs=("correlate", "convolve"),
) -> dict:
    ndim = pick((1, 1, 2, 2, 3))
    mode = pick(modes)
    s1, s2 = _shapes_that_fit(pick, ndim, mode)
    dtype = pick(dtypes)
    method = pick(methods)
    if dtype == "int64" and method == "fft":
        method = "direct"  # refused: not provably exact (tests/test_errors.py)
    return dict(func=pick(funcs), s1=s1, s2=s2, mode=mode, dtype=dtype, method=method)


def make_conv(
    pick: Pick,
    *,
    dtypes=("float64", "int64"),
    padding_modes=PADDING_MODES,
    strided=True,
    dilated=True,
    grouped=True,
    methods=METHODS,
) -> dict:
    nsp = pick((1, 2, 2))
    groups = pick((1, 2, 3)) if grouped else 1
    cg, cog, n = pick((1, 2, 3)), pick((1, 2)), pick((1, 2))
    kernel = tuple(pick((1, 2, 3)) for _ in range(nsp))
    stride = tuple(pick((1, 2, 3)) if strided else 1 for _ in range(nsp))
    dilation = tuple(pick((1, 2)) if dilated else 1 for _ in range(nsp))
    pads = tuple((pick((0, 1, 2)), pick((0, 1, 2))) for _ in range(nsp))
    spatial = tuple(
        max(1, d * (k - 1) + 1 - lo - hi) + pick(range(0, 5))
        for k, d, (lo, hi) in zip(kernel, dilation, pads)
    )
    dtype = pick(dtypes)
    method = pick(methods)
    if dtype == "int64" and method == "fft":
        method = "direct"
    return dict(
        x_shape=(n, groups * cg) + spatial,
        w_shape=(groups * cog, cg) + kernel,
        groups=groups,
        stride=stride,
        dilation=dilation,
        pads=pads,
        padding_mode=pick(padding_modes),
        dtype=dtype,
        method=method,
    )


# ----------------------------------------------------------------------------
# calling portconv: like the ``pc`` fixture, but under JAX one jitted function
# per (function, static arguments), so compiled programs are reused


_JITTED: dict[Any, Any] = {}


def run(backend, name: str, *args: Any, **kwargs: Any) -> np.ndarray:
    """``portconv.<name>`` on ``backend`` (numpy arrays converted); result as NumPy."""
    fn = getattr(portconv, name)
    if not backend.jit:
        args = tuple(backend.asarray(a) if isinstance(a, np.ndarray) else a for a in args)
        kwargs = {
            k: backend.asarray(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()
        }
        return backend.to_numpy(fn(*args, **kwargs))
    import jax

    pos = tuple(i for i, a in enumerate(args) if isinstance(a, np.ndarray))
    static_args = tuple(None if i in pos else a for i, a in enumerate(args))
    static_kw = tuple(sorted(kwargs.items()))
    key = (name, pos, static_args, static_kw)
    jitted = _JITTED.get(key)
    if jitted is None:

        def inner(*traced):
            full = list(static_args)
            for i, a in zip(pos, traced):
                full[i] = a
            return fn(*full, **dict(static_kw))

        jitted = _JITTED[key] = jax.jit(inner)
    return backend.to_numpy(jitted(*(backend.asarray(args[i]) for i in pos)))


def rand(rng: np.random.Generator, shape: tuple[int, ...], dtype: str) -> np.ndarray:
    if dtype.startswith("int"):
        return rng.integers(-5, 6, size=shape).astype(dtype)
    a = rng.standard_normal(shape)
    if dtype.startswith("complex"):
        a = a + 1j * rng.standard_normal(shape)
    return a.astype(dtype)


def bound(x: np.ndarray, k: np.ndarray, result: np.ndarray) -> float:
    """The problem-scaled error bound of one call (0 for integer results)."""
    return error_bound(x, k, result.dtype, result.shape)


def assert_close(got: np.ndarray, want: np.ndarray, tol: float) -> None:
    assert got.shape == want.shape, (got.shape, want.shape)
    assert got.dtype == want.dtype, (got.dtype, want.dtype)
    if tol == 0.0:
        np.testing.assert_array_equal(got, want)
        return
    err = float(np.max(np.abs(got.astype(np.complex128) - want), initial=0.0))
    assert err <= tol, f"max deviation {err:.3g} exceeds bound {tol:.3g}"


def scalar(rng: np.random.Generator, dtype: str) -> Any:
    if dtype.startswith("int"):
        return int(rng.integers(-3, 4))
    if dtype.startswith("complex"):
        return complex(rng.uniform(-2, 2), rng.uniform(-2, 2))
    return float(rng.uniform(-2, 2))


SEEDS = st.integers(0, 2**32 - 1)

LINEAR = Configs("linear", make_signal, pool=5)
SHIFT = Configs("shift", lambda p: make_signal(p, modes=("full",)), pool=4)
WINDOWS = Configs("windows", lambda p: make_signal(p, funcs=("correlate",)), pool=4)
FLIP = Configs("flip", lambda p: make_signal(p, dtypes=("float64", "int64")), pool=4)
CONJ = Configs("conj", lambda p: make_signal(p, dtypes=("complex128",)), pool=4)
FFT_SIGNAL = Configs(
    "fft-signal",
    lambda p: make_signal(p, dtypes=("float64", "complex128", "int16"), methods=("direct",)),
    pool=3,
)
GROUPED = Configs("grouped", make_conv, pool=4)
LAYOUT = Configs("layout", make_conv, pool=4)
STRIDE = Configs("stride", make_conv, pool=4)
DILATION = Configs("dilation", lambda p: make_conv(p, padding_modes=("zeros",)), pool=4)
ADJOINT = Configs(
    "adjoint", lambda p: make_conv(p, dtypes=("float64",), padding_modes=("zeros",)), pool=3
)
FFT_CONV = Configs(
    "fft-conv",
    lambda p: make_conv(p, dtypes=("float64", "complex128"), padding_modes=("zeros",)),
    pool=3,
)


# ----------------------------------------------------------------------------
# SciPy-style properties


@settings(max_examples=EXAMPLES)
@given(data=st.data(), seed=SEEDS)
def test_linear_in_first_argument(backend, data, seed):
    c = LINEAR.draw(data, backend)
    rng = np.random.default_rng(seed)
    a1, a2 = rand(rng, c["s1"], c["dtype"]), rand(rng, c["s1"], c["dtype"])
    b = rand(rng, c["s2"], c["dtype"])
    al, be = scalar(rng, c["dtype"]), scalar(rng, c["dtype"])
    mix = (al * a1 + be * a2).astype(c["dtype"])

    def f(a):
        return run(backend, c["func"], a, b, c["mode"], c["method"])

    lhs, y1, y2 = f(mix), f(a1), f(a2)
    tol = bound(mix, b, lhs) + abs(al) * bound(a1, b, y1) + abs(be) * bound(a2, b, y2)
    assert_close(lhs, (al * y1 + be * y2).astype(lhs.dtype), 2 * tol)


@settings(max_examples=EXAMPLES)
@given(data=st.data(), seed=SEEDS)
def test_linear_in_second_argument(backend, data, seed):
    c = LINEAR.draw(data, backend)
    rng = np.random.default_rng(seed)
    a = rand(rng, c["s1"], c["dtype"])
    b1, b2 = rand(rng, c["s2"], c["dtype"]), rand(rng, c["s2"], c["dtype"])
    al, be = scalar(rng, c["dtype"]), scalar(rng, c["dtype"])
    mix = (al * b1 + be * b2).astype(c["dtype"])

    def f(b):
        return run(backend, c["func"], a, b, c["mode"], c["method"])

    lhs, y1, y2 = f(mix), f(b1), f(b2)
    # correlate conjugates its second argument: antilinear there for complex
    if c["func"] == "correlate":
        al, be = np.conj(al), np.conj(be)
    tol = bound(a, mix, lhs) + abs(al) * bound(a, b1, y1) + abs(be) * bound(a, b2, y2)
    assert_close(lhs, (al * y1 + be * y2).astype(lhs.dtype), 2 * tol)


@settings(max_examples=EXAMPLES)
@given(data=st.data(), seed=SEEDS, shift=st.lists(st.integers(0, 3), min_size=3, max_size=3))
def test_full_mode_shift_equivariant(backend, data, seed, shift):
    c = SHIFT.draw(data, backend)
    rng = np.random.default_rng(seed)
    a, b = rand(rng, c["s1"], c["dtype"]), rand(rng, c["s2"], c["dtype"])
    s = tuple(shift[: a.ndim])
    shifted = np.pad(a, [(k, 0) for k in s])  # zeros in front: in1 moves by s
    y = run(backend, c["func"], a, b, "full", c["method"])
    ys = run(backend, c["func"], shifted, b, "full", c["method"])
    tol = bound(shifted, b, ys) + bound(a, b, y)
    assert_close(ys[tuple(slice(k, None) for k in s)], y, tol)
    expected_front = np.zeros_like(ys)
    expected_front[tuple(slice(k, None) for k in s)] = y
    assert_close(ys, expected_front, tol)


@settings(max_examples=EXAMPLES)
@given(data=st.data(), seed=SEEDS)
def test_same_and_valid_are_windows_of_full(backend, data, seed):
    c = WINDOWS.draw(data, backend)
    rng = np.random.default_rng(seed)
    a, b = rand(rng, c["s1"], c["dtype"]), rand(rng, c["s2"], c["dtype"])
    full = run(backend, "correlate", a, b, "full", c["method"])
    tol = 2 * bound(a, b, full)
    same = run(backend, "correlate", a, b, "same", c["method"])
    # SciPy's N-d rule: the window of in1's size starting at (k - 1) // 2
    window = tuple(slice((k - 1) // 2, (k - 1) // 2 + n) for n, k in zip(a.shape, b.shape))
    assert_close(same, full[window], tol)
    if all(n >= k for n, k in zip(a.shape, b.shape)) or all(
        k >= n for n, k in zip(a.shape, b.shape)
    ):
        valid = run(backend, "correlate", a, b, "valid", c["method"])
        # where one input lies wholly inside the other (either way round)
        window = tuple(
            slice(min(n, k) - 1, min(n, k) - 1 + abs(n - k) + 1) for n, k in zip(a.shape, b.shape)
        )
        assert_close(valid, full[window], tol)


@settings(max_examples=EXAMPLES)
@given(data=st.data(), seed=SEEDS)
def test_convolve_is_correlate_with_flipped_kernel(backend, data, seed):
    c = FLIP.draw(data, backend)
    rng = np.random.default_rng(seed)
    a, b = rand(rng, c["s1"], c["dtype"]), rand(rng, c["s2"], c["dtype"])
    conv = run(backend, "convolve", a, b, c["mode"], c["method"])
    corr = run(backend, "correlate", a, np.flip(b).copy(), c["mode"], c["method"])
    assert_close(conv, corr, 2 * bound(a, b, conv))


@settings(max_examples=EXAMPLES)
@given(data=st.data(), seed=SEEDS)
def test_complex_correlate_is_convolve_with_conjugate_flip(backend, data, seed):
    c = CONJ.draw(data, backend)
    rng = np.random.default_rng(seed)
    a, b = rand(rng, c["s1"], c["dtype"]), rand(rng, c["s2"], c["dtype"])
    corr = run(backend, "correlate", a, b, c["mode"], c["method"])
    conv = run(backend, "convolve", a, np.conj(np.flip(b)).copy(), c["mode"], c["method"])
    assert_close(corr, conv, 2 * bound(a, b, corr))


@settings(max_examples=EXAMPLES)
@given(data=st.data(), seed=SEEDS)
def test_fft_and_direct_agree_signal(backend, data, seed):
    c = FFT_SIGNAL.draw(data, backend)
    rng = np.random.default_rng(seed)
    a, b = rand(rng, c["s1"], c["dtype"]), rand(rng, c["s2"], c["dtype"])
    if c["dtype"] == "int16" and not backend.has_float64 and a.size * b.size > 1:
        # JAX with x64 off accumulates in int32, which int16 products could
        # overflow: refused rather than wrapped
        with pytest.raises(TypeError, match="would wrap silently"):
            run(backend, c["func"], a, b, c["mode"], "direct")
        return
    direct = run(backend, c["func"], a, b, c["mode"], "direct")
    if c["dtype"] == "int16" and not backend.has_float64:
        return  # a single product: no FFT can round it in float32 either
    fft = run(backend, c["func"], a, b, c["mode"], "fft")
    # int16 through a float64 FFT is rounded back exactly: the bound is 0
    assert_close(fft, direct, 2 * bound(a, b, direct))


# ----------------------------------------------------------------------------
# deep-learning properties


def conv_args(c: dict, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    return rand(rng, c["x_shape"], c["dtype"]), rand(rng, c["w_shape"], c["dtype"])


def conv_kw(c: dict, **over: Any) -> dict:
    kw = dict(
        stride=c["stride"],
        padding=c["pads"],
        dilation=c["dilation"],
        groups=c["groups"],
        padding_mode=c["padding_mode"],
        method=c["method"],
    )
    kw.update(over)
    return kw


@settings(max_examples=EXAMPLES)
@given(data=st.data(), seed=SEEDS)
def test_grouped_conv_is_concatenation_of_groups(backend, data, seed):
    c = GROUPED.draw(data, backend)
    rng = np.random.default_rng(seed)
    x, w = conv_args(c, rng)
    y = run(backend, "conv", x, w, **conv_kw(c))
    g = c["groups"]
    cg, cog = x.shape[1] // g, w.shape[0] // g
    parts = [
        run(
            backend,
            "conv",
            np.ascontiguousarray(x[:, i * cg : (i + 1) * cg]),
            np.ascontiguousarray(w[i * cog : (i + 1) * cog]),
            **conv_kw(c, groups=1),
        )
        for i in range(g)
    ]
    assert_close(y, np.concatenate(parts, axis=1), 2 * bound(x, w, y))


@settings(max_examples=EXAMPLES)
@given(data=st.data(), seed=SEEDS, bias=st.booleans())
def test_channels_last_is_permuted_channels_first(backend, data, seed, bias):
    c = LAYOUT.draw(data, backend)
    rng = np.random.default_rng(seed)
    x, w = conv_args(c, rng)
    b = rand(rng, (w.shape[0],), c["dtype"]) if bias else None
    nd = x.ndim
    to_last = (0,) + tuple(range(2, nd)) + (1,)
    first = run(backend, "conv", x, w, b, **conv_kw(c))
    last = run(
        backend,
        "conv",
        np.ascontiguousarray(np.transpose(x, to_last)),
        w,
        b,
        **conv_kw(c, data_format="channels_last"),
    )
    assert_close(last, np.transpose(first, to_last), 2 * bound(x, w, first))


@settings(max_examples=EXAMPLES)
@given(data=st.data(), seed=SEEDS)
def test_stride_is_subsampled_stride_one(backend, data, seed):
    c = STRIDE.draw(data, backend)
    rng = np.random.default_rng(seed)
    x, w = conv_args(c, rng)
    strided = run(backend, "conv", x, w, **conv_kw(c))
    dense = run(backend, "conv", x, w, **conv_kw(c, stride=1))
    keep = (slice(None), slice(None)) + tuple(slice(None, None, s) for s in c["stride"])
    assert_close(strided, dense[keep], 2 * bound(x, w, dense))


@settings(max_examples=EXAMPLES)
@given(data=st.data(), seed=SEEDS)
def test_dilation_is_zero_dilated_kernel(backend, data, seed):
    c = DILATION.draw(data, backend)
    rng = np.random.default_rng(seed)
    x, w = conv_args(c, rng)
    kernel, dil = w.shape[2:], c["dilation"]
    wd = np.zeros(w.shape[:2] + tuple(d * (k - 1) + 1 for k, d in zip(kernel, dil)), w.dtype)
    wd[(slice(None), slice(None)) + tuple(slice(None, None, d) for d in dil)] = w
    y = run(backend, "conv", x, w, **conv_kw(c))
    yd = run(backend, "conv", x, wd, **conv_kw(c, dilation=1))
    assert_close(y, yd, 2 * bound(x, wd, yd))


@settings(max_examples=EXAMPLES)
@given(data=st.data(), seed=SEEDS)
def test_gradients_are_adjoints(backend, data, seed):
    """``<conv(x, w), y> == <x, conv_input_grad(x.shape, w, y)> == <w, conv_weight_grad(x, w.shape, y)>``.

    Also ``conv_transpose(y, w) == conv_input_grad(x.shape, w, y)`` (real).
    """
    c = ADJOINT.draw(data, backend)
    rng = np.random.default_rng(seed)
    x, w = conv_args(c, rng)
    kw = dict(stride=c["stride"], padding=c["pads"], dilation=c["dilation"], groups=c["groups"])
    fwd = run(backend, "conv", x, w, method=c["method"], **kw)
    y = rand(rng, fwd.shape, "float64")
    gx = run(backend, "conv_input_grad", x.shape, w, y, method=c["method"], **kw)
    gw = run(backend, "conv_weight_grad", x, w.shape, y, **kw)
    assert gx.shape == x.shape and gw.shape == w.shape
    # conv_transpose with the forward weight is the same adjoint (real inputs)
    spans = [d * (k - 1) + 1 for k, d in zip(w.shape[2:], c["dilation"])]
    out_pad = tuple(
        n + lo + hi - sp - (o - 1) * s
        for n, (lo, hi), sp, o, s in zip(x.shape[2:], c["pads"], spans, fwd.shape[2:], c["stride"])
    )
    gt = run(backend, "conv_transpose", y, w, output_padding=out_pad, method=c["method"], **kw)
    assert_close(gt, gx, 4 * bound(y, w, gx))
    lhs = float(np.vdot(fwd, y))
    via_x, via_w = float(np.vdot(x, gx)), float(np.vdot(w, gw))
    eps = float(np.finfo(fwd.dtype).eps)
    terms = math.prod(w.shape[1:]) + fwd.size + x.size + w.size
    scale = float(np.max(np.abs(x))) * float(np.sum(np.abs(w))) * float(np.sum(np.abs(y)))
    tol = 32 * eps * terms * scale
    assert abs(lhs - via_x) <= tol, (lhs, via_x, tol)
    assert abs(lhs - via_w) <= tol, (lhs, via_w, tol)


@settings(max_examples=EXAMPLES)
@given(data=st.data(), seed=SEEDS)
def test_fft_and_direct_agree_conv(backend, data, seed):
    c = FFT_CONV.draw(data, backend)
    rng = np.random.default_rng(seed)
    x, w = conv_args(c, rng)
    direct = run(backend, "conv", x, w, **conv_kw(c, method="direct"))
    fft = run(backend, "conv", x, w, **conv_kw(c, method="fft"))
    assert_close(fft, direct, 2 * bound(x, w, direct))


# ----------------------------------------------------------------------------
# NumPy only: memory layout and determinism


def _view(a: np.ndarray, kind: str) -> np.ndarray:
    """A non-contiguous view holding the values of ``a``."""
    if kind == "step2-nan":
        base = np.full(tuple(2 * n for n in a.shape), np.nan, dtype=a.dtype)
        sl = tuple(slice(None, None, 2) for _ in a.shape)
        base[sl] = a
        v = base[sl]
    elif kind == "negative":
        v = np.flip(np.flip(a).copy())
    else:  # transposed: Fortran order
        order = tuple(reversed(range(a.ndim)))
        v = np.ascontiguousarray(np.transpose(a, order)).transpose(order)
    np.testing.assert_array_equal(v, a)
    return v


VIEW_KINDS = ("step2-nan", "negative", "transposed")


@settings(max_examples=NUMPY_EXAMPLES)
@given(
    cs=_wide(lambda p: make_signal(p, dtypes=("float64", "complex128", "int64"))),
    cc=_wide(lambda p: make_conv(p, dtypes=("float64",))),
    kinds=st.tuples(*[st.sampled_from(VIEW_KINDS)] * 4),
    seed=SEEDS,
)
def test_views_give_the_contiguous_result_bitwise(cs, cc, kinds, seed):
    rng = np.random.default_rng(seed)
    a, b = rand(rng, cs["s1"], cs["dtype"]), rand(rng, cs["s2"], cs["dtype"])
    if cs["dtype"] == "int64":  # integers hold no NaN: a strided view of zeros instead
        kinds = tuple("negative" if k == "step2-nan" else k for k in kinds[:2]) + kinds[2:]
    fn = getattr(portconv, cs["func"])
    want = fn(a, b, cs["mode"], cs["method"])
    got = fn(_view(a, kinds[0]), _view(b, kinds[1]), cs["mode"], cs["method"])
    assert got.dtype == want.dtype
    assert np.array_equal(got, want), "a view changed the correlate/convolve result"

    x, w = conv_args(cc, rng)
    kw = conv_kw(cc)
    want = portconv.conv(x, w, **kw)
    got = portconv.conv(_view(x, kinds[2]), _view(w, kinds[3]), **kw)
    assert got.dtype == want.dtype
    assert np.array_equal(got, want), "a view changed the conv result"


@settings(max_examples=NUMPY_EXAMPLES)
@given(
    cs=_wide(lambda p: make_signal(p, dtypes=("float64", "complex128"))),
    cc=_wide(lambda p: make_conv(p, dtypes=("float64",))),
    seed=SEEDS,
)
def test_repeated_and_concurrent_calls_are_bit_identical(cs, cc, seed):
    rng = np.random.default_rng(seed)
    a, b = rand(rng, cs["s1"], cs["dtype"]), rand(rng, cs["s2"], cs["dtype"])
    x, w = conv_args(cc, rng)
    kw = conv_kw(cc)

    def signal():
        return getattr(portconv, cs["func"])(a, b, cs["mode"], cs["method"])

    def conv():
        return portconv.conv(x, w, **kw)

    ref_s, ref_c = signal(), conv()
    assert np.array_equal(signal(), ref_s) and np.array_equal(conv(), ref_c)
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        futures = [pool.submit(f) for _ in range(4) for f in (signal, conv)]
        results = [fut.result() for fut in futures]
    for i, r in enumerate(results):
        ref = ref_s if i % 2 == 0 else ref_c
        assert r.dtype == ref.dtype
        assert np.array_equal(r, ref), "a concurrent call gave different bits"
