"""The error contract (issue 7): every public function, every backend, eager and jitted.

Each bad input must raise the documented class -- ``ValueError`` for bad values
and shapes, ``TypeError`` for bad types, ``MemoryError`` when the workspace
exceeds the budget -- with a message that names the function, the parameter,
the value received and the rule broken.  Under JAX each case runs eagerly and
again while ``jax.jit`` traces (all checks are static, so both must raise the
same error before any array work).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import re
import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import portconv

from ._helpers import assert_close, jit_call, xp_dtype

ENV = "PORTCONV_WORKSPACE_BYTES"
DEFAULT_BUDGET = "4,294,967,296"  # 4 GiB, as the messages print it


def o(*shape: int, dtype: Any = np.float64) -> np.ndarray:
    return np.ones(shape, dtype=dtype)


@dataclasses.dataclass(frozen=True)
class Foreign:
    """An argument that must reach portconv as an array of *another* library."""

    value: np.ndarray


def R(pattern: str) -> re.Pattern[str]:
    """A message fragment given as a regular expression (plain strings are literal)."""
    return re.compile(pattern)


@dataclasses.dataclass(frozen=True)
class Bad:
    id: str
    func: str
    build: Callable[[], tuple[tuple[Any, ...], dict[str, Any]]]
    exc: type[Exception]
    fragments: tuple[str | re.Pattern[str], ...]


def call(*args: Any, **kwargs: Any) -> Callable[[], tuple[tuple[Any, ...], dict[str, Any]]]:
    return lambda: (args, kwargs)


X4, W4 = o(1, 1, 5, 5), o(1, 1, 3, 3)
I64 = np.int64

CASES = [
    # ------------------------------------------------------------- output_shape
    Bad(
        "output_shape-unknown-function",
        "output_shape",
        call("fftconvolve", (8, 8), (3, 3)),
        ValueError,
        ("output_shape", "function='fftconvolve'", "must be one of", "'conv'"),
    ),
    Bad(
        "output_shape-function-not-str",
        "output_shape",
        call(3, (8, 8), (3, 3)),
        TypeError,
        ("output_shape", "function", "got 3", "must be a str"),
    ),
    # ---------------------------------------------------------------- correlate
    Bad(
        "correlate-ndim-mismatch",
        "correlate",
        call(o(3, 3), o(3)),
        ValueError,
        ("correlate", "in1.shape=(3, 3)", "in2.shape=(3,)", "same number of dimensions"),
    ),
    Bad(
        "correlate-zero-size-in1",
        "correlate",
        call(o(0, 3), o(2, 2)),
        ValueError,
        ("correlate", "in1", "(0, 3)", "zero size"),
    ),
    Bad(
        "convolve-zero-size-in2",
        "convolve",
        call(o(4, 3), o(2, 0)),
        ValueError,
        ("convolve", "in2", "(2, 0)", "zero size"),
    ),
    Bad(
        "correlate-valid-neither-fits",
        "correlate",
        call(o(3, 6), o(5, 2), "valid"),
        ValueError,
        ("correlate", "mode='valid'", "in1.shape=(3, 6)", "in2.shape=(5, 2)", "at least as large"),
    ),
    Bad(
        "correlate-unknown-mode",
        "correlate",
        call(o(3), o(3), "Full"),
        ValueError,
        ("correlate", "mode='Full'", "must be one of", "'full'"),
    ),
    Bad(
        "correlate-mode-not-str",
        "correlate",
        call(o(3), o(3), 1),
        TypeError,
        ("correlate", "mode", "got 1", "must be a str"),
    ),
    Bad(
        "convolve-unknown-method",
        "convolve",
        call(o(3), o(3), "full", "fast"),
        ValueError,
        ("convolve", "method='fast'", "must be one of", "'direct'"),
    ),
    Bad(
        "correlate-bool-in1",
        "correlate",
        call(o(3, dtype=bool), o(3)),
        TypeError,
        ("correlate", "in1", "bool", "not supported"),
    ),
    Bad(
        "convolve-bool-in2",
        "convolve",
        call(o(3), o(3, dtype=bool)),
        TypeError,
        ("convolve", "in2", "bool", "not supported"),
    ),
    Bad(
        "correlate-list-in1",
        "correlate",
        call([1.0, 2.0, 3.0], o(3)),
        TypeError,
        ("correlate", "in1", "list", "must be an array"),
    ),
    Bad(
        "convolve-list-in2",
        "convolve",
        call(o(3), [1.0, 2.0]),
        TypeError,
        ("convolve", "in2", "list", "must be an array"),
    ),
    Bad(
        "correlate-mixed-libraries",
        "correlate",
        call(o(5), Foreign(o(3))),
        TypeError,
        ("correlate", "in1", "in2", "one array library"),
    ),
    Bad(
        "correlate-fft-int64",
        "correlate",
        call(o(30, dtype=I64), o(3, dtype=I64), "full", "fft"),
        ValueError,
        ("correlate", "method='fft'", "integer", "exact"),
    ),
    Bad(
        "convolve-workspace-too-small",
        "convolve",
        call(o(64, 64), o(5, 5), workspace_bytes=1000),
        MemoryError,
        ("convolve", R(r"needs [\d,]+ bytes of workspace"), "budget is 1,000 bytes"),
    ),
    Bad(
        "correlate-workspace-float",
        "correlate",
        call(o(3), o(3), workspace_bytes=1e9),
        TypeError,
        ("correlate", "workspace_bytes", "1000000000.0", "must be an int"),
    ),
    Bad(
        "correlate-workspace-zero",
        "correlate",
        call(o(3), o(3), workspace_bytes=0),
        ValueError,
        ("correlate", "workspace_bytes=0", "positive"),
    ),
    Bad(
        # the output alone would be 100000 x 200000 float64 = 160 GB: refused
        # by the planner from the shapes, before anything is allocated
        "correlate-160GB-output",
        "correlate",
        call(o(100_000, 1), o(1, 200_000)),
        MemoryError,
        (
            "correlate",
            R(r"output alone (160|80),000,000,000 bytes"),
            R(r"needs [\d,]{15,} bytes"),
            f"budget is {DEFAULT_BUDGET} bytes",
        ),
    ),
    # ------------------------------------------------------ correlate2d/convolve2d
    Bad(
        "correlate2d-3d-input",
        "correlate2d",
        call(o(3, 3, 3), o(2, 2, 2)),
        ValueError,
        ("correlate2d", "in1", "(3, 3, 3)", "2-d"),
    ),
    Bad(
        "convolve2d-1d-kernel",
        "convolve2d",
        call(o(3, 3), o(2)),
        ValueError,
        ("convolve2d", "in2", "(2,)", "2-d"),
    ),
    Bad(
        "correlate2d-unknown-boundary",
        "correlate2d",
        call(o(3, 3), o(2, 2), "full", "reflect"),
        ValueError,
        ("correlate2d", "boundary='reflect'", "must be one of", "'wrap'"),
    ),
    Bad(
        "convolve2d-boundary-not-str",
        "convolve2d",
        call(o(3, 3), o(2, 2), "full", None),
        TypeError,
        ("convolve2d", "boundary", "None", "must be a str"),
    ),
    Bad(
        "correlate2d-fillvalue-str",
        "correlate2d",
        call(o(3, 3), o(2, 2), fillvalue="0"),
        TypeError,
        ("correlate2d", "fillvalue", "'0'", "number"),
    ),
    Bad(
        "convolve2d-complex-fillvalue-real-input",
        "convolve2d",
        call(o(3, 3), o(2, 2), fillvalue=1j),
        TypeError,
        ("convolve2d", "fillvalue=1j", "complex", "float"),
    ),
    Bad(
        "correlate2d-fractional-fillvalue-int-input",
        "correlate2d",
        call(o(3, 3, dtype=I64), o(2, 2, dtype=I64), fillvalue=0.5),
        TypeError,
        ("correlate2d", "fillvalue=0.5", "integer"),
    ),
    Bad(
        "convolve2d-valid-neither-fits",
        "convolve2d",
        call(o(3, 6), o(5, 2), "valid"),
        ValueError,
        ("convolve2d", "mode='valid'", "in1.shape=(3, 6)", "in2.shape=(5, 2)"),
    ),
    Bad(
        "correlate2d-list-input",
        "correlate2d",
        call([[1.0, 2.0]], o(1, 1)),
        TypeError,
        ("correlate2d", "in1", "list", "must be an array"),
    ),
    Bad(
        "correlate2d-workspace-too-small",
        "correlate2d",
        call(o(64, 64), o(5, 5), workspace_bytes=1000),
        MemoryError,
        ("correlate2d", R(r"needs [\d,]+ bytes"), "budget is 1,000 bytes"),
    ),
    # ------------------------------------------------------------ choose_method
    Bad(
        "choose_method-unknown-mode",
        "choose_method",
        call(o(3), o(3), "x"),
        ValueError,
        ("choose_method", "mode='x'", "must be one of"),
    ),
    Bad(
        "choose_method-bool",
        "choose_method",
        call(o(3, dtype=bool), o(3)),
        TypeError,
        ("choose_method", "in1", "bool"),
    ),
    Bad(
        "choose_method-ndim-mismatch",
        "choose_method",
        call(o(3), o(3, 3)),
        ValueError,
        ("choose_method", "in1.shape=(3,)", "in2.shape=(3, 3)", "same number of dimensions"),
    ),
    Bad(
        "choose_method-zero-size",
        "choose_method",
        call(o(3, 0), o(3, 3)),
        ValueError,
        ("choose_method", "in1", "(3, 0)", "zero size"),
    ),
    Bad(
        "choose_method-list",
        "choose_method",
        call(o(3), [1.0]),
        TypeError,
        ("choose_method", "in2", "list", "must be an array"),
    ),
    # --------------------------------------------------------------------- conv
    Bad(
        "conv-channel-mismatch",
        "conv",
        call(o(1, 3, 5, 5), o(2, 2, 3, 3)),
        ValueError,
        ("conv", "input.shape=(1, 3, 5, 5)", "weight.shape=(2, 2, 3, 3)", "groups=1", "3 channels"),
    ),
    Bad(
        "conv-grouped-channel-mismatch",
        "conv",
        call(o(1, 4, 5, 5), o(2, 1, 3, 3), groups=2),
        ValueError,
        ("conv", "input.shape=(1, 4, 5, 5)", "weight.shape=(2, 1, 3, 3)", "groups=2"),
    ),
    Bad(
        "conv-groups-not-dividing-in",
        "conv",
        call(o(1, 3, 5, 5), o(2, 1, 3, 3), groups=2),
        ValueError,
        ("conv", "groups=2", "in_channels=3", "must divide"),
    ),
    Bad(
        "conv2d-groups-not-dividing-out",
        "conv2d",
        call(o(1, 2, 5, 5), o(3, 1, 3, 3), groups=2),
        ValueError,
        ("conv2d", "groups=2", "out_channels=3", "must divide", "weight.shape=(3, 1, 3, 3)"),
    ),
    Bad(
        "conv-stride-zero",
        "conv",
        call(X4, W4, stride=0),
        ValueError,
        ("conv", "stride=0", ">= 1"),
    ),
    Bad(
        "conv-dilation-negative",
        "conv",
        call(X4, W4, dilation=(1, -1)),
        ValueError,
        ("conv", "dilation=(1, -1)", ">= 1"),
    ),
    Bad(
        "conv-groups-zero",
        "conv",
        call(X4, W4, groups=0),
        ValueError,
        ("conv", "groups=0", ">= 1"),
    ),
    Bad(
        "conv-padding-negative",
        "conv",
        call(X4, W4, padding=-1),
        ValueError,
        ("conv", "padding=-1", ">= 0"),
    ),
    Bad(
        "conv-padding-pair-negative",
        "conv",
        call(X4, W4, padding=((0, -1), (0, 0))),
        ValueError,
        ("conv", "padding=((0, -1), (0, 0))", "negative"),
    ),
    Bad(
        "conv-padding-wrong-length",
        "conv",
        call(X4, W4, padding=(1,)),
        ValueError,
        ("conv", "padding=(1,)", "one entry per spatial dimension"),
    ),
    Bad(
        "conv-unknown-padding-string",
        "conv",
        call(X4, W4, padding="full"),
        ValueError,
        ("conv", "padding='full'", "'valid', 'same'"),
    ),
    Bad(
        "conv-padding-float",
        "conv",
        call(X4, W4, padding=1.5),
        TypeError,
        ("conv", "padding", "1.5", "an int"),
    ),
    Bad(
        "conv-unknown-padding_mode",
        "conv",
        call(X4, W4, padding_mode="wrap"),
        ValueError,
        ("conv", "padding_mode='wrap'", "must be one of", "'circular'"),
    ),
    Bad(
        "conv-unknown-data_format",
        "conv",
        call(X4, W4, data_format="NHWC"),
        ValueError,
        ("conv", "data_format='NHWC'", "must be one of", "'channels_last'"),
    ),
    Bad(
        "conv-unknown-method",
        "conv",
        call(X4, W4, method="winograd"),
        ValueError,
        ("conv", "method='winograd'", "must be one of"),
    ),
    Bad(
        "conv-kernel-larger-than-input",
        "conv",
        call(X4, o(1, 1, 7, 3)),
        ValueError,
        ("conv", "kernel (7, 3)", "padded input (5, 5)", "output size would be (-1, 3)"),
    ),
    Bad(
        # an output size of exactly zero is an error too, never an empty result
        "conv1d-kernel-one-larger",
        "conv1d",
        call(o(1, 1, 5), o(1, 1, 6)),
        ValueError,
        ("conv1d", "kernel (6,)", "padded input (5,)", "output size would be (0,)"),
    ),
    Bad(
        "conv-dilated-kernel-larger-than-input",
        "conv",
        call(X4, W4, dilation=3),
        ValueError,
        ("conv", "dilation (3, 3)", "padded input (5, 5)", "would be (-1, -1)"),
    ),
    Bad(
        "conv-weight-rank-mismatch",
        "conv",
        call(X4, o(1, 1, 3)),
        ValueError,
        ("conv", "input.shape=(1, 1, 5, 5)", "3 dimensions", "weight"),
    ),
    Bad(
        "conv-input-rank-too-small",
        "conv",
        call(o(5, 5), W4),
        ValueError,
        ("conv", "input.shape=(5, 5)", "4 dimensions"),
    ),
    Bad(
        "conv-weight-rank-below-3",
        "conv",
        call(X4, o(3, 3)),
        ValueError,
        ("conv", "weight.shape=(3, 3)", "at least 3 dimensions"),
    ),
    Bad(
        "conv2d-3d-kernel",
        "conv2d",
        call(X4, o(1, 1, 3, 3, 3)),
        ValueError,
        ("conv2d", "weight.shape=(1, 1, 3, 3, 3)", "4 dimensions"),
    ),
    Bad(
        "conv1d-2d-kernel",
        "conv1d",
        call(o(1, 1, 5), o(1, 1, 3, 3)),
        ValueError,
        ("conv1d", "weight.shape=(1, 1, 3, 3)", "3 dimensions"),
    ),
    Bad(
        "conv3d-2d-kernel",
        "conv3d",
        call(X4, W4),
        ValueError,
        ("conv3d", "weight.shape=(1, 1, 3, 3)", "5 dimensions"),
    ),
    Bad(
        "conv-bias-wrong-length",
        "conv",
        call(X4, o(2, 1, 3, 3), o(3)),
        ValueError,
        ("conv", "bias.shape=(3,)", "(2,)", "one value per output channel"),
    ),
    Bad(
        "conv-bias-2d",
        "conv",
        call(X4, o(2, 1, 3, 3), o(2, 1)),
        ValueError,
        ("conv", "bias.shape=(2, 1)", "(2,)"),
    ),
    Bad(
        "conv-float-bias-int-input",
        "conv",
        call(o(1, 1, 5, 5, dtype=I64), o(2, 1, 3, 3, dtype=I64), o(2)),
        TypeError,
        ("conv", "bias", "float", "integer"),
    ),
    Bad(
        "conv-zero-size-kernel",
        "conv",
        call(X4, o(1, 1, 0, 3)),
        ValueError,
        ("conv", "weight.shape=(1, 1, 0, 3)", "zero-size kernel"),
    ),
    Bad(
        "conv-stride-float",
        "conv",
        call(X4, W4, stride=2.0),
        TypeError,
        ("conv", "stride", "2.0", "int"),
    ),
    Bad(
        "conv-stride-str",
        "conv",
        call(X4, W4, stride="2"),
        TypeError,
        ("conv", "stride", "'2'", "int"),
    ),
    Bad(
        "conv-stride-tuple-with-float",
        "conv",
        call(X4, W4, stride=(1, 2.0)),
        TypeError,
        ("conv", "stride=(1, 2.0)", "2.0", "ints"),
    ),
    Bad(
        "conv-stride-wrong-length",
        "conv",
        call(X4, W4, stride=(1, 1, 1)),
        ValueError,
        ("conv", "stride=(1, 1, 1)", "one entry per spatial dimension"),
    ),
    Bad(
        "conv-groups-float",
        "conv",
        call(X4, W4, groups=1.0),
        TypeError,
        ("conv", "groups", "1.0", "must be an int"),
    ),
    Bad(
        "conv-dilation-bool",
        "conv",
        call(X4, W4, dilation=True),
        TypeError,
        ("conv", "dilation", "True", "int"),
    ),
    Bad(
        "conv-input-list",
        "conv",
        call([[[[1.0]]]], W4),
        TypeError,
        ("conv", "input", "list", "must be an array"),
    ),
    Bad(
        "conv-weight-bool",
        "conv",
        call(X4, o(1, 1, 3, 3, dtype=bool)),
        TypeError,
        ("conv", "weight", "bool"),
    ),
    Bad(
        "conv-mixed-libraries",
        "conv",
        call(X4, Foreign(W4)),
        TypeError,
        ("conv", "input", "weight", "one array library"),
    ),
    Bad(
        "conv-workspace-too-small",
        "conv",
        call(o(1, 1, 50, 50), W4, workspace_bytes=1000),
        MemoryError,
        ("conv", R(r"needs [\d,]+ bytes of workspace"), "budget is 1,000 bytes"),
    ),
    Bad(
        # 20000 x 1000000 float64 output = 160 GB from a 1x1 input
        "conv-160GB-output",
        "conv",
        call(o(1, 1, 1, 1), o(1, 1, 1, 1), padding=((10_000, 9_999), (500_000, 499_999))),
        MemoryError,
        (
            "conv",
            R(r"output alone (160|80),000,000,000 bytes"),
            f"budget is {DEFAULT_BUDGET} bytes",
        ),
    ),
    # ----------------------------------------------------------- conv_transpose
    Bad(
        "conv_transpose-output_padding-too-large",
        "conv_transpose",
        call(X4, W4, stride=2, output_padding=2),
        ValueError,
        ("conv_transpose", "output_padding=(2, 2)", "smaller than max(stride, dilation)"),
    ),
    Bad(
        "conv_transpose-output_padding-negative",
        "conv_transpose",
        call(X4, W4, output_padding=-1),
        ValueError,
        ("conv_transpose", "output_padding=-1", ">= 0"),
    ),
    Bad(
        "conv_transpose-channel-mismatch",
        "conv_transpose",
        call(o(1, 2, 5, 5), o(3, 1, 3, 3)),
        ValueError,
        ("conv_transpose", "input.shape=(1, 2, 5, 5)", "weight.shape=(3, 1, 3, 3)", "must equal"),
    ),
    Bad(
        "conv_transpose-groups-not-dividing",
        "conv_transpose",
        call(o(1, 3, 5, 5), o(3, 1, 3, 3), groups=2),
        ValueError,
        ("conv_transpose", "groups=2", "in_channels=3", "must divide"),
    ),
    Bad(
        "conv_transpose-padding-string",
        "conv_transpose",
        call(X4, W4, padding="same"),
        ValueError,
        ("conv_transpose", "padding='same'", "not accepted"),
    ),
    Bad(
        "conv_transpose-output-not-positive",
        "conv_transpose",
        call(o(1, 1, 1, 1), o(1, 1, 1, 1), padding=1),
        ValueError,
        ("conv_transpose", "output size (-1, -1)", "not positive", "padding=((1, 1), (1, 1))"),
    ),
    Bad(
        "conv_transpose-bias-wrong-length",
        "conv_transpose",
        call(X4, o(1, 2, 3, 3), o(3)),
        ValueError,
        ("conv_transpose", "bias.shape=(3,)", "(2,)"),
    ),
    Bad(
        "conv_transpose-workspace-too-small",
        "conv_transpose",
        call(o(1, 1, 20, 20), W4, stride=2, workspace_bytes=1000),
        MemoryError,
        ("conv_transpose", R(r"needs [\d,]+ bytes"), "budget is 1,000 bytes"),
    ),
    Bad(
        "conv_transpose-zero-size-kernel",
        "conv_transpose",
        call(X4, o(1, 1, 3, 0)),
        ValueError,
        ("conv_transpose", "weight.shape=(1, 1, 3, 0)", "zero-size kernel"),
    ),
    # ---------------------------------------------------------- conv_input_grad
    Bad(
        "conv_input_grad-grad_output-wrong-shape",
        "conv_input_grad",
        call((1, 1, 5, 5), o(2, 1, 3, 3), o(1, 2, 4, 3)),
        ValueError,
        ("conv_input_grad", "grad_output.shape=(1, 2, 4, 3)", "(1, 2, 3, 3)", "forward output"),
    ),
    Bad(
        "conv_input_grad-grad_output-wrong-rank",
        "conv_input_grad",
        call((1, 1, 5, 5), o(2, 1, 3, 3), o(2, 3, 3, 1, 1)),
        ValueError,
        ("conv_input_grad", "grad_output.shape=(2, 3, 3, 1, 1)", "rank"),
    ),
    Bad(
        "conv_input_grad-input_shape-negative",
        "conv_input_grad",
        call((1, -1, 5, 5), o(2, 1, 3, 3), o(1, 2, 3, 3)),
        ValueError,
        ("conv_input_grad", "input_shape=(1, -1, 5, 5)", "negative"),
    ),
    Bad(
        "conv_input_grad-input_shape-float-entry",
        "conv_input_grad",
        call((1, 1, 5.0, 5), o(2, 1, 3, 3), o(1, 2, 3, 3)),
        TypeError,
        ("conv_input_grad", "input_shape=(1, 1, 5.0, 5)", "5.0", "ints"),
    ),
    Bad(
        "conv_input_grad-input_shape-str",
        "conv_input_grad",
        call("1155", o(2, 1, 3, 3), o(1, 2, 3, 3)),
        TypeError,
        ("conv_input_grad", "input_shape", "'1155'", "tuple of ints"),
    ),
    Bad(
        "conv_input_grad-input_shape-wrong-length",
        "conv_input_grad",
        call((1, 1, 5, 5, 5), o(2, 1, 3, 3), o(1, 2, 3, 3)),
        ValueError,
        ("conv_input_grad", "input_shape=(1, 1, 5, 5, 5)", "4 entries"),
    ),
    Bad(
        "conv_input_grad-weight-list",
        "conv_input_grad",
        call((1, 1, 3), [[[1.0]]], o(1, 1, 3)),
        TypeError,
        ("conv_input_grad", "weight", "list", "must be an array"),
    ),
    Bad(
        "conv_input_grad-channel-mismatch",
        "conv_input_grad",
        call((1, 3, 5, 5), o(2, 2, 3, 3), o(1, 2, 3, 3)),
        ValueError,
        ("conv_input_grad", "(1, 3, 5, 5)", "weight.shape=(2, 2, 3, 3)", "groups=1"),
    ),
    Bad(
        "conv_input_grad-unknown-method",
        "conv_input_grad",
        call((1, 1, 5, 5), W4, o(1, 1, 3, 3), method="gemm"),
        ValueError,
        ("conv_input_grad", "method='gemm'", "must be one of"),
    ),
    Bad(
        "conv_input_grad-stride-zero",
        "conv_input_grad",
        call((1, 1, 5, 5), W4, o(1, 1, 3, 3), stride=0),
        ValueError,
        ("conv_input_grad", "stride=0", ">= 1"),
    ),
    Bad(
        "conv_input_grad-mixed-libraries",
        "conv_input_grad",
        call((1, 1, 5, 5), W4, Foreign(o(1, 1, 3, 3))),
        TypeError,
        ("conv_input_grad", "weight", "grad_output", "one array library"),
    ),
    # --------------------------------------------------------- conv_weight_grad
    Bad(
        "conv_weight_grad-weight_shape-too-short",
        "conv_weight_grad",
        call(X4, (1, 1), o(1, 1, 3, 3)),
        ValueError,
        ("conv_weight_grad", "weight_shape=(1, 1)", "at least 3 entries"),
    ),
    Bad(
        "conv_weight_grad-grad_output-wrong-shape",
        "conv_weight_grad",
        call(X4, (1, 1, 3, 3), o(1, 1, 3, 4)),
        ValueError,
        ("conv_weight_grad", "grad_output.shape=(1, 1, 3, 4)", "(1, 1, 3, 3)", "forward output"),
    ),
    Bad(
        "conv_weight_grad-weight_shape-negative",
        "conv_weight_grad",
        call(X4, (1, -1, 3, 3), o(1, 1, 3, 3)),
        ValueError,
        ("conv_weight_grad", "weight_shape=(1, -1, 3, 3)", "negative"),
    ),
    Bad(
        "conv_weight_grad-zero-size-kernel",
        "conv_weight_grad",
        call(X4, (1, 1, 0, 3), o(1, 1, 6, 3)),
        ValueError,
        ("conv_weight_grad", "weight_shape", "(1, 1, 0, 3)", "zero-size kernel"),
    ),
    Bad(
        "conv_weight_grad-bool-input",
        "conv_weight_grad",
        call(o(1, 1, 5, 5, dtype=bool), (1, 1, 3, 3), o(1, 1, 3, 3)),
        TypeError,
        ("conv_weight_grad", "input", "bool"),
    ),
    Bad(
        "conv_weight_grad-channel-mismatch",
        "conv_weight_grad",
        call(o(1, 3, 5, 5), (2, 2, 3, 3), o(1, 2, 3, 3)),
        ValueError,
        ("conv_weight_grad", "(1, 3, 5, 5)", "(2, 2, 3, 3)", "groups=1"),
    ),
    Bad(
        "conv_weight_grad-kernel-larger-than-input",
        "conv_weight_grad",
        call(X4, (1, 1, 6, 3), o(1, 1, 1, 3)),
        ValueError,
        ("conv_weight_grad", "kernel (6, 3)", "padded input (5, 5)", "would be (0, 3)"),
    ),
    Bad(
        "conv_weight_grad-workspace-too-small",
        "conv_weight_grad",
        call(o(1, 1, 50, 50), (1, 1, 3, 3), o(1, 1, 48, 48), workspace_bytes=1000),
        MemoryError,
        ("conv_weight_grad", R(r"needs [\d,]+ bytes"), "budget is 1,000 bytes"),
    ),
    Bad(
        "conv_weight_grad-groups-str",
        "conv_weight_grad",
        call(X4, (1, 1, 3, 3), o(1, 1, 3, 3), groups="1"),
        TypeError,
        ("conv_weight_grad", "groups", "'1'", "must be an int"),
    ),
]


def _foreign(backend, value: np.ndarray) -> Any:
    """``value`` as an array of a library other than ``backend``'s."""
    if backend.name.startswith("torch"):
        return np.array(value)
    if importlib.util.find_spec("torch") is None:
        pytest.skip("the mixed-library case needs torch installed")
    import torch

    return torch.asarray(np.array(value))


def _convert(backend, value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return backend.asarray(value)
    if isinstance(value, Foreign):
        return _foreign(backend, value.value)
    return value


def _invoke(backend, func: str, args, kwargs, *, jit: bool) -> Any:
    fn = getattr(portconv, func)
    args = [_convert(backend, a) for a in args]
    kwargs = {k: _convert(backend, v) for k, v in kwargs.items()}
    if jit:
        return jit_call(fn, *args, **kwargs)
    return fn(*args, **kwargs)


def _check_message(case: Bad, err: BaseException) -> None:
    msg = str(err)
    assert msg.startswith(f"{case.func}: "), f"message does not start with the function: {msg!r}"
    for frag in case.fragments:
        if isinstance(frag, re.Pattern):
            assert frag.search(msg), f"{frag.pattern!r} not found in {msg!r}"
        else:
            assert frag in msg, f"{frag!r} not found in {msg!r}"


def test_table_is_large_and_covers_every_public_function():
    assert len(CASES) >= 45
    assert len({c.id for c in CASES}) == len(CASES)
    public = set(portconv.__all__) - {"__version__"}
    assert {c.func for c in CASES} == public
    assert {c.exc for c in CASES} == {ValueError, TypeError, MemoryError}


@pytest.fixture(autouse=True)
def _default_budget(monkeypatch):
    # the default-budget cases must not depend on the caller's environment
    monkeypatch.delenv(ENV, raising=False)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(backend, case: Bad):
    args, kwargs = case.build()
    for jit in (False, True) if backend.jit else (False,):
        with pytest.raises(case.exc) as info:
            _invoke(backend, case.func, args, kwargs, jit=jit)
        assert type(info.value) is case.exc, (
            f"{'jitted' if jit else 'eager'}: expected exactly {case.exc.__name__}, got "
            f"{type(info.value).__name__}: {info.value}"
        )
        _check_message(case, info.value)


def test_mixed_numpy_and_torch_directly():
    """The literal case of the contract: a numpy array next to a torch tensor."""
    if importlib.util.find_spec("torch") is None:
        pytest.skip("needs torch")
    import torch

    with pytest.raises(TypeError, match=r"correlate: .*in1 from 'numpy', in2 from 'torch'"):
        portconv.correlate(np.ones(5), torch.ones(3, dtype=torch.float64))
    with pytest.raises(TypeError, match=r"conv: .*input from 'torch', weight from 'numpy'"):
        portconv.conv(torch.ones((1, 1, 5, 5), dtype=torch.float64), np.ones((1, 1, 3, 3)))


# --------------------------------------------------------------------------
# MemoryError before any allocation


def test_budget_checked_before_dilating_grad_output():
    """conv_transpose / conv_input_grad must refuse from the shapes alone.

    With a 1,000-byte budget the call must raise without first building the
    stride-dilated array (which here is about 72 MB): allocations traced by
    ``tracemalloc`` (NumPy reports its buffers there) stay small.
    """
    x, w = np.ones((1, 1, 2, 2)), np.ones((1, 1, 1, 1))
    for run in (
        lambda: portconv.conv_transpose(x, w, stride=3000, workspace_bytes=1000),
        lambda: portconv.conv_input_grad(
            (1, 1, 3001, 3001), w, x, stride=3000, workspace_bytes=1000
        ),
    ):
        tracemalloc.start()
        try:
            with pytest.raises(MemoryError, match=r"budget is 1,000 bytes"):
                run()
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < 8 * 2**20, f"allocated {peak:,} bytes before refusing a 1,000-byte budget"


# --------------------------------------------------------------------------
# the environment variable


def test_env_budget_is_honoured(backend, pc, monkeypatch):
    x, w = np.ones((1, 1, 50, 50)), np.ones((1, 1, 3, 3))
    monkeypatch.setenv(ENV, "1000")
    with pytest.raises(MemoryError, match=r"conv: .*budget is 1,000 bytes"):
        pc.conv(x, w)
    with pytest.raises(MemoryError, match=r"correlate: .*budget is 1,000 bytes"):
        pc.correlate(x[0, 0], w[0, 0])
    # the keyword wins over the environment
    assert tuple(pc.conv(x, w, workspace_bytes=10**8).shape) == (1, 1, 48, 48)
    monkeypatch.setenv(ENV, str(10**8))
    assert tuple(pc.conv(x, w).shape) == (1, 1, 48, 48)
    monkeypatch.setenv(ENV, "")  # empty means unset: the default budget
    assert tuple(pc.correlate(x[0, 0], w[0, 0]).shape) == (52, 52)


@pytest.mark.parametrize("raw", ["abc", "-5", "0", "1.5e9", "4GB"])
def test_env_budget_bad_value(backend, monkeypatch, raw):
    monkeypatch.setenv(ENV, raw)
    for func, x, w in (("correlate", np.ones((6, 6)), np.ones((3, 3))), ("conv", X4, W4)):
        for jit in (False, True) if backend.jit else (False,):
            with pytest.raises(ValueError) as info:
                _invoke(backend, func, (x, w), {}, jit=jit)
            msg = str(info.value)
            assert ENV in msg and repr(raw) in msg and "positive" in msg, msg


@pytest.mark.parametrize("func", ["correlate", "conv_weight_grad"])
def test_env_budget_bad_value_names_the_function(monkeypatch, func):
    monkeypatch.setenv(ENV, "abc")
    args = (np.ones((6, 6)), np.ones((3, 3)))
    if func == "conv_weight_grad":
        args = (X4, (1, 1, 3, 3), np.ones((1, 1, 3, 3)))
    with pytest.raises(ValueError) as info:
        getattr(portconv, func)(*args)
    assert str(info.value).startswith(f"{func}: "), f"no function name in {str(info.value)!r}"


# --------------------------------------------------------------------------
# edge cases that are *not* errors


def _dtype(backend):
    return xp_dtype(backend, np.float64)


def test_empty_batch(backend, pc):
    x, w = np.ones((0, 2, 5, 5)), np.ones((3, 2, 3, 3))
    got = pc.conv(x, w, np.arange(3.0), padding=1)
    assert_close(backend, got, np.zeros((0, 3, 5, 5)), dtype=_dtype(backend), bound=0.0)
    got = pc.conv_transpose(np.ones((0, 2, 4)), np.ones((2, 3, 3)), stride=2)
    assert_close(backend, got, np.zeros((0, 3, 9)), dtype=_dtype(backend), bound=0.0)


def test_zero_input_channels_gives_bias(backend, pc):
    x, w = np.ones((2, 0, 5, 5)), np.ones((3, 0, 3, 3))
    bias = np.array([1.0, -2.0, 0.5])
    got = pc.conv(x, w, bias)
    expected = np.broadcast_to(bias[None, :, None, None], (2, 3, 3, 3))
    assert_close(backend, got, expected, dtype=_dtype(backend), bound=0.0)
    got = pc.conv(x, w)
    assert_close(backend, got, np.zeros((2, 3, 3, 3)), dtype=_dtype(backend), bound=0.0)


def test_unbatched_input(backend, pc):
    rng = np.random.default_rng(7)
    x = rng.integers(-5, 6, size=(2, 6, 5)).astype(np.float64)
    w = rng.integers(-3, 4, size=(4, 2, 3, 2)).astype(np.float64)
    bias = np.array([1.0, 2.0, 3.0, 4.0])
    batched = backend.to_numpy(pc.conv(x[None], w, bias, padding=(1, 0)))
    got = pc.conv(x, w, bias, padding=(1, 0))
    # small integers in float64: every method is exact
    assert_close(backend, got, batched[0], dtype=_dtype(backend), bound=0.0)
    got_t = pc.conv_transpose(x, np.ones((2, 3, 2, 2)))
    assert tuple(got_t.shape) == (3, 7, 6)


# --------------------------------------------------------------------------
# remembered validation (``_args.memo_plain``, ``_nn._dtypes``, ``namespace_of``)


def test_memo_plain_remembers_only_plain_arguments():
    from portconv._args import memo_plain

    seen = []

    @memo_plain
    def echo(*args):
        seen.append(args)
        return args

    plain = ("conv", (1, 2, 5, 5), ((1, 1), (0, 0)), None)
    assert echo(*plain) == plain and echo(*plain) == plain
    assert len(seen) == 1
    # equal and hashing alike, but of other types: each call validates anew
    for odd in (True, 1.0, np.int64(1), [1], (1, True)):
        echo("conv", odd)
        echo("conv", odd)
    assert len(seen) == 1 + 2 * 5


def test_memo_plain_never_remembers_an_error():
    from portconv._args import memo_plain

    seen = []

    @memo_plain
    def refuse(value):
        seen.append(value)
        raise ValueError(f"refused {value}")

    for _ in range(2):
        with pytest.raises(ValueError, match="refused 3"):
            refuse(3)
    assert seen == [3, 3]


@pytest.mark.parametrize(
    ("kwargs", "exc"),
    [
        ({"stride": True}, TypeError),
        ({"stride": 1.0}, TypeError),
        ({"groups": True}, TypeError),
        ({"padding": (1.0, 0)}, TypeError),
        ({"dilation": (1, True)}, TypeError),
        ({"groups": 2}, ValueError),
    ],
)
def test_a_remembered_call_excuses_no_bad_argument(kwargs, exc):
    """After the good call is remembered, an equal-looking bad one still raises, every time."""
    x, w = o(1, 1, 6, 6), o(1, 1, 3, 3)
    good = portconv.conv(x, w, stride=1, padding=(1, 0), dilation=1, groups=1)
    for _ in range(2):
        with pytest.raises(exc):
            portconv.conv(x, w, **{"stride": 1, "padding": (1, 0), "dilation": 1, **kwargs})
    np.testing.assert_array_equal(portconv.conv(x, w, stride=1, padding=(1, 0)), good)
    gy = o(*good.shape)
    portconv.conv_input_grad(x.shape, w, gy, padding=(1, 0))
    with pytest.raises(TypeError):
        portconv.conv_input_grad(x.shape, w, gy, padding=(1, 0), stride=True)


def test_numpy_integer_parameters_take_the_unremembered_path():
    rng = np.random.default_rng(3)
    x, w = rng.standard_normal((2, 4, 9, 9)), rng.standard_normal((6, 2, 3, 3))
    want = portconv.conv(x, w, stride=2, padding=1, groups=2)
    got = portconv.conv(x, w, stride=np.int64(2), padding=(np.int32(1), 1), groups=np.int8(2))
    np.testing.assert_array_equal(got, want)


def test_remembered_dtypes_and_namespaces_still_refuse():
    x, w = o(1, 1, 5, 5), o(1, 1, 3, 3)
    assert portconv.conv(x, w).dtype == np.float64
    assert portconv.conv(x.astype(np.float32), w.astype(np.float32)).dtype == np.float32
    for _ in range(2):
        with pytest.raises(TypeError, match="bool"):
            portconv.conv(x.astype(bool), w)
    assert portconv.conv(x.astype(np.int16), w.astype(np.int8)).dtype == np.int64
    if importlib.util.find_spec("array_api_strict") is None:
        pytest.skip("needs array_api_strict")
    import array_api_strict as xps

    for _ in range(2):
        with pytest.raises(TypeError, match="one array library"):
            portconv.conv(x, xps.asarray(w))
