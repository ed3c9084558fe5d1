"""Pure-Python planning: shapes, padding arithmetic, workspace sizes, method choice.

Nothing here touches an array.  Every function takes static, hashable inputs
(shapes, parameters, dtype kinds, device kind), so the results are cached,
identical eagerly and under ``jax.jit``, and testable without any array
library.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math
import os
from typing import Any, NamedTuple

__all__ = [
    "Geometry",
    "Plan",
    "DtypeInfo",
    "fast_len",
    "conv_out_size",
    "same_pads",
    "plan_correlation",
    "default_workspace_bytes",
]

#: Default budget for the extra memory one call may allocate (bytes).
DEFAULT_WORKSPACE_BYTES = 4 * 2**30
_ENV_BUDGET = "PORTCONV_WORKSPACE_BYTES"

#: Strategies of the direct method, cheapest memory first.
DIRECT_STRATEGIES = ("elementwise", "shift", "im2col_last", "im2col", "toeplitz", "windows")
STRATEGIES = DIRECT_STRATEGIES + ("fft", "fft_blocks", "winograd")

# Under JAX every tap is traced into the program: compile time grows with the
# unrolled op count (PERF-NOTES: 961 taps took 18 s).  Above this many unrolled
# operations a plan is only chosen when nothing else fits.
_MAX_UNROLLED_OPS_JAX = 256
# All tiles of one plan together (each tile is traced anew): the 7x7 stride-2
# stem 8x3x224^2 in eight 1-sample tiles of 51 operations compiled in 1.0 s,
# in four tiles of two samples in 0.8 s.
_MAX_TILED_OPS_JAX = 512


def default_workspace_bytes(func: str) -> int:
    """The workspace budget: ``$PORTCONV_WORKSPACE_BYTES`` or 4 GiB."""
    raw = os.environ.get(_ENV_BUDGET)
    if raw is None or raw == "":
        return DEFAULT_WORKSPACE_BYTES
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(
            f"{func}: {_ENV_BUDGET}={raw!r} must be a positive integer number of bytes"
        ) from None
    if value <= 0:
        raise ValueError(f"{func}: {_ENV_BUDGET}={raw!r} must be a positive integer")
    return value


@functools.lru_cache(maxsize=4096)
def fast_len(n: int, largest_factor: int = 7) -> int:
    """Smallest 7-smooth (or 5-smooth) integer ``>= n``: a fast FFT length on every backend.

    Overlap-save blocks, free to pick their length, ask for 5-smooth ones:
    NumPy's transforms of length 8232 (2^3 3 7^3) cost 1.75x those of 8192
    per element.
    """
    if n <= 6:
        return max(n, 1)
    best = 2 ** math.ceil(math.log2(n))
    p7 = 1
    while p7 < best and (p7 == 1 or largest_factor >= 7):
        p5 = p7
        while p5 < best:
            p3 = p5
            while p3 < best:
                # smallest power of two that brings p3 up to n
                p2 = p3 if p3 >= n else p3 * 2 ** math.ceil(math.log2(n / p3))
                while p2 // 2 >= n:
                    p2 //= 2
                if n <= p2 < best:
                    best = p2
                p3 *= 3
            p5 *= 5
        p7 *= 7
    return best


def fft_wrap_applies(g: Geometry) -> bool:
    """Whether an FFT of ``g`` can take its zero padding from the grid's wrap-around.

    Holds when no axis pads more below than its kernel spans (``lo <=
    dilation * (k - 1)``) and no pad is negative (a crop).
    """
    return all(
        0 <= lo <= d * (k - 1) and hi >= 0 for k, d, (lo, hi) in zip(g.kernel, g.dilation, g.pads)
    )


def fft_grid(g: Geometry, wrap: bool) -> tuple[int, ...]:
    """The FFT lengths of ``g``: the padded input's, or fewer with ``wrap``.

    Without ``wrap`` the grid holds the padded input.  With it (zero
    padding, :func:`fft_wrap_applies`) the grid holds the unpadded input
    at its start and zeros after it; the circular convolution then reads
    the low padding as the zeros at the grid's end and the high padding as
    the zeros after the input, and output ``o`` sits at
    ``d * (k - 1) - lo + o * s``.  So the grid needs ``n + max(lo, hi)``
    points and room for the kept outputs, instead of ``n + lo + hi``:
    SciPy's ``mode='full'`` pads ``k - 1`` on both sides, and a 64^2
    correlation with a 64^2 kernel then needs 128^2 points instead of 192^2.
    """
    if not wrap:
        return tuple(fast_len(n) for n in g.padded_spatial)
    grid = []
    for n, k, s, d, (lo, hi), o in zip(
        g.in_spatial, g.kernel, g.stride, g.dilation, g.pads, g.out_spatial
    ):
        kd = d * (k - 1)
        grid.append(fast_len(max(n + max(lo, hi), kd - lo + (o - 1) * s + 1, kd + 1)))
    return tuple(grid)


def conv_out_size(n: int, k: int, stride: int, dilation: int, lo: int, hi: int) -> int:
    """Output length of a strided, dilated correlation of a padded axis.

    Can be zero or negative: callers turn that into a ``ValueError``.
    """
    span = dilation * (k - 1) + 1
    padded = n + lo + hi
    if padded < span:
        return padded - span + 1  # <= 0
    return (padded - span) // stride + 1


def same_pads(n: int, k: int, stride: int, dilation: int) -> tuple[int, int]:
    """``padding="same"``: ``out = ceil(n / stride)``, extra pixel on the high side.

    For stride 1 this is PyTorch's rule (total ``dilation*(k-1)``, low half
    rounded down); for stride > 1 it is TensorFlow's / XLA's ``SAME``.
    """
    out = -(-n // stride)
    total = max((out - 1) * stride + dilation * (k - 1) + 1 - n, 0)
    return total // 2, total - total // 2


@dataclasses.dataclass(frozen=True)
class DtypeInfo:
    """What the planner needs of a dtype: ``kind`` and ``itemsize`` in bytes."""

    kind: str  # "int", "real" or "complex"
    itemsize: int
    int_bound: int = 0  # for "int" inputs: the largest |value| the dtype holds


@dataclasses.dataclass(frozen=True)
class Geometry:
    """A grouped, strided, dilated N-d correlation in channels-first layout.

    ``x`` is ``(batch, in_channels, *in_spatial)`` before padding and ``w`` is
    ``(out_channels, in_channels // groups, *kernel)``.
    """

    batch: int
    in_channels: int
    out_channels: int
    groups: int
    in_spatial: tuple[int, ...]
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    dilation: tuple[int, ...]
    pads: tuple[tuple[int, int], ...]

    @property
    def ndim(self) -> int:
        return len(self.kernel)

    @functools.cached_property  # hot: planning and every tap offset read it
    def padded_spatial(self) -> tuple[int, ...]:
        return tuple(n + lo + hi for n, (lo, hi) in zip(self.in_spatial, self.pads))

    @functools.cached_property
    def out_spatial(self) -> tuple[int, ...]:
        return tuple(
            conv_out_size(n, k, s, d, lo, hi)
            for n, k, s, d, (lo, hi) in zip(
                self.in_spatial, self.kernel, self.stride, self.dilation, self.pads
            )
        )

    @functools.cached_property
    def spans(self) -> tuple[int, ...]:
        """The dilated kernel's extent along each spatial axis."""
        return tuple(d * (k - 1) + 1 for k, d in zip(self.kernel, self.dilation))

    @property
    def taps(self) -> int:
        return math.prod(self.kernel)

    @property
    def group_in(self) -> int:
        return self.in_channels // self.groups

    @property
    def group_out(self) -> int:
        return self.out_channels // self.groups

    @property
    def out_positions(self) -> int:
        return self.batch * math.prod(self.out_spatial)

    @property
    def macs(self) -> int:
        """Multiply-accumulates of the direct method."""
        return self.out_positions * self.out_channels * self.group_in * self.taps


@dataclasses.dataclass(frozen=True)
class Plan:
    """How one correlation is executed."""

    geometry: Geometry
    strategy: str
    fft_shape: tuple[int, ...] | None
    batch_tile: int  # samples padded and computed at a time (== batch when untiled)
    workspace_bytes: int
    output_bytes: int
    cost: float  # modelled seconds, for choosing and for reports
    block: int | None = None  # fft_blocks: outputs per overlap-save block
    fft_contiguous: bool = False  # fft: transforms along contiguous axes only (see _fft)
    row_tile: int | None = None  # outputs along the first spatial axis per tile (None: all)
    phase_grid: bool = False  # strided stacking strategy on the flat phase grid (see _direct)
    fft_wrap: bool = False  # fft: zero padding from the grid's wrap-around (see fft_grid)
    inner: Plan | None = None  # the plan of the dilation phases (see dilation_split_geometry)
    in_order: bool = False  # each tile after the previous one (see _direct.after)
    taps_in_order: bool = False  # each tap's product after the sum so far (see orders_taps)
    batch_gemm: bool = False  # im2col: the batch joins one matmul, channel-major (see batch_gemm)
    flat_chunk: int = 0  # elementwise: grid elements per chunk, channel-major (see flat_chunks)
    # the plan of the same problem with spatial axis ``swap_axis`` and the
    # last exchanged (see band_axis); the fields above then describe it
    swapped: Plan | None = None
    swap_axis: int | None = None


# Cost model rows (times in seconds), chosen by ``cost_table``.  ``cpu`` and
# ``cpu-xla`` are fitted on this project's 2-core AVX-512 CPU, NumPy and JAX
# respectively, by ``benchmarks/fit_cost_model.py`` on a training sweep; the
# GPU row is a rough bandwidth/launch model until a GPU run refits it.
#   call      fixed cost of one array operation
#   item      each further product of one batched matmul call (measured)
#   elem      one multiply-add pass over one output element
#   copy      copying one element (slices, stacks, padding, frames)
#   gather    copying one element of a permuted array (weights taps-first)
#   read      streaming one element through a memory-bound matmul
#   gemm      one real multiply-add inside matmul at full speed
#   gemm_k    contraction length at which matmul runs at half speed
#   gemm_n    thinner output side at which matmul runs at half speed
#   fft       per point per log2(points) of one real transform
#   fft_each  fixed cost of one transform in a batch of them
#   acc       one output element of a stacking strategy's accumulation pass
#             (optional: a row without it prices those passes at ``elem``
#             inside the strategy's own work, under its ``x_<s>``)
#   base      fixed cost of any call (does not change a choice)
#   x_<s>     factor on strategy s's own work; g_<s>: on its matmuls; o_<s>: set-up
# Six entries are facts about the library, not fitted: ``fuses_taps`` (XLA
# fuses a chain of one-channel tap products into one loop),
# ``copies_slices`` (XLA materialises a slice that feeds a product),
# ``fft_contiguous`` (NumPy's FFT along a strided axis is slow: a short
# kernel's padded axes are cheaper as DFT matmuls, and a 2-d spectrum is
# cheaper transposed between its two transforms, 28 vs 34 ms for 1080^2;
# XLA's is not), ``tile_bytes`` (the working set of one tile of a
# stacking direct strategy; 0: no tiles for speed), ``tile_stack_only``
# (what that working set counts: the whole workspace, or only the stacked
# matmul operand) and ``phase_grid`` (a strided shift / im2col_last / im2col
# runs on the flat grid of the input's stride phases: every tap becomes one
# contiguous slice, where NumPy's strided slices copy short runs.  Same-
# process A/B under NumPy, ``auto`` with and without: the 7x7 stride-2 stem
# 8x3x224^2 67.6 against 74.8 ms, 16x16x64^2 5x5 stride 2 21.8 against
# 27.2 ms, depthwise 8x128x56^2 3x3 stride 2 26.2 against 34.2 ms.  Not
# under XLA, which fuses strided slices into its products: there a stem
# built from phase slices (space-to-depth) ran 105-163 ms against 83-91 ms
# strided.  The GPU row is unmeasured).  NumPy allocates each large
# temporary afresh, and the page faults and memory traffic of whole-batch
# stacks cost more than a loop over tiles: dense 8x64x56^2 3x3 ran in 29 ms
# in 1-sample tiles, 31-41 ms whole.  XLA gains the same way from tiles of
# its stacked operand (for Winograd, the transformed input): under
# ``jax.jit`` the 7x7 stride-2 stem 8x3x224^2 ran in 62 ms in tiles against
# 76 ms whole, 4x32x64^2 5x5 in 35 against 52 ms, Winograd on 8x64x56^2 3x3
# in 21-27 ms in four tiles against 36 ms whole (lax: 27 ms).  Counting
# output and padded input as well would tile layers whose columns already
# fit (64x3x32^2 3x3: 5.5 against 4.6 ms).
# XLA traces each tile anew, which costs compile time (that Winograd layer:
# 2.5 s against 0.7 s), so there the tiles' unrolled operations together
# stay within ``_MAX_TILED_OPS_JAX``.  A GPU wants the whole batch.
# ``phases_last`` (a fact, not fitted): the sub-pixel transposed
# convolution computes its phases channels-last, so interleaving them copies
# runs of stride * channels values instead of single values (NumPy's copy
# loop pays per run).  NumPy, 8x64x28^2 -> 32 4x4 stride 2, the interleave
# alone: 0.32 against 1.70 ms (medians of 15 and 21).  Off under XLA (its
# transposed convolution already ran at 0.66-0.99 of lax's) and on the
# unmeasured GPU row.
# ``batch_gemm`` (a fact, not fitted): an im2col over few positions
# per sample runs channel-major, so the whole tile's samples form one matmul
# instead of one thin matmul each (see :func:`batch_gemm`).  Off under XLA,
# which lays out its own dots, and on the unmeasured GPU row.
# ``banded_rows`` (a fact, not fitted): a long 1-d line's banded matmul
# runs in row tiles of about this many bytes of workspace (see
# :func:`_row_tile`).  Off (0) under XLA and on the GPU row (unmeasured).
# ``band_panel`` (a fact, not fitted): how much slower a 1-d banded
# matmul's products run for a thin block, ranking its blocks only (see
# :func:`_thin_panel_cost`).  Off (0) under XLA and on the GPU row (unmeasured).
# ``flat_chunk``, ``flat_run`` (facts, not fitted) and ``flat_elem``: a
# stride-1 elementwise correlation with one channel in and out per group
# runs on the channel-major flat grid (see :func:`flat_chunks`), where
# every tap of one channel is one contiguous run of the batch's padded
# samples, in chunks of about ``flat_chunk`` output elements, so that the
# running sum stays in the core's cache across the taps.  ``flat_run``:
# the fewest grid positions a channel admitted.  NumPy multiplies runs of
# 2,048 values or fewer by a per-channel weight at 0.31-0.41 ns a value
# against 0.11 from 3,248 on (65,536 values a call, medians of 300); up
# to some 8,000 a channel the many chunks of several channels tie with the
# banded matmul at best (8x256x28^2, 7,200 a channel: 0.97-1.16x it in
# three one-process A/Bs), and torch on the CPU, which this row also
# prices, pays several times NumPy's per-call overhead on them (1.59x).
# Below the threshold the flat form was also 0.8-0.9x the others on
# 1x96x56^2 and 4x48x32^2 depthwise layers: the price of the margin.
# ``flat_elem``: one multiply-add of one grid element (set by hand, see
# :func:`_flat_elementwise_time`).  Off (0) under XLA, which fuses the
# taps itself, and on the unmeasured GPU row.
# ``shared_gather`` (a fact, not fitted): shift and im2col_last permute
# the weight taps-first with the same copy, so its price (``gather``) is
# left out of their own work's factors.  Scaled by them (1.37 and 0.38),
# a 256x256 3x3 weight's gather cost 1.9 ms in shift's price and 0.5 in
# im2col_last's.  Only in the NumPy row; the other rows were fitted with
# it scaled.
# ``shared_pad`` (a fact, not fitted): likewise for the padding and
# stride-phase copies that shift, im2col_last and im2col all make (see the
# NumPy row's 2026-12-08 note).  Only in the NumPy row.
# ``outer`` (a fact, measured): a product with a contraction of one (a
# single-channel shift tap, a 1x1 layer of one input channel) is an outer
# product, which NumPy's ``matmul`` wrote at 1.1-1.3 ns per output
# element for 1-128 rows and 3,248-262,144 columns.  A broadcast multiply
# takes 0.1 ns.  The efficiency curve priced 128 rows at 0.3 ns, and an
# 8x1x32^2 -> 128 1x1 layer took ``shift`` at 1.36 ms where
# ``elementwise`` runs in 0.52.
# ``orders_work`` (a fact, not fitted): XLA's CPU runtime may run
# independent operations side by side, so it gives each its own buffer:
# every tile's stacked operand and every tap's product are live at once and
# the temporary buffer, mapped afresh on each call, faults in a page per
# 4 KiB.  Each tile's input is therefore made to depend on the previous
# tile's output, and each tap's operand on the sum so far (``_direct.after``).
# Under ``jax.jit``, unordered / ordered: the stem 8x3x224^2 in 1-sample
# im2col tiles 66.4 / 29.9 MB of temporaries, 16,207 / 867 page faults,
# 37.1 / 22.4 ms a call; the volume 1x8x64^3 3x3x3 in 10-row im2col_last
# tiles 241.7 / 22.3 MB, 85.0 / 34.0 ms.  Eager libraries free each
# temporary as soon as it is dropped.
_COSTS = {
    # Refitted on 2026-12-05 on three training sweeps of that day (the heap
    # hint on; the 2026-11-29 matmul probe), on a host that ran small NumPy
    # calls about 2x slower than the previous fit's: fit loss 0.53 -> 0.17;
    # three-round evaluation sweeps on that host, old row / new row: 42 / 43
    # of the 50 shapes within 10% of the fastest, unusual set 21 / 21 of 24.
    # ``acc`` was added on 2026-12-07 and chosen by hand, the rest held: the
    # passes that sum shift / im2col_last products had been scaled by their
    # strategy's factor (im2col_last's 0.38), so a layer with more output
    # than input channels on a small map ran im2col_last where im2col was
    # 1.2-1.5x faster.  Only contractions over several channels price them
    # apart: with one channel per group (images, depthwise) the products are
    # matrix-vector passes, and pricing their sums apart moved the 1024^2
    # 3x3 image and the 8x144x56^2 depthwise layer to a slower banded matmul.
    # Picks within 10% predicted from stored sweeps, without / with ``acc``
    # (6.0e-10 and 6.8e-10 gave the same counts; 7.5e-10 lost two): the
    # Xeon host's 2026-12-06 evaluation and unusual sweeps 44 / 45 of 50 and
    # 20 / 21 of 24, the AMD host's 46 / 47 and 21 / 21, 2026-12-07's 44 /
    # 45, 23 / 23 and 12 / 12 of 15 network layers, and 3 / 9 of 13 timed
    # 3x3 and 2x2 layers of 7^2-28^2 maps with 16-256 channels.  ``pack``
    # (per weight element and product, see _weight_packs) was added on
    # 2026-12-07, when channel-major im2col lost its depth floor, and chosen
    # by hand: on 25 timed layers (3x3, 2x2 and 4x4 stride-2 transposed, 7^2
    # -29^2 maps, 16-256 channels) 0, 0.5, 0.75, 1, 1.5 and 3 ns picked
    # within 10% on 17, 17, 19, 20, 20 and 19; the day's evaluation, network,
    # unusual and training sweeps gave 44/50, 13/15, 23/24 and 48/54 from
    # 0.5 ns to 3 ns (12/15 on the network layers at 0).  ``x_fft_blocks``
    # was raised by hand from the fitted 0.384 to 0.8 on 2026-12-07: no
    # training shape convolved many channels over a long sequence, where
    # the overlap-save blocks ran 1.8-2.4x the direct forms the model had
    # ranked below them (the sequences sweep's 16x64x4000 -> 64 k9 picked
    # them at 75 ms against 43 for im2col).  Picks within 10% predicted from
    # the day's stored evaluation, network, unusual and sequence sweeps, by
    # factor 0.384 / 0.5 / 0.6 / 0.8 / 1.0 / 1.1: 45 / 45 / 45 / 45 / 45 /
    # 44 of 50, 15 of 15 throughout, 21 / 21 / 21 / 22 / 22 / 22 of 24, 7 /
    # 7 / 8 / 8 / 8 / 8 of 8; older stored sweeps at 0.384 / 0.8: 46 / 47,
    # 45 / 46, 47 / 47, 44 / 44 and 45 / 45 of 50, 21 / 20 (twice) and 21 /
    # 21 of 24 (a near-tie of fft and fft_blocks on 1-d 50k*4001).  It was
    # lowered by hand to 0.62 late on 2026-12-07: at 0.8 one-channel
    # signals of 1M samples and 513 taps ran the banded matmul at 8.5 ms
    # where the blocks take 7.0 (benchmarks/ab.py, the old constant against
    # the new in one process).  The picks predicted from
    # the day's stored sweeps (the banded matmul priced at its fitted best
    # block, as the planner prices it; the blocks at their best length)
    # hold every evaluation, network, unusual and sequence pick from 0.59
    # to 0.64 and add 1M*513 (the older stored sweeps: 500 picks at 0.8 and
    # throughout); at 0.58 the sequences' 16x64x4000 -> 64 k9 goes to the
    # blocks (1.7x slower), at 0.65 1M*513 goes back.  A narrow plateau:
    # the blocks' one-channel transforms are priced about 2x high against
    # the banded matmul, their multi-channel form about right.
    # ``o_toeplitz`` was lowered by hand from the fitted 8.36e-5 to 5e-5 s
    # the same day (the middle of a plateau from 4e-5 to 6e-5): the banded
    # matmul had lost near-ties to im2col_last on small maps (2x64x14^2 5x5
    # depthwise, 256^2 5x5).  Picks within 10% predicted from the day's
    # three stored evaluation sweeps 45 / 42 / 44 -> 45 / 43 / 45 of 50,
    # its network, unusual and sequence sweeps unchanged (15, 22, 8); the
    # older stored evaluation sweeps 47 -> 48 twice, 45 -> 46, the rest
    # unchanged.  ``shared_pad`` came on 2026-12-08 with a partial refit.
    # The padding and phase-split copies that shift, im2col_last and im2col
    # all make had been priced inside each strategy's own work, so
    # ``x_shift`` (1.37) and ``x_im2col_last`` (0.38) scaled the same copies
    # 3.6x apart; on multi-channel layers shift ran at 0.58-0.69 of its
    # modelled time relative to im2col's, on both hosts, and lost its wins
    # (h28 2x128x32^2 -> 1 3x3 picked im2col_last at 1.62x).  With the flag
    # those copies cost ``copy`` for every stacking strategy, and
    # ``fit_cost_model.py --free gemm_k,gemm_n,acc,copy,x_shift,o_shift,
    # x_im2col_last,o_im2col_last,x_im2col,o_im2col,x_toeplitz,x_elementwise``
    # refitted those on 24 stored NumPy sweeps of 2026-12-06 to 2026-12-08a
    # (evaluation, unusual, network, sequence, signal, random and float64
    # sets of both hosts; not the holdout set; the command and list in
    # benchmarks/README.md), the hand-placed ``x_fft_blocks`` and
    # ``o_toeplitz`` held.  A fit of
    # the flag on the Xeon host's sweeps alone also gained on the EPYC
    # host's, and the reverse.  Picks within 10% predicted from the stored
    # sweeps, old row / new: Xeon evaluation 255 / 259 of 300 (six sweeps),
    # unusual 64 / 64 of 72, networks 57 / 57 of 60, sequences and signals
    # 17 / 16 of 17 (tcn 16x64x4000 -> 64 k9 goes to shift at 1.17x); EPYC
    # evaluation 135 / 136 of 150, unusual 20 / 21, random 31 / 34, holdout
    # 29 / 30 of 40, float64 102 / 105 of 123.  On a draw made for the
    # purpose (``--set fresh``) swept at the old row: 27 / 34 of 40; small
    # layers 25 / 24 of 30.  Of the suite only ``conv_transpose``'s plan
    # moves, im2col -> im2col_last, a modelled tie (7.16 / 7.15 ms) that runs
    # 4.4 / 4.6 ms.
    "cpu": {
        "fuses_taps": 0,
        "copies_slices": 0,
        "fft_contiguous": 1,
        "tile_bytes": 8 << 20,
        "tile_stack_only": 0,
        "phase_grid": 1,
        "orders_work": 0,
        "phases_last": 1,
        "batch_gemm": 1,
        "banded_rows": 32 << 20,
        "band_panel": 48,
        "flat_chunk": 1 << 16,
        "flat_run": 8192,
        "flat_elem": 2.3e-10,
        "item": 8e-08,
        "gemm_k": 10.6,
        "gemm_n": 2.22,
        "call": 1.57e-06,
        "elem": 5.45e-10,
        "acc": 5.63e-10,
        "pack": 1e-09,
        "shared_gather": 1,
        "shared_pad": 1,
        "outer": 1.1e-09,
        "copy": 8.1e-10,
        "gather": 2.35e-09,
        "read": 2.36e-10,
        "gemm": 2.24e-11,
        "fft": 1.35e-09,
        "fft_each": 3.98e-07,
        "base": 0.000212,
        "x_elementwise": 1.2,
        "x_shift": 1.3,
        "x_im2col_last": 0.381,
        "x_im2col": 0.927,
        "x_toeplitz": 0.967,
        "x_fft": 0.688,
        "x_fft_blocks": 0.62,
        "x_winograd": 1.03,
        "o_elementwise": 1.55e-05,
        "o_shift": 1.98e-05,
        "o_im2col_last": 1.11e-05,
        "o_im2col": 1.06e-05,
        "o_toeplitz": 5e-05,
        "o_fft": 0.000185,
        "o_fft_blocks": 8.85e-05,
        "o_winograd": 4.94e-05,
    },
    # JAX under XLA on the CPU: its FFT is about 3x faster than NumPy's and its
    # copies fuse differently, so it has its own row (fitted the same way).
    # Its ``g_<strategy>`` put a factor on each strategy's matmuls too: XLA
    # fuses the slices that feed a dot into it, so a product's cost depends on
    # the strategy, and a refit with one shared matmul rate picked worse on
    # the JAX sweeps (45 against 46 of 50 shapes within 10%, four sweeps
    # merged).  ``item`` is not measured for XLA: it stays at the per-call cost
    # of the fit that first priced batched products.  Refitted on 2026-11-29
    # (three training sweeps of that day, with 2-5-tap batched layers): on
    # that day's host JAX dispatched a small call in ~0.05 ms where the
    # previous fit had seen ~0.4 ms, and the old row picked within 10% on
    # only 34-38 of the 50 evaluation shapes in single-round sweeps, the
    # new one on 46-47 (47 in the committed three-round sweep).
    "cpu-xla": {
        "fuses_taps": 1,
        "copies_slices": 1,
        "fft_contiguous": 0,
        "tile_bytes": 8 << 20,
        "tile_stack_only": 1,
        "phase_grid": 0,
        "orders_work": 1,
        "phases_last": 0,
        "batch_gemm": 0,
        "banded_rows": 0,
        "band_panel": 0,
        "flat_chunk": 0,
        "item": 6.87e-07,
        "call": 5.79e-07,
        "elem": 9.85e-11,
        "copy": 1.04e-09,
        "gather": 3.57e-09,
        "read": 6.28e-10,
        "gemm": 1.96e-11,
        "gemm_k": 35.7,
        "gemm_n": 1.63,
        "fft": 9.26e-10,
        "fft_each": 3.73e-07,
        "base": 7.63e-05,
        "x_elementwise": 0.623,
        "x_shift": 0.638,
        "x_im2col_last": 0.399,
        "x_im2col": 0.855,
        "x_toeplitz": 0.807,
        "x_fft": 0.354,
        "x_fft_blocks": 0.357,
        "x_winograd": 0.517,
        "o_elementwise": 3.46e-05,
        "o_shift": 7.91e-06,
        "o_im2col_last": 1.5e-05,
        "o_im2col": 2.76e-05,
        "o_toeplitz": 7.05e-05,
        "o_fft": 0.000107,
        "o_fft_blocks": 4.21e-05,
        "o_winograd": 4.03e-05,
        "g_shift": 0.891,
        "g_im2col_last": 0.864,
        "g_im2col": 0.855,
        "g_toeplitz": 0.842,
        "g_fft": 0.342,
        "g_fft_blocks": 0.41,
    },
    "gpu": {
        "fuses_taps": 0,
        "copies_slices": 0,
        "fft_contiguous": 0,
        "tile_bytes": 0,
        "tile_stack_only": 0,
        "phase_grid": 0,
        "orders_work": 0,
        "phases_last": 0,
        "batch_gemm": 0,
        "banded_rows": 0,
        "band_panel": 0,
        "flat_chunk": 0,
        "call": 12e-6,
        "item": 12e-6,
        "elem": 0.02e-9,
        "copy": 0.01e-9,
        "gather": 0.02e-9,
        "read": 0.005e-9,
        "gemm": 1.0 / 20e12,
        "gemm_k": 64.0,
        "gemm_n": 8.0,
        "fft": 0.01e-9,
        "fft_each": 2e-6,
    },
}


def dft_by_matmul(k: int, n: int) -> bool:
    """Whether a length-``n`` DFT of ``k`` nonzero leading samples is a matmul.

    A short kernel padded to a long FFT axis is mostly zeros: multiplying
    its ``k`` samples by an ``(n x k)`` DFT matrix costs ``n * k`` complex
    multiply-adds at matmul speed, against a full FFT of every line (NumPy's
    strided-axis FFT took as long for a 31x31 kernel as for a 1024^2 image).
    """
    return k <= 64 and 4 * k <= n


def _fft_points_cost(points: int) -> float:
    return points * max(math.log2(max(points, 2)), 1.0)


def _gemm_efficiency(c: dict, m: int, k: int, n: int) -> float:
    # A matmul with a short contraction, or a thin output, runs far below
    # the BLAS peak; each halves the speed at its constant.
    return 1.0 / ((1.0 + c["gemm_k"] / k) * (1.0 + c["gemm_n"] / min(m, n)))


def _gemm_time(c: dict, m: int, k: int, n: int, scale: float, items: int = 1) -> float:
    """``(m x k) @ (k x n)``: compute bound, or memory bound (matrix-vector).

    ``items``: products in one batched ``matmul`` call; each after the first
    adds ``item`` (NumPy loops over a stack of 4x4 products at 0.08 us each,
    far below the cost of a call).
    """
    compute = m * k * n * c["gemm"] * scale / _gemm_efficiency(c, m, k, n)
    if k == 1 and "outer" in c:  # an outer product: not BLAS speed (see the row)
        compute = max(compute, m * n * c["outer"] * scale)
    memory = (m * k + k * n + m * n) * c["read"] * scale
    return items * max(compute, memory) + c["call"] + (items - 1) * c["item"]


def _weight_packs(c: dict, g: Geometry, products: int, scale: float) -> float:
    """Seconds OpenBLAS spends packing a stacking strategy's weights, in a row with ``pack``.

    Each product packs its weight operand again, so a strategy that runs one
    product per sample packs the whole weight ``N`` times (whether as one
    product per tap, per kernel row or one), and channel-major im2col once.
    The 2026-11-29 matmul probe put it at about 0.5 ns a weight element a
    product (a 128 x 576 weight against 196-3136 positions ran at 208-334
    GFLOP/s); ``_gemm_time``'s efficiency, which depends on the shorter
    side only, does not see it.
    """
    if "pack" not in c:
        return 0.0
    return products * g.group_out * g.group_in * g.taps * c["pack"] * scale


def _strategy_cost(
    g: Geometry,
    strategy: str,
    dtype: DtypeInfo,
    device: str,
    fft_shape,
    block=None,
    costs: dict | None = None,
) -> float:
    """Modelled seconds of ``strategy``; ``costs`` overrides the device's table (fits).

    The table's optional ``x_<strategy>`` scales a strategy's own modelled
    work (its copies, passes and transforms) and ``o_<strategy>`` adds its
    fixed set-up time; its matmuls cost the same as any other strategy's of
    that shape (``g_<strategy>``, if the row has one, scales them), and so,
    in a row with ``acc``, do the passes that sum a stacking strategy's
    products over several channels, and in a row with ``shared_pad`` the
    padding and phase-split copies every stacking strategy makes.  ``base``
    is the fixed cost of any call (it does not change a choice, only how well
    times are modelled).
    """
    c = costs or _COSTS[device]
    own, gemm = _strategy_time(g, strategy, dtype, c, fft_shape, block)
    work = c.get("x_" + strategy, 1.0) * own + c.get("g_" + strategy, 1.0) * gemm
    return work + c.get("o_" + strategy, 0.0) + c.get("base", 0.0)


def tiled_cost(
    g: Geometry,
    strategy: str,
    dtype: DtypeInfo,
    device: str,
    fft_shape,
    block,
    tile: int,
    rows: int | None,
    costs: dict | None = None,
) -> float:
    """Modelled seconds of ``strategy`` run in batch tiles of ``tile`` samples.

    ``rows``: outputs along the first spatial axis per tile (None: all).
    Joining batch tiles copies the output once.  Row tiles re-read their
    halo; their join is not charged, because they are only made where the
    stacks they keep in cache save more than it costs (:func:`_row_tile`),
    a saving the per-element constants of a whole call cannot express.
    """
    c = costs or _COSTS[device]
    if not 0 < tile < g.batch:
        cost = _strategy_cost(g, strategy, dtype, device, fft_shape, block, c)
    else:
        part = dataclasses.replace(g, batch=tile)
        cost = g.batch / tile * _strategy_cost(part, strategy, dtype, device, fft_shape, block, c)
        cost += g.out_positions * g.out_channels * c["copy"]
    if rows is not None:
        span = g.spans[0]
        tiles = g.batch * -(-g.out_spatial[0] // rows)
        halo = max(span - g.stride[0], 0) * math.prod(g.padded_spatial[1:]) * g.in_channels
        cost += tiles * (halo * c["copy"] + 6 * c["call"])
    return cost


def _priced_alike(c: dict, flag: str, own: float, gemm: float, cost: float) -> tuple[float, float]:
    """``(own, gemm)`` with ``cost``, work several strategies make alike, added.

    In a row with ``flag`` (``shared_gather``: the taps-first weight copy;
    ``shared_pad``: the stacking strategies' padding and phase-split copies)
    it joins the unscaled part, so it costs every strategy the same (see the
    row); else a strategy's factor scales it with its own work.
    """
    return (own, gemm + cost) if c.get(flag) else (own + cost, gemm)


def _strategy_time(
    g: Geometry, strategy: str, dtype: DtypeInfo, c: dict, fft_shape, block
) -> tuple[float, float]:
    """Modelled seconds of ``strategy``: ``(its own work, its matmuls)``.

    The second part also holds, in a row with ``acc``, the passes that sum
    the products of shift and im2col_last when they contract several
    channels, and in a row with ``shared_pad`` the stacking strategies'
    padding and phase-split copies (neither scaled by ``x_<strategy>``).
    """
    scale = 4 if dtype.kind == "complex" else 1
    if dtype.kind == "int":
        scale = 3  # integer products are not vectorised as well, and never BLAS
    m = g.out_positions
    x_elems = g.batch * g.in_channels
    t = g.taps
    cin_g, cout_g, groups = g.group_in, g.group_out, g.groups
    out_elems = m * g.out_channels
    acc_pass = out_elems * c["elem"] * scale + 2 * c["call"]
    if strategy == "elementwise" and flat_elementwise_applies(g, c):
        return _flat_elementwise_time(g, c, scale), 0.0
    if strategy == "elementwise":
        # one broadcast multiply-add per tap and per input channel of a group;
        # strided slices broadcast against per-channel weights run slower
        slow = 1.2 if groups == 1 else 3.5
        return t * cin_g * acc_pass * slow, 0.0
    if strategy == "shift" and cin_g == 1 and c["fuses_taps"]:
        # XLA turns one-channel products into multiplies and fuses the taps
        return _strategy_time(g, "elementwise", dtype, c, fft_shape, block)
    if strategy in ("shift", "im2col_last", "im2col"):
        width = {"shift": 1, "im2col_last": g.kernel[-1], "im2col": t}[strategy]
        passes = t // width
        if batch_gemm(g, strategy, c):
            # channel-major (see batch_gemm): the padding's copy transposes,
            # every tap's exact windows are gathered, and one matmul covers
            # every sample instead of one per sample
            x_padded = x_elems * math.prod(g.padded_spatial)
            if splits_column_phases(g):
                x_padded *= 2  # one more copy of the input
            pad = x_padded * c["copy"] * scale
            copy = t * m * g.in_channels * c["copy"] * scale + t * c["call"]
            gemm = _gemm_time(c, m, cin_g * t, cout_g, scale, groups)
            gemm += _weight_packs(c, g, groups, scale)
            return _priced_alike(c, "shared_pad", copy, gemm, pad)
        if all(s == 1 for s in g.stride):
            # flat-grid form: taps are views; only the stacked width is copied.
            # XLA copies each product's operand slice as well: a tap's slice
            # (shift), or a kernel row's slice of the shared stack, ``width``
            # wide (im2col_last; 8x16x64^2 5x5 ran 28 ms against 18 modelled
            # when each counted one wide)
            copied = 0 if strategy == "shift" else width
            if strategy != "im2col":
                copied += passes * width * c["copies_slices"]
            x_padded = x_elems * math.prod(g.padded_spatial)
            pad = x_padded * c["copy"] * scale
            copy = copied * x_padded * c["copy"] * scale + passes * c["call"]
        elif phase_grid_applies(g, c):
            # the padding and the phase split each copy the input once; the
            # stacked width is copied over the phase grid's positions, for
            # im2col_last once per phase its kernel rows start in
            copied = {"shift": 0, "im2col": width}.get(strategy)
            if copied is None:
                heads = phase_tap_offsets(g)[:: g.kernel[-1]]
                copied = width * len({phase for phase, _ in heads})
            x_padded = x_elems * math.prod(phase_grid_padded(g))
            m = phase_grid_positions(g)  # its products span the surplus columns too
            pad = 2 * x_padded * c["copy"] * scale
            copy = copied * m * g.in_channels * c["copy"] * scale + passes * c["call"]
        elif (
            strategy == "shift"
            and g.ndim == 1
            and splits_column_phases(g)
            and not c["copies_slices"]
        ):
            # after the padding's copy and the column-phase split's, every
            # tap is a contiguous slice of one phase: a BLAS operand, no copy
            # (1-d 4x128x1000 -> 8 k7 s2 g2 now picks it, 1.83 -> 0.93 ms;
            # 8x32x4096 -> 32 k5 s2 g2, 2.8 ms against im2col's 4.6, went
            # from 6.2 to 5.7 ms priced: its short products still price high)
            x_padded = x_elems * math.prod(g.padded_spatial)
            pad = 2 * x_padded * c["copy"] * scale
            copy = passes * c["call"]
        else:
            pad = 0.0
            copy = t * m * g.in_channels * c["copy"] * scale + passes * c["call"]
        per_sample = m // max(g.batch, 1)
        items = g.batch * groups
        gemm = passes * _gemm_time(c, per_sample, cin_g * width, cout_g, scale, items)
        gemm += _weight_packs(c, g, g.batch * groups, scale)
        copy, gemm = _priced_alike(c, "shared_pad", copy, gemm, pad)
        if strategy != "im2col":  # the weight is permuted taps-first (a gather)
            gather = g.out_channels * cin_g * t * c["gather"] * scale
            copy, gemm = _priced_alike(c, "shared_gather", copy, gemm, gather)
        if "acc" in c and cin_g > 1:  # summing true matmuls' products: not factored
            return copy, gemm + (passes - 1) * (out_elems * c["acc"] * scale + 2 * c["call"])
        return copy + (passes - 1) * acc_pass, gemm
    if strategy == "windows":
        # one slice per output window, stacked; one matmul per group
        per_sample = m // max(g.batch, 1)
        copy = m * g.in_channels * t * c["copy"] * scale + per_sample * c["call"]
        return copy, _gemm_time(c, m, cin_g * t, cout_g, scale, groups)
    if strategy == "toeplitz":
        hop, width = band_frames(g, block)
        head = t // g.kernel[-1]
        rows = -(-m // block)  # output rows of ``block`` positions, all samples
        x_padded = x_elems * math.prod(g.padded_spatial)
        if block >= g.out_spatial[-1] and (
            width <= g.padded_spatial[-1] or all(s == 1 for s in g.stride[:-1])
        ):
            frames = 0.0  # one frame per line: a view (zero padding stays in the band)
        else:
            nb = -(-g.out_spatial[-1] // block)
            if nb <= STACKED_FRAMES:  # a run per frame, see _RUN_OVERHEAD
                lines = x_padded // g.padded_spatial[-1]
                frames = lines * nb * (width + _RUN_OVERHEAD) * c["copy"] * scale
            else:
                frames = x_padded * width / hop * c["copy"] * scale
        # skinny (rows x width) @ (width x block) products run well below peak
        gemm = 1.5 * head * _gemm_time(c, rows, width, block, scale, groups)
        strided = any(s > 1 for s in g.stride[:-1])
        copies = head * groups * rows * width * c["copy"] * scale if strided else 0.0
        copies += head * groups * (width + 1) * block * c["copy"] * scale  # the bands
        if not strided and g.batch > 1 and groups > 1:
            copies = x_padded * c["copy"] * scale  # the channel-major transpose
        return frames + copies + (head - 1) * acc_pass, gemm
    if strategy == "fft":
        pts = math.prod(fft_shape)
        half = pts if dtype.kind == "complex" else pts // 2
        # a short kernel's padded axes are DFT matmuls: only its own lines cost
        kernel_share = 1.0
        if dtype.kind != "complex" and c["fft_contiguous"]:
            spans = g.spans
            for k, n in zip(spans[:-1], fft_shape[:-1]):
                kernel_share *= k / n if dft_by_matmul(k, n) else 1.0
        transforms = x_elems + g.out_channels * cin_g * kernel_share + g.batch * g.out_channels
        per = _fft_points_cost(pts) * c["fft"] * (2 if dtype.kind == "complex" else 1)
        per += c["fft_each"]
        pad = x_elems * pts * c["copy"]
        own = transforms * per + pad + 12 * c["call"]
        if cin_g == 1:
            return own + g.batch * g.out_channels * half * c["elem"] * 4, 0.0
        # the per-frequency channel contraction is a batched matmul
        return own, _gemm_time(c, g.batch, cin_g, cout_g, 4, half * groups)
    if strategy == "fft_blocks":
        (length,) = fft_shape
        span = g.spans[0]
        nb = -(-(g.padded_spatial[0] - span + 1) // (length - span + 1))
        framed = dataclasses.replace(g, batch=g.batch * nb)
        own, gemm = _strategy_time(framed, "fft", dtype, c, fft_shape, None)
        return own + 6 * c["call"], gemm
    if strategy == "winograd" and any(s > 1 for s in g.stride):
        # the stride-1 problem of the stride phases, after the padding's copy
        # and the phase split's
        own, gemm = _strategy_time(winograd_geometry(g), strategy, dtype, c, fft_shape, block)
        return own + 2 * x_elems * math.prod(g.padded_spatial) * c["copy"] * scale, gemm
    if strategy == "winograd":
        # one product per transformed tile position ((r + 1)^2 for an r x r
        # kernel) over tiles of stride 2, framed by additions: for 3x3 about
        # 6 passes over 4x the input (B^T d B) and over 4x the output
        # (A^T m A); each transform's terms grow with r + 1
        tiles = g.batch * math.prod(winograd_tiles(g))
        values = winograd_values(g)
        gemm = _gemm_time(c, g.out_channels, g.in_channels, tiles, scale, values)
        per = 1.5 * values * sum(k + 1 for k in g.kernel) / 2
        adds = per * tiles * (g.in_channels + g.out_channels) * c["elem"] * scale
        kernel = per * g.out_channels * g.in_channels * c["elem"] * scale
        return adds + kernel + unrolled_ops(g, strategy) * c["call"], gemm
    raise AssertionError(strategy)


# Frames per line up to which ``_frames`` stacks strided slices (one copy,
# runs of ``width``, but a pass over the input per frame); beyond, it joins
# ``ceil(width / block)`` reshaped slices (runs of ``block``).  Depthwise
# 8x256x28^2 lines in two 18-sample frames: 2.4 ms stacked, 17 ms joined
# after a zero-extension; a 1034^2 image in 16 frames of 74: 1.1 against
# 2.4 ms, but in 64 frames of 26 the stack lost (5.5 against 3.3 ms).
STACKED_FRAMES = 16
# A stacked frame costs about as much as copying this many more elements.
# NumPy's strided copy loop spends 10-30 ns per run: 122,880 frames of 18
# samples out of cache took 5 ms where their 2.2 M elements alone price at
# 1.8 ms (26 ns a frame).  16 (about 13 ns) is what picks the measured
# fastest plan on four depthwise layers (8x256x28^2, 4x144x56^2 and
# 8x512x14^2 3x3, 2x32x32^2 7x7): 32 picks a slower strategy for the 7x7
# one, and below 8 the 8x256 layer goes back to short frames.  Joined
# frames keep the fitted per-element price.
_RUN_OVERHEAD = 16


def frames_length(hop: int, width: int, nb: int) -> int:
    """Samples of a line that framing it into ``nb`` frames of ``width``, hop ``hop``, reads."""
    if nb <= STACKED_FRAMES:
        return (nb - 1) * hop + width
    return (nb + -(-width // hop) - 1) * hop


def band_frames(g: Geometry, block: int) -> tuple[int, int]:
    """``(hop, width)`` of the banded matmul's frames for ``block`` outputs each.

    With stride ``s`` along the last axis, ``block`` outputs read
    ``s * (block - 1) + span`` inputs and the next block starts ``s * block``
    further on; the band is ``T[m, j] = w[m - s * j]``.
    """
    s = g.stride[-1]
    span = g.spans[-1]
    return s * block, s * (block - 1) + span


def _toeplitz_block(g: Geometry, dtype: DtypeInfo, device: str) -> tuple[int, int] | None:
    """Blocks of the banded-matmul plan: ``(the one it runs, the one that prices it)``.

    None when it does not apply.  The block that runs is the best with
    :func:`_thin_panel_cost` added; the strategy is compared with the others at the
    fitted model's own best block, as the fit priced it (on NumPy the
    ranked block ran no slower on every signal measured for
    :func:`_thin_panel_cost`).
    """
    if g.group_in != 1 or g.group_out != 1 or dtype.kind == "int":
        return None
    span = g.spans[-1]
    if span < 2:
        return None
    o_last = g.out_spatial[-1]
    # One frame per line is rounded up to a multiple of 16: OpenBLAS's AVX-512
    # kernels fill the output's last axis in 16-wide panels, and a partial
    # panel is slow.  256 products of (240 x 28) @ (28 x n) took 1.58 ms for
    # n = 28 and 1.13 ms for n = 32; (4096 x 64) @ (64 x n) 0.30 ms for n = 56
    # and 0.19 ms for n = 64.  Below 16, n = 12 ran as fast as n = 16.
    one_frame = o_last if o_last < 16 else -(-o_last // 16) * 16
    blocks = sorted(
        {16, 32, 64, 128, 256, 512, 1024} | ({one_frame} if one_frame <= 1024 else set())
    )
    best = priced = None
    for block in blocks:
        if block > 2 * o_last and best is not None:
            break
        cost = _strategy_cost(g, "toeplitz", dtype, device, None, block)
        rank = cost + _thin_panel_cost(g, dtype, device, block)
        if best is None or rank < best[0]:
            best = (rank, block)
        if priced is None or cost < priced[0]:
            priced = (cost, block)
    return best[1], priced[1]  # block 16 always sets both


#: Where :func:`_thin_panel_cost` was measured to pick better.
_PANEL_MIN_SPAN = 64
_PANEL_MIN_OUTPUTS = 2**18


def _thin_panel_cost(g: Geometry, dtype: DtypeInfo, device: str, block: int) -> float:
    """Seconds a long 1-d band's thin block adds to its modelled cost, ranking blocks only.

    A 1-d band's products are ``(L / b) x (b + span - 1) @ (b + span - 1) x b``
    for block ``b``: tall matmuls whose rate OpenBLAS ties to ``b`` far more
    steeply than the fitted ``gemm_n`` says (NumPy, 2^20 outputs, 257 taps,
    ``b`` = 16 / 32 / 64 / 128 / 256: 65 / 111 / 205 / 255 / 269 GFLOP/s;
    65 taps: 114 / 165 / 203 / 239 / 258).  The row's ``band_panel`` adds
    ``band_panel / b`` of the products' cost where that was measured: spans
    of at least :data:`_PANEL_MIN_SPAN` taps, at least
    :data:`_PANEL_MIN_OUTPUTS` outputs per band.  It picks the fastest
    block on 2^18 to 2^22 samples with 65 to 513 taps (NumPy, 2^20 x 257:
    b 64 -> 128, 6.65 -> 5.10 ms).  Shorter spans tie within 10% over
    b = 16-64; shorter signals ran 1.06-1.3x slower on the wider block
    (2^16 x 65 and x 257, 10k x 257, 8x256x1000 depthwise k31); 2-d bands
    are left alone: there the fitted model already picks within 4% of the
    fastest block on 1024^2 images with 5x5 to 15x15 kernels and 28^2
    depthwise layers, and this term moved 7x7 depthwise 32^2 maps to a
    24% slower block.
    """
    c = _COSTS[device]
    if g.ndim != 1 or not c.get("band_panel"):
        return 0.0
    if g.spans[-1] < _PANEL_MIN_SPAN or g.batch * g.out_spatial[-1] < _PANEL_MIN_OUTPUTS:
        return 0.0
    _, gemm = _strategy_time(g, "toeplitz", dtype, c, None, block)
    return c.get("g_toeplitz", 1.0) * gemm * c["band_panel"] / block


def _block_length(g: Geometry, dtype: DtypeInfo, device: str, full: int) -> int | None:
    """FFT length of the cheapest overlap-save blocking, or None if no gain.

    ``full``: the length of the one FFT over the whole signal.
    """
    if g.ndim != 1:
        return None
    span = g.spans[0]
    best = None
    for m in (2, 4, 8, 16, 32, 64, 128):
        length = fast_len(m * span, largest_factor=5)
        if length >= full:
            break
        cost = _strategy_cost(g, "fft_blocks", dtype, device, (length,))
        if best is None or cost < best[0]:
            best = (cost, length)
    return None if best is None else best[1]


_STACKING = ("shift", "im2col_last", "im2col")


def _stack_bytes(g: Geometry, strategy: str, itemsize: int) -> int:
    """Bytes of the matmul operand a stacking strategy (or Winograd) builds.

    One tap's slice (shift), one kernel row's columns (im2col_last), every
    tap's columns (im2col), or Winograd's transformed values (16 per tile
    and channel for 3x3).
    """
    if strategy == "winograd":
        return _winograd_positions(g) * winograd_geometry(g).in_channels * itemsize
    width = {"shift": 1, "im2col_last": g.kernel[-1], "im2col": g.taps}[strategy]
    positions = phase_grid_positions(g) if _spans_strides(g) else g.out_positions
    return positions * g.in_channels * width * itemsize


def _frames_bytes(g: Geometry, itemsize: int, block: int) -> int:
    """Bytes of the banded matmul's frames of ``block`` outputs over the padded input."""
    hop, width = band_frames(g, block)
    return g.batch * g.in_channels * math.prod(g.padded_spatial) * itemsize * width // hop


def _workspace(g: Geometry, strategy: str, itemsize: int, fft_shape, block=None) -> int:
    """Peak bytes of one untiled run of ``strategy``, output included."""
    x_padded = g.batch * g.in_channels * math.prod(g.padded_spatial) * itemsize
    out_per_sample = math.prod(g.out_spatial) * g.out_channels * itemsize
    out = g.batch * out_per_sample
    if strategy == "elementwise":
        if fits_flat_grid(g):
            # the channel-major flat grid computes every padded position
            out = max(out, g.batch * g.in_channels * math.prod(g.padded_spatial) * itemsize)
        return x_padded + 2 * out
    if strategy == "windows":
        return x_padded + g.out_positions * g.in_channels * g.taps * itemsize + 2 * out
    if strategy in _STACKING:
        if _spans_strides(g):  # padded to whole phases, and split into them
            x_padded = 2 * g.batch * g.in_channels * math.prod(phase_grid_padded(g)) * itemsize
        return x_padded + _stack_bytes(g, strategy, itemsize) + 2 * out
    if strategy == "fft_blocks":
        (length,) = fft_shape
        span = g.spans[0]
        nb = -(-(g.padded_spatial[0] - span + 1) // (length - span + 1))
        framed = dataclasses.replace(g, batch=g.batch * nb, in_spatial=(length,), pads=((0, 0),))
        return x_padded + _workspace(framed, "fft", itemsize, fft_shape)
    if strategy == "toeplitz":
        return x_padded + _frames_bytes(g, itemsize, block) + 3 * out
    if strategy == "winograd":
        wg = winograd_geometry(g)
        # the transformed input and the products, with a copy each (and
        # the phase split of a strided layer)
        split = x_padded if wg is not g else 0
        products = 2 * _winograd_positions(g) * (wg.in_channels + g.out_channels) * itemsize
        return x_padded + split + products + 2 * out
    if strategy == "fft":
        pts = math.prod(fft_shape)
        citem = itemsize * 2 if itemsize < 16 else itemsize
        spectra = (
            (g.batch * g.in_channels + g.out_channels * g.group_in + 2 * g.batch * g.out_channels)
            * pts
            * citem
        )
        return x_padded + spectra + out
    raise AssertionError(strategy)


@functools.lru_cache(maxsize=1024)
def phase_grid_shape(g: Geometry) -> tuple[int, ...]:
    """Length of each axis of one stride phase of the input, for the phase grid.

    The padded input, zero-extended to ``stride * length`` along each axis,
    splits into ``prod(stride)`` phases; tap ``t`` of axis ``i`` reads phase
    ``(t * d) % s`` at offset ``(t * d) // s``.  The output grid has the
    phases' row length, so the first axis holds enough rows for the slice
    of the farthest tap (see :func:`phase_tap_offsets`).
    """
    inner = tuple(-(-n // s) for n, s in zip(g.padded_spatial[1:], g.stride[1:]))
    row = math.prod(inner)
    far = sum(
        ((k - 1) * d // s) * math.prod(inner[i:])
        for i, (k, d, s) in enumerate(zip(g.kernel, g.dilation, g.stride))
    )
    rows = -(-(g.out_spatial[0] * row + far) // row)
    return (max(-(-g.padded_spatial[0] // g.stride[0]), rows),) + inner


#: Multiply-adds per output above which the sub-pixel transposed convolution
#: keeps its phases channels-first (see :func:`phases_last`).
PHASES_LAST_MAX_MACS = 512


def phases_last(device: str, unroll_limited: bool, macs: int) -> bool:
    """Whether the sub-pixel transposed convolution computes its phases channels-last.

    ``device`` is the device kind (``cpu``/``gpu``); see ``phases_last`` in
    the cost rows.  ``macs``: multiply-adds per output of the phases'
    correlation.  The interleave it saves costs the same per output, while
    the transposed products ran slower on deep contractions over few
    positions.  NumPy, 2x2 sub-kernels of 8xCx(s^2) 4x4 stride 2 layers,
    channels-last against channels-first, correlation and interleave,
    medians of 11: 128-256 multiply-adds per output 0.57-0.83 (C = 32, 64),
    512: 0.82-0.95 (C = 128), 1024: 0.95 at 14^2 and 28^2 but 1.08-1.12 at
    7^2 (C = 256), 2048: 1.04-1.09 (C = 512).
    """
    row = _COSTS[cost_table(device, unroll_limited)]
    return bool(row["phases_last"]) and macs <= PHASES_LAST_MAX_MACS


#: Sub-pixel phases of unequal sub-kernels share one correlation (see
#: :func:`merge_phases`) up to this many channels, ``ci * co / (ci + co)``
#: of a phase's input and output channels per group ...
MERGE_PHASES_MAX_CHANNELS = 64
#: ... and this many products for each of the kernel's.
MERGE_PHASES_MAX_WASTE = 2.5


def merge_phases(kernel: tuple[int, ...], stride: tuple[int, ...], c_in: int, c_out: int) -> bool:
    """Whether the sub-pixel phases run as one correlation of the widest sub-kernel.

    Phase ``r`` of a stride-``s`` transposed convolution meets the taps
    ``r + s*m``, ``ceil(k/s)`` or fewer per axis: 3x3 stride 2 has 2x2, 2x1,
    1x2 and 1x1 sub-kernels.  Zero-extended to the widest, every phase is one
    correlation (one padding, one stack, one wide matmul, no stack of the
    phases), at the price of the extra products (16 for 9 here).  ``c_in`` and
    ``c_out``: the phases' input and output channels per group (the layer's
    output and input channels).  The products cost in proportion to
    ``c_in * c_out`` per position, the copies saved to ``c_in + c_out``.
    Measured, NumPy, the input gradient of 3x3 stride-2 layers, merged
    against separate, medians of 9: 8x64x56^2 -> 128 0.81, 8x128x56^2 -> 128
    0.84, 8x96x56^2 0.78, 8x32x112^2 0.53, 8x16x28^2 -> 512 0.70 (9.5 to
    64 channels by the measure), but 8x160x14^2 1.07, 8x128x28^2 -> 256
    1.11, 8x256x14^2 -> 512 1.44 (80, 85, 171); 5x5 stride 2 0.60-0.78, the
    7x7 stride-2 stem 0.60, 3x3x3 stride 2 0.49 (2.4 products per tap).
    JAX, jitted, the same way: 0.43-0.78, and 1.92 at 171 channels.
    """
    taps = math.prod(kernel)
    widest = math.prod(-(-k // s) for k, s in zip(kernel, stride))
    channels = c_in * c_out / (c_in + c_out)
    return (
        channels <= MERGE_PHASES_MAX_CHANNELS
        and widest * math.prod(stride) <= MERGE_PHASES_MAX_WASTE * taps
    )


#: The transposed convolution computes every tap's products first (see
#: :func:`col2im_phases`) from this many channels per phase output ...
COL2IM_MIN_CHANNELS = 16
#: ... when its products hold at most this many times the values of the
#: stacks the sub-pixel correlations would build.
COL2IM_SLACK = 1.15


def col2im_phases(
    kernel: tuple[int, ...],
    stride: tuple[int, ...],
    c_in: int,
    c_out: int,
    groups: int,
    stacked_taps: int,
    device: str,
) -> bool:
    """Whether the sub-pixel phases are summed from every tap's products (col2im).

    The phases' correlations (``_transpose``) stack ``stacked_taps`` shifted
    copies of the output gradient's ``c_out`` channels per position (the
    widest sub-kernel's taps once merged, every tap otherwise) and multiply
    by a thin weight.  ``col2im`` instead multiplies the output gradient,
    channels-last, by the whole weight at once, ``c_out`` by ``taps *
    c_in``, in one wide matmul, and sums each phase from its taps'
    products, contiguous slices of their flat grid.  It holds ``taps *
    c_in`` values per position to the stacks' ``stacked_taps * c_out``.
    Channels-last with a handful of channels runs slowly.  NumPy, input
    gradients, col2im against the current form, medians of 9:
    8x128x28^2 -> 256 3x3 stride 2 0.68, 8x256x14^2 -> 512 0.59, 8x64x56^2
    -> 128 0.85, 2x32x56^2 -> 64 0.75, 8x16x28^2 -> 512 0.51 (0.50 to 1.13
    values to the stacks'); but 5x5 stride 2 16x32x32^2 -> 64 1.22 (1.39),
    the 4x4 stride-2 transposed convolution of the suite 1.59 (2.0), the
    7x7 stride-2 stem 2.61 (3 channels).  JAX, jitted: 0.78, 0.88, 0.49 on
    the first, second and fifth; the torch backend 0.55, 0.64 and 0.76 on
    the first, second and fourth.  Groups and GPUs: not measured, not used.
    """
    if groups != 1 or device != "cpu" or c_in < COL2IM_MIN_CHANNELS:
        return False
    return math.prod(kernel) * c_in <= COL2IM_SLACK * stacked_taps * c_out


#: An im2col joins its samples into one matmul (see :func:`batch_gemm`) up to
#: this many output positions per sample.
BATCH_GEMM_MAX_POSITIONS = 1024
#: Its batch tiles may hold this many times a row's ``tile_bytes``.
BATCH_GEMM_CACHE_SHARE = 2


def batch_gemm(g: Geometry, strategy: str, c: dict) -> bool:
    """Whether an im2col of ``g`` (one tile) runs as one channel-major matmul.

    Per sample, im2col is one ``(C_out x C*T) @ (C*T x P)`` product; with
    few positions ``P`` OpenBLAS runs it far below its peak (8 products of
    4608 x 63: 141 GFLOP/s; one of 4608 x 504: 197), and it packs the
    weight again for every sample (see :func:`_weight_packs`).
    Channel-major, the padding's copy puts the channels first, the stacked
    columns are ``(C*T, N*P)`` and one product covers the tile; the windows
    are exact, so no surplus grid columns are computed.  The result is a
    channels-first view of channel-major memory.  NumPy, 3x3 pad 1, new /
    old time (same process, alternating, medians of 13): 8x512x4^2 0.58,
    8x512x7^2 0.68, 16x256x7^2 0.73, 8x128x7^2 0.82, 8x256x14^2 0.89.
    Shallow contractions were once measured to gain nothing (8x32x14^2
    1.01, 64x3x32^2 -> 32 1.09, 8x128x14^2 in 4 groups 1.13), so a depth of
    512 was the floor until 2026-12-07.  Remeasured over the whole batch,
    and with an unpadded input made contiguous first (it had reached the
    stack as a transposed view, whose stacked columns NumPy then copied a
    second time; see ``_core``), channel-major against
    per-sample (NumPy, same process, alternating, medians of 15, one batch
    tile) ran 0.64-0.99 on 33 of 34 layers of 7^2-32^2 maps with depths
    27-2304 (2x2 and 3x3 kernels, 1-32 groups; 8x256x7^2 0.64, 8x128x15^2
    -> 256 2x2 0.82, 64x3x32^2 -> 32 0.90, 2x128x28^2 in 32 groups 0.98)
    and 1.02 on 8x16x28^2 -> 16.  Past about 1024 positions a sample the
    two forms tie (0.91-1.04 on four 40^2-64^2 layers).  Strided layers
    join too: each tap's windows come from the column phases (see
    ``_tap_views``), off the phase grid.  Against the previous plans (NumPy,
    same process, alternating, medians of 11), where the plan changed:
    8x128x28^2 -> 256 3x3 stride 2 0.76, 8x256x14^2 -> 512 0.76, 8x32x32^2
    -> 64 0.76, 16x32x32^2 -> 64 0.75, 8x512x14^2 -> 512 0.83, 8x64x28^2 ->
    128 2x2 stride 2 0.85, 8x64x56^2 -> 128 0.88, 32x1x4000 -> 8 k80
    stride 4 0.98, and 2x16x16^3 -> 32 3^3 stride 2 1.11 (a near-tie with
    im2col_last).  Whether im2col is chosen at all is the cost model's call
    (``_weight_packs`` is what separates the forms there).
    """
    return (
        strategy == "im2col"
        and bool(c["batch_gemm"])
        and g.batch > 1
        and math.prod(g.out_spatial) <= BATCH_GEMM_MAX_POSITIONS
    )


#: ``windows`` is offered up to this many output positions per sample (one
#: array call each).
WINDOWS_MAX_OUTPUTS = 256


def windows_applies(g: Geometry) -> bool:
    """Whether ``windows`` (im2col stacked by output window) is offered for ``g``.

    Only where a sample has fewer output positions than the kernel has taps
    (a valid correlation of two near-equal arrays, a kernel that covers the
    whole input): stacking one slice per window then takes fewer array calls
    than one per tap, and no flat-grid columns beyond the outputs are
    computed.  NumPy, a valid 32^2 x 32^2 correlation (one output): 0.18 ms
    with ``im2col_last`` over the grid's 32 columns.
    """
    per_sample = math.prod(g.out_spatial)
    return g.taps > 1 and per_sample < g.taps and per_sample <= WINDOWS_MAX_OUTPUTS


def phase_grid_applies(g: Geometry, c: dict) -> bool:
    """Whether a strided stacking strategy runs on the phase grid under cost row ``c``.

    Only where the row allows it, with two or more spatial axes (along one
    axis the strided form already reads the phases of a single split, see
    ``_tap_views``), some stride above 1 and every kernel span covering its
    stride: a kernel that skips phases (a 1x1 stride-2 layer reads one in
    four) would copy the phases it never reads.
    """
    return bool(c["phase_grid"]) and g.ndim > 1 and _spans_strides(g)


def splits_column_phases(g: Geometry) -> bool:
    """Whether a stacking strategy off the grids first splits the input into column phases.

    With a strided last axis and more than one tap along it, one copy puts
    each column phase in contiguous runs (``_direct._tap_views``).
    """
    return g.stride[-1] > 1 and g.kernel[-1] > 1


def _spans_strides(g: Geometry) -> bool:
    # strided, and every kernel span covers its stride: the geometric part of
    # the phase grid's condition.  Workspaces count its copies wherever this
    # holds, whatever the cost row (a bound that needs no device).
    spans = g.spans
    return any(s > 1 for s in g.stride) and all(sp >= s for sp, s in zip(spans, g.stride))


def phase_grid_padded(g: Geometry) -> tuple[int, ...]:
    """The padded input's extent once zero-extended to whole phases."""
    return tuple(s * n for s, n in zip(g.stride, phase_grid_shape(g)))


def phase_grid_positions(g: Geometry) -> int:
    """Output positions of the phase grid, every sample (surplus columns included)."""
    return g.batch * g.out_spatial[0] * math.prod(phase_grid_shape(g)[1:])


@functools.lru_cache(maxsize=1024)
def phase_tap_offsets(g: Geometry) -> tuple[tuple[int, int], ...]:
    """``(phase, flat offset)`` of every tap on the phase grid, the last kernel axis fastest.

    Phases are numbered with the last axis fastest, as the split lays them out.
    """
    shape = phase_grid_shape(g)
    found = []
    for tap in itertools.product(*(range(k) for k in g.kernel)):
        phase, offset = 0, 0
        for i, (t, d, s) in enumerate(zip(tap, g.dilation, g.stride)):
            shift, r = divmod(t * d, s)
            phase = phase * s + r
            offset += shift * math.prod(shape[i + 1 :])
        found.append((phase, offset))
    return tuple(found)


def grid_offset(g: Geometry, tap: tuple[int, ...]) -> int:
    """Flat offset of kernel ``tap`` on the padded grid (every stride 1)."""
    sp = g.padded_spatial
    return sum(t * d * math.prod(sp[i + 1 :]) for i, (t, d) in enumerate(zip(tap, g.dilation)))


@functools.lru_cache(maxsize=1024)
def grid_tap_offsets(g: Geometry) -> tuple[int, ...]:
    """:func:`grid_offset` of every tap, the last kernel axis fastest (one lookup per call)."""
    taps = itertools.product(*(range(k) for k in g.kernel))
    return tuple(grid_offset(g, tap) for tap in taps)


def last_tap_offset(g: Geometry) -> int:
    """:func:`grid_offset` of the kernel's last tap: how far the grid's taps reach."""
    return grid_offset(g, tuple(k - 1 for k in g.kernel))


def grid_run(g: Geometry) -> int:
    """Positions of the flat padded grid (all samples) that every tap of stride-1 ``g`` can read."""
    return g.batch * math.prod(g.padded_spatial) - last_tap_offset(g)


def fits_flat_grid(g: Geometry) -> bool:
    """Whether ``g`` can run elementwise on the channel-major flat grid, on any row.

    Every stride 1 and one channel in and out per group (a depthwise layer,
    or a one-channel image or signal).
    """
    return all(s == 1 for s in g.stride) and g.group_in == g.group_out == 1


def flat_elementwise_applies(g: Geometry, c: dict) -> bool:
    """Whether the elementwise strategy of ``g`` runs on the channel-major flat grid.

    Needs :func:`fits_flat_grid`, a cost row with ``flat_chunk``, and runs
    of at least ``flat_run`` positions (see :func:`flat_chunks`).
    """
    if not c.get("flat_chunk") or not fits_flat_grid(g):
        return False
    return flat_chunks(g, c["flat_chunk"])[2] >= c["flat_run"]


@functools.lru_cache(maxsize=1024)
def flat_chunks(g: Geometry, target: int) -> tuple[int, int, int]:
    """``(channels, positions, run)`` of a chunk of the channel-major flat grid.

    Channel-major, the padded samples of one channel lie end to end; with
    every stride 1 the output at flat index ``i`` reads tap ``t`` at ``i +
    grid_offset(t)``, so each tap of a channel is one contiguous slice of
    ``run = N * prod(padded) - grid_offset(last tap)`` positions (those
    past a sample's valid outputs are cut at the end).  A chunk holds about
    ``target`` of the ``C * run`` grid elements: whole runs of several
    channels, or an even part of one channel's run.
    """
    run = grid_run(g)
    if run >= target:
        return 1, -(-run // -(-run // target)), run
    channels = max(1, min(g.in_channels, target // run))
    return -(-g.in_channels // -(-g.in_channels // channels)), run, run


def _flat_elementwise_time(g: Geometry, c: dict, scale: int) -> float:
    """Modelled seconds of the elementwise strategy on the channel-major flat grid.

    One transposing copy pads the input, each tap multiplies and adds every
    grid element (two calls per chunk), and one copy joins the chunks.
    ``flat_elem`` was set by hand to 2.3e-10 s, the middle of the values
    (2.0e-10 to 2.6e-10) that pick best over three sets of
    measurements: the 2026-12-07i evaluation sweep (43 of 50 within 10%
    at 2.3e-10, 41 at the first setting, 2.9e-10), one the same day with
    a ``flat_run`` of 3,072 (44 and 44), and 16 flat-grid problems timed
    in a tight loop (NumPy, the planner's own plans, one process; 11 and
    11 of 16).  The sweeps time each call a whole pass over the shapes
    apart and found the flat form faster on mid-sized images than the
    tight loop did (256^2 3x3: 0.75x against 1.09x ``im2col_last``); near
    ties moved by 20-30% from run to run on this shared host.  Set against
    the rest of the row, not in seconds: the row was fitted on a host that
    ran NumPy about 2x slower.  Several chunks of whole channels take a
    second joining copy, which the model does not price apart.
    """
    channels, positions, run = flat_chunks(g, c["flat_chunk"])
    grid = g.in_channels * run
    chunks = -(-g.in_channels // channels) * -(-run // positions)
    x_padded = g.batch * g.in_channels * math.prod(g.padded_spatial)
    taps = g.taps * (grid * c["flat_elem"] * scale + 2 * chunks * c["call"])
    return taps + (x_padded + grid) * c["copy"] * scale


def dilation_split_geometry(g: Geometry) -> Geometry | None:
    """The undilated problem of ``g``'s dilation phases; None unless ``g`` is dilated, stride 1.

    With stride 1, output ``q * d + r`` reads only input ``(q + t) * d + r``:
    phase ``r`` of the output is the undilated valid correlation of phase
    ``r`` of the padded input.  The ``prod(d)`` phases become samples, so
    the kernel is dense again and the flat grid carries no dilated padding.
    The padded input is zero-extended to whole phases; outputs past the end
    are cut.
    """
    if all(d == 1 for d in g.dilation) or any(s != 1 for s in g.stride):
        return None
    nsp = g.ndim
    return Geometry(
        g.batch * math.prod(g.dilation),
        g.in_channels,
        g.out_channels,
        g.groups,
        tuple(-(-n // d) for n, d in zip(g.padded_spatial, g.dilation)),
        g.kernel,
        (1,) * nsp,
        (1,) * nsp,
        ((0, 0),) * nsp,
    )


def stride_phases_read(g: Geometry) -> tuple[int, ...]:
    """The stride phases ``g``'s kernel reads along each axis: ``min(stride, k)``."""
    return tuple(min(s, k) for s, k in zip(g.stride, g.kernel))


#: Bytes of input and output gradient one chunk of channels of the
#: depthwise weight gradient reads (see :func:`depthwise_weight_grad_reads`).
DEPTHWISE_CHUNK_BYTES = 1 << 20


def depthwise_weight_grad_channels(g: Geometry, itemsize: int) -> int:
    """Output channels per chunk of the stride-1 depthwise weight gradient.

    Each chunk's every tap rereads the chunk's input and output gradient,
    from the cache when the chunk holds about :data:`DEPTHWISE_CHUNK_BYTES`.
    NumPy, medians of 11, chunks of 0.5 / 1 / 2 MiB / every channel:
    8x144x56^2 3x3 10.4 / 8.9 / 11.2 / 14.3 ms, 4x32x128^2 7x7 14.3 / 13.7
    / 21.1 / 33.9, 1-d 8x256x1000 k31 9.1 / 8.3 / 11.8 / 18.0.  ``g`` may
    be a strided layer's phase geometry (its input channels the phases of
    each output channel).
    """
    phases = g.in_channels // g.out_channels
    rows = g.batch * g.out_spatial[0] * math.prod(g.padded_spatial[1:])
    per_channel = (phases + 1) * rows * itemsize
    return max(1, min(g.out_channels, DEPTHWISE_CHUNK_BYTES // max(1, per_channel)))


@functools.lru_cache(maxsize=256)
def depthwise_weight_grad_reads(g: Geometry) -> tuple[tuple[int, int, int] | None, ...]:
    """Per tap (last kernel axis fastest) of stride-1 ``g``: ``(x start, gy start, length)``.

    The input is padded along every spatial axis but the first and
    flattened per sample and channel; the output gradient is zero-extended
    to the same rows and flattened.  The first axis's padding is left out:
    tap ``t`` meets the input only on the output rows ``[h0, h1)``, so it
    is the dot of one contiguous slice of each (whose last row stops at
    the last output).  None for a tap that meets padding only.
    """
    s0, o0 = g.in_spatial[0], g.out_spatial[0]
    lo0, d0 = g.pads[0][0], g.dilation[0]
    inner = math.prod(g.padded_spatial[1:])
    steps = [math.prod(g.padded_spatial[a + 1 :]) for a in range(1, g.ndim)]
    last = sum((o - 1) * st for o, st in zip(g.out_spatial[1:], steps)) + 1
    reads = []
    for tap in itertools.product(*(range(k) for k in g.kernel)):
        h0 = max(0, lo0 - tap[0] * d0)
        h1 = min(o0, s0 + lo0 - tap[0] * d0)
        if h1 <= h0:
            reads.append(None)
            continue
        off = sum(t * d * st for t, d, st in zip(tap[1:], g.dilation[1:], steps))
        start = (h0 + tap[0] * d0 - lo0) * inner + off
        reads.append((start, h0 * inner, (h1 - h0 - 1) * inner + last))
    return tuple(reads)


@functools.lru_cache(maxsize=256)
def depthwise_phase_reads(g: Geometry, phased: Geometry) -> tuple:
    """Per tap of strided depthwise ``g``: ``(phase, read)`` on its phase geometry.

    Tap ``s * m + r`` is sub-kernel tap ``m`` of phase ``r`` (its index in
    the phases the kernel reads, the last axis fastest); ``read`` is that
    sub-tap's :func:`depthwise_weight_grad_reads` on ``phased``.
    """
    phases = stride_phases_read(g)
    reads = depthwise_weight_grad_reads(phased)
    out = []
    for tap in itertools.product(*(range(k) for k in g.kernel)):
        m = tuple(t // s for t, s in zip(tap, g.stride))
        r = tuple(t % s for t, s in zip(tap, g.stride))
        phase = sum(ri * math.prod(phases[i + 1 :]) for i, ri in enumerate(r))
        sub = sum(mi * math.prod(phased.kernel[i + 1 :]) for i, mi in enumerate(m))
        out.append((phase, reads[sub]))
    return tuple(out)


def weight_grad_phase_geometry(g: Geometry) -> Geometry | None:
    """The stride-1 weight gradient that ``g``'s stride phases pose; None unless strided.

    With stride ``s`` (dilation 1) along an axis, tap ``t = s * m + r``
    reads input ``s * (o + m) + r``: phase ``r`` of the padded input at
    ``o + m``.  The first ``min(s, k)`` phases become channels (within
    each group, ``(*phases, C_in/G)``) and the kernel ``ceil(k / s)``
    taps; each phase is zero-extended or cut to ``out + ceil(k / s) - 1``
    positions, the padding already applied.  Pairs ``(m, r)`` with
    ``s * m + r >= k`` are not taps of ``g``.  Stride-1 axes keep their
    length, padding and dilation.  None where no axis is strided or one is
    both strided and dilated.
    """
    strided = [s > 1 for s in g.stride]
    if not any(strided) or any(s and d > 1 for s, d in zip(strided, g.dilation)):
        return None
    nsp = g.ndim
    phases = stride_phases_read(g)
    sub = tuple(-(-k // s) for k, s in zip(g.kernel, g.stride))
    lengths = tuple(
        o + k - 1 if s else n for o, k, s, n in zip(g.out_spatial, sub, strided, g.in_spatial)
    )
    return Geometry(
        g.batch,
        g.in_channels * math.prod(phases),
        g.out_channels,
        g.groups,
        lengths,
        sub,
        (1,) * nsp,
        g.dilation,
        tuple((0, 0) if s else p for s, p in zip(strided, g.pads)),
    )


def _dilation_split(plan: Plan, inner: Plan, device: str, itemsize: int, budget: int) -> Plan:
    """``plan``, or the plan of its dilation phases where that models cheaper and fits."""
    g, c = plan.geometry, _COSTS[device]
    padded = inner.geometry.batch * g.in_channels * math.prod(inner.geometry.in_spatial)
    out = g.out_positions * g.out_channels
    # the phase split copies the padded input, the interleave the output
    cost = inner.cost + (padded + out) * c["copy"] + 6 * c["call"]
    ws = inner.workspace_bytes + 2 * padded * itemsize + out * itemsize
    if cost >= plan.cost or ws > budget:
        return plan
    return dataclasses.replace(
        plan,
        strategy=inner.strategy,
        fft_shape=None,
        batch_tile=g.batch,
        workspace_bytes=ws,
        cost=cost,
        block=None,
        fft_contiguous=False,
        row_tile=None,
        phase_grid=False,
        fft_wrap=False,
        inner=inner,
    )


def band_axis(g: Geometry, dtype: DtypeInfo) -> int | None:
    """The spatial axis to exchange with the last for a banded matmul, or None.

    The banded matmul (``toeplitz``) bands the last kernel axis only, so a
    kernel longer along another axis -- a column filter ``(k, 1)``, one pass
    of a separable filter -- would fall back to a slower strategy.  After
    exchanging that axis with the last (a transposing copy of the input; the
    output comes back as a transposed view) the band runs along it.  NumPy,
    300^2 image, 51x1 kernel, ``same``: 1.25 ms elementwise, 0.39 ms for the
    1x51 kernel on the same image as a banded matmul.  The axis must have
    stride 1 and a longer span than the last; single-channel groups only.
    """
    if g.ndim < 2 or g.group_in != 1 or g.group_out != 1 or dtype.kind == "int":
        return None
    spans = g.spans
    axes = [i for i in range(g.ndim - 1) if g.stride[i] == 1 and spans[i] > spans[-1]]
    return max(axes, key=lambda i: spans[i]) if axes else None


def swap_axes_geometry(g: Geometry, axis: int) -> Geometry:
    """``g`` with spatial ``axis`` and the last exchanged."""

    def swap(t: tuple) -> tuple:
        t = list(t)
        t[axis], t[-1] = t[-1], t[axis]
        return tuple(t)

    return dataclasses.replace(
        g,
        in_spatial=swap(g.in_spatial),
        kernel=swap(g.kernel),
        stride=swap(g.stride),
        dilation=swap(g.dilation),
        pads=swap(g.pads),
    )


def _swapped(plan: Plan, inner: Plan, axis: int, device: str, itemsize: int, budget: int) -> Plan:
    """``plan``, or ``inner`` (axes exchanged) where that models cheaper and fits."""
    g, c = plan.geometry, _COSTS[device]
    x_elems = g.batch * g.in_channels * math.prod(g.in_spatial)
    cost = inner.cost + x_elems * c["copy"] + 2 * c["call"]
    ws = inner.workspace_bytes + x_elems * itemsize
    if cost >= plan.cost or ws > budget:
        return plan
    return dataclasses.replace(
        inner, geometry=g, workspace_bytes=ws, cost=cost, swapped=inner, swap_axis=axis
    )


def row_tile_geometry(g: Geometry, rows: int) -> Geometry:
    """The geometry of ``rows`` outputs along the first spatial axis.

    Its input is the slice of ``g``'s input, already padded along that axis,
    that those outputs read: ``(rows - 1) * stride + span`` rows, no padding.
    """
    span = g.spans[0]
    return dataclasses.replace(
        g,
        in_spatial=((rows - 1) * g.stride[0] + span,) + g.in_spatial[1:],
        pads=((0, 0),) + g.pads[1:],
    )


# Tiles for speed keep a stacked operand near the cache, but joining them
# copies the output once more: on NumPy-like rows (which count the whole
# workspace against the cache) they are made only where the whole stack
# outweighs the output by this factor.  NumPy, medians of 13-21, whole
# against tiled: 64x3x32^2->32 3x3 (stack 0.9x the output) 2.0 against
# 2.95 ms, 1x3x512^2->8 3x3 (1.2x) 5.0 against 5.9 and, on another host,
# 10.8 against 11.8; tiles won at 1.5x (1x2x700^2->4, 9.0 against 7.0),
# 2.3x (the stem, 30 against 20), 3x (1x1x1024^2, 6.9 against 5.1) and
# 3.2x (the 64^3 volume, 55 against 44).
_TILE_STACK_OVER_OUTPUT = 1.25


def _stack_outweighs_output(g: Geometry, strategy: str, itemsize: int, c: dict) -> bool:
    """Whether tiles for speed may pay on row ``c`` (see ``_TILE_STACK_OVER_OUTPUT``)."""
    if c["tile_stack_only"]:
        return True
    out = g.out_positions * g.out_channels * itemsize
    return _stack_bytes(g, strategy, itemsize) > _TILE_STACK_OVER_OUTPUT * out


def _row_tile(
    g: Geometry, strategy: str, itemsize: int, c: dict, max_tiles: int | None, block=None
) -> int | None:
    """Outputs along the first spatial axis per tile that keep one sample near ``cache``.

    Only for the stacking matmul forms, and only when one whole sample needs
    over twice ``cache``.  The banded matmul of a 1-d line (``block``
    outputs a frame) tiles on rows with ``cache = c["banded_rows"]``
    instead, in equal tiles of whole frames, where the frames outgrow
    ``cache``: they are ``width / hop`` times the line, joined from that
    many slices, and past some 64 MB of workspace each value cost three
    times as much (NumPy, 4M samples by
    257 taps, frames of 64: 39 ms for 84 MB of frames, against 3 ms for a
    quarter of them).  NumPy, medians of 9, whole against tiles of 128k /
    256k / 512k / 1M outputs: 4M x 257 60.7 against 34.8 / 33.4 / 31.9 /
    30.1 ms, 3M x 257 43.0 against 24.3 / 23.6 / 22.0 / 21.2, 4M x 65
    30.8 against 20.1 / 19.9 / 17.3 / 17.3, but 2M x 257 15.4 against
    16.1 / 15.6 / 14.4 / 14.9 and 1M x 257 6.8 against 7.7 / 7.8 / 7.2:
    tiles of 8 MiB (the stacking forms' cache) lost there, and tiles of
    workspace lost where the frames were short: 2M x 3 (frames 1.1x the
    line) 4.0 against 5.8 ms.  Unequal tiles lost too: 4M x 257 in tiles
    of 931,840 outputs (the last half as long) 42.4 ms, in five equal ones
    28.8.  NumPy, im2col_last with 3x3 kernels, medians of
    21 calls 10 ms apart, whole against tiled: 1x1x1024^2 (24 MB) 6.9
    against 5.1 ms, 1x2x700^2->4 (30 MB) 9.0 against 7.0, 1x1x900^2 (19
    MB) 3.5 against 3.5, 1x3x512^2->8 (28 MB) 10.8 against 11.8 (31 calls; the one
    loss); 1x8x256^2->8 (12 MB, under the bar) 2.6 against 2.8; the 64^3
    volume (51 MB) 55 against 44.  The 7x7 stride-2 stem's sample (8.3 MB)
    stays whole: in two tiles it ran 34.5 against 31.0 ms.
    It measures the whole workspace on every cost row ``c``.  ``max_tiles``:
    at most this many tiles (None: any number).  None means no row tiles.
    """
    cache = c["tile_bytes"]
    if g.batch != 1 or not cache:
        return None
    if strategy == "toeplitz":
        if g.ndim != 1 or not c["banded_rows"]:
            return None
        # (never under XLA, whose row has none: ``max_tiles`` does not apply)
        if _frames_bytes(g, itemsize, block) <= c["banded_rows"] or g.out_spatial[0] < 2 * block:
            return None
        tiles = -(-_workspace(g, strategy, itemsize, None, block) // c["banded_rows"])
        # equal tiles of whole frames: unequal ones reuse freed memory worse
        per_tile = -(-g.out_spatial[0] // tiles)
        rows = -(-per_tile // block) * block
        return rows if rows < g.out_spatial[0] else None
    elif strategy not in ("im2col_last", "im2col") or g.ndim < 2:
        return None
    elif not _stack_outweighs_output(g, strategy, itemsize, c):
        return None
    out0 = g.out_spatial[0]
    if out0 < 2 or _workspace(g, strategy, itemsize, None, block) <= 2 * cache:
        return None
    rows = _largest(
        out0,
        lambda r: _workspace(row_tile_geometry(g, r), strategy, itemsize, None, block) <= cache,
    )
    if max_tiles is not None:
        rows = max(rows, -(-out0 // max(1, max_tiles)))
    return rows if rows < out0 else None


def _max_tiles(g: Geometry, strategy: str, unroll_limited: bool) -> int | None:
    """How many tiles ``strategy`` may run in for speed (None: no limit).

    JAX traces every tile anew, so all tiles together stay within the
    unrolled-operation limit that keeps its compile time short.
    """
    if not unroll_limited:
        return None
    return max(1, _MAX_TILED_OPS_JAX // max(1, unrolled_ops(g, strategy)))


def _largest(n: int, fits) -> int:
    """The largest ``t`` in ``1..n`` with ``fits(t)`` (1 when none; ``fits`` is monotone)."""
    lo, hi = 1, n
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if fits(mid):
            lo = mid
        else:
            hi = mid - 1
    return lo


def _builds_operand(g: Geometry, strategy: str, c: dict) -> bool:
    """Whether ``strategy`` copies its matmul operands (so tiles keep them in cache).

    Shift on the stride-1 grid reads every tap as a view of the padded
    input, unless the row copies the slices that feed a product (XLA):
    NumPy tiles then only add a join.  1x1 16x64x56^2->64 ran 2.5 ms whole
    against 8-11 ms in the 2-sample tiles the cache rule gave it, and
    3x3 8x64x56^2 shift 17.7 against 19.0 ms.
    """
    if strategy == "shift" and all(s == 1 for s in g.stride):
        return bool(c["copies_slices"])
    return strategy in _STACKING + ("winograd",)


def _batch_tile(
    g: Geometry,
    strategy: str,
    itemsize: int,
    fft_shape,
    block,
    budget: int,
    device: str,
    max_tiles: int | None = None,
) -> tuple[int, int]:
    """Samples per tile and the peak workspace of running ``strategy`` in such tiles.

    The executor pads, computes and frees one batch tile at a time, then joins
    the tiles' outputs.  Tiles are made for two reasons: to fit the budget,
    and (rows with ``tile_bytes``) to keep a direct strategy's stacks and
    padded copy near the cache instead of streaming them through memory;
    ``max_tiles`` bounds the number of the latter.
    """
    whole = _workspace(g, strategy, itemsize, fft_shape, block)
    if g.batch <= 1:
        return g.batch, whole
    out = g.out_positions * g.out_channels * itemsize

    def tiled(t: int) -> int:
        part = dataclasses.replace(g, batch=t)
        return _workspace(part, strategy, itemsize, fft_shape, block) + 2 * out

    def held(t: int) -> int:  # what one tile of t samples keeps near the cache
        part = dataclasses.replace(g, batch=t)
        if _COSTS[device]["tile_stack_only"]:
            return _stack_bytes(part, strategy, itemsize)
        return _workspace(part, strategy, itemsize, fft_shape, block)

    tile = g.batch
    c = _COSTS[device]
    cache = c["tile_bytes"]
    if batch_gemm(g, strategy, c):
        # its one product wants wide operands: NumPy, channel-major im2col of
        # every sample against tiles held to 8 MiB, 8x32x28^2 -> 128 3x3
        # (14 MiB) 0.85, the 4x4 stride-2 8x64x28^2 -> 32 transposed layer
        # (15 MiB) 0.89, but 32x64x28^2 -> 64 (80 MiB) 1.64
        cache *= BATCH_GEMM_CACHE_SHARE
    if (
        cache
        and _builds_operand(g, strategy, c)
        and held(g.batch) > cache
        and _stack_outweighs_output(g, strategy, itemsize, c)
    ):
        # not FFT (it would transform the kernel once per tile), nor the
        # banded and elementwise forms, whose products span the whole batch
        tile = _largest(g.batch, lambda t: held(t) <= cache)
        if max_tiles is not None:
            tile = max(tile, -(-g.batch // max_tiles))
        tile = -(-g.batch // -(-g.batch // tile))  # as many tiles, of even sizes
    if whole > budget or (tile < g.batch and tiled(tile) > budget):
        tile = min(tile, _largest(g.batch, lambda t: tiled(t) <= budget))
    return tile, (whole if tile >= g.batch else tiled(tile))


#: Kernel lengths per axis of Winograd F(2, r) (``_winograd.WINOGRAD_POINTS``).
WINOGRAD_KERNELS = (2, 3, 4, 5)


def _tile_geometry(g: Geometry, tile: int, rows: int | None) -> Geometry:
    """The problem one tile of a plan computes."""
    part = dataclasses.replace(g, batch=min(tile, g.batch))
    return part if rows is None else row_tile_geometry(part, rows)


def orders_taps(g: Geometry, strategy: str, itemsize: int, device: str) -> bool:
    """Whether each tap's product of a tile ``g`` waits for the sum so far.

    Only on rows that order their work (``orders_work``: XLA), for matrix
    products (more than one channel in and out per group: XLA fuses
    one-channel products into one loop, which an order would split; 1-d
    256k x 33 under ``jax.jit``: 0.78 ms fused, 1.43 ordered), and only where
    the products together pass the row's ``tile_bytes``: smaller ones gain
    from XLA running two products side by side (a grouped 2x64x32^2 3x3
    layer: 2.6 ms side by side, 3.05 ordered).
    """
    c = _COSTS[device]
    if not c["orders_work"] or strategy not in ("shift", "im2col_last"):
        return False
    if g.group_in < 2 or g.group_out < 2:
        return False
    products = g.taps if strategy == "shift" else g.taps // g.kernel[-1]
    return products * g.batch * g.out_channels * g.out_positions * itemsize > c["tile_bytes"]


#: Grid positions below which a chunk of the weight gradient contracts too
#: little for its matmul to pay (BLAS slows down on short contractions).
MIN_WEIGHT_GRAD_CHUNK = 256
# Operations the weight gradient's chunks may trace under JAX.  Each chunk
# adds about 0.13 s of compilation: the 8x64x56^2 3x3 layer's gradient in
# 4 / 8 / 12 / 16 / 23 chunks compiled and ran once in 0.7 / 1.4 / 1.7 /
# 2.2 / 3.1 s and then took 36 / 20 / 17 / 22 / 20 ms (one product per tap:
# 0.3 s, 50 ms).
_WEIGHT_GRAD_OPS_JAX = 128


class WeightGradPlan(NamedTuple):
    """How ``_direct.weight_grad_grid`` runs (see :func:`plan_weight_grad`)."""

    chunk: int | None  # grid positions contracted at a time (None: one product per tap)
    in_order: bool  # each chunk's stack is read after the sum so far (XLA)
    last_axis_stack: bool  # a chunk stacks the last kernel axis's taps only
    dots: bool = False  # one channel in and out per group: each tap one vecdot
    channels: int = 0  # dots: channels per chunk (0: all at once)


#: A chunk stacks only the last kernel axis's taps where the other axes'
#: taps (its heads) widen it by at most this share of its positions ...
MAX_HEAD_SPAN_SHARE = 0.25
#: ... and that stack has at least this many rows (``k_last * C_in/G``):
#: NumPy, 8xCx64^2 -> 16 3x3 against every tap stacked, C = 3 / 4 / 8 /
#: 12 / 16: 1.24 / 1.20 / 1.02 / 0.99 / 0.86 (its products get thin).
MIN_LAST_AXIS_STACK_ROWS = 32


#: A one-tap weight gradient multiplies sample by sample (see
#: :func:`pointwise_weight_grad`) from this many output positions a sample.
POINTWISE_MIN_POSITIONS = 128


def pointwise_weight_grad(g: Geometry, integer: bool, unroll_limited: bool) -> bool:
    """Whether the weight gradient of ``g`` is one batched matmul per sample (1x1 layers).

    For one tap and no padding, each sample's ``(C_out/G, O) @ (O, C_in/G)``
    product over its (strided) positions, summed over the samples, needs no
    channel-major copies; but its contraction is one sample's positions, and
    short ones run below the matmul's speed.  NumPy, against the one-tap
    grid, medians of 11: 8x24x56^2 -> 144 0.36, 8x144x28^2 -> 32 0.53,
    8x64x28^2 g4 0.37, 1-d 8x256x1000 0.61, 8x576x14^2 -> 96 0.71 (196
    positions); stride 2 8x64x56^2 0.74, 8x128x28^2 0.94 (196), but
    8x256x14^2 -> 512 1.23 (49).  The torch backend: 0.56, 0.61, 0.69 on
    the first, the 1-d and 8x64x56^2.  Not for integers (exact per-tap
    sums), nor under XLA (``unroll_limited``), where jitted JAX ran 0.39,
    1.21, 1.09 on those three.
    """
    return (
        not integer
        and not unroll_limited
        and g.taps == 1
        and not any(lo or hi for lo, hi in g.pads)
        and math.prod(g.out_spatial) >= POINTWISE_MIN_POSITIONS
    )


@functools.lru_cache(maxsize=1024)
def plan_weight_grad(
    g: Geometry, itemsize: int, device: str, unroll_limited: bool, real: bool = True
) -> WeightGradPlan:
    """How to run the stride-1 weight gradient (``_direct.weight_grad_grid``).

    ``device`` is the device kind (``cpu``/``gpu``).  A chunk stacks the
    taps' slices of the flat input grid and contracts them with the same
    positions of the output gradient, the chunks' products summed.  Chunks
    hold a quarter of the cost row's ``tile_bytes`` each, so the stack stays
    near the cache; under ``jax.jit`` (``unroll_limited``) they are fewer,
    as each is traced into the program.  ``chunk`` None keeps one long
    product per tap: on rows that do not tile (GPU), or where a chunk of
    :data:`MIN_WEIGHT_GRAD_CHUNK` positions would pass ``tile_bytes``.
    ``in_order``: the row orders its work (XLA), so each chunk waits for
    the sum so far.

    ``last_axis_stack`` (eager libraries, kernels of two or more axes): a
    chunk stacks only the last kernel axis's taps, over its positions and
    the span of the other axes' offsets, and each tap of the other axes
    reads its window of that stack: a third of the copying for 3x3
    kernels, in chunks three times as long.  Used where the last kernel
    axis has two or more taps, the stack has
    :data:`MIN_LAST_AXIS_STACK_ROWS` rows and the span adds at most
    :data:`MAX_HEAD_SPAN_SHARE` to a chunk (not on 3-d volumes, whose span
    is two planes).  NumPy, same process, medians of 21 calls, against
    every tap stacked: 8x64x56^2 -> 64 3x3 0.86, 8x128x28^2 -> 128 0.95,
    8x256x14^2 -> 256 0.90, 8x32x32^2 -> 64 5x5 0.87 (see CHANGELOG).

    ``dots`` (eager libraries, ``real`` dtypes, one channel in and out per
    group: depthwise): each tap is one ``vecdot`` of its slice with the
    output gradient over every position, instead of stacked slices
    contracted by per-channel matrix-vector products.  NumPy, same
    process, medians of 9: 8x256x28^2 3x3 0.71, 8x144x56^2 0.71,
    8x576x14^2 0.60, 4x32x128^2 7x7 0.76, 1-d 8x256x1000 k31 0.65; with a
    channel multiplier of 2 it ran 1.09, so only one channel out.  Those
    dots run per sample and channel, in chunks of channels, without the
    grids' transposing copies (:func:`depthwise_weight_grad_reads`).
    """
    c = _COSTS[cost_table(device, unroll_limited)]
    in_order = bool(c["orders_work"])
    cache = c["tile_bytes"]
    rows = grid_run(g)
    if not cache or rows <= 0:
        return WeightGradPlan(None, in_order, False)
    chunk = _weight_grad_chunk(g, itemsize, rows, cache, g.taps, unroll_limited)
    if chunk is None:
        return WeightGradPlan(None, in_order, False)
    if real and not unroll_limited and g.group_in == 1 and g.group_out == 1:
        return WeightGradPlan(
            chunk, in_order, False, True, depthwise_weight_grad_channels(g, itemsize)
        )
    span = head_span(g)
    rows_last = g.kernel[-1] * g.group_in
    stacks = g.ndim > 1 and g.kernel[-1] > 1 and rows_last >= MIN_LAST_AXIS_STACK_ROWS
    if stacks and not unroll_limited:
        longer = _weight_grad_chunk(g, itemsize, rows, cache, g.kernel[-1], unroll_limited)
        if longer is not None and span <= MAX_HEAD_SPAN_SHARE * longer:
            return WeightGradPlan(longer, in_order, True)
    return WeightGradPlan(chunk, in_order, False)


def plan_weight_grad_phases(
    g: Geometry, itemsize: int, device: str, unroll_limited: bool, real: bool = True
) -> tuple[Geometry, WeightGradPlan] | None:
    """The stride-phase route of a strided weight gradient, or None for one product per tap.

    ``(weight_grad_phase_geometry(g), plan)`` where the phases apply and
    the row contracts in chunks: eager libraries on the CPU
    (``_direct.weight_grad_phases``).  Each chunk stacks exactly ``g``'s
    taps, each a block of the phases' rows at one grid offset, in chunks
    of :func:`plan_weight_grad`'s size for ``g``'s taps; where every
    ``(m, r)`` pair is a tap (``s`` divides ``k``, or ``s >= k``) and the
    phases' own problem stacks its last kernel axis only, that plan runs
    instead.  Not under XLA, which fuses each tap's strided slice into its
    product (``jax.jit``, the phases with the sub-kernel whole against one
    product per tap: the 7x7 stride-2 stem 1.09, 5x5 stride 2 2.83, 4x4
    stride 2 2.10), nor on the unmeasured GPU row, nor for one tap (a
    strided slice is all it reads).  NumPy, against one contraction per
    tap (``_direct.weight_grad_taps``), same process, alternating, medians
    of 11: the 7x7 stride-2 stem 8x3x224^2 -> 64 0.29, 16x16 stride 16
    0.36, 4x4x4 stride 2 0.64, 4x4 stride 2 0.65, 5x5 stride 2 0.74, 3x3
    stride 2 0.86 / 0.99 / 0.97 (8x64x56^2 -> 128, 8x128x28^2 -> 256,
    8x256x14^2 -> 512), 1-d 9 taps stride 4 0.87; near-ties 0.93-1.05
    (grouped, 2x2 stride 2, stride (2, 1)).  Depthwise: ``dots`` as in
    :func:`plan_weight_grad` (3x3 stride 2 8x128x56^2: 0.83 against the
    stacked chunks).
    """
    phased = weight_grad_phase_geometry(g)
    if phased is None or unroll_limited or g.taps == 1:
        return None
    if phased.taps * math.prod(stride_phases_read(g)) == g.taps:
        own = plan_weight_grad(phased, itemsize, device, unroll_limited, real)
        if own.last_axis_stack:  # no tap to drop: the phases' own problem
            return phased, own
    c = _COSTS[cost_table(device, unroll_limited)]
    cache = c["tile_bytes"]
    rows = grid_run(phased)
    chunk = _weight_grad_chunk(g, itemsize, rows, cache, g.taps, unroll_limited) if cache else None
    if chunk is None:
        return None
    dots = real and g.group_in == 1 and g.group_out == 1  # as in plan_weight_grad
    channels = depthwise_weight_grad_channels(phased, itemsize) if dots else 0
    return phased, WeightGradPlan(chunk, bool(c["orders_work"]), False, dots, channels)


def _weight_grad_chunk(
    g: Geometry, itemsize: int, rows: int, cache: int, stacked: int, unroll_limited: bool
) -> int | None:
    """Positions per chunk whose stack of ``stacked`` taps holds a quarter of ``cache``."""
    per_position = g.in_channels * stacked * itemsize
    chunks = -(-rows * per_position // (cache // 4))
    if unroll_limited:  # each chunk traces taps + 2 operations
        chunks = min(chunks, max(1, _WEIGHT_GRAD_OPS_JAX // (g.taps + 2)))
    chunk = max(-(-rows // chunks), min(rows, MIN_WEIGHT_GRAD_CHUNK))
    return None if chunk * per_position > cache else chunk


def head_span(g: Geometry) -> int:
    """Grid offset of the last tap of the kernel axes before the last (its heads)."""
    return grid_offset(g, tuple(k - 1 for k in g.kernel[:-1]) + (0,))


def winograd_tiles(g: Geometry) -> tuple[int, ...]:
    """Winograd's 2x2 output tiles along each spatial axis."""
    return tuple(-(-o // 2) for o in g.out_spatial)


def winograd_applies(g: Geometry, dtype: DtypeInfo, c: dict) -> bool:
    """Whether the Winograd strategy can run ``g`` under cost row ``c``.

    A fast algorithm like the FFT (only ``method="auto"`` may choose it):
    real floating dtypes, 2-d, dilation 1, no groups.  Stride 1 with a 3x3
    kernel on every row; where the row fuses elementwise chains
    (``fuses_taps``: XLA) any kernel of 2 to 5 taps per axis, and strided
    layers whose stride phases, as channels (:func:`winograd_geometry`),
    give such a kernel, at least 16 channels and 1.5x fewer multiply-adds
    than the direct method (4x4 and 5x5 stride 2, not 3x3 stride 2, whose
    2x2 sub-kernel over four phases saves nothing).  Under ``jax.jit`` the
    7x7 stride-2 stem (12 phase channels) ran 110 against 90 ms this way,
    4x32x64^2 4x4 stride 2 6.8 against 11.6 ms.  Only 3x3 was measured on
    NumPy, and it never won there.  Winograd splits no sample into row
    tiles, so on rows that tile (``tile_bytes``) one sample's transformed
    input must fit a tile: under ``jax.jit`` 1x3x512^2->8 3x3 (a 12.6 MB
    stack) ran 19.1 ms against 3.6 for ``im2col_last`` and 9.6 for lax's
    layer, and a 1000^2 image with a 2x2 kernel (9 MB) 4.6x its fastest
    strategy; no shape of the sweeps where Winograd was fastest had over
    0.8 MB.
    """
    if g.ndim != 2 or g.groups != 1 or g.dilation != (1, 1) or dtype.kind != "real":
        return False
    if dtype.itemsize < 4 and max(winograd_geometry(g).kernel) > 3:
        return False  # the points +-2 (4 or 5 taps) would cost a 16-bit float its precision
    one = dataclasses.replace(g, batch=1)
    if c["tile_bytes"] and _stack_bytes(one, "winograd", dtype.itemsize) > c["tile_bytes"]:
        return False
    if g.stride == (1, 1):
        shape_ok = g.kernel == (3, 3) or bool(c["fuses_taps"])
        return shape_ok and all(k in WINOGRAD_KERNELS for k in g.kernel)
    wg = winograd_geometry(g)
    saving = math.prod(g.kernel) * 4 / (winograd_values(wg) * math.prod(g.stride))
    return (
        bool(c["fuses_taps"])
        and all(k in WINOGRAD_KERNELS for k in wg.kernel)
        and wg.in_channels >= 16
        and saving >= 1.5
    )


@functools.lru_cache(maxsize=1024)
def winograd_geometry(g: Geometry) -> Geometry:
    """The stride-1 problem Winograd runs for ``g``: ``g``, or its stride phases as channels.

    A strided layer is a stride-1 correlation of the input's ``prod(stride)``
    phases stacked along the channels (channel-major, then phase), with the
    kernel zero-padded to whole phases and split the same way: a sub-kernel
    of ``ceil(k / s)`` taps, over ``out + ceil(k / s) - 1`` phase rows.
    """
    if all(s == 1 for s in g.stride):
        return g
    sub = tuple(-(-k // s) for k, s in zip(g.kernel, g.stride))
    ones = (1,) * g.ndim
    return Geometry(
        g.batch,
        g.in_channels * math.prod(g.stride),
        g.out_channels,
        1,
        tuple(o + q - 1 for o, q in zip(g.out_spatial, sub)),
        sub,
        ones,
        ones,
        ((0, 0),) * g.ndim,
    )


def winograd_input(g: Geometry) -> tuple[int, ...]:
    """Extent of the padded input Winograd reads: whole tiles (of the stride phases)."""
    wg = winograd_geometry(g)
    tiles = winograd_tiles(g)
    return tuple((2 * t + k - 1) * s for t, k, s in zip(tiles, wg.kernel, g.stride))


def _winograd_positions(g: Geometry) -> int:
    """Transformed values per channel over the whole batch: per tile, times tiles."""
    return winograd_values(winograd_geometry(g)) * g.batch * math.prod(winograd_tiles(g))


def winograd_values(g: Geometry) -> int:
    """Transformed input values per tile of Winograd: ``prod(kernel + 1)`` (stride 1)."""
    return math.prod(k + 1 for k in g.kernel)


def _fft_exact_for_ints(g: Geometry, dtype: DtypeInfo, float_eps: float) -> bool:
    """Whether rounding a float FFT result recovers the exact integer result.

    The worst-case error of an FFT convolution is bounded by roughly
    ``eps * log2(n) * sum |x| * |w|``; with dtype bounds on |x| and |w| this is
    a static bound, and rounding is exact when it stays below one half.
    """
    if dtype.kind != "int" or dtype.int_bound == 0:
        return False
    terms = g.taps * g.group_in
    worst_sum = float(dtype.int_bound) ** 2 * terms
    pts = math.prod(fast_len(n) for n in g.padded_spatial)
    bound = 8 * float_eps * max(math.log2(max(pts, 2)), 1.0) * worst_sum
    return bound < 0.25 and worst_sum < 2**50


def _check_integer_range(g: Geometry, dtype: DtypeInfo, func: str) -> None:
    """Refuse integer problems whose widened accumulator could overflow.

    Integer inputs narrower than the accumulator (the default integer dtype)
    are promised exact results; when the dtype range times the number of
    terms could exceed the accumulator (JAX with x64 off accumulates in
    int32), the result could wrap silently, so it is an error instead.
    Inputs already as wide as the accumulator follow the library's own
    integer arithmetic, as ``xp.sum`` does.
    """
    if dtype.kind != "int":
        return
    acc_max = 2 ** (8 * dtype.itemsize - 1) - 1
    terms = g.taps * g.group_in
    if dtype.int_bound < acc_max and dtype.int_bound**2 * terms > acc_max:
        raise TypeError(
            f"{func}: integer inputs with values up to {dtype.int_bound} over {terms} "
            f"terms can exceed the {8 * dtype.itemsize}-bit default integer dtype the "
            f"result is computed in, which would wrap silently; use a wider integer "
            f"dtype (JAX: enable x64) or floating-point inputs"
        )


def unrolled_ops(g: Geometry, strategy: str) -> int:
    """Roughly how many operations ``strategy`` traces into a JAX program."""
    return {
        "elementwise": g.taps * g.group_in,
        "shift": g.taps,
        "im2col_last": g.taps // g.kernel[-1] + g.taps,
        "im2col": g.taps,
        "fft": 1,
        "fft_blocks": 1,
        "toeplitz": g.taps // g.kernel[-1],
        "winograd": 2 * winograd_values(winograd_geometry(g)) + 8,
        "windows": math.prod(g.out_spatial) + 2,
    }[strategy]


def cost_table(device: str, unroll_limited: bool) -> str:
    """Which row of the cost model applies: ``cpu``, ``cpu-xla`` (JAX) or ``gpu``."""
    if device == "gpu":
        return "gpu"
    return "cpu-xla" if unroll_limited else "cpu"


@functools.lru_cache(maxsize=4096)
def plan_correlation(
    g: Geometry,
    method: str,
    dtype: DtypeInfo,
    device: str,
    fft_available: bool,
    unroll_limited: bool,
    budget: int,
    func: str,
    float_eps: float = 2.0**-52,
    only: str | None = None,
    zero_pads: bool = False,
) -> Plan:
    """Choose the strategy for ``g``: cheapest modelled cost within ``budget``.

    ``method`` is ``"direct"``, ``"fft"`` or ``"auto"``.  Raises
    ``MemoryError`` when no admissible strategy fits the budget and
    ``ValueError`` when ``method="fft"`` cannot be honoured.  ``only`` (for
    tests and the strategy sweep) keeps that one strategy, with the blocks and
    tiles the planner would give it, and raises ``LookupError`` when it is not
    admissible for ``g``.  ``zero_pads``: the padding is zeros, so an FFT
    may take it from its grid's wrap-around (:func:`fft_grid`).
    """
    itemsize = dtype.itemsize
    _check_integer_range(g, dtype, func)
    device_kind = device
    device = cost_table(device, unroll_limited)
    out_bytes = g.out_positions * g.out_channels * itemsize
    strided = any(s > 1 for s in g.stride)
    candidates: list[str] = []
    if method in ("direct", "auto"):
        if g.group_in == 1:
            candidates.append("elementwise")
        if dtype.kind != "int":
            # integer matmul is missing on some devices (torch CUDA); integer
            # inputs use the exact broadcast multiply-accumulate instead.
            # Forms that coincide are offered once: with one tap all three
            # are one matmul, with a 1-wide last kernel axis im2col_last is
            # shift, and with a kernel along the last axis only it is im2col.
            candidates.append("shift")
            if 1 < g.kernel[-1] < g.taps:
                candidates.append("im2col_last")
            if g.taps > 1:
                candidates.append("im2col")
            if windows_applies(g):
                candidates.append("windows")
        elif g.group_in > 1:
            candidates.append("elementwise")
    fft_ok = fft_available and (dtype.kind != "int" or _fft_exact_for_ints(g, dtype, float_eps))
    if method == "fft":
        if not fft_available:
            raise ValueError(
                f"{func}: method='fft' needs the array library's fft extension, "
                "which this namespace lacks; use method='direct' or 'auto'"
            )
        if dtype.kind == "int" and not fft_ok:
            raise ValueError(
                f"{func}: method='fft' cannot give exact results for these integer "
                "inputs (their dtype range times the kernel size exceeds what a "
                "floating-point FFT rounds exactly); use method='direct'"
            )
        candidates.append("fft")
    elif method == "auto" and fft_ok and not (strided and dtype.kind == "int"):
        candidates.append("fft")
    wrap = zero_pads and fft_wrap_applies(g)
    fft_shape = fft_grid(g, wrap)
    block_length = _block_length(g, dtype, device, fft_shape[0]) if "fft" in candidates else None
    if block_length is not None:
        candidates.append("fft_blocks")
    if method == "auto" and winograd_applies(g, dtype, _COSTS[device]):
        candidates.append("winograd")
    toeplitz_blocks = _toeplitz_block(g, dtype, device) if method != "fft" else None
    toeplitz_block = priced_block = None
    if toeplitz_blocks is not None:
        toeplitz_block, priced_block = toeplitz_blocks
        candidates.append("toeplitz")

    if only is not None:
        if only not in candidates:
            raise LookupError(f"{func}: strategy {only!r} is not admissible here: {candidates}")
        candidates = [only]
    options = []
    for strategy in candidates:
        shape = {"fft": fft_shape, "fft_blocks": (block_length,)}.get(strategy)
        max_tiles = _max_tiles(g, strategy, unroll_limited)
        tile, ws = _batch_tile(
            g, strategy, itemsize, shape, toeplitz_block, budget, device, max_tiles
        )
        rows = None
        if tile == 1:
            part = dataclasses.replace(g, batch=1)
            row_max = None if max_tiles is None else max_tiles // g.batch
            rows = _row_tile(part, strategy, itemsize, _COSTS[device], row_max, toeplitz_block)
        cost = tiled_cost(g, strategy, dtype, device, shape, priced_block, tile, rows)
        if unroll_limited and unrolled_ops(g, strategy) > _MAX_UNROLLED_OPS_JAX:
            cost *= 1e3  # admissible only when nothing else fits the budget
        options.append((ws > budget, cost, strategy, shape, (tile, rows), ws))
    fitting = [o for o in options if not o[0]]
    if not fitting:
        leanest = min(options, key=lambda o: o[5])
        raise MemoryError(
            f"{func}: the leanest admissible strategy ({leanest[2]!r}) needs "
            f"{leanest[5]:,} bytes of workspace (output alone {out_bytes:,} bytes) "
            f"but the budget is {budget:,} bytes; raise it with workspace_bytes= "
            f"or ${_ENV_BUDGET}, or split the problem"
        )
    _, cost, strategy, fft_shape, (tile, rows), ws = min(fitting, key=lambda o: o[1])
    block = toeplitz_block if strategy == "toeplitz" else None
    if strategy == "fft_blocks":
        block = fft_shape[0] - g.dilation[0] * (g.kernel[0] - 1)
    contiguous = strategy == "fft" and bool(_COSTS[device]["fft_contiguous"])
    tiled = _tile_geometry(g, tile, rows)
    joined = batch_gemm(tiled, strategy, _COSTS[device])
    phases = strategy in _STACKING and phase_grid_applies(g, _COSTS[device]) and not joined
    flat = strategy == "elementwise" and flat_elementwise_applies(tiled, _COSTS[device])
    flat_chunk = _COSTS[device]["flat_chunk"] if flat else 0
    plan = Plan(
        g,
        strategy,
        fft_shape,
        tile,
        ws,
        out_bytes,
        cost,
        block,
        contiguous,
        rows,
        phases,
        fft_wrap=wrap and strategy == "fft",
        in_order=bool(_COSTS[device]["orders_work"]),
        taps_in_order=orders_taps(tiled, strategy, itemsize, device),
        batch_gemm=joined,
        flat_chunk=flat_chunk,
    )
    if only is not None:
        return plan
    # the same problem, differently arranged: dilation phases, exchanged axes
    rest = (method, dtype, device_kind, fft_available, unroll_limited, budget, func, float_eps)
    split = dilation_split_geometry(g)
    inner = None if split is None else _plan_within_budget(split, *rest)
    if inner is not None:
        plan = _dilation_split(plan, inner, device, itemsize, budget)
    axis = band_axis(g, dtype) if method != "fft" else None
    if axis is not None:
        inner = _plan_within_budget(swap_axes_geometry(g, axis), *rest, zero_pads=zero_pads)
        if inner is not None:
            plan = _swapped(plan, inner, axis, device, itemsize, budget)
    return plan


def _plan_within_budget(g: Geometry, *args: Any, **kwargs: Any) -> Plan | None:
    """:func:`plan_correlation` of a rearranged problem, or None where nothing fits."""
    try:
        return plan_correlation(g, *args, **kwargs)
    except MemoryError:
        return None
