"""The compiled kernels against the NumPy ones, inside whole fits, in one process.

``mlpx._kernels`` runs each optimizer's step (with an L2 penalty's gradient, if any) as one
pass over the parameters, and the hidden layers' activations (relu, leaky_relu, elu, tanh,
sigmoid, gelu, softplus) as one pass each way, around NumPy's own ``expm1``, ``tanh``,
``exp`` or ``log1p`` where they need one; without it the fast path runs the NumPy kernels
of ``mlpx/_numpy_optim.py`` (two to nine passes, and the penalty in three more) and
``mlpx/_numpy_fastpath.py`` (one to thirteen passes each way). This script times the same
``MLP.fit`` both ways, only one kind of kernel switched and every other compiled kernel on
in both, on bench_train.py's configs and data:

- **optimizers**: relu networks trained with Adam, SGD, SGD with Nesterov momentum,
  RMSprop and Adagrad, with and without scikit-learn's default L2 penalty (``alpha=1e-4``
  per sample);
- **activations**: networks whose hidden layers are relu, leaky_relu, elu, tanh, sigmoid,
  gelu or softplus, trained with Adam.

The two fits of a pair give the same weights bit for bit (checked and printed; the exit
status is 1 if they do not), so the ratio is the kernels' alone. Rounds alternate which
variant goes first; the tables give medians and the median of the per-round ratios.

    python benchmarks/bench_kernels.py                         # 7 rounds, about 5 minutes
    python benchmarks/bench_kernels.py --quick                 # 2 rounds, quick configs
    python benchmarks/bench_kernels.py --configs mnist --tables activations
    python benchmarks/bench_kernels.py --optimizers nesterov --activations tanh
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_train  # noqa: E402  (the configs and data of the main benchmark)

import mlpx  # noqa: E402
from mlpx import _compiled, _numpy_fastpath, _numpy_optim, optim  # noqa: E402

OPTIMIZERS: dict[str, Callable[[], optim.Optimizer]] = {
    "adam": lambda: optim.Adam(learning_rate=1e-3),
    "sgd": lambda: optim.SGD(learning_rate=1e-2),
    "nesterov": lambda: optim.SGD(learning_rate=1e-2, momentum=0.9, nesterov=True),
    "rmsprop": lambda: optim.RMSprop(learning_rate=1e-3),
    "adagrad": lambda: optim.Adagrad(learning_rate=1e-2),
}
ALPHAS = (0.0, bench_train.L2_ALPHA)
ACTIVATIONS = tuple(_numpy_fastpath._COMPILED_ACTIVATIONS)
TABLES = ("optimizers", "activations")


def numpy_flat_step(optimizer, state, param, grad):
    """``flat_step`` as without the compiled optimizer steps (the NumPy kernels)."""
    kernels, _compiled.kernels = _compiled.kernels, None
    try:
        return _numpy_optim.flat_step(optimizer, state, param, grad)
    finally:
        _compiled.kernels = kernels


@contextmanager
def numpy_kernels(kind: str) -> Iterator[None]:
    """The NumPy kernels of ``kind`` ("optimizers" or "activations") for the fits inside."""
    name, replacement = {"optimizers": ("flat_step", numpy_flat_step),
                         "activations": ("_COMPILED_ACTIVATIONS", {})}[kind]
    original = getattr(_numpy_fastpath, name)
    setattr(_numpy_fastpath, name, replacement)
    try:
        yield
    finally:
        setattr(_numpy_fastpath, name, original)


def timed_fit(config: bench_train.Config, data: tuple, case: dict,
              compiled: bool) -> tuple[float, list[np.ndarray]]:
    """Seconds of one fit of ``case`` (kind, optimizer, alpha, activation), and its weights."""
    X, y = data
    model = mlpx.MLP(config.layer_sizes,
                     activations=[case["activation"]] * len(config.hidden) + ["softmax"],
                     dtype="float32", seed=bench_train.SEED, alpha=case["alpha"],
                     alpha_per_sample=True)
    with nullcontext() if compiled else numpy_kernels(case["kind"]):
        start = time.perf_counter()
        model.fit(X, y, epochs=config.epochs, batch_size=config.batch_size,
                  optimizer=OPTIMIZERS[case["optimizer"]](), shuffle=True)
        seconds = time.perf_counter() - start
    return seconds, [np.asarray(p).copy() for p in model.params]


def measure(config: bench_train.Config, data: tuple, case: dict, rounds: int) -> dict:
    """Interleaved paired fits; medians, the median per-round ratio, bitwise agreement."""
    times = {True: [], False: []}
    same = True
    timed_fit(config, data, case, compiled=True)  # warm-up
    for round_index in range(rounds):
        order = (True, False) if round_index % 2 == 0 else (False, True)
        weights = {}
        for compiled in order:
            seconds, weights[compiled] = timed_fit(config, data, case, compiled)
            times[compiled].append(seconds)
        same = same and all(np.array_equal(a.view(np.uint8), b.view(np.uint8))  # bits
                            for a, b in zip(weights[True], weights[False]))
    ratios = [c / n for c, n in zip(times[True], times[False])]
    return {"compiled": statistics.median(times[True]), "numpy": statistics.median(times[False]),
            "ratio": statistics.median(ratios), "same": same}


def cases(kind: str, optimizers: list[str], activations: list[str]) -> list[dict]:
    """The rows of one table."""
    if kind == "optimizers":
        return [{"kind": kind, "optimizer": optimizer, "alpha": alpha, "activation": "relu"}
                for optimizer in optimizers for alpha in ALPHAS]
    return [{"kind": kind, "optimizer": "adam", "alpha": 0.0, "activation": activation}
            for activation in activations]


def _names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="quick configs, 2 rounds")
    parser.add_argument("--rounds", type=int, default=None, help="paired rounds (default 7)")
    parser.add_argument("--configs", default="moons,digits,mnist")
    parser.add_argument("--tables", default=",".join(TABLES))
    parser.add_argument("--optimizers", default=",".join(OPTIMIZERS))
    parser.add_argument("--activations", default=",".join(ACTIVATIONS))
    args = parser.parse_args(argv)
    if _compiled.kernels is None:
        print("mlpx._kernels is not built here (or MLPX_PURE_NUMPY is set): nothing to compare",
              file=sys.stderr)
        return 2
    configs = bench_train.make_configs(args.quick, "numpy")
    names, tables = _names(args.configs), _names(args.tables)
    optimizers, activations = _names(args.optimizers), _names(args.activations)
    for label, values, known in (("config", names, configs), ("table", tables, TABLES),
                                 ("optimizer", optimizers, OPTIMIZERS),
                                 ("activation", activations, ACTIVATIONS)):
        unknown = [value for value in values if value not in known]
        if unknown:
            parser.error(f"unknown {label}(s) {unknown}; choose from {sorted(known)}")
    rounds = args.rounds if args.rounds is not None else (2 if args.quick else 7)
    if rounds < 1:
        parser.error(f"--rounds {rounds}: give at least 1 paired round")
    data = {name: bench_train.DATA_MAKERS[configs[name].data](configs[name].n_train)[:2]
            for name in names}
    all_same = True
    for kind in tables:
        print(f"## Compiled {kind[:-1]} kernels against the NumPy ones, in whole fits "
              f"(median of {rounds} paired rounds, one process)\n")
        print("| config | optimizer | alpha | hidden | NumPy kernels s | compiled s | "
              "compiled / NumPy (paired) | same weights |")
        print("| --- | --- | ---: | --- | ---: | ---: | ---: | --- |")
        for name in names:
            for case in cases(kind, optimizers, activations):
                result = measure(configs[name], data[name], case, rounds)
                print(f"| {name} | {case['optimizer']} | {case['alpha']:g} | "
                      f"{case['activation']} | {result['numpy']:.3g} | "
                      f"{result['compiled']:.3g} | {result['ratio']:.3f} | "
                      f"{'yes' if result['same'] else 'NO'} |", flush=True)
                all_same = all_same and result["same"]
        print()
    if not all_same:
        print("The compiled and NumPy kernels trained different weights (NO above): a bug.",
              file=sys.stderr)
    return 0 if all_same else 1


if __name__ == "__main__":
    sys.exit(main())
