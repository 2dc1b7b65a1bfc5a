"""Behaviour and parity battery for ``mlpx.sklearn`` (MLPClassifier / MLPRegressor).

scikit-learn's own ``parametrize_with_checks`` runs in ``test_sklearn_checks.py``; this file
checks what those checks cannot: that the numbers are scikit-learn's (the forward pass with
scikit-learn's weights, whole training trajectories from the same starting weights, test
scores on bundled data sets), the documented semantics (live ``coefs_``, fitted attributes,
stopping rules, partial_fit, warm_start, class and sample weights, input kinds, parameter
checks, verbose output), and the same fit on every backend.

Tests that take the ``backend`` fixture run on every backend; the others run in the numpy
session only (see ``conftest.py``).
"""

from __future__ import annotations

import contextlib
import pickle
import re
import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")

import array_api_compat  # noqa: E402
import sklearn  # noqa: E402
from helpers import assert_close  # noqa: E402
from numpy.testing import assert_allclose, assert_array_equal  # noqa: E402
from sklearn.base import clone  # noqa: E402
from sklearn.datasets import (  # noqa: E402
    load_diabetes,
    load_digits,
    make_classification,
    make_multilabel_classification,
    make_regression,
)
from sklearn.exceptions import (  # noqa: E402
    ConvergenceWarning,
    DataConversionWarning,
    NotFittedError,
)
from sklearn.metrics import accuracy_score, recall_score  # noqa: E402
from sklearn.model_selection import (  # noqa: E402
    GridSearchCV,
    cross_val_score,
    train_test_split,
)
from sklearn.neural_network import MLPClassifier as SkMLPClassifier  # noqa: E402
from sklearn.neural_network import MLPRegressor as SkMLPRegressor  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils import check_random_state  # noqa: E402

from mlpx._backend import to_numpy  # noqa: E402
from mlpx.sklearn import MLPClassifier, MLPRegressor  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

ACTIVATIONS = ("identity", "logistic", "tanh", "relu")


@pytest.fixture(autouse=True, scope="module")
def _one_blas_thread():
    """Two BLAS libraries (NumPy's and SciPy's OpenBLAS) with two threads each on a busy
    two-core machine make scikit-learn's L-BFGS 30x slower; the numbers do not change."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    with threadpoolctl.threadpool_limits(limits=1):
        yield


# --- data -------------------------------------------------------------------------------

def _classification(kind: str = "multiclass", n_samples: int = 90):
    """Standardised features and labels: 'binary', 'multiclass' (3 classes) or
    'multilabel' (an indicator matrix with 3 columns)."""
    if kind == "multilabel":
        X, y = make_multilabel_classification(n_samples, 6, n_classes=3, random_state=0)
    else:
        X, y = make_classification(n_samples, 6, n_informative=4,
                                   n_classes=2 if kind == "binary" else 3, random_state=0)
    return StandardScaler().fit_transform(X), y


def _regression(kind: str = "squared_error", n_samples: int = 90):
    """Standardised features; targets of unit scale ('squared_error'), two target columns
    ('two_outputs') or counts ('poisson')."""
    X, y = make_regression(n_samples, 6, n_informative=4, noise=5.0, random_state=0)
    X = StandardScaler().fit_transform(X)
    if kind == "poisson":
        rng = np.random.default_rng(0)
        return X, rng.poisson(np.exp(0.4 * X[:, 0] - 0.2 * X[:, 1])).astype(np.float64)
    y = y / y.std()
    if kind == "two_outputs":
        return X, np.c_[y, np.tanh(X[:, 1]) - 0.5 * y]
    return X, y


def _digits():
    X, y = load_digits(return_X_y=True)
    return train_test_split(X / 16.0, y, random_state=0)


def _diabetes():
    X, y = load_diabetes(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
    scaler = StandardScaler().fit(X_train)
    mean, std = y_train.mean(), y_train.std()
    return (scaler.transform(X_train), scaler.transform(X_test), (y_train - mean) / std,
            (y_test - mean) / std)


def _copy_weights(source, target) -> None:
    """Give ``target`` copies of ``source``'s weights (copies: scikit-learn trains in place,
    and an assigned NumPy array may be shared)."""
    target.coefs_ = [np.array(W, copy=True) for W in source.coefs_]
    target.intercepts_ = [np.array(b, copy=True) for b in source.intercepts_]


def _host_params(estimator) -> list[np.ndarray]:
    return [to_numpy(p) for p in [*estimator.coefs_, *estimator.intercepts_]]


def _assert_same_params(a, b, *, rtol=0.0, atol=0.0) -> None:
    for p, q in zip(_host_params(a), _host_params(b), strict=True):
        assert_allclose(p, q, rtol=rtol, atol=atol)


# --- 1. the forward pass with scikit-learn's weights --------------------------------------

def _forward_pair(sk_class, our_class, X, y, **params):
    """scikit-learn fitted briefly; ours fitted for one epoch, then given sklearn's weights."""
    sk = sk_class(**params, max_iter=30, random_state=0).fit(X, y)
    ours = our_class(**params, max_iter=1, random_state=1, dtype="float64").fit(X, y)
    return sk, ours


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("kind", ["binary", "multiclass", "multilabel"])
def test_classifier_forward_matches_sklearn(kind, activation):
    X, y = _classification(kind)
    sk, ours = _forward_pair(SkMLPClassifier, MLPClassifier, X, y,
                             hidden_layer_sizes=(5, 4), activation=activation)
    before = ours.predict_proba(X)
    assert not np.allclose(before, sk.predict_proba(X), rtol=1e-3)  # the copy matters
    _copy_weights(sk, ours)
    proba = ours.predict_proba(X)
    assert isinstance(proba, np.ndarray) and proba.dtype == np.float64
    assert_allclose(proba, sk.predict_proba(X), rtol=1e-6, atol=1e-9)
    assert_allclose(ours.predict_log_proba(X), sk.predict_log_proba(X), rtol=1e-6, atol=1e-9)
    assert_array_equal(ours.predict(X), sk.predict(X))
    assert ours.score(X, y) == sk.score(X, y)
    assert ours.out_activation_ == sk.out_activation_
    assert ours.n_layers_ == sk.n_layers_ == 4
    assert ours.n_outputs_ == sk.n_outputs_
    assert_array_equal(ours.classes_, sk.classes_)
    assert ours.n_features_in_ == sk.n_features_in_
    assert [W.shape for W in ours.coefs_] == [W.shape for W in sk.coefs_]
    assert [b.shape for b in ours.intercepts_] == [b.shape for b in sk.intercepts_]


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("kind", ["squared_error", "two_outputs", "poisson"])
def test_regressor_forward_matches_sklearn(kind, activation):
    X, y = _regression(kind)
    loss = "poisson" if kind == "poisson" else "squared_error"
    sk, ours = _forward_pair(SkMLPRegressor, MLPRegressor, X, y, loss=loss,
                             hidden_layer_sizes=(5, 4), activation=activation)
    assert not np.allclose(ours.predict(X), sk.predict(X), rtol=1e-3)
    _copy_weights(sk, ours)
    predicted = ours.predict(X)
    assert isinstance(predicted, np.ndarray) and predicted.dtype == np.float64
    assert predicted.shape == sk.predict(X).shape == y.shape
    assert_allclose(predicted, sk.predict(X), rtol=1e-6, atol=1e-9)
    assert ours.score(X, y) == pytest.approx(sk.score(X, y), rel=1e-9, abs=1e-12)
    assert ours.out_activation_ == sk.out_activation_
    assert ours.n_layers_ == sk.n_layers_
    assert ours.n_outputs_ == sk.n_outputs_


# --- 1b. whole training trajectories from scikit-learn's starting weights ----------------

# (id, estimator, data, parameters, weighted, rtol of the loss curve / of the weights).
# shuffle=False and a fixed batch size make both libraries see the same batches; momentum
# is 0 wherever the rate changes (PyTorch's momentum equals scikit-learn's only at a
# constant rate); Adam's epsilon is tiny because mlpx scales it with the bias correction.
_SGD = {"solver": "sgd", "momentum": 0.0}
_TRAJECTORIES = [
    ("sgd", "classifier", "multiclass", _SGD, False, 1e-12, 1e-10),
    ("sgd-nesterov", "classifier", "multiclass", {"solver": "sgd", "momentum": 0.9},
     False, 1e-12, 1e-10),
    ("sgd-momentum", "classifier", "multiclass",
     {"solver": "sgd", "momentum": 0.9, "nesterovs_momentum": False}, False, 1e-12, 1e-10),
    ("sgd-relu", "classifier", "multiclass", {**_SGD, "activation": "relu"}, False, 1e-12,
     1e-10),
    ("sgd-invscaling", "classifier", "multiclass",
     {**_SGD, "learning_rate": "invscaling", "power_t": 0.3}, False, 1e-12, 1e-10),
    ("sgd-adaptive", "classifier", "multiclass",
     {**_SGD, "learning_rate": "adaptive", "tol": 1e-2, "n_iter_no_change": 2,
      "max_iter": 60}, False, 1e-12, 1e-10),
    ("sgd-tol-stop", "classifier", "multiclass",
     {"solver": "sgd", "momentum": 0.9, "tol": 1e-2, "n_iter_no_change": 2,
      "max_iter": 100}, False, 1e-12, 1e-10),
    ("sgd-binary", "classifier", "binary", {"solver": "sgd", "momentum": 0.9}, False, 1e-12,
     1e-10),
    ("sgd-multilabel", "classifier", "multilabel", {"solver": "sgd", "momentum": 0.9}, False,
     1e-12, 1e-10),
    ("sgd-weighted", "classifier", "multiclass", {"solver": "sgd", "momentum": 0.9}, True,
     1e-12, 1e-10),
    ("adam", "classifier", "multiclass", {"solver": "adam", "epsilon": 1e-12}, False, 1e-7,
     1e-6),
    ("adam-tol-stop", "classifier", "multiclass",
     {"solver": "adam", "epsilon": 1e-12, "tol": 1e-2, "n_iter_no_change": 3,
      "max_iter": 100}, False, 1e-7, 1e-6),
    ("sgd-squared", "regressor", "squared_error", {"solver": "sgd", "momentum": 0.9}, False,
     1e-12, 1e-10),
    ("sgd-squared-weighted", "regressor", "squared_error",
     {"solver": "sgd", "momentum": 0.9}, True, 1e-12, 1e-10),
    ("sgd-poisson", "regressor", "poisson",
     {"solver": "sgd", "momentum": 0.9, "loss": "poisson", "learning_rate_init": 0.01},
     False, 1e-12, 1e-10),
    ("adam-regressor", "regressor", "squared_error", {"solver": "adam", "epsilon": 1e-12},
     False, 1e-7, 1e-6),
]


def _trajectory_pair(estimator: str, data: str, params: dict, weighted: bool):
    """Both libraries trained from scikit-learn's (1-epoch) weights with the same batches.

    Returns the two estimators after the second (warm-started) fit.
    """
    if estimator == "classifier":
        (X, y), sk_class, our_class = _classification(data), SkMLPClassifier, MLPClassifier
    else:
        (X, y), sk_class, our_class = _regression(data), SkMLPRegressor, MLPRegressor
    sample_weight = (np.random.default_rng(0).uniform(0.2, 2.0, X.shape[0]) if weighted
                     else None)
    params = {"hidden_layer_sizes": (6,), "activation": "tanh", "alpha": 0.1,
              "learning_rate_init": 0.05, "batch_size": 16, "shuffle": False,
              "max_iter": 15, **params}
    first = {**params, "max_iter": 1}
    sk = sk_class(**first, random_state=0).fit(X, y)
    ours = our_class(**first, random_state=0, dtype="float64").fit(X, y)
    _copy_weights(sk, ours)
    sk.set_params(warm_start=True, max_iter=params["max_iter"])
    ours.set_params(warm_start=True, max_iter=params["max_iter"])
    sk.fit(X, y, sample_weight=sample_weight)
    ours.fit(X, y, sample_weight=sample_weight)
    return sk, ours


@pytest.mark.parametrize(("estimator", "data", "params", "weighted", "loss_rtol", "rtol"),
                         [pytest.param(*case[1:], id=case[0]) for case in _TRAJECTORIES])
def test_training_trajectory_matches_sklearn(estimator, data, params, weighted, loss_rtol,
                                             rtol):
    sk, ours = _trajectory_pair(estimator, data, params, weighted)
    # The epochs, the samples seen and the stopping rules agree exactly ...
    assert ours.n_iter_ == sk.n_iter_
    assert ours.t_ == sk.t_
    assert len(ours.loss_curve_) == len(sk.loss_curve_) == 1 + sk.n_iter_
    # ... and so do every epoch's loss (penalty included) and the final weights.
    assert_allclose(ours.loss_curve_[1:], sk.loss_curve_[1:], rtol=loss_rtol)
    assert ours.loss_ == pytest.approx(sk.loss_, rel=loss_rtol)
    assert ours.best_loss_ == pytest.approx(sk.best_loss_, rel=loss_rtol)
    for ours_p, sk_p in zip(_host_params(ours), [*sk.coefs_, *sk.intercepts_], strict=True):
        assert_allclose(ours_p, sk_p, rtol=rtol, atol=rtol * np.abs(sk_p).max())
    if params["solver"] == "sgd":
        assert ours._learning_rate == pytest.approx(sk._optimizer.learning_rate, rel=1e-12)
    if params.get("learning_rate") == "adaptive":
        assert sk._optimizer.learning_rate < sk.learning_rate_init  # the rule fired
    if "tol" in params:
        assert ours.n_iter_ < params["max_iter"]  # stopped by the rule, as sklearn did


def test_two_output_regression_trains_as_sklearn():
    """The weights agree with scikit-learn's for 2-D y. The reported loss does not, by design:
    mlpx reports the objective whose gradient it follows, 0.5 * sum_k (y - p)^2 / n plus the
    penalty, where scikit-learn divides the data term by n_outputs but not its gradient."""
    sk, ours = _trajectory_pair("regressor", "two_outputs",
                                {"solver": "sgd", "momentum": 0.9}, False)
    _assert_same_params(ours, sk, rtol=1e-10, atol=1e-12)
    assert ours.loss_curve_[-1] > sk.loss_curve_[-1]


# --- 2. test scores on bundled data sets -------------------------------------------------

def _lbfgs_available():
    pytest.importorskip("mlpx.lbfgs", reason="mlpx.lbfgs (mlpx's own L-BFGS) is not there yet")


_DIGITS_SOLVERS = [
    pytest.param("adam", {}, id="adam"),
    pytest.param("sgd", {"learning_rate_init": 0.1}, id="sgd"),
    pytest.param("lbfgs", {}, id="lbfgs"),
]


@pytest.mark.parametrize(("solver", "extra"), _DIGITS_SOLVERS)
def test_digits_score_matches_sklearn(solver, extra):
    if solver == "lbfgs":
        _lbfgs_available()
    X_train, X_test, y_train, y_test = _digits()
    params = {"hidden_layer_sizes": (64,), "alpha": 1e-3, "solver": solver, "max_iter": 200,
              "random_state": 0, **extra}
    sk = SkMLPClassifier(**params).fit(X_train, y_train)
    ours = MLPClassifier(**params).fit(X_train, y_train)
    sk_score, our_score = sk.score(X_test, y_test), ours.score(X_test, y_test)
    assert isinstance(our_score, float)
    assert our_score >= sk_score - 0.02, (our_score, sk_score)
    if solver == "lbfgs":
        assert ours.loss_ <= sk.loss_ * 1.05 + 1e-3, (ours.loss_, sk.loss_)


_DIABETES_SOLVERS = [
    pytest.param("adam", {"learning_rate_init": 0.01}, id="adam"),
    pytest.param("sgd", {"learning_rate_init": 0.01}, id="sgd"),
    pytest.param("lbfgs", {}, id="lbfgs"),
]


@pytest.mark.parametrize(("solver", "extra"), _DIABETES_SOLVERS)
def test_diabetes_score_matches_sklearn(solver, extra):
    if solver == "lbfgs":
        _lbfgs_available()
    X_train, X_test, y_train, y_test = _diabetes()
    params = {"hidden_layer_sizes": (16,), "alpha": 10.0, "solver": solver, "max_iter": 200,
              "random_state": 0, **extra}
    sk = SkMLPRegressor(**params).fit(X_train, y_train)
    ours = MLPRegressor(**params).fit(X_train, y_train)
    sk_score, our_score = sk.score(X_test, y_test), ours.score(X_test, y_test)
    assert isinstance(our_score, float)
    assert sk_score > 0.3  # a problem worth comparing on
    assert our_score >= sk_score - 0.02, (our_score, sk_score)
    if solver == "lbfgs":
        assert ours.loss_ <= sk.loss_ * 1.05 + 1e-3, (ours.loss_, sk.loss_)


# --- 3. coefs_ and intercepts_ are the model's live state ---------------------------------

def _relu_softmax_forward(X, coefs, intercepts):
    """The forward pass of a one-hidden-layer ReLU / softmax network, by hand."""
    hidden = np.maximum(X @ coefs[0] + intercepts[0], 0.0)
    logits = hidden @ coefs[1] + intercepts[1]
    logits -= logits.max(axis=1, keepdims=True)
    e = np.exp(logits)
    return e / e.sum(axis=1, keepdims=True)


def _fitted_classifier(**params):
    X, y = _classification()
    params = {"hidden_layer_sizes": (5,), "max_iter": 5, "random_state": 0,
              "dtype": "float64", **params}
    return MLPClassifier(**params).fit(X, y), X, y


def test_fitted_weights_give_predict_proba():
    est, X, _ = _fitted_classifier()
    assert_allclose(est.predict_proba(X),
                    _relu_softmax_forward(X, est.coefs_, est.intercepts_), rtol=1e-12)


def test_assigning_a_coef_changes_predictions():
    est, X, _ = _fitted_classifier()
    before = est.predict_proba(X)
    new = np.random.default_rng(1).normal(size=est.coefs_[0].shape)
    est.coefs_[0] = new
    assert_array_equal(est.coefs_[0], new)
    expected = _relu_softmax_forward(X, [new, est.coefs_[1]], est.intercepts_)
    assert_allclose(est.predict_proba(X), expected, rtol=1e-12)
    assert not np.allclose(est.predict_proba(X), before)
    assert_array_equal(est.predict(X), est.classes_[np.argmax(expected, axis=1)])


def test_assigning_the_last_intercept_changes_predictions():
    est, X, _ = _fitted_classifier()
    new = np.array([5.0, -5.0, 0.0])
    est.intercepts_[-1] = new
    assert_array_equal(est.intercepts_[1], new)
    expected = _relu_softmax_forward(X, est.coefs_, [est.intercepts_[0], new])
    assert_allclose(est.predict_proba(X), expected, rtol=1e-12)
    assert np.mean(est.predict(X) == 0) > 0.5  # the bias moved the predictions to class 0


def test_assigning_whole_lists_changes_predictions():
    est, X, _ = _fitted_classifier()
    rng = np.random.default_rng(2)
    coefs = [rng.normal(size=W.shape) for W in est.coefs_]
    intercepts = [rng.normal(size=b.shape) for b in est.intercepts_]
    est.coefs_ = coefs
    est.intercepts_ = intercepts
    assert_allclose(est.predict_proba(X), _relu_softmax_forward(X, coefs, intercepts),
                    rtol=1e-12)


def test_in_place_write_into_a_coef_changes_predictions():
    est, X, _ = _fitted_classifier()
    est.coefs_[0][...] = 0.0
    proba = est.predict_proba(X)
    # Without input weights every sample gets the same output: softmax(relu(b1) W2 + b2).
    expected = _relu_softmax_forward(X[:1] * 0.0, est.coefs_, est.intercepts_)
    assert_allclose(proba, np.repeat(expected, X.shape[0], axis=0), rtol=1e-12)


def test_the_regressor_weights_are_live_too():
    X, y = _regression()
    est = MLPRegressor(hidden_layer_sizes=(4,), max_iter=3, random_state=0,
                       dtype="float64").fit(X, y)
    est.intercepts_[-1] = np.array([10.0])
    hidden = np.maximum(X @ est.coefs_[0] + est.intercepts_[0], 0.0)
    assert_allclose(est.predict(X), (hidden @ est.coefs_[1])[:, 0] + 10.0, rtol=1e-12)


@pytest.mark.parametrize(("attribute", "index", "bad", "message"), [
    ("coefs_", 0, np.zeros((6, 3)), r"\(6, 5\)"),
    ("coefs_", 1, np.full((5, 3), np.nan), "NaN"),
    ("intercepts_", -1, np.zeros(2), r"\(3,\)"),
    ("intercepts_", 0, np.array([0.0, np.inf, 0.0, 0.0, 0.0]), "infinite"),
])
def test_bad_weight_assignment_raises_and_changes_nothing(attribute, index, bad, message):
    est, X, _ = _fitted_classifier()
    before = est.predict_proba(X)
    with pytest.raises(ValueError, match=message):
        getattr(est, attribute)[index] = bad
    assert_array_equal(est.predict_proba(X), before)


@pytest.mark.parametrize("attribute", ["coefs_", "intercepts_"])
def test_assigning_the_wrong_number_of_arrays_raises(attribute):
    est, X, _ = _fitted_classifier()
    before = est.predict_proba(X)
    arrays = list(getattr(est, attribute))
    with pytest.raises(ValueError, match="2 arrays"):
        setattr(est, attribute, arrays[:1])
    with pytest.raises(ValueError, match="2 arrays"):
        setattr(est, attribute, [*arrays, arrays[-1]])
    assert_array_equal(est.predict_proba(X), before)


@pytest.mark.parametrize(("attribute", "index", "bad", "name"), [
    ("coefs_", 0, np.zeros((6, 3)), r"coefs_\[0\]"),
    ("intercepts_", -1, np.zeros(2), r"intercepts_\[(1|-1)\]"),
])
def test_bad_weight_assignment_names_the_attribute(attribute, index, bad, name):
    est, _, _ = _fitted_classifier()
    with pytest.raises(ValueError, match=name):
        getattr(est, attribute)[index] = bad


@pytest.mark.parametrize("estimator", [MLPClassifier(), MLPRegressor()])
def test_no_weights_before_fit(estimator):
    assert not hasattr(estimator, "coefs_")
    assert not hasattr(estimator, "intercepts_")
    with pytest.raises(AttributeError):
        estimator.coefs_  # noqa: B018
    with pytest.raises(NotFittedError):
        estimator.predict(np.zeros((2, 3)))


# --- 4. fitted attributes -----------------------------------------------------------------

@pytest.mark.parametrize("estimator", ["classifier", "regressor"])
def test_stochastic_fit_attributes(estimator):
    if estimator == "classifier":
        X, y = _classification()
        est = MLPClassifier(hidden_layer_sizes=(7, 3), max_iter=12, random_state=0).fit(X, y)
        n_outputs, out_activation = 3, "softmax"
    else:
        X, y = _regression()
        est = MLPRegressor(hidden_layer_sizes=(7, 3), max_iter=12, random_state=0).fit(X, y)
        n_outputs, out_activation = 1, "identity"
    assert est.n_iter_ == 12
    assert len(est.loss_curve_) == est.n_iter_
    assert all(isinstance(loss, float) for loss in est.loss_curve_)
    assert est.loss_ == est.loss_curve_[-1]
    assert est.best_loss_ == min(est.loss_curve_)
    assert est.t_ == est.n_iter_ * X.shape[0]
    assert est.validation_scores_ is None
    assert est.best_validation_score_ is None
    assert est.n_features_in_ == X.shape[1]
    assert est.n_layers_ == 4
    assert est.n_outputs_ == n_outputs
    assert est.out_activation_ == out_activation
    assert [W.shape for W in est.coefs_] == [(6, 7), (7, 3), (3, n_outputs)]
    assert [b.shape for b in est.intercepts_] == [(7,), (3,), (n_outputs,)]
    assert all(p.dtype == np.float32 for p in [*est.coefs_, *est.intercepts_])
    assert est.set_params(dtype="float64").fit(X, y).coefs_[0].dtype == np.float64


@pytest.mark.parametrize("estimator", ["classifier", "regressor"])
def test_early_stopping_restores_the_best_weights(estimator):
    if estimator == "classifier":
        (X, y), est_class = _classification(), MLPClassifier
    else:
        (X, y), est_class = _regression(), MLPRegressor
    params = {"hidden_layer_sizes": (16,), "learning_rate_init": 0.05, "batch_size": 16,
              "random_state": 0, "early_stopping": True, "validation_fraction": 0.2,
              "n_iter_no_change": 5, "max_iter": 200}
    est = est_class(**params).fit(X, y)
    assert est.n_iter_ < 200
    assert isinstance(est.validation_scores_, list)
    assert len(est.validation_scores_) == len(est.loss_curve_) == est.n_iter_
    assert est.best_validation_score_ == max(est.validation_scores_)
    assert est.best_loss_ is None
    best_epoch = int(np.argmax(est.validation_scores_))
    assert best_epoch < est.n_iter_ - 1  # the last weights are not the best ones
    # The held-out rows, as the estimator drew them (the same random_state, stratified for
    # a classifier): the restored model scores best_validation_score_ on them ...
    _, val_rows = train_test_split(np.arange(X.shape[0]), random_state=check_random_state(0),
                                   test_size=0.2,
                                   stratify=y if estimator == "classifier" else None)
    assert est.score(X[val_rows], y[val_rows]) == pytest.approx(est.best_validation_score_,
                                                                rel=1e-6)
    # ... and its weights are those of the best epoch: the same fit stopped right there.
    at_best = est_class(**{**params, "max_iter": best_epoch + 1}).fit(X, y)
    assert at_best.validation_scores_ == est.validation_scores_[:best_epoch + 1]
    _assert_same_params(est, at_best)


def test_lbfgs_fit_attributes():
    _lbfgs_available()
    X, y = _classification()
    est = MLPClassifier(hidden_layer_sizes=(5,), max_iter=3, random_state=0).fit(X, y)
    assert hasattr(est, "loss_curve_")
    est.set_params(solver="lbfgs", max_iter=50).fit(X, y)
    assert isinstance(est.n_iter_, int) and 1 <= est.n_iter_ <= 50
    assert isinstance(est.loss_, float) and np.isfinite(est.loss_)
    assert not hasattr(est, "loss_curve_")  # none, as in scikit-learn; not the adam fit's
    assert not hasattr(est, "best_loss_")
    assert est.score(X, y) > 0.8


def test_lbfgs_warns_when_max_iter_ends_the_fit(capsys):
    _lbfgs_available()
    X, y = _classification()
    est = MLPClassifier(hidden_layer_sizes=(5,), solver="lbfgs", max_iter=2, random_state=0,
                        verbose=True)
    with pytest.warns(ConvergenceWarning, match="lbfgs failed to converge"):
        est.fit(X, y)
    assert est.n_iter_ == 2
    assert "loss" in capsys.readouterr().out


# --- 5. stopping rules ----------------------------------------------------------------------

def _epochs_until_the_loss_rule_fires(loss_curve, tol, n_iter_no_change):
    """scikit-learn's training-loss rule replayed on a loss curve (None: it never fires)."""
    best, count = np.inf, 0
    for epoch, loss in enumerate(loss_curve, start=1):
        count = count + 1 if loss > best - tol else 0
        best = min(best, loss)
        if count > n_iter_no_change:
            return epoch
    return None


def test_tol_and_n_iter_no_change_stop_without_a_warning():
    X, y = _classification()
    est = MLPClassifier(hidden_layer_sizes=(8,), learning_rate_init=0.01, tol=1e-2,
                        n_iter_no_change=3, max_iter=500, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        est.fit(X, y)
    assert est.n_iter_ < 500
    assert _epochs_until_the_loss_rule_fires(est.loss_curve_, 1e-2, 3) == est.n_iter_


def test_n_iter_no_change_inf_runs_to_max_iter():
    X, y = _classification()
    est = MLPClassifier(hidden_layer_sizes=(8,), tol=10.0, n_iter_no_change=np.inf,
                        max_iter=15, random_state=0)
    with pytest.warns(ConvergenceWarning):
        est.fit(X, y)
    assert est.n_iter_ == 15


@pytest.mark.parametrize("est_class", [MLPClassifier, MLPRegressor])
def test_reaching_max_iter_warns(est_class):
    X, y = _classification() if est_class is MLPClassifier else _regression()
    est = est_class(hidden_layer_sizes=(4,), max_iter=3, random_state=0)
    with pytest.warns(ConvergenceWarning, match=r"Maximum iterations \(3\) reached"):
        est.fit(X, y)
    assert est.n_iter_ == 3


def test_adaptive_learning_rate_divides_by_5_and_stops_below_1e_6(capsys):
    X, y = _classification()
    est = MLPClassifier(hidden_layer_sizes=(8,), solver="sgd", learning_rate="adaptive",
                        learning_rate_init=0.01, tol=1.0, n_iter_no_change=1, max_iter=100,
                        random_state=0, verbose=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        est.fit(X, y)
    out = capsys.readouterr().out
    rates = [float(rate) for rate in re.findall(r"Setting learning rate to ([0-9.]+)", out)]
    # tol=1 makes every epoch after the first one "no improvement": each two such epochs
    # divide the rate by 5 until it is <= 1e-6 (0.01 / 5**6 = 6.4e-7), and then it stops.
    assert rates == pytest.approx([0.01 / 5**k for k in range(1, 7)], abs=1e-6)
    assert est._learning_rate == pytest.approx(0.01 / 5**6, rel=1e-12)
    assert est.n_iter_ == 1 + 2 * 7
    assert "did not improve more than tol" in out


def test_invscaling_learning_rate():
    X, y = _classification()
    est = MLPClassifier(hidden_layer_sizes=(8,), solver="sgd", learning_rate="invscaling",
                        learning_rate_init=0.1, power_t=0.4, max_iter=3, random_state=0)
    est.fit(X, y)
    assert est.t_ == 3 * X.shape[0]
    assert est._learning_rate == pytest.approx(0.1 / (est.t_ + 1) ** 0.4, rel=1e-12)
    est.set_params(learning_rate="constant").fit(X, y)
    assert est._learning_rate == 0.1


def test_batch_size_larger_than_the_data_is_clipped_with_a_warning():
    X, y = _classification()
    est = MLPClassifier(hidden_layer_sizes=(4,), batch_size=500, max_iter=2, random_state=0)
    with pytest.warns(UserWarning, match="clipped"):
        est.fit(X, y)
    assert est.model_.optimizer_state_["step"] == 2  # one full batch per epoch


@pytest.mark.parametrize("case", ["ints", "strings", "weighted", "multilabel",
                                  "multilabel-weighted", "floats"])
def test_early_stoppings_accuracy_is_scikit_learns(case):
    """The held-out score early stopping takes every epoch is accuracy_score's value."""
    from sklearn.metrics import accuracy_score

    from mlpx.sklearn import _subset_accuracy

    rng = np.random.default_rng(len(case))
    multilabel = case.startswith("multilabel")  # 0/1 indicator rows
    shape, n_labels = ((50, 3), 2) if multilabel else ((50,), 3)
    y_true, y_pred = rng.integers(0, n_labels, size=shape), rng.integers(0, n_labels, size=shape)
    if case == "strings":
        y_true, y_pred = np.array(list("abc"))[y_true], np.array(list("abc"))[y_pred]
    if case == "floats":
        y_true, y_pred = y_true.astype(float), y_pred.astype(float)
    weights = rng.random(50) if case.endswith("weighted") else None
    assert _subset_accuracy(y_true, y_pred, weights) == accuracy_score(y_true, y_pred,
                                                                       sample_weight=weights)


@pytest.mark.parametrize("case", ["one-output", "column", "two-outputs", "weighted",
                                  "float32", "constant-exact", "constant-missed", "ints"])
def test_early_stoppings_r2_is_scikit_learns(case):
    """The held-out R^2 early stopping takes every epoch is r2_score's value."""
    from sklearn.metrics import r2_score

    from mlpx.sklearn import _r2

    rng = np.random.default_rng(len(case))
    n_outputs = 2 if case in ("two-outputs", "weighted", "constant-exact",
                              "constant-missed") else 1
    y_true = rng.normal(size=(40, n_outputs))
    y_pred = (y_true + 0.3 * rng.normal(size=y_true.shape)).astype(np.float32)
    weights = rng.random(40) if case == "weighted" else None
    if case == "float32":
        y_true = y_true.astype(np.float32)
    if case.startswith("constant"):
        y_true[:, 1] = 2.5
        y_pred[:, 1] = 2.5 if case == "constant-exact" else 2.0
    if case == "ints":
        y_true = rng.integers(0, 9, size=(40, 1))
    if case in ("one-output", "ints"):
        y_true = y_true[:, 0]
    expected = r2_score(y_true, y_pred[:, 0] if y_true.ndim == 1 else y_pred,
                        sample_weight=weights)
    assert _r2(y_true, y_pred, weights) == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_early_stopping_refuses_a_validation_part_of_zero_weight():
    """Sample weights that are zero on every held-out sample are refused before training,
    and a fitted estimator keeps its weights."""
    X, y = _classification()
    params = {"hidden_layer_sizes": (4,), "early_stopping": True, "validation_fraction": 0.1,
              "max_iter": 3, "random_state": 0}
    _, val_rows = train_test_split(np.arange(X.shape[0]), random_state=check_random_state(0),
                                   test_size=0.1, stratify=y)
    weights = np.ones(X.shape[0])
    weights[val_rows] = 0.0
    est = MLPClassifier(**params).fit(X, y)
    before = [np.array(coef, copy=True) for coef in est.coefs_]
    with pytest.raises(ValueError, match="sample_weight is zero for every sample of the "
                                         "validation part"):
        est.fit(X, y, sample_weight=weights)
    for kept, coef in zip(before, est.coefs_):
        assert_array_equal(kept, coef)


def test_early_stopping_on_too_little_data_raises():
    X, y = _regression(n_samples=10)
    est = MLPRegressor(hidden_layer_sizes=(4,), early_stopping=True)
    with pytest.raises(ValueError, match="validation set is too small"):
        est.fit(X, y)


# --- 6. partial_fit -----------------------------------------------------------------------

def test_partial_fit_needs_classes_on_the_first_call():
    X, y = _classification()
    est = MLPClassifier(hidden_layer_sizes=(4,), random_state=0)
    with pytest.raises(ValueError, match="classes must be passed"):
        est.partial_fit(X, y)
    assert not hasattr(est, "classes_")


def test_partial_fit_with_classes_on_a_batch_missing_some():
    X, y = _classification()
    est = MLPClassifier(hidden_layer_sizes=(4,), random_state=0)
    first = y != 2
    est.partial_fit(X[first], y[first], classes=[0, 1, 2])
    assert_array_equal(est.classes_, [0, 1, 2])
    assert est.n_outputs_ == 3 and est.out_activation_ == "softmax"
    assert est.predict_proba(X).shape == (X.shape[0], 3)
    est.partial_fit(X, y)  # class 2 arrives later
    with pytest.raises(ValueError, match="classes"):
        est.partial_fit(X, np.where(y == 2, 7, y))
    with pytest.raises(ValueError, match="classes"):
        est.partial_fit(X, y, classes=[0, 1, 2, 3])


@pytest.mark.parametrize("labels", [
    pytest.param(np.array([3, 5, 9]), id="ints"),
    pytest.param(np.array([1.0, 2.0, 4.0]), id="floats"),
    pytest.param(np.array(["cat", "dog", "eel"]), id="strings"),
    pytest.param(np.array(["cat", "dog", "eel"], dtype=object), id="objects"),
])
def test_later_calls_refuse_labels_they_were_not_given(labels):
    """Every kind of label: a later call's unseen label is named in the error, and the
    estimator keeps its weights; known ones train on."""
    X, y = _classification()
    y = labels[y]
    est = MLPClassifier(hidden_layer_sizes=(4,), random_state=0)
    est.partial_fit(X, y, classes=labels)
    before = [w.copy() for w in est.coefs_]
    unseen = np.array(["fox"], dtype=object) if labels.dtype.kind in "UO" else labels[:1] + 100
    bad = y.astype(object) if labels.dtype.kind == "U" else y.copy()
    bad[0] = unseen[0]
    with pytest.raises(ValueError, match=r"`y` has classes not in `self.classes_`") as info:
        est.partial_fit(X, bad)
    assert str(unseen[0]) in str(info.value)
    for now, then in zip(est.coefs_, before):
        assert_array_equal(now, then)
    est.partial_fit(X, y)
    assert est.t_ == 2 * X.shape[0]


def test_later_calls_check_the_label_type_only_when_labels_are_not_known_numbers(
        monkeypatch):
    """Known numeric labels skip type_of_target on later calls (0.1-0.2 ms each); strings,
    unseen numbers, continuous values and a changed class_weight still get every check."""
    import mlpx.sklearn as mlpx_sklearn

    calls = []
    original = mlpx_sklearn.type_of_target

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(mlpx_sklearn, "type_of_target", counting)
    X, y = _classification()
    est = MLPClassifier(hidden_layer_sizes=(4,), random_state=0)
    est.partial_fit(X, y, classes=np.unique(y))
    assert len(calls) == 1
    est.partial_fit(X, y)
    est.partial_fit(X, y.astype(np.float32))  # the same numbers as floats
    assert len(calls) == 1
    with pytest.raises(ValueError, match="Unknown label type: 'continuous'"):
        est.partial_fit(X, y + 0.5)
    with pytest.raises(ValueError, match=r"`y` has classes not in `self.classes_`: \[7\]"):
        est.partial_fit(X, np.where(y == 0, 7, y))
    assert len(calls) == 3
    est.set_params(class_weight={0: 1.0, 9: 2.0})
    with pytest.raises(ValueError, match="9"):
        est.partial_fit(X, y)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_partial_fit_keeps_the_optimizer_state():
    X, y = _classification()
    n = X.shape[0]
    est = MLPClassifier(hidden_layer_sizes=(4,), batch_size=30, random_state=0)
    steps = []
    for call in range(1, 4):
        est.partial_fit(X, y, classes=np.unique(y))
        assert est.n_iter_ == 1
        assert est.t_ == call * n
        assert len(est.loss_curve_) == call
        steps.append(est.model_.optimizer_state_["step"])
    assert steps == [3, 6, 9]  # Adam's step count goes on: 3 batches a call


@pytest.mark.parametrize("est_class", [MLPClassifier, MLPRegressor])
def test_partial_fit_epochs_equal_one_fit(est_class):
    X, y = _classification() if est_class is MLPClassifier else _regression()
    params = {"hidden_layer_sizes": (8,), "batch_size": 16, "learning_rate_init": 0.01,
              "random_state": 0}
    whole = est_class(**params, max_iter=3, n_iter_no_change=np.inf).fit(X, y)
    stepwise = est_class(**params)
    kwargs = {"classes": np.unique(y)} if est_class is MLPClassifier else {}
    for _ in range(3):
        stepwise.partial_fit(X, y, **kwargs)
    assert stepwise.loss_curve_ == whole.loss_curve_
    assert stepwise.t_ == whole.t_
    _assert_same_params(stepwise, whole)


@pytest.mark.parametrize("est_class", [MLPClassifier, MLPRegressor])
def test_no_partial_fit_for_lbfgs(est_class):
    est = est_class(solver="lbfgs")
    assert not hasattr(est, "partial_fit")
    with pytest.raises(AttributeError, match="partial_fit"):
        est.partial_fit  # noqa: B018
    assert hasattr(est.set_params(solver="sgd"), "partial_fit")


@pytest.mark.parametrize("est_class", [MLPClassifier, MLPRegressor])
def test_partial_fit_refuses_early_stopping(est_class):
    X, y = _classification() if est_class is MLPClassifier else _regression()
    kwargs = {"classes": np.unique(y)} if est_class is MLPClassifier else {}
    est = est_class(hidden_layer_sizes=(4,), early_stopping=True)
    with pytest.raises(ValueError, match="early_stopping"):
        est.partial_fit(X, y, **kwargs)
    assert not hasattr(est, "model_")


# --- 7. warm_start --------------------------------------------------------------------------

def test_warm_start_continues_from_the_first_fit():
    X, y = _classification()
    params = {"hidden_layer_sizes": (8,), "max_iter": 5, "random_state": 0}
    est = MLPClassifier(**params, warm_start=True).fit(X, y)
    first_fit_first_loss = est.loss_curve_[0]
    est.fit(X, y)
    fresh = MLPClassifier(**params).fit(X, y)
    assert len(est.loss_curve_) == 10  # the curve goes on, as scikit-learn's does
    assert est.n_iter_ == 5
    assert est.loss_curve_[5] < first_fit_first_loss
    assert est.loss_curve_[5] < est.loss_curve_[0]
    assert not np.allclose(est.coefs_[0], fresh.coefs_[0])


def test_warm_start_epochs_equal_one_longer_fit():
    # Plain SGD has no optimizer state, and the shuffling generator lives in the model: a
    # 3-epoch fit then a warm 4-epoch fit is exactly a 7-epoch fit.
    X, y = _classification()
    params = {"hidden_layer_sizes": (8,), "solver": "sgd", "momentum": 0.0,
              "learning_rate_init": 0.05, "batch_size": 16, "random_state": 0,
              "n_iter_no_change": np.inf}
    long = MLPClassifier(**params, max_iter=7).fit(X, y)
    warm = MLPClassifier(**params, max_iter=3).fit(X, y)
    warm.set_params(warm_start=True, max_iter=4).fit(X, y)
    assert warm.loss_curve_ == long.loss_curve_
    assert warm.t_ == long.t_ == 7 * X.shape[0]
    _assert_same_params(warm, long)


def test_without_warm_start_a_refit_starts_over():
    X, y = _classification()
    est = MLPClassifier(hidden_layer_sizes=(8,), max_iter=4, random_state=0).fit(X, y)
    first = _host_params(est)
    est.fit(X, y)
    assert len(est.loss_curve_) == est.n_iter_ == 4
    for p, q in zip(_host_params(est), first):
        assert_array_equal(p, q)  # the same seed: the same fit


def test_warm_start_refuses_another_number_of_features():
    X, y = _classification()
    est = MLPClassifier(hidden_layer_sizes=(4,), max_iter=2, warm_start=True,
                        random_state=0).fit(X, y)
    before = est.predict_proba(X)
    with pytest.raises(ValueError, match="features"):
        est.fit(X[:, :4], y)
    assert est.n_features_in_ == X.shape[1]
    assert_array_equal(est.predict_proba(X), before)


def test_random_state():
    X, y = _classification()
    params = {"hidden_layer_sizes": (4,), "max_iter": 3}
    a = MLPClassifier(**params, random_state=np.random.RandomState(3)).fit(X, y)
    b = MLPClassifier(**params, random_state=np.random.RandomState(3)).fit(X, y)
    _assert_same_params(a, b)
    c = MLPClassifier(**params).fit(X, y)
    d = MLPClassifier(**params).fit(X, y)
    assert not np.array_equal(c.coefs_[0], d.coefs_[0])


def test_warm_start_refuses_new_classes():
    X, y = _classification()
    est = MLPClassifier(hidden_layer_sizes=(4,), max_iter=2, warm_start=True,
                        random_state=0).fit(X, y)
    with pytest.raises(ValueError, match="classes"):
        est.fit(X, np.where(y == 2, 3, y))


# --- 8. class_weight ------------------------------------------------------------------------

def test_balanced_class_weight_raises_minority_recall():
    X, y = make_classification(300, 6, n_informative=3, weights=[0.92, 0.08], flip_y=0.02,
                               class_sep=0.6, random_state=3)
    X = StandardScaler().fit_transform(X)
    params = {"hidden_layer_sizes": (8,), "max_iter": 60, "learning_rate_init": 0.01,
              "random_state": 0}
    plain = MLPClassifier(**params).fit(X, y)
    balanced = MLPClassifier(**params, class_weight="balanced").fit(X, y)
    plain_recall = recall_score(y, plain.predict(X), pos_label=1)
    balanced_recall = recall_score(y, balanced.predict(X), pos_label=1)
    assert balanced_recall > plain_recall + 0.1, (balanced_recall, plain_recall)


@pytest.mark.parametrize("labels", ["ints", "strings"])
def test_class_weight_dict_equals_sample_weight(labels):
    X, y = _classification()
    if labels == "strings":
        y = np.array(["ant", "bee", "cat"])[y]
    weights = dict(zip(np.unique(y), [2.0, 0.5, 1.0]))
    params = {"hidden_layer_sizes": (6,), "batch_size": 16, "max_iter": 8,
              "learning_rate_init": 0.01, "random_state": 0, "dtype": "float64"}
    by_class = MLPClassifier(**params, class_weight=weights).fit(X, y)
    by_sample = MLPClassifier(**params).fit(
        X, y, sample_weight=np.array([weights[label] for label in y]))
    unweighted = MLPClassifier(**params).fit(X, y)
    assert_allclose(by_class.predict_proba(X), by_sample.predict_proba(X), rtol=1e-6)
    assert not np.allclose(by_class.predict_proba(X), unweighted.predict_proba(X), rtol=1e-3)
    assert_array_equal(np.unique(by_class.predict(X)), np.unique(y))


def test_class_weight_times_sample_weight():
    X, y = _classification()
    sample_weight = np.random.default_rng(0).uniform(0.5, 1.5, X.shape[0])
    weights = {0: 3.0, 2: 0.5}  # class 1 weighs 1
    params = {"hidden_layer_sizes": (6,), "max_iter": 6, "random_state": 0,
              "dtype": "float64"}
    both = MLPClassifier(**params, class_weight=weights).fit(X, y, sample_weight=sample_weight)
    product = sample_weight * np.array([weights.get(label, 1.0) for label in y])
    only_samples = MLPClassifier(**params).fit(X, y, sample_weight=product)
    assert_allclose(both.predict_proba(X), only_samples.predict_proba(X), rtol=1e-6)


def test_class_weight_with_an_unknown_label_raises_before_fit():
    X, y = _classification()
    est = MLPClassifier(hidden_layer_sizes=(4,), class_weight={0: 1.0, 5: 2.0})
    with pytest.raises(ValueError, match="5"):
        est.fit(X, y)
    assert not hasattr(est, "model_")


def test_balanced_class_weight_on_string_labels():
    X, y = _classification("binary")
    y = np.where(y == 1, "spam", "ham")
    y[np.flatnonzero(y == "spam")[10:]] = "ham"  # 10 spam, the rest ham
    est = MLPClassifier(hidden_layer_sizes=(6,), max_iter=20, random_state=0,
                        class_weight="balanced").fit(X, y)
    assert_array_equal(est.classes_, ["ham", "spam"])
    assert set(est.predict(X)) <= {"ham", "spam"}


# --- 9. sample_weight -----------------------------------------------------------------------

@pytest.mark.parametrize("est_class", [MLPClassifier, MLPRegressor])
def test_zero_sample_weights_equal_removing_the_samples(est_class):
    X, y = _classification() if est_class is MLPClassifier else _regression()
    sample_weight = np.ones(X.shape[0])
    sample_weight[::4] = 0.0
    kept = sample_weight > 0
    params = {"hidden_layer_sizes": (6,), "batch_size": 16, "max_iter": 6,
              "learning_rate_init": 0.01, "random_state": 0, "dtype": "float64"}
    weighted = est_class(**params).fit(X, y, sample_weight=sample_weight)
    removed = est_class(**params).fit(X[kept], y[kept])
    _assert_same_params(weighted, removed, rtol=1e-10, atol=1e-12)
    output = "predict_proba" if est_class is MLPClassifier else "predict"
    assert_allclose(getattr(weighted, output)(X), getattr(removed, output)(X), rtol=1e-10)


@pytest.mark.parametrize("est_class", [MLPClassifier, MLPRegressor])
def test_integer_sample_weights_equal_repeated_rows_in_float32(est_class):
    X, y = _classification(n_samples=40) if est_class is MLPClassifier else _regression(
        n_samples=40)
    sample_weight = np.random.default_rng(0).integers(0, 4, X.shape[0])
    repeated = np.repeat(np.arange(X.shape[0]), sample_weight)
    # Full batches (sum of weights <= 200 = the 'auto' batch size): the same gradients.
    assert repeated.size <= 200
    params = {"hidden_layer_sizes": (6,), "max_iter": 10, "learning_rate_init": 0.01,
              "random_state": 0}
    weighted = est_class(**params).fit(X, y, sample_weight=sample_weight)
    rows = est_class(**params).fit(X[repeated], y[repeated])
    assert weighted.coefs_[0].dtype == np.float32
    assert_allclose(weighted.loss_curve_, rows.loss_curve_, rtol=1e-5)
    output = "predict_proba" if est_class is MLPClassifier else "predict"
    assert_allclose(getattr(weighted, output)(X), getattr(rows, output)(X), rtol=1e-5,
                    atol=1e-6)


@pytest.mark.parametrize(("sample_weight", "message"), [
    (-np.ones(90), "negative"),
    (np.ones(89), "shape"),
    (np.zeros(90), "zero"),
])
def test_bad_sample_weight_raises_before_fit(sample_weight, message):
    X, y = _classification()
    est = MLPClassifier(hidden_layer_sizes=(4,))
    with pytest.raises(ValueError, match=message):
        est.fit(X, y, sample_weight=sample_weight)
    assert not hasattr(est, "model_")


# --- 10. inputs -----------------------------------------------------------------------------

_SMALL = {"hidden_layer_sizes": (5,), "max_iter": 5, "random_state": 0}


def test_lists_fit_like_arrays():
    X, y = _classification()
    from_arrays = MLPClassifier(**_SMALL).fit(X, y)
    from_lists = MLPClassifier(**_SMALL).fit(X.tolist(), y.tolist())
    assert_array_equal(from_lists.predict_proba(X.tolist()), from_arrays.predict_proba(X))
    assert_array_equal(from_lists.predict(X.tolist()), from_arrays.predict(X))


def test_pandas_dataframe_feature_names():
    pd = pytest.importorskip("pandas")
    X, y = _classification()
    columns = [f"f{i}" for i in range(X.shape[1])]
    frame = pd.DataFrame(X, columns=columns)
    est = MLPClassifier(**_SMALL).fit(frame, pd.Series(y))
    sk = SkMLPClassifier(**_SMALL).fit(frame, pd.Series(y))
    assert_array_equal(est.feature_names_in_, columns)
    assert_array_equal(est.predict(frame), MLPClassifier(**_SMALL).fit(X, y).predict(X))
    renamed = frame.rename(columns={"f0": "zero"})
    with pytest.raises(ValueError, match="feature names should match") as ours_error:
        est.predict(renamed)
    with pytest.raises(ValueError, match="feature names should match") as sk_error:
        sk.predict(renamed)
    assert str(ours_error.value) == str(sk_error.value)
    with pytest.warns(UserWarning, match="does not have valid feature names"):
        est.predict(X)
    # A refit on plain arrays forgets the names.
    assert not hasattr(est.fit(X, y), "feature_names_in_")


def test_pandas_regression_target():
    pd = pytest.importorskip("pandas")
    X, y = _regression()
    est = MLPRegressor(**_SMALL).fit(pd.DataFrame(X), pd.Series(y))
    assert est.predict(pd.DataFrame(X)).shape == (X.shape[0],)


def test_string_labels():
    X, y = _classification()
    names = np.array(["setosa", "versicolor", "virginica"])
    est = MLPClassifier(hidden_layer_sizes=(8,), max_iter=60, random_state=0,
                        learning_rate_init=0.01).fit(X, names[y])
    as_ints = MLPClassifier(hidden_layer_sizes=(8,), max_iter=60, random_state=0,
                            learning_rate_init=0.01).fit(X, y)
    assert_array_equal(est.classes_, names)
    predicted = est.predict(X)
    assert predicted.dtype.kind in "UO"
    assert_array_equal(predicted, names[as_ints.predict(X)])
    assert est.score(X, names[y]) == as_ints.score(X, y)


def test_bool_labels():
    X, y = _classification("binary")
    est = MLPClassifier(**_SMALL).fit(X, y.astype(bool))
    assert_array_equal(est.classes_, [False, True])
    assert est.predict(X).dtype == bool
    assert est.predict_proba(X).shape == (X.shape[0], 2)
    assert_array_equal(est.predict(X), MLPClassifier(**_SMALL).fit(X, y).predict(X) == 1)


def test_multilabel_indicator_targets():
    X, Y = _classification("multilabel")
    est = MLPClassifier(hidden_layer_sizes=(8,), max_iter=30, random_state=0).fit(X, Y)
    assert_array_equal(est.classes_, [0, 1, 2])
    assert est.n_outputs_ == 3 and est.out_activation_ == "logistic"
    proba = est.predict_proba(X)
    assert proba.shape == Y.shape
    assert not np.allclose(proba.sum(axis=1), 1.0)  # independent labels, not a softmax
    predicted = est.predict(X)
    assert predicted.shape == Y.shape
    assert_array_equal(predicted, (proba > 0.5).astype(predicted.dtype))
    assert isinstance(est.score(X, Y), float)


@pytest.mark.parametrize("est_class", [MLPClassifier, MLPRegressor])
def test_column_y_warns_data_conversion(est_class):
    X, y = _classification() if est_class is MLPClassifier else _regression()
    with pytest.warns(DataConversionWarning):
        est = est_class(**_SMALL).fit(X, y[:, None])
    assert est.n_outputs_ == (3 if est_class is MLPClassifier else 1)
    assert est.predict(X).shape == (X.shape[0],)


def test_regressor_two_outputs():
    X, Y = _regression("two_outputs")
    est = MLPRegressor(**_SMALL).fit(X, Y)
    assert est.n_outputs_ == 2
    assert est.predict(X).shape == (X.shape[0], 2)
    assert est.coefs_[-1].shape == (5, 2)
    assert isinstance(est.score(X, Y), float)


def test_poisson_refuses_negative_targets():
    X, y = _regression()
    est = MLPRegressor(loss="poisson", **_SMALL)
    with pytest.raises(ValueError, match="poisson"):
        est.fit(X, y)  # standardised y has negative values
    assert not hasattr(est, "model_")
    est.fit(X, np.abs(y))
    assert est.out_activation_ == "exp"
    assert np.all(est.predict(X) > 0)


def test_score_takes_sample_weight():
    X, y = _classification()
    est = MLPClassifier(**_SMALL).fit(X, y)
    sample_weight = np.random.default_rng(0).uniform(0.0, 1.0, X.shape[0])
    expected = accuracy_score(y, est.predict(X), sample_weight=sample_weight)
    assert est.score(X, y, sample_weight=sample_weight) == pytest.approx(expected, rel=1e-12)
    assert est.score(X, y, sample_weight=sample_weight) != est.score(X, y)


def test_wrong_number_of_features_at_predict():
    X, y = _classification()
    est = MLPClassifier(**_SMALL).fit(X, y)
    with pytest.raises(ValueError, match="features"):
        est.predict(X[:, :4])


def test_plain_float_arrays_skip_validate_data_with_the_same_results(monkeypatch):
    """Prediction takes a 2-D float32/float64 NumPy X as it is (validate_data would return
    it unchanged); everything else still goes through scikit-learn's checks."""
    import pandas as pd

    import mlpx.sklearn as mlpx_sklearn

    X, y = _classification()
    est = MLPClassifier(**_SMALL).fit(X, y)
    with monkeypatch.context() as patch:  # the reference: through scikit-learn's checks
        patch.setattr(MLPClassifier, "_takes_as_is", lambda self, X: False)
        through_checks = {dtype: est.predict_proba(X.astype(dtype)) for dtype in (
            np.float32, np.float64)}
    calls = []
    checked = mlpx_sklearn.validate_data
    monkeypatch.setattr(mlpx_sklearn, "validate_data",
                        lambda *args, **kwargs: calls.append(1) or checked(*args, **kwargs))
    for dtype, expected in through_checks.items():
        assert_array_equal(est.predict_proba(X.astype(dtype)), expected)
    assert_array_equal(est.predict(X), est.classes_[np.argmax(through_checks[np.float64], 1)])
    assert calls == []
    for other in (X.astype(np.int64), X.tolist(), X[:, :4], np.asfortranarray(X)[None]):
        with warnings.catch_warnings(), contextlib.suppress(ValueError):
            warnings.simplefilter("ignore")
            est.predict(other)  # the last two are refused, by scikit-learn's checks
    assert len(calls) == 4
    with pytest.raises(ValueError, match="X contains NaN"):
        est.predict(np.where(np.arange(X.shape[1]) == 2, np.nan, X))
    named = MLPClassifier(**_SMALL).fit(pd.DataFrame(X, columns=[f"f{i}" for i in range(
        X.shape[1])]), y)
    with pytest.warns(UserWarning, match="does not have valid feature names"):
        named.predict(X)


def test_continuous_targets_refused_by_the_classifier():
    X, y = _regression()
    with pytest.raises(ValueError, match="Unknown label type"):
        MLPClassifier(**_SMALL).fit(X, y)


# --- 11. backends ---------------------------------------------------------------------------

def _on(backend, array):
    return backend.xp.asarray(np.asarray(array), device=backend.device)


def _assert_on_backend(array, backend) -> None:
    assert array_api_compat.array_namespace(array) is backend.xp, type(array)
    assert array_api_compat.device(array) == backend.device


_BACKEND_PARAMS = {"hidden_layer_sizes": (6,), "max_iter": 10, "batch_size": 32,
                   "learning_rate_init": 0.01, "random_state": 0}


def test_backend_classifier_fit_predict(backend):
    X, y = _classification()
    est = MLPClassifier(**_BACKEND_PARAMS).fit(_on(backend, X), _on(backend, y))
    reference = MLPClassifier(**_BACKEND_PARAMS).fit(X, y)
    for param in [*est.coefs_, *est.intercepts_]:
        _assert_on_backend(param, backend)
        assert param.dtype == backend.xp.float32
    X_b = _on(backend, X)
    assert_close(est.predict_proba(X_b), reference.predict_proba(X), backend=backend,
                 rtol=1e-4, atol=1e-6, shape=(X.shape[0], 3))
    assert_close(est.predict_log_proba(X_b), reference.predict_log_proba(X), backend=backend,
                 rtol=1e-4, atol=1e-5)
    predicted = est.predict(X_b)
    _assert_on_backend(predicted, backend)
    assert_array_equal(to_numpy(predicted), reference.predict(X))
    score = est.score(X_b, _on(backend, y))
    assert isinstance(score, float)
    assert score == reference.score(X, y)
    assert_allclose(est.loss_curve_, reference.loss_curve_, rtol=1e-5)
    assert_array_equal(est.classes_, reference.classes_)


def test_backend_binary_classifier(backend):
    X, y = _classification("binary")
    est = MLPClassifier(**_BACKEND_PARAMS).fit(_on(backend, X), _on(backend, y))
    reference = MLPClassifier(**_BACKEND_PARAMS).fit(X, y)
    assert_close(est.predict_proba(_on(backend, X)), reference.predict_proba(X),
                 backend=backend, rtol=1e-4, atol=1e-6, shape=(X.shape[0], 2))


def test_backend_regressor_fit_predict(backend):
    X, y = _regression("two_outputs")
    est = MLPRegressor(**_BACKEND_PARAMS).fit(_on(backend, X), _on(backend, y))
    reference = MLPRegressor(**_BACKEND_PARAMS).fit(X, y)
    _assert_on_backend(est.coefs_[0], backend)
    assert_close(est.predict(_on(backend, X)), reference.predict(X), backend=backend,
                 rtol=1e-4, atol=1e-5, shape=(X.shape[0], 2))
    score = est.score(_on(backend, X), _on(backend, y))
    assert isinstance(score, float)
    assert score == pytest.approx(reference.score(X, y), rel=1e-4)


def test_backend_parameter_with_numpy_input(backend):
    X, y = _regression()
    est = MLPRegressor(**_BACKEND_PARAMS, backend=backend.name, device=backend.device).fit(X, y)
    assert est.model_.backend.name == backend.name
    _assert_on_backend(est.coefs_[0], backend)
    reference = MLPRegressor(**_BACKEND_PARAMS).fit(X, y)
    assert_close(est.predict(X), reference.predict(X), backend=backend, rtol=1e-4, atol=1e-5)


def test_backend_early_stopping_and_sample_weight(backend):
    X, y = _regression()
    sample_weight = np.random.default_rng(0).uniform(0.5, 2.0, X.shape[0])
    params = {**_BACKEND_PARAMS, "early_stopping": True, "validation_fraction": 0.2,
              "max_iter": 8}
    est = MLPRegressor(**params).fit(_on(backend, X), _on(backend, y),
                                     sample_weight=_on(backend, sample_weight))
    reference = MLPRegressor(**params).fit(X, y, sample_weight=sample_weight)
    assert_allclose(est.validation_scores_, reference.validation_scores_, rtol=1e-4)
    assert est.best_validation_score_ == pytest.approx(reference.best_validation_score_,
                                                       rel=1e-4)
    assert_close(est.predict(_on(backend, X)), reference.predict(X), backend=backend,
                 rtol=1e-4, atol=1e-5)


def test_backend_string_labels(backend):
    X, y = _classification()
    names = np.array(["ant", "bee", "cat"])
    est = MLPClassifier(**_BACKEND_PARAMS).fit(_on(backend, X), names[y])
    reference = MLPClassifier(**_BACKEND_PARAMS).fit(X, y)
    predicted = est.predict(_on(backend, X))
    assert isinstance(predicted, np.ndarray)  # strings live on the host
    assert_array_equal(predicted, names[reference.predict(X)])
    assert est.score(_on(backend, X), names[y]) == reference.score(X, y)


def test_backend_lbfgs(backend):
    _lbfgs_available()
    X, y = _classification()
    params = {"hidden_layer_sizes": (6,), "solver": "lbfgs", "max_iter": 20,
              "random_state": 0, "dtype": "float64"}
    est = MLPClassifier(**params).fit(_on(backend, X), _on(backend, y))
    reference = MLPClassifier(**params).fit(X, y)
    _assert_on_backend(est.coefs_[0], backend)
    assert est.n_iter_ == reference.n_iter_
    assert est.loss_ == pytest.approx(reference.loss_, rel=1e-6)
    assert_close(est.predict_proba(_on(backend, X)), reference.predict_proba(X),
                 backend=backend, rtol=1e-5, atol=1e-8)


def test_backend_partial_fit(backend):
    X, y = _classification()
    est, reference = MLPClassifier(**_BACKEND_PARAMS), MLPClassifier(**_BACKEND_PARAMS)
    for _ in range(3):
        est.partial_fit(_on(backend, X), _on(backend, y), classes=_on(backend, [0, 1, 2]))
        reference.partial_fit(X, y, classes=[0, 1, 2])
    assert est.model_.optimizer_state_["step"] == reference.model_.optimizer_state_["step"]
    assert est.t_ == reference.t_
    assert_close(est.predict_proba(_on(backend, X)), reference.predict_proba(X),
                 backend=backend, rtol=1e-4, atol=1e-6)


def test_backend_assigned_weights_move_to_the_device(backend):
    X, y = _classification()
    est = MLPClassifier(**_BACKEND_PARAMS, dtype="float64").fit(_on(backend, X),
                                                                _on(backend, y))
    coefs = [np.full(to_numpy(W).shape, 0.1) for W in est.coefs_]
    est.coefs_ = coefs
    _assert_on_backend(est.coefs_[0], backend)
    est.intercepts_[-1] = np.array([1.0, 0.0, -1.0])
    _assert_on_backend(est.intercepts_[-1], backend)
    expected = _relu_softmax_forward(X, coefs, [to_numpy(b) for b in est.intercepts_])
    assert_close(est.predict_proba(_on(backend, X)), expected, backend=backend, rtol=1e-10)


def test_backend_pickle_round_trip(backend):
    X, y = _classification()
    est = MLPClassifier(**_BACKEND_PARAMS).fit(_on(backend, X), _on(backend, y))
    restored = pickle.loads(pickle.dumps(est))
    _assert_on_backend(restored.coefs_[0], backend)
    assert_array_equal(to_numpy(restored.predict_proba(_on(backend, X))),
                       to_numpy(est.predict_proba(_on(backend, X))))
    # The optimizer state came along: one more epoch gives the same weights on both.
    est.partial_fit(_on(backend, X), _on(backend, y))
    restored.partial_fit(_on(backend, X), _on(backend, y))
    _assert_same_params(restored, est)


def test_backend_cross_val_score_with_array_api_dispatch(backend):
    X, y = _classification()
    with sklearn.config_context(array_api_dispatch=True):
        scores = cross_val_score(MLPClassifier(**_BACKEND_PARAMS), _on(backend, X),
                                 _on(backend, y), cv=2)
    scores = to_numpy(scores)
    assert scores.shape == (2,)
    assert np.all((scores >= 0.0) & (scores <= 1.0))


def test_backend_dispatch_refuses_another_namespace_at_predict(backend):
    if backend.name == "numpy":
        pytest.skip("about device arrays: numpy input is this backend's own")
    X, y = _classification()
    est = MLPClassifier(**_BACKEND_PARAMS).fit(_on(backend, X), _on(backend, y))
    with sklearn.config_context(array_api_dispatch=True), pytest.raises(
            ValueError, match="same namespace"):
        est.predict(X)
    # Without dispatch, NumPy input is moved to the model's device.
    _assert_on_backend(est.predict_proba(X), backend)


# --- 12. scikit-learn integration -----------------------------------------------------------

def test_grid_search_over_a_pipeline():
    X_train, X_test, y_train, y_test = _digits()
    grid = {"mlpclassifier__alpha": [1e-4, 1e-2],
            "mlpclassifier__hidden_layer_sizes": [(8,), (16,)]}
    pipe = make_pipeline(StandardScaler(),
                         MLPClassifier(max_iter=30, learning_rate_init=0.01, random_state=0))
    search = GridSearchCV(pipe, grid, cv=2).fit(X_train[:400], y_train[:400])
    assert search.best_params_["mlpclassifier__alpha"] in grid["mlpclassifier__alpha"]
    assert (search.best_params_["mlpclassifier__hidden_layer_sizes"]
            in grid["mlpclassifier__hidden_layer_sizes"])
    assert len(search.cv_results_["mean_test_score"]) == 4
    assert search.score(X_test, y_test) > 0.8


def test_cross_val_score():
    X_train, _, y_train, _ = _digits()
    scores = cross_val_score(MLPClassifier(hidden_layer_sizes=(16,), max_iter=30,
                                           learning_rate_init=0.01, random_state=0),
                             X_train[:400], y_train[:400], cv=3)
    assert scores.shape == (3,) and scores.dtype == np.float64
    assert np.all(scores > 0.7)


@pytest.mark.parametrize("est", [
    MLPClassifier(hidden_layer_sizes=(3, 2), alpha=0.5, dtype="float64", backend="numpy",
                  class_weight={0: 2.0}),
    MLPRegressor(loss="poisson", hidden_layer_sizes=(3,), solver="sgd", device="cpu"),
])
def test_clone_keeps_the_parameters(est):
    copy = clone(est)
    assert copy is not est
    assert copy.get_params() == est.get_params()
    assert not hasattr(copy, "model_")


def test_clone_of_a_fitted_estimator_is_unfitted():
    X, y = _classification()
    est = MLPClassifier(**_SMALL).fit(X, y)
    assert not hasattr(clone(est), "model_")
    assert not hasattr(clone(est), "coefs_")


@pytest.mark.parametrize("est_class", [MLPClassifier, MLPRegressor])
def test_pickle_round_trip(est_class):
    X, y = _classification() if est_class is MLPClassifier else _regression()
    est = est_class(**_SMALL).fit(X, y)
    restored = pickle.loads(pickle.dumps(est))
    assert_array_equal(restored.predict(X), est.predict(X))
    if est_class is MLPClassifier:
        assert_array_equal(restored.predict_proba(X), est.predict_proba(X))
    assert restored.loss_curve_ == est.loss_curve_
    assert restored.get_params() == est.get_params()


def test_get_params_and_set_params():
    clf_params = MLPClassifier().get_params()
    reg_params = MLPRegressor().get_params()
    for name in ("dtype", "backend", "device", "hidden_layer_sizes", "solver", "alpha",
                 "max_fun", "n_iter_no_change"):
        assert name in clf_params and name in reg_params
    assert clf_params["dtype"] == reg_params["dtype"] == "float32"
    assert clf_params["class_weight"] is None and "class_weight" not in reg_params
    assert reg_params["loss"] == "squared_error" and "loss" not in clf_params
    est = MLPClassifier()
    assert est.set_params(dtype="float64", class_weight="balanced") is est
    assert est.dtype == "float64" and est.class_weight == "balanced"
    with pytest.raises(ValueError):
        est.set_params(not_a_parameter=1)


# --- 13. bad parameters ---------------------------------------------------------------------

_BAD_PARAMS = [
    ("hidden_layer_sizes", (0,)),
    ("hidden_layer_sizes", (4, -1)),
    ("hidden_layer_sizes", (3.5,)),
    ("activation", "softmax"),
    ("solver", "newton"),
    ("alpha", -1.0),
    ("batch_size", 0),
    ("learning_rate", "cyclic"),
    ("learning_rate_init", 0.0),
    ("power_t", -0.5),
    ("max_iter", 0),
    ("shuffle", "yes"),
    ("tol", -1.0),
    ("momentum", 1.5),
    ("nesterovs_momentum", None),
    ("early_stopping", "no"),
    ("validation_fraction", 1.0),
    ("beta_1", 1.0),
    ("beta_2", 1.0),
    ("epsilon", 0.0),
    ("n_iter_no_change", 0),
    ("max_fun", 0),
    ("dtype", "float16"),
    ("warm_start", "maybe"),
]


@pytest.mark.parametrize("est_class", [MLPClassifier, MLPRegressor])
@pytest.mark.parametrize(("name", "value"), _BAD_PARAMS)
def test_bad_parameter_raises_naming_it(est_class, name, value):
    X, y = _classification() if est_class is MLPClassifier else _regression()
    est = est_class(**{name: value})
    with pytest.raises(ValueError, match=re.escape(name)):
        est.fit(X, y)
    assert not hasattr(est, "model_")


@pytest.mark.parametrize(("est_class", "name", "value"), [
    (MLPRegressor, "loss", "huber"),
    (MLPClassifier, "class_weight", "auto"),
    (MLPClassifier, "class_weight", [1.0, 2.0]),
])
def test_bad_estimator_specific_parameter_raises_naming_it(est_class, name, value):
    X, y = _classification() if est_class is MLPClassifier else _regression()
    est = est_class(**{name: value})
    with pytest.raises(ValueError, match=name):
        est.fit(X, y)
    assert not hasattr(est, "model_")


@pytest.mark.parametrize(("name", "value"), [("solver", "newton"), ("alpha", -1.0),
                                             ("dtype", "float16"), ("max_iter", 0)])
def test_failed_refit_keeps_the_fitted_model(name, value):
    X, y = _classification()
    est = MLPClassifier(**_SMALL).fit(X, y)
    before, model, curve = est.predict_proba(X), est.model_, list(est.loss_curve_)
    est.set_params(**{name: value})
    with pytest.raises(ValueError, match=name):
        est.fit(X, y)
    assert est.model_ is model
    assert est.loss_curve_ == curve
    assert_array_equal(est.predict_proba(X), before)


def test_bad_parameter_raises_in_partial_fit_too():
    X, y = _classification()
    with pytest.raises(ValueError, match="alpha"):
        MLPClassifier(alpha=-1.0).partial_fit(X, y, classes=[0, 1, 2])


# --- 14. verbose ----------------------------------------------------------------------------

def test_verbose_prints_the_loss_of_every_iteration(capsys):
    X, y = _classification()
    est = MLPClassifier(hidden_layer_sizes=(4,), max_iter=4, random_state=0,
                        verbose=True).fit(X, y)
    lines = [line for line in capsys.readouterr().out.splitlines()
             if line.startswith("Iteration ")]
    assert lines == [f"Iteration {i}, loss = {loss:.8f}"
                     for i, loss in enumerate(est.loss_curve_, start=1)]


def test_verbose_prints_validation_scores(capsys):
    X, y = _classification()
    est = MLPClassifier(hidden_layer_sizes=(4,), max_iter=3, random_state=0, verbose=True,
                        early_stopping=True).fit(X, y)
    out = capsys.readouterr().out
    scores = [float(s) for s in re.findall(r"Validation score: ([0-9.]+)", out)]
    assert scores == pytest.approx(est.validation_scores_, abs=1e-6)


def test_silent_by_default(capsys):
    X, y = _classification()
    MLPClassifier(hidden_layer_sizes=(4,), max_iter=3, random_state=0).fit(X, y)
    assert capsys.readouterr().out == ""
