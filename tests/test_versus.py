"""The native-library comparison (``benchmarks/versus.py``) on tiny shapes, NumPy only.

Checks that a row is measured end to end, that portconv and the anchor agree,
and that the summary counts what the rows say; it asserts nothing about speed.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import sweep
import versus

SHAPES = (
    sweep.Shape("1d 40*5", (40,), (5,), mode="same"),
    sweep.Shape("2d 9x7*2x3 full", (9, 7), (2, 3), mode="full"),
)


@pytest.fixture(scope="module")
def rows():
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(versus, "REPEATS", (3, 3, 0.05))
        mp.setattr("portconv.cli.bench._PAUSE_S", 0.0)
        return [versus.measure(shape, ("numpy",)) for shape in SHAPES]


def test_rows_time_every_method_and_agree_with_the_anchor(rows):
    for shape, row in zip(SHAPES, rows):
        assert row["name"] == shape.name and row["kind"] == "signal"
        assert "portconv[numpy]" in row["median_s"] and "scipy.signal.correlate" in row["median_s"]
        assert all(t > 0 for t in row["median_s"].values())
        best = min(t for name, t in row["median_s"].items() if not name.startswith("portconv"))
        assert row["numpy"]["ratio"] == row["median_s"]["portconv[numpy]"] / best
        assert row["numpy"]["rel_err"] < 1e-5
        assert all(row["min_s"][n] <= t for n, t in row["median_s"].items())
    # ndimage only where its centring is SciPy's 'same': odd kernels
    assert "scipy.ndimage.correlate" in rows[0]["median_s"]
    assert "scipy.ndimage.correlate" not in rows[1]["median_s"]


def test_summary_counts_the_ratios_and_the_report_lists_every_shape(rows):
    fake = [dict(r, numpy=dict(r["numpy"], ratio=q)) for r, q in zip(rows, (0.5, 1.8))]
    s = versus.summary(fake, ("numpy",))
    assert s["numpy/signal"]["at_most"] == {"1.0": 1, "1.5": 1, "2.0": 2}
    assert s["numpy/signal"]["geomean"] == pytest.approx(0.9**0.5)
    assert s["numpy/all"]["max"] == 1.8 and "numpy/nn" not in s
    meta = {
        "machine": "m",
        "date": "2026-12-04",
        "set": "eval",
        "cpu_model": "cpu",
        "usable_cores": 2,
        "git": "abc",
        "openblas_coretype": "x",
        "env_removed_by_reexec": None,
        "elapsed_s": 1.0,
        "loadavg_start": None,
        "loadavg_end": None,
        "backends": ["numpy"],
    }
    text = versus.markdown({"meta": meta, "summary": s, "rows": fake})
    for shape in SHAPES:
        assert f"| {shape.name} |" in text
    assert "| numpy | signal | 2 | 1 | 1 | 2 | 0.95 | 1.80 |" in text
    stalled = dict(fake[0], min_s=dict(fake[0]["min_s"], **{"portconv[numpy]": 1e-9}))
    assert " ‡ |" in versus.markdown({"meta": meta, "summary": s, "rows": [stalled]})
