"""Measure the ceilings behind the benchmark's remaining misses on this machine.

Usage::

    python benchmarks/limits.py [--md limits.md] [--runs 15]

Three probes, each a median of interleaved runs (float32):

1. **matmul rate.** NumPy's ``matmul`` in GFLOP/s on the products that
   portconv's direct forms issue for the dense and stem layers (hot operands,
   called alone), next to torch's ``conv2d`` rate on the whole layer.  A
   portable direct convolution on NumPy cannot run faster than its products.
2. **page faults.** Minor page faults and milliseconds per NumPy call of
   the dense 8x64x56^2 layer, with each output dropped right away (as the
   benchmark does) and with it kept until the next call (as a model keeps
   activations), measured first in a fresh process.  glibc hands freed
   memory back to the system, so the next call's fresh arrays fault their
   pages in again; how often depends on what the process freed before (glibc
   raises its mmap threshold to the largest freed block).
3. **XLA products** (when JAX is installed). A matmul whose weight is
   broadcast over the batch, against the same product as one 2-d dot, and the
   time XLA takes to stack the stem's 49 tap slices against the dot on them.

No assertion is made: the printed table is the evidence, measured in one run.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import portconv
from portconv.cli.bench import FULL, cases, time_interleaved

#: (M, K, N) of ``(C_out x K) @ (K x positions)`` per sample: the dense-56 layer's
#: im2col_last product, its full im2col, the dense-28 one and the stem's.
GEMMS = {
    "dense-56 im2col_last (per sample)": (64, 192, 3248),
    "dense-56 im2col (per sample)": (64, 576, 3248),
    "dense-28 im2col_last (per sample)": (128, 384, 840),
    "stem im2col (per sample)": (64, 147, 12544),
}
#: The suite's layers whose products GEMMS lists (shapes, stride and padding from run.py's cases).
LAYERS = {c.name: c for c in cases(FULL) if c.name in ("dense-56", "dense-28", "stem-7x7s2")}


def _median_ms(fn: Callable[[], Any], runs: int) -> float:
    """Median of ``runs`` calls after a warm-up, with the suite's timer."""
    times, _ = time_interleaved({"f": fn}, runs, runs, 0.0, pause_s=0.02)
    return statistics.median(times["f"]) * 1e3


def probe_matmul(runs: int) -> list[tuple[str, str, str]]:
    rng = np.random.default_rng(0)
    rows = []
    for name, (m, k, n) in GEMMS.items():
        a = rng.standard_normal((m, k), dtype=np.float32)
        b = rng.standard_normal((k, n), dtype=np.float32)
        ms = _median_ms(lambda a=a, b=b: a @ b, runs)
        rows.append((f"numpy matmul {m}x{k} @ {k}x{n}, {name}", f"{ms:.3f} ms", _gf(m * k * n, ms)))
    try:
        import torch
    except ImportError:
        return rows
    for name, case in LAYERS.items():
        x, w = (torch.from_numpy(rng.standard_normal(s, dtype=np.float32)) for s in case.shapes)
        best = float("inf")
        for fmt in (torch.contiguous_format, torch.channels_last):
            xf, wf = x.contiguous(memory_format=fmt), w.contiguous(memory_format=fmt)

            def conv(xf=xf, wf=wf, case=case):
                with torch.no_grad():
                    return torch.nn.functional.conv2d(
                        xf, wf, stride=case.stride, padding=case.padding
                    )

            best = min(best, _median_ms(conv, runs))
        rows.append((f"torch conv2d {name} (best layout)", f"{best:.2f} ms", _gf(case.macs, best)))
    return rows


def _gf(macs: int, ms: float) -> str:
    return f"{2 * macs / (ms * 1e-3) / 1e9:.0f} GFLOP/s"


def probe_faults(runs: int) -> list[tuple[str, str, str]]:
    rng = np.random.default_rng(0)
    case = LAYERS["dense-56"]
    x, w = (rng.standard_normal(s, dtype=np.float32) for s in case.shapes)
    rows = []
    for label, keep in (("output dropped", False), ("output kept until the next call", True)):
        held: list[Any] = [None]

        def call(keep: bool = keep, held: list[Any] = held) -> None:
            y = portconv.conv(x, w, stride=case.stride, padding=case.padding)
            held[0] = y if keep else None

        for _ in range(3):
            call()
        faults, times = 0, []
        for _ in range(runs):
            time.sleep(0.02)
            before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            start = time.perf_counter()
            call()
            times.append(time.perf_counter() - start)
            faults += resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
        rows.append(
            (
                f"portconv.conv dense-56 on NumPy, {label}",
                f"{statistics.median(times) * 1e3:.1f} ms",
                f"{faults / runs:.0f} page faults/call",
            )
        )
    return rows


def probe_xla(runs: int) -> list[tuple[str, str, str]]:
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        return []
    rng = np.random.default_rng(0)
    m, k, n, batch = 64, 147, 12544, 8
    w = jnp.asarray(rng.standard_normal((m, k), dtype=np.float32))
    cols = jnp.asarray(rng.standard_normal((batch, k, n), dtype=np.float32))
    flat = jnp.asarray(rng.standard_normal((k, batch * n), dtype=np.float32))
    broadcast = jax.jit(lambda a, b: jnp.matmul(a, b))

    def timed(fn, *args):
        return _median_ms(lambda: fn(*args).block_until_ready(), runs)

    rows = []
    ms = timed(broadcast, w, cols)
    rows.append(
        (
            f"jax matmul {m}x{k} @ {batch}x{k}x{n} (weight broadcast)",
            f"{ms:.1f} ms",
            _gf(m * k * n * batch, ms),
        )
    )
    ms = timed(broadcast, w, flat)
    rows.append(
        (
            f"jax matmul {m}x{k} @ {k}x{batch * n} (batch folded)",
            f"{ms:.1f} ms",
            _gf(m * k * n * batch, ms),
        )
    )
    x = jnp.asarray(rng.standard_normal((8, 3, 224, 224), dtype=np.float32))

    def stem_cols(x):
        xp = jnp.pad(x, ((0, 0), (0, 0), (3, 3), (3, 3)))
        taps = [xp[:, :, i : i + 223 : 2, j : j + 223 : 2] for i in range(7) for j in range(7)]
        return jnp.stack(taps, axis=2)  # (8, 3, 49, 112, 112): 59 MB

    ms = timed(jax.jit(stem_cols), x)
    rows.append(
        (
            "jax: stack the stem's 49 strided tap slices (59 MB)",
            f"{ms:.1f} ms",
            f"{59e-3 / (ms * 1e-3):.2f} GB/s",
        )
    )
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--md", help="also write the table to this Markdown file")
    ap.add_argument("--runs", type=int, default=15, help="timed runs per probe (median)")
    args = ap.parse_args(argv)
    # faults first: a process that has freed large arrays before (the other
    # probes) has raised glibc's mmap threshold and faults far less
    rows = probe_faults(args.runs) + probe_matmul(args.runs) + probe_xla(args.runs)
    lines = ["| probe | median | rate |", "|---|---:|---:|"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    table = "\n".join(lines)
    print(table)
    if args.md:
        Path(args.md).write_text(
            "# Ceilings behind the remaining misses\n\n"
            f"`python3 benchmarks/limits.py --runs {args.runs}`; numpy {np.__version__}, "
            f"{time.strftime('%Y-%m-%d')}.\n\n{table}\n"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
