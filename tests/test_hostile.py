"""Hostile input: every outcome is success or an mlpx error with a message.

Hypothesis feeds ``MLP.fit/predict/predict_proba/evaluate/score``, the scikit-learn
estimators and the command line random shapes, dtypes (int, bool, float16, complex, object,
strings, datetimes), NaN/inf, huge and tiny values, empty and single-sample arrays, mismatched
lengths and garbage keyword arguments. The rules:

- success: every parameter is finite, and the outputs are finite and of the right shape;
- or an mlpx error (``MlpxValueError``, ``MlpxTypeError``, ...) with a non-empty message, and
  the parameters bitwise unchanged;
- or ``NonFiniteLossError`` during fit (training diverged), the model keeping finite weights;
- never an exception from inside NumPy (IndexError, OverflowError, a bare TypeError, ...).

scikit-learn estimators may also raise scikit-learn's own ValueError/TypeError from its
validation. ``mlpx.cli.main`` returns 0, 1 or 2 and never raises.

The last part checks extreme but valid values: float32 features of size 1e30 and output
logits of +-1e4 give finite losses and gradients.
"""

from __future__ import annotations

import contextlib
import io
import math
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import mlpx
from mlpx import MLP, MlpxTypeError, MlpxValueError, NonFiniteLossError
from mlpx.cli import main

MLPX_ERRORS = (MlpxValueError, MlpxTypeError, mlpx.BackendUnavailableError)
N_FEATURES = 2
RNG = np.random.default_rng(0)
X_GOOD = RNG.normal(size=(8, N_FEATURES))
Y_GOOD = {
    "sigmoid": np.array([0, 1] * 4),
    "softmax": np.array([0, 1, 2, 0, 1, 2, 0, 1]),
    "regression": RNG.normal(size=8),
}
MODELS = {
    "sigmoid": ([N_FEATURES, 3, 1], ["relu", "sigmoid"]),
    "softmax": ([N_FEATURES, 3, 3], ["tanh", "softmax"]),
    "regression": ([N_FEATURES, 3, 1], ["relu", "identity"]),
}
KINDS = tuple(MODELS)
HEALTH = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
          HealthCheck.data_too_large, HealthCheck.filter_too_much]


def hostile_settings(max_examples: int):
    return settings(max_examples=max_examples, deadline=None, suppress_health_check=HEALTH,
                    derandomize=True)


# --------------------------------------------------------------------------- strategies

DTYPES = ("int8", "int64", "uint8", "bool", "float16", "float32", "float64", "complex64",
          "object", "<U3", "datetime64[s]")
NUMBERS = (math.nan, math.inf, -math.inf, 1e30, -1e30, 1e-30, -0.0, 0.0, 1.0, -1.0, 0.5, 2.0,
           3.0, 1e300)
TEXTS = ("a", "1", "nan", "", "1e3", "-0", "inf", "é")


def _cast(values: np.ndarray, dtype: str) -> np.ndarray:
    """``values`` (float64) as ``dtype``, whatever NumPy makes of NaN/inf/overflow."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        values = np.asarray(values)
        if dtype == "<U3":
            return values.astype(dtype)
        if dtype == "object":
            out = values.astype(object)
            if out.size:
                out.flat[0] = None  # a missing value among the numbers
            return out
        if dtype == "datetime64[s]":
            return np.nan_to_num(values, posinf=0, neginf=0).astype(np.int64).astype(dtype)
        return values.astype(dtype)


@st.composite
def hostile_arrays(draw, n_rows=None, n_cols=N_FEATURES, max_ndim: int = 3):
    """NumPy arrays of random ndim, shape, dtype and (hostile) values."""
    ndim = draw(st.integers(0, max_ndim))
    row_sizes = st.sampled_from([0, 1, 2, 3, 8, 9]) if n_rows is None else st.sampled_from(
        [n_rows, n_rows, n_rows, 0, 1, n_rows + 1])
    col_sizes = st.sampled_from([n_cols, n_cols, n_cols, 0, 1, n_cols + 1])
    shape = tuple(draw(row_sizes if axis == 0 else col_sizes) for axis in range(ndim))
    size = math.prod(shape)
    values = np.array(draw(st.lists(st.sampled_from(NUMBERS), min_size=size, max_size=size)),
                      dtype=np.float64).reshape(shape)
    if draw(st.booleans()):  # often only finite, ordinary values: the dtype is the test
        values = np.nan_to_num(values, nan=1.0, posinf=2.0, neginf=-2.0)
    dtype = draw(st.sampled_from(DTYPES))
    if dtype == "<U3" and draw(st.booleans()):
        text = draw(st.lists(st.sampled_from(TEXTS), min_size=size, max_size=size))
        return np.array(text, dtype="<U3").reshape(shape)
    return _cast(values, dtype)


def not_arrays():
    """Python objects that are not arrays, or not rectangular ones."""
    return st.sampled_from([
        None, 0, 1.5, math.nan, True, "abc", b"xy", 1j, {}, {"a": 1}, {1, 2}, object(),
        [[1.0, 2.0], [3.0]], [[1.0, [2.0]], [3.0, 4.0]], [[10**400, 1]], [],
        [[]], [[1, "a"]] * 8, [[None, None]] * 8,
    ])


def hostile_X(n_rows=None):
    return st.one_of(
        hostile_arrays(n_rows=n_rows),
        hostile_arrays(n_rows=n_rows).map(lambda a: a.tolist()),
        not_arrays(),
        st.just(X_GOOD),
    )


@st.composite
def hostile_y(draw, kind: str, n_rows: int = 8):
    """Labels or targets: good ones, wrong lengths, unseen classes, 2-D, text, junk."""
    good = Y_GOOD[kind]
    choice = draw(st.integers(0, 6))
    if choice == 0:
        return good
    if choice == 1:
        return good[: draw(st.sampled_from([0, 1, 7]))]  # too short
    if choice == 2:
        return np.concatenate([good, good[:1]])  # too long
    if choice == 3:  # unseen classes
        return np.full(n_rows, draw(st.sampled_from([5, -1, 0.5, 1e30, "zebra", True])))
    if choice == 4:
        n_cols = draw(st.sampled_from([1, 2, 3]))
        return draw(hostile_arrays(n_rows=n_rows, n_cols=n_cols))
    if choice == 5:
        return draw(hostile_arrays(n_rows=n_rows, max_ndim=1)).tolist()
    return draw(not_arrays())


# --------------------------------------------------------------------------- checks


def host_params(model: MLP) -> list[np.ndarray]:
    return [np.array(mlpx.to_numpy(p), copy=True) for p in model.copy_params()]


def assert_same_params(model: MLP, before: list[np.ndarray], what: str) -> None:
    after = host_params(model)
    assert len(after) == len(before)
    for i, (new, old) in enumerate(zip(after, before)):
        assert new.dtype == old.dtype and new.shape == old.shape, f"{what}: params[{i}] form"
        assert new.tobytes() == old.tobytes(), f"{what} changed params[{i}]"


def assert_finite_params(model: MLP, what: str) -> None:
    for i, p in enumerate(host_params(model)):
        assert np.all(np.isfinite(p)), f"{what} left NaN/inf in params[{i}]"


def outcome(model: MLP, call, *, what: str, may_diverge: bool = False):
    """Run ``call``; check the rules of the module docstring. Returns the result or None."""
    before = host_params(model)
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            result = call()
    except NonFiniteLossError as exc:
        assert may_diverge, f"{what}: NonFiniteLossError outside fit: {exc}"
        assert str(exc), f"{what}: NonFiniteLossError without a message"
        assert_finite_params(model, what)
        return None
    except MLPX_ERRORS as exc:
        assert str(exc).strip(), f"{what}: {type(exc).__name__} without a message"
        assert_same_params(model, before, what)
        return None
    assert_finite_params(model, what)
    return result


def fitted_model(kind: str, backend="numpy") -> MLP:
    sizes, activations = MODELS[kind]
    model = MLP(sizes, activations, backend=backend, seed=0)
    model.fit(X_GOOD, Y_GOOD[kind], epochs=2, batch_size=4)
    return model


def n_rows_of(X) -> int | None:
    try:
        shape = np.shape(X)
    except ValueError:
        return None
    return shape[0] if len(shape) == 2 else None


def check_result(model: MLP, method: str, X, result) -> None:
    """The shape and finiteness a successful call must have."""
    if result is None:
        return
    n = n_rows_of(X)
    if method == "predict_proba":
        proba = mlpx.to_numpy(result)
        assert proba.shape == (n, model.n_outputs)
        assert np.all((proba >= 0) & (proba <= 1)), "probabilities outside [0, 1]"
    elif method == "predict":
        pred = mlpx.to_numpy(result)
        assert pred.shape[0] == n
        if pred.dtype.kind == "f":
            assert np.all(np.isfinite(pred)), "predict returned NaN/inf for accepted X"
    elif method == "evaluate":
        assert set(result) >= {"loss"}
        assert not any(math.isnan(v) for v in result.values()), f"NaN in {result}"
        if model.is_classifier:
            assert math.isfinite(result["loss"]), f"classifier loss not finite: {result}"
    elif method == "score":
        assert not math.isnan(result), "score is NaN"
        if model.is_classifier:
            assert 0.0 <= result <= 1.0


def call_method(model: MLP, method: str, X, y):
    if method == "fit":
        return model.fit(X, y, epochs=2, batch_size=4)
    if method in ("predict", "predict_proba"):
        return getattr(model, method)(X)
    return getattr(model, method)(X, y)


# --------------------------------------------------------------------------- MLP, NumPy


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("method", ["predict", "predict_proba"])
@hostile_settings(60)
@given(X=hostile_X())
def test_mlp_predict_hostile_X(kind, method, X):
    model = fitted_model(kind)
    if method == "predict_proba" and not model.is_classifier:
        with pytest.raises(MlpxTypeError):
            model.predict_proba(X_GOOD)
        return
    result = outcome(model, lambda: call_method(model, method, X, None), what=method)
    check_result(model, method, X, result)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("method", ["fit", "evaluate", "score"])
@hostile_settings(40)
@given(data=st.data())
def test_mlp_Xy_hostile(kind, method, data):
    X = data.draw(st.one_of(hostile_X(n_rows=8), st.just(X_GOOD)), label="X")
    y = data.draw(hostile_y(kind), label="y")
    model = fitted_model(kind)
    result = outcome(model, lambda: call_method(model, method, X, y), what=method,
                     may_diverge=method == "fit")
    check_result(model, method, X, result)


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
@hostile_settings(400)
@given(data=st.data())
def test_mlp_all_methods_hostile_slow(kind, data):
    X = data.draw(hostile_X(), label="X")
    y = data.draw(hostile_y(kind), label="y")
    method = data.draw(st.sampled_from(["fit", "predict", "predict_proba", "evaluate",
                                        "score"]), label="method")
    model = fitted_model(kind)
    if method == "predict_proba" and not model.is_classifier:
        return
    result = outcome(model, lambda: call_method(model, method, X, y), what=method,
                     may_diverge=method == "fit")
    check_result(model, method, X, result)


class _NotACallback:
    pass


FIT_KWARGS = {
    "epochs": st.one_of(st.integers(-2, 3), st.sampled_from(
        [0, 1.5, "2", None, True, np.int64(2), np.float64(2.0), math.nan, np.array([1, 2]),
         np.array(2)])),
    "batch_size": st.one_of(st.integers(-1, 10), st.sampled_from(
        [None, 0, 2.5, "4", True, np.int32(3), np.array([1, 2]), math.inf])),
    "learning_rate": st.one_of(
        st.floats(allow_nan=True, allow_infinity=True),
        st.sampled_from([None, "0.1", -1, 0, 1e300, True, 1j, np.float32(1e-3),
                         np.array([1e-3, 2e-3]), [0.1]])),
    "optimizer": st.sampled_from(["sgd", "adam", "ADAM", "rmsprop", "adagrad", "adamw",
                                  "bogus", "", None, 3, ["adam"]]),
    "tol": st.sampled_from([None, 0, -1, math.nan, math.inf, 1e-3, "x", True,
                            np.float32(0.1), 1e300]),
    "shuffle": st.sampled_from([True, False, "yes", None, 2]),
    "callbacks": st.sampled_from([None, [], [1], "abc", [None], [_NotACallback()],
                                  mlpx.Callback, [mlpx.Callback], [mlpx.Callback()],
                                  [mlpx.EarlyStopping(monitor="val_loss")], lambda: 0,
                                  [mlpx.TerminateOnNaN()]]),
    "sample_weight": st.one_of(
        st.sampled_from([None, 1.0, 0.0, -1.0, math.nan, 10**400, 1.7e308, "w", True,
                         np.complex128(1), [[1.0], [1.0, 2.0]], [1.0] * 7, [1.0] * 9,
                         np.full(8, 1e308), np.r_[np.zeros(7), 1.0]]),
        hostile_arrays(n_rows=8, max_ndim=2)),
    "class_weight": st.sampled_from([
        None, "balanced", "bogus", {0: 1, 1: 2}, {5: 1}, {0: -1}, {0: math.nan}, {0: "a"},
        [1, 2], {0: 1e308}, {0: np.complex128(1)}, {"zebra": 1.0}, {0: True}, 3]),
    "validation_data": st.sampled_from([
        None, "ab", (X_GOOD,), (X_GOOD, None, None), {1: 2, 3: 4}, (None, None),
        (np.full((2, N_FEATURES), math.nan), [0, 1]), (X_GOOD[:3], [0, 1]),
        (np.zeros((0, N_FEATURES)), []), (X_GOOD, ["a"] * 8), (np.ones((2, 5)), [0, 1])]),
}


@pytest.mark.parametrize("kind", KINDS)
@hostile_settings(60)
@given(data=st.data())
def test_mlp_fit_hostile_kwargs(kind, data):
    names = data.draw(st.sets(st.sampled_from(sorted(FIT_KWARGS)), min_size=1, max_size=3),
                      label="kwargs")
    kwargs = {name: data.draw(FIT_KWARGS[name], label=name) for name in sorted(names)}
    kwargs.setdefault("epochs", 2)
    if kwargs.get("validation_data") is not None and isinstance(kwargs["validation_data"],
                                                                tuple):
        pair = kwargs["validation_data"]
        if len(pair) == 2 and pair[1] is not None and isinstance(pair[1], list) and \
                len(pair[1]) == 2 and kind == "regression":
            kwargs["validation_data"] = (pair[0], [0.5, -0.5])
    model = fitted_model(kind)
    outcome(model, lambda: model.fit(X_GOOD, Y_GOOD[kind], **kwargs), what=f"fit{kwargs}",
            may_diverge=True)


# --------------------------------------------------------------------------- known bugs
# Each found by the suites above, minimised. The ones whose fix is outside
# _backend/_targets/sample_weights fail until that module is fixed (see the report).


@pytest.mark.parametrize("kind", KINDS)
def test_float64_X_beyond_float32_range_is_refused(kind):
    """1e300 is finite in float64 but inf in the model's float32: refuse, never NaN out."""
    model = fitted_model(kind)
    X = np.full((2, N_FEATURES), 1e300)
    before = host_params(model)
    with pytest.raises(MlpxValueError):
        model.predict(X)
    with pytest.raises(MlpxValueError):
        model.fit(np.full((8, N_FEATURES), 1e300), Y_GOOD[kind], epochs=1)
    assert_same_params(model, before, "fit with X beyond float32")


@pytest.mark.parametrize("X", [[[10**400, 1]], np.array([[10**400, 1]], dtype=object)])
def test_python_ints_beyond_float64_in_X_are_refused(X):
    model = fitted_model("sigmoid")
    with pytest.raises(MlpxTypeError):
        model.predict(X)


@pytest.mark.parametrize("kind", KINDS)
def test_python_ints_beyond_float64_in_y_are_refused(kind):
    model = fitted_model(kind)
    with pytest.raises(MLPX_ERRORS):
        model.evaluate(X_GOOD, [10**400] * 8)


@pytest.mark.parametrize("name", ["epochs", "batch_size", "learning_rate"])
def test_array_valued_fit_numbers_are_refused(name):
    model = fitted_model("sigmoid")
    before = host_params(model)
    with pytest.raises(MLPX_ERRORS):
        model.fit(X_GOOD, Y_GOOD["sigmoid"], **{"epochs": 1, name: np.array([1, 2])})
    assert_same_params(model, before, name)


@pytest.mark.parametrize("sample_weight", [
    [[1.0], [1.0, 2.0]] * 4, np.full(8, 1.7e308), 10**400, np.complex128(1.0)])
def test_unreadable_or_overflowing_sample_weight_is_refused(sample_weight):
    model = fitted_model("sigmoid")
    before = host_params(model)
    with pytest.raises(MLPX_ERRORS):
        model.fit(X_GOOD, Y_GOOD["sigmoid"], epochs=1, sample_weight=sample_weight)
    assert_same_params(model, before, "fit")


def test_class_weight_complex_is_refused():
    model = fitted_model("sigmoid")
    with pytest.raises(MLPX_ERRORS):
        model.fit(X_GOOD, Y_GOOD["sigmoid"], epochs=1, class_weight={0: np.complex128(1)})


def test_sample_weight_times_class_weight_overflow_is_refused():
    """Each factor is finite, their product is not: an error, never OverflowError."""
    model = fitted_model("sigmoid")
    before = host_params(model)
    with pytest.raises(MLPX_ERRORS):
        model.fit(X_GOOD, Y_GOOD["sigmoid"], epochs=1, sample_weight=np.full(8, 1e300),
                  class_weight={0: 1e300, 1: 1e300})
    assert_same_params(model, before, "fit")


def test_regression_score_with_huge_targets_is_not_nan():
    """Targets of 1e30 in float32: (y - mean)**2 overflows; R^2 must not come out NaN."""
    model = fitted_model("regression")
    y = np.array([1e30, -1e30] * 4)
    with np.errstate(all="ignore"):
        score = model.score(X_GOOD, y)
    assert not math.isnan(score)


# --------------------------------------------------------------------------- other backends


BACKEND_DTYPES = ("int8", "int64", "uint8", "bool", "float16", "float32", "float64",
                  "complex64")


@pytest.mark.parametrize("kind", ["sigmoid", "regression"])
@hostile_settings(15)
@given(data=st.data())
def test_backend_hostile_dtypes(backend, kind, data):
    """fit and predict with the backend's own arrays of hostile dtypes and values."""
    xp = backend.xp
    dtype_name = data.draw(st.sampled_from(BACKEND_DTYPES), label="dtype")
    dtype = getattr(xp, dtype_name, None)
    assume(dtype is not None)
    rows = data.draw(st.sampled_from([8, 8, 1, 0]), label="rows")
    cols = data.draw(st.sampled_from([N_FEATURES, N_FEATURES, 3]), label="cols")
    values = np.array(data.draw(st.lists(st.sampled_from(NUMBERS), min_size=rows * cols,
                                         max_size=rows * cols)), dtype=np.float64)
    host = _cast(values.reshape(rows, cols), np.dtype(dtype_name).str if dtype_name != "bool"
                 else "bool")
    try:
        X = xp.asarray(host, device=backend.device)
    except (TypeError, ValueError, RuntimeError):
        assume(False)
    model = fitted_model(kind, backend=backend)
    method = data.draw(st.sampled_from(["fit", "predict"]), label="method")
    y = Y_GOOD[kind] if rows == 8 else Y_GOOD[kind][:rows]
    result = outcome(model, lambda: call_method(model, method, X, y), what=method,
                     may_diverge=method == "fit")
    if method == "predict" and result is not None:
        pred = mlpx.to_numpy(result)
        assert pred.shape[0] == rows
        if pred.dtype.kind == "f":
            assert np.all(np.isfinite(pred))


# --------------------------------------------------------------------------- scikit-learn


sklearn = pytest.importorskip("sklearn")
from mlpx.sklearn import MLPClassifier, MLPRegressor  # noqa: E402

SKLEARN_OK = (ValueError, TypeError)  # mlpx errors and scikit-learn's validation errors


def fitted_estimator(kind: str):
    if kind == "regression":
        est = MLPRegressor(hidden_layer_sizes=(3,), max_iter=2, random_state=0)
    else:
        est = MLPClassifier(hidden_layer_sizes=(3,), max_iter=2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return est.fit(X_GOOD, Y_GOOD["softmax" if kind == "softmax" else kind])


def sk_params(est) -> list[np.ndarray]:
    return [np.array(mlpx.to_numpy(a), copy=True) for a in [*est.coefs_, *est.intercepts_]]


@pytest.mark.parametrize("kind", ["sigmoid", "softmax", "regression"])
@hostile_settings(30)
@given(data=st.data())
def test_sklearn_hostile(kind, data):
    est = fitted_estimator(kind)
    method = data.draw(st.sampled_from(
        ["fit", "predict", "score", "partial_fit"]
        + (["predict_proba"] if kind != "regression" else [])), label="method")
    X = data.draw(hostile_X(n_rows=8), label="X")
    y = data.draw(hostile_y(kind), label="y")
    sample_weight = data.draw(st.one_of(st.none(), FIT_KWARGS["sample_weight"]),
                              label="sample_weight") if method in ("fit", "score") else None
    before = sk_params(est)
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            if method in ("predict", "predict_proba"):
                result = getattr(est, method)(X)
            elif method == "score":
                result = est.score(X, y, sample_weight=sample_weight)
            elif method == "fit":
                result = est.fit(X, y, sample_weight=sample_weight)
            else:
                result = est.partial_fit(X, y)
    except NonFiniteLossError as exc:
        assert str(exc)
        assert all(np.all(np.isfinite(p)) for p in sk_params(est))
        return
    except SKLEARN_OK as exc:
        assert str(exc).strip(), f"{type(exc).__name__} without a message"
        after = sk_params(est)
        assert all(a.tobytes() == b.tobytes() for a, b in zip(after, before)), \
            f"{method} changed coefs_ though it raised {exc!r}"
        return
    assert all(np.all(np.isfinite(p)) for p in sk_params(est)), f"{method}: NaN in coefs_"
    if method in ("predict", "predict_proba"):
        out = np.asarray(mlpx.to_numpy(result))
        if out.dtype.kind == "f":
            assert np.all(np.isfinite(out)), f"{method} returned NaN/inf for accepted X"
    if method == "score":
        assert not math.isnan(result)


# --------------------------------------------------------------------------- command line


CSV_CELLS = ("1", "0", "2", "a", "nan", "", "1e30", "1e400", "-0.0", "NA", "?", "é", '"',
             "1.5", "-3", "true")
OPTION_VALUES = {
    "--epochs": ["1", "2", "0", "-1", "1e3", "x", ""],
    "--batch-size": ["1", "4", "full", "0", "x", "none"],
    "--lr": ["0.1", "0", "nan", "inf", "-1", "1e300", "x"],
    "--hidden": ["3", "none", "0", "3,x", "", "2,2"],
    "--test-size": ["0.2", "0", "1", "0.9999", "3", "100", "x", "-0.5"],
    "--target": ["0", "1", "-1", "99", "y", "X", "a", ""],
    "--task": ["auto", "classification", "regression", "bogus"],
    "--optimizer": ["sgd", "adam", "bogus"],
    "--dtype": ["float32", "float64", "int8"],
    "--seed": ["0", "-1", "x"],
    "--backend": ["numpy", "bogus"],
    "--device": ["cpu", "cuda:7", "xyz"],
    "--activation": ["relu", "softmax", "bogus"],
}


@st.composite
def data_files(draw, folder: Path) -> Path:
    kind = draw(st.sampled_from(["csv", "npy", "npz", "csv", "txt"]))
    path = folder / f"data.{kind}"
    if kind in ("csv", "txt"):
        n_rows, n_cols = draw(st.integers(0, 12)), draw(st.integers(1, 4))
        rows = [[draw(st.sampled_from(CSV_CELLS)) for _ in range(n_cols)]
                for _ in range(n_rows)]
        if draw(st.booleans()):  # ragged
            rows = [row[: draw(st.integers(0, n_cols))] for row in rows]
        header = ["x", "y", "z", "t"][:n_cols] if draw(st.booleans()) else []
        text = "\n".join(",".join(row) for row in ([header] if header else []) + rows)
        if draw(st.booleans()):
            path.write_bytes(b"\xff\xfe\x00" + text.encode())  # not UTF-8
        else:
            path.write_text(text, encoding="utf-8")
    elif kind == "npy":
        array = draw(hostile_arrays(n_rows=draw(st.sampled_from([0, 1, 5, 12])), n_cols=3))
        np.save(path, array, allow_pickle=True)
    else:
        n = draw(st.sampled_from([0, 1, 6, 12]))
        arrays = {}
        if draw(st.booleans()):
            arrays["X"] = draw(hostile_arrays(n_rows=n))
        if draw(st.booleans()):
            arrays["y"] = draw(hostile_arrays(n_rows=draw(st.sampled_from([n, n, n + 1])),
                                              n_cols=1, max_ndim=2))
        np.savez(path, **arrays)
    return path


def run_main(argv: list[str]) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), \
            warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        code = main(argv)
    return code, err.getvalue()


def check_exit(code, err: str, argv) -> None:
    assert code in (0, 1, 2), f"main({argv}) returned {code!r}"
    if code == 2:
        assert err.startswith("mlpx: error:") or "usage" in err, err
        assert len(err.strip()) > len("mlpx: error:"), "exit 2 without a message"
    if code == 1:
        assert "diverged" in err


@hostile_settings(40)
@given(data=st.data())
def test_cli_hostile_files_and_options(data):
    options = data.draw(st.sets(st.sampled_from(sorted(OPTION_VALUES)), max_size=3),
                        label="options")
    with tempfile.TemporaryDirectory() as folder:
        argv = ["train", "--quiet", "--print-every", "0"]
        if data.draw(st.booleans(), label="file"):
            argv += ["--data", str(data.draw(data_files(Path(folder)), label="file"))]
        for option in sorted(options):
            argv += [option, data.draw(st.sampled_from(OPTION_VALUES[option]), label=option)]
        if "--epochs" not in options:
            argv += ["--epochs", "2"]
        code, err = run_main(argv)
    check_exit(code, err, argv)


@pytest.mark.parametrize("argv", [
    [], ["bogus"], ["train", "--bogus"], ["--version"], ["train", "--epochs"],
    ["train", "--data", "/nonexistent/file.csv"], ["train", "--data", "."], ["info", "extra"],
])
def test_cli_argument_errors_become_exit_codes(argv):
    code, err = run_main(argv)
    check_exit(code, err, argv)


def test_cli_npy_with_zero_rows_returns_2(tmp_path):
    path = tmp_path / "empty.npy"
    np.save(path, np.zeros((0, 3)))
    code, err = run_main(["train", "--data", str(path), "--quiet", "--epochs", "1"])
    assert code == 2 and err.startswith("mlpx: error:")


# --------------------------------------------------------------------------- extreme values


def _grads_finite(grads) -> bool:
    return all(np.all(np.isfinite(mlpx.to_numpy(g))) for g in grads)


@pytest.mark.parametrize("kind", ["sigmoid", "softmax"])
@pytest.mark.parametrize("hidden", ["relu", "tanh", "leaky_relu", "identity"])
def test_classifier_loss_and_grads_finite_at_1e30(kind, hidden):
    """Logits of about 1e30: the log-sum-exp forms keep the loss and gradients finite."""
    sizes = [3, 4, 3 if kind == "softmax" else 1]
    model = MLP(sizes, [hidden, kind], seed=0)
    X = (np.random.default_rng(1).choice([-1.0, 1.0], size=(8, 3)) * 1e30).astype(np.float32)
    with np.errstate(all="ignore"):
        loss, grads = model.loss_and_grads(X, Y_GOOD[kind])
    assert math.isfinite(loss) and loss >= 0
    assert _grads_finite(grads)


@hostile_settings(30)
@given(scale=st.floats(1e-30, 1e30), seed=st.integers(0, 2**16),
       kind=st.sampled_from(["sigmoid", "softmax"]))
def test_classifier_loss_and_grads_finite_any_scale(scale, seed, kind):
    sizes = [3, 4, 3 if kind == "softmax" else 1]
    model = MLP(sizes, ["relu", kind], seed=seed)
    X = (np.random.default_rng(seed).uniform(-1, 1, size=(8, 3)) * scale).astype(np.float32)
    with np.errstate(all="ignore"):
        loss, grads = model.loss_and_grads(X, Y_GOOD[kind])
    assert math.isfinite(loss)
    assert _grads_finite(grads)


def test_regression_loss_and_grads_finite_at_1e15():
    """MSE squares the output: in float32 it is finite for outputs up to about 1e19."""
    model = MLP([3, 4, 1], ["relu", "identity"], seed=0)
    X = (np.random.default_rng(1).choice([-1.0, 1.0], size=(8, 3)) * 1e15).astype(np.float32)
    loss, grads = model.loss_and_grads(X, Y_GOOD["regression"])
    assert math.isfinite(loss) and _grads_finite(grads)


@pytest.mark.parametrize("kind", KINDS)
def test_fit_at_1e30_is_finite_or_diverges_cleanly(kind):
    """X of 1e30 in float32: classifiers train (finite loss); MSE may overflow float32
    (1e60), which must be NonFiniteLossError with the starting weights kept."""
    sizes, activations = MODELS[kind]
    model = MLP(sizes, activations, seed=0)
    X = (np.random.default_rng(2).choice([-1.0, 1.0], size=(8, N_FEATURES)) * 1e30).astype(
        np.float32)
    before = host_params(model)
    try:
        with np.errstate(all="ignore"):
            history = model.fit(X, Y_GOOD[kind], epochs=3, batch_size=4)
    except NonFiniteLossError as exc:
        assert kind == "regression", f"{kind} diverged at 1e30: {exc}"
        assert_same_params(model, before, "diverged fit")  # it diverged in epoch 0
        return
    assert all(math.isfinite(v) for v in history["loss"])
    assert_finite_params(model, "fit at 1e30")


def _model_with_logits(kind: str, logit: float) -> tuple[MLP, np.ndarray]:
    """A one-layer model whose output logits are +-``logit`` on its X."""
    n_out = 3 if kind == "softmax" else 1
    activation = {"sigmoid": "sigmoid", "softmax": "softmax", "regression": "identity"}[kind]
    model = MLP([3, n_out], [activation], seed=0)
    W = np.full((3, n_out), logit / 3, dtype=np.float32)
    if n_out > 1:
        W[:, 0] *= -1
    model.set_params([W, np.zeros(n_out, dtype=np.float32)])
    signs = np.random.default_rng(3).choice([-1.0, 1.0], size=(8, 1))
    return model, (np.ones((8, 3)) * signs).astype(np.float32)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("logit", [1e4, -1e4])
def test_logits_1e4_give_finite_loss_and_grads(kind, logit):
    model, X = _model_with_logits(kind, logit)
    with np.errstate(under="ignore"):
        loss, grads = model.loss_and_grads(X, Y_GOOD[kind])
        metrics = model.evaluate(X, Y_GOOD[kind])
        out = mlpx.to_numpy(model.predict_proba(X) if model.is_classifier else model.predict(X))
    assert math.isfinite(loss) and loss >= 0
    assert _grads_finite(grads)
    assert all(math.isfinite(v) for v in metrics.values())
    assert np.all(np.isfinite(out))
    if model.is_classifier:
        assert np.all((out >= 0) & (out <= 1))
        # Saturated and wrong costs about |logit|, not inf, and the gradient is bounded.
        assert loss <= 2 * abs(logit) + 1
        assert max(float(np.max(np.abs(mlpx.to_numpy(g)))) for g in grads) <= 10


@pytest.mark.parametrize("kind", ["sigmoid", "softmax"])
def test_logits_1e4_fit_stays_finite(kind):
    model, X = _model_with_logits(kind, 1e4)
    with np.errstate(under="ignore"):
        history = model.fit(X, Y_GOOD[kind], epochs=3, optimizer="sgd", learning_rate=0.1)
    assert all(math.isfinite(v) for v in history["loss"])
    assert_finite_params(model, "fit at logits 1e4")
