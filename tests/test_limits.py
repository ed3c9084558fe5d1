"""Smoke test of ``benchmarks/limits.py``: every probe runs and reports a measurement.

It asserts nothing about speed, only that the table the closing notes cite
is well formed: each row a positive median and a rate or fault count.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import limits


def test_limits_table_has_every_probe(tmp_path, capsys):
    md = tmp_path / "limits.md"
    assert limits.main(["--runs", "1", "--md", str(md)]) == 0
    rows = [
        line for line in md.read_text().splitlines() if line.startswith("| ") and "---" not in line
    ]
    rows = rows[1:]  # the header
    names = [r.split(" | ")[0] for r in rows]
    assert sum("numpy matmul" in n for n in names) == len(limits.GEMMS)
    assert sum("dense-56 on NumPy" in n for n in names) == 2  # dropped and kept
    split = [r for r in rows if "in matmul / whole call" in r]
    assert len(split) == len(limits.SPLIT_LAYERS)
    for row in split:  # the products are part of the call
        products, whole = map(float, re.search(r"([0-9.]+) / ([0-9.]+) ms", row).groups())
        assert 0 < products <= whole, row
    # the allocator probe: every layer on NumPy, in every child process
    allocator = [n for n in names if " / ".join(limits.ALLOCATOR_SETTINGS) in n]
    numpy_rows = [n for n in allocator if "portconv[numpy]" in n]
    assert len(numpy_rows) == len(limits.ALLOCATOR_LAYERS)
    for row in rows:
        if "hint off" in row:
            cells = row.strip("|").split(" | ")
            assert re.fullmatch(r"[0-9.]+ / [0-9.]+ / [0-9.]+ ms", cells[1].strip()), row
    for row in rows:
        _, median, rate = (cell.strip() for cell in row.strip("|").split(" | "))
        value = float(re.match(r"[0-9.]+", median).group())
        assert value > 0, row
        assert re.search(r"GFLOP/s|page faults/call|GB/s", rate), row
    assert "| probe | median | rate |" in capsys.readouterr().out
