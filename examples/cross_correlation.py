"""Cross-correlation step by step: one window, a sliding kernel, and convolution.

Run: ``python examples/cross_correlation.py --backend numpy|jax|torch|cupy|dask``
"""

from __future__ import annotations

import sys

import _backend

import portconv


def worked_example(xp) -> None:
    """One 3x3 window times a 3x3 kernel, elementwise, summed: one number."""
    kernel = xp.asarray([[1.0, 0.0, -1.0]] * 3)  # +1 on the left, -1 on the right
    window = xp.asarray([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]])
    # mode="valid": only positions where the kernel fits inside the input;
    # here there is exactly one, so the output is 1x1
    value = float(portconv.correlate(window, kernel, mode="valid")[0, 0])
    print("1. The worked example: window * kernel, summed")
    print(_backend.show(window))
    print("   kernel (vertical edges):")
    print(_backend.show(kernel))
    print(f"   result: {value:g}   (each row adds left - right = -2, three rows: -6)")
    # the window most tutorials copy, from a 6x6 lecture image; it gives -5
    tutorial = xp.asarray([[3.0, 0.0, 1.0], [1.0, 5.0, 8.0], [2.0, 7.0, 2.0]])
    value = float(portconv.correlate(tutorial, kernel, mode="valid")[0, 0])
    print(f"   the lecture's window [[3,0,1],[1,5,8],[2,7,2]] gives {value:g}")
    print("   (3 + 1 + 2 on the left minus 1 + 8 + 2 on the right)")


def sliding(xp) -> None:
    """A 3x3 kernel visits every 3x3 window of a 5x5 input, row by row."""
    x = xp.asarray([[float((3 * i + j * j) % 7) for j in range(5)] for i in range(5)])
    kernel = xp.asarray([[1.0, 0.0, -1.0]] * 3)
    y = portconv.correlate(x, kernel, mode="valid")  # (5 - 3 + 1) x (5 - 3 + 1)
    print("\n2. Sliding a 3x3 kernel over a 5x5 input (left to right, top to bottom)")
    print(_backend.show(x))
    for i in range(3):
        for j in range(3):
            by_hand = float(xp.sum(x[i : i + 3, j : j + 3] * kernel))
            print(
                f"   window at row {i}, column {j}: portconv {float(y[i, j]):5g}   by hand {by_hand:5g}"
            )
    print("   the 3x3 output:")
    print(_backend.show(y))


def versus_convolution(xp) -> None:
    """Convolution is cross-correlation with the kernel flipped in every axis."""
    x = xp.asarray([[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0, 7.0, 8.0]])
    k = xp.asarray([[0.0, 1.0], [2.0, 3.0]])
    corr = portconv.correlate(x, k, mode="valid")
    conv_flipped = portconv.convolve(x, xp.flip(k), mode="valid")
    conv = portconv.convolve(x, k, mode="valid")
    print("\n3. Cross-correlation vs convolution (kernel [[0, 1], [2, 3]])")
    rows = zip(_backend.to_list(corr), _backend.to_list(conv_flipped), _backend.to_list(conv))
    print("   correlate(x, k)    convolve(x, flip(k))    convolve(x, k)")
    for a, b, c in rows:
        print(f"   {a!s:18} {b!s:23} {c}")
    same = _backend.to_list(corr) == _backend.to_list(conv_flipped)
    print(f"   correlate(x, k) == convolve(x, flip(k)): {same}")
    print("   CNN 'convolution' layers compute the cross-correlation: the flip does not")
    print("   matter when the kernel is learned, since learning finds the flipped kernel.")


def main(argv: list[str] | None = None) -> int:
    args = _backend.parser(__doc__).parse_args(argv)
    xp = _backend.load(args.backend)
    print(f"backend: {args.backend}\n")
    worked_example(xp)
    sliding(xp)
    versus_convolution(xp)
    return 0


if __name__ == "__main__":
    sys.exit(main())
