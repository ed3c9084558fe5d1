"""Padding with standard calls only (the standard has no ``pad``).

Every mode is an index map computed in Python: each padded position names the
input position it copies.  The map is cut into runs of consecutive indices and
each run becomes one slice (reversed with ``flip`` when it runs backwards), so
padding costs one ``concat`` per axis and works for pads of any size.  Large
NumPy arrays padded with a constant on two or more axes are the exception:
NumPy's own ``pad`` copies them once (``_compat.one_copy_pad``).
"""

from __future__ import annotations

from typing import Any

from ._compat import device_of, one_copy_pad

__all__ = ["pad_axes", "source_index"]

#: Modes and their meaning, for any pad width.
#: ``reflect``: mirror without repeating the edge (PyTorch/NumPy "reflect").
#: ``symmetric``: mirror repeating the edge (NumPy "symmetric", SciPy "symm").
#: ``replicate``: repeat the edge (NumPy "edge").  ``circular``: wrap around.
INDEX_MODES = ("reflect", "symmetric", "replicate", "circular")


def source_index(i: int, n: int, mode: str) -> int:
    """Input index that padded position ``i`` (``0 <= i < n`` is the input) copies."""
    if mode == "circular":
        return i % n
    if mode == "replicate":
        return min(max(i, 0), n - 1)
    if mode == "symmetric":
        period = 2 * n
        j = i % period
        return j if j < n else period - 1 - j
    if mode == "reflect":
        if n == 1:
            return 0
        period = 2 * (n - 1)
        j = i % period
        return j if j < n else period - j
    raise AssertionError(mode)


def _runs(indices: list[int]) -> list[tuple[int, int, int]]:
    """Split ``indices`` into runs ``(first, length, step)`` with step +1 or -1."""
    runs: list[tuple[int, int, int]] = []
    start = 0
    while start < len(indices):
        end = start + 1
        step = 0
        if end < len(indices) and abs(indices[end] - indices[start]) == 1:
            step = indices[end] - indices[start]
            while end < len(indices) and indices[end] - indices[end - 1] == step:
                end += 1
        runs.append((indices[start], end - start, step or 1))
        start = end
    return runs


def _take_runs(xp: Any, x: Any, axis: int, indices: list[int]) -> list[Any]:
    pieces = []
    for first, length, step in _runs(indices):
        lo = first if step == 1 else first - length + 1
        sl = [slice(None)] * x.ndim
        sl[axis] = slice(lo, lo + length)
        piece = x[tuple(sl)]
        if step == -1 and length > 1:
            piece = xp.flip(piece, axis=axis)
        pieces.append(piece)
    return pieces


def pad_axes(
    xp: Any,
    x: Any,
    pads: tuple[tuple[int, int], ...],
    mode: str,
    fill: Any = 0,
    zeros_after: tuple[int, ...] | None = None,
) -> Any:
    """Pad the last ``len(pads)`` axes of ``x`` by ``(low, high)`` each.

    ``mode`` is ``"constant"`` (with ``fill``, a Python scalar) or one of
    :data:`INDEX_MODES`.  Negative pads crop.  ``zeros_after`` appends that
    many zeros to each axis after its padding, in the same copy.
    """
    first_axis = x.ndim - len(pads)
    if mode == "constant" and all(lo >= 0 and hi >= 0 for lo, hi in pads):
        tails = zeros_after or (0,) * len(pads)
        if fill == 0 or not any(tails):
            widths = ((0, 0),) * first_axis + tuple(
                (lo, hi + tail) for (lo, hi), tail in zip(pads, tails)
            )
            padded = one_copy_pad(xp, x, widths, fill)
            if padded is not None:
                return padded
    for offset, (lo, hi) in enumerate(pads):
        axis = first_axis + offset
        pieces = _axis_pieces(xp, x, axis, lo, hi, mode, fill)
        tail = zeros_after[offset] if zeros_after else 0
        if tail:
            shape = list(x.shape)
            shape[axis] = tail
            pieces.append(xp.zeros(tuple(shape), dtype=x.dtype, device=device_of(x)))
        x = pieces[0] if len(pieces) == 1 else xp.concat(pieces, axis=axis)
    return x


def _axis_pieces(xp: Any, x: Any, axis: int, lo: int, hi: int, mode: str, fill: Any) -> list[Any]:
    """The pieces whose concatenation along ``axis`` is ``x`` padded by ``(lo, hi)``."""
    n = x.shape[axis]
    if lo < 0 or hi < 0:  # crop first, then pad what remains positive
        start, stop = max(-lo, 0), n - max(-hi, 0)
        if stop <= start:  # every sample is cropped away: padding alone remains
            shape = list(x.shape)
            shape[axis] = n + lo + hi
            return [xp.full(tuple(shape), fill, dtype=x.dtype, device=device_of(x))]
        sl = [slice(None)] * x.ndim
        sl[axis] = slice(start, stop)
        x = x[tuple(sl)]
        n = x.shape[axis]
        lo, hi = max(lo, 0), max(hi, 0)
    if lo == 0 and hi == 0:
        return [x]
    if mode != "constant":
        indices = [source_index(i, n, mode) for i in range(-lo, n + hi)]
        return _take_runs(xp, x, axis, indices)
    # one fill for both sides (an array call costs microseconds on small inputs)
    shape = list(x.shape)
    shape[axis] = lo + hi
    both = xp.full(tuple(shape), fill, dtype=x.dtype, device=device_of(x))
    before = [slice(None)] * x.ndim
    after = list(before)
    before[axis], after[axis] = slice(0, lo), slice(lo, lo + hi)
    return [both[tuple(before)]] * (lo > 0) + [x] + [both[tuple(after)]] * (hi > 0)
