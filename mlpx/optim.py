"""Optimizers and learning-rate schedules.

An optimizer is a pair of steps on explicit state (the optax shape)::

    state = optimizer.init(params)
    params, state = optimizer.update(params, grads, state, learning_rate=lr, xp=xp)

``update`` returns new arrays and never writes into the old ones, so it works on every
array-API backend, including those whose arrays cannot be written in place, and a caller
may keep the old list as a snapshot for free.

A schedule maps the epoch (0-based) to a learning rate; ``ReduceLROnPlateau`` also
watches a monitored value at the end of each epoch.
"""

from __future__ import annotations

import math
from typing import Any

from mlpx._errors import MlpxTypeError, MlpxValueError


def check_learning_rate(value, *, parameter: str = "learning_rate") -> float:
    """A finite float > 0, or a clear error naming ``parameter``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) and not hasattr(
        value, "__float__"
    ):
        raise MlpxTypeError(f"{parameter}={value!r} must be a number > 0 or a schedule")
    value = float(value)
    if not math.isfinite(value) or value <= 0:
        raise MlpxValueError(f"{parameter}={value!r} must be a finite number > 0, e.g. 1e-3")
    return value


def _as_float(value, *, parameter: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise MlpxTypeError(f"{parameter}={value!r} must be a number")
    return float(value)


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
        if isinstance(step_size, bool) or not isinstance(step_size, int) or step_size < 1:
            raise MlpxValueError(f"step_size={step_size!r} must be an int >= 1 (epochs)")
        self.step_size = int(step_size)
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
        if int(total_epochs) < 1:
            raise MlpxValueError(f"total_epochs={total_epochs!r} must be an int >= 1")
        self.total_epochs = int(total_epochs)
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
        if int(patience) < 0:
            raise MlpxValueError(f"patience={patience!r} must be an int >= 0")
        self.patience = int(patience)
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
    """Base class. Subclasses implement ``init`` and ``_step``.

    Parameters
    ----------
    learning_rate : float or Schedule
        Used when ``fit`` is not given its own ``learning_rate``.
    """

    default_learning_rate = 1e-3

    def __init__(self, learning_rate=None) -> None:
        if learning_rate is None:
            learning_rate = self.default_learning_rate
        self.learning_rate = learning_rate if isinstance(learning_rate, Schedule) else (
            check_learning_rate(learning_rate)
        )

    def init(self, params: list) -> dict[str, Any]:
        """The initial state for ``params`` (a dict of lists of arrays and a step count)."""
        return {"step": 0}

    def update(self, params: list, grads: list, state: dict, *, learning_rate: float, xp):
        """One step: returns ``(new_params, new_state)``; the inputs are not modified.

        Parameters
        ----------
        params, grads : lists of arrays of matching shapes
        state : dict from ``init`` or the previous ``update``
        learning_rate : float
        xp : the array-API namespace
        """
        state = dict(state, step=state["step"] + 1)
        return self._step(params, grads, state, learning_rate, xp)

    def _step(self, params, grads, state, lr, xp):
        raise NotImplementedError

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({fields})"


def _zeros_like_all(params: list, xp) -> list:
    return [xp.zeros_like(p) for p in params]


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

    def init(self, params):
        state = super().init(params)
        if self.momentum:
            state["velocity"] = None  # created on the first step, in the params' namespace
        return state

    def _step(self, params, grads, state, lr, xp):
        if not self.momentum:
            return [p - lr * g for p, g in zip(params, grads)], state
        velocity = state["velocity"] or _zeros_like_all(params, xp)
        velocity = [self.momentum * v + g for v, g in zip(velocity, grads)]
        if self.nesterov:
            steps = [g + self.momentum * v for g, v in zip(grads, velocity)]
        else:
            steps = velocity
        new_params = [p - lr * s for p, s in zip(params, steps)]
        return new_params, dict(state, velocity=velocity)


class Adam(Optimizer):
    """Adam (Kingma & Ba): bias-corrected first and second moment estimates.

    ``m = b1 m + (1 - b1) g``; ``v = b2 v + (1 - b2) g^2``;
    ``p = p - lr * m_hat / (sqrt(v_hat) + eps)``.
    """

    def __init__(self, learning_rate=None, beta1: float = 0.9, beta2: float = 0.999,
                 epsilon: float = 1e-8):
        super().__init__(learning_rate)
        self.beta1 = _check_fraction(beta1, parameter="beta1")
        self.beta2 = _check_fraction(beta2, parameter="beta2")
        self.epsilon = _check_positive(epsilon, parameter="epsilon")

    def init(self, params):
        return dict(super().init(params), m=None, v=None)

    def _decoupled_decay(self, params, lr):
        return params

    def _step(self, params, grads, state, lr, xp):
        m = state["m"] or _zeros_like_all(params, xp)
        v = state["v"] or _zeros_like_all(params, xp)
        b1, b2, step = self.beta1, self.beta2, state["step"]
        m = [b1 * m_i + (1.0 - b1) * g for m_i, g in zip(m, grads)]
        v = [b2 * v_i + (1.0 - b2) * (g * g) for v_i, g in zip(v, grads)]
        m_correction = 1.0 - b1**step
        v_correction = 1.0 - b2**step
        params = self._decoupled_decay(params, lr)
        new_params = [
            p - lr * (m_i / m_correction) / (xp.sqrt(v_i / v_correction) + self.epsilon)
            for p, m_i, v_i in zip(params, m, v)
        ]
        return new_params, dict(state, m=m, v=v)


class AdamW(Adam):
    """Adam with decoupled weight decay: ``p = p - lr * weight_decay * p`` before the step."""

    def __init__(self, learning_rate=None, beta1: float = 0.9, beta2: float = 0.999,
                 epsilon: float = 1e-8, weight_decay: float = 0.01):
        super().__init__(learning_rate, beta1, beta2, epsilon)
        if float(weight_decay) < 0:
            raise MlpxValueError(f"weight_decay={weight_decay!r} must be >= 0")
        self.weight_decay = float(weight_decay)

    def _decoupled_decay(self, params, lr):
        return [p - (lr * self.weight_decay) * p for p in params]


class RMSprop(Optimizer):
    """RMSprop: ``s = rho s + (1 - rho) g^2``; ``p = p - lr * g / (sqrt(s) + eps)``."""

    def __init__(self, learning_rate=None, rho: float = 0.9, epsilon: float = 1e-8):
        super().__init__(learning_rate)
        self.rho = _check_fraction(rho, parameter="rho")
        self.epsilon = _check_positive(epsilon, parameter="epsilon")

    def init(self, params):
        return dict(super().init(params), square_avg=None)

    def _step(self, params, grads, state, lr, xp):
        square_avg = state["square_avg"] or _zeros_like_all(params, xp)
        square_avg = [self.rho * s + (1.0 - self.rho) * (g * g) for s, g in zip(square_avg, grads)]
        new_params = [
            p - lr * g / (xp.sqrt(s) + self.epsilon) for p, g, s in zip(params, grads, square_avg)
        ]
        return new_params, dict(state, square_avg=square_avg)


class Adagrad(Optimizer):
    """Adagrad: ``s = s + g^2``; ``p = p - lr * g / (sqrt(s) + eps)``."""

    default_learning_rate = 0.01

    def __init__(self, learning_rate=None, epsilon: float = 1e-10):
        super().__init__(learning_rate)
        self.epsilon = _check_positive(epsilon, parameter="epsilon")

    def init(self, params):
        return dict(super().init(params), sum_squares=None)

    def _step(self, params, grads, state, lr, xp):
        sum_squares = state["sum_squares"] or _zeros_like_all(params, xp)
        sum_squares = [s + g * g for s, g in zip(sum_squares, grads)]
        new_params = [
            p - lr * g / (xp.sqrt(s) + self.epsilon) for p, g, s in zip(params, grads, sum_squares)
        ]
        return new_params, dict(state, sum_squares=sum_squares)


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
