"""Sample and class weights, ``alpha_per_sample``, the new losses, ``reset_optimizer`` and pickling.

What is checked, and against what:

- the NumPy fast path gives the numbers of the generic array-API runner with sample weights,
  class weights and ``alpha_per_sample`` (every loss the fast path has a kernel or a fallback
  for, uneven minibatches, shuffling, chunked input gathers, per-batch callback losses);
- on every backend, weights mean what scikit-learn's convention says: integer weights are
  repeated rows, zero weights are removed rows, all-one weights are no weights, a
  ``class_weight`` is its per-sample weight, and "balanced" is
  ``sklearn.utils.class_weight.compute_class_weight``;
- the logged loss is the weighted mean loss plus the penalty, computed by hand in NumPy (and
  by scikit-learn's metrics where they exist);
- ``alpha_per_sample`` and the new losses (half squared error, Poisson with an ``exp``
  output) pass the central-difference gradient check in float64 on every backend;
- ``reset_optimizer=False``: two fits of 2 and 3 epochs are one fit of 5;
- a pickled model predicts, continues and reports exactly as the original;
- bad weights raise an mlpx error naming ``sample_weight``/``class_weight`` and leave the
  model as it was.
"""

from __future__ import annotations

import copy
import pickle
from contextlib import contextmanager

import numpy as np
import pytest
from helpers import assert_close
from scipy.special import xlogy

import mlpx
import mlpx.train
from mlpx import MlpxTypeError, MlpxValueError, optim, to_numpy
from mlpx._numpy_fastpath import NumpyEpochRunner
from mlpx.losses import LOSSES, weighted_value
from mlpx.sample_weights import class_sample_weights
from mlpx.train import EpochRunner

N_FEATURES = 4
N_SAMPLES = 61  # batch_size 16 leaves a last batch of 13 rows

# The fast path and the generic runner do the same math up to the order of a few sums.
FAST_TOLERANCES = {
    "float64": {"rtol": 1e-10, "atol": 1e-12},
    "float32": {"rtol": 1e-5, "atol": 1e-6},
}


# --- data and models ----------------------------------------------------------------------

SPECS = {
    # name: (output activation, loss, kind of targets, n_outputs)
    "softmax_ce": ("softmax", None, "multiclass", 3),
    "sigmoid_bce": ("sigmoid", None, "binary", 1),
    "multilabel_bce": ("sigmoid", None, "multilabel", 2),
    "mse": ("identity", "mse", "regression", 2),
    "half_squared_error": ("identity", "half_squared_error", "regression", 2),
    "poisson": ("exp", "poisson", "counts", 1),
}
CLASSIFIERS = ("softmax_ce", "sigmoid_bce")


def make_data(kind: str, n_out: int, *, n_samples: int = N_SAMPLES, seed: int = 0,
              dtype: str = "float64"):
    """Standardised X (n_samples, N_FEATURES) and targets of ``kind``; every class present."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_samples, N_FEATURES))
    signal = 0.7 * (X @ rng.normal(size=(N_FEATURES, n_out)))
    if kind == "multiclass":
        y = np.argmax(signal + rng.normal(size=signal.shape), axis=1)
        y[:n_out] = np.arange(n_out)
    elif kind == "binary":
        y = (signal[:, 0] + 0.5 * rng.normal(size=n_samples) > 0).astype(np.int64)
        y[:2] = [0, 1]
    elif kind == "multilabel":
        y = (signal + 0.5 * rng.normal(size=signal.shape) > 0).astype(np.int64)
    elif kind == "regression":
        y = signal + 0.1 * rng.normal(size=signal.shape)
    elif kind == "counts":
        y = rng.poisson(np.exp(0.5 * signal)).astype(np.float64)
        y[0] = 0.0  # y log y at y = 0
    else:
        raise AssertionError(kind)
    if kind in ("regression", "counts") and n_out == 1:
        y = y[:, 0]
    return X.astype(dtype), y


def spec_data(spec: str, **kwargs):
    _, _, kind, n_out = SPECS[spec]
    return make_data(kind, n_out, **kwargs)


def build(spec: str, *, backend="numpy", dtype="float64", alpha=0.0, alpha_per_sample=False,
          hidden=(6, 5), hidden_activations=("tanh", "relu"), seed=3) -> mlpx.MLP:
    output, loss, _, n_out = SPECS[spec]
    return mlpx.MLP([N_FEATURES, *hidden, n_out], [*hidden_activations[:len(hidden)], output],
                    loss=loss, backend=backend, dtype=dtype, seed=seed, alpha=alpha,
                    alpha_per_sample=alpha_per_sample)


def positive_weights(n: int, *, seed: int = 1, zeros: bool = True) -> np.ndarray:
    """Weights in [0.2, 3) with every 7th one 0 (but not the first rows, which hold every class)."""
    weights = np.random.default_rng(seed).uniform(0.2, 3.0, size=n)
    if zeros:
        weights[5::7] = 0.0
    return weights


def host_params(model) -> list[np.ndarray]:
    return [np.array(to_numpy(p), copy=True) for p in model.params]


def assert_same_params(actual_model, desired_model, *, exact: bool, rtol=1e-12, atol=1e-14):
    actual, desired = host_params(actual_model), host_params(desired_model)
    assert len(actual) == len(desired)
    for i, (a, d) in enumerate(zip(actual, desired)):
        if exact:
            np.testing.assert_array_equal(a, d, err_msg=f"params[{i}] differ")
        else:
            np.testing.assert_allclose(a, d, rtol=rtol, atol=atol, err_msg=f"params[{i}] differ")


def max_param_difference(a_model, b_model) -> float:
    return max(float(np.max(np.abs(a - b)))
               for a, b in zip(host_params(a_model), host_params(b_model)))


def assert_same_history(actual, desired, *, exact: bool, rtol=1e-12, atol=1e-14,
                        keys=("loss", "accuracy", "mae")):
    for key in keys:
        if key not in desired.history:
            continue
        if exact:
            assert actual[key] == desired[key], key
        else:
            np.testing.assert_allclose(actual[key], desired[key], rtol=rtol, atol=atol,
                                       err_msg=f"History[{key!r}] differs")


@contextmanager
def recorded_runners(monkeypatch, *, generic: bool = False):
    """Record the runners ``fit`` makes; ``generic`` forces the array-API reference runner."""
    runners = []
    make = mlpx.train.make_epoch_runner

    def wrapped(*args, **kwargs):
        runners.append(EpochRunner(*args, **kwargs) if generic else make(*args, **kwargs))
        return runners[-1]

    with monkeypatch.context() as patch:
        patch.setattr(mlpx.train, "make_epoch_runner", wrapped)
        yield runners


class BatchLosses(mlpx.Callback):
    """Keeps the loss of every batch (only the per-batch path computes it)."""

    def __init__(self) -> None:
        self.losses: list[float] = []

    def on_batch_end(self, batch, logs=None):
        self.losses.append(float(logs["loss"]))


# --- numpy reference computations ---------------------------------------------------------

HIDDEN_NUMPY = {"tanh": np.tanh, "relu": lambda z: np.maximum(z, 0.0),
                "identity": lambda z: z}


def numpy_logits(params, hidden_activations, X):
    """The output pre-activation z, computed in NumPy float64 from host parameters."""
    a = np.asarray(X, dtype=np.float64)
    n_layers = len(params) // 2
    for layer in range(n_layers):
        z = a @ params[2 * layer] + params[2 * layer + 1]
        if layer < n_layers - 1:
            a = HIDDEN_NUMPY[hidden_activations[layer]](z)
    return z


def numpy_per_sample_loss(spec: str, z, Y):
    """Each sample's loss (n_samples,) by the textbook formula of ``spec``'s loss."""
    if spec == "softmax_ce":
        log_p = z - np.max(z, axis=1, keepdims=True)
        log_p = log_p - np.log(np.sum(np.exp(log_p), axis=1, keepdims=True))
        return -np.sum(Y * log_p, axis=1)
    if spec in ("sigmoid_bce", "multilabel_bce"):
        p = 1.0 / (1.0 + np.exp(-z))
        return -np.sum(Y * np.log(p) + (1.0 - Y) * np.log1p(-p), axis=1)
    if spec == "mse":
        return np.mean((z - Y) ** 2, axis=1)
    if spec == "half_squared_error":
        return 0.5 * np.sum((z - Y) ** 2, axis=1)
    if spec == "poisson":
        mu = np.exp(z)
        return np.sum(mu - Y * z + xlogy(Y, Y) - Y, axis=1)
    raise AssertionError(spec)


def target_matrix(spec: str, y) -> np.ndarray:
    """The (n_samples, n_outputs) float target matrix of labels 0..k-1 or values."""
    _, _, kind, n_out = SPECS[spec]
    y = np.asarray(y)
    if kind == "multiclass":
        return np.eye(n_out)[y]
    return np.asarray(y, dtype=np.float64).reshape(len(y), -1)


def sum_squared_weights(params) -> float:
    return float(sum(np.sum(W * W) for W in params[0::2]))


# --- 1. the fast path equals the generic runner with weights --------------------------------

FAST_CASES = {
    "softmax_ce-sample_weight-adam": dict(spec="softmax_ce", weighting="sample"),
    "softmax_ce-balanced-momentum-alpha_per_sample": dict(
        spec="softmax_ce", weighting="balanced", alpha=0.05, alpha_per_sample=True,
        optimizer="momentum"),
    "softmax_ce-dict_and_sample-batch7-chunks-callback": dict(
        spec="softmax_ce", weighting="dict+sample", batch_size=7, chunk_batches=2,
        callback=True, alpha=0.02),
    "softmax_ce-alpha_per_sample-unweighted": dict(
        spec="softmax_ce", weighting=None, alpha=0.1, alpha_per_sample=True),
    "sigmoid_bce-sample-alpha_per_sample": dict(
        spec="sigmoid_bce", weighting="sample", alpha=0.05, alpha_per_sample=True),
    "sigmoid_bce-balanced-full_batch": dict(spec="sigmoid_bce", weighting="balanced",
                                            batch_size=None, epochs=5),
    "multilabel_bce-sample-callback": dict(spec="multilabel_bce", weighting="sample",
                                           callback=True),
    "mse-sample-alpha_per_sample-sgd": dict(spec="mse", weighting="sample", alpha=0.1,
                                            alpha_per_sample=True, optimizer="sgd"),
    "half_squared_error-sample-callback": dict(spec="half_squared_error", weighting="sample",
                                               callback=True, alpha=0.01),
    "half_squared_error-alpha_per_sample-unweighted": dict(
        spec="half_squared_error", weighting=None, alpha=0.1, alpha_per_sample=True),
    "poisson-sample-alpha_per_sample": dict(spec="poisson", weighting="sample", alpha=0.05,
                                            alpha_per_sample=True),
    "poisson-sample-unshuffled": dict(spec="poisson", weighting="sample", shuffle=False),
    "softmax_ce-float32-sample-alpha_per_sample": dict(
        spec="softmax_ce", weighting="sample", dtype="float32", alpha=0.05,
        alpha_per_sample=True),
    "mse-float32-sample": dict(spec="mse", weighting="sample", dtype="float32"),
    "poisson-float32-sample": dict(spec="poisson", weighting="sample", dtype="float32"),
}


def weighting_kwargs(weighting, y, n: int) -> dict:
    if weighting is None:
        return {}
    if weighting == "sample":
        return {"sample_weight": positive_weights(n)}
    if weighting == "balanced":
        return {"class_weight": "balanced"}
    if weighting == "dict+sample":
        return {"class_weight": {0: 2.5, 2: 0.5}, "sample_weight": positive_weights(n, seed=4)}
    raise AssertionError(weighting)


OPTIMIZERS = {
    "adam": lambda: optim.Adam(learning_rate=0.01),
    "sgd": lambda: optim.SGD(learning_rate=0.05),
    "momentum": lambda: optim.SGD(learning_rate=0.05, momentum=0.9, nesterov=True),
}


@pytest.mark.parametrize("case", list(FAST_CASES.values()), ids=list(FAST_CASES))
def test_fast_path_equals_generic_runner_with_weights(monkeypatch, case):
    cfg = {"dtype": "float64", "alpha": 0.0, "alpha_per_sample": False, "batch_size": 16,
           "shuffle": True, "optimizer": "adam", "epochs": 3, "chunk_batches": None,
           "callback": False, **case}
    X, y = spec_data(cfg["spec"], dtype=cfg["dtype"])
    weights = weighting_kwargs(cfg["weighting"], y, len(X))

    def train(*, generic: bool):
        model = build(cfg["spec"], dtype=cfg["dtype"], alpha=cfg["alpha"],
                      alpha_per_sample=cfg["alpha_per_sample"])
        callback = BatchLosses()
        with monkeypatch.context() as patch:
            if cfg["chunk_batches"]:
                itemsize = np.dtype(cfg["dtype"]).itemsize
                patch.setattr(NumpyEpochRunner, "INPUT_BUFFER_BYTES",
                              cfg["chunk_batches"] * cfg["batch_size"] * (N_FEATURES + 1)
                              * itemsize)
            with recorded_runners(patch, generic=generic) as runners:
                history = model.fit(X, y, epochs=cfg["epochs"], batch_size=cfg["batch_size"],
                                    optimizer=OPTIMIZERS[cfg["optimizer"]](),
                                    shuffle=cfg["shuffle"],
                                    callbacks=[callback] if cfg["callback"] else None,
                                    **weights)
        assert len(runners) == 1
        assert type(runners[0]) is (EpochRunner if generic else NumpyEpochRunner)
        assert (runners[0].weights is None) == (cfg["weighting"] is None)
        return model, history, callback.losses

    fast_model, fast_history, fast_batches = train(generic=False)
    generic_model, generic_history, generic_batches = train(generic=True)

    tol = FAST_TOLERANCES[cfg["dtype"]]
    for i, (fast, generic) in enumerate(zip(fast_model.params, generic_model.params)):
        assert fast.dtype == generic.dtype == np.dtype(cfg["dtype"])
        np.testing.assert_allclose(fast, generic, **tol, err_msg=f"params[{i}] differ")
    assert set(fast_history.history) == set(generic_history.history)
    assert len(fast_history["loss"]) == cfg["epochs"]
    for key in fast_history.history:
        if key != "time":
            np.testing.assert_allclose(fast_history[key], generic_history[key], **tol,
                                       err_msg=f"History[{key!r}] differs")
    if cfg["callback"]:
        n_kept = len(X) - (np.count_nonzero(weights["sample_weight"] == 0)
                           if "sample_weight" in weights else 0)
        assert len(fast_batches) == cfg["epochs"] * -(-n_kept // cfg["batch_size"])
        np.testing.assert_allclose(fast_batches, generic_batches, **tol)

    # The case is only a check if the weighting (or the penalty's scaling) changes training.
    if cfg["weighting"] is not None or cfg["alpha_per_sample"]:
        plain = build(cfg["spec"], dtype=cfg["dtype"], alpha=cfg["alpha"])
        plain.fit(X, y, epochs=cfg["epochs"], batch_size=cfg["batch_size"],
                  optimizer=OPTIMIZERS[cfg["optimizer"]](), shuffle=cfg["shuffle"])
        assert max_param_difference(plain, fast_model) > 1e-4


# --- 2. what weights mean, on every backend -------------------------------------------------

REPEAT_CASES = {
    "softmax_ce": dict(spec="softmax_ce"),
    "sigmoid_bce-alpha": dict(spec="sigmoid_bce", alpha=0.05),
    "mse-alpha_per_sample": dict(spec="mse", alpha=0.05, alpha_per_sample=True),
    "half_squared_error": dict(spec="half_squared_error"),
    "poisson-alpha_per_sample": dict(spec="poisson", alpha=0.05, alpha_per_sample=True),
}


@pytest.mark.parametrize("case", list(REPEAT_CASES.values()), ids=list(REPEAT_CASES))
def test_integer_weights_equal_repeated_rows(backend, case):
    """Full-batch SGD with weight k is training on k copies of the row (k = 0: no row)."""
    spec = case["spec"]
    X, y = spec_data(spec, n_samples=40)
    counts = np.random.default_rng(2).integers(0, 4, size=len(X))
    counts[:3] = 1  # the rows that hold every class
    options = dict(alpha=case.get("alpha", 0.0),
                   alpha_per_sample=case.get("alpha_per_sample", False), backend=backend)
    fit = dict(epochs=4, batch_size=None, optimizer="sgd", learning_rate=0.1)

    weighted = build(spec, **options)
    weighted_history = weighted.fit(X, y, sample_weight=counts, **fit)
    repeated = build(spec, **options)
    repeated_history = repeated.fit(np.repeat(X, counts, axis=0), np.repeat(y, counts, axis=0),
                                    **fit)

    for p, q in zip(weighted.params, repeated.params):
        assert_close(p, q, backend=backend, dtype=weighted.dtype, rtol=1e-9, atol=1e-12)
    # The loss is weighted; the metrics are unweighted means, so they differ here.
    assert_same_history(weighted_history, repeated_history, exact=False, rtol=1e-9,
                        keys=("loss",))
    plain = build(spec, **options)
    plain.fit(X, y, **fit)
    assert max_param_difference(plain, weighted) > 1e-4


@pytest.mark.parametrize("spec,alpha_per_sample", [("softmax_ce", True), ("mse", False),
                                                   ("poisson", True)])
def test_zero_weights_equal_removed_rows(backend, spec, alpha_per_sample):
    """Weights of 0 and 1: the same training as without the 0 rows (minibatches, shuffled)."""
    X, y = spec_data(spec)
    keep = np.ones(len(X))
    keep[[4, 9, 10, 30, 47, 60]] = 0.0
    rows = np.flatnonzero(keep)
    fit = dict(epochs=3, batch_size=8, optimizer="adam", learning_rate=0.01, shuffle=True)
    options = dict(backend=backend, alpha=0.05, alpha_per_sample=alpha_per_sample)

    weighted = build(spec, **options)
    weighted_history = weighted.fit(X, y, sample_weight=keep, **fit)
    removed = build(spec, **options)
    removed_history = removed.fit(X[rows], y[rows], **fit)

    exact = backend.name == "numpy"
    assert_same_params(weighted, removed, exact=exact)
    # The logged loss goes through the weighted formula, a different order of sums.
    assert_same_history(removed_history, weighted_history, exact=False)
    assert weighted.optimizer_state_["step"] == 3 * -(-len(rows) // 8)


def test_sample_weight_as_backend_array(backend):
    """Weights may come as an array of the model's backend; the same as NumPy weights."""
    xp = backend.xp
    X, y = spec_data("softmax_ce")
    weights = positive_weights(len(X))
    fit = dict(epochs=2, batch_size=16, optimizer="adam", learning_rate=0.01)
    from_host_model = build("softmax_ce", backend=backend)
    from_host_model.fit(X, y, sample_weight=weights, **fit)
    on_device_model = build("softmax_ce", backend=backend)
    on_device_model.fit(X, y, sample_weight=xp.asarray(weights, device=backend.device), **fit)
    assert_same_params(on_device_model, from_host_model, exact=True)
    with pytest.raises(MlpxValueError, match="sample_weight"):
        on_device_model.fit(X, y, sample_weight=xp.asarray(weights[:-1], device=backend.device),
                            **fit)


@pytest.mark.parametrize("spec", ["softmax_ce", "sigmoid_bce", "poisson"])
def test_all_one_weights_are_no_weights(backend, spec):
    X, y = spec_data(spec)
    fit = dict(epochs=2, batch_size=16, optimizer="adam", learning_rate=0.01)
    options = dict(backend=backend, alpha=0.05, alpha_per_sample=True)
    plain = build(spec, **options)
    plain_history = plain.fit(X, y, **fit)
    ones = build(spec, **options)
    ones_history = ones.fit(X, y, sample_weight=np.ones(len(X)), **fit)
    assert_same_params(ones, plain, exact=True)
    assert_same_history(ones_history, plain_history, exact=True)
    if spec in CLASSIFIERS:
        unit_dict = build(spec, **options)
        unit_dict.fit(X, y, class_weight={0: 1.0, 1: 1}, **fit)
        assert_same_params(unit_dict, plain, exact=True)
    # A constant weight is the same weighted mean (up to rounding), but with
    # alpha_per_sample it divides the penalty by the total weight instead of the count.
    options["alpha_per_sample"] = False
    plain = build(spec, **options)
    plain_history = plain.fit(X, y, **fit)
    constant = build(spec, **options)
    constant_history = constant.fit(X, y, sample_weight=2.5, **fit)
    assert_same_params(constant, plain, exact=False, rtol=1e-10, atol=1e-12)
    assert_same_history(constant_history, plain_history, exact=False, rtol=1e-12)


@pytest.mark.parametrize("spec", CLASSIFIERS)
def test_class_weight_dict_is_its_sample_weight(backend, spec):
    X, y = spec_data(spec)
    class_weight = {0: 3.0, 1: 0.25} if spec == "sigmoid_bce" else {0: 0.5, 2: 4.0}
    per_sample = np.array([class_weight.get(label, 1.0) for label in y])
    extra = positive_weights(len(X), seed=6)
    fit = dict(epochs=2, batch_size=16, optimizer="adam", learning_rate=0.01)

    by_class = build(spec, backend=backend)
    by_class_history = by_class.fit(X, y, class_weight=class_weight, **fit)
    by_sample = build(spec, backend=backend)
    by_sample_history = by_sample.fit(X, y, sample_weight=per_sample, **fit)
    assert_same_params(by_class, by_sample, exact=True)
    assert_same_history(by_class_history, by_sample_history, exact=True)

    both = build(spec, backend=backend)
    both.fit(X, y, class_weight=class_weight, sample_weight=extra, **fit)
    product = build(spec, backend=backend)
    product.fit(X, y, sample_weight=extra * per_sample, **fit)
    assert_same_params(both, product, exact=True)

    plain = build(spec, backend=backend)
    plain.fit(X, y, **fit)
    assert max_param_difference(plain, by_class) > 1e-4


@pytest.mark.parametrize("labels", ["int3", "str2"])
def test_balanced_class_weight_is_sklearns(backend, labels):
    compute_class_weight = pytest.importorskip("sklearn.utils.class_weight").compute_class_weight
    rng = np.random.default_rng(8)
    X = rng.normal(size=(N_SAMPLES, N_FEATURES))
    if labels == "int3":
        spec, y = "softmax_ce", np.repeat([0, 1, 2], [33, 19, 9])
    else:
        spec, y = "sigmoid_bce", np.repeat(np.array(["no", "yes"]), [44, 17])
    y = y[rng.permutation(len(y))]
    classes = np.unique(y)
    expected = compute_class_weight("balanced", classes=classes, y=y)
    assert not np.allclose(expected, 1.0)
    per_sample = expected[np.searchsorted(classes, y)]
    fit = dict(epochs=2, batch_size=16, optimizer="adam", learning_rate=0.01)

    balanced = build(spec, backend=backend)
    balanced.fit(X, y, class_weight="balanced", **fit)
    np.testing.assert_array_equal(balanced.classes_, classes)
    reference = build(spec, backend=backend)
    reference.fit(X, y, sample_weight=per_sample, **fit)
    assert_same_params(balanced, reference, exact=False, rtol=1e-12, atol=1e-14)

    # The weights themselves, from the encoded targets.
    _, Y, found = balanced.check_Xy(X, y)
    np.testing.assert_array_equal(found, classes)
    weights = class_sample_weights("balanced", Y, classes=classes, task=balanced.task)
    np.testing.assert_allclose(weights, per_sample, rtol=1e-15)


# --- 3. the logged loss is the weighted mean loss plus the penalty -------------------------

@pytest.mark.parametrize("alpha_per_sample", [False, True])
@pytest.mark.parametrize("spec", list(SPECS))
def test_logged_loss_is_weighted_mean_plus_penalty(backend, spec, alpha_per_sample):
    """One full-batch epoch logs the loss at the starting weights, computed here by hand."""
    X, y = spec_data(spec, n_samples=30)
    weights = positive_weights(len(X), seed=5)
    alpha = 0.3
    model = build(spec, backend=backend, alpha=alpha, alpha_per_sample=alpha_per_sample)
    start = host_params(model)
    history = model.fit(X, y, sample_weight=weights, epochs=1, batch_size=None,
                        optimizer="sgd", learning_rate=1e-9)

    Y = target_matrix(spec, y)
    per_sample = numpy_per_sample_loss(spec, numpy_logits(start, ("tanh", "relu"), X), Y)
    data_loss = np.sum(weights * per_sample) / np.sum(weights)
    l2 = alpha / np.sum(weights) if alpha_per_sample else alpha
    expected = data_loss + 0.5 * l2 * sum_squared_weights(start)
    assert history["loss"][0] == pytest.approx(expected, rel=1e-12)
    # Neither the unweighted mean nor the other penalty convention is the same number.
    unweighted = np.mean(per_sample) + 0.5 * l2 * sum_squared_weights(start)
    other_l2 = alpha if alpha_per_sample else alpha / np.sum(weights)
    assert history["loss"][0] != pytest.approx(unweighted, rel=1e-6)
    assert history["loss"][0] != pytest.approx(
        data_loss + 0.5 * other_l2 * sum_squared_weights(start), rel=1e-6)

    # Cross-checks of the hand formulas with scikit-learn's weighted metrics.
    metrics = pytest.importorskip("sklearn.metrics")
    z = numpy_logits(start, ("tanh", "relu"), X)
    if spec == "softmax_ce":
        p = np.exp(z - np.max(z, axis=1, keepdims=True))
        p /= np.sum(p, axis=1, keepdims=True)
        reference = metrics.log_loss(y, p, sample_weight=weights, labels=[0, 1, 2])
    elif spec == "sigmoid_bce":
        p = 1.0 / (1.0 + np.exp(-z[:, 0]))
        reference = metrics.log_loss(y, p, sample_weight=weights)
    elif spec == "mse":
        reference = metrics.mean_squared_error(Y, z, sample_weight=weights)
    elif spec == "poisson":
        reference = 0.5 * metrics.mean_poisson_deviance(y, np.exp(z[:, 0]),
                                                        sample_weight=weights)
    else:
        reference = None
    if reference is not None:
        assert data_loss == pytest.approx(reference, rel=1e-10)


LOSS_SPECS = {"mse": "mse", "half_squared_error": "half_squared_error", "poisson": "poisson",
              "binary_crossentropy": "sigmoid_bce", "categorical_crossentropy": "softmax_ce"}


def test_weighted_value_is_weighted_mean_of_per_sample(backend):
    """Every loss: ``per_sample`` averages to ``value``; ``weighted_value`` weights it."""
    xp = backend.xp
    rng = np.random.default_rng(11)
    n, k = 7, 3
    z_host = rng.normal(size=(n, k))
    r_host = rng.uniform(0.1, 2.0, size=n)
    r_host *= n / r_host.sum()
    targets = {"regression": rng.normal(size=(n, k)),
               "binary": rng.integers(0, 2, size=(n, k)).astype(np.float64),
               "multiclass": np.eye(k)[rng.integers(0, k, size=n)]}
    assert set(LOSSES) == set(LOSS_SPECS), "a new loss needs its formula here"
    for name, loss in LOSSES.items():
        y_host = targets[loss.task]
        if name == "poisson":
            y_host = rng.poisson(2.0, size=(n, k)).astype(np.float64)
        activation = mlpx.ACTIVATIONS[loss.output_activation or "identity"]
        y, z = (xp.asarray(a, device=backend.device) for a in (y_host, z_host))
        a = activation.forward(z, xp=xp)
        per_sample = loss.per_sample(y, z, a, xp=xp)
        assert_close(per_sample, numpy_per_sample_loss(LOSS_SPECS[name], z_host, y_host),
                     backend=backend, dtype=xp.float64, shape=(n,), rtol=1e-12)
        value = loss.value(y, z, a, xp=xp)
        assert_close(value, np.mean(to_numpy(per_sample)), backend=backend, shape=(),
                     rtol=1e-12)
        assert_close(weighted_value(loss, y, z, a, None, xp=xp), value, rtol=0)
        r = xp.asarray(r_host, device=backend.device)
        assert_close(weighted_value(loss, y, z, a, r, xp=xp),
                     np.mean(r_host * to_numpy(per_sample)), backend=backend, shape=(),
                     rtol=1e-12)


# --- 4. gradient checks: alpha_per_sample and the new losses -----------------------------

def with_random_biases(model, seed: int = 12):
    """Nonzero biases (zero ones put relu units on their kink, and hide bias-gradient bugs)."""
    rng = np.random.default_rng(seed)
    params = host_params(model)
    params[1::2] = [rng.normal(scale=0.3, size=b.shape) for b in params[1::2]]
    model.params = params
    return model


@pytest.mark.parametrize("alpha_per_sample", [False, True])
def test_alpha_per_sample_gradcheck_loss_and_grads(backend, alpha_per_sample):
    X, y = spec_data("softmax_ce", n_samples=9, seed=3)
    alpha = 0.3
    model = with_random_biases(build("softmax_ce", backend=backend, alpha=alpha,
                                     alpha_per_sample=alpha_per_sample, hidden=(5,),
                                     hidden_activations=("tanh",)))
    errors = mlpx.gradcheck(model, X, y)
    assert len(errors) == 4 and max(errors) < 1e-6, errors

    params = host_params(model)
    l2 = alpha / len(X) if alpha_per_sample else alpha
    z = numpy_logits(params, ("tanh",), X)
    data_loss = np.mean(numpy_per_sample_loss("softmax_ce", z, target_matrix("softmax_ce", y)))
    expected = data_loss + 0.5 * l2 * sum_squared_weights(params)
    assert model.evaluate(X, y)["loss"] == pytest.approx(expected, rel=1e-12)
    loss, grads = model.loss_and_grads(X, y)
    assert loss == pytest.approx(expected, rel=1e-12)

    # The penalty's gradient is exactly l2 * W on the weights and nothing on the biases.
    unpenalised = build("softmax_ce", backend=backend, hidden=(5,), hidden_activations=("tanh",))
    unpenalised.params = params
    _, plain_grads = unpenalised.loss_and_grads(X, y)
    for i, (grad, plain, param) in enumerate(zip(grads, plain_grads, params)):
        expected_grad = to_numpy(plain) + (l2 * param if i % 2 == 0 else 0.0)
        assert_close(grad, expected_grad, backend=backend, dtype=model.dtype,
                     shape=param.shape, rtol=1e-12, atol=1e-15)


GRADCHECK_CASES = {
    "half_squared_error-identity": ("identity", "half_squared_error", "regression"),
    "half_squared_error-exp": ("exp", "half_squared_error", "regression"),
    "poisson-exp": ("exp", "poisson", "counts"),
    "poisson-default-loss": ("exp", None, "counts"),
    "poisson-alpha_per_sample": ("exp", "poisson", "counts"),
}


@pytest.mark.parametrize("case", list(GRADCHECK_CASES), ids=list(GRADCHECK_CASES))
def test_gradcheck_new_losses(backend, case):
    output, loss, kind = GRADCHECK_CASES[case]
    X, y = make_data(kind, 2, n_samples=8, seed=4)
    per_sample = case.endswith("alpha_per_sample")
    model = with_random_biases(mlpx.MLP(
        [N_FEATURES, 5, 2], ["tanh", output], loss=loss, backend=backend, dtype="float32",
        seed=2, alpha=0.2 if per_sample else 0.0, alpha_per_sample=per_sample))
    assert model.loss.name == (loss or "poisson")
    errors = mlpx.gradcheck(model, X, y)  # runs on a float64 copy of the model
    assert len(errors) == 4 and max(errors) < 1e-6, errors
    assert model.dtype == backend.xp.float32  # gradcheck left the model alone

    # The loss value (``Loss.value``, not the per-sample path) against the formula.
    double = mlpx.MLP([N_FEATURES, 5, 2], ["tanh", output], loss=loss, backend=backend,
                      dtype="float64", alpha=0.2 if per_sample else 0.0,
                      alpha_per_sample=per_sample)
    double.params = host_params(model)
    params = host_params(double)
    z = numpy_logits(params, ("tanh",), X)
    a = np.exp(z) if output == "exp" else z
    Y = np.asarray(y, dtype=np.float64)
    if model.loss.name == "half_squared_error":
        data_loss = 0.5 * np.sum((a - Y) ** 2) / len(X)
    else:
        data_loss = np.sum(a - Y * z + xlogy(Y, Y) - Y) / len(X)
    penalty = 0.5 * 0.2 / len(X) * sum_squared_weights(params) if per_sample else 0.0
    assert double.evaluate(X, y)["loss"] == pytest.approx(data_loss + penalty, rel=1e-12)


def test_poisson_needs_nonnegative_targets():
    model = build("poisson")
    X, y = spec_data("poisson")
    start = host_params(model)
    y_negative = y.copy()
    y_negative[3] = -1.0
    with pytest.raises(MlpxValueError, match="poisson"):
        model.fit(X, y_negative, epochs=1)
    with pytest.raises(MlpxValueError, match="poisson"):
        model.fit(X, y, epochs=1, validation_data=(X, y_negative))
    assert_params_unchanged(model, start)
    assert model.history_ is None


# --- 5. reset_optimizer=False continues the previous fit ---------------------------------

CONTINUE_OPTIMIZERS = {
    "adam": lambda: optim.Adam(learning_rate=0.01),
    "sgd_momentum": lambda: optim.SGD(learning_rate=0.05, momentum=0.9),
}


@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("name", list(CONTINUE_OPTIMIZERS))
def test_reset_optimizer_false_continues_the_fit(backend, name, shuffle):
    X, y = spec_data("softmax_ce")
    weights = positive_weights(len(X))
    make_optimizer = CONTINUE_OPTIMIZERS[name]
    fit = dict(batch_size=16, shuffle=shuffle, sample_weight=weights)
    n_batches = -(-np.count_nonzero(weights) // 16)

    once = build("softmax_ce", backend=backend, alpha=0.01)
    once_history = once.fit(X, y, epochs=5, optimizer=make_optimizer(), **fit)
    assert once.optimizer_state_["step"] == 5 * n_batches

    twice = build("softmax_ce", backend=backend, alpha=0.01)
    first_history = twice.fit(X, y, epochs=2, optimizer=make_optimizer(), **fit)
    first_state = twice.optimizer_state_
    assert first_state["step"] == 2 * n_batches
    first_slots = {slot: [np.array(to_numpy(a), copy=True) for a in first_state[slot]]
                   for slot in twice.optimizer_.slots}
    assert first_slots and all(np.any(a != 0) for arrays in first_slots.values()
                               for a in arrays)
    second_history = twice.fit(X, y, epochs=3, optimizer=make_optimizer(),
                               reset_optimizer=False, **fit)
    assert twice.optimizer_state_["step"] == 5 * n_batches

    exact = backend.name == "numpy"
    assert_same_params(twice, once, exact=exact)
    np.testing.assert_allclose(first_history["loss"] + second_history["loss"],
                               once_history["loss"], rtol=0 if exact else 1e-12)
    for slot in twice.optimizer_.slots:
        for a, b in zip(twice.optimizer_state_[slot], once.optimizer_state_[slot]):
            assert_close(a, b, backend=backend, rtol=0 if exact else 1e-12, atol=1e-15)
    # The second fit worked on a copy: the first fit's state is as it was.
    assert first_state["step"] == 2 * n_batches
    for slot, arrays in first_slots.items():
        for kept, before in zip(first_state[slot], arrays):
            np.testing.assert_array_equal(to_numpy(kept), before)

    # With the default reset_optimizer=True the second fit starts a fresh state.
    reset = build("softmax_ce", backend=backend, alpha=0.01)
    reset.fit(X, y, epochs=2, optimizer=make_optimizer(), **fit)
    reset.fit(X, y, epochs=3, optimizer=make_optimizer(), **fit)
    assert reset.optimizer_state_["step"] == 3 * n_batches
    assert max_param_difference(reset, once) > 1e-6


def model_snapshot(model) -> dict:
    """What a refused fit must leave as it was."""
    state = model.optimizer_state_
    return {
        "params": host_params(model),
        "optimizer_": model.optimizer_,
        "optimizer_state_": state,
        "state_values": None if state is None else {
            key: [np.array(to_numpy(a), copy=True) for a in value]
            if isinstance(value, list) else value for key, value in state.items()},
        "history_": model.history_,
        "classes_": None if model.classes_ is None else np.array(model.classes_, copy=True),
        "has_seen_labels": model._has_seen_labels,
        "rng": copy.deepcopy(model.shuffle_rng.bit_generator.state),
    }


def assert_params_unchanged(model, start: list) -> None:
    for i, (now, before) in enumerate(zip(host_params(model), start, strict=True)):
        np.testing.assert_array_equal(now, before, err_msg=f"params[{i}] changed")


def assert_untouched(model, snapshot: dict) -> None:
    assert_params_unchanged(model, snapshot["params"])
    assert model.optimizer_ is snapshot["optimizer_"]
    assert model.optimizer_state_ is snapshot["optimizer_state_"]
    if snapshot["state_values"] is not None:
        for key, value in snapshot["state_values"].items():
            if isinstance(value, list):
                for now, before in zip(model.optimizer_state_[key], value):
                    np.testing.assert_array_equal(to_numpy(now), before)
            else:
                assert model.optimizer_state_[key] == value
    assert model.history_ is snapshot["history_"]
    if snapshot["classes_"] is None:
        assert model.classes_ is None
    else:
        np.testing.assert_array_equal(model.classes_, snapshot["classes_"])
    assert model._has_seen_labels == snapshot["has_seen_labels"]
    assert model.shuffle_rng.bit_generator.state == snapshot["rng"]


def test_reset_optimizer_false_needs_a_previous_fit():
    X, y = spec_data("softmax_ce")
    model = build("softmax_ce")
    snapshot = model_snapshot(model)
    with pytest.raises(MlpxValueError, match="reset_optimizer=False"):
        model.fit(X, y, epochs=1, reset_optimizer=False)
    assert_untouched(model, snapshot)
    assert model.optimizer_state_ is None and model.history_ is None


@pytest.mark.parametrize("first,second", [
    ("adam", "sgd"),
    ("adam", "rmsprop"),
    ("adam", "adamw"),
    ("sgd", optim.SGD(learning_rate=0.01, momentum=0.9)),
    (optim.SGD(learning_rate=0.01, momentum=0.9), "sgd"),
], ids=["adam-sgd", "adam-rmsprop", "adam-adamw", "sgd-momentum", "momentum-sgd"])
def test_reset_optimizer_false_refuses_another_optimizer(first, second):
    X, y = spec_data("softmax_ce")
    model = build("softmax_ce")
    model.fit(X, y, epochs=1, optimizer=first)
    snapshot = model_snapshot(model)
    with pytest.raises(MlpxValueError, match="reset_optimizer"):
        model.fit(X, y, epochs=1, optimizer=second, reset_optimizer=False)
    assert_untouched(model, snapshot)
    # The same kind continues.
    model.fit(X, y, epochs=1, optimizer=copy.deepcopy(first), reset_optimizer=False)
    assert model.optimizer_state_["step"] == 2 * snapshot["optimizer_state_"]["step"]


@pytest.mark.parametrize("value", ["no", None, 0, 1.0, [False]])
def test_reset_optimizer_must_be_a_bool(value):
    X, y = spec_data("softmax_ce")
    model = build("softmax_ce")
    model.fit(X, y, epochs=1)
    snapshot = model_snapshot(model)
    with pytest.raises(MlpxTypeError, match="reset_optimizer"):
        model.fit(X, y, epochs=1, reset_optimizer=value)
    assert_untouched(model, snapshot)
    model.fit(X, y, epochs=1, reset_optimizer=np.False_)  # NumPy bools are bools
    assert model.optimizer_state_["step"] == 2 * snapshot["optimizer_state_"]["step"]


# --- 6. pickling --------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_pickle_round_trip(backend, dtype):
    xp = backend.xp
    X, y = spec_data("softmax_ce")
    fit = dict(batch_size=16, optimizer="adam", learning_rate=0.01,
               sample_weight=positive_weights(len(X)))
    model = build("softmax_ce", backend=backend, dtype=dtype, alpha=0.01,
                  alpha_per_sample=True)
    model.fit(X, y, epochs=2, **fit)
    loaded = pickle.loads(pickle.dumps(model))

    assert loaded is not model
    assert loaded.backend.name == model.backend.name == backend.name
    assert loaded.backend.device == model.backend.device
    assert loaded.xp is model.xp
    assert loaded.dtype == model.dtype == getattr(xp, dtype)
    assert (loaded.alpha, loaded.alpha_per_sample, loaded.loss) == (0.01, True, model.loss)
    for p, q in zip(loaded.params, model.params):
        assert_close(p, q, backend=backend, dtype=model.dtype, shape=q.shape, rtol=0)
    np.testing.assert_array_equal(to_numpy(loaded.predict_proba(X)),
                                  to_numpy(model.predict_proba(X)))
    np.testing.assert_array_equal(to_numpy(loaded.predict(X)), to_numpy(model.predict(X)))
    np.testing.assert_array_equal(loaded.classes_, model.classes_)
    assert loaded.history_.history["loss"] == model.history_.history["loss"]

    assert type(loaded.optimizer_) is type(model.optimizer_)
    assert set(loaded.optimizer_state_) == set(model.optimizer_state_)
    assert loaded.optimizer_state_["step"] == model.optimizer_state_["step"] > 0
    for slot in ("m", "v"):
        for a, b in zip(loaded.optimizer_state_[slot], model.optimizer_state_[slot],
                        strict=True):
            assert_close(a, b, backend=backend, dtype=b.dtype, shape=b.shape, rtol=0)
    assert loaded.shuffle_rng.bit_generator.state == model.shuffle_rng.bit_generator.state

    # Continuing the optimizer (and the shuffling) after unpickling is continuing the original.
    loaded_history = loaded.fit(X, y, epochs=2, reset_optimizer=False, **fit)
    model_history = model.fit(X, y, epochs=2, reset_optimizer=False, **fit)
    exact = backend.name == "numpy"
    assert_same_params(loaded, model, exact=exact)
    assert_same_history(loaded_history, model_history, exact=exact)
    assert loaded.optimizer_state_["step"] == model.optimizer_state_["step"]
    assert loaded.dtype == model.dtype


def test_pickle_unfitted_model(backend):
    X, y = spec_data("poisson")
    model = build("poisson", backend=backend)
    loaded = pickle.loads(pickle.dumps(model))
    assert loaded.optimizer_state_ is None and loaded.history_ is None
    assert loaded.backend.name == backend.name and loaded.dtype == model.dtype
    assert loaded.loss.name == "poisson" and loaded.activations == model.activations
    np.testing.assert_array_equal(to_numpy(loaded.predict(X)), to_numpy(model.predict(X)))
    with pytest.raises(MlpxValueError, match="reset_optimizer"):
        loaded.fit(X, y, epochs=1, reset_optimizer=False)
    fit = dict(epochs=2, batch_size=16, optimizer="adam", learning_rate=0.01)
    loaded.fit(X, y, **fit)
    model.fit(X, y, **fit)
    assert_same_params(loaded, model, exact=backend.name == "numpy")
    # deepcopy goes through the same state.
    clone = copy.deepcopy(model)
    assert clone.backend.name == backend.name
    assert_same_params(clone, model, exact=True)


# --- 7. bad weights are refused before anything changes ------------------------------------

N_BAD = 20
BAD_WEIGHTS = {
    "sample_weight-too_short": ("sigmoid_bce", dict(sample_weight=[1.0, 2.0]),
                                MlpxValueError, "sample_weight"),
    "sample_weight-too_long": ("sigmoid_bce", dict(sample_weight=np.ones(N_BAD + 1)),
                               MlpxValueError, "sample_weight"),
    "sample_weight-2d": ("sigmoid_bce", dict(sample_weight=np.ones((N_BAD, 1))),
                         MlpxValueError, "sample_weight"),
    "sample_weight-negative": ("mse", dict(sample_weight=np.r_[-1.0, np.ones(N_BAD - 1)]),
                               MlpxValueError, "sample_weight"),
    "sample_weight-nan": ("mse", dict(sample_weight=np.r_[np.nan, np.ones(N_BAD - 1)]),
                          MlpxValueError, "sample_weight"),
    "sample_weight-inf": ("poisson", dict(sample_weight=np.r_[np.ones(N_BAD - 1), np.inf]),
                          MlpxValueError, "sample_weight"),
    "sample_weight-all_zero": ("softmax_ce", dict(sample_weight=np.zeros(N_BAD)),
                               MlpxValueError, "sample_weight"),
    "sample_weight-scalar_zero": ("softmax_ce", dict(sample_weight=0.0), MlpxValueError,
                                  "sample_weight"),
    "sample_weight-scalar_negative": ("softmax_ce", dict(sample_weight=-2), MlpxValueError,
                                      "sample_weight"),
    "sample_weight-strings": ("sigmoid_bce", dict(sample_weight=["1"] * N_BAD), MlpxTypeError,
                              "sample_weight"),
    "sample_weight-complex": ("sigmoid_bce", dict(sample_weight=np.ones(N_BAD, complex)),
                              MlpxTypeError, "sample_weight"),
    "sample_weight-none_entries": ("mse", dict(sample_weight=[None] * N_BAD), MlpxTypeError,
                                   "sample_weight"),
    "sample_weight-object": ("mse", dict(sample_weight=object()), MlpxTypeError,
                             "sample_weight"),
    "class_weight-unknown_label": ("sigmoid_bce", dict(class_weight={2: 1.0}),
                                   MlpxValueError, "class_weight"),
    "class_weight-negative": ("softmax_ce", dict(class_weight={1: -0.5}), MlpxValueError,
                              "class_weight"),
    "class_weight-nan": ("softmax_ce", dict(class_weight={1: float("nan")}), MlpxValueError,
                         "class_weight"),
    "class_weight-inf": ("softmax_ce", dict(class_weight={0: np.inf}), MlpxValueError,
                         "class_weight"),
    "class_weight-text_weight": ("softmax_ce", dict(class_weight={0: "2"}),
                                 (MlpxValueError, MlpxTypeError), "class_weight"),
    "class_weight-unknown_string": ("softmax_ce", dict(class_weight="balance"),
                                    MlpxValueError, "class_weight"),
    "class_weight-list": ("softmax_ce", dict(class_weight=[1.0, 2.0, 3.0]), MlpxTypeError,
                          "class_weight"),
    "class_weight-regression": ("mse", dict(class_weight="balanced"), MlpxValueError,
                                "class_weight"),
    "class_weight-regression_dict": ("poisson", dict(class_weight={0: 2.0}), MlpxValueError,
                                     "class_weight"),
    "class_weight-multilabel": ("multilabel_bce", dict(class_weight="balanced"),
                                MlpxValueError, "class_weight"),
    "class_weight-bad_with_good_sample_weight": (
        "sigmoid_bce", dict(class_weight={7: 1.0}, sample_weight=np.ones(N_BAD)),
        MlpxValueError, "class_weight"),
    "sample_weight-bad_with_good_class_weight": (
        "sigmoid_bce", dict(class_weight="balanced", sample_weight=np.ones(N_BAD - 1)),
        MlpxValueError, "sample_weight"),
}
BAD_WEIGHTS_ZERO_PRODUCT = {
    "class_weight-every_class_zero": ("sigmoid_bce", dict(class_weight={0: 0.0, 1: 0}),
                                      MlpxValueError, "class_weight|sample_weight"),
    "class_weight-zero_where_sample_weight_is_not": (
        "sigmoid_bce", dict(class_weight={0: 0.0}, sample_weight="label-1-rows-zero"),
        MlpxValueError, "class_weight|sample_weight"),
}


@pytest.mark.parametrize("fitted", [False, True], ids=["unfitted", "fitted"])
@pytest.mark.parametrize("case", [
    *(pytest.param(BAD_WEIGHTS[name], id=name) for name in BAD_WEIGHTS),
    *(pytest.param(BAD_WEIGHTS_ZERO_PRODUCT[name], id=name) for name in BAD_WEIGHTS_ZERO_PRODUCT),
])
def test_bad_weights_are_refused_before_anything_changes(case, fitted):
    spec, kwargs, error, name = case
    X, y = spec_data(spec, n_samples=N_BAD)
    if isinstance(kwargs.get("sample_weight"), str):  # "label-1-rows-zero"
        kwargs = dict(kwargs, sample_weight=(np.asarray(y) == 0).astype(np.float64))
    model = build(spec)
    if fitted:
        model.fit(X, y, epochs=1, batch_size=8, optimizer="adam")
    snapshot = model_snapshot(model)
    with pytest.raises(error, match=name):
        model.fit(X, y, epochs=2, batch_size=8, **kwargs)
    assert_untouched(model, snapshot)


@pytest.mark.parametrize("scale", [
    1e-30,
    1e-46,
    1e39,
])
def test_weights_scale_does_not_matter_in_float32(backend, scale):
    """The weighted mean sum(w l) / sum(w) is the same for w and c * w, for any valid c."""
    X, y = spec_data("sigmoid_bce", dtype="float32")
    weights = positive_weights(len(X))
    fit = dict(epochs=2, batch_size=16, optimizer="adam", learning_rate=0.01)
    reference = build("sigmoid_bce", backend=backend, dtype="float32")
    reference.fit(X, y, sample_weight=weights, **fit)
    scaled = build("sigmoid_bce", backend=backend, dtype="float32")
    with np.errstate(all="ignore"):
        scaled.fit(X, y, sample_weight=scale * weights, **fit)
    assert_same_params(scaled, reference, exact=False, rtol=1e-4, atol=1e-6)


def test_optimizer_state_is_finite_after_a_non_finite_epoch():
    X, y = spec_data("mse")
    model = build("mse")
    make_optimizer = CONTINUE_OPTIMIZERS["sgd_momentum"]
    model.fit(X, y, epochs=1, batch_size=16, optimizer=make_optimizer())
    steps_before = model.optimizer_state_["step"]
    with pytest.raises(mlpx.NonFiniteLossError), np.errstate(all="ignore"):
        model.fit(X * 1e6, y * 1e6, epochs=1, batch_size=16, optimizer=make_optimizer(),
                  learning_rate=1e30, reset_optimizer=False)
    assert all(np.all(np.isfinite(p)) for p in host_params(model))
    # The state that goes with the weights the model kept: finite, and its step count.
    assert all(np.all(np.isfinite(to_numpy(v))) for v in model.optimizer_state_["velocity"])
    assert model.optimizer_state_["step"] == steps_before  # the failing epoch is undone
    model.fit(X, y, epochs=1, batch_size=16, optimizer=make_optimizer(), learning_rate=1e-3,
              reset_optimizer=False)
