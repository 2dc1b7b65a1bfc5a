"""Training benchmark: mlpx on each backend against scikit-learn and a plain PyTorch loop.

Every contender trains the same network (architecture, optimizer, learning rate, batch
size, epochs, float32) on the same NumPy data, and only the fit is timed. Contenders run
interleaved (A, B, C, A, B, C, ...) after warm-up rounds, and the report gives the median
and minimum of the repeats and the ratio of medians against mlpx on NumPy, so the numbers
from one run on a noisy, shared machine can be compared with each other. A final training
loss and a test accuracy, computed the same way for every contender after its fit, show
that no speed is bought with wrong results.

    python benchmarks/bench_train.py                 # 5 repeats, a few minutes
    python benchmarks/bench_train.py --quick         # 1 repeat, fewer epochs, 1 thread, < 1 min
    python benchmarks/bench_train.py --repeats 9 --json timings.json
    python benchmarks/bench_train.py --threads 1     # every thread pool capped at 1 (steadier)
    python benchmarks/bench_train.py --backends numpy,torch,cupy --workloads digits
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import os
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # benchmark the checkout this script sits in
    sys.path.insert(0, str(ROOT))

import mlpx  # noqa: E402
from mlpx.datasets import make_moons  # noqa: E402

SEED = 42
BACKEND_NAMES = ("numpy", "torch", "array_api_strict", "cupy")
BASELINE = "mlpx-numpy"


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class Dataset:
    """Training and test data as NumPy arrays, what users pass to ``fit``.

    Attributes
    ----------
    X_train, X_test : numpy.ndarray of float32, shape (n_samples, n_features)
    y_train, y_test : numpy.ndarray of int64, shape (n_samples,)
        Class labels ``0 .. n_classes - 1``.
    n_classes : int
    """

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    n_classes: int


def _split(X: np.ndarray, y: np.ndarray, test_size: float, seed: int) -> tuple[np.ndarray, ...]:
    """Shuffle the rows with a seeded generator and cut off the last ``test_size`` fraction."""
    order = np.random.default_rng(seed).permutation(X.shape[0])
    n_test = int(np.ceil(test_size * X.shape[0]))
    test, train = order[:n_test], order[n_test:]
    return X[train], X[test], y[train], y[test]


def _standardised(X_train: np.ndarray, X_test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Scale both sets with the training mean and standard deviation (1 for constant columns)."""
    mean = X_train.mean(axis=0)
    std = X_train.std(axis=0)
    std[std == 0.0] = 1.0
    return (((X_train - mean) / std).astype(np.float32),
            ((X_test - mean) / std).astype(np.float32))


def _dataset(X: np.ndarray, y: np.ndarray, n_classes: int, test_size: float = 0.2) -> Dataset:
    """Split, standardise and cast to float32 features and int64 labels."""
    X_train, X_test, y_train, y_test = _split(np.asarray(X, dtype=np.float64), y, test_size,
                                              SEED)
    X_train, X_test = _standardised(X_train, X_test)
    return Dataset(X_train, y_train.astype(np.int64), X_test, y_test.astype(np.int64), n_classes)


def load_moons() -> Dataset:
    """Tutorial 004's moons: 500 noisy points, 400 of them for training."""
    X, y = make_moons(n_samples=500, noise=0.2, seed=SEED)
    return _dataset(mlpx.to_numpy(X), mlpx.to_numpy(y), n_classes=2)


def load_digits() -> Dataset:
    """scikit-learn's bundled 8x8 digits (1797 images, no download), standardised."""
    from sklearn.datasets import load_digits as sklearn_digits

    digits = sklearn_digits()
    return _dataset(digits.data, digits.target, n_classes=10)


def load_synthetic(n_samples: int = 20_000, n_features: int = 100,
                   n_classes: int = 10) -> Dataset:
    """A learnable 10-class problem from a seeded generator: a random tanh teacher network.

    ``n_samples`` rows are for training; another fifth as many are drawn for the test set.
    """
    rng = np.random.default_rng(SEED)
    n_total = n_samples + n_samples // 5
    X = rng.standard_normal((n_total, n_features))
    hidden = np.tanh(X @ rng.standard_normal((n_features, 64)) / np.sqrt(n_features))
    logits = hidden @ rng.standard_normal((64, n_classes)) * 2.0
    y = np.argmax(logits + 0.5 * rng.standard_normal(logits.shape), axis=1)
    return _dataset(X, y, n_classes=n_classes, test_size=(n_total - n_samples) / n_total)


# --------------------------------------------------------------------------- workloads


@dataclass(frozen=True)
class Workload:
    """One training problem, trained identically by every contender.

    Attributes
    ----------
    name : str
    description : str
    layer_sizes : tuple of int
        Inputs first, as in ``mlpx.MLP``.
    activations : tuple of str
        One per weight layer; hidden layers must share one activation (scikit-learn's rule).
    optimizer : {"sgd", "adam"}
        Plain SGD has no momentum; Adam uses beta1 0.9, beta2 0.999, epsilon 1e-8.
    learning_rate : float
    batch_size : int or None
        None is full-batch gradient descent.
    epochs : int
    load : callable returning Dataset
    """

    name: str
    description: str
    layer_sizes: tuple[int, ...]
    activations: tuple[str, ...]
    optimizer: str
    learning_rate: float
    batch_size: int | None
    epochs: int
    load: Callable[[], Dataset]

    def effective_batch_size(self, n_samples: int) -> int:
        """Samples per step: ``batch_size``, or all of them for full-batch descent."""
        return n_samples if self.batch_size is None else min(self.batch_size, n_samples)

    def config(self) -> dict[str, Any]:
        """The settings as a JSON-friendly dict."""
        return {
            "description": self.description,
            "layer_sizes": list(self.layer_sizes),
            "activations": list(self.activations),
            "optimizer": self.optimizer,
            "learning_rate": self.learning_rate,
            "batch_size": self.batch_size,
            "epochs": self.epochs,
            "dtype": "float32",
        }


def make_workloads(quick: bool) -> list[Workload]:
    """The three workloads; ``quick`` trains fewer epochs for a smoke run.

    Parameters
    ----------
    quick : bool

    Returns
    -------
    list of Workload
        moons (tiny, full batch: per-step overhead), digits (small mini-batches) and
        synthetic (larger layers and batches: throughput).
    """
    return [
        Workload("moons", "tutorial 004's moons", (2, 16, 8, 1),
                 ("relu", "relu", "sigmoid"), "sgd", 0.1, None, 100 if quick else 500,
                 load_moons),
        Workload("digits", "sklearn's digits, standardised",
                 (64, 128, 64, 10), ("relu", "relu", "softmax"), "adam", 1e-3, 64,
                 5 if quick else 20, load_digits),
        Workload("synthetic", "seeded synthetic, 100 features, 10 classes",
                 (100, 256, 256, 10), ("relu", "relu", "softmax"), "adam", 1e-3, 256,
                 1 if quick else 3, load_synthetic),
    ]


# --------------------------------------------------------------------------- contenders


class Trainer(Protocol):
    """One freshly initialised model of one contender, ready to be fitted once."""

    def fit(self) -> None:
        """Train on the workload's training data; the only timed call."""

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Class probabilities as NumPy, shape (n, n_classes) or (n, 1) for one sigmoid unit."""


@dataclass(frozen=True)
class Contender:
    """A named way to train a workload.

    Attributes
    ----------
    name : str
    make : callable (Workload, Dataset) -> Trainer
        Builds the model (not timed).
    note : str
        Device or other detail shown in the report.
    """

    name: str
    make: Callable[[Workload, Dataset], Trainer]
    note: str = ""


def _synchronize(backend: mlpx.Backend) -> None:
    """Wait for queued GPU work, so the clock stops after the fit really ended."""
    if backend.name == "cupy":
        backend.device.synchronize()
    elif backend.name == "torch" and backend.device.type == "cuda":
        import torch

        torch.cuda.synchronize(backend.device)


def _initial_params(workload: Workload) -> list[np.ndarray]:
    """mlpx's seeded initial weights ``[W1, b1, ...]`` on the host, W of shape (in, out)."""
    model = mlpx.MLP(list(workload.layer_sizes), activations=list(workload.activations),
                     seed=SEED)
    return [mlpx.to_numpy(p) for p in model.params]


class MlpxTrainer:
    """``mlpx.MLP.fit`` on one backend, from NumPy data (moved to the device once per fit)."""

    def __init__(self, backend: mlpx.Backend, workload: Workload, data: Dataset) -> None:
        self.backend = backend
        self.workload = workload
        self.data = data
        self.model = mlpx.MLP(list(workload.layer_sizes), activations=list(workload.activations),
                              backend=backend, dtype="float32", seed=SEED)

    def fit(self) -> None:
        """Train; reading the last loss as a float and a device sync end any GPU work."""
        w = self.workload
        history = self.model.fit(self.data.X_train, self.data.y_train, epochs=w.epochs,
                                 batch_size=w.batch_size, optimizer=w.optimizer,
                                 learning_rate=w.learning_rate, shuffle=True)
        float(history.history["loss"][-1])
        _synchronize(self.backend)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """The network output as NumPy."""
        return mlpx.to_numpy(self.model.predict_proba(X))


@functools.cache
def _sklearn_classifier_class() -> type:
    """``MLPClassifier``, subclassed to start from given weights when sklearn allows it.

    scikit-learn draws its initial weights in the private ``_init_coef(fan_in, fan_out,
    dtype)``, called once per layer in order; the subclass returns ``start_params`` there
    instead. Without that hook (another sklearn version) the plain class is returned and
    sklearn starts from its own Glorot draw.
    """
    from sklearn.neural_network import MLPClassifier

    if not hasattr(MLPClassifier, "_init_coef"):
        return MLPClassifier

    class StartingWeightsMLPClassifier(MLPClassifier):
        start_params: list[np.ndarray] = []

        def _init_coef(self, fan_in: int, fan_out: int, dtype: Any) -> tuple[np.ndarray, ...]:
            layer = len(self.coefs_)
            W, b = self.start_params[2 * layer], self.start_params[2 * layer + 1]
            if W.shape != (fan_in, fan_out):
                return super()._init_coef(fan_in, fan_out, dtype)
            return W.astype(dtype, copy=True), b.astype(dtype, copy=True)

    return StartingWeightsMLPClassifier


class SklearnTrainer:
    """scikit-learn's ``MLPClassifier`` with the workload's exact settings, no early stop.

    It starts from mlpx's initial weights where scikit-learn lets it (see
    :func:`_sklearn_classifier_class`); its training loop is untouched.
    """

    def __init__(self, workload: Workload, data: Dataset) -> None:
        hidden = set(workload.activations[:-1])
        if len(hidden) != 1:
            raise ValueError(f"scikit-learn needs one hidden activation, got {sorted(hidden)}")
        self.data = data
        self.model = _sklearn_classifier_class()(
            hidden_layer_sizes=workload.layer_sizes[1:-1],
            activation=hidden.pop(),
            solver=workload.optimizer,
            alpha=0.0,
            batch_size=workload.effective_batch_size(data.X_train.shape[0]),
            learning_rate="constant",
            learning_rate_init=workload.learning_rate,
            max_iter=workload.epochs,
            shuffle=True,
            random_state=SEED,
            tol=0.0,
            momentum=0.0,
            nesterovs_momentum=False,
            early_stopping=False,
            n_iter_no_change=workload.epochs + 1,
        )
        self.model.start_params = _initial_params(workload)

    def fit(self) -> None:
        """Train for exactly ``epochs`` epochs (its ConvergenceWarning is expected)."""
        from sklearn.exceptions import ConvergenceWarning

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            self.model.fit(self.data.X_train, self.data.y_train)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Probabilities, one column per class."""
        return self.model.predict_proba(X)


_TORCH_ACTIVATIONS = {"relu": "ReLU", "tanh": "Tanh", "sigmoid": "Sigmoid"}


class TorchTrainer:
    """A plain PyTorch loop on the CPU: ``nn.Sequential``, ``torch.optim``, float32.

    It starts from mlpx's initial weights, shuffles every epoch with ``torch.randperm``
    (not for full-batch descent) and computes the loss from the logits, as mlpx does.
    """

    def __init__(self, workload: Workload, data: Dataset) -> None:
        import torch

        self.torch = torch
        self.workload = workload
        self.data = data
        self.network = self._network(_initial_params(workload))
        if workload.optimizer == "sgd":
            self.optimizer = torch.optim.SGD(self.network.parameters(), lr=workload.learning_rate)
        else:
            self.optimizer = torch.optim.Adam(self.network.parameters(),
                                              lr=workload.learning_rate, eps=1e-8)
        self.binary = workload.activations[-1] == "sigmoid"
        self.loss_fn = (torch.nn.BCEWithLogitsLoss() if self.binary
                        else torch.nn.CrossEntropyLoss())
        self.generator = torch.Generator().manual_seed(SEED)

    def _network(self, params: list[np.ndarray]) -> Any:
        """Linear layers holding ``params`` with the hidden activations; outputs logits."""
        nn = self.torch.nn
        modules = []
        n_layers = len(params) // 2
        for i in range(n_layers):
            W, b = params[2 * i], params[2 * i + 1]
            linear = nn.Linear(W.shape[0], W.shape[1])
            with self.torch.no_grad():
                linear.weight.copy_(self.torch.from_numpy(np.ascontiguousarray(W.T)))
                linear.bias.copy_(self.torch.from_numpy(b))
            modules.append(linear)
            if i < n_layers - 1:
                modules.append(getattr(nn, _TORCH_ACTIVATIONS[self.workload.activations[i]])())
        return nn.Sequential(*modules)

    def _targets(self, y: np.ndarray) -> Any:
        """Float (n, 1) targets for BCE, int64 (n,) labels for cross-entropy."""
        if self.binary:
            return self.torch.from_numpy(y.astype(np.float32).reshape(-1, 1))
        return self.torch.from_numpy(y)

    def fit(self) -> None:
        """Convert the NumPy data, then the epoch and batch loops."""
        X = self.torch.from_numpy(self.data.X_train)
        Y = self._targets(self.data.y_train)
        n_samples = X.shape[0]
        batch_size = self.workload.effective_batch_size(n_samples)
        for _ in range(self.workload.epochs):
            X_epoch, Y_epoch = X, Y
            if batch_size < n_samples:
                order = self.torch.randperm(n_samples, generator=self.generator)
                X_epoch, Y_epoch = X[order], Y[order]
            for begin in range(0, n_samples, batch_size):
                self._step(X_epoch[begin:begin + batch_size], Y_epoch[begin:begin + batch_size])

    def _step(self, X_batch: Any, Y_batch: Any) -> None:
        """One forward, backward and optimizer step."""
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.loss_fn(self.network(X_batch), Y_batch)
        loss.backward()
        self.optimizer.step()

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Sigmoid or softmax of the logits, as NumPy."""
        with self.torch.no_grad():
            logits = self.network(self.torch.from_numpy(X))
            proba = self.torch.sigmoid(logits) if self.binary else self.torch.softmax(logits, 1)
        return proba.numpy()


def _device_note(backend: mlpx.Backend) -> str:
    """The device an mlpx backend trains on, in words."""
    if backend.name == "cupy":
        return f"cuda:{backend.device.id}"
    if backend.name == "array_api_strict":
        return "cpu, the standard's reference"
    return str(backend.device)


def build_contenders(backends: Sequence[str]) -> tuple[list[Contender], list[str]]:
    """mlpx on every usable requested backend, then scikit-learn and PyTorch when importable.

    Parameters
    ----------
    backends : sequence of str
        mlpx backend names; NumPy is always added first, as the baseline of the ratios.

    Returns
    -------
    contenders : list of Contender
    skipped : list of str
        One line per contender that cannot run here, and why.
    """
    contenders, skipped = [], []
    for name in dict.fromkeys(("numpy", *backends)):
        try:
            backend = mlpx.resolve_backend(name)
        except mlpx.BackendUnavailableError as exc:
            skipped.append(f"mlpx-{name}: {exc}")
            continue
        contenders.append(Contender(
            f"mlpx-{name}",
            lambda w, d, backend=backend: MlpxTrainer(backend, w, d),
            _device_note(backend),
        ))
    try:
        from sklearn.neural_network import MLPClassifier
    except ImportError:
        skipped.append("sklearn: scikit-learn is not installed")
    else:
        init = "mlpx init" if _sklearn_classifier_class() is not MLPClassifier else "own init"
        contenders.append(Contender("sklearn", SklearnTrainer, f"cpu, {init}"))
    try:
        import torch  # noqa: F401
    except ImportError:
        skipped.append("torch-loop: torch is not installed")
    else:
        note = "cpu, mlpx init"
        contenders.append(Contender("torch-loop", TorchTrainer, note))
    return contenders, skipped


# --------------------------------------------------------------------------- measuring


@dataclass
class Result:
    """Timings and quality of one contender on one workload.

    Attributes
    ----------
    warmup : list of float
        Seconds of the discarded warm-up fits.
    times : list of float
        Seconds of the measured fits, in the order they ran.
    train_loss, test_accuracy : float
        Of the last fitted model, computed by :func:`quality`.
    """

    warmup: list[float] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    train_loss: float = float("nan")
    test_accuracy: float = float("nan")

    @property
    def median(self) -> float:
        """Median seconds of the measured fits."""
        return statistics.median(self.times)

    @property
    def best(self) -> float:
        """Fewest seconds of the measured fits."""
        return min(self.times)


def timed_fit(trainer: Trainer) -> float:
    """Seconds one ``trainer.fit()`` takes, after a garbage collection outside the clock."""
    gc.collect()
    start = time.perf_counter()
    trainer.fit()
    return time.perf_counter() - start


def _as_columns(proba: np.ndarray) -> np.ndarray:
    """float64 probabilities with one column per class (one sigmoid unit becomes two)."""
    proba = np.asarray(proba, dtype=np.float64)
    return np.hstack([1.0 - proba, proba]) if proba.shape[1] == 1 else proba


def quality(trainer: Trainer, data: Dataset) -> tuple[float, float]:
    """Mean cross-entropy on the training set and accuracy on the test set, in float64.

    Parameters
    ----------
    trainer : Trainer
        Already fitted.
    data : Dataset

    Returns
    -------
    train_loss, test_accuracy : float
    """
    train = _as_columns(trainer.predict_proba(data.X_train))
    picked = np.clip(train[np.arange(train.shape[0]), data.y_train], 1e-12, 1.0)
    test = _as_columns(trainer.predict_proba(data.X_test))
    accuracy = np.mean(np.argmax(test, axis=1) == data.y_test)
    return float(-np.mean(np.log(picked))), float(accuracy)


def run_workload(workload: Workload, data: Dataset, contenders: Sequence[Contender],
                 repeats: int, warmup: int) -> dict[str, Result]:
    """Fit every contender ``warmup + repeats`` times, interleaved round by round.

    Each fit starts from a freshly built model (building is not timed), so every repeat
    does the same work.

    Returns
    -------
    dict
        Contender name -> Result.
    """
    results = {c.name: Result() for c in contenders}
    last: dict[str, Trainer] = {}
    for round_index in range(warmup + repeats):
        for contender in contenders:
            trainer = contender.make(workload, data)
            seconds = timed_fit(trainer)
            result = results[contender.name]
            (result.warmup if round_index < warmup else result.times).append(seconds)
            last[contender.name] = trainer
    for name, trainer in last.items():
        results[name].train_loss, results[name].test_accuracy = quality(trainer, data)
    return results


# --------------------------------------------------------------------------- reporting


def format_table(workload: Workload, n_train: int, results: dict[str, Result]) -> str:
    """A fixed-width table: median, min, epochs/s, samples/s, ratio, loss and accuracy."""
    baseline = results[BASELINE].median if BASELINE in results else float("nan")
    header = (f"{'contender':<22}{'median s':>10}{'min s':>10}{'epochs/s':>10}"
              f"{'samples/s':>11}{'vs numpy':>10}{'train loss':>12}{'test acc':>10}")
    lines = [header, "-" * len(header)]
    for name, result in results.items():
        median = result.median
        lines.append(
            f"{name:<22}{median:>10.4f}{result.best:>10.4f}{workload.epochs / median:>10.1f}"
            f"{workload.epochs * n_train / median:>11.0f}{median / baseline:>9.2f}x"
            f"{result.train_loss:>12.4f}{result.test_accuracy:>10.3f}"
        )
    return "\n".join(lines)


def noise_notes(results: dict[str, Result], factor: float = 2.0) -> list[str]:
    """A warning for every contender whose slowest repeat took ``factor`` x its median.

    Parameters
    ----------
    results : dict
        Contender name -> Result.
    factor : float

    Returns
    -------
    list of str
        Empty when every contender was steady.
    """
    notes = []
    for name, result in results.items():
        slowest = max(result.times)
        if slowest > factor * result.median:
            notes.append(f"  noisy: {name} took up to {slowest:.3f} s "
                         f"({slowest / result.median:.0f}x its median); the machine was busy, "
                         "rerun or try --threads 1")
    return notes


def _versions() -> dict[str, str]:
    """Versions of Python and every library that takes part."""
    versions = {"python": platform.python_version(), "numpy": np.__version__,
                "mlpx": mlpx.__version__}
    for module in ("torch", "sklearn", "array_api_strict", "cupy"):
        try:
            versions[module] = __import__(module).__version__
        except ImportError:
            continue
    return versions


def limit_threads(n_threads: int) -> Any:
    """Cap every thread pool at ``n_threads``: BLAS and OpenMP, and torch's intra-op pool.

    Call it after the libraries are imported (threadpoolctl limits the pools loaded so
    far). ``0`` changes nothing. Returns the threadpoolctl limiter, or None.
    """
    if n_threads == 0:
        return None
    try:
        import torch
    except ImportError:
        pass
    else:
        torch.set_num_threads(n_threads)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return None
    return threadpool_limits(limits=n_threads)


def _thread_pools() -> str:
    """The size of every BLAS and OpenMP pool (via threadpoolctl) in a few words."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "BLAS/OpenMP threads unknown (no threadpoolctl)"
    pools = sorted({f"{info['internal_api']} {info['num_threads']}"
                    for info in threadpool_info()})
    return "threads: " + ", ".join(pools)


def _torch_threads() -> str:
    """torch's intra-op thread count, or why there is none."""
    try:
        import torch
    except ImportError:
        return "no torch"
    return f"torch intra-op threads {torch.get_num_threads()}"


def header_lines(args: argparse.Namespace, contenders: Sequence[Contender],
                 skipped: Sequence[str]) -> list[str]:
    """What ran, where, and how it was measured."""
    versions = ", ".join(f"{k} {v}" for k, v in _versions().items())
    lines = [
        f"mlpx training benchmark ({'quick' if args.quick else 'full'}): {args.repeats} "
        f"repeat(s) after {args.warmup} warm-up round(s), contenders interleaved per round",
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs; {_thread_pools()}, "
        f"{_torch_threads()}",
        f"versions: {versions}",
        f"mlpx from {Path(mlpx.__file__).parent}",
        "contenders: " + ", ".join(f"{c.name} ({c.note})" for c in contenders),
    ]
    lines += [f"skipped {line}" for line in skipped]
    lines += [
        "Only the fit is timed, from NumPy float32 input; mlpx moves NumPy data to its "
        "backend's device once per fit (inside the time).",
        "All train the same network, optimizer, lr, batch size and epochs in float32; "
        "contenders marked 'mlpx init' start from mlpx's seeded initial weights.",
        "'vs numpy' = median / median of mlpx-numpy (> 1 is slower); train loss = "
        "cross-entropy on the whole training set after the fit.",
    ]
    return lines


def write_json(path: Path, args: argparse.Namespace, workloads: Sequence[Workload],
               all_results: dict[str, dict[str, Result]], skipped: Sequence[str]) -> None:
    """Every raw timing (warm-ups too), with the settings and versions."""
    payload = {
        "settings": {"quick": args.quick, "repeats": args.repeats, "warmup": args.warmup,
                     "backends": args.backends, "threads": args.threads,
                     "seed": SEED},
        "versions": _versions(),
        "cpu_count": os.cpu_count(),
        "skipped": list(skipped),
        "workloads": {
            w.name: {
                "config": w.config(),
                "contenders": {
                    name: {"times": r.times, "warmup_times": r.warmup, "median": r.median,
                           "min": r.best, "train_loss": r.train_loss,
                           "test_accuracy": r.test_accuracy}
                    for name, r in all_results[w.name].items()
                },
            }
            for w in workloads
        },
    }
    path.write_text(json.dumps(payload, indent=2) + "\n")


# --------------------------------------------------------------------------- command line


def _names(text: str, allowed: Sequence[str], option: str) -> list[str]:
    """A comma-separated list checked against ``allowed``."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in allowed]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"{option} got {unknown or text!r}; choose from {','.join(allowed)}"
        )
    return names


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line; see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="fewer epochs and 1 repeat (the nox bench session and CI smoke run)")
    parser.add_argument("--repeats", type=int, default=None,
                        help="measured rounds (default 5, or 1 with --quick)")
    parser.add_argument("--warmup", type=int, default=1, help="discarded rounds (default 1)")
    parser.add_argument("--threads", type=int, default=None,
                        help="cap BLAS/OpenMP pools (threadpoolctl) and torch.set_num_threads "
                             "at N for every contender; 0 leaves each library's own choice "
                             "(default 0, or 1 with --quick: multi-threaded pools stall for "
                             "seconds on a busy shared machine)")
    parser.add_argument("--json", type=Path, default=None, help="write all raw timings here")
    parser.add_argument("--backends", default=",".join(BACKEND_NAMES),
                        type=lambda t: _names(t, BACKEND_NAMES, "--backends"),
                        help="mlpx backends to time, numpy always included as the baseline; "
                             "unusable ones are skipped (default all)")
    names = [w.name for w in make_workloads(quick=False)]
    parser.add_argument("--workloads", default=",".join(names),
                        type=lambda t: _names(t, names, "--workloads"),
                        help=f"which workloads (default {','.join(names)})")
    args = parser.parse_args(argv)
    if args.repeats is None:
        args.repeats = 1 if args.quick else 5
    if args.repeats < 1 or args.warmup < 0:
        parser.error("--repeats must be >= 1 and --warmup >= 0")
    if args.threads is None:
        args.threads = 1 if args.quick else 0
    if args.threads < 0:
        parser.error("--threads must be >= 0 (0: each library's own choice)")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the selected workloads and print one table each; returns the exit status."""
    args = parse_args(argv)
    started = time.perf_counter()
    contenders, skipped = build_contenders(args.backends)
    limiter = limit_threads(args.threads)
    print("\n".join(header_lines(args, contenders, skipped)), flush=True)
    workloads = [w for w in make_workloads(args.quick) if w.name in args.workloads]
    all_results = {}
    for workload in workloads:
        data = workload.load()
        results = run_workload(workload, data, contenders, args.repeats, args.warmup)
        all_results[workload.name] = results
        n_train = data.X_train.shape[0]
        batch = "full batch" if workload.batch_size is None else f"batch {workload.batch_size}"
        print(f"\n== {workload.name}: {workload.description}; {list(workload.layer_sizes)} "
              f"{'/'.join(workload.activations)}, {workload.optimizer} lr "
              f"{workload.learning_rate:g}, {batch}, {workload.epochs} epochs, "
              f"{n_train} train samples")
        print("\n".join([format_table(workload, n_train, results), *noise_notes(results)]),
              flush=True)
    if args.json is not None:
        write_json(args.json, args, workloads, all_results, skipped)
        print(f"\nraw timings written to {args.json}")
    print(f"\ntotal {time.perf_counter() - started:.1f} s")
    if limiter is not None:
        limiter.restore_original_limits()
    return 0


if __name__ == "__main__":
    sys.exit(main())
