"""Direct (spatial-domain) strategies, standard calls only.

All take a *padded* input ``x`` of shape ``(N, C_in, *S)`` and a weight ``w`` of
shape ``(C_out, C_in // groups, *K)`` (channels-first, torch layout) and return
the correlation ``(N, C_out, *O)`` described by the plan's geometry:

``y[n, o, p] = sum_{c, t} x[n, g(o)*Cg + c, p*stride + t*dilation] * w[o, c, t]``

No complex conjugation happens here; callers conjugate when their semantics
ask for it.
"""

from __future__ import annotations

import functools
import itertools
import math
from typing import Any

from ._compat import blas_matrices, c_contiguous, device_of, real_vecdot, reshape
from ._fft import dilate_kernel
from ._pad import pad_axes
from ._plan import (
    STACKED_FRAMES,
    Geometry,
    Plan,
    band_frames,
    depthwise_phase_reads,
    depthwise_weight_grad_reads,
    flat_chunks,
    frames_length,
    grid_offset,
    grid_run,
    grid_tap_offsets,
    last_tap_offset,
    phase_grid_shape,
    phase_tap_offsets,
    splits_column_phases,
    stride_phases_read,
)

__all__ = [
    "run_direct",
    "transposed_weight",
    "TRANSPOSED_IN_PLACE",
    "weight_grad_taps",
    "weight_grad_grid",
    "weight_grad_phases",
    "weight_grad_depthwise",
    "uses_grid",
    "grid_extra_rows",
    "toeplitz_on_lines",
    "toeplitz_zero_pads_in_band",
    "toeplitz_zeros_after",
    "after",
]


def _tap_slices(g: Geometry, tap: tuple[int, ...]) -> tuple[slice, ...]:
    out = g.out_spatial
    return tuple(
        slice(t * d, t * d + (o - 1) * s + 1, s)
        for t, d, s, o in zip(tap, g.dilation, g.stride, out)
    )


def _window_slices(g: Geometry, out: tuple[int, ...]) -> tuple[slice, ...]:
    """The slices of the padded input that output position ``out`` reads (every tap)."""
    return tuple(
        slice(o * s, o * s + (k - 1) * d + 1, d)
        for o, s, k, d in zip(out, g.stride, g.kernel, g.dilation)
    )


def _taps(kernel: tuple[int, ...]):
    return itertools.product(*(range(k) for k in kernel))


def _zero_extend(xp: Any, x: Any, length: int) -> Any:
    """``x`` with zeros appended to its last axis up to ``length`` (as is when long enough)."""
    if x.shape[-1] >= length:
        return x
    zeros = xp.zeros(x.shape[:-1] + (length - x.shape[-1],), dtype=x.dtype, device=device_of(x))
    return xp.concat([x, zeros], axis=-1)


def _tap_views(xp: Any, x: Any, g: Geometry):
    """A function from a kernel tap to the slice of ``x`` it multiplies, ``(N, C, *O)``.

    With a strided last axis the input is first split into its ``s`` column
    phases (one copy), so each tap reads contiguous runs instead of every
    ``s``-th element: NumPy's im2col for the 7x7 stride-2 stem gathered a
    224^2 sample in 3.9-5.4 ms strided and 3.0-4.0 ms from the phases.
    With one tap along the last axis no phase is read twice, so the split
    would only add a copy of the whole input: 1x1 stride-2 8x64x56^2 -> 128
    ran in 1.31 against 2.27 ms without it, 3x1 stride 2 8x32x56^2 in 1.93
    against 2.80 (NumPy, same process, alternating, medians of 13).
    """
    if not splits_column_phases(g):
        return lambda tap: x[(slice(None), slice(None)) + _tap_slices(g, tap)]
    s, o, d = g.stride[-1], g.out_spatial[-1], g.dilation[-1]
    wq = -(-x.shape[-1] // s)
    x = _zero_extend(xp, x, wq * s)  # columns past the end are never read
    nd = x.ndim
    phases = reshape(xp, x, x.shape[:-1] + (wq, s))
    phases = c_contiguous(xp, xp.permute_dims(phases, tuple(range(nd - 1)) + (nd, nd - 1)))

    def view(tap: tuple[int, ...]) -> Any:
        q0, r = divmod(tap[-1] * d, s)
        head = _tap_slices(g, tap)[:-1]
        return phases[(slice(None), slice(None)) + head + (r, slice(q0, q0 + o))]

    return view


def after(xp: Any, x: Any, previous: Any) -> Any:
    """``x`` unchanged, but computed after ``previous`` (``plan.in_order``, ``taps_in_order``).

    Adds ``-0.0`` made from one element of ``previous``: ``-(|p| * 0)`` with
    ``p`` made finite is ``-0.0``, and ``x + -0.0`` is ``x`` bit for bit for
    every real ``x`` (``-0.0``, infinities and NaN included; a complex ``x``
    may see an imaginary ``-0.0`` become ``+0.0``, and XLA's CPU flushes
    subnormals to zero here as in every operation of its own).  XLA does not fold a
    float product with zero, so the dependency survives compilation and
    orders the work; an eager library would pay one pass over ``x``.
    """
    p = previous[(0,) * previous.ndim]
    p = xp.where(xp.isfinite(p), p, xp.zeros_like(p))
    return x + (-(xp.abs(p) * 0))


def _accumulate(acc: Any, term: Any) -> Any:
    if acc is None:
        return term
    # ``acc`` is always a fresh product of ours: the standard's in-place
    # operator saves NumPy an allocation per tap (JAX and Dask rebind).
    acc += term
    return acc


def _elementwise(xp: Any, x: Any, w: Any, g: Geometry) -> Any:
    # One broadcast multiply-add per tap and input channel of a group: the
    # depthwise / single-channel path, and the exact path for integers.
    n, groups = x.shape[0], g.groups
    cg, cog = g.group_in, g.group_out
    nsp = g.ndim
    x5 = reshape(xp, x, (n, groups, cg) + tuple(x.shape[2:]))
    w5 = reshape(xp, w, (groups, cog, cg) + g.kernel)
    ones = (1,) * nsp
    acc = None
    for tap in _taps(g.kernel):
        sl = _tap_slices(g, tap)
        for c in range(cg):
            xs = x5[(slice(None), slice(None), c) + sl]  # (N, G, *O)
            xs = xp.expand_dims(xs, axis=2)  # (N, G, 1, *O)
            wt = reshape(xp, w5[(slice(None), slice(None), c) + tap], (1, groups, cog) + ones)
            acc = _accumulate(acc, xs * wt)
    return reshape(xp, acc, (n, g.out_channels) + g.out_spatial)


def _elementwise_flat(xp: Any, x: Any, w: Any, g: Geometry, target: int) -> Any:
    """The elementwise strategy on the channel-major flat grid (``_plan.flat_chunks``).

    ``x`` is the padded input channel-major, ``(C, N, *S)``; one channel in
    and out per group, every stride 1.  Each chunk sums its taps' products
    while its running sum stays in cache; the chunks of a channel are
    joined with the grid's unread tail, then the channels' (a second copy
    only with several chunks of channels).  Returns a channels-first view
    of channel-major memory.
    """
    c, n = g.in_channels, g.batch
    channels, positions, run = flat_chunks(g, target)
    xf = reshape(xp, x, (c, n * math.prod(g.padded_spatial)))
    wt = reshape(xp, w, (c, g.taps))
    offsets = grid_tap_offsets(g)
    tail = xf.shape[1] - run  # grid positions past the last read: never valid outputs
    rows = []
    for c0 in range(0, c, channels):
        c1 = min(c0 + channels, c)
        parts = []
        for p0 in range(0, run, positions):
            p1 = min(p0 + positions, run)
            acc = None
            for i, off in enumerate(offsets):
                acc = _accumulate(acc, xf[c0:c1, p0 + off : p1 + off] * wt[c0:c1, i : i + 1])
            parts.append(acc)
        parts.append(xp.zeros((c1 - c0, tail), dtype=acc.dtype, device=device_of(x)))
        rows.append(xp.concat(parts, axis=1))
    y = rows[0] if len(rows) == 1 else xp.concat(rows, axis=0)
    y = reshape(xp, y, (c, n) + g.padded_spatial)
    y = y[(slice(None), slice(None)) + tuple(slice(0, o) for o in g.out_spatial)]
    return xp.permute_dims(y, (1, 0) + tuple(range(2, 2 + g.ndim)))


def _taps_leading(xp: Any, w: Any, g: Geometry, keep: int) -> Any:
    """Weights with the kernel taps first: ``(T, G, Cog, Cg * k_last**keep)``.

    Copied to C order unless every ``[i]`` already is a BLAS operand (a
    view of :func:`transposed_weight`): NumPy's ``matmul`` leaves BLAS for
    other strides (2-3x slower).
    """
    nsp, lead = g.ndim, g.ndim - keep
    perm = tuple(range(2, 2 + lead)) + (0, 1) + tuple(range(2 + lead, 2 + nsp))
    wt = xp.permute_dims(w, perm)  # (*K_head, C_out, Cg, *K_tail)
    taps = math.prod(g.kernel[:lead])
    tail = math.prod(g.kernel[lead:])
    return blas_matrices(xp, reshape(xp, wt, (taps, g.groups, g.group_out, g.group_in * tail)))


#: Strategies whose matmuls read a transposed weight in place (:func:`transposed_weight`).
TRANSPOSED_IN_PLACE = ("shift", "im2col_last", "im2col")


def transposed_weight(xp: Any, w: Any, strategy: str) -> Any:
    """``w`` ``(C_out, C_in, *K)`` (one group) as ``(C_in, C_out, *K)``, flipped along ``K``.

    The correlation with it is the input gradient of the correlation with
    ``w``.  The result is a view of one copy whose memory runs ``(C_out,
    *K, C_in)`` (``im2col_last``: the last kernel axis first), so that
    ``strategy``'s matmul operands, one per tap, per kernel row or whole
    (:data:`TRANSPOSED_IN_PLACE`), are transposed views BLAS reads in
    place, and the copy itself moves runs of ``C_in`` values.  The C-order
    copy of the swapped weight moves single values ``9 * C_in`` apart:
    NumPy, 512x512x3x3, 5.8 ms against 0.9 (then 2.7 of a 1x512x7^2 input
    gradient's 5.1 ms).  Pass the result to ``correlate_nd`` with
    ``laid_out=True``, which keeps it as it lies.
    """
    nsp = w.ndim - 2
    kernel = tuple(range(2, 2 + nsp))
    first = kernel[-1:] + kernel[:-1] if strategy == "im2col_last" else kernel
    order = (0,) + first + (1,)  # memory: (C_out, *K in that order, C_in)
    memory = c_contiguous(xp, xp.permute_dims(xp.flip(w, axis=kernel), order))
    return xp.permute_dims(memory, tuple(order.index(a) for a in (1, 0) + kernel))


def _shift(xp: Any, x: Any, w: Any, g: Geometry) -> Any:
    n, groups, cg = x.shape[0], g.groups, g.group_in
    p = math.prod(g.out_spatial)
    w_taps = _taps_leading(xp, w, g, 0)  # (T, G, Cog, Cg), each tap contiguous
    view = _tap_views(xp, x, g)
    acc = None
    for i, tap in enumerate(_taps(g.kernel)):
        cols = reshape(xp, view(tap), (n, groups, cg, p))
        acc = _accumulate(acc, xp.matmul(w_taps[i, ...], cols))
    return reshape(xp, acc, (n, g.out_channels) + g.out_spatial)


def _im2col_last(xp: Any, x: Any, w: Any, g: Geometry) -> Any:
    # im2col along the last kernel axis (one matmul of depth Cg*k_last per
    # position of the other kernel axes), shift-and-accumulate over the rest.
    n, groups, cg = x.shape[0], g.groups, g.group_in
    p = math.prod(g.out_spatial)
    k_last = g.kernel[-1]
    w_heads = _taps_leading(xp, w, g, 1)  # (T_head, G, Cog, Cg * k_last)
    view = _tap_views(xp, x, g)
    acc = None
    for i, head in enumerate(_taps(g.kernel[:-1])):
        cols = xp.stack([view(head + (j,)) for j in range(k_last)], axis=2)  # (N, C, k_last, *O)
        cols = reshape(xp, cols, (n, groups, cg * k_last, p))
        acc = _accumulate(acc, xp.matmul(w_heads[i, ...], cols))
    return reshape(xp, acc, (n, g.out_channels) + g.out_spatial)


def _im2col(xp: Any, x: Any, w: Any, g: Geometry, channel_major: bool = False) -> Any:
    # ``channel_major``: ``x`` is ``(C, N, *S)`` and the columns ``(C, T, N,
    # *O)``, so one matmul covers every sample (``_plan.batch_gemm``); the
    # result is a channels-first view of ``(C_out, N, *O)``.
    n, groups, cg, cog = g.batch, g.groups, g.group_in, g.group_out
    p = math.prod(g.out_spatial)
    w2 = reshape(xp, w, (groups, cog, cg * g.taps))
    view = _tap_views(xp, x, g)  # slices of the spatial axes: either layout
    if channel_major:
        cols = xp.stack([view(tap) for tap in _taps(g.kernel)], axis=1)
        y = xp.matmul(w2, reshape(xp, cols, (groups, cg * g.taps, n * p)))
        y = reshape(xp, y, (g.out_channels, n) + g.out_spatial)
        return xp.permute_dims(y, (1, 0) + tuple(range(2, 2 + g.ndim)))
    cols = xp.stack([view(tap) for tap in _taps(g.kernel)], axis=2)  # (N, C, T, *O)
    cols = reshape(xp, cols, (n, groups, cg * g.taps, p))
    return reshape(xp, xp.matmul(w2, cols), (n, g.out_channels) + g.out_spatial)


def _windows(xp: Any, x: Any, w: Any, g: Geometry) -> Any:
    # im2col stacked by output position: one slice per output window, for
    # problems with fewer outputs than taps (``_plan.windows_applies``); the
    # samples' windows are rows of one matmul per group, so the weights are
    # read once.
    n, groups, cg, cog = g.batch, g.groups, g.group_in, g.group_out
    p = math.prod(g.out_spatial)
    # ``_taps`` of the output grid: every output position, the last axis fastest
    views = [x[(slice(None), slice(None)) + _window_slices(g, out)] for out in _taps(g.out_spatial)]
    cols = reshape(xp, xp.stack(views, axis=1), (n * p, groups, cg * g.taps))
    cols = xp.permute_dims(cols, (1, 0, 2))  # (G, N*P, Cg*T)
    w2 = xp.matrix_transpose(reshape(xp, w, (groups, cog, cg * g.taps)))
    y = reshape(xp, xp.matmul(cols, w2), (groups, n, p, cog))
    y = xp.permute_dims(y, (1, 0, 3, 2))  # (N, G, Cog, P)
    return reshape(xp, y, (n, g.out_channels) + g.out_spatial)


def run_direct(
    xp: Any,
    x: Any,
    w: Any,
    plan: Plan,
    band_pads: tuple[int, int] = (0, 0),
    channels_last: bool = False,
) -> Any:
    """Execute a direct strategy of ``plan`` on padded ``x`` and weight ``w``.

    ``band_pads``: see :func:`toeplitz_zero_pads_in_band`.  ``channels_last``
    (only where :func:`uses_grid`): the result is ``(N, *O, C_out)``.
    """
    g = plan.geometry
    if uses_grid(plan):
        return _grid(xp, x, w, g, plan.strategy, plan.taps_in_order, channels_last)
    assert not channels_last, plan
    if on_phase_grid(plan):
        return _phase_grid(xp, x, w, g, plan.strategy, plan.taps_in_order)
    if plan.strategy == "elementwise" and plan.flat_chunk:
        return _elementwise_flat(xp, x, w, g, plan.flat_chunk)
    if plan.strategy == "elementwise":
        return _elementwise(xp, x, w, g)
    if plan.strategy == "shift":
        return _shift(xp, x, w, g)
    if plan.strategy == "im2col_last":
        return _im2col_last(xp, x, w, g)
    if plan.strategy == "im2col":
        return _im2col(xp, x, w, g, plan.batch_gemm)
    if plan.strategy == "windows":
        return _windows(xp, x, w, g)
    if toeplitz_on_lines(plan):
        return _toeplitz_lines(xp, x, w, g, plan.block, band_pads)
    if plan.strategy == "toeplitz":
        return _toeplitz_strategy(xp, x, w, g, plan.block)
    raise AssertionError(plan.strategy)


def weight_grad_taps(xp: Any, x: Any, gy: Any, g: Geometry, integer: bool) -> Any:
    """Gradient of the correlation with respect to ``w``, one contraction per tap.

    ``x`` is the padded input ``(N, C_in, *S)`` and ``gy`` the output gradient
    ``(N, C_out, *O)``; returns ``(C_out, C_in // groups, *K)``.
    """
    n, groups, cg, cog = x.shape[0], g.groups, g.group_in, g.group_out
    p = math.prod(g.out_spatial)
    gy4 = reshape(xp, gy, (n, groups, cog, p))
    if integer:
        gy5 = reshape(xp, gy4, (n, groups, cog, 1, p))
    else:
        gy_t = reshape(xp, xp.permute_dims(gy4, (1, 2, 0, 3)), (groups, cog, n * p))
    per_tap = []
    for tap in _taps(g.kernel):
        xs = reshape(xp, x[(slice(None), slice(None)) + _tap_slices(g, tap)], (n, groups, cg, p))
        if integer:
            # exact broadcast multiply-sum (integer matmul is not universal)
            term = xp.sum(gy5 * reshape(xp, xs, (n, groups, 1, cg, p)), axis=(0, 4))
        else:
            xs_t = reshape(xp, xp.permute_dims(xs, (1, 0, 3, 2)), (groups, n * p, cg))
            term = xp.matmul(gy_t, xs_t)  # (G, Cog, Cg)
        per_tap.append(term)
    gw = xp.stack(per_tap, axis=-1)  # (G, Cog, Cg, T)
    return reshape(xp, gw, (g.out_channels, cg) + g.kernel)


def weight_grad_pointwise(xp: Any, x: Any, gy: Any, g: Geometry) -> Any:
    """The weight gradient of a 1x1 (one-tap) layer without padding: one batched matmul.

    ``x`` ``(N, C_in, *S)``, ``gy`` ``(N, C_out, *O)``; each sample's
    ``(C_out/G, O) @ (O, C_in/G)`` product per group, over the input's
    strided positions (a copy only for a stride), summed over the samples:
    no channel-major copies (where it runs: ``_plan.pointwise_weight_grad``).
    """
    n, groups, cg, cog = g.batch, g.groups, g.group_in, g.group_out
    p = math.prod(g.out_spatial)
    read = tuple(slice(0, (o - 1) * s + 1, s) for o, s in zip(g.out_spatial, g.stride))
    xs = reshape(xp, x[(slice(None), slice(None)) + read], (n, groups, cg, p))
    gys = reshape(xp, gy, (n, groups, cog, p))
    products = xp.matmul(gys, xp.matrix_transpose(xs))  # (N, G, Cog, Cg)
    return reshape(xp, xp.sum(products, axis=0), (g.out_channels, cg) + g.kernel)


def weight_grad_grid(
    xp: Any,
    x: Any,
    gy: Any,
    g: Geometry,
    chunk: int | None = None,
    in_order: bool = False,
    last_axis_stack: bool = False,
    dots: bool = False,
    channels: int = 0,
) -> Any:
    """Weight gradient for stride 1 on a channel-major flat grid.

    ``x`` is the *unpadded* input ``(N, C_in, *S)``, ``gy`` the output gradient
    ``(N, C_out, *O)``.  Both become ``(C, N * L)`` rows over the padded grid
    (``gy`` zero outside its outputs), so each tap is one long contraction
    ``gy[:, :M] @ x[:, off:off + M].T`` over every sample and position, with
    the tap a view: no per-tap transposing copy.

    ``chunk`` (``_plan.plan_weight_grad``): contract ``chunk`` positions at a
    time, every tap's slice stacked into one operand, the chunks' products
    summed; None keeps one product per tap.  ``in_order``: each chunk's
    stack is read after the sum so far (:func:`after`), so XLA holds one
    stack at a time.  ``last_axis_stack``: a chunk stacks only the last
    kernel axis's taps, over the chunk's positions and the span of the
    other axes' offsets; each tap of the other axes contracts its window
    of that stack.  ``dots`` (one channel in and out per group): see
    :func:`weight_grad_depthwise`, ``channels`` at a time.
    """
    if dots:
        return weight_grad_depthwise(xp, x, gy, g, channels)
    xg, gyg = _weight_grad_grids(xp, x, gy, g)
    rows = grid_run(g)
    if last_axis_stack and chunk is not None:
        return _weight_grad_last_axis(xp, xg, gyg, g, chunk, rows, in_order)
    cg = g.group_in
    reads = [(slice(0, cg), off) for off in grid_tap_offsets(g)]
    return _weight_grad_reads(xp, xg, gyg, g, reads, rows, chunk, in_order)


def weight_grad_depthwise(
    xp: Any, x: Any, gy: Any, g: Geometry, channels: int = 0, taps=None, kernel=None
) -> Any:
    """Stride-1 weight gradient with one channel in and out per group.

    ``x`` is the unpadded input ``(N, C, *S)``, ``gy`` the output gradient.
    A strided layer runs on its stride phases: ``g`` is its phase geometry,
    ``x`` holds each channel's ``P`` phases as channels ``(N, C * P, *Q)``,
    and ``taps`` are ``_plan.depthwise_phase_reads`` (the taps' phases and
    reads of the layer's ``kernel``; None: phase 0 and every tap of ``g``).
    The input is padded along every spatial axis but the first (one copy;
    none for 1-d), the output gradient zero-extended to its rows; each tap
    is then one ``vecdot`` of a contiguous slice of each per sample and
    channel (``_plan.depthwise_weight_grad_reads``), summed over the
    samples.  The channels run in chunks of ``channels`` (0: all), so
    every tap rereads its chunk from the cache
    (``_plan.depthwise_weight_grad_channels``).  No
    channel-major copy: NumPy, against one ``vecdot`` per tap on the
    channel-major grids, 8x144x56^2 3x3 19.6 -> 8.9 ms.
    """
    n, c = g.batch, g.out_channels
    phases = g.in_channels // c
    if g.ndim > 1:
        inner = tuple(g.pads[1:])
        x = pad_axes(xp, x, inner, "constant")
        grow = tuple((0, p - o) for p, o in zip(g.padded_spatial[1:], g.out_spatial[1:]))
        gy = pad_axes(xp, gy, grow, "constant")
    xf = reshape(xp, x, (n, c * phases, math.prod(x.shape[2:])))
    gf = reshape(xp, gy, (n, c, math.prod(gy.shape[2:])))
    if taps is None:
        taps = tuple((0, r) for r in depthwise_weight_grad_reads(g))
    step = channels or c
    chunks = []
    for c0 in range(0, c, step):
        c1 = min(c0 + step, c)  # the standard leaves stops past the end unspecified
        gs = gf[:, c0:c1, :]
        zeros = xp.zeros(gs.shape[:2], dtype=xf.dtype, device=device_of(xf))
        # phase p of channels c0..c1-1: every phases-th row from c0 * phases + p
        xs = [xf[:, c0 * phases + p : c1 * phases : phases, :] for p in range(phases)]
        dots = [
            zeros
            if r is None
            else real_vecdot(xp, xs[p][..., r[0] : r[0] + r[2]], gs[..., r[1] : r[1] + r[2]])
            for p, r in taps
        ]
        chunks.append(xp.stack(dots, axis=-1))  # (N, chunk, T)
    per_sample = chunks[0] if len(chunks) == 1 else xp.concat(chunks, axis=1)
    return reshape(xp, xp.sum(per_sample, axis=0), (c, 1) + (kernel or g.kernel))


def weight_grad_phases(xp: Any, x: Any, gy: Any, g: Geometry, phased: Geometry, wplan) -> Any:
    """Weight gradient of a strided ``g`` on the flat grid of its stride phases.

    ``phased`` is ``_plan.weight_grad_phase_geometry(g)`` and ``wplan`` its
    ``_plan.plan_weight_grad``; ``x`` is the unpadded input ``(N, C_in, *S)``.
    One copy pads the strided axes and splits them into the phases the
    kernel reads, as channels (``(G, *phases, C_in/G)``); tap ``s * m + r``
    is then phase ``r``'s block of rows at the grid offset of ``m``, a
    contiguous slice as in :func:`weight_grad_grid`, whose products these
    follow (every tap stacked; only the kernel's taps are read, and taps
    that read adjacent blocks at one offset are read as one slice).
    """
    nsp, groups, cg = g.ndim, g.groups, g.group_in
    ext = tuple(
        (lo, s * q - n - lo) if s > 1 else (0, 0)
        for (lo, _), s, q, n in zip(g.pads, g.stride, phased.in_spatial, g.in_spatial)
    )
    x1 = pad_axes(xp, x, ext, "constant")
    phases = stride_phases_read(g)
    split = stride_phases(xp, x1, g.stride, phased.in_spatial)  # (N, C, *s, *Q)
    split = split[(slice(None), slice(None)) + tuple(slice(0, p) for p in phases) + (Ellipsis,)]
    split = reshape(xp, split, (g.batch, groups, cg) + phases + phased.in_spatial)
    lead = (0, 1) + tuple(range(3, 3 + nsp)) + (2,)
    split = xp.permute_dims(split, lead + tuple(range(3 + nsp, 3 + 2 * nsp)))
    xph = reshape(xp, split, (g.batch, phased.in_channels) + phased.in_spatial)
    if wplan.last_axis_stack:  # no tap to drop: the phases' own stride-1 problem
        gw = weight_grad_grid(xp, xph, gy, phased, *wplan)  # (C_out, G * P * Cg, *sub)
        gw = reshape(xp, gw, (g.out_channels,) + phases + (cg,) + phased.kernel)
        perm = (0, 1 + nsp) + tuple(v for i in range(nsp) for v in (2 + nsp + i, 1 + i))
        return reshape(xp, xp.permute_dims(gw, perm), (g.out_channels, cg) + g.kernel)
    if wplan.dots:
        taps = depthwise_phase_reads(g, phased)
        return weight_grad_depthwise(xp, xph, gy, phased, wplan.channels, taps, g.kernel)
    xg, gyg = _weight_grad_grids(xp, xph, gy, phased)
    reads, place = weight_grad_phase_reads(g, phased)
    rows, chunk, in_order = grid_run(phased), wplan.chunk, wplan.in_order
    return _weight_grad_reads(xp, xg, gyg, g, reads, rows, chunk, in_order, place)


@functools.lru_cache(maxsize=256)
def weight_grad_phase_reads(g: Geometry, phased: Geometry) -> tuple[tuple, tuple[int, ...] | None]:
    """The reads of :func:`weight_grad_phases`: ``(rows, grid offset)`` and the taps' places.

    By sub-kernel tap ``m`` (one grid offset each), the phases ``r`` whose
    tap ``s * m + r`` lies inside the kernel, blocks of ``C_in/G`` rows;
    adjacent blocks at one offset are one read (every phase, where the
    sub-kernel tap is whole).  ``place[t]``: where the reads put the
    kernel's tap ``t`` (flat, the last axis fastest); None where in order.
    """
    cg = g.group_in
    phases = stride_phases_read(g)
    reads: list[tuple[slice, int]] = []
    order = []
    for m in _taps(phased.kernel):
        off = grid_offset(phased, m)
        for index, r in enumerate(_taps(phases)):
            tap = tuple(s * mi + ri for s, mi, ri in zip(g.stride, m, r))
            if any(t >= k for t, k in zip(tap, g.kernel)):
                continue
            order.append(sum(t * math.prod(g.kernel[i + 1 :]) for i, t in enumerate(tap)))
            if reads and reads[-1][1] == off and reads[-1][0].stop == index * cg:
                reads[-1] = (slice(reads[-1][0].start, (index + 1) * cg), off)
            else:
                reads.append((slice(index * cg, (index + 1) * cg), off))
    if order == list(range(g.taps)):
        return tuple(reads), None
    place = [0] * g.taps
    for i, t in enumerate(order):
        place[t] = i
    return tuple(reads), tuple(place)


def _weight_grad_grids(xp: Any, x: Any, gy: Any, g: Geometry) -> tuple[Any, Any]:
    """``x`` and ``gy`` on the channel-major flat padded grid: ``(G, C/G, L)`` each."""
    nsp = g.ndim
    first = (1, 0) + tuple(range(2, 2 + nsp))
    xg = pad_axes(xp, xp.permute_dims(x, first), g.pads, "constant")
    grow = tuple((0, sp - o) for sp, o in zip(g.padded_spatial, g.out_spatial))
    gyg = pad_axes(xp, xp.permute_dims(gy, first), grow, "constant")
    lines = g.batch * math.prod(g.padded_spatial)
    xg = reshape(xp, xg, (g.groups, g.group_in, lines))
    gyg = reshape(xp, gyg, (g.groups, g.group_out, lines))
    return xg, gyg


def _weight_grad_reads(
    xp: Any,
    xg: Any,
    gyg: Any,
    g: Geometry,
    reads,
    rows: int,
    chunk: int | None,
    in_order: bool,
    place: tuple[int, ...] | None = None,
) -> Any:
    # The products of ``weight_grad_grid``: the rows ``reads[i][0]`` of each
    # group of ``xg`` from grid offset ``reads[i][1]``, read in turn, are the
    # kernel's taps times ``C_in/G`` rows, tap ``t`` at ``place[t]`` (None:
    # in the kernel's order, the last axis fastest).
    groups, cg, cog = g.groups, g.group_in, g.group_out
    if chunk is None:
        head = gyg[..., :rows]
        per_read = [
            xp.matmul(head, xp.matrix_transpose(xg[:, sel, off : off + rows])) for sel, off in reads
        ]
        gw = per_read[0] if len(per_read) == 1 else xp.concat(per_read, axis=-1)
        gw = xp.permute_dims(reshape(xp, gw, (groups, cog, g.taps, cg)), (0, 2, 3, 1))
    else:
        acc = None
        for start in range(0, rows, chunk):
            stop = min(start + chunk, rows)
            src = after(xp, xg, acc) if in_order and acc is not None else xg
            cols = xp.concat([src[:, sel, off + start : off + stop] for sel, off in reads], axis=1)
            # (G, T * Cg, Cog): tap-major rows, as the concat stacked them
            acc = _accumulate(acc, xp.matmul(cols, xp.matrix_transpose(gyg[..., start:stop])))
        gw = reshape(xp, acc, (groups, g.taps, cg, cog))
    if place is not None:  # the taps in the kernel's order (a small gather of the weights)
        gw = xp.take(gw, xp.asarray(place, device=device_of(gw)), axis=1)
    gw = xp.permute_dims(gw, (0, 3, 2, 1))  # (G, Cog, Cg, T)
    return reshape(xp, gw, (g.out_channels, cg) + g.kernel)


def _weight_grad_last_axis(
    xp: Any, xg: Any, gyg: Any, g: Geometry, chunk: int, rows: int, in_order: bool
) -> Any:
    # ``weight_grad_grid`` with ``last_axis_stack``: ``xg`` (G, Cg, L) and
    # ``gyg`` (G, Cog, L) on the flat grid.  The heads are the taps of the
    # other kernel axes, each an offset into one chunk's stack.
    groups, cg, cog = g.groups, g.group_in, g.group_out
    k_last, d_last = g.kernel[-1], g.dilation[-1]
    heads = grid_tap_offsets(g)[::k_last]  # the last axis's first tap of each head
    span = heads[-1]
    sums = [None] * len(heads)
    for start in range(0, rows, chunk):
        m = min(chunk, rows - start)
        src = after(xp, xg, sums[-1]) if in_order and start else xg
        cols = xp.concat(
            [src[..., start + j * d_last : start + j * d_last + m + span] for j in range(k_last)],
            axis=1,
        )  # (G, k_last * Cg, m + span)
        gy_t = xp.matrix_transpose(gyg[..., start : start + m])
        for i, off in enumerate(heads):
            sums[i] = _accumulate(sums[i], xp.matmul(cols[..., off : off + m], gy_t))
    gw = reshape(xp, xp.stack(sums, axis=0), (len(heads), groups, k_last, cg, cog))
    gw = xp.permute_dims(gw, (1, 4, 3, 0, 2))  # (G, Cog, Cg, heads, k_last)
    return reshape(xp, gw, (g.out_channels, cg) + g.kernel)


def _frames(xp: Any, x: Any, hop: int, width: int, nb: int) -> Any:
    """Overlapping frames of the last axis: ``(..., nb, width)``, ``hop`` apart.

    Built from strided slices (few frames) or reshaped slices (many; see
    :data:`STACKED_FRAMES`), so no gather is needed.  ``x`` must hold
    :func:`frames_length` samples: the padding's copy appends the zeros
    (:func:`toeplitz_zeros_after`).
    """
    lead = tuple(x.shape[:-1])
    assert x.shape[-1] >= frames_length(hop, width, nb), (x.shape, hop, width, nb)
    if nb == 1:  # one frame per line: a view
        return reshape(xp, x[..., :width], lead + (1, width))
    if nb <= STACKED_FRAMES:
        return xp.stack([x[..., j * hop : j * hop + width] for j in range(nb)], axis=-2)
    q = -(-width // hop)
    pieces = [reshape(xp, x[..., j * hop : (j + nb) * hop], lead + (nb, hop)) for j in range(q)]
    # the last piece only up to the frame's end: the join copies no surplus
    # columns, and the product reads a contiguous operand
    pieces[-1] = pieces[-1][..., : width - (q - 1) * hop]
    return pieces[0] if q == 1 else xp.concat(pieces, axis=-1)


# From this many bands on, ``_toeplitz`` gathers them with one ``take``
# (about 2 ns an element, but some 13 small array calls to build the
# indices); fewer are cheaper repeated and transposed.  256 groups x 3 bands
# of 34 x 32: 1.6 against 5.6 ms; 64 x 3: equal; one 320 x 64 band: 162
# against 53 us.
_TAKE_BANDS = 256


def _toeplitz(xp: Any, rows: Any, block: int, width: int, step: int = 1) -> Any:
    """``T[..., m, j] = rows[..., m - step * j]`` (zero outside): shape ``(..., width, block)``.

    Returned in C order: NumPy's ``matmul`` took 2.4x longer with a
    transposed view (depthwise 28^2 bands).  Many bands are one ``take``
    with indices fixed by the shapes (``m - step * j``, or the index of an
    appended zero outside the band).  Few are built transposed: row ``j`` of
    the transpose is the kernel shifted right by ``step * j``, so repeating
    ``[rows, zeros]`` of length ``width + step`` and cutting it into lines of
    ``width`` shifts each line by ``step`` more places.
    """
    lead = tuple(rows.shape[:-1])
    span = rows.shape[-1]
    dev = device_of(rows)
    if math.prod(lead) >= _TAKE_BANDS:
        diag = xp.arange(width, device=dev)[:, None] - step * xp.arange(block, device=dev)[None, :]
        outside = xp.full_like(diag, span)  # the appended zero
        index = xp.where((diag >= 0) & (diag < span), diag, outside)
        zero = xp.zeros(lead + (1,), dtype=rows.dtype, device=dev)
        padded = xp.concat([rows, zero], axis=-1)
        bands = xp.take(padded, reshape(xp, index, (width * block,)), axis=-1)
        return reshape(xp, bands, lead + (width, block))
    zeros = xp.zeros(lead + (width + step - span,), dtype=rows.dtype, device=dev)
    v = xp.concat([rows, zeros], axis=-1)
    flat = xp.concat([v] * block, axis=-1)[..., : block * width]
    t = reshape(xp, flat, lead + (block, width))
    return c_contiguous(xp, xp.matrix_transpose(t))


def toeplitz_on_lines(plan: Plan) -> bool:
    """Whether the banded-matmul ``plan`` runs channel-major on the flat line grid.

    Needs stride 1 on every axis but the last (whose stride the band
    carries); the input is then handed in as ``(G, N, *S)``.
    """
    g = plan.geometry
    return plan.strategy == "toeplitz" and all(s == 1 for s in g.stride[:-1])


def toeplitz_zero_pads_in_band(plan: Plan, pad_mode: str, fill: Any) -> bool:
    """Whether the last axis's zero padding can live in the band instead of ``x``.

    With one frame per line, band rows that would meet padding zeros are
    simply dropped: the input lines are used unpadded, which saves a copy.
    """
    g = plan.geometry
    lo, hi = g.pads[-1]
    if not (toeplitz_on_lines(plan) and plan.block >= g.out_spatial[-1]):
        return False
    _, width = band_frames(g, plan.block)
    return (
        width >= lo + g.in_spatial[-1]  # the band has a row for every input
        and pad_mode == "constant"
        and fill == 0
        and lo >= 0
        and hi >= 0
    )


def toeplitz_zeros_after(plan: Plan, band_pads: tuple[int, int]) -> tuple[int, ...] | None:
    """Zeros to append to the last axis with the padding, so framing never copies twice.

    None when the banded-matmul plan reads its lines as they are (long
    enough already, or the padding kept in the band).
    """
    g = plan.geometry
    if plan.strategy != "toeplitz" or band_pads != (0, 0):
        return None
    hop, width = band_frames(g, plan.block)
    nb = -(-g.out_spatial[-1] // plan.block)
    extra = frames_length(hop, width, nb) - g.padded_spatial[-1]
    if extra <= 0:
        return None
    return (0,) * (g.ndim - 1) + (extra,)


def _toeplitz_lines(
    xp: Any, x: Any, w: Any, g: Geometry, block: int, band_pads: tuple[int, int]
) -> Any:
    # ``x`` is channel-major ``(G, N, *S)``: samples and the leading spatial
    # axes merge into one axis of lines, each tap of the leading kernel axes
    # is a line offset (a view), and each matmul runs per channel over every
    # sample at once -- a few tall products instead of N * G tiny ones.
    # ``band_pads``: zero padding of the last axis left out of ``x`` (the band
    # drops the rows that would meet it).
    groups, n = g.groups, g.batch
    span = g.spans[-1]
    hop, width = band_frames(g, block)
    o_last = g.out_spatial[-1]
    nb = -(-o_last // block)
    head_sp = g.padded_spatial[:-1]
    lines = n * math.prod(head_sp)
    w_last = dilate_kernel(xp, reshape(xp, w, (groups,) + g.kernel), g.dilation[-1:])
    lo = band_pads[0]
    if band_pads != (0, 0):
        frames = reshape(xp, x, (groups, lines, x.shape[-1]))
    else:
        frames = _frames(xp, x, hop, width, nb)  # (G, N, *S_head, nb, width)
        frames = reshape(xp, frames, (groups, lines * nb, width))
    line = frames.shape[-1]
    # a head tap's grid offset, counted in lines instead of elements
    offsets = [off // g.padded_spatial[-1] for off in grid_tap_offsets(g)[:: g.kernel[-1]]]
    rows = lines - max(offsets)
    # every head tap's band in one build: (G, taps, width, block)
    w_heads = reshape(xp, w_last, (groups, len(offsets), span))
    bands = _toeplitz(xp, w_heads, block, width, g.stride[-1])
    acc = None
    for i, off in enumerate(offsets):
        op = frames[:, off * nb : (off + rows) * nb, :]
        band = bands[:, i, lo : lo + line, :]
        acc = _accumulate(acc, xp.matmul(op, band))  # (G, rows * nb, block)
    # split, then merge: Dask reshapes only by whole splits or merges
    acc = reshape(xp, reshape(xp, acc, (groups, rows, nb, block)), (groups, rows, nb * block))
    if rows < lines:  # lines whose taps run past the end only feed cut outputs
        tail = xp.zeros((groups, lines - rows, nb * block), dtype=acc.dtype, device=device_of(acc))
        acc = xp.concat([acc, tail], axis=1)
    y = reshape(xp, acc, (groups, n) + head_sp + (nb * block,))
    y = y[(slice(None), slice(None)) + tuple(slice(0, o) for o in g.out_spatial)]
    return xp.permute_dims(y, (1, 0) + tuple(range(2, 2 + g.ndim)))


def _toeplitz_strategy(xp: Any, x: Any, w: Any, g: Geometry, block: int) -> Any:
    # Single channel per group (SciPy-style correlation, depthwise): the last
    # kernel axis becomes a banded (Toeplitz) matrix, so each output row block
    # is one small matmul; the other kernel axes are shifted and accumulated.
    # Costs (block + span - 1) / k_last times the direct multiply-adds, at
    # matmul speed (stride s along the last axis: (s * (block - 1) + span)).
    n, groups = x.shape[0], g.groups
    hop, width = band_frames(g, block)
    o_last = g.out_spatial[-1]
    nb = -(-o_last // block)
    w_last = dilate_kernel(xp, reshape(xp, w, (groups,) + g.kernel), g.dilation[-1:])
    frames = _frames(xp, x, hop, width, nb)  # (N, G, *S_head, nb, width)
    head_out = g.out_spatial[:-1]
    r = math.prod(head_out) * nb
    acc = None
    for head in _taps(g.kernel[:-1]):
        sl = tuple(
            slice(t * d, t * d + (o - 1) * s + 1, s)
            for t, d, s, o in zip(head, g.dilation[:-1], g.stride[:-1], head_out)
        )
        fr = reshape(
            xp, frames[(slice(None), slice(None)) + sl + (Ellipsis,)], (n, groups, r, width)
        )
        rows = w_last[(slice(None),) + head + (slice(None),)]  # (G, span)
        band = _toeplitz(xp, rows, block, width, g.stride[-1])
        acc = _accumulate(acc, xp.matmul(fr, band))
    y = reshape(xp, acc, (n, groups) + head_out + (nb, block))  # split, then merge (Dask)
    y = reshape(xp, y, (n, groups) + head_out + (nb * block,))[..., :o_last]
    return reshape(xp, y, (n, g.out_channels) + g.out_spatial)


def _flat_grid(xp: Any, x: Any, g: Geometry, max_off: int) -> tuple[Any, int]:
    """``x`` ``(N, C, *S)`` flattened to ``(N, C, L)``, zero-extended to ``P + max_off``.

    With every stride 1, output ``o`` and tap ``t`` meet at flat index
    ``flat(o) + flat(t)``: computing the outputs on the padded grid (rows of the
    full padded width, the surplus columns cut at the end) turns every tap into
    one contiguous slice of the flat input — a view, no gather.
    """
    n, c = x.shape[0], x.shape[1]
    length = math.prod(x.shape[2:])  # may hold grid_extra_rows beyond the padding
    p = g.out_spatial[0] * math.prod(g.padded_spatial[1:])
    xf = _zero_extend(xp, reshape(xp, x, (n, c, length)), p + max_off)
    return xf, p


def on_phase_grid(plan: Plan) -> bool:
    """Whether ``plan`` runs on the phase grid of its strides.

    A channel-major im2col (``plan.batch_gemm``) gathers every tap's exact
    windows itself, whatever ``plan.phase_grid`` says (the planner never
    sets both).
    """
    return plan.phase_grid and not plan.batch_gemm


def uses_grid(plan: Plan) -> bool:
    """Whether ``plan`` runs on the flat padded grid (every stride 1)."""
    g = plan.geometry
    return (
        plan.strategy in ("shift", "im2col_last", "im2col")
        and all(s == 1 for s in g.stride)
        and not plan.batch_gemm
    )


@functools.lru_cache(maxsize=1024)
def grid_extra_rows(g: Geometry) -> int:
    """Rows to add below the padding so every tap slice of the flat grid fits.

    They only feed grid columns that are cut away, so their values do not
    matter; adding them with the padding saves a second copy of the input.
    """
    row = math.prod(g.padded_spatial[1:])
    p = g.out_spatial[0] * row
    need = p + last_tap_offset(g)
    return max(0, -(-(need - math.prod(g.padded_spatial)) // row))


def _from_grid(
    xp: Any, y: Any, g: Geometry, inner: tuple[int, ...] | None = None, last: bool = False
) -> Any:
    """``(N, C_out, P)`` on a grid of rows of shape ``inner`` -> ``(N, C_out, *O)``.

    ``inner``: the grid's extent beyond its first axis, by default the
    padded input's (the stride-1 grid).  ``last``: ``y`` is ``(N, P,
    C_out)`` and so is the result, ``(N, *O, C_out)``.
    """
    inner = tuple(g.padded_spatial[1:]) if inner is None else inner
    keep = (slice(None), slice(None)) + tuple(slice(0, o) for o in g.out_spatial[1:])
    if last:
        y = reshape(xp, y, (y.shape[0], g.out_spatial[0]) + inner + (y.shape[-1],))
        return y[keep + (Ellipsis,)]
    y = reshape(xp, y, (y.shape[0], y.shape[1], g.out_spatial[0]) + inner)
    return y[(slice(None),) + keep]


@functools.lru_cache(maxsize=1024)
def _grid_taps(g: Geometry) -> tuple[tuple[int, int], ...]:
    """``(phase, offset)`` of every tap on the stride-1 grid (one phase).

    Cached: a 32x32 kernel's 1,024 pairs took 0.08 ms to build per call.
    """
    return tuple((0, off) for off in grid_tap_offsets(g))


def _grid(
    xp: Any, x: Any, w: Any, g: Geometry, strategy: str, in_order: bool, last: bool = False
) -> Any:
    # The stride-1 forms of shift / im2col_last / im2col on the flat padded grid.
    n, c = x.shape[0], x.shape[1]
    xf, p = _flat_grid(xp, x, g, last_tap_offset(g))
    xf = reshape(xp, xf, (n, c, 1, xf.shape[-1]))  # one phase
    y = _grid_products(xp, xf, w, g, strategy, _grid_taps(g), p, in_order, last)
    return _from_grid(xp, y, g, last=last)


def stride_phases(xp: Any, x: Any, stride: tuple[int, ...], lengths: tuple[int, ...]) -> Any:
    """``(N, C, *S)`` with ``S = stride * lengths`` as ``(N, C, *stride, *lengths)`` (a view).

    Element ``[n, c, *r, *q]`` is ``x[n, c, *(q * stride + r)]``: phase ``r``
    of every axis, ready to be copied by the caller's next reshape.
    """
    nsp = len(stride)
    split = tuple(x.shape[:2]) + tuple(v for q, s in zip(lengths, stride) for v in (q, s))
    perm = (0, 1) + tuple(3 + 2 * i for i in range(nsp)) + tuple(2 + 2 * i for i in range(nsp))
    return xp.permute_dims(reshape(xp, x, split), perm)


def _phase_grid(xp: Any, x: Any, w: Any, g: Geometry, strategy: str, in_order: bool) -> Any:
    """A strided shift / im2col_last / im2col on the flat grid of the stride phases.

    ``x`` is padded and zero-extended to :func:`phase_grid_padded`.  One copy
    splits it into its ``prod(stride)`` phases, each flattened; every tap is
    then one contiguous slice of one phase (:func:`phase_tap_offsets`), as on
    the stride-1 grid, instead of a strided gather of short runs.
    """
    n, c = x.shape[0], x.shape[1]
    shape = phase_grid_shape(g)
    phases = stride_phases(xp, x, g.stride, shape)
    xf = reshape(xp, phases, (n, c, math.prod(g.stride), math.prod(shape)))
    p = g.out_spatial[0] * math.prod(shape[1:])
    y = _grid_products(xp, xf, w, g, strategy, phase_tap_offsets(g), p, in_order)
    return _from_grid(xp, y, g, shape[1:])


def _grid_products(
    xp: Any,
    xf: Any,
    w: Any,
    g: Geometry,
    strategy: str,
    taps,
    p: int,
    in_order: bool,
    last: bool = False,
) -> Any:
    """``(N, C_out, p)``: shift / im2col_last / im2col on flat phases ``xf`` ``(N, C, F, L)``.

    ``taps[i]`` is the ``(phase, offset)`` where tap ``i`` (the last kernel
    axis fastest) reads its ``p`` grid positions.  ``in_order``: each tap's
    operand is read after the sum so far (:func:`after`,
    ``_plan.orders_taps``).  ``last``: ``(N, p, C_out)`` instead, from the
    same products with both operands transposed (BLAS reads a transposed
    operand in place; NumPy, 8x870x256 by 256x128: 3.16 against 3.09 ms).
    """
    n, groups, cg = xf.shape[0], g.groups, g.group_in

    def read(phase: int, offset: int, length: int, acc: Any = None) -> Any:
        src = after(xp, xf, acc) if in_order and acc is not None else xf
        return src[:, :, phase, offset : offset + length]

    def product(wk: Any, op: Any) -> Any:  # (G, Cog, K) by (N, G, K, p)
        if not last:
            return xp.matmul(wk, op)
        return xp.matmul(xp.permute_dims(op, (0, 1, 3, 2)), xp.permute_dims(wk, (0, 2, 1)))

    if strategy == "shift":
        w_taps = _taps_leading(xp, w, g, 0)  # (T, G, Cog, Cg)
        acc = None
        for i, (phase, off) in enumerate(taps):
            op = reshape(xp, read(phase, off, p, acc), (n, groups, cg, p))
            acc = _accumulate(acc, product(w_taps[i, ...], op))
    elif strategy == "im2col_last":
        # The taps of one kernel row differ from its first tap by the same
        # (phase, offset) steps; rows starting in one phase share one stack.
        k_last = g.kernel[-1]
        heads = taps[::k_last]
        steps = [(f - taps[0][0], off - taps[0][1]) for f, off in taps[:k_last]]
        spans = {}
        for f, off in heads:
            spans[f] = max(spans.get(f, 0), off + p)
        cols = {
            f: xp.stack([read(f + df, do, span) for df, do in steps], axis=2)
            for f, span in spans.items()
        }
        w_heads = _taps_leading(xp, w, g, 1)  # (T_head, G, Cog, Cg * k_last)
        acc = None
        for i, (f, off) in enumerate(heads):
            src = after(xp, cols[f], acc) if in_order and acc is not None else cols[f]
            op = reshape(xp, src[..., off : off + p], (n, groups, cg * k_last, p))
            acc = _accumulate(acc, product(w_heads[i, ...], op))
    else:  # im2col: every tap stacked, one matmul
        w2 = reshape(xp, w, (groups, g.group_out, cg * g.taps))
        cols = xp.stack([read(f, off, p) for f, off in taps], axis=2)  # (N, C, T, P)
        acc = product(w2, reshape(xp, cols, (n, groups, cg * g.taps, p)))
    if last:  # (N, G, p, Cog) -> (N, p, G * Cog)
        return reshape(xp, xp.permute_dims(acc, (0, 2, 1, 3)), (n, p, g.out_channels))
    return reshape(xp, acc, (n, g.out_channels, p))
