"""Bad input: every mistake is refused before anything changes.

The rule: a bad argument raises ``MlpxValueError`` or ``MlpxTypeError`` (subclasses of the
built-in ValueError/TypeError) whose message names the parameter, the value it got and the
fix, and the model keeps exactly the parameters, ``classes_``, shuffle generator state and
``history_`` it had. Data checks (X, y, params, validation_data) run on every backend with
NumPy input and with the backend's own arrays; name checks (constructor, fit arguments)
run once.
"""

from __future__ import annotations

import copy
import math
import re

import numpy as np
import pytest
from scipy import sparse as scipy_sparse

import mlpx
from mlpx import MLP, MlpxTypeError, MlpxValueError

ERR = (MlpxValueError, MlpxTypeError)
N_SAMPLES, N_FEATURES = 8, 2
RNG = np.random.default_rng(0)
X8 = RNG.normal(size=(N_SAMPLES, N_FEATURES))
Y_BIN = np.array([0, 1] * 4)
Y_SOFT = np.array([0, 1, 2, 0, 1, 2, 0, 1])
Y_REG = RNG.normal(size=N_SAMPLES)
Y_STR = np.array(["cat", "dog"] * 4)

MODELS = {  # tiny nets: (layer_sizes, activations)
    "sigmoid": ([2, 3, 1], ["tanh", "sigmoid"]),
    "softmax": ([2, 3, 3], ["tanh", "softmax"]),
    "regression": ([2, 3, 1], ["tanh", "identity"]),
}
GOOD_Y = {"sigmoid": Y_BIN, "softmax": Y_SOFT, "regression": Y_REG}


def make_model(kind: str = "sigmoid", backend: str = "numpy") -> MLP:
    sizes, activations = MODELS[kind]
    return MLP(sizes, activations, backend=backend, seed=0)


# --- snapshots: "nothing changed" means bit-identical ---------------------------------------

def host_copy(array) -> np.ndarray:
    """An independent NumPy copy of an array of any backend."""
    host = mlpx.to_numpy(array)
    return np.array(host, copy=True)


def snapshot(model: MLP) -> dict:
    return {
        "params": [host_copy(p) for p in model.params],
        "classes": None if model.classes_ is None else np.array(model.classes_, copy=True),
        "rng": copy.deepcopy(model.shuffle_rng.bit_generator.state),
        "history": model.history_,
    }


def assert_unchanged(model: MLP, before: dict) -> None:
    after = snapshot(model)
    assert len(after["params"]) == len(before["params"]), "the number of params changed"
    for i, (new, old) in enumerate(zip(after["params"], before["params"])):
        assert new.dtype == old.dtype and new.shape == old.shape, f"params[{i}] changed form"
        assert new.tobytes() == old.tobytes(), f"params[{i}] changed"
    if before["classes"] is None:
        assert after["classes"] is None, "classes_ changed"
    else:
        assert after["classes"].dtype == before["classes"].dtype, "classes_ changed dtype"
        assert np.array_equal(after["classes"], before["classes"]), "classes_ changed"
    assert after["rng"] == before["rng"], "the shuffle generator was drawn from"
    assert after["history"] is before["history"], "history_ changed"


def assert_refused(model: MLP, call, exc, match: str):
    """``call()`` raises ``exc`` (an mlpx error) matching ``match``; the model is untouched."""
    before = snapshot(model)
    with pytest.raises(exc, match=match) as info:
        call()
    assert isinstance(info.value, ERR), f"{type(info.value).__name__} is not an mlpx error"
    assert_unchanged(model, before)
    return info.value


def as_source(array, backend, source: str):
    """The same data as NumPy (``"numpy"``) or as the backend's own array (``"native"``)."""
    if source == "numpy":
        return array
    return backend.xp.asarray(np.asarray(array), device=backend.device)


def with_sources(cases, numpy_only=lambda case: False):
    """``pytest.param(*case, source)`` for NumPy input and, unless ``numpy_only``, native input."""
    return [pytest.param(*case[1:], source, id=f"{case[0]}-{source}")
            for case in cases
            for source in (("numpy",) if numpy_only(case) else ("numpy", "native"))]


def with_value(array, index, value) -> np.ndarray:
    out = np.array(array, dtype=np.float64)
    out[index] = value
    return out


# --- X and y through every entry point, on every backend ------------------------------------

def call_method(model: MLP, method: str, X, y, kind: str) -> None:
    if method == "fit":
        model.fit(X, y, epochs=2, batch_size=4)
    elif method == "validation_data":
        model.fit(X8, GOOD_Y[kind], epochs=2, batch_size=4, validation_data=(X, y))
    elif method == "predict":
        model.predict(X)
    else:  # evaluate, loss_and_grads
        getattr(model, method)(X, y)


X_METHODS = ("fit", "predict", "evaluate", "loss_and_grads", "validation_data")
Y_METHODS = ("fit", "evaluate", "loss_and_grads", "validation_data")
FIT = ("fit",)
KNOWN_CLASSES = ("evaluate", "loss_and_grads")  # checked against classes_ (fresh: defaults)

X_STRINGS = np.array([["a", "b"]] * N_SAMPLES)
X_OBJECTS = np.array([[object(), object()] for _ in range(N_SAMPLES)], dtype=object)
X_RAGGED = [[1.0, 2.0], [3.0]] * 4

# id, model kind, X, y, methods, exception, match ({X}/{y}: the parameter's name),
# numpy_only (no backend-native version of this data)
XY_CASES = [
    ("X-nan", "sigmoid", with_value(X8, (3, 1), np.nan), Y_BIN, X_METHODS, MlpxValueError,
     r"{X} contains NaN or infinite values; drop or impute", False),
    ("X-inf", "sigmoid", with_value(X8, (0, 0), np.inf), Y_BIN, X_METHODS, MlpxValueError,
     r"{X} contains NaN or infinite values; drop or impute", False),
    ("X-neg-inf", "regression", with_value(X8, (7, 1), -np.inf), Y_REG, X_METHODS,
     MlpxValueError, r"{X} contains NaN or infinite values", False),
    ("y-nan", "sigmoid", X8, with_value(Y_BIN, 2, np.nan), Y_METHODS, MlpxValueError,
     r"{y} contains NaN or infinite values; drop or impute", False),
    ("y-inf-regression", "regression", X8, with_value(Y_REG, 0, np.inf), Y_METHODS,
     MlpxValueError, r"{y} contains NaN or infinite values", False),
    ("y-nan-onehot", "softmax", X8, with_value(np.eye(3)[Y_SOFT], (1, 1), np.nan), Y_METHODS,
     MlpxValueError, r"{y} contains NaN or infinite values", False),
    ("X-1d", "sigmoid", X8[:, 0], Y_BIN, X_METHODS, MlpxValueError,
     r"{X} must be 2-D of shape \(n_samples, n_features\), got shape \(8,\) "
     r"\(for one feature use X\.reshape\(-1, 1\)\)", False),
    ("X-3d", "sigmoid", X8[:, :, None], Y_BIN, X_METHODS, MlpxValueError,
     r"{X} must be 2-D of shape \(n_samples, n_features\), got shape \(8, 2, 1\)", False),
    ("y-3d", "sigmoid", X8, Y_BIN.reshape(8, 1, 1), Y_METHODS, MlpxValueError,
     r"{y} must be 1-D \(n_samples,\) or 2-D \(n_samples, n_outputs\), got shape \(8, 1, 1\)",
     False),
    ("y-0d", "regression", X8, np.asarray(1.0), Y_METHODS, MlpxValueError,
     r"{y} must be 1-D \(n_samples,\) or 2-D .*got shape \(\)", False),
    ("y-too-few", "sigmoid", X8, Y_BIN[:7], Y_METHODS, MlpxValueError,
     r"{y} has 7 samples but \S+ has 8; pass one target per row", False),
    ("X-too-few", "regression", X8[:6], Y_REG, Y_METHODS, MlpxValueError,
     r"{y} has 8 samples but \S+ has 6", False),
    ("X-3-features", "sigmoid", np.c_[X8, X8[:, 0]], Y_BIN, X_METHODS, MlpxValueError,
     r"{X} has 3 features but the model expects 2 \(layer_sizes\[0\]\); build the model with "
     r"layer_sizes\[0\]=3", False),
    ("X-1-feature", "softmax", X8[:, :1], Y_SOFT, X_METHODS, MlpxValueError,
     r"{X} has 1 features but the model expects 2", False),
    ("empty", "sigmoid", np.zeros((0, 2)), np.zeros(0, dtype=np.int64), X_METHODS,
     MlpxValueError, r"{X} is empty \(0 samples\); pass at least one sample", False),
    ("X-strings", "sigmoid", X_STRINGS, Y_BIN, X_METHODS, MlpxTypeError,
     r"{X} must be numeric, got dtype <U1; encode text", True),
    ("X-objects", "regression", X_OBJECTS, Y_REG, X_METHODS, MlpxTypeError,
     r"{X} must be numeric, got dtype object", True),
    ("X-complex", "regression", X8 + 1j, Y_REG, X_METHODS, MlpxTypeError,
     r"{X} must be numeric", False),
    ("X-ragged", "sigmoid", X_RAGGED, Y_BIN, X_METHODS, MlpxValueError, r"{X}", True),
    ("X-sparse", "sigmoid", scipy_sparse.csr_matrix(X8), Y_BIN, X_METHODS, MlpxTypeError,
     r"{X} is a sparse matrix \(csr_matrix\), and mlpx trains on dense arrays; pass "
     r"{X}\.toarray\(\)", True),
    ("y-sparse", "softmax", X8, scipy_sparse.csr_array(np.eye(3)[Y_SOFT]), Y_METHODS,
     MlpxTypeError, r"{y} is a sparse matrix \(csr_array\)", True),
    ("y-ragged", "regression", X8[:2], [[1.0], [2.0, 3.0]], Y_METHODS, MlpxValueError, r"{y}",
     True),
    ("y-strings-regression", "regression", X8, Y_STR, Y_METHODS, MlpxTypeError,
     r"{y} must be numeric for regression, got dtype <U3", True),
    ("y-2-columns-regression", "regression", X8, np.c_[Y_REG, Y_REG], Y_METHODS,
     MlpxValueError,
     r"{y} has 2 target columns but the model has 1 outputs; make the last layer size 2",
     False),
    # labels that do not fit the output layer
    ("sigmoid-3-labels", "sigmoid", X8, Y_SOFT, FIT, MlpxValueError,
     r"{y} has 3 distinct labels \(0, 1, 2\) but a single sigmoid output separates two "
     r"classes; use a softmax output", False),
    ("sigmoid-label-2", "sigmoid", X8, Y_SOFT, KNOWN_CLASSES, MlpxValueError,
     r"{y} has label \S*2\S* that the model does not know; its classes_ are", False),
    ("sigmoid-onehot", "sigmoid", X8, np.eye(2)[Y_BIN], Y_METHODS, MlpxValueError,
     r"{y} has 2 columns but the output layer has 1 units", False),
    ("softmax-class-5", "softmax", X8, with_value(Y_SOFT, 3, 5).astype(np.int64), FIT,
     MlpxValueError,
     r"{y} has class label 5 but the softmax output has 3 units \(integer labels are class "
     r"indices 0\.\.2\); use 6 output units", False),
    ("softmax-class-5-known", "softmax", X8, with_value(Y_SOFT, 3, 5).astype(np.int64),
     KNOWN_CLASSES + ("validation_data",), MlpxValueError,
     r"{y} has label \S*5\S* that the model does not know", False),
    ("softmax-class-neg", "softmax", X8, with_value(Y_SOFT, 0, -1).astype(np.int64), FIT,
     MlpxValueError, r"{y} has class label -1 but the softmax output has 3 units", False),
    ("softmax-onehot-2", "softmax", X8, np.eye(2)[Y_BIN], Y_METHODS, MlpxValueError,
     r"{y} has 2 columns but the output layer has 3 units", False),
    ("softmax-onehot-4", "softmax", X8, np.eye(4)[Y_SOFT], Y_METHODS, MlpxValueError,
     r"{y} has 4 columns but the output layer has 3 units", False),
    ("softmax-onehot-range", "softmax", X8, 2.0 * np.eye(3)[Y_SOFT], Y_METHODS, MlpxValueError,
     r"{y} as a matrix must hold one-hot rows or probabilities in \[0, 1\]", False),
    ("softmax-4-strings", "softmax", X8, np.array(list("abcd") * 2), FIT, MlpxValueError,
     r"{y} has 4 distinct labels but the softmax output has 3 units; use 4 output units",
     True),
    ("softmax-2-strings", "softmax", X8, np.array(list("ab") * 4), FIT, MlpxValueError,
     r"{y} has 2 distinct labels", True),
    ("sigmoid-1-string", "sigmoid", X8, np.array(["cat"] * 8), FIT, MlpxValueError,
     r"{y} has (only )?(one|1) distinct label", True),
]


def _xy_params():
    params = []
    for case_id, kind, X, y, methods, exc, match, numpy_only in XY_CASES:
        for method in methods:
            for source in ("numpy",) if numpy_only else ("numpy", "native"):
                params.append(pytest.param(kind, X, y, method, source, exc, match,
                                           id=f"{case_id}-{method}-{source}"))
    return params


@pytest.mark.parametrize(("kind", "X", "y", "method", "source", "exc", "match"), _xy_params())
def test_bad_X_or_y_is_refused(backend, kind, X, y, method, source, exc, match):
    model = make_model(kind, backend.name)
    names = {"X": "validation_data[0]", "y": "validation_data[1]"} if (
        method == "validation_data") else {"X": "X", "y": "y"}
    match = match.format(**{key: re.escape(value) for key, value in names.items()})
    X, y = as_source(X, backend, source), as_source(y, backend, source)
    assert_refused(model, lambda: call_method(model, method, X, y, kind), exc, match)


UNKNOWN_LABEL_CASES = [
    # id, labels fitted on, labels the model does not know, the label the message shows
    ("strings", Y_STR, np.array(["cat", "bird"] * 4), "bird"),
    ("minus-plus-one", np.array([-1, 1] * 4), np.array([0, 1] * 4), "0"),
    ("bools", np.array([False, True] * 4), np.array([0, 2] * 4), "2"),
]


@pytest.mark.parametrize(("train", "bad", "shown", "source"),
                         with_sources(UNKNOWN_LABEL_CASES, lambda case: case[2].dtype.kind == "U"))
@pytest.mark.parametrize("method", ["evaluate", "loss_and_grads", "validation_data", "fit"])
def test_unknown_label_after_fitting(request, backend, train, bad, shown, source, method):
    """Labels the fitted model does not know; a second fit keeps classes_ (warm start)."""
    model = make_model("sigmoid", backend.name)
    model.fit(X8, train, epochs=1)
    name = "validation_data[1]" if method == "validation_data" else "y"
    bad = as_source(bad, backend, source)

    def call():
        if method == "validation_data":
            model.fit(X8, train, epochs=1, validation_data=(X8, bad))
        elif method == "fit":
            model.fit(X8, bad, epochs=1)
        else:
            getattr(model, method)(X8, bad)

    assert_refused(model, call, MlpxValueError,
                   rf"{re.escape(name)} has label \S*{shown}\S* that the model does not know")


@pytest.mark.parametrize(("train", "bad", "message"), [
    (Y_STR, np.array(["cat", "bird"] * 4),
     "y has label 'bird' that the model does not know; its classes_ are ['cat', 'dog']"),
    (Y_BIN, Y_SOFT, "y has label 2 that the model does not know; its classes_ are [0, 1]"),
], ids=["strings", "ints"])
def test_unknown_label_message_shows_plain_values(train, bad, message):
    model = make_model("sigmoid")
    model.fit(X8, train, epochs=1)
    with pytest.raises(MlpxValueError, match=re.escape(message)):
        model.evaluate(X8, bad)


@pytest.mark.parametrize("method", ["evaluate", "fit"])
def test_native_labels_on_a_string_model(backend, method):
    """Backend arrays cannot hold strings: a string-label model asks for NumPy labels."""
    if backend.name == "numpy":
        pytest.skip("NumPy labels are host labels")
    model = make_model("sigmoid", backend.name)
    model.fit(X8, Y_STR, epochs=1)
    y = as_source(Y_BIN, backend, "native")
    call = (lambda: model.fit(X8, y, epochs=1)) if method == "fit" else (
        lambda: model.evaluate(X8, y))
    assert_refused(model, call, MlpxTypeError,
                   r"y is a \S+ array, but the model's classes_ are not numbers .*pass y as a "
                   r"NumPy array or list")


# --- params ------------------------------------------------------------------------------

def _good_params():
    model = make_model("sigmoid")
    return [np.array(host_copy(p), dtype=np.float64) for p in model.params]


def _params_case(change):
    params = _good_params()
    return change(params) or params


def _set(params, index, value):
    params[index] = value


PARAMS_CASES = [
    # id, params, exception, match, numpy_only
    ("too-few", _params_case(lambda p: p.pop()), MlpxValueError,
     r"params has 3 arrays but this network needs 4 \(\[W1, b1, W2, b2, \.\.\.\]", False),
    ("too-many", _params_case(lambda p: p.append(np.zeros(1))), MlpxValueError,
     r"params has 5 arrays but this network needs 4", False),
    ("W1-transposed", _params_case(lambda p: _set(p, 0, p[0].T)), MlpxValueError,
     r"params\[0\] \(W1\) has shape \(3, 2\); this network needs \(2, 3\)", False),
    ("b2-2d", _params_case(lambda p: _set(p, 3, p[3].reshape(1, 1))), MlpxValueError,
     r"params\[3\] \(b2\) has shape \(1, 1\); this network needs \(1,\)", False),
    ("b1-nan", _params_case(lambda p: _set(p, 1, with_value(p[1], 1, np.nan))), MlpxValueError,
     r"params\[1\] \(b1\) contains NaN or infinite values", False),
    ("W2-inf", _params_case(lambda p: _set(p, 2, with_value(p[2], (2, 0), np.inf))),
     MlpxValueError, r"params\[2\] \(W2\) contains NaN or infinite values", False),
    ("W1-strings", _params_case(lambda p: _set(p, 0, np.full((2, 3), "w"))), MlpxTypeError,
     r"params\[0\] \(W1\) must be numeric", True),
    ("not-a-list", 5, MlpxTypeError, r"params must be a list of arrays \[W1, b1, W2, b2", True),
]


PARAMS_NUMPY_ONLY = {case[0]: case[4] for case in PARAMS_CASES}


@pytest.mark.parametrize("how", ["set_params", "setter"])
@pytest.mark.parametrize(("params", "exc", "match", "source"),
                         with_sources([case[:4] for case in PARAMS_CASES],
                                      lambda case: PARAMS_NUMPY_ONLY[case[0]]))
def test_bad_params_are_refused(backend, params, exc, match, source, how):
    model = make_model("sigmoid", backend.name)
    model.fit(X8, Y_STR, epochs=1)  # fitted: classes_ are not the defaults
    if source == "native":
        params = [as_source(p, backend, source) for p in params]

    def call():
        if how == "set_params":
            model.set_params(params)
        else:
            model.params = params

    assert_refused(model, call, exc, match)


# --- arrays of another library -------------------------------------------------------------

FOREIGN = {  # model backend -> a library whose arrays it must refuse, and the hint it gives
    "numpy": ("torch", r"x\.detach\(\)\.cpu\(\)\.numpy\(\)"),
    "cupy": ("torch", r"x\.detach\(\)\.cpu\(\)\.numpy\(\)"),
    "torch": ("array_api_strict", r"numpy\.from_dlpack\(x\)"),
    "array_api_strict": ("torch", r"x\.detach\(\)\.cpu\(\)\.numpy\(\)"),
}


@pytest.mark.parametrize(
    ("where", "name"),
    [("fit-X", "X"), ("fit-y", "y"), ("predict-X", "X"), ("evaluate-y", "y"),
     ("validation-X", "validation_data[0]"), ("params", "params[0] (W1)")],
)
def test_array_of_another_library_is_refused(backend, where, name):
    """A torch tensor on a NumPy model (and so on): TypeError saying how to convert."""
    library, hint = FOREIGN[backend.name]
    try:
        other = mlpx.resolve_backend(library)
    except mlpx.BackendUnavailableError:
        pytest.skip(f"{library} is not installed")
    model = make_model("sigmoid", backend.name)

    def foreign(array):
        return other.xp.asarray(np.asarray(array), device=other.device)

    calls = {
        "fit-X": lambda: model.fit(foreign(X8), Y_BIN, epochs=1),
        "fit-y": lambda: model.fit(X8, foreign(Y_BIN), epochs=1),
        "predict-X": lambda: model.predict(foreign(X8)),
        "evaluate-y": lambda: model.evaluate(X8, foreign(Y_BIN)),
        "validation-X": lambda: model.fit(X8, Y_BIN, epochs=1,
                                          validation_data=(foreign(X8), Y_BIN)),
        "params": lambda: model.set_params([foreign(p) for p in _good_params()]),
    }
    assert_refused(
        model, calls[where], MlpxTypeError,
        rf"{re.escape(name)} is a {library} array but the model's backend is "
        rf"'{backend.name}'; convert it to NumPy first \({hint}\) or build the model with "
        rf"backend='{library}'",
    )


# --- fit arguments (backend-independent: once) ------------------------------------------------

class NoHooks:
    """An object passed as a callback that has none of the hooks."""


FIT_ARG_CASES = [
    # id, fit kwargs, exception, match
    ("epochs-0", {"epochs": 0}, MlpxValueError, r"epochs=0 must be an int >= 1"),
    ("epochs-neg", {"epochs": -1}, MlpxValueError, r"epochs=-1 must be an int >= 1"),
    ("epochs-nan", {"epochs": math.nan}, MlpxTypeError, r"epochs=nan must be an int >= 1"),
    ("epochs-inf", {"epochs": math.inf}, MlpxTypeError, r"epochs=inf must be an int"),
    ("epochs-str", {"epochs": "abc"}, MlpxTypeError, r"epochs='abc' must be an int"),
    ("epochs-float", {"epochs": 2.5}, MlpxTypeError, r"epochs=2\.5 must be an int"),
    ("epochs-bool", {"epochs": True}, MlpxTypeError, r"epochs=True must be an int"),
    ("batch-0", {"batch_size": 0}, MlpxValueError,
     r"batch_size=0 must be an int >= 1 \(or None for full-batch"),
    ("batch-neg", {"batch_size": -1}, MlpxValueError, r"batch_size=-1 must be an int >= 1"),
    ("batch-nan", {"batch_size": math.nan}, MlpxTypeError, r"batch_size=nan must be an int"),
    ("batch-inf", {"batch_size": math.inf}, MlpxTypeError, r"batch_size=inf must be an int"),
    ("batch-str", {"batch_size": "abc"}, MlpxTypeError, r"batch_size='abc' must be an int"),
    ("batch-float", {"batch_size": 1.5}, MlpxTypeError, r"batch_size=1\.5 must be an int"),
    ("lr-0", {"learning_rate": 0}, MlpxValueError,
     r"learning_rate=0(\.0)? must be a finite number > 0, e\.g\. 1e-3"),
    ("lr-neg", {"learning_rate": -1}, MlpxValueError,
     r"learning_rate=-1(\.0)? must be a finite number > 0"),
    ("lr-nan", {"learning_rate": math.nan}, MlpxValueError,
     r"learning_rate=nan must be a finite number > 0"),
    ("lr-inf", {"learning_rate": math.inf}, MlpxValueError,
     r"learning_rate=inf must be a finite number > 0"),
    ("lr-str", {"learning_rate": "abc"}, MlpxTypeError,
     r"learning_rate='abc' must be a number > 0 or a schedule"),
    ("optimizer-name", {"optimizer": "sgdd"}, MlpxValueError,
     r"optimizer='sgdd' is not known; use one of sgd, adam, adamw, rmsprop, adagrad"),
    ("optimizer-type", {"optimizer": 3}, MlpxValueError, r"optimizer=3 is not known"),
    ("validation-single", {"validation_data": (X8,)}, MlpxValueError,
     r"validation_data must be a pair \(X_val, y_val\), got tuple"),
    ("validation-triple", {"validation_data": (X8, Y_STR, Y_STR)}, MlpxValueError,
     r"validation_data must be a pair \(X_val, y_val\)"),
    ("validation-array", {"validation_data": X8}, MlpxValueError,
     r"validation_data must be a pair \(X_val, y_val\), got ndarray"),
    ("validation-dict", {"validation_data": {"X": X8, "y": Y_STR}}, MlpxValueError,
     r"validation_data must be a pair \(X_val, y_val\), got dict"),
    ("callback-no-hooks", {"callbacks": [NoHooks()]}, MlpxTypeError,
     r"callbacks entry <.*NoHooks.*> has none of the callback hooks .*subclass "
     r"mlpx\.callbacks\.Callback"),
    ("callback-function", {"callbacks": [print]}, MlpxTypeError,
     r"callbacks entry .*print.* has none of the callback hooks"),
    ("callback-class", {"callbacks": [mlpx.EarlyStopping]}, MlpxTypeError, r"callbacks"),
    ("callbacks-str", {"callbacks": "abc"}, MlpxTypeError,
     r"callbacks='abc' must be a list of mlpx\.callbacks\.Callback objects"),
    ("callbacks-no-hooks-single", {"callbacks": NoHooks()}, MlpxTypeError,
     r"callbacks=<.*NoHooks.*> must be a list of mlpx\.callbacks\.Callback"),
    ("tol-neg", {"tol": -1}, MlpxValueError, r"tol=-1(\.0)? must be a finite number > 0"),
    ("tol-nan", {"tol": math.nan}, MlpxValueError, r"tol=nan must be a finite number > 0"),
    ("tol-str", {"tol": "abc"}, MlpxTypeError, r"tol='abc'"),
]


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [pytest.param(*case[1:], id=case[0]) for case in FIT_ARG_CASES],
)
def test_bad_fit_argument_is_refused(kwargs, exc, match):
    model = make_model("sigmoid")  # fresh: string labels would change classes_ if fit went on
    arguments = {"epochs": 2, "batch_size": 4, **kwargs}
    assert_refused(model, lambda: model.fit(X8, Y_STR, **arguments), exc, match)
    model.fit(X8, Y_STR, epochs=1)  # the refusal left the model able to learn its classes
    assert list(model.classes_) == ["cat", "dog"]


# --- constructor and other names (once) ------------------------------------------------------

def _mlp(layer_sizes=(2, 3, 1), activations=("tanh", "sigmoid"), **kwargs):
    return lambda: MLP(list(layer_sizes) if isinstance(layer_sizes, tuple) else layer_sizes,
                       list(activations) if isinstance(activations, tuple) else activations,
                       **kwargs)


NAME_CASES = [
    # id, call, exception, match
    ("activation-unknown", _mlp(activations=["tanh", "nope"]), MlpxValueError,
     r"activations\[1\]='nope' is not a known activation; use one of .*relu"),
    ("activation-not-str", _mlp(activations=["tanh", 3]), ERR,
     r"activations\[1\]=3 must be an activation name"),
    ("activations-str", _mlp(activations="relu"), MlpxTypeError,
     r"activations='relu' must be a list with one name per weight layer \(2\)"),
    ("activations-short", _mlp(activations=["relu"]), MlpxValueError,
     r"activations has 1 entries but layer_sizes gives 2 weight layers; give one activation "
     r"per layer"),
    ("activations-long", _mlp(activations=["relu"] * 3), MlpxValueError,
     r"activations has 3 entries but layer_sizes gives 2"),
    ("softmax-hidden", _mlp((2, 3, 3), ("softmax", "softmax")), MlpxValueError,
     r"activations\[0\]='softmax' is only allowed on the output layer"),
    ("softmax-one-unit", _mlp((2, 1), ("softmax",)), MlpxValueError,
     r"softmax output needs at least 2 units"),
    ("loss-unknown", _mlp(loss="hinge"), MlpxValueError,
     r"loss='hinge' is not a known loss; use one of .*mse"),
    ("bce-softmax", _mlp((2, 3, 3), ("tanh", "softmax"), loss="binary_crossentropy"),
     MlpxValueError,
     r"loss='binary_crossentropy' needs a sigmoid output layer, but the last activation is "
     r"'softmax'"),
    ("bce-identity", _mlp((2, 3, 1), ("tanh", "identity"), loss="binary_crossentropy"),
     MlpxValueError, r"loss='binary_crossentropy' needs a sigmoid output layer.*'identity'"),
    ("cce-sigmoid", _mlp(loss="categorical_crossentropy"), MlpxValueError,
     r"loss='categorical_crossentropy' needs a softmax output layer, but the last activation "
     r"is 'sigmoid'"),
    ("backend-unknown", _mlp(backend="jax"), MlpxValueError,
     r"backend='jax' is not known; use one of numpy, cupy, torch, array_api_strict"),
    ("backend-cuda", _mlp(backend="cuda"), MlpxValueError, r"backend='cuda' is not known"),
    ("backend-int", _mlp(backend=42), MlpxTypeError,
     r"backend must be a name or an array-API namespace, got int"),
    ("backend-module", _mlp(backend=math), MlpxValueError,
     r"backend='math' is not a namespace mlpx supports"),
    ("dtype-float16", _mlp(dtype="float16"), MlpxValueError,
     r"dtype='float16' is not supported; use 'float32' \(default\) or 'float64'"),
    ("dtype-int32", _mlp(dtype="int32"), MlpxValueError, r"dtype='int32' is not supported"),
    ("dtype-np-float16", _mlp(dtype=np.float16), MlpxValueError,
     r"dtype=.*float16.* is not supported"),
    ("dtype-none", _mlp(dtype=None), MlpxValueError, r"dtype=None is not supported"),
    ("sizes-0", _mlp((2, 0, 1)), MlpxValueError,
     r"layer_sizes=\[2, 0, 1\] has 0; every size must be an int >= 1"),
    ("sizes-neg", _mlp((2, -3, 1)), MlpxValueError, r"layer_sizes=\[2, -3, 1\] has -3"),
    ("sizes-float", _mlp((2, 2.5, 1)), ERR, r"layer_sizes=\[2, 2\.5, 1\] has 2\.5"),
    ("sizes-bool", _mlp((2, True, 1)), ERR, r"layer_sizes=\[2, True, 1\] has True"),
    ("sizes-str", _mlp((2, "3", 1)), ERR, r"layer_sizes=\[2, '3', 1\] has '3'"),
    ("sizes-one", _mlp((2,), ()), MlpxValueError,
     r"layer_sizes=\[2\] needs at least two sizes \(inputs and outputs\)"),
    ("sizes-empty", _mlp((), ()), MlpxValueError, r"layer_sizes=\[\] needs at least two sizes"),
    ("sizes-int", _mlp(5), MlpxTypeError, r"layer_sizes=5 must be a list of ints"),
    ("alpha-neg", _mlp(alpha=-1), MlpxValueError, r"alpha=-1 must be a finite number >= 0"),
    ("alpha-nan", _mlp(alpha=math.nan), MlpxValueError, r"alpha=nan must be a finite number"),
    ("alpha-str", _mlp(alpha="abc"), MlpxTypeError, r"alpha='abc' must be a number >= 0"),
    ("seed-neg", _mlp(seed=-1), ERR, r"seed=-1 must be None or an int >= 0"),
    ("seed-float", _mlp(seed=1.5), ERR, r"seed=1\.5 must be None or an int"),
    ("init-unknown", _mlp(init="nope"), MlpxValueError, r"init='nope' is not a known initialiser"),
    ("init-length", _mlp(init=["he_normal"]), MlpxValueError,
     r"init has 1 entries but the network has 2 weight layers"),
    ("numpy-device", _mlp(device="gpu"), MlpxValueError,
     r"device='gpu' is not available for backend='numpy', which runs on the CPU only; leave "
     r"device=None or use 'cpu'"),
    ("strict-device", _mlp(backend="array_api_strict", device="cuda:0"), MlpxValueError,
     r"device='cuda:0' is not available for backend='array_api_strict'"),
    ("sgd-lr", lambda: mlpx.optim.SGD(learning_rate=-1), MlpxValueError,
     r"learning_rate=-1(\.0)? must be a finite number > 0"),
    ("adam-lr-str", lambda: mlpx.optim.Adam(learning_rate="abc"), MlpxTypeError,
     r"learning_rate='abc' must be a number"),
    ("sgd-nesterov", lambda: mlpx.optim.SGD(nesterov=True), MlpxValueError,
     r"nesterov=True needs momentum > 0"),
    ("adam-beta1", lambda: mlpx.optim.Adam(beta1=1.5), MlpxValueError,
     r"beta1=1\.5 must be in \[0, 1\)"),
    ("sgd-momentum-str", lambda: mlpx.optim.SGD(momentum="abc"), ERR, r"momentum='abc'"),
    ("early-stopping-patience", lambda: mlpx.EarlyStopping(patience=-1), MlpxValueError,
     r"patience=-1 must be an int >= 0"),
    ("early-stopping-mode", lambda: mlpx.EarlyStopping(mode="sideways"), MlpxValueError,
     r"mode='sideways' must be 'auto', 'min' or 'max'"),
]


@pytest.mark.parametrize(
    ("call", "exc", "match"),
    [pytest.param(*case[1:], id=case[0]) for case in NAME_CASES],
)
def test_bad_name_or_setting_is_refused(call, exc, match):
    with pytest.raises(exc, match=match) as info:
        call()
    assert isinstance(info.value, ERR), f"{type(info.value).__name__} is not an mlpx error"


def test_torch_device_nonsense_is_refused():
    pytest.importorskip("torch")
    with pytest.raises(ERR, match=r"device='nonsense'"):
        MLP([2, 1], backend="torch", device="nonsense")


def _gpu_present() -> bool:
    try:
        import cupy

        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


@pytest.mark.skipif(_gpu_present(), reason="a CUDA GPU is present: cupy is usable here")
@pytest.mark.parametrize("how", ["MLP", "resolve_backend"])
def test_cupy_without_gpu_names_the_extra(how):
    call = (lambda: MLP([2, 1], backend="cupy")) if how == "MLP" else (
        lambda: mlpx.resolve_backend("cupy"))
    with pytest.raises(mlpx.BackendUnavailableError, match=r"backend='cupy'.*mlpx\[gpu\]") as info:
        call()
    assert isinstance(info.value, ImportError)


def test_torch_cuda_device_without_cuda():
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("CUDA is available to torch here")
    with pytest.raises(mlpx.BackendUnavailableError, match=r"cuda"):
        MLP([2, 1], backend="torch", device="cuda:0")


# --- monitors that name a key the epoch logs will not have -----------------------------------

class CountEpochs(mlpx.Callback):
    def __init__(self) -> None:
        self.epochs = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epochs += 1


MONITOR_CASES = [
    # id, model kind, monitor, validation_data?
    ("val_loss-without-validation", "sigmoid", "val_loss", False),
    ("val_acc-typo", "sigmoid", "val_acc", True),
    ("accuracy-on-regression", "regression", "accuracy", False),
    ("mae-on-classifier", "softmax", "mae", True),
]


@pytest.mark.parametrize(("kind", "monitor", "validation"), [c[1:] for c in MONITOR_CASES],
                         ids=[c[0] for c in MONITOR_CASES])
def test_early_stopping_missing_key_fails_before_training(kind, monitor, validation):
    model = make_model(kind)
    counter = CountEpochs()
    y = GOOD_Y[kind]
    kwargs = {"validation_data": (X8, y)} if validation else {}
    stopper = mlpx.EarlyStopping(monitor=monitor, patience=1)
    hint = r"; pass validation_data to get val_\* keys" if monitor.startswith("val_") else ""
    assert_refused(
        model, lambda: model.fit(X8, y, epochs=3, callbacks=[counter, stopper], **kwargs),
        MlpxValueError,
        rf"EarlyStopping\(monitor='{monitor}'\) watches a key the epoch logs will not have; "
        rf"use one of \['loss', .*\]{hint}",
    )
    assert counter.epochs == 0, "an epoch ran before the monitor was checked"


def test_early_stopping_missing_key_leaves_classes_alone():
    model = make_model("sigmoid")
    assert_refused(
        model,
        lambda: model.fit(X8, Y_STR, epochs=2, callbacks=[mlpx.EarlyStopping("val_loss")]),
        MlpxValueError, r"EarlyStopping\(monitor='val_loss'\)",
    )
    model.fit(X8, np.array([-1, 1] * 4), epochs=1)  # the model can still learn its classes
    assert list(model.classes_) == [-1, 1]


def test_plateau_schedule_missing_key_fails_before_training():
    model = make_model("sigmoid")
    schedule = mlpx.optim.ReduceLROnPlateau(1e-2, monitor="val_loss")
    assert_refused(model, lambda: model.fit(X8, Y_BIN, epochs=2, learning_rate=schedule),
                   MlpxValueError,
                   r"ReduceLROnPlateau\(monitor='val_loss'\) watches a key the epoch logs will "
                   r"not have; use one of \['loss', 'accuracy', 'lr', 'time'\]; pass "
                   r"validation_data")


# --- the NaN guard -----------------------------------------------------------------------

class RecordEpochStarts(mlpx.Callback):
    """Keeps a host copy of the weights at the start of every epoch."""

    def __init__(self) -> None:
        self.starts: list[list[np.ndarray]] = []

    def on_epoch_begin(self, epoch, logs=None):
        self.starts.append([host_copy(p) for p in self.model.params])


class JumpAtEpoch2(mlpx.optim.Schedule):
    """A tiny learning rate for two epochs, then a huge one: the fit diverges in epoch 2."""

    def __call__(self, epoch: int) -> float:
        return 1e-12 if epoch < 2 else 1e6


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # overflow is the point
@pytest.mark.parametrize("schedule", ["huge", "jump"], ids=["lr-1e6", "lr-jumps-in-epoch-2"])
@pytest.mark.parametrize("terminate_on_nan", [False, True], ids=["epoch-check", "TerminateOnNaN"])
def test_diverging_fit_keeps_the_last_finite_weights(backend, terminate_on_nan, schedule):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(32, 2)) * 1e3  # unscaled
    y = X @ np.array([3.0, -2.0]) * 1e3
    model = MLP([2, 8, 1], ["relu", "identity"], loss="mse", backend=backend, seed=0)
    recorder = RecordEpochStarts()
    callbacks = [recorder, mlpx.TerminateOnNaN()] if terminate_on_nan else [recorder]
    learning_rate = 1e6 if schedule == "huge" else JumpAtEpoch2()
    with pytest.raises(mlpx.NonFiniteLossError, match=r"Lower the learning rate") as info:
        model.fit(X, y, epochs=50, batch_size=8, optimizer="sgd", learning_rate=learning_rate,
                  shuffle=False, callbacks=callbacks)
    assert isinstance(info.value, FloatingPointError)
    failing_epoch = len(recorder.starts) - 1
    assert failing_epoch == (0 if schedule == "huge" else 2)
    assert f"epoch {failing_epoch}" in str(info.value)
    if schedule == "jump":  # the weights to go back to are not the initial ones
        assert any(a.tobytes() != b.tobytes()
                   for a, b in zip(recorder.starts[0], recorder.starts[-1]))
    params = [host_copy(p) for p in model.params]
    for i, (now, start) in enumerate(zip(params, recorder.starts[-1])):
        assert np.all(np.isfinite(now)), f"params[{i}] is not finite"
        assert now.tobytes() == start.tobytes(), f"params[{i}] is not the failing epoch's start"
    assert np.all(np.isfinite(host_copy(model.predict(X[:4]))))
