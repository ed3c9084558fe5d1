"""Winograd F(2x2, 3x3) strategy for 3x3, stride-1, ungrouped 2-d layers.

Each 4x4 input tile and the 3x3 kernel are transformed so that the tile's
2x2 outputs cost 16 multiplies per channel pair instead of 36: the channel
contraction becomes 16 independent matmuls (one per transformed position),
2.25x fewer multiply-adds than the direct method, framed by cheap additions
(Lavin and Gray, "Fast Algorithms for Convolutional Neural Networks", 2016).

It pays where the additions fuse (XLA); NumPy runs each addition as a pass
over memory and stays with the direct forms.  Like the FFT it mixes the
inputs of a tile, so a NaN or Inf spreads to its tile's four outputs.
"""

from __future__ import annotations

from typing import Any

from ._compat import reshape
from ._plan import Geometry, winograd_tiles

__all__ = ["run_winograd"]


def _input_transform(xp: Any, x: Any, axis: int, tiles: int, at: int) -> Any:
    """``B^T d`` along ``axis`` (length ``2 * tiles + 2``), its 4 rows a new axis ``at``."""
    d = []
    for k in range(4):
        sl = [slice(None)] * x.ndim
        sl[axis] = slice(k, k + 2 * tiles - 1, 2)
        d.append(x[tuple(sl)])
    return xp.stack([d[0] - d[2], d[1] + d[2], d[2] - d[1], d[1] - d[3]], axis=at)


def _kernel_transform(xp: Any, w: Any, axis: int, at: int) -> Any:
    """``G g`` along ``axis`` (length 3), ``G = [[1,0,0], [.5,.5,.5], [.5,-.5,.5], [0,0,1]]``."""

    def tap(k: int) -> Any:
        sl = [slice(None)] * w.ndim
        sl[axis] = k
        return w[tuple(sl)]

    g0, g1, g2 = tap(0), tap(1), tap(2)
    half = (g0 + g2) * 0.5
    return xp.stack([g0, half + g1 * 0.5, half - g1 * 0.5, g2], axis=at)


def run_winograd(xp: Any, x: Any, w: Any, g: Geometry) -> Any:
    """Correlate padded ``x`` ``(N, C, 2*th + 2, 2*tw + 2)`` with ``w`` ``(O, C, 3, 3)``."""
    n, c, o = x.shape[0], g.in_channels, g.out_channels
    th, tw = winograd_tiles(g)
    x = xp.permute_dims(x, (1, 0, 2, 3))  # channel-major: the transforms copy anyway
    v = _input_transform(xp, x, 2, th, 0)  # (4, C, N, th, Wp)
    v = _input_transform(xp, v, 4, tw, 1)  # (4, 4, C, N, th, tw)
    v = reshape(xp, v, (16, c, n * th * tw))
    u = _kernel_transform(xp, w, 2, 0)  # (4, O, C, 3)
    u = reshape(xp, _kernel_transform(xp, u, 3, 1), (16, o, c))  # G g G^T per (O, C)
    m = reshape(xp, xp.matmul(u, v), (4, 4, o, n, th, tw))
    # output transform A^T m A with A^T = [[1, 1, 1, 0], [0, 1, -1, -1]]
    rows = (m[0, ...] + m[1, ...] + m[2, ...], m[1, ...] - m[2, ...] - m[3, ...])
    quads = [[r[0, ...] + r[1, ...] + r[2, ...], r[1, ...] - r[2, ...] - r[3, ...]] for r in rows]
    y = xp.stack([xp.stack(q, axis=-1) for q in quads], axis=3)  # (O, N, th, 2, tw, 2)
    y = reshape(xp, y, (o, n, 2 * th, 2 * tw))
    y = y[:, :, : g.out_spatial[0], : g.out_spatial[1]]
    return xp.permute_dims(y, (1, 0, 2, 3))
