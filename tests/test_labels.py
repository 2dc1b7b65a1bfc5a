"""Labels and targets that must work, on every backend, from NumPy and from backend arrays.

Sigmoid outputs take any two labels (0/1, bools, floats, -1/+1, strings) as shape (n,) or
(n, 1); softmax outputs take class indices, one-hot rows or any labels, one per unit;
regression takes (n,) or (n, n_outputs). ``classes_`` records the labels, ``predict`` gives
them back (on the model's backend for numbers, as NumPy for strings) and ``evaluate``
returns Python floats.
"""

from __future__ import annotations

import array_api_compat
import numpy as np
import pytest

import mlpx
from mlpx import MLP

RNG = np.random.default_rng(0)


def _blobs(centres, per_class: int = 8, spread: float = 0.3):
    """Well-separated clusters: (X, class index per row), classes interleaved."""
    centres = np.asarray(centres, dtype=np.float64)
    index = np.tile(np.arange(len(centres)), per_class)
    X = centres[index] + spread * RNG.normal(size=(index.size, centres.shape[1]))
    return X, index


X_BIN, I_BIN = _blobs([(-1.5, -1.5), (1.5, 1.5)])
X_TRI, I_TRI = _blobs([(2.0, 0.0), (-1.0, 1.7), (-1.0, -1.7)])
X_REG = RNG.normal(size=(16, 2))
Y_REG = np.c_[X_REG @ np.array([1.0, -0.5]), X_REG @ np.array([0.3, 0.8])]


def with_sources(cases):
    """One ``pytest.param`` per case and source; string labels exist only in NumPy."""
    return [pytest.param(*case[1:-1], source, id=f"{case[0]}-{source}")
            for case in cases
            for source in (("numpy",) if case[-1] else ("numpy", "native"))]


def as_source(array, backend, source: str):
    if source == "numpy":
        return array
    return backend.xp.asarray(np.asarray(array), device=backend.device)


def assert_on_backend(array, backend) -> None:
    assert array_api_compat.array_namespace(array) is backend.xp, (
        f"{type(array).__module__} array, expected {backend.name}"
    )
    assert array_api_compat.device(array) == backend.device


def assert_labels(predicted, expected, backend) -> None:
    """Numeric labels come back on the backend, string labels as a NumPy string array."""
    expected = np.asarray(expected)
    if expected.dtype.kind == "U":
        assert isinstance(predicted, np.ndarray) and predicted.dtype.kind == "U"
    else:
        assert_on_backend(predicted, backend)
    assert tuple(predicted.shape) == expected.shape
    assert np.array_equal(mlpx.to_numpy(predicted), expected), (
        f"predicted {mlpx.to_numpy(predicted)}, labels {expected}"
    )


def assert_classifier_metrics(metrics) -> None:
    assert set(metrics) == {"loss", "accuracy"}
    assert all(type(value) is float for value in metrics.values())
    assert np.isfinite(metrics["loss"]) and 0.0 <= metrics["accuracy"] <= 1.0


def fitted(layer_sizes, activations, backend, X, y, **fit_kwargs) -> MLP:
    model = MLP(layer_sizes, activations, backend=backend, seed=0)
    kwargs = {"epochs": 60, "batch_size": None, "learning_rate": 0.1, **fit_kwargs}
    model.fit(X, y, **kwargs)
    return model


# --- one sigmoid unit: any two labels ---------------------------------------------------------

BINARY_CASES = [
    # id, labels (from the class index 0/1), the classes_ learned, numpy_only
    ("int-0-1", I_BIN, [0, 1], False),
    ("int-0-1-column", I_BIN.reshape(-1, 1), [0, 1], False),
    ("bool", I_BIN.astype(bool), [False, True], False),
    ("float-0-1", I_BIN.astype(np.float64), [0, 1], False),
    ("float-0-1-column", I_BIN.astype(np.float64).reshape(-1, 1), [0, 1], False),
    ("minus-plus-one", np.where(I_BIN == 1, 1, -1), [-1, 1], False),
    ("minus-plus-one-column", np.where(I_BIN == 1, 1, -1).reshape(-1, 1), [-1, 1], False),
    ("int-3-7", np.where(I_BIN == 1, 7, 3), [3, 7], False),
    ("strings", np.array(["cat", "dog"])[I_BIN], ["cat", "dog"], True),
    ("strings-list", list(np.array(["cat", "dog"])[I_BIN]), ["cat", "dog"], True),
]


@pytest.mark.parametrize(("y", "classes", "source"), with_sources(BINARY_CASES))
def test_sigmoid_output_learns_two_labels(request, backend, y, classes, source):
    X, y = as_source(X_BIN, backend, source), as_source(y, backend, source)
    model = fitted([2, 4, 1], ["tanh", "sigmoid"], backend, X, y)
    assert model.classes_.tolist() == classes
    expected = np.asarray(mlpx.to_numpy(y) if source == "native" else y).reshape(-1)
    assert_labels(model.predict(X), expected, backend)
    metrics = model.evaluate(X, y)
    assert_classifier_metrics(metrics)
    assert metrics["accuracy"] == 1.0
    loss, grads = model.loss_and_grads(X, y)
    assert np.isfinite(loss) and len(grads) == 4
    proba = model.predict_proba(X)
    assert_on_backend(proba, backend)
    assert tuple(proba.shape) == (X_BIN.shape[0], 1)


def test_bool_labels_predict_bools(backend):
    """Bool labels come back as bools, like scikit-learn's classes_ do."""
    model = fitted([2, 4, 1], ["tanh", "sigmoid"], backend, X_BIN, I_BIN.astype(bool))
    predicted = mlpx.to_numpy(model.predict(X_BIN))
    assert predicted.dtype == np.bool_, f"bool labels predicted as {predicted.dtype}"


# --- softmax: one unit per class -----------------------------------------------------------

SOFTMAX_CASES = [
    # id, labels, classes_, the labels predict returns, numpy_only
    ("int", I_TRI, [0, 1, 2], I_TRI, False),
    ("int-column", I_TRI.reshape(-1, 1), [0, 1, 2], I_TRI, False),
    ("float", I_TRI.astype(np.float64), [0, 1, 2], I_TRI, False),
    ("one-hot-float", np.eye(3)[I_TRI], [0, 1, 2], I_TRI, False),
    ("one-hot-int", np.eye(3, dtype=np.int64)[I_TRI], [0, 1, 2], I_TRI, False),
    ("strings", np.array(["cow", "ant", "bee"])[I_TRI], ["ant", "bee", "cow"],
     np.array(["cow", "ant", "bee"])[I_TRI], True),
]


@pytest.mark.parametrize(("y", "classes", "expected", "source"), with_sources(SOFTMAX_CASES))
def test_softmax_output_learns_its_classes(request, backend, y, classes, expected, source):
    X, y = as_source(X_TRI, backend, source), as_source(y, backend, source)
    model = fitted([2, 6, 3], ["tanh", "softmax"], backend, X, y)
    assert model.classes_.tolist() == classes
    assert_labels(model.predict(X), expected, backend)
    metrics = model.evaluate(X, y)
    assert_classifier_metrics(metrics)
    assert metrics["accuracy"] == 1.0
    proba = mlpx.to_numpy(model.predict_proba(X))
    assert proba.shape == (X_TRI.shape[0], 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)


# --- batches and subsets that miss a class ---------------------------------------------------

@pytest.mark.parametrize("labels", ["int", "strings"])
def test_batches_with_one_class_each(backend, labels):
    """Sorted data, no shuffling, batch_size 2: every batch holds a single class."""
    order = np.argsort(I_TRI, kind="stable")
    y = I_TRI[order] if labels == "int" else np.array(["a", "b", "c"])[I_TRI[order]]
    model = MLP([2, 6, 3], ["tanh", "softmax"], backend=backend, seed=0)
    history = model.fit(X_TRI[order], y, epochs=3, batch_size=2, shuffle=False)
    assert len(history.epoch) == 3 and np.isfinite(history["loss"][-1])
    assert model.classes_.tolist() == ([0, 1, 2] if labels == "int" else ["a", "b", "c"])


@pytest.mark.parametrize("source", ["numpy", "native"])
def test_integer_labels_missing_a_class(backend, source):
    """Class 2 never appears: integer labels are indices, so classes_ is still 0, 1, 2."""
    keep = I_TRI < 2
    X, y = as_source(X_TRI[keep], backend, source), as_source(I_TRI[keep], backend, source)
    model = MLP([2, 6, 3], ["tanh", "softmax"], backend=backend, seed=0)
    model.fit(X, y, epochs=3)
    assert model.classes_.tolist() == [0, 1, 2]
    assert_classifier_metrics(model.evaluate(X, y))


@pytest.mark.parametrize("source", ["numpy", "native"])
def test_sigmoid_labels_of_one_class(backend, source):
    """All-zero labels (one batch's worth) still train a 0/1 model."""
    y = as_source(np.zeros(X_BIN.shape[0], dtype=np.int64), backend, source)
    model = MLP([2, 4, 1], ["tanh", "sigmoid"], backend=backend, seed=0)
    model.fit(X_BIN, y, epochs=3)
    assert model.classes_.tolist() == [0, 1]
    assert_classifier_metrics(model.evaluate(X_BIN, y))


@pytest.mark.parametrize(("layer_sizes", "activations", "X", "y"), [
    ([2, 4, 1], ["tanh", "sigmoid"], X_BIN, np.array(["cat", "dog"])[I_BIN]),
    ([2, 6, 3], ["tanh", "softmax"], X_TRI, np.array(["ant", "bee", "cow"])[I_TRI]),
], ids=["sigmoid", "softmax"])
def test_evaluate_a_subset_with_one_string_label(backend, layer_sizes, activations, X, y):
    model = fitted(layer_sizes, activations, backend, X, y, epochs=5)
    only = y == y[0]
    assert_classifier_metrics(model.evaluate(X[only], y[only]))
    assert_labels(model.predict(X[only]), y[only], backend)


def test_warm_fit_keeps_string_classes(backend):
    """A second fit on a subset with one label keeps the classes the first fit learned."""
    y = np.array(["cat", "dog"])[I_BIN]
    model = fitted([2, 4, 1], ["tanh", "sigmoid"], backend, X_BIN, y, epochs=5)
    only = y == "dog"
    model.fit(X_BIN[only], y[only], epochs=2)
    assert model.classes_.tolist() == ["cat", "dog"]


# --- regression ---------------------------------------------------------------------------

@pytest.mark.parametrize("source", ["numpy", "native"])
@pytest.mark.parametrize(("n_outputs", "y", "shape"), [
    (1, Y_REG[:, 0], (16,)),
    (1, Y_REG[:, :1], (16,)),
    (2, Y_REG, (16, 2)),
], ids=["1d", "column", "two-outputs"])
def test_regression_targets(backend, n_outputs, y, shape, source):
    X, y = as_source(X_REG, backend, source), as_source(y, backend, source)
    model = MLP([2, 8, n_outputs], ["tanh", "identity"], backend=backend, seed=0)
    model.fit(X, y, epochs=5, batch_size=8)
    assert model.classes_ is None
    predicted = model.predict(X)
    assert_on_backend(predicted, backend)
    assert tuple(predicted.shape) == shape
    assert np.all(np.isfinite(mlpx.to_numpy(predicted)))
    metrics = model.evaluate(X, y)
    assert set(metrics) == {"loss", "mae"}
    assert all(type(value) is float and np.isfinite(value) for value in metrics.values())
    assert metrics["mae"] >= 0.0


def test_integer_regression_targets(backend):
    y = as_source(np.round(Y_REG[:, 0] * 3).astype(np.int64), backend, "native")
    model = MLP([2, 8, 1], ["tanh", "identity"], backend=backend, seed=0)
    model.fit(X_REG, y, epochs=3)
    assert set(model.evaluate(X_REG, y)) == {"loss", "mae"}
