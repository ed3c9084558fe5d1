"""Keep a NumPy process's freed temporaries instead of faulting them in again.

Why this module exists: glibc's ``malloc`` serves a large block with ``mmap``
and returns it to the system when it is freed; after freeing such a block it
raises its mmap threshold to that block's size (up to 32 MiB on 64-bit) and its
heap-trim threshold to twice that.  A correlation allocates several temporaries
at once (padded input, stacked columns, products, output), so after each call
the freed heap top exceeds twice the largest single temporary and glibc hands
it back; the next call touches fresh pages again, one minor page fault per
4 KiB.  On this project's CPU, in a NumPy-only process, that was a quarter to
two fifths of the time of the stem layer (8x3x224^2 -> 64, 7x7 stride 2: 32.4
against 23.0 ms, 7,453 faults per call), of the dense 8x64x56^2 layer (22.7
against 18.4 ms) and of the 11x11 correlation of a 1024^2 image (21.9 against
12.8); glibc's thresholds start at 128 KiB, so small layers suffer too
(4x16x32^2 -> 32, 3x3: 2.0 against 1.2 ms, 830 faults per call).

The standard has no way to reuse memory (no ``out=``), and ``mallopt`` would
change the allocator by fiat.  Instead, once per process, the first NumPy-backed
call with more than 128 KiB of workspace and output allocates and drops one
empty block just under 32 MiB: glibc sees a freed mmapped block of that size
and moves its own thresholds, as it does whenever any program frees such a
block.  Nothing is written, so no page is touched.  The cost is that the
process keeps up to 64 MiB of freed heap for reuse instead of returning it at
once.  ``PORTCONV_KEEP_HEAP=0`` turns this off.  Other allocators (macOS,
Windows, musl) just serve one allocation; device memory (CuPy, CUDA torch),
XLA's and torch's CPU arrays and Dask's lazy graphs are not touched.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from . import _compat

__all__ = ["hint_enabled", "keep_heap"]

_ENV = "PORTCONV_KEEP_HEAP"
#: Just under glibc's largest dynamic mmap threshold (32 MiB on 64-bit): a
#: block of exactly 32 MiB plus malloc's header would not move the threshold.
HINT_BYTES = 32 * 2**20 - 2**20
#: glibc's initial mmap threshold: calls whose workspace and output stay
#: below it never map memory, so they give no reason for the hint.
MIN_CALL_BYTES = 128 * 2**10

_hinted = False


def hint_enabled(environ: Mapping[str, str | None]) -> bool:
    """Whether ``environ`` leaves the hint on (``PORTCONV_KEEP_HEAP`` unset or not ``0``)."""
    return (environ.get(_ENV) or "1").strip() != "0"


def keep_heap(xp: Any, x: Any, call_bytes: int) -> bool:
    """Once per process, hint glibc to keep freed temporaries (see module doc).

    Returns whether this call gave the hint.  ``call_bytes`` is the planned
    workspace plus output of the call about to run.
    """
    global _hinted
    if _hinted or call_bytes < MIN_CALL_BYTES or not _compat.numpy_backed(xp, x):
        return False
    if not hint_enabled(os.environ):
        return False
    _hinted = True
    block = xp.empty((HINT_BYTES,), dtype=xp.uint8, device=_compat.device_of(x))
    del block
    return True
