"""Dtype rules shared by every public function (plain Python on dtypes)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import _compat
from ._plan import DtypeInfo

__all__ = [
    "check_numeric",
    "compute_dtype",
    "dtype_info",
    "dtype_kind",
    "float_eps",
    "remembered",
]

# (namespace, dtype) -> kind.  ``isdtype`` is a pure function of the dtype,
# but NumPy's costs about 2.5 us a call and a call of portconv asked it up to
# nine times (a tenth of a 1,000-sample correlation); dtypes are few.
_KINDS: dict[tuple[Any, Any], str | None] = {}


def _classify(xp: Any, dt: Any) -> str | None:
    for kind, name in (
        ("bool", "bool"),
        ("complex", "complex floating"),
        ("real", "real floating"),
        ("int", "integral"),
    ):
        if xp.isdtype(dt, name):
            return kind
    return None


def remembered(
    store: dict[Any, Any], key: Any, compute: Callable[[], Any], keep: bool = True
) -> Any:
    """``store[key]``, else ``compute()`` (kept in ``store`` when ``keep``).

    For answers that depend on dtypes alone: a key holding an unhashable
    dtype is computed anew every time.
    """
    try:
        return store[key]
    except KeyError:
        pass
    except TypeError:  # an unhashable dtype
        return compute()
    answer = compute()
    if keep:
        store[key] = answer
    return answer


def dtype_kind(xp: Any, dt: Any) -> str | None:
    """``"bool"``, ``"int"``, ``"real"``, ``"complex"`` or None (anything else) for ``dt``."""
    return remembered(_KINDS, (xp, dt), lambda: _classify(xp, dt))


def check_numeric(func: str, name: str, xp: Any, x: Any) -> str:
    """Return ``"int"``, ``"real"`` or ``"complex"``; ``TypeError`` for anything else."""
    dt = x.dtype
    kind = dtype_kind(xp, dt)
    if kind == "bool":
        raise TypeError(
            f"{func}: {name} has dtype bool, which is not supported; "
            f"convert it to an integer or floating dtype first"
        )
    if kind is None:
        raise TypeError(f"{func}: {name} has unsupported dtype {dt}")
    return kind


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


#: (namespace, dtype, originals) -> ``dtype_info``'s answer: ``finfo`` costs
#: some 3 us a call in array-api-compat's NumPy namespace.
_INFOS: dict[tuple[Any, ...], DtypeInfo] = {}


def dtype_info(xp: Any, dtype: Any, originals: tuple[Any, ...]) -> DtypeInfo:
    """Planner view of ``dtype``; integer bounds come from the original dtypes."""
    return remembered(_INFOS, (xp, dtype, originals), lambda: _dtype_info(xp, dtype, originals))


def _dtype_info(xp: Any, dtype: Any, originals: tuple[Any, ...]) -> DtypeInfo:
    kind = dtype_kind(xp, dtype)
    if kind == "int":
        bound = max(max(abs(int(xp.iinfo(d).min)), int(xp.iinfo(d).max)) for d in originals)
        return DtypeInfo("int", xp.iinfo(dtype).bits // 8, bound)
    bits = xp.finfo(dtype).bits
    if kind == "complex":
        return DtypeInfo("complex", bits // 4)
    return DtypeInfo("real", bits // 8)


def float_eps(xp: Any, x: Any) -> float:
    """Machine epsilon of the widest float the namespace provides for ``x``."""
    return float(xp.finfo(_compat.widest_float_dtype(xp, x)).eps)
