"""A scikit-learn grid search over ``mlpx.sklearn.MLPClassifier`` on the digits, next to sklearn's.

Tutorial 002 points to handwritten digits as the next step; this script takes scikit-learn's
bundled 8x8 digits (``sklearn.datasets.load_digits``, no download), keeps a stratified 25 %
as a test set, and tunes ``alpha`` and ``hidden_layer_sizes`` with
``GridSearchCV(Pipeline([("scale", StandardScaler()), ("mlp", MLPClassifier(...))]), cv=3)``.
mlpx's estimator is a drop-in: the pipeline, the cross-validation, ``cv_results_``,
``best_params_`` and the refitted ``best_estimator_`` are scikit-learn's machinery. The same
grid runs with scikit-learn's own ``MLPClassifier``; the script prints the mean
cross-validation accuracy per parameter pair (sorted, both columns), each ``best_params_``,
the held-out accuracy of each best pipeline and the wall time of each search
(``time.perf_counter``). Fits that end at ``max_iter`` warn with ``ConvergenceWarning`` in
both libraries; the script silences those warnings, and under array-api-strict the
"invalid value encountered in divide" RuntimeWarning of scikit-learn's StandardScaler (a
0 / 0 on its first batch that it discards, silenced by scikit-learn for NumPy only).

``--backend torch`` (or array_api_strict, cupy) converts X and y to that library's arrays
and runs the mlpx search inside ``sklearn.config_context(array_api_dispatch=True)``:
scikit-learn's StandardScaler, the fold indexing and the accuracy then work on those arrays
directly, and the MLP trains on their device. Array API dispatch needs SciPy's array API
support, switched on by the environment variable ``SCIPY_ARRAY_API=1`` before SciPy is first
imported; the script sets it (only for non-NumPy backends) before importing scikit-learn.
scikit-learn's own MLPClassifier has no array API support, so its search always runs on the
NumPy copy without dispatch.

    python examples/sklearn_grid_search.py [--backend numpy|torch|array_api_strict|cupy]
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

import numpy as np

import mlpx

QUICK = os.environ.get("MLPX_EXAMPLE_QUICK") == "1"
MAX_ITER = 50 if QUICK else 200
PARAM_GRID = {"mlp__alpha": [1e-4, 1e-1, 1.0], "mlp__hidden_layer_sizes": [(32,), (64,)]}
MIN_TEST_ACCURACY = 0.9  # both libraries reach about 0.97


def load_data():
    """The 1797 digits as float64 features and int labels, a stratified 75/25 split."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    return train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)


def to_backend(array, backend: mlpx.Backend, dtype=None):
    """A host array as an array of ``backend`` on its device (cast on the host first)."""
    return backend.xp.asarray(array if dtype is None else array.astype(dtype),
                              device=backend.device)


def grid_search(classifier, X_train, y_train, X_test, y_test, *, dispatch: bool):
    """GridSearchCV over the scaled pipeline; returns (search, test accuracy, seconds)."""
    import sklearn
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    pipeline = Pipeline([("scale", StandardScaler()), ("mlp", classifier)])
    search = GridSearchCV(pipeline, PARAM_GRID, cv=3)
    start = time.perf_counter()
    with sklearn.config_context(array_api_dispatch=dispatch), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        # scikit-learn's StandardScaler computes 0 / 0 on its first batch and then discards
        # it; it silences that with np.errstate for NumPy only, so array-api-strict warns.
        warnings.filterwarnings("ignore", "invalid value encountered in divide",
                                RuntimeWarning, module="array_api_strict")
        search.fit(X_train, y_train)
        test_accuracy = float(search.score(X_test, y_test))
    return search, test_accuracy, time.perf_counter() - start


def print_table(searches: dict) -> None:
    """Mean (std) cross-validation accuracy per parameter pair, best first by the first search."""
    first = next(iter(searches.values()))
    order = np.argsort(first.cv_results_["rank_test_score"], kind="stable")
    print(f"{'alpha':>8}  {'hidden':<8}" + "".join(f"{name:>24}" for name in searches))
    for i in order:
        params = first.cv_results_["params"][i]
        cells = []
        for search in searches.values():
            j = search.cv_results_["params"].index(params)
            mean = float(search.cv_results_["mean_test_score"][j])
            std = float(search.cv_results_["std_test_score"][j])
            cells.append(f"{mean:.4f} (+/-{std:.4f})")
        print(f"{params['mlp__alpha']:>8g}  {params['mlp__hidden_layer_sizes']!s:<8}"
              + "".join(f"{cell:>24}" for cell in cells))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="numpy",
                        help="numpy, torch, array_api_strict or cupy (default numpy)")
    backend = mlpx.resolve_backend(parser.parse_args().backend)
    dispatch = backend.name != "numpy"
    if dispatch:
        # Read by SciPy when it is first imported (scikit-learn imports it).
        os.environ.setdefault("SCIPY_ARRAY_API", "1")
    try:
        from sklearn.neural_network import MLPClassifier as SkMLPClassifier

        from mlpx.sklearn import MLPClassifier
    except ImportError:
        print("scikit-learn is not installed, and mlpx.sklearn builds on it; "
              "pip install 'mlpx[sklearn]' to run this example")
        return

    X_train, X_test, y_train, y_test = load_data()
    print(f"Digits: {X_train.shape[0]} training and {X_test.shape[0]} test images, "
          f"{X_train.shape[1]} pixels, {np.unique(y_train).size} classes")
    print(f"GridSearchCV(Pipeline(StandardScaler, MLPClassifier(max_iter={MAX_ITER}, "
          f"random_state=0, early_stopping=False)), cv=3) over {PARAM_GRID}")
    where = (f"{backend.name} arrays under array_api_dispatch" if dispatch else "NumPy")
    print(f"mlpx searches on {where}; scikit-learn on NumPy")
    print("=" * 80)

    searches, test_accuracies, times = {}, {}, {}
    if dispatch:  # float32: the estimator's default dtype, so no cast in every fit
        data = (to_backend(X_train, backend, np.float32), to_backend(y_train, backend),
                to_backend(X_test, backend, np.float32), to_backend(y_test, backend))
    else:
        data = (X_train, y_train, X_test, y_test)
    estimators = {
        f"mlpx ({backend.name})": (MLPClassifier, data, dispatch),
        "scikit-learn": (SkMLPClassifier, (X_train, y_train, X_test, y_test), False),
    }
    for name, (classifier, arrays, use_dispatch) in estimators.items():
        search, test_accuracy, seconds = grid_search(
            classifier(max_iter=MAX_ITER, random_state=0, early_stopping=False), *arrays,
            dispatch=use_dispatch)
        searches[name], test_accuracies[name], times[name] = search, test_accuracy, seconds

    print("Mean 3-fold cross-validation accuracy, best first (by mlpx's ranking):")
    print_table(searches)
    print("=" * 80)
    for name, search in searches.items():
        best = search.best_params_
        print(f"{name}: best_params_ alpha={best['mlp__alpha']:g}, "
              f"hidden_layer_sizes={best['mlp__hidden_layer_sizes']}; "
              f"held-out test accuracy {test_accuracies[name]:.2%}; "
              f"search took {times[name]:.1f} s")
    mlpx_best = searches[f"mlpx ({backend.name})"].best_estimator_.named_steps["mlp"]
    print(f"mlpx's best network trained on {mlpx_best.model_.backend.name} "
          f"({mlpx_best.model_.backend.device}), n_iter_={mlpx_best.n_iter_}")

    accuracy = test_accuracies[f"mlpx ({backend.name})"]
    assert accuracy >= MIN_TEST_ACCURACY, (
        f"mlpx's best pipeline: test accuracy {accuracy:.2%} < {MIN_TEST_ACCURACY:.0%}"
    )


if __name__ == "__main__":
    main()
