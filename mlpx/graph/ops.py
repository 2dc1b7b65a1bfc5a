"""The operations: each computes its output and the gradient of the loss with respect to its
inputs (a vector-Jacobian product), on any array-API backend.

``grad`` is the gradient with respect to the operation's output, with the output's shape;
each ``gradient`` returns one array per input, with that input's shape. Where an input was
broadcast (a bias ``b`` of shape (k,) added to ``X @ W`` of shape (n, k)), its gradient is
summed over the broadcast axes (:func:`unbroadcast`). The element-wise activations and
softmax reuse :mod:`mlpx.activations`, and the softmax cross-entropy is the max-shifted
log-sum-exp form of :mod:`mlpx.losses`: the same math as ``mlpx.MLP``.
"""

from __future__ import annotations

from mlpx._errors import MlpxTypeError
from mlpx.activations import get_activation
from mlpx.graph.nodes import GraphError, Operation


def unbroadcast(grad, shape: tuple, *, xp):
    """Sum ``grad`` over the axes that broadcasting added or stretched, down to ``shape``.

    Parameters
    ----------
    grad : array
        The gradient with respect to a broadcast result.
    shape : tuple of int
        The shape of the input that was broadcast.
    """
    while grad.ndim > len(shape):
        grad = xp.sum(grad, axis=0)
    for axis, size in enumerate(shape):
        if size == 1 and grad.shape[axis] != 1:
            grad = xp.sum(grad, axis=axis, keepdims=True)
    return grad


# --- arithmetic --------------------------------------------------------------------------

class Add(Operation):
    """a + b (broadcasting)."""

    kind = "add"

    def compute(self, a, b, *, xp):
        return a + b

    def gradient(self, grad, a, b, *, output, xp):
        return unbroadcast(grad, a.shape, xp=xp), unbroadcast(grad, b.shape, xp=xp)


class Subtract(Operation):
    """a - b (broadcasting)."""

    kind = "subtract"

    def compute(self, a, b, *, xp):
        return a - b

    def gradient(self, grad, a, b, *, output, xp):
        return unbroadcast(grad, a.shape, xp=xp), unbroadcast(-grad, b.shape, xp=xp)


class Negative(Operation):
    """-a."""

    kind = "negative"

    def compute(self, a, *, xp):
        return -a

    def gradient(self, grad, a, *, output, xp):
        return (-grad,)


class Multiply(Operation):
    """a * b, element-wise (broadcasting)."""

    kind = "multiply"

    def compute(self, a, b, *, xp):
        return a * b

    def gradient(self, grad, a, b, *, output, xp):
        return unbroadcast(grad * b, a.shape, xp=xp), unbroadcast(grad * a, b.shape, xp=xp)


class Divide(Operation):
    """a / b, element-wise (broadcasting)."""

    kind = "divide"

    def compute(self, a, b, *, xp):
        return a / b

    def gradient(self, grad, a, b, *, output, xp):
        return (unbroadcast(grad / b, a.shape, xp=xp),
                unbroadcast(-grad * output / b, b.shape, xp=xp))


class MatMul(Operation):
    """a @ b for matrices: a of shape (n, k), b of shape (k, m)."""

    kind = "matmul"

    def compute(self, a, b, *, xp):
        if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[0]:
            left, right = self.inputs
            raise GraphError(
                f"matmul {self.name!r}: {left.name!r} has shape {tuple(a.shape)} and "
                f"{right.name!r} has shape {tuple(b.shape)}; matmul needs matrices (n, k) and "
                f"(k, m) whose inner sizes agree"
            )
        return a @ b

    def gradient(self, grad, a, b, *, output, xp):
        return grad @ b.T, a.T @ grad


class Square(Operation):
    """a ** 2, element-wise."""

    kind = "square"

    def compute(self, a, *, xp):
        return a * a

    def gradient(self, grad, a, *, output, xp):
        return (2.0 * a * grad,)


class Exp(Operation):
    """exp(a), element-wise."""

    kind = "exp"

    def compute(self, a, *, xp):
        return xp.exp(a)

    def gradient(self, grad, a, *, output, xp):
        return (grad * output,)


class Log(Operation):
    """The natural log of a, element-wise."""

    kind = "log"

    def compute(self, a, *, xp):
        return xp.log(a)

    def gradient(self, grad, a, *, output, xp):
        return (grad / a,)


# --- activations (mlpx.activations) ------------------------------------------------------

class _Activation(Operation):
    """An activation from mlpx's table; element-wise, or softmax over the last axis."""

    def compute(self, a, *, xp):
        return get_activation(self.kind).forward(a, xp=xp)

    def gradient(self, grad, a, *, output, xp):
        return (get_activation(self.kind).backward(a, output, grad, xp=xp),)


class Sigmoid(_Activation):
    """1 / (1 + exp(-a)), without overflow."""

    kind = "sigmoid"


class Relu(_Activation):
    """max(a, 0)."""

    kind = "relu"


class Tanh(_Activation):
    """tanh(a)."""

    kind = "tanh"


class Softmax(_Activation):
    """exp(a) / sum(exp(a)) over the last axis (each row of a batch)."""

    kind = "softmax"


# --- reductions --------------------------------------------------------------------------

def _check_axis(axis, *, name: str):
    if axis is not None and (isinstance(axis, bool) or not isinstance(axis, int)):
        raise MlpxTypeError(f"{name}(axis={axis!r}): axis must be None or an int")
    return axis


class ReduceSum(Operation):
    """The sum of a over ``axis`` (None: every element)."""

    kind = "reduce_sum"

    def __init__(self, a, axis: int | None = None, *, name: str | None = None):
        self.axis = _check_axis(axis, name=self.kind)
        super().__init__(a, name=name)

    def _check(self, a):
        if self.axis is not None and not -a.ndim <= self.axis < a.ndim:
            raise GraphError(f"{self.kind} {self.name!r}: axis {self.axis} is out of range "
                             f"for {self.inputs[0].name!r} of shape {tuple(a.shape)}")

    def compute(self, a, *, xp):
        self._check(a)
        return xp.sum(a, axis=self.axis)

    def _spread(self, grad, a, *, xp):
        """``grad`` (the reduced shape) repeated along the reduced axis, shape of a."""
        if self.axis is not None:
            grad = xp.expand_dims(grad, axis=self.axis)
        return grad * xp.ones_like(a)

    def gradient(self, grad, a, *, output, xp):
        return (self._spread(grad, a, xp=xp),)


class ReduceMean(ReduceSum):
    """The mean of a over ``axis`` (None: every element)."""

    kind = "reduce_mean"

    def compute(self, a, *, xp):
        self._check(a)
        return xp.mean(a, axis=self.axis)

    def gradient(self, grad, a, *, output, xp):
        count = a.shape[self.axis] if self.axis is not None else _size(a)
        return (self._spread(grad, a, xp=xp) / count,)


def _size(array) -> int:
    size = 1
    for n in array.shape:
        size *= n
    return size


# --- loss ------------------------------------------------------------------------------

class SoftmaxCrossEntropy(Operation):
    """Per-row cross-entropy ``-sum_j labels_j log softmax(logits)_j`` over the last axis.

    Computed from the logits with the log-sum-exp, so logits of +-1e4 give finite values;
    the gradient with respect to the logits is ``softmax(logits) sum(labels) - labels``.
    """

    kind = "softmax_cross_entropy"

    def compute(self, labels, logits, *, xp):
        if tuple(labels.shape) != tuple(logits.shape):
            raise GraphError(
                f"{self.kind} {self.name!r}: labels {self.inputs[0].name!r} have shape "
                f"{tuple(labels.shape)} but logits {self.inputs[1].name!r} have "
                f"{tuple(logits.shape)}; give one-hot labels of the logits' shape"
            )
        shifted, log_normaliser, _ = _shifted_softmax_parts(logits, xp=xp)
        return xp.sum(labels * (log_normaliser - shifted), axis=-1)

    def gradient(self, grad, labels, logits, *, output, xp):
        grad = xp.expand_dims(grad, axis=-1)
        shifted, log_normaliser, exp_shifted = _shifted_softmax_parts(logits, xp=xp)
        log_softmax = shifted - log_normaliser
        probabilities = exp_shifted / xp.sum(exp_shifted, axis=-1, keepdims=True)
        total = xp.sum(labels, axis=-1, keepdims=True)
        return -grad * log_softmax, grad * (probabilities * total - labels)


def _shifted_softmax_parts(logits, *, xp):
    """``logits - max`` per row, its log-sum-exp and its exp (the row max is taken out first,
    so logits of 1e4 in float32 keep the digits of log(2) that ``1e4 + log(2)`` would lose)."""
    shifted = logits - xp.max(logits, axis=-1, keepdims=True)
    exp_shifted = xp.exp(shifted)
    return shifted, xp.log(xp.sum(exp_shifted, axis=-1, keepdims=True)), exp_shifted


# --- the functions learners call -------------------------------------------------------

def add(a, b, name: str | None = None) -> Add:
    """a + b; either may be a node, a number or an array."""
    return Add(a, b, name=name)


def subtract(a, b, name: str | None = None) -> Subtract:
    """a - b."""
    return Subtract(a, b, name=name)


def negative(a, name: str | None = None) -> Negative:
    """-a."""
    return Negative(a, name=name)


def multiply(a, b, name: str | None = None) -> Multiply:
    """a * b, element-wise."""
    return Multiply(a, b, name=name)


def divide(a, b, name: str | None = None) -> Divide:
    """a / b, element-wise."""
    return Divide(a, b, name=name)


def matmul(a, b, name: str | None = None) -> MatMul:
    """a @ b for a of shape (n, k) and b of shape (k, m)."""
    return MatMul(a, b, name=name)


def square(a, name: str | None = None) -> Square:
    """a ** 2, element-wise."""
    return Square(a, name=name)


def exp(a, name: str | None = None) -> Exp:
    """exp(a), element-wise."""
    return Exp(a, name=name)


def log(a, name: str | None = None) -> Log:
    """log(a), element-wise."""
    return Log(a, name=name)


def sigmoid(a, name: str | None = None) -> Sigmoid:
    """The logistic function, element-wise."""
    return Sigmoid(a, name=name)


def relu(a, name: str | None = None) -> Relu:
    """max(a, 0), element-wise."""
    return Relu(a, name=name)


def tanh(a, name: str | None = None) -> Tanh:
    """tanh(a), element-wise."""
    return Tanh(a, name=name)


def softmax(a, name: str | None = None) -> Softmax:
    """Softmax over the last axis."""
    return Softmax(a, name=name)


def reduce_sum(a, axis: int | None = None, name: str | None = None) -> ReduceSum:
    """The sum over ``axis`` (None: all elements, a scalar)."""
    return ReduceSum(a, axis, name=name)


def reduce_mean(a, axis: int | None = None, name: str | None = None) -> ReduceMean:
    """The mean over ``axis`` (None: all elements, a scalar)."""
    return ReduceMean(a, axis, name=name)


def softmax_cross_entropy_with_logits(labels, logits, name: str | None = None):
    """Per-row cross-entropy of softmax(logits) against (one-hot) labels, shape (n,).

    The stable form of ``-reduce_sum(labels * log(softmax(logits)), axis=-1)``.
    """
    return SoftmaxCrossEntropy(labels, logits, name=name)
