"""The seed walkthrough as checks, and a small benchmark against native libraries.

Six checks follow the classic introduction to cross-correlation in CNNs and
compare portconv, on every backend, with brute-force loops in plain NumPy:

1. the 3x3 worked example (and the tutorial window that gives -5);
2. a 3x3 kernel sliding over a 5x5 input;
3. cross-correlation equals convolution with the flipped kernel;
4. edge detection with the kernel ``[1, -1]`` (and what it misses);
5. multi-channel convolution with stride and padding;
6. the explicit gradients ``conv_weight_grad`` / ``conv_input_grad``.

Each check returns its largest deviation and the error bound of the problem
(``16 * eps * (sqrt(taps) + log2(n)) * max|x| * sum|k|``).  Under JAX every
portconv call is jitted.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

import portconv

from .backends import Backend

__all__ = [
    "BENCH_CASES",
    "CHECKS",
    "BenchResult",
    "CheckResult",
    "format_bench",
    "format_checks",
    "format_notes",
    "run_bench",
    "run_checks",
]

_RNG_SEED = 20240611
#: the 3x3 window of the worked example, and the vertical-edge kernel
WINDOW = np.arange(1.0, 10.0).reshape(3, 3)
VERTICAL_EDGE = np.array([[1.0, 0.0, -1.0]] * 3)
#: the top-left window of the 6x6 image in the widely copied lecture example
#: whose first output is -5 (3*1 + 1*1 + 2*1 + 0 + 1*(-1) + 8*(-1) + 2*(-1))
TUTORIAL_WINDOW = np.array([[3.0, 0.0, 1.0], [1.0, 5.0, 8.0], [2.0, 7.0, 2.0]])


@dataclasses.dataclass(frozen=True)
class CheckResult:
    """The outcome of one check on one backend.

    ``deviation`` is the largest absolute difference from the brute-force
    reference; the check passes when it is at most ``bound``.
    """

    check: str
    deviation: float
    bound: float
    note: str = ""

    @property
    def ok(self) -> bool:
        return bool(self.deviation <= self.bound)


def error_bound(taps: int, n: int, scale: float, eps: float = float(np.finfo(np.float64).eps)):
    """``16 * eps * (sqrt(taps) + log2(n)) * scale``: direct and FFT rounding together."""
    return 16.0 * eps * (math.sqrt(max(taps, 1)) + math.log2(max(n, 2))) * max(scale, 1e-300)


def _deviation(got: np.ndarray, want: np.ndarray) -> float:
    if got.shape != want.shape:
        return math.inf
    return float(np.max(np.abs(got - want), initial=0.0))


# --- brute-force references: plain loops, no shared code with portconv ------


def _brute_correlate_valid(x: np.ndarray, k: np.ndarray) -> np.ndarray:
    out = np.zeros((x.shape[0] - k.shape[0] + 1, x.shape[1] - k.shape[1] + 1))
    for i, j in np.ndindex(*out.shape):
        out[i, j] = np.sum(x[i : i + k.shape[0], j : j + k.shape[1]] * k)
    return out


def _brute_conv2d(x, w, b, stride, pad):
    """``x`` (N, C, H, W), ``w`` (O, C, kh, kw): zero padding, no groups."""
    n, _, h, wd = x.shape
    o, _, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    oh, ow = (h + 2 * pad - kh) // stride + 1, (wd + 2 * pad - kw) // stride + 1
    y = np.zeros((n, o, oh, ow))
    for b_, c, i, j in np.ndindex(n, o, oh, ow):
        window = xp[b_, :, i * stride : i * stride + kh, j * stride : j * stride + kw]
        y[b_, c, i, j] = np.sum(window * w[c]) + (0.0 if b is None else b[c])
    return y


def _brute_weight_grad(x, w_shape, gy, stride, pad):
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    oh, ow = gy.shape[2:]
    gw = np.zeros(w_shape)
    for o, c, u, v in np.ndindex(*w_shape):
        taps = xp[
            :, c, u : u + stride * (oh - 1) + 1 : stride, v : v + stride * (ow - 1) + 1 : stride
        ]
        gw[o, c, u, v] = np.sum(gy[:, o] * taps)
    return gw


def _brute_input_grad(x_shape, w, gy, stride, pad):
    n, c, h, wd = x_shape
    kh, kw = w.shape[2:]
    gx = np.zeros((n, c, h + 2 * pad, wd + 2 * pad))
    for b_, o, i, j in np.ndindex(*gy.shape):
        gx[b_, :, i * stride : i * stride + kh, j * stride : j * stride + kw] += (
            gy[b_, o, i, j] * w[o]
        )
    return gx[:, :, pad : pad + h, pad : pad + wd]


# --- the six checks ----------------------------------------------------------


def check_worked_example(backend: Backend) -> CheckResult:
    """The 3x3 window times the vertical-edge kernel: one number each."""

    def valid(x, k):
        return portconv.correlate(x, k, mode="valid")

    values, dev = [], 0.0
    for window in (WINDOW, TUTORIAL_WINDOW):
        got = backend.run(valid, window, VERTICAL_EDGE)
        want = np.full((1, 1), np.sum(window * VERTICAL_EDGE))
        dev = max(dev, _deviation(got, want))
        values.append(float(got.reshape(-1)[0]))
    scale = float(np.max(np.abs(TUTORIAL_WINDOW))) * float(np.sum(np.abs(VERTICAL_EDGE)))
    note = (
        f"3x3 worked example: window [[1,2,3],[4,5,6],[7,8,9]] * [[1,0,-1]]x3 = {values[0]:g}; "
        f"the tutorial's window [[3,0,1],[1,5,8],[2,7,2]] gives {values[1]:g}"
    )
    return CheckResult("3x3 example", dev, error_bound(9, 36, scale), note)


def check_sliding(backend: Backend) -> CheckResult:
    """A 3x3 kernel sliding over a 5x5 input: nine window sums."""
    rng = np.random.default_rng(_RNG_SEED)
    x, k = rng.standard_normal((5, 5)), rng.standard_normal((3, 3))

    def valid(a, b):
        return portconv.correlate(a, b, mode="valid")

    got = backend.run(valid, x, k)
    dev = _deviation(got, _brute_correlate_valid(x, k))
    scale = float(np.max(np.abs(x))) * float(np.sum(np.abs(k)))
    return CheckResult("5x5 sliding", dev, error_bound(9, 64, scale))


def check_flip(backend: Backend) -> CheckResult:
    """``correlate(x, k) == convolve(x, flip(k))`` (full mode), and both match loops."""
    rng = np.random.default_rng(_RNG_SEED + 1)
    x, k = rng.standard_normal((5, 6)), rng.standard_normal((3, 2))

    def both(a, b, b_flipped):
        return portconv.correlate(a, b), portconv.convolve(a, b_flipped)

    fn = backend.bind(both)
    corr, conv = fn(*(backend.asarray(a) for a in (x, k, k[::-1, ::-1].copy())))
    corr, conv = backend.to_numpy(corr), backend.to_numpy(conv)
    padded = np.pad(x, ((2, 2), (1, 1)))
    dev = max(_deviation(corr, conv), _deviation(corr, _brute_correlate_valid(padded, k)))
    scale = float(np.max(np.abs(x))) * float(np.sum(np.abs(k)))
    return CheckResult("corr = conv(flip)", dev, error_bound(6, 80, scale))


def band_image() -> np.ndarray:
    """The 6x8 image of ones with a vertical band of zeros in columns 2..5."""
    image = np.ones((6, 8))
    image[:, 2:6] = 0.0
    return image


def check_edges(backend: Backend) -> CheckResult:
    """The kernel ``[1, -1]`` marks the band's borders with +1/-1, and sees
    nothing in the transposed image (its edges are horizontal)."""
    kernel = np.array([[[[1.0, -1.0]]]])

    def edges(img, k):
        return portconv.conv2d(img, k)

    dev, maps = 0.0, []
    for image in (band_image(), band_image().T.copy()):
        got = backend.run(edges, image[None, None], kernel)[0, 0]
        dev = max(dev, _deviation(got, _brute_correlate_valid(image, kernel[0, 0])))
        maps.append(got)
    first_row = ", ".join(f"{v:g}" for v in maps[0][0])
    note = (
        f"edge detection: 6x8 band image * [1, -1] gives rows [{first_row}]; "
        f"the transposed image gives {np.count_nonzero(maps[1])} nonzero values"
    )
    return CheckResult("edges", dev, error_bound(2, 60, 2.0), note)


def _conv_problem():
    rng = np.random.default_rng(_RNG_SEED + 2)
    x = rng.standard_normal((2, 3, 7, 8))
    w = rng.standard_normal((4, 3, 3, 3))
    b = rng.standard_normal(4)
    return x, w, b, 2, 1  # stride 2, padding 1


def check_channels(backend: Backend) -> CheckResult:
    """3 input channels, 4 output channels, bias, stride 2, padding 1."""
    x, w, b, stride, pad = _conv_problem()

    def layer(x_, w_, b_):
        return portconv.conv2d(x_, w_, b_, stride=stride, padding=pad)

    got = backend.run(layer, x, w, b)
    dev = _deviation(got, _brute_conv2d(x, w, b, stride, pad))
    scale = float(np.max(np.abs(x))) * float(np.max(np.sum(np.abs(w), axis=(1, 2, 3))))
    return CheckResult("channels", dev, error_bound(27, 110, scale + float(np.max(np.abs(b)))))


def check_gradients(backend: Backend) -> CheckResult:
    """``conv_weight_grad`` and ``conv_input_grad`` against their defining sums."""
    x, w, _, stride, pad = _conv_problem()
    rng = np.random.default_rng(_RNG_SEED + 3)
    gy = rng.standard_normal((2, 4, 4, 4))

    def weight_grad(x_, gy_):
        return portconv.conv_weight_grad(x_, w.shape, gy_, stride=stride, padding=pad)

    def input_grad(w_, gy_):
        return portconv.conv_input_grad(x.shape, w_, gy_, stride=stride, padding=pad)

    gw = backend.run(weight_grad, x, gy)
    gx = backend.run(input_grad, w, gy)
    dev_w = _deviation(gw, _brute_weight_grad(x, w.shape, gy, stride, pad))
    dev_x = _deviation(gx, _brute_input_grad(x.shape, w, gy, stride, pad))
    bound_w = error_bound(2 * 16, 110, float(np.max(np.abs(x)) * np.sum(np.abs(gy))))
    bound_x = error_bound(4 * 9, 110, float(np.max(np.abs(gy)) * np.sum(np.abs(w))))
    # report the worse of the two, in the units of its own bound
    if dev_w / bound_w >= dev_x / bound_x:
        return CheckResult("gradients", dev_w, bound_w)
    return CheckResult("gradients", dev_x, bound_x)


#: (label shown while running, check)
CHECKS: tuple[tuple[str, Callable[[Backend], CheckResult]], ...] = (
    ("3x3 worked example", check_worked_example),
    ("5x5 sliding window", check_sliding),
    ("correlation vs flipped convolution", check_flip),
    ("edge detection", check_edges),
    ("channels, stride and padding", check_channels),
    ("conv_weight_grad / conv_input_grad", check_gradients),
)


def _safe(check: Callable[[Backend], CheckResult], backend: Backend, label: str) -> CheckResult:
    try:
        return check(backend)
    except Exception as exc:  # a crash is a failed check, reported, not a traceback
        return CheckResult(label, math.inf, 0.0, f"{type(exc).__name__}: {exc}")


def run_checks(
    backends: Sequence[Backend],
    progress: Callable[[int, int, str], None] | None = None,
    *,
    step: int = 0,
    total: int | None = None,
) -> dict[str, list[CheckResult]]:
    """Run every check on every backend.

    Parameters
    ----------
    backends : sequence of Backend
    progress : callable, optional
        ``progress(step, total, message)`` before each check.
    step, total : int, optional
        Offsets for the progress counter when this is part of a longer run.

    Returns
    -------
    dict
        Backend name -> one :class:`CheckResult` per check, in :data:`CHECKS` order.
    """
    total = total if total is not None else len(backends) * len(CHECKS)
    results: dict[str, list[CheckResult]] = {}
    for backend in backends:
        row = []
        for label, check in CHECKS:
            step += 1
            if progress is not None:
                progress(step, total, f"{backend.name}: {label}")
            row.append(_safe(check, backend, label))
        results[backend.name] = row
    return results


def _fmt_dev(result: CheckResult) -> str:
    mark = "✓" if result.ok else "✗"
    if math.isinf(result.deviation):
        return f"{mark} error"
    if result.deviation == 0:
        return f"{mark} 0"
    return f"{mark} {result.deviation:.1e}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(header, widths)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    return "\n".join(lines)


def format_checks(results: dict[str, list[CheckResult]]) -> str:
    """The backend x check table: ✓/✗ and the largest deviation from the loops."""
    if not results:
        return "(no backends)"
    header = ["backend"] + [r.check for r in next(iter(results.values()))]
    rows = [[name] + [_fmt_dev(r) for r in row] for name, row in results.items()]
    return _table(header, rows)


def format_notes(results: dict[str, list[CheckResult]]) -> str:
    """What the library computed in the worked examples (first backend), and any errors."""
    lines = []
    if results:
        name, row = next(iter(results.items()))
        lines += [f"{r.note} ({name})" for r in row if r.note and r.ok]
    for name, row in results.items():
        lines += [
            f"✗ {name}, {r.check}: {r.note or 'deviation beyond bound'}" for r in row if not r.ok
        ]
    return "\n".join(lines)


# --- the small benchmark -------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class BenchCase:
    """One timed problem: float32 arrays of ``shapes`` into ``run``."""

    key: str
    label: str
    shapes: tuple[tuple[int, ...], ...]
    run: Callable[..., Any]


BENCH_CASES = (
    BenchCase(
        "corr1d",
        "correlate 1-d 8192 * 31, full",
        ((8192,), (31,)),
        lambda a, b: portconv.correlate(a, b),
    ),
    BenchCase(
        "corr1d_long",
        "correlate 1-d 16384 * 513, full",
        ((16384,), (513,)),
        lambda a, b: portconv.correlate(a, b),
    ),
    BenchCase(
        "corr2d",
        "correlate 2-d 192x192 * 5x5, valid",
        ((192, 192), (5, 5)),
        lambda a, b: portconv.correlate(a, b, mode="valid"),
    ),
    BenchCase(
        "conv2d",
        "conv2d 8x16x32x32 * 32x16x3x3, pad 1",
        ((8, 16, 32, 32), (32, 16, 3, 3)),
        lambda x, w: portconv.conv2d(x, w, padding=1),
    ),
)


def _native_numpy(key: str):
    from numpy.lib.stride_tricks import sliding_window_view

    if key in ("corr1d", "corr1d_long"):
        return "np.correlate", lambda a, b: np.correlate(a, b, mode="full")
    if key == "corr2d":
        return "np.einsum(sliding_window_view)", lambda a, b: np.einsum(
            "ijkl,kl->ij", sliding_window_view(a, b.shape), b, optimize=True
        )

    def conv(x, w):
        windows = sliding_window_view(np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1))), (3, 3), (2, 3))
        return np.einsum("nchwij,ocij->nohw", windows, w, optimize=True)

    return "np.einsum(sliding_window_view)", conv


def _native_jax(key: str):
    import jax
    import jax.numpy as jnp
    import jax.scipy.signal as jss

    if key in ("corr1d", "corr1d_long"):
        return "jnp.correlate", jax.jit(lambda a, b: jnp.correlate(a, b, mode="full"))
    if key == "corr2d":
        return "jax.scipy.signal.correlate", jax.jit(lambda a, b: jss.correlate(a, b, mode="valid"))
    return "lax.conv_general_dilated", jax.jit(
        lambda x, w: jax.lax.conv_general_dilated(x, w, (1, 1), ((1, 1), (1, 1)))
    )


def _native_torch(key: str):
    import torch.nn.functional as F

    if key in ("corr1d", "corr1d_long"):
        return "F.conv1d", lambda a, b: F.conv1d(
            a[None, None], b[None, None], padding=b.shape[0] - 1
        )
    if key == "corr2d":
        return "F.conv2d", lambda a, b: F.conv2d(a[None, None], b[None, None])
    return "F.conv2d", lambda x, w: F.conv2d(x, w, padding=1)


def _native_cupy(key: str):
    import cupy

    if key in ("corr1d", "corr1d_long"):
        return "cupy.correlate", lambda a, b: cupy.correlate(a, b, mode="full")
    if key == "corr2d":
        import cupyx.scipy.signal as css

        return "cupyx.scipy.signal.correlate2d", lambda a, b: css.correlate2d(a, b, mode="valid")
    return None


_NATIVES = {
    "numpy": _native_numpy,
    "jax": _native_jax,
    "torch": _native_torch,
    "cupy": _native_cupy,
}


def native_anchor(backend: Backend, key: str) -> tuple[str, Callable[..., Any]] | None:
    """``(name, function)`` of the backend library's own routine for ``key``, if any."""
    factory = _NATIVES.get(backend.library)
    if factory is None:
        return None
    try:
        return factory(key)
    except ImportError:
        return None


@dataclasses.dataclass(frozen=True)
class BenchResult:
    """Median seconds of portconv and of the native anchor.

    ``native`` is ``None`` where the library has no such routine; a time is
    ``None`` where the call raised, and ``error`` says why.
    """

    backend: str
    case: str
    portconv_s: float | None
    native: str | None
    native_s: float | None
    error: str = ""


def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"


def interleaved_medians(
    fns: Sequence[Callable[..., Any]], args: Sequence[Any], finish, repeats: int = 5
) -> tuple[list[float | None], str]:
    """Median wall time of ``finish(fn(*args))`` for each of ``fns``.

    One warm-up call each (jit compilation, caches), then ``repeats`` rounds
    that call every function once, so that a noisy neighbour on a shared
    machine slows all of them alike.  A function that raises gets ``None``
    and the first error is returned as text (a row of the table, not a
    traceback).
    """
    live, error = {}, ""
    for i, fn in enumerate(fns):
        try:
            finish(fn(*args))
            live[i] = []
        except Exception as exc:
            error = error or _error_text(exc)
    for _ in range(repeats):
        for i in list(live):
            start = time.perf_counter()
            try:
                finish(fns[i](*args))
            except Exception as exc:
                error = error or _error_text(exc)
                del live[i]
                continue
            live[i].append(time.perf_counter() - start)
    medians = [statistics.median(live[i]) if i in live else None for i in range(len(fns))]
    return medians, error


def _bench_one(backend: Backend, case: BenchCase) -> BenchResult:
    rng = np.random.default_rng(_RNG_SEED + 10)
    host = [rng.standard_normal(s).astype(np.float32) for s in case.shapes]
    args = [backend.asarray(a, small_chunks=False) for a in host]
    fns = [backend.bind(case.run)]
    anchor = native_anchor(backend, case.key)
    if anchor is not None:
        fns.append(anchor[1])
    times, error = interleaved_medians(fns, args, backend.finish)
    if anchor is None:
        return BenchResult(backend.name, case.label, times[0], None, None, error)
    return BenchResult(backend.name, case.label, times[0], anchor[0], times[1], error)


def run_bench(
    backends: Sequence[Backend],
    progress: Callable[[int, int, str], None] | None = None,
    *,
    step: int = 0,
    total: int | None = None,
) -> list[BenchResult]:
    """Time every :data:`BENCH_CASES` entry on every backend (interleaved medians of 5)."""
    total = total if total is not None else len(backends) * len(BENCH_CASES)
    results = []
    for backend in backends:
        for case in BENCH_CASES:
            step += 1
            if progress is not None:
                progress(step, total, f"{backend.name}: timing {case.label}")
            results.append(_bench_one(backend, case))
    return results


def _ms(seconds: float | None) -> str:
    return "error" if seconds is None else f"{seconds * 1e3:.3g}"


def format_bench(results: Sequence[BenchResult]) -> str:
    """The timing table: milliseconds and the portconv / native ratio, then any errors."""
    header = ["backend", "case", "portconv ms", "native ms", "native", "ratio"]
    rows = []
    for r in results:
        native_ms = "—" if r.native is None else _ms(r.native_s)
        ratio = "—"
        if r.portconv_s is not None and r.native_s is not None:
            ratio = f"{r.portconv_s / r.native_s:.2f}"
        rows.append([r.backend, r.case, _ms(r.portconv_s), native_ms, r.native or "—", ratio])
    errors = [f"error: {r.backend}, {r.case}: {r.error}" for r in results if r.error]
    return "\n".join([_table(header, rows), *errors])
