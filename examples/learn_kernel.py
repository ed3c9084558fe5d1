"""Learn the edge kernel [1, -1] from examples, by gradient descent.

Given the band image X and its edge map Y = conv2d(X, [1, -1]), start from a
random 1x2 kernel K and lower the mean squared error between conv2d(X, K) and
Y.  The gradient comes from ``portconv.conv_weight_grad`` on NumPy, CuPy and
Dask, from ``jax.grad`` on JAX and from autograd on torch: portconv's
functions are differentiable where the library is.

Run: ``python examples/learn_kernel.py --backend numpy|jax|torch|cupy|dask``
"""

from __future__ import annotations

import math
import random
import sys

import _backend

import portconv

STEPS = 20
# The loss is quadratic in K; its curvature on this image is at most 10/7,
# so steps below 2 / (10/7) = 1.4 converge.  1.1 makes both directions
# shrink by about 0.6-0.7 per step.
LEARNING_RATE = 1.1


def band_images(xp):
    """The band image X (1, 1, 6, 8) and its true edge map Y (1, 1, 6, 7)."""
    rows = [[0.0 if 2 <= j < 6 else 1.0 for j in range(8)] for _ in range(6)]
    x = xp.asarray([[rows]], dtype=xp.float64)
    true_kernel = xp.asarray([[[[1.0, -1.0]]]], dtype=xp.float64)
    return x, portconv.conv2d(x, true_kernel)


def random_kernel(xp, seed: int):
    rng = random.Random(seed)
    return xp.asarray([[[[rng.uniform(-1, 1), rng.uniform(-1, 1)]]]], dtype=xp.float64)


def loss_of(x, y, kernel):
    diff = portconv.conv2d(x, kernel) - y
    return (diff * diff).sum() / math.prod(diff.shape)


def train_explicit(xp, x, y, kernel):
    """Gradient descent with portconv's explicit weight gradient."""
    n = math.prod(y.shape)
    for step in range(STEPS + 1):
        residual = portconv.conv2d(x, kernel) - y
        loss = xp.sum(residual * residual) / n
        yield step, float(loss), kernel
        # d loss / d prediction = 2 * residual / n; conv_weight_grad carries
        # it back through the convolution to the kernel
        grad = portconv.conv_weight_grad(x, tuple(kernel.shape), 2 * residual / n)
        kernel = kernel - LEARNING_RATE * grad
        if hasattr(kernel, "persist"):  # Dask: compute now, keep the graph short
            kernel = kernel.persist()


def train_jax(xp, x, y, kernel):
    """Gradient descent with ``jax.grad`` through portconv, compiled by ``jax.jit``."""
    import jax

    value_and_grad = jax.jit(jax.value_and_grad(lambda k: loss_of(x, y, k)))
    for step in range(STEPS + 1):
        loss, grad = value_and_grad(kernel)
        yield step, float(loss), kernel
        kernel = kernel - LEARNING_RATE * grad


def train_torch(xp, x, y, kernel):
    """Gradient descent with torch autograd through portconv."""
    import torch

    kernel = kernel.clone().requires_grad_(True)
    for step in range(STEPS + 1):
        loss = loss_of(x, y, kernel)
        yield step, float(loss), kernel.detach()
        loss.backward()
        with torch.no_grad():
            kernel -= LEARNING_RATE * kernel.grad
        kernel.grad = None


TRAINERS = {"jax": train_jax, "torch": train_torch}


def main(argv: list[str] | None = None) -> int:
    p = _backend.parser(__doc__)
    p.add_argument("--seed", type=int, default=0, help="seed of the random start")
    args = p.parse_args(argv)
    xp = _backend.load(args.backend)
    x, y = band_images(xp)
    start = random_kernel(xp, args.seed)
    train = TRAINERS.get(args.backend, train_explicit)
    how = {"jax": "jax.grad", "torch": "torch autograd"}.get(args.backend, "conv_weight_grad")
    print(f"backend: {args.backend}, gradient from {how}, learning rate {LEARNING_RATE}")
    print(f"start kernel: {_backend.to_list(start)[0][0][0]}")
    kernel = start
    for step, loss, current in train(xp, x, y, start):
        kernel = current
        if step % 4 == 0:
            print(f"step {step:2d}  loss {loss:.6f}")
    learned = _backend.to_list(kernel)[0][0][0]
    error = max(abs(learned[0] - 1.0), abs(learned[1] + 1.0))
    print(f"learned kernel: [{learned[0]:.4f}, {learned[1]:.4f}]  (true [1, -1])")
    print(f"largest error: {error:.4f} ({'within' if error <= 0.05 else 'NOT within'} 0.05)")
    return 0 if error <= 0.05 else 1


if __name__ == "__main__":
    sys.exit(main())
