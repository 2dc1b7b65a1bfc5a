"""Backends: resolution, arrays that stay on the model's backend, host inputs, mixed inputs.

Tests with the ``backend`` fixture run on every usable backend (numpy, array_api_strict,
torch, cupy); ``assert_close`` checks namespace, device, dtype and shape as well as values.
"""

from __future__ import annotations

import importlib
import importlib.util
import pickle

import array_api_compat
import numpy as np
import pytest
from helpers import assert_close

import mlpx
from mlpx._backend import BACKEND_NAMES

N_SAMPLES = 12
N_FEATURES = 3


def _installed(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def make_data(seed: int = 0):
    """X (12, 3) standard normal, binary labels y (12,), and 3-class labels (12,)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(N_SAMPLES, N_FEATURES))
    y = (X[:, 0] + X[:, 1] > 0).astype(np.int64)
    y3 = np.arange(N_SAMPLES) % 3
    return X, y, y3


def on_backend(array: np.ndarray, backend, dtype=None):
    """A NumPy array as an array of ``backend``, on its device."""
    return backend.xp.asarray(array, dtype=dtype, device=backend.device)


def rtol_for(dtype: str) -> float:
    return 1e-5 if dtype == "float32" else 1e-12


# --- resolve_backend ----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["numpy", "array_api_strict", "torch"])
def test_resolve_backend_by_name(name):
    if name != "numpy":
        pytest.importorskip(name)
    resolved = mlpx.resolve_backend(name)
    assert isinstance(resolved, mlpx.Backend)
    assert resolved.name == name
    array = resolved.xp.asarray([1.0, 2.0], device=resolved.device)
    assert array_api_compat.array_namespace(array) is resolved.xp
    assert array_api_compat.device(array) == resolved.device
    assert mlpx.resolve_backend(name.upper()).name == name  # names are case-insensitive


def test_resolve_backend_spelled_with_a_dash():
    pytest.importorskip("array_api_strict")
    assert mlpx.resolve_backend("array-api-strict").name == "array_api_strict"


@pytest.mark.parametrize(
    ("module", "expected"),
    [
        ("numpy", "numpy"),
        ("array_api_compat.numpy", "numpy"),
        ("array_api_strict", "array_api_strict"),
        ("torch", "torch"),
        ("array_api_compat.torch", "torch"),
    ],
)
def test_resolve_backend_by_namespace(module, expected):
    pytest.importorskip(expected)
    namespace = importlib.import_module(module)
    resolved = mlpx.resolve_backend(namespace)
    assert resolved.name == expected
    assert resolved == mlpx.resolve_backend(expected)


def test_resolve_backend_passes_a_backend_through():
    resolved = mlpx.resolve_backend("numpy")
    assert mlpx.resolve_backend(resolved) is resolved


@pytest.mark.parametrize("name", ["jax", "numpyy", "", "cuda"])
def test_resolve_backend_unknown_name(name):
    with pytest.raises(ValueError, match="not known") as info:
        mlpx.resolve_backend(name)
    assert isinstance(info.value, mlpx.MlpxValueError)
    for known in BACKEND_NAMES:
        assert known in str(info.value)


def test_resolve_backend_unsupported_namespace():
    import math

    with pytest.raises(ValueError, match="math"):
        mlpx.resolve_backend(math)


@pytest.mark.parametrize("value", [3, None, np.float64])
def test_resolve_backend_wrong_type(value):
    with pytest.raises(TypeError):
        mlpx.resolve_backend(value)


def test_missing_backend_says_what_to_install():
    if _installed("cupy"):
        pytest.skip("cupy is installed here")
    with pytest.raises(mlpx.BackendUnavailableError, match="pip install"):
        mlpx.resolve_backend("cupy")
    with pytest.raises(mlpx.BackendUnavailableError):
        mlpx.MLP([2, 1], backend="cupy")


def test_model_backend_from_namespace_or_name(backend):
    by_name = mlpx.MLP([2, 1], backend=backend.name, device=backend.device)
    by_backend = mlpx.MLP([2, 1], backend=backend)
    assert by_name.backend == by_backend.backend == backend
    assert by_name.xp is backend.xp


# --- backend_report -----------------------------------------------------------------------


def test_backend_report_lists_every_backend():
    report = mlpx.backend_report()
    assert [row["backend"] for row in report] == list(BACKEND_NAMES)
    assert {"numpy", "cupy", "torch", "array_api_strict"} == set(BACKEND_NAMES)
    usable = {row["backend"]: row["usable"] for row in report}
    assert set(usable.values()) <= {"yes", "no"}
    assert usable["numpy"] == "yes"
    assert usable["array_api_strict"] == ("yes" if _installed("array_api_strict") else "no")
    if not _installed("torch"):
        assert usable["torch"] == "no"
    if not _installed("cupy"):
        assert usable["cupy"] == "no"
    for row in report:
        assert set(row) >= {"backend", "usable", "devices", "note"}
        if row["usable"] == "no":
            assert "install" in row["note"] or "GPU" in row["note"]


def test_backend_report_marks_the_fixture_backend_usable(backend):
    usable = {row["backend"]: row["usable"] for row in mlpx.backend_report()}
    assert usable[backend.name] == "yes"


# --- to_numpy -----------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_to_numpy_every_backend(backend, dtype):
    values = np.arange(6, dtype=dtype).reshape(2, 3)
    array = on_backend(values, backend)
    host = mlpx.to_numpy(array)
    assert isinstance(host, np.ndarray)
    assert host.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(host, values)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_dtype_names_are_the_same_when_remembered(backend, dtype):
    """dtype_name remembers what it worked out; asked again, it gives the same plain name,
    without comparing dtypes of two libraries (array_api_strict warns when asked to)."""
    import warnings

    from mlpx._backend import dtype_name

    native = getattr(backend.xp, dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for spelling in (native, native, np.dtype(dtype), getattr(np, dtype), np.dtype(dtype)):
            assert dtype_name(spelling) == dtype


def test_relu_zero_is_made_once_per_dtype_and_device_and_never_written(backend):
    """relu compares with one shared 0-d zero per (dtype, device); outputs never alias it."""
    from mlpx.activations import _zero_like, relu

    xp = backend.xp
    for dtype in (xp.float32, xp.float64):
        z = xp.asarray([[-1.0, 2.0], [0.5, -3.0]], dtype=dtype, device=backend.device)
        zero = _zero_like(z, xp=xp)
        assert _zero_like(z, xp=xp) is zero
        assert zero.dtype == dtype and zero.shape == ()
        assert array_api_compat.device(zero) == array_api_compat.device(z)
        a = relu(z, xp=xp)
        a += 1  # an in-place write to the output must not reach the shared zero
        assert float(zero) == 0.0
        assert_close(a, np.array([[1.0, 3.0], [1.5, 1.0]]), backend=backend, dtype=dtype)


@pytest.mark.parametrize("shape", [(5,), (5, 3)])
def test_take_rows_is_take_along_the_first_axis(backend, shape):
    """The training loop's gather (index_select on torch) picks rows as xp.take does."""
    from mlpx._backend import from_host, take_rows

    values = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
    rows = np.array([4, 0, 0, 2], dtype=np.int64)
    taken = take_rows(on_backend(values, backend), from_host(rows, backend=backend,
                                                             dtype=backend.xp.int64),
                      backend=backend)
    np.testing.assert_array_equal(mlpx.to_numpy(taken), values[rows])


# --- outputs stay on the model's backend --------------------------------------------------


@pytest.fixture(params=["float32", "float64"])
def dtype(request):
    return request.param


def _models(backend, dtype, **kwargs):
    """The same model (same seed) on the backend under test and on NumPy."""
    return (mlpx.MLP(backend=backend, dtype=dtype, seed=0, **kwargs),
            mlpx.MLP(backend="numpy", dtype=dtype, seed=0, **kwargs))


def test_params_on_backend(backend, dtype):
    model, reference = _models(backend, dtype, layer_sizes=[N_FEATURES, 5, 1],
                               activations=["tanh", "sigmoid"])
    xp_dtype = getattr(backend.xp, dtype)
    assert model.dtype == xp_dtype
    shapes = [(N_FEATURES, 5), (5,), (5, 1), (1,)]
    for param, want, shape in zip(model.params, reference.params, shapes, strict=True):
        assert_close(param, want, backend=backend, dtype=xp_dtype, shape=shape, rtol=0)
    for param in model.copy_params():
        assert_close(param, param, backend=backend, dtype=xp_dtype)


def test_binary_outputs_on_backend(backend, dtype):
    X, y, _ = make_data()
    model, reference = _models(backend, dtype, layer_sizes=[N_FEATURES, 5, 1],
                               activations=["tanh", "sigmoid"])
    xp_dtype = getattr(backend.xp, dtype)
    X_native = on_backend(X, backend, dtype=xp_dtype)
    rtol = rtol_for(dtype)

    proba = model.predict_proba(X_native)
    assert_close(proba, reference.predict_proba(X), backend=backend, dtype=xp_dtype,
                 shape=(N_SAMPLES, 1), rtol=rtol)
    assert_close(model.forward(X_native), reference.forward(X), backend=backend,
                 dtype=xp_dtype, shape=(N_SAMPLES, 1), rtol=rtol)

    labels = model.predict(X_native)
    assert_close(labels, reference.predict(X), backend=backend, shape=(N_SAMPLES,))
    assert backend.xp.isdtype(labels.dtype, "integral")

    cache = model.forward(X_native, return_intermediates=True)
    want = reference.forward(X, return_intermediates=True)
    assert_close(cache.inputs, X, backend=backend, dtype=xp_dtype, shape=X.shape, rtol=rtol)
    for z, want_z, a, want_a, width in zip(cache.pre_activations, want.pre_activations,
                                           cache.activations, want.activations, [5, 1],
                                           strict=True):
        assert_close(z, want_z, backend=backend, dtype=xp_dtype, shape=(N_SAMPLES, width),
                     rtol=rtol, atol=1e-6 if dtype == "float32" else 1e-14)
        assert_close(a, want_a, backend=backend, dtype=xp_dtype, shape=(N_SAMPLES, width),
                     rtol=rtol, atol=1e-6 if dtype == "float32" else 1e-14)
    assert cache.output is cache.activations[-1]

    y_native = on_backend(y, backend)
    loss, grads = model.loss_and_grads(X_native, y_native)
    want_loss, want_grads = reference.loss_and_grads(X, y)
    assert isinstance(loss, float)
    assert loss == pytest.approx(want_loss, rel=rtol)
    for grad, want_grad, param in zip(grads, want_grads, model.params, strict=True):
        assert_close(grad, want_grad, backend=backend, dtype=xp_dtype, shape=param.shape,
                     rtol=rtol, atol=1e-6 if dtype == "float32" else 1e-14)

    metrics = model.evaluate(X_native, y_native)
    assert all(type(value) is float for value in metrics.values())
    assert metrics == pytest.approx(reference.evaluate(X, y), rel=rtol)


def test_multiclass_and_regression_outputs_on_backend(backend, dtype):
    X, _, y3 = make_data()
    xp_dtype = getattr(backend.xp, dtype)
    X_native = on_backend(X, backend, dtype=xp_dtype)
    rtol = rtol_for(dtype)

    model, reference = _models(backend, dtype, layer_sizes=[N_FEATURES, 4, 3],
                               activations=["relu", "softmax"])
    assert_close(model.predict_proba(X_native), reference.predict_proba(X), backend=backend,
                 dtype=xp_dtype, shape=(N_SAMPLES, 3), rtol=rtol)
    labels = model.predict(X_native)
    assert_close(labels, reference.predict(X), backend=backend, shape=(N_SAMPLES,))
    _, grads = model.loss_and_grads(X_native, on_backend(y3, backend))
    for grad, param in zip(grads, model.params, strict=True):
        assert_close(grad, grad, backend=backend, dtype=xp_dtype, shape=param.shape)

    model, reference = _models(backend, dtype, layer_sizes=[N_FEATURES, 4, 2])
    values = model.predict(X_native)
    assert_close(values, reference.predict(X), backend=backend, dtype=xp_dtype,
                 shape=(N_SAMPLES, 2), rtol=rtol, atol=1e-6 if dtype == "float32" else 1e-14)


def test_fit_keeps_params_on_backend(backend, dtype):
    X, y, _ = make_data()
    xp_dtype = getattr(backend.xp, dtype)
    model = mlpx.MLP([N_FEATURES, 5, 1], activations=["relu", "sigmoid"], seed=0,
                     backend=backend, dtype=dtype)
    shapes = [tuple(p.shape) for p in model.params]
    model.fit(on_backend(X, backend, dtype=xp_dtype), on_backend(y, backend), epochs=3,
              batch_size=6)
    for param, shape in zip(model.params, shapes, strict=True):
        assert_close(param, param, backend=backend, dtype=xp_dtype, shape=shape)


# --- NumPy inputs to a model on another backend -------------------------------------------


def test_numpy_inputs_give_the_same_fit_as_native_inputs(backend):
    X, y, _ = make_data()
    fitted = []
    for native in (False, True):
        model = mlpx.MLP([N_FEATURES, 5, 1], activations=["relu", "sigmoid"], seed=0,
                         backend=backend, dtype="float64")
        X_in = on_backend(X, backend) if native else X
        y_in = on_backend(y, backend) if native else y
        history = model.fit(X_in, y_in, epochs=4, batch_size=6, validation_data=(X_in, y_in))
        fitted.append(([mlpx.to_numpy(p) for p in model.params], history.history["val_loss"]))
    (params_np, val_np), (params_native, val_native) = fitted
    for a, b in zip(params_np, params_native, strict=True):
        np.testing.assert_array_equal(a, b)
    assert val_np == val_native


def test_numpy_inputs_are_moved_once_per_fit(backend, monkeypatch):
    """Host X is copied to the device once per fit (and X_val once), never per batch."""
    X, y, _ = make_data()
    X_val = X[:5]
    moves = []
    original = backend.xp.asarray

    def counting_asarray(obj, *args, **kwargs):
        if isinstance(obj, np.ndarray) and obj.ndim == 2 and obj.shape[1] == N_FEATURES:
            moves.append(obj.shape)
        return original(obj, *args, **kwargs)

    model = mlpx.MLP([N_FEATURES, 5, 1], activations=["relu", "sigmoid"], seed=0,
                     backend=backend)
    monkeypatch.setattr(backend.xp, "asarray", counting_asarray)
    model.fit(X, y, epochs=4, batch_size=3, validation_data=(X_val, y[:5]))
    monkeypatch.undo()
    assert sorted(moves) == [(5, N_FEATURES), (N_SAMPLES, N_FEATURES)]
    for param in model.params:
        assert_close(param, param, backend=backend, dtype=model.dtype)


def test_numpy_labels_of_any_kind_on_backend(backend):
    """Labels are encoded on the host and moved once: bools, -1/+1, strings."""
    X, y, _ = make_data()
    for labels in (y.astype(bool), 2 * y - 1, np.where(y == 1, "yes", "no")):
        model = mlpx.MLP([N_FEATURES, 4, 1], activations=["relu", "sigmoid"], seed=0,
                         backend=backend)
        model.fit(X, labels, epochs=2, batch_size=4)
        predictions = model.predict(X)
        assert set(np.unique(mlpx.to_numpy(predictions)).tolist()) <= set(labels.tolist())


# --- arrays of another library ------------------------------------------------------------


def _foreign_cases():
    """(model backend, array library, hint that the error must show)."""
    return [
        ("numpy", "torch", ".numpy()"),
        ("numpy", "array_api_strict", "from_dlpack"),
        ("torch", "array_api_strict", "from_dlpack"),
        ("array_api_strict", "torch", ".numpy()"),
    ]


def _foreign_array(library: str, values: np.ndarray):
    module = pytest.importorskip(library)
    return module.asarray(values)


@pytest.mark.parametrize(("model_backend", "library", "hint"), _foreign_cases(),
                         ids=[f"{lib}-to-{b}" for b, lib, _ in _foreign_cases()])
def test_arrays_of_another_library_raise_type_error(model_backend, library, hint):
    pytest.importorskip(model_backend)
    X, y, _ = make_data()
    foreign_X = _foreign_array(library, X)
    foreign_y = _foreign_array(library, y)
    model = mlpx.MLP([N_FEATURES, 4, 1], activations=["relu", "sigmoid"], seed=0,
                     backend=model_backend)
    before = [mlpx.to_numpy(p).copy() for p in model.params]
    calls = {
        "predict": lambda: model.predict(foreign_X),
        "predict_proba": lambda: model.predict_proba(foreign_X),
        "forward": lambda: model.forward(foreign_X),
        "fit X": lambda: model.fit(foreign_X, y, epochs=1),
        "fit y": lambda: model.fit(X, foreign_y, epochs=1),
        "validation_data": lambda: model.fit(X, y, epochs=1,
                                             validation_data=(foreign_X, y)),
        "evaluate": lambda: model.evaluate(foreign_X, y),
        "loss_and_grads": lambda: model.loss_and_grads(X, foreign_y),
    }
    for what, call in calls.items():
        with pytest.raises(TypeError) as info:
            call()
        message = str(info.value)
        assert isinstance(info.value, mlpx.MlpxTypeError), what
        assert library in message, what
        assert repr(model_backend) in message, what
        assert hint in message, what
        assert f"backend={library!r}" in message, what
    after = [mlpx.to_numpy(p) for p in model.params]
    for a, b in zip(before, after, strict=True):
        np.testing.assert_array_equal(a, b)  # nothing changed before the error


def test_params_of_another_library_raise_type_error():
    torch = pytest.importorskip("torch")
    model = mlpx.MLP([2, 1], seed=0)
    params = [torch.zeros(2, 1), torch.zeros(1)]
    with pytest.raises(TypeError, match="torch"):
        model.set_params(params)


def test_a_pickled_backend_keeps_its_device(backend):
    """Pickling resolves the backend again by name and device: a model pickled on a second
    device (``--device``) comes back there, not on the default one."""
    assert pickle.loads(pickle.dumps(backend)) == backend
    model = mlpx.MLP([2, 3, 2], activations=["relu", "softmax"], backend=backend, seed=0)
    again = pickle.loads(pickle.dumps(model))
    assert again.backend == backend
    assert_close(again.params[0], model.params[0], backend=backend, rtol=0)
