"""Callbacks: hooks the fit loop calls, in the shape Keras users know.

The protocol is six methods, each optional::

    on_train_begin(logs)   on_epoch_begin(epoch, logs)   on_batch_begin(batch, logs)
    on_train_end(logs)     on_epoch_end(epoch, logs)     on_batch_end(batch, logs)

``set_model(model)`` is called first. A callback stops training by setting
``model.stop_training = True``. Epoch logs hold Python floats: ``loss``, the metrics
(``accuracy`` or ``mae``), their ``val_`` versions when there is validation data, ``lr``
and ``time`` (seconds). Batch logs hold ``loss`` as a 0-d backend array (reading it as a
float waits for the device, so only callbacks that need it should).
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path
from typing import Any

from mlpx._errors import MlpxTypeError, MlpxValueError, NonFiniteLossError
from mlpx.optim import is_improvement, resolve_mode

HOOKS = (
    "on_train_begin", "on_train_end", "on_epoch_begin", "on_epoch_end", "on_batch_begin",
    "on_batch_end",
)


class Callback:
    """Base class with every hook doing nothing."""

    model: Any = None

    def set_model(self, model) -> None:
        """Called once before training with the model being trained."""
        self.model = model

    def on_train_begin(self, logs: dict | None = None) -> None:
        """Before the first epoch; ``logs`` has ``epochs``, ``metrics``, ``initial_epoch``."""

    def on_train_end(self, logs: dict | None = None) -> None:
        """After the last epoch (also when training stopped early or failed)."""

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        """Before epoch ``epoch`` (0-based)."""

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        """After epoch ``epoch``; ``logs`` holds its loss, metrics, lr and time."""

    def on_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        """Before step ``batch`` of the epoch (0-based)."""

    def on_batch_end(self, batch: int, logs: dict | None = None) -> None:
        """After step ``batch``; ``logs`` holds its ``loss`` and ``size`` (rows)."""


class History(Callback):
    """Records every epoch's logs; ``fit`` returns it.

    Attributes
    ----------
    history : dict of str -> list of float
        ``history["loss"][e]`` is the training loss of epoch e; likewise the metrics,
        ``val_*``, ``lr`` and ``time`` (seconds per epoch).
    epoch : list of int
        The epochs that ran (0-based).
    wall_time : float
        Seconds for the whole fit.
    stop_reason : str or None
        Why training ended before ``epochs`` ("early_stopping", "tol", "interrupted", ...),
        if it did.
    interrupted : bool
        True when Ctrl-C stopped the fit (after a step; that epoch is not logged).
    """

    def __init__(self) -> None:
        self.history: dict[str, list[float]] = {}
        self.epoch: list[int] = []
        self.wall_time = 0.0
        self.stop_reason: str | None = None
        self.interrupted = False

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(value)

    def __getitem__(self, key: str) -> list[float]:
        return self.history[key]

    def __repr__(self) -> str:
        last = {key: values[-1] for key, values in self.history.items()}
        return f"History(epochs={len(self.epoch)}, last={last})"


class EarlyStopping(Callback):
    """Stop when a monitored value has not improved for ``patience`` epochs.

    Parameters
    ----------
    monitor : str
        An epoch-log key: "val_loss" (default), "loss", "val_accuracy", ...
    patience : int
        Epochs without improvement to wait before stopping.
    min_delta : float
        The least change that counts as an improvement.
    mode : {"auto", "min", "max"}
        "auto" maximises accuracy-like keys and minimises the rest.
    restore_best_weights : bool
        At the end of training, put back the weights of the best epoch.

    Attributes
    ----------
    best : float
    best_epoch : int
    stopped_epoch : int or None
    """

    def __init__(self, monitor: str = "val_loss", patience: int = 10, min_delta: float = 0.0,
                 mode: str = "auto", restore_best_weights: bool = True) -> None:
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 0:
            raise MlpxValueError(f"patience={patience!r} must be an int >= 0")
        self.monitor = monitor
        self.patience = patience
        self.min_delta = abs(float(min_delta))
        self.mode = resolve_mode(mode, monitor)
        self.restore_best_weights = restore_best_weights

    def on_train_begin(self, logs=None):
        self.best = math.inf if self.mode == "min" else -math.inf
        self.best_epoch = -1
        self.stopped_epoch = None
        self._wait = 0
        self._best_params = None

    def on_epoch_end(self, epoch, logs=None):
        value = logs[self.monitor]
        if is_improvement(value, self.best, mode=self.mode, min_delta=self.min_delta):
            self.best, self.best_epoch, self._wait = value, epoch, 0
            if self.restore_best_weights:
                self._best_params = self.model.copy_params()
            return
        self._wait += 1
        if self._wait >= self.patience:
            self.stopped_epoch = epoch
            self.model.stop_training = True
            self.model.stop_reason = "early_stopping"

    def on_train_end(self, logs=None):
        if self.restore_best_weights and self._best_params is not None:
            self.model._assign_params(self._best_params)


class Checkpoint(Callback):
    """Save the whole training state to one file, to continue with ``fit(resume_from=path)``.

    The file (safetensors, see :mod:`mlpx.io`) holds the weights, the optimizer state, the
    epoch, the learning-rate schedule's state, the shuffling generator's state and the
    history so far; each save replaces it atomically, so a crash mid-save keeps the
    previous one. It also loads as a plain model with :func:`mlpx.load`.

    Parameters
    ----------
    path : str or os.PathLike
        The file; its directory must exist.
    every : int
        Save at the end of every ``every``-th epoch (epochs ``every - 1``, ``2 every - 1``,
        ... counting from 0).
    save_best : bool
        Save only when ``monitor`` improved on the best value seen in this fit (checked
        every ``every`` epochs): the file keeps the best epoch's state.
    monitor : str
        The epoch-log key ``save_best`` watches ("val_loss" needs validation_data).
    mode : {"auto", "min", "max"}
        "auto" maximises accuracy-like keys and minimises the rest.

    Attributes
    ----------
    last_saved_epoch : int or None
    best : float
        The best monitored value (``save_best`` only).
    """

    def __init__(self, path, every: int = 1, save_best: bool = False,
                 monitor: str = "val_loss", mode: str = "auto") -> None:
        if not isinstance(path, (str, os.PathLike)):
            raise MlpxTypeError(f"path={path!r} must be a str or os.PathLike file path")
        if Path(path).is_dir():
            raise MlpxValueError(f"path={str(path)!r} is a directory; give a file name such "
                                 "as 'run.ckpt.safetensors'")
        if not Path(path).parent.is_dir():
            raise FileNotFoundError(f"Checkpoint path={str(path)!r}: the directory "
                                    f"{str(Path(path).parent)!r} does not exist; create it")
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise MlpxValueError(f"every={every!r} must be an int >= 1 (epochs between saves)")
        if not isinstance(save_best, bool):
            raise MlpxTypeError(f"save_best={save_best!r} must be True or False")
        self.path = path
        self.every = every
        self.save_best = save_best
        # only a monitor that is used must name a logged key (fit checks it)
        self.monitor = monitor if save_best else None
        self.mode = resolve_mode(mode, monitor)
        self.last_saved_epoch = None
        self.best = math.inf if self.mode == "min" else -math.inf

    def on_train_begin(self, logs=None):
        self.best = math.inf if self.mode == "min" else -math.inf

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every:
            return
        if self.save_best:
            value = logs[self.monitor]
            if not is_improvement(value, self.best, mode=self.mode, min_delta=0.0):
                return
            self.best = value
        context = getattr(self.model, "_fit_context", None)
        if context is None:
            raise MlpxValueError("Checkpoint saves the state of a running fit; pass it to "
                                 "fit(callbacks=[...]) (model.save writes a plain model)")
        context.save_checkpoint(self.path, epoch, logs)
        self.last_saved_epoch = epoch


class TerminateOnNaN(Callback):
    """Stop at the first batch whose loss is NaN or infinite, with NonFiniteLossError.

    The fit loop always checks every epoch; this callback checks every batch (each check
    waits for the device). Either way the model keeps its last finite weights.
    """

    def on_batch_end(self, batch, logs=None):
        loss = float((logs or {}).get("loss", 0.0))
        if not math.isfinite(loss):
            raise NonFiniteLossError(f"the training loss became {loss} at batch {batch}")


class WeightChangeStopping(Callback):
    """Stop when no parameter moved by more than ``tol`` in an epoch (tutorial 003's rule).

    Parameters
    ----------
    tol : float
        The largest absolute change of any weight or bias over one epoch below which
        training stops.
    """

    def __init__(self, tol: float) -> None:
        if isinstance(tol, bool) or not isinstance(tol, (int, float)):
            raise MlpxTypeError(f"tol={tol!r} must be a number > 0, e.g. 1e-6")
        tol = float(tol)
        if not math.isfinite(tol) or tol <= 0:
            raise MlpxValueError(f"tol={tol!r} must be a finite number > 0, e.g. 1e-6")
        self.tol = tol
        self.last_change = math.inf

    def on_epoch_begin(self, epoch, logs=None):
        self._start = self.model.copy_params()

    def on_epoch_end(self, epoch, logs=None):
        xp = self.model.xp
        changes = [xp.max(xp.abs(new - old)) for new, old in zip(self.model.params, self._start)]
        self.last_change = float(xp.max(xp.stack(changes)))
        logs["max_weight_change"] = self.last_change
        if self.last_change < self.tol:
            self.model.stop_training = True
            self.model.stop_reason = "tol"


class ProgressBar(Callback):
    """A tqdm progress bar over epochs, and a line of logs every ``print_every`` epochs.

    Parameters
    ----------
    print_every : int or None
        Print ``epoch N/M  loss ...`` every this many epochs (and the first and last) to
        ``lines_file``; None or 0: no lines.
    bar : bool
        Show the bar (on ``bar_file``); False keeps only the lines.
    bar_file, lines_file : file-like, optional
        Default: the bar on standard error, the lines on standard output.
    """

    def __init__(self, print_every: int | None = None, bar: bool = True, bar_file=None,
                 lines_file=None) -> None:
        self.print_every = print_every
        self.bar = bar
        self.bar_file = bar_file
        self.lines_file = lines_file
        self._bar = None

    def on_train_begin(self, logs=None):
        self.epochs = (logs or {}).get("epochs")
        if self.bar:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=self.epochs, initial=(logs or {}).get("initial_epoch", 0),
                             unit="epoch", file=self.bar_file or sys.stderr,
                             dynamic_ncols=True, leave=True)

    def on_epoch_end(self, epoch, logs=None):
        shown = {k: v for k, v in (logs or {}).items() if k not in ("time", "lr")}
        if self._bar is not None:
            self._bar.set_postfix({k: f"{v:.4g}" for k, v in shown.items()}, refresh=False)
            self._bar.update(1)
        last = self.epochs is not None and epoch + 1 == self.epochs
        if self.print_every and ((epoch + 1) % self.print_every == 0 or last or epoch == 0):
            values = "  ".join(f"{k} {v:.4f}" for k, v in shown.items())
            line = f"epoch {epoch + 1}/{self.epochs}  {values}"
            out = self.lines_file or sys.stdout
            if self._bar is not None:
                self._bar.write(line, file=out)
            else:
                print(line, file=out)

    def on_train_end(self, logs=None):
        if self._bar is not None:
            self._bar.close()
            self._bar = None


class CallbackList:
    """Calls a hook on every callback in order; objects may define any subset of hooks."""

    def __init__(self, callbacks: list, model) -> None:
        for callback in callbacks:
            if isinstance(callback, type):
                raise MlpxTypeError(
                    f"callbacks has the class {callback.__name__}, not an instance; pass "
                    f"{callback.__name__}() (with its arguments)"
                )
            if not any(callable(getattr(callback, hook, None)) for hook in HOOKS):
                raise MlpxTypeError(
                    f"callbacks entry {callback!r} has none of the callback hooks "
                    f"({', '.join(HOOKS)}); subclass mlpx.callbacks.Callback"
                )
        self.callbacks = list(callbacks)
        for callback in self.callbacks:
            set_model = getattr(callback, "set_model", None)
            if callable(set_model):
                set_model(model)
            else:
                callback.model = model
        self.wants_batch_begin = any(
            _overrides(callback, "on_batch_begin") for callback in self.callbacks
        )
        self.wants_batch_end = any(
            _overrides(callback, "on_batch_end") for callback in self.callbacks
        )

    def call(self, hook: str, *args) -> None:
        """Call ``hook`` with ``args`` on every callback that defines it, in order."""
        for callback in self.callbacks:
            method = getattr(callback, hook, None)
            if callable(method):
                method(*args)


def _overrides(callback, hook: str) -> bool:
    method = getattr(type(callback), hook, None)
    return method is not None and method is not getattr(Callback, hook)
