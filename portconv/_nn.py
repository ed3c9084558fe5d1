"""Deep-learning convolution with ``torch.nn.functional`` semantics.

``conv`` (any number of spatial dims), ``conv_transpose`` and the explicit
vector-Jacobian products ``conv_input_grad`` / ``conv_weight_grad`` all reduce
to the one correlation core of :mod:`portconv._core`.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any

from ._args import (
    check_choice,
    check_int,
    check_out_spatial,
    conv_pads,
    int_tuple,
    memo_plain,
    shape_tuple,
)
from ._compat import (
    batch_chunks_only,
    c_contiguous,
    device_kind,
    device_of,
    is_jax_namespace,
    namespace_of,
    reshape,
)
from ._core import correlate_nd, make_plan, resolve_budget, warn_fft_nonfinite
from ._direct import (
    weight_grad_grid,
    weight_grad_phases,
    weight_grad_pointwise,
    weight_grad_taps,
)
from ._dtypes import check_numeric, compute_dtype, dtype_info, dtype_kind, remembered
from ._heap import keep_heap
from ._pad import pad_axes
from ._plan import (
    DtypeInfo,
    Geometry,
    plan_weight_grad,
    plan_weight_grad_phases,
    pointwise_weight_grad,
)
from ._transpose import input_grad

__all__ = [
    "conv",
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose",
    "conv_input_grad",
    "conv_weight_grad",
]

_PADDING_MODES = {
    "zeros": "constant",
    "reflect": "reflect",
    "replicate": "replicate",
    "circular": "circular",
    "symmetric": "symmetric",
}
_DATA_FORMATS = ("channels_first", "channels_last")
_METHODS = ("auto", "direct", "fft")


@dataclasses.dataclass(frozen=True)
class _Layout:
    """Where batch and channels are, so arrays can be moved to (N, C, *S)."""

    batched: bool
    channels_last: bool
    nsp: int

    def to_ncs(self, xp: Any, x: Any) -> Any:
        if not self.batched:
            x = xp.expand_dims(x, axis=0)
        if self.channels_last:
            x = xp.permute_dims(x, (0, x.ndim - 1) + tuple(range(1, x.ndim - 1)))
        return x

    def from_ncs(self, xp: Any, y: Any) -> Any:
        if self.channels_last:
            y = xp.permute_dims(y, (0,) + tuple(range(2, y.ndim)) + (1,))
        if not self.batched:
            y = y[0, ...]
        return y

    def ncs_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        if not self.batched:
            shape = (1,) + shape
        if self.channels_last:
            shape = (shape[0], shape[-1]) + shape[1:-1]
        return shape

    def user_shape(self, ncs: tuple[int, ...]) -> tuple[int, ...]:
        shape = ncs
        if self.channels_last:
            shape = (shape[0],) + shape[2:] + (shape[1],)
        if not self.batched:
            shape = shape[1:]
        return shape


def _layout(func: str, name: str, ndim: int, nsp: int, data_format: str, shape) -> _Layout:
    check_choice(func, "data_format", data_format, _DATA_FORMATS)
    if ndim not in (nsp + 1, nsp + 2):
        raise ValueError(
            f"{func}: {name} must have {nsp + 2} dimensions (batch, channels and "
            f"{nsp} spatial) or {nsp + 1} (unbatched) to match a weight with {nsp} "
            f"spatial dimensions, got {name}.shape={tuple(shape)}"
        )
    return _Layout(ndim == nsp + 2, data_format == "channels_last", nsp)


def _weight_nsp(func: str, weight: Any) -> int:
    if weight.ndim < 3:
        raise ValueError(
            f"{func}: weight must have at least 3 dimensions (out_channels, "
            f"in_channels/groups, *kernel), got weight.shape={tuple(weight.shape)}"
        )
    if 0 in tuple(weight.shape[2:]):
        raise ValueError(
            f"{func}: weight has a zero-size kernel, weight.shape={tuple(weight.shape)}"
        )
    return weight.ndim - 2


def _check_groups(func, groups, c_in, c_out, in_name, in_shape, w_shape, per_group_in):
    if c_in % groups:
        raise ValueError(
            f"{func}: groups={groups} must divide in_channels={c_in} ({in_name}.shape={in_shape})"
        )
    if c_out % groups:
        raise ValueError(
            f"{func}: groups={groups} must divide out_channels={c_out} (weight.shape={w_shape})"
        )
    if per_group_in * groups != c_in:
        raise ValueError(
            f"{func}: {in_name} has {c_in} channels but weight expects "
            f"{per_group_in} per group x groups={groups} = {per_group_in * groups} "
            f"({in_name}.shape={in_shape}, weight.shape={w_shape})"
        )


#: (func, namespace, (name, dtype) of each array) -> ``_dtypes``'s answer.
#: The rules read dtypes only; answers for integer arrays are not kept, since
#: JAX's default integer dtype follows its x64 switch.
_DTYPE_ANSWERS: dict[tuple[Any, ...], tuple[Any, DtypeInfo]] = {}


def _dtypes(func: str, xp: Any, arrays: dict[str, Any]):
    present = tuple((name, a.dtype) for name, a in arrays.items() if a is not None)
    integral = any(dtype_kind(xp, dt) == "int" for _, dt in present)
    compute = functools.partial(_dtypes_checked, func, xp, arrays)
    return remembered(_DTYPE_ANSWERS, (func, xp) + present, compute, keep=not integral)


def _dtypes_checked(func: str, xp: Any, arrays: dict[str, Any]):
    kinds = {name: check_numeric(func, name, xp, a) for name, a in arrays.items() if a is not None}
    names = [n for n in arrays if arrays[n] is not None]
    first, second = names[0], names[1]
    dt = compute_dtype(xp, arrays[first], arrays[second], kinds[first], kinds[second])
    bias = arrays.get("bias")
    if bias is not None:
        if kinds["bias"] != "int" and xp.isdtype(dt, "integral"):
            raise TypeError(
                f"{func}: bias has floating dtype {bias.dtype} but the input and weight are "
                f"integers; cast them explicitly"
            )
        if kinds["bias"] == "complex" and not xp.isdtype(dt, "complex floating"):
            raise TypeError(f"{func}: bias is complex ({bias.dtype}) but the input is not")
    info = dtype_info(xp, dt, tuple(a.dtype for a in arrays.values() if a is not None))
    return dt, info


def _cast(xp: Any, a: Any, dt: Any) -> Any:
    return a if a.dtype == dt else xp.astype(a, dt)


def _add_bias(xp: Any, y: Any, bias: Any, c_out: int, nsp: int) -> Any:
    if bias is None:
        return y
    return y + reshape(xp, _cast(xp, bias, y.dtype), (1, c_out) + (1,) * nsp)


def _check_bias(func: str, bias_shape: tuple[int, ...] | None, c_out: int) -> None:
    if bias_shape is not None and bias_shape != (c_out,):
        raise ValueError(
            f"{func}: bias must have shape ({c_out},) (one value per output "
            f"channel), got bias.shape={bias_shape}"
        )


def conv(
    input,
    weight,
    bias=None,
    stride=1,
    padding=0,
    dilation=1,
    groups=1,
    *,
    padding_mode="zeros",
    data_format="channels_first",
    method="auto",
    workspace_bytes=None,
):
    """N-d convolution layer (``torch.nn.functional.conv1d/2d/3d`` for any rank).

    Cross-correlates ``input`` with ``weight`` as deep-learning libraries
    do (no kernel flip, no conjugation):
    ``out[n, o, p] = bias[o] + sum_{c, t} x_pad[n, g*Cg + c, p*stride + t*dilation] * weight[o, c, t]``.

    Parameters
    ----------
    input : array
        ``(N, C_in, *spatial)`` or unbatched ``(C_in, *spatial)``; with
        ``data_format='channels_last'``, ``(N, *spatial, C_in)``.
    weight : array
        ``(C_out, C_in // groups, *kernel)`` (torch layout) for every data
        format; the number of spatial dims is ``weight.ndim - 2``.
    bias : array, optional
        ``(C_out,)``.
    stride, dilation : int or tuple of int, optional
        One value, or one per spatial dim; ``>= 1``.
    padding : int, tuple, 'valid' or 'same', optional
        An int; one int per dim; one ``(low, high)`` pair per dim
        (asymmetric, which torch cannot do); ``'valid'`` (none); ``'same'``:
        ``out = ceil(n / stride)`` with the odd pixel on the high side, which
        is torch's rule for stride 1 and TensorFlow/XLA's ``SAME`` for stride
        > 1 (torch refuses that case).
    groups : int, optional
        Divides both channel counts; ``groups = C_in`` is depthwise.
    padding_mode : {'zeros', 'reflect', 'replicate', 'circular', 'symmetric'}
        torch's names and meanings; ``symmetric`` mirrors including the edge
        (NumPy's meaning), which torch lacks.  Pads wider than the input
        repeat the index map (NumPy's behaviour; torch raises).
    data_format : {'channels_first', 'channels_last'}
        Layout of ``input`` and of the result.
    method : {'auto', 'direct', 'fft'}
        ``auto`` chooses from shapes, dtypes, stride and device kind only.
    workspace_bytes : int, optional
        Budget for the extra memory of this call (default
        ``$PORTCONV_WORKSPACE_BYTES`` or 4 GiB).

    Returns
    -------
    array
        ``(N, C_out, *out)`` (or channels-last / unbatched like ``input``), on
        the input's device, dtype ``result_type(input, weight)`` (integers:
        the default integer dtype, exact).

    Raises
    ------
    TypeError
        Non-arrays, mixed libraries, bool dtypes, non-int stride/padding/
        dilation/groups, floating bias with integer input.
    ValueError
        Rank or channel mismatches (naming both shapes and ``groups``),
        ``groups`` not dividing the channels, non-positive stride, dilation or
        groups, negative padding, unknown strings, a kernel larger than the
        padded input (naming the computed output size), a wrong bias length,
        a zero-size kernel.
    MemoryError
        When no strategy fits ``workspace_bytes``.

    See Also
    --------
    torch.nn.functional.conv2d : the semantics followed.
    jax.lax.conv_general_dilated : for asymmetric padding and 'same' with stride.
    conv_transpose, conv_input_grad, conv_weight_grad

    Notes
    -----
    Complex inputs are not conjugated (as torch and ``jax.lax``).  Integer
    inputs are exact.  An empty batch or ``C_in = 0`` gives the right empty
    or bias-only output.  Strategies: broadcast multiply-add per tap
    (depthwise), a banded ``matmul`` per kernel row (depthwise; along the
    kernel's longest axis, stride included), one ``matmul`` per tap or per
    kernel row (dense), tiled im2col (stacked by output window where a
    sample has fewer outputs than taps), or FFT; the direct ones cost
    ``N*C_out*prod(out)*C_in/groups*prod(kernel)`` multiply-adds, with a
    workspace of about one padded input
    plus two outputs (im2col: ``prod(kernel)`` times the input, tiled to the
    budget).  The result may be a channels-first view of channels-last or
    channel-major memory (NumPy's banded depthwise form, and its im2col over
    few positions per sample, which runs the batch as one ``matmul``).
    Differentiable with ``jax.grad`` and torch autograd.

    Examples
    --------
    >>> import array_api_strict as xp
    >>> import portconv
    >>> x = reshape(xp, xp.arange(16.), (1, 1, 4, 4))
    >>> w = xp.ones((2, 1, 3, 3))
    >>> portconv.conv(x, w, padding="same", stride=2).shape
    (1, 2, 2, 2)
    """
    func = "conv"
    return _conv(
        func,
        input,
        weight,
        bias,
        stride,
        padding,
        dilation,
        groups,
        padding_mode,
        data_format,
        method,
        workspace_bytes,
        None,
    )


@memo_plain
def _conv_geometry(
    func,
    in_shape,
    w_shape,
    bias_shape,
    stride,
    padding,
    dilation,
    groups,
    padding_mode,
    data_format,
    expect_nsp=None,
):
    """Validate a ``conv`` call from shapes and parameters alone.

    Returns the layout of ``input`` and the channels-first geometry; shared by
    :func:`conv` and :func:`output_shape`, so both raise the same errors.
    """
    if len(w_shape) < 3:
        raise ValueError(
            f"{func}: weight must have at least 3 dimensions (out_channels, "
            f"in_channels/groups, *kernel), got weight.shape={w_shape}"
        )
    if 0 in w_shape[2:]:
        raise ValueError(f"{func}: weight has a zero-size kernel, weight.shape={w_shape}")
    nsp = len(w_shape) - 2
    if expect_nsp is not None and nsp != expect_nsp:
        raise ValueError(
            f"{func}: weight must have {expect_nsp + 2} dimensions (out_channels, "
            f"in_channels/groups, {expect_nsp} kernel dims), got weight.shape={w_shape}"
        )
    layout = _layout(func, "input", len(in_shape), nsp, data_format, in_shape)
    check_choice(func, "padding_mode", padding_mode, tuple(_PADDING_MODES))
    stride_t = int_tuple(func, "stride", stride, nsp, 1)
    dilation_t = int_tuple(func, "dilation", dilation, nsp, 1)
    groups = check_int(func, "groups", groups, 1)
    ncs = layout.ncs_shape(in_shape)
    n, c_in, spatial = ncs[0], ncs[1], ncs[2:]
    c_out, kernel = w_shape[0], w_shape[2:]
    _check_groups(func, groups, c_in, c_out, "input", in_shape, w_shape, w_shape[1])
    _check_bias(func, bias_shape, c_out)
    pads = conv_pads(func, padding, spatial, kernel, stride_t, dilation_t)
    check_out_spatial(func, spatial, kernel, stride_t, dilation_t, pads, in_shape)
    g = Geometry(n, c_in, c_out, groups, spatial, kernel, stride_t, dilation_t, pads)
    return layout, g


def _conv(
    func,
    input,
    weight,
    bias,
    stride,
    padding,
    dilation,
    groups,
    padding_mode,
    data_format,
    method,
    workspace_bytes,
    expect_nsp,
):
    arrays = {"input": input, "weight": weight}
    if bias is not None:
        arrays["bias"] = bias
    xp = namespace_of(func, **arrays)
    dt, info = _dtypes(func, xp, {"input": input, "weight": weight, "bias": bias})
    check_choice(func, "method", method, _METHODS)
    budget = resolve_budget(func, workspace_bytes)
    layout, g = _conv_geometry(
        func,
        tuple(input.shape),
        tuple(weight.shape),
        None if bias is None else tuple(bias.shape),
        stride,
        padding,
        dilation,
        groups,
        padding_mode,
        data_format,
        expect_nsp,
    )
    n, c_in, c_out, nsp, out = g.batch, g.in_channels, g.out_channels, g.ndim, g.out_spatial
    x = layout.to_ncs(xp, _cast(xp, input, dt))
    w = _cast(xp, weight, dt)
    if n == 0 or c_in == 0 or c_out == 0:
        y = xp.zeros((n, c_out) + out, dtype=dt, device=device_of(input))
    else:
        zeros = padding_mode == "zeros"
        plan = make_plan(func, xp, x, g, method, info, budget, zero_pads=zeros)
        warn_fft_nonfinite(func, xp, plan, method, input=x, weight=w)
        y = correlate_nd(xp, x, w, plan, pad_mode=_PADDING_MODES[padding_mode])
    y = _add_bias(xp, y, bias, c_out, nsp)
    return layout.from_ncs(xp, y)


def _conv_fixed(nsp: int):
    name = f"conv{nsp}d"

    def fixed(
        input,
        weight,
        bias=None,
        stride=1,
        padding=0,
        dilation=1,
        groups=1,
        *,
        padding_mode="zeros",
        data_format="channels_first",
        method="auto",
        workspace_bytes=None,
    ):
        return _conv(
            name,
            input,
            weight,
            bias,
            stride,
            padding,
            dilation,
            groups,
            padding_mode,
            data_format,
            method,
            workspace_bytes,
            nsp,
        )

    fixed.__name__ = fixed.__qualname__ = name
    fixed.__doc__ = (
        f"{nsp}-d convolution (``torch.nn.functional.{name}``): :func:`conv` with a "
        f"check that ``weight`` has {nsp} spatial dimensions.\n\n"
        "Parameters, returns, raises and notes are those of :func:`conv`.\n\n"
        "Examples\n--------\n"
        ">>> import array_api_strict as xp\n>>> import portconv\n"
        f">>> portconv.{name}(xp.ones((1, 2) + (5,) * {nsp}), xp.ones((3, 2) + (3,) * {nsp})).shape\n"
        f"{(1, 3) + (3,) * nsp}\n"
    )
    return fixed


conv1d = _conv_fixed(1)
conv2d = _conv_fixed(2)
conv3d = _conv_fixed(3)


@memo_plain
def _transpose_geometry(
    func,
    in_shape,
    w_shape,
    bias_shape,
    stride,
    padding,
    output_padding,
    groups,
    dilation,
    data_format,
):
    """Validate a ``conv_transpose`` call from shapes alone (also for :func:`output_shape`)."""
    if len(w_shape) < 3:
        raise ValueError(
            f"{func}: weight must have at least 3 dimensions (in_channels, "
            f"out_channels/groups, *kernel), got weight.shape={w_shape}"
        )
    if 0 in w_shape[2:]:
        raise ValueError(f"{func}: weight has a zero-size kernel, weight.shape={w_shape}")
    nsp = len(w_shape) - 2
    layout = _layout(func, "input", len(in_shape), nsp, data_format, in_shape)
    stride_t = int_tuple(func, "stride", stride, nsp, 1)
    dilation_t = int_tuple(func, "dilation", dilation, nsp, 1)
    out_pad = int_tuple(func, "output_padding", output_padding, nsp, 0)
    groups = check_int(func, "groups", groups, 1)
    ncs = layout.ncs_shape(in_shape)
    n, c_in, spatial = ncs[0], ncs[1], ncs[2:]
    kernel = w_shape[2:]
    if w_shape[0] != c_in:
        raise ValueError(
            f"{func}: weight.shape[0]={w_shape[0]} must equal the input channels "
            f"{c_in} (input.shape={in_shape}, weight.shape={w_shape}; transposed "
            f"weights are (C_in, C_out/groups, *kernel))"
        )
    if c_in % groups:
        raise ValueError(
            f"{func}: groups={groups} must divide in_channels={c_in} (input.shape={in_shape})"
        )
    c_out = w_shape[1] * groups
    _check_bias(func, bias_shape, c_out)
    pads = conv_pads(func, padding, spatial, kernel, stride_t, dilation_t, allow_strings=False)
    for op, s, d in zip(out_pad, stride_t, dilation_t):
        if op >= max(s, d):
            raise ValueError(
                f"{func}: output_padding={out_pad} must be smaller than max(stride, "
                f"dilation) in every dimension (stride={stride_t}, dilation={dilation_t})"
            )
    out = tuple(
        (m - 1) * s - lo - hi + d * (k - 1) + op + 1
        for m, s, (lo, hi), d, k, op in zip(spatial, stride_t, pads, dilation_t, kernel, out_pad)
    )
    if any(o < 1 for o in out):
        raise ValueError(
            f"{func}: the computed output size {out} is not positive (input.shape="
            f"{in_shape}, kernel={kernel}, stride={stride_t}, padding={pads})"
        )
    return layout, groups, stride_t, dilation_t, pads, n, c_in, c_out, out


def conv_transpose(
    input,
    weight,
    bias=None,
    stride=1,
    padding=0,
    output_padding=0,
    groups=1,
    dilation=1,
    *,
    data_format="channels_first",
    method="auto",
    workspace_bytes=None,
):
    """Transposed convolution (``torch.nn.functional.conv_transpose1d/2d/3d``, any rank).

    The adjoint of :func:`conv` with respect to its input: each input pixel
    scatters ``weight`` into the output at ``stride`` spacing.

    Parameters
    ----------
    input : array
        ``(N, C_in, *spatial)`` or unbatched ``(C_in, *spatial)``;
        channels-last with ``data_format='channels_last'``.
    weight : array
        ``(C_in, C_out // groups, *kernel)`` (torch's transposed layout).
    bias : array, optional
        ``(C_out,)``.
    stride, dilation : int or tuple of int, optional
    padding : int, tuple of int or of (low, high) pairs, optional
        Removes ``dilation*(k-1) - padding`` ... as in torch: the output is
        ``(n-1)*stride - low - high + dilation*(k-1) + output_padding + 1``.
    output_padding : int or tuple of int, optional
        Extra size on the high side, each ``< max(stride, dilation)``.
    groups : int, optional
    data_format : {'channels_first', 'channels_last'}
    method : {'auto', 'direct', 'fft'}
    workspace_bytes : int, optional

    Returns
    -------
    array
        ``(N, C_out, *out)`` like ``input``'s layout, on its device.

    Raises
    ------
    TypeError, ValueError, MemoryError
        As in :func:`conv`; also ``output_padding`` too large, and an output
        size below 1.

    See Also
    --------
    torch.nn.functional.conv_transpose2d : the semantics followed.
    conv, conv_input_grad

    Notes
    -----
    Computed as the input gradient of :func:`conv`.  Without dilation, each
    of the ``prod(stride)`` output phases is a stride-1 correlation of the
    input with its part of the kernel (the phases sharing a kernel shape in
    one), so it does the multiply-adds of the scatter form, plus one copy
    that interleaves the phases.  A strided axis that is also dilated makes
    it dilate the input by ``stride`` with zeros and correlate with the
    flipped kernel: ``prod(stride)`` times the multiply-adds.  On NumPy-like
    CPU libraries, for up to 512 multiply-adds per output, the phases are
    computed channels-last and the result is a channels-first view of
    channels-last memory (its interleave then copies runs of
    ``stride * channels`` values: NumPy on an AMD EPYC VM ran the 8x64x28^2
    -> 32 4x4 stride-2 layer in 4.6 against 7.9 ms with single values).  No
    conjugation of complex weights.

    Examples
    --------
    >>> import array_api_strict as xp
    >>> import portconv
    >>> portconv.conv_transpose(xp.ones((1, 4, 5, 5)), xp.ones((4, 2, 4, 4)),
    ...                         stride=2, padding=1).shape
    (1, 2, 10, 10)
    """
    func = "conv_transpose"
    arrays = {"input": input, "weight": weight}
    if bias is not None:
        arrays["bias"] = bias
    xp = namespace_of(func, **arrays)
    dt, info = _dtypes(func, xp, {"input": input, "weight": weight, "bias": bias})
    check_choice(func, "method", method, _METHODS)
    budget = resolve_budget(func, workspace_bytes)
    layout, groups, stride_t, dilation_t, pads, n, c_in, c_out, out = _transpose_geometry(
        func,
        tuple(input.shape),
        tuple(weight.shape),
        None if bias is None else tuple(bias.shape),
        stride,
        padding,
        output_padding,
        groups,
        dilation,
        data_format,
    )
    nsp = len(out)
    x = layout.to_ncs(xp, _cast(xp, input, dt))
    w = _cast(xp, weight, dt)
    if n == 0 or c_in == 0 or c_out == 0:
        y = xp.zeros((n, c_out) + out, dtype=dt, device=device_of(input))
    else:
        # the forward conv this is the input gradient of: weight (C_in, C_out/G, *k)
        y = input_grad(
            xp, x, w, out, stride_t, dilation_t, pads, groups, info, budget, func, method
        )
    y = _add_bias(xp, y, bias, c_out, nsp)
    return layout.from_ncs(xp, y)


@memo_plain
def _grad_setup(func, in_shape_ncs, w_shape, stride, padding, dilation, groups, gy_shape):
    nsp = len(w_shape) - 2
    stride_t = int_tuple(func, "stride", stride, nsp, 1)
    dilation_t = int_tuple(func, "dilation", dilation, nsp, 1)
    groups = check_int(func, "groups", groups, 1)
    n, c_in, spatial = in_shape_ncs[0], in_shape_ncs[1], in_shape_ncs[2:]
    c_out, kernel = w_shape[0], w_shape[2:]
    if 0 in kernel:
        raise ValueError(
            f"{func}: weight_shape={w_shape} has a zero-size kernel; every kernel size must be >= 1"
        )
    _check_groups(func, groups, c_in, c_out, "input", in_shape_ncs, w_shape, w_shape[1])
    pads = conv_pads(func, padding, spatial, kernel, stride_t, dilation_t)
    out = check_out_spatial(func, spatial, kernel, stride_t, dilation_t, pads, in_shape_ncs)
    expect = (n, c_out) + out
    if tuple(gy_shape) != expect:
        raise ValueError(
            f"{func}: grad_output.shape={tuple(gy_shape)} must be the forward output shape {expect}"
        )
    return stride_t, dilation_t, groups, pads, out


def _grad_layout(func, nsp, shape):
    if len(shape) not in (nsp + 1, nsp + 2):
        raise ValueError(
            f"{func}: input_shape={shape} must have {nsp + 2} entries (batch, "
            f"channels, {nsp} spatial) or {nsp + 1} (unbatched)"
        )
    return _Layout(len(shape) == nsp + 2, False, nsp)


def conv_input_grad(
    input_shape,
    weight,
    grad_output,
    stride=1,
    padding=0,
    dilation=1,
    groups=1,
    *,
    method="auto",
    workspace_bytes=None,
):
    """Gradient of :func:`conv` with respect to its input (``torch.nn.grad.conv2d_input``).

    Parameters
    ----------
    input_shape : tuple of int
        Shape of the forward ``input`` (channels-first, batched or not).
    weight : array
        The forward weight ``(C_out, C_in // groups, *kernel)``.
    grad_output : array
        Gradient of the loss with respect to the forward output.
    stride, padding, dilation, groups
        As given to :func:`conv` (every padding form, ``'same'``, ``'valid'``
        and pairs included; zero padding).
    method : {'auto', 'direct', 'fft'}
    workspace_bytes : int, optional

    Returns
    -------
    array
        ``input_shape``-shaped gradient, on the arrays' device.

    Raises
    ------
    TypeError, ValueError, MemoryError
        As in :func:`conv`; also a ``grad_output`` whose shape is not the
        forward output shape.

    See Also
    --------
    torch.nn.grad.conv2d_input : the semantics followed.
    conv_weight_grad, conv_transpose

    Notes
    -----
    For complex arrays this is the gradient torch's autograd returns
    (``conv_transpose`` with the conjugated weight).  Cost as
    :func:`conv_transpose`.  Together with :func:`conv_weight_grad` it lets
    NumPy and CuPy users train without an autodiff library.

    Examples
    --------
    >>> import array_api_strict as xp
    >>> import portconv
    >>> gy = xp.ones((1, 2, 3, 3))
    >>> portconv.conv_input_grad((1, 1, 5, 5), xp.ones((2, 1, 3, 3)), gy).shape
    (1, 1, 5, 5)
    """
    func = "conv_input_grad"
    xp = namespace_of(func, weight=weight, grad_output=grad_output)
    dt, info = _dtypes(func, xp, {"weight": weight, "grad_output": grad_output})
    shape = shape_tuple(func, "input_shape", input_shape)
    nsp = _weight_nsp(func, weight)
    layout = _grad_layout(func, nsp, shape)
    check_choice(func, "method", method, _METHODS)
    budget = resolve_budget(func, workspace_bytes)
    ncs = layout.ncs_shape(shape)
    gy = (
        layout.to_ncs(xp, _cast(xp, grad_output, dt))
        if grad_output.ndim == nsp + (2 if layout.batched else 1)
        else None
    )
    if gy is None:
        raise ValueError(
            f"{func}: grad_output.shape={tuple(grad_output.shape)} must be the forward "
            f"output shape (rank {nsp + (2 if layout.batched else 1)})"
        )
    stride_t, dilation_t, groups, pads, _ = _grad_setup(
        func, ncs, tuple(weight.shape), stride, padding, dilation, groups, tuple(gy.shape)
    )
    w = _cast(xp, weight, dt)
    if xp.isdtype(dt, "complex floating"):
        w = xp.conj(w)
    if 0 in ncs or 0 in tuple(gy.shape):
        gx = xp.zeros(ncs, dtype=dt, device=device_of(grad_output))
    else:
        gx = input_grad(
            xp, gy, w, ncs[2:], stride_t, dilation_t, pads, groups, info, budget, func, method
        )
    return layout.from_ncs(xp, gx)


def conv_weight_grad(
    input,
    weight_shape,
    grad_output,
    stride=1,
    padding=0,
    dilation=1,
    groups=1,
    *,
    workspace_bytes=None,
):
    """Gradient of :func:`conv` with respect to its weight (``torch.nn.grad.conv2d_weight``).

    Parameters
    ----------
    input : array
        The forward input ``(N, C_in, *spatial)`` or unbatched.
    weight_shape : tuple of int
        ``(C_out, C_in // groups, *kernel)``.
    grad_output : array
        Gradient of the loss with respect to the forward output.
    stride, padding, dilation, groups
        As given to :func:`conv` (every padding form; zero padding).
    workspace_bytes : int, optional

    Returns
    -------
    array
        ``weight_shape``-shaped gradient.

    Raises
    ------
    TypeError, ValueError, MemoryError
        As in :func:`conv_input_grad`.

    See Also
    --------
    torch.nn.grad.conv2d_weight : the semantics followed.
    conv_input_grad

    Notes
    -----
    Stride 1 (real inputs): the input and ``grad_output`` are copied once
    into channel-major grids; on CPUs the positions are then contracted in
    chunks, each one matmul of every tap's slice stacked (``C_in*prod(kernel)``
    rows, a stack of 2-8 MB) against the chunk of ``grad_output``, the
    chunks' products summed; on GPUs one matmul per tap over all positions.
    The 8x64x56^2 3x3 layer on a 2-core AVX-512 CPU: NumPy 23 -> 19 ms,
    jitted JAX 62 -> 18 ms against one product per tap.  With NumPy-like
    libraries a chunk stacks the last kernel axis's taps only, where that
    stack is deep enough (``_plan.plan_weight_grad``).  Other strides on
    eager CPU libraries (dilation 1 on the strided axes, more than one
    tap): one more copy splits the padded input into its stride phases, as
    channels, and each tap becomes a contiguous slice of one phase on a
    flat grid as above (the 7x7 stride-2 stem 8x3x224^2 -> 64: 119 -> 35
    ms on NumPy).  One tap without padding (1x1 layers, at least 128
    output positions a sample, eager libraries): each sample's product over
    its positions, one batched matmul, summed over the samples, with no
    channel-major copies (MobileNetV2's 8x24x56^2 -> 144: 6.0 -> 2.1 ms on
    NumPy).  Otherwise, and for integers: one contraction
    per tap over a strided copy of the input.  Complex: torch autograd's
    convention (the input is conjugated).

    Examples
    --------
    >>> import array_api_strict as xp
    >>> import portconv
    >>> x = xp.ones((1, 1, 5, 5))
    >>> portconv.conv_weight_grad(x, (2, 1, 3, 3), xp.ones((1, 2, 3, 3)))[0, 0, ...]
    Array([[9., 9., 9.],
           [9., 9., 9.],
           [9., 9., 9.]], dtype=array_api_strict.float64)
    """
    func = "conv_weight_grad"
    xp = namespace_of(func, input=input, grad_output=grad_output)
    dt, info = _dtypes(func, xp, {"input": input, "grad_output": grad_output})
    wshape = shape_tuple(func, "weight_shape", weight_shape)
    if len(wshape) < 3:
        raise ValueError(
            f"{func}: weight_shape={wshape} must have at least 3 entries "
            f"(out_channels, in_channels/groups, *kernel)"
        )
    nsp = len(wshape) - 2
    layout = _layout(func, "input", input.ndim, nsp, "channels_first", input.shape)
    budget = resolve_budget(func, workspace_bytes)
    ncs = layout.ncs_shape(tuple(input.shape))
    if grad_output.ndim != input.ndim:
        raise ValueError(
            f"{func}: grad_output.shape={tuple(grad_output.shape)} must have the rank "
            f"of the forward output ({input.ndim})"
        )
    gy = layout.to_ncs(xp, _cast(xp, grad_output, dt))
    stride_t, dilation_t, groups, pads, out = _grad_setup(
        func, ncs, wshape, stride, padding, dilation, groups, tuple(gy.shape)
    )
    if 0 in ncs or 0 in tuple(gy.shape):
        return xp.zeros(wshape, dtype=dt, device=device_of(input))
    x = _cast(xp, input, dt)
    x = layout.to_ncs(xp, x)
    if xp.isdtype(dt, "complex floating"):
        x = xp.conj(x)
    g = Geometry(ncs[0], ncs[1], wshape[0], groups, ncs[2:], wshape[2:], stride_t, dilation_t, pads)
    grid = info.kind != "int" and all(s == 1 for s in g.stride)
    phases = None
    if info.kind != "int" and not grid:
        phases = plan_weight_grad_phases(
            g, info.itemsize, device_kind(x), is_jax_namespace(xp), info.kind == "real"
        )
    per_tap = g.batch * g.in_channels * math.prod(out) * info.itemsize
    need = (
        per_tap * 2
        + math.prod(wshape) * info.itemsize * 2
        + g.batch * g.in_channels * math.prod(g.padded_spatial) * info.itemsize
    )
    if phases is not None:  # the padded input and its phases, copied
        need += (
            2 * g.batch * phases[0].in_channels * math.prod(phases[0].in_spatial) * info.itemsize
        )
    if need > budget:
        raise MemoryError(
            f"{func}: needs {need:,} bytes of workspace but the budget is {budget:,} "
            f"bytes; raise it with workspace_bytes= or $PORTCONV_WORKSPACE_BYTES"
        )
    keep_heap(xp, x, need)  # as correlate_nd does: freed temporaries reused
    x, gy = batch_chunks_only(x), batch_chunks_only(gy)
    x, gy = c_contiguous(xp, x), c_contiguous(xp, gy)
    if pointwise_weight_grad(g, info.kind == "int", is_jax_namespace(xp)):
        return weight_grad_pointwise(xp, x, gy, g)
    if grid:
        wplan = plan_weight_grad(
            g, info.itemsize, device_kind(x), is_jax_namespace(xp), info.kind == "real"
        )
        return weight_grad_grid(xp, x, gy, g, *wplan)
    if phases is not None:
        return weight_grad_phases(xp, x, gy, g, *phases)
    xpad = batch_chunks_only(pad_axes(xp, x, pads, "constant"))
    return weight_grad_taps(xp, xpad, gy, g, info.kind == "int")
