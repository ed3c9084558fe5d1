"""Shared test helpers: the jitting wrapper, the oracle, the tolerance rule
and the one assertion that checks namespace, shape, dtype, device and values."""

from __future__ import annotations

import math
import os
from typing import Any

import array_api_compat
import numpy as np

import portconv

from ._backends import Backend

ARRAY_PARAMS = ("in1", "in2", "input", "weight", "bias", "grad_output")


def n_examples(n: int) -> int:
    """Hypothesis examples for a property: ``n`` times ``$PORTCONV_EXAMPLE_SCALE``.

    CI runs the full counts except for JAX (every example is a jit compile)
    and Dask (a task graph per call), whose runs scale down (``noxfile.py``).
    """
    scale = float(os.environ.get("PORTCONV_EXAMPLE_SCALE", "1"))
    return max(10, int(n * scale))


class PublicAPI:
    """Attribute access returns portconv's public function for ``backend``.

    Arguments that are numpy arrays are converted to the backend first; under
    JAX the call is jitted with those arrays traced and everything else
    static, so every test also checks that the function is jit-safe.
    """

    def __init__(self, backend: Backend):
        self.backend = backend

    def __getattr__(self, name: str):
        fn = getattr(portconv, name)
        b = self.backend

        def call(*args, **kwargs):
            args = [b.asarray(a) if isinstance(a, np.ndarray) else a for a in args]
            kwargs = {
                k: b.asarray(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()
            }
            if not b.jit:
                return fn(*args, **kwargs)
            return jit_call(fn, *args, **kwargs)

        return call


def jit_call(fn, *args, **kwargs):
    """``fn(*args, **kwargs)`` under ``jax.jit``, arrays traced, the rest static."""
    import jax

    pos = [i for i, a in enumerate(args) if array_api_compat.is_jax_array(a)]
    keys = [k for k, v in kwargs.items() if array_api_compat.is_jax_array(v)]

    static_result = []

    def inner(*traced):
        full = list(args)
        for i, a in zip(pos, traced[: len(pos)]):
            full[i] = a
        kw = dict(kwargs)
        for k, v in zip(keys, traced[len(pos) :]):
            kw[k] = v
        out = fn(*full, **kw)
        if isinstance(out, str):  # choose_method: decided while tracing
            static_result.append(out)
            return jax.numpy.zeros(())
        return out

    out = jax.jit(inner)(*[args[i] for i in pos], *[kwargs[k] for k in keys])
    return static_result[0] if static_result else out


def error_bound(
    x: np.ndarray, k: np.ndarray, dtype: Any, out_shape: tuple[int, ...], c: float = 16.0
) -> float:
    """Absolute error bound of one correlation, whichever method ran.

    ``c * eps * (sqrt(taps) + log2(n)) * max|x| * sum|k|``: the direct bound
    (about ``eps*sqrt(taps)``) and the FFT bound (about ``eps*log2(n)``)
    together, scaled by the largest possible output magnitude.
    """
    if np.issubdtype(dtype, np.integer):
        return 0.0
    eps = float(np.finfo(dtype).eps)
    taps = max(k.size, 1)
    n = max(int(np.prod([a + b for a, b in zip(x.shape, k.shape)] or [1])), 2)
    scale = float(np.max(np.abs(x), initial=0.0)) * float(np.sum(np.abs(k)))
    return c * eps * (math.sqrt(taps) + math.log2(n)) * max(scale, 1e-300)


def assert_close(
    backend: Backend,
    actual: Any,
    expected: np.ndarray,
    *,
    dtype: Any,
    bound: float,
    device_of: Any = None,
) -> None:
    """Namespace, shape, dtype, device, then values (``|a - e| <= bound``)."""
    xp = backend.xp
    if backend.lazy:
        assert hasattr(actual, "dask"), f"expected a lazy dask array, got {type(actual)}"
    got_ns = array_api_compat.array_namespace(actual)
    assert got_ns is xp or got_ns.__name__ == xp.__name__, (
        f"result is from {got_ns.__name__}, expected {xp.__name__}"
    )
    assert tuple(actual.shape) == tuple(expected.shape), (tuple(actual.shape), expected.shape)
    assert actual.dtype == dtype, (actual.dtype, dtype)
    if device_of is not None:
        assert array_api_compat.device(actual) == array_api_compat.device(device_of)
    elif backend.device is not None:
        assert array_api_compat.device(actual) == backend.device, (
            f"result on {array_api_compat.device(actual)}, inputs on {backend.device}"
        )
    got = backend.to_numpy(actual)
    if bound == 0.0:
        np.testing.assert_array_equal(got, expected)
        return
    err = float(np.max(np.abs(got.astype(np.complex128) - expected), initial=0.0))
    assert err <= bound, f"max deviation {err:.3g} exceeds bound {bound:.3g}"


def xp_dtype(backend: Backend, np_dtype: Any) -> Any:
    """The backend dtype matching a NumPy dtype (JAX without x64 narrows)."""
    name = np.dtype(np_dtype).name
    if not backend.has_float64:
        name = {"float64": "float32", "complex128": "complex64", "int64": "int32"}.get(name, name)
    return getattr(backend.xp, name)


def default_int(backend: Backend) -> Any:
    return xp_dtype(backend, np.int64)
