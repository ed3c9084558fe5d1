"""Fit a row of the planner's cost constants to measured strategy sweeps.

Usage::

    python benchmarks/fit_cost_model.py --train T.json... [--eval E.json...] [--table cpu|cpu-xla] [--write]

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
see stay where they were.  It prints the constants to paste into
``_plan.py`` (``--write`` edits the file in place) and, for both sets, how many
shapes the fitted model would pick within 10% of the fastest strategy
*predicted from the stored measurements*; rerun ``sweep.py`` afterwards for the
measured answer (block sizes and FFT lengths may move with the constants).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np
from scipy import optimize

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from sweep import TOLERANCE, _geometry, shape_from_row

from portconv import _plan

BASE = ("call", "elem", "copy", "gather", "read", "gemm", "gemm_k", "gemm_n", "fft", "fft_each")
FACTORS = ("base",) + tuple(f"{kind}_{s}" for kind in ("x", "o") for s in _plan.STRATEGIES)
#: Starting values of terms the table may not have yet.
START = {"base": 100e-6, **{"o_" + s: 50e-6 for s in _plan.STRATEGIES}}
PRIOR_WEIGHT = 0.02  # per parameter, on log-constants
LOOSE_PRIOR = 0.002  # fixed overheads: little is known about them beforehand
REGRET_WEIGHT = 1.0
SOFTMIN_TEMPERATURE = 0.05  # in log-time units


PRIOR = np.array(
    [LOOSE_PRIOR if k == "base" or k.startswith("o_") else PRIOR_WEIGHT for k in BASE + FACTORS]
)


def _problems(paths: list[str]) -> list[dict[str, Any]]:
    """Each shape's geometry, and per strategy its plan details and median.

    With several sweeps of the same shapes, a strategy's time is the
    geometric mean of its medians over the sweeps whose plan had the same
    block and FFT length (fewer noisy outliers to fit).
    """
    runs = [json.loads(Path(path).read_text())["rows"] for path in paths]
    rows = runs[0]
    for r in rows:
        for strategy in r["median_s"]:
            values = [
                o["median_s"][strategy]
                for other in runs
                for o in other
                if o["name"] == r["name"]
                and strategy in o["median_s"]
                and o["model"][strategy]["block"] == r["model"][strategy]["block"]
                and o["model"][strategy]["fft_shape"] == r["model"][strategy]["fft_shape"]
            ]
            r["median_s"][strategy] = math.exp(sum(map(math.log, values)) / len(values))
    out = []
    for r in rows:
        g = _geometry(shape_from_row(r))
        entries = []
        for strategy, median in r["median_s"].items():
            m = r["model"][strategy]
            fft_shape = None if m["fft_shape"] is None else tuple(m["fft_shape"])
            tiles = (m.get("batch_tile", g.batch), m.get("row_tile"))
            entries.append((strategy, fft_shape, m["block"], tiles, median))
        out.append({"name": r["name"], "g": g, "entries": entries})
    return out


FIXED: dict[str, float] = {}  # the row's entries that are facts, not fitted


def _table(theta: np.ndarray) -> dict[str, float]:
    return {**FIXED, **dict(zip(BASE + FACTORS, np.exp(theta).tolist()))}


def _model(p: dict[str, Any], table: dict[str, float]) -> np.ndarray:
    dtype = _plan.DtypeInfo("real", 4)
    return np.array(
        [
            _plan.tiled_cost(p["g"], s, dtype, "cpu", fft, block, *tiles, costs=table)
            for s, fft, block, tiles, _ in p["entries"]
        ]
    )


def _loss(theta: np.ndarray, problems: list[dict[str, Any]], theta0: np.ndarray) -> float:
    table = _table(theta)
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
    prior = float(np.sum(PRIOR * (theta - theta0) ** 2))
    return sq / count + REGRET_WEIGHT * regret / len(problems) + prior


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
    for name, value in table.items():
        shown = str(value) if isinstance(value, int) else f"{value:.3g}"
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
    args = ap.parse_args(argv)
    train = _problems(args.train)
    row = _plan._COSTS[args.table]
    FIXED.update({k: v for k, v in row.items() if k not in BASE + FACTORS})
    current = {**FIXED, **{k: row.get(k, START.get(k, 1.0)) for k in BASE + FACTORS}}
    theta0 = np.log(np.array([current[k] for k in BASE + FACTORS]))
    result = optimize.minimize(
        _loss, theta0, args=(train, theta0), method="Powell", options={"maxiter": 20000}
    )
    result = optimize.minimize(_loss, result.x, args=(train, theta0), method="L-BFGS-B")
    table = _table(result.x)
    print(f"loss {_loss(theta0, train, theta0):.4f} -> {result.fun:.4f} ({result.message})")
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
