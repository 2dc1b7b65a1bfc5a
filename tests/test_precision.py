"""matmul_precision="bfloat16": mixed-precision products with float32 weights.

On backends with a bfloat16 dtype (torch) each product is checked against its definition
(bfloat16 casts, float32 result) and the gradients against torch autograd through the same
casts; on the others the option is refused up front, naming the fix.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest

import mlpx
from mlpx import MlpxTypeError, MlpxValueError
from mlpx._backend import to_numpy
from mlpx.cli import main
from mlpx.precision import backend_supports
from tests.helpers import assert_close

SIZES = [6, 8, 5, 3]
ACTIVATIONS = ["relu", "tanh", "softmax"]


def _data(n_samples: int = 40, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_samples, SIZES[0])).astype(np.float32)
    y = rng.integers(0, SIZES[-1], size=n_samples)
    return X, y


def _model(backend, precision: str = "bfloat16", **kwargs) -> mlpx.MLP:
    return mlpx.MLP(SIZES, activations=ACTIVATIONS, backend=backend, seed=1,
                    matmul_precision=precision, **kwargs)


@pytest.fixture
def bf16_backend(backend):
    if not backend_supports("bfloat16", backend.xp):
        pytest.skip(f"{backend.name} has no bfloat16")
    return backend


# --- what is refused -----------------------------------------------------------------------


def test_backends_without_bfloat16_refuse_it(backend):
    if backend_supports("bfloat16", backend.xp):
        pytest.skip(f"{backend.name} has bfloat16")
    with pytest.raises(MlpxValueError, match=r"matmul_precision='bfloat16'.*backend='torch'"):
        _model(backend)


def test_float64_models_refuse_bfloat16(bf16_backend):
    with pytest.raises(MlpxValueError, match=r"dtype='float64'.*use dtype='float32'"):
        _model(bf16_backend, dtype="float64")


@pytest.mark.parametrize("precision, error, match", [
    ("bf16", MlpxValueError, "not one of"),
    ("float16", MlpxValueError, "not one of"),
    ("tf32", MlpxValueError, "not one of"),
    (16, MlpxTypeError, "must be a string"),
    (None, MlpxTypeError, "must be a string"),
])
def test_unknown_precisions_are_refused(precision, error, match):
    with pytest.raises(error, match=f"matmul_precision={precision!r}.*{match}"):
        mlpx.MLP([2, 3, 1], matmul_precision=precision)


# --- the products ---------------------------------------------------------------------------


def test_each_pre_activation_is_a_product_of_bfloat16_casts(bf16_backend):
    xp = bf16_backend.xp
    model = _model(bf16_backend)
    X = xp.asarray(_data()[0], device=bf16_backend.device)
    found = model.forward(X, return_intermediates=True)
    exact = _model(bf16_backend, "highest").forward(X, return_intermediates=True)
    inputs = [found.inputs, *found.activations[:-1]]
    for layer, a, z, z_exact in zip(model.layers, inputs, found.pre_activations,
                                    exact.pre_activations):
        product = xp.astype(a, xp.bfloat16) @ xp.astype(layer.W, xp.bfloat16)
        assert_close(z, xp.astype(product, xp.float32) + layer.b, backend=bf16_backend,
                     rtol=0, dtype=xp.float32)
        # bfloat16 is really in use: about 3 significant digits, not float32's 7
        difference = float(xp.max(xp.abs(z - z_exact)))
        assert 1e-5 < difference < 0.05 * float(xp.max(xp.abs(z_exact)))


def test_gradients_are_autograd_through_the_same_casts(bf16_backend):
    if bf16_backend.name != "torch":
        pytest.skip("the autograd oracle is torch's")
    import torch

    model = _model(bf16_backend)
    X, y = _data()
    loss, grads = model.loss_and_grads(X, y)

    leaves = [p.detach().clone().requires_grad_(True) for p in model.params]
    a = torch.as_tensor(X, device=bf16_backend.device)
    for i, name in enumerate(ACTIVATIONS):
        W, b = leaves[2 * i], leaves[2 * i + 1]
        z = (a.to(torch.bfloat16) @ W.to(torch.bfloat16)).float() + b
        a = {"relu": torch.relu, "tanh": torch.tanh}.get(name, lambda t: t)(z)
    targets = torch.as_tensor(y, device=bf16_backend.device)
    oracle_loss = torch.nn.functional.cross_entropy(a, targets)
    oracle_loss.backward()

    assert loss == pytest.approx(float(oracle_loss.detach()), rel=1e-5)
    exact_grads = _model(bf16_backend, "highest").loss_and_grads(X, y)[1]
    for grad, leaf, exact in zip(grads, leaves, exact_grads):
        assert grad.dtype == torch.float32
        scale = float(leaf.grad.abs().max())
        # equal up to float32 rounding (measured: at most 2e-7 of the scale) ...
        assert float((grad - leaf.grad).abs().max()) <= 1e-5 * scale
        # ... while float32 products give gradients 1e-3 to 1e-2 of the scale away
        assert float((exact - leaf.grad).abs().max()) > 1e-4 * scale


def test_training_keeps_float32_weights_and_moments(bf16_backend):
    xp = bf16_backend.xp
    model = _model(bf16_backend)
    X, y = _data(64)
    before = [to_numpy(p) for p in model.params]
    history = model.fit(X, y, epochs=3, batch_size=16, optimizer="adam")
    assert np.all(np.isfinite(history["loss"]))
    for param, old in zip(model.params, before):
        assert param.dtype == xp.float32
        assert not np.array_equal(to_numpy(param), old)
    moments = [array for array in _arrays(model.optimizer_state_)]
    assert moments and all(array.dtype == xp.float32 for array in moments)
    assert model.predict_proba(X).dtype == xp.float32


def _arrays(state):
    """Every array in a (nested) optimizer state."""
    if isinstance(state, dict):
        for value in state.values():
            yield from _arrays(value)
    elif isinstance(state, (list, tuple)):
        for value in state:
            yield from _arrays(value)
    elif hasattr(state, "dtype") and getattr(state, "ndim", 0) > 0:
        yield state


def test_bfloat16_learns_digits_as_well_as_float32(bf16_backend):
    X, y = mlpx.datasets.load_digits(return_X_y=True)
    order = np.random.default_rng(0).permutation(y.shape[0])
    X, y = to_numpy(X)[order] / 16.0, to_numpy(y)[order]
    scores = {}
    for precision in ("highest", "bfloat16"):
        model = mlpx.MLP([64, 64, 10], activations=["relu", "softmax"],
                         backend=bf16_backend.name, seed=0, matmul_precision=precision)
        model.fit(X[:1400], y[:1400], epochs=10, batch_size=64, learning_rate=3e-3)
        scores[precision] = model.score(X[1400:], y[1400:])
    assert scores["highest"] > 0.93
    assert abs(scores["bfloat16"] - scores["highest"]) < 0.03


def test_gradcheck_of_a_bfloat16_model_runs_in_full_precision(bf16_backend):
    X, y = _data(8)
    errors = mlpx.gradcheck(_model(bf16_backend), X, y)
    assert max(errors) < 1e-6


# --- the option survives copies and files -----------------------------------------------------


def test_the_precision_can_be_changed_on_a_trained_model(bf16_backend):
    """Train with bfloat16 products, evaluate with float32 ones, and back."""
    model = _model(bf16_backend)
    X, y = _data()
    model.fit(X, y, epochs=2, batch_size=8)
    trained = to_numpy(model.predict_proba(X))
    model.matmul_precision = "highest"
    exact = _model(bf16_backend, "highest")
    exact.params = model.params
    np.testing.assert_array_equal(to_numpy(model.predict_proba(X)),
                                  to_numpy(exact.predict_proba(X)))
    assert not np.array_equal(to_numpy(model.predict_proba(X)), trained)
    model.matmul_precision = "bfloat16"
    np.testing.assert_array_equal(to_numpy(model.predict_proba(X)), trained)


@pytest.mark.parametrize("value, error", [("bf16", MlpxValueError), (None, MlpxTypeError)])
def test_a_refused_precision_changes_nothing(backend, value, error):
    model = _model(backend, "highest")
    X = _data()[0]
    before = to_numpy(model.predict_proba(X))
    values = [value] if backend_supports("bfloat16", backend.xp) else [value, "bfloat16"]
    for bad in values:
        with pytest.raises(error if bad == value else MlpxValueError, match="matmul_precision"):
            model.matmul_precision = bad
        assert model.matmul_precision == "highest"
        np.testing.assert_array_equal(to_numpy(model.predict_proba(X)), before)


def test_pickle_clone_save_and_load_keep_the_precision(bf16_backend, tmp_path):
    model = _model(bf16_backend)
    X, y = _data()
    model.fit(X, y, epochs=2, batch_size=8)
    expected = to_numpy(model.predict_proba(X))
    path = tmp_path / "m.safetensors"
    model.save(path)
    copies = [pickle.loads(pickle.dumps(model)), model._clone(), mlpx.load(path)]
    for copy in copies:
        assert copy.matmul_precision == "bfloat16"
        assert "matmul_precision='bfloat16'" in repr(copy)
        np.testing.assert_array_equal(to_numpy(copy.predict_proba(X)), expected)


def test_a_bfloat16_model_loads_on_numpy_with_highest(bf16_backend, tmp_path):
    model = _model(bf16_backend)
    X, y = _data()
    model.fit(X, y, epochs=2, batch_size=8)
    path = tmp_path / "m.safetensors"
    model.save(path)
    with pytest.raises(MlpxValueError, match=r"pass matmul_precision='highest' to mlpx.load"):
        mlpx.load(path, backend="numpy")
    on_numpy = mlpx.load(path, backend="numpy", matmul_precision="highest")
    assert on_numpy.matmul_precision == "highest"
    np.testing.assert_allclose(on_numpy.predict_proba(X), to_numpy(model.predict_proba(X)),
                               atol=0.02)
    with pytest.raises(MlpxValueError, match="not one of"):
        mlpx.load(path, backend="numpy", matmul_precision="bf16")
    # asking for bfloat16 where it cannot run is the argument's fault, not the file's
    with pytest.raises(MlpxValueError, match=r"\(asked for\).*numpy backend") as caught:
        mlpx.load(path, backend="numpy", matmul_precision="bfloat16")
    assert not isinstance(caught.value, mlpx.MlpxFileError)


def test_load_refuses_bfloat16_products_for_a_float64_file(bf16_backend, tmp_path):
    path = tmp_path / "double.safetensors"
    mlpx.MLP([3, 2], backend=bf16_backend.name, dtype="float64").save(path)
    with pytest.raises(MlpxValueError, match="holds float64 ones") as caught:
        mlpx.load(path, matmul_precision="bfloat16")
    assert not isinstance(caught.value, mlpx.MlpxFileError)
    assert mlpx.load(path).matmul_precision == "highest"


def test_files_and_pickles_from_before_the_option_load_as_highest(tmp_path):
    model = mlpx.MLP([2, 3, 1], seed=0)
    state = model.__getstate__()
    del state["_matmul_precision"]
    restored = mlpx.MLP.__new__(mlpx.MLP)
    restored.__setstate__(state)
    assert restored.matmul_precision == "highest"
    restored.predict(np.zeros((1, 2)))

    from tests.test_io import _edit_config, _join, _split

    path = tmp_path / "old.safetensors"
    model.save(path)
    header, body = _split(path.read_bytes())
    config_without = lambda h: h["__metadata__"].update(  # noqa: E731
        model=h["__metadata__"]["model"].replace('"matmul_precision": "highest", ', ""))
    config_without(header)
    assert "matmul_precision" not in header["__metadata__"]["model"]
    path.write_bytes(_join(header, body))
    assert mlpx.load(path).matmul_precision == "highest"

    _edit_config(header, matmul_precision="bogus")
    path.write_bytes(_join(header, body))
    with pytest.raises(mlpx.MlpxFileError, match="matmul_precision"):
        mlpx.load(path)


# --- scikit-learn and the command line ----------------------------------------------------


def test_sklearn_estimators_pass_the_precision_on(backend):
    from mlpx.sklearn import MLPClassifier

    X, y = _data(60)
    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=3, random_state=0,
                        backend=backend, matmul_precision="bfloat16")
    assert clf.get_params()["matmul_precision"] == "bfloat16"
    if not backend_supports("bfloat16", backend.xp):
        with pytest.raises(MlpxValueError, match="matmul_precision='bfloat16'"):
            clf.fit(X, y)
        assert not hasattr(clf, "model_")
        return
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # max_iter=3 does not converge
        clf.fit(X, y)
    assert clf.model_.matmul_precision == "bfloat16"
    assert clf.predict(X).shape == (60,)


def test_sklearn_refuses_an_unknown_precision_before_fitting():
    from mlpx.sklearn import MLPClassifier

    clf = MLPClassifier(matmul_precision="half")
    with pytest.raises(MlpxValueError, match="matmul_precision='half' must be one of"):
        clf.fit(*_data())
    assert not hasattr(clf, "model_")


def test_cli_matmul_precision(backend, capsys):
    argv = ["train", "--dataset", "moons", "--epochs", "2", "--quiet", "--print-every", "0",
            "--backend", backend.name, "--matmul-precision", "bfloat16"]
    code = main(argv)
    out, err = capsys.readouterr()
    if not backend_supports("bfloat16", backend.xp):
        assert code != 0
        assert "--matmul-precision bfloat16" in err and "backend='torch'" in err
        assert "dataset:" not in out  # refused before the data was made
        return
    assert code == 0, err
    assert "(bfloat16 matrix products)" in out
    assert out.splitlines()[-1].startswith("test accuracy:")


# --- the host allocator ----------------------------------------------------------------------


def test_the_allocator_is_primed_only_for_torch_on_the_cpu(backend, monkeypatch):
    import platform

    from mlpx import _backend

    monkeypatch.setattr(_backend, "_allocator_primed", False)
    _backend.prime_host_allocator(backend)
    expected = (backend.name == "torch" and str(backend.device) == "cpu"
                and platform.libc_ver()[0] == "glibc")
    assert _backend._allocator_primed is expected
    _backend.prime_host_allocator(backend)  # once is enough: a second call does nothing
    assert _backend._allocator_primed is expected


def test_backend_report_says_where_bfloat16_products_run(backend):
    row = {r["backend"]: r for r in mlpx.backend_report()}[backend.name]
    assert ("bfloat16 products" in row["note"]) == backend_supports("bfloat16", backend.xp)
