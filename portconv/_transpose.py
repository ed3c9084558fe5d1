"""The input gradient of a correlation (= transposed convolution).

Two formulations on the one correlation core:

* **sub-pixel** (dilation 1): output position ``i = q*stride + r`` only meets
  the taps ``t = r + stride*m``, so each of the ``prod(stride)`` phases ``r``
  is a plain stride-1 correlation of ``grad_output`` with the sub-kernel
  ``w[r::stride]``; one transposing copy interleaves the phases.  Phases of
  one sub-kernel shape share one correlation, and for few channels the
  sub-kernels are zero-extended to the widest, so every phase shares it
  (``_plan.merge_phases``: more multiply-adds, fewer copies); otherwise it
  does exactly the useful multiply-adds.  On NumPy-like CPU libraries, for
  shallow contractions, the phases are computed channels-last, so that copy
  moves runs of ``stride[-1] * channels`` values, and the result is a
  channels-first view of channels-last memory (``_plan.phases_last``).
* **zero insertion** (any dilation): ``grad_output`` is dilated by ``stride``
  with zeros and correlated with the flipped kernel: ``prod(stride)`` times
  the useful work, used only when a strided axis is also dilated or the
  phases are too many to unroll (over 64).
"""

from __future__ import annotations

import itertools
import math
from typing import Any

from ._compat import device_kind, device_of, is_jax_namespace, reshape
from ._core import correlate_nd, make_plan
from ._direct import TRANSPOSED_IN_PLACE, transposed_weight
from ._fft import dilate_kernel
from ._pad import pad_axes
from ._plan import Geometry, col2im_phases, merge_phases, phases_last

__all__ = ["input_grad"]


def _swap_channels(xp: Any, w: Any, groups: int) -> Any:
    """``(C_out, Cg, *K)`` -> ``(G*Cg, C_out/G, *K)``, flipped along the kernel axes."""
    c_out, cg = w.shape[0], w.shape[1]
    kernel = tuple(w.shape[2:])
    nsp = len(kernel)
    wt = reshape(xp, w, (groups, c_out // groups, cg) + kernel)
    wt = xp.permute_dims(wt, (0, 2, 1) + tuple(range(3, 3 + nsp)))
    wt = reshape(xp, wt, (groups * cg, c_out // groups) + kernel)
    return xp.flip(wt, axis=tuple(range(2, 2 + nsp)))


def input_grad(
    xp, gy, w, in_spatial, stride, dilation, pads, groups, info, budget, func, method, **forced
):
    """VJP of ``correlate(x, w)`` w.r.t. ``x`` for ``gy`` of shape ``(N, C_out, *O)``.

    Returns ``(N, groups * w.shape[1], *in_spatial)``.  Plans (and checks the
    budget) before allocating anything of the output's size.  ``forced``
    (tests force each form): ``last``, the sub-pixel phases channels-last or
    not (else as ``_plan.phases_last`` decides); ``merge``, phases of unequal
    sub-kernels as one correlation or not (``_plan.merge_phases``);
    ``col2im``, the phases summed from every tap's products
    (``_plan.col2im_phases``; only with one group and every phase meeting a
    tap).
    """
    strided = any(s > 1 for s in stride)
    # sub-pixel multiplies only taps: phases no tap meets (a kernel narrower
    # than its stride) are stacked in as zeros, where zero insertion would
    # multiply its inserted zeros (ResNet's 1x1 stride-2 shortcut, NumPy,
    # 8x128x28^2: 7.6 -> 2.0 ms, benchmarks/ab.py --set input); the phase
    # count stays small to unroll
    phased = math.prod(stride) <= 64
    if strided and phased and all(d == 1 for d in dilation):
        return _sub_pixel(
            xp, gy, w, in_spatial, stride, pads, groups, info, budget, func, method, **forced
        )
    return _zero_insertion(
        xp, gy, w, in_spatial, stride, dilation, pads, groups, info, budget, func, method
    )


def _zero_insertion(
    xp, gy, w, in_spatial, stride, dilation, pads, groups, info, budget, func, method
):
    n, c_out = gy.shape[0], gy.shape[1]
    kernel = tuple(w.shape[2:])
    nsp = len(kernel)
    zs = tuple((o - 1) * s + 1 for o, s in zip(gy.shape[2:], stride))
    gpads = tuple(
        ((k - 1) * d - lo, nx + lo - length)
        for k, d, (lo, _), nx, length in zip(kernel, dilation, pads, in_spatial, zs)
    )
    g = Geometry(n, c_out, groups * w.shape[1], groups, zs, kernel, (1,) * nsp, dilation, gpads)
    assert g.out_spatial == tuple(in_spatial), (g.out_spatial, in_spatial)
    plan = make_plan(func, xp, gy, g, method, info, budget, zero_pads=True)
    z = dilate_kernel(xp, gy, stride)
    # matmuls of one group read the swapped weight transposed, in place
    laid_out = (
        groups == 1
        and plan.strategy in TRANSPOSED_IN_PLACE
        and plan.swapped is None
        and plan.inner is None
    )
    if laid_out:
        return correlate_nd(xp, z, transposed_weight(xp, w, plan.strategy), plan, laid_out=True)
    return correlate_nd(xp, z, _swap_channels(xp, w, groups), plan)


def _sub_pixel(
    xp,
    gy,
    w,
    in_spatial,
    stride,
    pads,
    groups,
    info,
    budget,
    func,
    method,
    *,
    last=None,
    merge=None,
    col2im=None,
):
    n, c_out = gy.shape[0], gy.shape[1]
    c_in = groups * w.shape[1]
    kernel = tuple(w.shape[2:])
    nsp = len(kernel)
    out = tuple(gy.shape[2:])
    # phase grid: q in [0, Q) per axis covers padded input positions q*s + r
    q_len = tuple(-(-(nx + lo) // s) for nx, (lo, _), s in zip(in_spatial, pads, stride))
    # phases with equal sub-kernel shapes share one correlation: their
    # kernels are stacked along the output channels (one padding, one stack,
    # one wider matmul instead of one each per phase)
    by_sub: dict[tuple[int, ...], list[tuple[int, ...]]] = {}
    for r in itertools.product(*(range(s) for s in stride)):
        sub = tuple(len(range(ri, k, s)) for ri, k, s in zip(r, kernel, stride))
        if 0 not in sub:
            by_sub.setdefault(sub, []).append(r)
    every = [r for rs in by_sub.values() for r in rs]
    if len(by_sub) > 1 and len(every) == math.prod(stride):
        if merge is None:
            merge = merge_phases(kernel, stride, c_out // groups, c_in // groups)
        if merge:  # zero-extended to the widest sub-kernel, in phase order
            widest = tuple(-(-k // s) for k, s in zip(kernel, stride))
            by_sub = {widest: list(itertools.product(*(range(s) for s in stride)))}
    stacked_taps = sum(math.prod(sub) for sub in by_sub)
    # col2im takes one group, and phases that all meet a tap
    eligible = groups == 1 and len(every) == math.prod(stride)
    if col2im is None:
        col2im = col2im_phases(kernel, stride, c_in, c_out, groups, stacked_taps, device_kind(gy))
    # the padded input positions the result keeps
    keep = (slice(None), slice(None)) + tuple(
        slice(lo, lo + nx) for (lo, _), nx in zip(pads, in_spatial)
    )
    if col2im and eligible:
        full = _col2im(xp, gy, w, stride, q_len, info, budget)
        if full is not None:
            return full[keep]
    plans = {}
    for sub, rs in by_sub.items():
        ppads = tuple((kr - 1, ql - o) for kr, ql, o in zip(sub, q_len, out))
        g = Geometry(n, c_out, c_in * len(rs), groups, out, sub, (1,) * nsp, (1,) * nsp, ppads)
        plans[sub] = make_plan(func, xp, gy, g, method, info, budget, zero_pads=True)
    # the phases, their interleaved copy and the cropped result live at once
    phase_bytes = n * c_in * math.prod(q_len) * info.itemsize
    need = 3 * phase_bytes * math.prod(stride) // 2 + max(p.workspace_bytes for p in plans.values())
    if need > budget:
        raise MemoryError(
            f"{func}: the transposed convolution needs {need:,} bytes of workspace "
            f"but the budget is {budget:,} bytes; raise it with workspace_bytes= "
            f"or $PORTCONV_WORKSPACE_BYTES"
        )
    phases = {}
    cig = c_in // groups
    every_phase = len(by_sub) == 1 and len(next(iter(by_sub.values()))) == math.prod(stride)
    if last is None:
        macs = (c_out // groups) * max(math.prod(sub) for sub in by_sub)
        last = phases_last(device_kind(gy), is_jax_namespace(xp), macs)
    # channels-last phases: (N, *Q, G, P, Cig) instead of (N, G, P, Cig, *Q)
    lead, at = ((n,) + q_len, len(q_len) + 1) if last else ((n,), 1)
    for sub, rs in by_sub.items():
        parts = []
        for r in rs:
            sl = tuple(slice(ri, None, s) for ri, s in zip(r, stride))
            wr = _swap_channels(
                xp, _zero_extended(xp, w[(slice(None), slice(None)) + sl], sub), groups
            )
            parts.append(reshape(xp, wr, (groups, cig) + tuple(wr.shape[1:])))
        wcat = xp.stack(parts, axis=1) if len(parts) > 1 else xp.expand_dims(parts[0], axis=1)
        wcat = reshape(xp, wcat, (groups * len(rs) * cig,) + tuple(wcat.shape[3:]))
        y = correlate_nd(xp, gy, wcat, plans[sub], channels_last=last)
        if every_phase:
            break
        y = reshape(xp, y, lead + (groups, len(rs), cig) + (() if last else q_len))
        for i, r in enumerate(rs):
            phases[r] = reshape(xp, _along(y, at + 1, i), (n,) + _spatial(c_in, q_len, last))
    interleave = _interleave_last if last else _interleave
    if every_phase:  # one correlation holds every phase, already stacked
        full = interleave(xp, y, stride, (n, groups, cig), q_len)
    else:
        # phases whose sub-kernel is empty are zero; stacked as one group
        shape = (n,) + _spatial(c_in, q_len, last)
        zeros = xp.zeros(shape, dtype=gy.dtype, device=device_of(gy))
        every = itertools.product(*(range(s) for s in stride))
        stacked = xp.stack([phases.get(r, zeros) for r in every], axis=at)
        full = interleave(xp, stacked, stride, (n, 1, c_in), q_len)
    return full[keep]


def _col2im(xp, gy, w, stride, q_len, info, budget):
    """Every phase, interleaved, from one matmul of every tap (groups of one).

    The output gradient, channels-last on a grid padded by the widest
    sub-kernel less one before and past the phases after (plus a row, so
    every phase reads whole rows), is multiplied by the weight as ``(C_out,
    taps * C_in)``.  On that grid's flat positions, phase ``r`` at ``q`` is
    the sum over its taps ``r + s*m`` of their products at ``q - m``: one
    contiguous slice each.  Returns ``(N, C_in, *Q*s)`` (a channels-first
    view of channels-last memory), or None when the products exceed the
    budget.
    """
    n, c_out = gy.shape[0], gy.shape[1]
    c_in = w.shape[1]
    kernel = tuple(w.shape[2:])
    nsp = len(kernel)
    taps = math.prod(kernel)
    lows = tuple(-(-k // s) - 1 for k, s in zip(kernel, stride))
    highs = [max(0, q - o) for q, o in zip(q_len, gy.shape[2:])]
    highs[0] += 1
    grid = tuple(lo + o + hi for lo, o, hi in zip(lows, gy.shape[2:], highs))
    points = math.prod(grid)
    # padded gradient, the products, the phases and their interleaved copy
    need = n * points * (c_out + taps * c_in) + 3 * n * c_in * math.prod(q_len) * math.prod(stride)
    if need * info.itemsize > budget:
        return None
    g = pad_axes(xp, gy, tuple(zip(lows, highs)), "constant")
    g = xp.permute_dims(g, (0,) + tuple(range(2, 2 + nsp)) + (1,))
    g = reshape(xp, g, (n * points, c_out))
    wt = xp.permute_dims(reshape(xp, w, (c_out, c_in, taps)), (0, 2, 1))
    products = xp.matmul(g, reshape(xp, wt, (c_out, taps * c_in)))
    del g  # each array is dropped as soon as it is used: the peak is the products'
    products = reshape(xp, products, (n, points, taps, c_in))
    steps = tuple(math.prod(grid[i + 1 :]) for i in range(nsp))
    start = sum(lo * st for lo, st in zip(lows, steps))
    span = q_len[0] * steps[0]  # whole rows of the grid; the surplus is cut
    phases = []
    for r in itertools.product(*(range(s) for s in stride)):
        total = None
        subs = (range(len(range(ri, k, s))) for ri, k, s in zip(r, kernel, stride))
        for m in itertools.product(*subs):
            tap = sum(
                (ri + s * mi) * math.prod(kernel[i + 1 :])
                for i, (ri, s, mi) in enumerate(zip(r, stride, m))
            )
            at = start - sum(mi * st for mi, st in zip(m, steps))
            part = products[:, at : at + span, tap, :]
            total = part if total is None else total + part
        total = reshape(xp, total, (n, q_len[0]) + grid[1:] + (c_in,))
        crop = tuple(slice(0, q) for q in q_len[1:])
        phases.append(total[(slice(None), slice(None)) + crop + (slice(None),)])
    stacked = xp.stack(phases, axis=nsp + 1)  # (N, *Q, prod(s), C_in)
    del phases, products, total, part  # one-tap phases are views of the products
    return _interleave_last(xp, stacked, stride, (n, 1, c_in), q_len)


def _zero_extended(xp, w, sub):
    """``w`` with zero taps appended along the kernel axes up to the shape ``sub``."""
    for i, k in enumerate(sub):
        axis = 2 + i
        short = k - w.shape[axis]
        if short:
            shape = tuple(w.shape[:axis]) + (short,) + tuple(w.shape[axis + 1 :])
            zeros = xp.zeros(shape, dtype=w.dtype, device=device_of(w))
            w = xp.concat([w, zeros], axis=axis)
    return w


def _along(x, axis, index):
    return x[(slice(None),) * axis + (index, Ellipsis)]


def _spatial(channels, q_len, last):
    """The trailing shape of one phase: ``(C, *Q)``, or ``(*Q, C)`` channels-last."""
    return tuple(q_len) + (channels,) if last else (channels,) + tuple(q_len)


def _interleave_last(xp, y, stride, lead, q_len):
    """:func:`_interleave` of channels-last phases ``(N, *Q, G * prod(stride) * Cig)``.

    One copy puts every phase in place with runs of ``stride[-1] * Cig``
    values (the last axis's phases and the channels; ``Cig`` with groups)
    and returns it as a ``(N, G * Cig, *full)`` view: channels-last in
    memory.
    """
    n, groups, cig = lead
    nsp = len(stride)
    y = reshape(xp, y, (n,) + tuple(q_len) + (groups,) + tuple(stride) + (cig,))
    # (N, *Q, G, *s, Cig) -> (N, Q0, s0, Q1, s1, ..., G, Cig)
    pairs = tuple(v for i in range(nsp) for v in (1 + i, 2 + nsp + i))
    y = xp.permute_dims(y, (0,) + pairs + (1 + nsp, 2 + 2 * nsp))
    full = tuple(q * s for q, s in zip(q_len, stride))
    y = reshape(xp, y, (n,) + full + (groups * cig,))
    return xp.permute_dims(y, (0, nsp + 1) + tuple(range(1, nsp + 1)))


def _interleave(xp, y, stride, lead, q_len):
    """``full[..., q*s + r] = phase_r[..., q]`` along every spatial axis.

    The phases come stacked in ``y``, ``(N, G * prod(stride) * Cig, *Q)``:
    phase ``r`` (last axis fastest) of channel ``c`` of group ``g`` is
    channel ``(g * prod(stride) + index(r)) * Cig + c``.  One transposing
    copy puts every phase in place.  The 8x64x28^2 4x4 stride-2 layer
    (NumPy): 1.2 against 2.2 ms for the per-axis stacks it replaced
    (medians of 31 calls).
    """
    n, groups, cig = lead
    nsp = len(stride)
    y = reshape(xp, y, (n, groups) + tuple(stride) + (cig,) + tuple(q_len))
    # (N, G, *s, Cig, *Q) -> (N, G, Cig, Q0, s0, Q1, s1, ...)
    perm = (0, 1, 2 + nsp) + tuple(v for i in range(nsp) for v in (3 + nsp + i, 2 + i))
    y = xp.permute_dims(y, perm)
    return reshape(xp, y, (n, groups * cig) + tuple(q * s for q, s in zip(q_len, stride)))
