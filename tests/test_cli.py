"""The command line: walkthrough, info, check, bench wiring, exit codes, help."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from portconv.__main__ import main
from portconv.cli import backends, equivalence, walkthrough

from . import _backends

REPO = Path(__file__).resolve().parents[1]
#: test-registry names the command line also knows (strict's second device is tests-only)
_CLI_NAMES = set(backends.NAMES)


def _asked_for() -> list[str]:
    """The backends named in PORTCONV_TEST_BACKENDS (default: NumPy alone, for speed)."""
    if not os.environ.get(_backends.ENV, "").strip():
        return ["numpy"]
    return [n for n in _backends.selected_names() if n in _CLI_NAMES]


def _check_row(out: str, name: str) -> str:
    """The table row of ``name`` (a backend or a function) with pass marks."""
    rows = [
        line
        for line in out.splitlines()
        if line.split()[:1] == [name] and ("✓" in line or "✗" in line)
    ]
    assert len(rows) == 1, out
    return rows[0]


def test_walkthrough_numpy(capsys):
    assert main(["--backend", "numpy"]) == 0
    out = capsys.readouterr().out
    row = _check_row(out, "numpy")
    assert row.count("✓") == len(walkthrough.CHECKS) and "✗" not in out
    assert "= -6" in out and "gives -5" in out
    assert "rows [0, 1, 0, 0, 0, -1, 0]" in out
    assert "Timings" in out and "np.correlate" in out


@pytest.mark.parametrize("name", _asked_for())
def test_walkthrough_asked_for(name, capsys):
    assert main(["walkthrough", "--backend", name, "--no-bench"]) == 0
    out = capsys.readouterr().out
    assert _check_row(out, name).count("✓") == len(walkthrough.CHECKS)
    assert "Timings" not in out


def test_walkthrough_failure_exits_1(monkeypatch, capsys):
    def broken(backend):
        raise RuntimeError("boom")

    monkeypatch.setattr(walkthrough, "CHECKS", (("broken", broken),))
    assert main(["--backend", "numpy", "--no-bench"]) == 1
    out = capsys.readouterr().out
    assert "✗ error" in out and "RuntimeError: boom" in out


def test_info(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "portconv 0.1.0" in out and "array-api-compat" in out
    assert "fft extension" in out
    (numpy_row,) = [line for line in out.splitlines() if line.startswith("numpy ")]
    assert np.__version__ in numpy_row and numpy_row.rstrip().endswith("yes")
    assert "devices seen:" in out


def test_check_numpy_writes_reports(tmp_path, capsys):
    assert main(["check", "--backend", "numpy", "--out-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    for func in equivalence.FUNCTIONS:
        assert "✓" in _check_row(out, func)
    (md,) = tmp_path.glob("equivalence-*.md")
    report = json.loads(md.with_suffix(".json").read_text(encoding="utf-8"))
    assert report["pass"] and report["backends"] == ["numpy"]
    for func in equivalence.FUNCTIONS:
        result = report["results"][func]["numpy"]
        assert result["cases"] > 0 and result["max_deviation"] <= 1.0
    assert "| correlate |" in md.read_text(encoding="utf-8")


def test_check_deviation_exits_1(monkeypatch, capsys):
    a = np.arange(5.0)
    wrong = equivalence.Case(
        "correlate", "wrong oracle", (a, a), lambda x, y: x, lambda: a + 1, 1e-9
    )
    monkeypatch.setattr(equivalence, "build_cases", lambda seed=0: [wrong])
    assert main(["check", "--backend", "numpy"]) == 1
    out = capsys.readouterr().out
    assert "✗" in _check_row(out, "correlate") and "wrong oracle" in out


@pytest.mark.parametrize("command", [[], ["check"], ["walkthrough"]])
def test_unknown_backend_exits_2(command, capsys):
    assert main([*command, "--backend", "notalib"]) == 2
    err = capsys.readouterr().err
    assert "unknown backend 'notalib'" in err and "numpy" in err


def test_missing_library_exits_2(monkeypatch, capsys):
    # a library that cannot be imported, whatever is installed here
    monkeypatch.setitem(sys.modules, "cupy", None)
    monkeypatch.setattr(backends, "_LOADED", {})
    assert main(["check", "--backend", "cupy"]) == 2
    assert "backend 'cupy' was asked for, but cupy is not installed" in capsys.readouterr().err


def test_no_device_exits_2(monkeypatch, capsys):
    def no_gpu(name):
        raise backends.BackendError("jax sees no gpu device")

    monkeypatch.setitem(backends._FACTORIES, "jax-gpu", no_gpu)
    monkeypatch.setattr(backends, "_LOADED", {})
    assert main(["--backend", "jax-gpu"]) == 2
    assert "jax sees no gpu device" in capsys.readouterr().err


@pytest.mark.parametrize("command", [[], ["walkthrough"], ["info"], ["check"], ["bench"]])
def test_help(command, capsys):
    assert main([*command, "--help"]) == 0
    assert "usage:" in capsys.readouterr().out


def test_usage_error_exits_2(capsys):
    assert main(["--no-such-option"]) == 2
    assert "usage:" in capsys.readouterr().err


def test_python_dash_m_help():
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    )
    proc = subprocess.run(
        [sys.executable, "-m", "portconv", "--help"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0 and "usage: portconv" in proc.stdout
    assert "exit codes" in proc.stdout


def test_progress_lines():
    stream = io.StringIO()
    progress = backends.Progress(stream)
    progress(3, 12, "jax: edge detection")
    progress.close()
    assert stream.getvalue() == "[3/12] jax: edge detection...\n"


def test_deviation_units():
    assert equivalence.deviation(np.ones(3), np.ones(3) + 1e-9, 1e-9) == pytest.approx(1.0)
    assert equivalence.deviation(np.arange(3), np.arange(3), 0.0) == 0.0
    assert equivalence.deviation(np.arange(3), np.arange(3) + 1, 0.0) == float("inf")
    assert equivalence.deviation(np.ones(3), np.ones(4), 1.0) == float("inf")


@pytest.mark.parametrize(
    ("padding", "stride", "expected"),
    [("same", 1, ((1, 1),)), ("same", 2, ((0, 1),)), ("valid", 1, ((0, 0),)), (2, 1, ((2, 2),))],
)
def test_reference_pads(padding, stride, expected):
    assert equivalence.reference_pads(padding, (8,), (3,), (stride,), (1,)) == expected
