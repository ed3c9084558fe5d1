"""portconv's explicit gradients on NumPy against torch's, layer by layer.

The suite times one training step; this times ``conv_input_grad`` and
``conv_weight_grad`` alone on every layer of a sweep set (``sweep.SETS``,
``networks`` by default: ResNet and MobileNetV2 layers) against
``torch.nn.grad.conv{n}d_input`` / ``conv{n}d_weight`` on the CPU, the
same float32 values::

    python benchmarks/grads.py [--set networks|eval|train|unusual|sequences]
                               [--json PATH] [--md PATH]

Writes ``benchmarks/results/grads-<machine>[-<set>].{json,md}`` by default.
The four calls of a layer are timed interleaved, in a fresh order per
repetition, each timed call right after an untimed one of the same method
(``time_interleaved(..., lead_in=True)``); ratios are medians over medians.
NumPy runs with ``OPENBLAS_CORETYPE`` unset (the script re-executes itself
without it, as ``versus.py`` does).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
from sweep import SETS, add_output_flags, parse_or_reexecute, write_results

import portconv
from portconv.cli.bench import describe_machine, loadavg, machine_name, time_interleaved


def measure(shape) -> dict[str, Any]:
    """Median milliseconds of the four calls of one layer, and the two ratios."""
    import torch

    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape.x, dtype=np.float32)
    w = rng.standard_normal(shape.w, dtype=np.float32)
    kw = dict(
        stride=shape.stride, padding=shape.padding, dilation=shape.dilation, groups=shape.groups
    )
    gy = rng.standard_normal(portconv.conv(x, w, **kw).shape, dtype=np.float32)
    nd = x.ndim - 2
    grad = torch.nn.grad
    t_input = getattr(grad, f"conv{nd}d_input")
    t_weight = getattr(grad, f"conv{nd}d_weight")
    tx, tw, tgy = (torch.from_numpy(a) for a in (x, w, gy))
    runs = {
        "input": lambda: portconv.conv_input_grad(x.shape, w, gy, **kw),
        "torch input": lambda: t_input(x.shape, tw, tgy, **kw),
        "weight": lambda: portconv.conv_weight_grad(x, w.shape, gy, **kw),
        "torch weight": lambda: t_weight(tx, w.shape, tgy, **kw),
    }
    errors = {
        "input": _rel_err(runs["input"](), runs["torch input"]().numpy()),
        "weight": _rel_err(runs["weight"](), runs["torch weight"]().numpy()),
    }
    times, _ = time_interleaved(runs, 5, 15, 2.0, lead_in=True)
    ms = {k: 1e3 * statistics.median(v) for k, v in times.items()}
    return {
        "name": shape.name,
        "ms": ms,
        "input_ratio": ms["input"] / ms["torch input"],
        "weight_ratio": ms["weight"] / ms["torch weight"],
        "max_rel_err": errors,
    }


def _rel_err(a, b) -> float:
    return float(np.max(np.abs(np.asarray(a) - b)) / max(float(np.max(np.abs(b))), 1e-30))


def markdown(result: dict[str, Any]) -> str:
    meta = result["meta"]
    lines = [
        f"# Gradients against torch: {meta['machine']}, set {meta['set']}",
        "",
        f"{meta['date']}, {meta.get('cpu_model', '')}, git {meta['git']}; NumPy "
        f"{meta['versions'].get('numpy', '?')}, torch {meta['versions'].get('torch', '?')}; "
        f"OPENBLAS_CORETYPE {meta['env'].get('OPENBLAS_CORETYPE') or 'unset'} "
        f"(unset by re-execution: {meta.get('env_removed_by_reexec') or 'nothing'}). Medians in ms; "
        "ratio = portconv (NumPy) / torch (CPU).",
        "",
        "| layer | input grad | torch | ratio | weight grad | torch | ratio |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        ms = r["ms"]
        lines.append(
            f"| {r['name']} | {ms['input']:.2f} | {ms['torch input']:.2f} | "
            f"{r['input_ratio']:.2f} | {ms['weight']:.2f} | {ms['torch weight']:.2f} | "
            f"{r['weight_ratio']:.2f} |"
        )
    s = result["summary"]
    lines += [
        "",
        f"Geometric mean of the ratios: input {s['input_geomean']:.2f}, "
        f"weight {s['weight_geomean']:.2f}.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", choices=tuple(SETS), default="networks")
    add_output_flags(parser)
    args = parse_or_reexecute(parser, argv, __file__)
    if isinstance(args, int):
        return args
    suffix = "" if args.set == "networks" else f"-{args.set}"
    stem = Path(__file__).resolve().parent / "results" / f"grads-{machine_name()}{suffix}"
    json_path, md_path = Path(args.json or f"{stem}.json"), Path(args.md or f"{stem}.md")
    start, load_start = time.perf_counter(), loadavg()
    rows = []
    shapes = [s for s in SETS[args.set] if s.kind == "nn"]
    for i, shape in enumerate(shapes):
        rows.append(measure(shape))
        r = rows[-1]
        print(
            f"[{i + 1}/{len(shapes)}] {shape.name}: input {r['input_ratio']:.2f}, "
            f"weight {r['weight_ratio']:.2f}",
            file=sys.stderr,
            flush=True,
        )
    meta = {**describe_machine(), "set": args.set}
    meta["elapsed_s"] = round(time.perf_counter() - start, 1)
    meta["loadavg_start"], meta["loadavg_end"] = load_start, loadavg()
    summary = {
        f"{k}_geomean": float(np.exp(np.mean(np.log([r[f"{k}_ratio"] for r in rows]))))
        for k in ("input", "weight")
    }
    result = {"meta": meta, "summary": summary, "rows": rows}
    write_results(json_path, md_path, result, markdown(result))
    print(f"wrote {json_path} and {md_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
