"""NumPy kernels for the optimizer step on one flat parameter vector (the fast path).

``Optimizer.update_`` in :mod:`mlpx.optim` is the reference; each of its lines allocates a
temporary. These kernels run the same operations in the same order, so they give the same
float results, but write every intermediate into preallocated scratch with ``out=``, and
pass scalars as 0-d arrays of the parameters' dtype (a Python float operand costs a NumPy
call about half a microsecond more, which matters on small networks).

SGD, Adam, AdamW, RMSprop and Adagrad have a kernel; other optimizers (subclasses and
users' own included) run their reference ``update_``. Where the optional C extension was
built (:mod:`mlpx._compiled`), Adam's nine NumPy passes, SGD's two (five with momentum)
and RMSprop's nine (Adagrad's seven) become one: the same float operations in the same
order, so the same bits.
"""

from __future__ import annotations

import numpy as np

from mlpx import _compiled
from mlpx.optim import SGD, Adagrad, Adam, AdamW, Optimizer, RMSprop


class FlatStep:
    """One optimizer's step on a flat vector, with ``out=`` into preallocated scratch.

    Parameters
    ----------
    optimizer : Optimizer
    state : dict
        ``optimizer.init([param])``; its arrays are updated in place and its step counted.
    param, grad : arrays of shape (n_params,)
        The flat parameter and gradient vectors the step will always be given.
    """

    def __init__(self, optimizer: Optimizer, state: dict, param, grad) -> None:
        self.optimizer, self.state = optimizer, state
        self.param, self.grad = param, grad
        self.lr = self.scalar()
        self.arrays = self.work_arrays()

    def work_arrays(self) -> tuple:
        """What ``apply`` works on: param, grad, scratch and the state's slot arrays."""
        slots = [self.state[slot][0] for slot in self.optimizer.slots]
        return (self.param, self.grad, np.empty_like(self.param), *slots)

    def __call__(self, lr: float) -> None:
        """Take one step with learning rate ``lr``."""
        self.state["step"] += 1
        self.apply(*self.arrays, *self.scalars(float(lr), self.state["step"]))

    def scalar(self, value: float = 0.0):
        """A 0-d array of the parameters' dtype, to be refilled with ``[...] = value``."""
        return np.asarray(value, dtype=self.param.dtype)

    def scalars(self, lr: float, step: int) -> tuple:
        self.lr[...] = lr
        return (self.lr,)

    @staticmethod
    def apply(param, grad, scratch, *slots_and_scalars) -> None:
        raise NotImplementedError


class _SGDStep(FlatStep):
    """``p -= lr * g`` (reference: ``SGD._apply`` without momentum)."""

    @staticmethod
    def apply(param, grad, scratch, lr):
        np.multiply(grad, lr, out=scratch)
        np.subtract(param, scratch, out=param)


class _MomentumStep(FlatStep):
    """``v = mu v + g``; ``p -= lr * v`` or, Nesterov, ``p -= lr * (g + mu v)``."""

    def scalars(self, lr, step):
        self.lr[...] = lr
        return self.lr, self.momentum, self.optimizer.nesterov

    def work_arrays(self):
        self.momentum = self.scalar(self.optimizer.momentum)
        return super().work_arrays()

    @staticmethod
    def apply(param, grad, scratch, velocity, lr, momentum, nesterov):
        np.multiply(velocity, momentum, out=velocity)
        np.add(velocity, grad, out=velocity)
        if nesterov:
            np.multiply(velocity, momentum, out=scratch)
            np.add(grad, scratch, out=scratch)
        else:
            np.copyto(scratch, velocity)
        np.multiply(scratch, lr, out=scratch)
        np.subtract(param, scratch, out=param)


def _adam_step_constants(adam: Adam, lr: float, step: int) -> tuple:
    """(step_size, epsilon, decay) of ``Adam.step_scalars`` at this step; decay None for Adam.

    Bias correction folded into two scalars: ``p -= step_size * m / (sqrt(v) + epsilon)``.
    """
    scalars = adam._step_scalars(step, lr)
    return scalars["step_size"], scalars["epsilon"], scalars.get("decay")


class _AdamStep(FlatStep):
    """Adam's step in ``Adam._step``'s order of operations.

    m and v are the two rows of one (2, n) buffer (the state's arrays become views of it),
    so their decay and their increments each take one call instead of two.
    """

    #: Up to this many parameters, the betas are stored as full (2, n) rows: NumPy is
    #: faster without broadcasting, and the extra memory is small.
    FULL_ROWS_UP_TO = 1 << 16

    def __init__(self, optimizer, state, param, grad) -> None:
        self.moments = np.stack([state["m"][0], state["v"][0]])
        state["m"][0], state["v"][0] = self.moments[0], self.moments[1]
        beta1, beta2 = optimizer.beta1, optimizer.beta2
        width = param.shape[0] if param.shape[0] <= self.FULL_ROWS_UP_TO else 1
        self.decays = np.repeat(np.array([[beta1], [beta2]], dtype=param.dtype), width, axis=1)
        self.increments = np.repeat(np.array([[1.0 - beta1], [1.0 - beta2]], dtype=param.dtype),
                                    width, axis=1)
        super().__init__(optimizer, state, param, grad)
        self.step_size, self.epsilon, self.decay = self.scalar(), self.scalar(), self.scalar()

    def work_arrays(self):
        scratch = np.empty((2, self.param.shape[0]), dtype=self.param.dtype)
        return self.param, self.grad, scratch, self.moments

    def scalars(self, lr, step):
        step_size, epsilon, decay = _adam_step_constants(self.optimizer, lr, step)
        self.step_size[...], self.epsilon[...] = step_size, epsilon
        if decay is not None:
            self.decay[...] = decay
        return (self.decays, self.increments, self.step_size, self.epsilon,
                None if decay is None else self.decay)

    @staticmethod
    def apply(param, grad, scratch, moments, decays, increments, step_size, epsilon, decay):
        if decay is not None:
            np.multiply(param, decay, out=param)
        np.multiply(moments, decays, out=moments)  # m *= b1; v *= b2
        np.multiply(grad, increments, out=scratch)  # (1 - b1) g; (1 - b2) g
        np.multiply(scratch[1], grad, out=scratch[1])  # (1 - b2) g g
        np.add(moments, scratch, out=moments)
        denom, update = scratch[0], scratch[1]
        np.sqrt(moments[1], out=denom)
        np.add(denom, epsilon, out=denom)
        np.divide(moments[0], denom, out=update)
        np.multiply(update, step_size, out=update)
        np.subtract(param, update, out=param)


def _square_average_constants(optimizer: RMSprop | Adagrad) -> tuple[float, float]:
    """``(rho, 1 - rho)`` of RMSprop's ``s = rho s + (1 - rho) g^2``; Adagrad's sum
    ``s = s + g^2`` is ``(1.0, 1.0)``: multiplying by exactly 1 changes no number."""
    if isinstance(optimizer, RMSprop):
        return optimizer.rho, 1.0 - optimizer.rho
    return 1.0, 1.0


class _SquareAverageStep(FlatStep):
    """RMSprop's and Adagrad's step in their ``_apply``'s order of operations.

    ``s = s * rho + (1 - rho) * (g * g)`` (Adagrad: ``s = s + g * g``, without the two
    products by 1); ``p -= lr * (g / (sqrt(s) + epsilon))``.
    """

    def work_arrays(self):
        rho, one_minus_rho = _square_average_constants(self.optimizer)
        decays = isinstance(self.optimizer, RMSprop)
        self.rho = self.scalar(rho) if decays else None
        self.one_minus_rho = self.scalar(one_minus_rho) if decays else None
        self.epsilon = self.scalar(self.optimizer.epsilon)
        return super().work_arrays()

    def scalars(self, lr, step):
        self.lr[...] = lr
        return self.lr, self.rho, self.one_minus_rho, self.epsilon

    @staticmethod
    def apply(param, grad, scratch, square_avg, lr, rho, one_minus_rho, epsilon):
        if rho is not None:
            np.multiply(square_avg, rho, out=square_avg)
        np.multiply(grad, grad, out=scratch)
        if one_minus_rho is not None:
            np.multiply(scratch, one_minus_rho, out=scratch)
        np.add(square_avg, scratch, out=square_avg)
        np.sqrt(square_avg, out=scratch)
        np.add(scratch, epsilon, out=scratch)
        np.divide(grad, scratch, out=scratch)
        np.multiply(scratch, lr, out=scratch)
        np.subtract(param, scratch, out=param)


class _CompiledStep(FlatStep):
    """An optimizer's step in one pass of a ``mlpx._kernels`` loop (the NumPy kernel's bits).

    Besides the whole-vector step, it can update a range of parameters at a time (``begin``
    the step, then call each ``part``), which the training loop uses to update each layer
    right after its gradient is made, while that gradient is still in the cache.

    It also takes an L2 penalty's gradient in the same pass: given ``l2``, the parameters
    named by ``penalise`` (the weights) step with the gradient ``grad + l2 * param``, the
    generic backward's ``grad_W + l2 * W`` (the same bits), and ``sum_of_squares`` is then
    the sum of their squares before the step, for the logged penalty.
    Subclasses name the kernel and its scalar arguments.
    """

    #: Takes the L2 penalty's gradient inside its pass (``l2`` of ``__call__``/``begin``).
    fuses_l2 = True

    def kernel(self):
        """The ``mlpx._kernels`` function: (*arrays, *scalars, l2, penalised)."""
        raise NotImplementedError

    def step_scalars(self, lr: float, step: int) -> tuple:
        """The kernel's scalar arguments for step number ``step`` at rate ``lr``."""
        raise NotImplementedError

    def slot_arrays(self) -> tuple:
        """The optimizer state's arrays the kernel updates, after param and grad."""
        return tuple(self.state[slot][0] for slot in self.optimizer.slots)

    def work_arrays(self) -> tuple:
        for slot in self.optimizer.slots:
            self.state[slot][0] = np.ascontiguousarray(self.state[slot][0])
        self.run = self.kernel()
        self.l2, self.sum_of_squares = None, 0.0
        self.penalised = np.array([0, self.param.shape[0]], dtype=np.intp)
        self.scalars_now = ()
        return (self.param, self.grad, *self.slot_arrays())

    def penalise(self, ranges) -> None:
        """The parameters an L2 coefficient applies to: ``(start, stop)`` pairs, in order
        (by default all of them)."""
        self.penalised = np.array([bound for pair in ranges for bound in pair], dtype=np.intp)

    def begin(self, lr: float, l2: float | None = None) -> None:
        """Count a step and work out its scalars for ``lr``.

        ``l2``: the L2 coefficient of this step's penalty (None: no penalty);
        ``sum_of_squares`` restarts at 0.
        """
        self.state["step"] += 1
        self.scalars_now = self.step_scalars(float(lr), self.state["step"])
        self.l2, self.sum_of_squares = l2, 0.0

    def part(self, start: int, stop: int, penalised_stop: int | None = None):
        """A function that applies the begun step to parameters ``start:stop``.

        With an ``l2`` given to ``begin``, parameters ``start:penalised_stop`` (a layer's
        weights, its biases following them) take the penalty's gradient, and their sum of
        squares is added to ``sum_of_squares``.
        """
        views = tuple(None if array is None else array[start:stop] for array in self.arrays)
        penalised_stop = stop if penalised_stop is None else penalised_stop
        penalised = np.array([0, penalised_stop - start], dtype=np.intp)
        run = self.run

        def update_part() -> None:
            if self.l2 is None:
                run(*views, *self.scalars_now)
            else:
                self.sum_of_squares += run(*views, *self.scalars_now, self.l2, penalised)

        return update_part

    def __call__(self, lr: float, l2: float | None = None) -> None:
        """One step of the whole vector; with ``l2``, on the penalised gradient."""
        self.begin(lr, l2)
        if l2 is None:
            self.run(*self.arrays, *self.scalars_now)
        else:
            self.sum_of_squares = self.run(*self.arrays, *self.scalars_now, l2, self.penalised)


class _CompiledAdamStep(_CompiledStep):
    """``_AdamStep``'s operations in one pass: ``mlpx._kernels.adam_step`` (bitwise equal).

    It needs no scratch: m and v stay the state's own (contiguous) arrays.
    """

    def kernel(self):
        beta1, beta2 = self.optimizer.beta1, self.optimizer.beta2
        self.constants = (beta1, 1.0 - beta1, beta2, 1.0 - beta2)
        return _compiled.kernels.adam_step

    def step_scalars(self, lr, step):
        return (*self.constants, *_adam_step_constants(self.optimizer, lr, step))


class _CompiledSGDStep(_CompiledStep):
    """``_SGDStep`` and ``_MomentumStep`` in one pass: ``mlpx._kernels.sgd_step``.

    Plain SGD passes no velocity (None), so the kernel ignores momentum and Nesterov.
    """

    def kernel(self):
        return _compiled.kernels.sgd_step

    def slot_arrays(self):
        return super().slot_arrays() or (None,)

    def step_scalars(self, lr, step):
        return lr, self.optimizer.momentum, self.optimizer.nesterov


class _CompiledSquareAverageStep(_CompiledStep):
    """``_SquareAverageStep`` in one pass: ``mlpx._kernels.rmsprop_step`` (bitwise equal).

    Adagrad runs it with rho and 1 - rho both exactly 1.
    """

    def kernel(self):
        self.constants = (*_square_average_constants(self.optimizer), self.optimizer.epsilon)
        return _compiled.kernels.rmsprop_step

    def step_scalars(self, lr, step):
        return (lr, *self.constants)


def flat_step(optimizer: Optimizer, state: dict, param, grad) -> FlatStep | None:
    """The kernel for ``optimizer`` on these flat vectors, or None to use ``update_``."""
    kind = type(optimizer)
    if kind is SGD:
        if _compiled.kernels is not None:
            return _CompiledSGDStep(optimizer, state, param, grad)
        return (_MomentumStep if optimizer.momentum else _SGDStep)(optimizer, state, param,
                                                                  grad)
    if kind in (Adam, AdamW):
        step_class = _AdamStep if _compiled.kernels is None else _CompiledAdamStep
        return step_class(optimizer, state, param, grad)
    if kind in (RMSprop, Adagrad):
        step_class = (_SquareAverageStep if _compiled.kernels is None
                      else _CompiledSquareAverageStep)
        return step_class(optimizer, state, param, grad)
    return None
