"""The same mlpx fits from two source trees, paired: what a change did to fit times.

Give it a checkout of an older commit and this one, each with its C kernels built where
they should run:

    git worktree add /tmp/mlpx-base 3498632
    (cd /tmp/mlpx-base && python setup.py build_ext --inplace)
    python benchmarks/bench_checkouts.py /tmp/mlpx-base .
    python benchmarks/bench_checkouts.py /tmp/mlpx-base . --configs mnist --activations elu
    python benchmarks/bench_checkouts.py /tmp/mlpx-base . --activations relu --optimizers rmsprop
    python benchmarks/bench_checkouts.py /tmp/mlpx-base . --activations relu --validation 0.1
    MLPX_PURE_NUMPY=1 python benchmarks/bench_checkouts.py /tmp/mlpx-base .  # NumPy kernels

Every round starts one fresh process per tree, the order alternating from round to
round. Each process imports mlpx from its tree (and fails if it got another), then trains
every (config, hidden activation, optimizer) network of bench_train.py's configs and data
``--fits`` times (float32, shuffled; Adam by default, every optimizer at learning rate
1e-3; with ``--validation F``, the last fraction F of the rows as ``validation_data``,
evaluated every epoch) and reports its fastest fit after the first. The table gives the
median over the rounds for each tree and the median of the per-round ratios new / base
(below 1: the new tree is faster).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ACTIVATIONS = ("relu", "leaky_relu", "elu", "tanh", "sigmoid", "gelu", "softplus")
OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop", "adagrad")


def worker(tree: str, configs: list[str], activations: list[str], optimizers: list[str],
           fits: int, validation: float = 0.0) -> dict:
    """Fastest fit time per "config/activation/optimizer", mlpx imported from ``tree``."""
    sys.path.insert(0, tree)
    import mlpx

    if not Path(mlpx.__file__).resolve().is_relative_to(Path(tree).resolve()):
        raise SystemExit(f"mlpx came from {mlpx.__file__}, not from {tree}")
    sys.path.insert(1, str(HERE))
    import bench_train

    all_configs = bench_train.make_configs(False, "numpy")
    times = {}
    for name in configs:
        config = all_configs[name]
        X, y, _, _ = bench_train.DATA_MAKERS[config.data](config.n_train)
        n_val = round(validation * X.shape[0])
        validation_data = (X[X.shape[0] - n_val:], y[X.shape[0] - n_val:]) if n_val else None
        X, y = X[:X.shape[0] - n_val], y[:X.shape[0] - n_val]
        for activation in activations:
            for optimizer in optimizers:
                seconds = []
                for _ in range(fits):
                    model = mlpx.MLP(
                        config.layer_sizes,
                        activations=[activation] * len(config.hidden) + ["softmax"],
                        dtype="float32", seed=bench_train.SEED)
                    start = time.perf_counter()
                    model.fit(X, y, epochs=config.epochs, batch_size=config.batch_size,
                              optimizer=optimizer, learning_rate=bench_train.LEARNING_RATE,
                              shuffle=True, validation_data=validation_data)
                    seconds.append(time.perf_counter() - start)
                times[f"{name}/{activation}/{optimizer}"] = min(seconds[1:] or seconds)
    return times


def run_tree(tree: str, args: argparse.Namespace) -> dict:
    """Start a worker process for ``tree``; its fastest fit times."""
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", tree, args.configs,
               args.activations, args.optimizers, str(args.fits), str(args.validation)]
    env = {**os.environ, "PYTHONPATH": tree}
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"the worker for {tree} failed:\n{done.stderr}")
    return json.loads(done.stdout)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("base", help="the source tree to compare against (a checkout)")
    parser.add_argument("new", help="the source tree with the change")
    parser.add_argument("--configs", default="moons,digits,mnist")
    parser.add_argument("--activations", default=",".join(ACTIVATIONS))
    parser.add_argument("--optimizers", default="adam", help="default adam")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--fits", type=int, default=4, help="fits per process (default 4)")
    parser.add_argument("--validation", type=float, default=0.0,
                        help="fraction of the rows fit evaluates every epoch (default 0: none)")
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--worker"]:  # --worker TREE CONFIGS ACTIVATIONS OPTIMIZERS FITS VALIDATION
        tree, configs, activations, optimizers, fits, validation = argv[1:]
        print(json.dumps(worker(tree, configs.split(","), activations.split(","),
                                optimizers.split(","), int(fits), float(validation))))
        return 0
    args = parser.parse_args(argv)
    sys.path.insert(0, str(HERE))
    import bench_train

    known = bench_train.make_configs(False, "numpy")
    for label, values, choices in (("config", args.configs, known),
                                   ("activation", args.activations, ACTIVATIONS),
                                   ("optimizer", args.optimizers, OPTIMIZERS)):
        unknown = [value for value in values.split(",") if value not in choices]
        if unknown:
            parser.error(f"unknown {label}(s) {unknown}; choose from {sorted(choices)}")
    for tree in (args.base, args.new):
        if not (Path(tree) / "mlpx" / "__init__.py").is_file():
            parser.error(f"{tree} is not an mlpx source tree (no mlpx/__init__.py)")
    if args.rounds < 1 or args.fits < 1:
        parser.error("--rounds and --fits must be at least 1")
    if not 0.0 <= args.validation < 1.0:
        parser.error(f"--validation {args.validation}: give a fraction in [0, 1), e.g. 0.1")
    times = {"base": [], "new": []}
    for round_index in range(args.rounds):
        order = ("base", "new") if round_index % 2 == 0 else ("new", "base")
        for which in order:
            times[which].append(run_tree(getattr(args, which), args))
    kernels = "NumPy kernels (MLPX_PURE_NUMPY)" if os.environ.get("MLPX_PURE_NUMPY") else \
        "compiled kernels where built"
    print(f"## {args.new} against {args.base}, {kernels} (medians of {args.rounds} rounds)\n")
    print("| config | hidden | optimizer | base s | new s | new / base (paired) |")
    print("| --- | --- | --- | ---: | ---: | ---: |")
    for key in times["base"][0]:
        base = [result[key] for result in times["base"]]
        new = [result[key] for result in times["new"]]
        ratio = statistics.median(n / b for n, b in zip(new, base))
        config, activation, optimizer = key.split("/")
        print(f"| {config} | {activation} | {optimizer} | {statistics.median(base):.3g} | "
              f"{statistics.median(new):.3g} | {ratio:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
