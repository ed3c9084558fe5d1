"""Equivalence report: every public function, on every backend, against NumPy.

One fixed, seeded set of cases covers ``correlate``/``convolve`` (every mode
and method), ``correlate2d``/``convolve2d`` (every mode and boundary), ``conv``
(padding forms, stride, dilation, groups, every padding mode, channels-last,
1/2/3-d), ``conv_transpose`` and both gradients, in float32, float64,
complex128 and int16 where the function takes them.

Each backend's result is compared with portconv's NumPy result; the NumPy
result itself is compared with a float64 oracle (``scipy.signal`` for the
SciPy-style functions, ``torch`` for the deep-learning ones), so that every
column of the table means something.  Deviations are in units of the
problem's error bound ``16 * eps(dtype) * (sqrt(taps) + log2(n)) * max|x| *
sum|k|``; integer results must be exact.  A case passes at ``<= 1``.

Run it as ``portconv check`` or ``python -m portconv.cli.equivalence
--out-dir benchmarks/results``.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import importlib
import json
import math
import os
import platform
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

import portconv

from .backends import Backend, BackendError, load, resolve

__all__ = ["Case", "build_cases", "format_table", "machine_name", "main", "run_equivalence"]

SEED = 1234
DTYPES = ("float32", "float64", "complex128", "int16")
MODES = ("full", "same", "valid")
BOUNDARIES = ("fill", "wrap", "symm")
FUNCTIONS = (
    "correlate",
    "convolve",
    "correlate2d",
    "convolve2d",
    "conv",
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose",
    "conv_input_grad",
    "conv_weight_grad",
)
_NP_PAD_MODES = {
    "zeros": "constant",
    "reflect": "reflect",
    "replicate": "edge",
    "circular": "wrap",
    "symmetric": "symmetric",
}


@dataclasses.dataclass(frozen=True)
class Case:
    """One problem: portconv's call, its float64 oracle, and its error bound.

    Attributes
    ----------
    func : str
        The public function (a row of the table).
    label : str
        What varies, e.g. ``"2d same fft float32"``.
    arrays : tuple of numpy.ndarray
        The array arguments, converted to each backend.
    call : callable
        ``call(*arrays)`` runs portconv; it takes only arrays, so JAX can jit it.
    oracle : callable
        ``oracle()`` gives the float64 (exact int64 for integers) result of
        SciPy or torch; ``None`` when that library is not installed.
    bound : float
        Absolute error bound; 0 for integer results (exact).
    """

    func: str
    label: str
    arrays: tuple[np.ndarray, ...]
    call: Callable[..., Any]
    oracle: Callable[[], np.ndarray | None]
    bound: float


# --- data and bounds -----------------------------------------------------------


def _data(rng: np.random.Generator, shape: tuple[int, ...], dtype: str) -> np.ndarray:
    if dtype == "int16":
        return rng.integers(-20, 21, size=shape).astype(np.int16)
    a = rng.standard_normal(shape)
    if dtype.startswith("complex"):
        a = a + 1j * rng.standard_normal(shape)
    return a.astype(dtype)


def _bound(dtype: str, taps: int, n: int, scale: float) -> float:
    """``16 * eps * (sqrt(taps) + log2(n)) * scale``; 0 (exact) for integers."""
    if dtype.startswith("int"):
        return 0.0
    eps = float(np.finfo(np.dtype(dtype)).eps)
    return 16.0 * eps * (math.sqrt(max(taps, 1)) + math.log2(max(n, 2))) * max(scale, 1e-300)


def _wide(a: np.ndarray) -> np.ndarray:
    """The oracle's dtype: int64 for integers, else float64 / complex128."""
    if np.issubdtype(a.dtype, np.integer):
        return a.astype(np.int64)
    return a.astype(np.complex128 if np.iscomplexobj(a) else np.float64)


def _amax(a: np.ndarray) -> float:
    return float(np.max(np.abs(a), initial=0.0))


# --- SciPy-style cases -------------------------------------------------------------


def _scipy() -> Any | None:
    try:
        return importlib.import_module("scipy.signal")
    except ImportError:
        return None


def _signal_cases(rng: np.random.Generator) -> list[Case]:
    # 1-d, 2-d with an even kernel side (the 'same' rounding), in2 larger (valid swap)
    shapes = (((37,), (8,)), ((9, 11), (4, 3)), ((5,), (12,)))
    cases = []
    for func in ("correlate", "convolve"):
        for s1, s2 in shapes:
            for dtype in DTYPES:
                a, b = _data(rng, s1, dtype), _data(rng, s2, dtype)
                bound = _bound(
                    dtype,
                    b.size,
                    math.prod(p + q for p, q in zip(s1, s2)),
                    _amax(a) * float(np.sum(np.abs(b))),
                )
                for mode in MODES:
                    for method in ("direct", "fft"):
                        cases.append(_signal_case(func, a, b, mode, method, dtype, bound))
    return cases


def _signal_case(func, a, b, mode, method, dtype, bound) -> Case:
    fn = getattr(portconv, func)

    def call(x, h):
        return fn(x, h, mode=mode, method=method)

    def oracle():
        ss = _scipy()
        return (
            None
            if ss is None
            else getattr(ss, func)(_wide(a), _wide(b), mode=mode, method="direct")
        )

    label = f"{a.ndim}d {a.shape}*{b.shape} {mode} {method} {dtype}"
    return Case(func, label, (a, b), call, oracle, bound)


def _signal2d_cases(rng: np.random.Generator) -> list[Case]:
    cases = []
    for func in ("correlate2d", "convolve2d"):
        for dtype in DTYPES:
            a, b = _data(rng, (9, 11), dtype), _data(rng, (4, 3), dtype)
            for boundary in BOUNDARIES:
                for mode in MODES:
                    cases.append(_signal2d_case(func, a, b, mode, boundary, 0, dtype))
            cases.append(_signal2d_case(func, a, b, "same", "fill", 2, dtype))
    return cases


def _signal2d_case(func, a, b, mode, boundary, fillvalue, dtype) -> Case:
    fn = getattr(portconv, func)

    def call(x, h):
        return fn(x, h, mode=mode, boundary=boundary, fillvalue=fillvalue)

    def oracle():
        ss = _scipy()
        if ss is None:
            return None
        return getattr(ss, func)(
            _wide(a), _wide(b), mode=mode, boundary=boundary, fillvalue=fillvalue
        )

    scale = max(_amax(a), abs(fillvalue)) * float(np.sum(np.abs(b)))
    bound = _bound(dtype, b.size, 13 * 14, scale)
    label = f"{mode} {boundary}" + (f" fill={fillvalue}" if fillvalue else "") + f" {dtype}"
    return Case(func, label, (a, b), call, oracle, bound)


# --- deep-learning cases ---------------------------------------------------------------


def _torch() -> Any | None:
    try:
        return importlib.import_module("torch")
    except ImportError:
        return None


def _ntuple(value: Any, nsp: int) -> tuple[int, ...]:
    return (value,) * nsp if isinstance(value, int) else tuple(value)


def reference_pads(padding, spatial, kernel, stride, dilation) -> tuple[tuple[int, int], ...]:
    """Explicit ``(low, high)`` pads of every padding form (an independent re-derivation)."""
    nsp = len(spatial)
    if padding == "valid":
        return ((0, 0),) * nsp
    if padding == "same":
        pads = []
        for n, k, s, d in zip(spatial, kernel, stride, dilation):
            total = max((-(-n // s) - 1) * s + d * (k - 1) + 1 - n, 0)
            pads.append((total // 2, total - total // 2))
        return tuple(pads)
    if isinstance(padding, int):
        return ((padding, padding),) * nsp
    return tuple((p, p) if isinstance(p, int) else tuple(p) for p in padding)


def _torch_conv(torch, x, w, stride, dilation, groups):
    fn = {
        1: torch.nn.functional.conv1d,
        2: torch.nn.functional.conv2d,
        3: torch.nn.functional.conv3d,
    }
    return fn[w.ndim - 2](x, w, None, stride, 0, dilation, groups)


def _as_torch(torch, a: np.ndarray, requires_grad: bool = False):
    wide = a.astype(np.complex128 if np.iscomplexobj(a) else np.float64)
    return torch.tensor(wide, requires_grad=requires_grad)


def _finish(y: np.ndarray, dtype: str) -> np.ndarray:
    return np.rint(y).astype(np.int64) if dtype == "int16" else y


@dataclasses.dataclass(frozen=True)
class _Geometry:
    """A conv problem: shapes and options, in torch's channels-first layout."""

    x: tuple[int, ...]
    w: tuple[int, ...]
    stride: Any = 1
    padding: Any = 0
    dilation: Any = 1
    groups: int = 1
    padding_mode: str = "zeros"
    bias: bool = False
    channels_last: bool = False
    unbatched: bool = False
    method: str = "auto"

    @property
    def nsp(self) -> int:
        return len(self.w) - 2

    def resolved(self) -> tuple[tuple[int, ...], tuple[int, ...], tuple[tuple[int, int], ...]]:
        stride, dilation = _ntuple(self.stride, self.nsp), _ntuple(self.dilation, self.nsp)
        pads = reference_pads(self.padding, self.x[2:], self.w[2:], stride, dilation)
        return stride, dilation, pads

    def out_spatial(self) -> tuple[int, ...]:
        stride, dilation, pads = self.resolved()
        return tuple(
            (n + lo + hi - d * (k - 1) - 1) // s + 1
            for n, k, s, d, (lo, hi) in zip(self.x[2:], self.w[2:], stride, dilation, pads)
        )

    def describe(self) -> str:
        parts = [f"x{self.x} w{self.w}"]
        defaults = _Geometry(self.x, self.w)
        for field in dataclasses.fields(self)[2:]:
            value = getattr(self, field.name)
            if value != getattr(defaults, field.name):
                parts.append(f"{field.name}={value}")
        return " ".join(parts)


_CONV_GEOMETRIES = (
    _Geometry((2, 4, 9, 10), (6, 4, 3, 3)),
    _Geometry((2, 4, 9, 10), (6, 4, 3, 3), stride=2, padding=1, bias=True),
    _Geometry((2, 4, 9, 10), (6, 4, 3, 2), padding=(1, 2)),
    _Geometry((2, 4, 9, 10), (6, 4, 3, 3), padding=((1, 0), (2, 1))),
    _Geometry((2, 4, 9, 10), (6, 4, 3, 3), padding="same", dilation=2),
    _Geometry((2, 4, 9, 10), (6, 4, 4, 3), padding="same", stride=2),
    _Geometry((2, 4, 9, 10), (6, 4, 3, 3), padding="valid", stride=(2, 1)),
    _Geometry((2, 4, 9, 10), (6, 2, 3, 3), padding=1, groups=2, bias=True),
    _Geometry((2, 4, 9, 10), (4, 1, 3, 3), padding=1, groups=4),
    _Geometry((2, 4, 9, 10), (6, 4, 3, 3), padding=1, channels_last=True),
    _Geometry((2, 4, 9, 10), (6, 4, 3, 3), padding=1, unbatched=True),
    _Geometry((2, 4, 9, 10), (6, 4, 5, 5), padding=2, method="fft"),
) + tuple(
    _Geometry((2, 3, 7, 8), (4, 3, 3, 3), padding=2, padding_mode=mode)
    for mode in ("zeros", "reflect", "replicate", "circular", "symmetric")
)
_FIXED_RANK = {
    "conv1d": _Geometry((2, 3, 17), (4, 3, 5), stride=2, padding=2, bias=True),
    "conv2d": _Geometry((2, 3, 8, 9), (5, 3, 3, 3), dilation=(1, 2), padding=1),
    "conv3d": _Geometry((1, 2, 5, 6, 4), (3, 2, 3, 3, 2), padding=1, bias=True),
}


def _conv_oracle(g: _Geometry, x: np.ndarray, w: np.ndarray, b: np.ndarray | None, dtype):
    torch = _torch()
    if torch is None:
        return None
    stride, dilation, pads = g.resolved()
    xpad = np.pad(_wide(x), [(0, 0), (0, 0), *pads], mode=_NP_PAD_MODES[g.padding_mode])
    y = _torch_conv(torch, _as_torch(torch, xpad), _as_torch(torch, w), stride, dilation, g.groups)
    y = y.detach().numpy()
    if b is not None:
        y = y + b.reshape((1, -1) + (1,) * g.nsp)
    return _finish(y, dtype)


def _conv_case(func: str, g: _Geometry, rng: np.random.Generator, dtype: str) -> Case:
    x = _data(rng, g.x, dtype)
    w = _data(rng, g.w, dtype)
    b = _data(rng, (g.w[0],), dtype) if g.bias else None
    fn = getattr(portconv, func)
    options = dict(stride=g.stride, padding=g.padding, dilation=g.dilation, groups=g.groups)
    options.update(padding_mode=g.padding_mode, method=g.method)
    if g.channels_last:
        options["data_format"] = "channels_last"
    # what the user passes: channels-last or unbatched layouts of x
    x_user = np.moveaxis(x, 1, -1).copy() if g.channels_last else x
    x_user = x_user[0] if g.unbatched else x_user

    def call(*arrays):
        return fn(*arrays, **options)

    def oracle():
        y = _conv_oracle(g, x, w, b, dtype)
        if y is None:
            return None
        y = np.moveaxis(y, 1, -1) if g.channels_last else y
        return y[0] if g.unbatched else y

    taps = g.w[1] * math.prod(g.w[2:])
    scale = _amax(x) * float(np.max(np.sum(np.abs(w), axis=tuple(range(1, w.ndim)))))
    scale += _amax(b) if b is not None else 0.0
    n = math.prod(s + k for s, k in zip(g.x[2:], g.w[2:]))
    arrays = (x_user, w) if b is None else (x_user, w, b)
    return Case(
        func, f"{g.describe()} {dtype}", arrays, call, oracle, _bound(dtype, taps, n, scale)
    )


def _conv_cases(rng: np.random.Generator) -> list[Case]:
    cases = [_conv_case("conv", g, rng, dt) for g in _CONV_GEOMETRIES for dt in DTYPES]
    for func, g in _FIXED_RANK.items():
        cases += [_conv_case(func, g, rng, dt) for dt in DTYPES]
    return cases


_TRANSPOSE_GEOMETRIES = (
    # (x, w, stride, padding, output_padding, groups, dilation, bias)
    ((2, 4, 5, 6), (4, 3, 3, 3), 2, 1, 1, 1, 1, False),
    ((2, 4, 5, 6), (4, 2, 3, 3), 1, 2, 0, 2, 2, True),
    ((2, 3, 7), (3, 2, 4), 3, 1, 2, 1, 1, True),
)


def _transpose_case(geometry, rng: np.random.Generator, dtype: str) -> Case:
    xs, ws, stride, padding, out_pad, groups, dilation, has_bias = geometry
    x, w = _data(rng, xs, dtype), _data(rng, ws, dtype)
    b = _data(rng, (ws[1] * groups,), dtype) if has_bias else None
    options = dict(
        stride=stride, padding=padding, output_padding=out_pad, groups=groups, dilation=dilation
    )

    def call(*arrays):
        return portconv.conv_transpose(*arrays, **options)

    def oracle():
        torch = _torch()
        if torch is None:
            return None
        fn = getattr(torch.nn.functional, f"conv_transpose{len(ws) - 2}d")
        bias = None if b is None else _as_torch(torch, b)
        y = fn(_as_torch(torch, x), _as_torch(torch, w), bias, **options)
        return _finish(y.detach().numpy(), dtype)

    taps = (xs[1] // groups) * math.prod(ws[2:])
    scale = _amax(x) * float(np.max(np.sum(np.abs(w), axis=(0, *range(2, w.ndim)))))
    scale += _amax(b) if b is not None else 0.0
    n = math.prod(s * stride + k for s, k in zip(xs[2:], ws[2:]))
    arrays = (x, w) if b is None else (x, w, b)
    label = f"x{xs} w{ws} stride={stride} padding={padding} output_padding={out_pad} groups={groups} dilation={dilation} {dtype}"
    return Case("conv_transpose", label, arrays, call, oracle, _bound(dtype, taps, n, scale))


_GRAD_GEOMETRIES = (
    _Geometry((2, 4, 9, 10), (6, 4, 3, 3), stride=2, padding=1),
    _Geometry((2, 4, 9, 10), (6, 2, 3, 3), padding="same", dilation=2, groups=2),
    _Geometry((2, 4, 9, 10), (6, 4, 3, 3), padding=((1, 0), (2, 1)), stride=(1, 2)),
    _Geometry((2, 3, 17), (4, 3, 5), stride=3, padding=2),
)


def _grads_oracle(g: _Geometry, x: np.ndarray, w: np.ndarray, gy: np.ndarray):
    """torch autograd through the forward conv (complex: torch's convention)."""
    torch = _torch()
    if torch is None:
        return None
    stride, dilation, pads = g.resolved()
    xpad = _as_torch(torch, np.pad(_wide(x), [(0, 0), (0, 0), *pads]), requires_grad=True)
    wt = _as_torch(torch, w, requires_grad=True)
    y = _torch_conv(torch, xpad, wt, stride, dilation, g.groups)
    gx, gw = torch.autograd.grad(y, (xpad, wt), _as_torch(torch, gy))
    crop = (slice(None), slice(None)) + tuple(
        slice(lo, lo + n) for (lo, _), n in zip(pads, g.x[2:])
    )
    return gx.detach().numpy()[crop], gw.detach().numpy()


def _grad_cases(g: _Geometry, rng: np.random.Generator, dtype: str) -> list[Case]:
    x, w = _data(rng, g.x, dtype), _data(rng, g.w, dtype)
    gy = _data(rng, (g.x[0], g.w[0], *g.out_spatial()), dtype)
    options = dict(stride=g.stride, padding=g.padding, dilation=g.dilation, groups=g.groups)
    n = math.prod(s + k for s, k in zip(g.x[2:], g.w[2:]))

    def input_grad(w_, gy_):
        return portconv.conv_input_grad(g.x, w_, gy_, **options)

    def weight_grad(x_, gy_):
        return portconv.conv_weight_grad(x_, g.w, gy_, **options)

    def oracle(which):
        def run():
            grads = _grads_oracle(g, x, w, gy)
            return None if grads is None else _finish(grads[which], dtype)

        return run

    w_in = float(np.max(np.sum(np.abs(w), axis=(0, *range(2, w.ndim)))))
    bound_in = _bound(dtype, g.w[0] * math.prod(g.w[2:]), n, _amax(gy) * w_in)
    gy_out = float(np.max(np.sum(np.abs(gy), axis=(0, *range(2, gy.ndim)))))
    bound_w = _bound(dtype, g.x[0] * math.prod(gy.shape[2:]), n, _amax(x) * gy_out)
    label = f"{g.describe()} {dtype}"
    return [
        Case("conv_input_grad", label, (w, gy), input_grad, oracle(0), bound_in),
        Case("conv_weight_grad", label, (x, gy), weight_grad, oracle(1), bound_w),
    ]


def build_cases(seed: int = SEED) -> list[Case]:
    """The fixed, seeded list of cases, grouped by function in :data:`FUNCTIONS` order."""
    rng = np.random.default_rng(seed)
    cases = _signal_cases(rng) + _signal2d_cases(rng) + _conv_cases(rng)
    cases += [_transpose_case(g, rng, dt) for g in _TRANSPOSE_GEOMETRIES for dt in DTYPES]
    for g in _GRAD_GEOMETRIES:
        for dt in DTYPES:
            cases += _grad_cases(g, rng, dt)
    return sorted(cases, key=lambda c: FUNCTIONS.index(c.func))


# --- comparing -----------------------------------------------------------------------


def deviation(got: np.ndarray, want: np.ndarray, bound: float) -> float:
    """``max|got - want|`` in units of ``bound``; integers: 0 if equal, else inf."""
    got, want = np.asarray(got), np.asarray(want)
    if got.shape != want.shape:
        return math.inf
    if bound == 0.0:
        return 0.0 if np.array_equal(got, want) else math.inf
    return float(np.max(np.abs(got - want), initial=0.0)) / bound


@dataclasses.dataclass
class _Tally:
    cases: int = 0
    max_deviation: float = 0.0
    failures: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    skipped: int = 0

    def add(self, case: Case, dev: float, error: str | None = None) -> None:
        self.cases += 1
        self.max_deviation = max(self.max_deviation, dev)
        if dev > 1.0 or error:
            failure = {"case": case.label, "deviation": _json_float(dev)}
            if error:
                failure["error"] = error
            self.failures.append(failure)

    def as_dict(self) -> dict[str, Any]:
        return {
            "cases": self.cases,
            "max_deviation": _json_float(self.max_deviation),
            "pass": not self.failures,
            "skipped": self.skipped,
            "failures": self.failures,
        }


def _json_float(x: float) -> float | str:
    return x if math.isfinite(x) else "inf"


def _error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"


def _run_numpy(cases, progress, step, total):
    """portconv on NumPy for every case, each checked against its oracle."""
    numpy_backend = load("numpy")
    results: dict[int, np.ndarray | None] = {}
    tallies = {f: _Tally() for f in FUNCTIONS}
    for func in FUNCTIONS:
        step += 1
        if progress is not None:
            progress(step, total, f"numpy: {func} against SciPy/torch")
        for i, case in enumerate(cases):
            if case.func != func:
                continue
            try:
                results[i] = numpy_backend.run(case.call, *case.arrays)
            except Exception as exc:
                results[i] = None
                tallies[func].add(case, math.inf, _error(exc))
                continue
            want = case.oracle()
            if want is None:
                tallies[func].skipped += 1
                continue
            tallies[func].add(case, deviation(results[i], want, case.bound))
    return results, tallies, step


def _run_backend(backend: Backend, cases, numpy_results, progress, step, total):
    tallies = {f: _Tally() for f in FUNCTIONS}
    for func in FUNCTIONS:
        step += 1
        if progress is not None:
            progress(step, total, f"{backend.name}: {func}")
        for i, case in enumerate(cases):
            if case.func != func:
                continue
            reference = numpy_results.get(i)
            if reference is None:  # NumPy failed: nothing to compare with
                tallies[func].skipped += 1
                continue
            try:
                got = backend.run(case.call, *case.arrays)
            except Exception as exc:
                tallies[func].add(case, math.inf, _error(exc))
                continue
            if got.dtype != reference.dtype:
                tallies[func].add(
                    case, math.inf, f"dtype {got.dtype}, NumPy gives {reference.dtype}"
                )
                continue
            tallies[func].add(case, deviation(got, reference, case.bound))
    return tallies, step


def machine_name(backends: Sequence[Backend] = ()) -> str:
    """The results' file suffix: ``$PORTCONV_MACHINE``, else the benchmark suite's name.

    The benchmark suite names the CPU (``cpu-2core-avx512``); when a GPU
    backend is among ``backends`` its model is appended, so GPU reports do not
    overwrite CPU ones.
    """
    name = os.environ.get("PORTCONV_MACHINE")
    if not name:
        try:
            from .bench import machine_name as bench_machine_name

            name = bench_machine_name()
        except ImportError:
            name = f"cpu-{os.cpu_count()}core-{platform.machine()}"
        gpus = [b.device for b in backends if "cuda" in b.device or "gpu" in b.device]
        if gpus:
            name += "-" + gpus[0].split("(")[-1].rstrip(")")
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-").lower()


def _versions(backends: Sequence[Backend]) -> dict[str, str]:
    versions = {"portconv": portconv.__version__, "numpy": np.__version__}
    for module in ("array_api_compat", "scipy", "torch"):
        try:
            versions[module] = str(importlib.import_module(module).__version__)
        except ImportError:
            pass
    for b in backends:
        versions[b.library] = b.version
    return versions


def run_equivalence(
    backends: list[str] | None = None,
    md_path: str | os.PathLike | None = None,
    json_path: str | os.PathLike | None = None,
    progress: Callable[[int, int, str], None] | None = None,
) -> dict[str, Any]:
    """Run every case on ``backends`` and compare with NumPy (and NumPy with its oracles).

    Parameters
    ----------
    backends : list of str, optional
        Backend names (see :data:`portconv.cli.backends.NAMES`); ``None`` or
        empty: every backend that loads here.  NumPy is always included: it
        is the reference.
    md_path, json_path : path, optional
        Where to write the Markdown table and the JSON report.
    progress : callable, optional
        ``progress(step, total, message)`` before each (backend, function).

    Returns
    -------
    dict
        ``{"machine", "generated", "versions", "backends", "bound", "results",
        "pass"}``; ``results[function][backend]`` has ``cases``,
        ``max_deviation`` (bound units, ``"inf"`` for a crash or an inexact
        integer), ``pass``, ``skipped`` and ``failures``.

    Raises
    ------
    BackendError
        A backend asked for is unknown, not installed, or has no device.
    """
    selected = [b for b in resolve(backends) if b.name != "numpy"]
    cases = build_cases()
    total = len(FUNCTIONS) * (1 + len(selected))
    numpy_results, numpy_tally, step = _run_numpy(cases, progress, 0, total)
    tallies = {"numpy": numpy_tally}
    for backend in selected:
        tallies[backend.name], step = _run_backend(
            backend, cases, numpy_results, progress, step, total
        )
    names = list(tallies)
    results = {f: {name: tallies[name][f].as_dict() for name in names} for f in FUNCTIONS}
    report = {
        "machine": machine_name(selected),
        "generated": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "versions": _versions([load("numpy"), *selected]),
        "backends": names,
        "bound": "16 * eps(dtype) * (sqrt(taps) + log2(n)) * max|x| * sum|k|; integers exact",
        "reference": "numpy: float64 scipy.signal (SciPy-style) / torch (NN); others: portconv on numpy",
        "results": results,
        "pass": all(r["pass"] for per in results.values() for r in per.values()),
    }
    if json_path is not None:
        _write(json_path, json.dumps(report, indent=2) + "\n")
    if md_path is not None:
        _write(md_path, format_markdown(report))
    return report


def _write(path: str | os.PathLike, text: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def _cell(r: dict[str, Any]) -> str:
    if r["cases"] == 0:
        return "— (no reference)" if r["skipped"] else "—"
    mark = "✓" if r["pass"] else "✗"
    dev = r["max_deviation"]
    shown = "inf" if dev == "inf" else f"{dev:.2g}"
    return f"{mark} {shown} ({r['cases']})"


def _rows(report: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    names = report["backends"]
    header = ["function"] + [n + (" vs SciPy/torch" if n == "numpy" else "") for n in names]
    rows = [[f] + [_cell(report["results"][f][n]) for n in names] for f in FUNCTIONS]
    return header, rows


def format_table(report: dict[str, Any], max_failures: int = 5) -> str:
    """The function x backend table as plain text, and the first failures."""
    header, rows = _rows(report)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(header, widths)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.append(
        "cells: ✓/✗, largest deviation in units of the error bound (pass <= 1), (cases); "
        "numpy against a float64 SciPy/torch oracle, every other backend against numpy"
    )
    shown = 0
    for f in FUNCTIONS:
        for name in report["backends"]:
            for failure in report["results"][f][name]["failures"]:
                if shown < max_failures:
                    detail = failure.get("error") or f"deviation {failure['deviation']}"
                    lines.append(f"✗ {name} {f} [{failure['case']}]: {detail}")
                shown += 1
    if shown > max_failures:
        lines.append(f"... and {shown - max_failures} more failures (see the JSON report)")
    return "\n".join(lines)


def format_markdown(report: dict[str, Any]) -> str:
    """The report as Markdown: header, versions, the table, every failure."""
    header, rows = _rows(report)
    versions = ", ".join(f"{k} {v}" for k, v in report["versions"].items())
    lines = [
        f"# portconv equivalence report: {report['machine']}",
        "",
        f"Generated {report['generated']} with {versions}.",
        "",
        f"Deviation in units of the problem's error bound `{report['bound']}`; a case passes at <= 1. "
        "The numpy column compares portconv on NumPy with a float64 oracle (`scipy.signal` for the "
        "SciPy-style functions, torch for the deep-learning ones); every other column compares "
        "that backend with portconv on NumPy. JAX runs jitted with x64 enabled; dask runs with "
        "chunks of at most 3 per axis. Cells: pass mark, largest deviation, (number of cases).",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    failures = [
        f"- {name} `{f}` {fl['case']}: {fl.get('error') or 'deviation ' + str(fl['deviation'])}"
        for f in FUNCTIONS
        for name in report["backends"]
        for fl in report["results"][f][name]["failures"]
    ]
    lines += ["", "## Failures", ""] + (failures or ["None."])
    return "\n".join(lines) + "\n"


def add_backend_option(parser: argparse.ArgumentParser) -> None:
    """``--backend NAME ...`` (repeatable; commas allowed)."""
    parser.add_argument(
        "--backend",
        dest="backends",
        action="append",
        default=[],
        metavar="NAME",
        help="a backend to run, repeatable or comma separated (numpy, array_api_strict, jax, "
        "jax-gpu, torch, torch-cuda, cupy, dask; default: every one installed here)",
    )


def split_names(values: Sequence[str]) -> list[str]:
    """Backend names from repeated and comma-separated ``--backend`` values."""
    return [part.strip() for v in values for part in v.split(",") if part.strip()]


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """The options of ``portconv check`` / ``python -m portconv.cli.equivalence``."""
    parser = parser or argparse.ArgumentParser(
        prog="python -m portconv.cli.equivalence",
        description="Compare every public portconv function on every backend with NumPy.",
    )
    add_backend_option(parser)
    parser.add_argument(
        "--out-dir",
        metavar="DIR",
        help="write equivalence-<machine>.md and .json into DIR (e.g. benchmarks/results)",
    )
    parser.add_argument("--md", metavar="PATH", help="write the Markdown report to PATH")
    parser.add_argument("--json", metavar="PATH", help="write the JSON report to PATH")
    parser.epilog = "exit codes: 0 all cases within bound; 1 a deviation beyond its bound; 2 usage error or backend unavailable"
    return parser


def run_cli(args: argparse.Namespace) -> int:
    """Run the report for parsed ``args``; print the table; return the exit code."""
    from .backends import Progress

    names = split_names(args.backends)
    progress = Progress()
    try:
        md, js = args.md, args.json
        if args.out_dir:
            stem = Path(args.out_dir) / f"equivalence-{machine_name(resolve(names))}"
            md = md or f"{stem}.md"
            js = js or f"{stem}.json"
        report = run_equivalence(names, md, js, progress)
    except BackendError as exc:
        progress.close()
        print(f"portconv check: error: {exc}", file=sys.stderr)
        return 2
    progress.close()
    print(format_table(report))
    for path in (md, js):
        if path:
            print(f"wrote {path}")
    return 0 if report["pass"] else 1


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m portconv.cli.equivalence``; returns the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error (2)
        return int(exc.code or 0)
    return run_cli(args)


if __name__ == "__main__":
    raise SystemExit(main())
