"""Prediction speed: ``predict_proba`` per call, mlpx against scikit-learn and PyTorch (CPU).

Serving a model calls ``predict_proba`` on a single row, a small batch or a whole data
set; on small inputs what a call costs besides its arithmetic (checking the input, the
conversions, Python) is most of it. This script builds bench_train.py's networks
(moons 2-16-8-2, digits 64-128-64-10, mnist 784-512-256-10; relu hidden layers, softmax
output, float32) and its data, fits ``mlpx.MLP`` for one epoch (Adam, the config's batch
size), then gives its weights to scikit-learn's ``MLPClassifier`` (``coefs_`` and
``intercepts_``, after an untimed ``max_iter=1`` fit) and to a plain PyTorch
``nn.Sequential``, so that all compute the same function: their outputs are checked to
agree to 1e-4 on every input timed, before any timing. Two classes (moons): scikit-learn's
classifier has one logistic unit, given the difference of mlpx's two softmax logits.

Each contender runs ``--rows`` rows per call (``all``: the whole test set), in a loop of
as many calls as take about 30 ms (counted once per config and rows, after a first call),
NumPy in and NumPy out:

- mlpx: ``model.predict_proba(X_rows)``;
- sklearn: ``clf.predict_proba(X_rows)``;
- torch: ``with torch.no_grad(): torch.softmax(net(torch.from_numpy(X_rows)), dim=1).numpy()``
  per call, the conversions included as in serving code;
- mlpx-sklearn (only when named in ``--contenders``): mlpx's drop-in
  ``mlpx.sklearn.MLPClassifier`` given the weights as scikit-learn's is;
- floor (whole test set only): the three matrix products alone, ``np.matmul(out=)`` into
  preallocated float32 arrays (no biases, activations or checks).

Each round takes the contenders in a new seeded order (see ``measure``); round 0 warms up
and is not counted. The table gives median microseconds per call and paired ratios: the
median over rounds of each round's ratio (>1: mlpx is faster; "mlpx x floor": mlpx's time
over the floor's).

Every library runs on one thread by default (``--threads 1``), as a serving worker often
does. With the libraries' own pools (``--threads 0``) the contenders share one process,
and each pool's workers, spinning after a call, slow the next library's call: torch on 64
mnist-like rows took 32 ms instead of 0.7 ms after mlpx's OpenBLAS call on two cores,
which no single-library program would see.

    python benchmarks/bench_predict.py                      # 7 rounds, rows 1, 64 and all
    python benchmarks/bench_predict.py --quick              # 2 rounds, short loops
    python benchmarks/bench_predict.py --configs mnist --rows 1,all --threads 0
    python benchmarks/bench_predict.py --contenders mlpx,sklearn,torch,mlpx-sklearn
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import math
import os
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # benchmark the checkout this script sits in
    sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_train  # noqa: E402  (the configs, data and torch network of the main benchmark)

CONFIGS = ("moons", "digits", "mnist")
CONTENDERS = ("mlpx", "sklearn", "torch")
OPTIONAL_CONTENDERS = ("mlpx-sklearn",)
#: Rows of each config's test set (bench_train's data makers; checked when they run).
TEST_ROWS = {"moons": 1000, "digits": 1797, "mnist": 5000}
#: The largest absolute difference of probabilities allowed between contenders.
TOLERANCE = 1e-4
#: Seconds one measurement's loop of calls should take (full run, --quick).
LOOP_SECONDS = (0.030, 0.005)

Predictor = Callable[[np.ndarray], Any]


# --------------------------------------------------------------------------- the contenders


def fit_mlpx(config: bench_train.Config, X_train: np.ndarray, y_train: np.ndarray) -> Any:
    """``mlpx.MLP`` with the config's layers (relu hidden, softmax out), fitted one epoch."""
    import mlpx

    activations = ["relu"] * len(config.hidden) + ["softmax"]
    model = mlpx.MLP(config.layer_sizes, activations=activations, dtype="float32",
                     seed=bench_train.SEED)
    model.fit(X_train, y_train, epochs=1, batch_size=config.batch_size, optimizer="adam",
              learning_rate=bench_train.LEARNING_RATE)
    return model


def host_weights(model: Any) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """mlpx's weight matrices (fan_in, fan_out) and biases as float32 NumPy arrays."""
    import mlpx

    params = [np.ascontiguousarray(mlpx.to_numpy(p), dtype=np.float32) for p in model.params]
    return params[0::2], params[1::2]


def one_unit_for_two_classes(coefs: list[np.ndarray],
                             intercepts: list[np.ndarray]) -> tuple[list, list]:
    """The weights as a scikit-learn binary classifier takes them: one logistic unit.

    ``softmax(z)[1] = sigmoid(z[1] - z[0])``, so the unit gets the difference of the two
    output columns; more than two classes are returned as they are.
    """
    if coefs[-1].shape[1] != 2:
        return coefs, intercepts
    W, b = coefs[-1], intercepts[-1]
    return ([*coefs[:-1], np.ascontiguousarray(W[:, 1:] - W[:, :1])],
            [*intercepts[:-1], b[1:] - b[:1]])


def sklearn_like(estimator_class: type, config: bench_train.Config, X_train: np.ndarray,
                 y_train: np.ndarray, coefs: list[np.ndarray],
                 intercepts: list[np.ndarray]) -> Any:
    """An ``MLPClassifier`` fitted once (``max_iter=1``, warnings silenced), then given
    ``coefs`` and ``intercepts`` (one output unit for two classes)."""
    classifier = estimator_class(hidden_layer_sizes=config.hidden, batch_size=config.batch_size,
                                 max_iter=1, random_state=bench_train.SEED)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning after one epoch
        classifier.fit(X_train, y_train)
    coefs, intercepts = one_unit_for_two_classes(coefs, intercepts)
    classifier.coefs_ = [W.copy() for W in coefs]
    classifier.intercepts_ = [b.copy() for b in intercepts]
    return classifier


def torch_network(sizes: list[int], coefs: list[np.ndarray],
                  intercepts: list[np.ndarray]) -> Any:
    """bench_train's ``nn.Sequential`` (Linear, ReLU, ..., Linear) holding the weights
    (a Linear layer's weight is W transposed), in eval mode."""
    import torch

    network = bench_train._torch_network(torch, sizes, "relu")
    linears = [layer for layer in network if isinstance(layer, torch.nn.Linear)]
    with torch.no_grad():
        for layer, W, b in zip(linears, coefs, intercepts):
            layer.weight.copy_(torch.from_numpy(W.T))
            layer.bias.copy_(torch.from_numpy(b))
    return network.eval()


def torch_predictor(network: Any) -> Predictor:
    """Softmax probabilities from NumPy rows, as serving code calls the network."""
    import torch

    def predict(X_rows: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return torch.softmax(network(torch.from_numpy(X_rows)), dim=1).numpy()

    return predict


def build_predictors(config: bench_train.Config, names: Sequence[str], X_train: np.ndarray,
                     y_train: np.ndarray) -> tuple[dict[str, Predictor], list[np.ndarray]]:
    """Each contender's ``predict_proba`` with mlpx's fitted weights, and the weights."""
    model = fit_mlpx(config, X_train, y_train)
    coefs, intercepts = host_weights(model)
    predictors: dict[str, Predictor] = {"mlpx": model.predict_proba}
    if "sklearn" in names:
        from sklearn.neural_network import MLPClassifier

        classifier = sklearn_like(MLPClassifier, config, X_train, y_train, coefs, intercepts)
        predictors["sklearn"] = classifier.predict_proba
    if "torch" in names:
        predictors["torch"] = torch_predictor(torch_network(config.layer_sizes, coefs,
                                                            intercepts))
    if "mlpx-sklearn" in names:
        from mlpx.sklearn import MLPClassifier as DropInClassifier

        drop_in = sklearn_like(DropInClassifier, config, X_train, y_train, coefs, intercepts)
        predictors["mlpx-sklearn"] = drop_in.predict_proba
    return predictors, coefs


def gemm_floor(coefs: list[np.ndarray], rows: int) -> Predictor:
    """The layers' matrix products alone (``x @ W0``, ``h1 @ W1``, ...) on ``rows`` rows,
    ``np.matmul(out=)`` into preallocated float32 arrays."""
    outputs = [np.empty((rows, W.shape[1]), dtype=np.float32) for W in coefs]

    def products(X_rows: np.ndarray) -> np.ndarray:
        inputs = X_rows
        for W, out in zip(coefs, outputs):
            inputs = np.matmul(inputs, W, out=out)
        return inputs

    return products


def check_same_function(predictors: dict[str, Predictor], X_rows: np.ndarray,
                        label: str) -> None:
    """Raise RuntimeError unless every contender's probabilities on ``X_rows`` are mlpx's
    to ``TOLERANCE`` (absolute)."""
    reference = np.asarray(predictors["mlpx"](X_rows))
    for name, predict in predictors.items():
        proba = np.asarray(predict(X_rows))
        gap = (float(np.max(np.abs(proba - reference))) if proba.shape == reference.shape
               else math.inf)
        if not gap <= TOLERANCE:  # NaN fails too
            raise RuntimeError(
                f"{label}: {name}'s predict_proba is not mlpx's (shape {proba.shape} vs "
                f"{reference.shape}, largest difference {gap:.3g} > {TOLERANCE:g}); the "
                "contenders would not compute the same function, so their times would not "
                "compare")


# --------------------------------------------------------------------------- timing


def seconds_per_call(predict: Predictor, X_rows: np.ndarray, calls: int) -> float:
    """Seconds per call of ``calls`` calls of ``predict(X_rows)`` in a loop."""
    start = time.perf_counter()
    for _ in range(calls):
        predict(X_rows)
    return (time.perf_counter() - start) / calls


def calls_for(predict: Predictor, X_rows: np.ndarray, loop_seconds: float) -> int:
    """How many calls take about ``loop_seconds`` (after one untimed first call)."""
    predict(X_rows)
    calls = 1
    while (per_call := seconds_per_call(predict, X_rows, calls)) * calls < loop_seconds / 10:
        calls *= 10
    return max(1, round(loop_seconds / per_call))


def measure(predictors: dict[str, Predictor], X_rows: np.ndarray, calls: dict[str, int],
            rounds: int) -> dict[str, list[float]]:
    """Seconds per call of every contender in each of ``rounds`` rounds, after a warm-up
    round; each round takes the contenders in an order of its own (seeded by the round).

    Not a rotation: it keeps each contender's predecessor, and torch's OpenMP threads spin
    for a while after a call, slowing whichever contender comes next (the one after torch
    measured 1.6x slower on mnist-like with two threads).
    """
    names = list(predictors)
    times: dict[str, list[float]] = {name: [] for name in names}
    for round_index in range(rounds + 1):
        order = np.random.default_rng(round_index).permutation(len(names))
        gc.collect()
        for name in (names[i] for i in order):
            per_call = seconds_per_call(predictors[name], X_rows, calls[name])
            if round_index:
                times[name].append(per_call)
    return times


def paired_ratio(times: dict[str, list[float]], numerator: str, denominator: str) -> float:
    """The median over rounds of ``numerator``'s time over ``denominator``'s (NaN if either
    did not run)."""
    if numerator not in times or denominator not in times:
        return math.nan
    return statistics.median(n / d for n, d in zip(times[numerator], times[denominator]))


# --------------------------------------------------------------------------- report


def _micros(times: dict[str, list[float]], name: str) -> str:
    """Median microseconds per call, or n/a for a contender that did not run."""
    if name not in times:
        return "n/a"
    micros = 1e6 * statistics.median(times[name])
    return f"{micros:.1f}" if micros < 1000 else f"{micros:.0f}"


def _ratio(value: float) -> str:
    """A paired ratio such as ``3.10x`` (n/a for NaN: a contender that did not run)."""
    return "n/a" if math.isnan(value) else f"{value:.2f}x"


def table_header(names: Sequence[str]) -> str:
    """The Markdown table's header and alignment lines."""
    columns = ["config", "rows per call", "mlpx us", "sklearn us", "torch us",
               "mlpx vs torch (paired)", "mlpx vs sklearn (paired)", "mlpx x floor"]
    if "mlpx-sklearn" in names:
        columns += ["mlpx-sklearn us", "mlpx-sklearn vs sklearn (paired)"]
    aligns = ["---", "---:"] + ["---:"] * (len(columns) - 2)
    return f"| {' | '.join(columns)} |\n| {' | '.join(aligns)} |"


def table_row(config: str, rows: int, times: dict[str, list[float]],
              names: Sequence[str]) -> str:
    """One line of the table: medians and paired ratios (mlpx over the floor where timed)."""
    cells = [config, str(rows), _micros(times, "mlpx"), _micros(times, "sklearn"),
             _micros(times, "torch"), _ratio(paired_ratio(times, "torch", "mlpx")),
             _ratio(paired_ratio(times, "sklearn", "mlpx")),
             _ratio(paired_ratio(times, "mlpx", "floor"))]
    if "mlpx-sklearn" in names:
        cells += [_micros(times, "mlpx-sklearn"),
                  _ratio(paired_ratio(times, "sklearn", "mlpx-sklearn"))]
    return f"| {' | '.join(cells)} |"


@contextmanager
def thread_limit(threads: int, names: Sequence[str]) -> Iterator[str]:
    """Cap the BLAS/OpenMP pools (threadpoolctl, if installed) and torch's intra-op threads
    at ``threads`` inside; 0 leaves the libraries' defaults. Yields a description."""
    if threads == 0:
        yield "library defaults (--threads 0)"
        return
    torch = None
    if "torch" in names:
        import torch
    previous = torch.get_num_threads() if torch is not None else None
    if importlib.util.find_spec("threadpoolctl") is None:
        capped, limits = "BLAS/OpenMP pools not capped: no threadpoolctl", None
    else:
        from threadpoolctl import threadpool_limits

        capped, limits = "BLAS/OpenMP pools capped by threadpoolctl", threadpool_limits(threads)
    if torch is not None:
        torch.set_num_threads(threads)
        capped += ", torch.set_num_threads"
    try:
        yield f"--threads {threads} ({capped})"
    finally:
        if limits is not None:
            limits.restore_original_limits()
        if torch is not None:
            torch.set_num_threads(previous)


def machine_line(threads: str, names: Sequence[str]) -> str:
    """One line: OS, CPU, versions, thread pools and how the threads were set."""
    from mlpx._compiled import kernel_status

    versions = [f"python {platform.python_version()}", f"numpy {np.__version__}"]
    for distribution, label in (("torch", "torch"), ("scikit-learn", "sklearn"),
                                ("mlpx", "mlpx")):
        version = bench_train._version(distribution)
        versions.append(f"{label} {version}" if version else f"no {label}")
    torch_threads = ""
    if "torch" in names:
        import torch

        torch_threads = f"; torch threads {torch.get_num_threads()}"
    return (f"machine: {platform.system()} {platform.machine()}, {bench_train._cpu_name()}, "
            f"{os.cpu_count()} CPUs; {', '.join(versions)}; numpy BLAS: "
            f"{bench_train.thread_pools()}{torch_threads}; threads: {threads}; mlpx "
            f"{kernel_status()}")


# --------------------------------------------------------------------------- command line


def _names(text: str, allowed: Sequence[str], option: str,
           parser: argparse.ArgumentParser) -> list[str]:
    """A comma-separated list checked against ``allowed`` (duplicates dropped)."""
    names = list(dict.fromkeys(name.strip() for name in text.split(",") if name.strip()))
    unknown = [name for name in names if name not in allowed]
    if unknown or not names:
        parser.error(f"{option} {text!r}: unknown {unknown or 'empty list'}; choose from "
                     f"{','.join(allowed)}")
    return names


def _rows(text: str, configs: Sequence[str],
          parser: argparse.ArgumentParser) -> list[int | None]:
    """``--rows``: positive integers and ``all`` (None), each at most every test set."""
    rows: list[int | None] = []
    for item in dict.fromkeys(part.strip() for part in text.split(",") if part.strip()):
        if item == "all":
            rows.append(None)
            continue
        try:
            count = int(item)
        except ValueError:
            parser.error(f"--rows {text!r}: {item!r} is neither an integer nor 'all', e.g. "
                         "--rows 1,64,all")
        if count < 1:
            parser.error(f"--rows {text!r}: rows per call must be at least 1")
        smallest = min(configs, key=TEST_ROWS.__getitem__)
        if count > TEST_ROWS[smallest]:
            parser.error(f"--rows {count} is more than the {TEST_ROWS[smallest]} test rows of "
                         f"{smallest}; use 'all' for the whole test set")
        rows.append(count)
    if not rows:
        parser.error("--rows is empty; e.g. --rows 1,64,all")
    return rows


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line, checked and with the quick/full defaults filled in."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", default=",".join(CONFIGS),
                        help=f"comma-separated from {','.join(CONFIGS)} (default all)")
    parser.add_argument("--rows", default="1,64,all",
                        help="rows per call, comma-separated; 'all' = the whole test set "
                             "(default 1,64,all)")
    contenders = (*CONTENDERS, *OPTIONAL_CONTENDERS)
    parser.add_argument("--contenders", default=",".join(CONTENDERS),
                        help=f"comma-separated from {','.join(contenders)}; mlpx is required "
                             f"(default {','.join(CONTENDERS)})")
    parser.add_argument("--rounds", type=int, default=None,
                        help="measured rounds after the warm-up one (default 7, 2 with --quick)")
    parser.add_argument("--threads", type=int, default=1,
                        help="cap BLAS/OpenMP pools and torch's threads at N; 0: the "
                             "libraries' defaults (default 1)")
    parser.add_argument("--quick", action="store_true",
                        help="2 rounds, 5 ms loops, bench_train's quick training sets")
    args = parser.parse_args(argv)
    args.configs = _names(args.configs, CONFIGS, "--configs", parser)
    args.contenders = _names(args.contenders, contenders, "--contenders", parser)
    args.rows = _rows(args.rows, args.configs, parser)
    if args.rounds is None:
        args.rounds = 2 if args.quick else 7
    if args.rounds < 1:
        parser.error(f"--rounds {args.rounds}: give at least 1 measured round")
    if args.threads < 0:
        parser.error(f"--threads {args.threads}: give at least 1, or 0 for the libraries' "
                     "defaults")
    if "mlpx" not in args.contenders:
        parser.error("--contenders must include mlpx: every ratio is against it")
    if importlib.util.find_spec("sklearn") is None:
        parser.error("scikit-learn is not installed: it makes the digits and mnist data and "
                     "is a contender; install the sklearn extra")
    if "torch" in args.contenders and importlib.util.find_spec("torch") is None:
        others = ",".join(name for name in args.contenders if name != "torch")
        parser.error(f"torch is not installed; install it or leave it out: --contenders "
                     f"{others}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; returns the exit status (a RuntimeError if the contenders'
    outputs disagree)."""
    args = parse_args(argv)
    loop_seconds = LOOP_SECONDS[1] if args.quick else LOOP_SECONDS[0]
    configs = bench_train.make_configs(args.quick, "numpy", many_classes=False)
    started = time.perf_counter()
    with thread_limit(args.threads, args.contenders) as threads:
        rounds = f"{args.rounds} round{'s' * (args.rounds != 1)}"
        print(f"## predict_proba per call ({'quick' if args.quick else 'full'}): median of "
              f"{rounds} after a warm-up round, contenders in a new order each round\n")
        print(machine_line(threads, args.contenders) + "\n")
        print(table_header(args.contenders), flush=True)
        for name in args.configs:
            config = configs[name]
            X_train, y_train, X_test, _ = bench_train.DATA_MAKERS[config.data](config.n_train)
            if X_test.shape[0] != TEST_ROWS[name]:
                raise RuntimeError(f"{name}: {X_test.shape[0]} test rows, TEST_ROWS says "
                                   f"{TEST_ROWS[name]}")
            predictors, coefs = build_predictors(config, args.contenders, X_train, y_train)
            print(f"{name} ({config.net}): fitted one epoch on {X_train.shape[0]} rows",
                  file=sys.stderr, flush=True)
            for rows in args.rows:
                X_rows = np.ascontiguousarray(X_test[:rows], dtype=np.float32)
                label = f"{name}, {X_rows.shape[0]} row{'s' * (X_rows.shape[0] != 1)}"
                check_same_function(predictors, X_rows, label)
                timed = dict(predictors)
                if rows is None:
                    timed["floor"] = gemm_floor(coefs, X_rows.shape[0])
                calls = {contender: calls_for(predict, X_rows, loop_seconds)
                         for contender, predict in timed.items()}
                print(f"{label}: calls per loop " +
                      ", ".join(f"{contender} {count}" for contender, count in calls.items()),
                      file=sys.stderr, flush=True)
                times = measure(timed, X_rows, calls, args.rounds)
                print(table_row(name, X_rows.shape[0], times, args.contenders), flush=True)
    print("\n- us: median microseconds per call, NumPy rows in, probabilities out; "
          "mlpx vs X: median over rounds of X's time / mlpx's (>1: mlpx faster); "
          "mlpx x floor: mlpx's time / the three matrix products' alone (whole test set)"
          + ("; mlpx-sklearn vs sklearn: scikit-learn's time / the drop-in's."
             if "mlpx-sklearn" in args.contenders else "."))
    print(f"\ntotal {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
