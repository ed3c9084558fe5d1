"""``output_shape``: the result shape of any public function, from shapes alone."""

from __future__ import annotations

import inspect
from typing import Any

from ._args import check_choice, shape_tuple
from ._nn import _conv_geometry, _transpose_geometry
from ._plan import conv_out_size

__all__ = ["output_shape"]

_SIGNAL = {"correlate": "nd", "convolve": "nd", "correlate2d": "2d", "convolve2d": "nd"}
_CONV = {"conv": None, "conv1d": 1, "conv2d": 2, "conv3d": 3}
_NAMES = (*_SIGNAL, *_CONV, "conv_transpose")


def _defaults(func: Any) -> dict[str, Any]:
    return {
        k: v.default
        for k, v in inspect.signature(func).parameters.items()
        if v.default is not inspect.Parameter.empty
    }


def output_shape(function, in1_shape, in2_shape, /, **params):
    """The shape ``portconv.<function>`` would return, without computing it.

    Parameters
    ----------
    function : str
        One of ``'correlate'``, ``'convolve'``, ``'correlate2d'``,
        ``'convolve2d'``, ``'conv'``, ``'conv1d'``, ``'conv2d'``, ``'conv3d'``,
        ``'conv_transpose'``.
    in1_shape, in2_shape : tuple of int
        Shapes of the two array arguments (``in1``/``in2`` or
        ``input``/``weight``).
    **params
        The function's other keyword arguments that shape the result
        (``mode``; ``stride``, ``padding``, ``dilation``, ``groups``,
        ``padding_mode``, ``data_format``, ``output_padding``); ``bias_shape``
        may be given for the NN functions.

    Returns
    -------
    tuple of int
        Python ints (no overflow for huge problems).

    Raises
    ------
    TypeError, ValueError
        Exactly those the function itself raises for these shapes and
        parameters (the same validation code runs).

    See Also
    --------
    correlate, conv, conv_transpose

    Notes
    -----
    Pure Python: no array library is imported or touched, so it costs
    microseconds whatever the sizes (a terapixel problem included).

    Examples
    --------
    >>> import portconv
    >>> portconv.output_shape("correlate", (1000, 1000), (31, 31), mode="same")
    (1000, 1000)
    >>> portconv.output_shape("conv", (8, 3, 224, 224), (64, 3, 7, 7), stride=2, padding=3)
    (8, 64, 112, 112)
    """
    func = "output_shape"
    check_choice(func, "function", function, _NAMES)
    s1 = shape_tuple(function, "in1_shape", in1_shape)
    s2 = shape_tuple(function, "in2_shape", in2_shape)
    if function in _SIGNAL:
        return _signal_shape(function, s1, s2, params)
    bias_shape = params.pop("bias_shape", None)
    if function == "conv_transpose":
        from ._nn import conv_transpose

        p = {**_defaults(conv_transpose), **params}
        layout, _, _, _, _, n, _, c_out, out = _transpose_geometry(
            function,
            s1,
            s2,
            bias_shape,
            p["stride"],
            p["padding"],
            p["output_padding"],
            p["groups"],
            p["dilation"],
            p["data_format"],
        )
        return layout.user_shape((n, c_out) + out)
    from ._nn import conv

    p = {**_defaults(conv), **params}
    layout, g = _conv_geometry(
        function,
        s1,
        s2,
        bias_shape,
        p["stride"],
        p["padding"],
        p["dilation"],
        p["groups"],
        p["padding_mode"],
        p["data_format"],
        _CONV[function],
    )
    return layout.user_shape((g.batch, g.out_channels) + g.out_spatial)


def _signal_shape(function: str, s1, s2, params) -> tuple[int, ...]:
    from ._signal import _MODES, _mode_pads

    mode = params.get("mode", "full")
    check_choice(function, "mode", mode, _MODES)
    if function.endswith("2d") and (len(s1) != 2 or len(s2) != 2):
        raise ValueError(f"{function}: in1 and in2 must be 2-d, got {s1} and {s2}")
    if len(s1) != len(s2):
        raise ValueError(
            f"{function}: in1 and in2 must have the same number of dimensions, got "
            f"in1.shape={s1} and in2.shape={s2}"
        )
    if not s1:
        return ()
    for name, shape in (("in1", s1), ("in2", s2)):
        if 0 in shape:
            raise ValueError(f"{function}: {name} has zero size (shape {shape})")
    pads, _ = _mode_pads(function, mode, s1, s2, _SIGNAL[function])
    return tuple(conv_out_size(n, k, 1, 1, lo, hi) for n, k, (lo, hi) in zip(s1, s2, pads))
