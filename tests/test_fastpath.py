"""The NumPy fast path gives the same numbers as the generic array-API reference.

``mlpx._numpy_fastpath.NumpyEpochRunner`` replaces ``mlpx.train.EpochRunner`` whenever the
model's backend is NumPy. The design rule is that every fast path (in-place activation
kernels, fused output gradients, the transposed output layer, chunked gathers of X, the
``FlatStep`` optimizer kernels, the softmax cross-entropy epoch logs) is proven here to give
the same numbers as the generic code: each case trains the same model twice from the same
seed, once with the default runner and once with the generic runner forced, and compares
the final parameters and every History key of every epoch. Every test runs twice: with the
compiled kernels of ``mlpx._kernels`` (where built) and with the NumPy kernels alone.

The cases are a covering design, not the cartesian product: each axis (hidden activation,
output and loss, optimizer, L2, batch size and shuffling, input chunks, depth, dtype) is
varied one at a time around a base configuration, plus a few combined cases. None of these
tests takes the ``backend`` fixture: they are NumPy-only and run in the numpy session.
"""

from __future__ import annotations

import math
import tracemalloc
from contextlib import contextmanager

import numpy as np
import pytest

import mlpx
import mlpx.train
from mlpx import _compiled, optim
from mlpx import _numpy_fastpath as fastpath
from mlpx._numpy_fastpath import NumpyEpochRunner
from mlpx._numpy_optim import (
    _AdamStep,
    _CompiledAdamStep,
    _CompiledSGDStep,
    _CompiledSquareAverageStep,
    _MomentumStep,
    _SGDStep,
    _SquareAverageStep,
    flat_step,
)
from mlpx.train import EpochRunner

N_SAMPLES, N_FEATURES = 60, 4

# float64: both runners do the same math up to the order of a few sums (GEMM blocking,
# [x, 1] @ [W; b] versus x @ W + b), so they agree to a few ulp compounded over the steps.
# float32: the same reordering costs ~1e-7 relative per operation, and training compounds it
# over dozens of steps; 1e-4 relative still catches any wrong formula or missed step, which
# moves the numbers by far more.
TOLERANCES = {
    "float64": {"rtol": 1e-10, "atol": 1e-12},
    "float32": {"rtol": 1e-4, "atol": 1e-6},
}


class RebindingSGD(optim.Optimizer):
    """A user optimizer that implements only ``_apply`` and rebinds (out of place)."""

    default_learning_rate = 0.05

    def _apply(self, params, grads, state, lr, xp):
        for i, grad in enumerate(grads):
            params[i] = params[i] - lr * grad


# --- data, models and the two runs -----------------------------------------------------


def make_data(targets: str, n_out: int, *, dtype: str = "float64", seed: int = 0,
              n_samples: int = N_SAMPLES, n_features: int = N_FEATURES):
    """Standardised X and targets of kind ``targets`` for an output of ``n_out`` units."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_samples, n_features)).astype(dtype)
    signal = X @ rng.normal(size=(n_features, n_out))
    if targets == "labels":  # integer class indices, every class present
        y = np.argmax(signal + rng.normal(size=signal.shape), axis=1)
        y[:n_out] = np.arange(n_out)
    elif targets == "proba":  # probability rows, not one-hot
        y = rng.dirichlet(np.ones(n_out), size=n_samples)
    elif targets == "proba_exact":  # probability rows whose sums are exactly 1
        y = 0.125 + 0.625 * np.eye(n_out)[rng.integers(0, n_out, n_samples)]
    elif targets == "label_smoothing":  # 0.1 smoothing: rows sum exactly to 1 in float32
        y = 0.1 + 0.7 * np.eye(n_out)[rng.integers(0, n_out, n_samples)]
    elif targets == "binary":
        y = (signal[:, 0] + 0.5 * rng.normal(size=n_samples) > 0).astype(np.int64)
    elif targets == "multilabel":
        y = (signal + 0.5 * rng.normal(size=signal.shape) > 0).astype(np.int64)
    elif targets == "regression":
        y = signal + 0.1 * rng.normal(size=signal.shape)
    elif targets == "tanh_range":
        y = np.tanh(signal)
    elif targets == "unit_range":
        y = 1.0 / (1.0 + np.exp(-signal))
    else:
        raise AssertionError(targets)
    if targets in ("regression", "tanh_range", "unit_range") and n_out == 1:
        y = y[:, 0]
    return X, y


BASE = {
    "hidden_sizes": (6, 5),
    "hidden": ("tanh", "relu"),
    "output": "softmax",
    "loss": None,
    "targets": "labels",
    "n_out": 3,
    "dtype": "float64",
    "alpha": 0.0,
    "optimizer": "adam",
    "learning_rate": 0.01,
    "batch_size": 16,
    "shuffle": True,
    "epochs": 3,
    "chunk_batches": None,
    "validation": False,
    "tol": None,
    "callbacks": None,
    "fits": 1,
    "x_scale": 1.0,
}


def config(**overrides) -> dict:
    unknown = set(overrides) - set(BASE)
    assert not unknown, unknown
    cfg = {**BASE, **overrides}
    if isinstance(cfg["hidden"], str):
        cfg["hidden"] = (cfg["hidden"],) * len(cfg["hidden_sizes"])
    return cfg


def build_model(cfg) -> mlpx.MLP:
    sizes = [N_FEATURES, *cfg["hidden_sizes"], cfg["n_out"]]
    return mlpx.MLP(sizes, [*cfg["hidden"], cfg["output"]], loss=cfg["loss"], seed=7,
                    dtype=cfg["dtype"], alpha=cfg["alpha"])


def fit_kwargs(cfg, X, y) -> dict:
    """Fresh fit arguments (optimizer, schedule and callbacks built anew for each run)."""
    fresh = [("optimizer", cfg["optimizer"]), ("learning_rate", cfg["learning_rate"]),
             ("callbacks", cfg["callbacks"])]
    kwargs = {key: value() if callable(value) else value for key, value in fresh}
    if cfg["validation"]:
        kwargs["validation_data"] = (X[: len(X) // 3], y[: len(y) // 3])
    return dict(kwargs, epochs=cfg["epochs"], batch_size=cfg["batch_size"],
                shuffle=cfg["shuffle"], tol=cfg["tol"])


@contextmanager
def spy_fast_path(monkeypatch):
    """Record every runner ``fit`` makes and count the fast path's ``run_epoch`` calls."""
    record = {"runners": [], "epochs": 0}
    make = mlpx.train.make_epoch_runner
    run_epoch = NumpyEpochRunner.run_epoch

    def spy_make(*args, **kwargs):
        runner = make(*args, **kwargs)
        record["runners"].append(runner)
        return runner

    def spy_run_epoch(self, order, lr):
        record["epochs"] += 1
        return run_epoch(self, order, lr)

    with monkeypatch.context() as patch:
        patch.setattr(mlpx.train, "make_epoch_runner", spy_make)
        patch.setattr(NumpyEpochRunner, "run_epoch", spy_run_epoch)
        yield record


@contextmanager
def generic_runner(monkeypatch):
    """Force the generic array-API runner for the fits inside (and check that it ran)."""
    runners = []

    def make_generic(*args, **kwargs):
        runners.append(EpochRunner(*args, **kwargs))
        return runners[-1]

    with monkeypatch.context() as patch:
        patch.setattr(mlpx.train, "make_epoch_runner", make_generic)
        yield runners
    assert runners and all(type(runner) is EpochRunner for runner in runners)


def chunk_bytes(cfg, n_samples: int = N_SAMPLES) -> int | None:
    """INPUT_BUFFER_BYTES that makes a chunk of exactly ``chunk_batches`` batches."""
    if cfg["chunk_batches"] is None:
        return None
    batch = n_samples if cfg["batch_size"] is None else min(cfg["batch_size"], n_samples)
    itemsize = np.dtype(cfg["dtype"]).itemsize
    return cfg["chunk_batches"] * batch * (N_FEATURES + 1) * itemsize


def train_both(monkeypatch, cfg):
    """Train the same model with the fast and the generic runner.

    Returns
    -------
    (fast_model, fast_histories, record), (generic_model, generic_histories)
        ``record`` holds the fast path's runners and its number of epochs.
    """
    X, y = make_data(cfg["targets"], cfg["n_out"], dtype=cfg["dtype"])
    X = X * np.asarray(cfg["x_scale"], dtype=X.dtype)
    fast_model, generic_model = build_model(cfg), build_model(cfg)
    buffer_bytes = chunk_bytes(cfg)
    with monkeypatch.context() as patch:
        if buffer_bytes is not None:
            patch.setattr(NumpyEpochRunner, "INPUT_BUFFER_BYTES", buffer_bytes)
        with spy_fast_path(patch) as record:
            fast = [fast_model.fit(X, y, **fit_kwargs(cfg, X, y)) for _ in range(cfg["fits"])]
    with generic_runner(monkeypatch):
        generic = [generic_model.fit(X, y, **fit_kwargs(cfg, X, y))
                   for _ in range(cfg["fits"])]
    return (fast_model, fast, record), (generic_model, generic)


def assert_same_training(fast_model, fast_histories, generic_model, generic_histories,
                         dtype: str) -> None:
    """Final parameters and every History key of every epoch agree (``time`` aside)."""
    tol = TOLERANCES[dtype]
    for i, (fast_param, generic_param) in enumerate(zip(fast_model.params,
                                                        generic_model.params)):
        assert fast_param.dtype == generic_param.dtype == np.dtype(dtype)
        np.testing.assert_allclose(fast_param, generic_param, **tol,
                                   err_msg=f"params[{i}] differ")
    for fast, generic in zip(fast_histories, generic_histories, strict=True):
        assert fast.epoch == generic.epoch
        assert fast.stop_reason == generic.stop_reason
        assert set(fast.history) == set(generic.history)
        for key in fast.history:
            if key == "time":
                continue
            np.testing.assert_allclose(fast[key], generic[key], **tol,
                                       err_msg=f"History[{key!r}] differs")


# --- which kernels a case should exercise ----------------------------------------------

@pytest.fixture(autouse=True, params=["compiled", "numpy"])
def kernels_mode(request, monkeypatch):
    """Every test twice: with the compiled kernels (where built) and with NumPy's only."""
    if request.param == "compiled" and _compiled.kernels is None:
        pytest.skip("mlpx._kernels is not built here")
    if request.param == "numpy":
        monkeypatch.setattr(_compiled, "kernels", None)
    return request.param


def expected_activation_kernel(name: str):
    """The activation kernel the fast path should pick for a hidden layer's ``name``."""
    if _compiled.kernels is not None and name in fastpath._COMPILED_ACTIVATIONS:
        return fastpath._COMPILED_ACTIVATIONS[name]
    return {"identity": fastpath._Identity, "relu": fastpath._Relu, "tanh": fastpath._Tanh,
            "sigmoid": fastpath._Sigmoid, "leaky_relu": fastpath._LeakyRelu,
            "elu": fastpath._Elu, "gelu": fastpath._Gelu,
            "softplus": fastpath._Softplus}.get(name, fastpath._GenericActivation)


def expected_output_gradient(cfg):
    output = cfg["output"]
    if output == "softmax" and cfg["targets"] == "labels":
        if _compiled.kernels is not None:
            return fastpath._CompiledSoftmaxCrossEntropyGradient
        return fastpath._SoftmaxCrossEntropyGradient
    if output == "sigmoid" and cfg["loss"] in (None, "binary_crossentropy"):
        if _compiled.kernels is not None:
            return fastpath._CompiledSigmoidCrossEntropyGradient
        return fastpath._SigmoidCrossEntropyGradient
    if output == "identity":
        return fastpath._SquaredErrorGradient
    return fastpath._OutputGradient  # probability rows, tanh/sigmoid + mse


def expected_step(optimizer):
    if type(optimizer) is optim.SGD:
        if _compiled.kernels is not None:
            return _CompiledSGDStep
        return _MomentumStep if optimizer.momentum else _SGDStep
    if type(optimizer) in (optim.Adam, optim.AdamW):
        return _AdamStep if _compiled.kernels is None else _CompiledAdamStep
    if type(optimizer) in (optim.RMSprop, optim.Adagrad):
        return _SquareAverageStep if _compiled.kernels is None else _CompiledSquareAverageStep
    return type(None)  # subclasses, user optimizers: Optimizer.update_


def assert_kernels(cfg, record) -> None:
    """The fast path ran, every epoch, with the kernels this case is meant to exercise."""
    runners = record["runners"]
    assert len(runners) == cfg["fits"]
    assert all(type(runner) is NumpyEpochRunner for runner in runners)
    assert record["epochs"] >= cfg["fits"]
    runner = runners[-1]
    for _, plan, *_ in runner.batches:
        kinds = [type(layer.activation) for layer in plan.hidden]
        assert kinds == [expected_activation_kernel(name) for name in cfg["hidden"]]
        assert type(plan.output_gradient) is expected_output_gradient(cfg)
    assert type(runner.optimizer_step) is expected_step(runner.optimizer)
    if cfg["chunk_batches"] is not None:
        batch = min(cfg["batch_size"] or N_SAMPLES, N_SAMPLES)
        assert runner.chunk_rows == cfg["chunk_batches"] * batch
        gathers = sum(chunk is not None for chunk, *_ in runner.batches)
        assert gathers == math.ceil(N_SAMPLES / runner.chunk_rows) > 1


# --- the covering design -----------------------------------------------------------------

CASES = [
    pytest.param(config(), id="base"),
    # 1. hidden activations: in-place kernels, then the generic fallback
    *[pytest.param(config(hidden=name), id=f"hidden-{name}")
      for name in ("identity", "relu", "tanh", "sigmoid", "leaky_relu", "elu", "softplus",
                   "gelu")],
    # 2. output layer and loss
    pytest.param(config(targets="proba"), id="softmax-ce-probability-rows"),
    pytest.param(config(n_out=40, batch_size=9), id="softmax-40-classes"),  # argmax of > 32
    pytest.param(config(output="sigmoid", targets="binary", n_out=1), id="sigmoid-bce-1"),
    pytest.param(config(output="sigmoid", targets="multilabel", n_out=3),
                 id="sigmoid-bce-multilabel"),
    pytest.param(config(output="identity", targets="regression", n_out=1), id="identity-mse-1"),
    pytest.param(config(output="identity", targets="regression", n_out=2), id="identity-mse-2"),
    pytest.param(config(output="tanh", targets="tanh_range", n_out=2), id="tanh-mse"),
    pytest.param(config(output="sigmoid", loss="mse", targets="unit_range", n_out=2),
                 id="sigmoid-mse"),
    # 3. optimizers
    pytest.param(config(optimizer="sgd", learning_rate=0.1), id="sgd"),
    pytest.param(config(optimizer=lambda: optim.SGD(momentum=0.9), learning_rate=0.05),
                 id="sgd-momentum"),
    pytest.param(config(optimizer=lambda: optim.SGD(momentum=0.9, nesterov=True),
                        learning_rate=0.05), id="sgd-nesterov"),
    pytest.param(config(optimizer="adamw"), id="adamw"),
    pytest.param(config(optimizer="rmsprop"), id="rmsprop"),
    pytest.param(config(optimizer="adagrad", learning_rate=0.05), id="adagrad"),
    pytest.param(config(optimizer="sgd", epochs=5,
                        learning_rate=lambda: optim.StepDecay(0.2, step_size=2, gamma=0.5)),
                 id="sgd-step-decay"),
    pytest.param(config(optimizer=RebindingSGD, learning_rate=0.1), id="custom-rebinding"),
    # 4. L2 penalty
    pytest.param(config(alpha=1e-2), id="alpha"),
    pytest.param(config(alpha=0.1, optimizer="sgd", learning_rate=0.1, output="identity",
                        targets="regression", n_out=1), id="alpha-sgd-regression"),
    # 5. batch sizes and shuffling
    pytest.param(config(batch_size=None), id="full-batch"),
    pytest.param(config(batch_size=1, epochs=2), id="batch-1"),
    pytest.param(config(batch_size=7), id="batch-7-uneven"),
    pytest.param(config(batch_size=7, shuffle=False), id="batch-7-no-shuffle"),
    pytest.param(config(batch_size=N_SAMPLES), id="batch-n"),
    pytest.param(config(batch_size=100, shuffle=False), id="batch-over-n"),
    # 6. X gathered in several chunks of 1 or 2 batches
    pytest.param(config(batch_size=7, chunk_batches=1), id="chunks-of-1-batch"),
    pytest.param(config(batch_size=7, chunk_batches=2), id="chunks-of-2-batches"),
    pytest.param(config(batch_size=16, chunk_batches=2, shuffle=False),
                 id="chunks-of-2-no-shuffle"),
    # 7. depth
    pytest.param(config(hidden_sizes=(), hidden=()), id="no-hidden-layer"),
    pytest.param(config(hidden_sizes=(), hidden=(), output="sigmoid", targets="binary",
                        n_out=1, optimizer="sgd", learning_rate=0.1),
                 id="no-hidden-logistic-regression"),
    pytest.param(config(hidden_sizes=(8, 7, 6, 5), hidden=("relu", "tanh", "sigmoid", "elu")),
                 id="deep"),
    # 8. float32, alone and combined with the other axes
    pytest.param(config(dtype="float32"), id="f32-base"),
    pytest.param(config(dtype="float32", hidden=("sigmoid", "gelu"), output="sigmoid",
                        targets="multilabel", alpha=1e-2,
                        optimizer=lambda: optim.SGD(momentum=0.9, nesterov=True),
                        learning_rate=0.05, batch_size=7, chunk_batches=2),
                 id="f32-multilabel-alpha-nesterov-chunks"),
    pytest.param(config(dtype="float32", output="identity", targets="regression", n_out=2,
                        optimizer="rmsprop", batch_size=None), id="f32-regression-rmsprop"),
    pytest.param(config(dtype="float32", hidden_sizes=(8, 7, 6, 5), hidden="relu",
                        optimizer="adamw", alpha=1e-3, batch_size=7, chunk_batches=1),
                 id="f32-deep-adamw-alpha-chunks"),
    pytest.param(config(dtype="float32", targets="proba", optimizer=RebindingSGD,
                        learning_rate=0.1, hidden=("softplus", "identity")),
                 id="f32-probability-rows-custom-optimizer"),
    # logits in the hundreds: exp overflows in float32 unless shifted (stable formulas)
    pytest.param(config(dtype="float32", hidden="relu", x_scale=60.0, optimizer="sgd",
                        learning_rate=1e-4), id="f32-large-logits-softmax"),
    pytest.param(config(dtype="float32", hidden="relu", x_scale=60.0, output="sigmoid",
                        targets="multilabel", optimizer="sgd", learning_rate=1e-4),
                 id="f32-large-logits-sigmoid-bce"),
    # combined: validation data, tol, early stopping, a second fit (warm start)
    pytest.param(config(validation=True, tol=1e-12, alpha=1e-3, batch_size=7),
                 id="validation-tol"),
    pytest.param(config(validation=True, output="identity", targets="regression", n_out=1,
                        optimizer="sgd", learning_rate=0.05, epochs=12,
                        callbacks=lambda: [mlpx.EarlyStopping(patience=1, min_delta=1e-2)]),
                 id="validation-early-stopping"),
    pytest.param(config(validation=True, output="sigmoid", targets="binary", n_out=1,
                        alpha=1e-3), id="validation-sigmoid"),
    pytest.param(config(validation=True, n_out=40, batch_size=9), id="validation-40-classes"),
    pytest.param(config(validation=True, targets="proba"), id="validation-probability-rows"),
    pytest.param(config(fits=2, batch_size=7, chunk_batches=2, alpha=1e-3), id="warm-start"),
]


@pytest.mark.parametrize("cfg", CASES)
def test_fast_path_matches_generic_runner(monkeypatch, cfg):
    """The fast path ran, with the kernels meant for the case, and gave the generic numbers."""
    (fast_model, fast, record), (generic_model, generic) = train_both(monkeypatch, cfg)
    assert_kernels(cfg, record)
    assert record["epochs"] == sum(len(history.epoch) for history in fast)
    assert_same_training(fast_model, fast, generic_model, generic, cfg["dtype"])


@pytest.mark.parametrize("cfg", [
    pytest.param(config(validation=True, batch_size=3), id="softmax"),
    pytest.param(config(validation=True, output="identity", targets="regression", n_out=2,
                        alpha=1e-3, batch_size=3), id="regression"),
])
def test_validation_in_passes_of_a_few_rows_matches_generic_runner(monkeypatch, cfg):
    """Validation data forwarded 4 rows at a time (the last pass shorter) logs the
    generic val_* values; the passes reuse one buffer and one plan per size."""
    monkeypatch.setattr(fastpath._Validation, "ROWS", 4)
    (fast_model, fast, record), (generic_model, generic) = train_both(monkeypatch, cfg)
    assert "val_loss" in fast[0].history
    assert all(type(value) is float for values in fast[0].history.values() for value in values)
    assert_same_training(fast_model, fast, generic_model, generic, cfg["dtype"])
    validation = record["runners"][-1]._validation
    n_val = N_SAMPLES // 3
    assert [end - begin for begin, end, *_ in validation.passes] == (
        [4] * (n_val // 4) + ([n_val % 4] if n_val % 4 else []))
    assert validation.inputs.shape[0] == validation.Z_T.shape[1] == 4  # memory: one pass


def test_validation_reads_the_weights_a_callback_assigned():
    """A callback that replaces the weights before the validation sees them evaluated."""
    X, y = make_data("labels", 3)
    model = build_model(config())

    class ZeroWeights(mlpx.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.model.params = [np.zeros_like(p) for p in self.model.params]

    history = model.fit(X, y, epochs=1, batch_size=N_SAMPLES, optimizer="sgd",
                        learning_rate=1e-12, validation_data=(X, y),
                        callbacks=[ZeroWeights()])
    assert history["val_loss"][0] == pytest.approx(np.log(3))  # a uniform softmax


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", ["relu", "leaky_relu", "elu", "tanh", "sigmoid", "gelu",
                                  "softplus"])
def test_numpy_activation_kernels_give_the_generic_values(name, dtype):
    """On one layer's buffers, special values included (-0, +-inf, NaN, z = -100 where
    exp(-z) overflows): the generic forward and backward, up to an ulp or two (sigmoid
    uses 1 / (1 + exp(-z)), the generic formula its stable form; gelu and softplus, which
    keep z in a buffer of its own, exactly), the ones and the zero column kept."""
    from mlpx.activations import get_activation

    specials = [0.0, -0.0, np.inf, -np.inf, np.nan, -100.0, 100.0, 1e-30, -1e-30, 1.0, -1.0]
    rng = np.random.default_rng(0)
    z = np.concatenate([specials, rng.normal(size=37) * 3]).astype(dtype).reshape(4, 12)
    grad_a = rng.normal(size=z.shape).astype(dtype)
    activation = get_activation(name)
    kernel = expected_activation_kernel(name)(np.dtype(dtype))
    out_aug = np.ones((4, 13), dtype=dtype)
    out_aug[:, :-1] = z
    grad_full = np.zeros_like(out_aug)
    grad_full[:, :-1] = grad_a
    block = np.zeros((2, 12), dtype=dtype)
    z_aug = None if kernel.in_place else np.zeros_like(out_aug)
    if z_aug is not None:
        z_aug[:, :-1] = z
    layer = fastpath._DenseStep(block, block, None, out_aug, z_aug, grad_full, None, kernel,
                                kernel.scratch(4, 12, np.dtype(dtype)))
    with np.errstate(all="ignore"):
        a = activation.forward(z, xp=np)
        grad_z = activation.backward(z, a, grad_a, xp=np)
        kernel.forward(layer)
        kernel.backward(layer)
    if name in ("gelu", "softplus"):  # the generic operations, one for one
        np.testing.assert_array_equal(layer.a, a)
        np.testing.assert_array_equal(layer.grad_a, grad_z)
    tolerance = {"rtol": 4 * np.finfo(dtype).eps, "atol": 1e-300 if dtype == "float64" else 1e-38}
    np.testing.assert_allclose(layer.a, a, **tolerance)
    np.testing.assert_allclose(layer.grad_a, grad_z, **tolerance)
    assert np.all(layer.ones == 1) and np.all(grad_full[:, -1] == 0)


def test_custom_optimizer_keeps_the_flat_buffer(monkeypatch):
    """An optimizer that rebinds its list entry is copied back into the runner's buffer."""
    X, y = make_data("labels", 3)
    model = build_model(config())
    with spy_fast_path(monkeypatch) as record:
        model.fit(X, y, epochs=2, batch_size=16, optimizer=RebindingSGD(0.1))
    runner = record["runners"][0]
    assert runner.optimizer_step is None
    assert all(np.shares_memory(p, runner.flat) for p in model.params)
    first_block = runner.batches[0][1].hidden[0].block
    np.testing.assert_array_equal(first_block[:-1], model.params[0])
    np.testing.assert_array_equal(first_block[-1], model.params[1])


EXACT_SOFT_TARGETS = [
    pytest.param("proba_exact", "float64", id="f64-rows-0.75-0.125-0.125"),
    pytest.param("label_smoothing", "float32", id="f32-label-smoothing-0.1"),
]


@pytest.mark.parametrize("targets, dtype", EXACT_SOFT_TARGETS)
def test_probability_rows_summing_to_one_train_like_generic(monkeypatch, targets, dtype):
    """Soft targets whose rows sum exactly to 1 get the generic parameters and accuracy."""
    _, y = make_data(targets, 3, dtype=dtype)
    assert np.all(np.sum(y.astype(dtype), axis=1) == 1)  # the case under test
    cfg = config(targets=targets, dtype=dtype)
    (fast_model, fast, _), (generic_model, generic) = train_both(monkeypatch, cfg)
    tol = TOLERANCES[dtype]
    for fast_param, generic_param in zip(fast_model.params, generic_model.params):
        np.testing.assert_allclose(fast_param, generic_param, **tol)
    np.testing.assert_allclose(fast[0]["accuracy"], generic[0]["accuracy"], **tol)


@pytest.mark.parametrize("targets, dtype", EXACT_SOFT_TARGETS)
def test_probability_rows_summing_to_one_log_the_generic_loss(monkeypatch, targets, dtype):
    """The epoch loss of soft targets with exact row sums is the generic cross-entropy."""
    cfg = config(targets=targets, dtype=dtype)
    (_, fast, _), (_, generic) = train_both(monkeypatch, cfg)
    np.testing.assert_allclose(fast[0]["loss"], generic[0]["loss"], **TOLERANCES[dtype])


# --- the optimizer kernels ---------------------------------------------------------------

KERNEL_OPTIMIZERS = [
    pytest.param(lambda: optim.SGD(), id="sgd"),
    pytest.param(lambda: optim.SGD(momentum=0.9), id="momentum"),
    pytest.param(lambda: optim.SGD(momentum=0.5, nesterov=True), id="nesterov"),
    pytest.param(lambda: optim.Adam(), id="adam"),
    pytest.param(lambda: optim.Adam(beta1=0.8, beta2=0.99, epsilon=1e-6), id="adam-custom"),
    pytest.param(lambda: optim.AdamW(weight_decay=0.1), id="adamw"),
    pytest.param(lambda: optim.RMSprop(), id="rmsprop"),
    pytest.param(lambda: optim.RMSprop(rho=0.5, epsilon=1e-3), id="rmsprop-custom"),
    pytest.param(lambda: optim.Adagrad(), id="adagrad"),
    pytest.param(lambda: optim.Adagrad(epsilon=1e-3), id="adagrad-custom"),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("make_optimizer", KERNEL_OPTIMIZERS)
def test_flat_step_is_bitwise_update_(make_optimizer, dtype):
    """Each FlatStep kernel does Optimizer.update_'s float operations: bitwise equal."""
    rng = np.random.default_rng(3)
    optimizer = make_optimizer()
    n = 1000
    start = rng.normal(size=n).astype(dtype)
    kernel_param, reference_param = start.copy(), start.copy()
    kernel_grad = np.zeros_like(start)
    kernel_state, reference_state = optimizer.init([kernel_param]), optimizer.init(
        [reference_param])
    kernel = flat_step(optimizer, kernel_state, kernel_param, kernel_grad)
    assert type(kernel) is expected_step(optimizer)
    for lr in (0.1, 0.03, 1e-3, 0.5, 7e-3):
        # gradients over nine orders of magnitude, so that epsilon and rounding matter
        scale = rng.choice(np.array([1e-6, 1.0, 1e3]), size=n)
        grad = (rng.normal(size=n) * scale).astype(dtype)
        kernel_grad[...] = grad
        kernel(lr)
        optimizer.update_([reference_param], [grad], reference_state, learning_rate=lr, xp=np)
        np.testing.assert_array_equal(kernel_param, reference_param)
        assert kernel_param.dtype == dtype
        assert kernel_state["step"] == reference_state["step"]
        for slot in optimizer.slots:
            np.testing.assert_array_equal(kernel_state[slot][0], reference_state[slot][0],
                                          err_msg=f"state[{slot!r}]")


@pytest.mark.parametrize("optimizer", [RebindingSGD(), type("MySGD", (optim.SGD,), {})(),
                                       type("MyRMSprop", (optim.RMSprop,), {})()],
                         ids=["custom", "sgd-subclass", "rmsprop-subclass"])
def test_flat_step_leaves_other_optimizers_to_update_(optimizer):
    """Optimizers without a kernel (and subclasses, which may change _apply) get None."""
    param = np.zeros(4)
    assert flat_step(optimizer, optimizer.init([param]), param, np.zeros(4)) is None


ALL_OPTIMIZERS = [
    pytest.param(lambda: optim.SGD(), id="sgd"),
    pytest.param(lambda: optim.SGD(momentum=0.9, nesterov=True), id="nesterov"),
    pytest.param(lambda: optim.Adam(), id="adam"),
    pytest.param(lambda: optim.AdamW(), id="adamw"),
    pytest.param(lambda: optim.RMSprop(), id="rmsprop"),
    pytest.param(lambda: optim.Adagrad(), id="adagrad"),
    pytest.param(RebindingSGD, id="custom-rebinding"),
]


@pytest.mark.parametrize("make_optimizer", ALL_OPTIMIZERS)
def test_update_is_functional_and_update_in_place(make_optimizer):
    """update returns new arrays and leaves its inputs alone; update_ writes in place."""
    optimizer = make_optimizer()
    rng = np.random.default_rng(4)
    param, grad = rng.normal(size=6), rng.normal(size=6)
    state = optimizer.init([param])
    param_before = param.copy()
    slots_before = {slot: state[slot][0].copy() for slot in optimizer.slots}

    new_params, new_state = optimizer.update([param], [grad], state, learning_rate=0.1, xp=np)
    assert new_params[0] is not param
    assert not np.array_equal(new_params[0], param_before)
    np.testing.assert_array_equal(param, param_before)
    assert state["step"] == 0 and new_state["step"] == 1
    for slot in optimizer.slots:
        assert new_state[slot][0] is not state[slot][0]
        np.testing.assert_array_equal(state[slot][0], slots_before[slot])

    params = [param]
    slot_arrays = {slot: state[slot][0] for slot in optimizer.slots}
    optimizer.update_(params, [grad], state, learning_rate=0.1, xp=np)
    assert state["step"] == 1
    np.testing.assert_array_equal(params[0], new_params[0])
    if isinstance(optimizer, RebindingSGD):  # out of place: the entry is rebound
        assert params[0] is not param
        np.testing.assert_array_equal(param, param_before)
    else:
        assert params[0] is param
    for slot in optimizer.slots:
        assert state[slot][0] is slot_arrays[slot]
        np.testing.assert_array_equal(state[slot][0], new_state[slot][0])


# --- callbacks -----------------------------------------------------------------------------


class BatchRecorder(mlpx.Callback):
    """Records every batch hook with its index, and the batch logs."""

    def __init__(self) -> None:
        self.calls = []

    def on_batch_begin(self, batch, logs=None):
        self.calls.append(("begin", batch))

    def on_batch_end(self, batch, logs=None):
        self.calls.append(("end", batch, float(logs["loss"]), logs["size"]))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_batch_callbacks_see_the_same_batches(monkeypatch, dtype):
    """on_batch_begin/on_batch_end get the same indices, sizes and losses from both runners."""
    cfg = config(dtype=dtype, batch_size=7, alpha=1e-2, epochs=2,
                 callbacks=lambda: [BatchRecorder()])
    recorders = []
    real_config = cfg["callbacks"]

    def keep():
        callbacks = real_config()
        recorders.extend(callbacks)
        return callbacks

    cfg["callbacks"] = keep
    (fast_model, fast, record), (generic_model, generic) = train_both(monkeypatch, cfg)
    assert_kernels(cfg, record)
    fast_calls, generic_calls = recorders[0].calls, recorders[1].calls
    n_batches = math.ceil(N_SAMPLES / 7)
    assert len(fast_calls) == len(generic_calls) == 2 * 2 * n_batches
    assert [c[:2] for c in fast_calls] == [c[:2] for c in generic_calls]
    sizes = [c[3] for c in fast_calls if c[0] == "end"]
    assert sizes == [c[3] for c in generic_calls if c[0] == "end"]
    assert sizes == ([7] * (n_batches - 1) + [N_SAMPLES % 7]) * 2
    np.testing.assert_allclose([c[2] for c in fast_calls if c[0] == "end"],
                               [c[2] for c in generic_calls if c[0] == "end"],
                               **TOLERANCES[dtype])
    assert_same_training(fast_model, fast, generic_model, generic, dtype)


def halve_weights(hook: str, when, in_place: bool = False) -> mlpx.Callback:
    """A callback that defines only ``hook`` (and epoch tracking) and, at call ``when``,
    replaces the model's weights by half of them (or halves the arrays in place).

    Only the one batch hook is defined, so no other hook's resynchronisation can hide a
    runner that misses the weights assigned in it.
    """
    class Halve(mlpx.Callback):
        epoch = -1

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch
            if hook == "on_epoch_begin" and epoch == when:
                self.halve()

        def on_batch(self, batch, logs=None):
            if (self.epoch, batch) == when:
                self.halve()

        def halve(self):
            if in_place:  # the params are views of the runner's flat vector
                for p in self.model.params:
                    p *= 0.5
            else:
                self.model.params = [p * 0.5 for p in self.model.params]

    if hook != "on_epoch_begin":
        setattr(Halve, hook, Halve.on_batch)
    return Halve()


@pytest.mark.parametrize("in_place", [False, True], ids=["assigned", "in-place"])
@pytest.mark.parametrize("hook, when", [("on_epoch_begin", 2), ("on_batch_begin", (1, 2)),
                                        ("on_batch_end", (1, 0)), ("on_batch_end", (2, 3))])
def test_weights_replaced_by_a_callback_are_honoured(monkeypatch, hook, when, in_place):
    """Weights a callback assigns (or changes in place) are adopted identically by both."""
    cfg = config(epochs=4, callbacks=lambda: [halve_weights(hook, when, in_place)])
    (fast_model, fast, record), (generic_model, generic) = train_both(monkeypatch, cfg)
    assert_kernels(cfg, record)
    assert_same_training(fast_model, fast, generic_model, generic, cfg["dtype"])
    (untouched, _, _), _ = train_both(monkeypatch, config(epochs=4))
    assert not np.allclose(untouched.params[0], fast_model.params[0], rtol=1e-3)


# --- the NaN guard -------------------------------------------------------------------------


class EpochStarts(mlpx.Callback):
    """Copies of the parameters at the start of every epoch."""

    def __init__(self) -> None:
        self.starts = []

    def on_epoch_begin(self, epoch, logs=None):
        self.starts.append([np.array(p, copy=True) for p in self.model.params])


@pytest.mark.filterwarnings("error::RuntimeWarning")
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("good_epochs", [0, 2])
def test_non_finite_loss_restores_the_epoch_start(monkeypatch, dtype, good_epochs):
    """A diverging fit raises NonFiniteLossError and keeps the failing epoch's start weights.

    The error says what happened and what to change; NumPy's overflow and invalid-value
    warnings on the way (which name mlpx's internals) are not shown: any warning fails.

    With ``good_epochs=2`` the learning rate is tiny for two epochs and 1e6 from the third
    (a StepDecay with gamma 1e15), so the weights restored are not the initial ones: the
    kernels overwrote the flat buffer in place and the restore must copy them back.
    """
    rng = np.random.default_rng(5)
    X = rng.normal(size=(50, 3)) * 1e3  # not standardised
    y = X @ np.array([1.0, -2.0, 3.0]) + 1e3
    model = mlpx.MLP([3, 8, 1], ["relu", "identity"], dtype=dtype, seed=0)
    initial = [np.array(p, copy=True) for p in model.params]
    learning_rate = (optim.StepDecay(1e-9, step_size=2, gamma=1e15) if good_epochs
                     else 1e6)
    starts = EpochStarts()
    with spy_fast_path(monkeypatch) as record, pytest.raises(mlpx.NonFiniteLossError,
                                                             match="training stopped in epoch"):
        model.fit(X, y, epochs=50, batch_size=10, optimizer="sgd", learning_rate=learning_rate,
                  callbacks=[starts])
    assert type(record["runners"][0]) is NumpyEpochRunner
    assert record["epochs"] == len(starts.starts) == good_epochs + 1
    assert model.stop_reason == "non_finite_loss"
    assert len(model.history_.epoch) == good_epochs
    if good_epochs:
        assert not np.array_equal(starts.starts[-1][0], initial[0])
    for param, start in zip(model.params, starts.starts[-1], strict=True):
        assert np.all(np.isfinite(start))
        assert param.dtype == start.dtype and param.shape == start.shape
        assert param.tobytes() == start.tobytes()


# --- memory --------------------------------------------------------------------------------


@contextmanager
def traced_peak():
    """The tracemalloc peak (bytes above the start) of the block, in ``result["peak"]``."""
    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start()
    result = {}
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        yield result
        result["peak"] = tracemalloc.get_traced_memory()[1] - base
    finally:
        if not was_tracing:
            tracemalloc.stop()


def test_the_layers_share_one_zeros_buffer_that_stays_zero(monkeypatch):
    """relu's and elu's comparisons with 0 read one shared array (a 0-d zero takes NumPy's
    slower loop); no pass writes into it, whatever the batch size."""
    X, y = make_data("labels", 3, n_samples=50)
    model = mlpx.MLP([N_FEATURES, 9, 5, 3], ["relu", "elu", "softmax"], seed=0)
    with spy_fast_path(monkeypatch) as record:
        model.fit(X, y, epochs=2, batch_size=16)  # three batches of 16, one of 2
    layers = [layer for _, plan, *_ in record["runners"][0].batches for layer in plan.hidden]
    assert {layer.zeros.shape[0] for layer in layers} == {16, 2}
    for layer in layers:
        assert layer.zeros.shape == layer.out_aug.shape and not np.any(layer.zeros)
        assert np.shares_memory(layer.zeros, layers[0].zeros)


def test_memory_no_copy_of_X_and_a_bounded_chunk():
    """A fit holds no copy of X (each chunk is gathered from X itself); epochs add none."""
    rng = np.random.default_rng(6)
    X = rng.standard_normal((20000, 400), dtype=np.float32)  # 32 MB
    y = rng.integers(0, 3, size=20000)
    peaks = {}
    for epochs in (1, 2):
        model = mlpx.MLP([400, 32, 3], ["relu", "softmax"], seed=0)
        with traced_peak() as traced:
            model.fit(X, y, epochs=epochs, batch_size=64)
        peaks[epochs] = traced["peak"]
    # the chunk, and per sample the epoch's logits, targets, labels and order (~140 bytes)
    budget = NumpyEpochRunner.INPUT_BUFFER_BYTES + 200 * X.shape[0]
    assert budget < X.nbytes / 4
    assert peaks[1] < budget, (peaks, budget)
    assert peaks[2] < budget, (peaks, budget)
    assert peaks[2] - peaks[1] < 2**20, peaks  # no per-epoch copy of X


# --- it learns -----------------------------------------------------------------------------


def test_fast_path_learns_the_moons(monkeypatch):
    """The fast path trains a relu/relu/softmax network above 90% accuracy on the moons."""
    X, y = mlpx.datasets.make_moons(400, noise=0.2, seed=0)
    model = mlpx.MLP([2, 16, 8, 2], ["relu", "relu", "softmax"], seed=0)
    with spy_fast_path(monkeypatch) as record:
        history = model.fit(X, y, epochs=60, batch_size=32, optimizer="adam",
                            learning_rate=0.01)
    assert type(record["runners"][0]) is NumpyEpochRunner
    assert model.score(X, y) > 0.9
    assert history["accuracy"][-1] > 0.9
    assert history["loss"][-1] < history["loss"][0]


def test_a_snapshot_reuses_the_last_ones_arrays_and_restores_its_own_values():
    """Only the latest snapshot is restored, so the next one is copied into its arrays."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(40, 3)).astype(np.float32)
    Y = np.eye(3, dtype=np.float32)[np.arange(40) % 3]
    model = mlpx.MLP([3, 6, 3], ["relu", "softmax"], dtype="float32", seed=0)
    runner = NumpyEpochRunner(model, optim.Adam(), X, Y, 8,
                              mlpx.callbacks.CallbackList([], model))
    first = runner.snapshot()
    runner.run_epoch(None, 0.01)
    second = runner.snapshot()
    assert second[0] is first[0] and second[1]["m"][0] is first[1]["m"][0]
    expected_flat = np.array(runner.flat, copy=True)
    expected_state = {key: [np.array(a, copy=True) for a in value]
                      for key, value in runner.state.items() if isinstance(value, list)}
    assert not np.shares_memory(second[0], runner.flat)
    runner.run_epoch(None, 0.01)
    assert not np.array_equal(runner.flat, expected_flat)
    runner.restore(second)
    assert runner.flat.tobytes() == expected_flat.tobytes()
    for key, arrays in expected_state.items():
        for restored, expected in zip(runner.state[key], arrays, strict=True):
            assert restored.tobytes() == expected.tobytes()
    # a state of another layout (here: a different optimizer's) gets new arrays
    runner.state = {"square_avg": [np.zeros_like(runner.flat)]}
    third = runner.snapshot()
    assert third[0] is not first[0] and list(third[1]) == ["square_avg"]
