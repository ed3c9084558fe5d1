"""portconv: one array-agnostic convolution for every Array API library.

Environment: ``PORTCONV_WORKSPACE_BYTES`` (the default workspace budget) and
``PORTCONV_KEEP_HEAP=0`` (no hint to glibc to keep freed temporaries on
NumPy-backed arrays; see ``portconv._heap``).
"""

from ._nn import (
    conv,
    conv1d,
    conv2d,
    conv3d,
    conv_input_grad,
    conv_transpose,
    conv_weight_grad,
)
from ._shapes import output_shape
from ._signal import choose_method, convolve, convolve2d, correlate, correlate2d

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "choose_method",
    "conv",
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_input_grad",
    "conv_transpose",
    "conv_weight_grad",
    "convolve",
    "convolve2d",
    "correlate",
    "correlate2d",
    "output_shape",
]
