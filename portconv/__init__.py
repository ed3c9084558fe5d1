"""portconv: one array-agnostic convolution for every Array API library."""

from ._signal import choose_method, convolve, convolve2d, correlate, correlate2d

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "choose_method",
    "convolve",
    "convolve2d",
    "correlate",
    "correlate2d",
]
