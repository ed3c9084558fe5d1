"""Edge detection with the 1x2 kernel [1, -1], and what it cannot see.

Run: ``python examples/edge_detection.py --backend numpy|jax|torch|cupy|dask [--out PATH]``
"""

from __future__ import annotations

import sys

import _backend

import portconv


def band_image(xp):
    """6x8 image: white (1) with a black (0) vertical band in columns 2..5."""
    rows = [[0.0 if 2 <= j < 6 else 1.0 for j in range(8)] for _ in range(6)]
    return xp.asarray(rows)


def feature_map(xp, image, kernel):
    """``conv2d`` on one image and one kernel.

    ``conv2d`` works on batches of multi-channel images, (batch, channels,
    height, width), and on kernels (out_channels, in_channels, height, width):
    here every one of those counts is 1.
    """
    h, w = image.shape
    kh, kw = kernel.shape
    y = portconv.conv2d(xp.reshape(image, (1, 1, h, w)), xp.reshape(kernel, (1, 1, kh, kw)))
    return y[0, 0, ...]


def save_png(path, panels) -> None:
    """Draw the images side by side; skipped with a note if matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only, no window
        import matplotlib.pyplot as plt
    except ImportError:
        print(f"\n(matplotlib is not installed: {path} was not written)")
        return
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3))
    for ax, (title, image) in zip(axes, panels):
        ax.imshow(_backend.to_list(image), cmap="gray", vmin=-1, vmax=1)
        ax.set_title(title, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    print(f"\nwrote {path}")


def main(argv: list[str] | None = None) -> int:
    p = _backend.parser(__doc__)
    p.add_argument("--out", default="edge_detection.png", help="PNG to write")
    args = p.parse_args(argv)
    xp = _backend.load(args.backend)
    print(f"backend: {args.backend}\n")

    image = band_image(xp)
    kernel = xp.asarray([[1.0, -1.0]])  # pixel minus its right neighbour
    edges = feature_map(xp, image, kernel)
    print("image (1 = white, 0 = black):")
    print(_backend.show(image))
    print("\nfeature map with the kernel [1, -1] (6 x 7):")
    print(_backend.show(edges))
    print("   1 where white turns black (column 1), -1 where black turns white (column 5)")

    # Transposed, the band lies horizontally: the kernel compares left and
    # right neighbours only, so horizontal edges give zero everywhere.
    flat = feature_map(xp, image.T, kernel)
    print("\ntransposed image with the same kernel (8 x 5): the horizontal edges vanish")
    print(_backend.show(flat))
    # the transposed kernel [[1], [-1]] compares upper and lower neighbours
    found = feature_map(xp, image.T, kernel.T)
    print("\ntransposed image with the transposed kernel [[1], [-1]] (7 x 6): found again")
    print(_backend.show(found))

    save_png(
        args.out,
        [
            ("input 6x8", image),
            ("conv2d with [1, -1]", edges),
            ("transposed input, [1, -1]", flat),
        ],
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
