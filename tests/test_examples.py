"""Every example runs as a learner runs it: ``python examples/NAME.py --backend B``.

Backends: NumPy, and JAX when it is installed.  With ``PORTCONV_TEST_BACKENDS``
set, the examples run on the backends asked for that they support, and a
backend that was asked for is never skipped: if it cannot run, the test fails.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from . import _backends

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
#: test-registry name -> the examples' --backend name
_EXAMPLE_NAMES = {"numpy": "numpy", "jax": "jax", "jax-gpu": "jax", "torch": "torch"}
_EXAMPLE_NAMES.update({"cupy": "cupy", "dask": "dask"})


def _selected() -> list[str]:
    raw = os.environ.get(_backends.ENV, "").strip()
    if not raw:
        return ["numpy"] + (["jax"] if importlib.util.find_spec("jax") else [])
    names = []
    for part in raw.split(","):
        name = _EXAMPLE_NAMES.get(_backends.ALIASES.get(part.strip(), part.strip()))
        if name and name not in names:
            names.append(name)
    return names


BACKENDS = _selected()


def run_example(name: str, backend: str, cwd: Path, *extra: str) -> str:
    """Run ``examples/name.py`` in ``cwd``; assert exit 0; return its stdout."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / f"{name}.py"), "--backend", backend, *extra],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, f"{name} on {backend} exited {proc.returncode}:\n{proc.stderr}"
    assert f"backend: {backend}" in proc.stdout
    return proc.stdout


def test_every_example_is_tested():
    scripts = {p.stem for p in EXAMPLES.glob("*.py") if not p.name.startswith("_")}
    assert scripts == {
        "cross_correlation",
        "edge_detection",
        "learn_kernel",
        "channels_stride_padding",
    }


@pytest.mark.parametrize("library", BACKENDS)
def test_cross_correlation(library, tmp_path):
    out = run_example("cross_correlation", library, tmp_path)
    assert "result: -6" in out
    assert "[[3,0,1],[1,5,8],[2,7,2]] gives -5" in out
    # nine window positions, each agreeing with the hand computation
    positions = re.findall(r"window at row \d, column \d: portconv\s+(\S+)\s+by hand\s+(\S+)", out)
    assert len(positions) == 9
    assert all(float(a) == float(b) for a, b in positions)
    assert "correlate(x, k) == convolve(x, flip(k)): True" in out


@pytest.mark.parametrize("library", BACKENDS)
def test_edge_detection(library, tmp_path):
    png = tmp_path / "edges.png"
    out = run_example("edge_detection", library, tmp_path, "--out", str(png))
    edge_row = "[ 0  1  0  0  0 -1  0]"
    assert out.count(edge_row) == 6
    # the transposed image: an 8 x 5 map of zeros
    assert out.count("[0 0 0 0 0]") == 8
    assert out.count("[-1 -1 -1 -1 -1 -1]") == 1
    if importlib.util.find_spec("matplotlib"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    else:
        assert "was not written" in out


def test_edge_detection_default_png_in_cwd(tmp_path):
    pytest.importorskip("matplotlib")
    run_example("edge_detection", "numpy", tmp_path)
    assert (tmp_path / "edge_detection.png").stat().st_size > 0


@pytest.mark.parametrize("library", BACKENDS)
def test_learn_kernel(library, tmp_path):
    out = run_example("learn_kernel", library, tmp_path)
    match = re.search(r"learned kernel: \[(\S+), (\S+)\]", out)
    assert match, out
    k0, k1 = float(match.group(1)), float(match.group(2))
    assert abs(k0 - 1.0) <= 0.05 and abs(k1 + 1.0) <= 0.05
    losses = [float(v) for v in re.findall(r"loss (\S+)", out)]
    assert losses[-1] < losses[0]
    assert "step 20" in out and "step 24" not in out


@pytest.mark.parametrize("library", BACKENDS)
def test_channels_stride_padding(library, tmp_path):
    out = run_example("channels_stride_padding", library, tmp_path)
    assert "[ 56  72]" in out and "[104 120]" in out
    assert "weight (3, 2, 2, 2) -> output (3, 2, 2)" in out
    diff = float(re.search(r"max \|diff\| = (\S+)", out).group(1))
    assert diff < 1e-12
    rows = re.findall(r"^\s+\d+\s+\d+\s+\d+\s+\d+\s+\S+\s+(\d+)\s+(\d+)\s+(\S+)$", out, re.M)
    assert len(rows) == 9
    assert all(got == want and status == "ok" for got, want, status in rows)
