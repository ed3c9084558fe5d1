"""Channels, 1x1 convolutions, stride and padding with ``portconv.conv2d``.

Run: ``python examples/channels_stride_padding.py --backend numpy|jax|torch|cupy|dask``
"""

from __future__ import annotations

import math
import sys

import _backend

import portconv


def multi_input(xp):
    """Two input channels: correlate each with its own kernel slice, then add."""
    x = xp.asarray(
        [
            [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0, 7.0, 8.0]],
            [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]],
        ]
    )  # (in_channels=2, 3, 3)
    k = xp.asarray([[[0.0, 1.0], [2.0, 3.0]], [[1.0, 2.0], [3.0, 4.0]]])  # (2, 2, 2)
    # weight layout: (out_channels, in_channels, kh, kw); input: (channels, h, w)
    y = portconv.conv2d(x, xp.reshape(k, (1, 2, 2, 2)))
    print("1. Two input channels, one output channel: per-channel results are summed")
    print(_backend.show(y[0, ...]))
    return x, k


def multi_output(xp, x, k):
    """Three output channels: one kernel (of two input slices) per output channel."""
    w = xp.stack([k, k + 1, k + 2])  # (out_channels=3, in_channels=2, 2, 2)
    y = portconv.conv2d(x, w)
    print(f"\n2. Three output channels: weight {tuple(w.shape)} -> output {tuple(y.shape)}")
    for c in range(3):
        print(f"   output channel {c}:")
        print(_backend.show(y[c, ...], indent="      "))


def one_by_one(xp):
    """A 1x1 convolution mixes channels at each pixel: a matrix product."""
    x = xp.reshape(xp.arange(27, dtype=xp.float64) / 10, (3, 3, 3))  # 3 channels, 3x3
    w = xp.reshape(xp.arange(6, dtype=xp.float64) - 2.5, (2, 3, 1, 1))  # 3 -> 2 channels
    y = portconv.conv2d(x, w)
    # the same as (2 x 3 matrix) @ (3 channels x 9 pixels), reshaped back
    y_matmul = xp.reshape(xp.reshape(w, (2, 3)) @ xp.reshape(x, (3, 9)), (2, 3, 3))
    diff = float(xp.max(xp.abs(y - y_matmul)))
    print("\n3. A 1x1 convolution is a matrix product over channels")
    print(f"   conv2d(x, w) vs reshape(w, (2, 3)) @ reshape(x, (3, 9)): max |diff| = {diff:.1e}")
    return diff


def expected_size(n: int, k: int, s: int, d: int, padding) -> int:
    """The textbook output size of one spatial dimension."""
    if padding == "same":
        return math.ceil(n / s)
    p = 0 if padding == "valid" else padding
    return (n + 2 * p - d * (k - 1) - 1) // s + 1


def shape_table(xp) -> bool:
    """Output sizes under stride, dilation and padding, from portconv and the formulas."""
    print("\n4. Output size: floor((n + 2p - d(k-1) - 1) / s) + 1, and ceil(n / s) for 'same'")
    print("    n  k  s  d  padding  portconv  formula")
    all_ok = True
    for n, k, s, d, padding in [
        (8, 3, 1, 1, 0),
        (8, 3, 1, 1, 1),
        (8, 3, 2, 1, 1),
        (8, 3, 3, 1, 0),
        (8, 3, 1, 2, 2),
        (7, 4, 2, 1, "valid"),
        (7, 3, 1, 1, "same"),
        (7, 3, 2, 1, "same"),
        (8, 5, 3, 1, "same"),
    ]:

        def layer(x, w, s=s, padding=padding, d=d):
            return portconv.conv2d(x, w, stride=s, padding=padding, dilation=d)

        got = _backend.output_shape(layer, xp.ones((1, 1, n, n)), xp.ones((1, 1, k, k)))[-1]
        want = expected_size(n, k, s, d, padding)
        all_ok = all_ok and got == want
        print(
            f"   {n:2d} {k:2d} {s:2d} {d:2d}  {padding!s:7}  {got:8d}  {want:7d}"
            f"  {'ok' if got == want else 'MISMATCH'}"
        )
    return all_ok


def main(argv: list[str] | None = None) -> int:
    args = _backend.parser(__doc__).parse_args(argv)
    xp = _backend.load(args.backend)
    print(f"backend: {args.backend}\n")
    x, k = multi_input(xp)
    multi_output(xp, x, k)
    diff = one_by_one(xp)
    ok = shape_table(xp)
    return 0 if ok and diff < 1e-12 else 1


if __name__ == "__main__":
    sys.exit(main())
