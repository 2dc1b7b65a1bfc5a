"""Early stopping's cost: the drop-in estimators with and without ``early_stopping``.

With ``early_stopping=True`` scikit-learn's MLP estimators hold out
``validation_fraction`` of the rows and score them (accuracy or R^2) after every epoch,
keeping the best weights. On small data that score is a large share of an epoch. This
script fits ``MLPClassifier`` on the digits (scaled to [0, 1]) and ``MLPRegressor`` on
the diabetes data (targets standardised), ``hidden_layer_sizes=(128, 64)``, ``alpha=0``,
``--max-iter`` epochs with no stop (``tol=0``, ``n_iter_no_change`` above the epochs),
from both libraries, with and without early stopping, after an untimed one-epoch fit of
each; rounds alternate the order. The
table gives median fit times, what early stopping adds to each library's fit, and how
much faster mlpx is with it.

    python benchmarks/bench_early_stopping.py                   # 5 rounds of 50 epochs
    python benchmarks/bench_early_stopping.py --rounds 3 --max-iter 20
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # benchmark the checkout this script sits in
    sys.path.insert(0, str(ROOT))

HIDDEN = (128, 64)
LIBRARIES = ("mlpx", "sklearn")


def problems() -> list[tuple[str, str, np.ndarray, np.ndarray]]:
    """(label, estimator name, X, y) for the classifier and the regressor."""
    from sklearn.datasets import load_diabetes, load_digits

    X_digits, y_digits = load_digits(return_X_y=True)
    X_diabetes, y_diabetes = load_diabetes(return_X_y=True)
    return [
        ("MLPClassifier, digits", "MLPClassifier", (X_digits / 16).astype(np.float32),
         y_digits),
        ("MLPRegressor, diabetes", "MLPRegressor", X_diabetes.astype(np.float32),
         (y_diabetes - y_diabetes.mean()) / y_diabetes.std()),
    ]


def estimator_class(library: str, name: str) -> type:
    """``name`` from mlpx.sklearn or from sklearn.neural_network."""
    if library == "mlpx":
        import mlpx.sklearn as module
    else:
        import sklearn.neural_network as module
    return getattr(module, name)


def fit_seconds(library: str, name: str, X: np.ndarray, y: np.ndarray, early_stopping: bool,
                max_iter: int) -> float:
    """Seconds of one ``fit`` of ``max_iter`` epochs."""
    from sklearn.exceptions import ConvergenceWarning

    model = estimator_class(library, name)(
        hidden_layer_sizes=HIDDEN, max_iter=max_iter, tol=0.0, n_iter_no_change=max_iter + 1,
        early_stopping=early_stopping, random_state=0, alpha=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        start = time.perf_counter()
        model.fit(X, y)
        return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds (default 5)")
    parser.add_argument("--max-iter", type=int, default=50, help="epochs per fit (default 50)")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.max_iter < 1:
        parser.error("--rounds and --max-iter must be at least 1")
    print(f"## Early stopping's cost ({args.max_iter} epochs, medians of {args.rounds} "
          "rounds)\n")
    print("| estimator | mlpx s | mlpx s, early stopping | sklearn s | sklearn s, early "
          "stopping | early stopping adds (mlpx / sklearn) | sklearn / mlpx, early stopping |")
    print("| --- | ---: | ---: | ---: | ---: | --- | ---: |")
    for label, name, X, y in problems():
        times: dict[tuple[str, bool], list[float]] = {}
        for library in LIBRARIES:  # untimed: first-call costs (imports, allocator, BLAS)
            for early_stopping in (False, True):
                fit_seconds(library, name, X, y, early_stopping, 1)
        for round_index in range(args.rounds):
            order = LIBRARIES if round_index % 2 == 0 else LIBRARIES[::-1]
            for library in order:
                for early_stopping in (False, True):
                    times.setdefault((library, early_stopping), []).append(
                        fit_seconds(library, name, X, y, early_stopping, args.max_iter))
        median = {key: statistics.median(values) for key, values in times.items()}
        added = [median[(library, True)] / median[(library, False)] - 1
                 for library in LIBRARIES]
        print(f"| {label} | {median[('mlpx', False)]:.4f} | {median[('mlpx', True)]:.4f} | "
              f"{median[('sklearn', False)]:.4f} | {median[('sklearn', True)]:.4f} | "
              f"{added[0]:+.0%} / {added[1]:+.0%} | "
              f"{median[('sklearn', True)] / median[('mlpx', True)]:.2f}x |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
