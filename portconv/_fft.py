"""FFT strategy, standard calls only (the optional ``fft`` extension).

Takes the same padded input ``(N, C_in, *S)`` and weight ``(C_out, C_in // groups,
*K)`` as the direct strategies and returns the same correlation.  The
correlation is computed as a convolution with the flipped, dilated kernel on an
FFT grid of fast lengths ``>= S`` (no wrap-around reaches the kept outputs),
then strided.
"""

from __future__ import annotations

import math
from typing import Any

from ._compat import reshape, unchunk_axes
from ._plan import Plan

__all__ = ["run_fft", "dilate_kernel"]


def dilate_kernel(xp: Any, w: Any, dilation: tuple[int, ...]) -> Any:
    """Insert ``dilation - 1`` zeros between the taps of the trailing axes."""
    nsp = len(dilation)
    for i, d in enumerate(dilation):
        if d == 1:
            continue
        axis = w.ndim - nsp + i
        k = w.shape[axis]
        zeros = xp.zeros_like(w)
        # interleave w with d-1 zero copies along a new axis, then trim
        stacked = xp.stack([w] + [zeros] * (d - 1), axis=axis + 1)
        shape = w.shape[:axis] + (k * d,) + w.shape[axis + 1 :]
        w = reshape(xp, stacked, shape)
        sl = [slice(None)] * w.ndim
        sl[axis] = slice(0, (k - 1) * d + 1)
        w = w[tuple(sl)]
    return w


def run_fft(xp: Any, x: Any, w: Any, plan: Plan, complex_: bool) -> Any:
    """Execute the FFT strategy of ``plan`` on padded ``x`` and weight ``w``."""
    g = plan.geometry
    nsp = g.ndim
    axes = tuple(range(2, 2 + nsp))
    shape = plan.fft_shape
    assert shape is not None
    wd = dilate_kernel(xp, w, g.dilation)
    wd = xp.flip(wd, axis=axes)
    x, wd = unchunk_axes(x, axes), unchunk_axes(wd, axes)
    if complex_:
        fx = xp.fft.fftn(x, s=shape, axes=axes)
        fw = xp.fft.fftn(wd, s=shape, axes=axes)
    else:
        fx = xp.fft.rfftn(x, s=shape, axes=axes)
        fw = xp.fft.rfftn(wd, s=shape, axes=axes)
    n, groups, cg, cog = x.shape[0], g.groups, g.group_in, g.group_out
    fshape = tuple(fx.shape[2:])
    if cg == 1:
        fy = reshape(xp, fx, (n, groups, 1) + fshape) * reshape(xp, fw, (1, groups, cog) + fshape)
    else:
        q = math.prod(fshape)
        # contract channels with one batched matmul over frequencies
        fxq = xp.permute_dims(reshape(xp, fx, (n, groups, cg, q)), (3, 1, 0, 2))  # (Q, G, N, Cg)
        fwq = xp.permute_dims(reshape(xp, fw, (groups, cog, cg, q)), (3, 0, 2, 1))  # (Q, G, Cg, Cog)
        fy = xp.permute_dims(xp.matmul(fxq, fwq), (2, 1, 3, 0))  # (N, G, Cog, Q)
    fy = reshape(xp, fy, (n, g.out_channels) + fshape)
    if complex_:
        y = xp.fft.ifftn(fy, s=shape, axes=axes)
    else:
        y = xp.fft.irfftn(fy, s=shape, axes=axes)
    kd = tuple(d * (k - 1) for k, d in zip(g.kernel, g.dilation))
    keep = tuple(slice(a, a + (o - 1) * s + 1, s) for a, o, s in zip(kd, g.out_spatial, g.stride))
    return y[(slice(None), slice(None)) + keep]
