"""The benchmark suite of issue 4: portconv against native anchors, per backend.

Every case is timed for portconv on each selected backend (NumPy, JAX under
``jax.jit``, torch under ``torch.no_grad``) and for the native functions the
libraries ship (SciPy, torch, ``jax.lax``), all in one process and
interleaved: each repetition runs every method once, in a fresh (seeded) order,
each timed call right after an untimed call of the same method, and the
reported time is the median over repetitions after one warm-up call.

Only this module (and the rest of :mod:`portconv.cli`) imports array
libraries; it imports them lazily, so ``import portconv.cli.bench`` is cheap.

Run it as ``python benchmarks/run.py``, ``python -m portconv.cli.bench`` or
``portconv bench``; see :func:`main` for the flags and :func:`run_suite` for
the result layout.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import gc
import importlib.util
import json
import math
import os
import platform
import random
import statistics
import subprocess
import sys
import time
import tracemalloc
import zlib
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = [
    "BACKENDS",
    "FULL",
    "QUICK",
    "Case",
    "Sizes",
    "cases",
    "default_paths",
    "describe_machine",
    "loadavg",
    "machine_name",
    "main",
    "reexec_env",
    "run_suite",
    "time_interleaved",
]

#: portconv backends the suite knows, in report order.
BACKENDS = ("numpy", "jax", "torch")

#: Which anchor libraries count as "native" for each portconv backend.
_FAMILIES = {"numpy": ("scipy", "torch"), "jax": ("jax",), "torch": ("torch",)}

#: Environment overrides that slow OpenBLAS down (PERF-NOTES: about 2x); they
#: act when OpenBLAS loads, so :func:`main` re-executes itself without them.
DROP_ENV = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
_REEXEC_MARK = "PORTCONV_BENCH_REEXEC"

_THREAD_ENV = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
#: Environment variables recorded with every result.
_RECORDED_ENV = (
    DROP_ENV
    + _THREAD_ENV
    + (
        "XLA_FLAGS",
        "JAX_ENABLE_X64",
        "JAX_PLATFORMS",
        "PORTCONV_WORKSPACE_BYTES",
        "PORTCONV_KEEP_HEAP",
        "MALLOC_MMAP_THRESHOLD_",
        "MALLOC_TRIM_THRESHOLD_",
    )
)

# Sleep between two timed calls: thread pools of the previous library (OpenMP,
# OpenBLAS, XLA) spin for a while after a call and steal the 2 cores from the
# next one (PERF-NOTES: up to 30x on a NumPy call right after a jax.jit call).
# OpenBLAS's workers spin for about 2^28 cycles (~0.1 s): interleaved with
# NumPy calls, torch's 7x7 stride-2 stem took 68 ms after a 10 ms pause, 54 ms
# after 50 ms and 27 ms (its time alone) after 150 ms.
_PAUSE_S = 0.15


# --------------------------------------------------------------------------
# The cases


@dataclasses.dataclass(frozen=True)
class Sizes:
    """Problem sizes and repetition policy of one suite mode."""

    image: int = 1024
    kernels: tuple[int, ...] = (3, 11, 31)
    signal: int = 2**20
    taps: int = 1025
    batch: int = 8
    dense: tuple[int, ...] = (56, 28)
    stem: int = 224
    depthwise: int = 28
    volume: int = 64
    transposed: int = 28
    channel_div: int = 1  # divides the channel counts (tests shrink them)
    runs: int = 5  # minimum timed repetitions
    max_runs: int = 15  # more repetitions while they fit in target_s
    target_s: float = 8.0  # time budget of the timed repetitions of one case


#: The full suite of issue 4.
FULL = Sizes()
#: ``--quick``: small shapes, batch 1, three repetitions.
QUICK = Sizes(
    image=256,
    signal=2**16,
    taps=257,
    batch=1,
    volume=32,
    runs=3,
    max_runs=3,
    target_s=1.0,
)

_SIGNAL_ANCHORS = (
    "scipy.signal.correlate",
    "scipy.signal.fftconvolve",
    "scipy.signal.oaconvolve",
    "torch.conv{n}d",
    "lax.conv_general_dilated",
    "jax.scipy.signal.fftconvolve",
)
_IMAGE_ANCHORS = ("scipy.ndimage.correlate",) + _SIGNAL_ANCHORS
_CONV_ANCHORS = ("torch.conv{n}d", "lax.conv_general_dilated")
# Issue 4 names torch in both memory layouts (the best of both) for the dense
# layers and "the same anchors" for the stem and the depthwise layer.  Until
# 2026-11-29 (night) those two had NCHW only; channels-last depthwise ran
# 2.7-16 ms (median 10) where NCHW took 5.5-20 (median 13) in one run of 11
# repetitions 0.15 s apart, without lead-in calls.
_LAYER_ANCHORS = ("torch.conv{n}d", "torch.conv{n}d[channels_last]", "lax.conv_general_dilated")


@dataclasses.dataclass(frozen=True)
class Case:
    """One benchmarked problem, float32.

    ``op`` is ``"correlate"`` (``portconv.correlate(a, b, mode="same")``),
    ``"conv"``, ``"conv_transpose"`` or ``"train"`` (forward, input gradient
    and weight gradient of a ``conv`` layer).  ``shapes`` are those of
    ``(x, w)`` in torch layouts; ``anchors`` names entries of the anchor
    registry (``{n}`` stands for the number of spatial dimensions).
    """

    name: str
    op: str
    shapes: tuple[tuple[int, ...], ...]
    anchors: tuple[str, ...]
    stride: int = 1
    padding: int = 0
    groups: int = 1

    @property
    def nsp(self) -> int:
        """Number of spatial dimensions."""
        if self.op == "correlate":
            return len(self.shapes[0])
        return len(self.shapes[0]) - 2

    @property
    def out_shape(self) -> tuple[int, ...]:
        """Shape of the (forward) result."""
        x, w = self.shapes[0], self.shapes[1]
        if self.op == "correlate":
            return x
        k = w[2:]
        if self.op == "conv_transpose":
            sp = tuple((n - 1) * self.stride - 2 * self.padding + kk for n, kk in zip(x[2:], k))
            return (x[0], w[1] * self.groups) + sp
        sp = tuple((n + 2 * self.padding - kk) // self.stride + 1 for n, kk in zip(x[2:], k))
        return (x[0], w[0]) + sp

    @property
    def macs(self) -> int:
        """Multiply-accumulates of the direct method (also for FFT methods)."""
        x, w = self.shapes[0], self.shapes[1]
        if self.op == "correlate":
            return math.prod(x) * math.prod(w)
        if self.op == "conv_transpose":  # the scatter form torch counts
            return x[0] * math.prod(x[2:]) * math.prod(w)
        forward = math.prod(self.out_shape) * math.prod(w[1:])
        return 3 * forward if self.op == "train" else forward

    @property
    def label(self) -> str:
        """The shapes in words, for tables."""
        x, w = self.shapes[0], self.shapes[1]
        dims = "x".join
        if self.op == "correlate":
            return f"{dims(map(str, x))} * {dims(map(str, w))}, same"
        k = dims(map(str, w[2:]))
        c_out = self.out_shape[1]
        text = f"{dims(map(str, x))}->{c_out}, {k}"
        if self.stride > 1:
            text += f" s{self.stride}"
        if self.padding:
            text += f" p{self.padding}"
        if self.groups > 1:
            text += f" g{self.groups}"
        return text

    def inputs(self) -> tuple[Any, ...]:
        """Deterministic float32 NumPy inputs (``x``, ``w`` and, for training, ``gy``)."""
        import numpy as np

        rng = np.random.default_rng(zlib.crc32(self.name.encode()))
        shapes = self.shapes + ((self.out_shape,) if self.op == "train" else ())
        return tuple(rng.standard_normal(s, dtype=np.float32) for s in shapes)


def cases(sizes: Sizes) -> list[Case]:
    """The cases of issue 4 at ``sizes``.

    Parameters
    ----------
    sizes : Sizes
        :data:`FULL`, :data:`QUICK` or a custom instance.

    Returns
    -------
    list of Case
        Image correlations (one per kernel size), the long 1-d signal, dense
        layers, the ResNet stem, a depthwise layer, a 3-d volume, a transposed
        convolution and the training step of the first dense layer.
    """
    b = sizes.batch

    def ch(c: int) -> int:
        return max(1, c // sizes.channel_div)

    out: list[Case] = [
        Case(f"image-{k}x{k}", "correlate", ((sizes.image,) * 2, (k, k)), _IMAGE_ANCHORS)
        for k in sizes.kernels
    ]
    out.append(
        Case(f"signal-{sizes.taps}", "correlate", ((sizes.signal,), (sizes.taps,)), _SIGNAL_ANCHORS)
    )
    for s, c in zip(sizes.dense, (64, 128)):
        shapes = ((b, ch(c), s, s), (ch(c), ch(c), 3, 3))
        out.append(Case(f"dense-{s}", "conv", shapes, _LAYER_ANCHORS, padding=1))
    stem = ((b, 3, sizes.stem, sizes.stem), (ch(64), 3, 7, 7))
    out.append(Case("stem-7x7s2", "conv", stem, _LAYER_ANCHORS, stride=2, padding=3))
    c = ch(256)
    dw = ((b, c, sizes.depthwise, sizes.depthwise), (c, 1, 3, 3))
    out.append(Case("depthwise-3x3", "conv", dw, _LAYER_ANCHORS, padding=1, groups=c))
    v, cv = sizes.volume, ch(8)
    out.append(
        Case(
            "volume-3x3x3", "conv", ((1, cv, v, v, v), (cv, cv, 3, 3, 3)), _CONV_ANCHORS, padding=1
        )
    )
    t = sizes.transposed
    tr = ((b, ch(64), t, t), (ch(64), ch(32), 4, 4))
    out.append(
        Case(
            "transpose-4x4s2",
            "conv_transpose",
            tr,
            ("torch.conv_transpose{n}d", "lax.conv_transpose"),
            stride=2,
            padding=1,
        )
    )
    s, c = sizes.dense[0], ch(64)
    train = ((b, c, s, s), (c, c, 3, 3))
    out.append(Case(f"train-dense-{s}", "train", train, ("torch.autograd", "jax.vjp"), padding=1))
    return out


# --------------------------------------------------------------------------
# What is timed: pure functions of arrays, per library


def portconv_fn(case: Case) -> Callable[..., Any]:
    """portconv's call of ``case``, a function of its arrays (as the suite times it)."""
    import portconv as pc

    kw = {"stride": case.stride, "padding": case.padding, "groups": case.groups}
    if case.op == "correlate":
        return lambda a, b: pc.correlate(a, b, mode="same")
    if case.op == "conv":
        return lambda x, w: pc.conv(x, w, **kw)
    if case.op == "conv_transpose":
        return lambda x, w: pc.conv_transpose(x, w, **kw)

    def step(x, w, gy):
        y = pc.conv(x, w, **kw)
        gx = pc.conv_input_grad(tuple(x.shape), w, gy, **kw)
        gw = pc.conv_weight_grad(x, tuple(w.shape), gy, **kw)
        return y, gx, gw

    return step


def _flip(a: Any) -> Any:
    return a[(slice(None, None, -1),) * a.ndim]


def _scipy_anchor(name: str) -> Callable[[Case, tuple], tuple[Callable, tuple]]:
    def build(case: Case, args: tuple) -> tuple[Callable, tuple]:
        import scipy.ndimage
        import scipy.signal

        if name == "ndimage.correlate":
            return (lambda a, b: scipy.ndimage.correlate(a, b, mode="constant")), args
        if name == "signal.correlate":
            return (lambda a, b: scipy.signal.correlate(a, b, mode="same")), args
        fn = getattr(scipy.signal, name.split(".")[1])
        return (lambda a, b: fn(a, _flip(b), mode="same")), args

    return build


def _torch_conv(channels_last: bool) -> Callable[[Case, tuple], tuple[Callable, tuple]]:
    def build(case: Case, args: tuple) -> tuple[Callable, tuple]:
        import torch

        conv = getattr(torch.nn.functional, f"conv{case.nsp}d")
        if case.op == "correlate":
            return (lambda a, b: conv(a[None, None], b[None, None], padding="same")[0, 0]), args
        if channels_last:
            args = tuple(a.contiguous(memory_format=torch.channels_last) for a in args)

        def f(x, w):
            return conv(x, w, stride=case.stride, padding=case.padding, groups=case.groups)

        return f, args

    return build


def _torch_conv_transpose(case: Case, args: tuple) -> tuple[Callable, tuple]:
    import torch

    conv_t = getattr(torch.nn.functional, f"conv_transpose{case.nsp}d")

    def f(x, w):
        return conv_t(x, w, stride=case.stride, padding=case.padding, groups=case.groups)

    return f, args


def _torch_autograd(case: Case, args: tuple) -> tuple[Callable, tuple]:
    import torch

    conv = getattr(torch.nn.functional, f"conv{case.nsp}d")

    def f(x, w, gy):
        with torch.enable_grad():
            x = x.detach().requires_grad_()
            w = w.detach().requires_grad_()
            y = conv(x, w, stride=case.stride, padding=case.padding, groups=case.groups)
            gx, gw = torch.autograd.grad(y, (x, w), gy)
        return y.detach(), gx, gw

    return f, args


def _lax_forward(case: Case) -> Callable[[Any, Any], Any]:
    from jax import lax

    strides = (case.stride,) * case.nsp
    pads = [(case.padding, case.padding)] * case.nsp
    return lambda x, w: lax.conv_general_dilated(
        x, w, strides, pads, feature_group_count=case.groups
    )


def _lax_conv(case: Case, args: tuple) -> tuple[Callable, tuple]:
    from jax import lax

    if case.op == "correlate":
        ones = (1,) * case.nsp
        return (
            lambda a, b: lax.conv_general_dilated(a[None, None], b[None, None], ones, "SAME")[0, 0]
        ), args
    return _lax_forward(case), args


def _lax_conv_transpose(case: Case, args: tuple) -> tuple[Callable, tuple]:
    from jax import lax

    spatial = "DHW"[-case.nsp :]
    k = case.shapes[1][2:]
    pads = [(kk - 1 - case.padding,) * 2 for kk in k]
    dn = ("NC" + spatial, "OI" + spatial, "NC" + spatial)

    def f(x, w):
        # torch's (C_in, C_out, *k) weight is the forward conv's OIHW kernel
        return lax.conv_transpose(
            x, w, (case.stride,) * case.nsp, pads, dimension_numbers=dn, transpose_kernel=True
        )

    return f, args


def _jax_vjp(case: Case, args: tuple) -> tuple[Callable, tuple]:
    import jax

    forward = _lax_forward(case)

    def f(x, w, gy):
        y, vjp = jax.vjp(forward, x, w)
        gx, gw = vjp(gy)
        return y, gx, gw

    return f, args


def _jax_fftconvolve(case: Case, args: tuple) -> tuple[Callable, tuple]:
    import jax.scipy.signal

    return (lambda a, b: jax.scipy.signal.fftconvolve(a, _flip(b), mode="same")), args


#: anchor name -> (library its arrays live in, builder(case, native args) -> (f, args))
_ANCHORS: dict[str, tuple[str, Callable[[Case, tuple], tuple[Callable, tuple]]]] = {
    "scipy.ndimage.correlate": ("scipy", _scipy_anchor("ndimage.correlate")),
    "scipy.signal.correlate": ("scipy", _scipy_anchor("signal.correlate")),
    "scipy.signal.fftconvolve": ("scipy", _scipy_anchor("signal.fftconvolve")),
    "scipy.signal.oaconvolve": ("scipy", _scipy_anchor("signal.oaconvolve")),
    "torch.conv{n}d": ("torch", _torch_conv(False)),
    "torch.conv{n}d[channels_last]": ("torch", _torch_conv(True)),
    "torch.conv_transpose{n}d": ("torch", _torch_conv_transpose),
    "torch.autograd": ("torch", _torch_autograd),
    "lax.conv_general_dilated": ("jax", _lax_conv),
    "lax.conv_transpose": ("jax", _lax_conv_transpose),
    "jax.vjp": ("jax", _jax_vjp),
    "jax.scipy.signal.fftconvolve": ("jax", _jax_fftconvolve),
}

#: import name of each library (anchor libraries and portconv backends)
_MODULES = {"numpy": "numpy", "scipy": "scipy", "torch": "torch", "jax": "jax"}


def _native(library: str, arrays: tuple) -> tuple:
    """NumPy arrays -> arrays of ``library`` on its CPU device."""
    if library == "torch":
        import torch

        return tuple(torch.from_numpy(a.copy()) for a in arrays)
    if library == "jax":
        import jax

        return tuple(jax.device_put(a) for a in arrays)
    return arrays


def _runner(library: str, f: Callable, args: tuple) -> Callable[[], Any]:
    """A zero-argument call of ``f(*args)`` that returns only when the work is done."""
    if library == "jax":
        import jax

        jitted = jax.jit(f)
        return lambda: jax.block_until_ready(jitted(*args))
    if library == "torch":
        import torch

        def run() -> Any:
            with torch.no_grad():
                return f(*args)

        return run
    return lambda: f(*args)


def _to_numpy(out: Any) -> Any:
    import numpy as np

    if isinstance(out, tuple):
        return tuple(_to_numpy(o) for o in out)
    if hasattr(out, "detach"):
        return out.detach().cpu().numpy()
    return np.asarray(out)


def _rel_err(out: Any, ref: Any) -> float | None:
    """``max|out - ref| / max|ref|`` over all results; ``None`` on a shape mismatch."""
    import numpy as np

    outs = out if isinstance(out, tuple) else (out,)
    refs = ref if isinstance(ref, tuple) else (ref,)
    if len(outs) != len(refs) or any(o.shape != r.shape for o, r in zip(outs, refs)):
        return None
    errs = [
        float(np.max(np.abs(o - r)) / max(float(np.max(np.abs(r))), 1e-30))
        for o, r in zip(outs, refs)
    ]
    return max(errs)


# --------------------------------------------------------------------------
# Timing


@dataclasses.dataclass
class _Method:
    name: str
    library: str  # where its arrays live: numpy, scipy, torch or jax
    role: str  # "portconv" or "anchor"
    run: Callable[[], Any] | None = None
    times: list[float] = dataclasses.field(default_factory=list)
    first_s: float | None = None
    peak_bytes: int | None = None
    strategy: str | None = None
    max_rel_err: float | None = None
    error: str | None = None

    @property
    def median(self) -> float | None:
        return statistics.median(self.times) if self.times and self.error is None else None

    def record(self) -> dict[str, Any]:
        return {
            "method": self.name,
            "library": self.library,
            "role": self.role,
            "median_s": self.median,
            "times_s": self.times,
            "first_call_s": self.first_s,
            "peak_bytes": self.peak_bytes,
            "strategy": self.strategy,
            "max_rel_err": self.max_rel_err,
            "error": self.error,
        }


@contextlib.contextmanager
def _recording_plans():
    """Collect the strategy of every plan portconv makes inside the block.

    Wraps ``portconv._core.plan_correlation`` for the duration (the core is
    not changed; this is how the report names the strategy ``auto`` chose).
    """
    from portconv import _core

    seen: list[str] = []
    original = _core.plan_correlation

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        plan = original(*args, **kwargs)
        seen.append(plan.strategy)
        return plan

    _core.plan_correlation = wrapper
    try:
        yield seen
    finally:
        _core.plan_correlation = original


def _call(run: Callable[[], Any]) -> tuple[float, Any]:
    gc_was = gc.isenabled()
    gc.disable()
    try:
        start = time.perf_counter()
        out = run()
        return time.perf_counter() - start, out
    finally:
        if gc_was:
            gc.enable()


def time_interleaved(
    runs: dict[str, Callable[[], Any]],
    min_runs: int,
    max_runs: int,
    target_s: float,
    first: dict[str, float] | None = None,
    pause_s: float | None = None,
    lead_in: bool = False,
) -> tuple[dict[str, list[float]], dict[str, float]]:
    """Time zero-argument callables interleaved, after one warm-up call each.

    Parameters
    ----------
    runs : dict of str to callable
        The methods; each call must return only when its work is done.
    min_runs, max_runs : int
        Bounds on the number of repetitions; between them, as many as the
        warm-up times say fit in ``target_s``.
    target_s : float
        Time budget of the repetitions.
    first : dict of str to float, optional
        Seconds of warm-up calls already made; then none are made here.
    pause_s : float, optional
        Sleep before each call, ``_PAUSE_S`` by default; calls of one
        library share its thread pools and may pause less.
    lead_in : bool, optional
        Call each method once, untimed, right before each of its timed
        calls (after the pause), so the timed call runs in that library's
        own steady state -- its caches, thread pools and allocator as its
        previous call left them -- as in a loop of that call, instead of
        in whatever state the method drawn before it left.

    Returns
    -------
    times : dict of str to list of float
        Seconds of every timed call per method.
    first : dict of str to float
        Seconds of the warm-up call (includes JIT compilation).

    Notes
    -----
    Each repetition calls every method once, in an order drawn afresh for
    each repetition (seeded: a rerun repeats it), with a short pause before
    each call so the previous library's spinning thread pools go idle.  A
    fixed rotation would give every method the same predecessor in every
    repetition, and what a predecessor leaves behind biases the next call
    each time: memory it freed goes back to the system, and the next call
    faults it back in.  The same NumPy plan of the dense 8x64x56^2 layer ran
    17.5 ms always right after the whole-batch form and 13.4 ms always
    right after itself.

    With ``lead_in`` the spread shrinks and both sides run faster; in one
    process, 9 repetitions 0.15 s apart, without and with it (min-max ms):
    portconv's dense 8x64x56^2 on NumPy 15.6-23.3 and 13.3-14.2, torch's
    channels-last depthwise 8x256x28^2 1.6-9.3 and 0.73-1.29; torch's
    channels-last dense layer, median 7.6 and 5.0 (max 12.1 and 35.1).
    """
    names = list(runs)
    pause_s = _PAUSE_S if pause_s is None else pause_s
    if first is None:
        first = {name: _call(runs[name])[0] for name in names}
    calls = 2 if lead_in else 1
    per_round = calls * sum(first[name] for name in names) + pause_s * len(names)
    reps = max(min_runs, min(max_runs, int(target_s / max(per_round, 1e-9))))
    times: dict[str, list[float]] = {name: [] for name in names}
    gc.collect()  # once: a full collection with torch loaded takes ~0.1 s
    for rep in range(reps):
        for name in random.Random(rep).sample(names, len(names)):
            time.sleep(pause_s)
            if lead_in:
                runs[name]()
            times[name].append(_call(runs[name])[0])
    return times, first


def _build_methods(case: Case, backends: Sequence[str], libraries: set[str]) -> list[_Method]:
    arrays = case.inputs()
    natives: dict[str, tuple] = {}

    def native(library: str) -> tuple:
        if library not in natives:
            natives[library] = _native(library, arrays)
        return natives[library]

    methods = []
    for backend in backends:
        m = _Method(f"portconv[{backend}]", backend, "portconv")
        try:
            m.run = _runner(backend, portconv_fn(case), native(backend))
        except Exception as exc:  # a broken backend is reported, not fatal
            m.error = f"{type(exc).__name__}: {exc}"
        methods.append(m)
    for key in case.anchors:
        library, build = _ANCHORS[key]
        if library not in libraries:
            continue
        m = _Method(key.format(n=case.nsp), library, "anchor")
        try:
            f, args = build(case, native(library))
            m.run = _runner(library, f, args)
        except Exception as exc:
            m.error = f"{type(exc).__name__}: {exc}"
        methods.append(m)
    return methods


def _warm_up(methods: list[_Method], progress: Callable[[str], None]) -> None:
    """One call each: first-call time, chosen strategy, agreement with an anchor."""
    outputs: dict[str, Any] = {}
    for m in methods:
        if m.run is None:
            continue
        try:
            with _recording_plans() as seen:
                m.first_s, out = _call(m.run)
            outputs[m.name] = _to_numpy(out)
        except Exception as exc:
            m.error, m.run = f"{type(exc).__name__}: {exc}", None
            continue
        if m.role == "portconv" and seen:
            m.strategy = "/".join(dict.fromkeys(seen))
        if m.first_s > 1.0:
            progress(f"  first call of {m.name}: {m.first_s:.1f} s")
    order = {"scipy": 0, "torch": 1, "jax": 2}
    anchors = sorted(
        (m for m in methods if m.role == "anchor" and m.name in outputs),
        key=lambda m: order.get(m.library, 3),
    )
    if anchors:
        ref = outputs[anchors[0].name]
        for m in methods:
            if m.name in outputs:
                m.max_rel_err = _rel_err(outputs[m.name], ref)


def _measure_memory(methods: list[_Method]) -> None:
    """tracemalloc peak of one call, for the libraries that report to it (NumPy)."""
    for m in methods:
        if m.run is None or m.library not in ("numpy", "scipy"):
            continue
        tracemalloc.start()
        try:
            m.run()
            m.peak_bytes = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()


def _time_case(
    case: Case,
    backends: Sequence[str],
    libraries: set[str],
    sizes: Sizes,
    progress: Callable[[str], None],
) -> list[_Method]:
    methods = _build_methods(case, backends, libraries)
    _warm_up(methods, progress)
    _measure_memory(methods)
    live = {m.name: m.run for m in methods if m.run is not None}
    progress(f"  timing {len(live)} methods")
    try:
        first = {m.name: m.first_s or 0.0 for m in methods if m.run is not None}
        times, _ = time_interleaved(
            live, sizes.runs, sizes.max_runs, sizes.target_s, first, lead_in=True
        )
    except Exception:
        times = _time_one_by_one(methods, sizes.runs)
    for m in methods:
        m.times = times.get(m.name, [])
        m.run = None  # free the arrays the closures hold
    return methods


def _time_one_by_one(methods: list[_Method], runs: int) -> dict[str, list[float]]:
    """Fallback when a method fails while interleaved: time each alone, drop failures."""
    times: dict[str, list[float]] = {}
    for m in methods:
        if m.run is None:
            continue
        try:
            times[m.name] = [_call(m.run)[0] for _ in range(runs)]
        except Exception as exc:
            m.error = f"{type(exc).__name__}: {exc}"
    return times


# --------------------------------------------------------------------------
# Rows


def _rows(case: Case, methods: list[_Method], backends: Sequence[str]) -> list[dict[str, Any]]:
    by_name = {m.name: m for m in methods}
    rows = []
    for backend in backends:
        pc = by_name[f"portconv[{backend}]"]
        anchors = [
            m
            for m in methods
            if m.role == "anchor" and m.library in _FAMILIES[backend] and m.median is not None
        ]
        best = min(anchors, key=lambda m: m.median) if anchors else None
        t = pc.median
        ratio = t / best.median if (t is not None and best is not None) else None
        rows.append(
            {
                "case": case.name,
                "shape": case.label,
                "backend": backend,
                "portconv_s": t,
                "strategy": pc.strategy,
                "anchor": best.name if best else None,
                "anchor_s": best.median if best else None,
                "ratio": ratio,
                "gflops": 2 * case.macs / t / 1e9 if t else None,
                "peak_bytes": pc.peak_bytes,
                "max_rel_err": pc.max_rel_err,
                "error": pc.error,
            }
        )
    return rows


# --------------------------------------------------------------------------
# Machine and environment


def _cpuinfo() -> dict[str, str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return {}
    info: dict[str, str] = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key and key not in info:
            info[key] = value.strip()
    return info


def loadavg() -> list[float] | None:
    """1/5/15-minute load averages: other work on the machine skews timings."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def _usable_cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def machine_name() -> str:
    """A short name of this machine for result files, e.g. ``cpu-2core-avx512``.

    The number of cores this process may use and the widest x86 vector
    extension (else the architecture name).
    """
    flags = set(_cpuinfo().get("flags", "").split())
    if "avx512f" in flags:
        isa = "avx512"
    elif "avx2" in flags:
        isa = "avx2"
    else:
        isa = platform.machine().lower() or "unknown"
    return f"cpu-{_usable_cores()}core-{isa}"


def _versions() -> dict[str, str | None]:
    import portconv

    out: dict[str, str | None] = {
        "python": platform.python_version(),
        "portconv": portconv.__version__,
    }
    for dist in ("numpy", "scipy", "jax", "jaxlib", "torch", "matplotlib", "array-api-compat"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return out


def _thread_pools() -> list[dict[str, Any]]:
    try:
        import threadpoolctl
    except ImportError:
        return []
    keys = ("user_api", "internal_api", "prefix", "version", "num_threads", "architecture")
    return [{k: p.get(k) for k in keys} for p in threadpoolctl.threadpool_info()]


def _git_commit() -> str | None:
    """``git describe --always --dirty`` of the checkout portconv runs from, if any."""
    root = Path(__file__).resolve().parents[2]
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def describe_machine() -> dict[str, Any]:
    """Date, machine, CPU, versions, git state and environment of this run.

    Returns
    -------
    dict
        ``date``, ``machine`` (:func:`machine_name`), ``cpu_model``,
        ``usable_cores``, ``logical_cpus``, ``platform``, ``versions`` of the
        array libraries, ``git`` (``git describe --dirty`` of the checkout),
        ``env`` (threading and OpenBLAS variables), ``env_removed_by_reexec``,
        ``openblas_coretype`` and ``thread_pools`` (from threadpoolctl, when
        installed; call this after the array libraries are loaded).
    """
    pools = _thread_pools()
    openblas = [p for p in pools if p.get("internal_api") == "openblas"]
    return {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": machine_name(),
        "cpu_model": _cpuinfo().get("model name") or platform.processor() or None,
        "usable_cores": _usable_cores(),
        "logical_cpus": os.cpu_count(),
        "platform": platform.platform(),
        "versions": _versions(),
        "git": _git_commit(),
        "env": {k: os.environ.get(k) for k in _RECORDED_ENV},
        "env_removed_by_reexec": json.loads(os.environ.get(_REEXEC_MARK, "{}") or "{}"),
        "openblas_coretype": openblas[0].get("architecture") if openblas else None,
        "thread_pools": pools,
    }


def _metadata(quick: bool, backends: Sequence[str], libraries: set[str]) -> dict[str, Any]:
    sizes = QUICK if quick else FULL
    return {
        **describe_machine(),
        "quick": quick,
        "backends": list(backends),
        "anchor_libraries": sorted(libraries),
        "policy": {
            "warmup_calls": 1,
            "min_runs": sizes.runs,
            "max_runs": sizes.max_runs,
            "target_s_per_case": sizes.target_s,
            "pause_s": _PAUSE_S,
            "interleaved": True,
            "statistic": "median",
        },
        "notes": [
            "ratio = portconv median / fastest native anchor of the same family "
            "(numpy: SciPy and torch-CPU; jax: lax and jax.scipy, jitted; torch: torch)",
            "GFLOP/s = 2 * MACs of the direct method / time, also for FFT-based methods",
            "conv_transpose MACs are those of the scatter form (what torch does)",
            "train = forward + input gradient + weight gradient for every method "
            "(torch: autograd forward+backward; jax: jax.vjp of lax.conv)",
            "peak_bytes = tracemalloc peak of one call, NumPy/SciPy only, output included",
            "max_rel_err = max|out - ref| / max|ref| against the first anchor "
            "(SciPy, else torch, else jax); image/signal anchors differ from "
            "portconv's 'same' only at even kernels",
        ],
    }


# --------------------------------------------------------------------------
# Outputs


def _fmt(value: float | None, scale: float = 1.0, digits: int = 3) -> str:
    if value is None:
        return "—"
    return f"{value * scale:.{digits}g}"


def heap_setting(meta: dict[str, Any]) -> str:
    """The allocator settings a run had: portconv's heap hint and glibc's overrides."""
    from portconv._heap import hint_enabled  # lazily, as every import here (module doc)

    env = meta.get("env") or {}
    hint = "on" if hint_enabled(env) else "off"
    malloc = [
        f"{k}={env[k]}" for k in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_") if env.get(k)
    ]
    return f"heap hint {hint}; glibc malloc overrides: {', '.join(malloc) or 'none'}"


def _markdown(result: dict[str, Any]) -> str:
    meta = result["meta"]
    v = meta["versions"]
    removed = meta["env_removed_by_reexec"]
    in_effect = {k: meta["env"][k] for k in DROP_ENV if meta["env"].get(k)}
    if in_effect:
        env_line = "in effect: " + ", ".join(f"{k}={val}" for k, val in in_effect.items())
    elif removed:
        env_line = "removed by re-exec: " + ", ".join(f"{k}={val}" for k, val in removed.items())
    else:
        env_line = "none set"
    libs = ", ".join(f"{k} {val}" for k, val in v.items() if val)
    threads = [f"{k}={meta['env'][k]}" for k in _THREAD_ENV if meta["env"].get(k)]
    pol = meta["policy"]
    lines = [
        f"# portconv benchmarks: {meta['machine']}, {meta['date'][:10]}",
        "",
        f"- CPU: {meta['cpu_model']} ({meta['usable_cores']} usable cores); {meta['platform']}",
        f"- Versions: {libs}; git {meta['git']}"
        + (f" (at the end: {meta['git_end']})" if meta.get("git_end") != meta["git"] else ""),
        f"- OpenBLAS core type: {meta['openblas_coretype']}; OpenBLAS env overrides: {env_line}; "
        f"thread settings: {', '.join(threads) or 'library defaults'}; {heap_setting(meta)}",
        f"- Mode: {'quick' if meta['quick'] else 'full'}; median of {pol['min_runs']}-"
        f"{pol['max_runs']} interleaved runs after one warm-up, in a fresh order each, "
        "each timed call right after an untimed one of the same method; whole run "
        f"{meta.get('elapsed_s', 0):.0f} s; load average (1/5/15 min) "
        f"{meta.get('loadavg_start')} at start, {meta.get('loadavg_end')} at end",
        "",
        "Ratio = portconv / fastest native anchor of the same family (numpy: SciPy and "
        "torch-CPU; jax: lax and jax.scipy, jitted; torch: torch); below 1 portconv is "
        "faster. GFLOP/s counts the direct method's multiply-adds (x2) also where an FFT "
        "ran. Training step = forward + input grad + weight grad for every method. Peak MB: "
        "tracemalloc peak of one NumPy call, output included. Strategy: what `auto` chose "
        "(forward/gradient plans joined by `/`).",
        "",
        "| case | shape | backend | portconv ms | strategy | best anchor | anchor ms | ratio "
        "| GFLOP/s | peak MB |",
        "|---|---|---|---:|---|---|---:|---:|---:|---:|",
    ]
    for r in result["rows"]:
        peak = r["peak_bytes"] / 2**20 if r["peak_bytes"] is not None else None
        lines.append(
            f"| {r['case']} | {r['shape']} | {r['backend']} | {_fmt(r['portconv_s'], 1e3)} "
            f"| {r['strategy'] or '—'} | {r['anchor'] or '—'} | {_fmt(r['anchor_s'], 1e3)} "
            f"| {_fmt(r['ratio'], digits=2)} | {_fmt(r['gflops'])} | {_fmt(peak)} |"
        )
    lines += [
        "",
        "## Every method",
        "",
        "| case | method | median ms | runs | first call s | GFLOP/s | peak MB | rel. err | error |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for c in result["cases"]:
        for m in c["methods"]:
            t = m["median_s"]
            peak = m["peak_bytes"] / 2**20 if m["peak_bytes"] is not None else None
            err = (m["error"] or "").replace("|", "/")[:80]
            lines.append(
                f"| {c['name']} | {m['method']} | {_fmt(t, 1e3)} | {len(m['times_s'])} "
                f"| {_fmt(m['first_call_s'])} | {_fmt(2 * c['macs'] / t / 1e9 if t else None)} "
                f"| {_fmt(peak)} | {_fmt(m['max_rel_err'], digits=2)} | {err} |"
            )
    return "\n".join(lines) + "\n"


def _plot(result: dict[str, Any], path: Path) -> None:
    from matplotlib.figure import Figure

    rows = [r for r in result["rows"] if r["ratio"] is not None]
    names = list(dict.fromkeys(r["case"] for r in result["rows"]))
    backends = list(dict.fromkeys(r["backend"] for r in result["rows"]))
    fig = Figure(figsize=(max(8.0, 0.95 * len(names) + 2.5), 5.5), layout="constrained")
    ax = fig.add_subplot()
    width = 0.8 / max(len(backends), 1)
    for i, backend in enumerate(backends):
        mine = [r for r in rows if r["backend"] == backend]
        xs = [names.index(r["case"]) + (i - (len(backends) - 1) / 2) * width for r in mine]
        ratios = [r["ratio"] for r in mine]
        # bars grow from parity: up when portconv is slower, down when faster
        bars = ax.bar(
            xs, [q - 1.0 for q in ratios], width, bottom=1.0, label=f"portconv on {backend}"
        )
        ax.bar_label(bars, labels=[f"{q:.2g}" for q in ratios], fontsize=7, padding=2)
    ax.set_yscale("log")
    ax.axhline(
        1.0, color="black", linewidth=1.2, linestyle="--", label="1.0 = fastest native anchor"
    )
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right")
    ax.set_ylabel("portconv time / fastest native anchor\n(log scale; lower is better)")
    meta = result["meta"]
    mode = "quick" if meta["quick"] else "full"
    ax.set_title(f"portconv vs native anchors: {meta['machine']}, {meta['date'][:10]} ({mode})")
    ax.grid(axis="y", which="both", alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    fig.savefig(path, dpi=120)


def _write(path: str | None, write: Callable[[Path], None]) -> None:
    if path is None:
        return
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    write(p)


def default_paths(quick: bool = False) -> dict[str, str]:
    """Result paths when none are given: ``benchmarks/results/<machine>-<date>.*``.

    In a source checkout the repository's ``benchmarks/results``; otherwise
    that folder under the current directory.  Quick runs add ``-quick`` so they
    never overwrite a full run's results.
    """
    root = Path(__file__).resolve().parents[2]
    base = root if (root / "benchmarks").is_dir() else Path.cwd()
    stem = f"{machine_name()}-{datetime.date.today().isoformat()}" + ("-quick" if quick else "")
    folder = base / "benchmarks" / "results"
    return {
        ext: str(folder / f"{stem}.{suffix}")
        for ext, suffix in (("json", "json"), ("md", "md"), ("plot", "png"))
    }


# --------------------------------------------------------------------------
# Entry points


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _select_backends(backends: Sequence[str] | None) -> list[str]:
    if backends is None:
        return [b for b in BACKENDS if _installed(_MODULES[b])]
    chosen = []
    for b in backends:
        if b not in BACKENDS:
            raise ValueError(f"unknown backend {b!r}; choose from {list(BACKENDS)}")
        if not _installed(_MODULES[b]):
            raise ValueError(f"backend {b!r} was asked for but {_MODULES[b]!r} is not installed")
        if b not in chosen:
            chosen.append(b)
    if not chosen:
        raise ValueError("no backend selected")
    return chosen


def run_suite(
    backends: list[str] | None,
    quick: bool,
    json_path: str | None,
    plot_path: str | None,
    md_path: str | None,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """Run the benchmark suite and write the requested outputs.

    Parameters
    ----------
    backends : list of str or None
        portconv backends to time, from ``"numpy"``, ``"jax"``, ``"torch"``;
        ``None`` means every installed one.  The native anchors timed are
        those of their families (numpy: SciPy and torch-CPU; jax: ``jax.lax``
        and ``jax.scipy``; torch: torch), where installed.
    quick : bool
        Small shapes and three repetitions (:data:`QUICK`) instead of the
        full suite (:data:`FULL`).
    json_path, plot_path, md_path : str or None
        Where to write the JSON record, the PNG chart and the Markdown
        table; ``None`` skips that output.
    progress : callable, optional
        Called with one line of text per step.

    Returns
    -------
    dict
        ``{"meta": ..., "cases": [...], "rows": [...]}``: metadata (date,
        machine, CPU, versions, environment, OpenBLAS core type, timing
        policy, elapsed seconds), every method's raw times per case, and one
        row per case and backend with the portconv median, its strategy, the
        fastest anchor of the family, the ratio, GFLOP/s and peak memory.

    Raises
    ------
    ValueError
        An unknown backend, or one that is not installed.

    Notes
    -----
    The OpenBLAS overrides in :data:`DROP_ENV` act when NumPy loads; this
    function records whether they were set but cannot undo them: :func:`main`
    re-executes itself without them.
    """
    start = time.perf_counter()
    load_start, git_start = loadavg(), _git_commit()  # the code as imported, not as at the end

    def say(msg: str) -> None:
        if progress is not None:
            progress(f"{time.perf_counter() - start:7.1f}s  {msg}")

    chosen = _select_backends(backends)
    libraries = {lib for b in chosen for lib in _FAMILIES[b] if _installed(_MODULES[lib])}
    sizes = QUICK if quick else FULL
    all_cases, rows = [], []
    suite = cases(sizes)
    for i, case in enumerate(suite, 1):
        say(f"[{i}/{len(suite)}] {case.name}: {case.label}")
        methods = _time_case(case, chosen, libraries, sizes, say)
        all_cases.append(
            {
                "name": case.name,
                "op": case.op,
                "shape": case.label,
                "shapes": [list(s) for s in case.shapes],
                "stride": case.stride,
                "padding": case.padding,
                "groups": case.groups,
                "macs": case.macs,
                "methods": [m.record() for m in methods],
            }
        )
        rows += _rows(case, methods, chosen)
    meta = _metadata(quick, chosen, libraries)
    meta["elapsed_s"] = round(time.perf_counter() - start, 1)
    meta["loadavg_start"], meta["loadavg_end"] = load_start, loadavg()
    meta["git"], meta["git_end"] = git_start, meta["git"]
    result = {"schema": 1, "meta": meta, "cases": all_cases, "rows": rows}
    _write(json_path, lambda p: p.write_text(json.dumps(result, indent=1, allow_nan=False) + "\n"))
    _write(md_path, lambda p: p.write_text(_markdown(result)))
    _write(plot_path, lambda p: _plot(result, p))
    return result


def reexec_env(environ: dict[str, str]) -> dict[str, str] | None:
    """The environment to re-execute in, or ``None`` when none is needed.

    Needed when one of :data:`DROP_ENV` is set and this process is not
    already a re-execution; the returned copy lacks those variables and
    records their values in ``$PORTCONV_BENCH_REEXEC`` (JSON).
    """
    if _REEXEC_MARK in environ or not any(k in environ for k in DROP_ENV):
        return None
    env = dict(environ)
    removed = {k: env.pop(k) for k in DROP_ENV if k in env}
    env[_REEXEC_MARK] = json.dumps(removed)
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    return env


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="portconv bench",
        description="Time portconv against native anchors (SciPy, torch, jax.lax).",
    )
    p.add_argument(
        "--backend",
        action="append",
        dest="backends",
        choices=BACKENDS,
        metavar="NAME",
        help="portconv backend to time (repeatable): numpy, jax, torch; default every installed one",
    )
    p.add_argument("--quick", action="store_true", help="small shapes, 3 runs (under a minute)")
    p.add_argument("--json", metavar="PATH", help="write the raw results as JSON")
    p.add_argument("--plot", metavar="PATH", help="write the ratio chart as PNG")
    p.add_argument("--md", metavar="PATH", help="write the Markdown tables")
    p.add_argument(
        "--keep-env",
        action="store_true",
        help=f"do not re-execute without {' and '.join(DROP_ENV)} (they slow OpenBLAS down)",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry: ``portconv bench [--backend NAME]... [--quick] [--json PATH] ...``.

    Parameters
    ----------
    argv : sequence of str, optional
        The arguments after the command name; default ``sys.argv[1:]``.

    Returns
    -------
    int
        The exit status.

    Notes
    -----
    With none of ``--json``, ``--plot``, ``--md`` all three are written to
    :func:`default_paths`.  When ``OPENBLAS_CORETYPE`` or ``OPENBLAS_L2_SIZE``
    is set (which halves NumPy's BLAS speed on AVX-512 machines), the command
    re-runs itself in a subprocess without them, unless ``--keep-env``; the
    results record which variables were in effect or removed.
    """
    args_list = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(args_list)
    env = None if args.keep_env else reexec_env(dict(os.environ))
    if env is not None:
        removed = ", ".join(k for k in DROP_ENV if k in os.environ)
        print(f"portconv bench: re-running without {removed}", file=sys.stderr, flush=True)
        cmd = [sys.executable, "-m", "portconv.cli.bench", *args_list]
        return subprocess.call(cmd, env=env)
    paths = {"json": args.json, "plot": args.plot, "md": args.md}
    if all(p is None for p in paths.values()):
        paths = default_paths(args.quick)

    def say(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    result = run_suite(args.backends, args.quick, paths["json"], paths["plot"], paths["md"], say)
    table = _markdown(result).split("\n## Every method")[0]
    print(table)
    for kind, p in paths.items():
        if p is not None:
            say(f"wrote {kind}: {p}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
