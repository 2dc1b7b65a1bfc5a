"""Targets: turn user labels into the float matrix the loss compares with the output.

- ``"binary"`` (sigmoid output): labels of two classes -> 0/1, shape (n_samples, n_outputs).
  One output unit takes labels of any two values (0/1, bools, -1/+1, strings); several
  units (multi-label) take a 0/1 matrix.
- ``"multiclass"`` (softmax output): integer class indices 0..k-1, any other labels mapped
  through ``classes_``, or one-hot / probability rows -> shape (n_samples, k).
- ``"regression"``: real values -> shape (n_samples, n_outputs).

Host labels (NumPy, lists, strings) are encoded on the host and moved once; labels that are
already arrays of the model's backend are encoded there (numeric labels only).
"""

from __future__ import annotations

from typing import Any

import array_api_compat
import numpy as np

from mlpx._backend import (
    Backend,
    as_backend_array,
    dtype_name,
    host_array,
    is_host_array,
    to_numpy,
)
from mlpx._errors import MlpxTypeError, MlpxValueError


def default_classes(task: str, n_outputs: int) -> np.ndarray | None:
    """The classes a model knows before it has seen labels: 0/1, or 0..k-1."""
    if task == "binary":
        return np.array([0, 1])
    if task == "multiclass":
        return np.arange(n_outputs)
    return None


def _is_numeric(y) -> bool:
    if isinstance(y, np.ndarray):
        return y.dtype.kind in "biuf"
    return True  # backend arrays are numeric by construction


def _to_host_labels(y, *, name: str) -> np.ndarray:
    host = host_array(y, name=name)
    if host.dtype.kind == "O":
        try:
            host = host.astype(np.float64)
        except (TypeError, ValueError, OverflowError):  # text, or ints beyond float64
            host = host.astype(str)
    return host


def _labels_1d(y, *, n_samples: int, name: str, xp) -> Any:
    """Class labels as shape (n_samples,), accepting (n_samples, 1)."""
    if y.ndim == 2 and y.shape[1] == 1:
        y = xp.reshape(y, (-1,))
    if y.ndim != 1:
        raise MlpxValueError(
            f"{name} must have shape ({n_samples},) or ({n_samples}, 1) for this output, "
            f"got shape {tuple(y.shape)}"
        )
    return y


def _check_finite(y, *, name: str, xp) -> None:
    if _is_numeric(y) and xp.isdtype(y.dtype, "real floating") and not bool(
        xp.all(xp.isfinite(y))
    ):
        raise MlpxValueError(
            f"{name} contains NaN or infinite values; drop or impute those samples first"
        )


def infer_classes(y, *, task: str, n_outputs: int, name: str = "y") -> np.ndarray | None:
    """The classes a first ``fit`` learns from its labels (host NumPy array), or None.

    Raises
    ------
    MlpxValueError
        When the labels do not fit the output layer.
    """
    if task == "regression":
        return None
    xp = array_api_compat.array_namespace(y) if not isinstance(y, np.ndarray) else np
    if y.ndim == 2 and (y.shape[1] > 1 or task == "binary" and n_outputs > 1):
        return default_classes(task, n_outputs)  # one-hot or multi-label matrix
    values = np.asarray(to_numpy(xp.unique_values(y) if xp is not np else np.unique(y)))
    if task == "binary":
        return _binary_classes(values, name=name)
    return _multiclass_classes(values, n_outputs=n_outputs, name=name)


def _binary_classes(values: np.ndarray, *, name: str) -> np.ndarray:
    if values.dtype.kind == "b":
        return np.array([False, True])
    if values.dtype.kind in "iuf" and np.all(np.isin(values, [0, 1])):
        return np.array([0, 1])
    if values.size > 2:
        shown = ", ".join(str(v) for v in values[:6])
        raise MlpxValueError(
            f"{name} has {values.size} distinct labels ({shown}) but a single sigmoid output "
            "separates two classes; use a softmax output with one unit per class"
        )
    if values.size < 2:
        if values.dtype.kind in "iuf":
            return np.array([0, 1])
        raise MlpxValueError(
            f"{name} has only one distinct label ({_plain(values[0])!r}); a classifier needs "
            "both of its classes in the first fit, or 0/1 labels"
        )
    return values


def _multiclass_classes(values: np.ndarray, *, n_outputs: int, name: str) -> np.ndarray:
    if values.dtype.kind in "iuf" and np.all(values == np.round(values)):
        out_of_range = values[(values < 0) | (values >= n_outputs)]
        if out_of_range.size:
            raise MlpxValueError(
                f"{name} has class label {out_of_range[-1]:g} but the softmax output has "
                f"{n_outputs} units (integer labels are class indices 0..{n_outputs - 1}); "
                f"use {int(out_of_range[-1]) + 1} output units or relabel the classes"
            )
        return np.arange(n_outputs)
    if values.size != n_outputs:
        raise MlpxValueError(
            f"{name} has {values.size} distinct labels but the softmax output has "
            f"{n_outputs} units; use {values.size} output units (labels that are not class "
            f"indices 0..{n_outputs - 1} must name every class in the first fit)"
        )
    return values


def _one_hot_by_classes(y, classes, *, name: str, xp):
    """Shape (n_samples, n_classes) 0/1 floats: row i marks the class y[i] equals."""
    matches = y[:, None] == classes[None, :]
    known = xp.any(matches, axis=1)
    if not bool(xp.all(known)):
        unknown = to_numpy(y)[~to_numpy(known)]
        raise MlpxValueError(
            f"{name} has label {_plain(unknown[0])!r} that the model does not know; its "
            f"classes_ are {to_numpy(classes).tolist()}"
        )
    return matches


def _plain(value):
    """A NumPy scalar as the Python value it holds (for messages)."""
    return value.item() if hasattr(value, "item") else value


def encode_targets(
    y, *, task: str, n_outputs: int, classes, n_samples: int, backend: Backend, dtype,
    name: str = "y",
):
    """User labels or targets -> (float array (n_samples, n_outputs) on ``backend``, classes).

    Parameters
    ----------
    y : array-like of shape (n_samples,) or (n_samples, n_outputs)
    task : {"binary", "multiclass", "regression"}
    classes : numpy array or None
        The model's ``classes_`` (labels are mapped through it); None to learn them from
        ``y`` (a first fit).
    n_samples : int
        The number of rows of X, which y must match.

    Raises
    ------
    MlpxValueError, MlpxTypeError
        Wrong shape, NaN/inf, non-numeric regression targets, or unknown labels.
    """
    host = is_host_array(y)
    if host:
        y = _to_host_labels(y, name=name)
        xp = np
    else:
        y = as_backend_array(y, backend=backend, name=name)
        xp = backend.xp
    if y.ndim == 0 or y.ndim > 2:
        raise MlpxValueError(
            f"{name} must be 1-D (n_samples,) or 2-D (n_samples, n_outputs), got shape "
            f"{tuple(y.shape)}"
        )
    if y.shape[0] != n_samples:
        raise MlpxValueError(
            f"{name} has {y.shape[0]} samples but X has {n_samples}; pass one target per row of X"
        )
    _check_finite(y, name=name, xp=xp)
    if classes is None:
        classes = infer_classes(y, task=task, n_outputs=n_outputs, name=name)
    if task == "regression":
        targets = _regression_targets(y, n_outputs=n_outputs, name=name, xp=xp)
    elif y.ndim == 2 and (y.shape[1] > 1 or (task == "binary" and n_outputs > 1)):
        targets = _matrix_targets(y, task=task, n_outputs=n_outputs, name=name, xp=xp)
    else:
        labels = _labels_1d(y, n_samples=n_samples, name=name, xp=xp)
        if task == "binary" and n_outputs > 1:
            raise MlpxValueError(
                f"{name} must be a 0/1 matrix of shape ({n_samples}, {n_outputs}) for "
                f"{n_outputs} sigmoid outputs, got shape {tuple(y.shape)}"
            )
        classes_here = classes if host else _classes_on(classes, labels, backend=backend,
                                                        name=name)
        one_hot = _one_hot_by_classes(labels, classes_here, name=name, xp=xp)
        targets = one_hot[:, 1:2] if task == "binary" else one_hot
    if host:
        # labels' one-hot rows (bool) go straight to the model's dtype: a float64 copy of
        # an (n_samples, n_classes) matrix is 160 MB for 20 000 samples of 1000 classes
        host_dtype = np.dtype(dtype_name(dtype)) if targets.dtype == np.bool_ else np.float64
        targets = np.asarray(targets, dtype=host_dtype)
        return backend.xp.asarray(targets, dtype=dtype, device=backend.device), classes
    return backend.xp.astype(targets, dtype), classes


def _classes_on(classes: np.ndarray, labels, *, backend: Backend, name: str):
    """The classes on the backend, in the labels' dtype (strict refuses mixed comparisons)."""
    if classes.dtype.kind not in "biuf":
        raise MlpxTypeError(
            f"{name} is a {backend.name} array, but the model's classes_ are not numbers "
            f"({classes.dtype}); pass {name} as a NumPy array or list"
        )
    xp = backend.xp
    return xp.astype(xp.asarray(classes, device=backend.device), labels.dtype)


def _regression_targets(y, *, n_outputs: int, name: str, xp):
    if not _is_numeric(y):
        raise MlpxTypeError(f"{name} must be numeric for regression, got dtype {y.dtype}")
    if y.ndim == 1:
        y = xp.reshape(y, (-1, 1))
    if y.shape[1] != n_outputs:
        raise MlpxValueError(
            f"{name} has {y.shape[1]} target columns but the model has {n_outputs} outputs; "
            f"make the last layer size {y.shape[1]}"
        )
    return y


def _matrix_targets(y, *, task: str, n_outputs: int, name: str, xp):
    """One-hot / probability rows (multiclass) or a 0/1 matrix (multi-label)."""
    if not _is_numeric(y):
        raise MlpxTypeError(f"{name} as a matrix must be numeric, got dtype {y.dtype}")
    if y.shape[1] != n_outputs:
        raise MlpxValueError(
            f"{name} has {y.shape[1]} columns but the output layer has {n_outputs} units; "
            f"make them match"
        )
    if not bool(xp.all((y >= 0) & (y <= 1))):
        raise MlpxValueError(
            f"{name} as a matrix must hold one-hot rows or probabilities in [0, 1]"
        )
    return y
