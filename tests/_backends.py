"""The backend registry of the test suite.

``PORTCONV_TEST_BACKENDS`` (comma separated) selects backends; unset means
every installed CPU backend.  A backend that is asked for but cannot be
loaded is an error, never a skip.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import os
from collections.abc import Callable
from typing import Any

import numpy as np

ENV = "PORTCONV_TEST_BACKENDS"


@dataclasses.dataclass
class Backend:
    """One array library on one device, as the tests see it."""

    name: str
    xp: Any  # the standard namespace portconv will see
    asarray: Callable[[np.ndarray], Any]
    to_numpy: Callable[[Any], np.ndarray]
    jit: bool = False  # wrap every public call in jax.jit
    lazy: bool = False  # results are lazy (dask): compute before comparing
    has_float64: bool = True
    device: Any = None  # where inputs are placed; results must be there too

    def dtype(self, name: str) -> Any:
        return getattr(self.xp, name)


class BackendUnavailable(RuntimeError):
    pass


def _numpy() -> Backend:
    import array_api_compat.numpy as xp

    return Backend("numpy", xp, lambda a: np.array(a, copy=True), np.asarray)


def _strict(device_name: str | None) -> Callable[[], Backend]:
    def make() -> Backend:
        import array_api_strict as xs

        dev = xs.Device(device_name) if device_name else xs.Device("CPU_DEVICE")
        cpu = xs.Device("CPU_DEVICE")

        def to_numpy(a: Any) -> np.ndarray:
            return np.asarray(a.to_device(cpu))

        name = "array_api_strict" + (f"-{device_name}" if device_name else "")
        return Backend(
            name, xs, lambda a: xs.asarray(np.array(a), device=dev), to_numpy, device=dev
        )

    return make


def _jax(platform: str) -> Callable[[], Backend]:
    def make() -> Backend:
        import jax

        if os.environ.get("JAX_ENABLE_X64", "") not in ("0", "false", "False"):
            jax.config.update("jax_enable_x64", True)
        jax.config.update("jax_default_matmul_precision", "highest")
        import jax.numpy as jnp

        try:
            devices = jax.devices(platform)
        except RuntimeError as exc:
            raise BackendUnavailable(f"jax has no {platform} device: {exc}") from exc
        dev = devices[0]
        x64 = bool(jax.config.jax_enable_x64)
        name = "jax" if platform == "cpu" else "jax-gpu"
        return Backend(
            name,
            jnp,
            lambda a: jax.device_put(jnp.asarray(a), dev),
            lambda a: np.asarray(a),
            jit=True,
            has_float64=x64,
            device=dev,
        )

    return make


def _torch(device: str) -> Callable[[], Backend]:
    def make() -> Backend:
        import array_api_compat.torch as xp
        import torch

        if device == "cuda":
            if not torch.cuda.is_available():
                raise BackendUnavailable("torch reports no CUDA device")
            torch.backends.cuda.matmul.allow_tf32 = False
            torch.backends.cudnn.allow_tf32 = False
        name = "torch" if device == "cpu" else "torch-cuda"
        return Backend(
            name,
            xp,
            lambda a: torch.asarray(np.array(a), device=device),
            lambda a: a.detach().cpu().resolve_conj().numpy(),
            device=torch.device(device),
        )

    return make


def _cupy() -> Backend:
    import array_api_compat.cupy as xp
    import cupy

    if cupy.cuda.runtime.getDeviceCount() < 1:
        raise BackendUnavailable("cupy sees no CUDA device")
    return Backend("cupy", xp, lambda a: cupy.asarray(a), lambda a: cupy.asnumpy(a))


def _dask() -> Backend:
    import array_api_compat.dask.array as xp
    import dask.array as da

    def asarray(a: np.ndarray) -> Any:
        # chunks of at most 3 along every axis: smaller than most kernels
        return da.from_array(np.array(a), chunks=tuple(max(1, min(3, s)) for s in a.shape) or ())

    def to_numpy(a: Any) -> np.ndarray:
        return np.asarray(a.compute() if hasattr(a, "compute") else a)

    return Backend("dask", xp, asarray, to_numpy, lazy=True)


#: name -> (import probe, factory, runs by default when installed)
REGISTRY: dict[str, tuple[str, Callable[[], Backend], bool]] = {
    "numpy": ("numpy", _numpy, True),
    "array_api_strict": ("array_api_strict", _strict(None), True),
    "array_api_strict-device1": ("array_api_strict", _strict("device1"), True),
    "jax": ("jax", _jax("cpu"), True),
    "torch": ("torch", _torch("cpu"), True),
    "dask": ("dask", _dask, False),
    "cupy": ("cupy", _cupy, False),
    "jax-gpu": ("jax", _jax("gpu"), False),
    "torch-cuda": ("torch", _torch("cuda"), False),
}
ALIASES = {"strict": "array_api_strict"}


def _installed(module: str) -> bool:
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def selected_names() -> list[str]:
    raw = os.environ.get(ENV, "").strip()
    if not raw:
        return [n for n, (mod, _, default) in REGISTRY.items() if default and _installed(mod)]
    names = []
    for part in raw.split(","):
        name = ALIASES.get(part.strip(), part.strip())
        if not name:
            continue
        if name not in REGISTRY:
            raise BackendUnavailable(
                f"{ENV}: unknown backend {name!r}; known: {', '.join(REGISTRY)}"
            )
        names.append(name)
        if name == "array_api_strict":
            names.append("array_api_strict-device1")
    return names


@functools.cache
def load(name: str) -> Backend:
    module, factory, _ = REGISTRY[name]
    try:
        return factory()
    except ImportError as exc:
        raise BackendUnavailable(
            f"backend {name!r} was asked for ({ENV}) but {module!r} cannot be imported: {exc}"
        ) from exc
