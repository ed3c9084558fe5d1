"""Measure the ceilings behind the benchmark's remaining misses on this machine.

Usage::

    python benchmarks/limits.py [--md limits.md] [--runs 15]

Five probes, each a median of interleaved runs (float32) unless it says otherwise:

1. **matmul rate.** NumPy's ``matmul`` in GFLOP/s on the products that
   portconv's direct forms issue for the dense, stem and volume layers and
   the weight gradient (hot operands, called alone), next to torch's rate
   on each whole layer (best memory layout).  A portable direct
   convolution on NumPy cannot run faster than its products.  Also one
   tap's broadcast multiply-add over the depthwise layer's output: that
   layer's direct form needs nine.
2. **page faults.** Minor page faults and milliseconds per NumPy call of
   the dense 8x64x56^2 layer, with each output dropped right away (as the
   benchmark does) and with it kept until the next call (as a model keeps
   activations), measured first in a fresh process.  glibc hands freed
   memory back to the system, so the next call's fresh arrays would fault
   their pages in again; portconv's heap hint (``portconv._heap``, on by
   default) moves glibc's thresholds so that they are kept (probe 4 shows
   both).
3. **XLA products** (when JAX is installed). A matmul whose weight is
   broadcast over the batch, against the same product as one 2-d dot, the
   time XLA takes to stack the stem's 49 tap slices against the dot on them,
   and the page faults per call of the jitted stem, portconv's and lax's.
4. **allocator.** The 11x11 image correlation, the stem, dense-56 and
   volume layers and two small layers (portconv on NumPy and, when installed, torch's layers,
   timed after portconv's in the same child), each layer in three fresh
   child processes of its own: glibc's defaults with portconv's heap
   hint off (``PORTCONV_KEEP_HEAP=0``), the defaults with the hint (what
   users get: ``portconv._heap``), and glibc told to keep all freed memory
   (``MALLOC_MMAP_THRESHOLD_``/``MALLOC_TRIM_THRESHOLD_``), so no call
   faults fresh pages in.  The first against the third is what page faults
   cost; the second shows how much of that the hint saves.
5. **time split.** portconv's NumPy call of the dense, stem and volume
   layers under ``cProfile``: the milliseconds spent inside the namespace's
   ``matmul`` against the whole call, and the products' rate.  What is not
   in the products is the copies that feed and join them (padding, stacks,
   the join of batch tiles) and Python.

No assertion is made: the printed table is the evidence, measured in one run.
"""

from __future__ import annotations

import argparse
import cProfile
import importlib.util
import json
import os
import pstats
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import portconv
from portconv.cli.bench import FULL, Case, cases, portconv_fn, time_interleaved

#: (M, K, N) of ``(C_out x K) @ (K x positions)`` per sample: the dense-56 layer's
#: im2col_last product, its full im2col, the dense-28 one and the stem's.
GEMMS = {
    "dense-56 im2col_last (per sample)": (64, 192, 3248),
    "dense-56 im2col (per sample)": (64, 576, 3248),
    "dense-28 im2col_last (per sample)": (128, 384, 840),
    "stem im2col (per sample)": (64, 147, 12544),
    "volume im2col_last (10-row tile)": (8, 24, 10 * 66 * 66),
    "volume im2col, all 27 taps (8192 positions)": (8, 216, 8192),
    "dense-56 weight gradient (one tap)": (64, 8 * 58 * 58, 64),
    "dense-56 weight gradient (all taps stacked)": (64, 8 * 58 * 58, 576),
}
#: The suite's layers whose products GEMMS lists (shapes, stride and padding from run.py's cases).
LAYERS = {
    c.name: c
    for c in cases(FULL)
    if c.name in ("dense-56", "dense-28", "stem-7x7s2", "depthwise-3x3", "volume-3x3x3")
}
#: Layers whose NumPy calls the time-split probe profiles.
SPLIT_LAYERS = ("dense-56", "dense-28", "stem-7x7s2", "volume-3x3x3")
#: Layers of the allocator probe, and the environment that keeps glibc from
#: handing freed memory back to the system.
ALLOCATOR_LAYERS = (
    "image-11x11",
    "stem-7x7s2",
    "dense-56",
    "volume-3x3x3",
    "small-3x3",
    "small-dw-s2",
)
#: Two small layers of ``versus.py``'s evaluation set for the allocator probe.
SMALL_LAYERS = (
    Case("small-3x3", "conv", ((4, 16, 32, 32), (32, 16, 3, 3)), (), padding=1),
    Case("small-dw-s2", "conv", ((2, 128, 28, 28), (128, 1, 3, 3)), (), 2, 1, 128),
)
KEEP_MEMORY = {"MALLOC_MMAP_THRESHOLD_": str(1 << 40), "MALLOC_TRIM_THRESHOLD_": str(1 << 40)}


def _median_ms(fn: Callable[[], Any], runs: int) -> float:
    """Median of ``runs`` calls after a warm-up, with the suite's timer."""
    times, _ = time_interleaved({"f": fn}, runs, runs, 0.0, pause_s=0.02)
    return statistics.median(times["f"]) * 1e3


def _ms_and_faults(call: Callable[[], Any], runs: int, pause_s: float) -> tuple[float, float]:
    """Median ms and mean minor page faults per call, after two untimed calls.

    Each timed call follows a pause and an untimed lead-in call, as in the
    suite, so thread pools are awake and the allocator is as the same call
    left it.
    """
    for _ in range(2):
        call()
    times, faults = [], 0
    for _ in range(runs):
        time.sleep(pause_s)
        call()
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
        faults += resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    return statistics.median(times) * 1e3, faults / runs


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
        best = min(_median_ms(conv, runs) for conv in _torch_convs(torch, case, rng))
        rows.append(
            (f"torch conv{case.nsp}d {name} (best layout)", f"{best:.2f} ms", _gf(case.macs, best))
        )
    return rows


def _torch_convs(torch: Any, case: Any, rng: Any) -> list[Callable[[], Any]]:
    """torch's forward of ``case`` in each memory layout it offers for that rank."""
    x, w = (torch.from_numpy(rng.standard_normal(s, dtype=np.float32)) for s in case.shapes)
    conv = getattr(torch.nn.functional, f"conv{case.nsp}d")
    formats = [torch.contiguous_format]
    formats.append(torch.channels_last if case.nsp == 2 else torch.channels_last_3d)
    calls = []
    for fmt in formats:
        xf, wf = x.contiguous(memory_format=fmt), w.contiguous(memory_format=fmt)

        def call(xf=xf, wf=wf) -> Any:
            with torch.no_grad():
                return conv(xf, wf, stride=case.stride, padding=case.padding, groups=case.groups)

        calls.append(call)
    return calls


#: The allocator probe's child processes, in the order of its columns.
ALLOCATOR_SETTINGS = {
    "hint off": {"PORTCONV_KEEP_HEAP": "0"},
    "hint (default)": {"PORTCONV_KEEP_HEAP": "1"},
    "memory kept": {**KEEP_MEMORY, "PORTCONV_KEEP_HEAP": "0"},
}


def probe_allocator(runs: int) -> list[tuple[str, str, str]]:
    """Each layer in its own child per allocator setting (see ``ALLOCATOR_SETTINGS``).

    One fresh process per layer and setting: what a process freed before
    moves glibc's thresholds, so layers sharing a child would measure each
    other's history.  torch's layer runs after portconv's in the same child.
    """
    medians: dict[str, dict[str, Any]] = {label: {} for label in ALLOCATOR_SETTINGS}
    base = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    for layer in ALLOCATOR_LAYERS:
        for label, extra in ALLOCATOR_SETTINGS.items():
            child = subprocess.run(
                [sys.executable, __file__, "--allocator-child", layer, "--runs", str(runs)],
                env={**base, **extra},
                capture_output=True,
                text=True,
                check=True,
            )
            medians[label].update(json.loads(child.stdout.strip().splitlines()[-1]))
    rows = []
    for key in medians["hint off"]:
        each = [medians[label][key] for label in ALLOCATOR_SETTINGS]
        rows.append(
            (
                f"{key}: " + " / ".join(ALLOCATOR_SETTINGS),
                " / ".join(f"{m['ms']:.1f}" for m in each) + " ms",
                " / ".join(f"{m['faults']:.0f}" for m in each) + " page faults/call",
            )
        )
    return rows


def _allocator_child(layer: str, runs: int) -> dict[str, dict[str, float]]:
    """Median ms and page faults per call of one allocator layer (in this process)."""
    rng = np.random.default_rng(0)
    (case,) = [c for c in cases(FULL) + list(SMALL_LAYERS) if c.name == layer]
    x, w = (rng.standard_normal(s, dtype=np.float32) for s in case.shapes)
    run = portconv_fn(case)
    calls = {f"portconv[numpy] {layer}": lambda: run(x, w)}
    if case.op == "conv" and importlib.util.find_spec("torch") is not None:
        import torch

        calls[f"torch {layer}"] = _torch_convs(torch, case, rng)[0]
    out = {}
    for key, call in calls.items():
        ms, faults = _ms_and_faults(call, runs, 0.15)  # the benchmark's pause
        out[key] = {"ms": ms, "faults": faults}
    return out


def probe_elementwise(runs: int) -> list[tuple[str, str, str]]:
    """One tap's multiply-add over the depthwise layer's output, as NumPy runs it.

    A depthwise layer has one input channel per output, so no product of the
    standard reaches BLAS without wasted work; the direct form is one
    broadcast multiply and one add per tap (9 for 3x3), each a pass over
    the output, on one thread.
    """
    rng = np.random.default_rng(0)
    case = LAYERS["depthwise-3x3"]
    n, c, h, w_ = case.shapes[0]
    x = rng.standard_normal((n, c, h + 2, w_ + 2), dtype=np.float32)
    wt = rng.standard_normal((1, c, 1, 1), dtype=np.float32)
    acc = rng.standard_normal((n, c, h, w_), dtype=np.float32)
    view = x[:, :, 1 : h + 1, 1 : w_ + 1]
    ms = _median_ms(lambda: acc + view * wt, runs)
    moved = 3 * acc.nbytes  # read the view and acc, write the sum (the product stays in cache)
    return [
        (
            f"numpy one tap's multiply-add over the depthwise output {n}x{c}x{h}x{w_}",
            f"{ms:.3f} ms",
            f"{moved / (ms * 1e-3) / 1e9:.1f} GB/s",
        )
    ]


def _gf(macs: int, ms: float) -> str:
    return f"{2 * macs / (ms * 1e-3) / 1e9:.0f} GFLOP/s"


def probe_split(runs: int) -> list[tuple[str, str, str]]:
    """Milliseconds per call inside ``matmul`` against the whole call, under ``cProfile``."""
    rng = np.random.default_rng(0)
    rows = []
    for name in SPLIT_LAYERS:
        case = LAYERS[name]
        x, w = (rng.standard_normal(s, dtype=np.float32) for s in case.shapes)
        fn = portconv_fn(case)
        for _ in range(2):
            fn(x, w)
        profile = cProfile.Profile()
        profile.enable()
        for _ in range(runs):
            fn(x, w)
        profile.disable()
        stats = pstats.Stats(profile).stats  # {(file, line, name): (cc, nc, tottime, ...)}
        whole = sum(v[2] for v in stats.values()) / runs
        products = sum(v[2] for k, v in stats.items() if k[2] == "matmul") / runs
        rows.append(
            (
                f"portconv[numpy] {name}: in matmul / whole call (cProfile, mean)",
                f"{products * 1e3:.1f} / {whole * 1e3:.1f} ms",
                f"{_gf(case.macs, products * 1e3)} in the products",
            )
        )
    return rows


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

        call()
        ms, faults = _ms_and_faults(call, runs, 0.02)
        rows.append(
            (
                f"portconv.conv dense-56 on NumPy, {label}",
                f"{ms:.1f} ms",
                f"{faults:.0f} page faults/call",
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
    wt = jnp.asarray(rng.standard_normal((64, 3, 7, 7), dtype=np.float32))
    stems = {
        "portconv[jax]": portconv_fn(LAYERS["stem-7x7s2"]),
        "lax": lambda a, b: jax.lax.conv_general_dilated(a, b, (2, 2), [(3, 3), (3, 3)]),
    }
    for label, fn in stems.items():
        jitted = jax.jit(fn)
        ms, faults = _ms_and_faults(lambda f=jitted: f(x, wt).block_until_ready(), runs, 0.02)
        rows.append(
            (
                f"{label} stem-7x7s2 (jit), page faults",
                f"{ms:.1f} ms",
                f"{faults:.0f} page faults/call",
            )
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--md", help="also write the table to this Markdown file")
    ap.add_argument("--runs", type=int, default=15, help="timed runs per probe (median)")
    ap.add_argument("--allocator-child", metavar="LAYER", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.allocator_child:
        print(json.dumps(_allocator_child(args.allocator_child, args.runs)))
        return 0
    # faults first: a process that has freed large arrays before (the other
    # probes) has raised glibc's mmap threshold and faults far less
    rows = probe_faults(args.runs) + probe_matmul(args.runs) + probe_elementwise(args.runs)
    rows += probe_split(args.runs)
    rows += probe_xla(args.runs)
    rows += probe_allocator(args.runs)
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
