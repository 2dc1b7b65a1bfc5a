"""The compiled optimizer steps against the NumPy ones, inside whole fits, in one process.

``mlpx._kernels`` runs Adam's and SGD's steps (with an L2 penalty's gradient, if any) as one
pass over the parameters; without it the fast path runs the NumPy kernels of
``mlpx/_numpy_optim.py`` (two to nine passes, and the penalty in three more). This script
times the same ``MLP.fit`` both ways, every other kernel (relu, softmax gradient, gather)
compiled in both, on bench_train.py's configs and data, for Adam, SGD and SGD with Nesterov
momentum, with and without scikit-learn's default L2 penalty (``alpha=1e-4`` per sample).
The two fits of a pair give the same weights bit for bit (checked and printed; the exit
status is 1 if they do not), so the ratio is the kernels' alone. Rounds alternate which
variant goes first; the table gives medians and the median of the per-round ratios.

    python benchmarks/bench_optimizer_kernels.py                  # 7 rounds, about 3 minutes
    python benchmarks/bench_optimizer_kernels.py --quick          # 2 rounds, quick configs
    python benchmarks/bench_optimizer_kernels.py --configs mnist --optimizers nesterov
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
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
}
ALPHAS = (0.0, bench_train.L2_ALPHA)


def numpy_flat_step(optimizer, state, param, grad):
    """``flat_step`` as without the compiled optimizer steps (the NumPy kernels)."""
    if type(optimizer) is optim.SGD:
        kind = _numpy_optim._MomentumStep if optimizer.momentum else _numpy_optim._SGDStep
        return kind(optimizer, state, param, grad)
    if type(optimizer) in (optim.Adam, optim.AdamW):
        return _numpy_optim._AdamStep(optimizer, state, param, grad)
    return None


def timed_fit(config: bench_train.Config, data: tuple, optimizer: str, alpha: float,
              compiled: bool) -> tuple[float, list[np.ndarray]]:
    """Seconds of one fit, and its trained weights."""
    X, y = data
    model = mlpx.MLP(config.layer_sizes, activations=["relu"] * len(config.hidden) + ["softmax"],
                     dtype="float32", seed=bench_train.SEED, alpha=alpha, alpha_per_sample=True)
    original = _numpy_fastpath.flat_step
    _numpy_fastpath.flat_step = original if compiled else numpy_flat_step
    try:
        start = time.perf_counter()
        model.fit(X, y, epochs=config.epochs, batch_size=config.batch_size,
                  optimizer=OPTIMIZERS[optimizer](), shuffle=True)
        seconds = time.perf_counter() - start
    finally:
        _numpy_fastpath.flat_step = original
    return seconds, [np.asarray(p).copy() for p in model.params]


def measure(config: bench_train.Config, data: tuple, optimizer: str, alpha: float,
            rounds: int) -> dict:
    """Interleaved paired fits; medians, the median per-round ratio, bitwise agreement."""
    times = {True: [], False: []}
    same = True
    timed_fit(config, data, optimizer, alpha, compiled=True)  # warm-up
    for round_index in range(rounds):
        order = (True, False) if round_index % 2 == 0 else (False, True)
        weights = {}
        for compiled in order:
            seconds, weights[compiled] = timed_fit(config, data, optimizer, alpha, compiled)
            times[compiled].append(seconds)
        same = same and all(np.array_equal(a, b) for a, b in zip(weights[True], weights[False]))
    ratios = [c / n for c, n in zip(times[True], times[False])]
    return {"compiled": statistics.median(times[True]), "numpy": statistics.median(times[False]),
            "ratio": statistics.median(ratios), "same": same}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="quick configs, 2 rounds")
    parser.add_argument("--rounds", type=int, default=None, help="paired rounds (default 7)")
    parser.add_argument("--configs", default="moons,digits,mnist")
    parser.add_argument("--optimizers", default=",".join(OPTIMIZERS))
    args = parser.parse_args(argv)
    if _compiled.kernels is None:
        print("mlpx._kernels is not built here (or MLPX_PURE_NUMPY is set): nothing to compare",
              file=sys.stderr)
        return 2
    configs = bench_train.make_configs(args.quick, "numpy")
    names = [name.strip() for name in args.configs.split(",")]
    optimizers = [name.strip() for name in args.optimizers.split(",")]
    for name, values in (("config", [n for n in names if n not in configs]),
                         ("optimizer", [o for o in optimizers if o not in OPTIMIZERS])):
        if values:
            parser.error(f"unknown {name}(s) {values}; choose from "
                         f"{sorted(configs) if name == 'config' else sorted(OPTIMIZERS)}")
    rounds = args.rounds if args.rounds is not None else (2 if args.quick else 7)
    if rounds < 1:
        parser.error(f"--rounds {rounds}: give at least 1 paired round")
    print(f"## Compiled optimizer steps against the NumPy kernels, in whole fits "
          f"(median of {rounds} paired rounds, one process)\n")
    print("| config | optimizer | alpha | NumPy kernels s | compiled s | compiled / NumPy "
          "(paired) | same weights |")
    print("| --- | --- | ---: | ---: | ---: | ---: | --- |")
    all_same = True
    for name in names:
        config = configs[name]
        X_train, y_train, _, _ = bench_train.DATA_MAKERS[config.data](config.n_train)
        for optimizer in optimizers:
            for alpha in ALPHAS:
                result = measure(config, (X_train, y_train), optimizer, alpha, rounds)
                print(f"| {name} | {optimizer} | {alpha:g} | {result['numpy']:.3g} | "
                      f"{result['compiled']:.3g} | {result['ratio']:.3f} | "
                      f"{'yes' if result['same'] else 'NO'} |", flush=True)
                all_same = all_same and result["same"]
    if not all_same:
        print("\nThe compiled and NumPy steps trained different weights (NO above): a bug.",
              file=sys.stderr)
    return 0 if all_same else 1


if __name__ == "__main__":
    sys.exit(main())
