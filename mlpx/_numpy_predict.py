"""Prediction on NumPy: each layer's bias and activation written into its product.

:meth:`mlpx.MLP._forward_batch`, the forward pass of every backend, makes a new array for
every operation: ``x @ W``, ``+ b``, ``f(z)`` and softmax's four. On NumPy an array over
about 128 KiB is fresh memory from the operating system, paid for in page faults, so
``predict_proba`` on the 1797 digits rows (64-128-64-10) took 1.38 ms against 0.49 ms for
its three products (one thread). Here each layer's product is the only new array: the bias
is added into it and the activation applied in place, and that array is the next layer's
input.

Softmax over a few classes runs on the transposed logits: NumPy's reductions along rows
of 2 to 30 numbers are 2-6 times slower than across them (45 against 8 us for 1000 rows of
2 classes, including the two transposing copies). The numbers are the generic pass's: the
same products and element-wise operations; the sum over 8 or more classes may add in
another order (the last bit). ``tests/test_batched_predict.py`` checks both.
``evaluate`` and ``score`` take the pass too (:func:`logits_and_output`).
"""

from __future__ import annotations

import numpy as np

from mlpx import _compiled
from mlpx.activations import LEAKY_RELU_SLOPE

#: Softmax over at most this many classes runs on the transposed logits (see above); over
#: 100 classes, along the rows was as fast, over 1000 twice as fast.
TRANSPOSED_SOFTMAX_MAX_CLASSES = 32


def supports(model) -> bool:
    """True where :func:`predict_output` computes the model's output: NumPy, float products."""
    return model.backend.name == "numpy" and model.matmul_precision == "highest"


def predict_output(model, X: np.ndarray) -> np.ndarray:
    """The network output for checked X, as ``model._forward_batch(X)[1]``.

    Parameters
    ----------
    model : MLP
        On NumPy (see :func:`supports`).
    X : array of shape (n_samples, n_features)
        Checked, in the model's dtype; not written.

    Returns
    -------
    array of shape (n_samples, n_outputs), C-contiguous
    """
    return _output_(model, _logits(model, X))


def logits_and_output(model, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(z_out, output)`` for checked X, as ``model._forward_batch(X)`` (for a loss).

    Returns
    -------
    z_out, output : arrays of shape (n_samples, n_outputs)
        The output layer's pre-activation and activation (a softmax in a copy of z_out).
    """
    z_out = _logits(model, X)
    softmax = model.layers[-1].activation.name == "softmax"
    return z_out, _output_(model, np.array(z_out) if softmax else z_out)


def _logits(model, X: np.ndarray) -> np.ndarray:
    """The output layer's pre-activation, shape (n_samples, n_outputs), a new array."""
    a = X
    for layer in model.layers[:-1]:
        a = _activate_(layer.activation, _pre_activation(layer, a))
    return _pre_activation(model.layers[-1], a)


def _output_(model, z: np.ndarray) -> np.ndarray:
    """The output layer's activation of z (softmax written into z)."""
    activation = model.layers[-1].activation
    if activation.name == "softmax":
        return _softmax_(z)
    return activation.forward(z, xp=model.xp)


def _pre_activation(layer, x: np.ndarray) -> np.ndarray:
    """z = x @ W + b, the bias added into the product."""
    z = np.matmul(x, layer.W)
    np.add(z, layer.b, out=z)
    return z


def _activate_(activation, z: np.ndarray) -> np.ndarray:
    """f(z), in z's memory where a NumPy function writes it in place, else a new array."""
    name = activation.name
    if name == "identity":
        return z
    if name == "relu":
        kernels = _compiled.kernels
        if kernels is not None:
            kernels.relu_(z)
            return z
        return np.maximum(z, np.zeros((), dtype=z.dtype), out=z)
    if name == "tanh":
        return np.tanh(z, out=z)
    if name == "leaky_relu":
        return np.maximum(z, LEAKY_RELU_SLOPE * z, out=z)
    return activation.forward(z, xp=np)


def _softmax_(z: np.ndarray) -> np.ndarray:
    """softmax(z) per row, into z: exp(z - max) / sum(exp(z - max)), shape (n, k)."""
    if z.shape[1] > TRANSPOSED_SOFTMAX_MAX_CLASSES:
        z -= np.maximum.reduce(z, axis=1, keepdims=True)
        np.exp(z, out=z)
        z /= np.add.reduce(z, axis=1, keepdims=True)
        return z
    z_T = np.ascontiguousarray(z.T)  # (k, n): the classes of a sample down a column
    z_T -= np.maximum.reduce(z_T, axis=0)
    np.exp(z_T, out=z_T)
    z_T /= np.add.reduce(z_T, axis=0)
    np.copyto(z, z_T.T)
    return z
