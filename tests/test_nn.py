"""Deep-learning functions against torch (float64 CPU) and an independent
NumPy reference, on every backend."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from ._helpers import assert_close, default_int, n_examples, xp_dtype
from ._reference import conv_reference

TORCH_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
TORCH_CONVT = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}


def conv_bound(x: np.ndarray, w: np.ndarray, dtype, c: float = 16.0) -> float:
    """``c * eps * (sqrt(terms) + log2(n)) * max|x| * max_o sum|w[o]|``."""
    if np.issubdtype(dtype, np.integer):
        return 0.0
    eps = float(np.finfo(dtype).eps)
    terms = max(int(np.prod(w.shape[1:])), 1)
    n = max(int(np.prod(x.shape[2:])) if x.ndim > 2 else 2, 2)
    per_out = np.abs(w).reshape(w.shape[0], -1).sum(axis=1).max(initial=0.0)
    scale = float(np.max(np.abs(x), initial=0.0)) * float(per_out)
    return c * eps * (math.sqrt(terms) + math.log2(n)) * max(scale, 1e-300) + 1e-300


def _float(backend) -> np.dtype:
    return np.dtype(np.float64 if backend.has_float64 else np.float32)


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float64))


@st.composite
def conv_cases(draw, torch_only: bool):
    nsp = draw(st.integers(1, 3))
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    cg = draw(st.integers(1, 3))
    cog = draw(st.integers(1, 3))
    depthwise = draw(st.booleans()) and groups > 1
    if depthwise:
        cg = 1
    n = draw(st.integers(0, 2)) if draw(st.integers(0, 9)) == 0 else draw(st.integers(1, 2))
    kernel = tuple(draw(st.lists(st.integers(1, 4), min_size=nsp, max_size=nsp)))
    stride = tuple(draw(st.lists(st.integers(1, 5), min_size=nsp, max_size=nsp)))
    dilation = tuple(draw(st.lists(st.integers(1, 3), min_size=nsp, max_size=nsp)))
    spatial = tuple(
        draw(st.integers(d * (k - 1) + 1, d * (k - 1) + 7)) for k, d in zip(kernel, dilation)
    )
    padding_mode = draw(st.sampled_from(["zeros", "zeros", "reflect", "replicate", "circular"]))
    kind = draw(st.sampled_from(["int", "tuple", "valid", "same"]))
    if kind == "same":
        stride = (1,) * nsp
    if kind == "int":
        padding = draw(st.integers(0, 2))
        padding = min([padding] + [s - 1 for s in spatial]) if padding_mode != "zeros" else padding
    elif kind == "tuple":
        padding = tuple(
            min(draw(st.integers(0, 2)), s - 1 if padding_mode != "zeros" else 2) for s in spatial
        )
    else:
        padding = kind
    if kind == "same" and padding_mode != "zeros":
        # torch pads 'same' with reflect etc. only for pads smaller than the input
        if any(d * (k - 1) >= s for k, d, s in zip(kernel, dilation, spatial)):
            padding_mode = "zeros"
    bias = draw(st.booleans())
    channels_last = draw(st.booleans())
    unbatched = draw(st.integers(0, 5)) == 0 and n == 1
    method = draw(st.sampled_from(["auto", "direct", "fft"]))
    seed = draw(st.integers(0, 2**31 - 1))
    return dict(
        nsp=nsp,
        groups=groups,
        cin=groups * cg,
        cout=groups * cog,
        n=n,
        kernel=kernel,
        stride=stride,
        dilation=dilation,
        spatial=spatial,
        padding=padding,
        padding_mode=padding_mode,
        bias=bias,
        channels_last=channels_last,
        unbatched=unbatched,
        method=method,
        seed=seed,
    )


def _torch_conv(case, x, w, b):
    pm = case["padding_mode"]
    conv = TORCH_CONV[case["nsp"]]
    if pm == "zeros":
        return conv(
            _t(x),
            _t(w),
            None if b is None else _t(b),
            case["stride"],
            case["padding"],
            case["dilation"],
            case["groups"],
        ).numpy()
    padding = case["padding"]
    nsp = case["nsp"]
    if padding == "same":
        total = [d * (k - 1) for k, d in zip(case["kernel"], case["dilation"])]
        pairs = [(t // 2, t - t // 2) for t in total]
    elif padding == "valid":
        pairs = [(0, 0)] * nsp
    elif isinstance(padding, int):
        pairs = [(padding, padding)] * nsp
    else:
        pairs = [(p, p) for p in padding]
    flat = tuple(v for lo_hi in reversed(pairs) for v in lo_hi)
    xt = F.pad(_t(x), flat, mode=pm) if any(flat) else _t(x)
    return conv(
        xt, _t(w), None if b is None else _t(b), case["stride"], 0, case["dilation"], case["groups"]
    ).numpy()


@settings(max_examples=n_examples(1000))
@given(case=conv_cases(torch_only=True))
def test_conv_matches_torch(backend, pc, case):
    rng = np.random.default_rng(case["seed"])
    fdt = _float(backend)
    x = rng.standard_normal((case["n"], case["cin"]) + case["spatial"]).astype(fdt)
    w = rng.standard_normal((case["cout"], case["cin"] // case["groups"]) + case["kernel"]).astype(
        fdt
    )
    b = rng.standard_normal(case["cout"]).astype(fdt) if case["bias"] else None
    expected = _torch_conv(case, x, w, b)
    xin = x
    if case["channels_last"]:
        xin = np.moveaxis(x, 1, -1)
        expected_user = np.moveaxis(expected, 1, -1)
    else:
        expected_user = expected
    if case["unbatched"]:
        xin, expected_user = xin[0], expected_user[0]
    got = pc.conv(
        xin,
        w,
        b,
        case["stride"],
        case["padding"],
        case["dilation"],
        case["groups"],
        padding_mode=case["padding_mode"],
        data_format="channels_last" if case["channels_last"] else "channels_first",
        method=case["method"],
    )
    bound = conv_bound(x, w, fdt) + (0 if b is None else 4 * np.finfo(fdt).eps * np.abs(b).max())
    assert_close(backend, got, expected_user, dtype=xp_dtype(backend, fdt), bound=bound)


@st.composite
def beyond_torch_cases(draw):
    nsp = draw(st.integers(1, 4))
    groups = draw(st.sampled_from([1, 2]))
    kernel = tuple(draw(st.lists(st.integers(1, 3), min_size=nsp, max_size=nsp)))
    stride = tuple(draw(st.lists(st.integers(1, 3), min_size=nsp, max_size=nsp)))
    dilation = tuple(draw(st.lists(st.integers(1, 2), min_size=nsp, max_size=nsp)))
    spatial = tuple(
        draw(st.integers(d * (k - 1) + 1, d * (k - 1) + (5 if nsp < 4 else 3)))
        for k, d in zip(kernel, dilation)
    )
    kind = draw(st.sampled_from(["pairs", "same"]))
    if kind == "pairs":
        padding = tuple((draw(st.integers(0, 3)), draw(st.integers(0, 3))) for _ in range(nsp))
    else:
        padding = "same"
    padding_mode = draw(st.sampled_from(["zeros", "symmetric", "reflect", "circular", "replicate"]))
    seed = draw(st.integers(0, 2**31 - 1))
    return dict(
        nsp=nsp,
        groups=groups,
        kernel=kernel,
        stride=stride,
        dilation=dilation,
        spatial=spatial,
        padding=padding,
        padding_mode=padding_mode,
        seed=seed,
    )


def _same_pairs(spatial, kernel, stride, dilation):
    pairs = []
    for n, k, s, d in zip(spatial, kernel, stride, dilation):
        out = -(-n // s)
        total = max((out - 1) * s + d * (k - 1) + 1 - n, 0)
        pairs.append((total // 2, total - total // 2))
    return pairs


@settings(max_examples=n_examples(150))
@given(case=beyond_torch_cases())
def test_conv_beyond_torch(backend, pc, case):
    """Asymmetric pairs, 'same' with stride, 4 spatial dims, symmetric mode."""
    rng = np.random.default_rng(case["seed"])
    fdt = _float(backend)
    g = case["groups"]
    x = rng.standard_normal((2, 2 * g) + case["spatial"]).astype(fdt)
    w = rng.standard_normal((2 * g, 2) + case["kernel"]).astype(fdt)
    pairs = (
        _same_pairs(case["spatial"], case["kernel"], case["stride"], case["dilation"])
        if case["padding"] == "same"
        else list(case["padding"])
    )
    if case["padding_mode"] == "reflect" and any(
        max(p) >= n for p, n in zip(pairs, case["spatial"])
    ):
        case["padding_mode"] = "symmetric"  # np.pad's reflect differs for wide pads
    expected = conv_reference(
        x.astype(np.float64),
        w.astype(np.float64),
        None,
        case["stride"],
        pairs,
        case["dilation"],
        g,
        case["padding_mode"],
    )
    if case["padding"] == "same":
        assert expected.shape[2:] == tuple(
            -(-n // s) for n, s in zip(case["spatial"], case["stride"])
        )
    got = pc.conv(
        x,
        w,
        None,
        case["stride"],
        case["padding"],
        case["dilation"],
        g,
        padding_mode=case["padding_mode"],
    )
    assert_close(backend, got, expected, dtype=xp_dtype(backend, fdt), bound=conv_bound(x, w, fdt))


def test_conv_same_stride_matches_lax(backend, pc):
    """'same' with stride 2 follows XLA's SAME rule, which torch refuses."""
    lax = pytest.importorskip("jax.lax", reason="jax provides the SAME-padding oracle")
    import jax

    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 9, 10)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 4)).astype(np.float32)
    with jax.default_matmul_precision("highest"):
        expected = np.asarray(
            lax.conv_general_dilated(x, w, (2, 3), "SAME", rhs_dilation=(1, 1))
        ).astype(np.float64)
    got = pc.conv(x, w, None, (2, 3), "same")
    assert_close(
        backend,
        got,
        expected,
        dtype=xp_dtype(backend, np.float32),
        bound=conv_bound(x, w, np.float32),
    )


def test_conv_integers_exact(backend, pc):
    rng = np.random.default_rng(1)
    x = rng.integers(-128, 128, size=(2, 4, 7, 6)).astype(np.int8)
    w = rng.integers(-128, 128, size=(6, 2, 3, 3)).astype(np.int8)
    expected = conv_reference(
        x.astype(np.int64), w.astype(np.int64), None, (2, 1), [(1, 1), (0, 2)], (1, 2), 2
    )
    got = pc.conv(x, w, None, (2, 1), ((1, 1), (0, 2)), (1, 2), 2)
    assert_close(backend, got, expected, dtype=default_int(backend), bound=0.0)


def test_conv_fixed_rank(backend, pc):
    x = np.ones((1, 2, 5, 5))
    w = np.ones((3, 2, 3, 3))
    assert tuple(pc.conv2d(x, w).shape) == (1, 3, 3, 3)
    with pytest.raises(ValueError, match=r"conv3d: weight must have 5 dimensions"):
        pc.conv3d(x, w)
    with pytest.raises(ValueError, match=r"conv1d: weight must have 3 dimensions"):
        pc.conv1d(x, w)


@st.composite
def transpose_cases(draw):
    nsp = draw(st.integers(1, 3))
    groups = draw(st.sampled_from([1, 2]))
    kernel = tuple(draw(st.lists(st.integers(1, 4), min_size=nsp, max_size=nsp)))
    stride = tuple(draw(st.lists(st.integers(1, 3), min_size=nsp, max_size=nsp)))
    dilation = tuple(draw(st.lists(st.integers(1, 2), min_size=nsp, max_size=nsp)))
    spatial = tuple(draw(st.lists(st.integers(1, 5), min_size=nsp, max_size=nsp)))
    padding = tuple(draw(st.integers(0, 2)) for _ in range(nsp))
    output_padding = tuple(draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation))
    bias = draw(st.booleans())
    seed = draw(st.integers(0, 2**31 - 1))
    return dict(
        nsp=nsp,
        groups=groups,
        kernel=kernel,
        stride=stride,
        dilation=dilation,
        spatial=spatial,
        padding=padding,
        output_padding=output_padding,
        bias=bias,
        seed=seed,
    )


@settings(max_examples=n_examples(200))
@given(case=transpose_cases())
def test_conv_transpose_matches_torch(backend, pc, case):
    rng = np.random.default_rng(case["seed"])
    fdt = _float(backend)
    g = case["groups"]
    cin, cout = 2 * g, 3 * g
    x = rng.standard_normal((2, cin) + case["spatial"]).astype(fdt)
    w = rng.standard_normal((cin, cout // g) + case["kernel"]).astype(fdt)
    b = rng.standard_normal(cout).astype(fdt) if case["bias"] else None
    out = [
        (n - 1) * s - 2 * p + d * (k - 1) + op + 1
        for n, s, p, d, k, op in zip(
            case["spatial"],
            case["stride"],
            case["padding"],
            case["dilation"],
            case["kernel"],
            case["output_padding"],
        )
    ]
    if min(out) < 1:
        with pytest.raises(ValueError, match="conv_transpose: the computed output size"):
            pc.conv_transpose(
                x,
                w,
                b,
                case["stride"],
                case["padding"],
                case["output_padding"],
                g,
                case["dilation"],
            )
        return
    expected = TORCH_CONVT[case["nsp"]](
        _t(x),
        _t(w),
        None if b is None else _t(b),
        case["stride"],
        case["padding"],
        case["output_padding"],
        g,
        case["dilation"],
    ).numpy()
    got = pc.conv_transpose(
        x, w, b, case["stride"], case["padding"], case["output_padding"], g, case["dilation"]
    )
    bound = conv_bound(x, np.swapaxes(w, 0, 1), fdt) * 2 + (0 if b is None else 1e-5)
    assert_close(backend, got, expected, dtype=xp_dtype(backend, fdt), bound=bound)


@settings(max_examples=n_examples(200))
@given(case=conv_cases(torch_only=True))
def test_gradients_match_torch_autograd(backend, pc, case):
    if case["padding_mode"] != "zeros" or case["n"] == 0:
        case["padding_mode"] = "zeros"
        case["n"] = max(case["n"], 1)
    rng = np.random.default_rng(case["seed"])
    fdt = _float(backend)
    x = rng.standard_normal((case["n"], case["cin"]) + case["spatial"]).astype(fdt)
    w = rng.standard_normal((case["cout"], case["cin"] // case["groups"]) + case["kernel"]).astype(
        fdt
    )
    xt, wt = _t(x).requires_grad_(), _t(w).requires_grad_()
    y = TORCH_CONV[case["nsp"]](
        xt, wt, None, case["stride"], case["padding"], case["dilation"], case["groups"]
    )
    gy = rng.standard_normal(tuple(y.shape)).astype(fdt)
    y.backward(_t(gy))
    args = (case["stride"], case["padding"], case["dilation"], case["groups"])
    gx = pc.conv_input_grad(x.shape, w, gy, *args)
    gw = pc.conv_weight_grad(x, w.shape, gy, *args)
    assert_close(
        backend,
        gx,
        xt.grad.numpy(),
        dtype=xp_dtype(backend, fdt),
        bound=conv_bound(gy, np.swapaxes(w, 0, 1), fdt) * 4,
    )
    wbound = (
        16
        * np.finfo(fdt).eps
        * math.sqrt(gy.size)
        * np.abs(gy).max()
        * np.abs(x).max()
        * gy[0, 0].size
        * max(case["n"], 1)
    )
    assert_close(backend, gw, wt.grad.numpy(), dtype=xp_dtype(backend, fdt), bound=wbound)


def test_autodiff_through_conv(backend, pc):
    """jax.grad (jitted) and torch autograd agree with the explicit VJPs."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 4, 9, 8))
    w = rng.standard_normal((6, 2, 3, 3))
    gy_np = None
    args = dict(stride=2, padding="same", dilation=1, groups=2)
    if backend.name.startswith("jax"):
        import jax
        import jax.numpy as jnp

        import portconv

        def loss(x, w):
            return jnp.sum(portconv.conv(x, w, None, **args) ** 2)

        xj, wj = backend.asarray(x), backend.asarray(w)
        gx, gw = jax.jit(jax.grad(loss, argnums=(0, 1)))(xj, wj)
        gy_np = 2 * backend.to_numpy(portconv.conv(xj, wj, None, **args))
    elif backend.name.startswith("torch"):
        import portconv

        xt = backend.asarray(x).requires_grad_()
        wt = backend.asarray(w).requires_grad_()
        y = portconv.conv(xt, wt, None, **args)
        (y**2).sum().backward()
        gx, gw = xt.grad, wt.grad
        gy_np = 2 * backend.to_numpy(y)
    else:
        pytest.skip(f"{backend.name} has no autodiff: the explicit VJPs are tested above")
    ex_gx = backend.to_numpy(pc.conv_input_grad(x.shape, w, gy_np, **args))
    ex_gw = backend.to_numpy(pc.conv_weight_grad(x, w.shape, gy_np, **args))
    tol = 1e-9 if backend.has_float64 else 1e-3
    np.testing.assert_allclose(backend.to_numpy(gx), ex_gx, rtol=tol, atol=tol)
    np.testing.assert_allclose(backend.to_numpy(gw), ex_gw, rtol=tol, atol=tol)


def _edge_image() -> np.ndarray:
    img = np.ones((6, 8))
    img[:, 2:6] = 0.0
    return img


def test_seed_lesson_learns_edge_kernel(backend, pc):
    """Gradient descent with conv_weight_grad recovers the kernel [1, -1]."""
    fdt = _float(backend)
    x = _edge_image().astype(fdt)[None, None]
    true_k = np.array([[[[1.0, -1.0]]]], dtype=fdt)
    y = backend.to_numpy(pc.conv(x, true_k))
    assert y[0, 0, 0].tolist() == [0, 1, 0, 0, 0, -1, 0]  # the edges of the band
    k = np.random.default_rng(0).standard_normal((1, 1, 1, 2)).astype(fdt)
    lr = 1.0
    for _ in range(20):
        pred = backend.to_numpy(pc.conv(x, k))
        grad_out = (2.0 * (pred - y) / y.size).astype(fdt)
        k = k - lr * backend.to_numpy(pc.conv_weight_grad(x, k.shape, grad_out)).astype(fdt)
    np.testing.assert_allclose(k.ravel(), [1.0, -1.0], atol=0.05)


def test_seed_lesson_with_jax_grad(backend):
    if not backend.name.startswith("jax"):
        pytest.skip("the jax.grad version of the lesson runs on JAX backends")
    import jax
    import jax.numpy as jnp

    import portconv

    x = backend.asarray(_edge_image()[None, None])
    y = portconv.conv(x, backend.asarray(np.array([[[[1.0, -1.0]]]])))

    @jax.jit
    def step(k):
        g = jax.grad(lambda k: jnp.mean((portconv.conv(x, k) - y) ** 2))(k)
        return k - 1.0 * g

    k = backend.asarray(np.random.default_rng(0).standard_normal((1, 1, 1, 2)))
    for _ in range(20):
        k = step(k)
    np.testing.assert_allclose(np.asarray(k).ravel(), [1.0, -1.0], atol=0.05)
