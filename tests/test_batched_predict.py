"""Bounded memory: predict, predict_proba, evaluate and score in batches (``batch_size=``).

Batched results equal the unbatched ones (the whole X through :meth:`MLP.forward` and
:meth:`MLP.loss_and_grads`) for every batch size, on every backend; ``numpy.memmap`` input
gives the results of the same data in memory; NaN in the last batch and bad ``batch_size``
values raise errors naming the parameter; and tracemalloc shows that the peak memory of
``predict_proba`` does not grow with the number of rows.
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from helpers import assert_close

import mlpx
from mlpx._backend import from_host, to_numpy

N_SAMPLES = 50
N_FEATURES = 4
# name -> (layer_sizes, activations)
NETS = {
    "binary": ([N_FEATURES, 8, 1], ["tanh", "sigmoid"]),
    "multiclass": ([N_FEATURES, 8, 3], ["tanh", "softmax"]),
    "regression": ([N_FEATURES, 8, 2], ["tanh", "identity"]),
}
BATCH_SIZES = {
    "1": 1,
    "7": 7,
    "n-1": N_SAMPLES - 1,
    "n": N_SAMPLES,
    "10n": 10 * N_SAMPLES,
}


def build(task: str, backend="numpy", dtype: str = "float64") -> mlpx.MLP:
    """A seeded net for ``task``, with an L2 penalty scaled by the rows (added once)."""
    sizes, activations = NETS[task]
    return mlpx.MLP(sizes, activations=activations, backend=backend, dtype=dtype, seed=3,
                    alpha=0.05, alpha_per_sample=True)


def make_data(task: str, n_samples: int = N_SAMPLES, seed: int = 0):
    """(X, y) on the host: X (n_samples, N_FEATURES) float64, y labels or targets."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_samples, N_FEATURES)) * 2.0
    if task == "binary":
        y = rng.integers(0, 2, size=n_samples)
    elif task == "multiclass":
        y = rng.integers(0, 3, size=n_samples)
    else:
        y = rng.normal(size=(n_samples, 2))
    return X, y


def unbatched_reference(model: mlpx.MLP, X, y) -> dict:
    """Output, loss, metric and score of the whole X at once, on the host (float64)."""
    output = to_numpy(model.forward(X)).astype(np.float64)
    loss, _ = model.loss_and_grads(X, y)
    if model.task == "regression":
        metric = np.mean(np.abs(output - y))
        score = 1.0 - np.sum((y - output) ** 2) / np.sum((y - y.mean(axis=0)) ** 2)
        labels = output
    else:
        labels = (output[:, 0] >= 0.5).astype(np.int64) if model.task == "binary" else (
            np.argmax(output, axis=1))
        metric = score = np.mean(labels == y)
    return {"output": output, "loss": loss, "metric": metric, "score": score,
            "labels": labels}


def metric_name(model: mlpx.MLP) -> str:
    return "mae" if model.task == "regression" else "accuracy"


@pytest.mark.parametrize("device_input", [False, True], ids=["host_X", "device_X"])
@pytest.mark.parametrize("batch", list(BATCH_SIZES))
@pytest.mark.parametrize("task", list(NETS))
def test_batched_equals_unbatched(backend, task, batch, device_input):
    model = build(task, backend)
    X, y = make_data(task)
    ref = unbatched_reference(model, X, y)
    X_in = from_host(X, backend=backend, dtype=model.dtype) if device_input else X
    batch_size = BATCH_SIZES[batch]

    predicted = model.predict(X_in, batch_size=batch_size)
    if task == "regression":
        assert_close(predicted, ref["output"], backend=backend, rtol=1e-12, atol=1e-14,
                     dtype=model.dtype, shape=(N_SAMPLES, 2))
    else:
        proba = model.predict_proba(X_in, batch_size=batch_size)
        assert_close(proba, ref["output"], backend=backend, rtol=1e-12, atol=1e-14,
                     dtype=model.dtype, shape=(N_SAMPLES, model.n_outputs))
        assert_close(predicted, ref["labels"], backend=backend, shape=(N_SAMPLES,))

    logs = model.evaluate(X_in, y, batch_size=batch_size)
    assert list(logs) == ["loss", metric_name(model)]
    assert logs["loss"] == pytest.approx(ref["loss"], rel=1e-10)
    assert logs[metric_name(model)] == pytest.approx(ref["metric"], rel=1e-10)
    assert model.score(X_in, y, batch_size=batch_size) == pytest.approx(ref["score"],
                                                                        rel=1e-10)


@pytest.mark.parametrize("task", list(NETS))
def test_float32_batches_match_to_rounding(backend, task):
    """In float32 the batch sums agree with the whole-X values to float32 rounding."""
    model = build(task, backend, dtype="float32")
    X, y = make_data(task, n_samples=300)
    ref = unbatched_reference(model, X, y)
    output = model._predict_output(X, batch_size=32)
    assert_close(output, ref["output"], backend=backend, rtol=1e-5, atol=1e-6,
                 dtype=model.dtype, shape=(300, model.n_outputs))
    logs = model.evaluate(X, y, batch_size=32)
    assert logs["loss"] == pytest.approx(ref["loss"], rel=1e-5)
    assert model.score(X, y, batch_size=32) == pytest.approx(ref["score"], rel=1e-5)


def test_default_batch_size_bounds_activation_bytes():
    """batch_size=None: as many rows as fit in about 64 MiB of one batch's activations."""
    wide = mlpx.MLP([20, 2048, 2], activations=["relu", "softmax"], seed=0)
    rows = wide._batch_rows(None)
    row_bytes = 4 * (20 + 2 * (2048 + 2))
    assert rows == 64 * 2**20 // row_bytes
    small = mlpx.MLP([2, 16, 8, 1], activations=["relu", "relu", "sigmoid"], seed=0,
                     dtype="float64")
    assert small._batch_rows(None) == 64 * 2**20 // (8 * (2 + 2 * 25))
    X, y = make_data("binary", n_samples=20)
    model = build("binary")
    assert_close(model.predict_proba(X), to_numpy(model.forward(X)), rtol=1e-12)
    assert model.evaluate(X, y)["loss"] == pytest.approx(model.loss_and_grads(X, y)[0])


def write_memmap(path, array: np.ndarray) -> np.memmap:
    """Write ``array`` as a .npy file and open it again read-only as a numpy.memmap."""
    out = np.lib.format.open_memmap(path, mode="w+", dtype=array.dtype, shape=array.shape)
    out[...] = array
    out.flush()
    del out
    return np.load(path, mmap_mode="r")


@pytest.mark.parametrize("dtype", ["float64", "float32", "int32"])
@pytest.mark.parametrize("task", list(NETS))
def test_memmap_input_matches_in_memory(backend, tmp_path, task, dtype):
    model = build(task, backend)
    X, y = make_data(task)
    X = (X * 3).astype(dtype)
    X_map = write_memmap(tmp_path / "X.npy", X)
    assert isinstance(X_map, np.memmap)
    for batch_size in (7, None):
        expected = model._predict_output(X, batch_size=batch_size)
        assert_close(model._predict_output(X_map, batch_size=batch_size), expected,
                     backend=backend, rtol=0, dtype=model.dtype, shape=expected.shape)
        assert_close(model.predict(X_map, batch_size=batch_size),
                     model.predict(X, batch_size=batch_size), backend=backend, rtol=0)
        assert model.evaluate(X_map, y, batch_size=batch_size) == model.evaluate(
            X, y, batch_size=batch_size)
        assert model.score(X_map, y, batch_size=batch_size) == model.score(
            X, y, batch_size=batch_size)


@pytest.mark.parametrize("device_input", [False, True], ids=["host_X", "device_X"])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_in_last_batch_raises_naming_X(backend, bad, device_input):
    model = build("multiclass", backend)
    X, y = make_data("multiclass")
    X[-1, 2] = bad
    X_in = from_host(X, backend=backend, dtype=model.dtype) if device_input else X
    before = [to_numpy(p).copy() for p in model.params]
    calls = {
        "predict": lambda: model.predict(X_in, batch_size=7),
        "predict_proba": lambda: model.predict_proba(X_in, batch_size=7),
        "evaluate": lambda: model.evaluate(X_in, y, batch_size=7),
        "score": lambda: model.score(X_in, y, batch_size=7),
    }
    for call in calls.values():
        with pytest.raises(mlpx.MlpxValueError, match=r"^X contains NaN or infinite"):
            call()
    for old, new in zip(before, model.params):
        np.testing.assert_array_equal(to_numpy(new), old)


def test_nan_in_last_batch_of_memmap_raises(tmp_path):
    X, y = make_data("binary")
    X[-1, 0] = np.nan
    X_map = write_memmap(tmp_path / "X.npy", X)
    with pytest.raises(mlpx.MlpxValueError, match="X contains NaN"):
        build("binary").predict(X_map, batch_size=7)


@pytest.mark.parametrize("batch_size", [0, -1, 1.5, True, "10", np.int64(0)])
def test_bad_batch_size_is_refused_before_any_work(batch_size):
    model = build("binary")
    X, y = make_data("binary")
    X_bad = X[:, :2]  # the wrong number of features: batch_size must be reported first
    calls = {
        "predict": lambda: model.predict(X_bad, batch_size=batch_size),
        "predict_proba": lambda: model.predict_proba(X_bad, batch_size=batch_size),
        "evaluate": lambda: model.evaluate(X_bad, y[:3], batch_size=batch_size),
        "score": lambda: model.score(X_bad, y[:3], batch_size=batch_size),
    }
    for call in calls.values():
        with pytest.raises((mlpx.MlpxValueError, mlpx.MlpxTypeError),
                           match=r"batch_size=.* must be None or an int >= 1"):
            call()


def test_numpy_int_batch_size_is_accepted():
    model = build("regression")
    X, _ = make_data("regression")
    assert_close(model.predict(X, batch_size=np.int64(7)), model.predict(X), rtol=1e-12)


def test_predict_leaves_layer_caches_alone():
    """Prediction keeps no activations: the layers' caches are the same objects as before."""
    model = build("multiclass")
    X, y = make_data("multiclass")
    model.forward(X[:5])
    before = [layer.cache for layer in model.layers]
    model.predict_proba(X, batch_size=7)
    model.evaluate(X, y, batch_size=7)
    for layer, cache in zip(model.layers, before):
        assert all(a is b for a, b in zip(layer.cache, cache))


def _peak_bytes_of_predict_proba(model: mlpx.MLP, X, batch_size: int) -> tuple[int, int]:
    """(peak bytes tracemalloc saw during predict_proba, bytes of its result)."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        proba = model.predict_proba(X, batch_size=batch_size)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak, proba.nbytes


def test_peak_memory_does_not_grow_with_rows(tmp_path):
    """predict_proba over a memmap of n and of 4n rows: the same peak, besides the output.

    A hidden layer of 2048 float32 units takes 8 KiB per row for its activation (and as
    much for its pre-activation): 32 MiB for 4000 rows if X went through the network at
    once, as the unbatched code did, against 2 MiB per batch of 256 rows.
    """
    model = mlpx.MLP([20, 2048, 2], activations=["relu", "softmax"], seed=0)
    n, batch_size = 1000, 256
    rng = np.random.default_rng(0)
    small = write_memmap(tmp_path / "small.npy", rng.normal(size=(n, 20)))
    large = write_memmap(tmp_path / "large.npy", rng.normal(size=(4 * n, 20)))
    model.predict_proba(small[:batch_size], batch_size=batch_size)  # warm up

    peak_small, out_small = _peak_bytes_of_predict_proba(model, small, batch_size)
    peak_large, out_large = _peak_bytes_of_predict_proba(model, large, batch_size)

    hidden_bytes_large = 4 * n * 2048 * 4  # one float32 activation of every row
    assert peak_large - out_large <= 1.5 * (peak_small - out_small), (peak_small, peak_large)
    assert peak_large < hidden_bytes_large / 2, (peak_large, hidden_bytes_large)


# --- NumPy's prediction pass, written in place (mlpx/_numpy_predict.py) --------------------

IN_PLACE_NETS = [
    # hidden activations, output activation, output units: both softmax layouts (<= 32
    # classes transposed, more along the rows), one and several sigmoid units, regression
    (["relu", "relu"], "softmax", 2),
    (["relu", "tanh"], "softmax", 10),
    (["leaky_relu"], "softmax", 40),
    (["elu", "gelu"], "sigmoid", 1),
    (["sigmoid", "softplus"], "sigmoid", 3),
    (["identity"], "identity", 2),
    (["relu"], "exp", 1),
    ([], "softmax", 5),
]


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "pure-numpy"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(("hidden", "output", "units"), IN_PLACE_NETS,
                         ids=lambda value: "-".join(value) if isinstance(value, list) else None)
def test_numpy_in_place_pass_gives_the_generic_numbers(monkeypatch, hidden, output, units,
                                                       dtype, compiled):
    """predict_proba/predict on NumPy: the generic forward pass's numbers (the same bits but
    for the softmax sum over 8 or more classes, to the last bit), X left as it was, a
    C-contiguous result, special values included."""
    from mlpx import _compiled, _numpy_predict

    if compiled and _compiled.kernels is None:
        pytest.skip("mlpx._kernels is not built here")
    if not compiled:
        monkeypatch.setattr(_compiled, "kernels", None)
    rng = np.random.default_rng(3)
    sizes = [6, *([9] * len(hidden)), units]
    model = mlpx.MLP(sizes, [*hidden, output], dtype=dtype, seed=1)
    X = (rng.normal(size=(300, 6)) * 3).astype(dtype)
    X[:4] = [[40.0] * 6, [-40.0] * 6, [0.0] * 6, [-0.0] * 6]  # saturated units, -0
    X_before = X.copy()
    assert _numpy_predict.supports(model)
    generic = model._forward_batch(X)[1]
    in_place = _numpy_predict.predict_output(model, X)
    np.testing.assert_array_equal(X, X_before)
    assert in_place.flags.c_contiguous and in_place.dtype == X.dtype
    if output == "softmax" and units >= 8:
        np.testing.assert_allclose(in_place, generic, rtol=4 * np.finfo(dtype).eps, atol=0)
    else:
        np.testing.assert_array_equal(in_place, generic)
    through_model = (model.predict_proba(X) if model.is_classifier
                     else model.predict(X).reshape(in_place.shape))
    np.testing.assert_array_equal(through_model, in_place)
    z_generic = model._forward_batch(X)[0]
    z_out, output = _numpy_predict.logits_and_output(model, X)  # evaluate's and score's
    np.testing.assert_array_equal(z_out, z_generic)
    np.testing.assert_array_equal(output, in_place)


def test_numpy_in_place_pass_only_where_it_applies(monkeypatch):
    """Other backends keep the generic pass; NumPy's predict takes the in-place one, batch
    by batch."""
    from mlpx import _numpy_predict

    assert not _numpy_predict.supports(mlpx.MLP([2, 3, 2], backend="array_api_strict"))
    model = mlpx.MLP([2, 3, 2], seed=0)
    calls = []
    in_place = _numpy_predict.predict_output
    monkeypatch.setattr(_numpy_predict, "predict_output",
                        lambda *args: calls.append(1) or in_place(*args))
    model.predict(np.ones((5, 2)), batch_size=2)
    assert len(calls) == 3
