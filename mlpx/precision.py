"""Matmul precision: the dtype the matrix products of a layer take their inputs in.

``MLP(..., matmul_precision="bfloat16")`` is mixed precision, as ``torch.autocast`` does
it for ``mm``: each product ``x @ W`` (and the two of backward, ``x.T @ grad_z`` and
``grad_z @ W.T``) casts its two inputs to bfloat16, multiplies (the hardware sums in
float32), and the product is cast back to float32. Everything else stays float32: the
weights (the "master weights" the optimizer updates), the bias, the activations, the loss
and the optimizer's moments. bfloat16 keeps float32's exponent range with an 8-bit
significand, so the products carry about 3 significant digits; training tolerates that
error the way it tolerates minibatch noise.

On CPUs with AVX512-BF16 or AMX (and on GPU tensor cores) bfloat16 products run several
times faster than float32 ones, which is why the option exists. It needs a backend with a
bfloat16 dtype: PyTorch. NumPy, CuPy and array-api-strict have none.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable
from typing import Any

from mlpx._errors import MlpxTypeError, MlpxValueError

#: "highest": products in the model's own dtype; "bfloat16": mixed precision (see above).
MATMUL_PRECISIONS = ("highest", "bfloat16")


def check_matmul_precision(precision: Any) -> str:
    """``precision`` if it is one of :data:`MATMUL_PRECISIONS`, else a clear error."""
    if not isinstance(precision, str):
        raise MlpxTypeError(
            f"matmul_precision={precision!r} must be a string, one of {MATMUL_PRECISIONS}"
        )
    if precision not in MATMUL_PRECISIONS:
        raise MlpxValueError(
            f"matmul_precision={precision!r} is not one of {MATMUL_PRECISIONS}; 'highest' "
            "multiplies in the model's dtype, 'bfloat16' in bfloat16 with float32 weights"
        )
    return precision


def backend_supports(precision: str, xp: Any) -> bool:
    """Whether the namespace ``xp`` can multiply at ``precision`` (a checked name)."""
    return precision == "highest" or getattr(xp, precision, None) is not None


def bfloat16_matmul(left, right, *, xp: Any):
    """``left @ right`` from bfloat16 copies of both, returned in ``left``'s dtype.

    Parameters
    ----------
    left : array of shape (n, k)
    right : array of shape (k, m)
    xp : module
        Their namespace; it must have ``bfloat16``.

    Returns
    -------
    array of shape (n, m)
    """
    low = xp.bfloat16
    return xp.astype(xp.astype(left, low) @ xp.astype(right, low), left.dtype)


def matmul_function(precision: str, *, xp: Any, dtype: Any, backend_name: str,
                    dtype_label: str) -> Callable[[Any, Any], Any]:
    """The product the layers use at ``precision``: ``operator.matmul`` (``@``) for "highest".

    Parameters
    ----------
    precision : str
        One of :data:`MATMUL_PRECISIONS`.
    xp : module
        The backend's array-API namespace.
    dtype : dtype
        The model's dtype (of the weights and activations).
    backend_name, dtype_label : str
        For the error messages.

    Returns
    -------
    callable
        ``matmul(left, right)``.

    Raises
    ------
    MlpxValueError
        When the backend has no bfloat16, or the model is not float32.
    """
    precision = check_matmul_precision(precision)
    if precision == "highest":
        return operator.matmul
    if not backend_supports(precision, xp):
        raise MlpxValueError(
            f"matmul_precision='bfloat16' needs a backend with a bfloat16 dtype and the "
            f"{backend_name} backend has none; use backend='torch', or "
            "matmul_precision='highest'"
        )
    if dtype != xp.float32:
        raise MlpxValueError(
            f"matmul_precision='bfloat16' multiplies in bfloat16 and keeps float32 weights; "
            f"dtype={dtype_label!r} does not go with it: use dtype='float32', or "
            "matmul_precision='highest'"
        )
    return functools.partial(bfloat16_matmul, xp=xp)
