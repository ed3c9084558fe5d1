"""The test matrix: one session per backend, generated from one table.

``nox`` runs lint and every CPU test session; ``nox -t gpu`` the GPU ones;
``nox -s equivalence`` writes the cross-backend equivalence report and
``nox -s bench`` the benchmark.  On an offline machine that already has the
libraries installed, reuse the current interpreter: ``nox --no-venv -s tests-cupy``
(installs are skipped), or call pytest directly (see README).
"""

from __future__ import annotations

import dataclasses
import glob
import os
import shutil
import subprocess

import nox

nox.needs_version = ">=2024.4.15"
nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = True

TEST_DEPS = [
    "pytest>=8",
    "pytest-xdist>=3.5",
    "hypothesis>=6.100",
    "numpy>=1.26",
    "scipy>=1.13",
    "array-api-strict>=2.3",
    "matplotlib>=3.8",  # the benchmark runner's chart, checked by tests/test_bench.py
]


def _torch_cpu() -> list[str]:
    """torch for the CPU: a local CPU wheel where the machine offers one.

    PyPI's default torch wheel for Linux is the multi-GB CUDA build; machines
    of this project keep a CPU build in a directory named by PIP_FIND_LINKS.
    """
    for folder in os.environ.get("PIP_FIND_LINKS", "").split():
        wheels = sorted(glob.glob(os.path.join(folder, "torch-*+cpu-*.whl")))
        if wheels:
            return [wheels[-1]]
    return ["torch"]


@dataclasses.dataclass(frozen=True)
class Backend:
    """One row of the matrix."""

    name: str  # session is tests-<name>
    test_backends: str  # PORTCONV_TEST_BACKENDS
    deps: tuple[str, ...] = ()
    runs: tuple[dict[str, str], ...] = ({},)  # one pytest run per env overlay
    gpu: bool = False


BACKENDS = [
    Backend("numpy", "numpy"),
    Backend("strict", "array_api_strict"),
    Backend(
        "jax",
        "jax",
        ("jax",),
        # every example is a jit compile: the x64 run takes 30% of the examples
        # (at 60% it took 8.5-13 of CI's 21-28 minutes, test_conv_matches_torch
        # alone 4.4 of them; at 40% and 20% the session still took 12-17 of
        # 19-25), and x64 off, the JAX default, repeats the suite at a tenth
        (
            {"JAX_ENABLE_X64": "1", "PORTCONV_EXAMPLE_SCALE": "0.3"},
            {"JAX_ENABLE_X64": "0", "PORTCONV_EXAMPLE_SCALE": "0.1"},
        ),
    ),
    Backend("torch", "torch"),
    # Dask builds a task graph per call: a quarter of the examples keeps it short.
    # Dask's own ``distributed`` extra pins the matching release: with a bare
    # ``distributed`` the resolver paired dask 2026.11 (no distributed 2026.11
    # on the index) with distributed 2021.4, which fails to import.
    Backend(
        "dask",
        "dask",
        ("dask[array,distributed]", "distributed>=2024.1"),
        ({"PORTCONV_EXAMPLE_SCALE": "0.25"},),
    ),
    Backend("cupy", "cupy", ("cupy-cuda12x",), gpu=True),
    Backend("jax-gpu", "jax-gpu", ("jax[cuda12]",), gpu=True),
    Backend("torch-cuda", "torch-cuda", gpu=True),
]


def _has_nvidia_gpu() -> bool:
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return False
    return subprocess.run([smi, "-L"], capture_output=True, check=False).returncode == 0


def _installs(session: nox.Session) -> bool:
    return session.venv_backend not in ("none", None)


def _install(session: nox.Session, *packages: str) -> None:
    if _installs(session):
        session.install(*packages)


def _make_test_session(backend: Backend):
    tags = ["gpu"] if backend.gpu else ["cpu"]

    @nox.session(name=f"tests-{backend.name}", tags=tags, default=not backend.gpu)
    def tests(session: nox.Session) -> None:
        if backend.gpu and not _has_nvidia_gpu():
            if os.environ.get("PORTCONV_REQUIRE_GPU") == "1":
                session.error("PORTCONV_REQUIRE_GPU=1 but no NVIDIA GPU (nvidia-smi) was found")
            session.skip("no NVIDIA GPU found (nvidia-smi); set PORTCONV_REQUIRE_GPU=1 to fail")
        torch = ["torch"] if backend.gpu else _torch_cpu()
        _install(session, "-e", ".", *TEST_DEPS, *torch, *backend.deps)
        paths = session.posargs or (["tests", "portconv"] if backend.name == "numpy" else ["tests"])
        for overlay in backend.runs:
            env = {"PORTCONV_TEST_BACKENDS": backend.test_backends, **overlay}
            session.run("python", "-m", "pytest", "-n", "auto", *paths, env=env)

    return tests


for _backend in BACKENDS:
    globals()[f"tests_{_backend.name.replace('-', '_')}"] = _make_test_session(_backend)


@nox.session(tags=["cpu"])
def lint(session: nox.Session) -> None:
    """ruff (including the ban on backend imports inside portconv/)."""
    _install(session, "ruff>=0.6")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(default=False)
def equivalence(session: nox.Session) -> None:
    """Every installed CPU backend against NumPy; writes benchmarks/results/equivalence-*."""
    _install(session, "-e", ".", *TEST_DEPS, *_torch_cpu(), "jax", "dask[array]")
    session.run(
        "python",
        "-m",
        "portconv.cli.equivalence",
        "--out-dir",
        "benchmarks/results",
        *session.posargs,
    )


@nox.session(default=False)
def bench(session: nox.Session) -> None:
    """The benchmark suite (NumPy, JAX and torch on the CPU)."""
    _install(
        session, "-e", ".", "numpy", "scipy", "matplotlib", "threadpoolctl", "jax", *_torch_cpu()
    )
    session.run("python", "benchmarks/run.py", *session.posargs)
