"""The once-per-process heap hint of ``portconv._heap`` (see its module doc)."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import textwrap

import pytest

from portconv import _heap


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch) -> None:
    """A process that has not given the hint yet."""
    monkeypatch.setattr(_heap, "_hinted", False)
    monkeypatch.delenv("PORTCONV_KEEP_HEAP", raising=False)


def test_hint_once_for_numpy_backed_large_calls(backend, fresh) -> None:
    x = backend.asarray(__import__("numpy").zeros((2, 3), dtype="float32"))
    numpy_backed = backend.name == "numpy" or backend.name.startswith("array_api_strict")
    assert _heap.keep_heap(backend.xp, x, _heap.MIN_CALL_BYTES - 1) is False
    assert _heap.keep_heap(backend.xp, x, _heap.MIN_CALL_BYTES) is numpy_backed
    assert _heap.keep_heap(backend.xp, x, _heap.MIN_CALL_BYTES) is False  # once only


def test_env_turns_the_hint_off(fresh, monkeypatch: pytest.MonkeyPatch) -> None:
    import array_api_compat.numpy as xp

    x = xp.zeros((2, 3))
    monkeypatch.setenv("PORTCONV_KEEP_HEAP", "0")
    assert _heap.keep_heap(xp, x, 1 << 30) is False
    monkeypatch.setenv("PORTCONV_KEEP_HEAP", "1")
    assert _heap.keep_heap(xp, x, 1 << 30) is True


_CHILD = textwrap.dedent(
    """
    import json, resource
    import numpy as np, portconv
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 3, 224, 224), dtype=np.float32)
    w = rng.standard_normal((64, 3, 7, 7), dtype=np.float32)
    faults = []
    for _ in range(4):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        y = portconv.conv(x, w, stride=2, padding=3)
        del y
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    print(json.dumps(faults))
    """
)


def _faults_per_call(keep: str) -> list[int]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    env["PORTCONV_KEEP_HEAP"] = keep
    out = subprocess.run(
        [sys.executable, "-c", _CHILD], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(
    platform.libc_ver()[0] != "glibc", reason="the hint is addressed to glibc's malloc"
)
def test_repeated_calls_stop_faulting_pages_in() -> None:
    # The 7x7 stride-2 stem's temporaries are about 60 MB (15,000 pages) per
    # call; with the hint the calls after the first reuse them.
    with_hint, without = _faults_per_call("1"), _faults_per_call("0")
    assert max(with_hint[2:]) < 200, (with_hint, without)
    assert min(without[2:]) > 10 * max(1, max(with_hint[2:])), (with_hint, without)


def test_weight_gradients_give_the_hint_too(fresh) -> None:
    # conv_weight_grad runs no correlation plan of its own, so it hints by
    # itself: NumPy, depthwise 8x144x56^2 3x3 alone in a process, 14.6 ->
    # 10.2 ms a call (1,251 -> 0.5 page faults)
    import numpy as np

    import portconv

    x = np.ones((2, 8, 32, 32), dtype=np.float32)
    portconv.conv_weight_grad(x, (8, 1, 3, 3), x, padding=1, groups=8)
    assert _heap._hinted
