"""Tutorial 003 through ``mlpx.sklearn.MLPClassifier``, next to scikit-learn's own.

The tutorial ends by fitting its network -- 3 inputs, 3 ReLU units, 2 ReLU units, one
sigmoid output, logistic loss -- with scikit-learn's ``MLPClassifier``. This script does the
same with ``mlpx.sklearn.MLPClassifier(hidden_layer_sizes=(3, 2), activation="relu")``, the
drop-in that trains on NumPy, PyTorch, array-api-strict or CuPy arrays. For the binary
problem both use a single logistic output unit (``coefs_`` of shapes 3x3, 3x2 and 2x1,
``out_activation_ == "logistic"``), as scikit-learn does.

The data is tutorial003_weight_change.py's (the captured tutorial lost its own): two
overlapping 3-D Gaussian clouds (``mlpx.datasets.make_blobs``, centers (-1, -1, -1) and
(1, 1, 1), standard deviation 1.5, seed 3), split 75/25 and standardised on the training
split. It is drawn on the host and converted once with the chosen backend's namespace
(``backend.xp.asarray(..., device=backend.device)``), so the estimator trains where the
arrays live; scikit-learn gets the NumPy copy.

Three solvers, each fitted by both libraries with the same parameters: 'sgd' as in the
tutorial (full-batch gradient descent: ``batch_size=len(X_train)``, learning rate 0.1, no
momentum), 'adam' and 'lbfgs'. For each it prints ``n_iter_``, ``loss_``, train and test
accuracy, the shapes of ``coefs_`` and ``out_activation_``. The two columns differ within the
noise of different starting weights: mlpx starts from Glorot-uniform weights and zero biases,
scikit-learn from its own uniform draw. Finally it shows that ``coefs_`` and ``intercepts_``
are the model's state: scikit-learn's fitted weights are copied into an mlpx estimator
(``dtype="float64"``), which then predicts the same probabilities to 1e-6.

If ``mlpx.lbfgs`` is not available, the mlpx 'lbfgs' fit is skipped with a note. mlpx.sklearn
needs scikit-learn (``pip install 'mlpx[sklearn]'``); without it the script says so and stops.

    python examples/sklearn_tutorial003.py [--backend numpy|torch|array_api_strict|cupy]
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

import numpy as np

import mlpx
from mlpx.datasets import StandardScaler, make_blobs, train_test_split

QUICK = os.environ.get("MLPX_EXAMPLE_QUICK") == "1"
MAX_ITER = 300 if QUICK else 2000
LEARNING_RATE = 0.1
RANDOM_STATE = 42
# The same hyper-parameters for both libraries; 'sgd' is the tutorial's full-batch descent.
SOLVERS = {
    "sgd": {"learning_rate_init": LEARNING_RATE, "momentum": 0.0, "batch_size": "all"},
    "adam": {},
    "lbfgs": {},
}
MIN_TEST_ACCURACY = 0.7  # the fits reach about 0.88; far below means something broke


def make_data():
    """Two overlapping 3-D Gaussian clouds, 75/25 split, standardised (host float64)."""
    X, y = make_blobs(n_samples=1000, centers=[[-1.0, -1.0, -1.0], [1.0, 1.0, 1.0]],
                      cluster_std=1.5, seed=3, dtype="float64")
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, seed=3)
    scaler = StandardScaler().fit(X_train)
    return scaler.transform(X_train), scaler.transform(X_test), y_train, y_test


def to_backend(array, backend: mlpx.Backend):
    """A host array as an array of ``backend``, on its device."""
    return backend.xp.asarray(array, device=backend.device)


def estimator_params(solver: str, n_train: int) -> dict:
    """The parameters shared by both MLPClassifiers for one solver."""
    params = {"hidden_layer_sizes": (3, 2), "activation": "relu", "solver": solver,
              "max_iter": MAX_ITER, "random_state": RANDOM_STATE}
    for name, value in SOLVERS[solver].items():
        params[name] = n_train if value == "all" else value
    return params


def fit_and_describe(classifier, X_train, X_test, y_train, y_test) -> dict:
    """Fit, then the fitted attributes and accuracies the comparison prints."""
    from sklearn.exceptions import ConvergenceWarning

    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        classifier.fit(X_train, y_train)
    seconds = time.perf_counter() - start
    hit_max_iter = any(issubclass(w.category, ConvergenceWarning) for w in caught)
    return {
        "n_iter_": f"{classifier.n_iter_}{' (max_iter)' if hit_max_iter else ''}",
        "loss_": f"{classifier.loss_:.4f}",
        "train accuracy": f"{classifier.score(X_train, y_train):.2%}",
        "test accuracy": f"{classifier.score(X_test, y_test):.2%}",
        "coefs_ shapes": " ".join("x".join(map(str, W.shape)) for W in classifier.coefs_),
        "intercepts_ sizes": " ".join(str(b.shape[0]) for b in classifier.intercepts_),
        "out_activation_": classifier.out_activation_,
        "fit time": f"{seconds:.2f} s",
        "_test_accuracy": classifier.score(X_test, y_test),
    }


def print_side_by_side(solver: str, columns: dict[str, dict | str]) -> None:
    """One row per fitted attribute, one column per library."""
    rows = next((list(c) for c in columns.values() if isinstance(c, dict)), [])
    print(f"solver={solver!r}")
    print(f"  {'':<18}" + "".join(f"{name:>26}" for name in columns))
    for row in rows:
        if row.startswith("_"):
            continue
        cells = [c[row] if isinstance(c, dict) else (c if row == rows[0] else "")
                 for c in columns.values()]
        print(f"  {row:<18}" + "".join(f"{cell:>26}" for cell in cells))


def copy_weights_demo(sk_classifier, data_host, backend: mlpx.Backend, MLPClassifier) -> float:
    """scikit-learn's fitted coefs_/intercepts_ written into an mlpx estimator."""
    X_train, X_test, y_train, _ = data_host
    from sklearn.exceptions import ConvergenceWarning

    # A one-epoch fit creates the (3, 2) network on the backend; then its state is replaced.
    target = MLPClassifier(hidden_layer_sizes=(3, 2), activation="relu", solver="sgd",
                           max_iter=1, random_state=0, dtype="float64")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        target.fit(to_backend(X_train, backend), to_backend(y_train, backend))
    target.coefs_ = [to_backend(W, backend) for W in sk_classifier.coefs_]
    target.intercepts_ = [to_backend(b, backend) for b in sk_classifier.intercepts_]

    proba_mlpx = mlpx.to_numpy(target.predict_proba(to_backend(X_test, backend)))
    proba_sklearn = sk_classifier.predict_proba(X_test)
    difference = float(np.max(np.abs(proba_mlpx - proba_sklearn)))
    same_weights = all(np.array_equal(mlpx.to_numpy(W), W_sk)
                       for W, W_sk in zip(target.coefs_, sk_classifier.coefs_))
    same_labels = np.array_equal(mlpx.to_numpy(target.predict(to_backend(X_test, backend))),
                                 sk_classifier.predict(X_test))
    print(f"Copied scikit-learn's 'sgd' weights into mlpx.sklearn.MLPClassifier(dtype='float64')"
          f" on {target.model_.backend.name}:")
    print(f"  coefs_ read back equal: {same_weights}; "
          f"max |predict_proba difference| on the test set: {difference:.2e}; "
          f"same predicted labels: {same_labels}")
    return difference


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="numpy",
                        help="numpy, torch, array_api_strict or cupy (default numpy)")
    backend = mlpx.resolve_backend(parser.parse_args().backend)
    try:
        from sklearn.neural_network import MLPClassifier as SkMLPClassifier

        from mlpx.sklearn import MLPClassifier
    except ImportError:
        print("scikit-learn is not installed, and mlpx.sklearn builds on it; "
              "pip install 'mlpx[sklearn]' to run this example")
        return

    data_host = make_data()
    X_train, X_test, y_train, y_test = data_host
    data = tuple(to_backend(part, backend) for part in data_host)
    print(f"Data: {X_train.shape[0]} training and {X_test.shape[0]} test samples, "
          f"{X_train.shape[1]} features; mlpx trains on {backend.name} ({backend.device}), "
          "scikit-learn on NumPy")
    print(f"Network: 3 inputs -> 3 relu -> 2 relu -> 1 logistic, log-loss, "
          f"max_iter={MAX_ITER}, random_state={RANDOM_STATE}")
    print("=" * 80)

    test_accuracies = {}
    sk_fits = {}
    for solver in SOLVERS:
        params = estimator_params(solver, X_train.shape[0])
        columns: dict[str, dict | str] = {}
        try:
            described = fit_and_describe(MLPClassifier(**params), *data)
            test_accuracies[solver] = described["_test_accuracy"]
            columns[f"mlpx ({backend.name})"] = described
        except ModuleNotFoundError as error:  # mlpx.lbfgs not written yet
            if error.name != "mlpx.lbfgs":
                raise
            print(f"note: mlpx solver={solver!r} is not available here ({error}); skipped")
            columns[f"mlpx ({backend.name})"] = "skipped"
        sk_classifier = SkMLPClassifier(**params)
        columns["scikit-learn"] = fit_and_describe(sk_classifier, *data_host)
        sk_fits[solver] = sk_classifier
        print_side_by_side(solver, columns)
        print("-" * 80)

    difference = copy_weights_demo(sk_fits["sgd"], data_host, backend, MLPClassifier)
    print("=" * 80)
    print("mlpx test accuracy: "
          + ", ".join(f"{solver} {accuracy:.2%}" for solver, accuracy in test_accuracies.items()))

    assert difference < 1e-6, f"predict_proba differs by {difference:.2e} after copying weights"
    for solver, accuracy in test_accuracies.items():
        assert accuracy >= MIN_TEST_ACCURACY, (
            f"mlpx solver={solver!r}: test accuracy {accuracy:.2%} < {MIN_TEST_ACCURACY:.0%}"
        )


if __name__ == "__main__":
    main()
