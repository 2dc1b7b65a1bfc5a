"""Mixed precision: bfloat16 matrix products with float32 weights, on PyTorch tensors.

``MLP(..., backend="torch", matmul_precision="bfloat16")`` casts the inputs of every
matrix product (forward ``x @ W``, backward ``x.T @ grad_z`` and ``grad_z @ W.T``) to
bfloat16 and takes the product back in float32; the weights, the activations, the loss and
Adam's moments stay float32. On CPUs with AVX512-BF16 or AMX, and on GPU tensor cores,
those products run several times faster than float32 ones.

This script trains the same [784, 512, 256, 10] network on MNIST-sized synthetic data (no
download) with float32 products and with bfloat16 products, from the same initial weights,
and prints both times and test accuracies; then it saves the bfloat16 model and loads it
on NumPy, which has no bfloat16 (``matmul_precision="highest"``). Without PyTorch it says
what to install.

    python examples/mixed_precision.py [--epochs N] [--samples N]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from _output import mnist_sized_blobs

import mlpx

QUICK = os.environ.get("MLPX_EXAMPLE_QUICK") == "1"


def torch_backend():
    """The torch backend (on CUDA when there is one), or None with the reason printed."""
    try:
        return mlpx.resolve_backend("torch")
    except mlpx.BackendUnavailableError as exc:
        print(f"No PyTorch here: {exc}")
        print("Mixed precision needs a backend with a bfloat16 dtype: pip install 'mlpx[torch]'")
        return None


def train(backend, precision: str, data, epochs: int) -> tuple[mlpx.MLP, float, float]:
    """Fit the network with ``precision`` products; returns (model, seconds, accuracy)."""
    X_train, X_test, y_train, y_test = data
    model = mlpx.MLP([X_train.shape[1], 512, 256, 10], activations=["relu", "relu", "softmax"],
                     backend=backend, seed=0, matmul_precision=precision)
    started = time.perf_counter()
    model.fit(X_train, y_train, epochs=epochs, batch_size=256, optimizer="adam",
              learning_rate=1e-3)
    model.predict(X_test[:1])  # waits for a GPU to finish
    seconds = time.perf_counter() - started
    return model, seconds, model.score(X_test, y_test)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2 if QUICK else 3)
    parser.add_argument("--samples", type=int, default=5000 if QUICK else 20000)
    args = parser.parse_args()

    backend = torch_backend()
    if backend is None:
        return
    data = mnist_sized_blobs(args.samples, cluster_std=45.0)
    X_train = data[0]
    print(f"{X_train.shape[0]} training samples of 784 features, 10 classes, "
          f"{args.epochs} epoch(s) of Adam at batch 256, torch on {backend.device}")

    accuracies = {}
    for precision in ("highest", "bfloat16"):
        model, seconds, accuracies[precision] = train(backend, precision, data, args.epochs)
        print(f"{precision:>8} products: {seconds:6.2f} s, test accuracy "
              f"{accuracies[precision]:.3f}, weights {model.params[0].dtype}")

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bf16.safetensors"
        model.save(path)
        on_numpy = mlpx.load(path, backend="numpy", matmul_precision="highest")
        print(f"loaded on NumPy with float32 products: test accuracy "
              f"{on_numpy.score(data[1], data[3]):.3f}")

    gap = abs(accuracies["bfloat16"] - accuracies["highest"])
    if not np.isfinite(accuracies["bfloat16"]) or gap > 0.03:
        raise SystemExit(f"bfloat16 products changed the test accuracy by {gap:.3f}")


if __name__ == "__main__":
    main()
