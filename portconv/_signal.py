"""SciPy-style public functions: ``correlate``, ``convolve``, their 2-d
variants with boundaries, and ``choose_method``."""

from __future__ import annotations

import numbers
from typing import Any

from ._args import check_choice
from ._compat import namespace_of, reshape
from ._core import correlate_nd, make_plan, resolve_budget, warn_fft_nonfinite
from ._dtypes import check_numeric, compute_dtype, dtype_info, dtype_kind
from ._plan import Geometry, Plan

__all__ = ["correlate", "convolve", "correlate2d", "convolve2d", "choose_method"]

_MODES = ("full", "same", "valid")
_METHODS = ("auto", "direct", "fft")
# SciPy's boundary names and their aliases -> the padding mode that realises them
_BOUNDARIES = {
    "fill": "constant",
    "pad": "constant",
    "wrap": "circular",
    "circular": "circular",
    "symm": "symmetric",
    "symmetric": "symmetric",
}


def _mode_pads(
    func: str, mode: str, s1: tuple[int, ...], s2: tuple[int, ...], same_rule: str
) -> tuple[tuple[tuple[int, int], ...], bool]:
    """Pads of ``in1`` that turn ``mode`` into a plain valid correlation.

    Returns the pads and whether SciPy's ``valid`` swap rule applied.
    """
    if mode == "full":
        return tuple((k - 1, k - 1) for k in s2), False
    if mode == "same":
        # Offset of the centred window inside the full output.  N-d
        # correlate/convolve and convolve2d round it down, correlate2d up:
        # they differ for even kernels, as SciPy's functions do.
        pads = []
        for k in s2:
            start = k // 2 if same_rule == "2d" else (k - 1) // 2
            pads.append((k - 1 - start, start))
        return tuple(pads), False
    if all(a >= b for a, b in zip(s1, s2)):
        return tuple((0, 0) for _ in s1), False
    if all(b >= a for a, b in zip(s1, s2)):
        # SciPy swaps the inputs; the result is the part of the full output
        # where in1 lies wholly inside in2.
        return tuple((b - a, b - a) for a, b in zip(s1, s2)), True
    raise ValueError(
        f"{func}: mode='valid' needs in1 at least as large as in2 in every "
        f"dimension, or in2 at least as large as in1 in every dimension; got "
        f"in1.shape={s1} and in2.shape={s2}"
    )


def _prepare(
    func: str,
    in1: Any,
    in2: Any,
    mode: str,
    method: str,
    same_rule: str,
    workspace_bytes: Any,
    zero_pads: bool = True,
) -> tuple[Any, Any, Any, Plan | None, bool]:
    """Validate and plan; returns ``(xp, a, b, plan, swapped)``.

    ``plan`` is ``None`` for 0-d inputs, whose result is a plain product.
    ``zero_pads``: the boundary is zeros (see ``plan_correlation``).
    """
    xp = namespace_of(func, in1=in1, in2=in2)
    kind1 = check_numeric(func, "in1", xp, in1)
    kind2 = check_numeric(func, "in2", xp, in2)
    check_choice(func, "mode", mode, _MODES)
    check_choice(func, "method", method, _METHODS)
    budget = resolve_budget(func, workspace_bytes)
    if in1.ndim != in2.ndim:
        raise ValueError(
            f"{func}: in1 and in2 must have the same number of dimensions, got "
            f"in1.shape={tuple(in1.shape)} and in2.shape={tuple(in2.shape)}"
        )
    shape1, shape2 = tuple(in1.shape), tuple(in2.shape)
    if None in shape1 or None in shape2:
        raise ValueError(f"{func}: shapes must be known, got {shape1} and {shape2}")
    dt = compute_dtype(xp, in1, in2, kind1, kind2)
    a = in1 if in1.dtype == dt else xp.astype(in1, dt)
    b = in2 if in2.dtype == dt else xp.astype(in2, dt)
    if in1.ndim == 0:
        return xp, a, b, None, False
    for name, shape in (("in1", shape1), ("in2", shape2)):
        if 0 in shape:
            raise ValueError(
                f"{func}: {name} has zero size (shape {shape}); an empty input "
                f"has no defined correlation (SciPy returns a 1-d empty array "
                f"here, losing the number of dimensions)"
            )
    pads, swapped = _mode_pads(func, mode, shape1, shape2, same_rule)
    nd = len(shape1)
    g = Geometry(1, 1, 1, 1, shape1, shape2, (1,) * nd, (1,) * nd, pads)
    info = dtype_info(xp, dt, (in1.dtype, in2.dtype))
    plan = make_plan(func, xp, a, g, method, info, budget, zero_pads=zero_pads)
    return xp, a, b, plan, swapped


def _run(xp: Any, a: Any, h: Any, plan: Plan, pad_mode: str, fill: Any) -> Any:
    x4 = reshape(xp, a, (1, 1) + tuple(a.shape))
    w4 = reshape(xp, h, (1, 1) + tuple(h.shape))
    y = correlate_nd(xp, x4, w4, plan, pad_mode=pad_mode, fill=fill)
    return reshape(xp, y, plan.geometry.out_spatial)


def _is_complex(xp: Any, a: Any) -> bool:
    return dtype_kind(xp, a.dtype) == "complex"


def correlate(in1, in2, mode="full", method="auto", *, workspace_bytes=None):
    """Cross-correlate two N-dimensional arrays (``scipy.signal.correlate``).

    ``z[k] = sum_l in1[l] * conj(in2[l - k + K])`` over the overlap, with the
    output window chosen by ``mode``.

    Parameters
    ----------
    in1 : array
        First input, of any Array API library (numpy, cupy, jax, torch, dask,
        array_api_strict, ...).
    in2 : array
        Second input, same library and number of dimensions as ``in1``.
    mode : {'full', 'valid', 'same'}, optional
        ``full``: every overlap; ``valid``: only where one input lies wholly
        inside the other (SciPy's swap rule when ``in2`` is larger in every
        dimension); ``same``: the size of ``in1``, centred on the full output
        with the window start rounded down (SciPy's N-d rule).
    method : {'auto', 'direct', 'fft'}, optional
        ``auto`` picks with a cost model on shapes, dtypes and device kind
        only (see :func:`choose_method`); it never looks at values.
    workspace_bytes : int, optional
        Budget for the extra memory of this call; default
        ``$PORTCONV_WORKSPACE_BYTES`` or 4 GiB.

    Returns
    -------
    array
        Same library and device as the inputs.  Dtype ``result_type(in1,
        in2)`` for floating inputs; the default integer dtype for two integer
        inputs.

    Raises
    ------
    TypeError
        Non-arrays, arrays of two libraries, bool dtypes, non-str options.
    ValueError
        Unequal ``ndim``, zero-size inputs, unknown ``mode``/``method``,
        ``valid`` with neither input fitting inside the other, ``method='fft'``
        without an fft extension or for integers it cannot round exactly.
    MemoryError
        When no strategy fits ``workspace_bytes``.

    See Also
    --------
    scipy.signal.correlate : the semantics followed.
    convolve, correlate2d, choose_method

    Notes
    -----
    Follows ``scipy.signal.correlate``, with one deliberate divergence:
    integer inputs give exact results in the default integer dtype (SciPy
    wraps around in the input dtype, e.g. ``int8`` gives ``100*100*3 -> 48``).
    Zero-size inputs raise ``ValueError`` where SciPy returns a 1-d empty
    array.

    Cost: ``direct`` does ``prod(in2.shape)`` multiply-adds per output (as
    banded or stacked ``matmul`` products, or one broadcast pass over the
    output per tap), memory about 3x the output (a ``valid`` correlation of
    near-equal arrays: one window of ``in1`` per output, stacked).  The band
    runs along the kernel's longest axis: a column filter ``(k, 1)`` first
    copies ``in1`` transposed and returns a transposed view.  ``fft``
    does three transforms of fast lengths ``>= in1.shape + in2.shape - 1``,
    memory about 6x that grid.  The direct method keeps a NaN/Inf local to
    the windows that touch it; the FFT spreads it over the whole output.  Runs under
    ``jax.jit`` (shapes are static; nothing reads values).

    Examples
    --------
    >>> import array_api_strict as xp
    >>> import portconv
    >>> x = xp.asarray([[1., 2., 3.], [4., 5., 6.], [7., 8., 9.]])
    >>> k = xp.asarray([[1., 0., -1.]] * 3)
    >>> portconv.correlate(x, k, mode="valid")
    Array([[-6.]], dtype=array_api_strict.float64)
    """
    func = "correlate"
    xp, a, b, plan, _swapped = _prepare(func, in1, in2, mode, method, "nd", workspace_bytes)
    h = xp.conj(b) if _is_complex(xp, b) else b
    if plan is None:
        return a * h
    warn_fft_nonfinite(func, xp, plan, method, in1=a, in2=b)
    return _run(xp, a, h, plan, "constant", 0)


def convolve(in1, in2, mode="full", method="auto", *, workspace_bytes=None):
    """Convolve two N-dimensional arrays (``scipy.signal.convolve``).

    ``z[k] = sum_l in1[l] * in2[k - l]``: the correlation with ``in2``
    flipped along every axis and not conjugated.

    Parameters
    ----------
    in1, in2 : array
        Inputs of one Array API library, equal ``ndim``.
    mode : {'full', 'valid', 'same'}, optional
        As in :func:`correlate` (``same`` rounds the window start down).
    method : {'auto', 'direct', 'fft'}, optional
        As in :func:`correlate`.
    workspace_bytes : int, optional
        As in :func:`correlate`.

    Returns
    -------
    array
        As in :func:`correlate`.

    Raises
    ------
    TypeError, ValueError, MemoryError
        As in :func:`correlate`.

    See Also
    --------
    scipy.signal.convolve : the semantics followed.
    correlate

    Notes
    -----
    Same core, cost and integer rule as :func:`correlate`; ``convolve`` is
    commutative, so ``valid`` with the larger ``in2`` needs no special rule.

    Examples
    --------
    >>> import array_api_strict as xp
    >>> import portconv
    >>> portconv.convolve(xp.asarray([1, 2, 3]), xp.asarray([0, 1, 10]))
    Array([ 0,  1, 12, 23, 30], dtype=array_api_strict.int64)
    """
    func = "convolve"
    xp, a, b, plan, _ = _prepare(func, in1, in2, mode, method, "nd", workspace_bytes)
    if plan is None:
        return a * b
    warn_fft_nonfinite(func, xp, plan, method, in1=a, in2=b)
    return _run(xp, a, xp.flip(b), plan, "constant", 0)


def _check_2d(func: str, in1: Any, in2: Any) -> None:
    for name, arr in (("in1", in1), ("in2", in2)):
        ndim = getattr(arr, "ndim", None)
        if ndim is not None and ndim != 2:
            raise ValueError(f"{func}: {name} must be 2-d, got shape {tuple(arr.shape)}")


def _zero_boundary(boundary: Any, fillvalue: Any) -> bool:
    """Whether ``boundary``/``fillvalue`` pad with zeros (False for anything invalid)."""
    return (
        isinstance(boundary, str)
        and _BOUNDARIES.get(boundary) == "constant"
        and isinstance(fillvalue, numbers.Number)
        and not isinstance(fillvalue, bool)
        and fillvalue == 0
    )


def _boundary(func: str, boundary: Any, fillvalue: Any, a: Any, xp: Any) -> tuple[str, Any]:
    check_choice(func, "boundary", boundary, _BOUNDARIES)
    if isinstance(fillvalue, bool) or not isinstance(fillvalue, numbers.Number):
        raise TypeError(
            f"{func}: fillvalue must be a Python number, got {fillvalue!r} "
            f"({type(fillvalue).__name__})"
        )
    if xp.isdtype(a.dtype, "integral"):
        if not isinstance(fillvalue, numbers.Integral):
            if isinstance(fillvalue, numbers.Real) and float(fillvalue).is_integer():
                fillvalue = int(fillvalue)
            else:
                raise TypeError(
                    f"{func}: fillvalue={fillvalue!r} cannot be exact in the integer "
                    f"result dtype {a.dtype}"
                )
        fillvalue = int(fillvalue)
    elif isinstance(fillvalue, numbers.Complex) and not isinstance(fillvalue, numbers.Real):
        if not xp.isdtype(a.dtype, "complex floating"):
            raise TypeError(
                f"{func}: complex fillvalue={fillvalue!r} needs complex inputs, got {a.dtype}"
            )
        fillvalue = complex(fillvalue)
    else:
        fillvalue = float(fillvalue)
    return _BOUNDARIES[boundary], fillvalue


def correlate2d(in1, in2, mode="full", boundary="fill", fillvalue=0, *, workspace_bytes=None):
    """Cross-correlate two 2-d arrays with a boundary rule (``scipy.signal.correlate2d``).

    Parameters
    ----------
    in1, in2 : array
        2-d inputs of one Array API library.
    mode : {'full', 'valid', 'same'}, optional
        As in :func:`correlate`, except that ``same`` rounds the window start
        *up* (SciPy's 2-d rule): for an even kernel the result is shifted by
        one against :func:`correlate`.
    boundary : {'fill', 'wrap', 'symm'}, optional
        How ``in1`` extends beyond its edges: ``fillvalue``; periodically
        (alias ``circular``); mirrored with the edge repeated (alias
        ``symmetric``).  ``pad`` is accepted for ``fill`` as in SciPy.
    fillvalue : number, optional
        The value outside ``in1`` for ``boundary='fill'``.
    workspace_bytes : int, optional
        As in :func:`correlate`.

    Returns
    -------
    array
        As in :func:`correlate`.

    Raises
    ------
    TypeError
        As in :func:`correlate`; also a non-numeric ``fillvalue``, a
        non-integral one for integer inputs, a complex one for real inputs.
    ValueError
        As in :func:`correlate`; also inputs that are not 2-d, an unknown
        ``boundary``.
    MemoryError
        As in :func:`correlate`.

    See Also
    --------
    scipy.signal.correlate2d : the semantics followed.
    correlate, convolve2d

    Notes
    -----
    Follows SciPy, including its ``valid`` swap for complex inputs, which
    returns the conjugate of what :func:`correlate` returns there.  The
    method is chosen by the same cost model as ``method='auto'``; boundaries
    are materialised as padding (any kernel size; the index map repeats).

    Examples
    --------
    >>> import array_api_strict as xp
    >>> import portconv
    >>> x = xp.asarray([[1., 2.], [3., 4.]])
    >>> portconv.correlate2d(x, xp.asarray([[1., 1.]]), mode="same", boundary="wrap")
    Array([[3., 3.],
           [7., 7.]], dtype=array_api_strict.float64)
    """
    func = "correlate2d"
    _check_2d(func, in1, in2)
    zeros = _zero_boundary(boundary, fillvalue)
    xp, a, b, plan, swapped = _prepare(func, in1, in2, mode, "auto", "2d", workspace_bytes, zeros)
    pad_mode, fill = _boundary(func, boundary, fillvalue, a, xp)
    h = xp.conj(b) if _is_complex(xp, b) else b
    assert plan is not None
    if swapped:  # SciPy swaps the inputs: in2 is the signal, no boundary applies
        pad_mode, fill = "constant", 0
    y = _run(xp, a, h, plan, pad_mode, fill)
    if swapped and _is_complex(xp, y):
        y = xp.conj(y)  # SciPy's swapped correlate2d skips the conjugation
    return y


def convolve2d(in1, in2, mode="full", boundary="fill", fillvalue=0, *, workspace_bytes=None):
    """Convolve two 2-d arrays with a boundary rule (``scipy.signal.convolve2d``).

    Parameters
    ----------
    in1, in2 : array
        2-d inputs of one Array API library.
    mode : {'full', 'valid', 'same'}, optional
        As in :func:`convolve` (``same`` rounds the window start down).
    boundary : {'fill', 'wrap', 'symm'}, optional
        As in :func:`correlate2d`.
    fillvalue : number, optional
        As in :func:`correlate2d`.
    workspace_bytes : int, optional
        As in :func:`correlate`.

    Returns
    -------
    array
        As in :func:`correlate`.

    Raises
    ------
    TypeError, ValueError, MemoryError
        As in :func:`correlate2d`.

    See Also
    --------
    scipy.signal.convolve2d : the semantics followed.
    convolve, correlate2d

    Notes
    -----
    Same core and cost as :func:`convolve`.

    Examples
    --------
    >>> import array_api_strict as xp
    >>> import portconv
    >>> x = xp.asarray([[1, 2], [3, 4]])
    >>> portconv.convolve2d(x, xp.asarray([[1, -1]]))
    Array([[ 1,  1, -2],
           [ 3,  1, -4]], dtype=array_api_strict.int64)
    """
    func = "convolve2d"
    _check_2d(func, in1, in2)
    xp, a, b, plan, swapped = _prepare(func, in1, in2, mode, "auto", "nd", workspace_bytes)
    pad_mode, fill = _boundary(func, boundary, fillvalue, a, xp)
    assert plan is not None
    if swapped:
        pad_mode, fill = "constant", 0
    return _run(xp, a, xp.flip(b), plan, pad_mode, fill)


def choose_method(in1, in2, mode="full"):
    """The method ``correlate``/``convolve`` with ``method='auto'`` would use.

    Parameters
    ----------
    in1, in2 : array
        As in :func:`correlate`; only their shapes, dtypes, library and
        device kind are read.
    mode : {'full', 'valid', 'same'}, optional

    Returns
    -------
    str
        ``'direct'`` or ``'fft'``.

    Raises
    ------
    TypeError, ValueError
        As in :func:`correlate`.

    See Also
    --------
    scipy.signal.choose_conv_method : which times or reads values; this
        function never does, so it is safe under ``jax.jit``.

    Notes
    -----
    A cost model with constants per device kind (CPU fitted on this
    project's benchmark machine), pure Python and cached.

    Examples
    --------
    >>> import array_api_strict as xp
    >>> import portconv
    >>> portconv.choose_method(xp.ones((64, 64)), xp.ones((3, 3)))
    'direct'
    >>> portconv.choose_method(xp.ones((512, 512)), xp.ones((127, 127)))
    'fft'
    """
    _, _, _, plan, _ = _prepare("choose_method", in1, in2, mode, "auto", "nd", None)
    if plan is None:
        return "direct"
    return "fft" if plan.strategy.startswith("fft") else "direct"
