"""Run portconv's benchmark suite: ``python benchmarks/run.py [--quick] [--backend NAME] ...``.

A thin wrapper around :func:`portconv.cli.bench.main`; see
``benchmarks/README.md`` for the flags and the outputs.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run from a source checkout without installing portconv.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from portconv.cli.bench import main

if __name__ == "__main__":
    raise SystemExit(main())
