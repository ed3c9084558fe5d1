"""Old tree against new in one process: the A/B behind the CHANGELOG's before -> after times.

Usage::

    git archive <rev> portconv | tar -x -C OLD      # the old tree's package in OLD/portconv
    python benchmarks/ab.py OLD [--set weight|strided|depthwise] [--runs N]

Imports ``OLD/portconv`` as a second package (``portconv_old``) next to this
checkout's ``portconv`` and times one call of each on every layer of the set,
alternating which goes first, each timed call right after an untimed one of
the same tree and a 30 ms pause: medians of ``--runs``.  Prints old ms, new
ms, their ratio and the largest difference of the results relative to the
largest value.  NumPy only, and without torch in the process (a torch thread
pool spinning beside OpenBLAS slows NumPy's calls at random).
"""

from __future__ import annotations

import argparse
import importlib.util
import pathlib
import shutil
import sys
import tempfile
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import portconv  # noqa: E402

# (input shape, weight shape, keyword arguments) of conv_weight_grad
SETS = {
    "weight": (
        ((8, 64, 56, 56), (64, 64, 3, 3), {"padding": 1}),
        ((8, 128, 28, 28), (128, 128, 3, 3), {"padding": 1}),
        ((8, 256, 14, 14), (256, 256, 3, 3), {"padding": 1}),
        ((8, 512, 7, 7), (512, 512, 3, 3), {"padding": 1}),
        ((8, 32, 32, 32), (64, 32, 5, 5), {"padding": 2}),
        ((8, 64, 28, 28), (64, 16, 3, 3), {"padding": 1, "groups": 4}),
        ((8, 3, 64, 64), (16, 3, 3, 3), {"padding": 1}),
        ((1, 8, 32, 32, 32), (8, 8, 3, 3, 3), {"padding": 1}),
    ),
    "strided": (
        ((8, 3, 224, 224), (64, 3, 7, 7), {"stride": 2, "padding": 3}),
        ((8, 3, 224, 224), (96, 3, 16, 16), {"stride": 16}),
        ((4, 32, 64, 64), (64, 32, 4, 4), {"stride": 2, "padding": 1}),
        ((16, 32, 32, 32), (64, 32, 5, 5), {"stride": 2, "padding": 2}),
        ((16, 64, 4000), (64, 64, 9), {"stride": 4, "padding": 4}),
        ((1, 8, 32, 32, 32), (16, 8, 4, 4, 4), {"stride": 2, "padding": 1}),
        ((8, 64, 56, 56), (128, 64, 3, 3), {"stride": 2, "padding": 1}),
        ((8, 128, 28, 28), (256, 128, 3, 3), {"stride": 2, "padding": 1}),
        ((8, 16, 32, 32), (32, 16, 3, 3), {"stride": (2, 1), "padding": 1}),
    ),
    "depthwise": (
        ((8, 256, 28, 28), (256, 1, 3, 3), {"padding": 1, "groups": 256}),
        ((8, 144, 56, 56), (144, 1, 3, 3), {"padding": 1, "groups": 144}),
        ((8, 128, 56, 56), (128, 1, 3, 3), {"stride": 2, "padding": 1, "groups": 128}),
        ((8, 576, 14, 14), (576, 1, 3, 3), {"padding": 1, "groups": 576}),
        ((8, 256, 1000), (256, 1, 31), {"padding": 15, "groups": 256}),
        ((8, 64, 28, 28), (128, 1, 3, 3), {"padding": 1, "groups": 64}),
    ),
}


def load_old(tree: pathlib.Path):
    """``tree/portconv`` imported as the package ``portconv_old`` (from a temporary copy)."""
    copy = pathlib.Path(tempfile.mkdtemp()) / "portconv_old"
    shutil.copytree(tree / "portconv", copy)
    spec = importlib.util.spec_from_file_location("portconv_old", copy / "__init__.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["portconv_old"] = module
    spec.loader.exec_module(module)
    return module


def _ms(call, times: list[float]) -> None:
    time.sleep(0.03)
    call()
    start = time.perf_counter()
    call()
    times.append(time.perf_counter() - start)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old", type=pathlib.Path, help="a directory holding the old portconv/")
    parser.add_argument("--set", choices=tuple(SETS), default="weight")
    parser.add_argument("--runs", type=int, default=11)
    args = parser.parse_args(argv)
    old = load_old(args.old)
    rng = np.random.default_rng(0)
    print(f"conv_weight_grad, set {args.set}, NumPy {np.__version__}, medians of {args.runs}")
    for xs, ws, kw in SETS[args.set]:
        x = rng.standard_normal(xs, dtype=np.float32)
        y = portconv.conv(x, rng.standard_normal(ws, dtype=np.float32), **kw)
        gy = rng.standard_normal(y.shape, dtype=np.float32)

        def run_old(x=x, ws=ws, gy=gy, kw=kw):
            return old.conv_weight_grad(x, ws, gy, **kw)

        def run_new(x=x, ws=ws, gy=gy, kw=kw):
            return portconv.conv_weight_grad(x, ws, gy, **kw)

        a, b = run_old(), run_new()
        err = float(np.abs(a - b).max() / np.abs(a).max())
        t_old: list[float] = []
        t_new: list[float] = []
        for r in range(args.runs):
            pairs = ((run_old, t_old), (run_new, t_new))
            for call, times in pairs if r % 2 else pairs[::-1]:
                _ms(call, times)
        mo, mn = 1e3 * np.median(t_old), 1e3 * np.median(t_new)
        print(f"{xs} {ws} {kw}: old {mo:.2f} ms, new {mn:.2f} ms, {mn / mo:.2f}, diff {err:.1e}")


if __name__ == "__main__":
    main()
