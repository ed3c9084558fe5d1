"""Winograd F(2x2, r0 x r1) strategy for small ungrouped 2-d layers.

Each ``(r0 + 1) x (r1 + 1)`` input tile and the kernel are transformed so
that the tile's 2x2 outputs cost ``(r0 + 1) * (r1 + 1)`` multiplies per
channel pair instead of ``4 * r0 * r1``: the channel contraction becomes
that many independent matmuls (one per transformed position), framed by
additions.  3x3: 16 products against 36 (2.25x fewer multiply-adds); 5x5:
36 against 100 (2.8x).  The transforms are Toom-Cook's, built here in exact
fractions from the interpolation points 0, 1, -1, 2, -2 and infinity (Lavin
and Gray, "Fast Algorithms for Convolutional Neural Networks", 2016).

A strided layer runs as the stride-1 layer of its stride phases stacked as
channels, the kernel zero-padded to whole phases and split the same way
(``_plan.winograd_geometry``): 4x4 stride 2 becomes 2x2 over four times the
channels.

It pays where the additions fuse (XLA); NumPy runs each addition as a pass
over memory and stays with the direct forms.  Like the FFT it mixes the
inputs of a tile, so a NaN or Inf spreads to its tile's four outputs.
Points beyond +-1 cost accuracy: float32 errors grow from about 4e-7 of
the largest output (3x3, points 0 and +-1 only) to about 5e-6 (5x5).
"""

from __future__ import annotations

import functools
from fractions import Fraction
from typing import Any

from ._compat import reshape
from ._direct import stride_phases
from ._pad import pad_axes
from ._plan import Geometry, winograd_geometry, winograd_input, winograd_tiles

__all__ = ["run_winograd", "toom_cook"]

_Matrix = tuple[tuple[float, ...], ...]

#: Toom-Cook's finite interpolation points, in order of use (F(2, r) takes
#: the first r; with infinity that is r + 1).  Kernels up to 5 taps per axis
#: (``_plan.WINOGRAD_KERNELS``): further points (+-1/2) lose more accuracy.
WINOGRAD_POINTS = (0, 1, -1, 2, -2)


def _poly(roots: list[Fraction]) -> list[Fraction]:
    """Coefficients of ``prod (x - root)``, lowest power first."""
    coeffs = [Fraction(1)]
    for root in roots:
        grown = [Fraction(0)] * (len(coeffs) + 1)
        for i, c in enumerate(coeffs):
            grown[i + 1] += c
            grown[i] -= root * c
        coeffs = grown
    return coeffs


@functools.lru_cache(maxsize=16)
def toom_cook(r: int) -> tuple[_Matrix, _Matrix, _Matrix]:
    """``(A^T, G, B^T)`` of F(2, r): ``y = A^T [(G g) * (B^T d)]`` correlates ``d`` with ``g``.

    ``A^T`` is ``2 x a``, ``G`` is ``a x r`` and ``B^T`` is ``a x a`` with
    ``a = r + 1``: the first ``r`` points of :data:`WINOGRAD_POINTS` and
    infinity.
    """
    a = r + 1
    p = [Fraction(v) for v in WINOGRAD_POINTS[: a - 1]]
    at = [[pj**i for pj in p] + [Fraction(int(i == 1))] for i in range(2)]
    g = []
    for j, pj in enumerate(p):
        scale = Fraction(1)
        for pl in p[:j] + p[j + 1 :]:
            scale *= pj - pl
        g.append([pj**k / scale for k in range(r)])
    g.append([Fraction(int(k == r - 1)) for k in range(r)])
    bt = [_poly(p[:j] + p[j + 1 :]) + [Fraction(0)] for j in range(a - 1)] + [_poly(p)]

    def floats(m: list[list[Fraction]]) -> _Matrix:
        return tuple(tuple(float(v) for v in row) for row in m)

    return floats(at), floats(g), floats(bt)


def _combine(parts: list[Any], coeffs: tuple[float, ...]) -> Any:
    """``sum(c * part)`` over the nonzero ``coeffs``, unit coefficients as additions."""
    total = None
    for c, part in zip(coeffs, parts):
        if c == 0:
            continue
        if total is None:
            total = part if c == 1 else (-part if c == -1 else part * c)
        elif c == 1:
            total = total + part
        elif c == -1:
            total = total - part
        else:
            total = total + part * c
    return total


def _transform(xp: Any, inputs: list[Any], m: _Matrix, at: int) -> Any:
    """Every row of ``m`` applied to ``inputs``, the results stacked along axis ``at``."""
    return xp.stack([_combine(inputs, row) for row in m], axis=at)


def _along(x: Any, axis: int, index: Any) -> Any:
    sl = [slice(None)] * x.ndim
    sl[axis] = index
    return x[tuple(sl)]


def _tile_inputs(x: Any, axis: int, tiles: int, size: int) -> list[Any]:
    """Input ``k`` of every tile along ``axis`` (tiles of ``size`` values, stride 2)."""
    return [_along(x, axis, slice(k, k + 2 * tiles - 1, 2)) for k in range(size)]


def _phases_as_channels(xp: Any, x: Any, w: Any, g: Geometry) -> tuple[Any, Any, Geometry]:
    """A strided layer as the stride-1 one of :func:`winograd_geometry`: inputs and kernel split.

    ``x`` is padded at least to :func:`winograd_input`; input phase
    ``(p0, p1)`` of channel ``c`` becomes channel ``(c * s0 + p0) * s1 + p1``,
    and so does the kernel's, zero-padded to whole phases.
    """
    wg = winograd_geometry(g)
    h, v = (e // s for e, s in zip(winograd_input(g), g.stride))  # whole tiles of phase rows
    x = stride_phases(xp, x[:, :, : h * g.stride[0], : v * g.stride[1]], g.stride, (h, v))
    grow = tuple(q * s - k for q, s, k in zip(wg.kernel, g.stride, g.kernel))
    w = pad_axes(xp, w, ((0, 0), (0, 0)), "constant", 0, grow)
    w = stride_phases(xp, w, g.stride, wg.kernel)
    x = reshape(xp, x, (x.shape[0], wg.in_channels, h, v))
    return x, reshape(xp, w, (g.out_channels, wg.in_channels) + wg.kernel), wg


def run_winograd(xp: Any, x: Any, w: Any, g: Geometry) -> Any:
    """Correlate padded ``x`` with ``w`` ``(O, C, r0, r1)``: ``x`` holds :func:`winograd_input`.

    A strided layer runs on its stride phases (:func:`_phases_as_channels`).
    """
    if g.stride != (1, 1):
        x, w, g = _phases_as_channels(xp, x, w, g)
    n, c, o = x.shape[0], g.in_channels, g.out_channels
    (r0, r1), (th, tw) = g.kernel, winograd_tiles(g)
    (at0, g0, bt0), (at1, g1, bt1) = toom_cook(r0), toom_cook(r1)
    a0, a1 = r0 + 1, r1 + 1
    x = xp.permute_dims(x, (1, 0, 2, 3))  # channel-major: the transforms copy anyway
    v = _transform(xp, _tile_inputs(x, 2, th, a0), bt0, 0)  # (a0, C, N, th, Wp)
    v = _transform(xp, _tile_inputs(v, 4, tw, a1), bt1, 1)  # (a0, a1, C, N, th, tw)
    v = reshape(xp, v, (a0 * a1, c, n * th * tw))
    u = _transform(xp, [_along(w, 2, k) for k in range(r0)], g0, 0)  # (a0, O, C, r1)
    u = _transform(xp, [_along(u, 3, k) for k in range(r1)], g1, 1)  # (a0, a1, O, C)
    m = reshape(xp, xp.matmul(reshape(xp, u, (a0 * a1, o, c)), v), (a0, a1, o, n, th, tw))
    rows = [_combine([m[i, ...] for i in range(a0)], row) for row in at0]  # 2 x (a1, O, N, th, tw)
    quads = [[_combine([r[j, ...] for j in range(a1)], col) for col in at1] for r in rows]
    y = xp.stack([xp.stack(q, axis=-1) for q in quads], axis=3)  # (O, N, th, 2, tw, 2)
    y = reshape(xp, y, (o, n, 2 * th, 2 * tw))
    y = y[:, :, : g.out_spatial[0], : g.out_spatial[1]]
    return xp.permute_dims(y, (1, 0, 2, 3))
