"""Losses: a table of small named functions, each with its gradient.

Conventions (as in PyTorch and Keras):

- ``mse`` is the mean over all elements: ``mean((a - y)^2)``.
- the cross-entropies are the mean over samples of the per-sample sum over output units.
- ``half_squared_error`` (scikit-learn's MLPRegressor) is ``mean_i 0.5 sum_j (a - y)^2``, and
  ``poisson`` (with an ``exp`` output) the mean half Poisson deviance
  ``mean_i sum_j [exp(z) - y z + y log y - y]``; both have the gradient ``(a - y) / n``.

The cross-entropies are computed from the output layer's pre-activation ``z`` (the logits),
never from the probabilities ``a``, so they stay finite for logits of +-1e4:

- binary cross-entropy with a sigmoid output: ``softplus(z) - y z``
- categorical cross-entropy with a softmax output: ``logsumexp(z) - sum(y z)``

and their gradient with respect to ``z`` is the famous ``(a - y) / n_samples``.

All functions take ``y`` (targets as floats), ``z`` and ``a`` of shape
``(n_samples, n_outputs)`` and return a 0-d array (the loss), an array of shape
``(n_samples,)`` (``per_sample``: each sample's loss, whose mean is the loss) or an array of
the shape of ``z`` (the gradient). Sample weights enter as row weights ``r`` with mean 1 in
the batch: the loss becomes ``mean(r * per_sample)`` and each gradient row is scaled by r
(:func:`weighted_value`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mlpx._errors import MlpxValueError


def _n_samples(z) -> int:
    return z.shape[0]


def mse(y, z, a, *, xp):
    """Mean squared error over all elements, ``mean((a - y)^2)``."""
    error = a - y
    return xp.mean(error * error)


def mse_per_sample(y, z, a, *, xp):
    """Each sample's mean squared error over its outputs, shape (n_samples,)."""
    error = a - y
    return xp.mean(error * error, axis=1)


def mse_grad_output(y, z, a, *, xp):
    """d mse / d a = 2 (a - y) / (n_samples * n_outputs)."""
    return 2.0 * (a - y) / (a.shape[0] * a.shape[1])


def binary_crossentropy(y, z, a, *, xp):
    """-mean_i sum_j [y log sigmoid(z) + (1 - y) log(1 - sigmoid(z))], from the logits z.

    Uses ``-log sigmoid(z) = softplus(-z)`` in the stable form
    ``max(z, 0) - y z + log1p(exp(-|z|))``.
    """
    per_element = xp.maximum(z, xp.zeros_like(z)) - y * z + xp.log1p(xp.exp(-xp.abs(z)))
    return xp.sum(per_element) / _n_samples(z)


def binary_crossentropy_per_sample(y, z, a, *, xp):
    """Each sample's binary cross-entropy summed over its outputs, shape (n_samples,)."""
    per_element = xp.maximum(z, xp.zeros_like(z)) - y * z + xp.log1p(xp.exp(-xp.abs(z)))
    return xp.sum(per_element, axis=1)


def binary_crossentropy_grad_logits(y, z, a, *, xp):
    """d BCE / d z = (sigmoid(z) - y) / n_samples, with ``a = sigmoid(z)``."""
    return (a - y) / _n_samples(z)


def logsumexp(z, *, xp):
    """log(sum_j exp(z_j)) per row, shape (n_samples, 1), shifted by the row max."""
    row_max = xp.max(z, axis=-1, keepdims=True)
    return row_max + xp.log(xp.sum(xp.exp(z - row_max), axis=-1, keepdims=True))


def categorical_crossentropy(y, z, a, *, xp):
    """-mean_i sum_j y_ij log softmax(z)_ij = mean_i [sum_j y_ij * logsumexp(z_i) - y_i . z_i]."""
    per_sample = xp.sum(y, axis=-1, keepdims=True) * logsumexp(z, xp=xp) - xp.sum(
        y * z, axis=-1, keepdims=True
    )
    return xp.sum(per_sample) / _n_samples(z)


def categorical_crossentropy_per_sample(y, z, a, *, xp):
    """Each sample's cross-entropy ``sum_j y_j logsumexp(z) - y . z``, shape (n_samples,)."""
    per_sample = xp.sum(y, axis=-1, keepdims=True) * logsumexp(z, xp=xp) - xp.sum(
        y * z, axis=-1, keepdims=True
    )
    return per_sample[:, 0]


def categorical_crossentropy_grad_logits(y, z, a, *, xp):
    """d CE / d z = (softmax(z) sum_j y_j - y) / n_samples; ``a - y`` for one-hot rows."""
    return (a * xp.sum(y, axis=-1, keepdims=True) - y) / _n_samples(z)


def categorical_crossentropy_grad_logits_unit_rows(y, z, a, *, xp):
    """``(softmax(z) - y) / n_samples``: the gradient above where every row of y sums to 1.

    One-hot labels do; multiplying by a sum of exactly 1 changes no bit, so this is the
    same gradient with two array operations fewer (what a GPU pays per step).
    """
    return (a - y) / _n_samples(z)


def half_squared_error_per_sample(y, z, a, *, xp):
    """0.5 sum_j (a - y)^2 per sample, shape (n_samples,)."""
    error = a - y
    return 0.5 * xp.sum(error * error, axis=1)


def half_squared_error(y, z, a, *, xp):
    """mean_i 0.5 sum_j (a - y)^2: scikit-learn's squared_error for one output."""
    error = a - y
    return 0.5 * xp.sum(error * error) / _n_samples(z)


def half_squared_error_grad_output(y, z, a, *, xp):
    """d / d a = (a - y) / n_samples."""
    return (a - y) / _n_samples(z)


def _poisson_per_element(y, z, *, xp):
    """exp(z) - y z + y log y - y, the half Poisson deviance of prediction exp(z).

    ``y log y`` is 0 for y = 0 (its limit), so the minimum over z is 0 for every y >= 0.
    """
    y_log_y = y * xp.log(xp.where(y > 0, y, xp.ones_like(y)))
    return xp.exp(z) - y * z + y_log_y - y


def poisson_per_sample(y, z, a, *, xp):
    """The half Poisson deviance summed over outputs, per sample, shape (n_samples,)."""
    return xp.sum(_poisson_per_element(y, z, xp=xp), axis=1)


def poisson(y, z, a, *, xp):
    """mean_i sum_j [exp(z) - y z + y log y - y] (scikit-learn's MLPRegressor 'poisson')."""
    return xp.sum(_poisson_per_element(y, z, xp=xp)) / _n_samples(z)


def poisson_grad_logits(y, z, a, *, xp):
    """d / d z = (exp(z) - y) / n_samples, with ``a = exp(z)``."""
    return (a - y) / _n_samples(z)


def weighted_value(loss, y, z, a, row_weights, *, xp):
    """``mean(row_weights * loss.per_sample(y, z, a))``: the loss with sample weights.

    Parameters
    ----------
    loss : Loss
    y, z, a : arrays of shape (n_samples, n_outputs)
    row_weights : array of shape (n_samples,) or None
        Each sample's weight divided by the mean weight of its batch (None: all 1, and the
        plain ``loss.value``).

    Returns
    -------
    0-d array
    """
    if row_weights is None:
        return loss.value(y, z, a, xp=xp)
    return xp.sum(row_weights * loss.per_sample(y, z, a, xp=xp)) / _n_samples(z)


@dataclass(frozen=True)
class Loss:
    """One loss with its gradient.

    Attributes
    ----------
    name : str
    value : callable ``(y, z, a, *, xp) -> 0-d array``
    grad_output : callable or None
        ``(y, z, a, *, xp) -> d loss / d a``; for losses that work with any output.
    output_activation : str or None
        The output activation the loss is fused with (sigmoid, softmax), or None.
    grad_logits : callable or None
        ``(y, z, a, *, xp) -> d loss / d z`` for the fused output activation.
    task : str
        "regression", "binary" or "multiclass": how targets are encoded.
    per_sample : callable ``(y, z, a, *, xp) -> array of shape (n_samples,)``
        Each sample's loss; ``value`` is their mean.
    grad_logits_unit_rows : callable or None
        ``grad_logits`` for targets whose rows each sum to exactly 1 (one-hot labels), in
        fewer operations and with the same numbers; None where there is no such shortcut.
    """

    name: str
    value: Callable[..., Any]
    grad_output: Callable[..., Any] | None
    output_activation: str | None
    grad_logits: Callable[..., Any] | None
    task: str
    per_sample: Callable[..., Any]
    grad_logits_unit_rows: Callable[..., Any] | None = None


LOSSES: dict[str, Loss] = {
    loss.name: loss
    for loss in (
        Loss("mse", mse, mse_grad_output, None, None, "regression", mse_per_sample),
        Loss("half_squared_error", half_squared_error, half_squared_error_grad_output, None,
             None, "regression", half_squared_error_per_sample),
        Loss("poisson", poisson, None, "exp", poisson_grad_logits, "regression",
             poisson_per_sample),
        Loss("binary_crossentropy", binary_crossentropy, None, "sigmoid",
             binary_crossentropy_grad_logits, "binary", binary_crossentropy_per_sample),
        Loss("categorical_crossentropy", categorical_crossentropy, None, "softmax",
             categorical_crossentropy_grad_logits, "multiclass",
             categorical_crossentropy_per_sample,
             categorical_crossentropy_grad_logits_unit_rows),
    )
}

_ALIASES = {
    "mean_squared_error": "mse",
    "squared_error": "mse",
    "bce": "binary_crossentropy",
    "log_loss": "binary_crossentropy",
    "crossentropy": "categorical_crossentropy",
    "cross_entropy": "categorical_crossentropy",
}

# The loss each output activation implies when ``loss=None``.
DEFAULT_LOSS_FOR_OUTPUT = {
    "sigmoid": "binary_crossentropy",
    "softmax": "categorical_crossentropy",
    "exp": "poisson",
}


def get_loss(name: str | None, *, output_activation: str) -> Loss:
    """Look a loss up by name, or infer it from the output activation when ``name`` is None.

    Sigmoid implies binary cross-entropy, softmax categorical cross-entropy, anything else
    mse. A cross-entropy needs its own output activation (it is computed from the logits).

    Raises
    ------
    MlpxValueError
        For an unknown name or a cross-entropy on an output it cannot be computed from.
    """
    if name is None:
        return LOSSES[DEFAULT_LOSS_FOR_OUTPUT.get(output_activation, "mse")]
    if isinstance(name, Loss):
        loss = name
    else:
        key = _ALIASES.get(str(name).lower(), str(name).lower())
        if key not in LOSSES:
            raise MlpxValueError(
                f"loss={name!r} is not a known loss; use one of {', '.join(LOSSES)} "
                "or None to infer it from the output activation"
            )
        loss = LOSSES[key]
    if loss.output_activation not in (None, output_activation):
        raise MlpxValueError(
            f"loss={loss.name!r} needs a {loss.output_activation} output layer, but the last "
            f"activation is {output_activation!r}; set the last activation to "
            f"{loss.output_activation!r} or use loss='mse'"
        )
    return loss
