"""portconv's ``auto`` against the native libraries on the sweep's shapes.

Issue 4's suite (``benchmarks/run.py``) times a dozen named cases; this
times every shape of a sweep set (``sweep.SETS``: 50 evaluation shapes, 24
unusual ones, 55 the cost model is fitted on, 15 layers of common networks,
two seeded draws of 40 random layers, 30 small ones, ...) against the libraries a user
would otherwise call, to show how the results carry over to shapes nobody
tuned for::

    python benchmarks/versus.py [--set eval|unusual|train|networks|random|...] [--backend numpy] [--backend jax]
                                [--limit N] [--json PATH] [--md PATH]

Writes ``benchmarks/results/versus-<machine>[-<set>].{json,md}`` by default.

Anchors, per portconv backend (float32, the same arrays):

- NumPy: SciPy-style shapes against ``scipy.signal.correlate`` (its own
  direct/FFT choice) and, for ``mode='same'`` with odd kernels,
  ``scipy.ndimage.correlate``; NN shapes against torch's ``conv{n}d`` on the
  CPU, NCHW and (2-d) channels-last.
- JAX (``jax.jit``): ``jax.scipy.signal.correlate`` and
  ``jax.lax.conv_general_dilated``.

Each shape's methods are timed interleaved, in a fresh order per
repetition, each timed call right after an untimed one of the same method
(``time_interleaved(..., lead_in=True)``), after a warm-up that includes
compilation.  The ratio is portconv's median over the fastest anchor's.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import zlib
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from sweep import (
    SETS,
    Shape,
    add_dtype_flag,
    add_output_flags,
    enable_jax_x64_for,
    parse_or_reexecute,
    write_results,
)

from portconv.cli.bench import (
    describe_machine,
    heap_setting,
    loadavg,
    machine_name,
    time_interleaved,
)

BACKENDS = ("numpy", "jax")
#: Repetitions per shape (at least, at most) and their time budget in seconds.
REPEATS = (5, 11, 1.5)
#: Ratios reported as thresholds in the summary.
THRESHOLDS = (1.0, 1.5, 2.0)
#: A median this many times its method's fastest call is marked as stalled.
STALL = 3.0


def _inputs(shape: Shape, dtype: str = "float32") -> tuple[Any, Any]:
    import numpy as np

    rng = np.random.default_rng(zlib.crc32(shape.name.encode()))
    return (
        rng.standard_normal(shape.x, dtype=np.dtype(dtype)),
        rng.standard_normal(shape.w, dtype=np.dtype(dtype)),
    )


def _conv_kwargs(shape: Shape) -> dict[str, int]:
    return {
        "stride": shape.stride,
        "padding": shape.padding,
        "dilation": shape.dilation,
        "groups": shape.groups,
    }


def _numpy_methods(shape: Shape, x: Any, w: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(portconv runs, anchor runs)``, each a name -> zero-argument callable."""
    import portconv

    if shape.kind == "signal":
        import scipy.ndimage
        import scipy.signal

        anchors = {"scipy.signal.correlate": lambda: scipy.signal.correlate(x, w, mode=shape.mode)}
        if shape.mode == "same" and all(k % 2 for k in shape.w):
            anchors["scipy.ndimage.correlate"] = lambda: scipy.ndimage.correlate(
                x, w, mode="constant"
            )
        return {"portconv[numpy]": lambda: portconv.correlate(x, w, mode=shape.mode)}, anchors
    import torch

    kw = _conv_kwargs(shape)
    nsp = len(shape.x) - 2
    conv = getattr(torch.nn.functional, f"conv{nsp}d")
    tx, tw = torch.from_numpy(x), torch.from_numpy(w)
    anchors = {f"torch.conv{nsp}d": lambda: conv(tx, tw, **kw)}
    if nsp == 2:
        cx, cw = (a.contiguous(memory_format=torch.channels_last) for a in (tx, tw))
        anchors[f"torch.conv{nsp}d[channels_last]"] = lambda: conv(cx, cw, **kw)
    return {"portconv[numpy]": lambda: portconv.conv(x, w, **kw)}, anchors


def _jax_methods(shape: Shape, x: Any, w: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    import jax
    import jax.numpy as jnp

    import portconv

    jx, jw = jnp.asarray(x), jnp.asarray(w)

    def run(fn: Any) -> Any:
        compiled = jax.jit(fn)
        return lambda: compiled(jx, jw).block_until_ready()

    if shape.kind == "signal":
        mode = shape.mode
        return (
            {"portconv[jax]": run(lambda a, b: portconv.correlate(a, b, mode=mode))},
            {
                "jax.scipy.signal.correlate": run(
                    lambda a, b: jax.scipy.signal.correlate(a, b, mode)
                )
            },
        )
    kw = _conv_kwargs(shape)
    nsp = len(shape.x) - 2

    def lax(a: Any, b: Any) -> Any:
        return jax.lax.conv_general_dilated(
            a,
            b,
            (shape.stride,) * nsp,
            [(shape.padding, shape.padding)] * nsp,
            rhs_dilation=(shape.dilation,) * nsp,
            feature_group_count=shape.groups,
        )

    return (
        {"portconv[jax]": run(lambda a, b: portconv.conv(a, b, **kw))},
        {"lax.conv_general_dilated": run(lax)},
    )


_METHODS = {"numpy": _numpy_methods, "jax": _jax_methods}


def _rel_err(out: Any, ref: Any) -> float:
    import numpy as np

    out, ref = np.asarray(out, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    if out.shape != ref.shape:
        raise AssertionError(f"shape {out.shape} against the anchor's {ref.shape}")
    return float(np.abs(out - ref).max() / max(np.abs(ref).max(), 1e-30))


def measure(shape: Shape, backends: tuple[str, ...], dtype: str = "float32") -> dict[str, Any]:
    """One row: every method's median seconds, and per backend the ratio to its best anchor."""
    x, w = _inputs(shape, dtype)
    families = {b: _METHODS[b](shape, x, w) for b in backends}
    runs = {
        name: f for ours, anchors in families.values() for name, f in {**ours, **anchors}.items()
    }
    times, first = time_interleaved(runs, *REPEATS, lead_in=True)
    medians = {name: statistics.median(t) for name, t in times.items()}
    row: dict[str, Any] = {"name": shape.name, "kind": shape.kind, "median_s": medians}
    row["min_s"] = {name: min(t) for name, t in times.items()}
    row["first_call_s"] = first
    for backend, (ours, anchors) in families.items():
        (name,) = ours
        best = min(anchors, key=medians.__getitem__)
        row[backend] = {
            "anchor": best,
            "ratio": medians[name] / medians[best],
            # the results agree (the first anchor is the reference)
            "rel_err": _rel_err(ours[name](), next(iter(anchors.values()))()),
        }
    return row


def summary(rows: list[dict[str, Any]], backends: tuple[str, ...]) -> dict[str, Any]:
    """Per backend and kind: how many ratios are at most each threshold, and their geometric mean."""
    out: dict[str, Any] = {}
    for backend in backends:
        for kind in ("signal", "nn", "all"):
            ratios = [r[backend]["ratio"] for r in rows if kind in ("all", r["kind"])]
            if not ratios:
                continue
            out[f"{backend}/{kind}"] = {
                "shapes": len(ratios),
                "at_most": {str(t): sum(q <= t for q in ratios) for t in THRESHOLDS},
                "geomean": statistics.geometric_mean(ratios),
                "max": max(ratios),
            }
    return out


def markdown(result: dict[str, Any]) -> str:
    meta, rows, backends = result["meta"], result["rows"], tuple(result["meta"]["backends"])
    lines = [
        f"# portconv `auto` against native libraries: {meta['machine']}, {meta['date'][:10]}, "
        f"set `{meta['set']}`",
        "",
        f"- CPU: {meta['cpu_model']} ({meta['usable_cores']} usable cores); git {meta['git']}; "
        f"OpenBLAS core type {meta['openblas_coretype']}; env removed by re-exec: "
        f"{meta['env_removed_by_reexec'] or 'none'}; {heap_setting(meta)}",
        f"- {meta.get('dtype', 'float32').capitalize()}; medians of {REPEATS[0]}-{REPEATS[1]} interleaved runs after a warm-up, "
        "each timed call right after an untimed one of the same method; "
        f"{meta['elapsed_s']:.0f} s in all; load average {meta['loadavg_start']} at start, "
        f"{meta['loadavg_end']} at end",
        "- Ratio = portconv / fastest anchor (NumPy: SciPy or torch-CPU; JAX: lax or "
        "jax.scipy, jitted); below 1 portconv is faster",
        "- Largest relative difference from the first anchor's result: "
        + ", ".join(f"{b} {max(r[b]['rel_err'] for r in rows):.1e}" for b in backends),
        f"- ‡: the median is over {STALL:g}x that method's fastest call. On this VM, NumPy "
        "calls under a millisecond that wake OpenBLAS's worker thread sometimes wait a whole "
        "4 ms scheduler tick when torch or JAX has run in the same process (30 calls of a "
        "0.3 ms layer, 0.15 s apart, each after a lead-in call: 0 stalls with NumPy alone, "
        "13 with torch's layer interleaved, 6 with lax's); the ratio then measures the stall",
        "",
        "| backend | kind | shapes | ratio <= 1 | <= 1.5 | <= 2 | geometric mean | worst |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for key, s in result["summary"].items():
        backend, kind = key.split("/")
        counts = " | ".join(str(s["at_most"][str(t)]) for t in THRESHOLDS)
        lines.append(
            f"| {backend} | {kind} | {s['shapes']} | {counts} | {s['geomean']:.2f} | "
            f"{s['max']:.2f} |"
        )
    head = "| shape |" + "".join(f" {b} ms | best anchor | anchor ms | ratio |" for b in backends)
    lines += ["", head, "|---|" + "---:|---|---:|---:|" * len(backends)]
    for r in rows:
        cells = []
        for b in backends:
            a, name = r[b]["anchor"], f"portconv[{b}]"
            cells.append(f" {_ms(r, name)} | {a} | {_ms(r, a)} | {r[b]['ratio']:.2f} |")
        lines.append(f"| {r['name']} |" + "".join(cells))
    return "\n".join(lines) + "\n"


def _ms(row: dict[str, Any], name: str) -> str:
    median = row["median_s"][name]
    stalled = median > STALL * row["min_s"][name]
    return f"{median * 1e3:.3g}" + (" ‡" if stalled else "")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--set", choices=tuple(SETS), default="eval")
    p.add_argument("--backend", action="append", choices=BACKENDS, help="default: both")
    p.add_argument("--limit", type=int, help="only the first N shapes")
    add_dtype_flag(p)
    add_output_flags(p)
    return p


def main(argv: list[str] | None = None) -> int:
    """Time the set, write its JSON and Markdown; returns the exit status."""
    args = parse_or_reexecute(_parser(), argv, __file__)
    if isinstance(args, int):
        return args
    backends = tuple(args.backend or BACKENDS)
    suffix = ("" if args.set == "eval" else f"-{args.set}") + (
        "" if args.dtype == "float32" else f"-{args.dtype}"
    )
    if "jax" in backends:
        enable_jax_x64_for(args.dtype)
    stem = Path(__file__).resolve().parent / "results" / f"versus-{machine_name()}{suffix}"
    json_path, md_path = Path(args.json or f"{stem}.json"), Path(args.md or f"{stem}.md")
    start, load_start = time.perf_counter(), loadavg()
    shapes = SETS[args.set][: args.limit] if args.limit else SETS[args.set]
    rows = []
    for i, shape in enumerate(shapes):
        rows.append(measure(shape, backends, args.dtype))
        ratios = ", ".join(f"{b} {rows[-1][b]['ratio']:.2f}" for b in backends)
        print(f"[{i + 1}/{len(shapes)}] {shape.name}: {ratios}", file=sys.stderr, flush=True)
    meta = {**describe_machine(), "set": args.set, "backends": list(backends)}
    meta["dtype"] = args.dtype
    meta["elapsed_s"] = round(time.perf_counter() - start, 1)
    meta["loadavg_start"], meta["loadavg_end"] = load_start, loadavg()
    result = {"meta": meta, "summary": summary(rows, backends), "rows": rows}
    write_results(json_path, md_path, result, markdown(result))
    print(f"wrote {json_path} and {md_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
