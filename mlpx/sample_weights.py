"""Sample and class weights: checked on the host, as one weight per sample.

``fit(sample_weight=, class_weight=)`` turns both into one vector of non-negative weights
(their product). The weights are small (one number per sample), so they are checked and
combined as NumPy arrays, and moved to the model's device once by the fit loop.
"""

from __future__ import annotations

import numpy as np
from array_api_compat import array_namespace

from mlpx._backend import to_numpy
from mlpx._errors import MlpxTypeError, MlpxValueError


def check_sample_weight(sample_weight, *, n_samples: int) -> np.ndarray | None:
    """Validate ``sample_weight`` and return it as float64 of shape (n_samples,).

    Parameters
    ----------
    sample_weight : array-like of shape (n_samples,), a number, or None
        A number weighs every sample the same (as None does).
    n_samples : int
        The number of rows of X.

    Raises
    ------
    MlpxValueError, MlpxTypeError
        Wrong length or shape, non-numeric, NaN/inf, negative, or all zero.
    """
    if sample_weight is None:
        return None
    try:
        if isinstance(sample_weight, (int, float, np.integer, np.floating)) and not isinstance(
                sample_weight, bool):
            sample_weight = np.full(n_samples, float(sample_weight))
        host = to_numpy(sample_weight)
    except (ValueError, TypeError, OverflowError) as exc:
        raise MlpxValueError(
            f"sample_weight could not be read as an array ({exc}); pass one number per sample"
        ) from None
    if host.dtype.kind not in "biuf":
        raise MlpxTypeError(
            f"sample_weight must be numeric, got dtype {host.dtype}; pass one number per sample"
        )
    if host.ndim != 1 or host.shape[0] != n_samples:
        raise MlpxValueError(
            f"sample_weight must have shape ({n_samples},), one weight per row of X, got "
            f"shape {host.shape}"
        )
    host = host.astype(np.float64)
    if not np.all(np.isfinite(host)):
        raise MlpxValueError("sample_weight contains NaN or infinite values")
    if np.any(host < 0):
        raise MlpxValueError("sample_weight has negative values; weights must be >= 0")
    if not np.any(host > 0):
        raise MlpxValueError(
            "sample_weight: every weight is zero; give some samples a weight > 0"
        )
    with np.errstate(over="ignore"):
        total = np.sum(host)
    if not np.isfinite(total):
        raise MlpxValueError(
            "sample_weight is too large: the weights sum to more than float64 holds; divide "
            "them by a common factor (only their ratios matter)"
        )
    return host


def class_indices(Y, *, task: str) -> np.ndarray:
    """Each sample's class index (n_samples,) from encoded targets, on the host.

    Parameters
    ----------
    Y : array of shape (n_samples, n_outputs)
        One-hot rows (multiclass) or one 0/1 column (binary), on any backend.
    """
    if task == "multiclass":
        return to_numpy(array_namespace(Y).argmax(Y, axis=1)).astype(np.intp)
    return (to_numpy(Y[:, 0]) >= 0.5).astype(np.intp)


def class_sample_weights(class_weight, Y, *, classes, task: str) -> np.ndarray:
    """One weight per sample from ``class_weight``, shape (n_samples,), float64.

    Parameters
    ----------
    class_weight : dict or "balanced"
        ``{label: weight}`` (labels of ``classes``; classes not named weigh 1), or
        "balanced": ``n_samples / (n_classes * count)`` per class.
    Y : array of shape (n_samples, n_outputs)
        The encoded targets.
    classes : numpy array
        The labels that the outputs stand for (``classes_``).
    task : {"binary", "multiclass", "regression"}

    Raises
    ------
    MlpxValueError, MlpxTypeError
        For a regression or multi-label model, an unknown label, or a bad weight.
    """
    if task == "regression":
        raise MlpxValueError(
            "class_weight is for classifiers; this model is a regression model (use "
            "sample_weight)"
        )
    if task == "binary" and Y.shape[1] > 1:
        raise MlpxValueError(
            "class_weight is not supported for multi-label targets (several sigmoid outputs); "
            "use sample_weight"
        )
    indices = class_indices(Y, task=task)
    n_classes = len(classes)
    if isinstance(class_weight, str):
        if class_weight != "balanced":
            raise MlpxValueError(
                f"class_weight={class_weight!r} is not known; use 'balanced' or a dict "
                "{label: weight}"
            )
        counts = np.bincount(indices, minlength=n_classes).astype(np.float64)
        present = counts > 0
        per_class = np.ones(n_classes)
        per_class[present] = indices.shape[0] / (np.count_nonzero(present) * counts[present])
    elif isinstance(class_weight, dict):
        per_class = weights_from_dict(class_weight, classes)
    else:
        raise MlpxTypeError(
            f"class_weight={class_weight!r} must be None, 'balanced' or a dict {{label: weight}}"
        )
    return per_class[indices]


def weights_from_dict(class_weight: dict, classes) -> np.ndarray:
    labels = [label.item() if hasattr(label, "item") else label for label in classes]
    per_class = np.ones(len(labels))
    for label, weight in class_weight.items():
        key = label.item() if hasattr(label, "item") else label
        if key not in labels:
            raise MlpxValueError(
                f"class_weight names the label {key!r}, which is not a class of this model; "
                f"its classes are {labels}"
            )
        if isinstance(weight, (bool, complex, np.complexfloating)) or not isinstance(
            weight, (int, float, np.integer, np.floating)
        ) or not (np.isfinite(weight) and weight >= 0):
            raise MlpxValueError(
                f"class_weight[{key!r}]={weight!r} must be a finite number >= 0"
            )
        per_class[labels.index(key)] = float(weight)
    return per_class
