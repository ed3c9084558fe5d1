"""Dtype rules shared by every public function (plain Python on dtypes)."""

from __future__ import annotations

from typing import Any

from . import _compat
from ._plan import DtypeInfo

__all__ = ["check_numeric", "compute_dtype", "dtype_info", "float_eps"]


def check_numeric(func: str, name: str, xp: Any, x: Any) -> str:
    """Return ``"int"``, ``"real"`` or ``"complex"``; ``TypeError`` for anything else."""
    dt = x.dtype
    if xp.isdtype(dt, "bool"):
        raise TypeError(
            f"{func}: {name} has dtype bool, which is not supported; "
            f"convert it to an integer or floating dtype first"
        )
    if xp.isdtype(dt, "complex floating"):
        return "complex"
    if xp.isdtype(dt, "real floating"):
        return "real"
    if xp.isdtype(dt, "integral"):
        return "int"
    raise TypeError(f"{func}: {name} has unsupported dtype {dt}")


def compute_dtype(xp: Any, a: Any, b: Any, kind_a: str, kind_b: str) -> Any:
    """The dtype results are computed and returned in.

    Two integer inputs: the namespace's default integer dtype (exact, as
    ``xp.sum`` accumulates).  Otherwise the library's own promotion
    (``result_type``); where the library refuses to mix kinds (the standard
    leaves int/float promotion undefined), the floating argument's dtype.
    """
    if kind_a == "int" and kind_b == "int":
        return _compat.default_int_dtype(xp, a)
    try:
        return xp.result_type(a.dtype, b.dtype)
    except TypeError:
        return a.dtype if kind_a != "int" else b.dtype


def dtype_info(xp: Any, dtype: Any, originals: tuple[Any, ...]) -> DtypeInfo:
    """Planner view of ``dtype``; integer bounds come from the original dtypes."""
    if xp.isdtype(dtype, "integral"):
        bound = max(max(abs(int(xp.iinfo(d).min)), int(xp.iinfo(d).max)) for d in originals)
        return DtypeInfo("int", xp.iinfo(dtype).bits // 8, bound)
    bits = xp.finfo(dtype).bits
    if xp.isdtype(dtype, "complex floating"):
        return DtypeInfo("complex", bits // 4)
    return DtypeInfo("real", bits // 8)


def float_eps(xp: Any, x: Any) -> float:
    """Machine epsilon of the widest float the namespace provides for ``x``."""
    return float(xp.finfo(_compat.widest_float_dtype(xp, x)).eps)
