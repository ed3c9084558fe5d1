"""Normalisation and validation of deep-learning style arguments (plain Python).

Every check runs before any array work, so a bad argument raises the same
error eagerly and while ``jax.jit`` traces.
"""

from __future__ import annotations

import functools
import numbers
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from ._plan import conv_out_size, same_pads

__all__ = [
    "memo_plain",
    "check_choice",
    "int_tuple",
    "check_int",
    "conv_pads",
    "shape_tuple",
]


_PLAIN_TYPES = frozenset({int, str, type(None)})
_F = TypeVar("_F", bound=Callable[..., Any])


def _plain(value: Any) -> bool:
    # Exact types: 1 == True == 1.0 hash alike, but validation accepts only
    # the first, so an answer cached for stride=1 must not serve stride=True.
    t = type(value)
    if t is tuple:
        return all(map(_plain, value))
    return t in _PLAIN_TYPES


def memo_plain(fn: _F) -> _F:
    """``fn`` remembered for calls whose arguments are plain: ints, strs, None, tuples of them.

    For the pure validation of a call's shapes and parameters, which cost some
    15 us of Python per call (a fifth of a small layer's time) and give the
    same answer every step of a training loop.  Errors are not remembered,
    so a bad call raises anew; other arguments (lists, NumPy integers, NaN
    shapes) skip the memory.  What ``fn`` returns is shared between calls
    and must be immutable.
    """
    remembered = functools.lru_cache(maxsize=1024)(fn)

    @functools.wraps(fn)
    def call(*args: Any) -> Any:
        return remembered(*args) if all(map(_plain, args)) else fn(*args)

    return call  # type: ignore[return-value]


def check_choice(func: str, name: str, value: Any, choices: Sequence[str]) -> None:
    if not isinstance(value, str):
        raise TypeError(f"{func}: {name} must be a str, one of {list(choices)}, got {value!r}")
    if value not in choices:
        raise ValueError(f"{func}: {name}={value!r} must be one of {list(choices)}")


def _is_int(v: Any) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def check_int(func: str, name: str, value: Any, minimum: int) -> int:
    if not _is_int(value):
        raise TypeError(f"{func}: {name} must be an int, got {value!r} ({type(value).__name__})")
    if value < minimum:
        raise ValueError(f"{func}: {name}={value} must be >= {minimum}")
    return int(value)


def int_tuple(func: str, name: str, value: Any, n: int, minimum: int) -> tuple[int, ...]:
    """An int, or one int per spatial dimension, each ``>= minimum``."""
    if _is_int(value):
        return (check_int(func, name, value, minimum),) * n
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise TypeError(f"{func}: {name} must be an int or a sequence of {n} ints, got {value!r}")
    if len(value) != n:
        raise ValueError(
            f"{func}: {name}={tuple(value)!r} must have one entry per spatial dimension ({n})"
        )
    for v in value:
        if not _is_int(v):
            raise TypeError(f"{func}: {name}={tuple(value)!r} must contain ints, got {v!r}")
        if v < minimum:
            raise ValueError(f"{func}: {name}={tuple(value)!r} must have every entry >= {minimum}")
    return tuple(int(v) for v in value)


def shape_tuple(func: str, name: str, value: Any) -> tuple[int, ...]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise TypeError(f"{func}: {name} must be a tuple of ints, got {value!r}")
    for v in value:
        if not _is_int(v):
            raise TypeError(f"{func}: {name}={tuple(value)!r} must contain ints, got {v!r}")
        if v < 0:
            raise ValueError(f"{func}: {name}={tuple(value)!r} must not be negative")
    return tuple(int(v) for v in value)


def conv_pads(
    func: str,
    padding: Any,
    spatial: tuple[int, ...],
    kernel: tuple[int, ...],
    stride: tuple[int, ...],
    dilation: tuple[int, ...],
    allow_strings: bool = True,
) -> tuple[tuple[int, int], ...]:
    """Normalise ``padding`` to one ``(low, high)`` pair per spatial dimension.

    Accepts an int, one int per dimension, one ``(low, high)`` pair per
    dimension (a mix of both), ``"valid"`` and ``"same"``.
    """
    n = len(kernel)
    if isinstance(padding, str):
        if not allow_strings:
            raise ValueError(f"{func}: padding={padding!r}: strings are not accepted here")
        if padding == "valid":
            return ((0, 0),) * n
        if padding == "same":
            return tuple(
                same_pads(s, k, st, d) for s, k, st, d in zip(spatial, kernel, stride, dilation)
            )
        raise ValueError(
            f"{func}: padding={padding!r} must be 'valid', 'same', an int, or one "
            f"int or (low, high) pair per spatial dimension"
        )
    if _is_int(padding):
        p = check_int(func, "padding", padding, 0)
        return ((p, p),) * n
    if isinstance(padding, bytes) or not isinstance(padding, Sequence):
        raise TypeError(f"{func}: padding must be an int, a str or a sequence, got {padding!r}")
    if len(padding) != n:
        raise ValueError(
            f"{func}: padding={tuple(padding)!r} must have one entry per spatial dimension ({n})"
        )
    pads = []
    for entry in padding:
        if _is_int(entry):
            pair = (entry, entry)
        elif (
            isinstance(entry, Sequence) and not isinstance(entry, (str, bytes)) and len(entry) == 2
        ):
            pair = tuple(entry)
        else:
            raise TypeError(
                f"{func}: padding={tuple(padding)!r}: each entry must be an int or a "
                f"(low, high) pair of ints, got {entry!r}"
            )
        for v in pair:
            if not _is_int(v):
                raise TypeError(f"{func}: padding={tuple(padding)!r} must contain ints, got {v!r}")
            if v < 0:
                raise ValueError(f"{func}: padding={tuple(padding)!r} must not be negative")
        pads.append((int(pair[0]), int(pair[1])))
    return tuple(pads)


def check_out_spatial(
    func: str,
    spatial: tuple[int, ...],
    kernel: tuple[int, ...],
    stride: tuple[int, ...],
    dilation: tuple[int, ...],
    pads: tuple[tuple[int, int], ...],
    input_shape: tuple[int, ...],
) -> tuple[int, ...]:
    out = tuple(
        conv_out_size(n, k, s, d, lo, hi)
        for n, k, s, d, (lo, hi) in zip(spatial, kernel, stride, dilation, pads)
    )
    if any(o < 1 for o in out):
        raise ValueError(
            f"{func}: the kernel {kernel} (dilation {dilation}) is larger than the "
            f"padded input {tuple(n + lo + hi for n, (lo, hi) in zip(spatial, pads))} "
            f"(input.shape={input_shape}, padding={pads}): the computed output size "
            f"would be {out}"
        )
    return out
