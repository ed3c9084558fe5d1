"""Fixtures: the ``backend`` fixture runs a test once per selected backend.

Under JAX every public portconv call goes through ``jax.jit`` (arrays traced,
everything else static), so the whole suite also proves jit-safety.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

from . import _backends

settings.register_profile(
    "ci",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.differing_executors],
    derandomize=False,
    print_blob=True,
)
settings.load_profile(os.environ.get("PORTCONV_HYPOTHESIS_PROFILE", "ci"))


def _selected() -> list[str]:
    try:
        return _backends.selected_names()
    except _backends.BackendUnavailable as exc:
        raise pytest.UsageError(str(exc)) from exc


def pytest_configure(config: pytest.Config) -> None:
    # Load every selected backend up front: a missing one fails the run.
    for name in _selected():
        try:
            _backends.load(name)
        except _backends.BackendUnavailable as exc:
            raise pytest.UsageError(str(exc)) from exc


def pytest_report_header(config: pytest.Config) -> str:
    return "portconv backends: " + ", ".join(_selected())


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames:
        names = _selected()
        metafunc.parametrize("backend", names, ids=names, indirect=True, scope="session")


@pytest.fixture(scope="session")
def backend(request: pytest.FixtureRequest) -> _backends.Backend:
    return _backends.load(request.param)


@pytest.fixture(scope="session")
def pc(backend: _backends.Backend):
    """portconv's public functions as this backend's users call them."""
    from ._helpers import PublicAPI

    return PublicAPI(backend)
