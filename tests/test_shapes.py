"""``output_shape`` predicts every public function's result shape from shapes alone."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import portconv


@settings(max_examples=150, deadline=None)
@given(
    name=st.sampled_from(["correlate", "convolve", "correlate2d", "convolve2d"]),
    s1=st.lists(st.integers(1, 6), min_size=2, max_size=2),
    s2=st.lists(st.integers(1, 6), min_size=2, max_size=2),
    mode=st.sampled_from(["full", "same", "valid"]),
)
def test_signal_shapes(name, s1, s2, mode):
    a, b = np.ones(s1), np.ones(s2)
    try:
        expected = getattr(portconv, name)(a, b, mode).shape
    except ValueError as exc:
        with pytest.raises(
            ValueError,
            match=str(exc)
            .split(";")[0][:40]
            .replace("(", r"\(")
            .replace(")", r"\)")
            .replace("[", r"\["),
        ):
            portconv.output_shape(name, tuple(s1), tuple(s2), mode=mode)
        return
    assert portconv.output_shape(name, tuple(s1), tuple(s2), mode=mode) == expected


@settings(max_examples=150, deadline=None)
@given(
    nsp=st.integers(1, 3),
    groups=st.sampled_from([1, 2]),
    stride=st.integers(1, 3),
    dilation=st.integers(1, 2),
    padding=st.sampled_from([0, 1, "same", "valid"]),
    k=st.integers(1, 3),
    n=st.integers(3, 7),
    channels_last=st.booleans(),
)
def test_conv_shapes(nsp, groups, stride, dilation, padding, k, n, channels_last):
    x_shape = (2, 2 * groups) + (n,) * nsp
    w_shape = (3 * groups, 2) + (k,) * nsp
    fmt = "channels_last" if channels_last else "channels_first"
    x = np.ones(x_shape)
    if channels_last:
        x = np.moveaxis(x, 1, -1)
    kwargs = dict(stride=stride, padding=padding, dilation=dilation, groups=groups, data_format=fmt)
    try:
        expected = portconv.conv(x, np.ones(w_shape), **kwargs).shape
    except ValueError:
        with pytest.raises(ValueError, match="conv: "):
            portconv.output_shape("conv", x.shape, w_shape, **kwargs)
        return
    assert portconv.output_shape("conv", x.shape, w_shape, **kwargs) == expected


@pytest.mark.parametrize(("stride", "padding", "output_padding"), [(1, 0, 0), (2, 1, 1), (3, 2, 0)])
def test_conv_transpose_shapes(stride, padding, output_padding):
    x, w = np.ones((2, 4, 5, 6)), np.ones((4, 3, 3, 4))
    kwargs = dict(stride=stride, padding=padding, output_padding=output_padding)
    expected = portconv.conv_transpose(x, w, **kwargs).shape
    assert portconv.output_shape("conv_transpose", x.shape, w.shape, **kwargs) == expected


def test_huge_shapes_stay_python_ints():
    shape = portconv.output_shape("correlate", (10**7, 10**7), (101, 101), mode="full")
    assert shape == (10**7 + 100, 10**7 + 100)
    assert all(type(s) is int for s in shape)


def test_unknown_function():
    with pytest.raises(ValueError, match=r"output_shape: function='fft' must be one of"):
        portconv.output_shape("fft", (3,), (3,))
