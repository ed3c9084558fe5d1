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

from ._compat import c_contiguous, device_of, reshape, unchunk_axes
from ._plan import Plan, dft_by_matmul

__all__ = ["run_fft", "dilate_kernel"]

# Every transform is orthonormal, with the kernel scaled by sqrt(n) first so
# that the product's scale is the plain circular convolution's.  NumPy 2.x ran
# its unscaled float32/complex64 transforms (norm="backward" forward, "forward"
# inverse) 2-3x slower than scaled ones: rfft2 of 1080^2 float32 took 35 ms
# unscaled and 14 ms orthonormal; other libraries scale for free.
_ORTHO = "ortho"


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


def _dft_matrix(xp: Any, n: int, k: int, like: Any) -> Any:
    """``F[m, j] = exp(-2 pi i m j / n)``, shape ``(n, k)``, dtype of ``like``."""
    dev = device_of(like)
    real = xp.real(like).dtype
    m = xp.reshape(xp.arange(n, device=dev), (n, 1))
    j = xp.reshape(xp.arange(k, device=dev), (1, k))
    # reduce m*j modulo n in integers, so every angle lies in [0, 2 pi)
    angle = xp.astype((m * j) % n, real) * (2 * math.pi / n)
    return xp.astype(xp.cos(angle), like.dtype) - 1j * xp.astype(xp.sin(angle), like.dtype)


def _kernel_spectrum(xp: Any, w: Any, shape: tuple[int, ...]) -> Any:
    """``rfftn(w, s=shape)`` over the trailing axes, short axes as DFT matmuls."""
    nsp = len(shape)
    by_fft = [shape[-1]] + [
        n for n, k in zip(shape[:-1], w.shape[-nsp:-1]) if not dft_by_matmul(k, n)
    ]
    # orthonormal transforms of the pre-scaled kernel: see _ORTHO
    w = w * math.sqrt(math.prod(by_fft))
    spec = xp.fft.rfft(unchunk_axes(w, (w.ndim - 1,)), n=shape[-1], axis=-1, norm=_ORTHO)
    for i in range(nsp - 1):
        axis = w.ndim - nsp + i
        k, n = spec.shape[axis], shape[i]
        if not dft_by_matmul(k, n):
            spec = xp.fft.fft(unchunk_axes(spec, (axis,)), n=n, axis=axis, norm=_ORTHO)
            continue
        last = tuple(a for a in range(spec.ndim) if a != axis) + (axis,)
        moved = c_contiguous(xp, xp.permute_dims(spec, last))  # (..., k)
        out = xp.matmul(moved, xp.matrix_transpose(_dft_matrix(xp, n, k, spec)))
        back = tuple(range(axis)) + (spec.ndim - 1,) + tuple(range(axis, spec.ndim - 1))
        spec = xp.permute_dims(out, back)
    return spec


def _kernel_spectrum_by_frequency(
    xp: Any, w: Any, shape: tuple[int, ...], groups: int, like: Any, order: tuple[int, ...]
) -> Any:
    """Plain DFT of ``w`` ``(O, C/G, *K)`` on ``shape``, frequency-major: ``(Q, G, C/G, O/G)``.

    ``order``: the spatial axes in the order the input's spectrum lays them
    out (the last spatial axis halved, as ``rfftn`` does); ``Q`` runs over
    them in that order.  Every axis is a DFT matmul over the taps held
    channels-last, so the spectrum comes out in the order the per-frequency
    channel contraction reads, with no transposing copy: the copy of a 64x64
    kernel's 16x30 spectrum into that order took 8.6 ms (NumPy), longer than
    the contraction itself.  ``like``: an array of the spectrum's dtype.
    """
    c_out, cg = w.shape[0], w.shape[1]
    kernel = tuple(w.shape[2:])
    nsp, cog, chans = len(kernel), c_out // groups, c_out * cg
    perm = tuple(3 + a for a in order) + (0, 2, 1)
    taps = xp.permute_dims(reshape(xp, w, (groups, cog, cg) + kernel), perm)
    spec = xp.astype(c_contiguous(xp, taps), like.dtype)  # (*K in order, G, Cg, Cog)
    done = 1  # spectrum positions made so far
    for i, a in enumerate(order):
        n, k = shape[a], kernel[a]
        kept = n // 2 + 1 if a == nsp - 1 else n
        rest = math.prod(kernel[b] for b in order[i + 1 :]) * chans
        dft = _dft_matrix(xp, n, k, like)[:kept, :]
        spec = xp.matmul(dft, reshape(xp, spec, (done, k, rest)))  # (done, kept, rest)
        done *= kept
    spec = reshape(xp, spec, (done, chans))
    return reshape(xp, spec, (done, groups, cg, cog))


def _rfft2_rotated(xp: Any, a: Any, shape: tuple[int, int], short_rows: bool = False) -> Any:
    """Orthonormal ``rfft2`` of the trailing axes of ``a``, returned transposed.

    ``(..., r, c)`` real becomes ``(..., shape[1] // 2 + 1, shape[0])``: each
    transform runs along the contiguous last axis, with one transposing copy
    between them.  ``short_rows``: the padded rows of a short kernel as one
    DFT matmul instead of an FFT.
    """
    f = xp.fft.rfft(unchunk_axes(a, (a.ndim - 1,)), n=shape[1], axis=-1, norm=_ORTHO)
    f = c_contiguous(xp, xp.matrix_transpose(f))  # (..., h, r)
    if short_rows:
        f = f * (1 / math.sqrt(shape[0]))  # the orthonormal scale, on the small side
        return xp.matmul(f, xp.matrix_transpose(_dft_matrix(xp, shape[0], f.shape[-1], f)))
    return xp.fft.fft(f, n=shape[0], axis=-1, norm=_ORTHO)


def _irfft2_rotated(xp: Any, f: Any, shape: tuple[int, int]) -> Any:
    """Inverse of :func:`_rfft2_rotated`: ``(..., h, shape[0])`` to ``(..., *shape)``."""
    g = xp.fft.ifft(f, n=shape[0], axis=-1, norm=_ORTHO)
    g = c_contiguous(xp, xp.matrix_transpose(g))  # (..., shape[0], h)
    return xp.fft.irfft(g, n=shape[1], axis=-1, norm=_ORTHO)


def _spectral(
    xp: Any,
    x: Any,
    wflip: Any,
    shape,
    groups: int,
    complex_: bool,
    contiguous: bool = False,
) -> Any:
    """Circular convolution of ``x`` (N, C, *S) with ``wflip`` (O, C/G, *K) on ``shape``.

    ``contiguous`` (the plan's ``fft_contiguous``): avoid transforms along
    strided axes: short kernel axes become DFT matmuls, and two real axes
    are transformed along contiguous axes only, the spectra held transposed
    (see :func:`_rfft2_rotated`).
    """
    nsp = len(shape)
    axes = tuple(range(2, 2 + nsp))
    x, wflip = unchunk_axes(x, axes), unchunk_axes(wflip, axes)
    root_n = math.sqrt(math.prod(shape))
    n, c_out, cg = x.shape[0], wflip.shape[0], wflip.shape[1]
    cog = c_out // groups
    rotated = contiguous and nsp == 2 and not complex_
    # a short kernel's spectrum made frequency-major for the contraction
    by_frequency = (
        contiguous
        and not complex_
        and cg > 1
        and all(dft_by_matmul(k, m) for k, m in zip(wflip.shape[2:], shape))
    )
    if rotated:
        fx = _rfft2_rotated(xp, x, shape)
        if by_frequency:
            fw = _kernel_spectrum_by_frequency(xp, wflip, shape, groups, fx, (1, 0))
        else:
            short = dft_by_matmul(wflip.shape[2], shape[0])
            fw = _rfft2_rotated(xp, wflip * root_n, shape, short_rows=short)
    elif complex_:
        fx = xp.fft.fftn(x, s=shape, axes=axes, norm=_ORTHO)
        fw = xp.fft.fftn(wflip * root_n, s=shape, axes=axes, norm=_ORTHO)
    else:
        fx = xp.fft.rfftn(x, s=shape, axes=axes, norm=_ORTHO)
        if by_frequency:
            fw = _kernel_spectrum_by_frequency(xp, wflip, shape, groups, fx, tuple(range(nsp)))
        elif contiguous:
            fw = _kernel_spectrum(xp, wflip, shape)
        else:
            fw = xp.fft.rfftn(wflip * root_n, s=shape, axes=axes, norm=_ORTHO)
    fshape = tuple(fx.shape[2:])
    if cg == 1:
        fy = reshape(xp, fx, (n, groups, 1) + fshape) * reshape(xp, fw, (1, groups, cog) + fshape)
    else:
        q = math.prod(fshape)
        # contract channels with one batched matmul over frequencies, its
        # operands copied frequency-major: NumPy's matmul leaves BLAS for
        # strided matrices (8x64x28^2 -> 64 5x5: 11.6 against 2.6 ms)
        fxq = xp.permute_dims(reshape(xp, fx, (n, groups, cg, q)), (3, 1, 0, 2))
        fxq = c_contiguous(xp, fxq)
        if by_frequency:
            fwq = fw
        else:
            fwq = xp.permute_dims(reshape(xp, fw, (groups, cog, cg, q)), (3, 0, 2, 1))
            fwq = c_contiguous(xp, fwq)
        fy = xp.permute_dims(xp.matmul(fxq, fwq), (2, 1, 3, 0))  # (N, G, Cog, Q)
    fy = reshape(xp, fy, (n, c_out) + fshape)
    del fx, fw  # eager libraries free both spectra before the inverse transform
    if rotated:
        return _irfft2_rotated(xp, fy, shape)
    if complex_:
        return xp.fft.ifftn(fy, s=shape, axes=axes, norm=_ORTHO)
    return xp.fft.irfftn(fy, s=shape, axes=axes, norm=_ORTHO)


def _flipped_kernel(xp: Any, w: Any, plan: Plan) -> Any:
    g = plan.geometry
    wd = dilate_kernel(xp, w, g.dilation)
    return xp.flip(wd, axis=tuple(range(2, 2 + g.ndim)))


def run_fft(xp: Any, x: Any, w: Any, plan: Plan, complex_: bool) -> Any:
    """Execute the FFT strategy of ``plan`` on padded ``x`` and weight ``w``."""
    if plan.strategy == "fft_blocks":
        return _run_blocks(xp, x, w, plan, complex_)
    g = plan.geometry
    wflip = _flipped_kernel(xp, w, plan)
    y = _spectral(xp, x, wflip, plan.fft_shape, g.groups, complex_, plan.fft_contiguous)
    kd = tuple(d * (k - 1) for k, d in zip(g.kernel, g.dilation))
    if plan.fft_wrap:  # the input sits unpadded at the grid's start (see fft_grid)
        kd = tuple(a - lo for a, (lo, _) in zip(kd, g.pads))
    keep = tuple(slice(a, a + (o - 1) * s + 1, s) for a, o, s in zip(kd, g.out_spatial, g.stride))
    return y[(slice(None), slice(None)) + keep]


def _run_blocks(xp: Any, x: Any, w: Any, plan: Plan, complex_: bool) -> Any:
    """Overlap-save along the one spatial axis: blocks of ``plan.block`` outputs.

    Each block reads ``block + span - 1`` inputs; the blocks become extra batch
    entries of one FFT of length ``plan.fft_shape[0]``, so memory stays near
    the input size and the transform length near a few kernel spans.
    """
    g = plan.geometry
    (length,) = plan.fft_shape
    block = plan.block
    span = g.spans[0]
    n, c = x.shape[0], x.shape[1]
    full_out = x.shape[2] - span + 1  # stride-1 outputs
    nb = -(-full_out // block)
    total = (nb + 1) * block
    x = unchunk_axes(x, (2,))
    x = (
        x[..., :total]
        if x.shape[2] >= total
        else xp.concat(
            [x, xp.zeros((n, c, total - x.shape[2]), dtype=x.dtype, device=device_of(x))], axis=2
        )
    )
    main = reshape(xp, x[..., : nb * block], (n, c, nb, block))
    tail = reshape(xp, x[..., block : (nb + 1) * block], (n, c, nb, block))[..., : span - 1]
    frames = xp.concat([main, tail], axis=3) if span > 1 else main  # (N, C, nb, block+span-1)
    frames = reshape(xp, xp.permute_dims(frames, (0, 2, 1, 3)), (n * nb, c, block + span - 1))
    y = _spectral(xp, frames, _flipped_kernel(xp, w, plan), (length,), g.groups, complex_)
    y = y[..., span - 1 : span - 1 + block]  # (N*nb, O, block)
    y = xp.permute_dims(reshape(xp, y, (n, nb, g.out_channels, block)), (0, 2, 1, 3))
    y = reshape(xp, y, (n, g.out_channels, nb * block))
    (o,), (s,) = g.out_spatial, g.stride
    return y[..., : (o - 1) * s + 1 : s]
