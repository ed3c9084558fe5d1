"""The one numerical core: plan a grouped N-d correlation, pad, run a strategy.

Every public function (SciPy-style and deep-learning style, forward and
gradients) reduces its problem to :func:`correlate_nd` on channels-first
arrays.
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any

from . import _compat, _heap
from ._compat import reshape
from ._direct import (
    after,
    grid_extra_rows,
    on_phase_grid,
    run_direct,
    stride_phases,
    toeplitz_on_lines,
    toeplitz_zero_pads_in_band,
    toeplitz_zeros_after,
    uses_grid,
)
from ._dtypes import float_eps
from ._fft import run_fft
from ._pad import pad_axes
from ._plan import (
    DtypeInfo,
    Geometry,
    Plan,
    default_workspace_bytes,
    phase_grid_padded,
    plan_correlation,
    row_tile_geometry,
    winograd_input,
)
from ._winograd import run_winograd

__all__ = ["correlate_nd", "make_plan", "resolve_budget", "warn_fft_nonfinite"]


def warn_fft_nonfinite(func: str, xp: Any, plan: Plan, method: str, **arrays: Any) -> None:
    """Warn when ``method='auto'`` chose an FFT or Winograd and an input holds NaN or Inf.

    The FFT spreads a non-finite value over the whole output and Winograd
    over its 2x2 output tile, where the direct method keeps it inside the
    windows that touch it.  Checked only where values are cheap to read
    (never under ``jax.jit``, never on Dask).
    """
    if method != "auto" or not plan.strategy.startswith(("fft", "winograd")):
        return
    fft = plan.strategy.startswith("fft")
    where = "the whole output" if fft else "2x2 output tiles"
    name_of = "the FFT" if fft else "the Winograd algorithm"
    for name, a in arrays.items():
        if not _compat.values_are_cheap(a) or xp.isdtype(a.dtype, "integral"):
            continue
        if bool(xp.any(~xp.isfinite(a))):
            warnings.warn(
                f"{func}: {name} contains NaN or Inf and method='auto' chose {name_of}, "
                f"which spreads them over {where}; pass method='direct' to "
                "keep them local",
                RuntimeWarning,
                stacklevel=3,
            )
            return


def resolve_budget(func: str, workspace_bytes: Any) -> int:
    """The workspace budget of one call: the keyword, else the environment."""
    if workspace_bytes is None:
        return default_workspace_bytes(func)
    if isinstance(workspace_bytes, bool) or not isinstance(workspace_bytes, int):
        raise TypeError(
            f"{func}: workspace_bytes must be an int number of bytes or None, "
            f"got {workspace_bytes!r} ({type(workspace_bytes).__name__})"
        )
    if workspace_bytes <= 0:
        raise ValueError(f"{func}: workspace_bytes={workspace_bytes} must be positive")
    return workspace_bytes


def make_plan(
    func: str,
    xp: Any,
    x: Any,
    g: Geometry,
    method: str,
    dtype: DtypeInfo,
    budget: int,
    only: str | None = None,
    zero_pads: bool = False,
) -> Plan:
    """Plan ``g`` for arrays like ``x`` (device kind, fft availability, JAX).

    ``only``: force one strategy (tests and the sweep), see ``plan_correlation``.
    ``zero_pads``: the caller pads with zeros (``correlate_nd``'s default).
    """
    # Only integer inputs read the epsilon (is their FFT exact?); asking the
    # namespace costs more than the rest of a small call's planning.
    extra = {"float_eps": float_eps(xp, x)} if dtype.kind == "int" else {}
    return plan_correlation(
        g,
        method,
        dtype,
        _compat.device_kind(x),
        _compat.has_fft(xp),
        _compat.is_jax_namespace(xp),
        budget,
        func,
        only=only,
        zero_pads=zero_pads,
        **extra,
    )


def correlate_nd(
    xp: Any,
    x: Any,
    w: Any,
    plan: Plan,
    *,
    pad_mode: str = "constant",
    fill: Any = 0,
    channels_last: bool = False,
    laid_out: bool = False,
) -> Any:
    """Run ``plan`` on unpadded ``x`` ``(N, C_in, *S)`` and ``w`` ``(C_out, C_in/G, *K)``.

    ``x`` and ``w`` must already have the compute dtype.  Integer inputs on
    the FFT strategy are transformed in the widest float and rounded back,
    which the planner only allows when the rounding is provably exact.
    With ``plan.batch_tile`` below the batch (or a ``plan.row_tile``), each
    tile is padded and computed on its own and the tiles' outputs joined.
    ``channels_last``: return ``(N, *O, C_out)``; the stride-1 grid forms
    compute it so (no copy), the others give a transposed view.
    ``laid_out``: ``w`` is ``_direct.transposed_weight``'s view for this
    plan's strategy, kept as it lies (else it is copied to C order, so the
    result does not depend on the caller's memory layout).
    """
    if channels_last and not (uses_grid(plan) and plan.inner is None and plan.swapped is None):
        y = correlate_nd(xp, x, w, plan, pad_mode=pad_mode, fill=fill)
        return xp.permute_dims(y, (0,) + tuple(range(2, y.ndim)) + (1,))
    if plan.swapped is not None:
        return _correlate_swapped(xp, x, w, plan, pad_mode, fill)
    g = plan.geometry
    _heap.keep_heap(xp, x, plan.workspace_bytes + plan.output_bytes)
    x, w = _compat.batch_chunks_only(x), _compat.batch_chunks_only(w)
    x = _compat.c_contiguous(xp, x)
    w = w if laid_out else _compat.c_contiguous(xp, w)
    if plan.inner is not None:
        return _correlate_dilation_phases(xp, x, w, plan, pad_mode, fill)
    tile = plan.batch_tile
    if 0 < tile < g.batch:
        outs = []
        for start in range(0, g.batch, tile):
            part = x[start : min(start + tile, g.batch), ...]
            if plan.in_order and outs:
                part = after(xp, part, outs[-1])
            tg = dataclasses.replace(g, batch=part.shape[0])
            tplan = dataclasses.replace(plan, geometry=tg, batch_tile=tg.batch)
            outs.append(_correlate_untiled(xp, part, w, tplan, pad_mode, fill, channels_last))
        return xp.concat(outs, axis=0)
    return _correlate_untiled(xp, x, w, plan, pad_mode, fill, channels_last)


def _correlate_swapped(xp: Any, x: Any, w: Any, plan: Plan, pad_mode: str, fill: Any) -> Any:
    # ``plan.swapped`` runs with spatial axis ``plan.swap_axis`` and the last
    # exchanged (see band_axis); its first step copies the transposed input
    # to C order, and the output is handed back as a transposed view.
    axes = list(range(x.ndim))
    axes[2 + plan.swap_axis], axes[-1] = axes[-1], axes[2 + plan.swap_axis]
    xs, ws = xp.permute_dims(x, tuple(axes)), xp.permute_dims(w, tuple(axes))
    y = correlate_nd(xp, xs, ws, plan.swapped, pad_mode=pad_mode, fill=fill)
    return xp.permute_dims(y, tuple(axes))


def _correlate_dilation_phases(
    xp: Any, x: Any, w: Any, plan: Plan, pad_mode: str, fill: Any
) -> Any:
    # One copy splits the padded input into its dilation phases, stacked as
    # samples; ``plan.inner`` correlates them undilated; one copy interleaves
    # the phases of the output (see dilation_split_geometry).
    g, inner = plan.geometry, plan.inner
    d, q, nsp = g.dilation, inner.geometry.in_spatial, g.ndim
    n, c, c_out = g.batch, g.in_channels, g.out_channels
    whole = tuple(qq * dd - s for qq, dd, s in zip(q, d, g.padded_spatial))
    xpad = pad_axes(xp, x, g.pads, pad_mode, fill, whole)
    phases = stride_phases(xp, xpad, d, q)  # (N, C, *d, *q), a view
    first = tuple(range(2, 2 + nsp)) + (0, 1) + tuple(range(2 + nsp, 2 + 2 * nsp))
    xs = reshape(xp, xp.permute_dims(phases, first), (inner.geometry.batch, c) + q)
    oq = inner.geometry.out_spatial
    ys = reshape(xp, correlate_nd(xp, xs, w, inner), d + (n, c_out) + oq)
    back = (nsp, nsp + 1) + tuple(v for i in range(nsp) for v in (nsp + 2 + i, i))
    y = reshape(xp, xp.permute_dims(ys, back), (n, c_out) + tuple(a * b for a, b in zip(oq, d)))
    return y[(slice(None), slice(None)) + tuple(slice(0, o) for o in g.out_spatial)]


def _correlate_row_tiles(
    xp: Any, x: Any, w: Any, plan: Plan, pad_mode: str, fill: Any, last: bool
) -> Any:
    # Pad the first spatial axis once; each tile of output rows then reads a
    # slice of it and pads its other axes itself, so every copy stays small.
    g, rows = plan.geometry, plan.row_tile
    x0 = pad_axes(xp, x, (g.pads[0],) + ((0, 0),) * (g.ndim - 1), pad_mode, fill)
    outs = []
    for first in range(0, g.out_spatial[0], rows):
        tg = row_tile_geometry(g, min(rows, g.out_spatial[0] - first))
        start = first * g.stride[0]
        part = x0[:, :, start : start + tg.in_spatial[0], ...]
        if plan.in_order and outs:
            part = after(xp, part, outs[-1])
        tplan = dataclasses.replace(plan, geometry=tg, row_tile=None)
        outs.append(_correlate_untiled(xp, part, w, tplan, pad_mode, fill, last))
    return xp.concat(outs, axis=1 if last else 2)


def _correlate_untiled(
    xp: Any, x: Any, w: Any, plan: Plan, pad_mode: str, fill: Any, last: bool = False
) -> Any:
    g = plan.geometry
    if plan.row_tile is not None:
        return _correlate_row_tiles(xp, x, w, plan, pad_mode, fill, last)
    pads = g.pads
    if uses_grid(plan):
        (lo, hi), rest = pads[0], pads[1:]
        pads = ((lo, hi + grid_extra_rows(g)), *rest)
    band_pads = (0, 0)
    if toeplitz_on_lines(plan) or plan.batch_gemm or plan.flat_chunk:
        # channel-major before padding: the padding's copy does the transpose
        x = xp.permute_dims(x, (1, 0) + tuple(range(2, x.ndim)))
        if toeplitz_zero_pads_in_band(plan, pad_mode, fill):
            band_pads, pads = pads[-1], (*pads[:-1], (0, 0))
    zeros_after = toeplitz_zeros_after(plan, band_pads)
    if on_phase_grid(plan):  # whole stride phases
        zeros_after = tuple(e - s for e, s in zip(phase_grid_padded(g), g.padded_spatial))
    if plan.strategy == "winograd":  # whole input tiles of stride 2 (of the stride phases)
        need = winograd_input(g)
        zeros_after = tuple(max(0, n - s) for n, s in zip(need, g.padded_spatial))
    if plan.strategy == "fft":
        # the FFT grid's zeros come with the padding's copy (NumPy's own
        # zero-extension inside rfft ran 2.5x slower than a padded input)
        if plan.fft_wrap:  # the zero padding is the grid's (see fft_grid)
            assert pad_mode == "constant" and fill == 0, (pad_mode, fill)
            pads = ((0, 0),) * g.ndim
        padded = tuple(n + lo + hi for n, (lo, hi) in zip(g.in_spatial, pads))
        zeros_after = tuple(f - n for f, n in zip(plan.fft_shape, padded))
    xpad = _compat.batch_chunks_only(pad_axes(xp, x, pads, pad_mode, fill, zeros_after))
    if plan.batch_gemm:
        # Without a padding copy the channel-major input is still a transposed
        # view, and NumPy's ``stack`` lays its result out like its inputs: the
        # stacked columns' reshape would then copy them again, at a slow
        # transposing copy's speed (8x64x29^2 -> 128 2x2: 0.53 ms of 3.4).
        xpad = _compat.c_contiguous(xp, xpad)
    if plan.strategy == "winograd":
        return run_winograd(xp, xpad, w, g)
    if not plan.strategy.startswith("fft"):
        return run_direct(xp, xpad, w, plan, band_pads, last)
    if xp.isdtype(x.dtype, "integral"):
        wide = _compat.widest_float_dtype(xp, x)
        y = run_fft(xp, xp.astype(xpad, wide), xp.astype(w, wide), plan, complex_=False)
        return xp.astype(xp.round(y), x.dtype)
    return run_fft(xp, xpad, w, plan, complex_=xp.isdtype(x.dtype, "complex floating"))
