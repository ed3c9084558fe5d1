"""Independent float64 NumPy references for the deep-learning functions.

Used where torch cannot express a case (asymmetric padding, ``same`` with
stride, four spatial dims, ``symmetric`` padding).  Written with ``np.pad``
and ``np.einsum``, sharing no code with portconv.
"""

from __future__ import annotations

import itertools

import numpy as np

NP_PAD_MODES = {
    "zeros": "constant",
    "reflect": "reflect",
    "replicate": "edge",
    "circular": "wrap",
    "symmetric": "symmetric",
}


def conv_reference(x, w, bias, stride, pads, dilation, groups, padding_mode="zeros"):
    """``x`` (N, C, *S), ``w`` (O, C/G, *K), ``pads`` one (low, high) per dim."""
    nsp = w.ndim - 2
    xp_ = np.pad(x, [(0, 0), (0, 0)] + [tuple(p) for p in pads], mode=NP_PAD_MODES[padding_mode])
    n = x.shape[0]
    o, cg = w.shape[:2]
    k = w.shape[2:]
    out = [(xp_.shape[2 + i] - dilation[i] * (k[i] - 1) - 1) // stride[i] + 1 for i in range(nsp)]
    xg = xp_.reshape((n, groups, cg) + xp_.shape[2:])
    wg = w.reshape((groups, o // groups, cg) + k)
    y = np.zeros((n, groups, o // groups, *out), dtype=np.result_type(x, w))
    for tap in itertools.product(*(range(kk) for kk in k)):
        sl = tuple(
            slice(t * d, t * d + (m - 1) * s + 1, s)
            for t, d, s, m in zip(tap, dilation, stride, out)
        )
        xs = xg[(slice(None), slice(None), slice(None)) + sl]
        wt = wg[(slice(None), slice(None), slice(None)) + tap]
        y += np.einsum("ngc...,goc->ngo...", xs, wt)
    y = y.reshape((n, o, *out))
    if bias is not None:
        y = y + bias.reshape((1, o) + (1,) * nsp)
    return y
