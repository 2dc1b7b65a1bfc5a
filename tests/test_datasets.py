"""Tests for mlpx.datasets: generators, split, scaler, one_hot and digits on every backend."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from array_api_compat import array_namespace, device
from helpers import assert_close

from mlpx._backend import resolve_backend, to_numpy
from mlpx._errors import MlpxTypeError, MlpxValueError
from mlpx.datasets import (
    StandardScaler,
    load_digits,
    make_blobs,
    make_circles,
    make_moons,
    make_red_blue,
    make_spirals,
    make_xor,
    one_hot,
    train_test_split,
)

# name -> (generator, extra kwargs, n_samples used, n_features, label set)
GENERATORS = {
    "moons": (make_moons, {}, 101, 2, {0, 1}),
    "circles": (make_circles, {}, 101, 2, {0, 1}),
    "blobs": (make_blobs, {"centers": 4, "n_features": 3}, 101, 3, {0, 1, 2, 3}),
    "xor": (make_xor, {}, 101, 2, {0, 1}),
    "spirals": (make_spirals, {"n_classes": 3}, 101, 2, {0, 1, 2}),
    "red_blue": (make_red_blue, {}, 101, 2, {0, 1}),
    "red_blue_separable": (make_red_blue, {"separable": True}, 101, 2, {0, 1}),
}


def assert_on_backend(array, backend) -> None:
    """``array`` belongs to ``backend``'s namespace and lives on its device."""
    assert array_namespace(array) is backend.xp, f"{type(array)} is not a {backend.name} array"
    assert device(array) == backend.device


def make(name, seed=0, **kwargs):
    generator, extra, n_samples, _, _ = GENERATORS[name]
    return generator(n_samples=n_samples, seed=seed, **{**extra, **kwargs})


# --------------------------------------------------------------------------- generators


@pytest.mark.parametrize("name", sorted(GENERATORS))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_generator_shapes_dtypes_and_device(backend, name, dtype):
    _, _, n_samples, n_features, labels = GENERATORS[name]
    X, y = make(name, backend=backend, dtype=dtype)
    assert_on_backend(X, backend)
    assert_on_backend(y, backend)
    assert X.dtype == getattr(backend.xp, dtype)
    assert y.dtype == backend.xp.int64
    assert tuple(X.shape) == (n_samples, n_features)
    assert tuple(y.shape) == (n_samples,)
    assert set(np.unique(to_numpy(y)).tolist()) == labels
    assert np.all(np.isfinite(to_numpy(X)))


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_same_seed_gives_identical_data_on_every_backend(backend, name):
    X_ref, y_ref = make(name, seed=7, backend="numpy")
    X, y = make(name, seed=7, backend=backend)
    np.testing.assert_array_equal(to_numpy(X), to_numpy(X_ref))
    np.testing.assert_array_equal(to_numpy(y), to_numpy(y_ref))


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_same_seed_repeats_and_different_seeds_differ(name):
    X1, y1 = make(name, seed=1)
    X1_again, y1_again = make(name, seed=1)
    X2, _ = make(name, seed=2)
    np.testing.assert_array_equal(X1, X1_again)
    np.testing.assert_array_equal(y1, y1_again)
    assert not np.array_equal(X1, X2)


def test_generator_accepts_a_generator_and_none_as_seed():
    X_a, _ = make_moons(20, seed=np.random.default_rng(3))
    X_b, _ = make_moons(20, seed=np.random.default_rng(3))
    np.testing.assert_array_equal(X_a, X_b)
    X_none, _ = make_moons(20, seed=None)
    assert X_none.shape == (20, 2)


def test_generator_accepts_a_backend_object(backend):
    X, y = make_moons(10, seed=0, backend=backend)
    assert_on_backend(X, backend)
    assert_on_backend(y, backend)


def test_moons_follow_the_tutorial_recipe():
    X, y = make_moons(n_samples=101, noise=0.0, seed=0)
    upper, lower = X[y == 0].astype(np.float64), X[y == 1].astype(np.float64)
    assert len(upper) == 50 and len(lower) == 51
    np.testing.assert_allclose(np.hypot(upper[:, 0], upper[:, 1]), 1.0, atol=1e-6)
    assert np.all(upper[:, 1] >= -1e-6)
    np.testing.assert_allclose(np.hypot(lower[:, 0] - 1.0, lower[:, 1] - 0.5), 1.0, atol=1e-6)
    assert np.all(lower[:, 1] <= 0.5 + 1e-6)


def test_moons_noise_has_the_requested_spread():
    X0, y0 = make_moons(4000, noise=0.0, seed=5)
    X1, y1 = make_moons(4000, noise=0.3, seed=5)
    # same shuffle, so rows line up and the difference is the noise
    np.testing.assert_array_equal(y0, y1)
    assert abs(np.std(X1 - X0) - 0.3) < 0.02


def test_circles_radii_and_labels():
    X, y = make_circles(n_samples=100, noise=0.0, factor=0.3, seed=0)
    radius = np.hypot(X[:, 0], X[:, 1])
    np.testing.assert_allclose(radius[y == 0], 1.0, rtol=1e-6)
    np.testing.assert_allclose(radius[y == 1], 0.3, rtol=1e-6)
    assert np.bincount(y).tolist() == [50, 50]


def test_xor_labels_are_xor_of_corner_signs():
    X, y = make_xor(n_samples=8, noise=0.0, seed=0)
    assert set(map(tuple, X.tolist())) == {(-1, -1), (-1, 1), (1, -1), (1, 1)}
    np.testing.assert_array_equal(y, (np.sign(X[:, 0]) != np.sign(X[:, 1])).astype(np.int64))
    X, y = make_xor(n_samples=400, noise=0.1, seed=0)
    np.testing.assert_array_equal(y, ((X[:, 0] > 0) != (X[:, 1] > 0)).astype(np.int64))


def test_spirals_class_counts_and_radius():
    X, y = make_spirals(n_samples=301, n_classes=3, noise=0.0, seed=0)
    assert np.bincount(y).tolist() == [101, 100, 100]
    assert np.max(np.hypot(X[:, 0], X[:, 1])) <= 1.0 + 1e-6


def test_blobs_with_given_centers_and_zero_spread():
    centers = np.array([[0.0, 0.0, 0.0], [5.0, 5.0, 5.0]])
    X, y = make_blobs(n_samples=10, centers=centers, cluster_std=0.0, seed=0)
    assert X.shape == (10, 3)
    np.testing.assert_array_equal(X, centers[y].astype(np.float32))


def test_blobs_per_center_std_and_random_centers_in_box():
    X, y = make_blobs(n_samples=3000, centers=2, cluster_std=[0.1, 2.0], seed=0)
    spread = [np.std(X[y == k] - X[y == k].mean(axis=0)) for k in (0, 1)]
    assert abs(spread[0] - 0.1) < 0.02 and abs(spread[1] - 2.0) < 0.2
    X, y = make_blobs(n_samples=60, centers=3, cluster_std=0.0, center_box=(2.0, 3.0), seed=1)
    assert np.all((X >= 2.0) & (X <= 3.0))
    assert len(np.unique(X, axis=0)) == 3


def test_red_blue_matches_the_tutorial_clusters():
    X, y = make_red_blue(n_samples=100, seed=0)
    assert np.bincount(y).tolist() == [50, 50]
    centers = np.array([[0.0, 0.0], [1.0, 1.0], [0.0, 1.0], [1.0, 0.0]])
    nearest = np.argmin(((X[:, None, :] - centers[None]) ** 2).sum(axis=-1), axis=1)
    assert np.mean(np.array([0, 0, 1, 1])[nearest] == y) > 0.95
    # no line separates red from blue: the class means nearly coincide
    np.testing.assert_allclose(X[y == 0].mean(axis=0), X[y == 1].mean(axis=0), atol=0.15)


def test_red_blue_separable_variant():
    X, y = make_red_blue(n_samples=400, seed=0, separable=True)
    np.testing.assert_allclose(X[y == 0].mean(axis=0), [-2.0, -2.0], atol=0.25)
    np.testing.assert_allclose(X[y == 1].mean(axis=0), [2.0, 2.0], atol=0.25)


# --------------------------------------------------------------------------- split


def _paired(n, backend):
    """X whose first column is the row number, and y equal to it, on ``backend``."""
    rows = np.arange(n)
    X = np.column_stack([rows, rows * 10.0]).astype(np.float32)
    xp, dev = backend.xp, backend.device
    return xp.asarray(X, device=dev), xp.asarray(rows.astype(np.int64), device=dev)


@pytest.mark.parametrize(("test_size", "n_test"), [(0.2, 10), (0.25, 13), (7, 7), (0.01, 1)])
def test_split_sizes_backend_and_pairing(backend, test_size, n_test):
    X, y = _paired(50, backend)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=test_size, seed=0)
    for part in (X_train, X_test, y_train, y_test):
        assert_on_backend(part, backend)
    assert X_train.dtype == X.dtype and y_train.dtype == y.dtype
    assert tuple(X_test.shape) == (n_test, 2) and tuple(y_test.shape) == (n_test,)
    assert tuple(X_train.shape) == (50 - n_test, 2) and tuple(y_train.shape) == (50 - n_test,)
    for X_part, y_part in ((X_train, y_train), (X_test, y_test)):
        np.testing.assert_array_equal(to_numpy(X_part)[:, 0], to_numpy(y_part))
    rows = np.concatenate([to_numpy(y_train), to_numpy(y_test)])
    np.testing.assert_array_equal(np.sort(rows), np.arange(50))


def test_split_same_seed_same_rows_on_every_backend(backend):
    X, y = _paired(40, backend)
    X_np, y_np = _paired(40, resolve_backend("numpy"))
    got = train_test_split(X, y, seed=3)
    ref = train_test_split(X_np, y_np, seed=3)
    for part, ref_part in zip(got, ref, strict=True):
        np.testing.assert_array_equal(to_numpy(part), ref_part)
    other = train_test_split(X_np, y_np, seed=4)
    assert not np.array_equal(other[3], ref[3])


def test_split_without_shuffle_keeps_order(backend):
    X, y = _paired(10, backend)
    _, X_test, y_train, y_test = train_test_split(X, y, test_size=3, shuffle=False)
    np.testing.assert_array_equal(to_numpy(y_train), np.arange(7))
    np.testing.assert_array_equal(to_numpy(y_test), np.arange(7, 10))
    assert_close(
        X_test, np.column_stack([np.arange(7, 10), np.arange(70, 100, 10)]), backend=backend
    )


def test_split_accepts_lists_and_two_d_targets():
    X = [[float(i)] for i in range(10)]
    Y = np.column_stack([np.arange(10), -np.arange(10)])
    X_train, X_test, _, Y_test = train_test_split(X, Y, test_size=0.3, seed=0)
    assert isinstance(X_train, np.ndarray) and X_test.shape == (3, 1)
    np.testing.assert_array_equal(X_test[:, 0], Y_test[:, 0])


def test_stratified_split_keeps_class_proportions(backend):
    labels = np.repeat(np.arange(3), [60, 30, 10])
    xp, dev = backend.xp, backend.device
    X = xp.asarray(np.column_stack([np.arange(100.0), labels]), device=dev)
    y = xp.asarray(labels, device=dev)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, seed=0, stratify=True)
    assert np.bincount(to_numpy(y_test)).tolist() == [12, 6, 2]
    assert np.bincount(to_numpy(y_train)).tolist() == [48, 24, 8]
    np.testing.assert_array_equal(to_numpy(X_train)[:, 1], to_numpy(y_train))
    np.testing.assert_array_equal(to_numpy(X_test)[:, 1], to_numpy(y_test))
    rows = np.concatenate([to_numpy(X_train)[:, 0], to_numpy(X_test)[:, 0]])
    np.testing.assert_array_equal(np.sort(rows), np.arange(100.0))


def test_stratified_split_rounds_to_the_requested_size():
    y = np.repeat([0, 1, 2], [7, 7, 7])
    _, _, y_train, y_test = train_test_split(
        np.zeros((21, 1)), y, test_size=5, seed=0, stratify=True
    )
    assert len(y_test) == 5 and len(y_train) == 16
    assert set(np.bincount(y_test).tolist()) <= {1, 2}
    assert set(np.unique(y_train).tolist()) == {0, 1, 2}


def test_split_rejects_arrays_of_different_libraries():
    torch = pytest.importorskip("torch")
    X = torch.zeros((4, 2))
    y = resolve_backend("array_api_strict").xp.asarray([0, 1, 0, 1])
    with pytest.raises(MlpxTypeError, match="y is a array_api_strict array"):
        train_test_split(X, y)


# --------------------------------------------------------------------------- scaler


def test_scaler_zero_mean_unit_std_and_round_trip(backend):
    X, _ = make_blobs(200, centers=2, n_features=3, seed=0, backend=backend, dtype="float64")
    scaler = StandardScaler().fit(X)
    assert scaler.n_features_in_ == 3
    assert_on_backend(scaler.mean_, backend)
    assert_on_backend(scaler.scale_, backend)
    assert tuple(scaler.mean_.shape) == (3,) and tuple(scaler.scale_.shape) == (3,)
    X_host = to_numpy(X)
    assert_close(scaler.mean_, X_host.mean(axis=0), backend=backend, rtol=1e-12)
    assert_close(scaler.scale_, X_host.std(axis=0), backend=backend, rtol=1e-12)
    Z = scaler.transform(X)
    assert_on_backend(Z, backend)
    assert Z.dtype == X.dtype and tuple(Z.shape) == (200, 3)
    np.testing.assert_allclose(to_numpy(Z).mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(to_numpy(Z).std(axis=0), 1.0, rtol=1e-12)
    assert_close(scaler.inverse_transform(Z), X_host, backend=backend, rtol=1e-12, atol=1e-12)
    assert_close(StandardScaler().fit_transform(X), to_numpy(Z), backend=backend, rtol=1e-12)


def test_scaler_float32_keeps_dtype(backend):
    X, _ = make_moons(100, seed=0, backend=backend, dtype="float32")
    Z = StandardScaler().fit_transform(X)
    assert Z.dtype == backend.xp.float32
    np.testing.assert_allclose(to_numpy(Z).std(axis=0), 1.0, rtol=1e-5)


def test_scaler_constant_column_gets_scale_one(backend):
    host = np.column_stack([np.linspace(0.0, 1.0, 30), np.full(30, 0.1)])
    X = backend.xp.asarray(host, device=backend.device)
    scaler = StandardScaler().fit(X)
    assert to_numpy(scaler.scale_)[1] == 1.0
    Z = to_numpy(scaler.transform(X))
    assert np.all(np.isfinite(Z))
    np.testing.assert_allclose(Z[:, 1], 0.0, atol=1e-15)
    assert_close(scaler.inverse_transform(scaler.transform(X)), host, backend=backend, rtol=1e-12)


def test_scaler_on_integer_lists():
    Z = StandardScaler().fit_transform([[1, 2], [3, 4]])
    np.testing.assert_array_equal(Z, [[-1.0, -1.0], [1.0, 1.0]])


def test_scaler_moves_host_data_to_the_fitted_backend(backend):
    X, _ = make_moons(20, seed=0, backend=backend)
    scaler = StandardScaler().fit(X)
    Z = scaler.transform(to_numpy(X))
    assert_on_backend(Z, backend)


def test_scaler_errors():
    with pytest.raises(MlpxValueError, match=r"not fitted yet; call fit\(X\) before transform"):
        StandardScaler().transform(np.zeros((2, 2)))
    with pytest.raises(MlpxValueError, match="before inverse_transform"):
        StandardScaler().inverse_transform(np.zeros((2, 2)))
    scaler = StandardScaler().fit(np.zeros((4, 2)))
    with pytest.raises(MlpxValueError, match="X has 3 features but the scaler was fitted on 2"):
        scaler.transform(np.zeros((4, 3)))
    with pytest.raises(MlpxValueError, match="X must be 2-D"):
        StandardScaler().fit(np.zeros(4))
    with pytest.raises(MlpxValueError, match="X has 0 rows"):
        StandardScaler().fit(np.zeros((0, 2)))


# --------------------------------------------------------------------------- one_hot


def test_one_hot_values_on_backend(backend):
    labels = np.array([2, 0, 1, 2, 0])
    y = backend.xp.asarray(labels, device=backend.device)
    encoded = one_hot(y)
    assert_close(
        encoded, np.eye(3)[labels], backend=backend, dtype=backend.xp.float32, shape=(5, 3)
    )
    wide = one_hot(y, 5, dtype="float64")
    assert_close(wide, np.eye(5)[labels], backend=backend, dtype=backend.xp.float64, shape=(5, 5))


def test_one_hot_of_generated_labels(backend):
    _, y = make_spirals(30, n_classes=3, seed=0, backend=backend)
    encoded = one_hot(y, 3)
    np.testing.assert_array_equal(np.argmax(to_numpy(encoded), axis=1), to_numpy(y))


def test_one_hot_lists_and_empty():
    np.testing.assert_array_equal(one_hot([1, 0]), [[0.0, 1.0], [1.0, 0.0]])
    assert one_hot(np.zeros(0, dtype=np.int64), 4).shape == (0, 4)


# --------------------------------------------------------------------------- digits


def test_load_digits(backend):
    pytest.importorskip("sklearn")
    X, y = load_digits(backend=backend)
    assert_on_backend(X, backend)
    assert_on_backend(y, backend)
    assert tuple(X.shape) == (1797, 64) and tuple(y.shape) == (1797,)
    assert X.dtype == backend.xp.float32 and y.dtype == backend.xp.int64
    X_host, y_host = to_numpy(X), to_numpy(y)
    assert X_host.min() == 0.0 and X_host.max() == 16.0
    assert set(np.unique(y_host).tolist()) == set(range(10))


def test_load_digits_bunch():
    pytest.importorskip("sklearn")
    bunch = load_digits(return_X_y=False, dtype="float64")
    assert bunch.data.shape == (1797, 64) and bunch.data.dtype == np.float64
    assert bunch.images.shape == (1797, 8, 8)
    np.testing.assert_array_equal(bunch.images.reshape(1797, 64), bunch.data)


def test_load_digits_without_sklearn_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)
    with pytest.raises(ImportError, match="pip install scikit-learn"):
        load_digits()


# --------------------------------------------------------------------------- bad input


BAD_INPUTS = [
    (make_moons, {"n_samples": 0}, MlpxValueError, r"n_samples=0 .*int >= 1"),
    (make_moons, {"n_samples": 2.5}, MlpxTypeError, r"n_samples=2\.5 must be an int"),
    (make_moons, {"n_samples": True}, MlpxTypeError, r"n_samples=True must be an int"),
    (make_moons, {"noise": -0.1}, MlpxValueError, r"noise=-0\.1 .*finite number >= 0"),
    (make_moons, {"noise": float("nan")}, MlpxValueError, r"noise=nan"),
    (make_moons, {"noise": "big"}, MlpxTypeError, r"noise='big' must be a number"),
    (make_moons, {"seed": -1}, MlpxValueError, r"seed=-1 must be None, an int >= 0"),
    (make_moons, {"seed": "abc"}, MlpxValueError, r"seed='abc'"),
    (make_moons, {"backend": "nope"}, MlpxValueError, r"backend='nope' is not known"),
    (make_moons, {"dtype": "int8"}, MlpxValueError, r"dtype='int8' is not supported"),
    (make_circles, {"factor": 1.0}, MlpxValueError, r"factor=1\.0 must be in \[0, 1\)"),
    (make_circles, {"factor": "x"}, MlpxTypeError, r"factor='x'"),
    (make_circles, {"n_samples": -5}, MlpxValueError, r"n_samples=-5"),
    (make_xor, {"noise": -1}, MlpxValueError, r"noise=-1"),
    (make_spirals, {"n_classes": 1}, MlpxValueError, r"n_classes=1 .*int >= 2"),
    (make_spirals, {"n_classes": 2.0}, MlpxTypeError, r"n_classes=2\.0 must be an int"),
    (make_spirals, {"noise": -0.2}, MlpxValueError, r"noise=-0\.2"),
    (make_blobs, {"centers": 0}, MlpxValueError, r"centers=0 .*int >= 1"),
    (make_blobs, {"centers": [1.0, 2.0]}, MlpxValueError, r"centers has shape \(2,\)"),
    (make_blobs, {"centers": "abc"}, MlpxTypeError, r"centers='abc'"),
    (
        make_blobs,
        {"centers": [[0, 0]], "n_features": 3},
        MlpxValueError,
        r"n_features=3 does not match centers of shape \(1, 2\)",
    ),
    (make_blobs, {"n_features": 0}, MlpxValueError, r"n_features=0"),
    (make_blobs, {"cluster_std": -1.0}, MlpxValueError, r"cluster_std=-1\.0"),
    (
        make_blobs,
        {"cluster_std": [1.0, 2.0]},
        MlpxValueError,
        r"cluster_std has shape \(2,\) but there are 3 centers",
    ),
    (make_blobs, {"center_box": (1.0, -1.0)}, MlpxValueError, r"center_box=\(1\.0, -1\.0\)"),
    (make_blobs, {"center_box": 5}, MlpxTypeError, r"center_box=5 must be a pair"),
    (make_red_blue, {"n_samples": 0}, MlpxValueError, r"n_samples=0"),
    (make_red_blue, {"separable": "yes"}, MlpxTypeError, r"separable='yes'"),
    (load_digits, {"dtype": "float16"}, MlpxValueError, r"dtype='float16'"),
]


@pytest.mark.parametrize(("function", "kwargs", "error", "match"), BAD_INPUTS)
def test_generators_reject_bad_input(function, kwargs, error, match):
    if function is load_digits:
        pytest.importorskip("sklearn")
    with pytest.raises(error, match=match):
        function(**kwargs)


X10, Y10 = np.zeros((10, 2)), np.arange(10) % 2

BAD_SPLITS = [
    ({"test_size": 1.5}, MlpxValueError, r"test_size=1\.5 is out of range; pass a fraction"),
    ({"test_size": 0.0}, MlpxValueError, r"test_size=0\.0"),
    ({"test_size": 0}, MlpxValueError, r"test_size=0 gives 0 test rows"),
    ({"test_size": 10}, MlpxValueError, r"test_size=10 gives 10 test rows out of 10"),
    ({"test_size": "20%"}, MlpxTypeError, r"test_size='20%' must be a number"),
    ({"y": np.arange(9)}, MlpxValueError, r"X has 10 rows but y has 9"),
    ({"seed": -3}, MlpxValueError, r"seed=-3"),
    ({"shuffle": "no"}, MlpxTypeError, r"shuffle='no'"),
    ({"stratify": True, "shuffle": False}, MlpxValueError, r"stratify=True needs shuffle=True"),
    (
        {"stratify": True, "y": np.array([0] * 9 + [1])},
        MlpxValueError,
        r"at least 2 rows per class, but class 1 has 1",
    ),
    (
        {"stratify": True, "test_size": 1},
        MlpxValueError,
        r"with 2 classes needs at least 2 rows in each set",
    ),
    ({"stratify": True, "y": np.eye(10)}, MlpxValueError, r"stratify=True needs 1-D"),
]


@pytest.mark.parametrize(("kwargs", "error", "match"), BAD_SPLITS)
def test_split_rejects_bad_input(kwargs, error, match):
    arguments = {"X": X10, "y": Y10, **kwargs}
    with pytest.raises(error, match=match):
        train_test_split(**arguments)


def test_split_needs_two_rows():
    with pytest.raises(MlpxValueError, match="X has 1 rows; a train/test split needs"):
        train_test_split(np.zeros((1, 2)), np.zeros(1))


BAD_ONE_HOT = [
    ({"y": np.array([0.0, 1.0])}, MlpxValueError, r"y must be a 1-D array of integer"),
    ({"y": np.array([[0, 1]])}, MlpxValueError, r"got shape \(1, 2\)"),
    (
        {"y": np.array([0, 2]), "n_classes": 2},
        MlpxValueError,
        r"label 2 but n_classes=2; .*n_classes=3",
    ),
    ({"y": np.array([0, -1])}, MlpxValueError, r"label -1; labels must be in \[0, n_classes\)"),
    ({"y": np.array([0, 1]), "n_classes": 0}, MlpxValueError, r"n_classes=0"),
    ({"y": np.array([0, 1]), "n_classes": 2.0}, MlpxTypeError, r"n_classes=2\.0"),
    ({"y": np.array([0, 1]), "dtype": "int32"}, MlpxValueError, r"dtype='int32'"),
    ({"y": np.zeros(0, dtype=np.int64)}, MlpxValueError, r"y is empty; pass n_classes"),
]


@pytest.mark.parametrize(("kwargs", "error", "match"), BAD_ONE_HOT)
def test_one_hot_rejects_bad_input(kwargs, error, match):
    with pytest.raises(error, match=match):
        one_hot(**kwargs)


def test_one_hot_rejects_float_labels_on_backend(backend):
    y = backend.xp.asarray([0.0, 1.0], device=backend.device)
    with pytest.raises(MlpxValueError, match="integer class labels"):
        one_hot(y)
