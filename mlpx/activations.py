"""Activation functions: a table of small named functions and their derivatives.

Each activation is a forward function ``f(z)`` and a backward function that turns the
gradient with respect to the activation ``a = f(z)`` into the gradient with respect to the
pre-activation ``z``. For the element-wise activations that is ``grad_a * f'(z)``; softmax
couples the units of a sample, so its backward is a Jacobian-vector product. leaky_relu and
elu write their backward directly as a select on ``grad_a`` (the same numbers with fewer
array operations, and each array operation is a kernel launch on a GPU).

All functions take arrays ``z`` (and ``a``, ``grad_a``) of shape ``(n_samples, n_units)``
and return arrays of the same shape, dtype and device. ``xp`` is the array-API namespace.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mlpx._errors import MlpxValueError

LEAKY_RELU_SLOPE = 0.01
ELU_ALPHA = 1.0
_GELU_C = math.sqrt(2.0 / math.pi)
_GELU_CUBIC = 0.044715


# --- forward functions ----------------------------------------------------------------

def identity(z, *, xp):
    """f(z) = z."""
    return z


def sigmoid(z, *, xp):
    """f(z) = 1 / (1 + exp(-z)), computed without overflow for large ``|z|``."""
    exp_neg_abs = xp.exp(-xp.abs(z))
    return xp.where(z >= 0, 1.0 / (1.0 + exp_neg_abs), exp_neg_abs / (1.0 + exp_neg_abs))


def tanh(z, *, xp):
    """f(z) = tanh(z)."""
    return xp.tanh(z)


# (array type, dtype, device) -> a 0-d zero there, made once: a new one would be a launch
# per call. The array type first: dtypes of two libraries are never compared.
_ZEROS: dict[tuple, Any] = {}


def _zero_like(z, *, xp):
    """A 0-d zero of ``z``'s dtype on ``z``'s device (shared: never write into it)."""
    device = z.device  # the standard's attribute: array_device(z) costs 3 us more on torch
    key = (type(z), z.dtype, device)
    try:
        return _ZEROS[key]
    except KeyError:
        zero = _ZEROS[key] = xp.zeros((), dtype=z.dtype, device=device)
    except TypeError:  # an unhashable dtype or device: make one each time
        zero = xp.zeros((), dtype=z.dtype, device=device)
    return zero


def relu(z, *, xp):
    """f(z) = max(z, 0); NaN stays NaN, as in NumPy's maximum and torch.relu."""
    # maximum, not where(z > 0, z, 0): CPU libraries branch on where's random mask (about
    # ten times slower), and a 0-d zero, not a Python 0, which torch would copy to the device.
    return xp.maximum(z, _zero_like(z, xp=xp))


def leaky_relu(z, *, xp):
    """f(z) = z for z > 0, 0.01 z otherwise: max(z, 0.01 z)."""
    return xp.maximum(z, LEAKY_RELU_SLOPE * z)


def elu(z, *, xp):
    """f(z) = z for z > 0, exp(z) - 1 otherwise (alpha = 1)."""
    negative_part = ELU_ALPHA * xp.expm1(xp.minimum(z, xp.zeros_like(z)))
    return xp.where(z > 0, z, negative_part)


def softplus(z, *, xp):
    """f(z) = log(1 + exp(z)) = max(z, 0) + log1p(exp(-|z|)), stable for large ``|z|``."""
    return xp.maximum(z, xp.zeros_like(z)) + xp.log1p(xp.exp(-xp.abs(z)))


def gelu(z, *, xp):
    """f(z) = z/2 (1 + tanh(sqrt(2/pi) (z + 0.044715 z^3))), the tanh approximation."""
    inner = _GELU_C * (z + _GELU_CUBIC * z * z * z)
    return 0.5 * z * (1.0 + xp.tanh(inner))


def exp(z, *, xp):
    """f(z) = exp(z): a positive output (the mean of a Poisson count)."""
    return xp.exp(z)


def softmax(z, *, xp):
    """f(z)_j = exp(z_j) / sum_k exp(z_k) per sample (row), shifted by the row max."""
    shifted = z - xp.max(z, axis=-1, keepdims=True)
    exp_shifted = xp.exp(shifted)
    return exp_shifted / xp.sum(exp_shifted, axis=-1, keepdims=True)


# --- derivatives f'(z), given z and a = f(z) ------------------------------------------

def exp_derivative(z, a, *, xp):
    """f'(z) = exp(z) = a."""
    return a


def identity_derivative(z, a, *, xp):
    """f'(z) = 1."""
    return xp.ones_like(z)


def sigmoid_derivative(z, a, *, xp):
    """f'(z) = a (1 - a)."""
    return a * (1.0 - a)


def tanh_derivative(z, a, *, xp):
    """f'(z) = 1 - a^2."""
    return 1.0 - a * a


def relu_derivative(z, a, *, xp):
    """f'(z) = 1 for z > 0, else 0 (0 at z = 0, as in PyTorch)."""
    return xp.astype(z > 0, z.dtype)


def leaky_relu_derivative(z, a, *, xp):
    """f'(z) = 1 for z > 0, else 0.01."""
    return xp.where(z > 0, xp.ones_like(z), xp.full_like(z, LEAKY_RELU_SLOPE))


def elu_derivative(z, a, *, xp):
    """f'(z) = 1 for z > 0, else a + alpha (= alpha exp(z))."""
    return xp.where(z > 0, xp.ones_like(z), a + ELU_ALPHA)


def softplus_derivative(z, a, *, xp):
    """f'(z) = sigmoid(z)."""
    return sigmoid(z, xp=xp)


def gelu_derivative(z, a, *, xp):
    """d/dz of the tanh-approximated GELU."""
    tanh_inner = xp.tanh(_GELU_C * (z + _GELU_CUBIC * z * z * z))
    d_inner = _GELU_C * (1.0 + 3.0 * _GELU_CUBIC * z * z)
    return 0.5 * (1.0 + tanh_inner) + 0.5 * z * (1.0 - tanh_inner * tanh_inner) * d_inner


# --- backward: grad_a -> grad_z, where grad_a * f'(z) is not the best way -----------------
# leaky_relu'(z) and elu'(z) are selects between arrays that would first be built (ones,
# a full array of the slope); a select on grad_a gives the same numbers with two or three
# array operations fewer.

def leaky_relu_backward(z, a, grad_a, *, xp):
    """grad_z = grad_a where z > 0, else 0.01 grad_a."""
    return xp.where(z > 0, grad_a, LEAKY_RELU_SLOPE * grad_a)


def elu_backward(z, a, grad_a, *, xp):
    """grad_z = grad_a where z > 0, else grad_a (a + alpha)."""
    return xp.where(z > 0, grad_a, grad_a * (a + ELU_ALPHA))


def softmax_backward(z, a, grad_a, *, xp):
    """grad_z = a * (grad_a - sum_j grad_a_j a_j), the softmax Jacobian times grad_a."""
    return a * (grad_a - xp.sum(grad_a * a, axis=-1, keepdims=True))


@dataclass(frozen=True)
class Activation:
    """One activation: its name, forward function and derivative.

    Attributes
    ----------
    name : str
    forward : callable ``(z, *, xp) -> a``
    derivative : callable ``(z, a, *, xp) -> f'(z)`` or None
        None for softmax, whose Jacobian is not diagonal.
    output_only : bool
        True for softmax, which mlpx allows on the output layer only.
    backward_rule : callable ``(z, a, grad_a, *, xp) -> grad_z`` or None
        The backward written directly, where ``grad_a * f'(z)`` is not possible (softmax)
        or costs more array operations (leaky_relu, elu); None: ``grad_a * f'(z)``.
    """

    name: str
    forward: Callable[..., Any]
    derivative: Callable[..., Any] | None
    output_only: bool = False
    backward_rule: Callable[..., Any] | None = None

    def backward(self, z, a, grad_a, *, xp):
        """Gradient with respect to ``z`` from the gradient with respect to ``a``.

        Parameters
        ----------
        z, a, grad_a : arrays of shape (n_samples, n_units)

        Returns
        -------
        grad_z : array of shape (n_samples, n_units)
        """
        if self.backward_rule is not None:
            return self.backward_rule(z, a, grad_a, xp=xp)
        return grad_a * self.derivative(z, a, xp=xp)


ACTIVATIONS: dict[str, Activation] = {
    act.name: act
    for act in (
        Activation("identity", identity, identity_derivative),
        Activation("sigmoid", sigmoid, sigmoid_derivative),
        Activation("tanh", tanh, tanh_derivative),
        Activation("relu", relu, relu_derivative),
        Activation("leaky_relu", leaky_relu, leaky_relu_derivative,
                   backward_rule=leaky_relu_backward),
        Activation("elu", elu, elu_derivative, backward_rule=elu_backward),
        Activation("softplus", softplus, softplus_derivative),
        Activation("gelu", gelu, gelu_derivative),
        Activation("exp", exp, exp_derivative),
        Activation("softmax", softmax, None, output_only=True,
                   backward_rule=softmax_backward),
    )
}

_ALIASES = {"linear": "identity", "none": "identity", "logistic": "sigmoid"}


def get_activation(name: str | Activation, *, parameter: str = "activation") -> Activation:
    """Look an activation up by name (``"relu"``, ``"sigmoid"``, ...).

    Raises
    ------
    MlpxValueError
        For an unknown name; the message lists the known ones.
    """
    if isinstance(name, Activation):
        return name
    if not isinstance(name, str):
        raise MlpxValueError(
            f"{parameter}={name!r} must be an activation name, one of {', '.join(ACTIVATIONS)}"
        )
    key = _ALIASES.get(name.lower(), name.lower())
    if key not in ACTIVATIONS:
        raise MlpxValueError(
            f"{parameter}={name!r} is not a known activation; use one of "
            f"{', '.join(ACTIVATIONS)}"
        )
    return ACTIVATIONS[key]
