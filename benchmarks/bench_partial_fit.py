"""Streaming training: ``partial_fit`` per call, mlpx's drop-in estimator against scikit-learn's.

Out-of-core and online learning call ``partial_fit`` once per chunk of rows, so what a
call costs besides its arithmetic (checking the input and the labels, setting the step
up) counts as much as the arithmetic on small chunks. This script streams the digits data
(scaled to [0, 1], float32) through ``MLPClassifier(hidden_layer_sizes=(128, 64),
batch_size=64, random_state=0)`` of both libraries, ``--chunk`` rows per call, for
``--epochs`` passes; rounds alternate which library goes first, and the table gives the
median time per call and the accuracy on the training set after the last round.

    python benchmarks/bench_partial_fit.py                    # chunks of 64 and 512 rows
    python benchmarks/bench_partial_fit.py --chunks 64 --rounds 3
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
BATCH_SIZE = 64


def digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled digits, pixels scaled to [0, 1] in float32."""
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return (X / 16).astype(np.float32), y


def estimators() -> dict[str, type]:
    """The two MLPClassifier classes by library name."""
    from sklearn.neural_network import MLPClassifier as SklearnMLPClassifier

    from mlpx.sklearn import MLPClassifier

    return {"sklearn": SklearnMLPClassifier, "mlpx": MLPClassifier}


def stream(estimator_class: type, X: np.ndarray, y: np.ndarray, chunk: int,
           epochs: int) -> tuple[float, int, float]:
    """Seconds per ``partial_fit`` call over ``epochs`` passes, the calls, the accuracy."""
    model = estimator_class(hidden_layer_sizes=HIDDEN, batch_size=BATCH_SIZE, random_state=0)
    classes = np.unique(y)
    model.partial_fit(X[:chunk], y[:chunk], classes=classes)  # untimed: builds the model
    calls = 0
    start = time.perf_counter()
    for _ in range(epochs):
        for begin in range(0, X.shape[0], chunk):
            model.partial_fit(X[begin:begin + chunk], y[begin:begin + chunk])
            calls += 1
    seconds = time.perf_counter() - start
    return seconds / calls, calls, float(model.score(X, y))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chunks", default="64,512", help="rows per call (default 64,512)")
    parser.add_argument("--epochs", type=int, default=3, help="passes per round (default 3)")
    parser.add_argument("--rounds", type=int, default=5, help="measured rounds (default 5)")
    args = parser.parse_args(argv)
    try:
        chunks = [int(text) for text in args.chunks.split(",")]
    except ValueError:
        parser.error(f"--chunks {args.chunks!r} must be comma-separated integers, e.g. 64,512")
    if min(chunks) < 1 or args.epochs < 1 or args.rounds < 1:
        parser.error("--chunks, --epochs and --rounds must be at least 1")
    X, y = digits()
    libraries = estimators()
    passes = f"{args.epochs} pass{'es' * (args.epochs != 1)}"
    rounds = f"{args.rounds} round{'s' * (args.rounds != 1)}"
    print(f"## partial_fit per call: digits ({X.shape[0]} rows), hidden {HIDDEN}, batch "
          f"{BATCH_SIZE}, Adam, {passes}, median of {rounds}\n")
    print("| rows per call | calls | sklearn ms/call | mlpx ms/call | mlpx speed-up (paired) "
          "| accuracy sklearn / mlpx |")
    print("| ---: | ---: | ---: | ---: | ---: | --- |")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scikit-learn's ConvergenceWarning per call
        for chunk in chunks:
            times: dict[str, list[float]] = {name: [] for name in libraries}
            accuracy, calls = {}, 0
            for round_index in range(args.rounds + 1):  # round 0 warms up
                names = list(libraries) if round_index % 2 else list(libraries)[::-1]
                for name in names:
                    per_call, calls, accuracy[name] = stream(libraries[name], X, y, chunk,
                                                             args.epochs)
                    if round_index:
                        times[name].append(per_call)
            speed_up = statistics.median(s / m for s, m in zip(times["sklearn"], times["mlpx"]))
            print(f"| {chunk} | {calls} | {1e3 * statistics.median(times['sklearn']):.3f} | "
                  f"{1e3 * statistics.median(times['mlpx']):.3f} | {speed_up:.2f}x | "
                  f"{accuracy['sklearn']:.3f} / {accuracy['mlpx']:.3f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
