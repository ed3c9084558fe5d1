"""The only module that touches ``array_api_compat`` or knows about backends.

Everything else in portconv receives ``xp`` (a standard namespace) and calls
only functions of the Array API standard on it.  What lives here is the small
amount of knowledge the standard cannot express:

* which namespace a set of arrays belongs to (and a readable error when they
  belong to different libraries);
* whether an array lives on an accelerator, which the cost model needs and the
  standard's opaque ``device`` objects do not say;
* the namespace's default integer dtype and whether it has ``float64`` (JAX
  with x64 disabled silently produces float32).
"""

from __future__ import annotations

import functools
import sys
from typing import Any

import array_api_compat

__all__ = [
    "namespace_of",
    "device_kind",
    "default_int_dtype",
    "widest_float_dtype",
    "has_fft",
    "device_of",
    "is_jax_namespace",
    "numpy_backed",
    "blas_matrices",
    "real_vecdot",
    "one_copy_pad",
]


def _library(x: Any) -> str:
    module = type(x).__module__ or "builtins"
    return module.split(".")[0]


#: The arrays' types -> their namespace, which ``array_namespace`` finds from
#: types alone; asking it costs some 4 us of a small call's Python.
_NAMESPACES: dict[tuple[type, ...], Any] = {}


def namespace_of(func: str, **arrays: Any) -> Any:
    """Return the standard namespace shared by ``arrays``.

    Raises ``TypeError`` naming the function and the offending parameter for
    non-arrays, and naming both libraries for arrays of different libraries.
    """
    types = tuple(map(type, arrays.values()))
    xp = _NAMESPACES.get(types)
    if xp is None:
        xp = _NAMESPACES[types] = _namespace_checked(func, arrays)
    return xp


def _namespace_checked(func: str, arrays: dict[str, Any]) -> Any:
    for name, value in arrays.items():
        if not array_api_compat.is_array_api_obj(value):
            raise TypeError(
                f"{func}: {name} must be an array of an Array API library "
                f"(numpy, cupy, jax, torch, dask, array_api_strict, ...), "
                f"got {type(value).__module__}.{type(value).__qualname__}"
            )
    try:
        return array_api_compat.array_namespace(*arrays.values())
    except TypeError as exc:
        libs = ", ".join(f"{name} from {_library(v)!r}" for name, v in arrays.items())
        raise TypeError(f"{func}: all arrays must come from one array library, got {libs}") from exc


def device_kind(x: Any) -> str:
    """``"gpu"`` when ``x`` lives on an accelerator, else ``"cpu"``.

    Only the cost model uses this; a wrong answer costs speed, never
    correctness, so anything unknown counts as ``"cpu"``.
    """
    if array_api_compat.is_cupy_array(x):
        return "gpu"
    if array_api_compat.is_torch_array(x):
        return "cpu" if x.device.type == "cpu" else "gpu"
    if array_api_compat.is_jax_array(x):
        return _jax_device_kind(x)
    return "cpu"


def _jax_device_kind(x: Any) -> str:
    # Tracers inside ``jax.jit`` carry no committed device; the backend the
    # computation will be compiled for is then the default one.
    try:
        platforms = {d.platform for d in x.devices()}
    except Exception:  # a tracer: no concrete device
        jax = sys.modules["jax"]
        platforms = {jax.default_backend()}
    return "cpu" if platforms <= {"cpu"} else "gpu"


def _dtype_info(xp: Any, x: Any) -> tuple[Any, Any]:
    # Not cached: JAX answers differently once x64 is switched on, and
    # array_api_strict answers per device.
    info = xp.__array_namespace_info__()
    dev = device_of(x)
    try:
        default = info.default_dtypes(device=dev)
        floats = info.dtypes(kind="real floating", device=dev)
    except (TypeError, ValueError):  # namespaces that reject their own device
        default = info.default_dtypes()
        floats = info.dtypes(kind="real floating")
    return default["integral"], floats


def default_int_dtype(xp: Any, x: Any) -> Any:
    """The default integer dtype of ``x``'s namespace and device."""
    return _dtype_info(xp, x)[0]


def widest_float_dtype(xp: Any, x: Any) -> Any:
    """``float64`` when ``x``'s namespace and device really provide it."""
    floats = _dtype_info(xp, x)[1]
    return floats.get("float64", xp.float32)


def device_of(x: Any) -> Any:
    """The standard ``device`` of ``x`` (also for libraries without ``.device``)."""
    return array_api_compat.device(x)


def has_fft(xp: Any) -> bool:
    """Whether the optional ``fft`` extension of the standard is present."""
    return hasattr(xp, "fft") and hasattr(xp.fft, "rfftn")


def is_jax_namespace(xp: Any) -> bool:
    """JAX traces Python code once per shape: the planner bounds unrolling."""
    return array_api_compat.is_jax_namespace(xp)


def numpy_backed(xp: Any, x: Any) -> bool:
    """Whether ``x``'s memory comes from NumPy's allocator (NumPy, array-api-strict).

    ``_heap`` tunes glibc's thresholds through such an allocation; other
    libraries allocate elsewhere (devices, XLA, torch) or lazily (Dask).
    """
    return array_api_compat.is_numpy_array(x) or array_api_compat.is_array_api_strict_namespace(xp)


@functools.lru_cache(maxsize=64)
def _dask_type(cls: type) -> bool:
    # Per array type, not per array: the checks below run several times a
    # call, and array_api_compat's test costs a module lookup each time.
    return cls.__module__.split(".")[0] == "dask"


def _is_dask(x: Any) -> bool:
    return _dask_type(type(x)) and array_api_compat.is_dask_array(x)


def unchunk_axes(x: Any, axes: tuple[int, ...]) -> Any:
    """Make ``axes`` single-chunk for libraries whose FFT needs it (Dask).

    Dask computes an FFT only along an axis held in one chunk; other libraries
    have no chunks and get ``x`` back unchanged.
    """
    if _is_dask(x):
        return x.rechunk({a % x.ndim: -1 for a in axes})
    return x


def batch_chunks_only(x: Any) -> Any:
    """Keep chunks along axis 0 only (Dask); other libraries are unchanged.

    Dask's ``reshape`` cannot merge axes split into uneven chunks, and the
    kernels merge the spatial axes into one: each batch element's spatial
    block is gathered into one chunk, and the batch axis stays distributed.
    """
    if x.ndim > 1 and _is_dask(x):
        return x.rechunk({a: -1 for a in range(1, x.ndim)})
    return x


def reshape(xp: Any, x: Any, shape: tuple[int, ...]) -> Any:
    """``xp.reshape``, first gathering non-batch chunks for Dask (see above).

    A reshape to the array's own shape returns it untouched (no library call).
    """
    if tuple(x.shape) == shape:
        return x
    return xp.reshape(batch_chunks_only(x), shape)


def c_contiguous(xp: Any, x: Any) -> Any:
    """``x`` in C order, copied only when it is a strided or transposed view.

    NumPy's and PyTorch's ``matmul`` take another summation path for
    non-contiguous operands, so a view would differ from its contiguous copy
    in the last bit.  (``ndarray.copy`` writes C order by default.)
    """
    flags = getattr(x, "flags", None)
    if flags is not None and hasattr(flags, "c_contiguous"):  # numpy, cupy
        return x if flags.c_contiguous else x.copy()
    if array_api_compat.is_torch_array(x):
        return x if x.is_contiguous() else x.contiguous()
    return x


def _element_strides(x: Any) -> tuple[int, ...] | None:
    # numpy and cupy count bytes, torch elements; other libraries (JAX,
    # Dask, array-api-strict) expose none and lay out memory themselves
    strides = getattr(x, "strides", None)
    if isinstance(strides, tuple) and hasattr(x, "itemsize"):
        return tuple(s // x.itemsize for s in strides)
    if array_api_compat.is_torch_array(x):
        return tuple(x.stride())
    return None


def blas_matrices(xp: Any, x: Any) -> Any:
    """``x`` as it lies when each matrix of its last two axes is a BLAS operand, else C order.

    A BLAS operand has a unit stride along one of the two axes (a
    transposed one is read in place through BLAS's transpose flag);
    NumPy's ``matmul`` leaves BLAS for any other strides, 2-3x slower.
    Libraries without strides get ``x`` untouched, as from
    :func:`c_contiguous`.
    """
    strides = _element_strides(x)
    if strides is None or x.ndim < 2:
        return c_contiguous(xp, x)
    rows, cols = x.shape[-2:]
    row, col = strides[-2:]
    if rows > 1 and cols > 1 and ((col == 1 and row >= cols) or (row == 1 and col >= rows)):
        return x
    return c_contiguous(xp, x)


def real_vecdot(xp: Any, x1: Any, x2: Any) -> Any:
    """``xp.vecdot(x1, x2)`` of real arrays over the last axis, in the library's fastest form.

    array-api-compat's torch ``vecdot`` runs as a batched matrix product,
    some 20x slower than multiplying and summing (8x5x3000 float32: 513
    against 24 us); NumPy's is one fused dot, 8x faster than that (9
    against 70 us).
    """
    if array_api_compat.is_torch_array(x1):
        return xp.sum(x1 * x2, axis=-1)
    return xp.vecdot(x1, x2)


#: ``numpy.pad`` costs some 20 us of Python before it copies: below this many
#: bytes times (padded axes - 1), concatenating per axis is as fast (2 axes of
#: 4x16x32^2 float32, 256 KiB: 38 against 53 us; 512 KiB: 91 against 78).
_ONE_COPY_PAD_BYTES = 512 * 2**10


def one_copy_pad(xp: Any, x: Any, widths: tuple[tuple[int, int], ...], fill: Any) -> Any | None:
    """``x`` padded with ``fill`` by ``widths`` (one non-negative pair per axis) in one copy.

    None where padding by one ``concat`` per axis is as fast.  The standard
    has no ``pad``, and each ``concat`` copies the whole array again;
    NumPy's own ``pad`` allocates once, copies the input in and fills the
    borders.  On this project's CPU (float32, pad 1 on each padded axis):
    8x64x56^2 on 2 axes 1.54 against 0.91 ms, 1x8x64^3 on 3 axes 2.57
    against 1.15 ms; one axis alone gains nothing (0.81 against 0.87).
    NumPy only: other libraries' pads were not measured (CuPy's is the same
    call, but no GPU was at hand), and under XLA both forms compile alike.
    """
    padded_axes = sum(1 for lo, hi in widths if lo or hi)
    if padded_axes < 2 or not array_api_compat.is_numpy_array(x):
        return None
    if x.size * x.itemsize * (padded_axes - 1) < _ONE_COPY_PAD_BYTES:
        return None
    return xp.pad(x, widths, mode="constant", constant_values=fill)


def values_are_cheap(x: Any) -> bool:
    """Whether reading a value of ``x`` on the host is allowed and cheap enough.

    False for JAX (tracers under ``jit`` have no values; concrete arrays would
    need a device sync) and Dask (lazy); True for NumPy-like eager libraries.
    """
    return not (array_api_compat.is_jax_array(x) or _is_dask(x))
