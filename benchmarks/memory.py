"""Peak memory of NumPy calls against their operands: the scan behind README's memory lines.

Usage::

    python benchmarks/memory.py [--set eval|train|unusual|networks|sequences|large ...]
                                [--share 3]

For each shape of the named sets (``benchmarks/sweep.py``'s, plus ``large``
below) this runs the forward call (``correlate`` for SciPy-style shapes,
``conv`` for layers) and, for layers, ``conv_input_grad`` and
``conv_weight_grad``, each once under ``tracemalloc``, and prints the peak
(output included) divided by the bytes of the call's input, weight and
output.  NumPy reports its allocations to tracemalloc; a first untraced call
warms the planner's caches so they are not counted.  Calls over ``--share``
are marked and counted.  Memory does not depend on the machine's load, so
one run is the measurement.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import tracemalloc

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from sweep import SETS as SWEEP_SETS  # noqa: E402
from sweep import Shape, _nn, _sig  # noqa: E402

import portconv  # noqa: E402

#: Shapes of tens to hundreds of MB: the issue's suite layers and long signals.
LARGE_SHAPES: tuple[Shape, ...] = (
    _sig("image 1024^2*3^2", (1024, 1024), (3, 3)),
    _sig("image 1024^2*11^2", (1024, 1024), (11, 11)),
    _sig("image 1024^2*31^2", (1024, 1024), (31, 31)),
    _sig("1d 1M*1025", (2**20,), (1025,)),
    _sig("1d 4M*257", (2**22,), (257,)),
    _sig("volume 128^3*5^3", (128, 128, 128), (5, 5, 5)),
    _nn("dense 8x64x56^2->64", (8, 64, 56, 56), (64, 64, 3, 3), padding=1),
    _nn("dense 8x128x28^2->128", (8, 128, 28, 28), (128, 128, 3, 3), padding=1),
    _nn("stem 8x3x224^2->64 7x7 s2", (8, 3, 224, 224), (64, 3, 7, 7), stride=2, padding=3),
    _nn("depthwise 8x256x28^2", (8, 256, 28, 28), (256, 1, 3, 3), padding=1, groups=256),
    _nn("volume 1x8x64^3->8", (1, 8, 64, 64, 64), (8, 8, 3, 3, 3), padding=1),
    _nn("1x1 8x256x28^2->512 s2", (8, 256, 28, 28), (512, 256, 1, 1), stride=2),
)
SETS = dict(SWEEP_SETS, large=LARGE_SHAPES)


def _peak(call) -> int:
    """tracemalloc peak of one call, its result included."""
    call()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        result = call()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    del result
    return peak


def _calls(shape: Shape, rng) -> list[tuple[str, int, object]]:
    """(call name, operand bytes, call) of each call measured for ``shape``."""
    x = rng.standard_normal(shape.x, dtype=np.float32)
    w = rng.standard_normal(shape.w, dtype=np.float32)
    if shape.kind == "signal":
        y = portconv.correlate(x, w, mode=shape.mode)
        return [
            (
                "correlate",
                x.nbytes + w.nbytes + y.nbytes,
                lambda: portconv.correlate(x, w, mode=shape.mode),
            )
        ]
    kw = dict(
        stride=shape.stride, padding=shape.padding, dilation=shape.dilation, groups=shape.groups
    )
    y = portconv.conv(x, w, **kw)
    gy = rng.standard_normal(y.shape, dtype=np.float32)
    operands = x.nbytes + w.nbytes + y.nbytes
    return [
        ("conv", operands, lambda: portconv.conv(x, w, **kw)),
        ("conv_input_grad", operands, lambda: portconv.conv_input_grad(x.shape, w, gy, **kw)),
        ("conv_weight_grad", operands, lambda: portconv.conv_weight_grad(x, w.shape, gy, **kw)),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", nargs="+", choices=tuple(SETS), default=["eval"])
    parser.add_argument("--share", type=float, default=3.0)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    print(f"NumPy {np.__version__}; peak / (input + weight + output), output included")
    over: dict[str, list[float]] = {}
    counted: dict[str, int] = {}
    for name in args.set:
        for shape in SETS[name]:
            for call_name, operands, call in _calls(shape, rng):
                ratio = _peak(call) / operands
                counted[call_name] = counted.get(call_name, 0) + 1
                mark = ""
                if ratio > args.share:
                    over.setdefault(call_name, []).append(ratio)
                    mark = "  OVER"
                mb = operands / 2**20
                print(f"{name:9} {shape.name:36} {call_name:16} {mb:9.2f} MB {ratio:5.2f}x{mark}")
    for call_name, n in counted.items():
        ratios = over.get(call_name, [])
        worst = f", worst {max(ratios):.2f}x" if ratios else ""
        print(f"{call_name}: {len(ratios)} of {n} calls over {args.share:g}x{worst}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
