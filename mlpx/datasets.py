"""Toy datasets on any backend, plus the helpers the tutorials use around them.

Every generator draws its randomness on the host from ``numpy.random.default_rng(seed)``,
builds the data in float64 NumPy, and moves it to the requested backend once (casting to
``dtype`` on the host first), so the same ``seed`` gives the same numbers on NumPy, CuPy,
PyTorch and array-api-strict. Each returns ``(X, y)``: ``X`` of shape
``(n_samples, n_features)`` in the float dtype asked for and ``y`` of shape ``(n_samples,)``
holding int64 class labels ``0 .. n_classes - 1``, both on the backend's device, rows shuffled.

``train_test_split``, :class:`StandardScaler` and :func:`one_hot` work on arrays of any
backend and return arrays of the same backend.
"""

from __future__ import annotations

import math
import numbers
from types import ModuleType
from typing import Any

import numpy as np
from array_api_compat import device as array_device

from mlpx._backend import (
    Backend,
    as_backend_array,
    backend_of,
    from_host,
    resolve_backend,
    resolve_dtype,
    to_numpy,
)
from mlpx._errors import MlpxTypeError, MlpxValueError

__all__ = [
    "StandardScaler",
    "load_digits",
    "make_blobs",
    "make_circles",
    "make_moons",
    "make_red_blue",
    "make_spirals",
    "make_xor",
    "one_hot",
    "train_test_split",
]

Array = Any
Seed = int | np.random.Generator | None


# --------------------------------------------------------------------------- validation


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _check_int(value: Any, name: str, *, minimum: int, hint: str = "") -> int:
    """An int ``>= minimum``; the error names ``name``, the value and what to pass."""
    fix = f"pass an int >= {minimum}{hint}"
    if not _is_int(value):
        raise MlpxTypeError(f"{name}={value!r} must be an int; {fix}")
    if value < minimum:
        raise MlpxValueError(f"{name}={value!r} is too small; {fix}")
    return int(value)


def _check_nonnegative(value: Any, name: str) -> float:
    """A finite real number ``>= 0`` (noise levels, standard deviations)."""
    fix = f"pass a finite number >= 0, e.g. {name}=0.1"
    if not _is_real(value):
        raise MlpxTypeError(f"{name}={value!r} must be a number; {fix}")
    if not math.isfinite(value) or value < 0:
        raise MlpxValueError(f"{name}={value!r} is not allowed; {fix}")
    return float(value)


def _rng(seed: Seed) -> np.random.Generator:
    """The host generator all randomness comes from (DESIGN pattern 3)."""
    if seed is None or isinstance(seed, np.random.Generator):
        return np.random.default_rng(seed)
    if not _is_int(seed) or seed < 0:
        raise MlpxValueError(
            f"seed={seed!r} must be None, an int >= 0 or a numpy.random.Generator; "
            "e.g. seed=42 for reproducible data"
        )
    return np.random.default_rng(int(seed))


def _resolve(backend: Any, dtype: Any) -> tuple[Backend, Any]:
    """Resolve ``backend=`` and ``dtype=`` once for a generator."""
    resolved = resolve_backend(backend)
    return resolved, resolve_dtype(dtype, xp=resolved.xp)


def _split_counts(n_samples: int, n_groups: int) -> list[int]:
    """``n_samples`` split over ``n_groups`` as evenly as possible, earlier groups first."""
    base, extra = divmod(n_samples, n_groups)
    return [base + (i < extra) for i in range(n_groups)]


# --------------------------------------------------------------------------- host -> backend


def _finish(
    X: np.ndarray, y: np.ndarray, rng: np.random.Generator, *, backend: Backend, dtype: Any
) -> tuple[Array, Array]:
    """Shuffle the host rows, cast on the host, and move ``(X, y)`` to ``backend``.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features), float64
    y : ndarray of shape (n_samples,), integer labels
    """
    order = rng.permutation(X.shape[0])
    X_host = X[order].astype(_host_dtype(dtype, xp=backend.xp))
    y_host = y[order].astype(np.int64)
    X_out = from_host(X_host, backend=backend, dtype=dtype)
    y_out = from_host(y_host, backend=backend, dtype=backend.xp.int64)
    return X_out, y_out


def _host_dtype(dtype: Any, *, xp: ModuleType) -> type[np.floating]:
    """The NumPy twin of a resolved float dtype of ``xp`` (compared with ``==``)."""
    return np.float64 if dtype == xp.float64 else np.float32


def _labels(counts: list[int]) -> np.ndarray:
    """Labels ``0`` repeated ``counts[0]`` times, then ``1`` ... shape (sum(counts),)."""
    return np.repeat(np.arange(len(counts), dtype=np.int64), counts)


# --------------------------------------------------------------------------- generators


def make_moons(
    n_samples: int = 500,
    noise: float = 0.2,
    seed: Seed = None,
    *,
    backend: Any = "numpy",
    dtype: Any = "float32",
) -> tuple[Array, Array]:
    """Two interleaving half circles (the tutorial's from-scratch recipe).

    Moon 0 has ``n_samples // 2`` points at ``(cos t, sin t)`` for ``t`` evenly spaced in
    ``[0, pi]``; moon 1 has the other points at ``(1 - cos t, 1 - sin t - 0.5)``. Gaussian
    noise of standard deviation ``noise`` is added to both coordinates, then rows are shuffled.

    Parameters
    ----------
    n_samples : int, default 500
        Total number of points, >= 1.
    noise : float, default 0.2
        Standard deviation of the Gaussian noise added to every coordinate, >= 0.
    seed : int, numpy.random.Generator or None
        Seed of the host generator; the same seed gives the same data on every backend.
    backend : str, namespace or Backend, default "numpy"
    dtype : {"float32", "float64"}, default "float32"
        Dtype of ``X``.

    Returns
    -------
    X : array of shape (n_samples, 2)
    y : array of shape (n_samples,), int64 labels in {0, 1}
    """
    n_samples = _check_int(n_samples, "n_samples", minimum=1)
    noise = _check_nonnegative(noise, "noise")
    rng = _rng(seed)
    resolved, dtype = _resolve(backend, dtype)
    counts = [n_samples // 2, n_samples - n_samples // 2]
    theta0 = np.linspace(0.0, np.pi, counts[0])
    theta1 = np.linspace(0.0, np.pi, counts[1])
    moon0 = np.column_stack([np.cos(theta0), np.sin(theta0)])
    moon1 = np.column_stack([1.0 - np.cos(theta1), 1.0 - np.sin(theta1) - 0.5])
    X = np.vstack([moon0, moon1])
    X += rng.normal(0.0, noise, size=X.shape)
    return _finish(X, _labels(counts), rng, backend=resolved, dtype=dtype)


def make_circles(
    n_samples: int = 500,
    noise: float = 0.1,
    factor: float = 0.5,
    seed: Seed = None,
    *,
    backend: Any = "numpy",
    dtype: Any = "float32",
) -> tuple[Array, Array]:
    """Two concentric circles: the outer one (radius 1) is class 0, the inner one class 1.

    The outer circle has ``n_samples // 2`` points, the inner one (radius ``factor``) the
    rest, evenly spaced in angle; Gaussian noise of standard deviation ``noise`` is added.

    Parameters
    ----------
    n_samples : int, default 500
        Total number of points, >= 1.
    noise : float, default 0.1
        Standard deviation of the Gaussian noise, >= 0.
    factor : float, default 0.5
        Radius of the inner circle relative to the outer one, in [0, 1).
    seed : int, numpy.random.Generator or None
    backend : str, namespace or Backend, default "numpy"
    dtype : {"float32", "float64"}, default "float32"

    Returns
    -------
    X : array of shape (n_samples, 2)
    y : array of shape (n_samples,), int64 labels in {0, 1}
    """
    n_samples = _check_int(n_samples, "n_samples", minimum=1)
    noise = _check_nonnegative(noise, "noise")
    if not _is_real(factor):
        raise MlpxTypeError(f"factor={factor!r} must be a number in [0, 1), e.g. factor=0.5")
    if not 0.0 <= factor < 1.0:
        raise MlpxValueError(
            f"factor={factor!r} must be in [0, 1) (the inner radius relative to the outer "
            "one), e.g. factor=0.5"
        )
    rng = _rng(seed)
    resolved, dtype = _resolve(backend, dtype)
    counts = [n_samples // 2, n_samples - n_samples // 2]
    X = np.vstack([_circle(counts[0], 1.0), _circle(counts[1], float(factor))])
    X += rng.normal(0.0, noise, size=X.shape)
    return _finish(X, _labels(counts), rng, backend=resolved, dtype=dtype)


def _circle(n_points: int, radius: float) -> np.ndarray:
    """``n_points`` evenly spaced on a circle of ``radius``; shape (n_points, 2)."""
    angle = np.linspace(0.0, 2.0 * np.pi, n_points, endpoint=False)
    return radius * np.column_stack([np.cos(angle), np.sin(angle)])


def make_blobs(
    n_samples: int = 500,
    centers: int | Any = 3,
    n_features: int | None = None,
    cluster_std: float | Any = 1.0,
    center_box: tuple[float, float] = (-10.0, 10.0),
    seed: Seed = None,
    *,
    backend: Any = "numpy",
    dtype: Any = "float32",
) -> tuple[Array, Array]:
    """Isotropic Gaussian blobs, one class per center.

    Parameters
    ----------
    n_samples : int, default 500
        Total number of points, >= 1, split as evenly as possible over the centers.
    centers : int or array-like of shape (n_centers, n_features), default 3
        How many centers to draw uniformly in ``center_box``, or the centers themselves.
    n_features : int, optional
        Number of features when ``centers`` is an int (default 2). When ``centers`` is an
        array it is taken from the array's shape and, if given, must match it.
    cluster_std : float or array-like of shape (n_centers,), default 1.0
        Standard deviation of every blob, or one per blob; >= 0.
    center_box : (float, float), default (-10.0, 10.0)
        ``(low, high)`` bounds of the random centers.
    seed : int, numpy.random.Generator or None
    backend : str, namespace or Backend, default "numpy"
    dtype : {"float32", "float64"}, default "float32"

    Returns
    -------
    X : array of shape (n_samples, n_features)
    y : array of shape (n_samples,), int64 labels in ``0 .. n_centers - 1``
    """
    n_samples = _check_int(n_samples, "n_samples", minimum=1)
    low, high = _check_center_box(center_box)
    rng = _rng(seed)
    resolved, dtype = _resolve(backend, dtype)
    center_array = _blob_centers(centers, n_features, low, high, rng)
    stds = _blob_stds(cluster_std, center_array.shape[0])
    counts = _split_counts(n_samples, center_array.shape[0])
    blobs = [
        center + std * rng.standard_normal((count, center_array.shape[1]))
        for center, std, count in zip(center_array, stds, counts, strict=True)
    ]
    return _finish(np.vstack(blobs), _labels(counts), rng, backend=resolved, dtype=dtype)


def _check_center_box(center_box: Any) -> tuple[float, float]:
    fix = "pass (low, high) with low < high, e.g. center_box=(-10.0, 10.0)"
    try:
        low, high = center_box
    except (TypeError, ValueError):
        raise MlpxTypeError(f"center_box={center_box!r} must be a pair; {fix}") from None
    if not (_is_real(low) and _is_real(high)):
        raise MlpxTypeError(f"center_box={center_box!r} must hold two numbers; {fix}")
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise MlpxValueError(f"center_box={center_box!r} is not a valid range; {fix}")
    return float(low), float(high)


def _blob_centers(
    centers: Any, n_features: int | None, low: float, high: float, rng: np.random.Generator
) -> np.ndarray:
    """The centers as a float64 host array of shape (n_centers, n_features)."""
    if _is_int(centers):
        n_centers = _check_int(centers, "centers", minimum=1, hint=" or an array of centers")
        n_features = 2 if n_features is None else n_features
        n_features = _check_int(n_features, "n_features", minimum=1)
        return rng.uniform(low, high, size=(n_centers, n_features))
    try:
        array = np.asarray(to_numpy(centers), dtype=np.float64)
    except (TypeError, ValueError):
        raise MlpxTypeError(
            f"centers={centers!r} must be an int or an array of shape (n_centers, n_features)"
        ) from None
    if array.ndim != 2 or array.shape[0] < 1 or array.shape[1] < 1:
        raise MlpxValueError(
            f"centers has shape {array.shape}; pass an int or a non-empty array of shape "
            "(n_centers, n_features)"
        )
    if not np.all(np.isfinite(array)):
        raise MlpxValueError("centers holds NaN or infinite values; pass finite coordinates")
    if n_features is not None and n_features != array.shape[1]:
        raise MlpxValueError(
            f"n_features={n_features!r} does not match centers of shape {array.shape}; "
            f"leave n_features out or pass n_features={array.shape[1]}"
        )
    return array


def _blob_stds(cluster_std: Any, n_centers: int) -> np.ndarray:
    """One standard deviation per center; shape (n_centers,)."""
    if _is_real(cluster_std):
        return np.full(n_centers, _check_nonnegative(cluster_std, "cluster_std"))
    try:
        stds = np.asarray(to_numpy(cluster_std), dtype=np.float64)
    except (TypeError, ValueError):
        raise MlpxTypeError(
            f"cluster_std={cluster_std!r} must be a number or one number per center"
        ) from None
    if stds.shape != (n_centers,):
        raise MlpxValueError(
            f"cluster_std has shape {stds.shape} but there are {n_centers} centers; pass one "
            f"number, or an array of shape ({n_centers},)"
        )
    if not np.all(np.isfinite(stds)) or np.any(stds < 0):
        raise MlpxValueError("cluster_std must hold finite numbers >= 0")
    return stds


def make_xor(
    n_samples: int = 200,
    noise: float = 0.1,
    seed: Seed = None,
    *,
    backend: Any = "numpy",
    dtype: Any = "float32",
) -> tuple[Array, Array]:
    """The XOR problem: Gaussian clouds around the four corners ``(+-1, +-1)``.

    The points are split as evenly as possible over the corners ``(-1, -1)``, ``(-1, 1)``,
    ``(1, -1)``, ``(1, 1)`` (in that order) and get the label of their corner: 1 when the
    corner's two coordinates have different signs, 0 when the same (XOR of the signs).
    With ``noise=0`` and ``n_samples=4`` this is the XOR truth table; with large noise some
    points land in a neighbouring quadrant but keep their corner's label.

    Parameters
    ----------
    n_samples : int, default 200
        Total number of points, >= 1.
    noise : float, default 0.1
        Standard deviation of the Gaussian noise around each corner, >= 0.
    seed : int, numpy.random.Generator or None
    backend : str, namespace or Backend, default "numpy"
    dtype : {"float32", "float64"}, default "float32"

    Returns
    -------
    X : array of shape (n_samples, 2)
    y : array of shape (n_samples,), int64 labels in {0, 1}
    """
    n_samples = _check_int(n_samples, "n_samples", minimum=1)
    noise = _check_nonnegative(noise, "noise")
    rng = _rng(seed)
    resolved, dtype = _resolve(backend, dtype)
    corners = np.array([[-1.0, -1.0], [-1.0, 1.0], [1.0, -1.0], [1.0, 1.0]])
    counts = _split_counts(n_samples, 4)
    X = np.repeat(corners, counts, axis=0)
    X += rng.normal(0.0, noise, size=X.shape)
    y = np.repeat(np.array([0, 1, 1, 0], dtype=np.int64), counts)
    return _finish(X, y, rng, backend=resolved, dtype=dtype)


def make_spirals(
    n_samples: int = 500,
    n_classes: int = 2,
    noise: float = 0.2,
    seed: Seed = None,
    *,
    backend: Any = "numpy",
    dtype: Any = "float32",
) -> tuple[Array, Array]:
    """Interleaved spiral arms, one per class (the classic CS231n spiral).

    Arm ``k`` has radius ``r`` evenly spaced in ``[0, 1]`` and angle
    ``t = linspace(4k, 4(k + 1)) + noise * N(0, 1)``; its points are
    ``(r sin t, r cos t)``.

    Parameters
    ----------
    n_samples : int, default 500
        Total number of points, >= 1, split as evenly as possible over the arms.
    n_classes : int, default 2
        Number of arms (classes), >= 2.
    noise : float, default 0.2
        Standard deviation of the Gaussian noise on the angle (radians), >= 0.
    seed : int, numpy.random.Generator or None
    backend : str, namespace or Backend, default "numpy"
    dtype : {"float32", "float64"}, default "float32"

    Returns
    -------
    X : array of shape (n_samples, 2)
    y : array of shape (n_samples,), int64 labels in ``0 .. n_classes - 1``
    """
    n_samples = _check_int(n_samples, "n_samples", minimum=1)
    n_classes = _check_int(n_classes, "n_classes", minimum=2, hint=" (one spiral arm each)")
    noise = _check_nonnegative(noise, "noise")
    rng = _rng(seed)
    resolved, dtype = _resolve(backend, dtype)
    counts = _split_counts(n_samples, n_classes)
    arms = [_spiral_arm(k, count, noise, rng) for k, count in enumerate(counts)]
    return _finish(np.vstack(arms), _labels(counts), rng, backend=resolved, dtype=dtype)


def _spiral_arm(k: int, n_points: int, noise: float, rng: np.random.Generator) -> np.ndarray:
    """Arm ``k`` of the spiral; shape (n_points, 2)."""
    radius = np.linspace(0.0, 1.0, n_points)
    angle = np.linspace(4.0 * k, 4.0 * (k + 1), n_points) + noise * rng.standard_normal(n_points)
    return np.column_stack([radius * np.sin(angle), radius * np.cos(angle)])


def make_red_blue(
    n_samples: int = 100,
    seed: Seed = None,
    *,
    separable: bool = False,
    backend: Any = "numpy",
    dtype: Any = "float32",
) -> tuple[Array, Array]:
    """The red/blue points of "Deep Learning From Scratch" (tutorials 000/001).

    By default (the multi-layer perceptron chapter) no line separates the classes: red
    points in two clusters around ``(0, 0)`` and ``(1, 1)``, blue points around ``(0, 1)``
    and ``(1, 0)``, each cluster Gaussian with standard deviation 0.2 (25 points per
    cluster for the tutorial's 100). With ``separable=True`` (the perceptron chapter) red
    points come from ``N((-2, -2), I)`` and blue from ``N((2, 2), I)``.

    Labels are 0 for red and 1 for blue. (The tutorial feeds blue first, so its one-hot
    column 0 is blue; use ``1 - y`` to reproduce that column order.)

    Parameters
    ----------
    n_samples : int, default 100
        Total number of points, >= 1, split as evenly as possible over the clusters.
    seed : int, numpy.random.Generator or None
    separable : bool, default False
        Draw the perceptron chapter's linearly separable clouds instead.
    backend : str, namespace or Backend, default "numpy"
    dtype : {"float32", "float64"}, default "float32"

    Returns
    -------
    X : array of shape (n_samples, 2)
    y : array of shape (n_samples,), int64 labels, 0 red and 1 blue
    """
    n_samples = _check_int(n_samples, "n_samples", minimum=1)
    if not isinstance(separable, bool):
        raise MlpxTypeError(f"separable={separable!r} must be True or False")
    rng = _rng(seed)
    resolved, dtype = _resolve(backend, dtype)
    if separable:
        centers, std = np.array([[-2.0, -2.0], [2.0, 2.0]]), 1.0
        cluster_labels = np.array([0, 1], dtype=np.int64)
    else:
        centers, std = np.array([[0.0, 0.0], [1.0, 1.0], [0.0, 1.0], [1.0, 0.0]]), 0.2
        cluster_labels = np.array([0, 0, 1, 1], dtype=np.int64)
    counts = _split_counts(n_samples, centers.shape[0])
    X = np.repeat(centers, counts, axis=0) + std * rng.standard_normal((n_samples, 2))
    y = np.repeat(cluster_labels, counts)
    return _finish(X, y, rng, backend=resolved, dtype=dtype)


# --------------------------------------------------------------------------- real data


def load_digits(*, backend: Any = "numpy", dtype: Any = "float32", return_X_y: bool = True) -> Any:
    """The 8x8 handwritten digits bundled with scikit-learn (1797 images, no download).

    Parameters
    ----------
    backend : str, namespace or Backend, default "numpy"
    dtype : {"float32", "float64"}, default "float32"
        Dtype of ``X``; values are the raw pixel intensities 0 .. 16 (not scaled).
    return_X_y : bool, default True
        Return ``(X, y)``; when False return a ``sklearn.utils.Bunch`` with ``data``,
        ``target``, ``images`` (shape (1797, 8, 8), on the backend), ``target_names``,
        ``feature_names`` and ``DESCR``.

    Returns
    -------
    X : array of shape (1797, 64)
    y : array of shape (1797,), int64 labels in ``0 .. 9``

    Raises
    ------
    ImportError
        When scikit-learn is not installed (``pip install scikit-learn``).
    """
    try:
        from sklearn import datasets as sk_datasets
        from sklearn.utils import Bunch
    except ImportError as exc:
        raise ImportError(
            "load_digits reads the digits bundled with scikit-learn, which is not installed; "
            "install it with: pip install scikit-learn"
        ) from exc
    resolved, dtype = _resolve(backend, dtype)
    digits = sk_datasets.load_digits()
    host_dtype = _host_dtype(dtype, xp=resolved.xp)
    X = from_host(digits.data.astype(host_dtype), backend=resolved, dtype=dtype)
    y = from_host(digits.target.astype(np.int64), backend=resolved, dtype=resolved.xp.int64)
    if return_X_y:
        return X, y
    images = from_host(digits.images.astype(host_dtype), backend=resolved, dtype=dtype)
    return Bunch(
        data=X,
        target=y,
        images=images,
        target_names=digits.target_names,
        feature_names=digits.feature_names,
        DESCR=digits.DESCR,
    )


# --------------------------------------------------------------------------- split


def train_test_split(
    X: Array,
    y: Array,
    test_size: float = 0.2,
    seed: Seed = None,
    shuffle: bool = True,
    stratify: bool = False,
) -> tuple[Array, Array, Array, Array]:
    """Split ``X`` and ``y`` into train and test rows, on their own backend.

    The row order comes from a host ``numpy.random.Generator``; the indices are moved to
    the arrays' device once and applied with ``xp.take``, so NumPy in gives NumPy out,
    torch in gives torch out, and the same seed picks the same rows on every backend.

    Parameters
    ----------
    X : array of shape (n_samples, ...)
    y : array of shape (n_samples,) or (n_samples, n_outputs)
        Lists and NumPy arrays are moved to ``X``'s backend.
    test_size : float in (0, 1) or int, default 0.2
        Fraction of rows (rounded up, like scikit-learn) or number of rows in the test set.
        Both sets must end up with at least one row.
    seed : int, numpy.random.Generator or None
    shuffle : bool, default True
        When False the last ``n_test`` rows are the test set.
    stratify : bool, default False
        Keep the class proportions of ``y`` (1-D labels) in both sets; needs ``shuffle``.

    Returns
    -------
    X_train : array of shape (n_train, ...)
    X_test : array of shape (n_test, ...)
    y_train : array of shape (n_train, ...)
    y_test : array of shape (n_test, ...)
    """
    resolved = backend_of(X)
    X = as_backend_array(X, backend=resolved, name="X")
    y = as_backend_array(y, backend=resolved, name="y")
    n_samples = _check_paired(X, y)
    n_test = _n_test(test_size, n_samples)
    if not isinstance(shuffle, bool) or not isinstance(stratify, bool):
        raise MlpxTypeError(f"shuffle={shuffle!r} and stratify={stratify!r} must be True or False")
    rng = _rng(seed)
    if stratify:
        if not shuffle:
            raise MlpxValueError(
                "stratify=True needs shuffle=True (a stratified split draws rows per class)"
            )
        train_idx, test_idx = _stratified_indices(to_numpy(y), n_test, rng)
    elif shuffle:
        order = rng.permutation(n_samples)
        test_idx, train_idx = order[:n_test], order[n_test:]
    else:
        n_train = n_samples - n_test
        train_idx, test_idx = np.arange(n_train), np.arange(n_train, n_samples)
    train = from_host(train_idx.astype(np.int64), backend=resolved, dtype=resolved.xp.int64)
    test = from_host(test_idx.astype(np.int64), backend=resolved, dtype=resolved.xp.int64)
    xp = resolved.xp
    return (
        xp.take(X, train, axis=0),
        xp.take(X, test, axis=0),
        xp.take(y, train, axis=0),
        xp.take(y, test, axis=0),
    )


def _check_paired(X: Array, y: Array) -> int:
    """The number of rows shared by ``X`` and ``y``."""
    if X.ndim < 1 or y.ndim < 1:
        raise MlpxValueError(
            f"X and y must have a sample axis, got X.shape={tuple(X.shape)} and "
            f"y.shape={tuple(y.shape)}"
        )
    if X.shape[0] != y.shape[0]:
        raise MlpxValueError(
            f"X has {X.shape[0]} rows but y has {y.shape[0]}; pass one label per row of X"
        )
    if X.shape[0] < 2:
        raise MlpxValueError(f"X has {X.shape[0]} rows; a train/test split needs at least 2")
    return int(X.shape[0])


def _n_test(test_size: Any, n_samples: int) -> int:
    """Rows in the test set: ``ceil(test_size * n)`` for a fraction, the count for an int."""
    fix = f"pass a fraction in (0, 1) such as 0.2, or an int count in [1, {n_samples - 1}]"
    if _is_int(test_size):
        n_test = int(test_size)
    elif _is_real(test_size):
        if not 0.0 < test_size < 1.0:
            raise MlpxValueError(f"test_size={test_size!r} is out of range; {fix}")
        n_test = math.ceil(test_size * n_samples)
    else:
        raise MlpxTypeError(f"test_size={test_size!r} must be a number; {fix}")
    if not 1 <= n_test <= n_samples - 1:
        raise MlpxValueError(
            f"test_size={test_size!r} gives {n_test} test rows out of {n_samples}, leaving an "
            f"empty set; {fix}"
        )
    return n_test


def _stratified_indices(
    labels: np.ndarray, n_test: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Train and test row indices that keep each class's share of ``labels``.

    Parameters
    ----------
    labels : ndarray of shape (n_samples,)
        Host copy of the class labels.
    """
    if labels.ndim != 1:
        raise MlpxValueError(
            f"stratify=True needs 1-D class labels, got y of shape {labels.shape}; pass the "
            "label vector, not one-hot targets"
        )
    classes, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    n_samples, n_classes = labels.shape[0], classes.shape[0]
    if np.min(counts) < 2:
        rare = classes[np.argmin(counts)].item()
        raise MlpxValueError(
            f"stratify=True needs at least 2 rows per class, but class {rare!r} has "
            f"{int(np.min(counts))}; use stratify=False or collect more data"
        )
    if not n_classes <= n_test <= n_samples - n_classes:
        raise MlpxValueError(
            f"stratify=True with {n_classes} classes needs at least {n_classes} rows in each "
            f"set, but the test set would have {n_test} of {n_samples}; change test_size"
        )
    test_counts = _largest_remainder(counts, n_test)
    test_parts, train_parts = [], []
    for k in range(n_classes):
        rows = rng.permutation(np.flatnonzero(inverse == k))
        test_parts.append(rows[: test_counts[k]])
        train_parts.append(rows[test_counts[k] :])
    return rng.permutation(np.concatenate(train_parts)), rng.permutation(np.concatenate(test_parts))


def _largest_remainder(counts: np.ndarray, total: int) -> np.ndarray:
    """Integer shares of ``total`` proportional to ``counts`` that sum to ``total``.

    Each class gets at least one row in each set when the sizes allow it.
    """
    quota = counts * (total / counts.sum())
    shares = np.clip(np.floor(quota).astype(np.int64), 1, counts - 1)
    while (missing := total - int(shares.sum())) != 0:
        step = 1 if missing > 0 else -1
        room = shares < counts - 1 if step > 0 else shares > 1
        gap = step * (quota - shares)
        shares[int(np.argmax(np.where(room, gap, -np.inf)))] += step
    return shares


# --------------------------------------------------------------------------- scaling


class StandardScaler:
    """Standardise features to zero mean and unit variance, on any backend.

    ``transform(X) = (X - mean_) / scale_`` with the population standard deviation
    (``ddof=0``). Columns that are constant in the fitted data get ``scale_ = 1`` (as in
    scikit-learn), so they map to ``X - mean_`` instead of dividing by zero.

    Attributes
    ----------
    mean_ : array of shape (n_features,)
        Per-feature mean of the fitted data, on its backend.
    scale_ : array of shape (n_features,)
        Per-feature standard deviation (1 for constant features), on its backend.
    n_features_in_ : int
        Number of features seen in ``fit``.
    """

    def __init__(self) -> None:
        self.mean_: Array | None = None
        self.scale_: Array | None = None
        self.n_features_in_: int | None = None
        self._backend: Backend | None = None

    def fit(self, X: Array) -> StandardScaler:
        """Learn ``mean_`` and ``scale_`` from ``X`` of shape (n_samples, n_features)."""
        resolved = backend_of(X)
        X = _as_float_matrix(X, backend=resolved)
        if X.shape[0] < 1:
            raise MlpxValueError("X has 0 rows; StandardScaler.fit needs at least one sample")
        xp = resolved.xp
        mean = xp.mean(X, axis=0)
        scale = xp.sqrt(xp.var(X, axis=0))
        self.mean_ = mean
        self.scale_ = _unit_scale_for_constants(X, scale, xp=xp)
        self.n_features_in_ = int(X.shape[1])
        self._backend = resolved
        return self

    def transform(self, X: Array) -> Array:
        """Return ``(X - mean_) / scale_``; same shape and backend as ``X``."""
        X, mean, scale = self._prepare(X, "transform")
        return (X - mean) / scale

    def fit_transform(self, X: Array) -> Array:
        """``fit(X)`` then ``transform(X)``."""
        return self.fit(X).transform(X)

    def inverse_transform(self, X: Array) -> Array:
        """Undo :meth:`transform`: ``X * scale_ + mean_``."""
        X, mean, scale = self._prepare(X, "inverse_transform")
        return X * scale + mean

    def _prepare(self, X: Array, method: str) -> tuple[Array, Array, Array]:
        """Check ``X`` against the fitted state; return X, mean and scale in X's dtype."""
        if self._backend is None or self.mean_ is None or self.scale_ is None:
            raise MlpxValueError(
                f"this StandardScaler is not fitted yet; call fit(X) before {method}(X)"
            )
        X = _as_float_matrix(X, backend=self._backend)
        if X.shape[1] != self.n_features_in_:
            raise MlpxValueError(
                f"X has {X.shape[1]} features but the scaler was fitted on "
                f"{self.n_features_in_}; pass X with {self.n_features_in_} columns"
            )
        xp = self._backend.xp
        return X, xp.astype(self.mean_, X.dtype), xp.astype(self.scale_, X.dtype)

    def __repr__(self) -> str:
        return "StandardScaler()"


def _as_float_matrix(X: Array, *, backend: Backend) -> Array:
    """``X`` as a 2-D real floating array of ``backend`` (integers become float64)."""
    X = as_backend_array(X, backend=backend, name="X")
    xp = backend.xp
    if X.ndim != 2:
        raise MlpxValueError(
            f"X must be 2-D of shape (n_samples, n_features), got shape {tuple(X.shape)}; "
            "reshape a single feature with X[:, None]"
        )
    if xp.isdtype(X.dtype, "real floating"):
        return X
    if xp.isdtype(X.dtype, ("integral", "bool")):
        return xp.astype(X, xp.float64)
    raise MlpxTypeError(f"X must hold real numbers, got dtype {X.dtype}")


def _unit_scale_for_constants(X: Array, scale: Array, *, xp: ModuleType) -> Array:
    """``scale`` with 1 for columns whose values are all equal (or whose std underflows)."""
    constant = (xp.max(X, axis=0) == xp.min(X, axis=0)) | (scale == 0)
    one = xp.ones(scale.shape, dtype=scale.dtype, device=array_device(scale))
    return xp.where(constant, one, scale)


# --------------------------------------------------------------------------- labels


def one_hot(y: Array, n_classes: int | None = None, *, dtype: Any = None) -> Array:
    """One-hot encode integer labels on their own backend.

    Parameters
    ----------
    y : array of shape (n_samples,)
        Integer class labels in ``[0, n_classes)``; lists and NumPy arrays give NumPy.
    n_classes : int, optional
        Number of classes (columns); default ``max(y) + 1``.
    dtype : {"float32", "float64"}, optional
        Dtype of the result; default float32.

    Returns
    -------
    array of shape (n_samples, n_classes)
        ``1`` in column ``y[i]`` of row ``i``, ``0`` elsewhere, on ``y``'s backend and device.
    """
    resolved = backend_of(y)
    xp = resolved.xp
    y = as_backend_array(y, backend=resolved, name="y")
    out_dtype = resolve_dtype("float32" if dtype is None else dtype, xp=xp)
    if y.ndim != 1 or not xp.isdtype(y.dtype, "integral"):
        raise MlpxValueError(
            f"y must be a 1-D array of integer class labels, got shape {tuple(y.shape)} and "
            f"dtype {y.dtype}; convert labels with e.g. y.astype(int)"
        )
    n_classes = _check_n_classes(y, n_classes, xp=xp)
    classes = xp.arange(n_classes, dtype=y.dtype, device=array_device(y))
    return xp.astype(y[:, None] == classes[None, :], out_dtype)


def _check_n_classes(y: Array, n_classes: int | None, *, xp: ModuleType) -> int:
    """Validate the labels against ``n_classes`` (inferred as ``max(y) + 1`` when None)."""
    if n_classes is not None:
        n_classes = _check_int(n_classes, "n_classes", minimum=1)
    if y.shape[0] == 0:
        if n_classes is None:
            raise MlpxValueError("y is empty; pass n_classes to one-hot encode no labels")
        return n_classes
    low, high = int(xp.min(y)), int(xp.max(y))
    if low < 0:
        raise MlpxValueError(f"y holds the label {low}; labels must be in [0, n_classes)")
    if n_classes is None:
        return high + 1
    if high >= n_classes:
        raise MlpxValueError(
            f"y holds the label {high} but n_classes={n_classes}; labels must be in "
            f"[0, n_classes), so pass n_classes={high + 1} or more"
        )
    return n_classes
