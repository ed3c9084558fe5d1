"""The auto-choice sweep of issue 4: does ``method="auto"`` pick a fast strategy?

For 50 float32 shapes (SciPy-style correlations and NN convolutions, small to
medium) this times every internal strategy portconv has, forced one at a
time, and checks whether the strategy the cost model chose is within 10% of
the fastest.  Usage::

    python benchmarks/sweep.py [--backend numpy|torch|jax] [--rounds R] [--limit N]
                               [--set eval|train|unusual|networks|sequences|signals]
                               [--json PATH] [--md PATH]

Writes ``benchmarks/results/auto-sweep-<machine>.{json,md}`` by default.

Strategies are forced through the planner itself: the problem is planned as
``portconv._nn._conv`` (or ``portconv.correlate``) plans it, then re-planned
once per strategy with ``only=`` that strategy, so each forced plan carries
the blocks, tiles and FFT lengths the planner would give it (new strategies
are swept without changes here), and is run with
``portconv._core.correlate_nd``.  A strategy
the planner does not offer for a problem (e.g. ``elementwise`` with several
input channels per group) is skipped.  This reaches into private modules on
purpose: it measures the planner.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import os
import random
import statistics
import subprocess
import sys
import time
import zlib
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from portconv import _core, _plan
from portconv._compat import namespace_of
from portconv._core import correlate_nd, make_plan, resolve_budget
from portconv._dtypes import dtype_info
from portconv._plan import Geometry, Plan
from portconv._signal import _mode_pads
from portconv.cli.bench import (
    describe_machine,
    heap_setting,
    loadavg,
    machine_name,
    reexec_env,
    time_interleaved,
)

#: Within this factor of the fastest strategy counts as a good choice.
TOLERANCE = 1.10
#: A strategy whose first call takes longer is timed once, not repeatedly.
SLOW_S = 2.0
#: Interleaved repetitions per shape (at least, at most): ties between
#: strategies are common, and 10% is not far above this machine's noise.
REPEATS = (7, 15)


@dataclasses.dataclass(frozen=True)
class Shape:
    """One sweep problem: a SciPy-style correlation or an NN convolution."""

    name: str
    x: tuple[int, ...]  # signal: in1; nn: (N, C_in, *spatial)
    w: tuple[int, ...]  # signal: in2; nn: (C_out, C_in // groups, *kernel)
    mode: str = ""  # signal only: full, same or valid
    stride: int = 1
    padding: int = 0
    dilation: int = 1
    groups: int = 1

    @property
    def kind(self) -> str:
        return "signal" if self.mode else "nn"


def _sig(name: str, x: tuple[int, ...], w: tuple[int, ...], mode: str = "same") -> Shape:
    return Shape(name, x, w, mode=mode)


def _nn(name: str, x, w, stride=1, padding=0, dilation=1, groups=1) -> Shape:
    return Shape(name, x, w, stride=stride, padding=padding, dilation=dilation, groups=groups)


SHAPES: tuple[Shape, ...] = (
    # SciPy-style 1-d correlations
    _sig("1d 1000*3", (1000,), (3,)),
    _sig("1d 1000*31", (1000,), (31,)),
    _sig("1d 10k*5", (10_000,), (5,)),
    _sig("1d 10k*65", (10_000,), (65,)),
    _sig("1d 10k*257", (10_000,), (257,)),
    _sig("1d 64k*9", (65_536,), (9,)),
    _sig("1d 64k*65", (65_536,), (65,)),
    _sig("1d 64k*257", (65_536,), (257,)),
    _sig("1d 64k*1025", (65_536,), (1025,)),
    _sig("1d 4096*4096 full", (4096,), (4096,), "full"),
    _sig("1d 100k*17 valid", (100_000,), (17,), "valid"),
    _sig("1d 256k*33", (262_144,), (33,)),
    # SciPy-style 2-d and 3-d correlations
    _sig("2d 64^2*3^2", (64, 64), (3, 3)),
    _sig("2d 64^2*7^2", (64, 64), (7, 7)),
    _sig("2d 128^2*3^2", (128, 128), (3, 3)),
    _sig("2d 128^2*9^2", (128, 128), (9, 9)),
    _sig("2d 128^2*15^2", (128, 128), (15, 15)),
    _sig("2d 256^2*3^2", (256, 256), (3, 3)),
    _sig("2d 256^2*5^2", (256, 256), (5, 5)),
    _sig("2d 256^2*11^2", (256, 256), (11, 11)),
    _sig("2d 256^2*21^2", (256, 256), (21, 21)),
    _sig("2d 256^2*31^2", (256, 256), (31, 31)),
    _sig("2d 512^2*3^2", (512, 512), (3, 3)),
    _sig("2d 512^2*7^2", (512, 512), (7, 7)),
    _sig("2d 512^2*15^2", (512, 512), (15, 15)),
    _sig("2d 64^2*64^2 full", (64, 64), (64, 64), "full"),
    _sig("2d 200x300*5x9", (200, 300), (5, 9)),
    _sig("3d 32^3*3^3", (32, 32, 32), (3, 3, 3)),
    # NN convolutions (torch layouts)
    _nn("conv 1x3x64^2->16 3x3", (1, 3, 64, 64), (16, 3, 3, 3), padding=1),
    _nn("conv 4x16x32^2->32 3x3", (4, 16, 32, 32), (32, 16, 3, 3), padding=1),
    _nn("conv 4x32x32^2->32 1x1", (4, 32, 32, 32), (32, 32, 1, 1)),
    _nn("conv 2x64x28^2->64 3x3", (2, 64, 28, 28), (64, 64, 3, 3), padding=1),
    _nn("conv 2x128x14^2->128 3x3", (2, 128, 14, 14), (128, 128, 3, 3), padding=1),
    _nn("conv 2x256x7^2->256 3x3", (2, 256, 7, 7), (256, 256, 3, 3), padding=1),
    _nn("stem 1x3x112^2->32 7x7 s2", (1, 3, 112, 112), (32, 3, 7, 7), stride=2, padding=3),
    _nn("conv 2x3x64^2->16 5x5", (2, 3, 64, 64), (16, 3, 5, 5), padding=2),
    _nn("dw 2x32x28^2 3x3", (2, 32, 28, 28), (32, 1, 3, 3), padding=1, groups=32),
    _nn("dw 2x64x14^2 5x5", (2, 64, 14, 14), (64, 1, 5, 5), padding=2, groups=64),
    _nn("dw 2x128x28^2 3x3 s2", (2, 128, 28, 28), (128, 1, 3, 3), stride=2, padding=1, groups=128),
    _nn("conv 2x64x28^2->128 1x1 s2", (2, 64, 28, 28), (128, 64, 1, 1), stride=2),
    _nn("conv 2x32x56^2->64 3x3 s2", (2, 32, 56, 56), (64, 32, 3, 3), stride=2, padding=1),
    _nn("conv 2x16x32^2->16 7x7", (2, 16, 32, 32), (16, 16, 7, 7), padding=3),
    _nn("conv 1x8x64^2->8 11x11", (1, 8, 64, 64), (8, 8, 11, 11), padding=5),
    _nn("grouped 2x64x32^2 g4 3x3", (2, 64, 32, 32), (64, 16, 3, 3), padding=1, groups=4),
    _nn("dilated 2x32x32^2 3x3 d2", (2, 32, 32, 32), (32, 32, 3, 3), padding=2, dilation=2),
    _nn("conv1d 4x16x1024->32 k9", (4, 16, 1024), (32, 16, 9), padding=4),
    _nn("conv1d 8x64x256->64 k3", (8, 64, 256), (64, 64, 3), padding=1),
    _nn("conv1d 1x1x16384->1 k127", (1, 1, 16384), (1, 1, 127), padding=63),
    _nn("conv3d 1x4x32^3->8 3^3", (1, 4, 32, 32, 32), (8, 4, 3, 3, 3), padding=1),
    _nn("conv3d 1x16x16^3->16 3^3", (1, 16, 16, 16, 16), (16, 16, 3, 3, 3), padding=1),
)


#: Shapes the cost model's constants are fitted on (``--set train``,
#: ``benchmarks/fit_cost_model.py``): none of them is in ``SHAPES``, so the
#: 50-shape sweep above measures the fitted model on problems it never saw.
TRAIN_SHAPES: tuple[Shape, ...] = (
    _sig("1d 500*7", (500,), (7,)),
    _sig("1d 2000*15", (2000,), (15,)),
    _sig("1d 5000*3", (5000,), (3,)),
    _sig("1d 20k*31", (20_000,), (31,)),
    _sig("1d 20k*129", (20_000,), (129,)),
    _sig("1d 32k*5", (32_768,), (5,)),
    _sig("1d 32k*513", (32_768,), (513,)),
    _sig("1d 128k*17", (131_072,), (17,)),
    _sig("1d 128k*129", (131_072,), (129,)),
    _sig("1d 200k*2049", (200_000,), (2049,)),
    _sig("1d 8192*1000 full", (8192,), (1000,), "full"),
    _sig("1d 50k*40 valid", (50_000,), (40,), "valid"),
    _sig("2d 48^2*5^2", (48, 48), (5, 5)),
    _sig("2d 96^2*3^2", (96, 96), (3, 3)),
    _sig("2d 96^2*11^2", (96, 96), (11, 11)),
    _sig("2d 160^2*5^2", (160, 160), (5, 5)),
    _sig("2d 192^2*7^2", (192, 192), (7, 7)),
    _sig("2d 192^2*25^2", (192, 192), (25, 25)),
    _sig("2d 320^2*3^2", (320, 320), (3, 3)),
    _sig("2d 320^2*13^2", (320, 320), (13, 13)),
    _sig("2d 400^2*5^2", (400, 400), (5, 5)),
    _sig("2d 640^2*3^2", (640, 640), (3, 3)),
    _sig("2d 100x400*3x15", (100, 400), (3, 15)),
    _sig("2d 300x100*9x3", (300, 100), (9, 3)),
    _sig("2d 128^2*32^2 full", (128, 128), (32, 32), "full"),
    _sig("2d 256^2*8^2 valid", (256, 256), (8, 8), "valid"),
    _sig("3d 24^3*5^3", (24, 24, 24), (5, 5, 5)),
    _sig("3d 48^3*3^3", (48, 48, 48), (3, 3, 3)),
    _nn("conv 1x1x128^2->8 3x3", (1, 1, 128, 128), (8, 1, 3, 3), padding=1),
    _nn("conv 2x8x64^2->16 3x3", (2, 8, 64, 64), (16, 8, 3, 3), padding=1),
    _nn("conv 4x64x16^2->64 3x3", (4, 64, 16, 16), (64, 64, 3, 3), padding=1),
    _nn("conv 1x32x56^2->32 3x3", (1, 32, 56, 56), (32, 32, 3, 3), padding=1),
    _nn("conv 8x128x8^2->128 3x3", (8, 128, 8, 8), (128, 128, 3, 3), padding=1),
    _nn("conv 2x64x32^2->64 1x1", (2, 64, 32, 32), (64, 64, 1, 1)),
    _nn("conv 1x3x96^2->24 5x5 s2", (1, 3, 96, 96), (24, 3, 5, 5), stride=2, padding=2),
    _nn("conv 2x16x48^2->32 5x5", (2, 16, 48, 48), (32, 16, 5, 5), padding=2),
    _nn("dw 4x48x32^2 3x3", (4, 48, 32, 32), (48, 1, 3, 3), padding=1, groups=48),
    _nn("dw 1x96x56^2 3x3", (1, 96, 56, 56), (96, 1, 3, 3), padding=1, groups=96),
    _nn("dw 2x32x32^2 7x7", (2, 32, 32, 32), (32, 1, 7, 7), padding=3, groups=32),
    _nn("dw 4x64x28^2 3x3 s2", (4, 64, 28, 28), (64, 1, 3, 3), stride=2, padding=1, groups=64),
    _nn("grouped 2x32x28^2 g8 3x3", (2, 32, 28, 28), (32, 4, 3, 3), padding=1, groups=8),
    _nn("dilated 1x16x64^2 3x3 d3", (1, 16, 64, 64), (16, 16, 3, 3), padding=3, dilation=3),
    _nn("conv 2x32x28^2->64 3x3 s2", (2, 32, 28, 28), (64, 32, 3, 3), stride=2, padding=1),
    # batched layers with 2-5-tap kernels, where XLA's Winograd competes
    _nn("conv 8x16x64^2->16 5x5", (8, 16, 64, 64), (16, 16, 5, 5), padding=2),
    _nn("conv 8x64x32^2->64 4x4", (8, 64, 32, 32), (64, 64, 4, 4), padding=2),
    _nn("conv 4x32x48^2->32 2x2", (4, 32, 48, 48), (32, 32, 2, 2)),
    _nn("conv 8x32x64^2->64 4x4 s2", (8, 32, 64, 64), (64, 32, 4, 4), stride=2, padding=1),
    _nn("conv1d 2x32x2048->32 k5", (2, 32, 2048), (32, 32, 5), padding=2),
    _nn("conv1d 4x8x4096->16 k31", (4, 8, 4096), (16, 8, 31), padding=15),
    _nn("conv1d 16x128x64->128 k3", (16, 128, 64), (128, 128, 3), padding=1),
    _nn("conv1d 1x4x32768->4 k257", (1, 4, 32768), (4, 4, 257), padding=128),
    _nn("conv3d 1x8x24^3->8 3^3", (1, 8, 24, 24, 24), (8, 8, 3, 3, 3), padding=1),
    _nn("conv3d 2x4x16^3->8 5^3", (2, 4, 16, 16, 16), (8, 4, 5, 5, 5), padding=2),
    _nn("conv3d 1x1x40^3->4 3^3", (1, 1, 40, 40, 40), (4, 1, 3, 3, 3), padding=1),
)

#: Shapes outside both families' usual ranges (``--set unusual``): very long or
#: large single-channel inputs, one-sided and huge kernels, many groups, big
#: strides and dilations, 1x1 layers wider than their input.  Neither fitted
#: on nor used to choose constants: a check that the model generalises.
UNUSUAL_SHAPES: tuple[Shape, ...] = (
    _sig("1d 2M*3", (2_000_000,), (3,)),
    _sig("1d 300*200 full", (300,), (200,), "full"),
    _sig("1d 50k*4001", (50_000,), (4001,)),
    _sig("2d 2048x64*3x3", (2048, 64), (3, 3)),
    _sig("2d 64x2048*1x51", (64, 2048), (1, 51)),
    _sig("2d 300^2*51x1", (300, 300), (51, 1)),
    _sig("2d 1000^2*2x2 valid", (1000, 1000), (2, 2), "valid"),
    _sig("3d 48^3*7^3", (48, 48, 48), (7, 7, 7)),
    _sig("2d 32^2*32^2 valid", (32, 32), (32, 32), "valid"),
    _nn("conv 64x3x32^2->32 3x3", (64, 3, 32, 32), (32, 3, 3, 3), padding=1),
    _nn("conv 1x512x7^2->512 3x3", (1, 512, 7, 7), (512, 512, 3, 3), padding=1),
    _nn("conv 1x64x112^2->64 1x1", (1, 64, 112, 112), (64, 64, 1, 1)),
    _nn("conv 2x64x56^2->256 1x1", (2, 64, 56, 56), (256, 64, 1, 1)),
    _nn("conv 2x16x64^2->16 3x3 s3", (2, 16, 64, 64), (16, 16, 3, 3), stride=3),
    _nn("conv 2x32x32^2->32 5x5 d4", (2, 32, 32, 32), (32, 32, 5, 5), padding=8, dilation=4),
    _nn("conv 1x4x256^2->4 15x15", (1, 4, 256, 256), (4, 4, 15, 15), padding=7),
    _nn("conv 2x64x28^2->64 1x7", (2, 64, 28, 28), (64, 64, 1, 7)),
    _nn("dw 4x512x14^2 3x3", (4, 512, 14, 14), (512, 1, 3, 3), padding=1, groups=512),
    _nn("dw 1x32x128^2 7x7", (1, 32, 128, 128), (32, 1, 7, 7), padding=3, groups=32),
    _nn("grouped 2x128x28^2 g32 3x3", (2, 128, 28, 28), (128, 4, 3, 3), padding=1, groups=32),
    _nn("conv1d 32x1x4000->8 k80 s4", (32, 1, 4000), (8, 1, 80), stride=4),
    _nn("conv1d 1x256x100->256 k5", (1, 256, 100), (256, 256, 5), padding=2),
    _nn("conv3d 2x16x16^3->32 3^3 s2", (2, 16, 16, 16, 16), (32, 16, 3, 3, 3), padding=1, stride=2),
    _nn("conv 1x3x512^2->8 3x3", (1, 3, 512, 512), (8, 3, 3, 3), padding=1),
)
#: Layers of two common networks at batch 8, float32 (``--set networks``):
#: ResNet-18's convolutions beyond the suite's (its stride-2 3x3 and 1x1
#: shortcut layers, the deep 14^2 and 7^2 stages) and MobileNetV2's
#: depthwise and 1x1 layers.  Neither fitted on nor used to choose
#: constants: what a user training or running these networks would see.
NETWORK_SHAPES: tuple[Shape, ...] = (
    _nn("resnet 8x64x56^2->128 3x3 s2", (8, 64, 56, 56), (128, 64, 3, 3), stride=2, padding=1),
    _nn("resnet 8x64x56^2->128 1x1 s2", (8, 64, 56, 56), (128, 64, 1, 1), stride=2),
    _nn("resnet 8x128x28^2->128 3x3", (8, 128, 28, 28), (128, 128, 3, 3), padding=1),
    _nn("resnet 8x128x28^2->256 3x3 s2", (8, 128, 28, 28), (256, 128, 3, 3), stride=2, padding=1),
    _nn("resnet 8x128x28^2->256 1x1 s2", (8, 128, 28, 28), (256, 128, 1, 1), stride=2),
    _nn("resnet 8x256x14^2->256 3x3", (8, 256, 14, 14), (256, 256, 3, 3), padding=1),
    _nn("resnet 8x256x14^2->512 3x3 s2", (8, 256, 14, 14), (512, 256, 3, 3), stride=2, padding=1),
    _nn("resnet 8x256x14^2->512 1x1 s2", (8, 256, 14, 14), (512, 256, 1, 1), stride=2),
    _nn("resnet 8x512x7^2->512 3x3", (8, 512, 7, 7), (512, 512, 3, 3), padding=1),
    _nn("mobilenet 8x24x56^2->144 1x1", (8, 24, 56, 56), (144, 24, 1, 1)),
    _nn("mobilenet dw 8x144x56^2 3x3", (8, 144, 56, 56), (144, 1, 3, 3), padding=1, groups=144),
    _nn(
        "mobilenet dw 8x144x56^2 3x3 s2",
        (8, 144, 56, 56),
        (144, 1, 3, 3),
        stride=2,
        padding=1,
        groups=144,
    ),
    _nn("mobilenet 8x144x28^2->32 1x1", (8, 144, 28, 28), (32, 144, 1, 1)),
    _nn("mobilenet dw 8x576x14^2 3x3", (8, 576, 14, 14), (576, 1, 3, 3), padding=1, groups=576),
    _nn("mobilenet 8x576x14^2->96 1x1", (8, 576, 14, 14), (96, 576, 1, 1)),
)
#: 1-d layers of sequence models over long inputs (``--set sequences``):
#: wav2vec 2.0's feature encoder, temporal convolutions (TCN, dilated),
#: a Conformer's depthwise convolution.  Neither fitted on nor used to
#: choose constants.
SEQUENCE_SHAPES: tuple[Shape, ...] = (
    _nn("wav2vec 4x1x16000->512 k10 s5", (4, 1, 16_000), (512, 1, 10), stride=5),
    _nn("wav2vec 4x512x3199->512 k3 s2", (4, 512, 3199), (512, 512, 3), stride=2),
    _nn("tcn 16x64x4000->64 k9", (16, 64, 4000), (64, 64, 9), padding=4),
    _nn("tcn 8x128x2000->128 k5", (8, 128, 2000), (128, 128, 5), padding=2),
    _nn("tcn 4x32x16000->32 k3", (4, 32, 16_000), (32, 32, 3), padding=1),
    _nn("tcn 8x64x4000->64 k3 d8", (8, 64, 4000), (64, 64, 3), padding=8, dilation=8),
    _nn(
        "conformer dw 8x256x1000 k31",
        (8, 256, 1000),
        (256, 1, 31),
        padding=15,
        groups=256,
    ),
    _nn("conv1d 8x80x3000->256 k3", (8, 80, 3000), (256, 80, 3), padding=1),
)
#: Long 1-d signals (``--set signals``), SciPy-style, "same" mode: where
#: the banded matmul's block meets thin-panel matmuls (``_plan._thin_panel_cost``)
#: and the overlap-save blocks compete.  Neither fitted on nor used to fit.
SIGNAL_SHAPES: tuple[Shape, ...] = (
    _sig("1d 256k*65", (262_144,), (65,)),
    _sig("1d 256k*257", (262_144,), (257,)),
    _sig("1d 1M*17", (1_048_576,), (17,)),
    _sig("1d 1M*65", (1_048_576,), (65,)),
    _sig("1d 1M*129", (1_048_576,), (129,)),
    _sig("1d 1M*257", (1_048_576,), (257,)),
    _sig("1d 1M*513", (1_048_576,), (513,)),
    _sig("1d 2M*129", (2_097_152,), (129,)),
    _sig("1d 4M*257", (4_194_304,), (257,)),
)


def random_layers(
    seed: int, count: int, prefix: str, macs: tuple[float, float] = (1e6, 1.5e8)
) -> tuple[Shape, ...]:
    """``count`` NN layers drawn at random from ``seed`` (``--set random``, ``holdout``, ``small``).

    1-d, 2-d and 3-d; strides 1-3, dilations 1-3, zero or "same"-like
    padding, dense, grouped and depthwise (with channel multipliers), batch
    1-8, kept between ``macs`` multiply-adds (by default 1 to 150 million,
    so every strategy can be timed).  What a user's unlisted layer looks like, as far as a
    seed can say: the planner was not designed on these.  Names start
    with ``prefix`` and the draw's number.
    """
    rng = random.Random(seed)
    shapes: list[Shape] = []
    while len(shapes) < count:
        nsp = rng.choice((1, 2, 2, 2, 3))
        c_in = rng.choice((1, 3, 8, 16, 32, 64, 128))
        groups = rng.choice((1, 1, 1, 2, 4, 0))  # 0: depthwise
        if groups == 0:
            groups, c_out = c_in, c_in * rng.choice((1, 1, 2))
        else:
            groups = groups if c_in % groups == 0 else 1
            c_out = max(groups, rng.choice((1, 8, 16, 32, 64, 128)) // groups * groups)
        k = rng.choice((1, 2, 3, 3, 3, 5, 7))
        s = rng.choice((1, 1, 1, 2, 2, 3))
        d = rng.choice((1, 1, 1, 1, 2, 3)) if k > 1 else 1
        n = rng.choice((1, 2, 4, 8))
        size = rng.choice(
            {1: (256, 1000, 4096), 2: (14, 28, 32, 56, 64, 112), 3: (8, 12, 16, 24)}[nsp]
        )
        pad = rng.choice((0, (k // 2) * d))
        out = (size + 2 * pad - d * (k - 1) - 1) // s + 1
        work = n * c_out * (c_in // groups) * k**nsp * out**nsp
        if out < 1 or not macs[0] <= work <= macs[1]:
            continue
        x, w = (n, c_in) + (size,) * nsp, (c_out, c_in // groups) + (k,) * nsp
        extent = f"{size}" if nsp == 1 else f"{size}^{nsp}"
        name = (
            f"{prefix}{len(shapes):02d} {nsp}d {n}x{c_in}x{extent}->{c_out} k{k} s{s} d{d} p{pad}"
            + (f" g{groups}" if groups > 1 else "")
        )
        shapes.append(_nn(name, x, w, stride=s, padding=pad, dilation=d, groups=groups))
    return tuple(shapes)


#: Random layers (``--set random``): a draw to study the planner on.
RANDOM_SHAPES = random_layers(20261207, 40, "r")
#: Another draw (``--set holdout``), kept apart: measured only to check
#: what was learnt on ``random``.
HOLDOUT_SHAPES = random_layers(7122026, 40, "h")
#: Small random layers (``--set small``), 10 thousand to 1 million
#: multiply-adds: where a call's fixed cost, not its arithmetic, decides.
SMALL_SHAPES = random_layers(8122026, 30, "s", macs=(1e4, 1e6))
#: A third draw (``--set fresh``), made on 2026-12-08 to test that day's
#: refit of the NumPy row on layers no fit was trained on.
FRESH_SHAPES = random_layers(20261208, 40, "f")

SETS = {
    "eval": SHAPES,
    "train": TRAIN_SHAPES,
    "unusual": UNUSUAL_SHAPES,
    "networks": NETWORK_SHAPES,
    "sequences": SEQUENCE_SHAPES,
    "signals": SIGNAL_SHAPES,
    "random": RANDOM_SHAPES,
    "holdout": HOLDOUT_SHAPES,
    "small": SMALL_SHAPES,
    "fresh": FRESH_SHAPES,
}


# --------------------------------------------------------------------------
# Plans


def shape_fields(shape: Shape) -> dict[str, Any]:
    """The JSON fields of a row that describe its problem (see :func:`shape_from_row`)."""
    return {
        "name": shape.name,
        "x": list(shape.x),
        "w": list(shape.w),
        "mode": shape.mode or None,
        "stride": shape.stride,
        "padding": shape.padding,
        "dilation": shape.dilation,
        "groups": shape.groups,
    }


def shape_from_row(row: dict[str, Any]) -> Shape:
    """The problem of a JSON row written by :func:`shape_fields`."""
    return Shape(
        row["name"],
        tuple(row["x"]),
        tuple(row["w"]),
        row["mode"] or "",
        row["stride"],
        row["padding"],
        row["dilation"],
        row["groups"],
    )


def plan_fields(plan: Plan) -> dict[str, Any]:
    """What a forced plan chose beyond its strategy: block, FFT length and tiles."""
    return {
        "block": plan.block,
        "fft_shape": None if plan.fft_shape is None else list(plan.fft_shape),
        "batch_tile": plan.batch_tile,
        "row_tile": plan.row_tile,
    }


def _geometry(shape: Shape) -> Geometry:
    if shape.kind == "signal":
        pads, _ = _mode_pads("sweep", shape.mode, shape.x, shape.w, "nd")
        nd = len(shape.x)
        return Geometry(1, 1, 1, 1, shape.x, shape.w, (1,) * nd, (1,) * nd, pads)
    nsp = len(shape.x) - 2
    return Geometry(
        shape.x[0],
        shape.x[1],
        shape.w[0],
        shape.groups,
        shape.x[2:],
        shape.w[2:],
        (shape.stride,) * nsp,
        (shape.dilation,) * nsp,
        ((shape.padding, shape.padding),) * nsp,
    )


@contextlib.contextmanager
def _captured_planner_call():
    """Record the arguments ``make_plan`` passes to the planner."""
    seen: dict[str, Any] = {}
    original = _core.plan_correlation

    def spy(*args: Any, **kwargs: Any) -> Plan:
        seen["args"], seen["kwargs"] = args, kwargs
        return original(*args, **kwargs)

    _core.plan_correlation = spy
    try:
        yield seen
    finally:
        _core.plan_correlation = original


def _forced(planner_call: dict[str, Any], strategy: str) -> tuple[Plan | None, str]:
    """The plan the planner builds for ``strategy`` alone (``only=``).

    Returns ``(None, reason)`` when the planner does not offer ``strategy``
    for this problem (inadmissible) or it does not fit the budget.  Calls the
    planner past its cache so no forced plan leaks into later public calls.
    """
    plan_uncached = _plan.plan_correlation.__wrapped__
    try:
        plan = plan_uncached(*planner_call["args"], **{**planner_call["kwargs"], "only": strategy})
    except LookupError:
        return None, "not offered by the planner for this problem"
    except MemoryError:
        return None, "over the workspace budget"
    return plan, ""


# --------------------------------------------------------------------------
# Arrays and timing


def _library(backend: str) -> tuple[Any, Any]:
    """``(to_native, call_wrapper)`` for ``backend``."""
    if backend == "jax":
        import jax

        return jax.numpy.asarray, (lambda f: f)
    if backend == "torch":
        import torch

        def no_grad(f):
            def run():
                with torch.no_grad():
                    return f()

            return run

        return (lambda a: torch.from_numpy(a.copy())), no_grad
    return (lambda a: a), (lambda f: f)


def _arrays(shape: Shape, backend: str, dtype: str = "float32") -> tuple[Any, Any, Any]:
    import numpy as np

    rng = np.random.default_rng(zlib.crc32(shape.name.encode()))
    x = rng.standard_normal(shape.x, dtype=np.dtype(dtype))
    w = rng.standard_normal(shape.w, dtype=np.dtype(dtype))
    if shape.kind == "signal":  # the (1, 1, *S) layout portconv.correlate uses
        x, w = x.reshape((1, 1) + x.shape), w.reshape((1, 1) + w.shape)
    to_native, _ = _library(backend)
    x, w = to_native(x), to_native(w)
    return namespace_of("sweep", x=x, w=w), x, w


def _prepare(
    shape: Shape, backend: str, dtype: str = "float32"
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The row of ``shape`` without its times, and a run per admissible strategy."""
    xp, x, w = _arrays(shape, backend, dtype)
    g = _geometry(shape)
    info = dtype_info(xp, x.dtype, (x.dtype, w.dtype))
    budget = resolve_budget("sweep", None)
    with _captured_planner_call() as call:
        auto = make_plan("sweep", xp, x, g, "auto", info, budget, zero_pads=True)
    _, wrap = _library(backend)
    runs, skipped, model = {}, {}, {}
    for strategy in _plan.STRATEGIES:
        plan, why = _forced(call, strategy)
        if plan is None:
            skipped[strategy] = why
            continue
        model[strategy] = {
            "cost": plan.cost,
            "workspace": plan.workspace_bytes,
            **plan_fields(plan),
        }
        if backend == "jax":
            if _plan.unrolled_ops(plan.geometry, strategy) > _plan._MAX_UNROLLED_OPS_JAX:
                del model[strategy]
                skipped[strategy] = "too many unrolled operations to compile under jax.jit"
                continue
            runs[strategy] = _jitted(xp, x, w, plan)
        else:
            runs[strategy] = wrap(lambda plan=plan: correlate_nd(xp, x, w, plan))
    chosen = auto.strategy
    # the dilation phases, or exchanged axes: a plan no forced strategy runs
    arranged = "phases" if auto.inner is not None else None
    arranged = "swapped" if auto.swapped is not None else arranged
    if arranged is not None:
        chosen = f"{arranged}+{auto.strategy}"
        model[chosen] = {"cost": auto.cost, "workspace": auto.workspace_bytes, **plan_fields(auto)}
        if backend == "jax":
            runs[chosen] = _jitted(xp, x, w, auto)
        else:
            runs[chosen] = wrap(lambda: correlate_nd(xp, x, w, auto))
    row = {**shape_fields(shape), "kind": shape.kind, "macs": g.macs, "auto": chosen}
    return {**row, "model": model, "skipped": skipped}, runs


def _judged(row: dict[str, Any], times: dict[str, list[float]]) -> dict[str, Any]:
    """``row`` with its times, medians, fastest strategy and verdict on auto's choice."""
    medians = {s: statistics.median(t) for s, t in times.items()}
    fastest = min(medians, key=medians.__getitem__)
    chosen = row["auto"]
    ratio = medians[chosen] / medians[fastest] if chosen in medians else None
    return {
        **row,
        "fastest": fastest,
        "auto_over_fastest": ratio,
        "within": ratio is not None and ratio <= TOLERANCE,
        "median_s": medians,
        "times_s": times,
    }


def _jitted(xp: Any, x: Any, w: Any, plan: Plan) -> Any:
    """A zero-argument run of ``plan`` under ``jax.jit``, compiled here (not timed)."""
    import jax

    fn = jax.jit(lambda a, b: correlate_nd(xp, a, b, plan))
    fn(x, w).block_until_ready()
    return lambda: fn(x, w).block_until_ready()


def _time(runs: dict[str, Any]) -> dict[str, list[float]]:
    """Interleaved medians; a strategy slower than ``SLOW_S`` is timed once."""
    first = {}
    for name, run in runs.items():
        start = time.perf_counter()
        run()
        first[name] = time.perf_counter() - start
    slow = {name: [t] for name, t in first.items() if t > SLOW_S}
    fast = {name: run for name, run in runs.items() if name not in slow}
    # one library's strategies share its thread pools: a short pause will do
    times, _ = time_interleaved(
        fast, REPEATS[0], REPEATS[1], 3.0, {n: first[n] for n in fast}, pause_s=0.01
    )
    return {**times, **slow}


# --------------------------------------------------------------------------
# Report


def _summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    def frac(sel: list[dict[str, Any]]) -> float | None:
        return sum(r["within"] for r in sel) / len(sel) if sel else None

    missed = sorted(
        (r for r in rows if not r["within"]), key=lambda r: -(r["auto_over_fastest"] or 0)
    )
    return {
        "shapes": len(rows),
        "within": sum(r["within"] for r in rows),
        "fraction_within": frac(rows),
        "fraction_within_signal": frac([r for r in rows if r["kind"] == "signal"]),
        "fraction_within_nn": frac([r for r in rows if r["kind"] == "nn"]),
        "tolerance": TOLERANCE,
        "mispredicted": [
            {
                "name": r["name"],
                "auto": r["auto"],
                "fastest": r["fastest"],
                "auto_over_fastest": r["auto_over_fastest"],
            }
            for r in missed
        ],
    }


def _ms(t: float | None) -> str:
    return "—" if t is None else f"{t * 1e3:.3g}"


def _threads(meta: dict[str, Any]) -> str:
    keys = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
    set_ = [f"{k}={meta['env'][k]}" for k in keys if meta["env"].get(k)]
    return ", ".join(set_) or "library defaults"


def _cell(row: dict[str, Any], strategy: str) -> str:
    t = row["median_s"].get(strategy)
    if t is None:
        return "—"
    text = f"{_ms(t)} ({_ms(row['model'][strategy]['cost'])})"
    return f"**{text}**" if strategy == row["auto"] else text


def _markdown(result: dict[str, Any]) -> str:
    meta, summary, rows = result["meta"], result["summary"], result["rows"]
    strategies = list(dict.fromkeys(s for r in rows for s in r["median_s"]))
    rounds = meta.get("rounds", 1)

    def pct(value: float | None) -> str:
        return "—" if value is None else f"{100 * value:.0f}%"

    lines = [
        f"# Auto-choice sweep: {meta['machine']}, {meta['date'][:10]}, backend {meta['backend']}",
        "",
        f"`method='auto'` picked a strategy within {round((TOLERANCE - 1) * 100)}% of the "
        f"fastest for **{summary['within']}/{summary['shapes']} shapes "
        f"({pct(summary['fraction_within'])})**; SciPy-style correlations "
        f"{pct(summary['fraction_within_signal'])}, NN convolutions "
        f"{pct(summary['fraction_within_nn'])}.",
        "",
        f"- CPU: {meta['cpu_model']} ({meta['usable_cores']} usable cores); git {meta['git']}; "
        f"OpenBLAS core type {meta['openblas_coretype']}; env removed by re-exec: "
        f"{meta['env_removed_by_reexec'] or 'none'}; thread settings: {_threads(meta)}; "
        f"{heap_setting(meta)}",
        f"- {meta.get('dtype', 'float32').capitalize()}, medians of {REPEATS[0]}-{REPEATS[1]} interleaved runs after a warm-up"
        + (f", in {rounds} rounds a whole pass over the shapes apart " if rounds > 1 else " ")
        + f"(a strategy whose first call exceeds {SLOW_S:g} s is timed once); "
        f"{meta['elapsed_s']:.0f} s in all; load "
        f"average {meta['loadavg_start']} at start, {meta['loadavg_end']} at end",
        "- Cells: measured median ms (the planner's modelled cost in ms); auto's choice in "
        "bold; — = not offered for that problem; ✗ = auto more than "
        f"{round((TOLERANCE - 1) * 100)}% slower than the fastest",
        "",
        "| shape | MMAC | auto | fastest | auto/fastest | " + " | ".join(strategies) + " |",
        "|---|---:|---|---|---:|" + "---:|" * len(strategies),
    ]
    for r in rows:
        mark = "" if r["within"] else " ✗"
        cells = " | ".join(_cell(r, s) for s in strategies)
        ratio = r["auto_over_fastest"]
        lines.append(
            f"| {r['name']} | {r['macs'] / 1e6:.3g} | {r['auto']} | {r['fastest']} | "
            f"{'—' if ratio is None else f'{ratio:.2f}'}{mark} | {cells} |"
        )
    if summary["mispredicted"]:
        lines += ["", "## Mispredicted", ""]
        for m in summary["mispredicted"]:
            lines.append(
                f"- {m['name']}: auto chose {m['auto']}, {m['auto_over_fastest']:.2f}x the "
                f"fastest ({m['fastest']})"
            )
    return "\n".join(lines) + "\n"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--backend", choices=("numpy", "torch", "jax"), default="numpy")
    p.add_argument("--limit", type=int, help="only the first N shapes")
    p.add_argument(
        "--set",
        choices=tuple(SETS),
        default="eval",
        help="the 50 evaluation shapes, the shapes the cost model is fitted on, 24 unusual ones, 15 network layers, ..., or random layers (three draws of 40, one of 30 small ones)",
    )
    add_dtype_flag(p)
    p.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="time every shape this many times, a whole pass apart (medians over all rounds)",
    )
    add_output_flags(p)
    return p


def add_dtype_flag(p: argparse.ArgumentParser) -> None:
    """``--dtype`` (shared with ``versus.py``): the inputs' real dtype."""
    p.add_argument(
        "--dtype",
        choices=("float32", "float64"),
        default="float32",
        help="the inputs' dtype (float64: what SciPy users pass by default)",
    )


def enable_jax_x64_for(dtype: str) -> None:
    """Switch JAX's 64-bit mode on for a float64 run (else JAX silently computes in float32)."""
    if dtype == "float64":
        import jax

        jax.config.update("jax_enable_x64", True)


def add_output_flags(p: argparse.ArgumentParser) -> None:
    """``--json``, ``--md`` and ``--keep-env`` (shared with ``versus.py``)."""
    p.add_argument("--json", metavar="PATH")
    p.add_argument("--md", metavar="PATH")
    p.add_argument("--keep-env", action="store_true", help="keep OPENBLAS_CORETYPE/L2_SIZE")


def write_results(json_path: Path, md_path: Path, result: dict[str, Any], markdown: str) -> None:
    """Write a run's result as JSON and its Markdown report (shared with ``versus.py``)."""
    for path, text in (
        (json_path, json.dumps(result, indent=1, allow_nan=False) + "\n"),
        (md_path, markdown),
    ):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def parse_or_reexecute(
    parser: argparse.ArgumentParser, argv: list[str] | None, script: str
) -> argparse.Namespace | int:
    """The parsed arguments, or the exit status of ``script`` run again without the
    OpenBLAS overrides when any is set (and ``--keep-env`` is not given)."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(args_list)
    env = None if args.keep_env else reexec_env(dict(os.environ))
    if env is None:
        return args
    return subprocess.call([sys.executable, script, *args_list], env=env)


def main(argv: list[str] | None = None) -> int:
    """Run the sweep and write its JSON and Markdown; returns the exit status."""
    args = parse_or_reexecute(_parser(), argv, __file__)
    if isinstance(args, int):
        return args
    suffix = ("" if args.backend == "numpy" else f"-{args.backend}") + (
        "" if args.set == "eval" else f"-{args.set}"
    )
    suffix += "" if args.dtype == "float32" else f"-{args.dtype}"
    stem = Path(__file__).resolve().parent / "results" / f"auto-sweep-{machine_name()}{suffix}"
    json_path = Path(args.json or f"{stem}.json")
    md_path = Path(args.md or f"{stem}.md")
    start, load_start, git_start = time.perf_counter(), loadavg(), describe_machine()["git"]
    pool = SETS[args.set]
    shapes = pool[: args.limit] if args.limit else pool
    if args.backend == "jax":
        enable_jax_x64_for(args.dtype)
    prepared = [_prepare(shape, args.backend, args.dtype) for shape in shapes]
    times: list[dict[str, list[float]]] = [{} for _ in shapes]
    rows = []
    for r in range(1, args.rounds + 1):
        # rounds run over every shape in turn: a shape's runs are minutes apart
        for i, (row, runs) in enumerate(prepared):
            for strategy, t in _time(runs).items():
                times[i].setdefault(strategy, []).extend(t)
            if r == args.rounds:
                rows.append(_judged(row, times[i]))
                print(
                    f"{time.perf_counter() - start:6.1f}s [{i + 1}/{len(shapes)}] {row['name']}: "
                    f"auto {row['auto']}, fastest {rows[-1]['fastest']}, "
                    f"ratio {rows[-1]['auto_over_fastest']:.2f}",
                    file=sys.stderr,
                    flush=True,
                )
    meta = {**describe_machine(), "backend": args.backend, "tolerance": TOLERANCE}
    meta["set"], meta["rounds"], meta["dtype"] = args.set, args.rounds, args.dtype
    meta["elapsed_s"] = round(time.perf_counter() - start, 1)
    meta["loadavg_start"], meta["loadavg_end"] = load_start, loadavg()
    meta["git"], meta["git_end"] = git_start, meta["git"]
    result = {"meta": meta, "summary": _summary(rows), "rows": rows}
    write_results(json_path, md_path, result, _markdown(result))
    s = result["summary"]
    print(f"within {math.floor((TOLERANCE - 1) * 100)}%: {s['within']}/{s['shapes']}")
    print(f"wrote {json_path} and {md_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
