"""Optimizers and learning-rate schedules.

An optimizer is a pair of steps on explicit state (the optax shape)::

    state = optimizer.init(params)
    params, state = optimizer.update(params, grads, state, learning_rate=lr, xp=xp)

``update`` returns new arrays and never writes into the old ones; ``update_`` is the same
step written into the arrays it is given (rebinding list entries where a backend's arrays
cannot be written), which is what the training loop runs on its flat parameter vector.

A schedule maps the epoch (0-based) to a learning rate; ``ReduceLROnPlateau`` also
watches a monitored value at the end of each epoch.
"""

from __future__ import annotations

import math
import operator
from typing import Any

import array_api_compat
import numpy as np

from mlpx._errors import MlpxTypeError, MlpxValueError


def check_learning_rate(value, *, parameter: str = "learning_rate") -> float:
    """A finite float > 0, or a clear error naming ``parameter``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) and not hasattr(
        value, "__float__"
    ):
        raise MlpxTypeError(f"{parameter}={value!r} must be a number > 0 or a schedule")
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise MlpxTypeError(f"{parameter}={value!r} must be a number > 0 or a schedule, "
                            "not an array") from None
    if not math.isfinite(value) or value <= 0:
        raise MlpxValueError(f"{parameter}={value!r} must be a finite number > 0, e.g. 1e-3")
    return value


def _as_float(value, *, parameter: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise MlpxTypeError(f"{parameter}={value!r} must be a number")
    return float(value)


def _check_int(value, *, parameter: str, minimum: int) -> int:
    """An int (or NumPy integer) >= ``minimum``; 2.7 or True are refused, not truncated."""
    try:
        if isinstance(value, bool):
            raise TypeError
        value = operator.index(value)
    except TypeError:
        raise MlpxTypeError(f"{parameter}={value!r} must be an int >= {minimum}") from None
    if value < minimum:
        raise MlpxValueError(f"{parameter}={value!r} must be an int >= {minimum}")
    return value


def _check_fraction(value, *, parameter: str, low_inclusive: bool = True) -> float:
    value = _as_float(value, parameter=parameter)
    ok = (0.0 <= value < 1.0) if low_inclusive else (0.0 < value < 1.0)
    if not ok:
        interval = "[0, 1)" if low_inclusive else "(0, 1)"
        raise MlpxValueError(f"{parameter}={value!r} must be in {interval}")
    return value


def _check_positive(value, *, parameter: str) -> float:
    value = _as_float(value, parameter=parameter)
    if not math.isfinite(value) or value <= 0:
        raise MlpxValueError(f"{parameter}={value!r} must be a finite number > 0")
    return value


# --- schedules ---------------------------------------------------------------------------

class Schedule:
    """Base class: ``schedule(epoch) -> learning rate``.

    Parameters
    ----------
    learning_rate : float
        The initial learning rate.
    """

    def __init__(self, learning_rate: float = 1e-3) -> None:
        self.initial_learning_rate = check_learning_rate(learning_rate)

    def __call__(self, epoch: int) -> float:
        raise NotImplementedError

    def observe(self, epoch: int, logs: dict[str, float]) -> None:
        """Called at the end of every epoch with its logs; plateau schedules react."""

    def get_state(self) -> dict[str, float]:
        """What the schedule has learned from the epochs so far (for checkpoints).

        Schedules that are a function of the epoch alone have none; a plateau schedule
        returns its current rate, best value and wait count.
        """
        return {}

    def set_state(self, state: dict[str, float]) -> None:
        """Put back a state from :meth:`get_state`."""

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({fields})"


class Constant(Schedule):
    """The same learning rate every epoch."""

    def __call__(self, epoch: int) -> float:
        return self.initial_learning_rate


class StepDecay(Schedule):
    """lr * gamma ** (epoch // step_size)."""

    def __init__(self, learning_rate: float = 1e-3, step_size: int = 10, gamma: float = 0.1):
        super().__init__(learning_rate)
        self.step_size = _check_int(step_size, parameter="step_size", minimum=1)
        self.gamma = _check_positive(gamma, parameter="gamma")

    def __call__(self, epoch: int) -> float:
        return self.initial_learning_rate * self.gamma ** (epoch // self.step_size)


class ExponentialDecay(Schedule):
    """lr * gamma ** epoch."""

    def __init__(self, learning_rate: float = 1e-3, gamma: float = 0.95):
        super().__init__(learning_rate)
        self.gamma = _check_positive(gamma, parameter="gamma")

    def __call__(self, epoch: int) -> float:
        return self.initial_learning_rate * self.gamma**epoch


class InverseScaling(Schedule):
    """lr / (epoch + 1) ** power_t (scikit-learn's "invscaling", per epoch)."""

    def __init__(self, learning_rate: float = 1e-3, power_t: float = 0.5):
        super().__init__(learning_rate)
        self.power_t = _check_positive(power_t, parameter="power_t")

    def __call__(self, epoch: int) -> float:
        return self.initial_learning_rate / (epoch + 1) ** self.power_t


class CosineDecay(Schedule):
    """Cosine annealing from lr to ``min_learning_rate`` over ``total_epochs``, then flat."""

    def __init__(self, learning_rate: float = 1e-3, total_epochs: int = 100,
                 min_learning_rate: float = 0.0):
        super().__init__(learning_rate)
        self.total_epochs = _check_int(total_epochs, parameter="total_epochs", minimum=1)
        if not 0.0 <= float(min_learning_rate) <= self.initial_learning_rate:
            raise MlpxValueError(
                f"min_learning_rate={min_learning_rate!r} must be in [0, learning_rate]"
            )
        self.min_learning_rate = float(min_learning_rate)

    def __call__(self, epoch: int) -> float:
        progress = min(epoch, self.total_epochs) / self.total_epochs
        cosine = 0.5 * (1.0 + math.cos(math.pi * progress))
        span = self.initial_learning_rate - self.min_learning_rate
        return self.min_learning_rate + span * cosine


class ReduceLROnPlateau(Schedule):
    """Multiply the learning rate by ``factor`` when ``monitor`` stops improving.

    Parameters
    ----------
    learning_rate : float
    monitor : str
        A key of the epoch logs ("loss", "val_loss", "accuracy", ...).
    factor : float in (0, 1)
    patience : int
        Epochs without improvement before reducing.
    min_learning_rate : float
    min_delta : float
        The least change that counts as an improvement.
    mode : {"auto", "min", "max"}
        "auto" maximises accuracy-like keys and minimises the rest.
    """

    def __init__(self, learning_rate: float = 1e-3, monitor: str = "loss", factor: float = 0.1,
                 patience: int = 10, min_learning_rate: float = 0.0, min_delta: float = 1e-4,
                 mode: str = "auto"):
        super().__init__(learning_rate)
        self.monitor = monitor
        self.factor = _check_fraction(factor, parameter="factor", low_inclusive=False)
        self.patience = _check_int(patience, parameter="patience", minimum=0)
        if not 0.0 <= float(min_learning_rate) <= self.initial_learning_rate:
            raise MlpxValueError(
                f"min_learning_rate={min_learning_rate!r} must be in [0, learning_rate]"
            )
        self.min_learning_rate = float(min_learning_rate)
        self.min_delta = abs(float(min_delta))
        self.mode = resolve_mode(mode, monitor)
        self._current = self.initial_learning_rate
        self._best = math.inf if self.mode == "min" else -math.inf
        self._wait = 0

    def __call__(self, epoch: int) -> float:
        return self._current

    def get_state(self) -> dict[str, float]:
        return {"current": self._current, "best": self._best, "wait": self._wait}

    def set_state(self, state: dict[str, float]) -> None:
        self._current = float(state["current"])
        self._best = float(state["best"])
        self._wait = int(state["wait"])

    def observe(self, epoch: int, logs: dict[str, float]) -> None:
        if self.monitor not in logs:
            raise MlpxValueError(
                f"ReduceLROnPlateau(monitor={self.monitor!r}) got epoch logs without that key "
                f"({', '.join(logs)}); pass validation_data for val_* keys"
            )
        value = logs[self.monitor]
        if is_improvement(value, self._best, mode=self.mode, min_delta=self.min_delta):
            self._best, self._wait = value, 0
            return
        self._wait += 1
        if self._wait > self.patience:
            self._current = max(self._current * self.factor, self.min_learning_rate)
            self._wait = 0


def resolve_mode(mode: str, monitor: str) -> str:
    """"min" or "max" for a monitored key ("auto" maximises accuracy, r2 and score)."""
    if mode not in ("auto", "min", "max"):
        raise MlpxValueError(f"mode={mode!r} must be 'auto', 'min' or 'max'")
    if mode != "auto":
        return mode
    return "max" if any(key in monitor for key in ("acc", "r2", "score")) else "min"


def is_improvement(value: float, best: float, *, mode: str, min_delta: float) -> bool:
    """True when ``value`` beats ``best`` by more than ``min_delta`` in direction ``mode``."""
    if mode == "min":
        return value < best - min_delta
    return value > best + min_delta


SCHEDULES = {
    "constant": Constant,
    "step": StepDecay,
    "exponential": ExponentialDecay,
    "invscaling": InverseScaling,
    "cosine": CosineDecay,
    "plateau": ReduceLROnPlateau,
}


def as_schedule(learning_rate) -> Schedule:
    """A Schedule from a number (constant) or a Schedule."""
    if isinstance(learning_rate, Schedule):
        return learning_rate
    return Constant(check_learning_rate(learning_rate))


# --- optimizers --------------------------------------------------------------------------

class Optimizer:
    """Base class. Subclasses implement ``_apply`` (and list their state arrays in ``slots``).

    Two ways to take a step:

    - ``update(params, grads, state, ...)`` returns new parameters and a new state and never
      touches its inputs (the functional, optax-style reference);
    - ``update_(params, grads, state, ...)`` updates the lists it is given: each array is
      written in place where the backend allows it (NumPy, CuPy, PyTorch, array-api-strict)
      and the list entry is rebound where it does not. The training loop uses this one on
      one flat parameter vector, so a step is a few passes over one array.

    Both run the same ``_apply``, written with the array API's in-place operators on list
    entries (``m[i] *= beta1``), which is what makes "in place where writable, rebound where
    not" automatic. ``_apply`` takes the learning rate; an optimizer whose step takes other
    numbers that change from step to step (Adam's bias corrections) lists them in
    ``_step_scalars`` and implements ``_step``, which takes them all.

    Parameters
    ----------
    learning_rate : float or Schedule
        Used when ``fit`` is not given its own ``learning_rate``.
    """

    default_learning_rate = 1e-3
    #: Names of the state entries that hold one array per parameter.
    slots: tuple[str, ...] = ()

    def __init__(self, learning_rate=None) -> None:
        if learning_rate is None:
            learning_rate = self.default_learning_rate
        self.learning_rate = learning_rate if isinstance(learning_rate, Schedule) else (
            check_learning_rate(learning_rate)
        )

    def init(self, params: list) -> dict[str, Any]:
        """The initial state: ``{"step": 0}`` and a list of zero arrays per slot.

        Parameters
        ----------
        params : list of arrays
            The state arrays get their shapes, dtypes and devices.
        """
        state: dict[str, Any] = {"step": 0}
        for slot in self.slots:
            state[slot] = [_zeros_like(p) for p in params]
        return state

    def update(self, params: list, grads: list, state: dict, *, learning_rate, xp):
        """One step: returns ``(new_params, new_state)``; the inputs are not modified.

        Parameters
        ----------
        params, grads : lists of arrays of matching shapes
        state : dict from ``init`` or the previous ``update``
        learning_rate : float
        xp : the array-API namespace

        Returns
        -------
        new_params : list of arrays
        new_state : dict
        """
        new_params = [xp.asarray(p, copy=True) for p in params]
        new_state = {
            key: [xp.asarray(a, copy=True) for a in value] if key in self.slots else value
            for key, value in state.items()
        }
        self.update_(new_params, grads, new_state, learning_rate=learning_rate, xp=xp)
        return new_params, new_state

    def update_(self, params: list, grads: list, state: dict, *, learning_rate, xp) -> None:
        """One step that updates ``params`` and ``state`` (and its step count) in place.

        Arrays are written in place where the backend allows; otherwise the entries of the
        lists are rebound to new arrays, so callers read the results back from the lists.

        Raises
        ------
        MlpxValueError, MlpxTypeError
            When grads or the state's arrays do not match params one for one in shape, the
            step count is not an int, or the learning rate is not a number > 0; nothing is
            changed then.
        """
        self._check_step_arrays(params, grads, state)
        step = state.get("step")
        if type(step) is not int:
            raise MlpxValueError(
                f"state['step']={step!r} must be an int; make the state with "
                f"{type(self).__name__}().init(params)"
            )
        scalars = self._step_scalars(step + 1, check_learning_rate(learning_rate))
        state["step"] += 1
        self._step(params, grads, state, scalars, xp)

    def step_scalars(self, step: int, learning_rate: float) -> dict[str, float]:
        """Every number of step ``step`` (1 for the first) that may change between steps.

        ``update_`` computes them as Python floats. A step recorded once and replayed (a
        CUDA graph, ``mlpx/_static_step.py``) cannot take new Python numbers, so it is
        given them as 0-d device arrays (``update_with_scalars_``), rounded to the
        parameters' dtype as the Python floats are: the same numbers either way.

        Returns
        -------
        dict
            ``{"lr": learning_rate}``, or what the optimizer's ``_step_scalars`` lists
            (Adam's step size and epsilon; AdamW adds its decay factor).

        Raises
        ------
        MlpxValueError, MlpxTypeError
            For a step that is not an int >= 1, or a learning rate that is not a number > 0.
        """
        if type(step) is not int or step < 1:
            raise MlpxValueError(f"step={step!r} must be an int >= 1 (1 for the first step)")
        return self._step_scalars(step, check_learning_rate(learning_rate))

    def _step_scalars(self, step: int, learning_rate: float) -> dict[str, float]:
        """``step_scalars`` for checked arguments."""
        return {"lr": learning_rate}

    def update_with_scalars_(self, params: list, grads: list, state: dict, scalars: dict, *,
                             xp) -> None:
        """``update_`` with the step's scalars given, and the step count left alone.

        Parameters
        ----------
        params, grads, state
            As for ``update_``.
        scalars : dict
            ``step_scalars(step, learning_rate)``, each value a float or a 0-d array of the
            parameters' dtype (not read: it may be on a device).

        Raises
        ------
        MlpxValueError
            As ``update_``, and for scalars with other names than ``step_scalars`` gives,
            or that are neither numbers nor 0-d arrays of the parameters' dtype.
        """
        self._check_step_arrays(params, grads, state)
        expected = list(self._step_scalars(1, 1.0))
        if not isinstance(scalars, dict) or sorted(scalars) != sorted(expected):
            raise MlpxValueError(
                f"scalars={scalars!r} must be a dict of {expected}; make it with "
                f"{type(self).__name__}.step_scalars(step, learning_rate)"
            )
        for name, value in scalars.items():
            if not (_is_0d_array(value) and params and value.dtype == params[0].dtype
                    or type(value) in (int, float) and math.isfinite(value)):
                raise MlpxValueError(
                    f"scalars[{name!r}]={value!r} must be a finite number or a 0-d array of "
                    "the parameters' dtype"
                )
        self._step(params, grads, state, scalars, xp)

    def _step(self, params, grads, state, scalars: dict, xp) -> None:
        """One step given ``step_scalars``: here ``_apply`` with its learning rate."""
        self._apply(params, grads, state, scalars["lr"], xp)

    def _check_step_arrays(self, params: list, grads: list, state: dict) -> None:
        if len(grads) != len(params):
            raise MlpxValueError(
                f"grads has {len(grads)} arrays but params has {len(params)}; pass one gradient "
                "per parameter, in the same order"
            )
        for slot in self.slots:
            if len(state.get(slot, ())) != len(params):
                raise MlpxValueError(
                    f"state[{slot!r}] does not match params; make the state with "
                    f"{type(self).__name__}().init(params)"
                )
        for i, (param, grad) in enumerate(zip(params, grads)):
            shapes = [tuple(param.shape), tuple(grad.shape),
                      *(tuple(state[slot][i].shape) for slot in self.slots)]
            if any(shape != shapes[0] for shape in shapes):
                raise MlpxValueError(
                    f"params[{i}] has shape {shapes[0]} but grads[{i}] has {shapes[1]}"
                    + (f" and its state {shapes[2:]}" if self.slots else "")
                    + "; each gradient and state array needs its parameter's shape"
                )

    def _apply(self, params, grads, state, lr, xp):
        raise NotImplementedError

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({fields})"


def _is_0d_array(value) -> bool:
    """A 0-d array of any array-API library (NumPy scalars such as np.float64 are not)."""
    return (array_api_compat.is_array_api_obj(value) and not isinstance(value, np.generic)
            and value.ndim == 0)


def _zeros_like(param):
    """Zeros of the shape, dtype and device of ``param``, in its own namespace."""
    return array_api_compat.array_namespace(param).zeros_like(param)


class SGD(Optimizer):
    """Gradient descent with optional (Nesterov) momentum, as in PyTorch.

    ``v = momentum * v + g``; step ``g + momentum * v`` (Nesterov) or ``v``;
    ``p = p - lr * step``. With momentum 0 this is plain ``p - lr * g``.
    """

    default_learning_rate = 0.01

    def __init__(self, learning_rate=None, momentum: float = 0.0, nesterov: bool = False):
        super().__init__(learning_rate)
        self.momentum = _check_fraction(momentum, parameter="momentum")
        if nesterov and self.momentum == 0.0:
            raise MlpxValueError("nesterov=True needs momentum > 0, e.g. momentum=0.9")
        self.nesterov = bool(nesterov)
        self.slots = ("velocity",) if self.momentum else ()

    def _apply(self, params, grads, state, lr, xp):
        for i, grad in enumerate(grads):
            if not self.momentum:
                params[i] -= lr * grad
                continue
            velocity = state["velocity"]
            velocity[i] *= self.momentum
            velocity[i] += grad
            if self.nesterov:
                params[i] -= lr * (grad + self.momentum * velocity[i])
            else:
                params[i] -= lr * velocity[i]


class Adam(Optimizer):
    """Adam (Kingma & Ba): bias-corrected first and second moment estimates.

    ``m = b1 m + (1 - b1) g``; ``v = b2 v + (1 - b2) g^2``;
    ``p = p - lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)``, computed as
    ``p - lr c / (1 - b1^t) * m / (sqrt(v) + eps c)`` with ``c = sqrt(1 - b2^t)``, which
    saves a pass over the parameters.
    """

    slots = ("m", "v")

    def __init__(self, learning_rate=None, beta1: float = 0.9, beta2: float = 0.999,
                 epsilon: float = 1e-8):
        super().__init__(learning_rate)
        self.beta1 = _check_fraction(beta1, parameter="beta1")
        self.beta2 = _check_fraction(beta2, parameter="beta2")
        self.epsilon = _check_positive(epsilon, parameter="epsilon")

    def _decay_(self, params, scalars):
        """Decoupled weight decay (AdamW); nothing for Adam."""

    def _step_scalars(self, step: int, learning_rate: float) -> dict[str, float]:
        """The step size ``lr c / (1 - b1^t)`` and epsilon ``eps c``, ``c = sqrt(1 - b2^t)``."""
        v_correction_sqrt = math.sqrt(1.0 - self.beta2**step)
        return {"step_size": learning_rate * v_correction_sqrt / (1.0 - self.beta1**step),
                "epsilon": self.epsilon * v_correction_sqrt}

    def _step(self, params, grads, state, scalars, xp):
        m, v = state["m"], state["v"]
        b1, b2 = self.beta1, self.beta2
        step_size, epsilon = scalars["step_size"], scalars["epsilon"]
        self._decay_(params, scalars)
        for i, grad in enumerate(grads):
            m[i] *= b1
            m[i] += (1.0 - b1) * grad
            v[i] *= b2
            v[i] += (1.0 - b2) * grad * grad
            denom = xp.sqrt(v[i])
            denom += epsilon
            params[i] -= step_size * (m[i] / denom)


class AdamW(Adam):
    """Adam with decoupled weight decay: ``p = p - lr * weight_decay * p`` before the step.

    As in PyTorch's AdamW, the decay applies to every parameter it is given; ``fit`` gives
    it all of them, biases included (``MLP(alpha=...)``'s L2 penalty leaves biases out).
    """

    def __init__(self, learning_rate=None, beta1: float = 0.9, beta2: float = 0.999,
                 epsilon: float = 1e-8, weight_decay: float = 0.01):
        super().__init__(learning_rate, beta1, beta2, epsilon)
        weight_decay = _as_float(weight_decay, parameter="weight_decay")
        if not math.isfinite(weight_decay) or weight_decay < 0:
            raise MlpxValueError(f"weight_decay={weight_decay!r} must be a finite number >= 0")
        self.weight_decay = weight_decay

    def _step_scalars(self, step: int, learning_rate: float) -> dict[str, float]:
        """Adam's, and the decay factor ``1 - lr weight_decay``."""
        return {**super()._step_scalars(step, learning_rate),
                "decay": 1.0 - learning_rate * self.weight_decay}

    def _decay_(self, params, scalars):
        for i in range(len(params)):
            params[i] *= scalars["decay"]


class RMSprop(Optimizer):
    """RMSprop: ``s = rho s + (1 - rho) g^2``; ``p = p - lr * g / (sqrt(s) + eps)``."""

    slots = ("square_avg",)

    def __init__(self, learning_rate=None, rho: float = 0.9, epsilon: float = 1e-8):
        super().__init__(learning_rate)
        self.rho = _check_fraction(rho, parameter="rho")
        self.epsilon = _check_positive(epsilon, parameter="epsilon")

    def _apply(self, params, grads, state, lr, xp):
        square_avg = state["square_avg"]
        for i, grad in enumerate(grads):
            square_avg[i] *= self.rho
            square_avg[i] += (1.0 - self.rho) * (grad * grad)
            denom = xp.sqrt(square_avg[i])
            denom += self.epsilon
            params[i] -= lr * (grad / denom)


class Adagrad(Optimizer):
    """Adagrad: ``s = s + g^2``; ``p = p - lr * g / (sqrt(s) + eps)``."""

    default_learning_rate = 0.01
    slots = ("sum_squares",)

    def __init__(self, learning_rate=None, epsilon: float = 1e-10):
        super().__init__(learning_rate)
        self.epsilon = _check_positive(epsilon, parameter="epsilon")

    def _apply(self, params, grads, state, lr, xp):
        sum_squares = state["sum_squares"]
        for i, grad in enumerate(grads):
            sum_squares[i] += grad * grad
            denom = xp.sqrt(sum_squares[i])
            denom += self.epsilon
            params[i] -= lr * (grad / denom)


OPTIMIZERS = {"sgd": SGD, "adam": Adam, "adamw": AdamW, "rmsprop": RMSprop, "adagrad": Adagrad}


def get_optimizer(optimizer, learning_rate=None) -> Optimizer:
    """An Optimizer from a name ("sgd", "adam", ...) or an Optimizer object.

    Raises
    ------
    MlpxValueError
        For an unknown name.
    """
    if isinstance(optimizer, Optimizer):
        return optimizer
    if not isinstance(optimizer, str) or optimizer.lower() not in OPTIMIZERS:
        raise MlpxValueError(
            f"optimizer={optimizer!r} is not known; use one of {', '.join(OPTIMIZERS)} or an "
            "mlpx.optim.Optimizer"
        )
    return OPTIMIZERS[optimizer.lower()](learning_rate)
