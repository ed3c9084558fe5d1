"""Shared by the examples: pick the array library with ``--backend``.

portconv works on the arrays of whatever library you hand it.  The examples
create their arrays with the library named on the command line, through its
Array API standard namespace: ``array_api_compat`` gives NumPy, CuPy, torch and
Dask the same standard functions (``asarray``, ``reshape``, ``flip``, ...)
that JAX's ``jax.numpy`` already has, so one example runs on all of them.  The
arrays stay each library's own (a ``torch.Tensor`` on torch, ...).
"""

from __future__ import annotations

import argparse
import importlib
from typing import Any

BACKENDS = ("numpy", "jax", "torch", "cupy", "dask")

_NAMESPACES = {
    "numpy": "array_api_compat.numpy",
    "torch": "array_api_compat.torch",
    "cupy": "array_api_compat.cupy",
    "dask": "array_api_compat.dask.array",
}


def parser(description: str) -> argparse.ArgumentParser:
    """An argument parser with ``--backend``."""
    p = argparse.ArgumentParser(description=description.strip().splitlines()[0])
    p.add_argument(
        "--backend", choices=BACKENDS, default="numpy", help="array library (default numpy)"
    )
    return p


def load(name: str) -> Any:
    """The standard namespace of library ``name``: create arrays with it."""
    if name == "jax":
        import jax

        # JAX computes in float32 unless told otherwise, even for float64 input
        jax.config.update("jax_enable_x64", True)
        return importlib.import_module("jax.numpy")
    return importlib.import_module(_NAMESPACES[name])


def output_shape(fn: Any, *arrays: Any) -> tuple[int, ...]:
    """The shape of ``fn(*arrays)``.

    JAX finds it by tracing alone (``jax.eval_shape``), without compiling or
    computing; Dask knows it before computing; the others simply run ``fn``.
    """
    if type(arrays[0]).__module__.startswith("jax"):
        import jax

        return tuple(jax.eval_shape(fn, *arrays).shape)
    return tuple(fn(*arrays).shape)


def to_list(a: Any) -> Any:
    """``a``'s values as nested Python lists (computes Dask arrays, copies from GPUs)."""
    if hasattr(a, "compute"):  # Dask is lazy: compute() runs the task graph
        a = a.compute()
    return a.tolist()


def show(a: Any, indent: str = "    ") -> str:
    """A 1-d or 2-d array as aligned rows of numbers, for printing."""
    rows = to_list(a)
    if not rows or not isinstance(rows[0], list):
        rows = [rows]
    cells = [[f"{v:g}" for v in row] for row in rows]
    width = max(len(c) for row in cells for c in row)
    return "\n".join(indent + "[" + " ".join(c.rjust(width) for c in row) + "]" for row in cells)
