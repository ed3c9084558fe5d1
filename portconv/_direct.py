"""Direct (spatial-domain) strategies, standard calls only.

All take a *padded* input ``x`` of shape ``(N, C_in, *S)`` and a weight ``w`` of
shape ``(C_out, C_in // groups, *K)`` (channels-first, torch layout) and return
the correlation ``(N, C_out, *O)`` described by the plan's geometry:

``y[n, o, p] = sum_{c, t} x[n, g(o)*Cg + c, p*stride + t*dilation] * w[o, c, t]``

No complex conjugation happens here; callers conjugate when their semantics
ask for it.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

from ._compat import reshape
from ._plan import Geometry, Plan

__all__ = ["run_direct", "weight_grad_taps"]


def _tap_slices(g: Geometry, tap: tuple[int, ...]) -> tuple[slice, ...]:
    out = g.out_spatial
    return tuple(
        slice(t * d, t * d + (o - 1) * s + 1, s)
        for t, d, s, o in zip(tap, g.dilation, g.stride, out)
    )


def _taps(kernel: tuple[int, ...]):
    return itertools.product(*(range(k) for k in kernel))


def _accumulate(acc: Any, term: Any) -> Any:
    return term if acc is None else acc + term


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


def _shift(xp: Any, x: Any, w: Any, g: Geometry) -> Any:
    n, groups, cg, cog = x.shape[0], g.groups, g.group_in, g.group_out
    p = math.prod(g.out_spatial)
    acc = None
    for tap in _taps(g.kernel):
        xs = x[(slice(None), slice(None)) + _tap_slices(g, tap)]
        cols = reshape(xp, xs, (n, groups, cg, p))
        wt = reshape(xp, w[(slice(None), slice(None)) + tap], (groups, cog, cg))
        acc = _accumulate(acc, xp.matmul(wt, cols))
    return reshape(xp, acc, (n, g.out_channels) + g.out_spatial)


def _im2col_last(xp: Any, x: Any, w: Any, g: Geometry) -> Any:
    # im2col along the last kernel axis (one matmul of depth Cg*k_last per
    # position of the other kernel axes), shift-and-accumulate over the rest.
    n, groups, cg, cog = x.shape[0], g.groups, g.group_in, g.group_out
    p = math.prod(g.out_spatial)
    k_last = g.kernel[-1]
    acc = None
    for head in _taps(g.kernel[:-1]):
        cols = xp.stack(
            [x[(slice(None), slice(None)) + _tap_slices(g, head + (j,))] for j in range(k_last)],
            axis=2,
        )  # (N, C, k_last, *O)
        cols = reshape(xp, cols, (n, groups, cg * k_last, p))
        wt = reshape(xp, w[(slice(None), slice(None)) + head + (Ellipsis,)], (groups, cog, cg * k_last))
        acc = _accumulate(acc, xp.matmul(wt, cols))
    return reshape(xp, acc, (n, g.out_channels) + g.out_spatial)


def _im2col(xp: Any, x: Any, w: Any, g: Geometry, batch_tile: int) -> Any:
    groups, cg, cog = g.groups, g.group_in, g.group_out
    p = math.prod(g.out_spatial)
    w2 = reshape(xp, w, (groups, cog, cg * g.taps))
    outs = []
    for start in range(0, x.shape[0], max(batch_tile, 1)):
        xt = x[start : start + batch_tile, ...]
        nt = xt.shape[0]
        cols = xp.stack(
            [xt[(slice(None), slice(None)) + _tap_slices(g, tap)] for tap in _taps(g.kernel)],
            axis=2,
        )  # (nt, C, T, *O)
        cols = reshape(xp, cols, (nt, groups, cg * g.taps, p))
        outs.append(xp.matmul(w2, cols))
    y = outs[0] if len(outs) == 1 else xp.concat(outs, axis=0)
    return reshape(xp, y, (x.shape[0], g.out_channels) + g.out_spatial)


def run_direct(xp: Any, x: Any, w: Any, plan: Plan) -> Any:
    """Execute a direct strategy of ``plan`` on padded ``x`` and weight ``w``."""
    g = plan.geometry
    if plan.strategy == "elementwise":
        return _elementwise(xp, x, w, g)
    if plan.strategy == "shift":
        return _shift(xp, x, w, g)
    if plan.strategy == "im2col_last":
        return _im2col_last(xp, x, w, g)
    if plan.strategy == "im2col":
        return _im2col(xp, x, w, g, plan.batch_tile)
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
