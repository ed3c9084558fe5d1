"""Every internal strategy, forced one at a time, against an independent reference.

``method="auto"`` only runs the strategy the cost model prefers, so a strategy
that is rarely chosen (or a layout trick inside one, such as the banded
matmul's channel-major line grid) could be wrong without any public test
noticing.  Here the planner is asked for each admissible strategy in turn
(``plan_correlation(..., only=...)``, the same blocks and tiles it would pick
itself), run whole, in batch tiles and in row tiles, and the result is compared with the
np.pad/einsum reference, on every backend (jitted under JAX).
"""

from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from portconv import _core, _direct, _fft, _plan, _winograd
from portconv._compat import namespace_of
from portconv._dtypes import dtype_info

from ._helpers import assert_close, error_bound, jit_call, n_examples
from ._reference import conv_reference

EXAMPLES = 60
# zero padding is drawn most: the banded matmul folds it into the band
PAD_MODES = ("constant",) * 4 + ("reflect", "replicate", "circular", "symmetric")


@st.composite
def geometries(draw) -> dict:
    nsp = draw(st.integers(1, 3))
    groups = draw(st.sampled_from((1, 1, 2, 3)))
    depthwise = draw(st.sampled_from((True, True, False)))
    cg = 1 if depthwise else draw(st.integers(1, 3))
    cog = 1 if depthwise else draw(st.integers(1, 3))
    kernel = tuple(draw(st.integers(1, 4)) for _ in range(nsp))
    stride = tuple(draw(st.sampled_from((1, 1, 2, 3))) for _ in range(nsp))
    dilation = tuple(draw(st.sampled_from((1, 1, 2))) for _ in range(nsp))
    big = 24 if nsp == 1 else (12 if nsp == 2 else 6)
    spatial = tuple(draw(st.integers(1, big)) for _ in range(nsp))
    pads = tuple((draw(st.integers(-1, 3)), draw(st.integers(-1, 3))) for _ in range(nsp))
    spans = [d * (k - 1) + 1 for d, k in zip(dilation, kernel)]
    # every padded axis must hold the kernel span (the planner's callers check it)
    spatial = tuple(
        max(n, s - lo - hi, 1 - min(lo, 0) - min(hi, 0), 1)
        for n, s, (lo, hi) in zip(spatial, spans, pads)
    )
    mode = draw(st.sampled_from(PAD_MODES))
    if mode != "constant":  # index-map padding needs pads within the input
        pads = tuple(
            (min(max(lo, 0), n - 1), min(max(hi, 0), n - 1)) for n, (lo, hi) in zip(spatial, pads)
        )
        spatial = tuple(max(n, s - lo - hi) for n, s, (lo, hi) in zip(spatial, spans, pads))
    return {
        "batch": draw(st.integers(1, 3)),
        "groups": groups,
        "cg": cg,
        "cog": cog,
        "spatial": spatial,
        "kernel": kernel,
        "stride": stride,
        "dilation": dilation,
        "pads": pads,
        "mode": mode,
        "fill": draw(st.sampled_from((0, 0, 1.5))) if mode == "constant" else 0,
        "seed": draw(st.integers(0, 2**16)),
    }


def _count_calls(monkeypatch, module, name) -> list:
    """A list that grows by one each time ``module.name`` (a function) is called."""
    calls = []
    original = getattr(module, name)

    def counted(*args):
        calls.append(1)
        return original(*args)

    monkeypatch.setattr(module, name, counted)
    return calls


def _run(backend, fn, *arrays):
    """``fn(*arrays)``, under ``jax.jit`` on JAX backends."""
    return jit_call(fn, *arrays) if backend.jit else fn(*arrays)


def _bound(backend, a64, b64, shape, fill=0.0) -> float:
    """:func:`error_bound` in the dtype the backend computes in.

    ``fill``: the constant padding, which the outputs read as input values.
    """
    a64 = np.maximum(np.abs(a64), abs(fill))
    return error_bound(a64, b64, np.float64 if backend.has_float64 else np.float32, shape)


def _case_geometry(c) -> _plan.Geometry:
    """The geometry of a drawn case (``geometries``, ``dilated_geometries``)."""
    cin, cout = c["groups"] * c["cg"], c["groups"] * c["cog"]
    return _plan.Geometry(
        c["batch"], cin, cout, c["groups"], c["spatial"], c["kernel"], c["stride"],
        c["dilation"], c["pads"],
    )  # fmt: skip


NP_MODES = {"reflect": "reflect", "replicate": "edge", "circular": "wrap", "symmetric": "symmetric"}


def _reference(x, w, c) -> np.ndarray:
    """Crop negative pads, pad with NumPy, then the einsum reference."""
    crop = tuple(slice(max(-lo, 0), n - max(-hi, 0)) for n, (lo, hi) in zip(x.shape[2:], c["pads"]))
    xc = x[(slice(None), slice(None)) + crop]
    grow = [(0, 0), (0, 0)] + [(max(lo, 0), max(hi, 0)) for lo, hi in c["pads"]]
    if c["mode"] == "constant":
        xpad = np.pad(xc, grow, mode="constant", constant_values=c["fill"])
    else:
        xpad = np.pad(xc, grow, mode=NP_MODES[c["mode"]])
    zero = [(0, 0)] * len(c["pads"])
    return conv_reference(xpad, w, None, c["stride"], zero, c["dilation"], c["groups"])


# a one-sample input padded with 1.5: the outputs read the fill, so the
# error bound must scale with it (the FFT missed a bound made from x alone)
_FILL_OUTWEIGHS_INPUT = {
    "batch": 1, "groups": 1, "cg": 1, "cog": 1, "spatial": (1,), "kernel": (1,),
    "stride": (1,), "dilation": (1,), "pads": ((0, 1),), "mode": "constant", "fill": 1.5,
    "seed": 12,
}  # fmt: skip


@settings(max_examples=n_examples(EXAMPLES))
@given(c=geometries())
@example(c=_FILL_OUTWEIGHS_INPUT)
def test_every_strategy_matches_the_reference(backend, c):
    ran = _check_strategies(backend, c, _plan.STRATEGIES)
    # the per-tap matmul is always admissible, the broadcast one per channel
    assert ran is None or ("shift" in ran and ("elementwise" in ran) == (c["cg"] == 1)), ran


def _fixed_case(spatial, kernel, stride, dilation, pads, *, batch, groups, cg, cog, seed,
                mode="constant", fill=0):  # fmt: skip
    """A hand-picked case, in the layout :func:`geometries` draws."""
    return {
        "batch": batch,
        "groups": groups,
        "cg": cg,
        "cog": cog,
        "spatial": spatial,
        "kernel": kernel,
        "stride": stride,
        "dilation": dilation,
        "pads": pads,
        "mode": mode,
        "fill": fill,
        "seed": seed,
    }


def _winograd_case(
    spatial, pads, mode="constant", fill=0, batch=2, c_in=3, c_out=2, kernel=(3, 3), stride=(1, 1)
):
    return _fixed_case(
        spatial, kernel, stride, (1, 1), pads, batch=batch, groups=1, cg=c_in, cog=c_out,
        seed=sum(spatial), mode=mode, fill=fill,
    )  # fmt: skip


@pytest.mark.parametrize(
    "c",
    [
        _winograd_case((8, 8), ((1, 1), (1, 1))),  # even outputs: whole tiles
        _winograd_case((7, 10), ((1, 1), (1, 1))),  # odd rows: a half tile
        _winograd_case((9, 5), ((0, 0), (2, 1))),  # valid rows, uneven pads
        _winograd_case((6, 6), ((1, 2), (-1, 1))),  # a cropped edge
        _winograd_case((6, 7), ((1, 1), (1, 1)), "reflect", batch=3),
        _winograd_case((5, 6), ((2, 1), (1, 1)), "constant", fill=1.5, c_in=1, c_out=4),
        # other kernels (Toom-Cook transforms of 3 to 6 points per axis)
        _winograd_case((9, 8), ((2, 2), (2, 2)), kernel=(5, 5)),
        _winograd_case((7, 6), ((0, 1), (1, 0)), kernel=(2, 2)),
        _winograd_case((8, 11), ((1, 2), (2, 1)), "reflect", kernel=(4, 4)),
        _winograd_case((6, 9), ((1, 1), (2, 2)), kernel=(3, 5)),
        _winograd_case((10, 7), ((0, 0), (1, 1)), kernel=(5, 2), batch=3, c_in=2, c_out=3),
        # strided: the stride phases as channels (a zero-padded sub-kernel)
        _winograd_case((12, 11), ((1, 1), (1, 1)), kernel=(4, 4), stride=(2, 2), c_in=4),
        _winograd_case((13, 9), ((2, 2), (2, 1)), kernel=(5, 5), stride=(2, 2), c_in=4),
        _winograd_case((9, 14), ((0, 1), (2, 2)), "reflect", kernel=(4, 5), stride=(2, 2), c_in=5),
        _winograd_case((15, 10), ((1, 0), (0, 0)), kernel=(6, 4), stride=(3, 2), c_in=3),
    ],
)
def test_winograd_matches_the_reference(backend, c):
    # the hypothesis geometries rarely draw an admissible shape; the
    # strategy is forced, so every kernel size runs on every backend (the
    # planner offers kernels other than 3x3 only under XLA)
    assert _check_strategies(backend, c, ("winograd",)) == ["winograd"]


def _toeplitz_case(
    spatial, kernel, pads, mode="constant", stride=1, batch=2, groups=3, last_stride=1
):
    nsp = len(spatial)
    return _fixed_case(
        spatial, kernel, (stride,) * (nsp - 1) + (last_stride,), (1,) * nsp, pads, batch=batch,
        groups=groups, cg=1, cog=1, seed=sum(spatial) + len(kernel), mode=mode,
    )  # fmt: skip


@pytest.mark.parametrize(
    "c",
    [
        _toeplitz_case((700,), (5,), ((2, 2),)),
        _toeplitz_case((9, 90), (3, 4), ((1, 1), (2, 1))),  # channel-major lines
        _toeplitz_case((9, 90), (3, 4), ((1, 1), (2, 1)), "reflect"),
        _toeplitz_case((9, 90), (2, 3), ((0, 0), (1, 1)), stride=2),  # strided rows
        # 86 groups x 3 head taps: enough bands to be gathered by one take
        _toeplitz_case((5, 20), (3, 4), ((1, 1), (2, 1)), batch=1, groups=86),
        _toeplitz_case((7, 20), (3, 2), ((0, 0), (1, 0)), stride=2, batch=5, groups=86),
        # a stride along the band: frames ``s * block`` apart, ``T[m, j] = w[m - s * j]``
        _toeplitz_case((301,), (7,), ((3, 3),), last_stride=4),
        _toeplitz_case((9, 91), (3, 3), ((1, 1), (1, 1)), last_stride=2),  # channel-major lines
        # 45 outputs, block 45: its band has no row for the line's last sample
        _toeplitz_case((9, 91), (3, 3), ((1, 1), (1, 0)), last_stride=2),
        _toeplitz_case((9, 90), (3, 5), ((1, 2), (2, 2)), "reflect", last_stride=3),
        _toeplitz_case((8, 33), (2, 3), ((0, 0), (0, 1)), stride=2, last_stride=2),
        _toeplitz_case((5, 21), (3, 3), ((1, 1), (1, 1)), batch=1, groups=86, last_stride=2),
    ],
)
def test_banded_matmul_frames_lines_every_way(backend, c):
    # Blocks of 1 to 90+ outputs cover one frame per line, a few stacked
    # frames and many joined ones (``_plan.STACKED_FRAMES``).
    blocks = (1, 8, 16, 45, 96)
    assert _check_strategies(backend, c, ("toeplitz",), blocks) == ["toeplitz"]


def _windows_case(spatial, kernel, stride, dilation, pads, groups=1, cg=2, cog=3, batch=2):
    return _fixed_case(
        spatial, kernel, stride, dilation, pads, batch=batch, groups=groups, cg=cg, cog=cog,
        seed=sum(spatial) + sum(kernel),
    )  # fmt: skip


@pytest.mark.parametrize(
    "c",
    [
        _windows_case((9, 8), (9, 8), (1, 1), (1, 1), ((0, 0), (0, 0)), cg=1, cog=1, batch=1),
        _windows_case((12,), (5,), (3,), (2,), ((1, 0),), groups=2),  # 2 outputs, 5 taps
        _windows_case((7, 9), (4, 5), (2, 3), (1, 1), ((0, 1), (1, 0))),
        _windows_case((5, 6, 5), (3, 3, 2), (2, 2, 2), (1, 2, 1), ((0, 0), (0, 0), (1, 0))),
    ],
)
def test_windows_stacks_one_slice_per_output(backend, c):
    # fewer outputs per sample than taps: ``windows`` is offered and exact
    g = _case_geometry(c)
    assert math.prod(g.out_spatial) < g.taps and _plan.windows_applies(g), g
    assert _check_strategies(backend, c, ("windows",)) == ["windows"]


@pytest.mark.parametrize(
    "c, axis",
    [
        (_fixed_case((9, 7), (5, 1), (1, 1), (1, 1), ((2, 2), (0, 0)), batch=1, groups=1,
                     cg=1, cog=1, seed=1), 0),
        (_fixed_case((10, 8), (4, 2), (1, 2), (1, 1), ((1, 2), (0, 1)), batch=2, groups=3,
                     cg=1, cog=1, seed=2, mode="reflect"), 0),
        (_fixed_case((6, 5, 7), (3, 1, 2), (1, 2, 1), (2, 1, 1), ((2, 1), (0, 0), (1, 0)),
                     batch=2, groups=2, cg=1, cog=1, seed=3, mode="circular"), 0),
        (_fixed_case((4, 9, 5), (1, 4, 1), (1, 1, 1), (1, 1, 1), ((0, 0), (1, 2), (0, 0)),
                     batch=1, groups=1, cg=1, cog=1, seed=4, fill=1.5), 1),
    ],
)  # fmt: skip
def test_exchanged_axes_match_the_reference(backend, c, axis):
    # the banded matmul along another axis than the last: planned with the
    # axes exchanged, run on a transposed view, handed back transposed
    ran = _check_strategies(backend, c, ("toeplitz", "shift", "elementwise"), swap=axis)
    assert ran == ["toeplitz", "shift", "elementwise"], ran


def test_a_banded_matmul_runs_along_the_longest_kernel_axis():
    f32 = _plan.DtypeInfo("real", 4)

    def plan(image, kernel, channels=1, groups=1, stride=None, dtype=f32):
        nsp = len(image)
        pads = tuple(((k - 1) // 2, k // 2) for k in kernel)
        g = _plan.Geometry(
            1, channels, channels, groups, image, kernel, stride or (1,) * nsp, (1,) * nsp, pads
        )
        return _plan.plan_correlation(g, "auto", dtype, "cpu", True, False, 2**31, "t")

    # a column filter on NumPy: 1.25 ms elementwise, 0.45 ms banded with the
    # axes exchanged (300^2, 51x1, same); the row filter needs no exchange
    col = plan((300, 300), (51, 1))
    assert (col.strategy, col.swap_axis, col.swapped.geometry.kernel) == ("toeplitz", 0, (1, 51))
    assert col.geometry.kernel == (51, 1) and col.workspace_bytes > col.swapped.workspace_bytes
    assert plan((300, 300), (1, 51)).swapped is None
    assert plan((40, 30, 50), (1, 9, 2)).swap_axis in (None, 1)
    # never where the band cannot run: several channels per group, integers,
    # a stride along the longer axis, or a span no longer than the last one's
    g = _plan.Geometry(1, 4, 4, 1, (300, 300), (51, 1), (1, 1), (1, 1), ((25, 25), (0, 0)))
    assert _plan.band_axis(g, f32) is None
    assert _plan.band_axis(dataclasses.replace(g, groups=4), f32) == 0
    assert _plan.band_axis(dataclasses.replace(g, groups=4), _plan.DtypeInfo("int", 4)) is None
    assert _plan.band_axis(dataclasses.replace(g, groups=4, stride=(2, 1)), f32) is None
    assert _plan.band_axis(dataclasses.replace(g, groups=4, kernel=(3, 3)), f32) is None
    assert (
        _plan.band_axis(dataclasses.replace(g, groups=4, kernel=(3, 2), dilation=(2, 1)), f32) == 0
    )


def _check_strategies(backend, c, strategies, blocks=(), swap=None) -> list[str] | None:
    """Run every admissible strategy of ``strategies`` on case ``c``; return those run.

    None when the case has no output to compare.  ``blocks``: banded-matmul
    blocks to run besides the planner's.  ``swap``: plan the problem with
    that spatial axis and the last exchanged, and run it so (``Plan.swapped``).
    """
    rng = np.random.default_rng(c["seed"])
    cin, cout = c["groups"] * c["cg"], c["groups"] * c["cog"]
    x64 = rng.standard_normal((c["batch"], cin) + c["spatial"])
    w64 = rng.standard_normal((cout, c["cg"]) + c["kernel"])
    g = _case_geometry(c)
    if min(g.out_spatial) < 1:
        return None
    expected = _reference(x64, w64, c)
    dtype = backend.dtype("float64") if backend.has_float64 else backend.dtype("float32")
    x, w = backend.asarray(x64), backend.asarray(w64)
    if x.dtype != dtype:
        x, w = backend.xp.astype(x, dtype), backend.xp.astype(w, dtype)
    xp = namespace_of("test", x=x, w=w)
    info = dtype_info(xp, x.dtype, (x.dtype,))
    zeros = c["mode"] == "constant" and c["fill"] == 0
    outer, g = g, (g if swap is None else _plan.swap_axes_geometry(g, swap))
    ran = []
    for strategy in strategies:
        try:
            plan = _core.make_plan(
                "test", xp, x, g, "auto", info, 2**40, only=strategy, zero_pads=zeros
            )
        except LookupError:
            if strategy != "winograd":
                continue
            try:  # other kernels and strides are planned under XLA only: plan there, run here
                plan = _plan.plan_correlation(
                    g,
                    "auto",
                    info,
                    "cpu",
                    True,
                    True,
                    2**40,
                    "test",
                    only=strategy,
                    zero_pads=zeros,
                )
            except LookupError:
                continue
        ran.append(strategy)
        plans = [plan]
        if g.batch > 1:  # and in batch tiles, the last one shorter when batch is 3
            plans.append(dataclasses.replace(plan, batch_tile=g.batch - 1))
        if g.out_spatial[0] > 2 and not strategy.startswith("fft"):
            # and in tiles of output rows along the first spatial axis
            plans.append(dataclasses.replace(plan, row_tile=g.out_spatial[0] // 2))
        if strategy == "toeplitz":
            plans += [dataclasses.replace(plan, block=b) for b in blocks]
        if plan.fft_wrap:  # and on the grid that holds the padded input
            plans += [
                dataclasses.replace(p, fft_wrap=False, fft_shape=_plan.fft_grid(g, False))
                for p in plans
            ]
        if strategy in ("shift", "im2col_last", "im2col") and max(g.stride) > 1:
            # the strided forms with and without the phase grid, on every
            # backend (the planner picks it for NumPy-like CPU libraries only)
            plans += [dataclasses.replace(p, phase_grid=not p.phase_grid) for p in plans]
        if strategy == "im2col":
            # and channel-major, the batch in one matmul (the planner does it
            # for few positions a sample on NumPy-like rows; it gathers its
            # windows itself, so the phase grid's flag is then ignored)
            plans += [dataclasses.replace(p, batch_gemm=not p.batch_gemm) for p in plans]
        if strategy == "elementwise" and _plan.fits_flat_grid(g):
            # and on the channel-major flat grid, in chunks of part of a
            # channel's run and of two runs (the planner does it on
            # NumPy-like rows for long runs only)
            run = _plan.flat_chunks(g, 1)[2]
            plans += [
                dataclasses.replace(p, flat_chunk=t) for p in plans for t in (run // 2 + 1, 2 * run)
            ]
        if strategy in ("shift", "im2col_last", "im2col"):
            # tiles and taps in order (the planner orders them under XLA only)
            plans += [
                dataclasses.replace(p, in_order=not p.in_order, taps_in_order=not p.taps_in_order)
                for p in plans
            ]
        if swap is not None:
            plans = [
                dataclasses.replace(p, geometry=outer, swapped=p, swap_axis=swap) for p in plans
            ]
        # and channels-last (computed so on the stride-1 grid, a view otherwise)
        runs = [(p, False) for p in plans] + [(p, True) for p in plans if _direct.uses_grid(p)]
        for plan, last in runs:

            def run(x, w, plan=plan, last=last):
                return _core.correlate_nd(
                    xp, x, w, plan, pad_mode=c["mode"], fill=c["fill"], channels_last=last
                )

            y = _run(backend, run, x, w)
            bound = _bound(backend, x64, w64, expected.shape, c["fill"])
            bound *= math.sqrt(c["groups"] * c["cg"] + 1)
            want = np.moveaxis(expected, 1, -1) if last else expected
            try:
                assert_close(backend, y, want, dtype=dtype, bound=bound)
            except AssertionError as exc:
                raise AssertionError(
                    f"strategy {strategy!r}, plan {plan}, last {last}: {exc}"
                ) from exc
    return ran


@pytest.mark.parametrize("previous", [-3.0, 0.0, -0.0, math.inf, -math.inf, math.nan])
def test_after_leaves_every_value_bit_for_bit(backend, previous):
    # no subnormals: XLA's CPU flushes them to zero in every operation
    # (its products too, so ordering changes nothing there)
    values = np.array([-0.0, 0.0, 1.5, -2.5, math.inf, -math.inf, math.nan, 1e-30])
    dtype = "float64" if backend.has_float64 else "float32"
    x = backend.xp.astype(backend.asarray(values), backend.dtype(dtype))
    prev = backend.xp.astype(backend.asarray(np.full((2, 3), previous)), backend.dtype(dtype))
    y = _direct.after(backend.xp, x, prev)
    got, want = backend.to_numpy(y), backend.to_numpy(x)
    assert got.dtype == want.dtype
    assert np.array_equal(got.view(f"u{got.itemsize}"), want.view(f"u{want.itemsize}"))


def _scatter_reference(gy, w, in_spatial, stride, pads, groups):
    """The input gradient of ``correlate(x, w)`` by scattering every tap's products."""
    n, c_out, out = gy.shape[0], gy.shape[1], gy.shape[2:]
    cg, kernel = w.shape[1], w.shape[2:]
    cog = c_out // groups
    full = tuple(
        max((o - 1) * s + k, lo + nx)
        for o, s, k, (lo, _), nx in zip(out, stride, kernel, pads, in_spatial)
    )
    grad = np.zeros((n, groups * cg) + full)
    for tap in itertools.product(*(range(k) for k in kernel)):
        hit = tuple(slice(t, t + (o - 1) * s + 1, s) for t, o, s in zip(tap, out, stride))
        for g in range(groups):
            wt = w[(slice(g * cog, (g + 1) * cog), slice(None)) + tap]  # (Cog, Cg)
            part = np.einsum("no...,oc->nc...", gy[:, g * cog : (g + 1) * cog], wt)
            grad[(slice(None), slice(g * cg, (g + 1) * cg)) + hit] += part
    keep = tuple(slice(lo, lo + nx) for (lo, _), nx in zip(pads, in_spatial))
    return grad[(slice(None), slice(None)) + keep]


def _input_grad_case(backend, rng, n, groups, cg, cog, in_spatial, kernel, stride, pads):
    """Random ``gy``, ``w`` of an input-gradient case, its reference, and both on ``backend``."""
    out = tuple(
        (nx + lo + hi - k) // s + 1 for nx, (lo, hi), k, s in zip(in_spatial, pads, kernel, stride)
    )
    gy64 = rng.standard_normal((n, groups * cog) + out)
    w64 = rng.standard_normal((groups * cog, cg) + kernel)
    expected = _scatter_reference(gy64, w64, in_spatial, stride, pads, groups)
    dtype = backend.dtype("float64") if backend.has_float64 else backend.dtype("float32")
    gy = backend.xp.astype(backend.asarray(gy64), dtype)
    w = backend.xp.astype(backend.asarray(w64), dtype)
    xp = namespace_of("test", gy=gy, w=w)
    return gy64, w64, expected, dtype, gy, w, xp, dtype_info(xp, gy.dtype, (gy.dtype,))


@pytest.mark.parametrize(
    "form", ["separate-first", "separate-last", "merged-first", "merged-last", "col2im"]
)
@pytest.mark.parametrize(
    "in_spatial, kernel, stride, pads, groups",
    [
        ((9, 8), (4, 4), (2, 2), ((1, 1), (1, 1)), 1),  # one correlation holds every phase
        ((9, 7), (3, 3), (2, 2), ((1, 1), (1, 0)), 2),  # sub-kernels 2x2, 2x1, 1x2, 1x1
        ((14,), (5,), (3,), ((2, 2),), 1),
        ((5, 6, 4), (2, 3, 2), (2, 2, 2), ((0, 0), (1, 0), (0, 1)), 1),
        ((10, 9), (3, 2), (3, 2), ((1, 2), (0, 1)), 2),  # more inputs than the taps reach
        # kernels narrower than the stride: phases no tap meets are zeros
        ((9, 8), (1, 1), (2, 2), ((0, 0), (0, 0)), 1),
        ((13,), (2,), (3,), ((1, 0),), 2),
        ((8, 9), (1, 3), (2, 2), ((0, 0), (1, 1)), 1),
    ],
)
def test_sub_pixel_phases_interleave_either_way(
    backend, in_spatial, kernel, stride, pads, groups, form, monkeypatch
):
    # conv_transpose / conv_input_grad interleave the phases channels-first or
    # channels-last (``_plan.phases_last``: by cost row and multiply-adds per
    # output), run phases of unequal sub-kernels separately or merged
    # (``_plan.merge_phases``), or sum every phase from all taps' products
    # (``_plan.col2im_phases``, one group and every phase meeting a tap);
    # every form on every backend, whichever the planner would pick
    from portconv import _transpose

    def no_zero_insertion(*args):
        raise AssertionError("zero insertion ran instead of the sub-pixel phases")

    monkeypatch.setattr(_transpose, "_zero_insertion", no_zero_insertion)
    col2im_runs = _count_calls(monkeypatch, _transpose, "_col2im")
    rng = np.random.default_rng(len(in_spatial) + sum(kernel))
    cog = 2
    case = _input_grad_case(backend, rng, 2, groups, 3, cog, in_spatial, kernel, stride, pads)
    gy64, w64, expected, dtype, gy, w, xp, info = case
    dilation = (1,) * len(kernel)

    def run(gy, w):
        return _transpose.input_grad(
            xp,
            gy,
            w,
            in_spatial,
            stride,
            dilation,
            pads,
            groups,
            info,
            2**40,
            "t",
            "direct",
            last=form.endswith("last"),
            merge=form.startswith("merged"),
            col2im=form == "col2im",
        )

    bound = _bound(backend, gy64, w64, expected.shape) * math.sqrt(cog * groups + 1)
    assert_close(backend, _run(backend, run, gy, w), expected, dtype=dtype, bound=bound)
    eligible = groups == 1 and all(s <= k for s, k in zip(stride, kernel))
    assert bool(col2im_runs) == (form == "col2im" and eligible), col2im_runs


@pytest.mark.parametrize("strategy", _direct.TRANSPOSED_IN_PLACE)
@pytest.mark.parametrize(
    "in_spatial, kernel, pads, groups, batch",
    [
        ((7, 6), (3, 3), ((1, 1), (1, 1)), 1, 1),
        ((7, 6), (3, 2), ((1, 1), (0, 1)), 1, 3),
        ((9,), (4,), ((2, 1),), 1, 2),
        ((4, 5, 6), (2, 3, 2), ((0, 1), (1, 1), (1, 0)), 1, 2),
        ((7, 6), (3, 3), ((1, 1), (1, 1)), 2, 2),  # groups keep the C-order copy
    ],
)
def test_stride_one_input_gradient_reads_the_transposed_weight_in_place(
    backend, in_spatial, kernel, pads, groups, batch, strategy, monkeypatch
):
    # the input gradient's swapped, flipped weight is one copy laid out for
    # the strategy's matmuls (``_direct.transposed_weight``), which read it
    # through transposed views; forced strategy by strategy, on every backend
    from portconv import _transpose

    original = _transpose.make_plan

    def forced(*args, **kwargs):
        return original(*args, only=strategy, **kwargs)

    monkeypatch.setattr(_transpose, "make_plan", forced)
    laid_out = _count_calls(monkeypatch, _transpose, "transposed_weight")
    rng = np.random.default_rng(sum(in_spatial) + len(kernel) + groups)
    cog = 4
    ones = (1,) * len(kernel)
    case = _input_grad_case(backend, rng, batch, groups, 3, cog, in_spatial, kernel, ones, pads)
    gy64, w64, expected, dtype, gy, w, xp, info = case

    def run(gy, w):
        return _transpose.input_grad(
            xp, gy, w, in_spatial, ones, ones, pads, groups, info, 2**40, "t", "direct"
        )

    try:
        got = _run(backend, run, gy, w)
    except LookupError:  # not admissible: 1-d im2col_last is im2col
        assert strategy == "im2col_last" and len(kernel) == 1, strategy
        return
    bound = _bound(backend, gy64, w64, expected.shape) * math.sqrt(cog * groups + 1)
    assert_close(backend, got, expected, dtype=dtype, bound=bound)
    assert bool(laid_out) == (groups == 1 and strategy in _direct.TRANSPOSED_IN_PLACE)


def test_transposed_weight_feeds_every_matmul_without_a_copy():
    # NumPy: the per-tap / per-row / whole operands are views of the one copy
    from portconv._compat import blas_matrices

    w = np.random.default_rng(3).standard_normal((5, 4, 3, 2)).astype(np.float32)
    want = np.flip(w, (2, 3)).transpose(1, 0, 2, 3)
    for strategy, keep in (("shift", 0), ("im2col_last", 1)):
        wt = _direct.transposed_weight(np, w, strategy)
        assert np.array_equal(wt, want) and not np.shares_memory(wt, w)
        g = _plan.Geometry(1, 5, 4, 1, (4, 4), (3, 2), (1, 1), (1, 1), ((0, 0), (0, 0)))
        taps = _direct._taps_leading(np, wt, g, keep)
        assert np.shares_memory(taps, wt), strategy
        assert taps.flags.c_contiguous is False
    wt = _direct.transposed_weight(np, w, "im2col")
    whole = np.reshape(wt, (1, 4, 5 * 6))
    assert np.shares_memory(whole, wt) and blas_matrices(np, whole) is whole
    # a strided view and a flipped one are copied to C order, a C-order array kept
    strided = np.zeros((6, 8), np.float32)[::2, ::2]
    assert blas_matrices(np, strided).flags.c_contiguous
    assert blas_matrices(np, np.flip(w, 3)).flags.c_contiguous
    assert blas_matrices(np, w) is w


@pytest.mark.parametrize(
    ("shape", "pads", "fill", "tail", "one_copy"),
    [
        ((8, 16, 32, 32), ((1, 1), (1, 1)), 0, None, True),  # 512 KiB, 2 axes
        ((4, 32, 32, 32), ((2, 0), (0, 3)), 1.5, None, True),
        ((2, 8, 16, 32, 32), ((1, 1), (0, 0), (1, 2)), 0, (0, 0, 3), True),  # tail folded
        ((2, 8, 16, 32, 32), ((1, 1), (1, 1), (1, 1)), 2.5, (0, 0, 3), False),  # tail not fill
        ((8, 16, 32, 32), ((-1, 1), (1, 1)), 0, None, False),  # crops
        ((8, 16, 32, 32), ((0, 0), (1, 1)), 0, None, False),  # one axis: nothing to gain
        ((2, 16, 32, 32), ((1, 1), (1, 1)), 0, None, False),  # 128 KiB: concat is as fast
    ],
)
def test_numpy_pads_two_or_more_axes_in_one_copy_as_concat_does(
    monkeypatch, shape, pads, fill, tail, one_copy
):
    from portconv import _pad

    x = np.random.default_rng(4).standard_normal(shape).astype(np.float32)
    taken = []
    native = _pad.one_copy_pad

    def spy(*args):
        taken.append(native(*args))
        return taken[-1]

    monkeypatch.setattr(_pad, "one_copy_pad", spy)
    got = _pad.pad_axes(np, x, pads, "constant", fill, tail)
    monkeypatch.setattr(_pad, "one_copy_pad", lambda *args: None)
    want = _pad.pad_axes(np, x, pads, "constant", fill, tail)
    assert got.shape == want.shape and np.array_equal(got, want)
    assert any(t is not None for t in taken) == one_copy


def test_phases_go_channels_last_on_numpy_like_rows_for_shallow_contractions():
    limit = _plan.PHASES_LAST_MAX_MACS
    assert _plan.phases_last("cpu", False, limit) and _plan.phases_last("cpu", False, 1)
    assert not _plan.phases_last("cpu", False, limit + 1)
    # off under XLA (its transposed convolution already ran under lax's time)
    # and on the unmeasured GPU row
    assert not _plan.phases_last("cpu", True, 1) and not _plan.phases_last("gpu", False, 1)


def test_sub_pixel_phases_merge_for_few_channels_and_bounded_waste():
    # 3x3 stride 2: 16 products for 9 taps; merged up to 64 "channels"
    assert _plan.merge_phases((3, 3), (2, 2), 64, 128)  # 42.7
    assert _plan.merge_phases((3, 3), (2, 2), 128, 128)  # 64
    assert not _plan.merge_phases((3, 3), (2, 2), 128, 256)  # 85.3
    assert not _plan.merge_phases((3, 3), (2, 2), 256, 512)
    # and up to 2.5 products per tap: 3x3x3 stride 2 (64 for 27) and a 5-tap
    # 1-d kernel at stride 4 (8 for 5) merge; 5x5 stride 4 (64 for 25) and
    # 1x1 stride 2 (4 for 1) do not
    assert _plan.merge_phases((3, 3, 3), (2, 2, 2), 8, 16)
    assert _plan.merge_phases((5,), (4,), 8, 8)
    assert not _plan.merge_phases((5, 5), (4, 4), 8, 8)
    assert not _plan.merge_phases((1, 1), (2, 2), 8, 8)


def test_col2im_for_products_no_larger_than_the_stacks():
    # taps * c_in against 1.15 * stacked taps * c_out, from 16 channels
    assert _plan.col2im_phases((3, 3), (2, 2), 128, 256, 1, 9, "cpu")  # 1152 <= 2650
    assert _plan.col2im_phases((3, 3), (2, 2), 64, 128, 1, 4, "cpu")  # 576 <= 589
    assert not _plan.col2im_phases((4, 4), (2, 2), 32, 64, 1, 4, "cpu")  # 512 > 294
    assert not _plan.col2im_phases((5, 5), (2, 2), 32, 64, 1, 9, "cpu")  # 800 > 662
    # few channels, groups, or not measured on the device: no
    assert not _plan.col2im_phases((7, 7), (2, 2), 3, 64, 1, 16, "cpu")
    assert not _plan.col2im_phases((3, 3), (2, 2), 128, 256, 2, 9, "cpu")
    assert not _plan.col2im_phases((3, 3), (2, 2), 128, 256, 1, 9, "gpu")


def test_batch_gemm_joins_samples_of_im2col_on_numpy_like_rows():
    cpu = _plan._COSTS["cpu"]
    deep = _plan.Geometry(8, 512, 512, 1, (7, 7), (3, 3), (1, 1), (1, 1), ((1, 1), (1, 1)))
    assert _plan.batch_gemm(deep, "im2col", cpu)
    # at any depth: three channels, or four channels in each of 32 groups
    for c_in, c_out, groups in ((3, 32, 1), (128, 128, 32)):
        shallow = dataclasses.replace(deep, in_channels=c_in, out_channels=c_out, groups=groups)
        assert _plan.batch_gemm(shallow, "im2col", cpu)
    # and strided (each tap's windows are gathered exactly)
    assert _plan.batch_gemm(dataclasses.replace(deep, stride=(2, 2)), "im2col", cpu)
    # but not for other strategies, one sample or many positions
    assert not _plan.batch_gemm(deep, "im2col_last", cpu)
    assert not _plan.batch_gemm(dataclasses.replace(deep, batch=1), "im2col", cpu)
    side = math.isqrt(_plan.BATCH_GEMM_MAX_POSITIONS)
    assert _plan.batch_gemm(dataclasses.replace(deep, in_spatial=(side, side)), "im2col", cpu)
    wide = dataclasses.replace(deep, in_spatial=(side + 1, side))
    assert not _plan.batch_gemm(wide, "im2col", cpu)
    # off under XLA (its own dot layouts) and on the unmeasured GPU row
    assert not _plan.batch_gemm(deep, "im2col", _plan._COSTS["cpu-xla"])
    assert not _plan.batch_gemm(deep, "im2col", _plan._COSTS["gpu"])
    # and the planner sets it on the tile it plans
    info = _plan.DtypeInfo("real", 4)
    plan = _plan.plan_correlation(
        deep, "direct", info, "cpu", True, False, 2**30, "t", only="im2col"
    )
    assert plan.batch_gemm == (plan.batch_tile > 1 and plan.row_tile is None)
    assert plan.batch_tile > 1


def test_a_channel_major_im2col_is_priced_as_one_matmul_over_every_sample():
    cpu = {**_plan._COSTS["cpu"], "shared_pad": 0}  # the padding's copy apart (own work)
    g = _plan.Geometry(8, 64, 128, 1, (14, 14), (3, 3), (1, 1), (1, 1), ((1, 1), (1, 1)))
    assert _plan.batch_gemm(g, "im2col", cpu)
    f32 = _plan.DtypeInfo("real", 4)
    _, gemm = _plan._strategy_time(g, "im2col", f32, cpu, None, None)
    pack = 128 * 64 * 9 * cpu["pack"]  # its weight, packed once
    assert gemm == pytest.approx(_plan._gemm_time(cpu, 8 * 14 * 14, 64 * 9, 128, 1, 1) + pack)
    # one sample keeps the flat-grid form: a product of its own positions
    one = dataclasses.replace(g, batch=1)
    _, gemm1 = _plan._strategy_time(one, "im2col", f32, cpu, None, None)
    assert gemm1 == pytest.approx(_plan._gemm_time(cpu, 14 * 14, 64 * 9, 128, 1, 1) + pack)


def test_a_strided_channel_major_im2col_prices_its_column_phase_split():
    # strided along the last axis, the windows are gathered from the column
    # phases, split with one more copy of the padded input (_tap_views)
    cpu = {**_plan._COSTS["cpu"], "shared_pad": 0}  # those copies in its own work
    f32 = _plan.DtypeInfo("real", 4)
    g = _plan.Geometry(8, 64, 128, 1, (28, 28), (3, 3), (2, 2), (1, 1), ((1, 1), (1, 1)))
    assert _plan.batch_gemm(g, "im2col", cpu)
    own, _ = _plan._strategy_time(g, "im2col", f32, cpu, None, None)
    x_padded, windows = 8 * 64 * 30 * 30, 9 * 8 * 14 * 14 * 64
    assert own == pytest.approx((2 * x_padded + windows) * cpu["copy"] + 9 * cpu["call"])
    rows_only = dataclasses.replace(g, stride=(2, 1))  # columns not strided: no split
    own, _ = _plan._strategy_time(rows_only, "im2col", f32, cpu, None, None)
    windows = 9 * 8 * 14 * 28 * 64
    assert own == pytest.approx((x_padded + windows) * cpu["copy"] + 9 * cpu["call"])


def test_a_strided_1d_shift_prices_its_taps_as_views_of_the_column_phases():
    # after the padding and the column-phase split (two copies of the
    # padded input) every tap is a contiguous slice of one phase
    cpu = {**_plan._COSTS["cpu"], "shared_pad": 0}  # those copies in its own work
    f32 = _plan.DtypeInfo("real", 4)
    g = _plan.Geometry(4, 128, 8, 2, (1000,), (7,), (2,), (1,), ((3, 3),))
    assert _plan.splits_column_phases(g) and not _plan.batch_gemm(g, "shift", cpu)
    own, _ = _plan._strategy_time(g, "shift", f32, cpu, None, None)
    assert own == pytest.approx(2 * 4 * 128 * 1006 * cpu["copy"] + 7 * cpu["call"])
    # with several spatial axes a strided tap is gathered: a copy per tap
    g2 = _plan.Geometry(4, 8, 8, 1, (40, 40), (1, 3), (2, 2), (1, 1), ((0, 0), (1, 1)))
    assert not _plan.phase_grid_applies(g2, cpu) and not _plan.batch_gemm(g2, "shift", cpu)
    own2, _ = _plan._strategy_time(g2, "shift", f32, cpu, None, None)
    taps = 3 * 4 * 20 * 20 * 8
    assert own2 == pytest.approx(taps * cpu["copy"] + 3 * cpu["call"])  # sums: in the products


_STACKING_PATHS = (
    # channel-major im2col, the flat grid, the phase grid, 1-d column phases
    _plan.Geometry(8, 64, 128, 1, (28, 28), (3, 3), (2, 2), (1, 1), ((1, 1), (1, 1))),
    _plan.Geometry(2, 16, 16, 1, (32, 32), (3, 3), (1, 1), (1, 1), ((1, 1), (1, 1))),
    _plan.Geometry(2, 16, 16, 1, (56, 56), (3, 3), (3, 3), (1, 1), ((1, 1), (1, 1))),
    _plan.Geometry(4, 128, 8, 2, (1000,), (7,), (2,), (1,), ((3, 3),)),
)


@pytest.mark.parametrize(
    "g, strategy",
    [
        (g, s)
        for g in _STACKING_PATHS
        for s in ("shift", "im2col_last", "im2col")
        if g.ndim > 1 or s != "im2col_last"  # one kernel axis: im2col_last is im2col
    ],
)
def test_shared_pad_prices_the_padding_copies_alike_for_every_stacking_strategy(g, strategy):
    # the padding and phase-split copies are the same for shift, im2col_last
    # and im2col: in a row with ``shared_pad`` they leave the strategy's own
    # (factored) work for the part every strategy pays alike
    f32 = _plan.DtypeInfo("real", 4)
    cpu = _plan._COSTS["cpu"]
    assert cpu["shared_pad"]
    apart = _plan._strategy_time(g, strategy, f32, {**cpu, "shared_pad": 0}, None, None)
    shared = _plan._strategy_time(g, strategy, f32, cpu, None, None)
    moved = apart[0] - shared[0]
    assert moved > 0
    assert shared[1] == pytest.approx(apart[1] + moved)
    # so a strategy's factor no longer scales them
    for x in (0.5, 2.0):
        scaled = {**cpu, "x_" + strategy: x}
        cost = _plan._strategy_cost(g, strategy, f32, "cpu", None, costs=scaled)
        assert cost == pytest.approx(x * shared[0] + shared[1] + cpu["o_" + strategy] + cpu["base"])


@pytest.mark.parametrize("strategy", ["shift", "im2col_last"])
def test_the_weight_gather_is_priced_alike_for_every_strategy_that_makes_it(strategy):
    cpu = _plan._COSTS["cpu"]
    f32 = _plan.DtypeInfo("real", 4)
    g = _plan.Geometry(2, 256, 256, 1, (7, 7), (3, 3), (1, 1), (1, 1), ((1, 1), (1, 1)))
    own, gemm = _plan._strategy_time(g, strategy, f32, cpu, None, None)
    own0, gemm0 = _plan._strategy_time(g, strategy, f32, {**cpu, "gather": 0.0}, None, None)
    assert own == own0  # not in the work its strategy's factor scales
    assert gemm - gemm0 == pytest.approx(256 * 256 * 9 * cpu["gather"])
    # a row without the fact keeps the gather in the strategy's own work
    scaled = {k: v for k, v in cpu.items() if k != "shared_gather"}
    own_s, gemm_s = _plan._strategy_time(g, strategy, f32, scaled, None, None)
    assert (own_s - own, gemm_s) == (pytest.approx(gemm - gemm0), pytest.approx(gemm0))


def test_an_outer_product_is_priced_per_output_element():
    cpu = _plan._COSTS["cpu"]
    for m, n in ((1, 262_144), (128, 3248)):
        assert _plan._gemm_time(cpu, m, 1, n, 1.0) >= m * n * cpu["outer"]
        without = {k: v for k, v in cpu.items() if k != "outer"}
        assert _plan._gemm_time(without, m, 1, n, 1.0) < m * n * cpu["outer"]
    # a 1x1 layer of one input channel: a broadcast multiply beats the
    # library's outer product (NumPy, 8x1x32^2 -> 128: 0.52 against 1.36 ms)
    g = _plan.Geometry(8, 1, 128, 1, (32, 32), (1, 1), (1, 1), (1, 1), ((0, 0), (0, 0)))
    f32 = _plan.DtypeInfo("real", 4)
    plan = _plan.plan_correlation(g, "auto", f32, "cpu", True, False, 2**30, "conv")
    assert plan.strategy == "elementwise"


@pytest.mark.parametrize("strategy", ["shift", "im2col_last", "im2col"])
def test_one_product_per_sample_packs_the_whole_weight_per_sample(strategy):
    # OpenBLAS packs a product's weight operand on every call: N per-sample
    # products of a stacking strategy pack the weight N times, whatever
    # the number of products per sample (taps, kernel rows or one)
    cpu = _plan._COSTS["cpu"]
    f32 = _plan.DtypeInfo("real", 4)
    g = _plan.Geometry(8, 32, 64, 2, (40, 40), (3, 3), (1, 1), (1, 1), ((1, 1), (1, 1)))
    assert not _plan.batch_gemm(g, strategy, cpu)  # 1600 positions: per sample
    _, with_packs = _plan._strategy_time(g, strategy, f32, cpu, None, None)
    _, without = _plan._strategy_time(g, strategy, f32, {**cpu, "pack": 0.0}, None, None)
    assert with_packs - without == pytest.approx(8 * 2 * 32 * 16 * 9 * cpu["pack"])
    # a row without ``pack`` prices no packing
    no_pack = {k: v for k, v in cpu.items() if k != "pack"}
    assert _plan._strategy_time(g, strategy, f32, no_pack, None, None)[1] == without


@pytest.mark.parametrize(
    ("shape", "strategy"),
    [
        # more output than input channels on a small map: the kernel rows'
        # products summed three times cost more than stacking every tap
        ((8, 64, 14, 128), "im2col"),
        ((16, 32, 14, 128), "im2col"),
        ((8, 128, 7, 128), "im2col"),
        # a large map with as many channels: the whole stack costs more
        ((8, 64, 56, 64), "im2col_last"),
        ((4, 64, 28, 64), "im2col_last"),
    ],
)
def test_the_cpu_row_prices_summing_kernel_rows_apart_from_their_stack(shape, strategy):
    n, c, side, c_out = shape
    g = _plan.Geometry(n, c, c_out, 1, (side, side), (3, 3), (1, 1), (1, 1), ((1, 1), (1, 1)))
    f32 = _plan.DtypeInfo("real", 4)
    assert (
        _plan.plan_correlation(g, "auto", f32, "cpu", True, False, 2**32, "t").strategy == strategy
    )
    # the summing passes are not scaled by the strategy's factor
    row = _plan._COSTS["cpu"]
    own, gemm = _plan._strategy_time(g, "im2col_last", f32, row, None, None)
    more = dict(row, acc=2 * row["acc"])
    own2, gemm2 = _plan._strategy_time(g, "im2col_last", f32, more, None, None)
    passes = 2 * n * c_out * side * side * row["acc"]
    assert own2 == own and abs(gemm2 - gemm - passes) <= 1e-9 * gemm2


@pytest.mark.parametrize("r", _plan.WINOGRAD_KERNELS)
def test_toom_cook_transforms_correlate(r):
    # F(2, r) in one dimension: A^T [(G g) * (B^T d)] is the 2-output correlation
    at, g, bt = (np.array(m) for m in _winograd.toom_cook(r))
    assert at.shape == (2, r + 1) and g.shape == (r + 1, r) and bt.shape == (r + 1, r + 1)
    rng = np.random.default_rng(r)
    d, k = rng.standard_normal(r + 1), rng.standard_normal(r)
    expected = [d[i : i + r] @ k for i in range(2)]
    np.testing.assert_allclose(at @ ((g @ k) * (bt @ d)), expected, rtol=1e-12, atol=1e-12)


def _winograd_offered(g, xla, device="cpu", itemsize=4) -> bool:
    """Whether the planner admits Winograd for ``g`` on that cost row."""
    info = _plan.DtypeInfo("real", itemsize)
    try:
        _plan.plan_correlation(g, "auto", info, device, True, xla, 2**40, "t", only="winograd")
    except LookupError:
        return False
    return True


def test_winograd_is_offered_only_where_one_sample_fits_a_tile():
    # Winograd splits no sample into row tiles: where one sample's
    # transformed input (16 values per 2x2 tile and channel, 3x3) passes the
    # row's tile_bytes, only the direct forms (which can) are offered
    def offered(n, c, size, device="cpu", xla=True):
        g = _plan.Geometry(n, c, 8, 1, (size, size), (3, 3), (1, 1), (1, 1), ((1, 1),) * 2)
        return _winograd_offered(g, xla, device)

    tile = _plan._COSTS["cpu-xla"]["tile_bytes"]
    per_sample = 16 * 3 * 256**2 * 4  # 1x3x512^2: 256^2 tiles
    assert per_sample > tile and not offered(1, 3, 512) and not offered(1, 3, 512, xla=False)
    assert offered(8, 3, 256)  # a quarter of that per sample: batch tiles take care of it
    assert offered(8, 64, 56) and offered(1, 3, 512, "gpu", False)  # the GPU row does not tile


def test_winograd_beyond_3x3_is_offered_under_xla_only():
    def offered(kernel, xla, stride=(1, 1), c_in=8, itemsize=4):
        pads = tuple((k // 2, k // 2) for k in kernel)
        g = _plan.Geometry(2, c_in, 8, 1, (32, 32), kernel, stride, (1, 1), pads)
        return _winograd_offered(g, xla, itemsize=itemsize)

    assert offered((3, 3), False) and offered((3, 3), True)
    assert offered((5, 5), True) and offered((2, 4), True) and not offered((5, 5), False)
    assert not offered((6, 6), True) and not offered((1, 3), True)
    # stride phases as channels: a 2x2 or 3x3 sub-kernel, 16+ channels, 1.5x fewer products
    assert offered((4, 4), True, (2, 2), 4) and offered((5, 5), True, (2, 2))
    assert not offered((4, 4), False, (2, 2))  # NumPy-like rows: 3x3 stride 1 only
    assert not offered((3, 3), True, (2, 2))  # a 2x2 sub-kernel saves nothing
    assert not offered((7, 7), True, (2, 2), 3)  # the stem: 12 phase channels
    # 16-bit floats: no points beyond +-1 (a 2x2 sub-kernel needs only 0 and 1)
    assert not offered((5, 5), True, itemsize=2) and offered((4, 4), True, (2, 2), itemsize=2)


def test_only_rejects_an_inadmissible_strategy():
    g = _plan.Geometry(1, 4, 4, 1, (8, 8), (3, 3), (1, 1), (1, 1), ((0, 0), (0, 0)))
    info = _plan.DtypeInfo("real", 4)
    with pytest.raises(LookupError, match="elementwise"):
        _plan.plan_correlation(g, "auto", info, "cpu", True, False, 2**30, "f", only="elementwise")


@st.composite
def dilated_geometries(draw) -> dict:
    c = draw(geometries())
    nsp = len(c["kernel"])
    dilation = tuple(draw(st.sampled_from((1, 2, 3))) for _ in range(nsp))
    dilation = dilation if max(dilation) > 1 else (2,) + dilation[1:]
    spans = [d * (k - 1) + 1 for d, k in zip(dilation, c["kernel"])]
    spatial = tuple(
        max(n, s - lo - hi, 1) for n, s, (lo, hi) in zip(c["spatial"], spans, c["pads"])
    )
    return {**c, "stride": (1,) * nsp, "dilation": dilation, "spatial": spatial}


@settings(max_examples=n_examples(EXAMPLES // 2))
@given(c=dilated_geometries())
def test_dilation_phases_match_the_reference(backend, c):
    # The dilated correlation as the undilated one of its dilation phases,
    # forced for every inner strategy's plan the planner would pick.
    rng = np.random.default_rng(c["seed"])
    cin, cout = c["groups"] * c["cg"], c["groups"] * c["cog"]
    x64 = rng.standard_normal((c["batch"], cin) + c["spatial"])
    w64 = rng.standard_normal((cout, c["cg"]) + c["kernel"])
    g = _case_geometry(c)
    if min(g.out_spatial) < 1:
        return
    expected = _reference(x64, w64, c)
    dtype = backend.dtype("float64") if backend.has_float64 else backend.dtype("float32")
    x, w = (
        backend.xp.astype(backend.asarray(x64), dtype),
        backend.xp.astype(backend.asarray(w64), dtype),
    )
    xp = namespace_of("test", x=x, w=w)
    info = dtype_info(xp, x.dtype, (x.dtype,))
    outer = _core.make_plan("test", xp, x, g, "direct", info, 2**40, only="shift")
    split = _plan.dilation_split_geometry(g)
    inner = _core.make_plan("test", xp, x, split, "auto", info, 2**40)
    plan = dataclasses.replace(outer, batch_tile=g.batch, row_tile=None, inner=inner)

    def run(x, w):
        return _core.correlate_nd(xp, x, w, plan, pad_mode=c["mode"], fill=c["fill"])

    bound = _bound(backend, x64, w64, expected.shape, c["fill"]) * math.sqrt(cin + 1)
    assert_close(backend, _run(backend, run, x, w), expected, dtype=dtype, bound=bound)


def test_dilated_layers_split_into_phases_where_the_model_says():
    f32 = _plan.DtypeInfo("real", 4)

    def plan(stride, dilation, xla):
        g = _plan.Geometry(2, 32, 32, 1, (32, 32), (3, 3), stride, dilation, ((2, 2), (2, 2)))
        return _plan.plan_correlation(g, "auto", f32, "cpu", True, xla, 2**31, "t", zero_pads=True)

    # XLA: the phases of 2x32x32^2 3x3 d2 take Winograd (1.19 -> 0.79 ms measured)
    split = plan((1, 1), (2, 2), True)
    assert split.inner is not None and split.inner.geometry.batch == 2 * 4
    assert split.inner.geometry.in_spatial == (18, 18) and split.inner.geometry.dilation == (1, 1)
    assert split.strategy == split.inner.strategy
    # NumPy: the copies cost more than the grid's dilated padding (0.80 -> 1.0 ms)
    assert plan((1, 1), (2, 2), False).inner is None
    # only stride 1 splits; an undilated layer has nothing to split
    g = _plan.Geometry(2, 32, 32, 1, (32, 32), (3, 3), (2, 2), (2, 2), ((2, 2), (2, 2)))
    assert _plan.dilation_split_geometry(g) is None
    assert plan((1, 1), (1, 1), True).inner is None


def test_fft_takes_zero_padding_from_its_grid_only_where_it_can():
    f64 = _plan.DtypeInfo("real", 8)

    def fft(spatial, kernel, pads, zeros=True, dilation=1):
        nsp = len(kernel)
        g = _plan.Geometry(1, 1, 1, 1, spatial, kernel, (1,) * nsp, (dilation,) * nsp, pads)
        p = _plan.plan_correlation(
            g, "fft", f64, "cpu", True, False, 2**40, "f", only="fft", zero_pads=zeros
        )
        return p.fft_wrap, p.fft_shape

    full = ((63, 63), (63, 63))
    # SciPy's mode='full' of 64^2 and 64^2: the grid holds 127, not 190, points an axis
    assert fft((64, 64), (64, 64), full) == (True, (128, 128))
    assert fft((64, 64), (64, 64), full, zeros=False) == (False, (192, 192))
    assert fft((4096,), (4096,), ((4095, 4095),)) == (True, (8192,))
    # 'same' needs n + max(lo, hi): 1024 + 15 fits 1050 points, 1024 + 30 needed 1080
    assert fft((1024, 1024), (31, 31), ((15, 15), (15, 15))) == (True, (1050, 1050))
    # padding beyond the kernel's span, and crops, keep the padded grid
    assert fft((30,), (5,), ((6, 6),)) == (False, (42,))
    assert fft((30,), (5,), ((-1, 2),)) == (False, (32,))
    assert fft((30,), (3,), ((4, 0),), dilation=2) == (True, (35,))


@pytest.mark.parametrize(
    "shape, wshape",
    [((1080, 1080), (2, 1, 31, 31)), ((64, 48, 40), (2, 3, 5, 7, 3)), ((40, 9), (1, 1, 9, 9))],
)
def test_kernel_spectrum_by_dft_matmul_is_the_fft(backend, shape, wshape):
    # the short-kernel shortcut of the FFT strategy against NumPy's rfftn
    rng = np.random.default_rng(7)
    w64 = rng.standard_normal(wshape)
    axes = tuple(range(len(wshape) - len(shape), len(wshape)))
    expected = np.fft.rfftn(w64, s=shape, axes=axes)
    w = backend.asarray(w64)
    got = backend.to_numpy(_fft._kernel_spectrum(backend.xp, w, shape))
    assert got.shape == expected.shape
    eps = 1e-6 if w.dtype == backend.xp.float32 else 1e-12
    scale = float(np.abs(expected).max())
    assert float(np.abs(got - expected).max()) <= eps * scale * max(wshape)
    assert any(_plan.dft_by_matmul(k, n) for k, n in zip(wshape[-len(shape) : -1], shape))


@pytest.mark.parametrize(
    "xshape, wshape, shape, groups",
    [
        ((2, 3, 40, 36), (4, 3, 5, 7), (40, 36), 1),  # short kernel rows: DFT matmul
        # short kernel, grouped, odd last axis: its spectrum frequency-major
        ((2, 4, 24, 20), (6, 2, 3, 4), (26, 23), 2),
        ((1, 4, 30, 25), (2, 2, 30, 9), (32, 27), 2),  # long kernel rows: FFT, padded grid
        ((1, 1, 12, 10, 8), (1, 1, 3, 3, 3), (12, 10, 8), 1),  # 3-d keeps rfftn
        ((1, 3, 10, 9, 11), (4, 3, 3, 2, 3), (12, 10, 13), 1),  # 3-d, spectrum by frequency
        ((2, 2, 50), (2, 2, 9), (54,), 1),
    ],
)
def test_fft_layouts_give_the_circular_convolution(backend, xshape, wshape, shape, groups):
    # NumPy's row transforms along contiguous axes only (spectra transposed);
    # every backend must get the same circular convolution either way
    rng = np.random.default_rng(3)
    x64, w64 = rng.standard_normal(xshape), rng.standard_normal(wshape)
    nsp = len(shape)
    axes = tuple(range(2, 2 + nsp))
    xpad = np.zeros(xshape[:2] + shape)
    xpad[(slice(None), slice(None)) + tuple(slice(0, n) for n in xshape[2:])] = x64
    fx = np.fft.rfftn(xpad, axes=axes)
    fw = np.fft.rfftn(w64, s=shape, axes=axes)
    cg, cog = wshape[1], wshape[0] // groups
    fx = fx.reshape((xshape[0], groups, 1, cg) + fx.shape[2:])
    fw = fw.reshape((1, groups, cog, cg) + fw.shape[2:])
    fy = (fx * fw).sum(axis=3).reshape((xshape[0], wshape[0]) + fx.shape[4:])
    expected = np.fft.irfftn(fy, s=shape, axes=axes)
    x, w = backend.asarray(xpad), backend.asarray(w64)
    scale = float(np.abs(expected).max())
    eps = 1e-5 if x.dtype == backend.xp.float32 else 1e-11
    for contiguous in (False, True):
        y = _fft._spectral(backend.xp, x, w, shape, groups, False, contiguous)
        got = backend.to_numpy(y)
        assert got.shape == expected.shape, contiguous
        assert float(np.abs(got - expected).max()) <= eps * scale, contiguous


@settings(max_examples=n_examples(200))
@given(c=geometries())
def test_phase_grid_taps_read_the_strided_input(c):
    # Index arithmetic alone: split an array of flat indices of the padded
    # input into its stride phases as the executor does, and check that tap
    # t's slice holds, at output o's grid position, the index of input
    # element o * stride + t * dilation.
    cin = c["groups"] * c["cg"]
    g = _plan.Geometry(
        1, cin, cin, c["groups"], c["spatial"], c["kernel"], c["stride"], c["dilation"], c["pads"]
    )
    if min(g.out_spatial) < 1:
        return
    shape = _plan.phase_grid_shape(g)
    whole = _plan.phase_grid_padded(g)
    assert all(e >= n for e, n in zip(whole, g.padded_spatial))
    nsp = g.ndim
    index = np.arange(math.prod(whole)).reshape(whole)
    split = tuple(v for q, s in zip(shape, g.stride) for v in (q, s))
    perm = tuple(2 * i + 1 for i in range(nsp)) + tuple(2 * i for i in range(nsp))
    phases = index.reshape(split).transpose(perm).reshape(math.prod(g.stride), -1)
    p = g.out_spatial[0] * math.prod(shape[1:])
    grid = np.stack(np.unravel_index(np.arange(p), (g.out_spatial[0],) + shape[1:]), axis=-1)
    valid = np.all(grid < np.array(g.out_spatial), axis=-1)
    taps = list(itertools.product(*(range(k) for k in g.kernel)))
    for tap, (phase, offset) in zip(taps, _plan.phase_tap_offsets(g)):
        assert offset + p <= phases.shape[1]
        read = phases[phase, offset : offset + p][valid]
        want = grid[valid] * np.array(g.stride) + np.array(tap) * np.array(g.dilation)
        assert np.array_equal(read, np.ravel_multi_index(tuple(want.T), whole))


def test_phase_grid_is_planned_for_strided_stacking_on_numpy_only():
    f32 = dtype_info(np, np.dtype("float32"), (np.dtype("float32"),))

    def chosen(stride, kernel, unroll_limited, strategy="im2col"):
        # 96^2: over 1024 positions a sample, so im2col does not join the batch
        g = _plan.Geometry(8, 3, 64, 1, (96, 96), kernel, stride, (1, 1), ((3, 3),) * 2)
        p = _plan.plan_correlation(
            g, "auto", f32, "cpu", True, unroll_limited, 2**40, "t", only=strategy
        )
        return p.phase_grid

    assert chosen((2, 2), (7, 7), False)
    assert chosen((2, 2), (7, 7), False, "shift")
    assert not chosen((2, 2), (7, 7), True)  # XLA fuses strided slices itself
    assert not chosen((1, 1), (7, 7), False)  # stride 1 has its own flat grid
    assert not chosen((2, 2), (1, 1), False, "shift")  # reads one phase in four
    line = _plan.Geometry(8, 3, 64, 1, (4096,), (7,), (2,), (1,), ((3, 3),))
    p = _plan.plan_correlation(line, "auto", f32, "cpu", True, False, 2**40, "t", only="im2col")
    assert not p.phase_grid  # one axis: the strided form already splits its phases
    # a strided im2col over few positions a sample joins the batch channel-major
    # and gathers its windows itself, off the phase grid
    few = _plan.Geometry(8, 3, 64, 1, (64, 64), (7, 7), (2, 2), (1, 1), ((3, 3),) * 2)
    p = _plan.plan_correlation(few, "auto", f32, "cpu", True, False, 2**40, "t", only="im2col")
    assert p.batch_gemm and not p.phase_grid


def _weight_grad_reference(x, gy, c) -> np.ndarray:
    """``gw[o, ci, *t] = sum_{n, q} gy[n, o, q] * xpad[n, group(o) + ci, q * s + t * d]``."""
    xpad = np.pad(x, [(0, 0), (0, 0)] + list(c["pads"]))
    groups, cg, cog = c["groups"], c["cg"], c["cog"]
    out = gy.shape[2:]
    gw = np.zeros((groups * cog, cg) + c["kernel"])
    axes = (0,) + tuple(range(2, 2 + len(out)))
    for tap in itertools.product(*(range(k) for k in c["kernel"])):
        sl = tuple(
            slice(t * d, t * d + (o - 1) * s + 1, s)
            for t, d, o, s in zip(tap, c["dilation"], out, c["stride"])
        )
        for grp in range(groups):
            xs = xpad[(slice(None), slice(grp * cg, (grp + 1) * cg)) + sl]
            ys = gy[:, grp * cog : (grp + 1) * cog]
            gw[(slice(grp * cog, (grp + 1) * cog), slice(None)) + tap] = np.tensordot(
                ys, xs, axes=(axes, axes)
            )
    return gw


def _weight_grad_case(backend, c, g):
    """Inputs of geometry ``g`` on ``backend``, the reference gradient and its error bound."""
    rng = np.random.default_rng(c["seed"])
    x64 = rng.standard_normal((g.batch, g.in_channels) + g.in_spatial)
    gy64 = rng.standard_normal((g.batch, g.out_channels) + g.out_spatial)
    expected = _weight_grad_reference(x64, gy64, c)
    dtype = backend.dtype("float64") if backend.has_float64 else backend.dtype("float32")
    x = backend.xp.astype(backend.asarray(x64), dtype)
    gy = backend.xp.astype(backend.asarray(gy64), dtype)
    xp = namespace_of("test", x=x, gy=gy)
    eps = float(np.finfo(np.float64 if backend.has_float64 else np.float32).eps)
    terms = g.batch * math.prod(g.out_spatial)
    bound = 16 * eps * terms * np.abs(x64).max() * np.abs(gy64).max()
    return x, gy, xp, expected, dtype, bound


@settings(max_examples=n_examples(EXAMPLES))
@given(c=geometries())
def test_weight_gradient_matches_the_reference_in_every_chunking(backend, c):
    # stride 1 and zero padding: the flat-grid weight gradient's domain
    c["stride"] = (1,) * len(c["kernel"])
    c["pads"] = tuple((max(lo, 0), max(hi, 0)) for lo, hi in c["pads"])
    g = _case_geometry(c)
    if min(g.out_spatial) < 1:
        return
    x, gy, xp, expected, dtype, bound = _weight_grad_case(backend, c, g)
    rows = _plan.grid_run(g)
    # one product per tap; uneven chunks (the last one shorter), in order or
    # not, every tap stacked or the last axis's only; one chunk of every position
    runs = [
        (None, False, False),
        (rows // 3 + 1, False, False),
        (rows // 3 + 1, True, False),
        (rows // 3 + 1, False, True),
        (rows // 3 + 1, True, True),
        (rows, False, False),
        (rows, False, True),
    ]
    runs = [r + (False, 0) for r in runs]
    if g.group_in == 1 and g.group_out == 1:
        # and one vecdot per tap and sample, all channels at once, one by
        # one, and in uneven chunks (the last one shorter)
        for channels in (0, 1, g.in_channels // 2 + 1):
            runs.append((rows, False, False, True, channels))
    for chunk, in_order, last, dots, channels in runs:

        def run(x, gy, chunk=chunk, in_order=in_order, last=last, dots=dots, channels=channels):
            return _direct.weight_grad_grid(xp, x, gy, g, chunk, in_order, last, dots, channels)

        got = _run(backend, run, x, gy)
        try:
            assert_close(backend, got, expected, dtype=dtype, bound=bound)
        except AssertionError as exc:
            raise AssertionError(
                f"chunk {chunk}, in order {in_order}, last {last}, dots {dots} "
                f"in chunks of {channels} channels: {exc}"
            ) from exc


def test_weight_gradient_chunks_follow_the_cost_row():
    dense = _plan.Geometry(8, 64, 64, 1, (56, 56), (3, 3), (1, 1), (1, 1), ((1, 1), (1, 1)))
    rows = 8 * 58 * 58 - _plan.grid_offset(dense, (2, 2))
    quarter = _plan._COSTS["cpu"]["tile_bytes"] // 4

    def even_chunk(per_position):  # as many chunks as a quarter of the tile bytes asks
        chunks = -(-rows * per_position // quarter)
        return -(-rows // chunks)

    # NumPy stacks the last kernel axis's taps only, in chunks three times as long
    p = _plan.plan_weight_grad(dense, 4, "cpu", False)
    assert p == _plan.WeightGradPlan(even_chunk(64 * 3 * 4), False, True)
    assert p.chunk * 64 * 3 * 4 <= quarter
    assert _plan.head_span(dense) == 2 * 58 <= _plan.MAX_HEAD_SPAN_SHARE * p.chunk
    # under jax.jit every tap is stacked, in fewer chunks (each is traced), in order
    xla = _plan.plan_weight_grad(dense, 4, "cpu", True)
    assert xla.in_order and not xla.last_axis_stack and xla.chunk > even_chunk(64 * 9 * 4)
    assert -(-rows // xla.chunk) * (dense.taps + 2) <= _plan._WEIGHT_GRAD_OPS_JAX
    # every tap stacked: a last axis of one tap, a thin stack, a wide span
    for other in (
        dataclasses.replace(dense, kernel=(3, 1), pads=((1, 1), (0, 0))),
        dataclasses.replace(dense, in_channels=8, out_channels=8),
        _plan.Geometry(1, 8, 8, 1, (64, 64, 64), (3, 3, 3), (1, 1, 1), (1, 1, 1), ((1, 1),) * 3),
    ):
        p = _plan.plan_weight_grad(other, 4, "cpu", False)
        assert p.chunk is not None and not p.last_axis_stack, other
    # depthwise (real dtypes, eager rows): one vecdot per tap
    depthwise = dataclasses.replace(dense, groups=64)
    assert _plan.plan_weight_grad(depthwise, 4, "cpu", False).dots
    assert not _plan.plan_weight_grad(depthwise, 8, "cpu", False, real=False).dots
    assert not _plan.plan_weight_grad(depthwise, 4, "cpu", True).dots
    multiplier = dataclasses.replace(depthwise, out_channels=128)
    assert not _plan.plan_weight_grad(multiplier, 4, "cpu", False).dots
    # the GPU row does not tile: one product per tap
    assert _plan.plan_weight_grad(dense, 4, "gpu", False) == _plan.WeightGradPlan(
        None, False, False
    )
    # a small problem is one chunk of every position
    small = _plan.Geometry(2, 3, 4, 1, (9, 9), (3, 3), (1, 1), (1, 1), ((1, 1), (1, 1)))
    small_rows = 2 * 11 * 11 - _plan.grid_offset(small, (2, 2))
    assert _plan.plan_weight_grad(small, 4, "cpu", False) == _plan.WeightGradPlan(
        small_rows, False, False
    )
    # many channels: a quarter of the tile bytes holds under the shortest
    # chunk worth a product, so chunks are that long
    deep = dataclasses.replace(dense, in_channels=768, out_channels=768, in_spatial=(14, 14))
    assert 768 * 3 * 4 * _plan.MIN_WEIGHT_GRAD_CHUNK > quarter
    assert _plan.plan_weight_grad(deep, 4, "cpu", False) == _plan.WeightGradPlan(
        _plan.MIN_WEIGHT_GRAD_CHUNK, False, True
    )
    # where even that chunk's full stack passes the tile bytes, one product per tap
    wide = dataclasses.replace(dense, in_channels=1024, out_channels=1024)
    assert _plan.plan_weight_grad(wide, 4, "cpu", False) == _plan.WeightGradPlan(None, False, False)


@settings(max_examples=n_examples(EXAMPLES))
@given(c=geometries())
def test_strided_weight_gradient_on_stride_phases_matches_the_reference(backend, c):
    # zero padding, dilation 1 on strided axes, at least one axis strided
    c["pads"] = tuple((max(lo, 0), max(hi, 0)) for lo, hi in c["pads"])
    c["stride"] = (max(c["stride"][0], 2),) + c["stride"][1:]
    c["dilation"] = tuple(1 if s > 1 else d for s, d in zip(c["stride"], c["dilation"]))
    g = _case_geometry(c)
    if min(g.out_spatial) < 1:
        return
    phased = _plan.weight_grad_phase_geometry(g)
    assert phased is not None and phased.out_spatial == g.out_spatial
    assert all(k * s >= kk for k, s, kk in zip(phased.kernel, g.stride, g.kernel))
    x, gy, xp, expected, dtype, bound = _weight_grad_case(backend, c, g)
    rows = g.batch * math.prod(phased.padded_spatial)
    # one product per read, chunks (in order or not), and, where every
    # sub-kernel tap is a tap, the phases' own problem with its last axis stacked
    plans = [(None, False, False), (rows // 3 + 1, False, False), (rows // 3 + 1, True, False)]
    if phased.taps * math.prod(_plan.stride_phases_read(g)) == g.taps:
        plans += [(rows // 3 + 1, False, True), (rows, True, True)]
    plans = [p + (False, 0) for p in plans]
    if g.group_in == 1 and g.group_out == 1:
        # and one vecdot per tap and sample on the phases: all channels at
        # once, one by one, and in uneven chunks (the last one shorter)
        for channels in (0, 1, g.out_channels // 2 + 1):
            plans.append((rows, False, False, True, channels))
    for wplan in map(_plan.WeightGradPlan._make, plans):

        def run(x, gy, wplan=wplan):
            return _direct.weight_grad_phases(xp, x, gy, g, phased, wplan)

        got = _run(backend, run, x, gy)
        try:
            assert_close(backend, got, expected, dtype=dtype, bound=bound)
        except AssertionError as exc:
            raise AssertionError(f"weight-gradient plan {wplan}: {exc}") from exc


@settings(max_examples=n_examples(EXAMPLES))
@given(c=geometries())
def test_pointwise_weight_gradient_matches_the_reference(backend, c):
    # one tap, no padding, any stride, dilation and groups
    c["kernel"] = (1,) * len(c["kernel"])
    c["pads"] = ((0, 0),) * len(c["kernel"])
    g = _case_geometry(c)
    x, gy, xp, expected, dtype, bound = _weight_grad_case(backend, c, g)

    def run(x, gy):
        return _direct.weight_grad_pointwise(xp, x, gy, g)

    assert_close(backend, _run(backend, run, x, gy), expected, dtype=dtype, bound=bound)


def test_pointwise_weight_gradient_serves_unpadded_one_tap_float_layers(monkeypatch):
    import portconv
    from portconv import _nn

    runs = _count_calls(monkeypatch, _nn, "weight_grad_pointwise")
    x = np.ones((2, 4, 12, 12))
    for kernel, padding, dtype, used in [
        ((1, 1), 0, np.float64, True),
        ((1, 1), 1, np.float64, False),  # padded: the grid form
        ((3, 3), 0, np.float64, False),
        ((1, 1), 0, np.int64, False),  # integers: exact per-tap sums
    ]:
        runs.clear()
        side = 12 + 2 * padding - kernel[0] + 1
        gy = np.ones((2, 3, side, side), dtype=dtype)
        got = portconv.conv_weight_grad(x.astype(dtype), (3, 4) + kernel, gy, padding=padding)
        assert bool(runs) == used, (kernel, padding, dtype)
        assert got.shape == (3, 4) + kernel
    # and from 128 output positions a sample (144 here; 121 is too few)
    g = _plan.Geometry(2, 4, 3, 1, (12, 12), (1, 1), (1, 1), (1, 1), ((0, 0), (0, 0)))
    assert _plan.pointwise_weight_grad(g, False, False)
    assert not _plan.pointwise_weight_grad(
        dataclasses.replace(g, in_spatial=(11, 11)), False, False
    )
    assert not _plan.pointwise_weight_grad(g, False, True)  # not under XLA


def test_strided_weight_gradient_runs_on_the_stride_phases_on_eager_cpu_rows():
    def route(kernel, stride, c=16, row="cpu", unroll_limited=False, dilation=None, groups=1):
        nsp = len(kernel)
        g = _plan.Geometry(
            8, c, 32 * (groups == 1) or c, groups, (64,) * nsp, kernel, stride,
            dilation or (1,) * nsp, ((1, 1),) * nsp,
        )  # fmt: skip
        return g, _plan.plan_weight_grad_phases(g, 4, row, unroll_limited)

    stem, (phased, wplan) = route((7, 7), (2, 2), c=3)
    # two phases an axis as channels, a 4x4 kernel over 30 + 4 - 1 positions, no padding
    assert phased.in_channels == 3 * 4 and phased.kernel == (4, 4) and phased.stride == (1, 1)
    assert phased.in_spatial == (33, 33) and phased.pads == ((0, 0), (0, 0))
    assert phased.out_spatial == stem.out_spatial
    # chunks sized for the stem's own 49 taps, every tap stacked
    rows = 8 * 33 * 33 - _plan.grid_offset(phased, (3, 3))
    assert wplan == _plan.WeightGradPlan(
        _plan._weight_grad_chunk(stem, 4, rows, 2**23, 49, False), False, False
    )
    reads, order = _direct.weight_grad_phase_reads(stem, phased)
    assert sorted(order) == list(range(49)) and len(reads) < 49  # blocks of phases joined
    # where every sub-kernel tap is a tap, the phases' own plan (last axis stacked)
    _, (whole, own) = route((4, 4), (2, 2), c=64)
    assert own == _plan.plan_weight_grad(whole, 4, "cpu", False) and own.last_axis_stack
    # a stride-1 axis keeps its padding; a 16x16 stride-16 patch embedding is one read
    _, (mixed, _) = route((3, 3), (2, 1), c=64)
    assert mixed.in_channels == 128 and mixed.kernel == (2, 3) and mixed.pads[1] == (1, 1)
    patches, (one, _) = route((16, 16), (16, 16), c=3)
    assert len(_direct.weight_grad_phase_reads(patches, one)[0]) == 1
    assert route((3, 3), (2, 2))[1] is not None
    _, (_, depthwise) = route((3, 3), (2, 2), c=32, groups=32)
    assert depthwise.dots  # one vecdot per read
    assert route((1, 1), (2, 2))[1] is None  # one tap: a strided slice
    assert route((4, 4), (2, 2), dilation=(2, 1))[1] is None  # strided and dilated
    assert route((7, 7), (2, 2), c=3, unroll_limited=True)[1] is None  # XLA: per tap
    assert route((7, 7), (2, 2), c=3, row="gpu")[1] is None  # unmeasured


def test_elementwise_runs_on_the_channel_major_flat_grid_for_long_runs_on_numpy_like_rows():
    f32 = _plan.DtypeInfo("real", 4)
    image = _plan.Geometry(1, 1, 1, 1, (1024, 1024), (3, 3), (1, 1), (1, 1), ((1, 1), (1, 1)))
    dw = _plan.Geometry(8, 144, 144, 144, (56, 56), (3, 3), (1, 1), (1, 1), ((1, 1), (1, 1)))
    cpu = _plan._COSTS["cpu"]
    for g in (image, dw):
        # NumPy, one process: 1024^2 3x3 3.3 ms against 3.4-4.5 for the
        # banded matmul and im2col_last; 8x144x56^2 14.3 against 17.9-27.2
        plan = _plan.plan_correlation(g, "auto", f32, "cpu", True, False, 2**40, "c")
        assert (plan.strategy, plan.flat_chunk) == ("elementwise", cpu["flat_chunk"]), g
        for jax, device in ((True, "cpu"), (True, "gpu"), (False, "gpu")):  # XLA fuses taps
            p = _plan.plan_correlation(
                g, "auto", f32, device, True, jax, 2**40, "c", only="elementwise"
            )
            assert (p.strategy, p.flat_chunk) == ("elementwise", 0), (device, jax)
    # 8 * 30^2 - 62 = 7138 positions a channel: its many chunks of several
    # channels tie with the banded matmul at best (NumPy), lose on torch
    short = dataclasses.replace(dw, in_channels=256, out_channels=256, groups=256,
                                in_spatial=(28, 28))  # fmt: skip
    assert _plan.flat_chunks(short, cpu["flat_chunk"])[2] == 7138 < cpu["flat_run"]
    assert not _plan.flat_elementwise_applies(short, cpu)
    p = _plan.plan_correlation(short, "auto", f32, "cpu", True, False, 2**40, "c")
    assert p.flat_chunk == 0
    assert _plan.flat_elementwise_applies(dw, cpu)
    assert not _plan.flat_elementwise_applies(dataclasses.replace(dw, stride=(2, 2)), cpu)
    multiplier = dataclasses.replace(dw, out_channels=288, groups=72)  # 2 channels per group
    assert not _plan.flat_elementwise_applies(multiplier, cpu)


@pytest.mark.parametrize("target", [1, 100, 2013, 2014, 2015, 4028, 40_000, 1 << 16, 1 << 30])
def test_flat_chunks_cover_the_grid_in_even_chunks_near_the_target(target):
    g = _plan.Geometry(8, 576, 576, 576, (14, 14), (3, 3), (1, 1), (1, 1), ((1, 1), (1, 1)))
    channels, positions, run = _plan.flat_chunks(g, target)
    assert run == 8 * 16 * 16 - (2 * 16 + 2)  # the last read of tap (2, 2) ends the grid
    if target <= run:  # part of one channel's run, split evenly
        assert channels == 1 and positions <= max(target, 1)
        parts = -(-run // positions)
        assert parts == -(-run // target) and parts * positions - run < parts
    else:  # whole runs of about target // run channels, split evenly
        assert positions == run
        most = max(1, min(576, target // run))
        assert channels <= most and -(-576 // channels) == -(-576 // most)
