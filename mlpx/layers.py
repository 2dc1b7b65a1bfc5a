"""Layers. ``Dense`` is one fully connected layer followed by its activation.

Forward, for an input ``x`` of shape (n_samples, fan_in)::

    z = x @ W + b          # pre-activation, (n_samples, fan_out)
    a = f(z)               # activation,     (n_samples, fan_out)

Backward (backpropagation), given ``grad_a = dL/da``::

    grad_z = grad_a * f'(z)            # dL/dz   (a Jacobian product for softmax)
    grad_W = x.T @ grad_z              # dL/dW,  (fan_in, fan_out)
    grad_b = sum(grad_z, axis=0)       # dL/db,  (fan_out,)
    grad_x = grad_z @ W.T              # dL/dx,  (n_samples, fan_in): the previous layer's grad_a

The three products go through ``Dense.matmul``: the ``@`` operator itself, or with
``MLP(matmul_precision="bfloat16")`` a product of bfloat16 casts (:mod:`mlpx.precision`).
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

from mlpx.activations import Activation


class Dense:
    """A fully connected layer ``a = f(x @ W + b)`` that caches what backward needs.

    Parameters
    ----------
    W : array of shape (fan_in, fan_out)
    b : array of shape (fan_out,)
    activation : Activation
    xp : module
        The array-API namespace of ``W`` and ``b``.
    matmul : callable
        ``matmul(left, right)`` computes ``left @ right``: ``operator.matmul`` (the
        default), or for mixed precision :func:`mlpx.precision.bfloat16_matmul`.

    Attributes
    ----------
    grad_W, grad_b : arrays of the shapes of W and b, set by ``backward``.
    """

    def __init__(self, W: Any, b: Any, activation: Activation, *, xp: Any,
                 matmul: Callable[[Any, Any], Any] = operator.matmul) -> None:
        self.W = W
        self.b = b
        self.activation = activation
        self.xp = xp
        self.matmul = matmul
        self.grad_W = None
        self.grad_b = None
        self._x = self._z = self._a = None

    @property
    def fan_in(self) -> int:
        return self.W.shape[0]

    @property
    def fan_out(self) -> int:
        return self.W.shape[1]

    def pre_activation(self, x):
        """z = x @ W + b, shape (n_samples, fan_out)."""
        return self.matmul(x, self.W) + self.b

    def forward(self, x):
        """a = f(x @ W + b); caches x, z and a for ``backward``.

        Parameters
        ----------
        x : array of shape (n_samples, fan_in)

        Returns
        -------
        a : array of shape (n_samples, fan_out)
        """
        z = self.pre_activation(x)
        a = self.activation.forward(z, xp=self.xp)
        self._x, self._z, self._a = x, z, a
        return a

    @property
    def cache(self) -> tuple[Any, Any, Any]:
        """(x, z, a) from the last ``forward``."""
        return self._x, self._z, self._a

    def backward(self, grad_a, *, need_grad_x: bool = True):
        """Backpropagate dL/da of this layer's output.

        Parameters
        ----------
        grad_a : array of shape (n_samples, fan_out)
        need_grad_x : bool
            False for the first layer, whose input gradient nobody uses (saves a product).

        Returns
        -------
        grad_x : array of shape (n_samples, fan_in), or None
            dL/dx, the gradient for the layer below.
        """
        grad_z = self.activation.backward(self._z, self._a, grad_a, xp=self.xp)
        return self.backward_from_pre_activation(grad_z, need_grad_x=need_grad_x)

    def backward_from_pre_activation(self, grad_z, *, need_grad_x: bool = True):
        """Backpropagate dL/dz (used for the output layer, where the loss gives dL/dz).

        Sets ``grad_W`` (fan_in, fan_out) and ``grad_b`` (fan_out,).

        Parameters
        ----------
        grad_z : array of shape (n_samples, fan_out)
        need_grad_x : bool
            False for the first layer.

        Returns
        -------
        grad_x : array of shape (n_samples, fan_in), or None
        """
        xp = self.xp
        self.grad_W = self.matmul(xp.matrix_transpose(self._x), grad_z)
        self.grad_b = xp.sum(grad_z, axis=0)
        if not need_grad_x:
            return None
        return self.matmul(grad_z, xp.matrix_transpose(self.W))
