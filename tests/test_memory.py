"""The planner (``portconv._plan``) without any array: sizes, budgets, tiling.

Everything here is plain Python on shapes, so it runs without a backend
fixture, and the sizes can be far larger than any machine's memory.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import re
import subprocess
import sys

import pytest

from portconv import _plan
from portconv._plan import (
    DtypeInfo,
    Geometry,
    conv_out_size,
    default_workspace_bytes,
    fast_len,
    plan_correlation,
    same_pads,
)

F64 = DtypeInfo("real", 8)
MEGAPIXEL_SIDE = 10**6


def geometry(
    batch=1,
    c_in=1,
    c_out=1,
    groups=1,
    spatial=(8, 8),
    kernel=(3, 3),
    stride=None,
    dilation=None,
    pads=None,
) -> Geometry:
    n = len(kernel)
    return Geometry(
        batch,
        c_in,
        c_out,
        groups,
        tuple(spatial),
        tuple(kernel),
        tuple(stride or (1,) * n),
        tuple(dilation or (1,) * n),
        tuple(pads or ((0, 0),) * n),
    )


def plan(
    g: Geometry, budget: int, method: str = "auto", dtype: DtypeInfo = F64, device: str = "cpu"
) -> _plan.Plan:
    return plan_correlation(g, method, dtype, device, True, False, budget, "conv")


def _needs(msg: str) -> int:
    m = re.search(r"needs ([\d,]+) bytes", msg)
    assert m, msg
    return int(m.group(1).replace(",", ""))


# ----------------------------------------------------------------------------
# output sizes


def test_conv_out_size_counts_window_positions():
    """Exhaustively: the number of strided positions where the dilated kernel fits."""
    for n, k, s, d, lo, hi in itertools.product(
        range(1, 9), range(1, 5), range(1, 4), range(1, 4), range(3), range(3)
    ):
        padded = n + lo + hi
        span = d * (k - 1) + 1
        count = sum(1 for p in range(padded) if p % s == 0 and p + span <= padded)
        got = conv_out_size(n, k, s, d, lo, hi)
        if count:
            assert got == count, (n, k, s, d, lo, hi)
        else:
            assert got <= 0, (n, k, s, d, lo, hi)  # the callers' ValueError


def test_output_size_of_a_terapixel_image_is_exact():
    side = MEGAPIXEL_SIDE
    g = geometry(spatial=(side, side), kernel=(3, 3))
    assert g.out_spatial == (side - 2, side - 2)
    assert g.out_positions == (side - 2) ** 2 == 999_996_000_004
    assert g.macs == 9 * (side - 2) ** 2
    assert all(type(v) is int for v in (*g.out_spatial, g.out_positions, g.macs))
    strided = geometry(spatial=(side, side), kernel=(3, 3), stride=(2, 2), pads=((1, 1),) * 2)
    assert strided.out_spatial == (side // 2, side // 2)


def test_no_overflow_beyond_int64():
    side = MEGAPIXEL_SIDE
    g = geometry(
        batch=10**4,
        c_in=10**4,
        c_out=10**4,
        spatial=(side, side),
        kernel=(3, 3),
        pads=((1, 1),) * 2,
    )
    expected = 10**4 * side * side * 10**4 * 10**4 * 9
    assert g.macs == expected > 2**63
    assert g.out_positions == 10**4 * side**2
    assert g.padded_spatial == (side + 2, side + 2)


def test_geometry_is_hashable_and_frozen():
    g = geometry(c_in=6, c_out=4, groups=2, kernel=(3, 2))
    assert hash(g) == hash(geometry(c_in=6, c_out=4, groups=2, kernel=(3, 2)))
    assert (g.group_in, g.group_out, g.taps, g.ndim) == (3, 2, 6, 2)
    with pytest.raises(AttributeError):
        g.batch = 2  # type: ignore[misc]


# ----------------------------------------------------------------------------
# budgets


def test_terapixel_problem_refused_from_shapes_alone():
    side = MEGAPIXEL_SIDE
    g = geometry(spatial=(side, side), kernel=(3, 3))
    out_bytes = (side - 2) ** 2 * 8
    with pytest.raises(MemoryError) as info:
        plan(g, default_workspace_bytes("plan"))
    msg = str(info.value)
    assert msg.startswith("conv: ")
    assert f"output alone {out_bytes:,} bytes" in msg
    assert "budget is 4,294,967,296 bytes" in msg
    assert _needs(msg) >= out_bytes
    assert "workspace_bytes" in msg and "PORTCONV_WORKSPACE_BYTES" in msg


@pytest.mark.parametrize("method", ["auto", "direct", "fft"])
@pytest.mark.parametrize(
    "g",
    [
        geometry(spatial=(64, 64), kernel=(5, 5)),
        geometry(batch=4, c_in=6, c_out=4, groups=2, spatial=(20, 17), kernel=(3, 2)),
        geometry(batch=8, c_in=3, c_out=5, spatial=(300,), kernel=(7,), stride=(2,)),
        geometry(batch=16, c_in=8, c_out=8, spatial=(12, 12), kernel=(3, 3), pads=((1, 1),) * 2),
    ],
    ids=["2d", "grouped", "1d-strided", "batched"],
)
def test_reported_need_is_enough(g, method):
    """The refused budget names a need; exactly that budget is then accepted."""
    with pytest.raises(MemoryError) as info:
        plan(g, 1000, method)
    msg = str(info.value)
    assert "budget is 1,000 bytes" in msg
    assert f"output alone {g.out_positions * g.out_channels * 8:,} bytes" in msg
    need = _needs(msg)
    assert need >= g.out_positions * g.out_channels * 8
    p = plan(g, need, method)
    assert p.workspace_bytes <= need
    with pytest.raises(MemoryError):
        plan(g, need - 1, method)
    if method == "fft":
        assert p.strategy.startswith("fft")
    if method == "direct":
        assert not p.strategy.startswith("fft")


def test_every_plan_fits_its_budget():
    g = geometry(batch=6, c_in=4, c_out=6, groups=2, spatial=(24, 24), kernel=(3, 3))
    for method in ("auto", "direct", "fft"):
        need = _needs_at(g, 1, method)
        for budget in (need, need + 1, 2 * need, 5 * need, 50 * need, 2**40):
            p = plan(g, budget, method)
            assert p.workspace_bytes <= budget, (budget, method, p)
            assert p.output_bytes == g.out_positions * g.out_channels * 8


def _needs_at(g: Geometry, budget: int, method: str = "auto") -> int:
    with pytest.raises(MemoryError) as info:
        plan(g, budget, method)
    return _needs(str(info.value))


def test_a_medium_budget_tiles_the_batch():
    # the GPU row never tiles for speed, so only the budget makes tiles here
    g = geometry(batch=64, c_in=16, c_out=16, spatial=(16, 16), kernel=(3, 3), pads=((1, 1),) * 2)
    roomy = plan(g, 2**40, "direct", device="gpu")
    assert roomy.batch_tile == g.batch
    leanest = _needs_at(g, 1, "direct")  # some strategy with one sample per tile
    medium = plan(g, leanest + leanest // 10, "direct", device="gpu")
    assert 1 <= medium.batch_tile < g.batch
    assert medium.workspace_bytes <= leanest + leanest // 10
    assert plan(g, leanest, "direct", device="gpu").batch_tile == 1
    # for one strategy, more budget never gives smaller tiles
    plans = [plan(g, leanest * f // 10, "direct", device="gpu") for f in range(10, 40)]
    for strategy in {p.strategy for p in plans}:
        tiles = [p.batch_tile for p in plans if p.strategy == strategy]
        assert tiles == sorted(tiles), strategy


def test_cpu_tiles_a_large_stack_to_its_cache_budget():
    # NumPy pays for whole-batch temporaries in page faults and memory
    # traffic; its row keeps a direct strategy's working set near the cache
    g = geometry(batch=8, c_in=64, c_out=64, spatial=(56, 56), kernel=(3, 3), pads=((1, 1),) * 2)
    f32 = DtypeInfo("real", 4)
    whole = plan(g, 2**40, "direct", f32, device="gpu")
    tiled = plan(g, 2**40, "direct", f32)
    assert whole.batch_tile == 8 and 1 <= tiled.batch_tile < 8
    cache = _plan._COSTS["cpu"]["tile_bytes"]
    part = dataclasses.replace(g, batch=tiled.batch_tile)
    assert _plan._workspace(part, tiled.strategy, 4, None) <= cache
    assert tiled.workspace_bytes < whole.workspace_bytes
    # a working set that already fits is left whole
    small = geometry(batch=8, c_in=4, c_out=4, spatial=(16, 16), kernel=(3, 3))
    assert plan(small, 2**40, "direct", f32).batch_tile == 8


def test_cpu_leaves_a_stride1_shift_whole_unless_the_budget_asks():
    # its taps are views of the padded input: there is no stacked operand to
    # keep in cache, and tiles would only add a join (1x1 16x64x56^2->64)
    g = geometry(batch=16, c_in=64, c_out=64, spatial=(56, 56), kernel=(1, 1))
    f32 = DtypeInfo("real", 4)
    shift = plan_correlation(g, "direct", f32, "cpu", True, False, 2**40, "c", only="shift")
    assert shift.batch_tile == 16
    assert shift.workspace_bytes > _plan._COSTS["cpu"]["tile_bytes"]
    # the budget still tiles it; a strided shift's phase split is a copy, but
    # one no larger than the output, so the join would cost what the tiles
    # save (16x64x56^2->64 1x1 stride 2: 1.55 ms whole, 1.82-1.87 in tiles)
    lean = plan_correlation(g, "direct", f32, "cpu", True, False, 32 << 20, "c", only="shift")
    assert 1 <= lean.batch_tile < 16
    s2 = dataclasses.replace(g, stride=(2, 2))
    strided = plan_correlation(s2, "direct", f32, "cpu", True, False, 2**40, "c", only="shift")
    assert strided.batch_tile == 16 and strided.workspace_bytes > _plan._COSTS["cpu"]["tile_bytes"]
    deep = dataclasses.replace(s2, in_channels=256)  # a stack 4x the output is tiled
    strided = plan_correlation(deep, "direct", f32, "cpu", True, False, 2**40, "c", only="shift")
    assert strided.batch_tile < 16
    # XLA copies each tap's slice, so there the operand counts
    xla = _xla_plan(dataclasses.replace(g, batch=64), "shift")
    assert xla.batch_tile < 64


def _xla_plan(g: Geometry, only: str) -> _plan.Plan:
    return plan_correlation(
        g, "auto", DtypeInfo("real", 4), "cpu", True, True, 2**40, "c", only=only
    )


def test_xla_tiles_a_large_stacked_operand_within_its_unroll_limit():
    # the 7x7 stride-2 stem: 59 MB of im2col columns for 8 samples
    stem = geometry(8, 3, 64, 1, (224, 224), (7, 7), (2, 2), None, ((3, 3),) * 2)
    p = _xla_plan(stem, "im2col")
    assert p.batch_tile == 1  # one sample's columns (7.4 MB) fit the cache
    assert stem.batch * _plan.unrolled_ops(stem, "im2col") <= _plan._MAX_TILED_OPS_JAX
    # 32 tiles of 49 taps would pass the limit on all tiles' operations: the
    # limit sets the (larger) tile here
    big = dataclasses.replace(stem, batch=32)
    p = _xla_plan(big, "im2col")
    tiles = -(-big.batch // p.batch_tile)
    assert 1 < tiles <= _plan._MAX_TILED_OPS_JAX // _plan.unrolled_ops(big, "im2col")
    part = dataclasses.replace(big, batch=p.batch_tile)
    assert _plan._stack_bytes(part, "im2col", 4) > _plan._COSTS["cpu-xla"]["tile_bytes"]
    # few taps: the cache alone sets the tile
    s2 = geometry(16, 32, 64, 1, (64, 64), (3, 3), (2, 2), None, ((1, 1),) * 2)
    p = _xla_plan(s2, "im2col")
    assert 1 < p.batch_tile < s2.batch
    part = dataclasses.replace(s2, batch=p.batch_tile)
    assert _plan._stack_bytes(part, "im2col", 4) <= _plan._COSTS["cpu-xla"]["tile_bytes"]
    # Winograd's transformed input tiles the same way
    dense = geometry(8, 64, 64, 1, (56, 56), (3, 3), None, None, ((1, 1),) * 2)
    p = _xla_plan(dense, "winograd")
    assert 1 < p.batch_tile < dense.batch
    part = dataclasses.replace(dense, batch=p.batch_tile)
    assert _plan._stack_bytes(part, "winograd", 4) <= _plan._COSTS["cpu-xla"]["tile_bytes"]
    # XLA counts the stacked operand only: columns that fit stay whole even
    # where output and padded input together pass the cache size
    u64 = geometry(64, 3, 32, 1, (32, 32), (3, 3), None, None, ((1, 1),) * 2)
    p = _xla_plan(u64, "im2col")
    assert p.batch_tile == 64
    assert _plan._workspace(u64, "im2col", 4, None) > _plan._COSTS["cpu-xla"]["tile_bytes"]


def test_row_tiles_respect_the_unroll_limit():
    # a deep volume: NumPy takes 26 tiles of 10 rows, more than XLA may trace
    volume = geometry(1, 8, 8, 1, (256, 64, 64), (3, 3, 3), None, None, ((1, 1),) * 3)
    f32 = DtypeInfo("real", 4)
    numpy_rows = plan_correlation(
        volume, "auto", f32, "cpu", True, False, 2**40, "c", only="im2col_last"
    ).row_tile
    xla_rows = _xla_plan(volume, "im2col_last").row_tile
    assert numpy_rows is not None and xla_rows is not None
    limit = _plan._MAX_TILED_OPS_JAX // _plan.unrolled_ops(volume, "im2col_last")
    assert -(-256 // numpy_rows) > limit >= -(-256 // xla_rows) > 1


def test_tiles_of_a_batch_come_out_even():
    # 64 samples whose 18-sample tiles would fit: four tiles of 16, not
    # 18 * 3 + 10 (the last tile is short by less than one sample per tile)
    g = geometry(64, 16, 32, 1, (32, 32), (3, 3), None, None, ((1, 1),) * 2)
    f32 = DtypeInfo("real", 4)
    p = plan_correlation(g, "direct", f32, "cpu", True, False, 2**40, "c", only="im2col")
    tiles = -(-g.batch // p.batch_tile)
    assert tiles > 1 and p.batch_tile * tiles - g.batch < tiles
    # as many tiles as the largest that fits needs, which left a short one
    # (a channel-major im2col, whose tiles may hold more than the cache)
    assert _plan.batch_gemm(g, "im2col", _plan._COSTS["cpu"])
    cache = _plan._COSTS["cpu"]["tile_bytes"] * _plan.BATCH_GEMM_CACHE_SHARE
    fit = _plan._largest(
        g.batch,
        lambda t: _plan._workspace(dataclasses.replace(g, batch=t), "im2col", 4, None) <= cache,
    )
    assert g.batch % fit and tiles == -(-g.batch // fit) and p.batch_tile < fit


def test_plans_are_cached_pure_functions():
    g = geometry(batch=2, c_in=3, c_out=4, spatial=(30, 30), kernel=(5, 5))
    a = plan(g, 2**30)
    b = plan(geometry(batch=2, c_in=3, c_out=4, spatial=(30, 30), kernel=(5, 5)), 2**30)
    assert a is b  # lru_cache: equal static inputs, one plan
    assert a.geometry == g


def test_every_cost_row_prices_every_term():
    # a term missing from one row would only fail on that device kind
    # (fitted per-strategy factors ``x_*`` and ``g_*``, set-up times ``o_*``
    # and ``base`` are optional: they default to 1, 1, 0 and 0; so are
    # ``acc``, without which the summing passes are priced at ``elem`` in the
    # factor, ``pack``, without which weights are packed for free,
    # ``shared_gather`` and ``shared_pad`` (off when absent) and ``outer``, without which an
    # outer product is priced by the efficiency curve; ``flat_run`` and
    # ``flat_elem`` are read only where ``flat_chunk`` is on)
    rows = _plan._COSTS

    def required(row):
        optional = (
            "base",
            "acc",
            "pack",
            "shared_gather",
            "shared_pad",
            "outer",
            "flat_run",
            "flat_elem",
        )
        return {k for k in row if k not in optional and not k.startswith(("x_", "g_", "o_"))}

    for name, row in rows.items():
        assert not row["flat_chunk"] or {"flat_run", "flat_elem"} <= row.keys(), name
        assert required(row) == required(rows["cpu"]), name
        assert all(v >= 0 for v in row.values()), name


@pytest.mark.parametrize(
    "device, jax, row",
    [("cpu", False, "cpu"), ("cpu", True, "cpu-xla"), ("gpu", True, "gpu"), ("gpu", False, "gpu")],
)
def test_cost_row_follows_device_kind_and_library(device, jax, row):
    assert _plan.cost_table(device, jax) == row
    g = geometry(batch=2, c_in=3, c_out=4, spatial=(30, 30), kernel=(5, 5))
    p = plan_correlation(g, "auto", F64, device, True, jax, 2**30, "conv")
    own = _plan._strategy_cost(g, p.strategy, F64, row, p.fft_shape, p.block)
    assert p.cost == pytest.approx(own)


def test_planning_imports_no_array_library():
    code = (
        "import sys\n"
        "from portconv._plan import DtypeInfo, Geometry, plan_correlation\n"
        "g = Geometry(1, 1, 1, 1, (10**6, 10**6), (3, 3), (1, 1), (1, 1), ((0, 0), (0, 0)))\n"
        "try:\n"
        "    plan_correlation(g, 'auto', DtypeInfo('real', 8), 'cpu', True, False, 2**32, 'f')\n"
        "except MemoryError:\n"
        "    pass\n"
        "libs = [m for m in ('numpy', 'jax', 'torch', 'cupy', 'dask') if m in sys.modules]\n"
        "print(','.join(libs))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == "", f"planning imported {out.stdout.strip()}"


# ----------------------------------------------------------------------------
# the environment budget


def test_default_budget_and_environment(monkeypatch):
    monkeypatch.delenv("PORTCONV_WORKSPACE_BYTES", raising=False)
    assert default_workspace_bytes("plan") == 4 * 2**30
    monkeypatch.setenv("PORTCONV_WORKSPACE_BYTES", "")
    assert default_workspace_bytes("plan") == 4 * 2**30
    monkeypatch.setenv("PORTCONV_WORKSPACE_BYTES", "123456789")
    assert default_workspace_bytes("plan") == 123_456_789
    for bad in ("abc", "0", "-1", "2.5"):
        monkeypatch.setenv("PORTCONV_WORKSPACE_BYTES", bad)
        with pytest.raises(ValueError, match=r"PORTCONV_WORKSPACE_BYTES='" + re.escape(bad)):
            default_workspace_bytes("plan")


# ----------------------------------------------------------------------------
# FFT lengths and 'same' padding


def _smooth7(limit: int) -> list[int]:
    out = []
    for a in range(int(math.log2(limit)) + 2):
        for b in range(int(math.log(limit, 3)) + 2):
            for c in range(int(math.log(limit, 5)) + 2):
                for d in range(int(math.log(limit, 7)) + 2):
                    v = 2**a * 3**b * 5**c * 7**d
                    if v <= limit:
                        out.append(v)
    return sorted(out)


def _is_smooth7(n: int) -> bool:
    for p in (2, 3, 5, 7):
        while n % p == 0:
            n //= p
    return n == 1


def test_fast_len_is_the_next_7_smooth_number():
    smooth = _smooth7(5000)
    smooth5 = [v for v in smooth if v % 7]
    for n in range(1, 4097):
        expected = next(v for v in smooth if v >= n)
        assert fast_len(n) == expected, n
        # the 5-smooth lengths of overlap-save blocks
        assert fast_len(n, largest_factor=5) == next(v for v in smooth5 if v >= n), n


@pytest.mark.parametrize("n", [10**6 + 1, 2**20 + 1, 3 * 7**6 + 1, 999_983, 10**9 + 7])
def test_fast_len_large(n):
    m = fast_len(n)
    assert m >= n and _is_smooth7(m)
    assert m < 2 * n  # a power of two is always within a factor 2
    # minimal: nothing 7-smooth in between
    assert not any(_is_smooth7(v) for v in range(n, m))


def test_same_pads_gives_ceil_n_over_stride():
    for n, k, s, d in itertools.product(range(1, 13), range(1, 6), range(1, 5), range(1, 4)):
        lo, hi = same_pads(n, k, s, d)
        assert 0 <= lo <= hi <= lo + 1, (n, k, s, d, lo, hi)
        assert conv_out_size(n, k, s, d, lo, hi) == -(-n // s), (n, k, s, d)


def test_same_pads_stride_one_is_torch_split():
    # torch: total = dilation * (k - 1), left = total // 2, right = total - left
    for n, k, d in itertools.product(range(1, 10), range(1, 8), range(1, 4)):
        total = d * (k - 1)
        assert same_pads(n, k, 1, d) == (total // 2, total - total // 2), (n, k, d)


def test_same_pads_on_a_terapixel_axis():
    side = MEGAPIXEL_SIDE
    lo, hi = same_pads(side, 7, 3, 2)
    assert conv_out_size(side, 7, 3, 2, lo, hi) == -(-side // 3)


def test_cpu_row_tiles_a_sample_over_twice_the_cache():
    # a 1024^2 one-channel image (24 MB of im2col_last workspace, three
    # times the cpu row's 8 MB) runs im2col_last in row tiles
    f32 = DtypeInfo("real", 4)
    image = geometry(1, 1, 1, 1, (1024, 1024), (3, 3), None, None, ((1, 1),) * 2)
    auto = plan_correlation(image, "auto", f32, "cpu", True, False, 2**40, "c", only="im2col_last")
    assert auto.batch_tile == 1
    assert auto.row_tile is not None and 1 < auto.row_tile < 1024
    tile = _plan.row_tile_geometry(image, auto.row_tile)
    cache = _plan._COSTS["cpu"]["tile_bytes"]
    assert _plan._workspace(tile, "im2col_last", 4, None) <= cache
    # 12 MB, under twice the cache: whole
    small = geometry(1, 8, 8, 1, (256, 256), (3, 3), None, None, ((1, 1),) * 2)
    assert 8 << 20 < _plan._workspace(small, "im2col_last", 4, None) <= 2 * cache
    p = plan_correlation(small, "auto", f32, "cpu", True, False, 2**40, "c", only="im2col_last")
    assert p.row_tile is None


def test_cpu_tiles_a_long_line_whose_banded_frames_outgrow_their_share():
    # 4M samples by 257 taps: frames of 128 outputs hold 3x the line (50 MB,
    # over the 32 MiB share): equal tiles of whole frames (NumPy, frames of
    # 64 then: 60 -> 29 ms, peak 3.5x -> 1.5x the operands)
    f32 = DtypeInfo("real", 4)
    share = _plan._COSTS["cpu"]["banded_rows"]
    line = geometry(1, 1, 1, 1, (4 << 20,), (257,), None, None, ((128, 128),))
    p = plan_correlation(line, "auto", f32, "cpu", True, False, 2**40, "c", only="toeplitz")
    assert p.row_tile is not None and p.row_tile % p.block == 0
    tiles = -(-line.out_spatial[0] // p.row_tile)
    assert tiles >= 2 and tiles * p.row_tile - line.out_spatial[0] < tiles * p.block
    tile = _plan.row_tile_geometry(line, p.row_tile)
    assert _plan._workspace(tile, "toeplitz", 4, None, p.block) <= 1.1 * share
    # frames within the share stay whole: a shorter line (1M x 257, 21 MB),
    # and 2M x 3, whose frames barely outgrow the line (tiles 4.0 -> 5.8 ms)
    for length, k in ((1 << 20, 257), (2 << 20, 3)):
        g = geometry(1, 1, 1, 1, (length,), (k,), None, None, ((k // 2, k // 2),))
        p = plan_correlation(g, "auto", f32, "cpu", True, False, 2**40, "c", only="toeplitz")
        assert p.row_tile is None, (length, k, p)
    # not under XLA, nor on the unmeasured GPU row
    assert _xla_plan(line, "toeplitz").row_tile is None
    gpu = plan_correlation(line, "auto", f32, "gpu", True, False, 2**40, "c", only="toeplitz")
    assert gpu.row_tile is None


def test_long_1d_bands_run_wider_blocks_but_compete_at_the_fitted_price():
    # 2^20 x 257: the fitted model's cheapest block is 64, where the tall
    # products run at 205 GFLOP/s against 255 at 128 (NumPy 6.65 -> 5.10 ms)
    f32 = DtypeInfo("real", 4)
    line = geometry(1, 1, 1, 1, (1 << 20,), (257,), None, None, ((128, 128),))
    assert _plan._toeplitz_block(line, f32, "cpu") == (128, 64)
    p = plan_correlation(line, "auto", f32, "cpu", True, False, 2**40, "c", only="toeplitz")
    assert p.block == 128
    priced = _plan.tiled_cost(line, "toeplitz", f32, "cpu", None, 64, p.batch_tile, p.row_tile)
    assert p.cost == priced
    # one block where the thin-panel term was not measured to pick better:
    # short spans, short signals, 2-d bands, XLA and the GPU row
    short_span = geometry(1, 1, 1, 1, (1 << 20,), (17,), None, None, ((8, 8),))
    short_line = geometry(1, 1, 1, 1, (1 << 16,), (257,), None, None, ((128, 128),))
    image = geometry(1, 1, 1, 1, (1024, 1024), (11, 11), None, None, ((5, 5),) * 2)
    for g, device in (
        (short_span, "cpu"),
        (short_line, "cpu"),
        (image, "cpu"),
        (line, "cpu-xla"),
        (line, "gpu"),
    ):
        run, priced_block = _plan._toeplitz_block(g, f32, device)
        assert run == priced_block, (g, device)


def test_overlap_save_blocks_win_long_one_channel_signals_but_not_many_channels():
    # x_fft_blocks = 0.62 on the NumPy row: a 2^20-sample signal with 513
    # taps runs the blocks (NumPy 8.47 -> 6.99 ms against the banded
    # matmul), while 16x64x4000 -> 64 k9 stays a direct matmul form (its
    # blocks ran 1.7x slower than im2col); the bounds of the plateau
    f32 = DtypeInfo("real", 4)
    signal = geometry(1, 1, 1, 1, (1 << 20,), (513,), None, None, ((256, 256),))
    tcn = geometry(16, 64, 64, 1, (4000,), (9,), None, None, ((4, 4),))
    assert plan_correlation(signal, "auto", f32, "cpu", True, False, 2**40, "c").strategy == (
        "fft_blocks"
    )
    assert plan_correlation(tcn, "auto", f32, "cpu", True, False, 2**40, "c").strategy not in (
        "fft",
        "fft_blocks",
    )


def test_cpu_tiles_for_speed_only_where_the_stack_outweighs_the_output():
    # the tiles' join copies the output once more: few-channel layers whose
    # stacked columns are no larger than their output stay whole on NumPy
    # (64x3x32^2->32 3x3: 2.0 ms whole, 2.95 in four tiles), under XLA
    # (which counts the stack alone) and wherever the stack dominates they
    # are still tiled
    f32 = DtypeInfo("real", 4)
    cifar = geometry(64, 3, 32, 1, (32, 32), (3, 3), None, None, ((1, 1),) * 2)
    image = geometry(1, 3, 8, 1, (512, 512), (3, 3), None, None, ((1, 1),) * 2)
    cache = _plan._COSTS["cpu"]["tile_bytes"]
    for g, strategy in ((cifar, "im2col"), (image, "im2col_last")):
        out = g.out_positions * g.out_channels * 4
        assert _plan._workspace(g, strategy, 4, None) > 2 * cache
        assert _plan._stack_bytes(g, strategy, 4) <= 1.25 * out
        p = plan_correlation(g, "auto", f32, "cpu", True, False, 2**40, "c", only=strategy)
        assert (p.batch_tile, p.row_tile) == (g.batch, None), p
    stem = geometry(8, 3, 64, 1, (224, 224), (7, 7), (2, 2), None, ((3, 3),) * 2)
    assert plan_correlation(stem, "auto", f32, "cpu", True, False, 2**40, "c").batch_tile < 8
    xla = _xla_plan(dataclasses.replace(cifar, batch=512), "im2col")
    assert xla.batch_tile < 512


def test_only_xla_plans_order_their_tiles_and_taps():
    g = geometry(batch=8, c_in=16, c_out=16, spatial=(32, 32), kernel=(3, 3))
    f32 = DtypeInfo("real", 4)
    assert _xla_plan(g, "shift").in_order
    for device in ("cpu", "gpu"):
        eager = plan_correlation(g, "auto", f32, device, True, False, 2**40, "c", only="shift")
        assert not eager.in_order and not eager.taps_in_order
    # taps: matrix products only, and only when together larger than a tile
    volume = geometry(1, 8, 8, 1, (64, 64, 64), (3, 3, 3), None, None, ((1, 1),) * 3)
    p = _xla_plan(volume, "im2col_last")
    assert p.row_tile is not None and p.taps_in_order
    one_channel = dataclasses.replace(volume, in_channels=1, out_channels=1)
    assert not _xla_plan(one_channel, "im2col_last").taps_in_order
    small = geometry(2, 64, 64, 4, (32, 32), (3, 3), None, None, ((1, 1),) * 2)
    assert not _xla_plan(small, "im2col_last").taps_in_order
