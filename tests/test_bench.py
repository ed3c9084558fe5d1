"""Smoke test of the benchmark runner on tiny shapes (NumPy backend only).

Checks that the suite runs end to end and writes well-formed outputs; it
asserts nothing about speed.
"""

from __future__ import annotations

import json

import pytest

from portconv.cli import bench

# Every case kind of the suite, shrunk so the whole run takes a few seconds.
TINY = bench.Sizes(
    image=24,
    kernels=(3, 5),
    signal=300,
    taps=17,
    batch=1,
    dense=(8,),
    stem=16,
    depthwise=6,
    volume=6,
    transposed=5,
    channel_div=16,
    runs=3,
    max_runs=3,
    target_s=0.1,
)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    paths = {"json": out / "r.json", "plot": out / "r.png", "md": out / "r.md"}
    messages: list[str] = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(bench, "QUICK", TINY)
        mp.setattr(bench, "_PAUSE_S", 0.0)  # tiny calls: no thread pools to let settle
        result = bench.run_suite(
            ["numpy"],
            quick=True,
            json_path=str(paths["json"]),
            plot_path=str(paths["plot"]),
            md_path=str(paths["md"]),
            progress=messages.append,
        )
    return result, paths, messages


def test_json_rows_have_positive_medians_and_ratios(tiny_run):
    result, paths, _ = tiny_run
    saved = json.loads(paths["json"].read_text())
    assert saved["rows"] == result["rows"]
    names = [c.name for c in bench.cases(TINY)]
    assert [r["case"] for r in saved["rows"]] == names
    for row in saved["rows"]:
        assert row["backend"] == "numpy"
        assert row["error"] is None, row
        assert row["portconv_s"] > 0
        assert row["peak_bytes"] > 0
        assert row["gflops"] > 0
        if row["anchor"] is not None:
            assert row["anchor_s"] > 0
            assert row["ratio"] == pytest.approx(row["portconv_s"] / row["anchor_s"])
    # SciPy anchors every correlation; torch, when installed, every NN case
    correlations = [r for r in saved["rows"] if r["case"].startswith(("image", "signal"))]
    assert correlations and all(r["ratio"] > 0 for r in correlations)


def test_every_method_agrees_with_its_reference(tiny_run):
    result, _, _ = tiny_run
    for case in result["cases"]:
        for m in case["methods"]:
            assert m["error"] is None, (case["name"], m)
            assert len(m["times_s"]) == TINY.runs
            assert m["max_rel_err"] is not None and m["max_rel_err"] < 1e-4, (case["name"], m)


def test_metadata_and_outputs(tiny_run):
    result, paths, messages = tiny_run
    meta = result["meta"]
    assert meta["machine"] == bench.machine_name()
    assert meta["quick"] is True and meta["backends"] == ["numpy"]
    assert set(bench.DROP_ENV) <= set(meta["env"])
    assert meta["versions"]["numpy"]
    png = paths["plot"].read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 1000
    md = paths["md"].read_text()
    assert "| case | shape | backend |" in md
    assert all(name in md for name in (r["case"] for r in result["rows"]))
    assert len(messages) >= len(result["cases"])


def test_reexec_env_drops_openblas_overrides_once():
    env = {"OPENBLAS_CORETYPE": "Haswell", "OPENBLAS_L2_SIZE": "1048576", "PATH": "/bin"}
    child = bench.reexec_env(env)
    assert child is not None
    assert "OPENBLAS_CORETYPE" not in child and "OPENBLAS_L2_SIZE" not in child
    assert json.loads(child["PORTCONV_BENCH_REEXEC"]) == {
        "OPENBLAS_CORETYPE": "Haswell",
        "OPENBLAS_L2_SIZE": "1048576",
    }
    assert child["PATH"] == "/bin" and child["PYTHONPATH"]
    assert bench.reexec_env(child) is None  # the child never re-executes again
    assert bench.reexec_env({"PATH": "/bin"}) is None


@pytest.mark.parametrize("bad", [["cupy"], []])
def test_run_suite_rejects_unknown_or_empty_backends(bad):
    with pytest.raises(ValueError, match="backend"):
        bench.run_suite(bad, quick=True, json_path=None, plot_path=None, md_path=None)


def test_interleaving_draws_a_fresh_order_and_can_lead_in():
    log: list[str] = []
    runs = {name: (lambda name=name: log.append(name)) for name in "abcd"}
    first = dict.fromkeys(runs, 0.001)
    times, _ = bench.time_interleaved(runs, 6, 6, 0.0, first, pause_s=0.0)
    assert all(len(t) == 6 for t in times.values())
    rounds = [tuple(log[i : i + 4]) for i in range(0, 24, 4)]
    assert all(sorted(r) == list("abcd") for r in rounds)
    assert len(set(rounds)) > 1  # not one fixed order
    # no method always follows the same one (a rotation would fix that)
    before = {n: {r[r.index(n) - 1] for r in rounds if r.index(n)} for n in "abcd"}
    assert any(len(v) > 1 for v in before.values())
    # the same seeds: a rerun draws the same orders
    log.clear()
    bench.time_interleaved(runs, 6, 6, 0.0, first, pause_s=0.0)
    assert [tuple(log[i : i + 4]) for i in range(0, 24, 4)] == rounds
    # lead-in: each timed call right after an untimed call of the same method
    log.clear()
    times, _ = bench.time_interleaved(runs, 3, 3, 0.0, first, pause_s=0.0, lead_in=True)
    assert all(len(t) == 3 for t in times.values())
    assert len(log) == 24 and all(log[i] == log[i + 1] for i in range(0, 24, 2))
