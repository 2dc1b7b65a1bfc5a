"""The fit loop: epochs, batches, shuffling, validation, callbacks and the NaN guard.

Every argument is checked before anything changes. The data is moved to the model's
device once per fit; each epoch draws a permutation on the host from the model's seeded
generator and applies it on the device with one ``take``. Losses and metrics are summed
on the device and read once per epoch, so a GPU is not stopped after every batch.

Three regimes of tutorial 002 come from ``batch_size``: ``None`` is full-batch gradient
descent, ``1`` stochastic gradient descent, anything between mini-batch.
"""

from __future__ import annotations

import math
import time

from mlpx._backend import from_host
from mlpx._errors import MlpxTypeError, MlpxValueError, NonFiniteLossError
from mlpx.callbacks import HOOKS, CallbackList, History, ProgressBar, WeightChangeStopping
from mlpx.optim import Schedule, as_schedule, check_learning_rate, get_optimizer


def _check_positive_int(value, *, parameter: str, hint: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) and not (
        hasattr(value, "__index__")
    ):
        raise MlpxTypeError(f"{parameter}={value!r} must be an int >= 1 ({hint})")
    value = int(value)
    if value < 1:
        raise MlpxValueError(f"{parameter}={value!r} must be an int >= 1 ({hint})")
    return value


def _check_validation_data(validation_data) -> tuple:
    if validation_data is None:
        return None
    if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
        raise MlpxValueError(
            "validation_data must be a pair (X_val, y_val), got "
            f"{type(validation_data).__name__}"
        )
    return tuple(validation_data)


def _epoch_log_keys(model, has_validation: bool, tol) -> list[str]:
    keys = ["loss", "mae" if model.task == "regression" else "accuracy"]
    if has_validation:
        keys += [f"val_{key}" for key in keys]
    if tol is not None:
        keys.append("max_weight_change")
    return keys + ["lr", "time"]


def _as_callback_list(callbacks) -> list:
    if callbacks is None:
        return []
    if isinstance(callbacks, (list, tuple)):
        return list(callbacks)
    if any(callable(getattr(callbacks, hook, None)) for hook in HOOKS):
        return [callbacks]
    raise MlpxTypeError(
        f"callbacks={callbacks!r} must be a list of mlpx.callbacks.Callback objects"
    )


def _check_monitors(watchers: list, keys: list[str]) -> None:
    """Every callback or schedule that monitors a log key must name one the epochs will log."""
    for watcher in watchers:
        monitor = getattr(watcher, "monitor", None)
        if isinstance(monitor, str) and monitor not in keys:
            hint = "; pass validation_data to get val_* keys" if monitor.startswith("val_") else ""
            raise MlpxValueError(
                f"{type(watcher).__name__}(monitor={monitor!r}) watches a key the epoch logs "
                f"will not have; use one of {keys}{hint}"
            )


def fit(model, X, y, *, epochs: int = 200, batch_size: int | None = 32, optimizer="adam",
        learning_rate=None, shuffle: bool = True, validation_data=None, callbacks=None,
        verbose: bool | int = False, tol: float | None = None) -> History:
    """Train ``model`` on (X, y) by backpropagation.

    Parameters
    ----------
    model : MLP
    X : array-like of shape (n_samples, n_features)
        NumPy data is moved to the model's device once.
    y : array-like of labels or targets
    epochs : int
        Passes over the data.
    batch_size : int or None
        Samples per gradient step; None for full-batch gradient descent.
    optimizer : str or Optimizer
        "sgd", "adam", "adamw", "rmsprop", "adagrad", or an ``mlpx.optim`` object.
    learning_rate : float or Schedule, optional
        Overrides the optimizer's own learning rate; a ``mlpx.optim.Schedule`` changes it
        per epoch.
    shuffle : bool
        Reshuffle the samples every epoch (from the model's seeded generator).
    validation_data : (X_val, y_val), optional
        Evaluated at the end of every epoch (``val_loss``, ``val_accuracy``/``val_mae``).
    callbacks : list of Callback, optional
    verbose : bool or int
        Show a progress bar and print the logs every tenth of the epochs.
    tol : float, optional
        Stop when no parameter changes by more than ``tol`` in an epoch.

    Returns
    -------
    History
        Per-epoch loss, metrics, validation loss and metrics, learning rate and time.

    Raises
    ------
    MlpxValueError, MlpxTypeError
        For bad arguments, before anything changes.
    NonFiniteLossError
        When the loss or the weights become NaN/inf; the model keeps the weights of the
        last epoch that ended finite.
    """
    epochs = _check_positive_int(epochs, parameter="epochs", hint="passes over the data")
    if batch_size is not None:
        batch_size = _check_positive_int(
            batch_size, parameter="batch_size", hint="or None for full-batch gradient descent"
        )
    if learning_rate is not None and not isinstance(learning_rate, Schedule):
        learning_rate = check_learning_rate(learning_rate)
    optimizer = get_optimizer(optimizer, learning_rate)
    schedule = as_schedule(learning_rate if learning_rate is not None
                           else optimizer.learning_rate)
    validation_data = _check_validation_data(validation_data)

    extra = []
    if tol is not None:
        extra.append(WeightChangeStopping(tol))
    history = History()
    # History goes after the callbacks that add to the logs (tol adds max_weight_change).
    callback_list = CallbackList([*extra, *_as_callback_list(callbacks), history], model)

    X, Y, classes = model.check_Xy(X, y, learn_classes=not model._has_seen_labels)
    if validation_data is not None:
        X_val, Y_val, _ = model.check_Xy(*validation_data, classes=classes,
                                         names=("validation_data[0]", "validation_data[1]"))
    keys = _epoch_log_keys(model, validation_data is not None, tol)
    _check_monitors([*callback_list.callbacks, schedule], keys)
    if verbose:
        print_every = max(1, epochs // 10)
        callback_list = CallbackList([*callback_list.callbacks, ProgressBar(print_every)], model)

    # Everything is checked: from here on the model changes.
    model.classes_ = classes
    model._has_seen_labels = True
    model.stop_training = False
    model.stop_reason = None
    n_samples = X.shape[0]
    batch_size = n_samples if batch_size is None else min(batch_size, n_samples)
    state = optimizer.init(model.params)
    started = time.perf_counter()
    callback_list.call("on_train_begin", {"epochs": epochs, "metrics": keys})
    try:
        for epoch in range(epochs):
            epoch_started = time.perf_counter()
            lr = schedule(epoch)
            callback_list.call("on_epoch_begin", epoch, {})
            X_epoch, Y_epoch = _epoch_order(model, X, Y, shuffle and batch_size < n_samples)
            logs, state = _run_epoch(model, optimizer, state, X_epoch, Y_epoch, batch_size, lr,
                                     epoch, callback_list)
            if validation_data is not None:
                val_logs = model._evaluate_checked(X_val, Y_val)
                logs.update({f"val_{key}": value for key, value in val_logs.items()})
            logs["lr"] = lr
            logs["time"] = time.perf_counter() - epoch_started
            schedule.observe(epoch, logs)
            callback_list.call("on_epoch_end", epoch, logs)
            if model.stop_training:
                break
    finally:
        history.wall_time = time.perf_counter() - started
        history.stop_reason = model.stop_reason
        model.history_ = history
        callback_list.call("on_train_end", {})
    return history


def _epoch_order(model, X, Y, shuffle: bool):
    """X and Y in this epoch's order: a host permutation applied on the device once."""
    if not shuffle:
        return X, Y
    xp = model.xp
    permutation = from_host(model.shuffle_rng.permutation(X.shape[0]), backend=model.backend,
                            dtype=xp.int64)
    return xp.take(X, permutation, axis=0), xp.take(Y, permutation, axis=0)


def _run_epoch(model, optimizer, state, X, Y, batch_size: int, lr: float, epoch: int,
               callback_list: CallbackList):
    """One pass over the batches; returns the epoch's logs and the optimizer state.

    Restores the weights the epoch started with and raises NonFiniteLossError when the loss
    or the weights stop being finite.
    """
    xp = model.xp
    start_params = model.params  # updates make new arrays, so these stay as they are
    n_samples = X.shape[0]
    loss_sum = xp.zeros((), dtype=model.dtype, device=model.backend.device)
    metric_sums: dict = {}
    try:
        for batch, begin in enumerate(range(0, n_samples, batch_size)):
            end = min(begin + batch_size, n_samples)  # array-api-strict refuses slices past the end
            X_batch, Y_batch = X[begin:end, ...], Y[begin:end, ...]
            callback_list.call("on_batch_begin", batch, {})
            loss, grads, output = model._loss_and_grads(X_batch, Y_batch)
            params, state = optimizer.update(model.params, grads, state, learning_rate=lr,
                                             xp=xp)
            model._assign_params(params)
            loss_sum = loss_sum + loss * X_batch.shape[0]
            for name, value in model._metric_sums(Y_batch, output).items():
                metric_sums[name] = metric_sums.get(name, 0.0) + value
            if callback_list.wants_batch_end:
                callback_list.call("on_batch_end", batch, {"loss": loss,
                                                           "size": X_batch.shape[0]})
        logs = {"loss": float(loss_sum) / n_samples}
        logs.update({name: float(value) / n_samples for name, value in metric_sums.items()})
        _check_finite(model, logs["loss"])
    except NonFiniteLossError as exc:
        model._assign_params(start_params)
        model.stop_reason = "non_finite_loss"
        raise NonFiniteLossError(
            f"{exc}; training stopped in epoch {epoch} and the model keeps the weights it had "
            f"at the start of that epoch. Lower the learning rate (it was {lr:g}) or "
            "standardise X"
        ) from None
    return logs, state


def _check_finite(model, loss: float) -> None:
    xp = model.xp
    if not math.isfinite(loss):
        raise NonFiniteLossError(f"the training loss became {loss}")
    all_finite = xp.all(xp.stack([xp.all(xp.isfinite(p)) for p in model.params]))
    if not bool(all_finite):
        raise NonFiniteLossError("the weights became NaN or infinite")
