"""The optional compiled kernels (``mlpx._kernels``, built by ``setup.py`` from C).

Where a C compiler was at hand when mlpx was installed, the NumPy fast path runs the
steps of SGD, Adam, AdamW, RMSprop and Adagrad (an L2 penalty's gradient included), every
hidden activation and its gradient (relu, leaky_relu, elu, tanh, sigmoid, gelu, softplus),
and the softmax and sigmoid cross-entropy gradients as one pass each over memory (besides
NumPy's own ``exp``, ``expm1``, ``tanh`` and ``log1p``) instead of several NumPy calls, and
gathers each batch's rows of X into its input buffer with a ``memcpy`` per row.
They do the same float operations in the same order, so the results are the same bits
(``tests/test_kernels.py``). Without the module, or with the environment variable
``MLPX_PURE_NUMPY`` set to anything but "", 0, false, no or off before mlpx is imported, the
NumPy kernels run.
"""

from __future__ import annotations

import os


def _pure_numpy_requested() -> bool:
    value = os.environ.get("MLPX_PURE_NUMPY", "").strip().lower()
    return value not in ("", "0", "false", "no", "off")


def _load_kernels():
    """``mlpx._kernels``, or None where it was not built or ``MLPX_PURE_NUMPY`` is set."""
    if _pure_numpy_requested():
        return None
    try:
        from mlpx import _kernels
    except ImportError:
        return None
    return _kernels


#: The compiled kernels in use (None: the NumPy kernels run). Read it at call time, not
#: at import (``from mlpx._compiled import kernels`` would freeze it): tests switch it.
kernels = _load_kernels()


_LABEL = ("compiled kernels (optimizer steps, hidden activations, softmax and sigmoid "
          "gradients, row gather)")


def kernel_status() -> str:
    """Whether the compiled kernels run here, and if not, why, in words."""
    if kernels is not None:
        return f"{_LABEL}: yes"
    if _pure_numpy_requested():
        return f"{_LABEL}: off (MLPX_PURE_NUMPY is set)"
    return (f"{_LABEL}: not built (no C compiler when mlpx was installed); NumPy kernels "
            "run, with the same results, slower on large networks")
