"""Devices and distributed engines: JAX sharding over 4 devices, Dask on a
distributed cluster and lazily, torch.compile."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

import portconv

from ._reference import conv_reference

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_SHARDED_SCRIPT = textwrap.dedent(
    """
    import os
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4"
    import jax, jax.numpy as jnp, numpy as np
    from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
    jax.config.update("jax_enable_x64", True)
    import portconv

    devices = jax.devices("cpu")
    assert len(devices) == 4, devices
    mesh = Mesh(np.array(devices), ("batch",))
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 4, 12, 10))
    w = rng.standard_normal((6, 2, 3, 3))
    sharded = NamedSharding(mesh, P("batch"))
    xs = jax.device_put(jnp.asarray(x), sharded)
    conv = jax.jit(lambda x, w: portconv.conv(x, w, None, 2, "same", 1, 2))
    y = conv(xs, jnp.asarray(w))
    single = conv(jax.device_put(jnp.asarray(x), devices[0]), jnp.asarray(w))
    assert len(y.sharding.device_set) == 4, y.sharding
    assert y.sharding.is_equivalent_to(sharded, y.ndim), y.sharding
    np.testing.assert_allclose(np.asarray(y), np.asarray(single), rtol=1e-12, atol=1e-12)

    sig = rng.standard_normal((8, 300))
    ker = rng.standard_normal(17)
    corr = jax.jit(jax.vmap(lambda s, k: portconv.correlate(s, k, "same"), in_axes=(0, None)))
    ys = corr(jax.device_put(jnp.asarray(sig), sharded), jnp.asarray(ker))
    assert len(ys.sharding.device_set) == 4, ys.sharding
    expected = np.stack([np.correlate(s, ker, "same") for s in sig])
    np.testing.assert_allclose(np.asarray(ys), expected, rtol=1e-10, atol=1e-10)
    print("sharded ok", y.sharding, ys.sharding)
    """
)


def test_jax_batch_sharded_over_four_devices(backend):
    if backend.name != "jax":
        pytest.skip("the sharding test runs once, with the jax backend")
    env = {**os.environ, "PYTHONPATH": REPO + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run(
        [sys.executable, "-c", _SHARDED_SCRIPT],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "sharded ok" in proc.stdout


def test_dask_builds_a_lazy_graph(backend):
    if backend.name != "dask":
        pytest.skip("dask-only behaviour")
    import dask
    import dask.array as da

    def refuse(*args, **kwargs):
        raise AssertionError("portconv computed something while building the graph")

    x = da.from_array(np.random.default_rng(0).standard_normal((3, 4, 11, 9)), chunks=(1, 2, 2, 2))
    w = da.from_array(np.random.default_rng(1).standard_normal((4, 4, 3, 3)), chunks=2)
    with dask.config.set(scheduler=refuse):
        y = portconv.conv(x, w, None, 1, "same")
        z = portconv.correlate(x[0, 0], w[0, 0], "full", "fft")
    assert isinstance(y, da.Array) and isinstance(z, da.Array)
    expected = conv_reference(x.compute(), w.compute(), None, (1, 1), [(1, 1), (1, 1)], (1, 1), 1)
    np.testing.assert_allclose(y.compute(), expected, rtol=1e-12, atol=1e-12)


def test_dask_on_a_distributed_cluster(backend):
    if backend.name != "dask":
        pytest.skip("dask-only behaviour")
    import dask.array as da
    from distributed import Client, LocalCluster

    rng = np.random.default_rng(2)
    x = rng.standard_normal((4, 2, 20, 18))
    w = rng.standard_normal((3, 2, 5, 5))
    img = rng.standard_normal((40, 33))
    k = rng.standard_normal((6, 7))
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        workers = client.scheduler_info()["workers"]
        assert len(workers) == 2
        xd = da.from_array(x, chunks=(1, 1, 4, 4))  # chunks smaller than the kernel
        y = portconv.conv(xd, da.from_array(w, chunks=2), None, 2, ((1, 2), (0, 3)))
        got = client.compute(y).result()
        c = portconv.correlate2d(
            da.from_array(img, chunks=5), da.from_array(k, chunks=3), "same", "symm"
        )
        got_c = client.compute(c).result()
    expected = conv_reference(x, w, None, (2, 2), [(1, 2), (0, 3)], (1, 1), 1)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    import scipy.signal

    np.testing.assert_allclose(
        got_c, scipy.signal.correlate2d(img, k, "same", "symm"), rtol=1e-12, atol=1e-12
    )


def test_torch_compile(backend):
    if not backend.name.startswith("torch"):
        pytest.skip("torch-only behaviour")
    import torch

    x = backend.asarray(np.random.default_rng(0).standard_normal((2, 4, 9, 8)))
    w = backend.asarray(np.random.default_rng(1).standard_normal((6, 2, 3, 3)))

    def layer(x, w):
        return portconv.conv(x, w, None, 2, "same", 1, 2)

    # aot_eager captures the graph (and its autograd) without a C++ build;
    # the default inductor backend was checked by hand (see README).
    compiled = torch.compile(layer, backend="aot_eager")
    with warnings.catch_warnings():
        # Dynamo notes that it traces through lru_cache-wrapped helpers
        # (array_api_compat's and portconv's planner, both pure functions)
        warnings.filterwarnings(
            "ignore", message="Dynamo detected a call to a `functools.lru_cache`"
        )
        got = compiled(x, w)
    np.testing.assert_allclose(
        backend.to_numpy(got), backend.to_numpy(layer(x, w)), rtol=1e-12, atol=1e-12
    )
