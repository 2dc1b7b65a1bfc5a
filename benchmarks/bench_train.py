"""Training benchmark: a complete fit as a multiple of its GEMM floor, mlpx vs sklearn and torch.

Every contender trains the same float32 network (relu hidden layers, or another of mlpx's
hidden activations with ``--activation``, of which scikit-learn has only tanh and sigmoid;
softmax output with categorical cross-entropy; Adam, lr 1e-3, betas (0.9, 0.999), eps 1e-8,
or another optimizer with ``--optimizer`` (``OPTIMIZERS``); no L2, shuffled every epoch) on
the same NumPy data. The "GEMM floor" runs only the matrix
products those training steps need (forward ``X @ W`` per layer, ``dW = X^T @ dZ`` per
layer and ``dX = dZ @ W^T`` for every layer but the first) with ``matmul(out=)`` on
preallocated arrays, for exactly the steps the fit takes (full batches plus the final
partial one, every epoch). Its time is the bar every contender is measured against.

Each (contender, config, repeat) runs in a fresh subprocess that imports only its own
library, reads the data the parent saved as ``.npy`` files, times the whole fit call from
NumPy arrays, and reports seconds, accuracy and peak RSS as JSON. Repeats are interleaved
round-robin after a discarded warm-up round; tables give medians.

    python benchmarks/bench_train.py --quick                 # smoke run, < 3 minutes (nox -s bench)
    python benchmarks/bench_train.py                         # 7 repeats, about 10 minutes
    python benchmarks/bench_train.py --configs moons --repeats 3
    python benchmarks/bench_train.py --configs classes --no-scaling  # 1000 classes
    python benchmarks/bench_train.py --threads 1 --json timings.json
    python benchmarks/bench_train.py --contenders floor,mlpx,torch-foreach
    python benchmarks/bench_train.py --contenders floor,mlpx,mlpx-numpy  # the C kernel's gain
    python benchmarks/bench_train.py --contenders floor,mlpx,mlpx-bf16,torch-bf16  # bfloat16
    python benchmarks/bench_train.py --contenders floor,mlpx,mlpx-l2,sklearn-l2  # alpha=1e-4
    python benchmarks/bench_train.py --contenders mlpx,mlpx-glorot,sklearn  # initialisers
    python benchmarks/bench_train.py --contenders floor,sklearn,mlpx-sklearn  # drop-in estimator
    python benchmarks/bench_train.py --activation tanh --no-scaling   # tanh hidden layers
    python benchmarks/bench_train.py --activation gelu --no-scaling   # no scikit-learn
    python benchmarks/bench_train.py --optimizer sgd --no-scaling     # Nesterov SGD, lr 1e-2
    python benchmarks/bench_train.py --optimizer rmsprop --no-scaling # no scikit-learn
    python benchmarks/bench_train.py --backend cupy          # GPU: cuBLAS floor, adds "large"
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import gc
import importlib.metadata
import importlib.util
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # benchmark the checkout this script sits in
    sys.path.insert(0, str(ROOT))

SEED = 0
LEARNING_RATE = 1e-3
BETAS = (0.9, 0.999)
EPSILON = 1e-8
CPU_CONTENDERS = ("floor", "mlpx", "sklearn", "torch-eager", "torch-fused")
GPU_CONTENDERS = ("floor", "mlpx", "torch-eager", "torch-fused")
# only when asked for with --contenders. The bf16 pair multiplies in bfloat16 with float32
# weights: mlpx on its torch backend with matmul_precision="bfloat16", and torch's fused
# Adam under torch.autocast(dtype=bfloat16). mlpx-torch is mlpx's torch backend in float32.
# The l2 pair trains with scikit-learn's default L2 penalty, alpha=1e-4 over the batch size
# (mlpx: alpha_per_sample=True), the rest of their fit as mlpx's and sklearn's.
# mlpx-sklearn is the sklearn contender's call with mlpx.sklearn.MLPClassifier, the drop-in.
# mlpx-glorot starts from scikit-learn's initialiser (Glorot uniform) instead of mlpx's
# default (He normal for relu-like layers): the accuracy columns' difference is the start's.
OPTIONAL_CONTENDERS = ("torch-foreach", "mlpx-numpy", "mlpx-torch", "mlpx-bf16", "torch-bf16",
                       "mlpx-l2", "sklearn-l2", "mlpx-sklearn", "mlpx-glorot")
LIBRARY = {"mlpx": "mlpx", "mlpx-numpy": "mlpx", "mlpx-l2": "mlpx", "mlpx-glorot": "mlpx",
           "sklearn": "sklearn",
           "sklearn-l2": "sklearn", "mlpx-sklearn": "sklearn", "torch-eager": "torch",
           "torch-fused": "torch", "torch-foreach": "torch", "torch-bf16": "torch"}
#: scikit-learn's default L2 coefficient (MLPClassifier's alpha), for the *-l2 contenders
L2_ALPHA = 1e-4
# mlpx contenders that train on mlpx's torch backend (on CUDA in the CuPy mode)
#: The hidden activations, by mlpx's names: scikit-learn's names for them, and torch's
#: modules with mlpx's parameters (its gelu is the tanh approximation).
SKLEARN_ACTIVATIONS = {"relu": "relu", "tanh": "tanh", "sigmoid": "logistic"}
TORCH_ACTIVATIONS = {"relu": ("ReLU", {}), "tanh": ("Tanh", {}), "sigmoid": ("Sigmoid", {}),
                     "leaky_relu": ("LeakyReLU", {"negative_slope": 0.01}),
                     "elu": ("ELU", {"alpha": 1.0}),
                     "gelu": ("GELU", {"approximate": "tanh"}), "softplus": ("Softplus", {})}
MLPX_ON_TORCH = {"mlpx-torch": "highest", "mlpx-bf16": "bfloat16"}


@dataclass(frozen=True)
class OptimizerSetting:
    """One update rule as each library spells it (the same numbers in all three).

    Attributes
    ----------
    learning_rate : float
    mlpx : (str, dict)
        The ``mlpx.optim`` class and its options.
    sklearn : (str, dict) or None
        MLPClassifier's ``solver`` and its options; None where it has no such solver.
    torch : (str, dict)
        The ``torch.optim`` class and its options besides ``lr``.
    """

    learning_rate: float
    mlpx: tuple[str, dict[str, Any]]
    sklearn: tuple[str, dict[str, Any]] | None
    torch: tuple[str, dict[str, Any]]


#: --optimizer's choices. SGD is scikit-learn's solver="sgd" default, Nesterov momentum
#: 0.9 (its "v = mu v - lr g" form takes the same steps as torch's and mlpx's "v = mu v + g"
#: at a constant rate); torch's RMSprop needs alpha=0.9 (its default is 0.99) and its
#: Adagrad a zero initial accumulator and eps 1e-10 to be mlpx's. scikit-learn has neither.
OPTIMIZERS = {
    "adam": OptimizerSetting(
        LEARNING_RATE, ("Adam", {"beta1": BETAS[0], "beta2": BETAS[1], "epsilon": EPSILON}),
        ("adam", {"beta_1": BETAS[0], "beta_2": BETAS[1], "epsilon": EPSILON}),
        ("Adam", {"betas": BETAS, "eps": EPSILON})),
    "sgd": OptimizerSetting(
        1e-2, ("SGD", {"momentum": 0.9, "nesterov": True}),
        ("sgd", {"momentum": 0.9, "nesterovs_momentum": True, "learning_rate": "constant"}),
        ("SGD", {"momentum": 0.9, "nesterov": True})),
    "rmsprop": OptimizerSetting(
        LEARNING_RATE, ("RMSprop", {"rho": 0.9, "epsilon": EPSILON}), None,
        ("RMSprop", {"alpha": 0.9, "eps": EPSILON})),
    "adagrad": OptimizerSetting(
        1e-2, ("Adagrad", {"epsilon": 1e-10}), None,
        ("Adagrad", {"eps": 1e-10, "initial_accumulator_value": 0.0})),
}
WATCHED_MODULES = ("mlpx", "sklearn", "torch", "cupy")
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                    "BLIS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS")
NOISY_SPREAD = 1.5


# --------------------------------------------------------------------------- configs


@dataclass(frozen=True)
class Config:
    """One training problem, trained identically by every contender.

    Attributes
    ----------
    name : str
        Label in the report.
    data : {"moons", "digits", "mnist", "classes", "large"}
        Which generator makes the data.
    n_features : int
    hidden : tuple of int
        Hidden layer widths.
    n_classes : int
        Softmax outputs.
    batch_size : int
    n_train : int
        Training samples.
    epochs : int
    accuracy_on : {"test", "train"}
        ``"train"`` where all samples are trained on (digits).
    test_note : str
        Where the accuracy comes from, in words.
    hidden_activation : {"relu", "tanh", "sigmoid", "leaky_relu", "elu", "gelu", "softplus"}
        Every hidden layer's (scikit-learn calls sigmoid "logistic" and has only relu, tanh
        and sigmoid).
    optimizer : {"adam", "sgd", "rmsprop", "adagrad"}
        A key of ``OPTIMIZERS``.
    """

    name: str
    data: str
    n_features: int
    hidden: tuple[int, ...]
    n_classes: int
    batch_size: int
    n_train: int
    epochs: int
    accuracy_on: str = "test"
    test_note: str = ""
    hidden_activation: str = "relu"
    optimizer: str = "adam"

    @property
    def layer_sizes(self) -> list[int]:
        """Units per layer, inputs first, as ``mlpx.MLP`` takes them."""
        return [self.n_features, *self.hidden, self.n_classes]

    @property
    def net(self) -> str:
        """The layer sizes joined by dashes, e.g. ``2-16-8-2``."""
        return "-".join(map(str, self.layer_sizes))

    def epoch_batches(self) -> list[int]:
        """Sizes of one epoch's batches, in order: the full ones, then the partial one."""
        n_full, rest = divmod(self.n_train, self.batch_size)
        return [self.batch_size] * n_full + ([rest] if rest else [])

    @property
    def steps(self) -> int:
        """Optimizer steps of the whole fit."""
        return self.epochs * len(self.epoch_batches())

    def step_flops(self, batch: int) -> int:
        """Floating-point operations of one step's matrix products at ``batch`` rows."""
        sizes = self.layer_sizes
        products = [fan_in * fan_out for fan_in, fan_out in zip(sizes[:-1], sizes[1:])]
        # forward and dW for every layer, dX for every layer but the first; 2 flops per MAC
        return 2 * batch * (2 * sum(products) + sum(products[1:]))

    def gemm_flops(self) -> int:
        """Floating-point operations of every matrix product of the whole fit."""
        return self.epochs * sum(self.step_flops(batch) for batch in self.epoch_batches())

    def describe(self) -> str:
        """One line: network, batch cut, samples, epochs, steps and GEMM work."""
        batches = self.epoch_batches()
        cut = f"{batches.count(self.batch_size)} x {self.batch_size}"
        if batches[-1] != self.batch_size:
            cut += f" + 1 x {batches[-1]}"
        epochs = f"{self.epochs} epoch{'s' * (self.epochs != 1)}"
        activation = "" if self.hidden_activation == "relu" else f" {self.hidden_activation}"
        if self.optimizer != "adam":
            activation += f", {self.optimizer} lr {OPTIMIZERS[self.optimizer].learning_rate:g}"
        return (f"{self.net}{activation}, batch {self.batch_size}, {self.n_train} train samples, "
                f"{epochs} ({self.steps} steps: {cut} per epoch), "
                f"{self.gemm_flops() / 1e9:.3g} GFLOP of GEMMs; {self.test_note}")


def make_configs(quick: bool, backend: str, hidden_activation: str = "relu",
                 optimizer: str = "adam", many_classes: bool = True) -> dict[str, Config]:
    """The benchmark's configs by name; ``quick`` trains fewer epochs and samples.

    Parameters
    ----------
    quick : bool
    backend : {"numpy", "cupy"}
        ``"cupy"`` adds the ``large`` config.
    many_classes : bool
        Include ``classes`` (1000 classes; run only when named in ``--configs``).
    hidden_activation : {"relu", "tanh", "sigmoid", "leaky_relu", "elu", "gelu", "softplus"}
    optimizer : {"adam", "sgd", "rmsprop", "adagrad"}

    Returns
    -------
    dict of str -> Config
    """
    configs = [
        Config("moons", "moons", 2, (16, 8), 2, 32, 1000, 20 if quick else 200,
               test_note="test: 1000 held-out samples"),
        Config("digits", "digits", 64, (128, 64), 10, 64, 1797, 5 if quick else 50,
               accuracy_on="train",
               test_note="accuracy on the training set (all 1797 samples are trained on)"),
        Config("mnist", "mnist", 784, (512, 256), 10, 256, 5000 if quick else 20_000,
               1 if quick else 3, test_note="test: 5000 held-out samples"),
    ]
    if many_classes:
        configs.append(Config("classes", "classes", 256, (512,), 1000, 128,
                              5000 if quick else 20_000, 1 if quick else 2,
                              test_note="test: 5000 held-out samples"))
    if backend == "cupy":
        configs.append(Config("large", "large", 4096, (4096, 4096), 10, 4096,
                              16_384 if quick else 65_536, 1 if quick else 2,
                              test_note="test: 8192 held-out samples"))
    return {config.name: dataclasses.replace(config, hidden_activation=hidden_activation,
                                             optimizer=optimizer)
            for config in configs}


def make_scaling_configs(quick: bool) -> list[Config]:
    """mnist for 1 epoch: half the samples, all of them, and all of them at double width.

    Returns
    -------
    list of Config
        Three runs; the first two differ only in samples, the last two only in width.
    """
    n_half, n_all = (2500, 5000) if quick else (10_000, 20_000)
    base = Config("", "mnist", 784, (512, 256), 10, 256, n_all, 1)
    return [
        dataclasses.replace(base, name=f"{n_half} samples, 512-256", n_train=n_half),
        dataclasses.replace(base, name=f"{n_all} samples, 512-256"),
        dataclasses.replace(base, name=f"{n_all} samples, 1024-512", hidden=(1024, 512)),
    ]


# --------------------------------------------------------------------------- data


def _standardise(X_train: np.ndarray, X_test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Scale both sets by the training mean and standard deviation, as float32."""
    mean = X_train.mean(axis=0)
    std = X_train.std(axis=0)
    std[std == 0.0] = 1.0
    return ((X_train - mean) / std).astype(np.float32), ((X_test - mean) / std).astype(np.float32)


def _split_standardised(X: np.ndarray, y: np.ndarray, n_train: int,
                        n_test: int) -> tuple[np.ndarray, ...]:
    """The first ``n_train`` rows for training and the last ``n_test`` for testing."""
    X = np.asarray(X, dtype=np.float64)
    X_train, X_test = _standardise(X[:n_train], X[X.shape[0] - n_test:])
    y = np.asarray(y, dtype=np.int64)
    return X_train, y[:n_train], X_test, y[y.shape[0] - n_test:]


@functools.cache
def _mnist_pool() -> tuple[np.ndarray, np.ndarray]:
    """25 000 rows of a 784-feature, 10-class synthetic problem (20 000 train + 5000 test).

    100 informative features, one Gaussian cluster per class, ``class_sep=2``: learnable
    to about 0.9 test accuracy in 3 epochs, like MNIST (the default ``class_sep=1`` with
    two clusters per class overfits to about 0.35).
    """
    from sklearn.datasets import make_classification

    return make_classification(n_samples=25_000, n_features=784, n_informative=100,
                               n_classes=10, n_clusters_per_class=1, class_sep=2.0,
                               random_state=SEED)


def moons_data(n_train: int) -> tuple[np.ndarray, ...]:
    """mlpx's two moons with noise 0.2: ``n_train`` for training, 1000 more for testing."""
    from mlpx.datasets import make_moons

    X, y = make_moons(n_samples=n_train + 1000, noise=0.2, seed=SEED)
    return _split_standardised(np.asarray(X), np.asarray(y), n_train, 1000)


def digits_data(n_train: int) -> tuple[np.ndarray, ...]:
    """scikit-learn's bundled 8x8 digits, standardised; the test set is the training set."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    X_train, y_train, _, _ = _split_standardised(digits.data, digits.target, n_train, 0)
    return X_train, y_train, X_train, y_train


def mnist_data(n_train: int) -> tuple[np.ndarray, ...]:
    """MNIST-sized synthetic data: the first ``n_train`` of 20 000 rows, 5000 test rows."""
    X, y = _mnist_pool()
    if n_train > X.shape[0] - 5000:
        raise ValueError(f"the mnist pool has 20000 training rows, not {n_train}")
    return _split_standardised(X, y, n_train, 5000)


def classes_data(n_train: int, n_classes: int = 1000, n_features: int = 256,
                 n_test: int = 5000) -> tuple[np.ndarray, ...]:
    """One Gaussian cluster per class (unit centres, noise 2): learnable to about 0.87 test
    accuracy in 2 epochs of the ``classes`` config; standardised."""
    rng = np.random.default_rng(SEED)
    centres = rng.standard_normal((n_classes, n_features))
    y = rng.integers(0, n_classes, n_train + n_test)
    X = centres[y] + 2.0 * rng.standard_normal((n_train + n_test, n_features))
    return _split_standardised(X, y, n_train, n_test)


def large_data(n_train: int, n_features: int = 4096, n_classes: int = 10,
               n_test: int = 8192) -> tuple[np.ndarray, ...]:
    """Standard normal features labelled by a noisy random linear teacher, float32."""
    rng = np.random.default_rng(SEED)
    X = rng.standard_normal((n_train + n_test, n_features), dtype=np.float32)
    teacher = rng.standard_normal((n_features, n_classes), dtype=np.float32)
    logits = X @ teacher / np.float32(np.sqrt(n_features))
    y = np.argmax(logits + 0.3 * rng.standard_normal(logits.shape, dtype=np.float32), axis=1)
    return X[:n_train], y[:n_train].astype(np.int64), X[n_train:], y[n_train:].astype(np.int64)


DATA_MAKERS: dict[str, Callable[[int], tuple[np.ndarray, ...]]] = {
    "moons": moons_data, "digits": digits_data, "mnist": mnist_data, "classes": classes_data,
    "large": large_data,
}
DATA_FILES = ("X_train", "y_train", "X_test", "y_test")


def write_data(config: Config, folder: Path) -> Path:
    """Save the config's data as ``.npy`` files under ``folder`` (once per data and size).

    Returns
    -------
    pathlib.Path
        The folder holding ``X_train.npy``, ``y_train.npy``, ``X_test.npy``, ``y_test.npy``.
    """
    target = folder / f"{config.data}-{config.n_train}"
    if not target.exists():
        target.mkdir(parents=True)
        for name, array in zip(DATA_FILES, DATA_MAKERS[config.data](config.n_train)):
            np.save(target / f"{name}.npy", array)
    return target


# --------------------------------------------------------------------------- worker side


def load_data(data_dir: str) -> dict[str, np.ndarray]:
    """The four arrays the parent saved, as NumPy (float32 X, int64 y)."""
    return {name: np.load(Path(data_dir) / f"{name}.npy") for name in DATA_FILES}


def timed(fit: Callable[[], object], synchronize: Callable[[], None]) -> float:
    """Seconds of ``fit()`` up to ``synchronize()`` returning, after a garbage collection."""
    gc.collect()
    start = time.perf_counter()
    fit()
    synchronize()
    return time.perf_counter() - start


def _no_sync() -> None:
    """Nothing to wait for on the CPU."""


def _cupy_sync() -> Callable[[], None]:
    """A function that waits for the current CUDA device's queued work (CuPy)."""
    import cupy

    return cupy.cuda.Device().synchronize


class GemmFloor:
    """Preallocated operands of one training step's matrix products at one batch size.

    Parameters
    ----------
    xp : module
        ``numpy`` or ``cupy``.
    sizes : list of int
        Layer sizes, inputs first.
    X_first : numpy.ndarray
        The first ``batch`` training rows, the first layer's input.
    rng : numpy.random.Generator
    """

    def __init__(self, xp: Any, sizes: list[int], X_first: np.ndarray,
                 rng: np.random.Generator) -> None:
        batch = X_first.shape[0]

        def array(shape: tuple[int, ...], scale: float = 1.0) -> Any:
            host = (rng.standard_normal(shape) * scale).astype(np.float32)
            return xp.asarray(host)

        pairs = list(zip(sizes[:-1], sizes[1:]))
        self.xp = xp
        self.weights = [array((n_in, n_out), 1.0 / np.sqrt(n_in)) for n_in, n_out in pairs]
        self.weight_grads = [xp.empty((n_in, n_out), dtype=xp.float32) for n_in, n_out in pairs]
        self.inputs = [xp.asarray(np.ascontiguousarray(X_first, dtype=np.float32))]
        self.inputs += [xp.empty((batch, n_out), dtype=xp.float32) for _, n_out in pairs]
        self.output_grads = [array((batch, n_out), 1.0 / batch) for _, n_out in pairs]

    def step(self) -> None:
        """Forward ``X @ W``, then ``dW = X^T @ dZ`` and (but for layer 0) ``dX = dZ @ W^T``."""
        matmul = self.xp.matmul
        for layer, W in enumerate(self.weights):
            matmul(self.inputs[layer], W, out=self.inputs[layer + 1])
        for layer in reversed(range(len(self.weights))):
            matmul(self.inputs[layer].T, self.output_grads[layer], out=self.weight_grads[layer])
            if layer > 0:
                matmul(self.output_grads[layer], self.weights[layer].T,
                       out=self.output_grads[layer - 1])


def run_floor(task: dict[str, Any], data: dict[str, np.ndarray]) -> dict[str, Any]:
    """Time the GEMM floor: every step's products, epoch by epoch, as the fit cuts them.

    One untimed step per batch size first (thread pool or cuBLAS start-up).
    """
    if task["backend"] == "cupy":
        import cupy as xp

        synchronize = _cupy_sync()
    else:
        xp, synchronize = np, _no_sync
    config = Config(**task["config"])
    rng = np.random.default_rng(SEED)
    batches = config.epoch_batches()
    floors = {size: GemmFloor(xp, config.layer_sizes, data["X_train"][:size], rng)
              for size in set(batches)}
    for floor in floors.values():
        floor.step()
    steps = [floors[size].step for size in batches]

    def fit() -> None:
        for _ in range(config.epochs):
            for step in steps:
                step()

    return {"seconds": timed(fit, synchronize), "accuracy": None, "epochs_run": config.epochs}


def _epochs_run(history: Any) -> int | None:
    """How many epochs an mlpx History recorded (None if it has no such record)."""
    try:
        return len(history.epoch)
    except (AttributeError, TypeError):
        return None


def run_mlpx(task: dict[str, Any], data: dict[str, np.ndarray]) -> dict[str, Any]:
    """Time ``mlpx.MLP(...).fit(X, y, ...)`` from NumPy arrays (building the model untimed)."""
    import mlpx

    config = Config(**task["config"])
    on_gpu = task["backend"] == "cupy"
    options: dict[str, Any] = {"backend": task["backend"]}
    synchronize = _cupy_sync() if on_gpu else _no_sync
    if task.get("contender") in MLPX_ON_TORCH:
        import torch

        if task.get("threads"):
            torch.set_num_threads(task["threads"])
        options = {"backend": "torch", "device": "cuda" if on_gpu else "cpu",
                   "matmul_precision": MLPX_ON_TORCH[task.get("contender")]}
        synchronize = torch.cuda.synchronize if on_gpu else _no_sync
    if task.get("contender") == "mlpx-l2":
        options.update(alpha=L2_ALPHA, alpha_per_sample=True)
    if task.get("contender") == "mlpx-glorot":
        options.update(init="glorot_uniform")
    activations = [config.hidden_activation] * len(config.hidden) + ["softmax"]
    model = mlpx.MLP(config.layer_sizes, activations=activations, dtype="float32", seed=SEED,
                     **options)
    histories = []
    setting = OPTIMIZERS[config.optimizer]
    optimizer_name, optimizer_options = setting.mlpx
    optimizer = getattr(mlpx.optim, optimizer_name)(**optimizer_options)

    def fit() -> None:
        histories.append(model.fit(data["X_train"], data["y_train"], epochs=config.epochs,
                                   batch_size=config.batch_size, optimizer=optimizer,
                                   learning_rate=setting.learning_rate, shuffle=True))

    seconds = timed(fit, synchronize)
    accuracy = float(model.score(data["X_test"], data["y_test"])) if task["score"] else None
    result = {"seconds": seconds, "accuracy": accuracy, "epochs_run": _epochs_run(histories[0])}
    if options["backend"] == "numpy":
        from mlpx._compiled import kernel_status

        result["note"] = kernel_status()
        if model.alpha:
            result["note"] += f"; L2 alpha {model.alpha:g} over the batch size"
        if "init" in options:
            result["note"] += f"; init {options['init']}"
    elif options["backend"] == "torch":
        result["note"] = (f"torch backend, {model.matmul_precision} products, torch threads "
                          f"{torch.get_num_threads()}")
    return result


def run_sklearn(task: dict[str, Any], data: dict[str, np.ndarray]) -> dict[str, Any]:
    """Time ``MLPClassifier.fit`` with the config's exact settings and no early stop.

    scikit-learn's estimator, or for ``mlpx-sklearn`` mlpx's drop-in one with the same call.
    """
    from sklearn.exceptions import ConvergenceWarning

    if task.get("contender") == "mlpx-sklearn":
        from mlpx.sklearn import MLPClassifier
    else:
        from sklearn.neural_network import MLPClassifier

    config = Config(**task["config"])
    alpha = L2_ALPHA if task.get("contender") == "sklearn-l2" else 0.0
    setting = OPTIMIZERS[config.optimizer]
    if setting.sklearn is None:
        raise ValueError(f"scikit-learn's MLPClassifier has no {config.optimizer} solver")
    solver, solver_options = setting.sklearn
    model = MLPClassifier(
        hidden_layer_sizes=config.hidden, activation=SKLEARN_ACTIVATIONS[config.hidden_activation],
        solver=solver, alpha=alpha, batch_size=config.batch_size,
        learning_rate_init=setting.learning_rate, max_iter=config.epochs, shuffle=True,
        random_state=SEED, tol=0.0, n_iter_no_change=config.epochs + 1, **solver_options,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        seconds = timed(lambda: model.fit(data["X_train"], data["y_train"]), _no_sync)
    accuracy = float(model.score(data["X_test"], data["y_test"])) if task["score"] else None
    return {"seconds": seconds, "accuracy": accuracy, "epochs_run": int(model.n_iter_),
            "note": f"{model.n_outputs_} output unit(s), {model.coefs_[0].dtype} weights, "
                    f"alpha {model.alpha:g}"}


def _torch_network(torch: Any, sizes: list[int], activation: str = "relu") -> Any:
    """``nn.Sequential`` of Linear layers and ``activation`` between them, ending in logits."""
    layers: list[Any] = []
    module_name, arguments = TORCH_ACTIVATIONS[activation]
    nonlinearity = getattr(torch.nn, module_name)
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        layers += [torch.nn.Linear(fan_in, fan_out), nonlinearity(**arguments)]
    return torch.nn.Sequential(*layers[:-1])


def _fused_error(torch: Any, device: Any, name: str) -> str | None:
    """Why ``torch.optim.<name>(fused=True)`` cannot step on ``device``, or None when it can
    (RMSprop has no fused kernel at all)."""
    param = torch.nn.Parameter(torch.zeros(4, device=device))
    param.grad = torch.ones(4, device=device)
    try:
        getattr(torch.optim, name)([param], lr=0.1, fused=True).step()
    except (RuntimeError, ValueError, TypeError, NotImplementedError) as exc:
        return str(exc).splitlines()[0]
    return None


def _torch_implementation(torch: Any, optimizer: Any) -> str:
    """Which kernel the torch optimizer runs: fused, foreach or the per-tensor for-loop."""
    settings = optimizer.defaults
    if settings.get("fused"):
        return "fused"
    if settings.get("foreach") is not None:
        return "foreach" if settings["foreach"] else "for-loop"
    params = [p for group in optimizer.param_groups for p in group["params"]]
    try:  # private, but it is what step() consults when foreach/fused are None
        from torch.optim.optimizer import _default_to_fused_or_foreach

        _, foreach = _default_to_fused_or_foreach(params, False, False)
    except (ImportError, TypeError):
        return "torch's default"
    return f"{'foreach' if foreach else 'for-loop'} (torch's default on {params[0].device.type})"


def _torch_optimizer(torch: Any, params: Any, variant: str, device: Any,
                     optimizer: str = "adam") -> tuple[Any, bool]:
    """The contender's optimizer (a key of ``OPTIMIZERS``): default, ``fused=True`` or
    ``foreach=True``.

    Returns
    -------
    optimizer : torch.optim.Optimizer
    fell_back : bool
        True when fused was asked for but cannot run here (torch's default runs instead).
    """
    setting = OPTIMIZERS[optimizer]
    name, torch_options = setting.torch
    options: dict[str, Any] = {"lr": setting.learning_rate, **torch_options}
    fell_back = False
    if variant in ("torch-fused", "torch-bf16"):
        fell_back = _fused_error(torch, device, name) is not None
        if not fell_back:
            options["fused"] = True
    elif variant == "torch-foreach":
        options["foreach"] = True
    return getattr(torch.optim, name)(params, **options), fell_back


def run_torch(task: dict[str, Any], data: dict[str, np.ndarray]) -> dict[str, Any]:
    """Time a plain PyTorch loop, from ``torch.from_numpy`` to the last optimizer step.

    Network, optimizer and generator are built untimed; per epoch a seeded
    ``torch.randperm`` orders the samples and batches are gathered by index. torch-bf16
    runs the forward pass and the loss (and so their backward) under
    ``torch.autocast(dtype=torch.bfloat16)``, its scoring too.
    """
    import torch

    if task["threads"]:
        torch.set_num_threads(task["threads"])
    config = Config(**task["config"])
    on_gpu = task["backend"] == "cupy"
    if on_gpu and not torch.cuda.is_available():
        raise RuntimeError(f"torch {torch.__version__} sees no CUDA device")
    device = torch.device("cuda" if on_gpu else "cpu")
    torch.manual_seed(SEED)
    network = _torch_network(torch, config.layer_sizes, config.hidden_activation).to(device)
    optimizer, fell_back = _torch_optimizer(torch, network.parameters(), task["contender"],
                                            device, config.optimizer)
    loss_fn = torch.nn.CrossEntropyLoss()
    generator = torch.Generator(device=device).manual_seed(SEED)
    synchronize = torch.cuda.synchronize if on_gpu else _no_sync
    mixed = task["contender"] == "torch-bf16"

    def precision() -> Any:
        return torch.autocast(device.type, dtype=torch.bfloat16, enabled=mixed)

    def fit() -> None:
        X = torch.from_numpy(data["X_train"]).to(device)
        y = torch.from_numpy(data["y_train"]).to(device)
        n_samples = X.shape[0]
        for _ in range(config.epochs):
            order = torch.randperm(n_samples, generator=generator, device=device)
            for begin in range(0, n_samples, config.batch_size):
                rows = order[begin:begin + config.batch_size]
                optimizer.zero_grad(set_to_none=True)
                with precision():
                    loss = loss_fn(network(X[rows]), y[rows])
                loss.backward()
                optimizer.step()

    seconds = timed(fit, synchronize)
    accuracy = None
    if task["score"]:
        with torch.no_grad(), precision():
            logits = network(torch.from_numpy(data["X_test"]).to(device))
            predicted = logits.argmax(dim=1).cpu().numpy()
        accuracy = float(np.mean(predicted == data["y_test"]))
    note = (f"{type(optimizer).__name__} {_torch_implementation(torch, optimizer)}, "
            f"torch threads {torch.get_num_threads()}")
    return {"seconds": seconds, "accuracy": accuracy, "epochs_run": config.epochs,
            "note": note, "fell_back": fell_back}


WORKERS: dict[str, Callable[[dict[str, Any], dict[str, np.ndarray]], dict[str, Any]]] = {
    "floor": run_floor, "mlpx": run_mlpx, "mlpx-numpy": run_mlpx, "mlpx-torch": run_mlpx,
    "mlpx-bf16": run_mlpx, "mlpx-l2": run_mlpx, "mlpx-glorot": run_mlpx, "sklearn": run_sklearn,
    "sklearn-l2": run_sklearn, "mlpx-sklearn": run_sklearn, "torch-eager": run_torch,
    "torch-fused": run_torch, "torch-foreach": run_torch, "torch-bf16": run_torch,
}


def peak_rss_mib() -> float:
    """This process's peak resident set size in MiB.

    On Linux it is ``VmHWM`` from ``/proc/self/status``: ``getrusage``'s ``ru_maxrss``
    survives ``exec`` there, so a fresh worker would report the parent's peak whenever the
    parent had been bigger. Elsewhere ``ru_maxrss`` (KiB on Linux, bytes on macOS).
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def thread_pools() -> str:
    """The BLAS and OpenMP pools loaded in this process and their sizes (via threadpoolctl)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "unknown (no threadpoolctl)"
    pools = sorted({f"{info['internal_api']} {info['num_threads']}"
                    for info in threadpool_info()})
    return ", ".join(pools) or "none"


def own_modules(task: dict[str, Any]) -> set[str]:
    """The watched libraries a worker may import: its own, and CuPy in the CuPy mode."""
    own = {LIBRARY.get(task["contender"], "numpy")}
    if task["contender"] == "mlpx-sklearn":
        own.add("mlpx")
    if task["contender"] in MLPX_ON_TORCH:
        own.update(("mlpx", "torch"))
    elif task["backend"] == "cupy" and task["contender"] in ("floor", "mlpx", "mlpx-l2",
                                                             "mlpx-glorot"):
        own.add("cupy")
    return own


def worker_main(task_json: str) -> int:
    """Run one timed fit described by ``task_json`` and print its result as one JSON line."""
    task = json.loads(task_json)
    data = load_data(task["data_dir"])
    if task["config"]["accuracy_on"] == "train":
        data["X_test"], data["y_test"] = data["X_train"], data["y_train"]
    result = WORKERS[task["contender"]](task, data)
    result["peak_rss_mib"] = peak_rss_mib()
    result["foreign_modules"] = [m for m in WATCHED_MODULES
                                 if m in sys.modules and m not in own_modules(task)]
    result["threads"] = thread_pools()
    print(json.dumps(result))
    return 0


# --------------------------------------------------------------------------- parent side


@dataclass
class Runs:
    """Every fit of one contender on one config, in the order they ran.

    Attributes
    ----------
    warmup : list of float
        Seconds of the discarded warm-up fits.
    times : list of float
        Seconds of the measured fits.
    outputs : list of dict
        What each measured worker reported (accuracy, peak RSS, notes, ...).
    error : str or None
        Why the contender stopped, if a worker failed; it then runs no more rounds.
    """

    warmup: list[float] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    outputs: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None

    @property
    def median(self) -> float:
        """Median seconds of the measured fits (NaN when there are none)."""
        return statistics.median(self.times) if self.times else float("nan")

    @property
    def spread(self) -> float:
        """Slowest over fastest measured fit."""
        return max(self.times) / min(self.times) if self.times else float("nan")

    def last(self, key: str) -> Any:
        """``key`` of the last measured worker output, or None."""
        return self.outputs[-1].get(key) if self.outputs else None

    def peak_rss(self) -> float:
        """The highest peak RSS (MiB) over the measured fits."""
        return max((o["peak_rss_mib"] for o in self.outputs), default=float("nan"))


@dataclass(frozen=True)
class Job:
    """One contender on one config, with everything its workers need.

    Attributes
    ----------
    config : Config
    contender : str
    data_dir : pathlib.Path
    score : bool
        Whether the worker computes the accuracy after the fit.
    """

    config: Config
    contender: str
    data_dir: Path
    score: bool = True

    def task(self, backend: str, threads: int) -> str:
        """The worker's instructions as a JSON string."""
        return json.dumps({"contender": self.contender, "backend": backend,
                           "threads": threads, "data_dir": str(self.data_dir),
                           "score": self.score, "config": dataclasses.asdict(self.config)})


def worker_env(threads: int) -> dict[str, str]:
    """The parent's environment, with every thread pool capped at ``threads`` when > 0."""
    env = dict(os.environ)
    if threads > 0:
        env.update({name: str(threads) for name in THREAD_VARIABLES})
    return env


def run_worker(job: Job, backend: str, threads: int, env: dict[str, str]) -> dict[str, Any]:
    """Run one fit in a fresh Python process and return its JSON report.

    Raises
    ------
    RuntimeError
        With the last line of the worker's stderr when it fails.
    """
    command = [sys.executable, str(Path(__file__).resolve()), "--worker",
               job.task(backend, threads)]
    if job.contender == "mlpx-numpy":  # mlpx with its NumPy kernels only
        env = {**env, "MLPX_PURE_NUMPY": "1"}
    completed = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    lines = completed.stdout.strip().splitlines()
    if completed.returncode != 0 or not lines:
        errors = completed.stderr.strip().splitlines() or ["(no output)"]
        raise RuntimeError(f"worker exited {completed.returncode}: {errors[-1]}")
    return json.loads(lines[-1])


def run_interleaved(jobs: Sequence[Job], backend: str, threads: int, repeats: int,
                    warmup: int, label: str) -> dict[Job, Runs]:
    """Run every job once per round, ``warmup + repeats`` rounds, in the same order each round.

    A job whose worker fails is dropped from the later rounds, its error kept.
    Progress goes to stderr, one line per round.

    Returns
    -------
    dict of Job -> Runs
    """
    env = worker_env(threads)
    runs = {job: Runs() for job in jobs}
    for round_index in range(warmup + repeats):
        is_warmup = round_index < warmup
        done = []
        for job in jobs:
            if runs[job].error is not None:
                continue
            try:
                output = run_worker(job, backend, threads, env)
            except (RuntimeError, json.JSONDecodeError) as exc:
                runs[job].error = str(exc)
                done.append(f"{job.contender} FAILED")
                continue
            _record(runs[job], output, is_warmup)
            done.append(f"{job.contender} {output['seconds']:.3g}s")
        kind = "warm-up" if is_warmup else f"repeat {round_index - warmup + 1}/{repeats}"
        if done:
            print(f"[{label}] {kind}: " + " | ".join(done), file=sys.stderr, flush=True)
    return runs


def _record(runs: Runs, output: dict[str, Any], is_warmup: bool) -> None:
    """File one worker report under warm-up or measured fits."""
    if is_warmup:
        runs.warmup.append(output["seconds"])
    else:
        runs.times.append(output["seconds"])
        runs.outputs.append(output)


# --------------------------------------------------------------------------- reporting


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table; every column but the first right-aligned."""
    align = ["---"] + ["---:"] * (len(header) - 1)
    lines = [header, align, *rows]
    return "\n".join("| " + " | ".join(cells) + " |" for cells in lines)


def _seconds(value: float) -> str:
    """Seconds with 3 significant digits."""
    return f"{value:.3g}" if value == value else "n/a"


def _ratio(value: float) -> str:
    """A ratio such as ``3.10x`` (``n/a`` for NaN)."""
    return f"{value:.2f}x" if value == value else "n/a"


def contender_label(name: str, runs: Runs) -> str:
    """The row label; a fused optimizer that fell back says so."""
    return f"{name} (fused unavailable: torch's default)" if runs.last("fell_back") else name


def paired_ratio(runs: Runs, floor_runs: Runs | None) -> float:
    """Median over the rounds of this contender's time over the floor's in the same round.

    A shared host speeds up and slows down over minutes; the ratio within each round
    cancels that drift, which the ratio of the two medians keeps. NaN unless both ran
    every measured round.
    """
    if floor_runs is None or not runs.times or len(runs.times) != len(floor_runs.times):
        return float("nan")
    return statistics.median(t / f for t, f in zip(runs.times, floor_runs.times))


def result_row(name: str, runs: Runs, config: Config, floor_runs: Runs | None,
               mlpx_time: float, gpu: bool) -> list[str]:
    """One table row: median, samples/s, x floor (two ways), vs mlpx, [% of floor], accuracy,
    RSS."""
    median = runs.median
    floor = floor_runs.median if floor_runs is not None else float("nan")
    accuracy = runs.last("accuracy")
    row = [contender_label(name, runs), _seconds(median),
           f"{config.n_train * config.epochs / median:,.0f}" if median == median else "n/a",
           _ratio(median / floor), _ratio(paired_ratio(runs, floor_runs)),
           _ratio(median / mlpx_time)]
    if gpu:
        row.append(f"{100 * floor / median:.0f}%" if median == median else "n/a")
    row += ["—" if accuracy is None else f"{accuracy:.3f}", f"{runs.peak_rss():.0f}"]
    return row


def config_notes(config: Config, results: dict[str, Runs]) -> list[str]:
    """Footnotes under a config's table: sklearn's binary output, torch's optimizer, then
    problems."""
    notes, problems = [], []
    one_unit = [name for name in results if LIBRARY.get(name) == "sklearn"]
    if one_unit and config.n_classes == 2:
        notes.append(f"{', '.join(one_unit)}: one logistic output unit for 2 classes "
                     f"({'-'.join(map(str, config.layer_sizes[:-1]))}-1, log-loss); the "
                     "others two softmax units with cross-entropy.")
    for name, runs in results.items():
        if runs.last("note"):
            notes.append(f"{name}: {runs.last('note')}.")
        if runs.last("epochs_run") not in (None, config.epochs):
            problems.append(f"{name} ran {runs.last('epochs_run')} epochs, not {config.epochs}!")
        if foreign := runs.last("foreign_modules"):
            problems.append(f"{name}'s worker also imported {', '.join(foreign)}.")
        if len(runs.times) > 1 and runs.spread > NOISY_SPREAD:
            problems.append(f"noisy: {name}'s repeats spread {runs.spread:.2f}x "
                            f"({min(runs.times):.3g}-{max(runs.times):.3g} s).")
        if runs.error:
            problems.append(f"{name} failed and was dropped: {runs.error}")
    return notes + problems


def config_report(config: Config, results: dict[str, Runs], gpu: bool) -> str:
    """Heading, Markdown table and footnotes for one config."""
    floor_runs = results.get("floor")
    mlpx_time = results["mlpx"].median if "mlpx" in results else float("nan")
    accuracy = "train acc" if config.accuracy_on == "train" else "test acc"
    header = ["contender", "median s", "samples/s", "x floor", "x floor, paired", "vs mlpx"]
    header += ["% of GEMM floor"] if gpu else []
    header += [accuracy, "peak RSS MiB"]
    rows = [result_row(name, runs, config, floor_runs, mlpx_time, gpu)
            for name, runs in results.items() if runs.times]
    table = markdown_table(header, rows) if rows else "(no contender finished a measured fit)"
    lines = [f"### {config.name}: {config.describe()}", "", table, ""]
    lines += [f"- {note}" for note in config_notes(config, results)]
    return "\n".join(lines)


def _growths(results: dict[str, dict[str, Runs]], before: Config,
             after: Config) -> list[str]:
    """How much the GEMM work, the floor's and mlpx's median times grow from one run to another."""
    def growth(name: str) -> str:
        return _ratio(results[after.name][name].median / results[before.name][name].median)

    return [_ratio(after.gemm_flops() / before.gemm_flops()), growth("floor"), growth("mlpx")]


def scaling_report(configs: Sequence[Config], results: dict[str, dict[str, Runs]],
                   repeats: int) -> str:
    """Time of floor and mlpx at half/all samples and at double width, next to the work."""
    rows = []
    for config in configs:
        floor, mlpx_runs = results[config.name]["floor"], results[config.name]["mlpx"]
        rows.append([config.name, f"{config.gemm_flops() / 1e9:.3g}", _seconds(floor.median),
                     _seconds(mlpx_runs.median), _ratio(mlpx_runs.median / floor.median)])
    half, full, wide = configs
    changes = [
        [f"{half.n_train} -> {full.n_train} samples",
         *_growths(results, half, full)],
        [f"{'-'.join(map(str, full.hidden))} -> {'-'.join(map(str, wide.hidden))} hidden",
         *_growths(results, full, wide)],
    ]
    return "\n".join([
        f"### Scaling: mlpx vs the floor, mnist-like, 1 epoch, batch 256 (median of {repeats})",
        "",
        markdown_table(["run", "GEMM GFLOP", "floor s", "mlpx s", "mlpx / floor"], rows),
        "",
        markdown_table(["change", "work (GEMM FLOP)", "floor time", "mlpx time"], changes),
    ])


def _version(distribution: str) -> str | None:
    """The installed version of ``distribution`` without importing it, or None.

    mlpx run from the checkout (not installed) is imported for its ``__version__``.
    """
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        pass
    if distribution == "mlpx":
        import mlpx

        return f"{mlpx.__version__} (checkout)"
    return None


def _cpu_name() -> str:
    """The CPU model from /proc/cpuinfo, else what platform knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_line(args: argparse.Namespace) -> str:
    """One line: OS, CPU, versions, BLAS threads and how the repeats were taken."""
    versions = [f"python {platform.python_version()}", f"numpy {np.__version__}"]
    for distribution, label in (("torch", "torch"), ("scikit-learn", "sklearn"),
                                ("mlpx", "mlpx")):
        version = _version(distribution)
        versions.append(f"{label} {version}" if version else f"no {label}")
    threads = ("library defaults" if args.threads == 0
               else f"every pool capped at {args.threads}")
    return (f"machine: {platform.system()} {platform.machine()}, {_cpu_name()}, "
            f"{os.cpu_count()} CPUs; {', '.join(versions)}; numpy BLAS: {thread_pools()}; "
            f"threads: {threads} (--threads {args.threads}); backend {args.backend}; "
            f"median of {args.repeats} interleaved repeats after {args.warmup} warm-up round(s)")


def threads_seen(all_results: dict[str, dict[str, Runs]]) -> str:
    """One line: the thread pools each contender's workers reported."""
    seen: dict[str, str] = {}
    for results in all_results.values():
        for name, runs in results.items():
            if runs.last("threads"):
                seen.setdefault(name, runs.last("threads"))
    return "thread pools in the workers: " + "; ".join(f"{k}: {v}" for k, v in seen.items())


GENERAL_NOTES = (
    "floor = only the matrix products of the same training steps (forward X @ W, dW = X^T @ dZ, "
    "dX = dZ @ W^T but for the first layer) with matmul(out=) on preallocated float32 arrays, "
    "after one untimed step per batch size; a bound, not a trainer.",
    "Each fit runs in a fresh process and is timed from NumPy arrays to the end of training "
    "(conversions included); building the model and computing the accuracy are not timed.",
    "x floor = median / floor median; vs mlpx = median / mlpx median (> 1: mlpx is faster); "
    "peak RSS = the worker process's peak, interpreter, library and data included.",
)


def json_payload(args: argparse.Namespace, machine: str, configs: Sequence[Config],
                 all_results: dict[str, dict[str, Runs]]) -> dict[str, Any]:
    """Settings, machine and every raw timing and worker report, JSON-friendly."""
    by_name = {config.name: config for config in configs}
    return {
        "settings": {key: (str(value) if isinstance(value, Path) else value)
                     for key, value in vars(args).items() if key != "worker"},
        "machine": machine,
        "results": {
            name: {"config": dataclasses.asdict(by_name[name]),
                   "gemm_flops": by_name[name].gemm_flops(),
                   "contenders": {c: {"median": r.median, **dataclasses.asdict(r)}
                                  for c, r in results.items()}}
            for name, results in all_results.items()
        },
    }


# --------------------------------------------------------------------------- command line


def available_contenders(names: Sequence[str], backend: str) -> tuple[list[str], list[str]]:
    """The requested contenders that can run here, and a note for each one that cannot.

    Only looks for the libraries (``importlib.util.find_spec``); nothing is imported.
    """
    usable, skipped = [], []
    for name in names:
        library = LIBRARY.get(name)
        if backend == "cupy" and LIBRARY.get(name) == "sklearn":
            skipped.append(f"{name}: CPU only here (scikit-learn has no GPU mode)")
        elif library is not None and importlib.util.find_spec(library) is None:
            skipped.append(f"{name}: {library} is not installed")
        else:
            usable.append(name)
    return usable, skipped


def cupy_problem() -> str | None:
    """Why the CuPy mode cannot run here (no CuPy, no CUDA device), or None."""
    if importlib.util.find_spec("cupy") is None:
        return "CuPy is not installed"
    try:
        import cupy

        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # CuPy raises its own CUDA error types, or ImportError
        return f"CuPy cannot reach a CUDA device ({type(exc).__name__}: {exc})"
    return None if count > 0 else "no CUDA device"


def _names(text: str, allowed: Sequence[str], option: str) -> list[str]:
    """A comma-separated list checked against ``allowed``."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in allowed]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"{option} got {unknown or text!r}; choose from {','.join(allowed)}")
    return names


def build_parser() -> argparse.ArgumentParser:
    """The command line; see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="2 repeats, fewer epochs/samples, 1 thread (nox -s bench)")
    parser.add_argument("--backend", choices=("numpy", "cupy"), default="numpy",
                        help="numpy: CPU contenders; cupy: cuBLAS floor, mlpx on CuPy, torch "
                             "on CUDA, and the 'large' config")
    parser.add_argument("--configs", default=None,
                        type=lambda t: _names(t, ("moons", "digits", "mnist", "classes",
                                                  "large"), "--configs"),
                        help="comma-separated (default moons,digits,mnist[,large on cupy]; "
                             "classes: 1000 classes, 256-512-1000, only when named)")
    contenders = (*CPU_CONTENDERS, *OPTIONAL_CONTENDERS)
    parser.add_argument("--contenders", default=None,
                        type=lambda t: _names(t, contenders, "--contenders"),
                        help=f"comma-separated from {','.join(contenders)} (default all but "
                             "torch-foreach and mlpx-numpy; no sklearn on cupy)")
    parser.add_argument("--activation", choices=tuple(TORCH_ACTIVATIONS), default="relu",
                        help="every hidden layer's activation (default relu; all but relu, "
                             "tanh and sigmoid without the scikit-learn contenders)")
    parser.add_argument("--optimizer", choices=tuple(OPTIMIZERS), default="adam",
                        help="every contender's optimizer (default adam; rmsprop and adagrad "
                             "without the scikit-learn contenders)")
    parser.add_argument("--repeats", type=int, default=None,
                        help="measured rounds (default 7, 2 with --quick)")
    parser.add_argument("--warmup", type=int, default=1, help="discarded rounds (default 1)")
    parser.add_argument("--threads", type=int, default=None,
                        help="cap BLAS/OpenMP pools and torch threads at N in every worker; "
                             "0 = library defaults (default 0, 1 with --quick)")
    parser.add_argument("--scaling", action=argparse.BooleanOptionalAction, default=None,
                        help="the mlpx scaling section (default: when mnist is selected)")
    parser.add_argument("--scaling-repeats", type=int, default=None,
                        help="measured rounds of the scaling runs (default 3, 2 with --quick)")
    parser.add_argument("--json", type=Path, default=None, help="write all raw timings here")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    return parser


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse and fill in the quick/full defaults."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.worker is not None:
        return args
    if args.repeats is None:
        args.repeats = 2 if args.quick else 7
    if args.scaling_repeats is None:
        args.scaling_repeats = 2 if args.quick else 3
    if args.threads is None:
        args.threads = 1 if args.quick else 0
    if min(args.repeats, args.scaling_repeats) < 1 or args.warmup < 0 or args.threads < 0:
        parser.error("--repeats and --scaling-repeats must be >= 1, --warmup and --threads >= 0")
    if args.json is not None:
        folder = args.json.parent
        if args.json.is_dir() or not folder.is_dir() or not os.access(folder, os.W_OK):
            parser.error(f"--json {args.json}: not a file in a writable folder; the timings "
                         "would be lost after the run; create the folder or pick another path")
    if args.configs is None:
        args.configs = list(make_configs(args.quick, args.backend, many_classes=False))
    if "large" in args.configs and args.backend != "cupy":
        parser.error("the 'large' config needs --backend cupy")
    needs_sklearn = [name for name in args.contenders or ()
                     if LIBRARY.get(name) == "sklearn"]
    sklearn_has_it = (args.activation in SKLEARN_ACTIVATIONS
                      and OPTIMIZERS[args.optimizer].sklearn is not None)
    for option, value, missing in (
            ("--activation", args.activation, args.activation not in SKLEARN_ACTIVATIONS),
            ("--optimizer", args.optimizer, OPTIMIZERS[args.optimizer].sklearn is None)):
        if missing and needs_sklearn:
            parser.error(f"{option} {value}: scikit-learn's MLPClassifier has no {value}; "
                         f"drop {','.join(needs_sklearn)} from --contenders")
    if args.contenders is None:
        args.contenders = [name for name in (GPU_CONTENDERS if args.backend == "cupy"
                                             else CPU_CONTENDERS)
                           if sklearn_has_it or LIBRARY.get(name) != "sklearn"]
    if args.scaling is None:
        args.scaling = "mnist" in args.configs
    return args


def run_configs(args: argparse.Namespace, contenders: Sequence[str],
                folder: Path) -> tuple[list[Config], dict[str, dict[str, Runs]]]:
    """Every selected config with every contender; prints each table when it is done."""
    configs = [make_configs(args.quick, args.backend, args.activation, args.optimizer)[name]
               for name in args.configs]
    all_results = {}
    for config in configs:
        data_dir = write_data(config, folder)
        jobs = [Job(config, name, data_dir) for name in contenders]
        runs = run_interleaved(jobs, args.backend, args.threads, args.repeats, args.warmup,
                               config.name)
        all_results[config.name] = {job.contender: runs[job] for job in jobs}
        print("\n" + config_report(config, all_results[config.name], args.backend == "cupy"),
              flush=True)
    return configs, all_results


def run_scaling(args: argparse.Namespace,
                folder: Path) -> tuple[list[Config], dict[str, dict[str, Runs]]]:
    """The scaling runs (floor and mlpx, interleaved across all runs); prints their tables."""
    configs = make_scaling_configs(args.quick)
    jobs = [Job(config, name, write_data(config, folder), score=False)
            for config in configs for name in ("floor", "mlpx")]
    runs = run_interleaved(jobs, args.backend, args.threads, args.scaling_repeats, args.warmup,
                           "scaling")
    results: dict[str, dict[str, Runs]] = {config.name: {} for config in configs}
    for job, job_runs in runs.items():
        results[job.config.name][job.contender] = job_runs
    failed = [f"{job.contender} on {job.config.name}: {r.error}"
              for job, r in runs.items() if r.error]
    if failed:
        print("\n### Scaling\n\n" + "\n".join(f"- failed: {line}" for line in failed))
    else:
        print("\n" + scaling_report(configs, results, args.scaling_repeats), flush=True)
    return configs, results


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark (or, with ``--worker``, one timed fit); returns the exit status."""
    args = parse_args(argv)
    if args.worker is not None:
        return worker_main(args.worker)
    if args.backend == "cupy" and (problem := cupy_problem()) is not None:
        print(f"error: --backend cupy needs CuPy and an NVIDIA GPU: {problem}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    contenders, skipped = available_contenders(args.contenders, args.backend)
    print(f"## mlpx training benchmark ({'quick' if args.quick else 'full'})\n")
    machine = machine_line(args)  # before the parent imports anything for the data
    print(machine)
    if skipped:
        print("\n".join(f"- skipped {note}" for note in skipped) + "\n")
    with tempfile.TemporaryDirectory(prefix="mlpx-bench-") as tmp:
        configs, all_results = run_configs(args, contenders, Path(tmp))
        if args.scaling and {"floor", "mlpx"} <= set(contenders):
            scaling_configs, scaling_results = run_scaling(args, Path(tmp))
            configs += scaling_configs
            all_results.update(scaling_results)
        elif args.scaling:
            print("\n- scaling skipped: it needs the floor and mlpx contenders")
    print("\n" + "\n".join(f"- {note}" for note in GENERAL_NOTES))
    print(f"- {threads_seen(all_results)}")
    if args.json is not None:
        payload = json_payload(args, machine, configs, all_results)
        from mlpx.io import atomic_write_bytes

        atomic_write_bytes(args.json, (json.dumps(payload, indent=2) + "\n").encode())
        print(f"\nraw timings written to {args.json}")
    print(f"\ntotal {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
