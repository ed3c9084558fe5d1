"""Array libraries as the command line sees them: find, load, convert, jit, time.

A :class:`Backend` is one library on one device.  Libraries are imported
lazily with :mod:`importlib`, only when a backend is discovered or asked for;
a library that is missing is skipped by :func:`discover` and is an error
(:class:`BackendError`, exit code 2) when it was asked for by name.
"""

from __future__ import annotations

import dataclasses
import importlib
import sys
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

__all__ = [
    "ALIASES",
    "NAMES",
    "Backend",
    "BackendError",
    "discover",
    "load",
    "resolve",
    "Progress",
    "canonical",
]

#: Every backend the command line knows, in the order tables list them.
NAMES = ("numpy", "array_api_strict", "jax", "jax-gpu", "torch", "torch-cuda", "cupy", "dask")
ALIASES = {"strict": "array_api_strict", "jax-cpu": "jax", "torch-cpu": "torch"}
# the chunk size of dask arrays in checks: smaller than most kernels, so that
# every computation crosses chunk borders
_DASK_CHUNK = 3


class BackendError(RuntimeError):
    """A backend was asked for but is unknown, not installed, or has no device."""


def _identity(y: Any) -> Any:
    return y


@dataclasses.dataclass(frozen=True)
class Backend:
    """One array library on one device.

    Attributes
    ----------
    name : str
        The command-line name (``numpy``, ``jax-gpu``, ...).
    library : str
        The import name of the library (``numpy``, ``jax``, ...).
    version : str
        The library's ``__version__``.
    device : str
        The device arrays are put on, in words.
    make : callable
        ``make(a, small_chunks)``: a native array from a NumPy array.
    to_numpy : callable
        A NumPy array from a native one (computing lazy ones).
    finish : callable
        Waits until a result exists (``block_until_ready``, a CUDA
        synchronisation, dask's ``compute``); used for timing.
    jit : bool
        Whether portconv calls are wrapped in ``jax.jit``.
    """

    name: str
    library: str
    version: str
    device: str
    make: Callable[[np.ndarray, bool], Any]
    to_numpy: Callable[[Any], np.ndarray]
    finish: Callable[[Any], Any] = _identity
    jit: bool = False

    def asarray(self, a: Any, *, small_chunks: bool = True) -> Any:
        """``a`` (anything NumPy accepts) as an array of this backend.

        ``small_chunks`` only matters for dask: chunks of at most 3 elements
        per axis (checks) instead of dask's automatic chunks (timings).
        """
        return self.make(np.asarray(a), small_chunks)

    def bind(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """``fn`` (arrays in, array out), compiled once with ``jax.jit`` under JAX."""
        if not self.jit:
            return fn
        import jax

        return jax.jit(fn)

    def run(self, fn: Callable[..., Any], *arrays: np.ndarray) -> np.ndarray:
        """``fn`` on ``arrays`` converted to this backend; the result as NumPy."""
        return self.to_numpy(self.bind(fn)(*(self.asarray(a) for a in arrays)))

    def namespace(self) -> Any:
        """The standard namespace portconv sees for this backend's arrays."""
        import array_api_compat

        return array_api_compat.array_namespace(self.asarray(np.zeros(2)))


def _version(module: Any) -> str:
    return str(getattr(module, "__version__", "?"))


def _import(library: str) -> Any:
    try:
        return importlib.import_module(library)
    except ImportError as exc:
        raise BackendError(f"{library} is not installed ({exc})") from exc


def _numpy(name: str) -> Backend:
    np_ = _import("numpy")
    return Backend(name, "numpy", _version(np_), "cpu", lambda a, _: np.array(a), np.asarray)


def _strict(name: str) -> Backend:
    xs = _import("array_api_strict")
    return Backend(
        name,
        "array_api_strict",
        _version(xs),
        "CPU_DEVICE",
        lambda a, _: xs.asarray(np.array(a)),
        np.asarray,
    )


def _jax(platform: str) -> Callable[[str], Backend]:
    def make(name: str) -> Backend:
        jax = _import("jax")
        # before any array exists: float64 must be real float64, and float32
        # matmuls must not drop to TF32/bf16 passes on GPUs
        jax.config.update("jax_enable_x64", True)
        jax.config.update("jax_default_matmul_precision", "highest")
        try:
            dev = jax.devices(platform)[0]
        except RuntimeError as exc:
            raise BackendError(f"jax sees no {platform} device") from exc
        jnp = importlib.import_module("jax.numpy")
        return Backend(
            name,
            "jax",
            _version(jax),
            f"{dev.platform}:{dev.id} ({dev.device_kind})",
            lambda a, _: jax.device_put(jnp.asarray(a), dev),
            np.asarray,
            finish=lambda y: y.block_until_ready(),
            jit=True,
        )

    return make


def _torch(device: str) -> Callable[[str], Backend]:
    def make(name: str) -> Backend:
        torch = _import("torch")
        label = "cpu"
        finish = _identity
        if device == "cuda":
            if not torch.cuda.is_available():
                raise BackendError("torch sees no CUDA device")
            # exact float32 products, as on the CPU
            torch.backends.cuda.matmul.allow_tf32 = False
            torch.backends.cudnn.allow_tf32 = False
            label = f"cuda:0 ({torch.cuda.get_device_name(0)})"

            def finish(y: Any) -> Any:
                torch.cuda.synchronize()
                return y

        return Backend(
            name,
            "torch",
            _version(torch),
            label,
            lambda a, _: torch.asarray(np.array(a), device=device),
            lambda y: y.detach().cpu().resolve_conj().numpy(),
            finish=finish,
        )

    return make


def _cupy(name: str) -> Backend:
    cupy = _import("cupy")
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # no driver: CUDARuntimeError, or an ImportError inside
        raise BackendError(f"cupy cannot reach a CUDA device ({exc})") from exc
    if count < 1:
        raise BackendError("cupy sees no CUDA device")

    def finish(y: Any) -> Any:
        cupy.cuda.get_current_stream().synchronize()
        return y

    props = cupy.cuda.runtime.getDeviceProperties(0)
    gpu = props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"])
    return Backend(
        name,
        "cupy",
        _version(cupy),
        f"cuda:0 ({gpu})",
        lambda a, _: cupy.asarray(a),
        cupy.asnumpy,
        finish=finish,
    )


def _dask(name: str) -> Backend:
    dask = _import("dask")
    da = _import("dask.array")

    def make(a: np.ndarray, small_chunks: bool) -> Any:
        if not small_chunks:
            return da.from_array(np.array(a))
        chunks = tuple(max(1, min(_DASK_CHUNK, s)) for s in a.shape)
        return da.from_array(np.array(a), chunks=chunks)

    def to_numpy(y: Any) -> np.ndarray:
        return np.asarray(y.compute() if hasattr(y, "compute") else y)

    return Backend(
        name,
        "dask",
        _version(dask),
        "cpu (threads)",
        make,
        to_numpy,
        finish=lambda y: y.compute(),
    )


_FACTORIES: dict[str, Callable[[str], Backend]] = {
    "numpy": _numpy,
    "array_api_strict": _strict,
    "jax": _jax("cpu"),
    "jax-gpu": _jax("gpu"),
    "torch": _torch("cpu"),
    "torch-cuda": _torch("cuda"),
    "cupy": _cupy,
    "dask": _dask,
}
_LOADED: dict[str, Backend] = {}


def canonical(name: str) -> str:
    """The registry name for ``name`` (aliases resolved); ``BackendError`` if unknown."""
    key = ALIASES.get(name.strip(), name.strip())
    if key not in _FACTORIES:
        known = ", ".join(NAMES) + " (aliases: " + ", ".join(ALIASES) + ")"
        raise BackendError(f"unknown backend {name!r}; known backends: {known}")
    return key


def load(name: str) -> Backend:
    """Load one backend by name.

    Parameters
    ----------
    name : str
        A name of :data:`NAMES` or an alias.

    Returns
    -------
    Backend

    Raises
    ------
    BackendError
        Unknown name, library not installed, or no device of the kind asked for.
    """
    key = canonical(name)
    if key not in _LOADED:
        _LOADED[key] = _FACTORIES[key](key)
    return _LOADED[key]


def discover() -> tuple[list[Backend], dict[str, str]]:
    """Every backend that loads here, and why each other one does not.

    Returns
    -------
    backends : list of Backend
        In the order of :data:`NAMES`.
    unavailable : dict
        Name -> reason, for the backends that could not be loaded.
    """
    found, missing = [], {}
    for name in NAMES:
        try:
            found.append(load(name))
        except BackendError as exc:
            missing[name] = str(exc)
    return found, missing


def resolve(names: Iterable[str] | None) -> list[Backend]:
    """The backends asked for (``None`` or empty: every one that loads here).

    Raises
    ------
    BackendError
        For the first name that is unknown or cannot be loaded.
    """
    names = list(names or ())
    if not names:
        return discover()[0]
    seen: dict[str, Backend] = {}
    for name in names:
        key = canonical(name)
        try:
            backend = load(key)
        except BackendError as exc:
            raise BackendError(f"backend {name!r} was asked for, but {exc}") from exc
        seen.setdefault(backend.name, backend)
    return list(seen.values())


class Progress:
    """A progress callback ``progress(step, total, message)`` that writes to ``stream``.

    Called when a step starts.  On a terminal each step overwrites the
    previous line and :meth:`close` clears it; elsewhere (logs, pipes) each
    step is one line such as ``[3/12] jax: edge detection...``.
    """

    def __init__(self, stream: Any = None):
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())

    def __call__(self, step: int, total: int, message: str) -> None:
        line = f"[{step}/{total}] {message}..."
        self.stream.write("\r\033[K" + line if self.tty else line + "\n")
        self.stream.flush()

    def close(self) -> None:
        """Clear the progress line (terminals only)."""
        if self.tty:
            self.stream.write("\r\033[K")
            self.stream.flush()
