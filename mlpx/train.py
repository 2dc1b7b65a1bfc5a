"""The fit loop: epochs, batches, shuffling, validation, callbacks and the NaN guard.

Every argument is checked before anything changes. The data is moved to the model's
device once per fit; each epoch draws a permutation on the host from the model's seeded
generator, and each batch is gathered from X by its rows of that permutation. The epoch's
loss and metrics are computed once at its end from every batch's output logits, so a GPU
is not stopped after every batch.

``EpochRunner`` is the generic array-API reference; on NumPy, ``mlpx._numpy_fastpath`` runs
the same math on buffers allocated once per fit.

Three regimes of tutorial 002 come from ``batch_size``: ``None`` is full-batch gradient
descent, ``1`` stochastic gradient descent, anything between mini-batch.
"""

from __future__ import annotations

import copy
import math
import operator
import os
import signal
import threading
import time
from contextlib import contextmanager
from typing import Any, NamedTuple

import numpy as np

from mlpx._backend import dtype_name, from_host, prime_host_allocator, take_rows
from mlpx._errors import MlpxTypeError, MlpxValueError, NonFiniteLossError
from mlpx.callbacks import HOOKS, CallbackList, History, ProgressBar, WeightChangeStopping
from mlpx.losses import weighted_value
from mlpx.optim import Schedule, as_schedule, check_learning_rate, get_optimizer
from mlpx.sample_weights import check_sample_weight, class_sample_weights


def _check_positive_int(value, *, parameter: str, hint: str) -> int:
    try:
        if isinstance(value, bool):
            raise TypeError
        value = operator.index(value)  # ints and NumPy integers, not 3.5 or arrays
    except TypeError:
        raise MlpxTypeError(f"{parameter}={value!r} must be an int >= 1 ({hint})") from None
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


def _progress_for(verbose) -> ProgressBar | None:
    """The progress display for Keras's ``verbose`` levels: none, a bar, a line per epoch."""
    level = verbose
    if isinstance(verbose, (bool, np.bool_)):
        level = int(verbose)
    elif not isinstance(verbose, (int, np.integer)) or verbose not in (0, 1, 2):
        raise MlpxValueError(
            f"verbose={verbose!r} must be 0 (silent), 1 (a progress bar; also True) or 2 "
            "(one line per epoch)"
        )
    if level == 0:
        return None
    return ProgressBar(print_every=None, bar=True) if level == 1 else ProgressBar(
        print_every=1, bar=False)


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
        verbose: bool | int = False, tol: float | None = None, sample_weight=None,
        class_weight=None, reset_optimizer: bool = True, resume_from=None) -> History:
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
    verbose : {0, 1, 2} or bool
        As in Keras: 0 (False) prints nothing, 1 (True) shows a progress bar over the
        epochs with the loss and metrics (validation ones too) beside it, 2 prints one line
        of logs per epoch.
    tol : float, optional
        Stop when every parameter changed by less than ``tol`` in an epoch.
    sample_weight : array-like of shape (n_samples,), optional
        Non-negative weight of each sample. Each batch's loss becomes the weighted mean
        ``sum(w * loss_i) / sum(w)`` (scikit-learn's convention, so weight 2 is the same as
        the sample twice); samples of weight 0 are left out of the batches.
    class_weight : dict or "balanced", optional
        Classifiers only: a weight per class label (``{label: weight}``; unnamed classes
        weigh 1), or "balanced" for ``n_samples / (n_classes * count(class))``. Multiplies
        ``sample_weight``.
    reset_optimizer : bool
        False continues the optimizer state (moments, step count) that the model's previous
        fit ended with, as ``partial_fit`` does; ``optimizer`` must then be of the same kind.
    resume_from : str or os.PathLike, optional
        A file written by :class:`mlpx.callbacks.Checkpoint`: put back its weights,
        optimizer state, schedule state, shuffling generator and history (whatever this
        model's seed), and continue from the epoch after the saved one until ``epochs`` in
        total. With the same data and arguments the result is the one the uninterrupted fit
        would have given, bit for bit on NumPy. Callbacks start afresh (an EarlyStopping's
        patience counts from the resumed epoch).

    Pressing Ctrl-C (SIGINT) during fit stops it after the current step: the model keeps
    the weights of that step, ``History.interrupted`` is True and ``stop_reason`` is
    "interrupted"; the epoch it stopped in is not logged. A second Ctrl-C interrupts at
    once (KeyboardInterrupt), and the model keeps the weights of the epoch's start.

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
    progress = _progress_for(verbose)

    extra = []
    if tol is not None:
        extra.append(WeightChangeStopping(tol))
    history = History()
    # History goes after the callbacks that add to the logs (tol adds max_weight_change).
    callback_list = CallbackList([*extra, *_as_callback_list(callbacks), history], model)

    if not isinstance(reset_optimizer, (bool, np.bool_)):
        raise MlpxTypeError(f"reset_optimizer={reset_optimizer!r} must be True or False")
    initial_state = None if reset_optimizer else _previous_optimizer_state(model, optimizer)

    X, Y, classes, weights, weight_scale = _training_data(model, X, y, sample_weight,
                                                          class_weight)
    resume = None
    if resume_from is not None:
        resume = _read_resume(resume_from, model, optimizer, schedule, classes, X.shape[0])
        initial_state = resume.state
    if validation_data is not None:
        X_val, Y_val, _ = model.check_Xy(*validation_data, classes=classes,
                                         names=("validation_data[0]", "validation_data[1]"))
    keys = _epoch_log_keys(model, validation_data is not None, tol)
    _check_monitors([*callback_list.callbacks, schedule], keys)
    if progress is not None:
        callback_list = CallbackList([*callback_list.callbacks, progress], model)

    n_samples = X.shape[0]
    batch_size = n_samples if batch_size is None else min(batch_size, n_samples)
    reshuffle = shuffle and batch_size < n_samples  # one full batch: order cannot matter
    # The runner allocates its buffers (which may fail for lack of memory) and binds the
    # layers to views of an equal copy of the weights: nothing the user can see changes.
    epochs_runner = make_epoch_runner(model, optimizer, X, Y, batch_size, callback_list,
                                      weights=weights, weight_scale=weight_scale,
                                      initial_state=initial_state)
    del X, Y  # the runner keeps what it needs (the NumPy one drops its converted X)

    # Everything is checked and allocated: from here on the model changes.
    model.classes_ = classes
    model._has_seen_labels = True
    model.stop_training = False
    model.stop_reason = None
    first_epoch = 0 if resume is None else _apply_resume(resume, model, epochs_runner,
                                                         schedule, history)
    interrupt = epochs_runner.interrupt = InterruptFlag()
    model._fit_context = FitContext(model, optimizer, epochs_runner, schedule, history,
                                    n_samples)
    started = time.perf_counter()
    callback_list.call("on_train_begin", {"epochs": epochs, "metrics": keys,
                                          "initial_epoch": first_epoch})
    try:
        with _stop_on_sigint(interrupt):
            for epoch in range(first_epoch, epochs):
                if interrupt.requested:
                    _mark_interrupted(model)
                    break
                epoch_started = time.perf_counter()
                lr = schedule(epoch)
                callback_list.call("on_epoch_begin", epoch, {})
                order = model.shuffle_rng.permutation(n_samples) if reshuffle else None
                logs = _run_epoch(model, epochs_runner, order, lr, epoch)
                if logs is None:  # Ctrl-C inside the epoch
                    _mark_interrupted(model)
                    break
                if validation_data is not None:
                    val_logs = epochs_runner.evaluate(X_val, Y_val)
                    logs.update({f"val_{key}": value for key, value in val_logs.items()})
                logs["lr"] = lr
                logs["time"] = time.perf_counter() - epoch_started
                schedule.observe(epoch, logs)
                callback_list.call("on_epoch_end", epoch, logs)
                if model.stop_training:
                    break
    finally:
        del model._fit_context
        history.wall_time = time.perf_counter() - started
        history.stop_reason = model.stop_reason
        history.interrupted = model.stop_reason == "interrupted"
        model.history_ = history
        model.optimizer_, model.optimizer_state_ = optimizer, epochs_runner.state
        callback_list.call("on_train_end", {})
    return history


# --- Ctrl-C --------------------------------------------------------------------------------

class InterruptFlag:
    """Set by the first Ctrl-C during fit; the epoch runners stop after the current step."""

    def __init__(self) -> None:
        self.requested = False


@contextmanager
def _stop_on_sigint(flag: InterruptFlag):
    """While inside, the first SIGINT sets ``flag`` instead of raising KeyboardInterrupt.

    The handler then puts the previous one back, so a second Ctrl-C interrupts at once.
    Signal handlers can only be set from the main thread; elsewhere nothing changes.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)

    def request_stop(signum, frame):
        flag.requested = True
        signal.signal(signal.SIGINT, previous)

    signal.signal(signal.SIGINT, request_stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _mark_interrupted(model) -> None:
    model.stop_training = True
    model.stop_reason = "interrupted"


# --- checkpoints ---------------------------------------------------------------------------

class FitContext(NamedTuple):
    """What a running fit exposes to :class:`mlpx.callbacks.Checkpoint` (``model._fit_context``)."""

    model: Any
    optimizer: Any
    runner: Any
    schedule: Schedule
    history: History
    n_samples: int

    def save_checkpoint(self, path, epoch: int, logs: dict) -> None:
        """Save the state at the end of ``epoch`` (whose ``logs`` History has not yet)."""
        from mlpx.io import save_checkpoint

        history = {key: list(values) for key, values in self.history.history.items()}
        for key, value in logs.items():
            history.setdefault(key, []).append(value)
        save_checkpoint(path, self.model, epoch=epoch, optimizer=self.optimizer,
                        optimizer_state=self.runner.state, schedule=self.schedule,
                        history=history, history_epochs=[*self.history.epoch, epoch],
                        n_samples=self.n_samples)


class _Resume(NamedTuple):
    flat: Any  # the parameters, one vector on the model's device
    state: dict  # the optimizer state for it
    first_epoch: int
    rng_state: dict
    schedule_state: dict
    history: dict
    history_epochs: list


def _read_resume(path, model, optimizer, schedule, classes, n_samples: int) -> _Resume:
    """Read a checkpoint for ``fit(resume_from=path)`` and check it fits this fit."""
    from mlpx.io import _classes, expected_model_tensors, read_checkpoint

    if not isinstance(path, (str, os.PathLike)):
        raise MlpxTypeError(f"resume_from={path!r} must be the path of a file that "
                            "mlpx.callbacks.Checkpoint wrote")
    config, tensors, checkpoint, path = read_checkpoint(path)
    where = f"resume_from={str(path)!r}"
    mine = {"layer_sizes": model.layer_sizes, "activations": model.activations,
            "loss": model.loss.name, "dtype": dtype_name(model.dtype)}
    theirs = {key: config.get(key) for key in mine}
    if theirs != mine:
        raise MlpxValueError(f"{where} is a checkpoint of a model with {theirs}, but this "
                             f"model has {mine}; build the model as the checkpoint's was")
    saved_optimizer = checkpoint["optimizer"]
    if (saved_optimizer["name"] != type(optimizer).__name__
            or tuple(saved_optimizer["slots"]) != optimizer.slots):
        raise MlpxValueError(f"{where} was saved by a {saved_optimizer['name']} optimizer, "
                             f"but this fit uses {type(optimizer).__name__}; pass the same "
                             "optimizer")
    saved_schedule = checkpoint["schedule"]
    if saved_schedule["name"] != type(schedule).__name__:
        raise MlpxValueError(f"{where} was saved with a {saved_schedule['name']} learning "
                             f"rate, but this fit uses {type(schedule).__name__}; pass the "
                             "same learning_rate")
    if checkpoint["n_samples"] != n_samples:
        raise MlpxValueError(f"{where} was trained on {checkpoint['n_samples']} samples but X "
                             f"has {n_samples}; resume with the same X and y")
    saved_classes = _classes(config, path)
    if (saved_classes is None) != (classes is None) or (
            classes is not None and not np.array_equal(saved_classes, classes)):
        raise MlpxValueError(f"{where} has classes {saved_classes!r} but y has {classes!r}; "
                             "resume with the same y")
    _check_restorable(checkpoint, model, schedule, path)
    on_device = lambda host: from_host(host, backend=model.backend, dtype=model.dtype)  # noqa: E731
    flat = np.concatenate([tensors[name].reshape(-1) for name in
                           expected_model_tensors(config)])
    state = {"step": saved_optimizer["step"]}
    for slot in optimizer.slots:
        state[slot] = [on_device(tensors[f"optimizer.{slot}"])]
    return _Resume(on_device(flat), state, checkpoint["epoch"] + 1, checkpoint["rng"],
                   saved_schedule["state"], checkpoint["history"],
                   checkpoint["history_epochs"])


def _check_restorable(checkpoint: dict, model, schedule, path) -> None:
    """The generator and schedule states load (tried on copies, so nothing changes)."""
    from mlpx.io import _fail

    try:
        type(model.shuffle_rng.bit_generator)().state = checkpoint["rng"]
    except (TypeError, ValueError, KeyError) as exc:
        raise _fail(path, f"its random generator state cannot be restored ({exc})") from None
    try:
        copy.deepcopy(schedule).set_state(checkpoint["schedule"]["state"])
    except (TypeError, ValueError, KeyError) as exc:
        raise _fail(path, f"its schedule state cannot be restored ({exc})") from None


def _apply_resume(resume: _Resume, model, runner, schedule, history: History) -> int:
    """Put a checkpoint's weights and states in place; returns the first epoch to run."""
    runner._set_flat(resume.flat)
    model.shuffle_rng.bit_generator.state = resume.rng_state
    schedule.set_state(resume.schedule_state)
    history.history = {key: list(values) for key, values in resume.history.items()}
    history.epoch = list(resume.history_epochs)
    return resume.first_epoch


def _training_data(model, X, y, sample_weight, class_weight):
    """Checked X and Y on the model's device, the classes, and the weights (or None).

    Samples of weight 0 are left out; all-one weights are the same as none. The weights go
    to the device divided by ``weight_scale``, a power of two near their mean, so that
    float32 holds them whatever their size (the batch means do not depend on the scale;
    the L2 term's ``sum(w)`` multiplies it back).
    """
    X, Y, classes = model.check_Xy(X, y, learn_classes=not model._has_seen_labels)
    weights = check_sample_weight(sample_weight, n_samples=X.shape[0])
    if class_weight is not None:
        per_class = class_sample_weights(class_weight, Y, classes=classes, task=model.task)
        with np.errstate(over="ignore"):
            weights = per_class if weights is None else weights * per_class
        if not np.isfinite(np.sum(weights)):
            raise MlpxValueError(
                "sample_weight times class_weight overflows float64; divide the weights by "
                "a common factor (only their ratios matter)"
            )
    if weights is not None and np.all(weights == 1.0):
        weights = None
    if weights is None:
        return X, Y, classes, None, 1.0
    if not np.any(weights > 0):
        raise MlpxValueError(
            "sample_weight times class_weight is zero for every sample; give some samples a "
            "weight > 0"
        )
    X, Y, weights = _drop_zero_weights(X, Y, weights, model=model)
    weight_scale = 2.0 ** round(math.log2(float(np.mean(weights))))
    return X, Y, classes, from_host(weights / weight_scale, backend=model.backend,
                                    dtype=model.dtype), weight_scale


def fit_lbfgs(model, X, y, *, sample_weight=None, class_weight=None, max_iter: int = 200,
              max_fun: int = 15000, gtol: float = 1e-4, verbose: bool = False):
    """Train ``model`` by full-batch L-BFGS (:func:`mlpx.lbfgs.minimize_lbfgs`).

    The loss is the mean (weighted) loss over all of X plus the L2 penalty; the flat vector
    of every parameter is the optimisation variable, so the same code runs on any backend.

    Parameters
    ----------
    model : MLP
    X : array-like of shape (n_samples, n_features)
    y : array-like of labels or targets
    sample_weight, class_weight : as in :func:`fit`
    max_iter, max_fun : int
        At most this many iterations and loss evaluations.
    gtol : float
        Stop when no gradient entry exceeds this in absolute value.
    verbose : bool
        Print the loss after every iteration.

    Returns
    -------
    LbfgsResult
        ``n_iter``, ``fun`` (the final loss), ``converged``, ``message``; the model holds
        the best parameters found.
    """
    from mlpx.lbfgs import minimize_lbfgs

    X, Y, classes, weights, weight_scale = _training_data(model, X, y, sample_weight,
                                                          class_weight)
    xp, n_samples = model.xp, X.shape[0]
    if weights is None:
        row_weights, l2 = None, model._l2_coefficient(n_samples)
    else:
        total = xp.sum(weights)
        row_weights = weights * (n_samples / total)
        l2 = model._l2_coefficient(total * weight_scale)

    def loss_and_grad(flat):
        model._bind_flat(flat)
        loss, grads, _ = model._loss_and_grads(X, Y, row_weights, l2)
        return loss, xp.concat([xp.reshape(g, (-1,)) for g in grads])

    def report(flat, loss):
        if verbose:
            print(f"L-BFGS loss = {float(loss):.8f}")

    start = model.copy_params()
    model.classes_ = classes
    model._has_seen_labels = True
    try:
        result = minimize_lbfgs(loss_and_grad, model.flat_params(), max_iter=max_iter,
                                max_fun=max_fun, gtol=gtol, callback=report)
    except BaseException:
        model._assign_params(start)
        raise
    model._bind_flat(xp.asarray(result.x, copy=True))
    if not math.isfinite(result.fun):
        model._assign_params(start)
        raise NonFiniteLossError("L-BFGS found no finite loss; standardise X")
    return result


def _previous_optimizer_state(model, optimizer) -> dict:
    """The optimizer state the model's last fit ended with, for ``reset_optimizer=False``."""
    previous = getattr(model, "optimizer_", None)
    state = getattr(model, "optimizer_state_", None)
    if previous is None or state is None:
        raise MlpxValueError(
            "reset_optimizer=False continues the optimizer state of a previous fit, but this "
            "model has not been fitted; fit it once first (or pass reset_optimizer=True)"
        )
    if type(previous) is not type(optimizer) or previous.slots != optimizer.slots:
        raise MlpxValueError(
            f"reset_optimizer=False continues the state of the previous fit's "
            f"{type(previous).__name__}, but optimizer is a {type(optimizer).__name__}; pass "
            "the same kind of optimizer or reset_optimizer=True"
        )
    return state


def _drop_zero_weights(X, Y, weights, *, model):
    """Leave out the samples of weight 0 (X and Y on the device, weights on the host)."""
    kept = np.flatnonzero(weights > 0)
    if kept.size < weights.shape[0]:
        rows = from_host(kept, backend=model.backend, dtype=model.xp.int64)
        X, Y = model.xp.take(X, rows, axis=0), model.xp.take(Y, rows, axis=0)
        weights = weights[kept]
    return X, Y, weights


def make_epoch_runner(model, optimizer, X, Y, batch_size: int, callback_list: CallbackList,
                      *, weights=None, weight_scale: float = 1.0, initial_state=None):
    """The NumPy fast path where it applies, else the generic array-API runner."""
    prime_host_allocator(model.backend)
    runner_class = EpochRunner
    if model.backend.name == "numpy":
        from mlpx._numpy_fastpath import NumpyEpochRunner

        runner_class = NumpyEpochRunner
    return runner_class(model, optimizer, X, Y, batch_size, callback_list, weights=weights,
                        weight_scale=weight_scale, initial_state=initial_state)


def _run_epoch(model, runner: EpochRunner, order, lr: float, epoch: int) -> dict | None:
    """One epoch; on a NaN/inf loss or weights, restore the epoch's start and raise.

    Returns None when Ctrl-C stopped the epoch after one of its steps. A KeyboardInterrupt
    (a second Ctrl-C) puts the epoch's start back before it propagates: a step cut short
    may have updated only part of the weights.
    """
    runner.sync_from_model()  # a callback may have replaced the weights
    start = runner.snapshot()
    try:
        logs = runner.run_epoch(order, lr)
        _check_finite(runner, math.nan if logs is None else logs["loss"],
                      check_loss=logs is not None)
    except KeyboardInterrupt:
        runner.restore(start)
        _mark_interrupted(model)
        raise
    except NonFiniteLossError as exc:
        runner.restore(start)
        model.stop_reason = "non_finite_loss"
        raise NonFiniteLossError(
            f"{exc}; training stopped in epoch {epoch} and the model keeps the weights it had "
            f"at the start of that epoch. Lower the learning rate (it was {lr:g}) or "
            "standardise X"
        ) from None
    return logs


def _check_finite(runner: EpochRunner, loss: float, *, check_loss: bool = True) -> None:
    """NonFiniteLossError if the epoch's loss or any parameter is NaN or infinite.

    The parameters are checked as the runner's one flat vector (the layers' W and b are
    its views): two array operations, not two per parameter array.
    """
    xp = runner.xp
    if check_loss and not math.isfinite(loss):
        raise NonFiniteLossError(f"the training loss became {loss}")
    if not bool(xp.all(xp.isfinite(runner.flat))):
        raise NonFiniteLossError("the weights became NaN or infinite")


def epoch_logs(model, Y_epoch, Z_epoch, penalty_sum, row_weights=None) -> dict[str, float]:
    """The epoch's loss and metric from every batch's targets and output logits.

    Parameters
    ----------
    Y_epoch : array of shape (n_samples, n_outputs)
        The targets in the order the batches saw them.
    Z_epoch : array of shape (n_samples, n_outputs)
        Each batch's output pre-activations, computed with the weights of that batch.
    penalty_sum : float or 0-d array
        Sum over batches of (batch size x L2 penalty at that batch).
    row_weights : array of shape (n_samples,), optional
        Each sample's weight over the mean weight of its batch (``fit``'s sample weights);
        the loss is then ``mean(row_weights * per-sample loss)``. Metrics are unweighted.

    Returns
    -------
    dict
        ``loss`` (the sample-weighted mean of the batch losses, penalty included) and
        ``accuracy`` or ``mae``, as Python floats.
    """
    xp = model.xp
    n_samples = Z_epoch.shape[0]
    output = model.layers[-1].activation.forward(Z_epoch, xp=xp)
    loss = float(weighted_value(model.loss, Y_epoch, Z_epoch, output, row_weights, xp=xp))
    logs = {"loss": loss + float(penalty_sum) / n_samples}
    for name, total in model._metric_sums(Y_epoch, output).items():
        logs[name] = float(total) / n_samples
    return logs


class EpochRunner:
    """Runs epochs of mini-batch steps with the generic array-API code (the reference).

    The parameters live in one flat vector (``model.flat_params()``); the layers' W and b
    are views of it, and the optimizer updates it in place (``Optimizer.update_``) as one
    array. Batches are gathered by index from X, never a shuffled copy of all of X. Each
    batch's output logits are kept, and the epoch's loss and metric come from them at the
    end (:func:`epoch_logs`), so the device is waited on once per epoch.

    Parameters
    ----------
    model : MLP
    optimizer : Optimizer
    X : array of shape (n_samples, n_features), on the model's backend
    Y : array of shape (n_samples, n_outputs), the encoded targets
    batch_size : int
    callback_list : CallbackList
    weights : array of shape (n_samples,), optional
        Positive sample weights on the model's device, divided by ``weight_scale``.
    weight_scale : float
        What the weights were divided by (the L2 term needs their true sum).
    initial_state : dict, optional
        An optimizer state for the flat vector to continue from (copied); default: a new one.
    """

    # Backends whose slices and reshapes are views that see in-place writes; elsewhere the
    # views are taken again after every step.
    VIEW_BACKENDS = ("numpy", "cupy", "torch")

    def __init__(self, model, optimizer, X, Y, batch_size: int,
                 callback_list: CallbackList, *, weights=None, weight_scale: float = 1.0,
                 initial_state=None) -> None:
        self.model = model
        self.weight_scale = weight_scale
        self.optimizer = optimizer
        self.xp = model.xp
        self.X, self.Y, self.weights = X, Y, weights
        n_samples = X.shape[0]
        self.batch_size = batch_size
        self.bounds = [(begin, min(begin + batch_size, n_samples))
                       for begin in range(0, n_samples, batch_size)]
        self.callback_list = callback_list
        self.flat = model.flat_params()
        self.views = model._bind_flat(self.flat)
        self.state = optimizer.init([self.flat])
        if initial_state is not None:
            self.state = _copy_state(initial_state, self.state, xp=self.xp)
        self.rebind_every_step = model.backend.name not in self.VIEW_BACKENDS
        self.unit_target_rows = _rows_sum_to_one(model, Y)
        self.interrupt = InterruptFlag()  # fit shares its own; requested: stop after a step

    def evaluate(self, X, Y) -> dict[str, float]:
        """Loss and metric of checked data with the current weights (fit's validation)."""
        return self.model._evaluate_checked(X, Y)

    # --- the flat parameter vector ---------------------------------------------------

    def sync_from_model(self) -> None:
        """Adopt weights that a callback or the user assigned to the model."""
        if any(p is not v for p, v in zip(self.model.params, self.views)):
            self._set_flat(self.model.flat_params())

    def _set_flat(self, flat) -> None:
        self.flat = flat
        self.views = self.model._bind_flat(flat)

    def snapshot(self) -> tuple:
        """Copies of the flat parameters and of the optimizer state."""
        xp = self.xp
        state = {key: [xp.asarray(a, copy=True) for a in value] if isinstance(value, list)
                 else value for key, value in self.state.items()}
        return xp.asarray(self.flat, copy=True), state

    def restore(self, snapshot: tuple) -> None:
        """Put the parameters and optimizer state of ``snapshot`` back."""
        flat, state = snapshot
        self._set_flat(flat)
        for key, value in state.items():
            if isinstance(value, list):
                self._restore_arrays(self.state[key], value)
            else:
                self.state[key] = value

    def _restore_arrays(self, arrays: list, saved: list) -> None:
        arrays[:] = saved

    def apply_update(self, grad_flat, lr: float) -> None:
        """One optimizer step on the flat vector with learning rate ``lr``."""
        params = [self.flat]
        self.optimizer.update_(params, [grad_flat], self.state, learning_rate=lr, xp=self.xp)
        self.adopt_updated(params[0])

    def adopt_updated(self, flat) -> None:
        """Take the optimizer's result: rebinds the views where it is a new array."""
        if flat is not self.flat or self.rebind_every_step:
            self._set_flat(flat)

    # --- one epoch -------------------------------------------------------------------

    def run_epoch(self, order, lr: float) -> dict[str, float] | None:
        """Every batch once, in ``order`` (a host permutation, or None for the stored order).

        Returns
        -------
        dict or None
            The epoch's ``loss`` and ``accuracy``/``mae`` (Python floats); None when
            ``self.interrupt`` was requested, after the step that saw it.
        """
        xp, model, callbacks = self.xp, self.model, self.callback_list
        rows = None if order is None else from_host(order, backend=model.backend,
                                                    dtype=xp.int64)
        logits, batch_row_weights, penalty_sum = [], [], 0.0
        for batch, (begin, end) in enumerate(self.bounds):
            if callbacks.wants_batch_begin:
                callbacks.call("on_batch_begin", batch, {})
                self.sync_from_model()
            X_batch, Y_batch, w_batch = self._batch(rows, begin, end)
            z_out, output, row_weights, penalty = self.train_step(X_batch, Y_batch, w_batch, lr)
            penalty_sum = penalty_sum + penalty * (end - begin)
            logits.append(z_out)
            batch_row_weights.append(row_weights)
            if callbacks.wants_batch_end:
                loss = weighted_value(model.loss, Y_batch, z_out, output, row_weights,
                                      xp=xp) + penalty
                callbacks.call("on_batch_end", batch, {"loss": float(loss),
                                                       "size": end - begin})
                self.sync_from_model()
            if self.interrupt.requested:
                return None
        return self._epoch_logs(rows, logits, batch_row_weights, penalty_sum)

    def _epoch_logs(self, rows, logits: list, batch_row_weights: list, penalty_sum):
        """:func:`epoch_logs` from every batch's logits (and row weights), in ``rows`` order."""
        xp = self.xp
        Y_epoch = self.Y if rows is None else xp.take(self.Y, rows, axis=0)
        Z_epoch = _concat_rows(logits, xp=xp)
        R_epoch = None if self.weights is None else _concat_rows(batch_row_weights, xp=xp)
        return epoch_logs(self.model, Y_epoch, Z_epoch, penalty_sum, R_epoch)

    def train_step(self, X_batch, Y_batch, w_batch, lr):
        """Forward, backward and one optimizer step on one batch.

        Parameters
        ----------
        X_batch : array of shape (n_rows, n_features)
        Y_batch : array of shape (n_rows, n_outputs)
        w_batch : array of shape (n_rows,), or None
            The batch's sample weights.
        lr : float, or dict
            The learning rate; for :class:`mlpx._static_step.StaticStepRunner`, the
            step's ``Optimizer.step_scalars`` as 0-d device arrays.

        Returns
        -------
        z_out : array of shape (n_rows, n_outputs)
            The output layer's pre-activations (computed before the update).
        output : array of shape (n_rows, n_outputs)
        row_weights : array of shape (n_rows,), or None
            The batch's weights over their mean.
        penalty : 0-d array, or 0.0 without L2
            The L2 penalty at the weights before the update.
        """
        model, xp = self.model, self.xp
        row_weights, l2 = self._batch_weighting(w_batch, X_batch.shape[0])
        output = model._forward(X_batch)
        z_out = model.layers[-1].cache[1]
        penalty = model._penalty(l2) if model.alpha else 0.0
        grads = model._backward(Y_batch, output, row_weights, l2, self.unit_target_rows)
        self.apply_update(xp.concat([xp.reshape(g, (-1,)) for g in grads]), lr)
        return z_out, output, row_weights, penalty

    def _batch(self, rows, begin: int, end: int):
        """The batch's X, Y and sample weights (None when unweighted)."""
        weights, backend = self.weights, self.model.backend
        if rows is None:
            return (self.X[begin:end, ...], self.Y[begin:end, ...],
                    None if weights is None else weights[begin:end])
        batch_rows = rows[begin:end]
        return (take_rows(self.X, batch_rows, backend=backend),
                take_rows(self.Y, batch_rows, backend=backend),
                None if weights is None else take_rows(weights, batch_rows, backend=backend))

    def _batch_weighting(self, w_batch, n_rows: int):
        """Row weights (weights over their batch mean, or None) and the batch's L2 coefficient.

        The batch's total weight stays on the device (a 0-d array): no host sync.
        """
        if w_batch is None:
            return None, self.model._l2_coefficient(n_rows)
        total = self.xp.sum(w_batch)
        return w_batch * (n_rows / total), self.model._l2_coefficient(total * self.weight_scale)


def _rows_sum_to_one(model, Y) -> bool:
    """Whether every row of the targets sums to exactly 1 (one-hot labels), where the loss
    has a shortcut for such rows; checked once per fit, on the device."""
    if model.loss.grad_logits_unit_rows is None:
        return False
    xp = model.xp
    return bool(xp.all(xp.sum(Y, axis=-1) == 1))


def _concat_rows(arrays: list, *, xp):
    return arrays[0] if len(arrays) == 1 else xp.concat(arrays, axis=0)


def _copy_state(previous: dict, fresh: dict, *, xp) -> dict:
    """A copy of an optimizer state, checked against a fresh one for the same vector."""
    state = {}
    for key, value in fresh.items():
        if isinstance(value, list):
            old = previous.get(key)
            if (not isinstance(old, list) or len(old) != len(value)
                    or any(tuple(a.shape) != tuple(b.shape) for a, b in zip(old, value))):
                raise MlpxValueError(
                    f"the previous optimizer state's {key!r} does not fit this model's "
                    "parameters; pass reset_optimizer=True"
                )
            state[key] = [xp.astype(a, b.dtype, copy=True) for a, b in zip(old, value)]
        else:
            state[key] = previous.get(key, value)
    return state
