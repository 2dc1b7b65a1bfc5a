"""Gradient check: backpropagation against central differences, in float64.

For every parameter element ``p``::

    numeric = (L(p + eps) - L(p - eps)) / (2 eps)

and the error of parameter array k is ``max|analytic - numeric| / max(max|analytic|,
max|numeric|)``: the largest disagreement relative to the gradient's own scale, which
stays meaningful where single elements are close to zero.

Kinks: relu and leaky_relu have no derivative at 0. A freshly initialised network has zero
biases, so an input of zeros (or a hidden unit exactly at 0) puts z on the kink and the
check reports a large error that is not a bug. Check with random inputs (and, for relu,
random biases).
"""

from __future__ import annotations

import math

from mlpx._errors import MlpxValueError


def _unit_perturbation(shape, flat_index: int, eps: float, *, xp, dtype, device):
    """An array of ``shape`` that is ``eps`` at ``flat_index`` and 0 elsewhere."""
    positions = xp.arange(math.prod(shape), device=device)
    one_hot = xp.astype(positions == flat_index, dtype)
    return xp.reshape(eps * one_hot, shape)


def numerical_grads(model, X, Y, eps: float = 1e-6) -> list:
    """Central-difference gradients of the model's loss on checked arrays X, Y.

    Parameters
    ----------
    model : MLP
    X : array of shape (n_samples, n_features), on the model's backend
    Y : target matrix of shape (n_samples, n_outputs), on the model's backend
    eps : float

    Returns
    -------
    list of arrays
        One per parameter, in the order of ``model.params``.
    """
    xp = model.xp
    device = model.backend.device
    original = model.params
    grads = []
    for k, param in enumerate(original):
        values = []
        for flat_index in range(math.prod(param.shape)):
            delta = _unit_perturbation(param.shape, flat_index, eps, xp=xp, dtype=param.dtype,
                                       device=device)
            losses = []
            for sign in (1.0, -1.0):
                trial = list(original)
                trial[k] = param + sign * delta
                model._assign_params(trial)
                losses.append(model._loss_value(Y, model._forward(X)))
            values.append((losses[0] - losses[1]) / (2.0 * eps))
        grads.append(xp.reshape(xp.stack(values), param.shape))
    model._assign_params(original)
    return grads


def relative_errors(analytic: list, numeric: list, *, xp) -> list[float]:
    """``max|a - n| / max(max|a|, max|n|)`` per parameter (0 where both are all zero)."""
    errors = []
    for grad_a, grad_n in zip(analytic, numeric):
        scale = max(float(xp.max(xp.abs(grad_a))), float(xp.max(xp.abs(grad_n))))
        difference = float(xp.max(xp.abs(grad_a - grad_n)))
        errors.append(0.0 if scale == 0.0 else difference / scale)
    return errors


def gradcheck(model, X, y, eps: float = 1e-6) -> list[float]:
    """Compare backpropagation with central differences, in float64, on the model's backend.

    The model is copied to float64 (same backend, same parameters); the model itself is
    not changed.

    Parameters
    ----------
    model : MLP
    X : array-like of shape (n_samples, n_features)
        Keep it small: the check runs two forward passes per parameter element.
    y : array-like of labels or targets
    eps : float
        The finite-difference step.

    Returns
    -------
    list of float
        The maximum relative error per parameter, in the order of ``model.params``. Below
        1e-6 means backpropagation is right.
    """
    if not eps > 0:
        raise MlpxValueError(f"eps={eps!r} must be > 0, e.g. 1e-6")
    # float64 products: a finite difference needs every digit (bfloat16 keeps about 3)
    double = model._clone(dtype="float64", matmul_precision="highest")
    X64, Y64, _ = double.check_Xy(X, y)
    _, analytic, _ = double._loss_and_grads(X64, Y64)
    numeric = numerical_grads(double, X64, Y64, eps)
    return relative_errors(analytic, numeric, xp=double.xp)
