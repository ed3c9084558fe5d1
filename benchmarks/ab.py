"""Old tree against new in one process: the A/B behind the CHANGELOG's before -> after times.

Usage::

    git archive <rev> portconv | tar -x -C OLD      # the old tree's package in OLD/portconv
    python benchmarks/ab.py OLD [--set weight|strided|depthwise|pointwise|input|deep] [--runs N]
    python benchmarks/ab.py OLD --set eval|train|unusual|networks|sequences|signals [--all] [--runs N]

The sets ``weight``, ``strided``, ``depthwise`` and ``pointwise`` (1x1
layers) time ``conv_weight_grad``,
``input`` times ``conv_input_grad`` of strided layers (kernels narrower
than their stride, ResNet's 1x1 stride-2 shortcuts among them, then wider
ones), ``deep`` that of stride-1 layers (deep ResNet stages, batch 1 and
8, 1-d, 3-d, grouped and dilated ones); the names of
``benchmarks/sweep.py``'s sets time the forward call (``correlate`` or
``conv``) of each shape whose plan differs between the trees (``--all``:
of every shape).

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
import dataclasses
import importlib.util
import pathlib
import shutil
import sys
import tempfile
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sweep import SETS as SWEEP_SETS  # noqa: E402

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
    "pointwise": (
        ((8, 24, 56, 56), (144, 24, 1, 1), {}),
        ((8, 144, 28, 28), (32, 144, 1, 1), {}),
        ((8, 576, 14, 14), (96, 576, 1, 1), {}),
        ((8, 64, 56, 56), (128, 64, 1, 1), {"stride": 2}),
        ((8, 128, 28, 28), (256, 128, 1, 1), {"stride": 2}),
        ((8, 256, 14, 14), (512, 256, 1, 1), {"stride": 2}),
        ((1, 64, 112, 112), (64, 64, 1, 1), {}),
        ((2, 64, 56, 56), (256, 64, 1, 1), {}),
        ((8, 64, 28, 28), (64, 16, 1, 1), {"groups": 4}),
        ((8, 256, 1000), (256, 256, 1), {}),
    ),
    "input": (
        ((8, 64, 56, 56), (128, 64, 1, 1), {"stride": 2}),
        ((8, 128, 28, 28), (256, 128, 1, 1), {"stride": 2}),
        ((8, 256, 14, 14), (512, 256, 1, 1), {"stride": 2}),
        ((2, 64, 28, 28), (128, 64, 1, 1), {"stride": 2}),
        ((8, 32, 32, 32), (32, 32, 2, 2), {"stride": 3}),
        ((4, 16, 4000), (32, 16, 3), {"stride": 4, "padding": 1}),
        ((2, 8, 16, 16, 16), (16, 8, 1, 1, 1), {"stride": 2}),
        ((4, 32, 32, 32), (64, 32, 3, 1), {"stride": 2, "padding": (1, 0)}),
        ((8, 64, 56, 56), (128, 64, 3, 3), {"stride": 2, "padding": 1}),
        ((8, 128, 28, 28), (256, 128, 3, 3), {"stride": 2, "padding": 1}),
        ((8, 256, 14, 14), (512, 256, 3, 3), {"stride": 2, "padding": 1}),
        ((8, 32, 112, 112), (32, 32, 3, 3), {"stride": 2, "padding": 1}),
        ((8, 3, 224, 224), (64, 3, 7, 7), {"stride": 2, "padding": 3}),
        ((16, 32, 32, 32), (64, 32, 5, 5), {"stride": 2, "padding": 2}),
        ((16, 64, 4000), (64, 64, 9), {"stride": 4, "padding": 4}),
        ((2, 8, 16, 16, 16), (16, 8, 3, 3, 3), {"stride": 2, "padding": 1}),
    ),
    "deep": (
        ((1, 512, 7, 7), (512, 512, 3, 3), {"padding": 1}),
        ((8, 512, 7, 7), (512, 512, 3, 3), {"padding": 1}),
        ((1, 256, 14, 14), (256, 256, 3, 3), {"padding": 1}),
        ((8, 256, 14, 14), (256, 256, 3, 3), {"padding": 1}),
        ((8, 128, 28, 28), (128, 128, 3, 3), {"padding": 1}),
        ((8, 64, 56, 56), (64, 64, 3, 3), {"padding": 1}),
        ((8, 32, 32, 32), (64, 32, 5, 5), {"padding": 2}),
        ((8, 256, 1000), (256, 256, 3), {"padding": 1}),
        ((1, 32, 16, 32, 32), (32, 32, 3, 3, 3), {"padding": 1}),
        ((8, 256, 14, 14), (256, 64, 3, 3), {"padding": 1, "groups": 4}),
        ((8, 256, 14, 14), (256, 256, 3, 3), {"padding": 2, "dilation": 2}),
    ),
}
#: Sets timed on ``conv_input_grad`` (the others: ``conv_weight_grad``).
INPUT_GRAD_SETS = ("input", "deep")


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


def _planned(module, call):
    """The top-level plans ``call`` makes with ``module`` (a portconv package)."""
    core = module._core
    plans = []
    original = core.plan_correlation

    def spy(*args, **kwargs):
        plans.append(original(*args, **kwargs))
        return plans[-1]

    core.plan_correlation = spy
    try:
        call()
    finally:
        core.plan_correlation = original
    return plans


def _plan_key(plan) -> str:
    """``plan``'s fields away from their defaults, so a field the old tree lacks is no change.

    Its modelled ``cost`` is left out: a change of the cost model moves it
    on every plan, and only what runs matters here.
    """
    if not dataclasses.is_dataclass(plan):
        return repr(plan)
    fields = dataclasses.fields(plan)
    return repr(
        [
            (f.name, _plan_key(getattr(plan, f.name)))
            for f in fields
            if f.name != "cost" and getattr(plan, f.name) != f.default
        ]
    )


def _forward_cases(old, name: str, rng, every: bool = False):
    """(label, old call, new call) of each shape of a sweep set whose plan changed (or all)."""
    for shape in SWEEP_SETS[name]:
        x = rng.standard_normal(shape.x, dtype=np.float32)
        w = rng.standard_normal(shape.w, dtype=np.float32)
        if shape.kind == "signal":
            kw = {"mode": shape.mode}
            calls = [lambda m=m, x=x, w=w, kw=kw: m.correlate(x, w, **kw) for m in (old, portconv)]
        else:
            kw = dict(
                stride=shape.stride,
                padding=shape.padding,
                dilation=shape.dilation,
                groups=shape.groups,
            )
            calls = [lambda m=m, x=x, w=w, kw=kw: m.conv(x, w, **kw) for m in (old, portconv)]
        before, after = (_planned(m, c) for m, c in zip((old, portconv), calls))
        if every or [_plan_key(p) for p in before] != [_plan_key(p) for p in after]:
            yield shape.name, calls[0], calls[1]


def _grad_cases(old, name: str, rng):
    for xs, ws, kw in SETS[name]:
        x = rng.standard_normal(xs, dtype=np.float32)
        w = rng.standard_normal(ws, dtype=np.float32)
        gy = rng.standard_normal(portconv.conv(x, w, **kw).shape, dtype=np.float32)
        if name in INPUT_GRAD_SETS:

            def run_old(xs=xs, w=w, gy=gy, kw=kw):
                return old.conv_input_grad(xs, w, gy, **kw)

            def run_new(xs=xs, w=w, gy=gy, kw=kw):
                return portconv.conv_input_grad(xs, w, gy, **kw)

        else:

            def run_old(x=x, ws=ws, gy=gy, kw=kw):
                return old.conv_weight_grad(x, ws, gy, **kw)

            def run_new(x=x, ws=ws, gy=gy, kw=kw):
                return portconv.conv_weight_grad(x, ws, gy, **kw)

        yield f"{xs} {ws} {kw}", run_old, run_new


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old", type=pathlib.Path, help="a directory holding the old portconv/")
    parser.add_argument("--set", choices=tuple(SETS) + tuple(SWEEP_SETS), default="weight")
    parser.add_argument("--runs", type=int, default=11)
    parser.add_argument(
        "--all", action="store_true", help="sweep sets: time every shape, not only changed plans"
    )
    args = parser.parse_args(argv)
    old = load_old(args.old)
    rng = np.random.default_rng(0)
    forward = args.set in SWEEP_SETS
    what = "conv_weight_grad"
    if forward:
        what = "forward calls" + ("" if args.all else " whose plan changed")
    what = "conv_input_grad" if args.set in INPUT_GRAD_SETS else what
    print(f"{what}, set {args.set}, NumPy {np.__version__}, medians of {args.runs}")
    if forward:
        cases = _forward_cases(old, args.set, rng, args.all)
    else:
        cases = _grad_cases(old, args.set, rng)
    for label, run_old, run_new in cases:
        a, b = np.asarray(run_old()), np.asarray(run_new())
        err = float(np.abs(a - b).max() / np.abs(a).max())
        t_old: list[float] = []
        t_new: list[float] = []
        for r in range(args.runs):
            pairs = ((run_old, t_old), (run_new, t_new))
            for call, times in pairs if r % 2 else pairs[::-1]:
                _ms(call, times)
        mo, mn = 1e3 * np.median(t_old), 1e3 * np.median(t_new)
        print(f"{label}: old {mo:.3g} ms, new {mn:.3g} ms, {mn / mo:.2f}, diff {err:.1e}")


if __name__ == "__main__":
    main()
